/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The DWARF types made so far, by their shape (what and of which
 * dimensions), so that each is made once: 65,535 bitmap directory entries
 * of one shape made 65,535 structure types, 360 MB in libdwarf.
 */
#ifndef QCOW2ELF_TYPE_CACHE_H
#define QCOW2ELF_TYPE_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct type_slot;
struct type_cache {
	struct type_slot *v;
	size_t n, cap;		/* cap a power of two, or 0 */
};

/* The type of shape KEY, or NULL. */
void *type_cache_get(const struct type_cache *c, const uint64_t key[4]);
/* Keeps TYPE (not NULL) as KEY's; -1 when out of memory. */
int type_cache_put(struct type_cache *c, const uint64_t key[4], void *type);
void type_cache_free(struct type_cache *c);

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A map from keys of four 64-bit words to pointers, written once
 * (src/hashmap.c) for what is found again by offsets or by shape: diff's
 * pairs of tables, check's tables read again, dump's DWARF types.  Each
 * of those can be as many as the tables in a file, so a search of a list
 * would be quadratic.
 */
#ifndef QCOW2ELF_HASHMAP_H
#define QCOW2ELF_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

#define Q2E_MAP_KEY 4	/* words in a key; unused ones are 0 */

struct q2e_map_slot;
struct q2e_map {
	struct q2e_map_slot *v;	/* open addressing */
	size_t n, cap;		/* cap a power of two, or 0 */
};

/* KEY's value, or NULL. */
void *q2e_map_get(const struct q2e_map *m, const uint64_t key[Q2E_MAP_KEY]);
/* Makes VALUE KEY's, replacing any: 0, or the map left as it was and
 * Q2E_ENOMEM, or Q2E_EUSAGE if VALUE is NULL. */
int q2e_map_put(struct q2e_map *m, const uint64_t key[Q2E_MAP_KEY],
		void *value);
/* Empties M, giving each value to FREE_VALUE first unless it is NULL. */
void q2e_map_free(struct q2e_map *m, void (*free_value)(void *));

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Internal to the dump emitter: the last images' DWARF, reused for the
 * next whose types are the same (dwarf_reuse.c).
 */
#ifndef Q2E_EMIT_DWARF_REUSE_H
#define Q2E_EMIT_DWARF_REUSE_H

#include <stdbool.h>

#include "elf_symbols.h"

/* Every input of a build, in its order (dwarf_reuse.c says which). */
struct q2e_dwarf_key {
	uint64_t *v;
	size_t n, cap;
};

/*
 * Whether a build may reuse the last builds' bytes.  Off (as a process
 * starts) frees them: only a process that dumps many images, the fuzz
 * target, turns it on.
 */
void q2e_dwarf_reuse(bool on);

/*
 * The DWARF of IMG's SYMS in a unit named CU_NAME, copied into OUT if one of
 * the last builds had the same inputs: 1; -1 if out of memory; else 0, with
 * KEY to give q2e_dwarf_keep() after the build.
 */
int q2e_dwarf_last(const struct q2e_image *img,
		   const struct q2e_symbols *syms, const char *cu_name,
		   struct q2e_dwarf *out, struct q2e_dwarf_key *key);
/* Keeps a copy of BUILT (of NSYMS symbols; NULL if the build failed) as
 * one of the last builds, under KEY, which it takes. */
void q2e_dwarf_keep(struct q2e_dwarf_key *key, const struct q2e_dwarf *built,
		    size_t nsyms);

#endif

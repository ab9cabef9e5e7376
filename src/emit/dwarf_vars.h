/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Internal to the dump emitter: the DWARF variables (dwarf_vars.c). */
#ifndef Q2E_EMIT_DWARF_VARS_H
#define Q2E_EMIT_DWARF_VARS_H

#include "elf_symbols.h"

struct q2e_seqwriter;

/*
 * Gets D, as libdwarf made it, ready for a second compilation unit of
 * variables named CU_NAME: their abbreviations in .debug_abbrev.
 */
int q2e_dwarf_variables_begin(struct q2e_dwarf *d, const char *cu_name,
			      const char *producer, struct q2e_error *err);
/* The bytes of the unit, a variable for each symbol, of type
 * D->type_ref[i]: what q2e_dwarf_variables_write() writes after
 * .debug_info's bytes. */
uint64_t q2e_dwarf_variables_size(const struct q2e_dwarf *d,
				  const struct q2e_symbols *syms);
void q2e_dwarf_variables_write(struct q2e_seqwriter *w,
			       const struct q2e_dwarf *d,
			       const struct q2e_symbols *syms);

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Internal to the dump emitter: the DWARF variables (dwarf_vars.c). */
#ifndef Q2E_EMIT_DWARF_VARS_H
#define Q2E_EMIT_DWARF_VARS_H

#include "elf_symbols.h"

/*
 * Appends to INFO and ABBREV (.debug_info and .debug_abbrev, 32-bit
 * DWARF 4) a compilation unit named CU_NAME with a variable for each
 * symbol, of the type at offset TYPE_REF[i] in INFO.
 */
int q2e_dwarf_add_variables(struct q2e_dwarf_section *info,
			    struct q2e_dwarf_section *abbrev,
			    const struct q2e_sym *syms, size_t nsyms,
			    const uint32_t *type_ref, const char *cu_name,
			    const char *producer, struct q2e_error *err);

#endif

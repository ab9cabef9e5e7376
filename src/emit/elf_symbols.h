/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Internal to the dump emitter: the symbols of a dump, computed once from
 * the model and used for both .symtab and the DWARF variables.
 */
#ifndef QCOW2ELF_DUMP_SYMBOLS_H
#define QCOW2ELF_DUMP_SYMBOLS_H

#include <stddef.h>
#include <stdint.h>

#include "qcow2elf/error.h"
#include "qcow2elf/model.h"

/* What a symbol's DWARF type describes. */
enum q2e_sym_type {
	Q2E_SYM_HEADER,
	Q2E_SYM_EXTENSION,
	Q2E_SYM_BYTES,		/* u8[size] (or char[] for names) */
	Q2E_SYM_STRING,
	Q2E_SYM_L1,
	Q2E_SYM_L2,
	Q2E_SYM_REFTABLE,
	Q2E_SYM_REFBLOCK,
	Q2E_SYM_SNAPSHOT,	/* one entry of the snapshot table */
	Q2E_SYM_BITMAP,		/* one entry of the bitmap directory */
	Q2E_SYM_BITMAP_TABLE,
	Q2E_SYM_CRYPTO,
};

/* 32 bytes: a dump has one per region and more. */
struct q2e_sym {
	uint64_t addr;
	uint64_t size;
	uint32_t name;		/* offset in the names (a string table) */
	uint32_t section;	/* index into the dump's region sections */
	uint32_t index;		/* extension, snapshot or bitmap position */
	uint8_t type;		/* enum q2e_sym_type */
};

/*
 * The symbols, and their names one after the other after an empty one:
 * the bytes of .strtab.
 */
struct q2e_symbols {
	struct q2e_sym *v;
	size_t n, cap;
	char *names;
	size_t names_len, names_cap;
};

struct q2e_dwarf_section {
	char *name;
	uint8_t *data;
	size_t size;
};

/*
 * The DWARF of a dump: the sections libdwarf made of the types, then a
 * unit of variables that dwarf_vars.c writes with .debug_info.
 */
struct q2e_dwarf {
	struct q2e_dwarf_section *secs;
	size_t nsecs;
	size_t info;		/* .debug_info in secs */
	uint32_t *type_ref;	/* each symbol's type: offset in .debug_info */
	uint32_t abbrev_offset;	/* of the variables' abbreviations */
	char *cu_name;
	const char *producer;
};

struct q2e_out_section;

/* The symbols of the NSECS region sections SECS of a dump of IMG, in
 * arrays of their exact size (elf_symbols.c); free SYMS->v, SYMS->names. */
int q2e_symbols_plan(struct q2e_symbols *syms, const struct q2e_image *img,
		     const struct q2e_out_section *secs, size_t nsecs,
		     struct q2e_error *err);

/* DWARF types and one variable per symbol (dwarf.c). */
int q2e_dwarf_build(const struct q2e_image *img,
		    const struct q2e_symbols *syms, const char *cu_name, struct q2e_dwarf *out,
		    struct q2e_error *err);
void q2e_dwarf_free(struct q2e_dwarf *d);

#endif

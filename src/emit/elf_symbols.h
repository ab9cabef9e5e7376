/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Internal to the dump emitter: the symbols of a dump, computed once from
 * the model and used for both .symtab and the DWARF variables.
 */
#ifndef QCOW2ELF_DUMP_SYMBOLS_H
#define QCOW2ELF_DUMP_SYMBOLS_H

#include <stdbool.h>
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

/* A symbol, as q2e_symbols_each() makes it again for each use. */
struct q2e_sym {
	uint64_t addr;
	uint64_t size;
	uint32_t name;		/* offset in .strtab */
	uint32_t section;	/* index into the dump's region sections */
	uint32_t index;		/* extension, snapshot or bitmap position */
	uint32_t dtype;		/* the symbol of its DWARF type in V below */
	uint8_t type;		/* enum q2e_sym_type */
};

/*
 * The symbols of a dump are not kept: 68,000 tables made 3.3 MiB of them
 * and their names, a third of `dump`'s peak.  They are made again from
 * the model for each table that lists them (.symtab, .strtab, the DWARF
 * variables).  What is kept is one symbol for each DWARF type they need,
 * in the order they first need it (V: what q2e_dwarf_build() is given),
 * each symbol's DTYPE pointing at its own.
 */
struct q2e_symbols {
	struct q2e_sym *v;	/* one of each DWARF type */
	size_t n, cap;
	size_t total;		/* symbols of the dump */
	uint64_t names_len;	/* .strtab's size: the names after an empty one */
	uint32_t *slots;	/* V as a hash table: index + 1, or 0 */
	size_t nslots;
	/* Each symbol's name length, for the tables that need only those
	 * (.symtab): a byte each, where making the names again was a
	 * quarter of the names made. */
	uint8_t *name_len;
	size_t name_len_cap;
	const struct q2e_image *img;
	const struct q2e_out_section *secs;
	size_t nsecs;
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

/* The symbols of the NSECS region sections SECS of a dump of IMG
 * (elf_symbols.c), counted and typed; q2e_symbols_free() them. */
int q2e_symbols_plan(struct q2e_symbols *syms, const struct q2e_image *img,
		     const struct q2e_out_section *secs, size_t nsecs,
		     struct q2e_error *err);
void q2e_symbols_free(struct q2e_symbols *syms);

/* Calls FN with each symbol and its name of LEN bytes, in .symtab's
 * order; without NAMES, the names are not made and NAME is NULL. */
typedef void q2e_sym_fn(void *ctx, const struct q2e_sym *s, const char *name,
			size_t len);
void q2e_symbols_each(const struct q2e_symbols *syms, bool names,
		      q2e_sym_fn *fn, void *ctx);

/* DWARF types and one variable per symbol (dwarf.c). */
int q2e_dwarf_build(const struct q2e_image *img,
		    const struct q2e_symbols *syms, const char *cu_name, struct q2e_dwarf *out,
		    struct q2e_error *err);
void q2e_dwarf_free(struct q2e_dwarf *d);

#endif

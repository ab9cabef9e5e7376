/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The DWARF variables of a dump, one per symbol, written by hand as a
 * second compilation unit after the one libdwarf makes of the types.
 *
 * Why not through libdwarf: its producer keeps about 1 KiB per DIE with
 * four attributes and a location expression until it writes the unit,
 * which made 43 MiB for the 41,000 regions of a 1 GiB image of 512-byte
 * clusters, four times what the walk of the image takes.  The variables
 * all have one shape, so they are easy to write directly: each refers to
 * its type in the first unit with DW_FORM_ref_addr (an offset in
 * .debug_info), which gdb and llvm-dwarfdump follow across units.
 *
 * The unit, DWARF 4 with 32-bit offsets, as the first one:
 *   unit_length u32, version u16 = 4, debug_abbrev_offset u32,
 *   address_size u8 = 8, then
 *   DW_TAG_compile_unit  name, producer (DW_FORM_string), children:
 *     DW_TAG_variable    name (string), type (ref_addr), external
 *                        (flag_present), location (exprloc: DW_OP_addr)
 *   0 (end of the children)
 */
#include <dwarf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dwarf_vars.h"
#include "seqwrite.h"

enum { ABBREV_UNIT = 1, ABBREV_VARIABLE = 2 };

static const uint8_t abbrevs[] = {
	ABBREV_UNIT, DW_TAG_compile_unit, DW_CHILDREN_yes,
	DW_AT_name, DW_FORM_string,
	DW_AT_producer, DW_FORM_string,
	0, 0,
	ABBREV_VARIABLE, DW_TAG_variable, DW_CHILDREN_no,
	DW_AT_name, DW_FORM_string,
	DW_AT_type, DW_FORM_ref_addr,
	DW_AT_external, DW_FORM_flag_present,
	DW_AT_location, DW_FORM_exprloc,
	0, 0,
	0,
};

/* The unit header after unit_length; the location: length, DW_OP_addr, address. */
#define UNIT_HEADER_SIZE (2 + 4 + 1)
#define LOCATION_SIZE (1 + 1 + 8)

int q2e_dwarf_variables_begin(struct q2e_dwarf *d, const char *cu_name,
			      const char *producer, struct q2e_error *err)
{
	struct q2e_dwarf_section *abbrev = NULL;
	uint8_t *n;

	d->info = SIZE_MAX;
	for (size_t i = 0; i < d->nsecs; i++) {
		if (strcmp(d->secs[i].name, ".debug_info") == 0)
			d->info = i;
		if (strcmp(d->secs[i].name, ".debug_abbrev") == 0)
			abbrev = &d->secs[i];
	}
	if (d->info == SIZE_MAX || !abbrev)
		return q2e_error_set(err, Q2E_EOUTPUT,
				     "cannot build the DWARF description: libdwarf made no .debug_info");
	d->cu_name = strdup(cu_name);
	d->producer = producer;
	n = realloc(abbrev->data, abbrev->size + sizeof(abbrevs));
	if (!d->cu_name || !n)
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	memcpy(n + abbrev->size, abbrevs, sizeof(abbrevs));
	d->abbrev_offset = (uint32_t)abbrev->size;
	abbrev->data = n;
	abbrev->size += sizeof(abbrevs);
	return 0;
}

/* The unit's size after its unit_length field. */
static uint64_t unit_size(const struct q2e_dwarf *d,
			  const struct q2e_symbols *syms)
{
	/* Each name is in the names with its NUL, after an empty one. */
	return UNIT_HEADER_SIZE + 1 + strlen(d->cu_name) + 1 +
	       strlen(d->producer) + 1 + 1 + (syms->names_len - 1) +
	       syms->total * (uint64_t)(1 + 4 + LOCATION_SIZE);
}

uint64_t q2e_dwarf_variables_size(const struct q2e_dwarf *d,
				  const struct q2e_symbols *syms)
{
	return 4 + unit_size(d, syms);
}

/* The file's byte order is the host's (elf.c). */
static void put16(struct q2e_seqwriter *w, uint16_t v)
{
	q2e_seqwriter_put(w, &v, 2);
}

static void put32(struct q2e_seqwriter *w, uint32_t v)
{
	q2e_seqwriter_put(w, &v, 4);
}

static void put8(struct q2e_seqwriter *w, uint8_t v)
{
	q2e_seqwriter_put(w, &v, 1);
}

struct var_writer {
	struct q2e_seqwriter *w;
	const struct q2e_dwarf *d;
};

static void put_variable(void *ctx, const struct q2e_sym *s, const char *name,
			 size_t len)
{
	const struct var_writer *v = ctx;
	uint8_t loc[LOCATION_SIZE] = { 1 + 8, DW_OP_addr };

	put8(v->w, ABBREV_VARIABLE);
	q2e_seqwriter_put(v->w, name, len + 1);
	put32(v->w, v->d->type_ref[s->dtype]);
	memcpy(loc + 2, &s->addr, 8);
	q2e_seqwriter_put(v->w, loc, sizeof(loc));
}

void q2e_dwarf_variables_write(struct q2e_seqwriter *w,
			       const struct q2e_dwarf *d,
			       const struct q2e_symbols *syms)
{
	struct var_writer v = { w, d };

	put32(w, (uint32_t)unit_size(d, syms));
	put16(w, 4);
	put32(w, d->abbrev_offset);
	put8(w, 8);
	put8(w, ABBREV_UNIT);
	q2e_seqwriter_string(w, d->cu_name);
	q2e_seqwriter_string(w, d->producer);
	q2e_symbols_each(syms, true, put_variable, &v);
	put8(w, 0);
}

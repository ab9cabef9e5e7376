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
#include <stdlib.h>
#include <string.h>

#include "dwarf_vars.h"

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

static uint8_t *put(uint8_t *p, uint64_t v, unsigned size)
{
	/* The file's byte order is the host's (elf.c). */
	if (size == 2) {
		uint16_t x = (uint16_t)v;
		memcpy(p, &x, 2);
	} else if (size == 4) {
		uint32_t x = (uint32_t)v;
		memcpy(p, &x, 4);
	} else {
		memcpy(p, &v, 8);
	}
	return p + size;
}

static uint8_t *put_string(uint8_t *p, const char *s)
{
	size_t n = strlen(s) + 1;

	memcpy(p, s, n);
	return p + n;
}

static int append(struct q2e_dwarf_section *s, size_t more, uint8_t **at,
		  struct q2e_error *err)
{
	uint8_t *n = realloc(s->data, s->size + more);

	if (!n)
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	s->data = n;
	*at = n + s->size;
	s->size += more;
	return 0;
}

int q2e_dwarf_add_variables(struct q2e_dwarf_section *info,
			    struct q2e_dwarf_section *abbrev,
			    const struct q2e_sym *syms, size_t nsyms,
			    const uint32_t *type_ref, const char *cu_name,
			    const char *producer, struct q2e_error *err)
{
	uint64_t abbrev_offset = abbrev->size, unit_offset = info->size;
	uint64_t size = UNIT_HEADER_SIZE + 1 + strlen(cu_name) + 1 +
			strlen(producer) + 1 + 1;
	uint8_t *p = NULL;
	int ret;

	for (size_t i = 0; i < nsyms; i++)
		size += 1 + strlen(syms[i].name) + 1 + 4 + LOCATION_SIZE;
	if (unit_offset + 4 + size > UINT32_MAX)
		return q2e_error_set(err, Q2E_EUSAGE,
				     "too many symbols for 32-bit DWARF offsets");
	ret = append(abbrev, sizeof(abbrevs), &p, err);
	if (ret < 0)
		return ret;
	memcpy(p, abbrevs, sizeof(abbrevs));
	ret = append(info, 4 + size, &p, err);
	if (ret < 0)
		return ret;
	p = put(p, size, 4);
	p = put(p, 4, 2);
	p = put(p, abbrev_offset, 4);
	*p++ = 8;
	*p++ = ABBREV_UNIT;
	p = put_string(p, cu_name);
	p = put_string(p, producer);
	for (size_t i = 0; i < nsyms; i++) {
		*p++ = ABBREV_VARIABLE;
		p = put_string(p, syms[i].name);
		p = put(p, type_ref[i], 4);
		*p++ = 1 + 8;
		*p++ = DW_OP_addr;
		p = put(p, syms[i].addr, 8);
	}
	*p++ = 0;
	return 0;
}

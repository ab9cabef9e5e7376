/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The libdwarf producer, loaded when a dump first needs it.
 *
 * Only `dump` makes DWARF.  Linked in, libdwarf (548 KiB in Debian) and
 * the shared libraries it pulls were read from disk before every other
 * command could start: on a cold cache, with libelf and zlib linked from
 * their archives as well, `check` of a small image went from 21 to 18 ms
 * against 15 for reading its metadata.  So the program names the
 * library's soname, as it was built against, and looks up the few
 * functions it calls in a table typed from libdwarf.h.
 */
#ifndef Q2E_DWARF_LIB_H
#define Q2E_DWARF_LIB_H

#include <libdwarf.h>

#include "qcow2elf/error.h"

/* Every libdwarf function the emitter calls. */
#define Q2E_DWARF_FUNCTIONS(X) \
	X(dwarf_producer_init) \
	X(dwarf_producer_finish_a) \
	X(dwarf_errno) \
	X(dwarf_new_die_a) \
	X(dwarf_add_AT_name_a) \
	X(dwarf_add_AT_string_a) \
	X(dwarf_add_AT_unsigned_const_a) \
	X(dwarf_add_AT_any_value_uleb_a) \
	X(dwarf_add_AT_reference_c) \
	X(dwarf_get_die_marker) \
	X(dwarf_add_die_marker_a) \
	X(dwarf_get_die_markers_a) \
	X(dwarf_add_die_to_debug_a) \
	X(dwarf_transform_to_disk_form_a) \
	X(dwarf_get_section_bytes_a)

struct q2e_dwarf_lib {
#define Q2E_DWARF_FIELD(name) __typeof__(&name) name;
	Q2E_DWARF_FUNCTIONS(Q2E_DWARF_FIELD)
#undef Q2E_DWARF_FIELD
};

/*
 * The producer's functions, the library loaded on the first call (from
 * any thread); NULL, with ERR set, if it cannot be loaded or lacks one.
 */
const struct q2e_dwarf_lib *q2e_dwarf_lib(struct q2e_error *err);

#endif

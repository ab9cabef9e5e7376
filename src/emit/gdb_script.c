/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The gdb helpers (contrib/gdb/qcow2elf.py), carried by every dump in a
 * .debug_gdb_scripts section so that gdb loads them from the dump alone
 * once the dump is under its auto-load safe-path.  The section holds one
 * entry: kind 4 (SECTION_SCRIPT_ID_PYTHON_TEXT), a first line naming the
 * script, the Python text, and a NUL.  The build turns the Python file
 * into the byte list included below.
 */
#include "gdb_script.h"

static const char entry[] = {
	4,
	'q', 'c', 'o', '2', 'e', 'l', 'f', '.', 'p', 'y', '\n',
#include "qcow2elf_py.h"
	0
};

const char *q2e_gdb_script(size_t *size)
{
	*size = sizeof(entry);
	return entry;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef Q2E_EMIT_GDB_SCRIPT_H
#define Q2E_EMIT_GDB_SCRIPT_H

#include <stddef.h>

#define Q2E_GDB_SCRIPTS_SECTION ".debug_gdb_scripts"

/* The .debug_gdb_scripts entry that carries the gdb helpers. */
const char *q2e_gdb_script(size_t *size);

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `dump`: an image's metadata as an ELF file that binutils and gdb read by
 * name.  The file format is described in qcow2elf/dumpfmt.h and the names
 * in src/model/names.c.
 */
#ifndef QCOW2ELF_DUMP_H
#define QCOW2ELF_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qcow2elf/error.h"
#include "qcow2elf/model.h"

/* gdb 13 keeps a symbol's section index in a signed 16-bit field: the
 * symbols of sections past it are written as absolute ones. */
#define Q2E_GDB_MAX_SECTIONS 32767

struct q2e_dump_options {
	bool no_data;		/* SHT_NOBITS sections: the layout only */
	bool no_gdb_script;	/* no .debug_gdb_scripts (the gdb helpers) */
	bool redact;		/* for a bug report: see src/emit/redact.c */
};

struct q2e_dump_result {
	size_t nsections;	/* region sections */
	size_t nsymbols;
	size_t nsegments;	/* PT_LOAD program headers */
	size_t truncated;	/* regions cut short by the end of the file */
};

/*
 * Writes the dump of IMG to PATH: to a temporary file beside it, renamed
 * over PATH only when complete.  On failure PATH is left as it was.
 */
int q2e_dump_write(struct q2e_image *img, const char *path,
		   const struct q2e_dump_options *opts,
		   struct q2e_dump_result *res, struct q2e_error *err);

/*
 * Writes the dump of IMG to FD (seekable: a regular file or a memfd, written
 * from offset 0 and cut to the dump's size; the caller closes it), NAME
 * naming it in messages.  On failure FD holds an incomplete dump.  The fuzz
 * targets write to memory with it.
 */
int q2e_dump_write_fd(struct q2e_image *img, int fd, const char *name,
		      const struct q2e_dump_options *opts,
		      struct q2e_dump_result *res, struct q2e_error *err);

#endif

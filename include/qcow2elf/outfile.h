/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An output file that is complete or absent: written to a temporary file
 * beside its path and put in place only when the writer has succeeded.
 * Used by `dump` and `restore` (src/out/outfile.c).
 */
#ifndef QCOW2ELF_OUTFILE_H
#define QCOW2ELF_OUTFILE_H

#include <stdbool.h>

#include "qcow2elf/error.h"

struct q2e_outfile {
	const char *path;
	char *tmp;
	int fd;			/* of the temporary file, -1 once closed */
};

/*
 * Creates the temporary file, mode 0666 less the umask.  The caller has
 * already refused a PATH that names a file its input reads
 * (q2e_image_reads_file()): it would be replaced by its own output.
 */
int q2e_outfile_open(struct q2e_outfile *f, const char *path,
		     struct q2e_error *err);
/*
 * Syncs and closes the temporary file and puts it at the path: over an
 * existing file with REPLACE, otherwise only where none exists (link(), so
 * that a file created meanwhile is kept too).  On failure nothing is left.
 */
int q2e_outfile_commit(struct q2e_outfile *f, bool replace,
		       struct q2e_error *err);
/* Removes the temporary file; for any failure before commit. */
void q2e_outfile_abort(struct q2e_outfile *f);

/*
 * Removes the temporary file of an output being written, if there is one.
 * Async-signal-safe: for a signal handler that is about to end the process.
 */
void q2e_outfile_remove_pending(void);

#endif

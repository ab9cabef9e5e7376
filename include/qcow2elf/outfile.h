/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An output file that is complete or absent, as a Unix tool writes it
 * (src/out/outfile.c).  Used by `dump` and `restore`.
 *   - a regular file, new or existing, or a name a symbolic link leads to:
 *     written to a temporary file in its directory (unnamed where the file
 *     system allows) and put in place only when the writer has succeeded;
 *     a replaced file keeps its mode, a new one gets 0666 less the umask;
 *   - "-" (standard output) or a name of a descriptor this process has
 *     open (/dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N), or an
 *     existing file that is not a regular file (device, FIFO, socket):
 *     written in place, never replaced, a descriptor at its offset.  The
 *     writer still gets a seekable file, an unnamed temporary one, copied
 *     out at commit; a descriptor that is a regular file open at its
 *     start is written directly, and left at the end of the output.
 */
#ifndef QCOW2ELF_OUTFILE_H
#define QCOW2ELF_OUTFILE_H

#include <stdbool.h>
#include <sys/types.h>

#include "qcow2elf/error.h"

struct q2e_outfile {
	const char *path;	/* as given, for messages */
	char *target;		/* the file replaced: PATH, links followed */
	char *tmp;		/* named temporary file, or NULL */
	int fd;			/* what the writer writes, -1 once closed */
	int out_fd;		/* the descriptor PATH names, or -1 */
	bool stream;		/* written in place, not replaced */
	bool direct;		/* fd is out_fd itself */
	bool replaces;		/* a regular file is at the target now */
	/*
	 * Not synced before it is put in place: complete or absent still
	 * holds against a failed or killed writer, not against a crash of
	 * the system, as for binutils' outputs; for what can be made again
	 * from its input (a dump), where a sync costs as much as the rest.
	 */
	bool no_sync;
};

/*
 * Opens what the writer writes into.  The caller has already refused a PATH
 * that names a file its input reads (q2e_image_reads_file()): it would be
 * replaced by its own output.
 */
int q2e_outfile_open(struct q2e_outfile *f, const char *path,
		     struct q2e_error *err);
/*
 * Syncs (unless no_sync) and closes the temporary file and puts it at
 * the path: over an existing file with REPLACE, otherwise only where none
 * exists (so that a file created meanwhile is kept too); or copies it out
 * to a stream.  On failure no temporary file is left.
 */
int q2e_outfile_commit(struct q2e_outfile *f, bool replace,
		       struct q2e_error *err);
/* Removes the temporary file; for any failure before commit. */
void q2e_outfile_abort(struct q2e_outfile *f);

/* Whether PATH is standard output ("-"). */
bool q2e_outfile_is_stdout(const char *path);
/*
 * The descriptor PATH names and q2e_outfile_open() writes in place: 1 for
 * "-" and /dev/stdout, 2 for /dev/stderr, N for /dev/fd/N and
 * /proc/self/fd/N; -1 for any other PATH.
 */
int q2e_outfile_descriptor(const char *path);

/*
 * Removes the temporary file of an output being written, if it has a name.
 * Async-signal-safe: for a signal handler that is about to end the process.
 */
void q2e_outfile_remove_pending(void);

#endif

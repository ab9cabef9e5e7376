/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `restore`: turns a dump back into an image file that holds the same
 * metadata at the same offsets and nothing else.  The file has the size
 * the dump's note records, with every region's bytes written at its offset
 * and the rest left as holes, so data clusters read as zeros.
 */
#ifndef QCOW2ELF_RESTORE_H
#define QCOW2ELF_RESTORE_H

#include <stdbool.h>
#include <stdint.h>

#include "qcow2elf/error.h"
#include "qcow2elf/model.h"

struct q2e_restore_options {
	bool force;		/* replace PATH if it exists */
};

struct q2e_restore_result {
	uint64_t file_size;
	size_t nregions;	/* regions written */
	uint64_t bytes;		/* metadata bytes written */
};

/*
 * Writes the image IMG (opened from a dump with bytes, not --no-data) to
 * PATH, through a temporary file beside it that is renamed into place only
 * when complete.  Without OPTS->force an existing PATH is an error and is
 * left as it was; on any failure nothing is left behind.
 */
int q2e_restore_write(struct q2e_image *img, const char *path,
		      const struct q2e_restore_options *opts,
		      struct q2e_restore_result *res, struct q2e_error *err);

/*
 * Writes the image IMG to FD (a regular file or a memfd: emptied, cut to
 * the image's size and written at the image's offsets; the caller closes
 * it), NAME naming it in messages.  FD is neither checked against the files
 * IMG reads nor replaced: on failure it holds an incomplete image.  The fuzz
 * targets restore to memory with it.
 */
int q2e_restore_write_fd(struct q2e_image *img, int fd, const char *name,
			 struct q2e_restore_result *res, struct q2e_error *err);

#endif

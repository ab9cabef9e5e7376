/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the emitters share: the output file of an image's model. */
#include "emit.h"

int q2e_emit_open(const struct q2e_image *img, struct q2e_outfile *out,
		  const char *path, struct q2e_error *err)
{
	if (q2e_image_reads_file(img, path))
		return q2e_error_set(err, Q2E_EUSAGE,
				     "'%s' is the input file; refusing to write over it",
				     path);
	return q2e_outfile_open(out, path, err);
}

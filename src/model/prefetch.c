/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * After the walk, the model knows every region the views will read; it
 * hands their ranges to the byte source, which fetches them ahead of the
 * reads (src/source/readahead.c).  Views read only through the model, so
 * this is the one place that knows what comes next.
 */
#include <stdlib.h>

#include "walk.h"

int walk_plan_reads(struct walk *w)
{
	struct q2e_image *img = w->img;
	struct q2e_extent *ranges;
	size_t n = 0;
	int ret;

	if (!img->nregions)
		return 0;
	ranges = malloc(img->nregions * sizeof(*ranges));
	if (!ranges)
		return q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
	/* Regions are sorted by offset; only what the file holds is read. */
	for (size_t i = 0; i < img->nregions; i++)
		if (img->regions[i].avail)
			ranges[n++] = (struct q2e_extent){
				img->regions[i].offset, img->regions[i].avail
			};
	ret = q2e_source_plan_reads(img->src, ranges, n, w->err);
	free(ranges);
	return ret;
}

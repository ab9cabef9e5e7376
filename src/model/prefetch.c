/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * After the walk, the model knows every region the views will read; it
 * hands their ranges to the byte source, which fetches them ahead of the
 * reads (src/source/readahead.c).  Views read only through the model, so
 * this is the one place that knows what comes next.
 */
#include <stdlib.h>

#include "walk.h"

/* The regions' ranges, which are sorted by offset; only what the file
 * holds is read. */
static int plan_ranges(void *arg, struct q2e_extent **out, size_t *n)
{
	const struct q2e_image *img = arg;
	struct q2e_extent *ranges;

	*n = 0;
	ranges = malloc((img->nregions ? img->nregions : 1) * sizeof(*ranges));
	if (!ranges)
		return -1;
	for (size_t i = 0; i < img->nregions; i++)
		if (img->regions[i].avail)
			ranges[(*n)++] = (struct q2e_extent){
				img->regions[i].offset, img->regions[i].avail
			};
	*out = ranges;
	return 0;
}

/* The image outlives its source's reads: it closes the source. */
int walk_plan_reads(struct walk *w)
{
	if (!w->img->nregions)
		return 0;
	return q2e_source_plan_reads(w->img->src, plan_ranges, w->img, w->err);
}

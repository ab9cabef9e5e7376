/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * After the walk, the model knows every region the views will read; it
 * hands their ranges to the byte source, which fetches them ahead of the
 * reads (src/source/readahead.c).  Views read only through the model, so
 * this is the one place that knows what comes next.
 */
#include "walk.h"

/* Region I's bytes in the file: the regions are sorted by offset. */
static struct q2e_extent region_range(const void *arg, size_t i)
{
	const struct q2e_region *r = &((const struct q2e_image *)arg)->regions[i];

	return (struct q2e_extent){ r->offset, r->avail };
}

/* The image outlives its source's reads: it closes the source. */
int walk_plan_reads(struct walk *w)
{
	return q2e_source_plan_reads(w->img->src, region_range, w->img,
				     w->img->nregions, w->err);
}

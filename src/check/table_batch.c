/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Small L2 tables and refcount blocks read ahead from the page cache, 64
 * at a time, for check_l2_regions() and compare_refcounts()
 * (check_impl.h).
 *
 * An image of 512-byte clusters has an L2 table between each 32 KiB of
 * data: 32,768 tables of 512 bytes for 1 GiB, and 8,192 refcount blocks,
 * each a read of its own.  Where entering the kernel is dear (page table
 * isolation, about 1 us a call), the calls were most of a warm check
 * (110-146 ms; 49-55 now, where a plain read of the same bytes takes
 * 70-77).  The next 64 are asked of the page cache in one submission (the
 * model's q2e_read_ahead, io_uring where the kernel has it) and each is
 * counted or compared where it was read.  A range the cache
 * lacks is read as usual, with the read plan's advice; after a batch that
 * found the cache short, the next BACKOFF are read as usual too, so that
 * a cold check does not ask the cache for each twice.
 */
#include <stdlib.h>

#include "check_impl.h"

/* Ranges read as usual after a batch that found the cache short. */
#define BACKOFF 256
/* Steps looked at for one batch: those with nothing to read ahead (a
 * refcount block among the tables, a larger table) are passed over. */
#define SCAN_MAX 256

struct table_batch {
	struct q2e_read_ahead *ra;
	size_t skip;	/* tables to read as usual before the next batch */
};

static bool batchable(struct q2e_extent e)
{
	return e.length && e.length <= Q2E_READ_AHEAD_MAX;
}

/* The steps from I to END, for the reads made ahead. */
struct steps_ahead {
	struct checker *c;
	table_ahead_fn ahead;
	size_t i, end;
};

static int next_step(void *ctx, struct q2e_extent *e)
{
	struct steps_ahead *a = ctx;

	if (a->i >= a->end)
		return Q2E_AHEAD_END;
	*e = a->ahead(a->c, a->i++);
	return batchable(*e) ? Q2E_AHEAD_READ : Q2E_AHEAD_PASS;
}

const uint8_t *table_batch_take(struct checker *c, struct table_batch **bp,
				table_ahead_fn ahead, size_t i, size_t steps)
{
	struct q2e_extent e = ahead(c, i);
	struct table_batch *b = *bp;
	const uint8_t *bytes = NULL;
	int took;

	if (!batchable(e))
		return NULL;
	if (!b) {
		if (!(b = *bp = calloc(1, sizeof(*b))))
			return NULL;	/* read as usual */
		b->ra = q2e_read_ahead_new(c->img);
	}
	if (!b->ra)
		return NULL;
	took = q2e_read_ahead_find(b->ra, e.offset, (size_t)e.length, &bytes);
	if (took == 0) {
		struct steps_ahead a = {
			c, ahead, i, steps - i > SCAN_MAX ? i + SCAN_MAX : steps
		};

		if (b->skip) {
			b->skip--;
			return NULL;
		}
		if (!q2e_read_ahead_fill(b->ra, next_step, &a))
			b->skip = BACKOFF;
		took = q2e_read_ahead_find(b->ra, e.offset, (size_t)e.length,
					   &bytes);
	}
	return took > 0 ? bytes : NULL;
}

void table_batch_free(struct table_batch *b)
{
	if (!b)
		return;
	q2e_read_ahead_free(b->ra);
	free(b);
}

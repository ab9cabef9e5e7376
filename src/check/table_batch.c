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
 * found the cache short, the next 256 are read as usual too, so that a
 * cold check does not ask the cache for each twice.
 */
#include "check_impl.h"

/* Steps looked at for one batch: those with nothing to read ahead (a
 * refcount block among the tables, a larger table) are passed over. */
#define SCAN_MAX 256

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

const uint8_t *table_batch_take(struct checker *c,
				struct q2e_read_ahead **rap,
				table_ahead_fn ahead, size_t i, size_t steps)
{
	struct q2e_extent e = ahead(c, i);
	struct steps_ahead a = {
		c, ahead, i, steps - i > SCAN_MAX ? i + SCAN_MAX : steps
	};

	if (!batchable(e))
		return NULL;
	if (!*rap)	/* NULL again without memory: read as usual */
		*rap = q2e_read_ahead_new(c->img);
	return q2e_read_ahead_take(*rap, e.offset, (size_t)e.length,
				   next_step, &a);
}

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
 * model's q2e_image_read_cached_many(), io_uring where the kernel has it)
 * and each is counted or compared where it was read.  A range the cache
 * lacks is read as usual, with the read plan's advice; after a batch that
 * found the cache short, the next BACKOFF are read as usual too, so that
 * a cold check does not ask the cache for each twice.
 */
#include <stdlib.h>

#include "check_impl.h"

#define READS 64
#define BYTES (256U << 10)
/* Larger tables cost more to read than to enter the kernel for. */
#define TABLE_MAX (8U << 10)
#define BACKOFF 256
/* Steps looked at for one batch: those with nothing to read ahead (a
 * refcount block among the tables, a larger table) are passed over. */
#define SCAN_MAX (4 * READS)

struct table_batch {
	struct q2e_image_batch *ib;	/* NULL: one read at a time */
	struct q2e_cached_read r[READS];
	size_t n;	/* reads made ahead */
	size_t cur;	/* the first that may still be taken */
	size_t skip;	/* tables to read as usual before the next batch */
	uint8_t buf[BYTES];
};

static bool batchable(struct q2e_extent e)
{
	return e.length && e.length <= TABLE_MAX;
}

/* The small regions AHEAD names from step I on: false if the cache
 * lacked any. */
static bool fill(struct checker *c, struct table_batch *b,
		 table_ahead_fn ahead, size_t i, size_t steps)
{
	size_t bytes = 0, end = steps - i > SCAN_MAX ? i + SCAN_MAX : steps;
	size_t missed = 0;

	b->n = b->cur = 0;
	for (; i < end && b->n < READS; i++) {
		struct q2e_extent e = ahead(c, i);

		if (!batchable(e))
			continue;
		if (e.length > BYTES - bytes)
			break;
		b->r[b->n++] = (struct q2e_cached_read){
			.off = e.offset, .buf = b->buf + bytes,
			.len = (uint32_t)e.length };
		bytes += (size_t)e.length;
	}
	q2e_image_read_cached_many(c->img, b->ib, b->r, b->n);
	/* io_uring's reads without waiting fail now and then on pages the
	 * cache holds (a readahead mark): the cache is short only where
	 * the first read, or most of them, failed. */
	for (size_t k = 0; k < b->n; k++)
		missed += !b->r[k].ok;
	return b->n && b->r[0].ok && missed * 2 <= b->n;
}

/* The read made ahead of E, from CUR on; or N. */
static size_t find(const struct table_batch *b, struct q2e_extent e)
{
	for (size_t k = b->cur; k < b->n; k++)
		if (b->r[k].off == e.offset && b->r[k].len == e.length)
			return k;
	return b->n;
}

const uint8_t *table_batch_take(struct checker *c, struct table_batch **bp,
				table_ahead_fn ahead, size_t i, size_t steps)
{
	struct q2e_extent e = ahead(c, i);
	struct table_batch *b = *bp;
	size_t k;

	if (!batchable(e))
		return NULL;
	if (!b) {
		if (!(b = *bp = calloc(1, sizeof(*b))))
			return NULL;	/* read as usual */
		b->ib = q2e_image_batch_open(c->img);
	}
	k = find(b, e);
	if (k == b->n) {
		if (b->skip) {
			b->skip--;
			return NULL;
		}
		if (!fill(c, b, ahead, i, steps))
			b->skip = BACKOFF;
		k = find(b, e);
		if (k == b->n)
			return NULL;
	}
	b->cur = k + 1;
	return b->r[k].ok ? b->r[k].buf : NULL;
}

void table_batch_free(struct table_batch *b)
{
	if (!b)
		return;
	q2e_image_batch_close(b->ib);
	free(b);
}

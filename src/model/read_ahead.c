/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Small reads made ahead from the page cache, many at a time
 * (q2e_read_ahead_*() in model.h).
 *
 * With the image in the page cache and a system call dear (page table
 * isolation: about 1 us to enter the kernel), a dump or check of the
 * 1 GiB image of 512-byte clusters was mostly its 34,000-41,000 reads of
 * 512 bytes.  A view names the next small ranges it will read; they are
 * asked of the cache together (q2e_image_read_cached_many(): one io_uring
 * submission where the kernel has it) into a buffer of the read-ahead's
 * own, and each is then taken from there: a copy of 512 bytes costs far
 * less than a call.  A range larger than Q2E_READ_AHEAD_MAX is not read
 * ahead: its copy would cost more than the call it saves.
 */
#include <stdlib.h>

#include "qcow2elf/model.h"

/* Ranges read at once, and the bytes they may hold: 64 tables of 512
 * bytes take half.  With 256 KiB, the two copying threads' buffers (which
 * calloc() clears whole when it reuses freed memory) took dump of 68,000
 * sections past qemu-img check's peak (t_dump_scale). */
#define READS 64
#define BYTES (64U << 10)
/* Ranges q2e_read_ahead_take() leaves to be read as usual after a batch
 * that found the cache short, so that a cold run does not ask the cache
 * for each twice. */
#define BACKOFF 256

struct q2e_read_ahead {
	struct q2e_image *img;
	struct q2e_image_batch *ib;	/* NULL: one read at a time */
	struct q2e_cached_read r[READS];
	size_t n;	/* reads made ahead */
	size_t cur;	/* the first that may still be found */
	size_t skip;	/* q2e_read_ahead_take(): left to the caller */
	uint8_t buf[BYTES];
};

struct q2e_read_ahead *q2e_read_ahead_new(struct q2e_image *img)
{
	/* Zeroed: the kernel fills BUF behind valgrind's back, which then
	 * takes its bytes for what they were at the start. */
	struct q2e_read_ahead *ra = calloc(1, sizeof(*ra));

	if (!ra)
		return NULL;
	ra->img = img;
	ra->ib = q2e_image_batch_open(img);
	return ra;
}

void q2e_read_ahead_free(struct q2e_read_ahead *ra)
{
	if (!ra)
		return;
	q2e_image_batch_close(ra->ib);
	free(ra);
}

bool q2e_read_ahead_fill(struct q2e_read_ahead *ra, q2e_ahead_fn next,
			 void *ctx)
{
	size_t bytes = 0, missed = 0;
	struct q2e_extent e;
	int what;

	ra->n = ra->cur = 0;
	while (ra->n < READS && (what = next(ctx, &e)) != Q2E_AHEAD_END) {
		if (what == Q2E_AHEAD_PASS)
			continue;
		if (!e.length || e.length > Q2E_READ_AHEAD_MAX ||
		    e.length > BYTES - bytes)
			break;
		ra->r[ra->n++] = (struct q2e_cached_read){
			.off = e.offset, .buf = ra->buf + bytes,
			.len = (uint32_t)e.length };
		bytes += (size_t)e.length;
	}
	if (!ra->n)
		return false;
	q2e_image_read_cached_many(ra->img, ra->ib, ra->r, ra->n);
	/* io_uring's reads without waiting fail now and then on pages the
	 * cache holds (a readahead mark): the cache is short only where
	 * the first read, or most of them, failed. */
	for (size_t k = 0; k < ra->n; k++)
		missed += !ra->r[k].ok;
	return ra->r[0].ok && missed * 2 <= ra->n;
}

int q2e_read_ahead_find(struct q2e_read_ahead *ra, uint64_t off, size_t len,
			const uint8_t **bytes)
{
	for (size_t k = ra->cur; k < ra->n; k++) {
		const struct q2e_cached_read *r = &ra->r[k];

		if (r->off > off || off - r->off > r->len ||
		    len > r->len - (off - r->off))
			continue;
		ra->cur = k;
		if (!r->ok)
			return -1;
		*bytes = r->buf + (off - r->off);
		return 1;
	}
	return 0;
}

const uint8_t *q2e_read_ahead_take(struct q2e_read_ahead *ra, uint64_t off,
				   size_t len, q2e_ahead_fn next, void *ctx)
{
	const uint8_t *bytes = NULL;
	int took;

	if (!ra || !len || len > Q2E_READ_AHEAD_MAX)
		return NULL;
	took = q2e_read_ahead_find(ra, off, len, &bytes);
	if (took == 0) {
		if (ra->skip) {
			ra->skip--;
			return NULL;
		}
		if (!q2e_read_ahead_fill(ra, next, ctx))
			ra->skip = BACKOFF;
		took = q2e_read_ahead_find(ra, off, len, &bytes);
	}
	return took > 0 ? bytes : NULL;
}

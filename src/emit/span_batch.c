/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Small spans read ahead, many at a time (span_batch.h).
 *
 * With the image in the page cache, a dump of the 1 GiB image of 512-byte
 * clusters is mostly its 34,000 reads of 512 bytes, each a system call.
 * The copying threads ask the model for the next 64 small spans at once
 * (q2e_image_read_cached_many(), one io_uring submission where the kernel
 * has it) into a buffer of their own and take each span from there: a
 * copy of 512 bytes costs far less than entering the kernel.  A span
 * larger than SPAN_MAX is read alone, straight into the output's buffer:
 * its copy would cost more than the call it saves.
 */
#include <stdlib.h>
#include <string.h>

#include "span_batch.h"

/* Spans read at once, and the bytes they may hold. */
#define READS 64
#define BYTES (256U << 10)
/* A span's read costs about as much as copying 8 KiB (span_threads.c):
 * larger ones are read alone. */
#define SPAN_MAX (8U << 10)

struct q2e_span_batch {
	struct q2e_image *img;
	struct q2e_image_batch *ib;	/* NULL: one read at a time */
	uint8_t buf[BYTES];
	struct q2e_cached_read r[READS];
	size_t n;	/* reads made ahead */
	size_t cur;	/* the first that may still be taken */
};

struct q2e_span_batch *q2e_span_batch_new(struct q2e_image *img)
{
	struct q2e_span_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	/* Zeroed: the kernel fills BUF behind valgrind's back, which then
	 * takes its bytes for what they were at the start. */
	b->img = img;
	b->ib = q2e_image_batch_open(img);
	return b;
}

void q2e_span_batch_free(struct q2e_span_batch *b)
{
	if (!b)
		return;
	q2e_image_batch_close(b->ib);
	free(b);
}

/* The spans of BY from index FROM on, as long as they are small. */
static void fill(struct q2e_span_batch *b, const struct q2e_by_addr *by,
		 size_t from)
{
	struct q2e_span sp;
	size_t next = from, bytes = 0;

	b->n = b->cur = 0;
	while (b->n < READS && q2e_span_next(by, &next, &sp)) {
		uint64_t len = sp.end - sp.start;

		if (len > SPAN_MAX || len > BYTES - bytes)
			break;
		b->r[b->n++] = (struct q2e_cached_read){
			.off = sp.start, .buf = b->buf + bytes,
			.len = (uint32_t)len };
		bytes += (size_t)len;
	}
	if (b->n)
		q2e_image_read_cached_many(b->img, b->ib, b->r, b->n);
}

/* The read made ahead that holds [AT, AT + LEN), from CUR on; or N. */
static size_t find(const struct q2e_span_batch *b, uint64_t at, size_t len)
{
	size_t k = b->cur;

	while (k < b->n && b->r[k].off + b->r[k].len <= at)
		k++;
	if (k < b->n && b->r[k].off <= at &&
	    len <= b->r[k].off + b->r[k].len - at)
		return k;
	return b->n;
}

int q2e_span_batch_take(struct q2e_span_batch *b, const struct q2e_by_addr *by,
			const struct q2e_span *sp, uint64_t at, uint8_t *p,
			size_t len)
{
	size_t k;

	/* A large span is read alone: not a fill (and a walk of all its
	 * sections) for each of its chunks. */
	if (sp->end - sp->start > SPAN_MAX)
		return 0;
	k = find(b, at, len);
	if (k == b->n) {
		fill(b, by, sp->first);
		k = find(b, at, len);
		if (k == b->n)
			return 0;
	}
	b->cur = k;
	if (!b->r[k].ok)
		return -1;
	memcpy(p, b->r[k].buf + (at - b->r[k].off), len);
	return 1;
}

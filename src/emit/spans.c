/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The region sections' bytes, each byte of the image once (spans.h). */
#include <string.h>

#include "qcow2elf/array.h"
#include "spans.h"

/*
 * A run of zeros at least this long at the end of a span is left as a
 * hole: shorter ones cost more in system calls than they save in blocks.
 */
#define HOLE_MIN (16U << 10)
/* Which parts of a chunk hold something is kept at this granularity, so
 * that many sections over one chunk do not each scan all of it. */
#define GRAIN 4096U
#define GRAINS (Q2E_SPAN_CHUNK / GRAIN)

bool q2e_span_next(const struct q2e_by_addr *by, size_t *i,
		   struct q2e_span *sp)
{
	size_t k = *i, n = by->n;

	while (k < n && q2e_by(by, k)->zero)
		k++;
	if (k == n) {
		*i = n;
		return false;
	}
	sp->first = k;
	sp->start = q2e_by(by, k)->region->offset;
	sp->end = sp->start + q2e_by(by, k)->region->avail;
	for (k++; k < n; k++) {
		const struct q2e_region *r = q2e_by(by, k)->region;

		if (q2e_by(by, k)->zero)
			continue;
		if (r->offset > sp->end)
			break;
		if (r->offset + r->avail > sp->end)
			sp->end = r->offset + r->avail;
	}
	sp->last = k;
	*i = k;
	return true;
}

/* How many bytes at the end of P[0..N) are zeros. */
static size_t zero_tail(const uint8_t *p, size_t n)
{
	size_t k = n;

	while (k >= 8) {
		uint64_t v;

		memcpy(&v, p + k - 8, 8);
		if (v)
			break;
		k -= 8;
	}
	while (k && !p[k - 1])
		k--;
	return n - k;
}

/* One chunk of a span in memory: its bytes and which grains hold any. */
struct chunk {
	const uint8_t *p;
	uint64_t at;		/* image offset of p[0] */
	size_t len;
	bool zero;		/* all of it */
	bool grain_data[GRAINS];	/* whole grains only */
};

static void chunk_scan(struct chunk *ch)
{
	ch->zero = q2e_all_zero(ch->p, ch->len);
	for (size_t g = 0; !ch->zero && (g + 1) * GRAIN <= ch->len; g++)
		ch->grain_data[g] = !q2e_all_zero(ch->p + g * GRAIN, GRAIN);
}

/* Whether the image bytes [X, Y), inside the chunk, are all zeros. */
static bool chunk_range_zero(const struct chunk *ch, uint64_t x, uint64_t y)
{
	size_t lo = (size_t)(x - ch->at), hi = (size_t)(y - ch->at);
	size_t g0 = (lo + GRAIN - 1) / GRAIN, g1 = hi / GRAIN;

	if (ch->zero)
		return true;
	if (g0 >= g1)
		return q2e_all_zero(ch->p + lo, hi - lo);
	if (!q2e_all_zero(ch->p + lo, g0 * GRAIN - lo))
		return false;
	for (size_t g = g0; g < g1; g++)
		if (ch->grain_data[g])
			return false;
	return q2e_all_zero(ch->p + g1 * GRAIN, hi - g1 * GRAIN);
}

/* The spans of BY from NEXT on, for the reads made ahead. */
struct spans_ahead {
	const struct q2e_by_addr *by;
	size_t next;
};

static int next_span(void *ctx, struct q2e_extent *e)
{
	struct spans_ahead *a = ctx;
	struct q2e_span sp;

	if (!q2e_span_next(a->by, &a->next, &sp))
		return Q2E_AHEAD_END;
	*e = (struct q2e_extent){ sp.start, sp.end - sp.start };
	return Q2E_AHEAD_READ;
}

/*
 * [AT, AT + LEN) of SP from the copier's reads made ahead: 1 when read,
 * -1 when the page cache lacked it, 0 when not read ahead.  Missing, the
 * spans from SP on are read ahead first, as far as they are small: the
 * next 64 spans of a table each cost one call, not 64.  A span larger than
 * Q2E_READ_AHEAD_MAX is read alone, straight into the output's buffer,
 * and looked for in none (a fill for each of its chunks was quadratic).
 */
static int take_ahead(struct q2e_region_copier *c,
		      const struct q2e_by_addr *by, const struct q2e_span *sp,
		      uint64_t at, uint8_t *p, size_t len)
{
	const uint8_t *bytes;
	int took;

	if (!c->ahead || sp->end - sp->start > Q2E_READ_AHEAD_MAX)
		return 0;
	took = q2e_read_ahead_find(c->ahead, at, len, &bytes);
	if (took == 0) {
		struct spans_ahead a = { by, sp->first };

		q2e_read_ahead_fill(c->ahead, next_span, &a);
		took = q2e_read_ahead_find(c->ahead, at, len, &bytes);
	}
	if (took > 0)
		memcpy(p, bytes, len);
	return took;
}

/*
 * Reads the chunk.  A failed read is made again a section at a time, for
 * the message to name the structure (as reading a region does).
 */
static int chunk_read(struct q2e_region_copier *c,
		      const struct q2e_by_addr *by,
		      const struct q2e_span *sp, uint8_t *p, uint64_t at,
		      size_t len)
{
	uint64_t end = at + len;
	int ret;

	if (c->cached_only) {
		int took = take_ahead(c, by, sp, at, p, len);

		if (took == 0)
			took = q2e_image_read_cached(c->img, at, p, len) ? 1
									 : -1;
		return took > 0 ? 0 : Q2E_SPAN_UNCACHED;
	}
	ret = q2e_image_read_bytes(c->img, at, p, len, c->err);

	for (size_t k = sp->first; ret < 0 && k < sp->last; k++) {
		const struct q2e_region *r = q2e_by(by, k)->region;
		uint64_t x = r->offset > at ? r->offset : at;
		uint64_t y = r->offset + r->avail < end ? r->offset + r->avail
							: end;

		if (r->offset >= end)
			break;
		if (q2e_by(by, k)->zero || x >= y)
			continue;
		if (q2e_image_read_region_part(c->img, r, x - r->offset,
					       p + (x - at), (size_t)(y - x),
					       c->err) < 0)
			return c->err->code ? c->err->code : Q2E_EIO;
	}
	return ret < 0 ? c->err->code : 0;
}

/*
 * The sections of SP over CH that are still in question, ACTIVE[0..*N),
 * after taking in those that start in it: a section with a byte that is
 * not zero leaves, so does one that ends here, marked zero.
 */
static void judge_sections(const struct q2e_by_addr *by,
			   const struct q2e_span *sp, const struct chunk *ch,
			   size_t *next, struct q2e_out_section **active,
			   size_t *n, bool *found)
{
	uint64_t end = ch->at + ch->len;

	for (; *next < sp->last && q2e_by(by, *next)->region->offset < end; ++*next)
		if (!q2e_by(by, *next)->zero)
			active[(*n)++] = q2e_by(by, *next);
	for (size_t j = 0; j < *n;) {
		struct q2e_out_section *s = active[j];
		const struct q2e_region *r = s->region;
		uint64_t x = r->offset > ch->at ? r->offset : ch->at;
		uint64_t y = r->offset + r->avail < end ? r->offset + r->avail
							: end;

		bool zero = chunk_range_zero(ch, x, y);

		if (zero && y < r->offset + r->avail) {
			j++;	/* in question until its end */
			continue;
		}
		if (zero) {
			s->zero = true;
			*found = true;
		}
		active[j] = active[--*n];
	}
}

/*
 * Whether the next Q2E_HOLE_ASK_MIN bytes of SP from AT lie in a hole of
 * the image, to be left as one in the output without reading them: a
 * table of 2 MiB in a hole was read (65,537 of them, 128 GiB of zeros).
 * Not where a redaction writes a placeholder into them.
 */
static bool hole_ahead(struct q2e_region_copier *c, const struct q2e_span *sp,
		       uint64_t at)
{
	return c->skip_zeros &&
	       !q2e_redaction_writes(c->redact, at, Q2E_HOLE_ASK_MIN) &&
	       sp->end - at >= Q2E_HOLE_ASK_MIN &&
	       q2e_image_holds_none(c->img, at, Q2E_HOLE_ASK_MIN);
}

int q2e_span_stream(struct q2e_region_copier *c, struct q2e_seqwriter *w,
		    const struct q2e_by_addr *by, const struct q2e_span *sp,
		    struct q2e_out_section **active, bool *found)
{
	size_t step = w ? Q2E_SPAN_CHUNK
			: (c->buf_size < Q2E_SPAN_CHUNK ? c->buf_size
						      : Q2E_SPAN_CHUNK);
	size_t next = sp->first, nactive = 0;
	uint64_t tail = 0;	/* zeros at the end of what was read */
	struct chunk ch;

	*found = false;
	for (uint64_t at = sp->start; at < sp->end; at += ch.len) {
		uint8_t *p;
		int ret;

		if (w && hole_ahead(c, sp, at)) {
			/* Zeros not read, left as a hole of the output. */
			ch = (struct chunk){ .at = at, .len = Q2E_HOLE_ASK_MIN,
					     .zero = true };
			judge_sections(by, sp, &ch, &next, active, &nactive,
				       found);
			c->bytes += ch.len;
			ret = q2e_seqwriter_skip(w, ch.len);
			if (ret < 0)
				return ret;
			tail = 0;
			continue;
		}
		ch.at = at;
		ch.len = sp->end - at < step ? (size_t)(sp->end - at) : step;
		/* Only the first Q2E_SPAN_CHUNK bytes of the writer's buffer
		 * are ever used: the pages of the rest are not touched, and
		 * two copying threads' writers cost half the memory. */
		if (w && w->len + ch.len > Q2E_SPAN_CHUNK &&
		    q2e_seqwriter_flush(w) < 0)
			return c->err->code ? c->err->code : Q2E_EOUTPUT;
		p = w ? q2e_seqwriter_reserve(w, ch.len)
		      : q2e_region_copier_buffer(c);
		if (!p)
			return c->err->code ? c->err->code : Q2E_EOUTPUT;
		ret = chunk_read(c, by, sp, p, at, ch.len);
		if (ret != 0) {
			if (w)	/* no garbage written where it was to go */
				q2e_seqwriter_unput(w, ch.len);
			return ret;
		}
		q2e_redaction_apply(c->redact, at, p, ch.len);
		ch.p = p;
		chunk_scan(&ch);
		judge_sections(by, sp, &ch, &next, active, &nactive, found);
		c->bytes += ch.len;
		if (!w)
			continue;
		if (ch.zero && c->skip_zeros) {
			/* A table in a hole of the image: a hole here too. */
			q2e_seqwriter_unput(w, ch.len);
			ret = q2e_seqwriter_skip(w, ch.len);
			if (ret < 0)
				return ret;
			tail = 0;
			continue;
		}
		tail = ch.zero ? tail + ch.len : zero_tail(p, ch.len);
	}
	if (w && c->skip_zeros && tail >= HOLE_MIN) {
		size_t held = tail < w->len ? (size_t)tail : w->len;

		q2e_seqwriter_unput(w, held);
		return q2e_seqwriter_skip(w, held);
	}
	return 0;
}

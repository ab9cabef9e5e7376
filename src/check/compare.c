/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * compare_refcounts() and check_oflag_copied() of QEMU 7.2
 * (block/qcow2-refcount.c): the stored refcounts against the counted
 * references, cluster by cluster, and the COPIED flags against the stored
 * refcounts.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "check/check_impl.h"
#include "qcow2elf/array.h"
#include "qcow2elf/hashmap.h"

/* qcow2_get_refcount() fails on a misaligned or unreadable block. */
static bool refblock_unreadable(const struct checker *c, uint64_t ti)
{
	uint64_t off;

	if (ti >= c->img->nreftable)
		return false;
	off = c->img->reftable[ti] & ~QCOW2_REFTABLE_RESERVED_MASK;
	return off && ((off & (c->cs - 1)) || unreadable(off, c->cs));
}

#ifdef __SSE2__
#include <emmintrin.h>

/* Clusters [0, n) with n a multiple of 16: a vector of 0 if every one
 * agrees.  The byte counters are spread into big-endian 16-bit lanes
 * rather than the block's lanes swapped, and the lanes' "stored is 1"
 * packed back to bytes beside the COPIED bits. */
static bool agrees16(const uint8_t *counts, const uint8_t *block, uint64_t n)
{
	const __m128i zero = _mm_setzero_si128();
	const __m128i mask = _mm_set1_epi8((char)CNT_MASK);
	const __m128i big = _mm_set1_epi8((char)CNT_BIG);
	const __m128i copied = _mm_set1_epi8((char)CNT_COPIED);
	const __m128i not_copied = _mm_set1_epi8((char)CNT_NOT_COPIED);
	const __m128i one_be = _mm_set1_epi16(0x0100);
	__m128i bad = zero;

	for (uint64_t i = 0; i < n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(counts + i));
		__m128i s0 = _mm_loadu_si128((const __m128i *)(const void *)(block + 2 * i));
		__m128i s1 = _mm_loadu_si128((const __m128i *)(const void *)(block + 2 * i + 16));
		__m128i cnt = _mm_and_si128(v, mask);
		__m128i one = _mm_packs_epi16(_mm_cmpeq_epi16(s0, one_be),
					      _mm_cmpeq_epi16(s1, one_be));

		bad = _mm_or_si128(bad, _mm_xor_si128(s0, _mm_unpacklo_epi8(zero, cnt)));
		bad = _mm_or_si128(bad, _mm_xor_si128(s1, _mm_unpackhi_epi8(zero, cnt)));
		bad = _mm_or_si128(bad, _mm_cmpeq_epi8(cnt, big));
		bad = _mm_or_si128(bad, _mm_andnot_si128(one, _mm_and_si128(v, copied)));
		bad = _mm_or_si128(bad, _mm_and_si128(one, _mm_and_si128(v, not_copied)));
	}
	return _mm_movemask_epi8(_mm_cmpeq_epi8(bad, zero)) == 0xffff;
}
#else
static bool agrees16(const uint8_t *counts, const uint8_t *block, uint64_t n)
{
	uint16_t bad = 0;

	for (uint64_t i = 0; i < n; i += 16) {
		uint16_t s[16];

		memcpy(s, block + 2 * i, sizeof(s));
		for (unsigned t = 0; t < 16; t++) {
			uint16_t v = counts[i + t];
			uint16_t cnt = v & CNT_MASK;
			uint16_t stored = qcow2_be16((const uint8_t *)&s[t]);
			uint16_t one = (uint16_t)-(stored == 1);

			bad |= (uint16_t)(stored ^ cnt) |
			       (uint16_t)-(cnt == CNT_BIG) |
			       (uint16_t)(v & CNT_COPIED & ~one) |
			       (uint16_t)(v & CNT_NOT_COPIED & one);
		}
	}
	return !bad;
}
#endif

/*
 * The common case of a 16-bit refcount BLOCK for clusters [start, end):
 * every stored refcount equals the count, no count is big and no COPIED
 * flag disagrees.  Sixteen at a time, without a branch.  If anything is
 * off, the caller's loop finds and reports it.
 */
static bool block_agrees16(const struct checker *c, const uint8_t *block,
			   uint64_t start, uint64_t end, uint64_t *highest)
{
	const uint8_t *counts = c->counts + start;
	uint64_t n = end - start, i = n & ~(uint64_t)15;
	bool bad = !agrees16(counts, block, i);

	for (; i < n; i++) {
		uint16_t v = counts[i], count = v & CNT_MASK;
		unsigned stored = qcow2_be16(block + 2 * i);

		bad |= (stored != count) | (count == CNT_BIG) |
		       ((v & CNT_COPIED) && stored != 1) |
		       ((v & CNT_NOT_COPIED) && stored == 1);
	}
	if (bad)
		return false;
	for (i = n; i-- > 0;)
		if (counts[i] & CNT_MASK) {
			*highest = start + i;
			break;
		}
	return true;
}

/* The index of the region being compared among the model's, or SIZE_MAX
 * (none, or a region made for the comparison alone). */
static size_t region_slot(const struct checker *c)
{
	const struct q2e_region *r = c->cmp_region;

	if (!r || r < c->img->regions || r >= c->img->regions + c->img->nregions)
		return SIZE_MAX;
	return (size_t)(r - c->img->regions);
}

/* A copy of BLOCK for the result, one for each region compared. */
static const uint8_t *block_copy(struct checker *c, const uint8_t *block)
{
	struct check_result_impl *res = (struct check_result_impl *)c->res;
	size_t ri = region_slot(c);
	struct block_copy *copy;

	if (ri != SIZE_MAX) {
		if (!c->copy_of &&
		    !(c->copy_of = calloc(c->img->nregions, sizeof(*c->copy_of))))
			return NULL;
		if (c->copy_of[ri])
			return c->copy_of[ri];
	}
	copy = malloc(sizeof(*copy) + (size_t)c->cs);
	if (!copy)
		return NULL;
	memcpy(copy->bytes, block, (size_t)c->cs);
	copy->next = res->copies;
	res->copies = copy;
	if (ri != SIZE_MAX)
		c->copy_of[ri] = copy->bytes;
	return copy->bytes;
}

/*
 * The lines of clusters [start, end) compared with BLOCK (NULL: none),
 * or whose block cannot be read (UNREADABLE): one record, made into
 * lines when they are written.
 */
static int add_compare_lines(struct checker *c, const uint8_t *block,
			     uint64_t start, uint64_t end, bool unreadable)
{
	struct check_result_impl *res = (struct check_result_impl *)c->res;
	const uint8_t *copy = NULL;

	if (block && !(copy = block_copy(c, block)))
		return nomem(c);
	if (q2e_grow(res->compares, res->compares_cap, res->ncompares + 1) < 0)
		return nomem(c);
	res->compares[res->ncompares] = (struct compare_lines){
		.start = start, .end = end, .block = copy,
		.unreadable = unreadable,
	};
	res->refcount_order = c->img->hdr.refcount_order;
	res->cluster_size = c->cs;
	return add_compare_line(c, res->ncompares++);
}

void keep_counts(struct checker *c, bool own)
{
	struct check_result_impl *res = (struct check_result_impl *)c->res;

	res->counts = c->counts;
	res->counts_cap = c->cap;
	res->big = c->big;
	res->counts_owned = own;
	if (own) {
		c->counts = NULL;
		c->cap = c->nb_clusters = 0;
		c->big = (struct big_counts){ 0 };
	}
}

/* Bytes of lines made at once (stderr is unbuffered), and room for one. */
#define LINES_BUF 16384
#define LINE_ROOM 128

/* qemu-img's line for cluster I, whose refcount is STORED, not COMPUTED,
 * into BUF (LINE_ROOM bytes), without its newline: its length. */
static size_t refcount_line(char *buf, uint64_t i, uint64_t stored,
			    uint64_t computed)
{
	int n = snprintf(buf, LINE_ROOM, "%s cluster %" PRIu64 " refcount=%"
			 PRIu64 " reference=%" PRIu64,
			 stored > computed ? "Leaked" : "ERROR", i, stored,
			 computed);

	return n > 0 ? (size_t)n : 0;
}

void write_compare_lines(const struct check_result_impl *res,
			 const struct compare_lines *cmp, FILE *fp)
{
	char buf[LINES_BUF];
	size_t len = 0;

	for (uint64_t i = cmp->start; i < cmp->end; i++) {
		uint64_t stored = 0, computed;
		int n;

		if (cmp->unreadable) {
			n = snprintf(buf + len, LINE_ROOM,
				     "Can't get refcount for cluster %" PRIu64
				     ": Input/output error\n", i);
		} else {
			if (cmp->block)
				stored = qcow2_refcount_get(cmp->block,
							    (size_t)res->cluster_size,
							    res->refcount_order,
							    i - cmp->start);
			computed = count_at(res->counts, &res->big, i);
			if (stored == computed)
				continue;
			n = (int)refcount_line(buf + len, i, stored, computed);
			buf[len + (size_t)n++] = '\n';
		}
		len += n > 0 ? (size_t)n : 0;
		if (len > LINES_BUF - LINE_ROOM) {
			if (fwrite(buf, 1, len, fp) != len)
				return;	/* ferror(fp) tells the caller */
			len = 0;
		}
	}
	fwrite(buf, 1, len, fp);
}

/*
 * Whether a copy of the block being compared costs less than NDIFFER
 * lines kept as text (about LINE_COST bytes each): a block with a cluster
 * or two wrong is kept as lines, one whose copy is made already (named by
 * several refcount table entries), or with many wrong, as a copy.
 */
#define LINE_COST 112
static bool copy_pays(const struct checker *c, uint64_t ndiffer)
{
	size_t ri = region_slot(c);

	if (ri != SIZE_MAX && c->copy_of && c->copy_of[ri])
		return true;
	return ndiffer >= c->cs / LINE_COST;
}

/* The lines of clusters [from, to) against BLOCK, which covers them from
 * START, kept as text (they were counted). */
static int lines_of_block(struct checker *c, const uint8_t *block,
			  uint64_t start, uint64_t from, uint64_t to)
{
	const unsigned order = c->img->hdr.refcount_order;

	for (uint64_t i = from; i < to; i++) {
		uint64_t stored = qcow2_refcount_get(block, (size_t)c->cs, order,
						     i - start);
		uint64_t computed = get_count(c, i);
		char line[LINE_ROOM];
		int ret;

		if (stored == computed)
			continue;
		refcount_line(line, i, stored, computed);
		ret = add_line(c, "%s", line);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/*
 * Clusters [start, end) against BLOCK, the refcount block that covers them
 * from START (NULL: none, every refcount is 0).  *HIGHEST: the last
 * cluster in use so far; c->block_agreed: no refcount differs.  The
 * lines of those that differ are one record (add_compare_lines()), or
 * text lines where there are few.
 */
int compare_block(struct checker *c, const uint8_t *block, uint64_t start,
		  uint64_t end, uint64_t *highest)
{
	const unsigned order = c->img->hdr.refcount_order;
	uint64_t ndiffer = 0, first = 0, last = 0;

	c->block_agreed = true;
	if (block && order == 4 && block_agrees16(c, block, start, end, highest))
		return 0;
	for (uint64_t i = start; i < end; i++) {
		uint64_t stored = 0, computed;
		uint8_t flags = c->counts[i] & ~CNT_MASK;

		if (block && order == 4)
			stored = qcow2_be16(block + 2 * (i - start));
		else if (block)
			stored = qcow2_refcount_get(block, (size_t)c->cs, order,
						    i - start);
		computed = get_count(c, i);
		if (stored || computed)
			*highest = i;
		if ((flags & CNT_COPIED) && stored != 1)
			c->copied_suspect = true;
		if ((flags & CNT_NOT_COPIED) && stored == 1)
			c->copied_suspect = true;
		if (stored == computed)
			continue;
		c->block_agreed = false;
		if (stored > computed)
			c->res->leaks++;
		else
			c->res->corruptions += c->mult;
		if (!ndiffer++)
			first = i;
		last = i;
	}
	if (c->block_agreed)
		return 0;
	if (block && !copy_pays(c, ndiffer))
		return lines_of_block(c, block, start, first, last + 1);
	return add_compare_lines(c, block, start, end, false);
}

/* Clusters [start, end), whose refcount block QEMU cannot read. */
static int unreadable_block(struct checker *c, uint64_t start, uint64_t end)
{
	c->res->check_errors += end - start;
	return add_compare_lines(c, NULL, start, end, true);
}

#ifdef __SSE2__
/* Whether the N 16-bit refcounts of BLOCK (a multiple of 16) are all 0 or
 * 1; if so, BITS holds them, refcount i at bit i % 8 of byte i / 8.
 * Sixteen at a time: each big-endian refcount's low bit is bit 8 of its
 * lane, shifted to the sign bit and packed to a byte's. */
static bool block_bits(const uint8_t *block, uint64_t n, uint8_t *bits)
{
	const __m128i high = _mm_set1_epi16((short)0xfeff);
	__m128i bad = _mm_setzero_si128();

	for (uint64_t i = 0; i < n; i += 16) {
		__m128i a = _mm_loadu_si128((const __m128i *)(const void *)(block + 2 * i));
		__m128i b = _mm_loadu_si128((const __m128i *)(const void *)(block + 2 * i + 16));
		unsigned m;

		bad = _mm_or_si128(bad, _mm_and_si128(_mm_or_si128(a, b), high));
		m = (unsigned)_mm_movemask_epi8(_mm_packs_epi16(_mm_slli_epi16(a, 7),
								_mm_slli_epi16(b, 7)));
		bits[i / 8] = (uint8_t)m;
		bits[i / 8 + 1] = (uint8_t)(m >> 8);
	}
	return _mm_movemask_epi8(_mm_cmpeq_epi8(bad, _mm_setzero_si128())) == 0xffff;
}
#else
static bool block_bits(const uint8_t *block, uint64_t n, uint8_t *bits)
{
	uint64_t high = 0;

	/* Four refcounts a word; the multiply gathers their low bits, at
	 * bits 48, 32, 16 and 0, into bits 48 to 51 (no two partial
	 * products meet, so nothing carries). */
	for (uint64_t i = 0; i < n; i += 8) {
		uint64_t a = qcow2_be64(block + 2 * i);
		uint64_t b = qcow2_be64(block + 2 * i + 8);
		const uint64_t ones = 0x0001000100010001ULL;
		const uint64_t gather = 0x0008000400020001ULL;

		high |= (a | b) & ~ones;
		bits[i / 8] = (uint8_t)(((a & ones) * gather) >> 48 & 0xf) |
			      (uint8_t)(((b & ones) * gather) >> 48 << 4);
	}
	return !high;
}
#endif

/*
 * Keeps BLOCK, refcount block region R, as bits for compare_refcounts(),
 * if every refcount in it is 0 or 1.  Written straight into the next
 * slot, which becomes the block's only then: one pass over the block.
 */
int keep_refblock(struct checker *c, const struct q2e_region *r,
		  const uint8_t *block)
{
	uint64_t n = c->cs / 2, high = 0;
	uint8_t *bits;
	bool kept = false;

	if (c->img->hdr.refcount_order != 4 || c->nkept >= UINT32_MAX - 1)
		return 0;
	if (!c->kept_slot &&
	    !(c->kept_slot = calloc(c->nrefblock + 1, sizeof(*c->kept_slot))))
		return nomem(c);
	c->bits_len = (size_t)(n / 8);
	if (q2e_grow(c->kept_bits, c->kept_cap, (c->nkept + 1) * c->bits_len) < 0)
		return nomem(c);
	bits = c->kept_bits + c->nkept * c->bits_len;
	high = !block_bits(block, n, bits);
	if (high)
		return 0;	/* read again when it is compared */
	for (uint32_t k = 0; k < r->nowners; k++) {
		uint64_t ti = r->owners[k].index;

		if (ti < c->nrefblock && c->refblock[ti] == r &&
		    !c->kept_slot[ti]) {
			c->kept_slot[ti] = (uint32_t)c->nkept + 1;
			kept = true;
		}
	}
	c->nkept += kept;
	return 0;
}

/* Four bits as four 16-bit big-endian refcounts. */
#define SPREAD(n) { 0, (n) & 1, 0, (n) >> 1 & 1, 0, (n) >> 2 & 1, 0, (n) >> 3 & 1 }
static const uint8_t spread[16][8] = {
	SPREAD(0), SPREAD(1), SPREAD(2), SPREAD(3), SPREAD(4), SPREAD(5),
	SPREAD(6), SPREAD(7), SPREAD(8), SPREAD(9), SPREAD(10), SPREAD(11),
	SPREAD(12), SPREAD(13), SPREAD(14), SPREAD(15),
};

/* Refcount block TI into c->buf from its bits, if they were kept. */
static bool kept_block(struct checker *c, uint64_t ti)
{
	const uint8_t *bits;
	uint64_t n = c->cs / 2;

	if (!c->kept_slot || ti >= c->nrefblock || !c->kept_slot[ti])
		return false;
	bits = c->kept_bits + (c->kept_slot[ti] - 1) * c->bits_len;
	for (uint64_t i = 0; i < n; i += 4)
		memcpy(c->buf + 2 * i, spread[bits[i / 8] >> (i % 8) & 0xf], 8);
	return true;
}

#ifdef __SSE2__
/*
 * The common case of a block kept as bits (TI) for clusters [start, end):
 * every count equals its bit and no COPIED bit disagrees, compared sixteen
 * at a time without making the block again; *HIGHEST as compare_block()
 * sets it.  False: the caller compares the block made again.
 */
static bool kept_agrees(const struct checker *c, uint64_t ti, uint64_t start,
			uint64_t end, uint64_t *highest)
{
	const __m128i select = _mm_set_epi8(-128, 64, 32, 16, 8, 4, 2, 1,
					    -128, 64, 32, 16, 8, 4, 2, 1);
	const __m128i mask = _mm_set1_epi8((char)CNT_MASK);
	const __m128i copied = _mm_set1_epi8((char)CNT_COPIED);
	const __m128i not_copied = _mm_set1_epi8((char)CNT_NOT_COPIED);
	const __m128i one = _mm_set1_epi8(1);
	const uint8_t *counts = c->counts + start, *bits;
	uint64_t n = end - start;
	__m128i bad = _mm_setzero_si128();

	if (!c->kept_slot || ti >= c->nrefblock || !c->kept_slot[ti] || n % 16)
		return false;
	bits = c->kept_bits + (c->kept_slot[ti] - 1) * c->bits_len;
	for (uint64_t i = 0; i < n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(counts + i));
		__m128i set = _mm_set_epi64x(
			(long long)(bits[i / 8 + 1] * 0x0101010101010101ULL),
			(long long)(bits[i / 8] * 0x0101010101010101ULL));
		__m128i is1 = _mm_cmpeq_epi8(_mm_and_si128(set, select), select);

		bad = _mm_or_si128(bad, _mm_xor_si128(_mm_and_si128(v, mask),
						      _mm_and_si128(is1, one)));
		bad = _mm_or_si128(bad, _mm_andnot_si128(is1, _mm_and_si128(v, copied)));
		bad = _mm_or_si128(bad, _mm_and_si128(is1, _mm_and_si128(v, not_copied)));
	}
	if (_mm_movemask_epi8(_mm_cmpeq_epi8(bad, _mm_setzero_si128())) != 0xffff)
		return false;
	for (uint64_t i = n; i-- > 0;)
		if (counts[i] & CNT_MASK) {
			*highest = start + i;
			break;
		}
	return true;
}
#else
static bool kept_agrees(const struct checker *c, uint64_t ti, uint64_t start,
			uint64_t end, uint64_t *highest)
{
	(void)c, (void)ti, (void)start, (void)end, (void)highest;
	return false;
}
#endif

/*
 * qcow2_get_refcount() signals the first unaligned refcount block as a
 * corruption (qcow2_signal_corruption()): not fatal, since qemu-img check
 * opens the image read-only, and only once.
 */
static int signal_unaligned(struct checker *c, uint64_t ti)
{
	uint64_t off = c->img->reftable[ti] & ~QCOW2_REFTABLE_RESERVED_MASK;

	if (!(off & (c->cs - 1)) || c->signaled)
		return 0;
	c->signaled = true;
	return add_line(c, "qcow2: Image is corrupt: Refblock offset %#" PRIx64
			" unaligned (reftable index: %#" PRIx64 "); further non-fatal corruption events will be suppressed",
			off, ti);
}

/* For table_batch_take(): the blocks compare_refcounts() reads, by
 * refcount table index (not those kept as bits, nor unreadable ones). */
static struct q2e_extent block_ahead(struct checker *c, size_t ti)
{
	const struct q2e_region *r = ti < c->nrefblock ? c->refblock[ti]
						      : NULL;

	if (!r || r->avail != r->size || refblock_unreadable(c, ti) ||
	    (c->kept_slot && c->kept_slot[ti]))
		return (struct q2e_extent){ 0, 0 };
	return (struct q2e_extent){ r->offset, r->size };
}

/* compare_refcounts(): every refcount block, by refcount table index. */
int compare_refcounts(struct checker *c, uint64_t *highest)
{
	uint64_t per_block = c->cs * 8 / c->img->refcount_bits;
	int ret;

	*highest = 0;
	set_key(c, (uint64_t)ST_COMPARE << 32, 0, 0);
	c->nagrees = (c->nb_clusters + per_block - 1) / per_block;
	c->agrees = calloc(c->nagrees + 1, sizeof(*c->agrees));
	if (!c->agrees)
		return nomem(c);
	for (uint64_t ti = 0; ti * per_block < c->nb_clusters; ti++) {
		const struct q2e_region *r = ti < c->nrefblock ? c->refblock[ti]
							       : NULL;
		uint64_t start = ti * per_block;
		uint64_t end = start + per_block;

		if (end > c->nb_clusters)
			end = c->nb_clusters;
		if (refblock_unreadable(c, ti)) {
			ret = signal_unaligned(c, ti);
			if (ret == 0)
				ret = unreadable_block(c, start, end);
		} else if (r && kept_agrees(c, ti, start, end, highest)) {
			progress(c, r->size);
			c->agrees[ti] = true;
			ret = 0;
		} else if (r) {
			const uint8_t *block = NULL;

			if (!kept_block(c, ti) &&
			    !(block = table_batch_take(c, &c->blocks,
						       block_ahead, ti,
						       c->nrefblock))) {
				ret = read_cluster(c, r, 0);
				if (ret < 0)
					return ret;
			}
			progress(c, r->size);
			c->cmp_region = r;
			ret = compare_block(c, block ? block : c->buf, start,
					    end, highest);
			c->cmp_region = NULL;
			c->agrees[ti] = c->block_agreed;
		} else {
			ret = compare_block(c, NULL, start, end, highest);
		}
		if (ret < 0)
			return ret;
	}
	return 0;
}

/*
 * qcow2_get_refcount(): *OK false where QEMU fails (an unaligned block).
 * A block that agreed with the counts is not read again: its refcounts
 * are the counts.
 */
static int stored_refcount(struct checker *c, uint64_t k, uint64_t *v,
			   bool *ok)
{
	uint64_t per_block = c->cs * 8 / c->img->refcount_bits;

	*ok = !refblock_unreadable(c, k / per_block);
	*v = 0;
	if (!*ok)
		return 0;
	if (k < c->nb_clusters && k / per_block < c->nagrees &&
	    c->agrees[k / per_block]) {
		*v = get_count(c, k);
		return 0;
	}
	return q2e_image_refcount(c->img, k, v, c->err);
}

/*
 * The bytes of the active L2 table at L2_OFF, which L1 entry I names, in
 * *P.  Where the tables the next entries name overlap it (misaligned, 512
 * bytes apart), their union is read once and serves them all.
 */
static int copied_table(struct checker *c, uint64_t i, uint64_t l2_off,
			const uint8_t **p)
{
	const struct q2e_image *img = c->img;
	uint64_t end = l2_off + c->cs;
	int ret;

	if (l2_off >= c->overlap_off && end <= c->overlap_end) {
		*p = c->overlap + (l2_off - c->overlap_off);
		return 0;
	}
	for (uint64_t j = i + 1; j < img->nl1; j++) {
		uint64_t o = img->l1[j] & QCOW2_OFFSET_MASK;

		if (!o)
			continue;
		if (o <= l2_off || o >= end ||
		    o + c->cs - l2_off > OVERLAP_MAX)
			break;
		end = o + c->cs;
	}
	if (end == l2_off + c->cs || !reads_whole(c, l2_off, end)) {
		*p = c->buf;
		return read_cluster(c, NULL, l2_off);
	}
	ret = read_overlapping(c, l2_off, end);
	*p = c->overlap;	/* made by the read */
	return ret;
}

/*
 * The data clusters of the active L2 table at L2_OFF, which L1 entry I
 * names.  Only the entries the file holds bytes of can name one: the rest
 * read as zeros (a 2 MiB table at each 512 bytes of a 67 KB file was 34
 * million entries).
 */
static int check_copied_l2(struct checker *c, uint64_t i, uint64_t l2_off)
{
	struct q2e_image *img = c->img;
	unsigned esize = qcow2_l2_entry_size(&img->l2);
	uint64_t held = l2_off < img->file_size ? img->file_size - l2_off : 0;
	uint64_t n = img->l2_entries;
	const uint8_t *p;
	uint64_t rc = 1;
	bool ok;
	int ret;

	if (held / esize < n)
		n = (held + esize - 1) / esize;
	if (!n)
		return 0;
	ret = copied_table(c, i, l2_off, &p);
	if (ret < 0)
		return ret;
	for (uint64_t j = 0; j < n; j++, p += esize) {
		uint64_t raw = qcow2_be64(p);
		struct qcow2_l2_entry e;

		if (!raw)
			continue;
		qcow2_l2_entry_decode(raw, 0, &img->l2, &e);
		if (e.type != QCOW2_CLUSTER_NORMAL &&
		    e.type != QCOW2_CLUSTER_ZERO_ALLOC)
			continue;
		if (!c->data_file) {
			ret = stored_refcount(c, e.host_offset >> c->cbits, &rc,
					      &ok);
			if (ret < 0)
				return ret;
			if (!ok)
				continue;
		}
		if ((rc == 1) == e.copied)
			continue;
		ret = corrupt(c, "ERROR OFLAG_COPIED data cluster: l2_entry=%" PRIx64
			      " refcount=%" PRIu64, raw, rc);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/*
 * The tables check_copied_l2() read, by offset, with the lines it added
 * and the corruptions it counted: qemu-img reads a table again for each
 * L1 entry that names it, and prints the same lines again.
 */
struct copied_seen {
	struct walk_lines lines;
	uint64_t corruptions;
};

/* check_copied_l2() for the table at L2_OFF, which L1 entry I names, or
 * its lines again; SEEN holds the tables read, by offset. */
static int copied_l2_once(struct checker *c, struct q2e_map *seen,
			  uint64_t i, uint64_t l2_off)
{
	const uint64_t key[Q2E_MAP_KEY] = { l2_off };
	const struct copied_seen *was = q2e_map_get(seen, key);
	uint64_t corruptions = c->res->corruptions;
	struct copied_seen *e;
	struct line_mark m;
	int ret;

	if (was) {
		c->res->corruptions += was->corruptions;
		return was->lines.count ? add_echo_line(c, &was->lines) : 0;
	}
	mark_lines(c, &m);
	ret = check_copied_l2(c, i, l2_off);
	if (ret < 0)
		return ret;
	e = calloc(1, sizeof(*e));
	if (!e)
		return nomem(c);
	lines_since(c, &m, &e->lines);
	e->corruptions = c->res->corruptions - corruptions;
	/* A first line joined to the one before is not the table's own. */
	if (!e->lines.whole) {
		free(e);
		return 0;
	}
	/* Nor may the next table's first line join the last: one key for
	 * the whole stage, so nothing else keeps them apart. */
	c->sealed = c->res->nlines;
	if (q2e_map_put(seen, key, e) < 0) {
		free(e);
		return nomem(c);
	}
	return 0;
}

/*
 * check_oflag_copied(): COPIED must say whether the refcount is 1.  The
 * active L2 tables are read again only if the flags counted with the
 * references (or the comparison) show that some entry may be wrong.
 */
int check_copied(struct checker *c)
{
	struct q2e_image *img = c->img;
	struct q2e_map seen = { 0 };
	bool ok;
	int ret = 0;

	set_key(c, (uint64_t)ST_COPIED << 32, 0, 0);
	for (uint64_t i = 0; i < img->nl1; i++) {
		uint64_t l1e = img->l1[i], l2_off = l1e & QCOW2_OFFSET_MASK;
		uint64_t rc;

		if (!l2_off)
			continue;
		ret = stored_refcount(c, l2_off >> c->cbits, &rc, &ok);
		if (ret < 0)
			break;
		if (!ok)
			continue;
		if ((rc == 1) != ((l1e & QCOW2_OFLAG_COPIED) != 0)) {
			ret = corrupt(c, "ERROR OFLAG_COPIED L2 cluster: l1_index=%" PRIu64
				      " l1_entry=%" PRIx64 " refcount=%" PRIu64,
				      i, l1e, rc);
			if (ret < 0)
				break;
		}
		if (c->copied_suspect) {
			ret = copied_l2_once(c, &seen, i, l2_off);
			if (ret < 0)
				break;
		}
	}
	q2e_map_free(&seen, free);
	return ret < 0 ? ret : 0;
}

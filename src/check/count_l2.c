/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * check_refcounts_l2() of QEMU 7.2 (block/qcow2-refcount.c): the entries of
 * one L2 table, for one L1 entry that reaches it, each by its type.  ACTIVE
 * (the active L1 reaches it) adds the allocation counters and the COPIED
 * flags; FIRST (the first L1 entry to reach it) adds the findings, once per
 * table rather than once per L1 entry.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "check/check_impl.h"
#include "qcow2elf/array.h"

#define L2E_STD_RESERVED UINT64_C(0x3f000000000001fe)
#define L2_BITMAP_ALL_ALLOC UINT64_C(0xffffffff)

/* One L2 table being counted for one L1 entry. */
struct l2_walk {
	const struct q2e_region *r;	/* NULL: cluster 0, read as an L2 */
	uint64_t k0, k1;		/* the key of its lines */
	bool active, first;
	uint64_t next_contiguous;
	uint64_t allocated, fragmented;
};

static void count_allocated(struct l2_walk *w, uint64_t off, uint64_t cs)
{
	if (!w->active)
		return;
	w->allocated++;
	if (w->next_contiguous && off != w->next_contiguous)
		w->fragmented++;
	w->next_contiguous = off + cs;
}

/* What the fast path reads for every entry, fixed for the table: locals,
 * so that the stores through counts do not make the compiler reload it. */
struct l2_fast {
	uint8_t *counts;
	uint64_t cmask, file_clusters, nentries;
	unsigned cbits, esize;
	unsigned limit;		/* counts below it take MULT more */
	uint8_t mult;
	uint64_t slow_bits;	/* an entry with any of them takes the slow
				   path: compressed, or reserved bits */
};

#ifdef __SSE2__
#include <emmintrin.h>

/* Two big-endian entries as host-order 64-bit lanes: the bytes swapped
 * in each 16-bit word, then the words reversed in each half (SSE2 has no
 * byte shuffle). */
static inline __m128i be64x2(const uint8_t *p)
{
	__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);

	x = _mm_or_si128(_mm_slli_epi16(x, 8), _mm_srli_epi16(x, 8));
	x = _mm_shufflelo_epi16(x, _MM_SHUFFLE(0, 1, 2, 3));
	return _mm_shufflehi_epi16(x, _MM_SHUFFLE(0, 1, 2, 3));
}

/* The whole blocks of eight of run_length(): two entries a lane pair,
 * where the byte swaps and compares one at a time were half of check's
 * own time on a 1 TiB preallocated image. */
static inline uint64_t run_blocks(const uint8_t *p, uint64_t raw,
				  uint64_t step, uint64_t max)
{
	const __m128i step2 = _mm_set1_epi64x((long long)(2 * step));
	__m128i want = _mm_set_epi64x((long long)(raw + 2 * step),
				      (long long)(raw + step));
	uint64_t n = 0;

	for (; n + 8 <= max; n += 8) {
		const uint8_t *q = p + 8 * (n + 1);
		__m128i w1 = _mm_add_epi64(want, step2);
		__m128i w2 = _mm_add_epi64(w1, step2);
		__m128i w3 = _mm_add_epi64(w2, step2);
		__m128i d = _mm_or_si128(
			_mm_or_si128(_mm_xor_si128(be64x2(q), want),
				     _mm_xor_si128(be64x2(q + 16), w1)),
			_mm_or_si128(_mm_xor_si128(be64x2(q + 32), w2),
				     _mm_xor_si128(be64x2(q + 48), w3)));

		if (_mm_movemask_epi8(_mm_cmpeq_epi8(d, _mm_setzero_si128())) !=
		    0xffff)
			break;
		want = _mm_add_epi64(w3, step2);
	}
	return n;
}
#else
static inline uint64_t run_blocks(const uint8_t *p, uint64_t raw,
				  uint64_t step, uint64_t max)
{
	uint64_t n = 0;

	for (; n + 8 <= max; n += 8) {
		const uint8_t *q = p + 8 * (n + 1);
		const uint64_t want = raw + (n + 1) * step;
		uint64_t diff = 0;

#pragma GCC unroll 8
		for (unsigned i = 0; i < 8; i++)
			diff |= qcow2_be64(q + 8 * i) ^ (want + i * step);
		if (diff)
			break;
	}
	return n;
}
#endif

/*
 * Where the processor has AVX2 (found at run time: the build targets
 * plain x86-64), run_blocks() with a byte shuffle, four entries a
 * register: the SSE2 byte swaps were half of check's own instructions on
 * a 256 GiB preallocated image.  -DQ2E_NO_AVX2 leaves it out, to test the
 * SSE2 path on a machine that has AVX2.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(Q2E_NO_AVX2)
#include <immintrin.h>
#define HAVE_RUN_BLOCKS_AVX2 1

__attribute__((target("avx2")))
static uint64_t run_blocks_avx2(const uint8_t *p, uint64_t raw, uint64_t step,
				uint64_t max)
{
	const __m256i swap = _mm256_setr_epi8(
		7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8,
		7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8);
	const __m256i step8 = _mm256_set1_epi64x((long long)(8 * step));
	__m256i w0 = _mm256_setr_epi64x((long long)(raw + step),
					(long long)(raw + 2 * step),
					(long long)(raw + 3 * step),
					(long long)(raw + 4 * step));
	__m256i w1 = _mm256_add_epi64(w0, _mm256_set1_epi64x((long long)(4 * step)));
	uint64_t n = 0;

	for (; n + 8 <= max; n += 8) {
		const uint8_t *q = p + 8 * (n + 1);
		__m256i a = _mm256_shuffle_epi8(
			_mm256_loadu_si256((const __m256i *)(const void *)q), swap);
		__m256i b = _mm256_shuffle_epi8(
			_mm256_loadu_si256((const __m256i *)(const void *)(q + 32)), swap);
		__m256i d = _mm256_or_si256(_mm256_xor_si256(a, w0),
					    _mm256_xor_si256(b, w1));

		if (!_mm256_testz_si256(d, d))
			break;
		w0 = _mm256_add_epi64(w0, step8);
		w1 = _mm256_add_epi64(w1, step8);
	}
	return n;
}

static bool have_avx2(void)
{
	static int have = -1;

	if (have < 0)
		have = __builtin_cpu_supports("avx2") != 0;
	return have;
}
#endif

/*
 * How many of the MAX entries after P continue RAW exactly (each STEP, a
 * cluster, further on, same flags), as preallocation and sequential writes
 * leave them.  Eight at a time without a branch between them: such runs
 * are thousands of entries long.
 */
static inline uint64_t run_length(const uint8_t *p, uint64_t raw,
				  uint64_t step, uint64_t max)
{
#ifdef HAVE_RUN_BLOCKS_AVX2
	uint64_t n = have_avx2() ? run_blocks_avx2(p, raw, step, max)
				 : run_blocks(p, raw, step, max);
#else
	uint64_t n = run_blocks(p, raw, step, max);
#endif

	while (n < max && qcow2_be64(p + 8 * (n + 1)) == raw + (n + 1) * step)
		n++;
	return n;
}

/* The byte V in each byte of a word. */
#define BYTES(v) ((uint64_t)(v) * UINT64_C(0x0101010101010101))

__attribute__((always_inline))
static inline uint64_t load8(const uint8_t *p)
{
	uint64_t x;

	memcpy(&x, p, 8);
	return x;
}

__attribute__((always_inline))
static inline void store8(uint8_t *p, uint64_t x)
{
	memcpy(p, &x, 8);
}

/* Bytes [8 - m, 8) of the word at ones + m are 0xff, the others 0: the
 * last M counters of an 8-byte word, in memory order. */
static const uint8_t ones[16] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};

/*
 * Bit 7 set in the result: some count of the N counters is not below
 * LIMIT (see add_counts()).  Blocks of 32 the compiler vectorises, then
 * words of 8, the last one overlapping the one before: runs in tables of
 * 64 entries are 63 long, and their 31 last counters one by one were most
 * of add_counts().  No byte's sum carries into the next.
 */
__attribute__((always_inline))
static inline uint8_t counts_over(const uint8_t *counts, uint64_t n,
				  uint8_t bias)
{
	uint64_t i = 0, o = 0;
	uint8_t over = 0;

	for (; i + 32 <= n; i += 32)
		for (unsigned t = 0; t < 32; t++)
			over |= (uint8_t)((counts[i + t] & CNT_MASK) + bias);
	if (n < 8) {
		for (; i < n; i++)
			over |= (uint8_t)((counts[i] & CNT_MASK) + bias);
		return over;
	}
	for (; i + 8 <= n; i += 8)
		o |= (load8(counts + i) & BYTES(CNT_MASK)) + BYTES(bias);
	if (i < n)
		o |= (load8(counts + n - 8) & BYTES(CNT_MASK)) + BYTES(bias);
	return over | (o & BYTES(0x80) ? 0x80 : 0);
}

/* ADD to each byte of X, without a carry into the next (ADD < 0x80),
 * then FLAG. */
__attribute__((always_inline))
static inline uint64_t add8(uint64_t x, uint64_t add, uint64_t flag)
{
	return (((x & BYTES(0x7f)) + add) ^ (x & BYTES(0x80))) | flag;
}

/* ADD and FLAG to each of the N counters, as counts_over() reads them. */
__attribute__((always_inline))
static inline void counts_add(uint8_t *counts, uint64_t n, uint8_t add,
			      uint8_t flag)
{
	uint64_t i = 0;

	for (; i + 32 <= n; i += 32)
		for (unsigned t = 0; t < 32; t++)
			counts[i + t] = (uint8_t)((counts[i + t] + add) | flag);
	if (n < 8) {
		for (; i < n; i++)
			counts[i] = (uint8_t)((counts[i] + add) | flag);
		return;
	}
	for (; i + 8 <= n; i += 8)
		store8(counts + i, add8(load8(counts + i), BYTES(add),
					BYTES(flag)));
	if (i < n) {
		uint64_t x = load8(counts + n - 8);
		uint64_t mask = load8(ones + (n - i));

		store8(counts + n - 8,
		       (add8(x, BYTES(add), BYTES(flag)) & mask) | (x & ~mask));
	}
}

/*
 * ADD more references and FLAG to each of the N counters from COUNTS, up
 * to the first whose count is not below LIMIT (at most CNT_BIG); returns
 * how many it counted.  A count v < 0x40 is below LIMIT exactly when bit
 * 7 of v + 0x80 - LIMIT is clear: so the common case, all of them, is
 * two passes of plain byte arithmetic the compiler vectorises.
 */
__attribute__((always_inline))
static inline uint64_t add_counts_any(uint8_t *counts, uint64_t n,
				      unsigned limit, uint8_t add,
				      uint8_t flag)
{
	uint64_t i;

	if (counts_over(counts, n, (uint8_t)(0x80U - limit)) & 0x80) {
		for (i = 0; i < n && (counts[i] & CNT_MASK) < limit; i++)
			counts[i] = (uint8_t)((counts[i] + add) | flag);
		return i;
	}
	counts_add(counts, n, add, flag);
	return n;
}

#ifdef HAVE_RUN_BLOCKS_AVX2
/* The same, the compiler's vectors 32 bytes wide: the counting of a
 * 256 GiB image's runs of 8,192 entries took half as many instructions
 * again in SSE2.  Its helpers are always inlined, so that they are
 * compiled for AVX2 here too. */
__attribute__((target("avx2")))
static uint64_t add_counts_avx2(uint8_t *counts, uint64_t n, unsigned limit,
				uint8_t add, uint8_t flag)
{
	return add_counts_any(counts, n, limit, add, flag);
}
#endif

static inline uint64_t add_counts(uint8_t *counts, uint64_t n,
				  unsigned limit, uint8_t add, uint8_t flag)
{
#ifdef HAVE_RUN_BLOCKS_AVX2
	if (n >= 256 && have_avx2())
		return add_counts_avx2(counts, n, limit, add, flag);
#endif
	return add_counts_any(counts, n, limit, add, flag);
}

/*
 * After a fast-path entry at cluster K, the entries that continue it
 * exactly (next cluster, same flags).  Anything the slow path must see
 * ends the run.  Returns how many it counted.
 */
static inline uint64_t fast_run(const struct checker *c,
				const struct l2_walk *w,
				const struct l2_fast *f, const uint8_t *p,
				uint64_t j, uint64_t raw, uint8_t flag)
{
	const uint64_t off = raw & QCOW2_OFFSET_MASK, k = off >> f->cbits;
	uint8_t *counts = f->counts;
	uint64_t run = f->nentries - j - 1, left;

	/* Bounds: the file, the offset field, the gap between metadata
	 * ranges. */
	left = f->file_clusters - k - 1;
	run = run < left ? run : left;
	left = ((QCOW2_OFFSET_MASK | f->cmask) - off) >> f->cbits;
	run = run < left ? run : left;
	if (w->first) {
		left = c->gap_hi - k - 1;
		run = run < left ? run : left;
	}
	run = run_length(p, raw, f->cmask + 1, run);
	return add_counts(counts + k + 1, run, f->limit, f->mult, flag);
}

/*
 * The common entry: a standard or preallocated zero cluster (the two
 * differ only in the message for a misaligned one), aligned, inside the
 * file and outside metadata, whose count stays below the side table and the
 * refcount width; then the run that continues it.  Returns how many
 * entries it counted, 0 if the slow path must decode entry J.  A cluster
 * past the gap between metadata ranges that the last one was in moves the
 * gap (meta_find()) here: with 512-byte clusters an L2 table lies between
 * every 64 data clusters, and the slow path for the first entry of each
 * table was a fifth of the counting.
 */
static inline uint64_t fast_entry(struct checker *c, struct l2_walk *w,
				  const struct l2_fast *f, const uint8_t *p,
				  uint64_t j, uint64_t raw)
{
	static const uint8_t copied_bits[2] = { CNT_NOT_COPIED, CNT_COPIED };
	const uint64_t off = raw & QCOW2_OFFSET_MASK, k = off >> f->cbits;
	const uint8_t flag = w->active ? copied_bits[raw >> 63] : 0;
	uint64_t n;

	if ((raw & f->slow_bits) || !off || (off & f->cmask) ||
	    k >= f->file_clusters ||
	    (f->counts[k] & CNT_MASK) >= f->limit ||
	    (w->first && !in_gap(c, k) && meta_find(c, k) >= 0))	/* a finding */
		return 0;
	f->counts[k] = (uint8_t)((f->counts[k] + f->mult) | flag);
	count_allocated(w, off, f->cmask + 1);
	n = fast_run(c, w, f, p, j, raw, flag);
	if (n && w->active) {
		w->allocated += n;
		w->next_contiguous = off + (n + 1) * (f->cmask + 1);
	}
	return n + 1;
}

static int compressed_entry(struct checker *c, struct l2_walk *w, uint64_t j,
			    uint64_t raw, uint64_t bitmap,
			    const struct qcow2_l2_entry *e)
{
	int ret;

	if (raw & QCOW2_OFLAG_COPIED) {
		ret = corrupt(c, "ERROR: coffset=0x%" PRIx64
			      ": copied flag must never be set for compressed clusters",
			      e->host_offset);
		if (ret < 0)
			return ret;
	}
	if (c->data_file)
		return corrupt(c, "ERROR compressed cluster %" PRIu64
			       " with data file, entry=0x%" PRIx64,
			       j, (uint64_t)(raw & ~QCOW2_OFLAG_COPIED));
	if (bitmap)
		return corrupt(c, "ERROR compressed cluster %" PRIu64
			       " with non-zero subcluster allocation bitmap, entry=0x%" PRIx64,
			       j, (uint64_t)(raw & ~QCOW2_OFLAG_COPIED));
	ret = inc_refs(c, e->host_offset, e->compressed_size);
	if (ret < 0)
		return ret;
	if (w->active) {
		/* Compressed clusters are fragmented by nature. */
		w->allocated++;
		w->fragmented++;
		c->res->compressed_clusters++;
	}
	if (w->first)
		return data_findings(c, w->r, j, e->host_offset,
				     e->compressed_size);
	return 0;
}

/* A standard cluster, or a preallocated zero cluster. */
static int allocated_entry(struct checker *c, struct l2_walk *w, uint64_t j,
			   uint64_t raw, uint64_t bitmap,
			   const struct qcow2_l2_entry *e)
{
	const uint64_t off = e->host_offset, k = off >> c->cbits;
	int ret;

	if ((bitmap >> 32) & bitmap) {
		ret = corrupt(c, "ERROR offset=%" PRIx64
			      ": Allocated cluster has corrupted subcluster allocation bitmap",
			      off);
		if (ret < 0)
			return ret;
	}
	if (off & (c->cs - 1)) {
		bool data = c->img->l2.extended ? (bitmap & L2_BITMAP_ALL_ALLOC)
						: !(raw & QCOW2_OFLAG_ZERO);

		ret = corrupt(c, data
			      ? "ERROR offset=%" PRIx64 ": Data cluster is not properly aligned; L2 entry corrupted."
			      : "ERROR offset=%" PRIx64 ": Preallocated cluster is not properly aligned; L2 entry corrupted.",
			      off);
		if (ret < 0)
			return ret;
		if (w->first && data_finding(c, w->r, j, off, c->cs,
					     Q2E_FINDING_MISALIGNED,
					     "data at 0x%" PRIx64 " is not cluster aligned",
					     off) < 0)
			return Q2E_ENOMEM;
	}
	count_allocated(w, off, c->cs);
	if (c->data_file) {
		if (w->active && !e->copied)
			c->copied_suspect = true;
		return 0;
	}
	ret = inc_cluster(c, off);
	if (ret < 0)
		return ret;
	if (w->active && k < c->nb_clusters)
		c->counts[k] |= e->copied ? CNT_COPIED : CNT_NOT_COPIED;
	else if (w->active)
		c->copied_suspect = true;
	if (w->first)
		return data_findings(c, w->r, j, off, c->cs);
	return 0;
}

/* Any entry the fast path did not take, by its type. */
/* Bit 0 of an L2 entry, the zero flag of version 3, is reserved in a
 * version 2 image and with extended entries: qemu-img check passes it. */
static bool zero_bit_reserved(const struct q2e_image *img)
{
	return img->hdr.version < 3 || img->l2.extended;
}

static int slow_entry(struct checker *c, struct l2_walk *w, uint64_t j,
		      uint64_t raw, uint64_t bitmap)
{
	struct qcow2_l2_entry e;
	int ret;

	set_key(c, w->k0, w->k1, j + 1);
	qcow2_l2_entry_decode(raw, bitmap, &c->img->l2, &e);
	if (e.type != QCOW2_CLUSTER_COMPRESSED && (raw & L2E_STD_RESERVED)) {
		ret = corrupt(c, "ERROR found l2 entry with reserved bits set: %" PRIx64,
			      raw);
		if (ret < 0)
			return ret;
		if (w->first && data_finding(c, w->r, j, e.host_offset, c->cs,
					     Q2E_FINDING_RESERVED_BITS,
					     "entry 0x%016" PRIx64 " has reserved bits 0x%" PRIx64 " set",
					     raw, raw & L2E_STD_RESERVED) < 0)
			return Q2E_ENOMEM;
	}
	if (w->first && e.type != QCOW2_CLUSTER_COMPRESSED &&
	    !(raw & L2E_STD_RESERVED) && (raw & QCOW2_OFLAG_ZERO) &&
	    zero_bit_reserved(c->img) &&
	    data_finding(c, w->r, j, e.host_offset, c->cs,
			 Q2E_FINDING_RESERVED_BITS, "entry 0x%016" PRIx64 " %s",
			 raw, c->img->l2.extended
			 ? "has bit 0 set, which is reserved with extended L2 entries (QEMU ignores it)"
			 : "has the zero flag (bit 0), which a version 2 image does not have: QEMU fails to read the cluster and marks the image corrupt") < 0)
		return Q2E_ENOMEM;
	switch (e.type) {
	case QCOW2_CLUSTER_COMPRESSED:
		return compressed_entry(c, w, j, raw, bitmap, &e);
	case QCOW2_CLUSTER_ZERO_ALLOC:
	case QCOW2_CLUSTER_NORMAL:
		return allocated_entry(c, w, j, raw, bitmap, &e);
	case QCOW2_CLUSTER_ZERO_PLAIN:
		return 0;
	case QCOW2_CLUSTER_UNALLOCATED:
		if (bitmap & L2_BITMAP_ALL_ALLOC)
			return corrupt(c, "ERROR: Unallocated cluster has non-zero subcluster allocation map");
		return 0;
	}
	return 0;
}

/* For an L1 entry neither active nor first: nothing, or one reference to a
 * cluster inside the file (what the fast path takes is). */
static bool entry_plain(const struct checker *c, uint64_t raw)
{
	uint64_t off = raw & QCOW2_OFFSET_MASK;

	return !(raw & (QCOW2_OFLAG_COMPRESSED | L2E_STD_RESERVED)) &&
	       (!off || (!(off & (c->cs - 1)) &&
			 (off >> c->cbits) < c->file_clusters));
}

/* How many entries of table R (NULL: the cluster at 0) the file holds
 * bytes of, a part of one included. */
static uint64_t held_entries(const struct checker *c,
			     const struct q2e_region *r)
{
	uint64_t esize = qcow2_l2_entry_size(&c->img->l2);
	uint64_t fsize = c->img->file_size;
	uint64_t held = r ? r->avail : fsize < c->cs ? fsize : c->cs;

	return (held + esize - 1) / esize;
}

/*
 * Whether a walk passes over the 8-byte entry RAW in silence, as
 * slow_entry() does: nothing, or no offset, reserved bits or compression,
 * so a zero cluster, or an unallocated one (but for COPIED alone in an
 * image with a data file, which maps its offset 0).
 */
static bool silent_entry(const struct q2e_image *img, uint64_t raw)
{
	if (raw & ~(QCOW2_OFLAG_COPIED | QCOW2_OFLAG_ZERO))
		return false;
	if ((raw & QCOW2_OFLAG_ZERO) && zero_bit_reserved(img))
		return false;	/* a finding */
	return !(img->l2.has_data_file && raw == QCOW2_OFLAG_COPIED);
}

int l2_nonzero_spans(struct checker *c, const uint8_t *buf,
		     struct l2_spans *s)
{
	const struct q2e_image *img = c->img;
	const size_t esize = qcow2_l2_entry_size(&img->l2);
	const uint8_t *p = buf;

	s->n = 0;
	for (uint64_t j = 0; j < img->l2_entries; j++, p += esize) {
		uint64_t raw = qcow2_be64(p);

		/* 65,536 walks of a cluster 0 of 0x1 entries, once a count
		 * had overflowed, took 100 s. */
		if (esize == 8 ? silent_entry(img, raw)
			       : !raw && !qcow2_be64(p + 8))
			continue;
		if (s->n && s->v[s->n - 1].to == j) {
			s->v[s->n - 1].to = (uint32_t)j + 1;
			continue;
		}
		if (q2e_grow(s->v, s->cap, s->n + 1) < 0)
			return nomem(c);
		s->v[s->n++] = (struct l2_span){ (uint32_t)j, (uint32_t)j + 1 };
	}
	return 0;
}

/* Entries [J, END) of the table in c->buf, for check_l2(). */
static inline __attribute__((always_inline)) int
walk_entries(struct checker *c, struct l2_walk *w, struct l2_fast *f,
	     uint64_t j, uint64_t end, bool fast, bool ext)
{
	const uint8_t *p = c->buf + j * f->esize;
	uint64_t used;
	int ret;

	for (; j < end; j += used, p += used * f->esize) {
		uint64_t raw = qcow2_be64(p);
		uint64_t bitmap = ext ? qcow2_be64(p + 8) : 0;

		used = 1;
		if (!raw && !bitmap)
			continue;
		if (fast && (used = fast_entry(c, w, f, p, j, raw)) != 0) {
			c->runs[c->nruns++] = (struct l2_run){
				(uint32_t)j, (uint32_t)used,
				(raw & QCOW2_OFFSET_MASK) >> f->cbits,
			};
			continue;
		}
		used = 1;
		if (c->l2_plain && !entry_plain(c, raw))
			c->l2_plain = false;
		ret = slow_entry(c, w, j, raw, bitmap);
		if (ret < 0)
			return ret;
		f->counts = c->counts;	/* it may have grown them */
	}
	return 0;
}

int check_l2(struct checker *c, const struct q2e_region *r, uint64_t k0,
	     uint64_t k1, bool active, bool first)
{
	const struct q2e_image *img = c->img;
	const bool ext = img->l2.extended;
	const bool fast = !ext && !c->data_file;
	const struct l2_spans *spans = c->walk_spans;
	struct l2_fast f = {
		.counts = c->counts,
		.cmask = c->cs - 1,
		.file_clusters = c->file_clusters,
		.nentries = img->l2_entries,
		.cbits = c->cbits,
		.esize = qcow2_l2_entry_size(&img->l2),
		.slow_bits = QCOW2_OFLAG_COMPRESSED | L2E_STD_RESERVED |
			     (zero_bit_reserved(img) ? QCOW2_OFLAG_ZERO : 0),
	};
	const uint64_t room = c->refcount_max < CNT_BIG - 1 ? c->refcount_max
							   : CNT_BIG - 1;
	struct l2_walk w = {
		.r = r, .k0 = k0, .k1 = k1, .active = active, .first = first,
	};
	int ret = 0;

	/* Room for a run at each entry of any table. */
	if (fast && !c->runs &&
	    !(c->runs = malloc(img->l2_entries * sizeof(*c->runs))))
		return nomem(c);
	/* Past the bytes the file holds, the entries read as zeros and
	 * name nothing: not walked (a 2 MiB table at each 512 bytes of a
	 * 67 KB file). */
	if (held_entries(c, r) < f.nentries)
		f.nentries = held_entries(c, r);
	/* A count that could pass the side table or the refcount's width
	 * takes the slow path. */
	c->l2_plain = fast;	/* until an entry says otherwise */
	c->nruns = 0;
	f.mult = c->mult < CNT_BIG ? (uint8_t)c->mult : CNT_BIG;
	f.limit = room >= f.mult ? (unsigned)(room - f.mult + 1) : 0;
	if (!spans)
		ret = walk_entries(c, &w, &f, 0, f.nentries, fast, ext);
	for (size_t i = 0; spans && i < spans->n && ret == 0 &&
			   spans->v[i].from < f.nentries; i++)
		ret = walk_entries(c, &w, &f, spans->v[i].from,
				   spans->v[i].to < f.nentries ? spans->v[i].to
							       : f.nentries,
				   fast, ext);
	if (ret < 0)
		return ret;
	c->res->allocated_clusters += w.allocated;
	c->res->fragmented_clusters += w.fragmented;
	return 0;
}

/*
 * The references of a plain table (c->l2_plain) for L1 entries that are
 * not the active table's: all added at once, unless the count would pass
 * the refcount's width; then each in turn, as the walk of each would
 * have, for its overflow lines.
 */
int check_l2_again(struct checker *c, const struct l2_reach *reach,
		   size_t n)
{
	const struct q2e_image *img = c->img;
	const uint64_t room = c->refcount_max < CNT_BIG - 1 ? c->refcount_max
							   : CNT_BIG - 1;
	const uint8_t *p = c->buf;
	uint64_t total = 0, used;
	size_t ri = 0;
	unsigned limit;
	int ret;

	for (size_t i = 0; i < n; i++)
		total += reach[i].mult;
	/* Counts below LIMIT take TOTAL more inline. */
	limit = room >= total ? (unsigned)(room - total + 1) : 0;
	for (uint64_t j = 0; j < img->l2_entries; j += used, p += used * 8) {
		uint64_t raw, off, k, v;

		/* A run the first walk found: its counters only. */
		while (ri < c->nruns && c->runs[ri].j < j)
			ri++;
		if (ri < c->nruns && c->runs[ri].j == j) {
			const struct l2_run *r = &c->runs[ri++];

			used = add_counts(c->counts + r->k, r->n, limit,
					  (uint8_t)total, 0);
			if (used)
				continue;
		}
		used = 1;
		raw = qcow2_be64(p);
		off = raw & QCOW2_OFFSET_MASK;
		k = off >> c->cbits;
		if (!off)
			continue;
		if ((c->counts[k] & CNT_MASK) < limit) {
			/* Plain entries stay inside the file, so does a run
			 * of them; up to the next run already known. */
			uint64_t end = ri < c->nruns ? c->runs[ri].j
						     : img->l2_entries;
			uint64_t run = run_length(p, raw, c->cs, end - j - 1);

			c->counts[k] = (uint8_t)(c->counts[k] + total);
			used += add_counts(c->counts + k + 1, run, limit,
					   (uint8_t)total, 0);
			continue;
		}
		/* Past the fast counters, within the refcount's width. */
		v = get_count(c, k);
		if (total <= c->refcount_max - v) {
			ret = set_count(c, k, v + total);
			if (ret < 0)
				return ret;
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			set_key(c, reach[i].k0, reach[i].k1, j + 1);
			c->mult = reach[i].mult;
			ret = inc_cluster(c, off);
			c->mult = 1;
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

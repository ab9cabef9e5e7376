/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The L2 tables and refcount blocks that differ, when both images have
 * one geometry: kept as a copy of each pair of tables (of the parts
 * where they differ, where few do: struct kept), and made into
 * changes and ranges each time they are counted or rendered, rather than
 * kept a change each.  Two 16 KB sparse files whose refcount tables name
 * one block 512 times, the counts differing one cluster in two, made 8
 * million changes (1.9 GB); a 208 KB image whose 2,048 L1 entries name
 * one L2 table, 4 million (1.1 GB).  A pair of tables that several
 * entries name is kept once; the changes themselves are as many as
 * before, and so is JSON.  A pair found equal is remembered too, so that
 * it is read and compared once however many entries name it.
 *
 * A table is copied whole once per image, however many pairs it is in,
 * so that memory follows the tables in the files: two 9 MB files whose
 * L1 tables paired 1,000 tables with 999 others in a million ways kept
 * a copy of both tables for each pair (1.3 GB).  Only a pair that
 * differs in at most half its chunks keeps those chunks of its own, up
 * to CHUNK_BUDGET bytes in all.
 *
 * The changes are made from their steps by diff_runs.c.  A pair that
 * several entries name is stepped through once, for its digest (what its
 * steps make): each entry whose tables are whole is given the digest in
 * place of its steps.  Stepping the pair for each entry again was
 * quadratic: 4,096 L1 entries naming one table of 262,144 entries "zero"
 * (a 10 MB file) took 28 s to count, 4 KB of report.
 *
 * The digests take at most DIGEST_BUDGET bytes in all; a pair whose
 * digest would pass it is stepped through for each entry, as before.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/array.h"
#include "qcow2elf/hashmap.h"
#include "qcow2elf/qcow2.h"
#include "view/diff_int.h"

/* Whole chunks of identical bytes hold no change. */
#define SAME_CHUNK 512

/* Bytes of the chunks that pairs keep of their own, in all. */
#define CHUNK_BUDGET (64U << 20)

/* Bytes of the digests of pairs that several entries name, in all. */
#define DIGEST_BUDGET (64U << 20)

/*
 * What is kept of a pair of tables: both whole (WA and WB, copies kept
 * once per image), or only the chunks that differ (IDX[i] is where chunk
 * i of A's, then of B's, goes in BYTES): a table of 64 KB with one entry
 * changed keeps 1 KB, not 128 KB.  Identical chunks hold no change, so
 * the steps are made from the kept chunks alone.
 */
struct kept {
	size_t nchunks;
	uint32_t *idx;		/* NULL when whole */
	uint8_t *bytes;		/* the chunks: NULL when whole */
	const uint8_t *wa, *wb;	/* whole */
	size_t owners;		/* the entries that name the pair */
	struct diff_digest *dg;	/* of their steps, where several do */
	bool undigested;	/* a digest was tried: over the budget */
};

/* Table entry INDEX (of the L1 or refcount table): its tables differ.
 * L2 entries of guest offsets from GUEST_END on are not compared. */
struct pair_rec {
	enum q2e_diff_group g;
	uint64_t index, guest_end;
	struct kept *k;
	char symbol[64];
};

struct q2e_diff_pairs {
	struct diff_pair_geom geom;
	struct pair_rec *v;
	size_t n, cap;
	struct q2e_map copies;	/* the kept pairs, by group and offsets */
	struct q2e_map tables;	/* whole tables, by image, group, offset */
	size_t chunk_bytes;	/* kept as chunks */
	size_t digest_bytes;	/* of the digests */
	bool has[Q2E_DIFF_G_COUNT];
};

/* What the map holds for a pair of tables that are equal. */
static struct kept same_pair;

/* The pair of tables of group G at OA in A and OB in B, as the map
 * knows it. */
static void pair_key(uint64_t key[Q2E_MAP_KEY], enum q2e_diff_group g,
		     uint64_t oa, uint64_t ob)
{
	key[0] = (uint64_t)g;
	key[1] = oa;
	key[2] = ob;
	key[3] = 0;
}

enum diff_pair_seen diff_pairs_seen(const struct q2e_diff *d,
				    enum q2e_diff_group g, uint64_t oa,
				    uint64_t ob)
{
	uint64_t key[Q2E_MAP_KEY];
	const struct kept *kp;

	pair_key(key, g, oa, ob);
	kp = d->pairs ? q2e_map_get(&d->pairs->copies, key) : NULL;
	return !kp		 ? DIFF_PAIR_UNSEEN
	       : kp == &same_pair ? DIFF_PAIR_SAME
				  : DIFF_PAIR_DIFFERS;
}

static struct q2e_diff_pairs *pairs_new(const struct q2e_image *a,
					const struct q2e_image *b)
{
	struct q2e_diff_pairs *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->geom = (struct diff_pair_geom){
		.l2a = a->l2,
		.l2b = b->l2,
		.cluster_size = b->cluster_size,
		.cluster_bits = b->hdr.cluster_bits,
		.l2_entries = b->l2_entries,
		.guest_size = a->hdr.size > b->hdr.size ? a->hdr.size
							: b->hdr.size,
		.order_a = a->hdr.refcount_order,
		.order_b = b->hdr.refcount_order,
		.per_block = b->refcount_bits ? b->cluster_size * 8 /
						b->refcount_bits : 0,
		.file_size = a->file_size > b->file_size ? a->file_size
							 : b->file_size,
	};
	return p;
}

/* The copy of table T (CS bytes) at OFF in image SIDE (0: A, 1: B) of
 * group G, made at its first pair. */
static const uint8_t *table_once(struct q2e_diff_pairs *p, unsigned side,
				 enum q2e_diff_group g, uint64_t off,
				 const uint8_t *t, size_t cs)
{
	/* An L2 table is one whichever L1 table names it. */
	uint64_t key[Q2E_MAP_KEY] = { side, g == Q2E_DIFF_G_REFCOUNT_BLOCK,
				      off, 0 };
	uint8_t *copy = q2e_map_get(&p->tables, key);

	if (copy)
		return copy;
	copy = malloc(cs);
	if (!copy)
		return NULL;
	memcpy(copy, t, cs);
	if (q2e_map_put(&p->tables, key, copy) < 0) {
		free(copy);
		return NULL;
	}
	return copy;
}

/* What is kept of TA (at OA) and TB (at OB), CS bytes each, of group G:
 * the chunks where they differ if that is at most half of them and the
 * budget allows, else both whole. */
static struct kept *kept_new(struct q2e_diff_pairs *p, enum q2e_diff_group g,
			     uint64_t oa, uint64_t ob, const uint8_t *ta,
			     const uint8_t *tb, size_t cs)
{
	size_t all = cs / SAME_CHUNK, nd = 0, k = 0;
	struct kept *kp = calloc(1, sizeof(*kp));

	if (!kp)
		return NULL;
	for (size_t c = 0; c < all; c++)
		nd += memcmp(ta + c * SAME_CHUNK, tb + c * SAME_CHUNK,
			     SAME_CHUNK) != 0;
	if (all < 2 || nd * 2 > all ||
	    nd * SAME_CHUNK * 2 > CHUNK_BUDGET - p->chunk_bytes) {
		kp->nchunks = all;
		kp->wa = table_once(p, 0, g, oa, ta, cs);
		kp->wb = table_once(p, 1, g, ob, tb, cs);
		if (!kp->wa || !kp->wb) {
			free(kp);
			return NULL;
		}
		return kp;
	}
	kp->nchunks = nd;
	kp->idx = malloc(nd * sizeof(*kp->idx));
	kp->bytes = malloc(nd * SAME_CHUNK * 2);
	if (!kp->idx || !kp->bytes) {
		free(kp->idx);
		free(kp->bytes);
		free(kp);
		return NULL;
	}
	p->chunk_bytes += nd * SAME_CHUNK * 2;
	for (size_t c = 0; c < all; c++) {
		const uint8_t *ca = ta + c * SAME_CHUNK, *cb = tb + c * SAME_CHUNK;

		if (memcmp(ca, cb, SAME_CHUNK) == 0)
			continue;
		kp->idx[k] = (uint32_t)c;
		memcpy(kp->bytes + k * SAME_CHUNK, ca, SAME_CHUNK);
		memcpy(kp->bytes + (nd + k) * SAME_CHUNK, cb, SAME_CHUNK);
		k++;
	}
	return kp;
}

static void kept_free(void *p)
{
	struct kept *kp = p;

	if (!kp || kp == &same_pair)
		return;
	diff_digest_free(kp->dg);
	free(kp->idx);
	free(kp->bytes);
	free(kp);
}

int diff_pairs_same(struct q2e_diff *d, enum q2e_diff_group g,
		    const struct q2e_image *a, const struct q2e_image *b,
		    uint64_t oa, uint64_t ob, struct q2e_error *err)
{
	uint64_t key[Q2E_MAP_KEY];

	if (!d->pairs && !(d->pairs = pairs_new(a, b)))
		return diff_nomem(err);
	pair_key(key, g, oa, ob);
	return q2e_map_put(&d->pairs->copies, key, &same_pair) < 0
		       ? diff_nomem(err)
		       : 0;
}

int diff_pairs_add(struct q2e_diff *d, enum q2e_diff_group g,
		   const struct q2e_image *a, const struct q2e_image *b,
		   uint64_t index, uint64_t guest_end, uint64_t oa,
		   uint64_t ob, const uint8_t *ta, const uint8_t *tb,
		   const char *symbol, struct q2e_error *err)
{
	struct q2e_diff_pairs *p = d->pairs;
	uint64_t key[Q2E_MAP_KEY];
	struct pair_rec *r;
	struct kept *kp;

	if (!p && !(p = d->pairs = pairs_new(a, b)))
		return diff_nomem(err);
	pair_key(key, g, oa, ob);
	kp = q2e_map_get(&p->copies, key);
	if (!kp) {
		kp = kept_new(p, g, oa, ob, ta, tb,
			      (size_t)p->geom.cluster_size);
		if (!kp || q2e_map_put(&p->copies, key, kp) < 0) {
			kept_free(kp);
			return diff_nomem(err);
		}
	}
	if (q2e_grow(p->v, p->cap, p->n + 1) < 0)
		return diff_nomem(err);
	kp->owners++;
	r = &p->v[p->n++];
	r->g = g;
	r->index = index;
	r->guest_end = guest_end ? guest_end : p->geom.guest_size;
	r->k = kp;
	snprintf(r->symbol, sizeof(r->symbol), "%s", symbol);
	p->has[g] = true;
	return 0;
}

/* The steps of entries [FROM, TO) of the refcount blocks of R, whose
 * bytes from entry FROM on are TA and TB, to FN until it returns false:
 * then false. */
static bool refblock_steps(const struct diff_pair_geom *geom,
			   const struct pair_rec *r, const uint8_t *ta,
			   const uint8_t *tb, uint64_t from, uint64_t to,
			   diff_step_fn *fn, void *arg)
{
	uint64_t n = geom->per_block, cs = geom->cluster_size;
	uint64_t per_chunk = SAME_CHUNK * 8 / (1U << geom->order_b);
	size_t len = (size_t)((to - from) / per_chunk * SAME_CHUNK);

	for (uint64_t j = from; j < to; j++) {
		uint64_t host, x, y, at = j - from;
		struct diff_step s;

		while (at % per_chunk == 0 && to - j >= per_chunk &&
		       memcmp(ta + at / per_chunk * SAME_CHUNK,
			      tb + at / per_chunk * SAME_CHUNK, SAME_CHUNK) == 0) {
			j += per_chunk;
			at += per_chunk;
		}
		if (j == to)
			break;
		host = (r->index * n + j) * cs;
		if (host >= geom->file_size)
			break;
		x = qcow2_refcount_get(ta, len, geom->order_a, at);
		y = qcow2_refcount_get(tb, len, geom->order_b, at);
		if (x == y)
			continue;
		s = (struct diff_step){
			.symbol = r->symbol,
			.kind = y > x ? DIFF_KIND_ROSE : DIFF_KIND_FELL,
			.index = j, .count = 1, .type = Q2E_DIFF_V_NUM,
			.old = x, .new = y, .start = host, .length = cs,
		};
		if (!fn(arg, &s))
			return false;
	}
	return true;
}

/* The steps of entries [FROM, TO) of record R's tables, whose bytes from
 * entry FROM on are TA and TB. */
static bool window_steps(const struct q2e_diff_pairs *p,
			 const struct pair_rec *r, const uint8_t *ta,
			 const uint8_t *tb, uint64_t from, uint64_t to,
			 diff_step_fn *fn, void *arg)
{
	if (r->g == Q2E_DIFF_G_L2 || r->g == Q2E_DIFF_G_SNAPSHOT_L2)
		return diff_l2_pair_steps(&p->geom, r->index, r->guest_end, ta,
					  tb, from, to, r->symbol, fn, arg);
	return refblock_steps(&p->geom, r, ta, tb, from, to, fn, arg);
}

/*
 * The steps of record R: of its tables whole, or of the chunks kept where
 * they differ, the rest being equal (a table that 65,536 entries name,
 * one entry changed, was 65,536 comparisons of 2 MiB).
 */
static bool record_steps(const struct q2e_diff_pairs *p,
			 const struct pair_rec *r, diff_step_fn *fn, void *arg)
{
	const struct kept *kp = r->k;
	uint64_t per_chunk, n;

	if (r->g == Q2E_DIFF_G_L2 || r->g == Q2E_DIFF_G_SNAPSHOT_L2) {
		n = p->geom.l2_entries;
		per_chunk = SAME_CHUNK / qcow2_l2_entry_size(&p->geom.l2b);
	} else {
		n = p->geom.per_block;
		per_chunk = SAME_CHUNK * 8 / (1U << p->geom.order_b);
	}
	if (!kp->idx)
		return window_steps(p, r, kp->wa, kp->wb, 0, n, fn, arg);
	for (size_t k = 0; k < kp->nchunks; k++) {
		uint64_t from = kp->idx[k] * per_chunk;

		if (!window_steps(p, r, kp->bytes + k * SAME_CHUNK,
				  kp->bytes + (kp->nchunks + k) * SAME_CHUNK,
				  from, from + per_chunk, fn, arg))
			return false;
	}
	return true;
}

/*
 * Whether each entry of record R's tables is below its end (the guest's,
 * or the file's), with room to spare below 2^64: no step of R is left
 * out, nor wraps, so that its steps are those of any other record of its
 * pair, moved from one's first byte to R's, *BASE.
 */
static bool record_whole(const struct q2e_diff_pairs *p,
			 const struct pair_rec *r, uint64_t *base)
{
	bool l2 = r->g == Q2E_DIFF_G_L2 || r->g == Q2E_DIFF_G_SNAPSHOT_L2;
	uint64_t n = l2 ? p->geom.l2_entries : p->geom.per_block;
	uint64_t end = l2 ? r->guest_end : p->geom.file_size;
	uint64_t max = UINT64_MAX >> p->geom.cluster_bits;	/* entries */

	if (!n || n > max || r->index > (max - (n - 1)) / n)
		return false;
	*base = (r->index * n) << p->geom.cluster_bits;
	return ((r->index * n + n - 1) << p->geom.cluster_bits) < end;
}

/* One record's steps, for its pair's digest. */
struct record_walk {
	const struct q2e_diff_pairs *p;
	const struct pair_rec *r;
};

static bool walk_record(void *arg, diff_step_fn *fn, void *fn_arg)
{
	const struct record_walk *w = arg;

	return record_steps(w->p, w->r, fn, fn_arg);
}

void diff_pairs_digest(struct q2e_diff_pairs *p, enum q2e_diff_group g,
		       uint64_t unit)
{
	for (size_t i = 0; p && i < p->n; i++) {
		struct pair_rec *r = &p->v[i];
		struct kept *kp = r->k;
		struct record_walk w = { p, r };
		uint64_t base;

		if (r->g != g || kp->owners < 2 || kp->dg || kp->undigested ||
		    !record_whole(p, r, &base))
			continue;
		kp->dg = diff_digest_make(walk_record, &w, base, unit,
					  DIGEST_BUDGET - p->digest_bytes);
		if (kp->dg)
			p->digest_bytes += diff_digest_bytes(kp->dg);
		else
			kp->undigested = true;
	}
}

bool diff_pairs_steps(const struct q2e_diff_pairs *p, enum q2e_diff_group g,
		      const struct diff_sink *sink)
{
	for (size_t i = 0; p && i < p->n; i++) {
		const struct pair_rec *r = &p->v[i];
		enum diff_replay how = DIFF_REPLAY_WALK;
		uint64_t base;

		if (r->g != g)
			continue;
		if (r->k->dg && record_whole(p, r, &base))
			how = sink->replay(sink->arg, r->k->dg, &p->geom, base,
					   r->symbol);
		if (how == DIFF_REPLAY_STOP ||
		    (how == DIFF_REPLAY_WALK &&
		     !record_steps(p, r, sink->step, sink->arg)))
			return false;
	}
	return true;
}

bool diff_pairs_has(const struct q2e_diff_pairs *p, enum q2e_diff_group g)
{
	return p && p->has[g];
}

void diff_pairs_free(struct q2e_diff_pairs *p)
{
	if (!p)
		return;
	q2e_map_free(&p->copies, kept_free);
	q2e_map_free(&p->tables, free);
	free(p->v);
	free(p);
}

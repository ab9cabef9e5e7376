/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diff of the L2 tables and refcount blocks, entry by entry.  One
 * comparison gives both views: each changed entry is a step (diff_runs.c)
 * under its symbol and index (l2_table_0[2400], refcount_block_0[26]),
 * whose guest or host bytes join the ranges of its kind.
 *
 * Where both images have the same geometry, tables are compared a table at
 * a time and byte-identical ones are skipped with one memcmp, so two dumps
 * of a huge image with preallocated metadata cost about one read of each
 * table; a pair that differs is kept, once, and its entries are compared
 * as the changes are counted and rendered (diff_pairs.c).  Otherwise
 * (other cluster sizes, L2 entry or refcount widths) they are compared
 * range by range through the models (diff_walk.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view/diff_int.h"

static bool is_zero(const struct qcow2_l2_entry *e)
{
	return e->type == QCOW2_CLUSTER_ZERO_PLAIN ||
	       e->type == QCOW2_CLUSTER_ZERO_ALLOC;
}

static bool has_host(const struct qcow2_l2_entry *e)
{
	return e->type == QCOW2_CLUSTER_NORMAL ||
	       e->type == QCOW2_CLUSTER_ZERO_ALLOC ||
	       e->type == QCOW2_CLUSTER_COMPRESSED;
}

/* How X became Y, or -1 if it did not change. */
int diff_l2_change(const struct qcow2_l2_entry *x,
		     const struct qcow2_l2_entry *y)
{
	int same_type = x->bitmap != y->bitmap ? Q2E_DIFF_L2_SUBCLUSTERS
					       : Q2E_DIFF_L2_OTHER;

	if (x->raw == y->raw && x->bitmap == y->bitmap)
		return -1;
	if (y->type == QCOW2_CLUSTER_UNALLOCATED) {
		if (x->type == QCOW2_CLUSTER_UNALLOCATED)
			return same_type;
		/* No host cluster existed: nothing was given back. */
		return x->type == QCOW2_CLUSTER_ZERO_PLAIN
			       ? Q2E_DIFF_L2_ZERO_CLEARED
			       : Q2E_DIFF_L2_FREED;
	}
	/* A discard that leaves a zero flag still gives the cluster back. */
	if (y->type == QCOW2_CLUSTER_ZERO_PLAIN && has_host(x))
		return Q2E_DIFF_L2_FREED;
	if (is_zero(y) && !is_zero(x))
		return Q2E_DIFF_L2_ZEROED;
	if (y->type == QCOW2_CLUSTER_COMPRESSED &&
	    x->type != QCOW2_CLUSTER_COMPRESSED)
		return Q2E_DIFF_L2_COMPRESSED;
	if (x->type == QCOW2_CLUSTER_UNALLOCATED ||
	    x->type == QCOW2_CLUSTER_ZERO_PLAIN)
		return x->type == y->type ? same_type : Q2E_DIFF_L2_ALLOCATED;
	/* Data written into a preallocated zero cluster, in place, or the
	 * cluster expanded by a downgrade: only the zero flag went. */
	if (x->type == QCOW2_CLUSTER_ZERO_ALLOC &&
	    y->type == QCOW2_CLUSTER_NORMAL && x->host_offset == y->host_offset)
		return Q2E_DIFF_L2_ZERO_CLEARED;
	if (x->host_offset != y->host_offset || x->type != y->type)
		return Q2E_DIFF_L2_REMAPPED;
	if (x->copied != y->copied)
		return Q2E_DIFF_L2_COPIED;
	return same_type;
}

/* What an L2 entry says, as gdb's view of it would: "data at 0x50000". */
void diff_l2_meaning(const struct qcow2_l2_entry *e, bool extended,
		     char *buf, size_t size)
{
	char base[96], sub[64] = "";
	const char *copied = e->copied ? ", COPIED" : "";

	switch (e->type) {
	case QCOW2_CLUSTER_UNALLOCATED:
		snprintf(base, sizeof(base), "unallocated%s", copied);
		break;
	case QCOW2_CLUSTER_NORMAL:
		snprintf(base, sizeof(base), "data at 0x%" PRIx64 "%s",
			 e->host_offset, copied);
		break;
	case QCOW2_CLUSTER_ZERO_PLAIN:
		snprintf(base, sizeof(base), "zero%s", copied);
		break;
	case QCOW2_CLUSTER_ZERO_ALLOC:
		snprintf(base, sizeof(base), "zero, host cluster 0x%" PRIx64 "%s",
			 e->host_offset, copied);
		break;
	case QCOW2_CLUSTER_COMPRESSED:
		snprintf(base, sizeof(base),
			 "compressed at 0x%" PRIx64 "+0x%" PRIx64,
			 e->host_offset, e->compressed_size);
		break;
	}
	if (extended)
		snprintf(sub, sizeof(sub), ", alloc 0x%08" PRIx64 " zero 0x%08" PRIx64,
			 e->bitmap & 0xffffffffU, e->bitmap >> 32);
	snprintf(buf, size, "%s%s%s", base, sub,
		 e->reserved ? ", reserved bits set" : "");
}

/* What the raw value of the next entry of a run would be. */
uint64_t diff_l2_step(const struct qcow2_l2_entry *e, uint64_t cluster_size)
{
	return (e->type == QCOW2_CLUSTER_NORMAL ||
		e->type == QCOW2_CLUSTER_ZERO_ALLOC) && e->host_offset
		       ? cluster_size
		       : 0;
}

/*
 * The region of KIND that IMG's table entry names at OFF, or NULL where
 * IMG has no such table (none there, misaligned, larger than a cluster:
 * the walk recorded why) or holds none of its bytes (past the end of the
 * file, or in a hole), whose entries then read as zeros.
 */
const struct q2e_region *diff_table_at(struct q2e_image *img, uint64_t off,
				       enum q2e_region_kind kind)
{
	const struct q2e_region *r = NULL;

	if (off && !(off & (img->cluster_size - 1)))
		r = diff_region_exact(img, off, kind);
	if (!r || !r->avail || r->size > img->cluster_size ||
	    q2e_image_holds_none(img, r->offset, r->avail))
		return NULL;
	return r;
}

int diff_load_table(struct q2e_image *img, const struct q2e_region *r,
		      uint8_t *buf, size_t size, struct q2e_error *err)
{
	memset(buf, 0, size);
	return r ? q2e_image_read_region(img, r, buf, err) : 0;
}

/*
 * The first index from I on, below N, where table A (NA entries) or B (NB)
 * holds an entry that is not zero, or N: an L1 or refcount table is mostly
 * zeros, and each test of an entry is a call of the fuzzer's coverage
 * hooks.  Eight entries of each at a time.
 */
uint64_t diff_next_nonzero(const uint64_t *a, uint64_t na,
			   const uint64_t *b, uint64_t nb, uint64_t i, uint64_t n)
{
	uint64_t both = na < nb ? na : nb;

	while (i < n) {
		if (i + 8 <= both &&
		    !(a[i] | a[i + 1] | a[i + 2] | a[i + 3] | a[i + 4] |
		      a[i + 5] | a[i + 6] | a[i + 7] | b[i] | b[i + 1] |
		      b[i + 2] | b[i + 3] | b[i + 4] | b[i + 5] | b[i + 6] |
		      b[i + 7])) {
			i += 8;
			continue;
		}
		if ((i < na && a[i]) || (i < nb && b[i]))
			return i;
		i++;
	}
	return n;
}

uint64_t diff_l2_offset(const struct q2e_image *img, uint64_t i)
{
	struct qcow2_l1_entry e;

	if (i >= img->nl1)
		return 0;
	qcow2_l1_entry_decode(img->l1[i], &e);
	return e.l2_offset;
}

bool diff_l1_mapped(const struct q2e_image *img, uint64_t i)
{
	uint64_t off = diff_l2_offset(img, i);

	return off && !(off & (img->cluster_size - 1));
}

/*
 * The first of entries [J, N) (ESIZE bytes each) that differ between the
 * tables X and Y, or N: identical entries record nothing, and two tables
 * that differ mostly differ in a few entries.  A block of entries at a
 * time: decoding each entry cost more than the rest of the diff.
 */
#define SAME_BLOCK 512
static uint64_t next_change(const uint8_t *x, const uint8_t *y, uint64_t j,
			    uint64_t n, unsigned esize)
{
	uint64_t per_block = SAME_BLOCK / esize;

	while (j < n) {
		if (j % per_block == 0 && n - j >= per_block &&
		    memcmp(x + j * esize, y + j * esize, SAME_BLOCK) == 0) {
			j += per_block;
			continue;
		}
		if (memcmp(x + j * esize, y + j * esize, esize) != 0)
			return j;
		j++;
	}
	return n;
}

static void l2_entry_in(const struct qcow2_l2_layout *l2, const uint8_t *table,
			uint64_t j, struct qcow2_l2_entry *e)
{
	const uint8_t *p = table + j * qcow2_l2_entry_size(l2);

	qcow2_l2_entry_decode(qcow2_be64(p), l2->extended ? qcow2_be64(p + 8) : 0,
			      l2, e);
}

/*
 * The tables of KIND at OA in A and OB in B, which entry I of an L1 or
 * refcount table names: kept in group G if they differ.  A pair seen
 * before is neither read nor compared again, and kept once.  An offset
 * that names no table counts as 0, so that entries pointing past the end
 * of the file (each elsewhere) make one pair, not a cluster's work each.
 */
static int table_pair(struct q2e_diff *d, enum q2e_diff_group g,
		      enum q2e_region_kind kind, enum q2e_owner_kind owner,
		      struct q2e_image *a, struct q2e_image *b, uint64_t i,
		      uint64_t oa, uint64_t ob, uint8_t *ta, uint8_t *tb,
		      struct q2e_error *err)
{
	const struct q2e_region *ra = diff_table_at(a, oa, kind);
	const struct q2e_region *rb = diff_table_at(b, ob, kind);
	enum diff_pair_seen seen;
	char sym[64];
	int ret;

	if (!ra && !rb)
		return 0;	/* both all zeros */
	oa = ra ? oa : 0;
	ob = rb ? ob : 0;
	seen = diff_pairs_seen(d, g, oa, ob);
	if (seen == DIFF_PAIR_SAME)
		return 0;
	if (seen == DIFF_PAIR_UNSEEN) {
		ret = diff_load_table(a, ra, ta, (size_t)a->cluster_size, err);
		if (!ret)
			ret = diff_load_table(b, rb, tb, (size_t)b->cluster_size, err);
		if (ret)
			return ret;
		/* One table that many entries name in both was compared
		 * for each (65,536 of 2 MiB: 30 s). */
		if (memcmp(ta, tb, (size_t)b->cluster_size) == 0)
			return diff_pairs_same(d, g, a, b, oa, ob, err);
	}
	diff_symbol(b, kind, 0, owner, 0, i, sym, sizeof(sym));
	return diff_pairs_add(d, g, a, b, i, 0, oa, ob, ta, tb, sym, err);
}

/* The L2 tables at L1 index I of A and B. */
static int l2_table_pair(struct q2e_diff *d, struct q2e_image *a,
			 struct q2e_image *b, uint64_t i, uint8_t *ta,
			 uint8_t *tb, struct q2e_error *err)
{
	return table_pair(d, Q2E_DIFF_G_L2, Q2E_REGION_L2, Q2E_OWNER_ACTIVE, a,
			  b, i, diff_l2_offset(a, i), diff_l2_offset(b, i), ta, tb, err);
}

bool diff_l2_pair_steps(const struct diff_pair_geom *geom, uint64_t index,
			uint64_t guest_end, const uint8_t *ta,
			const uint8_t *tb, uint64_t from, uint64_t to,
			const char *symbol, diff_step_fn *fn, void *arg)
{
	unsigned esize = qcow2_l2_entry_size(&geom->l2b);
	uint64_t n = geom->l2_entries, cs = geom->cluster_size;

	for (uint64_t j = from; j < to; j++) {
		uint64_t guest;
		struct qcow2_l2_entry x, y;
		struct diff_step s;
		int k;

		j = from + next_change(ta, tb, j - from, to - from, esize);
		if (j == to)
			break;
		guest = (index * n + j) << geom->cluster_bits;
		if (guest >= guest_end)
			break;
		l2_entry_in(&geom->l2a, ta, j - from, &x);
		l2_entry_in(&geom->l2b, tb, j - from, &y);
		k = diff_l2_change(&x, &y);
		if (k < 0)
			continue;
		s = (struct diff_step){
			.symbol = symbol, .kind = k, .index = j, .count = 1,
			.type = Q2E_DIFF_V_RAW, .old = x.raw, .new = y.raw,
			.has_bitmap = geom->l2b.extended,
			.old_bitmap = x.bitmap, .new_bitmap = y.bitmap,
			.old_step = diff_l2_step(&x, cs),
			.new_step = diff_l2_step(&y, cs), .x = &x, .y = &y,
			.start = guest, .length = cs,
		};
		if (!fn(arg, &s))
			return false;
	}
	return true;
}

/* Compares the tables (or blocks) at one index of A and B into buffers. */
typedef int pair_fn(struct q2e_diff *d, struct q2e_image *a,
		    struct q2e_image *b, uint64_t i, uint8_t *ta, uint8_t *tb,
		    struct q2e_error *err);

/*
 * PAIR at each index where A's table XA (NA entries) or B's XB (NB) names
 * a table, by OFFSET(); the two tables' buffers are made for the first,
 * so that an image with none (a 2 MB-cluster header alone) makes none.
 */
static int table_pairs(struct q2e_diff *d, struct q2e_image *a,
		       struct q2e_image *b, const uint64_t *xa, uint64_t na,
		       const uint64_t *xb, uint64_t nb,
		       uint64_t (*offset)(const struct q2e_image *, uint64_t),
		       pair_fn *pair, struct q2e_error *err)
{
	uint64_t n = na > nb ? na : nb;
	uint8_t *bufs = NULL;
	int ret = 0;

	for (uint64_t i = 0; i < n && !ret; i++) {
		i = diff_next_nonzero(xa, na, xb, nb, i, n);
		if (i == n)
			break;
		if (!offset(a, i) && !offset(b, i))
			continue;
		if (!bufs && !(bufs = malloc((size_t)a->cluster_size * 2))) {
			ret = diff_nomem(err);
			break;
		}
		ret = pair(d, a, b, i, bufs, bufs + a->cluster_size, err);
	}
	free(bufs);
	return ret;
}

int diff_l2(struct q2e_diff *d, struct q2e_image *a, struct q2e_image *b,
	    struct q2e_error *err)
{
	int ret;

	if (a->hdr.cluster_bits != b->hdr.cluster_bits ||
	    a->l2.extended != b->l2.extended)
		ret = diff_walk_add(d, a, b, Q2E_DIFF_G_L2, err);
	else
		ret = table_pairs(d, a, b, a->l1, a->nl1, b->l1, b->nl1,
				  diff_l2_offset, l2_table_pair, err);
	return ret ? ret : diff_runs_tally(d, Q2E_DIFF_G_L2, err);
}

uint64_t diff_block_offset(const struct q2e_image *img, uint64_t i)
{
	uint64_t off;

	if (i >= img->nreftable)
		return 0;
	off = img->reftable[i] & ~QCOW2_REFTABLE_RESERVED_MASK;
	return off < img->file_size ? off : 0;
}

/* The refcount blocks at refcount table index I of A and B. */
static int refblock_pair(struct q2e_diff *d, struct q2e_image *a,
			 struct q2e_image *b, uint64_t i, uint8_t *ba,
			 uint8_t *bb, struct q2e_error *err)
{
	return table_pair(d, Q2E_DIFF_G_REFCOUNT_BLOCK,
			  Q2E_REGION_REFCOUNT_BLOCK, Q2E_OWNER_IMAGE, a, b, i,
			  diff_block_offset(a, i), diff_block_offset(b, i), ba, bb, err);
}

int diff_refcounts(struct q2e_diff *d, struct q2e_image *a,
		   struct q2e_image *b, struct q2e_error *err)
{
	int ret;

	if (a->hdr.cluster_bits != b->hdr.cluster_bits ||
	    a->refcount_bits != b->refcount_bits || !b->refcount_bits)
		ret = diff_walk_add(d, a, b, Q2E_DIFF_G_REFCOUNT_BLOCK, err);
	else
		ret = table_pairs(d, a, b, a->reftable, a->nreftable,
				  b->reftable, b->nreftable, diff_block_offset,
				  refblock_pair, err);
	return ret ? ret : diff_runs_tally(d, Q2E_DIFF_G_REFCOUNT_BLOCK, err);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diff of the L2 tables and refcount blocks, entry by entry.  One
 * comparison gives both views: each changed entry is recorded under its
 * symbol and index (l2_table_0[2400], refcount_block_0[26]) and its guest
 * or host bytes join the ranges of its kind.
 *
 * Where both images have the same geometry, tables are compared a table at
 * a time and byte-identical ones are skipped with one memcmp, so two dumps
 * of a huge image with preallocated metadata cost about one read of each
 * table; a pair that differs is kept, once, and its entries are compared
 * as the changes are counted and rendered (diff_pairs.c).  Otherwise
 * (other cluster sizes, L2 entry or refcount widths) they are compared
 * range by range through the model's lookups, a step where either image's
 * entry may change (the end of a cluster, of a run of identical entries,
 * of a range with no table), and named by the new image's tables.
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
static int l2_change(const struct qcow2_l2_entry *x,
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
static void l2_meaning_in(const struct qcow2_l2_entry *e, bool extended,
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

#define MEANING_MAX 192

static char *l2_meaning(const struct qcow2_l2_entry *e, bool extended)
{
	char buf[MEANING_MAX];

	l2_meaning_in(e, extended, buf, sizeof(buf));
	return strdup(buf);
}

/* What the raw value of the next entry of a run would be. */
static uint64_t l2_step(const struct qcow2_l2_entry *e, uint64_t cluster_size)
{
	return (e->type == QCOW2_CLUSTER_NORMAL ||
		e->type == QCOW2_CLUSTER_ZERO_ALLOC) && e->host_offset
		       ? cluster_size
		       : 0;
}

/* Records that entries INDEX to INDEX + N - 1 of SYM changed from X to Y
 * (each one step on from the last, N > 1 where B's entry repeats), covering
 * guest bytes [GUEST, GUEST + LEN). */
static int l2_record(struct q2e_diff *d, const struct q2e_image *b,
		     const char *sym, uint64_t index, uint64_t guest,
		     uint64_t len, uint64_t n, const struct qcow2_l2_entry *x,
		     const struct qcow2_l2_entry *y, struct q2e_error *err)
{
	int k = l2_change(x, y);
	const char *change;
	struct q2e_diff_entry *e;
	int ret;

	if (k < 0)
		return 0;
	ret = diff_ranges_add(&d->l2[k], guest, len, len / d->unit, err);
	change = q2e_diff_l2_kind_name((enum q2e_diff_l2_kind)k);
	if (ret || diff_entry_extend(d, Q2E_DIFF_G_L2, sym, index, n, change,
				     x->raw, y->raw, x->bitmap, y->bitmap, len))
		return ret;
	e = diff_entry_new(d, Q2E_DIFF_G_L2, sym, NULL, err);
	if (!e)
		return err->code;
	e->count = n;
	d->groups[Q2E_DIFF_G_L2].changed += n - 1;
	e->indexed = true;
	e->index = index;
	e->change = change;
	e->old = (struct q2e_diff_value){ .type = Q2E_DIFF_V_RAW, .num = x->raw,
					  .has_bitmap = b->l2.extended,
					  .bitmap = x->bitmap };
	e->new = (struct q2e_diff_value){ .type = Q2E_DIFF_V_RAW, .num = y->raw,
					  .has_bitmap = b->l2.extended,
					  .bitmap = y->bitmap };
	e->old_step = l2_step(x, b->cluster_size);
	e->new_step = l2_step(y, b->cluster_size);
	e->has_range = true;
	e->range_start = guest;
	e->range_length = len;
	e->old.meaning = l2_meaning(x, b->l2.extended);
	e->new.meaning = l2_meaning(y, b->l2.extended);
	return e->old.meaning && e->new.meaning ? 0 : diff_nomem(err);
}

/*
 * Reads the table of KIND at OFF into BUF (SIZE bytes); zeros where IMG has
 * no such table, or it is misaligned (the walk recorded why).
 */
static int load_table(struct q2e_image *img, uint64_t off,
		      enum q2e_region_kind kind, uint8_t *buf, size_t size,
		      struct q2e_error *err)
{
	const struct q2e_region *r = NULL;

	if (off && !(off & (img->cluster_size - 1)))
		r = diff_region_exact(img, off, kind);
	memset(buf, 0, size);
	if (!r || r->size > size)
		return 0;
	return q2e_image_read_region(img, r, buf, err);
}

/*
 * The first index from I on, below N, where table A (NA entries) or B (NB)
 * holds an entry that is not zero, or N: an L1 or refcount table is mostly
 * zeros, and each test of an entry is a call of the fuzzer's coverage
 * hooks.  Eight entries of each at a time.
 */
static uint64_t next_nonzero(const uint64_t *a, uint64_t na,
			     const uint64_t *b, uint64_t nb, uint64_t i,
			     uint64_t n)
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

static uint64_t l2_offset(const struct q2e_image *img, uint64_t i)
{
	struct qcow2_l1_entry e;

	if (i >= img->nl1)
		return 0;
	qcow2_l1_entry_decode(img->l1[i], &e);
	return e.l2_offset;
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
 * before is neither read nor compared again, and kept once.
 */
static int table_pair(struct q2e_diff *d, enum q2e_diff_group g,
		      enum q2e_region_kind kind, enum q2e_owner_kind owner,
		      struct q2e_image *a, struct q2e_image *b, uint64_t i,
		      uint64_t oa, uint64_t ob, uint8_t *ta, uint8_t *tb,
		      struct q2e_error *err)
{
	bool seen = diff_pairs_seen(d, g, oa, ob);
	char sym[64];
	int ret = 0;

	if (!seen)
		ret = load_table(a, oa, kind, ta, (size_t)a->cluster_size, err);
	if (!seen && !ret)
		ret = load_table(b, ob, kind, tb, (size_t)b->cluster_size, err);
	if (ret || (!seen && memcmp(ta, tb, (size_t)b->cluster_size) == 0))
		return ret;
	diff_symbol(b, kind, 0, owner, 0, i, sym, sizeof(sym));
	return diff_pairs_add(d, g, a, b, i, oa, ob, ta, tb, sym, err);
}

/* The L2 tables at L1 index I of A and B. */
static int l2_table_pair(struct q2e_diff *d, struct q2e_image *a,
			 struct q2e_image *b, uint64_t i, uint8_t *ta,
			 uint8_t *tb, struct q2e_error *err)
{
	return table_pair(d, Q2E_DIFF_G_L2, Q2E_REGION_L2, Q2E_OWNER_ACTIVE, a,
			  b, i, l2_offset(a, i), l2_offset(b, i), ta, tb, err);
}

/* A change being made by diff_l2_pair_changes(), and its meanings. */
struct l2_made {
	struct q2e_diff_entry e;
	char old_meaning[MEANING_MAX], new_meaning[MEANING_MAX];
	bool open;
};

bool diff_l2_pair_changes(const struct diff_pair_geom *geom, uint64_t index,
			  const uint8_t *ta, const uint8_t *tb,
			  const char *symbol, bool meanings, diff_entry_fn *fn,
			  void *arg)
{
	unsigned esize = qcow2_l2_entry_size(&geom->l2b);
	uint64_t n = geom->l2_entries, cs = geom->cluster_size;
	struct l2_made m = { .e.symbol = (char *)symbol };
	struct q2e_diff_entry *e = &m.e;

	for (uint64_t j = 0; j < n; j++) {
		uint64_t guest;
		struct qcow2_l2_entry x, y;
		const char *change;
		int k;

		j = next_change(ta, tb, j, n, esize);
		if (j == n)
			break;
		guest = (index * n + j) << geom->cluster_bits;
		if (guest >= geom->guest_size)
			break;
		l2_entry_in(&geom->l2a, ta, j, &x);
		l2_entry_in(&geom->l2b, tb, j, &y);
		k = l2_change(&x, &y);
		if (k < 0)
			continue;
		change = q2e_diff_l2_kind_name((enum q2e_diff_l2_kind)k);
		/* as diff_entry_extend() joins a run */
		if (m.open && strcmp(e->change, change) == 0 &&
		    e->index + e->count == j &&
		    e->old.num + e->count * e->old_step == x.raw &&
		    e->new.num + e->count * e->new_step == y.raw &&
		    e->old.bitmap == x.bitmap && e->new.bitmap == y.bitmap) {
			e->count++;
			e->range_length += cs;
			continue;
		}
		if (m.open && !fn(arg, e))
			return false;
		*e = (struct q2e_diff_entry){
			.symbol = (char *)symbol, .indexed = true, .index = j,
			.count = 1, .change = change,
			.old = { .type = Q2E_DIFF_V_RAW, .num = x.raw,
				 .has_bitmap = geom->l2b.extended,
				 .bitmap = x.bitmap, .meaning = m.old_meaning },
			.new = { .type = Q2E_DIFF_V_RAW, .num = y.raw,
				 .has_bitmap = geom->l2b.extended,
				 .bitmap = y.bitmap, .meaning = m.new_meaning },
			.old_step = l2_step(&x, cs), .new_step = l2_step(&y, cs),
			.has_range = true, .range_start = guest,
			.range_length = cs,
		};
		if (meanings) {
			l2_meaning_in(&x, geom->l2b.extended, m.old_meaning,
				      sizeof(m.old_meaning));
			l2_meaning_in(&y, geom->l2b.extended, m.new_meaning,
				      sizeof(m.new_meaning));
		}
		m.open = true;
	}
	return !m.open || fn(arg, e);
}

static int l2_lookup(struct q2e_l2_cache *c, uint64_t off,
		     struct qcow2_l2_entry *e, struct q2e_error *err)
{
	int ret = q2e_image_l2_lookup(c, off, e, err);

	/* An unaligned L2 table is a problem of the model, not an error of
	 * the diff: its entries count as unallocated. */
	if (ret == Q2E_ECORRUPT) {
		q2e_error_clear(err);
		memset(e, 0, sizeof(*e));
		e->type = QCOW2_CLUSTER_UNALLOCATED;
		return 0;
	}
	return ret;
}

/* A * B, or UINT64_MAX where it would not fit. */
static uint64_t mul_sat(uint64_t a, uint64_t b)
{
	return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

/*
 * The first index at or past I, below N, where SET(IMG, index), or N: a
 * cursor over a table, so that each entry is looked at once however many
 * steps ask (indexes only grow).
 */
struct next_set {
	uint64_t from, next;	/* [FROM, NEXT) are not set; NEXT is */
};

static uint64_t next_set(struct next_set *c, const struct q2e_image *img,
			 uint64_t i, uint64_t n,
			 bool (*set)(const struct q2e_image *, uint64_t))
{
	if (i < c->from || i > c->next) {
		c->from = i;
		for (c->next = i; c->next < n && !set(img, c->next); c->next++)
			;
	}
	return c->next;
}

/* One image's side of the walk by ranges. */
struct l2_side {
	struct q2e_image *img;
	struct q2e_l2_cache *cache;
	uint64_t span;		/* guest bytes per L1 entry */
	struct next_set mapped;	/* over the L1 table */
	uint64_t run_from, run_end;	/* the last run of identical entries */
};

/* Whether L1 entry I of IMG names an L2 table the lookups read: an
 * unaligned one reads as unallocated (l2_lookup()). */
static bool l1_mapped(const struct q2e_image *img, uint64_t i)
{
	uint64_t off = l2_offset(img, i);

	return off && !(off & (img->cluster_size - 1));
}

/*
 * Where entry E, IMG's at guest offset OFF, stops being the same: the next
 * mapped L1 entry where none is mapped (UINT64_MAX past the last), else the
 * end of its run of identical entries (unallocated or zero, with no host
 * offset: a table of zeros, or one past the end of the file, is one run),
 * else the end of its cluster.  *SLOT_END: where OFF's L1 entry ends.
 */
static uint64_t same_until(struct l2_side *s, uint64_t off,
			   const struct qcow2_l2_entry *e, uint64_t *slot_end)
{
	struct q2e_image *img = s->img;
	uint64_t slot = off / s->span, cluster = off >> img->hdr.cluster_bits;
	uint64_t run = 0;

	*slot_end = mul_sat(slot + 1, s->span);
	if (slot >= img->nl1 || !l1_mapped(img, slot)) {
		uint64_t next = next_set(&s->mapped, img, slot, img->nl1,
					 l1_mapped);

		return next < img->nl1 ? mul_sat(next, s->span) : UINT64_MAX;
	}
	/* A run is scanned once: where the other image steps cluster by
	 * cluster through it, scanning it again at each step was quadratic. */
	if (off >= s->run_from && off < s->run_end)
		return s->run_end;
	if (!e->host_offset)
		run = q2e_image_l2_run(s->cache, off, img->l2_entries);
	if (!run)
		return mul_sat(cluster + 1, img->cluster_size);
	s->run_from = off;
	s->run_end = mul_sat(cluster + 1 + run, img->cluster_size);
	return s->run_end;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/*
 * Other geometries: range by range, named by B's tables.  Each step is a
 * range over which both images' entries stay the same, so work follows the
 * entries in the tables, not the virtual size or the smaller cluster: a
 * 2 MiB-cluster table against a 512-byte-cluster image was a billion steps.
 * A change is recorded per entry of B (several at once where B's entry
 * repeats), so that it is named as B's table names it.
 */
static int l2_by_range(struct q2e_diff *d, struct q2e_image *a,
		       struct q2e_image *b, struct q2e_error *err)
{
	uint64_t size = a->hdr.size > b->hdr.size ? a->hdr.size : b->hdr.size;
	uint64_t limit = mul_sat(size / d->unit + !!(size % d->unit), d->unit);
	unsigned bits = b->hdr.cluster_bits;
	struct l2_side sa = { .img = a, .cache = q2e_l2_cache_new(a),
			      .span = a->l2_entries << a->hdr.cluster_bits,
			      .mapped = { 1, 0 } };
	struct l2_side sb = { .img = b, .cache = q2e_l2_cache_new(b),
			      .span = b->l2_entries << bits,
			      .mapped = { 1, 0 } };
	int ret = sa.cache && sb.cache ? 0 : diff_nomem(err);

	for (uint64_t off = 0, end; off < limit && !ret; off = end) {
		uint64_t end_a, end_b, slot_a, slot_b, first, n;
		struct qcow2_l2_entry x, y;
		char sym[64];

		ret = l2_lookup(sa.cache, off, &x, err);
		if (!ret)
			ret = l2_lookup(sb.cache, off, &y, err);
		if (ret)
			break;
		end_a = same_until(&sa, off, &x, &slot_a);
		end_b = same_until(&sb, off, &y, &slot_b);
		end = min_u64(min_u64(end_a, end_b), limit);
		if (l2_change(&x, &y) < 0)
			continue;
		/* Within one of B's tables, and whole entries of B, or a part
		 * of one. */
		end = min_u64(end, slot_b);
		first = off >> bits;
		if (off & (b->cluster_size - 1))
			end = min_u64(end, mul_sat(first + 1, b->cluster_size));
		else if (end - off >= b->cluster_size)
			end = off + ((end - off) & ~(b->cluster_size - 1));
		n = end - off >= b->cluster_size ? (end - off) >> bits : 1;
		diff_symbol(b, Q2E_REGION_L2, 0, Q2E_OWNER_ACTIVE, 0,
			    first / b->l2_entries, sym, sizeof(sym));
		ret = l2_record(d, b, sym, first % b->l2_entries, off,
				end - off, n, &x, &y, err);
	}
	q2e_l2_cache_free(sa.cache);
	q2e_l2_cache_free(sb.cache);
	return ret;
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
		i = next_nonzero(xa, na, xb, nb, i, n);
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
		return l2_by_range(d, a, b, err);
	ret = table_pairs(d, a, b, a->l1, a->nl1, b->l1, b->nl1, l2_offset,
			  l2_table_pair, err);
	if (ret == 0)
		diff_pairs_tally(d, Q2E_DIFF_G_L2);
	return ret;
}

/* Records that host cluster C's refcount went from X to Y. */
static int refcount_record(struct q2e_diff *d, const char *sym,
			   uint64_t index, uint64_t host, uint64_t len,
			   uint64_t x, uint64_t y, struct q2e_error *err)
{
	const char *change = y > x ? "rose" : "fell";
	struct q2e_diff_entry *e;
	int ret;

	ret = diff_ranges_add(y > x ? &d->refcount_rose : &d->refcount_fell,
			      host, len, 1, err);
	if (ret || diff_entry_extend(d, Q2E_DIFF_G_REFCOUNT_BLOCK, sym, index,
				     1, change, x, y, 0, 0, len))
		return ret;
	e = diff_entry_new(d, Q2E_DIFF_G_REFCOUNT_BLOCK, sym, NULL, err);
	if (!e)
		return err->code;
	e->indexed = true;
	e->index = index;
	e->change = change;
	e->old = (struct q2e_diff_value){ .type = Q2E_DIFF_V_NUM, .num = x };
	e->new = (struct q2e_diff_value){ .type = Q2E_DIFF_V_NUM, .num = y };
	e->has_range = true;
	e->range_start = host;
	e->range_length = len;
	return 0;
}

static uint64_t block_offset(const struct q2e_image *img, uint64_t i)
{
	uint64_t off;

	if (i >= img->nreftable)
		return 0;
	off = img->reftable[i] & ~QCOW2_REFTABLE_RESERVED_MASK;
	return off < img->file_size ? off : 0;
}

static uint64_t per_block(const struct q2e_image *img)
{
	return img->refcount_bits ? img->cluster_size * 8 / img->refcount_bits
				  : 0;
}

/* The refcount blocks at refcount table index I of A and B. */
static int refblock_pair(struct q2e_diff *d, struct q2e_image *a,
			 struct q2e_image *b, uint64_t i, uint8_t *ba,
			 uint8_t *bb, struct q2e_error *err)
{
	return table_pair(d, Q2E_DIFF_G_REFCOUNT_BLOCK,
			  Q2E_REGION_REFCOUNT_BLOCK, Q2E_OWNER_IMAGE, a, b, i,
			  block_offset(a, i), block_offset(b, i), ba, bb, err);
}

/* One image's side of the refcount walk by ranges. */
struct refcount_side {
	struct q2e_image *img;
	uint64_t per_block;	/* clusters per block; 0: no refcounts */
	struct next_set blocks;	/* over the refcount table */
};

static bool has_block(const struct q2e_image *img, uint64_t i)
{
	return block_offset(img, i) != 0;
}

/* Where IMG's refcount for host offset OFF may change: the end of its
 * cluster inside a refcount block, else the start of the next block
 * (UINT64_MAX past the last: the counts are 0 from there on). */
static uint64_t refcount_until(struct refcount_side *s, uint64_t off)
{
	unsigned bits = s->img->hdr.cluster_bits;
	uint64_t c = off >> bits, i, next;

	if (!s->per_block)
		return UINT64_MAX;
	i = c / s->per_block;
	if (block_offset(s->img, i))
		return mul_sat(c + 1, s->img->cluster_size);
	next = next_set(&s->blocks, s->img, i, s->img->nreftable, has_block);
	if (next >= s->img->nreftable)
		return UINT64_MAX;
	return mul_sat(mul_sat(next, s->per_block), s->img->cluster_size);
}

/* Other geometries: range by range through the model (a step per cluster
 * inside a refcount block, one over a range with none), unit by unit where
 * the counts differ, named by B's blocks where B has one, else by A's. */
static int refcounts_by_range(struct q2e_diff *d, struct q2e_image *a,
			      struct q2e_image *b, struct q2e_error *err)
{
	uint64_t size = a->file_size > b->file_size ? a->file_size : b->file_size;
	struct refcount_side sa = { a, per_block(a), { 1, 0 } };
	struct refcount_side sb = { b, per_block(b), { 1, 0 } };
	int ret = 0;

	for (uint64_t off = 0, end; off < size && !ret; off = end) {
		struct q2e_image *named = b;
		uint64_t x, y, c, i;
		char sym[64];

		end = min_u64(refcount_until(&sa, off),
			      refcount_until(&sb, off));
		ret = q2e_image_refcount(a, off >> a->hdr.cluster_bits, &x, err);
		if (!ret)
			ret = q2e_image_refcount(b, off >> b->hdr.cluster_bits, &y,
						 err);
		if (ret || x == y)
			continue;
		end = off + d->unit;
		if (!sb.per_block ||
		    !block_offset(b, (off >> b->hdr.cluster_bits) / sb.per_block))
			named = sa.per_block ? a : b;
		c = off >> named->hdr.cluster_bits;
		i = per_block(named) ? c / per_block(named) : 0;
		diff_symbol(named, Q2E_REGION_REFCOUNT_BLOCK, 0, Q2E_OWNER_IMAGE,
			    0, i, sym, sizeof(sym));
		ret = refcount_record(d, sym, per_block(named) ? c % per_block(named) : c,
				      off, d->unit, x, y, err);
	}
	return ret;
}

int diff_refcounts(struct q2e_diff *d, struct q2e_image *a,
		   struct q2e_image *b, struct q2e_error *err)
{
	int ret;

	if (a->hdr.cluster_bits != b->hdr.cluster_bits ||
	    a->refcount_bits != b->refcount_bits || !b->refcount_bits)
		return refcounts_by_range(d, a, b, err);
	ret = table_pairs(d, a, b, a->reftable, a->nreftable, b->reftable,
			  b->nreftable, block_offset, refblock_pair, err);
	if (ret == 0)
		diff_pairs_tally(d, Q2E_DIFF_G_REFCOUNT_BLOCK);
	return ret;
}

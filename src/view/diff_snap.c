/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diff of each snapshot's own L2 tables, entry by entry (the group
 * snapshot-l2), against those of the snapshot it pairs with, by ID and
 * name as its entry does.  QEMU changes them in place only through
 * `qemu-img amend` to compat=0.10 (a zero entry made allocated) or a
 * repair, which is why a change of one is worth naming.
 *
 * Each snapshot L1 table is compared once, with the first table it pairs
 * with, so that the work is about one read of each side's tables:
 *   - snapshots whose tables start at one offset make one table, as long
 *     as the longest of them (each internal snapshot has its own, but an
 *     image may say otherwise);
 *   - a table compared before, on either side, is not compared again:
 *     4,096 snapshots that pair 16 tables with 16 others would be 256
 *     comparisons, each of tables that may fill the file;
 *   - a table that overlaps another of its image is not compared: 1,024
 *     tables of 1,024 entries each one entry on from the last, in a file
 *     of 630 KB, made a million pairs of L2 tables (33 million changes,
 *     15.8 GB of JSON).  QEMU never writes such tables; check reports
 *     the overlap.
 * The two L1 tables are read side by side a chunk at a time; a chunk that
 * neither file holds (a hole) is neither read nor scanned.  Where either
 * names an L2 table at an index, the pair of tables is compared, once
 * however many entries name it; a pair that the active L1 tables name
 * too was compared there (its changes are listed under l2_table_<i>, up
 * to the active image's virtual size).  A pair that differs is kept once
 * (diff_pairs.c) and lists every entry that changed, whatever the sizes
 * the snapshots give (a table's entries are its bytes, whichever
 * snapshot reaches them), named by a symbol of the new image's table, or
 * the snapshot's own symbol in the new image's numbering where the new
 * image holds no table.  Its changes give the snapshot's guest offsets
 * but count in no guest range: those are the active image's.  Images of
 * two geometries (cluster size, L2 entry width) are not compared.
 */
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/qcow2.h"
#include "view/diff_int.h"

/* The L1 tables of an image's snapshots, one an offset, sorted. */
struct l1_table {
	uint64_t offset;
	uint64_t l1_size;	/* the largest a snapshot there claims */
	uint64_t n;		/* its entries the file holds */
	uint32_t owner;		/* the snapshot that owns its L2 tables */
	bool done;		/* compared, or not to be (it overlaps) */
};

static int cmp_l1_table(const void *pa, const void *pb)
{
	const struct l1_table *a = pa, *b = pb;

	if (a->offset != b->offset)
		return a->offset < b->offset ? -1 : 1;
	if (a->l1_size != b->l1_size)	/* the longest first */
		return a->l1_size > b->l1_size ? -1 : 1;
	return a->owner < b->owner ? -1 : a->owner > b->owner;
}

/* Marks each of the N tables T (sorted by offset) that overlaps another
 * as done: it is not compared. */
static void mark_overlaps(struct l1_table *t, size_t n)
{
	uint64_t end = 0;	/* the furthest end before table i */
	size_t last = 0;	/* the table it is of */

	for (size_t i = 0; i < n; i++) {
		uint64_t e = t[i].offset + t[i].l1_size * 8;

		if (i && t[i].offset < end)
			t[i].done = t[last].done = true;
		if (e > end) {
			end = e;
			last = i;
		}
	}
}

/* IMG's snapshot L1 tables that the walk could read, in *OUT. */
static int l1_tables(const struct q2e_image *img, struct l1_table **out,
		     size_t *nout, struct q2e_error *err)
{
	size_t n = 0, k = 0;
	struct l1_table *t = malloc((img->nsnapshots ? img->nsnapshots : 1) *
				    sizeof(*t));

	*out = t;
	*nout = 0;
	if (!t)
		return diff_nomem(err);
	for (size_t i = 0; i < img->nsnapshots; i++) {
		const struct q2e_snapshot *s = &img->snapshots[i];

		if (s->l1_read)
			t[n++] = (struct l1_table){ s->entry.l1_table_offset,
						    s->entry.l1_size, s->nl1,
						    s->l1_first, false };
	}
	qsort(t, n, sizeof(*t), cmp_l1_table);
	for (size_t i = 0; i < n; i++)
		if (!k || t[i].offset != t[k - 1].offset)
			t[k++] = t[i];
	mark_overlaps(t, k);
	*nout = k;
	return 0;
}

static struct l1_table *l1_table_at(struct l1_table *t, size_t n,
				    const struct q2e_snapshot *s)
{
	struct l1_table key = { .offset = s->entry.l1_table_offset };
	size_t lo = 0, hi = n;

	if (!s->l1_read)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t[mid].offset < key.offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && t[lo].offset == key.offset ? &t[lo] : NULL;
}

/* A comparison of one pair of snapshot L1 tables. */
struct snap_cmp {
	struct q2e_diff *d;
	struct q2e_image *a, *b;
	const struct l1_table *xa, *xb;
	uint8_t *ta, *tb;	/* a cluster each */
	uint64_t *la, *lb;	/* a chunk of L1 entries each */
};

/* Owners looked through for the snapshot's own symbol of a table. */
#define OWNERS_LOOKED 64

/*
 * A symbol of table R for L1 index I of the table that snapshot OWNER's
 * symbols name: its own ("snapshot_0_l2_table_3") if the walk gave it one,
 * or the table's first, which gdb prints with the same bytes.
 */
static void pair_symbol(const struct q2e_image *img,
			const struct q2e_region *r, uint32_t owner,
			uint64_t i, char *buf, size_t size)
{
	uint32_t k = 0;

	for (uint32_t m = 0; m < r->nowners && m < OWNERS_LOOKED; m++) {
		const struct q2e_owner *o = &r->owners[m];

		if (o->kind == Q2E_OWNER_SNAPSHOT && o->id == owner &&
		    o->index == i) {
			k = m;
			break;
		}
	}
	if (q2e_region_symbol(img, r, k, buf, size) < 0)
		diff_symbol(img, Q2E_REGION_L2, 0, Q2E_OWNER_SNAPSHOT, owner, i,
			    buf, size);
}

static uint64_t l2_offset_of(uint64_t raw)
{
	struct qcow2_l1_entry e;

	qcow2_l1_entry_decode(raw, &e);
	return e.l2_offset;
}

/* The L2 tables that L1 entry I names in each (raw EA and EB). */
static int l2_pair(struct snap_cmp *c, uint64_t i, uint64_t ea, uint64_t eb,
		   struct q2e_error *err)
{
	struct q2e_image *a = c->a, *b = c->b;
	const struct q2e_region *ra = diff_table_at(a, l2_offset_of(ea),
						    Q2E_REGION_L2);
	const struct q2e_region *rb = diff_table_at(b, l2_offset_of(eb),
						    Q2E_REGION_L2);
	uint64_t oa = ra ? ra->offset : 0, ob = rb ? rb->offset : 0;
	size_t cs = (size_t)b->cluster_size;
	char sym[64];
	int ret;

	if ((!ra && !rb) ||
	    diff_pairs_seen(c->d, Q2E_DIFF_G_L2, oa, ob) != DIFF_PAIR_UNSEEN ||
	    diff_pairs_seen(c->d, Q2E_DIFF_G_SNAPSHOT_L2, oa, ob) !=
		    DIFF_PAIR_UNSEEN)
		return 0;
	ret = diff_load_table(a, ra, c->ta, cs, err);
	if (!ret)
		ret = diff_load_table(b, rb, c->tb, cs, err);
	if (ret)
		return ret;
	if (memcmp(c->ta, c->tb, cs) == 0)
		return diff_pairs_same(c->d, Q2E_DIFF_G_SNAPSHOT_L2, a, b, oa,
				       ob, err);
	/* Where the new image holds no table, the snapshot's own symbol in
	 * its numbering: the old one's would name another snapshot's table
	 * once one before it is deleted. */
	if (rb)
		pair_symbol(b, rb, c->xb->owner, i, sym, sizeof(sym));
	else
		diff_symbol(b, Q2E_REGION_L2, 0, Q2E_OWNER_SNAPSHOT,
			    c->xb->owner, i, sym, sizeof(sym));
	return diff_pairs_add(c->d, Q2E_DIFF_G_SNAPSHOT_L2, a, b, i,
			      UINT64_MAX, oa, ob, c->ta, c->tb, sym, err);
}

/* Entries [FIRST, FIRST + N) of table X that the file holds. */
static uint64_t held_in_chunk(const struct l1_table *x, uint64_t first,
			      uint64_t n)
{
	if (x->n <= first)
		return 0;
	return x->n - first < n ? x->n - first : n;
}

/* The L1 tables XA of A and XB of B, entry by entry, a chunk at a time. */
static int l1_pair(struct snap_cmp *c, struct q2e_error *err)
{
	uint64_t n = c->xa->n > c->xb->n ? c->xa->n : c->xb->n;
	int ret = 0;

	for (uint64_t first = 0; first < n && !ret; first += Q2E_TABLE_CHUNK) {
		uint64_t cnt = n - first < Q2E_TABLE_CHUNK ? n - first
							   : Q2E_TABLE_CHUNK;
		int64_t na, nb;

		na = q2e_image_table_chunk(c->a, c->xa->offset, first,
					   held_in_chunk(c->xa, first, cnt),
					   c->la, err);
		nb = na < 0 ? na
			    : q2e_image_table_chunk(c->b, c->xb->offset, first,
						    held_in_chunk(c->xb, first, cnt),
						    c->lb, err);
		if (nb < 0)
			return (int)nb;
		/* Past what each holds, the entries are zeros. */
		cnt = (uint64_t)(na > nb ? na : nb);
		for (uint64_t k = 0; !ret && k < cnt; k++) {
			k = diff_next_nonzero(c->la, (uint64_t)na, c->lb,
					      (uint64_t)nb, k, cnt);
			if (k == cnt)
				break;
			ret = l2_pair(c, first + k,
				      k < (uint64_t)na ? c->la[k] : 0,
				      k < (uint64_t)nb ? c->lb[k] : 0, err);
		}
	}
	return ret;
}

/* Each pair of snapshots (P) whose L1 tables (TA of A, TB of B) are
 * compared with no other. */
static int each_pair(struct snap_cmp *c, const struct diff_pairing *p,
		     struct l1_table *ta, size_t nta, struct l1_table *tb,
		     size_t ntb, struct q2e_error *err)
{
	int ret = 0;

	for (size_t j = 0; j < c->b->nsnapshots && !ret; j++) {
		const struct q2e_snapshot *sa, *sb = &c->b->snapshots[j];
		struct l1_table *xa, *xb;

		if (p->b[j] == SIZE_MAX)
			continue;
		sa = &c->a->snapshots[p->b[j]];
		xa = l1_table_at(ta, nta, sa);
		xb = l1_table_at(tb, ntb, sb);
		if (!xa || !xb || xa->done || xb->done)
			continue;
		xa->done = xb->done = true;
		c->xa = xa;
		c->xb = xb;
		ret = l1_pair(c, err);
	}
	return ret;
}

int diff_snapshot_l2(struct q2e_diff *d, struct q2e_image *a,
		     struct q2e_image *b, struct q2e_error *err)
{
	struct diff_pairing p = { 0 };
	struct l1_table *ta = NULL, *tb = NULL;
	size_t nta = 0, ntb = 0, cs = (size_t)b->cluster_size;
	struct snap_cmp c = { .d = d, .a = a, .b = b };
	uint8_t *bufs = NULL;
	int ret;

	if (a->hdr.cluster_bits != b->hdr.cluster_bits ||
	    a->l2.extended != b->l2.extended || !a->nsnapshots ||
	    !b->nsnapshots)
		return 0;
	ret = diff_pair_snapshots(&p, a, b, err);
	if (!ret)
		ret = l1_tables(a, &ta, &nta, err);
	if (!ret)
		ret = l1_tables(b, &tb, &ntb, err);
	if (!ret && nta && ntb) {
		bufs = malloc(cs * 2 + Q2E_TABLE_CHUNK * 8 * 2);
		if (!bufs) {
			ret = diff_nomem(err);
		} else {
			c.ta = bufs;
			c.tb = bufs + cs;
			c.la = (uint64_t *)(void *)(bufs + cs * 2);
			c.lb = c.la + Q2E_TABLE_CHUNK;
			ret = each_pair(&c, &p, ta, nta, tb, ntb, err);
		}
	}
	free(bufs);
	free(ta);
	free(tb);
	diff_pairing_free(&p);
	return ret ? ret : diff_runs_tally(d, Q2E_DIFF_G_SNAPSHOT_L2, err);
}

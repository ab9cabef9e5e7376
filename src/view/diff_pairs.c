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
 * entries name is copied once, so memory follows the tables in the
 * files; the changes themselves are as many as before, and so is JSON.
 *
 * The changes come out as the eager path of diff_entries.c made them: a
 * run of entries that change alike is one change, and a range joins the
 * last one of its kind where they touch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/array.h"
#include "qcow2elf/qcow2.h"
#include "view/diff_int.h"

/* Whole chunks of identical bytes hold no change. */
#define SAME_CHUNK 512

/*
 * What is kept of a pair of tables: both whole (A's, then B's, NCHUNKS
 * == the chunks of a table), or only the chunks that differ (IDX[i] is
 * where chunk i of A's, then of B's, goes): a table of 64 KB with one
 * entry changed keeps 1 KB, not 128 KB.  Identical chunks hold no change,
 * so they are made again as zeros in both.
 */
struct kept {
	size_t nchunks;
	uint32_t *idx;		/* NULL when whole */
	uint8_t *bytes;
};

/* Table entry INDEX (of the L1 or refcount table): its tables differ. */
struct pair_rec {
	enum q2e_diff_group g;
	uint64_t index;
	const struct kept *k;
	char symbol[64];
};

/* A copy of a pair of tables, by their offsets in the two files. */
struct pair_copy {
	enum q2e_diff_group g;
	uint64_t oa, ob;
	struct kept *k;		/* NULL: a free slot */
};

/* The two tables of a pair kept in part, made whole again. */
struct scratch {
	const struct kept *of;
	uint8_t *bytes;
};

struct q2e_diff_pairs {
	struct diff_pair_geom geom;
	struct pair_rec *v;
	size_t n, cap;
	struct pair_copy *slots;	/* open addressing, a power of two */
	size_t nslots, used;
	bool has[Q2E_DIFF_G_COUNT];
	struct scratch *scratch;
};

/* splitmix64's finalizer: every bit of Z moves every bit of the result. */
static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/*
 * The slot of the pair, or the free one where it would go.  The offsets
 * are mixed whole: a product's middle bits follow only the key's low
 * bits, and offsets that differ only above them (L1 entries past the end
 * of the file, 1 << 39 apart) all fell in one slot, each insertion a walk
 * over every pair before it.
 */
static size_t slot_of(const struct q2e_diff_pairs *p, enum q2e_diff_group g,
		      uint64_t oa, uint64_t ob)
{
	size_t mask = p->nslots - 1;
	size_t i = (size_t)mix64(mix64(oa ^ (uint64_t)g << 58) ^ ob) & mask;

	while (p->slots[i].k && (p->slots[i].g != g ||
				     p->slots[i].oa != oa ||
				     p->slots[i].ob != ob))
		i = (i + 1) & mask;
	return i;
}

static int grow_slots(struct q2e_diff_pairs *p)
{
	struct q2e_diff_pairs n = *p;

	n.nslots = p->nslots ? p->nslots * 2 : 64;
	n.slots = calloc(n.nslots, sizeof(*n.slots));
	if (!n.slots)
		return -1;
	for (size_t i = 0; i < p->nslots; i++) {
		const struct pair_copy *c = &p->slots[i];

		if (c->k)
			n.slots[slot_of(&n, c->g, c->oa, c->ob)] = *c;
	}
	free(p->slots);
	p->slots = n.slots;
	p->nslots = n.nslots;
	return 0;
}

bool diff_pairs_seen(const struct q2e_diff *d, enum q2e_diff_group g,
		     uint64_t oa, uint64_t ob)
{
	const struct q2e_diff_pairs *p = d->pairs;

	return p && p->nslots && p->slots[slot_of(p, g, oa, ob)].k;
}

static struct q2e_diff_pairs *pairs_new(const struct q2e_diff *d,
					const struct q2e_image *a,
					const struct q2e_image *b)
{
	struct q2e_diff_pairs *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->scratch = calloc(1, sizeof(*p->scratch));
	if (p->scratch)
		p->scratch->bytes = malloc((size_t)b->cluster_size * 2);
	if (!p->scratch || !p->scratch->bytes) {
		diff_pairs_free(p);
		return NULL;
	}
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
		.unit = d->unit,
	};
	return p;
}

/* A copy of TA and TB (CS bytes each), or of the chunks where they differ
 * if that is at most half of them. */
static struct kept *kept_new(const uint8_t *ta, const uint8_t *tb, size_t cs)
{
	size_t all = cs / SAME_CHUNK, nd = 0, k = 0;
	struct kept *kp = calloc(1, sizeof(*kp));

	if (!kp)
		return NULL;
	for (size_t c = 0; c < all; c++)
		nd += memcmp(ta + c * SAME_CHUNK, tb + c * SAME_CHUNK,
			     SAME_CHUNK) != 0;
	if (all < 2 || nd * 2 > all) {
		kp->nchunks = all;
		kp->bytes = malloc(cs * 2);
		if (!kp->bytes) {
			free(kp);
			return NULL;
		}
		memcpy(kp->bytes, ta, cs);
		memcpy(kp->bytes + cs, tb, cs);
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

static void kept_free(struct kept *kp)
{
	if (!kp)
		return;
	free(kp->idx);
	free(kp->bytes);
	free(kp);
}

/* The tables of KP, A's then B's, whole. */
static const uint8_t *kept_tables(const struct q2e_diff_pairs *p,
				  const struct kept *kp)
{
	size_t cs = (size_t)p->geom.cluster_size;
	struct scratch *s = p->scratch;

	if (!kp->idx)
		return kp->bytes;
	if (s->of != kp) {
		memset(s->bytes, 0, cs * 2);
		for (size_t k = 0; k < kp->nchunks; k++) {
			size_t at = (size_t)kp->idx[k] * SAME_CHUNK;

			memcpy(s->bytes + at, kp->bytes + k * SAME_CHUNK,
			       SAME_CHUNK);
			memcpy(s->bytes + cs + at,
			       kp->bytes + (kp->nchunks + k) * SAME_CHUNK,
			       SAME_CHUNK);
		}
		s->of = kp;
	}
	return s->bytes;
}

int diff_pairs_add(struct q2e_diff *d, enum q2e_diff_group g,
		   const struct q2e_image *a, const struct q2e_image *b,
		   uint64_t index, uint64_t oa, uint64_t ob,
		   const uint8_t *ta, const uint8_t *tb, const char *symbol,
		   struct q2e_error *err)
{
	struct q2e_diff_pairs *p = d->pairs;
	struct pair_rec *r;
	size_t cs, i;

	if (!p && !(p = d->pairs = pairs_new(d, a, b)))
		return diff_nomem(err);
	cs = (size_t)p->geom.cluster_size;
	if ((p->used + 1) * 2 > p->nslots && grow_slots(p) < 0)
		return diff_nomem(err);
	i = slot_of(p, g, oa, ob);
	if (!p->slots[i].k) {
		struct kept *kp = kept_new(ta, tb, cs);

		if (!kp)
			return diff_nomem(err);
		p->slots[i] = (struct pair_copy){ g, oa, ob, kp };
		p->used++;
	}
	if (q2e_grow(p->v, p->cap, p->n + 1) < 0)
		return diff_nomem(err);
	r = &p->v[p->n++];
	r->g = g;
	r->index = index;
	r->k = p->slots[i].k;
	snprintf(r->symbol, sizeof(r->symbol), "%s", symbol);
	p->has[g] = true;
	return 0;
}

static const char ROSE[] = "rose", FELL[] = "fell";

/*
 * The changes of the refcount blocks R->a and R->b, in entry order, runs
 * joined, to FN until it returns false: then false.
 */
static bool refblock_changes(const struct diff_pair_geom *geom,
			     const struct pair_rec *r, const uint8_t *ta,
			     const uint8_t *tb, diff_entry_fn *fn, void *arg)
{
	uint64_t n = geom->per_block, cs = geom->cluster_size;
	uint64_t per_chunk = SAME_CHUNK * 8 / (1U << geom->order_b);
	struct q2e_diff_entry e = { .symbol = (char *)r->symbol };
	bool open = false;

	for (uint64_t j = 0; j < n; j++) {
		uint64_t host, x, y;
		const char *change;

		while (j % per_chunk == 0 && n - j >= per_chunk &&
		       memcmp(ta + j / per_chunk * SAME_CHUNK,
			      tb + j / per_chunk * SAME_CHUNK, SAME_CHUNK) == 0)
			j += per_chunk;
		if (j == n)
			break;
		host = (r->index * n + j) * cs;
		if (host >= geom->file_size)
			break;
		x = qcow2_refcount_get(ta, (size_t)cs, geom->order_a, j);
		y = qcow2_refcount_get(tb, (size_t)cs, geom->order_b, j);
		if (x == y)
			continue;
		change = y > x ? ROSE : FELL;
		if (open && e.change == change && e.index + e.count == j &&
		    e.old.num == x && e.new.num == y) {
			e.count++;
			e.range_length += cs;
			continue;
		}
		if (open && !fn(arg, &e))
			return false;
		e.indexed = true;
		e.index = j;
		e.count = 1;
		e.change = change;
		e.old = (struct q2e_diff_value){ .type = Q2E_DIFF_V_NUM, .num = x };
		e.new = (struct q2e_diff_value){ .type = Q2E_DIFF_V_NUM, .num = y };
		e.has_range = true;
		e.range_start = host;
		e.range_length = cs;
		open = true;
	}
	return !open || fn(arg, &e);
}

bool diff_pairs_changes(const struct q2e_diff_pairs *p, enum q2e_diff_group g,
			bool meanings, diff_entry_fn *fn, void *arg)
{
	for (size_t i = 0; p && i < p->n; i++) {
		const struct pair_rec *r = &p->v[i];
		const uint8_t *t;
		bool go;

		if (r->g != g)
			continue;
		t = kept_tables(p, r->k);
		if (g == Q2E_DIFF_G_L2)
			go = diff_l2_pair_changes(&p->geom, r->index, t,
						  t + p->geom.cluster_size,
						  r->symbol, meanings, fn, arg);
		else
			go = refblock_changes(&p->geom, r, t,
					      t + p->geom.cluster_size, fn, arg);
		if (!go)
			return false;
	}
	return true;
}

bool diff_pairs_has(const struct q2e_diff_pairs *p, enum q2e_diff_group g)
{
	return p && p->has[g];
}

/* The ranges of one kind of change, joined where they touch. */
struct ranges_walk {
	const char *change;
	struct q2e_diff_range cur;
	bool open;
	diff_range_fn *fn;
	void *arg;
	bool stopped;
};

static bool range_step(void *arg, const struct q2e_diff_entry *e)
{
	struct ranges_walk *w = arg;

	if (strcmp(e->change, w->change) != 0)
		return true;
	if (w->open && w->cur.start + w->cur.length == e->range_start) {
		w->cur.length += e->range_length;
		return true;
	}
	if (w->open && !w->fn(w->arg, &w->cur)) {
		w->stopped = true;
		return false;
	}
	w->cur = (struct q2e_diff_range){ e->range_start, e->range_length };
	w->open = true;
	return true;
}

void diff_pairs_ranges(const struct q2e_diff_pairs *p, enum q2e_diff_group g,
		       const char *change, diff_range_fn *fn, void *arg)
{
	struct ranges_walk w = { .change = change, .fn = fn, .arg = arg };

	diff_pairs_changes(p, g, false, range_step, &w);
	if (w.open && !w.stopped)
		fn(w.arg, &w.cur);
}

/* The counts of a group and of its ranges, for the summary, in one pass:
 * the ranges of each kind (the L2 kinds, then rose and fell) are joined
 * where they touch, as diff_ranges_add() joins them. */
#define NKINDS (Q2E_DIFF_L2_COUNT + 2)
struct tally {
	struct q2e_diff *d;
	enum q2e_diff_group g;
	const char *last_symbol;
	uint64_t end[NKINDS];	/* of the last range of each kind */
	bool open[NKINDS];
};

static struct q2e_diff_ranges *kind_ranges(struct q2e_diff *d,
					   const char *change, int *kind)
{
	*kind = Q2E_DIFF_L2_COUNT;
	if (change == ROSE)
		return &d->refcount_rose;
	*kind = Q2E_DIFF_L2_COUNT + 1;
	if (change == FELL)
		return &d->refcount_fell;
	for (int k = 0; k < Q2E_DIFF_L2_COUNT; k++) {
		*kind = k;
		if (change == q2e_diff_l2_kind_name((enum q2e_diff_l2_kind)k))
			return &d->l2[k];
	}
	return NULL;
}

static bool count_change(void *arg, const struct q2e_diff_entry *e)
{
	struct tally *t = arg;
	struct q2e_diff_entries *l = &t->d->groups[t->g];
	int k;
	struct q2e_diff_ranges *r = kind_ranges(t->d, e->change, &k);

	if (!t->last_symbol || strcmp(t->last_symbol, e->symbol) != 0)
		l->structures++;
	t->last_symbol = e->symbol;
	l->n++;
	l->changed += e->count;
	if (!r)
		return true;
	r->units += e->range_length / t->d->unit;
	if (!t->open[k] || t->end[k] != e->range_start)
		r->n++;
	t->open[k] = true;
	t->end[k] = e->range_start + e->range_length;
	return true;
}

void diff_pairs_tally(struct q2e_diff *d, enum q2e_diff_group g)
{
	struct tally t = { .d = d, .g = g };

	if (diff_pairs_has(d->pairs, g))
		diff_pairs_changes(d->pairs, g, false, count_change, &t);
}

void diff_pairs_free(struct q2e_diff_pairs *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nslots; i++)
		kept_free(p->slots[i].k);
	free(p->slots);
	if (p->scratch)
		free(p->scratch->bytes);
	free(p->scratch);
	free(p->v);
	free(p);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diff of the tables: which appeared, disappeared or moved, and entry by
 * entry the active L1, the L2 tables it points to, the refcount table and
 * the refcount blocks.  One comparison gives both views: each changed
 * entry is recorded by its symbol and index (l2_table_0[2400]) and its
 * guest or host bytes are added to the ranges of its kind.
 *
 * Where both images have the same geometry, tables are compared a table at
 * a time, and byte-identical tables are skipped with one memcmp: two dumps
 * of a huge image with preallocated metadata cost about one read of each
 * table, and memory holds two tables.  Otherwise (other cluster sizes,
 * extended L2 or refcount widths) they are compared unit by unit through
 * the model's lookups.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/array.h"
#include "view/diff_int.h"

/*
 * A run of a region's owners, R->owners[K .. K + N): of one kind and ID,
 * at consecutive indexes, the entries of one table that name it one after
 * another.  Tables are matched by their owners' names, a run at a time:
 * QEMU's largest L1 table, 4 million entries naming one L2 table, is one
 * run, not 4 million references (diff of two such images took 300 MB).
 */
struct table_ref {
	const struct q2e_region *r;
	uint32_t k, n;
	uint32_t as;	/* the owners' snapshot ID, if not theirs: OWN */
	uint32_t key;	/* the owners' ID as both images' runs compare it */
};

#define OWN UINT32_MAX

/*
 * One image's side of the comparison.  Snapshots and bitmaps are paired
 * as their entries are (by ID and name, by name: diff_match.c), not by
 * position: with the second of three snapshots deleted, the third's
 * tables are snapshot_2_* in one dump and snapshot_1_* in the other, and
 * they did not move.  So a table's owner compares by key: in the first
 * image its position, in the second its partner's position in the first,
 * or past the first's entries where it has none.
 */
struct side {
	const struct q2e_image *img, *other;
	const struct diff_pairing *snaps, *bitmaps;
	bool second;
};

/* The key of IMG's entry POS of pairing P (its table of N entries). */
static uint32_t pair_key_of(const struct diff_pairing *p, bool second,
			    uint32_t pos)
{
	const size_t *partner = second ? p->b : p->a;
	size_t n = second ? p->nb : p->na;

	if (!second)
		return pos;
	if (pos < n && partner[pos] != SIZE_MAX)
		return (uint32_t)partner[pos];
	return (uint32_t)(p->na + pos);
}

/* The key of owner O on side S. */
static uint32_t owner_key(const struct side *s, const struct q2e_owner *o,
			  uint32_t as)
{
	uint32_t id = as != OWN ? as : o->id;

	if (o->kind == Q2E_OWNER_SNAPSHOT)
		return pair_key_of(s->snaps, s->second, id);
	if (o->kind == Q2E_OWNER_BITMAP)
		return pair_key_of(s->bitmaps, s->second, id);
	return id;
}

/* Owner J of run T. */
static const struct q2e_owner *ref_owner(const struct table_ref *t,
					 uint32_t j)
{
	return &t->r->owners[t->k + j];
}

/* How owner I of run X compares with owner J of run Y, by name. */
static int owner_cmp(const struct table_ref *x, uint32_t i,
		     const struct table_ref *y, uint32_t j)
{
	const struct q2e_owner *a = ref_owner(x, i), *b = ref_owner(y, j);

#define CMP(u, v)                                                             \
	do {                                                                  \
		if ((u) != (v))                                               \
			return (u) < (v) ? -1 : 1;                            \
	} while (0)
	CMP(x->r->kind, y->r->kind);
	CMP(a->kind, b->kind);
	CMP(x->key, y->key);
	CMP(a->index, b->index);
#undef CMP
	return 0;
}

static int table_ref_cmp(const void *pa, const void *pb)
{
	return owner_cmp(pa, 0, pb, 0);
}

static bool next_in_run(const struct q2e_owner *a, const struct q2e_owner *b)
{
	return a->kind == b->kind && a->id == b->id && b->index == a->index + 1;
}

/* Appends run T of R's owners K to K + N to *V (*N of *CAP). */
static int add_ref(struct table_ref **v, size_t *n, size_t *cap,
		   struct table_ref t)
{
	if (q2e_grow(*v, *cap, *n + 1) < 0)
		return -1;
	(*v)[(*n)++] = t;
	return 0;
}

/* The first snapshot with snapshot N's L1 table in IMG (N if none). */
static uint32_t l1_leader(const struct q2e_image *img, uint32_t n)
{
	return n < img->nsnapshots ? img->snapshots[n].l1_first : n;
}

/*
 * A snapshot that shares an earlier one's L1 table owns no L2 table in
 * the model: where the other image has the snapshot but does not group it
 * so, its L2 tables are its leader's runs (V, sorted, N of them) again,
 * under its own ID, so that they match the other's by name.  Where both
 * group it alike, neither names them, and 4,096 snapshots sharing a table
 * cost nothing.
 */
static int shared_refs(const struct side *s, struct table_ref **v,
		       size_t *n, size_t *cap)
{
	const struct q2e_image *img = s->img;
	const size_t *partner = s->second ? s->snaps->b : s->snaps->a;
	size_t runs = *n;

	for (uint32_t id = 0; id < img->nsnapshots; id++) {
		uint32_t lead = l1_leader(img, id);
		struct q2e_owner first = { Q2E_OWNER_SNAPSHOT, lead, 0 };
		struct q2e_region key_r = { .kind = Q2E_REGION_L2 };
		struct table_ref key = { &key_r, 0, 1, OWN,
					 owner_key(s, &first, OWN) };
		uint32_t other_lead;
		size_t lo = 0, hi = runs;

		/* A snapshot the other image lacks is gone with its L1
		 * table: its leader's tables are not listed again (a group
		 * of 4,096 made 33 million items). */
		if (lead == id || partner[id] == SIZE_MAX)
			continue;
		other_lead = l1_leader(s->other, (uint32_t)partner[id]);
		if (key.key == pair_key_of(s->snaps, !s->second, other_lead))
			continue;
		key_r.owners = &first;
		while (lo < hi) {	/* the first run of LEAD's L2 tables */
			size_t mid = lo + (hi - lo) / 2;

			if (owner_cmp(&(*v)[mid], 0, &key, 0) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < runs && (*v)[lo].r->kind == Q2E_REGION_L2 &&
		       ref_owner(&(*v)[lo], 0)->kind == Q2E_OWNER_SNAPSHOT &&
		       ref_owner(&(*v)[lo], 0)->id == lead; lo++) {
			struct table_ref t = (*v)[lo];

			t.as = id;
			t.key = owner_key(s, ref_owner(&t, 0), id);
			if (add_ref(v, n, cap, t) < 0)
				return -1;
		}
	}
	return 0;
}

/* Every table's runs of owners, in name order (the runs of all tables of
 * a kind do not overlap: an entry names one table); extensions and the
 * header are compared by diff_header() and diff_extensions(). */
static int table_refs(const struct side *s, struct table_ref **out,
		      size_t *n, struct q2e_error *err)
{
	const struct q2e_image *img = s->img;
	size_t cap = 0, k = 0, runs;
	struct table_ref *v = NULL;

	for (size_t i = 0; i < img->nregions; i++) {
		const struct q2e_region *r = &img->regions[i];

		if (r->kind == Q2E_REGION_HEADER ||
		    r->kind == Q2E_REGION_EXTENSION ||
		    r->kind == Q2E_REGION_BACKING_FILE)
			continue;
		for (uint32_t o = 0; o < r->nowners; o++) {
			const struct q2e_owner *w = &r->owners[o];

			if (o && next_in_run(&r->owners[o - 1], w)) {
				v[k - 1].n++;
				continue;
			}
			if (add_ref(&v, &k, &cap,
				    (struct table_ref){ r, o, 1, OWN,
							owner_key(s, w, OWN) }) < 0)
				goto nomem;
		}
	}
	if (k)
		qsort(v, k, sizeof(*v), table_ref_cmp);
	runs = k;
	if (shared_refs(s, &v, &k, &cap) < 0)
		goto nomem;
	if (k > runs)
		qsort(v, k, sizeof(*v), table_ref_cmp);
	*out = v;
	*n = k;
	return 0;
nomem:
	free(v);
	return diff_nomem(err);
}

/* The change of owner XI of X and YJ of Y (either may be NULL) and the
 * table it names, by IMG's symbol: the new image's where it has one, as
 * the changes of entries are named. */
static int table_item(struct q2e_diff *d, enum q2e_diff_change change,
		      const struct q2e_image *img, const struct table_ref *x,
		      uint32_t xi, const struct table_ref *y, uint32_t yj,
		      struct q2e_error *err)
{
	const struct table_ref *t = y ? y : x;
	struct q2e_diff_table *it;
	char sym[96];

	struct q2e_owner o = *ref_owner(t, y ? yj : xi);

	if (t->as != OWN)
		o.id = t->as;
	if (q2e_structure_symbol(img, t->r->kind, t->r->ext_magic, &o, sym,
				 sizeof(sym)) < 0)
		snprintf(sym, sizeof(sym), "%s", q2e_region_kind_name(t->r->kind));
	if (q2e_grow(d->tables, d->captables, d->ntables + 1) < 0)
		return diff_nomem(err);
	it = &d->tables[d->ntables];
	memset(it, 0, sizeof(*it));
	it->change = change;
	it->name = strdup(sym);
	if (!it->name)
		return diff_nomem(err);
	d->ntables++;
	if (x) {
		it->old_offset = x->r->offset;
		it->old_size = x->r->size;
	}
	if (y) {
		it->new_offset = y->r->offset;
		it->new_size = y->r->size;
	}
	return 0;
}

/* The owners both images name, from owner I of X and J of Y on: as many
 * as are left of both runs; one item for each that names a table that
 * moved or changed size, none for the rest. */
static int table_pairs(struct q2e_diff *d, const struct q2e_image *b,
		       const struct table_ref *x, uint32_t i,
		       const struct table_ref *y, uint32_t j, uint32_t *len,
		       struct q2e_error *err)
{
	enum q2e_diff_change change = Q2E_DIFF_MOVED;
	int ret = 0;

	*len = x->n - i < y->n - j ? x->n - i : y->n - j;
	if (x->r->offset == y->r->offset) {
		if (x->r->size == y->r->size)
			return 0;
		change = Q2E_DIFF_RESIZED;
	}
	for (uint32_t t = 0; t < *len && ret == 0; t++)
		ret = table_item(d, change, b, x, i + t, y, j + t, err);
	return ret;
}

/*
 * The merge of both images' runs of owners, in owner order.  A first pass
 * marks the tables kept: those an owner of both images names at one place
 * (the active L1 and a snapshot kept name a deleted snapshot's L2 table,
 * or a new snapshot's).  A second lists the changes: an owner gone or new
 * names a table that appeared or disappeared unless it was kept, when
 * only its refcount changed; a table freed and another allocated at its
 * place are both listed.  Each pass is linear in the owners' runs.
 */
struct merge {
	struct q2e_diff *d;
	const struct q2e_image *a, *b;
	const struct table_ref *va, *vb;
	size_t na, nb;
	bool *kept_a, *kept_b;	/* by region index */
};

static int merge_refs(const struct merge *m, bool emit, struct q2e_error *err)
{
	size_t i = 0, j = 0;
	uint32_t ii = 0, jj = 0, len;	/* the owner within run I, run J */
	int ret = 0;

	while (!ret && (i < m->na || j < m->nb)) {
		const struct table_ref *x = i < m->na ? &m->va[i] : NULL;
		const struct table_ref *y = j < m->nb ? &m->vb[j] : NULL;
		int c = !x ? 1 : !y ? -1 : owner_cmp(x, ii, y, jj);

		len = c ? 1 : x->n - ii < y->n - jj ? x->n - ii : y->n - jj;
		if (!emit && c == 0 && x->r->offset == y->r->offset &&
		    x->r->size == y->r->size) {
			m->kept_a[x->r - m->a->regions] = true;
			m->kept_b[y->r - m->b->regions] = true;
		} else if (emit && c < 0 && !m->kept_a[x->r - m->a->regions]) {
			ret = table_item(m->d, Q2E_DIFF_REMOVED, m->a, x, ii,
					 NULL, 0, err);
		} else if (emit && c > 0 && !m->kept_b[y->r - m->b->regions]) {
			ret = table_item(m->d, Q2E_DIFF_ADDED, m->b, NULL, 0, y,
					 jj, err);
		} else if (emit && c == 0) {
			ret = table_pairs(m->d, m->b, x, ii, y, jj, &len, err);
		}
		if (c <= 0 && (ii += len) == x->n) {
			i++;
			ii = 0;
		}
		if (c >= 0 && (jj += len) == y->n) {
			j++;
			jj = 0;
		}
	}
	return ret;
}

int diff_tables(struct q2e_diff *d, const struct q2e_image *a,
		const struct q2e_image *b, struct q2e_error *err)
{
	struct table_ref *va = NULL, *vb = NULL;
	struct diff_pairing snaps = { 0 }, bitmaps = { 0 };
	const struct side sa = { a, b, &snaps, &bitmaps, false };
	const struct side sb = { b, a, &snaps, &bitmaps, true };
	struct merge m = { .d = d, .a = a, .b = b };
	int ret;

	ret = diff_pair_snapshots(&snaps, a, b, err);
	if (!ret)
		ret = diff_pair_bitmaps(&bitmaps, a, b, err);
	if (!ret)
		ret = table_refs(&sa, &va, &m.na, err);
	if (!ret)
		ret = table_refs(&sb, &vb, &m.nb, err);
	m.va = va;
	m.vb = vb;
	m.kept_a = calloc(a->nregions + 1, sizeof(bool));
	m.kept_b = calloc(b->nregions + 1, sizeof(bool));
	if (!ret && (!m.kept_a || !m.kept_b))
		ret = diff_nomem(err);
	if (!ret)
		ret = merge_refs(&m, false, err);
	if (!ret)
		ret = merge_refs(&m, true, err);
	free(m.kept_a);
	free(m.kept_b);
	free(va);
	free(vb);
	diff_pairing_free(&snaps);
	diff_pairing_free(&bitmaps);
	return ret;
}

/* How a pointer to a table changed: L1 and refcount table entries. */
static const char *pointer_change(uint64_t x, uint64_t y, uint64_t ox,
				  uint64_t oy)
{
	if (!ox && oy)
		return "allocated";
	if (ox && !oy)
		return "freed";
	if (ox != oy)
		return "moved-table";
	return (x ^ y) & QCOW2_OFLAG_COPIED ? "copied-flipped" : "other";
}

static void l1_meaning(uint64_t raw, char *buf, size_t size)
{
	struct qcow2_l1_entry e;

	qcow2_l1_entry_decode(raw, &e);
	if (!e.l2_offset)
		snprintf(buf, size, "%s", e.reserved
			 ? "no L2 table, reserved bits set" : "no L2 table");
	else
		snprintf(buf, size, "L2 table at 0x%" PRIx64 "%s%s",
			 e.l2_offset, e.copied ? ", COPIED" : "",
			 e.reserved ? ", reserved bits set" : "");
}

static void reftable_meaning(uint64_t raw, char *buf, size_t size)
{
	uint64_t off = raw & ~QCOW2_REFTABLE_RESERVED_MASK;

	if (!off)
		snprintf(buf, size, "no refcount block");
	else
		snprintf(buf, size, "refcount block at 0x%" PRIx64, off);
}

/*
 * A table of pointers of both images, the active L1 or the refcount
 * table, which the models keep whole: its changes are made from them each
 * time they are counted or rendered, not kept (QEMU's largest L1 table
 * has 4 million entries, and a change kept takes about 600 bytes).
 */
struct pointers {
	const uint64_t *x, *y;
	uint64_t nx, ny, mask;
	void (*meaning)(uint64_t raw, char *buf, size_t size);
	char sym[64];
};

/* Whether an L1 entry spans the same guest bytes in A and B, and a
 * refcount table entry the same host bytes: the same cluster size, and
 * L2 entry or refcount width. */
static bool l1_same_span(const struct q2e_image *a, const struct q2e_image *b)
{
	return a->hdr.cluster_bits == b->hdr.cluster_bits &&
	       a->l2_entries == b->l2_entries;
}

static bool reftable_same_span(const struct q2e_image *a,
			       const struct q2e_image *b)
{
	return a->hdr.cluster_bits == b->hdr.cluster_bits &&
	       a->refcount_bits == b->refcount_bits;
}

/*
 * P: the two tables of group G.  Where an entry of one spans other bytes
 * than the same entry of the other (two cluster sizes, L2 entry widths or
 * refcount widths), entry i of the two are not the same thing, and the
 * tables hold no entries to compare: their tables are listed as moved or
 * resized, and the L2 entries and refcounts compared by guest and host
 * range (diff_walk.c).
 */
static void pointers_of(const struct q2e_diff *d, enum q2e_diff_group g,
			struct pointers *p)
{
	const struct q2e_image *a = d->old_image, *b = d->new_image;

	if (g == Q2E_DIFF_G_L1) {
		*p = (struct pointers){ a->l1, b->l1, a->nl1, b->nl1,
					~QCOW2_L1_RESERVED_MASK &
					~QCOW2_OFLAG_COPIED, l1_meaning, "" };
		diff_symbol(b, Q2E_REGION_L1, 0, Q2E_OWNER_ACTIVE, 0, 0,
			    p->sym, sizeof(p->sym));
		if (!l1_same_span(a, b))
			p->nx = p->ny = 0;
		return;
	}
	*p = (struct pointers){ a->reftable, b->reftable, a->nreftable,
				b->nreftable, ~QCOW2_REFTABLE_RESERVED_MASK,
				reftable_meaning, "" };
	diff_symbol(b, Q2E_REGION_REFCOUNT_TABLE, 0, Q2E_OWNER_IMAGE, 0, 0,
		    p->sym, sizeof(p->sym));
	if (!reftable_same_span(a, b))
		p->nx = p->ny = 0;
}

/* The entry of P that changed at I: l1_table[i], with what its values
 * mean if MEANINGS. */
static bool pointer_entry(const struct pointers *p, uint64_t i, uint64_t x,
			  uint64_t y, bool meanings, diff_entry_fn *fn,
			  void *arg)
{
	char old_meaning[DIFF_MEANING_MAX], new_meaning[DIFF_MEANING_MAX];
	struct q2e_diff_entry e = {
		.symbol = (char *)p->sym, .indexed = true, .index = i,
		.count = 1,
		.change = pointer_change(x, y, x & p->mask, y & p->mask),
		.old = { .type = Q2E_DIFF_V_RAW, .num = x },
		.new = { .type = Q2E_DIFF_V_RAW, .num = y },
	};

	if (meanings) {
		p->meaning(x, old_meaning, sizeof(old_meaning));
		p->meaning(y, new_meaning, sizeof(new_meaning));
		e.old.meaning = old_meaning;
		e.new.meaning = new_meaning;
	}
	return fn(arg, &e);
}

/* The entries of P that changed, to FN in order until it returns false
 * (then false), or only counted into *N where FN is NULL. */
static bool pointers_each(const struct pointers *p, bool meanings,
			  diff_entry_fn *fn, void *arg, uint64_t *n)
{
	uint64_t count = p->nx > p->ny ? p->nx : p->ny;
	uint64_t both = p->nx < p->ny ? p->nx : p->ny;

	*n = 0;
	for (uint64_t i = 0; i < count; i++) {
		uint64_t vx, vy;

		/* Equal entries, 64 at a time: each test of one is a call of
		 * the fuzzer's coverage hooks. */
		while (i % 64 == 0 && i + 64 <= both &&
		       memcmp(p->x + i, p->y + i, 64 * sizeof(*p->x)) == 0)
			i += 64;
		if (i == count)
			break;
		vx = i < p->nx ? p->x[i] : 0;
		vy = i < p->ny ? p->y[i] : 0;
		if (vx == vy)
			continue;
		(*n)++;
		if (fn && !pointer_entry(p, i, vx, vy, meanings, fn, arg))
			return false;
	}
	return true;
}

bool diff_pointer_changes(const struct q2e_diff *d, enum q2e_diff_group g,
			  bool meanings, diff_entry_fn *fn, void *arg)
{
	struct pointers p;
	uint64_t n;

	pointers_of(d, g, &p);
	return pointers_each(&p, meanings, fn, arg, &n);
}

/* The active L1 and the refcount table of D's images, entry by entry:
 * counted. */
void diff_pointer_tables(struct q2e_diff *d)
{
	static const enum q2e_diff_group groups[] = {
		Q2E_DIFF_G_L1, Q2E_DIFF_G_REFCOUNT_TABLE
	};

	for (size_t k = 0; k < sizeof(groups) / sizeof(groups[0]); k++) {
		struct q2e_diff_entries *l = &d->groups[groups[k]];
		struct pointers p;
		uint64_t n;

		pointers_of(d, groups[k], &p);
		pointers_each(&p, false, NULL, NULL, &n);
		l->n = (size_t)n;
		l->changed = n;
		l->structures = n != 0;
	}
}

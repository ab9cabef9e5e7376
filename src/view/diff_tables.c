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

/* One owner's name for a region: what the tables are matched by. */
struct table_ref {
	const struct q2e_region *r;
	const struct q2e_owner *o;
	uint32_t k;
};

static int table_ref_cmp(const void *pa, const void *pb)
{
	const struct table_ref *x = pa, *y = pb;

#define CMP(f)                                                                \
	do {                                                                  \
		if (x->f != y->f)                                             \
			return x->f < y->f ? -1 : 1;                          \
	} while (0)
	CMP(r->kind);
	CMP(o->kind);
	CMP(o->id);
	CMP(o->index);
#undef CMP
	return 0;
}

/* Every table symbol, in a stable order; extensions and the header are
 * compared by diff_header() and diff_extensions(). */
static int table_refs(const struct q2e_image *img, struct table_ref **out,
		      size_t *n, struct q2e_error *err)
{
	size_t count = 0, k = 0;
	struct table_ref *v;

	for (size_t i = 0; i < img->nregions; i++)
		count += img->regions[i].nowners;
	v = malloc((count ? count : 1) * sizeof(*v));
	if (!v)
		return diff_nomem(err);
	for (size_t i = 0; i < img->nregions; i++) {
		const struct q2e_region *r = &img->regions[i];

		if (r->kind == Q2E_REGION_HEADER ||
		    r->kind == Q2E_REGION_EXTENSION ||
		    r->kind == Q2E_REGION_BACKING_FILE)
			continue;
		for (uint32_t o = 0; o < r->nowners; o++)
			v[k++] = (struct table_ref){ r, &r->owners[o], o };
	}
	qsort(v, k, sizeof(*v), table_ref_cmp);
	*out = v;
	*n = k;
	return 0;
}

static int table_item(struct q2e_diff *d, enum q2e_diff_change change,
		      const struct q2e_image *img, const struct table_ref *x,
		      const struct table_ref *y, struct q2e_error *err)
{
	const struct table_ref *t = x ? x : y;
	struct q2e_diff_table *it;
	char sym[96];

	if (q2e_region_symbol(img, t->r, t->k, sym, sizeof(sym)) < 0)
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

int diff_tables(struct q2e_diff *d, const struct q2e_image *a,
		const struct q2e_image *b, struct q2e_error *err)
{
	struct table_ref *va = NULL, *vb = NULL;
	size_t na = 0, nb = 0, i = 0, j = 0;
	int ret;

	ret = table_refs(a, &va, &na, err);
	if (!ret)
		ret = table_refs(b, &vb, &nb, err);
	while (!ret && (i < na || j < nb)) {
		int c = i >= na ? 1 : j >= nb ? -1 : table_ref_cmp(&va[i], &vb[j]);

		if (c < 0) {
			ret = table_item(d, Q2E_DIFF_REMOVED, a, &va[i++], NULL,
					 err);
		} else if (c > 0) {
			ret = table_item(d, Q2E_DIFF_ADDED, b, NULL, &vb[j++],
					 err);
		} else {
			const struct q2e_region *x = va[i].r, *y = vb[j].r;

			if (x->offset != y->offset)
				ret = table_item(d, Q2E_DIFF_MOVED, a, &va[i],
						 &vb[j], err);
			else if (x->size != y->size)
				ret = table_item(d, Q2E_DIFF_RESIZED, a, &va[i],
						 &vb[j], err);
			i++;
			j++;
		}
	}
	free(va);
	free(vb);
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

static char *l1_meaning(uint64_t raw)
{
	struct qcow2_l1_entry e;

	qcow2_l1_entry_decode(raw, &e);
	if (!e.l2_offset)
		return strdup(e.reserved ? "no L2 table, reserved bits set"
					 : "no L2 table");
	return diff_strdup_printf("L2 table at 0x%" PRIx64 "%s%s",
				  e.l2_offset, e.copied ? ", COPIED" : "",
				  e.reserved ? ", reserved bits set" : "");
}

static char *reftable_meaning(uint64_t raw)
{
	uint64_t off = raw & ~QCOW2_REFTABLE_RESERVED_MASK;

	if (!off)
		return strdup("no refcount block");
	return diff_strdup_printf("refcount block at 0x%" PRIx64, off);
}

/* An entry of a table of pointers that changed: l1_table[i], ... */
static int pointer_entry(struct q2e_diff *d, enum q2e_diff_group g,
			 const char *sym, uint64_t i, uint64_t x, uint64_t y,
			 uint64_t mask, char *(*meaning)(uint64_t),
			 struct q2e_error *err)
{
	struct q2e_diff_entry *e = diff_entry_new(d, g, sym, NULL, err);

	if (!e)
		return err->code;
	e->indexed = true;
	e->index = i;
	e->change = pointer_change(x, y, x & mask, y & mask);
	e->old = (struct q2e_diff_value){ .type = Q2E_DIFF_V_RAW, .num = x };
	e->new = (struct q2e_diff_value){ .type = Q2E_DIFF_V_RAW, .num = y };
	e->old.meaning = meaning(x);
	e->new.meaning = meaning(y);
	return e->old.meaning && e->new.meaning ? 0 : diff_nomem(err);
}

/* Tables of pointers X (NX entries) and Y (NY), entry by entry. */
static int pointer_table(struct q2e_diff *d, enum q2e_diff_group g,
			 const char *sym, const uint64_t *x, uint64_t nx,
			 const uint64_t *y, uint64_t ny, uint64_t mask,
			 char *(*meaning)(uint64_t), struct q2e_error *err)
{
	uint64_t n = nx > ny ? nx : ny, both = nx < ny ? nx : ny;
	int ret = 0;

	for (uint64_t i = 0; i < n && !ret; i++) {
		uint64_t vx, vy;

		/* Equal entries, 64 at a time: each test of one is a call of
		 * the fuzzer's coverage hooks. */
		while (i % 64 == 0 && i + 64 <= both &&
		       memcmp(x + i, y + i, 64 * sizeof(*x)) == 0)
			i += 64;
		if (i == n)
			break;
		vx = i < nx ? x[i] : 0;
		vy = i < ny ? y[i] : 0;

		if (vx != vy)
			ret = pointer_entry(d, g, sym, i, vx, vy, mask, meaning,
					    err);
	}
	return ret;
}

/* The active L1 and the refcount table, entry by entry. */
int diff_pointer_tables(struct q2e_diff *d, const struct q2e_image *a,
			const struct q2e_image *b, struct q2e_error *err)
{
	char sym[64];
	int ret;

	diff_symbol(b, Q2E_REGION_L1, 0, Q2E_OWNER_ACTIVE, 0, 0, sym,
		    sizeof(sym));
	ret = pointer_table(d, Q2E_DIFF_G_L1, sym, a->l1, a->nl1, b->l1, b->nl1,
			    ~QCOW2_L1_RESERVED_MASK & ~QCOW2_OFLAG_COPIED,
			    l1_meaning, err);
	if (ret)
		return ret;
	diff_symbol(b, Q2E_REGION_REFCOUNT_TABLE, 0, Q2E_OWNER_IMAGE, 0, 0, sym,
		    sizeof(sym));
	return pointer_table(d, Q2E_DIFF_G_REFCOUNT_TABLE, sym, a->reftable,
			     a->nreftable, b->reftable, b->nreftable,
			     ~QCOW2_REFTABLE_RESERVED_MASK, reftable_meaning,
			     err);
}

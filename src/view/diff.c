/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `diff`: compares two models structure by structure into one result, then
 * renders it once through q2e_out.  Nothing here reads an image except
 * through the model's accessors, so images and dumps compare alike.
 *
 * Matching: extensions by magic (and occurrence), snapshots by ID and name
 * (and occurrence, where a damaged table repeats them),
 * bitmaps by name, tables by their stable symbol (src/model/names.c), L1
 * entries by index, L2 entries by guest offset and refcounts by host
 * offset.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/diff.h"

#define HUMAN_LIMIT 5

static int nomem(struct q2e_error *err)
{
	return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
}

/* Grows an array of SIZE-byte elements to hold one more. */
static int grow(void **v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 16;
	void *p = realloc(*v, ncap * size);

	if (!p)
		return -1;
	*v = p;
	*cap = ncap;
	return 0;
}

static struct q2e_diff_item *item_add(struct q2e_diff_list *l,
				      enum q2e_diff_change change,
				      const char *name, struct q2e_error *err)
{
	struct q2e_diff_item *it;

	if (grow((void **)&l->v, &l->cap, l->n, sizeof(*l->v)) < 0) {
		nomem(err);
		return NULL;
	}
	it = &l->v[l->n];
	memset(it, 0, sizeof(*it));
	it->change = change;
	it->name = strdup(name);
	if (!it->name) {
		nomem(err);
		return NULL;
	}
	l->n++;
	return it;
}

/* Appends a field to *V; string values are copied. */
static int field_add(struct q2e_diff_field **v, size_t *n, const char *name,
		     const struct q2e_diff_value *old,
		     const struct q2e_diff_value *new, struct q2e_error *err)
{
	struct q2e_diff_field *p = realloc(*v, (*n + 1) * sizeof(**v));
	struct q2e_diff_field *f;

	if (!p)
		return nomem(err);
	*v = p;
	f = &p[*n];
	f->name = name;
	f->old = *old;
	f->new = *new;
	f->old.str = old->is_str ? strdup(old->str ? old->str : "") : NULL;
	f->new.str = new->is_str ? strdup(new->str ? new->str : "") : NULL;
	(*n)++;
	if ((old->is_str && !f->old.str) || (new->is_str && !f->new.str))
		return nomem(err);
	return 0;
}

static int num_field(struct q2e_diff_field **v, size_t *n, const char *name,
		     uint64_t a, uint64_t b, bool hex, struct q2e_error *err)
{
	struct q2e_diff_value x = { .hex = hex, .num = a };
	struct q2e_diff_value y = { .hex = hex, .num = b };

	if (a == b)
		return 0;
	return field_add(v, n, name, &x, &y, err);
}

static int str_field(struct q2e_diff_field **v, size_t *n, const char *name,
		     const char *a, const char *b, struct q2e_error *err)
{
	struct q2e_diff_value x = { .is_str = true, .str = (char *)a };
	struct q2e_diff_value y = { .is_str = true, .str = (char *)b };

	if ((!a && !b) || (a && b && strcmp(a, b) == 0))
		return 0;
	return field_add(v, n, name, &x, &y, err);
}

static int ranges_add(struct q2e_diff_ranges *r, uint64_t start,
		      uint64_t len, struct q2e_error *err)
{
	r->units++;
	if (r->n && r->v[r->n - 1].start + r->v[r->n - 1].length == start) {
		r->v[r->n - 1].length += len;
		return 0;
	}
	if (grow((void **)&r->v, &r->cap, r->n, sizeof(*r->v)) < 0)
		return nomem(err);
	r->v[r->n].start = start;
	r->v[r->n].length = len;
	r->n++;
	return 0;
}

/* The header, field by field under the spec's names; the file's size. */
static int diff_header(struct q2e_diff *d, const struct q2e_image *a,
		       const struct q2e_image *b, struct q2e_error *err)
{
	const struct qcow2_header *x = &a->hdr, *y = &b->hdr;
	int ret = 0;

#define NUM(f, hex)                                                           \
	do {                                                                  \
		if (!ret)                                                     \
			ret = num_field(&d->header, &d->nheader, #f, x->f,   \
					y->f, hex, err);                      \
	} while (0)
	NUM(version, false);
	NUM(backing_file_offset, true);
	NUM(backing_file_size, false);
	NUM(cluster_bits, false);
	NUM(size, false);
	NUM(crypt_method, false);
	NUM(l1_size, false);
	NUM(l1_table_offset, true);
	NUM(refcount_table_offset, true);
	NUM(refcount_table_clusters, false);
	NUM(nb_snapshots, false);
	NUM(snapshots_offset, true);
	NUM(incompatible_features, true);
	NUM(compatible_features, true);
	NUM(autoclear_features, true);
	NUM(refcount_order, false);
	NUM(header_length, false);
	NUM(compression_type, false);
#undef NUM
	if (!ret)
		ret = str_field(&d->header, &d->nheader, "backing_file",
				a->backing_file, b->backing_file, err);
	if (!ret)
		ret = num_field(&d->file, &d->nfile, "file-size", a->file_size,
				b->file_size, false, err);
	return ret;
}

/* "backing-format", "unknown.0x12345678", with ".N" for a repeat. */
static void ext_label(const struct q2e_image *img, size_t i, char *buf,
		      size_t size)
{
	const char *name = qcow2_ext_name(img->exts[i].magic);
	uint32_t nth = img->exts[i].nth;

	if (name)
		snprintf(buf, size, "%s", name);
	else
		snprintf(buf, size, "unknown.0x%08x", img->exts[i].magic);
	if (nth)
		snprintf(buf + strlen(buf), size - strlen(buf), ".%" PRIu32,
			 nth);
}

/* Extensions are matched by magic and occurrence, through a sorted index. */
static int cmp_ext(const void *pa, const void *pb)
{
	const struct q2e_extension *a = *(const struct q2e_extension *const *)pa;
	const struct q2e_extension *b = *(const struct q2e_extension *const *)pb;

	if (a->magic != b->magic)
		return a->magic < b->magic ? -1 : 1;
	return a->nth < b->nth ? -1 : a->nth > b->nth;
}

static const struct q2e_extension **ext_index(const struct q2e_image *img)
{
	const struct q2e_extension **v = malloc((img->nexts + 1) * sizeof(*v));

	if (!v)
		return NULL;
	for (size_t i = 0; i < img->nexts; i++)
		v[i] = &img->exts[i];
	qsort(v, img->nexts, sizeof(*v), cmp_ext);
	return v;
}

static const struct q2e_extension *
ext_find(const struct q2e_image *img, const struct q2e_extension **index,
	 const struct q2e_extension *e)
{
	const struct q2e_extension *const *hit =
		bsearch(&e, index, img->nexts, sizeof(*index), cmp_ext);

	return hit ? *hit : NULL;
}

/* A payload as text: strings as they are, the rest in hex. */
static char *ext_text(const struct q2e_extension *e)
{
	bool text = e->magic == QCOW2_EXT_BACKING_FORMAT ||
		    e->magic == QCOW2_EXT_DATA_FILE;
	char *s = malloc(text ? e->avail + 1 : e->avail * 2 + 1);

	if (!s)
		return NULL;
	if (text) {
		memcpy(s, e->data, e->avail);
		s[e->avail] = '\0';
	} else {
		for (uint32_t i = 0; i < e->avail; i++)
			snprintf(s + 2 * i, 3, "%02x", e->data[i]);
		s[e->avail * 2] = '\0';
	}
	return s;
}

static int diff_extensions_indexed(struct q2e_diff *d,
				   const struct q2e_image *a,
				   const struct q2e_image *b,
				   const struct q2e_extension **ia,
				   const struct q2e_extension **ib,
				   struct q2e_error *err)
{
	char label[64];

	for (size_t i = 0; i < a->nexts; i++) {
		const struct q2e_extension *x = &a->exts[i], *y;
		struct q2e_diff_item *it;
		char *sx, *sy;
		int ret;

		ext_label(a, i, label, sizeof(label));
		y = ext_find(b, ib, x);
		if (!y) {
			if (!item_add(&d->extensions, Q2E_DIFF_REMOVED, label, err))
				return err->code;
			continue;
		}
		if (x->length == y->length && x->avail == y->avail &&
		    memcmp(x->data, y->data, x->avail) == 0)
			continue;
		it = item_add(&d->extensions, Q2E_DIFF_CHANGED, label, err);
		if (!it)
			return err->code;
		ret = num_field(&it->fields, &it->nfields, "length", x->length,
				y->length, false, err);
		if (ret)
			return ret;
		sx = ext_text(x);
		sy = ext_text(y);
		ret = sx && sy ? str_field(&it->fields, &it->nfields, "data",
					   sx, sy, err)
			       : nomem(err);
		free(sx);
		free(sy);
		if (ret)
			return ret;
	}
	for (size_t i = 0; i < b->nexts; i++) {
		ext_label(b, i, label, sizeof(label));
		if (!ext_find(a, ia, &b->exts[i]) &&
		    !item_add(&d->extensions, Q2E_DIFF_ADDED, label, err))
			return err->code;
	}
	return 0;
}

static int diff_extensions(struct q2e_diff *d, const struct q2e_image *a,
			   const struct q2e_image *b, struct q2e_error *err)
{
	const struct q2e_extension **ia = ext_index(a), **ib = ext_index(b);
	int ret = ia && ib ? diff_extensions_indexed(d, a, b, ia, ib, err)
			   : nomem(err);

	free(ia);
	free(ib);
	return ret;
}

static bool same_snapshot_key(const struct q2e_snapshot *x,
			      const struct q2e_snapshot *y)
{
	return strcmp(x->id, y->id) == 0 && strcmp(x->name, y->name) == 0;
}

/*
 * The snapshot of IMG that matches snapshot S of OTHER: the same ID and
 * name, and when a damaged table repeats them, the same occurrence.
 */
static const struct q2e_snapshot *snapshot_find(const struct q2e_image *img,
						const struct q2e_image *other,
						const struct q2e_snapshot *s)
{
	size_t k = 0;

	for (const struct q2e_snapshot *p = other->snapshots; p < s; p++)
		k += same_snapshot_key(p, s);
	for (size_t i = 0; i < img->nsnapshots; i++)
		if (same_snapshot_key(&img->snapshots[i], s) && k-- == 0)
			return &img->snapshots[i];
	return NULL;
}

static int snapshot_item(struct q2e_diff *d, enum q2e_diff_change change,
			 const struct q2e_snapshot *s,
			 struct q2e_diff_item **out, struct q2e_error *err)
{
	struct q2e_diff_item *it = item_add(&d->snapshots, change, s->name, err);

	if (!it)
		return err->code;
	it->id = strdup(s->id);
	if (!it->id)
		return nomem(err);
	if (out)
		*out = it;
	return 0;
}

static int diff_snapshots(struct q2e_diff *d, const struct q2e_image *a,
			  const struct q2e_image *b, struct q2e_error *err)
{
	int ret = 0;

	for (size_t i = 0; i < a->nsnapshots && !ret; i++) {
		const struct q2e_snapshot *sa = &a->snapshots[i];
		const struct q2e_snapshot *sb = snapshot_find(b, a, sa);
		struct q2e_diff_field *f = NULL;
		size_t nf = 0;

		if (!sb) {
			ret = snapshot_item(d, Q2E_DIFF_REMOVED, sa, NULL, err);
			continue;
		}
		const struct qcow2_snapshot *x = &sa->entry, *y = &sb->entry;
		uint64_t vx = x->has_vm_state_size_large ? x->vm_state_size_large
							 : x->vm_state_size;
		uint64_t vy = y->has_vm_state_size_large ? y->vm_state_size_large
							 : y->vm_state_size;
#define NUM(name, fld, hex)                                                   \
	do {                                                                  \
		if (!ret)                                                     \
			ret = num_field(&f, &nf, name, x->fld, y->fld, hex,   \
					err);                                 \
	} while (0)
		NUM("l1_table_offset", l1_table_offset, true);
		NUM("l1_size", l1_size, false);
		NUM("date_sec", date_sec, false);
		NUM("date_nsec", date_nsec, false);
		NUM("vm_clock_nsec", vm_clock_nsec, false);
		NUM("disk_size", disk_size, false);
		NUM("icount", icount, false);
		NUM("extra_data_size", extra_data_size, false);
#undef NUM
		if (!ret)
			ret = num_field(&f, &nf, "vm_state_size", vx, vy, false,
					err);
		if (!ret && nf) {
			struct q2e_diff_item *it = NULL;

			ret = snapshot_item(d, Q2E_DIFF_CHANGED, sa, &it, err);
			if (!ret) {
				it->fields = f;
				it->nfields = nf;
				f = NULL;
				nf = 0;
			}
		}
		for (size_t k = 0; k < nf; k++) {
			free(f[k].old.str);
			free(f[k].new.str);
		}
		free(f);
	}
	for (size_t i = 0; i < b->nsnapshots && !ret; i++)
		if (!snapshot_find(a, b, &b->snapshots[i]))
			ret = snapshot_item(d, Q2E_DIFF_ADDED, &b->snapshots[i],
					    NULL, err);
	return ret;
}

/* Likewise for bitmaps, by name. */
static const struct q2e_bitmap *bitmap_find(const struct q2e_image *img,
					    const struct q2e_image *other,
					    const struct q2e_bitmap *x)
{
	size_t k = 0;

	for (const struct q2e_bitmap *p = other->bitmaps; p < x; p++)
		k += strcmp(p->name, x->name) == 0;
	for (size_t i = 0; i < img->nbitmaps; i++)
		if (strcmp(img->bitmaps[i].name, x->name) == 0 && k-- == 0)
			return &img->bitmaps[i];
	return NULL;
}

/* Bytes of a serialized bitmap data cluster, through its region. */
static int bitmap_cluster(struct q2e_image *img, uint64_t off, uint8_t *buf,
			  struct q2e_error *err)
{
	const struct q2e_region *r = q2e_image_region_at(img, off);

	memset(buf, 0, (size_t)img->cluster_size);
	if (!r || r->kind != Q2E_REGION_BITMAP_DATA || r->offset != off ||
	    r->size > img->cluster_size)
		return 0;	/* unreadable: the walk recorded why */
	return q2e_image_read_region(img, r, buf, err);
}

/* Data clusters whose bits differ, by bitmap table index. */
static int bitmap_data_changed(struct q2e_image *a, const struct q2e_bitmap *x,
			       struct q2e_image *b, const struct q2e_bitmap *y,
			       uint64_t *changed, struct q2e_error *err)
{
	uint64_t n = x->ntable > y->ntable ? x->ntable : y->ntable;
	uint8_t *bx = NULL, *by = NULL;
	int ret = 0;

	*changed = 0;
	if (a->cluster_size != b->cluster_size) {
		*changed = n;
		return 0;
	}
	bx = malloc((size_t)a->cluster_size);
	by = malloc((size_t)b->cluster_size);
	if (!bx || !by) {
		ret = nomem(err);
		goto out;
	}
	for (uint64_t j = 0; j < n; j++) {
		struct qcow2_bitmap_table_entry ex = { 0 }, ey = { 0 };

		if (j < x->ntable)
			qcow2_bitmap_table_entry_decode(x->table[j], &ex);
		if (j < y->ntable)
			qcow2_bitmap_table_entry_decode(y->table[j], &ey);
		if (ex.kind != ey.kind) {
			(*changed)++;
			continue;
		}
		if (ex.kind != QCOW2_BITMAP_SERIALIZED)
			continue;
		ret = bitmap_cluster(a, ex.offset, bx, err);
		if (!ret)
			ret = bitmap_cluster(b, ey.offset, by, err);
		if (ret)
			goto out;
		*changed += memcmp(bx, by, (size_t)a->cluster_size) != 0;
	}
out:
	free(bx);
	free(by);
	return ret;
}

static int diff_bitmaps(struct q2e_diff *d, struct q2e_image *a,
			struct q2e_image *b, struct q2e_error *err)
{
	int ret = 0;

	for (size_t i = 0; i < a->nbitmaps && !ret; i++) {
		const struct q2e_bitmap *x = &a->bitmaps[i];
		const struct q2e_bitmap *y = bitmap_find(b, a, x);
		struct q2e_diff_field *f = NULL;
		uint64_t changed;
		size_t nf = 0;

		if (!y) {
			if (!item_add(&d->bitmaps, Q2E_DIFF_REMOVED, x->name, err))
				ret = err->code;
			continue;
		}
		const struct qcow2_bitmap_entry *ex = &x->entry, *ey = &y->entry;

		ret = num_field(&f, &nf, "in-use", !!(ex->flags & QCOW2_BITMAP_IN_USE),
				!!(ey->flags & QCOW2_BITMAP_IN_USE), false, err);
		if (!ret)
			ret = num_field(&f, &nf, "flags", ex->flags, ey->flags,
					true, err);
		if (!ret)
			ret = num_field(&f, &nf, "granularity",
					1ULL << (ex->granularity_bits & 63),
					1ULL << (ey->granularity_bits & 63),
					false, err);
		if (!ret)
			ret = num_field(&f, &nf, "type", ex->type, ey->type,
					false, err);
		if (!ret)
			ret = num_field(&f, &nf, "table-offset",
					ex->bitmap_table_offset,
					ey->bitmap_table_offset, true, err);
		if (!ret)
			ret = num_field(&f, &nf, "table-size",
					ex->bitmap_table_size,
					ey->bitmap_table_size, false, err);
		if (!ret)
			ret = num_field(&f, &nf, "extra-data-size",
					ex->extra_data_size,
					ey->extra_data_size, false, err);
		if (!ret)
			ret = bitmap_data_changed(a, x, b, y, &changed, err);
		if (!ret && (nf || changed)) {
			struct q2e_diff_item *it;

			it = item_add(&d->bitmaps, Q2E_DIFF_CHANGED, x->name, err);
			if (!it) {
				ret = err->code;
			} else {
				it->fields = f;
				it->nfields = nf;
				it->data_clusters_changed = changed;
				f = NULL;
				nf = 0;
			}
		}
		for (size_t k = 0; k < nf; k++) {
			free(f[k].old.str);
			free(f[k].new.str);
		}
		free(f);
	}
	for (size_t i = 0; i < b->nbitmaps && !ret; i++)
		if (!bitmap_find(a, b, &b->bitmaps[i]) &&
		    !item_add(&d->bitmaps, Q2E_DIFF_ADDED, b->bitmaps[i].name,
			      err))
			ret = err->code;
	return ret;
}

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
		return nomem(err);
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
	struct q2e_diff_item *it;
	char sym[96];

	if (q2e_region_symbol(img, t->r, t->k, sym, sizeof(sym)) < 0)
		snprintf(sym, sizeof(sym), "%s", q2e_region_kind_name(t->r->kind));
	it = item_add(&d->tables, change, sym, err);
	if (!it)
		return err->code;
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

static int diff_tables(struct q2e_diff *d, const struct q2e_image *a,
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

static int diff_l1(struct q2e_diff *d, const struct q2e_image *a,
		   const struct q2e_image *b, struct q2e_error *err)
{
	uint64_t n = a->nl1 > b->nl1 ? a->nl1 : b->nl1;

	for (uint64_t i = 0; i < n; i++) {
		uint64_t x = i < a->nl1 ? a->l1[i] : 0;
		uint64_t y = i < b->nl1 ? b->l1[i] : 0;

		if (x == y)
			continue;
		if (grow((void **)&d->l1, &d->capl1, d->nl1, sizeof(*d->l1)) < 0)
			return nomem(err);
		d->l1[d->nl1++] = (struct q2e_diff_l1_change){ i, x, y };
	}
	return 0;
}

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
	if (y->type == QCOW2_CLUSTER_UNALLOCATED)
		return x->type == QCOW2_CLUSTER_UNALLOCATED ? same_type
							    : Q2E_DIFF_L2_FREED;
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
	/* Data written into a preallocated zero cluster, in place. */
	if (x->type == QCOW2_CLUSTER_ZERO_ALLOC &&
	    y->type == QCOW2_CLUSTER_NORMAL && x->host_offset == y->host_offset)
		return Q2E_DIFF_L2_ALLOCATED;
	if (x->host_offset != y->host_offset || x->type != y->type)
		return Q2E_DIFF_L2_REMAPPED;
	if (x->copied != y->copied)
		return Q2E_DIFF_L2_COPIED;
	return same_type;
}

/* Where the L1 range holding guest offset OFF ends if it maps nothing. */
static bool l1_range_empty(const struct q2e_image *img, uint64_t off,
			   uint64_t *end)
{
	uint64_t span = img->l2_entries << img->hdr.cluster_bits;
	uint64_t i = off / span;
	struct qcow2_l1_entry e;

	if (i >= img->nl1) {
		*end = UINT64_MAX;	/* past the table, nothing is mapped */
		return true;
	}
	*end = (i + 1) * span;	/* below nl1 * span, which the file bounds */
	qcow2_l1_entry_decode(img->l1[i], &e);
	return !e.l2_offset;
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

static int diff_l2(struct q2e_diff *d, struct q2e_image *a,
		   struct q2e_image *b, struct q2e_error *err)
{
	uint64_t size = a->hdr.size > b->hdr.size ? a->hdr.size : b->hdr.size;
	struct q2e_l2_cache *ca = q2e_l2_cache_new(a);
	struct q2e_l2_cache *cb = q2e_l2_cache_new(b);
	uint64_t off = 0;
	int ret = 0;

	if (!ca || !cb) {
		ret = nomem(err);
		goto out;
	}
	while (off < size && !ret) {
		uint64_t ea, eb;
		bool za = l1_range_empty(a, off, &ea);
		bool zb = l1_range_empty(b, off, &eb);
		struct qcow2_l2_entry x, y;
		int k;

		if (za && zb) {
			off = ea < eb ? ea : eb;
			continue;
		}
		ret = l2_lookup(ca, off, &x, err);
		if (!ret)
			ret = l2_lookup(cb, off, &y, err);
		if (ret)
			break;
		k = l2_change(&x, &y);
		if (k >= 0)
			ret = ranges_add(&d->l2[k], off, d->unit, err);
		off += d->unit;
	}
out:
	q2e_l2_cache_free(ca);
	q2e_l2_cache_free(cb);
	return ret;
}

/* Where the refcount block holding host offset OFF ends if none exists. */
static bool refblock_empty(const struct q2e_image *img, uint64_t off,
			   uint64_t *end)
{
	uint64_t per_block, i;

	if (!img->refcount_bits) {
		*end = UINT64_MAX;
		return true;
	}
	per_block = img->cluster_size * 8 / img->refcount_bits;
	i = (off >> img->hdr.cluster_bits) / per_block;
	if (i >= img->nreftable) {
		*end = UINT64_MAX;
		return true;
	}
	*end = ((i + 1) * per_block) << img->hdr.cluster_bits;
	return !(img->reftable[i] & ~QCOW2_REFTABLE_RESERVED_MASK);
}

static int diff_refcounts(struct q2e_diff *d, struct q2e_image *a,
			  struct q2e_image *b, struct q2e_error *err)
{
	uint64_t size = a->file_size > b->file_size ? a->file_size
						    : b->file_size;
	uint64_t off = 0;
	int ret = 0;

	while (off < size && !ret) {
		uint64_t ea, eb, x, y;

		if (refblock_empty(a, off, &ea) && refblock_empty(b, off, &eb)) {
			off = ea < eb ? ea : eb;
			continue;
		}
		ret = q2e_image_refcount(a, off >> a->hdr.cluster_bits, &x, err);
		if (!ret)
			ret = q2e_image_refcount(b, off >> b->hdr.cluster_bits, &y,
						 err);
		if (!ret && x != y)
			ret = ranges_add(y > x ? &d->refcount_rose
					       : &d->refcount_fell,
					 off, d->unit, err);
		off += d->unit;
	}
	return ret;
}

int q2e_diff_build(struct q2e_image *old, struct q2e_image *new,
		   struct q2e_diff **out, struct q2e_error *err)
{
	struct q2e_diff *d = calloc(1, sizeof(*d));
	int ret;

	*out = NULL;
	if (!d)
		return nomem(err);
	d->old_path = strdup(old->path);
	d->new_path = strdup(new->path);
	d->unit = old->cluster_size < new->cluster_size ? old->cluster_size
						       : new->cluster_size;
	ret = d->old_path && d->new_path ? 0 : nomem(err);
	if (!ret)
		ret = diff_header(d, old, new, err);
	if (!ret)
		ret = diff_extensions(d, old, new, err);
	if (!ret)
		ret = diff_snapshots(d, old, new, err);
	if (!ret)
		ret = diff_bitmaps(d, old, new, err);
	if (!ret)
		ret = diff_tables(d, old, new, err);
	if (!ret)
		ret = diff_l1(d, old, new, err);
	if (!ret)
		ret = diff_l2(d, old, new, err);
	if (!ret)
		ret = diff_refcounts(d, old, new, err);
	if (ret) {
		q2e_diff_free(d);
		return ret;
	}
	*out = d;
	return 0;
}

static void fields_free(struct q2e_diff_field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(f[i].old.str);
		free(f[i].new.str);
	}
	free(f);
}

static void list_free(struct q2e_diff_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].id);
		fields_free(l->v[i].fields, l->v[i].nfields);
	}
	free(l->v);
}

void q2e_diff_free(struct q2e_diff *d)
{
	if (!d)
		return;
	free(d->old_path);
	free(d->new_path);
	fields_free(d->header, d->nheader);
	fields_free(d->file, d->nfile);
	list_free(&d->extensions);
	list_free(&d->snapshots);
	list_free(&d->bitmaps);
	list_free(&d->tables);
	free(d->l1);
	for (int k = 0; k < Q2E_DIFF_L2_COUNT; k++)
		free(d->l2[k].v);
	free(d->refcount_rose.v);
	free(d->refcount_fell.v);
	free(d);
}

uint64_t q2e_diff_count(const struct q2e_diff *d)
{
	uint64_t n = d->nheader + d->nfile + d->extensions.n + d->snapshots.n +
		     d->bitmaps.n + d->tables.n + d->nl1 + d->refcount_rose.n +
		     d->refcount_fell.n;

	for (int k = 0; k < Q2E_DIFF_L2_COUNT; k++)
		n += d->l2[k].n;
	return n;
}

const char *q2e_diff_l2_kind_name(enum q2e_diff_l2_kind k)
{
	static const char *const names[Q2E_DIFF_L2_COUNT] = {
		[Q2E_DIFF_L2_FREED] = "freed",
		[Q2E_DIFF_L2_ZEROED] = "zeroed",
		[Q2E_DIFF_L2_COMPRESSED] = "compressed",
		[Q2E_DIFF_L2_ALLOCATED] = "allocated",
		[Q2E_DIFF_L2_REMAPPED] = "remapped",
		[Q2E_DIFF_L2_COPIED] = "copied-flipped",
		[Q2E_DIFF_L2_SUBCLUSTERS] = "subclusters",
		[Q2E_DIFF_L2_OTHER] = "other",
	};
	return (unsigned)k < Q2E_DIFF_L2_COUNT ? names[k] : "unknown";
}

/*
 * Rendering.  The one format-dependent choice: human output shows the
 * first HUMAN_LIMIT entries of each list (all with --verbose) and leaves
 * out what did not change, while JSON always has every key and entry.
 */
struct render {
	struct q2e_out *o;
	bool all;		/* every key, even empty lists */
	size_t limit;		/* entries shown per list */
};

static void value_out(struct q2e_out *o, const char *key,
		      const struct q2e_diff_value *v)
{
	if (v->is_str)
		q2e_out_str(o, key, v->str ? v->str : "");
	else if (v->hex)
		q2e_out_hex(o, key, v->num);
	else
		q2e_out_uint(o, key, v->num);
}

static void fields_out(struct q2e_out *o, const char *key,
		       const struct q2e_diff_field *f, size_t n)
{
	q2e_out_object(o, key);
	for (size_t i = 0; i < n; i++) {
		q2e_out_object(o, f[i].name);
		value_out(o, "old", &f[i].old);
		value_out(o, "new", &f[i].new);
		q2e_out_end(o);
	}
	q2e_out_end(o);
}

/* "more  N" after a list cut short. */
static void more_out(const struct render *r, size_t shown, size_t n)
{
	if (shown < n)
		q2e_out_uint(r->o, "more", n - shown);
}

static const char *change_name(enum q2e_diff_change c, bool table)
{
	switch (c) {
	case Q2E_DIFF_ADDED:
		return table ? "appeared" : "added";
	case Q2E_DIFF_REMOVED:
		return table ? "disappeared" : "removed";
	case Q2E_DIFF_CHANGED:
		return "changed";
	case Q2E_DIFF_MOVED:
		return "moved";
	case Q2E_DIFF_RESIZED:
		return "resized";
	case Q2E_DIFF_CHANGE_COUNT:
		break;
	}
	return "unknown";
}

/* Extensions, snapshots and bitmaps: {added: [...], removed, changed}. */
static void list_out(const struct render *r, const char *key,
		     const struct q2e_diff_list *l)
{
	static const enum q2e_diff_change order[] = {
		Q2E_DIFF_ADDED, Q2E_DIFF_REMOVED, Q2E_DIFF_CHANGED };
	struct q2e_out *o = r->o;

	if (!l->n && !r->all)
		return;
	q2e_out_object(o, key);
	for (size_t c = 0; c < sizeof(order) / sizeof(order[0]); c++) {
		size_t n = 0, shown = 0;

		for (size_t i = 0; i < l->n; i++)
			n += l->v[i].change == order[c];
		if (!n && !r->all)
			continue;
		q2e_out_array(o, change_name(order[c], false));
		for (size_t i = 0; i < l->n && shown < r->limit; i++) {
			const struct q2e_diff_item *it = &l->v[i];

			if (it->change != order[c])
				continue;
			shown++;
			q2e_out_object(o, NULL);
			if (it->id)
				q2e_out_str(o, "id", it->id);
			q2e_out_str(o, "name", it->name);
			if (it->change == Q2E_DIFF_CHANGED &&
			    (it->nfields || r->all))
				fields_out(o, "changes", it->fields, it->nfields);
			if (it->data_clusters_changed)
				q2e_out_uint(o, "data-clusters-changed",
					     it->data_clusters_changed);
			q2e_out_end(o);
		}
		q2e_out_end(o);
		more_out(r, shown, n);
	}
	q2e_out_end(o);
}

static void tables_out(const struct render *r, const struct q2e_diff_list *l)
{
	static const enum q2e_diff_change order[] = {
		Q2E_DIFF_ADDED, Q2E_DIFF_REMOVED, Q2E_DIFF_MOVED,
		Q2E_DIFF_RESIZED };
	struct q2e_out *o = r->o;

	if (!l->n && !r->all)
		return;
	q2e_out_object(o, "tables");
	for (size_t c = 0; c < sizeof(order) / sizeof(order[0]); c++) {
		size_t n = 0, shown = 0;

		for (size_t i = 0; i < l->n; i++)
			n += l->v[i].change == order[c];
		if (!n && !r->all)
			continue;
		q2e_out_array(o, change_name(order[c], true));
		for (size_t i = 0; i < l->n && shown < r->limit; i++) {
			const struct q2e_diff_item *it = &l->v[i];

			if (it->change != order[c])
				continue;
			shown++;
			q2e_out_object(o, NULL);
			q2e_out_str(o, "name", it->name);
			switch (it->change) {
			case Q2E_DIFF_ADDED:
				q2e_out_hex(o, "offset", it->new_offset);
				q2e_out_uint(o, "size", it->new_size);
				break;
			case Q2E_DIFF_REMOVED:
				q2e_out_hex(o, "offset", it->old_offset);
				q2e_out_uint(o, "size", it->old_size);
				break;
			case Q2E_DIFF_MOVED:
				q2e_out_hex(o, "old-offset", it->old_offset);
				q2e_out_hex(o, "new-offset", it->new_offset);
				if (it->old_size != it->new_size) {
					q2e_out_uint(o, "old-size", it->old_size);
					q2e_out_uint(o, "new-size", it->new_size);
				}
				break;
			default:
				q2e_out_hex(o, "offset", it->new_offset);
				q2e_out_uint(o, "old-size", it->old_size);
				q2e_out_uint(o, "new-size", it->new_size);
				break;
			}
			q2e_out_end(o);
		}
		q2e_out_end(o);
		more_out(r, shown, n);
	}
	q2e_out_end(o);
}

static void l1_out(const struct render *r, const struct q2e_diff *d)
{
	struct q2e_out *o = r->o;
	size_t shown = 0;

	if (!d->nl1 && !r->all)
		return;
	q2e_out_array(o, "l1");
	for (; shown < d->nl1 && shown < r->limit; shown++) {
		q2e_out_object(o, NULL);
		q2e_out_uint(o, "index", d->l1[shown].index);
		q2e_out_hex(o, "old", d->l1[shown].old);
		q2e_out_hex(o, "new", d->l1[shown].new);
		q2e_out_end(o);
	}
	q2e_out_end(o);
	more_out(r, shown, d->nl1);
}

static void ranges_out(const struct render *r, const char *key,
		       const struct q2e_diff_ranges *g)
{
	struct q2e_out *o = r->o;
	size_t shown = 0;

	if (!g->n && !r->all)
		return;
	q2e_out_object(o, key);
	q2e_out_uint(o, "clusters", g->units);
	q2e_out_array(o, "ranges");
	for (; shown < g->n && shown < r->limit; shown++) {
		q2e_out_object(o, NULL);
		q2e_out_hex(o, "start", g->v[shown].start);
		q2e_out_hex(o, "length", g->v[shown].length);
		q2e_out_end(o);
	}
	q2e_out_end(o);
	more_out(r, shown, g->n);
	q2e_out_end(o);
}

void q2e_diff_render(const struct q2e_diff *d, struct q2e_out *o,
		     bool verbose)
{
	bool json = q2e_out_format(o) == Q2E_FORMAT_JSON;
	struct render r = { o, json, json || verbose ? SIZE_MAX : HUMAN_LIMIT };
	bool l2 = false;

	for (int k = 0; k < Q2E_DIFF_L2_COUNT; k++)
		l2 |= d->l2[k].n > 0;
	q2e_out_object(o, NULL);
	q2e_out_str(o, "old", d->old_path);
	q2e_out_str(o, "new", d->new_path);
	q2e_out_bool(o, "same-metadata", q2e_diff_count(d) == 0);
	q2e_out_uint(o, "differences", q2e_diff_count(d));
	q2e_out_uint(o, "cluster-unit", d->unit);
	if (d->nfile || r.all)
		fields_out(o, "file", d->file, d->nfile);
	if (d->nheader || r.all)
		fields_out(o, "header", d->header, d->nheader);
	list_out(&r, "extensions", &d->extensions);
	list_out(&r, "snapshots", &d->snapshots);
	list_out(&r, "bitmaps", &d->bitmaps);
	tables_out(&r, &d->tables);
	l1_out(&r, d);
	if (l2 || r.all) {
		q2e_out_object(o, "l2");
		for (int k = 0; k < Q2E_DIFF_L2_COUNT; k++)
			ranges_out(&r, q2e_diff_l2_kind_name(k), &d->l2[k]);
		q2e_out_end(o);
	}
	if (d->refcount_rose.n || d->refcount_fell.n || r.all) {
		q2e_out_object(o, "refcounts");
		ranges_out(&r, "rose", &d->refcount_rose);
		ranges_out(&r, "fell", &d->refcount_fell);
		q2e_out_end(o);
	}
	q2e_out_end(o);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `diff`: compares two models structure by structure into one result, then
 * renders it once through q2e_out (diff_render.c).  Nothing here reads an
 * image except through the model's accessors, so images and dumps compare
 * alike.
 *
 * Matching: extensions by magic (and occurrence), snapshots by ID and name
 * (and occurrence, where a damaged table repeats them), bitmaps by name,
 * tables by their stable symbol (src/model/names.c), L1 entries by index,
 * L2 entries by guest offset and refcounts by host offset.  Each change is
 * recorded under the symbol a dump gives the structure, so the user can go
 * from the diff to gdb or readelf.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/array.h"
#include "view/diff_int.h"

int diff_nomem(struct q2e_error *err)
{
	return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
}

char *diff_strdup_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !(s = malloc((size_t)n + 1)))
		return NULL;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

struct q2e_diff_entry *diff_entry_new(struct q2e_diff *d, enum q2e_diff_group g,
				      const char *symbol, const char *member,
				      struct q2e_error *err)
{
	struct q2e_diff_entries *l = &d->groups[g];
	struct q2e_diff_entry *e;

	if (q2e_grow(l->v, l->cap, l->n + 1) < 0) {
		diff_nomem(err);
		return NULL;
	}
	e = &l->v[l->n];
	memset(e, 0, sizeof(*e));
	e->symbol = strdup(symbol);
	e->member = member ? strdup(member) : NULL;
	if (!e->symbol || (member && !e->member)) {
		free(e->symbol);
		free(e->member);
		diff_nomem(err);
		return NULL;
	}
	/* Changes come table by table: a new symbol is a new structure. */
	if (!l->n || strcmp(l->v[l->n - 1].symbol, symbol) != 0)
		l->structures++;
	l->changed++;
	e->count = 1;
	e->old.type = e->new.type = Q2E_DIFF_V_NONE;
	l->n++;
	return e;
}

static int field_new(struct q2e_diff *d, enum q2e_diff_group g,
		     const char *symbol, const char *member,
		     struct q2e_diff_entry **out, struct q2e_error *err)
{
	*out = diff_entry_new(d, g, symbol, member, err);
	if (!*out)
		return err->code;
	(*out)->change = "changed";
	return 0;
}

int diff_field_num(struct q2e_diff *d, enum q2e_diff_group g,
		   const char *symbol, const char *member, uint64_t a,
		   uint64_t b, enum q2e_diff_vtype type, struct q2e_error *err)
{
	struct q2e_diff_entry *e;
	int ret;

	if (a == b)
		return 0;
	ret = field_new(d, g, symbol, member, &e, err);
	if (ret)
		return ret;
	e->old = (struct q2e_diff_value){ .type = type, .num = a };
	e->new = (struct q2e_diff_value){ .type = type, .num = b };
	return 0;
}

/* NULL is "absent": a backing file added or removed. */
int diff_field_str(struct q2e_diff *d, enum q2e_diff_group g,
		   const char *symbol, const char *member, const char *a,
		   const char *b, struct q2e_error *err)
{
	struct q2e_diff_entry *e;
	int ret;

	if ((!a && !b) || (a && b && strcmp(a, b) == 0))
		return 0;
	ret = field_new(d, g, symbol, member, &e, err);
	if (ret)
		return ret;
	e->old.type = a ? Q2E_DIFF_V_STR : Q2E_DIFF_V_NONE;
	e->new.type = b ? Q2E_DIFF_V_STR : Q2E_DIFF_V_NONE;
	e->old.str = a ? strdup(a) : NULL;
	e->new.str = b ? strdup(b) : NULL;
	if ((a && !e->old.str) || (b && !e->new.str))
		return diff_nomem(err);
	if (!a)
		e->change = "added";
	else if (!b)
		e->change = "removed";
	return 0;
}

const struct q2e_region *diff_region_exact(const struct q2e_image *img,
					   uint64_t off,
					   enum q2e_region_kind kind)
{
	size_t lo = off ? q2e_first_above(img->regions, img->nregions, offset,
					  off - 1)
			: 0;

	for (; lo < img->nregions && img->regions[lo].offset == off; lo++)
		if (img->regions[lo].kind == kind)
			return &img->regions[lo];
	return NULL;
}

void diff_symbol(const struct q2e_image *img, enum q2e_region_kind kind,
		 uint32_t ext_magic, enum q2e_owner_kind owner, uint32_t id,
		 uint64_t index, char *buf, size_t size)
{
	const struct q2e_owner o = { .kind = owner, .id = id, .index = index };

	if (q2e_structure_symbol(img, kind, ext_magic, &o, buf, size) < 0)
		snprintf(buf, size, "%s", q2e_region_kind_name(kind));
}

void diff_entry_symbol(enum q2e_region_kind kind, size_t n, char *buf,
		       size_t size)
{
	if (n > UINT32_MAX || q2e_entry_symbol(kind, (uint32_t)n, buf, size) < 0)
		snprintf(buf, size, "%s", q2e_region_kind_name(kind));
}

int q2e_diff_build(struct q2e_image *old, struct q2e_image *new,
		   struct q2e_diff **out, struct q2e_error *err)
{
	struct q2e_diff *d = calloc(1, sizeof(*d));
	int ret;

	*out = NULL;
	if (!d)
		return diff_nomem(err);
	d->old_image = old;
	d->new_image = new;
	d->old_path = strdup(old->path);
	d->new_path = strdup(new->path);
	d->unit = old->cluster_size < new->cluster_size ? old->cluster_size
						       : new->cluster_size;
	ret = d->old_path && d->new_path ? 0 : diff_nomem(err);
	if (!ret)
		ret = diff_field_num(d, Q2E_DIFF_G_FILE, "file", "size",
				     old->file_size, new->file_size,
				     Q2E_DIFF_V_RAW, err);
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
		diff_pointer_tables(d);
	if (!ret)
		ret = diff_l2(d, old, new, err);
	if (!ret)
		ret = diff_snapshot_l2(d, old, new, err);
	if (!ret)
		ret = diff_refcounts(d, old, new, err);
	if (ret) {
		q2e_diff_free(d);
		return ret;
	}
	*out = d;
	return 0;
}

static void value_free(struct q2e_diff_value *v)
{
	free(v->str);
	free(v->meaning);
}

void q2e_diff_free(struct q2e_diff *d)
{
	if (!d)
		return;
	free(d->old_path);
	free(d->new_path);
	for (int g = 0; g < Q2E_DIFF_G_COUNT; g++) {
		for (size_t i = 0; d->groups[g].v && i < d->groups[g].n; i++) {
			struct q2e_diff_entry *e = &d->groups[g].v[i];

			free(e->symbol);
			free(e->member);
			value_free(&e->old);
			value_free(&e->new);
		}
		free(d->groups[g].v);
	}
	for (size_t i = 0; i < d->ntables; i++)
		free(d->tables[i].name);
	free(d->tables);
	diff_pairs_free(d->pairs);
	diff_walk_free(d->walk);
	free(d);
}

uint64_t q2e_diff_count(const struct q2e_diff *d)
{
	uint64_t n = d->ntables;

	for (int g = 0; g < Q2E_DIFF_G_COUNT; g++)
		n += d->groups[g].n;
	return n;
}

const char *q2e_diff_l2_kind_name(enum q2e_diff_l2_kind k)
{
	static const char *const names[Q2E_DIFF_L2_COUNT] = {
		[Q2E_DIFF_L2_FREED] = "freed",
		[Q2E_DIFF_L2_ZERO_CLEARED] = "zero-cleared",
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

const char *q2e_diff_group_name(enum q2e_diff_group g)
{
	static const char *const names[Q2E_DIFF_G_COUNT] = {
		[Q2E_DIFF_G_FILE] = "file",
		[Q2E_DIFF_G_HEADER] = "header",
		[Q2E_DIFF_G_EXTENSION] = "extensions",
		[Q2E_DIFF_G_SNAPSHOT] = "snapshots",
		[Q2E_DIFF_G_BITMAP] = "bitmaps",
		[Q2E_DIFF_G_BITMAP_TABLE] = "bitmap-tables",
		[Q2E_DIFF_G_BITMAP_DATA] = "bitmap-data",
		[Q2E_DIFF_G_L1] = "l1",
		[Q2E_DIFF_G_L2] = "l2",
		[Q2E_DIFF_G_SNAPSHOT_L2] = "snapshot-l2",
		[Q2E_DIFF_G_REFCOUNT_TABLE] = "refcount-table",
		[Q2E_DIFF_G_REFCOUNT_BLOCK] = "refcount-blocks",
	};
	return (unsigned)g < Q2E_DIFF_G_COUNT ? names[g] : "unknown";
}

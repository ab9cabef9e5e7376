/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The symbols of a dump (elf_symbols.h): one for each owner of a region,
 * at the region's address in the section that holds it, and one for each
 * entry of the snapshot table and the bitmap directory.
 */
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/array.h"
#include "elf_symbols.h"
#include "spans.h"

struct planner {
	const struct q2e_image *img;
	const struct q2e_out_section *secs;
	size_t nsecs;
	struct q2e_symbols *syms;
	struct q2e_error *err;
	q2e_sym_fn *fn;		/* NULL: planning */
	void *ctx;
	bool no_names;		/* FN takes none: their lengths are kept */
	uint64_t name;		/* the next symbol's offset in .strtab */
	size_t count;		/* symbols so far */
};

/* Symbols of one DWARF type: it depends on the index only for these. */
static bool same_dtype(const struct q2e_sym *a, const struct q2e_sym *b)
{
	bool indexed = a->type == Q2E_SYM_EXTENSION ||
		       a->type == Q2E_SYM_SNAPSHOT || a->type == Q2E_SYM_BITMAP;

	return a->type == b->type && a->size == b->size &&
	       (!indexed || a->index == b->index);
}

static size_t dtype_slot(const struct q2e_symbols *t, const struct q2e_sym *s)
{
	uint64_t h = (s->size + 0x9e3779b97f4a7c15ULL * (s->type + 1)) *
		     0xff51afd7ed558ccdULL;

	if (s->type == Q2E_SYM_EXTENSION || s->type == Q2E_SYM_SNAPSHOT ||
	    s->type == Q2E_SYM_BITMAP)
		h ^= s->index * 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 29;
	for (size_t i = (size_t)h & (t->nslots - 1);;
	     i = (i + 1) & (t->nslots - 1))
		if (!t->slots[i] || same_dtype(&t->v[t->slots[i] - 1], s))
			return i;
}

/* The hash table twice as large, at most half full. */
static int grow_slots(struct q2e_symbols *t)
{
	size_t n = t->nslots ? 2 * t->nslots : 64;
	uint32_t *old = t->slots;
	size_t nold = t->nslots;

	t->slots = calloc(n, sizeof(*t->slots));
	if (!t->slots) {
		t->slots = old;
		return -1;
	}
	t->nslots = n;
	for (size_t i = 0; i < nold; i++)
		if (old[i])
			t->slots[dtype_slot(t, &t->v[old[i] - 1])] = old[i];
	free(old);
	return 0;
}

/* S's DWARF type in T->v, added if new. */
static int plan_dtype(struct planner *e, struct q2e_sym *s)
{
	struct q2e_symbols *t = e->syms;
	size_t i;

	if ((t->n + 1) * 2 > t->nslots && grow_slots(t) < 0)
		return q2e_error_set(e->err, Q2E_ENOMEM, "out of memory");
	i = dtype_slot(t, s);
	if (!t->slots[i]) {
		if (q2e_grow(t->v, t->cap, t->n + 1) < 0)
			return q2e_error_set(e->err, Q2E_ENOMEM,
					     "out of memory");
		t->v[t->n++] = *s;
		t->slots[i] = (uint32_t)t->n;
	}
	s->dtype = t->slots[i] - 1;
	return 0;
}

static int add_sym(struct planner *e, const char *name, uint64_t addr,
		   uint64_t size, size_t section, enum q2e_sym_type type,
		   size_t index)
{
	struct q2e_symbols *t = e->syms;
	struct q2e_sym s = { addr, size, (uint32_t)e->name, (uint32_t)section,
			     (uint32_t)index, 0, (uint8_t)type };
	size_t len = e->no_names ? t->name_len[e->count] : strlen(name);

	e->name += len + 1;
	e->count++;
	if (e->fn) {
		s.dtype = t->slots[dtype_slot(t, &s)] - 1;
		e->fn(e->ctx, &s, e->no_names ? NULL : name, len);
		return 0;
	}
	if (e->name > UINT32_MAX)
		return q2e_error_set(e->err, Q2E_EOUTPUT,
				     "too many symbols for an ELF string table");
	if (q2e_grow(t->name_len, t->name_len_cap, t->total + 1) < 0)
		return q2e_error_set(e->err, Q2E_ENOMEM, "out of memory");
	t->name_len[t->total++] = (uint8_t)len;	/* under 96 bytes */
	return plan_dtype(e, &s);
}

static enum q2e_sym_type sym_type_of(const struct q2e_image *img,
				     const struct q2e_region *r)
{
	switch (r->kind) {
	case Q2E_REGION_HEADER:
		return Q2E_SYM_HEADER;
	case Q2E_REGION_EXTENSION:
		return Q2E_SYM_EXTENSION;
	case Q2E_REGION_BACKING_FILE:
		return Q2E_SYM_STRING;
	case Q2E_REGION_L1:
		return Q2E_SYM_L1;
	case Q2E_REGION_L2:
		return Q2E_SYM_L2;
	case Q2E_REGION_REFCOUNT_TABLE:
		return Q2E_SYM_REFTABLE;
	case Q2E_REGION_REFCOUNT_BLOCK:
		return img->refcount_bits ? Q2E_SYM_REFBLOCK : Q2E_SYM_BYTES;
	case Q2E_REGION_BITMAP_TABLE:
		return Q2E_SYM_BITMAP_TABLE;
	case Q2E_REGION_CRYPTO_HEADER:
		return Q2E_SYM_CRYPTO;
	default:
		return Q2E_SYM_BYTES;
	}
}

static uint64_t entry_size(uint64_t offset, uint64_t size, uint64_t end)
{
	return size < end - offset ? size : end - offset;
}

/* Table entries that start inside the bytes the section holds. */
static int entry_symbols(struct planner *e, size_t si)
{
	const struct q2e_out_section *s = &e->secs[si];
	const struct q2e_region *r = s->region;
	uint64_t end = r->offset + r->avail;
	char name[48];
	int ret = 0;

	/* An entry's size counts its padding to 8 bytes, which the last one
	 * of a table may lack: each symbol ends where the section does. */
	if (r->kind == Q2E_REGION_SNAPSHOT_TABLE) {
		for (size_t n = 0; ret == 0 && n < e->img->nsnapshots; n++) {
			const struct q2e_snapshot *sn = &e->img->snapshots[n];

			if (sn->offset < r->offset || sn->offset >= end)
				break;
			if (!e->no_names)
				q2e_entry_symbol(Q2E_REGION_SNAPSHOT_TABLE,
						 (uint32_t)n, name,
						 sizeof(name));
			ret = add_sym(e, name, sn->offset,
				      entry_size(sn->offset, sn->entry.entry_size,
						 end),
				      si, Q2E_SYM_SNAPSHOT, n);
		}
	} else if (r->kind == Q2E_REGION_BITMAP_DIRECTORY) {
		for (size_t n = 0; ret == 0 && n < e->img->nbitmaps; n++) {
			const struct q2e_bitmap *b = &e->img->bitmaps[n];

			if (b->offset < r->offset || b->offset >= end)
				break;
			if (!e->no_names)
				q2e_entry_symbol(Q2E_REGION_BITMAP_DIRECTORY,
						 (uint32_t)n, name,
						 sizeof(name));
			ret = add_sym(e, name, b->offset,
				      entry_size(b->offset, b->entry.entry_size,
						 end),
				      si, Q2E_SYM_BITMAP, n);
		}
	}
	return ret;
}

/* Every region's symbols, one for each owner, and the table entries'. */
static int plan_symbols(struct planner *e)
{
	const struct q2e_image *img = e->img;
	char name[96];
	int ret;

	for (size_t si = 0; si < e->nsecs; si++) {
		const struct q2e_region *r = e->secs[si].region;

		for (uint32_t k = 0; k < r->nowners; k++) {
			if (!e->no_names &&
			    q2e_region_symbol(img, r, k, name, sizeof(name)) < 0)
				return q2e_error_set(e->err, Q2E_EUSAGE,
						     "symbol name too long");
			const struct q2e_owner *o = &r->owners[k];
			size_t index = r->kind == Q2E_REGION_EXTENSION
					       ? (size_t)o->index : o->id;

			ret = add_sym(e, name, r->offset, r->avail, si,
				      sym_type_of(img, r), index);
			if (ret < 0)
				return ret;
		}
		ret = entry_symbols(e, si);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int q2e_symbols_plan(struct q2e_symbols *syms, const struct q2e_image *img,
		     const struct q2e_out_section *secs, size_t nsecs,
		     struct q2e_error *err)
{
	struct planner e = { .img = img, .secs = secs, .nsecs = nsecs,
			     .syms = syms, .err = err, .name = 1 };
	int ret;

	*syms = (struct q2e_symbols){ .img = img, .secs = secs,
				      .nsecs = nsecs };
	ret = plan_symbols(&e);
	syms->names_len = e.name;
	return ret;
}

void q2e_symbols_each(const struct q2e_symbols *syms, bool names,
		      q2e_sym_fn *fn, void *ctx)
{
	/* Planned: the names fit, and every type is in the table. */
	struct planner e = { .img = syms->img, .secs = syms->secs,
			     .nsecs = syms->nsecs,
			     .syms = (struct q2e_symbols *)syms, .fn = fn,
			     .ctx = ctx, .no_names = !names, .name = 1 };

	plan_symbols(&e);
}

void q2e_symbols_free(struct q2e_symbols *syms)
{
	free(syms->v);
	free(syms->slots);
	free(syms->name_len);
	*syms = (struct q2e_symbols){ 0 };
}

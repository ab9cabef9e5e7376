/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diff of the structures that are not tables of entries: the header, its
 * extensions (decoded: feature table entries, bitmaps extension fields,
 * names), the snapshot table and the bitmap directory with each bitmap's
 * table and data clusters.  Members are named as the dump's DWARF types
 * name them, so `p qcow2_header.l1_size` or `p snapshot_2.date_sec` in gdb
 * shows the new value.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/array.h"
#include "qcow2elf/hashmap.h"
#include "view/diff_int.h"

/* "dirty, corrupt": the names of the bits set, by the image's own table. */
static char *features_meaning(const struct q2e_image *img,
			      enum qcow2_feature_type type, uint64_t bits)
{
	char buf[1024];
	size_t len = 0;

	buf[0] = '\0';
	for (unsigned bit = 0; bit < 64 && len < sizeof(buf) - 64; bit++) {
		const char *name;

		if (!(bits & (1ULL << bit)))
			continue;
		name = q2e_image_feature_name(img, type, bit);
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s",
					len ? ", " : "", name ? name : "");
		if (!name)
			len += (size_t)snprintf(buf + len, sizeof(buf) - len,
						"bit %u", bit);
	}
	return strdup(len ? buf : "none");
}

static int features_field(struct q2e_diff *d, const struct q2e_image *a,
			  const struct q2e_image *b, const char *member,
			  enum qcow2_feature_type type, uint64_t x, uint64_t y,
			  struct q2e_error *err)
{
	struct q2e_diff_entry *e;
	size_t n = d->groups[Q2E_DIFF_G_HEADER].n;
	int ret = diff_field_num(d, Q2E_DIFF_G_HEADER, "qcow2_header", member,
				 x, y, Q2E_DIFF_V_RAW, err);

	if (ret || d->groups[Q2E_DIFF_G_HEADER].n == n)
		return ret;
	e = &d->groups[Q2E_DIFF_G_HEADER].v[n];
	e->old.meaning = features_meaning(a, type, x);
	e->new.meaning = features_meaning(b, type, y);
	return e->old.meaning && e->new.meaning ? 0 : diff_nomem(err);
}

/* The header, field by field under the spec's names. */
int diff_header(struct q2e_diff *d, const struct q2e_image *a,
		const struct q2e_image *b, struct q2e_error *err)
{
	const struct qcow2_header *x = &a->hdr, *y = &b->hdr;
	int ret = 0;

#define F(f, t)                                                               \
	do {                                                                  \
		if (!ret)                                                     \
			ret = diff_field_num(d, Q2E_DIFF_G_HEADER,            \
					     "qcow2_header", #f, x->f, y->f,  \
					     Q2E_DIFF_V_##t, err);            \
	} while (0)
	F(version, NUM);
	F(backing_file_offset, RAW);
	F(backing_file_size, NUM);
	F(cluster_bits, NUM);
	F(size, NUM);
	F(crypt_method, NUM);
	F(l1_size, NUM);
	F(l1_table_offset, RAW);
	F(refcount_table_offset, RAW);
	F(refcount_table_clusters, NUM);
	F(nb_snapshots, NUM);
	F(snapshots_offset, RAW);
#undef F
	if (!ret)
		ret = features_field(d, a, b, "incompatible_features",
				     QCOW2_FEAT_INCOMPATIBLE,
				     x->incompatible_features,
				     y->incompatible_features, err);
	if (!ret)
		ret = features_field(d, a, b, "compatible_features",
				     QCOW2_FEAT_COMPATIBLE, x->compatible_features,
				     y->compatible_features, err);
	if (!ret)
		ret = features_field(d, a, b, "autoclear_features",
				     QCOW2_FEAT_AUTOCLEAR, x->autoclear_features,
				     y->autoclear_features, err);
	if (!ret)
		ret = diff_field_num(d, Q2E_DIFF_G_HEADER, "qcow2_header",
				     "refcount_order", x->refcount_order,
				     y->refcount_order, Q2E_DIFF_V_NUM, err);
	if (!ret)
		ret = diff_field_num(d, Q2E_DIFF_G_HEADER, "qcow2_header",
				     "header_length", x->header_length,
				     y->header_length, Q2E_DIFF_V_NUM, err);
	if (!ret)
		ret = diff_field_num(d, Q2E_DIFF_G_HEADER, "qcow2_header",
				     "compression_type", x->compression_type,
				     y->compression_type, Q2E_DIFF_V_NUM, err);
	if (!ret)
		ret = diff_field_str(d, Q2E_DIFF_G_HEADER, "backing_file", NULL,
				     a->backing_file, b->backing_file, err);
	return ret;
}

/*
 * Extensions sorted by magic and occurrence, which is what they are
 * matched by.
 */
struct ext_index {
	const struct q2e_image *img;
	const struct q2e_extension **sorted;
};

static int cmp_ext(const void *pa, const void *pb)
{
	const struct q2e_extension *a = *(const struct q2e_extension *const *)pa;
	const struct q2e_extension *b = *(const struct q2e_extension *const *)pb;

	if (a->magic != b->magic)
		return a->magic < b->magic ? -1 : 1;
	return a->nth < b->nth ? -1 : a->nth > b->nth;
}

static int ext_index_build(struct ext_index *x, const struct q2e_image *img)
{
	size_t n = img->nexts + 1;

	x->img = img;
	x->sorted = malloc(n * sizeof(*x->sorted));
	if (!x->sorted)
		return -1;
	for (size_t i = 0; i < img->nexts; i++)
		x->sorted[i] = &img->exts[i];
	qsort(x->sorted, img->nexts, sizeof(*x->sorted), cmp_ext);
	return 0;
}

static const struct q2e_extension *ext_find(const struct ext_index *x,
					    const struct q2e_extension *e)
{
	const struct q2e_extension *const *hit =
		bsearch(&e, x->sorted, x->img->nexts, sizeof(*x->sorted),
			cmp_ext);

	return hit ? *hit : NULL;
}

/* The symbol of extension I: "ext_feature_table", "ext_unknown_12345678". */
static void ext_symbol(const struct ext_index *x, size_t i, char *buf,
		       size_t size)
{
	diff_symbol(x->img, Q2E_REGION_EXTENSION, x->img->exts[i].magic,
		    Q2E_OWNER_IMAGE, 0, i, buf, size);
}

static char *features_text(const struct q2e_extension *e);

static char *feature_text(const struct q2e_extension *e, uint32_t k)
{
	struct qcow2_feature f;
	const char *why;

	if ((uint64_t)(k + 1) * QCOW2_FEATURE_ENTRY_SIZE > e->avail)
		return NULL;
	if (qcow2_feature_decode(e->data + k * QCOW2_FEATURE_ENTRY_SIZE,
				 QCOW2_FEATURE_ENTRY_SIZE, &f, &why) < 0)
		return strdup("(undecodable)");
	return diff_strdup_printf("%s bit %u: %s",
				  qcow2_feature_type_name(f.type), f.bit,
				  f.name);
}

/* A payload as text: names as they are, known structures decoded, the
 * rest in hex. */
static char *ext_text(const struct q2e_extension *e)
{
	struct qcow2_bitmaps_ext b;
	struct qcow2_crypto_ext c;
	const char *why;
	char *s;

	if (e->magic == QCOW2_EXT_BACKING_FORMAT ||
	    e->magic == QCOW2_EXT_DATA_FILE) {
		if (!(s = malloc((size_t)e->avail + 1)))
			return NULL;
		memcpy(s, e->data, e->avail);
		s[e->avail] = '\0';
		return s;
	}
	if (e->magic == QCOW2_EXT_BITMAPS &&
	    qcow2_bitmaps_ext_decode(e->data, e->avail, &b, &why) == 0)
		return diff_strdup_printf("nb_bitmaps %" PRIu32
					  ", bitmap_directory_size %" PRIu64
					  ", bitmap_directory_offset 0x%" PRIx64,
					  b.nb_bitmaps, b.bitmap_directory_size,
					  b.bitmap_directory_offset);
	if (e->magic == QCOW2_EXT_CRYPTO &&
	    qcow2_crypto_ext_decode(e->data, e->avail, &c, &why) == 0)
		return diff_strdup_printf("crypto_header_offset 0x%" PRIx64
					  ", crypto_header_length 0x%" PRIx64,
					  c.offset, c.length);
	if (e->magic == QCOW2_EXT_FEATURE_TABLE)
		return features_text(e);
	if (!(s = malloc((size_t)e->avail * 2 + 1)))
		return NULL;
	for (uint32_t i = 0; i < e->avail; i++)
		snprintf(s + 2 * i, 3, "%02x", e->data[i]);
	s[e->avail * 2] = '\0';
	return s;
}

/* The whole feature name table: "incompatible bit 0: dirty bit; ...". */
static char *features_text(const struct q2e_extension *e)
{
	uint32_t n = e->avail / QCOW2_FEATURE_ENTRY_SIZE;
	size_t cap = (size_t)n * (QCOW2_FEATURE_NAME_LEN + 32) + 1, len = 0;
	char *s = malloc(cap);

	if (!s)
		return NULL;
	s[0] = '\0';
	for (uint32_t k = 0; k < n; k++) {
		char *t = feature_text(e, k);

		if (!t) {
			free(s);
			return NULL;
		}
		len += (size_t)snprintf(s + len, cap - len, "%s%s",
					k ? "; " : "", t);
		free(t);
	}
	return s;
}

/* Feature name table entries, by index: "features[3]". */
static int ext_features(struct q2e_diff *d, const char *sym,
			const struct q2e_extension *x,
			const struct q2e_extension *y, struct q2e_error *err)
{
	uint32_t n = (x->avail > y->avail ? x->avail : y->avail) /
		     QCOW2_FEATURE_ENTRY_SIZE;
	int ret = 0;

	for (uint32_t k = 0; k < n && !ret; k++) {
		char *sx = feature_text(x, k), *sy = feature_text(y, k);
		char member[32];

		snprintf(member, sizeof(member), "features[%" PRIu32 "]", k);
		ret = diff_field_str(d, Q2E_DIFF_G_EXTENSION, sym, member, sx,
				     sy, err);
		free(sx);
		free(sy);
	}
	return ret;
}

static int ext_fields(struct q2e_diff *d, const char *sym,
		      const struct q2e_extension *x,
		      const struct q2e_extension *y, struct q2e_error *err)
{
	const enum q2e_diff_group g = Q2E_DIFF_G_EXTENSION;
	struct qcow2_bitmaps_ext bx, by;
	struct qcow2_crypto_ext cx, cy;
	const char *why;
	int ret;

	if (x->magic == QCOW2_EXT_FEATURE_TABLE)
		return ext_features(d, sym, x, y, err);
	if (x->magic == QCOW2_EXT_BITMAPS &&
	    qcow2_bitmaps_ext_decode(x->data, x->avail, &bx, &why) == 0 &&
	    qcow2_bitmaps_ext_decode(y->data, y->avail, &by, &why) == 0) {
		ret = diff_field_num(d, g, sym, "nb_bitmaps", bx.nb_bitmaps,
				     by.nb_bitmaps, Q2E_DIFF_V_NUM, err);
		if (!ret)
			ret = diff_field_num(d, g, sym, "reserved", bx.reserved,
					     by.reserved, Q2E_DIFF_V_RAW, err);
		if (!ret)
			ret = diff_field_num(d, g, sym, "bitmap_directory_size",
					     bx.bitmap_directory_size,
					     by.bitmap_directory_size,
					     Q2E_DIFF_V_NUM, err);
		if (!ret)
			ret = diff_field_num(d, g, sym, "bitmap_directory_offset",
					     bx.bitmap_directory_offset,
					     by.bitmap_directory_offset,
					     Q2E_DIFF_V_RAW, err);
		return ret;
	}
	if (x->magic == QCOW2_EXT_CRYPTO &&
	    qcow2_crypto_ext_decode(x->data, x->avail, &cx, &why) == 0 &&
	    qcow2_crypto_ext_decode(y->data, y->avail, &cy, &why) == 0) {
		ret = diff_field_num(d, g, sym, "crypto_header_offset",
				     cx.offset, cy.offset, Q2E_DIFF_V_RAW, err);
		if (!ret)
			ret = diff_field_num(d, g, sym, "crypto_header_length",
					     cx.length, cy.length,
					     Q2E_DIFF_V_RAW, err);
		return ret;
	}
	char *sx = ext_text(x), *sy = ext_text(y);
	bool text = x->magic == QCOW2_EXT_BACKING_FORMAT ||
		    x->magic == QCOW2_EXT_DATA_FILE;

	ret = sx && sy ? diff_field_str(d, g, sym, text ? "name" : "data", sx,
					sy, err)
		       : diff_nomem(err);
	free(sx);
	free(sy);
	return ret;
}

/* Extension I, whole: added or removed. */
static int ext_whole(struct q2e_diff *d, const struct ext_index *x, size_t i,
		     bool added, struct q2e_error *err)
{
	struct q2e_diff_entry *e;
	char sym[96];

	ext_symbol(x, i, sym, sizeof(sym));
	e = diff_entry_new(d, Q2E_DIFF_G_EXTENSION, sym, NULL, err);
	if (!e)
		return err->code;
	e->change = added ? "added" : "removed";
	struct q2e_diff_value *v = added ? &e->new : &e->old;

	v->type = Q2E_DIFF_V_STR;
	v->str = ext_text(&x->img->exts[i]);
	return v->str ? 0 : diff_nomem(err);
}

static int diff_extensions_indexed(struct q2e_diff *d,
				   const struct ext_index *ia,
				   const struct ext_index *ib,
				   struct q2e_error *err)
{
	const struct q2e_image *a = ia->img, *b = ib->img;
	int ret = 0;

	for (size_t i = 0; i < a->nexts && !ret; i++) {
		const struct q2e_extension *x = &a->exts[i];
		const struct q2e_extension *y = ext_find(ib, x);
		char sym[96];

		if (!y) {
			ret = ext_whole(d, ia, i, false, err);
			continue;
		}
		if (x->length == y->length && x->avail == y->avail &&
		    memcmp(x->data, y->data, x->avail) == 0)
			continue;
		ext_symbol(ib, (size_t)(y - b->exts), sym, sizeof(sym));
		ret = diff_field_num(d, Q2E_DIFF_G_EXTENSION, sym, "length",
				     x->length, y->length, Q2E_DIFF_V_NUM, err);
		if (!ret)
			ret = ext_fields(d, sym, x, y, err);
	}
	for (size_t i = 0; i < b->nexts && !ret; i++)
		if (!ext_find(ia, &b->exts[i]))
			ret = ext_whole(d, ib, i, true, err);
	return ret;
}

int diff_extensions(struct q2e_diff *d, const struct q2e_image *a,
		    const struct q2e_image *b, struct q2e_error *err)
{
	struct ext_index ia = { 0 }, ib = { 0 };
	int ret;

	if (ext_index_build(&ia, a) < 0 || ext_index_build(&ib, b) < 0)
		ret = diff_nomem(err);
	else
		ret = diff_extensions_indexed(d, &ia, &ib, err);
	free(ia.sorted);
	free(ib.sorted);
	return ret;
}

/*
 * Snapshots pair by ID and name, and when a damaged table repeats them, by
 * occurrence.
 */
/* Whether IMG is a dump written with --redact that left WHAT out (its
 * note's words: "snapshot-names", "bitmap-names", "bitmap-data"). */
static bool left_out(const struct q2e_image *img, const char *what)
{
	const struct q2e_dump_meta *m = q2e_image_dump_meta(img);

	return m && m->redacted && strstr(m->redacted, what);
}

/* Snapshots pair by ID and name; where either side's names are
 * placeholders, by ID alone: a placeholder tells nothing of the name. */
int diff_pair_snapshots(struct diff_pairing *p, const struct q2e_image *a,
			const struct q2e_image *b, struct q2e_error *err)
{
	int ret = diff_pairing_new(p, a->nsnapshots, b->nsnapshots, err);
	bool by_id = left_out(a, "snapshot-names") ||
		     left_out(b, "snapshot-names");

	if (ret < 0)
		return ret;
	for (size_t i = 0; i < a->nsnapshots; i++)
		p->ka[i] = (struct diff_key){ a->snapshots[i].id,
					      by_id ? "" : a->snapshots[i].name,
					      i };
	for (size_t i = 0; i < b->nsnapshots; i++)
		p->kb[i] = (struct diff_key){ b->snapshots[i].id,
					      by_id ? "" : b->snapshots[i].name,
					      i };
	diff_pairing_match(p);
	return 0;
}

/* A whole snapshot or bitmap, added or removed: its name, and its ID. */
static int whole_entry(struct q2e_diff *d, enum q2e_diff_group g,
		       const char *sym, bool added, const char *name,
		       const char *id, struct q2e_error *err)
{
	struct q2e_diff_entry *e = diff_entry_new(d, g, sym, NULL, err);
	struct q2e_diff_value *v;

	if (!e)
		return err->code;
	e->change = added ? "added" : "removed";
	v = added ? &e->new : &e->old;
	v->type = Q2E_DIFF_V_STR;
	v->str = strdup(name);
	v->meaning = id ? diff_strdup_printf("id %s", id) : NULL;
	return v->str && (!id || v->meaning) ? 0 : diff_nomem(err);
}

static uint64_t vm_state_size(const struct qcow2_snapshot *s)
{
	return s->has_vm_state_size_large ? s->vm_state_size_large
					  : s->vm_state_size;
}

static int snapshot_fields(struct q2e_diff *d, const char *sym,
			   const struct qcow2_snapshot *x,
			   const struct qcow2_snapshot *y,
			   struct q2e_error *err)
{
	int ret = 0;

#define F(f, t)                                                               \
	do {                                                                  \
		if (!ret)                                                     \
			ret = diff_field_num(d, Q2E_DIFF_G_SNAPSHOT, sym, #f, \
					     x->f, y->f, Q2E_DIFF_V_##t,      \
					     err);                            \
	} while (0)
	F(l1_table_offset, RAW);
	F(l1_size, NUM);
	F(date_sec, NUM);
	F(date_nsec, NUM);
	F(vm_clock_nsec, NUM);
	F(extra_data_size, NUM);
	F(disk_size, NUM);
	F(icount, NUM);
#undef F
	if (!ret)
		ret = diff_field_num(d, Q2E_DIFF_G_SNAPSHOT, sym,
				     x->has_vm_state_size_large ||
						     y->has_vm_state_size_large
					     ? "vm_state_size_large"
					     : "vm_state_size",
				     vm_state_size(x), vm_state_size(y),
				     Q2E_DIFF_V_NUM, err);
	return ret;
}

/* Snapshots by their entry's symbol in the new table: "snapshot_2". */
int diff_snapshots(struct q2e_diff *d, const struct q2e_image *a,
		   const struct q2e_image *b, struct q2e_error *err)
{
	struct diff_pairing p;
	char sym[48];
	int ret = diff_pair_snapshots(&p, a, b, err);

	if (ret < 0)
		return ret;
	for (size_t i = 0; i < b->nsnapshots && !ret; i++) {
		const struct q2e_snapshot *sb = &b->snapshots[i];

		diff_entry_symbol(Q2E_REGION_SNAPSHOT_TABLE, i, sym, sizeof(sym));
		if (p.b[i] == SIZE_MAX)
			ret = whole_entry(d, Q2E_DIFF_G_SNAPSHOT, sym, true,
					  sb->name, sb->id, err);
		else
			ret = snapshot_fields(d, sym,
					      &a->snapshots[p.b[i]].entry,
					      &sb->entry, err);
	}
	for (size_t i = 0; i < a->nsnapshots && !ret; i++) {
		const struct q2e_snapshot *sa = &a->snapshots[i];

		diff_entry_symbol(Q2E_REGION_SNAPSHOT_TABLE, i, sym, sizeof(sym));
		if (p.a[i] == SIZE_MAX)
			ret = whole_entry(d, Q2E_DIFF_G_SNAPSHOT, sym, false,
					  sa->name, sa->id, err);
	}
	diff_pairing_free(&p);
	return ret;
}

/* Likewise for bitmaps, by name. */
/* Bitmaps pair by name; where either side's names are placeholders, by
 * place in the directory (the k-th with the k-th), which is what a
 * redacted dump's placeholders stand for. */
int diff_pair_bitmaps(struct diff_pairing *p, const struct q2e_image *a,
		      const struct q2e_image *b, struct q2e_error *err)
{
	int ret = diff_pairing_new(p, a->nbitmaps, b->nbitmaps, err);
	bool by_place = left_out(a, "bitmap-names") ||
			left_out(b, "bitmap-names");

	if (ret < 0)
		return ret;
	for (size_t i = 0; i < a->nbitmaps; i++)
		p->ka[i] = (struct diff_key){ by_place ? "" : a->bitmaps[i].name,
					      "", i };
	for (size_t i = 0; i < b->nbitmaps; i++)
		p->kb[i] = (struct diff_key){ by_place ? "" : b->bitmaps[i].name,
					      "", i };
	diff_pairing_match(p);
	return 0;
}

static char *bitmap_flags_meaning(uint32_t flags)
{
	static const char *const names[] = { "in_use", "auto",
					     "extra_data_compatible" };
	char buf[512] = "";	/* room for all 32 bits */
	size_t len = 0;

	for (unsigned bit = 0; bit < 32; bit++) {
		if (!(flags & (1U << bit)))
			continue;
		if (bit < 3)
			len += (size_t)snprintf(buf + len, sizeof(buf) - len,
						"%s%s", len ? ", " : "",
						names[bit]);
		else
			len += (size_t)snprintf(buf + len, sizeof(buf) - len,
						"%sbit %u", len ? ", " : "", bit);
	}
	return strdup(len ? buf : "none");
}

static int bitmap_fields(struct q2e_diff *d, const char *sym,
			 const struct qcow2_bitmap_entry *x,
			 const struct qcow2_bitmap_entry *y,
			 struct q2e_error *err)
{
	struct q2e_diff_entries *l = &d->groups[Q2E_DIFF_G_BITMAP];
	size_t n = l->n;
	int ret;

	ret = diff_field_num(d, Q2E_DIFF_G_BITMAP, sym, "flags", x->flags,
			     y->flags, Q2E_DIFF_V_RAW, err);
	if (!ret && l->n > n) {
		l->v[n].old.meaning = bitmap_flags_meaning(x->flags);
		l->v[n].new.meaning = bitmap_flags_meaning(y->flags);
		if (!l->v[n].old.meaning || !l->v[n].new.meaning)
			ret = diff_nomem(err);
	}
#define F(f, t)                                                               \
	do {                                                                  \
		if (!ret)                                                     \
			ret = diff_field_num(d, Q2E_DIFF_G_BITMAP, sym, #f,   \
					     x->f, y->f, Q2E_DIFF_V_##t,      \
					     err);                            \
	} while (0)
	F(bitmap_table_offset, RAW);
	F(bitmap_table_size, NUM);
	F(type, NUM);
	F(granularity_bits, NUM);
	F(extra_data_size, NUM);
#undef F
	return ret;
}

static char *bitmap_entry_meaning(uint64_t raw)
{
	struct qcow2_bitmap_table_entry e;

	qcow2_bitmap_table_entry_decode(raw, &e);
	if (e.kind == QCOW2_BITMAP_SERIALIZED)
		return diff_strdup_printf("data at 0x%" PRIx64, e.offset);
	return strdup(e.kind == QCOW2_BITMAP_ALL_ONES ? "all ones"
						      : "all zeros");
}

static const char *bitmap_entry_change(const struct qcow2_bitmap_table_entry *x,
				       const struct qcow2_bitmap_table_entry *y)
{
	bool dx = x->kind == QCOW2_BITMAP_SERIALIZED;
	bool dy = y->kind == QCOW2_BITMAP_SERIALIZED;

	if (dy && !dx)
		return "allocated";
	if (dx && !dy)
		return "freed";
	return dx ? "moved" : "changed";
}

/*
 * The region of a serialized bitmap data cluster at OFF, or NULL if the
 * file holds none of its bytes (no region, past the end of the file):
 * then they are zeros that nothing was spent on.
 */
static const struct q2e_region *bitmap_region(const struct q2e_image *img,
					      uint64_t off)
{
	const struct q2e_region *r =
		diff_region_exact(img, off, Q2E_REGION_BITMAP_DATA);

	/* A region of the cluster's size: all of a buffer is read or zeroed. */
	return r && r->size == img->cluster_size && r->avail ? r : NULL;
}

/* How two bitmap data clusters differ: the first and last bit that
 * does, and how many became set and how many clear. */
struct bits_diff {
	uint64_t first, last, set, cleared;
};

/* The pairs of clusters of bits compared: a table may name one a million
 * times, or a million clusters past the end of the file.  A pair that
 * differs keeps its struct bits_diff, one that does not this marker. */
static const char pair_same;

static void pair_free(void *v)
{
	if (v != &pair_same)
		free(v);
}

/* Bit k of a serialized bitmap is bit k % 8 of byte k / 8 (QEMU's
 * little-endian words): the 64 bits from byte I of P. */
static uint64_t bits_at(const uint8_t *p, size_t i)
{
	uint64_t v = 0;

	for (int k = 7; k >= 0; k--)
		v = v << 8 | p[i + (size_t)k];
	return v;
}

/* How X and Y (LEN bytes, a multiple of 8) differ, in *D: false if not. */
static bool bits_compare(const uint8_t *x, const uint8_t *y, size_t len,
			 struct bits_diff *d)
{
	*d = (struct bits_diff){ 0 };
	for (size_t i = 0; i < len; i += 8) {
		uint64_t vx = bits_at(x, i), vy = bits_at(y, i);
		uint64_t changed = vx ^ vy;

		if (!changed)
			continue;
		if (!d->set && !d->cleared)
			d->first = i * 8 + (uint64_t)__builtin_ctzll(changed);
		d->last = i * 8 + 63 - (uint64_t)__builtin_clzll(changed);
		d->set += (uint64_t)__builtin_popcountll(changed & vy);
		d->cleared += (uint64_t)__builtin_popcountll(changed & vx);
	}
	return d->set || d->cleared;
}

/* Bitmap N of A and of B, being compared. */
struct bitmap_pair {
	struct q2e_diff *d;
	struct q2e_image *a, *b;
	uint32_t n;
	int granularity;	/* bits, or -1 where the two differ */
	uint64_t nbits;		/* the bitmap's bits (UINT64_MAX: not known) */
	struct q2e_map seen;
	uint8_t *bx, *by;	/* a data cluster of each */
};

/* What a table entry's bits are: a held data cluster's offset (aligned),
 * or all zeros (an "all zeros" entry, or a cluster the file holds none
 * of), or all ones. */
#define BITS_ZEROS UINT64_MAX
#define BITS_ONES (UINT64_MAX - 1)

static uint64_t bits_class(const struct q2e_image *img,
			   const struct qcow2_bitmap_table_entry *x)
{
	if (x->kind == QCOW2_BITMAP_SERIALIZED)
		return bitmap_region(img, x->offset) ? x->offset : BITS_ZEROS;
	return x->kind == QCOW2_BITMAP_ALL_ONES ? BITS_ONES : BITS_ZEROS;
}

/* The bits of class K in BUF (LEN bytes), their first VALID kept and the
 * rest cleared: past the bitmap's end QEMU's data clusters hold zeros,
 * and an "all ones" entry stands for ones up to the end only. */
static int bits_fill(struct q2e_image *img, uint64_t k, uint8_t *buf,
		     size_t len, uint64_t valid, struct q2e_error *err)
{
	int ret = 0;

	if (k == BITS_ZEROS || k == BITS_ONES)
		memset(buf, k == BITS_ONES ? 0xff : 0, len);
	else
		ret = q2e_image_read_region(img, bitmap_region(img, k), buf, err);
	if (ret == 0 && valid < (uint64_t)len * 8) {
		size_t full = (size_t)(valid / 8);

		buf[full] &= (uint8_t)((1u << (valid % 8)) - 1);
		memset(buf + full + 1, 0, len - full - 1);
	}
	return ret;
}

/* How the bits of entries X of A and Y of B, for cluster J, differ: *D
 * NULL if not.  Work and memory go to pairs of distinct clusters only. */
static int bitmap_bits_differ(struct bitmap_pair *p, uint64_t j,
			      const struct qcow2_bitmap_table_entry *x,
			      const struct qcow2_bitmap_table_entry *y,
			      const struct bits_diff **d, struct q2e_error *err)
{
	size_t len = (size_t)p->a->cluster_size;
	uint64_t per = (uint64_t)len * 8;
	uint64_t valid = p->nbits / per > j ? per
			 : p->nbits / per == j ? p->nbits % per : 0;
	const uint64_t key[Q2E_MAP_KEY] = { bits_class(p->a, x),
					    bits_class(p->b, y), valid };
	const void *known;
	struct bits_diff found, *kept;
	int ret;

	*d = NULL;
	if (valid == 0 || (key[0] == key[1] && key[0] >= BITS_ONES))
		return 0;	/* past the end, or one constant both sides */
	known = q2e_map_get(&p->seen, key);
	if (known) {
		if (known != &pair_same)
			*d = known;
		return 0;
	}
	ret = bits_fill(p->a, key[0], p->bx, len, valid, err);
	if (!ret)
		ret = bits_fill(p->b, key[1], p->by, len, valid, err);
	if (ret)
		return ret;
	if (!bits_compare(p->bx, p->by, len, &found)) {
		if (q2e_map_put(&p->seen, key, (void *)&pair_same) < 0)
			return diff_nomem(err);
		return 0;
	}
	kept = malloc(sizeof(*kept));
	if (!kept || q2e_map_put(&p->seen, key, kept) < 0) {
		free(kept);
		return diff_nomem(err);
	}
	*kept = found;
	*d = kept;
	return 0;
}

/*
 * The guest bytes from the first bit of BITS to the last, in data cluster
 * J, within the new image's virtual size: bit k of data cluster j is bit
 * j * cluster_size * 8 + k.  A hostile table may name bits past the disk,
 * or more than 64-bit guest offsets hold.
 */
static void bitmap_guest_range(const struct bitmap_pair *p, uint64_t j,
			       const struct bits_diff *bits,
			       struct q2e_diff_entry *e)
{
	uint64_t per = p->b->cluster_size * 8, size, start, end;
	unsigned g = (unsigned)p->granularity;

	if (j >= (UINT64_MAX >> g) / per)
		return;
	size = q2e_image_virtual_size(p->b);
	start = (j * per + bits->first) << g;
	end = (j * per + bits->last + 1) << g;
	if (start >= size)
		return;
	e->has_range = true;
	e->range_start = start;
	e->range_length = (end < size ? end : size) - start;
}

/*
 * A cluster J of the bitmap whose bits differ, with data on either side
 * (RX and RY the table entries): "bitmap_0_data_5", with how many bits
 * became set and clear, and the guest bytes from the first bit that
 * differs to the last (where both bitmaps have one granularity).  An
 * "all zeros" or "all ones" entry stands for its bits: the first writes
 * after a bitmap is added allocate its first data cluster.
 */
static int bitmap_data(struct bitmap_pair *p, uint64_t j, uint64_t rx,
		       uint64_t ry, const struct qcow2_bitmap_table_entry *x,
		       const struct qcow2_bitmap_table_entry *y,
		       struct q2e_error *err)
{
	struct q2e_diff_entry *e;
	const struct bits_diff *bits;
	char sym[64];
	int ret = bitmap_bits_differ(p, j, x, y, &bits, err);

	if (ret || !bits)
		return ret;
	diff_symbol(p->b, Q2E_REGION_BITMAP_DATA, 0, Q2E_OWNER_BITMAP, p->n, j,
		    sym, sizeof(sym));
	e = diff_entry_new(p->d, Q2E_DIFF_G_BITMAP_DATA, sym, NULL, err);
	if (!e)
		return err->code;
	e->change = "bits-changed";
	e->old = (struct q2e_diff_value){ .type = Q2E_DIFF_V_RAW,
					  .num = x->kind == QCOW2_BITMAP_SERIALIZED
						 ? x->offset : rx };
	e->new = (struct q2e_diff_value){ .type = Q2E_DIFF_V_RAW,
					  .num = y->kind == QCOW2_BITMAP_SERIALIZED
						 ? y->offset : ry };
	e->old.meaning = bitmap_entry_meaning(rx);
	e->new.meaning = bitmap_entry_meaning(ry);
	if (!e->old.meaning || !e->new.meaning)
		return diff_nomem(err);
	/* Of two granularities, bit k means other guest bytes in each: the
	 * clusters differ, and granularity_bits says why. */
	if (p->granularity < 0)
		return 0;
	e->has_bits = true;
	e->bits_set = bits->set;
	e->bits_cleared = bits->cleared;
	bitmap_guest_range(p, j, bits, e);
	return 0;
}

/* The granularity of both bitmaps in bits, or -1 where they have two (or
 * one past what a 64-bit offset can shift). */
static int one_granularity(const struct qcow2_bitmap_entry *x,
			   const struct qcow2_bitmap_entry *y)
{
	if (x->granularity_bits != y->granularity_bits ||
	    y->granularity_bits >= 64)
		return -1;
	return y->granularity_bits;
}

/* The bits of a bitmap of granularity G (bits; -1 where the two differ:
 * not known) over the larger disk of A and B: QEMU's bitmaps cover the
 * disk, one bit for each 2^G bytes or part. */
static uint64_t bitmap_nbits(const struct q2e_image *a,
			     const struct q2e_image *b, int g)
{
	uint64_t va = q2e_image_virtual_size(a), vb = q2e_image_virtual_size(b);
	uint64_t v = va > vb ? va : vb;

	if (g < 0)
		return UINT64_MAX;
	return (v >> g) + ((v & ((1ULL << g) - 1)) != 0);
}


/* The entries of bitmap N's table, and its data clusters whose bits differ. */
static int bitmap_table(struct q2e_diff *d, struct q2e_image *a,
			const struct q2e_bitmap *x, struct q2e_image *b,
			const struct q2e_bitmap *y, uint32_t n,
			struct q2e_error *err)
{
	uint64_t count = x->ntable > y->ntable ? x->ntable : y->ntable;
	bool bits = a->cluster_size == b->cluster_size &&
		    !left_out(a, "bitmap-data") && !left_out(b, "bitmap-data");
	struct bitmap_pair p = {
		.d = d, .a = a, .b = b, .n = n,
		.granularity = one_granularity(&x->entry, &y->entry),
		.bx = malloc((size_t)a->cluster_size),
		.by = malloc((size_t)b->cluster_size),
	};
	char sym[48];
	int ret = p.bx && p.by ? 0 : diff_nomem(err);

	p.nbits = bitmap_nbits(a, b, p.granularity);
	diff_symbol(b, Q2E_REGION_BITMAP_TABLE, 0, Q2E_OWNER_BITMAP, n, 0, sym,
		    sizeof(sym));
	for (uint64_t j = 0; j < count && !ret; j++) {
		uint64_t rx = j < x->ntable && x->table ? x->table[j] : 0;
		uint64_t ry = j < y->ntable && y->table ? y->table[j] : 0;
		struct qcow2_bitmap_table_entry ex, ey;
		struct q2e_diff_entry *e;

		qcow2_bitmap_table_entry_decode(rx, &ex);
		qcow2_bitmap_table_entry_decode(ry, &ey);
		if (bits && (ex.kind == QCOW2_BITMAP_SERIALIZED ||
			     ey.kind == QCOW2_BITMAP_SERIALIZED))
			ret = bitmap_data(&p, j, rx, ry, &ex, &ey, err);
		if (ret || rx == ry)
			continue;
		e = diff_entry_new(d, Q2E_DIFF_G_BITMAP_TABLE, sym, NULL, err);
		if (!e) {
			ret = err->code;
			break;
		}
		e->indexed = true;
		e->index = j;
		e->change = bitmap_entry_change(&ex, &ey);
		e->old = (struct q2e_diff_value){ .type = Q2E_DIFF_V_RAW,
						  .num = rx };
		e->new = (struct q2e_diff_value){ .type = Q2E_DIFF_V_RAW,
						  .num = ry };
		e->old.meaning = bitmap_entry_meaning(rx);
		e->new.meaning = bitmap_entry_meaning(ry);
		if (!e->old.meaning || !e->new.meaning)
			ret = diff_nomem(err);
	}
	q2e_map_free(&p.seen, pair_free);
	free(p.bx);
	free(p.by);
	return ret;
}

/* Bitmaps by their directory entry's symbol in the new image: "bitmap_0". */
int diff_bitmaps(struct q2e_diff *d, struct q2e_image *a,
		 struct q2e_image *b, struct q2e_error *err)
{
	struct diff_pairing p;
	char sym[48];
	int ret = diff_pair_bitmaps(&p, a, b, err);

	if (ret < 0)
		return ret;
	for (size_t i = 0; i < b->nbitmaps && !ret; i++) {
		const struct q2e_bitmap *y = &b->bitmaps[i];
		const struct q2e_bitmap *x;

		diff_entry_symbol(Q2E_REGION_BITMAP_DIRECTORY, i, sym, sizeof(sym));
		if (p.b[i] == SIZE_MAX) {
			ret = whole_entry(d, Q2E_DIFF_G_BITMAP, sym, true,
					  y->name, NULL, err);
			continue;
		}
		x = &a->bitmaps[p.b[i]];
		if (left_out(a, "bitmap-data") || left_out(b, "bitmap-data"))
			d->not_compared = "the bits of the bitmaps: a dump written with --redact holds no bitmap data";
		ret = bitmap_fields(d, sym, &x->entry, &y->entry, err);
		if (!ret)
			ret = bitmap_table(d, a, x, b, y, (uint32_t)i, err);
	}
	for (size_t i = 0; i < a->nbitmaps && !ret; i++) {
		diff_entry_symbol(Q2E_REGION_BITMAP_DIRECTORY, i, sym, sizeof(sym));
		if (p.a[i] == SIZE_MAX)
			ret = whole_entry(d, Q2E_DIFF_G_BITMAP, sym, false,
					  a->bitmaps[i].name, NULL, err);
	}
	diff_pairing_free(&p);
	return ret;
}

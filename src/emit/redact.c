/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `dump --redact`: the bytes a dump for a bug report leaves out.
 *
 * Replaced by placeholders of the same length: snapshot and bitmap names
 * (in their table entries), the backing file name and the external data
 * file name.  Zeroed: in the LUKS1 header, the master key digest and its
 * salt and each key slot's salt; everything after the header in the
 * encryption area (the key material of every slot); and bitmap data
 * clusters.  Kept: every other byte, so that the dump reads as an image
 * of the same layout, with the same tables; and a secret's bytes that
 * another structure holds too (a table over the snapshot table, in a
 * damaged image), which are that structure's metadata.
 *
 * LUKS1 header (big-endian, 592 bytes), the parts patched:
 *   OFFSET SIZE
 *   112    20    mk_digest
 *   132    32    mk_digest_salt
 *   208    48*8  key slots; in each, at +8, a 32-byte salt
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/array.h"
#include "redact.h"

#define LUKS_MK_DIGEST 112U
#define LUKS_MK_DIGEST_LEN 20U
#define LUKS_MK_SALT 132U
#define LUKS_SALT_LEN 32U
#define LUKS_SLOTS_AT 208U
#define LUKS_SLOT_SIZE 48U
#define LUKS_SLOT_SALT 8U

void q2e_placeholder(char *out, size_t len, const char *stem, size_t n)
{
	static const char letters[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	char s[64];
	size_t k;

	snprintf(s, sizeof(s), "%s-%zu", stem, n);
	if (strlen(s) > len)
		snprintf(s, sizeof(s), "%c%zu", stem[0], n);
	k = strlen(s);
	if (k > len) {
		/* N in base 52, letters only, so never one of the forms
		 * above, which hold digits: unique for N < 52^LEN (wrapping
		 * past that, where LEN bytes cannot tell the names apart). */
		for (size_t i = len; i-- > 0; n /= 52)
			out[i] = letters[n % 52];
		return;
	}
	memcpy(out, s, k);
	memset(out + k, '_', len - k);
}

/*
 * A range to redact, and the kinds of region that hold it as a secret
 * (bit K: kind K).  Every other region's bytes are its own metadata.
 */
struct secret {
	uint64_t offset;
	uint64_t length;
	unsigned owners;
	const char *stem;	/* NULL for zeros */
	size_t n;
};

#define OWNER(kind) (1U << (kind))

/* [lo, hi), as sorted lists of byte ranges. */
struct span {
	uint64_t lo;
	uint64_t hi;
};

struct spans {
	struct span *s;
	size_t n;
	size_t cap;
};

struct plan {
	struct secret *s;
	size_t n;
	size_t cap;
	struct q2e_redaction *r;
	size_t pcap;
	struct q2e_error *err;
};

static uint64_t end_of(uint64_t off, uint64_t len)
{
	return len > UINT64_MAX - off ? UINT64_MAX : off + len;
}

static int add(struct plan *p, uint64_t off, uint64_t len, unsigned owners,
	       const char *stem, size_t n)
{
	if (!len)
		return 0;
	if (q2e_grow(p->s, p->cap, p->n + 1) < 0)
		return q2e_error_set(p->err, Q2E_ENOMEM, "out of memory");
	p->s[p->n++] = (struct secret){ off, len, owners, stem, n };
	return 0;
}

static int plan_luks(struct plan *p, const struct q2e_image *img)
{
	const unsigned own = OWNER(Q2E_REGION_CRYPTO_HEADER);
	uint64_t at = img->crypto_ext.offset, len = img->crypto_ext.length;
	int ret;

	if (!img->has_crypto_ext || len < QCOW2_LUKS_HEADER_SIZE)
		return 0;
	ret = add(p, at + LUKS_MK_DIGEST, LUKS_MK_DIGEST_LEN, own, NULL, 0);
	if (ret == 0)
		ret = add(p, at + LUKS_MK_SALT, LUKS_SALT_LEN, own, NULL, 0);
	for (unsigned i = 0; ret == 0 && i < QCOW2_LUKS_SLOTS; i++)
		ret = add(p, at + LUKS_SLOTS_AT + i * LUKS_SLOT_SIZE +
				     LUKS_SLOT_SALT,
			  LUKS_SALT_LEN, own, NULL, 0);
	if (ret == 0)
		ret = add(p, at + QCOW2_LUKS_HEADER_SIZE,
			  len - QCOW2_LUKS_HEADER_SIZE, own, NULL, 0);
	return ret;
}

/* Snapshot N's ID as a number, or -1 if it is not a decimal one. */
static long long id_number(const struct q2e_snapshot *s)
{
	long long v = 0;

	if (!s->id || !*s->id || strlen(s->id) > 9 ||
	    strspn(s->id, "0123456789") != strlen(s->id))
		return -1;
	for (const char *c = s->id; *c; c++)
		v = v * 10 + (*c - '0');
	return v;
}

static int compare_ids(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

/*
 * Whether every snapshot's ID is a decimal number of its own, as QEMU
 * gives them: then a snapshot's placeholder is numbered by its ID, which
 * deleting another snapshot does not change, so that diff pairs the
 * snapshots of two redacted dumps as it pairs the images'.
 */
static bool ids_numbered(const struct q2e_image *img)
{
	long long *v = malloc((img->nsnapshots + 1) * sizeof(*v));
	bool unique = v != NULL;

	for (size_t n = 0; unique && n < img->nsnapshots; n++)
		unique = (v[n] = id_number(&img->snapshots[n])) >= 0;
	if (unique)
		qsort(v, img->nsnapshots, sizeof(*v), compare_ids);
	for (size_t n = 1; unique && n < img->nsnapshots; n++)
		unique = v[n] != v[n - 1];
	free(v);
	return unique;
}

/* Whether the placeholder of LEN bytes for number N is N in letters
 * (q2e_placeholder()'s last form), which holds N modulo 52^LEN. */
static bool letters_form(const char *stem, size_t len, size_t n)
{
	char s[64];

	return (size_t)snprintf(s, sizeof(s), "%c%zu", stem[0], n) > len;
}

struct name_num {
	size_t len, code, num, i;
};

static int cmp_name_num(const void *a, const void *b)
{
	const struct name_num *x = a, *y = b;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	if (x->code != y->code)
		return x->code < y->code ? -1 : 1;
	return (x->num > y->num) - (x->num < y->num);
}

#define SHORT_NAME 10	/* 52^11 > 2^64: longer ones never wrap */

/*
 * Of the names V[K..END) of one length LEN, sorted by code: each that
 * would share its code with the one before (the lowest number keeps it)
 * gets the next code no name of the length has, as a number that is
 * that code in letters (at least 10^(LEN-1), so "s<n>" does not fit).
 */
static void free_codes(struct name_num *v, size_t k, size_t end, size_t len,
		       size_t *num)
{
	size_t m = 1, low = 1, code = 0, u = k;

	for (size_t d = 0; d < len; d++)
		m *= 52;
	for (size_t d = 1; d < len; d++)
		low *= 10;
	for (size_t i = k + 1; i < end; i++) {
		if (v[i].code != v[i - 1].code)
			continue;
		while (u < end && v[u].code <= code) {	/* codes in use */
			code += v[u].code == code;
			u++;
		}
		num[v[i].i] = code < low ? code + m : code;
		code++;
	}
}

/*
 * The numbers NUM[] of N names of lengths LEN[] (their IDs, or places),
 * made such that no two names of one length get one placeholder: in
 * letters, a number is held modulo 52^LEN, and where two would come out
 * alike the one of the higher number takes a code none has.  The other
 * forms hold the whole number and differ.  0, or -1 for memory.
 */
static int unique_numbers(const char *stem, const size_t *len, size_t *num,
			  size_t n)
{
	struct name_num *v = malloc((n + 1) * sizeof(*v));
	size_t k = 0;

	if (!v)
		return -1;
	for (size_t i = 0; i < n; i++) {
		size_t m = 1;

		if (len[i] > SHORT_NAME || !letters_form(stem, len[i], num[i]))
			continue;
		for (size_t d = 0; d < len[i]; d++)
			m *= 52;
		v[k++] = (struct name_num){ len[i], num[i] % m, num[i], i };
	}
	if (k)
		qsort(v, k, sizeof(*v), cmp_name_num);
	for (size_t i = 0, start = 0; i < k; i++)
		if (i + 1 == k || v[i + 1].len != v[i].len) {
			free_codes(v, start, i + 1, v[i].len, num);
			start = i + 1;
		}
	free(v);
	return 0;
}

/* Snapshot names, by ID where IDs are numbers of their own, else by
 * place; bitmap names by place. */
static int plan_entry_names(struct plan *p, const struct q2e_image *img,
			    bool snapshots)
{
	size_t n = snapshots ? img->nsnapshots : img->nbitmaps;
	size_t *len = malloc((n + 1) * sizeof(*len));
	size_t *num = malloc((n + 1) * sizeof(*num));
	bool by_id = snapshots && ids_numbered(img);
	const char *stem = snapshots ? "snapshot" : "bitmap";
	int ret = len && num ? 0 : -1;

	for (size_t i = 0; ret == 0 && i < n; i++) {
		len[i] = snapshots ? img->snapshots[i].entry.name_size
				   : img->bitmaps[i].entry.name_size;
		num[i] = by_id ? (size_t)id_number(&img->snapshots[i]) : i;
	}
	if (ret == 0)
		ret = unique_numbers(stem, len, num, n);
	if (ret < 0)
		ret = q2e_error_set(p->err, Q2E_ENOMEM, "out of memory");
	for (size_t i = 0; ret == 0 && snapshots && i < n; i++) {
		const struct q2e_snapshot *s = &img->snapshots[i];

		ret = add(p, s->offset + QCOW2_SNAPSHOT_FIXED_SIZE +
				     s->entry.extra_data_size +
				     s->entry.id_str_size,
			  len[i], OWNER(Q2E_REGION_SNAPSHOT_TABLE), stem, num[i]);
	}
	for (size_t i = 0; ret == 0 && !snapshots && i < n; i++) {
		const struct q2e_bitmap *b = &img->bitmaps[i];

		ret = add(p, b->offset + QCOW2_BITMAP_ENTRY_FIXED_SIZE +
				     b->entry.extra_data_size,
			  len[i], OWNER(Q2E_REGION_BITMAP_DIRECTORY), stem, num[i]);
	}
	free(len);
	free(num);
	return ret;
}

static int plan_names(struct plan *p, const struct q2e_image *img)
{
	int ret = plan_entry_names(p, img, true);

	if (ret == 0)
		ret = plan_entry_names(p, img, false);
	if (ret == 0 && img->backing_file)
		ret = add(p, img->hdr.backing_file_offset,
			  img->hdr.backing_file_size,
			  OWNER(Q2E_REGION_BACKING_FILE), "backing-file", 0);
	/* The header region takes in the extensions when one of them is
	 * damaged (src/model/walk_header.c): the name is its secret too. */
	for (size_t i = 0; ret == 0 && i < img->nexts; i++)
		if (img->exts[i].magic == QCOW2_EXT_DATA_FILE)
			ret = add(p, img->exts[i].offset + 8,
				  img->exts[i].length,
				  OWNER(Q2E_REGION_EXTENSION) |
					  OWNER(Q2E_REGION_HEADER),
				  "data-file", 0);
	return ret;
}

static int plan_bitmap_data(struct plan *p, const struct q2e_image *img)
{
	int ret = 0;

	for (size_t i = 0; ret == 0 && i < img->nregions; i++)
		if (img->regions[i].kind == Q2E_REGION_BITMAP_DATA)
			ret = add(p, img->regions[i].offset,
				  img->regions[i].size,
				  OWNER(Q2E_REGION_BITMAP_DATA), NULL, 0);
	return ret;
}

static int push(struct spans *l, uint64_t lo, uint64_t hi,
		struct q2e_error *err)
{
	if (lo >= hi)
		return 0;
	if (q2e_grow(l->s, l->cap, l->n + 1) < 0)
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	l->s[l->n++] = (struct span){ lo, hi };
	return 0;
}

static int cmp_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sorts L and merges the ranges that touch: apart, in order. */
static void merge(struct spans *l)
{
	size_t k = 0;

	if (!l->n)
		return;
	qsort(l->s, l->n, sizeof(*l->s), cmp_span);
	for (size_t i = 1; i < l->n; i++) {
		if (l->s[i].lo <= l->s[k].hi) {
			if (l->s[i].hi > l->s[k].hi)
				l->s[k].hi = l->s[i].hi;
		} else {
			l->s[++k] = l->s[i];
		}
	}
	l->n = k + 1;
}

/* Pushes to OUT the bytes of [LO, HI) that no range of CUT (merged)
 * covers. */
static int subtract(const struct spans *cut, uint64_t lo, uint64_t hi,
		    struct spans *out, struct q2e_error *err)
{
	size_t i = q2e_first_above(cut->s, cut->n, hi, lo);
	int ret = 0;

	for (; ret == 0 && i < cut->n && cut->s[i].lo < hi && lo < hi; i++) {
		ret = push(out, lo, cut->s[i].lo, err);
		lo = cut->s[i].hi;
	}
	return ret == 0 ? push(out, lo, hi, err) : ret;
}

/*
 * The bytes of the image's regions that must stay as they are: each
 * region's, less the secrets its kind holds.  On a damaged image a table
 * may cover a snapshot name (a snapshot L1 over the snapshot table):
 * those bytes are also L1 entries, kept, so that the dump reads with the
 * image's tables.
 */
static int plan_kept(struct plan *p, const struct q2e_image *img,
		     struct spans *kept)
{
	struct spans own[Q2E_REGION_KIND_COUNT] = { 0 };
	unsigned kinds = 0;
	int ret = 0;

	for (size_t i = 0; ret == 0 && i < p->n; i++) {
		kinds |= p->s[i].owners;
		for (unsigned k = 0; ret == 0 && k < Q2E_REGION_KIND_COUNT; k++)
			if (p->s[i].owners & OWNER(k))
				ret = push(&own[k], p->s[i].offset,
					   end_of(p->s[i].offset,
						  p->s[i].length), p->err);
	}
	for (unsigned k = 0; k < Q2E_REGION_KIND_COUNT; k++)
		merge(&own[k]);
	for (size_t i = 0; ret == 0 && i < img->nregions; i++) {
		const struct q2e_region *g = &img->regions[i];
		uint64_t end = end_of(g->offset, g->size);

		if (kinds & OWNER(g->kind))
			ret = subtract(&own[g->kind], g->offset, end, kept,
				       p->err);
		else
			ret = push(kept, g->offset, end, p->err);
	}
	/* The extensions' end marker is no region, but a name over it would
	 * read as one more extension: the bytes the walk read after the
	 * last extension it found.  The extensions themselves are regions,
	 * kept above less their secrets (the data file's name). */
	if (ret == 0) {
		uint64_t from = img->hdr.header_length;

		for (size_t i = 0; i < img->nexts; i++) {
			const struct q2e_extension *x = &img->exts[i];
			uint64_t end = x->offset + 8 +
				       (((uint64_t)x->length + 7) & ~7ULL);

			if (end > from)
				from = end;
		}
		if (img->extensions_end > from)
			ret = push(kept, from, img->extensions_end, p->err);
	}
	for (unsigned k = 0; k < Q2E_REGION_KIND_COUNT; k++)
		free(own[k].s);
	merge(kept);
	return ret;
}

static int cmp_secret(const void *a, const void *b)
{
	const struct secret *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* By offset, for q2e_redaction_apply(); on the same bytes a placeholder
 * after zeros, so that which one wins does not depend on qsort. */
static int cmp_patch(const void *a, const void *b)
{
	const struct q2e_patch *x = a, *y = b;

	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	if (x->length != y->length)
		return x->length < y->length ? -1 : 1;
	return (x->bytes != NULL) - (y->bytes != NULL);
}

/* The patches: each secret less the bytes KEPT, in pieces. */
static int plan_patches(struct plan *p, const struct spans *kept)
{
	struct q2e_redaction *r = p->r;
	struct spans pieces = { 0 };
	int ret = 0;

	for (size_t i = 0; ret == 0 && i < p->n; i++) {
		const struct secret *s = &p->s[i];
		char *whole = NULL;

		pieces.n = 0;
		ret = subtract(kept, s->offset, end_of(s->offset, s->length),
			       &pieces, p->err);
		if (ret == 0 && s->stem && pieces.n &&
		    !(whole = malloc(s->length)))
			ret = q2e_error_set(p->err, Q2E_ENOMEM, "out of memory");
		if (whole)
			q2e_placeholder(whole, s->length, s->stem, s->n);
		if (ret == 0 && q2e_grow(r->patches, p->pcap,
					 r->npatches + pieces.n) < 0)
			ret = q2e_error_set(p->err, Q2E_ENOMEM, "out of memory");
		for (size_t j = 0; ret == 0 && j < pieces.n; j++) {
			uint64_t len = pieces.s[j].hi - pieces.s[j].lo;
			struct q2e_patch *x = &r->patches[r->npatches];

			*x = (struct q2e_patch){ pieces.s[j].lo, len, NULL };
			if (whole && !(x->bytes = malloc(len))) {
				ret = q2e_error_set(p->err, Q2E_ENOMEM,
						    "out of memory");
				break;
			}
			if (whole)
				memcpy(x->bytes, whole + (x->offset - s->offset),
				       len);
			if (len > r->max_length)
				r->max_length = len;
			r->npatches++;
		}
		free(whole);
	}
	free(pieces.s);
	return ret;
}

static int plan_all(struct plan *p, const struct q2e_image *img)
{
	struct spans kept = { 0 };
	int ret = plan_luks(p, img);

	if (ret == 0)
		ret = plan_names(p, img);
	if (ret == 0)
		ret = plan_bitmap_data(p, img);
	if (ret < 0 || !p->n)	/* none: p->s is NULL, which qsort refuses */
		return ret;
	qsort(p->s, p->n, sizeof(*p->s), cmp_secret);
	ret = plan_kept(p, img, &kept);
	if (ret == 0)
		ret = plan_patches(p, &kept);
	/* A secret's pieces may start before the previous secret's last. */
	if (ret == 0 && p->r->npatches)
		qsort(p->r->patches, p->r->npatches, sizeof(*p->r->patches),
		      cmp_patch);
	free(kept.s);
	return ret;
}

int q2e_redaction_plan(const struct q2e_image *img, struct q2e_redaction *r,
		       struct q2e_error *err)
{
	struct plan p = { .r = r, .err = err };
	const struct q2e_dump_meta *dm = q2e_image_dump_meta(img);
	/* A dump's image is the one its note names, not the dump. */
	const char *name = dm && dm->image_name ? dm->image_name : img->path;
	const char *base = strrchr(name, '/');
	int ret;

	memset(r, 0, sizeof(*r));
	ret = plan_all(&p, img);
	free(p.s);
	if (ret == 0) {
		/* The image's own name, for the note and the DWARF unit. */
		size_t len = strlen(base ? base + 1 : name);

		r->image_name = calloc(1, len + 1);
		if (!r->image_name)
			ret = q2e_error_set(err, Q2E_ENOMEM, "out of memory");
		else
			q2e_placeholder(r->image_name, len, "image", 0);
	}
	/* Patches of a damaged image may overlap: applied in order, the
	 * later ones win, and every one of them hides what it covers. */
	if (ret < 0)
		q2e_redaction_free(r);
	return ret;
}

/* The first patch that can reach OFF: one that starts max_length or
 * more before it ends before it. */
static size_t first_reaching(const struct q2e_redaction *r, uint64_t off)
{
	return off > r->max_length
		       ? q2e_first_above(r->patches, r->npatches, offset,
					 off - r->max_length)
		       : 0;
}

bool q2e_redaction_writes(const struct q2e_redaction *r, uint64_t off,
			  uint64_t len)
{
	if (!r || !r->npatches)
		return false;
	for (size_t i = first_reaching(r, off); i < r->npatches; i++) {
		const struct q2e_patch *x = &r->patches[i];

		if (x->offset >= off + len)
			break;
		if (x->bytes && x->offset + x->length > off)
			return true;
	}
	return false;
}

void q2e_redaction_apply(const struct q2e_redaction *r, uint64_t off,
			 uint8_t *buf, size_t len)
{
	if (!r || !r->npatches)
		return;
	for (size_t i = first_reaching(r, off); i < r->npatches; i++) {
		const struct q2e_patch *x = &r->patches[i];
		uint64_t from, to;

		if (x->offset >= off + len)
			break;
		if (x->offset + x->length <= off)
			continue;
		from = x->offset > off ? x->offset : off;
		to = x->offset + x->length < off + len ? x->offset + x->length
						       : off + len;
		if (x->bytes)
			memcpy(buf + (from - off), x->bytes + (from - x->offset),
			       to - from);
		else
			memset(buf + (from - off), 0, to - from);
	}
}

void q2e_redaction_free(struct q2e_redaction *r)
{
	for (size_t i = 0; i < r->npatches; i++)
		free(r->patches[i].bytes);
	free(r->patches);
	free(r->image_name);
	memset(r, 0, sizeof(*r));
}

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
 * of the same layout, with the same tables.
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
	char s[64];
	size_t k;

	snprintf(s, sizeof(s), "%s-%zu", stem, n);
	if (strlen(s) > len)
		snprintf(s, sizeof(s), "%c%zu", stem[0], n);
	k = strlen(s);
	if (k > len) {		/* the last digits: unique among the last */
		memcpy(out, s + k - len, len);
		return;
	}
	memcpy(out, s, k);
	memset(out + k, '_', len - k);
}

struct plan {
	struct q2e_redaction *r;
	size_t cap;
	struct q2e_error *err;
};

static int add(struct plan *p, uint64_t off, uint64_t len, const char *stem,
	       size_t n)
{
	struct q2e_patch *x;

	if (!len)
		return 0;
	if (q2e_grow(p->r->patches, p->cap, p->r->npatches + 1) < 0)
		return q2e_error_set(p->err, Q2E_ENOMEM, "out of memory");
	x = &p->r->patches[p->r->npatches];
	*x = (struct q2e_patch){ off, len, NULL };
	if (len > p->r->max_length)
		p->r->max_length = len;
	if (stem) {
		if (!(x->bytes = malloc(len)))
			return q2e_error_set(p->err, Q2E_ENOMEM,
					     "out of memory");
		q2e_placeholder(x->bytes, len, stem, n);
	}
	p->r->npatches++;
	return 0;
}

static int plan_luks(struct plan *p, const struct q2e_image *img)
{
	uint64_t at = img->crypto_ext.offset, len = img->crypto_ext.length;
	int ret;

	if (!img->has_crypto_ext || len < QCOW2_LUKS_HEADER_SIZE)
		return 0;
	ret = add(p, at + LUKS_MK_DIGEST, LUKS_MK_DIGEST_LEN, NULL, 0);
	if (ret == 0)
		ret = add(p, at + LUKS_MK_SALT, LUKS_SALT_LEN, NULL, 0);
	for (unsigned i = 0; ret == 0 && i < QCOW2_LUKS_SLOTS; i++)
		ret = add(p, at + LUKS_SLOTS_AT + i * LUKS_SLOT_SIZE +
				     LUKS_SLOT_SALT,
			  LUKS_SALT_LEN, NULL, 0);
	if (ret == 0)
		ret = add(p, at + QCOW2_LUKS_HEADER_SIZE,
			  len - QCOW2_LUKS_HEADER_SIZE, NULL, 0);
	return ret;
}

static int plan_names(struct plan *p, const struct q2e_image *img)
{
	int ret = 0;

	for (size_t n = 0; ret == 0 && n < img->nsnapshots; n++) {
		const struct q2e_snapshot *s = &img->snapshots[n];

		ret = add(p, s->offset + QCOW2_SNAPSHOT_FIXED_SIZE +
				     s->entry.extra_data_size +
				     s->entry.id_str_size,
			  s->entry.name_size, "snapshot", n);
	}
	for (size_t n = 0; ret == 0 && n < img->nbitmaps; n++) {
		const struct q2e_bitmap *b = &img->bitmaps[n];

		ret = add(p, b->offset + QCOW2_BITMAP_ENTRY_FIXED_SIZE +
				     b->entry.extra_data_size,
			  b->entry.name_size, "bitmap", n);
	}
	if (ret == 0 && img->backing_file)
		ret = add(p, img->hdr.backing_file_offset,
			  img->hdr.backing_file_size, "backing-file", 0);
	for (size_t i = 0; ret == 0 && i < img->nexts; i++)
		if (img->exts[i].magic == QCOW2_EXT_DATA_FILE)
			ret = add(p, img->exts[i].offset + 8,
				  img->exts[i].length, "data-file", 0);
	return ret;
}

static int plan_bitmap_data(struct plan *p, const struct q2e_image *img)
{
	int ret = 0;

	for (size_t i = 0; ret == 0 && i < img->nregions; i++)
		if (img->regions[i].kind == Q2E_REGION_BITMAP_DATA)
			ret = add(p, img->regions[i].offset,
				  img->regions[i].size, NULL, 0);
	return ret;
}

static int cmp_patch(const void *a, const void *b)
{
	const struct q2e_patch *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

int q2e_redaction_plan(const struct q2e_image *img, struct q2e_redaction *r,
		       struct q2e_error *err)
{
	struct plan p = { .r = r, .err = err };
	const char *base = strrchr(img->path, '/');
	int ret;

	memset(r, 0, sizeof(*r));
	ret = plan_luks(&p, img);
	if (ret == 0)
		ret = plan_names(&p, img);
	if (ret == 0)
		ret = plan_bitmap_data(&p, img);
	if (ret == 0) {
		/* The image's own name, for the note and the DWARF unit. */
		size_t len = strlen(base ? base + 1 : img->path);

		r->image_name = calloc(1, len + 1);
		if (!r->image_name)
			ret = q2e_error_set(err, Q2E_ENOMEM, "out of memory");
		else
			q2e_placeholder(r->image_name, len, "image", 0);
	}
	if (ret < 0) {
		q2e_redaction_free(r);
		return ret;
	}
	/* Patches of a damaged image may overlap: applied in order, the
	 * later ones win, and every one of them hides what it covers. */
	if (r->npatches)	/* none: r->patches is NULL, which qsort refuses */
		qsort(r->patches, r->npatches, sizeof(*r->patches), cmp_patch);
	return 0;
}

void q2e_redaction_apply(const struct q2e_redaction *r, uint64_t off,
			 uint8_t *buf, size_t len)
{
	size_t i;

	if (!r || !r->npatches)
		return;
	/* From the first patch that can reach OFF: one that starts
	 * max_length or more before it ends before it. */
	i = off > r->max_length
		    ? q2e_first_above(r->patches, r->npatches, offset,
				      off - r->max_length)
		    : 0;
	for (; i < r->npatches; i++) {
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

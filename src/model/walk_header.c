/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The walk's first part: the header, its extensions, the backing file
 * name and the LUKS area the crypto extension points to.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/array.h"
#include "walk.h"

int walk_read_header(struct walk *w)
{
	struct q2e_image *img = w->img;
	struct qcow2_header *h = &img->hdr;
	uint8_t buf[QCOW2_V3_HEADER_LENGTH + 8];
	const char *why = NULL;
	int64_t n;
	int ret;

	n = q2e_source_pread(img->src, buf, sizeof(buf), 0, "the header",
			     w->err);
	if (n < 0)
		return (int)n;
	if (n < 4 || qcow2_be32(buf) != QCOW2_MAGIC) {
		/* A dump whose header section was removed (objcopy -R) is
		 * a dump that lacks it, not a file of some other kind. */
		if (q2e_image_missing_from(img, 0) == 0)
			return q2e_error_set(w->err, Q2E_ECORRUPT,
					     "'%s': qcow2_header at 0x0 is missing: the dump was written with it, and its section was removed",
					     img->path);
		/* Nor is any other dump without the magic: its header
		 * section is empty (NOBITS), unnamed (a section name table
		 * that is not one), or edited. */
		if (q2e_image_dump_meta(img))
			return q2e_error_set(w->err, Q2E_ECORRUPT,
					     "'%s': a qcow2elf dump whose qcow2_header at 0x0 has no QFI\\xfb magic: its .qcow2.header section is empty, unnamed or damaged",
					     img->path);
		return q2e_error_set(w->err, Q2E_ENOTQCOW2,
				     "'%s': not a QCOW2 image (no QFI\\xfb magic at offset 0)",
				     img->path);
	}
	/* A version 3 header cut inside its last fields: QEMU reads the rest
	 * as zeros, as it reads anything past the end of the file. */
	if (n >= QCOW2_V3_HEADER_LENGTH && (size_t)n < sizeof(buf))
		memset(buf + n, 0, sizeof(buf) - (size_t)n);
	ret = qcow2_header_decode(buf, n >= QCOW2_V3_HEADER_LENGTH ? sizeof(buf)
				  : (size_t)n, h, &why);
	if (ret < 0)
		return q2e_error_set(w->err, ret,
				     "'%s': qcow2_header at 0x0: %s", img->path,
				     why);
	if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
	    h->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return q2e_error_set(w->err, Q2E_EUNSUPPORTED,
				     "'%s': qcow2_header at 0x14: cluster_bits %u is outside %u..%u",
				     img->path, h->cluster_bits,
				     QCOW2_MIN_CLUSTER_BITS,
				     QCOW2_MAX_CLUSTER_BITS);
	img->cluster_size = 1ULL << h->cluster_bits;
	if (h->header_length > img->cluster_size)
		return q2e_error_set(w->err, Q2E_ECORRUPT,
				     "'%s': qcow2_header at 0x64: header_length %u is larger than a cluster",
				     img->path, h->header_length);
	img->l2.cluster_bits = h->cluster_bits;
	img->l2.extended = h->incompatible_features & QCOW2_INCOMPAT_EXTL2;
	img->l2.has_data_file = h->incompatible_features &
				QCOW2_INCOMPAT_DATA_FILE;
	img->l2_entries = img->cluster_size / qcow2_l2_entry_size(&img->l2);
	img->refcount_bits = h->refcount_order <= 6 ? 1U << h->refcount_order
						    : 0;

	ret = walk_region(w, Q2E_REGION_HEADER, 0, h->header_length,
			  walk_image_owner, 0);
	if (ret < 0)
		return ret;

	uint64_t unknown = h->incompatible_features &
			   ~qcow2_known_features(QCOW2_FEAT_INCOMPATIBLE);
	if (unknown)
		ret = walk_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_UNSUPPORTED, 72, "qcow2_header",
				   "unknown incompatible feature bits 0x%" PRIx64
				   " are set: QEMU would refuse this image",
				   unknown);
	if (!ret && (uint64_t)n < h->header_length)
		ret = walk_problem(w, Q2E_SEV_ERROR, Q2E_PROBLEM_PAST_END, 0, "qcow2_header",
				   "the file ends inside the header (%" PRId64
				   " of %u bytes): the rest reads as zeros",
				   n, h->header_length);
	if (!ret && (h->incompatible_features & QCOW2_INCOMPAT_CORRUPT))
		ret = walk_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_STATE, 72, "qcow2_header",
				   "the image is marked corrupt");
	if (!ret && (h->incompatible_features & QCOW2_INCOMPAT_DIRTY))
		ret = walk_problem(w, Q2E_SEV_NOTE, Q2E_PROBLEM_STATE, 72, "qcow2_header",
				   "the image is dirty: its refcounts may be out of date");
	if (!ret && h->refcount_order > 6)
		ret = walk_problem(w, Q2E_SEV_ERROR, Q2E_PROBLEM_LIMIT, 96, "qcow2_header",
				   "refcount_order %u is above 6: refcounts not read",
				   h->refcount_order);
	if (!ret && h->crypt_method > QCOW2_CRYPT_LUKS)
		ret = walk_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_UNSUPPORTED, 32, "qcow2_header",
				   "unknown crypt_method %u", h->crypt_method);
	if (!ret && h->has_compression_type &&
	    h->compression_type > QCOW2_COMPRESSION_ZSTD)
		ret = walk_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_UNSUPPORTED, 104, "qcow2_header",
				   "unknown compression_type %u",
				   h->compression_type);
	return ret;
}

char *walk_dup_string(const uint8_t *p, size_t len)
{
	char *s = malloc(len + 1);

	if (s) {
		memcpy(s, p, len);
		s[len] = '\0';
	}
	return s;
}

static int decode_extension(struct walk *w, struct q2e_extension *e,
			    const char *sym)
{
	struct q2e_image *img = w->img;
	const char *why = NULL;
	char **str = NULL;
	int ret = 0;

	switch (e->magic) {
	case QCOW2_EXT_BACKING_FORMAT:
		str = &img->backing_format;
		break;
	case QCOW2_EXT_DATA_FILE:
		str = &img->data_file;
		break;
	case QCOW2_EXT_FEATURE_TABLE: {
		size_t n = e->avail / QCOW2_FEATURE_ENTRY_SIZE;

		free(img->features);
		img->features = calloc(n ? n : 1, sizeof(*img->features));
		if (!img->features)
			return q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
		img->nfeatures = 0;
		for (size_t i = 0; i < n; i++) {
			ret = qcow2_feature_decode(
				e->data + i * QCOW2_FEATURE_ENTRY_SIZE,
				QCOW2_FEATURE_ENTRY_SIZE,
				&img->features[img->nfeatures], &why);
			if (ret < 0) {
				ret = walk_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_INVALID,
						   e->offset + 8 + i * 48, sym,
						   "entry %zu: %s", i, why);
				if (ret < 0)
					return ret;
				continue;
			}
			img->nfeatures++;
		}
		if (e->length % QCOW2_FEATURE_ENTRY_SIZE)
			return walk_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_INVALID, e->offset, sym,
					    "length %u is not a multiple of 48",
					    e->length);
		return 0;
	}
	case QCOW2_EXT_BITMAPS:
		ret = qcow2_bitmaps_ext_decode(e->data, e->avail,
					       &img->bitmaps_ext, &why);
		if (ret == 0)
			img->has_bitmaps_ext = true;
		break;
	case QCOW2_EXT_CRYPTO:
		ret = qcow2_crypto_ext_decode(e->data, e->avail,
					      &img->crypto_ext, &why);
		if (ret == 0)
			img->has_crypto_ext = true;
		break;
	default:
		return 0;	/* unknown: kept with its magic and bytes */
	}
	if (ret < 0)
		return walk_problem(w, Q2E_SEV_ERROR, Q2E_PROBLEM_INVALID, e->offset, sym, "%s",
				    why);
	if (str) {
		free(*str);
		*str = walk_dup_string(e->data, e->avail);
		if (!*str)
			return q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
	}
	return 0;
}

/* Extensions lie between header_length and the backing file name. */
static int walk_extensions(struct walk *w, const uint8_t *c0, uint64_t len)
{
	struct q2e_image *img = w->img;
	const struct qcow2_header *h = &img->hdr;
	uint64_t end = len, pos = h->header_length;
	size_t cap = 0;
	int ret;

	img->extensions_end = pos;
	/* QEMU stops at the backing file name, which old version 2 images
	 * keep right after the header, with no end marker. */
	if (h->backing_file_offset && h->backing_file_offset < end) {
		end = h->backing_file_offset;
		if (pos >= end)
			return 0;
	}
	while (pos < end) {
		struct qcow2_ext ext;
		const char *why = NULL;

		ret = qcow2_ext_decode(c0 + pos, (size_t)(end - pos), &ext,
				       &why);
		img->extensions_end = pos + 8 < end ? pos + 8 : end;
		if (ret == 1)
			return 0;
		if (ret < 0) {
			img->extensions_damaged = true;
			/* The header region takes in the damaged area, so
			 * that a dump of it fails where the image does. */
			ret = walk_extend_region(w, Q2E_REGION_HEADER, end);
			if (ret < 0)
				return ret;
			return walk_problem(w, Q2E_SEV_ERROR, Q2E_PROBLEM_PAST_END, pos,
					    "qcow2_header",
					    "header extension at 0x%" PRIx64
					    ": %s", pos, why);
		}
		/* A 2 MiB cluster holds 262,144 empty extensions. */
		if (q2e_grow(img->exts, cap, img->nexts + 1) < 0)
			return q2e_error_set(w->err, Q2E_ENOMEM,
					     "out of memory");
		struct q2e_extension *e = &img->exts[img->nexts];

		*e = (struct q2e_extension){
			.magic = ext.magic,
			.offset = pos,
			.length = ext.length,
			.avail = ext.length,
			.data = malloc(ext.length ? ext.length : 1),
		};
		if (!e->data)
			return q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
		memcpy(e->data, ext.data, ext.length);
		img->nexts++;

		struct q2e_owner o = { Q2E_OWNER_IMAGE, 0, img->nexts - 1 };
		ret = walk_region(w, Q2E_REGION_EXTENSION, pos, ext.size, o,
				  ext.magic);
		if (ret < 0)
			return ret;

		char sym[64];

		q2e_structure_symbol(img, Q2E_REGION_EXTENSION, ext.magic, &o,
				     sym, sizeof(sym));
		ret = decode_extension(w, e, sym);
		if (ret < 0)
			return ret;
		pos += ext.size;
	}
	img->extensions_end = pos < end ? pos : end;
	if (end == h->backing_file_offset)
		return 0;	/* the name ends them, as far as QEMU cares */
	return walk_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_INVALID, pos, "qcow2_header",
			    "header extensions have no end marker before 0x%" PRIx64,
			    end);
}

struct ext_key {
	uint32_t magic;
	size_t index;
};

static int cmp_ext_key(const void *pa, const void *pb)
{
	const struct ext_key *a = pa, *b = pb;

	if (a->magic != b->magic)
		return a->magic < b->magic ? -1 : 1;
	return a->index < b->index ? -1 : a->index > b->index;
}

/* Numbers the repeats of each magic, in O(n log n). */
static int number_extensions(struct q2e_image *img)
{
	struct ext_key *k = malloc((img->nexts + 1) * sizeof(*k));

	if (!k)
		return Q2E_ENOMEM;
	for (size_t i = 0; i < img->nexts; i++)
		k[i] = (struct ext_key){ img->exts[i].magic, i };
	qsort(k, img->nexts, sizeof(*k), cmp_ext_key);
	for (size_t i = 0; i < img->nexts; i++)
		img->exts[k[i].index].nth =
			i && k[i - 1].magic == k[i].magic
				? img->exts[k[i - 1].index].nth + 1
				: 0;
	free(k);
	return 0;
}

int walk_read_extensions(struct walk *w, const uint8_t *c0, uint64_t len)
{
	struct q2e_image *img = w->img;
	int ret = walk_extensions(w, c0, len);

	if (ret >= 0 && number_extensions(img) < 0)
		ret = q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
	/* A known extension QEMU expects once, found again. */
	for (size_t i = 0; ret >= 0 && i < img->nexts; i++) {
		const struct q2e_extension *e = &img->exts[i];
		/* Named by the magic alone (no position): the problem is
		 * that the magic repeats. */
		struct q2e_owner o = { Q2E_OWNER_IMAGE, 0, UINT64_MAX };
		char sym[64];

		if (!e->nth || !qcow2_ext_name(e->magic))
			continue;
		q2e_structure_symbol(img, Q2E_REGION_EXTENSION, e->magic, &o,
				     sym, sizeof(sym));
		ret = walk_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_DUPLICATE, e->offset, sym,
				   "extension 0x%08x appears more than once",
				   e->magic);
	}
	return ret;
}

int walk_read_backing_name(struct walk *w, const uint8_t *c0, uint64_t len)
{
	struct q2e_image *img = w->img;
	const struct qcow2_header *h = &img->hdr;
	uint64_t off = h->backing_file_offset, size = h->backing_file_size;
	int ret;

	/* A name of 0 bytes is none, to QEMU too: no region, which would
	 * overlap whatever starts at its offset. */
	if (!off || !size)
		return 0;
	if (size > QCOW2_MAX_BACKING_NAME)
		return walk_problem(w, Q2E_SEV_ERROR, Q2E_PROBLEM_LIMIT, 16, "backing_file",
				    "backing_file_size %" PRIu64
				    " is above 1023: name not read", size);
	if (off > img->cluster_size || size > img->cluster_size - off)
		ret = walk_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_INVALID, off, "backing_file",
				   "backing file name at 0x%" PRIx64
				   " lies outside the header cluster", off);
	else
		ret = 0;
	if (ret < 0)
		return ret;
	ret = walk_region(w, Q2E_REGION_BACKING_FILE, off, size, walk_image_owner,
			  0);
	if (ret < 0)
		return ret;
	if (size <= len && off <= len - size) {	/* off + size may wrap */
		img->backing_file = walk_dup_string(c0 + off, size);
	} else {
		uint8_t *buf;
		uint64_t got;

		ret = walk_read_alloc(w, off, size, "the backing file name", &buf,
				      &got);
		if (ret < 0)
			return ret;
		img->backing_file = walk_dup_string(buf, got);
		free(buf);
		if (got < size)
			ret = walk_note_truncated(w, "backing_file", off, size);
	}
	if (!img->backing_file)
		return q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
	return ret;
}



int walk_read_crypto(struct walk *w)
{
	struct q2e_image *img = w->img;
	const struct qcow2_crypto_ext *x = &img->crypto_ext;
	uint8_t buf[QCOW2_LUKS_HEADER_SIZE];
	const char *why = NULL;
	int64_t n;
	int ret;

	if (img->hdr.crypt_method != QCOW2_CRYPT_LUKS) {
		if (img->has_crypto_ext)
			return walk_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_INVALID, 32, "ext_crypto",
					    "an encryption header extension, but crypt_method is %u",
					    img->hdr.crypt_method);
		return 0;
	}
	if (!img->has_crypto_ext)
		return walk_problem(w, Q2E_SEV_ERROR, Q2E_PROBLEM_INVALID, 32, "qcow2_header",
				    "crypt_method is LUKS, but there is no encryption header extension");
	if (x->length > Q2E_MAX_CRYPTO_AREA)
		return walk_problem(w, Q2E_SEV_ERROR, Q2E_PROBLEM_LIMIT, x->offset, "crypto_header",
				    "encryption area of %" PRIu64
				    " bytes is implausibly large: not read",
				    x->length);
	ret = walk_region(w, Q2E_REGION_CRYPTO_HEADER, x->offset, x->length,
			  walk_image_owner, 0);
	if (ret == 0)
		ret = walk_note_misaligned(w, "crypto_header", x->offset);
	if (ret == 0)
		ret = walk_note_truncated(w, "crypto_header", x->offset, x->length);
	if (ret < 0 || x->length < QCOW2_LUKS_HEADER_SIZE)
		return ret;
	n = q2e_source_pread(img->src, buf, sizeof(buf), x->offset,
			     "the LUKS header", w->err);
	if (n < 0)
		return (int)n;
	ret = qcow2_luks_header_decode(buf, (size_t)n, &img->luks, &why);
	if (ret < 0)
		return walk_problem(w, Q2E_SEV_ERROR, Q2E_PROBLEM_INVALID, x->offset, "crypto_header",
				    "%s", why);
	img->has_luks = true;
	return 0;
}

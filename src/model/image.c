/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The walk: reads an image's header and every table it reaches, records
 * each metadata region and what is wrong with it.  Every offset and size
 * read from the image is checked against overflow, the file and QEMU's own
 * limits before it is used to read or allocate.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walk.h"

#define MAX_DIRECTORY_BYTES (64ULL << 20)
#define MAX_BITMAP_TABLE_ENTRIES 0x8000000ULL
#define MAX_CRYPTO_AREA (1ULL << 30)

static const struct q2e_owner image_owner = { Q2E_OWNER_IMAGE, 0, 0 };

/* Range [off, off + len) ends inside the file, without overflow. */
static bool in_file(const struct q2e_image *img, uint64_t off, uint64_t len)
{
	return off <= img->file_size && len <= img->file_size - off;
}

/*
 * Reads up to LEN bytes at OFF into a new buffer of the bytes the file
 * holds there.  *GOT says how many that is.
 */
static int read_alloc(struct walk *w, uint64_t off, uint64_t len,
		      const char *what, uint8_t **out, uint64_t *got)
{
	struct q2e_image *img = w->img;
	uint8_t *buf;
	int64_t n;

	*out = NULL;
	*got = 0;
	/* Only what the file holds: a damaged size must not make us
	 * allocate a gigabyte for a table of a few bytes. */
	if (off >= img->file_size)
		len = 0;
	else if (len > img->file_size - off)
		len = img->file_size - off;
	/* Whole 8-byte entries: the part of one past the end reads as 0. */
	buf = calloc(1, (size_t)((len + 7) & ~7ULL) + 8);
	if (!buf)
		return q2e_error_set(w->err, Q2E_ENOMEM,
				     "out of memory reading %s of %" PRIu64
				     " bytes", what, len);
	n = q2e_source_pread(img->src, buf, (size_t)len, off, what, w->err);
	if (n < 0) {
		free(buf);
		return (int)n;
	}
	*out = buf;
	*got = (uint64_t)n;
	return 0;
}

/* A table of 8-byte big-endian entries, decoded to host order. */
static int read_entries(struct walk *w, uint64_t off, uint64_t count,
			const char *what, uint64_t **out, uint64_t *nread)
{
	uint8_t *buf;
	uint64_t got;
	int ret;

	ret = read_alloc(w, off, count * 8, what, &buf, &got);
	if (ret < 0)
		return ret;
	*nread = (got + 7) / 8;
	for (uint64_t i = 0; i < *nread; i++) {
		uint64_t v = qcow2_be64(buf + i * 8);

		memcpy(buf + i * 8, &v, 8);
	}
	*out = (uint64_t *)buf;
	return 0;
}

static int note_truncated(struct walk *w, const char *name, uint64_t off,
			  uint64_t len)
{
	struct q2e_image *img = w->img;

	if (in_file(img, off, len))
		return 0;
	return walk_problem(w, Q2E_SEV_ERROR, off, name,
			    "%s at 0x%" PRIx64 " (%" PRIu64
			    " bytes) runs past the end of the file (0x%" PRIx64
			    " bytes)", name, off, len, img->file_size);
}

static int note_misaligned(struct walk *w, const char *name, uint64_t off)
{
	if ((off & (w->img->cluster_size - 1)) == 0)
		return 0;
	return walk_problem(w, Q2E_SEV_WARNING, off, name,
			    "%s at 0x%" PRIx64 " is not cluster aligned",
			    name, off);
}

static int read_header(struct walk *w)
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
	if (n < 4 || qcow2_be32(buf) != QCOW2_MAGIC)
		return q2e_error_set(w->err, Q2E_ENOTQCOW2,
				     "'%s': not a QCOW2 image (no QFI\\xfb magic at offset 0)",
				     img->path);
	ret = qcow2_header_decode(buf, (size_t)n, h, &why);
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
			  image_owner, 0);
	if (ret < 0)
		return ret;

	uint64_t unknown = h->incompatible_features &
			   ~qcow2_known_features(QCOW2_FEAT_INCOMPATIBLE);
	if (unknown)
		ret = walk_problem(w, Q2E_SEV_WARNING, 72, "qcow2_header",
				   "unknown incompatible feature bits 0x%" PRIx64
				   " are set: QEMU would refuse this image",
				   unknown);
	if (!ret && (h->incompatible_features & QCOW2_INCOMPAT_CORRUPT))
		ret = walk_problem(w, Q2E_SEV_WARNING, 72, "qcow2_header",
				   "the image is marked corrupt");
	if (!ret && (h->incompatible_features & QCOW2_INCOMPAT_DIRTY))
		ret = walk_problem(w, Q2E_SEV_NOTE, 72, "qcow2_header",
				   "the image is dirty: its refcounts may be out of date");
	if (!ret && h->refcount_order > 6)
		ret = walk_problem(w, Q2E_SEV_ERROR, 96, "qcow2_header",
				   "refcount_order %u is above 6: refcounts not read",
				   h->refcount_order);
	if (!ret && h->crypt_method > QCOW2_CRYPT_LUKS)
		ret = walk_problem(w, Q2E_SEV_WARNING, 32, "qcow2_header",
				   "unknown crypt_method %u", h->crypt_method);
	if (!ret && h->has_compression_type &&
	    h->compression_type > QCOW2_COMPRESSION_ZSTD)
		ret = walk_problem(w, Q2E_SEV_WARNING, 104, "qcow2_header",
				   "unknown compression_type %u",
				   h->compression_type);
	return ret;
}

static char *dup_string(const uint8_t *p, size_t len)
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
				ret = walk_problem(w, Q2E_SEV_WARNING,
						   e->offset + 8 + i * 48, sym,
						   "entry %zu: %s", i, why);
				if (ret < 0)
					return ret;
				continue;
			}
			img->nfeatures++;
		}
		if (e->length % QCOW2_FEATURE_ENTRY_SIZE)
			return walk_problem(w, Q2E_SEV_WARNING, e->offset, sym,
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
		return walk_problem(w, Q2E_SEV_ERROR, e->offset, sym, "%s",
				    why);
	if (str) {
		free(*str);
		*str = dup_string(e->data, e->avail);
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
		if (ret == 1)
			return 0;
		if (ret < 0) {
			img->extensions_damaged = true;
			/* The header region takes in the damaged area, so
			 * that a dump of it fails where the image does. */
			ret = walk_extend_region(w, Q2E_REGION_HEADER, end);
			if (ret < 0)
				return ret;
			return walk_problem(w, Q2E_SEV_ERROR, pos,
					    "qcow2_header",
					    "header extension at 0x%" PRIx64
					    ": %s", pos, why);
		}
		if (img->nexts == cap) {
			/* A 2 MiB cluster holds 262,144 empty extensions. */
			size_t ncap = cap ? cap * 2 : 8;
			void *n = realloc(img->exts, ncap * sizeof(*img->exts));

			if (!n)
				return q2e_error_set(w->err, Q2E_ENOMEM,
						     "out of memory");
			img->exts = n;
			cap = ncap;
		}
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
		const char *name = qcow2_ext_name(ext.magic);
		if (name)
			snprintf(sym, sizeof(sym), "ext_%s", name);
		else
			snprintf(sym, sizeof(sym), "ext_unknown_%08x",
				 ext.magic);
		for (char *p = sym; *p; p++)
			if (*p == '-')
				*p = '_';
		ret = decode_extension(w, e, sym);
		if (ret < 0)
			return ret;
		pos += ext.size;
	}
	if (end == h->backing_file_offset)
		return 0;	/* the name ends them, as far as QEMU cares */
	return walk_problem(w, Q2E_SEV_WARNING, pos, "qcow2_header",
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

static int read_extensions(struct walk *w, const uint8_t *c0, uint64_t len)
{
	struct q2e_image *img = w->img;
	int ret = walk_extensions(w, c0, len);

	if (ret >= 0 && number_extensions(img) < 0)
		ret = q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
	/* A known extension QEMU expects once, found again. */
	for (size_t i = 0; ret >= 0 && i < img->nexts; i++) {
		const struct q2e_extension *e = &img->exts[i];
		const char *name = qcow2_ext_name(e->magic);
		char sym[64];

		if (!e->nth || !name)
			continue;
		snprintf(sym, sizeof(sym), "ext_%s", name);
		for (char *p = sym; *p; p++)
			if (*p == '-')
				*p = '_';
		ret = walk_problem(w, Q2E_SEV_WARNING, e->offset, sym,
				   "extension 0x%08x appears more than once",
				   e->magic);
	}
	return ret;
}

static int read_backing_name(struct walk *w, const uint8_t *c0, uint64_t len)
{
	struct q2e_image *img = w->img;
	const struct qcow2_header *h = &img->hdr;
	uint64_t off = h->backing_file_offset, size = h->backing_file_size;
	int ret;

	if (!off)
		return 0;
	if (size > QCOW2_MAX_BACKING_NAME)
		return walk_problem(w, Q2E_SEV_ERROR, 16, "backing_file",
				    "backing_file_size %" PRIu64
				    " is above 1023: name not read", size);
	if (off > img->cluster_size || size > img->cluster_size - off)
		ret = walk_problem(w, Q2E_SEV_WARNING, off, "backing_file",
				   "backing file name at 0x%" PRIx64
				   " lies outside the header cluster", off);
	else
		ret = 0;
	if (ret < 0)
		return ret;
	ret = walk_region(w, Q2E_REGION_BACKING_FILE, off, size, image_owner,
			  0);
	if (ret < 0)
		return ret;
	if (size <= len && off <= len - size) {	/* off + size may wrap */
		img->backing_file = dup_string(c0 + off, size);
	} else {
		uint8_t *buf;
		uint64_t got;

		ret = read_alloc(w, off, size, "the backing file name", &buf,
				 &got);
		if (ret < 0)
			return ret;
		img->backing_file = dup_string(buf, got);
		free(buf);
		if (got < size)
			ret = note_truncated(w, "backing_file", off, size);
	}
	if (!img->backing_file)
		return q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
	return ret;
}

/* The L2 tables an L1 table points to, owned by OWNER. */
static int add_l2_tables(struct walk *w, const uint64_t *l1, uint64_t n,
			 uint64_t l1_off, struct q2e_owner owner,
			 const char *l1_name)
{
	struct q2e_image *img = w->img;
	char name[96];
	int ret;

	for (uint64_t i = 0; i < n; i++) {
		struct qcow2_l1_entry e;

		qcow2_l1_entry_decode(l1[i], &e);
		if (e.reserved) {
			ret = walk_problem(w, Q2E_SEV_WARNING, l1_off + i * 8,
					   l1_name,
					   "%s[%" PRIu64 "] = 0x%016" PRIx64
					   " has reserved bits 0x%" PRIx64
					   " set", l1_name, i, e.raw,
					   e.reserved);
			if (ret < 0)
				return ret;
		}
		if (!e.l2_offset)
			continue;
		if (owner.kind == Q2E_OWNER_SNAPSHOT)
			snprintf(name, sizeof(name),
				 "snapshot_%u_l2_table_%" PRIu64, owner.id, i);
		else
			snprintf(name, sizeof(name), "l2_table_%" PRIu64, i);
		owner.index = i;
		ret = walk_region(w, Q2E_REGION_L2, e.l2_offset,
				  img->cluster_size, owner, 0);
		if (ret == 0)
			ret = note_misaligned(w, name, e.l2_offset);
		if (ret == 0)
			ret = note_truncated(w, name, e.l2_offset,
					     img->cluster_size);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Checks an L1 table's place and size; false if it cannot be read. */
static int check_l1(struct walk *w, const char *name, uint64_t off,
		    uint64_t entries, uint64_t field_off, bool *readable)
{
	struct q2e_image *img = w->img;
	int ret;

	*readable = false;
	if (entries * 8 > QCOW2_MAX_L1_BYTES)
		return walk_problem(w, Q2E_SEV_ERROR, field_off, name,
				    "%s has %" PRIu64
				    " entries, above QEMU's 32 MiB limit: not read",
				    name, entries);
	if (!entries)
		return 0;
	if (!off)
		return walk_problem(w, Q2E_SEV_ERROR, field_off, name,
				    "%s has %" PRIu64 " entries at offset 0",
				    name, entries);
	ret = note_misaligned(w, name, off);
	if (ret == 0)
		ret = note_truncated(w, name, off, entries * 8);
	*readable = ret == 0 && off < img->file_size;
	return ret;
}

static int read_active_l1(struct walk *w)
{
	struct q2e_image *img = w->img;
	const struct qcow2_header *h = &img->hdr;
	struct q2e_owner active = { Q2E_OWNER_ACTIVE, 0, 0 };
	uint64_t need, per_l1 = img->cluster_size * img->l2_entries;
	bool readable;
	int ret;

	ret = check_l1(w, "l1_table", h->l1_table_offset, h->l1_size, 36,
		       &readable);
	if (ret < 0)
		return ret;
	need = h->size / per_l1 + (h->size % per_l1 != 0);
	if (h->l1_size < need) {
		ret = walk_problem(w, Q2E_SEV_WARNING, 36, "l1_table",
				   "l1_size %u is too small for the virtual size (%" PRIu64
				   " entries needed)", h->l1_size, need);
		if (ret < 0)
			return ret;
	}
	if (h->l1_size && h->l1_table_offset &&
	    h->l1_size * 8ULL <= QCOW2_MAX_L1_BYTES) {
		ret = walk_region(w, Q2E_REGION_L1, h->l1_table_offset,
				  h->l1_size * 8ULL, active, 0);
		if (ret < 0)
			return ret;
	}
	if (!readable)
		return 0;
	ret = read_entries(w, h->l1_table_offset, h->l1_size, "l1_table",
			   &img->l1, &img->nl1);
	if (ret < 0)
		return ret;
	return add_l2_tables(w, img->l1, img->nl1, h->l1_table_offset, active,
			     "l1_table");
}

static int read_refcounts(struct walk *w)
{
	struct q2e_image *img = w->img;
	const struct qcow2_header *h = &img->hdr;
	uint64_t off = h->refcount_table_offset;
	uint64_t bytes = h->refcount_table_clusters * img->cluster_size;
	char name[64];
	int ret;

	if (!h->refcount_table_clusters)
		return walk_problem(w, Q2E_SEV_ERROR, 56, "refcount_table",
				    "refcount_table_clusters is 0");
	if (bytes > QCOW2_MAX_REFTABLE_BYTES)
		return walk_problem(w, Q2E_SEV_ERROR, 56, "refcount_table",
				    "refcount table of %" PRIu64
				    " bytes is above QEMU's 8 MiB limit: not read",
				    bytes);
	ret = walk_region(w, Q2E_REGION_REFCOUNT_TABLE, off, bytes,
			  image_owner, 0);
	if (ret == 0)
		ret = note_misaligned(w, "refcount_table", off);
	if (ret == 0)
		ret = note_truncated(w, "refcount_table", off, bytes);
	if (ret < 0 || off >= img->file_size)
		return ret;
	ret = read_entries(w, off, bytes / 8, "refcount_table",
			   &img->reftable, &img->nreftable);
	if (ret < 0)
		return ret;
	if (!img->refcount_bits)
		return 0;
	for (uint64_t i = 0; i < img->nreftable; i++) {
		uint64_t e = img->reftable[i];
		uint64_t block = e & ~QCOW2_REFTABLE_RESERVED_MASK;

		snprintf(name, sizeof(name), "refcount_block_%" PRIu64, i);
		if (e & QCOW2_REFTABLE_RESERVED_MASK) {
			ret = walk_problem(w, Q2E_SEV_WARNING, off + i * 8,
					   "refcount_table",
					   "refcount_table[%" PRIu64
					   "] = 0x%016" PRIx64
					   " has reserved bits set", i, e);
			if (ret < 0)
				return ret;
		}
		if (!block)
			continue;
		struct q2e_owner o = { Q2E_OWNER_IMAGE, 0, i };
		ret = walk_region(w, Q2E_REGION_REFCOUNT_BLOCK, block,
				  img->cluster_size, o, 0);
		if (ret == 0)
			ret = note_misaligned(w, name, block);
		if (ret == 0)
			ret = note_truncated(w, name, block, img->cluster_size);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Makes sure BUF holds [0, need) of the table at OFF; grows by doubling. */
static int table_window(struct walk *w, uint64_t off, uint64_t need,
			uint64_t limit, const char *what, uint8_t **buf,
			uint64_t *have, bool *eof)
{
	uint64_t want = *have ? *have : 4096;
	uint8_t *n;
	int64_t got;

	if (need <= *have)
		return 0;
	while (want < need)
		want *= 2;
	if (want > limit)
		want = limit;
	if (need > want) {
		*eof = true;	/* QEMU: "Snapshot table is too big" */
		w->img->snapshot_table_too_big = true;
		return 0;
	}
	n = realloc(*buf, (size_t)want);
	if (!n)
		return q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
	*buf = n;
	/* Nothing to read where the offset would wrap past 2^64. */
	got = off > UINT64_MAX - want
		      ? 0
		      : q2e_source_pread(w->img->src, n + *have,
					 (size_t)(want - *have), off + *have,
					 what, w->err);
	if (got < 0)
		return (int)got;
	/* Past the end of the file QEMU reads zeros: so does the window
	 * (note_truncated() reports the table as running past it). */
	memset(n + *have + got, 0, (size_t)(want - *have - (uint64_t)got));
	*have = want;
	*eof = false;
	return 0;
}

static int read_snapshot_tables(struct walk *w, size_t n)
{
	struct q2e_image *img = w->img;
	struct q2e_snapshot *s = &img->snapshots[n];
	struct q2e_owner o = { Q2E_OWNER_SNAPSHOT, (uint32_t)n, 0 };
	uint64_t *l1, count;
	char name[64];
	bool readable;
	int ret;

	snprintf(name, sizeof(name), "snapshot_%zu_l1_table", n);
	ret = check_l1(w, name, s->entry.l1_table_offset, s->entry.l1_size,
		       s->offset + 8, &readable);
	if (ret < 0)
		return ret;
	if (s->entry.l1_size && s->entry.l1_table_offset &&
	    s->entry.l1_size * 8ULL <= QCOW2_MAX_L1_BYTES) {
		ret = walk_region(w, Q2E_REGION_L1, s->entry.l1_table_offset,
				  s->entry.l1_size * 8ULL, o, 0);
		if (ret < 0)
			return ret;
	}
	if (!readable)
		return 0;
	ret = read_entries(w, s->entry.l1_table_offset, s->entry.l1_size, name,
			   &l1, &count);
	if (ret < 0)
		return ret;
	ret = add_l2_tables(w, l1, count, s->entry.l1_table_offset, o, name);
	free(l1);
	return ret;
}

static int read_snapshots(struct walk *w)
{
	struct q2e_image *img = w->img;
	const struct qcow2_header *h = &img->hdr;
	uint64_t off = h->snapshots_offset, pos = 0, have = 0, used = 0;
	bool damaged = false;
	uint8_t *buf = NULL;
	int ret = 0;

	if (!h->nb_snapshots)
		return 0;
	if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return walk_problem(w, Q2E_SEV_ERROR, 60, "snapshot_table",
				    "nb_snapshots %u is above QEMU's limit of 65536: not read",
				    h->nb_snapshots);
	ret = note_misaligned(w, "snapshot_table", off);
	if (ret < 0)
		return ret;
	if (off >= img->file_size) {
		ret = walk_problem(w, Q2E_SEV_ERROR, off, "snapshot_table",
				   "snapshot_table at 0x%" PRIx64
				   " lies past the end of the file: its entries read as zeros, as in QEMU",
				   off);
		if (ret < 0)
			return ret;
	}
	img->snapshots = calloc(h->nb_snapshots, sizeof(*img->snapshots));
	if (!img->snapshots)
		return q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");

	for (uint32_t i = 0; i < h->nb_snapshots; i++) {
		struct q2e_snapshot *s = &img->snapshots[i];
		const char *why = NULL;
		char name[32];
		bool eof = false;

		snprintf(name, sizeof(name), "snapshot_%u", i);
		/* Fixed part, then the variable part it announces. */
		ret = table_window(w, off, pos + QCOW2_SNAPSHOT_FIXED_SIZE,
				   QCOW2_MAX_SNAPSHOT_TABLE_BYTES,
				   "the snapshot table", &buf, &have, &eof);
		if (ret == 0 && !eof &&
		    qcow2_be32(buf + pos + 36) > QCOW2_MAX_SNAPSHOT_EXTRA &&
		    img->snapshot_extra_over_limit < 0)
			img->snapshot_extra_over_limit = i;
		if (ret == 0 && !eof) {
			uint64_t var = qcow2_be32(buf + pos + 36) +
				       (uint64_t)qcow2_be16(buf + pos + 12) +
				       qcow2_be16(buf + pos + 14);
			ret = table_window(w, off,
					   pos + QCOW2_SNAPSHOT_FIXED_SIZE + var,
					   QCOW2_MAX_SNAPSHOT_TABLE_BYTES,
					   "the snapshot table", &buf, &have,
					   &eof);
		}
		if (ret < 0)
			break;
		/* The file may end inside the previous entry's padding. */
		ret = qcow2_snapshot_decode(buf + pos,
					    have > pos ? (size_t)(have - pos) : 0,
					    &s->entry, &why);
		if (ret < 0) {
			/* Keep the entries before it; the rest is unreadable. */
			ret = walk_problem(w, Q2E_SEV_ERROR, off + pos, name,
					   "%s at 0x%" PRIx64
					   ": %s: %u of %u snapshots read",
					   name, off + pos, why, i,
					   h->nb_snapshots);
			damaged = true;
			break;
		}
		s->offset = off + pos;
		s->id = dup_string((const uint8_t *)s->entry.id_str,
				   s->entry.id_str_size);
		s->name = dup_string((const uint8_t *)s->entry.name,
				     s->entry.name_size);
		s->extra = malloc(s->entry.extra_data_size + 1);
		if (!s->id || !s->name || !s->extra) {
			free(s->id);	/* not counted yet: close won't */
			free(s->name);
			free(s->extra);
			ret = q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
			break;
		}
		memcpy(s->extra, s->entry.extra, s->entry.extra_data_size);
		s->entry.extra = NULL;
		s->entry.id_str = s->entry.name = NULL;
		img->nsnapshots++;
		/* QEMU's snapshots_size ends with the last entry's name: the
		 * padding after it need not be in the file. */
		used = pos + QCOW2_SNAPSHOT_FIXED_SIZE +
		       s->entry.extra_data_size + s->entry.id_str_size +
		       s->entry.name_size;
		pos += s->entry.entry_size;
		if (s->entry.extra_data_size > QCOW2_MAX_SNAPSHOT_EXTRA)
			ret = walk_problem(w, Q2E_SEV_WARNING, s->offset, name,
					   "extra_data_size %u is above QEMU's limit of 1024",
					   s->entry.extra_data_size);
		else if (h->version >= 3 && s->entry.extra_data_size < 16)
			ret = walk_problem(w, Q2E_SEV_WARNING, s->offset, name,
					   "extra_data_size %u is below the 16 bytes version 3 requires",
					   s->entry.extra_data_size);
		if (ret < 0)
			break;
	}
	free(buf);
	if (ret < 0)
		return ret;
	img->snapshot_table_size = used;
	/* A damaged table covers all the bytes that were read, so that a
	 * dump of it fails where the image does. */
	uint64_t region = damaged && have > used ? have : used;
	if (region)
		ret = walk_region(w, Q2E_REGION_SNAPSHOT_TABLE, off, region,
				  image_owner, 0);
	if (ret == 0)
		ret = note_truncated(w, "snapshot_table", off, region);
	for (size_t i = 0; ret == 0 && i < img->nsnapshots; i++)
		ret = read_snapshot_tables(w, i);
	return ret;
}

static int read_bitmap_table(struct walk *w, size_t n)
{
	struct q2e_image *img = w->img;
	struct q2e_bitmap *b = &img->bitmaps[n];
	uint64_t off = b->entry.bitmap_table_offset;
	uint64_t count = b->entry.bitmap_table_size;
	char name[64];
	int ret;

	snprintf(name, sizeof(name), "bitmap_%zu_table", n);
	if (count > MAX_BITMAP_TABLE_ENTRIES)
		return walk_problem(w, Q2E_SEV_ERROR, b->offset + 8, name,
				    "bitmap_table_size %" PRIu64
				    " is above QEMU's limit: not read", count);
	if (!count)
		return 0;
	struct q2e_owner o = { Q2E_OWNER_BITMAP, (uint32_t)n, 0 };
	ret = walk_region(w, Q2E_REGION_BITMAP_TABLE, off, count * 8, o, 0);
	if (ret == 0)
		ret = note_misaligned(w, name, off);
	if (ret == 0)
		ret = note_truncated(w, name, off, count * 8);
	if (ret < 0 || off >= img->file_size)
		return ret;
	ret = read_entries(w, off, count, name, &b->table, &b->ntable);
	if (ret < 0)
		return ret;
	for (uint64_t j = 0; j < b->ntable; j++) {
		struct qcow2_bitmap_table_entry e;
		char dname[64];

		qcow2_bitmap_table_entry_decode(b->table[j], &e);
		if (e.reserved) {
			ret = walk_problem(w, Q2E_SEV_WARNING, off + j * 8, name,
					   "%s[%" PRIu64 "] = 0x%016" PRIx64
					   " has reserved bits set", name, j,
					   e.raw);
			if (ret < 0)
				return ret;
		}
		if (e.kind != QCOW2_BITMAP_SERIALIZED)
			continue;
		snprintf(dname, sizeof(dname), "bitmap_%zu_data_%" PRIu64, n, j);
		o.index = j;
		ret = walk_region(w, Q2E_REGION_BITMAP_DATA, e.offset,
				  img->cluster_size, o, 0);
		if (ret == 0)
			ret = note_misaligned(w, dname, e.offset);
		if (ret == 0)
			ret = note_truncated(w, dname, e.offset,
					     img->cluster_size);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int check_bitmap_entry(struct walk *w, size_t n)
{
	struct q2e_image *img = w->img;
	const struct q2e_bitmap *b = &img->bitmaps[n];
	const struct qcow2_bitmap_entry *e = &b->entry;
	char name[32];
	int ret = 0;

	snprintf(name, sizeof(name), "bitmap_%zu", n);
	if (e->type != QCOW2_BITMAP_TYPE_DIRTY)
		ret = walk_problem(w, Q2E_SEV_WARNING, b->offset + 16, name,
				   "type %u is not 1 (dirty tracking)", e->type);
	if (!ret && (e->granularity_bits < 9 || e->granularity_bits > 31))
		ret = walk_problem(w, Q2E_SEV_WARNING, b->offset + 17, name,
				   "granularity_bits %u is outside 9..31",
				   e->granularity_bits);
	if (!ret && (e->name_size == 0 || e->name_size > QCOW2_MAX_BITMAP_NAME))
		ret = walk_problem(w, Q2E_SEV_WARNING, b->offset + 18, name,
				   "name_size %u is outside 1..1023",
				   e->name_size);
	if (!ret && (e->flags & ~7U))
		ret = walk_problem(w, Q2E_SEV_WARNING, b->offset + 12, name,
				   "reserved flags 0x%x are set", e->flags & ~7U);
	if (!ret && e->granularity_bits >= 9 && e->granularity_bits <= 31) {
		uint64_t bytes = qcow2_bitmap_data_bytes(img->hdr.size,
							 e->granularity_bits);
		uint64_t need = bytes / img->cluster_size +
				(bytes % img->cluster_size != 0);

		if (need != e->bitmap_table_size)
			ret = walk_problem(w, Q2E_SEV_WARNING, b->offset + 8,
					   name,
					   "bitmap_table_size %u, but the virtual size needs %" PRIu64,
					   e->bitmap_table_size, need);
	}
	return ret;
}

static int read_bitmaps(struct walk *w)
{
	struct q2e_image *img = w->img;
	const struct qcow2_bitmaps_ext *x = &img->bitmaps_ext;
	uint64_t off = x->bitmap_directory_offset;
	uint64_t size = x->bitmap_directory_size, pos = 0;
	uint8_t *dir = NULL;
	uint64_t got;
	int ret;

	if (!img->has_bitmaps_ext)
		return 0;
	if (!(img->hdr.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS)) {
		ret = walk_problem(w, Q2E_SEV_NOTE, 88, "ext_bitmaps",
				   "the bitmaps autoclear bit is clear: QEMU ignores the bitmaps");
		if (ret < 0)
			return ret;
	}
	if (x->nb_bitmaps == 0 || x->nb_bitmaps > QCOW2_MAX_BITMAPS)
		return walk_problem(w, Q2E_SEV_ERROR, 0, "ext_bitmaps",
				    "nb_bitmaps %u is outside 1..65535: bitmaps not read",
				    x->nb_bitmaps);
	if (size > MAX_DIRECTORY_BYTES)
		return walk_problem(w, Q2E_SEV_ERROR, off, "bitmap_directory",
				    "bitmap directory of %" PRIu64
				    " bytes is above QEMU's 64 MiB limit: not read",
				    size);
	ret = walk_region(w, Q2E_REGION_BITMAP_DIRECTORY, off, size,
			  image_owner, 0);
	if (ret == 0)
		ret = note_misaligned(w, "bitmap_directory", off);
	if (ret == 0)
		ret = note_truncated(w, "bitmap_directory", off, size);
	if (ret < 0 || off >= img->file_size)
		return ret;
	ret = read_alloc(w, off, size, "the bitmap directory", &dir, &got);
	if (ret < 0)
		return ret;
	img->bitmaps = calloc(x->nb_bitmaps, sizeof(*img->bitmaps));
	if (!img->bitmaps) {
		free(dir);
		return q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
	}
	for (uint32_t i = 0; i < x->nb_bitmaps; i++) {
		struct q2e_bitmap *b = &img->bitmaps[i];
		const char *why = NULL;

		ret = qcow2_bitmap_entry_decode(dir + pos, (size_t)(got - pos),
						&b->entry, &why);
		if (ret < 0) {
			ret = walk_problem(w, Q2E_SEV_ERROR, off + pos,
					   "bitmap_directory",
					   "entry %u at 0x%" PRIx64 ": %s", i,
					   off + pos, why);
			break;
		}
		b->offset = off + pos;
		b->name = dup_string((const uint8_t *)b->entry.name,
				     b->entry.name_size);
		b->extra = malloc(b->entry.extra_data_size + 1);
		if (!b->name || !b->extra) {
			free(b->name);	/* not counted yet: close won't */
			free(b->extra);
			ret = q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
			break;
		}
		memcpy(b->extra, b->entry.extra, b->entry.extra_data_size);
		b->entry.extra = NULL;
		b->entry.name = NULL;
		img->nbitmaps++;
		pos += b->entry.entry_size;
		ret = check_bitmap_entry(w, i);
		if (ret == 0)
			ret = read_bitmap_table(w, i);
		if (ret < 0)
			break;
	}
	free(dir);
	if (ret == 0 && pos != size)
		ret = walk_problem(w, Q2E_SEV_WARNING, off, "bitmap_directory",
				   "entries take %" PRIu64
				   " bytes, bitmap_directory_size says %" PRIu64,
				   pos, size);
	return ret;
}

static int read_crypto(struct walk *w)
{
	struct q2e_image *img = w->img;
	const struct qcow2_crypto_ext *x = &img->crypto_ext;
	uint8_t buf[QCOW2_LUKS_HEADER_SIZE];
	const char *why = NULL;
	int64_t n;
	int ret;

	if (img->hdr.crypt_method != QCOW2_CRYPT_LUKS) {
		if (img->has_crypto_ext)
			return walk_problem(w, Q2E_SEV_WARNING, 32, "ext_crypto",
					    "an encryption header extension, but crypt_method is %u",
					    img->hdr.crypt_method);
		return 0;
	}
	if (!img->has_crypto_ext)
		return walk_problem(w, Q2E_SEV_ERROR, 32, "qcow2_header",
				    "crypt_method is LUKS, but there is no encryption header extension");
	if (x->length > MAX_CRYPTO_AREA)
		return walk_problem(w, Q2E_SEV_ERROR, x->offset, "crypto_header",
				    "encryption area of %" PRIu64
				    " bytes is implausibly large: not read",
				    x->length);
	ret = walk_region(w, Q2E_REGION_CRYPTO_HEADER, x->offset, x->length,
			  image_owner, 0);
	if (ret == 0)
		ret = note_misaligned(w, "crypto_header", x->offset);
	if (ret == 0)
		ret = note_truncated(w, "crypto_header", x->offset, x->length);
	if (ret < 0 || x->length < QCOW2_LUKS_HEADER_SIZE)
		return ret;
	n = q2e_source_pread(img->src, buf, sizeof(buf), x->offset,
			     "the LUKS header", w->err);
	if (n < 0)
		return (int)n;
	ret = qcow2_luks_header_decode(buf, (size_t)n, &img->luks, &why);
	if (ret < 0)
		return walk_problem(w, Q2E_SEV_ERROR, x->offset, "crypto_header",
				    "%s", why);
	img->has_luks = true;
	return 0;
}

static int walk_image(struct walk *w)
{
	struct q2e_image *img = w->img;
	uint8_t *c0;
	uint64_t got;
	int ret;

	ret = read_header(w);
	if (ret < 0)
		return ret;
	ret = read_alloc(w, 0, img->cluster_size, "the header cluster", &c0,
			 &got);
	if (ret < 0)
		return ret;
	if (got < img->hdr.header_length) {
		free(c0);
		return q2e_error_set(w->err, Q2E_ECORRUPT,
				     "'%s': qcow2_header at 0x0: the file ends inside the header (%" PRIu64
				     " of %u bytes)", img->path, got,
				     img->hdr.header_length);
	}
	/* A file that ends inside its header cluster reads on as zeros, as
	 * in QEMU: the extensions are read over the whole cluster. */
	if (got < img->cluster_size) {
		uint8_t *n = realloc(c0, (size_t)img->cluster_size);

		if (!n) {
			free(c0);
			return q2e_error_set(w->err, Q2E_ENOMEM,
					     "out of memory");
		}
		memset(n + got, 0, (size_t)(img->cluster_size - got));
		c0 = n;
		got = img->cluster_size;
	}
	/* Version 2 has extensions too, from offset 72 (QEMU writes the
	 * backing format there). */
	ret = read_extensions(w, c0, got);
	if (ret == 0)
		ret = read_backing_name(w, c0, got);
	free(c0);
	if (ret == 0)
		ret = read_active_l1(w);
	if (ret == 0 && img->refcount_bits)
		ret = read_refcounts(w);
	if (ret == 0)
		ret = read_snapshots(w);
	if (ret == 0)
		ret = read_bitmaps(w);
	if (ret == 0)
		ret = read_crypto(w);
	if (ret == 0)
		ret = walk_finish_regions(w);
	return ret;
}

/* Builds the model of what SRC reads; takes SRC over. */
static int open_source(const char *path, struct q2e_source *src,
		       struct q2e_image **out, struct q2e_error *err)
{
	struct q2e_image *img;
	struct walk w = { 0 };
	int ret;

	img = calloc(1, sizeof(*img));
	if (!img || !(img->path = strdup(path))) {
		free(img);
		q2e_source_close(src);
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	}
	img->src = src;
	img->snapshot_extra_over_limit = -1;
	img->file_size = q2e_source_size(img->src);
	w.img = img;
	w.err = err;
	ret = walk_image(&w);
	free(w.pending);
	if (ret < 0) {
		q2e_image_close(img);
		return ret;
	}
	*out = img;
	return 0;
}

int q2e_image_open(const char *path, struct q2e_image **out,
		   struct q2e_error *err)
{
	struct q2e_source *src;
	int ret;

	*out = NULL;
	ret = q2e_source_open(path, &src, err);
	if (ret < 0)
		return ret;
	return open_source(path, src, out, err);
}

int q2e_image_open_memory(const char *name, const void *data, size_t len,
			  struct q2e_image **out, struct q2e_error *err)
{
	struct q2e_source *src;
	int ret;

	*out = NULL;
	ret = q2e_source_open_memory(name, data, len, &src, err);
	if (ret < 0)
		return ret;
	return open_source(name, src, out, err);
}

int q2e_input_describe(const char *path, enum q2e_source_kind *kind,
		       bool *no_data, struct q2e_error *err)
{
	const struct q2e_dump_meta *dm;
	struct q2e_source *src;

	if (q2e_source_open(path, &src, err) < 0)
		return err->code;
	dm = q2e_source_dump_meta(src);
	*kind = q2e_source_kind(src);
	*no_data = dm && dm->no_data;
	q2e_source_close(src);
	return 0;
}

const struct q2e_dump_meta *q2e_image_dump_meta(const struct q2e_image *img)
{
	return q2e_source_dump_meta(img->src);
}

bool q2e_image_reads_file(const struct q2e_image *img, const char *path)
{
	return q2e_source_is_file(img->src, path);
}

void q2e_image_close(struct q2e_image *img)
{
	if (!img)
		return;
	for (size_t i = 0; i < img->nexts; i++)
		free(img->exts[i].data);
	free(img->exts);
	free(img->features);
	free(img->backing_file);
	free(img->backing_format);
	free(img->data_file);
	free(img->l1);
	free(img->reftable);
	for (size_t i = 0; i < img->nsnapshots; i++) {
		free(img->snapshots[i].id);
		free(img->snapshots[i].name);
		free(img->snapshots[i].extra);
	}
	free(img->snapshots);
	for (size_t i = 0; i < img->nbitmaps; i++) {
		free(img->bitmaps[i].name);
		free(img->bitmaps[i].extra);
		free(img->bitmaps[i].table);
	}
	free(img->bitmaps);
	free(img->regions);
	free(img->owners);
	for (size_t i = 0; i < img->nproblems; i++) {
		free(img->problems[i].structure);
		free(img->problems[i].message);
	}
	free(img->problems);
	q2e_l2_cache_free(img->refcount_cache);
	q2e_source_close(img->src);
	free(img->path);
	free(img);
}

const char *q2e_image_feature_name(const struct q2e_image *img,
				   enum qcow2_feature_type type, unsigned bit)
{
	for (size_t i = 0; i < img->nfeatures; i++)
		if (img->features[i].type == type && img->features[i].bit == bit &&
		    img->features[i].name[0])
			return img->features[i].name;
	return qcow2_feature_name(type, bit);
}

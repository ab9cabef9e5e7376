/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The QCOW2 header, its feature bits and its extensions.
 *
 * Header (all integers big-endian):
 *   off  size  field
 *     0     4  magic "QFI\xfb"
 *     4     4  version (2 or 3)
 *     8     8  backing_file_offset (0: none)
 *    16     4  backing_file_size (<= 1023, not NUL-terminated)
 *    20     4  cluster_bits
 *    24     8  size (virtual disk size in bytes)
 *    32     4  crypt_method (0 none, 1 AES, 2 LUKS)
 *    36     4  l1_size (entries)
 *    40     8  l1_table_offset
 *    48     8  refcount_table_offset
 *    56     4  refcount_table_clusters
 *    60     4  nb_snapshots
 *    64     8  snapshots_offset
 *  -- version 3 --
 *    72     8  incompatible_features
 *    80     8  compatible_features
 *    88     8  autoclear_features
 *    96     4  refcount_order
 *   100     4  header_length
 *   104     1  compression_type (only if header_length > 104)
 *   105     7  padding
 *
 * Header extension (from header_length until magic 0, inside cluster 0):
 *     0     4  magic
 *     4     4  length of data
 *     8     n  data, padded with zeros to a multiple of 8
 *
 * Feature name table entry (extension 0x6803f857), 48 bytes:
 *     0     1  type (0 incompatible, 1 compatible, 2 autoclear)
 *     1     1  bit number (0..63)
 *     2    46  name, NUL-padded (not terminated when 46 long)
 *
 * Bitmaps extension (0x23852875), 24 bytes:
 *     0     4  nb_bitmaps
 *     4     4  reserved, zero
 *     8     8  bitmap_directory_size
 *    16     8  bitmap_directory_offset
 *
 * Full disk encryption header pointer (0x0537be77), 16 bytes:
 *     0     8  offset of the encryption area
 *     8     8  length of the encryption area
 */
#include <string.h>

#include "qcow2elf/error.h"
#include "qcow2elf/qcow2.h"

int qcow2_header_decode(const uint8_t *buf, size_t len,
			struct qcow2_header *h, const char **why)
{
	memset(h, 0, sizeof(*h));
	if (len < QCOW2_V2_HEADER_LENGTH) {
		*why = "header is truncated";
		return Q2E_ECORRUPT;
	}
	h->magic = qcow2_be32(buf + 0);
	if (h->magic != QCOW2_MAGIC) {
		*why = "bad magic, not a QCOW2 image";
		return Q2E_ENOTQCOW2;
	}
	h->version = qcow2_be32(buf + 4);
	h->backing_file_offset = qcow2_be64(buf + 8);
	h->backing_file_size = qcow2_be32(buf + 16);
	h->cluster_bits = qcow2_be32(buf + 20);
	h->size = qcow2_be64(buf + 24);
	h->crypt_method = qcow2_be32(buf + 32);
	h->l1_size = qcow2_be32(buf + 36);
	h->l1_table_offset = qcow2_be64(buf + 40);
	h->refcount_table_offset = qcow2_be64(buf + 48);
	h->refcount_table_clusters = qcow2_be32(buf + 56);
	h->nb_snapshots = qcow2_be32(buf + 60);
	h->snapshots_offset = qcow2_be64(buf + 64);

	if (h->version == 2) {
		h->refcount_order = 4;
		h->header_length = QCOW2_V2_HEADER_LENGTH;
		return 0;
	}
	/* QEMU probes version 1 as QCOW, its predecessor, and 0 as raw: not
	 * QCOW2, so `check` exits 63 as qemu-img check does on them. */
	if (h->version < 2) {
		*why = h->version == 1 ? "version 1 is QCOW, not QCOW2"
				       : "version 0, not a QCOW2 image";
		return Q2E_ENOTQCOW2;
	}
	if (h->version != 3) {
		*why = "unknown version (only 2 and 3 exist)";
		return Q2E_EUNSUPPORTED;
	}
	if (len < QCOW2_V3_HEADER_LENGTH) {
		*why = "version 3 header is truncated";
		return Q2E_ECORRUPT;
	}
	h->incompatible_features = qcow2_be64(buf + 72);
	h->compatible_features = qcow2_be64(buf + 80);
	h->autoclear_features = qcow2_be64(buf + 88);
	h->refcount_order = qcow2_be32(buf + 96);
	h->header_length = qcow2_be32(buf + 100);
	if (h->header_length < QCOW2_V3_HEADER_LENGTH) {
		*why = "header_length is below 104";
		return Q2E_ECORRUPT;
	}
	if (h->header_length > QCOW2_V3_HEADER_LENGTH) {
		if (len < QCOW2_V3_HEADER_LENGTH + 1) {
			*why = "header is shorter than its header_length";
			return Q2E_ECORRUPT;
		}
		h->has_compression_type = true;
		h->compression_type = buf[104];
	}
	return 0;
}

static const char *const feature_names[3][64] = {
	[QCOW2_FEAT_INCOMPATIBLE] = {
		[0] = "dirty bit",
		[1] = "corrupt bit",
		[2] = "external data file",
		[3] = "compression type",
		[4] = "extended L2 entries",
	},
	[QCOW2_FEAT_COMPATIBLE] = {
		[0] = "lazy refcounts",
	},
	[QCOW2_FEAT_AUTOCLEAR] = {
		[0] = "bitmaps",
		[1] = "raw external data",
	},
};

const char *qcow2_feature_name(enum qcow2_feature_type type, unsigned bit)
{
	if ((unsigned)type > QCOW2_FEAT_AUTOCLEAR || bit >= 64)
		return NULL;
	return feature_names[type][bit];
}

const char *qcow2_feature_type_name(enum qcow2_feature_type type)
{
	switch (type) {
	case QCOW2_FEAT_INCOMPATIBLE:
		return "incompatible";
	case QCOW2_FEAT_COMPATIBLE:
		return "compatible";
	case QCOW2_FEAT_AUTOCLEAR:
		return "autoclear";
	}
	return "unknown";
}

uint64_t qcow2_known_features(enum qcow2_feature_type type)
{
	uint64_t mask = 0;

	for (unsigned bit = 0; bit < 64; bit++)
		if (qcow2_feature_name(type, bit))
			mask |= 1ULL << bit;
	return mask;
}

int qcow2_ext_decode(const uint8_t *buf, size_t len, struct qcow2_ext *ext,
		     const char **why)
{
	memset(ext, 0, sizeof(*ext));
	if (len < 8) {
		*why = "extension header runs past the end of the header cluster";
		return Q2E_ECORRUPT;
	}
	ext->magic = qcow2_be32(buf);
	ext->length = qcow2_be32(buf + 4);
	/* QEMU checks the length first, even the end marker's. */
	if (ext->length > len - 8) {
		*why = "extension runs past the end of the header cluster";
		return Q2E_ECORRUPT;
	}
	if (ext->magic == QCOW2_EXT_END)
		return 1;
	ext->data = buf + 8;
	ext->size = 8 + (((size_t)ext->length + 7) & ~(size_t)7);
	if (ext->size > len)
		ext->size = len;	/* padding cut by the cluster end */
	return 0;
}

const char *qcow2_ext_name(uint32_t magic)
{
	switch (magic) {
	case QCOW2_EXT_BACKING_FORMAT:
		return "backing-format";
	case QCOW2_EXT_FEATURE_TABLE:
		return "feature-table";
	case QCOW2_EXT_BITMAPS:
		return "bitmaps";
	case QCOW2_EXT_CRYPTO:
		return "crypto";
	case QCOW2_EXT_DATA_FILE:
		return "data-file";
	}
	return NULL;
}

int qcow2_feature_decode(const uint8_t *buf, size_t len,
			 struct qcow2_feature *f, const char **why)
{
	if (len < QCOW2_FEATURE_ENTRY_SIZE) {
		*why = "feature name table entry is truncated";
		return Q2E_ECORRUPT;
	}
	f->type = buf[0];
	f->bit = buf[1];
	memcpy(f->name, buf + 2, QCOW2_FEATURE_NAME_LEN);
	f->name[QCOW2_FEATURE_NAME_LEN] = '\0';
	if (f->type > QCOW2_FEAT_AUTOCLEAR) {
		*why = "feature name table entry has an unknown type";
		return Q2E_ECORRUPT;
	}
	if (f->bit > 63) {
		*why = "feature name table entry names a bit above 63";
		return Q2E_ECORRUPT;
	}
	return 0;
}

int qcow2_bitmaps_ext_decode(const uint8_t *buf, size_t len,
			     struct qcow2_bitmaps_ext *e, const char **why)
{
	if (len < 24) {
		*why = "bitmaps extension is shorter than 24 bytes";
		return Q2E_ECORRUPT;
	}
	e->nb_bitmaps = qcow2_be32(buf);
	e->reserved = qcow2_be32(buf + 4);
	e->bitmap_directory_size = qcow2_be64(buf + 8);
	e->bitmap_directory_offset = qcow2_be64(buf + 16);
	return 0;
}

int qcow2_crypto_ext_decode(const uint8_t *buf, size_t len,
			    struct qcow2_crypto_ext *e, const char **why)
{
	if (len < 16) {
		*why = "encryption header extension is shorter than 16 bytes";
		return Q2E_ECORRUPT;
	}
	e->offset = qcow2_be64(buf);
	e->length = qcow2_be64(buf + 8);
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The header, its feature bits and its extensions (src/decode/header.c), on
 * byte arrays written out field by field as in the layout table there.
 * Truncated inputs are copied to buffers of exactly their length, so that a
 * read past the end shows up under a sanitizer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "qcow2elf/error.h"
#include "qcow2elf/qcow2.h"

/* A version 3 header with every field set, to values that tell them apart. */
static const uint8_t v3_header[112] = {
	[0] = 0x51, 0x46, 0x49, 0xfb,			/* magic */
	[4] = 0x00, 0x00, 0x00, 0x03,			/* version */
	[8] = 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, /* backing_file_offset */
	[16] = 0x00, 0x00, 0x00, 0x0a,			/* backing_file_size */
	[20] = 0x00, 0x00, 0x00, 0x10,			/* cluster_bits */
	[24] = 0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, /* size 1 GiB */
	[32] = 0x00, 0x00, 0x00, 0x02,			/* crypt_method */
	[36] = 0x00, 0x00, 0x00, 0x08,			/* l1_size */
	[40] = 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, /* l1_table_offset */
	[48] = 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, /* refcount_table_offset */
	[56] = 0x00, 0x00, 0x00, 0x01,			/* refcount_table_clusters */
	[60] = 0x00, 0x00, 0x00, 0x02,			/* nb_snapshots */
	[64] = 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, /* snapshots_offset */
	[72] = 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x19, /* incompatible */
	[80] = 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, /* compatible */
	[88] = 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, /* autoclear */
	[96] = 0x00, 0x00, 0x00, 0x04,			/* refcount_order */
	[100] = 0x00, 0x00, 0x00, 0x70,			/* header_length 112 */
	[104] = 0x01,					/* compression_type zstd */
};

/* Version 2: the fields up to snapshots_offset, nothing after. */
static const uint8_t v2_header[72] = {
	[0] = 0x51, 0x46, 0x49, 0xfb,			/* magic */
	[4] = 0x00, 0x00, 0x00, 0x02,			/* version */
	[20] = 0x00, 0x00, 0x00, 0x0c,			/* cluster_bits */
	[24] = 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, /* size 16 MiB */
	[36] = 0x00, 0x00, 0x00, 0x01,			/* l1_size */
	[40] = 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x00, /* l1_table_offset */
	[48] = 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, /* refcount_table_offset */
	[56] = 0x00, 0x00, 0x00, 0x01,			/* refcount_table_clusters */
};

/* A copy of the first LEN bytes of SRC in a buffer of exactly LEN bytes. */
static uint8_t *exact(const uint8_t *src, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	assert_non_null(p);
	memcpy(p, src, len);
	return p;
}

static int decode_prefix(const uint8_t *src, size_t len, struct qcow2_header *h,
			 const char **why)
{
	uint8_t *p = exact(src, len);
	int ret = qcow2_header_decode(p, len, h, why);

	free(p);
	return ret;
}

static void test_v3_fields(void **state)
{
	struct qcow2_header h;
	const char *why = NULL;

	(void)state;
	assert_int_equal(decode_prefix(v3_header, sizeof(v3_header), &h, &why), 0);
	assert_int_equal(h.magic, QCOW2_MAGIC);
	assert_int_equal(h.version, 3);
	assert_int_equal(h.backing_file_offset, 0x120);
	assert_int_equal(h.backing_file_size, 10);
	assert_int_equal(h.cluster_bits, 16);
	assert_int_equal(h.size, 1ULL << 30);
	assert_int_equal(h.crypt_method, QCOW2_CRYPT_LUKS);
	assert_int_equal(h.l1_size, 8);
	assert_int_equal(h.l1_table_offset, 0x30000);
	assert_int_equal(h.refcount_table_offset, 0x10000);
	assert_int_equal(h.refcount_table_clusters, 1);
	assert_int_equal(h.nb_snapshots, 2);
	assert_int_equal(h.snapshots_offset, 0x50000);
	assert_int_equal(h.incompatible_features,
			 QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_COMPRESSION |
				 QCOW2_INCOMPAT_EXTL2);
	assert_int_equal(h.compatible_features, QCOW2_COMPAT_LAZY_REFCOUNTS);
	/* Bit 63 is not a feature QEMU knows, and must survive decoding. */
	assert_int_equal(h.autoclear_features, 0x8000000000000003ULL);
	assert_int_equal(h.refcount_order, 4);
	assert_int_equal(h.header_length, 112);
	assert_true(h.has_compression_type);
	assert_int_equal(h.compression_type, QCOW2_COMPRESSION_ZSTD);
}

static void test_v2_implied_fields(void **state)
{
	struct qcow2_header h;
	const char *why = NULL;

	(void)state;
	assert_int_equal(decode_prefix(v2_header, sizeof(v2_header), &h, &why), 0);
	assert_int_equal(h.version, 2);
	assert_int_equal(h.cluster_bits, 12);
	assert_int_equal(h.size, 16ULL << 20);
	assert_int_equal(h.l1_table_offset, 0x3000);
	assert_int_equal(h.refcount_table_offset, 0x1000);
	assert_int_equal(h.refcount_order, 4);
	assert_int_equal(h.header_length, QCOW2_V2_HEADER_LENGTH);
	assert_int_equal(h.incompatible_features, 0);
	assert_false(h.has_compression_type);
}

/* A version 2 header needs 72 bytes, and never looks at more. */
static void test_v2_truncated(void **state)
{
	struct qcow2_header h;

	(void)state;
	for (size_t len = 0; len < sizeof(v2_header); len++) {
		const char *why = NULL;

		assert_int_equal(decode_prefix(v2_header, len, &h, &why),
				 Q2E_ECORRUPT);
		assert_string_equal(why, "header is truncated");
	}
}

static void test_v3_truncated(void **state)
{
	struct qcow2_header h;

	(void)state;
	for (size_t len = 0; len < QCOW2_V3_HEADER_LENGTH; len++) {
		const char *why = NULL;

		assert_int_equal(decode_prefix(v3_header, len, &h, &why),
				 Q2E_ECORRUPT);
		assert_string_equal(why, len < QCOW2_V2_HEADER_LENGTH
						 ? "header is truncated"
						 : "version 3 header is truncated");
	}
	/* header_length 112 announces a compression_type byte at 104. */
	const char *why = NULL;
	assert_int_equal(decode_prefix(v3_header, 104, &h, &why), Q2E_ECORRUPT);
	assert_string_equal(why, "header is shorter than its header_length");
	assert_int_equal(decode_prefix(v3_header, 105, &h, &why), 0);
	assert_int_equal(h.compression_type, QCOW2_COMPRESSION_ZSTD);
}

static void test_bad_magic(void **state)
{
	struct qcow2_header h;

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		uint8_t buf[sizeof(v3_header)];
		const char *why = NULL;

		memcpy(buf, v3_header, sizeof(buf));
		buf[i] ^= 0x20;
		assert_int_equal(qcow2_header_decode(buf, sizeof(buf), &h, &why),
				 Q2E_ENOTQCOW2);
		assert_string_equal(why, "bad magic, not a QCOW2 image");
	}
}

static void test_unknown_versions(void **state)
{
	static const uint8_t versions[] = { 4, 5, 0xff };
	struct qcow2_header h;

	(void)state;
	for (size_t i = 0; i < sizeof(versions); i++) {
		uint8_t buf[sizeof(v3_header)];
		const char *why = NULL;

		memcpy(buf, v3_header, sizeof(buf));
		buf[7] = versions[i];
		assert_int_equal(qcow2_header_decode(buf, sizeof(buf), &h, &why),
				 Q2E_EUNSUPPORTED);
		assert_string_equal(why, "unknown version (only 2 and 3 exist)");
	}
}

/* Versions 0 and 1 are not QCOW2 at all: QEMU takes them for raw and for
 * QCOW, whose check does not exist (qemu-img check exits 63). */
static void test_pre_qcow2_versions(void **state)
{
	static const struct { uint8_t version; const char *why; } cases[] = {
		{ 0, "version 0, not a QCOW2 image" },
		{ 1, "version 1 is QCOW, not QCOW2" },
	};
	struct qcow2_header h;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t buf[sizeof(v3_header)];
		const char *why = NULL;

		memcpy(buf, v3_header, sizeof(buf));
		buf[7] = cases[i].version;
		assert_int_equal(qcow2_header_decode(buf, sizeof(buf), &h, &why),
				 Q2E_ENOTQCOW2);
		assert_string_equal(why, cases[i].why);
	}
}

static void test_header_length(void **state)
{
	static const uint8_t lengths[] = { 0, 72, 103 };
	struct qcow2_header h;
	uint8_t buf[sizeof(v3_header)];
	const char *why = NULL;

	(void)state;
	memcpy(buf, v3_header, sizeof(buf));
	for (size_t i = 0; i < sizeof(lengths); i++) {
		buf[103] = lengths[i];
		assert_int_equal(qcow2_header_decode(buf, sizeof(buf), &h, &why),
				 Q2E_ECORRUPT);
		assert_string_equal(why, "header_length is below 104");
	}
	/* Exactly 104: valid, and there is no compression_type byte. */
	buf[103] = 104;
	assert_int_equal(qcow2_header_decode(buf, 104, &h, &why), 0);
	assert_int_equal(h.header_length, 104);
	assert_false(h.has_compression_type);
	assert_int_equal(h.compression_type, 0);
}

static void test_feature_names(void **state)
{
	(void)state;
	assert_string_equal(qcow2_feature_name(QCOW2_FEAT_INCOMPATIBLE, 0),
			    "dirty bit");
	assert_string_equal(qcow2_feature_name(QCOW2_FEAT_INCOMPATIBLE, 4),
			    "extended L2 entries");
	assert_null(qcow2_feature_name(QCOW2_FEAT_INCOMPATIBLE, 5));
	assert_string_equal(qcow2_feature_name(QCOW2_FEAT_COMPATIBLE, 0),
			    "lazy refcounts");
	assert_string_equal(qcow2_feature_name(QCOW2_FEAT_AUTOCLEAR, 1),
			    "raw external data");
	assert_null(qcow2_feature_name(QCOW2_FEAT_AUTOCLEAR, 63));
	assert_null(qcow2_feature_name(QCOW2_FEAT_AUTOCLEAR, 64));
	assert_null(qcow2_feature_name((enum qcow2_feature_type)3, 0));

	assert_string_equal(qcow2_feature_type_name(QCOW2_FEAT_INCOMPATIBLE),
			    "incompatible");
	assert_string_equal(qcow2_feature_type_name(QCOW2_FEAT_AUTOCLEAR),
			    "autoclear");
	assert_string_equal(qcow2_feature_type_name((enum qcow2_feature_type)7),
			    "unknown");

	assert_int_equal(qcow2_known_features(QCOW2_FEAT_INCOMPATIBLE), 0x1f);
	assert_int_equal(qcow2_known_features(QCOW2_FEAT_COMPATIBLE), 0x1);
	assert_int_equal(qcow2_known_features(QCOW2_FEAT_AUTOCLEAR), 0x3);
}

/* Three extensions as QEMU lays them out after a 112-byte header. */
static const uint8_t extensions[] = {
	/* backing file format "qcow2": 5 bytes, padded to 8 */
	0xe2, 0x79, 0x2a, 0xca, 0x00, 0x00, 0x00, 0x05,
	'q', 'c', 'o', 'w', '2', 0x00, 0x00, 0x00,
	/* an unknown extension, 8 bytes: no padding */
	0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x08,
	0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04,
	/* end marker */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

static void test_ext_walk(void **state)
{
	struct qcow2_ext ext;
	const char *why = NULL;
	size_t pos = 0;

	(void)state;
	assert_int_equal(qcow2_ext_decode(extensions, sizeof(extensions), &ext,
					  &why), 0);
	assert_int_equal(ext.magic, QCOW2_EXT_BACKING_FORMAT);
	assert_int_equal(ext.length, 5);
	assert_int_equal(ext.size, 16);
	assert_ptr_equal(ext.data, extensions + 8);
	assert_memory_equal(ext.data, "qcow2", 5);
	pos += ext.size;

	assert_int_equal(qcow2_ext_decode(extensions + pos,
					  sizeof(extensions) - pos, &ext, &why),
			 0);
	assert_int_equal(ext.magic, 0x12345678);
	assert_int_equal(ext.length, 8);
	assert_int_equal(ext.size, 16);
	assert_null(qcow2_ext_name(ext.magic));
	pos += ext.size;

	assert_int_equal(qcow2_ext_decode(extensions + pos,
					  sizeof(extensions) - pos, &ext, &why),
			 1);
	assert_int_equal(ext.magic, QCOW2_EXT_END);
}

/* QEMU checks even the end marker's length against the bytes left. */
static void test_ext_end_length(void **state)
{
	static const uint8_t end7[16] = { 0, 0, 0, 0, 0, 0, 0, 7 };
	struct qcow2_ext ext;
	const char *why = NULL;

	(void)state;
	assert_int_equal(qcow2_ext_decode(end7, sizeof(end7), &ext, &why), 1);
	assert_int_equal(qcow2_ext_decode(end7, 8 + 7, &ext, &why), 1);
	assert_int_equal(qcow2_ext_decode(end7, 8 + 6, &ext, &why),
			 Q2E_ECORRUPT);
	assert_non_null(why);
}

static void test_ext_truncated(void **state)
{
	struct qcow2_ext ext;

	(void)state;
	/* Fewer than 8 bytes: not even the end marker fits. */
	for (size_t len = 0; len < 8; len++) {
		uint8_t *p = exact(extensions + 32, len);
		const char *why = NULL;

		assert_int_equal(qcow2_ext_decode(p, len, &ext, &why),
				 Q2E_ECORRUPT);
		assert_string_equal(why, "extension header runs past the end of the header cluster");
		free(p);
	}
	/* The payload cut short: 8..12 bytes of the 5-byte extension. */
	for (size_t len = 8; len < 13; len++) {
		uint8_t *p = exact(extensions, len);
		const char *why = NULL;

		assert_int_equal(qcow2_ext_decode(p, len, &ext, &why),
				 Q2E_ECORRUPT);
		assert_string_equal(why, "extension runs past the end of the header cluster");
		free(p);
	}
	/* The payload fits, its padding does not: size stops at the end. */
	for (size_t len = 13; len < 16; len++) {
		uint8_t *p = exact(extensions, len);
		const char *why = NULL;

		assert_int_equal(qcow2_ext_decode(p, len, &ext, &why), 0);
		assert_int_equal(ext.length, 5);
		assert_int_equal(ext.size, len);
		free(p);
	}
}

/* A length near 2^32 must not wrap the bounds check. */
static void test_ext_huge_length(void **state)
{
	static const uint8_t huge[16] = {
		0x68, 0x03, 0xf8, 0x57, 0xff, 0xff, 0xff, 0xff,
	};
	struct qcow2_ext ext;
	const char *why = NULL;

	(void)state;
	assert_int_equal(qcow2_ext_decode(huge, sizeof(huge), &ext, &why),
			 Q2E_ECORRUPT);
	assert_null(ext.data);
}

static void test_ext_names(void **state)
{
	(void)state;
	assert_string_equal(qcow2_ext_name(QCOW2_EXT_BACKING_FORMAT),
			    "backing-format");
	assert_string_equal(qcow2_ext_name(QCOW2_EXT_FEATURE_TABLE),
			    "feature-table");
	assert_string_equal(qcow2_ext_name(QCOW2_EXT_BITMAPS), "bitmaps");
	assert_string_equal(qcow2_ext_name(QCOW2_EXT_CRYPTO), "crypto");
	assert_string_equal(qcow2_ext_name(QCOW2_EXT_DATA_FILE), "data-file");
	assert_null(qcow2_ext_name(QCOW2_EXT_END));
}

static const uint8_t feature_entries[3 * 48] = {
	[0] = 0x00, 0x00, 'd', 'i', 'r', 't', 'y', ' ', 'b', 'i', 't',
	/* 46 characters of name: no room for a terminator */
	[48] = 0x01, 0x3f,
	'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm',
	'n', 'o', 'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z',
	'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M',
	'N', 'O', 'P', 'Q', 'R', 'S', 'T',
	/* type 3 does not exist */
	[96] = 0x03, 0x01, 'b', 'a', 'd',
};

static void test_feature_entries(void **state)
{
	struct qcow2_feature f;
	const char *why = NULL;

	(void)state;
	assert_int_equal(qcow2_feature_decode(feature_entries, 48, &f, &why), 0);
	assert_int_equal(f.type, QCOW2_FEAT_INCOMPATIBLE);
	assert_int_equal(f.bit, 0);
	assert_string_equal(f.name, "dirty bit");

	assert_int_equal(qcow2_feature_decode(feature_entries + 48, 48, &f,
					      &why), 0);
	assert_int_equal(f.type, QCOW2_FEAT_COMPATIBLE);
	assert_int_equal(f.bit, 63);
	assert_int_equal(strlen(f.name), QCOW2_FEATURE_NAME_LEN);
	assert_string_equal(f.name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRST");

	assert_int_equal(qcow2_feature_decode(feature_entries + 96, 48, &f,
					      &why), Q2E_ECORRUPT);
	assert_string_equal(why, "feature name table entry has an unknown type");
	assert_int_equal(f.type, 3);
	assert_string_equal(f.name, "bad");
}

static void test_feature_bad_bit(void **state)
{
	uint8_t buf[48];
	struct qcow2_feature f;
	const char *why = NULL;

	(void)state;
	memcpy(buf, feature_entries, sizeof(buf));
	buf[1] = 64;
	assert_int_equal(qcow2_feature_decode(buf, sizeof(buf), &f, &why),
			 Q2E_ECORRUPT);
	assert_string_equal(why, "feature name table entry names a bit above 63");
}

static void test_feature_truncated(void **state)
{
	struct qcow2_feature f;

	(void)state;
	for (size_t len = 0; len < 48; len++) {
		uint8_t *p = exact(feature_entries, len);
		const char *why = NULL;

		assert_int_equal(qcow2_feature_decode(p, len, &f, &why),
				 Q2E_ECORRUPT);
		assert_string_equal(why, "feature name table entry is truncated");
		free(p);
	}
}

static void test_bitmaps_ext(void **state)
{
	static const uint8_t payload[24] = {
		[0] = 0x00, 0x00, 0x00, 0x03,		/* nb_bitmaps */
		[4] = 0x00, 0x00, 0x00, 0x01,		/* reserved, not zero */
		[8] = 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x60,
		[16] = 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
	};
	struct qcow2_bitmaps_ext e;
	const char *why = NULL;

	(void)state;
	assert_int_equal(qcow2_bitmaps_ext_decode(payload, 24, &e, &why), 0);
	assert_int_equal(e.nb_bitmaps, 3);
	assert_int_equal(e.reserved, 1);
	assert_int_equal(e.bitmap_directory_size, 0x60);
	assert_int_equal(e.bitmap_directory_offset, 0x100000000ULL);
	for (size_t len = 0; len < 24; len++) {
		uint8_t *p = exact(payload, len);

		why = NULL;
		assert_int_equal(qcow2_bitmaps_ext_decode(p, len, &e, &why),
				 Q2E_ECORRUPT);
		assert_string_equal(why, "bitmaps extension is shorter than 24 bytes");
		free(p);
	}
}

static void test_crypto_ext(void **state)
{
	static const uint8_t payload[16] = {
		[0] = 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
		[8] = 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00,
	};
	struct qcow2_crypto_ext e;
	const char *why = NULL;

	(void)state;
	assert_int_equal(qcow2_crypto_ext_decode(payload, 16, &e, &why), 0);
	assert_int_equal(e.offset, 0x10000);
	assert_int_equal(e.length, 0x200000);
	for (size_t len = 0; len < 16; len++) {
		uint8_t *p = exact(payload, len);

		why = NULL;
		assert_int_equal(qcow2_crypto_ext_decode(p, len, &e, &why),
				 Q2E_ECORRUPT);
		assert_string_equal(why, "encryption header extension is shorter than 16 bytes");
		free(p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v3_fields),
		cmocka_unit_test(test_v2_implied_fields),
		cmocka_unit_test(test_v2_truncated),
		cmocka_unit_test(test_v3_truncated),
		cmocka_unit_test(test_bad_magic),
		cmocka_unit_test(test_unknown_versions),
		cmocka_unit_test(test_pre_qcow2_versions),
		cmocka_unit_test(test_header_length),
		cmocka_unit_test(test_feature_names),
		cmocka_unit_test(test_ext_walk),
		cmocka_unit_test(test_ext_end_length),
		cmocka_unit_test(test_ext_truncated),
		cmocka_unit_test(test_ext_huge_length),
		cmocka_unit_test(test_ext_names),
		cmocka_unit_test(test_feature_entries),
		cmocka_unit_test(test_feature_bad_bit),
		cmocka_unit_test(test_feature_truncated),
		cmocka_unit_test(test_bitmaps_ext),
		cmocka_unit_test(test_crypto_ext),
	};

	return cmocka_run_group_tests_name("header", tests, NULL, NULL);
}

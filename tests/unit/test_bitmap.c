/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Bitmap directory entries, bitmap table entries and the size of bitmap
 * data (src/decode/bitmap.c), written out as in the layout table there.
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

/* `qemu-img bitmap --add -g 65536 img.qcow2 b0` on a 1 GiB image. */
static const uint8_t entry_b0[32] = {
	[0] = 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, /* table offset */
	[8] = 0x00, 0x00, 0x00, 0x01,			/* table size */
	[12] = 0x00, 0x00, 0x00, 0x02,			/* flags: auto */
	[16] = 0x01,					/* type: dirty */
	[17] = 0x10,					/* granularity_bits */
	[18] = 0x00, 0x02,				/* name_size */
	[20] = 0x00, 0x00, 0x00, 0x00,			/* extra_data_size */
	[24] = 'b', '0',				/* name */
	/* 26..31: padding */
};

/* With 4 bytes of extra data and a name that ends on the 8-byte mark. */
static const uint8_t entry_extra[40] = {
	[0] = 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00,
	[8] = 0x00, 0x00, 0x00, 0x10,
	[12] = 0x00, 0x00, 0x00, 0x05,			/* in_use | extra_data_compatible */
	[16] = 0x01,
	[17] = 0x09,
	[18] = 0x00, 0x0c,
	[20] = 0x00, 0x00, 0x00, 0x04,
	[24] = 0xca, 0xfe, 0xf0, 0x0d,			/* extra data */
	[28] = 'd', 'i', 'r', 't', 'y', '-', 'b', 'i', 't', 'm', 'a', 'p',
};

static uint8_t *exact(const uint8_t *src, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	assert_non_null(p);
	memcpy(p, src, len);
	return p;
}

static void test_entry(void **state)
{
	struct qcow2_bitmap_entry b;
	const char *why = NULL;

	(void)state;
	assert_int_equal(qcow2_bitmap_entry_decode(entry_b0, sizeof(entry_b0),
						   &b, &why), 0);
	assert_int_equal(b.bitmap_table_offset, 0x50000);
	assert_int_equal(b.bitmap_table_size, 1);
	assert_int_equal(b.flags, QCOW2_BITMAP_AUTO);
	assert_int_equal(b.type, QCOW2_BITMAP_TYPE_DIRTY);
	assert_int_equal(b.granularity_bits, 16);
	assert_int_equal(b.name_size, 2);
	assert_int_equal(b.extra_data_size, 0);
	assert_memory_equal(b.name, "b0", 2);
	assert_int_equal(b.entry_size, 32);
}

static void test_entry_extra(void **state)
{
	struct qcow2_bitmap_entry b;
	const char *why = NULL;

	(void)state;
	assert_int_equal(qcow2_bitmap_entry_decode(entry_extra,
						   sizeof(entry_extra), &b,
						   &why), 0);
	assert_int_equal(b.flags,
			 QCOW2_BITMAP_IN_USE | QCOW2_BITMAP_EXTRA_DATA_COMPATIBLE);
	assert_int_equal(b.granularity_bits, 9);
	assert_int_equal(b.extra_data_size, 4);
	assert_ptr_equal(b.extra, entry_extra + 24);
	assert_memory_equal(b.extra, "\xca\xfe\xf0\x0d", 4);
	assert_memory_equal(b.name, "dirty-bitmap", 12);
	assert_int_equal(b.entry_size, 40);
}

static void test_entry_truncated(void **state)
{
	(void)state;
	for (size_t len = 0; len < 26; len++) {
		uint8_t *p = exact(entry_b0, len);
		struct qcow2_bitmap_entry b;
		const char *why = NULL;

		assert_int_equal(qcow2_bitmap_entry_decode(p, len, &b, &why),
				 Q2E_ECORRUPT);
		assert_string_equal(why, len < 24
				    ? "bitmap directory entry runs past the directory"
				    : "bitmap name runs past the directory");
		free(p);
	}
	for (size_t len = 24; len < 28; len++) {
		uint8_t *p = exact(entry_extra, len);
		struct qcow2_bitmap_entry b;
		const char *why = NULL;

		assert_int_equal(qcow2_bitmap_entry_decode(p, len, &b, &why),
				 Q2E_ECORRUPT);
		assert_string_equal(why, "bitmap extra data runs past the directory");
		free(p);
	}
	/* A last entry cut inside its padding: entry_size stops at the end. */
	for (size_t len = 26; len < 32; len++) {
		uint8_t *p = exact(entry_b0, len);
		struct qcow2_bitmap_entry b;
		const char *why = NULL;

		assert_int_equal(qcow2_bitmap_entry_decode(p, len, &b, &why), 0);
		assert_int_equal(b.entry_size, len);
		free(p);
	}
}

static void test_entry_huge_sizes(void **state)
{
	uint8_t buf[sizeof(entry_b0)];
	struct qcow2_bitmap_entry b;
	const char *why = NULL;

	(void)state;
	memcpy(buf, entry_b0, sizeof(buf));
	memset(buf + 20, 0xff, 4);	/* extra_data_size 0xffffffff */
	assert_int_equal(qcow2_bitmap_entry_decode(buf, sizeof(buf), &b, &why),
			 Q2E_ECORRUPT);
	assert_string_equal(why, "bitmap extra data runs past the directory");

	memcpy(buf, entry_b0, sizeof(buf));
	memset(buf + 18, 0xff, 2);	/* name_size 65535 */
	assert_int_equal(qcow2_bitmap_entry_decode(buf, sizeof(buf), &b, &why),
			 Q2E_ECORRUPT);
	assert_string_equal(why, "bitmap name runs past the directory");

	/* extra data taking all of the rest leaves no room for the name */
	memcpy(buf, entry_b0, sizeof(buf));
	buf[23] = 8;
	assert_int_equal(qcow2_bitmap_entry_decode(buf, sizeof(buf), &b, &why),
			 Q2E_ECORRUPT);
	assert_string_equal(why, "bitmap name runs past the directory");
}

static void test_table_entries(void **state)
{
	struct qcow2_bitmap_table_entry e;

	(void)state;
	qcow2_bitmap_table_entry_decode(0, &e);
	assert_int_equal(e.kind, QCOW2_BITMAP_ALL_ZEROS);
	assert_int_equal(e.offset, 0);
	assert_int_equal(e.reserved, 0);

	qcow2_bitmap_table_entry_decode(1, &e);
	assert_int_equal(e.kind, QCOW2_BITMAP_ALL_ONES);
	assert_int_equal(e.offset, 0);
	assert_int_equal(e.reserved, 0);

	qcow2_bitmap_table_entry_decode(0x0000000000070000ULL, &e);
	assert_int_equal(e.kind, QCOW2_BITMAP_SERIALIZED);
	assert_int_equal(e.offset, 0x70000);
	assert_int_equal(e.reserved, 0);

	/* The highest offset bits 9..55 allow. */
	qcow2_bitmap_table_entry_decode(0x00fffffffffffe00ULL, &e);
	assert_int_equal(e.kind, QCOW2_BITMAP_SERIALIZED);
	assert_int_equal(e.offset, 0x00fffffffffffe00ULL);
	assert_int_equal(e.reserved, 0);
}

static void test_table_reserved_bits(void **state)
{
	struct qcow2_bitmap_table_entry e;

	(void)state;
	/* bit 0 with an offset is reserved, not "all ones" */
	qcow2_bitmap_table_entry_decode(0x0000000000070001ULL, &e);
	assert_int_equal(e.kind, QCOW2_BITMAP_SERIALIZED);
	assert_int_equal(e.offset, 0x70000);
	assert_int_equal(e.reserved, 1);
	/* bits 1-8 */
	qcow2_bitmap_table_entry_decode(0x00000000000001feULL, &e);
	assert_int_equal(e.kind, QCOW2_BITMAP_ALL_ZEROS);
	assert_int_equal(e.reserved, 0x1fe);
	/* bits 56-63, on an all-ones entry */
	qcow2_bitmap_table_entry_decode(0xff00000000000001ULL, &e);
	assert_int_equal(e.kind, QCOW2_BITMAP_ALL_ONES);
	assert_int_equal(e.reserved, 0xff00000000000000ULL);
	assert_int_equal(e.raw, 0xff00000000000001ULL);
}

static void test_data_bytes(void **state)
{
	(void)state;
	/* 1 GiB at 64 KiB granularity: 16384 bits */
	assert_int_equal(qcow2_bitmap_data_bytes(1ULL << 30, 16), 2048);
	/* a partial granule counts as one bit; 9 bits take 2 bytes */
	assert_int_equal(qcow2_bitmap_data_bytes(8 * 65536 + 1, 16), 2);
	assert_int_equal(qcow2_bitmap_data_bytes(1, 16), 1);
	assert_int_equal(qcow2_bitmap_data_bytes(0, 16), 0);
	assert_int_equal(qcow2_bitmap_data_bytes(512 * 8, 9), 1);
	assert_int_equal(qcow2_bitmap_data_bytes(512 * 8 + 512, 9), 2);
	assert_int_equal(qcow2_bitmap_data_bytes(1ULL << 62, 31), 1ULL << 28);
	/* the largest sizes, at the finest and coarsest granularities */
	assert_int_equal(qcow2_bitmap_data_bytes(UINT64_MAX, 0), 1ULL << 61);
	assert_int_equal(qcow2_bitmap_data_bytes(UINT64_MAX, 9), 1ULL << 52);
	assert_int_equal(qcow2_bitmap_data_bytes(UINT64_MAX, 63), 1);
	assert_int_equal(qcow2_bitmap_data_bytes(UINT64_MAX, 64), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entry),
		cmocka_unit_test(test_entry_extra),
		cmocka_unit_test(test_entry_truncated),
		cmocka_unit_test(test_entry_huge_sizes),
		cmocka_unit_test(test_table_entries),
		cmocka_unit_test(test_table_reserved_bits),
		cmocka_unit_test(test_data_bytes),
	};

	return cmocka_run_group_tests_name("bitmap", tests, NULL, NULL);
}

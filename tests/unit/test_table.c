/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * L1, L2 and refcount entries (src/decode/table.c).  Entries are written as
 * the 64-bit values of the layout table there; refcount blocks as bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "qcow2elf/qcow2.h"

static const struct qcow2_l2_layout std64k = { .cluster_bits = 16 };
static const struct qcow2_l2_layout ext64k = { .cluster_bits = 16,
					       .extended = true };
static const struct qcow2_l2_layout datafile64k = { .cluster_bits = 16,
						    .has_data_file = true };

static void test_l1_entries(void **state)
{
	struct qcow2_l1_entry e;

	(void)state;
	/* COPIED, L2 table at 0x50000 */
	qcow2_l1_entry_decode(0x8000000000050000ULL, &e);
	assert_int_equal(e.l2_offset, 0x50000);
	assert_true(e.copied);
	assert_int_equal(e.reserved, 0);

	/* No L2 table. */
	qcow2_l1_entry_decode(0, &e);
	assert_int_equal(e.l2_offset, 0);
	assert_false(e.copied);

	/* The highest offset bits 9..55 allow, with every reserved bit set. */
	qcow2_l1_entry_decode(0xffffffffffffffffULL, &e);
	assert_int_equal(e.l2_offset, 0x00fffffffffffe00ULL);
	assert_true(e.copied);
	assert_int_equal(e.reserved, 0x7f000000000001ffULL);

	/* One reserved bit at each end of the offset field. */
	qcow2_l1_entry_decode(0x0100000000050001ULL, &e);
	assert_int_equal(e.l2_offset, 0x50000);
	assert_int_equal(e.reserved, 0x0100000000000001ULL);
}

static void test_l2_standard(void **state)
{
	struct qcow2_l2_entry e;

	(void)state;
	/* normal: COPIED, data at 0x70000 */
	qcow2_l2_entry_decode(0x8000000000070000ULL, 0, &std64k, &e);
	assert_int_equal(e.type, QCOW2_CLUSTER_NORMAL);
	assert_true(e.copied);
	assert_int_equal(e.host_offset, 0x70000);
	assert_int_equal(e.compressed_size, 0);
	assert_int_equal(e.reserved, 0);

	/* normal, shared with a snapshot: not COPIED */
	qcow2_l2_entry_decode(0x0000000000070000ULL, 0, &std64k, &e);
	assert_int_equal(e.type, QCOW2_CLUSTER_NORMAL);
	assert_false(e.copied);

	/* unallocated */
	qcow2_l2_entry_decode(0, 0, &std64k, &e);
	assert_int_equal(e.type, QCOW2_CLUSTER_UNALLOCATED);
	assert_int_equal(e.host_offset, 0);

	/* zero, no cluster */
	qcow2_l2_entry_decode(0x0000000000000001ULL, 0, &std64k, &e);
	assert_int_equal(e.type, QCOW2_CLUSTER_ZERO_PLAIN);
	assert_int_equal(e.host_offset, 0);
	assert_int_equal(e.reserved, 0);

	/* zero, with a preallocated cluster at 0x90000 */
	qcow2_l2_entry_decode(0x8000000000090001ULL, 0, &std64k, &e);
	assert_int_equal(e.type, QCOW2_CLUSTER_ZERO_ALLOC);
	assert_int_equal(e.host_offset, 0x90000);
	assert_true(e.copied);
	assert_int_equal(e.reserved, 0);

	/* A standard entry has no bitmap: the second word is ignored. */
	qcow2_l2_entry_decode(0x70000, 0xffffffffULL, &std64k, &e);
	assert_int_equal(e.bitmap, 0);
}

static void test_l2_reserved_bits(void **state)
{
	struct qcow2_l2_entry e;

	(void)state;
	/* bits 1-8 */
	qcow2_l2_entry_decode(0x00000000000701feULL, 0, &std64k, &e);
	assert_int_equal(e.host_offset, 0x70000);
	assert_int_equal(e.reserved, 0x1fe);
	/* bits 56-61 */
	qcow2_l2_entry_decode(0x3f00000000070000ULL, 0, &std64k, &e);
	assert_int_equal(e.type, QCOW2_CLUSTER_NORMAL);
	assert_int_equal(e.host_offset, 0x70000);
	assert_int_equal(e.reserved, 0x3f00000000000000ULL);
	/* With extended L2 the zero flag is reserved, and means nothing. */
	qcow2_l2_entry_decode(0x0000000000070001ULL, 0, &ext64k, &e);
	assert_int_equal(e.type, QCOW2_CLUSTER_NORMAL);
	assert_int_equal(e.reserved, 1);
	qcow2_l2_entry_decode(0x0000000000000001ULL, 0, &ext64k, &e);
	assert_int_equal(e.type, QCOW2_CLUSTER_UNALLOCATED);
	assert_int_equal(e.reserved, 1);
}

/* With an external data file, offset 0 + COPIED maps data file offset 0. */
static void test_l2_data_file_offset_zero(void **state)
{
	struct qcow2_l2_entry e;

	(void)state;
	qcow2_l2_entry_decode(0x8000000000000000ULL, 0, &datafile64k, &e);
	assert_int_equal(e.type, QCOW2_CLUSTER_NORMAL);
	assert_int_equal(e.host_offset, 0);
	assert_true(e.copied);
	/* without COPIED it is unallocated, as in the image itself */
	qcow2_l2_entry_decode(0, 0, &datafile64k, &e);
	assert_int_equal(e.type, QCOW2_CLUSTER_UNALLOCATED);
	/* without a data file, COPIED on offset 0 maps nothing */
	qcow2_l2_entry_decode(0x8000000000000000ULL, 0, &std64k, &e);
	assert_int_equal(e.type, QCOW2_CLUSTER_UNALLOCATED);
	/* the zero flag still wins */
	qcow2_l2_entry_decode(0x8000000000000001ULL, 0, &datafile64k, &e);
	assert_int_equal(e.type, QCOW2_CLUSTER_ZERO_PLAIN);
}

/*
 * Compressed descriptors: x = 62 - (cluster_bits - 8) offset bits, then
 * cluster_bits - 8 bits of additional sectors; the compressed size is
 * (sectors + 1) * 512 - (offset & 511).
 */
static void test_l2_compressed_512(void **state)
{
	const struct qcow2_l2_layout l = { .cluster_bits = 9 };
	struct qcow2_l2_entry e;

	(void)state;
	/* x = 61: one sector bit (61), offset 0x12345 */
	qcow2_l2_entry_decode(0x6000000000012345ULL, 0, &l, &e);
	assert_int_equal(e.type, QCOW2_CLUSTER_COMPRESSED);
	assert_int_equal(e.host_offset, 0x12345);
	assert_int_equal(e.compressed_size, 2 * 512 - 0x145);
	assert_false(e.copied);
	assert_int_equal(e.reserved, 0);
	/* no additional sector, sector-aligned offset: 512 bytes */
	qcow2_l2_entry_decode(0x4000000000012200ULL, 0, &l, &e);
	assert_int_equal(e.host_offset, 0x12200);
	assert_int_equal(e.compressed_size, 512);
	/* bits 0..60 are all offset */
	qcow2_l2_entry_decode(0x5fffffffffffffffULL, 0, &l, &e);
	assert_int_equal(e.host_offset, 0x1fffffffffffffffULL);
	assert_int_equal(e.compressed_size, 1);
}

static void test_l2_compressed_64k(void **state)
{
	struct qcow2_l2_entry e;

	(void)state;
	/* x = 54: sectors in bits 54..61; 5 more sectors at 0x10200 */
	qcow2_l2_entry_decode(0x4000000000000000ULL | (5ULL << 54) | 0x10200,
			      0, &std64k, &e);
	assert_int_equal(e.type, QCOW2_CLUSTER_COMPRESSED);
	assert_int_equal(e.host_offset, 0x10200);
	assert_int_equal(e.compressed_size, 6 * 512);
	/* same, one byte further: one byte less of the first sector */
	qcow2_l2_entry_decode(0x4000000000000000ULL | (5ULL << 54) | 0x10201,
			      0, &std64k, &e);
	assert_int_equal(e.host_offset, 0x10201);
	assert_int_equal(e.compressed_size, 6 * 512 - 1);
	/* COPIED is not valid on compressed clusters, but is reported */
	qcow2_l2_entry_decode(0xc000000000010200ULL, 0, &std64k, &e);
	assert_true(e.copied);
	assert_int_equal(e.compressed_size, 512);
	/* 255 more sectors: the largest a 64 KiB cluster can say */
	qcow2_l2_entry_decode(0x7fc0000000010000ULL, 0, &std64k, &e);
	assert_int_equal(e.host_offset, 0x10000);
	assert_int_equal(e.compressed_size, 256 * 512);
}

static void test_l2_compressed_2m(void **state)
{
	const struct qcow2_l2_layout l = { .cluster_bits = 21 };
	struct qcow2_l2_entry e;

	(void)state;
	/* x = 49: 13 sector bits, all set; the largest offset, odd */
	qcow2_l2_entry_decode(0x7fffffffffffffffULL, 0, &l, &e);
	assert_int_equal(e.type, QCOW2_CLUSTER_COMPRESSED);
	assert_int_equal(e.host_offset, (1ULL << 49) - 1);
	assert_int_equal(e.compressed_size, 8192 * 512 - 511);
	/* 3 more sectors at 0x600010 */
	qcow2_l2_entry_decode(0x4000000000000000ULL | (3ULL << 49) | 0x600010,
			      0, &l, &e);
	assert_int_equal(e.host_offset, 0x600010);
	assert_int_equal(e.compressed_size, 4 * 512 - 16);
}

static void test_subclusters_standard(void **state)
{
	static const struct {
		uint64_t raw;
		enum qcow2_subcluster_type type;
	} cases[] = {
		{ 0x8000000000070000ULL, QCOW2_SUBCLUSTER_NORMAL },
		{ 0x0000000000000000ULL, QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN },
		{ 0x0000000000000001ULL, QCOW2_SUBCLUSTER_ZERO_PLAIN },
		{ 0x0000000000070001ULL, QCOW2_SUBCLUSTER_ZERO_ALLOC },
		{ 0x4000000000070000ULL, QCOW2_SUBCLUSTER_COMPRESSED },
	};
	struct qcow2_l2_entry e;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		qcow2_l2_entry_decode(cases[i].raw, 0, &std64k, &e);
		assert_int_equal(qcow2_l2_subcluster_type(&e, &std64k, 0),
				 cases[i].type);
	}
}

static void test_subclusters_extended(void **state)
{
	struct qcow2_l2_entry e;

	(void)state;
	/*
	 * Allocated cluster at 0x70000: subcluster 0 allocated, 1 zero,
	 * 31 allocated, the rest not allocated.
	 */
	qcow2_l2_entry_decode(0x8000000000070000ULL,
			      0x0000000280000001ULL, &ext64k, &e);
	assert_int_equal(e.bitmap, 0x0000000280000001ULL);
	assert_int_equal(qcow2_l2_subcluster_type(&e, &ext64k, 0),
			 QCOW2_SUBCLUSTER_NORMAL);
	assert_int_equal(qcow2_l2_subcluster_type(&e, &ext64k, 1),
			 QCOW2_SUBCLUSTER_ZERO_ALLOC);
	assert_int_equal(qcow2_l2_subcluster_type(&e, &ext64k, 2),
			 QCOW2_SUBCLUSTER_UNALLOCATED_ALLOC);
	assert_int_equal(qcow2_l2_subcluster_type(&e, &ext64k, 31),
			 QCOW2_SUBCLUSTER_NORMAL);

	/* No cluster: zero bits say zero, the rest falls through. */
	qcow2_l2_entry_decode(0, 0x8000000100000000ULL, &ext64k, &e);
	assert_int_equal(qcow2_l2_subcluster_type(&e, &ext64k, 0),
			 QCOW2_SUBCLUSTER_ZERO_PLAIN);
	assert_int_equal(qcow2_l2_subcluster_type(&e, &ext64k, 1),
			 QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN);
	assert_int_equal(qcow2_l2_subcluster_type(&e, &ext64k, 31),
			 QCOW2_SUBCLUSTER_ZERO_PLAIN);

	/* Compressed clusters have no subclusters; the bitmap is ignored. */
	qcow2_l2_entry_decode(0x4000000000070000ULL, 0xffffffffffffffffULL,
			      &ext64k, &e);
	assert_int_equal(qcow2_l2_subcluster_type(&e, &ext64k, 5),
			 QCOW2_SUBCLUSTER_COMPRESSED);
}

static void test_subclusters_invalid(void **state)
{
	struct qcow2_l2_entry e;

	(void)state;
	/*
	 * A subcluster both allocated and zero makes the whole entry
	 * invalid, even for the subclusters that are consistent.
	 */
	qcow2_l2_entry_decode(0x8000000000070000ULL,
			      0x0000100000001001ULL, &ext64k, &e);
	assert_int_equal(qcow2_l2_subcluster_type(&e, &ext64k, 12),
			 QCOW2_SUBCLUSTER_INVALID);
	assert_int_equal(qcow2_l2_subcluster_type(&e, &ext64k, 0),
			 QCOW2_SUBCLUSTER_INVALID);
	assert_int_equal(qcow2_l2_subcluster_type(&e, &ext64k, 1),
			 QCOW2_SUBCLUSTER_INVALID);

	/* No cluster, yet a subcluster marked allocated. */
	qcow2_l2_entry_decode(0, 0x0000000000000004ULL, &ext64k, &e);
	assert_int_equal(qcow2_l2_subcluster_type(&e, &ext64k, 2),
			 QCOW2_SUBCLUSTER_INVALID);
	assert_int_equal(qcow2_l2_subcluster_type(&e, &ext64k, 0),
			 QCOW2_SUBCLUSTER_INVALID);

	/* The same bits without extended L2 are not a bitmap at all. */
	qcow2_l2_entry_decode(0, 0x0000000000000004ULL, &std64k, &e);
	assert_int_equal(qcow2_l2_subcluster_type(&e, &std64k, 0),
			 QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN);
}

static void test_l2_entry_size(void **state)
{
	(void)state;
	assert_int_equal(qcow2_l2_entry_size(&std64k), 8);
	assert_int_equal(qcow2_l2_entry_size(&ext64k), 16);
}

/* Widths below 8 bits: the first entry in the lowest bits of a byte. */
static void test_refcount_sub_byte(void **state)
{
	static const uint8_t block[2] = { 0xa5, 0xe4 };

	(void)state;
	/* 1 bit: 0xa5 = 1010 0101, entries 0..7 from the low end */
	static const uint64_t bit1[16] = { 1, 0, 1, 0, 0, 1, 0, 1,
					   0, 0, 1, 0, 0, 1, 1, 1 };
	for (uint64_t i = 0; i < 16; i++)
		assert_int_equal(qcow2_refcount_get(block, 2, 0, i), bit1[i]);

	/* 2 bits: 0xe4 = 11 10 01 00 */
	assert_int_equal(qcow2_refcount_get(block, 2, 1, 0), 1);
	assert_int_equal(qcow2_refcount_get(block, 2, 1, 1), 1);
	assert_int_equal(qcow2_refcount_get(block, 2, 1, 2), 2);
	assert_int_equal(qcow2_refcount_get(block, 2, 1, 3), 2);
	assert_int_equal(qcow2_refcount_get(block, 2, 1, 4), 0);
	assert_int_equal(qcow2_refcount_get(block, 2, 1, 5), 1);
	assert_int_equal(qcow2_refcount_get(block, 2, 1, 6), 2);
	assert_int_equal(qcow2_refcount_get(block, 2, 1, 7), 3);

	/* 4 bits: low nibble first */
	assert_int_equal(qcow2_refcount_get(block, 2, 2, 0), 0x5);
	assert_int_equal(qcow2_refcount_get(block, 2, 2, 1), 0xa);
	assert_int_equal(qcow2_refcount_get(block, 2, 2, 2), 0x4);
	assert_int_equal(qcow2_refcount_get(block, 2, 2, 3), 0xe);
}

static void test_refcount_whole_bytes(void **state)
{
	static const uint8_t block[16] = {
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8,
	};

	(void)state;
	assert_int_equal(qcow2_refcount_get(block, 16, 3, 0), 0x01);
	assert_int_equal(qcow2_refcount_get(block, 16, 3, 15), 0xf8);
	assert_int_equal(qcow2_refcount_get(block, 16, 4, 0), 0x0102);
	assert_int_equal(qcow2_refcount_get(block, 16, 4, 7), 0xf9f8);
	assert_int_equal(qcow2_refcount_get(block, 16, 5, 1), 0x05060708);
	assert_int_equal(qcow2_refcount_get(block, 16, 5, 3), 0xfbfaf9f8);
	assert_int_equal(qcow2_refcount_get(block, 16, 6, 0),
			 0x0102030405060708ULL);
	assert_int_equal(qcow2_refcount_get(block, 16, 6, 1),
			 0xfffefdfcfbfaf9f8ULL);
}

/* An entry past the block reads as 0, whatever the width or index. */
static void test_refcount_out_of_range(void **state)
{
	uint8_t *block = malloc(8);

	(void)state;
	assert_non_null(block);
	memset(block, 0xff, 8);
	for (unsigned order = 0; order <= 6; order++) {
		uint64_t per_block = 64 >> order;

		assert_int_not_equal(qcow2_refcount_get(block, 8, order,
							per_block - 1), 0);
		assert_int_equal(qcow2_refcount_get(block, 8, order, per_block),
				 0);
		/* indexes whose bit or byte offset wraps around 2^64 */
		assert_int_equal(qcow2_refcount_get(block, 8, order,
						    UINT64_MAX), 0);
		assert_int_equal(qcow2_refcount_get(block, 8, order,
						    1ULL << 63), 0);
	}
	/* The 8-byte entry does not fit in 7 bytes. */
	assert_int_equal(qcow2_refcount_get(block, 7, 6, 0), 0);
	free(block);
}

/* refcount_order above 6 (wider than 64 bits) is invalid: nothing read. */
static void test_refcount_bad_order(void **state)
{
	static const uint8_t block[32] = { 0x01, 0x02 };

	(void)state;
	assert_int_equal(qcow2_refcount_get(block, 32, 7, 0), 0);
	assert_int_equal(qcow2_refcount_get(block, 32, 31, 0), 0);
	assert_int_equal(qcow2_refcount_get(block, 32, 32, 0), 0);
	assert_int_equal(qcow2_refcount_get(block, 32, 0xffffffffU, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_l1_entries),
		cmocka_unit_test(test_l2_standard),
		cmocka_unit_test(test_l2_reserved_bits),
		cmocka_unit_test(test_l2_data_file_offset_zero),
		cmocka_unit_test(test_l2_compressed_512),
		cmocka_unit_test(test_l2_compressed_64k),
		cmocka_unit_test(test_l2_compressed_2m),
		cmocka_unit_test(test_subclusters_standard),
		cmocka_unit_test(test_subclusters_extended),
		cmocka_unit_test(test_subclusters_invalid),
		cmocka_unit_test(test_l2_entry_size),
		cmocka_unit_test(test_refcount_sub_byte),
		cmocka_unit_test(test_refcount_whole_bytes),
		cmocka_unit_test(test_refcount_out_of_range),
		cmocka_unit_test(test_refcount_bad_order),
	};

	return cmocka_run_group_tests_name("table", tests, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Snapshot table entries (src/decode/snapshot.c), written out field by
 * field as in the layout table there.  Damaged entries are decoded from
 * buffers of exactly their length.
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

/* As QEMU 7.2 writes it: 24 bytes of extra data, id "1", name "first". */
static const uint8_t entry_v3[72] = {
	[0] = 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, /* l1_table_offset */
	[8] = 0x00, 0x00, 0x00, 0x10,			/* l1_size */
	[12] = 0x00, 0x01,				/* id_str_size */
	[14] = 0x00, 0x05,				/* name_size */
	[16] = 0x65, 0x4a, 0x1b, 0x80,			/* date_sec */
	[20] = 0x00, 0x0f, 0x42, 0x40,			/* date_nsec */
	[24] = 0x00, 0x00, 0x00, 0x02, 0x54, 0x0b, 0xe4, 0x00, /* vm_clock_nsec */
	[32] = 0x00, 0x00, 0x00, 0x00,			/* vm_state_size */
	[36] = 0x00, 0x00, 0x00, 0x18,			/* extra_data_size */
	[40] = 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, /* vm_state_size_large */
	[48] = 0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, /* disk_size */
	[56] = 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* icount: none */
	[64] = '1',					/* id */
	[65] = 'f', 'i', 'r', 's', 't',			/* name */
	/* 70, 71: padding */
};

/* Version 2 style: no extra data, id "10", empty name, then a next entry. */
static const uint8_t entry_v2[48] = {
	[0] = 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00,
	[8] = 0x00, 0x00, 0x00, 0x02,
	[12] = 0x00, 0x02,
	[14] = 0x00, 0x00,
	[32] = 0x00, 0x00, 0x10, 0x00,			/* vm_state_size 4096 */
	[36] = 0x00, 0x00, 0x00, 0x00,
	[40] = '1', '0',
	/* 42..47: padding */
};

static uint8_t *exact(const uint8_t *src, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	assert_non_null(p);
	memcpy(p, src, len);
	return p;
}

static void test_entry_v3(void **state)
{
	struct qcow2_snapshot s;
	const char *why = NULL;

	(void)state;
	assert_int_equal(qcow2_snapshot_decode(entry_v3, sizeof(entry_v3), &s,
					       &why), 0);
	assert_int_equal(s.l1_table_offset, 0x20000);
	assert_int_equal(s.l1_size, 16);
	assert_int_equal(s.id_str_size, 1);
	assert_int_equal(s.name_size, 5);
	assert_int_equal(s.date_sec, 0x654a1b80);
	assert_int_equal(s.date_nsec, 1000000);
	assert_int_equal(s.vm_clock_nsec, 10000000000ULL);
	assert_int_equal(s.vm_state_size, 0);
	assert_int_equal(s.extra_data_size, 24);
	assert_true(s.has_vm_state_size_large);
	assert_int_equal(s.vm_state_size_large, 0x100000000ULL);
	assert_true(s.has_disk_size);
	assert_int_equal(s.disk_size, 1ULL << 30);
	assert_true(s.has_icount);
	assert_int_equal(s.icount, UINT64_MAX);
	assert_ptr_equal(s.extra, entry_v3 + 40);
	assert_memory_equal(s.id_str, "1", 1);
	assert_memory_equal(s.name, "first", 5);
	assert_int_equal(s.entry_size, 72);
}

static void test_entry_v2(void **state)
{
	struct qcow2_snapshot s;
	const char *why = NULL;

	(void)state;
	assert_int_equal(qcow2_snapshot_decode(entry_v2, sizeof(entry_v2), &s,
					       &why), 0);
	assert_int_equal(s.l1_table_offset, 0x30000);
	assert_int_equal(s.vm_state_size, 4096);
	assert_int_equal(s.extra_data_size, 0);
	assert_false(s.has_vm_state_size_large);
	assert_false(s.has_disk_size);
	assert_false(s.has_icount);
	assert_memory_equal(s.id_str, "10", 2);
	assert_int_equal(s.name_size, 0);
	assert_int_equal(s.entry_size, 48);
}

/* Extra data shorter than 24 bytes: only the fields it covers. */
static void test_partial_extra(void **state)
{
	static const uint32_t sizes[] = { 7, 8, 15, 16, 23 };
	uint8_t buf[sizeof(entry_v3)];

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct qcow2_snapshot s;
		const char *why = NULL;

		memcpy(buf, entry_v3, sizeof(buf));
		buf[39] = (uint8_t)sizes[i];
		assert_int_equal(qcow2_snapshot_decode(buf, sizeof(buf), &s,
						       &why), 0);
		assert_int_equal(s.has_vm_state_size_large, sizes[i] >= 8);
		assert_int_equal(s.has_disk_size, sizes[i] >= 16);
		assert_false(s.has_icount);
		if (sizes[i] >= 16)
			assert_int_equal(s.disk_size, 1ULL << 30);
		/* id and name now start inside what was extra data */
		assert_ptr_equal(s.id_str, (const char *)buf + 40 + sizes[i]);
		assert_int_equal(s.entry_size,
				 (40 + sizes[i] + 6 + 7) & ~(size_t)7);
	}
}

/* Extra data longer than QEMU knows is kept, and the strings follow it. */
static void test_long_extra(void **state)
{
	uint8_t buf[80] = { 0 };
	struct qcow2_snapshot s;
	const char *why = NULL;

	(void)state;
	memcpy(buf, entry_v3, 64);
	buf[39] = 32;			/* extra_data_size */
	memcpy(buf + 72, "1first", 6);
	assert_int_equal(qcow2_snapshot_decode(buf, sizeof(buf), &s, &why), 0);
	assert_true(s.has_icount);
	assert_memory_equal(s.name, "first", 5);
	assert_int_equal(s.entry_size, 80);
}

static void test_truncated(void **state)
{
	(void)state;
	for (size_t len = 0; len < 70; len++) {
		uint8_t *p = exact(entry_v3, len);
		struct qcow2_snapshot s;
		const char *why = NULL;

		assert_int_equal(qcow2_snapshot_decode(p, len, &s, &why),
				 Q2E_ECORRUPT);
		if (len < 40)
			assert_string_equal(why, "snapshot entry runs past the snapshot table");
		else if (len < 64)
			assert_string_equal(why, "snapshot extra data runs past the snapshot table");
		else
			assert_string_equal(why, "snapshot id or name runs past the snapshot table");
		free(p);
	}
	/* The padding is not needed: the last entry may end the table. */
	uint8_t *p = exact(entry_v3, 70);
	struct qcow2_snapshot s;
	const char *why = NULL;

	assert_int_equal(qcow2_snapshot_decode(p, 70, &s, &why), 0);
	assert_memory_equal(s.name, "first", 5);
	free(p);
}

/* Sizes near their type's maximum must not wrap the bounds checks. */
static void test_huge_sizes(void **state)
{
	uint8_t buf[sizeof(entry_v3)];
	struct qcow2_snapshot s;
	const char *why = NULL;

	(void)state;
	memcpy(buf, entry_v3, sizeof(buf));
	memset(buf + 36, 0xff, 4);	/* extra_data_size 0xffffffff */
	assert_int_equal(qcow2_snapshot_decode(buf, sizeof(buf), &s, &why),
			 Q2E_ECORRUPT);
	assert_string_equal(why, "snapshot extra data runs past the snapshot table");

	memcpy(buf, entry_v3, sizeof(buf));
	memset(buf + 12, 0xff, 4);	/* id_str_size and name_size 65535 */
	assert_int_equal(qcow2_snapshot_decode(buf, sizeof(buf), &s, &why),
			 Q2E_ECORRUPT);
	assert_string_equal(why, "snapshot id or name runs past the snapshot table");

	memcpy(buf, entry_v3, sizeof(buf));
	buf[15] = 6;			/* name one byte into the padding */
	assert_int_equal(qcow2_snapshot_decode(buf, 70, &s, &why),
			 Q2E_ECORRUPT);
	assert_int_equal(qcow2_snapshot_decode(buf, 71, &s, &why), 0);
	assert_int_equal(s.entry_size, 72);
}

/* Two entries back to back: entry_size finds the second. */
static void test_two_entries(void **state)
{
	uint8_t table[sizeof(entry_v3) + sizeof(entry_v2)];
	struct qcow2_snapshot s;
	const char *why = NULL;

	(void)state;
	memcpy(table, entry_v3, sizeof(entry_v3));
	memcpy(table + sizeof(entry_v3), entry_v2, sizeof(entry_v2));
	assert_int_equal(qcow2_snapshot_decode(table, sizeof(table), &s, &why),
			 0);
	size_t pos = s.entry_size;
	assert_int_equal(qcow2_snapshot_decode(table + pos, sizeof(table) - pos,
					       &s, &why), 0);
	assert_memory_equal(s.id_str, "10", 2);
	assert_int_equal(pos + s.entry_size, sizeof(table));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entry_v3),
		cmocka_unit_test(test_entry_v2),
		cmocka_unit_test(test_partial_extra),
		cmocka_unit_test(test_long_extra),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_huge_sizes),
		cmocka_unit_test(test_two_entries),
	};

	return cmocka_run_group_tests_name("snapshot", tests, NULL, NULL);
}

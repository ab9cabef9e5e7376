/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Growing an array and searching a sorted one (src/array.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "qcow2elf/array.h"
#include "qcow2elf/error.h"

struct item {
	uint32_t tag;
	uint64_t offset;
};

static void test_grow(void **state)
{
	struct item *a = NULL;
	size_t cap = 0;

	(void)state;
	assert_int_equal(q2e_grow(a, cap, 1), 0);
	assert_non_null(a);
	assert_true(cap >= 1);
	for (size_t i = 0; i < 1000; i++) {
		assert_int_equal(q2e_grow(a, cap, i + 1), 0);
		a[i].offset = i;	/* ASan: each element is in bounds */
	}
	assert_true(cap >= 1000 && cap < 2048);
	size_t before = cap;

	assert_int_equal(q2e_grow(a, cap, 10), 0);	/* never shrinks */
	assert_int_equal(cap, before);
	/* A size that cannot be allocated fails and keeps the array. */
	assert_int_equal(q2e_grow(a, cap, SIZE_MAX / 2), Q2E_ENOMEM);
	assert_int_equal(cap, before);
	assert_int_equal(a[999].offset, 999);
	free(a);
}

static void test_first_above(void **state)
{
	const struct item a[] = { { 1, 10 }, { 2, 20 }, { 3, 20 }, { 4, 30 } };

	(void)state;
	assert_int_equal(q2e_first_above(a, 4, offset, 0), 0);
	assert_int_equal(q2e_first_above(a, 4, offset, 10), 1);
	assert_int_equal(q2e_first_above(a, 4, offset, 19), 1);
	assert_int_equal(q2e_first_above(a, 4, offset, 20), 3);
	assert_int_equal(q2e_first_above(a, 4, offset, 30), 4);
	assert_int_equal(q2e_first_above(a, 4, offset, UINT64_MAX), 4);
	assert_int_equal(q2e_first_above(a, 0, offset, 5), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grow),
		cmocka_unit_test(test_first_above),
	};

	return cmocka_run_group_tests_name("array", tests, NULL, NULL);
}

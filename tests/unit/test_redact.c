/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dump --redact's placeholders (src/emit/redact.c): each as long as the
 * name it replaces, and the placeholders of one length all different, so
 * that a redacted dump has as many distinct snapshot and bitmap names as
 * its image.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "emit/redact.h"

#define MAX_LEN 8

static int compare_names(const void *a, const void *b)
{
	return memcmp(a, b, MAX_LEN);
}

/* The placeholders for names 0..COUNT-1 of LEN bytes are all different. */
static void assert_distinct(const char *stem, size_t len, size_t count)
{
	char *all = calloc(count, MAX_LEN);

	assert_non_null(all);
	for (size_t n = 0; n < count; n++) {
		char *p = all + n * MAX_LEN;

		memset(p, 0, MAX_LEN);
		q2e_placeholder(p, len, stem, n);
		assert_int_equal(strnlen(p, MAX_LEN), len);	/* no NUL */
	}
	qsort(all, count, MAX_LEN, compare_names);
	for (size_t n = 1; n < count; n++)
		assert_true(memcmp(all + (n - 1) * MAX_LEN, all + n * MAX_LEN,
				   MAX_LEN) != 0);
	free(all);
}

static void test_forms(void **state)
{
	char out[32] = { 0 };

	(void)state;
	q2e_placeholder(out, 21, "snapshot", 0);
	assert_string_equal(out, "snapshot-0___________");
	memset(out, 0, sizeof(out));
	q2e_placeholder(out, 3, "snapshot", 42);
	assert_string_equal(out, "s42");
	memset(out, 0, sizeof(out));
	q2e_placeholder(out, 2, "bitmap", 100);	/* "b100" is too long */
	assert_string_equal(out, "Bw");		/* 100 = 1 * 52 + 48 */
	memset(out, 0, sizeof(out));
	q2e_placeholder(out, 1, "bitmap", 51);
	assert_string_equal(out, "z");
}

/* One-byte names: 52 of them; with "N" for the last digit, only 10. */
static void test_short_names_differ(void **state)
{
	(void)state;
	assert_distinct("snapshot", 1, 52);
	assert_distinct("snapshot", 2, 52 * 52);
	assert_distinct("bitmap", 3, 65535);	/* every bitmap an image has */
	assert_distinct("snapshot", 4, 65536);
	assert_distinct("backing-file", 6, 20000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_short_names_differ),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

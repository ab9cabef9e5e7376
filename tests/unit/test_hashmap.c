/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The map from keys of four words to pointers (src/hashmap.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "qcow2elf/error.h"
#include "qcow2elf/hashmap.h"

/* Values are the addresses of VALS[i]: each key's own. */
#define N 5000
static int vals[N];

static void key_of(uint64_t key[Q2E_MAP_KEY], size_t i)
{
	/* Offsets apart only in their high bits (L1 entries past the end
	 * of the file), and a second word, as diff's pairs have. */
	key[0] = (uint64_t)(i % 3);
	key[1] = (uint64_t)(i + 1) << 39;
	key[2] = i % 7;
	key[3] = 0;
}

static void test_put_get(void **state)
{
	struct q2e_map m = { 0 };
	uint64_t key[Q2E_MAP_KEY];

	(void)state;
	key_of(key, 0);
	assert_null(q2e_map_get(&m, key));	/* empty, no slots */
	for (size_t i = 0; i < N; i++) {
		key_of(key, i);
		assert_int_equal(q2e_map_put(&m, key, &vals[i]), 0);
	}
	assert_int_equal(m.n, N);
	assert_true(m.cap >= 2 * N);	/* at most half full */
	for (size_t i = 0; i < N; i++) {
		key_of(key, i);
		assert_ptr_equal(q2e_map_get(&m, key), &vals[i]);
	}
	/* A key that differs in one word only is another key. */
	key_of(key, 10);
	key[3] = 1;
	assert_null(q2e_map_get(&m, key));
	/* Putting a key again replaces its value, and adds no key. */
	key_of(key, 10);
	assert_int_equal(q2e_map_put(&m, key, &vals[11]), 0);
	assert_int_equal(m.n, N);
	assert_ptr_equal(q2e_map_get(&m, key), &vals[11]);
	/* NULL is no value: refused, the key kept. */
	assert_int_equal(q2e_map_put(&m, key, NULL), Q2E_EUSAGE);
	assert_ptr_equal(q2e_map_get(&m, key), &vals[11]);
	q2e_map_free(&m, NULL);
	assert_int_equal(m.n, 0);
	assert_null(q2e_map_get(&m, key));
}

static size_t freed;

static void count_free(void *p)
{
	freed++;
	free(p);
}

static void test_free_values(void **state)
{
	struct q2e_map m = { 0 };
	uint64_t key[Q2E_MAP_KEY];

	(void)state;
	for (size_t i = 0; i < 300; i++) {
		key_of(key, i);
		assert_int_equal(q2e_map_put(&m, key, malloc(8)), 0);
	}
	freed = 0;
	q2e_map_free(&m, count_free);	/* ASan: each value freed once */
	assert_int_equal(freed, 300);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get),
		cmocka_unit_test(test_free_values),
	};

	return cmocka_run_group_tests_name("hashmap", tests, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The dump's buffered writer (src/emit/seqwrite.c): its buffer starts
 * small and grows, and what reaches the file must not depend on when it
 * does.  Each test writes through it to a memfd and compares the file
 * with the bytes it was given, put in the same order into memory.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "emit/seqwrite.h"

#define FILE_MAX (2U << 20)

struct fixture {
	int fd;
	struct q2e_error err;
	struct q2e_seqwriter w;
	uint8_t *want;		/* what the file must hold */
	uint64_t end;		/* of what was put */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->fd = memfd_create("seqwrite", 0);
	f->want = calloc(1, FILE_MAX);
	if (f->fd < 0 || !f->want ||
	    q2e_seqwriter_init(&f->w, f->fd, "seqwrite", &f->err) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	q2e_seqwriter_fini(&f->w);
	close(f->fd);
	free(f->want);
	free(f);
	return 0;
}

/* N bytes of a pattern that differs at every offset, put and expected. */
static void put(struct fixture *f, size_t n)
{
	uint8_t *p = malloc(n ? n : 1);

	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((f->end + i) * 131 + ((f->end + i) >> 8));
	assert_true(f->end + n <= FILE_MAX);
	memcpy(f->want + f->end, p, n);
	q2e_seqwriter_put(&f->w, p, n);
	f->end += n;
	free(p);
}

static void assert_file(struct fixture *f)
{
	uint8_t *got = malloc(f->end ? f->end : 1);

	assert_int_equal(q2e_seqwriter_flush(&f->w), 0);
	assert_int_equal(q2e_seqwriter_tell(&f->w), f->end);
	assert_int_equal(lseek(f->fd, 0, SEEK_END), f->end);
	assert_int_equal(pread(f->fd, got, f->end, 0), f->end);
	assert_memory_equal(got, f->want, f->end);
	free(got);
}

/* Small puts past the first size, then past the largest: the buffer
 * grows, then flushes. */
static void test_small_puts(void **state)
{
	struct fixture *f = *state;

	while (f->end < 3 * Q2E_SEQWRITE_BUFFER + 1000)
		put(f, 1 + f->end % 61);
	assert_file(f);
}

/* Puts larger than the buffer at its first size and at its largest. */
static void test_large_puts(void **state)
{
	struct fixture *f = *state;

	put(f, 10);
	put(f, Q2E_SEQWRITE_FIRST + 1);
	put(f, 3);
	put(f, Q2E_SEQWRITE_BUFFER * 2 + 5);
	put(f, Q2E_SEQWRITE_FIRST);
	assert_file(f);
}

/* Room reserved up to the largest size, from a buffer at its first. */
static void test_reserve(void **state)
{
	struct fixture *f = *state;
	size_t sizes[] = { 100, Q2E_SEQWRITE_FIRST, Q2E_SEQWRITE_BUFFER / 2 + 7,
			   Q2E_SEQWRITE_BUFFER, 1 };

	put(f, 5);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint8_t *p = q2e_seqwriter_reserve(&f->w, sizes[k]);

		assert_non_null(p);
		for (size_t i = 0; i < sizes[k]; i++)
			p[i] = f->want[f->end + i] = (uint8_t)(k * 7 + i);
		f->end += sizes[k];
	}
	assert_null(q2e_seqwriter_reserve(&f->w, Q2E_SEQWRITE_BUFFER + 1));
	assert_file(f);
}

/* Alignment, a hole skipped and a seek back, across the growth. */
static void test_align_skip_seek(void **state)
{
	struct fixture *f = *state;

	put(f, 1000);
	q2e_seqwriter_align(&f->w, 4096);
	f->end = 4096;
	put(f, Q2E_SEQWRITE_FIRST - 10);
	assert_int_equal(q2e_seqwriter_skip(&f->w, 5000), 0);
	f->end += 5000;
	put(f, Q2E_SEQWRITE_FIRST * 2);
	assert_int_equal(q2e_seqwriter_seek(&f->w, 100), 0);
	f->end = 100;
	put(f, 50);
	f->end = 4096 + Q2E_SEQWRITE_FIRST - 10 + 5000 + Q2E_SEQWRITE_FIRST * 2;
	assert_int_equal(q2e_seqwriter_seek(&f->w, f->end), 0);
	assert_file(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_small_puts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_puts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reserve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_align_skip_seek, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * check's per-cluster reference counters (src/check/counters.c): counts
 * past the 14 bits kept inline, the COPIED bits beside them, the refcount
 * width's overflow as qemu-img reports it, and references past the end of
 * the file; and the lines' texts they leave (src/check/report.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check/check_impl.h"
#include "check_fixture.h"

#define CS UINT64_C(65536)
/* 300 x's. */
#define LONG_X "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
	       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
	       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

struct fixture {
	struct q2e_image img;
	struct checker c;
	struct q2e_error err;
};

/* A checker over an image of NCLUSTERS 64 KiB clusters, nothing counted. */
static struct fixture *setup(unsigned refcount_order, uint64_t nclusters)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	check_fixture_init(&f->img, &f->c, &f->err, 16, refcount_order,
			   nclusters);
	f->c.file_clusters = nclusters;
	return f;
}

static void teardown(struct fixture *f)
{
	checker_release(&f->c);
	free(f);
}

/* Counts cross the byte's limit (63) into the dense tier, and the tier's
 * (65,535) into the side table, unchanged. */
static void test_counts_past_inline_limit(void **state)
{
	struct fixture *f = setup(5, 8);
	struct checker *c = &f->c;

	(void)state;
	for (uint64_t n = 1; n <= 70000; n++) {
		assert_int_equal(inc_cluster(c, 3 * CS), 0);
		assert_int_equal(get_count(c, 3), n);
		/* Inline up to 62; from 65,535 the side table holds it. */
		assert_int_equal((c->counts[3] & CNT_MASK) == CNT_BIG, n >= CNT_BIG);
		assert_int_equal(c->big.n, n >= TIER_BIG ? 1 : 0);
	}
	assert_int_equal(get_count(c, 2), 0);
	assert_int_equal(get_count(c, 4), 0);
	assert_int_equal(c->res->corruptions, 0);
	assert_int_equal(c->res->nlines, 0);
	teardown(f);
}

/* inc_refs() on a range counts each cluster it touches once. */
static void test_range_counts_each_cluster(void **state)
{
	struct fixture *f = setup(4, 8);
	struct checker *c = &f->c;

	(void)state;
	/* 0x18000 to 0x38000 (exclusive) touches clusters 1, 2 and 3. */
	assert_int_equal(inc_refs(c, 0x18000, 0x20000), 0);
	assert_int_equal(get_count(c, 0), 0);
	assert_int_equal(get_count(c, 1), 1);
	assert_int_equal(get_count(c, 2), 1);
	assert_int_equal(get_count(c, 3), 1);
	assert_int_equal(get_count(c, 4), 0);
	/* A size of 2^63 or more counts nothing, as QEMU's int64_t size. */
	assert_int_equal(inc_refs(c, 0, UINT64_C(1) << 63), 0);
	assert_int_equal(get_count(c, 0), 0);
	teardown(f);
}

/* The COPIED bits survive a count moving into the side table. */
static void test_copied_bits_kept(void **state)
{
	struct fixture *f = setup(4, 8);
	struct checker *c = &f->c;

	(void)state;
	c->counts[5] |= CNT_COPIED;
	c->counts[6] |= CNT_NOT_COPIED;
	assert_int_equal(set_count(c, 5, 70000), 0);
	assert_int_equal(set_count(c, 6, 2), 0);
	assert_int_equal(get_count(c, 5), 70000);
	assert_int_equal(get_count(c, 6), 2);
	assert_true(c->counts[5] & CNT_COPIED);
	assert_false(c->counts[5] & CNT_NOT_COPIED);
	assert_true(c->counts[6] & CNT_NOT_COPIED);
	assert_int_equal(set_count(c, 5, 3), 0);
	assert_int_equal(get_count(c, 5), 3);
	assert_true(c->counts[5] & CNT_COPIED);
	teardown(f);
}

/* Thousands of big counts: the side table grows and loses none. */
static void test_side_table_grows(void **state)
{
	const uint64_t n = 5000;
	struct fixture *f = setup(5, n);
	struct checker *c = &f->c;

	(void)state;
	for (uint64_t k = 0; k < n; k++)
		assert_int_equal(set_count(c, k, 70000 + k), 0);
	for (uint64_t k = 0; k < n; k++)
		assert_int_equal(inc_refs(c, k * CS, CS), 0);
	assert_int_equal(c->big.n, n);
	for (uint64_t k = 0; k < n; k++)
		assert_int_equal(get_count(c, k), 70001 + k);
	assert_int_equal(c->res->nlines, 0);
	teardown(f);
}

/*
 * At the refcount width's maximum, one more reference is a corruption with
 * qemu-img's two lines, and the count stays at the maximum.  For every
 * refcount_order QEMU accepts (1 to 64 bits).
 */
static void test_overflow_of_refcount_width(void **state)
{
	(void)state;
	for (unsigned order = 0; order <= 6; order++) {
		struct fixture *f = setup(order, 8);
		struct checker *c = &f->c;
		unsigned bits = 1U << order;
		uint64_t max = bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;

		assert_int_equal(c->refcount_max, max);
		/* Up to 16 bits, counted one by one through the fast path. */
		if (bits > 16)
			assert_int_equal(set_count(c, 3, max - 1), 0);
		for (uint64_t n = bits > 16 ? max - 1 : 0; n < max; n++)
			assert_int_equal(inc_cluster(c, 3 * CS), 0);
		assert_int_equal(get_count(c, 3), max);
		assert_int_equal(c->res->corruptions, 0);

		assert_int_equal(inc_cluster(c, 3 * CS), 0);
		assert_int_equal(get_count(c, 3), max);
		assert_int_equal(c->res->corruptions, 1);
		/* qemu-img's two lines, kept as one so that they repeat
		 * together. */
		assert_int_equal(c->res->nlines, 1);
		assert_string_equal(c->res->lines[0].text,
				    "ERROR: overflow cluster offset=0x30000\n"
				    "Use qemu-img amend to increase the refcount entry width or qemu-img convert to create a clean copy if the image cannot be opened for writing");
		teardown(f);
	}
}

/*
 * A table shared by 4 snapshots (0, 2, 5, 7) is counted once for all:
 * MULT references at a time.  With 2-bit refcounts and one reference
 * already, the third and fourth snapshots' references overflow, and each
 * of them gets its line, at its own place.
 */
static void test_shared_table_overflow(void **state)
{
	struct fixture *f = setup(1, 8);
	struct checker *c = &f->c;
	uint32_t next[8] = { 2, 1, 5, 3, 4, 7, 6, 7 };
	const uint64_t k0 = (uint64_t)ST_SNAPSHOTS << 32;

	(void)state;
	assert_int_equal(inc_cluster(c, 3 * CS), 0);
	c->next_member = next;
	c->mult = 4;
	set_key(c, k0 | 0, 1, 5);
	assert_int_equal(inc_cluster(c, 3 * CS), 0);
	assert_int_equal(get_count(c, 3), 3);
	assert_int_equal(c->res->corruptions, 2);
	assert_int_equal(c->res->nlines, 2);
	assert_int_equal(c->res->lines[0].key[0], k0 | 5);
	assert_int_equal(c->res->lines[1].key[0], k0 | 7);
	for (int i = 0; i < 2; i++) {
		assert_true(c->res->lines[i].own);
		assert_int_equal(c->res->lines[i].repeat, 1);
		assert_int_equal(c->res->lines[i].key[1], 1);
		assert_int_equal(c->res->lines[i].key[2], 5);
	}
	/* A corruption of the shared table counts once per snapshot. */
	assert_int_equal(corrupt(c, "ERROR shared"), 0);
	assert_int_equal(c->res->corruptions, 6);
	assert_false(c->res->lines[2].own);
	c->next_member = NULL;	/* the fixture's, not the checker's */
	teardown(f);
}

/* Lines' texts are kept in chunks of 64 KB: each text stays whole and
 * apart from the next across the chunks' ends, and one longer than 511
 * bytes is cut there, as vsnprintf() cut it into a buffer of 512. */
static void test_line_texts_across_chunks(void **state)
{
	struct fixture *f = setup(4, 4);
	struct checker *c = &f->c;
	char want[600];
	const int n = 3000;

	(void)state;
	for (int i = 0; i < n; i++)
		assert_int_equal(add_line(c, "ERROR line %d %.*s", i, i % 300,
					  LONG_X), 0);
	assert_int_equal(add_line(c, "%s%s", LONG_X, LONG_X), 0);
	assert_int_equal(c->res->nlines, (size_t)n + 1);
	for (int i = 0; i < n; i++) {
		snprintf(want, sizeof(want), "ERROR line %d %.*s", i, i % 300,
			 LONG_X);
		assert_string_equal(c->res->lines[i].text, want);
		assert_int_equal(c->res->lines[i].seq, i);
	}
	assert_int_equal(strlen(c->res->lines[n].text), 511);
	teardown(f);
}

/* Less than a cluster past the end of the file counts (a semi-allocated
 * last cluster); a cluster or more is a corruption. */
static void test_reference_past_end(void **state)
{
	struct fixture *f = setup(4, 4);
	struct checker *c = &f->c;

	(void)state;
	f->img.file_size = 4 * CS + 512;
	assert_int_equal(inc_refs(c, 4 * CS, CS), 0);
	assert_true(c->nb_clusters >= 5);
	assert_int_equal(get_count(c, 4), 1);
	assert_int_equal(c->res->corruptions, 0);

	assert_int_equal(inc_refs(c, 5 * CS, CS), 0);
	assert_int_equal(get_count(c, 5), 0);
	assert_int_equal(c->res->corruptions, 1);
	assert_int_equal(c->res->nlines, 1);
	assert_string_equal(c->res->lines[0].text,
			    "ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x50000 size 0x10000");
	teardown(f);
}

/* Past INT64_MAX (and, as an int64_t, before the end of the file) QEMU
 * cannot allocate its array: the check gives up, and keeps the first
 * reason however often it happens. */
static void test_reference_past_int64(void **state)
{
	struct fixture *f = setup(4, 4);
	struct checker *c = &f->c;
	const char *why;

	(void)state;
	assert_int_equal(inc_refs(c, UINT64_C(0xfffffffffffe0000), CS), 0);
	assert_int_equal(c->res->check_errors, 1);
	assert_non_null(c->res->incomplete);
	why = c->res->incomplete;
	assert_int_equal(give_up(c, &c->res->check_errors, "another reason"), 0);
	assert_int_equal(c->res->check_errors, 2);
	assert_ptr_equal(c->res->incomplete, why);
	assert_int_equal(c->res->corruptions, 0);
	teardown(f);
}

/*
 * A cluster's overflow lines are kept in OVERFLOW_LINES_MAX records; the
 * overflows past them are counted, all corruptions still, and get one
 * line at the first (overflow_summaries()).  Past OVERFLOW_LINES_ALL
 * records in all, a cluster with none yet is counted with the others.
 */
static void test_overflow_lines_bounded(void **state)
{
	struct fixture *f = setup(0, 8);
	struct checker *c = &f->c;
	const uint64_t k0 = (uint64_t)ST_ACTIVE << 32;
	const struct q2e_check_line *l;

	(void)state;
	assert_int_equal(inc_cluster(c, 3 * CS), 0);
	for (uint64_t i = 1; i <= OVERFLOW_LINES_MAX + 10; i++) {
		set_key(c, k0, i + 1, 0);
		assert_int_equal(inc_cluster(c, 3 * CS), 0);
	}
	assert_int_equal(c->res->corruptions, OVERFLOW_LINES_MAX + 10);
	assert_int_equal(c->res->nlines, OVERFLOW_LINES_MAX);
	assert_int_equal(c->res->lines[OVERFLOW_LINES_MAX - 1].key[1],
			 OVERFLOW_LINES_MAX + 1);
	/* A cluster first past OVERFLOW_LINES_ALL: the others' count. */
	c->ovf.kept = OVERFLOW_LINES_ALL;
	set_key(c, k0, 7, 3);
	assert_int_equal(inc_cluster(c, 5 * CS), 0);
	assert_int_equal(inc_cluster(c, 5 * CS), 0);
	set_key(c, k0, 7, 2);
	assert_int_equal(inc_cluster(c, 5 * CS), 0);
	assert_int_equal(c->res->corruptions, OVERFLOW_LINES_MAX + 12);
	assert_int_equal(c->res->nlines, OVERFLOW_LINES_MAX);

	assert_int_equal(overflow_summaries(c), 0);
	assert_int_equal(c->res->nlines, OVERFLOW_LINES_MAX + 2);
	l = &c->res->lines[OVERFLOW_LINES_MAX];
	assert_string_equal(l->text, "ERROR 10 more refcount overflows of cluster offset=0x30000, the first here (qemu-img prints its overflow line and advice for each)");
	assert_int_equal(l->key[0], k0);
	assert_int_equal(l->key[1], OVERFLOW_LINES_MAX + 2);
	assert_int_equal(l->key[2], 0);
	assert_true(l->own);
	l++;
	assert_string_equal(l->text, "ERROR 2 more refcount overflows of other clusters, the first here, of cluster offset=0x50000 (qemu-img prints its overflow line and advice for each)");
	assert_int_equal(l->key[1], 7);
	assert_int_equal(l->key[2], 2);
	teardown(f);
}

/* A walk whose lines are an earlier walk's again is one echo record,
 * which prints them again: its overflow lines stay charged to the bound
 * on them, which counts lines printed, not records. */
static void test_overflow_lines_echoed(void **state)
{
	struct fixture *f = setup(0, 320);
	struct checker *c = &f->c;
	const uint64_t k0 = (uint64_t)ST_ACTIVE << 32;
	struct walk_lines src, now;
	struct line_mark m;
	bool echoed;

	(void)state;
	assert_int_equal(inc_cluster(c, 3 * CS), 0);
	assert_int_equal(inc_cluster(c, 4 * CS), 0);
	for (uint64_t w = 1; w <= 3; w++) {
		mark_lines(c, &m);
		for (uint64_t j = 0; j < 4; j++) {
			set_key(c, k0, w + 1, j + 1);
			assert_int_equal(inc_cluster(c, (3 + j % 2) * CS), 0);
		}
		if (w == 1) {
			lines_since(c, &m, &src);
			assert_int_equal(src.count, 4);
			continue;
		}
		assert_int_equal(echo_walk(c, &m, &src, &echoed), 0);
		assert_true(echoed);
		lines_since(c, &m, &now);
		assert_int_equal(now.count, 1);
	}
	assert_int_equal(c->res->nlines, 6);
	assert_int_equal(c->res->corruptions, 12);
	/* 4 lines, and 4 again in the echo of each of the two walks after. */
	assert_int_equal(c->ovf.kept, 12);
	/* 300 more clusters overflow (the table of them grows), then the
	 * walk again. */
	for (uint64_t k = 10; k < 310; k++) {
		set_key(c, k0, 100, k);
		assert_int_equal(inc_cluster(c, k * CS), 0);
		assert_int_equal(inc_cluster(c, k * CS), 0);
	}
	assert_int_equal(c->ovf.kept, 312);
	mark_lines(c, &m);
	for (uint64_t j = 0; j < 4; j++) {
		set_key(c, k0, 200, j + 1);
		assert_int_equal(inc_cluster(c, (3 + j % 2) * CS), 0);
	}
	assert_int_equal(echo_walk(c, &m, &src, &echoed), 0);
	assert_true(echoed);
	assert_int_equal(c->ovf.kept, 316);
	assert_int_equal(c->res->nlines, 307);
	teardown(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_past_inline_limit),
		cmocka_unit_test(test_range_counts_each_cluster),
		cmocka_unit_test(test_copied_bits_kept),
		cmocka_unit_test(test_side_table_grows),
		cmocka_unit_test(test_overflow_of_refcount_width),
		cmocka_unit_test(test_shared_table_overflow),
		cmocka_unit_test(test_reference_past_end),
		cmocka_unit_test(test_reference_past_int64),
		cmocka_unit_test(test_line_texts_across_chunks),
		cmocka_unit_test(test_overflow_lines_bounded),
		cmocka_unit_test(test_overflow_lines_echoed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The writer of check's per-cluster lines (src/check/check_lines.c): the
 * lines of an L1 table that snapshots share, counted once, come out once
 * per snapshot at its place, as qemu-img prints them, merged with each
 * snapshot's own lines; past a bound, once, with a line that says so.
 * Alike lines in a row of one walk come out in full, however many, and a
 * walk whose lines are an earlier walk's again, kept as one record, comes
 * out as that walk's lines again.
 */
#include <inttypes.h>
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

#define SNAP ((uint64_t)ST_SNAPSHOTS << 32)

struct lines {
	struct q2e_check_result res;
	uint32_t leader[8];
	struct q2e_check_line line[8];
};

/* A line; REPEAT copies standing for snapshots sharing a table, as
 * add_repeated_line() makes them, unless ALIKE (alike lines in a row of
 * one table's walk, merged by add_vline()). */
static void put_line(struct lines *l, uint64_t k0, uint64_t k1, uint64_t k2,
		     bool own, uint64_t repeat, bool alike, const char *text)
{
	struct q2e_check_line *x = &l->line[l->res.nlines];

	*x = (struct q2e_check_line){ .key = { k0, k1, k2 },
				      .seq = l->res.nlines, .own = own,
				      .repeat = repeat,
				      .shared = repeat > 1 && !alike,
				      .text = (char *)text };
	l->res.nlines++;
}

static void add(struct lines *l, uint64_t k0, uint64_t k1, uint64_t k2,
		bool own, uint64_t repeat, const char *text)
{
	put_line(l, k0, k1, k2, own, repeat, false, text);
}

/* What q2e_check_write_lines() writes for L; free() it. */
static char *written(struct lines *l)
{
	struct q2e_error err = { 0 };
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	assert_non_null(fp);
	l->res.lines = l->line;
	l->res.snapshot_leader = l->leader;
	assert_int_equal(q2e_check_write_lines(&l->res, fp, &err), 0);
	fclose(fp);
	return buf;
}

/* Snapshots 0 and 2 share an L1 table, counted with 0; 1 has its own. */
static void test_shared_lines_at_each_place(void **state)
{
	struct lines l = { .res.nsnapshots = 3, .leader = { 0, 1, 0 } };
	char *out;

	(void)state;
	/* In key order, as q2e_check_run() leaves them. */
	add(&l, (uint64_t)ST_ACTIVE << 32, 1, 0, false, 1, "active");
	add(&l, SNAP | 0, 0, 0, true, 1, "own of 0");
	add(&l, SNAP | 0, 1, 0, false, 1, "table 1");
	add(&l, SNAP | 0, 2, 0, false, 1, "table 2");
	add(&l, SNAP | 1, 1, 0, false, 1, "other");
	add(&l, SNAP | 2, 1, 5, true, 1, "own of 2");
	add(&l, (uint64_t)ST_COMPARE << 32, 0, 0, false, 2, "leak");
	out = written(&l);
	assert_string_equal(out, "active\n"
			    "own of 0\ntable 1\ntable 2\n"
			    "other\n"
			    "table 1\nown of 2\ntable 2\n"
			    "leak\nleak\n");
	free(out);
}

/* Copies past 100,000 lines: the table's lines once, and a line saying
 * how often they repeat; a line repeated past it likewise. */
static void test_bounded_copies(void **state)
{
	struct lines l = { .res.nsnapshots = 2, .leader = { 0, 0 } };
	char *out;

	(void)state;
	add(&l, SNAP | 0, 1, 0, false, 200000, "entry");
	add(&l, SNAP | 1, 3, 0, true, 1, "own of 1");
	out = written(&l);
	assert_string_equal(out, "entry\n"
			    "qcow2elf: the line above repeats 199999 more times\n"
			    "qcow2elf: the lines of snapshot 0's L1 table above repeat for each of the 1 other snapshots sharing it\n"
			    "own of 1\n");
	free(out);
}

/* Alike lines in a row of one walk, however many: each written, as
 * qemu-img writes them (4 million refcount overflows of a shared L2). */
static void test_alike_lines_in_full(void **state)
{
	struct lines l = { .res.nsnapshots = 0 };
	char *out, *p;
	size_t n = 0;

	(void)state;
	put_line(&l, (uint64_t)ST_ACTIVE << 32, 1, 0, false, 150001, true,
		 "ERROR: overflow");
	add(&l, (uint64_t)ST_COMPARE << 32, 0, 0, false, 1, "last");
	out = written(&l);
	for (p = out; (p = strstr(p, "ERROR: overflow\n")) != NULL; p++)
		n++;
	assert_int_equal(n, 150001);
	assert_null(strstr(out, "repeats"));
	assert_string_equal(out + strlen(out) - 5, "last\n");
	free(out);
}

/* Lines of L1 entry I's walk: TEXTS at entries 3 (twice, alike) and 7,
 * added by the checker as a walk adds them; the mark before them. */
static void walk(struct checker *c, uint64_t i, const char *const *texts,
		 struct line_mark *m)
{
	const uint64_t k0 = (uint64_t)ST_ACTIVE << 32;

	set_key(c, k0, i, 0);
	assert_int_equal(add_line(c, "entry %u", (unsigned)i), 0);
	mark_lines(c, m);
	set_key(c, k0, i, 3);
	assert_int_equal(add_line(c, "%s", texts[0]), 0);
	assert_int_equal(add_line(c, "%s", texts[0]), 0);
	set_key(c, k0, i, 7);
	assert_int_equal(add_line(c, "%s", texts[1]), 0);
}

static void test_echoed_walk(void **state)
{
	static const char *const same[] = { "x", "y" }, *const other[] = {
		"x", "z" };
	struct q2e_image img = { 0 };
	struct q2e_error err = { 0 };
	struct checker c;
	struct line_mark m;
	struct walk_lines first;
	bool echoed;
	char *buf = NULL;
	size_t len = 0;
	FILE *fp;

	(void)state;
	check_fixture_init(&img, &c, &err, 16, 4, 8);
	walk(&c, 1, same, &m);
	lines_since(&c, &m, &first);
	assert_int_equal(first.count, 2);	/* "x" twice is one record */
	assert_int_equal(first.lines, 3);
	walk(&c, 2, same, &m);
	assert_int_equal(echo_walk(&c, &m, &first, &echoed), 0);
	assert_true(echoed);
	assert_int_equal(c.res->nlines, 5);	/* the walk's two became one */
	walk(&c, 3, other, &m);
	assert_int_equal(echo_walk(&c, &m, &first, &echoed), 0);
	assert_false(echoed);
	assert_int_equal(c.res->nlines, 8);
	fp = open_memstream(&buf, &len);
	assert_non_null(fp);
	assert_int_equal(q2e_check_write_lines(c.res, fp, &err), 0);
	fclose(fp);
	assert_string_equal(buf, "entry 1\nx\nx\ny\n"
				 "entry 2\nx\nx\ny\n"
				 "entry 3\nx\nx\nz\n");
	free(buf);
	checker_release(&c);
}

/* Past LINES_KEPT_BYTES the checker keeps no more lines: the lines kept
 * are written, then one saying the rest were left out. */
static void test_lines_kept_at_most(void **state)
{
	struct q2e_image img = { 0 };
	struct q2e_error err = { 0 };
	struct checker c;
	char *buf = NULL, *last;
	size_t len = 0, n = 0, kept;
	FILE *fp;

	(void)state;
	check_fixture_init(&img, &c, &err, 16, 4, 8);
	for (uint64_t i = 0; !c.res->lines_cut; i++) {
		set_key(&c, (uint64_t)ST_ACTIVE << 32, i + 1, 0);
		assert_int_equal(corrupt(&c, "entry %" PRIu64, i), 0);
		assert_true(i < LINES_KEPT_BYTES / sizeof(*c.res->lines));
	}
	kept = c.res->nlines;
	for (uint64_t i = 0; i < 10; i++)
		assert_int_equal(corrupt(&c, "entry %" PRIu64, i + kept + 1), 0);
	assert_int_equal(c.res->nlines, kept);
	assert_int_equal(c.res->corruptions, kept + 11);
	fp = open_memstream(&buf, &len);
	assert_non_null(fp);
	assert_int_equal(q2e_check_write_lines(c.res, fp, &err), 0);
	fclose(fp);
	for (size_t i = 0; i < len; i++)	/* not strstr(): ASan's is
						 * quadratic here */
		n += buf[i] == '\n';
	assert_int_equal(n, kept + 1);
	assert_int_equal(strncmp(buf, "entry 0\nentry 1\n", 16), 0);
	buf[len - 1] = '\0';
	last = strrchr(buf, '\n') + 1;
	assert_non_null(strstr(last, "more lines than check keeps"));
	free(buf);
	checker_release(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shared_lines_at_each_place),
		cmocka_unit_test(test_alike_lines_in_full),
		cmocka_unit_test(test_bounded_copies),
		cmocka_unit_test(test_echoed_walk),
		cmocka_unit_test(test_lines_kept_at_most),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

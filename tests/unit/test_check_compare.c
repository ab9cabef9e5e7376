/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * check's comparison of the stored refcounts with the counted references
 * (compare_block() in src/check/compare.c): leaks and corruptions with
 * qemu-img's lines, for every refcount width from 1 to 64 bits, and the
 * vectorised path for 16-bit refcounts, which must never let a difference
 * through, whatever its position in the block; and a refcount block kept
 * as bits (read beside an L2 table), which must compare as the block.
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

/* 512-byte clusters: a block holds 4,096 1-bit to 64 64-bit refcounts. */
#define CBITS 9
#define CS (UINT64_C(1) << CBITS)

struct fixture {
	struct q2e_image img;
	struct checker c;
	struct q2e_error err;
	uint8_t block[CS];
};

static struct fixture *setup(unsigned refcount_order, uint64_t nclusters)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	check_fixture_init(&f->img, &f->c, &f->err, CBITS, refcount_order,
			   nclusters);
	return f;
}

static void teardown(struct fixture *f)
{
	checker_release(&f->c);
	free(f);
}

/* Entry I of a refcount block, as the QCOW2 spec lays it out: below 8 bits
 * from the low bits of each byte up, else big-endian. */
static void put_refcount(uint8_t *block, unsigned order, uint64_t i,
			 uint64_t v)
{
	unsigned bits = 1U << order;

	if (bits < 8) {
		unsigned shift = (unsigned)(i * bits % 8);

		block[i * bits / 8] &= (uint8_t)~(((1U << bits) - 1) << shift);
		block[i * bits / 8] |= (uint8_t)(v << shift);
		return;
	}
	for (unsigned b = 0; b < bits / 8; b++)
		block[i * bits / 8 + b] = (uint8_t)(v >> (bits - 8 - 8 * b));
}

static void count(struct checker *c, uint64_t k, uint64_t n)
{
	assert_int_equal(set_count(c, k, n), 0);
}

/* The lines C's result writes, as qemu-img check prints them (freed at
 * the next call).  The lines of compared clusters are made as they are
 * written, from the counts, which the checker lends. */
static const char *written(struct checker *c)
{
	static char *text;
	size_t len = 0;
	struct q2e_error err = { 0 };
	FILE *fp;

	free(text);
	text = NULL;
	fp = open_memstream(&text, &len);
	assert_non_null(fp);
	keep_counts(c, false);
	assert_int_equal(q2e_check_write_lines(c->res, fp, &err), 0);
	assert_int_equal(fclose(fp), 0);
	return text;
}

/*
 * Clusters 0..9: cluster 2 stored above its references (a leak), cluster 5
 * below (a corruption), cluster 7 at the width's maximum and referenced as
 * often, the rest equal.  Every width from 1 to 64 bits.
 */
static void test_leaks_and_corruptions_every_width(void **state)
{
	(void)state;
	for (unsigned order = 0; order <= 6; order++) {
		struct fixture *f = setup(order, 10);
		struct checker *c = &f->c;
		uint64_t max = c->refcount_max, highest = 0;

		for (uint64_t k = 0; k < 10; k++) {
			uint64_t n = k == 7 ? max : k % 2;

			count(c, k, n);
			put_refcount(f->block, order, k, n);
		}
		put_refcount(f->block, order, 2, 1);	/* counted 0 */
		put_refcount(f->block, order, 5, 0);	/* counted 1 */
		assert_int_equal(qcow2_refcount_get(f->block, CS, order, 7), max);

		assert_int_equal(compare_block(c, f->block, 0, 10, &highest), 0);
		assert_int_equal(c->res->leaks, 1);
		assert_int_equal(c->res->corruptions, 1);
		assert_string_equal(written(c),
				    "Leaked cluster 2 refcount=1 reference=0\n"
				    "ERROR cluster 5 refcount=0 reference=1\n");
		assert_int_equal(highest, 9);
		assert_false(c->block_agreed);
		teardown(f);
	}
}

/* With no refcount block, every referenced cluster is a corruption. */
static void test_missing_block(void **state)
{
	struct fixture *f = setup(4, 6);
	struct checker *c = &f->c;
	uint64_t highest = 0;

	(void)state;
	count(c, 1, 1);
	count(c, 4, 3);
	assert_int_equal(compare_block(c, NULL, 0, 6, &highest), 0);
	assert_int_equal(c->res->corruptions, 2);
	assert_int_equal(c->res->leaks, 0);
	assert_string_equal(written(c),
			    "ERROR cluster 1 refcount=0 reference=1\n"
			    "ERROR cluster 4 refcount=0 reference=3\n");
	assert_int_equal(highest, 4);
	teardown(f);
}

/*
 * 16-bit refcounts go through the vectorised comparison first.  One
 * stored refcount off by one, at every position of a range whose length
 * is not a multiple of the four lanes, must come out as exactly one line.
 */
static void test_vector_path_misses_nothing(void **state)
{
	const uint64_t n = 255;

	(void)state;
	for (uint64_t bad = 0; bad < n; bad++) {
		for (int leak = 0; leak <= 1; leak++) {
			struct fixture *f = setup(4, n);
			struct checker *c = &f->c;
			uint64_t highest = 0;
			char want[96];

			for (uint64_t k = 0; k < n; k++) {
				count(c, k, 1);
				put_refcount(f->block, 4, k, 1);
			}
			put_refcount(f->block, 4, bad, leak ? 2 : 0);
			assert_int_equal(compare_block(c, f->block, 0, n, &highest), 0);
			if (leak)
				snprintf(want, sizeof(want),
					 "Leaked cluster %" PRIu64 " refcount=2 reference=1\n", bad);
			else
				snprintf(want, sizeof(want),
					 "ERROR cluster %" PRIu64 " refcount=0 reference=1\n", bad);
			assert_string_equal(written(c), want);
			assert_int_equal(c->res->leaks, leak);
			assert_int_equal(c->res->corruptions, !leak);
			assert_int_equal(highest, n - 1);
			/* check_copied() must read this block again. */
			assert_false(c->block_agreed);
			teardown(f);
		}
	}
}

/* A block that agrees takes the fast path and still gives the last
 * cluster in use; a range starting mid-image reads from its own start. */
static void test_vector_path_agrees(void **state)
{
	struct fixture *f = setup(4, 300);
	struct checker *c = &f->c;
	uint64_t highest = 0;

	(void)state;
	for (uint64_t k = 0; k < 37; k++) {
		count(c, 256 + k, k % 3);
		put_refcount(f->block, 4, k, k % 3);
	}
	assert_int_equal(compare_block(c, f->block, 256, 300, &highest), 0);
	assert_int_equal(c->res->nlines, 0);
	assert_int_equal(highest, 256 + 35);	/* 36 % 3 == 0 */
	assert_false(c->copied_suspect);
	assert_true(c->block_agreed);
	teardown(f);
}

/*
 * Counts of 63 and above are not inline: the vectorised path must hand
 * them to the exact comparison, which reads the dense tier or, from
 * 65,535, the side table.
 */
static void test_big_counts_16bit(void **state)
{
	struct fixture *f = setup(4, 8);
	struct checker *c = &f->c;
	uint64_t highest = 0;

	(void)state;
	count(c, 0, 16383);
	put_refcount(f->block, 4, 0, 16383);
	count(c, 1, 20000);
	put_refcount(f->block, 4, 1, 20000);
	count(c, 2, 20000);
	put_refcount(f->block, 4, 2, 16383);
	count(c, 3, 65535);
	put_refcount(f->block, 4, 3, 65535);
	assert_int_equal(compare_block(c, f->block, 0, 8, &highest), 0);
	assert_string_equal(written(c),
			    "ERROR cluster 2 refcount=16383 reference=20000\n");
	assert_int_equal(highest, 3);
	teardown(f);

	/* Alone in its block, a big count stored as 16,383 still shows,
	 * wherever it is among the lanes. */
	for (uint64_t k = 0; k < 40; k += 7) {
		f = setup(4, 40);
		c = &f->c;
		count(c, k, 20000);
		put_refcount(f->block, 4, k, 16383);
		assert_int_equal(compare_block(c, f->block, 0, 40, &highest), 0);
		assert_int_equal(c->res->corruptions, 1);
		teardown(f);
	}
}

/*
 * Counts on each side of every tier's edge (the byte's 63, the dense
 * tier's 65,535) and at the refcount width's maximum, reached one
 * reference at a time as the walk reaches them: stored equal, they agree;
 * one below, a corruption; one above, a leak, with qemu-img's numbers.
 */
static void test_tier_edges_compare(void **state)
{
	static const uint64_t edges[] = { 62, 63, 64, 255, 256, 65534, 65535,
					  65536, 70000 };

	(void)state;
	for (unsigned order = 4; order <= 6; order++) {
		for (int d = -1; d <= 1; d++) {
			struct fixture *f = setup(order, 16);
			struct checker *c = &f->c;
			uint64_t max = c->refcount_max, highest = 0, n = 0;
			uint64_t want[16];
			char lines[16 * 128];

			for (size_t e = 0; e <= 9 && e < 16; e++) {
				uint64_t v = e < 9 ? edges[e] : max;

				if (v > max || (d > 0 && v == max))
					continue;
				/* Three short, then counted. */
				count(c, e, v - 3);
				for (int t = 0; t < 3; t++)
					assert_int_equal(inc_refs(c, e * CS, CS), 0);
				assert_int_equal(get_count(c, e), v);
				put_refcount(f->block, order, e, v + (uint64_t)(int64_t)d);
				want[n++] = e;
			}
			assert_int_equal(c->res->corruptions, 0);
			assert_int_equal(compare_block(c, f->block, 0, 16, &highest), 0);
			assert_int_equal(c->res->leaks, d > 0 ? n : 0);
			assert_int_equal(c->res->corruptions, d < 0 ? n : 0);
			assert_int_equal(c->block_agreed, d == 0);
			lines[0] = '\0';
			for (uint64_t i = 0, at = 0; d && i < n; i++) {
				uint64_t v = get_count(c, want[i]);

				at += (size_t)snprintf(lines + at, sizeof(lines) - at, d > 0
					 ? "Leaked cluster %" PRIu64 " refcount=%" PRIu64 " reference=%" PRIu64 "\n"
					 : "ERROR cluster %" PRIu64 " refcount=%" PRIu64 " reference=%" PRIu64 "\n",
					 want[i], v + (uint64_t)(int64_t)d, v);
			}
			assert_string_equal(written(c), lines);
			assert_int_equal(highest, want[n - 1]);
			teardown(f);
		}
	}
}

/*
 * The COPIED bits counted with the references: an entry with COPIED on a
 * cluster whose refcount is not 1, or without it on one whose refcount is
 * 1, makes the COPIED stage read the L2 tables again.  Both widths paths,
 * and for 16 bits, the cluster at three places among the lanes.
 */
static void test_copied_suspect(void **state)
{
	static const struct {
		uint16_t flag;
		uint64_t stored;
		bool suspect;
	} cases[] = {
		{ CNT_COPIED, 1, false },
		{ CNT_COPIED, 2, true },
		{ CNT_NOT_COPIED, 2, false },
		{ CNT_NOT_COPIED, 1, true },
	};

	(void)state;
	for (unsigned order = 3; order <= 5; order++) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]) * 3; i++) {
			struct fixture *f = setup(order, 40);
			struct checker *c = &f->c;
			uint64_t highest = 0, k = 6 + 11 * (i / 4);

			count(c, k, cases[i % 4].stored);
			c->counts[k] |= cases[i % 4].flag;
			put_refcount(f->block, order, k, cases[i % 4].stored);
			assert_int_equal(compare_block(c, f->block, 0, 40, &highest), 0);
			assert_int_equal(c->res->nlines, 0);
			assert_int_equal(c->copied_suspect, cases[i % 4].suspect);
			/* Counts and refcounts agree: check_copied() takes the
			 * counts rather than reading the block again. */
			assert_true(c->block_agreed);
			teardown(f);
		}
	}
}

/*
 * A refcount block read beside an L2 table is kept as bits when its
 * refcounts are all 0 or 1 (keep_refblock()), and compare_refcounts()
 * takes it from there without reading: the image has no byte source, so
 * a read would fail.  Every refcount must come back as it was: a pattern
 * of 0 and 1 compared with the same counts gives no line, and one leak
 * and one corruption give their lines.
 */
static void test_kept_block(void **state)
{
	const uint64_t n = CS / 2;
	uint64_t reftable[1] = { 8 * CS }, highest = 0;
	struct q2e_owner owner = { Q2E_OWNER_IMAGE, 0, 0 };
	struct q2e_region r = {
		.kind = Q2E_REGION_REFCOUNT_BLOCK, .offset = 8 * CS, .size = CS,
		.avail = CS, .nowners = 1, .owners = &owner,
	};
	const struct q2e_region *by_index[2] = { &r, NULL };

	(void)state;
	for (int damaged = 0; damaged <= 2; damaged++) {
		struct fixture *f = setup(4, n);
		struct checker *c = &f->c;
		char want[64 * 48] = "";

		f->img.reftable = reftable;
		f->img.nreftable = 1;
		c->refblock = malloc(sizeof(by_index));
		assert_non_null(c->refblock);
		memcpy(c->refblock, by_index, sizeof(by_index));
		c->nrefblock = 1;
		for (uint64_t k = 0; k < n; k++) {
			uint64_t v = (k * 7 + k / 5) % 3 == 0;

			put_refcount(f->block, 4, k, v);
			count(c, k, v);
		}
		if (damaged == 1) {
			put_refcount(f->block, 4, 3, 1);
			count(c, 3, 0);
			put_refcount(f->block, 4, 200, 0);
			count(c, 200, 1);
			strcpy(want, "Leaked cluster 3 refcount=1 reference=0\n"
			       "ERROR cluster 200 refcount=0 reference=1\n");
		}
		/* Many wrong: the block is kept, and the lines made from it. */
		for (uint64_t k = 100; damaged == 2 && k < 140; k++) {
			uint64_t v = (k * 7 + k / 5) % 3 == 0;

			count(c, k, !v);
			snprintf(want + strlen(want), sizeof(want) - strlen(want),
				 "%s cluster %" PRIu64 " refcount=%" PRIu64
				 " reference=%" PRIu64 "\n", v ? "Leaked" : "ERROR",
				 k, v, (uint64_t)!v);
		}
		assert_int_equal(keep_refblock(c, &r, f->block), 0);
		assert_non_null(c->kept_slot);
		assert_int_equal(c->kept_slot[0], 1);
		assert_int_equal(compare_refcounts(c, &highest), 0);
		/* a line each for two, one record for forty */
		assert_int_equal(c->res->nlines, damaged == 1 ? 2 : damaged == 2);
		assert_string_equal(written(c), want);
		assert_int_equal(c->agrees[0], !damaged);
		f->img.reftable = NULL;
		teardown(f);
	}
}

/*
 * A kept block whose counts agree, compared from its bits: a COPIED bit
 * that disagrees with its refcount, at any place in the block, makes the
 * COPIED check read the L2 tables again, and the last cluster in use is
 * the image's end, wherever it is.
 */
static void test_kept_block_copied_and_highest(void **state)
{
	const uint64_t n = CS / 2;
	const uint64_t places[] = { 0, 1, 15, 16, 17, 100, n - 2, n - 1 };
	uint64_t reftable[1] = { 8 * CS };
	struct q2e_owner owner = { Q2E_OWNER_IMAGE, 0, 0 };
	struct q2e_region r = {
		.kind = Q2E_REGION_REFCOUNT_BLOCK, .offset = 8 * CS, .size = CS,
		.avail = CS, .nowners = 1, .owners = &owner,
	};

	(void)state;
	for (size_t p = 0; p < sizeof(places) / sizeof(places[0]); p++) {
		for (int wrong = 0; wrong <= 2; wrong++) {
			struct fixture *f = setup(4, n);
			struct checker *c = &f->c;
			uint64_t at = places[p], highest = 0;

			f->img.reftable = reftable;
			f->img.nreftable = 1;
			c->refblock = calloc(2, sizeof(*c->refblock));
			assert_non_null(c->refblock);
			c->refblock[0] = &r;
			c->nrefblock = 1;
			/* In use up to AT, each with the right COPIED bit. */
			for (uint64_t k = 0; k <= at; k++) {
				uint64_t v = k == at || k % 3 != 0;

				put_refcount(f->block, 4, k, v);
				count(c, k, v);
				if (v)
					c->counts[k] |= CNT_COPIED;
			}
			/* 1: an entry without COPIED maps a cluster of
			 * refcount 1; 2: one with COPIED, a free cluster. */
			if (wrong == 1)
				c->counts[at] = 1 | CNT_NOT_COPIED;
			if (wrong == 2 && at > 0 && (at - 1) % 3 == 0)
				c->counts[at - 1] |= CNT_COPIED;
			else if (wrong == 2)
				c->counts[at + 1 < n ? at + 1 : 0] |= CNT_COPIED;
			assert_int_equal(keep_refblock(c, &r, f->block), 0);
			assert_int_equal(c->kept_slot[0], 1);
			assert_int_equal(compare_refcounts(c, &highest), 0);
			assert_int_equal(c->res->nlines, 0);
			assert_int_equal(c->agrees[0], 1);
			assert_int_equal(highest, at);
			if (c->copied_suspect != (wrong != 0))
				fail_msg("place %llu, case %d: copied_suspect %d",
					 (unsigned long long)at, wrong,
					 c->copied_suspect);
			f->img.reftable = NULL;
			teardown(f);
		}
	}
}

/* A block with any refcount above 1, wherever it is, is not kept: it is
 * read again. */
static void test_block_not_kept(void **state)
{
	struct q2e_owner owner = { Q2E_OWNER_IMAGE, 0, 0 };
	struct q2e_region r = {
		.kind = Q2E_REGION_REFCOUNT_BLOCK, .offset = 8 * CS, .size = CS,
		.avail = CS, .nowners = 1, .owners = &owner,
	};
	struct fixture *f = setup(4, CS / 2);
	struct checker *c = &f->c;

	(void)state;
	c->refblock = calloc(2, sizeof(*c->refblock));
	assert_non_null(c->refblock);
	c->refblock[0] = &r;
	c->nrefblock = 1;
	for (uint64_t i = 0; i < CS / 2; i++) {
		for (uint64_t v = 2; v <= 0x100; v += 0xfe) {	/* 2, 256 */
			memset(f->block, 0, sizeof(f->block));
			put_refcount(f->block, 4, i, v);
			assert_int_equal(keep_refblock(c, &r, f->block), 0);
			assert_true(!c->kept_slot || !c->kept_slot[0]);
			assert_int_equal(c->nkept, 0);
		}
	}
	teardown(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_leaks_and_corruptions_every_width),
		cmocka_unit_test(test_missing_block),
		cmocka_unit_test(test_vector_path_misses_nothing),
		cmocka_unit_test(test_vector_path_agrees),
		cmocka_unit_test(test_big_counts_16bit),
		cmocka_unit_test(test_tier_edges_compare),
		cmocka_unit_test(test_copied_suspect),
		cmocka_unit_test(test_kept_block),
		cmocka_unit_test(test_block_not_kept),
		cmocka_unit_test(test_kept_block_copied_and_highest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

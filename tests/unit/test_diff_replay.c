/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diff's digests (src/view/diff_runs.c, diff_pairs.c): entries that name
 * one pair of tables are given the digest of its steps in place of their
 * steps, and must make what their steps make.  So a new image whose L1
 * and refcount table name one table many times is compared with an image
 * that names a copy of it each time (pairs of one owner each, stepped
 * through as before): the changes, their counts and the ranges of the L2
 * tables and the refcount blocks must be the same, whole or cut short.
 *
 * The images, 512-byte clusters (64 L2 entries, 256 refcounts a block),
 * a file of FILE_CLUSTERS clusters, 16 L1 entries the last of which ends
 * past the guest's end:
 *   cluster 0        header
 *   cluster 1        refcount table: [0] block at cluster 2, [1..3] R
 *   cluster 2        refcount block: clusters 0..31 counted once
 *   cluster 3        L1 table: the entries of SHARED name T
 *   cluster 4        the old image's one L2 table (old L1[2])
 *   clusters 5..20   T, or a copy of it for each L1 entry
 *   clusters 21..23  R, or a copy of it for each refcount table entry
 *
 * Against an image of another geometry, diff walks both by ranges
 * (diff_walk.c) and gives a window whose tables came before the digest of
 * its steps (diff_windows.c).  The coarse image: 1 KiB clusters (128 L2
 * entries, an L1 entry spans 4 of the new image's), in the same bytes:
 *   cluster 0        header
 *   cluster 1        refcount table: [0] block at cluster 2
 *   cluster 2        refcount block
 *   cluster 3        L1 table: the entries of COARSE_SHARED name U
 *   clusters 4..7    U, or a copy of it for each L1 entry
 * The big image: 32 KiB clusters, so that each of the new image's L1
 * entries spans one of its clusters, and a window is keyed by its entry:
 *   cluster 0        header
 *   cluster 1        refcount table: [0] block at cluster 2
 *   cluster 2        refcount block
 *   cluster 3        L1 table: [0] names V (the same in both forms)
 *   cluster 4        V: entries that come again (big_entry())
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

#include "view/diff_int.h"

#define CLUSTER 512
#define FILE_CLUSTERS 1000	/* refcount table entry 3 is cut short */
#define NL1 16
#define SPAN (64 * CLUSTER)	/* guest bytes per L1 entry */
#define COPIED 0x8000000000000000ULL
#define OLD_L2 4
#define FIRST_L2 5
#define FIRST_BLOCK 21
#define NBLOCKS 3

/* The L1 entries that name T: runs, gaps, and the last (cut short), or
 * not the last, so that the digests give the last ranges too. */
static const unsigned shared[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 15 };
static size_t nshared = sizeof(shared) / sizeof(*shared);

/* V as N big-endian bytes at P. */
static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

/* Entry K of T: a zero at each end (their ranges touch from one L1 entry
 * to the next), a run of data, kinds in turn, data that does not run,
 * a compressed cluster. */
static uint64_t t_entry(unsigned k)
{
	if (k == 0 || k == 63)
		return 1;
	if (k <= 10)
		return (0x20000 + k * CLUSTER) | COPIED;
	if (k >= 12 && k <= 20)
		return k % 2 ? 0x30000 | COPIED : 1;
	if (k >= 21 && k <= 40)
		return 0x40000 + k * 3 * CLUSTER;
	if (k == 41)
		return 1ULL << 62 | 0x50000;
	return 0;
}

/* An image of clusters of 2^BITS bytes, the new image's virtual size:
 * header, refcount table (cluster 1) naming one block (cluster 2), which
 * counts clusters 0 to COUNTED - 1 once, and an L1 table of NL1 entries
 * at cluster 3, all zeros. */
static uint8_t *new_image(unsigned bits, uint32_t nl1, unsigned counted)
{
	uint64_t c = 1ULL << bits;
	uint8_t *img = calloc(FILE_CLUSTERS, CLUSTER);

	assert_non_null(img);
	memcpy(img, "QFI\xfb", 4);
	put_be(img + 4, 3, 4);				/* version */
	put_be(img + 20, bits, 4);			/* cluster_bits */
	put_be(img + 24, NL1 * SPAN - 3 * CLUSTER, 8);	/* size */
	put_be(img + 36, nl1, 4);			/* l1_size */
	put_be(img + 40, 3 * c, 8);			/* l1_table_offset */
	put_be(img + 48, c, 8);				/* refcount_table */
	put_be(img + 56, 1, 4);				/* its clusters */
	put_be(img + 96, 4, 4);				/* refcount_order */
	put_be(img + 100, 104, 4);			/* header_length */
	put_be(img + c, 2 * c, 8);
	for (unsigned i = 0; i < counted; i++)
		put_be(img + 2 * c + 2 * i, 1, 2);
	return img;
}

/* The image: the old one, or a new one naming T and R once (COPIES
 * false) or a copy of each for each entry. */
static uint8_t *make_image(bool old, bool copies)
{
	uint8_t *img = new_image(9, NL1, 32);
	uint8_t *l1 = img + 3 * CLUSTER;

	if (old) {
		put_be(l1 + 2 * 8, OLD_L2 * CLUSTER | COPIED, 8);
		for (unsigned k = 0; k < 64; k += 2)
			put_be(img + OLD_L2 * CLUSTER + 8 * k, 1, 8);
		return img;
	}
	for (size_t i = 0; i < nshared; i++) {
		uint64_t t = (FIRST_L2 + (copies ? shared[i] : 0)) * CLUSTER;

		put_be(l1 + 8 * shared[i], t | COPIED, 8);
		for (unsigned k = 0; k < 64; k++)
			put_be(img + t + 8 * k, t_entry(k), 8);
	}
	for (unsigned b = 0; b < NBLOCKS; b++) {
		uint64_t r = (FIRST_BLOCK + (copies ? b : 0)) * CLUSTER;

		put_be(img + CLUSTER + 8 * (b + 1), r, 8);
		for (unsigned k = 0; k < 256; k++)
			put_be(img + r + 2 * k, k * k % 3, 2);
	}
	return img;
}

#define COARSE 1024
#define COARSE_NL1 4
#define COARSE_SHARED 3	/* L1 entries 0 to 2 name U */

/* Entry K of U: a run of data, zeros, data stepping back, unallocated. */
static uint64_t u_entry(unsigned k)
{
	if (k < 20)
		return (0x80000 + k * COARSE) | COPIED;
	if (k < 50)
		return k % 3 ? 1 : 0;
	if (k < 90)
		return 0x90000 + (100 - k) * COARSE;
	return 0;
}

/* The coarse image, naming U once or a copy of it for each entry. */
static uint8_t *make_coarse(bool copies)
{
	uint8_t *img = new_image(10, COARSE_NL1, 8);
	uint8_t *l1 = img + 3 * COARSE;

	for (unsigned i = 0; i < COARSE_SHARED; i++) {
		uint64_t t = (4 + (copies ? i : 0)) * COARSE;

		put_be(l1 + 8 * i, t | COPIED, 8);
		for (unsigned k = 0; k < COARSE / 8; k++)
			put_be(img + t + 8 * k, u_entry(k), 8);
	}
	return img;
}

#define BIG 32768

/* Entry K of V: data at one place or another, zeros, unallocated,
 * compressed, each more than once. */
static uint64_t big_entry(unsigned k)
{
	static const uint64_t e[] = {
		0x100000 | COPIED, 1, 1, 0x100000 | COPIED, 0, 0x180000,
		1ULL << 62 | 0x120000, 1, 0x180000, 0x100000 | COPIED,
	};

	return e[k % (sizeof(e) / sizeof(*e))];
}

static uint8_t *make_big(void)
{
	uint8_t *img = new_image(15, 1, 5);

	put_be(img + 3 * BIG, 4 * BIG | COPIED, 8);
	for (unsigned k = 0; k < BIG / 8; k++)
		put_be(img + 4 * BIG + 8 * k, big_entry(k), 8);
	return img;
}

/* What a diff's changes and ranges of a group say, as text. */
struct seen {
	char *buf;
	size_t len, size;
	size_t limit;		/* items before the walk is stopped */
};

static void seen_add(struct seen *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void seen_add(struct seen *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(s->buf + s->len, s->size - s->len, fmt, ap);
		va_end(ap);
		assert_true(n >= 0);
		if ((size_t)n < s->size - s->len)
			break;
		s->size = s->size * 2 + (size_t)n + 1;
		s->buf = realloc(s->buf, s->size);
		assert_non_null(s->buf);
	}
	s->len += (size_t)n;
}

static bool seen_change(void *arg, const struct q2e_diff_entry *e)
{
	struct seen *s = arg;

	if (!s->limit--)
		return false;
	seen_add(s, "%s[%" PRIu64 "]+%" PRIu64 " %s %" PRIx64 ":%" PRIx64
		 " %" PRIx64 "+%" PRIx64 " %s / %s\n", e->symbol, e->index,
		 e->count, e->change, e->old.num, e->new.num, e->range_start,
		 e->range_length, e->old.meaning ? e->old.meaning : "-",
		 e->new.meaning ? e->new.meaning : "-");
	return true;
}

static bool seen_range(void *arg, const struct q2e_diff_range *r)
{
	struct seen *s = arg;

	if (!s->limit--)
		return false;
	seen_add(s, "range %" PRIx64 "+%" PRIx64 "\n", r->start, r->length);
	return true;
}

/* The changes and ranges of group G of D (kinds FIRST to LAST), each
 * list stopped after LIMIT items, and their counts. */
static char *seen_of(const struct q2e_diff *d, enum q2e_diff_group g,
		     int first, int last, size_t limit)
{
	struct seen s = { .limit = limit };
	const struct q2e_diff_entries *l = &d->groups[g];

	seen_add(&s, "%zu changes, %" PRIu64 " entries, %" PRIu64
		 " structures\n", l->n, l->changed, l->structures);
	diff_runs_changes(d, g, true, seen_change, &s);
	for (int k = first; k <= last; k++) {
		const struct q2e_diff_ranges *c =
			k == DIFF_KIND_ROSE   ? &d->refcount_rose
			: k == DIFF_KIND_FELL ? &d->refcount_fell
					      : &d->l2[k];

		seen_add(&s, "%s: %" PRIu64 " units, %" PRIu64
			 " ranges, last %" PRIx64 "..%" PRIx64 "\n",
			 diff_kind_name(k), c->units, c->n, c->last_start,
			 c->last_end);
		s.limit = limit;
		if (c->n)
			diff_runs_ranges(d, g, k, seen_range, &s);
	}
	return s.buf;
}

struct pair {
	uint8_t *bytes[2];
	struct q2e_image *img[2];
	struct q2e_diff *d;
};

/* The old and new images, or (COARSE_OLD) the coarse image and the new
 * one, or (COARSE_NEW) the new one and the coarse one; BIG_* likewise. */
enum pairing { OLD_NEW, COARSE_OLD, COARSE_NEW, BIG_OLD, BIG_NEW };

static void pair_open_as(struct pair *p, bool copies, enum pairing how)
{
	struct q2e_error err = { 0 };

	for (int i = 0; i < 2; i++) {
		bool coarse = how == (i ? COARSE_NEW : COARSE_OLD);
		bool big = how == (i ? BIG_NEW : BIG_OLD);

		p->bytes[i] = coarse	       ? make_coarse(copies)
			      : big	       ? make_big()
			      : how == OLD_NEW ? make_image(i == 0, copies)
					       : make_image(false, copies);
		assert_int_equal(q2e_image_open_memory(i ? "new.qcow2"
							 : "old.qcow2",
						       p->bytes[i],
						       FILE_CLUSTERS * CLUSTER,
						       &p->img[i], &err),
				 0);
	}
	assert_int_equal(q2e_diff_build(p->img[0], p->img[1], &p->d, &err), 0);
}

static void pair_open(struct pair *p, bool copies)
{
	pair_open_as(p, copies, OLD_NEW);
}

static void pair_close(struct pair *p)
{
	q2e_diff_free(p->d);
	for (int i = 0; i < 2; i++) {
		q2e_image_close(p->img[i]);
		free(p->bytes[i]);
	}
}

static void same_as_copies_as(enum q2e_diff_group g, int first, int last,
			      size_t limit, enum pairing how)
{
	struct pair shared_pair, copies_pair;
	char *a, *b;

	pair_open_as(&shared_pair, false, how);
	pair_open_as(&copies_pair, true, how);
	a = seen_of(shared_pair.d, g, first, last, limit);
	b = seen_of(copies_pair.d, g, first, last, limit);
	assert_string_equal(a, b);
	free(a);
	free(b);
	pair_close(&shared_pair);
	pair_close(&copies_pair);
}

static void same_as_copies(enum q2e_diff_group g, int first, int last,
			   size_t limit)
{
	same_as_copies_as(g, first, last, limit, OLD_NEW);
}

/* The L2 changes of the entries that name T are what as many copies
 * make: a structure each, ranges of zeros joined from one entry to the
 * next; with and without the last entry, cut short. */
static void test_l2_shared(void **state)
{
	struct pair p;

	(void)state;
	for (nshared = 13; nshared >= 12; nshared--) {
		same_as_copies(Q2E_DIFF_G_L2, 0, Q2E_DIFF_L2_COUNT - 1,
			       SIZE_MAX);
		pair_open(&p, false);
		assert_int_equal(p.d->groups[Q2E_DIFF_G_L2].structures,
				 nshared);
		pair_close(&p);
	}
}

/* The same, each list stopped early: the digests stop where the steps
 * would. */
static void test_l2_shared_cut(void **state)
{
	(void)state;
	for (nshared = 13; nshared >= 12; nshared--)
		for (size_t limit = 0; limit < 8; limit++)
			same_as_copies(Q2E_DIFF_G_L2, 0, Q2E_DIFF_L2_COUNT - 1,
				       limit);
}

/* Refcount table entries 1 to 3 naming one block, the last past the
 * end of the file. */
static void test_refcounts_shared(void **state)
{
	(void)state;
	same_as_copies(Q2E_DIFF_G_REFCOUNT_BLOCK, DIFF_KIND_ROSE,
		       DIFF_KIND_FELL, SIZE_MAX);
	same_as_copies(Q2E_DIFF_G_REFCOUNT_BLOCK, DIFF_KIND_ROSE,
		       DIFF_KIND_FELL, 3);
}

/* The L2 changes against another geometry, the image of pairing OLD
 * first and then of NEW (the other way round): whole lists, and each
 * list cut short after 0 to 8 items. */
static void both_ways(enum pairing old, enum pairing new)
{
	for (nshared = 13; nshared >= 12; nshared--)
		for (size_t limit = 0; limit < 10; limit++) {
			size_t n = limit == 9 ? SIZE_MAX : limit;

			same_as_copies_as(Q2E_DIFF_G_L2, 0,
					  Q2E_DIFF_L2_COUNT - 1, n, old);
			same_as_copies_as(Q2E_DIFF_G_L2, 0,
					  Q2E_DIFF_L2_COUNT - 1, n, new);
		}
}

/* Against the coarse image: the windows of one pair of tables again are
 * given their digest.  The new image's windows 0 and 1 (its entries 0 to
 * 3 and 4 to 7, all T) fall in U's entries 0 and 1; the coarse image's
 * windows of 32 KiB fall at four places in each U. */
static void test_l2_other_geometry(void **state)
{
	(void)state;
	both_ways(COARSE_OLD, COARSE_NEW);
}

/* Against the big image: each of the new image's windows lies in one of
 * its clusters, and is keyed by that cluster's entry, which comes again
 * at other places. */
static void test_l2_inside_cluster(void **state)
{
	(void)state;
	both_ways(BIG_OLD, BIG_NEW);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_l2_shared),
		cmocka_unit_test(test_l2_shared_cut),
		cmocka_unit_test(test_refcounts_shared),
		cmocka_unit_test(test_l2_other_geometry),
		cmocka_unit_test(test_l2_inside_cluster),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

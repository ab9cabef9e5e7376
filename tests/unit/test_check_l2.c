/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * check's count of one L2 table (src/check/count_l2.c): the fast path,
 * which takes runs of contiguous entries (preallocated ones included) a
 * run at a time, must count exactly what the entry-by-entry walk counts:
 * one reference and one COPIED bit per entry, overflow lines where the
 * refcount's width ends, and the same for the snapshots' walk of a table
 * they share.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check/check_impl.h"
#include "check_fixture.h"

#define CBITS 12
#define CS (UINT64_C(1) << CBITS)
#define NENTRIES (CS / 8)
#define NCLUSTERS UINT64_C(2048)
#define COPIED QCOW2_OFLAG_COPIED
#define ZERO QCOW2_OFLAG_ZERO

struct fixture {
	struct q2e_image img;
	struct checker c;
	struct q2e_error err;
	uint64_t table[NENTRIES];
};

/* A checker over a file of NCLUSTERS 4 KiB clusters, nothing counted. */
static struct fixture *setup(unsigned refcount_order)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->img.l2_entries = NENTRIES;
	check_fixture_init(&f->img, &f->c, &f->err, CBITS, refcount_order,
			   NCLUSTERS);
	f->c.file_clusters = NCLUSTERS;
	return f;
}

static void teardown(struct fixture *f)
{
	checker_release(&f->c);
	free(f);
}

/* The table into the checker's buffer, big-endian as on disk. */
static void load(struct fixture *f)
{
	for (uint64_t j = 0; j < NENTRIES; j++)
		for (int b = 0; b < 8; b++)
			f->c.buf[j * 8 + b] = (uint8_t)(f->table[j] >> (56 - 8 * b));
}

/* Entries [from, from + n) map clusters from CLUSTER on, one after the
 * other, with FLAGS. */
static void run(struct fixture *f, uint64_t from, uint64_t n,
		uint64_t cluster, uint64_t flags)
{
	for (uint64_t i = 0; i < n; i++)
		f->table[from + i] = ((cluster + i) << CBITS) | flags;
}

/*
 * Runs of every length around the fast path's blocks of eight and
 * sixteen, of standard and preallocated zero clusters, with and without
 * COPIED, broken by a hole, a flag change, a repeated cluster and a
 * compressed entry: every cluster counted once per entry, with the COPIED
 * bit of its entry.
 */
static void test_runs_count_each_entry(void **state)
{
	struct fixture *f = setup(4);
	struct checker *c = &f->c;
	uint16_t want[NCLUSTERS] = { 0 };
	uint64_t j = 0, cluster = 100, allocated = 0;

	(void)state;
	for (uint64_t len = 1; len <= 33 && j + len + 2 <= NENTRIES - 8; len++) {
		uint64_t flags = (len % 2 ? COPIED : 0) | (len % 3 ? 0 : ZERO);

		run(f, j, len, cluster, flags);
		for (uint64_t i = 0; i < len; i++)
			want[cluster + i] = 1 | (flags & COPIED ? CNT_COPIED
								: CNT_NOT_COPIED);
		allocated += len;
		j += len + (len % 4 == 0);	/* sometimes a hole */
		cluster += len + (len % 5 == 0);	/* sometimes a gap */
	}
	/* A run whose cluster comes back: counted twice. */
	run(f, j, 3, cluster, COPIED);
	run(f, j + 3, 2, cluster + 2, COPIED);
	want[cluster] = want[cluster + 1] = 1 | CNT_COPIED;
	want[cluster + 2] = 2 | CNT_COPIED;
	want[cluster + 3] = 1 | CNT_COPIED;
	allocated += 5;
	j += 5;
	/* A compressed entry between two clusters that would continue. */
	run(f, j, 1, cluster + 10, 0);
	f->table[j + 1] = QCOW2_OFLAG_COMPRESSED | ((cluster + 11) << CBITS);
	run(f, j + 2, 1, cluster + 12, 0);
	want[cluster + 10] = want[cluster + 12] = 1 | CNT_NOT_COPIED;
	want[cluster + 11] = 1;
	allocated += 3;
	load(f);

	assert_int_equal(check_l2(c, NULL, 1, 1, true, true), 0);
	for (uint64_t k = 0; k < NCLUSTERS; k++)
		if (c->counts[k] != want[k])
			fail_msg("cluster %llu: count 0x%x, want 0x%x",
				 (unsigned long long)k, c->counts[k], want[k]);
	assert_int_equal(c->res->allocated_clusters, allocated);
	assert_int_equal(c->res->compressed_clusters, 1);
	assert_int_equal(c->res->corruptions, 0);
	/* The compressed entry is not plain: the snapshots walk it again. */
	assert_false(c->l2_plain);
	teardown(f);
}

/*
 * Runs that cross the end of the file, ending one to seventeen clusters
 * short of it: the clusters inside are counted, each past it is a
 * corruption (the fast path must stop at the last cluster of the file).
 */
static void test_runs_stop_at_end_of_file(void **state)
{
	struct fixture *f = setup(4);
	struct checker *c = &f->c;
	uint64_t want[NCLUSTERS] = { 0 }, past = 0, j = 0;

	(void)state;
	for (uint64_t s = 1; s <= 17; s++) {
		run(f, j, s + 9, NCLUSTERS - s, s % 2 ? ZERO : 0);
		for (uint64_t k = NCLUSTERS - s; k < NCLUSTERS + 9; k++)
			if (k < NCLUSTERS)
				want[k]++;
			else
				past++;
		j += s + 10;
	}
	load(f);
	assert_int_equal(check_l2(c, NULL, 1, 1, false, false), 0);
	for (uint64_t k = 0; k < NCLUSTERS; k++)
		assert_int_equal(get_count(c, k), want[k]);
	assert_int_equal(c->res->corruptions, past);
	teardown(f);
}

/*
 * Preallocated zero clusters shared with two snapshots, under 2-bit
 * refcounts: a cluster already at 3 overflows for the active table and
 * for each snapshot, one at 1 for the second snapshot only; each overflow
 * is one corruption and one line, and the rest of the run (taken by the
 * snapshots' walk at once) ends at 3.
 */
static void test_shared_run_overflows(void **state)
{
	struct fixture *f = setup(1);
	struct checker *c = &f->c;
	const uint64_t k0 = (uint64_t)ST_SNAPSHOTS << 32;
	const struct l2_reach reach[2] = { { k0 | 0, 1, 1 }, { k0 | 1, 1, 1 } };

	(void)state;
	run(f, 0, 40, 200, ZERO);
	load(f);
	c->counts[210] = 3;
	c->counts[212] = 1;

	assert_int_equal(check_l2(c, NULL, 1, 1, true, true), 0);
	assert_true(c->l2_plain);
	assert_int_equal(c->res->corruptions, 1);
	assert_int_equal(get_count(c, 211), 1);
	assert_int_equal(get_count(c, 212), 2);
	assert_int_equal(check_l2_again(c, reach, 2), 0);
	for (uint64_t k = 200; k < 240; k++)
		assert_int_equal(get_count(c, k), 3);
	assert_int_equal(get_count(c, 199), 0);
	assert_int_equal(get_count(c, 240), 0);
	assert_int_equal(c->res->corruptions, 4);
	assert_int_equal(c->res->nlines, 4);
	/* The second snapshot's overflow of cluster 212, at its entry. */
	assert_int_equal(c->res->lines[3].key[0], k0 | 1);
	assert_int_equal(c->res->lines[3].key[2], 13);
	teardown(f);
}

/*
 * Three snapshots sharing a table of runs, holes and single entries: the
 * runs the first walk found are counted for them from what it recorded,
 * each cluster once per snapshot.
 */
static void test_shared_runs_counted_once_each(void **state)
{
	struct fixture *f = setup(4);
	struct checker *c = &f->c;
	struct l2_reach reach[3] = { { 0, 1, 1 }, { 1, 1, 1 }, { 2, 1, 1 } };
	uint64_t want[NCLUSTERS] = { 0 };

	(void)state;
	run(f, 0, 100, 300, 0);
	run(f, 101, 1, 500, 0);
	run(f, 103, 57, 420, ZERO);
	run(f, 160, 30, 600, COPIED);
	run(f, 300, 200, 1200, 0);
	for (uint64_t j = 0; j < NENTRIES; j++)
		if (f->table[j])
			want[(f->table[j] & QCOW2_OFFSET_MASK) >> CBITS] = 4;
	load(f);
	assert_int_equal(check_l2(c, NULL, 1, 1, true, true), 0);
	assert_true(c->l2_plain);
	assert_int_equal(check_l2_again(c, reach, 3), 0);
	for (uint64_t k = 0; k < NCLUSTERS; k++)
		if (get_count(c, k) != want[k])
			fail_msg("cluster %llu: count %llu, want %llu",
				 (unsigned long long)k,
				 (unsigned long long)get_count(c, k),
				 (unsigned long long)want[k]);
	teardown(f);
}

/* Many snapshots at once: a run is counted for all of them, and a count
 * that would pass the byte's inline counter goes the slow way, into the
 * dense tier or, past 65,534, the side table. */
static void test_shared_run_many_snapshots(void **state)
{
	struct fixture *f = setup(5);
	struct checker *c = &f->c;
	struct l2_reach reach[3] = { { 0, 1, 100 }, { 1, 1, 65234 },
				     { 2, 1, 200 } };

	(void)state;
	run(f, 0, NENTRIES, 1000, COPIED);
	load(f);
	assert_int_equal(set_count(c, 1500, 100), 0);
	assert_int_equal(check_l2(c, NULL, 1, 1, true, true), 0);
	assert_true(c->l2_plain);
	assert_int_equal(check_l2_again(c, reach, 3), 0);
	for (uint64_t k = 1000; k < 1000 + NENTRIES; k++)
		assert_int_equal(get_count(c, k), k == 1500 ? 65635 : 65535);
	assert_int_equal(c->counts[1001] & ~CNT_MASK, CNT_COPIED);
	assert_int_equal(get_count(c, 1000 + NENTRIES), 0);
	assert_int_equal(c->res->corruptions, 0);
	teardown(f);
}

/*
 * One run of each length from 1 to 80 (the fast path takes blocks of 32,
 * then words of 8, the last one overlapping counters before the run),
 * over counters that already hold counts and COPIED bits, at every
 * alignment to a word: each cluster of the run gets its references and
 * its entry's COPIED bit, the counters beside it keep every bit, and a
 * counter at the refcount's limit inside the run is counted the slow way.
 */
static void test_run_lengths_keep_neighbours(void **state)
{
	static const uint8_t flag_of[3] = { CNT_COPIED, CNT_NOT_COPIED, 0 };
	const struct l2_reach reach[2] = { { 0, 1, 1 }, { 1, 1, 1 } };

	(void)state;
	for (uint64_t len = 1; len <= 80; len++) {
		for (int full = 0; full < 2; full++) {
			struct fixture *f = setup(4);
			struct checker *c = &f->c;
			uint64_t base = 100 + len % 9, flags = len % 2 ? COPIED : 0;
			uint8_t before[NCLUSTERS];
			uint64_t stop = full && len > 2 ? base + len - 2 : 0;

			for (uint64_t k = 0; k < NCLUSTERS; k++)
				c->counts[k] = (uint8_t)((k * 7 % 50) |
							  flag_of[k % 3]);
			if (stop)
				c->counts[stop] = 62;	/* the limit */
			memcpy(before, c->counts, sizeof(before));
			run(f, 5, len, base, flags);
			load(f);
			assert_int_equal(check_l2(c, NULL, 1, 1, true, true), 0);
			assert_int_equal(check_l2_again(c, reach, 2), 0);
			for (uint64_t k = 0; k < NCLUSTERS; k++) {
				bool in = k >= base && k < base + len;
				uint8_t bits = before[k] & ~CNT_MASK;

				if (in)
					bits |= flags ? CNT_COPIED : CNT_NOT_COPIED;
				if (get_count(c, k) != (before[k] & CNT_MASK) + 3 * in ||
				    (c->counts[k] & ~CNT_MASK) != bits)
					fail_msg("length %llu, cluster %llu: 0x%x, count %llu",
						 (unsigned long long)len,
						 (unsigned long long)k,
						 c->counts[k],
						 (unsigned long long)get_count(c, k));
			}
			teardown(f);
		}
	}
}

/*
 * A table walked again for each of many L1 entries is walked over the
 * spans of its entries that are not zero (c->walk_spans): runs, holes at
 * its ends and between, and entries the slow path takes (compressed,
 * reserved bits, misaligned, past the end of the file).  The spans are
 * those entries, and a walk over them counts, reports and flags exactly
 * what a walk of the whole table does.
 */
static void test_spans_walk_as_whole(void **state)
{
	struct fixture *whole = setup(4), *spans = setup(4);
	struct fixture *f[2] = { whole, spans };
	struct l2_spans s = { 0 };

	(void)state;
	for (int i = 0; i < 2; i++) {
		run(f[i], 3, 40, 100, COPIED);
		run(f[i], 50, 1, 300, 0);
		f[i]->table[51] = QCOW2_OFLAG_COMPRESSED | (UINT64_C(301) << CBITS);
		f[i]->table[52] = (UINT64_C(302) << CBITS) | 0x200;	/* reserved */
		f[i]->table[53] = (UINT64_C(303) << CBITS) + 512;	/* misaligned */
		for (int j = 100; j < 150; j++)	/* no offset: silent */
			f[i]->table[j] = j % 3 == 0 ? ZERO : j % 3 == 1
				? ZERO | COPIED : COPIED;
		f[i]->table[150] = ZERO | 0x200;	/* reserved */
		run(f[i], 200, 9, NCLUSTERS - 4, ZERO);	/* past the end */
		f[i]->table[NENTRIES - 1] = UINT64_C(400) << CBITS;
		load(f[i]);
	}
	assert_int_equal(l2_nonzero_spans(&spans->c, spans->c.buf, &s), 0);
	assert_int_equal(s.n, 5);
	assert_int_equal(s.v[0].from, 3);
	assert_int_equal(s.v[0].to, 43);
	assert_int_equal(s.v[1].from, 50);
	assert_int_equal(s.v[1].to, 54);
	assert_int_equal(s.v[2].from, 150);
	assert_int_equal(s.v[2].to, 151);
	assert_int_equal(s.v[3].from, 200);
	assert_int_equal(s.v[3].to, 209);
	assert_int_equal(s.v[4].from, NENTRIES - 1);
	assert_int_equal(s.v[4].to, NENTRIES);
	spans->c.walk_spans = &s;
	for (int walk = 0; walk < 3; walk++)
		for (int i = 0; i < 2; i++)
			assert_int_equal(check_l2(&f[i]->c, NULL, 1, 1, walk == 0,
						  false), 0);
	for (uint64_t k = 0; k < NCLUSTERS; k++)
		if (whole->c.counts[k] != spans->c.counts[k])
			fail_msg("cluster %llu: 0x%x over the spans, 0x%x whole",
				 (unsigned long long)k, spans->c.counts[k],
				 whole->c.counts[k]);
	assert_int_equal(get_count(&spans->c, 120), 3);
	assert_int_equal(spans->c.counts[120] & ~CNT_MASK, CNT_COPIED);
	assert_int_equal(get_count(&spans->c, 400), 3);
	assert_true(spans->c.res->corruptions > 0);
	assert_int_equal(spans->c.res->corruptions, whole->c.res->corruptions);
	assert_int_equal(spans->c.res->nlines, whole->c.res->nlines);
	assert_int_equal(spans->c.res->allocated_clusters,
			 whole->c.res->allocated_clusters);
	assert_int_equal(spans->c.res->compressed_clusters, 1);
	assert_false(spans->c.l2_plain);
	spans->c.walk_spans = NULL;
	free(s.v);
	teardown(whole);
	teardown(spans);
}

/*
 * A walk recorded (walk_replay.c) stands for the walks after it of the
 * same table: four more walks made at once count, report and add to the
 * statistics exactly what four walks do (runs the fast path takes, a
 * compressed entry, entries past the end of the file), active or not.
 * Where the counts have no room (2-bit refcounts), it does not stand for
 * them; a walk that overflowed is not recorded.
 */
static void test_replay_as_walks(void **state)
{
	(void)state;
	for (int active = 0; active < 2; active++) {
		struct fixture *walked = setup(4), *replayed = setup(4);
		struct fixture *f[2] = { walked, replayed };
		struct checker *w = &walked->c, *r = &replayed->c;

		for (int i = 0; i < 2; i++) {
			run(f[i], 0, 30, 100, active ? COPIED : 0);
			run(f[i], 40, 3, 200, 0);
			f[i]->table[45] = QCOW2_OFLAG_COMPRESSED |
					  (UINT64_C(300) << CBITS);
			run(f[i], 60, 5, NCLUSTERS - 2, 0);	/* 3 past the end */
			load(f[i]);
			assert_int_equal(check_l2(&f[i]->c, NULL, 1, 1, active,
						  false), 0);
		}
		for (int walk = 0; walk < 5; walk++)
			assert_int_equal(check_l2(w, NULL, 1, 2 + walk, active,
						  false), 0);
		replay_start(r, active);
		assert_int_equal(replay_stop(r, check_l2(r, NULL, 1, 2, active,
							false)), 0);
		assert_true(r->rec.ready);
		assert_true(replay_room(r) >= 4);
		assert_int_equal(replay_apply(r, 4, 4), 0);
		for (uint64_t k = 0; k < NCLUSTERS; k++)
			if (w->counts[k] != r->counts[k])
				fail_msg("active %d, cluster %llu: 0x%x replayed, 0x%x walked",
					 active, (unsigned long long)k,
					 r->counts[k], w->counts[k]);
		assert_int_equal(get_count(r, 110), 6);
		assert_int_equal(get_count(r, 300), 6);
		assert_int_equal(r->res->corruptions, 6 * 3);
		assert_int_equal(r->res->corruptions, w->res->corruptions);
		assert_int_equal(r->res->allocated_clusters,
				 w->res->allocated_clusters);
		assert_int_equal(r->res->fragmented_clusters,
				 w->res->fragmented_clusters);
		assert_int_equal(r->res->compressed_clusters,
				 w->res->compressed_clusters);
		assert_int_equal(r->res->compressed_clusters, active ? 6 : 0);
		teardown(walked);
		teardown(replayed);
	}
}

/* Under 2-bit refcounts (3 at most): two walks leave room for one more,
 * not two; a walk whose overflows make lines is not recorded, nor one
 * after it that makes lines too (walks whose overflows are only counted,
 * past the lines kept, are: t_hostile's compressed-l2). */
static void test_replay_needs_room(void **state)
{
	struct fixture *f = setup(1);
	struct checker *c = &f->c;

	(void)state;
	run(f, 0, 10, 100, 0);
	load(f);
	assert_int_equal(check_l2(c, NULL, 1, 1, false, true), 0);
	replay_start(c, false);
	assert_int_equal(replay_stop(c, check_l2(c, NULL, 1, 2, false, false)),
			 0);
	assert_true(c->rec.ready);
	assert_int_equal(replay_room(c), 1);
	assert_int_equal(replay_apply(c, 1, 1), 0);
	assert_int_equal(get_count(c, 105), 3);
	replay_start(c, false);
	assert_int_equal(replay_stop(c, check_l2(c, NULL, 1, 4, false, false)),
			 0);
	assert_false(c->rec.ready);
	assert_int_equal(c->res->corruptions, 10);	/* the overflows */
	/* Nor is any after it. */
	replay_start(c, false);
	assert_int_equal(replay_stop(c, check_l2(c, NULL, 1, 5, false, false)),
			 0);
	assert_false(c->rec.ready);
	assert_int_equal(c->res->corruptions, 20);
	teardown(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs_count_each_entry),
		cmocka_unit_test(test_runs_stop_at_end_of_file),
		cmocka_unit_test(test_shared_run_overflows),
		cmocka_unit_test(test_shared_runs_counted_once_each),
		cmocka_unit_test(test_shared_run_many_snapshots),
		cmocka_unit_test(test_run_lengths_keep_neighbours),
		cmocka_unit_test(test_spans_walk_as_whole),
		cmocka_unit_test(test_replay_as_walks),
		cmocka_unit_test(test_replay_needs_room),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

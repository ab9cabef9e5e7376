/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The image model (src/model), opened from bytes in memory: what the walk
 * finds in a small hand-made image, and the typed problems it records when
 * one field at a time is damaged.
 *
 * The image, 512-byte clusters, 64 KiB virtual size (two L1 entries):
 *   cluster 0  0x000  header (version 3, 104 bytes), no extensions
 *   cluster 1  0x200  refcount table: one entry, the block at 0x400
 *   cluster 2  0x400  refcount block: 16-bit counts, clusters 0..5 = 1
 *   cluster 3  0x600  L1 table: [0] = 0x800 | COPIED, [1] = 0
 *   cluster 4  0x800  L2 table: [0] = 0xa00 | COPIED
 *   cluster 5  0xa00  a data cluster
 *
 * And q2e_image_read_cached_many() (src/source/batch.c), on the same
 * bytes in memory and in a file.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qcow2elf/model.h"

#define CLUSTER 512
#define NCLUSTERS 6
#define COPIED 0x8000000000000000ULL

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static void make_image(uint8_t *img)
{
	memset(img, 0, NCLUSTERS * CLUSTER);
	memcpy(img, "QFI\xfb", 4);
	put_be32(img + 4, 3);			/* version */
	put_be32(img + 20, 9);			/* cluster_bits */
	put_be64(img + 24, 64 * 1024);		/* size */
	put_be32(img + 36, 2);			/* l1_size */
	put_be64(img + 40, 0x600);		/* l1_table_offset */
	put_be64(img + 48, 0x200);		/* refcount_table_offset */
	put_be32(img + 56, 1);			/* refcount_table_clusters */
	put_be32(img + 96, 4);			/* refcount_order */
	put_be32(img + 100, 104);		/* header_length */
	put_be64(img + 0x200, 0x400);
	for (int i = 0; i < NCLUSTERS; i++)
		put_be16(img + 0x400 + 2 * i, 1);
	put_be64(img + 0x600, 0x800 | COPIED);
	put_be64(img + 0x800, 0xa00 | COPIED);
}

static struct q2e_image *open_bytes(const uint8_t *bytes, size_t len)
{
	struct q2e_error err = { 0 };
	struct q2e_image *img = NULL;

	assert_int_equal(q2e_image_open_memory("test.qcow2", bytes, len, &img,
					       &err), 0);
	assert_non_null(img);
	return img;
}

static const struct q2e_region *region_of(const struct q2e_image *img,
					  enum q2e_region_kind kind)
{
	for (size_t i = 0; i < img->nregions; i++)
		if (img->regions[i].kind == kind)
			return &img->regions[i];
	return NULL;
}

static const struct q2e_problem *problem_of(const struct q2e_image *img,
					    enum q2e_problem_type type)
{
	for (size_t i = 0; i < img->nproblems; i++)
		if (img->problems[i].type == type)
			return &img->problems[i];
	return NULL;
}

static void test_clean_image(void **state)
{
	uint8_t bytes[NCLUSTERS * CLUSTER];
	const struct q2e_region *r;
	struct q2e_error err = { 0 };
	struct q2e_image *img;
	char sym[64];

	(void)state;
	make_image(bytes);
	img = open_bytes(bytes, sizeof(bytes));
	assert_int_equal(img->nproblems, 0);
	assert_int_equal(img->file_size, sizeof(bytes));
	assert_int_equal(img->cluster_size, CLUSTER);
	assert_int_equal(img->nl1, 2);
	assert_null(q2e_image_dump_meta(img));

	r = region_of(img, Q2E_REGION_L1);
	assert_non_null(r);
	assert_int_equal(r->offset, 0x600);
	assert_int_equal(r->size, 16);
	r = region_of(img, Q2E_REGION_L2);
	assert_non_null(r);
	assert_int_equal(r->offset, 0x800);
	assert_int_equal(r->size, CLUSTER);
	assert_int_equal(q2e_region_symbol(img, r, 0, sym, sizeof(sym)), 0);
	assert_string_equal(sym, "l2_table_0");
	assert_ptr_equal(q2e_image_region_at(img, 0x9ff), r);
	assert_non_null(region_of(img, Q2E_REGION_REFCOUNT_TABLE));
	r = region_of(img, Q2E_REGION_REFCOUNT_BLOCK);
	assert_non_null(r);
	assert_int_equal(r->offset, 0x400);

	uint64_t rc = 9;

	assert_int_equal(q2e_image_refcount(img, 5, &rc, &err), 0);
	assert_int_equal(rc, 1);
	assert_int_equal(q2e_image_refcount(img, 6, &rc, &err), 0);
	assert_int_equal(rc, 0);
	/* Counted a block at a time: clusters 0..5 in use, of 256. */
	assert_int_equal(q2e_image_refcounts_nonzero(img, 0, 256, &rc, &err), 0);
	assert_int_equal(rc, NCLUSTERS);
	assert_int_equal(q2e_image_refcounts_nonzero(img, 4, 10, &rc, &err), 0);
	assert_int_equal(rc, 2);
	assert_int_equal(q2e_image_refcounts_nonzero(img, 3, 0, &rc, &err), 0);
	assert_int_equal(rc, 0);
	/* No block covers cluster 256 (one refcount table entry). */
	assert_int_equal(q2e_image_refcounts_nonzero(img, 256, 256, &rc, &err), 0);
	assert_int_equal(rc, 0);

	struct q2e_l2_cache *c = q2e_l2_cache_new(img);
	struct qcow2_l2_entry e;

	assert_non_null(c);
	assert_int_equal(q2e_image_l2_lookup(c, 100, &e, &err), 0);
	assert_int_equal(e.type, QCOW2_CLUSTER_NORMAL);
	assert_int_equal(e.host_offset, 0xa00);
	assert_true(e.copied);
	assert_int_equal(q2e_image_l2_lookup(c, 40000, &e, &err), 0);
	assert_int_equal(e.type, QCOW2_CLUSTER_UNALLOCATED);
	q2e_l2_cache_free(c);
	q2e_image_close(img);
}

/*
 * A run of compressed clusters is counted to where it stops, and asked
 * again from inside it (each L1 entry that names the table asks from its
 * start) it gives the same end.
 */
static void test_compressed_runs(void **state)
{
	uint8_t bytes[NCLUSTERS * CLUSTER];
	struct q2e_error err = { 0 };
	struct qcow2_l2_entry e;
	struct q2e_l2_cache *c;
	struct q2e_image *img;

	(void)state;
	make_image(bytes);
	/* 64 entries: 0-9 compressed, 10 normal, 11-63 compressed. */
	for (int i = 0; i < CLUSTER / 8; i++)
		put_be64(bytes + 0x800 + 8 * i,
			 i == 10 ? 0xa00 | COPIED : 1ULL << 62 | (0xa00 + 16 * i));
	img = open_bytes(bytes, sizeof(bytes));
	c = q2e_l2_cache_new(img);
	assert_non_null(c);
	assert_int_equal(q2e_image_l2_lookup(c, 0, &e, &err), 0);
	assert_int_equal(e.type, QCOW2_CLUSTER_COMPRESSED);
	assert_int_equal(q2e_image_l2_compressed_run(c, 0, 100), 9);
	assert_int_equal(q2e_image_l2_compressed_run(c, 0, 4), 4);
	/* Distinct host offsets: not a run of the same entry. */
	assert_int_equal(q2e_image_l2_run(c, 0, 100), 0);
	assert_int_equal(q2e_image_l2_lookup(c, 3 * CLUSTER, &e, &err), 0);
	assert_int_equal(q2e_image_l2_compressed_run(c, 3 * CLUSTER, 100), 6);
	assert_int_equal(q2e_image_l2_lookup(c, 10 * CLUSTER, &e, &err), 0);
	assert_int_equal(e.type, QCOW2_CLUSTER_NORMAL);
	assert_int_equal(q2e_image_l2_compressed_run(c, 10 * CLUSTER, 100), 0);
	assert_int_equal(q2e_image_l2_lookup(c, 11 * CLUSTER, &e, &err), 0);
	assert_int_equal(q2e_image_l2_compressed_run(c, 11 * CLUSTER, 100), 52);
	assert_int_equal(q2e_image_l2_lookup(c, 2 * CLUSTER, &e, &err), 0);
	assert_int_equal(q2e_image_l2_compressed_run(c, 2 * CLUSTER, 100), 7);
	/* An L1 entry without a table: no run. */
	assert_int_equal(q2e_image_l2_lookup(c, 64 * CLUSTER, &e, &err), 0);
	assert_int_equal(q2e_image_l2_compressed_run(c, 64 * CLUSTER, 100), 0);
	q2e_l2_cache_free(c);
	q2e_image_close(img);
}

/* Each damage is recorded with its type, structure and offset. */
static void test_typed_problems(void **state)
{
	uint8_t bytes[NCLUSTERS * CLUSTER];
	const struct q2e_problem *p;
	struct q2e_image *img;

	(void)state;
	make_image(bytes);
	put_be64(bytes + 40, 0x610);		/* L1 not cluster aligned */
	img = open_bytes(bytes, sizeof(bytes));
	p = problem_of(img, Q2E_PROBLEM_MISALIGNED);
	assert_non_null(p);
	assert_string_equal(p->structure, "l1_table");
	assert_int_equal(p->offset, 0x610);
	q2e_image_close(img);

	make_image(bytes);
	put_be64(bytes + 0x608, 0x10000);	/* L2 past the end */
	img = open_bytes(bytes, sizeof(bytes));
	p = problem_of(img, Q2E_PROBLEM_PAST_END);
	assert_non_null(p);
	assert_string_equal(p->structure, "l2_table_1");
	assert_int_equal(p->offset, 0x10000);
	assert_int_equal(p->severity, Q2E_SEV_ERROR);
	q2e_image_close(img);

	make_image(bytes);
	put_be64(bytes + 0x600, 0x800 | COPIED | 0x100);	/* reserved */
	img = open_bytes(bytes, sizeof(bytes));
	p = problem_of(img, Q2E_PROBLEM_RESERVED_BITS);
	assert_non_null(p);
	assert_string_equal(p->structure, "l1_table");
	assert_int_equal(p->offset, 0x600);
	q2e_image_close(img);

	make_image(bytes);
	put_be64(bytes + 72, 1ULL << 40);	/* an unknown incompatible bit */
	img = open_bytes(bytes, sizeof(bytes));
	p = problem_of(img, Q2E_PROBLEM_UNSUPPORTED);
	assert_non_null(p);
	assert_string_equal(p->structure, "qcow2_header");
	q2e_image_close(img);
}

static int sum_entries(void *arg, uint64_t first, const uint64_t *e,
		       uint64_t n)
{
	uint64_t *sum = arg;

	for (uint64_t i = 0; i < n; i++)
		*sum += (first + i + 1) * e[i];
	return 0;
}

/*
 * A header claiming three snapshots, the file ending after the first
 * entry: the other two are counted, with one problem, and not listed.
 * The snapshot's L1 table (the active one's) is read when asked for.
 */
static void test_snapshots_past_end(void **state)
{
	uint8_t bytes[NCLUSTERS * CLUSTER + 64];
	const uint64_t entry = NCLUSTERS * CLUSTER;
	struct q2e_error err = { 0 };
	struct q2e_image *img;
	uint64_t *l1, n, sum = 0;
	size_t found = 0;

	(void)state;
	make_image(bytes);
	memset(bytes + entry, 0, 64);
	put_be32(bytes + 60, 3);		/* nb_snapshots */
	put_be64(bytes + 64, entry);		/* snapshots_offset */
	put_be64(bytes + entry, 0x600);		/* l1_table_offset */
	put_be32(bytes + entry + 8, 2);		/* l1_size */
	put_be16(bytes + entry + 12, 1);	/* id_str_size */
	put_be16(bytes + entry + 14, 1);	/* name_size */
	put_be32(bytes + entry + 36, 16);	/* extra_data_size */
	memcpy(bytes + entry + 56, "1a", 2);
	img = open_bytes(bytes, sizeof(bytes));
	assert_int_equal(img->nsnapshots, 1);
	assert_int_equal(img->nsnapshots_past_end, 2);
	assert_string_equal(img->snapshots[0].name, "a");
	for (size_t i = 0; i < img->nproblems; i++)
		found += strstr(img->problems[i].message,
				"entries 1 to 2 lie past the end") != NULL;
	assert_int_equal(found, 1);
	assert_true(img->snapshots[0].l1_read);
	assert_int_equal(img->snapshots[0].nl1, 2);
	assert_int_equal(q2e_image_snapshot_l1_each(img, 0, sum_entries, &sum,
						    &err), 0);
	assert_int_equal(sum, 0x800 | COPIED);
	assert_int_equal(q2e_image_read_snapshot_l1(img, 0, &l1, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(l1[0], 0x800 | COPIED);
	assert_int_equal(l1[1], 0);
	free(l1);
	q2e_image_close(img);
}

/* The problems of image BYTES of LEN bytes whose structure starts with
 * PREFIX: how many, and the first's message in FIRST. */
static size_t problems_of(const uint8_t *bytes, size_t len,
			  const char *prefix, char *first, size_t size)
{
	struct q2e_image *img = open_bytes(bytes, len);
	size_t n = 0;

	for (size_t i = 0; i < img->nproblems; i++) {
		const struct q2e_problem *p = &img->problems[i];

		if (strncmp(p->structure, prefix, strlen(prefix)) != 0)
			continue;
		if (!n++)
			snprintf(first, size, "%s", p->message);
	}
	q2e_image_close(img);
	return n;
}

/*
 * L2 tables in a row, wrong alike, are one problem, named by the first,
 * whatever empty entries lie between them; another problem ends the run.
 */
static void test_table_runs(void **state)
{
	enum { NL1 = 2048, L1_AT = NCLUSTERS * CLUSTER };
	size_t len = L1_AT + NL1 * 8;
	uint8_t *bytes = calloc(1, len);
	char first[512];

	(void)state;
	assert_non_null(bytes);
	make_image(bytes);
	put_be64(bytes + 24, (uint64_t)NL1 * 64 * CLUSTER);	/* size */
	put_be32(bytes + 36, NL1);			/* l1_size */
	put_be64(bytes + 40, L1_AT);			/* l1_table_offset */
	for (uint64_t i = 0; i < NL1; i += 1 + (i == 7))
		put_be64(bytes + L1_AT + 8 * i, (0x100000 + i * CLUSTER) | COPIED);
	assert_int_equal(problems_of(bytes, len, "l2_table", first,
				     sizeof(first)), 1);
	assert_string_equal(first,
			    "l2_table_0 to l2_table_2047: 2047 entries name "
			    "L2 tables past the end of the file (0x4c00 "
			    "bytes), the first at 0x100000 and the last at "
			    "0x1ffe00 (512 bytes each)");

	/* Entry 1000 with a reserved bit: a run of its own, which keeps the
	 * message an entry alone always had, and the tables' run goes on. */
	put_be64(bytes + L1_AT + 8 * 1000, (0x100000 + 1000 * CLUSTER) | 0x100);
	assert_int_equal(problems_of(bytes, len, "l2_table", first,
				     sizeof(first)), 1);
	assert_int_equal(problems_of(bytes, len, "l1_table", first,
				     sizeof(first)), 1);
	assert_string_equal(first,
			    "l1_table[1000] = 0x000000000017d100 has reserved "
			    "bits 0x100 set");

	/* Every entry with a reserved bit as well: one problem of each
	 * kind, not one of each for every entry. */
	for (uint64_t i = 0; i < NL1; i++)
		put_be64(bytes + L1_AT + 8 * i, (0x100000 + i * CLUSTER) | 0x100);
	assert_int_equal(problems_of(bytes, len, "l2_table", first,
				     sizeof(first)), 1);
	assert_int_equal(problems_of(bytes, len, "l1_table", first,
				     sizeof(first)), 1);
	assert_string_equal(first,
			    "l1_table[0] to [2047]: 2048 entries have reserved "
			    "bits set, the first 0x0000000000100100");
	free(bytes);
}

/* Snapshot entry N of the table at BYTES + AT: L1 table L1_AT, L1_SIZE
 * entries, ID n + 1 and name "a" + n. */
static void put_snapshot(uint8_t *bytes, size_t at, int n, uint64_t l1_at,
			 uint32_t l1_size)
{
	uint8_t *e = bytes + at + 64 * n;

	put_be64(e, l1_at);
	put_be32(e + 8, l1_size);
	put_be16(e + 12, 1);			/* id_str_size */
	put_be16(e + 14, 1);			/* name_size */
	put_be32(e + 36, 16);			/* extra_data_size */
	e[56] = (uint8_t)('1' + n);
	e[57] = (uint8_t)('a' + n);
}

/*
 * An L2 table named by L1 entries 0 to 9 and 11 to 20 (entry 10 names
 * another), in the active L1 table, which two snapshots share as well:
 * the table's owners are the active table's entries, then the first
 * snapshot's, each in index order; the second snapshot owns the L1 table
 * but not its L2 tables again (the first's symbols stand for both).
 */
static void test_owner_runs(void **state)
{
	enum { NL1 = 32, L1_AT = NCLUSTERS * CLUSTER, SN_AT = L1_AT + CLUSTER };
	uint8_t bytes[SN_AT + 128] = { 0 };
	const struct q2e_region *r;
	struct q2e_image *img;
	char sym[96];

	(void)state;
	make_image(bytes);
	put_be64(bytes + 24, (uint64_t)NL1 * 64 * CLUSTER);	/* size */
	put_be32(bytes + 36, NL1);			/* l1_size */
	put_be64(bytes + 40, L1_AT);			/* l1_table_offset */
	put_be32(bytes + 60, 2);			/* nb_snapshots */
	put_be64(bytes + 64, SN_AT);			/* snapshots_offset */
	for (int i = 0; i <= 20; i++)
		put_be64(bytes + L1_AT + 8 * i, (i == 10 ? 0xa00 : 0x800) | COPIED);
	put_snapshot(bytes, SN_AT, 0, L1_AT, NL1);
	put_snapshot(bytes, SN_AT, 1, L1_AT, NL1);
	img = open_bytes(bytes, sizeof(bytes));
	assert_int_equal(img->nsnapshots, 2);
	assert_int_equal(img->snapshots[1].l1_first, 0);

	r = q2e_image_region_at(img, 0x800);
	assert_non_null(r);
	assert_int_equal(r->kind, Q2E_REGION_L2);
	assert_int_equal(r->nowners, 40);
	for (uint32_t k = 0; k < 40; k++) {
		uint64_t i = k % 20 < 10 ? k % 20 : k % 20 + 1;

		assert_int_equal(r->owners[k].kind, k < 20 ? Q2E_OWNER_ACTIVE
							    : Q2E_OWNER_SNAPSHOT);
		assert_int_equal(r->owners[k].id, 0);
		assert_int_equal(r->owners[k].index, i);
	}
	assert_int_equal(q2e_region_symbol(img, r, 39, sym, sizeof(sym)), 0);
	assert_string_equal(sym, "snapshot_0_l2_table_20");

	r = q2e_image_region_at(img, 0xa00);
	assert_non_null(r);
	assert_int_equal(r->nowners, 2);
	assert_int_equal(r->owners[1].index, 10);

	r = q2e_image_region_at(img, L1_AT);
	assert_non_null(r);
	assert_int_equal(r->kind, Q2E_REGION_L1);
	assert_int_equal(r->nowners, 3);
	assert_int_equal(q2e_region_symbol(img, r, 2, sym, sizeof(sym)), 0);
	assert_string_equal(sym, "snapshot_1_l1_table");
	q2e_image_close(img);
}

/*
 * 2 MiB clusters in a file of 1 KiB: the header cluster reads as zeros
 * past the end, so the extensions end there, marker or not.  A snapshot
 * entry claims 8 MiB of extra data: the table reads as zeros past the
 * end, and the model keeps the first 1,024 bytes of it, as QEMU would.
 */
static void test_claims_past_end(void **state)
{
	enum { LEN = 1024, ENTRY = 512 };
	uint8_t bytes[LEN];
	struct q2e_image *img;

	(void)state;
	memset(bytes, 0, sizeof(bytes));
	memcpy(bytes, "QFI\xfb", 4);
	put_be32(bytes + 4, 3);			/* version */
	put_be32(bytes + 20, 21);		/* cluster_bits */
	put_be64(bytes + 24, 1 << 21);		/* size */
	put_be32(bytes + 96, 4);		/* refcount_order */
	put_be32(bytes + 100, 104);		/* header_length */
	put_be32(bytes + 104, 0xe2792aca);	/* backing format */
	put_be32(bytes + 108, 3);
	memcpy(bytes + 112, "raw", 3);
	/* An unknown one whose data end with the file: the end marker
	 * after it is the zeros past the end. */
	put_be32(bytes + 120, 0x12345678);
	put_be32(bytes + 124, LEN - 128);
	put_be32(bytes + 60, 1);		/* nb_snapshots */
	put_be64(bytes + 64, ENTRY);		/* snapshots_offset */
	put_be32(bytes + ENTRY + 36, 8 << 20);	/* extra_data_size */
	put_be64(bytes + ENTRY + 40, 0x1122334455667788ULL);
	put_be16(bytes + ENTRY + 12, 1);	/* id_str_size */
	img = open_bytes(bytes, sizeof(bytes));
	assert_int_equal(img->cluster_size, 1 << 21);
	assert_string_equal(img->backing_format, "raw");
	assert_int_equal(img->nexts, 2);
	assert_int_equal(img->extensions_end, LEN + 8);
	for (size_t i = 0; i < img->nproblems; i++)
		assert_null(strstr(img->problems[i].message, "end marker"));
	assert_int_equal(img->nsnapshots, 1);
	assert_int_equal(img->snapshots[0].entry.extra_data_size, 8 << 20);
	assert_int_equal(img->snapshot_extra_over_limit, 0);
	assert_int_equal(img->snapshots[0].entry.vm_state_size_large,
			 0x1122334455667788ULL);
	assert_memory_equal(img->snapshots[0].extra, bytes + ENTRY + 40,
			    LEN - ENTRY - 40);
	for (size_t i = LEN - ENTRY - 40; i < 1024; i++)
		assert_int_equal(img->snapshots[0].extra[i], 0);
	assert_string_equal(img->snapshots[0].id, "");
	q2e_image_close(img);
}

/* A header cut short, or bytes that are not QCOW2, fail to open. */
static void test_refused(void **state)
{
	uint8_t bytes[NCLUSTERS * CLUSTER];
	struct q2e_error err = { 0 };
	struct q2e_image *img = NULL;

	(void)state;
	make_image(bytes);
	assert_true(q2e_image_open_memory("short", bytes, 50, &img, &err) < 0);
	assert_null(img);
	assert_non_null(strstr(err.msg, "'short'"));
	q2e_error_clear(&err);
	bytes[0] = 'X';
	assert_int_equal(q2e_image_open_memory("raw", bytes, sizeof(bytes),
					       &img, &err), Q2E_ENOTQCOW2);
	assert_null(img);
	assert_non_null(strstr(err.msg, "'raw'"));
}

/* 70 reads of BYTES (more than one submission of 64), each from 37
 * bytes on, of 1 to 200 bytes; the last past the end. */
#define NREADS 70

static void batch_reads(struct q2e_image *img, struct q2e_cached_read *r,
			uint8_t (*out)[200])
{
	struct q2e_image_batch *b = q2e_image_batch_open(img);

	assert_non_null(b);
	for (size_t i = 0; i < NREADS; i++)
		r[i] = (struct q2e_cached_read){
			.off = (i * 37) % (NCLUSTERS * CLUSTER - 200),
			.buf = out[i], .len = (uint32_t)(1 + i * 13 % 200) };
	r[NREADS - 1].off = NCLUSTERS * CLUSTER - 10;
	r[NREADS - 1].len = 20;
	q2e_image_read_cached_many(img, b, r, NREADS);
	q2e_image_batch_close(b);
}

static void check_reads(const uint8_t *bytes, const struct q2e_cached_read *r)
{
	for (size_t i = 0; i < NREADS - 1; i++) {
		assert_true(r[i].ok);
		assert_memory_equal(r[i].buf, bytes + r[i].off, r[i].len);
	}
	assert_false(r[NREADS - 1].ok);
}

static void test_read_cached_many(void **state)
{
	uint8_t bytes[NCLUSTERS * CLUSTER], out[NREADS][200];
	struct q2e_cached_read r[NREADS];
	struct q2e_error err = { 0 };
	struct q2e_image *img;
	char path[] = "/tmp/q2e-test-model.XXXXXX";
	unsigned char resident;
	void *map;
	int fd;

	(void)state;
	make_image(bytes);
	img = open_bytes(bytes, sizeof(bytes));
	batch_reads(img, r, out);
	check_reads(bytes, r);
	q2e_image_close(img);

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, bytes, sizeof(bytes)), (ssize_t)sizeof(bytes));
	assert_int_equal(fsync(fd), 0);
	assert_int_equal(q2e_image_open(path, &img, &err), 0);
	memset(out, 0, sizeof(out));
	batch_reads(img, r, out);
	check_reads(bytes, r);
	/* Out of the page cache (mincore() asks without reading it in): the
	 * first read says so, not waiting for the device; a read that
	 * reports its bytes read them right. */
	assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	map = mmap(NULL, sizeof(bytes), PROT_READ, MAP_SHARED, fd, 0);
	assert_true(map != MAP_FAILED);
	assert_int_equal(mincore(map, sizeof(bytes), &resident), 0);
	munmap(map, sizeof(bytes));
	if (resident & 1) {
		print_message("the file stayed in the page cache: not tried\n");
	} else {
		memset(out, 0, sizeof(out));
		batch_reads(img, r, out);
		assert_false(r[0].ok);
		for (size_t i = 0; i < NREADS; i++)
			if (r[i].ok)
				assert_memory_equal(r[i].buf, bytes + r[i].off,
						    r[i].len);
	}
	q2e_image_close(img);
	close(fd);
	unlink(path);
}

/* The ranges a test's q2e_read_ahead_fill() is given: a length of 0 is
 * one passed over; the list ends with a length of UINT64_MAX. */
struct ahead_list {
	const struct q2e_extent *e;
	size_t i, asked;
};

static int next_listed(void *ctx, struct q2e_extent *e)
{
	struct ahead_list *l = ctx;
	struct q2e_extent x = l->e[l->i];

	if (x.length == UINT64_MAX)
		return Q2E_AHEAD_END;
	l->i++;
	l->asked++;
	*e = x;
	return x.length ? Q2E_AHEAD_READ : Q2E_AHEAD_PASS;
}

/* q2e_read_ahead: what a view names is read ahead up to the first range
 * too long; each range is found with the bytes the image has, a part of
 * one too, from the last found on; a range past the end is one the cache
 * lacked; a batch whose first read missed says the cache is short. */
static void test_read_ahead(void **state)
{
	static const struct q2e_extent list[] = {
		{ 0, 100 }, { 0, 0 }, { 200, 50 }, { 3000, 100 },
		{ 300, Q2E_READ_AHEAD_MAX + 1 }, { 400, 10 }, { 0, UINT64_MAX },
	};
	static const struct q2e_extent short_list[] = {
		{ 3000, 100 }, { 0, 10 }, { 0, UINT64_MAX },
	};
	static const struct q2e_extent none[] = { { 0, UINT64_MAX } };
	uint8_t bytes[NCLUSTERS * CLUSTER];
	struct ahead_list l = { list, 0, 0 };
	struct q2e_read_ahead *ra;
	const uint8_t *p = NULL;
	struct q2e_image *img;

	(void)state;
	make_image(bytes);
	img = open_bytes(bytes, sizeof(bytes));
	ra = q2e_read_ahead_new(img);
	assert_non_null(ra);
	/* Three read, one of them missing: the cache is not short. */
	assert_true(q2e_read_ahead_fill(ra, next_listed, &l));
	assert_int_equal(l.asked, 5);	/* stopped at the long one */
	assert_int_equal(q2e_read_ahead_find(ra, 0, 100, &p), 1);
	assert_memory_equal(p, bytes, 100);
	assert_int_equal(q2e_read_ahead_find(ra, 10, 20, &p), 1);
	assert_memory_equal(p, bytes + 10, 20);
	assert_int_equal(q2e_read_ahead_find(ra, 90, 20, &p), 0);
	assert_int_equal(q2e_read_ahead_find(ra, 200, 50, &p), 1);
	assert_memory_equal(p, bytes + 200, 50);
	assert_int_equal(q2e_read_ahead_find(ra, 0, 100, &p), 0);
	assert_int_equal(q2e_read_ahead_find(ra, 3000, 10, &p), -1);
	assert_int_equal(q2e_read_ahead_find(ra, 400, 10, &p), 0);
	assert_int_equal(q2e_read_ahead_find(ra, 300, 10, &p), 0);

	l = (struct ahead_list){ short_list, 0, 0 };
	assert_false(q2e_read_ahead_fill(ra, next_listed, &l));
	assert_int_equal(q2e_read_ahead_find(ra, 200, 50, &p), 0);
	assert_int_equal(q2e_read_ahead_find(ra, 0, 10, &p), 1);
	assert_memory_equal(p, bytes, 10);

	l = (struct ahead_list){ none, 0, 0 };
	assert_false(q2e_read_ahead_fill(ra, next_listed, &l));
	assert_int_equal(q2e_read_ahead_find(ra, 0, 10, &p), 0);
	q2e_read_ahead_free(ra);
	q2e_image_close(img);
}

/*
 * Refcount blocks counted in refcount table order, as QEMU's guess at
 * metadata preallocation does, read ahead 64 at a time
 * (q2e_image_refcounts_nonzero()): each block's count is its own, with
 * a block of the table asked for out of order in between, an entry of 0
 * and one past the end of the file; from memory and from a file.
 */
#define RB_BLOCKS 80
#define RB_FIRST 4	/* the first block's cluster */
#define RB_SIZE ((RB_FIRST + RB_BLOCKS) * CLUSTER)

static uint64_t rb_expected(unsigned k)
{
	return k == 40 || k == RB_BLOCKS - 1 ? 0 : k % 7 + 1;
}

static void make_refcount_image(uint8_t *img)
{
	memset(img, 0, RB_SIZE);
	memcpy(img, "QFI\xfb", 4);
	put_be32(img + 4, 3);			/* version */
	put_be32(img + 20, 9);			/* cluster_bits */
	put_be64(img + 24, 64 * 1024);		/* size */
	put_be32(img + 36, 2);			/* l1_size, entries 0 */
	put_be64(img + 40, 0x600);		/* l1_table_offset */
	put_be64(img + 48, 0x200);		/* refcount_table_offset */
	put_be32(img + 56, 2);			/* refcount_table_clusters */
	put_be32(img + 96, 4);			/* refcount_order */
	put_be32(img + 100, 104);		/* header_length */
	for (unsigned k = 0; k < RB_BLOCKS; k++) {
		uint64_t block = (uint64_t)(RB_FIRST + k) * CLUSTER;

		if (k == 40)
			continue;
		if (k == RB_BLOCKS - 1)
			block = 1ULL << 30;	/* past the end */
		put_be64(img + 0x200 + 8 * k, block);
		for (unsigned i = 0; i < rb_expected(k); i++)
			put_be16(img + block + 2 * i, (uint16_t)(k + 1));
	}
}

static void count_blocks(struct q2e_image *img)
{
	struct q2e_error err = { 0 };
	uint64_t n;

	for (unsigned k = 0; k < RB_BLOCKS; k++) {
		assert_int_equal(q2e_image_refcounts_nonzero(img, k * 256ULL,
							     256, &n, &err), 0);
		assert_int_equal(n, rb_expected(k));
		if (k == 30) {
			assert_int_equal(q2e_image_refcount(img, 5 * 256ULL, &n,
							    &err), 0);
			assert_int_equal(n, 6);
		}
	}
	assert_int_equal(q2e_image_refcounts_nonzero(img, 2 * 256ULL + 1, 2,
						     &n, &err), 0);
	assert_int_equal(n, 2);
}

static void test_refcount_blocks_ahead(void **state)
{
	static uint8_t bytes[RB_SIZE];
	struct q2e_error err = { 0 };
	struct q2e_image *img;
	char path[] = "/tmp/q2e-test-model.XXXXXX";
	int fd;

	(void)state;
	make_refcount_image(bytes);
	img = open_bytes(bytes, sizeof(bytes));
	count_blocks(img);
	q2e_image_close(img);

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, bytes, sizeof(bytes)), (ssize_t)sizeof(bytes));
	assert_int_equal(q2e_image_open(path, &img, &err), 0);
	count_blocks(img);
	q2e_image_close(img);
	close(fd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean_image),
		cmocka_unit_test(test_compressed_runs),
		cmocka_unit_test(test_typed_problems),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_snapshots_past_end),
		cmocka_unit_test(test_table_runs),
		cmocka_unit_test(test_owner_runs),
		cmocka_unit_test(test_claims_past_end),
		cmocka_unit_test(test_read_cached_many),
		cmocka_unit_test(test_read_ahead),
		cmocka_unit_test(test_refcount_blocks_ahead),
	};

	return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}

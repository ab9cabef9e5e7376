/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Growing an array and searching a sorted one (src/array.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/mman.h>

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

#define MIB ((size_t)1 << 20)

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 31 + seed);
}

static bool filled(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(i * 31 + seed))
			return false;
	return true;
}

/* Mapped arrays are zeros, start on a huge page from 2 MiB on, and keep
 * their bytes as they grow (copied into a huge one, in place, moved) and
 * shrink. */
static void test_map_array(void **state)
{
	unsigned char *p, *q;

	(void)state;
	p = q2e_map_array(100);
	assert_non_null(p);
	assert_true(q2e_all_zero(p, 100));
	fill(p, 100, 1);
	q = q2e_remap_array(p, 100, 5000);	/* small to small */
	assert_non_null(q);
	assert_true(filled(q, 100, 1));
	assert_true(q2e_all_zero(q + 100, 4900));
	p = q2e_remap_array(q, 5000, 3 * MIB);	/* small to huge: copied */
	assert_non_null(p);
	assert_int_equal((uintptr_t)p % (2 * MIB), 0);
	assert_true(filled(p, 100, 1));
	assert_true(q2e_all_zero(p + 100, 3 * MIB - 100));
	fill(p, 3 * MIB, 2);
	q = q2e_remap_array(p, 3 * MIB, 9 * MIB);	/* huge to huge */
	assert_non_null(q);
	assert_true(filled(q, 3 * MIB, 2));
	assert_true(q2e_all_zero(q + 3 * MIB, 6 * MIB));
	p = q2e_remap_array(q, 9 * MIB, MIB + 7);	/* shrunk */
	assert_ptr_equal(p, q);
	assert_true(filled(p, MIB + 7, 2));
	q2e_unmap_array(p, MIB + 7);
	q2e_unmap_array(NULL, 10);
	p = q2e_remap_array(NULL, 0, 4 * MIB);	/* none yet: mapped */
	assert_non_null(p);
	assert_int_equal((uintptr_t)p % (2 * MIB), 0);
	q2e_unmap_array(p, 4 * MIB);
	/* Cut where that frees an eighth of a huge page or more. */
	assert_int_equal(q2e_array_trim_len(3 * MIB, 2 * MIB - 4096), 2 * MIB);
	assert_int_equal(q2e_array_trim_len(3 * MIB, MIB), MIB);
	assert_int_equal(q2e_array_trim_len(MIB, MIB - 4096), MIB - 4096);
	assert_int_equal(q2e_array_trim_len(3 * MIB, 3 * MIB - 8), 3 * MIB - 8);
	assert_null(q2e_map_array(0));
	assert_null(q2e_map_array(SIZE_MAX - 4096));
}

/* The mappings of /proc/self/maps that hold bytes of [P, P + LEN), or
 * -1. */
static int mappings_over(const void *p, size_t len)
{
	FILE *f = fopen("/proc/self/maps", "r");
	uintptr_t lo = (uintptr_t)p, hi = lo + len;
	unsigned long a, b;
	char line[512];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a < hi && b > lo)
			n++;
	fclose(f);
	return n;
}

/*
 * An array of FROM bytes that cannot grow in place (a page is mapped
 * after it) moves with its bytes to TO, and the grown part is zeros that
 * can be written.  It is one mapping, so that it grows again (to TO2, in
 * place or moved again): a move onto the front of a fresh mapping left
 * two, which no later growth could take (before Linux 6.17).
 */
static void remap_moved(size_t from, size_t to, size_t to2)
{
	unsigned char *p, *q, *block;

	p = q2e_map_array(from);
	assert_non_null(p);
	fill(p, from, 5);
	block = mmap(p + from, 4096, PROT_READ,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (block != p + from) {	/* taken already: blocked all the same */
		if (block != MAP_FAILED)
			munmap(block, 4096);
		block = NULL;
	}
	q = q2e_remap_array(p, from, to);
	assert_non_null(q);
	if (block)
		assert_ptr_not_equal(q, p);
	if (to >= 2 * MIB)
		assert_int_equal((uintptr_t)q % (2 * MIB), 0);
	assert_true(filled(q, from, 5));
	assert_true(q2e_all_zero(q + from, to - from));
	fill(q + from, to - from, 6);
	assert_true(filled(q + from, to - from, 6));
	assert_int_equal(mappings_over(q, to), 1);
	p = q2e_remap_array(q, to, to2);
	assert_non_null(p);
	assert_true(filled(p, from, 5));
	assert_true(filled(p + from, to - from, 6));
	assert_true(q2e_all_zero(p + to, to2 - to));
	assert_int_equal(mappings_over(p, to2), 1);
	q2e_unmap_array(p, to2);
	if (block)
		munmap(block, 4096);
}

static void test_remap_array_moved(void **state)
{
	(void)state;
	remap_moved(11 * 4096, 13 * 4096, 17 * 4096);	/* small pages */
	remap_moved(3 * MIB, 7 * MIB, 11 * MIB);	/* huge pages */
}

/* The kB of huge pages backing the mapping that holds P, or -1. */
static long huge_kb(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[256];
	unsigned long lo, hi;
	bool in = false;
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') &&
		    line[strspn(line, "0123456789abcdef")] == '-')
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/*
 * A small array grown past 2 MiB is backed by a huge page: its small
 * pages, moved into the stretch, would have kept the kernel from making
 * one (each small page a fault, 11 us on the benchmark's machine).
 * Skipped where a fresh mapping gets no huge page either (THP off).
 */
static void test_map_array_huge(void **state)
{
	unsigned char *p = q2e_map_array(4 * MIB), *q;

	(void)state;
	assert_non_null(p);
	memset(p, 1, 4 * MIB);
	if (huge_kb(p) <= 0) {
		q2e_unmap_array(p, 4 * MIB);
		skip();
	}
	q2e_unmap_array(p, 4 * MIB);
	p = q2e_map_array(8192);
	assert_non_null(p);
	memset(p, 2, 8192);
	q = q2e_remap_array(p, 8192, 4 * MIB);
	assert_non_null(q);
	memset(q + 8192, 3, 4 * MIB - 8192);
	assert_int_equal((uintptr_t)q % (2 * MIB), 0);
	assert_int_equal(huge_kb(q), 4096);	/* both, the first too */
	assert_int_equal(q[0], 2);
	assert_int_equal(q[4 * MIB - 1], 3);
	q2e_unmap_array(q, 4 * MIB);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grow),
		cmocka_unit_test(test_first_above),
		cmocka_unit_test(test_map_array),
		cmocka_unit_test(test_remap_array_moved),
		cmocka_unit_test(test_map_array_huge),
	};

	return cmocka_run_group_tests_name("array", tests, NULL, NULL);
}

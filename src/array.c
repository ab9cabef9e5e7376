/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE		/* mremap() */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qcow2elf/array.h"
#include "qcow2elf/error.h"

int q2e_grow_array(void *arrayp, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap : 8;
	void *array, *n;

	if (need <= *cap)
		return 0;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return Q2E_ENOMEM;
		ncap *= 2;
	}
	if (ncap > SIZE_MAX / elem)
		return Q2E_ENOMEM;
	/* The pointer is copied, not cast: ARRAYP may point to any T *. */
	memcpy(&array, arrayp, sizeof(array));
	n = realloc(array, ncap * elem);
	if (!n)
		return Q2E_ENOMEM;
	memcpy(arrayp, &n, sizeof(n));
	*cap = ncap;
	return 0;
}

size_t q2e_first_above_at(const void *base, size_t n, size_t elem,
			  size_t field, uint64_t key)
{
	const unsigned char *p = base;
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t v;

		memcpy(&v, p + mid * elem + field, sizeof(v));
		if (v <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool q2e_all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	/* Each byte equals the one after it, and the first is 0: libc's
	 * memcmp, many bytes a step. */
	return n == 0 || (b[0] == 0 && memcmp(b, b + 1, n - 1) == 0);
}

#define HUGE_PAGE Q2E_HUGE_PAGE

/* LEN rounded up to whole pages; 0 if that would wrap. */
static size_t page_round(size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	if (len > SIZE_MAX - HUGE_PAGE - page)
		return 0;
	return (len + page - 1) / page * page;
}

/*
 * The kernel gives huge pages only to whole aligned 2 MiB stretches of a
 * mapping, and aligns no mapping whose length is not a multiple of 2 MiB:
 * so the mapping is aligned here.  The advice covers all of it, which
 * keeps it one mapping for mremap(); the tail, short of a whole huge
 * page, stays in small pages all the same.
 */
static void advise_huge(void *p, size_t len)
{
#ifdef MADV_HUGEPAGE
	if (len >= HUGE_PAGE)
		madvise(p, len, MADV_HUGEPAGE);	/* advice: may fail */
#else
	(void)p;
	(void)len;
#endif
}

void *q2e_map_array(size_t len)
{
	const int prot = PROT_READ | PROT_WRITE;
	const int flags = MAP_PRIVATE | MAP_ANONYMOUS;
	size_t n = page_round(len), all, lead;
	char *p;

	if (!n)
		return NULL;
	all = n < HUGE_PAGE ? n : n + HUGE_PAGE;
	p = mmap(NULL, all, prot, flags, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (all == n)
		return p;
	lead = (HUGE_PAGE - (uintptr_t)p % HUGE_PAGE) % HUGE_PAGE;
	if (lead)
		munmap(p, lead);
	munmap(p + lead + n, all - lead - n);
	advise_huge(p + lead, n);
	return p + lead;
}

void *q2e_remap_array(void *p, size_t old, size_t len)
{
	size_t o = page_round(old), n = page_round(len);
	void *q = MAP_FAILED, *to;

	if (!p)
		return q2e_map_array(len);
	if (!n)
		return NULL;
	if (n <= o) {
		if (n < o)
			munmap((char *)p + n, o - n);
		return p;
	}
	/* Small pages moved into a stretch that could be a huge page would
	 * keep it from becoming one: bytes short of one are copied. */
	if (o < HUGE_PAGE && n >= HUGE_PAGE) {
		to = q2e_map_array(len);
		if (to) {
			memcpy(to, p, o);
			munmap(p, o);
		}
		return to;
	}
	/* In place where the pages after it are free. */
	q = mremap(p, o, n, 0);
	/* Else the pages move to an aligned place: none is copied.  They
	 * move at their old length onto the front of a mapping as long as
	 * the array, whose rest is then given back and taken again by
	 * growing them in place: one mapping, as a move that grew them would
	 * leave, which valgrind (3.19) takes to end at the old length.  (A
	 * move onto the front alone left two mappings the kernel does not
	 * merge: no later growth could be in place, and before Linux 6.17
	 * none could move either.)  Near the end of the address space
	 * (ulimit -v) there may be no room for that place's slack beside
	 * the array, and another thread may take the rest first: then
	 * anywhere. */
	if (q == MAP_FAILED && (to = q2e_map_array(len))) {
		q = mremap(p, o, o, MREMAP_MAYMOVE | MREMAP_FIXED, to);
		if (q == MAP_FAILED) {
			munmap(to, n);
		} else {
			p = q;
			munmap((char *)p + o, n - o);
			q = mremap(p, o, n, 0);
		}
	}
	if (q == MAP_FAILED)
		q = mremap(p, o, n, MREMAP_MAYMOVE);
	if (q == MAP_FAILED)
		return NULL;
	advise_huge(q, n);
	return q;
}

size_t q2e_array_trim_len(size_t old, size_t len)
{
	size_t whole = (len + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;

	if (old >= HUGE_PAGE && whole <= old && whole - len < HUGE_PAGE / 8)
		return whole;
	return len;
}

void q2e_unmap_array(void *p, size_t len)
{
	if (p)
		munmap(p, page_round(len));
}

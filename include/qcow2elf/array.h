/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What every layer does with arrays, written once (src/array.c): growing
 * one geometrically, finding a place in a sorted one, and telling whether
 * bytes are all zeros.
 */
#ifndef QCOW2ELF_ARRAY_H
#define QCOW2ELF_ARRAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Makes the array at *ARRAYP, of *CAP elements of ELEM bytes, hold at least
 * NEED elements, doubling its capacity as needed.  0, or Q2E_ENOMEM with
 * the array left as it was.  Use through q2e_grow().
 */
int q2e_grow_array(void *arrayp, size_t *cap, size_t need, size_t elem);
#define q2e_grow(array, cap, need) \
	q2e_grow_array(&(array), &(cap), (need), sizeof(*(array)))

/*
 * The first of N elements of ELEM bytes at BASE, sorted by the uint64_t
 * member at byte FIELD, whose member is above KEY; N if none is.  Use
 * through q2e_first_above().
 */
size_t q2e_first_above_at(const void *base, size_t n, size_t elem,
			  size_t field, uint64_t key);
#define q2e_first_above(array, n, member, key)                              \
	q2e_first_above_at((array), (n), sizeof(*(array)),                 \
			   offsetof(__typeof__(*(array)), member), (key))

/* The huge page size of x86-64 (a PMD): elsewhere, alignment to it is
 * harmless. */
#define Q2E_HUGE_PAGE ((size_t)2 << 20)

/*
 * A large array in an anonymous mapping of its own, of LEN bytes (pages
 * of zeros), that the kernel backs with huge pages where it holds whole
 * aligned ones (2 MiB on x86-64): a first touch of a small page costs a
 * fault, about 11 us each on the benchmark's virtual machine, and a huge
 * page stands for 512 of them.  From 2 MiB on the mapping starts on a
 * huge page; its tail stays in small pages, so a page never holds more
 * than the array.  NULL if there is no memory.
 */
void *q2e_map_array(size_t len);
/*
 * The array at P, of OLD bytes, made LEN bytes long (LEN > 0), its bytes
 * kept and those added zeros; it may move.  NULL if there is no memory,
 * P left as it was.  P NULL maps a new one.
 */
void *q2e_remap_array(void *p, size_t old, size_t len);
/*
 * The length to shrink a mapped array of OLD bytes to, to hold LEN: LEN,
 * or the end of the huge page LEN ends in where cutting that page would
 * free less than an eighth of it.  The kernel splits a huge page that is
 * cut, and on the benchmark's virtual machine each of its 512 small pages
 * then cost about 7 us at its next touch.
 */
size_t q2e_array_trim_len(size_t old, size_t len);
/* Unmaps the array at P of LEN bytes (P NULL: nothing). */
void q2e_unmap_array(void *p, size_t len);

/* Whether the N bytes at P are all zeros (true if N is 0). */
bool q2e_all_zero(const void *p, size_t n);

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Hashing for the open-addressing tables of offsets (diff's pairs of
 * tables, check's tables read again).
 */
#ifndef QCOW2ELF_HASH_H
#define QCOW2ELF_HASH_H

#include <stdint.h>

/*
 * splitmix64's finalizer: every bit of Z moves every bit of the result.
 * A product's middle bits follow only the key's low bits, and offsets
 * that differ only above them (L1 entries past the end of the file, 1 <<
 * 39 apart) all fell in one slot.
 */
static inline uint64_t q2e_mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

#endif

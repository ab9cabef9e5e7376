/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

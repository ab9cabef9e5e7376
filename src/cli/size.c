/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Sizes on the command line as qemu-img reads them (QEMU 7.2's
 * qemu_strtosz(), through qemu-img's cvtnum()): a decimal number with an
 * optional fraction, or a hex one, then at most one suffix, B, K, M, G, T,
 * P or E in either case (bytes when there is none).  A fraction needs a
 * suffix other than B unless it is zero, and rounds half up; hex takes a
 * suffix (QEMU warns that it is deprecated) but no fraction; a minus sign
 * or an exponent is refused, and so is a size past 2^63 - 1.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The shift of suffix C, or -1 if C is none. */
static int suffix_shift(char c)
{
	static const char suffixes[] = "BKMGTPE";
	const char *p = c ? strchr(suffixes, toupper((unsigned char)c)) : NULL;

	return p ? (int)(p - suffixes) * 10 : -1;
}

/*
 * The fraction FRAC (its point and digits) times 2^SHIFT, as QEMU
 * computes it: read as a double, kept as a 64-bit binary fraction, then
 * scaled and rounded half up.  So 7.99999E is QEMU's, not the exact
 * decimal (which differs in the last digits).  *HELD_BITS is whether
 * the binary fraction is not zero (QEMU refuses such a fraction of a
 * byte).
 */
static uint64_t fraction_scaled(const char *frac, int shift, bool *held_bits)
{
	double d = strtod(frac, NULL);
	/* A fraction that reads as 1.0 (.99999999999999999999) overflows
	 * QEMU's conversion, which gives 0 on x86: qemu-img takes
	 * 1.9999999999999999999k for 1024, and so does this. */
	uint64_t f = d >= 1.0 ? 0 : (uint64_t)(d * 0x1p64);
	/* f * 2^shift as a 64.64 fixed-point number: its integer part, plus
	 * one where its fraction is a half or more */
	uint64_t whole = shift ? f >> (64 - shift) : 0;

	*held_bits = f != 0;
	return whole + ((f << shift) >> 63);
}

int parse_size(const char *s, uint64_t *out)
{
	const char *p = s, *frac = NULL;
	bool held_bits;
	uint64_t v, f = 0;
	int shift;
	char *end;

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '+')	/* strtoull()'s, which QEMU takes */
		p++;
	if (!isdigit((unsigned char)*p))
		return -EINVAL;	/* a sign, or nothing */
	errno = 0;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		if (!isxdigit((unsigned char)p[2]))
			return -EINVAL;
		v = strtoull(p, &end, 16);
	} else {
		v = strtoull(p, &end, 10);
		if (*end == '.') {
			frac = end++;
			while (isdigit((unsigned char)*end))
				end++;
		}
	}
	if (errno == ERANGE)
		return -ERANGE;
	shift = suffix_shift(*end);
	if (shift >= 0)
		end++;
	if (*end)
		return -EINVAL;
	if (shift < 0)
		shift = 0;
	if (frac) {
		f = fraction_scaled(frac, shift, &held_bits);
		if (!shift && held_bits)
			return -EINVAL;	/* a fraction of a byte */
	}
	if (v > (UINT64_MAX >> shift) || (v << shift) > (uint64_t)INT64_MAX - f)
		return -ERANGE;
	*out = (v << shift) + f;
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The fuzz target's reuse of the last dumps' DWARF (src/emit/dwarf_reuse.c):
 * with it on, every dump must be byte for byte the dump made without it,
 * whether its types are those of a dump just made (reused) or not.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "qcow2elf/dump.h"
#include "qcow2elf/model.h"
#include "emit/dwarf_reuse.h"

#define NIMAGES 4

static void be(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

/*
 * A version 3 image of four clusters of 2^CBITS bytes: the header, an L1
 * table of L1_SIZE entries (the first FIRST_L1), the refcount table and a
 * refcount block.  Its L1 table's size shapes its DWARF types; FIRST_L1
 * does not.
 */
static uint8_t *image(unsigned cbits, uint32_t l1_size, uint64_t first_l1,
		      size_t *len)
{
	uint64_t cs = UINT64_C(1) << cbits;
	uint8_t *p = calloc(4, cs);

	assert_non_null(p);
	memcpy(p, "QFI\xfb", 4);
	be(p + 4, 3, 4);
	be(p + 20, cbits, 4);
	be(p + 24, UINT64_C(1) << 30, 8);
	be(p + 36, l1_size, 4);
	be(p + 40, cs, 8);
	be(p + 48, 2 * cs, 8);
	be(p + 56, 1, 4);
	be(p + 96, 4, 4);
	be(p + 100, 104, 4);
	be(p + cs, first_l1, 8);
	be(p + 2 * cs, 3 * cs, 8);
	for (unsigned i = 0; i < 4; i++)
		be(p + 3 * cs + 2 * i, 1, 2);
	*len = 4 * cs;
	return p;
}

/* The dump of DATA, in memory (free() it). */
static uint8_t *dump(const uint8_t *data, size_t len, size_t *size)
{
	struct q2e_dump_options opts = { 0 };
	struct q2e_dump_result res;
	struct q2e_error err = { 0 };
	struct q2e_image *img;
	int fd = memfd_create("dump", 0);
	struct stat st;
	uint8_t *bytes;

	assert_true(fd >= 0);
	assert_int_equal(q2e_image_open_memory("unit.qcow2", data, len, &img,
					       &err), 0);
	assert_int_equal(q2e_dump_write_fd(img, fd, "unit.elf", &opts, &res,
					   &err), 0);
	q2e_image_close(img);
	assert_int_equal(fstat(fd, &st), 0);
	*size = (size_t)st.st_size;
	bytes = malloc(*size);
	assert_non_null(bytes);
	assert_int_equal(pread(fd, bytes, *size, 0), (ssize_t)*size);
	close(fd);
	return bytes;
}

static void test_reused_dumps_are_the_same(void **state)
{
	/* The first's types but for the L1 table's size, the first's types
	 * with another L1 entry, and 512-byte clusters. */
	uint8_t *img[NIMAGES], *fresh[NIMAGES];
	size_t len[NIMAGES], fresh_len[NIMAGES];
	static const unsigned order[] = { 0, 1, 0, 2, 2, 0, 1, 1, 3, 0, 3 };

	(void)state;
	img[0] = image(12, 1, 0, &len[0]);
	img[1] = image(12, 3, 0, &len[1]);
	img[2] = image(12, 1, 0x80000000000a0000, &len[2]);
	img[3] = image(9, 1, 0, &len[3]);
	for (unsigned i = 0; i < NIMAGES; i++)
		fresh[i] = dump(img[i], len[i], &fresh_len[i]);
	assert_true(fresh_len[0] != fresh_len[1] ||
		    memcmp(fresh[0], fresh[1], fresh_len[0]) != 0);
	q2e_dwarf_reuse(true);
	for (unsigned k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
		unsigned i = order[k];
		size_t n;
		uint8_t *again = dump(img[i], len[i], &n);

		assert_int_equal(n, fresh_len[i]);
		assert_memory_equal(again, fresh[i], n);
		free(again);
	}
	q2e_dwarf_reuse(false);
	for (unsigned i = 0; i < NIMAGES; i++) {
		free(img[i]);
		free(fresh[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reused_dumps_are_the_same),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

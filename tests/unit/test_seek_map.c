/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for where an image file holds data (src/source/seek_map.c,
 * through q2e_source_extent()): on ext4 the answers come from the extent
 * map, and they must be the ones SEEK_DATA and SEEK_HOLE give, offset by
 * offset, over a file of data, holes, fallocated extents (some of their
 * pages read into the page cache, which makes them data to SEEK_DATA) and
 * blocks written but not yet allocated.  Elsewhere the source asks lseek()
 * itself, and the test is skipped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cmocka.h>

#include "source/source.h"

#define BLK 4096ULL
#define NBLK 600ULL
#define EXT4_MAGIC 0xEF53

/* lseek() as a driver without holes answers (generic_file_llseek(), as
 * ext2's own driver, whose magic is ext4's): every byte is data.  With
 * 64-bit file offsets the calls are to lseek64. */
static bool no_holes;
off_t __real_lseek64(int fd, off_t off, int whence);
off_t __wrap_lseek64(int fd, off_t off, int whence);
off_t __wrap_lseek64(int fd, off_t off, int whence)
{
	struct stat st;

	if (!no_holes || (whence != SEEK_DATA && whence != SEEK_HOLE))
		return __real_lseek64(fd, off, whence);
	if (fstat(fd, &st) < 0)
		return -1;
	if (off >= st.st_size) {
		errno = ENXIO;
		return -1;
	}
	return whence == SEEK_DATA ? off : st.st_size;
}

/* What file_extent() made of lseek() before the extent map: data or a
 * hole at OFF, and for how long. */
static void by_lseek(int fd, uint64_t size, uint64_t off, bool *data,
		     uint64_t *len)
{
	off_t d = lseek(fd, (off_t)off, SEEK_DATA), h;

	if (d < 0) {
		assert_int_equal(errno, ENXIO);
		*data = false;
		*len = size - off;
		return;
	}
	if ((uint64_t)d > off) {
		*data = false;
		*len = (uint64_t)d - off;
		return;
	}
	h = lseek(fd, (off_t)off, SEEK_HOLE);
	*data = true;
	*len = (h < 0 || (uint64_t)h > size ? size : (uint64_t)h) - off;
}

static void put(int fd, uint64_t blk, uint64_t n)
{
	static uint8_t buf[BLK];

	memset(buf, 0x5a, sizeof(buf));
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(pwrite(fd, buf, BLK, (off_t)((blk + i) * BLK)),
				 (ssize_t)BLK);
}

static void falloc(int fd, uint64_t blk, uint64_t n)
{
	assert_int_equal(fallocate(fd, 0, (off_t)(blk * BLK),
				   (off_t)(n * BLK)), 0);
}

static void answers_are_lseeks(void)
{
	char path[] = "/tmp/q2e-test-seek-map.XXXXXX";
	char other_path[] = "/tmp/q2e-test-seek-map.XXXXXX";
	uint64_t size = NBLK * BLK + 1000;	/* a partial last block */
	struct q2e_error err = { 0 };
	struct q2e_source *src;
	struct statfs fs;
	uint8_t buf[BLK];
	int fd = mkstemp(path), other = mkstemp(other_path);

	assert_true(fd >= 0 && other >= 0);
	unlink(other_path);
	if (fstatfs(fd, &fs) < 0 || fs.f_type != EXT4_MAGIC) {
		close(fd);
		close(other);
		unlink(path);
		skip();
	}
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	put(fd, 0, 3);			/* data from the start */
	falloc(fd, 3, 20);		/* data meets unwritten */
	put(fd, 40, 1);			/* a hole, then data */
	falloc(fd, 60, 40);		/* unwritten, some pages read */
	assert_int_equal(pread(fd, buf, BLK, (off_t)(70 * BLK)), (ssize_t)BLK);
	put(fd, 100, 5);		/* unwritten meets data */
	put(fd, 110, 2);		/* data meets unwritten read */
	falloc(fd, 112, 10);
	assert_int_equal(pread(fd, buf, BLK, (off_t)(112 * BLK)), (ssize_t)BLK);
	for (uint64_t b = 449; b >= 150; b--) {
		/* One block each, from the last, the other file's between:
		 * 300 extents end to end, more than one FIEMAP call lists. */
		falloc(fd, b, 1);
		assert_int_equal(fallocate(other, 0, (off_t)(b * BLK),
					   (off_t)BLK), 0);
	}
	put(fd, 150, 300);
	falloc(fd, 470, 10);		/* unwritten, then a hole, then */
	assert_int_equal(fsync(fd), 0);
	put(fd, 500, 4);		/* delayed allocation (not synced) */
	put(fd, NBLK, 1);		/* the partial last block */
	assert_int_equal(ftruncate(fd, (off_t)size), 0);

	/* From the start, then from the end backwards: the map is read as
	 * far as asked, each time by a source of its own. */
	for (int pass = 0; pass < 2; pass++) {
		assert_int_equal(q2e_source_open(path, &src, &err), 0);
		for (uint64_t i = 0; i <= NBLK * 4; i++) {
			uint64_t k = pass ? NBLK * 4 - i : i;
			uint64_t off = k * BLK / 4 + (k % 3);
			bool want_data, got_data;
			uint64_t want_len, got_len;

			if (off >= size)
				continue;
			by_lseek(fd, size, off, &want_data, &want_len);
			assert_int_equal(q2e_source_extent(src, off, &got_data,
							   &got_len, &err), 0);
			if (got_data != want_data || got_len != want_len)
				fail_msg("at 0x%llx: %s for %llu, lseek: %s for %llu",
					 (unsigned long long)off,
					 got_data ? "data" : "hole",
					 (unsigned long long)got_len,
					 want_data ? "data" : "hole",
					 (unsigned long long)want_len);
		}
		q2e_source_close(src);
	}
	close(fd);
	close(other);
	unlink(path);
}

static void test_answers_are_lseeks(void **state)
{
	(void)state;
	no_holes = false;
	answers_are_lseeks();
}

/* Where lseek() sees no holes, the map's first answer that a hole decides
 * disagrees, and lseek() answers from then on. */
static void test_a_driver_without_holes(void **state)
{
	(void)state;
	no_holes = true;
	answers_are_lseeks();
	no_holes = false;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answers_are_lseeks),
		cmocka_unit_test(test_a_driver_without_holes),
	};

	return cmocka_run_group_tests_name("seek_map", tests, NULL, NULL);
}

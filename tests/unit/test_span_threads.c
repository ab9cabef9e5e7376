/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The dump's copying threads (src/emit/span_threads.c) and the writeback
 * thread (src/emit/writeback.c), driven from memory.  The link wraps
 * (Makefile, --wrap) stand in for what a command line cannot choose: which
 * spans the page cache lacks, a write that fails or comes up short, a
 * thread that cannot start, a sync_file_range() that blocks.
 *
 * The image: N regions of 512 bytes, one every 64 KiB (an L2 table every
 * 32 KiB of a 512-byte cluster image, one written in two), so that each
 * is a span of its own.  400 of them are copied by one thread, 4,000 by
 * two (split at the 2,000th, the half of their cost).  Each test checks
 * the file holds every span's bytes at its place, and which spans the
 * main thread read: those the threads left, no more, no fewer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "emit/spans.h"
#include "emit/writeback.h"

#define NMAX 4000
#define STRIDE 65536U
#define SIZE 512U
#define BASE 4096U		/* file offset of the first span */

/* What the wraps do; set by a test before it starts the threads. */
static bool missing[NMAX];	/* the page cache lacks region i */
static bool zeros[NMAX];	/* region i is all zeros */
static atomic_int main_reads;	/* q2e_image_read_bytes() calls */
static atomic_int main_read_of[NMAX];
static atomic_int cached_reads;	/* one a span asked of the cache */
static atomic_int batched_reads;	/* spans asked of it together */
static bool threads_fail;	/* pthread_create() fails */
static int write_mode;
enum { WRITE_OK, WRITE_CHOPPY, WRITE_FAIL, WRITE_NOTHING };
static atomic_bool write_failed;
static atomic_int syncs;	/* sync_file_range() calls */
static atomic_bool sync_block;	/* the first sync_file_range() waits */
static atomic_bool sync_entered;

static uint8_t pattern(uint64_t off)
{
	if (zeros[off / STRIDE])
		return 0;
	return (uint8_t)((off * 131 + (off >> 9) * 7) % 251 + 1);
}

static void fill(uint64_t off, uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = pattern(off + i);
}

bool __wrap_q2e_image_read_cached(struct q2e_image *img, uint64_t off,
				  uint8_t *buf, size_t len);
bool __wrap_q2e_image_read_cached(struct q2e_image *img, uint64_t off,
				  uint8_t *buf, size_t len)
{
	(void)img;
	atomic_fetch_add(&cached_reads, 1);
	if (missing[off / STRIDE])
		return false;
	fill(off, buf, len);
	return true;
}

/* The threads' reads made ahead (src/model/read_ahead.c), each as one
 * q2e_image_read_cached(): no batch of the model's is made. */
struct q2e_image_batch *__wrap_q2e_image_batch_open(struct q2e_image *img);
struct q2e_image_batch *__wrap_q2e_image_batch_open(struct q2e_image *img)
{
	(void)img;
	return NULL;
}

void __wrap_q2e_image_read_cached_many(struct q2e_image *img,
				       struct q2e_image_batch *b,
				       struct q2e_cached_read *r, size_t n);
void __wrap_q2e_image_read_cached_many(struct q2e_image *img,
				       struct q2e_image_batch *b,
				       struct q2e_cached_read *r, size_t n)
{
	assert_null(b);
	atomic_fetch_add(&batched_reads, 1);
	for (size_t i = 0; i < n; i++)
		r[i].ok = __wrap_q2e_image_read_cached(img, r[i].off, r[i].buf,
						       r[i].len);
}

int __wrap_q2e_image_read_bytes(struct q2e_image *img, uint64_t off,
				uint8_t *buf, size_t len, struct q2e_error *err);
int __wrap_q2e_image_read_bytes(struct q2e_image *img, uint64_t off,
				uint8_t *buf, size_t len, struct q2e_error *err)
{
	(void)img;
	(void)err;
	atomic_fetch_add(&main_reads, 1);
	atomic_fetch_add(&main_read_of[off / STRIDE], 1);
	fill(off, buf, len);
	return 0;
}

ssize_t __real_pwrite64(int fd, const void *buf, size_t len, off_t off);
ssize_t __wrap_pwrite64(int fd, const void *buf, size_t len, off_t off);
ssize_t __wrap_pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	static _Thread_local unsigned calls;

	switch (write_mode) {
	case WRITE_CHOPPY:	/* EINTR every other call, else 100 bytes */
		if (calls++ % 2 == 0) {
			errno = EINTR;
			return -1;
		}
		return __real_pwrite64(fd, buf, len < 100 ? len : 100, off);
	case WRITE_FAIL:
		atomic_store(&write_failed, true);
		errno = EFBIG;
		return -1;
	case WRITE_NOTHING:
		atomic_store(&write_failed, true);
		return 0;
	default:
		return __real_pwrite64(fd, buf, len, off);
	}
}

int __real_pthread_create(pthread_t *t, const pthread_attr_t *attr,
			  void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr,
			  void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr,
			  void *(*fn)(void *), void *arg)
{
	if (threads_fail)
		return EAGAIN;
	return __real_pthread_create(t, attr, fn, arg);
}

int __wrap_sync_file_range(int fd, off64_t off, off64_t len,
			   unsigned int flags);
int __wrap_sync_file_range(int fd, off64_t off, off64_t len,
			   unsigned int flags)
{
	(void)fd;
	(void)off;
	(void)len;
	(void)flags;
	atomic_store(&sync_entered, true);
	while (atomic_load(&sync_block))
		usleep(1000);
	atomic_fetch_add(&syncs, 1);
	return 0;
}

struct fixture {
	struct q2e_image img;
	struct q2e_region regions[NMAX];
	struct q2e_out_section secs[NMAX];
	uint32_t idx[NMAX];
	struct q2e_by_addr by;
	struct q2e_error err;
	struct q2e_spans_job job;
	int fd;
	size_t n;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->fd = memfd_create("span_threads", 0);
	if (f->fd < 0)
		return -1;
	memset(missing, 0, sizeof(missing));
	memset(zeros, 0, sizeof(zeros));
	for (size_t i = 0; i < NMAX; i++)
		atomic_store(&main_read_of[i], 0);
	atomic_store(&main_reads, 0);
	atomic_store(&cached_reads, 0);
	atomic_store(&batched_reads, 0);
	atomic_store(&write_failed, false);
	atomic_store(&syncs, 0);
	atomic_store(&sync_entered, false);
	atomic_store(&sync_block, false);
	threads_fail = false;
	write_mode = WRITE_OK;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	close(f->fd);
	free(f);
	return 0;
}

/* N regions, laid out one after another from BASE, and the job. */
static void make(struct fixture *f, size_t n)
{
	f->n = n;
	for (size_t i = 0; i < n; i++) {
		f->regions[i] = (struct q2e_region){ .kind = Q2E_REGION_L2,
						     .offset = i * STRIDE,
						     .size = SIZE,
						     .avail = SIZE };
		f->secs[i] = (struct q2e_out_section){
			.region = &f->regions[i],
			.file_offset = BASE + i * SIZE };
		f->idx[i] = (uint32_t)i;
	}
	f->img.regions = f->regions;
	f->img.nregions = n;
	f->by = (struct q2e_by_addr){ f->secs, f->idx, n };
	f->job = (struct q2e_spans_job){ .img = &f->img, .by = &f->by,
					 .fd = f->fd, .path = "out.elf",
					 .err = &f->err };
}

/* Region I made SIZE bytes long, over those after it, the file laid out
 * again as the dump's layout() does: each span once, from BASE. */
static void widen(struct fixture *f, size_t i, uint64_t size)
{
	struct q2e_span sp;
	uint64_t base = BASE;
	size_t next = 0;

	f->regions[i].size = f->regions[i].avail = size;
	while (q2e_span_next(&f->by, &next, &sp)) {
		for (size_t k = sp.first; k < sp.last; k++)
			f->secs[k].file_offset =
				base + (f->regions[k].offset - sp.start);
		base += sp.end - sp.start;
	}
}

/* The file holds each region's bytes at its section's offset. */
static void assert_file(const struct fixture *f)
{
	static uint8_t got[16 * STRIDE], want[16 * STRIDE];

	for (size_t i = 0; i < f->n; i++) {
		size_t len = (size_t)f->regions[i].avail;
		ssize_t r = pread(f->fd, got, len,
				  (off_t)f->secs[i].file_offset);

		assert_true(len <= sizeof(got));
		assert_int_equal(r, len);
		fill(i * STRIDE, want, len);
		if (memcmp(got, want, len) != 0)
			fail_msg("region %zu: not its bytes", i);
	}
}

/* The spans the main thread read are those in WANT[0..N), each once. */
static void assert_main_read(const struct fixture *f, const size_t *want,
			     size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < f->n; i++) {
		int reads = atomic_load(&main_read_of[i]);

		if (k < n && want[k] == i) {
			if (reads != 1)
				fail_msg("region %zu: read %d times by the main thread, not once",
					 i, reads);
			k++;
		} else if (reads != 0) {
			fail_msg("region %zu: read by the main thread, not left to it",
				 i);
		}
	}
}

static int copy(struct fixture *f)
{
	q2e_spans_start(&f->job);
	return q2e_spans_finish(&f->job, false);
}

/* Copied, the file is right and the main thread read LEFT[0..N). */
static void copy_and_check(struct fixture *f, const size_t *left, size_t n)
{
	assert_int_equal(copy(f), 0);
	assert_file(f);
	assert_main_read(f, left, n);
}

/* N regions, copied by the caller alone: none read from the cache. */
static void assert_caller_copies_all(struct fixture *f, size_t n)
{
	static size_t all[NMAX];

	make(f, n);
	for (size_t i = 0; i < n; i++)
		all[i] = i;
	q2e_spans_start(&f->job);
	assert_true(q2e_spans_left_over(&f->job));
	assert_int_equal(q2e_spans_finish(&f->job, false), 0);
	assert_int_equal(atomic_load(&cached_reads), 0);
	assert_file(f);
	assert_main_read(f, all, n);
}

/* N regions, of which the cache lacks LEFT[0..NLEFT), each apart from
 * the others or fewer than four in a row: those alone are left. */
static void copy_missing(struct fixture *f, size_t n, const size_t *left,
			 size_t nleft)
{
	make(f, n);
	for (size_t k = 0; k < nleft; k++)
		missing[left[k]] = true;
	copy_and_check(f, left, nleft);
}

/* Below a megabyte of work, no thread. */
static void test_no_thread(void **state)
{
	assert_caller_copies_all(*state, 100);
}

/* One thread, the cache full: the main thread reads nothing. */
static void test_one_thread_warm(void **state)
{
	struct fixture *f = *state;

	make(f, 400);
	q2e_spans_start(&f->job);
	assert_non_null(f->job.threads);
	assert_int_equal(q2e_spans_finish(&f->job, false), 0);
	assert_false(f->job.again);
	assert_file(f);
	assert_main_read(f, NULL, 0);
}

/* Spans missing apart: each left to the main thread alone. */
static void test_misses_apart(void **state)
{
	static const size_t left[] = { 0, 3, 100, 102, 399 };

	copy_missing(*state, 400, left, 5);
}

/* The fourth miss in a row stops the thread: the three before it are
 * left as spans, the rest of its half from the fourth on. */
static void test_fourth_miss(void **state)
{
	struct fixture *f = *state;
	size_t left[400];
	size_t n = 0;

	make(f, 400);
	missing[50] = missing[100] = missing[101] = missing[102] = true;
	missing[103] = missing[200] = true;
	left[n++] = 50;
	for (size_t i = 100; i < 400; i++)
		left[n++] = i;
	copy_and_check(f, left, n);
}

/* 32 spans left apart fill the list: the 33rd miss leaves the rest. */
static void test_left_list_full(void **state)
{
	struct fixture *f = *state;
	size_t left[400];
	size_t n = 0;

	make(f, 400);
	for (size_t i = 0; i < 40; i++)
		missing[5 + i * 9] = true;
	for (size_t i = 0; i < 32; i++)
		left[n++] = 5 + i * 9;
	for (size_t i = 5 + 32 * 9; i < 400; i++)
		left[n++] = i;
	copy_and_check(f, left, n);
}

/* The regions a chunk of a span starts at, one in CHUNK_STRIDES. */
#define CHUNK_STRIDES (Q2E_SPAN_CHUNK / STRIDE)
_Static_assert(Q2E_SPAN_CHUNK % STRIDE == 0 && CHUNK_STRIDES <= 2,
	       "a span over eight regions is read in four chunks or more");

/*
 * A span of four chunks or more (a region over the seven small ones after
 * it) whose second chunk the cache lacks: the thread has written the
 * first, and leaves the span whole to the main thread, which reads each
 * chunk once.
 */
static void test_span_cut_midway(void **state)
{
	struct fixture *f = *state;

	make(f, 400);
	widen(f, 100, 7 * STRIDE + SIZE);
	missing[100 + CHUNK_STRIDES] = true;
	assert_int_equal(copy(f), 0);
	assert_false(f->job.again);
	assert_file(f);
	for (size_t i = 0; i < 400; i++)
		if (atomic_load(&main_read_of[i]) !=
		    (i >= 100 && i < 108 && (i - 100) % CHUNK_STRIDES == 0))
			fail_msg("region %zu: read %d times by the main thread",
				 i, atomic_load(&main_read_of[i]));
}

/* The same, with a region of zeros in the chunk the thread read: it is
 * marked, and told, though the span was left. */
static void test_zeros_before_cut(void **state)
{
	struct fixture *f = *state;

	make(f, 400);
	widen(f, 100, 7 * STRIDE + SIZE);
	zeros[101] = true;
	missing[102] = true;
	assert_int_equal(copy(f), 0);
	assert_true(f->job.again);
	for (size_t i = 0; i < 400; i++)
		assert_int_equal(f->secs[i].zero, i == 101);
}

/* The writeback is held where a thread stops for a cold cache, not
 * for a few spans missing. */
static void test_stop_holds_writeback(void **state)
{
	struct fixture *f = *state;
	struct q2e_writeback wb;

	for (int cold = 0; cold < 2; cold++) {
		make(f, 400);
		memset(missing, 0, sizeof(missing));
		missing[10] = missing[20] = missing[21] = missing[22] = true;
		missing[23] = cold;
		q2e_writeback_start(&wb, f->fd);
		assert_true(wb.started);
		f->job.wb = &wb;
		assert_int_equal(copy(f), 0);
		assert_int_equal(wb.held, cold);
		q2e_writeback_finish(&wb);
		assert_file(f);
	}
}

/* Two threads, each with its own count of misses in a row: three at
 * the end of the first half and three at the start of the second are
 * not four in a row. */
static void test_two_threads_misses(void **state)
{
	static const size_t left[] = { 10,   1997, 1998, 1999,
				       2000, 2001, 2002, 3999 };

	copy_missing(*state, 4000, left, 8);
}

/* A cold cache: each thread stops at its fourth miss, the main thread
 * reads all, once. */
static void test_two_threads_cold(void **state)
{
	struct fixture *f = *state;
	static size_t all[4000];

	make(f, 4000);
	for (size_t i = 0; i < 4000; i++) {
		missing[i] = true;
		all[i] = i;
	}
	copy_and_check(f, all, 4000);
	/* Two halves, each stopped at its fourth miss: inside the first
	 * reads it made ahead (src/model/read_ahead.c, 64 spans at most),
	 * not reading on through its half. */
	assert_int_equal(atomic_load(&batched_reads), 2);
	assert_in_range(atomic_load(&cached_reads), 8, 128);
}

/* No thread can start: the main thread copies both halves. */
static void test_threads_fail_to_start(void **state)
{
	threads_fail = true;
	assert_caller_copies_all(*state, 4000);
}

/* Regions of zeros, one a thread reads and one it leaves: both marked,
 * and told, so that the caller lays the file out again. */
static void test_zeros_found(void **state)
{
	struct fixture *f = *state;
	size_t left[] = { 300 };

	make(f, 400);
	zeros[20] = zeros[300] = true;
	missing[300] = true;
	assert_int_equal(copy(f), 0);
	assert_true(f->job.again);
	for (size_t i = 0; i < 400; i++)
		assert_int_equal(f->secs[i].zero, i == 20 || i == 300);
	assert_main_read(f, left, 1);
}

/* Writes cut short and interrupted: all the bytes still arrive. */
static void test_choppy_writes(void **state)
{
	struct fixture *f = *state;

	make(f, 4000);
	write_mode = WRITE_CHOPPY;
	missing[7] = true;
	assert_int_equal(copy(f), 0);
	assert_file(f);
}

/* A write error in a thread: returned with the file's name and where. */
static void test_thread_write_error(void **state)
{
	struct fixture *f = *state;

	make(f, 400);
	write_mode = WRITE_FAIL;
	assert_int_equal(copy(f), Q2E_EOUTPUT);
	assert_int_equal(f->err.code, Q2E_EOUTPUT);
	assert_string_equal(f->err.msg,
			    "'out.elf': cannot write at 0x1000: File too large");
}

/* A write that makes no progress is a full device. */
static void test_thread_write_nothing(void **state)
{
	struct fixture *f = *state;

	make(f, 4000);
	write_mode = WRITE_NOTHING;
	assert_int_equal(copy(f), Q2E_EOUTPUT);
	assert_non_null(strstr(f->err.msg, "'out.elf': cannot write at 0x"));
	assert_non_null(strstr(f->err.msg, strerror(ENOSPC)));
}

/* The caller failed and cancels, after a thread failed too: the caller's
 * error is the one returned (the first, as q2e_error_set() keeps it),
 * not overwritten by the thread's. */
static void test_cancel_keeps_callers_error(void **state)
{
	struct fixture *f = *state;

	make(f, 400);
	write_mode = WRITE_FAIL;
	q2e_spans_start(&f->job);
	while (!atomic_load(&write_failed))
		usleep(1000);
	q2e_error_set(&f->err, Q2E_ENOMEM, "out of memory");
	assert_int_equal(q2e_spans_finish(&f->job, true), Q2E_EOUTPUT);
	assert_int_equal(f->err.code, Q2E_ENOMEM);
	assert_string_equal(f->err.msg, "out of memory");
}

/* Cancelled, the threads stop and nothing is read on this thread. */
static void test_cancel_reads_nothing(void **state)
{
	struct fixture *f = *state;

	make(f, 4000);
	for (size_t i = 0; i < 4000; i++)
		missing[i] = true;
	q2e_spans_start(&f->job);
	assert_int_equal(q2e_spans_finish(&f->job, true), 0);
	assert_int_equal(atomic_load(&main_reads), 0);
}

/* 4 MiB written: one range handed over.  K is the run's count. */
static void wrote_chunk(struct q2e_writeback *wb, struct q2e_writeback_run *run,
			uint64_t k)
{
	q2e_writeback_wrote(wb, run, k << 22, (k + 1) << 22);
}

/* The queue: 16 ranges wait while the thread is busy, the 17th is left
 * to the kernel; what is queued goes out before the thread is joined. */
static void test_writeback_queue_full(void **state)
{
	struct fixture *f = *state;
	struct q2e_writeback wb;
	struct q2e_writeback_run run = { 0 };

	atomic_store(&sync_block, true);
	q2e_writeback_start(&wb, f->fd);
	assert_true(wb.started);
	wrote_chunk(&wb, &run, 0);
	while (!atomic_load(&sync_entered))
		usleep(1000);
	for (uint64_t k = 1; k <= Q2E_WRITEBACK_QUEUE + 1; k++)
		wrote_chunk(&wb, &run, k);
	atomic_store(&sync_block, false);
	q2e_writeback_finish(&wb);
	assert_false(wb.started);
	assert_int_equal(atomic_load(&syncs), 1 + Q2E_WRITEBACK_QUEUE);
}

/* Held, nothing more is handed over; finish joins it all the same. */
static void test_writeback_hold(void **state)
{
	struct fixture *f = *state;
	struct q2e_writeback wb;
	struct q2e_writeback_run run = { 0 };

	q2e_writeback_start(&wb, f->fd);
	assert_true(wb.started);
	q2e_writeback_hold(&wb);
	for (uint64_t k = 0; k < 4; k++)
		wrote_chunk(&wb, &run, k);
	q2e_writeback_finish(&wb);
	assert_int_equal(atomic_load(&syncs), 0);
	q2e_writeback_hold(NULL);
}

/* Without a thread, told of writes, it does nothing. */
static void test_writeback_no_thread(void **state)
{
	struct fixture *f = *state;
	struct q2e_writeback wb;
	struct q2e_writeback_run run = { 0 };

	threads_fail = true;
	q2e_writeback_start(&wb, f->fd);
	assert_false(wb.started);
	wrote_chunk(&wb, &run, 0);
	q2e_writeback_hold(&wb);
	q2e_writeback_finish(&wb);
	assert_int_equal(atomic_load(&syncs), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_no_thread),
		T(test_one_thread_warm),
		T(test_misses_apart),
		T(test_fourth_miss),
		T(test_left_list_full),
		T(test_span_cut_midway),
		T(test_zeros_before_cut),
		T(test_stop_holds_writeback),
		T(test_two_threads_misses),
		T(test_two_threads_cold),
		T(test_threads_fail_to_start),
		T(test_zeros_found),
		T(test_choppy_writes),
		T(test_thread_write_error),
		T(test_thread_write_nothing),
		T(test_cancel_keeps_callers_error),
		T(test_cancel_reads_nothing),
		T(test_writeback_queue_full),
		T(test_writeback_hold),
		T(test_writeback_no_thread),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

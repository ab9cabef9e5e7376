/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Many small reads of what the page cache holds, with few system calls
 * (source.h, q2e_source_batch_cached()).
 *
 * A dump of the 1 GiB image of 512-byte clusters reads 34,000 ranges of
 * 512 bytes, each from another page.  Where the kernel isolates its page
 * tables (PTI), entering it costs about 1 us a call, half of such a
 * pread(): 32,779 preads took 79 ms, the same reads submitted to io_uring
 * 64 at a time 27 to 36 ms.  Each read asks RWF_NOWAIT, so a page the
 * cache lacks fails with EAGAIN at once instead of going to the kernel's
 * workers: the caller then reads it as usual, with the read plan's advice.
 *
 * Where io_uring is missing (built without liburing, a kernel without it,
 * a sandbox that refuses it: ENOSYS, EPERM), the reads are made one at a
 * time with preadv2(RWF_NOWAIT), as q2e_source_pread_cached() makes them.
 */
#include <errno.h>
#include <stdlib.h>

#ifdef Q2E_HAVE_LIBURING
#include <liburing.h>
#endif

#include "source_impl.h"

/* Reads in flight at once: 64 did as well as 256. */
#define RING_DEPTH 64

struct q2e_source_batch {
	struct q2e_source *src;
#ifdef Q2E_HAVE_LIBURING
	struct io_uring ring;
#endif
	bool ring_ok;
};

struct q2e_source_batch *q2e_source_batch_open(struct q2e_source *src)
{
	struct q2e_source_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->src = src;
#ifdef Q2E_HAVE_LIBURING
	/* Only an image file is read this way: a dump's bytes are its
	 * sections', and memory needs no system call. */
	if (src->kind == Q2E_SOURCE_FILE && !src->mem)
		b->ring_ok = io_uring_queue_init(RING_DEPTH, &b->ring, 0) == 0;
#endif
	return b;
}

void q2e_source_batch_close(struct q2e_source_batch *b)
{
	if (!b)
		return;
#ifdef Q2E_HAVE_LIBURING
	if (b->ring_ok)
		io_uring_queue_exit(&b->ring);
#endif
	free(b);
}

/* R as q2e_source_pread_cached() reads it. */
static void read_one(struct q2e_source *src, struct q2e_cached_read *r)
{
	r->ok = q2e_source_pread_cached(src, r->buf, r->len, r->off) ==
		(int64_t)r->len;
}

#ifdef Q2E_HAVE_LIBURING
/*
 * R[0..N), N at most RING_DEPTH, all within the file: false if the ring
 * failed (the reads not known done), the reads then made one at a time.
 */
static bool ring_reads(struct q2e_source_batch *b, struct q2e_cached_read *r,
		       size_t n)
{
	struct io_uring_cqe *cqe;
	size_t sent = 0, done = 0;
	bool ok = true;
	int ret;

	for (size_t i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);

		io_uring_prep_read(sqe, b->src->fd, r[i].buf, r[i].len,
				   r[i].off);
		sqe->rw_flags = RWF_NOWAIT;
		io_uring_sqe_set_data64(sqe, i);
		r[i].ok = false;
	}
	while (sent < n) {
		ret = io_uring_submit_and_wait(&b->ring, (unsigned)(n - sent));
		if (ret == -EINTR)
			continue;
		if (ret <= 0) {
			ok = false;	/* reap what was sent, then give up */
			break;
		}
		sent += (size_t)ret;
	}
	while (done < sent) {
		ret = io_uring_wait_cqe(&b->ring, &cqe);
		if (ret == -EINTR)
			continue;
		if (ret < 0)
			return false;
		/* A short read (a page of the range missing, or a read
		 * that stopped early) is made again in full by the
		 * caller. */
		r[cqe->user_data].ok = cqe->res == (int)r[cqe->user_data].len;
		io_uring_cqe_seen(&b->ring, cqe);
		done++;
	}
	return ok;
}
#endif

void q2e_source_batch_cached(struct q2e_source_batch *b,
			     struct q2e_cached_read *r, size_t n)
{
#ifdef Q2E_HAVE_LIBURING
	size_t i = 0;

	while (b->ring_ok && i < n) {
		size_t k = 0;

		/* Past the end of the file, or too large for one
		 * completion's count: as q2e_source_pread_cached() says. */
		while (i + k < n && k < RING_DEPTH && r[i + k].len <= INT32_MAX &&
		       r[i + k].off <= b->src->size &&
		       r[i + k].len <= b->src->size - r[i + k].off)
			k++;
		if (k == 0) {
			read_one(b->src, &r[i++]);
			continue;
		}
		if (!ring_reads(b, r + i, k)) {
			/* Not used again: its state is unknown. */
			io_uring_queue_exit(&b->ring);
			b->ring_ok = false;
			break;
		}
		i += k;
	}
	r += i;
	n -= i;
#endif
	for (size_t j = 0; j < n; j++)
		read_one(b->src, &r[j]);
}

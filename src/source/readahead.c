/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Readahead over a plan: the byte ranges the model will read, in offset
 * order.  Metadata is scattered over the image (an L2 table every 512 MiB
 * in a preallocated image), so the kernel's own readahead, which follows
 * sequential reads, never sees it coming: read one by one from a cold
 * cache, each table costs a full device round trip.  Advice
 * (posix_fadvise WILLNEED) on the ranges just ahead of the reads keeps many
 * requests in flight, which is what the device needs to reach its speed.
 *
 * The advice is given by a thread of its own, because giving it blocks
 * whenever the device's queue is full: given by the reader, that time
 * would be lost to the work on the bytes already read.  The thread starts
 * only at the first read the page cache cannot serve (preadv2 RWF_NOWAIT
 * says so), so a warm cache costs no thread and no advice.
 *
 * The advice runs a window ahead of the reads rather than over the whole
 * plan at once, so a command that reads little (info) costs no I/O beyond
 * its reads, and the page cache holds at most a window more than was read.
 * A read outside the window (check reading the refcount blocks after the
 * L2 tables), or one that misses where the thread's advice has not yet
 * reached, starts the window again from there.
 *
 * The ranges are the model's regions, asked for one at a time and merged
 * as they are advised: the plan holds no copy of them, only a sample of
 * their running sizes, made at the first read the cache cannot serve.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/uio.h>

#include "source_impl.h"

/* Bytes of planned ranges advised ahead of the read; refilled at half. */
#define WINDOW (64ULL << 20)
/* Ranges closer than this are advised as one: the kernel reads whole
 * pages anyway.  No more: 512-byte L2 tables lie 32 KiB apart in a
 * preallocated image, and merging those would read 64 times the bytes. */
#define MERGE_GAP 4096ULL

/* Every SAMPLE-th range has its planned bytes before it recorded. */
#define SAMPLE 16

/* Merged ranges the reader advises itself where a window starts, before
 * the thread takes over: a thread just created, or woken on a busy
 * machine, can take milliseconds to run, while the reader waits on the
 * first range.  Few enough that a full device queue hardly blocks it. */
#define HEAD_RANGES 16

/* At most this many bytes of the tables the walk reads first are advised
 * at once (q2e_source_advise()): a header may claim 65,536 snapshot L1
 * tables of 32 MiB each. */
#define EARLY_MAX WINDOW

struct q2e_read_plan {
	/* The ranges are the model's, asked for one at a time: no copy. */
	q2e_plan_range_fn range;
	const void *arg;
	size_t n;
	bool made;		/* BEFORE made, at the first miss */
	/* before[s]: planned bytes in ranges [0, s * SAMPLE) */
	uint64_t *before;
	int fd;
	size_t base;		/* the range of the read the window follows */
	size_t want;		/* advise ranges up to here; only the reader
				   writes it, under the lock */
	bool started, stop, no_thread;
	bool idle;		/* the reads hit the cache: no advice for now */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	size_t cursor;		/* the next range the thread advises */
};

static struct q2e_extent range_at(const struct q2e_read_plan *p, size_t i)
{
	return p->range(p->arg, i);
}

static void advise(const struct q2e_read_plan *p, struct q2e_extent r)
{
	/* Advice only: a failure leaves the read to do the work.  A length
	 * of 0 would advise the whole rest of the file. */
	if (r.length)
		posix_fadvise(p->fd, (off_t)r.offset, (off_t)r.length,
			      POSIX_FADV_WILLNEED);
}

/* Ranges [*I, END) that lie within MERGE_GAP of each other from *I, as
 * one; *I moves past them. */
static struct q2e_extent merged_from(const struct q2e_read_plan *p,
				     size_t *i, size_t end)
{
	struct q2e_extent r = range_at(p, (*i)++);

	while (*i < end) {
		struct q2e_extent q = range_at(p, *i);

		if (r.length && q.offset > r.offset + r.length + MERGE_GAP)
			break;
		if (!r.length)
			r = q;
		else if (q.offset + q.length > r.offset + r.length)
			r.length = q.offset + q.length - r.offset;
		(*i)++;
	}
	return r;
}

static void *advisor(void *arg)
{
	struct q2e_read_plan *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->stop && p->cursor >= p->want)
			pthread_cond_wait(&p->wake, &p->lock);
		if (p->stop)
			break;
		size_t i = p->cursor;
		struct q2e_extent r = merged_from(p, &i, p->want);

		p->cursor = i;
		pthread_mutex_unlock(&p->lock);
		advise(p, r);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Signals stay with the thread that handles them (the output file's
 * clean-up), so the advisor blocks them all. */
static bool start_advisor(struct q2e_read_plan *p)
{
	sigset_t all, old;
	int ret;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&p->thread, NULL, advisor, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret == 0;
}

void q2e_read_plan_free(struct q2e_read_plan *p)
{
	if (!p)
		return;
	if (p->started) {
		pthread_mutex_lock(&p->lock);
		p->stop = true;
		pthread_cond_signal(&p->wake);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->thread, NULL);
	}
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->wake);
	free(p->before);
	free(p);
}

int q2e_source_plan_reads(struct q2e_source *src, q2e_plan_range_fn range,
			  const void *arg, size_t n, struct q2e_error *err)
{
	struct q2e_read_plan *p;

	/* Bytes in memory need no advice; a dump is read in section order,
	 * which the kernel's readahead follows. */
	if (src->fd < 0 || src->kind != Q2E_SOURCE_FILE || n == 0 || src->plan)
		return 0;
	p = calloc(1, sizeof(*p));
	if (!p || pthread_mutex_init(&p->lock, NULL) != 0) {
		free(p);
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	}
	pthread_cond_init(&p->wake, NULL);
	p->range = range;
	p->arg = arg;
	p->n = n;
	p->fd = src->fd;
	src->plan = p;
	return 0;
}

/* The samples of planned bytes; without them (no memory), no advice. */
static void make_samples(struct q2e_read_plan *p)
{
	p->made = true;
	p->before = malloc((p->n / SAMPLE + 1) * sizeof(*p->before));
	if (!p->before) {
		p->n = 0;	/* reads work as before, without advice */
		return;
	}
	p->before[0] = 0;
	for (size_t s = 1; s <= p->n / SAMPLE; s++) {
		p->before[s] = p->before[s - 1];
		for (size_t i = (s - 1) * SAMPLE; i < s * SAMPLE; i++)
			p->before[s] += range_at(p, i).length;
	}
}

/* Planned bytes in ranges [0, I). */
static uint64_t planned_before(const struct q2e_read_plan *p, size_t i)
{
	uint64_t b = p->before[i / SAMPLE];

	for (size_t k = i / SAMPLE * SAMPLE; k < i; k++)
		b += range_at(p, k).length;
	return b;
}

/* The first range from I on whose start is WINDOW planned bytes past I's. */
static size_t window_end(const struct q2e_read_plan *p, size_t i)
{
	uint64_t want = planned_before(p, i) + WINDOW, b;
	size_t lo = i / SAMPLE + 1, hi = p->n / SAMPLE + 1, k;

	/* The last sample at or below WANT, then range by range. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->before[mid] <= want)
			lo = mid + 1;
		else
			hi = mid;
	}
	k = (lo - 1) * SAMPLE > i ? (lo - 1) * SAMPLE : i;
	b = planned_before(p, k);
	while (k < p->n && b < want)
		b += range_at(p, k++).length;
	return k;
}

/* The last range that starts at or before OFF, if it holds OFF. */
static bool planned_at(const struct q2e_read_plan *p, uint64_t off, size_t *i)
{
	size_t lo = 0, hi = p->n;
	struct q2e_extent r;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (range_at(p, mid).offset <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return false;
	r = range_at(p, lo - 1);
	*i = lo - 1;
	return off < r.offset + r.length;
}

/*
 * Moves the window to the read at OFF.  MISSED: the page cache did not
 * hold the bytes, which starts the advice; until then nothing is done.
 */
static void follow(struct q2e_read_plan *p, uint64_t off, bool missed)
{
	size_t i;

	/* A warm cache never gets past here: not even the search. */
	if (!p->started && !p->no_thread && !missed)
		return;
	if (!planned_at(p, off, &i))
		return;		/* not planned: nothing to say */
	bool restart = i < p->base || i > p->want;

	/* Bytes the cache held before any advice (a pass that reads again
	 * what an earlier one read; a cache only a few pages short) need
	 * none, which would cost a call per range all the same: a read that
	 * hits where the advice has not reached stops it, and the next read
	 * that misses starts it again. */
	if (!p->no_thread)
		pthread_mutex_lock(&p->lock);
	/* A miss ahead of the thread's advice (map reads first the L2 table
	 * that copy-on-write put at the end of the file) would wait for the
	 * advice to get there: for every range before it, which the block
	 * layer's elevator serves first, in sector order.  The window starts
	 * again at it. */
	if (missed && p->started && i > p->cursor)
		restart = true;
	if (restart || missed)
		p->idle = !missed;
	else if (p->started && i >= p->cursor)
		p->idle = true;
	if (p->idle)
		p->cursor = p->base = p->want = i;
	if (!p->no_thread)
		pthread_mutex_unlock(&p->lock);
	if (p->idle)
		return;
	if (!restart &&
	    planned_before(p, p->want) - planned_before(p, i) >= WINDOW / 2)
		return;
	size_t end = window_end(p, i);

	/* A plan smaller than half a window ends short of it at every read:
	 * with nothing new to advise, waking the thread for each read cost a
	 * context switch a table. */
	if (!restart && p->started && end <= p->want)
		return;
	if (p->no_thread) {	/* no thread: the reader advises */
		for (size_t k = restart ? i : p->want; k < end;)
			advise(p, merged_from(p, &k, end));
		p->base = i;
		p->want = end;
		return;
	}
	size_t head = i;

	/* A window that starts here (the first miss, or one after reads
	 * that hit) begins with the reader's own advice. */
	if (restart || !p->started)
		for (size_t n = 0; n < HEAD_RANGES && head < end; n++)
			advise(p, merged_from(p, &head, end));
	pthread_mutex_lock(&p->lock);
	if (restart || p->cursor < head)
		p->cursor = head;	/* advice behind the reader is too late */
	p->base = i;
	p->want = end;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
	if (!p->started) {
		p->started = start_advisor(p);
		p->no_thread = !p->started;
		if (p->no_thread) {
			p->want = i;
			follow(p, off, true);
		}
	}
}

ssize_t q2e_source_planned_pread(struct q2e_source *src, void *buf,
				 size_t len, uint64_t off)
{
	struct iovec iov = { buf, len };
	ssize_t got, rest;

	/* RWF_NOWAIT: only what the page cache holds, without waiting. */
	got = preadv2(src->fd, &iov, 1, (off_t)off, RWF_NOWAIT);
	if (got < 0)
		got = 0;	/* EAGAIN, or no RWF_NOWAIT here */
	if ((size_t)got < len && !src->plan->made)
		make_samples(src->plan);
	if (src->plan->n)
		follow(src->plan, off, (size_t)got < len);
	if ((size_t)got == len)
		return got;
	rest = q2e_source_container_pread(src, (char *)buf + got,
					  len - (size_t)got,
					  off + (uint64_t)got);
	return rest < 0 ? rest : got + rest;
}

/*
 * Before the walk has a plan, it reads the header, then the tables the
 * header points to (L1, refcount table, snapshot table), then the
 * snapshots' L1 tables: each a round trip to the device when the cache is
 * cold.  Advised together as soon as their places are known, they take
 * about one.  A warm cache (the range's last byte cached) gets no
 * advice; the test costs a read of one byte.
 */
void q2e_source_advise(struct q2e_source *src, uint64_t off, uint64_t len)
{
	struct iovec iov;
	uint8_t byte;

	if (src->fd < 0 || src->kind != Q2E_SOURCE_FILE || off >= src->size ||
	    len == 0)
		return;
	if (len > src->size - off)
		len = src->size - off;
	if (len > EARLY_MAX)
		len = EARLY_MAX;
	iov = (struct iovec){ &byte, 1 };
	/* The last byte: the first may share a page with one read already
	 * (the header's, for the rest of the first cluster). */
	if (preadv2(src->fd, &iov, 1, (off_t)(off + len - 1), RWF_NOWAIT) == 1)
		return;
	posix_fadvise(src->fd, (off_t)off, (off_t)len, POSIX_FADV_WILLNEED);
}

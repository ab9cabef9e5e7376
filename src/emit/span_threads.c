/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The spans' bytes copied by one or two threads (spans.h).
 *
 * With the image in the page cache, a dump's time goes to system calls:
 * the 1 GiB image of 512-byte clusters has 34,000 spans (an L2 table
 * every 32 KiB, between data clusters), one pread() and a share of a
 * pwrite() each, a third of the dump.  The spans are split in two halves
 * of about equal cost, each written at its own place in the file (the
 * layout is known), each by a thread of its own (one thread has all where
 * there is little to copy), which reads its small spans 64 at a time
 * (spans.c, through the model's q2e_read_ahead: one io_uring submission,
 * which halved their time where entering the kernel is dear, as with PTI;
 * mmap was slower), while the main thread makes the rest of the file: the
 * symbols, the note and the types, then the tables after the regions.
 *
 * The threads read only what the page cache holds (and so never touch the
 * read plan, whose advice follows one reader, the main thread): a span
 * the cache lacks is left to the main thread, which reads it once it is
 * done with its own work, as usual, with the advice.  A cold cache costs
 * a few reads that find nothing on each.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "spans.h"

/* A span's cost in bytes copied: a pread() of 512 bytes took about as
 * long as copying 8 KiB more would have. */
#define SPAN_COST (8U << 10)
/* Below this cost a thread is not worth making. */
#define SPLIT_MIN (1U << 20)
/* Below this cost one thread copies all: it is done before the main
 * thread is with the rest of the file.  With a second, a dump of the
 * everyday image (5.4 MB of regions) took 0.35 ms more CPU time than
 * main's (perf stat, 30 runs), and no less wall-clock time. */
#define SPLIT_TWO (16U << 20)
#define STACK_SIZE (256U << 10)

/*
 * A thread that finds a span the page cache lacks leaves it to the main
 * thread and goes on with the next, up to MAX_LEFT spans: a cache a few
 * pages short (after a cold dump of the 1 GiB image of 512-byte
 * clusters, 5 to 25 of its pages failed a read without waiting in the
 * next, and only one such read in a thread made the main thread read the
 * rest of its half).  It stops at the MAX_MISSES-th in a row (a cold
 * cache), leaving the rest too.
 */
#define MAX_LEFT 32
#define MAX_MISSES 4

/* Sections BY[FROM, TO) of a view. */
struct range {
	size_t from, to;
};

/* One half: the sections BY (a view of the job's) and where they go. */
struct half {
	struct q2e_spans_job *job;
	struct q2e_by_addr part;	/* all of the half */
	struct q2e_by_addr by;		/* the range being copied */
	struct q2e_seqwriter out;
	struct q2e_error *err;
	bool cached_only;
	atomic_bool *cancel;	/* the caller or the other half failed */
	atomic_bool *uncached;	/* set where a thread stopped */
	/* What the cache lacked, in BY, for the main thread: spans, then
	 * all from where the thread stopped. */
	struct range left[MAX_LEFT + 1];
	size_t nleft;
	bool again;
	int ret;
};

/* The threads' state, between q2e_spans_start() and q2e_spans_finish(). */
struct q2e_spans_threads {
	struct half half[2];
	struct q2e_error err[2];
	pthread_t thread[2];
	bool running[2];
	int nthreads;		/* halves made: 1 or 2 */
	atomic_bool cancel, uncached;
};

/* The most sections a span of BY has. */
static size_t widest(const struct q2e_by_addr *by)
{
	struct q2e_span sp;
	size_t next = 0, width = 1;

	while (q2e_span_next(by, &next, &sp))
		if (sp.last - sp.first > width)
			width = sp.last - sp.first;
	return width;
}

/* Where the bytes of BY's first section that holds any go (a section of
 * zeros has no file offset of its own). */
static uint64_t first_offset(const struct q2e_by_addr *by)
{
	for (size_t k = 0; k < by->n; k++)
		if (!q2e_by(by, k)->zero)
			return q2e_by(by, k)->file_offset;
	return 0;
}

/* At a span the cache lacked: whether H goes on past it (it is left). */
static bool leave_span(struct half *h, const struct q2e_span *sp,
		       unsigned *misses)
{
	if (++*misses < MAX_MISSES && h->nleft < MAX_LEFT) {
		h->left[h->nleft++] = (struct range){ sp->first, sp->last };
		return true;
	}
	h->left[h->nleft++] = (struct range){ sp->first, h->by.n };
	atomic_store(h->uncached, true);
	q2e_writeback_hold(h->out.wb);
	return false;
}

/* The spans of H->by, through C; ACTIVE has room for the widest. */
static int copy_spans(struct half *h, struct q2e_region_copier *c,
		      struct q2e_out_section **active)
{
	struct q2e_span sp;
	size_t next = 0;
	unsigned misses = 0;
	int ret = 0;

	while (ret == 0 && q2e_span_next(&h->by, &next, &sp)) {
		uint64_t at = q2e_seqwriter_tell(&h->out);
		bool found;

		if (h->cancel && atomic_load(h->cancel))
			break;
		ret = q2e_span_stream(c, h->again ? NULL : &h->out, &h->by,
				      &sp, active, &found);
		h->again = h->again || found;
		if (ret != Q2E_SPAN_UNCACHED) {
			misses = 0;
			continue;
		}
		if (!leave_span(h, &sp, &misses))
			return 0;
		/* Its bytes are written later, in their place. */
		ret = h->again ? 0
			       : q2e_seqwriter_seek(&h->out,
						    at + (sp.end - sp.start));
	}
	return ret;
}

/* The sections of the ranges R[0..N) of H->by's view BASE, each at its
 * place in the file. */
static int run_half(struct half *h, const struct q2e_by_addr *base,
		    const struct range *r, size_t n)
{
	struct q2e_region_copier c;
	struct q2e_out_section **active;
	size_t width = 1;
	int ret;

	for (size_t i = 0; i < n; i++) {
		struct q2e_by_addr v = { base->secs, base->idx + r[i].from,
					 r[i].to - r[i].from };
		size_t w = widest(&v);

		width = w > width ? w : width;
	}
	/* As wide as the widest span, not one a section: most spans are a
	 * table between data clusters. */
	active = malloc(width * sizeof(*active));
	if (!active)
		return q2e_error_set(h->err, Q2E_ENOMEM, "out of memory");
	ret = q2e_region_copier_init(&c, h->job->img, h->out.fd,
				     h->job->path, h->err);
	c.redact = h->job->redact;
	c.skip_zeros = h->job->skip_zeros;
	c.cached_only = h->cached_only;
	if (c.cached_only)
		c.ahead = q2e_read_ahead_new(h->job->img);
	for (size_t i = 0; ret == 0 && i < n; i++) {
		h->by = (struct q2e_by_addr){ base->secs, base->idx + r[i].from,
					      r[i].to - r[i].from };
		ret = q2e_seqwriter_seek(&h->out, first_offset(&h->by));
		if (ret == 0)
			ret = copy_spans(h, &c, active);
	}
	q2e_read_ahead_free(c.ahead);
	q2e_region_copier_fini(&c);
	free(active);
	if (ret == 0)
		ret = q2e_seqwriter_flush(&h->out);
	return ret;
}

/* Where BY splits into two halves of about equal cost: the index of the
 * second half's first span, or BY->n when one thread (*NTHREADS 1) or
 * none (0) is worth making. */
static size_t split_point(const struct q2e_by_addr *by, int *nthreads)
{
	uint64_t total = 0, sum = 0;
	struct q2e_span sp;
	size_t next = 0;

	while (q2e_span_next(by, &next, &sp))
		total += sp.end - sp.start + SPAN_COST;
	*nthreads = total < SPLIT_MIN ? 0 : total < SPLIT_TWO ? 1 : 2;
	if (*nthreads < 2)
		return by->n;
	next = 0;
	while (q2e_span_next(by, &next, &sp)) {
		sum += sp.end - sp.start + SPAN_COST;
		if (sum >= total / 2)
			break;
	}
	return next;
}

/* The sections BY[FROM, TO) as a view of their own. */
static struct q2e_by_addr view(const struct q2e_by_addr *by, size_t from,
			       size_t to)
{
	return (struct q2e_by_addr){ by->secs, by->idx + from, to - from };
}

/* A half of JOB, the sections PART, with a writer of its own. */
static int half_init(struct half *h, struct q2e_spans_job *job,
		     struct q2e_by_addr part, struct q2e_error *err)
{
	int ret;

	*h = (struct half){ .job = job, .part = part, .by = part, .err = err };
	ret = q2e_seqwriter_init(&h->out, job->fd, job->path, err);
	h->out.wb = job->wb;
	return ret;
}

static void *run_thread(void *arg)
{
	struct half *h = arg;
	struct range all = { 0, h->part.n };

	h->ret = run_half(h, &h->part, &all, 1);
	if (h->ret < 0)
		atomic_store(h->cancel, true);
	/* Its buffer, flushed, is not needed while the main thread goes on:
	 * freed here, it is not part of the dump's peak. */
	q2e_seqwriter_fini(&h->out);
	return NULL;
}

void q2e_spans_start(struct q2e_spans_job *job)
{
	const struct q2e_by_addr *by = job->by;
	int nthreads;
	size_t split = split_point(by, &nthreads);
	struct q2e_spans_threads *t;

	job->again = false;
	job->threads = NULL;
	if (!nthreads || !(t = calloc(1, sizeof(*t))))
		return;	/* all of it in q2e_spans_finish() */
	atomic_init(&t->cancel, false);
	atomic_init(&t->uncached, false);
	t->nthreads = nthreads;
	for (int i = 0; i < nthreads; i++) {
		struct half *h = &t->half[i];
		struct q2e_by_addr part = i == 0 ? view(by, 0, split)
						 : view(by, split, by->n);

		if (half_init(h, job, part, &t->err[i]) == 0) {
			h->cached_only = true;
			h->cancel = &t->cancel;
			h->uncached = &t->uncached;
			t->running[i] = q2e_emit_thread_start(&t->thread[i],
							       STACK_SIZE,
							       run_thread, h);
		}
		if (!t->running[i])	/* left whole to q2e_spans_finish() */
			h->left[h->nleft++] = (struct range){ 0, part.n };
	}
	job->threads = t;
}

bool q2e_spans_left_over(const struct q2e_spans_job *job)
{
	const struct q2e_spans_threads *t = job->threads;

	return !t || !t->running[0] || (t->nthreads == 2 && !t->running[1]) ||
	       atomic_load(&t->uncached);
}

/*
 * Joins the threads: their first error, and the spans they left, into the
 * array todo.  After CANCEL, the caller's error stays in JOB->err: the
 * first, as q2e_error_set() keeps it.
 */
static int join(struct q2e_spans_job *job, bool cancel, struct range *todo,
		size_t *n, bool *again)
{
	struct q2e_spans_threads *t = job->threads;
	int ret = 0;

	for (int i = 0; i < t->nthreads; i++) {
		struct half *h = &t->half[i];
		size_t base = (size_t)(h->part.idx - job->by->idx);

		if (t->running[i])
			pthread_join(t->thread[i], NULL);
		q2e_seqwriter_fini(&h->out);
		if (ret == 0 && h->ret < 0) {
			if (!cancel)
				*job->err = t->err[i];
			ret = h->ret;
		}
		*again = *again || h->again;
		for (size_t k = 0; k < h->nleft; k++)
			todo[(*n)++] = (struct range){ base + h->left[k].from,
						       base + h->left[k].to };
	}
	free(t);
	job->threads = NULL;
	return ret;
}

int q2e_spans_finish(struct q2e_spans_job *job, bool cancel)
{
	struct range todo[2 * (MAX_LEFT + 1)] = { { 0, job->by->n } };
	size_t n = 1;
	bool again = false;
	struct half rest;
	int ret = 0;

	if (job->threads) {
		if (cancel)
			atomic_store(&job->threads->cancel, true);
		n = 0;
		ret = join(job, cancel, todo, &n, &again);
	}
	if (cancel || ret < 0 || n == 0) {
		job->again = again;
		return ret;
	}
	/* What the cache lacked, read as usual, with the advice. */
	ret = half_init(&rest, job, *job->by, job->err);
	rest.again = again;
	if (ret == 0)
		ret = run_half(&rest, job->by, todo, n);
	q2e_seqwriter_fini(&rest.out);
	job->again = rest.again;
	return ret;
}

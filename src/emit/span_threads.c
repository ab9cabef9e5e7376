/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The spans' bytes copied by two threads (spans.h).
 *
 * With the image in the page cache, a dump's time goes to system calls:
 * the 1 GiB image of 512-byte clusters has 34,000 spans (an L2 table
 * every 32 KiB, between data clusters), one pread() and a share of a
 * pwrite() each, a third of the dump.  No one call reads scattered ranges
 * (io_uring in batches of 64 and mmap were measured, and were no faster),
 * so the spans are split in two halves of about equal cost, each written
 * at its own place in the file (the layout is known), each by a thread of
 * its own, while the main thread makes the rest of the file: the symbols,
 * the note and the types, then the tables after the regions.
 *
 * The threads read only what the page cache holds (and so never touch the
 * read plan, whose advice follows one reader, the main thread): at the
 * first span the cache lacks, a thread stops, and the main thread reads
 * the rest of that half once it is done with its own work, as usual, with
 * the advice.  A cold cache costs a read that finds nothing on each.
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
#define STACK_SIZE (256U << 10)

/* One half: the sections BY (a view of the job's) and where they go. */
struct half {
	struct q2e_spans_job *job;
	struct q2e_by_addr by;
	struct q2e_seqwriter out;
	struct q2e_error *err;
	bool cached_only;
	atomic_bool *cancel;	/* the caller or the other half failed */
	atomic_bool *uncached;	/* set at a span the cache lacked */
	size_t stopped;		/* the span BY[STOPPED] was not cached */
	bool again;
	int ret;
};

/* The threads' state, between q2e_spans_start() and q2e_spans_finish(). */
struct q2e_spans_threads {
	struct half half[2];
	struct q2e_error err[2];
	pthread_t thread[2];
	bool running[2];
	atomic_bool cancel, uncached;
};

static int run_half(struct half *h)
{
	struct q2e_region_copier c;
	struct q2e_out_section **active;
	struct q2e_span sp;
	size_t next = 0, width = 0;
	int ret;

	h->stopped = h->by.n;
	while (q2e_span_next(&h->by, &next, &sp))
		if (sp.last - sp.first > width)
			width = sp.last - sp.first;
	/* As wide as the widest span, not one a section: most spans are a
	 * table between data clusters. */
	active = malloc((width ? width : 1) * sizeof(*active));
	if (!active)
		return q2e_error_set(h->err, Q2E_ENOMEM, "out of memory");
	ret = q2e_region_copier_init(&c, h->job->img, h->out.fd,
				     h->job->path, h->err);
	c.redact = h->job->redact;
	c.skip_zeros = h->job->skip_zeros;
	c.cached_only = h->cached_only;
	next = 0;
	while (ret == 0 && q2e_span_next(&h->by, &next, &sp)) {
		bool found;

		if (h->cancel && atomic_load(h->cancel))
			break;
		ret = q2e_span_stream(&c, h->again ? NULL : &h->out, &h->by,
				      &sp, active, &found);
		h->again = h->again || found;
		if (ret == Q2E_SPAN_UNCACHED) {
			h->stopped = sp.first;
			atomic_store(h->uncached, true);
			q2e_writeback_hold(h->out.wb);
			ret = 0;
			break;
		}
	}
	q2e_region_copier_fini(&c);
	free(active);
	if (ret == 0)
		ret = q2e_seqwriter_flush(&h->out);
	return ret;
}

static void *run_thread(void *arg)
{
	struct half *h = arg;

	h->ret = run_half(h);
	if (h->ret < 0)
		atomic_store(h->cancel, true);
	return NULL;
}

/* Where BY splits into two halves of about equal cost: the index of the
 * second half's first span, or BY->n when it is not worth a thread. */
static size_t split_point(const struct q2e_by_addr *by)
{
	uint64_t total = 0, sum = 0;
	struct q2e_span sp;
	size_t next = 0;

	while (q2e_span_next(by, &next, &sp))
		total += sp.end - sp.start + SPAN_COST;
	if (total < SPLIT_MIN)
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

/*
 * A writer for the sections H->by from its first that holds bytes: a
 * section of zeros has no file offset of its own.
 */
static int half_init(struct half *h, struct q2e_spans_job *job,
		     struct q2e_by_addr by, struct q2e_error *err)
{
	size_t k = 0;
	int ret;

	*h = (struct half){ .job = job, .by = by, .err = err };
	ret = q2e_seqwriter_init(&h->out, job->fd, job->path, err);
	if (ret < 0)
		return ret;
	while (k < by.n && q2e_by(&by, k)->zero)
		k++;
	h->out.off = k < by.n ? q2e_by(&by, k)->file_offset : 0;
	h->out.wb = job->wb;
	return 0;
}

void q2e_spans_start(struct q2e_spans_job *job)
{
	const struct q2e_by_addr *by = job->by;
	size_t split = split_point(by);
	struct q2e_spans_threads *t;

	job->again = false;
	job->threads = NULL;
	if (split >= by->n || !(t = calloc(1, sizeof(*t))))
		return;	/* all of it in q2e_spans_finish() */
	atomic_init(&t->cancel, false);
	atomic_init(&t->uncached, false);
	for (int i = 0; i < 2; i++) {
		struct half *h = &t->half[i];
		struct q2e_by_addr part = i == 0 ? view(by, 0, split)
						 : view(by, split, by->n);

		if (half_init(h, job, part, &t->err[i]) < 0) {
			/* Left whole to q2e_spans_finish(). */
			h->stopped = 0;
			continue;
		}
		h->cached_only = true;
		h->cancel = &t->cancel;
		h->uncached = &t->uncached;
		t->running[i] = q2e_emit_thread_start(&t->thread[i], STACK_SIZE,
						       run_thread, h);
		if (!t->running[i])
			h->stopped = 0;
	}
	job->threads = t;
}

bool q2e_spans_left_over(const struct q2e_spans_job *job)
{
	const struct q2e_spans_threads *t = job->threads;

	return !t || !t->running[0] || !t->running[1] ||
	       atomic_load(&t->uncached);
}

/* The rest of BY[FROM, TO), read on this thread as usual, with the
 * advice; AGAIN as the copying before left it. */
static int run_rest(struct q2e_spans_job *job, size_t from, size_t to,
		    bool *again)
{
	struct half h;
	int ret;

	if (from >= to)
		return 0;
	ret = half_init(&h, job, view(job->by, from, to), job->err);
	if (ret < 0)
		return ret;
	h.again = *again;
	ret = run_half(&h);
	*again = h.again;
	q2e_seqwriter_fini(&h.out);
	return ret;
}

int q2e_spans_finish(struct q2e_spans_job *job, bool cancel)
{
	struct q2e_spans_threads *t = job->threads;
	size_t from[2] = { 0, 0 }, to[2] = { job->by->n, 0 };
	bool again = false;
	int ret = 0;

	if (t) {
		if (cancel)
			atomic_store(&t->cancel, true);
		for (int i = 0; i < 2; i++) {
			struct half *h = &t->half[i];
			size_t base = h->by.idx - job->by->idx;

			if (t->running[i])
				pthread_join(t->thread[i], NULL);
			q2e_seqwriter_fini(&h->out);
			if (ret == 0 && h->ret < 0) {
				*job->err = t->err[i];
				ret = h->ret;
			}
			again = again || h->again;
			/* What the cache lacked. */
			from[i] = base + h->stopped;
			to[i] = base + h->by.n;
		}
		free(t);
		job->threads = NULL;
	}
	if (cancel)
		return 0;
	for (int i = 0; i < 2 && ret == 0; i++)
		ret = run_rest(job, from[i], to[i], &again);
	job->again = again;
	return ret;
}

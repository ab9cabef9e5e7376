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
 * at its own place in the file (the layout is known), the second half by
 * a thread of its own.
 *
 * That thread reads only what the page cache holds (and so never touches
 * the read plan, whose advice follows one reader): at the first span the
 * cache lacks, it stops, and the main thread reads the rest of that half
 * after its own, as usual, with the advice.  A cold cache costs one read
 * that finds nothing.
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
	struct q2e_seqwriter *out;
	struct q2e_error *err;
	bool cached_only;
	atomic_bool *cancel;	/* the other half failed */
	size_t stopped;		/* the span BY[STOPPED] was not cached */
	bool again;
	int ret;
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
	ret = q2e_region_copier_init(&c, h->job->img, h->out->fd,
				     h->job->path, h->err);
	c.redact = h->job->redact;
	c.skip_zeros = h->job->skip_zeros;
	c.cached_only = h->cached_only;
	next = 0;
	while (ret == 0 && q2e_span_next(&h->by, &next, &sp)) {
		bool found;

		if (h->cancel && atomic_load(h->cancel))
			break;
		ret = q2e_span_stream(&c, h->again ? NULL : h->out, &h->by,
				      &sp, active, &found);
		h->again = h->again || found;
		if (ret == Q2E_SPAN_UNCACHED) {
			h->stopped = sp.first;
			q2e_writeback_hold(h->out->wb);
			ret = 0;
			break;
		}
	}
	q2e_region_copier_fini(&c);
	free(active);
	return ret;
}

static void *run_second(void *arg)
{
	struct half *h = arg;

	h->ret = run_half(h);
	if (h->ret == 0)
		h->ret = q2e_seqwriter_flush(h->out);
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
	/* The next span's first section: its file offset is where the
	 * second half's bytes start (a section of zeros has none). */
	while (next < by->n && q2e_by(by, next)->zero)
		next++;
	return next;
}

/* The sections BY[FROM, TO) as a view of their own. */
static struct q2e_by_addr view(const struct q2e_by_addr *by, size_t from,
			       size_t to)
{
	return (struct q2e_by_addr){ by->secs, by->idx + from, to - from };
}

int q2e_spans_write(struct q2e_spans_job *job)
{
	const struct q2e_by_addr *by = job->by;
	size_t split = split_point(by);
	struct q2e_seqwriter out2;
	struct q2e_error err2 = { 0 };
	atomic_bool cancel = false;
	struct half first = { job, view(by, 0, split), job->out, job->err,
			      false, NULL, 0, false, 0 };
	struct half second = { job, view(by, split, by->n), &out2, &err2,
			       true, &cancel, 0, false, 0 };
	bool threaded = false;
	pthread_t t;
	int ret;

	job->again = false;
	if (split < by->n &&
	    q2e_seqwriter_init(&out2, job->out->fd, job->path, &err2) == 0) {
		/* The second half's bytes start at its first section's. */
		out2.off = q2e_by(by, split)->file_offset;
		out2.wb = job->out->wb;
		threaded = q2e_emit_thread_start(&t, STACK_SIZE, run_second,
						  &second);
		if (!threaded)
			q2e_seqwriter_fini(&out2);
	}
	if (!threaded)
		first.by = *by;
	ret = run_half(&first);
	if (threaded) {
		if (ret < 0)
			atomic_store(&cancel, true);
		pthread_join(t, NULL);
		q2e_seqwriter_fini(&out2);
		if (ret == 0 && second.ret < 0) {
			*job->err = err2;
			ret = second.ret;
		}
		/* What the cache lacked: read as usual, with the advice. */
		if (ret == 0 && second.stopped < second.by.n) {
			size_t from = split + second.stopped;

			first.by = view(by, from, by->n);
			first.again = first.again || second.again;
			ret = q2e_seqwriter_seek(job->out,
						 q2e_by(by, from)->file_offset);
			if (ret == 0)
				ret = run_half(&first);
		}
	}
	job->again = first.again || second.again;
	return ret;
}

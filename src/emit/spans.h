/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Internal to the dump emitter: the file bytes of the region sections
 * (spans.c).  Sections whose image ranges overlap or adjoin make one span,
 * copied once: each section's sh_offset points into that copy.  So a dump
 * is as large as the union of its regions, not their sum (256 snapshot L1
 * tables of 32 MiB at one offset took 8.6 GB), and adjoining regions are
 * read in one read.
 */
#ifndef Q2E_EMIT_SPANS_H
#define Q2E_EMIT_SPANS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "emit.h"
#include "seqwrite.h"

/* 16 bytes: a dump has one per region.  A file offset fits in an off_t,
 * so 63 bits. */
struct q2e_out_section {
	const struct q2e_region *region;
	uint64_t file_offset : 63;
	uint64_t zero : 1;	/* all zeros: SHT_NOBITS, no room in the file */
};

/*
 * The image range [START, END) that the sections BY[FIRST..LAST) (in
 * address order) hold together, those of them that are not zero: one
 * copy in the file.  Sections of zeros among them are no part of it.
 */
struct q2e_span {
	size_t first, last;
	uint64_t start, end;
};

/* The N region sections SECS by address: indexes, half the size of
 * pointers. */
struct q2e_by_addr {
	struct q2e_out_section *secs;
	uint32_t *idx;
	size_t n;
};

static inline struct q2e_out_section *q2e_by(const struct q2e_by_addr *by,
					     size_t k)
{
	return &by->secs[by->idx[k]];
}

/*
 * The span that starts at the section BY[*I] or after, *I moved past it;
 * false when there is none.
 */
bool q2e_span_next(const struct q2e_by_addr *by, size_t *i,
		   struct q2e_span *sp);

/* What a span is read a chunk at a time by, into the writer's buffer:
 * the copying threads' writers touch no more of it. */
#define Q2E_SPAN_CHUNK (Q2E_SEQWRITE_BUFFER / 2)

/* What q2e_span_stream() returns for a span the page cache lacks, read
 * with C->cached_only. */
#define Q2E_SPAN_UNCACHED 1

/*
 * Reads the bytes of SP once, through C (its image, redaction and error),
 * into W at W's position, or only to look at them when W is NULL; marks
 * zero each section of SP whose bytes turn out all zeros, telling so in
 * *FOUND.  With C->skip_zeros, runs of zeros (a table in a hole of the
 * image, its head or its tail) are left as holes of the output.  ACTIVE
 * has room for SP->last - SP->first pointers.
 */
int q2e_span_stream(struct q2e_region_copier *c, struct q2e_seqwriter *w,
		    const struct q2e_by_addr *by, const struct q2e_span *sp,
		    struct q2e_out_section **active, bool *found);

/*
 * The bytes of all the spans of BY, each at its section's file offset
 * (span_threads.c): q2e_spans_start() has one or two threads copy what
 * the page cache holds while the caller goes on with other work, and
 * q2e_spans_finish() waits for them and reads the rest.
 */
struct q2e_spans_threads;

struct q2e_spans_job {
	struct q2e_image *img;
	const struct q2e_by_addr *by;
	int fd;
	struct q2e_writeback *wb;	/* as a writer's */
	const char *path;	/* for messages */
	const struct q2e_redaction *redact;
	bool skip_zeros;	/* as the copier's */
	/* Out: a section was found all zeros (marked zero), as
	 * q2e_span_stream() tells, and the spans after it only looked at. */
	bool again;
	struct q2e_error *err;
	struct q2e_spans_threads *threads;	/* started, NULL: none */
};

/*
 * Starts the threads, where there is enough to copy for them; without
 * them q2e_spans_finish() copies it all.  Nothing the threads write to
 * (the sections' zero marks, the file below the last span's end) may be
 * read until q2e_spans_finish() returns.
 */
void q2e_spans_start(struct q2e_spans_job *job);
/*
 * Whether q2e_spans_finish() has reads to make, so far: no threads, or a
 * thread stopped at bytes the page cache lacked.
 */
bool q2e_spans_left_over(const struct q2e_spans_job *job);
/*
 * Waits for the threads, then reads on this thread, with the read plan's
 * advice, the spans the page cache lacked: 0 or an error in JOB->err.
 * With CANCEL (the caller failed, its error in JOB->err), the threads are
 * stopped, nothing more is read and JOB->err keeps the caller's error.
 * Called once for each start, on every path.
 */
int q2e_spans_finish(struct q2e_spans_job *job, bool cancel);

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Internal to the dump emitter: the finished parts of an output file
 * handed to the kernel for writing while the rest is made (writeback.c).
 */
#ifndef Q2E_EMIT_WRITEBACK_H
#define Q2E_EMIT_WRITEBACK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Ranges waiting for the thread; a range that finds no room is left to
 * the kernel's own writeback. */
#define Q2E_WRITEBACK_QUEUE 16

struct q2e_writeback {
	int fd;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool started, stop;
	bool held;		/* under LOCK: hand nothing more over */
	struct { uint64_t off, len; } queue[Q2E_WRITEBACK_QUEUE];
	unsigned head, count;
};

/*
 * A run of bytes one writer wrote in order, not yet handed over: the
 * writer keeps it, as two writers may write one file at once.
 */
struct q2e_writeback_run {
	uint64_t start, end;
};

/* Starts the thread for FD; without one (no thread could be made),
 * q2e_writeback_wrote() does nothing. */
void q2e_writeback_start(struct q2e_writeback *wb, int fd);
/*
 * Tells WB (NULL: nothing to do) that [OFF, END) was written by the writer
 * of RUN; once the run holds enough whole pages, they are handed over.
 */
void q2e_writeback_wrote(struct q2e_writeback *wb, struct q2e_writeback_run *run,
			 uint64_t off, uint64_t end);
/*
 * The reads go to the device: nothing more is handed over, as the writes
 * would slow them (left to the rename, after the reads).  WB may be NULL.
 */
void q2e_writeback_hold(struct q2e_writeback *wb);
/* Hands over what is queued and joins the thread: called once for each
 * start, on every path, before the file is closed. */
void q2e_writeback_finish(struct q2e_writeback *wb);

#endif

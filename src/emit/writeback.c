/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Writing out a dump's finished parts while the rest is made.
 *
 * A dump is put in place with rename() over the file it replaces, and
 * ext4 (auto_da_alloc) then allocates and submits every page of the new
 * file inside the rename, so that a crash soon after leaves the old file
 * or the new one, not an empty one: about 140 ms of a cold dump of the
 * 1 TiB image, after all the reads.  Handed to the kernel as they are
 * finished (sync_file_range(SYNC_FILE_RANGE_WRITE): start writing, wait
 * for nothing), the pages go out while the regions are still being read,
 * and the rename finds little left.  This is no sync: nothing waits for
 * the device, and an error shows as it would have without it.
 *
 * The calls are made by a thread of their own, since starting the writes
 * blocks whenever the device's queue is full.  Only whole pages are
 * handed over: a page the writer is still filling would be written twice.
 *
 * Only while the image is read from the page cache: with a cold cache the
 * writes shared the device with the reads, which took longer by what the
 * rename saved (1 TiB image: reads 0.23 s became 0.31-0.34, the rename's
 * 0.095 s became 0.03), so a copying thread that stops for a cold cache
 * (span_threads.c: at its fourth miss in a row) holds them back; a few
 * pages missing from a warm cache do not.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>

#include "emit.h"
#include "writeback.h"

/* Handed over at a time: a few calls for a dump of 100 MiB, and room in
 * the device's queue for the reads between them. */
#define CHUNK (4ULL << 20)
#define PAGE 4096ULL
#define STACK_SIZE (64U << 10)

static void *write_out(void *arg)
{
	struct q2e_writeback *wb = arg;

	pthread_mutex_lock(&wb->lock);
	for (;;) {
		while (!wb->stop && !wb->count)
			pthread_cond_wait(&wb->wake, &wb->lock);
		if (!wb->count || wb->held)
			break;	/* stopped, and nothing is left; or held */
		uint64_t off = wb->queue[wb->head].off;
		uint64_t len = wb->queue[wb->head].len;

		wb->head = (wb->head + 1) % Q2E_WRITEBACK_QUEUE;
		wb->count--;
		pthread_mutex_unlock(&wb->lock);
		/* Only ever a start: a failure leaves the pages to the
		 * rename, as before. */
		sync_file_range(wb->fd, (off64_t)off, (off64_t)len,
				SYNC_FILE_RANGE_WRITE);
		pthread_mutex_lock(&wb->lock);
	}
	pthread_mutex_unlock(&wb->lock);
	return NULL;
}

void q2e_writeback_start(struct q2e_writeback *wb, int fd)
{
	memset(wb, 0, sizeof(*wb));
	wb->fd = fd;
	if (pthread_mutex_init(&wb->lock, NULL) != 0)
		return;
	if (pthread_cond_init(&wb->wake, NULL) != 0) {
		pthread_mutex_destroy(&wb->lock);
		return;
	}
	wb->started = q2e_emit_thread_start(&wb->thread, STACK_SIZE, write_out,
					    wb);
	if (!wb->started) {
		pthread_cond_destroy(&wb->wake);
		pthread_mutex_destroy(&wb->lock);
	}
}

static void hand_over(struct q2e_writeback *wb, uint64_t off, uint64_t len)
{
	pthread_mutex_lock(&wb->lock);
	if (!wb->held && wb->count < Q2E_WRITEBACK_QUEUE) {
		unsigned tail = (wb->head + wb->count) % Q2E_WRITEBACK_QUEUE;

		wb->queue[tail].off = off;
		wb->queue[tail].len = len;
		wb->count++;
		pthread_cond_signal(&wb->wake);
	}
	pthread_mutex_unlock(&wb->lock);
}

void q2e_writeback_wrote(struct q2e_writeback *wb, struct q2e_writeback_run *run,
			 uint64_t off, uint64_t end)
{
	uint64_t from, to;

	if (!wb || !wb->started || end <= off)
		return;
	/* A hole left in the file (a table in a hole of the image) goes on
	 * with the run; a jump elsewhere starts another, and what the old
	 * one held is left to the rename. */
	if (!run->end || off < run->end || off > run->end + CHUNK)
		run->start = off;
	run->end = end;
	from = (run->start + PAGE - 1) / PAGE * PAGE;
	to = run->end / PAGE * PAGE;
	if (to <= from || to - from < CHUNK)
		return;
	hand_over(wb, from, to - from);
	run->start = to;
}

void q2e_writeback_hold(struct q2e_writeback *wb)
{
	if (!wb || !wb->started)
		return;
	pthread_mutex_lock(&wb->lock);
	wb->held = true;
	pthread_mutex_unlock(&wb->lock);
}

void q2e_writeback_finish(struct q2e_writeback *wb)
{
	if (!wb->started)
		return;
	pthread_mutex_lock(&wb->lock);
	wb->stop = true;
	pthread_cond_signal(&wb->wake);
	pthread_mutex_unlock(&wb->lock);
	pthread_join(wb->thread, NULL);
	wb->started = false;
	pthread_cond_destroy(&wb->wake);
	pthread_mutex_destroy(&wb->lock);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The image file's data extents, on a thread beside the reads.  FIEMAP
 * costs the file system about half a microsecond an extent, 16 ms of a
 * warm 100 ms dump of the 1 GiB image of 512-byte clusters (33,000
 * extents), and nothing the reads wait for: only .qcow2elf.extents, written
 * after the regions, needs the answer.  The source answers this question
 * from the file descriptor and its size alone, which the reads do not
 * change, so the two may run at once.
 */
#include <signal.h>
#include <string.h>

#include "bg_extents.h"

#define STACK_SIZE (256U << 10)

static void *ask(void *arg)
{
	struct q2e_bg_extents *j = arg;

	j->ret = q2e_image_file_extents(j->img, &j->list, &j->n, &j->err);
	return NULL;
}

void q2e_bg_extents_start(struct q2e_bg_extents *j, struct q2e_image *img)
{
	pthread_attr_t attr;
	sigset_t all, old;

	*j = (struct q2e_bg_extents){ .img = img };
	/* A small stack: the default 8 MiB counts against `ulimit -v`, and
	 * asking for extents takes a few frames. */
	if (pthread_attr_init(&attr) != 0)
		return;
	pthread_attr_setstacksize(&attr, STACK_SIZE);
	/* Signals stay with the thread that handles them (the output file's
	 * clean-up). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	j->started = pthread_create(&j->thread, &attr, ask, j) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
}

int q2e_bg_extents_finish(struct q2e_bg_extents *j, struct q2e_extent **list,
			  size_t *n, struct q2e_error *err)
{
	if (j->started)
		pthread_join(j->thread, NULL);
	else if (!j->done)
		ask(j);
	j->started = false;
	j->done = true;
	*list = j->list;
	*n = j->n;
	j->list = NULL;
	if (j->ret < 0 && err && !err->code)
		*err = j->err;
	return j->ret;
}

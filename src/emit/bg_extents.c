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
#include <string.h>

#include "bg_extents.h"
#include "emit.h"

#define STACK_SIZE (256U << 10)

static void *ask(void *arg)
{
	struct q2e_bg_extents *j = arg;

	j->ret = q2e_image_file_extents(j->img, &j->list, &j->n, &j->err);
	return NULL;
}

void q2e_bg_extents_start(struct q2e_bg_extents *j, struct q2e_image *img)
{
	*j = (struct q2e_bg_extents){ .img = img };
	/* Asking for extents takes a few frames. */
	j->started = q2e_emit_thread_start(&j->thread, STACK_SIZE, ask, j);
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

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Internal to the dump emitter: the image file's data extents, asked for
 * on a thread of their own while the regions are read (bg_extents.c).
 */
#ifndef Q2E_EMIT_BG_EXTENTS_H
#define Q2E_EMIT_BG_EXTENTS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "qcow2elf/error.h"
#include "qcow2elf/model.h"

struct q2e_bg_extents {
	struct q2e_image *img;
	pthread_t thread;
	bool started;		/* a thread is asking */
	bool done;		/* LIST, N, RET and ERR are the answer */
	struct q2e_extent *list;
	size_t n;
	int ret;
	struct q2e_error err;
};

/* Starts asking for IMG's file extents; they are asked for in
 * q2e_bg_extents_finish() where no thread can be started. */
void q2e_bg_extents_start(struct q2e_bg_extents *j, struct q2e_image *img);
/*
 * The answer, as q2e_image_file_extents() gives it: *LIST (free() it) and
 * *N, or an error in *ERR.  Called once for each start, on any path, as
 * the thread reads IMG.
 */
int q2e_bg_extents_finish(struct q2e_bg_extents *j, struct q2e_extent **list,
			  size_t *n, struct q2e_error *err);

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QEMU's image locks: whether another process holds an image in a way
 * qemu-img would not open it beside (q2e_source_lock_conflict()).
 *
 * QEMU's file driver (block/file-posix.c) takes open file description
 * locks, shared, on single bytes of the image file: byte 100 + i while it
 * holds permission i, and byte 200 + i while it does not let others have
 * it.  The permissions, by bit:
 *
 *   bit  permission         a running VM
 *   0    consistent read    holds it
 *   1    write              holds it, shares it with no one
 *   2    write unchanged    shares it
 *   3    resize             holds it, shares it with no one
 *
 * A format driver over a file never shares write or resize of it
 * (bdrv_default_perms_for_storage(): "We can never allow other users to
 * resize or write to it"), and reads it consistently.  So qemu-img check,
 * map and info fail where another process holds byte 101 or 103 ("Failed
 * to get shared "write" lock") or byte 200, and succeed with -U, which
 * asks for nothing.  Reading beside a writer gives a check of tables
 * that change under it: qcow2elf refuses as qemu-img does.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>

#include "source_impl.h"

#define PERM_BASE 100
#define SHARED_BASE 200

static bool force_share;

void q2e_source_set_force_share(bool on)
{
	force_share = on;
}

/* Whether any other open file description holds a lock on byte OFF;
 * false where the file system has no such locks. */
static bool byte_locked(int fd, off_t off)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = off;
	fl.l_len = 1;
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return false;
	return fl.l_type != F_UNLCK;
}

const char *q2e_source_lock_conflict(int fd)
{
	/* In qemu-img's order: what it needs, then what it does not share. */
	static const struct {
		off_t off;
		const char *msg;
	} tests[] = {
		{ SHARED_BASE + 0, "Failed to get \"consistent read\" lock" },
		{ PERM_BASE + 1, "Failed to get shared \"write\" lock" },
		{ PERM_BASE + 3, "Failed to get shared \"resize\" lock" },
	};

	if (force_share)
		return NULL;
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		if (byte_locked(fd, tests[i].off))
			return tests[i].msg;
	return NULL;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QEMU's image locks: an image file is refused where another process
 * holds it so that qemu-img would not open it beside, and held while it is
 * read as qemu-img holds it (q2e_source_lock()).
 *
 * QEMU's file driver (block/file-posix.c, raw_check_lock_bytes() and
 * raw_apply_lock_bytes()) takes open file description locks, shared, on
 * single bytes of the file: byte 100 + i while it holds permission i,
 * byte 200 + i while it lets no one else have it.  The permissions:
 *
 *   bit  permission         a running VM
 *   0    consistent read    holds it
 *   1    write              holds it, shares it with no one
 *   2    write unchanged    shares it
 *   3    resize             holds it, shares it with no one
 *
 * A process is refused a permission it wants that another keeps to itself
 * (byte 200 + i held), and keeping one that another holds (100 + i).
 * qemu-img opening an image for its metadata (the image, a backing file:
 * bdrv_default_perms_for_storage(), "We can never allow other users to
 * resize or write to it") wants consistent read where it reads data (not
 * info, which opens with BDRV_O_NO_IO) and keeps write and resize; an
 * external data file it lets others write, and keeps resize.  -U
 * (force-share) keeps nothing: it still wants consistent read.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>

#include "source_impl.h"

#define PERM_BASE 100
#define SHARED_BASE 200
#define CONSISTENT_READ 0
#define WRITE 1
#define RESIZE 3

static bool force_share;
static bool reads_data = true;

void q2e_source_set_locking(bool force, bool reads)
{
	force_share = force;
	reads_data = reads;
}

/* fcntl(FD, CMD) for a lock of TYPE on byte OFF, as *FL. */
static int byte_fcntl(int fd, int cmd, short type, off_t off,
		      struct flock *fl)
{
	memset(fl, 0, sizeof(*fl));
	fl->l_type = type;
	fl->l_whence = SEEK_SET;
	fl->l_start = off;
	fl->l_len = 1;
	return fcntl(fd, cmd, fl);
}

/* Whether another open file description holds a lock on byte OFF; false
 * where the file system keeps no such locks (as for qemu-img -U). */
static bool byte_locked(int fd, off_t off)
{
	struct flock fl;

	return byte_fcntl(fd, F_OFD_GETLK, F_WRLCK, off, &fl) == 0 &&
	       fl.l_type != F_UNLCK;
}

/* A shared lock on byte OFF; none where the file system keeps none. */
static void lock_byte(int fd, off_t off)
{
	struct flock fl;

	byte_fcntl(fd, F_OFD_SETLK, F_RDLCK, off, &fl);
}

const char *q2e_source_lock(int fd, enum q2e_source_role role)
{
	/* What FD wants and keeps, in raw_check_lock_bytes()'s order. */
	const bool want_read = reads_data;
	const bool keep_write = !force_share && role == Q2E_SOURCE_METADATA;
	const bool keep_resize = !force_share;

	if (want_read && byte_locked(fd, SHARED_BASE + CONSISTENT_READ))
		return "Failed to get \"consistent read\" lock";
	if (keep_write && byte_locked(fd, PERM_BASE + WRITE))
		return "Failed to get shared \"write\" lock";
	if (keep_resize && byte_locked(fd, PERM_BASE + RESIZE))
		return "Failed to get shared \"resize\" lock";
	if (want_read)
		lock_byte(fd, PERM_BASE + CONSISTENT_READ);
	if (keep_write)
		lock_byte(fd, SHARED_BASE + WRITE);
	if (keep_resize)
		lock_byte(fd, SHARED_BASE + RESIZE);
	return NULL;
}

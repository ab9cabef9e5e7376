/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcow2elf/outfile.h"

/*
 * The temporary file being written, for q2e_outfile_remove_pending(): a
 * copy of its path that a signal handler may read, valid while set.
 */
static char pending_path[4096];
static volatile sig_atomic_t pending;

static void set_pending(const char *tmp)
{
	pending = 0;
	if (strlen(tmp) < sizeof(pending_path)) {
		memcpy(pending_path, tmp, strlen(tmp) + 1);
		pending = 1;
	}
}

void q2e_outfile_remove_pending(void)
{
	if (pending)
		unlink(pending_path);
	pending = 0;
}

int q2e_outfile_open(struct q2e_outfile *f, const char *path,
		     struct q2e_error *err)
{
	mode_t mask;
	int ret;

	f->path = path;
	f->fd = -1;
	f->tmp = NULL;
	if (asprintf(&f->tmp, "%s.tmpXXXXXX", path) < 0) {
		f->tmp = NULL;
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	}
	/* A signal between creating the file and recording its name would
	 * find nothing to remove: hold the usual ones back meanwhile. */
	sigset_t block, old;
	int saved;

	sigemptyset(&block);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGQUIT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &old);
	f->fd = mkstemp(f->tmp);
	saved = errno;
	if (f->fd >= 0)
		set_pending(f->tmp);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (f->fd < 0) {
		ret = q2e_error_set(err, Q2E_EOUTPUT,
				    "'%s': cannot create a temporary file beside it: %s",
				    path, strerror(saved));
		free(f->tmp);
		f->tmp = NULL;
		return ret;
	}
	mask = umask(0);
	umask(mask);
	if (fchmod(f->fd, 0666 & ~mask) < 0) {
		ret = q2e_error_set(err, Q2E_EOUTPUT, "'%s': cannot write: %s",
				    path, strerror(errno));
		q2e_outfile_abort(f);
		return ret;
	}
	return 0;
}

int q2e_outfile_commit(struct q2e_outfile *f, bool replace,
		       struct q2e_error *err)
{
	int ret = 0, fd = f->fd;

	f->fd = -1;
	if (fsync(fd) < 0)
		ret = q2e_error_set(err, Q2E_EOUTPUT, "'%s': cannot write: %s",
				    f->path, strerror(errno));
	if (close(fd) < 0 && ret == 0)
		ret = q2e_error_set(err, Q2E_EOUTPUT, "'%s': cannot write: %s",
				    f->path, strerror(errno));
	if (ret == 0 && replace && rename(f->tmp, f->path) < 0)
		ret = q2e_error_set(err, Q2E_EOUTPUT,
				    "'%s': cannot move the finished file into place: %s",
				    f->path, strerror(errno));
	if (ret == 0 && !replace && link(f->tmp, f->path) < 0)
		ret = q2e_error_set(err, Q2E_EOUTPUT,
				    errno == EEXIST
					    ? "'%s' already exists; use --force to replace it%s%s"
					    : "'%s': cannot move the finished file into place%s%s",
				    f->path, errno == EEXIST ? "" : ": ",
				    errno == EEXIST ? "" : strerror(errno));
	if (ret < 0 || !replace)
		unlink(f->tmp);
	/* Until here a signal may remove the temporary file: once renamed
	 * or linked into place, its old name no longer matters. */
	pending = 0;
	free(f->tmp);
	f->tmp = NULL;
	return ret;
}

void q2e_outfile_abort(struct q2e_outfile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	if (f->tmp)
		unlink(f->tmp);
	pending = 0;	/* only now: a signal before may remove it too */
	free(f->tmp);
	f->tmp = NULL;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "qcow2elf/outfile.h"

/* Bounds the memory a copy to a stream takes. */
#define COPY_CHUNK (1U << 20)

/*
 * The named temporary file being written, for q2e_outfile_remove_pending():
 * a copy of its path that a signal handler may read, valid while set.  An
 * unnamed one (O_TMPFILE) needs nothing: it goes with the process.
 */
static char pending_path[PATH_MAX + 32];
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

/* A signal between creating a named file and recording its name would find
 * nothing to remove: the usual ones are held back meanwhile. */
static void hold_signals(bool hold, sigset_t *old)
{
	sigset_t block;

	if (!hold) {
		sigprocmask(SIG_SETMASK, old, NULL);
		return;
	}
	sigemptyset(&block);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGQUIT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, old);
}

bool q2e_outfile_is_stdout(const char *path)
{
	return strcmp(path, "-") == 0;
}

int q2e_outfile_descriptor(const char *path)
{
	static const char *const dirs[] = { "/dev/fd/", "/proc/self/fd/" };

	if (strcmp(path, "-") == 0 || strcmp(path, "/dev/stdout") == 0)
		return STDOUT_FILENO;
	if (strcmp(path, "/dev/stderr") == 0)
		return STDERR_FILENO;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		const char *p = path + strlen(dirs[i]);
		char *end;
		long n;

		if (strncmp(path, dirs[i], strlen(dirs[i])) != 0 ||
		    *p < '0' || *p > '9')
			continue;
		errno = 0;
		n = strtol(p, &end, 10);
		return *end || errno || n > INT_MAX ? -1 : (int)n;
	}
	return -1;
}

static mode_t new_file_mode(void)
{
	mode_t mask = umask(0);

	umask(mask);
	return 0666 & ~mask;
}

/*
 * The file a symbolic link at PATH leads to, through any number of links,
 * so that the link itself stays; a dangling link leads to the name it
 * holds, created there.  Loops end as open() would, with ELOOP.
 */
static char *follow_links(const char *path)
{
	char *cur = strdup(path);

	for (int hops = 0; cur; hops++) {
		char buf[PATH_MAX], *next = NULL, *copy;
		struct stat st;
		ssize_t n;

		if (lstat(cur, &st) < 0 || !S_ISLNK(st.st_mode))
			return cur;
		if (hops == 40) {
			free(cur);
			errno = ELOOP;
			return NULL;
		}
		n = readlink(cur, buf, sizeof(buf) - 1);
		if (n < 0) {
			free(cur);
			return NULL;
		}
		buf[n] = '\0';
		copy = strdup(cur);
		if (copy && buf[0] != '/' && strchr(cur, '/')) {
			if (asprintf(&next, "%s/%s", dirname(copy), buf) < 0)
				next = NULL;
		} else if (copy) {
			next = strdup(buf);
		}
		free(copy);
		free(cur);
		cur = next;
	}
	errno = ENOMEM;
	return NULL;
}

/* An unnamed file in directory DIR, or -1 where the file system has none. */
static int open_unnamed(const char *dir)
{
	return open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
}

/* The last component of PATH. */
static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* The longest name the directory of TARGET takes. */
static size_t name_max(const char *target)
{
	char *copy = strdup(target);
	long n = copy ? pathconf(dirname(copy), _PC_NAME_MAX) : -1;

	free(copy);
	return n > 0 ? (size_t)n : NAME_MAX;
}

/*
 * The name of a temporary file beside TARGET: TARGET.tmpSUFFIX, its last
 * component cut short (at a character) where the whole would be longer
 * than a name may be; a target of 250 bytes still gets one.
 */
static char *temp_name(const char *target, const char *suffix)
{
	const char *base = base_name(target);
	size_t extra = strlen(".tmp") + strlen(suffix), room = name_max(target);
	size_t keep = strlen(base);
	char *name;

	if (keep + extra > room) {
		keep = room > extra ? room - extra : 0;
		while (keep > 0 && ((unsigned char)base[keep] & 0xc0) == 0x80)
			keep--;
	}
	if (asprintf(&name, "%.*s.tmp%s", (int)(base - target + keep), target,
		     suffix) < 0)
		return NULL;
	return name;
}

/* A temporary file beside the target: unnamed where possible.  A target
 * whose name is too long fails here, before the output is made. */
static int open_beside(struct q2e_outfile *f, struct q2e_error *err)
{
	char *copy;
	sigset_t old;
	int saved;

	if (strlen(base_name(f->target)) > name_max(f->target) ||
	    strlen(f->target) >= PATH_MAX)
		return q2e_error_set(err, Q2E_EOUTPUT,
				     "'%s': cannot create it: %s", f->path,
				     strerror(ENAMETOOLONG));
	copy = strdup(f->target);
	if (!copy)
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	f->fd = open_unnamed(dirname(copy));
	free(copy);
	if (f->fd >= 0)
		return 0;
	f->tmp = temp_name(f->target, "XXXXXX");
	if (!f->tmp)
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	hold_signals(true, &old);
	f->fd = mkstemp(f->tmp);
	saved = errno;
	if (f->fd >= 0)
		set_pending(f->tmp);
	hold_signals(false, &old);
	if (f->fd >= 0)
		return 0;
	free(f->tmp);
	f->tmp = NULL;
	if (saved == ENOENT || saved == ENOTDIR)
		return q2e_error_set(err, Q2E_EOUTPUT,
				     "'%s': cannot create it: %s",
				     f->path, saved == ENOENT
				     ? "its directory does not exist"
				     : "a part of its path is not a directory");
	return q2e_error_set(err, Q2E_EOUTPUT,
			     "'%s': cannot create a temporary file beside it: %s",
			     f->path, strerror(saved));
}

/* What a stream is written through until commit: seekable, and nameless. */
static int open_scratch(struct q2e_outfile *f, struct q2e_error *err)
{
	const char *dir = getenv("TMPDIR");
	char *name;
	sigset_t old;
	int saved;

	if (!dir || !*dir)
		dir = "/tmp";
	f->fd = open_unnamed(dir);
	if (f->fd >= 0)
		return 0;
	if (asprintf(&name, "%s/qcow2elf.XXXXXX", dir) < 0)
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	hold_signals(true, &old);
	f->fd = mkstemp(name);
	saved = errno;
	if (f->fd >= 0)
		unlink(name);
	hold_signals(false, &old);
	free(name);
	if (f->fd >= 0)
		return 0;
	return q2e_error_set(err, Q2E_EOUTPUT,
			     "'%s': cannot create a temporary file in '%s': %s",
			     f->path, dir, strerror(saved));
}

/* A descriptor that is a regular file open at its start (`> FILE`) takes
 * the writer's pwrite() and ftruncate() as it is; one open further on
 * (`{ echo header; qcow2elf ...; } > FILE`) is written at its offset. */
static bool takes_writes(int fd)
{
	struct stat st;
	int flags = fcntl(fd, F_GETFL);

	return flags >= 0 && !(flags & O_APPEND) && fstat(fd, &st) == 0 &&
	       S_ISREG(st.st_mode) && lseek(fd, 0, SEEK_CUR) == 0;
}

/* The descriptor PATH names, written in place: never opened again by its
 * name, which would start at offset 0 or replace the file. */
static int open_descriptor(struct q2e_outfile *f, int fd,
			   struct q2e_error *err)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || (flags & O_ACCMODE) == O_RDONLY)
		return q2e_error_set(err, Q2E_EOUTPUT, "'%s': cannot write: %s",
				     f->path, strerror(EBADF));
	f->stream = true;
	f->out_fd = fd;
	f->direct = takes_writes(fd);
	if (f->direct) {
		f->fd = fd;
		return 0;
	}
	return open_scratch(f, err);
}

int q2e_outfile_open(struct q2e_outfile *f, const char *path,
		     struct q2e_error *err)
{
	int ret, fd = q2e_outfile_descriptor(path);
	struct stat st;

	*f = (struct q2e_outfile){ .path = path, .fd = -1, .out_fd = -1 };
	if (fd >= 0)
		return open_descriptor(f, fd, err);
	/* Opened by its name, not the one a link holds: /proc/self/fd/1
	 * leads to "pipe:[N]", which names nothing. */
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		if (S_ISDIR(st.st_mode))
			return q2e_error_set(err, Q2E_EOUTPUT,
					     "'%s' is a directory", path);
		f->stream = true;
		f->target = strdup(path);
		ret = f->target ? open_scratch(f, err)
				: q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	} else {
		f->target = follow_links(path);
		ret = f->target ? open_beside(f, err)
				: q2e_error_set(err, Q2E_EOUTPUT,
						"'%s': cannot write: %s", path,
						strerror(errno));
	}
	f->replaces = ret == 0 && !f->stream && stat(f->target, &st) == 0 &&
		      S_ISREG(st.st_mode);
	if (ret == 0 && !f->stream &&
	    fchmod(f->fd, f->replaces ? st.st_mode & 07777
				      : new_file_mode()) < 0)
		ret = q2e_error_set(err, Q2E_EOUTPUT, "'%s': cannot write: %s",
				    path, strerror(errno));
	if (ret < 0)
		q2e_outfile_abort(f);
	return ret;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The scratch file, from its start, to the stream in order: a pipe or a
 * device takes bytes as they come, holes as zeros. */
static int copy_out(struct q2e_outfile *f, struct q2e_error *err)
{
	int to = f->out_fd, ret = 0;
	char *buf = malloc(COPY_CHUNK);

	if (!buf)
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	if (f->target)
		to = open(f->target, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (to < 0)
		ret = q2e_error_set(err, Q2E_EOUTPUT, "'%s': cannot open: %s",
				    f->path, strerror(errno));
	for (off_t at = 0; ret == 0;) {
		ssize_t n = pread(f->fd, buf, COPY_CHUNK, at);

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			break;
		if (n < 0 || write_all(to, buf, (size_t)n) < 0)
			ret = q2e_error_set(err, Q2E_EOUTPUT,
					    "'%s': cannot write: %s", f->path,
					    strerror(errno));
		at += n > 0 ? n : 0;
	}
	if (f->target && to >= 0 && close(to) < 0 && ret == 0)
		ret = q2e_error_set(err, Q2E_EOUTPUT, "'%s': cannot write: %s",
				    f->path, strerror(errno));
	free(buf);
	return ret;
}

/* Gives the unnamed file FD the name NAME, which must not exist. */
static int link_unnamed(int fd, const char *name)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno == EEXIST)
		return -1;
	return linkat(fd, "", AT_FDCWD, name, AT_EMPTY_PATH);
}

/* An unnamed file over the target: a free name beside it, then rename(),
 * the only way to replace a file atomically. */
static int replace_with_unnamed(struct q2e_outfile *f)
{
	unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	sigset_t old;
	int ret = -1;

	for (int i = 0; i < 100 && ret < 0; i++) {
		char suffix[16];

		snprintf(suffix, sizeof(suffix), "%06x",
			 (seed + (unsigned)i * 2654435761U) & 0xffffff);
		free(f->tmp);
		f->tmp = temp_name(f->target, suffix);
		if (!f->tmp) {
			errno = ENOMEM;
			return -1;
		}
		hold_signals(true, &old);
		ret = link_unnamed(f->fd, f->tmp);
		if (ret == 0)
			set_pending(f->tmp);
		hold_signals(false, &old);
		if (ret < 0 && errno != EEXIST)
			return -1;
	}
	return ret < 0 ? -1 : rename(f->tmp, f->target);
}

/* Puts the finished file at the target; on failure leaves no name. */
static int put_in_place(struct q2e_outfile *f, bool replace,
			struct q2e_error *err)
{
	bool named = f->tmp != NULL;
	int ret;

	if (named)
		ret = replace ? rename(f->tmp, f->target)
			      : link(f->tmp, f->target);
	else
		ret = replace ? replace_with_unnamed(f)
			      : link_unnamed(f->fd, f->target);
	if (ret == 0)
		return 0;
	if (!replace && errno == EEXIST)
		return q2e_error_set(err, Q2E_EOUTPUT,
				     "'%s' already exists; use --force to replace it",
				     f->path);
	return q2e_error_set(err, Q2E_EOUTPUT,
			     "'%s': cannot move the finished file into place: %s",
			     f->path, strerror(errno));
}

int q2e_outfile_commit(struct q2e_outfile *f, bool replace,
		       struct q2e_error *err)
{
	int ret = 0;

	if (f->direct) {
		/* not ours to close; a pipe or a terminal cannot be synced */
		if (!f->no_sync && fsync(f->fd) < 0 && errno != EINVAL &&
		    errno != EROFS)
			ret = q2e_error_set(err, Q2E_EOUTPUT,
					    "'%s': cannot write: %s", f->path,
					    strerror(errno));
		/* pwrite() moved no offset: what the shell writes next
		 * (`{ qcow2elf ...; echo; } > FILE`) goes after the output */
		if (ret == 0 && lseek(f->fd, 0, SEEK_END) < 0)
			ret = q2e_error_set(err, Q2E_EOUTPUT,
					    "'%s': cannot write: %s", f->path,
					    strerror(errno));
		f->fd = -1;
		q2e_outfile_abort(f);
		return ret;
	}
	if (f->stream)
		ret = copy_out(f, err);
	else if (!f->no_sync && fsync(f->fd) < 0)
		ret = q2e_error_set(err, Q2E_EOUTPUT, "'%s': cannot write: %s",
				    f->path, strerror(errno));
	if (ret == 0 && !f->stream)
		ret = put_in_place(f, replace, err);
	if (close(f->fd) < 0 && ret == 0)
		ret = q2e_error_set(err, Q2E_EOUTPUT, "'%s': cannot write: %s",
				    f->path, strerror(errno));
	f->fd = -1;
	/* Renamed over the target, the temporary name is gone: another file
	 * may take it now.  Any other (a link's second name, a failure's
	 * leftover) is removed. */
	if (ret == 0 && replace && !f->stream) {
		pending = 0;
		free(f->tmp);
		f->tmp = NULL;
	}
	q2e_outfile_abort(f);
	return ret;
}

void q2e_outfile_abort(struct q2e_outfile *f)
{
	if (f->fd >= 0 && !f->direct)
		close(f->fd);
	f->fd = -1;
	if (f->tmp)
		unlink(f->tmp);
	pending = 0;	/* only now: a signal before may remove it too */
	free(f->tmp);
	f->tmp = NULL;
	free(f->target);
	f->target = NULL;
}

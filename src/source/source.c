/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The byte source for image files: bounded pread() and SEEK_DATA/SEEK_HOLE.
 * Bytes in memory (unit tests, fuzzing) are read the same way.  An ELF
 * file is handed to the dump source (elf_source.c) instead.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fiemap.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "qcow2elf/array.h"
#include "source_impl.h"

ssize_t q2e_source_container_pread(struct q2e_source *src, void *buf,
				   size_t len, uint64_t off)
{
	size_t done = 0;

	if (src->mem) {
		if (off >= src->mem_len)
			return 0;
		if (len > src->mem_len - off)
			len = (size_t)(src->mem_len - off);
		memcpy(buf, src->mem + off, len);
		return (ssize_t)len;
	}
	while (done < len) {
		ssize_t n = pread(src->fd, (char *)buf + done, len - done,
				  (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;	/* the file shrank under us */
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static int64_t file_pread(struct q2e_source *src, void *buf, size_t len,
			  uint64_t off, const char *what,
			  struct q2e_error *err)
{
	ssize_t n;

	if (off >= src->size)
		return 0;
	if (len > src->size - off)
		len = (size_t)(src->size - off);
	n = src->plan ? q2e_source_planned_pread(src, buf, len, off)
		      : q2e_source_container_pread(src, buf, len, off);
	if (n < 0)
		return q2e_error_set(err, Q2E_EIO,
				     "'%s': cannot read %s at 0x%llx: %s",
				     src->path, what, (unsigned long long)off,
				     strerror(errno));
	return n;
}

/* SEEK_DATA, then SEEK_HOLE, at OFF below the file's size. */
static void lseek_extent(struct q2e_source *src, uint64_t off, bool *is_data,
			 uint64_t *len)
{
	off_t data = lseek(src->fd, (off_t)off, SEEK_DATA);

	if (data < 0 && errno == ENXIO) {
		*is_data = false;	/* a trailing hole */
		*len = src->size - off;
		return;
	}
	if (data < 0) {
		*is_data = true;	/* no information: no holes */
		*len = src->size - off;
		return;
	}
	if ((uint64_t)data > off) {
		*is_data = false;
		*len = (uint64_t)data - off;
		return;
	}
	off_t hole = lseek(src->fd, (off_t)off, SEEK_HOLE);

	*is_data = true;
	*len = (hole < 0 || (uint64_t)hole > src->size ? src->size
						       : (uint64_t)hole) - off;
}

static int file_extent(struct q2e_source *src, uint64_t off, bool *is_data,
		       uint64_t *len, struct q2e_error *err)
{
	bool data;
	uint64_t n;

	(void)err;
	if (off >= src->size) {
		*is_data = false;
		*len = 0;
		return 0;
	}
	if (src->mem) {		/* bytes in memory have no holes */
		*is_data = true;
		*len = src->size - off;
		return 0;
	}
	switch (q2e_seek_map_answer(src, off, is_data, len)) {
	case Q2E_SEEK_MAP_ANSWERED:
		return 0;
	case Q2E_SEEK_MAP_CHECK:
		/* The first answer a hole decides, asked of lseek() too: a
		 * driver that takes every byte for data (ext2's own, whose
		 * magic is ext4's) turns the map off. */
		lseek_extent(src, off, &data, &n);
		q2e_seek_map_checked(src, data == *is_data && n == *len);
		*is_data = data;
		*len = n;
		return 0;
	default:
		lseek_extent(src, off, is_data, len);
		return 0;
	}
}

/* Adds [OFF, OFF + LEN) to LIST, merged with the last extent it touches. */
static int add_extent(struct q2e_extent **list, size_t *count, size_t *cap,
		      uint64_t off, uint64_t len)
{
	struct q2e_extent *last = *count ? &(*list)[*count - 1] : NULL;

	if (last && last->offset + last->length >= off) {
		if (off + len > last->offset + last->length)
			last->length = off + len - last->offset;
		return 0;
	}
	if (q2e_grow(*list, *cap, *count + 1) < 0)
		return -1;
	(*list)[(*count)++] = (struct q2e_extent){ off, len };
	return 0;
}

/*
 * The file's data extents from FIEMAP, after writeback (FIEMAP_FLAG_SYNC),
 * with unwritten (fallocated) extents counted as holes: they read as
 * zeros.  SEEK_DATA says "data" for an unwritten extent once its pages are
 * in the page cache (ext4, xfs), so that reading the file changed the
 * list, and with it the dump; the extent map does not change by reading.
 * Returns 1 where FIEMAP is not supported.
 */
static int fiemap_extents(struct q2e_source *src, struct q2e_extent **list,
			  size_t *count)
{
	struct fiemap *fm = NULL;
	size_t cap = 0;
	uint64_t start = 0;
	bool last = false;
	int n;

	while (!last && start < src->size) {
		n = q2e_fiemap_next(src->fd, start, src->size,
				    FIEMAP_FLAG_SYNC, &fm);
		if (n < 0) {
			free(fm);
			return *count || n == -2 ? -1 : 1;
		}
		if (n == 0)
			break;
		for (int i = 0; i < n; i++) {
			const struct fiemap_extent *x = &fm->fm_extents[i];
			uint64_t end = x->fe_logical + x->fe_length;

			last = x->fe_flags & FIEMAP_EXTENT_LAST;
			start = end;
			if (x->fe_flags & FIEMAP_EXTENT_UNWRITTEN ||
			    x->fe_logical >= src->size)
				continue;
			if (end > src->size)
				end = src->size;
			if (add_extent(list, count, &cap, x->fe_logical,
				       end - x->fe_logical) < 0) {
				free(fm);
				return -1;
			}
		}
	}
	free(fm);
	return 0;
}

/* From FIEMAP, or else by SEEK_DATA/SEEK_HOLE over the whole file. */
static int file_data_extents(struct q2e_source *src, struct q2e_extent **out,
			     size_t *n, struct q2e_error *err)
{
	struct q2e_extent *list = NULL;
	size_t count = 0, cap = 0;
	uint64_t off = 0;
	int ret = src->mem ? 1 : fiemap_extents(src, &list, &count);

	*out = NULL;
	*n = 0;
	if (ret < 0) {
		free(list);
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	}
	if (ret == 0)
		off = src->size;	/* done */
	while (off < src->size) {
		bool data;
		uint64_t len;

		file_extent(src, off, &data, &len, err);
		if (len == 0)
			break;
		if (data) {
			if (q2e_grow(list, cap, count + 1) < 0) {
				free(list);
				return q2e_error_set(err, Q2E_ENOMEM,
						     "out of memory");
			}
			list[count++] = (struct q2e_extent){ off, len };
		}
		off += len;
	}
	if (count == 0) {	/* all holes: one empty extent says so */
		list = calloc(1, sizeof(*list));
		if (!list)
			return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
		count = 1;
	}
	*out = list;
	*n = count;
	return 0;
}

static uint64_t file_held_end(struct q2e_source *src, uint64_t off,
			      uint64_t end)
{
	uint64_t last = off, pos = off;

	if (src->mem)
		return end < src->mem_len ? end : src->mem_len > off
							   ? src->mem_len
							   : off;
	/* Each step passes one data extent: as many as the range holds. */
	while (pos < end) {
		off_t data = lseek(src->fd, (off_t)pos, SEEK_DATA);
		off_t hole;

		if (data < 0)
			return errno == ENXIO ? last : end;
		if ((uint64_t)data >= end)
			break;
		hole = lseek(src->fd, data, SEEK_HOLE);
		if (hole < 0)
			return end;
		last = (uint64_t)hole < end ? (uint64_t)hole : end;
		pos = (uint64_t)hole;
	}
	return last;
}

static void file_close(struct q2e_source *src)
{
	(void)src;
}

static const struct q2e_source_ops file_ops = {
	.pread = file_pread,
	.extent = file_extent,
	.data_extents = file_data_extents,
	.held_end = file_held_end,
	.close = file_close,
};

/* Takes SRC, opened on a file or on bytes in memory, as an image or as
 * a dump, by its magic. */
static int open_contents(struct q2e_source *src, struct q2e_source **out,
			 struct q2e_error *err)
{
	uint8_t magic[4];
	int64_t n;
	int ret;

	n = file_pread(src, magic, sizeof(magic), 0, "the magic", err);
	if (n < 0) {
		q2e_source_close(src);
		return (int)n;
	}
	if (n == 4 && memcmp(magic, "\177ELF", 4) == 0) {
		/* A dump is read in section order: readahead serves it. */
		if (src->fd >= 0)
			posix_fadvise(src->fd, 0, 0, POSIX_FADV_NORMAL);
		ret = q2e_dump_source_init(src, err);
		if (ret < 0) {
			q2e_source_close(src);
			return ret;
		}
	}
	*out = src;
	return 0;
}

int q2e_source_open_memory(const char *name, const void *data, size_t len,
			   struct q2e_source **out, struct q2e_error *err)
{
	struct q2e_source *src;

	*out = NULL;
	src = calloc(1, sizeof(*src));
	if (!src || !(src->path = strdup(name)) ||
	    !(src->mem = malloc(len ? len : 1))) {
		if (src)
			free(src->path);
		free(src);
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	}
	if (len)
		memcpy(src->mem, data, len);
	src->mem_len = len;
	src->fd = -1;
	src->kind = Q2E_SOURCE_FILE;
	src->ops = &file_ops;
	src->size = len;
	src->allocated = len;
	return open_contents(src, out, err);
}

int q2e_source_open(const char *path, struct q2e_source **out,
		    struct q2e_error *err)
{
	return q2e_source_open_as(path, Q2E_SOURCE_METADATA, out, err);
}

int q2e_source_open_as(const char *path, enum q2e_source_role role,
		       struct q2e_source **out, struct q2e_error *err)
{
	struct q2e_source *src;
	const char *lock;
	struct stat st;
	int fd, ret;

	*out = NULL;
	/* O_NONBLOCK: a FIFO would otherwise block here until a writer
	 * came; it is refused below, as sockets and character devices are
	 * (nothing to seek or read twice).  Block devices are images too. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOATIME);
	/* O_NOATIME: an inspection leaves the access time alone, and the
	 * kernel skips its access-time bookkeeping on every read (5% of
	 * check's time with 41,000 tables of 512 bytes).  Only the file's
	 * owner may ask; anyone else reads as before. */
	if (fd < 0 && errno == EPERM)
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return q2e_error_set(err, Q2E_EIO, "'%s': cannot open: %s",
				     path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		ret = q2e_error_set(err, Q2E_EIO, "'%s': cannot stat: %s",
				    path, strerror(errno));
		close(fd);
		return ret;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		return q2e_error_set(err, Q2E_EIO,
				     "'%s': is a directory, not an image",
				     path);
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		close(fd);
		return q2e_error_set(err, Q2E_EIO,
				     "'%s': is a %s, not an image file or block device",
				     path, S_ISFIFO(st.st_mode)   ? "FIFO"
					   : S_ISSOCK(st.st_mode) ? "socket"
								  : "character device");
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	lock = q2e_source_lock(fd, role);
	if (lock) {
		close(fd);
		return q2e_error_set(err, Q2E_EIO,
				     "'%s': %s: is another process using the image? (-U, --force-share, reads it anyway)",
				     path, lock);
	}
	/* An image's metadata lies between data clusters: the kernel's own
	 * readahead, which grows as reads go on in offset order (up to
	 * read_ahead_kb, megabytes), read the data around the first tables
	 * too (2 MiB more than the tables on a 20 GiB image).  The plan's
	 * advice (readahead.c) says what to fetch instead. */
	posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);

	src = calloc(1, sizeof(*src));
	if (!src || !(src->path = strdup(path))) {
		free(src);
		close(fd);
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	}
	src->fd = fd;
	src->kind = Q2E_SOURCE_FILE;
	src->ops = &file_ops;
	if (S_ISREG(st.st_mode)) {
		src->size = (uint64_t)st.st_size;
		src->allocated = (uint64_t)st.st_blocks * 512;
	} else {
		off_t end = lseek(fd, 0, SEEK_END);

		src->size = end < 0 ? 0 : (uint64_t)end;
	}

	return open_contents(src, out, err);
}

void q2e_source_close(struct q2e_source *src)
{
	if (!src)
		return;
	src->ops->close(src);
	q2e_read_plan_free(src->plan);
	q2e_seek_map_free(src->seek_map);
	if (src->fd >= 0)
		close(src->fd);
	free(src->meta.image_name);
	free(src->meta.tool_version);
	free(src->mem);
	free(src->path);
	free(src);
}

enum q2e_source_kind q2e_source_kind(const struct q2e_source *src)
{
	return src->kind;
}

uint64_t q2e_source_size(const struct q2e_source *src)
{
	return src->size;
}

uint64_t q2e_source_allocated(const struct q2e_source *src)
{
	return src->allocated;
}

bool q2e_source_is_file(const struct q2e_source *src, const char *path)
{
	struct stat a, b;

	return src->fd >= 0 && fstat(src->fd, &a) == 0 && stat(path, &b) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

const struct q2e_dump_meta *q2e_source_dump_meta(const struct q2e_source *src)
{
	return src->kind == Q2E_SOURCE_DUMP ? &src->meta : NULL;
}

int64_t q2e_source_pread(struct q2e_source *src, void *buf, size_t len,
			 uint64_t off, const char *what, struct q2e_error *err)
{
	return src->ops->pread(src, buf, len, off, what, err);
}

int64_t q2e_source_pread_cached(struct q2e_source *src, void *buf, size_t len,
				uint64_t off)
{
	size_t done = 0;

	/* A dump's bytes are its sections': read only as usual. */
	if (src->kind != Q2E_SOURCE_FILE || off >= src->size)
		return 0;
	if (len > src->size - off)
		len = (size_t)(src->size - off);
	if (src->mem)
		return q2e_source_container_pread(src, buf, len, off);
	while (done < len) {
		struct iovec iov = { (char *)buf + done, len - done };
		ssize_t n = preadv2(src->fd, &iov, 1, (off_t)(off + done),
				    RWF_NOWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;	/* EAGAIN: not cached; or no RWF_NOWAIT */
		done += (size_t)n;
	}
	return (int64_t)done;
}

int q2e_source_data_extents(struct q2e_source *src, struct q2e_extent **out,
			    size_t *n, struct q2e_error *err)
{
	return src->ops->data_extents(src, out, n, err);
}

uint64_t q2e_source_held_end(struct q2e_source *src, uint64_t off,
			     uint64_t len)
{
	uint64_t end = len > UINT64_MAX - off ? UINT64_MAX : off + len;

	if (off >= src->size)
		return off;
	if (end > src->size)
		end = src->size;
	return src->ops->held_end(src, off, end);
}

int q2e_source_extent(struct q2e_source *src, uint64_t off, bool *is_data,
		      uint64_t *len, struct q2e_error *err)
{
	return src->ops->extent(src, off, is_data, len, err);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared between the file, memory and dump byte sources. */
#ifndef QCOW2ELF_SOURCE_IMPL_H
#define QCOW2ELF_SOURCE_IMPL_H

#include <sys/types.h>

#include "source/source.h"

struct q2e_source_ops {
	int64_t (*pread)(struct q2e_source *src, void *buf, size_t len,
			 uint64_t off, const char *what, struct q2e_error *err);
	int (*extent)(struct q2e_source *src, uint64_t off, bool *is_data,
		      uint64_t *len, struct q2e_error *err);
	int (*data_extents)(struct q2e_source *src, struct q2e_extent **out,
			    size_t *n, struct q2e_error *err);
	uint64_t (*held_end)(struct q2e_source *src, uint64_t off,
			     uint64_t end);
	void (*close)(struct q2e_source *src);
};

struct q2e_source {
	const struct q2e_source_ops *ops;
	enum q2e_source_kind kind;
	char *path;
	int fd;			/* the file read, or -1 for memory */
	uint8_t *mem;		/* the bytes read, when not a file */
	size_t mem_len;
	uint64_t size;
	uint64_t allocated;
	struct q2e_dump_meta meta;	/* dumps only */
	void *priv;
	struct q2e_read_plan *plan;	/* readahead.c; NULL: none */
	struct q2e_seek_map *seek_map;	/* seek_map.c; NULL: none yet */
	bool seek_map_tried;
};

/*
 * Reads up to LEN bytes at OFF of what SRC was opened on (the file, or the
 * bytes in memory), as pread() does: fewer only at its end.
 */
ssize_t q2e_source_container_pread(struct q2e_source *src, void *buf,
				   size_t len, uint64_t off);

/*
 * q2e_source_container_pread() of an image file with a plan (readahead.c),
 * which has the planned ranges ahead of OFF fetched meanwhile.
 */
ssize_t q2e_source_planned_pread(struct q2e_source *src, void *buf,
				 size_t len, uint64_t off);
void q2e_read_plan_free(struct q2e_read_plan *plan);

/*
 * SEEK_DATA's and SEEK_HOLE's answer for OFF, below the file's size, from
 * the file's extent map where that decides it (seek_map.c).  ASK: lseek()
 * must be asked.  CHECK, once, for the first answer that a hole decides:
 * lseek() is asked too, and q2e_seek_map_checked() told whether the two
 * agree (if not, lseek() answers from then on).  One thread's.
 */
enum { Q2E_SEEK_MAP_ASK, Q2E_SEEK_MAP_ANSWERED, Q2E_SEEK_MAP_CHECK };
int q2e_seek_map_answer(struct q2e_source *src, uint64_t off, bool *is_data,
			uint64_t *len);
void q2e_seek_map_checked(struct q2e_source *src, bool agreed);
void q2e_seek_map_free(struct q2e_seek_map *m);

struct fiemap;
/* Extents a FIEMAP call lists at most (seek_map.c). */
#define Q2E_FIEMAP_BATCH 256
/*
 * The next extents of the file at FD from OFF up to END, asked with FLAGS
 * (FIEMAP_FLAG_SYNC, or 0), in (*BUF)->fm_extents: *BUF is made at the
 * first call, used again by the next, and freed by the caller.  Their
 * count, 0 where none is left, -1 where FIEMAP fails (a file system
 * without it), or -2 where there is no memory.
 */
int q2e_fiemap_next(int fd, uint64_t off, uint64_t end, uint32_t flags,
		    struct fiemap **buf);

/* Reads what SRC was opened on, an ELF file, as a dump. */
int q2e_dump_source_init(struct q2e_source *src, struct q2e_error *err);

/* qemu_lock.c: where another process holds FD's file so that qemu-img
 * would not open it in ROLE (a VM writing it), qemu-img's message for it;
 * else NULL, and FD holds the locks qemu-img would hold while it reads. */
const char *q2e_source_lock(int fd, enum q2e_source_role role);

#endif

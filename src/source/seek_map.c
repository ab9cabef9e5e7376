/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * SEEK_DATA/SEEK_HOLE's answers for an image file on ext4, from its extent
 * map (FIEMAP), read a few hundred extents at a time as the questions
 * reach them.
 *
 * `map` asks where the file holds data for each run of data clusters, as
 * QEMU's file-posix does, with lseek(): 98,000 calls for the 1 GiB image
 * of 512-byte clusters (three for each L2 table and the hole of data
 * clusters after it), most of a warm map where entering the kernel costs
 * a microsecond (page table isolation).  One FS_IOC_FIEMAP call lists 256
 * extents.
 *
 * The answers are ext4's own: ext4 answers both through
 * ext4_iomap_begin_report(), and iomap_seek_data() takes a hole for a hole
 * and any mapped extent for data.  The one answer that depends on more
 * than the extent map is that of an unwritten (fallocated) extent, which
 * is data where the page cache holds its pages; delayed allocation is left
 * alone too.  Wherever such an extent decides the answer (the run starts
 * in it, or meets it), lseek() is asked as before.  Other file systems
 * keep lseek(): XFS, for one, answers from its copy-on-write fork too.
 * ext2's own driver has ext4's magic but takes every byte for data: the
 * first answer a hole decides is checked against lseek(), and a
 * disagreement turns the map off.  The map is read once, as the questions
 * reach it: a file that changes meanwhile (an image in use) gets the
 * answers of when it was read, where lseek() would follow the change.
 * qemu-img's answers about such a file are no steadier.
 *
 *     extent map:  | data | data |  hole  | unwritten |  hole ...
 *     answer:      data to the hole; hole to the data after it, or
 *                  lseek() where the run meets an unwritten extent
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>

#include "qcow2elf/array.h"
#include "source_impl.h"

#define EXT4_MAGIC 0xEF53
/* At most this many runs are kept (24 MB); past them, lseek(). */
#define RUNS_MAX (1U << 20)
/* The flags a plain data extent may carry. */
#define PLAIN_FLAGS (FIEMAP_EXTENT_LAST | FIEMAP_EXTENT_MERGED | \
		     FIEMAP_EXTENT_SHARED)

struct seek_run {
	uint64_t start, end;
	bool ask;		/* unwritten or delayed: lseek() decides */
};

struct q2e_seek_map {
	struct seek_run *runs;
	size_t n, cap;
	uint64_t known_end;	/* the extent map is read up to here */
	bool complete;		/* ... and to the end of the file */
	bool failed;		/* FIEMAP refused, too many runs, or lseek()
				 * disagreed */
	bool checked;		/* an answer a hole decides agreed */
	struct fiemap *fm;	/* q2e_fiemap_next()'s buffer */
};

int q2e_fiemap_next(int fd, uint64_t off, uint64_t end, uint32_t flags,
		    struct fiemap **buf)
{
	const size_t size = sizeof(struct fiemap) +
			    Q2E_FIEMAP_BATCH * sizeof(struct fiemap_extent);
	/* Zeros: valgrind takes FS_IOC_FIEMAP to write only the header. */
	struct fiemap *fm = *buf ? *buf : (*buf = calloc(1, size));

	if (!fm)
		return -2;
	memset(fm, 0, sizeof(*fm));
	fm->fm_start = off;
	fm->fm_length = end > off ? end - off : 0;
	fm->fm_flags = flags;
	fm->fm_extent_count = Q2E_FIEMAP_BATCH;
	if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0)
		return -1;
	return (int)fm->fm_mapped_extents;
}

/* Adds an extent, merged with the last run where they meet and agree. */
static int add_run(struct q2e_seek_map *m, uint64_t start, uint64_t end,
		   bool ask)
{
	struct seek_run *last = m->n ? &m->runs[m->n - 1] : NULL;

	if (last && last->end == start && last->ask == ask) {
		last->end = end;
		return 0;
	}
	if (m->n >= RUNS_MAX || q2e_grow(m->runs, m->cap, m->n + 1) < 0)
		return -1;
	m->runs[m->n++] = (struct seek_run){ start, end, ask };
	return 0;
}

/* Reads the next extents of the map, from where it was read to. */
static void read_more(struct q2e_source *src, struct q2e_seek_map *m)
{
	/* No FIEMAP_FLAG_SYNC: lseek() does not write the file out either. */
	int n = q2e_fiemap_next(src->fd, m->known_end, src->size, 0, &m->fm);

	if (n < 0)
		m->failed = true;
	else if (n == 0)
		m->complete = true;
	for (int i = 0; !m->failed && i < n; i++) {
		const struct fiemap_extent *x = &m->fm->fm_extents[i];
		uint64_t start = x->fe_logical, end = start + x->fe_length;

		if (start < m->known_end || end <= start) {
			m->failed = true;	/* not in order: trust none */
			break;
		}
		if (x->fe_flags & FIEMAP_EXTENT_LAST || end >= src->size)
			m->complete = true;
		if (add_run(m, start, end, (x->fe_flags & ~PLAIN_FLAGS) != 0))
			m->failed = true;
		m->known_end = end;
	}
	if (m->complete)
		m->known_end = src->size;
}

static struct q2e_seek_map *seek_map(struct q2e_source *src)
{
	struct statfs fs;

	if (src->seek_map || src->seek_map_tried)
		return src->seek_map;
	src->seek_map_tried = true;
	if (fstatfs(src->fd, &fs) < 0 || fs.f_type != EXT4_MAGIC)
		return NULL;
	src->seek_map = calloc(1, sizeof(*src->seek_map));
	return src->seek_map;
}

/* The first run of M that ends after OFF; M->n if none. */
static size_t run_after(const struct q2e_seek_map *m, uint64_t off)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->runs[mid].end <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Whether the extent map answers for OFF (below the file's size), with
 * *IS_DATA and *LEN as file_extent() would have them from lseek().
 */
int q2e_seek_map_answer(struct q2e_source *src, uint64_t off, bool *is_data,
			uint64_t *len)
{
	struct q2e_seek_map *m = seek_map(src);
	const struct seek_run *r, *next;
	size_t k;

	if (!m)
		return Q2E_SEEK_MAP_ASK;
	/* What decides the answer: the run OFF is in, and the one after. */
	while (!m->failed && !m->complete && m->known_end <= off)
		read_more(src, m);
	if (m->failed)
		return Q2E_SEEK_MAP_ASK;
	k = run_after(m, off);
	while (!m->failed && !m->complete && k + 1 >= m->n) {
		read_more(src, m);
		k = run_after(m, off);
	}
	if (m->failed)
		return Q2E_SEEK_MAP_ASK;
	r = k < m->n ? &m->runs[k] : NULL;
	if (r && r->start <= off) {	/* in a run */
		next = k + 1 < m->n ? &m->runs[k + 1] : NULL;
		if (r->ask || (next && next->start == r->end))
			return Q2E_SEEK_MAP_ASK;
		*is_data = true;
		*len = (r->end < src->size ? r->end : src->size) - off;
		/* Data up to the end of the file: no hole decided it. */
		return m->checked || r->end >= src->size
			       ? Q2E_SEEK_MAP_ANSWERED : Q2E_SEEK_MAP_CHECK;
	}
	if (r && r->ask)		/* a hole up to an unwritten extent */
		return Q2E_SEEK_MAP_ASK;
	*is_data = false;
	*len = (r && r->start < src->size ? r->start : src->size) - off;
	return m->checked ? Q2E_SEEK_MAP_ANSWERED : Q2E_SEEK_MAP_CHECK;
}

void q2e_seek_map_checked(struct q2e_source *src, bool agreed)
{
	if (!src->seek_map)
		return;
	src->seek_map->checked = agreed;
	src->seek_map->failed = !agreed;
}

void q2e_seek_map_free(struct q2e_seek_map *m)
{
	if (m) {
		free(m->runs);
		free(m->fm);
	}
	free(m);
}

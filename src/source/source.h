/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The byte source: the only code that does I/O on an input.  Private to
 * the model: only src/source and src/model include this header.
 *
 * An input is either an image file, read with bounded pread(), or an ELF
 * dump written by `qcow2elf dump`, read through its sections.  A dump holds
 * metadata bytes at their own image offsets, so both answer the same
 * questions: the bytes at an offset, the size of the image file, and which
 * ranges of that file hold data (for `map`, like SEEK_DATA/SEEK_HOLE).
 */
#ifndef Q2E_SOURCE_SOURCE_H
#define Q2E_SOURCE_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qcow2elf/error.h"
#include "qcow2elf/input.h"

struct q2e_source;

/* What a file is to the image, for QEMU's locks (qemu_lock.c). */
enum q2e_source_role {
	Q2E_SOURCE_METADATA,	/* an image or backing file */
	Q2E_SOURCE_DATA,	/* an external data file */
};

/* Opens PATH read-only; an ELF file is taken as a dump. */
int q2e_source_open(const char *path, struct q2e_source **out,
		    struct q2e_error *err);
/* The same, for a file of ROLE. */
int q2e_source_open_as(const char *path, enum q2e_source_role role,
		       struct q2e_source **out, struct q2e_error *err);
/* Reads LEN bytes at DATA (copied) as the file NAME would be read. */
int q2e_source_open_memory(const char *name, const void *data, size_t len,
			   struct q2e_source **out, struct q2e_error *err);
void q2e_source_close(struct q2e_source *src);
/*
 * For the whole process: QEMU's locks as qemu-img takes them
 * (src/source/qemu_lock.c), with -U (FORCE, --force-share) or not, for a
 * command that READS data or only the metadata (info).
 */
void q2e_source_set_locking(bool force, bool reads);

enum q2e_source_kind q2e_source_kind(const struct q2e_source *src);
/* Size of the image file (for a dump: of the image it came from). */
uint64_t q2e_source_size(const struct q2e_source *src);
/* Bytes the image file occupies on disk (st_blocks * 512), 0 if unknown. */
uint64_t q2e_source_allocated(const struct q2e_source *src);
/* Whether PATH names the file SRC reads (the same device and inode). */
bool q2e_source_is_file(const struct q2e_source *src, const char *path);
/* For a dump, what its note says; NULL for an image file. */
const struct q2e_dump_meta *q2e_source_dump_meta(const struct q2e_source *src);

/*
 * Reads LEN bytes at OFF into BUF.  Returns the number of bytes read, which
 * is less than LEN only where the image file ends, or a negative Q2E_E* code.
 * WHAT names the structure being read, for the error message.
 */
int64_t q2e_source_pread(struct q2e_source *src, void *buf, size_t len,
			 uint64_t off, const char *what, struct q2e_error *err);

/*
 * Reads up to LEN bytes at OFF into BUF of what the page cache holds, as
 * far as it holds them, without waiting for the device and without
 * touching the plan (below), so that it may run beside the reads of
 * another thread: the number of bytes read, 0 for a dump.
 */
int64_t q2e_source_pread_cached(struct q2e_source *src, void *buf, size_t len,
				uint64_t off);

/*
 * Many reads at once, each as q2e_source_pread_cached() makes it, with
 * few system calls (batch.c): a batch is one thread's, made with
 * q2e_source_batch_open() (NULL: out of memory).  Each R[i].ok tells
 * whether all of R[i]'s bytes were read.
 */
struct q2e_source_batch;
struct q2e_source_batch *q2e_source_batch_open(struct q2e_source *src);
void q2e_source_batch_cached(struct q2e_source_batch *b,
			     struct q2e_cached_read *r, size_t n);
void q2e_source_batch_close(struct q2e_source_batch *b);

/* Range I of the N ranges a plan has (see below). */
typedef struct q2e_extent (*q2e_plan_range_fn)(const void *arg, size_t i);

/*
 * Tells SRC which byte ranges of the image will be read next, so that it
 * can have them fetched ahead of the reads: N ranges, sorted by offset,
 * RANGE(ARG, i) the i-th (of length 0 where nothing is read), asked for
 * only once a read misses the page cache, so ARG must last as long as
 * SRC's reads.  Only ever a hint: reads outside the plan work as before.
 */
int q2e_source_plan_reads(struct q2e_source *src, q2e_plan_range_fn range,
			  const void *arg, size_t n, struct q2e_error *err);
/* Has [OFF, OFF + LEN) fetched ahead of a read soon, if the cache lacks
 * it: for the tables read before there is a plan.  Only ever a hint. */
void q2e_source_advise(struct q2e_source *src, uint64_t off, uint64_t len);

/*
 * Whether the file holds data at OFF (true) or a hole (false), and how many
 * bytes from OFF the answer holds for.  Where nothing is known (a dump, a
 * file system without SEEK_HOLE) the whole rest of the file is data, as QEMU
 * assumes.
 */
int q2e_source_extent(struct q2e_source *src, uint64_t off, bool *is_data,
		      uint64_t *len, struct q2e_error *err);


/*
 * Every data extent of the image file, in order; free() *OUT.  A dump
 * answers with the list it recorded.  *N is 0 and *OUT NULL where nothing
 * is known (then all of the file counts as data).
 */
int q2e_source_data_extents(struct q2e_source *src, struct q2e_extent **out,
			    size_t *n, struct q2e_error *err);

/*
 * Where the bytes SRC holds in [OFF, OFF + LEN) end: past that point the
 * range reads as zeros that take no room in the file (a hole, or for a
 * dump no section).  OFF if it holds none; OFF + LEN if it cannot tell.
 * Lets a table that a header claims to be huge cost only the bytes that
 * are there.
 */
uint64_t q2e_source_held_end(struct q2e_source *src, uint64_t off,
			     uint64_t len);

#endif

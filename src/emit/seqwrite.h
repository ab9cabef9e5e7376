/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Internal to the dump emitter: writes that go forward through a file,
 * gathered in one buffer, so that a table of 41,000 entries costs a few
 * system calls and no copy of the table in memory (seqwrite.c).
 */
#ifndef Q2E_EMIT_SEQWRITE_H
#define Q2E_EMIT_SEQWRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qcow2elf/error.h"
#include "writeback.h"

/*
 * The buffer grows from the first size to the second as a dump needs:
 * the second is large enough that a system call moves a good part of a
 * table, the first small enough that the dump of a small image (most
 * under 100 KiB) costs no mmap(), which under ASan is also the shadow
 * poisoned at each free.  A dump has three at once (the main thread's
 * and two copying threads'): at 256 KiB, t_dump_scale's dump of 66,000
 * tables went past `qemu-img check`'s peak in a CI run (9,788 KiB
 * against 9,728); at 128 KiB its peak is 200-350 KiB lower, and the
 * dumps of the benchmark's images take as long.
 */
#define Q2E_SEQWRITE_FIRST (64U << 10)
#define Q2E_SEQWRITE_BUFFER (128U << 10)

struct q2e_seqwriter {
	int fd;
	const char *path;	/* for messages */
	struct q2e_error *err;
	uint64_t off;		/* file offset of buf[0] */
	uint8_t *buf;
	size_t len;
	size_t cap;		/* of buf, at most Q2E_SEQWRITE_BUFFER */
	bool failed;		/* an error is in *err; later writes do nothing */
	struct q2e_writeback *wb;	/* told what is written; NULL: none */
	struct q2e_writeback_run run;
};

/* pwrite() of all of BUF at OFF, again after a short write: 0, or -1 with
 * errno set (ENOSPC for a write that made no progress). */
int q2e_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);

int q2e_seqwriter_init(struct q2e_seqwriter *w, int fd, const char *path,
		       struct q2e_error *err);
/* The file offset the next byte goes to. */
static inline uint64_t q2e_seqwriter_tell(const struct q2e_seqwriter *w)
{
	return w->off + w->len;
}
void q2e_seqwriter_put_slow(struct q2e_seqwriter *w, const void *p, size_t n);
/* Inline: a dump puts a symbol, a section header or a name at a time,
 * 200,000 times for 41,000 regions. */
static inline void q2e_seqwriter_put(struct q2e_seqwriter *w, const void *p,
				     size_t n)
{
	if (n < w->cap - w->len) {
		memcpy(w->buf + w->len, p, n);
		w->len += n;
		return;
	}
	q2e_seqwriter_put_slow(w, p, n);
}
void q2e_seqwriter_string(struct q2e_seqwriter *w, const char *s);
/* Zeros up to file offset OFF (a multiple of ALIGN from here). */
void q2e_seqwriter_align(struct q2e_seqwriter *w, uint64_t align);
/*
 * Room for N bytes (at most Q2E_SEQWRITE_BUFFER) at the current position,
 * for the caller to fill: they count as put.  NULL after an error.
 */
uint8_t *q2e_seqwriter_reserve(struct q2e_seqwriter *w, size_t n);
/* Takes back the last N bytes put and still gathered. */
void q2e_seqwriter_unput(struct q2e_seqwriter *w, size_t n);
/* Goes on N bytes further without writing them. */
int q2e_seqwriter_skip(struct q2e_seqwriter *w, uint64_t n);
/* Writes what is gathered, then goes on at file offset OFF. */
int q2e_seqwriter_seek(struct q2e_seqwriter *w, uint64_t off);
/* Writes what is gathered: 0, or the error of any write so far. */
int q2e_seqwriter_flush(struct q2e_seqwriter *w);
void q2e_seqwriter_fini(struct q2e_seqwriter *w);

#endif

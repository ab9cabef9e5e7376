/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the emitters (dump's ELF file, restore's image) share: emit.c. */
#ifndef Q2E_EMIT_EMIT_H
#define Q2E_EMIT_EMIT_H

#include <pthread.h>
#include <stdbool.h>

#include "qcow2elf/dump.h"
#include "qcow2elf/error.h"
#include "qcow2elf/model.h"
#include "qcow2elf/outfile.h"
#include "redact.h"

/*
 * Opens the output file at PATH for what is made of IMG, refusing a PATH
 * that names a file IMG reads: it would be replaced by its own output.
 */
int q2e_emit_open(struct q2e_image *img, struct q2e_outfile *out,
		  const char *path, struct q2e_error *err);

struct q2e_seqwriter;

/*
 * Starts FN(ARG) on a thread of STACK_SIZE bytes of stack (the default
 * 8 MiB counts against `ulimit -v`), with every signal blocked in it:
 * signals stay with the thread that handles them (the output file's
 * clean-up).  False if no thread could be made.
 */
bool q2e_emit_thread_start(pthread_t *t, size_t stack_size,
			   void *(*fn)(void *), void *arg);

/*
 * The sorted union of the image ranges a dump of IMG holds (its
 * .qcow2elf.regions section): their count, each written to OUT if not
 * NULL.
 */
size_t q2e_dump_held_ranges(const struct q2e_image *img,
			    struct q2e_seqwriter *out);

/*
 * The dump's note (dumpfmt.h): its bytes in a new buffer *NOTE of *SIZE
 * bytes.  IMAGE_NAME, if not NULL, stands for the image's name; PREALLOC
 * is q2e_image_metadata_preallocation()'s answer, which does not change
 * the size.
 */
int q2e_dump_note(const struct q2e_image *img,
		  const struct q2e_dump_options *opts, const char *image_name,
		  bool prealloc, uint8_t **note, size_t *size,
		  struct q2e_error *err);

/*
 * Streams regions' bytes (the AVAIL bytes each has in the file) from the
 * model to an output file, through one bounded buffer.
 */
struct q2e_region_copier {
	struct q2e_image *img;
	int fd;
	const char *path;	/* for messages */
	struct q2e_error *err;
	uint8_t *buf;
	size_t buf_size;
	uint64_t bytes;		/* copied so far */
	bool skip_zeros;	/* the output reads as zeros where not written */
	bool cached_only;	/* a span's bytes only from the page cache */
	struct q2e_read_ahead *ahead;	/* cached_only: reads made ahead */
	const struct q2e_redaction *redact;	/* NULL: the bytes as read */
};

int q2e_region_copier_init(struct q2e_region_copier *c, struct q2e_image *img,
			   int fd, const char *path, struct q2e_error *err);
/* The copier's buffer, of BUF_SIZE bytes, made at the first call; NULL
 * (the error in C->err) without memory. */
uint8_t *q2e_region_copier_buffer(struct q2e_region_copier *c);
/* Writes R's bytes from its byte FROM on, each byte POS at file offset
 * AT + POS. */
int q2e_region_copy(struct q2e_region_copier *c, const struct q2e_region *r,
		    uint64_t from, uint64_t at);
void q2e_region_copier_fini(struct q2e_region_copier *c);
#endif

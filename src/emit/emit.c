/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the emitters share: the output file of an image's model, and the
 * copier that streams region bytes from the model into it. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emit.h"
#include "qcow2elf/array.h"
#include "seqwrite.h"

/* Bounds the memory a copy takes, whatever the size of a region. */
#define COPY_CHUNK (1U << 20)

static bool is_same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int q2e_emit_open(struct q2e_image *img, struct q2e_outfile *out,
		  const char *path, struct q2e_error *err)
{
	/* Standard output may be the input too (1<>IMAGE): by its name. */
	const char *name = q2e_outfile_is_stdout(path) ? "/dev/stdout" : path;
	bool input;

	/* Asked once: it opens the files of the image's backing chain. */
	if (!q2e_image_reads_file(img, name))
		return q2e_outfile_open(out, path, err);
	input = is_same_file(img->path, name);
	if (name != path)
		return q2e_error_set(err, Q2E_EUSAGE,
				     "standard output is %s (was it closed, or opened on the input?); refusing to write over it",
				     input ? "the input file"
					   : "a file the input reads (a backing or data file)");
	return q2e_error_set(err, Q2E_EUSAGE,
			     input ? "'%s' is the input file; refusing to write over it"
				   : "'%s' is a file the input reads (a backing or data file); refusing to write over it",
			     path);
}

bool q2e_emit_thread_start(pthread_t *t, size_t stack_size,
			   void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	sigset_t all, old;
	bool ok;

	if (pthread_attr_init(&attr) != 0)
		return false;
	pthread_attr_setstacksize(&attr, stack_size);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ok = pthread_create(t, &attr, fn, arg) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return ok;
}

int q2e_region_copier_init(struct q2e_region_copier *c, struct q2e_image *img,
			   int fd, const char *path, struct q2e_error *err)
{
	size_t size = 1;

	*c = (struct q2e_region_copier){ .img = img, .fd = fd, .path = path,
					 .err = err };
	/* No larger than the largest region: most images have no region of
	 * a megabyte, and a fresh megabyte costs page faults each time. */
	for (size_t i = 0; i < img->nregions && size < COPY_CHUNK; i++)
		if (img->regions[i].avail > size)
			size = img->regions[i].avail < COPY_CHUNK
				       ? (size_t)img->regions[i].avail
				       : COPY_CHUNK;
	c->buf_size = size;
	return 0;
}

uint8_t *q2e_region_copier_buffer(struct q2e_region_copier *c)
{
	/* Made at the first use: a dump streams through its writer's
	 * buffer and needs this one only to look at regions again. */
	if (!c->buf && !(c->buf = malloc(c->buf_size)))
		q2e_error_set(c->err, Q2E_ENOMEM, "out of memory");
	return c->buf;
}

void q2e_region_copier_fini(struct q2e_region_copier *c)
{
	free(c->buf);
	c->buf = NULL;
}

int q2e_region_copy(struct q2e_region_copier *c, const struct q2e_region *r,
		    uint64_t from, uint64_t at)
{
	if (from < r->avail && !q2e_region_copier_buffer(c))
		return c->err->code;
	for (uint64_t pos = from; pos < r->avail;) {
		size_t n = r->avail - pos < COPY_CHUNK ? (size_t)(r->avail - pos)
						       : COPY_CHUNK;
		int ret = q2e_image_read_region_part(c->img, r, pos, c->buf, n,
						     c->err);

		if (ret < 0)
			return ret;
		q2e_redaction_apply(c->redact, r->offset + pos, c->buf, n);
		if (c->skip_zeros && q2e_all_zero(c->buf, n)) {
			pos += n;
			continue;
		}
		if (q2e_pwrite_all(c->fd, c->buf, n, at + pos) < 0) {
			int saved = errno;
			char sym[96];

			if (q2e_region_symbol(c->img, r, 0, sym, sizeof(sym)) < 0)
				snprintf(sym, sizeof(sym), "%s",
					 q2e_region_kind_name(r->kind));
			return q2e_error_set(c->err, Q2E_EOUTPUT,
					     "'%s': cannot write %s at 0x%llx: %s",
					     c->path, sym,
					     (unsigned long long)(at + pos),
					     strerror(saved ? saved : ENOSPC));
		}
		pos += n;
		c->bytes += n;
	}
	return 0;
}

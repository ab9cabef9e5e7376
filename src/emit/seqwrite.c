/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Buffered forward writes to an output file (seqwrite.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "seqwrite.h"

int q2e_seqwriter_init(struct q2e_seqwriter *w, int fd, const char *path,
		       struct q2e_error *err)
{
	*w = (struct q2e_seqwriter){ .fd = fd, .path = path, .err = err };
	w->buf = malloc(Q2E_SEQWRITE_FIRST);
	if (!w->buf)
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	w->cap = Q2E_SEQWRITE_FIRST;
	return 0;
}

/* Doubles the buffer towards room for NEED bytes, up to its largest;
 * whether it has that room.  Without memory it writes on with the
 * buffer it has. */
static bool grow(struct q2e_seqwriter *w, size_t need)
{
	size_t cap = w->cap;
	uint8_t *n;

	while (cap < need && cap < Q2E_SEQWRITE_BUFFER)
		cap *= 2;
	if (cap != w->cap && (n = realloc(w->buf, cap)) != NULL) {
		w->buf = n;
		w->cap = cap;
	}
	return need <= w->cap;
}

void q2e_seqwriter_fini(struct q2e_seqwriter *w)
{
	free(w->buf);
	w->buf = NULL;
}

int q2e_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ENOSPC;
			return -1;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int q2e_seqwriter_flush(struct q2e_seqwriter *w)
{
	if (w->failed)
		return w->err->code ? w->err->code : Q2E_EOUTPUT;
	if (q2e_pwrite_all(w->fd, w->buf, w->len, w->off) < 0) {
		w->failed = true;
		return q2e_error_set(w->err, Q2E_EOUTPUT,
				     "'%s': cannot write at 0x%llx: %s",
				     w->path, (unsigned long long)w->off,
				     strerror(errno));
	}
	q2e_writeback_wrote(w->wb, &w->run, w->off, w->off + w->len);
	w->off += w->len;
	w->len = 0;
	return 0;
}

void q2e_seqwriter_put_slow(struct q2e_seqwriter *w, const void *p, size_t n)
{
	const uint8_t *src = p;

	if (n > w->cap - w->len)
		grow(w, w->len + n);
	while (n && !w->failed) {
		size_t room = w->cap - w->len;
		size_t k = n < room ? n : room;

		memcpy(w->buf + w->len, src, k);
		w->len += k;
		src += k;
		n -= k;
		if (w->len == w->cap)
			q2e_seqwriter_flush(w);
	}
}

void q2e_seqwriter_string(struct q2e_seqwriter *w, const char *s)
{
	q2e_seqwriter_put(w, s, strlen(s) + 1);
}

void q2e_seqwriter_align(struct q2e_seqwriter *w, uint64_t align)
{
	static const uint8_t zeros[16];
	uint64_t at = q2e_seqwriter_tell(w);
	uint64_t pad = (align - at % align) % align;

	while (pad && !w->failed) {
		size_t k = pad < sizeof(zeros) ? (size_t)pad : sizeof(zeros);

		q2e_seqwriter_put(w, zeros, k);
		pad -= k;
	}
}

int q2e_seqwriter_seek(struct q2e_seqwriter *w, uint64_t off)
{
	int ret = q2e_seqwriter_flush(w);

	if (ret == 0)
		w->off = off;
	return ret;
}

uint8_t *q2e_seqwriter_reserve(struct q2e_seqwriter *w, size_t n)
{
	uint8_t *p;

	if (w->cap - w->len < n && !grow(w, w->len + n))
		q2e_seqwriter_flush(w);
	if (w->failed || n > Q2E_SEQWRITE_BUFFER)
		return NULL;
	if (!grow(w, n)) {
		w->failed = true;
		q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
		return NULL;
	}
	p = w->buf + w->len;
	w->len += n;
	return p;
}

void q2e_seqwriter_unput(struct q2e_seqwriter *w, size_t n)
{
	w->len -= n < w->len ? n : w->len;
}

int q2e_seqwriter_skip(struct q2e_seqwriter *w, uint64_t n)
{
	int ret = q2e_seqwriter_flush(w);

	if (ret == 0)
		w->off += n;
	return ret;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qemu-img check's lines, and the one way each stage reports what it finds:
 * corrupt() for a corruption, give_up() where qemu-img stops checking (a
 * refcount it could not read is a record of the comparison, compare.c).  Each line carries the key
 * set_key() last set (stage, L1 index, L2 index): sorted by it, the lines
 * come out in the order qemu-img prints them.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check/check_impl.h"
#include "qcow2elf/array.h"

int nomem(struct checker *c)
{
	return q2e_error_set(c->err, Q2E_ENOMEM, "out of memory");
}

void set_key(struct checker *c, uint64_t k0, uint64_t k1, uint64_t k2)
{
	c->key[0] = k0;
	c->key[1] = k1;
	c->key[2] = k2;
}

/* Texts of lines are at most this long, their NUL included. */
#define LINE_MAX_TEXT 512
#define TEXT_CHUNK (64U << 10)

/*
 * Room for a text of up to ROOM bytes at the end of the result's text
 * chunks; keep_text() keeps what was written there.
 */
static char *text_room_for(struct checker *c, size_t room)
{
	struct check_result_impl *r = (struct check_result_impl *)c->res;
	struct text_chunk *t = r->texts;
	size_t cap = room > TEXT_CHUNK ? room : TEXT_CHUNK;

	if (!t || t->cap - t->used < room) {
		if (c->spare_texts && c->spare_texts->cap >= cap) {
			t = c->spare_texts;
			c->spare_texts = t->next;
		} else if ((t = malloc(sizeof(*t) + cap))) {
			t->cap = cap;
		} else {
			return NULL;
		}
		r->text_bytes += t->cap;
		t->next = r->texts;
		t->used = 0;
		r->texts = t;
	}
	return t->text + t->used;
}

static char *text_room(struct checker *c)
{
	return text_room_for(c, LINE_MAX_TEXT);
}

static void keep_text(struct checker *c, size_t len)
{
	((struct check_result_impl *)c->res)->texts->used += len + 1;
}

char *keep_string(struct checker *c, const char *s, size_t max)
{
	size_t len = strnlen(s, max - 1);
	char *text = text_room_for(c, len + 1);

	if (!text)
		return NULL;
	memcpy(text, s, len);
	text[len] = '\0';
	keep_text(c, len);
	return text;
}

/*
 * Whether a line with the checker's key and TEXT is the last line again:
 * the same stage, table (key[1]) and text, an entry not before it, and
 * neither a line standing for shared snapshots.  The lines of one table's
 * walk come in entry order, so no line of another can fall between two
 * such in qemu's order.  An L2 table that N L1 entries share is walked N
 * times, as qemu-img walks it, and each walk's alike lines (2,048 refcount
 * overflows, one per entry mapping one cluster) are one line with a count:
 * 4 million lines from a 208 KB file took a gigabyte.  They are written
 * out in full, as qemu-img writes them.
 */
static bool same_as_last(const struct checker *c, const char *text)
{
	const struct q2e_check_line *l;

	if (!c->res->nlines || c->res->nlines <= c->sealed)
		return false;
	l = &c->res->lines[c->res->nlines - 1];
	return !l->shared && l->text && l->key[0] == c->key[0] &&
	       l->key[1] == c->key[1] && l->key[2] <= c->key[2] &&
	       l->own == c->own_lines && strcmp(l->text, text) == 0;
}

static int add_vline(struct checker *c, uint64_t repeat, const char *fmt,
		     va_list ap) __attribute__((format(printf, 3, 0)));
/* Whether the lines kept take as much memory as they may: the line to
 * add is left out, and the result says lines were. */
static bool kept_enough(struct checker *c)
{
	struct check_result_impl *r = (struct check_result_impl *)c->res;

	if (c->res->nlines * sizeof(*c->res->lines) +
	    r->nechoes * sizeof(*r->echoes) + r->text_bytes < LINES_KEPT_BYTES)
		return false;
	c->res->lines_cut = true;
	return true;
}

static int add_vline(struct checker *c, uint64_t repeat, const char *fmt,
		     va_list ap)
{
	struct q2e_check_result *res = c->res;
	struct q2e_check_line *l;
	char *text;
	int len;

	if (kept_enough(c))
		return 0;
	if (q2e_grow(res->lines, c->lines_cap, res->nlines + 1) < 0)
		return nomem(c);
	text = text_room(c);
	if (!text)
		return nomem(c);
	len = vsnprintf(text, LINE_MAX_TEXT, fmt, ap);
	if (len < 0) {
		text[0] = '\0';
		len = 0;
	} else if (len >= LINE_MAX_TEXT) {
		len = LINE_MAX_TEXT - 1;	/* vsnprintf() cut it there */
	}
	if (repeat == 1 && same_as_last(c, text)) {
		l = &res->lines[res->nlines - 1];
		if (l->repeat < UINT64_MAX)
			l->repeat++;
		return 0;	/* the text's room is taken again */
	}
	keep_text(c, (size_t)len);
	l = &res->lines[res->nlines];
	memcpy(l->key, c->key, sizeof(l->key));
	l->seq = res->nlines;
	l->repeat = repeat;
	l->shared = repeat > 1;
	l->own = c->own_lines;
	l->compare = 0;
	l->echo = 0;
	l->text = text;
	res->nlines++;
	return 0;
}

int add_compare_line(struct checker *c, size_t i)
{
	struct q2e_check_result *res = c->res;
	struct q2e_check_line *l;

	if (q2e_grow(res->lines, c->lines_cap, res->nlines + 1) < 0)
		return nomem(c);
	l = &res->lines[res->nlines];
	*l = (struct q2e_check_line){
		.seq = res->nlines,
		.repeat = 1,
		.own = c->own_lines,
		.compare = (uint64_t)i + 1,
	};
	memcpy(l->key, c->key, sizeof(l->key));
	res->nlines++;
	return 0;
}

int add_line(struct checker *c, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = add_vline(c, 1, fmt, ap);
	va_end(ap);
	return ret;
}

int add_repeated_line(struct checker *c, uint64_t k0, uint64_t repeat,
		      const char *fmt, ...)
{
	uint64_t key0 = c->key[0];
	bool own = c->own_lines;
	va_list ap;
	int ret;

	c->key[0] = k0;
	c->own_lines = true;
	va_start(ap, fmt);
	ret = add_vline(c, repeat, fmt, ap);
	va_end(ap);
	c->key[0] = key0;
	c->own_lines = own;
	return ret;
}

int corrupt(struct checker *c, const char *fmt, ...)
{
	va_list ap;
	int ret;

	c->res->corruptions += c->mult;
	va_start(ap, fmt);
	ret = add_vline(c, 1, fmt, ap);
	va_end(ap);
	return ret;
}

int corrupt_many(struct checker *c, uint64_t n, const char *fmt, ...)
{
	va_list ap;
	int ret;

	c->res->corruptions += n * c->mult;
	va_start(ap, fmt);
	ret = add_vline(c, 1, fmt, ap);
	va_end(ap);
	return ret;
}

int give_up(struct checker *c, uint64_t *counter, const char *why)
{
	struct q2e_check_result *res = c->res;

	(*counter)++;
	if (res->incomplete)
		return 0;	/* qemu-img stopped at the first */
	res->incomplete = strdup(why);
	return res->incomplete ? 0 : nomem(c);
}

void progress(struct checker *c, uint64_t bytes)
{
	unsigned pct;

	c->done += bytes;
	if (!c->opts || !c->opts->progress || !c->total)
		return;
	pct = (unsigned)(c->done * 10000 / c->total);
	if (pct != c->last_pct || c->done == c->total) {
		c->last_pct = pct;
		c->opts->progress(c->opts->progress_arg, c->done, c->total);
	}
}

/* Reads a region into c->buf (one cluster), or a cluster at OFF if R is NULL. */
/* SIZE bytes of the file from OFF, as an L2 region: the part inside the
 * file is read, the rest reads as zeros. */
static struct q2e_region file_range(const struct checker *c, uint64_t off,
				    uint64_t size)
{
	uint64_t fsize = c->img->file_size;

	return (struct q2e_region){
		.kind = Q2E_REGION_L2,
		.offset = off,
		.size = size,
		.avail = off >= fsize ? 0 : size < fsize - off ? size
							       : fsize - off,
	};
}

int read_cluster(struct checker *c, const struct q2e_region *r, uint64_t off)
{
	struct q2e_region tmp;

	if (!r) {
		tmp = file_range(c, off, c->cs);
		r = &tmp;
	}
	return q2e_image_read_region(c->img, r, c->buf, c->err);
}

bool reads_whole(const struct checker *c, uint64_t off, uint64_t end)
{
	return q2e_image_missing_from(c->img, off) >= end;
}

int read_overlapping(struct checker *c, uint64_t off, uint64_t end)
{
	struct q2e_region all = file_range(c, off, end - off);
	int ret;

	if (!c->overlap && !(c->overlap = malloc(OVERLAP_MAX)))
		return nomem(c);
	c->overlap_end = 0;
	ret = q2e_image_read_region(c->img, &all, c->overlap, c->err);
	if (ret < 0)
		return ret;
	c->overlap_off = off;
	c->overlap_end = end;
	return 0;
}

/* bdrv_check_request(): no read may reach past 2^63 - 2^30. */
bool unreadable(uint64_t offset, uint64_t bytes)
{
	const uint64_t max = (uint64_t)INT64_MAX + 1 - (1ULL << 30);

	return offset > max || bytes > max - offset;
}

void mark_lines(const struct checker *c, struct line_mark *m)
{
	const struct check_result_impl *r =
		(const struct check_result_impl *)c->res;
	size_t n = c->res->nlines;

	*m = (struct line_mark){
		.nlines = n,
		.texts = r->texts,
		.used = r->texts ? r->texts->used : 0,
		.last_repeat = n ? c->res->lines[n - 1].repeat : 0,
		.nfindings = c->res->nfindings,
	};
}

void lines_since(const struct checker *c, const struct line_mark *m,
		 struct walk_lines *w)
{
	const struct q2e_check_result *res = c->res;

	*w = (struct walk_lines){
		.from = m->nlines,
		.count = res->nlines - m->nlines,
		.whole = !m->nlines ||
			 res->lines[m->nlines - 1].repeat == m->last_repeat,
	};
	w->echoable = true;
	for (size_t i = m->nlines; i < res->nlines; i++) {
		const struct q2e_check_line *l = &res->lines[i];

		w->lines += l->repeat ? l->repeat : 1;
		if (l->key[0] != c->key[0] || (l->own && c->mult > 1))
			w->echoable = false;
	}
}

/* Whether line records X and Y say the same, but for key[0..1]. */
static bool same_record(const struct q2e_check_line *x,
			const struct q2e_check_line *y)
{
	return x->key[2] == y->key[2] && x->repeat == y->repeat &&
	       x->shared == y->shared && x->own == y->own && !x->compare &&
	       !y->compare && !x->echo && !y->echo && x->text && y->text &&
	       strcmp(x->text, y->text) == 0;
}

/* Takes back the lines added since M, and their texts, whose chunks the
 * next lines use. */
static void take_back(struct checker *c, const struct line_mark *m)
{
	struct check_result_impl *r = (struct check_result_impl *)c->res;

	while (r->texts != m->texts) {
		struct text_chunk *t = r->texts;

		r->texts = t->next;
		r->text_bytes -= t->cap;
		t->next = c->spare_texts;
		c->spare_texts = t;
	}
	if (r->texts)
		r->texts->used = m->used;
	c->res->nlines = m->nlines;
}

int add_echo_line(struct checker *c, const struct walk_lines *src)
{
	struct check_result_impl *r = (struct check_result_impl *)c->res;
	struct q2e_check_result *res = c->res;
	const struct q2e_check_line *first;
	struct q2e_check_line *l;

	if (kept_enough(c))
		return 0;
	if (q2e_grow(r->echoes, r->echoes_cap, r->nechoes + 1) < 0 ||
	    q2e_grow(res->lines, c->lines_cap, res->nlines + 1) < 0)
		return nomem(c);
	first = &res->lines[src->from];	/* the lines may have moved */
	r->echoes[r->nechoes] = (struct echo_lines){
		.key = { first->key[0], first->key[1], first->key[2] },
		.seq_from = first->seq,
		.count = src->count,
		.lines = src->lines,
	};
	l = &res->lines[res->nlines];
	*l = (struct q2e_check_line){
		.seq = res->nlines,
		.repeat = 1,
		.own = c->own_lines,
		.echo = (uint64_t)++r->nechoes,
	};
	memcpy(l->key, c->key, sizeof(l->key));
	res->nlines++;
	return 0;
}

int echo_walk(struct checker *c, const struct line_mark *m,
	      const struct walk_lines *src, bool *echoed)
{
	const struct q2e_check_result *res = c->res;
	struct walk_lines now;
	uint64_t key[3];
	int ret;

	*echoed = false;
	lines_since(c, m, &now);
	if (!src->count || !src->whole || !now.whole || !src->echoable ||
	    !now.echoable ||
	    now.count != src->count || res->nfindings != m->nfindings)
		return 0;
	for (size_t i = 0; i < src->count; i++)
		if (!same_record(&res->lines[src->from + i],
				 &res->lines[m->nlines + i]))
			return 0;
	memcpy(key, c->key, sizeof(key));
	memcpy(c->key, res->lines[m->nlines].key, sizeof(c->key));
	/* The walk's overflow lines stay charged to their clusters: the
	 * echo prints them again. */
	take_back(c, m);
	*echoed = true;
	ret = add_echo_line(c, src);
	memcpy(c->key, key, sizeof(key));
	return ret;
}

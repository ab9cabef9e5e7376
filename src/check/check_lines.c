/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qemu-img check's per-cluster lines, written in its order.  The check
 * counts a table shared by many snapshots once, so a line of the snapshot
 * stage may stand for one line per snapshot sharing the table (qemu-img
 * walks the table again for each); here each snapshot gets its copy at its
 * place, unless the copies would run past a bound: then the first stands
 * for all, and a line says so.  Hostile images (4,096 snapshots sharing
 * one L1 table of 8,192 bad entries) would otherwise print gigabytes.
 * Alike lines in a row of one table's walk are one line with a count
 * (report.c), written out as many times, as qemu-img writes them; the
 * lines of the refcount comparison are made as they are written, from the
 * record of the clusters compared (write_compare_lines(), compare.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check/check_impl.h"

/* Copies of lines written for the snapshots sharing a table, at most. */
#define MAX_SHARED_COPIES 100000

/* Bytes of lines written at once: stderr is unbuffered, and 4 million
 * lines a write each took 8 million system calls. */
#define OUT_BUF 65536

struct lines_out {
	const struct q2e_check_result *res;
	FILE *fp;
	uint64_t *group_size;	/* by leader */
	char *buf;		/* OUT_BUF bytes not written yet */
	size_t len;
};

static void out_flush(struct lines_out *w)
{
	if (w->len)
		fwrite(w->buf, 1, w->len, w->fp);	/* ferror() tells */
	w->len = 0;
}

/* TEXT and a newline. */
static void out_line(struct lines_out *w, const char *text)
{
	size_t n = strlen(text);

	if (w->len + n + 1 > OUT_BUF)
		out_flush(w);
	if (n + 1 > OUT_BUF) {
		fprintf(w->fp, "%s\n", text);
		return;
	}
	memcpy(w->buf + w->len, text, n);
	w->len += n;
	w->buf[w->len++] = '\n';
}

/* TEXT and a newline, N times, a buffer of copies at a time. */
static void write_copies(struct lines_out *w, const char *text, uint64_t n)
{
	size_t len = strlen(text) + 1, per = OUT_BUF / len;
	char *buf = n > 1 && per > 1 ? malloc(per * len) : NULL;

	if (!buf) {
		for (uint64_t i = 0; i < n; i++)
			out_line(w, text);
		return;
	}
	out_flush(w);
	for (size_t i = 0; i < per; i++) {
		memcpy(buf + i * len, text, len - 1);
		buf[i * len + len - 1] = '\n';
	}
	while (n) {
		size_t k = n < per ? (size_t)n : per;

		if (fwrite(buf, len, k, w->fp) != k)
			break;
		n -= k;
	}
	free(buf);
}

static void write_line(struct lines_out *w, const struct q2e_check_line *l);

/* Whether line X comes before the key K and seq SEQ. */
static bool before_key(const struct q2e_check_line *x, const uint64_t *k,
		       uint64_t seq)
{
	for (int i = 0; i < 3; i++)
		if (x->key[i] != k[i])
			return x->key[i] < k[i];
	return x->seq < seq;
}

/* The lines of an earlier walk again: its records, found by the first. */
static void write_echo(struct lines_out *w, const struct echo_lines *e)
{
	const struct q2e_check_result *res = w->res;
	size_t lo = 0, hi = res->nlines;

	while (lo < hi) {
		size_t m = lo + (hi - lo) / 2;

		if (before_key(&res->lines[m], e->key, e->seq_from))
			lo = m + 1;
		else
			hi = m;
	}
	for (size_t i = 0; i < e->count && lo + i < res->nlines; i++) {
		const struct q2e_check_line *l = &res->lines[lo + i];

		if (l->echo || l->key[0] != e->key[0] || l->key[1] != e->key[1])
			break;	/* not the walk's: never so */
		write_line(w, l);
	}
}

static void write_line(struct lines_out *w, const struct q2e_check_line *l)
{
	const struct check_result_impl *impl =
		(const struct check_result_impl *)w->res;
	uint64_t n = l->repeat ? l->repeat : 1;
	char more[96];

	if (l->compare) {
		out_flush(w);
		write_compare_lines(impl, &impl->compares[l->compare - 1],
				    w->fp);
		return;
	}
	if (l->echo) {
		write_echo(w, &impl->echoes[l->echo - 1]);
		return;
	}
	if (l->shared && n > MAX_SHARED_COPIES) {
		out_line(w, l->text);
		snprintf(more, sizeof(more), "qcow2elf: the line above repeats %"
			 PRIu64 " more times", n - 1);
		out_line(w, more);
		return;
	}
	write_copies(w, l->text, n);
}

/* The lines in [lo, hi) whose key names snapshot S. */
static void snapshot_range(const struct q2e_check_result *res, size_t lo,
			   size_t hi, uint64_t s, size_t *a, size_t *b)
{
	uint64_t want = (uint64_t)ST_SNAPSHOTS << 32 | s;
	size_t l = lo, h = hi;

	while (l < h) {
		size_t m = l + (h - l) / 2;

		if (res->lines[m].key[0] < want)
			l = m + 1;
		else
			h = m;
	}
	*a = l;
	while (l < hi && res->lines[l].key[0] == want)
		l++;
	*b = l;
}

static bool line_before(const struct q2e_check_line *x,
			const struct q2e_check_line *y)
{
	if (x->key[1] != y->key[1])
		return x->key[1] < y->key[1];
	if (x->key[2] != y->key[2])
		return x->key[2] < y->key[2];
	return x->seq < y->seq;
}

/*
 * Snapshot S's lines: those of its table (in [ga, gb), unless SKIP_TABLE)
 * merged with its own (in [oa, ob)), by their keys.
 */
static void merge_snapshot(struct lines_out *w, size_t ga, size_t gb,
			   size_t oa, size_t ob, bool skip_table)
{
	const struct q2e_check_line *lines = w->res->lines;

	for (;;) {
		while (ga < gb && (skip_table || lines[ga].own))
			ga++;
		while (oa < ob && !lines[oa].own)
			oa++;
		if (ga >= gb && oa >= ob)
			return;
		if (oa >= ob || (ga < gb && line_before(&lines[ga], &lines[oa])))
			write_line(w, &lines[ga++]);
		else
			write_line(w, &lines[oa++]);
	}
}

/* How many lines the table's records in [a, b) stand for, for each of
 * the snapshots sharing it. */
static uint64_t table_lines(const struct q2e_check_result *res, size_t a,
			    size_t b)
{
	const struct check_result_impl *impl =
		(const struct check_result_impl *)res;
	const struct q2e_check_line *lines = res->lines;
	uint64_t n = 0;

	for (size_t i = a; i < b && n <= MAX_SHARED_COPIES; i++)
		if (!lines[i].own)
			n += lines[i].echo ? impl->echoes[lines[i].echo - 1].lines
			     : lines[i].repeat ? lines[i].repeat : 1;
	return n;
}

/* The snapshot stage, lines [lo, hi): each snapshot in turn. */
static void write_snapshots(struct lines_out *w, size_t lo, size_t hi)
{
	const struct q2e_check_result *res = w->res;

	for (size_t s = 0; s < res->nsnapshots; s++) {
		uint32_t leader = res->snapshot_leader[s];
		size_t ga, gb, oa, ob;
		bool once;

		snapshot_range(res, lo, hi, leader, &ga, &gb);
		snapshot_range(res, lo, hi, s, &oa, &ob);
		once = w->group_size[leader] > 1 &&
		       table_lines(res, ga, gb) * w->group_size[leader] >
		       MAX_SHARED_COPIES;
		merge_snapshot(w, ga, gb, oa, ob, once && leader != s);
		if (once && leader == s) {
			char line[160];

			snprintf(line, sizeof(line), "qcow2elf: the lines of snapshot %zu's L1 table above repeat for each of the %" PRIu64
				 " other snapshots sharing it", s,
				 w->group_size[leader] - 1);
			out_line(w, line);
		}
	}
}

int q2e_check_write_lines(const struct q2e_check_result *res, FILE *fp,
			  struct q2e_error *err)
{
	struct lines_out w = { .res = res, .fp = fp };
	size_t i = 0;

	w.group_size = calloc(res->nsnapshots + 1, sizeof(*w.group_size));
	w.buf = malloc(OUT_BUF);
	if (!w.group_size || !w.buf) {
		free(w.group_size);
		free(w.buf);
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	}
	for (size_t s = 0; s < res->nsnapshots; s++)
		w.group_size[res->snapshot_leader[s]]++;
	while (i < res->nlines) {
		size_t j = i;

		if (res->lines[i].key[0] >> 32 != ST_SNAPSHOTS ||
		    !res->nsnapshots) {
			write_line(&w, &res->lines[i++]);
			continue;
		}
		while (j < res->nlines && res->lines[j].key[0] >> 32 == ST_SNAPSHOTS)
			j++;
		write_snapshots(&w, i, j);
		i = j;
	}
	if (res->lines_cut)
		out_line(&w, "qcow2elf: qemu-img prints more lines than check keeps (128 MiB of them): the rest are left out here, and counted in the numbers");
	out_flush(&w);
	free(w.group_size);
	free(w.buf);
	if (fflush(fp) != 0 || ferror(fp))
		return q2e_error_set(err, Q2E_EOUTPUT, "cannot write the check's lines");
	return 0;
}

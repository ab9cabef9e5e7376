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

struct lines_out {
	const struct q2e_check_result *res;
	FILE *fp;
	uint64_t *group_size;	/* by leader */
};

/* Bytes of copies of a line written at once: stderr is unbuffered, and
 * 4 million lines a write each took 8 million system calls. */
#define COPIES_BUF 65536

/* TEXT and a newline, N times. */
static void write_copies(FILE *fp, const char *text, uint64_t n)
{
	size_t len = strlen(text) + 1, per = COPIES_BUF / len;
	char *buf = n > 1 && per > 1 ? malloc(per * len) : NULL;

	if (!buf) {
		for (uint64_t i = 0; i < n; i++)
			fprintf(fp, "%s\n", text);
		return;
	}
	for (size_t i = 0; i < per; i++) {
		memcpy(buf + i * len, text, len - 1);
		buf[i * len + len - 1] = '\n';
	}
	while (n) {
		size_t k = n < per ? (size_t)n : per;

		if (fwrite(buf, len, k, fp) != k)
			break;
		n -= k;
	}
	free(buf);
}

static void write_line(const struct q2e_check_result *res, FILE *fp,
		       const struct q2e_check_line *l)
{
	const struct check_result_impl *impl =
		(const struct check_result_impl *)res;
	uint64_t n = l->repeat ? l->repeat : 1;

	if (l->compare) {
		write_compare_lines(impl, &impl->compares[l->compare - 1], fp);
		return;
	}

	if (l->shared && n > MAX_SHARED_COPIES) {
		fprintf(fp, "%s\n", l->text);
		fprintf(fp, "qcow2elf: the line above repeats %" PRIu64
			" more times\n", n - 1);
		return;
	}
	write_copies(fp, l->text, n);
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
static void merge_snapshot(const struct lines_out *w, size_t ga, size_t gb,
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
			write_line(w->res, w->fp, &lines[ga++]);
		else
			write_line(w->res, w->fp, &lines[oa++]);
	}
}

/* How many lines the table's records in [a, b) stand for, for each of
 * the snapshots sharing it. */
static uint64_t table_lines(const struct q2e_check_line *lines, size_t a,
			    size_t b)
{
	uint64_t n = 0;

	for (size_t i = a; i < b && n <= MAX_SHARED_COPIES; i++)
		if (!lines[i].own)
			n += lines[i].repeat ? lines[i].repeat : 1;
	return n;
}

/* The snapshot stage, lines [lo, hi): each snapshot in turn. */
static void write_snapshots(const struct lines_out *w, size_t lo, size_t hi)
{
	const struct q2e_check_result *res = w->res;

	for (size_t s = 0; s < res->nsnapshots; s++) {
		uint32_t leader = res->snapshot_leader[s];
		size_t ga, gb, oa, ob;
		bool once;

		snapshot_range(res, lo, hi, leader, &ga, &gb);
		snapshot_range(res, lo, hi, s, &oa, &ob);
		once = w->group_size[leader] > 1 &&
		       table_lines(res->lines, ga, gb) * w->group_size[leader] >
		       MAX_SHARED_COPIES;
		merge_snapshot(w, ga, gb, oa, ob, once && leader != s);
		if (once && leader == s)
			fprintf(w->fp, "qcow2elf: the lines of snapshot %zu's L1 table above repeat for each of the %" PRIu64
				" other snapshots sharing it\n", s,
				w->group_size[leader] - 1);
	}
}

int q2e_check_write_lines(const struct q2e_check_result *res, FILE *fp,
			  struct q2e_error *err)
{
	struct lines_out w = { .res = res, .fp = fp };
	size_t i = 0;

	w.group_size = calloc(res->nsnapshots + 1, sizeof(*w.group_size));
	if (!w.group_size)
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	for (size_t s = 0; s < res->nsnapshots; s++)
		w.group_size[res->snapshot_leader[s]]++;
	while (i < res->nlines) {
		size_t j = i;

		if (res->lines[i].key[0] >> 32 != ST_SNAPSHOTS ||
		    !res->nsnapshots) {
			write_line(res, fp, &res->lines[i++]);
			continue;
		}
		while (j < res->nlines && res->lines[j].key[0] >> 32 == ST_SNAPSHOTS)
			j++;
		write_snapshots(&w, i, j);
		i = j;
	}
	free(w.group_size);
	if (fflush(fp) != 0 || ferror(fp))
		return q2e_error_set(err, Q2E_EOUTPUT, "cannot write the check's lines");
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Problems that the entries of one table repeat, recorded once for a run
 * of them rather than once for each: the tables they name that are not
 * cluster aligned, or past the end of the file, and the entries with
 * reserved bits set.  QEMU's largest L1 table has 4 million entries, each
 * of which a file of 32 MB can make wrong in all three ways.
 *
 * Each kind has a run of its own, so that entries wrong in alternate ways
 * still make one problem of each kind.  A run goes on across entries
 * that are not wrong its way, and ends at another owning table or kind of
 * table, or at any other problem (walk_problem()).  A run of one entry
 * records the problem that entry always had; a longer one says how many
 * entries there are and names the first and the last.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "walk.h"

static const char *run_noun(enum q2e_region_kind kind)
{
	switch (kind) {
	case Q2E_REGION_L2:
		return "L2 tables";
	case Q2E_REGION_REFCOUNT_BLOCK:
		return "refcount blocks";
	case Q2E_REGION_BITMAP_DATA:
		return "bitmap data clusters";
	default:
		return "tables";
	}
}

/* The problem just recorded is of R's tables. */
static void mark_table(struct walk *w, const struct walk_run *r)
{
	struct q2e_problem *p = &w->img->problems[w->img->nproblems - 1];

	p->table = true;
	p->table_kind = r->kind;
	p->table_size = r->size;
}

/* R's problem: tables not cluster aligned, or past the end of the file. */
static int table_problem(struct walk *w, enum walk_run_kind k,
			 const struct walk_run *r, uint64_t count)
{
	struct q2e_image *img = w->img;
	char first[96], last[96];
	int ret;

	q2e_structure_symbol(img, r->kind, 0, &r->first, first, sizeof(first));
	q2e_structure_symbol(img, r->kind, 0, &r->last, last, sizeof(last));
	if (k == RUN_MISALIGNED && count == 1)
		ret = walk_add_misaligned(w, first, r->first_off);
	else if (k == RUN_MISALIGNED)
		ret = walk_add_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_MISALIGNED,
				       r->first_off, first,
				       "%s to %s: %" PRIu64
				       " entries name %s not cluster aligned, the first at 0x%"
				       PRIx64 " and the last at 0x%" PRIx64,
				       first, last, count, run_noun(r->kind),
				       r->first_off, r->last_off);
	else if (count == 1)
		ret = walk_add_truncated(w, first, r->first_off, r->size);
	else
		ret = walk_add_problem(w, Q2E_SEV_ERROR, Q2E_PROBLEM_PAST_END,
				       r->first_off, first,
				       "%s to %s: %" PRIu64
				       " entries name %s past the end of the file (0x%"
				       PRIx64 " bytes), the first at 0x%" PRIx64
				       " and the last at 0x%" PRIx64 " (%" PRIu64
				       " bytes each)", first, last, count,
				       run_noun(r->kind), img->file_size,
				       r->first_off, r->last_off, r->size);
	if (ret == 0)
		mark_table(w, r);
	return ret;
}

/* R's problem: entries with reserved bits set. */
static int reserved_problem(struct walk *w, const struct walk_run *r,
			    uint64_t count)
{
	if (count > 1)
		return walk_add_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_RESERVED_BITS,
					r->first_off, r->table,
					"%s[%" PRIu64 "] to [%" PRIu64 "]: %" PRIu64
					" entries have reserved bits set, the first 0x%016"
					PRIx64, r->table, r->first.index,
					r->last.index, count, r->first_raw);
	if (r->reserved)
		return walk_add_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_RESERVED_BITS,
					r->first_off, r->table,
					"%s[%" PRIu64 "] = 0x%016" PRIx64
					" has reserved bits 0x%" PRIx64 " set",
					r->table, r->first.index, r->first_raw,
					r->reserved);
	return walk_add_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_RESERVED_BITS,
				r->first_off, r->table,
				"%s[%" PRIu64 "] = 0x%016" PRIx64
				" has reserved bits set", r->table,
				r->first.index, r->first_raw);
}

static int flush_run(struct walk *w, enum walk_run_kind k)
{
	struct walk_run *r = &w->runs[k];
	uint64_t count = r->count;

	if (!count)
		return 0;
	r->count = 0;
	return k == RUN_RESERVED ? reserved_problem(w, r, count)
				 : table_problem(w, k, r, count);
}

int walk_flush_problems(struct walk *w)
{
	for (;;) {
		int k = -1, ret;

		for (int j = 0; j < RUN_KINDS; j++)
			if (w->runs[j].count &&
			    (k < 0 || w->runs[j].seq < w->runs[k].seq))
				k = j;
		if (k < 0)
			return 0;
		ret = flush_run(w, (enum walk_run_kind)k);
		if (ret < 0)
			return ret;
	}
}

/* Entry O's of kind K at OFF joins run K, which ends first where it
 * cannot take it (SAME false). */
static int join_run(struct walk *w, enum walk_run_kind k, bool same,
		    const struct walk_run *start, const struct q2e_owner *o,
		    uint64_t off)
{
	struct walk_run *r = &w->runs[k];
	int ret;

	if (r->count && !same) {
		ret = flush_run(w, k);
		if (ret < 0)
			return ret;
	}
	if (!r->count) {
		*r = *start;
		r->seq = w->run_seq++;
	}
	r->count++;
	r->last = *o;
	r->last_off = off;
	return 0;
}

int walk_note_table(struct walk *w, enum q2e_region_kind kind,
		    const struct q2e_owner *o, uint64_t off, uint64_t size)
{
	const struct walk_run start = {
		.kind = kind, .first = *o, .first_off = off, .size = size
	};
	int ret = 0;

	for (int k = RUN_MISALIGNED; k <= RUN_PAST_END && ret == 0; k++) {
		const struct walk_run *r = &w->runs[k];
		bool wrong = k == RUN_MISALIGNED
				     ? (off & (w->img->cluster_size - 1)) != 0
				     : !walk_in_file(w->img, off, size);

		if (wrong)
			ret = join_run(w, (enum walk_run_kind)k,
				       r->kind == kind &&
				       r->first.kind == o->kind &&
				       r->first.id == o->id && r->size == size,
				       &start, o, off);
	}
	return ret;
}

int walk_note_reserved(struct walk *w, const char *table, uint64_t table_off,
		       uint64_t index, uint64_t raw, uint64_t reserved)
{
	const struct walk_run *r = &w->runs[RUN_RESERVED];
	const struct q2e_owner entry = { Q2E_OWNER_IMAGE, 0, index };
	struct walk_run start = {
		.first = entry, .first_off = table_off + index * 8,
		.table_off = table_off, .first_raw = raw, .reserved = reserved
	};

	snprintf(start.table, sizeof(start.table), "%s", table);
	return join_run(w, RUN_RESERVED,
			r->table_off == table_off &&
			strcmp(r->table, start.table) == 0,
			&start, &entry, start.first_off);
}

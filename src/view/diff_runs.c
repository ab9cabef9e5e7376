/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The changes of L2 tables and refcount blocks, made from the steps the
 * comparisons find (a changed entry, or several in a row where the new
 * image's entry spans more than one cluster of the old) each time they are
 * counted or rendered, rather than kept a change each: the steps come
 * from copies of the pairs of tables that differ (diff_pairs.c) or from a
 * walk of both models by ranges (diff_walk.c).  Two sparse files of 16 KB
 * can differ in 8 million refcounts; keeping a change each took 2 GB.
 *
 * One rule joins the steps, whichever comparison found them:
 *   - a change is a run of entries of one table that changed alike, the
 *     values stepping as the first ones do (host offsets a cluster
 *     apart, the same refcounts);
 *   - a step on the same entry again (the unit smaller than the new
 *     image's cluster) adds its bytes to the change;
 *   - a range of one kind of change ("allocated", "rose") joins the last
 *     one of its kind where they touch.
 */
#include <stdio.h>
#include <string.h>

#include "view/diff_int.h"

/* The counts of a group, for the summary. */
struct tally {
	char last_symbol[64];
};

/* Where the steps go: made into changes for FN, into the ranges of one
 * kind of change for RANGE_FN, or counted into the result. */
struct join {
	struct q2e_diff *counted;	/* the tally's result, or NULL */
	struct tally *tally;
	diff_entry_fn *fn;
	void *arg;
	bool meanings;
	int range_kind;
	diff_range_fn *range_fn;
	void *range_arg;
	const struct q2e_diff_ranges *counted_ranges;	/* of RANGE_KIND */

	struct q2e_diff_entry e;	/* the change being made */
	int kind;
	bool open;
	char symbol[64];
	char old_meaning[DIFF_MEANING_MAX], new_meaning[DIFF_MEANING_MAX];
	struct q2e_diff_range r[DIFF_NKINDS];	/* the last of each kind */
	bool ropen[DIFF_NKINDS];
	enum q2e_diff_group g;
};

const char *diff_kind_name(int kind)
{
	if (kind == DIFF_KIND_ROSE)
		return "rose";
	if (kind == DIFF_KIND_FELL)
		return "fell";
	return q2e_diff_l2_kind_name((enum q2e_diff_l2_kind)kind);
}

/* Whether step S continues the open change, which it then extends. */
static bool continues(struct join *j, const struct diff_step *s)
{
	struct q2e_diff_entry *e = &j->e;

	if (j->kind != s->kind || strcmp(e->symbol, s->symbol) != 0)
		return false;
	/* The same entry again, when the unit is smaller than its cluster. */
	if (s->count == 1 && e->index + e->count - 1 == s->index) {
		e->range_length += s->length;
		return true;
	}
	if (e->index + e->count != s->index ||
	    e->old.num + e->count * e->old_step != s->old ||
	    e->new.num + e->count * e->new_step != s->new ||
	    e->old.bitmap != s->old_bitmap || e->new.bitmap != s->new_bitmap)
		return false;
	e->count += s->count;
	e->range_length += s->length;
	return true;
}

static void open_change(struct join *j, const struct diff_step *s)
{
	/* mostly the table of the change before */
	if (strcmp(j->symbol, s->symbol) != 0)
		snprintf(j->symbol, sizeof(j->symbol), "%s", s->symbol);
	j->e = (struct q2e_diff_entry){
		.symbol = j->symbol, .indexed = true, .index = s->index,
		.count = s->count, .change = diff_kind_name(s->kind),
		.old = { .type = s->type, .num = s->old,
			 .has_bitmap = s->has_bitmap, .bitmap = s->old_bitmap },
		.new = { .type = s->type, .num = s->new,
			 .has_bitmap = s->has_bitmap, .bitmap = s->new_bitmap },
		.old_step = s->old_step, .new_step = s->new_step,
		.has_range = true, .range_start = s->start,
		.range_length = s->length,
	};
	j->kind = s->kind;
	if (j->meanings && s->x && s->y) {
		diff_l2_meaning(s->x, s->has_bitmap, j->old_meaning,
				sizeof(j->old_meaning));
		diff_l2_meaning(s->y, s->has_bitmap, j->new_meaning,
				sizeof(j->new_meaning));
		j->e.old.meaning = j->old_meaning;
		j->e.new.meaning = j->new_meaning;
	}
	j->open = true;
}

/*
 * The ranges of each kind of change, counted or shown: step S joins the
 * last range of its kind where they touch.  False where S starts a new
 * one; *ENDED is then the range it ends, and *WAS whether there was one.
 */
static bool range_join(struct join *j, const struct diff_step *s,
		       struct q2e_diff_range *ended, bool *was)
{
	struct q2e_diff_range *r = &j->r[s->kind];

	*was = j->ropen[s->kind];
	if (*was && r->start + r->length == s->start) {
		r->length += s->length;
		return true;
	}
	*ended = *r;
	*r = (struct q2e_diff_range){ s->start, s->length };
	j->ropen[s->kind] = true;
	return false;
}

/*
 * The ranges of the kind shown, each to RANGE_FN once made.  The last
 * one, known from the count, is given whole where it starts: the steps
 * stop there (false, and RANGES_DONE).
 */
static bool range_of(struct join *j, const struct diff_step *s)
{
	const struct q2e_diff_ranges *c = j->counted_ranges;
	struct q2e_diff_range ended;
	bool was;

	if (!j->range_fn || s->kind != j->range_kind)
		return true;
	if (range_join(j, s, &ended, &was))
		return true;
	if (was && !j->range_fn(j->range_arg, &ended))
		return false;
	if (s->start != c->last_start)
		return true;
	j->ropen[s->kind] = false;
	j->r[s->kind] = (struct q2e_diff_range){ c->last_start,
						 c->last_end - c->last_start };
	j->range_fn(j->range_arg, &j->r[s->kind]);
	return false;
}

static struct q2e_diff_ranges *kind_ranges(struct q2e_diff *d, int kind)
{
	if (kind == DIFF_KIND_ROSE)
		return &d->refcount_rose;
	if (kind == DIFF_KIND_FELL)
		return &d->refcount_fell;
	return &d->l2[kind];
}

static void count_range(struct join *j, const struct diff_step *s)
{
	struct q2e_diff_ranges *r = kind_ranges(j->counted, s->kind);
	struct q2e_diff_range ended;
	bool was;

	r->units += s->length / j->counted->unit;
	if (!range_join(j, s, &ended, &was))
		r->n++;
	r->last_start = j->r[s->kind].start;
	r->last_end = s->start + s->length;
}

/* A change made whole: to FN, or counted. */
static bool made(struct join *j)
{
	struct q2e_diff_entries *l;

	if (!j->counted)
		return !j->fn || j->fn(j->arg, &j->e);
	l = &j->counted->groups[j->g];
	if (strcmp(j->tally->last_symbol, j->e.symbol) != 0) {
		l->structures++;
		snprintf(j->tally->last_symbol, sizeof(j->tally->last_symbol),
			 "%s", j->e.symbol);
	}
	l->n++;
	l->changed += j->e.count;
	return true;
}

static bool on_step(void *arg, const struct diff_step *s)
{
	struct join *j = arg;

	/* The guest ranges are the active image's: a snapshot's tables
	 * make none. */
	if (j->counted && j->g != Q2E_DIFF_G_SNAPSHOT_L2)
		count_range(j, s);
	else if (!j->counted && !range_of(j, s))
		return false;
	if (!j->fn && !j->counted)
		return true;
	if (j->open && continues(j, s))
		return true;
	if (j->open && !made(j))
		return false;
	open_change(j, s);
	return true;
}

/* The steps of group G, from the pairs or the walk that has them; false
 * if J stopped them, or the walk failed (diff_walk_error() says why). */
static bool steps(const struct q2e_diff *d, enum q2e_diff_group g,
		  struct join *j)
{
	bool go = true;

	j->g = g;
	if (diff_pairs_has(d->pairs, g))
		go = diff_pairs_steps(d->pairs, g, on_step, j);
	else if (diff_walk_has(d->walk, g))
		go = diff_walk_steps(d->walk, g, on_step, j);
	if (!go)
		return false;
	if (j->open && (j->fn || j->counted) && !made(j))
		return false;
	if (j->range_fn && j->ropen[j->range_kind] &&
	    !j->range_fn(j->range_arg, &j->r[j->range_kind]))
		return false;
	return true;
}

bool diff_runs_changes(const struct q2e_diff *d, enum q2e_diff_group g,
		       bool meanings, diff_entry_fn *fn, void *arg)
{
	struct join j = { .fn = fn, .arg = arg, .meanings = meanings };

	if (g == Q2E_DIFF_G_L1 || g == Q2E_DIFF_G_REFCOUNT_TABLE)
		return diff_pointer_changes(d, g, meanings, fn, arg);
	return steps(d, g, &j);
}

void diff_runs_ranges(const struct q2e_diff *d, enum q2e_diff_group g,
		      int kind, diff_range_fn *fn, void *arg)
{
	struct join j = { .range_kind = kind, .range_fn = fn,
			  .range_arg = arg,
			  .counted_ranges = kind_ranges((struct q2e_diff *)d,
							kind) };

	steps(d, g, &j);
}

int diff_runs_tally(struct q2e_diff *d, enum q2e_diff_group g,
		    struct q2e_error *err)
{
	struct tally t = { 0 };
	struct join j = { .counted = d, .tally = &t };

	if (!steps(d, g, &j))
		return diff_walk_error(d->walk, err);
	return 0;
}

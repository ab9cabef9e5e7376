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
 *
 * A pair of tables that several entries name is stepped through once,
 * into a digest of what its steps make in a join of their own (its
 * changes, its ranges of each kind): each entry is then given what the
 * digest says, moved to its own guest or host bytes, in place of its
 * steps.  That is what the steps would make: a change does not run from
 * one entry into the next, whose symbol is another, and a range joins
 * the one before only at its first step.  So the summary costs a few
 * operations an entry, and the changes and ranges shown one each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/array.h"
#include "view/diff_int.h"

struct digest_make;
static bool digest_change(struct digest_make *m);

/* The counts of a group, for the summary. */
struct tally {
	char last_symbol[64];
};

/* Where the steps go: made into changes for FN, into the ranges of one
 * kind of change for RANGE_FN, or counted into the result. */
struct join {
	struct q2e_diff *counted;	/* the tally's result, or NULL */
	struct tally *tally;
	struct digest_make *digest;	/* the digest made, or NULL */
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

	if (j->digest)
		return digest_change(j->digest);
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

/* Step S continues the open change, or that one is made and S opens
 * another. */
static bool join_change(struct join *j, const struct diff_step *s)
{
	if (j->open && continues(j, s))
		return true;
	if (j->open && !made(j))
		return false;
	open_change(j, s);
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
	return join_change(j, s);
}

/* A change of a digest, as the step that opened it grown to its count. */
struct digest_change {
	int kind;
	uint64_t index, count, old, new, old_bitmap, new_bitmap;
	uint64_t old_step, new_step;
	uint64_t start, length;	/* from the entry's first byte */
};

/* The ranges of one kind of change in a digest, and their units. */
struct digest_ranges {
	struct q2e_diff_range *v;	/* from the entry's first byte */
	size_t n, cap;
	uint64_t units;
};

struct diff_digest {
	struct digest_change *c;
	size_t n, cap;
	uint64_t changed;	/* the changes' counts, in all */
	enum q2e_diff_vtype type;
	bool has_bitmap, l2;	/* L2 entries: decoded for the meanings */
	struct digest_ranges r[DIFF_NKINDS];
	size_t bytes;
};

/* A digest being made: the join of its steps. */
struct digest_make {
	struct join j;
	struct diff_digest *dg;
	uint64_t base, unit;
	size_t budget;
};

/* Room for NEED elements of ELEM bytes in *ARRAYP, within the budget. */
static bool digest_room(struct digest_make *m, void *arrayp, size_t *cap,
			size_t need, size_t elem)
{
	size_t was = *cap;

	if (q2e_grow_array(arrayp, cap, need, elem) < 0)
		return false;
	m->dg->bytes += (*cap - was) * elem;
	return m->dg->bytes <= m->budget;
}

static bool digest_range(struct digest_make *m, int kind,
			 const struct q2e_diff_range *r)
{
	struct digest_ranges *l = &m->dg->r[kind];

	if (!digest_room(m, &l->v, &l->cap, l->n + 1, sizeof(*l->v)))
		return false;
	l->v[l->n++] = (struct q2e_diff_range){ r->start - m->base, r->length };
	return true;
}

/* The change open in the digest's join, made whole. */
static bool digest_change(struct digest_make *m)
{
	struct diff_digest *dg = m->dg;
	const struct q2e_diff_entry *e = &m->j.e;

	if (!digest_room(m, &dg->c, &dg->cap, dg->n + 1, sizeof(*dg->c)))
		return false;
	dg->c[dg->n++] = (struct digest_change){
		.kind = m->j.kind, .index = e->index, .count = e->count,
		.old = e->old.num, .new = e->new.num,
		.old_bitmap = e->old.bitmap, .new_bitmap = e->new.bitmap,
		.old_step = e->old_step, .new_step = e->new_step,
		.start = e->range_start - m->base, .length = e->range_length,
	};
	dg->changed += e->count;
	return true;
}

/* A step of the entry whose digest is made: joined as on_step() joins
 * it, from nothing before. */
static bool digest_step(void *arg, const struct diff_step *s)
{
	struct digest_make *m = arg;
	struct join *j = &m->j;
	struct q2e_diff_range ended;
	bool was;

	m->dg->r[s->kind].units += s->length / m->unit;
	if (!range_join(j, s, &ended, &was) && was &&
	    !digest_range(m, s->kind, &ended))
		return false;
	if (!join_change(j, s))
		return false;
	m->dg->type = s->type;
	m->dg->has_bitmap = s->has_bitmap;
	m->dg->l2 = s->x && s->y;
	return true;
}

struct diff_digest *diff_digest_make(diff_walk_fn *walk, void *walk_arg,
				     uint64_t base, uint64_t unit,
				     size_t budget)
{
	struct digest_make m = { .base = base, .unit = unit,
				 .budget = budget };
	bool ok;

	m.dg = calloc(1, sizeof(*m.dg));
	if (!m.dg)
		return NULL;
	m.dg->bytes = sizeof(*m.dg);
	m.j.digest = &m;
	ok = m.dg->bytes <= budget && unit && walk(walk_arg, digest_step, &m);
	if (ok && m.j.open)
		ok = made(&m.j);
	for (int k = 0; ok && k < DIFF_NKINDS; k++)
		if (m.j.ropen[k])
			ok = digest_range(&m, k, &m.j.r[k]);
	if (!ok) {
		diff_digest_free(m.dg);
		return NULL;
	}
	return m.dg;
}

size_t diff_digest_bytes(const struct diff_digest *dg)
{
	return dg->bytes;
}

void diff_digest_free(struct diff_digest *dg)
{
	if (!dg)
		return;
	for (int k = 0; k < DIFF_NKINDS; k++)
		free(dg->r[k].v);
	free(dg->c);
	free(dg);
}

/* Change C of digest DG as a step of the entry from BASE named SYMBOL;
 * X and Y hold its entries, decoded for the meanings. */
static void change_step(const struct join *j, const struct diff_digest *dg,
			const struct digest_change *c,
			const struct diff_pair_geom *geom, uint64_t base,
			const char *symbol, struct qcow2_l2_entry *x,
			struct qcow2_l2_entry *y, struct diff_step *s)
{
	*s = (struct diff_step){
		.symbol = symbol, .kind = c->kind, .index = c->index,
		.count = c->count, .type = dg->type, .old = c->old,
		.new = c->new, .has_bitmap = dg->has_bitmap,
		.old_bitmap = c->old_bitmap, .new_bitmap = c->new_bitmap,
		.old_step = c->old_step, .new_step = c->new_step,
		.start = base + c->start, .length = c->length,
	};
	if (dg->l2 && j->meanings) {
		qcow2_l2_entry_decode(c->old, c->old_bitmap, &geom->l2a, x);
		qcow2_l2_entry_decode(c->new, c->new_bitmap, &geom->l2b, y);
		s->x = x;
		s->y = y;
	}
}

/* The ranges L of KIND from BASE, counted as count_range() counts their
 * steps: only the first can join the range before. */
static void count_digest_ranges(struct join *j, const struct digest_ranges *l,
				int kind, uint64_t base)
{
	struct q2e_diff_ranges *c = kind_ranges(j->counted, kind);
	const struct q2e_diff_range *first = &l->v[0], *last = &l->v[l->n - 1];
	struct q2e_diff_range *r = &j->r[kind];

	c->units += l->units;
	c->n += l->n;
	if (j->ropen[kind] && r->start + r->length == base + first->start) {
		r->length += first->length;
		c->n--;
	} else {
		*r = (struct q2e_diff_range){ base + first->start,
					      first->length };
	}
	if (l->n > 1)
		*r = (struct q2e_diff_range){ base + last->start, last->length };
	j->ropen[kind] = true;
	c->last_start = r->start;
	c->last_end = base + last->start + last->length;
}

/* Digest DG counted for the entry from BASE named SYMBOL, in a few
 * operations: its changes but the last are made at once (each of its
 * symbol), the last is left open, as its steps would leave them. */
static enum diff_replay replay_tally(struct join *j,
				     const struct diff_digest *dg,
				     const struct diff_pair_geom *geom,
				     uint64_t base, const char *symbol)
{
	const struct digest_change *last = &dg->c[dg->n - 1];
	struct q2e_diff_entries *l = &j->counted->groups[j->g];
	struct diff_step s;

	for (int k = 0; j->g != Q2E_DIFF_G_SNAPSHOT_L2 && k < DIFF_NKINDS; k++)
		if (dg->r[k].n)
			count_digest_ranges(j, &dg->r[k], k, base);
	if (j->open)
		made(j);
	if (dg->n > 1) {
		if (strcmp(j->tally->last_symbol, symbol) != 0) {
			l->structures++;
			snprintf(j->tally->last_symbol,
				 sizeof(j->tally->last_symbol), "%s", symbol);
		}
		l->n += dg->n - 1;
		l->changed += dg->changed - last->count;
	}
	change_step(j, dg, last, geom, base, symbol, NULL, NULL, &s);
	open_change(j, &s);
	return DIFF_REPLAY_DONE;
}

/* The ranges of the kind shown in digest DG, from BASE, as range_of()
 * gives their steps' ranges: only the first can join the range before. */
static enum diff_replay replay_ranges(struct join *j,
				      const struct diff_digest *dg,
				      uint64_t base)
{
	const struct q2e_diff_ranges *c = j->counted_ranges;
	const struct digest_ranges *l = &dg->r[j->range_kind];
	struct q2e_diff_range *r = &j->r[j->range_kind];
	bool *open = &j->ropen[j->range_kind];

	for (size_t i = 0; i < l->n; i++) {
		uint64_t start = base + l->v[i].start;

		if (*open && r->start + r->length == start) {
			r->length += l->v[i].length;
			continue;
		}
		if (*open && !j->range_fn(j->range_arg, r))
			return DIFF_REPLAY_STOP;
		if (start == c->last_start) {
			*open = false;
			*r = (struct q2e_diff_range){ c->last_start,
						      c->last_end - c->last_start };
			j->range_fn(j->range_arg, r);
			return DIFF_REPLAY_STOP;
		}
		*r = (struct q2e_diff_range){ start, l->v[i].length };
		*open = true;
	}
	return DIFF_REPLAY_DONE;
}

/*
 * What digest DG says of the entry from BASE named SYMBOL, for J: its
 * ranges, counts or changes.  A change of the same symbol open before it
 * could take its first step (no two entries of a pair have one symbol,
 * but a snapshot's tables borrow their first owner's): it is walked.
 */
static enum diff_replay on_digest(void *arg, const struct diff_digest *dg,
				  const struct diff_pair_geom *geom,
				  uint64_t base, const char *symbol)
{
	struct join *j = arg;
	struct qcow2_l2_entry x, y;
	struct diff_step s;

	if (j->range_fn)
		return replay_ranges(j, dg, base);
	if (!dg->n || (!j->fn && !j->counted))
		return DIFF_REPLAY_DONE;
	if (j->open && strcmp(j->e.symbol, symbol) == 0)
		return DIFF_REPLAY_WALK;
	if (j->counted)
		return replay_tally(j, dg, geom, base, symbol);
	for (size_t i = 0; i < dg->n; i++) {
		change_step(j, dg, &dg->c[i], geom, base, symbol, &x, &y, &s);
		if (!on_step(j, &s))
			return DIFF_REPLAY_STOP;
	}
	return DIFF_REPLAY_DONE;
}

/* The steps of group G, from the pairs or the walk that has them; false
 * if J stopped them, or the walk failed (diff_walk_error() says why). */
static bool steps(const struct q2e_diff *d, enum q2e_diff_group g,
		  struct join *j)
{
	const struct diff_sink sink = { on_step, on_digest, j };
	bool go = true;

	j->g = g;
	if (diff_pairs_has(d->pairs, g))
		go = diff_pairs_steps(d->pairs, g, &sink);
	else if (diff_walk_has(d->walk, g))
		go = diff_walk_steps(d->walk, g, &sink);
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

	if (diff_pairs_has(d->pairs, g))
		diff_pairs_digest(d->pairs, g, d->unit);
	if (!steps(d, g, &j))
		return diff_walk_error(d->walk, err);
	return 0;
}

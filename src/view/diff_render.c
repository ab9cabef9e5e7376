/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Rendering of a diff, once, through either q2e_out backend:
 *   - a summary per structure kind, what a person reads first;
 *   - the named changes of each kind (l2_table_0[2400..2401]), old and new
 *     raw values (hex strings: jq and JavaScript lose integers above 2^53)
 *     and what they mean;
 *   - the tables that appeared, disappeared or moved;
 *   - the guest ranges (L2) and host ranges (refcounts) of the changes.
 *
 * The format-dependent choices, all made in q2e_diff_render(): human
 * output shows the first HUMAN_LIMIT changes of each kind (all with
 * --verbose), leaves out what did not change and the fields its change
 * name already says, and sums up each kind in one line; JSON has every
 * key and every change, and the summary as numbers.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "view/diff_int.h"

#define HUMAN_LIMIT 5
#define JSON_MAX_INT (1ULL << 53)

struct render {
	struct q2e_out *o;
	bool all;		/* every key, even empty lists */
	bool detail;		/* symbol, member, index, count apart */
	bool summary_lines;	/* a kind's summary in one line */
	size_t limit;		/* entries shown per list */
};

/* "more  N" after a list cut short. */
static void more_out(const struct render *r, size_t shown, size_t n)
{
	if (shown < n)
		q2e_out_uint(r->o, "more", n - shown);
}

static void value_out(struct q2e_out *o, const char *key,
		      const struct q2e_diff_value *v, enum q2e_color c)
{
	switch (v->type) {
	case Q2E_DIFF_V_RAW:
		q2e_out_hex_string(o, key, v->num, c);
		break;
	case Q2E_DIFF_V_NUM:
		if (v->num > JSON_MAX_INT)
			q2e_out_hex_string(o, key, v->num, c);
		else
			q2e_out_uint_color(o, key, v->num, c);
		break;
	case Q2E_DIFF_V_STR:
		q2e_out_str_color(o, key, v->str ? v->str : "", c);
		break;
	case Q2E_DIFF_V_NONE:
		break;
	}
}

/* One side of a change: "old", "old-meaning", "old-bitmap". */
static void side_out(struct q2e_out *o, const char *side,
		     const struct q2e_diff_value *v, enum q2e_color c)
{
	char key[32];

	if (v->type == Q2E_DIFF_V_NONE)
		return;
	value_out(o, side, v, c);
	snprintf(key, sizeof(key), "%s-meaning", side);
	if (v->meaning)
		q2e_out_str_color(o, key, v->meaning, c);
	snprintf(key, sizeof(key), "%s-bitmap", side);
	if (v->has_bitmap)
		q2e_out_hex_string(o, key, v->bitmap, c);
}

/* "l2_table_0[2400..2401]", "qcow2_header.l1_size", "snapshot_2". */
static void entry_name(const struct q2e_diff_entry *e, char *buf, size_t size)
{
	int n;

	if (!e->indexed)
		n = snprintf(buf, size, "%s", e->symbol);
	else if (e->count == 1)
		n = snprintf(buf, size, "%s[%" PRIu64 "]", e->symbol, e->index);
	else
		n = snprintf(buf, size, "%s[%" PRIu64 "..%" PRIu64 "]",
			     e->symbol, e->index, e->index + e->count - 1);
	if (e->member && n >= 0 && (size_t)n < size)
		snprintf(buf + n, size - (size_t)n, ".%s", e->member);
}

static void entry_out(const struct render *r, enum q2e_diff_group g,
		      const struct q2e_diff_entry *e)
{
	struct q2e_out *o = r->o;
	bool guest = g == Q2E_DIFF_G_L2 || g == Q2E_DIFF_G_SNAPSHOT_L2 ||
		     g == Q2E_DIFF_G_BITMAP_DATA;
	char name[256];

	entry_name(e, name, sizeof(name));
	q2e_out_object(o, NULL);
	q2e_out_str_color(o, "name", name, Q2E_COLOR_BOLD);
	if (r->detail) {
		q2e_out_str(o, "symbol", e->symbol);
		if (e->member)
			q2e_out_str(o, "member", e->member);
		if (e->indexed) {
			q2e_out_uint(o, "index", e->index);
			q2e_out_uint(o, "count", e->count);
		}
	}
	q2e_out_str(o, "change", e->change);
	side_out(o, "old", &e->old, Q2E_COLOR_RED);
	side_out(o, "new", &e->new, Q2E_COLOR_GREEN);
	if (e->has_range) {
		q2e_out_hex_string(o, guest ? "guest-start" : "host-start",
				   e->range_start, Q2E_COLOR_NONE);
		q2e_out_hex_string(o, guest ? "guest-length" : "host-length",
				   e->range_length, Q2E_COLOR_NONE);
	}
	if (e->has_bits) {
		q2e_out_uint(o, "bits-set", e->bits_set);
		q2e_out_uint(o, "bits-cleared", e->bits_cleared);
	}
	q2e_out_end(o);
}

/* What a kind's changes count: fields, entries or clusters. */
static const char *unit_noun(enum q2e_diff_group g, uint64_t n)
{
	switch (g) {
	case Q2E_DIFF_G_BITMAP_TABLE:
	case Q2E_DIFF_G_L1:
	case Q2E_DIFF_G_L2:
	case Q2E_DIFF_G_SNAPSHOT_L2:
	case Q2E_DIFF_G_REFCOUNT_TABLE:
	case Q2E_DIFF_G_REFCOUNT_BLOCK:
		return n == 1 ? "entry" : "entries";
	case Q2E_DIFF_G_BITMAP_DATA:
		return n == 1 ? "cluster" : "clusters";
	default:
		return n == 1 ? "change" : "changes";
	}
}

static void summary_out(const struct render *r, const struct q2e_diff *d)
{
	struct q2e_out *o = r->o;

	q2e_out_object(o, "summary");
	for (int g = 0; g < Q2E_DIFF_G_COUNT; g++) {
		const struct q2e_diff_entries *l = &d->groups[g];
		char line[128];

		if (!l->n && !r->all)
			continue;
		if (r->summary_lines) {
			snprintf(line, sizeof(line), "%" PRIu64 " %s in %" PRIu64
				 " %s", l->changed, unit_noun(g, l->changed), l->structures,
				 l->structures == 1 ? "structure" : "structures");
			q2e_out_str(o, q2e_diff_group_name(g), line);
			continue;
		}
		q2e_out_object(o, q2e_diff_group_name(g));
		q2e_out_uint(o, "structures", l->structures);
		q2e_out_uint(o, unit_noun(g, 2), l->changed);
		q2e_out_end(o);
	}
	if (d->ntables || r->all)
		q2e_out_uint(o, "tables-moved-or-resized", d->ntables);
	q2e_out_end(o);
}

/* Changes made as they are rendered (diff_runs.c), up to the limit. */
struct made {
	const struct render *r;
	enum q2e_diff_group g;
	size_t shown;
};

static bool made_change(void *arg, const struct q2e_diff_entry *e)
{
	struct made *m = arg;

	if (m->shown >= m->r->limit)
		return false;
	entry_out(m->r, m->g, e);
	m->shown++;
	return true;
}

static bool made_range(void *arg, const struct q2e_diff_range *range)
{
	struct made *m = arg;

	if (m->shown >= m->r->limit)
		return false;
	q2e_out_object(m->r->o, NULL);
	q2e_out_hex_string(m->r->o, "start", range->start, Q2E_COLOR_NONE);
	q2e_out_hex_string(m->r->o, "length", range->length, Q2E_COLOR_NONE);
	q2e_out_end(m->r->o);
	m->shown++;
	return true;
}

static void changes_out(const struct render *r, const struct q2e_diff *d)
{
	struct q2e_out *o = r->o;

	q2e_out_object(o, "changes");
	for (int g = 0; g < Q2E_DIFF_G_COUNT; g++) {
		const struct q2e_diff_entries *l = &d->groups[g];
		struct made m = { r, (enum q2e_diff_group)g, 0 };

		if (!l->n && !r->all)
			continue;
		q2e_out_array(o, q2e_diff_group_name(g));
		/* JSON lists every group: a walk for none is a walk wasted */
		if (l->n)
			diff_runs_changes(d, (enum q2e_diff_group)g, true,
					  made_change, &m);
		for (; l->v && m.shown < l->n && m.shown < r->limit; m.shown++)
			entry_out(r, (enum q2e_diff_group)g, &l->v[m.shown]);
		q2e_out_end(o);
		more_out(r, m.shown, l->n);
	}
	q2e_out_end(o);
}

static const char *table_change_name(enum q2e_diff_change c)
{
	switch (c) {
	case Q2E_DIFF_ADDED:
		return "appeared";
	case Q2E_DIFF_REMOVED:
		return "disappeared";
	case Q2E_DIFF_MOVED:
		return "moved";
	case Q2E_DIFF_RESIZED:
		return "resized";
	case Q2E_DIFF_CHANGE_COUNT:
		break;
	}
	return "unknown";
}

static void table_out(struct q2e_out *o, const struct q2e_diff_table *t)
{
	q2e_out_object(o, NULL);
	q2e_out_str_color(o, "name", t->name, Q2E_COLOR_BOLD);
	switch (t->change) {
	case Q2E_DIFF_ADDED:
		q2e_out_hex_string(o, "offset", t->new_offset, Q2E_COLOR_GREEN);
		q2e_out_uint(o, "size", t->new_size);
		break;
	case Q2E_DIFF_REMOVED:
		q2e_out_hex_string(o, "offset", t->old_offset, Q2E_COLOR_RED);
		q2e_out_uint(o, "size", t->old_size);
		break;
	case Q2E_DIFF_MOVED:
		q2e_out_hex_string(o, "old-offset", t->old_offset, Q2E_COLOR_RED);
		q2e_out_hex_string(o, "new-offset", t->new_offset,
				   Q2E_COLOR_GREEN);
		if (t->old_size != t->new_size) {
			q2e_out_uint_color(o, "old-size", t->old_size,
					   Q2E_COLOR_RED);
			q2e_out_uint_color(o, "new-size", t->new_size,
					   Q2E_COLOR_GREEN);
		}
		break;
	default:
		q2e_out_hex_string(o, "offset", t->new_offset, Q2E_COLOR_NONE);
		q2e_out_uint_color(o, "old-size", t->old_size, Q2E_COLOR_RED);
		q2e_out_uint_color(o, "new-size", t->new_size, Q2E_COLOR_GREEN);
		break;
	}
	q2e_out_end(o);
}

static void tables_out(const struct render *r, const struct q2e_diff *d)
{
	struct q2e_out *o = r->o;

	if (!d->ntables && !r->all)
		return;
	q2e_out_object(o, "tables");
	for (int c = 0; c < Q2E_DIFF_CHANGE_COUNT; c++) {
		size_t n = 0, shown = 0;

		for (size_t i = 0; i < d->ntables; i++)
			n += d->tables[i].change == (enum q2e_diff_change)c;
		if (!n && !r->all)
			continue;
		q2e_out_array(o, table_change_name((enum q2e_diff_change)c));
		for (size_t i = 0; i < d->ntables && shown < r->limit; i++) {
			if (d->tables[i].change != (enum q2e_diff_change)c)
				continue;
			table_out(o, &d->tables[i]);
			shown++;
		}
		q2e_out_end(o);
		more_out(r, shown, n);
	}
	q2e_out_end(o);
}

/* The ranges of the changes of KIND in group GROUP, as they are made,
 * counted in G. */
static void ranges_out(const struct render *r, const struct q2e_diff *d,
		       enum q2e_diff_group group, int kind,
		       const struct q2e_diff_ranges *g)
{
	struct q2e_out *o = r->o;
	struct made m = { r, group, 0 };

	if (!g->n && !r->all)
		return;
	q2e_out_object(o, kind == DIFF_KIND_ROSE   ? "refcount-rose"
			  : kind == DIFF_KIND_FELL ? "refcount-fell"
						   : diff_kind_name(kind));
	q2e_out_uint(o, "clusters", g->units);
	q2e_out_array(o, "ranges");
	if (g->n)
		diff_runs_ranges(d, group, kind, made_range, &m);
	q2e_out_end(o);
	more_out(r, m.shown, g->n);
	q2e_out_end(o);
}

static void all_ranges_out(const struct render *r, const struct q2e_diff *d)
{
	struct q2e_out *o = r->o;
	bool l2 = false;

	for (int k = 0; k < Q2E_DIFF_L2_COUNT; k++)
		l2 |= d->l2[k].n > 0;
	if (l2 || r->all) {
		q2e_out_object(o, "guest-ranges");
		for (int k = 0; k < Q2E_DIFF_L2_COUNT; k++)
			ranges_out(r, d, Q2E_DIFF_G_L2, k, &d->l2[k]);
		q2e_out_end(o);
	}
	if (d->refcount_rose.n || d->refcount_fell.n || r->all) {
		q2e_out_object(o, "host-ranges");
		ranges_out(r, d, Q2E_DIFF_G_REFCOUNT_BLOCK, DIFF_KIND_ROSE,
			   &d->refcount_rose);
		ranges_out(r, d, Q2E_DIFF_G_REFCOUNT_BLOCK, DIFF_KIND_FELL,
			   &d->refcount_fell);
		q2e_out_end(o);
	}
}

int q2e_diff_render(const struct q2e_diff *d, struct q2e_out *o,
		    bool verbose, struct q2e_error *err)
{
	bool json = q2e_out_format(o) == Q2E_FORMAT_JSON;
	struct render r = {
		.o = o,
		.all = json,
		.detail = json,
		.summary_lines = !json,
		.limit = json || verbose ? SIZE_MAX : HUMAN_LIMIT,
	};
	uint64_t n = q2e_diff_count(d);

	q2e_out_object(o, NULL);
	q2e_out_str(o, "old", d->old_path);
	q2e_out_str(o, "new", d->new_path);
	q2e_out_bool(o, "same-metadata", n == 0);
	q2e_out_uint(o, "differences", n);
	q2e_out_uint(o, "cluster-unit", d->unit);
	if (d->not_compared)
		q2e_out_str(o, "not-compared", d->not_compared);
	if (n || r.all) {
		summary_out(&r, d);
		changes_out(&r, d);
	}
	tables_out(&r, d);
	all_ranges_out(&r, d);
	q2e_out_end(o);
	return diff_walk_error(d->walk, err);
}

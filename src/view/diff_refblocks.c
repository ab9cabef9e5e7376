/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The refcount blocks whose counts differ, when both images have one
 * geometry: kept as a copy of each block of the pair, and made into
 * changes and host ranges each time they are counted or rendered, rather
 * than kept a change each.  Two 12 KB sparse files whose refcount tables
 * name one block 512 times, the counts differing one cluster in two, made
 * 8 million changes (1.9 GB).  A pair of blocks that several refcount
 * table entries name is copied once, so memory follows the blocks in the
 * files; the changes themselves are as many as before, and so is JSON.
 *
 * The changes come out as the eager path of diff_entries.c makes them: a
 * run of entries with the same old and new counts is one change, and a
 * host range joins the last one of its kind where they touch.
 */
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/array.h"
#include "qcow2elf/qcow2.h"
#include "view/diff_int.h"

/* Refcount table entry INDEX: its blocks in the two images differ. */
struct refblock_rec {
	uint64_t index;
	const uint8_t *a, *b;	/* the copies */
	char symbol[64];
};

/* A copy of a pair of blocks, by their offsets in the two files. */
struct pair_copy {
	uint64_t oa, ob;
	uint8_t *bytes;		/* A's block, then B's; NULL: a free slot */
};

struct q2e_diff_refblocks {
	struct refblock_rec *v;
	size_t n, cap;
	struct pair_copy *slots;	/* open addressing, a power of two */
	size_t nslots, used;
	uint64_t cs;
	unsigned order_a, order_b;
	uint64_t per_block;	/* refcounts a block */
	uint64_t size;		/* the larger file: no change past it */
};

static size_t slot_of(const struct q2e_diff_refblocks *rb, uint64_t oa,
		      uint64_t ob)
{
	size_t mask = rb->nslots - 1;
	size_t i = (size_t)((oa * 0x9e3779b97f4a7c15ULL ^ ob) *
			    0xbf58476d1ce4e5b9ULL >> 17) & mask;

	while (rb->slots[i].bytes &&
	       (rb->slots[i].oa != oa || rb->slots[i].ob != ob))
		i = (i + 1) & mask;
	return i;
}

static int grow_slots(struct q2e_diff_refblocks *rb)
{
	struct q2e_diff_refblocks n = *rb;

	n.nslots = rb->nslots ? rb->nslots * 2 : 64;
	n.slots = calloc(n.nslots, sizeof(*n.slots));
	if (!n.slots)
		return -1;
	for (size_t i = 0; i < rb->nslots; i++)
		if (rb->slots[i].bytes)
			n.slots[slot_of(&n, rb->slots[i].oa, rb->slots[i].ob)] =
				rb->slots[i];
	free(rb->slots);
	rb->slots = n.slots;
	rb->nslots = n.nslots;
	return 0;
}

const uint8_t *diff_refblocks_find(const struct q2e_diff *d, uint64_t oa,
				   uint64_t ob)
{
	const struct q2e_diff_refblocks *rb = d->refblocks;

	if (!rb || !rb->nslots)
		return NULL;
	return rb->slots[slot_of(rb, oa, ob)].bytes;
}

static struct q2e_diff_refblocks *refblocks_new(const struct q2e_image *a,
						const struct q2e_image *b)
{
	struct q2e_diff_refblocks *rb = calloc(1, sizeof(*rb));

	if (!rb)
		return NULL;
	rb->cs = b->cluster_size;
	rb->order_a = a->hdr.refcount_order;
	rb->order_b = b->hdr.refcount_order;
	rb->per_block = b->cluster_size * 8 / b->refcount_bits;
	rb->size = a->file_size > b->file_size ? a->file_size : b->file_size;
	return rb;
}

int diff_refblocks_add(struct q2e_diff *d, const struct q2e_image *a,
		       const struct q2e_image *b, uint64_t index,
		       uint64_t oa, uint64_t ob, const uint8_t *ba,
		       const uint8_t *bb, const char *symbol,
		       struct q2e_error *err)
{
	struct q2e_diff_refblocks *rb = d->refblocks;
	const uint8_t *copy = diff_refblocks_find(d, oa, ob);
	struct refblock_rec *r;

	if (!rb && !(rb = d->refblocks = refblocks_new(a, b)))
		return diff_nomem(err);
	if (!copy) {
		size_t i;
		uint8_t *bytes;

		if ((rb->used + 1) * 2 > rb->nslots && grow_slots(rb) < 0)
			return diff_nomem(err);
		if (!(bytes = malloc((size_t)rb->cs * 2)))
			return diff_nomem(err);
		memcpy(bytes, ba, (size_t)rb->cs);
		memcpy(bytes + rb->cs, bb, (size_t)rb->cs);
		i = slot_of(rb, oa, ob);
		rb->slots[i] = (struct pair_copy){ oa, ob, bytes };
		rb->used++;
		copy = bytes;
	}
	if (q2e_grow(rb->v, rb->cap, rb->n + 1) < 0)
		return diff_nomem(err);
	r = &rb->v[rb->n++];
	r->index = index;
	r->a = copy;
	r->b = copy + rb->cs;
	snprintf(r->symbol, sizeof(r->symbol), "%s", symbol);
	return 0;
}

/* Whole chunks of identical bytes hold no change. */
#define SAME_CHUNK 512

/*
 * Calls FN with each change of record R, in entry order, runs joined,
 * until it returns false: then false.
 */
static bool rec_changes(const struct q2e_diff_refblocks *rb,
			const struct refblock_rec *r, diff_entry_fn *fn,
			void *arg)
{
	uint64_t n = rb->per_block, cs = rb->cs;
	uint64_t per_chunk = SAME_CHUNK * 8 / (1U << rb->order_b);
	struct q2e_diff_entry e = { .symbol = (char *)r->symbol };
	bool open = false;

	for (uint64_t j = 0; j < n; j++) {
		uint64_t host, x, y;
		const char *change;

		while (j % per_chunk == 0 && n - j >= per_chunk &&
		       memcmp(r->a + j / per_chunk * SAME_CHUNK,
			      r->b + j / per_chunk * SAME_CHUNK, SAME_CHUNK) == 0)
			j += per_chunk;
		if (j == n)
			break;
		host = (r->index * n + j) * cs;
		if (host >= rb->size)
			break;
		x = qcow2_refcount_get(r->a, (size_t)cs, rb->order_a, j);
		y = qcow2_refcount_get(r->b, (size_t)cs, rb->order_b, j);
		if (x == y)
			continue;
		change = y > x ? "rose" : "fell";
		if (open && e.change == change && e.index + e.count == j &&
		    e.old.num == x && e.new.num == y) {
			e.count++;
			e.range_length += cs;
			continue;
		}
		if (open && !fn(arg, &e))
			return false;
		e.indexed = true;
		e.index = j;
		e.count = 1;
		e.change = change;
		e.old = (struct q2e_diff_value){ .type = Q2E_DIFF_V_NUM, .num = x };
		e.new = (struct q2e_diff_value){ .type = Q2E_DIFF_V_NUM, .num = y };
		e.has_range = true;
		e.range_start = host;
		e.range_length = cs;
		open = true;
	}
	return !open || fn(arg, &e);
}

bool diff_refblocks_changes(const struct q2e_diff_refblocks *rb,
			    diff_entry_fn *fn, void *arg)
{
	for (size_t i = 0; rb && i < rb->n; i++)
		if (!rec_changes(rb, &rb->v[i], fn, arg))
			return false;
	return true;
}

/* The host ranges of one kind, joined where they touch. */
struct ranges_walk {
	const char *change;	/* "rose" or "fell" */
	struct q2e_diff_range cur;
	bool open;
	diff_range_fn *fn;
	void *arg;
	bool stopped;
};

static bool range_step(void *arg, const struct q2e_diff_entry *e)
{
	struct ranges_walk *w = arg;

	if (e->change != w->change)
		return true;
	if (w->open && w->cur.start + w->cur.length == e->range_start) {
		w->cur.length += e->range_length;
		return true;
	}
	if (w->open && !w->fn(w->arg, &w->cur)) {
		w->stopped = true;
		return false;
	}
	w->cur = (struct q2e_diff_range){ e->range_start, e->range_length };
	w->open = true;
	return true;
}

void diff_refblocks_ranges(const struct q2e_diff_refblocks *rb, bool rose,
			   diff_range_fn *fn, void *arg)
{
	struct ranges_walk w = {
		.change = rose ? "rose" : "fell", .fn = fn, .arg = arg,
	};

	diff_refblocks_changes(rb, range_step, &w);
	if (w.open && !w.stopped)
		fn(w.arg, &w.cur);
}

/* The counts of the group and of the ranges, for the summary. */
struct tally {
	struct q2e_diff *d;
	const char *last_symbol;
};

static bool count_change(void *arg, const struct q2e_diff_entry *e)
{
	struct tally *t = arg;
	struct q2e_diff_entries *l = &t->d->groups[Q2E_DIFF_G_REFCOUNT_BLOCK];
	struct q2e_diff_ranges *r = e->change[0] == 'r' ? &t->d->refcount_rose
							: &t->d->refcount_fell;

	if (!t->last_symbol || strcmp(t->last_symbol, e->symbol) != 0)
		l->structures++;
	t->last_symbol = e->symbol;
	l->n++;
	l->changed += e->count;
	r->units += e->count;
	return true;
}

static bool count_range(void *arg, const struct q2e_diff_range *range)
{
	(void)range;
	((struct q2e_diff_ranges *)arg)->n++;
	return true;
}

void diff_refblocks_tally(struct q2e_diff *d)
{
	struct tally t = { d, NULL };

	diff_refblocks_changes(d->refblocks, count_change, &t);
	diff_refblocks_ranges(d->refblocks, true, count_range, &d->refcount_rose);
	diff_refblocks_ranges(d->refblocks, false, count_range, &d->refcount_fell);
}

void diff_refblocks_free(struct q2e_diff_refblocks *rb)
{
	if (!rb)
		return;
	for (size_t i = 0; i < rb->nslots; i++)
		free(rb->slots[i].bytes);
	free(rb->slots);
	free(rb->v);
	free(rb);
}

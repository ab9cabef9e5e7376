/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diff of L2 entries and refcounts where the two images' geometries
 * differ (cluster sizes, L2 entry or refcount widths), so that no table
 * of one pairs with a table of the other: both models are walked range
 * by range through their lookups, a step where either image's entry may
 * change (the end of a cluster, of a run of identical entries, of a
 * range with no table).
 *
 * The walk is made again each time the changes are counted or rendered
 * (diff_runs.c), rather than keeping them: a table that many L1 entries
 * name (4 million changed entries from a 208 KB file) or a sparse file
 * whose refcount table names one block many times (8 million refcounts
 * from 16 KB) made as many changes, 1.1 and 2.7 GB.  So it keeps the two
 * images, which must stay open until the diff is freed.  The guest range
 * of one of B's L1 entries whose tables came before is given the digest
 * of its steps instead (diff_windows.c).
 */
#include <stdlib.h>
#include <string.h>

#include "view/diff_int.h"

struct q2e_diff_walk {
	struct q2e_image *a, *b;
	uint64_t unit;		/* of the diff's ranges */
	bool has[Q2E_DIFF_G_COUNT];
	struct q2e_error err;	/* the first read that failed */
	int failed;
	struct diff_pair_geom geom;	/* the layouts, for the digests */
	struct diff_windows *windows;	/* NULL: each window walked */
};

/* True unless RET is an error, which W then keeps (the first). */
static bool walk_ok(struct q2e_diff_walk *w, int ret)
{
	if (!ret)
		return true;
	if (!w->failed)
		w->failed = ret;
	return false;
}

/* The symbol of a table, made again only for another table: the walk
 * names each step, many to a table. */
struct symbol_of {
	const struct q2e_image *img;
	enum q2e_region_kind kind;
	uint64_t table;
	char buf[64];
};

static const char *symbol_of(struct symbol_of *s, const struct q2e_image *img,
			     enum q2e_region_kind kind, uint64_t table)
{
	if (s->img != img || s->kind != kind || s->table != table) {
		diff_symbol(img, kind, 0,
			    kind == Q2E_REGION_L2 ? Q2E_OWNER_ACTIVE
						 : Q2E_OWNER_IMAGE,
			    0, table, s->buf, sizeof(s->buf));
		s->img = img;
		s->kind = kind;
		s->table = table;
	}
	return s->buf;
}

static int l2_lookup(struct q2e_l2_cache *c, uint64_t off,
		     struct qcow2_l2_entry *e, struct q2e_error *err)
{
	int ret = q2e_image_l2_lookup(c, off, e, err);

	/* An unaligned L2 table is a problem of the model, not an error of
	 * the diff: its entries count as unallocated. */
	if (ret == Q2E_ECORRUPT) {
		q2e_error_clear(err);
		memset(e, 0, sizeof(*e));
		e->type = QCOW2_CLUSTER_UNALLOCATED;
		return 0;
	}
	return ret;
}

/* A * B, or UINT64_MAX where it would not fit. */
static uint64_t mul_sat(uint64_t a, uint64_t b)
{
	return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

/*
 * The first index at or past I, below N, where SET(IMG, index), or N: a
 * cursor over a table, so that each entry is looked at once however many
 * steps ask (indexes only grow).
 */
struct next_set {
	uint64_t from, next;	/* [FROM, NEXT) are not set; NEXT is */
};

static uint64_t next_set(struct next_set *c, const struct q2e_image *img,
			 uint64_t i, uint64_t n,
			 bool (*set)(const struct q2e_image *, uint64_t))
{
	if (i < c->from || i > c->next) {
		c->from = i;
		for (c->next = i; c->next < n && !set(img, c->next); c->next++)
			;
	}
	return c->next;
}

/* One image's side of the walk by ranges. */
struct l2_side {
	struct q2e_image *img;
	struct q2e_l2_cache *cache;
	uint64_t span;		/* guest bytes per L1 entry */
	struct next_set mapped;	/* over the L1 table */
	uint64_t run_from, run_end;	/* the last run of identical entries */
};

/*
 * Where entry E, IMG's at guest offset OFF, stops being the same: the next
 * mapped L1 entry where none is mapped (UINT64_MAX past the last), else the
 * end of its run of identical entries (unallocated or zero, with no host
 * offset: a table of zeros, or one past the end of the file, is one run),
 * else the end of its cluster.  *SLOT_END: where OFF's L1 entry ends.
 */
static uint64_t same_until(struct l2_side *s, uint64_t off,
			   const struct qcow2_l2_entry *e, uint64_t *slot_end)
{
	struct q2e_image *img = s->img;
	uint64_t slot = off / s->span, cluster = off >> img->hdr.cluster_bits;
	uint64_t run = 0;

	*slot_end = mul_sat(slot + 1, s->span);
	if (slot >= img->nl1 || !diff_l1_mapped(img, slot)) {
		uint64_t next = next_set(&s->mapped, img, slot, img->nl1,
					 diff_l1_mapped);

		return next < img->nl1 ? mul_sat(next, s->span) : UINT64_MAX;
	}
	/* A run is scanned once: where the other image steps cluster by
	 * cluster through it, scanning it again at each step was quadratic. */
	if (off >= s->run_from && off < s->run_end)
		return s->run_end;
	if (!e->host_offset)
		run = q2e_image_l2_run(s->cache, off, img->l2_entries);
	if (!run)
		return mul_sat(cluster + 1, img->cluster_size);
	s->run_from = off;
	s->run_end = mul_sat(cluster + 1 + run, img->cluster_size);
	return s->run_end;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* The L2 walk: both images' sides, and the windows whose tables come
 * again (NULL where memory ran out: each is walked). */
struct l2_walk {
	struct q2e_diff_walk *w;
	struct l2_side sa, sb;
	struct symbol_of sym;
	struct diff_windows *windows;
};

/*
 * The step from guest offset OFF, to TO at most: a range over which both
 * images' entries stay the same, given to FN where they differ (*GO then
 * says whether it goes on).  *END: where the step ends; *CHANGED: whether
 * the entries differ.  A step that differs ends with one of B's tables,
 * and is whole entries of B, or a part of one.
 */
static int l2_step(struct l2_walk *lw, uint64_t off, uint64_t to,
		   uint64_t *end, bool *changed, diff_step_fn *fn, void *arg,
		   bool *go)
{
	struct q2e_image *b = lw->w->b;
	unsigned bits = b->hdr.cluster_bits;
	uint64_t end_a, end_b, slot_a, slot_b, first, e;
	struct qcow2_l2_entry x, y;
	struct diff_step s;
	int k, ret;

	ret = l2_lookup(lw->sa.cache, off, &x, &lw->w->err);
	if (!ret)
		ret = l2_lookup(lw->sb.cache, off, &y, &lw->w->err);
	if (ret)
		return ret;
	end_a = same_until(&lw->sa, off, &x, &slot_a);
	end_b = same_until(&lw->sb, off, &y, &slot_b);
	e = min_u64(min_u64(end_a, end_b), to);
	k = diff_l2_change(&x, &y);
	*changed = k >= 0;
	*end = e;
	if (k < 0)
		return 0;
	e = min_u64(e, slot_b);
	first = off >> bits;
	if (off & (b->cluster_size - 1))
		e = min_u64(e, mul_sat(first + 1, b->cluster_size));
	else if (e - off >= b->cluster_size)
		e = off + ((e - off) & ~(b->cluster_size - 1));
	s = (struct diff_step){
		.symbol = symbol_of(&lw->sym, b, Q2E_REGION_L2,
				    first / b->l2_entries),
		.kind = k,
		.index = first % b->l2_entries,
		.count = e - off >= b->cluster_size ? (e - off) >> bits : 1,
		.type = Q2E_DIFF_V_RAW, .old = x.raw, .new = y.raw,
		.has_bitmap = b->l2.extended,
		.old_bitmap = x.bitmap, .new_bitmap = y.bitmap,
		.old_step = diff_l2_step(&x, b->cluster_size),
		.new_step = diff_l2_step(&y, b->cluster_size),
		.x = &x, .y = &y, .start = off, .length = e - off,
	};
	*end = e;
	*go = fn(arg, &s);
	return 0;
}

/* The steps of the window from BASE (one of B's L1 entries), for its
 * digest. */
struct window_walk {
	struct l2_walk *lw;
	uint64_t base;
};

static bool walk_window(void *arg, diff_step_fn *fn, void *fn_arg)
{
	const struct window_walk *ww = arg;
	uint64_t to = ww->base + ww->lw->sb.span, end;
	bool go = true, changed;
	int ret = 0;

	for (uint64_t off = ww->base; off < to && !ret && go; off = end)
		ret = l2_step(ww->lw, off, to, &end, &changed, fn, fn_arg,
			      &go);
	return walk_ok(ww->lw->w, ret) && go;
}

/* A's entry at BASE, where the windows are keyed by it; false where it
 * cannot be read (the walk then reads it, and says why). */
static bool window_entry(struct l2_walk *lw, uint64_t base,
			 struct qcow2_l2_entry *x)
{
	struct q2e_error err = { 0 };

	if (!diff_windows_by_entry(lw->windows))
		return true;
	return l2_lookup(lw->sa.cache, base, x, &err) == 0;
}

/* The window from BASE, whole below LIMIT, given as its digest where its
 * tables came before (diff_windows.c), else to be walked. */
static enum diff_replay window_replay(struct l2_walk *lw, uint64_t base,
				      const struct diff_sink *sink)
{
	struct q2e_diff_walk *w = lw->w;
	struct window_walk ww = { lw, base };
	const struct diff_digest *dg;
	struct qcow2_l2_entry x = { 0 };

	if (!window_entry(lw, base, &x))
		return DIFF_REPLAY_WALK;
	dg = diff_windows_digest(lw->windows, base, &x, w->unit, walk_window,
				 &ww);
	if (!dg)
		return DIFF_REPLAY_WALK;
	return sink->replay(sink->arg, dg, &w->geom, base,
			    symbol_of(&lw->sym, w->b, Q2E_REGION_L2,
				      base / lw->sb.span));
}

/*
 * L2 entries, range by range, named by B's tables.  Each step is a range
 * over which both images' entries stay the same, so work follows the
 * entries in the tables, not the virtual size or the smaller cluster: a
 * 2 MiB-cluster table against a 512-byte-cluster image was a billion steps.
 * A change is a step per entry of B (several at once where B's entry
 * repeats), so that it is named as B's table names it.  A window of one
 * of B's L1 entries whose tables came before is given as the digest of
 * its steps; a step without changes that ends inside one ends at its
 * start instead (the windows it covers whole have no change: cutting
 * it at each of them was a step for each, 16 million a table of 2 MiB
 * clusters against 512-byte ones).
 */
static bool l2_steps(struct q2e_diff_walk *w, const struct diff_sink *sink)
{
	struct q2e_image *a = w->a, *b = w->b;
	uint64_t size = a->hdr.size > b->hdr.size ? a->hdr.size : b->hdr.size;
	uint64_t limit = mul_sat(size / w->unit + !!(size % w->unit), w->unit);
	struct l2_walk lw = {
		.w = w,
		.sa = { .img = a, .cache = q2e_l2_cache_new(a),
			.span = a->l2_entries << a->hdr.cluster_bits,
			.mapped = { 1, 0 } },
		.sb = { .img = b, .cache = q2e_l2_cache_new(b),
			.span = b->l2_entries << b->hdr.cluster_bits,
			.mapped = { 1, 0 } },
		.sym = { .table = UINT64_MAX },
		.windows = w->windows,
	};
	uint64_t span = lw.sb.span;
	struct qcow2_l2_entry x = { 0 };
	int ret = lw.sa.cache && lw.sb.cache ? 0 : diff_nomem(&w->err);
	bool go = true, changed;

	for (uint64_t off = 0, end; off < limit && !ret && go; off = end) {
		uint64_t last;

		if (lw.windows && off % span == 0 && limit - off >= span) {
			enum diff_replay how = window_replay(&lw, off, sink);

			if (how == DIFF_REPLAY_STOP || w->failed) {
				go = how != DIFF_REPLAY_STOP;
				break;
			}
			end = off + span;
			if (how == DIFF_REPLAY_DONE)
				continue;
		}
		ret = l2_step(&lw, off, limit, &end, &changed, sink->step,
			      sink->arg, &go);
		/* The windows such a step covers have no change; the one it
		 * ends in is met at its start. */
		last = end / span * span;
		if (!ret && !changed && lw.windows && last > off &&
		    last < end && limit - last >= span &&
		    window_entry(&lw, last, &x) &&
		    diff_windows_repeat(lw.windows, last, &x))
			end = last;
	}
	q2e_l2_cache_free(lw.sa.cache);
	q2e_l2_cache_free(lw.sb.cache);
	return walk_ok(w, ret) && go && !w->failed;
}

static uint64_t per_block(const struct q2e_image *img)
{
	return img->refcount_bits ? img->cluster_size * 8 / img->refcount_bits
				  : 0;
}

/* One image's side of the refcount walk by ranges. */
struct refcount_side {
	struct q2e_image *img;
	uint64_t per_block;	/* clusters per block; 0: no refcounts */
	struct next_set blocks;	/* over the refcount table */
};

static bool has_block(const struct q2e_image *img, uint64_t i)
{
	return diff_block_offset(img, i) != 0;
}

/* Where IMG's refcount for host offset OFF may change: the end of its
 * cluster inside a refcount block, else the start of the next block
 * (UINT64_MAX past the last: the counts are 0 from there on). */
static uint64_t refcount_until(struct refcount_side *s, uint64_t off)
{
	unsigned bits = s->img->hdr.cluster_bits;
	uint64_t c = off >> bits, i, next;

	if (!s->per_block)
		return UINT64_MAX;
	i = c / s->per_block;
	if (diff_block_offset(s->img, i))
		return mul_sat(c + 1, s->img->cluster_size);
	next = next_set(&s->blocks, s->img, i, s->img->nreftable, has_block);
	if (next >= s->img->nreftable)
		return UINT64_MAX;
	return mul_sat(mul_sat(next, s->per_block), s->img->cluster_size);
}

/* Refcounts, range by range (a step per cluster inside a refcount
 * block, one over a range with none), unit by unit where the counts
 * differ, named by B's blocks where B has one, else by A's. */
static bool refcount_steps(struct q2e_diff_walk *w, diff_step_fn *fn,
			   void *arg)
{
	struct q2e_image *a = w->a, *b = w->b;
	uint64_t size = a->file_size > b->file_size ? a->file_size : b->file_size;
	struct refcount_side sa = { a, per_block(a), { 1, 0 } };
	struct refcount_side sb = { b, per_block(b), { 1, 0 } };
	struct symbol_of sym = { .table = UINT64_MAX };
	bool go = true;
	int ret = 0;

	for (uint64_t off = 0, end; off < size && !ret && go; off = end) {
		struct q2e_image *named = b;
		uint64_t x, y, c, per;
		struct diff_step s;

		end = min_u64(refcount_until(&sa, off),
			      refcount_until(&sb, off));
		ret = q2e_image_refcount(a, off >> a->hdr.cluster_bits, &x,
					 &w->err);
		if (!ret)
			ret = q2e_image_refcount(b, off >> b->hdr.cluster_bits,
						 &y, &w->err);
		if (ret || x == y)
			continue;
		end = off + w->unit;
		if (!sb.per_block ||
		    !diff_block_offset(b, (off >> b->hdr.cluster_bits) /
						  sb.per_block))
			named = sa.per_block ? a : b;
		c = off >> named->hdr.cluster_bits;
		per = per_block(named);
		s = (struct diff_step){
			.symbol = symbol_of(&sym, named,
					    Q2E_REGION_REFCOUNT_BLOCK,
					    per ? c / per : 0),
			.kind = y > x ? DIFF_KIND_ROSE : DIFF_KIND_FELL,
			.index = per ? c % per : c, .count = 1,
			.type = Q2E_DIFF_V_NUM, .old = x, .new = y,
			.start = off, .length = w->unit,
		};
		go = fn(arg, &s);
	}
	return walk_ok(w, ret) && go;
}

int diff_walk_add(struct q2e_diff *d, struct q2e_image *a,
		  struct q2e_image *b, enum q2e_diff_group g,
		  struct q2e_error *err)
{
	if (!d->walk) {
		d->walk = calloc(1, sizeof(*d->walk));
		if (!d->walk)
			return diff_nomem(err);
		d->walk->a = a;
		d->walk->b = b;
		d->walk->unit = d->unit;
		d->walk->geom.l2a = a->l2;
		d->walk->geom.l2b = b->l2;
	}
	if (g == Q2E_DIFF_G_L2 && !d->walk->windows)
		d->walk->windows = diff_windows_new(a, b);
	d->walk->has[g] = true;
	return 0;
}

bool diff_walk_has(const struct q2e_diff_walk *w, enum q2e_diff_group g)
{
	return w && w->has[g];
}

bool diff_walk_steps(struct q2e_diff_walk *w, enum q2e_diff_group g,
		     const struct diff_sink *sink)
{
	if (w->failed)
		return false;
	return g == Q2E_DIFF_G_L2 ? l2_steps(w, sink)
				  : refcount_steps(w, sink->step, sink->arg);
}

int diff_walk_error(const struct q2e_diff_walk *w, struct q2e_error *err)
{
	if (!w || !w->failed)
		return 0;
	*err = w->err;
	return w->failed;
}

void diff_walk_free(struct q2e_diff_walk *w)
{
	if (w)
		diff_windows_free(w->windows);
	free(w);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The windows of diff's walk between two geometries (diff_walk.c) whose
 * tables come again: a window is the guest range of one of the new
 * image's L1 entries, and what the walk's steps make over it depends only
 * on the tables both images have there.  The new image's table, and:
 *   - where the old image's L1 entries span as much or more: the old
 *     table the window falls in and where in it (KEY_POS), or, where the
 *     window falls in one of the old image's clusters, its entry;
 *   - where they span less: the old tables of the window's L1 entries,
 *     when they are all one table, or none (a window over several old
 *     tables is walked: its key would be a list).
 * A window whose key came before is given the digest of its steps
 * (diff_runs.c), made at the second window of that key.  Stepping a table
 * that 512 L1 entries name, 2 MiB clusters of alternating entries, against
 * an image of 1 MiB clusters, was 134 million steps (6.9 s).
 *
 * Only windows that can come again are recorded: those whose new table
 * has another owner in the model, or, with none, whose old tables have.  An image whose entries each name a table of their own records
 * none.  The records are at most MAX_WINDOWS, the digests DIGEST_BUDGET
 * bytes: past them, windows are walked as before.
 */
#include <stdlib.h>

#include "qcow2elf/hashmap.h"
#include "view/diff_int.h"

/* Keys recorded: about 130 bytes each, with the map's slots.  Past them,
 * a window whose key is new is walked. */
#define MAX_WINDOWS (1U << 16)
#define DIGEST_BUDGET (64U << 20)

/* Words of a window's key. */
enum { KEY_NEW, KEY_OLD, KEY_POS };

struct window {
	uint64_t first;		/* the base of the first window of the key */
	struct diff_digest *dg;
	bool undigested;	/* tried: over the budget, or a read failed */
};

struct diff_windows {
	const struct q2e_image *a, *b;
	uint64_t span_a, span_b;	/* guest bytes an L1 entry spans */
	struct q2e_map map;		/* key: struct window */
	size_t nwindows, digest_bytes;
};

/* The table L1 entry I of IMG names for the lookups, or 0. */
static uint64_t mapped_offset(const struct q2e_image *img, uint64_t i)
{
	return diff_l1_mapped(img, i) ? diff_l2_offset(img, i) : 0;
}

/* Whether IMG's L2 table at OFF has more than one owner: a table the
 * file holds none of is no region, and reads as zeros, at little cost. */
static bool is_repeated(const struct q2e_image *img, uint64_t off)
{
	const struct q2e_region *r =
		off ? diff_region_exact(img, off, Q2E_REGION_L2) : NULL;

	return r && r->nowners > 1;
}

struct diff_windows *diff_windows_new(const struct q2e_image *a,
				      const struct q2e_image *b)
{
	struct diff_windows *ws = calloc(1, sizeof(*ws));

	if (!ws)
		return NULL;
	ws->a = a;
	ws->b = b;
	ws->span_a = a->l2_entries << a->hdr.cluster_bits;
	ws->span_b = b->l2_entries << b->hdr.cluster_bits;
	return ws;
}

bool diff_windows_by_entry(const struct diff_windows *ws)
{
	return ws->a->cluster_size >= ws->span_b;
}

/* The key of the window from BASE (a multiple of the new image's span),
 * or false where it cannot come again.  X: A's entry at BASE, where the
 * window lies in one of A's clusters (diff_windows_by_entry()). */
static bool window_key(const struct diff_windows *ws, uint64_t base,
		       const struct qcow2_l2_entry *x,
		       uint64_t key[Q2E_MAP_KEY])
{
	uint64_t i = base / ws->span_b, old;

	key[KEY_NEW] = mapped_offset(ws->b, i);
	key[KEY_POS] = key[3] = 0;
	if (key[KEY_NEW] && !is_repeated(ws->b, key[KEY_NEW]))
		return false;
	if (ws->span_a >= ws->span_b) {
		old = mapped_offset(ws->a, base / ws->span_a);
		if (old)
			key[KEY_POS] = base % ws->span_a;
		if (!key[KEY_NEW] && !is_repeated(ws->a, old))
			return false;
		/* Inside one of A's clusters, only its entry tells: the steps
		 * of the new image's table against it, wherever it is. */
		if (diff_windows_by_entry(ws)) {
			/* Unallocated against no table: nothing changes. */
			if (!key[KEY_NEW] && !x->raw && !x->bitmap)
				return false;
			old = x->raw;
			key[KEY_POS] = x->bitmap;
			key[3] = 1;
		}
	} else {
		uint64_t j = base / ws->span_a, k = ws->span_b / ws->span_a;

		/* Past A's L1 table, every entry is none. */
		old = mapped_offset(ws->a, j);
		if (old && k > ws->a->nl1 - (j < ws->a->nl1 ? j : ws->a->nl1))
			return false;
		for (uint64_t n = 1; n < k && j + n < ws->a->nl1; n++)
			if (mapped_offset(ws->a, j + n) != old)
				return false;
		if (!key[KEY_NEW] && !old)
			return false;
	}
	key[KEY_OLD] = old;
	return true;
}

bool diff_windows_repeat(const struct diff_windows *ws, uint64_t base,
			 const struct qcow2_l2_entry *x)
{
	uint64_t key[Q2E_MAP_KEY];

	return window_key(ws, base, x, key);
}

const struct diff_digest *diff_windows_digest(struct diff_windows *ws,
					      uint64_t base,
					      const struct qcow2_l2_entry *x,
					      uint64_t unit, diff_walk_fn *walk,
					      void *walk_arg)
{
	uint64_t key[Q2E_MAP_KEY];
	struct window *w;

	if (!window_key(ws, base, x, key))
		return NULL;
	w = q2e_map_get(&ws->map, key);
	if (!w) {
		/* The first window of its key is walked. */
		if (ws->nwindows >= MAX_WINDOWS)
			return NULL;
		w = calloc(1, sizeof(*w));
		if (!w || q2e_map_put(&ws->map, key, w) < 0) {
			free(w);
			return NULL;
		}
		w->first = base;
		ws->nwindows++;
		return NULL;
	}
	/* Walked again each time the changes are made, until another
	 * window of its key comes. */
	if (!w->dg && base == w->first)
		return NULL;
	if (!w->dg && !w->undigested) {
		w->dg = diff_digest_make(walk, walk_arg, base, unit,
					 DIGEST_BUDGET - ws->digest_bytes);
		if (w->dg)
			ws->digest_bytes += diff_digest_bytes(w->dg);
		else
			w->undigested = true;
	}
	return w->dg;
}

static void window_free(void *p)
{
	struct window *w = p;

	diff_digest_free(w->dg);
	free(w);
}

void diff_windows_free(struct diff_windows *ws)
{
	if (!ws)
		return;
	q2e_map_free(&ws->map, window_free);
	free(ws);
}

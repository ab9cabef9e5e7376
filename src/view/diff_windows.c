/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The windows of diff's walk between two geometries (diff_walk.c) whose
 * tables come again: a window is the guest range of one of the new
 * image's L1 entries, and what the walk's steps make over it depends only
 * on the tables both images have there.  The new image's table, and:
 *   - where the old image's L1 entries span as much or more: the old
 *     table the window falls in and where in it (KEY_POS);
 *   - where they span less: the old tables of the window's L1 entries,
 *     when they are all one table, or none (a window over several old
 *     tables is walked: its key would be a list).
 * A window whose key came before is given the digest of its steps
 * (diff_runs.c), made at the second window of that key.  Stepping a table
 * that 512 L1 entries name, 2 MiB clusters of alternating entries, against
 * an image of 1 MiB clusters, was 134 million steps (6.9 s).
 *
 * Only windows that can come again are recorded: those whose new table
 * another of its L1 entries names, or, with none, whose old tables repeat
 * so.  An image whose entries each name a table of their own records
 * none.  The records are at most MAX_WINDOWS, the digests DIGEST_BUDGET
 * bytes: past them, windows are walked as before.
 */
#include <stdlib.h>

#include "qcow2elf/hashmap.h"
#include "view/diff_int.h"

#define MAX_WINDOWS (1U << 20)
#define DIGEST_BUDGET (64U << 20)

/* Words of a window's key. */
enum { KEY_NEW, KEY_OLD, KEY_POS };

struct window {
	uint64_t first;		/* the base of the first window of the key */
	struct diff_digest *dg;
	bool undigested;	/* tried: over the budget, or a read failed */
};

/* The table offsets that two or more L1 entries of an image name,
 * sorted. */
struct repeated {
	uint64_t *v;
	size_t n;
};

struct diff_windows {
	const struct q2e_image *a, *b;
	uint64_t span_a, span_b;	/* guest bytes an L1 entry spans */
	struct repeated rep_a, rep_b;
	struct q2e_map map;		/* key: struct window */
	size_t nwindows, digest_bytes;
};

bool diff_l1_mapped(const struct q2e_image *img, uint64_t i)
{
	uint64_t off = diff_l2_offset(img, i);

	return off && !(off & (img->cluster_size - 1));
}

/* The table L1 entry I of IMG names for the lookups, or 0. */
static uint64_t mapped_offset(const struct q2e_image *img, uint64_t i)
{
	return diff_l1_mapped(img, i) ? diff_l2_offset(img, i) : 0;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return (a > b) - (a < b);
}

static int repeated_of(const struct q2e_image *img, struct repeated *r)
{
	uint64_t *v = malloc((img->nl1 ? img->nl1 : 1) * sizeof(*v));
	size_t n = 0;

	if (!v)
		return -1;
	for (uint64_t i = 0; i < img->nl1; i++)
		if ((v[n] = mapped_offset(img, i)) != 0)
			n++;
	qsort(v, n, sizeof(*v), cmp_u64);
	r->n = 0;
	for (size_t i = 1; i < n; i++)
		if (v[i] == v[i - 1] && (!r->n || v[r->n - 1] != v[i]))
			v[r->n++] = v[i];
	/* Most images repeat none: keep only those that do. */
	r->v = realloc(v, (r->n ? r->n : 1) * sizeof(*v));
	if (!r->v)
		r->v = v;
	return 0;
}

static bool is_repeated(const struct repeated *r, uint64_t off)
{
	return off && bsearch(&off, r->v, r->n, sizeof(off), cmp_u64);
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
	if (repeated_of(a, &ws->rep_a) < 0 || repeated_of(b, &ws->rep_b) < 0) {
		diff_windows_free(ws);
		return NULL;
	}
	return ws;
}

/* The key of the window from BASE (a multiple of the new image's span),
 * or false where it cannot come again. */
static bool window_key(const struct diff_windows *ws, uint64_t base,
		       uint64_t key[Q2E_MAP_KEY])
{
	uint64_t i = base / ws->span_b, old;

	key[KEY_NEW] = mapped_offset(ws->b, i);
	key[KEY_POS] = key[3] = 0;
	if (ws->span_a >= ws->span_b) {
		old = mapped_offset(ws->a, base / ws->span_a);
		if (old)
			key[KEY_POS] = base % ws->span_a;
		if (!key[KEY_NEW] && !is_repeated(&ws->rep_a, old))
			return false;
	} else {
		uint64_t j = base / ws->span_a, k = ws->span_b / ws->span_a;

		old = mapped_offset(ws->a, j);
		for (uint64_t n = 1; n < k; n++)
			if (mapped_offset(ws->a, j + n) != old)
				return false;
		if (!key[KEY_NEW] && !old)
			return false;
	}
	key[KEY_OLD] = old;
	return !key[KEY_NEW] || is_repeated(&ws->rep_b, key[KEY_NEW]);
}

bool diff_windows_repeat(const struct diff_windows *ws, uint64_t base)
{
	uint64_t key[Q2E_MAP_KEY];

	return window_key(ws, base, key);
}

const struct diff_digest *diff_windows_digest(struct diff_windows *ws,
					      uint64_t base, uint64_t unit,
					      diff_walk_fn *walk,
					      void *walk_arg)
{
	uint64_t key[Q2E_MAP_KEY];
	struct window *w;

	if (!window_key(ws, base, key))
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
	free(ws->rep_a.v);
	free(ws->rep_b.v);
	free(ws);
}

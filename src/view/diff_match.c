/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Pairs the entries of two tables by key (snapshots by ID and name, bitmaps
 * by name): the k-th entry of one table with a key pairs with the k-th
 * entry of the other with the same key, since a damaged table may repeat
 * one.  Sorted by key, then position, and swept once: a header may claim
 * 65,536 snapshots with the same empty ID and name, and pairing each by a
 * search of the other table took minutes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "view/diff_int.h"

static int key_cmp(const struct diff_key *x, const struct diff_key *y)
{
	int c = strcmp(x->major, y->major);

	return c ? c : strcmp(x->minor, y->minor);
}

static int key_pos_cmp(const void *p, const void *q)
{
	const struct diff_key *x = p, *y = q;
	int c = key_cmp(x, y);

	if (c)
		return c;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

int diff_pairing_new(struct diff_pairing *p, size_t na, size_t nb,
		     struct q2e_error *err)
{
	/* One more each, so that empty tables allocate too. */
	p->na = na;
	p->nb = nb;
	p->ka = calloc(na + 1, sizeof(*p->ka));
	p->kb = calloc(nb + 1, sizeof(*p->kb));
	p->a = calloc(na + 1, sizeof(*p->a));
	p->b = calloc(nb + 1, sizeof(*p->b));
	if (p->ka && p->kb && p->a && p->b)
		return 0;
	diff_pairing_free(p);
	return diff_nomem(err);
}

void diff_pairing_free(struct diff_pairing *p)
{
	free(p->ka);
	free(p->kb);
	free(p->a);
	free(p->b);
	memset(p, 0, sizeof(*p));
}

void diff_pairing_match(struct diff_pairing *p)
{
	struct diff_key *a = p->ka, *b = p->kb;
	size_t i = 0, j = 0;

	for (size_t k = 0; k < p->na; k++)
		p->a[k] = SIZE_MAX;
	for (size_t k = 0; k < p->nb; k++)
		p->b[k] = SIZE_MAX;
	qsort(a, p->na, sizeof(*a), key_pos_cmp);
	qsort(b, p->nb, sizeof(*b), key_pos_cmp);
	/* Within a key, both runs are in table order: pair them in turn. */
	while (i < p->na && j < p->nb) {
		int c = key_cmp(&a[i], &b[j]);

		if (c < 0) {
			i++;
		} else if (c > 0) {
			j++;
		} else {
			p->a[a[i].pos] = b[j].pos;
			p->b[b[j].pos] = a[i].pos;
			i++;
			j++;
		}
	}
}

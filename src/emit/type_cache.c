/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The DWARF types by shape (type_cache.h): open addressing over the mixed
 * key, since the shapes can be as many as the structures (a bitmap table
 * of each size), and a search of a list for each was quadratic.
 */
#include <stdlib.h>
#include <string.h>

#include "emit/type_cache.h"
#include "qcow2elf/hash.h"

struct type_slot {
	uint64_t key[4];
	void *type;		/* NULL: free */
};

static size_t slot_of(const struct type_slot *v, size_t cap,
		      const uint64_t key[4])
{
	uint64_t h = 0;
	size_t i;

	for (int k = 0; k < 4; k++)
		h = q2e_mix64(h ^ key[k]);
	for (i = (size_t)h & (cap - 1);
	     v[i].type && memcmp(v[i].key, key, sizeof(v[i].key)) != 0;
	     i = (i + 1) & (cap - 1))
		;
	return i;
}

void *type_cache_get(const struct type_cache *c, const uint64_t key[4])
{
	return c->cap ? c->v[slot_of(c->v, c->cap, key)].type : NULL;
}

int type_cache_put(struct type_cache *c, const uint64_t key[4], void *type)
{
	struct type_slot *s;

	if ((c->n + 1) * 2 > c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct type_slot *v = calloc(cap, sizeof(*v));

		if (!v)
			return -1;
		for (size_t i = 0; i < c->cap; i++)
			if (c->v[i].type)
				v[slot_of(v, cap, c->v[i].key)] = c->v[i];
		free(c->v);
		c->v = v;
		c->cap = cap;
	}
	s = &c->v[slot_of(c->v, c->cap, key)];
	if (!s->type)
		c->n++;
	memcpy(s->key, key, sizeof(s->key));
	s->type = type;
	return 0;
}

void type_cache_free(struct type_cache *c)
{
	free(c->v);
	*c = (struct type_cache){ 0 };
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The map of include/qcow2elf/hashmap.h: open addressing with linear
 * probing, at most half full, over the key mixed whole.
 */
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/error.h"
#include "qcow2elf/hashmap.h"

struct q2e_map_slot {
	uint64_t key[Q2E_MAP_KEY];
	void *value;		/* NULL: a free slot */
};

/*
 * splitmix64's finalizer: every bit of Z moves every bit of the result.
 * A product's middle bits follow only the key's low bits, and offsets
 * that differ only above them (L1 entries past the end of the file, 1 <<
 * 39 apart) all fell in one slot, each insertion a walk over every key
 * before it.
 */
static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* KEY's slot in V (CAP of them), or the free one where it would go. */
static size_t slot_of(const struct q2e_map_slot *v, size_t cap,
		      const uint64_t key[Q2E_MAP_KEY])
{
	uint64_t h = 0;
	size_t i;

	for (int k = 0; k < Q2E_MAP_KEY; k++)
		h = mix64(h ^ key[k]);
	for (i = (size_t)h & (cap - 1);
	     v[i].value && memcmp(v[i].key, key, sizeof(v[i].key)) != 0;
	     i = (i + 1) & (cap - 1))
		;
	return i;
}

void *q2e_map_get(const struct q2e_map *m, const uint64_t key[Q2E_MAP_KEY])
{
	return m->cap ? m->v[slot_of(m->v, m->cap, key)].value : NULL;
}

static int grow(struct q2e_map *m)
{
	size_t cap = m->cap ? m->cap * 2 : 64;
	struct q2e_map_slot *v;

	if (cap > SIZE_MAX / 2 / sizeof(*v))
		return Q2E_ENOMEM;
	v = calloc(cap, sizeof(*v));
	if (!v)
		return Q2E_ENOMEM;
	for (size_t i = 0; i < m->cap; i++)
		if (m->v[i].value)
			v[slot_of(v, cap, m->v[i].key)] = m->v[i];
	free(m->v);
	m->v = v;
	m->cap = cap;
	return 0;
}

int q2e_map_put(struct q2e_map *m, const uint64_t key[Q2E_MAP_KEY],
		void *value)
{
	struct q2e_map_slot *s;

	/* NULL marks a free slot: a key given it would hide the keys that
	 * probed past it. */
	if (!value)
		return Q2E_EUSAGE;
	if ((m->n + 1) * 2 > m->cap && grow(m) < 0)
		return Q2E_ENOMEM;
	s = &m->v[slot_of(m->v, m->cap, key)];
	if (!s->value)
		m->n++;
	memcpy(s->key, key, sizeof(s->key));
	s->value = value;
	return 0;
}

void q2e_map_free(struct q2e_map *m, void (*free_value)(void *))
{
	for (size_t i = 0; free_value && i < m->cap; i++)
		if (m->v[i].value)
			free_value(m->v[i].value);
	free(m->v);
	*m = (struct q2e_map){ 0 };
}

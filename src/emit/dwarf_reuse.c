/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The last images' DWARF, kept for the next whose types are the same: the
 * fuzz target dumps hundreds of small images a second, about half of them
 * with the types of one just dumped, and libdwarf making them again was a
 * fifth of its time.
 *
 * The key holds every input that dwarf.c's build() reads, in order: the
 * unit's name, the image's fields that shape the common types (cluster
 * bits, extended L2, refcount width, LUKS), and each symbol's type, size
 * and the fields of its structure that type_of() reads.  Equal keys make
 * equal calls into libdwarf, hence equal bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/array.h"
#include "dwarf_reuse.h"

/*
 * The last few builds, the latest first: an input with a command line
 * dumps twice, under two unit names, and each would evict the other.
 */
#define KEPT 4

struct kept {
	struct q2e_dwarf_key key;	/* v NULL: an empty place */
	struct q2e_dwarf d;
};

static bool on;
static struct kept kept[KEPT];

static void forget(struct kept *k)
{
	q2e_dwarf_free(&k->d);
	free(k->key.v);
	*k = (struct kept){ 0 };
}

void q2e_dwarf_reuse(bool reuse)
{
	on = reuse;
	if (!on)
		for (size_t i = 0; i < KEPT; i++)
			forget(&kept[i]);
}

/* Moves kept[I] to the front. */
static void to_front(size_t i)
{
	struct kept k = kept[i];

	memmove(&kept[1], &kept[0], i * sizeof(kept[0]));
	kept[0] = k;
}

static void put(struct q2e_dwarf_key *k, uint64_t v, bool *failed)
{
	if (*failed || q2e_grow(k->v, k->cap, k->n + 1) < 0) {
		*failed = true;
		return;
	}
	k->v[k->n++] = v;
}

static void put_symbol(struct q2e_dwarf_key *k, const struct q2e_image *img,
		       const struct q2e_sym *s, bool *failed)
{
	put(k, s->type, failed);
	put(k, s->size, failed);
	if (s->type == Q2E_SYM_EXTENSION) {
		put(k, img->exts[s->index].magic, failed);
		put(k, img->exts[s->index].avail, failed);
	} else if (s->type == Q2E_SYM_SNAPSHOT) {
		const struct qcow2_snapshot *e = &img->snapshots[s->index].entry;

		put(k, e->extra_data_size, failed);
		put(k, e->id_str_size, failed);
		put(k, e->name_size, failed);
	} else if (s->type == Q2E_SYM_BITMAP) {
		const struct qcow2_bitmap_entry *e =
			&img->bitmaps[s->index].entry;

		put(k, e->extra_data_size, failed);
		put(k, e->name_size, failed);
	}
}

/* False if out of memory. */
static bool make_key(struct q2e_dwarf_key *k, const struct q2e_image *img,
		     const struct q2e_symbols *syms, const char *cu_name)
{
	size_t len = strlen(cu_name);
	bool failed = false;

	put(k, len, &failed);
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = 0;

		memcpy(&v, cu_name + i, len - i < 8 ? len - i : 8);
		put(k, v, &failed);
	}
	put(k, img->hdr.cluster_bits, &failed);
	put(k, img->l2.extended, &failed);
	put(k, img->refcount_bits, &failed);
	put(k, img->has_luks, &failed);
	put(k, syms->n, &failed);
	for (size_t i = 0; i < syms->n && !failed; i++)
		put_symbol(k, img, &syms->v[i], &failed);
	return !failed;
}

/* A copy of SRC, whose type_ref has NSYMS entries, in DST. */
static int copy(struct q2e_dwarf *dst, const struct q2e_dwarf *src,
		size_t nsyms)
{
	*dst = *src;
	dst->nsecs = 0;
	dst->secs = calloc(src->nsecs ? src->nsecs : 1, sizeof(*dst->secs));
	dst->type_ref = malloc((nsyms ? nsyms : 1) * sizeof(*dst->type_ref));
	dst->cu_name = strdup(src->cu_name);
	if (!dst->secs || !dst->type_ref || !dst->cu_name)
		goto fail;
	memcpy(dst->type_ref, src->type_ref, nsyms * sizeof(*dst->type_ref));
	for (size_t i = 0; i < src->nsecs; i++) {
		struct q2e_dwarf_section *s = &dst->secs[dst->nsecs++];

		s->name = strdup(src->secs[i].name);
		s->data = malloc(src->secs[i].size + 1);
		s->size = src->secs[i].size;
		if (!s->name || !s->data)
			goto fail;
		memcpy(s->data, src->secs[i].data, s->size);
	}
	return 0;
fail:
	q2e_dwarf_free(dst);
	return -1;
}

int q2e_dwarf_last(const struct q2e_image *img,
		   const struct q2e_symbols *syms, const char *cu_name,
		   struct q2e_dwarf *out, struct q2e_dwarf_key *key)
{
	*key = (struct q2e_dwarf_key){ 0 };
	if (!on)
		return 0;
	if (!make_key(key, img, syms, cu_name)) {
		free(key->v);
		*key = (struct q2e_dwarf_key){ 0 };
		return 0;	/* built as if never asked to reuse */
	}
	for (size_t i = 0; i < KEPT; i++) {
		if (!kept[i].key.v || kept[i].key.n != key->n ||
		    memcmp(kept[i].key.v, key->v, key->n * sizeof(*key->v)))
			continue;
		free(key->v);
		*key = (struct q2e_dwarf_key){ 0 };
		to_front(i);
		return copy(out, &kept[0].d, syms->n) < 0 ? -1 : 1;
	}
	return 0;
}

void q2e_dwarf_keep(struct q2e_dwarf_key *key, const struct q2e_dwarf *built,
		    size_t nsyms)
{
	struct kept k = { .key = *key };

	*key = (struct q2e_dwarf_key){ 0 };
	if (!k.key.v)		/* not asked to, or out of memory */
		return;
	if (!built || copy(&k.d, built, nsyms) < 0) {
		free(k.key.v);
		return;
	}
	forget(&kept[KEPT - 1]);
	kept[KEPT - 1] = k;
	to_front(KEPT - 1);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The references to each host cluster, counted as QEMU's
 * qcow2_inc_refcounts_imrt() counts them.  A byte per cluster: a 6-bit
 * count and two COPIED bits (check_impl.h).  Counts of CNT_BIG and above
 * live in the dense 16-bit tier, which only the chunks of clusters shared
 * by 63 or more tables need, and past it in an open-addressing side table,
 * which real images rarely need (a cluster shared by 65,535 snapshots).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "check/check_impl.h"
#include "qcow2elf/array.h"

static uint64_t *big_slot(struct big_counts *b, uint64_t cluster, bool insert)
{
	size_t mask, i;

	if (!b->cap)
		return NULL;
	mask = b->cap - 1;
	i = (size_t)((cluster + 1) * 0x9e3779b97f4a7c15ULL >> 20) & mask;
	while (b->keys[i]) {
		if (b->keys[i] == cluster + 1)
			return &b->vals[i];
		i = (i + 1) & mask;
	}
	if (!insert)
		return NULL;
	b->keys[i] = cluster + 1;
	b->vals[i] = 0;
	b->n++;
	return &b->vals[i];
}

static bool b_full(const struct big_counts *b)
{
	return b->n * 2 >= b->cap;
}

/* Grows the side table; the dense tier stays as it is. */
static int big_grow(struct big_counts *b)
{
	struct big_counts n = { 0 };

	n.cap = b->cap ? b->cap * 2 : 1024;
	n.keys = calloc(n.cap, sizeof(*n.keys));
	n.vals = calloc(n.cap, sizeof(*n.vals));
	if (!n.keys || !n.vals) {
		free(n.keys);
		free(n.vals);
		return -1;
	}
	for (size_t i = 0; i < b->cap; i++)
		if (b->keys[i])
			*big_slot(&n, b->keys[i] - 1, true) = b->vals[i];
	free(b->keys);
	free(b->vals);
	b->keys = n.keys;
	b->vals = n.vals;
	b->cap = n.cap;
	b->n = n.n;
	return 0;
}

uint64_t count_at(const uint8_t *counts, const struct big_counts *big,
		  uint64_t k)
{
	unsigned v = counts[k] & CNT_MASK;
	const uint16_t *t;
	uint64_t *p;

	if (v != CNT_BIG)
		return v;
	t = (k >> TIER_SHIFT) < big->ntier ? big->tier[k >> TIER_SHIFT] : NULL;
	if (!t)
		return CNT_BIG;
	if (t[k & (TIER_CHUNK - 1)] != TIER_BIG)
		return t[k & (TIER_CHUNK - 1)];
	p = big_slot((struct big_counts *)big, k, false);
	return p ? *p : TIER_BIG;
}

uint64_t get_count(const struct checker *c, uint64_t k)
{
	return count_at(c->counts, &c->big, k);
}

/* The dense tier's chunk of cluster K, made if need be. */
static uint16_t *tier_chunk(struct checker *c, uint64_t k)
{
	struct big_counts *b = &c->big;
	uint64_t i = k >> TIER_SHIFT;

	if (i >= b->ntier) {
		uint64_t n = ((c->cap > k ? c->cap : k + 1) + TIER_CHUNK - 1) >>
			     TIER_SHIFT;
		uint16_t **t = realloc(b->tier, (size_t)n * sizeof(*t));

		if (!t)
			return NULL;
		memset(t + b->ntier, 0, (size_t)(n - b->ntier) * sizeof(*t));
		b->tier = t;
		b->ntier = n;
	}
	if (!b->tier[i])
		b->tier[i] = malloc(TIER_CHUNK * sizeof(uint16_t));
	return b->tier[i];
}

int set_count(struct checker *c, uint64_t k, uint64_t v)
{
	uint8_t flags = c->counts[k] & ~CNT_MASK;
	uint16_t *t;
	uint64_t *p;

	if (v < CNT_BIG) {
		c->counts[k] = (uint8_t)(flags | v);
		return 0;
	}
	/* Slots of the tier are read only behind a CNT_BIG counter, which
	 * is set only after its slot is written: no need to clear them. */
	t = tier_chunk(c, k);
	if (!t)
		return nomem(c);
	c->counts[k] = (uint8_t)(flags | CNT_BIG);
	if (v < TIER_BIG) {
		t[k & (TIER_CHUNK - 1)] = (uint16_t)v;
		return 0;
	}
	t[k & (TIER_CHUNK - 1)] = TIER_BIG;
	if (b_full(&c->big) && big_grow(&c->big) < 0)
		return nomem(c);
	p = big_slot(&c->big, k, true);
	*p = v;
	return 0;
}

#define HUGE_PAGE ((uint64_t)Q2E_HUGE_PAGE)

/*
 * The counters live in an anonymous mapping: zero pages for free and, for
 * large images, huge pages (q2e_map_array()), since a page fault per 4096
 * clusters costs more than the counting (about 2 us each here: 2 ms of a
 * 17 ms check of 4 million clusters).  References less than a cluster
 * past the end of the file grow it by a few clusters at most; the slack
 * covers them.
 */
static uint8_t *map_counts(uint64_t n, bool prefault)
{
	uint8_t *p;

	if (n > SIZE_MAX || !(p = q2e_map_array((size_t)n)))
		return NULL;
	/* Written first, so that each huge page is made at its first fault.
	 * The counting reads a counter before it writes it, and a read of an
	 * untouched huge page maps the kernel's shared huge zero page, which
	 * the kernel frees when memory is short (and at every drop_caches)
	 * and then makes again: 2 MiB cleared at once, which on a virtual
	 * machine that hands free memory back to its host took 25 to 65 ms
	 * in one cold check of the snapshot image in six.  Only when the
	 * file holds as many bytes (PREFAULT): for a file of holes (2^31
	 * clusters of 512 bytes in 8 KB) it took 2 GB and 31 s. */
	for (uint64_t off = 0; prefault && n >= HUGE_PAGE &&
	     off + HUGE_PAGE <= n; off += HUGE_PAGE)
		((volatile uint8_t *)p)[off] = 0;
	return p;
}

static void unmap_counts(uint8_t *p, uint64_t n)
{
	q2e_unmap_array(p, (size_t)n);
}

int grow_counts(struct checker *c, uint64_t n)
{
	uint64_t ncap;
	uint8_t *p;

	if (n <= c->cap) {
		if (n > c->nb_clusters)
			c->nb_clusters = n;
		return 0;
	}
	ncap = c->cap + c->cap / 8 + 4096;
	if (ncap < n)
		ncap = n + 4096;
	p = map_counts(ncap, c->prefault);
	if (!p)
		return q2e_error_set(c->err, Q2E_ENOMEM,
				     "'%s': out of memory counting the references to %" PRIu64
				     " clusters", c->img->path, ncap);
	if (c->counts)
		memcpy(p, c->counts, (size_t)(c->cap * sizeof(*p)));
	unmap_counts(c->counts, c->cap);
	c->counts = p;
	c->cap = ncap;
	c->nb_clusters = n;
	return 0;
}

void free_count_arrays(uint8_t *counts, uint64_t cap, struct big_counts *big)
{
	unmap_counts(counts, cap);
	for (uint64_t i = 0; i < big->ntier; i++)
		free(big->tier[i]);
	free(big->tier);
	free(big->keys);
	free(big->vals);
	*big = (struct big_counts){ 0 };
}

void free_counts(struct checker *c)
{
	free_count_arrays(c->counts, c->cap, &c->big);
	free(c->ovf.list);
	q2e_map_free(&c->ovf.index, NULL);
	c->ovf = (struct overflows){ 0 };
	c->counts = NULL;
	c->cap = c->nb_clusters = 0;
}

/* Overflow lines written one per snapshot sharing a table, at most. */
#define MAX_OVERFLOW_LINES 64

/* 1 + the place of cluster K's overflow record in V->list, or 0. */
static size_t overflow_index(const struct overflows *v, uint64_t k)
{
	const uint64_t key[Q2E_MAP_KEY] = { k };

	return (uintptr_t)q2e_map_get(&v->index, key);
}

/* The overflow record of cluster K, or NULL. */
static struct overflow *overflow_slot(struct overflows *v, uint64_t k)
{
	size_t i = overflow_index(v, k);

	return i ? &v->list[i - 1] : NULL;
}

/* Cluster K's overflow record, made if the lines kept leave room for
 * more: *O NULL if not. */
static int overflow_of(struct checker *c, uint64_t k, struct overflow **o)
{
	struct overflows *v = &c->ovf;
	const uint64_t key[Q2E_MAP_KEY] = { k };

	*o = overflow_slot(v, k);
	if (*o || v->kept >= OVERFLOW_LINES_ALL)
		return 0;
	if (q2e_grow(v->list, v->cap, v->n + 1) < 0 ||
	    q2e_map_put(&v->index, key, (void *)(uintptr_t)(v->n + 1)) < 0)
		return nomem(c);
	v->list[v->n] = (struct overflow){ .k = k };
	*o = &v->list[v->n++];
	return 0;
}

/* Whether no record is made for cluster K past the lines of all, so that
 * it counts in OTHER. */
static bool counts_in_other(const struct overflows *v)
{
	return v->kept >= OVERFLOW_LINES_ALL && v->other.quiet;
}

bool overflow_is_quiet(const struct checker *c, uint64_t k)
{
	size_t i = overflow_index(&c->ovf, k);

	return i ? c->ovf.list[i - 1].quiet : counts_in_other(&c->ovf);
}

struct overflow *quiet_overflow_of(struct checker *c, uint64_t k)
{
	struct overflow *o = overflow_slot(&c->ovf, k);

	if (o)
		return o->quiet ? o : NULL;
	return counts_in_other(&c->ovf) ? &c->ovf.other : NULL;
}

void add_quiet_overflows(struct checker *c, struct overflow *q, uint64_t over)
{
	q->quiet += over;
	c->overflows++;
	c->overflow_refs += over;
	c->res->corruptions += over;
}

/* Whether key A comes before key B in qemu's order. */
static bool key_before(const uint64_t *a, const uint64_t *b)
{
	for (int i = 0; i < 3; i++)
		if (a[i] != b[i])
			return a[i] < b[i];
	return false;
}

/* OVER overflows of cluster K at key K0 (and the checker's key[1..2])
 * that get no line: counted in Q, which keeps the first. */
static void quiet_overflows(struct checker *c, struct overflow *q,
			    uint64_t k, uint64_t k0, uint64_t over)
{
	const uint64_t key[3] = { k0, c->key[1], c->key[2] };

	if (!q->quiet || key_before(key, q->key)) {
		memcpy(q->key, key, sizeof(key));
		q->cluster = k;
	}
	q->quiet += over;
}

/*
 * The lines for OVER references to cluster K past the refcount's width.
 * Of the c->mult snapshots a shared table is counted for, the last OVER
 * overflow: each gets its line at its place, as when qemu-img walks the
 * table once per snapshot, unless there are too many: then the first
 * stands for all.  Past OVERFLOW_LINES_MAX of a cluster's lines
 * (OVERFLOW_LINES_ALL of all), the overflows are only counted, for
 * overflow_summaries().
 */
static int overflow_lines(struct checker *c, uint64_t k, uint64_t over)
{
	static const char fmt[] = "ERROR: overflow cluster offset=0x%" PRIx64
		"\nUse qemu-img amend to increase the refcount entry width or qemu-img convert to create a clean copy if the image cannot be opened for writing";
	uint64_t k0 = c->key[0], room, rest = 0;
	uint32_t s = (uint32_t)k0;
	struct overflow *o;
	int ret;

	if (c->mult > 1) {
		for (uint64_t t = c->mult - over; t > 0; t--)
			s = c->next_member[s];
		k0 = (k0 & ~0xffffffffULL) | s;
	}
	ret = overflow_of(c, k, &o);
	if (ret < 0)
		return ret;
	if (!o || o->quiet || o->kept >= OVERFLOW_LINES_MAX ||
	    c->ovf.kept >= OVERFLOW_LINES_ALL) {
		quiet_overflows(c, o ? o : &c->ovf.other, k, k0, over);
		return 0;
	}
	/* Lines, not records, count: a record stands for the OVER lines of
	 * a table many snapshots share (4,096 snapshots sharing an L1 table
	 * whose 8,192 entries name one L2 table printed 67 million lines).
	 * Those past the room left are counted, from the first of them. */
	room = OVERFLOW_LINES_MAX - o->kept;
	if (room > OVERFLOW_LINES_ALL - c->ovf.kept)
		room = OVERFLOW_LINES_ALL - c->ovf.kept;
	if (over > room) {
		rest = over - room;
		over = room;
	}
	o->kept += over;
	c->ovf.kept += over;
	if (c->mult == 1 || over > MAX_OVERFLOW_LINES) {
		ret = add_repeated_line(c, k0, over, fmt, k << c->cbits);
		/* The rest begin at the member after those OVER. */
		for (uint64_t t = 0; rest && c->mult > 1 && t < over; t++)
			s = c->next_member[s];
	} else {
		for (uint64_t t = 0; t < over && ret == 0; t++) {
			ret = add_repeated_line(c, (k0 & ~0xffffffffULL) | s, 1,
						fmt, k << c->cbits);
			s = c->next_member[s];
		}
	}
	if (ret == 0 && rest)
		quiet_overflows(c, o, k, c->mult > 1 ? (k0 & ~0xffffffffULL) | s
						     : k0, rest);
	return ret;
}

/* The line for the overflows counted in Q: of its cluster, or OTHER. */
static int overflow_summary(struct checker *c, const struct overflow *q,
			    bool other)
{
	set_key(c, q->key[0], q->key[1], q->key[2]);
	if (other)
		return add_repeated_line(c, q->key[0], 1, "ERROR %" PRIu64
					 " more refcount overflows of other clusters, the first here, of cluster offset=0x%" PRIx64
					 " (qemu-img prints its overflow line and advice for each)",
					 q->quiet, q->cluster << c->cbits);
	return add_repeated_line(c, q->key[0], 1, "ERROR %" PRIu64
				 " more refcount overflows of cluster offset=0x%" PRIx64
				 ", the first here (qemu-img prints its overflow line and advice for each)",
				 q->quiet, q->cluster << c->cbits);
}

int overflow_summaries(struct checker *c)
{
	const struct overflows *v = &c->ovf;
	int ret = 0;

	for (size_t i = 0; i < v->n && ret == 0; i++)
		if (v->list[i].quiet)
			ret = overflow_summary(c, &v->list[i], false);
	if (ret == 0 && v->other.quiet)
		ret = overflow_summary(c, &v->other, true);
	return ret;
}

/* c->mult more references to cluster K, as many as its refcount holds. */
static int inc_count(struct checker *c, uint64_t k)
{
	uint64_t v, over;
	int ret;

	if (k >= c->nb_clusters) {
		ret = grow_counts(c, k + 1);
		if (ret < 0)
			return ret;
	}
	if (c->rec.on) {
		ret = replay_ref(c, k);
		if (ret < 0)
			return ret;
	}
	v = get_count(c, k);
	if (c->mult <= c->refcount_max - v)
		return set_count(c, k, v + c->mult);
	c->overflows++;
	over = c->mult - (c->refcount_max - v);
	c->overflow_refs += over;
	ret = set_count(c, k, c->refcount_max);
	if (ret < 0)
		return ret;
	c->res->corruptions += over;
	return overflow_lines(c, k, over);
}

bool refs_past_end(const struct checker *c, uint64_t offset, uint64_t size)
{
	/* Less than a cluster past the end: a semi-allocated last cluster. */
	return (int64_t)(offset + size - c->img->file_size) >= (int64_t)c->cs;
}

/* qcow2_inc_refcounts_imrt(): one reference to each cluster of a range. */
int inc_refs(struct checker *c, uint64_t offset, uint64_t size)
{
	uint64_t first, last;
	int ret;

	/* QEMU's offset and size are int64_t (with -fwrapv): a size of 2^63
	 * or more counts nothing. */
	if ((int64_t)size <= 0)
		return 0;
	if (refs_past_end(c, offset, size))
		return corrupt(c, "ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x%" PRIx64
			       " size 0x%" PRIx64, offset, size);
	/* Its uint64_t loop over the clusters: nothing if the range wraps
	 * past 2^64; past INT64_MAX, an array it cannot allocate. */
	first = offset >> c->cbits;
	last = (offset + size - 1) >> c->cbits;
	if (offset + size - 1 < offset)
		return 0;
	if (offset > INT64_MAX)
		return give_up(c, &c->res->check_errors,
			       "a reference lies past what QEMU can count (it runs out of memory)");
	for (uint64_t k = first; k <= last; k++) {
		ret = inc_count(c, k);
		if (ret < 0)
			return ret;
	}
	return 0;
}

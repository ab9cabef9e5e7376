/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `check`: the refcount rebuild of QEMU 7.2's qcow2_check_refcounts()
 * (block/qcow2-refcount.c), done over the model.
 *
 * QEMU walks the L1 tables in index order and reads each L2 table when an
 * L1 entry reaches it.  Here every table is read once, in offset order:
 *   1. the L1 entries (in memory) count their L2 tables;
 *   2. the L2 regions, by offset, count their data clusters once per L1
 *      entry that reaches them, and the active ones the allocation counters;
 *   3. the snapshot table, refcount table, LUKS area, bitmaps and refcount
 *      blocks are counted;
 *   4. the refcount blocks, by refcount table index, are compared with the
 *      counts, cluster by cluster;
 *   5. COPIED is checked against the stored refcounts; active L2 tables are
 *      read a second time only if the flags recorded in step 2 show that
 *      some entry is wrong.
 * Lines are keyed with QEMU's order (stage, L1 index, L2 index) and sorted
 * at the end, so they come out as qemu-img prints them.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "qcow2elf/check.h"

/* The counter of one host cluster. */
#define CNT_MASK 0x3fffU	/* the count, or CNT_BIG: see the side table */
#define CNT_BIG 0x3fffU
#define CNT_COPIED 0x4000U	/* an active L2 entry with COPIED maps it */
#define CNT_NOT_COPIED 0x8000U	/* an active L2 entry without COPIED does */

#define L2E_STD_RESERVED UINT64_C(0x3f000000000001fe)
#define L2_BITMAP_ALL_ALLOC UINT64_C(0xffffffff)
#define BME_RESERVED UINT64_C(0xff000000000001fe)
#define MAX_SNAPSHOT_L1_ENTRIES (QCOW2_MAX_L1_BYTES / 8)

/* Stages of qcow2_check_refcounts(), in the order it prints. */
enum stage {
	ST_OPEN,
	ST_HEADER,
	ST_ACTIVE,
	ST_SNAPSHOT_DATA_FILE,
	ST_SNAPSHOTS,
	ST_SNAPSHOT_TABLE,
	ST_REFTABLE,
	ST_CRYPTO,
	ST_BITMAPS,
	ST_REFBLOCKS,
	ST_COMPARE,
	ST_COPIED,
};

/* Counts of 0x3fff and more: open addressing, cluster + 1 as the key. */
struct big_counts {
	uint64_t *keys;
	uint64_t *vals;
	size_t cap, n;
};

/* Clusters that hold metadata, merged, for the data-in-metadata finding. */
struct meta_range {
	uint64_t start, end;	/* clusters, [start, end) */
};

struct checker {
	struct q2e_image *img;
	struct q2e_check_result *res;
	const struct q2e_check_options *opts;
	struct q2e_error *err;
	uint64_t cs;
	unsigned cbits;
	uint64_t refcount_max;
	bool data_file;

	uint16_t *counts;
	uint64_t nb_clusters, cap;
	struct big_counts big;
	bool copied_suspect;	/* some active entry may have COPIED wrong */

	uint64_t key[3];	/* of the lines being produced */
	size_t lines_cap, findings_cap;

	bool *skip_snapshot;	/* QEMU skips snapshots with a bad L1 */
	const struct q2e_region **refblock;	/* by refcount table index */
	uint64_t nrefblock;

	struct meta_range *meta;
	size_t nmeta;
	uint64_t gap_lo, gap_hi;	/* clusters [gap_lo, gap_hi): no metadata */
	uint64_t file_clusters;		/* clusters that start inside the file */

	uint8_t *buf;		/* one cluster */
	uint64_t done, total;
	unsigned last_pct;
};

static int nomem(struct checker *c)
{
	return q2e_error_set(c->err, Q2E_ENOMEM, "out of memory");
}

/* qcow2_validate_table(): a table QEMU does not even try to read. */
static bool past_int64(uint64_t offset, uint64_t bytes)
{
	return offset > INT64_MAX || bytes > INT64_MAX - offset;
}

/* bdrv_check_request(): no read may reach past 2^63 - 2^30. */
static bool unreadable(uint64_t offset, uint64_t bytes)
{
	const uint64_t max = (uint64_t)INT64_MAX + 1 - (1ULL << 30);

	return offset > max || bytes > max - offset;
}

static int add_line(struct checker *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int add_line(struct checker *c, const char *fmt, ...)
{
	struct q2e_check_result *res = c->res;
	struct q2e_check_line *l;
	char text[512];
	va_list ap;

	if (res->nlines == c->lines_cap) {
		size_t ncap = c->lines_cap ? c->lines_cap * 2 : 64;

		l = realloc(res->lines, ncap * sizeof(*l));
		if (!l)
			return nomem(c);
		res->lines = l;
		c->lines_cap = ncap;
	}
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	l = &res->lines[res->nlines];
	memcpy(l->key, c->key, sizeof(l->key));
	l->seq = res->nlines;
	l->text = strdup(text);
	if (!l->text)
		return nomem(c);
	res->nlines++;
	return 0;
}

static void set_key(struct checker *c, uint64_t k0, uint64_t k1, uint64_t k2)
{
	c->key[0] = k0;
	c->key[1] = k1;
	c->key[2] = k2;
}

static struct q2e_finding *add_finding(struct checker *c,
				       enum q2e_finding_type type,
				       enum q2e_severity sev, uint64_t offset,
				       const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static struct q2e_finding *add_finding(struct checker *c,
				       enum q2e_finding_type type,
				       enum q2e_severity sev, uint64_t offset,
				       const char *fmt, ...)
{
	struct q2e_check_result *res = c->res;
	struct q2e_finding *f;
	char text[512];
	va_list ap;

	if (res->nfindings == c->findings_cap) {
		size_t ncap = c->findings_cap ? c->findings_cap * 2 : 32;

		f = realloc(res->findings, ncap * sizeof(*f));
		if (!f) {
			nomem(c);
			return NULL;
		}
		res->findings = f;
		c->findings_cap = ncap;
	}
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	f = &res->findings[res->nfindings];
	memset(f, 0, sizeof(*f));
	f->type = type;
	f->severity = sev;
	f->offset = offset;
	f->message = strdup(text);
	if (!f->message) {
		nomem(c);
		return NULL;
	}
	res->nfindings++;
	if (type == Q2E_FINDING_OVERLAP || type == Q2E_FINDING_SHARED ||
	    type == Q2E_FINDING_DATA_IN_METADATA)
		res->overlaps = true;
	return f;
}

static void ref_region(struct q2e_finding *f, const struct q2e_region *r)
{
	struct q2e_finding_ref *ref = &f->refs[f->nrefs++];

	ref->region = r;
	ref->offset = r->offset;
	ref->size = r->size;
}

static void progress(struct checker *c, uint64_t bytes)
{
	unsigned pct;

	c->done += bytes;
	if (!c->opts || !c->opts->progress || !c->total)
		return;
	pct = (unsigned)(c->done * 10000 / c->total);
	if (pct != c->last_pct || c->done == c->total) {
		c->last_pct = pct;
		c->opts->progress(c->opts->progress_arg, c->done, c->total);
	}
}

/* Reads a region into c->buf (one cluster), or a cluster at OFF if R is NULL. */
static int read_cluster(struct checker *c, const struct q2e_region *r,
			uint64_t off)
{
	struct q2e_region tmp;

	if (!r) {
		uint64_t fsize = c->img->file_size;

		tmp = (struct q2e_region){
			.kind = Q2E_REGION_L2,
			.offset = off,
			.size = c->cs,
			.avail = off >= fsize ? 0
				 : c->cs < fsize - off ? c->cs : fsize - off,
		};
		r = &tmp;
	}
	return q2e_image_read_region(c->img, r, c->buf, c->err);
}

/* Counters: 14 bits in the array, larger values in the side table. */
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
	*b = n;
	return 0;
}

static uint64_t get_count(const struct checker *c, uint64_t k)
{
	unsigned v = c->counts[k] & CNT_MASK;
	uint64_t *p;

	if (v != CNT_BIG)
		return v;
	p = big_slot((struct big_counts *)&c->big, k, false);
	return p ? *p : CNT_BIG;
}

static int set_count(struct checker *c, uint64_t k, uint64_t v)
{
	uint16_t flags = c->counts[k] & ~CNT_MASK;
	uint64_t *p;

	if (v < CNT_BIG) {
		c->counts[k] = (uint16_t)(flags | v);
		return 0;
	}
	if (c->big.n * 2 >= c->big.cap && big_grow(&c->big) < 0)
		return nomem(c);
	p = big_slot(&c->big, k, true);
	*p = v;
	c->counts[k] = (uint16_t)(flags | CNT_BIG);
	return 0;
}

/*
 * The counters live in an anonymous mapping: zero pages for free and, for
 * large images, huge pages, since a page fault per 2048 clusters costs more
 * than the counting.  References less than a cluster past the end of the
 * file grow it by a few clusters at most; the slack covers them.
 */
static uint16_t *map_counts(uint64_t n)
{
	void *p = mmap(NULL, (size_t)(n * sizeof(uint16_t)),
		       PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_HUGEPAGE
	madvise(p, (size_t)(n * sizeof(uint16_t)), MADV_HUGEPAGE);
#endif
	return p;
}

static void unmap_counts(uint16_t *p, uint64_t n)
{
	if (p)
		munmap(p, (size_t)(n * sizeof(uint16_t)));
}

static int grow_counts(struct checker *c, uint64_t n)
{
	uint64_t ncap;
	uint16_t *p;

	if (n <= c->cap) {
		if (n > c->nb_clusters)
			c->nb_clusters = n;
		return 0;
	}
	ncap = c->cap + c->cap / 8 + 4096;
	if (ncap < n)
		ncap = n + 4096;
	p = map_counts(ncap);
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

/* qcow2_inc_refcounts_imrt(): one reference to each cluster of a range. */
static int inc_refs(struct checker *c, uint64_t offset, uint64_t size)
{
	uint64_t first, last;
	int ret;

	/* QEMU's offset and size are int64_t (with -fwrapv): a size of 2^63
	 * or more counts nothing. */
	if ((int64_t)size <= 0)
		return 0;
	/* Less than a cluster past the end: a semi-allocated last cluster. */
	if ((int64_t)(offset + size - c->img->file_size) >= (int64_t)c->cs) {
		c->res->corruptions++;
		return add_line(c, "ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x%" PRIx64
				" size 0x%" PRIx64, offset, size);
	}
	/* Its uint64_t loop over the clusters: nothing if the range wraps
	 * past 2^64; past INT64_MAX, an array it cannot allocate. */
	first = offset >> c->cbits;
	last = (offset + size - 1) >> c->cbits;
	if (offset + size - 1 < offset)
		return 0;
	if (offset > INT64_MAX) {
		c->res->check_errors++;
		if (!c->res->incomplete)
			c->res->incomplete = strdup("a reference lies past what QEMU can count (it runs out of memory)");
		return c->res->incomplete ? 0 : nomem(c);
	}
	for (uint64_t k = first; k <= last; k++) {
		uint64_t v;

		if (k >= c->nb_clusters) {
			ret = grow_counts(c, k + 1);
			if (ret < 0)
				return ret;
		}
		v = get_count(c, k);
		if (v == c->refcount_max) {
			c->res->corruptions++;
			ret = add_line(c, "ERROR: overflow cluster offset=0x%" PRIx64,
				       k << c->cbits);
			if (ret == 0)
				ret = add_line(c, "Use qemu-img amend to increase the refcount entry width or qemu-img convert to create a clean copy if the image cannot be opened for writing");
			if (ret < 0)
				return ret;
			continue;
		}
		ret = set_count(c, k, v + 1);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Fast path of inc_refs() for one aligned cluster inside the file. */
static inline int inc_cluster(struct checker *c, uint64_t offset)
{
	uint64_t k = offset >> c->cbits;
	uint16_t v;

	if (k < c->nb_clusters && !(offset & (c->cs - 1))) {
		v = c->counts[k];
		if ((v & CNT_MASK) + 1U < CNT_BIG &&
		    (uint64_t)(v & CNT_MASK) < c->refcount_max) {
			c->counts[k] = (uint16_t)(v + 1);
			return 0;
		}
	}
	return inc_refs(c, offset, c->cs);
}

/*
 * Is cluster K metadata?  Returns the merged range index or -1, and keeps
 * the gap around K when it is not: data clusters come mostly in order, so
 * the next one is usually in the same gap (see in_gap()).
 */
static long meta_find(struct checker *c, uint64_t k)
{
	size_t lo = 0, hi = c->nmeta;

	while (lo < hi) {	/* first range with start > k */
		size_t mid = lo + (hi - lo) / 2;

		if (c->meta[mid].start <= k)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0 && k < c->meta[lo - 1].end)
		return (long)(lo - 1);
	c->gap_lo = lo > 0 ? c->meta[lo - 1].end : 0;
	c->gap_hi = lo < c->nmeta ? c->meta[lo].start : UINT64_MAX;
	return -1;
}

static inline bool in_gap(const struct checker *c, uint64_t k)
{
	return c->gap_lo <= k && k < c->gap_hi;
}

static int cmp_meta(const void *pa, const void *pb)
{
	const struct meta_range *a = pa, *b = pb;

	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	return 0;
}

static int build_meta_ranges(struct checker *c)
{
	struct q2e_image *img = c->img;
	size_t n = 0;

	c->meta = malloc((img->nregions + 1) * sizeof(*c->meta));
	if (!c->meta)
		return nomem(c);
	for (size_t i = 0; i < img->nregions; i++) {
		const struct q2e_region *r = &img->regions[i];

		if (!r->size)
			continue;
		c->meta[n].start = r->offset >> c->cbits;
		c->meta[n].end = (r->offset + r->size - 1) / c->cs + 1;
		n++;
	}
	qsort(c->meta, n, sizeof(*c->meta), cmp_meta);
	c->nmeta = 0;
	for (size_t i = 0; i < n; i++) {
		if (c->nmeta && c->meta[i].start <= c->meta[c->nmeta - 1].end) {
			if (c->meta[i].end > c->meta[c->nmeta - 1].end)
				c->meta[c->nmeta - 1].end = c->meta[i].end;
			continue;
		}
		c->meta[c->nmeta++] = c->meta[i];
	}
	return 0;
}

/* The region of the model that holds host cluster K, for a finding. */
static const struct q2e_region *region_in_cluster(const struct checker *c,
						  uint64_t k)
{
	const struct q2e_image *img = c->img;

	for (size_t i = 0; i < img->nregions; i++) {
		const struct q2e_region *r = &img->regions[i];

		if (r->size && r->offset >> c->cbits <= k &&
		    (r->offset + r->size - 1) >> c->cbits >= k)
			return r;
	}
	return NULL;
}

/* "l2_table_3[17]", the L2 entry behind a data cluster finding. */
static void entry_name(const struct checker *c, const struct q2e_region *l2,
		       uint64_t j, char *buf, size_t size)
{
	char sym[80];

	if (q2e_region_symbol(c->img, l2, 0, sym, sizeof(sym)) < 0)
		snprintf(sym, sizeof(sym), "l2_table");
	snprintf(buf, size, "%s[%" PRIu64 "]", sym, j);
}

static int data_finding(struct checker *c, const struct q2e_region *l2,
			uint64_t j, uint64_t off, uint64_t size,
			enum q2e_finding_type type, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));
static int data_finding(struct checker *c, const struct q2e_region *l2,
			uint64_t j, uint64_t off, uint64_t size,
			enum q2e_finding_type type, const char *fmt, ...)
{
	struct q2e_finding *f;
	struct q2e_finding_ref *ref;
	char name[96], msg[400];
	va_list ap;

	entry_name(c, l2, j, name, sizeof(name));
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	f = add_finding(c, type, Q2E_SEV_ERROR, off, "%s: %s", name, msg);
	if (!f)
		return Q2E_ENOMEM;
	ref = &f->refs[f->nrefs++];
	ref->offset = off;
	ref->size = size;
	snprintf(ref->owner, sizeof(ref->owner), "%s", name);
	ref_region(f, l2);
	return 0;
}

/* What qemu-img does not check about a data cluster: one finding each. */
static int data_findings(struct checker *c, const struct q2e_region *l2,
			 uint64_t j, uint64_t off, uint64_t size)
{
	uint64_t first = off >> c->cbits, last = (off + size - 1) >> c->cbits;

	if (off >= c->img->file_size)
		return data_finding(c, l2, j, off, size, Q2E_FINDING_PAST_EOF,
				    "data at 0x%" PRIx64
				    " lies past the end of the file (0x%" PRIx64
				    " bytes)", off, c->img->file_size);
	for (uint64_t k = first; k <= last; k++) {
		const struct q2e_region *m;
		struct q2e_finding *f;
		char sym[96];

		if (in_gap(c, k) || meta_find(c, k) < 0)
			continue;
		m = region_in_cluster(c, k);
		if (!m)
			continue;
		if (q2e_region_symbol(c->img, m, 0, sym, sizeof(sym)) < 0)
			snprintf(sym, sizeof(sym), "%s",
				 q2e_region_kind_name(m->kind));
		if (data_finding(c, l2, j, off, size,
				 Q2E_FINDING_DATA_IN_METADATA,
				 "data cluster 0x%" PRIx64 " is also %s (%s at 0x%" PRIx64 ")",
				 k << c->cbits, sym,
				 q2e_region_kind_name(m->kind), m->offset) < 0)
			return Q2E_ENOMEM;
		f = &c->res->findings[c->res->nfindings - 1];
		ref_region(f, m);
		break;
	}
	return 0;
}

/*
 * check_refcounts_l2(): the entries of one L2 table, for one L1 entry that
 * reaches it.  ACTIVE adds the allocation counters and COPIED flags; FIRST
 * adds the findings (once per table, not per L1 entry).
 */
static int check_l2(struct checker *c, const struct q2e_region *r,
		    uint64_t k0, uint64_t k1, bool active, bool first)
{
	struct q2e_image *img = c->img;
	struct q2e_check_result *res = c->res;
	unsigned esize = qcow2_l2_entry_size(&img->l2);
	bool ext = img->l2.extended;
	uint64_t next_contiguous = 0;
	const uint8_t *p = c->buf;
	/* The hot loop's state in locals: stores through counts may alias c. */
	const bool fast = !ext && !c->data_file;
	const unsigned cbits = c->cbits;
	const uint64_t cmask = c->cs - 1, fclusters = c->file_clusters;
	const unsigned limit = c->refcount_max < CNT_BIG - 1
				       ? (unsigned)c->refcount_max : CNT_BIG - 1;
	const uint16_t copied_bits[2] = { CNT_NOT_COPIED, CNT_COPIED };
	const uint64_t nentries = img->l2_entries;
	uint64_t allocated = 0, fragmented = 0;
	int ret;

	for (uint64_t j = 0; j < nentries; j++, p += esize) {
		uint64_t raw = qcow2_be64(p);
		uint64_t bitmap = ext ? qcow2_be64(p + 8) : 0;
		struct qcow2_l2_entry e;

		if (!raw && !bitmap)
			continue;
		/* The common entry: a standard cluster, aligned, in the file. */
		if (fast && !(raw & (QCOW2_OFLAG_COMPRESSED | L2E_STD_RESERVED |
				     QCOW2_OFLAG_ZERO))) {
			uint64_t off = raw & QCOW2_OFFSET_MASK;
			uint64_t k = off >> cbits;
			uint16_t *cnt = &c->counts[k];

			if (off && !(off & cmask) && k < fclusters &&
			    (*cnt & CNT_MASK) < limit) {
				if (active) {
					allocated++;
					if (next_contiguous && off != next_contiguous)
						fragmented++;
					next_contiguous = off + cmask + 1;
					*cnt = (uint16_t)((*cnt + 1) |
							  copied_bits[raw >> 63]);
				} else {
					*cnt = (uint16_t)(*cnt + 1);
				}
				if (first && !in_gap(c, k)) {
					set_key(c, k0, k1, j + 1);
					ret = data_findings(c, r, j, off, c->cs);
					if (ret < 0)
						return ret;
				}
				/*
				 * A run: entries that continue this one exactly
				 * (next cluster, same flags), as preallocation
				 * and sequential writes leave them.  Anything
				 * the slow path must see ends the run.
				 */
				uint64_t run = nentries - j - 1, left;
				uint16_t *counts = c->counts;
				const uint16_t flag = active ? copied_bits[raw >> 63]
							     : 0;

				/* Bounds: the file, the offset field, the gap
				 * between metadata ranges. */
				left = fclusters - k - 1;
				run = run < left ? run : left;
				left = ((QCOW2_OFFSET_MASK | cmask) - off) >> cbits;
				run = run < left ? run : left;
				if (first && !in_gap(c, k)) {
					run = 0;	/* data inside metadata */
				} else if (first) {
					left = c->gap_hi - k - 1;
					run = run < left ? run : left;
				}
				uint64_t n = 0;
				for (const uint8_t *q = p + esize;
				     n < run && qcow2_be64(q) == raw + (n + 1) * (cmask + 1) &&
				     (counts[k + n + 1] & CNT_MASK) < limit;
				     n++, q += esize)
					counts[k + n + 1] = (uint16_t)(
						(counts[k + n + 1] + 1) | flag);
				if (n) {
					j += n;
					p += n * esize;
					if (active) {
						allocated += n;
						next_contiguous = off + (n + 1) * (cmask + 1);
					}
				}
				continue;
			}
		}
		set_key(c, k0, k1, j + 1);
		qcow2_l2_entry_decode(raw, bitmap, &img->l2, &e);
		if (e.type != QCOW2_CLUSTER_COMPRESSED &&
		    (raw & L2E_STD_RESERVED)) {
			res->corruptions++;
			ret = add_line(c, "ERROR found l2 entry with reserved bits set: %" PRIx64,
				       raw);
			if (ret < 0)
				return ret;
			if (first && data_finding(c, r, j, e.host_offset, c->cs,
						  Q2E_FINDING_RESERVED_BITS,
						  "entry 0x%016" PRIx64 " has reserved bits 0x%" PRIx64 " set",
						  raw, raw & L2E_STD_RESERVED) < 0)
				return Q2E_ENOMEM;
		}
		switch (e.type) {
		case QCOW2_CLUSTER_COMPRESSED:
			if (raw & QCOW2_OFLAG_COPIED) {
				res->corruptions++;
				ret = add_line(c, "ERROR: coffset=0x%" PRIx64
					       ": copied flag must never be set for compressed clusters",
					       e.host_offset);
				if (ret < 0)
					return ret;
			}
			if (c->data_file) {
				res->corruptions++;
				ret = add_line(c, "ERROR compressed cluster %" PRIu64
					       " with data file, entry=0x%" PRIx64,
					       j, (uint64_t)(raw & ~QCOW2_OFLAG_COPIED));
				if (ret < 0)
					return ret;
				break;
			}
			if (bitmap) {
				res->corruptions++;
				ret = add_line(c, "ERROR compressed cluster %" PRIu64
					       " with non-zero subcluster allocation bitmap, entry=0x%" PRIx64,
					       j, (uint64_t)(raw & ~QCOW2_OFLAG_COPIED));
				if (ret < 0)
					return ret;
				break;
			}
			ret = inc_refs(c, e.host_offset, e.compressed_size);
			if (ret < 0)
				return ret;
			if (active) {
				/* Compressed clusters are fragmented by nature. */
				res->allocated_clusters++;
				res->compressed_clusters++;
				res->fragmented_clusters++;
			}
			if (first) {
				ret = data_findings(c, r, j, e.host_offset,
						    e.compressed_size);
				if (ret < 0)
					return ret;
			}
			break;
		case QCOW2_CLUSTER_ZERO_ALLOC:
		case QCOW2_CLUSTER_NORMAL: {
			uint64_t off = e.host_offset;

			if ((bitmap >> 32) & bitmap) {
				res->corruptions++;
				ret = add_line(c, "ERROR offset=%" PRIx64
					       ": Allocated cluster has corrupted subcluster allocation bitmap",
					       off);
				if (ret < 0)
					return ret;
			}
			if (off & (c->cs - 1)) {
				bool data = ext ? (bitmap & L2_BITMAP_ALL_ALLOC)
						: !(raw & QCOW2_OFLAG_ZERO);

				res->corruptions++;
				ret = add_line(c, data
					       ? "ERROR offset=%" PRIx64 ": Data cluster is not properly aligned; L2 entry corrupted."
					       : "ERROR offset=%" PRIx64 ": Preallocated cluster is not properly aligned; L2 entry corrupted.",
					       off);
				if (ret < 0)
					return ret;
				if (first && data_finding(c, r, j, off, c->cs,
							  Q2E_FINDING_MISALIGNED,
							  "data at 0x%" PRIx64 " is not cluster aligned",
							  off) < 0)
					return Q2E_ENOMEM;
			}
			if (active) {
				res->allocated_clusters++;
				if (next_contiguous && off != next_contiguous)
					res->fragmented_clusters++;
				next_contiguous = off + c->cs;
			}
			if (c->data_file) {
				if (active && !e.copied)
					c->copied_suspect = true;
				break;
			}
			ret = inc_cluster(c, off);
			if (ret < 0)
				return ret;
			if (active) {
				uint64_t k = off >> c->cbits;

				if (k < c->nb_clusters)
					c->counts[k] |= e.copied ? CNT_COPIED
								 : CNT_NOT_COPIED;
				else
					c->copied_suspect = true;
			}
			if (first) {
				ret = data_findings(c, r, j, off, c->cs);
				if (ret < 0)
					return ret;
			}
			break;
		}
		case QCOW2_CLUSTER_ZERO_PLAIN:
			break;
		case QCOW2_CLUSTER_UNALLOCATED:
			if (bitmap & L2_BITMAP_ALL_ALLOC) {
				res->corruptions++;
				ret = add_line(c, "ERROR: Unallocated cluster has non-zero subcluster allocation map");
				if (ret < 0)
					return ret;
			}
			break;
		}
	}
	res->allocated_clusters += allocated;
	res->fragmented_clusters += fragmented;
	return 0;
}

/*
 * The L1 part of check_refcounts_l1(): the L1 table and each L2 table it
 * reaches are counted.  An entry with flags but no offset makes QEMU read
 * cluster 0 as an L2 table; the model has no region for that, so it is read
 * here.
 */
static int check_l1(struct checker *c, enum stage st, uint64_t snap,
		    uint64_t l1_off, uint64_t l1_size, const uint64_t *l1,
		    uint64_t nl1)
{
	struct q2e_check_result *res = c->res;
	int ret;

	if (!l1_size)
		return 0;
	set_key(c, (uint64_t)st << 32 | snap, 0, 0);
	ret = inc_refs(c, l1_off, l1_size * 8);
	if (ret < 0)
		return ret;
	for (uint64_t i = 0; i < nl1; i++) {
		uint64_t l2_off = l1[i] & QCOW2_OFFSET_MASK;

		if (!l1[i])
			continue;
		set_key(c, (uint64_t)st << 32 | snap, i + 1, 0);
		if (l1[i] & QCOW2_L1_RESERVED_MASK) {
			res->corruptions++;
			ret = add_line(c, "ERROR found L1 entry with reserved bits set: %" PRIx64,
				       l1[i]);
			if (ret < 0)
				return ret;
		}
		ret = inc_refs(c, l2_off, c->cs);
		if (ret < 0)
			return ret;
		if (l2_off & (c->cs - 1)) {
			res->corruptions++;
			ret = add_line(c, "ERROR l2_offset=%" PRIx64
				       ": Table is not cluster aligned; L1 entry corrupted",
				       l2_off);
			if (ret < 0)
				return ret;
		}
		if (!l2_off) {
			ret = read_cluster(c, NULL, 0);
			if (ret == 0)
				ret = check_l2(c, NULL, (uint64_t)st << 32 | snap,
					       i + 1, st == ST_ACTIVE, false);
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

/* The L2 regions, in offset order: each once, for every L1 entry. */
static int check_l2_regions(struct checker *c)
{
	struct q2e_image *img = c->img;
	int ret;

	for (size_t i = 0; i < img->nregions; i++) {
		const struct q2e_region *r = &img->regions[i];
		bool first = true;

		if (r->kind != Q2E_REGION_L2)
			continue;
		ret = read_cluster(c, r, 0);
		if (ret < 0)
			return ret;
		for (uint32_t k = 0; k < r->nowners; k++) {
			const struct q2e_owner *o = &r->owners[k];
			bool active = o->kind == Q2E_OWNER_ACTIVE;
			uint64_t k0;

			if (o->kind == Q2E_OWNER_SNAPSHOT &&
			    (o->id >= img->nsnapshots ||
			     c->skip_snapshot[o->id]))
				continue;
			if (!active && o->kind != Q2E_OWNER_SNAPSHOT)
				continue;
			k0 = active ? (uint64_t)ST_ACTIVE << 32
				    : (uint64_t)ST_SNAPSHOTS << 32 | o->id;
			ret = check_l2(c, r, k0, o->index + 1, active, first);
			if (ret < 0)
				return ret;
			first = false;
		}
		progress(c, r->size);
	}
	return 0;
}

static int check_snapshots(struct checker *c)
{
	struct q2e_image *img = c->img;
	struct q2e_check_result *res = c->res;
	int ret;

	if (c->data_file && img->hdr.nb_snapshots) {
		set_key(c, (uint64_t)ST_SNAPSHOT_DATA_FILE << 32, 0, 0);
		res->corruptions++;
		ret = add_line(c, "ERROR %u snapshots in image with data file",
			       img->hdr.nb_snapshots);
		if (ret < 0)
			return ret;
	}
	/* qcow2_read_snapshots(): a version 3 entry needs 16 bytes of extra
	 * data (the model, like QEMU, reads past the end of the file as
	 * zeros). */
	set_key(c, (uint64_t)ST_OPEN << 32, 0, 0);
	for (size_t i = 0; i < img->nsnapshots; i++) {
		if (img->hdr.version < 3 ||
		    img->snapshots[i].entry.extra_data_size >= 16)
			continue;
		res->corruptions++;
		ret = add_line(c, "ERROR snapshot table entry %zu is incomplete",
			       i);
		if (ret < 0)
			return ret;
	}
	res->nsnapshots = img->nsnapshots;
	res->snapshot_l1 = calloc(img->nsnapshots + 1, sizeof(uint64_t *));
	res->snapshot_nl1 = calloc(img->nsnapshots + 1, sizeof(uint64_t));
	c->skip_snapshot = calloc(img->nsnapshots + 1, sizeof(bool));
	if (!res->snapshot_l1 || !res->snapshot_nl1 || !c->skip_snapshot)
		return nomem(c);
	for (size_t i = 0; i < img->nsnapshots; i++) {
		const struct q2e_snapshot *s = &img->snapshots[i];
		const struct qcow2_snapshot *e = &s->entry;

		set_key(c, (uint64_t)ST_SNAPSHOTS << 32 | i, 0, 0);
		if (e->l1_table_offset & (c->cs - 1)) {
			c->skip_snapshot[i] = true;
			res->corruptions++;
			ret = add_line(c, "ERROR snapshot %s (%s) l1_offset=%#" PRIx64
				       ": L1 table is not cluster aligned; snapshot table entry corrupted",
				       s->id, s->name, e->l1_table_offset);
			if (ret < 0)
				return ret;
			continue;
		}
		if (e->l1_size > MAX_SNAPSHOT_L1_ENTRIES) {
			c->skip_snapshot[i] = true;
			res->corruptions++;
			ret = add_line(c, "ERROR snapshot %s (%s) l1_size=%#" PRIx32
				       ": L1 table is too large; snapshot table entry corrupted",
				       s->id, s->name, e->l1_size);
			if (ret < 0)
				return ret;
			continue;
		}
		/* check_refcounts_l1(): an I/O error fails the check. */
		if (e->l1_size &&
		    unreadable(e->l1_table_offset, e->l1_size * 8ULL)) {
			res->check_errors++;
			res->incomplete = strdup("a snapshot's L1 table cannot be read");
			return res->incomplete ? 0 : nomem(c);
		}
		ret = q2e_image_read_snapshot_l1(img, i, &res->snapshot_l1[i],
						 &res->snapshot_nl1[i], c->err);
		if (ret < 0)
			return ret;
		ret = check_l1(c, ST_SNAPSHOTS, i, e->l1_table_offset,
			       e->l1_size, res->snapshot_l1[i],
			       res->snapshot_nl1[i]);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* qcow2_check_bitmaps_refcounts(): the directory, tables and their data. */
static int check_bitmaps(struct checker *c)
{
	struct q2e_image *img = c->img;
	struct q2e_check_result *res = c->res;
	const struct qcow2_bitmaps_ext *x = &img->bitmaps_ext;
	int ret;

	/* QEMU ignores the extension when the autoclear bit is clear. */
	if (!img->has_bitmaps_ext || !x->nb_bitmaps ||
	    !(img->hdr.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS))
		return 0;
	set_key(c, (uint64_t)ST_BITMAPS << 32, 0, 0);
	ret = inc_refs(c, x->bitmap_directory_offset, x->bitmap_directory_size);
	if (ret < 0)
		return ret;
	if (img->nbitmaps != x->nb_bitmaps) {
		res->corruptions++;
		if (!res->incomplete)
			res->incomplete = strdup("the bitmap directory cannot be read");
		return res->incomplete ? 0 : nomem(c);
	}
	for (size_t i = 0; i < img->nbitmaps; i++) {
		const struct q2e_bitmap *b = &img->bitmaps[i];
		uint64_t n = b->entry.bitmap_table_size;

		ret = inc_refs(c, b->entry.bitmap_table_offset, n * 8);
		if (ret < 0)
			return ret;
		for (uint64_t j = 0; j < n; j++) {
			uint64_t e = j < b->ntable ? b->table[j] : 0;
			uint64_t off = e & QCOW2_OFFSET_MASK;

			if ((e & BME_RESERVED) ||
			    (off && ((e & 1) || (off & (c->cs - 1))))) {
				/* bitmap_table_load() fails: so does the check. */
				res->corruptions++;
				if (!res->incomplete)
					res->incomplete = strdup("a bitmap table has an invalid entry");
				return res->incomplete ? 0 : nomem(c);
			}
		}
		for (uint64_t j = 0; j < b->ntable && j < n; j++) {
			uint64_t off = b->table[j] & QCOW2_OFFSET_MASK;

			if (off) {
				ret = inc_refs(c, off, c->cs);
				if (ret < 0)
					return ret;
			}
		}
	}
	return 0;
}

/* check_refblocks(): each refcount block must be referenced exactly once. */
static int check_refblocks(struct checker *c)
{
	struct q2e_image *img = c->img;
	struct q2e_check_result *res = c->res;
	int ret;

	set_key(c, (uint64_t)ST_REFBLOCKS << 32, 0, 0);
	for (uint64_t i = 0; i < img->nreftable; i++) {
		uint64_t off = img->reftable[i] & ~QCOW2_REFTABLE_RESERVED_MASK;
		uint64_t k = off >> c->cbits, v;

		if (img->reftable[i] & QCOW2_REFTABLE_RESERVED_MASK) {
			res->corruptions++;
			ret = add_line(c, "ERROR refcount table entry %" PRIu64
				       " has reserved bits set", i);
			if (ret < 0)
				return ret;
			continue;
		}
		if (off & (c->cs - 1)) {
			res->corruptions++;
			ret = add_line(c, "ERROR refcount block %" PRIu64
				       " is not cluster aligned; refcount table entry corrupted",
				       i);
			if (ret < 0)
				return ret;
			continue;
		}
		if (k >= c->nb_clusters) {
			res->corruptions++;
			ret = add_line(c, "ERROR refcount block %" PRIu64
				       " is outside image", i);
			if (ret < 0)
				return ret;
			continue;
		}
		if (!off)
			continue;
		ret = inc_refs(c, off, c->cs);
		if (ret < 0)
			return ret;
		v = get_count(c, k);
		if (v != 1) {
			res->corruptions++;
			ret = add_line(c, "ERROR refcount block %" PRIu64
				       " refcount=%" PRIu64, i, v);
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

/* The refcount block regions, by refcount table index. */
static int index_refblocks(struct checker *c)
{
	struct q2e_image *img = c->img;

	c->nrefblock = img->nreftable;
	c->refblock = calloc(c->nrefblock + 1, sizeof(*c->refblock));
	if (!c->refblock)
		return nomem(c);
	for (size_t i = 0; i < img->nregions; i++) {
		const struct q2e_region *r = &img->regions[i];

		if (r->kind != Q2E_REGION_REFCOUNT_BLOCK)
			continue;
		for (uint32_t k = 0; k < r->nowners; k++)
			if (r->owners[k].index < c->nrefblock)
				c->refblock[r->owners[k].index] = r;
	}
	return 0;
}

/* The refcount block of table index TI is unaligned: QEMU cannot read it. */
/* qcow2_get_refcount() fails on a misaligned or unreadable block. */
static bool refblock_unreadable(const struct checker *c, uint64_t ti)
{
	uint64_t off;

	if (ti >= c->img->nreftable)
		return false;
	off = c->img->reftable[ti] & ~QCOW2_REFTABLE_RESERVED_MASK;
	return off && ((off & (c->cs - 1)) || unreadable(off, c->cs));
}

/* compare_refcounts(): stored against computed, cluster by cluster. */
/*
 * The common case of a 16-bit refcount block (in c->buf) for clusters
 * [start, end): every stored refcount equals the count, no count is big and
 * no COPIED flag disagrees.  A loop without branches the compiler can
 * vectorise; if anything is off, the caller's loop finds and reports it.
 */
static bool block_agrees16(struct checker *c, uint64_t start, uint64_t end,
			   uint64_t *highest)
{
	/* Four 16-bit lanes at a time; zero_lanes() sets bit 15 of exactly
	 * the lanes of X that are zero. */
#define LANES(v) ((v) * UINT64_C(0x0001000100010001))
#define zero_lanes(x)                                                       \
	(~((((x) & LANES(0x7fff)) + LANES(0x7fff)) | (x) | LANES(0x7fff)))
	const uint16_t *counts = c->counts + start;
	const uint8_t *buf = c->buf;
	uint64_t n = end - start, bad = 0, i;

	for (i = 0; i + 4 <= n; i += 4) {
		uint64_t s, v, cnt, one;

		memcpy(&s, buf + 2 * i, 8);
		memcpy(&v, counts + i, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		/* Big-endian refcounts into the lanes of the native counts. */
		s = ((s & LANES(0x00ff)) << 8) | ((s >> 8) & LANES(0x00ff));
#endif
		cnt = v & LANES(CNT_MASK);
		one = zero_lanes(s ^ LANES(1));		/* stored == 1 */
		bad |= (s ^ cnt) |			/* stored != count */
		       zero_lanes(cnt ^ LANES(CNT_BIG)) | /* a big count */
		       ((v << 1) & LANES(0x8000) & ~one) | /* COPIED, not 1 */
		       (v & LANES(0x8000) & one);	/* not COPIED, 1 */
	}
#undef zero_lanes
#undef LANES
	for (; i < n; i++) {
		uint16_t v = counts[i], count = v & CNT_MASK;
		unsigned stored = (unsigned)(buf[2 * i] << 8 | buf[2 * i + 1]);

		bad |= (stored != count) | (count == CNT_BIG) |
		       ((v & CNT_COPIED) && stored != 1) |
		       ((v & CNT_NOT_COPIED) && stored == 1);
	}
	if (bad)
		return false;
	for (i = n; i-- > 0;)
		if (counts[i] & CNT_MASK) {
			*highest = start + i;
			break;
		}
	return true;
}

static int compare_refcounts(struct checker *c, uint64_t *highest)
{
	struct q2e_image *img = c->img;
	struct q2e_check_result *res = c->res;
	uint64_t per_block = c->cs * 8 / img->refcount_bits;
	int ret;

	*highest = 0;
	set_key(c, (uint64_t)ST_COMPARE << 32, 0, 0);
	for (uint64_t ti = 0; ti * per_block < c->nb_clusters; ti++) {
		const struct q2e_region *r = ti < c->nrefblock ? c->refblock[ti]
							       : NULL;
		uint64_t start = ti * per_block;
		uint64_t end = start + per_block;
		bool unreadable = refblock_unreadable(c, ti);

		if (end > c->nb_clusters)
			end = c->nb_clusters;
		if (r && !unreadable) {
			ret = read_cluster(c, r, 0);
			if (ret < 0)
				return ret;
			progress(c, r->size);
		}
		if (r && !unreadable && img->hdr.refcount_order == 4 &&
		    block_agrees16(c, start, end, highest))
			continue;
		for (uint64_t i = start; i < end; i++) {
			uint64_t stored = 0, computed;
			uint16_t flags = c->counts[i] & ~CNT_MASK;

			if (unreadable) {
				res->check_errors++;
				ret = add_line(c, "Can't get refcount for cluster %" PRIu64
					       ": Input/output error", i);
				if (ret < 0)
					return ret;
				continue;
			}
			if (r && img->hdr.refcount_order == 4)
				stored = qcow2_be16(c->buf + 2 * (i - start));
			else if (r)
				stored = qcow2_refcount_get(c->buf, (size_t)c->cs,
							    img->hdr.refcount_order,
							    i - start);
			computed = get_count(c, i);
			if (stored || computed)
				*highest = i;
			if ((flags & CNT_COPIED) && stored != 1)
				c->copied_suspect = true;
			if ((flags & CNT_NOT_COPIED) && stored == 1)
				c->copied_suspect = true;
			if (stored == computed)
				continue;
			ret = add_line(c, "%s cluster %" PRIu64 " refcount=%" PRIu64
				       " reference=%" PRIu64,
				       stored < computed ? "ERROR" : "Leaked", i,
				       stored, computed);
			if (ret < 0)
				return ret;
			if (stored < computed)
				res->corruptions++;
			else
				res->leaks++;
		}
	}
	return 0;
}

/* qcow2_get_refcount(): false where QEMU fails (an unaligned block). */
static int stored_refcount(struct checker *c, uint64_t k, uint64_t *v,
			   bool *ok)
{
	uint64_t per_block = c->cs * 8 / c->img->refcount_bits;

	*ok = !refblock_unreadable(c, k / per_block);
	*v = 0;
	if (!*ok)
		return 0;
	return q2e_image_refcount(c->img, k, v, c->err);
}

/* check_oflag_copied(): COPIED must say whether the refcount is 1. */
static int check_copied(struct checker *c)
{
	struct q2e_image *img = c->img;
	struct q2e_check_result *res = c->res;
	unsigned esize = qcow2_l2_entry_size(&img->l2);
	bool ok;
	int ret;

	set_key(c, (uint64_t)ST_COPIED << 32, 0, 0);
	for (uint64_t i = 0; i < img->nl1; i++) {
		uint64_t l1e = img->l1[i], l2_off = l1e & QCOW2_OFFSET_MASK;
		uint64_t rc;
		const uint8_t *p;

		if (!l2_off)
			continue;
		ret = stored_refcount(c, l2_off >> c->cbits, &rc, &ok);
		if (ret < 0)
			return ret;
		if (!ok)
			continue;
		if ((rc == 1) != ((l1e & QCOW2_OFLAG_COPIED) != 0)) {
			res->corruptions++;
			ret = add_line(c, "ERROR OFLAG_COPIED L2 cluster: l1_index=%" PRIu64
				       " l1_entry=%" PRIx64 " refcount=%" PRIu64,
				       i, l1e, rc);
			if (ret < 0)
				return ret;
		}
		if (!c->copied_suspect)
			continue;
		ret = read_cluster(c, NULL, l2_off);
		if (ret < 0)
			return ret;
		p = c->buf;
		for (uint64_t j = 0; j < img->l2_entries; j++, p += esize) {
			uint64_t raw = qcow2_be64(p);
			struct qcow2_l2_entry e;

			if (!raw)
				continue;
			qcow2_l2_entry_decode(raw, 0, &img->l2, &e);
			if (e.type != QCOW2_CLUSTER_NORMAL &&
			    e.type != QCOW2_CLUSTER_ZERO_ALLOC)
				continue;
			if (c->data_file) {
				rc = 1;
			} else {
				ret = stored_refcount(c, e.host_offset >> c->cbits,
						      &rc, &ok);
				if (ret < 0)
					return ret;
				if (!ok)
					continue;
			}
			if ((rc == 1) != e.copied) {
				res->corruptions++;
				ret = add_line(c, "ERROR OFLAG_COPIED data cluster: l2_entry=%" PRIx64
					       " refcount=%" PRIu64, raw, rc);
				if (ret < 0)
					return ret;
			}
		}
	}
	return 0;
}

static enum q2e_finding_type problem_type(const struct q2e_problem *p)
{
	switch (p->type) {
	case Q2E_PROBLEM_PAST_END:
		return Q2E_FINDING_PAST_EOF;
	case Q2E_PROBLEM_MISALIGNED:
		return Q2E_FINDING_MISALIGNED;
	case Q2E_PROBLEM_RESERVED_BITS:
		return Q2E_FINDING_RESERVED_BITS;
	default:
		break;
	}
	/* Otherwise by the structure's stable name (names.c). */
	if (strncmp(p->structure, "snapshot", 8) == 0)
		return Q2E_FINDING_SNAPSHOT;
	if (strncmp(p->structure, "bitmap", 6) == 0 ||
	    strcmp(p->structure, "ext_bitmaps") == 0)
		return Q2E_FINDING_BITMAP;
	return Q2E_FINDING_OTHER;
}

/* The problems the model recorded while reading the image. */
static int model_findings(struct checker *c)
{
	const struct q2e_image *img = c->img;

	for (size_t i = 0; i < img->nproblems; i++) {
		const struct q2e_problem *p = &img->problems[i];
		struct q2e_finding *f;

		f = add_finding(c, problem_type(p), p->severity, p->offset, "%s",
				p->message);
		if (!f)
			return Q2E_ENOMEM;
		f->structure = strdup(p->structure);
		if (!f->structure)
			return nomem(c);
	}
	return 0;
}

/* Cluster 0 holds the header, its extensions and the backing file name. */
static bool in_header_cluster(const struct q2e_region *r)
{
	return r->kind == Q2E_REGION_HEADER ||
	       r->kind == Q2E_REGION_EXTENSION ||
	       r->kind == Q2E_REGION_BACKING_FILE;
}

static uint64_t last_cluster(const struct checker *c,
			     const struct q2e_region *r)
{
	return (r->offset + (r->size ? r->size - 1 : 0)) >> c->cbits;
}

static int overlap_finding(struct checker *c, const struct q2e_region *a,
			   const struct q2e_region *b)
{
	char sa[96], sb[96];
	uint64_t k = (b->offset > a->offset ? b->offset : a->offset) >>
		     c->cbits;
	struct q2e_finding *f;

	if (q2e_region_symbol(c->img, a, 0, sa, sizeof(sa)) < 0)
		snprintf(sa, sizeof(sa), "%s", q2e_region_kind_name(a->kind));
	if (q2e_region_symbol(c->img, b, 0, sb, sizeof(sb)) < 0)
		snprintf(sb, sizeof(sb), "%s", q2e_region_kind_name(b->kind));
	f = add_finding(c, Q2E_FINDING_OVERLAP, Q2E_SEV_ERROR, k << c->cbits,
			"%s (%s at 0x%" PRIx64 ") and %s (%s at 0x%" PRIx64
			") share cluster 0x%" PRIx64, sa,
			q2e_region_kind_name(a->kind), a->offset, sb,
			q2e_region_kind_name(b->kind), b->offset,
			k << c->cbits);
	if (!f)
		return Q2E_ENOMEM;
	ref_region(f, a);
	ref_region(f, b);
	return 0;
}

/*
 * Two regions in one cluster: a sweep over the regions, which the model
 * keeps sorted by offset, with the regions still open at each start.
 */
static int overlap_findings(struct checker *c)
{
	const struct q2e_image *img = c->img;
	const struct q2e_region **open = NULL;
	size_t nopen = 0;
	int ret = 0;

	open = malloc((img->nregions + 1) * sizeof(*open));
	if (!open)
		return nomem(c);
	for (size_t i = 0; i < img->nregions && ret == 0; i++) {
		const struct q2e_region *r = &img->regions[i];
		uint64_t first = r->offset >> c->cbits;
		size_t keep = 0;

		for (size_t k = 0; k < nopen; k++)
			if (last_cluster(c, open[k]) >= first)
				open[keep++] = open[k];
		nopen = keep;
		for (size_t k = 0; k < nopen && ret == 0; k++) {
			if (in_header_cluster(open[k]) && in_header_cluster(r))
				continue;
			ret = overlap_finding(c, open[k], r);
		}
		open[nopen++] = r;
	}
	free(open);
	return ret;
}

/* One table reached twice where only snapshots may share it. */
static int shared_findings(struct checker *c)
{
	const struct q2e_image *img = c->img;

	/* One finding per region, however many owners share it: the finding
	 * lists the owners, so one per pair would grow with their square. */
	for (size_t i = 0; i < img->nregions; i++) {
		const struct q2e_region *r = &img->regions[i];
		uint32_t first = 0, pairs = 0;
		char sa[96], sb[96];
		struct q2e_finding *f;

		if (r->kind == Q2E_REGION_EXTENSION)
			continue;
		for (uint32_t k = 1; k < r->nowners; k++) {
			const struct q2e_owner *a = &r->owners[k - 1];
			const struct q2e_owner *b = &r->owners[k];

			if (r->kind == Q2E_REGION_L2 &&
			    (a->kind != b->kind || a->id != b->id))
				continue;	/* a snapshot shares it */
			if (!pairs++)
				first = k - 1;
		}
		if (!pairs)
			continue;
		q2e_region_symbol(img, r, first, sa, sizeof(sa));
		q2e_region_symbol(img, r, first + 1, sb, sizeof(sb));
		if (pairs == 1)
			f = add_finding(c, Q2E_FINDING_SHARED, Q2E_SEV_ERROR,
					r->offset,
					"%s and %s are the same %s at 0x%" PRIx64,
					sa, sb, q2e_region_kind_name(r->kind),
					r->offset);
		else
			f = add_finding(c, Q2E_FINDING_SHARED, Q2E_SEV_ERROR,
					r->offset,
					"%s, %s and %" PRIu32
					" more are the same %s at 0x%" PRIx64,
					sa, sb, pairs - 1,
					q2e_region_kind_name(r->kind), r->offset);
		if (!f)
			return Q2E_ENOMEM;
		ref_region(f, r);
	}
	return 0;
}

/*
 * Whatever QEMU refuses to open, qemu-img check cannot check either; in
 * the order qcow2_do_open() looks.
 */
static const char *unopenable(const struct checker *c)
{
	const struct q2e_image *img = c->img;
	const struct qcow2_header *h = &img->hdr;
	uint64_t l1_bytes = h->l1_size * 8ULL;
	uint64_t rt_bytes = h->refcount_table_clusters * (uint64_t)c->cs;
	uint64_t span = c->cs * img->l2_entries;

	if (h->incompatible_features & ~QCOW2_INCOMPAT_KNOWN)
		return "the image has unknown incompatible features";
	if (!img->refcount_bits)
		return "refcount_order is above 6";
	/* (No refcount table at all is opened for a check, and then every
	 * refcount reads as 0.) */
	if (rt_bytes > QCOW2_MAX_REFTABLE_BYTES)
		return "the refcount table size is invalid";
	if (past_int64(h->refcount_table_offset, rt_bytes))
		return "the refcount table offset is invalid";
	if (h->refcount_table_offset & (c->cs - 1))
		return "the refcount table is not cluster aligned";
	if (l1_bytes > QCOW2_MAX_L1_BYTES)
		return "the active L1 table is above QEMU's 32 MiB limit";
	if (past_int64(h->l1_table_offset, l1_bytes))
		return "the active L1 table offset is invalid";
	if (h->l1_table_offset & (c->cs - 1))
		return "the active L1 table is not cluster aligned";
	uint64_t l1_needed = h->size / span + (h->size % span != 0);

	if (l1_needed > INT_MAX)	/* size_to_l1() */
		return "the image is too big";
	if (h->l1_size < l1_needed)
		return "the active L1 table is too small for the virtual size";
	if (l1_bytes && unreadable(h->l1_table_offset, l1_bytes))
		return "the active L1 table cannot be read";
	if (rt_bytes && unreadable(h->refcount_table_offset, rt_bytes))
		return "the refcount table cannot be read";
	if (h->backing_file_offset &&
	    (h->backing_file_size > 1023 ||
	     (h->backing_file_offset <= c->cs &&
	      h->backing_file_size > c->cs - h->backing_file_offset)))
		return "the backing file name is too long";
	if (img->file_size / c->cs + 1 > INT_MAX)
		return "the image has more than INT_MAX clusters";
	if (h->backing_file_offset > c->cs)
		return "the backing file offset is past the header cluster";
	if (img->extensions_damaged)
		return "a header extension runs past the header cluster";
	if (h->crypt_method > QCOW2_CRYPT_LUKS)
		return "the encryption method is unknown";
	if ((h->autoclear_features & QCOW2_AUTOCLEAR_DATA_FILE_RAW) &&
	    !(h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE))
		return "data-file-raw is set without an external data file";
	if ((h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE) &&
	    !img->data_file)
		return "an external data file is required but not named";
	if (h->compression_type > QCOW2_COMPRESSION_ZSTD)
		return "the compression type is unknown";
	if (h->compression_type &&
	    !(h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION))
		return "a compression type is set without its incompatible bit";
	if ((h->incompatible_features & QCOW2_INCOMPAT_EXTL2) &&
	    h->cluster_bits < 14)
		return "extended L2 entries need clusters of at least 16 KiB";
	return NULL;
}

/*
 * bitmap_list_load() and check_dir_entry(): a bitmap directory QEMU refuses
 * to open with (the bitmaps bit set).  Entries must fill the directory
 * exactly, without extra data, and every one meet QEMU's constraints.
 */
static const char *bitmaps_unopenable(const struct checker *c)
{
	const struct q2e_image *img = c->img;
	const uint64_t max_table = 0x8000000, max_phys = 0x20000000;
	uint64_t used = 0;

	if (!img->bitmaps_ext.bitmap_directory_size)
		return "the bitmap directory is empty";
	for (size_t i = 0; i < img->nbitmaps; i++) {
		const struct qcow2_bitmap_entry *e = &img->bitmaps[i].entry;
		uint64_t phys = (uint64_t)e->bitmap_table_size * c->cs;

		used += e->entry_size;
		if (e->extra_data_size)
			return "a bitmap has extra data, which QEMU does not support";
		if (!e->bitmap_table_size || !e->bitmap_table_offset ||
		    (e->bitmap_table_offset & (c->cs - 1)) ||
		    e->bitmap_table_size > max_table ||
		    e->granularity_bits > 31 || e->granularity_bits < 9 ||
		    (e->flags & ~3U) || e->name_size > 1023 || e->type != 1 ||
		    phys > max_phys ||
		    (!(e->flags & 1) &&
		     img->hdr.size > ((phys * 8) << e->granularity_bits)))
			return "a bitmap does not satisfy QEMU's constraints";
	}
	if (img->nbitmaps != img->bitmaps_ext.nb_bitmaps ||
	    used != img->bitmaps_ext.bitmap_directory_size)
		return "the bitmap directory is broken";
	return NULL;
}

/* qcow2_read_extensions(): the extensions QEMU refuses to open with. */
static const char *extensions_unopenable(const struct checker *c)
{
	const struct q2e_image *img = c->img;
	const struct qcow2_bitmaps_ext *b = &img->bitmaps_ext;

	for (size_t i = 0; i < img->nexts; i++) {
		const struct q2e_extension *e = &img->exts[i];

		if (e->magic == QCOW2_EXT_BACKING_FORMAT && e->length >= 16)
			return "the backing format extension is too long";
		if (e->magic == QCOW2_EXT_CRYPTO && e->length != 16)
			return "the encryption header extension has an invalid length";
		if (e->magic == QCOW2_EXT_BITMAPS && e->length != 24)
			return "the bitmaps extension has an invalid length";
	}
	if (img->hdr.crypt_method == QCOW2_CRYPT_LUKS && !img->has_crypto_ext)
		return "LUKS encryption without an encryption header extension";
	if (img->has_crypto_ext && img->hdr.crypt_method != QCOW2_CRYPT_LUKS)
		return "an encryption header extension without LUKS encryption";
	if (img->has_crypto_ext && (img->crypto_ext.offset & (c->cs - 1)))
		return "the LUKS header is not cluster aligned";
	if (!img->has_bitmaps_ext ||
	    !(img->hdr.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS))
		return NULL;	/* bitmaps QEMU ignores */
	if (b->reserved)
		return "the bitmaps extension has its reserved field set";
	if (b->nb_bitmaps > QCOW2_MAX_BITMAPS)
		return "the bitmaps extension counts more than 65535 bitmaps";
	if (!b->nb_bitmaps)
		return "the bitmaps extension counts no bitmaps";
	if (b->bitmap_directory_offset & (c->cs - 1))
		return "the bitmap directory is not cluster aligned";
	if (b->bitmap_directory_size > 1024ULL * QCOW2_MAX_BITMAPS)
		return "the bitmap directory is larger than QEMU supports";
	return bitmaps_unopenable(c);
}

/* Snapshot tables QEMU opens but qemu-img check then gives up on. */
static const char *snapshots_unreadable(const struct checker *c)
{
	const struct qcow2_header *h = &c->img->hdr;
	uint64_t bytes = h->nb_snapshots * (uint64_t)QCOW2_SNAPSHOT_FIXED_SIZE;

	if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return "the snapshot table has more than 65536 entries";
	if (past_int64(h->snapshots_offset, bytes) ||
	    (h->snapshots_offset & (c->cs - 1)))
		return "the snapshot table offset is invalid";
	if (h->nb_snapshots && unreadable(h->snapshots_offset, bytes))
		return "the snapshot table cannot be read";
	if (c->img->snapshot_extra_over_limit >= 0)
		return "a snapshot table entry has more than 1024 bytes of extra data";
	if (c->img->snapshot_table_too_big)
		return "the snapshot table is larger than QEMU's 64 MiB";
	return NULL;
}

static int cmp_lines(const void *pa, const void *pb)
{
	const struct q2e_check_line *a = pa, *b = pb;

	for (int i = 0; i < 3; i++)
		if (a->key[i] != b->key[i])
			return a->key[i] < b->key[i] ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int run(struct checker *c)
{
	struct q2e_image *img = c->img;
	struct q2e_check_result *res = c->res;
	const struct qcow2_header *h = &img->hdr;
	const char *why;
	uint64_t highest;
	int ret;

	res->total_clusters = ((h->size & ~511ULL) + c->cs - 1) >> c->cbits;
	ret = model_findings(c);
	if (ret == 0)
		ret = overlap_findings(c);
	if (ret == 0)
		ret = shared_findings(c);
	if (ret < 0)
		return ret;
	why = unopenable(c);
	if (!why)
		why = extensions_unopenable(c);
	if (!why)
		why = snapshots_unreadable(c);
	if (why) {
		res->check_errors++;
		res->incomplete = strdup(why);
		return res->incomplete ? 0 : nomem(c);
	}
	c->refcount_max = img->refcount_bits == 64
				  ? UINT64_MAX
				  : (1ULL << img->refcount_bits) - 1;
	c->file_clusters = (img->file_size + c->cs - 1) >> c->cbits;
	ret = grow_counts(c, c->file_clusters);
	if (ret == 0)
		ret = build_meta_ranges(c);
	if (ret == 0)
		ret = index_refblocks(c);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < img->nregions; i++)
		if (img->regions[i].kind == Q2E_REGION_L2 ||
		    img->regions[i].kind == Q2E_REGION_REFCOUNT_BLOCK)
			c->total += img->regions[i].size;

	set_key(c, (uint64_t)ST_HEADER << 32, 0, 0);
	ret = inc_refs(c, 0, c->cs);
	if (ret == 0)
		ret = check_l1(c, ST_ACTIVE, 0, h->l1_table_offset, h->l1_size,
			       img->l1, img->nl1);
	if (ret == 0)
		ret = check_snapshots(c);
	if (ret == 0)
		ret = check_l2_regions(c);
	if (ret < 0)
		return ret;
	set_key(c, (uint64_t)ST_SNAPSHOT_TABLE << 32, 0, 0);
	if (h->nb_snapshots)
		ret = inc_refs(c, h->snapshots_offset, img->snapshot_table_size);
	set_key(c, (uint64_t)ST_REFTABLE << 32, 0, 0);
	if (ret == 0)
		ret = inc_refs(c, h->refcount_table_offset,
			       h->refcount_table_clusters * c->cs);
	set_key(c, (uint64_t)ST_CRYPTO << 32, 0, 0);
	if (ret == 0 && img->has_crypto_ext && img->crypto_ext.length)
		ret = inc_refs(c, img->crypto_ext.offset,
			       img->crypto_ext.length);
	if (ret == 0)
		ret = check_bitmaps(c);
	if (ret < 0 || res->incomplete)
		return ret;
	ret = check_refblocks(c);
	if (ret == 0)
		ret = compare_refcounts(c, &highest);
	if (ret == 0)
		ret = check_copied(c);
	if (ret < 0)
		return ret;
	res->image_end_offset = (highest + 1) * c->cs;
	return 0;
}

int q2e_check_run(struct q2e_image *img, const struct q2e_check_options *opts,
		  struct q2e_check_result **out, struct q2e_error *err)
{
	struct checker c = { 0 };
	int ret;

	*out = NULL;
	c.res = calloc(1, sizeof(*c.res));
	c.buf = malloc((size_t)img->cluster_size);
	if (!c.res || !c.buf) {
		free(c.res);
		free(c.buf);
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	}
	c.img = img;
	c.opts = opts;
	c.err = err;
	c.cs = img->cluster_size;
	c.cbits = img->hdr.cluster_bits;
	c.data_file = img->l2.has_data_file;
	c.res->filename = img->path;
	ret = run(&c);
	unmap_counts(c.counts, c.cap);
	free(c.big.keys);
	free(c.big.vals);
	free(c.skip_snapshot);
	free(c.refblock);
	free(c.meta);
	free(c.buf);
	if (ret < 0) {
		q2e_check_result_free(c.res);
		return ret;
	}
	if (c.res->nlines)	/* qsort(NULL, 0, ...) is undefined */
		qsort(c.res->lines, c.res->nlines, sizeof(*c.res->lines),
		      cmp_lines);
	*out = c.res;
	return 0;
}

void q2e_check_result_free(struct q2e_check_result *res)
{
	if (!res)
		return;
	for (size_t i = 0; i < res->nlines; i++)
		free(res->lines[i].text);
	free(res->lines);
	for (size_t i = 0; i < res->nfindings; i++) {
		free(res->findings[i].structure);
		free(res->findings[i].message);
	}
	free(res->findings);
	for (size_t i = 0; res->snapshot_l1 && i < res->nsnapshots; i++)
		free(res->snapshot_l1[i]);
	free(res->snapshot_l1);
	free(res->snapshot_nl1);
	free(res->incomplete);
	free(res);
}

int q2e_check_exit_status(const struct q2e_check_result *res)
{
	if (res->incomplete || res->check_errors)
		return Q2E_CHECK_INCOMPLETE;
	if (res->corruptions || res->overlaps)
		return Q2E_CHECK_CORRUPT;
	if (res->leaks)
		return Q2E_CHECK_LEAKS;
	return Q2E_CHECK_CLEAN;
}

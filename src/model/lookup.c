/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Accessors views use instead of reading the image themselves: a region's
 * bytes, a snapshot's L1 table, the L2 entry behind a guest offset and the
 * stored refcount of a host cluster.  Each goes through the byte source and
 * the decoders, with the bounds the walk established.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/model.h"
#include "source/source.h"
#include "walk.h"

/*
 * Reads LEN bytes at OFF of region R.  An error names the region by its
 * symbol, but the name is made only then, by reading again: formatting
 * it for each of 41,000 reads was a few percent of check and dump.
 */
static int64_t region_pread(struct q2e_image *img, const struct q2e_region *r,
			    void *buf, size_t len, uint64_t off,
			    struct q2e_error *err)
{
	char what[96];
	int64_t n;

	n = q2e_source_pread(img->src, buf, len, off,
			     q2e_region_kind_name(r->kind), err);
	if (n >= 0)
		return n;
	if (q2e_region_symbol(img, r, 0, what, sizeof(what)) < 0)
		return n;
	return q2e_source_pread(img->src, buf, len, off, what, err);
}

int q2e_image_read_region(struct q2e_image *img, const struct q2e_region *r,
			  uint8_t *buf, struct q2e_error *err)
{
	int64_t n;

	n = region_pread(img, r, buf, (size_t)r->avail, r->offset, err);
	if (n < 0)
		return (int)n;
	memset(buf + n, 0, (size_t)(r->size - (uint64_t)n));	/* past EOF */
	return 0;
}

int q2e_image_read_regions(struct q2e_image *img, const struct q2e_region *r,
			   size_t n, uint8_t *buf, struct q2e_error *err)
{
	const struct q2e_region *last = r + n - 1;
	uint64_t size = last->offset + last->size - r->offset;
	int64_t got;

	if (n == 1)
		return q2e_image_read_region(img, r, buf, err);
	got = region_pread(img, r, buf,
			   (size_t)(last->offset + last->avail - r->offset),
			   r->offset, err);
	if (got < 0)
		return (int)got;
	memset(buf + got, 0, (size_t)(size - (uint64_t)got));	/* past EOF */
	return 0;
}

int q2e_image_read_region_part(struct q2e_image *img,
			       const struct q2e_region *r, uint64_t pos,
			       uint8_t *buf, size_t len, struct q2e_error *err)
{
	char what[96];
	int64_t n;

	if (pos > r->avail || len > r->avail - pos)
		return q2e_error_set(err, Q2E_EUSAGE,
				     "read of %zu bytes at %llu is outside the region",
				     len, (unsigned long long)pos);
	n = region_pread(img, r, buf, len, r->offset + pos, err);
	if (n < 0)
		return (int)n;
	if ((size_t)n == len)
		return 0;
	if (q2e_region_symbol(img, r, 0, what, sizeof(what)) < 0)
		snprintf(what, sizeof(what), "%s", q2e_region_kind_name(r->kind));
	return q2e_error_set(err, Q2E_EIO,
			     "'%s': %s at 0x%llx: the file ended while reading it",
			     img->path, what,
			     (unsigned long long)(r->offset + pos));
}

int q2e_image_read_bytes(struct q2e_image *img, uint64_t off, uint8_t *buf,
			 size_t len, struct q2e_error *err)
{
	int64_t n = q2e_source_pread(img->src, buf, len, off, "metadata", err);

	if (n < 0)
		return (int)n;
	if ((size_t)n == len)
		return 0;
	return q2e_error_set(err, Q2E_EIO,
			     "'%s': metadata at 0x%llx: the file ended while reading it",
			     img->path, (unsigned long long)(off + (uint64_t)n));
}

bool q2e_image_read_cached(struct q2e_image *img, uint64_t off, uint8_t *buf,
			   size_t len)
{
	return q2e_source_pread_cached(img->src, buf, len, off) == (int64_t)len;
}

/* The source's batch, behind the model: views see the model only. */
struct q2e_image_batch {
	struct q2e_source_batch *src;
};

struct q2e_image_batch *q2e_image_batch_open(struct q2e_image *img)
{
	struct q2e_image_batch *b = malloc(sizeof(*b));

	if (b && !(b->src = q2e_source_batch_open(img->src))) {
		free(b);
		b = NULL;
	}
	return b;
}

void q2e_image_read_cached_many(struct q2e_image *img,
				struct q2e_image_batch *b,
				struct q2e_cached_read *r, size_t n)
{
	if (b) {
		q2e_source_batch_cached(b->src, r, n);
		return;
	}
	for (size_t i = 0; i < n; i++)
		r[i].ok = q2e_image_read_cached(img, r[i].off, r[i].buf,
						r[i].len);
}

void q2e_image_batch_close(struct q2e_image_batch *b)
{
	if (b)
		q2e_source_batch_close(b->src);
	free(b);
}

bool q2e_image_holds_none(struct q2e_image *img, uint64_t off, uint64_t len)
{
	return len >= Q2E_HOLE_ASK_MIN &&
	       q2e_source_held_end(img->src, off, len) == off;
}

int q2e_image_file_extents(struct q2e_image *img, struct q2e_extent **out,
			   size_t *n, struct q2e_error *err)
{
	return q2e_source_data_extents(img->src, out, n, err);
}

int q2e_image_snapshot_l1_each(struct q2e_image *img, size_t n,
			       q2e_entries_fn fn, void *arg,
			       struct q2e_error *err)
{
	const struct q2e_snapshot *s = &img->snapshots[n];
	uint64_t nread;

	if (!s->l1_read)
		return 0;	/* the walk recorded why */
	return table_entries_each(img, s->entry.l1_table_offset,
				  s->entry.l1_size, "a snapshot's L1 table",
				  fn, arg, &nread, err);
}

int q2e_image_read_snapshot_l1(struct q2e_image *img, size_t n,
			       uint64_t **l1, uint64_t *count,
			       struct q2e_error *err)
{
	const struct q2e_snapshot *s = &img->snapshots[n];
	struct walk w = { .img = img, .err = err };

	*l1 = NULL;
	*count = 0;
	if (!s->l1_read)
		return 0;	/* the walk recorded why */
	return walk_read_entries(&w, s->entry.l1_table_offset,
				 s->entry.l1_size, "a snapshot's L1 table", l1,
				 count);
}

/* One L2 table (or refcount block) at a time: lookups are sequential. */
struct q2e_l2_cache {
	struct q2e_image *img;
	uint64_t table_offset;	/* of the cached table, 0: none */
	uint64_t avail;
	uint8_t *buf;
	/* The L1 entry of the last lookup: map asks for every cluster, and
	 * thousands in a row share it. */
	uint64_t l1i, l2_offset;
	bool l1_known;
	/* The last run found: entries [RUN_FROM, RUN_END) of the table at
	 * RUN_TABLE are alike, and RUN_WHOLE if RUN_END is where it stops
	 * (else where the scan stopped).  Each L1 entry that names one
	 * table asks for its runs again (65,536 naming one table of 2 MiB,
	 * each scanned whole, took map 13 s). */
	uint64_t run_table, run_from, run_end;
	bool run_whole;
	/* Likewise the last run of compressed entries: [CRUN_FROM, CRUN_END)
	 * of the table at CRUN_TABLE, always to where it stops. */
	uint64_t crun_table, crun_from, crun_end;
	/* Whether the file holds none of the table at ZEROS_TABLE. */
	uint64_t zeros_table;
	bool zeros;
	/* Tables of Q2E_READ_AHEAD_MAX bytes or less read ahead from the
	 * page cache, in L1 order (load_ahead()); made at the first. */
	struct q2e_read_ahead *ahead;
	bool ahead_made;
};

struct q2e_l2_cache *q2e_l2_cache_new(struct q2e_image *img)
{
	struct q2e_l2_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->img = img;
	c->buf = malloc((size_t)img->cluster_size);
	if (!c->buf) {
		free(c);
		return NULL;
	}
	return c;
}

void q2e_l2_cache_free(struct q2e_l2_cache *c)
{
	if (c) {
		q2e_read_ahead_free(c->ahead);
		free(c->buf);
		free(c);
	}
}

/* Entries [I, END) of a table of tables (the active L1 table, the
 * refcount table), whose tables are read ahead. */
struct table_ahead {
	const struct q2e_image *img;
	uint64_t i, end;
};

/* The L2 tables of the active L1 table's entries. */
static int next_l2(void *ctx, struct q2e_extent *e)
{
	struct table_ahead *a = ctx;
	const struct q2e_image *img = a->img;
	struct qcow2_l1_entry l1e;

	if (a->i >= a->end)
		return Q2E_AHEAD_END;
	qcow2_l1_entry_decode(img->l1[a->i++], &l1e);
	if (!l1e.l2_offset || l1e.l2_offset & (img->cluster_size - 1) ||
	    l1e.l2_offset >= img->file_size)
		return Q2E_AHEAD_PASS;
	*e = (struct q2e_extent){ l1e.l2_offset, img->cluster_size };
	return Q2E_AHEAD_READ;
}

/* The refcount blocks of the refcount table's entries. */
static int next_block(void *ctx, struct q2e_extent *e)
{
	struct table_ahead *a = ctx;
	const struct q2e_image *img = a->img;
	uint64_t block;

	if (a->i >= a->end)
		return Q2E_AHEAD_END;
	block = img->reftable[a->i++] & ~QCOW2_REFTABLE_RESERVED_MASK;
	if (!block || block & (img->cluster_size - 1) ||
	    block >= img->file_size)
		return Q2E_AHEAD_PASS;
	*e = (struct q2e_extent){ block, img->cluster_size };
	return Q2E_AHEAD_READ;
}

/*
 * Loads the table at OFF, the first that NEXT names from entry I of its
 * parent table, from the tables read ahead with it, as the page cache
 * holds them: false to read it as usual.  A map of the 1 GiB image of
 * 512-byte clusters reads 34,000 L2 tables of 512 bytes, a system call
 * each where one is dear (page table isolation); 64 at a time they take
 * one (src/model/read_ahead.c).
 */
static bool load_ahead(struct q2e_l2_cache *c, uint64_t off, q2e_ahead_fn next,
		       uint64_t i, uint64_t n)
{
	struct q2e_image *img = c->img;
	struct table_ahead a = { img, i, n - i > 256 ? i + 256 : n };
	size_t cs = (size_t)img->cluster_size;
	const uint8_t *p;

	if (img->cluster_size > Q2E_READ_AHEAD_MAX)
		return false;
	if (!c->ahead_made) {
		c->ahead_made = true;
		c->ahead = q2e_read_ahead_new(img);
	}
	p = q2e_read_ahead_take(c->ahead, off, cs, next, &a);
	if (!p)
		return false;
	memcpy(c->buf, p, cs);
	c->avail = cs;
	c->table_offset = off;
	return true;
}

static int cache_load(struct q2e_l2_cache *c, uint64_t off, const char *what,
		      struct q2e_error *err)
{
	int64_t n;

	if (c->table_offset == off)
		return 0;
	c->table_offset = 0;
	memset(c->buf, 0, (size_t)c->img->cluster_size);
	n = q2e_source_pread(c->img->src, c->buf, (size_t)c->img->cluster_size,
			     off, what, err);
	if (n < 0)
		return (int)n;
	c->avail = (uint64_t)n;
	c->table_offset = off;
	return 0;
}

/*
 * Whether the file holds none of the L2 table of the last lookup: past
 * its end, or in a hole (asked once a table, and kept).
 */
static bool l2_zeros(struct q2e_l2_cache *c)
{
	struct q2e_image *img = c->img;

	if (c->l2_offset >= img->file_size)
		return true;
	if (c->zeros_table != c->l2_offset) {
		c->zeros_table = c->l2_offset;
		c->zeros = q2e_image_holds_none(img, c->l2_offset,
						img->cluster_size);
	}
	return c->zeros;
}

int q2e_image_l2_lookup(struct q2e_l2_cache *c, uint64_t off,
			struct qcow2_l2_entry *e, struct q2e_error *err)
{
	struct q2e_image *img = c->img;
	uint64_t cluster = off >> img->hdr.cluster_bits;
	/* Entries per table are a power of two (the cluster size over 8 or
	 * 16): a shift, where a division cost a third of map's time. */
	unsigned l2_bits = (unsigned)__builtin_ctzll(img->l2_entries | 1ULL << 63);
	uint64_t l1i = cluster >> l2_bits;
	uint64_t l2i = cluster & (img->l2_entries - 1);
	unsigned esize = qcow2_l2_entry_size(&img->l2);
	int ret;

	memset(e, 0, sizeof(*e));
	e->type = QCOW2_CLUSTER_UNALLOCATED;
	if (l1i >= img->nl1)
		return 0;
	if (!c->l1_known || c->l1i != l1i) {
		struct qcow2_l1_entry l1e;

		qcow2_l1_entry_decode(img->l1[l1i], &l1e);
		c->l1i = l1i;
		c->l2_offset = l1e.l2_offset;
		c->l1_known = true;
	}
	if (!c->l2_offset)
		return 0;
	/* As in QEMU: an unaligned table is an error, while the part of a
	 * table past the end of the file reads as zeros (unallocated); the
	 * walk recorded both as problems. */
	if (c->l2_offset & (img->cluster_size - 1))
		return q2e_error_set(err, Q2E_ECORRUPT,
				     "'%s': l2_table_%" PRIu64 " at 0x%" PRIx64
				     " is not cluster aligned",
				     img->path, l1i, c->l2_offset);
	/* Wholly past the end, or in a hole: zeros, without clearing a
	 * cluster for each such table (65,536 of 2 MiB each took diff
	 * 14 s). */
	if (l2_zeros(c))
		return 0;
	if (c->table_offset != c->l2_offset &&
	    !load_ahead(c, c->l2_offset, next_l2, l1i, img->nl1)) {
		ret = cache_load(c, c->l2_offset, "an L2 table", err);
		if (ret < 0)
			return ret;
	}
	const uint8_t *p = c->buf + l2i * esize;
	qcow2_l2_entry_decode(qcow2_be64(p), img->l2.extended ? qcow2_be64(p + 8)
							     : 0,
			      &img->l2, e);
	return 0;
}

/*
 * Whether the subcluster BITMAP of an extended entry gives every
 * subcluster one type (all allocated, all zero, or all unallocated): a run
 * of subclusters then goes on through whole clusters.  A 2 TiB image of 2
 * MiB clusters whose tables read as zeros was 32 million lookups, one a
 * subcluster.
 */
static bool one_type(uint64_t bitmap)
{
	uint64_t alloc = bitmap & 0xffffffffU, zero = bitmap >> 32;

	return !(alloc && zero) && (!alloc || alloc == 0xffffffffU) &&
	       (!zero || zero == 0xffffffffU);
}

uint64_t q2e_image_l2_run(struct q2e_l2_cache *c, uint64_t off,
			  uint64_t max)
{
	const struct q2e_image *img = c->img;
	bool extended = img->l2.extended;
	unsigned esize = qcow2_l2_entry_size(&img->l2);
	uint64_t cluster = off >> img->hdr.cluster_bits;
	unsigned l2_bits = (unsigned)__builtin_ctzll(img->l2_entries | 1ULL << 63);
	uint64_t l2i = cluster & (img->l2_entries - 1), raw, bitmap, step, n, j;
	uint64_t whole;
	const uint8_t *p = c->buf + l2i * esize;

	if (!c->l1_known || c->l1i != cluster >> l2_bits || !c->l2_offset)
		return 0;
	n = img->l2_entries - l2i - 1;
	/* A table the file holds none of is one run of zeros. */
	if (!(c->l2_offset & (img->cluster_size - 1)) && l2_zeros(c))
		return n < max ? n : max;
	if (c->table_offset != c->l2_offset)
		return 0;
	/* An entry inside a run continues as its first one does, to the
	 * same end. */
	if (c->run_table == c->table_offset && l2i >= c->run_from &&
	    l2i < c->run_end) {
		j = c->run_end - l2i - 1;
		if (c->run_whole || j >= max)
			return j < max ? j : max;
	}
	raw = qcow2_be64(p);
	bitmap = extended ? qcow2_be64(p + 8) : 0;
	if ((raw & QCOW2_OFLAG_COMPRESSED) || !one_type(bitmap))
		return 0;
	/* Entries are their raw word (and bitmap): the same flags and the
	 * next host cluster decode the same way, one cluster on.  The offset
	 * field must not carry into the bits above it. */
	step = raw & QCOW2_OFFSET_MASK ? img->cluster_size : 0;
	whole = img->l2_entries - l2i - 1;
	if (step && n > (QCOW2_OFFSET_MASK - (raw & QCOW2_OFFSET_MASK)) / step)
		n = (QCOW2_OFFSET_MASK - (raw & QCOW2_OFFSET_MASK)) / step;
	/* To the run's end, past MAX: the next asks go on from there. */
	for (j = 0, p += esize; j < n; j++, p += esize)
		if (qcow2_be64(p) != raw + (j + 1) * step ||
		    (extended && qcow2_be64(p + 8) != bitmap))
			break;
	c->run_table = c->table_offset;
	c->run_from = l2i;
	c->run_end = l2i + 1 + j;
	c->run_whole = j < n || n == whole;
	return j < max ? j : max;
}

uint64_t q2e_image_l2_compressed_run(struct q2e_l2_cache *c, uint64_t off,
				     uint64_t max)
{
	const struct q2e_image *img = c->img;
	unsigned esize = qcow2_l2_entry_size(&img->l2);
	uint64_t cluster = off >> img->hdr.cluster_bits;
	unsigned l2_bits = (unsigned)__builtin_ctzll(img->l2_entries | 1ULL << 63);
	uint64_t l2i = cluster & (img->l2_entries - 1), j;
	const uint8_t *p = c->buf + l2i * esize;

	if (!c->l1_known || c->l1i != cluster >> l2_bits || !c->l2_offset ||
	    c->table_offset != c->l2_offset ||
	    !(qcow2_be64(p) & QCOW2_OFLAG_COMPRESSED))
		return 0;
	if (c->crun_table != c->table_offset || l2i < c->crun_from ||
	    l2i >= c->crun_end) {
		/* From the entry on, to where the run stops: each L1 entry
		 * that names the table asks again from its start. */
		for (j = l2i + 1, p += esize; j < img->l2_entries; j++, p += esize)
			if (!(qcow2_be64(p) & QCOW2_OFLAG_COMPRESSED))
				break;
		c->crun_table = c->table_offset;
		c->crun_from = l2i;
		c->crun_end = j;
	}
	j = c->crun_end - l2i - 1;
	return j < max ? j : max;
}

/*
 * The refcount block that holds host cluster CLUSTER's count, loaded into
 * the image's cache: *BUF, or NULL where no block exists (all counts 0).
 * AHEAD: the next blocks in refcount table order are to be asked for
 * next, and are read ahead with this one.
 */
static int refcount_block(struct q2e_image *img, uint64_t cluster, bool ahead,
			  const uint8_t **buf, struct q2e_error *err)
{
	/* Counts per block: a power of two.  A shift, where the division
	 * was a third of q2e_image_refcount(), which the note called for
	 * each cluster of a preallocated image. */
	unsigned shift = img->hdr.cluster_bits + 3U - img->hdr.refcount_order;
	struct q2e_l2_cache *c;
	uint64_t ti, block;
	int ret;

	*buf = NULL;
	/* No refcount_bits: an order past 6, where the shift is not one. */
	if (!img->refcount_bits)
		return 0;
	ti = cluster >> shift;
	if (ti >= img->nreftable)
		return 0;
	block = img->reftable[ti] & ~QCOW2_REFTABLE_RESERVED_MASK;
	if (!block || block >= img->file_size)
		return 0;
	if (!img->refcount_cache &&
	    !(img->refcount_cache = q2e_l2_cache_new(img)))
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	c = img->refcount_cache;
	if (ahead && c->table_offset != block &&
	    load_ahead(c, block, next_block, ti, img->nreftable))
		ret = 0;
	else
		ret = cache_load(c, block, "a refcount block", err);
	if (ret == 0)
		*buf = c->buf;
	return ret;
}

/* CLUSTER's index in its refcount block, which refcount_block() found. */
static uint64_t refcount_index(const struct q2e_image *img, uint64_t cluster)
{
	unsigned shift = img->hdr.cluster_bits + 3U - img->hdr.refcount_order;

	return cluster & ((1ULL << shift) - 1);
}

int q2e_image_refcount(struct q2e_image *img, uint64_t cluster,
		       uint64_t *refcount, struct q2e_error *err)
{
	const uint8_t *p;
	int ret = refcount_block(img, cluster, false, &p, err);
	uint64_t i;

	*refcount = 0;
	if (ret < 0 || !p)
		return ret;
	i = refcount_index(img, cluster);
	/* QEMU's default width, read in place (I < cluster_size / 2). */
	*refcount = img->hdr.refcount_order == 4
			    ? qcow2_be16(p + i * 2)
			    : qcow2_refcount_get(p, (size_t)img->cluster_size,
						 img->hdr.refcount_order, i);
	return 0;
}

int q2e_image_refcounts_nonzero(struct q2e_image *img, uint64_t cluster,
				uint64_t n, uint64_t *count,
				struct q2e_error *err)
{
	const uint8_t *p = NULL;
	int ret = n ? refcount_block(img, cluster, true, &p, err) : 0;
	uint64_t i, end;

	*count = 0;
	if (ret < 0 || !n || !p)
		return ret;
	i = refcount_index(img, cluster);
	end = i + n;
	if (img->hdr.refcount_order == 4) {
		/* A pass the compiler vectorises: a count is 0 where both
		 * its bytes are. */
		for (; i < end; i++)
			*count += (p[i * 2] | p[i * 2 + 1]) != 0;
		return 0;
	}
	for (; i < end; i++)
		*count += qcow2_refcount_get(p, (size_t)img->cluster_size,
					     img->hdr.refcount_order, i) != 0;
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The tables that reach other clusters, counted as QEMU 7.2's
 * check_refcounts_l1(), qcow2_check_bitmaps_refcounts() and
 * check_refblocks() count them (block/qcow2-refcount.c,
 * block/qcow2-bitmap.c).  The L2 tables are read once each, in offset
 * order, for every L1 entry that reaches them (check_l2_regions()).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check/check_impl.h"
#include "qcow2elf/array.h"
#include "qcow2elf/output.h"

#define BME_RESERVED UINT64_C(0xff000000000001fe)
#define MAX_SNAPSHOT_L1_ENTRIES (QCOW2_MAX_L1_BYTES / 8)

/* How many snapshots leader I counts for. */
static uint64_t group_size(const struct checker *c, uint32_t i)
{
	return c->group_n[i];
}

/*
 * L1 entries of one table whose lines are kept, each as qemu-img prints
 * it; past them, each kind of line is one line for all.  QEMU's largest
 * L1 table (4,194,304 entries) naming tables past the end of the file
 * with reserved bits set made 8 million lines: 1.4 GB kept to sort.
 */
#define L1_LINES_MAX 65536

enum { QUIET_RESERVED, QUIET_PAST_END, QUIET_MISALIGNED };

/* The line of kind K for L1 entry I, past L1_LINES_MAX: counted only. */
static void quiet_line(struct checker *c, unsigned k, uint64_t i)
{
	struct l1_quiet *q = &c->l1_quiet[k];

	if (!q->n++)
		q->first = i;
	q->last = i;
	c->res->corruptions += c->mult;
}

/* One line for each kind of line counted by quiet_line(), at the place of
 * its first entry, and the count of lines kept reset for the next table. */
static int quiet_lines(struct checker *c, enum stage st, uint64_t snap)
{
	static const char *const what[] = {
		[QUIET_RESERVED] = "have reserved bits set",
		[QUIET_PAST_END] = "name L2 tables exceeding the end of the file by one cluster or more",
		[QUIET_MISALIGNED] = "name L2 tables that are not cluster aligned",
	};
	int ret = 0;

	for (unsigned k = 0; k < 3; k++) {
		struct l1_quiet *q = &c->l1_quiet[k];

		if (q->n && ret == 0) {
			set_key(c, (uint64_t)st << 32 | snap, q->first + 1, 0);
			ret = add_line(c, "ERROR %" PRIu64 " more L1 entries %s, the first at index %" PRIu64
				       " and the last at %" PRIu64 " (qemu-img prints a line for each)",
				       q->n, what[k], q->first, q->last);
		}
		*q = (struct l1_quiet){ 0 };
	}
	c->l1_loud = 0;
	return ret;
}

/* One L1 entry of check_refcounts_l1(). */
static int check_l1_entry(struct checker *c, enum stage st, uint64_t snap,
			  uint64_t i, uint64_t l1e)
{
	uint64_t l2_off = l1e & QCOW2_OFFSET_MASK;
	bool past = refs_past_end(c, l2_off, c->cs);
	bool misaligned = l2_off & (c->cs - 1);
	bool quiet = c->l1_loud >= L1_LINES_MAX;
	int ret = 0;

	if (!quiet && ((l1e & QCOW2_L1_RESERVED_MASK) || past || misaligned))
		c->l1_loud++;
	set_key(c, (uint64_t)st << 32 | snap, i + 1, 0);
	if (l1e & QCOW2_L1_RESERVED_MASK) {
		if (quiet)
			quiet_line(c, QUIET_RESERVED, i);
		else
			ret = corrupt(c, "ERROR found L1 entry with reserved bits set: %" PRIx64,
				      l1e);
		if (ret < 0)
			return ret;
	}
	/* An aligned table inside the file is one cluster: inc_cluster()
	 * counts it as inc_refs() would, without its checks. */
	if (past && quiet)
		quiet_line(c, QUIET_PAST_END, i);
	else if (!misaligned && (l2_off >> c->cbits) < c->file_clusters)
		ret = inc_cluster(c, l2_off);
	else
		ret = inc_refs(c, l2_off, c->cs);
	if (ret < 0)
		return ret;
	if (misaligned && quiet) {
		quiet_line(c, QUIET_MISALIGNED, i);
	} else if (misaligned) {
		ret = corrupt(c, "ERROR l2_offset=%" PRIx64
			      ": Table is not cluster aligned; L1 entry corrupted",
			      l2_off);
		if (ret < 0)
			return ret;
	}
	if (l2_off)
		return 0;	/* counted with its region: check_l2_regions() */
	/* Flags but no offset: QEMU reads cluster 0 as an L2 table, which
	 * the model has no region for (l2_owners.c). */
	return check_cluster0(c, (uint64_t)st << 32 | snap, i + 1,
			      st == ST_ACTIVE);
}

struct l1_count {
	struct checker *c;
	enum stage st;
	uint64_t snap;
};

static int count_l1_chunk(void *arg, uint64_t first, const uint64_t *e,
			  uint64_t n)
{
	const struct l1_count *a = arg;

	for (uint64_t i = 0; i < n; i++) {
		int ret = e[i] ? check_l1_entry(a->c, a->st, a->snap, first + i,
						 e[i])
			       : 0;

		if (ret < 0)
			return ret;
	}
	return 0;
}

/*
 * The L1 part of check_refcounts_l1(): the table and its entries, L1 (NL1
 * of them) for the active table; a snapshot's is read from the image a
 * chunk at a time, not kept.
 */
int check_l1(struct checker *c, enum stage st, uint64_t snap,
	     uint64_t l1_off, uint64_t l1_size, const uint64_t *l1,
	     uint64_t nl1)
{
	struct l1_count a = { c, st, snap };
	int ret;

	if (!l1_size)
		return 0;
	set_key(c, (uint64_t)st << 32 | snap, 0, 0);
	ret = inc_refs(c, l1_off, l1_size * 8);
	if (ret < 0)
		return ret;
	if (st == ST_ACTIVE)
		ret = count_l1_chunk(&a, 0, l1, nl1);
	else
		ret = q2e_image_snapshot_l1_each(c->img, (size_t)snap,
						 count_l1_chunk, &a, c->err);
	if (ret < 0)
		return ret;
	return quiet_lines(c, st, snap);
}

static bool spannable(const struct q2e_region *r)
{
	return (r->kind == Q2E_REGION_L2 ||
		r->kind == Q2E_REGION_REFCOUNT_BLOCK) && r->avail == r->size;
}

/*
 * How many regions from I on to read with one read: L2 tables and
 * refcount blocks that lie end to end inside the file, SPAN_MAX bytes at
 * most.  *L2: whether there is an L2 table among them.
 */
static size_t span_from(const struct checker *c, size_t i, bool *l2)
{
	const struct q2e_image *img = c->img;
	const struct q2e_region *r = &img->regions[i];
	uint64_t end = r->offset + r->size;
	size_t n = 1;

	*l2 = r->kind == Q2E_REGION_L2;
	if (!c->span || !spannable(r))
		return 1;
	for (; i + n < img->nregions; n++) {
		const struct q2e_region *q = &img->regions[i + n];

		if (!spannable(q) || q->offset != end ||
		    end + q->size - r->offset > SPAN_MAX)
			break;
		end += q->size;
		*l2 |= q->kind == Q2E_REGION_L2;
	}
	return n;
}

/* The N regions from R on, read together into c->span, or as AHEAD
 * holds them (table_batch_take()). */
static int count_span(struct checker *c, const struct q2e_region *r, size_t n,
		      const uint8_t *ahead)
{
	int ret = ahead ? 0
			: q2e_image_read_regions(c->img, r, n, c->span, c->err);
	const uint8_t *base = ahead ? ahead : c->span;
	uint8_t *own = c->buf;

	for (size_t k = 0; ret == 0 && k < n; k++) {
		const struct q2e_region *q = &r[k];
		uint8_t *bytes = (uint8_t *)base + (q->offset - r->offset);

		if (q->kind == Q2E_REGION_REFCOUNT_BLOCK) {
			ret = keep_refblock(c, q, bytes);
			continue;
		}
		/* Counted where it was read: the counting only reads
		 * c->buf, and a copy of each table was 2% of the check of
		 * 32,768 tables of 512 bytes. */
		c->buf = bytes;
		ret = count_l2_owners(c, q);
		c->buf = own;
		progress(c, q->size);
	}
	return ret;
}

/*
 * How many regions from I on overlap the union of those before them
 * (from I's offset to *END), OVERLAP_MAX bytes at most.  Only a damaged
 * or hand-made image has L2 tables that overlap: misaligned, 512 bytes
 * apart, each reads a cluster of 2 MiB.
 */
static size_t overlap_from(const struct checker *c, size_t i, uint64_t *end)
{
	const struct q2e_image *img = c->img;
	const struct q2e_region *r = &img->regions[i];
	size_t n = 1, l2 = 0;

	*end = r->offset + r->size;
	for (; i + n < img->nregions; n++) {
		const struct q2e_region *q = &img->regions[i + n];

		if (q->offset >= *end ||
		    q->offset + q->size - r->offset > OVERLAP_MAX)
			break;
		if (q->offset + q->size > *end)
			*end = q->offset + q->size;
		l2 += q->kind == Q2E_REGION_L2;
	}
	return l2 && reads_whole(c, r->offset, *end) ? n : 1;
}

/*
 * The L2 tables among the N regions from R on, which overlap one another:
 * their union (up to END) read once, and each table counted where it
 * lies in it.  Read one by one, 16,384 tables of 2 MiB at each 512 bytes
 * of a 6 MB file copied 32 GB, a quarter of the check.
 */
static int count_overlapping(struct checker *c, const struct q2e_region *r,
			     size_t n, uint64_t end)
{
	uint8_t *own = c->buf;
	int ret = read_overlapping(c, r->offset, end);

	for (size_t k = 0; ret == 0 && k < n; k++) {
		const struct q2e_region *q = &r[k];

		if (q->kind != Q2E_REGION_L2)
			continue;
		c->buf = c->overlap + (q->offset - r->offset);
		ret = count_l2_owners(c, q);
		c->buf = own;
		progress(c, q->size);
	}
	return ret;
}

/* Whether regions A and B (B after A) are read together by the loop
 * below: end to end within the file (count_span()), or overlapping
 * (count_overlapping()). */
static bool read_together(const struct checker *c, const struct q2e_region *a,
			  const struct q2e_region *b)
{
	if (b->offset < a->offset + a->size)
		return true;
	return c->span && spannable(a) && spannable(b) &&
	       b->offset == a->offset + a->size;
}

/* For table_batch_take(): what the loop below reads at region I, where
 * it reads one table or one span of tables and refcount blocks alone
 * (none for a region read with those before it, or overlapping). */
static struct q2e_extent l2_ahead(struct checker *c, size_t i)
{
	const struct q2e_image *img = c->img;
	const struct q2e_region *r = &img->regions[i];
	struct q2e_extent none = { 0, 0 };
	size_t n;
	bool l2;

	if (!spannable(r) || (i > 0 && read_together(c, r - 1, r)))
		return none;
	n = span_from(c, i, &l2);
	if (!l2 || (n == 1 && i + 1 < img->nregions &&
		    read_together(c, r, r + 1)))
		return none;
	return (struct q2e_extent){ r->offset,
				    r[n - 1].offset + r[n - 1].size -
					    r->offset };
}

/*
 * The L2 regions, in offset order: each read once, for every L1 entry;
 * refcount blocks beside them are read with them and kept for
 * compare_refcounts(); tables that overlap are read together.
 */
int check_l2_regions(struct checker *c)
{
	struct q2e_image *img = c->img;
	int ret;

	for (size_t i = 0, n; i < img->nregions; i += n) {
		const struct q2e_region *r = &img->regions[i];
		const uint8_t *ahead;
		uint64_t end;
		bool l2;

		n = span_from(c, i, &l2);
		if (!l2)
			continue;
		if (n == 1 && r->kind == Q2E_REGION_L2 &&
		    (n = overlap_from(c, i, &end)) > 1) {
			ret = count_overlapping(c, r, n, end);
		} else if (n > 1) {
			ret = count_span(c, r, n,
					 table_batch_take(c, &c->tables,
							  l2_ahead, i,
							  img->nregions));
		} else if (!r->avail ||
			   q2e_image_holds_none(img, r->offset, r->avail)) {
			/* Wholly past the end of the file, or in a hole:
			 * zeros, as above, without clearing a cluster for
			 * each such table. */
			ret = 0;
			progress(c, r->size);
		} else if ((ahead = table_batch_take(c, &c->tables, l2_ahead,
						     i, img->nregions)) != NULL) {
			uint8_t *own = c->buf;

			/* Counted where it was read, as count_span() does. */
			c->buf = (uint8_t *)ahead;
			ret = count_l2_owners(c, r);
			c->buf = own;
			progress(c, r->size);
		} else {
			ret = read_cluster(c, r, 0);
			if (ret == 0)
				ret = count_l2_owners(c, r);
			progress(c, r->size);
		}
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* S as human output escapes it (control characters as \xHH), or NULL
 * without memory: qemu-img prints the snapshot's ID and name as they
 * are, and a name can hold a terminal's escape sequences. */
static char *escaped(const char *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	if (!fp)
		return NULL;
	q2e_fputs_escaped(fp, s);
	if (fclose(fp) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/*
 * Whether QEMU skips snapshot I's L1 table as corrupted; the line is the
 * snapshot's own (it names it).
 */
static int snapshot_skipped(struct checker *c, size_t i)
{
	const struct q2e_snapshot *s = &c->img->snapshots[i];
	const struct qcow2_snapshot *e = &s->entry;
	bool aligned = !(e->l1_table_offset & (c->cs - 1));
	char *id, *name;
	int ret;

	set_key(c, (uint64_t)ST_SNAPSHOTS << 32 | i, 0, 0);
	c->own_lines = true;
	if (aligned && e->l1_size <= MAX_SNAPSHOT_L1_ENTRIES)
		return 0;
	c->skip_snapshot[i] = true;
	id = escaped(s->id);
	name = escaped(s->name);
	if (!id || !name)
		ret = nomem(c);
	else if (!aligned)
		ret = corrupt(c, "ERROR snapshot %s (%s) l1_offset=%#" PRIx64
			      ": L1 table is not cluster aligned; snapshot table entry corrupted",
			      id, name, e->l1_table_offset);
	else
		ret = corrupt(c, "ERROR snapshot %s (%s) l1_size=%#" PRIx32
			      ": L1 table is too large; snapshot table entry corrupted",
			      id, name, e->l1_size);
	free(id);
	free(name);
	return ret;
}

/*
 * The snapshots sharing one L1 table (the model reads such a table once
 * for them all): each gets the first of them as its leader, and the leader
 * the list of its group.
 */
static int group_snapshots(struct checker *c)
{
	struct q2e_image *img = c->img;
	struct q2e_check_result *res = c->res;
	size_t n = img->nsnapshots;
	uint32_t *last = malloc((n + 1) * sizeof(*last));

	res->snapshot_leader = malloc((n + 1) * sizeof(uint32_t));
	c->next_member = malloc((n + 1) * sizeof(uint32_t));
	c->group_n = calloc(n + 1, sizeof(uint32_t));
	if (!last || !res->snapshot_leader || !c->next_member || !c->group_n) {
		free(last);
		return nomem(c);
	}
	res->nsnapshots = n;
	for (uint32_t i = 0; i < n; i++) {
		const struct q2e_snapshot *s = &img->snapshots[i];
		uint32_t leader = s->l1_read ? s->l1_first : i;

		res->snapshot_leader[i] = leader;
		c->group_n[leader]++;
		c->next_member[i] = i;
		if (leader != i)
			c->next_member[last[leader]] = i;
		last[leader] = i;
	}
	free(last);
	return 0;
}

/*
 * Snapshot I's L1 table, once for every snapshot sharing it.  *STOP: QEMU
 * could not read the table and gave up.
 */
static int check_snapshot(struct checker *c, size_t i, bool *stop)
{
	struct q2e_image *img = c->img;
	const struct q2e_snapshot *s = &img->snapshots[i];
	const struct qcow2_snapshot *e = &s->entry;
	int ret;

	if (c->skip_snapshot[i] || c->res->snapshot_leader[i] != i)
		return 0;
	/* check_refcounts_l1(): an I/O error fails the check. */
	if (e->l1_size && unreadable(e->l1_table_offset, e->l1_size * 8ULL)) {
		*stop = true;
		return give_up(c, &c->res->check_errors,
			       "a snapshot's L1 table cannot be read");
	}
	c->mult = group_size(c, (uint32_t)i);
	ret = check_l1(c, ST_SNAPSHOTS, i, e->l1_table_offset, e->l1_size,
		       NULL, 0);
	c->mult = 1;
	return ret;
}

int check_snapshots(struct checker *c)
{
	struct q2e_image *img = c->img;
	bool stop = false;
	int ret;

	if (c->data_file && img->hdr.nb_snapshots) {
		set_key(c, (uint64_t)ST_SNAPSHOT_DATA_FILE << 32, 0, 0);
		ret = corrupt(c, "ERROR %u snapshots in image with data file",
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
		ret = corrupt(c, "ERROR snapshot table entry %zu is incomplete", i);
		if (ret < 0)
			return ret;
	}
	/* The entries past the end of the file have no extra data: qemu-img
	 * prints a line for each, up to 65,536 from a 72-byte file; past
	 * SNAPSHOT_LINES_MAX, one line here says which, counted as qemu-img
	 * counts them. */
	for (size_t i = 0; img->hdr.version >= 3 &&
			   img->nsnapshots_past_end <= SNAPSHOT_LINES_MAX &&
			   i < img->nsnapshots_past_end; i++) {
		ret = corrupt(c, "ERROR snapshot table entry %zu is incomplete",
			      img->nsnapshots + i);
		if (ret < 0)
			return ret;
	}
	if (img->hdr.version >= 3 &&
	    img->nsnapshots_past_end > SNAPSHOT_LINES_MAX) {
		ret = corrupt_many(c, img->nsnapshots_past_end,
				   "ERROR snapshot table entries %zu to %zu are incomplete",
				   img->nsnapshots, img->nsnapshots +
				   img->nsnapshots_past_end - 1);
		if (ret < 0)
			return ret;
	}
	c->skip_snapshot = calloc(img->nsnapshots + 1, sizeof(bool));
	if (!c->skip_snapshot)
		return nomem(c);
	ret = group_snapshots(c);
	for (size_t i = 0; ret == 0 && i < img->nsnapshots && !stop; i++) {
		ret = snapshot_skipped(c, i);
		c->own_lines = false;
		if (ret == 0)
			ret = check_snapshot(c, i, &stop);
	}
	return ret;
}

/* bitmap_table_load() fails on an invalid entry: so does the check. */
static bool bitmap_entry_invalid(const struct checker *c, uint64_t e)
{
	uint64_t off = e & QCOW2_OFFSET_MASK;

	return (e & BME_RESERVED) || (off && ((e & 1) || (off & (c->cs - 1))));
}

/* qcow2_check_bitmaps_refcounts(): the directory, tables and their data. */
int check_bitmaps(struct checker *c)
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
	if (img->nbitmaps != x->nb_bitmaps)
		return give_up(c, &res->corruptions,
			       "the bitmap directory cannot be read");
	for (size_t i = 0; i < img->nbitmaps; i++) {
		const struct q2e_bitmap *b = &img->bitmaps[i];
		uint64_t n = b->entry.bitmap_table_size;

		ret = inc_refs(c, b->entry.bitmap_table_offset, n * 8);
		if (ret < 0)
			return ret;
		for (uint64_t j = 0; j < n; j++)
			if (bitmap_entry_invalid(c, j < b->ntable ? b->table[j] : 0))
				return give_up(c, &res->corruptions,
					       "a bitmap table has an invalid entry");
		for (uint64_t j = 0; j < b->ntable && j < n; j++) {
			uint64_t off = b->table[j] & QCOW2_OFFSET_MASK;

			ret = off ? inc_refs(c, off, c->cs) : 0;
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

/* Refcount block I, at cluster K. */
static int check_refblock(struct checker *c, uint64_t i, uint64_t k)
{
	uint64_t v;
	int ret = inc_refs(c, k << c->cbits, c->cs);

	if (ret < 0 || (v = get_count(c, k)) == 1)
		return ret;
	return corrupt(c, "ERROR refcount block %" PRIu64 " refcount=%" PRIu64,
		       i, v);
}

/* check_refblocks(): each refcount block must be referenced exactly once. */
int check_refblocks(struct checker *c)
{
	struct q2e_image *img = c->img;
	int ret;

	set_key(c, (uint64_t)ST_REFBLOCKS << 32, 0, 0);
	for (uint64_t i = 0; i < img->nreftable; i++) {
		uint64_t off = img->reftable[i] & ~QCOW2_REFTABLE_RESERVED_MASK;
		uint64_t k = off >> c->cbits;

		if (img->reftable[i] & QCOW2_REFTABLE_RESERVED_MASK)
			ret = corrupt(c, "ERROR refcount table entry %" PRIu64
				      " has reserved bits set", i);
		else if (off & (c->cs - 1))
			ret = corrupt(c, "ERROR refcount block %" PRIu64
				      " is not cluster aligned; refcount table entry corrupted",
				      i);
		else if (k >= c->nb_clusters)
			ret = corrupt(c, "ERROR refcount block %" PRIu64
				      " is outside image", i);
		else
			ret = off ? check_refblock(c, i, k) : 0;
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* The refcount block regions, by refcount table index. */
int index_refblocks(struct checker *c)
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

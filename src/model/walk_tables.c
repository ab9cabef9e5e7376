/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The walk's tables: the active L1 and the L2 tables it reaches, the
 * refcount table and blocks, and the snapshot table with each snapshot's
 * L1 and L2 tables.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/array.h"
#include "walk.h"

/* The N entries at E name (under MASK) tables inside the file, a record
 * each that the walk will make: room for them is made at once.  Entries
 * in a row that name one table make one record (extends_run()): an L1
 * table of 4 million entries naming one L2 table in a sparse file of 2
 * GiB expected 256 MB of records, and the walk then had no room left
 * under `ulimit -v 300000` for what it did need. */
static void expect_tables(struct walk *w, const uint64_t *e, uint64_t n,
			  uint64_t mask)
{
	uint64_t count = 0, prev = 0;

	for (uint64_t i = 0; i < n; i++) {
		uint64_t off = e[i] & mask;

		count += off && off < w->img->file_size && off != prev;
		prev = off;
	}
	walk_expect_regions(w, count);
}

/*
 * The L2 tables that entries FIRST on of an L1 table point to, owned by
 * OWNER, and what is wrong with each entry.  An L1 table shared by many
 * snapshots is walked for the first of them only (read_snapshot_tables()):
 * one table, with one set of owners and problems.
 */
int walk_l2_tables(struct walk *w, const uint64_t *l1, uint64_t first,
		   uint64_t n, uint64_t l1_off, struct q2e_owner owner,
		   const char *l1_name)
{
	struct q2e_image *img = w->img;
	int ret;

	expect_tables(w, l1, n, QCOW2_OFFSET_MASK);
	for (uint64_t i = first; i < first + n; i++) {
		struct qcow2_l1_entry e;

		qcow2_l1_entry_decode(l1[i - first], &e);
		if (e.reserved) {
			ret = walk_note_reserved(w, l1_name, l1_off, i, e.raw,
						 e.reserved);
			if (ret < 0)
				return ret;
		}
		if (!e.l2_offset)
			continue;
		owner.index = i;
		ret = walk_region(w, Q2E_REGION_L2, e.l2_offset,
				  img->cluster_size, owner, 0);
		if (ret == 0)
			ret = walk_note_table(w, Q2E_REGION_L2, &owner,
					      e.l2_offset, img->cluster_size);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Checks an L1 table's place and size; false if it cannot be read. */
int validate_l1(struct walk *w, const char *name, uint64_t off,
		uint64_t entries, uint64_t field_off, bool *readable)
{
	struct q2e_image *img = w->img;
	int ret;

	*readable = false;
	if (entries * 8 > QCOW2_MAX_L1_BYTES)
		return walk_problem(w, Q2E_SEV_ERROR, Q2E_PROBLEM_LIMIT, field_off, name,
				    "%s has %" PRIu64
				    " entries, above QEMU's 32 MiB limit: not read",
				    name, entries);
	if (!entries)
		return 0;
	/* QEMU reads the header's bytes as the table's entries: so do we. */
	ret = off ? 0 : walk_problem(w, Q2E_SEV_ERROR, Q2E_PROBLEM_INVALID, field_off, name,
				     "%s has %" PRIu64
				     " entries at offset 0, on top of the header",
				     name, entries);
	if (ret == 0)
		ret = walk_note_misaligned(w, name, off);
	if (ret == 0)
		ret = walk_note_truncated(w, name, off, entries * 8);
	*readable = ret == 0 && off < img->file_size;
	return ret;
}

int walk_read_active_l1(struct walk *w)
{
	struct q2e_image *img = w->img;
	const struct qcow2_header *h = &img->hdr;
	struct q2e_owner active = { Q2E_OWNER_ACTIVE, 0, 0 };
	uint64_t need, per_l1 = img->cluster_size * img->l2_entries;
	bool readable;
	int ret;

	ret = validate_l1(w, "l1_table", h->l1_table_offset, h->l1_size, 36,
			  &readable);
	if (ret < 0)
		return ret;
	need = h->size / per_l1 + (h->size % per_l1 != 0);
	if (h->l1_size < need) {
		ret = walk_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_INVALID, 36, "l1_table",
				   "l1_size %u is too small for the virtual size (%" PRIu64
				   " entries needed)", h->l1_size, need);
		if (ret < 0)
			return ret;
	}
	if (h->l1_size && h->l1_size * 8ULL <= QCOW2_MAX_L1_BYTES) {
		ret = walk_region(w, Q2E_REGION_L1, h->l1_table_offset,
				  h->l1_size * 8ULL, active, 0);
		if (ret < 0)
			return ret;
	}
	if (!readable)
		return 0;
	ret = walk_read_entries(w, h->l1_table_offset, h->l1_size, "l1_table",
				&img->l1, &img->nl1);
	if (ret < 0)
		return ret;
	return walk_l2_tables(w, img->l1, 0, img->nl1, h->l1_table_offset,
			      active, "l1_table");
}

int walk_read_refcounts(struct walk *w)
{
	struct q2e_image *img = w->img;
	const struct qcow2_header *h = &img->hdr;
	uint64_t off = h->refcount_table_offset;
	uint64_t bytes = h->refcount_table_clusters * img->cluster_size;
	int ret;

	if (!h->refcount_table_clusters)
		return walk_problem(w, Q2E_SEV_ERROR, Q2E_PROBLEM_INVALID, 56, "refcount_table",
				    "refcount_table_clusters is 0");
	if (bytes > QCOW2_MAX_REFTABLE_BYTES)
		return walk_problem(w, Q2E_SEV_ERROR, Q2E_PROBLEM_LIMIT, 56, "refcount_table",
				    "refcount table of %" PRIu64
				    " bytes is above QEMU's 8 MiB limit: not read",
				    bytes);
	ret = walk_region(w, Q2E_REGION_REFCOUNT_TABLE, off, bytes,
			  walk_image_owner, 0);
	if (ret == 0)
		ret = walk_note_misaligned(w, "refcount_table", off);
	if (ret == 0)
		ret = walk_note_truncated(w, "refcount_table", off, bytes);
	if (ret < 0 || off >= img->file_size)
		return ret;
	ret = walk_read_entries(w, off, bytes / 8, "refcount_table",
				&img->reftable, &img->nreftable);
	if (ret < 0)
		return ret;
	if (!img->refcount_bits)
		return 0;
	expect_tables(w, img->reftable, img->nreftable,
		      ~QCOW2_REFTABLE_RESERVED_MASK);
	for (uint64_t i = 0; i < img->nreftable; i++) {
		uint64_t e = img->reftable[i];
		uint64_t block = e & ~QCOW2_REFTABLE_RESERVED_MASK;
		struct q2e_owner o = { Q2E_OWNER_IMAGE, 0, i };

		if (e & QCOW2_REFTABLE_RESERVED_MASK) {
			ret = walk_note_reserved(w, "refcount_table", off, i,
						 e, 0);
			if (ret < 0)
				return ret;
		}
		if (!block)
			continue;
		ret = walk_region(w, Q2E_REGION_REFCOUNT_BLOCK, block,
				  img->cluster_size, o, 0);
		if (ret == 0)
			ret = walk_note_table(w, Q2E_REGION_REFCOUNT_BLOCK,
					      &o, block, img->cluster_size);
		if (ret < 0)
			return ret;
	}
	return 0;
}


/*
 * How many bytes of the table at OFF the file holds: the rest reads as
 * zeros.  In a dump that lacks some of the bytes it was written with (a
 * section removed), the table ends where they start, as a read does
 * there (src/source/elf_source.c): bytes some other section holds past
 * that point are not the table's, and a dump of this one would not keep
 * them, since a region is written up to its first missing byte.
 */
static uint64_t table_held(const struct walk *w, uint64_t off)
{
	uint64_t held = off < w->img->file_size ? w->img->file_size - off : 0;
	uint64_t from = q2e_image_missing_from(w->img, off);

	return from - off < held ? from - off : held;
}

/*
 * Makes sure BUF holds [0, need) of the table at OFF; grows by doubling.
 * Past the end of the file QEMU reads zeros: so does the window
 * (walk_note_truncated() reports the table as running past it).  A
 * header may claim an entry of megabytes in a file of kilobytes, so the
 * window is made afresh by walk_zalloc() (a mapping, when large) and only
 * the bytes the file holds are copied or read: its zeros cost no writes,
 * and no page but those the decoder reads them from.  Freed with
 * walk_zfree(*BUF, *HAVE).
 */
static int table_window(struct walk *w, uint64_t off, uint64_t need,
			uint64_t limit, const char *what, uint8_t **buf,
			uint64_t *have, bool *eof)
{
	uint64_t want = *have ? *have : 4096;
	uint64_t held = table_held(w, off);
	uint8_t *n;
	int64_t got = 0;

	if (need <= *have)
		return 0;
	while (want < need)
		want *= 2;
	if (want > limit)
		want = limit;
	if (need > want) {
		*eof = true;	/* QEMU: "Snapshot table is too big" */
		w->img->snapshot_table_too_big = true;
		return 0;
	}
	n = walk_zalloc(want);
	if (!n)
		return q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
	if (*buf)
		memcpy(n, *buf, (size_t)(*have < held ? *have : held));
	/* Nothing to read where the offset would wrap past 2^64. */
	if (*have < held && off <= UINT64_MAX - want)
		got = q2e_source_pread(w->img->src, n + *have,
				       (size_t)(want - *have), off + *have,
				       what, w->err);
	if (got < 0) {
		walk_zfree(n, want);
		return (int)got;
	}
	walk_zfree(*buf, *have);
	*buf = n;
	*have = want;
	*eof = false;
	return 0;
}

struct l1_walk {
	struct walk *w;
	uint64_t l1_off;
	struct q2e_owner owner;
	const char *name;
	uint64_t base;		/* the index of the first entry read */
};

static int walk_l1_chunk(void *arg, uint64_t first, const uint64_t *e,
			 uint64_t n)
{
	struct l1_walk *a = arg;

	return walk_l2_tables(a->w, e, a->base + first, n, a->l1_off,
			      a->owner, a->name);
}

/*
 * Entries SKIP on of snapshot N's table at OFF (COUNT of them), whose
 * first SKIP entries lie in another snapshot's table walked already.
 */
static int walk_snapshot_l1_rest(struct walk *w, struct l1_walk *a,
				 struct q2e_snapshot *s, uint64_t skip)
{
	uint64_t off = s->entry.l1_table_offset, count = s->entry.l1_size;
	uint64_t nread;
	int ret;

	s->nl1 = table_held_entries(w->img, off, count);
	if (skip >= s->nl1)
		return 0;
	a->base = skip;
	ret = table_entries_each(w->img, off + skip * 8, count - skip, a->name,
				 walk_l1_chunk, a, &nread, w->err);
	if (ret == 0 && skip + nread < s->nl1)
		s->nl1 = skip + nread;	/* the file ended after all */
	return ret;
}

/*
 * Snapshot N's L1 table, read a chunk at a time and not kept, unless
 * snapshot FIRST (< N; FIRST >= N: none) has the same table.  Then N owns
 * the L1 table but not its L2 tables again: they are recorded for FIRST
 * only, whose symbols stand for both.  4,096 snapshots sharing an L1 table
 * of 8,192 entries that name one L2 table in a 680 KB file made 33 million
 * owners (530 MB, 17 s to check); a dump gave each a symbol.  Likewise
 * its first SKIP entries, which lie in the table of a snapshot before it
 * in offset order (tables that overlap, which QEMU never writes): 4,096
 * tables of 4 Mi entries 4 KiB apart in a sparse file of 300 KB made
 * 100 million owners (info took 10 s and 1.5 GB).
 */
static int read_snapshot_tables(struct walk *w, size_t n, size_t first,
				uint64_t skip)
{
	struct q2e_image *img = w->img;
	struct q2e_snapshot *s = &img->snapshots[n];
	struct q2e_owner o = { Q2E_OWNER_SNAPSHOT, (uint32_t)n, 0 };
	char name[64];
	struct l1_walk a = { w, s->entry.l1_table_offset, o, name };
	bool readable;
	int ret;

	s->l1_first = (uint32_t)n;
	q2e_structure_symbol(img, Q2E_REGION_L1, 0, &o, name, sizeof(name));
	ret = validate_l1(w, name, s->entry.l1_table_offset, s->entry.l1_size,
			  s->offset + 8, &readable);
	if (ret < 0)
		return ret;
	if (s->entry.l1_size && s->entry.l1_size * 8ULL <= QCOW2_MAX_L1_BYTES) {
		ret = walk_region(w, Q2E_REGION_L1, s->entry.l1_table_offset,
				  s->entry.l1_size * 8ULL, o, 0);
		if (ret < 0)
			return ret;
	}
	if (!readable)
		return 0;
	s->l1_read = true;
	/* Snapshots often share one L1 table: it is read once. */
	if (first < n) {
		s->l1_first = (uint32_t)first;
		s->nl1 = img->snapshots[first].nl1;
		return 0;
	}
	if (skip)
		return walk_snapshot_l1_rest(w, &a, s, skip);
	return table_entries_each(img, s->entry.l1_table_offset,
				  s->entry.l1_size, name, walk_l1_chunk, &a,
				  &s->nl1, w->err);
}

struct l1_key {
	uint64_t offset;
	uint64_t size;
	size_t n;		/* snapshot position */
};

static int cmp_l1_key(const void *pa, const void *pb)
{
	const struct l1_key *a = pa, *b = pb;

	if (a->offset != b->offset)
		return a->offset < b->offset ? -1 : 1;
	if (a->size != b->size)
		return a->size < b->size ? -1 : 1;
	return a->n < b->n ? -1 : a->n > b->n;
}

/* Advice on snapshot L1 tables: at most this many bytes, and tables. */
#define SNAPSHOT_ADVICE_BYTES (64ULL << 20)
#define SNAPSHOT_ADVICE_TABLES 1024

/*
 * The snapshots' L1 tables (KEYS, N of them, sorted), each read in turn
 * below: advised first, in offset order, so that from a cold cache they
 * cost about one round trip to the device, not one each.
 */
static void advise_snapshot_tables(struct walk *w, const struct l1_key *keys,
				   size_t n)
{
	uint64_t bytes = 0;
	size_t tables = 0;

	for (size_t k = 0; k < n && bytes < SNAPSHOT_ADVICE_BYTES &&
			   tables < SNAPSHOT_ADVICE_TABLES; k++) {
		uint64_t len = keys[k].size * 8;

		if ((k && keys[k].offset == keys[k - 1].offset &&
		     keys[k].size == keys[k - 1].size) ||
		    len > QCOW2_MAX_L1_BYTES)
			continue;
		q2e_source_advise(w->img->src, keys[k].offset, len);
		bytes += len;
		tables++;
	}
}

/* Each snapshot's tables, in table order; snapshots with the same L1 table
 * (found by sorting, not by comparing every pair) share its one copy. */
static int read_all_snapshot_tables(struct walk *w)
{
	struct q2e_image *img = w->img;
	size_t n = img->nsnapshots, *first;
	uint64_t *skip, covered = 0;	/* the end of the tables before */
	struct l1_key *keys;
	int ret = 0;

	keys = malloc((n ? n : 1) * sizeof(*keys));
	first = malloc((n ? n : 1) * sizeof(*first));
	skip = calloc(n ? n : 1, sizeof(*skip));
	if (!keys || !first || !skip) {
		free(keys);
		free(first);
		free(skip);
		return q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		keys[i] = (struct l1_key){ img->snapshots[i].entry.l1_table_offset,
					   img->snapshots[i].entry.l1_size, i };
	qsort(keys, n, sizeof(*keys), cmp_l1_key);
	for (size_t k = 0; k < n; k++) {
		bool same = k && keys[k].offset == keys[k - 1].offset &&
			    keys[k].size == keys[k - 1].size;

		first[keys[k].n] = same ? first[keys[k - 1].n] : keys[k].n;
		if (same || !keys[k].size || keys[k].offset >= img->file_size ||
		    keys[k].size * 8 > QCOW2_MAX_L1_BYTES)
			continue;	/* not walked again, or not at all */
		if (covered > keys[k].offset)
			skip[keys[k].n] = (covered - keys[k].offset + 7) / 8;
		if (keys[k].offset + keys[k].size * 8 > covered)
			covered = keys[k].offset + keys[k].size * 8;
	}
	advise_snapshot_tables(w, keys, n);
	for (size_t i = 0; ret == 0 && i < n; i++)
		ret = read_snapshot_tables(w, i, first[i] < i ? first[i] : n,
					   skip[i]);
	free(keys);
	free(first);
	free(skip);
	return ret;
}

/* The end of what the file holds in the window BUF of HAVE bytes. */
static const uint8_t *held_end(const struct walk *w, uint64_t off,
			       const uint8_t *buf, uint64_t have)
{
	uint64_t held = table_held(w, off);

	return buf + (have < held ? have : held);
}

/* Copies what a decoded entry points to in the table buffer, whose
 * bytes from HELD on are zeros (past the end of the file): those are not
 * copied but left as calloc() made them.  Of the extra data, QEMU keeps
 * no more than its limit: nor does the model (an entry may claim 4 GiB). */
static int keep_snapshot_entry(struct walk *w, struct q2e_snapshot *s,
			       const uint8_t *held)
{
	const uint8_t *extra = (const uint8_t *)s->entry.extra;
	size_t len = s->entry.extra_data_size < QCOW2_MAX_SNAPSHOT_EXTRA
			     ? s->entry.extra_data_size
			     : QCOW2_MAX_SNAPSHOT_EXTRA;

	s->id = walk_dup_string((const uint8_t *)s->entry.id_str,
				s->entry.id_str_size);
	s->name = walk_dup_string((const uint8_t *)s->entry.name,
				  s->entry.name_size);
	s->extra = calloc(1, len + 1);
	if (!s->id || !s->name || !s->extra) {
		free(s->id);	/* not counted yet: close won't */
		free(s->name);
		free(s->extra);
		s->id = s->name = NULL;
		s->extra = NULL;
		return q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
	}
	if (len && extra < held)
		memcpy(s->extra, extra,
		       (size_t)(held - extra) < len ? (size_t)(held - extra)
						    : len);
	s->entry.extra = NULL;
	s->entry.id_str = s->entry.name = NULL;
	return 0;
}

/*
 * Whether the entries from I on, at POS in the table at OFF, lie wholly
 * past the end of the file, and all fit in QEMU's limit: then each reads
 * as an empty 40-byte entry, and they are counted, not kept (a table that
 * runs past the limit is read entry by entry, to fail where QEMU does).
 */
static bool past_end_from(const struct walk *w, uint64_t off, uint64_t pos,
			  uint32_t i)
{
	uint64_t left = w->img->hdr.nb_snapshots - i;

	return off <= UINT64_MAX - pos && off + pos >= w->img->file_size &&
	       pos <= QCOW2_MAX_SNAPSHOT_TABLE_BYTES &&
	       left * QCOW2_SNAPSHOT_FIXED_SIZE <=
		       QCOW2_MAX_SNAPSHOT_TABLE_BYTES - pos;
}

/* Counts the entries from I on as past the end of the file: one problem
 * for them all, unless the whole table is (reported already). */
static int keep_past_end(struct walk *w, uint64_t off, uint64_t pos,
			 uint32_t i, uint64_t *used)
{
	struct q2e_image *img = w->img;
	uint32_t left = img->hdr.nb_snapshots - i;

	img->nsnapshots_past_end = left;
	*used = pos + (uint64_t)left * QCOW2_SNAPSHOT_FIXED_SIZE;
	if (!i)
		return 0;
	return walk_problem(w, Q2E_SEV_ERROR, Q2E_PROBLEM_PAST_END, off + pos,
			    "snapshot_table",
			    "snapshot_table entries %u to %u lie past the end of the file (0x%" PRIx64
			    " bytes): %u empty entries, read as zeros, as in QEMU",
			    i, img->hdr.nb_snapshots - 1, img->file_size, left);
}

int walk_read_snapshots(struct walk *w)
{
	struct q2e_image *img = w->img;
	const struct qcow2_header *h = &img->hdr;
	uint64_t off = h->snapshots_offset, pos = 0, have = 0, used = 0;
	size_t cap = 0;
	bool damaged = false;
	uint8_t *buf = NULL;
	int ret = 0;

	if (!h->nb_snapshots)
		return 0;
	if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return walk_problem(w, Q2E_SEV_ERROR, Q2E_PROBLEM_LIMIT, 60, "snapshot_table",
				    "nb_snapshots %u is above QEMU's limit of 65536: not read",
				    h->nb_snapshots);
	ret = walk_note_misaligned(w, "snapshot_table", off);
	if (ret < 0)
		return ret;
	if (off >= img->file_size) {
		ret = walk_problem(w, Q2E_SEV_ERROR, Q2E_PROBLEM_PAST_END, off, "snapshot_table",
				   "snapshot_table at 0x%" PRIx64
				   " lies past the end of the file: its entries read as zeros, as in QEMU",
				   off);
		if (ret < 0)
			return ret;
	}
	for (uint32_t i = 0; i < h->nb_snapshots; i++) {
		struct q2e_snapshot *s;
		const char *why = NULL;
		char name[32];
		bool eof = false;

		if (past_end_from(w, off, pos, i)) {
			ret = keep_past_end(w, off, pos, i, &used);
			break;
		}
		/* Grown entry by entry: only those the file holds cost. */
		if (q2e_grow(img->snapshots, cap, (size_t)i + 1) < 0) {
			ret = q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
			break;
		}
		s = &img->snapshots[i];
		memset(s, 0, sizeof(*s));
		q2e_entry_symbol(Q2E_REGION_SNAPSHOT_TABLE, i, name,
				 sizeof(name));
		/* Fixed part, then the variable part it announces. */
		ret = table_window(w, off, pos + QCOW2_SNAPSHOT_FIXED_SIZE,
				   QCOW2_MAX_SNAPSHOT_TABLE_BYTES,
				   "the snapshot table", &buf, &have, &eof);
		if (ret == 0 && !eof &&
		    qcow2_be32(buf + pos + 36) > QCOW2_MAX_SNAPSHOT_EXTRA &&
		    img->snapshot_extra_over_limit < 0)
			img->snapshot_extra_over_limit = i;
		if (ret == 0 && !eof) {
			uint64_t var = qcow2_be32(buf + pos + 36) +
				       (uint64_t)qcow2_be16(buf + pos + 12) +
				       qcow2_be16(buf + pos + 14);
			ret = table_window(w, off,
					   pos + QCOW2_SNAPSHOT_FIXED_SIZE + var,
					   QCOW2_MAX_SNAPSHOT_TABLE_BYTES,
					   "the snapshot table", &buf, &have,
					   &eof);
		}
		if (ret < 0)
			break;
		/* The file may end inside the previous entry's padding. */
		ret = qcow2_snapshot_decode(buf + pos,
					    have > pos ? (size_t)(have - pos) : 0,
					    &s->entry, &why);
		if (ret < 0) {
			/* Keep the entries before it; the rest is unreadable. */
			ret = walk_problem(w, Q2E_SEV_ERROR, Q2E_PROBLEM_INVALID, off + pos, name,
					   "%s at 0x%" PRIx64
					   ": %s: %u of %u snapshots read",
					   name, off + pos, why, i,
					   h->nb_snapshots);
			damaged = true;
			break;
		}
		s->offset = off + pos;
		ret = keep_snapshot_entry(w, s, held_end(w, off, buf, have));
		if (ret < 0)
			break;
		img->nsnapshots++;
		/* QEMU's snapshots_size ends with the last entry's name: the
		 * padding after it need not be in the file. */
		used = pos + QCOW2_SNAPSHOT_FIXED_SIZE +
		       s->entry.extra_data_size + s->entry.id_str_size +
		       s->entry.name_size;
		pos += s->entry.entry_size;
		if (s->entry.extra_data_size > QCOW2_MAX_SNAPSHOT_EXTRA)
			ret = walk_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_LIMIT, s->offset, name,
					   "extra_data_size %u is above QEMU's limit of 1024",
					   s->entry.extra_data_size);
		else if (h->version >= 3 && s->entry.extra_data_size < 16)
			ret = walk_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_INVALID, s->offset, name,
					   "extra_data_size %u is below the 16 bytes version 3 requires",
					   s->entry.extra_data_size);
		if (ret < 0)
			break;
	}
	walk_zfree(buf, have);
	if (ret < 0)
		return ret;
	img->snapshot_table_size = used;
	/* A damaged table covers all the bytes that were read, so that a
	 * dump of it fails where the image does. */
	uint64_t region = damaged && have > used ? have : used;
	if (region)
		ret = walk_region(w, Q2E_REGION_SNAPSHOT_TABLE, off, region,
				  walk_image_owner, 0);
	if (ret == 0)
		ret = walk_note_truncated(w, "snapshot_table", off, region);
	if (ret == 0)
		ret = read_all_snapshot_tables(w);
	return ret;
}

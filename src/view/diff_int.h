/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to diff: the helpers the comparisons share (src/view/diff*.c).
 * diff.c drives the comparison and records changes; diff_meta.c compares
 * the header, extensions, snapshots and bitmaps; diff_tables.c the tables,
 * L1, L2 and refcounts; diff_render.c writes the result.
 */
#ifndef QCOW2ELF_DIFF_INT_H
#define QCOW2ELF_DIFF_INT_H

#include "qcow2elf/diff.h"

int diff_nomem(struct q2e_error *err);
char *diff_strdup_printf(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* A new change in group G, zeroed but for SYMBOL and MEMBER (copied). */
struct q2e_diff_entry *diff_entry_new(struct q2e_diff *d, enum q2e_diff_group g,
				      const char *symbol, const char *member,
				      struct q2e_error *err);
/*
 * Extends the last change of G with entries INDEX to INDEX + COUNT - 1 if
 * they continue its run: the same symbol and change, the next index, values
 * one step further (or, with COUNT 1, the last entry again, when the unit is
 * smaller than its cluster).  True if it did; otherwise the caller adds a
 * change of its own.
 */
bool diff_entry_extend(struct q2e_diff *d, enum q2e_diff_group g,
		       const char *symbol, uint64_t index, uint64_t count,
		       const char *change, uint64_t old, uint64_t new,
		       uint64_t old_bitmap, uint64_t new_bitmap,
		       uint64_t range_length);
/* A field that differs: records it unless A == B. */
int diff_field_num(struct q2e_diff *d, enum q2e_diff_group g,
		   const char *symbol, const char *member, uint64_t a,
		   uint64_t b, enum q2e_diff_vtype type, struct q2e_error *err);
int diff_field_str(struct q2e_diff *d, enum q2e_diff_group g,
		   const char *symbol, const char *member, const char *a,
		   const char *b, struct q2e_error *err);
/* Adds [START, START + LEN) to R, UNITS of the diff's unit. */
int diff_ranges_add(struct q2e_diff_ranges *r, uint64_t start, uint64_t len,
		    uint64_t units, struct q2e_error *err);

/* The region of KIND that starts at OFF, or NULL. */
const struct q2e_region *diff_region_exact(const struct q2e_image *img,
					   uint64_t off,
					   enum q2e_region_kind kind);
/* The symbol of IMG's structure of KIND owned by OWNER/ID/INDEX (names.c),
 * whether or not it became a region. */
void diff_symbol(const struct q2e_image *img, enum q2e_region_kind kind,
		 uint32_t ext_magic, enum q2e_owner_kind owner, uint32_t id,
		 uint64_t index, char *buf, size_t size);
/* "snapshot_2", "bitmap_0": entry N of the table of KIND. */
void diff_entry_symbol(enum q2e_region_kind kind, size_t n, char *buf,
		       size_t size);

/*
 * Pairs the entries of two tables by key, in table order within a key
 * (diff_match.c).  Fill KA[i] and KB[j] with each entry's key, then
 * diff_pairing_match() sets A[i] to the position in the second table of
 * the first table's entry i, or SIZE_MAX (B likewise).
 */
struct diff_key {
	const char *major;
	const char *minor;
	size_t pos;
};
struct diff_pairing {
	struct diff_key *ka, *kb;
	size_t na, nb;
	size_t *a, *b;
};
int diff_pairing_new(struct diff_pairing *p, size_t na, size_t nb,
		     struct q2e_error *err);
void diff_pairing_match(struct diff_pairing *p);
void diff_pairing_free(struct diff_pairing *p);

int diff_header(struct q2e_diff *d, const struct q2e_image *a,
		const struct q2e_image *b, struct q2e_error *err);
int diff_extensions(struct q2e_diff *d, const struct q2e_image *a,
		    const struct q2e_image *b, struct q2e_error *err);
int diff_snapshots(struct q2e_diff *d, const struct q2e_image *a,
		   const struct q2e_image *b, struct q2e_error *err);
int diff_bitmaps(struct q2e_diff *d, struct q2e_image *a,
		 struct q2e_image *b, struct q2e_error *err);
int diff_tables(struct q2e_diff *d, const struct q2e_image *a,
		const struct q2e_image *b, struct q2e_error *err);
int diff_pointer_tables(struct q2e_diff *d, const struct q2e_image *a,
	    const struct q2e_image *b, struct q2e_error *err);
int diff_l2(struct q2e_diff *d, struct q2e_image *a, struct q2e_image *b,
	    struct q2e_error *err);
int diff_refcounts(struct q2e_diff *d, struct q2e_image *a,
		   struct q2e_image *b, struct q2e_error *err);

/*
 * diff_pairs.c: L2 tables and refcount blocks that differ between images
 * of one geometry, made into changes as they are counted and rendered.
 * A callback returns false to stop.
 */
typedef bool diff_entry_fn(void *arg, const struct q2e_diff_entry *e);
typedef bool diff_range_fn(void *arg, const struct q2e_diff_range *r);
/* What the changes of a pair of tables are made with. */
struct diff_pair_geom {
	struct qcow2_l2_layout l2a, l2b;
	uint64_t cluster_size;
	unsigned cluster_bits;
	uint64_t l2_entries;
	uint64_t guest_size;	/* the larger virtual size */
	unsigned order_a, order_b;	/* refcount orders */
	uint64_t per_block;	/* refcounts a block */
	uint64_t file_size;	/* the larger file */
	uint64_t unit;		/* of the diff's ranges */
};
/* Whether the tables of group G at OA in A and OB in B were added. */
bool diff_pairs_seen(const struct q2e_diff *d, enum q2e_diff_group g,
		     uint64_t oa, uint64_t ob);
/* Entry INDEX of the L1 or refcount table names tables TA (at OA) and TB
 * (at OB), which differ: SYMBOL names their changes.  A pair already
 * seen is not copied again (TA and TB are not read then). */
int diff_pairs_add(struct q2e_diff *d, enum q2e_diff_group g,
		   const struct q2e_image *a, const struct q2e_image *b,
		   uint64_t index, uint64_t oa, uint64_t ob,
		   const uint8_t *ta, const uint8_t *tb, const char *symbol,
		   struct q2e_error *err);
/* The summary's counts of group G's changes and ranges. */
void diff_pairs_tally(struct q2e_diff *d, enum q2e_diff_group g);
bool diff_pairs_has(const struct q2e_diff_pairs *p, enum q2e_diff_group g);
/* Each change of group G in order, with what the values mean if
 * MEANINGS (L2 entries); false if FN stopped it. */
bool diff_pairs_changes(const struct q2e_diff_pairs *p, enum q2e_diff_group g,
			bool meanings, diff_entry_fn *fn, void *arg);
/* Each range of group G's changes named CHANGE ("rose", "freed"). */
void diff_pairs_ranges(const struct q2e_diff_pairs *p, enum q2e_diff_group g,
		       const char *change, diff_range_fn *fn, void *arg);
void diff_pairs_free(struct q2e_diff_pairs *p);
/* diff_entries.c: the changes of L2 tables TA and TB at L1 index INDEX. */
bool diff_l2_pair_changes(const struct diff_pair_geom *geom, uint64_t index,
			  const uint8_t *ta, const uint8_t *tb,
			  const char *symbol, bool meanings, diff_entry_fn *fn,
			  void *arg);

#endif

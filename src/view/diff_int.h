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
 * diff_refblocks.c: refcount blocks that differ, made into changes as
 * they are counted and rendered.  A callback returns false to stop.
 */
typedef bool diff_entry_fn(void *arg, const struct q2e_diff_entry *e);
typedef bool diff_range_fn(void *arg, const struct q2e_diff_range *r);
/* The copy of the blocks at OA in A and OB in B, if they were added. */
const uint8_t *diff_refblocks_find(const struct q2e_diff *d, uint64_t oa,
				   uint64_t ob);
/* Refcount table entry INDEX names blocks BA (at OA) and BB (at OB),
 * which differ: SYMBOL names its changes. */
int diff_refblocks_add(struct q2e_diff *d, const struct q2e_image *a,
		       const struct q2e_image *b, uint64_t index,
		       uint64_t oa, uint64_t ob, const uint8_t *ba,
		       const uint8_t *bb, const char *symbol,
		       struct q2e_error *err);
/* The summary's counts of the refcount blocks' changes and ranges. */
void diff_refblocks_tally(struct q2e_diff *d);
/* Each change in order; false if FN stopped it. */
bool diff_refblocks_changes(const struct q2e_diff_refblocks *rb,
			    diff_entry_fn *fn, void *arg);
/* Each host range where counts rose (ROSE) or fell. */
void diff_refblocks_ranges(const struct q2e_diff_refblocks *rb, bool rose,
			   diff_range_fn *fn, void *arg);
void diff_refblocks_free(struct q2e_diff_refblocks *rb);

#endif

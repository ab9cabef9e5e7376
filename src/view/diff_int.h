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
/* A field that differs: records it unless A == B. */
int diff_field_num(struct q2e_diff *d, enum q2e_diff_group g,
		   const char *symbol, const char *member, uint64_t a,
		   uint64_t b, enum q2e_diff_vtype type, struct q2e_error *err);
int diff_field_str(struct q2e_diff *d, enum q2e_diff_group g,
		   const char *symbol, const char *member, const char *a,
		   const char *b, struct q2e_error *err);
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
/* Snapshots paired by ID and name, bitmaps by name (diff_meta.c): the
 * changes of their entries and of their tables follow the same pairs. */
int diff_pair_snapshots(struct diff_pairing *p, const struct q2e_image *a,
			const struct q2e_image *b, struct q2e_error *err);
int diff_pair_bitmaps(struct diff_pairing *p, const struct q2e_image *a,
		      const struct q2e_image *b, struct q2e_error *err);

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
/* Counts the changes of the active L1 and the refcount table of D's
 * images (made again by diff_pointer_changes()). */
void diff_pointer_tables(struct q2e_diff *d);
int diff_snapshot_l2(struct q2e_diff *d, struct q2e_image *a,
		     struct q2e_image *b, struct q2e_error *err);
int diff_l2(struct q2e_diff *d, struct q2e_image *a, struct q2e_image *b,
	    struct q2e_error *err);
int diff_refcounts(struct q2e_diff *d, struct q2e_image *a,
		   struct q2e_image *b, struct q2e_error *err);

/*
 * The changes of L2 tables and refcount blocks are made from steps each
 * time they are counted or rendered (diff_runs.c).  A step is one entry of
 * the new image's table that changed (COUNT in a row where its entry spans
 * more than one cluster of the old image, each one on from the last),
 * or a part of one (where the old image's clusters are smaller).
 */
enum {
	DIFF_KIND_ROSE = Q2E_DIFF_L2_COUNT,	/* after the L2 kinds */
	DIFF_KIND_FELL,
	DIFF_NKINDS
};
struct diff_step {
	const char *symbol;	/* the table, as the new image names it */
	int kind;		/* enum q2e_diff_l2_kind, or DIFF_KIND_* */
	uint64_t index, count;
	enum q2e_diff_vtype type;	/* RAW: L2 entries; NUM: refcounts */
	uint64_t old, new;
	bool has_bitmap;	/* extended L2 */
	uint64_t old_bitmap, new_bitmap;
	uint64_t old_step, new_step;	/* to the next entry's value */
	const struct qcow2_l2_entry *x, *y;	/* L2: decoded, else NULL */
	uint64_t start, length;	/* guest (L2) or host (refcount) bytes */
};
typedef bool diff_step_fn(void *arg, const struct diff_step *s);
typedef bool diff_entry_fn(void *arg, const struct q2e_diff_entry *e);
typedef bool diff_range_fn(void *arg, const struct q2e_diff_range *r);

/* "allocated", "rose": the change of a step of KIND (static). */
const char *diff_kind_name(int kind);
/* Each change of group G in order, runs joined, with what the values
 * mean if MEANINGS (L2 entries); false if FN stopped it or the walk
 * failed. */
bool diff_runs_changes(const struct q2e_diff *d, enum q2e_diff_group g,
		       bool meanings, diff_entry_fn *fn, void *arg);
/* The same for the active L1 and the refcount table, from the models'
 * copies of both images' tables (diff_tables.c). */
bool diff_pointer_changes(const struct q2e_diff *d, enum q2e_diff_group g,
			  bool meanings, diff_entry_fn *fn, void *arg);
/* Each range of group G's changes of KIND, joined where they touch. */
void diff_runs_ranges(const struct q2e_diff *d, enum q2e_diff_group g,
		      int kind, diff_range_fn *fn, void *arg);
/* The summary's counts of group G's changes and ranges, in one pass. */
int diff_runs_tally(struct q2e_diff *d, enum q2e_diff_group g,
		    struct q2e_error *err);

/* diff_entries.c: how an L2 entry changed, and what it means. */
#define DIFF_MEANING_MAX 192
int diff_l2_change(const struct qcow2_l2_entry *x,
		   const struct qcow2_l2_entry *y);
void diff_l2_meaning(const struct qcow2_l2_entry *e, bool extended,
		     char *buf, size_t size);
uint64_t diff_l2_step(const struct qcow2_l2_entry *e, uint64_t cluster_size);
uint64_t diff_l2_offset(const struct q2e_image *img, uint64_t i);
/* Whether L1 entry I of IMG names an L2 table the lookups read: an
 * unaligned one reads as unallocated. */
bool diff_l1_mapped(const struct q2e_image *img, uint64_t i);
/* The region of KIND that IMG's table entry names at OFF, or NULL where
 * IMG has no such table or holds none of its bytes (read as zeros). */
const struct q2e_region *diff_table_at(struct q2e_image *img, uint64_t off,
				       enum q2e_region_kind kind);
/* Reads table R (or zeros, without one) into BUF, SIZE bytes. */
int diff_load_table(struct q2e_image *img, const struct q2e_region *r,
		    uint8_t *buf, size_t size, struct q2e_error *err);
/* The first index from I on, below N, where table A (NA entries) or B
 * (NB) holds an entry that is not zero, or N. */
uint64_t diff_next_nonzero(const uint64_t *a, uint64_t na,
			   const uint64_t *b, uint64_t nb, uint64_t i, uint64_t n);
uint64_t diff_block_offset(const struct q2e_image *img, uint64_t i);

/*
 * diff_pairs.c: L2 tables and refcount blocks that differ between images
 * of one geometry, kept once per pair.
 */
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
};
/* What is known of the tables of group G at OA in A and OB in B. */
enum diff_pair_seen {
	DIFF_PAIR_UNSEEN,
	DIFF_PAIR_SAME,		/* compared, equal (diff_pairs_same()) */
	DIFF_PAIR_DIFFERS,	/* added (diff_pairs_add()) */
};
enum diff_pair_seen diff_pairs_seen(const struct q2e_diff *d,
				    enum q2e_diff_group g, uint64_t oa,
				    uint64_t ob);
/* The tables of group G at OA in A and OB in B are equal: each entry that
 * names them again costs nothing. */
int diff_pairs_same(struct q2e_diff *d, enum q2e_diff_group g,
		    const struct q2e_image *a, const struct q2e_image *b,
		    uint64_t oa, uint64_t ob, struct q2e_error *err);
/* Entry INDEX of the L1 or refcount table names tables TA (at OA) and TB
 * (at OB), which differ: SYMBOL names their changes, of L2 entries below
 * guest offset GUEST_END (0: the larger virtual size).  A pair already
 * seen is not copied again (TA and TB are not read then). */
int diff_pairs_add(struct q2e_diff *d, enum q2e_diff_group g,
		   const struct q2e_image *a, const struct q2e_image *b,
		   uint64_t index, uint64_t guest_end, uint64_t oa,
		   uint64_t ob, const uint8_t *ta, const uint8_t *tb,
		   const char *symbol, struct q2e_error *err);
bool diff_pairs_has(const struct q2e_diff_pairs *p, enum q2e_diff_group g);
/* Each pair of group G that several entries name gets the digest of its
 * steps, once, made from an entry whose tables are whole (no entry past
 * the end of the guest or the file): UNIT is the diff's. */
void diff_pairs_digest(struct q2e_diff_pairs *p, enum q2e_diff_group g,
		       uint64_t unit);

/*
 * diff_runs.c: what the steps of one entry's pair of tables make in a
 * join of their own: the changes, each as one step grown to its count,
 * the ranges of each kind and their units, from the entry's first guest
 * (L2) or host (refcount) byte.  Another entry that names the same pair,
 * whole, makes the same from its own first byte: what the digest says is
 * given for it in place of its steps.
 */
struct diff_digest;
/* Gives FN one entry's steps (false if FN stopped them). */
typedef bool diff_walk_fn(void *walk, diff_step_fn *fn, void *arg);
/* The digest of the steps WALK gives, those of an entry whose first byte
 * is BASE; NULL where memory runs out or it would take more than BUDGET
 * bytes. */
struct diff_digest *diff_digest_make(diff_walk_fn *walk, void *walk_arg,
				     uint64_t base, uint64_t unit,
				     size_t budget);
size_t diff_digest_bytes(const struct diff_digest *dg);
void diff_digest_free(struct diff_digest *dg);

/* What a sink made of an entry's digest: enough, or nothing (the entry's
 * steps are to be walked), or it stopped. */
enum diff_replay { DIFF_REPLAY_DONE, DIFF_REPLAY_WALK, DIFF_REPLAY_STOP };
/* Where diff_pairs_steps() gives each entry: its digest to REPLAY where
 * it has one and is whole (of GEOM's tables, from BASE, named SYMBOL),
 * else its steps to STEP. */
struct diff_sink {
	diff_step_fn *step;
	enum diff_replay (*replay)(void *arg, const struct diff_digest *dg,
				   const struct diff_pair_geom *geom,
				   uint64_t base, const char *symbol);
	void *arg;
};
/* Group G's pairs, in order, to SINK until it stops: then false. */
bool diff_pairs_steps(const struct q2e_diff_pairs *p, enum q2e_diff_group g,
		      const struct diff_sink *sink);
void diff_pairs_free(struct q2e_diff_pairs *p);
/* diff_entries.c: the steps of entries [FROM, TO) of the L2 tables at L1
 * index INDEX, whose bytes from entry FROM on are TA and TB. */
bool diff_l2_pair_steps(const struct diff_pair_geom *geom, uint64_t index,
			uint64_t guest_end, const uint8_t *ta,
			const uint8_t *tb, uint64_t from, uint64_t to,
			const char *symbol, diff_step_fn *fn, void *arg);

/*
 * diff_walk.c: L2 entries and refcounts compared range by range through
 * both models, where the images' geometries differ.  The walk reads the
 * images again each time its steps are made: they must outlive the diff.
 */
/* Group G (L2 or refcount blocks) of A and B is compared by the walk. */
int diff_walk_add(struct q2e_diff *d, struct q2e_image *a,
		  struct q2e_image *b, enum q2e_diff_group g,
		  struct q2e_error *err);
bool diff_walk_has(const struct q2e_diff_walk *w, enum q2e_diff_group g);
/* The steps of group G, in order, to SINK until it stops (the windows
 * whose tables came before as their digests): then false, as when a read
 * failed (diff_walk_error()). */
bool diff_walk_steps(struct q2e_diff_walk *w, enum q2e_diff_group g,
		     const struct diff_sink *sink);
/* The first read that failed in a walk, copied to ERR; 0 if none. */
int diff_walk_error(const struct q2e_diff_walk *w, struct q2e_error *err);
void diff_walk_free(struct q2e_diff_walk *w);

/*
 * diff_windows.c: the windows of the walk (the guest bytes of one of B's
 * L1 entries) whose tables come again, each given the digest of its steps
 * from its second on.
 */
struct diff_windows;
/* NULL where memory runs out. */
struct diff_windows *diff_windows_new(const struct q2e_image *a,
				      const struct q2e_image *b);
/* Whether a window lies in one of A's clusters: then the calls below
 * take X, A's entry at the window's first byte (else it may be NULL). */
bool diff_windows_by_entry(const struct diff_windows *ws);
/* Whether the window from BASE is one whose tables can come again. */
bool diff_windows_repeat(const struct diff_windows *ws, uint64_t base,
			 const struct qcow2_l2_entry *x);
/* The digest of the window from BASE, where its tables came before (made
 * now from the steps WALK gives, UNIT the diff's), else NULL: the
 * window's steps are to be walked. */
const struct diff_digest *diff_windows_digest(struct diff_windows *ws,
					      uint64_t base,
					      const struct qcow2_l2_entry *x,
					      uint64_t unit, diff_walk_fn *walk,
					      void *walk_arg);
void diff_windows_free(struct diff_windows *ws);

#endif

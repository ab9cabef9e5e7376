/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `diff`: what changed in the metadata between two versions of an image
 * (images or dumps, in any mix).  q2e_diff_build() compares the two models
 * into one result; q2e_diff_render() writes it through either output
 * backend.
 *
 * Every change is named by the symbols of a dump (src/model/names.c):
 * "l2_table_0" entries 2400..2401, "qcow2_header" member "l1_size",
 * "refcount_block_0" entries 26..27, so that `p l2_table_0[2400]` in gdb
 * shows the new value.  The same comparison also yields the guest ranges
 * (L2) and host ranges (refcounts) that changed, counted in units of the
 * smaller of the two cluster sizes.
 */
#ifndef QCOW2ELF_DIFF_H
#define QCOW2ELF_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qcow2elf/error.h"
#include "qcow2elf/model.h"
#include "qcow2elf/output.h"

/* Tables (regions) that appeared, disappeared, moved or changed size. */
enum q2e_diff_change {
	Q2E_DIFF_ADDED,		/* appeared */
	Q2E_DIFF_REMOVED,	/* disappeared */
	Q2E_DIFF_MOVED,		/* same name, other offset */
	Q2E_DIFF_RESIZED,	/* same name and offset, other size */
	Q2E_DIFF_CHANGE_COUNT
};

struct q2e_diff_table {
	enum q2e_diff_change change;
	char *name;		/* "l2_table_5" */
	uint64_t old_offset, new_offset;
	uint64_t old_size, new_size;
};

/* What a changed value holds, which decides how it is shown. */
enum q2e_diff_vtype {
	Q2E_DIFF_V_RAW,		/* a raw or 64-bit value: hex (a string in JSON) */
	Q2E_DIFF_V_NUM,		/* a count below 2^53: a number */
	Q2E_DIFF_V_STR,		/* text (a name) or bytes in hex */
	Q2E_DIFF_V_NONE,	/* absent on this side (added or removed) */
};

struct q2e_diff_value {
	enum q2e_diff_vtype type;
	uint64_t num;
	char *str;
	char *meaning;		/* decoded, or NULL: "data at 0x50000, COPIED" */
	bool has_bitmap;	/* extended L2: the subcluster bitmap word */
	uint64_t bitmap;
};

/* Structure kinds, in the order the summary and the changes are shown. */
enum q2e_diff_group {
	Q2E_DIFF_G_FILE,
	Q2E_DIFF_G_HEADER,
	Q2E_DIFF_G_EXTENSION,
	Q2E_DIFF_G_SNAPSHOT,
	Q2E_DIFF_G_BITMAP,
	Q2E_DIFF_G_BITMAP_TABLE,
	Q2E_DIFF_G_BITMAP_DATA,
	Q2E_DIFF_G_L1,
	Q2E_DIFF_G_L2,
	Q2E_DIFF_G_SNAPSHOT_L2,	/* a snapshot's own L2 tables */
	Q2E_DIFF_G_REFCOUNT_TABLE,
	Q2E_DIFF_G_REFCOUNT_BLOCK,
	Q2E_DIFF_G_COUNT
};

/*
 * One named change: entries [index, index + count) of SYMBOL, or its
 * MEMBER, or the whole structure.  A run of entries is one change when
 * every entry changed the same way and the values step as the first
 * ones do (host offsets a cluster apart, the same refcounts); OLD and NEW
 * are those of the first entry.
 */
struct q2e_diff_entry {
	char *symbol;		/* "l2_table_0", "qcow2_header", "snapshot_2" */
	char *member;		/* "l1_size", "features[3]", or NULL */
	bool indexed;		/* INDEX and COUNT apply */
	uint64_t index, count;
	const char *change;	/* static: "allocated", "rose", "changed" */
	struct q2e_diff_value old, new;
	uint64_t old_step, new_step;	/* between the raw values of a run */
	bool has_range;		/* guest (L2) or host (refcount) bytes; of
				   bitmap data, from the first bit that
				   changed to the last */
	uint64_t range_start, range_length;
	bool has_bits;		/* bitmap data: the bits that changed */
	uint64_t bits_set, bits_cleared;
};

struct q2e_diff_entries {
	struct q2e_diff_entry *v;
	size_t n, cap;
	uint64_t structures;	/* distinct symbols among the changes */
	uint64_t changed;	/* entries, fields or structures changed */
};

struct q2e_diff_range {
	uint64_t start, length;	/* bytes */
};

/* The ranges of one kind of change, counted; they are made as they are
 * rendered (see struct q2e_diff). */
struct q2e_diff_ranges {
	uint64_t units;		/* clusters of the comparison's unit */
	uint64_t n;		/* ranges */
	/* The last range, so that making them again stops where it starts
	 * rather than walk on to its end (one range over a whole image
	 * was a walk of all its tables). */
	uint64_t last_start, last_end;
};

/* How an active L2 entry changed, first match wins in this order. */
enum q2e_diff_l2_kind {
	Q2E_DIFF_L2_FREED,	/* its host cluster was released */
	Q2E_DIFF_L2_ZERO_CLEARED, /* zero flag cleared; no host cluster was
				     released (there was none, or it stays) */
	Q2E_DIFF_L2_ZEROED,	/* now reads as zeros, host cluster kept */
	Q2E_DIFF_L2_COMPRESSED,	/* now compressed */
	Q2E_DIFF_L2_ALLOCATED,	/* was unallocated or zero, now data */
	Q2E_DIFF_L2_REMAPPED,	/* other host offset */
	Q2E_DIFF_L2_COPIED,	/* only the COPIED bit flipped */
	Q2E_DIFF_L2_SUBCLUSTERS, /* only the extended L2 bitmap changed */
	Q2E_DIFF_L2_OTHER,	/* reserved bits */
	Q2E_DIFF_L2_COUNT
};

struct q2e_diff {
	char *old_path, *new_path;
	uint64_t unit;		/* bytes per unit of the ranges */
	struct q2e_diff_entries groups[Q2E_DIFF_G_COUNT];
	struct q2e_diff_table *tables;
	size_t ntables, captables;
	struct q2e_diff_ranges l2[Q2E_DIFF_L2_COUNT];
	struct q2e_diff_ranges refcount_rose, refcount_fell;
	/*
	 * The changes of the L2 tables and refcount blocks and their
	 * ranges are made each time they are rendered, so those groups and
	 * ranges only count them (n set, v NULL): from copies of the pairs
	 * of tables that differ when the images share one geometry, else
	 * from a walk of both images by ranges, which reads them again.
	 * Either is NULL where it has none.
	 */
	struct q2e_diff_pairs *pairs;
	struct q2e_diff_walk *walk;
	/* The changes of the active L1 and the refcount table are made
	 * likewise, from these images' copies of the two tables. */
	const struct q2e_image *old_image, *new_image;
	/* What was not compared, and why, or NULL: the bits of bitmaps
	 * where a dump written with --redact holds no bitmap data. */
	const char *not_compared;
};

/* OLD and NEW must stay open until the result is freed: rendering it
 * may read them again. */
int q2e_diff_build(struct q2e_image *old, struct q2e_image *new,
		   struct q2e_diff **out, struct q2e_error *err);
void q2e_diff_free(struct q2e_diff *d);
/* Number of differences found: 0 when the metadata is the same. */
uint64_t q2e_diff_count(const struct q2e_diff *d);
/*
 * Writes D to O: a summary per structure kind, then the named changes,
 * the tables moved, and the guest and host ranges.  JSON lists everything;
 * human output lists the first five changes of each kind unless VERBOSE,
 * and leaves out what did not change.  Fails only where a read of the
 * images again failed: the changes of that group stop there, the rest is
 * written, and the error is returned.
 */
int q2e_diff_render(const struct q2e_diff *d, struct q2e_out *o,
		    bool verbose, struct q2e_error *err);

const char *q2e_diff_l2_kind_name(enum q2e_diff_l2_kind k);
/* "header", "l2_table", ...: the JSON key of a group. */
const char *q2e_diff_group_name(enum q2e_diff_group g);

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `diff`: what changed in the metadata between two versions of an image
 * (images or dumps, in any mix).  q2e_diff_build() compares the two models
 * into one result; q2e_diff_render() writes it through either output
 * backend.  Guest ranges (L2) and host ranges (refcounts) are counted in
 * units of the smaller of the two cluster sizes.
 */
#ifndef QCOW2ELF_DIFF_H
#define QCOW2ELF_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qcow2elf/error.h"
#include "qcow2elf/model.h"
#include "qcow2elf/output.h"

enum q2e_diff_change {
	Q2E_DIFF_ADDED,		/* tables: appeared */
	Q2E_DIFF_REMOVED,	/* tables: disappeared */
	Q2E_DIFF_CHANGED,
	Q2E_DIFF_MOVED,		/* tables: same name, other offset */
	Q2E_DIFF_RESIZED,	/* tables: same name and offset, other size */
	Q2E_DIFF_CHANGE_COUNT
};

struct q2e_diff_value {
	bool is_str;
	bool hex;
	uint64_t num;
	char *str;
};

/* One field that differs: a header field, a snapshot's date, ... */
struct q2e_diff_field {
	const char *name;	/* static: the spec's or qemu-img's name */
	struct q2e_diff_value old, new;
};

/* An extension, snapshot, bitmap or table that was added, removed, ... */
struct q2e_diff_item {
	enum q2e_diff_change change;
	char *name;		/* "backing-format", "b0", "l2_table_5" */
	char *id;		/* snapshots only */
	uint64_t old_offset, new_offset;	/* tables */
	uint64_t old_size, new_size;
	struct q2e_diff_field *fields;		/* CHANGED */
	size_t nfields;
	uint64_t data_clusters_changed;		/* bitmaps */
};

struct q2e_diff_list {
	struct q2e_diff_item *v;
	size_t n, cap;
};

struct q2e_diff_range {
	uint64_t start, length;	/* bytes */
};

struct q2e_diff_ranges {
	uint64_t units;		/* clusters of the comparison's unit */
	struct q2e_diff_range *v;
	size_t n, cap;
};

/* How an active L2 entry changed, first match wins in this order. */
enum q2e_diff_l2_kind {
	Q2E_DIFF_L2_FREED,	/* lost its host cluster, or now unallocated */
	Q2E_DIFF_L2_ZEROED,	/* now reads as zeros, host cluster kept */
	Q2E_DIFF_L2_COMPRESSED,	/* now compressed */
	Q2E_DIFF_L2_ALLOCATED,	/* was unallocated or zero, now data */
	Q2E_DIFF_L2_REMAPPED,	/* other host offset */
	Q2E_DIFF_L2_COPIED,	/* only the COPIED bit flipped */
	Q2E_DIFF_L2_SUBCLUSTERS, /* only the extended L2 bitmap changed */
	Q2E_DIFF_L2_OTHER,	/* reserved bits */
	Q2E_DIFF_L2_COUNT
};

struct q2e_diff_l1_change {
	uint64_t index;
	uint64_t old, new;	/* raw entries, 0 past the end of a table */
};

struct q2e_diff {
	char *old_path, *new_path;
	uint64_t unit;		/* bytes per unit of the ranges */
	struct q2e_diff_field *header;	/* header fields, backing_file */
	size_t nheader;
	struct q2e_diff_field *file;	/* file-size */
	size_t nfile;
	struct q2e_diff_list extensions, snapshots, bitmaps, tables;
	struct q2e_diff_l1_change *l1;
	size_t nl1, capl1;
	struct q2e_diff_ranges l2[Q2E_DIFF_L2_COUNT];
	struct q2e_diff_ranges refcount_rose, refcount_fell;
};

int q2e_diff_build(struct q2e_image *old, struct q2e_image *new,
		   struct q2e_diff **out, struct q2e_error *err);
void q2e_diff_free(struct q2e_diff *d);
/* Number of differences found: 0 when the metadata is the same. */
uint64_t q2e_diff_count(const struct q2e_diff *d);
/*
 * Writes D to O.  JSON lists everything; human output lists the first
 * five entries of each kind unless VERBOSE, and leaves out empty kinds.
 */
void q2e_diff_render(const struct q2e_diff *d, struct q2e_out *o,
		     bool verbose);

const char *q2e_diff_l2_kind_name(enum q2e_diff_l2_kind k);

#endif

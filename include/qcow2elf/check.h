/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `check`: rebuilds every refcount from the references in the image and
 * compares them with the stored ones, as QEMU 7.2's qcow2_check_refcounts()
 * does for `qemu-img check` (block/qcow2-refcount.c), and adds what
 * qemu-img does not look for: clusters playing two roles, references past
 * the end of the file and the problems the model recorded.
 *
 * The check reads the image through the model only.  It keeps about two
 * bytes per host cluster: a 14-bit saturating reference count and two bits
 * that say whether active L2 entries pointing there have COPIED set, with
 * counts of 0x3fff and above in a side table.
 */
#ifndef QCOW2ELF_CHECK_H
#define QCOW2ELF_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "qcow2elf/error.h"
#include "qcow2elf/exit.h"
#include "qcow2elf/model.h"
#include "qcow2elf/output.h"

struct q2e_check_options {
	/* Called as metadata is read; DONE and TOTAL are bytes. */
	void (*progress)(void *arg, uint64_t done, uint64_t total);
	void *progress_arg;
};

/*
 * One line as qemu-img check prints it ("ERROR OFLAG_COPIED ..."), or one
 * that stands for several: REPEAT copies of it, and, for a line of the
 * snapshot stage that is not OWN, one copy for each snapshot sharing the
 * L1 table of the snapshot its key names (they are counted once for all);
 * or, with COMPARE set and no TEXT, the lines of the refcount comparison
 * for the clusters of one refcount table entry ("Leaked cluster 5 ..."),
 * which q2e_check_write_lines() makes as it writes them.
 */
struct q2e_check_line {
	uint64_t key[3];	/* qemu's order: stage, table, entry */
	uint64_t seq;
	uint64_t repeat;	/* copies of the line, in a row */
	bool shared;		/* REPEAT stands for snapshots sharing a
				 * table, and may be written once */
	bool own;		/* the snapshot's own, not its L1 table's */
	/* 0, or (TEXT NULL) the lines of clusters compared with a refcount
	 * block, made as they are written: 1 + their index in the
	 * result's private part. */
	uint64_t compare;
	/* 0, or (TEXT NULL) the lines of an earlier walk of the same table
	 * again, as qemu-img prints them again: 1 + their index in the
	 * result's private part. */
	uint64_t echo;
	char *text;
};

enum q2e_finding_type {
	Q2E_FINDING_OVERLAP,		/* two structures in one cluster */
	Q2E_FINDING_SHARED,		/* one table in two places it may not be */
	Q2E_FINDING_DATA_IN_METADATA,	/* an L2 entry maps a metadata cluster */
	Q2E_FINDING_PAST_EOF,		/* a reference past the end of the file */
	Q2E_FINDING_MISALIGNED,
	Q2E_FINDING_RESERVED_BITS,
	Q2E_FINDING_SNAPSHOT,		/* an inconsistent snapshot entry */
	Q2E_FINDING_BITMAP,		/* an inconsistent bitmap entry */
	Q2E_FINDING_MISSING_FILE,	/* a backing or data file QEMU needs */
	Q2E_FINDING_OTHER,		/* any other problem of the model */
};

/*
 * A structure a finding involves: a region of the model, a data cluster,
 * or (a problem of the model away from any region) the structure named.
 */
struct q2e_finding_ref {
	const struct q2e_region *region;	/* NULL: see kind */
	const char *kind;	/* without a region: "data cluster", "field" */
	uint64_t offset;
	uint64_t size;
	char owner[96];		/* data cluster: "l2_table_3[17]" */
	bool owned;		/* OWNER is its one owner: a data cluster,
				   or a table that is no region */
};

struct q2e_finding {
	enum q2e_finding_type type;
	enum q2e_severity severity;
	uint64_t offset;
	/* Where the wrong entry is (an L2 entry that maps a data cluster),
	 * when that is not OFFSET. */
	bool has_entry_offset;
	uint64_t entry_offset;
	struct q2e_finding_ref refs[3];
	unsigned nrefs;
	char *structure;	/* model problems: the structure's name */
	char *message;
};

/* The result of one check, as qemu-img's ImageCheck plus the findings. */
struct q2e_check_result {
	const char *filename;
	uint64_t image_end_offset;
	uint64_t total_clusters;
	uint64_t allocated_clusters;
	uint64_t fragmented_clusters;
	uint64_t compressed_clusters;
	uint64_t leaks;
	uint64_t corruptions;
	uint64_t check_errors;
	char *incomplete;	/* why the check could not complete, or NULL */
	/* Why QEMU could not open the image although it was checked here (a
	 * backing or external data file is missing), or NULL: exit status 1,
	 * as qemu-img's. */
	char *unopenable;

	struct q2e_check_line *lines;
	size_t nlines;
	/* More lines than a check keeps (LINES_KEPT_MAX, src/check): the
	 * rest are counted, not written. */
	bool lines_cut;
	struct q2e_finding *findings;
	size_t nfindings;
	bool overlaps;		/* a finding of two roles: exit status 2 */

	/* Snapshot i's L1 table is counted with snapshot leader[i]'s, the
	 * first of the snapshots sharing it. */
	uint32_t *snapshot_leader;
	size_t nsnapshots;
};

/*
 * Checks IMG.  Fails only when the check cannot run at all (out of memory,
 * an I/O error); a damaged image is a result, possibly with ->incomplete.
 */
int q2e_check_run(struct q2e_image *img, const struct q2e_check_options *opts,
		  struct q2e_check_result **out, struct q2e_error *err);
void q2e_check_result_free(struct q2e_check_result *res);

/* 0 clean, 1 incomplete or unopenable, 2 corruptions or overlaps, 3 leaks
 * only. */
int q2e_check_exit_status(const struct q2e_check_result *res);

/*
 * Writes qemu-img check's per-cluster lines, in its order, to FP (qemu-img
 * writes them to standard error).  A table shared by many snapshots whose
 * lines would repeat past a bound has them written once, with a line that
 * says how often they repeat.  Fails with Q2E_EOUTPUT if FP could not be
 * written.
 */
int q2e_check_write_lines(const struct q2e_check_result *res, FILE *fp,
			  struct q2e_error *err);

/*
 * Renders RES, the check of IMG: with JSON, qemu-img check's object (same
 * keys, same order) plus "findings" and, with VISCERA, "viscera"; in human
 * form, qemu-img's summary, then the findings and the metadata tree (the
 * per-cluster lines are q2e_check_write_lines()'s).  The viscera list the
 * L2 tables each snapshot's L1 table names as IMG reads that table again,
 * a chunk at a time, so that their memory does not grow with the list
 * (overlapping L1 tables name billions).  Fails with Q2E_EOUTPUT if FP
 * could not be written, or with the model's error if a snapshot's L1
 * table could not be read again (the output is then cut short).
 */
int q2e_check_render(const struct q2e_check_result *res,
		     struct q2e_image *img, FILE *fp,
		     enum q2e_format format, bool viscera,
		     struct q2e_error *err);

#endif

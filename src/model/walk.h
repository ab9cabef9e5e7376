/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Internal to the model: recording problems and regions during the walk. */
#ifndef QCOW2ELF_MODEL_WALK_H
#define QCOW2ELF_MODEL_WALK_H

#include "qcow2elf/model.h"
#include "source/source.h"

/* A table and a run of its owners: OWNER, then region.nowners - 1 more of
 * the same kind and ID at the next indexes.  QEMU's largest L1 table,
 * 4 million entries naming one L2 table, is one record, not 4 million. */
struct pending_region {
	struct q2e_region region;
	struct q2e_owner owner;
};

/*
 * Problems that entries of one table repeat, each kind recorded once for
 * a run of entries (runs.c): tables they name that are not cluster
 * aligned, or past the end of the file, and entries with reserved bits.
 */
enum walk_run_kind { RUN_MISALIGNED, RUN_PAST_END, RUN_RESERVED, RUN_KINDS };

struct walk_run {
	uint64_t count;			/* entries in the run; 0: none */
	uint64_t seq;			/* when it began: flushes in order */
	enum q2e_region_kind kind;	/* of the tables named */
	struct q2e_owner first, last;	/* their owners */
	uint64_t first_off, last_off, size;
	/* RUN_RESERVED: the table of the entries (FIRST_OFF and LAST_OFF
	 * are theirs), the first one's value, and its reserved bits where
	 * its message shows them (else 0). */
	char table[64];
	uint64_t table_off, first_raw, reserved;
};

struct walk {
	struct q2e_image *img;
	struct q2e_error *err;
	struct pending_region *pending;
	size_t npending, cap;
	size_t problems_cap;	/* of img->problems */
	struct walk_run runs[RUN_KINDS];	/* not yet recorded */
	uint64_t run_seq;
};

/* Chunks of the problems' strings, the newest first: a problem costs no
 * allocation of its own (an image may have thousands). */
struct q2e_problem_text {
	struct q2e_problem_text *next;
	size_t used, size;
	char bytes[];
};

/* The owner of the structures that belong to the image as a whole. */
static const struct q2e_owner walk_image_owner = { Q2E_OWNER_IMAGE, 0, 0 };

int walk_problem(struct walk *w, enum q2e_severity sev,
		 enum q2e_problem_type type, uint64_t offset,
		 const char *structure, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
void walk_free_problems(struct q2e_image *img);
/* walk_problem() without recording the runs first (runs.c's). */
int walk_add_problem(struct walk *w, enum q2e_severity sev,
		     enum q2e_problem_type type, uint64_t offset,
		     const char *structure, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
/*
 * What is wrong with the table of KIND (SIZE bytes at OFF) that O owns:
 * not cluster aligned, or past the end of the file (runs.c).  Tables that
 * O's table names after it, wrong alike, join its run.
 */
int walk_note_table(struct walk *w, enum q2e_region_kind kind,
		    const struct q2e_owner *o, uint64_t off, uint64_t size);
/* Entry INDEX of TABLE (at TABLE_OFF) is RAW, with reserved bits set:
 * RESERVED, shown in its message unless 0. */
int walk_note_reserved(struct walk *w, const char *table, uint64_t table_off,
		       uint64_t index, uint64_t raw, uint64_t reserved);
/* Records the runs, in the order they began: before any other problem,
 * and at the end of the walk. */
int walk_flush_problems(struct walk *w);
int walk_region(struct walk *w, enum q2e_region_kind kind, uint64_t offset,
		uint64_t size, struct q2e_owner owner, uint32_t ext_magic);
/* Makes room for MORE records, which the walk is about to make (a
 * table's entries that name one each): exactly, so that they fill it.
 * A hint: without the memory, the records still grow the array. */
void walk_expect_regions(struct walk *w, uint64_t more);
void walk_free_pending(struct walk *w);
/* Grows the first recorded region of KIND to SIZE bytes. */
int walk_extend_region(struct walk *w, enum q2e_region_kind kind,
		       uint64_t size);
int walk_finish_regions(struct walk *w);
/* Tells the byte source which regions the views will read (prefetch.c). */
int walk_plan_reads(struct walk *w);

/* Bounded reads and the problems they find (image.c). */
bool walk_in_file(const struct q2e_image *img, uint64_t off, uint64_t len);
/* LEN zeroed bytes, mapped when large: pages never touched cost nothing. */
uint8_t *walk_zalloc(uint64_t len);
void walk_zfree(uint8_t *p, uint64_t len);
int walk_read_alloc(struct walk *w, uint64_t off, uint64_t len,
		    const char *what, uint8_t **out, uint64_t *got);
/* The entries of a table for FN, a chunk at a time (image.c). */
/* How many of the COUNT entries at OFF the file holds (an entry the file's
 * end cuts counts): past them, in a trailing hole or past the end, the
 * entries read as 0. */
uint64_t table_held_entries(struct q2e_image *img, uint64_t off,
			    uint64_t count);
int table_entries_each(struct q2e_image *img, uint64_t off, uint64_t count,
		       const char *what, q2e_entries_fn fn, void *arg,
		       uint64_t *nread, struct q2e_error *err);
int walk_read_entries(struct walk *w, uint64_t off, uint64_t count,
		      const char *what, uint64_t **out, uint64_t *n);
int walk_note_truncated(struct walk *w, const char *name, uint64_t off,
			uint64_t len);
int walk_note_misaligned(struct walk *w, const char *name, uint64_t off);
/* The two above without recording the runs first (runs.c's). */
int walk_add_truncated(struct walk *w, const char *name, uint64_t off,
		       uint64_t len);
int walk_add_misaligned(struct walk *w, const char *name, uint64_t off);
char *walk_dup_string(const uint8_t *p, size_t len);

/* The parts of the walk, in the order walk_image() calls them. */
int walk_read_header(struct walk *w);
int walk_read_extensions(struct walk *w, const uint8_t *c0, uint64_t len);
int walk_read_backing_name(struct walk *w, const uint8_t *c0, uint64_t len);
int walk_read_active_l1(struct walk *w);
int walk_read_refcounts(struct walk *w);
int walk_read_snapshots(struct walk *w);
int walk_read_bitmaps(struct walk *w);
int walk_read_crypto(struct walk *w);

/* Shared by the active L1 and the snapshots' (walk_tables.c). */
int validate_l1(struct walk *w, const char *name, uint64_t off,
		uint64_t entries, uint64_t field_off, bool *readable);
/* L1 entries FIRST to FIRST + N - 1 of a table at L1_OFF. */
int walk_l2_tables(struct walk *w, const uint64_t *l1, uint64_t first,
		   uint64_t n, uint64_t l1_off, struct q2e_owner owner,
		   const char *l1_name);

/* bdrv_check_request() (qemu_rules.c): no read may reach past 2^63 -
 * 2^30. */
bool qemu_unreadable(uint64_t offset, uint64_t bytes);

#endif

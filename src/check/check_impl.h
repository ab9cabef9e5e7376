/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Inside `check`: the state the stages share and the functions one file
 * offers the others.  Not part of the library's interface; the unit tests
 * include it to test the counters and the comparison directly.
 *
 *   counters.c     one counter per host cluster, with the big-count table
 *   report.c       qemu-img's lines: corrupt(), give_up()
 *   count_l2.c     the entries of one L2 table, by entry type
 *   l2_owners.c    an L2 table for every L1 entry that reaches it
 *   walk_replay.c  a walk of one recorded for the walks after it
 *   count_tables.c the L1 tables, snapshots, bitmaps, refcount table
 *   compare.c      stored refcounts against the counts; COPIED
 *   findings.c     what qemu-img does not look for
 *   check.c        the driver: the stages of qcow2_check_refcounts()
 * What QEMU refuses to open or check is the model's (qemu_rules.c).
 */
#ifndef QCOW2ELF_CHECK_IMPL_H
#define QCOW2ELF_CHECK_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "qcow2elf/check.h"
#include "qcow2elf/hashmap.h"

/*
 * The counter of one host cluster: a byte, since the counters are written
 * once and read once per cluster and a 1 TiB image has 16 million of them.
 * Counts of CNT_BIG and more go to the dense tier (struct big_counts).
 */
#define CNT_MASK 0x3fU		/* the count, or CNT_BIG: see the tiers */
#define CNT_BIG 0x3fU
#define CNT_COPIED 0x40U	/* an active L2 entry with COPIED maps it */
#define CNT_NOT_COPIED 0x80U	/* an active L2 entry without COPIED does */

/* Stages of qcow2_check_refcounts(), in the order it prints. */
enum stage {
	ST_OPEN,
	ST_HEADER,
	ST_ACTIVE,
	ST_SNAPSHOT_DATA_FILE,
	ST_SNAPSHOTS,
	ST_SNAPSHOT_TABLE,
	ST_REFTABLE,
	ST_CRYPTO,
	ST_BITMAPS,
	ST_REFBLOCKS,
	ST_COMPARE,
	ST_COPIED,
};

/*
 * Counts of CNT_BIG and more.  The dense tier: 16-bit counts for chunks of
 * TIER_CHUNK clusters, made when a cluster of the chunk first needs one
 * (snapshots share clusters by the run, so their neighbours follow).
 * Counts of TIER_BIG and more: open addressing, cluster + 1 as the key,
 * which real images rarely need (a cluster shared by 65,534 snapshots).
 */
#define TIER_SHIFT 12
#define TIER_CHUNK (1U << TIER_SHIFT)
#define TIER_BIG 0xffffU
struct big_counts {
	uint16_t **tier;	/* by cluster >> TIER_SHIFT, or NULL */
	uint64_t ntier;
	uint64_t *keys;
	uint64_t *vals;
	size_t cap, n;
};

/* Clusters that hold metadata, merged, for the data-in-metadata finding. */
struct meta_range {
	uint64_t start, end;	/* clusters, [start, end) */
};

/*
 * The texts of the lines and of the findings (message and structure), in
 * chunks that never move: a strdup() per line (and a free() per line) cost
 * a fifth of a check that printed 65,536 lines.  The result the check
 * hands out is the first member of this, which q2e_check_result_free()
 * frees.
 */
struct text_chunk {
	struct text_chunk *next;
	size_t used, cap;
	char text[];
};

/*
 * Clusters [start, end) that disagree with their refcount block somewhere:
 * one line record stands for all their lines (compare.c), made when they
 * are written from the block's copy and the counts, which the result
 * keeps.  A sparse file of 16 million leaked clusters, whose refcount
 * table points 512 times at one block, took 1.7 GB as one line each.
 */
struct compare_lines {
	uint64_t start, end;
	const uint8_t *block;	/* the block's refcounts; NULL: all 0 */
	bool unreadable;	/* qemu-img cannot read the block: a check
				 * error for each cluster */
};

/*
 * The lines of a walk of a table that an earlier walk printed already, in
 * the same order: the COUNT records from the one with KEY and SEQ_FROM on
 * (in the lines' order), standing for LINES lines.  An L2 table whose
 * 8,192 entries point past the end of the file, named by 2,048 L1
 * entries, makes qemu-img print 33 million lines (each walk's, and each
 * of the COPIED check's); kept each, they took 5.3 GB of a 320 KB file.
 */
struct echo_lines {
	uint64_t key[3];	/* of the first record, at seq SEQ_FROM */
	uint64_t seq_from;
	size_t count;
	uint64_t lines;
};

/* A copy of a refcount block that compare_lines point at. */
struct block_copy {
	struct block_copy *next;
	uint8_t bytes[];
};

struct check_result_impl {
	struct q2e_check_result pub;
	struct text_chunk *texts;
	struct compare_lines *compares;	/* by q2e_check_line.compare - 1 */
	size_t ncompares, compares_cap;
	struct echo_lines *echoes;	/* by q2e_check_line.echo - 1 */
	size_t nechoes, echoes_cap;
	struct block_copy *copies;
	uint64_t text_bytes;	/* in text chunks made (report.c) */
	unsigned refcount_order;
	uint64_t cluster_size;
	/* The counts the compared clusters' lines are made from: the
	 * checker's, handed over when the check is done (or lent). */
	uint8_t *counts;
	uint64_t counts_cap;
	struct big_counts big;
	bool counts_owned;
};

/*
 * Refcount overflows (counters.c).  qemu-img prints two lines for each
 * reference past a refcount's width, and one L2 table named by QEMU's
 * largest L1 table (4 million entries) with 1-bit refcounts overflows
 * two clusters at each entry: 16 million lines kept, 2.2 GB.  So a
 * cluster's lines are kept up to OVERFLOW_LINES_MAX lines (counted as
 * lines printed: a record that stands for several snapshots' lines
 * counts each, and an echo of a walk, struct echo_lines, prints the
 * walk's again), and all clusters' up to OVERFLOW_LINES_ALL; the
 * overflows past them are counted,
 * with the first in qemu's order, and each cluster gets one line for
 * them there (overflow_summaries()).  The clusters past OVERFLOW_LINES_ALL
 * that had no line kept yet are counted together, in OTHER.
 */
#define OVERFLOW_LINES_MAX 131072
#define OVERFLOW_LINES_ALL (2 * OVERFLOW_LINES_MAX)
struct overflow {
	uint64_t k;		/* the cluster */
	uint64_t kept;		/* its lines */
	uint64_t quiet;		/* overflows counted only */
	uint64_t key[3];	/* the first of them, in qemu's order */
	uint64_t cluster;	/* ... and its cluster */
};
struct overflows {
	struct overflow *list;	/* in the order the clusters overflowed */
	size_t n, cap;
	struct q2e_map index;	/* cluster -> 1 + its place in LIST */
	uint64_t kept;		/* all clusters' lines */
	struct overflow other;
};


/* Entries [from, to) of an L2 table that a walk does something for. */
struct l2_span {
	uint32_t from, to;
};

struct l2_spans {
	struct l2_span *v;
	size_t n, cap;
};

/* The lines of one walk of an L2 table (report.c: lines_since()). */
struct walk_lines {
	size_t from, count;	/* records, their seqs */
	uint64_t lines;		/* lines they stand for */
	bool whole;		/* none joined the record before M */
	/* Each record has the walk's key[0] (none went to another
	 * snapshot of a group, overflow_lines()), and none is a
	 * snapshot's own line of a walk for a group (c->mult > 1): the
	 * snapshot stage writes own lines apart (write_snapshots()). */
	bool echoable;
};

/* The result's numbers a walk adds to (walk_replay.c). */
enum { RR_CORRUPTIONS, RR_CHECK_ERRORS, RR_ALLOCATED, RR_FRAGMENTED,
       RR_COMPRESSED, RR_N };

/* One walk of an L2 table, recorded for the walks after it of the same
 * table (walk_replay.c). */
struct walk_record {
	bool on;		/* recording: references go to K */
	bool ready;		/* a walk was recorded, without overflow line */
	bool active;		/* it was the active table's */
	uint64_t mult;		/* its c->mult */
	uint64_t *k;		/* the clusters it referenced, sorted */
	size_t n, cap;
	uint64_t before[RR_N];
	/* What it added: the corruptions by unit of c->mult, the rest by
	 * walk. */
	uint64_t delta[RR_N];
	uint64_t overflows;	/* c->overflows before it */
	uint64_t overflow_refs;	/* c->overflow_refs before it */
	uint64_t kept;		/* c->ovf.kept before it */
};

struct checker {
	struct q2e_image *img;
	struct q2e_check_result *res;
	const struct q2e_check_options *opts;
	struct q2e_error *err;
	/* Text chunks a walk's echo took back, for the next walk's lines:
	 * freed, they went back to the kernel and came again as new pages,
	 * 600,000 page faults for the 4,096 walks of a 320 KB file. */
	struct text_chunk *spare_texts;
	uint64_t cs;
	unsigned cbits;
	uint64_t refcount_max;
	bool data_file;

	uint8_t *counts;
	uint64_t nb_clusters, cap;
	bool prefault;	/* grow_counts(): make the huge pages at once */
	struct big_counts big;
	bool copied_suspect;	/* some active entry may have COPIED wrong */

	uint64_t key[3];	/* of the lines being produced */
	size_t lines_cap, findings_cap;
	/* The lines below it may be an echo's source (struct echo_lines):
	 * no later line joins them (same_as_last()), or the echo would
	 * write the joined line too. */
	size_t sealed;

	bool *skip_snapshot;	/* QEMU skips snapshots with a bad L1 */
	/* Snapshots sharing an L1 table are counted once, by their leader
	 * (res->snapshot_leader), for MULT of them: each reference MULT
	 * times, each corruption MULT times with its line written for each
	 * (report.c).  next_member lists a leader's group in order. */
	uint64_t mult;
	uint32_t *next_member;
	uint32_t *group_n;	/* by leader: its group's size */
	bool own_lines;		/* lines are the snapshot's own */
	/* The last check_l2() found every entry of its table plain: for an
	 * L1 entry neither active nor first, nothing or one reference to a
	 * cluster inside the file. */
	bool l2_plain;
	/* check_l1(): entries of the table being walked that made lines.
	 * Past L1_LINES_MAX of them, an entry's lines are counted by kind
	 * in l1_quiet instead and each kind gets one line at the end. */
	uint64_t l1_loud;
	struct l1_quiet {
		uint64_t n, first, last;	/* entries, by index */
	} l1_quiet[3];
	struct overflows ovf;
	struct l2_reach *reach;	/* an L2 table's owners after the first */
	size_t reach_cap;
	/* The runs the last check_l2() took by the fast path, in entry
	 * order: check_l2_again() counts them without reading them again.
	 * Room for one per entry. */
	struct l2_run *runs;
	size_t nruns;
	/* check_l2() walks only these entries of its table when set: those
	 * that are not zero, of a table walked again for each of many L1
	 * entries.  TABLE_SPANS are the L2 region's being counted
	 * (count_l2_owners()); CLUSTER0 (the file's first cluster, read once
	 * and kept) and its spans are for the L1 entries that have flags but
	 * no offset, each of which QEMU reads cluster 0 as an L2 table for
	 * (4,096 snapshot tables of such entries walked 1.8 million times
	 * the 8,192 entries of a 64 KiB cluster). */
	const struct l2_spans *walk_spans;
	struct l2_spans table_spans, cluster0_spans;
	uint8_t *cluster0;
	/* check_cluster0(): the lines of the last walk of cluster 0 that
	 * was not an echo, once there was a walk. */
	struct walk_lines cluster0_src;
	bool cluster0_walked;
	struct walk_record rec;
	uint64_t overflows;	/* references past the refcount's width */
	uint64_t overflow_refs;	/* ... counted by unit of c->mult */
	struct q2e_read_ahead *tables;	/* small L2 tables read ahead */
	struct q2e_read_ahead *blocks;	/* small refcount blocks read ahead */
	const struct q2e_region **refblock;	/* by refcount table index */
	uint64_t nrefblock;
	/* By refcount table index: the block was read and every refcount in
	 * it equals the count, so the count is the stored refcount.  Set by
	 * compare_refcounts(), from the last compare_block() (block_agreed). */
	bool *agrees;
	uint64_t nagrees;
	bool block_agreed;
	/* Refcount blocks read with the L2 table beside them (one read for
	 * both, check_l2_regions()) and kept until compare_refcounts(), as
	 * one bit a refcount: only 16-bit blocks whose refcounts are all 0
	 * or 1, as preallocation and a healthy image leave them.  By
	 * refcount table index: 0 none, else 1 + the block's slot in BITS,
	 * which holds BITS_LEN bytes a block. */
	uint32_t *kept_slot;
	uint8_t *kept_bits;
	size_t nkept, kept_cap, bits_len;
	uint8_t *span;		/* SPAN_MAX bytes, for regions read together */
	/* OVERLAP_MAX bytes, for L2 tables that overlap, made at the
	 * first; it holds the file's bytes from OVERLAP_OFF to OVERLAP_END. */
	uint8_t *overlap;
	uint64_t overlap_off, overlap_end;
	/* compare_refcounts(): the region of the block being compared, and
	 * the copy of each block made for compare_lines, by region index. */
	const struct q2e_region *cmp_region;
	const uint8_t **copy_of;
	bool signaled;	/* qcow2_signal_corruption() said it, once */

	/* The data findings of an L2 table's entries, one for a run of each
	 * type (findings.c): the finding, its table, how many entries it
	 * stands for, the first and last, and where the text of the first
	 * entry's message starts after its name. */
	struct data_run {
		size_t finding;
		const struct q2e_region *l2;
		uint64_t count, first, last;
		size_t text_at;
	} data_runs[Q2E_FINDING_OTHER + 1];

	struct meta_range *meta;
	size_t nmeta;
	size_t meta_next;	/* the first range after the last cluster found */
	uint64_t gap_lo, gap_hi;	/* clusters [gap_lo, gap_hi): no metadata */
	uint64_t file_clusters;		/* clusters that start inside the file */

	uint8_t *buf;		/* one cluster */
	uint64_t done, total;
	unsigned last_pct;
};

/* check.c: a checker for IMG with an empty result, and its release. */
int checker_init(struct checker *c, struct q2e_image *img,
		 const struct q2e_check_options *opts, struct q2e_error *err);
void checker_release(struct checker *c);

/* report.c */
/* The memory the lines kept to write in qemu-img's order may take, at
 * most (records, echoes and texts): past it, lines are counted but not
 * kept.  A 6.8 MB file with 2 MiB L2 tables at each 512 bytes makes
 * qemu-img print 870 million lines; QEMU's largest refcount table, each
 * entry past the end of the file, a million (120 MB, all kept). */
#define LINES_KEPT_BYTES (128U << 20)
int nomem(struct checker *c);
void set_key(struct checker *c, uint64_t k0, uint64_t k1, uint64_t k2);
int add_line(struct checker *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A line for REPEAT corruptions at key K0, the snapshot's own. */
int add_repeated_line(struct checker *c, uint64_t k0, uint64_t repeat,
		      const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A corruption qemu-img reports: counted, and its line kept. */
int corrupt(struct checker *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A copy of S, cut at MAX - 1 bytes, kept with the result's texts (freed
 * with it); NULL if out of memory. */
char *keep_string(struct checker *c, const char *s, size_t max);
/* Snapshot table entries past the end of the file that get qemu-img's
 * line each; more get one line for all. */
#define SNAPSHOT_LINES_MAX 4096
/* N corruptions qemu-img reports one line each for, under one line. */
int corrupt_many(struct checker *c, uint64_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A line record for compare_lines I of the result: no text. */
int add_compare_line(struct checker *c, size_t i);
/*
 * The lines a walk of a table added (report.c): from a mark of where the
 * result's lines stood before it, so that a later walk's lines can be
 * compared with them and taken back.
 */
struct line_mark {
	size_t nlines;
	struct text_chunk *texts;
	size_t used;
	uint64_t last_repeat;	/* of the record before the mark */
	size_t nfindings;	/* whose texts share the chunks */
};
void mark_lines(const struct checker *c, struct line_mark *m);
void lines_since(const struct checker *c, const struct line_mark *m,
		 struct walk_lines *w);
/*
 * If the lines added since M are those of SRC again, record for record
 * (text, count, entry index), they are taken back and one record with the
 * checker's key stands for them (*ECHOED).
 */
int echo_walk(struct checker *c, const struct line_mark *m,
	      const struct walk_lines *src, bool *echoed);
/* One record with the checker's key standing for SRC's lines again. */
int add_echo_line(struct checker *c, const struct walk_lines *src);
/* qemu-img check stops: COUNTER (corruptions or check_errors) counts it and
 * the first reason is kept.  Returns 0, or an error if out of memory. */
int give_up(struct checker *c, uint64_t *counter, const char *why);
void progress(struct checker *c, uint64_t bytes);
int read_cluster(struct checker *c, const struct q2e_region *r, uint64_t off);
/* The file's bytes from OFF to END (OVERLAP_MAX at most) into c->overlap,
 * zeros past its end: L2 tables that overlap, read together. */
int read_overlapping(struct checker *c, uint64_t off, uint64_t end);
/* Whether one read gives every byte from OFF to END: not where a dump
 * lacks a removed section's bytes (a read stops there; each region past
 * it must be read on its own). */
bool reads_whole(const struct checker *c, uint64_t off, uint64_t end);
bool unreadable(uint64_t offset, uint64_t bytes);

/* counters.c */
uint64_t count_at(const uint8_t *counts, const struct big_counts *big,
		  uint64_t k);
uint64_t get_count(const struct checker *c, uint64_t k);
void free_count_arrays(uint8_t *counts, uint64_t cap, struct big_counts *big);
int set_count(struct checker *c, uint64_t k, uint64_t v);
int grow_counts(struct checker *c, uint64_t n);
void free_counts(struct checker *c);
int inc_refs(struct checker *c, uint64_t offset, uint64_t size);
/* A line for each cluster's overflows past the lines kept: once all are
 * counted, before the lines are sorted. */
int overflow_summaries(struct checker *c);
/* Whether inc_refs() finds the range a cluster or more past the end. */
bool refs_past_end(const struct checker *c, uint64_t offset, uint64_t size);

/* Fast path of inc_refs() for one aligned cluster inside the file (not
 * while a walk is recorded: inc_refs() records each reference). */
static inline int inc_cluster(struct checker *c, uint64_t offset)
{
	uint64_t k = offset >> c->cbits;
	uint8_t v;

	if (k < c->nb_clusters && !(offset & (c->cs - 1)) && !c->rec.on) {
		v = c->counts[k];
		if ((v & CNT_MASK) + c->mult < CNT_BIG &&
		    (v & CNT_MASK) + c->mult <= c->refcount_max) {
			c->counts[k] = (uint8_t)(v + c->mult);
			return 0;
		}
	}
	return inc_refs(c, offset, c->cs);
}

/*
 * walk_replay.c: a walk of an L2 table recorded, from replay_start() to
 * replay_stop() (passed the walk's result, which it returns), for the
 * walks after it: how many units of c->mult more the counts have room
 * for below the refcount's width (0 if none was recorded), and then, for
 * WALKS walks of UNITS in all, what they add to the counts and the
 * result's numbers (their lines are the caller's).
 */
void replay_start(struct checker *c, bool active);
int replay_ref(struct checker *c, uint64_t k);
int replay_stop(struct checker *c, int ret);
uint64_t replay_room(const struct checker *c);
/* Cluster K's record where each overflow of it from now on is counted
 * without a line, and its first is counted already (so a walk after
 * makes no line and moves no first): else NULL (counters.c). */
struct overflow *quiet_overflow_of(struct checker *c, uint64_t k);
/* Whether quiet_overflow_of() would find such a record. */
bool overflow_is_quiet(const struct checker *c, uint64_t k);
/* OVER more such overflows, in Q. */
void add_quiet_overflows(struct checker *c, struct overflow *q,
			 uint64_t over);
int replay_apply(struct checker *c, uint64_t units, uint64_t walks);

/* l2_owners.c: L2 region R (in c->buf) for every L1 entry that reaches
 * it; cluster 0 (read once) as an L2 table for the L1 entry at key K0, K1
 * (c->mult of them), which has flags but no offset. */
int count_l2_owners(struct checker *c, const struct q2e_region *r);
int check_cluster0(struct checker *c, uint64_t k0, uint64_t k1, bool active);

/* count_l2.c: the spans of entries of the L2 table at BUF that a walk
 * does something for (not zero; of 8-byte entries, not a zero or
 * unallocated cluster without an offset either), in S; for
 * c->walk_spans. */
int l2_nonzero_spans(struct checker *c, const uint8_t *buf,
		     struct l2_spans *s);

/* count_l2.c: one L2 table (in c->buf) for one L1 entry that reaches it. */
int check_l2(struct checker *c, const struct q2e_region *r, uint64_t k0,
	     uint64_t k1, bool active, bool first);

/* Entries [j, j + n) of an L2 table map clusters [k, k + n), all with the
 * same flags. */
struct l2_run {
	uint32_t j, n;
	uint64_t k;
};

/* One more L1 entry (of a snapshot's table) that reaches an L2 table:
 * the key of its lines and how many snapshots it counts for. */
struct l2_reach {
	uint64_t k0, k1, mult;
};

/*
 * The table in c->buf for N more L1 entries (REACH), neither the active
 * table's nor the first to reach it, in one walk: after a check_l2() that
 * found every entry plain (c->l2_plain).
 */
int check_l2_again(struct checker *c, const struct l2_reach *reach,
		   size_t n);

/* count_tables.c */
int check_l1(struct checker *c, enum stage st, uint64_t snap,
	     uint64_t l1_off, uint64_t l1_size, const uint64_t *l1,
	     uint64_t nl1);
int check_snapshots(struct checker *c);
int check_l2_regions(struct checker *c);
/*
 * Small reads made ahead (table_batch.c), for a caller that reads one
 * range of the image a step, steps 0 to STEPS: AHEAD gives step I's (a
 * length of 0: none, or none to read ahead).  table_batch_take() returns
 * the bytes of step I's range as the page cache holds them, read with
 * those of the next steps into *RAP (made at the first call); NULL: read
 * it as usual (a larger range, or one the cache lacks).  Valid until the
 * next call.
 */
typedef struct q2e_extent (*table_ahead_fn)(struct checker *c, size_t i);
const uint8_t *table_batch_take(struct checker *c,
				struct q2e_read_ahead **rap,
				table_ahead_fn ahead, size_t i, size_t steps);
int check_bitmaps(struct checker *c);
int check_refblocks(struct checker *c);
int index_refblocks(struct checker *c);

/*
 * Regions that lie end to end are read together up to this many bytes:
 * with 512-byte clusters, a refcount block sits right before every fourth
 * L2 table, and a read per 512 bytes costs more than the bytes.  Clusters
 * this large or larger are read one at a time.
 */
#define SPAN_MAX (64U << 10)
/* L2 tables that overlap one another are read together up to this many
 * bytes (count_overlapping()). */
#define OVERLAP_MAX (8U << 20)

/* compare.c */
/* Keeps refcount block BLOCK, region R, for compare_refcounts(), if it can
 * be kept as bits. */
int keep_refblock(struct checker *c, const struct q2e_region *r,
		  const uint8_t *block);
int compare_block(struct checker *c, const uint8_t *block, uint64_t start,
		  uint64_t end, uint64_t *highest);
int compare_refcounts(struct checker *c, uint64_t *highest);
int check_copied(struct checker *c);
/*
 * The counts, for the lines of compare_lines: handed over to the result
 * (OWN: the checker has them no more), or lent while the checker lives.
 */
void keep_counts(struct checker *c, bool own);
/* The lines of compare_lines CMP of RES, written to FP. */
void write_compare_lines(const struct check_result_impl *res,
			 const struct compare_lines *cmp, FILE *fp);

/* findings.c */
int build_meta_ranges(struct checker *c);
long meta_find(struct checker *c, uint64_t k);
int data_finding(struct checker *c, const struct q2e_region *l2, uint64_t j,
		 uint64_t off, uint64_t size, enum q2e_finding_type type,
		 const char *fmt, ...) __attribute__((format(printf, 7, 8)));
int data_findings(struct checker *c, const struct q2e_region *l2,
		  uint64_t j, uint64_t off, uint64_t size);
/* The messages of the runs of data findings, once the tables are walked. */
int close_data_runs(struct checker *c);
int model_findings(struct checker *c);
int overlap_findings(struct checker *c);
int shared_findings(struct checker *c);
int missing_file_findings(struct checker *c);

/* Data clusters come mostly in order: the gap meta_find() last kept
 * around a cluster usually holds the next one too. */
static inline bool in_gap(const struct checker *c, uint64_t k)
{
	return c->gap_lo <= k && k < c->gap_hi;
}

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The image model: one walk over an image (or a dump of one) that finds
 * every metadata region, with its kind, owners, offset, size and decoded
 * fields.  Views (info, map, check, diff, the emitters) read this model and
 * the accessors below; none of them parses the image on its own.
 *
 * Reading is for inspection: an image QEMU would refuse is read as far as
 * it safely can be, and what is wrong is recorded as a problem.  Only an
 * input that is not QCOW2 or has no readable header fails q2e_image_open().
 */
#ifndef QCOW2ELF_MODEL_H
#define QCOW2ELF_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qcow2elf/error.h"
#include "qcow2elf/input.h"
#include "qcow2elf/qcow2.h"

struct q2e_source;	/* private to the model (src/source/source.h) */

enum q2e_region_kind {
	Q2E_REGION_HEADER,
	Q2E_REGION_EXTENSION,
	Q2E_REGION_BACKING_FILE,
	Q2E_REGION_L1,			/* active or a snapshot's */
	Q2E_REGION_REFCOUNT_TABLE,
	Q2E_REGION_SNAPSHOT_TABLE,
	Q2E_REGION_BITMAP_DIRECTORY,
	Q2E_REGION_CRYPTO_HEADER,
	Q2E_REGION_L2,			/* shared by the L1s that point to it */
	Q2E_REGION_REFCOUNT_BLOCK,
	Q2E_REGION_BITMAP_TABLE,
	Q2E_REGION_BITMAP_DATA,
	Q2E_REGION_KIND_COUNT
};

/* Who a region belongs to; a shared L2 table has several owners. */
enum q2e_owner_kind {
	Q2E_OWNER_IMAGE,	/* header, extensions, refcount structures */
	Q2E_OWNER_ACTIVE,	/* the active L1 and its L2 tables */
	Q2E_OWNER_SNAPSHOT,	/* snapshot ID (position in the table) */
	Q2E_OWNER_BITMAP,	/* bitmap ID (position in the directory) */
};

struct q2e_owner {
	enum q2e_owner_kind kind;
	uint32_t id;		/* snapshot or bitmap position, from 0 */
	uint64_t index;		/* L1 index, refcount table index, bitmap
				   table index, or extension position */
};

struct q2e_region {
	enum q2e_region_kind kind;
	uint64_t offset;
	uint64_t size;
	uint64_t avail;		/* bytes of it inside the file (<= size) */
	uint32_t ext_magic;	/* Q2E_REGION_EXTENSION only */
	uint32_t nowners;
	const struct q2e_owner *owners;	/* first owner names the region */
};

/* Where a problem was found and what it is.  L2 tables, refcount blocks
 * and bitmap data clusters that lie wholly past the end of the file are
 * not regions: their problems name them, and lookups read them as zeros. */
enum q2e_severity {
	Q2E_SEV_NOTE,		/* worth knowing, not wrong (dirty bit) */
	Q2E_SEV_WARNING,	/* QEMU would complain or refuse */
	Q2E_SEV_ERROR,		/* damaged: part of the image was not read */
};

/* What is wrong, so that no view has to read the message to know. */
enum q2e_problem_type {
	Q2E_PROBLEM_PAST_END,	/* runs past the end of the file, or of
				   the header cluster that holds it */
	Q2E_PROBLEM_MISALIGNED,	/* not on a cluster boundary */
	Q2E_PROBLEM_RESERVED_BITS, /* reserved bits or flags are set */
	Q2E_PROBLEM_UNSUPPORTED, /* a feature, method or type QEMU lacks */
	Q2E_PROBLEM_STATE,	/* marked corrupt or dirty; bitmaps ignored */
	Q2E_PROBLEM_LIMIT,	/* above one of QEMU's limits: not read */
	Q2E_PROBLEM_INVALID,	/* a field or entry that cannot be right */
	Q2E_PROBLEM_DUPLICATE,	/* a header extension given twice */
};

struct q2e_problem {
	enum q2e_severity severity;
	enum q2e_problem_type type;
	uint64_t offset;
	char *structure;	/* stable name: "l2_table_5", "qcow2_header" */
	char *message;
	/* A problem of a table an entry names (an L2 table, refcount block
	 * or bitmap data cluster): its kind and size, for it may be no
	 * region (one wholly past the end of the file is none). */
	bool table;
	enum q2e_region_kind table_kind;
	uint64_t table_size;
};

struct q2e_extension {
	uint32_t magic;
	uint64_t offset;	/* of the extension's 8-byte header */
	uint32_t length;
	uint8_t *data;		/* the bytes of the file, possibly fewer */
	uint32_t avail;
	uint32_t nth;		/* earlier extensions with the same magic */
};

struct q2e_snapshot {
	struct qcow2_snapshot entry;	/* pointers into the table: NULL */
	uint64_t offset;		/* of the entry in the image */
	char *id;
	char *name;
	uint8_t *extra;	/* entry.extra_data_size bytes, at most QEMU's 1,024 */
	/* Its L1 table is not kept (q2e_image_snapshot_l1_each() reads it):
	 * NL1 entries of it are in the file, the rest reads as zeros. */
	uint64_t nl1;
	bool l1_read;			/* false: the walk recorded why not */
	/* The first snapshot with the same table (offset and size), which
	 * the walk read for both; this one's own position if none.  The L2
	 * tables of a table shared so are owned by L1_FIRST only: this
	 * snapshot owns its L1 table, and no L2 table. */
	uint32_t l1_first;
};

struct q2e_bitmap {
	struct qcow2_bitmap_entry entry; /* pointers into the table: NULL */
	uint64_t offset;		 /* of the entry in the image */
	char *name;
	uint8_t *extra;
	uint64_t *table;	/* raw entries, entry.bitmap_table_size of
				   them, or NULL when the table is unreadable */
	uint64_t ntable;
	/* TABLE is an earlier bitmap's, whose table has the same offset and
	 * size: its data clusters are that bitmap's (walk_bitmaps.c). */
	bool table_shared;
};

/* The largest encryption area the model reads a LUKS header from. */
#define Q2E_MAX_CRYPTO_AREA (1ULL << 30)

struct q2e_image {
	struct q2e_source *src;
	char *path;			/* as given */
	uint64_t file_size;
	struct qcow2_header hdr;
	uint64_t cluster_size;
	struct qcow2_l2_layout l2;
	uint64_t l2_entries;		/* per L2 table */
	unsigned refcount_bits;

	struct q2e_extension *exts;
	size_t nexts;
	/* The end of the bytes the extensions' walk read from header_length:
	 * the end marker's too, which is no region's. */
	uint64_t extensions_end;
	struct qcow2_feature *features;	/* the image's feature name table */
	size_t nfeatures;

	char *backing_file;		/* NULL: none (see below) */
	char *backing_format;		/* NULL: extension absent */
	char *data_file;		/* external data file name, or NULL */
	bool has_bitmaps_ext;
	struct qcow2_bitmaps_ext bitmaps_ext;
	/* The extension is there but its autoclear bit is clear: a program
	 * without bitmap support wrote the image, and QEMU ignores the
	 * bitmaps (they are still read, as what the file holds). */
	bool bitmaps_ignored;
	bool has_crypto_ext;
	struct qcow2_crypto_ext crypto_ext;
	bool has_luks;		/* read: an area of at most Q2E_MAX_CRYPTO_AREA */
	struct qcow2_luks_header luks;

	uint64_t *l1;			/* active L1, raw entries */
	uint64_t nl1;			/* entries read (<= hdr.l1_size) */
	uint64_t *reftable;		/* raw refcount table entries */
	uint64_t nreftable;
	uint64_t snapshot_table_size;	/* bytes the entries take */
	struct q2e_snapshot *snapshots;
	size_t nsnapshots;		/* entries read */
	/* The entries after them that lie wholly past the end of the file:
	 * each reads as 40 bytes of zeros (an empty entry with no L1 table),
	 * as in QEMU.  Counted, not kept: a 72-byte file may claim 65,536. */
	uint32_t nsnapshots_past_end;
	/* The first entry whose extra_data_size is above QEMU's limit, read
	 * or not (QEMU refuses the table there); -1 if none. */
	int64_t snapshot_extra_over_limit;
	bool extensions_damaged;	/* one runs past the header cluster */
	bool snapshot_table_too_big;	/* past QEMU's 64 MiB: not all read */
	struct q2e_bitmap *bitmaps;
	size_t nbitmaps;

	struct q2e_region *regions;	/* sorted by offset, then kind */
	size_t nregions;
	size_t regions_bytes;		/* of their mapping (q2e_map_array()) */
	uint64_t max_region_size;	/* of any region: bounds a lookup */
	struct q2e_owner *owners;	/* storage the regions point into */

	struct q2e_problem *problems;	/* in the order found */
	size_t nproblems;
	struct q2e_problem_text *problem_text;	/* their strings' storage */

	struct q2e_l2_cache *refcount_cache;	/* q2e_image_refcount() */
};

int q2e_image_open(const char *path, struct q2e_image **out,
		   struct q2e_error *err);
/*
 * For the whole process, FN(IMG, ARG) is called with each image that
 * q2e_image_open() opens, once its model is made: the backing files a
 * chain opens too.  The command line says there what qemu-img says as it
 * opens an image.  NULL: nothing is called.
 */
typedef void q2e_open_observer(const struct q2e_image *img, void *arg);
void q2e_image_observe_opens(q2e_open_observer *fn, void *arg);
/* The same from LEN bytes at DATA (copied), named NAME: an image or a dump
 * held in memory, for unit tests and fuzzing. */
int q2e_image_open_memory(const char *name, const void *data, size_t len,
			  struct q2e_image **out, struct q2e_error *err);
void q2e_image_close(struct q2e_image *img);
/*
 * For the whole process, QEMU's locks on the files opened, as qemu-img
 * takes them: a file another process holds so that qemu-img would not
 * open it (a VM writing it) is refused with qemu-img's message, Q2E_EIO,
 * and the others are held while open so that a VM cannot start writing
 * them meanwhile.  FORCE_SHARE, qemu-img's -U, keeps nothing from others
 * (a file a VM is writing is read); READS_DATA, false for a look at the
 * metadata alone (info, as qemu-img info), wants no consistent reads.
 * By default neither forced nor metadata alone.
 */
void q2e_image_locking(bool force_share, bool reads_data);

/*
 * What PATH holds, without building a model: an image or a dump, and for a
 * dump whether it was written with --no-data (it then has no bytes to read).
 */
int q2e_input_describe(const char *path, enum q2e_source_kind *kind,
		       bool *no_data, struct q2e_error *err);

/* For a dump, what its note records about its image; NULL for an image. */
const struct q2e_dump_meta *q2e_image_dump_meta(const struct q2e_image *img);
/* In a dump that lacks bytes it was written with (a section removed), the
 * first of them at or after OFF (OFF itself inside them); UINT64_MAX if
 * none, and for an image. */
uint64_t q2e_image_missing_from(const struct q2e_image *img, uint64_t off);
/* The backing file QEMU opens: none where the name is empty or starts
 * with a NUL byte (backing_file_size 0), though the header points at one
 * (QEMU keeps the name as a C string). */
const char *q2e_image_backing(const struct q2e_image *img);
/* The external data file QEMU opens: its name, if the incompatible bit
 * says there is one and the extension names it (QEMU ignores the name
 * without the bit); else NULL. */
const char *q2e_image_data_file(const struct q2e_image *img);
/* Its format, from the backing format extension: NULL where the
 * extension is absent or its name empty, and QEMU probes the file. */
const char *q2e_image_backing_format(const struct q2e_image *img);
/* The virtual size as QEMU takes it: whole sectors of 512 bytes
 * (total_sectors), the header's size rounded down. */
uint64_t q2e_image_virtual_size(const struct q2e_image *img);

/* Bytes the file read occupies on disk (st_blocks * 512; for memory, its
 * length); 0 if unknown.  What a view may spend in proportion to. */
uint64_t q2e_image_allocated(const struct q2e_image *img);

/*
 * Whether PATH names a file the model reads (the same device and inode):
 * the image or dump itself, its backing files, its external data file.
 */
bool q2e_image_reads_file(struct q2e_image *img, const char *path);

/* Name of a feature bit: the image's own table first, then the spec's. */
const char *q2e_image_feature_name(const struct q2e_image *img,
				   enum qcow2_feature_type type, unsigned bit);

/* Reads a region's bytes (its avail bytes; the rest of BUF is zeroed). */
int q2e_image_read_region(struct q2e_image *img, const struct q2e_region *r,
			  uint8_t *buf, struct q2e_error *err);

/*
 * Reads the N regions from R on, which lie end to end (each starts where
 * the one before ends), with one read: region R + k's bytes land at
 * BUF + (R[k].offset - R->offset), the part past the file zeroed.
 */
int q2e_image_read_regions(struct q2e_image *img, const struct q2e_region *r,
			   size_t n, uint8_t *buf, struct q2e_error *err);

/* Reads LEN bytes at POS inside region R (within its avail bytes). */
int q2e_image_read_region_part(struct q2e_image *img,
			       const struct q2e_region *r, uint64_t pos,
			       uint8_t *buf, size_t len, struct q2e_error *err);

/*
 * Reads LEN bytes of the image at OFF, bytes that regions' avail bytes
 * cover: a dump reads the union of its regions a range at a time, once,
 * however the regions overlap or adjoin.  An error if the file ends first.
 */
int q2e_image_read_bytes(struct q2e_image *img, uint64_t off, uint8_t *buf,
			 size_t len, struct q2e_error *err);

/*
 * q2e_image_read_bytes() of bytes the page cache holds, without waiting
 * for the device and without the read plan's advice, so that a second
 * thread may read this way while another reads as usual: false where
 * any byte is missing (read it as usual then), the file ends first, or
 * the image is not a file.
 */
bool q2e_image_read_cached(struct q2e_image *img, uint64_t off, uint8_t *buf,
			   size_t len);

/*
 * Many q2e_image_read_cached() at once, with few system calls: a batch is
 * one thread's (NULL: out of memory; q2e_image_read_cached_many() then
 * reads one at a time).  Each R[i].ok tells whether R[i] was read.
 */
struct q2e_image_batch;
struct q2e_image_batch *q2e_image_batch_open(struct q2e_image *img);
void q2e_image_read_cached_many(struct q2e_image *img,
				struct q2e_image_batch *b,
				struct q2e_cached_read *r, size_t n);
void q2e_image_batch_close(struct q2e_image_batch *b);

/*
 * A thread's next small reads made ahead, from the page cache, many at a
 * time (src/model/read_ahead.c): q2e_read_ahead_fill() asks the cache for
 * the ranges NEXT names, 64 at most and 64 KiB in all, stopping at the
 * first longer than Q2E_READ_AHEAD_MAX; q2e_read_ahead_find() then gives
 * each range's bytes.  NULL from q2e_read_ahead_new(): no memory (read as
 * usual then).
 */
#define Q2E_READ_AHEAD_MAX (8U << 10)
struct q2e_read_ahead;
struct q2e_read_ahead *q2e_read_ahead_new(struct q2e_image *img);
void q2e_read_ahead_free(struct q2e_read_ahead *ra);
/* What a q2e_ahead_fn says of the next range: read it ahead (in *E),
 * pass over it (a range not worth reading ahead), or no more. */
enum { Q2E_AHEAD_READ, Q2E_AHEAD_PASS, Q2E_AHEAD_END };
typedef int (*q2e_ahead_fn)(void *ctx, struct q2e_extent *e);
/* Forgets the reads made before.  False where none was made or the cache
 * looks short: the first read, or most of them, missed it. */
bool q2e_read_ahead_fill(struct q2e_read_ahead *ra, q2e_ahead_fn next,
			 void *ctx);
/* [OFF, OFF + LEN) among the reads made ahead, looked for from the last
 * found on: 1 with *BYTES set (valid until the next fill), -1 where the
 * cache lacked it, 0 where it was not read ahead. */
int q2e_read_ahead_find(struct q2e_read_ahead *ra, uint64_t off, size_t len,
			const uint8_t **bytes);
/*
 * Find, else fill from NEXT (whose first range should be OFF's) and find:
 * the bytes of [OFF, OFF + LEN), or NULL for the caller to read them as
 * usual (not read ahead, missing from the cache, RA NULL).  After a fill
 * that found the cache short, the next 256 ranges not found are left to
 * the caller without a fill.
 */
const uint8_t *q2e_read_ahead_take(struct q2e_read_ahead *ra, uint64_t off,
				   size_t len, q2e_ahead_fn next, void *ctx);

/*
 * Whether the file holds none of the LEN bytes at OFF (a hole, past its
 * end, or in a dump no section), which then read as zeros: asked of the
 * file system only for LEN of Q2E_HOLE_ASK_MIN or more (a table of 1 MiB
 * clusters or larger, whose read costs a hundred times the answer), else
 * false.  65,537 tables of 2 MiB in a hole were 128 GiB of zeros read.
 */
#define Q2E_HOLE_ASK_MIN (1U << 20)
bool q2e_image_holds_none(struct q2e_image *img, uint64_t off, uint64_t len);

/* The data extents of the image file, in order; free() *OUT. */
int q2e_image_file_extents(struct q2e_image *img, struct q2e_extent **out,
			   size_t *n, struct q2e_error *err);

/*
 * Entries of a table, a chunk at a time: N raw entries in host order from
 * index FIRST.  An entry cut by the end of the file keeps its bytes; a
 * chunk that lies in a hole of the file (all zeros) is not passed at all.
 * A negative return stops the reading and is returned.
 */
typedef int (*q2e_entries_fn)(void *arg, uint64_t first, const uint64_t *e,
			      uint64_t n);
/* Reads snapshot N's L1 table, one chunk at a time, for FN: a table
 * costs a chunk of memory, whatever its size. */
int q2e_image_snapshot_l1_each(struct q2e_image *img, size_t n,
			       q2e_entries_fn fn, void *arg,
			       struct q2e_error *err);
/* The same, whole: *L1 holds *COUNT entries (snapshots[n].nl1); free() it. */
int q2e_image_read_snapshot_l1(struct q2e_image *img, size_t n,
			       uint64_t **l1, uint64_t *count,
			       struct q2e_error *err);

/*
 * Entries [FIRST, FIRST + N) of the table of 8-byte big-endian entries at
 * OFF, in host order, into OUT; N at most Q2E_TABLE_CHUNK.  Returns how
 * many of them from the first the file holds (the rest of OUT is left as
 * it was: they read as 0, past the end of the file, in a hole or in a
 * dump's bytes no section holds, and are not read), or an error.  For a
 * view that walks two tables side by side.
 */
#define Q2E_TABLE_CHUNK 8192
int64_t q2e_image_table_chunk(struct q2e_image *img, uint64_t off,
			      uint64_t first, uint64_t n, uint64_t *out,
			      struct q2e_error *err);

/* The L2 entry that maps guest offset OFF through the active L1. */
struct q2e_l2_cache;
struct q2e_l2_cache *q2e_l2_cache_new(struct q2e_image *img);
void q2e_l2_cache_free(struct q2e_l2_cache *c);
int q2e_image_l2_lookup(struct q2e_l2_cache *c, uint64_t off,
			struct qcow2_l2_entry *e, struct q2e_error *err);
/*
 * After a q2e_image_l2_lookup() of OFF: how many of the clusters that
 * follow OFF's in its L2 table, up to MAX, have entries that decode as
 * OFF's does, the host offset moved on by one cluster each (unchanged if
 * there is none).  0 where it cannot tell cheaply (compressed clusters,
 * extended L2 entries whose subclusters differ in type), for the caller
 * to look one at a time.
 */
uint64_t q2e_image_l2_run(struct q2e_l2_cache *c, uint64_t off,
			  uint64_t max);
/*
 * After a q2e_image_l2_lookup() of OFF, where OFF's cluster is compressed:
 * how many of the clusters that follow in its L2 table, up to MAX, are
 * compressed too (block status, which gives them no host offset, answers
 * them as one run).  0 where OFF's is not, or the table is not at hand.
 */
uint64_t q2e_image_l2_compressed_run(struct q2e_l2_cache *c, uint64_t off,
				     uint64_t max);

/* The stored refcount of host cluster CLUSTER (0 where no block exists). */
int q2e_image_refcount(struct q2e_image *img, uint64_t cluster,
		       uint64_t *refcount, struct q2e_error *err);
/* How many of the N host clusters from CLUSTER, all in one refcount
 * block, have a stored refcount other than 0.  Made for a count over the
 * blocks in refcount table order: the blocks after this one are read
 * ahead with it from the page cache. */
int q2e_image_refcounts_nonzero(struct q2e_image *img, uint64_t cluster,
				uint64_t n, uint64_t *count,
				struct q2e_error *err);

/*
 * Why QEMU 7.2 refuses to open IMG (qcow2_do_open() and the extensions it
 * reads), in the order it looks; NULL if it opens it.  qemu_rules.c.
 */
const char *q2e_qemu_open_refusal(const struct q2e_image *img);
/* Why QEMU's LUKS driver cannot read IMG's LUKS header, which it reads
 * without a key too; NULL if it can or IMG is not LUKS-encrypted.
 * qemu_luks.c. */
const char *q2e_qemu_luks_refusal(const struct q2e_image *img);
/* Why qemu-img check gives up on an image QEMU opens (its snapshot table,
 * or a bitmap table the check reads); NULL if it does not. */
const char *q2e_qemu_check_refusal(const struct q2e_image *img);
/* Why a plain open (qemu-img info, map) refuses IMG: the first of the
 * above, or the snapshot table check's open skips (not the bitmap tables
 * only the check reads); NULL if it opens it. */
const char *q2e_qemu_plain_open_refusal(const struct q2e_image *img);

/* "note", "warning" or "error". */
const char *q2e_severity_name(enum q2e_severity s);

/* Region kinds and names (names.c): stable across versions of an image. */
const char *q2e_region_kind_name(enum q2e_region_kind kind);
/* Symbol of owner K of R: "l2_table_5", "snapshot_0_l2_table_5". */
int q2e_region_symbol(const struct q2e_image *img, const struct q2e_region *r,
		      uint32_t k, char *buf, size_t size);
/* Section of R: ".qcow2.l2.5", named by its first owner. */
int q2e_region_section(const struct q2e_image *img,
		       const struct q2e_region *r, char *buf, size_t size);
/* Symbol of the structure of KIND owned by O, whether or not it became a
 * region (a table past the end of the file is named all the same). */
int q2e_structure_symbol(const struct q2e_image *img,
			 enum q2e_region_kind kind, uint32_t ext_magic,
			 const struct q2e_owner *o, char *buf, size_t size);
/* Symbol of entry N of the snapshot table or the bitmap directory (TABLE):
 * "snapshot_<n>", "bitmap_<n>". */
int q2e_entry_symbol(enum q2e_region_kind table, uint32_t n, char *buf,
		     size_t size);
/* The region that covers image offset OFF, or NULL. */
const struct q2e_region *q2e_image_region_at(const struct q2e_image *img,
					     uint64_t off);

/*
 * Backing chains and guest block status, as QEMU's bdrv_block_status()
 * reports them to `qemu-img map`: chain.c.
 */
enum q2e_layer_format {
	Q2E_LAYER_QCOW2,
	Q2E_LAYER_RAW,
	Q2E_LAYER_OTHER,	/* q2e_chain_open_info(): not read, the last */
};

struct q2e_layer {
	enum q2e_layer_format format;
	char *path;			/* as resolved */
	struct q2e_image *img;		/* qcow2 */
	struct q2e_source *raw;		/* raw */
	struct q2e_source *data_src;	/* qcow2 with a raw external data file */
	char *data_path;		/* the file host offsets point into */
	const char *other_format;	/* Q2E_LAYER_OTHER: its format */
	/* The names map shows for bytes of the image file and of the file
	 * host offsets point into: for a dump, the image it was made from
	 * (its note), since the dump holds no data. */
	const char *image_shown, *data_shown;
	uint64_t size;			/* guest size */
	uint64_t file_size;		/* raw: the file's */
	bool metadata_preallocation;
	struct q2e_l2_cache *cache;
	/* The file, where it could be told (st_dev and st_ino), so that a
	 * chain that comes back to one is found (chain.c). */
	bool known_file;
	uint64_t file_dev, file_ino;
	/* The last extent the layer's file reported (chain.c). */
	uint64_t known_off, known_len;
	bool known_data;
};

struct q2e_chain {
	struct q2e_layer *layers;	/* [0] is the image itself */
	size_t nlayers;
	/* Which backing files fail it: those QEMU would not open (or, for
	 * a check, those a check's open refuses too), or none. */
	enum {
		Q2E_CHAIN_AS_QEMU, Q2E_CHAIN_AS_CHECK, Q2E_CHAIN_FILES,
		Q2E_CHAIN_INFO
	} mode;
};

/*
 * Whether QEMU 7.2 takes IMG for one with preallocated metadata (far more
 * clusters in use than the file occupies on disk), which makes block
 * status look into the file.  For a dump, what its note recorded.
 */
int q2e_image_metadata_preallocation(struct q2e_image *img, bool *out,
				     struct q2e_error *err);

/* Opens PATH and its backing files; IMG may be a model already open. */
int q2e_chain_open(struct q2e_image *img, struct q2e_chain **out,
		   struct q2e_error *err);
/* Likewise, as qemu-img check opens it: a backing file without a
 * refcount table or whose snapshot table QEMU would refuse opens. */
int q2e_chain_open_for_check(struct q2e_image *img, struct q2e_chain **out,
			     struct q2e_error *err);
/* Likewise, but a qcow2 backing file QEMU would refuse is opened too: the
 * files the chain names, which an output must not replace. */
int q2e_chain_open_files(struct q2e_image *img, struct q2e_chain **out,
			 struct q2e_error *err);
/* Likewise, as qemu-img info --backing-chain opens it (no I/O): no data
 * file is opened, a qcow2 file QEMU would refuse is opened, and a backing
 * file of a format not read (vmdk, LUKS) ends the chain as a layer of
 * Q2E_LAYER_OTHER. */
int q2e_chain_open_info(struct q2e_image *img, struct q2e_chain **out,
			struct q2e_error *err);
void q2e_chain_close(struct q2e_chain *chain);

struct q2e_block_status {
	uint64_t start;
	uint64_t length;
	unsigned depth;
	bool present;
	bool zero;
	bool data;
	bool has_offset;
	uint64_t offset;
	const char *file;		/* where offset points, if has_offset */
};

/*
 * The guest offset from which the status is the same up to the end: past
 * the top image's L1 table and the end of every backing file.
 */
uint64_t q2e_chain_uniform_from(const struct q2e_chain *chain);

/* Status of guest bytes from OFF in the chain, at most BYTES of them. */
int q2e_chain_block_status(struct q2e_chain *chain, uint64_t off,
			   uint64_t bytes, struct q2e_block_status *st,
			   struct q2e_error *err);

#endif

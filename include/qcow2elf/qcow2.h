/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * On-disk QCOW2 structures and their decoders.
 *
 * Every decoder here is a pure function from bytes to a struct: it does no
 * I/O, allocates nothing and never reads past the length it is given.  A
 * decoder that fails returns a negative Q2E_E* code and sets *why to a
 * static phrase ("bad magic", "entry runs past the table"); the caller adds
 * the file name and offset.  The layout of each structure is in a comment in
 * the decoder's file:
 *   header.c    header, feature bits, header extensions, feature name table
 *   table.c     L1, L2 (standard, extended, compressed), refcount entries
 *   snapshot.c  snapshot table entries
 *   bitmap.c    bitmap directory entries and bitmap table entries
 *   luks.c      the LUKS1 header in the encryption area
 */
#ifndef QCOW2ELF_QCOW2_H
#define QCOW2ELF_QCOW2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QCOW2_MAGIC 0x514649fbU
#define QCOW2_V2_HEADER_LENGTH 72U
#define QCOW2_V3_HEADER_LENGTH 104U

/* Limits QEMU enforces when opening an image; used as sanity bounds. */
#define QCOW2_MIN_CLUSTER_BITS 9U
#define QCOW2_MAX_CLUSTER_BITS 21U
#define QCOW2_MAX_L1_BYTES (32ULL << 20)
#define QCOW2_MAX_REFTABLE_BYTES (8ULL << 20)
#define QCOW2_MAX_SNAPSHOTS 65536U
#define QCOW2_MAX_SNAPSHOT_TABLE_BYTES (64ULL << 20)
#define QCOW2_MAX_SNAPSHOT_EXTRA 1024U
#define QCOW2_MAX_BITMAPS 65535U
#define QCOW2_MAX_BITMAP_NAME 1023U
#define QCOW2_MAX_BACKING_NAME 1023U
#define QCOW2_MAX_HOST_OFFSET (1ULL << 56)

enum qcow2_crypt_method {
	QCOW2_CRYPT_NONE = 0,
	QCOW2_CRYPT_AES = 1,
	QCOW2_CRYPT_LUKS = 2,
};

enum qcow2_feature_type {
	QCOW2_FEAT_INCOMPATIBLE = 0,
	QCOW2_FEAT_COMPATIBLE = 1,
	QCOW2_FEAT_AUTOCLEAR = 2,
};

#define QCOW2_INCOMPAT_DIRTY (1ULL << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ULL << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ULL << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ULL << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ULL << 4)
#define QCOW2_INCOMPAT_KNOWN (QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT | \
			      QCOW2_INCOMPAT_DATA_FILE | \
			      QCOW2_INCOMPAT_COMPRESSION | QCOW2_INCOMPAT_EXTL2)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ULL << 0)
#define QCOW2_AUTOCLEAR_BITMAPS (1ULL << 0)
#define QCOW2_AUTOCLEAR_DATA_FILE_RAW (1ULL << 1)

enum qcow2_compression_type {
	QCOW2_COMPRESSION_ZLIB = 0,
	QCOW2_COMPRESSION_ZSTD = 1,
};

struct qcow2_header {
	uint32_t magic;
	uint32_t version;
	uint64_t backing_file_offset;
	uint32_t backing_file_size;
	uint32_t cluster_bits;
	uint64_t size;
	uint32_t crypt_method;
	uint32_t l1_size;
	uint64_t l1_table_offset;
	uint64_t refcount_table_offset;
	uint32_t refcount_table_clusters;
	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	/* Version 3; for version 2 these hold the values v2 implies. */
	uint64_t incompatible_features;
	uint64_t compatible_features;
	uint64_t autoclear_features;
	uint32_t refcount_order;
	uint32_t header_length;
	bool has_compression_type;	/* header_length > 104 */
	uint8_t compression_type;
};

int qcow2_header_decode(const uint8_t *buf, size_t len,
			struct qcow2_header *h, const char **why);
/* The spec's name of a feature bit QEMU knows, or NULL. */
const char *qcow2_feature_name(enum qcow2_feature_type type, unsigned bit);
const char *qcow2_feature_type_name(enum qcow2_feature_type type);
/* Bits of each type this version of the spec defines. */
uint64_t qcow2_known_features(enum qcow2_feature_type type);

/* Header extensions: u32 magic, u32 length, data padded to 8 bytes. */
#define QCOW2_EXT_END 0x00000000U
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acaU
#define QCOW2_EXT_FEATURE_TABLE 0x6803f857U
#define QCOW2_EXT_BITMAPS 0x23852875U
#define QCOW2_EXT_CRYPTO 0x0537be77U
#define QCOW2_EXT_DATA_FILE 0x44415441U

struct qcow2_ext {
	uint32_t magic;
	uint32_t length;	/* of the payload, before padding */
	const uint8_t *data;	/* points into the decoder's input */
	size_t size;		/* 8 + length rounded up to 8 */
};

/*
 * Decodes the extension at BUF.  Returns 0 and fills EXT, 1 at the end
 * marker, or a negative code when the extension does not fit in LEN.
 */
int qcow2_ext_decode(const uint8_t *buf, size_t len, struct qcow2_ext *ext,
		     const char **why);
/* The extension's short name: "backing-format", ..., or NULL if unknown. */
const char *qcow2_ext_name(uint32_t magic);

#define QCOW2_FEATURE_ENTRY_SIZE 48U
#define QCOW2_FEATURE_NAME_LEN 46U
struct qcow2_feature {
	uint8_t type;
	uint8_t bit;
	char name[QCOW2_FEATURE_NAME_LEN + 1];
};
int qcow2_feature_decode(const uint8_t *buf, size_t len,
			 struct qcow2_feature *f, const char **why);

struct qcow2_bitmaps_ext {
	uint32_t nb_bitmaps;
	uint32_t reserved;
	uint64_t bitmap_directory_size;
	uint64_t bitmap_directory_offset;
};
int qcow2_bitmaps_ext_decode(const uint8_t *buf, size_t len,
			     struct qcow2_bitmaps_ext *e, const char **why);

struct qcow2_crypto_ext {
	uint64_t offset;
	uint64_t length;
};
int qcow2_crypto_ext_decode(const uint8_t *buf, size_t len,
			    struct qcow2_crypto_ext *e, const char **why);

/* L1 and L2 tables, refcounts: table.c. */
#define QCOW2_OFLAG_COPIED (1ULL << 63)
#define QCOW2_OFLAG_COMPRESSED (1ULL << 62)
#define QCOW2_OFLAG_ZERO (1ULL << 0)
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ULL
#define QCOW2_L1_RESERVED_MASK 0x7f000000000001ffULL
#define QCOW2_L2_RESERVED_MASK 0x3f000000000001feULL
#define QCOW2_REFTABLE_RESERVED_MASK 0x1ffULL
#define QCOW2_SUBCLUSTERS 32U

struct qcow2_l1_entry {
	uint64_t raw;
	uint64_t l2_offset;	/* 0: no L2 table */
	bool copied;
	uint64_t reserved;	/* reserved bits that are set */
};
void qcow2_l1_entry_decode(uint64_t raw, struct qcow2_l1_entry *e);

enum qcow2_cluster_type {
	QCOW2_CLUSTER_UNALLOCATED,
	QCOW2_CLUSTER_NORMAL,
	QCOW2_CLUSTER_ZERO_PLAIN,
	QCOW2_CLUSTER_ZERO_ALLOC,
	QCOW2_CLUSTER_COMPRESSED,
};

/* The state of one subcluster, as QEMU's qcow2_get_subcluster_type(). */
enum qcow2_subcluster_type {
	QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN,
	QCOW2_SUBCLUSTER_UNALLOCATED_ALLOC,
	QCOW2_SUBCLUSTER_NORMAL,
	QCOW2_SUBCLUSTER_ZERO_PLAIN,
	QCOW2_SUBCLUSTER_ZERO_ALLOC,
	QCOW2_SUBCLUSTER_COMPRESSED,
	QCOW2_SUBCLUSTER_INVALID,
};

struct qcow2_l2_layout {
	unsigned cluster_bits;
	bool extended;		/* 128-bit entries with a subcluster bitmap */
	bool has_data_file;	/* offset 0 + COPIED maps data file offset 0 */
};

struct qcow2_l2_entry {
	uint64_t raw;
	uint64_t bitmap;	/* extended L2 only */
	enum qcow2_cluster_type type;
	bool copied;
	uint64_t host_offset;	/* cluster offset, or compressed byte offset */
	uint64_t compressed_size; /* bytes, compressed clusters only */
	uint64_t reserved;	/* reserved bits that are set */
};
void qcow2_l2_entry_decode(uint64_t raw, uint64_t bitmap,
			   const struct qcow2_l2_layout *layout,
			   struct qcow2_l2_entry *e);
enum qcow2_subcluster_type
qcow2_l2_subcluster_type(const struct qcow2_l2_entry *e,
			 const struct qcow2_l2_layout *layout, unsigned sc);
/* Bytes of one L2 entry: 8, or 16 with extended L2. */
static inline unsigned qcow2_l2_entry_size(const struct qcow2_l2_layout *l)
{
	return l->extended ? 16 : 8;
}

/* Refcount block entry INDEX of a block with 2^ORDER-bit entries. */
uint64_t qcow2_refcount_get(const uint8_t *block, size_t len,
			    unsigned refcount_order, uint64_t index);

/* Snapshot table entries: snapshot.c. */
#define QCOW2_SNAPSHOT_FIXED_SIZE 40U
struct qcow2_snapshot {
	uint64_t l1_table_offset;
	uint32_t l1_size;
	uint16_t id_str_size;
	uint16_t name_size;
	uint32_t date_sec;
	uint32_t date_nsec;
	uint64_t vm_clock_nsec;
	uint32_t vm_state_size;
	uint32_t extra_data_size;
	/* Extra data, each present when extra_data_size covers it. */
	bool has_vm_state_size_large, has_disk_size, has_icount;
	uint64_t vm_state_size_large;
	uint64_t disk_size;
	uint64_t icount;
	const uint8_t *extra;	/* all of it, points into the input */
	const char *id_str;	/* not NUL-terminated, points into the input */
	const char *name;	/* not NUL-terminated, points into the input */
	size_t entry_size;	/* with padding to 8 bytes */
};
int qcow2_snapshot_decode(const uint8_t *buf, size_t len,
			  struct qcow2_snapshot *s, const char **why);

/* Bitmap directory and tables: bitmap.c. */
#define QCOW2_BITMAP_ENTRY_FIXED_SIZE 24U
#define QCOW2_BITMAP_IN_USE (1U << 0)
#define QCOW2_BITMAP_AUTO (1U << 1)
#define QCOW2_BITMAP_EXTRA_DATA_COMPATIBLE (1U << 2)
#define QCOW2_BITMAP_TYPE_DIRTY 1U
#define QCOW2_BITMAP_TABLE_RESERVED_MASK 0xff000000000001feULL

struct qcow2_bitmap_entry {
	uint64_t bitmap_table_offset;
	uint32_t bitmap_table_size;
	uint32_t flags;
	uint8_t type;
	uint8_t granularity_bits;
	uint16_t name_size;
	uint32_t extra_data_size;
	const uint8_t *extra;	/* points into the input */
	const char *name;	/* not NUL-terminated, points into the input */
	size_t entry_size;	/* with padding to 8 bytes */
};
int qcow2_bitmap_entry_decode(const uint8_t *buf, size_t len,
			      struct qcow2_bitmap_entry *b, const char **why);

enum qcow2_bitmap_cluster {
	QCOW2_BITMAP_ALL_ZEROS,
	QCOW2_BITMAP_ALL_ONES,
	QCOW2_BITMAP_SERIALIZED,
};
struct qcow2_bitmap_table_entry {
	uint64_t raw;
	enum qcow2_bitmap_cluster kind;
	uint64_t offset;	/* of the serialized data cluster */
	uint64_t reserved;
};
void qcow2_bitmap_table_entry_decode(uint64_t raw,
				     struct qcow2_bitmap_table_entry *e);
/* Bytes of bitmap data: ceil(virtual size / granularity / 8). */
uint64_t qcow2_bitmap_data_bytes(uint64_t virtual_size, unsigned gran_bits);

/* The LUKS1 header at the start of the encryption area: luks.c. */
#define QCOW2_LUKS_HEADER_SIZE 592U
#define QCOW2_LUKS_SLOTS 8U
struct qcow2_luks_slot {
	uint32_t active;	/* 0x00AC71F3 enabled, 0x0000DEAD disabled */
	uint32_t iterations;
	uint32_t key_offset;	/* sectors */
	uint32_t stripes;
};
struct qcow2_luks_header {
	uint16_t version;
	char cipher_name[33];
	char cipher_mode[33];
	char hash_spec[33];
	uint32_t payload_offset;	/* sectors */
	uint32_t key_bytes;
	uint32_t mk_digest_iterations;
	char uuid[41];
	struct qcow2_luks_slot slots[QCOW2_LUKS_SLOTS];
};
#define QCOW2_LUKS_SLOT_ENABLED 0x00AC71F3U
int qcow2_luks_header_decode(const uint8_t *buf, size_t len,
			     struct qcow2_luks_header *h, const char **why);

/*
 * Which format QEMU takes a file for from its first bytes BUF[0..LEN)
 * (QEMU reads 2,048, zeros past the end of the file) and its name: probe.c.
 * qcow2_probe_score() is FMT's driver's score (0: not such a file), -1
 * for a format without a probe here; qcow2_probe_format() is the format
 * of the highest score, "raw" if none.
 */
#define QCOW2_PROBE_BYTES 2048
int qcow2_probe_score(const char *fmt, const uint8_t *buf, size_t len,
		      const char *filename);
const char *qcow2_probe_format(const uint8_t *buf, size_t len,
			       const char *filename);

/* Big-endian loads, shared by the decoders and the model. */
static inline uint16_t qcow2_be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t qcow2_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t qcow2_be64(const uint8_t *p)
{
	return ((uint64_t)qcow2_be32(p) << 32) | qcow2_be32(p + 4);
}

#endif

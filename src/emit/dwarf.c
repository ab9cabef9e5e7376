/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * DWARF for a dump, made with the libdwarf producer: a type for every kind
 * of structure and a variable for every symbol, so that gdb prints QCOW2
 * structures by name straight from the section bytes.
 *
 * The sections keep the on-disk bytes, so every multi-byte field uses a
 * big-endian base type (DW_AT_endianity DW_END_big).  L1, L2 and bitmap
 * table entries are unions of the raw value and bit-field views, so that
 * `p l2_table_0[3]` shows copied, compressed, zero and the host offset
 * without arithmetic.  Bit offsets count from the most significant bit, as
 * DW_AT_data_bit_offset does for big-endian storage.
 *
 * Everything is created in a fixed order, so the same image gives the same
 * bytes.  libdwarf 20210528 quirks (see shared notes): DW_AT_endianity and
 * DW_AT_data_bit_offset go through dwarf_add_AT_any_value_uleb_a, and
 * dwarf_errmsg() must not be called on producer errors.
 */
#include <dwarf.h>
#include <libdwarf.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/array.h"
#include "qcow2elf/hashmap.h"
#include "dwarf_lib.h"
#include "dwarf_reuse.h"
#include "dwarf_vars.h"
#include "elf_symbols.h"

#define PRODUCER "qcow2elf " Q2E_VERSION

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define DW_TARGET_ORDER DW_DLC_TARGET_BIGENDIAN
#else
#define DW_TARGET_ORDER DW_DLC_TARGET_LITTLEENDIAN
#endif

#if defined(__x86_64__)
#define DW_ISA "x86_64"
#elif defined(__aarch64__)
#define DW_ISA "arm64"
#elif defined(__powerpc64__)
#define DW_ISA "ppc64"
#elif defined(__s390x__)
#define DW_ISA "s390"
#elif defined(__riscv)
#define DW_ISA "riscv"
#else
#define DW_ISA "x86_64"
#endif

/* The fields that print by name rather than as numbers. */
enum named_type {
	ENUM_NONE,		/* a plain number */
	ENUM_INCOMPATIBLE,
	ENUM_COMPATIBLE,
	ENUM_AUTOCLEAR,
	ENUM_CRYPT,
	ENUM_COMPRESSION,
	ENUM_FEATURE_TYPE,
	ENUM_BITMAP_FLAGS,
	ENUM_BITMAP_TYPE,
	ENUM_COUNT
};

/* What a type in the cache is of (its key's first word). */
enum { SHAPE_ARRAY = 1, SHAPE_SNAPSHOT, SHAPE_BITMAP };

struct dw {
	const struct q2e_dwarf_lib *dl;
	Dwarf_P_Debug dbg;
	Dwarf_P_Die cu;
	struct q2e_error *err;
	bool failed;
	const struct q2e_image *img;

	Dwarf_P_Die u8, chr, be16, be32, be64;
	Dwarf_P_Die refcount8;	/* 8-bit refcounts: see refblock_elem() */
	Dwarf_P_Die enums[ENUM_COUNT];	/* flags and codes, by name */
	Dwarf_P_Die l1_entry, l2_entry, l2_ext_entry, bt_entry;
	Dwarf_P_Die feature, luks_slot, luks_header;
	struct q2e_map types;	/* arrays and entries, by shape */

	size_t ntypes;		/* distinct types of symbols, marked 1..n */
	struct q2e_dwarf *out;
};

static void fail(struct dw *w, const char *what, Dwarf_Error derr)
{
	if (!w->failed)
		q2e_error_set(w->err, Q2E_EOUTPUT,
			      "cannot build the DWARF description: %s failed (libdwarf error %llu)",
			      what,
			      (unsigned long long)w->dl->dwarf_errno(derr));
	w->failed = true;
}

static Dwarf_P_Die new_die(struct dw *w, Dwarf_Tag tag, Dwarf_P_Die parent)
{
	Dwarf_P_Die die = NULL;
	Dwarf_Error derr = NULL;

	if (w->failed)
		return NULL;
	if (w->dl->dwarf_new_die_a(w->dbg, tag, parent, NULL, NULL, NULL,
				   &die, &derr) != DW_DLV_OK) {
		fail(w, "dwarf_new_die_a", derr);
		return NULL;
	}
	return die;
}

static void at_name(struct dw *w, Dwarf_P_Die die, const char *name)
{
	Dwarf_P_Attribute a;
	Dwarf_Error derr = NULL;

	if (!w->failed &&
	    w->dl->dwarf_add_AT_name_a(die, (char *)name, &a, &derr) !=
		    DW_DLV_OK)
		fail(w, "dwarf_add_AT_name_a", derr);
}

static void at_udata(struct dw *w, Dwarf_P_Die die, Dwarf_Half attr,
		     Dwarf_Unsigned v)
{
	Dwarf_P_Attribute a;
	Dwarf_Error derr = NULL;

	if (!w->failed &&
	    w->dl->dwarf_add_AT_unsigned_const_a(w->dbg, die, attr, v, &a,
						 &derr) != DW_DLV_OK)
		fail(w, "dwarf_add_AT_unsigned_const_a", derr);
}

/* For the attributes dwarf_add_AT_unsigned_const_a refuses. */
static void at_uleb(struct dw *w, Dwarf_P_Die die, Dwarf_Half attr,
		    Dwarf_Unsigned v)
{
	Dwarf_P_Attribute a;
	Dwarf_Error derr = NULL;

	if (!w->failed &&
	    w->dl->dwarf_add_AT_any_value_uleb_a(die, attr, v, &a, &derr) !=
		    DW_DLV_OK)
		fail(w, "dwarf_add_AT_any_value_uleb_a", derr);
}

static void at_ref(struct dw *w, Dwarf_P_Die die, Dwarf_Half attr,
		   Dwarf_P_Die target)
{
	Dwarf_P_Attribute a;
	Dwarf_Error derr = NULL;

	if (!w->failed &&
	    w->dl->dwarf_add_AT_reference_c(w->dbg, die, attr, target, &a,
					    &derr) != DW_DLV_OK)
		fail(w, "dwarf_add_AT_reference_c", derr);
}

static Dwarf_P_Die base_type(struct dw *w, const char *name, unsigned enc,
			     unsigned size)
{
	Dwarf_P_Die d = new_die(w, DW_TAG_base_type, w->cu);

	at_name(w, d, name);
	at_udata(w, d, DW_AT_encoding, enc);
	at_udata(w, d, DW_AT_byte_size, size);
	if (size > 1)
		at_uleb(w, d, DW_AT_endianity, DW_END_big);
	return d;
}

/* Keeps TYPE as the type of shape KEY. */
static Dwarf_P_Die keep_type(struct dw *w, const uint64_t key[4],
			     Dwarf_P_Die type)
{
	if (type && q2e_map_put(&w->types, key, type) < 0) {
		w->failed = true;
		q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
		return NULL;
	}
	return type;
}

static Dwarf_P_Die array_of(struct dw *w, Dwarf_P_Die elem, uint64_t count)
{
	const uint64_t key[4] = { SHAPE_ARRAY, (uint64_t)(uintptr_t)elem,
				  count, 0 };
	Dwarf_P_Die d = q2e_map_get(&w->types, key), sub;

	if (d || w->failed)
		return d;
	d = new_die(w, DW_TAG_array_type, w->cu);
	at_ref(w, d, DW_AT_type, elem);
	sub = new_die(w, DW_TAG_subrange_type, d);
	at_udata(w, sub, DW_AT_upper_bound, count - 1);
	return keep_type(w, key, d);
}

static Dwarf_P_Die composite(struct dw *w, Dwarf_Tag tag, const char *name,
			     uint64_t size)
{
	Dwarf_P_Die d = new_die(w, tag, w->cu);

	if (name)
		at_name(w, d, name);
	at_udata(w, d, DW_AT_byte_size, size);
	return d;
}

static void member(struct dw *w, Dwarf_P_Die s, const char *name,
		   Dwarf_P_Die type, uint64_t off)
{
	Dwarf_P_Die m = new_die(w, DW_TAG_member, s);

	at_name(w, m, name);
	at_ref(w, m, DW_AT_type, type);
	at_udata(w, m, DW_AT_data_member_location, off);
}

/* A member of COUNT elements, left out when COUNT is 0. */
static void array_member(struct dw *w, Dwarf_P_Die s, const char *name,
			 Dwarf_P_Die elem, uint64_t count, uint64_t off)
{
	if (count)
		member(w, s, name, array_of(w, elem, count), off);
}

/* Bits LO..HI (0 = least significant) of the big-endian 64-bit word. */
static void bitfield(struct dw *w, Dwarf_P_Die s, const char *name,
		     unsigned lo, unsigned hi)
{
	Dwarf_P_Die m = new_die(w, DW_TAG_member, s);

	at_name(w, m, name);
	at_ref(w, m, DW_AT_type, w->be64);
	at_udata(w, m, DW_AT_bit_size, hi - lo + 1);
	at_uleb(w, m, DW_AT_data_bit_offset, 63 - hi);
}

/*
 * An 8-bit number.  gdb prints any 1-byte integer type from DWARF as a
 * character ('\001'), so the byte is described as an 8-bit field of a
 * big-endian 16-bit word instead: gdb then prints a number.  The word
 * starts at the byte or the one before, so it stays inside the structure.
 */
static void byte_member(struct dw *w, Dwarf_P_Die s, const char *name,
			unsigned off)
{
	Dwarf_P_Die m = new_die(w, DW_TAG_member, s);

	at_name(w, m, name);
	at_ref(w, m, DW_AT_type, w->be16);
	at_udata(w, m, DW_AT_bit_size, 8);
	at_uleb(w, m, DW_AT_data_bit_offset, (uint64_t)off * 8);
}

static Dwarf_P_Die sized(struct dw *w, unsigned size);

struct enumerator {
	const char *name;
	uint64_t value;
};

/*
 * Names for the values of a field.  gdb 13 ignores DW_AT_endianity on an
 * enumeration, so a multi-byte big-endian field is a union of its raw
 * value and a 1-byte enumeration over its last byte (where bits 0-7 of a
 * big-endian word are): `{raw = 0x1, names = QCOW2_INCOMPAT_DIRTY}`.
 * Every bit the spec names is among bits 0-7; others show in raw.
 */
static Dwarf_P_Die enum_type(struct dw *w, const char *name, unsigned size,
			     const char *view, const struct enumerator *e,
			     size_t n)
{
	Dwarf_P_Die d = composite(w, DW_TAG_enumeration_type,
				  size > 1 ? NULL : name, 1);

	at_ref(w, d, DW_AT_type, w->u8);
	for (size_t i = 0; i < n; i++) {
		Dwarf_P_Die m = new_die(w, DW_TAG_enumerator, d);

		at_name(w, m, e[i].name);
		at_udata(w, m, DW_AT_const_value, e[i].value);
	}
	if (size == 1)
		return d;
	Dwarf_P_Die u = composite(w, DW_TAG_union_type, name, size);
	Dwarf_P_Die m = new_die(w, DW_TAG_member, u);

	member(w, u, "raw", sized(w, size), 0);
	at_name(w, m, view);
	at_ref(w, m, DW_AT_type, d);
	at_udata(w, m, DW_AT_bit_size, 8);
	at_uleb(w, m, DW_AT_data_bit_offset, (uint64_t)(size - 1) * 8);
	return u;
}

static void make_entry_types(struct dw *w)
{
	unsigned cbits = w->img->hdr.cluster_bits;
	unsigned x = 62 - (cbits - 8);	/* compressed offset bits */
	Dwarf_P_Die bits, u;

	/*
	 * Reserved bits have fields of their own, so that one set shows
	 * without arithmetic, as check reports it.  The offset fields keep
	 * bits 0-55 so that they print the offset itself: they overlap the
	 * low reserved bits, which a valid entry has clear.
	 */
	/* L1 entry: bit 63 COPIED, bits 9-55 the L2 table offset. */
	bits = composite(w, DW_TAG_structure_type, "qcow2_l1_entry_bits", 8);
	bitfield(w, bits, "copied", 63, 63);
	bitfield(w, bits, "reserved_high", 56, 62);
	bitfield(w, bits, "l2_offset", 0, 55);
	bitfield(w, bits, "reserved", 0, 8);
	u = composite(w, DW_TAG_union_type, "qcow2_l1_entry", 8);
	member(w, u, "raw", w->be64, 0);
	member(w, u, "bits", bits, 0);
	w->l1_entry = u;

	/* L2 entry: standard and compressed views of one word. */
	Dwarf_P_Die std = composite(w, DW_TAG_structure_type,
				    "qcow2_l2_standard", 8);
	bitfield(w, std, "copied", 63, 63);
	bitfield(w, std, "compressed", 62, 62);
	bitfield(w, std, "reserved_high", 56, 61);
	bitfield(w, std, "host_offset", 0, 55);
	bitfield(w, std, "reserved", 1, 8);
	bitfield(w, std, "zero", 0, 0);
	Dwarf_P_Die cmp = composite(w, DW_TAG_structure_type,
				    "qcow2_l2_compressed", 8);
	bitfield(w, cmp, "copied", 63, 63);
	bitfield(w, cmp, "compressed", 62, 62);
	bitfield(w, cmp, "extra_sectors", x, 61);
	bitfield(w, cmp, "host_offset", 0, x - 1);
	u = composite(w, DW_TAG_union_type, "qcow2_l2_entry", 8);
	member(w, u, "raw", w->be64, 0);
	member(w, u, "standard", std, 0);
	member(w, u, "compressed", cmp, 0);
	w->l2_entry = u;

	if (w->img->l2.extended) {
		Dwarf_P_Die sb = composite(w, DW_TAG_structure_type,
					   "qcow2_subcluster_bits", 8);
		bitfield(w, sb, "zero", 32, 63);
		bitfield(w, sb, "alloc", 0, 31);
		Dwarf_P_Die bu = composite(w, DW_TAG_union_type,
					   "qcow2_subcluster_bitmap", 8);
		member(w, bu, "raw", w->be64, 0);
		member(w, bu, "bits", sb, 0);
		Dwarf_P_Die e = composite(w, DW_TAG_structure_type,
					  "qcow2_l2_extended_entry", 16);
		member(w, e, "entry", w->l2_entry, 0);
		member(w, e, "bitmap", bu, 8);
		w->l2_ext_entry = e;
	}

	/* Bitmap table entry: bits 9-55 the data cluster, bit 0 all ones. */
	bits = composite(w, DW_TAG_structure_type, "qcow2_bitmap_table_bits", 8);
	bitfield(w, bits, "reserved_high", 56, 63);
	bitfield(w, bits, "offset", 0, 55);
	bitfield(w, bits, "reserved", 1, 8);
	bitfield(w, bits, "all_ones", 0, 0);
	u = composite(w, DW_TAG_union_type, "qcow2_bitmap_table_entry", 8);
	member(w, u, "raw", w->be64, 0);
	member(w, u, "bits", bits, 0);
	w->bt_entry = u;

	Dwarf_P_Die f = composite(w, DW_TAG_structure_type, "qcow2_feature",
				  QCOW2_FEATURE_ENTRY_SIZE);
	member(w, f, "type", w->enums[ENUM_FEATURE_TYPE], 0);
	byte_member(w, f, "bit", 1);
	array_member(w, f, "name", w->chr, QCOW2_FEATURE_NAME_LEN, 2);
	w->feature = f;
}

#define ENUMERATORS(...) (const struct enumerator[]){ __VA_ARGS__ }, \
	sizeof((const struct enumerator[]){ __VA_ARGS__ }) / sizeof(struct enumerator)

/* Feature bits and codes as the spec names them (QEMU's names). */
static void make_enum_types(struct dw *w)
{
	w->enums[ENUM_INCOMPATIBLE] = enum_type(w, "qcow2_incompatible_features",
		8, "names", ENUMERATORS({ "QCOW2_INCOMPAT_DIRTY", 1 },
		{ "QCOW2_INCOMPAT_CORRUPT", 2 }, { "QCOW2_INCOMPAT_DATA_FILE", 4 },
		{ "QCOW2_INCOMPAT_COMPRESSION", 8 },
		{ "QCOW2_INCOMPAT_EXTL2", 16 }));
	w->enums[ENUM_COMPATIBLE] = enum_type(w, "qcow2_compatible_features",
		8, "names", ENUMERATORS({ "QCOW2_COMPAT_LAZY_REFCOUNTS", 1 }));
	w->enums[ENUM_AUTOCLEAR] = enum_type(w, "qcow2_autoclear_features",
		8, "names", ENUMERATORS({ "QCOW2_AUTOCLEAR_BITMAPS", 1 },
		{ "QCOW2_AUTOCLEAR_DATA_FILE_RAW", 2 }));
	w->enums[ENUM_CRYPT] = enum_type(w, "qcow2_crypt_method", 4, "name",
		ENUMERATORS({ "QCOW_CRYPT_NONE", 0 }, { "QCOW_CRYPT_AES", 1 },
		{ "QCOW_CRYPT_LUKS", 2 }));
	w->enums[ENUM_COMPRESSION] = enum_type(w, "qcow2_compression_type", 1,
		NULL, ENUMERATORS({ "QCOW2_COMPRESSION_TYPE_ZLIB", 0 },
		{ "QCOW2_COMPRESSION_TYPE_ZSTD", 1 }));
	w->enums[ENUM_FEATURE_TYPE] = enum_type(w, "qcow2_feature_type", 1,
		NULL, ENUMERATORS({ "QCOW2_FEAT_TYPE_INCOMPATIBLE", 0 },
		{ "QCOW2_FEAT_TYPE_COMPATIBLE", 1 },
		{ "QCOW2_FEAT_TYPE_AUTOCLEAR", 2 }));
	w->enums[ENUM_BITMAP_FLAGS] = enum_type(w, "qcow2_bitmap_flags", 4,
		"names", ENUMERATORS({ "BME_FLAG_IN_USE", 1 },
		{ "BME_FLAG_AUTO", 2 }, { "BME_FLAG_EXTRA_DATA_COMPATIBLE", 4 }));
	w->enums[ENUM_BITMAP_TYPE] = enum_type(w, "qcow2_bitmap_type", 1, NULL,
		ENUMERATORS({ "BT_DIRTY_TRACKING_BITMAP", 1 }));
}
#undef ENUMERATORS

static void make_luks_types(struct dw *w)
{
	Dwarf_P_Die s = composite(w, DW_TAG_structure_type, "luks_key_slot", 48);

	member(w, s, "active", w->be32, 0);
	member(w, s, "iterations", w->be32, 4);
	array_member(w, s, "salt", w->u8, 32, 8);
	member(w, s, "key_material_offset", w->be32, 40);
	member(w, s, "stripes", w->be32, 44);
	w->luks_slot = s;

	Dwarf_P_Die h = composite(w, DW_TAG_structure_type, "luks_header",
				  QCOW2_LUKS_HEADER_SIZE);
	array_member(w, h, "magic", w->u8, 6, 0);
	member(w, h, "version", w->be16, 6);
	array_member(w, h, "cipher_name", w->chr, 32, 8);
	array_member(w, h, "cipher_mode", w->chr, 32, 40);
	array_member(w, h, "hash_spec", w->chr, 32, 72);
	member(w, h, "payload_offset", w->be32, 104);
	member(w, h, "key_bytes", w->be32, 108);
	array_member(w, h, "mk_digest", w->u8, 20, 112);
	array_member(w, h, "mk_digest_salt", w->u8, 32, 132);
	member(w, h, "mk_digest_iterations", w->be32, 164);
	array_member(w, h, "uuid", w->chr, 40, 168);
	array_member(w, h, "key_slots", w->luks_slot, QCOW2_LUKS_SLOTS, 208);
	w->luks_header = h;
}

struct field {
	const char *name;
	unsigned off, size;
	enum named_type named;
};

static const struct field header_fields[] = {
	{ "magic", 0, 4 },
	{ "version", 4, 4 },
	{ "backing_file_offset", 8, 8 },
	{ "backing_file_size", 16, 4 },
	{ "cluster_bits", 20, 4 },
	{ "size", 24, 8 },
	{ "crypt_method", 32, 4, ENUM_CRYPT },
	{ "l1_size", 36, 4 },
	{ "l1_table_offset", 40, 8 },
	{ "refcount_table_offset", 48, 8 },
	{ "refcount_table_clusters", 56, 4 },
	{ "nb_snapshots", 60, 4 },
	{ "snapshots_offset", 64, 8 },
	{ "incompatible_features", 72, 8, ENUM_INCOMPATIBLE },
	{ "compatible_features", 80, 8, ENUM_COMPATIBLE },
	{ "autoclear_features", 88, 8, ENUM_AUTOCLEAR },
	{ "refcount_order", 96, 4 },
	{ "header_length", 100, 4 },
	{ "compression_type", 104, 1, ENUM_COMPRESSION },
};

static Dwarf_P_Die sized(struct dw *w, unsigned size)
{
	/* 1-byte numbers: see byte_member(). */
	return size == 1 ? w->u8 : size == 2 ? w->be16 : size == 4 ? w->be32
							       : w->be64;
}

static void field_member(struct dw *w, Dwarf_P_Die s, const struct field *f)
{
	if (f->named)
		member(w, s, f->name, w->enums[f->named], f->off);
	else if (f->size == 1)
		byte_member(w, s, f->name, f->off);
	else
		member(w, s, f->name, sized(w, f->size), f->off);
}

static Dwarf_P_Die header_type(struct dw *w, uint64_t size)
{
	Dwarf_P_Die s = composite(w, DW_TAG_structure_type, "qcow2_header",
				  size);
	uint64_t end = 0;

	for (size_t i = 0; i < sizeof(header_fields) / sizeof(header_fields[0]);
	     i++) {
		const struct field *f = &header_fields[i];

		if (f->off + f->size > size)
			break;
		field_member(w, s, f);
		end = f->off + f->size;
	}
	if (size > end)
		array_member(w, s, end > 104 ? "padding" : "unknown", w->u8,
			     size - end, end);
	return s;
}

static Dwarf_P_Die extension_type(struct dw *w, const struct q2e_extension *e,
				  uint64_t size)
{
	uint64_t len = e->avail, payload_end;
	Dwarf_P_Die s = composite(w, DW_TAG_structure_type, NULL, size);

	member(w, s, "magic", w->be32, 0);
	member(w, s, "length", w->be32, 4);
	if (len > size - 8)
		len = size - 8;
	payload_end = 8 + len;
	switch (e->magic) {
	case QCOW2_EXT_BACKING_FORMAT:
	case QCOW2_EXT_DATA_FILE:
		array_member(w, s, "name", w->chr, len, 8);
		break;
	case QCOW2_EXT_FEATURE_TABLE:
		array_member(w, s, "features", w->feature,
			     len / QCOW2_FEATURE_ENTRY_SIZE, 8);
		payload_end = 8 + len / QCOW2_FEATURE_ENTRY_SIZE *
					  QCOW2_FEATURE_ENTRY_SIZE;
		break;
	case QCOW2_EXT_BITMAPS:
		if (len < 24) {
			payload_end = 8;
			break;
		}
		member(w, s, "nb_bitmaps", w->be32, 8);
		member(w, s, "reserved", w->be32, 12);
		member(w, s, "bitmap_directory_size", w->be64, 16);
		member(w, s, "bitmap_directory_offset", w->be64, 24);
		payload_end = 32;
		break;
	case QCOW2_EXT_CRYPTO:
		if (len < 16) {
			payload_end = 8;
			break;
		}
		/* Not "length" again: the extension's own is at 4. */
		member(w, s, "crypto_header_offset", w->be64, 8);
		member(w, s, "crypto_header_length", w->be64, 16);
		payload_end = 24;
		break;
	default:
		array_member(w, s, "data", w->u8, len, 8);
		break;
	}
	if (size > payload_end)
		array_member(w, s, "padding", w->u8, size - payload_end,
			     payload_end);
	return s;
}

static const struct field snapshot_fields[] = {
	{ "l1_table_offset", 0, 8 },
	{ "l1_size", 8, 4 },
	{ "id_str_size", 12, 2 },
	{ "name_size", 14, 2 },
	{ "date_sec", 16, 4 },
	{ "date_nsec", 20, 4 },
	{ "vm_clock_nsec", 24, 8 },
	{ "vm_state_size", 32, 4 },
	{ "extra_data_size", 36, 4 },
};

static Dwarf_P_Die snapshot_type(struct dw *w, const struct q2e_snapshot *sn,
				 uint64_t size)
{
	const struct qcow2_snapshot *e = &sn->entry;
	static const char *const extra[] = { "vm_state_size_large",
					     "disk_size", "icount" };
	/* One type for each shape: thousands of snapshots have few. */
	const uint64_t key[4] = { SHAPE_SNAPSHOT, size, e->extra_data_size,
				  (uint64_t)e->id_str_size << 32 | e->name_size };
	Dwarf_P_Die s = q2e_map_get(&w->types, key);
	uint64_t pos = QCOW2_SNAPSHOT_FIXED_SIZE;
	unsigned k;

	if (s || w->failed)
		return s;
	s = composite(w, DW_TAG_structure_type, "qcow2_snapshot_entry", size);

	for (size_t i = 0; i < 9; i++)
		member(w, s, snapshot_fields[i].name,
		       sized(w, snapshot_fields[i].size), snapshot_fields[i].off);
	for (k = 0; k < 3 && (k + 1) * 8 <= e->extra_data_size; k++)
		member(w, s, extra[k], w->be64, pos + k * 8);
	array_member(w, s, "extra_data", w->u8, e->extra_data_size - k * 8,
		     pos + k * 8);
	pos += e->extra_data_size;
	array_member(w, s, "id_str", w->chr, e->id_str_size, pos);
	pos += e->id_str_size;
	array_member(w, s, "name", w->chr, e->name_size, pos);
	pos += e->name_size;
	if (size > pos)
		array_member(w, s, "padding", w->u8, size - pos, pos);
	return keep_type(w, key, s);
}

static Dwarf_P_Die bitmap_type(struct dw *w, const struct q2e_bitmap *b,
			       uint64_t size)
{
	const struct qcow2_bitmap_entry *e = &b->entry;
	const uint64_t key[4] = { SHAPE_BITMAP, size, e->extra_data_size,
				  e->name_size };
	Dwarf_P_Die s = q2e_map_get(&w->types, key);
	uint64_t pos = QCOW2_BITMAP_ENTRY_FIXED_SIZE;

	if (s || w->failed)
		return s;
	s = composite(w, DW_TAG_structure_type, "qcow2_bitmap_directory_entry",
		      size);

	member(w, s, "bitmap_table_offset", w->be64, 0);
	member(w, s, "bitmap_table_size", w->be32, 8);
	member(w, s, "flags", w->enums[ENUM_BITMAP_FLAGS], 12);
	member(w, s, "type", w->enums[ENUM_BITMAP_TYPE], 16);
	byte_member(w, s, "granularity_bits", 17);
	member(w, s, "name_size", w->be16, 18);
	member(w, s, "extra_data_size", w->be32, 20);
	array_member(w, s, "extra_data", w->u8, e->extra_data_size, pos);
	pos += e->extra_data_size;
	array_member(w, s, "name", w->chr, e->name_size, pos);
	pos += e->name_size;
	if (size > pos)
		array_member(w, s, "padding", w->u8, size - pos, pos);
	return keep_type(w, key, s);
}

/* 8-bit refcounts, which gdb would print as characters, have a type of
 * their own name that the gdb helpers' pretty-printer prints as numbers. */
static Dwarf_P_Die refblock_elem(struct dw *w)
{
	switch (w->img->refcount_bits) {
	case 8:
		if (!w->refcount8)
			w->refcount8 = base_type(w, "qcow2_refcount8",
						 DW_ATE_unsigned, 1);
		return w->refcount8;
	case 16:
		return w->be16;
	case 32:
		return w->be32;
	case 64:
		return w->be64;
	}
	return w->u8;	/* sub-byte widths: packed, shown as bytes */
}

/*
 * Refcounts of 1, 2 or 4 bits, packed from the least significant bit of
 * each byte: DWARF has no array of such, so the block is a named structure
 * of bytes that the gdb helpers' pretty-printer shows as numbers.
 */
static Dwarf_P_Die packed_refblock(struct dw *w, uint64_t size)
{
	static const char *const names[] = { [1] = "qcow2_refcount_block_1",
					      [2] = "qcow2_refcount_block_2",
					      [4] = "qcow2_refcount_block_4" };
	Dwarf_P_Die t = composite(w, DW_TAG_structure_type,
				  names[w->img->refcount_bits], size);

	array_member(w, t, "bytes", w->u8, size, 0);
	return t;
}

static Dwarf_P_Die type_of(struct dw *w, const struct q2e_sym *s)
{
	const struct q2e_image *img = w->img;
	uint64_t n8 = s->size / 8;

	switch (s->type) {
	case Q2E_SYM_HEADER:
		return header_type(w, s->size);
	case Q2E_SYM_EXTENSION:
		return extension_type(w, &img->exts[s->index], s->size);
	case Q2E_SYM_STRING:
		return array_of(w, w->chr, s->size);
	case Q2E_SYM_L1:
		if (n8)
			return array_of(w, w->l1_entry, n8);
		break;
	case Q2E_SYM_L2:
		if (img->l2.extended && s->size >= 16)
			return array_of(w, w->l2_ext_entry, s->size / 16);
		if (n8)
			return array_of(w, w->l2_entry, n8);
		break;
	case Q2E_SYM_REFTABLE:
		if (n8)
			return array_of(w, w->be64, n8);
		break;
	case Q2E_SYM_REFBLOCK: {
		Dwarf_P_Die e = refblock_elem(w);
		unsigned bytes = img->refcount_bits >= 8 ? img->refcount_bits / 8
							 : 1;

		if (img->refcount_bits < 8 && s->size)
			return packed_refblock(w, s->size);
		if (s->size >= bytes)
			return array_of(w, e, s->size / bytes);
		break;
	}
	case Q2E_SYM_SNAPSHOT:
		return snapshot_type(w, &img->snapshots[s->index], s->size);
	case Q2E_SYM_BITMAP:
		return bitmap_type(w, &img->bitmaps[s->index], s->size);
	case Q2E_SYM_BITMAP_TABLE:
		if (n8)
			return array_of(w, w->bt_entry, n8);
		break;
	case Q2E_SYM_CRYPTO:
		if (s->size >= QCOW2_LUKS_HEADER_SIZE && img->has_luks) {
			Dwarf_P_Die t = composite(w, DW_TAG_structure_type,
						  NULL, s->size);

			member(w, t, "luks", w->luks_header, 0);
			array_member(w, t, "key_material", w->u8,
				     s->size - QCOW2_LUKS_HEADER_SIZE,
				     QCOW2_LUKS_HEADER_SIZE);
			return t;
		}
		break;
	case Q2E_SYM_BYTES:
		break;
	}
	return array_of(w, w->u8, s->size ? s->size : 1);
}

/*
 * The type of each symbol is made in the first unit and marked with its
 * position among the distinct types (1-based: 0 is "no marker"), so that
 * its offset in .debug_info is known after libdwarf lays the unit out.
 */
static void mark_type(struct dw *w, const struct q2e_sym *s, uint32_t *index)
{
	Dwarf_P_Die type = type_of(w, s);
	Dwarf_Unsigned marker = 0;
	Dwarf_Error derr = NULL;

	if (w->failed)
		return;
	if (w->dl->dwarf_get_die_marker(w->dbg, type, &marker, &derr) != DW_DLV_OK)
		return fail(w, "dwarf_get_die_marker", derr);
	if (marker == 0) {
		marker = ++w->ntypes;
		if (w->dl->dwarf_add_die_marker_a(w->dbg, type, marker, &derr) !=
		    DW_DLV_OK)
			return fail(w, "dwarf_add_die_marker_a", derr);
	}
	*index = (uint32_t)marker;
}

/* libdwarf asks for each section it will fill; we number them. */
static int section_callback(const char *name, int size, Dwarf_Unsigned type,
			    Dwarf_Unsigned flags, Dwarf_Unsigned link,
			    Dwarf_Unsigned info, Dwarf_Unsigned *name_index,
			    void *user_data, int *error)
{
	struct dw *w = user_data;
	struct q2e_dwarf *d = w->out;
	void *n;

	(void)size; (void)type; (void)flags; (void)link; (void)info;
	*name_index = 0;
	n = realloc(d->secs, (d->nsecs + 1) * sizeof(*d->secs));
	if (!n || !(((struct q2e_dwarf_section *)n)[d->nsecs].name =
			    strdup(name))) {
		if (n)
			d->secs = n;
		*error = DW_DLE_ALLOC_FAIL;
		return -1;
	}
	d->secs = n;
	d->secs[d->nsecs].data = NULL;
	d->secs[d->nsecs].size = 0;
	return (int)++d->nsecs;	/* 1-based: 0 would mean "no section" */
}

static int collect_sections(struct dw *w)
{
	struct q2e_dwarf *d = w->out;
	Dwarf_Signed nbufs = 0;
	Dwarf_Error derr = NULL;

	if (w->dl->dwarf_transform_to_disk_form_a(w->dbg, &nbufs, &derr) !=
	    DW_DLV_OK) {
		fail(w, "dwarf_transform_to_disk_form_a", derr);
		return -1;
	}
	for (Dwarf_Signed i = 0; i < nbufs; i++) {
		Dwarf_Signed idx = 0;
		Dwarf_Unsigned len = 0;
		Dwarf_Ptr bytes = NULL;

		if (w->dl->dwarf_get_section_bytes_a(w->dbg, i, &idx, &len,
						     &bytes, &derr) !=
		    DW_DLV_OK) {
			fail(w, "dwarf_get_section_bytes_a", derr);
			return -1;
		}
		if (idx < 1 || (size_t)idx > d->nsecs)
			continue;
		struct q2e_dwarf_section *s = &d->secs[idx - 1];
		uint8_t *n = realloc(s->data, s->size + len + 1);

		if (!n) {
			q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
			return -1;
		}
		memcpy(n + s->size, bytes, len);
		s->data = n;
		s->size += len;
	}
	/* The byte streams hold final addresses: drop relocation sections. */
	size_t k = 0;
	for (size_t i = 0; i < d->nsecs; i++) {
		if (strncmp(d->secs[i].name, ".rel", 4) == 0) {
			free(d->secs[i].name);
			free(d->secs[i].data);
			continue;
		}
		d->secs[k++] = d->secs[i];
	}
	d->nsecs = k;
	return 0;
}

/* TYPE_REF holds each symbol's type marker: made its type's offset. */
static void resolve_types(struct dw *w, uint32_t *type_ref, size_t nsyms)
{
	Dwarf_P_Marker markers = NULL;
	Dwarf_Unsigned count = 0;
	Dwarf_Error derr = NULL;
	uint32_t *offset;

	if (w->dl->dwarf_get_die_markers_a(w->dbg, &markers, &count, &derr) !=
	    DW_DLV_OK)
		return fail(w, "dwarf_get_die_markers_a", derr);
	offset = calloc(w->ntypes + 1, sizeof(*offset));
	if (!offset) {
		w->failed = true;
		q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
		return;
	}
	for (Dwarf_Unsigned i = 0; i < count; i++)
		if (markers[i].ma_marker <= w->ntypes)
			offset[markers[i].ma_marker] =
				(uint32_t)markers[i].ma_offset;
	for (size_t i = 0; i < nsyms; i++)
		type_ref[i] = offset[type_ref[i]];
	free(offset);
}

/* Everything libdwarf makes, in W->dbg, then the variables; sets
 * W->failed on an error. */
static void build(struct dw *w, const struct q2e_symbols *syms,
		  uint32_t *type_ref, const char *cu_name)
{
	Dwarf_Error derr = NULL;
	Dwarf_Unsigned flags = DW_DLC_WRITE | DW_DLC_POINTER64 |
			       DW_DLC_OFFSET32 | DW_DLC_SYMBOLIC_RELOCATIONS |
			       DW_TARGET_ORDER;

	if (w->dl->dwarf_producer_init(flags, section_callback, NULL, NULL, w,
				       DW_ISA, "V4", NULL, &w->dbg, &derr) !=
	    DW_DLV_OK) {
		w->dbg = NULL;
		return fail(w, "dwarf_producer_init", derr);
	}
	w->cu = new_die(w, DW_TAG_compile_unit, NULL);
	at_name(w, w->cu, cu_name);
	if (!w->failed) {
		Dwarf_P_Attribute a;

		if (w->dl->dwarf_add_AT_string_a(w->dbg, w->cu, DW_AT_producer,
						 PRODUCER, &a, &derr) !=
		    DW_DLV_OK)
			fail(w, "dwarf_add_AT_string_a", derr);
	}
	w->u8 = base_type(w, "uint8_t", DW_ATE_unsigned, 1);
	w->chr = base_type(w, "char", DW_ATE_signed_char, 1);
	w->be16 = base_type(w, "__be16", DW_ATE_unsigned, 2);
	w->be32 = base_type(w, "__be32", DW_ATE_unsigned, 4);
	w->be64 = base_type(w, "__be64", DW_ATE_unsigned, 8);
	make_enum_types(w);
	make_entry_types(w);
	make_luks_types(w);
	for (size_t i = 0; i < syms->n && !w->failed; i++)
		mark_type(w, &syms->v[i], &type_ref[i]);
	if (!w->failed &&
	    w->dl->dwarf_add_die_to_debug_a(w->dbg, w->cu, &derr) != DW_DLV_OK)
		fail(w, "dwarf_add_die_to_debug_a", derr);
	if (!w->failed && collect_sections(w) < 0)
		w->failed = true;
	if (!w->failed)
		resolve_types(w, type_ref, syms->n);
	if (!w->failed &&
	    q2e_dwarf_variables_begin(w->out, cu_name, PRODUCER, w->err) < 0)
		w->failed = true;
}

/*
 * libdwarf 20210528 calls abort() when it cannot allocate the structure
 * that would report a failed allocation ("Could not allocate Dwarf_Error
 * structure"), which memory pressure makes likely.  The build runs with a
 * SIGABRT handler that jumps back here, so that running out of memory is
 * an error like any other.  glibc's abort() releases its lock before it
 * raises the signal, so leaving the handler by siglongjmp is safe; the
 * producer is left as the failed allocation found it, and is freed.
 */
static sigjmp_buf abort_jump;

static void abort_handler(int sig)
{
	(void)sig;
	siglongjmp(abort_jump, 1);
}

static int build_dwarf(const struct q2e_image *img,
		       const struct q2e_symbols *syms, const char *cu_name,
		       struct q2e_dwarf *out, struct q2e_error *err)
{
	/* W is volatile: it is read after the jump */
	struct dw state = { .err = err, .img = img, .out = out };
	struct dw *volatile w = &state;
	struct sigaction sa = { .sa_handler = abort_handler }, old;
	Dwarf_Error derr = NULL;
	int ret;

	/* Each symbol's type: a marker, then an offset (add_variables). */
	uint32_t *type_ref = calloc(syms->n ? syms->n : 1, sizeof(*type_ref));

	memset(out, 0, sizeof(*out));
	if (!type_ref)
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	w->dl = q2e_dwarf_lib(err);
	if (!w->dl) {
		free(type_ref);
		return err && err->code ? err->code : Q2E_EUNSUPPORTED;
	}
	out->info = SIZE_MAX;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGABRT, &sa, &old);
	if (sigsetjmp(abort_jump, 1) == 0) {
		build(w, syms, type_ref, cu_name);
	} else {
		w->failed = true;
		q2e_error_set(err, Q2E_ENOMEM,
			      "cannot build the DWARF description: out of memory (libdwarf gave up)");
	}
	sigaction(SIGABRT, &old, NULL);
	ret = !w->failed ? 0 : err && err->code ? err->code : Q2E_EOUTPUT;
	if (w->dbg)
		w->dl->dwarf_producer_finish_a(w->dbg, &derr);
	q2e_map_free(&w->types, NULL);
	out->type_ref = type_ref;
	if (ret < 0)
		q2e_dwarf_free(out);
	return ret;
}

int q2e_dwarf_build(const struct q2e_image *img,
		    const struct q2e_symbols *syms, const char *cu_name,
		    struct q2e_dwarf *out, struct q2e_error *err)
{
	struct q2e_dwarf_key key;
	int ret = q2e_dwarf_last(img, syms, cu_name, out, &key);

	if (ret != 0)
		return ret < 0 ? q2e_error_set(err, Q2E_ENOMEM, "out of memory")
			       : 0;
	ret = build_dwarf(img, syms, cu_name, out, err);
	q2e_dwarf_keep(&key, ret == 0 ? out : NULL, syms->n);
	return ret;
}

void q2e_dwarf_free(struct q2e_dwarf *d)
{
	for (size_t i = 0; i < d->nsecs; i++) {
		free(d->secs[i].name);
		free(d->secs[i].data);
	}
	free(d->secs);
	free(d->type_ref);
	free(d->cu_name);
	*d = (struct q2e_dwarf){ 0 };
}

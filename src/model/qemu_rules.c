/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * QEMU 7.2's rules for what it refuses: the checks qcow2_do_open() and
 * qcow2_read_extensions() make before an image opens, and the snapshot
 * tables qemu-img check then gives up on.  One place, so that `info`
 * (a problem) and `check` (its exit status) say the same.
 */
#include <limits.h>
#include <stdint.h>

#include "qcow2elf/model.h"
#include "walk.h"

static bool past_int64(uint64_t offset, uint64_t bytes)
{
	return offset > INT64_MAX || bytes > INT64_MAX - offset;
}

bool qemu_unreadable(uint64_t offset, uint64_t bytes)
{
	const uint64_t max = (uint64_t)INT64_MAX + 1 - (1ULL << 30);

	return offset > max || bytes > max - offset;
}

/*
 * Whatever QEMU refuses to open, qemu-img check cannot check either; in
 * the order qcow2_do_open() looks.
 */
static const char *header_unopenable(const struct q2e_image *img)
{
	const struct qcow2_header *h = &img->hdr;
	uint64_t l1_bytes = h->l1_size * 8ULL;
	uint64_t rt_bytes = h->refcount_table_clusters * (uint64_t)img->cluster_size;
	uint64_t span = img->cluster_size * img->l2_entries;

	if (h->incompatible_features & ~QCOW2_INCOMPAT_KNOWN)
		return "the image has unknown incompatible features";
	if (!img->refcount_bits)
		return "refcount_order is above 6";
	/* (No refcount table at all is opened for a check, and then every
	 * refcount reads as 0.) */
	if (rt_bytes > QCOW2_MAX_REFTABLE_BYTES)
		return "the refcount table size is invalid";
	if (past_int64(h->refcount_table_offset, rt_bytes))
		return "the refcount table offset is invalid";
	if (h->refcount_table_offset & (img->cluster_size - 1))
		return "the refcount table is not cluster aligned";
	if (l1_bytes > QCOW2_MAX_L1_BYTES)
		return "the active L1 table is above QEMU's 32 MiB limit";
	if (past_int64(h->l1_table_offset, l1_bytes))
		return "the active L1 table offset is invalid";
	if (h->l1_table_offset & (img->cluster_size - 1))
		return "the active L1 table is not cluster aligned";
	uint64_t l1_needed = h->size / span + (h->size % span != 0);

	if (l1_needed > INT_MAX)	/* size_to_l1() */
		return "the image is too big";
	if (h->l1_size < l1_needed)
		return "the active L1 table is too small for the virtual size";
	if (l1_bytes && qemu_unreadable(h->l1_table_offset, l1_bytes))
		return "the active L1 table cannot be read";
	if (rt_bytes && qemu_unreadable(h->refcount_table_offset, rt_bytes))
		return "the refcount table cannot be read";
	if (h->backing_file_offset &&
	    (h->backing_file_size > 1023 ||
	     (h->backing_file_offset <= img->cluster_size &&
	      h->backing_file_size > img->cluster_size - h->backing_file_offset)))
		return "the backing file name is too long";
	if (img->file_size / img->cluster_size + 1 > INT_MAX)
		return "the image has more than INT_MAX clusters";
	if (h->backing_file_offset > img->cluster_size)
		return "the backing file offset is past the header cluster";
	if (img->extensions_damaged)
		return "a header extension runs past the header cluster";
	if (h->crypt_method > QCOW2_CRYPT_LUKS)
		return "the encryption method is unknown";
	if ((h->autoclear_features & QCOW2_AUTOCLEAR_DATA_FILE_RAW) &&
	    !(h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE))
		return "data-file-raw is set without an external data file";
	if ((h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE) &&
	    !img->data_file)
		return "an external data file is required but not named";
	if (h->compression_type > QCOW2_COMPRESSION_ZSTD)
		return "the compression type is unknown";
	if (h->compression_type &&
	    !(h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION))
		return "a compression type is set without its incompatible bit";
	if (!h->compression_type &&
	    (h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION))
		return "the compression type incompatible bit is set for zlib";
	if ((h->incompatible_features & QCOW2_INCOMPAT_EXTL2) &&
	    h->cluster_bits < 14)
		return "extended L2 entries need clusters of at least 16 KiB";
	return NULL;
}

/*
 * load_bitmap(): QEMU reads the table of each bitmap not in use when it
 * opens the image, and fails (EINVAL) on an entry with reserved bits set or
 * a data cluster not aligned (bitmap_table_load()), or on a table of
 * another size than the virtual size needs (load_bitmap_data()).  A bitmap
 * in use is only marked inconsistent.
 */
static bool bitmap_unloadable(const struct q2e_image *img,
			      const struct q2e_bitmap *b)
{
	const struct qcow2_bitmap_entry *e = &b->entry;
	uint64_t bytes, need;

	if (e->flags & 1)
		return false;
	/* The block layer refuses the read (EIO). */
	if (qemu_unreadable(e->bitmap_table_offset,
			    e->bitmap_table_size * 8ULL))
		return true;
	for (uint64_t j = 0; b->table && j < b->ntable; j++) {
		struct qcow2_bitmap_table_entry t;

		qcow2_bitmap_table_entry_decode(b->table[j], &t);
		if (t.reserved || (t.offset & (img->cluster_size - 1)))
			return true;
	}
	bytes = qcow2_bitmap_data_bytes(q2e_image_virtual_size(img),
					e->granularity_bits);
	need = bytes / img->cluster_size + (bytes % img->cluster_size != 0);
	return need != e->bitmap_table_size;
}

/*
 * bitmap_list_load() and check_dir_entry(): a bitmap directory QEMU refuses
 * to open with (the bitmaps bit set).  Entries must fill the directory
 * exactly, without extra data, and every one meet QEMU's constraints.
 */
static const char *bitmaps_unopenable(const struct q2e_image *img)
{
	const uint64_t max_table = 0x8000000, max_phys = 0x20000000;
	uint64_t used = 0;

	if (!img->bitmaps_ext.bitmap_directory_size)
		return "the bitmap directory is empty";
	for (size_t i = 0; i < img->nbitmaps; i++) {
		const struct qcow2_bitmap_entry *e = &img->bitmaps[i].entry;
		uint64_t phys = (uint64_t)e->bitmap_table_size * img->cluster_size;

		used += e->entry_size;
		if (e->extra_data_size)
			return "a bitmap has extra data, which QEMU does not support";
		if (!e->bitmap_table_size || !e->bitmap_table_offset ||
		    (e->bitmap_table_offset & (img->cluster_size - 1)) ||
		    e->bitmap_table_size > max_table ||
		    e->granularity_bits > 31 || e->granularity_bits < 9 ||
		    (e->flags & ~3U) || e->name_size > 1023 || e->type != 1 ||
		    phys > max_phys ||
		    (!(e->flags & 1) &&
		     q2e_image_virtual_size(img) >
			     ((phys * 8) << e->granularity_bits)))
			return "a bitmap does not satisfy QEMU's constraints";
	}
	if (img->nbitmaps != img->bitmaps_ext.nb_bitmaps ||
	    used != img->bitmaps_ext.bitmap_directory_size)
		return "the bitmap directory is broken";
	for (size_t i = 0; i < img->nbitmaps; i++)
		if (bitmap_unloadable(img, &img->bitmaps[i]))
			return "a bitmap's table cannot be loaded";
	return NULL;
}

/* qcow2_read_extensions(): the extensions QEMU refuses to open with. */
static const char *extensions_unopenable(const struct q2e_image *img)
{
	const struct qcow2_bitmaps_ext *b = &img->bitmaps_ext;

	for (size_t i = 0; i < img->nexts; i++) {
		const struct q2e_extension *e = &img->exts[i];

		if (e->magic == QCOW2_EXT_BACKING_FORMAT && e->length >= 16)
			return "the backing format extension is too long";
		if (e->magic == QCOW2_EXT_CRYPTO && e->length != 16)
			return "the encryption header extension has an invalid length";
		if (e->magic == QCOW2_EXT_BITMAPS && e->length != 24)
			return "the bitmaps extension has an invalid length";
	}
	if (img->hdr.crypt_method == QCOW2_CRYPT_LUKS && !img->has_crypto_ext)
		return "LUKS encryption without an encryption header extension";
	if (img->has_crypto_ext && img->hdr.crypt_method != QCOW2_CRYPT_LUKS)
		return "an encryption header extension without LUKS encryption";
	if (img->has_crypto_ext && (img->crypto_ext.offset & (img->cluster_size - 1)))
		return "the LUKS header is not cluster aligned";
	if (!img->has_bitmaps_ext ||
	    !(img->hdr.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS))
		return NULL;	/* bitmaps QEMU ignores */
	if (b->reserved)
		return "the bitmaps extension has its reserved field set";
	if (b->nb_bitmaps > QCOW2_MAX_BITMAPS)
		return "the bitmaps extension counts more than 65535 bitmaps";
	if (!b->nb_bitmaps)
		return "the bitmaps extension counts no bitmaps";
	if (b->bitmap_directory_offset & (img->cluster_size - 1))
		return "the bitmap directory is not cluster aligned";
	if (b->bitmap_directory_size > 1024ULL * QCOW2_MAX_BITMAPS)
		return "the bitmap directory is larger than QEMU supports";
	return bitmaps_unopenable(img);
}

/* Snapshot tables QEMU opens but qemu-img check then gives up on. */
static const char *snapshot_table_refusal(const struct q2e_image *img)
{
	const struct qcow2_header *h = &img->hdr;
	uint64_t bytes = h->nb_snapshots * (uint64_t)QCOW2_SNAPSHOT_FIXED_SIZE;

	if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return "the snapshot table has more than 65536 entries";
	if (past_int64(h->snapshots_offset, bytes) ||
	    (h->snapshots_offset & (img->cluster_size - 1)))
		return "the snapshot table offset is invalid";
	if (h->nb_snapshots && qemu_unreadable(h->snapshots_offset, bytes))
		return "the snapshot table cannot be read";
	if (img->snapshot_extra_over_limit >= 0)
		return "a snapshot table entry has more than 1024 bytes of extra data";
	if (img->snapshot_table_too_big)
		return "the snapshot table is larger than QEMU's 64 MiB";
	return NULL;
}

/*
 * Besides, qcow2_check_bitmaps_refcounts() reads the table of every
 * bitmap, those in use too (which the open left alone), and the check
 * fails where the block layer refuses the read; unless QEMU ignores the
 * bitmaps.
 */
const char *q2e_qemu_check_refusal(const struct q2e_image *img)
{
	const char *why = snapshot_table_refusal(img);

	/* Bitmaps QEMU ignores (the autoclear bit clear) are not read. */
	for (size_t i = 0; !why && !img->bitmaps_ignored && i < img->nbitmaps;
	     i++) {
		const struct qcow2_bitmap_entry *e = &img->bitmaps[i].entry;

		if (qemu_unreadable(e->bitmap_table_offset,
			       e->bitmap_table_size * 8ULL))
			why = "a bitmap's table cannot be read";
	}
	return why;
}

const char *q2e_qemu_open_refusal(const struct q2e_image *img)
{
	const char *why = header_unopenable(img);

	if (!why)
		why = extensions_unopenable(img);
	return why ? why : q2e_qemu_luks_refusal(img);
}

/* Besides: qcow2_do_open() takes an image without a refcount table only
 * for a check. */
const char *q2e_qemu_plain_open_refusal(const struct q2e_image *img)
{
	const char *why = q2e_qemu_open_refusal(img);

	if (!why && !img->hdr.refcount_table_clusters)
		why = "the image has no refcount table (QEMU opens it only "
		      "for a check)";
	return why ? why : snapshot_table_refusal(img);
}

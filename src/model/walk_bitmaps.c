/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The walk's bitmaps: the bitmap directory, each bitmap's table and the
 * data clusters it points to.
 *
 * Bitmaps whose tables have one offset and size (QEMU gives each bitmap
 * its own, so only a hand-made or damaged image does this) share the
 * first one's copy of the table, and its data clusters are that bitmap's
 * alone: 16,384 bitmaps naming one table of 1,024 entries made as many
 * copies and 16 million owners of the data (400 MB from a 1 MB file).
 * Each bitmap still owns the table, and check counts each table's
 * references, as qemu-img does.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/hashmap.h"
#include "walk.h"

#define MAX_DIRECTORY_BYTES (64ULL << 20)
#define MAX_BITMAP_TABLE_ENTRIES 0x8000000ULL

/* The earlier bitmap whose table has B's offset and size, or NULL, and
 * B kept in SEEN as that table's first where it has none. */
static const struct q2e_bitmap *table_seen(struct q2e_map *seen,
					   struct q2e_bitmap *b, int *ret)
{
	const uint64_t key[Q2E_MAP_KEY] = { b->entry.bitmap_table_offset,
					     b->entry.bitmap_table_size };
	const struct q2e_bitmap *first = q2e_map_get(seen, key);

	*ret = 0;
	if (!first)
		*ret = q2e_map_put(seen, key, b);
	return first;
}

static int read_bitmap_table(struct walk *w, struct q2e_map *seen, size_t n)
{
	struct q2e_image *img = w->img;
	struct q2e_bitmap *b = &img->bitmaps[n];
	uint64_t off = b->entry.bitmap_table_offset;
	uint64_t count = b->entry.bitmap_table_size;
	char name[64];
	int ret;

	struct q2e_owner bo = { Q2E_OWNER_BITMAP, (uint32_t)n, 0 };

	q2e_structure_symbol(img, Q2E_REGION_BITMAP_TABLE, 0, &bo, name,
			     sizeof(name));
	if (count > MAX_BITMAP_TABLE_ENTRIES)
		return walk_problem(w, Q2E_SEV_ERROR, Q2E_PROBLEM_LIMIT, b->offset + 8, name,
				    "bitmap_table_size %" PRIu64
				    " is above QEMU's limit: not read", count);
	if (!count)
		return 0;
	struct q2e_owner o = { Q2E_OWNER_BITMAP, (uint32_t)n, 0 };
	ret = walk_region(w, Q2E_REGION_BITMAP_TABLE, off, count * 8, o, 0);
	if (ret == 0)
		ret = walk_note_misaligned(w, name, off);
	if (ret == 0)
		ret = walk_note_truncated(w, name, off, count * 8);
	if (ret < 0 || off >= img->file_size)
		return ret;
	const struct q2e_bitmap *first = table_seen(seen, b, &ret);
	if (ret < 0)
		return q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
	if (first) {
		b->table = first->table;
		b->ntable = first->ntable;
		b->table_shared = true;
		return 0;
	}
	ret = walk_read_entries(w, off, count, name, &b->table, &b->ntable);
	if (ret < 0)
		return ret;
	for (uint64_t j = 0; j < b->ntable; j++) {
		struct qcow2_bitmap_table_entry e;

		qcow2_bitmap_table_entry_decode(b->table[j], &e);
		if (e.reserved) {
			ret = walk_note_reserved(w, name, off, j, e.raw, 0);
			if (ret < 0)
				return ret;
		}
		if (e.kind != QCOW2_BITMAP_SERIALIZED)
			continue;
		o.index = j;
		ret = walk_region(w, Q2E_REGION_BITMAP_DATA, e.offset,
				  img->cluster_size, o, 0);
		if (ret == 0)
			ret = walk_note_table(w, Q2E_REGION_BITMAP_DATA, &o,
					      e.offset, img->cluster_size);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int validate_bitmap_entry(struct walk *w, size_t n)
{
	struct q2e_image *img = w->img;
	const struct q2e_bitmap *b = &img->bitmaps[n];
	const struct qcow2_bitmap_entry *e = &b->entry;
	char name[32];
	int ret = 0;

	q2e_entry_symbol(Q2E_REGION_BITMAP_DIRECTORY, (uint32_t)n, name,
			 sizeof(name));
	if (e->type != QCOW2_BITMAP_TYPE_DIRTY)
		ret = walk_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_INVALID, b->offset + 16, name,
				   "type %u is not 1 (dirty tracking)", e->type);
	if (!ret && (e->granularity_bits < 9 || e->granularity_bits > 31))
		ret = walk_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_INVALID, b->offset + 17, name,
				   "granularity_bits %u is outside 9..31",
				   e->granularity_bits);
	if (!ret && (e->name_size == 0 || e->name_size > QCOW2_MAX_BITMAP_NAME))
		ret = walk_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_INVALID, b->offset + 18, name,
				   "name_size %u is outside 1..1023",
				   e->name_size);
	if (!ret && (e->flags & ~7U))
		ret = walk_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_RESERVED_BITS, b->offset + 12, name,
				   "reserved flags 0x%x are set", e->flags & ~7U);
	if (!ret && e->granularity_bits >= 9 && e->granularity_bits <= 31) {
		uint64_t bytes = qcow2_bitmap_data_bytes(img->hdr.size,
							 e->granularity_bits);
		uint64_t need = bytes / img->cluster_size +
				(bytes % img->cluster_size != 0);

		if (need != e->bitmap_table_size)
			ret = walk_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_INVALID, b->offset + 8,
					   name,
					   "bitmap_table_size %u, but the virtual size needs %" PRIu64,
					   e->bitmap_table_size, need);
	}
	return ret;
}

int walk_read_bitmaps(struct walk *w)
{
	struct q2e_image *img = w->img;
	const struct qcow2_bitmaps_ext *x = &img->bitmaps_ext;
	uint64_t off = x->bitmap_directory_offset;
	uint64_t size = x->bitmap_directory_size, pos = 0;
	uint8_t *dir = NULL;
	struct q2e_map seen = { 0 };	/* the first bitmap of each table */
	uint64_t got;
	int ret;

	if (!img->has_bitmaps_ext)
		return 0;
	if (!(img->hdr.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS)) {
		img->bitmaps_ignored = true;
		ret = walk_problem(w, Q2E_SEV_NOTE, Q2E_PROBLEM_STATE, 88, "ext_bitmaps",
				   "the bitmaps autoclear bit is clear: QEMU ignores the bitmaps");
		if (ret < 0)
			return ret;
	}
	if (x->nb_bitmaps == 0 || x->nb_bitmaps > QCOW2_MAX_BITMAPS)
		return walk_problem(w, Q2E_SEV_ERROR, Q2E_PROBLEM_INVALID, 0, "ext_bitmaps",
				    "nb_bitmaps %u is outside 1..65535: bitmaps not read",
				    x->nb_bitmaps);
	if (size > MAX_DIRECTORY_BYTES)
		return walk_problem(w, Q2E_SEV_ERROR, Q2E_PROBLEM_LIMIT, off, "bitmap_directory",
				    "bitmap directory of %" PRIu64
				    " bytes is above QEMU's 64 MiB limit: not read",
				    size);
	ret = walk_region(w, Q2E_REGION_BITMAP_DIRECTORY, off, size,
			  walk_image_owner, 0);
	if (ret == 0)
		ret = walk_note_misaligned(w, "bitmap_directory", off);
	if (ret == 0)
		ret = walk_note_truncated(w, "bitmap_directory", off, size);
	if (ret < 0 || off >= img->file_size)
		return ret;
	ret = walk_read_alloc(w, off, size, "the bitmap directory", &dir, &got);
	if (ret < 0)
		return ret;
	img->bitmaps = calloc(x->nb_bitmaps, sizeof(*img->bitmaps));
	if (!img->bitmaps) {
		free(dir);
		return q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
	}
	for (uint32_t i = 0; i < x->nb_bitmaps; i++) {
		struct q2e_bitmap *b = &img->bitmaps[i];
		const char *why = NULL;

		ret = qcow2_bitmap_entry_decode(dir + pos, (size_t)(got - pos),
						&b->entry, &why);
		if (ret < 0) {
			ret = walk_problem(w, Q2E_SEV_ERROR, Q2E_PROBLEM_INVALID, off + pos,
					   "bitmap_directory",
					   "entry %u at 0x%" PRIx64 ": %s", i,
					   off + pos, why);
			break;
		}
		b->offset = off + pos;
		b->name = walk_dup_string((const uint8_t *)b->entry.name,
					  b->entry.name_size);
		b->extra = malloc(b->entry.extra_data_size + 1);
		if (!b->name || !b->extra) {
			free(b->name);	/* not counted yet: close won't */
			free(b->extra);
			ret = q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
			break;
		}
		memcpy(b->extra, b->entry.extra, b->entry.extra_data_size);
		b->entry.extra = NULL;
		b->entry.name = NULL;
		img->nbitmaps++;
		pos += b->entry.entry_size;
		ret = validate_bitmap_entry(w, i);
		if (ret == 0)
			ret = read_bitmap_table(w, &seen, i);
		if (ret < 0)
			break;
	}
	q2e_map_free(&seen, NULL);
	free(dir);
	if (ret == 0 && pos != size)
		ret = walk_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_INVALID, off, "bitmap_directory",
				   "entries take %" PRIu64
				   " bytes, bitmap_directory_size says %" PRIu64,
				   pos, size);
	return ret;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Bitmap directory entries and bitmap table entries.
 *
 * Bitmap directory entry, padded to a multiple of 8 bytes:
 *   off  size  field
 *     0     8  bitmap_table_offset
 *     8     4  bitmap_table_size (entries)
 *    12     4  flags: bit 0 in_use, 1 auto, 2 extra_data_compatible
 *    16     1  type (1: dirty tracking bitmap)
 *    17     1  granularity_bits (9..31)
 *    18     2  name_size (1..1023)
 *    20     4  extra_data_size
 *    24     e  extra data
 *  24+e     n  name, UTF-8, not NUL-terminated
 *
 * Bitmap table entry, 64 bits:
 *   bit      0  with offset 0: the cluster's bits are all ones (1) or
 *               all zeros (0); reserved otherwise
 *   bits  1- 8  reserved, zero
 *   bits  9-55  offset of a serialized bitmap data cluster
 *   bits 56-63  reserved, zero
 */
#include <string.h>

#include "qcow2elf/error.h"
#include "qcow2elf/qcow2.h"

int qcow2_bitmap_entry_decode(const uint8_t *buf, size_t len,
			      struct qcow2_bitmap_entry *b, const char **why)
{
	memset(b, 0, sizeof(*b));
	if (len < QCOW2_BITMAP_ENTRY_FIXED_SIZE) {
		*why = "bitmap directory entry runs past the directory";
		return Q2E_ECORRUPT;
	}
	b->bitmap_table_offset = qcow2_be64(buf);
	b->bitmap_table_size = qcow2_be32(buf + 8);
	b->flags = qcow2_be32(buf + 12);
	b->type = buf[16];
	b->granularity_bits = buf[17];
	b->name_size = qcow2_be16(buf + 18);
	b->extra_data_size = qcow2_be32(buf + 20);

	size_t pos = QCOW2_BITMAP_ENTRY_FIXED_SIZE;
	if (b->extra_data_size > len - pos) {
		*why = "bitmap extra data runs past the directory";
		return Q2E_ECORRUPT;
	}
	b->extra = buf + pos;
	pos += b->extra_data_size;
	if (b->name_size > len - pos) {
		*why = "bitmap name runs past the directory";
		return Q2E_ECORRUPT;
	}
	b->name = (const char *)buf + pos;
	pos += b->name_size;
	b->entry_size = (pos + 7) & ~(size_t)7;
	if (b->entry_size > len)
		b->entry_size = len;
	return 0;
}

void qcow2_bitmap_table_entry_decode(uint64_t raw,
				     struct qcow2_bitmap_table_entry *e)
{
	e->raw = raw;
	e->offset = raw & QCOW2_OFFSET_MASK;
	e->reserved = raw & QCOW2_BITMAP_TABLE_RESERVED_MASK;
	if (e->offset) {
		e->kind = QCOW2_BITMAP_SERIALIZED;
		e->reserved |= raw & 1;
	} else {
		e->kind = (raw & 1) ? QCOW2_BITMAP_ALL_ONES
				    : QCOW2_BITMAP_ALL_ZEROS;
	}
}

uint64_t qcow2_bitmap_data_bytes(uint64_t virtual_size, unsigned gran_bits)
{
	if (gran_bits >= 64)
		return 0;
	uint64_t bits = (virtual_size >> gran_bits) +
			((virtual_size & ((1ULL << gran_bits) - 1)) != 0);
	return bits / 8 + (bits % 8 != 0);	/* bits + 7 may wrap */
}

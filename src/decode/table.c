/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * L1, L2 and refcount table entries.
 *
 * L1 entry, 64 bits:
 *   bits  0- 8  reserved, zero
 *   bits  9-55  offset of the L2 table (cluster aligned); 0: none
 *   bits 56-62  reserved, zero
 *   bit     63  COPIED: the L2 table's refcount is exactly 1
 *
 * Standard L2 entry, 64 bits:
 *   bit      0  all zeros (version 3; ignored with extended L2)
 *   bits  1- 8  reserved, zero
 *   bits  9-55  host cluster offset; 0 means unallocated, except that
 *               with an external data file and COPIED it maps offset 0
 *   bits 56-61  reserved, zero
 *   bit     62  0: standard cluster
 *   bit     63  COPIED: the data cluster's refcount is exactly 1
 *
 * Compressed L2 entry (bit 62 set), with x = 62 - (cluster_bits - 8):
 *   bits  0..x-1  host byte offset of the compressed data (unaligned)
 *   bits  x..61   number of additional 512-byte sectors
 *   compressed size = (sectors + 1) * 512 - (offset & 511)
 *
 * Extended L2 entry, 128 bits: the standard entry, then
 *   bits  0-31  subcluster n allocated
 *   bits 32-63  subcluster n reads as zeros
 *
 * Refcount table entry, 64 bits:
 *   bits  0- 8  reserved, zero
 *   bits  9-63  offset of the refcount block; 0: none
 *
 * Refcount block: cluster_size * 8 / refcount_bits entries of refcount_bits
 * = 2^refcount_order bits each, big-endian; widths below 8 bits are packed
 * with the first entry in the lowest bits of each byte.
 */
#include "qcow2elf/qcow2.h"

void qcow2_l1_entry_decode(uint64_t raw, struct qcow2_l1_entry *e)
{
	e->raw = raw;
	e->l2_offset = raw & QCOW2_OFFSET_MASK;
	e->copied = (raw & QCOW2_OFLAG_COPIED) != 0;
	e->reserved = raw & QCOW2_L1_RESERVED_MASK;
}

void qcow2_l2_entry_decode(uint64_t raw, uint64_t bitmap,
			   const struct qcow2_l2_layout *layout,
			   struct qcow2_l2_entry *e)
{
	e->raw = raw;
	e->bitmap = layout->extended ? bitmap : 0;
	e->copied = (raw & QCOW2_OFLAG_COPIED) != 0;
	e->compressed_size = 0;
	e->reserved = 0;

	if (raw & QCOW2_OFLAG_COMPRESSED) {
		unsigned csize_shift = 62 - (layout->cluster_bits - 8);
		uint64_t offset_mask = (1ULL << csize_shift) - 1;
		uint64_t csize_mask = (1ULL << (layout->cluster_bits - 8)) - 1;
		uint64_t sectors = ((raw >> csize_shift) & csize_mask) + 1;

		e->type = QCOW2_CLUSTER_COMPRESSED;
		e->host_offset = raw & offset_mask;
		e->compressed_size = sectors * 512 - (e->host_offset & 511);
		return;
	}

	e->host_offset = raw & QCOW2_OFFSET_MASK;
	e->reserved = raw & QCOW2_L2_RESERVED_MASK;
	if ((raw & QCOW2_OFLAG_ZERO) && !layout->extended) {
		e->type = e->host_offset ? QCOW2_CLUSTER_ZERO_ALLOC
					 : QCOW2_CLUSTER_ZERO_PLAIN;
	} else if (!e->host_offset) {
		e->type = layout->has_data_file && e->copied
				  ? QCOW2_CLUSTER_NORMAL
				  : QCOW2_CLUSTER_UNALLOCATED;
	} else {
		e->type = QCOW2_CLUSTER_NORMAL;
	}
	if (layout->extended)
		e->reserved |= raw & QCOW2_OFLAG_ZERO;
}

enum qcow2_subcluster_type
qcow2_l2_subcluster_type(const struct qcow2_l2_entry *e,
			 const struct qcow2_l2_layout *layout, unsigned sc)
{
	uint64_t alloc = 1ULL << sc, zero = 1ULL << (sc + 32);

	if (!layout->extended) {
		switch (e->type) {
		case QCOW2_CLUSTER_COMPRESSED:
			return QCOW2_SUBCLUSTER_COMPRESSED;
		case QCOW2_CLUSTER_ZERO_PLAIN:
			return QCOW2_SUBCLUSTER_ZERO_PLAIN;
		case QCOW2_CLUSTER_ZERO_ALLOC:
			return QCOW2_SUBCLUSTER_ZERO_ALLOC;
		case QCOW2_CLUSTER_NORMAL:
			return QCOW2_SUBCLUSTER_NORMAL;
		case QCOW2_CLUSTER_UNALLOCATED:
			return QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN;
		}
		return QCOW2_SUBCLUSTER_INVALID;
	}
	switch (e->type) {
	case QCOW2_CLUSTER_COMPRESSED:
		return QCOW2_SUBCLUSTER_COMPRESSED;
	case QCOW2_CLUSTER_NORMAL:
		if ((e->bitmap >> 32) & e->bitmap)
			return QCOW2_SUBCLUSTER_INVALID;
		if (e->bitmap & zero)
			return QCOW2_SUBCLUSTER_ZERO_ALLOC;
		if (e->bitmap & alloc)
			return QCOW2_SUBCLUSTER_NORMAL;
		return QCOW2_SUBCLUSTER_UNALLOCATED_ALLOC;
	case QCOW2_CLUSTER_UNALLOCATED:
		if (e->bitmap & 0xffffffffULL)
			return QCOW2_SUBCLUSTER_INVALID;
		if (e->bitmap & zero)
			return QCOW2_SUBCLUSTER_ZERO_PLAIN;
		return QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN;
	default:
		return QCOW2_SUBCLUSTER_INVALID;
	}
}

uint64_t qcow2_refcount_get(const uint8_t *block, size_t len,
			    unsigned refcount_order, uint64_t index)
{
	if (refcount_order > 6)
		return 0;	/* wider than 64 bits: not a valid width */

	unsigned bits = 1U << refcount_order;

	if (bits < 8) {
		unsigned per_byte = 8 / bits;
		uint64_t byte = index / per_byte;
		unsigned shift = (unsigned)(index % per_byte) * bits;

		if (byte >= len)
			return 0;
		return (block[byte] >> shift) & ((1U << bits) - 1);
	}

	uint64_t bytes = bits / 8, off, v = 0;

	/* index * bytes must not wrap around 2^64 */
	if (index >= len / bytes)
		return 0;
	off = index * bytes;
	for (uint64_t i = 0; i < bytes; i++)
		v = (v << 8) | block[off + i];
	return v;
}

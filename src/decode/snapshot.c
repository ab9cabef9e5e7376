/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Snapshot table entries.  Entries follow each other, each padded to a
 * multiple of 8 bytes.
 *
 *   off  size  field
 *     0     8  l1_table_offset
 *     8     4  l1_size (entries)
 *    12     2  id_str_size
 *    14     2  name_size
 *    16     4  date_sec
 *    20     4  date_nsec
 *    24     8  vm_clock_nsec
 *    32     4  vm_state_size (0 when the large one is used)
 *    36     4  extra_data_size
 *    40     e  extra data:
 *                 0  8  vm_state_size_large
 *                 8  8  disk_size (virtual size when the snapshot was taken)
 *                16  8  icount (-1: not recorded)
 *  40+e     i  id string, not NUL-terminated
 *  40+e+i   n  name, not NUL-terminated
 *               padding to a multiple of 8
 */
#include <string.h>

#include "qcow2elf/error.h"
#include "qcow2elf/qcow2.h"

int qcow2_snapshot_decode(const uint8_t *buf, size_t len,
			  struct qcow2_snapshot *s, const char **why)
{
	memset(s, 0, sizeof(*s));
	if (len < QCOW2_SNAPSHOT_FIXED_SIZE) {
		*why = "snapshot entry runs past the snapshot table";
		return Q2E_ECORRUPT;
	}
	s->l1_table_offset = qcow2_be64(buf);
	s->l1_size = qcow2_be32(buf + 8);
	s->id_str_size = qcow2_be16(buf + 12);
	s->name_size = qcow2_be16(buf + 14);
	s->date_sec = qcow2_be32(buf + 16);
	s->date_nsec = qcow2_be32(buf + 20);
	s->vm_clock_nsec = qcow2_be64(buf + 24);
	s->vm_state_size = qcow2_be32(buf + 32);
	s->extra_data_size = qcow2_be32(buf + 36);

	size_t pos = QCOW2_SNAPSHOT_FIXED_SIZE;
	if (s->extra_data_size > len - pos) {
		*why = "snapshot extra data runs past the snapshot table";
		return Q2E_ECORRUPT;
	}
	s->extra = buf + pos;
	if (s->extra_data_size >= 8) {
		s->has_vm_state_size_large = true;
		s->vm_state_size_large = qcow2_be64(s->extra);
	}
	if (s->extra_data_size >= 16) {
		s->has_disk_size = true;
		s->disk_size = qcow2_be64(s->extra + 8);
	}
	if (s->extra_data_size >= 24) {
		s->has_icount = true;
		s->icount = qcow2_be64(s->extra + 16);
	}
	pos += s->extra_data_size;

	if ((size_t)s->id_str_size + s->name_size > len - pos) {
		*why = "snapshot id or name runs past the snapshot table";
		return Q2E_ECORRUPT;
	}
	s->id_str = (const char *)buf + pos;
	pos += s->id_str_size;
	s->name = (const char *)buf + pos;
	pos += s->name_size;
	s->entry_size = (pos + 7) & ~(size_t)7;
	return 0;
}

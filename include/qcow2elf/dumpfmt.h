/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The parts of a qcow2elf dump that its reader and its writer agree on.
 *
 * A dump is an ELF64 ET_EXEC file of the host's byte order and machine.
 * Each metadata region is an SHF_ALLOC section named ".qcow2.*" whose
 * sh_addr is the region's offset in the image.  A PT_NOTE holds notes of
 * owner "QCOW2ELF", in the file's byte order:
 *
 *   Q2E_NT_IMAGE, desc:
 *     off  size  field
 *       0     8  size of the image file
 *       8     8  bytes the image file occupied on disk (st_blocks * 512)
 *      16     8  virtual size
 *      24     4  cluster size
 *      28     4  QCOW2 version
 *      32     4  flags: bit 0 written with --no-data
 *      36     4  reserved, zero
 *      40     n  the image file name as given, NUL-terminated
 *   Q2E_NT_TOOL, desc: "qcow2elf VERSION", NUL-terminated
 */
#ifndef QCOW2ELF_DUMPFMT_H
#define QCOW2ELF_DUMPFMT_H

#define Q2E_NOTE_OWNER "QCOW2ELF"
#define Q2E_NT_IMAGE 1
#define Q2E_NT_TOOL 2
#define Q2E_NOTE_IMAGE_FIXED 40
#define Q2E_NOTE_FLAG_NO_DATA 1U
#define Q2E_SECTION_PREFIX ".qcow2."

#endif

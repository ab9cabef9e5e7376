/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The parts of a qcow2elf dump that its reader and its writer agree on.
 *
 * A dump is an ELF64 ET_EXEC file of the host's byte order and machine.
 * Each metadata region is an SHF_ALLOC section named ".qcow2.*" whose
 * sh_addr is the region's offset in the image.  Bytes of the image that no
 * section holds read as zeros, as they do in an image restored from the
 * dump.
 *
 * What a reader needs without the image is in a PT_NOTE (section
 * .note.qcow2elf): one NT_VERSION note per fact, with an empty descriptor
 * and the fact as the owner string, "qcow2elf:KEY=VALUE".  That is the one
 * form of note from a non-GNU owner that eu-elflint accepts in executables,
 * it does not depend on byte order, and `readelf -n` shows it as text:
 *   qcow2elf:version=VERSION          the tool that wrote the dump
 *   qcow2elf:image=NAME               the image file name as given
 *   qcow2elf:file-size=N              size of the image file
 *   qcow2elf:metadata-preallocation=0|1
 *                                     whether QEMU 7.2 takes the image for
 *                                     one with preallocated metadata, from
 *                                     the file's allocation (what `map`
 *                                     needs of it; st_blocks itself is not
 *                                     kept, as it changes with writeback)
 *   qcow2elf:virtual-size=N
 *   qcow2elf:cluster-size=N
 *   qcow2elf:qcow2-version=N
 *   qcow2elf:no-data=0|1              written with --no-data (NOBITS)
 *   qcow2elf:redacted=WHAT            written with --redact (or from a
 *                                     dump that was): what was removed,
 *                                     a comma-separated list; absent
 *                                     otherwise
 *   qcow2elf:qemu-refuses=WHY         QEMU 7.2 would not open the image,
 *                                     and why (`info`'s qemu-refuses), for
 *                                     the gdb helpers; absent where it
 *                                     would (readers of the dump judge
 *                                     its metadata again)
 *
 * A region whose bytes are all zeros is an SHT_NOBITS section even without
 * --no-data: it reads as zeros.  Sections whose ranges overlap (snapshot
 * L1 tables at one offset, in a damaged or hostile image) share their file
 * bytes: the file holds each byte of the image once.
 *
 * Section .qcow2elf.extents (SHT_PROGBITS, not allocated) lists the data
 * extents of the image file, so that `map` tells holes from data as it
 * does on the image: pairs of 64-bit (offset, length) in the file's byte
 * order, sorted.  An empty extent alone means the file was all holes; no
 * section means nothing is known, and all of the file counts as data.
 *
 * Section .qcow2elf.regions (SHT_PROGBITS, not allocated) lists the ranges
 * of the image the ".qcow2.*" sections held when the dump was written, in
 * the same form, sorted.  A range no section holds any more was removed
 * by a tool that trims files (objcopy -R, strip): readers report its
 * structure as missing, as they report one past the end of a truncated
 * image, instead of reading zeros there.
 *
 * The PT_NOTE segment's p_vaddr is Q2E_NOTE_VADDR, beyond any image offset
 * (QCOW2 addresses 2^56 bytes): at 0 it would cover the header's section,
 * and objcopy, which assigns allocated sections to segments by address,
 * would turn that section into a note.
 */
#ifndef QCOW2ELF_DUMPFMT_H
#define QCOW2ELF_DUMPFMT_H

#define Q2E_NOTE_PREFIX "qcow2elf:"
#define Q2E_NT_VERSION 1
#define Q2E_SECTION_PREFIX ".qcow2."
#define Q2E_EXTENTS_SECTION ".qcow2elf.extents"
#define Q2E_REGIONS_SECTION ".qcow2elf.regions"
#define Q2E_NOTE_VADDR 0xff00000000000000ULL

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What an input file is: a QCOW2 image, or a dump of one written by
 * `qcow2elf dump`, and the facts a dump records about its image.  Shared by
 * the byte source (which reads them) and the model (which hands them to
 * the views); only the model does I/O.
 */
#ifndef QCOW2ELF_INPUT_H
#define QCOW2ELF_INPUT_H

#include <stdbool.h>
#include <stdint.h>

enum q2e_source_kind {
	Q2E_SOURCE_FILE,
	Q2E_SOURCE_DUMP,
};

/* A range of the image file that holds data (not a hole). */
struct q2e_extent {
	uint64_t offset;
	uint64_t length;
};

/* One of many reads asked at once of what the page cache holds: LEN
 * bytes at OFF into BUF; OK when all of them were there. */
struct q2e_cached_read {
	uint64_t off;
	uint8_t *buf;
	uint32_t len;
	bool ok;
};

/* What a dump records about the image it came from (its PT_NOTE). */
struct q2e_dump_meta {
	char *image_name;	/* as given to `dump`, not made absolute */
	uint64_t file_size;	/* size of the image file */
	int metadata_preallocation; /* QEMU's guess about the file: 0 or 1,
				       -1 if not recorded */
	uint64_t virtual_size;
	uint32_t cluster_size;
	uint32_t version;
	char *tool_version;
	bool no_data;		/* written with --no-data: sections are NOBITS */
	char *redacted;		/* written with --redact: what was removed,
				   else NULL */
	/* Ranges of the image that the dump was written with sections for
	 * and no longer has (objcopy -R, strip...), sorted: what the model
	 * reports as missing, as past the end of a truncated image. */
	struct q2e_extent *missing;
	size_t nmissing;
};

#endif

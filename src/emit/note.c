/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What a dump records of the image it came from (dumpfmt.h): the facts
 * of its note, as NT_VERSION notes with empty descriptors, and the ranges
 * its region sections hold. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/dumpfmt.h"
#include "emit.h"
#include "seqwrite.h"

#define MAX_FACTS 12

static size_t align4(size_t v)
{
	return (v + 3) & ~(size_t)3;
}

int q2e_dump_note(const struct q2e_image *img,
		  const struct q2e_dump_options *opts, const char *image_name,
		  bool prealloc, uint8_t **note, size_t *size,
		  struct q2e_error *err)
{
	const struct q2e_dump_meta *dm = q2e_image_dump_meta(img);
	/* A redacted dump dumped again is still redacted. */
	const char *redacted = opts->redact ? Q2E_REDACTED_WHAT
			       : dm && dm->redacted ? dm->redacted : NULL;
	const char *refusal = q2e_qemu_plain_open_refusal(img);
	char *facts[MAX_FACTS];
	size_t n = 0;
	int ret = 0;

	*note = NULL;
	*size = 0;
	if (!image_name)
		image_name = dm ? dm->image_name : img->path;

#define FACT(...)                                                          \
	do {                                                               \
		if (asprintf(&facts[n], Q2E_NOTE_PREFIX __VA_ARGS__) < 0)  \
			facts[n] = NULL;                                   \
		n++;                                                       \
	} while (0)
	FACT("version=%s", Q2E_VERSION);
	FACT("image=%s", image_name);
	FACT("file-size=%" PRIu64, img->file_size);
	FACT("metadata-preallocation=%d", prealloc ? 1 : 0);
	FACT("virtual-size=%" PRIu64, img->hdr.size);
	FACT("cluster-size=%" PRIu64, img->cluster_size);
	FACT("qcow2-version=%u", img->hdr.version);
	FACT("no-data=%d", opts->no_data ? 1 : 0);
	if (redacted)
		FACT("redacted=%s", redacted);
	/* As info gives it, for the gdb helpers: qemu-img map fails. */
	if (refusal)
		FACT("qemu-refuses=%s", refusal);
#undef FACT
	for (size_t i = 0; i < n; i++) {
		if (!facts[i])
			ret = q2e_error_set(err, Q2E_ENOMEM, "out of memory");
		else
			*size += 12 + align4(strlen(facts[i]) + 1);
	}
	if (ret == 0 && !(*note = calloc(1, *size)))
		ret = q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	for (size_t i = 0, at = 0; ret == 0 && i < n; i++) {
		uint32_t hdr[3] = { (uint32_t)strlen(facts[i]) + 1, 0,
				    Q2E_NT_VERSION };

		memcpy(*note + at, hdr, 12);
		memcpy(*note + at + 12, facts[i], hdr[0]);
		at += 12 + align4(hdr[0]);
	}
	for (size_t i = 0; i < n; i++)
		free(facts[i]);
	return ret;
}

/* Adds [START, END) to the union being made in *LAST; a range that
 * starts past it closes *LAST (written to OUT if not NULL). */
static void held_add(struct q2e_extent *last, size_t *n, uint64_t start,
		     uint64_t end, struct q2e_seqwriter *out)
{
	if (*n && start <= last->offset + last->length) {
		if (end > last->offset + last->length)
			last->length = end - last->offset;
		return;
	}
	if (*n && out)
		q2e_seqwriter_put(out, last, sizeof(*last));
	*last = (struct q2e_extent){ start, end - start };
	(*n)++;
}

/*
 * The union of the ranges the region sections hold, sorted (the model's
 * regions come sorted by offset): their count, and each written to OUT if
 * not NULL.  Made again for writing rather than kept.  A dump of a dump
 * that lacks sections lists what that one lacked too, so that its readers
 * still report those structures as missing (fuzz_dump found the dump of a
 * trimmed dump reading as whole: found/oracle-redump-removed-section).
 */
size_t q2e_dump_held_ranges(const struct q2e_image *img,
			    struct q2e_seqwriter *out)
{
	const struct q2e_dump_meta *meta = q2e_image_dump_meta(img);
	const struct q2e_extent *miss = meta ? meta->missing : NULL;
	size_t nmiss = meta ? meta->nmissing : 0, m = 0, n = 0;
	struct q2e_extent last = { 0 };

	for (size_t i = 0; i < img->nregions || m < nmiss;) {
		const struct q2e_region *r = i < img->nregions
						     ? &img->regions[i] : NULL;

		if (r && !r->avail) {
			i++;
		} else if (m < nmiss && (!r || miss[m].offset < r->offset)) {
			held_add(&last, &n, miss[m].offset,
				 miss[m].offset + miss[m].length, out);
			m++;
		} else {
			held_add(&last, &n, r->offset, r->offset + r->avail,
				 out);
			i++;
		}
	}
	if (n && out)
		q2e_seqwriter_put(out, &last, sizeof(last));
	return n;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `map`: the guest address space, range by range, as `qemu-img map` walks
 * it: block status in chunks of at most 1 GiB, adjacent ranges merged when
 * everything but their length agrees and their host offsets continue.
 */
#include <inttypes.h>
#include <string.h>

#include "qcow2elf/views.h"

#define MAP_CHUNK (1ULL << 30)

static bool mergeable(const struct q2e_block_status *a,
		      const struct q2e_block_status *b)
{
	if (a->zero != b->zero || a->data != b->data ||
	    a->depth != b->depth || a->present != b->present ||
	    a->has_offset != b->has_offset || !a->file != !b->file)
		return false;
	if (a->file && strcmp(a->file, b->file) != 0)
		return false;
	return !a->has_offset || a->offset + a->length == b->offset;
}

static const char *human_kind(const struct q2e_block_status *e)
{
	if (e->data && !e->zero)
		return e->has_offset ? "data" : "data (no offset)";
	if (e->zero && e->present)
		return "zero";
	if (e->zero)
		return "unallocated";
	return e->data ? "data" : "unallocated";
}

static void print_entry(FILE *fp, enum q2e_format format,
			const struct q2e_block_status *e, bool last)
{
	if (format == Q2E_FORMAT_JSON) {
		fprintf(fp,
			"{ \"start\": %" PRIu64 ", \"length\": %" PRIu64
			", \"depth\": %u, \"present\": %s, \"zero\": %s, \"data\": %s",
			e->start, e->length, e->depth,
			e->present ? "true" : "false",
			e->zero ? "true" : "false", e->data ? "true" : "false");
		if (e->has_offset)
			fprintf(fp, ", \"offset\": %" PRIu64, e->offset);
		fputs(last ? "}" : "},\n", fp);
		return;
	}
	/* Each column is wide enough for a 64-bit value and its space. */
	fprintf(fp, "%#-18" PRIx64 " %#-18" PRIx64 " %-5u %-16s ", e->start,
		e->length, e->depth, human_kind(e));
	if (e->has_offset)
		fprintf(fp, "%#-18" PRIx64 " %s\n", e->offset, e->file);
	else
		fputs("-\n", fp);
}

int q2e_view_map(struct q2e_image *img, FILE *fp, enum q2e_format format,
		 struct q2e_error *err)
{
	struct q2e_block_status curr = { 0 }, next;
	struct q2e_chain *chain;
	uint64_t end = img->hdr.size, uniform;
	int ret;

	ret = q2e_chain_open(img, &chain, err);
	if (ret < 0)
		return ret;
	if (format == Q2E_FORMAT_JSON)
		fputc('[', fp);
	else
		fprintf(fp, "%-18s %-18s %-5s %-16s %-18s %s\n", "Offset",
			"Length", "Depth", "Kind", "Mapped to", "File");
	/* qemu-img asks 1 GiB at a time and merges what agrees; where
	 * nothing can differ any more, one question does (a virtual size of
	 * 2^62 would otherwise take 2^32 of them). */
	uniform = q2e_chain_uniform_from(chain);
	for (uint64_t off = 0; off < end; off += next.length) {
		uint64_t n = end - off < MAP_CHUNK ? end - off : MAP_CHUNK;

		if (off >= uniform)
			n = end - off;

		ret = q2e_chain_block_status(chain, off, n, &next, err);
		if (ret < 0)
			goto out;
		if (curr.length && mergeable(&curr, &next)) {
			curr.length += next.length;
			continue;
		}
		if (curr.length)
			print_entry(fp, format, &curr, false);
		curr = next;
	}
	if (curr.length)
		print_entry(fp, format, &curr, true);
	if (format == Q2E_FORMAT_JSON)
		fputs("]\n", fp);
	if (fflush(fp) != 0 || ferror(fp))
		ret = q2e_error_set(err, Q2E_EOUTPUT, "cannot write the map");
out:
	q2e_chain_close(chain);
	return ret;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `map`: the guest address space, range by range, as `qemu-img map` walks
 * it: block status in chunks of at most 1 GiB, adjacent ranges merged when
 * everything but their length agrees and their host offsets continue.
 */
#include <string.h>

#include "qcow2elf/model.h"
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

/* Each column is wide enough for a 64-bit value in hex. */
static const struct q2e_out_column human_columns[] = {
	{ "Offset", 18 }, { "Length", 18 }, { "Depth", 5 },
	{ "Kind", 16 },	  { "Mapped to", 18 }, { "File", 0 },
};

/*
 * One range.  JSON has qemu-img map's keys in its order; people get the
 * flags as one kind and the file name: the one choice by format here.
 */
static void render_range(struct q2e_out *o, const struct q2e_block_status *e,
			 const char *kind)
{
	q2e_out_object(o, NULL);
	q2e_out_hex(o, "start", e->start);
	q2e_out_hex(o, "length", e->length);
	q2e_out_uint(o, "depth", e->depth);
	if (q2e_out_format(o) == Q2E_FORMAT_JSON) {
		q2e_out_bool(o, "present", e->present);
		q2e_out_bool(o, "zero", e->zero);
		q2e_out_bool(o, "data", e->data);
		if (e->has_offset)
			q2e_out_hex(o, "offset", e->offset);
	} else {
		q2e_out_str(o, "kind", kind ? kind : human_kind(e));
		if (e->has_offset) {
			q2e_out_hex(o, "offset", e->offset);
			q2e_out_str(o, "file", e->file);
		} else {
			q2e_out_str(o, "offset", "-");
		}
	}
	q2e_out_end(o);
}

/*
 * Data that QEMU gives no offset for, which qemu-img map refuses to list in
 * its human form: compressed clusters (each at its own host byte offset)
 * and encrypted ones (at their host offsets, in runs where those continue).
 * Only people get them: JSON stays qemu-img's.
 */
static int render_hidden(struct q2e_out *o, struct q2e_chain *chain,
			 const struct q2e_block_status *e,
			 struct q2e_error *err)
{
	struct q2e_layer *l = &chain->layers[e->depth];
	struct q2e_block_status run = { 0 };
	const char *run_kind = NULL;
	uint64_t end = e->start + e->length;

	if (l->format != Q2E_LAYER_QCOW2) {
		render_range(o, e, NULL);
		return 0;
	}
	for (uint64_t pos = e->start; pos < end;) {
		uint64_t cs = l->img->cluster_size;
		uint64_t next = (pos | (cs - 1)) + 1;
		struct q2e_block_status piece = *e;
		struct qcow2_l2_entry le;
		const char *kind = NULL;
		int ret = q2e_image_l2_lookup(l->cache, pos, &le, err);

		if (ret < 0)
			return ret;
		piece.start = pos;
		piece.length = (next < end ? next : end) - pos;
		if (le.type == QCOW2_CLUSTER_COMPRESSED) {
			kind = "compressed";
			piece.has_offset = true;
			piece.offset = le.host_offset;
			piece.file = l->image_shown;
		} else if (le.type == QCOW2_CLUSTER_NORMAL) {
			kind = "encrypted";
			piece.has_offset = true;
			piece.offset = le.host_offset + (pos & (cs - 1));
			piece.file = l->data_shown;
		}
		if (run.length && run_kind == kind && kind &&
		    strcmp(kind, "encrypted") == 0 &&
		    run.offset + run.length == piece.offset) {
			run.length += piece.length;
		} else {
			if (run.length)
				render_range(o, &run, run_kind);
			run = piece;
			run_kind = kind;
		}
		pos += piece.length;
	}
	if (run.length)
		render_range(o, &run, run_kind);
	return 0;
}

static int render(struct q2e_out *o, struct q2e_chain *chain,
		  const struct q2e_block_status *e, struct q2e_error *err)
{
	if (q2e_out_format(o) != Q2E_FORMAT_JSON && e->data && !e->zero &&
	    !e->has_offset && e->length)
		return render_hidden(o, chain, e, err);
	render_range(o, e, NULL);
	return 0;
}

/*
 * NEXT answered a whole question of MAP_CHUNK from OFF: how many whole
 * questions from OFF would be answered alike, asked as one question up to
 * TO.  Each of them starts inside the run and ends before its end, so it
 * gets the same answer, which map merges; the one that reaches the run's
 * end is asked as qemu-img asks it.  Where the long question fails (an
 * invalid extended entry later in a table fails the whole question), the
 * questions are asked one by one.  131,072 L1 entries naming one table of
 * zero clusters were 32 million questions for two lines (map 13 s).
 */
static uint64_t alike_questions(struct q2e_chain *chain, uint64_t off,
				uint64_t to, const struct q2e_block_status *next)
{
	struct q2e_block_status far;
	struct q2e_error ignored = { 0 };

	if (to - off <= 2 * MAP_CHUNK ||
	    q2e_chain_block_status(chain, off, to - off, &far, &ignored) < 0 ||
	    far.zero != next->zero || far.data != next->data ||
	    far.present != next->present || far.depth != next->depth ||
	    far.has_offset != next->has_offset ||
	    (far.has_offset && far.offset != next->offset))
		return 1;
	return far.length / MAP_CHUNK ? far.length / MAP_CHUNK : 1;
}

int q2e_view_map(struct q2e_image *img, struct q2e_out *o,
		 struct q2e_error *err)
{
	return q2e_view_map_range(img, o, 0, UINT64_MAX, err);
}

int q2e_view_map_range(struct q2e_image *img, struct q2e_out *o,
		       uint64_t start, uint64_t max_length,
		       struct q2e_error *err)
{
	struct q2e_block_status curr = { .start = start }, next;
	struct q2e_chain *chain;
	uint64_t end = q2e_image_virtual_size(img), uniform;
	const char *refusal = q2e_qemu_plain_open_refusal(img);
	int ret;

	/* img_map(): MIN(start + max_length, length), and nothing from a
	 * start past it, or where start + max_length overflows its int64_t
	 * (undefined in C; negative, so nothing, in qemu-img 7.2 on x86). */
	if (start >= end ||
	    (max_length <= INT64_MAX && max_length > INT64_MAX - start))
		end = start;
	else if (max_length < end - start)
		end = start + max_length;

	/* qemu-img map refuses what QEMU will not open: tables QEMU would
	 * not read are no map (an unknown incompatible feature may change
	 * what an entry means). */
	if (refusal)
		return q2e_error_set(err, Q2E_EUNSUPPORTED,
				     "'%s': qemu-img would not open it: %s (info and dump show its structures)",
				     img->path, refusal);
	ret = q2e_chain_open(img, &chain, err);
	if (ret < 0)
		return ret;
	q2e_out_set_json_style(o, Q2E_JSON_LINES);
	q2e_out_table(o, NULL, human_columns,
		      sizeof(human_columns) / sizeof(human_columns[0]));
	/* qemu-img asks 1 GiB at a time and merges what agrees; where
	 * nothing can differ any more, one question does (a virtual size of
	 * 2^62 would otherwise take 2^32 of them). */
	uniform = q2e_chain_uniform_from(chain);
	for (uint64_t off = start; off < end; off += next.length) {
		uint64_t n = end - off < MAP_CHUNK ? end - off : MAP_CHUNK;

		if (off >= uniform)
			n = end - off;

		ret = q2e_chain_block_status(chain, off, n, &next, err);
		if (ret < 0)
			goto out;
		if (next.length == MAP_CHUNK && off + n < uniform)
			next.length *= alike_questions(chain, off, uniform, &next);
		if (curr.length && mergeable(&curr, &next)) {
			curr.length += next.length;
			continue;
		}
		if (curr.length && (ret = render(o, chain, &curr, err)) < 0)
			goto out;
		if (curr.length)
			q2e_out_more(o);
		curr = next;
	}
	/* An empty range still has its one, empty, line in qemu-img map. */
	if (curr.length || end == start)
		ret = render(o, chain, &curr, err);
	q2e_out_end(o);
out:
	q2e_chain_close(chain);
	return ret;
}

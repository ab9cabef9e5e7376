/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `check`: the refcount rebuild of QEMU 7.2's qcow2_check_refcounts()
 * (block/qcow2-refcount.c), done over the model.
 *
 * QEMU walks the L1 tables in index order and reads each L2 table when an
 * L1 entry reaches it.  Here every table is read once, in offset order:
 *   1. the L1 entries (in memory) count their L2 tables;
 *   2. the L2 regions, by offset, count their data clusters once per L1
 *      entry that reaches them, and the active ones the allocation counters;
 *   3. the snapshot table, refcount table, LUKS area, bitmaps and refcount
 *      blocks are counted;
 *   4. the refcount blocks, by refcount table index, are compared with the
 *      counts, cluster by cluster;
 *   5. COPIED is checked against the stored refcounts; active L2 tables are
 *      read a second time only if the flags recorded in step 2 show that
 *      some entry is wrong.
 * Lines are keyed with QEMU's order (stage, L1 index, L2 index) and merged
 * at the end, so they come out as qemu-img prints them.  check_impl.h says
 * which file does what.
 */
#include <stdlib.h>
#include <string.h>

#include "check/check_impl.h"
#include "qcow2elf/array.h"

int checker_init(struct checker *c, struct q2e_image *img,
		 const struct q2e_check_options *opts, struct q2e_error *err)
{
	*c = (struct checker){
		.img = img,
		.opts = opts,
		.err = err,
		.cs = img->cluster_size,
		.cbits = img->hdr.cluster_bits,
		.data_file = img->l2.has_data_file,
		.res = calloc(1, sizeof(struct check_result_impl)),
		.buf = malloc((size_t)img->cluster_size),
		.mult = 1,
	};
	if (img->cluster_size < SPAN_MAX && !(c->span = malloc(SPAN_MAX))) {
		checker_release(c);
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	}
	c->refcount_max = img->refcount_bits >= 64 ? UINT64_MAX
			  : (1ULL << img->refcount_bits) - 1;
	if (!c->res || !c->buf) {
		checker_release(c);
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	}
	c->res->filename = img->path;
	return 0;
}

/* Frees what the stages built, and the result unless it was handed out. */
void checker_release(struct checker *c)
{
	free_counts(c);
	free(c->skip_snapshot);
	free(c->next_member);
	free(c->group_n);
	free(c->refblock);
	free(c->agrees);
	free(c->reach);
	free(c->runs);
	q2e_read_ahead_free(c->tables);
	q2e_read_ahead_free(c->blocks);
	free(c->meta);
	free(c->buf);
	free(c->span);
	free(c->overlap);
	free(c->cluster0);
	free(c->rec.k);
	free(c->table_spans.v);
	free(c->cluster0_spans.v);
	free(c->kept_slot);
	free(c->kept_bits);
	free(c->copy_of);
	while (c->spare_texts) {
		struct text_chunk *t = c->spare_texts;

		c->spare_texts = t->next;
		free(t);
	}
	q2e_check_result_free(c->res);
	*c = (struct checker){ 0 };
}

/* Stage 0: what qemu-img cannot see, and whether it would check at all. */
static int before_counting(struct checker *c)
{
	struct q2e_image *img = c->img;
	const char *why;
	int ret = model_findings(c);

	if (ret == 0)
		ret = overlap_findings(c);
	if (ret == 0)
		ret = shared_findings(c);
	if (ret == 0)
		ret = missing_file_findings(c);
	if (ret < 0)
		return ret;
	/* Whatever QEMU refuses to open, qemu-img check cannot check. */
	why = q2e_qemu_open_refusal(img);
	if (!why)
		why = q2e_qemu_check_refusal(img);
	if (why)
		return give_up(c, &c->res->check_errors, why);
	c->file_clusters = (img->file_size + c->cs - 1) >> c->cbits;
	/* One byte a cluster of the file: made at once only where the file
	 * holds at least as many bytes (not for a file of holes). */
	c->prefault = c->file_clusters <= q2e_image_allocated(img);
	ret = grow_counts(c, c->file_clusters);
	c->prefault = false;
	if (ret == 0)
		ret = build_meta_ranges(c);
	if (ret == 0)
		ret = index_refblocks(c);
	for (size_t i = 0; i < img->nregions; i++)
		if (img->regions[i].kind == Q2E_REGION_L2 ||
		    img->regions[i].kind == Q2E_REGION_REFCOUNT_BLOCK)
			c->total += img->regions[i].size;
	return ret;
}

/* Stages 1 to 3: every reference, counted. */
static int count_references(struct checker *c)
{
	struct q2e_image *img = c->img;
	const struct qcow2_header *h = &img->hdr;
	int ret;

	set_key(c, (uint64_t)ST_HEADER << 32, 0, 0);
	ret = inc_refs(c, 0, c->cs);
	if (ret == 0)
		ret = check_l1(c, ST_ACTIVE, 0, h->l1_table_offset, h->l1_size,
			       img->l1, img->nl1);
	if (ret == 0)
		ret = check_snapshots(c);
	if (ret == 0)
		ret = check_l2_regions(c);
	if (ret < 0)
		return ret;
	set_key(c, (uint64_t)ST_SNAPSHOT_TABLE << 32, 0, 0);
	if (h->nb_snapshots)
		ret = inc_refs(c, h->snapshots_offset, img->snapshot_table_size);
	set_key(c, (uint64_t)ST_REFTABLE << 32, 0, 0);
	if (ret == 0)
		ret = inc_refs(c, h->refcount_table_offset,
			       h->refcount_table_clusters * c->cs);
	set_key(c, (uint64_t)ST_CRYPTO << 32, 0, 0);
	if (ret == 0 && img->has_crypto_ext && img->crypto_ext.length)
		ret = inc_refs(c, img->crypto_ext.offset,
			       img->crypto_ext.length);
	if (ret == 0)
		ret = check_bitmaps(c);
	return ret;
}

static int run(struct checker *c)
{
	struct q2e_check_result *res = c->res;
	const struct qcow2_header *h = &c->img->hdr;
	uint64_t highest;
	int ret;

	res->total_clusters = ((h->size & ~511ULL) + c->cs - 1) >> c->cbits;
	ret = before_counting(c);
	if (ret < 0 || res->incomplete)
		return ret;
	ret = count_references(c);
	if (ret < 0 || res->incomplete)
		return ret;
	ret = check_refblocks(c);
	if (ret == 0)
		ret = compare_refcounts(c, &highest);
	if (ret == 0)
		ret = check_copied(c);
	if (ret < 0)
		return ret;
	res->image_end_offset = (highest + 1) * c->cs;
	return 0;
}

static bool line_less(const struct q2e_check_line *a,
		      const struct q2e_check_line *b)
{
	for (int i = 0; i < 3; i++)
		if (a->key[i] != b->key[i])
			return a->key[i] < b->key[i];
	return a->seq < b->seq;
}

/* The end of the ascending run of [from, n) that starts at FROM. */
static size_t run_end(const struct q2e_check_line *v, size_t from, size_t n)
{
	size_t i = from + 1;

	while (i < n && !line_less(&v[i], &v[i - 1]))
		i++;
	return i;
}

/*
 * The stages write their lines mostly in order already (a stage's lines
 * in key order, the stages one after another, a few interleaved), so a
 * merge of the ascending runs they leave costs a pass or two where
 * qsort() compared every line log n times: on a header claiming 65,536
 * snapshots, half an execution of the fuzz target.  Keys with seq are
 * unique, so the order is qsort()'s.
 */
static int sort_lines(struct q2e_check_result *res, struct q2e_error *err)
{
	struct q2e_check_line *src = res->lines, *dst, *tmp;
	size_t n = res->nlines;

	if (n < 2 || run_end(src, 0, n) == n)
		return 0;
	tmp = malloc(n * sizeof(*tmp));
	if (!tmp)
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	dst = tmp;
	for (;;) {
		struct q2e_check_line *t;
		size_t a = 0, out = 0, runs = 0;

		while (a < n) {
			size_t b = run_end(src, a, n);
			size_t c = b < n ? run_end(src, b, n) : n;
			size_t i = a, j = b;

			while (i < b && j < c)
				dst[out++] = line_less(&src[j], &src[i])
					     ? src[j++] : src[i++];
			while (i < b)
				dst[out++] = src[i++];
			while (j < c)
				dst[out++] = src[j++];
			a = c;
			runs++;
		}
		t = src;
		src = dst;
		dst = t;
		if (runs == 1)
			break;
	}
	if (src != res->lines)
		memcpy(res->lines, src, n * sizeof(*src));
	free(tmp);
	return 0;
}

int q2e_check_run(struct q2e_image *img, const struct q2e_check_options *opts,
		  struct q2e_check_result **out, struct q2e_error *err)
{
	struct checker c;
	int ret;

	*out = NULL;
	ret = checker_init(&c, img, opts, err);
	if (ret < 0)
		return ret;
	ret = run(&c);
	if (ret == 0)
		ret = close_data_runs(&c);
	if (ret == 0)
		ret = overflow_summaries(&c);
	if (ret == 0)
		ret = sort_lines(c.res, err);
	if (ret == 0 && ((struct check_result_impl *)c.res)->ncompares)
		keep_counts(&c, true);
	if (ret == 0) {
		*out = c.res;
		c.res = NULL;
	}
	checker_release(&c);
	return ret;
}

void q2e_check_result_free(struct q2e_check_result *res)
{
	/* The result is the first member of its check_result_impl. */
	struct check_result_impl *impl = (struct check_result_impl *)res;
	struct text_chunk *t, *next;
	struct block_copy *b, *b_next;

	if (!res)
		return;
	for (t = impl->texts; t; t = next) {
		next = t->next;
		free(t);
	}
	for (b = impl->copies; b; b = b_next) {
		b_next = b->next;
		free(b);
	}
	free(impl->compares);
	free(impl->echoes);
	if (impl->counts_owned)
		free_count_arrays(impl->counts, impl->counts_cap, &impl->big);
	free(res->lines);
	free(res->findings);	/* their texts were in the chunks */
	free(res->snapshot_leader);
	free(res->incomplete);
	free(res->unopenable);
	free(res);
}

int q2e_check_exit_status(const struct q2e_check_result *res)
{
	if (res->incomplete || res->check_errors || res->unopenable)
		return Q2E_EXIT_CHECK_INCOMPLETE;
	if (res->corruptions || res->overlaps)
		return Q2E_EXIT_CHECK_CORRUPT;
	if (res->leaks)
		return Q2E_EXIT_CHECK_LEAKS;
	return Q2E_EXIT_CHECK_CLEAN;
}

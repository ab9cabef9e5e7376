/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `check` output: qemu-img check's report (img_check() and
 * dump_human_image_check() in qemu-img.c), the findings, and the -M
 * "viscera" object in the shape of QEMU's proposed `qemu-img check -M`.
 *
 * qemu-img prints its JSON from a QDict, so its keys come in the order of
 * their hash buckets, not of the ImageCheck fields; that order is kept here
 * so that the output can be compared with diff.  Keys qemu-img leaves out
 * when zero are left out too.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/array.h"
#include "qcow2elf/check.h"

/* Owners of a structure a human finding names, at most. */
#define HUMAN_OWNERS 8

static const char *finding_type_name(enum q2e_finding_type t)
{
	switch (t) {
	case Q2E_FINDING_OVERLAP:
		return "overlap";
	case Q2E_FINDING_SHARED:
		return "shared-table";
	case Q2E_FINDING_DATA_IN_METADATA:
		return "data-in-metadata";
	case Q2E_FINDING_PAST_EOF:
		return "past-end-of-file";
	case Q2E_FINDING_MISALIGNED:
		return "misaligned";
	case Q2E_FINDING_RESERVED_BITS:
		return "reserved-bits";
	case Q2E_FINDING_SNAPSHOT:
		return "snapshot-entry";
	case Q2E_FINDING_BITMAP:
		return "bitmap-entry";
	case Q2E_FINDING_MISSING_FILE:
		return "missing-file";
	case Q2E_FINDING_OTHER:
		break;
	}
	return "image";
}

static void location(struct q2e_out *o, const char *key, uint64_t offset,
		     uint64_t size)
{
	q2e_out_object(o, key);
	q2e_out_hex(o, "offset", offset);
	q2e_out_uint(o, "size", size);
	q2e_out_end(o);
}

/*
 * Owners listed for a structure in a finding, at most: a table that 2,048
 * L1 entries share is in each of its entries' findings, and listing every
 * owner in each made 170 MB of JSON from a 256 KB image.  owner-count says
 * how many there are; the viscera list them once.
 */
#define MAX_LISTED_OWNERS 64

static void ref_out(struct q2e_out *o, const struct q2e_image *img,
		    const struct q2e_finding_ref *ref)
{
	char sym[96];

	q2e_out_object(o, NULL);
	if (ref->region) {
		if (q2e_region_symbol(img, ref->region, 0, sym, sizeof(sym)) == 0)
			q2e_out_str(o, "name", sym);
		q2e_out_str(o, "kind", q2e_region_kind_name(ref->region->kind));
	} else {
		q2e_out_str(o, "name", ref->owner);
		q2e_out_str(o, "kind", ref->kind);
	}
	q2e_out_hex(o, "offset", ref->offset);
	q2e_out_uint(o, "size", ref->size);
	if (ref->region) {
		uint32_t n = ref->region->nowners;

		q2e_out_uint(o, "owner-count", n);
		q2e_out_array(o, "owners");
		for (uint32_t k = 0; k < n && k < MAX_LISTED_OWNERS; k++)
			if (q2e_region_symbol(img, ref->region, k, sym,
					      sizeof(sym)) == 0)
				q2e_out_str(o, NULL, sym);
	} else {
		q2e_out_uint(o, "owner-count", ref->owned ? 1 : 0);
		q2e_out_array(o, "owners");
		if (ref->owned)
			q2e_out_str(o, NULL, ref->owner);
	}
	q2e_out_end(o);
	q2e_out_end(o);
}

static void findings_json(struct q2e_out *o, const struct q2e_check_result *res,
			  const struct q2e_image *img)
{
	q2e_out_array(o, "findings");
	for (size_t i = 0; i < res->nfindings; i++) {
		const struct q2e_finding *f = &res->findings[i];

		q2e_out_object(o, NULL);
		q2e_out_str(o, "type", finding_type_name(f->type));
		q2e_out_str(o, "severity", q2e_severity_name(f->severity));
		if (f->structure)
			q2e_out_str(o, "structure", f->structure);
		q2e_out_hex(o, "offset", f->offset);
		if (f->has_entry_offset)
			q2e_out_hex(o, "entry-offset", f->entry_offset);
		q2e_out_str(o, "message", f->message);
		q2e_out_array(o, "structures");
		for (unsigned k = 0; k < f->nrefs; k++)
			ref_out(o, img, &f->refs[k]);
		q2e_out_end(o);
		q2e_out_end(o);
	}
	q2e_out_end(o);
}

/* The L2 tables that L1 entries E[0..N) name, whether the file holds
 * them or not. */
static void l2_locations(struct q2e_out *o, uint64_t cluster_size,
			 const uint64_t *e, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		uint64_t off = e[i] & QCOW2_OFFSET_MASK;

		if (off)
			location(o, NULL, off, cluster_size);
	}
}

static void l2_list(struct q2e_out *o, const struct q2e_image *img,
		    const uint64_t *l1, uint64_t n)
{
	q2e_out_array(o, "l2-list");
	l2_locations(o, img->cluster_size, l1, n);
	q2e_out_end(o);
}

struct l2_listing {
	struct q2e_out *o;
	uint64_t cluster_size;
};

static int list_chunk(void *arg, uint64_t first, const uint64_t *e,
		      uint64_t n)
{
	const struct l2_listing *l = arg;

	(void)first;
	l2_locations(l->o, l->cluster_size, e, n);
	return 0;
}

/*
 * Snapshot N's L2 tables, whether the file holds them or not, as its L1
 * table is read again a chunk at a time (the model does not keep it):
 * snapshots whose L1 tables overlap name billions, and keeping them until
 * now took 3.3 GB for 6.4 GB of JSON.  A snapshot whose L1 table is an
 * earlier one's (the same offset and size: only a hand-made or damaged
 * image does this) names that snapshot's position in "l2-list-of"
 * instead: 4,096 snapshots sharing a table of 8,192 entries listed 33
 * million tables (4.7 GB).
 */
static int snapshot_l2_list(struct q2e_out *o, struct q2e_image *img,
			    uint32_t n, struct q2e_error *err)
{
	struct l2_listing l = { o, img->cluster_size };
	uint32_t id = img->snapshots[n].l1_first;
	int ret;

	if (id != n) {
		q2e_out_uint(o, "l2-list-of", id);
		return 0;
	}
	q2e_out_array(o, "l2-list");
	ret = q2e_image_snapshot_l1_each(img, n, list_chunk, &l, err);
	q2e_out_end(o);
	return ret;
}

static void bitmaps_viscera(struct q2e_out *o, const struct q2e_image *img)
{
	const struct qcow2_bitmaps_ext *x = &img->bitmaps_ext;

	/* QEMU does not load them: not listed as live bitmaps. */
	q2e_out_object(o, img->bitmaps_ignored ? "ignored-bitmaps" : "bitmaps");
	q2e_out_uint(o, "nb-bitmaps", x->nb_bitmaps);
	q2e_out_object(o, "bitmap-dir");
	location(o, "location", x->bitmap_directory_offset,
		 x->bitmap_directory_size);
	q2e_out_array(o, "dir-entries");
	for (size_t i = 0; i < img->nbitmaps; i++) {
		const struct q2e_bitmap *b = &img->bitmaps[i];

		q2e_out_object(o, NULL);
		q2e_out_str(o, "bitmap-name", b->name);
		q2e_out_object(o, "bitmap-table");
		location(o, "location", b->entry.bitmap_table_offset,
			 b->entry.bitmap_table_size * 8ULL);
		q2e_out_array(o, "table-entries");
		for (uint64_t j = 0; j < b->ntable; j++) {
			struct qcow2_bitmap_table_entry e;

			qcow2_bitmap_table_entry_decode(b->table[j], &e);
			q2e_out_object(o, NULL);
			switch (e.kind) {
			case QCOW2_BITMAP_ALL_ZEROS:
				q2e_out_str(o, "type", "all-zeros");
				break;
			case QCOW2_BITMAP_ALL_ONES:
				q2e_out_str(o, "type", "all-ones");
				break;
			case QCOW2_BITMAP_SERIALIZED:
				q2e_out_str(o, "type", "serialized");
				location(o, "cluster", e.offset,
					 img->cluster_size);
				break;
			}
			q2e_out_end(o);
		}
		q2e_out_end(o);
		q2e_out_end(o);
		q2e_out_end(o);
	}
	q2e_out_end(o);
	q2e_out_end(o);
	q2e_out_end(o);
}

/* The snapshot table, each snapshot with the L2 tables it names. */
static int snapshots_viscera(struct q2e_out *o, struct q2e_image *img,
			     struct q2e_error *err)
{
	const struct qcow2_header *h = &img->hdr;

	q2e_out_object(o, "snapshot-table");
	location(o, "location", h->snapshots_offset, img->snapshot_table_size);
	q2e_out_array(o, "l1-list");
	for (size_t i = 0; i < img->nsnapshots; i++) {
		const struct q2e_snapshot *s = &img->snapshots[i];

		q2e_out_object(o, NULL);
		q2e_out_str(o, "name", s->name);
		location(o, "location", s->entry.l1_table_offset,
			 s->entry.l1_size * 8ULL);
		if (snapshot_l2_list(o, img, (uint32_t)i, err) < 0)
			return -1;	/* cut short */
		q2e_out_str(o, "snapshot-id", s->id);
		/* QEMU takes an entry without the field for one of the
		 * image's present size. */
		q2e_out_uint(o, "disk-size", s->entry.has_disk_size
			     ? s->entry.disk_size : h->size);
		q2e_out_end(o);
	}
	q2e_out_end(o);
	q2e_out_end(o);
	return 0;
}

/*
 * The proposal's keys first, with their meanings; then what it lacked:
 * refcount blocks, header extensions, the backing file name, the LUKS area
 * and snapshot IDs.  Sections an image does not have are left out.
 */
static int viscera(struct q2e_out *o, struct q2e_image *img,
		   struct q2e_error *err)
{
	const struct qcow2_header *h = &img->hdr;

	q2e_out_object(o, "viscera");
	q2e_out_object(o, "qcow2-header");
	location(o, "location", 0, img->cluster_size);
	q2e_out_uint(o, "version", h->version);
	q2e_out_end(o);

	q2e_out_object(o, "refcount-table");
	location(o, "location", h->refcount_table_offset,
		 h->refcount_table_clusters * img->cluster_size);
	q2e_out_end(o);

	/* Even an empty L1 table has its place in the header. */
	q2e_out_object(o, "active-l1");
	q2e_out_str(o, "name", "L1 active table");
	location(o, "location", h->l1_table_offset, h->l1_size * 8ULL);
	l2_list(o, img, img->l1, img->nl1);
	q2e_out_end(o);

	if (img->nsnapshots && snapshots_viscera(o, img, err) < 0)
		return -1;

	if (img->has_bitmaps_ext && img->nbitmaps)
		bitmaps_viscera(o, img);

	q2e_out_array(o, "refcount-blocks");
	for (uint64_t i = 0; i < img->nreftable; i++) {
		uint64_t off = img->reftable[i] & ~QCOW2_REFTABLE_RESERVED_MASK;

		if (!off)
			continue;
		q2e_out_object(o, NULL);
		q2e_out_uint(o, "reftable-index", i);
		location(o, "location", off, img->cluster_size);
		q2e_out_end(o);
	}
	q2e_out_end(o);

	if (img->nexts) {
		q2e_out_array(o, "header-extensions");
		for (size_t i = 0; i < img->nexts; i++) {
			const struct q2e_extension *e = &img->exts[i];
			const char *name = qcow2_ext_name(e->magic);
			char magic[16];

			snprintf(magic, sizeof(magic), "0x%08x", e->magic);
			q2e_out_object(o, NULL);
			q2e_out_str(o, "magic", magic);
			q2e_out_str(o, "name", name ? name : "unknown");
			location(o, "location", e->offset,
				 8 + ((e->length + 7ULL) & ~7ULL));
			q2e_out_end(o);
		}
		q2e_out_end(o);
	}

	if (img->backing_file) {
		q2e_out_object(o, "backing-file");
		q2e_out_str(o, "name", img->backing_file);
		location(o, "location", h->backing_file_offset,
			 h->backing_file_size);
		q2e_out_end(o);
	}

	if (img->has_crypto_ext) {
		q2e_out_object(o, "crypt-header");
		location(o, "location", img->crypto_ext.offset,
			 img->crypto_ext.length);
		q2e_out_end(o);
	}
	q2e_out_end(o);
	return 0;
}

static int json_report(struct q2e_out *o, const struct q2e_check_result *res,
		       struct q2e_image *img, bool with_viscera,
		       struct q2e_error *err)
{
	q2e_out_object(o, NULL);
	if (res->image_end_offset)
		q2e_out_uint(o, "image-end-offset", res->image_end_offset);
	if (res->compressed_clusters)
		q2e_out_uint(o, "compressed-clusters", res->compressed_clusters);
	if (res->total_clusters)
		q2e_out_uint(o, "total-clusters", res->total_clusters);
	if (res->corruptions)
		q2e_out_uint(o, "corruptions", res->corruptions);
	q2e_out_uint(o, "check-errors", res->check_errors);
	if (res->leaks)
		q2e_out_uint(o, "leaks", res->leaks);
	if (res->allocated_clusters)
		q2e_out_uint(o, "allocated-clusters", res->allocated_clusters);
	q2e_out_str(o, "filename", res->filename);
	q2e_out_str(o, "format", "qcow2");
	if (res->fragmented_clusters)
		q2e_out_uint(o, "fragmented-clusters", res->fragmented_clusters);
	findings_json(o, res, img);
	if (with_viscera && viscera(o, img, err) < 0)
		return -1;	/* cut short */
	q2e_out_end(o);
	return 0;
}

static void human_summary(FILE *fp, const struct q2e_check_result *res)
{
	if (!res->corruptions && !res->leaks && !res->check_errors) {
		fputs("No errors were found on the image.\n", fp);
	} else {
		if (res->corruptions)
			fprintf(fp, "\n%" PRIu64 " errors were found on the image.\n"
				"Data may be corrupted, or further writes to the image may corrupt it.\n",
				res->corruptions);
		if (res->leaks)
			fprintf(fp, "\n%" PRIu64 " leaked clusters were found on the image.\n"
				"This means waste of disk space, but no harm to data.\n",
				res->leaks);
		if (res->check_errors)
			fprintf(fp, "\n%" PRIu64 " internal errors have occurred during the check.\n",
				res->check_errors);
	}
	if (res->total_clusters && res->allocated_clusters)
		fprintf(fp, "%" PRIu64 "/%" PRIu64 " = %0.2f%% allocated, %0.2f%% fragmented, %0.2f%% compressed clusters\n",
			res->allocated_clusters, res->total_clusters,
			res->allocated_clusters * 100.0 / res->total_clusters,
			res->fragmented_clusters * 100.0 / res->allocated_clusters,
			res->compressed_clusters * 100.0 / res->allocated_clusters);
	if (res->image_end_offset)
		fprintf(fp, "Image end offset: %" PRIu64 "\n",
			res->image_end_offset);
}

/* One line per finding, with the owners of what it names. */
static void human_findings(FILE *fp, const struct q2e_check_result *res,
			   const struct q2e_image *img)
{
	if (!res->nfindings)
		return;
	fprintf(fp, "\n%zu finding%s beyond qemu-img check:\n", res->nfindings,
		res->nfindings == 1 ? "" : "s");
	for (size_t i = 0; i < res->nfindings; i++) {
		const struct q2e_finding *f = &res->findings[i];

		/* Written, not printf()ed: thousands of lines, each a call of
		 * printf's interceptor under the sanitizers. */
		fputs(q2e_severity_name(f->severity), fp);
		fputc(' ', fp);
		fputs(finding_type_name(f->type), fp);
		fputs(": ", fp);
		if (f->structure) {
			fputs(f->structure, fp);
			fputs(": ", fp);
		}
		q2e_fputs_escaped(fp, f->message);	/* it may quote a name */
		for (unsigned k = 0; k < f->nrefs; k++) {
			const struct q2e_region *r = f->refs[k].region;
			char sym[96];

			if (!r || r->nowners < 2)
				continue;
			/* The JSON lists 64 and counts them; a line names a few. */
			fputs(" [owners:", fp);
			for (uint32_t n = 0; n < r->nowners && n < HUMAN_OWNERS; n++)
				if (q2e_region_symbol(img, r, n, sym,
						      sizeof(sym)) == 0)
					fprintf(fp, " %s", sym);
			if (r->nowners > HUMAN_OWNERS)
				fprintf(fp, " and %" PRIu32 " more",
					r->nowners - HUMAN_OWNERS);
			fputc(']', fp);
		}
		fputc('\n', fp);
	}
}

int q2e_check_render(const struct q2e_check_result *res,
		     struct q2e_image *img, FILE *fp,
		     enum q2e_format format, bool with_viscera,
		     struct q2e_error *err)
{
	struct q2e_out *o = NULL;
	int ret = 0;

	switch (format) {
	case Q2E_FORMAT_JSON:
		o = q2e_out_new(fp, format);
		if (o)
			ret = json_report(o, res, img, with_viscera, err);
		break;
	case Q2E_FORMAT_HUMAN:
		human_summary(fp, res);
		human_findings(fp, res, img);
		if (!with_viscera)
			break;
		fputc('\n', fp);
		o = q2e_out_new(fp, format);
		if (!o)
			break;
		q2e_out_object(o, NULL);
		ret = viscera(o, img, err);
		if (ret == 0)
			q2e_out_end(o);
		break;
	}
	if (!o && (format == Q2E_FORMAT_JSON || with_viscera))
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	if ((o && q2e_out_finish(o) < 0) || fflush(fp) != 0 || ferror(fp))
		return q2e_error_set(err, Q2E_EOUTPUT,
				     "cannot write to standard output");
	return ret;
}

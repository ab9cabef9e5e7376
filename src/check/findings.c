/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What qemu-img check does not look for: data clusters inside metadata or
 * past the end of the file, two structures in one cluster, one table
 * reached from two places that may not share it, and the problems the
 * model recorded while reading the image.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check/check_impl.h"
#include "qcow2elf/array.h"

/* Messages are cut at this many bytes, their NUL included. */
#define MESSAGE_MAX 512

/* A finding whose message is TEXT (cut at MESSAGE_MAX). */
static struct q2e_finding *add_finding_text(struct checker *c,
					    enum q2e_finding_type type,
					    enum q2e_severity sev,
					    uint64_t offset, const char *text)
{
	struct q2e_check_result *res = c->res;
	struct q2e_finding *f;

	if (q2e_grow(res->findings, c->findings_cap, res->nfindings + 1) < 0) {
		nomem(c);
		return NULL;
	}
	f = &res->findings[res->nfindings];
	memset(f, 0, sizeof(*f));
	f->type = type;
	f->severity = sev;
	f->offset = offset;
	f->message = keep_string(c, text, MESSAGE_MAX);
	if (!f->message) {
		nomem(c);
		return NULL;
	}
	res->nfindings++;
	if (type == Q2E_FINDING_OVERLAP || type == Q2E_FINDING_SHARED ||
	    type == Q2E_FINDING_DATA_IN_METADATA)
		res->overlaps = true;
	return f;
}

static struct q2e_finding *add_finding(struct checker *c,
				       enum q2e_finding_type type,
				       enum q2e_severity sev, uint64_t offset,
				       const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static struct q2e_finding *add_finding(struct checker *c,
				       enum q2e_finding_type type,
				       enum q2e_severity sev, uint64_t offset,
				       const char *fmt, ...)
{
	char text[MESSAGE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return add_finding_text(c, type, sev, offset, text);
}

/* Adds region R to the structures of F, unless it is there already. */
static void ref_region(struct q2e_finding *f, const struct q2e_region *r)
{
	struct q2e_finding_ref *ref;

	for (unsigned k = 0; k < f->nrefs; k++)
		if (f->refs[k].region == r)
			return;
	ref = &f->refs[f->nrefs++];
	ref->region = r;
	ref->offset = r->offset;
	ref->size = r->size;
}

/* A region's symbol, or its kind where it has none. */
static void region_name(const struct checker *c, const struct q2e_region *r,
			char *buf, size_t size)
{
	if (q2e_region_symbol(c->img, r, 0, buf, size) < 0)
		snprintf(buf, size, "%s", q2e_region_kind_name(r->kind));
}

/*
 * Is cluster K metadata?  Returns the merged range index or -1, and keeps
 * the gap around K when it is not (see in_gap()).
 */
long meta_find(struct checker *c, uint64_t k)
{
	size_t lo = c->meta_next;

	/* Clusters are asked for mostly in order: the range the last one
	 * was before, or the next, usually; else a search. */
	if (lo < c->nmeta && c->meta[lo].start <= k)
		lo++;
	if ((lo < c->nmeta && c->meta[lo].start <= k) ||
	    (lo > 0 && c->meta[lo - 1].start > k))
		lo = q2e_first_above(c->meta, c->nmeta, start, k);
	c->meta_next = lo;

	if (lo > 0 && k < c->meta[lo - 1].end)
		return (long)(lo - 1);
	c->gap_lo = lo > 0 ? c->meta[lo - 1].end : 0;
	c->gap_hi = lo < c->nmeta ? c->meta[lo].start : UINT64_MAX;
	return -1;
}

/* Merged as they come: the regions are sorted by offset, so by first
 * cluster too, and need no sort (nor its copy of them). */
int build_meta_ranges(struct checker *c)
{
	struct q2e_image *img = c->img;
	struct meta_range *shrunk;

	c->meta = malloc((img->nregions + 1) * sizeof(*c->meta));
	if (!c->meta)
		return nomem(c);
	c->nmeta = 0;
	for (size_t i = 0; i < img->nregions; i++) {
		const struct q2e_region *r = &img->regions[i];
		struct meta_range m = { r->offset >> c->cbits,
					(r->offset + r->size - 1) / c->cs + 1 };
		struct meta_range *last = c->nmeta ? &c->meta[c->nmeta - 1]
						   : NULL;

		if (!r->size)
			continue;
		if (last && m.start <= last->end) {
			if (m.end > last->end)
				last->end = m.end;
			continue;
		}
		c->meta[c->nmeta++] = m;
	}
	shrunk = realloc(c->meta, (c->nmeta + 1) * sizeof(*c->meta));
	if (shrunk)
		c->meta = shrunk;
	return 0;
}

/* The region of the model that holds host cluster K, for a finding. */
static const struct q2e_region *region_in_cluster(const struct checker *c,
						  uint64_t k)
{
	const struct q2e_image *img = c->img;

	for (size_t i = 0; i < img->nregions; i++) {
		const struct q2e_region *r = &img->regions[i];

		if (r->size && r->offset >> c->cbits <= k &&
		    (r->offset + r->size - 1) >> c->cbits >= k)
			return r;
	}
	return NULL;
}

/* "l2_table_3[17]", the L2 entry behind a data cluster finding. */
static void entry_name(const struct checker *c, const struct q2e_region *l2,
		       uint64_t j, char *buf, size_t size)
{
	char sym[80];

	if (q2e_region_symbol(c->img, l2, 0, sym, sizeof(sym)) < 0)
		snprintf(sym, sizeof(sym), "l2_table");
	snprintf(buf, size, "%s[%" PRIu64 "]", sym, j);
}

/*
 * Entry J of table L2 joins the run of data findings of TYPE that the
 * table's earlier entries began: true if it did.  A table's entries often
 * repeat one finding (a table of 262,144 entries at a 512-byte offset in
 * a file whose tables it overlaps): they make one.
 */
static bool run_joined(struct checker *c, const struct q2e_region *l2,
		       uint64_t j, enum q2e_finding_type type)
{
	struct data_run *run = &c->data_runs[type];

	if (!run->count || run->l2 != l2)
		return false;
	run->count++;
	run->last = j;
	return true;
}

/* The message of RUN's finding, if the run is of more than one entry. */
static int close_run(struct checker *c, struct data_run *run)
{
	struct q2e_finding *f;
	char name[96], text[MESSAGE_MAX];
	uint64_t count = run->count;

	run->count = 0;
	if (count < 2)
		return 0;
	f = &c->res->findings[run->finding];
	if (q2e_region_symbol(c->img, run->l2, 0, name, sizeof(name)) < 0)
		snprintf(name, sizeof(name), "l2_table");
	snprintf(text, sizeof(text), "%s[%" PRIu64 "] to [%" PRIu64 "]: %" PRIu64
		 " entries, the first: %s", name, run->first, run->last, count,
		 f->message + run->text_at);
	f->message = keep_string(c, text, MESSAGE_MAX);
	return f->message ? 0 : nomem(c);
}

int close_data_runs(struct checker *c)
{
	int ret = 0;

	for (size_t t = 0; t <= Q2E_FINDING_OTHER && ret == 0; t++)
		ret = close_run(c, &c->data_runs[t]);
	return ret;
}

int data_finding(struct checker *c, const struct q2e_region *l2, uint64_t j,
		 uint64_t off, uint64_t size, enum q2e_finding_type type,
		 const char *fmt, ...)
{
	struct data_run *run = &c->data_runs[type];
	struct q2e_finding *f;
	struct q2e_finding_ref *ref;
	char name[96], msg[400];
	va_list ap;

	if (run_joined(c, l2, j, type))
		return 0;
	if (close_run(c, run) < 0)
		return Q2E_ENOMEM;
	entry_name(c, l2, j, name, sizeof(name));
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	f = add_finding(c, type, Q2E_SEV_ERROR, off, "%s: %s", name, msg);
	if (!f)
		return Q2E_ENOMEM;
	*run = (struct data_run){
		.finding = c->res->nfindings - 1, .l2 = l2, .count = 1,
		.first = j, .last = j, .text_at = strlen(name) + 2,
	};
	f->has_entry_offset = true;
	f->entry_offset = l2->offset + j * qcow2_l2_entry_size(&c->img->l2);
	ref = &f->refs[f->nrefs++];
	ref->kind = "data cluster";
	ref->offset = off;
	ref->size = size;
	ref->owned = true;
	snprintf(ref->owner, sizeof(ref->owner), "%s", name);
	ref_region(f, l2);
	return 0;
}

/* What qemu-img does not check about a data cluster: one finding each,
 * or one for a run of them (run_joined()). */
int data_findings(struct checker *c, const struct q2e_region *l2, uint64_t j,
		  uint64_t off, uint64_t size)
{
	uint64_t first = off >> c->cbits, last = (off + size - 1) >> c->cbits;

	if (off >= c->img->file_size)
		return data_finding(c, l2, j, off, size, Q2E_FINDING_PAST_EOF,
				    "data at 0x%" PRIx64
				    " lies past the end of the file (0x%" PRIx64
				    " bytes)", off, c->img->file_size);
	for (uint64_t k = first; k <= last; k++) {
		const struct q2e_region *m;
		char sym[96];

		if (in_gap(c, k) || meta_find(c, k) < 0)
			continue;
		if (run_joined(c, l2, j, Q2E_FINDING_DATA_IN_METADATA))
			break;
		m = region_in_cluster(c, k);
		if (!m)
			continue;
		region_name(c, m, sym, sizeof(sym));
		if (data_finding(c, l2, j, off, size,
				 Q2E_FINDING_DATA_IN_METADATA,
				 "data cluster 0x%" PRIx64 " is also %s (%s at 0x%" PRIx64 ")",
				 k << c->cbits, sym,
				 q2e_region_kind_name(m->kind), m->offset) < 0)
			return Q2E_ENOMEM;
		ref_region(&c->res->findings[c->res->nfindings - 1], m);
		break;
	}
	return 0;
}

/*
 * What kind of finding a problem of the model is: by its type, else by
 * the structure's stable name (names.c).
 */
static enum q2e_finding_type problem_type(const struct q2e_problem *p)
{
	switch (p->type) {
	case Q2E_PROBLEM_PAST_END:
		return Q2E_FINDING_PAST_EOF;
	case Q2E_PROBLEM_MISALIGNED:
		return Q2E_FINDING_MISALIGNED;
	case Q2E_PROBLEM_RESERVED_BITS:
		return Q2E_FINDING_RESERVED_BITS;
	default:
		break;
	}
	if (strncmp(p->structure, "snapshot", 8) == 0)
		return Q2E_FINDING_SNAPSHOT;
	if (strncmp(p->structure, "bitmap", 6) == 0 ||
	    strcmp(p->structure, "ext_bitmaps") == 0)
		return Q2E_FINDING_BITMAP;
	return Q2E_FINDING_OTHER;
}

/*
 * The structure a problem names: the region at its offset if that is the
 * one, else a table that is no region (wholly past the end of the file),
 * else the name alone (a header field that places a table, say).
 */
static void problem_ref(const struct checker *c, struct q2e_finding *f,
			const struct q2e_problem *p)
{
	const struct q2e_region *r = q2e_image_region_at(c->img, p->offset);
	struct q2e_finding_ref *ref;
	char sym[96];

	if (r && q2e_region_symbol(c->img, r, 0, sym, sizeof(sym)) == 0 &&
	    strcmp(sym, p->structure) == 0) {
		ref_region(f, r);
		return;
	}
	ref = &f->refs[f->nrefs++];
	ref->kind = p->table ? q2e_region_kind_name(p->table_kind) : "field";
	ref->offset = p->offset;
	ref->size = p->table ? p->table_size : 0;
	ref->owned = p->table;
	snprintf(ref->owner, sizeof(ref->owner), "%s", p->structure);
}

/* The problems the model recorded while reading the image. */
int model_findings(struct checker *c)
{
	const struct q2e_image *img = c->img;

	/* Room for all at once: thousands of problems grew the array a
	 * dozen times, each a copy of it. */
	if (q2e_grow(c->res->findings, c->findings_cap,
		     c->res->nfindings + img->nproblems) < 0)
		return nomem(c);
	for (size_t i = 0; i < img->nproblems; i++) {
		const struct q2e_problem *p = &img->problems[i];
		struct q2e_finding *f;

		f = add_finding_text(c, problem_type(p), p->severity, p->offset,
				     p->message);
		if (!f)
			return Q2E_ENOMEM;
		f->structure = keep_string(c, p->structure, SIZE_MAX);
		if (!f->structure)
			return nomem(c);
		problem_ref(c, f, p);
	}
	return 0;
}

/* Cluster 0 holds the header, its extensions and the backing file name. */
static bool in_header_cluster(const struct q2e_region *r)
{
	return r->kind == Q2E_REGION_HEADER ||
	       r->kind == Q2E_REGION_EXTENSION ||
	       r->kind == Q2E_REGION_BACKING_FILE;
}

static uint64_t last_cluster(const struct checker *c,
			     const struct q2e_region *r)
{
	return (r->offset + (r->size ? r->size - 1 : 0)) >> c->cbits;
}

/* B shares a cluster with A and with MORE other regions. */
static int overlap_finding(struct checker *c, const struct q2e_region *a,
			   const struct q2e_region *b, size_t more)
{
	char sa[96], sb[96], tail[64] = "";
	uint64_t k = (b->offset > a->offset ? b->offset : a->offset) >>
		     c->cbits;
	struct q2e_finding *f;

	region_name(c, a, sa, sizeof(sa));
	region_name(c, b, sb, sizeof(sb));
	if (more)
		snprintf(tail, sizeof(tail), ", as do %zu more structures",
			 more);
	f = add_finding(c, Q2E_FINDING_OVERLAP, Q2E_SEV_ERROR, k << c->cbits,
			"%s (%s at 0x%" PRIx64 ") and %s (%s at 0x%" PRIx64
			") share cluster 0x%" PRIx64 "%s", sa,
			q2e_region_kind_name(a->kind), a->offset, sb,
			q2e_region_kind_name(b->kind), b->offset,
			k << c->cbits, tail);
	if (!f)
		return Q2E_ENOMEM;
	ref_region(f, a);
	ref_region(f, b);
	return 0;
}

/* Regions still open in the sweep, the one that ends first on top. */
struct open_heap {
	const struct q2e_region **r;
	uint64_t *last;		/* the last cluster of each */
	size_t n, cap_r, cap_last;
};

static void heap_swap(struct open_heap *h, size_t i, size_t j)
{
	const struct q2e_region *r = h->r[i];
	uint64_t l = h->last[i];

	h->r[i] = h->r[j];
	h->last[i] = h->last[j];
	h->r[j] = r;
	h->last[j] = l;
}

/* Grown as regions stay open: a few at a time in a healthy image. */
static int heap_push(struct open_heap *h, const struct q2e_region *r,
		     uint64_t last)
{
	size_t i = h->n;

	if (q2e_grow(h->r, h->cap_r, i + 1) < 0 ||
	    q2e_grow(h->last, h->cap_last, i + 1) < 0)
		return -1;
	h->n++;
	h->r[i] = r;
	h->last[i] = last;
	while (i > 0 && h->last[(i - 1) / 2] > h->last[i]) {
		heap_swap(h, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	return 0;
}

/* Drops the regions that end before cluster FIRST. */
static void heap_expire(struct open_heap *h, uint64_t first)
{
	while (h->n && h->last[0] < first) {
		size_t i = 0;

		heap_swap(h, 0, --h->n);
		for (;;) {
			size_t m = i, l = 2 * i + 1, r = l + 1;

			if (l < h->n && h->last[l] < h->last[m])
				m = l;
			if (r < h->n && h->last[r] < h->last[m])
				m = r;
			if (m == i)
				break;
			heap_swap(h, i, m);
			i = m;
		}
	}
}

/*
 * Two regions in one cluster: a sweep over the regions, which the model
 * keeps sorted by offset, with the regions still open at each start in
 * two heaps (those of the header cluster may share it).  Each region that
 * starts in an open one's cluster is one finding, naming one of them and
 * counting the others: findings grow with the regions, not with the
 * pairs (4,096 L1 tables packed in one cluster are 8 million pairs).
 */
int overlap_findings(struct checker *c)
{
	const struct q2e_image *img = c->img;
	struct open_heap h[2] = { 0 };	/* [1]: the header cluster's */
	int ret = 0;

	for (size_t i = 0; i < img->nregions && ret == 0; i++) {
		const struct q2e_region *r = &img->regions[i];
		bool header = in_header_cluster(r);
		size_t others;

		heap_expire(&h[0], r->offset >> c->cbits);
		heap_expire(&h[1], r->offset >> c->cbits);
		others = h[0].n + (header ? 0 : h[1].n);
		if (others)
			ret = overlap_finding(c, h[0].n ? h[0].r[0] : h[1].r[0],
					      r, others - 1);
		if (ret == 0 && heap_push(&h[header], r, last_cluster(c, r)) < 0)
			ret = nomem(c);
	}
	for (int k = 0; k < 2; k++) {
		free(h[k].r);
		free(h[k].last);
	}
	return ret;
}

/* One finding for region R, whose owners FIRST and FIRST + 1 are the first
 * of PAIRS pairs that may not share it. */
static int shared_finding(struct checker *c, const struct q2e_region *r,
			  uint32_t first, uint32_t pairs)
{
	char sa[96], sb[96];
	struct q2e_finding *f;

	q2e_region_symbol(c->img, r, first, sa, sizeof(sa));
	q2e_region_symbol(c->img, r, first + 1, sb, sizeof(sb));
	if (pairs == 1)
		f = add_finding(c, Q2E_FINDING_SHARED, Q2E_SEV_ERROR, r->offset,
				"%s and %s are the same %s at 0x%" PRIx64,
				sa, sb, q2e_region_kind_name(r->kind), r->offset);
	else
		f = add_finding(c, Q2E_FINDING_SHARED, Q2E_SEV_ERROR, r->offset,
				"%s, %s and %" PRIu32
				" more are the same %s at 0x%" PRIx64,
				sa, sb, pairs - 1,
				q2e_region_kind_name(r->kind), r->offset);
	if (!f)
		return Q2E_ENOMEM;
	ref_region(f, r);
	return 0;
}

/* One table reached twice where only snapshots may share it. */
int shared_findings(struct checker *c)
{
	const struct q2e_image *img = c->img;

	/* One finding per region, however many owners share it: the finding
	 * lists the owners, so one per pair would grow with their square. */
	for (size_t i = 0; i < img->nregions; i++) {
		const struct q2e_region *r = &img->regions[i];
		uint32_t first = 0, pairs = 0;

		if (r->kind == Q2E_REGION_EXTENSION)
			continue;
		for (uint32_t k = 1; k < r->nowners; k++) {
			const struct q2e_owner *a = &r->owners[k - 1];
			const struct q2e_owner *b = &r->owners[k];

			if (r->kind == Q2E_REGION_L2 &&
			    (a->kind != b->kind || a->id != b->id))
				continue;	/* a snapshot shares it */
			if (!pairs++)
				first = k - 1;
		}
		if (pairs && shared_finding(c, r, first, pairs) < 0)
			return Q2E_ENOMEM;
	}
	return 0;
}

/* A missing file QEMU needs to open the image: a finding, and the reason
 * qemu-img would give up. */
static int missing_file(struct checker *c, const char *structure,
			uint64_t offset, const char *what)
{
	struct q2e_finding *f;

	f = add_finding_text(c, Q2E_FINDING_MISSING_FILE, Q2E_SEV_ERROR, offset,
			     what);
	if (!f)
		return Q2E_ENOMEM;
	f->structure = keep_string(c, structure, SIZE_MAX);
	if (!f->structure)
		return nomem(c);
	f->refs[0].kind = "field";
	f->refs[0].offset = offset;
	snprintf(f->refs[0].owner, sizeof(f->refs[0].owner), "%s", structure);
	f->nrefs = 1;
	if (!c->res->unopenable)
		c->res->unopenable = strdup(what);
	return c->res->unopenable ? 0 : nomem(c);
}

/*
 * ERR's message without "'IMAGE': " and "STRUCTURE: " (none if NULL),
 * which the finding gives already: in WHAT, if it starts so.
 */
static bool said_of(const struct q2e_image *img, const char *structure,
		    const struct q2e_error *err, char *what, size_t size)
{
	size_t prefix;

	snprintf(what, size, "'%s': %s%s", img->path,
		 structure ? structure : "", structure ? ": " : "");
	prefix = strlen(what);
	if (strncmp(err->msg, what, prefix) != 0)
		return false;
	snprintf(what, size, "%s", err->msg + prefix);
	return true;
}

/* A backing file not opened, of a format or protocol not read: a note. */
static int unread_backing(struct checker *c, const struct q2e_error *err)
{
	struct q2e_finding *f;
	char said[sizeof(err->msg)], what[sizeof(err->msg) + 64];

	if (!said_of(c->img, NULL, err, said, sizeof(said)))
		snprintf(said, sizeof(said), "%s", err->msg);
	snprintf(what, sizeof(what), "not opened, so not checked: %s", said);
	f = add_finding_text(c, Q2E_FINDING_OTHER, Q2E_SEV_NOTE,
			     c->img->hdr.backing_file_offset, what);
	if (!f)
		return Q2E_ENOMEM;
	f->structure = keep_string(c, "backing_file", SIZE_MAX);
	return f->structure ? 0 : nomem(c);
}

/* The offset of the image's external data file name extension, or 0. */
static uint64_t data_file_ext(const struct q2e_image *img)
{
	for (size_t i = 0; i < img->nexts; i++)
		if (img->exts[i].magic == QCOW2_EXT_DATA_FILE)
			return img->exts[i].offset;
	return 0;
}

/*
 * qemu-img check opens the image with its backing chain and external
 * data file, and cannot check it when one is missing.  A dump's files
 * were on the machine it was made on: not looked for.
 */
int missing_file_findings(struct checker *c)
{
	struct q2e_image *img = c->img;
	struct q2e_error err = { 0 };
	struct q2e_chain *chain;
	struct stat st;
	char what[sizeof(err.msg) + 64];
	bool data_missing = false;

	if (q2e_image_dump_meta(img))
		return 0;
	/* QEMU opens the data file name as it is, relative to the current
	 * directory. */
	if (q2e_image_data_file(img) && stat(img->data_file, &st) < 0) {
		snprintf(what, sizeof(what),
			 "external data file '%s' cannot be opened: %s",
			 img->data_file, strerror(errno));
		if (missing_file(c, "ext_data_file", data_file_ext(img),
				 what) < 0)
			return Q2E_ENOMEM;
		data_missing = true;
	}
	/* The rest as qemu-img opens them: the data file (its locks too),
	 * then the backing chain, which stops at the first that fails. */
	if (!q2e_image_backing(img) && (data_missing || !q2e_image_data_file(img)))
		return 0;
	if (q2e_chain_open_for_check(img, &chain, &err) == 0) {
		q2e_chain_close(chain);
		return 0;
	}
	if (err.code == Q2E_ENOMEM)
		return q2e_error_set(c->err, Q2E_ENOMEM, "%s", err.msg);
	/* A format, protocol or depth we do not read, which QEMU may well
	 * open (or not: an nbd: server may be down): a note says what was
	 * not looked at, and the status is as if it opened. */
	if (err.code == Q2E_EUNSUPPORTED)
		return unread_backing(c, &err);
	if (said_of(img, "ext_data_file", &err, what, sizeof(what)))
		return data_missing ? 0 : missing_file(c, "ext_data_file",
						       data_file_ext(img), what);
	if (!said_of(img, "backing_file", &err, what, sizeof(what)))
		snprintf(what, sizeof(what), "%s", err.msg);
	return missing_file(c, "backing_file", img->hdr.backing_file_offset,
			    what);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Problems and regions recorded by the walk.  Every structure is recorded
 * with a run of owners (the entries of one table that name it one after
 * another); finishing sorts the records by offset and folds those of one
 * physical table (same kind, offset and size) into one region with
 * several owners, the active L1 first, then snapshots in table order.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/array.h"
#include "walk.h"

#define PROBLEM_MESSAGE_MAX 512	/* bytes, with its NUL */
#define PROBLEM_TEXT_FIRST 4096
#define PROBLEM_TEXT_LARGEST (64U << 10)

/* Room for NEED bytes in the newest chunk of the problems' strings. */
static char *problem_room(struct q2e_image *img, size_t need)
{
	struct q2e_problem_text *t = img->problem_text;
	size_t size;

	if (t && t->size - t->used >= need)
		return t->bytes + t->used;
	size = t ? t->size * 2 : PROBLEM_TEXT_FIRST;
	if (size > PROBLEM_TEXT_LARGEST)
		size = PROBLEM_TEXT_LARGEST;
	if (size < need)
		size = need;
	t = malloc(sizeof(*t) + size);
	if (!t)
		return NULL;
	*t = (struct q2e_problem_text){ img->problem_text, 0, size };
	img->problem_text = t;
	return t->bytes;
}

/* The message is formatted straight into the chunk, then the name of the
 * structure put after it: no allocation but a chunk's now and then. */
static int add_problem(struct walk *w, enum q2e_severity sev,
		       enum q2e_problem_type type, uint64_t offset,
		       const char *structure, const char *fmt, va_list ap)
	__attribute__((format(printf, 6, 0)));

static int add_problem(struct walk *w, enum q2e_severity sev,
		       enum q2e_problem_type type, uint64_t offset,
		       const char *structure, const char *fmt, va_list ap)
{
	struct q2e_image *img = w->img;
	struct q2e_problem *p;
	size_t slen = strlen(structure), mlen;
	char *text;

	if (q2e_grow(img->problems, w->problems_cap, img->nproblems + 1) < 0 ||
	    !(text = problem_room(img, PROBLEM_MESSAGE_MAX + slen + 1)))
		return q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
	vsnprintf(text, PROBLEM_MESSAGE_MAX, fmt, ap);
	mlen = strlen(text);
	memcpy(text + mlen + 1, structure, slen + 1);
	img->problem_text->used += mlen + 1 + slen + 1;
	p = &img->problems[img->nproblems];
	p->severity = sev;
	p->type = type;
	p->offset = offset;
	p->message = text;
	p->structure = text + mlen + 1;
	p->table = false;
	img->nproblems++;
	return 0;
}

int walk_problem(struct walk *w, enum q2e_severity sev,
		 enum q2e_problem_type type, uint64_t offset,
		 const char *structure, const char *fmt, ...)
{
	va_list ap;
	int ret = walk_flush_problems(w);

	if (ret < 0)
		return ret;
	va_start(ap, fmt);
	ret = add_problem(w, sev, type, offset, structure, fmt, ap);
	va_end(ap);
	return ret;
}

int walk_add_problem(struct walk *w, enum q2e_severity sev,
		     enum q2e_problem_type type, uint64_t offset,
		     const char *structure, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = add_problem(w, sev, type, offset, structure, fmt, ap);
	va_end(ap);
	return ret;
}

void walk_free_problems(struct q2e_image *img)
{
	struct q2e_problem_text *t = img->problem_text, *next;

	for (; t; t = next) {
		next = t->next;
		free(t);
	}
	img->problem_text = NULL;
	free(img->problems);
	img->problems = NULL;
	img->nproblems = 0;
}

/* Whether OWNER is the next of LAST's run of owners of the same table. */
static bool extends_run(const struct pending_region *last,
			enum q2e_region_kind kind, uint64_t offset,
			uint64_t size, const struct q2e_owner *owner)
{
	const struct q2e_region *r = &last->region;

	return r->kind == kind && r->offset == offset && r->size == size &&
	       kind != Q2E_REGION_EXTENSION &&
	       last->owner.kind == owner->kind && last->owner.id == owner->id &&
	       owner->index > last->owner.index &&
	       owner->index - last->owner.index == r->nowners &&
	       r->nowners < UINT32_MAX;
}

/*
 * Room for NEED records.  They live in a mapping of their own
 * (q2e_map_array()), which the expected records fill exactly: those of a
 * 1 GiB image of 512-byte clusters (41,000 tables, 2.6 MB) take a huge
 * page and 150 small ones, not 650 small ones, each a page fault of about
 * 11 us on the benchmark's virtual machine (7 ms of `info`'s 26).
 */
static bool grow_pending(struct walk *w, size_t need)
{
	const size_t rec = sizeof(*w->pending);
	struct pending_region *p;

	if (need > SIZE_MAX / rec ||
	    !(p = q2e_remap_array(w->pending, w->cap * rec, need * rec)))
		return false;
	w->pending = p;
	w->cap = need;
	return true;
}

static int reserve_pending(struct walk *w, size_t need)
{
	if (need <= w->cap || grow_pending(w, need))
		return 0;
	return q2e_error_set(w->err, Q2E_ENOMEM,
			     "out of memory recording %zu structures", need);
}

void walk_expect_regions(struct walk *w, uint64_t more)
{
	/* A hint, bounded by the tables the file could hold apart; past it,
	 * and if there is no memory, the array grows as records come. */
	uint64_t most = (w->img->file_size >> 9) + 64;

	if (more > most)
		more = most;
	if (more <= SIZE_MAX - w->npending && w->npending + more > w->cap)
		grow_pending(w, w->npending + (size_t)more);
}

void walk_free_pending(struct walk *w)
{
	q2e_unmap_array(w->pending, w->cap * sizeof(*w->pending));
	w->pending = NULL;
	w->npending = w->cap = 0;
}

int walk_region(struct walk *w, enum q2e_region_kind kind, uint64_t offset,
		uint64_t size, struct q2e_owner owner, uint32_t ext_magic)
{
	uint64_t fsize = w->img->file_size;

	/* A table an entry names that the file holds none of costs nothing
	 * beyond its problem (walk_note_table()): QEMU's largest L1 table,
	 * 4 million entries each naming one past the end of a 32 MB file,
	 * took 360 MB as regions. */
	if (offset >= fsize && (kind == Q2E_REGION_L2 ||
				kind == Q2E_REGION_REFCOUNT_BLOCK ||
				kind == Q2E_REGION_BITMAP_DATA))
		return 0;
	if (w->npending &&
	    extends_run(&w->pending[w->npending - 1], kind, offset, size,
			&owner)) {
		w->pending[w->npending - 1].region.nowners++;
		return 0;
	}
	/* Called once per table (41,000 times for a 1 GiB image of 512-byte
	 * clusters): the call to grow only when full, and rarely then,
	 * since the walk expects most records (walk_expect_regions()). */
	if (w->npending >= w->cap) {
		int ret = reserve_pending(w, w->npending + w->npending / 8 + 64);

		if (ret < 0)
			return ret;
	}
	w->pending[w->npending++] = (struct pending_region){
		.region = {
			.kind = kind,
			.offset = offset,
			.size = size,
			.avail = offset >= fsize ? 0
				 : size < fsize - offset ? size
				 : fsize - offset,
			.ext_magic = ext_magic,
			.nowners = 1,
		},
		.owner = owner,
	};
	return 0;
}

int walk_extend_region(struct walk *w, enum q2e_region_kind kind,
		       uint64_t size)
{
	uint64_t fsize = w->img->file_size;

	for (size_t i = 0; i < w->npending; i++) {
		struct q2e_region *r = &w->pending[i].region;

		if (r->kind != kind || r->size >= size)
			continue;
		r->size = size;
		r->avail = r->offset >= fsize ? 0
			   : size < fsize - r->offset ? size
			   : fsize - r->offset;
		return 0;
	}
	return 0;
}

static int owner_rank(const struct q2e_owner *o)
{
	switch (o->kind) {
	case Q2E_OWNER_IMAGE:
		return 0;
	case Q2E_OWNER_ACTIVE:
		return 1;
	case Q2E_OWNER_SNAPSHOT:
		return 2;
	case Q2E_OWNER_BITMAP:
		return 3;
	}
	return 4;
}

static int cmp_owner(const struct q2e_owner *a, const struct q2e_owner *b)
{
	int ra = owner_rank(a), rb = owner_rank(b);

	if (ra != rb)
		return ra - rb;
	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	if (a->index != b->index)
		return a->index < b->index ? -1 : 1;
	return 0;
}

static int cmp_pending(const void *pa, const void *pb)
{
	const struct pending_region *a = pa, *b = pb;

	if (a->region.offset != b->region.offset)
		return a->region.offset < b->region.offset ? -1 : 1;
	if (a->region.kind != b->region.kind)
		return (int)a->region.kind - (int)b->region.kind;
	if (a->region.size != b->region.size)
		return a->region.size < b->region.size ? -1 : 1;
	return cmp_owner(&a->owner, &b->owner);
}

static bool pending_less(const struct pending_region *a,
			 const struct pending_region *b)
{
	return cmp_pending(a, b) < 0;
}

/* Runs shorter than this are made by insertion, so that records in no
 * order cost a merge sort's passes, not one pass per record. */
#define MIN_RUN 32

/* The end of the ascending run of [lo, n) that starts at LO, extended by
 * insertion to MIN_RUN records at least. */
static size_t natural_run(struct pending_region *v, size_t lo, size_t n)
{
	size_t i = lo + 1, want = n - lo > MIN_RUN ? lo + MIN_RUN : n;

	for (;;) {
		while (i < n && !pending_less(&v[i], &v[i - 1]))
			i++;
		if (i >= want)
			return i;
		struct pending_region x = v[i];
		size_t j = i++;

		for (; j > lo && pending_less(&x, &v[j - 1]); j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

/* The first of [lo, hi) that KEY is below (UPPER) or not above. */
static size_t pending_bound(const struct pending_region *v, size_t lo,
			    size_t hi, const struct pending_region *key,
			    bool upper)
{
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (upper ? !pending_less(key, &v[mid])
			  : pending_less(&v[mid], key))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Merges the sorted runs [lo, mid) and [mid, hi), stably, through TMP,
 * which takes the shorter of the parts that interleave: records of one
 * run that precede (or follow) the whole other stay where they are.
 */
static void merge_runs(struct pending_region *v, size_t lo, size_t mid,
		       size_t hi, struct pending_region *tmp)
{
	lo = pending_bound(v, lo, mid, &v[mid], true);
	hi = pending_bound(v, mid, hi, &v[mid - 1], false);
	if (lo == mid || mid == hi)
		return;
	if (mid - lo <= hi - mid) {
		size_t na = mid - lo, i = 0, j = mid, k = lo;

		memcpy(tmp, v + lo, na * sizeof(*v));
		while (i < na && j < hi)
			v[k++] = pending_less(&v[j], &tmp[i]) ? v[j++] : tmp[i++];
		memcpy(v + k, tmp + i, (na - i) * sizeof(*v));
	} else {
		size_t j = hi - mid, i = mid, k = hi;

		memcpy(tmp, v + mid, j * sizeof(*v));
		while (i > lo && j > 0)
			v[--k] = pending_less(&tmp[j - 1], &v[i - 1]) ? v[--i]
								     : tmp[--j];
		memcpy(v + lo, tmp, j * sizeof(*v));
	}
}

/*
 * The records in cmp_pending() order, as a stable sort leaves them.  The
 * walk records them in a few ascending runs (the active L2 tables, the
 * refcount blocks, each snapshot's tables), so the runs are merged:
 * qsort() compared 41,000 records 16 times over, and its copy of them all
 * (2.6 MB of fresh pages, each a fault) cost more than the comparisons.
 */
static int sort_pending(struct pending_region *v, size_t n,
			struct q2e_error *err)
{
	size_t *ends, nruns = 0;
	struct pending_region *tmp;

	if (n < 2)
		return 0;
	ends = malloc((n / MIN_RUN + 2) * sizeof(*ends));
	/* Pages of it are touched only as far as the merges need. */
	tmp = malloc((n / 2 + 1) * sizeof(*tmp));
	if (!ends || !tmp) {
		free(ends);
		free(tmp);
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	}
	for (size_t lo = 0; lo < n;)
		lo = ends[nruns++] = natural_run(v, lo, n);
	while (nruns > 1) {
		size_t out = 0;

		for (size_t r = 0; r < nruns; r += 2) {
			if (r + 1 < nruns)
				merge_runs(v, r ? ends[r - 1] : 0, ends[r],
					   ends[r + 1], tmp);
			ends[out++] = ends[r + 1 < nruns ? r + 1 : r];
		}
		nruns = out;
	}
	free(ends);
	free(tmp);
	return 0;
}

static bool same_region(const struct q2e_region *a, const struct q2e_region *b)
{
	return a->kind == b->kind && a->offset == b->offset &&
	       a->size == b->size && a->kind != Q2E_REGION_EXTENSION;
}

uint64_t q2e_image_missing_from(const struct q2e_image *img, uint64_t off)
{
	const struct q2e_dump_meta *dm = q2e_image_dump_meta(img);
	size_t k;

	if (!dm || !dm->nmissing)
		return UINT64_MAX;
	/* The missing range that starts at or before OFF, if it reaches
	 * past it; else the next one. */
	k = q2e_first_above(dm->missing, dm->nmissing, offset, off);
	if (k > 0 && dm->missing[k - 1].offset + dm->missing[k - 1].length > off)
		return off;
	return k < dm->nmissing ? dm->missing[k].offset : UINT64_MAX;
}

/*
 * A dump trimmed by objcopy -R or strip lacks some of the sections it was
 * written with (q2e_dump_meta.missing): each region they held is reported
 * as a truncated image's are, and its bytes count as absent.
 */
static int note_trimmed(struct walk *w)
{
	struct q2e_image *img = w->img;
	const struct q2e_dump_meta *dm = q2e_image_dump_meta(img);
	char name[96];

	for (size_t i = 0; dm && dm->nmissing && i < img->nregions; i++) {
		struct q2e_region *r = &img->regions[i];
		uint64_t from = q2e_image_missing_from(img, r->offset);

		if (from >= r->offset + r->avail)
			continue;
		if (q2e_region_symbol(img, r, 0, name, sizeof(name)) < 0)
			snprintf(name, sizeof(name), "%s",
				 q2e_region_kind_name(r->kind));
		r->avail = from - r->offset;
		int ret = walk_problem(w, Q2E_SEV_ERROR, Q2E_PROBLEM_PAST_END,
				       from, name,
				       "%s at 0x%" PRIx64 " (%" PRIu64
				       " bytes) is missing from the dump from 0x%" PRIx64
				       ": its section was removed",
				       name, r->offset, r->size, from);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/*
 * The regions are made in the pending records' own memory: a region is
 * smaller than a record, so region I is written where records before I
 * were.  Peak memory is the records and the owners, not the records and
 * a second copy of every region besides (3 MiB of 9 with 66,000 tables).
 */
int walk_finish_regions(struct walk *w)
{
	struct q2e_image *img = w->img;
	struct q2e_region *regions = (struct q2e_region *)w->pending, *shrunk;
	size_t n = w->npending, nreg = 0, nowners = 0, k = 0;

	_Static_assert(sizeof(struct q2e_region) <= sizeof(struct pending_region),
		       "regions are made in place of the pending records");
	int ret = sort_pending(w->pending, n, w->err);

	if (ret < 0)
		return ret;
	for (size_t i = 0; i < n; i++)
		nowners += w->pending[i].region.nowners;
	img->owners = malloc((nowners ? nowners : 1) * sizeof(*img->owners));
	if (!img->owners)
		return q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		/* Copied out before a region may overwrite it. */
		struct pending_region p = w->pending[i];
		struct q2e_owner *o = &img->owners[k];

		/* The records of one table are in owner order, and their
		 * runs do not overlap: the owners come out in order. */
		for (uint32_t j = 0; j < p.region.nowners; j++, k++) {
			img->owners[k] = p.owner;
			img->owners[k].index = p.owner.index + j;
		}
		if (nreg && same_region(&regions[nreg - 1], &p.region)) {
			if (regions[nreg - 1].nowners >
			    UINT32_MAX - p.region.nowners)
				return q2e_error_set(w->err, Q2E_ENOMEM,
						     "out of memory: a table has more than 4 billion owners");
			regions[nreg - 1].nowners += p.region.nowners;
			continue;
		}
		if (p.region.size > img->max_region_size)
			img->max_region_size = p.region.size;
		p.region.owners = o;
		regions[nreg++] = p.region;
	}
	/* The mapping, shrunk to the regions, is the model's now; not
	 * inside a huge page for little (the 41,000 regions of the 1 GiB
	 * image of 512-byte clusters end 30 KiB short of one). */
	size_t had = w->cap * sizeof(*w->pending);

	img->regions_bytes = q2e_array_trim_len(had, (nreg ? nreg : 1) *
						     sizeof(*regions));
	shrunk = q2e_remap_array(regions, had, img->regions_bytes);
	w->pending = NULL;
	w->npending = w->cap = 0;
	img->regions = shrunk;
	if (!img->regions)	/* no record: nothing was mapped */
		return q2e_error_set(w->err, Q2E_ENOMEM, "out of memory");
	img->nregions = nreg;
	return note_trimmed(w);
}

const struct q2e_region *q2e_image_region_at(const struct q2e_image *img,
					     uint64_t off)
{
	const struct q2e_region *best = NULL;
	size_t lo = q2e_first_above(img->regions, img->nregions, offset, off);

	/* Regions may overlap in a damaged image: take the nearest start. */
	for (size_t i = lo; i-- > 0;) {
		const struct q2e_region *r = &img->regions[i];

		if (r->offset + r->size > off) {
			best = r;
			break;
		}
		if (off - r->offset >= img->max_region_size)
			break;	/* none further back reaches OFF */
	}
	return best;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The walk: reads an image's header and every table it reaches, records
 * each metadata region and what is wrong with it.  Every offset and size
 * read from the image is checked against overflow, the file and QEMU's own
 * limits before it is used to read or allocate.
 *
 * This file holds the walk's order, the bounded reads every part uses, and
 * opening and closing a model; the parts are walk_header.c (header,
 * extensions, backing file name, LUKS area), walk_tables.c (L1, L2,
 * refcount and snapshot tables) and walk_bitmaps.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "qcow2elf/array.h"
#include "walk.h"

/* Range [off, off + len) ends inside the file, without overflow. */
bool walk_in_file(const struct q2e_image *img, uint64_t off, uint64_t len)
{
	return off <= img->file_size && len <= img->file_size - off;
}

/*
 * Reads up to LEN bytes at OFF into a new buffer of the bytes the file
 * holds there.  *GOT says how many that is.
 */
int walk_read_alloc(struct walk *w, uint64_t off, uint64_t len,
		    const char *what, uint8_t **out, uint64_t *got)
{
	struct q2e_image *img = w->img;
	uint8_t *buf;
	int64_t n;

	*out = NULL;
	*got = 0;
	/* Only what the file holds: a damaged size must not make us
	 * allocate a gigabyte for a table of a few bytes. */
	if (off >= img->file_size)
		len = 0;
	else if (len > img->file_size - off)
		len = img->file_size - off;
	/* Whole 8-byte entries: the part of one past the end reads as 0. */
	buf = calloc(1, (size_t)((len + 7) & ~7ULL) + 8);
	if (!buf)
		return q2e_error_set(w->err, Q2E_ENOMEM,
				     "out of memory reading %s of %" PRIu64
				     " bytes", what, len);
	n = q2e_source_pread(img->src, buf, (size_t)len, off, what, w->err);
	if (n < 0) {
		free(buf);
		return (int)n;
	}
	*out = buf;
	*got = (uint64_t)n;
	return 0;
}

/* Past this, walk_zalloc() maps pages rather than allocating them. */
#define ZALLOC_MAP_MIN (128U << 10)

/*
 * LEN bytes of zeros, for a window that reads as the file's bytes where
 * it has them and as zeros past its end, as QEMU reads: a header cluster
 * of 2 MiB or a snapshot table that claims 16 MiB, in a file of a few
 * kilobytes.  A large one is an anonymous mapping, so that only the pages
 * the file's bytes are read into, and those the walk reads zeros from
 * (the kernel's one zero page), cost anything; calloc() would make a
 * reused chunk zero with memset(), and under ASan poisons the shadow of
 * all of it at each free.  Freed with walk_zfree(), given the same LEN.
 */
uint8_t *walk_zalloc(uint64_t len)
{
	void *p;

	if (len < ZALLOC_MAP_MIN)
		return calloc(1, (size_t)len ? (size_t)len : 1);
	if (len > SIZE_MAX)
		return NULL;
	p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void walk_zfree(uint8_t *p, uint64_t len)
{
	if (!p)
		return;
	if (len < ZALLOC_MAP_MIN)
		free(p);
	else
		munmap(p, (size_t)len);
}

#define ENTRIES_CHUNK Q2E_TABLE_CHUNK	/* 64 KiB of entries at a time */

/*
 * The entries of the table of COUNT 8-byte big-endian entries at OFF, in
 * host order, a chunk at a time.  Entries past *NREAD read as 0, as past
 * the end of the file; so do those in a trailing hole (or, in a dump,
 * where no section holds bytes), which are not read at all, and chunks
 * inside a hole, which FN is not called for.  A table the header claims
 * is huge costs only what the file holds.
 */
uint64_t table_held_entries(struct q2e_image *img, uint64_t off,
			    uint64_t count)
{
	uint64_t end = q2e_source_held_end(img->src, off, count * 8);

	if (end > img->file_size)
		end = img->file_size > off ? img->file_size : off;
	/* An entry cut by the end of the file keeps its bytes. */
	return (end - off + 7) / 8 < count ? (end - off + 7) / 8 : count;
}

int table_entries_each(struct q2e_image *img, uint64_t off, uint64_t count,
		       const char *what, q2e_entries_fn fn, void *arg,
		       uint64_t *nread, struct q2e_error *err)
{
	uint64_t chunk[ENTRIES_CHUNK];

	count = table_held_entries(img, off, count);
	*nread = count;
	for (uint64_t i = 0; i < count; i += ENTRIES_CHUNK) {
		uint64_t want = count - i < ENTRIES_CHUNK ? count - i
							   : ENTRIES_CHUNK;
		uint64_t pos = off + i * 8, last;
		int64_t got;
		int ret;

		if (q2e_source_held_end(img->src, pos, want * 8) == pos)
			continue;	/* a hole: all zeros */
		got = q2e_source_pread(img->src, chunk, (size_t)want * 8, pos,
				       what, err);
		if (got < 0)
			return (int)got;
		last = ((uint64_t)got + 7) / 8;
		/* The rest of an entry the file cuts reads as zeros; the
		 * chunk past it is not used. */
		memset((uint8_t *)chunk + got, 0, (size_t)(last * 8 - (uint64_t)got));
		for (uint64_t j = 0; j < last; j++)
			chunk[j] = qcow2_be64((const uint8_t *)&chunk[j]);
		ret = last ? fn(arg, i, chunk, last) : 0;
		if (ret < 0)
			return ret;
		if (last < want) {	/* the file ends here after all */
			*nread = i + last;
			break;
		}
	}
	return 0;
}

int64_t q2e_image_table_chunk(struct q2e_image *img, uint64_t off,
			      uint64_t first, uint64_t n, uint64_t *out,
			      struct q2e_error *err)
{
	uint64_t pos = off + first * 8, end;
	int64_t got;

	if (n > ENTRIES_CHUNK)
		return q2e_error_set(err, Q2E_EUSAGE, "a chunk of %" PRIu64
				     " entries", n);
	if (first > (UINT64_MAX - off) / 8 || pos >= img->file_size)
		return 0;
	end = q2e_source_held_end(img->src, pos, n * 8);
	if (end > img->file_size)
		end = img->file_size;
	if (end <= pos)
		return 0;	/* a hole, or a dump's bytes no section holds */
	got = q2e_source_pread(img->src, out, (size_t)(end - pos), pos,
			       "a table", err);
	if (got < 0)
		return got;
	n = ((uint64_t)got + 7) / 8;
	/* The rest of an entry the file cuts reads as zeros. */
	memset((uint8_t *)out + got, 0, (size_t)(n * 8 - (uint64_t)got));
	for (uint64_t j = 0; j < n; j++)
		out[j] = qcow2_be64((const uint8_t *)&out[j]);
	return (int64_t)n;
}

static int copy_entries(void *arg, uint64_t first, const uint64_t *e,
			uint64_t n)
{
	memcpy((uint64_t *)arg + first, e, (size_t)n * 8);
	return 0;
}

/* A table of entries, whole (see table_entries_each()). */
int walk_read_entries(struct walk *w, uint64_t off, uint64_t count,
		      const char *what, uint64_t **out, uint64_t *nread)
{
	struct q2e_image *img = w->img;
	uint64_t end = q2e_source_held_end(img->src, off, count * 8);
	uint64_t *table;
	int ret;

	*out = NULL;
	*nread = 0;
	/* Room for the entries the file may hold; zeros where it has none. */
	if (end > img->file_size)
		end = img->file_size > off ? img->file_size : off;
	if ((end - off + 7) / 8 < count)
		count = (end - off + 7) / 8;
	table = calloc(count ? count : 1, 8);
	if (!table)
		return q2e_error_set(w->err, Q2E_ENOMEM,
				     "out of memory reading %s", what);
	ret = table_entries_each(img, off, count, what, copy_entries, table,
				 nread, w->err);
	if (ret < 0) {
		free(table);
		return ret;
	}
	*out = table;
	return 0;
}

int walk_add_truncated(struct walk *w, const char *name, uint64_t off,
		       uint64_t len)
{
	struct q2e_image *img = w->img;

	if (walk_in_file(img, off, len))
		return 0;
	return walk_add_problem(w, Q2E_SEV_ERROR, Q2E_PROBLEM_PAST_END, off,
				name, "%s at 0x%" PRIx64 " (%" PRIu64
				" bytes) runs past the end of the file (0x%"
				PRIx64 " bytes)", name, off, len,
				img->file_size);
}

int walk_add_misaligned(struct walk *w, const char *name, uint64_t off)
{
	if ((off & (w->img->cluster_size - 1)) == 0)
		return 0;
	return walk_add_problem(w, Q2E_SEV_WARNING, Q2E_PROBLEM_MISALIGNED, off,
				name, "%s at 0x%" PRIx64 " is not cluster aligned",
				name, off);
}

/* The runs are recorded first only where there is a problem to add: a
 * table in the file must not end them. */
int walk_note_truncated(struct walk *w, const char *name, uint64_t off,
			uint64_t len)
{
	int ret = 0;

	if (!walk_in_file(w->img, off, len))
		ret = walk_flush_problems(w);
	return ret < 0 ? ret : walk_add_truncated(w, name, off, len);
}

int walk_note_misaligned(struct walk *w, const char *name, uint64_t off)
{
	int ret = 0;

	if (off & (w->img->cluster_size - 1))
		ret = walk_flush_problems(w);
	return ret < 0 ? ret : walk_add_misaligned(w, name, off);
}

/*
 * The header's tables, and the rest of its cluster, advised together
 * before any is read: from a cold cache each read would otherwise wait
 * on the device in turn (q2e_source_advise()).  The bitmap directory
 * and the LUKS header are known from the extensions (AFTER_EXTENSIONS).
 */
static void advise_tables(struct walk *w, bool after_extensions)
{
	struct q2e_image *img = w->img;
	const struct qcow2_header *h = &img->hdr;
	struct q2e_source *src = img->src;

	if (after_extensions) {
		if (img->has_bitmaps_ext)
			q2e_source_advise(src, img->bitmaps_ext.bitmap_directory_offset,
					  img->bitmaps_ext.bitmap_directory_size);
		if (img->has_crypto_ext)
			q2e_source_advise(src, img->crypto_ext.offset,
					  img->crypto_ext.length);
		return;
	}
	q2e_source_advise(src, 0, img->cluster_size);
	q2e_source_advise(src, h->l1_table_offset, (uint64_t)h->l1_size * 8);
	q2e_source_advise(src, h->refcount_table_offset,
			  (uint64_t)h->refcount_table_clusters * img->cluster_size);
	/* Entries take about 100 bytes (a name, 16 of extra data). */
	if (h->nb_snapshots)
		q2e_source_advise(src, h->snapshots_offset,
				  (uint64_t)h->nb_snapshots * 128 > img->cluster_size
				  ? (uint64_t)h->nb_snapshots * 128 : img->cluster_size);
}

static int walk_image(struct walk *w)
{
	struct q2e_image *img = w->img;
	uint8_t *c0;
	int64_t n;
	int ret;

	ret = walk_read_header(w);
	if (ret < 0)
		return ret;
	advise_tables(w, false);
	/* A file that ends inside its header cluster reads on as zeros, as
	 * in QEMU: the extensions are read over the whole cluster. */
	c0 = walk_zalloc(img->cluster_size);
	if (!c0)
		return q2e_error_set(w->err, Q2E_ENOMEM,
				     "out of memory reading the header cluster of %"
				     PRIu64 " bytes", img->cluster_size);
	n = q2e_source_pread(img->src, c0,
			     (size_t)(img->cluster_size < img->file_size
				      ? img->cluster_size : img->file_size),
			     0, "the header cluster", w->err);
	if (n < 0) {
		walk_zfree(c0, img->cluster_size);
		return (int)n;
	}
	/* Version 2 has extensions too, from offset 72 (QEMU writes the
	 * backing format there). */
	ret = walk_read_extensions(w, c0, img->cluster_size);
	if (ret == 0)
		advise_tables(w, true);
	if (ret == 0)
		ret = walk_read_backing_name(w, c0, img->cluster_size);
	walk_zfree(c0, img->cluster_size);
	if (ret == 0)
		ret = walk_read_active_l1(w);
	if (ret == 0 && img->refcount_bits)
		ret = walk_read_refcounts(w);
	if (ret == 0)
		ret = walk_read_snapshots(w);
	if (ret == 0)
		ret = walk_read_bitmaps(w);
	if (ret == 0)
		ret = walk_read_crypto(w);
	if (ret == 0)
		ret = walk_flush_problems(w);
	if (ret == 0)
		ret = walk_finish_regions(w);
	if (ret == 0)
		ret = walk_plan_reads(w);
	return ret;
}

/* Builds the model of what SRC reads; takes SRC over. */
static int open_source(const char *path, struct q2e_source *src,
		       struct q2e_image **out, struct q2e_error *err)
{
	struct q2e_image *img;
	struct walk w = { 0 };
	int ret;

	img = calloc(1, sizeof(*img));
	if (!img || !(img->path = strdup(path))) {
		free(img);
		q2e_source_close(src);
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	}
	img->src = src;
	img->snapshot_extra_over_limit = -1;
	img->file_size = q2e_source_size(img->src);
	w.img = img;
	w.err = err;
	ret = walk_image(&w);
	walk_free_pending(&w);
	if (ret < 0) {
		q2e_image_close(img);
		return ret;
	}
	*out = img;
	return 0;
}

static q2e_open_observer *observer;
static void *observer_arg;

void q2e_image_observe_opens(q2e_open_observer *fn, void *arg)
{
	observer = fn;
	observer_arg = arg;
}

int q2e_image_open(const char *path, struct q2e_image **out,
		   struct q2e_error *err)
{
	struct q2e_source *src;
	int ret;

	*out = NULL;
	ret = q2e_source_open(path, &src, err);
	if (ret == 0)
		ret = open_source(path, src, out, err);
	if (ret == 0 && observer)
		observer(*out, observer_arg);
	return ret;
}

int q2e_image_open_memory(const char *name, const void *data, size_t len,
			  struct q2e_image **out, struct q2e_error *err)
{
	struct q2e_source *src;
	int ret;

	*out = NULL;
	ret = q2e_source_open_memory(name, data, len, &src, err);
	if (ret < 0)
		return ret;
	return open_source(name, src, out, err);
}

int q2e_input_describe(const char *path, enum q2e_source_kind *kind,
		       bool *no_data, struct q2e_error *err)
{
	const struct q2e_dump_meta *dm;
	struct q2e_source *src;

	if (q2e_source_open(path, &src, err) < 0)
		return err->code;
	dm = q2e_source_dump_meta(src);
	*kind = q2e_source_kind(src);
	*no_data = dm && dm->no_data;
	q2e_source_close(src);
	return 0;
}

const struct q2e_dump_meta *q2e_image_dump_meta(const struct q2e_image *img)
{
	return q2e_source_dump_meta(img->src);
}

const char *q2e_image_backing(const struct q2e_image *img)
{
	return img->backing_file && img->backing_file[0] ? img->backing_file
							  : NULL;
}

const char *q2e_image_data_file(const struct q2e_image *img)
{
	return img->l2.has_data_file && img->data_file ? img->data_file
						       : NULL;
}

const char *q2e_image_backing_format(const struct q2e_image *img)
{
	return img->backing_format && img->backing_format[0]
		       ? img->backing_format
		       : NULL;
}

uint64_t q2e_image_virtual_size(const struct q2e_image *img)
{
	return img->hdr.size & ~(uint64_t)511;
}

uint64_t q2e_image_allocated(const struct q2e_image *img)
{
	return q2e_source_allocated(img->src);
}

static bool same_file(const char *name, const struct stat *st)
{
	struct stat b;

	return name && stat(name, &b) == 0 && b.st_dev == st->st_dev &&
	       b.st_ino == st->st_ino;
}

/*
 * QEMU 7.2 opens a relative data file name from the working directory,
 * not the image's: run from elsewhere, a dump could replace the file
 * beside the image by that name, the one its writer meant and a later
 * QEMU reads.  That one is protected as well.
 */
static bool data_file_beside(const struct q2e_image *img,
			     const struct stat *st)
{
	const char *slash = strrchr(img->path, '/');
	size_t dir, len;
	char *name;
	bool same;

	if (!img->data_file || img->data_file[0] == '/' || !slash)
		return false;
	dir = (size_t)(slash - img->path) + 1;	/* with its slash */
	len = dir + strlen(img->data_file) + 1;
	name = malloc(len);
	if (!name)
		return false;
	snprintf(name, len, "%.*s%s", (int)dir, img->path, img->data_file);
	same = same_file(name, st);
	free(name);
	return same;
}

bool q2e_image_reads_file(struct q2e_image *img, const char *path)
{
	struct q2e_error err = { 0 };
	struct q2e_chain *c;
	struct stat st;
	bool reads = false;

	if (q2e_source_is_file(img->src, path))
		return true;
	/* Only an existing file can be replaced: the usual case, a new
	 * output, costs one stat(). */
	if (stat(path, &st) < 0 || (!img->backing_file && !img->data_file))
		return false;
	/* A pipe or a terminal holds no image to read. */
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return false;
	if (data_file_beside(img, &st))
		return true;
	/* The files as QEMU (and `map`) opens them; a chain that does not
	 * open has no file to protect beyond the one that failed. */
	if (q2e_chain_open_files(img, &c, &err) < 0)
		return same_file(img->data_file, &st);
	for (size_t i = 0; i < c->nlayers && !reads; i++)
		reads = same_file(c->layers[i].path, &st) ||
			same_file(c->layers[i].data_path, &st);
	q2e_chain_close(c);
	return reads;
}

void q2e_image_locking(bool force_share, bool reads_data)
{
	q2e_source_set_locking(force_share, reads_data);
}

void q2e_image_close(struct q2e_image *img)
{
	if (!img)
		return;
	/* First: its read-ahead thread reads the regions (prefetch.c). */
	q2e_source_close(img->src);
	img->src = NULL;
	for (size_t i = 0; i < img->nexts; i++)
		free(img->exts[i].data);
	free(img->exts);
	free(img->features);
	free(img->backing_file);
	free(img->backing_format);
	free(img->data_file);
	free(img->l1);
	free(img->reftable);
	for (size_t i = 0; i < img->nsnapshots; i++) {
		free(img->snapshots[i].id);
		free(img->snapshots[i].name);
		free(img->snapshots[i].extra);
	}
	free(img->snapshots);
	for (size_t i = 0; i < img->nbitmaps; i++) {
		free(img->bitmaps[i].name);
		free(img->bitmaps[i].extra);
		if (!img->bitmaps[i].table_shared)
			free(img->bitmaps[i].table);
	}
	free(img->bitmaps);
	q2e_unmap_array(img->regions, img->regions_bytes);
	free(img->owners);
	walk_free_problems(img);
	q2e_l2_cache_free(img->refcount_cache);
	free(img->path);
	free(img);
}

const char *q2e_image_feature_name(const struct q2e_image *img,
				   enum qcow2_feature_type type, unsigned bit)
{
	for (size_t i = 0; i < img->nfeatures; i++)
		if (img->features[i].type == type && img->features[i].bit == bit &&
		    img->features[i].name[0])
			return img->features[i].name;
	return qcow2_feature_name(type, bit);
}

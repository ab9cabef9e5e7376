/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Backing chains and guest block status.
 *
 * q2e_chain_block_status() answers what QEMU 7.2's bdrv_block_status()
 * answers `qemu-img map`, layer by layer:
 *   - qcow2: the subcluster type of the L2 entry (qcow2_co_block_status):
 *     normal, zero-alloc and unallocated-alloc subclusters have a host
 *     offset (not when encrypted); zero ones read as zeros; all others but
 *     unallocated hold data.  With metadata preallocation, data ranges are
 *     looked up in the file that holds them too, and a hole there reads as
 *     zeros.
 *   - an unallocated range goes to the backing file, one level deeper; past
 *     the backing file's end, or with no backing file, it reads as zeros.
 *   - raw: the file's own data and holes (file-posix).
 */
#define _GNU_SOURCE	/* memmem() */
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "qcow2elf/array.h"
#include "qcow2elf/model.h"
#include "source/source.h"

#define MAX_CHAIN_DEPTH 64

enum {
	ST_DATA = 1 << 0,
	ST_ZERO = 1 << 1,
	ST_OFFSET_VALID = 1 << 2,
	ST_ALLOCATED = 1 << 3,
	ST_RECURSE = 1 << 4,
};

/* QEMU's path_combine(): a relative name is relative to the image's dir. */
static char *resolve(const char *base, const char *name)
{
	char *copy, *dir, *out;
	size_t len;

	if (name[0] == '/')
		return strdup(name);
	copy = strdup(base);
	if (!copy)
		return NULL;
	dir = dirname(copy);
	len = strlen(dir) + strlen(name) + 2;
	out = malloc(len);
	if (out) {
		if (strcmp(dir, ".") == 0 && !strchr(base, '/'))
			snprintf(out, len, "%s", name);
		else
			snprintf(out, len, "%s/%s", dir, name);
	}
	free(copy);
	return out;
}

/* qcow2_detect_metadata_preallocation(): far more clusters in use than
 * the file occupies on disk.  A dump records the answer for its image. */
int q2e_image_metadata_preallocation(struct q2e_image *img, bool *out,
				     struct q2e_error *err)
{
	const struct q2e_dump_meta *dm = q2e_source_dump_meta(img->src);

	if (dm) {	/* not recorded: not a dump this tool wrote */
		*out = dm->metadata_preallocation == 1;
		return 0;
	}
	uint64_t real = q2e_source_allocated(img->src) / img->cluster_size;
	uint64_t threshold = real * 10 / 9 > real + 2 ? real * 10 / 9 : real + 2;
	uint64_t end = (img->file_size + img->cluster_size - 1) /
		       img->cluster_size;
	uint64_t count = 0, per_block;

	*out = false;
	/* The count is at most the clusters counted: below the threshold
	 * for a file that holds most of its clusters (most files), whose
	 * refcount blocks QEMU reads to find that out, and this does not. */
	if (!img->refcount_bits || end < threshold)
		return 0;
	/* Clusters no refcount block covers count 0: skip them by block, so
	 * that a sparse file costs what its refcount blocks hold. */
	per_block = img->cluster_size * 8 / img->refcount_bits;
	for (uint64_t i = 0; i < end && count < threshold;) {
		uint64_t ti = i / per_block, next = (ti + 1) * per_block, n;
		int ret;

		if (ti >= img->nreftable)
			break;
		/* qcow2_get_refcount() fails at a block that is not
		 * cluster aligned, and QEMU takes the failed guess for no. */
		if (img->reftable[ti] & ~QCOW2_REFTABLE_RESERVED_MASK &
		    (img->cluster_size - 1))
			return 0;
		/* A block at a time: QEMU stops counting at the threshold,
		 * which a block's count reaches or not the same. */
		ret = q2e_image_refcounts_nonzero(img, i,
						  (next < end ? next : end) - i,
						  &n, err);
		if (ret < 0)
			return ret;
		count += n;
		i = next;
	}
	*out = count >= threshold;
	return 0;
}

/* Which file PATH is, where it can be told. */
static void file_of(struct q2e_layer *l, const char *path)
{
	struct stat st;

	l->known_file = stat(path, &st) == 0;
	l->file_dev = l->known_file ? (uint64_t)st.st_dev : 0;
	l->file_ino = l->known_file ? (uint64_t)st.st_ino : 0;
}

/*
 * The layer of chain C whose file is L's, or NULL.  QEMU opens a backing
 * file for each time it is named, so a chain that comes back to a file
 * (an image naming itself, or two naming each other) is opened again and
 * again until memory runs out: qemu-img fails, after taking gigabytes.
 */
static const struct q2e_layer *layer_of_file(const struct q2e_chain *c,
					     const struct q2e_layer *l)
{
	for (size_t i = 0; l->known_file && i < c->nlayers; i++)
		if (c->layers[i].known_file &&
		    c->layers[i].file_dev == l->file_dev &&
		    c->layers[i].file_ino == l->file_ino)
			return &c->layers[i];
	return NULL;
}

static int add_layer(struct q2e_chain *c, struct q2e_layer *l,
		     struct q2e_error *err)
{
	size_t cap = c->nlayers;	/* grown one at a time: chains are short */

	if (q2e_grow(c->layers, cap, c->nlayers + 1) < 0)
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	c->layers[c->nlayers++] = *l;
	return 0;
}

/*
 * The external data file of layer L, which QEMU opens with the image and
 * block status asks where metadata is preallocated.  A chain for the
 * files alone does not need it unless then; nor does a dump, whose data
 * file was on the machine it was made on.
 */
static int open_data_file(struct q2e_layer *l, int mode,
			  struct q2e_error *err)
{
	struct q2e_error why = { 0 };

	if (!q2e_image_data_file(l->img) || mode == Q2E_CHAIN_INFO ||
	    (!l->metadata_preallocation &&
	     (mode == Q2E_CHAIN_FILES || q2e_image_dump_meta(l->img))))
		return 0;
	if (q2e_source_open_as(l->data_path, Q2E_SOURCE_DATA, &l->data_src,
			       &why) == 0)
		return 0;
	if (why.code == Q2E_ENOMEM)
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	return q2e_error_set(err, why.code,
			     "'%s': ext_data_file: QEMU could not open external data file: %s",
			     l->path, why.msg);
}

static int setup_qcow2_layer(struct q2e_layer *l, int mode,
			     struct q2e_error *err)
{
	struct q2e_image *img = l->img;
	const char *data_file = q2e_image_data_file(img);
	const struct q2e_dump_meta *meta = q2e_image_dump_meta(img);
	int ret;

	l->size = q2e_image_virtual_size(img);
	l->cache = q2e_l2_cache_new(img);
	if (!l->cache)
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	/* Unlike a backing file name, QEMU opens the data file name as it
	 * is: relative to the current directory, not to the image's. */
	l->data_path = strdup(data_file ? data_file : l->path);
	if (!l->data_path)
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	l->image_shown = meta && meta->image_name && *meta->image_name
			 ? meta->image_name : l->path;
	l->data_shown = data_file ? l->data_path : l->image_shown;
	ret = q2e_image_metadata_preallocation(img, &l->metadata_preallocation,
					       err);
	return ret < 0 ? ret : open_data_file(l, mode, err);
}

/*
 * Where TOP's backing file is: a name with a protocol (a colon before any
 * slash: QEMU's path_has_protocol()) is taken as it is, and "file:" names
 * a file from the current directory; other protocols are not read.  A
 * plain name is relative to TOP's directory.
 */
static char *backing_path(const struct q2e_layer *top, struct q2e_error *err)
{
	const char *name = q2e_image_backing(top->img);
	size_t proto = strcspn(name, ":/");
	char *path;

	if (name[proto] == ':' && !(proto == 4 && !strncmp(name, "file", 4))) {
		q2e_error_set(err, Q2E_EUNSUPPORTED,
			      "'%s': backing file '%s' is named by protocol '%.*s'; only files are read",
			      top->path, name, (int)proto, name);
		return NULL;
	}
	path = name[proto] == ':' ? strdup(name + 5) : resolve(top->path, name);
	if (!path)
		q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	return path;
}

/* The block drivers of Debian's QEMU 7.2 (qemu-img --help): a backing
 * format not among them fails QEMU's open ("Unknown driver"). */
static bool qemu_driver(const char *fmt)
{
	static const char *const drivers[] = {
		"blkdebug", "blklogwrites", "blkverify", "bochs", "cloop",
		"compress", "copy-before-write", "copy-on-read", "dmg", "file",
		"ftp", "ftps", "gluster", "host_cdrom", "host_device", "http",
		"https", "iscsi", "iser", "luks", "nbd", "nfs", "null-aio",
		"null-co", "nvme", "parallels", "preallocate", "qcow", "qcow2",
		"qed", "quorum", "raw", "rbd", "replication", "snapshot-access",
		"ssh", "throttle", "vdi", "vhdx", "vmdk", "vpc", "vvfat",
	};

	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
		if (strcmp(fmt, drivers[i]) == 0)
			return true;
	return false;
}

/* ERR, about the backing file of TOP, said of TOP, as qemu-img says it
 * ("Could not open 'top': Could not open backing file: ..."). */
static int backing_error(const struct q2e_layer *top, struct q2e_error *err)
{
	char inner[sizeof(err->msg)];
	int code = err->code;

	if (code == Q2E_ENOMEM)
		return code;
	snprintf(inner, sizeof(inner), "%s", err->msg);
	q2e_error_clear(err);	/* the first error set is kept */
	/* A dump moved away from its image finds no backing file beside it. */
	return q2e_error_set(err, code,
			     "'%s': backing_file: could not open backing file: %s%s",
			     top->path, inner,
			     top->img && q2e_image_dump_meta(top->img) &&
				     code == Q2E_EIO
			     ? " (a dump's backing file is looked for beside the dump, as QEMU looks beside the image: put the backing file, or its dump under its name, there)"
			     : "");
}

/* A qcow2 backing file opens as QEMU opens it, or not at all. */
static int open_qcow2_backing(struct q2e_chain *c, struct q2e_layer *l,
			      struct q2e_error *err)
{
	const char *why;
	int ret;

	l->format = Q2E_LAYER_QCOW2;
	ret = q2e_image_open(l->path, &l->img, err);
	if (ret < 0)
		ret = backing_error(&c->layers[c->nlayers - 1], err);
	why = ret || c->mode == Q2E_CHAIN_FILES || c->mode == Q2E_CHAIN_INFO
	      ? NULL
	      : c->mode == Q2E_CHAIN_AS_CHECK ? q2e_qemu_open_refusal(l->img)
					       : q2e_qemu_plain_open_refusal(l->img);
	if (why)
		ret = q2e_error_set(err, Q2E_ECORRUPT,
				    "'%s': QEMU would not open backing file '%s': %s",
				    c->layers[0].path, l->path, why);
	if (ret == 0)
		ret = add_layer(c, l, err);
	if (ret < 0) {
		q2e_image_close(l->img);
		free(l->path);
		return ret;
	}
	return setup_qcow2_layer(&c->layers[c->nlayers - 1], c->mode, err);
}

/*
 * Whether FMT's driver would refuse backing file SRC, whose first bytes
 * are BUF[0..LEN): those of qcow, qed, vdi, vhdx, parallels and bochs
 * open only a file their probe takes; vpc's also a fixed disk, whose
 * "conectix" footer is in its last 512 bytes; vmdk's also a text
 * descriptor, which names its createType.  dmg's looks for a trailer and
 * cloop's for no magic: taken as opened.
 */
static bool driver_refuses(const char *fmt, struct q2e_source *src,
			   const uint8_t *buf, size_t len, const char *path)
{
	static const char *const by_magic[] = {
		"qcow", "qed", "vdi", "vhdx", "parallels", "bochs",
	};
	struct q2e_error ignored = { 0 };
	uint64_t size = q2e_source_size(src);
	char foot[8];

	if (qcow2_probe_score(fmt, buf, len, path) > 0)
		return false;
	for (size_t i = 0; i < sizeof(by_magic) / sizeof(by_magic[0]); i++)
		if (strcmp(fmt, by_magic[i]) == 0)
			return true;
	if (strcmp(fmt, "vpc") == 0)
		return size < 512 ||
		       q2e_source_pread(src, foot, sizeof(foot), size - 512,
					"the VHD footer", &ignored) != 8 ||
		       memcmp(foot, "conectix", 8) != 0;
	if (strcmp(fmt, "vmdk") == 0)
		return !memmem(buf, len, "createType", 10);
	return false;
}

/*
 * The format QEMU opens backing file SRC (named PATH) as: FMT where the
 * image names one, else what QEMU's probe takes it for.  A dump reads as
 * the qcow2 image it came from (its bytes are that image's, so a format
 * it is named is tested on them).  NULL, with ERR set, where QEMU would not
 * open the file with that format: a format whose driver wants a magic the
 * file lacks ("Not a qcow image"), or LUKS, which needs a key qemu-img is
 * not given.
 */
static const char *backing_format(struct q2e_layer *top, const char *path,
				  struct q2e_source *src, const char *fmt,
				  struct q2e_error *err)
{
	uint8_t buf[QCOW2_PROBE_BYTES] = { 0 };
	struct q2e_error ignored = { 0 };

	if (fmt && (strcmp(fmt, "qcow2") == 0 || strcmp(fmt, "raw") == 0))
		return fmt;
	if (!fmt && q2e_source_kind(src) == Q2E_SOURCE_DUMP)
		return "qcow2";
	/* QEMU reads the first 2,048 bytes, zeros past the end. */
	if (q2e_source_pread(src, buf, sizeof(buf), 0, "the first bytes",
			     &ignored) < 0)
		return fmt ? fmt : "raw";	/* read as it was, failing */
	if (!fmt && !q2e_source_size(src))
		fmt = "raw";	/* QEMU's find_image_format(): empty */
	else if (!fmt)
		fmt = qcow2_probe_format(buf, sizeof(buf), path);
	else if (driver_refuses(fmt, src, buf, sizeof(buf), path)) {
		q2e_error_set(err, Q2E_ECORRUPT,
			      "'%s': QEMU would not open backing file '%s' as format '%s': it is not such a file",
			      top->path, path, fmt);
		return NULL;
	}
	return fmt;
}

/* A backing file not read, FMT, as the chain's last layer (info). */
static int add_other_layer(struct q2e_chain *c, struct q2e_layer *l,
			   struct q2e_source *src, const char *fmt,
			   struct q2e_error *err)
{
	l->format = Q2E_LAYER_OTHER;
	l->other_format = fmt;
	l->file_size = q2e_source_size(src);
	q2e_source_close(src);
	return add_layer(c, l, err);
}

static int open_backing(struct q2e_chain *c, struct q2e_error *err)
{
	struct q2e_layer *top = &c->layers[c->nlayers - 1];
	const char *named = q2e_image_backing_format(top->img), *fmt;
	struct q2e_layer l = { 0 };
	const struct q2e_layer *seen;
	struct q2e_source *src;
	bool qcow2;
	int ret;

	if (c->nlayers >= MAX_CHAIN_DEPTH)
		return q2e_error_set(err, Q2E_EUNSUPPORTED,
				     "'%s': backing chain deeper than %d",
				     c->layers[0].path, MAX_CHAIN_DEPTH);
	l.path = backing_path(top, err);
	if (!l.path)
		return err->code;
	if (named && !qemu_driver(named)) {
		ret = q2e_error_set(err, Q2E_ECORRUPT,
				    "'%s': backing file '%s' has format '%s', which QEMU has no driver for",
				    top->path, l.path, named);
		free(l.path);
		return ret;
	}
	/* A file that is not there fails QEMU's open whatever its format. */
	ret = q2e_source_open(l.path, &src, err);
	if (ret < 0) {
		free(l.path);
		return backing_error(top, err);
	}
	fmt = backing_format(top, l.path, src, named, err);
	if (fmt && c->mode == Q2E_CHAIN_INFO && strcmp(fmt, "qcow2") != 0 &&
	    strcmp(fmt, "raw") != 0)
		return add_other_layer(c, &l, src, fmt, err);
	ret = !fmt ? err->code
	      : strcmp(fmt, "qcow2") == 0 || strcmp(fmt, "raw") == 0 ? 0
	      : strcmp(fmt, "luks") == 0 ? q2e_error_set(err, Q2E_ECORRUPT,
			      "'%s': QEMU would not open backing file '%s': it is LUKS-encrypted, and qemu-img is given no key for it (key-secret)",
			      top->path, l.path)
	      : q2e_error_set(err, Q2E_EUNSUPPORTED,
			      "'%s': backing file '%s' has format '%s'%s; only qcow2 and raw backing files are read",
			      top->path, l.path, fmt,
			      named ? "" : " (QEMU's probe)");
	if (ret < 0) {
		q2e_source_close(src);
		free(l.path);
		return ret;
	}
	qcow2 = strcmp(fmt, "qcow2") == 0;
	if (!qcow2) {
		l.format = Q2E_LAYER_RAW;
		l.raw = src;
		/* bdrv_getlength(): whole sectors, the tail reads as zeros */
		l.file_size = q2e_source_size(src);
		l.size = (l.file_size + 511) & ~511ULL;
		l.data_path = strdup(l.path);
		if (!l.data_path) {
			q2e_source_close(src);
			free(l.path);
			return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
		}
		l.image_shown = l.data_shown = l.data_path;
		return add_layer(c, &l, err);
	}
	q2e_source_close(src);
	/* Opened as raw, a file names no backing file: no loop. */
	file_of(&l, l.path);
	seen = layer_of_file(c, &l);
	if (seen) {
		q2e_error_set(err, Q2E_ECORRUPT,
			      "'%s' is in the backing chain already (as '%s'): the chain loops",
			      l.path, seen->path);
		free(l.path);
		return backing_error(top, err);
	}
	return open_qcow2_backing(c, &l, err);
}

static int chain_open(struct q2e_image *img, int mode,
		      struct q2e_chain **out, struct q2e_error *err)
{
	struct q2e_chain *c = calloc(1, sizeof(*c));
	struct q2e_layer top = { .format = Q2E_LAYER_QCOW2, .img = img };
	int ret;

	*out = NULL;
	if (!c)
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	c->mode = mode;
	top.path = strdup(img->path);
	if (!top.path) {
		free(c);
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	}
	file_of(&top, top.path);
	ret = add_layer(c, &top, err);
	if (ret == 0)
		ret = setup_qcow2_layer(&c->layers[0], c->mode, err);
	while (ret == 0) {
		struct q2e_layer *l = &c->layers[c->nlayers - 1];

		if (l->format != Q2E_LAYER_QCOW2 || !q2e_image_backing(l->img))
			break;
		/* A redacted dump names its backing file by a placeholder:
		 * the chain ends with it. */
		if (q2e_image_dump_meta(l->img) &&
		    q2e_image_dump_meta(l->img)->redacted)
			break;
		ret = open_backing(c, err);
	}
	if (ret < 0) {
		if (c->nlayers == 0)
			free(top.path);
		q2e_chain_close(c);
		return ret;
	}
	*out = c;
	return 0;
}

int q2e_chain_open(struct q2e_image *img, struct q2e_chain **out,
		   struct q2e_error *err)
{
	return chain_open(img, Q2E_CHAIN_AS_QEMU, out, err);
}

int q2e_chain_open_for_check(struct q2e_image *img, struct q2e_chain **out,
			     struct q2e_error *err)
{
	return chain_open(img, Q2E_CHAIN_AS_CHECK, out, err);
}

int q2e_chain_open_files(struct q2e_image *img, struct q2e_chain **out,
			 struct q2e_error *err)
{
	return chain_open(img, Q2E_CHAIN_FILES, out, err);
}

int q2e_chain_open_info(struct q2e_image *img, struct q2e_chain **out,
			struct q2e_error *err)
{
	return chain_open(img, Q2E_CHAIN_INFO, out, err);
}

void q2e_chain_close(struct q2e_chain *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nlayers; i++) {
		struct q2e_layer *l = &c->layers[i];

		q2e_l2_cache_free(l->cache);
		if (i > 0)	/* the caller owns the top image */
			q2e_image_close(l->img);
		q2e_source_close(l->raw);
		q2e_source_close(l->data_src);
		free(l->data_path);
		free(l->path);
	}
	free(c->layers);
	free(c);
}

/*
 * file-posix's block status: data or a hole, and zeros past the end.  The
 * extent found is remembered in L: map asks about runs of clusters, and in
 * a preallocated image of small clusters the next run starts in the block
 * the last one ended in (an L2 table every 64 clusters), where lseek would
 * give the same answer.
 */
static int file_status(struct q2e_layer *l, struct q2e_source *src,
		       uint64_t off, uint64_t bytes, unsigned *flags,
		       uint64_t *pnum, struct q2e_error *err)
{
	bool data;
	uint64_t len;
	int ret;

	if (off >= l->known_off && off - l->known_off < l->known_len) {
		data = l->known_data;
		len = l->known_len - (off - l->known_off);
	} else {
		ret = q2e_source_extent(src, off, &data, &len, err);
		if (ret < 0)
			return ret;
		l->known_off = off;
		l->known_len = len;
		l->known_data = data;
	}
	if (len == 0) {		/* past the end of the file */
		*flags = ST_ZERO;
		*pnum = bytes;
		return 0;
	}
	*flags = data ? ST_DATA : ST_ZERO;
	*pnum = len < bytes ? len : bytes;
	return 0;
}

static bool has_host_offset(enum qcow2_subcluster_type t)
{
	return t == QCOW2_SUBCLUSTER_NORMAL ||
	       t == QCOW2_SUBCLUSTER_ZERO_ALLOC ||
	       t == QCOW2_SUBCLUSTER_UNALLOCATED_ALLOC;
}

static int subcluster_at(struct q2e_layer *l, uint64_t off,
			 struct qcow2_l2_entry *e,
			 enum qcow2_subcluster_type *type,
			 struct q2e_error *err)
{
	struct q2e_image *img = l->img;
	uint64_t in_cluster = off & (img->cluster_size - 1);
	unsigned sc = img->l2.extended
			      ? (unsigned)(in_cluster /
					   (img->cluster_size / QCOW2_SUBCLUSTERS))
			      : 0;
	int ret = q2e_image_l2_lookup(l->cache, off, e, err);

	if (ret < 0)
		return ret;
	*type = qcow2_l2_subcluster_type(e, &img->l2, sc);
	if (*type == QCOW2_SUBCLUSTER_INVALID)
		return q2e_error_set(err, Q2E_ECORRUPT,
				     "'%s': the L2 entry for guest offset 0x%" PRIx64
				     " has an invalid subcluster bitmap 0x%016" PRIx64,
				     img->path, off, e->bitmap);
	/* The entries qcow2_get_host_offset() refuses to follow. */
	if (*type == QCOW2_SUBCLUSTER_COMPRESSED && q2e_image_data_file(img))
		return q2e_error_set(err, Q2E_ECORRUPT,
				     "'%s': the L2 entry for guest offset 0x%" PRIx64
				     " is compressed, in an image with an external data file",
				     img->path, off);
	if ((*type == QCOW2_SUBCLUSTER_ZERO_PLAIN ||
	     *type == QCOW2_SUBCLUSTER_ZERO_ALLOC) && img->hdr.version < 3)
		return q2e_error_set(err, Q2E_ECORRUPT,
				     "'%s': the L2 entry for guest offset 0x%" PRIx64
				     " has the zero flag, which a version 2 image does not have",
				     img->path, off);
	if (!has_host_offset(*type))
		return 0;
	if (e->host_offset & (img->cluster_size - 1))
		return q2e_error_set(err, Q2E_ECORRUPT,
				     "'%s': the L2 entry for guest offset 0x%" PRIx64
				     " maps host offset 0x%" PRIx64
				     ", which is not cluster aligned",
				     img->path, off, e->host_offset);
	if (q2e_image_data_file(img) && e->host_offset != off - in_cluster)
		return q2e_error_set(err, Q2E_ECORRUPT,
				     "'%s': the L2 entry for guest offset 0x%" PRIx64
				     " maps offset 0x%" PRIx64 " of the external data file,"
				     " where QEMU keeps each cluster at its guest offset",
				     img->path, off, e->host_offset);
	return 0;
}

/*
 * Data at HOST that block status will ask the file about (metadata
 * preallocation, below): where the file's extent ends short of the file's
 * end, so does the answer, and the L2 tables past that need not be read.
 * With 512-byte clusters that is every run: an L2 table lies between each
 * 64 clusters and the next.  Lowers *LIMIT to the extent's end.
 */
static int file_limit(struct q2e_layer *l, uint64_t host, uint64_t *limit,
		      struct q2e_error *err)
{
	struct q2e_source *file = l->data_src ? l->data_src : l->img->src;
	uint64_t fnum, fsize = q2e_source_size(file);
	unsigned f2;
	int ret = file_status(l, file, host, *limit, &f2, &fnum, err);

	if (ret == 0 && host < fsize && fnum < fsize - host)
		*limit = fnum;
	return ret;
}

/* How many whole clusters after the one at AT go on as its TYPE does, up
 * to MAX: 0 to look one at a time. */
static uint64_t alike_after(struct q2e_layer *l, enum qcow2_subcluster_type type,
			    uint64_t at, uint64_t max)
{
	if (type == QCOW2_SUBCLUSTER_COMPRESSED)
		return q2e_image_l2_compressed_run(l->cache, at, max);
	return q2e_image_l2_run(l->cache, at, max);
}

/*
 * How far from OFF (of TYPE, at HOST where it has one) the subclusters
 * go on alike, up to LIMIT: count_contiguous_subclusters() and the runs
 * around it.  An error only where QEMU fails the whole question.
 */
static int status_run(struct q2e_layer *l, uint64_t off, uint64_t limit,
		      enum qcow2_subcluster_type type,
		      const struct qcow2_l2_entry *first, uint64_t host,
		      uint64_t *prun, struct q2e_error *err)
{
	struct q2e_image *img = l->img;
	uint64_t cs = img->cluster_size;
	uint64_t unit = img->l2.extended ? cs / QCOW2_SUBCLUSTERS : cs;
	uint64_t span = cs * img->l2_entries, run;
	enum qcow2_subcluster_type t2;
	struct qcow2_l2_entry e;
	int ret;

	run = (off | (unit - 1)) + 1 - off;
	/* The rest of OFF's cluster, from its entry's bitmap: a lookup a
	 * subcluster was 32 of them a question (131,072 L1 entries naming one
	 * table of zero clusters took map 13 s). */
	for (unsigned sc = (unsigned)((off & (cs - 1)) / unit) + 1;
	     img->l2.extended && sc < QCOW2_SUBCLUSTERS && run < limit &&
	     qcow2_l2_subcluster_type(first, &img->l2, sc) == type;
	     sc++)
		run += unit;
	while (run < limit) {
		/* The entries that continue the last one exactly (a
		 * preallocated image is all such runs), a table at a time;
		 * compressed ones, which have no host offset in the
		 * answer, as long as they are compressed. */
		if (!img->l2.extended)
			run += unit * alike_after(l, type, off + run - unit,
						  (limit - run + unit - 1) / unit);
		else if (!((off + run) & (cs - 1)))
			/* whole clusters, from the end of one: a run of
			 * alike subclusters has reached the cluster's end */
			run += cs * alike_after(l, type, off + run - unit,
						(limit - run + cs - 1) / cs);
		if (run >= limit)
			break;
		/* An L1 entry without an L2 table: all of its range at once. */
		uint64_t l1i = (off + run) / span;

		if (type == QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN &&
		    (l1i >= img->nl1 || !(img->l1[l1i] & QCOW2_OFFSET_MASK))) {
			/* Past the L1 table nothing is allocated at all. */
			if (l1i >= img->nl1 || (l1i + 1) * span - off >= limit) {
				run = limit;
				break;
			}
			run = (l1i + 1) * span - off;
			continue;
		}
		t2 = type;	/* if the table cannot be read */
		ret = subcluster_at(l, off + run, &e, &t2, err);
		if (ret == Q2E_ENOMEM)
			return ret;
		/* count_contiguous_subclusters() fails the whole question
		 * at an entry of the same table whose first subcluster is
		 * invalid, before it looks whether the type changed there;
		 * after a compressed cluster it looks no further. */
		if (ret < 0 && t2 == QCOW2_SUBCLUSTER_INVALID &&
		    type != QCOW2_SUBCLUSTER_COMPRESSED &&
		    !((off + run) & (img->cluster_size - 1)) &&
		    (off + run) / span == off / span)
			return ret;
		if (ret < 0) {
			/* QEMU answers a table at a time: what lies before
			 * an entry it cannot read is answered, and the next
			 * question, from that entry, fails. */
			q2e_error_clear(err);
			break;
		}
		if (t2 != type)
			break;
		if (has_host_offset(type) &&
		    e.host_offset + ((off + run) & (img->cluster_size - 1)) !=
			    host + run)
			break;
		run += unit;
	}
	*prun = run;
	return 0;
}

/* qcow2_co_block_status() and the generic part of bdrv_co_block_status(). */
static int qcow2_status(struct q2e_chain *c, size_t depth, uint64_t off,
			uint64_t bytes, unsigned *flags, uint64_t *pnum,
			uint64_t *map, struct q2e_error *err)
{
	struct q2e_layer *l = &c->layers[depth];
	struct q2e_image *img = l->img;
	bool crypto = img->hdr.crypt_method != QCOW2_CRYPT_NONE;
	enum qcow2_subcluster_type type;
	struct qcow2_l2_entry e;
	uint64_t host = 0, run, limit = bytes;
	int ret;

	ret = subcluster_at(l, off, &e, &type, err);
	if (ret < 0)
		return ret;
	if (has_host_offset(type))
		host = e.host_offset + (off & (img->cluster_size - 1));
	if (l->metadata_preallocation && type == QCOW2_SUBCLUSTER_NORMAL &&
	    !crypto) {
		ret = file_limit(l, host, &limit, err);
		if (ret < 0)
			return ret;
	}
	ret = status_run(l, off, limit, type, &e, host, &run, err);
	/* QEMU scans the whole question before the file's extent shortens
	 * the answer: an invalid extended entry past the extent fails it. */
	if (ret == 0 && limit < bytes && run >= limit && img->l2.extended) {
		uint64_t whole;

		ret = status_run(l, off, bytes, type, &e, host, &whole, err);
	}
	if (ret < 0)
		return ret;
	*pnum = run < bytes ? run : bytes;

	*flags = 0;
	*map = 0;
	if (has_host_offset(type) && !crypto) {
		*flags |= ST_OFFSET_VALID;
		*map = host;
	}
	if (type == QCOW2_SUBCLUSTER_ZERO_PLAIN ||
	    type == QCOW2_SUBCLUSTER_ZERO_ALLOC)
		*flags |= ST_ZERO;
	else if (type != QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN &&
		 type != QCOW2_SUBCLUSTER_UNALLOCATED_ALLOC)
		*flags |= ST_DATA;
	/* Only for metadata preallocation: QEMU 7.2 does not look into a
	 * raw external data file, even though its holes read as zeros. */
	if (l->metadata_preallocation && (*flags & ST_DATA) &&
	    (*flags & ST_OFFSET_VALID))
		*flags |= ST_RECURSE;

	if (*flags & (ST_DATA | ST_ZERO)) {
		*flags |= ST_ALLOCATED;
	} else if (depth + 1 >= c->nlayers) {
		*flags |= ST_ZERO;
	} else if (off >= c->layers[depth + 1].size) {
		*flags |= ST_ZERO;
	}

	if ((*flags & ST_RECURSE) && (*flags & ST_DATA) &&
	    !(*flags & ST_ZERO) && (*flags & ST_OFFSET_VALID)) {
		struct q2e_source *file = l->data_src ? l->data_src : img->src;
		uint64_t fsize = q2e_source_size(file), fnum;
		unsigned f2;

		ret = file_status(l, file, *map, *pnum, &f2, &fnum, err);
		if (ret < 0)
			return ret;
		bool eof = *map >= fsize || *map + fnum >= fsize;
		if (eof && (*map >= fsize || (f2 & ST_ZERO))) {
			*flags |= ST_ZERO;
		} else {
			*pnum = fnum;
			*flags |= f2 & ST_ZERO;
		}
	}
	return 0;
}

uint64_t q2e_chain_uniform_from(const struct q2e_chain *c)
{
	const struct q2e_layer *top = &c->layers[0];
	uint64_t from = top->size;

	if (top->format == Q2E_LAYER_QCOW2) {
		const struct q2e_image *img = top->img;
		uint64_t span = img->cluster_size * img->l2_entries;

		if (img->nl1 <= from / span)
			from = img->nl1 * span;
	}
	for (size_t i = 1; i < c->nlayers; i++)
		if (c->layers[i].size > from)
			from = c->layers[i].size;
	return from;
}

int q2e_chain_block_status(struct q2e_chain *c, uint64_t off, uint64_t bytes,
			   struct q2e_block_status *st, struct q2e_error *err)
{
	unsigned flags = 0;
	uint64_t map = 0;
	size_t depth;
	int ret;

	for (depth = 0;; depth++) {
		struct q2e_layer *l = &c->layers[depth];
		uint64_t pnum;

		if (off < l->size && bytes > l->size - off)
			bytes = l->size - off;
		if (l->format == Q2E_LAYER_RAW) {
			ret = file_status(l, l->raw, off, bytes, &flags, &pnum,
					  err);
			flags |= ST_OFFSET_VALID | ST_ALLOCATED;
			map = off;
		} else {
			ret = qcow2_status(c, depth, off, bytes, &flags, &pnum,
					   &map, err);
		}
		if (ret < 0)
			return ret;
		bytes = pnum;
		if (flags & (ST_ZERO | ST_DATA))
			break;
		if (depth + 1 >= c->nlayers) {
			flags = 0;
			break;
		}
	}
	*st = (struct q2e_block_status){
		.start = off,
		.length = bytes,
		.depth = (unsigned)depth,
		.present = flags & ST_ALLOCATED,
		.zero = flags & ST_ZERO,
		.data = flags & ST_DATA,
		.has_offset = flags & ST_OFFSET_VALID,
		.offset = map,
		.file = (flags & ST_OFFSET_VALID) ? c->layers[depth].data_shown
						  : NULL,
	};
	return 0;
}

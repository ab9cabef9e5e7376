/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Stable names of regions: the ELF section and symbol names of a dump, and
 * the names findings and diffs use.  n is a position in the snapshot table
 * or bitmap directory, i an index in the L1 or refcount table, j an index
 * in a bitmap table, all from 0.
 *
 *   region             section                      symbol
 *   header             .qcow2.header                qcow2_header
 *   extension          .qcow2.ext.<name>            ext_<name>
 *   unknown extension  .qcow2.ext.unknown.<magic>   ext_unknown_<magic>
 *   backing file name  .qcow2.backing-file          backing_file
 *   active L1          .qcow2.l1                    l1_table
 *   L2 at L1 index i   .qcow2.l2.<i>                l2_table_<i>
 *   refcount table     .qcow2.refcount-table        refcount_table
 *   refcount block i   .qcow2.refcount-block.<i>    refcount_block_<i>
 *   snapshot table     .qcow2.snapshot-table        snapshot_table
 *   its entry n                                     snapshot_<n>
 *   snapshot n's L1    .qcow2.snapshot.<n>.l1       snapshot_<n>_l1_table
 *   snapshot n's L2 i  .qcow2.snapshot.<n>.l2.<i>   snapshot_<n>_l2_table_<i>
 *   bitmap directory   .qcow2.bitmap-directory      bitmap_directory
 *   its entry n                                     bitmap_<n>
 *   bitmap n's table   .qcow2.bitmap.<n>.table      bitmap_<n>_table
 *   bitmap n's data j  .qcow2.bitmap.<n>.data.<j>   bitmap_<n>_data_<j>
 *   LUKS area          .qcow2.crypto-header         crypto_header
 *
 * Every such name in the tree comes from this file.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "qcow2elf/model.h"

const char *q2e_region_kind_name(enum q2e_region_kind kind)
{
	static const char *const names[Q2E_REGION_KIND_COUNT] = {
		[Q2E_REGION_HEADER] = "header",
		[Q2E_REGION_EXTENSION] = "header extension",
		[Q2E_REGION_BACKING_FILE] = "backing file name",
		[Q2E_REGION_L1] = "L1 table",
		[Q2E_REGION_REFCOUNT_TABLE] = "refcount table",
		[Q2E_REGION_SNAPSHOT_TABLE] = "snapshot table",
		[Q2E_REGION_BITMAP_DIRECTORY] = "bitmap directory",
		[Q2E_REGION_CRYPTO_HEADER] = "encryption header",
		[Q2E_REGION_L2] = "L2 table",
		[Q2E_REGION_REFCOUNT_BLOCK] = "refcount block",
		[Q2E_REGION_BITMAP_TABLE] = "bitmap table",
		[Q2E_REGION_BITMAP_DATA] = "bitmap data",
	};
	return (unsigned)kind < Q2E_REGION_KIND_COUNT ? names[kind] : "unknown";
}

/* ".N" when an extension's magic appeared before it in the header. */
static void ext_suffix(const struct q2e_image *img, const struct q2e_owner *o,
		       char *buf, size_t size, char sep)
{
	buf[0] = '\0';
	if (o->index < img->nexts && img->exts[o->index].nth)
		snprintf(buf, size, "%c%llu", sep,
			 (unsigned long long)o->index);
}

static int fmt(char *buf, size_t size, const char *f, ...)
	__attribute__((format(printf, 3, 4)));
static int fmt(char *buf, size_t size, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(buf, size, f, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/*
 * The names of the many (L2 tables, refcount blocks, bitmap data) are
 * built by hand: vsnprintf for each of a dump's 41,000 sections and as
 * many symbols was a tenth of a warm `dump --no-data`, and strlen() of
 * each piece 9% of what the main thread did in a warm dump; the pieces'
 * lengths are known.  As snprintf does, the name is cut to fit SIZE, and
 * -1 says it was.
 */
struct name_buf {
	char *p;
	size_t size, len;	/* the name's length, uncut */
};

/* A string literal and its length. */
struct piece {
	const char *s;
	size_t n;
};
#define PIECE(lit) ((struct piece){ lit, sizeof(lit) - 1 })

static void put_mem(struct name_buf *b, const char *s, size_t n)
{
	if (b->len < b->size)
		memcpy(b->p + b->len, s,
		       n < b->size - b->len ? n : b->size - b->len);
	b->len += n;
}

static void put_num(struct name_buf *b, unsigned long long v)
{
	char digits[24];
	size_t i = sizeof(digits);

	do {
		digits[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put_mem(b, digits + i, sizeof(digits) - i);
}

static int put_end(struct name_buf *b)
{
	if (b->size == 0)
		return -1;
	b->p[b->len < b->size ? b->len : b->size - 1] = '\0';
	return b->len < b->size ? 0 : -1;
}

/* PREFIX, N, then (if MID.s) MID and I: the name of a table of many. */
static int numbered(char *buf, size_t size, struct piece prefix,
		    unsigned long long n, struct piece mid,
		    unsigned long long i)
{
	struct name_buf b = { buf, size, 0 };

	put_mem(&b, prefix.s, prefix.n);
	put_num(&b, n);
	if (mid.s) {
		put_mem(&b, mid.s, mid.n);
		put_num(&b, i);
	}
	return put_end(&b);
}

static int name_of(const struct q2e_image *img, enum q2e_region_kind kind,
		   uint32_t ext_magic, const struct q2e_owner *o, bool section,
		   char *buf, size_t size)
{
	unsigned long long i = (unsigned long long)o->index;
	unsigned n = o->id;
	char sfx[32];

	switch (kind) {
	case Q2E_REGION_HEADER:
		return fmt(buf, size, section ? ".qcow2.header" : "qcow2_header");
	case Q2E_REGION_EXTENSION: {
		const char *name = qcow2_ext_name(ext_magic);
		char sym[64];

		ext_suffix(img, o, sfx, sizeof(sfx), section ? '.' : '_');
		if (!name) {
			return fmt(buf, size,
				   section ? ".qcow2.ext.unknown.%08x%s"
					   : "ext_unknown_%08x%s",
				   ext_magic, sfx);
		}
		if (section)
			return fmt(buf, size, ".qcow2.ext.%s%s", name, sfx);
		snprintf(sym, sizeof(sym), "%s", name);
		for (char *p = sym; *p; p++)
			if (*p == '-')
				*p = '_';
		return fmt(buf, size, "ext_%s%s", sym, sfx);
	}
	case Q2E_REGION_BACKING_FILE:
		return fmt(buf, size,
			   section ? ".qcow2.backing-file" : "backing_file");
	case Q2E_REGION_L1:
		if (o->kind == Q2E_OWNER_SNAPSHOT)
			return fmt(buf, size,
				   section ? ".qcow2.snapshot.%u.l1"
					   : "snapshot_%u_l1_table", n);
		return fmt(buf, size, section ? ".qcow2.l1" : "l1_table");
	case Q2E_REGION_L2:
		if (o->kind == Q2E_OWNER_SNAPSHOT)
			return numbered(buf, size,
					section ? PIECE(".qcow2.snapshot.")
						: PIECE("snapshot_"),
					n, section ? PIECE(".l2.")
						   : PIECE("_l2_table_"), i);
		return numbered(buf, size,
				section ? PIECE(".qcow2.l2.") : PIECE("l2_table_"),
				i, (struct piece){ NULL, 0 }, 0);
	case Q2E_REGION_REFCOUNT_TABLE:
		return fmt(buf, size,
			   section ? ".qcow2.refcount-table" : "refcount_table");
	case Q2E_REGION_REFCOUNT_BLOCK:
		return numbered(buf, size,
				section ? PIECE(".qcow2.refcount-block.")
					: PIECE("refcount_block_"),
				i, (struct piece){ NULL, 0 }, 0);
	case Q2E_REGION_SNAPSHOT_TABLE:
		return fmt(buf, size,
			   section ? ".qcow2.snapshot-table" : "snapshot_table");
	case Q2E_REGION_BITMAP_DIRECTORY:
		return fmt(buf, size, section ? ".qcow2.bitmap-directory"
					      : "bitmap_directory");
	case Q2E_REGION_BITMAP_TABLE:
		return fmt(buf, size,
			   section ? ".qcow2.bitmap.%u.table" : "bitmap_%u_table",
			   n);
	case Q2E_REGION_BITMAP_DATA:
		return numbered(buf, size,
				section ? PIECE(".qcow2.bitmap.") : PIECE("bitmap_"),
				n, section ? PIECE(".data.") : PIECE("_data_"), i);
	case Q2E_REGION_CRYPTO_HEADER:
		return fmt(buf, size,
			   section ? ".qcow2.crypto-header" : "crypto_header");
	case Q2E_REGION_KIND_COUNT:
		break;
	}
	return -1;
}

int q2e_region_symbol(const struct q2e_image *img, const struct q2e_region *r,
		      uint32_t k, char *buf, size_t size)
{
	if (k >= r->nowners)
		return -1;
	return name_of(img, r->kind, r->ext_magic, &r->owners[k], false, buf,
		       size);
}

int q2e_region_section(const struct q2e_image *img,
		       const struct q2e_region *r, char *buf, size_t size)
{
	return name_of(img, r->kind, r->ext_magic, &r->owners[0], true, buf,
		       size);
}

int q2e_structure_symbol(const struct q2e_image *img,
			 enum q2e_region_kind kind, uint32_t ext_magic,
			 const struct q2e_owner *o, char *buf, size_t size)
{
	return name_of(img, kind, ext_magic, o, false, buf, size);
}

int q2e_entry_symbol(enum q2e_region_kind table, uint32_t n, char *buf,
		     size_t size)
{
	switch (table) {
	case Q2E_REGION_SNAPSHOT_TABLE:
		return fmt(buf, size, "snapshot_%u", n);
	case Q2E_REGION_BITMAP_DIRECTORY:
		return fmt(buf, size, "bitmap_%u", n);
	default:
		return -1;
	}
}

const char *q2e_severity_name(enum q2e_severity s)
{
	switch (s) {
	case Q2E_SEV_NOTE:
		return "note";
	case Q2E_SEV_WARNING:
		return "warning";
	case Q2E_SEV_ERROR:
		return "error";
	}
	return "unknown";
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The byte source for dumps: an ELF file read through its ".qcow2.*"
 * sections, each holding the image's bytes at sh_addr.  Reads use pread()
 * at the sections' file offsets, so a dump of any size is read in bounded
 * memory.  The image's file size and name come from the dump's note.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcow2elf/array.h"
#include "qcow2elf/dumpfmt.h"
#include "source_impl.h"

struct dump_section {
	uint64_t addr;
	uint64_t size;
	uint64_t file_offset;
	bool nobits;
};

struct dump_priv {
	struct dump_section *secs;	/* sorted by addr */
	size_t nsecs;
	struct q2e_extent *extents;	/* data extents of the image file */
	size_t nextents;		/* 0: not recorded */
	size_t *cover;	/* cover[i]: of secs[0..i], the one reaching farthest */
	/* NOBITS sections outside --no-data: regions of zeros, read as the
	 * bytes no section holds are, but held as the image file held them
	 * (dump_held_end()); sorted by addr, with their own cover. */
	struct dump_section *zeros;
	size_t nzeros;
	size_t *zcover;
	uint64_t file_bytes;	/* the dump file's size */
	/* The dump file's bytes from WIN_OFF, WIN_LEN of them, kept from
	 * the last read that went on from where the one before it ended
	 * (window_pread()); WIN NULL until then. */
	uint8_t *win;
	uint64_t win_off;
	size_t win_len;
	uint64_t last_end;	/* where the last read of the file ended */
};

/*
 * Reads of section bytes that follow one another through the dump file
 * (a dump's sections lie in address order, so a walk in offset order
 * reads them so) are served from a window of WINDOW bytes read at once:
 * diff of two dumps of 41,000 sections made 82,000 reads of 512 bytes.
 * A read that jumps elsewhere is made alone, so that one that comes and
 * goes between two places does not read a window at each.  One reader at
 * a time, as every source: a dump's copying threads do not read a dump.
 */
#define WINDOW (64U << 10)

static int cmp_section(const void *a, const void *b)
{
	const struct dump_section *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return x->size < y->size ? 1 : x->size > y->size ? -1 : 0;
}

/* The section that holds image offset POS, or NULL. */
static const struct dump_section *find_cover(const struct dump_priv *p,
					     uint64_t pos)
{
	size_t lo = q2e_first_above(p->secs, p->nsecs, addr, pos);

	if (lo == 0)
		return NULL;
	const struct dump_section *s = &p->secs[p->cover[lo - 1]];

	return s->addr + s->size > pos ? s : NULL;
}

/* The first section that starts after POS, or NULL. */
static const struct dump_section *next_section(const struct dump_priv *p,
					       uint64_t pos)
{
	size_t lo = q2e_first_above(p->secs, p->nsecs, addr, pos);

	return lo < p->nsecs ? &p->secs[lo] : NULL;
}

/* LEN bytes of the dump file at AT into BUF, as pread() reads them. */
static ssize_t window_pread(struct q2e_source *src, struct dump_priv *p,
			    uint8_t *buf, size_t len, uint64_t at)
{
	bool onward = at >= p->last_end && at - p->last_end < WINDOW;
	ssize_t r;

	if (p->win && at >= p->win_off && at - p->win_off < p->win_len) {
		size_t n = p->win_len - (size_t)(at - p->win_off);

		n = n < len ? n : len;
		memcpy(buf, p->win + (at - p->win_off), n);
		p->last_end = at + n;
		return (ssize_t)n;
	}
	if (len < WINDOW / 2 && onward &&
	    (p->win || (p->win = malloc(WINDOW)))) {
		r = q2e_source_container_pread(src, p->win, WINDOW, at);
		p->win_len = r > 0 ? (size_t)r : 0;
		p->win_off = at;
		if (p->win_len)
			return window_pread(src, p, buf, len, at);
	}
	r = q2e_source_container_pread(src, buf, len, at);
	if (r > 0)
		p->last_end = at + (uint64_t)r;
	return r;
}

static int64_t dump_pread(struct q2e_source *src, void *buf, size_t len,
			  uint64_t off, const char *what,
			  struct q2e_error *err)
{
	struct dump_priv *p = src->priv;
	size_t done = 0;

	if (off >= src->size)
		return 0;
	if (len > src->size - off)
		len = (size_t)(src->size - off);
	while (done < len) {
		uint64_t pos = off + done;
		const struct dump_section *s = find_cover(p, pos);

		if (!s) {
			/* Bytes the dump held and lacks now (a section
			 * removed) end the read, as the end of a truncated
			 * image does: zeros there would read as a table. */
			size_t k = q2e_first_above(src->meta.missing,
						   src->meta.nmissing, offset,
						   pos);

			if (k > 0 && src->meta.missing[k - 1].offset +
					     src->meta.missing[k - 1].length >
				     pos)
				return (int64_t)done;
			/* Not metadata: zeros, as in a restored image. */
			const struct dump_section *next = next_section(p, pos);
			size_t n = len - done;

			if (next && next->addr - pos < n)
				n = (size_t)(next->addr - pos);
			if (k < src->meta.nmissing &&
			    src->meta.missing[k].offset - pos < n)
				n = (size_t)(src->meta.missing[k].offset - pos);
			memset((char *)buf + done, 0, n);
			done += n;
			continue;
		}
		if (s->nobits)
			return q2e_error_set(err, Q2E_EIO,
					     "'%s': %s at 0x%llx: the dump was written with --no-data and holds no bytes",
					     src->path, what,
					     (unsigned long long)pos);
		const struct dump_section *next = next_section(p, pos);
		uint64_t stop = s->addr + s->size;

		/* Where sections overlap (a hand-made dump's may disagree), a
		 * byte is read from find_cover()'s section, whichever offset a
		 * read starts at: it may change at the next section's start. */
		if (next && next->addr < stop)
			stop = next->addr;
		size_t n = (size_t)(stop - pos);

		if (n > len - done)
			n = len - done;
		uint64_t at = s->file_offset + (pos - s->addr);
		size_t got = 0;

		while (got < n) {
			ssize_t r = window_pread(src, p,
						 (uint8_t *)buf + done + got,
						 n - got, at + got);

			if (r <= 0)
				return q2e_error_set(err, Q2E_EIO,
						     "'%s': cannot read the dump's copy of %s at 0x%llx",
						     src->path, what,
						     (unsigned long long)pos);
			got += (size_t)r;
		}
		done += n;
	}
	return (int64_t)done;
}

static int dump_extent(struct q2e_source *src, uint64_t off, bool *is_data,
		       uint64_t *len, struct q2e_error *err)
{
	const struct dump_priv *p = src->priv;
	size_t lo;

	(void)err;
	if (off >= src->size) {
		*is_data = false;
		*len = 0;
		return 0;
	}
	if (!p->nextents) {	/* nothing recorded: all data, as QEMU assumes */
		*is_data = true;
		*len = src->size - off;
		return 0;
	}
	/* The first extent that ends after OFF: the one before the first
	 * that starts after it, if that one reaches past OFF. */
	lo = q2e_first_above(p->extents, p->nextents, offset, off);
	if (lo > 0 &&
	    p->extents[lo - 1].offset + p->extents[lo - 1].length > off)
		lo--;
	if (lo < p->nextents && p->extents[lo].offset <= off &&
	    p->extents[lo].length) {
		*is_data = true;
		*len = p->extents[lo].offset + p->extents[lo].length - off;
	} else {
		*is_data = false;
		*len = (lo < p->nextents && p->extents[lo].length
				? p->extents[lo].offset
				: src->size) - off;
	}
	return 0;
}

static int dump_data_extents(struct q2e_source *src, struct q2e_extent **out,
			     size_t *n, struct q2e_error *err)
{
	const struct dump_priv *p = src->priv;

	*out = NULL;
	*n = 0;
	if (!p->nextents)
		return 0;
	*out = malloc(p->nextents * sizeof(**out));
	if (!*out)
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	memcpy(*out, p->extents, p->nextents * sizeof(**out));
	*n = p->nextents;
	return 0;
}

static void dump_close(struct q2e_source *src)
{
	struct dump_priv *p = src->priv;

	if (p) {
		free(p->secs);
		free(p->cover);
		free(p->zeros);
		free(p->zcover);
		free(p->extents);
		free(p->win);
		free(p);
	}
	free(src->meta.missing);
	free(src->meta.redacted);
	src->meta.redacted = NULL;
	src->meta.missing = NULL;
	src->meta.nmissing = 0;
}

/*
 * Whether the dump file's copy of image bytes [OFF, END) is a hole of the
 * dump file, and so reads as zeros, wherever a section holds them.  Bytes
 * in memory, or written out, count as data: a dump that records a hole of
 * the image where its section holds other bytes reads with those bytes.
 */
static bool copy_is_hole(struct q2e_source *src, uint64_t off, uint64_t end)
{
	const struct dump_priv *p = src->priv;

	if (src->fd < 0)
		return false;
	while (off < end) {
		const struct dump_section *s = find_cover(p, off);
		uint64_t stop;

		if (!s) {
			s = next_section(p, off);
			if (!s)
				break;
			off = s->addr;
			continue;
		}
		const struct dump_section *next = next_section(p, off);

		/* As dump_pread() reads: a later section may take over. */
		stop = s->addr + s->size < end ? s->addr + s->size : end;
		if (next && next->addr < stop)
			stop = next->addr;
		if (!s->nobits) {
			off_t at = (off_t)(s->file_offset + (off - s->addr));
			off_t data = lseek(src->fd, at, SEEK_DATA);

			if (data < 0 ? errno != ENXIO
				     : (uint64_t)data < at + (stop - off))
				return false;
		}
		off = stop;
	}
	return true;
}

/* Of SECS (sorted, with COVER) that start before END, the farthest end. */
static uint64_t reach_before(const struct dump_section *secs, size_t n,
			     const size_t *cover, uint64_t end)
{
	size_t lo = q2e_first_above(secs, n, addr, end - 1);
	const struct dump_section *s;

	if (lo == 0)
		return 0;
	s = &secs[cover[lo - 1]];
	return s->addr + s->size;
}

/*
 * A dump holds the bytes of its sections; the rest reads as zeros.  So do
 * their bytes where the image file had a hole (its recorded extents) and
 * the dump file has one too, as dump leaves it: a table in a hole costs
 * nothing read from the dump either.
 */
static uint64_t dump_held_end(struct q2e_source *src, uint64_t off,
			      uint64_t end)
{
	const struct dump_priv *p = src->priv;
	uint64_t reach = reach_before(p->secs, p->nsecs, p->cover, end);
	uint64_t zreach = reach_before(p->zeros, p->nzeros, p->zcover, end);
	const struct q2e_extent *x;
	size_t lo;
	uint64_t held;

	/* A region of zeros dump wrote as NOBITS is held as the image held
	 * its zeros: a table of zeros keeps its entries, as on the image.
	 * Such a section costs a hostile dump nothing: its zeros held at
	 * once stop at as many bytes as the dump file has, as if a section
	 * held them (a NOBITS section of 1 GiB as a bitmap table took 1 GiB
	 * and a minute to read). */
	if (zreach > off + p->file_bytes && off + p->file_bytes > off)
		zreach = off + p->file_bytes;
	if (zreach > reach)
		reach = zreach;
	if (reach <= off)
		return off;
	if (reach < end)
		end = reach;
	if (!p->nextents)
		return end;
	/* The last data extent that starts before END, sorted and apart. */
	lo = q2e_first_above(p->extents, p->nextents, offset, end - 1);
	x = lo ? &p->extents[lo - 1] : NULL;
	held = !x || x->offset + x->length <= off ? off
	       : x->offset + x->length < end	  ? x->offset + x->length
						  : end;
	return held == end || copy_is_hole(src, held, end) ? held : end;
}

static const struct q2e_source_ops dump_ops = {
	.pread = dump_pread,
	.extent = dump_extent,
	.data_extents = dump_data_extents,
	.held_end = dump_held_end,
	.close = dump_close,
};

/* V as a decimal number of at most MAX: digits only, as dump writes it. */
static bool note_number(const char *v, uint64_t max, uint64_t *out)
{
	uint64_t n = 0;

	if (!*v)
		return false;
	for (; *v; v++) {
		unsigned d = (unsigned)(*v - '0');

		if (d > 9 || n > (max - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*out = n;
	return true;
}

/* One "qcow2elf:KEY=VALUE" fact (see dumpfmt.h); a number that is not
 * one is an error naming it (a note edited by hand: "file-size=-1" read as 2^64 - 1,
 * "852000junk" as 852000). */
static int note_fact(struct q2e_source *src, const char *kv, bool *found,
		     struct q2e_error *err)
{
	const char *eq = strchr(kv, '=');
	uint64_t n = 0;
	size_t klen;
	const char *v;
	bool ok = true;

	if (!eq)
		return 0;
	klen = (size_t)(eq - kv);
	v = eq + 1;
#define KEY(k) (klen == sizeof(k) - 1 && memcmp(kv, k, klen) == 0)
	if (KEY("image")) {
		free(src->meta.image_name);
		src->meta.image_name = strdup(v);
	} else if (KEY("version")) {
		free(src->meta.tool_version);
		src->meta.tool_version = strdup(v);
	} else if (KEY("file-size")) {
		ok = note_number(v, UINT64_MAX, &src->meta.file_size);
		*found = true;
	} else if (KEY("metadata-preallocation")) {
		src->meta.metadata_preallocation = strcmp(v, "1") == 0;
	} else if (KEY("virtual-size")) {
		ok = note_number(v, UINT64_MAX, &src->meta.virtual_size);
	} else if (KEY("cluster-size")) {
		ok = note_number(v, UINT32_MAX, &n);
		src->meta.cluster_size = (uint32_t)n;
	} else if (KEY("qcow2-version")) {
		ok = note_number(v, UINT32_MAX, &n);
		src->meta.version = (uint32_t)n;
	} else if (KEY("no-data")) {
		src->meta.no_data = strcmp(v, "1") == 0;
	} else if (KEY("redacted")) {
		free(src->meta.redacted);
		src->meta.redacted = strdup(v);
	}
#undef KEY
	if (!ok)
		return q2e_error_set(err, Q2E_ECORRUPT,
				     "'%s': the note's qcow2elf:%.*s=%.40s is not a decimal number that fits",
				     src->path, (int)klen, kv, v);
	return 0;
}

/* An error for a file cut short at BYTES, inside WHAT, which ends at END. */
static int cut_short(const struct q2e_source *src, const char *what,
		     uint64_t end, uint64_t bytes, struct q2e_error *err)
{
	return q2e_error_set(err, Q2E_ECORRUPT,
			     "'%s': an ELF file cut short: its %s ends at %" PRIu64
			     " bytes, the file at %" PRIu64,
			     src->path, what, end, bytes);
}

/* Where N entries of SIZE bytes from OFF end, or UINT64_MAX past it. */
static uint64_t table_end(uint64_t off, uint64_t n, uint64_t size)
{
	if (size && n > (UINT64_MAX - off) / size)
		return UINT64_MAX;
	return off + n * size;
}

static int read_notes(struct q2e_source *src, Elf *elf, bool *found,
		      struct q2e_error *err)
{
	uint64_t bytes = ((struct dump_priv *)src->priv)->file_bytes;
	size_t phnum, plen = strlen(Q2E_NOTE_PREFIX);
	GElf_Ehdr eh;

	if (gelf_getehdr(elf, &eh) && eh.e_phnum &&
	    table_end(eh.e_phoff, eh.e_phnum, eh.e_phentsize) > bytes)
		return cut_short(src, "program header table",
				 table_end(eh.e_phoff, eh.e_phnum,
					   eh.e_phentsize), bytes, err);
	if (elf_getphdrnum(elf, &phnum) != 0)
		return q2e_error_set(err, Q2E_ENOTQCOW2,
				     "'%s': ELF file without program headers, not a qcow2elf dump",
				     src->path);
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_NOTE)
			continue;
		if (ph.p_offset > bytes || ph.p_filesz > bytes - ph.p_offset)
			return cut_short(src, "note",
					 table_end(ph.p_offset, 1, ph.p_filesz),
					 bytes, err);
		Elf_Data *d = elf_getdata_rawchunk(elf, (int64_t)ph.p_offset,
						   ph.p_filesz, ELF_T_NHDR);
		if (!d)
			continue;
		size_t off = 0, noff, doff;
		GElf_Nhdr nh;

		while ((off = gelf_getnote(d, off, &nh, &noff, &doff)) > 0) {
			const char *name = (const char *)d->d_buf + noff;

			if (nh.n_type != Q2E_NT_VERSION || nh.n_namesz <= plen ||
			    name[nh.n_namesz - 1] != '\0' ||
			    strncmp(name, Q2E_NOTE_PREFIX, plen) != 0)
				continue;
			int ret = note_fact(src, name + plen, found, err);

			if (ret < 0)
				return ret;
		}
	}
	if (*found && !src->meta.image_name)
		src->meta.image_name = strdup("");
	if (*found && !src->meta.image_name)
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	return 0;
}

/* Whether the ELF file's byte order is not this host's. */
static bool foreign_endian(Elf *elf)
{
	const char *ident = elf_getident(elf, NULL);
	const uint16_t one = 1;
	int host = *(const uint8_t *)&one ? ELFDATA2LSB : ELFDATA2MSB;

	return ident && ident[EI_DATA] != host;
}

static uint64_t swap64(uint64_t v)
{
	return __builtin_bswap64(v);
}

/* Pairs of 64-bit words in the file's byte order (dumpfmt.h), sorted and
 * apart, in section NAME. */
static int read_ranges(struct q2e_source *src, Elf *elf, Elf_Scn *scn,
		       const GElf_Shdr *sh, const char *name,
		       struct q2e_extent **out, size_t *nout,
		       struct q2e_error *err)
{
	Elf_Data *d = elf_getdata(scn, NULL);
	size_t n = sh->sh_size / 16;
	bool swap = foreign_endian(elf);
	struct q2e_extent *list;

	/* A NOBITS section has a size but no bytes (d_buf is NULL). */
	if (sh->sh_size % 16)
		return q2e_error_set(err, Q2E_ECORRUPT,
				     "'%s': section %s at file offset 0x%" PRIx64 " is damaged: its %" PRIu64 " bytes are not whole pairs of 64-bit words",
				     src->path, name, (uint64_t)sh->sh_offset,
				     (uint64_t)sh->sh_size);
	if (!d || d->d_size < n * 16 || (n && !d->d_buf))
		return q2e_error_set(err, Q2E_ECORRUPT,
				     "'%s': section %s at file offset 0x%" PRIx64 " is damaged: its %" PRIu64 " bytes are not in the file (NOBITS, or past its end)",
				     src->path, name, (uint64_t)sh->sh_offset,
				     (uint64_t)sh->sh_size);
	if (!n || *out)		/* a second one is ignored */
		return 0;
	list = malloc(n * sizeof(*list));
	if (!list)
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	memcpy(list, d->d_buf, n * 16);
	for (size_t i = 0; i < n; i++) {
		struct q2e_extent *x = &list[i];

		if (swap) {
			x->offset = swap64(x->offset);
			x->length = swap64(x->length);
		}

		if (x->offset + x->length < x->offset ||
		    (i && x->offset < list[i - 1].offset + list[i - 1].length)) {
			free(list);
			return q2e_error_set(err, Q2E_ECORRUPT,
					     "'%s': section %s: range %zu overlaps or wraps",
					     src->path, name, i);
		}
	}
	*out = list;
	*nout = n;
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct q2e_extent *x = a, *y = b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/*
 * What the dump was written with (HELD, from Q2E_REGIONS_SECTION) and no
 * section holds any more (PRESENT, sorted by offset): the ranges a tool
 * that trims files removed.
 */
static int find_missing(struct q2e_source *src, const struct q2e_extent *held,
			size_t nheld, const struct q2e_extent *present,
			size_t npresent, struct q2e_error *err)
{
	struct q2e_extent *miss = NULL;
	size_t n = 0, cap = 0, j = 0;
	uint64_t covered = 0;	/* present sections reach this far */

	for (size_t i = 0; i < nheld; i++) {
		uint64_t pos = held[i].offset, end = pos + held[i].length;

		while (pos < end) {
			while (j < npresent && present[j].offset <= pos) {
				uint64_t e = present[j].offset + present[j].length;

				covered = e > covered ? e : covered;
				j++;
			}
			if (covered > pos) {
				pos = covered < end ? covered : end;
				continue;
			}
			uint64_t stop = j < npresent && present[j].offset < end
						? present[j].offset : end;

			if (q2e_grow(miss, cap, n + 1) < 0) {
				free(miss);
				return q2e_error_set(err, Q2E_ENOMEM,
						     "out of memory");
			}
			miss[n++] = (struct q2e_extent){ pos, stop - pos };
			pos = stop;
		}
	}
	src->meta.missing = miss;
	src->meta.nmissing = n;
	return 0;
}

/* COVER[i]: of SECS[0..i] (sorted here by address), the one reaching
 * farthest. */
static int make_cover(struct dump_section *secs, size_t n, size_t **cover,
		      struct q2e_error *err)
{
	if (n == 0)
		return 0;
	qsort(secs, n, sizeof(*secs), cmp_section);
	*cover = malloc(n * sizeof(**cover));
	if (!*cover)
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		size_t best = i;

		if (i > 0) {
			const struct dump_section *a = &secs[(*cover)[i - 1]];

			if (a->addr + a->size > secs[i].addr + secs[i].size)
				best = (*cover)[i - 1];
		}
		(*cover)[i] = best;
	}
	return 0;
}

/* One ".qcow2.*" section: where it is, and that it lies where it can. */
static int check_region_section(struct q2e_source *src, const char *name,
				const GElf_Shdr *sh, struct q2e_error *err)
{
	if (sh->sh_type != SHT_NOBITS &&
	    (sh->sh_offset > src->size ||
	     sh->sh_size > src->size - sh->sh_offset))
		return q2e_error_set(err, Q2E_ECORRUPT,
				     "'%s': section %s at file offset 0x%llx runs past the end of the dump",
				     src->path, name,
				     (unsigned long long)sh->sh_offset);
	/* Every region the dump holds lies in the image file its note
	 * describes: a section past it means a damaged note. */
	if (sh->sh_addr > src->meta.file_size ||
	    sh->sh_size > src->meta.file_size - sh->sh_addr)
		return q2e_error_set(err, Q2E_ECORRUPT,
				     "'%s': section %s at 0x%llx ends past the end of the image file (%llu bytes) the dump's note claims",
				     src->path, name,
				     (unsigned long long)sh->sh_addr,
				     (unsigned long long)src->meta.file_size);
	return 0;
}

struct section_scan {
	struct q2e_extent *held;	/* Q2E_REGIONS_SECTION */
	size_t nheld;
	struct q2e_extent *present;	/* every ".qcow2.*" section */
	size_t npresent, cappresent, capsecs, capzeros;
};

static int scan_section(struct q2e_source *src, Elf *elf, Elf_Scn *scn,
			const char *name, struct dump_priv *p,
			struct section_scan *sc, struct q2e_error *err)
{
	GElf_Shdr sh;
	int ret;

	if (!gelf_getshdr(scn, &sh))
		return 0;
	if (name && strcmp(name, Q2E_EXTENTS_SECTION) == 0)
		return read_ranges(src, elf, scn, &sh, name, &p->extents,
				   &p->nextents, err);
	if (name && strcmp(name, Q2E_REGIONS_SECTION) == 0)
		return read_ranges(src, elf, scn, &sh, name, &sc->held,
				   &sc->nheld, err);
	if (!(sh.sh_flags & SHF_ALLOC) || !name ||
	    strncmp(name, Q2E_SECTION_PREFIX, strlen(Q2E_SECTION_PREFIX)) != 0)
		return 0;
	ret = check_region_section(src, name, &sh, err);
	if (ret < 0)
		return ret;
	if (q2e_grow(sc->present, sc->cappresent, sc->npresent + 1) < 0)
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	sc->present[sc->npresent++] = (struct q2e_extent){ sh.sh_addr,
							   sh.sh_size };
	/* Outside --no-data, a NOBITS section is a region of zeros: read as
	 * the bytes no section holds are, and not held. */
	if (sh.sh_type == SHT_NOBITS && !src->meta.no_data) {
		if (q2e_grow(p->zeros, sc->capzeros, p->nzeros + 1) < 0)
			return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
		p->zeros[p->nzeros++] = (struct dump_section){
			.addr = sh.sh_addr, .size = sh.sh_size, .nobits = true,
		};
		return 0;
	}
	if (q2e_grow(p->secs, sc->capsecs, p->nsecs + 1) < 0)
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	p->secs[p->nsecs++] = (struct dump_section){
		.addr = sh.sh_addr,
		.size = sh.sh_size,
		.file_offset = sh.sh_offset,
		.nobits = sh.sh_type == SHT_NOBITS,
	};
	return 0;
}

/*
 * Whether the section header table, which the dump writes last, lies in
 * the file: a dump cut short (a download that stopped) has lost it, and
 * libelf then finds no sections, as if every region had been removed.
 */
static int check_complete(struct q2e_source *src, Elf *elf,
			  struct q2e_error *err)
{
	uint64_t bytes = ((struct dump_priv *)src->priv)->file_bytes, end;
	size_t shnum = 0;
	GElf_Ehdr eh;

	/* Past 65,279 sections the count is section 0's size; libelf
	 * reads a table the file does not hold in full as none at all. */
	if (gelf_getehdr(elf, &eh)) {
		shnum = eh.e_shnum;
		if (!shnum && elf_getshdrnum(elf, &shnum) != 0)
			shnum = 0;
	}
	if (!shnum || eh.e_shoff == 0)
		return q2e_error_set(err, Q2E_ECORRUPT,
				     "'%s': a qcow2elf dump without its section header table (cut short?)",
				     src->path);
	end = table_end(eh.e_shoff, shnum, eh.e_shentsize);
	if (end > bytes)
		return cut_short(src, "section header table", end, bytes, err);
	return 0;
}

static int read_sections(struct q2e_source *src, Elf *elf,
			 struct dump_priv *p, struct q2e_error *err)
{
	struct section_scan sc = { 0 };
	size_t shstrndx;
	Elf_Scn *scn = NULL;
	int ret = check_complete(src, elf, err);

	if (ret < 0)
		return ret;
	if (elf_getshdrstrndx(elf, &shstrndx) != 0)
		return q2e_error_set(err, Q2E_ENOTQCOW2,
				     "'%s': ELF file without section names, not a qcow2elf dump",
				     src->path);
	while (ret == 0 && (scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		const char *name = gelf_getshdr(scn, &sh)
			? elf_strptr(elf, shstrndx, sh.sh_name) : NULL;

		ret = scan_section(src, elf, scn, name, p, &sc, err);
	}
	if (ret == 0)
		ret = make_cover(p->secs, p->nsecs, &p->cover, err);
	if (ret == 0)
		ret = make_cover(p->zeros, p->nzeros, &p->zcover, err);
	if (ret == 0 && sc.nheld) {
		/* No range present at all is a NULL array: qsort() must not
		 * see it (fuzz: found/ubsan-elf-source-qsort-null). */
		if (sc.npresent)
			qsort(sc.present, sc.npresent, sizeof(*sc.present),
			      cmp_range);
		ret = find_missing(src, sc.held, sc.nheld, sc.present,
				   sc.npresent, err);
	}
	free(sc.held);
	free(sc.present);
	return ret;
}

int q2e_dump_source_init(struct q2e_source *src, struct q2e_error *err)
{
	struct dump_priv *p;
	bool found = false;
	Elf *elf;
	int ret;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return q2e_error_set(err, Q2E_EIO, "libelf is out of date");
	elf = src->mem ? elf_memory((char *)src->mem, (size_t)src->size)
		       : elf_begin(src->fd, ELF_C_READ_MMAP, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF) {
		const char *why = elf_errmsg(elf_errno());

		if (elf)
			elf_end(elf);
		if (src->size < sizeof(Elf64_Ehdr))
			return q2e_error_set(err, Q2E_ECORRUPT,
					     "'%s': an ELF file cut short: %" PRIu64
					     " bytes, less than its ELF header",
					     src->path, src->size);
		return q2e_error_set(err, Q2E_ENOTQCOW2,
				     "'%s': unreadable ELF file: %s", src->path,
				     why ? why : "not an ELF file libelf reads");
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		elf_end(elf);
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	}
	src->priv = p;
	src->ops = &dump_ops;
	src->kind = Q2E_SOURCE_DUMP;
	src->meta.metadata_preallocation = -1;
	p->file_bytes = src->size;
	ret = read_notes(src, elf, &found, err);
	if (ret == 0 && !found)
		ret = q2e_error_set(err, Q2E_ENOTQCOW2,
				    "'%s': an ELF file, but not a qcow2elf dump (no qcow2elf:file-size note)",
				    src->path);
	if (ret == 0)
		ret = read_sections(src, elf, p, err);
	elf_end(elf);
	if (ret < 0)
		return ret;
	src->size = src->meta.file_size;
	return 0;
}

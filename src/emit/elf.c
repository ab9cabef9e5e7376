/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The ELF emitter of `dump`.
 *
 * Layout of the file (all offsets chosen here, ELF_F_LAYOUT):
 *   ELF header, program headers (PT_NOTE, then PT_LOADs by address)
 *   .note.qcow2elf        the image's name, sizes and the tool's version
 *   .qcow2.*              one section per region, the image's bytes at
 *                         sh_addr = their offset in the image
 *   .debug_*              DWARF types and variables (dwarf.c)
 *   .qcow2elf.extents     where the image file had data (dumpfmt.h)
 *   .symtab .strtab .shstrtab, then the section header table
 *
 * The header, extensions, active L1, refcount table, snapshot table and
 * bitmap directory come first, so that they keep low section indexes (gdb
 * 13 cannot place symbols in sections past 32767); the other regions
 * follow in offset order.  Region bytes are streamed from the image in
 * bounded chunks after libelf has written the rest, so memory does not grow
 * with the image.  Past 65279 sections the file uses ELF extended
 * numbering.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcow2elf/dump.h"
#include "qcow2elf/dumpfmt.h"
#include "elf_symbols.h"
#include "emit.h"

#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#elif defined(__powerpc64__)
#define HOST_MACHINE EM_PPC64
#elif defined(__s390x__)
#define HOST_MACHINE EM_S390
#elif defined(__riscv)
#define HOST_MACHINE EM_RISCV
#else
#error "qcow2elf: unknown host machine for the dump's e_machine"
#endif
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define HOST_DATA ELFDATA2MSB
#else
#define HOST_DATA ELFDATA2LSB
#endif

#define COPY_CHUNK (1U << 20)

static uint64_t align(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

struct strtab {
	char *buf;
	size_t len, cap;
	bool failed;		/* out of memory: checked before writing */
};

static Elf64_Word strtab_add(struct strtab *t, const char *s)
{
	size_t n = strlen(s) + 1, at = t->len;

	if (t->failed)
		return 0;
	if (t->len + n > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 4096;
		char *nb;

		while (cap < t->len + n)
			cap *= 2;
		nb = realloc(t->buf, cap);
		if (!nb) {
			t->failed = true;
			return 0;
		}
		t->buf = nb;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	return (Elf64_Word)at;
}

struct out_section {
	const struct q2e_region *region;
	uint64_t file_offset;
	uint64_t size;		/* bytes that exist: region->avail */
	size_t shndx;
};

struct emitter {
	struct q2e_image *img;
	const struct q2e_dump_options *opts;
	struct q2e_error *err;

	struct out_section *secs;	/* region sections in section order */
	size_t nsecs;
	struct q2e_sym *syms;
	size_t nsyms, capsyms;
	struct q2e_dwarf dwarf;
	struct q2e_extent *extents;	/* of the image file */
	size_t nextents;
	uint8_t *note;
	size_t note_size;
};

/* Regions read first by people and tools keep the low section indexes. */
static int early_rank(const struct q2e_region *r)
{
	switch (r->kind) {
	case Q2E_REGION_HEADER:
		return 0;
	case Q2E_REGION_EXTENSION:
		return 1;
	case Q2E_REGION_L1:
		return r->owners[0].kind == Q2E_OWNER_ACTIVE ? 2 : 8;
	case Q2E_REGION_REFCOUNT_TABLE:
		return 3;
	case Q2E_REGION_SNAPSHOT_TABLE:
		return 4;
	case Q2E_REGION_BITMAP_DIRECTORY:
		return 5;
	case Q2E_REGION_BACKING_FILE:
		return 6;
	case Q2E_REGION_CRYPTO_HEADER:
		return 7;
	default:
		return 8;
	}
}

static int cmp_section_order(const void *pa, const void *pb)
{
	const struct out_section *a = pa, *b = pb;
	int ra = early_rank(a->region), rb = early_rank(b->region);

	if (ra != rb)
		return ra - rb;
	/* Regions are already sorted by offset, then kind: keep that. */
	return a->region < b->region ? -1 : a->region > b->region;
}

static int add_sym(struct emitter *e, const char *name, uint64_t addr,
		   uint64_t size, size_t section, enum q2e_sym_type type,
		   size_t index)
{
	if (e->nsyms == e->capsyms) {
		size_t cap = e->capsyms ? e->capsyms * 2 : 256;
		void *n = realloc(e->syms, cap * sizeof(*e->syms));

		if (!n)
			return q2e_error_set(e->err, Q2E_ENOMEM, "out of memory");
		e->syms = n;
		e->capsyms = cap;
	}
	char *copy = strdup(name);
	if (!copy)
		return q2e_error_set(e->err, Q2E_ENOMEM, "out of memory");
	e->syms[e->nsyms++] = (struct q2e_sym){ copy, addr, size, section,
						type, index };
	return 0;
}

static enum q2e_sym_type sym_type_of(const struct q2e_image *img,
				     const struct q2e_region *r)
{
	switch (r->kind) {
	case Q2E_REGION_HEADER:
		return Q2E_SYM_HEADER;
	case Q2E_REGION_EXTENSION:
		return Q2E_SYM_EXTENSION;
	case Q2E_REGION_BACKING_FILE:
		return Q2E_SYM_STRING;
	case Q2E_REGION_L1:
		return Q2E_SYM_L1;
	case Q2E_REGION_L2:
		return Q2E_SYM_L2;
	case Q2E_REGION_REFCOUNT_TABLE:
		return Q2E_SYM_REFTABLE;
	case Q2E_REGION_REFCOUNT_BLOCK:
		return img->refcount_bits ? Q2E_SYM_REFBLOCK : Q2E_SYM_BYTES;
	case Q2E_REGION_BITMAP_TABLE:
		return Q2E_SYM_BITMAP_TABLE;
	case Q2E_REGION_CRYPTO_HEADER:
		return Q2E_SYM_CRYPTO;
	default:
		return Q2E_SYM_BYTES;
	}
}

/* Table entries that lie inside the bytes the section holds. */
static int entry_symbols(struct emitter *e, size_t si)
{
	const struct out_section *s = &e->secs[si];
	const struct q2e_region *r = s->region;
	uint64_t end = r->offset + s->size;
	char name[48];
	int ret = 0;

	if (r->kind == Q2E_REGION_SNAPSHOT_TABLE) {
		for (size_t n = 0; ret == 0 && n < e->img->nsnapshots; n++) {
			const struct q2e_snapshot *sn = &e->img->snapshots[n];

			if (sn->offset + sn->entry.entry_size > end)
				break;
			snprintf(name, sizeof(name), "snapshot_%zu", n);
			ret = add_sym(e, name, sn->offset, sn->entry.entry_size,
				      si, Q2E_SYM_SNAPSHOT, n);
		}
	} else if (r->kind == Q2E_REGION_BITMAP_DIRECTORY) {
		for (size_t n = 0; ret == 0 && n < e->img->nbitmaps; n++) {
			const struct q2e_bitmap *b = &e->img->bitmaps[n];

			if (b->offset + b->entry.entry_size > end)
				break;
			snprintf(name, sizeof(name), "bitmap_%zu", n);
			ret = add_sym(e, name, b->offset, b->entry.entry_size,
				      si, Q2E_SYM_BITMAP, n);
		}
	}
	return ret;
}

static int plan(struct emitter *e)
{
	struct q2e_image *img = e->img;
	char name[96];
	int ret;

	e->secs = calloc(img->nregions ? img->nregions : 1, sizeof(*e->secs));
	if (!e->secs)
		return q2e_error_set(e->err, Q2E_ENOMEM, "out of memory");
	for (size_t i = 0; i < img->nregions; i++) {
		const struct q2e_region *r = &img->regions[i];

		if (!r->avail)
			continue;	/* nothing of it is in the file */
		e->secs[e->nsecs++] = (struct out_section){ .region = r,
							    .size = r->avail };
	}
	qsort(e->secs, e->nsecs, sizeof(*e->secs), cmp_section_order);

	for (size_t si = 0; si < e->nsecs; si++) {
		const struct q2e_region *r = e->secs[si].region;

		for (uint32_t k = 0; k < r->nowners; k++) {
			if (q2e_region_symbol(img, r, k, name, sizeof(name)) < 0)
				return q2e_error_set(e->err, Q2E_EUSAGE,
						     "symbol name too long");
			const struct q2e_owner *o = &r->owners[k];
			size_t index = r->kind == Q2E_REGION_EXTENSION
					       ? (size_t)o->index : o->id;

			ret = add_sym(e, name, r->offset, e->secs[si].size, si,
				      sym_type_of(img, r), index);
			if (ret < 0)
				return ret;
		}
		ret = entry_symbols(e, si);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* The facts of dumpfmt.h, as NT_VERSION notes with empty descriptors. */
static int make_note(struct emitter *e)
{
	const struct q2e_image *img = e->img;
	const struct q2e_dump_meta *dm = q2e_image_dump_meta(img);
	char *facts[8];
	size_t size = 0, n = 0;
	bool prealloc;
	int ret;

	/* QEMU's guess from the file's allocation, not its st_blocks: those
	 * change as the file system settles, and the dump must not. */
	ret = q2e_image_metadata_preallocation(e->img, &prealloc, e->err);
	if (ret < 0)
		return ret;

#define FACT(...)                                                          \
	do {                                                               \
		if (asprintf(&facts[n], Q2E_NOTE_PREFIX __VA_ARGS__) < 0)  \
			facts[n] = NULL;                                   \
		n++;                                                       \
	} while (0)
	FACT("version=%s", Q2E_VERSION);
	FACT("image=%s", dm ? dm->image_name : img->path);
	FACT("file-size=%" PRIu64, img->file_size);
	FACT("metadata-preallocation=%d", prealloc ? 1 : 0);
	FACT("virtual-size=%" PRIu64, img->hdr.size);
	FACT("cluster-size=%" PRIu64, img->cluster_size);
	FACT("qcow2-version=%u", img->hdr.version);
	FACT("no-data=%d", e->opts->no_data ? 1 : 0);
#undef FACT
	for (size_t i = 0; i < n; i++) {
		if (!facts[i])
			ret = q2e_error_set(e->err, Q2E_ENOMEM, "out of memory");
		else
			size += 12 + align(strlen(facts[i]) + 1, 4);
	}
	if (ret == 0 && !(e->note = calloc(1, size)))
		ret = q2e_error_set(e->err, Q2E_ENOMEM, "out of memory");
	for (size_t i = 0, at = 0; ret == 0 && i < n; i++) {
		uint32_t hdr[3] = { (uint32_t)strlen(facts[i]) + 1, 0,
				    Q2E_NT_VERSION };

		memcpy(e->note + at, hdr, 12);
		memcpy(e->note + at + 12, facts[i], hdr[0]);
		at += 12 + align(hdr[0], 4);
	}
	e->note_size = size;
	for (size_t i = 0; i < n; i++)
		free(facts[i]);
	return ret;
}

static int elf_fail(struct emitter *e, const char *path, const char *what)
{
	return q2e_error_set(e->err, Q2E_EOUTPUT, "'%s': %s: %s", path, what,
			     elf_errmsg(-1));
}

struct segment {
	uint64_t vaddr, memsz, offset, filesz;
};

static int cmp_by_addr(const void *pa, const void *pb)
{
	const struct out_section *a = *(const struct out_section *const *)pa;
	const struct out_section *b = *(const struct out_section *const *)pb;

	if (a->region->offset != b->region->offset)
		return a->region->offset < b->region->offset ? -1 : 1;
	return a->shndx < b->shndx ? -1 : a->shndx > b->shndx;
}

/* PT_LOADs by address, one per run of sections adjacent in both spaces. */
static int plan_segments(struct emitter *e, struct segment **out, size_t *n)
{
	struct out_section **by = malloc((e->nsecs ? e->nsecs : 1) * sizeof(*by));
	struct segment *segs = malloc((e->nsecs ? e->nsecs : 1) * sizeof(*segs));
	size_t ns = 0;
	bool nobits = e->opts->no_data;

	if (!by || !segs) {
		free(by);
		free(segs);
		return q2e_error_set(e->err, Q2E_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < e->nsecs; i++)
		by[i] = &e->secs[i];
	qsort(by, e->nsecs, sizeof(*by), cmp_by_addr);
	for (size_t i = 0; i < e->nsecs; i++) {
		const struct out_section *s = by[i];
		struct segment *last = ns ? &segs[ns - 1] : NULL;

		if (last && last->vaddr + last->memsz == s->region->offset &&
		    last->offset + last->memsz == s->file_offset) {
			last->memsz += s->size;
			last->filesz += nobits ? 0 : s->size;
			continue;
		}
		segs[ns++] = (struct segment){ s->region->offset, s->size,
					       s->file_offset,
					       nobits ? 0 : s->size };
	}
	free(by);
	*out = segs;
	*n = ns;
	return 0;
}

static Elf_Scn *new_section(struct emitter *e, Elf *elf, const char *path,
			    GElf_Shdr *sh, void *data, size_t size,
			    Elf_Type type)
{
	Elf_Scn *scn = elf_newscn(elf);

	if (!scn) {
		elf_fail(e, path, "cannot add a section");
		return NULL;
	}
	if (data) {
		Elf_Data *d = elf_newdata(scn);

		if (!d) {
			elf_fail(e, path, "cannot add section data");
			return NULL;
		}
		d->d_buf = data;
		d->d_size = size;
		d->d_type = type;
		d->d_align = sh->sh_addralign ? sh->sh_addralign : 1;
		d->d_off = 0;
		d->d_version = EV_CURRENT;
	}
	if (!gelf_update_shdr(scn, sh)) {
		elf_fail(e, path, "cannot write a section header");
		return NULL;
	}
	return scn;
}

/* Copies each region's bytes from the image to its place in the file. */
static int copy_regions(struct emitter *e, int fd, const char *path)
{
	uint8_t *buf;
	int ret = 0;

	if (e->opts->no_data)
		return 0;
	buf = malloc(COPY_CHUNK);
	if (!buf)
		return q2e_error_set(e->err, Q2E_ENOMEM, "out of memory");
	for (size_t i = 0; i < e->nsecs && ret == 0; i++) {
		const struct out_section *s = &e->secs[i];

		for (uint64_t pos = 0; pos < s->size && ret == 0;) {
			size_t n = s->size - pos < COPY_CHUNK
					   ? (size_t)(s->size - pos)
					   : COPY_CHUNK;

			ret = q2e_image_read_region_part(e->img, s->region, pos,
							 buf, n, e->err);
			if (ret < 0)
				break;
			for (size_t done = 0; done < n;) {
				ssize_t w = pwrite(fd, buf + done, n - done,
						   (off_t)(s->file_offset + pos +
							   done));
				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0) {
					ret = q2e_error_set(e->err, Q2E_EOUTPUT,
							    "'%s': cannot write: %s",
							    path, strerror(errno));
					break;
				}
				done += (size_t)w;
			}
			pos += n;
		}
	}
	free(buf);
	return ret;
}

static int write_elf(struct emitter *e, int fd, const char *path,
		     struct q2e_dump_result *res)
{
	struct strtab shstr = { 0 }, str = { 0 };
	struct segment *segs = NULL;
	GElf_Sym *symtab = NULL;
	Elf32_Word *xindex = NULL;
	size_t nsegs = 0, nshdr;
	uint64_t off;
	GElf_Shdr sh;
	GElf_Ehdr eh;
	Elf *elf;
	int ret = 0;

	elf = elf_begin(fd, ELF_C_WRITE, NULL);
	if (!elf)
		return elf_fail(e, path, "cannot start the ELF file");
	elf_flagelf(elf, ELF_C_SET, ELF_F_LAYOUT);
	if (!gelf_newehdr(elf, ELFCLASS64)) {
		ret = elf_fail(e, path, "cannot create the ELF header");
		goto out;
	}
	/* Sections: null, note, regions, DWARF[, extents], symtab[, shndx],
	 * strtab, shstrtab. */
	size_t nextra = e->dwarf.nsecs + (e->nextents ? 1 : 0);
	nshdr = 1 + 1 + e->nsecs + nextra + 3;
	bool xnum = nshdr >= SHN_LORESERVE;
	if (xnum)
		nshdr++;

	/* File offsets: headers, note, regions, DWARF, tables. */
	off = sizeof(Elf64_Ehdr);
	/* Segments are planned after region offsets are known; the program
	 * header table size depends only on their count, so lay out regions
	 * from a provisional base and shift. */
	/* NOBITS sections (--no-data) get offsets as if they held their
	 * bytes, so that each lies inside its own segment's window, as
	 * eu-elflint checks; the file does not grow by them. */
	uint64_t base = 0;
	for (size_t i = 0; i < e->nsecs; i++) {
		e->secs[i].shndx = 2 + i;
		e->secs[i].file_offset = base;
		base += e->secs[i].size;
	}
	ret = plan_segments(e, &segs, &nsegs);
	if (ret < 0)
		goto out;
	size_t nphdr = 1 + nsegs;
	off += nphdr * sizeof(Elf64_Phdr);
	off = align(off, 4);
	uint64_t note_off = off;
	off += e->note_size;
	for (size_t i = 0; i < e->nsecs; i++)
		e->secs[i].file_offset += off;
	for (size_t i = 0; i < nsegs; i++)
		segs[i].offset += off;
	if (!e->opts->no_data)
		off += base;

	/* Section 0, for extended numbering, then the note. */
	strtab_add(&shstr, "");
	strtab_add(&str, "");
	memset(&sh, 0, sizeof(sh));
	sh.sh_name = strtab_add(&shstr, ".note.qcow2elf");
	sh.sh_type = SHT_NOTE;
	sh.sh_offset = note_off;
	sh.sh_size = e->note_size;
	sh.sh_addralign = 4;
	if (!new_section(e, elf, path, &sh, e->note, e->note_size, ELF_T_BYTE)) {
		ret = e->err->code;
		goto out;
	}

	char name[96];
	for (size_t i = 0; i < e->nsecs; i++) {
		const struct out_section *s = &e->secs[i];

		q2e_region_section(e->img, s->region, name, sizeof(name));
		memset(&sh, 0, sizeof(sh));
		sh.sh_name = strtab_add(&shstr, name);
		sh.sh_type = e->opts->no_data ? SHT_NOBITS : SHT_PROGBITS;
		sh.sh_flags = SHF_ALLOC;
		sh.sh_addr = s->region->offset;
		sh.sh_offset = s->file_offset;
		sh.sh_size = s->size;
		sh.sh_addralign = 1;
		if (!new_section(e, elf, path, &sh, NULL, 0, ELF_T_BYTE)) {
			ret = e->err->code;
			goto out;
		}
	}
	for (size_t i = 0; i < e->dwarf.nsecs; i++) {
		struct q2e_dwarf_section *d = &e->dwarf.secs[i];

		memset(&sh, 0, sizeof(sh));
		sh.sh_name = strtab_add(&shstr, d->name);
		sh.sh_type = SHT_PROGBITS;
		sh.sh_offset = off;
		sh.sh_size = d->size;
		sh.sh_addralign = 1;
		off += d->size;
		if (!new_section(e, elf, path, &sh, d->data, d->size,
				 ELF_T_BYTE)) {
			ret = e->err->code;
			goto out;
		}
	}

	if (e->nextents) {
		off = align(off, 8);
		memset(&sh, 0, sizeof(sh));
		sh.sh_name = strtab_add(&shstr, Q2E_EXTENTS_SECTION);
		sh.sh_type = SHT_PROGBITS;
		sh.sh_offset = off;
		sh.sh_size = e->nextents * sizeof(*e->extents);
		sh.sh_addralign = 8;
		sh.sh_entsize = sizeof(*e->extents);
		off += sh.sh_size;
		if (!new_section(e, elf, path, &sh, e->extents, sh.sh_size,
				 ELF_T_BYTE)) {
			ret = e->err->code;
			goto out;
		}
	}

	/* Symbols: a null one, then every structure (all global). */
	size_t nsym = e->nsyms + 1;
	size_t symtab_ndx = 2 + e->nsecs + nextra;
	symtab = calloc(nsym, sizeof(*symtab));
	if (xnum)
		xindex = calloc(nsym, sizeof(*xindex));
	if (!symtab || (xnum && !xindex)) {
		ret = q2e_error_set(e->err, Q2E_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < e->nsyms; i++) {
		const struct q2e_sym *s = &e->syms[i];
		size_t shndx = e->secs[s->section].shndx;

		symtab[i + 1] = (GElf_Sym){
			.st_name = strtab_add(&str, s->name),
			.st_info = GELF_ST_INFO(STB_GLOBAL, STT_OBJECT),
			.st_other = STV_DEFAULT,
			.st_shndx = shndx < SHN_LORESERVE ? shndx : SHN_XINDEX,
			.st_value = s->addr,
			.st_size = s->size,
		};
		if (xindex)
			xindex[i + 1] = (Elf32_Word)shndx;
	}
	/* GElf_Sym is Elf64_Sym; libelf converts to the file's order. */
	off = align(off, 8);
	memset(&sh, 0, sizeof(sh));
	sh.sh_name = strtab_add(&shstr, ".symtab");
	sh.sh_type = SHT_SYMTAB;
	sh.sh_offset = off;
	sh.sh_size = nsym * sizeof(Elf64_Sym);
	sh.sh_link = (Elf64_Word)(symtab_ndx + 1 + xnum);
	sh.sh_info = 1;
	sh.sh_addralign = 8;
	sh.sh_entsize = sizeof(Elf64_Sym);
	off += sh.sh_size;
	if (!new_section(e, elf, path, &sh, symtab, sh.sh_size, ELF_T_SYM)) {
		ret = e->err->code;
		goto out;
	}
	if (xnum) {
		off = align(off, 4);
		memset(&sh, 0, sizeof(sh));
		sh.sh_name = strtab_add(&shstr, ".symtab_shndx");
		sh.sh_type = SHT_SYMTAB_SHNDX;
		sh.sh_offset = off;
		sh.sh_size = nsym * sizeof(Elf32_Word);
		sh.sh_link = (Elf64_Word)symtab_ndx;
		sh.sh_addralign = 4;
		sh.sh_entsize = sizeof(Elf32_Word);
		off += sh.sh_size;
		if (!new_section(e, elf, path, &sh, xindex, sh.sh_size,
				 ELF_T_WORD)) {
			ret = e->err->code;
			goto out;
		}
	}
	memset(&sh, 0, sizeof(sh));
	sh.sh_name = strtab_add(&shstr, ".strtab");
	sh.sh_type = SHT_STRTAB;
	sh.sh_offset = off;
	sh.sh_size = str.len;
	sh.sh_addralign = 1;
	off += str.len;
	if (!new_section(e, elf, path, &sh, str.buf, str.len, ELF_T_BYTE)) {
		ret = e->err->code;
		goto out;
	}
	memset(&sh, 0, sizeof(sh));
	sh.sh_name = strtab_add(&shstr, ".shstrtab");
	if (shstr.failed || str.failed) {
		ret = q2e_error_set(e->err, Q2E_ENOMEM, "out of memory");
		goto out;
	}
	sh.sh_type = SHT_STRTAB;
	sh.sh_offset = off;
	sh.sh_size = shstr.len;
	sh.sh_addralign = 1;
	off += shstr.len;
	size_t shstrndx = nshdr - 1;
	if (!new_section(e, elf, path, &sh, shstr.buf, shstr.len, ELF_T_BYTE)) {
		ret = e->err->code;
		goto out;
	}

	/* The program header table comes after the sections (past 65534
	 * entries its count lives in section 0) and before the ELF header
	 * is filled (gelf_newphdr would reset e_phnum otherwise). */
	if (!gelf_newphdr(elf, nphdr)) {
		ret = elf_fail(e, path, "cannot create the program headers");
		goto out;
	}
	/* Program headers: the note, then the loads. */
	GElf_Phdr ph = { .p_type = PT_NOTE, .p_offset = note_off,
			 .p_filesz = e->note_size, .p_align = 4 };
	if (!gelf_update_phdr(elf, 0, &ph)) {
		ret = elf_fail(e, path, "cannot write the note header");
		goto out;
	}
	for (size_t i = 0; i < nsegs; i++) {
		ph = (GElf_Phdr){ .p_type = PT_LOAD, .p_flags = PF_R,
				  .p_offset = segs[i].offset,
				  .p_vaddr = segs[i].vaddr,
				  .p_paddr = segs[i].vaddr,
				  .p_filesz = segs[i].filesz,
				  .p_memsz = segs[i].memsz, .p_align = 1 };
		if (!gelf_update_phdr(elf, (int)(1 + i), &ph)) {
			ret = elf_fail(e, path, "cannot write a program header");
			goto out;
		}
	}

	if (!gelf_getehdr(elf, &eh)) {
		ret = elf_fail(e, path, "cannot read back the ELF header");
		goto out;
	}
	eh.e_ident[EI_DATA] = HOST_DATA;
	eh.e_ident[EI_OSABI] = ELFOSABI_NONE;
	eh.e_type = ET_EXEC;
	eh.e_machine = HOST_MACHINE;
	eh.e_version = EV_CURRENT;
	eh.e_entry = 0;
	eh.e_phoff = sizeof(Elf64_Ehdr);
	eh.e_shoff = align(off, 8);
	eh.e_flags = 0;
	if (shstrndx < SHN_LORESERVE) {
		eh.e_shstrndx = (Elf64_Half)shstrndx;
	} else {
		Elf_Scn *zero = elf_getscn(elf, 0);
		GElf_Shdr z;

		eh.e_shstrndx = SHN_XINDEX;
		if (!zero || !gelf_getshdr(zero, &z)) {
			ret = elf_fail(e, path, "cannot read section 0");
			goto out;
		}
		z.sh_link = (Elf64_Word)shstrndx;
		gelf_update_shdr(zero, &z);
	}
	if (!gelf_update_ehdr(elf, &eh)) {
		ret = elf_fail(e, path, "cannot write the ELF header");
		goto out;
	}
	if (elf_update(elf, ELF_C_WRITE) < 0) {
		ret = elf_fail(e, path, "cannot write the ELF file");
		goto out;
	}
	ret = copy_regions(e, fd, path);
	res->nsegments = nsegs;
out:
	elf_end(elf);
	free(segs);
	free(symtab);
	free(xindex);
	free(str.buf);
	free(shstr.buf);
	return ret;
}

int q2e_dump_write(struct q2e_image *img, const char *path,
		   const struct q2e_dump_options *opts,
		   struct q2e_dump_result *res, struct q2e_error *err)
{
	struct emitter e = { .img = img, .opts = opts, .err = err };
	struct q2e_outfile out;
	int ret;

	memset(res, 0, sizeof(*res));
	if (elf_version(EV_CURRENT) == EV_NONE)
		return q2e_error_set(err, Q2E_EOUTPUT, "libelf is out of date");
	ret = plan(&e);
	if (ret == 0)
		ret = make_note(&e);
	if (ret == 0)
		ret = q2e_image_file_extents(img, &e.extents, &e.nextents, err);
	if (ret == 0)
		ret = q2e_dwarf_build(img, e.syms, e.nsyms, img->path, &e.dwarf,
				      err);
	if (ret < 0)
		goto out;

	ret = q2e_emit_open(img, &out, path, err);
	if (ret < 0)
		goto out;
	ret = write_elf(&e, out.fd, path, res);
	if (ret < 0) {
		q2e_outfile_abort(&out);
		goto out;
	}
	ret = q2e_outfile_commit(&out, true, err);
	if (ret < 0)
		goto out;
	res->nsections = e.nsecs;
	res->nsymbols = e.nsyms;
	res->past_gdb_limit = 2 + e.nsecs > Q2E_GDB_MAX_SECTIONS;
	for (size_t i = 0; i < e.nsecs; i++)
		res->truncated += e.secs[i].size < e.secs[i].region->size;
	for (size_t i = 0; i < img->nregions; i++)
		res->truncated += img->regions[i].avail == 0;
out:
	for (size_t i = 0; i < e.nsyms; i++)
		free(e.syms[i].name);
	free(e.syms);
	free(e.secs);
	free(e.note);
	free(e.extents);
	q2e_dwarf_free(&e.dwarf);
	return ret;
}

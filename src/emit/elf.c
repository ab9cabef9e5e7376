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
 *   .debug_gdb_scripts    the gdb helpers, unless --no-gdb-script
 *   .qcow2elf.extents     where the image file had data (dumpfmt.h)
 *   .symtab .strtab .shstrtab, then the section header table
 *
 * The header, extensions, active L1, refcount table, snapshot table and
 * bitmap directory come first, so that they keep low section indexes and
 * `info symbol` finds them (gdb 13 places symbols in sections past 32767
 * only when they are absolute, and then `info symbol` does not see them);
 * the other regions follow in offset order.  Region bytes are streamed from the image in
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

#include "qcow2elf/array.h"
#include "qcow2elf/dump.h"
#include "qcow2elf/dumpfmt.h"
#include "elf_symbols.h"
#include "emit.h"
#include "gdb_script.h"

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
	if (q2e_grow(t->buf, t->cap, t->len + n) < 0) {
		t->failed = true;
		return 0;
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
	bool zero;		/* all zeros: SHT_NOBITS, no room in the file */
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
	struct q2e_extent *held;	/* what the region sections hold */
	size_t nheld;
	struct q2e_redaction redact;	/* --redact */
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
	if (q2e_grow(e->syms, e->capsyms, e->nsyms + 1) < 0)
		return q2e_error_set(e->err, Q2E_ENOMEM, "out of memory");
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

static uint64_t entry_size(uint64_t offset, uint64_t size, uint64_t end)
{
	return size < end - offset ? size : end - offset;
}

/* Table entries that start inside the bytes the section holds. */
static int entry_symbols(struct emitter *e, size_t si)
{
	const struct out_section *s = &e->secs[si];
	const struct q2e_region *r = s->region;
	uint64_t end = r->offset + s->size;
	char name[48];
	int ret = 0;

	/* An entry's size counts its padding to 8 bytes, which the last one
	 * of a table may lack: each symbol ends where the section does. */
	if (r->kind == Q2E_REGION_SNAPSHOT_TABLE) {
		for (size_t n = 0; ret == 0 && n < e->img->nsnapshots; n++) {
			const struct q2e_snapshot *sn = &e->img->snapshots[n];

			if (sn->offset < r->offset || sn->offset >= end)
				break;
			q2e_entry_symbol(Q2E_REGION_SNAPSHOT_TABLE, (uint32_t)n,
					 name, sizeof(name));
			ret = add_sym(e, name, sn->offset,
				      entry_size(sn->offset, sn->entry.entry_size,
						 end),
				      si, Q2E_SYM_SNAPSHOT, n);
		}
	} else if (r->kind == Q2E_REGION_BITMAP_DIRECTORY) {
		for (size_t n = 0; ret == 0 && n < e->img->nbitmaps; n++) {
			const struct q2e_bitmap *b = &e->img->bitmaps[n];

			if (b->offset < r->offset || b->offset >= end)
				break;
			q2e_entry_symbol(Q2E_REGION_BITMAP_DIRECTORY,
					 (uint32_t)n, name, sizeof(name));
			ret = add_sym(e, name, b->offset,
				      entry_size(b->offset, b->entry.entry_size,
						 end),
				      si, Q2E_SYM_BITMAP, n);
		}
	}
	return ret;
}

/* The union of the ranges the region sections hold, sorted (the model's
 * regions come sorted by offset). */
static int plan_held(struct emitter *e)
{
	const struct q2e_image *img = e->img;

	e->held = malloc((img->nregions ? img->nregions : 1) *
			 sizeof(*e->held));
	if (!e->held)
		return q2e_error_set(e->err, Q2E_ENOMEM, "out of memory");
	for (size_t i = 0; i < img->nregions; i++) {
		const struct q2e_region *r = &img->regions[i];
		uint64_t start = r->offset, end = start + r->avail;
		struct q2e_extent *last = e->nheld ? &e->held[e->nheld - 1]
						    : NULL;

		if (!r->avail)
			continue;
		if (last && start <= last->offset + last->length) {
			if (end > last->offset + last->length)
				last->length = end - last->offset;
			continue;
		}
		e->held[e->nheld++] = (struct q2e_extent){ start, end - start };
	}
	return 0;
}

/*
 * A region whose bytes are all zeros (a table a header claims in a hole,
 * or past what was ever written) becomes an SHT_NOBITS section: readers
 * take it as zeros, as they do the image, at no cost in the file or in
 * reading it back.  Decided by the bytes alone, so that the dump is the
 * same whatever the file system says about holes.
 */
static int find_zero_sections(struct emitter *e)
{
	struct q2e_region_copier c;
	int ret;

	if (e->opts->no_data)
		return 0;
	ret = q2e_region_copier_init(&c, e->img, -1, e->img->path, e->err);
	c.redact = &e->redact;
	for (size_t i = 0; i < e->nsecs && ret == 0; i++)
		ret = q2e_region_is_zero(&c, e->secs[i].region,
					 &e->secs[i].zero);
	q2e_region_copier_fini(&c);
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
	ret = plan_held(e);
	if (ret == 0)
		ret = find_zero_sections(e);
	if (ret < 0)
		return ret;

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

/* Whether a section's bytes take no room in the file. */
static bool is_nobits(const struct emitter *e, const struct out_section *s)
{
	return e->opts->no_data || s->zero;
}

/*
 * Whether S continues segment LAST: adjacent in addresses and in the file.
 * Sections of zeros have offsets as if they held their bytes (past those
 * of the others; eu-elflint places a NOBITS section by its offset), so
 * they make segments of their own.
 */
static bool continues(const struct emitter *e, const struct segment *last,
		      const struct out_section *s)
{
	if (!last || last->vaddr + last->memsz != s->region->offset)
		return false;
	if (is_nobits(e, s) != (last->filesz == 0))
		return false;
	return last->offset + last->memsz == s->file_offset;
}

/* PT_LOADs by address, one per run of sections adjacent in both spaces. */
static int plan_segments(struct emitter *e, struct segment **out, size_t *n)
{
	struct out_section **by = malloc((e->nsecs ? e->nsecs : 1) * sizeof(*by));
	struct segment *segs = malloc((e->nsecs ? e->nsecs : 1) * sizeof(*segs));
	size_t ns = 0;

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
		uint64_t filesz = is_nobits(e, s) ? 0 : s->size;

		if (continues(e, last, s)) {
			last->memsz += s->size;
			last->filesz += filesz;
			continue;
		}
		segs[ns++] = (struct segment){ s->region->offset, s->size,
					       s->file_offset, filesz };
	}
	free(by);
	*out = segs;
	*n = ns;
	return 0;
}

/*
 * Writing the file: each kind of section below adds its sections through
 * add_section(); the kinds come in file order, and the index of each
 * kind's first section is known before any is added, for the links
 * between them (.symtab to .strtab, a symbol to its region's section).
 */
enum section_kind_id {
	SEC_NOTE, SEC_REGIONS, SEC_DWARF, SEC_GDB_SCRIPTS, SEC_EXTENTS,
	SEC_HELD, SEC_SYMTAB, SEC_SYMTAB_SHNDX, SEC_STRTAB, SEC_SHSTRTAB, SEC_KINDS
};

struct elf_writer {
	struct emitter *e;
	Elf *elf;
	const char *path;
	struct strtab shstr, str;
	uint64_t off;		/* next free file offset */
	uint64_t note_off;
	uint64_t regions_end;	/* file offset past the region bytes */
	bool xnum;		/* extended section numbering */
	size_t first[SEC_KINDS];	/* section index of each kind's first */
	GElf_Sym *symtab;
	Elf32_Word *xindex;
	size_t nsym;
};

struct section_spec {
	const char *name;	/* NULL: already in .shstrtab at name_at */
	Elf64_Word name_at;
	Elf64_Word type;
	Elf64_Xword flags;
	uint64_t addr;
	bool placed;		/* offset chosen by the region layout */
	uint64_t offset;
	uint64_t size;
	Elf64_Xword align, entsize;
	Elf64_Word link, info;
	void *data;		/* NULL: bytes written later, or none */
	Elf_Type dtype;
};

static int add_section(struct elf_writer *w, const struct section_spec *s)
{
	Elf_Scn *scn = elf_newscn(w->elf);
	uint64_t align_to = s->align ? s->align : 1;
	GElf_Shdr sh = {
		.sh_name = s->name ? strtab_add(&w->shstr, s->name) : s->name_at,
		.sh_type = s->type,
		.sh_flags = s->flags,
		.sh_addr = s->addr,
		.sh_size = s->size,
		.sh_link = s->link,
		.sh_info = s->info,
		.sh_addralign = align_to,
		.sh_entsize = s->entsize,
	};

	if (!scn)
		return elf_fail(w->e, w->path, "cannot add a section");
	if (s->placed) {
		sh.sh_offset = s->offset;
	} else {
		w->off = align(w->off, align_to);
		sh.sh_offset = w->off;
		w->off += s->size;
	}
	if (s->data) {
		Elf_Data *d = elf_newdata(scn);

		if (!d)
			return elf_fail(w->e, w->path, "cannot add section data");
		d->d_buf = s->data;
		d->d_size = s->size;
		d->d_type = s->dtype;
		d->d_align = align_to;
		d->d_off = 0;
		d->d_version = EV_CURRENT;
	}
	if (!gelf_update_shdr(scn, &sh))
		return elf_fail(w->e, w->path, "cannot write a section header");
	return 0;
}

static int add_note(struct elf_writer *w)
{
	struct section_spec s = { .name = ".note.qcow2elf", .type = SHT_NOTE,
				  .placed = true, .offset = w->note_off,
				  .size = w->e->note_size, .align = 4,
				  .data = w->e->note, .dtype = ELF_T_BYTE };

	return add_section(w, &s);
}

static int add_regions(struct elf_writer *w)
{
	struct emitter *e = w->e;
	char name[96];
	int ret = 0;

	for (size_t i = 0; i < e->nsecs && ret == 0; i++) {
		const struct out_section *o = &e->secs[i];
		struct section_spec s = {
			.name = name,
			.type = is_nobits(e, o) ? SHT_NOBITS : SHT_PROGBITS,
			.flags = SHF_ALLOC, .addr = o->region->offset,
			.placed = true, .offset = o->file_offset,
			.size = o->size, .align = 1,
		};

		q2e_region_section(e->img, o->region, name, sizeof(name));
		ret = add_section(w, &s);
	}
	w->off = w->regions_end;
	return ret;
}

static int add_dwarf(struct elf_writer *w)
{
	int ret = 0;

	for (size_t i = 0; i < w->e->dwarf.nsecs && ret == 0; i++) {
		const struct q2e_dwarf_section *d = &w->e->dwarf.secs[i];
		struct section_spec s = { .name = d->name, .type = SHT_PROGBITS,
					  .size = d->size, .align = 1,
					  .data = d->data, .dtype = ELF_T_BYTE };

		ret = add_section(w, &s);
	}
	return ret;
}

static int add_gdb_scripts(struct elf_writer *w)
{
	size_t size;
	const char *script = q2e_gdb_script(&size);
	struct section_spec s = { .name = Q2E_GDB_SCRIPTS_SECTION,
				  .type = SHT_PROGBITS, .size = size,
				  .align = 1, .data = (void *)script,
				  .dtype = ELF_T_BYTE };

	return add_section(w, &s);
}

/* A list of (offset, length) pairs in the file's byte order (dumpfmt.h). */
static int add_range_list(struct elf_writer *w, const char *name,
			  struct q2e_extent *list, size_t n)
{
	struct section_spec s = {
		.name = name, .type = SHT_PROGBITS,
		.size = n * sizeof(*list), .align = 8,
		.entsize = sizeof(*list), .data = list, .dtype = ELF_T_BYTE,
	};

	return add_section(w, &s);
}

static int add_extents(struct elf_writer *w)
{
	return add_range_list(w, Q2E_EXTENTS_SECTION, w->e->extents,
			      w->e->nextents);
}

static int add_held(struct elf_writer *w)
{
	return add_range_list(w, Q2E_REGIONS_SECTION, w->e->held, w->e->nheld);
}

/* Symbols: a null one, then every structure (all global). */
static int add_symtab(struct elf_writer *w)
{
	const struct emitter *e = w->e;

	w->nsym = e->nsyms + 1;
	w->symtab = calloc(w->nsym, sizeof(*w->symtab));
	if (w->xnum)
		w->xindex = calloc(w->nsym, sizeof(*w->xindex));
	if (!w->symtab || (w->xnum && !w->xindex))
		return q2e_error_set(e->err, Q2E_ENOMEM, "out of memory");
	for (size_t i = 0; i < e->nsyms; i++) {
		const struct q2e_sym *sym = &e->syms[i];
		size_t shndx = e->secs[sym->section].shndx;

		/* gdb 13 keeps a symbol's section index in 16 signed bits:
		 * past that, absolute symbols are the ones it places right
		 * (the value is the address either way). */
		if (shndx > Q2E_GDB_MAX_SECTIONS)
			shndx = SHN_ABS;
		w->symtab[i + 1] = (GElf_Sym){
			.st_name = strtab_add(&w->str, sym->name),
			.st_info = GELF_ST_INFO(STB_GLOBAL, STT_OBJECT),
			.st_other = STV_DEFAULT,
			.st_shndx = shndx < SHN_LORESERVE || shndx == SHN_ABS
					    ? shndx : SHN_XINDEX,
			.st_value = sym->addr,
			.st_size = sym->size,
		};
		if (w->xindex && shndx != SHN_ABS)
			w->xindex[i + 1] = (Elf32_Word)shndx;
	}
	/* GElf_Sym is Elf64_Sym; libelf converts to the file's order. */
	struct section_spec s = {
		.name = ".symtab", .type = SHT_SYMTAB,
		.size = w->nsym * sizeof(Elf64_Sym),
		.link = (Elf64_Word)w->first[SEC_STRTAB], .info = 1,
		.align = 8, .entsize = sizeof(Elf64_Sym), .data = w->symtab,
		.dtype = ELF_T_SYM,
	};
	return add_section(w, &s);
}

static int add_symtab_shndx(struct elf_writer *w)
{
	struct section_spec s = {
		.name = ".symtab_shndx", .type = SHT_SYMTAB_SHNDX,
		.size = w->nsym * sizeof(Elf32_Word),
		.link = (Elf64_Word)w->first[SEC_SYMTAB], .align = 4,
		.entsize = sizeof(Elf32_Word), .data = w->xindex,
		.dtype = ELF_T_WORD,
	};

	return add_section(w, &s);
}

static int add_strtab(struct elf_writer *w)
{
	struct section_spec s = { .name = ".strtab", .type = SHT_STRTAB,
				  .size = w->str.len, .align = 1,
				  .data = w->str.buf, .dtype = ELF_T_BYTE };

	return add_section(w, &s);
}

static int add_shstrtab(struct elf_writer *w)
{
	struct section_spec s = { .type = SHT_STRTAB, .align = 1,
				  .dtype = ELF_T_BYTE };

	/* Its own name goes in before its size is taken. */
	s.name_at = strtab_add(&w->shstr, ".shstrtab");
	if (w->shstr.failed || w->str.failed)
		return q2e_error_set(w->e->err, Q2E_ENOMEM, "out of memory");
	s.size = w->shstr.len;
	s.data = w->shstr.buf;
	return add_section(w, &s);
}

static size_t count_one(const struct elf_writer *w)
{
	(void)w;
	return 1;
}

static size_t count_regions(const struct elf_writer *w)
{
	return w->e->nsecs;
}

static size_t count_dwarf(const struct elf_writer *w)
{
	return w->e->dwarf.nsecs;
}

static size_t count_extents(const struct elf_writer *w)
{
	return w->e->nextents ? 1 : 0;
}

static size_t count_held(const struct elf_writer *w)
{
	return w->e->nheld ? 1 : 0;
}

static size_t count_gdb_scripts(const struct elf_writer *w)
{
	return w->e->opts->no_gdb_script ? 0 : 1;
}

static size_t count_xnum(const struct elf_writer *w)
{
	return w->xnum ? 1 : 0;
}

/* The sections of a dump, in section and file order. */
static const struct section_kind {
	size_t (*count)(const struct elf_writer *w);
	int (*add)(struct elf_writer *w);
} section_kinds[SEC_KINDS] = {
	[SEC_NOTE] = { count_one, add_note },
	[SEC_REGIONS] = { count_regions, add_regions },
	[SEC_DWARF] = { count_dwarf, add_dwarf },
	[SEC_GDB_SCRIPTS] = { count_gdb_scripts, add_gdb_scripts },
	[SEC_EXTENTS] = { count_extents, add_extents },
	[SEC_HELD] = { count_held, add_held },
	[SEC_SYMTAB] = { count_one, add_symtab },
	[SEC_SYMTAB_SHNDX] = { count_xnum, add_symtab_shndx },
	[SEC_STRTAB] = { count_one, add_strtab },
	[SEC_SHSTRTAB] = { count_one, add_shstrtab },
};

/* Numbers the sections of every kind; returns the count, section 0 too. */
static size_t number_sections(struct elf_writer *w)
{
	size_t n = 1;

	/* .symtab_shndx exists only when the others need extended numbers. */
	w->xnum = false;
	for (size_t k = 0; k < SEC_KINDS; k++)
		n += section_kinds[k].count(w);
	w->xnum = n >= SHN_LORESERVE;
	n = 1;
	for (size_t k = 0; k < SEC_KINDS; k++) {
		w->first[k] = n;
		n += section_kinds[k].count(w);
	}
	for (size_t i = 0; i < w->e->nsecs; i++)
		w->e->secs[i].shndx = w->first[SEC_REGIONS] + i;
	return n;
}

/*
 * File offsets of the regions, packed after the headers and the note.
 * NOBITS sections (--no-data) get offsets as if they held their bytes, so
 * that each lies inside its own segment's window, as eu-elflint checks;
 * the file does not grow by them.  The program header table's size
 * depends on the segment count, so regions are laid out from 0, grouped
 * into segments, then shifted.
 */
static int layout(struct elf_writer *w, struct segment **segs, size_t *nsegs)
{
	struct emitter *e = w->e;
	uint64_t base = 0, at, off;
	int ret;

	for (size_t i = 0; i < e->nsecs; i++) {
		if (e->secs[i].zero)
			continue;
		e->secs[i].file_offset = base;
		base += e->secs[i].size;
	}
	/* Sections of zeros, after the bytes of the others (which is where
	 * the file goes on), as if they held their bytes: eu-elflint takes a
	 * NOBITS section inside a segment's window as part of it. */
	at = base;
	for (size_t i = 0; i < e->nsecs; i++) {
		if (!e->secs[i].zero)
			continue;
		e->secs[i].file_offset = at;
		at += e->secs[i].size;
	}
	ret = plan_segments(e, segs, nsegs);
	if (ret < 0)
		return ret;
	off = align(sizeof(Elf64_Ehdr) + (1 + *nsegs) * sizeof(Elf64_Phdr), 4);
	w->note_off = off;
	off += e->note_size;
	for (size_t i = 0; i < e->nsecs; i++)
		e->secs[i].file_offset += off;
	for (size_t i = 0; i < *nsegs; i++)
		(*segs)[i].offset += off;
	w->regions_end = e->opts->no_data ? off : off + base;
	return 0;
}

/*
 * The program header table comes after the sections (past 65534 entries
 * its count lives in section 0) and before the ELF header is filled
 * (gelf_newphdr would reset e_phnum otherwise): the note, then the loads.
 */
static int write_program_headers(struct elf_writer *w,
				 const struct segment *segs, size_t nsegs)
{
	GElf_Phdr ph = { .p_type = PT_NOTE, .p_offset = w->note_off,
			 .p_vaddr = Q2E_NOTE_VADDR, .p_paddr = Q2E_NOTE_VADDR,
			 .p_filesz = w->e->note_size, .p_align = 4 };

	if (!gelf_newphdr(w->elf, 1 + nsegs))
		return elf_fail(w->e, w->path, "cannot create the program headers");
	if (!gelf_update_phdr(w->elf, 0, &ph))
		return elf_fail(w->e, w->path, "cannot write the note header");
	for (size_t i = 0; i < nsegs; i++) {
		ph = (GElf_Phdr){ .p_type = PT_LOAD, .p_flags = PF_R,
				  .p_offset = segs[i].offset,
				  .p_vaddr = segs[i].vaddr,
				  .p_paddr = segs[i].vaddr,
				  .p_filesz = segs[i].filesz,
				  .p_memsz = segs[i].memsz, .p_align = 1 };
		if (!gelf_update_phdr(w->elf, (int)(1 + i), &ph))
			return elf_fail(w->e, w->path,
					"cannot write a program header");
	}
	return 0;
}

static int write_elf_header(struct elf_writer *w, size_t shstrndx)
{
	GElf_Ehdr eh;

	if (!gelf_getehdr(w->elf, &eh))
		return elf_fail(w->e, w->path, "cannot read back the ELF header");
	eh.e_ident[EI_DATA] = HOST_DATA;
	eh.e_ident[EI_OSABI] = ELFOSABI_NONE;
	eh.e_type = ET_EXEC;
	eh.e_machine = HOST_MACHINE;
	eh.e_version = EV_CURRENT;
	eh.e_entry = 0;
	eh.e_phoff = sizeof(Elf64_Ehdr);
	eh.e_shoff = align(w->off, 8);
	eh.e_flags = 0;
	if (shstrndx < SHN_LORESERVE) {
		eh.e_shstrndx = (Elf64_Half)shstrndx;
	} else {
		Elf_Scn *zero = elf_getscn(w->elf, 0);
		GElf_Shdr z;

		eh.e_shstrndx = SHN_XINDEX;
		if (!zero || !gelf_getshdr(zero, &z))
			return elf_fail(w->e, w->path, "cannot read section 0");
		z.sh_link = (Elf64_Word)shstrndx;
		gelf_update_shdr(zero, &z);
	}
	if (!gelf_update_ehdr(w->elf, &eh))
		return elf_fail(w->e, w->path, "cannot write the ELF header");
	return 0;
}

/* Copies each region's bytes from the image to its place in the file. */
static int copy_regions(struct emitter *e, int fd, const char *path)
{
	struct q2e_region_copier c;
	int ret;

	if (e->opts->no_data)
		return 0;
	ret = q2e_region_copier_init(&c, e->img, fd, path, e->err);
	c.redact = &e->redact;
	for (size_t i = 0; i < e->nsecs && ret == 0; i++)
		if (!e->secs[i].zero)
			ret = q2e_region_copy(&c, e->secs[i].region,
					      e->secs[i].file_offset);
	q2e_region_copier_fini(&c);
	return ret;
}

static int write_elf(struct emitter *e, int fd, const char *path,
		     struct q2e_dump_result *res)
{
	struct elf_writer w = { .e = e, .path = path };
	struct segment *segs = NULL;
	size_t nsegs = 0;
	int ret = 0;

	w.elf = elf_begin(fd, ELF_C_WRITE, NULL);
	if (!w.elf)
		return elf_fail(e, path, "cannot start the ELF file");
	elf_flagelf(w.elf, ELF_C_SET, ELF_F_LAYOUT);
	if (!gelf_newehdr(w.elf, ELFCLASS64)) {
		ret = elf_fail(e, path, "cannot create the ELF header");
		goto out;
	}
	size_t nshdr = number_sections(&w);
	ret = layout(&w, &segs, &nsegs);
	/* Section 0's name, and the null symbol's. */
	strtab_add(&w.shstr, "");
	strtab_add(&w.str, "");
	for (size_t k = 0; k < SEC_KINDS && ret == 0; k++)
		if (section_kinds[k].count(&w))
			ret = section_kinds[k].add(&w);
	if (ret == 0)
		ret = write_program_headers(&w, segs, nsegs);
	if (ret == 0)
		ret = write_elf_header(&w, nshdr - 1);
	if (ret == 0 && elf_update(w.elf, ELF_C_WRITE) < 0)
		ret = elf_fail(e, path, "cannot write the ELF file");
	if (ret == 0)
		ret = copy_regions(e, fd, path);
	res->nsegments = nsegs;
out:
	elf_end(w.elf);
	free(segs);
	free(w.symtab);
	free(w.xindex);
	free(w.str.buf);
	free(w.shstr.buf);
	return ret;
}

/* Everything but the output file: FD is written from offset 0, under NAME
 * in messages, or PATH opened and committed when FD is negative. */
static int dump_to(struct q2e_image *img, int fd, const char *path,
		   const struct q2e_dump_options *opts,
		   struct q2e_dump_result *res, struct q2e_error *err)
{
	struct emitter e = { .img = img, .opts = opts, .err = err };
	struct q2e_outfile out;
	int ret = 0;

	memset(res, 0, sizeof(*res));
	if (elf_version(EV_CURRENT) == EV_NONE)
		return q2e_error_set(err, Q2E_EOUTPUT, "libelf is out of date");
	if (opts->redact)
		ret = q2e_redaction_plan(img, &e.redact, err);
	if (ret == 0)
		ret = plan(&e);
	if (ret == 0)
		ret = q2e_dump_note(img, opts, opts->redact ? e.redact.image_name
							     : NULL,
				    &e.note, &e.note_size, err);
	if (ret == 0)
		ret = q2e_image_file_extents(img, &e.extents, &e.nextents, err);
	if (ret == 0)
		ret = q2e_dwarf_build(img, e.syms, e.nsyms,
				      opts->redact ? e.redact.image_name
						   : img->path, &e.dwarf,
				      err);
	if (ret < 0)
		goto out;

	if (fd >= 0) {
		ret = write_elf(&e, fd, path, res);
	} else {
		ret = q2e_emit_open(img, &out, path, err);
		if (ret < 0)
			goto out;
		ret = write_elf(&e, out.fd, path, res);
		if (ret < 0) {
			q2e_outfile_abort(&out);
			goto out;
		}
		ret = q2e_outfile_commit(&out, true, err);
	}
	if (ret < 0)
		goto out;
	res->nsections = e.nsecs;
	res->nsymbols = e.nsyms;
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
	free(e.held);
	q2e_redaction_free(&e.redact);
	q2e_dwarf_free(&e.dwarf);
	return ret;
}

int q2e_dump_write(struct q2e_image *img, const char *path,
		   const struct q2e_dump_options *opts,
		   struct q2e_dump_result *res, struct q2e_error *err)
{
	return dump_to(img, -1, path, opts, res, err);
}

int q2e_dump_write_fd(struct q2e_image *img, int fd, const char *name,
		      const struct q2e_dump_options *opts,
		      struct q2e_dump_result *res, struct q2e_error *err)
{
	if (fd < 0)
		return q2e_error_set(err, Q2E_EUSAGE, "'%s': no file descriptor",
				     name);
	return dump_to(img, fd, name, opts, res, err);
}

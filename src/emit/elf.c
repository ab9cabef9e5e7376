/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The ELF emitter of `dump`.
 *
 * Layout of the file (all offsets chosen here):
 *   ELF header, program headers (PT_NOTE, then PT_LOADs by address)
 *   .note.qcow2elf        the image's name, sizes and the tool's version
 *   .qcow2.*              one section per region, the image's bytes at
 *                         sh_addr = their offset in the image, in address
 *                         order; regions that overlap or adjoin share one
 *                         copy of their bytes (spans.c)
 *   .debug_*              DWARF types and variables (dwarf.c)
 *   .debug_gdb_scripts    the gdb helpers, unless --no-gdb-script
 *   .qcow2elf.extents     where the image file had data (dumpfmt.h)
 *   .symtab .strtab .shstrtab, then the section header table
 *
 * The header, extensions, active L1, refcount table, snapshot table and
 * bitmap directory come first, so that they keep low section indexes and
 * `info symbol` finds them (gdb 13 places symbols in sections past 32767
 * only when they are absolute, and then `info symbol` does not see them);
 * the other regions follow in offset order.  Region bytes are streamed
 * from the image in bounded chunks after the rest is written, so memory
 * does not grow with the image.  Past 65279 sections the file uses ELF
 * extended numbering.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <elf.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcow2elf/dump.h"
#include "qcow2elf/dumpfmt.h"
#include "bg_extents.h"
#include "dwarf_lib.h"
#include "dwarf_vars.h"
#include "elf_symbols.h"
#include "emit.h"
#include "gdb_script.h"
#include "seqwrite.h"
#include "spans.h"
#include "writeback.h"

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

struct emitter {
	struct q2e_image *img;
	const struct q2e_dump_options *opts;
	struct q2e_error *err;

	struct q2e_out_section *secs;	/* region sections in section order */
	size_t nsecs;
	struct q2e_symbols syms;
	struct q2e_dwarf dwarf;
	struct q2e_bg_extents bg;	/* asking for the extents */
	struct q2e_extent *extents;	/* of the image file, once asked */
	size_t nextents;
	size_t nheld;		/* ranges the region sections hold */
	struct q2e_redaction redact;	/* --redact */
	uint8_t *note;
	size_t note_size;
	size_t nsegs;		/* PT_LOADs written */
};

/* Regions read first by people and tools keep the low section indexes. */
#define MAX_RANK 8
static int early_rank(const struct q2e_region *r)
{
	switch (r->kind) {
	case Q2E_REGION_HEADER:
		return 0;
	case Q2E_REGION_EXTENSION:
		return 1;
	case Q2E_REGION_L1:
		return r->owners[0].kind == Q2E_OWNER_ACTIVE ? 2 : MAX_RANK;
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
		return MAX_RANK;
	}
}

static int plan(struct emitter *e)
{
	struct q2e_image *img = e->img;

	e->secs = calloc(img->nregions ? img->nregions : 1, sizeof(*e->secs));
	if (!e->secs)
		return q2e_error_set(e->err, Q2E_ENOMEM, "out of memory");
	/* By rank, then as the regions come (by offset, then kind): counted,
	 * then placed, two passes over the regions (a pass a rank, nine over
	 * 2 MB for 41,000 regions, was 5 ms of a warm dump's main thread). */
	size_t at[MAX_RANK + 1] = { 0 }, n = 0;

	for (size_t i = 0; i < img->nregions; i++) {
		const struct q2e_region *r = &img->regions[i];

		/* A region with no byte in the file has no section. */
		if (r->avail)
			at[early_rank(r)]++;
	}
	for (int rank = 0; rank <= MAX_RANK; rank++) {
		size_t count = at[rank];

		at[rank] = n;
		n += count;
	}
	for (size_t i = 0; i < img->nregions; i++) {
		const struct q2e_region *r = &img->regions[i];

		if (r->avail)
			e->secs[at[early_rank(r)]++] =
				(struct q2e_out_section){ .region = r };
	}
	e->nsecs = n;
	e->nheld = q2e_dump_held_ranges(img, NULL);
	return 0;
}

struct segment {
	uint64_t vaddr, memsz, offset, filesz;
};

/* Sections A and B by address, then in section order. */
static bool after(const struct q2e_out_section *a, const struct q2e_out_section *b)
{
	if (a->region->offset != b->region->offset)
		return a->region->offset > b->region->offset;
	return a > b;
}

/* Whether a section's bytes take no room in the file. */
static bool is_nobits(const struct emitter *e, const struct q2e_out_section *s)
{
	return e->opts->no_data || s->zero;
}

/*
 * Whether S (at or after LAST's address) continues segment LAST: it
 * adjoins or overlaps it, at the same distance between file offset and
 * address (sections of one span, or of spans that follow in both).
 * Sections of zeros have offsets as if they held their bytes (past those
 * of the others; eu-elflint places a NOBITS section by its offset), so
 * they make segments of their own.
 */
static bool continues(const struct emitter *e, const struct segment *last,
		      const struct q2e_out_section *s)
{
	if (!last || last->vaddr + last->memsz < s->region->offset)
		return false;
	if (is_nobits(e, s) != (last->filesz == 0))
		return false;
	return last->offset + (s->region->offset - last->vaddr) ==
	       s->file_offset;
}

/*
 * The sections by address, for the segments.  The regions come sorted by
 * offset: placed in their order, only regions at one offset (of a damaged
 * image) can be out of place, which an insertion sort fixes in a pass.
 */
static int sort_by_address(struct emitter *e, struct q2e_by_addr *by)
{
	size_t nr = e->img->nregions, n = 0;
	uint32_t *idx = malloc((nr ? nr : 1) * sizeof(*idx));

	if (!idx)
		return q2e_error_set(e->err, Q2E_ENOMEM, "out of memory");
	if (e->nsecs > UINT32_MAX) {
		free(idx);
		return q2e_error_set(e->err, Q2E_EOUTPUT,
				     "too many regions for one dump");
	}
	for (size_t i = 0; i < nr; i++)
		idx[i] = UINT32_MAX;
	for (size_t i = 0; i < e->nsecs; i++)
		idx[e->secs[i].region - e->img->regions] = (uint32_t)i;
	for (size_t i = 0; i < nr; i++)
		if (idx[i] != UINT32_MAX)
			idx[n++] = idx[i];
	for (size_t i = 1; i < n; i++) {
		uint32_t s = idx[i];
		size_t j = i;

		for (; j > 0 && after(&e->secs[idx[j - 1]], &e->secs[s]); j--)
			idx[j] = idx[j - 1];
		idx[j] = s;
	}
	*by = (struct q2e_by_addr){ e->secs, idx, n };
	return 0;
}

static void put_segment(struct q2e_seqwriter *out, const struct segment *s)
{
	Elf64_Phdr ph = { .p_type = PT_LOAD, .p_flags = PF_R,
			  .p_offset = s->offset, .p_vaddr = s->vaddr,
			  .p_paddr = s->vaddr, .p_filesz = s->filesz,
			  .p_memsz = s->memsz, .p_align = 1 };

	q2e_seqwriter_put(out, &ph, sizeof(ph));
}

/*
 * PT_LOADs by address, one per run of sections adjacent in both spaces:
 * their count, and their headers written to OUT if not NULL.  Made again
 * for writing rather than kept: there can be one per section.
 */
static size_t segments(const struct emitter *e, const struct q2e_by_addr *by,
		       struct q2e_seqwriter *out)
{
	struct segment last = { 0 };
	size_t ns = 0;

	for (size_t i = 0; i < e->nsecs; i++) {
		const struct q2e_out_section *s = q2e_by(by, i);
		uint64_t size = s->region->avail;
		uint64_t filesz = is_nobits(e, s) ? 0 : size;

		if (continues(e, ns ? &last : NULL, s)) {
			uint64_t end = s->region->offset + size;

			if (end > last.vaddr + last.memsz)
				last.memsz = end - last.vaddr;
			last.filesz = last.filesz ? last.memsz : 0;
			continue;
		}
		if (ns && out)
			put_segment(out, &last);
		last = (struct segment){ s->region->offset, size,
					 s->file_offset, filesz };
		ns++;
	}
	if (ns && out)
		put_segment(out, &last);
	return ns;
}

/*
 * Writing the file, without libelf: its writer keeps a structure of some
 * 270 bytes per section until it writes the file, 11 MiB for the 41,000
 * regions of a 1 GiB image of 512-byte clusters, and wants every table
 * whole in memory.  Here the tables are written as they are made, through
 * one buffer: each kind of section below knows its size before it writes
 * (count, size), the kinds come in file order, and the section header
 * table, made again from the same plan, comes last.  The file is in the
 * host's byte order, so the <elf.h> structures are written as they are.
 */
enum section_kind_id {
	SEC_NOTE, SEC_REGIONS, SEC_DWARF, SEC_GDB_SCRIPTS, SEC_EXTENTS,
	SEC_HELD, SEC_SYMTAB, SEC_SYMTAB_SHNDX, SEC_STRTAB, SEC_SHSTRTAB, SEC_KINDS
};

struct elf_writer {
	struct emitter *e;
	const char *path;
	struct q2e_seqwriter out;
	uint64_t note_off;
	uint64_t regions_end;	/* file offset past the region bytes */
	bool xnum;		/* extended section numbering */
	bool fresh;		/* the file was empty: it reads as zeros where
				 * not written */
	size_t first[SEC_KINDS];	/* section index of each kind's first */
	size_t nshdr;		/* sections, section 0 too */
	struct q2e_by_addr by;	/* the region sections by address */
	/* The sections after the regions, as their headers will say. */
	Elf64_Shdr *tail;
	const char **tail_name;
	size_t ntail;
	/* Each region section's name length, from .shstrtab for the section
	 * headers, which come after the copy, on the main thread alone:
	 * making 41,000 names again there (by hand, names.c) and their
	 * strlen() was most of their time. */
	uint8_t *name_len;
};

/*
 * The header of a section after the regions, placed at the next free
 * offset: its bytes are to be written next.
 */
static Elf64_Shdr *tail_section(struct elf_writer *w, const char *name,
				Elf64_Word type, uint64_t size, uint64_t align)
{
	Elf64_Shdr *sh = &w->tail[w->ntail];

	w->tail_name[w->ntail++] = name;
	q2e_seqwriter_align(&w->out, align);
	*sh = (Elf64_Shdr){ .sh_type = type,
			    .sh_offset = q2e_seqwriter_tell(&w->out),
			    .sh_size = size, .sh_addralign = align };
	return sh;
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

static int write_dwarf(struct elf_writer *w)
{
	const struct emitter *e = w->e;
	const struct q2e_dwarf *d = &e->dwarf;

	for (size_t i = 0; i < d->nsecs; i++) {
		uint64_t size = d->secs[i].size;

		if (i == d->info)
			size += q2e_dwarf_variables_size(d, &e->syms);
		if (size > UINT32_MAX)
			return q2e_error_set(e->err, Q2E_EOUTPUT,
					     "too many symbols for 32-bit DWARF offsets");
		tail_section(w, d->secs[i].name, SHT_PROGBITS, size, 1);
		q2e_seqwriter_put(&w->out, d->secs[i].data, d->secs[i].size);
		if (i == d->info)
			q2e_dwarf_variables_write(&w->out, d, &e->syms);
	}
	return 0;
}

static int write_gdb_scripts(struct elf_writer *w)
{
	size_t size;
	const char *script = q2e_gdb_script(&size);

	tail_section(w, Q2E_GDB_SCRIPTS_SECTION, SHT_PROGBITS, size, 1);
	q2e_seqwriter_put(&w->out, script, size);
	return 0;
}

/* Lists of (offset, length) pairs in the file's byte order (dumpfmt.h). */
static Elf64_Shdr *range_list(struct elf_writer *w, const char *name,
			      size_t n)
{
	Elf64_Shdr *sh = tail_section(w, name, SHT_PROGBITS,
				      n * sizeof(struct q2e_extent), 8);

	sh->sh_entsize = sizeof(struct q2e_extent);
	return sh;
}

static int write_extents(struct elf_writer *w)
{
	range_list(w, Q2E_EXTENTS_SECTION, w->e->nextents);
	/* Kept: the tables are written again when a region turns out to
	 * be zeros. */
	q2e_seqwriter_put(&w->out, w->e->extents,
			  w->e->nextents * sizeof(*w->e->extents));
	return 0;
}

static int write_held(struct elf_writer *w)
{
	range_list(w, Q2E_REGIONS_SECTION, w->e->nheld);
	q2e_dump_held_ranges(w->e->img, &w->out);
	return 0;
}

/* gdb 13 keeps a symbol's section index in 16 signed bits: past that,
 * absolute symbols are the ones it places right (the value is the
 * address either way). */
static size_t sym_shndx(const struct elf_writer *w, const struct q2e_sym *s)
{
	size_t shndx = w->first[SEC_REGIONS] + s->section;

	return shndx > Q2E_GDB_MAX_SECTIONS ? SHN_ABS : shndx;
}

static void put_symbol(void *ctx, const struct q2e_sym *s, const char *name,
		       size_t len)
{
	struct elf_writer *w = ctx;
	size_t shndx = sym_shndx(w, s);
	Elf64_Sym sym = {
		.st_name = s->name,
		.st_info = ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT),
		.st_other = STV_DEFAULT,
		.st_shndx = (Elf64_Half)(shndx < SHN_LORESERVE || shndx == SHN_ABS
						 ? shndx : SHN_XINDEX),
		.st_value = s->addr,
		.st_size = s->size,
	};

	(void)name; (void)len;
	q2e_seqwriter_put(&w->out, &sym, sizeof(sym));
}

/* Symbols: a null one, then every structure (all global). */
static int write_symtab(struct elf_writer *w)
{
	const struct emitter *e = w->e;
	Elf64_Shdr *sh = tail_section(w, ".symtab", SHT_SYMTAB,
				      (e->syms.total + 1) * sizeof(Elf64_Sym), 8);
	Elf64_Sym sym = { 0 };

	sh->sh_link = (Elf64_Word)w->first[SEC_STRTAB];
	sh->sh_info = 1;
	sh->sh_entsize = sizeof(Elf64_Sym);
	q2e_seqwriter_put(&w->out, &sym, sizeof(sym));
	q2e_symbols_each(&e->syms, false, put_symbol, w);
	return 0;
}

static void put_shndx(void *ctx, const struct q2e_sym *s, const char *name,
		      size_t len)
{
	struct elf_writer *w = ctx;
	size_t shndx = sym_shndx(w, s);
	Elf32_Word x = shndx == SHN_ABS ? 0 : (Elf32_Word)shndx;

	(void)name; (void)len;
	q2e_seqwriter_put(&w->out, &x, sizeof(x));
}

static int write_symtab_shndx(struct elf_writer *w)
{
	const struct emitter *e = w->e;
	Elf64_Shdr *sh = tail_section(w, ".symtab_shndx", SHT_SYMTAB_SHNDX,
				      (e->syms.total + 1) * sizeof(Elf32_Word), 4);
	Elf32_Word x = 0;

	sh->sh_link = (Elf64_Word)w->first[SEC_SYMTAB];
	sh->sh_entsize = sizeof(Elf32_Word);
	q2e_seqwriter_put(&w->out, &x, sizeof(x));
	q2e_symbols_each(&e->syms, false, put_shndx, w);
	return 0;
}

static void put_name(void *ctx, const struct q2e_sym *s, const char *name,
		     size_t len)
{
	(void)s;
	q2e_seqwriter_put(ctx, name, len + 1);
}

static int write_strtab(struct elf_writer *w)
{
	tail_section(w, ".strtab", SHT_STRTAB, w->e->syms.names_len, 1);
	q2e_seqwriter_string(&w->out, "");
	q2e_symbols_each(&w->e->syms, true, put_name, &w->out);
	return 0;
}

/* .shstrtab: the section names in section order, its own among them. */
static int write_shstrtab(struct elf_writer *w)
{
	struct emitter *e = w->e;
	Elf64_Shdr *sh = tail_section(w, ".shstrtab", SHT_STRTAB, 0, 1);
	char name[96];

	q2e_seqwriter_string(&w->out, "");
	q2e_seqwriter_string(&w->out, ".note.qcow2elf");
	for (size_t i = 0; i < e->nsecs; i++) {
		size_t len;

		/* Too long a name is cut (snprintf); none is as long. */
		q2e_region_section(e->img, e->secs[i].region, name,
				   sizeof(name));
		len = strlen(name);
		q2e_seqwriter_put(&w->out, name, len + 1);
		w->name_len[i] = (uint8_t)len;
	}
	for (size_t i = 0; i < w->ntail; i++)
		q2e_seqwriter_string(&w->out, w->tail_name[i]);
	sh->sh_size = q2e_seqwriter_tell(&w->out) - sh->sh_offset;
	if (sh->sh_size > UINT32_MAX)
		return q2e_error_set(e->err, Q2E_EOUTPUT,
				     "too many sections for an ELF string table");
	return 0;
}

/* The sections of a dump, in section and file order; the note's and the
 * regions' bytes are placed by layout(), the others written here. */
static const struct section_kind {
	size_t (*count)(const struct elf_writer *w);
	int (*write)(struct elf_writer *w);
} section_kinds[SEC_KINDS] = {
	[SEC_NOTE] = { count_one, NULL },
	[SEC_REGIONS] = { count_regions, NULL },
	[SEC_DWARF] = { count_dwarf, write_dwarf },
	[SEC_GDB_SCRIPTS] = { count_gdb_scripts, write_gdb_scripts },
	[SEC_EXTENTS] = { count_extents, write_extents },
	[SEC_HELD] = { count_held, write_held },
	[SEC_SYMTAB] = { count_one, write_symtab },
	[SEC_SYMTAB_SHNDX] = { count_xnum, write_symtab_shndx },
	[SEC_STRTAB] = { count_one, write_strtab },
	[SEC_SHSTRTAB] = { count_one, write_shstrtab },
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
	return n;
}

/*
 * File offsets of the regions, packed after the headers and the note, in
 * address order: each span (the union of regions that overlap or adjoin)
 * once, its sections pointing into it.  NOBITS sections (--no-data) get
 * offsets as if they held their bytes, so that each lies inside its own
 * segment's window, as eu-elflint checks; the file does not grow by them.
 * The program header table's size depends on the segment count, so
 * regions are laid out from 0, grouped into segments, then shifted.
 */
static void layout(struct elf_writer *w)
{
	struct emitter *e = w->e;
	uint64_t base = 0, at, off;
	struct q2e_span sp;
	size_t next = 0;

	while (q2e_span_next(&w->by, &next, &sp)) {
		for (size_t k = sp.first; k < sp.last; k++) {
			struct q2e_out_section *s = q2e_by(&w->by, k);

			if (!s->zero)
				s->file_offset =
					base + (s->region->offset - sp.start);
		}
		base += sp.end - sp.start;
	}
	/* Sections of zeros, after the bytes of the others (which is where
	 * the file goes on), as if they held their bytes: eu-elflint takes a
	 * NOBITS section inside a segment's window as part of it. */
	at = base;
	for (size_t i = 0; i < e->nsecs; i++) {
		if (!e->secs[i].zero)
			continue;
		e->secs[i].file_offset = at;
		at += e->secs[i].region->avail;
	}
	e->nsegs = segments(e, &w->by, NULL);
	off = align(sizeof(Elf64_Ehdr) + (1 + e->nsegs) * sizeof(Elf64_Phdr), 4);
	w->note_off = off;
	off += e->note_size;
	for (size_t i = 0; i < e->nsecs; i++)
		e->secs[i].file_offset += off;
	w->regions_end = e->opts->no_data ? off : off + base;
}

/* The ELF header, then the program headers: the note, then the loads. */
static void write_headers(struct elf_writer *w, uint64_t shoff)
{
	size_t nph = 1 + w->e->nsegs, shstrndx = w->nshdr - 1;
	Elf64_Ehdr eh = {
		.e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64,
			     HOST_DATA, EV_CURRENT, ELFOSABI_NONE },
		.e_type = ET_EXEC, .e_machine = HOST_MACHINE,
		.e_version = EV_CURRENT, .e_phoff = sizeof(Elf64_Ehdr),
		.e_shoff = shoff, .e_ehsize = sizeof(Elf64_Ehdr),
		.e_phentsize = sizeof(Elf64_Phdr),
		.e_phnum = (Elf64_Half)(nph < PN_XNUM ? nph : PN_XNUM),
		.e_shentsize = sizeof(Elf64_Shdr),
		.e_shnum = (Elf64_Half)(w->nshdr < SHN_LORESERVE ? w->nshdr : 0),
		.e_shstrndx = (Elf64_Half)(shstrndx < SHN_LORESERVE ? shstrndx
								    : SHN_XINDEX),
	};
	Elf64_Phdr ph = { .p_type = PT_NOTE, .p_offset = w->note_off,
			  .p_vaddr = Q2E_NOTE_VADDR, .p_paddr = Q2E_NOTE_VADDR,
			  .p_filesz = w->e->note_size, .p_align = 4 };

	q2e_seqwriter_put(&w->out, &eh, sizeof(eh));
	q2e_seqwriter_put(&w->out, &ph, sizeof(ph));
	segments(w->e, &w->by, &w->out);
	q2e_seqwriter_put(&w->out, w->e->note, w->e->note_size);
}

/*
 * The section header table.  Past SHN_LORESERVE sections or PN_XNUM
 * program headers, section 0 holds the counts and .shstrtab's index
 * that the ELF header cannot.
 */
static void write_section_headers(struct elf_writer *w, size_t nph)
{
	const struct emitter *e = w->e;
	Elf64_Word name = 1 + (Elf64_Word)strlen(".note.qcow2elf") + 1;
	Elf64_Shdr sh = { 0 };

	if (w->nshdr >= SHN_LORESERVE)
		sh.sh_size = w->nshdr;
	if (w->nshdr - 1 >= SHN_LORESERVE)
		sh.sh_link = (Elf64_Word)(w->nshdr - 1);
	if (nph >= PN_XNUM)
		sh.sh_info = (Elf64_Word)nph;
	q2e_seqwriter_put(&w->out, &sh, sizeof(sh));
	sh = (Elf64_Shdr){ .sh_name = 1, .sh_type = SHT_NOTE,
			   .sh_offset = w->note_off, .sh_size = e->note_size,
			   .sh_addralign = 4 };
	q2e_seqwriter_put(&w->out, &sh, sizeof(sh));
	for (size_t i = 0; i < e->nsecs; i++) {
		const struct q2e_out_section *o = &e->secs[i];

		sh = (Elf64_Shdr){
			.sh_name = name,
			.sh_type = is_nobits(e, o) ? SHT_NOBITS : SHT_PROGBITS,
			.sh_flags = SHF_ALLOC, .sh_addr = o->region->offset,
			.sh_offset = o->file_offset,
			.sh_size = o->region->avail,
			.sh_addralign = 1,
		};
		name += (Elf64_Word)w->name_len[i] + 1;
		q2e_seqwriter_put(&w->out, &sh, sizeof(sh));
	}
	for (size_t i = 0; i < w->ntail; i++) {
		w->tail[i].sh_name = name;
		name += (Elf64_Word)strlen(w->tail_name[i]) + 1;
		q2e_seqwriter_put(&w->out, &w->tail[i], sizeof(w->tail[i]));
	}
}

/*
 * The sections after the regions, numbered once the file's extents are
 * known (whether .qcow2elf.extents is there), which the regions' own
 * offsets and indexes do not depend on.
 */
static int number_tail(struct elf_writer *w)
{
	struct emitter *e = w->e;
	size_t ntail;
	int ret = e->bg.done ? 0 : q2e_bg_extents_finish(&e->bg, &e->extents,
							 &e->nextents, e->err);

	if (ret < 0)
		return ret;
	w->nshdr = number_sections(w);
	w->ntail = 0;
	if (w->tail)
		return 0;
	ntail = w->nshdr - w->first[SEC_DWARF];
	w->tail = calloc(ntail, sizeof(*w->tail));
	w->tail_name = calloc(ntail, sizeof(*w->tail_name));
	w->name_len = malloc(e->nsecs ? e->nsecs : 1);
	if (!w->tail || !w->tail_name || !w->name_len)
		return q2e_error_set(e->err, Q2E_ENOMEM, "out of memory");
	return 0;
}

/* The dump's note, again (the first only had its size right). */
static int make_note(struct emitter *e, bool prealloc)
{
	size_t size = e->note_size;
	int ret;

	free(e->note);
	ret = q2e_dump_note(e->img, e->opts,
			    e->opts->redact ? e->redact.image_name : NULL,
			    prealloc, &e->note, &e->note_size, e->err);
	if (ret == 0 && size && e->note_size != size)
		ret = q2e_error_set(e->err, Q2E_EOUTPUT,
				    "the dump's note changed its size");
	return ret;
}

/*
 * What only the tables after the regions need, made while the regions are
 * copied: the symbols, the note's metadata-preallocation (QEMU's guess
 * from the file's allocation, not its st_blocks: those change as the file
 * system settles, and the dump must not) and the DWARF types.
 */
static int prepare(struct emitter *e)
{
	bool prealloc = false;
	int ret = q2e_symbols_plan(&e->syms, e->img, e->secs, e->nsecs, e->err);

	if (ret == 0)
		ret = q2e_image_metadata_preallocation(e->img, &prealloc,
							e->err);
	if (ret == 0 && prealloc)
		ret = make_note(e, true);
	if (ret == 0)
		ret = q2e_dwarf_build(e->img, &e->syms,
				      e->opts->redact ? e->redact.image_name
						      : e->img->path,
				      &e->dwarf, e->err);
	return ret;
}

/* The sections after the regions, from the end of the regions' bytes. */
static int write_tail(struct elf_writer *w)
{
	int ret = q2e_seqwriter_seek(&w->out, w->regions_end);

	if (ret == 0)
		ret = number_tail(w);
	for (size_t k = SEC_DWARF; k < SEC_KINDS && ret == 0; k++)
		if (section_kinds[k].count(w))
			ret = section_kinds[k].write(w);
	return ret;
}

/*
 * A region whose bytes are all zeros (a table a header claims in a hole,
 * or past what was ever written) becomes an SHT_NOBITS section: readers
 * take it as zeros, as they do the image, at no cost in the file or in
 * reading it back.  Decided by the bytes alone, so that the dump is the
 * same whatever the file system says about holes.
 *
 * The layout depends on which regions are zeros, and the bytes are read
 * once: the spans are written as if none were, and the first region found
 * all zeros makes the rest only looked at, then the layout made again and
 * the bytes and the tables after them written again.  Most images have no
 * such region.
 *
 * The regions' bytes are copied by threads (span_threads.c) while this
 * thread makes and writes the rest, after them in the file; the section
 * headers, which say which regions are zeros, wait for the copy.  With
 * PREPARE_TOO, the symbols, the note and the types are made then too.
 * Where the page cache lacks the bytes, this thread reads them before it
 * writes the rest: the extents it waits for then come while it reads.
 */
static int write_regions(struct elf_writer *w, bool prepare_too, bool *again)
{
	struct emitter *e = w->e;
	struct q2e_spans_job job = {
		.img = e->img, .by = &w->by, .fd = w->out.fd, .wb = w->out.wb,
		.path = w->path, .redact = &e->redact, .skip_zeros = w->fresh,
		.err = e->err,
	};
	bool tail_done = false;
	int ret = 0;

	if (!e->opts->no_data)
		q2e_spans_start(&job);
	if (prepare_too)
		ret = prepare(e);
	if (ret == 0 && (e->opts->no_data || !q2e_spans_left_over(&job))) {
		tail_done = true;
		ret = write_tail(w);
	}
	if (!e->opts->no_data) {
		int copied = q2e_spans_finish(&job, ret < 0);

		ret = ret < 0 ? ret : copied;
	}
	if (ret == 0 && !tail_done)
		ret = write_tail(w);
	*again = job.again;
	return ret;
}

static int write_tables(struct elf_writer *w)
{
	uint64_t shoff = 0, end = 0;
	bool again = false;
	int ret;

	layout(w);
	ret = write_regions(w, true, &again);
	if (ret == 0 && again) {
		/* A hole left by the first try would keep its bytes, so what
		 * the writer still holds of it (the tables after the regions)
		 * goes out before the file is emptied, not after, into a hole
		 * of the second. */
		ret = q2e_seqwriter_flush(&w->out);
		if (ret == 0 && w->fresh && ftruncate(w->out.fd, 0) < 0)
			ret = q2e_error_set(w->e->err, Q2E_EOUTPUT,
					    "'%s': cannot truncate: %s",
					    w->path, strerror(errno));
		layout(w);
		if (ret == 0)
			ret = write_regions(w, false, &again);
	}
	if (ret == 0) {
		q2e_seqwriter_align(&w->out, 8);
		shoff = q2e_seqwriter_tell(&w->out);
		write_section_headers(w, 1 + w->e->nsegs);
		end = q2e_seqwriter_tell(&w->out);
		ret = q2e_seqwriter_seek(&w->out, 0);
	}
	/* A longer file given to write over ends where the dump does. */
	if (ret == 0 && ftruncate(w->out.fd, (off_t)end) < 0)
		ret = q2e_error_set(w->e->err, Q2E_EOUTPUT,
				    "'%s': cannot set the file size: %s",
				    w->path, strerror(errno));
	if (ret == 0) {
		write_headers(w, shoff);
		ret = q2e_seqwriter_flush(&w->out);
	}
	return ret;
}

static int write_elf(struct emitter *e, int fd, const char *path,
		     struct q2e_writeback *wb, struct q2e_dump_result *res)
{
	struct elf_writer w = { .e = e, .path = path };
	struct stat st;
	int ret;

	w.fresh = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0;
	ret = q2e_seqwriter_init(&w.out, fd, path, e->err);
	w.out.wb = wb;
	if (ret == 0)
		ret = sort_by_address(e, &w.by);
	if (ret == 0)
		ret = write_tables(&w);
	res->nsegments = e->nsegs;
	q2e_seqwriter_fini(&w.out);
	free(w.tail);
	free(w.tail_name);
	free(w.name_len);
	free(w.by.idx);
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
	q2e_bg_extents_start(&e.bg, img);
	if (opts->redact)
		ret = q2e_redaction_plan(img, &e.redact, err);
	if (ret == 0)
		ret = plan(&e);
	/* Its size, for the layout: the rest is made while the regions are
	 * copied. */
	if (ret == 0)
		ret = make_note(&e, false);
	/* Before the output is made, as when the types came first. */
	if (ret == 0 && !q2e_dwarf_lib(err))
		ret = err->code ? err->code : Q2E_EUNSUPPORTED;
	if (ret < 0)
		goto out;

	if (fd >= 0) {
		ret = write_elf(&e, fd, path, NULL, res);
	} else {
		struct q2e_writeback wb = { .started = false };

		ret = q2e_emit_open(img, &out, path, err);
		if (ret < 0)
			goto out;
		/* A dump is made again from its image: a sync before the
		 * rename took as long as writing it (1 TiB image). */
		out.no_sync = true;
		/* Only a file renamed over another is written out in the
		 * rename (writeback.c); a new one is left to the kernel. */
		if (out.replaces)
			q2e_writeback_start(&wb, out.fd);
		ret = write_elf(&e, out.fd, path, wb.started ? &wb : NULL, res);
		q2e_writeback_finish(&wb);
		if (ret < 0) {
			q2e_outfile_abort(&out);
			goto out;
		}
		ret = q2e_outfile_commit(&out, true, err);
	}
	if (ret < 0)
		goto out;
	res->nsections = e.nsecs;
	res->nsymbols = e.syms.total;
	for (size_t i = 0; i < e.nsecs; i++)
		res->truncated += e.secs[i].region->avail < e.secs[i].region->size;
	for (size_t i = 0; i < img->nregions; i++)
		res->truncated += img->regions[i].avail == 0;
out:
	if (!e.bg.done) {	/* the thread reads IMG: done with it first */
		struct q2e_extent *list;
		size_t n;

		q2e_bg_extents_finish(&e.bg, &list, &n, NULL);
		free(list);
	}
	q2e_symbols_free(&e.syms);
	free(e.secs);
	free(e.note);
	free(e.extents);
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

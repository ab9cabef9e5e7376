/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The two output backends.  Hand-written rather than a JSON library: the
 * JSON is streamed (reports of large images are never held in memory) and
 * its layout must not change under us, since users diff it.
 *
 * The stream is locked once, from q2e_out_new() to q2e_out_finish(), and
 * written with stdio's _unlocked calls (as coreutils' unlocked-io.h does):
 * a lock a call was a fifth of map's time on an everyday image, whose
 * JSON is 4,000 lines of seven members.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/output.h"

#define MAX_DEPTH 32
#define HUMAN_KEY_WIDTH 28

struct q2e_out {
	FILE *fp;
	enum q2e_format format;
	enum q2e_json_style style;
	int depth;
	bool first[MAX_DEPTH];		/* no element yet at this depth */
	bool is_array[MAX_DEPTH];
	/* JSON lines: the separator before the next element is written
	 * already (q2e_out_more()). */
	bool sep_written[MAX_DEPTH];
	uint64_t count[MAX_DEPTH];	/* human: index of array elements */
	/* Human tables: the depth of the table's array (0: none), and the
	 * padding owed by the last cell, paid only if another cell follows
	 * so that no line ends in blanks. */
	int table_depth;
	const struct q2e_out_column *cols;
	size_t ncols, col;
	int pad;
	bool color;			/* human: SGR escapes around values */
};

struct q2e_out *q2e_out_new(FILE *fp, enum q2e_format format)
{
	struct q2e_out *o = calloc(1, sizeof(*o));

	if (o) {
		flockfile(fp);
		o->fp = fp;
		o->format = format;
		o->first[0] = true;
	}
	return o;
}

void q2e_out_set_json_style(struct q2e_out *o, enum q2e_json_style style)
{
	o->style = style;
}

enum q2e_format q2e_out_format(const struct q2e_out *o)
{
	return o->format;
}

int q2e_out_finish(struct q2e_out *o)
{
	int ret;

	/* (cut short after q2e_out_more(), its line is ended already; a
	 * view that failed before its first value wrote nothing, and map's
	 * "[" stays alone, as qemu-img map leaves it when its first range
	 * fails) */
	if (o->format == Q2E_FORMAT_JSON && !o->sep_written[o->depth] &&
	    !(o->depth == 0 && o->first[0]) &&
	    !(o->style == Q2E_JSON_LINES && o->depth > 0 &&
	      o->first[o->depth]))
		putc_unlocked('\n', o->fp);
	ret = fflush_unlocked(o->fp) == 0 && !ferror_unlocked(o->fp) ? 0 : -1;
	funlockfile(o->fp);
	free(o);
	return ret;
}

/* N blanks, written 32 at a time. */
static void pad(struct q2e_out *o, size_t n)
{
	static const char spaces[] = "                                ";

	for (; n > sizeof(spaces) - 1; n -= sizeof(spaces) - 1)
		fwrite_unlocked(spaces, 1, sizeof(spaces) - 1, o->fp);
	fwrite_unlocked(spaces, 1, n, o->fp);
}

/* One write, not one a level: check -M prints 100,000 indented lines. */
static void indent(struct q2e_out *o, int depth)
{
	pad(o, (size_t)(depth > 0 ? depth : 0) *
		       (o->format == Q2E_FORMAT_JSON ? 4 : 2));
}

/*
 * Length of the well-formed UTF-8 sequence at P (RFC 3629, table 3-7 of
 * Unicode: no overlong forms, no surrogates, nothing above U+10FFFF), or 0.
 */
static size_t utf8_sequence(const unsigned char *p, size_t left)
{
	unsigned c = p[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > left)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;	/* overlong */
	else if (c == 0xed)
		hi = 0x9f;	/* surrogates */
	else if (c == 0xf0)
		lo = 0x90;	/* overlong */
	else if (c == 0xf4)
		hi = 0x8f;	/* above U+10FFFF */
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t k = 2; k < n; k++)
		if ((p[k] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* What else a run of plain bytes stops at. */
enum {
	STOP_QUOTE = 1,		/* '"' */
	STOP_BACKSLASH = 2,	/* '\\' */
	STOP_JSON = STOP_QUOTE | STOP_BACKSLASH,
};

/*
 * Which of the 8 bytes of X are not plain (printable ASCII, and none of
 * the characters STOP names): the high bit of each such byte, and only of
 * those.  Every sum below stays within its byte (7-bit values plus at
 * most 0x7f), so no carry crosses into the next one.
 */
static uint64_t not_plain(uint64_t x, unsigned stop)
{
	const uint64_t ones = 0x0101010101010101u, high = ones * 0x80;
	uint64_t low = x & ~high, bad;

	bad = x | ~(low + ones * (0x80 - 0x20)) | (low + ones);
	if (stop & STOP_QUOTE)
		bad |= ~((low ^ (ones * '"')) + ones * 0x7f);
	if (stop & STOP_BACKSLASH)
		bad |= ~((low ^ (ones * '\\')) + ones * 0x7f);
	return bad & high;
}

/*
 * The printable ASCII bytes from P on: written as they are, at once.
 * Eight bytes a step: under the fuzzer's coverage every comparison of a
 * byte calls a hook, and names from an image run to thousands of bytes.
 */
static size_t plain_run(const unsigned char *p, size_t len, unsigned stop)
{
	size_t n = 0;

	while (n < len) {
		uint64_t x = 0, bad;	/* bytes past LEN: 0, not plain */

		memcpy(&x, p + n, len - n < 8 ? len - n : 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		x = __builtin_bswap64(x);
#endif
		bad = not_plain(x, stop);
		if (bad)
			return n + (size_t)__builtin_ctzll(bad) / 8;
		n += 8;
	}
	return len;
}

/*
 * The code point of the sequence at P as QEMU's JSON writer takes it
 * (mod_utf8_codepoint() in its util/unicode.c), or -1 for one it does
 * not; *LEN is the bytes the sequence spans either way.  The lead byte
 * says how many continuation bytes follow (up to five, as in the first
 * UTF-8); a sequence cut short spans the continuation bytes it has.
 * Valid: within U+10FFFF, no surrogate, none of Unicode's 66
 * noncharacters, not overlong, except C0 80 for U+0000.
 */
static long qemu_code_point(const unsigned char *p, size_t left, size_t *len)
{
	static const long least[] = { 0x80, 0x800, 0x10000, 0x200000,
				      0x4000000 };
	unsigned c = p[0], n = 0;
	long cp;

	*len = 1;
	if (c < 0x80)
		return c;
	if (c >= 0xfe || !(c & 0x40))
		return -1;	/* 0xfe, 0xff, or a continuation byte */
	while (c & (0x80u >> n))
		n++;
	cp = c & (0x7fu >> n);
	for (unsigned k = 1; k < n; k++) {
		if (k >= left || (p[k] & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (p[k] & 0x3f);
		*len = k + 1;
	}
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
	    (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe ||
	    (cp < least[n - 2] && !(cp == 0 && n == 2)))
		return -1;
	return cp;
}

/*
 * A string as QEMU's JSON writer gives it (qobject/json-writer.c), so
 * that jq reads the same names from both: what it cannot take (bad
 * UTF-8, noncharacters) is U+FFFD, one for each sequence as it splits
 * them.  The characters are written as UTF-8 where QEMU writes \u
 * escapes, except controls, C1 controls included (U+009B starts a
 * sequence on some terminals).  Runs of plain characters are written at
 * once: a character at a time was a tenth of map's time.
 */
static void json_string(FILE *fp, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	putc_unlocked('"', fp);
	for (size_t i = 0; i < len; i++) {
		size_t n = plain_run(p + i, len - i, STOP_JSON);

		if (n) {
			fwrite_unlocked(p + i, 1, n, fp);
			i += n;
			if (i == len)
				break;
		}
		long c = qemu_code_point(p + i, len - i, &n);

		if (c == '"' || c == '\\')
			fprintf(fp, "\\%c", (int)c);
		else if (c == '\n')
			fputs_unlocked("\\n", fp);
		else if (c == '\t')
			fputs_unlocked("\\t", fp);
		else if (c < 0)
			fputs_unlocked("\\ufffd", fp);
		else if (c < 0x20 || (c >= 0x7f && c < 0xa0))
			fprintf(fp, "\\u%04lx", c);
		else
			fwrite_unlocked(p + i, 1, n, fp);
		i += n - 1;
	}
	putc_unlocked('"', fp);
}

/*
 * For people, as ls -b and git quote names: a name from an image must not
 * drive the terminal (ESC ]0;... retitles it, C1 CSI U+009B starts a
 * sequence on some terminals).  In a value (NAME), a backslash is
 * doubled as ls -b doubles it, so that a name of the four characters
 * \x1b and one holding ESC read apart, and the gdb helpers take a name
 * as printed; in a message it stays single ("no QFI\xfb magic").
 */
static int write_escaped(FILE *fp, const char *s, size_t len, bool name)
{
	const unsigned char *p = (const unsigned char *)s;
	int width = 0;

	flockfile(fp);	/* already held when called for a q2e_out */
	for (size_t i = 0; i < len; i++) {
		size_t n = plain_run(p + i, len - i, name ? STOP_BACKSLASH : 0);

		if (n) {
			fwrite_unlocked(p + i, 1, n, fp);
			width += (int)n;
			i += n;
			if (i == len)
				break;
		}
		unsigned c = p[i];

		n = c < 0x80 ? 1 : utf8_sequence(p + i, len - i);
		if (c == '\\' && name) {
			fputs_unlocked("\\\\", fp);
			width += 2;
		} else if (n > 1 && !(c == 0xc2 && p[i + 1] < 0xa0)) {
			fwrite_unlocked(p + i, 1, n, fp);
			i += n - 1;
			width++;
		} else {
			/* a control character, or a byte of bad UTF-8 */
			fprintf(fp, "\\x%02x", c);
			width += 4;
		}
	}
	funlockfile(fp);
	return width;
}

int q2e_fwrite_escaped(FILE *fp, const char *s, size_t len)
{
	return write_escaped(fp, s, len, false);
}

void q2e_fputs_escaped(FILE *fp, const char *s)
{
	q2e_fwrite_escaped(fp, s, strlen(s));
}

static bool in_table_row(const struct q2e_out *o)
{
	return o->table_depth > 0 && o->depth == o->table_depth + 1;
}

/* Human: starts a table cell, paying the previous cell's padding. */
static void table_cell(struct q2e_out *o)
{
	if (o->col > 0)
		fprintf(o->fp, "%*s ", o->pad > 0 ? o->pad : 0, "");
}

/* Human: ends a value WIDTH wide, the line or the table cell. */
static void human_value_end(struct q2e_out *o, int width)
{
	if (!in_table_row(o)) {
		putc_unlocked('\n', o->fp);
		return;
	}
	o->pad = (o->col < o->ncols ? o->cols[o->col].width : 0) - width;
	o->col++;
}

/* JSON, qemu-img map's layout: elements one per line, members on it. */
static void json_lines_member(struct q2e_out *o, int d)
{
	if (d == 0)
		return;
	if (o->is_array[d])
		fputs_unlocked(o->first[d] || o->sep_written[d] ? "" : ",\n",
			       o->fp);
	else
		fputs_unlocked(o->first[d] ? " " : ", ", o->fp);
	o->sep_written[d] = false;
}

void q2e_out_more(struct q2e_out *o)
{
	int d = o->depth;

	if (o->format != Q2E_FORMAT_JSON || o->style != Q2E_JSON_LINES ||
	    d == 0 || !o->is_array[d] || o->first[d] || o->sep_written[d])
		return;
	fputs_unlocked(",\n", o->fp);
	o->sep_written[d] = true;
}

/* "[I]", ending at the end of BUF[24]; returns where it starts. */
static const char *array_index(char *buf, uint64_t i)
{
	char *p = buf + 23;

	*p = '\0';
	*--p = ']';
	do
		*--p = (char)('0' + i % 10);
	while ((i /= 10) != 0);
	*--p = '[';
	return p;
}

/* Starts a member or element; for human output, prints its key column. */
static void member(struct q2e_out *o, const char *key, bool container)
{
	int d = o->depth;

	if (o->format == Q2E_FORMAT_JSON) {
		if (o->style == Q2E_JSON_LINES) {
			json_lines_member(o, d);
		} else if (o->style == Q2E_JSON_COMPACT) {
			if (!o->first[d])
				putc_unlocked(',', o->fp);
		} else {
			if (!o->first[d])
				putc_unlocked(',', o->fp);
			if (d > 0) {
				putc_unlocked('\n', o->fp);
				indent(o, d);
			}
		}
		if (key) {
			json_string(o->fp, key, strlen(key));
			fputs_unlocked(o->style == Q2E_JSON_COMPACT ? ":" : ": ", o->fp);
		}
		o->first[d] = false;
		return;
	}
	/* Written, not printf()ed: info and check print a key a line. */
	char index[24];
	const char *label = "";
	size_t len = 0;
	int width;

	if (in_table_row(o)) {
		table_cell(o);
		return;
	}
	if (key) {
		label = key;
		len = strnlen(key, 63);
	} else if (d > 0 && o->is_array[d]) {
		label = array_index(index, o->count[d]);
		len = strlen(label);
	}
	if (d > 0 && o->is_array[d])
		o->count[d]++;
	o->first[d] = false;
	if (d == 0 && !key)
		return;		/* the top-level value has no line */
	indent(o, d > 0 ? d - 1 : 0);
	fwrite_unlocked(label, 1, len, o->fp);
	if (container) {
		fputs_unlocked(":\n", o->fp);
		return;
	}
	/* As printf's "%-*s ": a negative width pads as much. */
	width = HUMAN_KEY_WIDTH - 2 * (d > 0 ? d - 1 : 0);
	width = width < 0 ? -width : width;
	pad(o, (size_t)width > len ? (size_t)width - len + 1 : 1);
}

static void open_container(struct q2e_out *o, const char *key, bool array)
{
	if (o->format == Q2E_FORMAT_HUMAN && o->table_depth > 0 &&
	    o->depth == o->table_depth) {
		o->col = 0;	/* a row: its values are its line */
		o->pad = 0;
		indent(o, o->depth - 1);
		o->count[o->depth]++;
		o->first[o->depth] = false;
	} else {
		member(o, key, true);
	}
	if (o->format == Q2E_FORMAT_JSON)
		putc_unlocked(array ? '[' : '{', o->fp);
	if (o->depth + 1 < MAX_DEPTH)
		o->depth++;
	o->first[o->depth] = true;
	o->sep_written[o->depth] = false;
	o->is_array[o->depth] = array;
	o->count[o->depth] = 0;
}

void q2e_out_object(struct q2e_out *o, const char *key)
{
	open_container(o, key, false);
}

void q2e_out_array(struct q2e_out *o, const char *key)
{
	open_container(o, key, true);
}

void q2e_out_table(struct q2e_out *o, const char *key,
		   const struct q2e_out_column *cols, size_t ncols)
{
	open_container(o, key, true);
	if (o->format != Q2E_FORMAT_HUMAN)
		return;
	o->table_depth = o->depth;
	o->cols = cols;
	o->ncols = ncols;
	indent(o, o->depth - 1);
	for (size_t i = 0; i < ncols; i++) {
		o->col = i;
		table_cell(o);
		o->pad = cols[i].width - fprintf(o->fp, "%s", cols[i].title);
	}
	putc_unlocked('\n', o->fp);
}

void q2e_out_end(struct q2e_out *o)
{
	bool array = o->is_array[o->depth], empty = o->first[o->depth];

	if (o->format == Q2E_FORMAT_HUMAN && in_table_row(o)) {
		o->depth--;
		putc_unlocked('\n', o->fp);
		return;
	}
	if (o->depth > 0 && o->depth == o->table_depth)
		o->table_depth = 0;
	if (o->depth > 0)
		o->depth--;
	if (o->format != Q2E_FORMAT_JSON) {
		if (empty && o->depth > 0) {	/* not a dangling label */
			indent(o, o->depth);
			fputs_unlocked("(none)\n", o->fp);
		}
		return;
	}
	if (!empty && o->style == Q2E_JSON_PRETTY) {
		putc_unlocked('\n', o->fp);
		indent(o, o->depth);
	}
	putc_unlocked(array ? ']' : '}', o->fp);
}

void q2e_out_strn(struct q2e_out *o, const char *key, const char *s,
		  size_t len)
{
	member(o, key, false);
	if (o->format == Q2E_FORMAT_JSON)
		json_string(o->fp, s, len);
	else
		human_value_end(o, write_escaped(o->fp, s, len, true));
}

void q2e_out_str(struct q2e_out *o, const char *key, const char *s)
{
	q2e_out_strn(o, key, s, strlen(s));
}

/* A scalar written the same way in both formats but for the human form's
 * FMT_HUMAN (an offset in hex, say). */
static void scalar(struct q2e_out *o, const char *key, const char *fmt_json,
		   const char *fmt_human, ...)
	__attribute__((format(printf, 4, 5)));

static void scalar(struct q2e_out *o, const char *key, const char *fmt_json,
		   const char *fmt_human, ...)
{
	va_list ap;
	int n;

	member(o, key, false);
	va_start(ap, fmt_human);
	n = vfprintf(o->fp, o->format == Q2E_FORMAT_JSON ? fmt_json : fmt_human,
		     ap);
	va_end(ap);
	if (o->format != Q2E_FORMAT_JSON)
		human_value_end(o, n > 0 ? n : 0);
}

/*
 * V in base 10, or in base 16 after "0x" (HEX), as printf's "%" PRIu64 and
 * "0x%" PRIx64 write it, ending with a NUL at the end of BUF[24]; returns
 * where it starts.  Without printf: check -M prints 80,000 numbers, and info one a
 * line, each a call of printf's interceptor under the sanitizers.
 */
static const char *number(char *buf, uint64_t v, bool hex)
{
	char *p = buf + 23;

	*p = '\0';
	if (hex) {
		do
			*--p = "0123456789abcdef"[v & 15];
		while ((v >>= 4) != 0);
		*--p = 'x';
		*--p = '0';
	} else {
		do
			*--p = (char)('0' + v % 10);
		while ((v /= 10) != 0);
	}
	return p;
}

/* A number either form writes as it is (human: "0x1f" if HEX). */
static void uint_value(struct q2e_out *o, const char *key, uint64_t v,
		       bool hex)
{
	char buf[24];
	const char *p = number(buf, v, hex && o->format != Q2E_FORMAT_JSON);
	size_t len = (size_t)(buf + sizeof(buf) - 1 - p);

	member(o, key, false);
	fwrite_unlocked(p, 1, len, o->fp);
	if (o->format != Q2E_FORMAT_JSON)
		human_value_end(o, (int)len);
}

void q2e_out_uint(struct q2e_out *o, const char *key, uint64_t v)
{
	uint_value(o, key, v, false);
}

void q2e_out_int(struct q2e_out *o, const char *key, int64_t v)
{
	scalar(o, key, "%" PRId64, "%" PRId64, v);
}

void q2e_out_hex(struct q2e_out *o, const char *key, uint64_t v)
{
	uint_value(o, key, v, true);
}

void q2e_out_bool(struct q2e_out *o, const char *key, bool v)
{
	member(o, key, false);
	fputs_unlocked(v ? "true" : "false", o->fp);
	if (o->format != Q2E_FORMAT_JSON)
		human_value_end(o, v ? 4 : 5);
}

void q2e_out_bytes(struct q2e_out *o, const char *key, const uint8_t *p,
		   size_t len)
{
	member(o, key, false);
	if (o->format == Q2E_FORMAT_JSON)
		putc_unlocked('"', o->fp);
	for (size_t i = 0; i < len; i++)
		fprintf(o->fp, "%02x", p[i]);
	if (o->format == Q2E_FORMAT_JSON)
		putc_unlocked('"', o->fp);
	else
		human_value_end(o, len * 2 > INT32_MAX ? INT32_MAX : (int)(len * 2));
}

void q2e_out_set_color(struct q2e_out *o, bool on)
{
	o->color = on;
}

/* Human output: the value TEXT in colour C, then the end of its line. */
static void human_colored(struct q2e_out *o, const char *text, size_t len,
			  enum q2e_color c)
{
	static const char *const sgr[] = {
		[Q2E_COLOR_RED] = "\033[31m",
		[Q2E_COLOR_GREEN] = "\033[32m",
		[Q2E_COLOR_BOLD] = "\033[1m",
	};
	bool on = o->color && c > Q2E_COLOR_NONE && c <= Q2E_COLOR_BOLD;

	if (on)
		fputs_unlocked(sgr[c], o->fp);
	write_escaped(o->fp, text, len, true);
	fputs_unlocked(on ? "\033[m\n" : "\n", o->fp);
}

void q2e_out_str_color(struct q2e_out *o, const char *key, const char *s,
		       enum q2e_color c)
{
	if (o->format == Q2E_FORMAT_JSON) {
		q2e_out_str(o, key, s);
		return;
	}
	member(o, key, false);
	human_colored(o, s, strlen(s), c);
}

void q2e_out_uint_color(struct q2e_out *o, const char *key, uint64_t v,
			enum q2e_color c)
{
	char buf[24];
	const char *p;

	if (o->format == Q2E_FORMAT_JSON) {
		q2e_out_uint(o, key, v);
		return;
	}
	p = number(buf, v, false);
	member(o, key, false);
	human_colored(o, p, (size_t)(buf + sizeof(buf) - 1 - p), c);
}

void q2e_out_hex_string(struct q2e_out *o, const char *key, uint64_t v,
			enum q2e_color c)
{
	char buf[24];

	q2e_out_str_color(o, key, number(buf, v, true), c);
}

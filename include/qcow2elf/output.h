/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Structured output with two backends, so that each view is written once:
 *   - JSON, streamed (a map or check report of a large image is never built
 *     in memory), pretty-printed like qemu-img's, keys in the order written;
 *   - human: nested "key  value" lines in two columns, or a table where
 *     a view asks for one (q2e_out_table()).
 * Values that are offsets use q2e_out_hex(): a number in JSON, 0x... for
 * people.  Write errors are kept and returned by q2e_out_finish().
 */
#ifndef QCOW2ELF_OUTPUT_H
#define QCOW2ELF_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum q2e_format {
	Q2E_FORMAT_HUMAN,
	Q2E_FORMAT_JSON,
};

struct q2e_out;

/*
 * How JSON is laid out.  PRETTY is qemu-img info's.  LINES is qemu-img
 * map's, which `map` must reproduce byte for byte: a top-level array with
 * one "{ "key": value, ...}" object per line.  COMPACT is the whole
 * document on one line, without blanks: a record of a JSON Lines stream.
 */
enum q2e_json_style {
	Q2E_JSON_PRETTY,
	Q2E_JSON_LINES,
	Q2E_JSON_COMPACT,
};

struct q2e_out_column {
	const char *title;
	int width;		/* the last column's is not padded */
};

/* Holds FP's lock (flockfile()) until q2e_out_finish(): another thread
 * writing to FP meanwhile waits. */
struct q2e_out *q2e_out_new(FILE *fp, enum q2e_format format);
/* Before anything is written; the default is Q2E_JSON_PRETTY. */
void q2e_out_set_json_style(struct q2e_out *o, enum q2e_json_style style);
/* In Q2E_JSON_LINES, another element of the array follows: its separator
 * is written now, as qemu-img map writes it, so that output cut short by
 * an error ends as qemu-img's does.  Nothing in other forms. */
void q2e_out_more(struct q2e_out *o);
/* Ends the document and releases FP; 0, or -1 if anything could not be
 * written. */
int q2e_out_finish(struct q2e_out *o);
enum q2e_format q2e_out_format(const struct q2e_out *o);

/* KEY is NULL for array elements and the top-level value. */
void q2e_out_object(struct q2e_out *o, const char *key);
void q2e_out_array(struct q2e_out *o, const char *key);
void q2e_out_end(struct q2e_out *o);
/*
 * An array of objects that people read as a table: a line of column titles,
 * then one line per element, its values in the columns in the order they
 * are written (a row may stop short; nothing trails a line).  Keys name the
 * values in JSON only, where the table is an ordinary array.  One table at
 * a time; its rows hold scalars only.
 */
void q2e_out_table(struct q2e_out *o, const char *key,
		   const struct q2e_out_column *cols, size_t ncols);

void q2e_out_str(struct q2e_out *o, const char *key, const char *s);
void q2e_out_strn(struct q2e_out *o, const char *key, const char *s,
		  size_t len);
void q2e_out_uint(struct q2e_out *o, const char *key, uint64_t v);
void q2e_out_int(struct q2e_out *o, const char *key, int64_t v);
void q2e_out_hex(struct q2e_out *o, const char *key, uint64_t v);
void q2e_out_bool(struct q2e_out *o, const char *key, bool v);
/* Bytes: a hex string in both formats. */
void q2e_out_bytes(struct q2e_out *o, const char *key, const uint8_t *p,
		   size_t len);

/*
 * Text for people that may hold names from an image (a backing file, a
 * snapshot, a bitmap, an error message quoting one), so that it cannot
 * drive the terminal: well-formed UTF-8 as it is; control characters (C0,
 * DEL, C1) and bytes of bad UTF-8 as \xHH, as git and ls escape names.
 * Every human value of q2e_out is written so, a backslash doubled too
 * (here it stays single: messages say "QFI\xfb").  Returns the columns
 * written, one per character.
 */
int q2e_fwrite_escaped(FILE *fp, const char *s, size_t len);
void q2e_fputs_escaped(FILE *fp, const char *s);

/*
 * Colour, for human output only (JSON never has any), as git colours a
 * diff: off until q2e_out_set_color() turns it on.
 */
enum q2e_color {
	Q2E_COLOR_NONE,
	Q2E_COLOR_RED,		/* what was */
	Q2E_COLOR_GREEN,	/* what is */
	Q2E_COLOR_BOLD,		/* a name to look up */
};
void q2e_out_set_color(struct q2e_out *o, bool on);
void q2e_out_str_color(struct q2e_out *o, const char *key, const char *s,
		       enum q2e_color c);
void q2e_out_uint_color(struct q2e_out *o, const char *key, uint64_t v,
			enum q2e_color c);
/* 0x... in both formats: a string in JSON, where readers such as jq and
 * JavaScript lose integers above 2^53. */
void q2e_out_hex_string(struct q2e_out *o, const char *key, uint64_t v,
			enum q2e_color c);

#endif

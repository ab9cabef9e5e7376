/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The two output backends.  Hand-written rather than a JSON library: the
 * JSON is streamed (reports of large images are never held in memory) and
 * its layout must not change under us, since users diff it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/output.h"

#define MAX_DEPTH 32
#define HUMAN_KEY_WIDTH 28

struct q2e_out {
	FILE *fp;
	enum q2e_format format;
	int depth;
	bool first[MAX_DEPTH];		/* no element yet at this depth */
	bool is_array[MAX_DEPTH];
	uint64_t count[MAX_DEPTH];	/* human: index of array elements */
	bool color;			/* human: SGR escapes around values */
};

struct q2e_out *q2e_out_new(FILE *fp, enum q2e_format format)
{
	struct q2e_out *o = calloc(1, sizeof(*o));

	if (o) {
		o->fp = fp;
		o->format = format;
		o->first[0] = true;
	}
	return o;
}

enum q2e_format q2e_out_format(const struct q2e_out *o)
{
	return o->format;
}

int q2e_out_finish(struct q2e_out *o)
{
	int ret;

	if (o->format == Q2E_FORMAT_JSON)
		fputc('\n', o->fp);
	ret = fflush(o->fp) == 0 && !ferror(o->fp) ? 0 : -1;
	free(o);
	return ret;
}

static void indent(struct q2e_out *o, int depth)
{
	for (int i = 0; i < depth; i++)
		fputs(o->format == Q2E_FORMAT_JSON ? "    " : "  ", o->fp);
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

/* UTF-8 passes through; control characters and bad bytes are escaped,
 * each bad byte as the code point of its value. */
static void json_string(FILE *fp, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', fp);
	for (size_t i = 0; i < len; i++) {
		unsigned c = p[i];
		size_t n;

		if (c == '"' || c == '\\') {
			fprintf(fp, "\\%c", c);
		} else if (c == '\n') {
			fputs("\\n", fp);
		} else if (c == '\t') {
			fputs("\\t", fp);
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(fp, "\\u%04x", c);
		} else if (c < 0x80) {
			fputc((int)c, fp);
		} else if ((n = utf8_sequence(p + i, len - i)) != 0) {
			fwrite(p + i, 1, n, fp);
			i += n - 1;
		} else {
			fprintf(fp, "\\u%04x", c);
		}
	}
	fputc('"', fp);
}

/* Human strings: printable bytes as they are, the rest as \xNN. */
static void human_string(FILE *fp, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			fprintf(fp, "\\x%02x", c);
		else
			fputc(c, fp);
	}
}

/* Starts a member or element; for human output, prints its key column. */
static void member(struct q2e_out *o, const char *key, bool container)
{
	int d = o->depth;

	if (o->format == Q2E_FORMAT_JSON) {
		if (!o->first[d])
			fputc(',', o->fp);
		if (d > 0) {
			fputc('\n', o->fp);
			indent(o, d);
		}
		if (key) {
			json_string(o->fp, key, strlen(key));
			fputs(": ", o->fp);
		}
		o->first[d] = false;
		return;
	}
	char label[64];

	if (key)
		snprintf(label, sizeof(label), "%s", key);
	else if (d > 0 && o->is_array[d])
		snprintf(label, sizeof(label), "[%" PRIu64 "]", o->count[d]);
	else
		label[0] = '\0';
	if (d > 0 && o->is_array[d])
		o->count[d]++;
	o->first[d] = false;
	if (d == 0 && !key)
		return;		/* the top-level value has no line */
	indent(o, d > 0 ? d - 1 : 0);
	if (container)
		fprintf(o->fp, "%s:\n", label);
	else
		fprintf(o->fp, "%-*s ", HUMAN_KEY_WIDTH - 2 * (d > 0 ? d - 1 : 0),
			label);
}

static void open_container(struct q2e_out *o, const char *key, bool array)
{
	member(o, key, true);
	if (o->format == Q2E_FORMAT_JSON)
		fputc(array ? '[' : '{', o->fp);
	if (o->depth + 1 < MAX_DEPTH)
		o->depth++;
	o->first[o->depth] = true;
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

void q2e_out_end(struct q2e_out *o)
{
	bool array = o->is_array[o->depth], empty = o->first[o->depth];

	if (o->depth > 0)
		o->depth--;
	if (o->format != Q2E_FORMAT_JSON) {
		if (empty && o->depth > 0) {	/* not a dangling label */
			indent(o, o->depth);
			fputs("(none)\n", o->fp);
		}
		return;
	}
	if (!empty) {
		fputc('\n', o->fp);
		indent(o, o->depth);
	}
	fputc(array ? ']' : '}', o->fp);
}

void q2e_out_strn(struct q2e_out *o, const char *key, const char *s,
		  size_t len)
{
	member(o, key, false);
	if (o->format == Q2E_FORMAT_JSON) {
		json_string(o->fp, s, len);
		return;
	}
	human_string(o->fp, s, len);
	fputc('\n', o->fp);
}

void q2e_out_str(struct q2e_out *o, const char *key, const char *s)
{
	q2e_out_strn(o, key, s, strlen(s));
}

void q2e_out_uint(struct q2e_out *o, const char *key, uint64_t v)
{
	member(o, key, false);
	fprintf(o->fp, o->format == Q2E_FORMAT_JSON ? "%" PRIu64 : "%" PRIu64 "\n",
		v);
}

void q2e_out_int(struct q2e_out *o, const char *key, int64_t v)
{
	member(o, key, false);
	fprintf(o->fp, o->format == Q2E_FORMAT_JSON ? "%" PRId64 : "%" PRId64 "\n",
		v);
}

void q2e_out_hex(struct q2e_out *o, const char *key, uint64_t v)
{
	member(o, key, false);
	fprintf(o->fp, o->format == Q2E_FORMAT_JSON ? "%" PRIu64 : "0x%" PRIx64 "\n",
		v);
}

void q2e_out_bool(struct q2e_out *o, const char *key, bool v)
{
	member(o, key, false);
	fprintf(o->fp, o->format == Q2E_FORMAT_JSON ? "%s" : "%s\n",
		v ? "true" : "false");
}

void q2e_out_bytes(struct q2e_out *o, const char *key, const uint8_t *p,
		   size_t len)
{
	member(o, key, false);
	if (o->format == Q2E_FORMAT_JSON)
		fputc('"', o->fp);
	for (size_t i = 0; i < len; i++)
		fprintf(o->fp, "%02x", p[i]);
	fputs(o->format == Q2E_FORMAT_JSON ? "\"" : "\n", o->fp);
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
		fputs(sgr[c], o->fp);
	human_string(o->fp, text, len);
	fputs(on ? "\033[m\n" : "\n", o->fp);
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

	if (o->format == Q2E_FORMAT_JSON) {
		q2e_out_uint(o, key, v);
		return;
	}
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	member(o, key, false);
	human_colored(o, buf, strlen(buf), c);
}

void q2e_out_hex_string(struct q2e_out *o, const char *key, uint64_t v,
			enum q2e_color c)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
	q2e_out_str_color(o, key, buf, c);
}

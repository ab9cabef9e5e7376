/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The output backends (src/out/output.c): the exact bytes each writes,
 * captured with open_memstream().  Users diff the JSON and scripts parse
 * it, so escaping and layout are checked byte for byte.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "qcow2elf/output.h"

struct capture {
	FILE *fp;
	char *buf;
	size_t len;
	struct q2e_out *o;
};

static void start(struct capture *c, enum q2e_format format)
{
	c->buf = NULL;
	c->len = 0;
	c->fp = open_memstream(&c->buf, &c->len);
	assert_non_null(c->fp);
	c->o = q2e_out_new(c->fp, format);
	assert_non_null(c->o);
	assert_int_equal(q2e_out_format(c->o), format);
}

/* Finishes the document and checks every byte of it. */
static void expect(struct capture *c, const char *want)
{
	assert_int_equal(q2e_out_finish(c->o), 0);
	assert_int_equal(fclose(c->fp), 0);
	assert_string_equal(c->buf, want);
	assert_int_equal(c->len, strlen(want));
	free(c->buf);
}

/* One JSON string value, as the top-level value. */
static void expect_json_string(const char *s, size_t len, const char *want)
{
	struct capture c;

	start(&c, Q2E_FORMAT_JSON);
	q2e_out_strn(c.o, NULL, s, len);
	expect(&c, want);
}

static void test_json_escapes(void **state)
{
	(void)state;
	expect_json_string("say \"hi\"", 8, "\"say \\\"hi\\\"\"\n");
	expect_json_string("C:\\dir\\", 7, "\"C:\\\\dir\\\\\"\n");
	expect_json_string("a\nb\tc", 5, "\"a\\nb\\tc\"\n");
	expect_json_string("\x01\x1f\r\b\x7f", 5,
			   "\"\\u0001\\u001f\\u000d\\u0008\\u007f\"\n");
	/* a NUL inside a counted string is kept, escaped */
	expect_json_string("a\0b", 3, "\"a\\u0000b\"\n");
	expect_json_string("", 0, "\"\"\n");
}

/*
 * As QEMU 7.2's JSON writer reads them (`qemu-img info --output=json` of
 * snapshots so named gives the same values): what it cannot take is one
 * U+FFFD for each sequence as it splits them.
 */
static void test_json_utf8(void **state)
{
	(void)state;
	/* valid sequences of 2, 3 and 4 bytes pass through */
	expect_json_string("caf\xc3\xa9", 5, "\"caf\xc3\xa9\"\n");
	expect_json_string("\xe2\x82\xac", 3, "\"\xe2\x82\xac\"\n");
	expect_json_string("\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\"\n");
	/* C1 controls are escaped, as QEMU escapes them (U+009B is CSI) */
	expect_json_string("\xc2\x9b\xc2\x80\xc2\xa0", 6,
			   "\"\\u009b\\u0080\xc2\xa0\"\n");
	/* bytes that cannot start a sequence: one U+FFFD each */
	expect_json_string("\xff", 1, "\"\\ufffd\"\n");
	expect_json_string("\x80x", 2, "\"\\ufffdx\"\n");
	expect_json_string("\xfe\xff", 2, "\"\\ufffd\\ufffd\"\n");
	/* five- and six-byte forms are one sequence each, beyond U+10FFFF */
	expect_json_string("\xf8\x88\x80\x80\x80", 5, "\"\\ufffd\"\n");
	expect_json_string("\xfc\x84\x80\x80\x80\x80z", 7,
			   "\"\\ufffdz\"\n");
	/* C0 80 is U+0000; other overlong forms are not taken */
	expect_json_string("\xc0\x80", 2, "\"\\u0000\"\n");
	expect_json_string("\xc1\xbf", 2, "\"\\ufffd\"\n");
	expect_json_string("a\xe0\x80\x80" "b", 5, "\"a\\ufffdb\"\n");
	expect_json_string("\xf0\x80\x80\x80", 4, "\"\\ufffd\"\n");
	/* cut short by the end of the string or by another character: the
	 * continuation bytes it has are its own */
	expect_json_string("\xc3", 1, "\"\\ufffd\"\n");
	expect_json_string("\xe2\x82", 2, "\"\\ufffd\"\n");
	expect_json_string("\xe2\x82" "a\xac", 4, "\"\\ufffda\\ufffd\"\n");
	expect_json_string("\xf0\x9f\x98", 3, "\"\\ufffd\"\n");
	/* surrogates, above U+10FFFF, noncharacters */
	expect_json_string("\xed\xa0\x80", 3, "\"\\ufffd\"\n");
	expect_json_string("\xf4\x90\x80\x80", 4, "\"\\ufffd\"\n");
	expect_json_string("\xef\xb7\x90\xef\xbf\xbe", 6,
			   "\"\\ufffd\\ufffd\"\n");
	/* the edges of those: U+DFFF, U+FDEF, U+1FFFE, U+10FFFF */
	expect_json_string("\xed\xbf\xbf\xef\xb7\xaf", 6,
			   "\"\\ufffd\\ufffd\"\n");
	expect_json_string("\xf0\x9f\xbf\xbe\xf4\x8f\xbf\xbf", 8,
			   "\"\\ufffd\\ufffd\"\n");
	/* the last C1 control, and the first character after them */
	expect_json_string("\xc2\x9f\xc2\xa1", 4, "\"\\u009f\xc2\xa1\"\n");
	/* the edges that are valid: U+D7FF, U+10FFFD, U+FDCF, U+FDF0 */
	expect_json_string("\xed\x9f\xbf\xf4\x8f\xbf\xbd\xef\xb7\x8f\xef\xb7\xb0",
			   13, "\"\xed\x9f\xbf\xf4\x8f\xbf\xbd\xef\xb7\x8f\xef\xb7\xb0\"\n");
}

static void test_json_nesting(void **state)
{
	static const uint8_t bytes[] = { 0x00, 0xab, 0xff };
	struct capture c;

	(void)state;
	start(&c, Q2E_FORMAT_JSON);
	q2e_out_object(c.o, NULL);
	q2e_out_str(c.o, "filename", "a.qcow2");
	q2e_out_array(c.o, "list");
	q2e_out_uint(c.o, NULL, 18446744073709551615ULL);
	q2e_out_object(c.o, NULL);
	q2e_out_bool(c.o, "dirty", true);
	q2e_out_int(c.o, "delta", -5);
	q2e_out_end(c.o);
	q2e_out_array(c.o, NULL);
	q2e_out_end(c.o);
	q2e_out_end(c.o);
	q2e_out_object(c.o, "empty");
	q2e_out_end(c.o);
	q2e_out_hex(c.o, "offset", 0x10000);
	q2e_out_bytes(c.o, "bytes", bytes, sizeof(bytes));
	q2e_out_bool(c.o, "corrupt", false);
	q2e_out_end(c.o);
	expect(&c,
	       "{\n"
	       "    \"filename\": \"a.qcow2\",\n"
	       "    \"list\": [\n"
	       "        18446744073709551615,\n"
	       "        {\n"
	       "            \"dirty\": true,\n"
	       "            \"delta\": -5\n"
	       "        },\n"
	       "        []\n"
	       "    ],\n"
	       "    \"empty\": {},\n"
	       "    \"offset\": 65536,\n"
	       "    \"bytes\": \"00abff\",\n"
	       "    \"corrupt\": false\n"
	       "}\n");
}

/* Keys are strings like any other. */
static void test_json_key_escapes(void **state)
{
	struct capture c;

	(void)state;
	start(&c, Q2E_FORMAT_JSON);
	q2e_out_object(c.o, NULL);
	q2e_out_uint(c.o, "a\"b", 1);
	q2e_out_end(c.o);
	expect(&c, "{\n    \"a\\\"b\": 1\n}\n");
}

static void test_human_columns(void **state)
{
	static const uint8_t bytes[] = { 0xde, 0xad };
	struct capture c;

	(void)state;
	start(&c, Q2E_FORMAT_HUMAN);
	q2e_out_object(c.o, NULL);
	q2e_out_str(c.o, "filename", "a.qcow2");
	q2e_out_hex(c.o, "offset", 0x10000);
	q2e_out_int(c.o, "delta", -5);
	q2e_out_object(c.o, "header");
	q2e_out_uint(c.o, "version", 3);
	q2e_out_bool(c.o, "dirty", false);
	q2e_out_end(c.o);
	q2e_out_array(c.o, "names");
	q2e_out_str(c.o, NULL, "first");
	q2e_out_object(c.o, NULL);
	q2e_out_bytes(c.o, "bytes", bytes, sizeof(bytes));
	q2e_out_end(c.o);
	q2e_out_end(c.o);
	q2e_out_array(c.o, "empty");
	q2e_out_end(c.o);
	q2e_out_end(c.o);
	/* Values start in column 29 at every depth; an empty list says so. */
	expect(&c,
	       "filename                     a.qcow2\n"
	       "offset                       0x10000\n"
	       "delta                        -5\n"
	       "header:\n"
	       "  version                    3\n"
	       "  dirty                      false\n"
	       "names:\n"
	       "  [0]                        first\n"
	       "  [1]:\n"
	       "    bytes                    dead\n"
	       "empty:\n"
	       "  (none)\n");
}

/* Control bytes are shown as \xNN and a backslash doubled, so that a
 * name of the four characters \x7f cannot pass for DEL; everything else
 * passes through. */
static void test_human_strings(void **state)
{
	struct capture c;

	(void)state;
	start(&c, Q2E_FORMAT_HUMAN);
	q2e_out_object(c.o, NULL);
	q2e_out_strn(c.o, "name", "a\nb\x7f\"\\\xc3\xa9", 8);
	q2e_out_str(c.o, "literal", "b\\x7f");
	q2e_out_end(c.o);
	expect(&c, "name                         a\\x0ab\\x7f\"\\\\\xc3\xa9\n"
		   "literal                      b\\\\x7f\n");
}

/* A key wider than the column still leaves one space before the value. */
/* What q2e_fwrite_escaped() writes for S, and the columns it counts. */
static void expect_escaped(const char *s, size_t len, const char *want,
			   int width)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *fp = open_memstream(&buf, &n);

	assert_non_null(fp);
	assert_int_equal(q2e_fwrite_escaped(fp, s, len), width);
	assert_int_equal(fclose(fp), 0);
	assert_string_equal(buf, want);
	free(buf);
}

static void test_escaped(void **state)
{
	(void)state;
	/* ESC ]0;x BEL retitles a terminal; a NUL inside a length. */
	expect_escaped("\x1b]0;x\x07\0", 7, "\\x1b]0;x\\x07\\x00", 16);
	/* U+009B (CSI on some terminals) and U+0080 are C1 controls;
	 * U+00A0 and e-acute are not. */
	expect_escaped("\xc2\x9b[\xc2\x80\xc2\xa0\xc3\xa9", 9,
		       "\\xc2\\x9b[\\xc2\\x80\xc2\xa0\xc3\xa9", 19);
	/* Bad UTF-8: a lone continuation byte, a truncated sequence, an
	 * overlong form, a surrogate; each byte on its own. */
	expect_escaped("\x80\xe2\x82", 3, "\\x80\\xe2\\x82", 12);
	expect_escaped("\xc0\xaf\xed\xa0\x80", 5,
		       "\\xc0\\xaf\\xed\\xa0\\x80", 20);
	/* Four-byte UTF-8 passes; a backslash is left alone. */
	expect_escaped("\xf0\x9f\x98\x80 a\\b", 8, "\xf0\x9f\x98\x80 a\\b", 5);
}

static void test_human_long_key(void **state)
{
	struct capture c;

	(void)state;
	start(&c, Q2E_FORMAT_HUMAN);
	q2e_out_object(c.o, NULL);
	q2e_out_uint(c.o, "a-key-that-is-wider-than-the-column", 1);
	q2e_out_end(c.o);
	expect(&c, "a-key-that-is-wider-than-the-column 1\n");
}

/* The rows of a map-like table: two ranges, the second without an offset. */
static const struct q2e_out_column columns[] = {
	{ "Offset", 8 }, { "Kind", 6 }, { "Mapped to", 10 }, { "File", 0 },
};

static void table_rows(struct q2e_out *o, const char *key)
{
	q2e_out_table(o, key, columns, sizeof(columns) / sizeof(columns[0]));
	q2e_out_object(o, NULL);
	q2e_out_hex(o, "start", 0);
	q2e_out_str(o, "kind", "data");
	q2e_out_hex(o, "offset", 0x50000);
	q2e_out_str(o, "file", "a b\n");
	q2e_out_end(o);
	q2e_out_object(o, NULL);
	q2e_out_hex(o, "start", 0x20000);
	q2e_out_bool(o, "zero", true);
	q2e_out_end(o);
	q2e_out_end(o);
}

/* qemu-img map's JSON: one object per line, "{ " and ", " inside it. */
static void test_json_lines(void **state)
{
	struct capture c;

	(void)state;
	start(&c, Q2E_FORMAT_JSON);
	q2e_out_set_json_style(c.o, Q2E_JSON_LINES);
	table_rows(c.o, NULL);
	expect(&c,
	       "[{ \"start\": 0, \"kind\": \"data\", \"offset\": 327680, \"file\": \"a b\\n\"},\n"
	       "{ \"start\": 131072, \"zero\": true}]\n");
	start(&c, Q2E_FORMAT_JSON);
	q2e_out_set_json_style(c.o, Q2E_JSON_LINES);
	q2e_out_array(c.o, NULL);
	q2e_out_end(c.o);
	expect(&c, "[]\n");
}

/* JSON Lines records: the whole document on one line, no blanks. */
static void test_json_compact(void **state)
{
	struct capture c;

	(void)state;
	start(&c, Q2E_FORMAT_JSON);
	q2e_out_set_json_style(c.o, Q2E_JSON_COMPACT);
	q2e_out_object(c.o, NULL);
	q2e_out_str(c.o, "filename", "a \"b\"\n");
	q2e_out_int(c.o, "exit-status", 3);
	q2e_out_array(c.o, "list");
	q2e_out_uint(c.o, NULL, 1);
	q2e_out_object(c.o, NULL);
	q2e_out_end(c.o);
	q2e_out_bool(c.o, NULL, false);
	q2e_out_end(c.o);
	q2e_out_array(c.o, "none");
	q2e_out_end(c.o);
	q2e_out_end(c.o);
	expect(&c, "{\"filename\":\"a \\\"b\\\"\\n\",\"exit-status\":3,"
		   "\"list\":[1,{},false],\"none\":[]}\n");
}

/* A table: padded columns, a row may stop short, no blank ends a line. */
static void test_human_table(void **state)
{
	struct capture c;

	(void)state;
	start(&c, Q2E_FORMAT_HUMAN);
	table_rows(c.o, NULL);
	expect(&c,
	       "Offset   Kind   Mapped to  File\n"
	       "0x0      data   0x50000    a b\\x0a\n"
	       "0x20000  true\n");
	/* the same table under a key, indented like a list, a value after */
	start(&c, Q2E_FORMAT_HUMAN);
	q2e_out_object(c.o, NULL);
	table_rows(c.o, "ranges");
	q2e_out_uint(c.o, "after", 1);
	q2e_out_end(c.o);
	expect(&c,
	       "ranges:\n"
	       "  Offset   Kind   Mapped to  File\n"
	       "  0x0      data   0x50000    a b\\x0a\n"
	       "  0x20000  true\n"
	       "after                        1\n");
}

/* q2e_out_finish() reports what could not be written. */
static void test_write_error(void **state)
{
	FILE *fp = fopen("/dev/full", "w");
	struct q2e_out *o;

	(void)state;
	if (!fp)
		skip();
	o = q2e_out_new(fp, Q2E_FORMAT_JSON);
	assert_non_null(o);
	q2e_out_object(o, NULL);
	q2e_out_str(o, "k", "v");
	q2e_out_end(o);
	assert_int_equal(q2e_out_finish(o), -1);
	fclose(fp);
}

/* Another thread's try for the stream's lock, as a write from it would
 * take it: 0 if it got the lock. */
static void *try_lock(void *arg)
{
	FILE *fp = arg;
	int busy = ftrylockfile(fp);

	if (!busy)
		funlockfile(fp);
	return (void *)(intptr_t)busy;
}

static int lock_taken_elsewhere(FILE *fp)
{
	pthread_t t;
	void *busy;

	assert_int_equal(pthread_create(&t, NULL, try_lock, fp), 0);
	assert_int_equal(pthread_join(t, &busy), 0);
	return busy != NULL;
}

/* The backend writes with stdio's unlocked calls: it must hold the stream
 * from q2e_out_new() to q2e_out_finish(), and no longer. */
static void test_stream_held(void **state)
{
	struct capture c;

	(void)state;
	start(&c, Q2E_FORMAT_JSON);
	assert_true(lock_taken_elsewhere(c.fp));
	q2e_out_object(c.o, NULL);
	q2e_out_bool(c.o, "b", true);
	q2e_out_end(c.o);
	assert_true(lock_taken_elsewhere(c.fp));
	assert_int_equal(q2e_out_finish(c.o), 0);
	assert_false(lock_taken_elsewhere(c.fp));
	assert_int_equal(fclose(c.fp), 0);
	assert_string_equal(c.buf, "{\n    \"b\": true\n}\n");
	free(c.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_escapes),
		cmocka_unit_test(test_json_utf8),
		cmocka_unit_test(test_json_nesting),
		cmocka_unit_test(test_json_key_escapes),
		cmocka_unit_test(test_human_columns),
		cmocka_unit_test(test_human_strings),
		cmocka_unit_test(test_human_long_key),
		cmocka_unit_test(test_escaped),
		cmocka_unit_test(test_json_lines),
		cmocka_unit_test(test_json_compact),
		cmocka_unit_test(test_human_table),
		cmocka_unit_test(test_write_error),
		cmocka_unit_test(test_stream_held),
	};

	return cmocka_run_group_tests_name("output", tests, NULL, NULL);
}

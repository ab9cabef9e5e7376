/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for QEMU's format probe (src/decode/probe.c): the format a
 * backing file is taken for when the image names none, and whether a
 * named format's driver would take the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "qcow2elf/qcow2.h"

static uint8_t buf[QCOW2_PROBE_BYTES];

static void reset(void)
{
	memset(buf, 0, sizeof(buf));
}

static const char *probe(void)
{
	return qcow2_probe_format(buf, sizeof(buf), "backing.img");
}

static void test_qcow_versions(void **state)
{
	(void)state;
	reset();
	memcpy(buf, "QFI\xfb\0\0\0\3", 8);
	assert_string_equal(probe(), "qcow2");
	buf[7] = 2;
	assert_string_equal(probe(), "qcow2");
	buf[7] = 1;
	assert_string_equal(probe(), "qcow");
	/* QEMU 7.2 pads the 2,048 bytes it reads with zeros, so a file of
	 * 50 bytes has a header's worth; the decoder itself wants 104. */
	buf[7] = 3;
	assert_int_equal(qcow2_probe_score("qcow2", buf, 103, NULL), 0);
	assert_int_equal(qcow2_probe_score("qcow2", buf, 104, NULL), 100);
}

static void test_magics(void **state)
{
	static const struct {
		const char *bytes;
		size_t at, len;
		const char *fmt;
	} cases[] = {
		{ "KDMV", 0, 4, "vmdk" },
		{ "COWD", 0, 4, "vmdk" },
		{ "conectix", 0, 8, "vpc" },
		{ "vhdxfile", 0, 8, "vhdx" },
		{ "QED", 0, 4, "qed" },
		{ "\x7f\x10\xda\xbe", 64, 4, "vdi" },
		{ "LUKS\xba\xbe\0\1", 0, 8, "luks" },
		{ "WithoutFreeSpace\2\0\0\0", 0, 20, "parallels" },
		{ "WithouFreSpacExt\2\0\0\0", 0, 20, "parallels" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		reset();
		memcpy(buf + cases[i].at, cases[i].bytes, cases[i].len);
		assert_string_equal(probe(), cases[i].fmt);
		assert_int_equal(qcow2_probe_score(cases[i].fmt, buf,
						   sizeof(buf), NULL), 100);
	}
	/* LUKS version 2 is not LUKS1, which QEMU's driver reads. */
	reset();
	memcpy(buf, "LUKS\xba\xbe\0\2", 8);
	assert_string_equal(probe(), "raw");
	/* Parallels of another version. */
	reset();
	memcpy(buf, "WithoutFreeSpace\3", 17);
	assert_string_equal(probe(), "raw");
}

static void test_bochs(void **state)
{
	(void)state;
	reset();
	strcpy((char *)buf, "Bochs Virtual HD Image");
	strcpy((char *)buf + 32, "Redolog");
	strcpy((char *)buf + 48, "Growing");
	buf[66] = 2;	/* le32 0x20000 */
	assert_string_equal(probe(), "bochs");
	strcpy((char *)buf + 48, "Undoable");
	assert_string_equal(probe(), "raw");
}

static void test_vmdk_descriptor(void **state)
{
	static const struct {
		const char *text, *fmt;
	} cases[] = {
		{ "# Disk DescriptorFile\n   \nversion=1\nCID=fffffffe\n", "vmdk" },
		{ "# comment\r\nversion=3\r\n", "vmdk" },
		/* Text before the version line: not a descriptor. */
		{ "# Disk DescriptorFile\nCID=1\nversion=1\n", "raw" },
		{ "version=4\n", "raw" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		reset();
		strcpy((char *)buf, cases[i].text);
		assert_string_equal(probe(), cases[i].fmt);
	}
}

static void test_weak_and_raw(void **state)
{
	(void)state;
	reset();
	assert_string_equal(probe(), "raw");
	assert_string_equal(qcow2_probe_format(buf, sizeof(buf), "disk.dmg"),
			    "dmg");
	strcpy((char *)buf, "#!/bin/sh\n#V2.0 Format\n"
	       "modprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n");
	assert_string_equal(probe(), "cloop");
	/* A magic beats the name. */
	reset();
	memcpy(buf, "KDMV", 4);
	assert_string_equal(qcow2_probe_format(buf, sizeof(buf), "disk.dmg"),
			    "vmdk");
	/* A named format's driver takes only its own files. */
	reset();
	assert_int_equal(qcow2_probe_score("vmdk", buf, sizeof(buf), NULL), 0);
	assert_int_equal(qcow2_probe_score("raw", buf, sizeof(buf), NULL), 1);
	assert_int_equal(qcow2_probe_score("nbd", buf, sizeof(buf), NULL), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qcow_versions),
		cmocka_unit_test(test_magics),
		cmocka_unit_test(test_bochs),
		cmocka_unit_test(test_vmdk_descriptor),
		cmocka_unit_test(test_weak_and_raw),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

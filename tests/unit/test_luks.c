/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The LUKS1 header of an encrypted image's encryption area
 * (src/decode/luks.c), written out as in the layout table there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "qcow2elf/error.h"
#include "qcow2elf/qcow2.h"

#define SLOT(n) (208 + 48 * (n))

/* Shaped as QEMU writes it (aes-xts-plain64, sha256), with slot 7 enabled too. */
static const uint8_t luks[QCOW2_LUKS_HEADER_SIZE] = {
	[0] = 'L', 'U', 'K', 'S', 0xba, 0xbe,		/* magic */
	[6] = 0x00, 0x01,				/* version */
	[8] = 'a', 'e', 's',				/* cipher_name */
	[40] = 'x', 't', 's', '-', 'p', 'l', 'a', 'i', 'n', '6', '4', /* mode */
	[72] = 's', 'h', 'a', '2', '5', '6',		/* hash_spec */
	[104] = 0x00, 0x00, 0x10, 0x00,			/* payload_offset */
	[108] = 0x00, 0x00, 0x00, 0x40,			/* key_bytes */
	[112] = 0x5a,					/* mk_digest */
	[132] = 0xa5,					/* mk_digest_salt */
	[164] = 0x00, 0x01, 0x86, 0xa0,			/* mk_digest_iterations */
	[168] = '0', '1', '2', '3', '4', '5', '6', '7', '-', /* uuid */
		'8', '9', 'a', 'b', '-', 'c', 'd', 'e', 'f', '-',
		'0', '1', '2', '3', '-', '4', '5', '6', '7', '8',
		'9', 'a', 'b', 'c', 'd', 'e', 'f',
	/* slot 0: enabled */
	[SLOT(0)] = 0x00, 0xac, 0x71, 0xf3,		/* active */
	[SLOT(0) + 4] = 0x00, 0x0f, 0x42, 0x40,		/* iterations */
	[SLOT(0) + 8] = 0x11,				/* salt */
	[SLOT(0) + 40] = 0x00, 0x00, 0x00, 0x08,	/* key_material_offset */
	[SLOT(0) + 44] = 0x00, 0x00, 0x0f, 0xa0,	/* stripes */
	/* slots 1..7: disabled, with their key material laid out */
	[SLOT(1)] = 0x00, 0x00, 0xde, 0xad,
	[SLOT(1) + 40] = 0x00, 0x00, 0x01, 0xf8, 0x00, 0x00, 0x0f, 0xa0,
	[SLOT(2)] = 0x00, 0x00, 0xde, 0xad,
	[SLOT(2) + 40] = 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x0f, 0xa0,
	[SLOT(3)] = 0x00, 0x00, 0xde, 0xad,
	[SLOT(3) + 40] = 0x00, 0x00, 0x05, 0xd8, 0x00, 0x00, 0x0f, 0xa0,
	[SLOT(4)] = 0x00, 0x00, 0xde, 0xad,
	[SLOT(4) + 40] = 0x00, 0x00, 0x07, 0xc8, 0x00, 0x00, 0x0f, 0xa0,
	[SLOT(5)] = 0x00, 0x00, 0xde, 0xad,
	[SLOT(5) + 40] = 0x00, 0x00, 0x09, 0xb8, 0x00, 0x00, 0x0f, 0xa0,
	[SLOT(6)] = 0x00, 0x00, 0xde, 0xad,
	[SLOT(6) + 40] = 0x00, 0x00, 0x0b, 0xa8, 0x00, 0x00, 0x0f, 0xa0,
	/* slot 7: enabled, the last bytes of the header */
	[SLOT(7)] = 0x00, 0xac, 0x71, 0xf3,
	[SLOT(7) + 4] = 0x00, 0x00, 0x03, 0xe8,
	[SLOT(7) + 40] = 0x00, 0x00, 0x0d, 0x98, 0x00, 0x00, 0x0f, 0xa1,
};

static void test_fields(void **state)
{
	struct qcow2_luks_header h;
	const char *why = NULL;

	(void)state;
	assert_int_equal(qcow2_luks_header_decode(luks, sizeof(luks), &h, &why),
			 0);
	assert_int_equal(h.version, 1);
	assert_string_equal(h.cipher_name, "aes");
	assert_string_equal(h.cipher_mode, "xts-plain64");
	assert_string_equal(h.hash_spec, "sha256");
	assert_int_equal(h.payload_offset, 4096);
	assert_int_equal(h.key_bytes, 64);
	assert_int_equal(h.mk_digest_iterations, 100000);
	assert_string_equal(h.uuid, "01234567-89ab-cdef-0123-456789abcdef");
}

static void test_slots(void **state)
{
	struct qcow2_luks_header h;
	const char *why = NULL;

	(void)state;
	assert_int_equal(qcow2_luks_header_decode(luks, sizeof(luks), &h, &why),
			 0);
	assert_int_equal(h.slots[0].active, QCOW2_LUKS_SLOT_ENABLED);
	assert_int_equal(h.slots[0].iterations, 1000000);
	assert_int_equal(h.slots[0].key_offset, 8);
	assert_int_equal(h.slots[0].stripes, 4000);
	for (unsigned i = 1; i < 7; i++) {
		assert_int_equal(h.slots[i].active, 0xdead);
		assert_int_equal(h.slots[i].iterations, 0);
		assert_int_equal(h.slots[i].key_offset, 8 + 496 * i);
		assert_int_equal(h.slots[i].stripes, 4000);
	}
	assert_int_equal(h.slots[7].active, QCOW2_LUKS_SLOT_ENABLED);
	assert_int_equal(h.slots[7].iterations, 1000);
	assert_int_equal(h.slots[7].key_offset, 3480);
	assert_int_equal(h.slots[7].stripes, 4001);
}

/* Strings that fill their field have no NUL on disk; ours do. */
static void test_full_width_strings(void **state)
{
	uint8_t buf[sizeof(luks)];
	struct qcow2_luks_header h;
	const char *why = NULL;

	(void)state;
	memcpy(buf, luks, sizeof(buf));
	memset(buf + 8, 'c', 32);
	memset(buf + 40, 'm', 32);
	memset(buf + 72, 'h', 32);
	memset(buf + 168, 'u', 40);
	assert_int_equal(qcow2_luks_header_decode(buf, sizeof(buf), &h, &why),
			 0);
	assert_int_equal(strlen(h.cipher_name), 32);
	assert_int_equal(h.cipher_name[0], 'c');
	assert_int_equal(strlen(h.cipher_mode), 32);
	assert_int_equal(h.cipher_mode[31], 'm');
	assert_int_equal(strlen(h.hash_spec), 32);
	assert_int_equal(strlen(h.uuid), 40);
	assert_int_equal(h.uuid[39], 'u');
}

static void test_truncated(void **state)
{
	(void)state;
	for (size_t len = 0; len < sizeof(luks); len++) {
		uint8_t *p = malloc(len ? len : 1);
		struct qcow2_luks_header h;
		const char *why = NULL;

		assert_non_null(p);
		memcpy(p, luks, len);
		assert_int_equal(qcow2_luks_header_decode(p, len, &h, &why),
				 Q2E_ECORRUPT);
		assert_string_equal(why, "LUKS header is truncated");
		free(p);
	}
}

static void test_bad_magic(void **state)
{
	(void)state;
	for (size_t i = 0; i < 6; i++) {
		uint8_t buf[sizeof(luks)];
		struct qcow2_luks_header h;
		const char *why = NULL;

		memcpy(buf, luks, sizeof(buf));
		buf[i] ^= 0x01;
		assert_int_equal(qcow2_luks_header_decode(buf, sizeof(buf), &h,
							  &why),
				 Q2E_ECORRUPT);
		assert_string_equal(why, "encryption area does not start with a LUKS header");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_slots),
		cmocka_unit_test(test_full_width_strings),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_bad_magic),
	};

	return cmocka_run_group_tests_name("luks", tests, NULL, NULL);
}

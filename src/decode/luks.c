/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The LUKS1 header at the start of a QCOW2 image's encryption area
 * (crypt_method 2), big-endian like QCOW2:
 *   off  size  field
 *     0     6  magic "LUKS\xba\xbe"
 *     6     2  version (1)
 *     8    32  cipher_name
 *    40    32  cipher_mode
 *    72    32  hash_spec
 *   104     4  payload_offset (sectors)
 *   108     4  key_bytes
 *   112    20  mk_digest
 *   132    32  mk_digest_salt
 *   164     4  mk_digest_iterations
 *   168    40  uuid
 *   208   384  8 key slots of 48 bytes:
 *                 0  4  active (0x00AC71F3 enabled, 0x0000DEAD disabled)
 *                 4  4  iterations
 *                 8 32  salt
 *                40  4  key_material_offset (sectors)
 *                44  4  stripes
 */
#include <string.h>

#include "qcow2elf/error.h"
#include "qcow2elf/qcow2.h"

static void copy_str(char *dst, const uint8_t *src, size_t n)
{
	memcpy(dst, src, n);
	dst[n] = '\0';
}

int qcow2_luks_header_decode(const uint8_t *buf, size_t len,
			     struct qcow2_luks_header *h, const char **why)
{
	static const uint8_t magic[6] = { 'L', 'U', 'K', 'S', 0xba, 0xbe };

	memset(h, 0, sizeof(*h));
	if (len < QCOW2_LUKS_HEADER_SIZE) {
		*why = "LUKS header is truncated";
		return Q2E_ECORRUPT;
	}
	if (memcmp(buf, magic, sizeof(magic)) != 0) {
		*why = "encryption area does not start with a LUKS header";
		return Q2E_ECORRUPT;
	}
	h->version = qcow2_be16(buf + 6);
	copy_str(h->cipher_name, buf + 8, 32);
	copy_str(h->cipher_mode, buf + 40, 32);
	copy_str(h->hash_spec, buf + 72, 32);
	h->payload_offset = qcow2_be32(buf + 104);
	h->key_bytes = qcow2_be32(buf + 108);
	h->mk_digest_iterations = qcow2_be32(buf + 164);
	copy_str(h->uuid, buf + 168, 40);
	for (unsigned i = 0; i < QCOW2_LUKS_SLOTS; i++) {
		const uint8_t *s = buf + 208 + 48 * i;

		h->slots[i].active = qcow2_be32(s);
		h->slots[i].iterations = qcow2_be32(s + 4);
		h->slots[i].key_offset = qcow2_be32(s + 40);
		h->slots[i].stripes = qcow2_be32(s + 44);
	}
	return 0;
}

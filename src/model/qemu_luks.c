/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Why QEMU 7.2 cannot open a qcow2 image's LUKS header, as its LUKS driver
 * reads it even without a key (crypto/block-luks.c: load_header(),
 * check_header(), parse_header()): `qemu-img info` fails on such an image,
 * and so does `qemu-img check` with the key.  The names it takes:
 *
 *   cipher_name   aes (keys of 16, 24, 32 bytes), cast5 (16), serpent
 *                 and twofish (16, 24, 32); twice as long with xts
 *   cipher_mode   MODE-IVGEN[:HASH]: MODE ecb, cbc, xts or ctr; IVGEN
 *                 plain, plain64 or essiv (which needs HASH, and a cipher
 *                 of the family with a key of HASH's digest size)
 *   hash_spec     md5, sha1, sha224, sha256, sha384, sha512, ripemd160
 *
 * the master key digest has iterations, and each of the 8 key slots is enabled (with iterations) or disabled,
 * has 4,000 stripes, and its key material lies between the first 4 KiB
 * and the payload, not overlapping another slot's.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qcow2elf/model.h"
#include "qcow2elf/qcow2.h"
#include "walk.h"

#define LUKS_STRIPES 4000
#define LUKS_SLOT_DISABLED 0x0000DEADU
#define LUKS_HEADER_SECTORS 8		/* 4 KiB of 512-byte sectors */
#define LUKS_SECTOR 512

static int lookup(const char *s, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

#define LOOKUP(s, names) lookup(s, names, sizeof(names) / sizeof(names[0]))

static const char *const hashes[] = {
	"md5", "sha1", "sha224", "sha256", "sha384", "sha512", "ripemd160",
};
static const unsigned digest_bytes[] = { 16, 20, 28, 32, 48, 64, 20 };

/* Whether cipher NAME takes a key of KEY bytes. */
static bool cipher_key(const char *name, unsigned key)
{
	if (strcmp(name, "cast5") == 0)
		return key == 16;
	if (strcmp(name, "aes") == 0 || strcmp(name, "serpent") == 0 ||
	    strcmp(name, "twofish") == 0)
		return key == 16 || key == 24 || key == 32;
	return false;
}

/* Key slot S's key material in sectors, as QEMU's unsigned ints hold it:
 * the bytes wrap at 32 bits (key bytes times stripes), then whole
 * sectors, rounded up to the header's 8, cut to 32 bits again. */
static uint32_t slot_sectors(const struct qcow2_luks_header *h,
			     const struct qcow2_luks_slot *s)
{
	uint32_t bytes = h->key_bytes * s->stripes;
	uint64_t sectors = ((uint64_t)bytes + LUKS_SECTOR - 1) / LUKS_SECTOR;

	return (uint32_t)((sectors + LUKS_HEADER_SECTORS - 1) /
			  LUKS_HEADER_SECTORS * LUKS_HEADER_SECTORS);
}

/* ranges_overlap() of QEMU's range.h, in 64 bits: a range of length 0
 * ends before it starts. */
static bool slots_overlap(uint64_t s1, uint64_t l1, uint64_t s2, uint64_t l2)
{
	return !(s2 + l2 - 1 < s1 || s1 + l1 - 1 < s2);
}

/* The key slots, as check_header() finds them, its sums included:
 * start plus length is an unsigned int there, and wraps. */
static const char *slots_unopenable(const struct qcow2_luks_header *h)
{
	for (unsigned i = 0; i < QCOW2_LUKS_SLOTS; i++) {
		const struct qcow2_luks_slot *s = &h->slots[i];
		uint32_t start = s->key_offset, len = slot_sectors(h, s);

		if (s->stripes != LUKS_STRIPES)
			return "a LUKS key slot does not have 4000 stripes";
		if (s->active != QCOW2_LUKS_SLOT_ENABLED &&
		    s->active != LUKS_SLOT_DISABLED)
			return "a LUKS key slot's state is corrupted";
		if (s->active == QCOW2_LUKS_SLOT_ENABLED && !s->iterations)
			return "a LUKS key slot is enabled with no iterations";
		if (start < LUKS_HEADER_SECTORS)
			return "a LUKS key slot overlaps the LUKS header";
		if ((uint32_t)(start + len) > h->payload_offset)
			return "a LUKS key slot overlaps the encrypted payload";
		for (unsigned j = i + 1; j < QCOW2_LUKS_SLOTS; j++)
			if (slots_overlap(start, len, h->slots[j].key_offset,
					  slot_sectors(h, &h->slots[j])))
				return "two LUKS key slots overlap";
	}
	return NULL;
}

/* The cipher, its mode and IV generator, and the hash: parse_header(). */
static const char *names_unopenable(const struct qcow2_luks_header *h)
{
	static const char *const modes[] = { "ecb", "cbc", "xts", "ctr" };
	static const char *const ivgens[] = { "plain", "plain64", "essiv" };
	char mode[sizeof(h->cipher_mode)];
	char *ivgen, *ivhash;
	unsigned key = h->key_bytes;
	int m, hash = -1;

	memcpy(mode, h->cipher_mode, sizeof(mode));
	ivgen = strchr(mode, '-');
	if (!ivgen)
		return "the LUKS cipher mode has no IV generator";
	*ivgen++ = '\0';
	ivhash = strchr(ivgen, ':');
	if (ivhash) {
		*ivhash++ = '\0';
		hash = LOOKUP(ivhash, hashes);
		if (hash < 0)
			return "the LUKS IV generator's hash is not supported";
	}
	m = LOOKUP(mode, modes);
	if (m < 0)
		return "the LUKS cipher mode is not supported";
	if (m == 2)	/* xts: two keys */
		key /= 2;
	if (!cipher_key(h->cipher_name, key))
		return "the LUKS cipher (or its key size) is not supported";
	if (LOOKUP(h->hash_spec, hashes) < 0)
		return "the LUKS hash is not supported";
	switch (LOOKUP(ivgen, ivgens)) {
	case -1:
		return "the LUKS IV generator is not supported";
	case 2:		/* essiv: a cipher keyed by the hash's digest */
		if (hash < 0)
			return "the LUKS essiv IV generator names no hash";
		if (!cipher_key(h->cipher_name, digest_bytes[hash]))
			return "the LUKS cipher is not supported with essiv and its hash";
		break;
	}
	return NULL;
}

const char *q2e_qemu_luks_refusal(const struct q2e_image *img)
{
	const struct qcow2_crypto_ext *x = &img->crypto_ext;
	const char *why;

	if (img->hdr.crypt_method != QCOW2_CRYPT_LUKS || !img->has_crypto_ext)
		return NULL;	/* qemu_rules.c says why, if it matters */
	if (x->length < QCOW2_LUKS_HEADER_SIZE)
		return "the LUKS header is longer than its encryption area";
	if (qemu_unreadable(x->offset, QCOW2_LUKS_HEADER_SIZE))
		return "the LUKS header cannot be read";
	if (!img->has_luks)
		return x->length > Q2E_MAX_CRYPTO_AREA
			       ? NULL	/* not read: cannot tell */
			       : "the encryption area does not start with a LUKS header";
	if (img->luks.version != 1)
		return "the LUKS version is not 1";
	if (!img->luks.mk_digest_iterations)
		return "the LUKS master key digest has no iterations";
	why = slots_unopenable(&img->luks);
	return why ? why : names_unopenable(&img->luks);
}

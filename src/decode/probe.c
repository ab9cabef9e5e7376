/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Which format QEMU 7.2 takes a file for, from its first bytes: the probe
 * each format driver makes (bdrv_probe_all(), the highest score wins, raw
 * scores 1), over the first 2,048 bytes with zeros past the file's end
 * (BLOCK_PROBE_BUF_SIZE).  QEMU probes a backing file whose format the
 * image does not name.  Two drivers can score 100 for one file (vdi's
 * magic is at 64, the others' at 0): qemu-img takes qed and parallels
 * before vdi, and vdi before the rest (tried pair by pair with qemu-img
 * info of Debian's 7.2).
 *
 *   format     bytes                                          score
 *   qcow2      0: be32 0x514649fb "QFI\xfb", 4: be32 >= 2       100
 *              (104 bytes at least, sizeof(QCowHeader): always so
 *              in 7.2, which pads the 2,048 bytes with zeros)
 *   qcow       0: "QFI\xfb", 4: be32 1                          100
 *   qed        0: "QED\0" (64 bytes at least)                   100
 *   vdi        64: le32 0xbeda107f (512 bytes at least)         100
 *   vmdk       0: "COWD" or "KDMV", or a text descriptor whose  100
 *              first line not a comment or blank is version=1..3
 *   vpc        0: "conectix"                                    100
 *   vhdx       0: "vhdxfile"                                    100
 *   parallels  0: "WithoutFreeSpace" or "WithouFreSpacExt",     100
 *              16: le32 2 (64 bytes at least)
 *   bochs      0: "Bochs Virtual HD Image", 32: "Redolog",      100
 *              48: "Growing", 64: le32 0x20000 or 0x10000
 *   luks       0: "LUKS\xba\xbe", 6: be16 1                     100
 *   cloop      0: its shell script header                        2
 *   dmg        a name ending in ".dmg"                           2
 *   raw        anything                                          1
 */
#include <string.h>

#include "qcow2elf/qcow2.h"

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

/* Whether the NUL-terminated S, its NUL too, is at P. */
static bool cstr_at(const uint8_t *p, const char *s)
{
	return memcmp(p, s, strlen(s) + 1) == 0;
}

/* vmdk_probe()'s text descriptor: comments and blank lines, then
 * "version=N" with N 1 to 3. */
static bool vmdk_descriptor(const uint8_t *buf, size_t len)
{
	const uint8_t *p = buf, *end = buf + len;

	while (p < end) {
		if (*p == '#') {
			while (p < end && *p != '\n')
				p++;
			if (p < end)
				p++;
			continue;
		}
		if (*p == ' ') {
			while (p < end && *p == ' ')
				p++;
			if (p < end && *p == '\r')
				p++;
			if (p == end || *p != '\n')
				return false;
			p++;
			continue;
		}
		for (char v = '1'; v <= '3'; v++) {
			char lf[] = "version=X\n", crlf[] = "version=X\r\n";

			lf[8] = crlf[8] = v;
			if ((size_t)(end - p) >= strlen(lf) &&
			    memcmp(p, lf, strlen(lf)) == 0)
				return true;
			if ((size_t)(end - p) >= strlen(crlf) &&
			    memcmp(p, crlf, strlen(crlf)) == 0)
				return true;
		}
		return false;
	}
	return false;
}

static const char cloop_magic[] =
	"#!/bin/sh\n#V2.0 Format\n"
	"modprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n";

int qcow2_probe_score(const char *fmt, const uint8_t *buf, size_t len,
		      const char *filename)
{
	size_t n = filename ? strlen(filename) : 0;

	if (strcmp(fmt, "qcow2") == 0)
		return len >= 104 && qcow2_be32(buf) == QCOW2_MAGIC &&
		       qcow2_be32(buf + 4) >= 2 ? 100 : 0;
	if (strcmp(fmt, "qcow") == 0)
		return len >= 8 && qcow2_be32(buf) == QCOW2_MAGIC &&
		       qcow2_be32(buf + 4) == 1 ? 100 : 0;
	if (strcmp(fmt, "qed") == 0)
		return len >= 64 && memcmp(buf, "QED", 4) == 0 ? 100 : 0;
	if (strcmp(fmt, "vdi") == 0)
		return len >= 512 && le32(buf + 64) == 0xbeda107fU ? 100 : 0;
	if (strcmp(fmt, "vmdk") == 0) {
		if (len < 4)
			return 0;
		if (memcmp(buf, "COWD", 4) == 0 || memcmp(buf, "KDMV", 4) == 0)
			return 100;
		return vmdk_descriptor(buf, len) ? 100 : 0;
	}
	if (strcmp(fmt, "vpc") == 0)
		return len >= 8 && memcmp(buf, "conectix", 8) == 0 ? 100 : 0;
	if (strcmp(fmt, "vhdx") == 0)
		return len >= 8 && memcmp(buf, "vhdxfile", 8) == 0 ? 100 : 0;
	if (strcmp(fmt, "parallels") == 0)
		return len >= 64 &&
		       (memcmp(buf, "WithoutFreeSpace", 16) == 0 ||
			memcmp(buf, "WithouFreSpacExt", 16) == 0) &&
		       le32(buf + 16) == 2 ? 100 : 0;
	if (strcmp(fmt, "bochs") == 0)
		return len >= 512 && cstr_at(buf, "Bochs Virtual HD Image") &&
		       cstr_at(buf + 32, "Redolog") &&
		       cstr_at(buf + 48, "Growing") &&
		       (le32(buf + 64) == 0x20000 || le32(buf + 64) == 0x10000)
		       ? 100 : 0;
	if (strcmp(fmt, "luks") == 0)
		return len >= 8 && memcmp(buf, "LUKS\xba\xbe", 6) == 0 &&
		       qcow2_be16(buf + 6) == 1 ? 100 : 0;
	if (strcmp(fmt, "cloop") == 0)
		return len >= strlen(cloop_magic) &&
		       memcmp(buf, cloop_magic, strlen(cloop_magic)) == 0 ? 2 : 0;
	if (strcmp(fmt, "dmg") == 0)
		return n > 4 && strcmp(filename + n - 4, ".dmg") == 0 ? 2 : 0;
	if (strcmp(fmt, "raw") == 0)
		return 1;
	return -1;
}

const char *qcow2_probe_format(const uint8_t *buf, size_t len,
			       const char *filename)
{
	/* Where two score alike, the first here is qemu-img's (above);
	 * raw is the last resort. */
	static const char *const formats[] = {
		"qed", "parallels", "vdi", "qcow2", "qcow", "vmdk", "vpc",
		"vhdx", "bochs", "luks", "cloop", "dmg",
	};
	const char *best = "raw";
	int score = 1;

	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		int s = qcow2_probe_score(formats[i], buf, len, filename);

		if (s > score) {
			score = s;
			best = formats[i];
		}
	}
	return best;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target for hostile dumps: its input is always read as an ELF file,
 * whatever its first four bytes, so that no mutation leaves the dump's
 * byte source (src/source/elf_source.c) for the image's.  The seeds in
 * corpus-dump/ are dumps of the images of corpus/.  Everything else is
 * fuzz_image's (tests/fuzz/fuzz_commands.c): every command, and `restore`,
 * which only a dump can feed.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	if (size < 4)
		return 0;
	copy = malloc(size);
	if (!copy)
		abort();
	memcpy(copy, data, size);
	memcpy(copy, "\177ELF", 4);
	fuzz_input(copy, size);
	free(copy);
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target: an arbitrary file, as an image or a dump, through every
 * command (tests/fuzz/fuzz_commands.c says which, and how an input is cut
 * into the two files `diff` compares and a command line).
 *
 * Built with clang -fsanitize=fuzzer -DQ2E_LIBFUZZER (`make fuzz`) it is a
 * libFuzzer target; built without, tests/fuzz/fuzz_replay.c gives it a
 * main() that replays the committed corpus under limits (`make check`).
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_input(data, size);
	return 0;
}

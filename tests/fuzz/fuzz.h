/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the fuzz targets share (tests/fuzz/fuzz_commands.c): every command
 * run on an input held in memory, and, when not built for libFuzzer, the
 * replayer that runs each file under a time and a memory limit.
 */
#ifndef QCOW2ELF_FUZZ_H
#define QCOW2ELF_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * An input is up to three parts, cut at each FUZZ_SEPARATOR: the image
 * (or dump) every command runs on; a second one that `diff` compares it
 * with (without one, the first half of the first); and the arguments of
 * one command line, separated by NUL bytes or newlines, run by the CLI on
 * files named "image" and "other" that hold the two.
 */
#define FUZZ_SEPARATOR "\n--q2e-fuzz--\n"

/* Runs everything on DATA; the names the targets' entry points share. */
void fuzz_input(const uint8_t *data, size_t size);
/* Whether an allocation failed since the last call (the replayer's limit). */
bool fuzz_ran_out_of_memory(void);

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the emitters (dump's ELF file, restore's image) share: emit.c. */
#ifndef Q2E_EMIT_EMIT_H
#define Q2E_EMIT_EMIT_H

#include "qcow2elf/error.h"
#include "qcow2elf/model.h"
#include "qcow2elf/outfile.h"

/*
 * Opens the output file at PATH for what is made of IMG, refusing a PATH
 * that names a file IMG reads: it would be replaced by its own output.
 */
int q2e_emit_open(const struct q2e_image *img, struct q2e_outfile *out,
		  const char *path, struct q2e_error *err);

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Views: each reads the model and renders one command's result. */
#ifndef QCOW2ELF_VIEWS_H
#define QCOW2ELF_VIEWS_H

#include <stdio.h>

#include "qcow2elf/error.h"
#include "qcow2elf/model.h"
#include "qcow2elf/output.h"

/* `info`: header, extensions, snapshots, bitmaps, regions, problems. */
int q2e_view_info(struct q2e_image *img, struct q2e_out *o,
		  struct q2e_error *err);

/*
 * `map`: guest ranges and where they live.  JSON is byte-for-byte what
 * `qemu-img map --output=json` prints; human output is a table of every
 * range.  Fails with Q2E_EOUTPUT if FP could not be written.
 */
int q2e_view_map(struct q2e_image *img, FILE *fp, enum q2e_format format,
		 struct q2e_error *err);

#endif

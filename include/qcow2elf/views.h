/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Views: each reads the model and renders one command's result through the
 * output backends, all with one signature.  Write errors are the caller's
 * to collect, from q2e_out_finish().
 */
#ifndef QCOW2ELF_VIEWS_H
#define QCOW2ELF_VIEWS_H

#include "qcow2elf/error.h"
#include "qcow2elf/model.h"
#include "qcow2elf/output.h"

/* `info`: header, extensions, snapshots, bitmaps, regions, problems. */
int q2e_view_info(struct q2e_image *img, struct q2e_out *o,
		  struct q2e_error *err);
/* `info --backing-chain`: the same for IMG and each backing file, in
 * order (a raw one: its name, format and sizes), as qemu-img info
 * --backing-chain lists them: an array in JSON. */
int q2e_view_info_chain(struct q2e_image *img, struct q2e_out *o,
			struct q2e_error *err);

/*
 * `map`: guest ranges and where they live, streamed range by range.  JSON
 * is byte for byte what `qemu-img map --output=json` prints (the view sets
 * the Q2E_JSON_LINES style); human output is a table of every range.
 */
int q2e_view_map(struct q2e_image *img, struct q2e_out *o,
		 struct q2e_error *err);
/* The same from guest offset START for at most MAX_LENGTH bytes, as
 * qemu-img map --start-offset --max-length: from START to the virtual
 * size, or one empty range at START where that holds nothing. */
int q2e_view_map_range(struct q2e_image *img, struct q2e_out *o,
		       uint64_t start, uint64_t max_length,
		       struct q2e_error *err);

#endif

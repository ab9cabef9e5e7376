/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Internal to the dump emitter: small spans read ahead, many at a time,
 * for a thread that copies what the page cache holds (span_batch.c).
 */
#ifndef Q2E_EMIT_SPAN_BATCH_H
#define Q2E_EMIT_SPAN_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "qcow2elf/model.h"
#include "spans.h"

struct q2e_span_batch;

/* NULL without memory: the spans are then read one at a time. */
struct q2e_span_batch *q2e_span_batch_new(struct q2e_image *img);
void q2e_span_batch_free(struct q2e_span_batch *b);

/*
 * The LEN bytes of the image at AT into P, from the reads made ahead: 1
 * when they were read, -1 when the page cache lacked some of them, 0 when
 * they were not read ahead (and always for an SP larger than 8 KiB, read
 * alone).  At 0, BY's spans from SP on are read ahead first, as far as
 * they are small, and AT is looked for again.
 */
int q2e_span_batch_take(struct q2e_span_batch *b, const struct q2e_by_addr *by,
			const struct q2e_span *sp, uint64_t at, uint8_t *p,
			size_t len);
#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `dump --redact`: what a dump attached to a bug report leaves out, as
 * patches over the image's bytes that the region copier applies.  The
 * layout is kept: every patch replaces bytes in place, with zeros or with
 * a placeholder of the same length.
 */
#ifndef Q2E_EMIT_REDACT_H
#define Q2E_EMIT_REDACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qcow2elf/error.h"
#include "qcow2elf/model.h"

/* What a redacted dump's note lists as removed (dumpfmt.h). */
#define Q2E_REDACTED_WHAT \
	"luks-key-material,luks-digests,snapshot-names,bitmap-names,file-names,bitmap-data"

struct q2e_patch {
	uint64_t offset;	/* in the image */
	uint64_t length;
	char *bytes;		/* LENGTH bytes, or NULL for zeros */
};

struct q2e_redaction {
	struct q2e_patch *patches;	/* sorted by offset */
	size_t npatches;
	uint64_t max_length;	/* of a patch: how far back one reaches */
	char *image_name;	/* the image's name, as a placeholder */
};

/* The patches for IMG: names, LUKS secrets, bitmap contents. */
int q2e_redaction_plan(const struct q2e_image *img, struct q2e_redaction *r,
		       struct q2e_error *err);
/* Applies R to BUF, which holds the image's bytes [OFF, OFF + LEN). */
void q2e_redaction_apply(const struct q2e_redaction *r, uint64_t off,
			 uint8_t *buf, size_t len);
/* Whether R writes anything but zeros into the image's bytes [OFF, OFF +
 * LEN): zeros stay zeros under a patch of zeros. */
bool q2e_redaction_writes(const struct q2e_redaction *r, uint64_t off,
			  uint64_t len);
void q2e_redaction_free(struct q2e_redaction *r);

/*
 * A stable placeholder of exactly LEN bytes (no NUL) for the Nth name of
 * its kind: "STEM-N" padded with '_', or "SN" (S: STEM's first letter)
 * when LEN is short, or N in letters (base 52) when shorter still; the
 * placeholders of one length differ while N < 52^LEN.
 */
void q2e_placeholder(char *out, size_t len, const char *stem, size_t n);

#endif

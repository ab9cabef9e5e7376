/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Internal to the model: recording problems and regions during the walk. */
#ifndef QCOW2ELF_MODEL_WALK_H
#define QCOW2ELF_MODEL_WALK_H

#include "qcow2elf/model.h"
#include "source/source.h"

struct pending_region {
	struct q2e_region region;
	struct q2e_owner owner;
};

struct walk {
	struct q2e_image *img;
	struct q2e_error *err;
	struct pending_region *pending;
	size_t npending, cap;
};

int walk_problem(struct walk *w, enum q2e_severity sev, uint64_t offset,
		 const char *structure, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
int walk_region(struct walk *w, enum q2e_region_kind kind, uint64_t offset,
		uint64_t size, struct q2e_owner owner, uint32_t ext_magic);
/* Grows the first recorded region of KIND to SIZE bytes. */
int walk_extend_region(struct walk *w, enum q2e_region_kind kind,
		       uint64_t size);
int walk_finish_regions(struct walk *w);

#endif

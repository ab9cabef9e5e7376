/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared between the file and the dump byte sources. */
#ifndef QCOW2ELF_SOURCE_IMPL_H
#define QCOW2ELF_SOURCE_IMPL_H

#include "qcow2elf/source.h"

struct q2e_source_ops {
	int64_t (*pread)(struct q2e_source *src, void *buf, size_t len,
			 uint64_t off, const char *what, struct q2e_error *err);
	int (*extent)(struct q2e_source *src, uint64_t off, bool *is_data,
		      uint64_t *len, struct q2e_error *err);
	int (*data_extents)(struct q2e_source *src, struct q2e_extent **out,
			    size_t *n, struct q2e_error *err);
	void (*close)(struct q2e_source *src);
};

struct q2e_source {
	const struct q2e_source_ops *ops;
	enum q2e_source_kind kind;
	char *path;
	int fd;
	uint64_t size;
	uint64_t allocated;
	struct q2e_dump_meta meta;	/* dumps only */
	void *priv;
};

/* Takes over FD, which holds an ELF file, and reads it as a dump. */
int q2e_dump_source_init(struct q2e_source *src, struct q2e_error *err);

#endif

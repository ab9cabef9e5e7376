/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `restore`: a dump back to a sparse image file.  Only the model is read:
 * each region's bytes, streamed in chunks through
 * q2e_image_read_region_part(), are written at the region's offset, and
 * the file is cut to the image's original size.  Regions that overlap in a
 * damaged image are written in the model's order; their bytes came from the
 * same offsets of the same file, so they agree.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcow2elf/restore.h"
#include "emit.h"

#define CHUNK (1U << 20)

static int write_all(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int write_regions(struct q2e_image *img, int fd, const char *path,
			 struct q2e_restore_result *res, struct q2e_error *err)
{
	uint8_t *buf = malloc(CHUNK);
	int ret = 0;

	if (!buf)
		return q2e_error_set(err, Q2E_ENOMEM, "out of memory");
	for (size_t i = 0; i < img->nregions && !ret; i++) {
		const struct q2e_region *r = &img->regions[i];

		for (uint64_t pos = 0; pos < r->avail && !ret;) {
			size_t n = r->avail - pos < CHUNK ? (size_t)(r->avail - pos)
							  : CHUNK;

			ret = q2e_image_read_region_part(img, r, pos, buf, n, err);
			if (ret)
				break;
			if (write_all(fd, buf, n, r->offset + pos) < 0) {
				char sym[96];

				if (q2e_region_symbol(img, r, 0, sym, sizeof(sym)) < 0)
					snprintf(sym, sizeof(sym), "%s",
						 q2e_region_kind_name(r->kind));
				ret = q2e_error_set(err, Q2E_EOUTPUT,
						    "'%s': cannot write %s at 0x%llx: %s",
						    path, sym,
						    (unsigned long long)(r->offset + pos),
						    strerror(errno));
				break;
			}
			pos += n;
			res->bytes += n;
		}
		res->nregions += r->avail > 0;
	}
	free(buf);
	return ret;
}

int q2e_restore_write(struct q2e_image *img, const char *path,
		      const struct q2e_restore_options *opts,
		      struct q2e_restore_result *res, struct q2e_error *err)
{
	const struct q2e_dump_meta *dm = q2e_image_dump_meta(img);
	struct q2e_outfile out;
	struct stat st;
	int ret = 0;

	memset(res, 0, sizeof(*res));
	if (!dm)
		return q2e_error_set(err, Q2E_EUSAGE,
				     "'%s' is not a dump written by 'qcow2elf dump'",
				     img->path);
	if (dm->no_data)
		return q2e_error_set(err, Q2E_EUSAGE,
				     "'%s' was written with --no-data and holds no metadata bytes to restore",
				     img->path);
	if (!opts->force && lstat(path, &st) == 0)
		return q2e_error_set(err, Q2E_EOUTPUT,
				     "'%s' already exists; use --force to replace it",
				     path);
	ret = q2e_emit_open(img, &out, path, err);
	if (ret < 0)
		return ret;
	res->file_size = img->file_size;
	if (ftruncate(out.fd, (off_t)img->file_size) < 0)
		ret = q2e_error_set(err, Q2E_EOUTPUT, "'%s': cannot write: %s",
				    path, strerror(errno));
	if (!ret)
		ret = write_regions(img, out.fd, path, res, err);
	if (ret) {
		q2e_outfile_abort(&out);
		return ret;
	}
	return q2e_outfile_commit(&out, opts->force, err);
}


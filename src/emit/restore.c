/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `restore`: a dump back to a sparse image file.  Only the model is read:
 * each region's bytes, streamed in chunks through
 * q2e_image_read_region_part(), are written at the region's offset, and
 * the file is cut to the image's original size.  Regions that overlap in a
 * damaged image came from the same offsets of the same file, so they
 * agree: their bytes are written once.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcow2elf/restore.h"
#include "emit.h"

/*
 * QCOW2 entries hold host offsets in bits 9-55 (QEMU's L2E_OFFSET_MASK,
 * L1E_OFFSET_MASK, REFT_OFFSET_MASK): no image file QEMU writes or reads
 * is larger than 2^56 bytes.  A dump claiming more is damaged or forged,
 * and restoring it would make a file of that size.
 */
#define QCOW2_MAX_FILE_SIZE (1ULL << 56)

/*
 * At its own offset: the image's layout is the dump's address space.  The
 * regions come by offset, and each byte is written once: of a region that
 * overlaps those before it (256 snapshot L1 tables of 32 MiB at one
 * offset), only the rest.
 */
static int write_regions(struct q2e_image *img, int fd, const char *path,
			 struct q2e_restore_result *res, struct q2e_error *err)
{
	struct q2e_region_copier c;
	int ret = q2e_region_copier_init(&c, img, fd, path, err);
	uint64_t done = 0;	/* the image's bytes before it are written */

	/* The file was cut to its size: what is not written is a hole. */
	c.skip_zeros = true;
	for (size_t i = 0; i < img->nregions && ret == 0; i++) {
		const struct q2e_region *r = &img->regions[i];
		uint64_t from = done > r->offset ? done - r->offset : 0;

		if (from < r->avail)
			ret = q2e_region_copy(&c, r, from, r->offset);
		if (r->offset + r->avail > done)
			done = r->offset + r->avail;
		res->nregions += r->avail > 0;
	}
	res->bytes = c.bytes;
	q2e_region_copier_fini(&c);
	return ret;
}

/* What restoring IMG needs of the dump, whatever it is written to. */
static int check_restorable(struct q2e_image *img, struct q2e_error *err)
{
	const struct q2e_dump_meta *dm = q2e_image_dump_meta(img);

	if (!dm)
		return q2e_error_set(err, Q2E_EUSAGE,
				     "'%s' is not a dump written by 'qcow2elf dump'",
				     img->path);
	if (dm->no_data)
		return q2e_error_set(err, Q2E_EUSAGE,
				     "'%s' was written with --no-data and holds no metadata bytes to restore",
				     img->path);
	if (img->file_size > QCOW2_MAX_FILE_SIZE)
		return q2e_error_set(err, Q2E_ECORRUPT,
				     "'%s' claims an image file of %llu bytes, more than the 2^56 bytes a QCOW2 image can address; refusing to restore it",
				     img->path,
				     (unsigned long long)img->file_size);
	return 0;
}

/* The image's bytes into FD, cut to its size first, under NAME in messages. */
static int restore_to(struct q2e_image *img, int fd, const char *name,
		      struct q2e_restore_result *res, struct q2e_error *err)
{
	res->file_size = img->file_size;
	if (ftruncate(fd, (off_t)img->file_size) < 0)
		return q2e_error_set(err, Q2E_EOUTPUT,
				     "'%s': cannot make it the %llu bytes of the image file '%s' claims: %s",
				     name, (unsigned long long)img->file_size,
				     img->path, strerror(errno));
	return write_regions(img, fd, name, res, err);
}

int q2e_restore_write(struct q2e_image *img, const char *path,
		      const struct q2e_restore_options *opts,
		      struct q2e_restore_result *res, struct q2e_error *err)
{
	struct q2e_outfile out;
	struct stat st;
	int ret;

	memset(res, 0, sizeof(*res));
	ret = check_restorable(img, err);
	if (ret < 0)
		return ret;
	if (!opts->force && lstat(path, &st) == 0)
		return q2e_error_set(err, Q2E_EOUTPUT,
				     "'%s' already exists; use --force to replace it",
				     path);
	ret = q2e_emit_open(img, &out, path, err);
	if (ret < 0)
		return ret;
	ret = restore_to(img, out.fd, path, res, err);
	if (ret) {
		q2e_outfile_abort(&out);
		return ret;
	}
	return q2e_outfile_commit(&out, opts->force, err);
}

int q2e_restore_write_fd(struct q2e_image *img, int fd, const char *name,
			 struct q2e_restore_result *res, struct q2e_error *err)
{
	int ret;

	memset(res, 0, sizeof(*res));
	if (fd < 0)
		return q2e_error_set(err, Q2E_EUSAGE,
				     "'%s': no file descriptor", name);
	ret = check_restorable(img, err);
	if (ret < 0)
		return ret;
	/* Regions of zeros are skipped as holes: none of FD's old bytes may
	 * show through them. */
	if (ftruncate(fd, 0) < 0)
		return q2e_error_set(err, Q2E_EOUTPUT, "'%s': cannot write: %s",
				     name, strerror(errno));
	return restore_to(img, fd, name, res, err);
}

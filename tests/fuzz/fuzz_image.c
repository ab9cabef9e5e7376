/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target: an arbitrary file opened as an image, then `info`, `map`
 * and `check` rendered to /dev/null, as the command line would, and the
 * image dumped and the dump read back.  The dump must read like the image
 * (the same structures and problems, and no difference for `diff`): an
 * input where it does not aborts, as a crash would.
 *
 * Built with clang -fsanitize=fuzzer -DQ2E_LIBFUZZER it is a libFuzzer
 * target.  Built without, it has a main() that replays the files named on
 * the command line, or every file in the directories named, so that
 * `make check` runs the committed corpus (as util-linux's libblkid/src/fuzz.c).
 *
 * The input is read from memory (q2e_image_open_memory()), named as a file
 * in an empty private directory, so that a relative backing file name
 * resolves there rather than wherever the fuzzer happens to run.  Only the
 * dump is written to a file, in that directory.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcow2elf/check.h"
#include "qcow2elf/diff.h"
#include "qcow2elf/dump.h"
#include "qcow2elf/model.h"
#include "qcow2elf/output.h"
#include "qcow2elf/views.h"

/*
 * `map` walks the guest address space in steps of at most one cluster per
 * L2 entry, so its time grows with the virtual size, as qemu-img map's does.
 * Past this size the fuzzer would only find that out again as a timeout.
 */
#define FUZZ_MAX_MAP_SIZE (1ULL << 32)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char image_path[64];
static char dump_path[72];

/* Removes the temporary directory, also when libFuzzer exits. */
static void cleanup(void)
{
	if (image_path[0]) {
		unlink(dump_path);
		*strrchr(image_path, '/') = '\0';
		rmdir(image_path);
	}
}

static int setup(void)
{
	char dir[] = "/tmp/q2e-fuzz-XXXXXX";

	if (image_path[0])
		return 0;
	if (!mkdtemp(dir))
		return -1;
	snprintf(image_path, sizeof(image_path), "%s/image", dir);
	snprintf(dump_path, sizeof(dump_path), "%s/image.elf", dir);
	atexit(cleanup);
	return 0;
}

/* `check`, rendered both ways with the metadata report. */
static void fuzz_check(struct q2e_image *img, FILE *null)
{
	struct q2e_check_options opts = { 0 };
	struct q2e_check_result *res = NULL;
	struct q2e_error err = { 0 };

	if (q2e_check_run(img, &opts, &res, &err) < 0)
		return;
	q2e_check_render(res, img, null, Q2E_FORMAT_JSON, true, &err);
	q2e_check_render(res, img, null, Q2E_FORMAT_HUMAN, true, &err);
	q2e_check_exit_status(res);
	q2e_check_result_free(res);
}

/* `dump`, then the dump read back and diffed against the image. */
static void fuzz_dump(struct q2e_image *img, FILE *null)
{
	struct q2e_dump_options opts = { 0 };
	struct q2e_dump_result res;
	struct q2e_error err = { 0 };
	struct q2e_image *back;
	struct q2e_diff *d;
	struct q2e_out *o;

	if (q2e_dump_write(img, dump_path, &opts, &res, &err) < 0)
		return;
	q2e_error_clear(&err);
	if (q2e_image_open(dump_path, &back, &err) < 0)
		return;
	/* The oracle: a dump reads like the image it came from. */
	if (back->nsnapshots != img->nsnapshots ||
	    back->nbitmaps != img->nbitmaps || back->nexts != img->nexts ||
	    back->nregions != img->nregions ||
	    back->nproblems != img->nproblems) {
		fprintf(stderr, "fuzz_image: the dump reads unlike the image: "
			"snapshots %zu/%zu bitmaps %zu/%zu extensions %zu/%zu "
			"regions %zu/%zu problems %zu/%zu\n",
			img->nsnapshots, back->nsnapshots, img->nbitmaps,
			back->nbitmaps, img->nexts, back->nexts, img->nregions,
			back->nregions, img->nproblems, back->nproblems);
		abort();
	}
	if (q2e_diff_build(img, back, &d, &err) == 0) {
		o = q2e_out_new(null, Q2E_FORMAT_JSON);
		if (o) {
			q2e_diff_render(d, o, true);
			q2e_out_finish(o);
		}
		if (q2e_diff_count(d) != 0) {
			fprintf(stderr, "fuzz_image: diff of the image and its dump finds %llu differences\n",
				(unsigned long long)q2e_diff_count(d));
			abort();
		}
		q2e_diff_free(d);
	}
	q2e_image_close(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct q2e_error err = { 0 };
	struct q2e_image *img;
	struct q2e_out *o;
	FILE *null;

	if (setup() < 0)
		abort();	/* the harness, not the input, is broken */
	if (q2e_image_open_memory(image_path, data, size, &img, &err) < 0)
		return 0;
	null = fopen("/dev/null", "w");
	if (!null)
		abort();
	o = q2e_out_new(null, Q2E_FORMAT_JSON);
	if (o) {
		q2e_error_clear(&err);
		q2e_view_info(img, o, &err);
		q2e_out_finish(o);
	}
	o = q2e_out_new(null, Q2E_FORMAT_HUMAN);
	if (o) {
		q2e_error_clear(&err);
		q2e_view_info(img, o, &err);
		q2e_out_finish(o);
	}
	if (img->hdr.size <= FUZZ_MAX_MAP_SIZE &&
	    (o = q2e_out_new(null, Q2E_FORMAT_JSON)) != NULL) {
		q2e_error_clear(&err);
		q2e_view_map(img, o, &err);
		q2e_out_finish(o);
	}
	fuzz_check(img, null);
	fuzz_dump(img, null);
	fclose(null);
	q2e_image_close(img);
	return 0;
}

#ifndef Q2E_LIBFUZZER
static int replay_file(const char *path)
{
	struct stat st;
	uint8_t *buf;
	FILE *fp;
	size_t n;

	fp = fopen(path, "rb");
	if (!fp || fstat(fileno(fp), &st) < 0) {
		fprintf(stderr, "fuzz_image: cannot open '%s': %s\n", path,
			strerror(errno));
		if (fp)
			fclose(fp);
		return -1;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		fclose(fp);
		return -1;
	}
	n = fread(buf, 1, (size_t)st.st_size, fp);
	fclose(fp);
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

static int replay(const char *path, unsigned *count)
{
	struct stat st;
	struct dirent *d;
	DIR *dir;
	int ret = 0;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "fuzz_image: '%s': %s\n", path,
			strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return replay_file(path);
	}
	dir = opendir(path);
	if (!dir) {
		fprintf(stderr, "fuzz_image: cannot read '%s': %s\n", path,
			strerror(errno));
		return -1;
	}
	while ((d = readdir(dir))) {
		char full[4096];

		if (d->d_name[0] == '.')
			continue;
		snprintf(full, sizeof(full), "%s/%s", path, d->d_name);
		if (stat(full, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		(*count)++;
		if (replay_file(full) < 0)
			ret = -1;
	}
	closedir(dir);
	return ret;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	int ret = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++)
		if (replay(argv[i], &count) < 0)
			ret = 1;
	printf("fuzz_image: %u inputs replayed\n", count);
	return ret;
}
#endif

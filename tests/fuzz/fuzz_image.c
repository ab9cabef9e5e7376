/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target: an arbitrary file opened as an image, then `info` and `map`
 * rendered to /dev/null, as the command line would.
 *
 * Built with clang -fsanitize=fuzzer -DQ2E_LIBFUZZER it is a libFuzzer
 * target.  Built without, it has a main() that replays the files named on
 * the command line, or every file in the directories named, so that
 * `make check` runs the committed corpus (as util-linux's libblkid/src/fuzz.c).
 *
 * The input is written to a file in a private temporary directory: the
 * model opens paths, and a relative backing file name then resolves inside
 * that directory rather than wherever the fuzzer happens to run.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Removes the temporary directory, also when libFuzzer exits. */
static void cleanup(void)
{
	if (image_path[0]) {
		unlink(image_path);
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
	atexit(cleanup);
	return 0;
}

static int write_input(const uint8_t *data, size_t size)
{
	int fd = open(image_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		      0600);

	if (fd < 0)
		return -1;
	while (size) {
		ssize_t n = write(fd, data, size);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return -1;
		}
		data += n;
		size -= (size_t)n;
	}
	return close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct q2e_error err = { 0 };
	struct q2e_image *img;
	struct q2e_out *o;
	FILE *null;

	if (setup() < 0 || write_input(data, size) < 0)
		abort();	/* the harness, not the input, is broken */
	if (q2e_image_open(image_path, &img, &err) < 0)
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
	if (img->hdr.size <= FUZZ_MAX_MAP_SIZE) {
		q2e_error_clear(&err);
		q2e_view_map(img, null, Q2E_FORMAT_JSON, &err);
	}
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

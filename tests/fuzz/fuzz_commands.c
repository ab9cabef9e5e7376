/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Every command of qcow2elf on one input, as the fuzz targets run it
 * (tests/fuzz/fuzz_image.c, fuzz_dump.c): `info`, `map` and `check` in
 * either form, `check` with or without -M, `dump` with and without data,
 * the dump read back and diffed against the input (they must not differ:
 * an input where they do aborts, as a crash would), `diff` of the input's
 * two parts, `restore` of each dump (the image restored from the input's
 * dump must read like the input too), and the command line itself on
 * arguments taken from the input.
 *
 * The input is read from memory (q2e_image_open_memory()), the dump and
 * the restored image are written to memfds (q2e_dump_write_fd(),
 * q2e_restore_write_fd()) and the dump is read back from memory: no file is
 * written but by the command line, which runs in a private directory (on
 * /dev/shm where there is one) made for it and removed after it.
 *
 * Without -DQ2E_LIBFUZZER this file has a main() that replays the files
 * named on its command line (or every file in the directories named), each
 * in a child process under a time limit and a memory limit, so that
 * `make check` fails on an input that became slow or hungry, not only on
 * one that crashes (as util-linux's libblkid/src/fuzz.c, plus the limits).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "qcow2elf/check.h"
#include "qcow2elf/diff.h"
#include "qcow2elf/dump.h"
#include "qcow2elf/input.h"
#include "qcow2elf/model.h"
#include "qcow2elf/output.h"
#include "qcow2elf/restore.h"
#include "qcow2elf/views.h"
#include "cli/cli.h"
#include "emit/dwarf_reuse.h"
#include "fuzz.h"

#define MAX_ARGS 16

/*
 * The inputs held in memory are named as files of a directory that cannot
 * exist (a path under /dev/null): a backing or data file their header names
 * relative to them resolves to nothing, wherever the fuzzer runs.
 */
#define MEMORY_DIR "/dev/null/"
/* The command line's private directory, while it runs; and where it goes. */
static char dir[64];
static const char *dir_base;
static FILE *null_fp;
static int null_fd = -1, cwd_fd = -1;
/* Where the dump and the restored image are written: memory, reused. */
static int dump_fd = -1, restored_fd = -1;
static bool out_of_memory;
/*
 * Where running every variant of a command would cost much and cover little
 * more, the input chooses, by the bits of its first part's length xor its
 * last byte: bit 0 map's form; bit 1 dump --no-data (its DWARF is much of an
 * execution's time); bit 2 check's metadata report (-M); bit 3 diff -v in
 * human form; bit 4 info's form; bit 5 whether the restored image is read
 * back and compared (a fourth walk and a diff: a fifth of an execution);
 * bit 6 dump --redact; bit 7 check's form.  Rendering an image with
 * thousands of problems costs more than reading it.
 */
enum {
	VARIANT_MAP_HUMAN = 1,
	VARIANT_DUMP_NO_DATA = 2,
	VARIANT_CHECK_M = 4,
	VARIANT_DIFF_VERBOSE = 8,
	VARIANT_INFO_HUMAN = 16,
	VARIANT_RESTORE_CHECK = 32,
	VARIANT_DUMP_REDACT = 64,
	VARIANT_CHECK_HUMAN = 128,
};
static unsigned variant;

/*
 * An allocation that failed: under the replayer's RLIMIT_AS the library
 * reports it and goes on, so the input would pass the limit it hit.
 */
static void seen(const struct q2e_error *err)
{
	if (err->code == Q2E_ENOMEM)
		out_of_memory = true;
}

bool fuzz_ran_out_of_memory(void)
{
	bool ret = out_of_memory;

	out_of_memory = false;
	return ret;
}

/* A file of the command line's private directory. */
static const char *in_dir(const char *name)
{
	static char path[4][512];
	static unsigned next;
	char *p = path[next++ % 4];

	snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
	return p;
}

/* Empties the private directory, whatever the input left in it. */
static void clean_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			unlink(in_dir(e->d_name));
	closedir(d);
}

static void remove_dir(void)
{
	if (dir[0]) {
		clean_dir();
		rmdir(dir);
		dir[0] = '\0';
	}
}

/* The sanitizers' own (weak: absent in a plain build). */
void __sanitizer_set_report_fd(void *fd) __attribute__((weak));

static void setup(void)
{
	if (dir_base)
		return;
	/* The command line runs with standard error on /dev/null: a
	 * sanitizer's report made then must still be seen. */
	if (__sanitizer_set_report_fd)
		__sanitizer_set_report_fd(
			(void *)(intptr_t)fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC,
						3));
	dir_base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	cwd_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dump_fd = memfd_create("q2e-fuzz-dump", MFD_CLOEXEC);
	restored_fd = memfd_create("q2e-fuzz-restored", MFD_CLOEXEC);
	if (null_fd < 0 || cwd_fd < 0 || dump_fd < 0 ||
	    restored_fd < 0 ||
	    !(null_fp = fdopen(dup(null_fd), "w")))
		abort();	/* the harness, not the input, is broken */
	/* A write(2) per megabyte of output, not per 4 KB. */
	setvbuf(null_fp, NULL, _IOFBF, 1 << 20);
	/* The command line may exit(). */
	atexit(remove_dir);
	/* Most inputs have the types of the last: their DWARF is made once. */
	q2e_dwarf_reuse(true);
}

/* One view, rendered to /dev/null in FORMAT. */
static void view(struct q2e_image *img, enum q2e_format format,
		 int (*fn)(struct q2e_image *, struct q2e_out *,
			   struct q2e_error *))
{
	struct q2e_error err = { 0 };
	struct q2e_out *o = q2e_out_new(null_fp, format);

	if (!o)
		return;
	fn(img, o, &err);
	seen(&err);
	q2e_out_finish(o);
}

/*
 * `check`, rendered in one form, with or without the metadata report (the
 * input chooses both): on inputs with many problems, rendering was 40 % of
 * an execution, and each of the four renderings is reached by inputs of
 * its own.
 */
static void run_check(struct q2e_image *img)
{
	struct q2e_check_options opts = { 0 };
	struct q2e_check_result *res = NULL;
	struct q2e_error err = { 0 };

	if (q2e_check_run(img, &opts, &res, &err) < 0) {
		seen(&err);
		return;
	}
	/* qemu-img's lines, which the comparison's records make as they
	 * are written, then the rest */
	if (variant & VARIANT_CHECK_HUMAN)
		q2e_check_write_lines(res, null_fp, &err);
	/* -M reads each snapshot's L1 table again: out of memory there is
	 * the model's too */
	if (q2e_check_render(res, img, null_fp,
			     variant & VARIANT_CHECK_HUMAN ? Q2E_FORMAT_HUMAN
							   : Q2E_FORMAT_JSON,
			     variant & VARIANT_CHECK_M, &err) < 0)
		seen(&err);
	q2e_check_exit_status(res);
	q2e_check_result_free(res);
}

/* `diff A B` in both forms (JSON lists everything, with or without -v);
 * returns the number of differences. */
static uint64_t run_diff(struct q2e_image *a, struct q2e_image *b)
{
	static const enum q2e_format formats[] = { Q2E_FORMAT_HUMAN,
						   Q2E_FORMAT_JSON };
	struct q2e_error err = { 0 };
	struct q2e_diff *d;
	uint64_t n;

	if (q2e_diff_build(a, b, &d, &err) < 0) {
		seen(&err);
		return 0;
	}
	for (int i = 0; i < 2; i++) {
		struct q2e_out *o = q2e_out_new(null_fp, formats[i]);

		if (o) {
			if (q2e_diff_render(d, o, variant & VARIANT_DIFF_VERBOSE,
					    &err) < 0)
				seen(&err);
			q2e_out_finish(o);
		}
	}
	n = q2e_diff_count(d);
	q2e_diff_free(d);
	return n;
}

/* The oracle: a dump (or the image restored from it: WHAT) reads like the
 * image it came from. */
static void compare_with(struct q2e_image *img, struct q2e_image *back,
			 const char *what)
{
	uint64_t n;

	if (back->nsnapshots != img->nsnapshots ||
	    back->nbitmaps != img->nbitmaps || back->nexts != img->nexts ||
	    back->nregions != img->nregions ||
	    back->nproblems != img->nproblems) {
		fprintf(stderr, "fuzz: the %s reads unlike the image: "
			"snapshots %zu/%zu bitmaps %zu/%zu extensions %zu/%zu "
			"regions %zu/%zu problems %zu/%zu\n", what,
			img->nsnapshots, back->nsnapshots, img->nbitmaps,
			back->nbitmaps, img->nexts, back->nexts, img->nregions,
			back->nregions, img->nproblems, back->nproblems);
		abort();
	}
	n = run_diff(img, back);
	if (n != 0) {
		fprintf(stderr, "fuzz: diff of the image and the %s finds %llu differences\n",
			what, (unsigned long long)n);
		abort();
	}
}

/* The file in FD (a memfd), opened from memory as if read from PATH. */
static int open_fd(int fd, const char *path, struct q2e_image **back,
		   struct q2e_error *err)
{
	struct stat st;
	void *map;
	int ret;

	if (fstat(fd, &st) < 0)
		abort();
	if (st.st_size == 0)	/* mmap() refuses an empty mapping */
		return q2e_image_open_memory(path, "", 0, back, err);
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		abort();
	ret = q2e_image_open_memory(path, map, (size_t)st.st_size, back, err);
	munmap(map, (size_t)st.st_size);
	return ret;
}

/*
 * `restore` of IMG, if it is a dump with bytes.  When it is the dump of
 * ORIG, the restored image must read like ORIG: a metadata-only copy at the
 * same offsets.  It is read back from memory when no larger than
 * RESTORED_MAX (an image input is no larger than the fuzzer's -max_len; a
 * dump input may claim any size up to QEMU's limit).
 */
#define RESTORED_MAX (16u << 20)
static void run_restore(struct q2e_image *img, struct q2e_image *orig)
{
	const struct q2e_dump_meta *dm =
		orig ? q2e_image_dump_meta(orig) : NULL;
	struct q2e_restore_result res;
	struct q2e_error err = { 0 };
	struct q2e_image *restored;

	/* An image file cannot say that bytes are missing: a trimmed dump
	 * (objcopy -R) restores to an image where they read as zeros. */
	if (dm && dm->nmissing)
		orig = NULL;
	if (q2e_restore_write_fd(img, restored_fd, MEMORY_DIR "restored", &res,
				 &err) == 0 &&
	    orig && res.file_size <= RESTORED_MAX) {
		if (open_fd(restored_fd, MEMORY_DIR "restored", &restored,
			    &err) == 0) {
			compare_with(orig, restored, "restored image");
			q2e_image_close(restored);
		} else if (err.code != Q2E_ENOMEM) {
			fprintf(stderr, "fuzz: the restored image fails: %s\n",
				err.msg);
			abort();
		}
	}
	seen(&err);
	/* Its pages are freed, however large a file the dump claimed. */
	if (ftruncate(restored_fd, 0) < 0)
		abort();
}

/* `map --output=json` of IMG, in memory (free() it); NULL if map failed. */
static char *map_json(struct q2e_image *img, size_t *len)
{
	struct q2e_error err = { 0 };
	struct q2e_out *o;
	char *buf = NULL;
	FILE *fp = open_memstream(&buf, len);
	int ret = -1;

	if (!fp)
		abort();
	if ((o = q2e_out_new(fp, Q2E_FORMAT_JSON))) {
		ret = q2e_view_map(img, o, &err);
		if (q2e_out_finish(o) < 0)
			ret = -1;
	}
	seen(&err);
	fclose(fp);
	if (ret < 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Whether IMG reads another file (a backing or data file), which a
 * redacted dump names by a placeholder: its chain ends with it. */
static bool reads_other_files(const struct q2e_image *img)
{
	for (size_t i = 0; i < img->nexts; i++)
		if (img->exts[i].magic == QCOW2_EXT_DATA_FILE)
			return true;
	return img->backing_file != NULL;
}

/*
 * The oracle of a dump with --redact (src/emit/redact.c): its names, key
 * material and bitmap data replaced in place, it reads as the image does,
 * region for region, with the same problems, and maps the same clusters;
 * only names differ (diff shows them).
 */
static void compare_redacted(struct q2e_image *img, struct q2e_image *back)
{
	bool same = back->nsnapshots == img->nsnapshots &&
		    back->nbitmaps == img->nbitmaps &&
		    back->nexts == img->nexts &&
		    back->nregions == img->nregions &&
		    back->nproblems == img->nproblems;
	char *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;

	for (size_t i = 0; same && i < img->nregions; i++)
		same = back->regions[i].kind == img->regions[i].kind &&
		       back->regions[i].offset == img->regions[i].offset &&
		       back->regions[i].size == img->regions[i].size &&
		       back->regions[i].avail == img->regions[i].avail;
	if (!same) {
		fprintf(stderr, "fuzz: the redacted dump reads unlike the image: "
			"snapshots %zu/%zu bitmaps %zu/%zu extensions %zu/%zu "
			"regions %zu/%zu problems %zu/%zu\n", img->nsnapshots,
			back->nsnapshots, img->nbitmaps, back->nbitmaps,
			img->nexts, back->nexts, img->nregions, back->nregions,
			img->nproblems, back->nproblems);
		abort();
	}
	if (reads_other_files(img) || !(a = map_json(img, &alen)))
		return;
	b = map_json(back, &blen);
	same = b && alen == blen && memcmp(a, b, alen) == 0;
	free(a);
	free(b);
	/* Under the replayer's memory limit, map may fail on the second. */
	if (!same && !(b == NULL && out_of_memory)) {
		fprintf(stderr, "fuzz: the redacted dump maps other clusters\n");
		abort();
	}
}

/* `dump`, read back, diffed and restored; or with --no-data, read back;
 * or with --redact, read back, compared and restored. */
static void run_dump(struct q2e_image *img, bool no_data, bool redact)
{
	struct q2e_dump_options opts = { .no_data = no_data,
					  .redact = redact };
	const char *path = MEMORY_DIR "image.elf";
	struct q2e_dump_result res;
	struct q2e_error err = { 0 };
	struct q2e_image *back;

	if (ftruncate(dump_fd, 0) < 0 || lseek(dump_fd, 0, SEEK_SET) < 0)
		abort();
	if (q2e_dump_write_fd(img, dump_fd, path, &opts, &res, &err) == 0 &&
	    open_fd(dump_fd, path, &back, &err) == 0) {
		if (no_data) {
			view(back, Q2E_FORMAT_JSON, q2e_view_info);
		} else if (redact) {
			compare_redacted(img, back);
			run_restore(back, NULL);
		} else {
			compare_with(img, back, "dump");
			run_restore(back, variant & VARIANT_RESTORE_CHECK ? img
								  : NULL);
		}
		q2e_image_close(back);
	}
	seen(&err);
	if (ftruncate(dump_fd, 0) < 0)
		abort();
}

static int write_file(const char *path, const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t n = fd < 0 ? -1 : write(fd, data, size);

	if (fd >= 0)
		close(fd);
	return n == (ssize_t)size ? 0 : -1;
}

/*
 * The command line on ARGS (LEN bytes), in the private directory, where
 * "image" and "other" hold the input's two parts.  An argument with a '/'
 * could name any file on the machine, one `dump -o` would replace: such a
 * command line is not run.
 */
static void run_cli(const uint8_t *args, size_t len, const uint8_t *a,
		    size_t alen, const uint8_t *b, size_t blen)
{
	static const int sigs[] = { SIGHUP, SIGINT, SIGTERM, SIGQUIT };
	struct sigaction saved[4];
	char *argv[MAX_ARGS + 2], *copy = malloc(len + 1);
	int argc = 1, out, errfd;
	char *tok, *save;

	if (!copy)
		return;
	memcpy(copy, args, len);
	copy[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (copy[i] == '\0')
			copy[i] = '\n';
	if (memchr(copy, '/', len))
		goto out;
	/* Made for this command line only: a process killed elsewhere (a
	 * timeout, a crash) leaves nothing behind. */
	snprintf(dir, sizeof(dir), "%s/q2e-fuzz-XXXXXX", dir_base);
	if (!mkdtemp(dir))
		abort();
	if (write_file(in_dir("image"), a, alen) < 0 ||
	    write_file(in_dir("other"), b, blen) < 0)
		goto out;
	argv[0] = (char *)"qcow2elf";
	for (tok = strtok_r(copy, "\n", &save); tok && argc <= MAX_ARGS;
	     tok = strtok_r(NULL, "\n", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	/* getopt's state outlives the argument strings of the last run. */
	optind = 0;
	getopt(1, (char *[]){ (char *)"x", NULL }, "");
	for (int i = 0; i < 4; i++)
		sigaction(sigs[i], NULL, &saved[i]);
	fflush(stdout);
	fflush(stderr);
	out = dup(STDOUT_FILENO);
	errfd = dup(STDERR_FILENO);
	dup2(null_fd, STDOUT_FILENO);
	dup2(null_fd, STDERR_FILENO);
	if (fchdir(cwd_fd) == 0 && chdir(dir) == 0)
		cli_main(argc, argv);
	fflush(stdout);
	fflush(stderr);
	if (fchdir(cwd_fd) < 0)
		abort();
	dup2(out, STDOUT_FILENO);
	dup2(errfd, STDERR_FILENO);
	close(out);
	close(errfd);
	for (int i = 0; i < 4; i++)
		sigaction(sigs[i], &saved[i], NULL);
out:
	free(copy);
	/* With whatever the command line wrote in it, so that each input
	 * starts from the same state. */
	remove_dir();
}

/* The input cut at each separator: up to three parts. */
static size_t split(const uint8_t *data, size_t size, const uint8_t **part,
		    size_t *len)
{
	const size_t seplen = sizeof(FUZZ_SEPARATOR) - 1;
	size_t n = 0;

	while (n < 2) {
		const uint8_t *sep = memmem(data, size, FUZZ_SEPARATOR, seplen);

		if (!sep)
			break;
		part[n] = data;
		len[n++] = (size_t)(sep - data);
		size -= (size_t)(sep - data) + seplen;
		data = sep + seplen;
	}
	part[n] = data;
	len[n++] = size;
	return n;
}

void fuzz_input(const uint8_t *data, size_t size)
{
	const uint8_t *part[3];
	size_t len[3], nparts;
	struct q2e_error err = { 0 };
	struct q2e_image *img, *other;

	setup();
	nparts = split(data, size, part, len);
	variant = len[0] ^ (len[0] ? part[0][len[0] - 1] : 0);
	/* Without a second part, the first half of the first: an image cut
	 * short, which diff sees as one with many structures missing. */
	if (nparts == 1) {
		part[1] = part[0];
		len[1] = len[0] / 2;
	}
	if (q2e_image_open_memory(MEMORY_DIR "image", part[0], len[0], &img,
				  &err) == 0) {
		view(img, variant & VARIANT_INFO_HUMAN ? Q2E_FORMAT_HUMAN
						       : Q2E_FORMAT_JSON,
		     q2e_view_info);
		view(img, variant & VARIANT_MAP_HUMAN ? Q2E_FORMAT_HUMAN
						      : Q2E_FORMAT_JSON,
		     q2e_view_map);
		run_check(img);
		run_dump(img, variant & VARIANT_DUMP_NO_DATA,
			 variant & VARIANT_DUMP_REDACT);
		run_restore(img, NULL);
		if (q2e_image_open_memory(MEMORY_DIR "other", part[1], len[1],
					  &other, &err) == 0) {
			run_diff(img, other);
			q2e_image_close(other);
		}
		q2e_image_close(img);
	}
	seen(&err);	/* the failure to open either */
	if (nparts == 3)
		run_cli(part[2], len[2], part[0], len[0], part[1], len[1]);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `qcow2elf check --output=json-lines IMAGE...`: one compact JSON object
 * per image, for fleet scans (issue 12).  Each line is written with one
 * write() once it is complete, so that lines of checks run in parallel
 * into one pipe (xargs -P) never mix: a pipe takes a write of up to
 * PIPE_BUF bytes whole.
 *
 * A line has the image's name, the status `check IMAGE` would exit with,
 * and qemu-img check's counts, every one of them even when 0, so that jq
 * filters need no defaults; an image that could not be checked has
 * "error" instead of the counts, and one that was checked but that
 * qemu-img could not open (a backing or data file missing) has both.
 */
#include <stdio.h>
#include <stdlib.h>

#include "qcow2elf/check.h"
#include "qcow2elf/model.h"
#include "cli.h"

/* How bad each status is for a fleet: damage found first, then an image
 * whose state is unknown, then wasted space, then nothing to check. */
static int status_rank(int status)
{
	switch (status) {
	case Q2E_EXIT_CHECK_CLEAN:
		return 0;
	case Q2E_EXIT_CHECK_NOT_QCOW2:
		return 1;
	case Q2E_EXIT_CHECK_LEAKS:
		return 2;
	case Q2E_EXIT_CHECK_INCOMPLETE:
		return 3;
	default:		/* Q2E_EXIT_CHECK_CORRUPT */
		return 4;
	}
}

static void counts(struct q2e_out *o, const struct q2e_check_result *res)
{
	q2e_out_uint(o, "image-end-offset", res->image_end_offset);
	q2e_out_uint(o, "total-clusters", res->total_clusters);
	q2e_out_uint(o, "allocated-clusters", res->allocated_clusters);
	q2e_out_uint(o, "fragmented-clusters", res->fragmented_clusters);
	q2e_out_uint(o, "compressed-clusters", res->compressed_clusters);
	q2e_out_uint(o, "corruptions", res->corruptions);
	q2e_out_uint(o, "leaks", res->leaks);
	q2e_out_uint(o, "check-errors", res->check_errors);
	q2e_out_uint(o, "findings", res->nfindings);
}

/* Checks PATH, image I, and writes its line to FP; returns its exit status. */
static int check_one(int i, const char *path, FILE *fp)
{
	struct q2e_check_options opts = { 0 };
	struct q2e_check_result *res = NULL;
	struct q2e_error err = { 0 };
	struct q2e_image *img = NULL;
	const char *error = NULL;
	struct q2e_out *o;
	int status, ret = open_input("check", i, path, false, &img, &err);

	if (ret < 0) {
		status = err.code == Q2E_ENOTQCOW2 && !named_qcow2()
			 ? Q2E_EXIT_CHECK_NOT_QCOW2 : Q2E_EXIT_CHECK_INCOMPLETE;
		error = err.msg;
	} else if (q2e_check_run(img, &opts, &res, &err) < 0) {
		status = Q2E_EXIT_CHECK_INCOMPLETE;
		error = err.msg;
	} else {
		status = q2e_check_exit_status(res);
		error = res->incomplete ? res->incomplete : res->unopenable;
	}
	/* Said on stderr too, as `check IMAGE` says it: the line is for
	 * scripts, this for whoever reads the log. */
	if (error && !res)
		report(&err);
	else if (error)
		report_unchecked(path, res);
	o = q2e_out_new(fp, Q2E_FORMAT_JSON);
	if (o) {
		q2e_out_set_json_style(o, Q2E_JSON_COMPACT);
		q2e_out_object(o, NULL);
		q2e_out_str(o, "filename", path);
		q2e_out_int(o, "exit-status", status);
		if (res && !res->incomplete)
			counts(o, res);
		if (error)
			q2e_out_str(o, "error", error);
		q2e_out_end(o);
		q2e_out_finish(o);
	}
	q2e_check_result_free(res);
	q2e_image_close(img);
	return status;
}

int check_json_lines(char **images, size_t n)
{
	int worst = Q2E_EXIT_CHECK_CLEAN;

	for (size_t i = 0; i < n; i++) {
		char *line = NULL;
		size_t len = 0;
		FILE *mem = open_memstream(&line, &len);
		int status;

		if (!mem) {
			fprintf(stderr, "%s: out of memory\n", progname);
			return Q2E_EXIT_CHECK_INCOMPLETE;
		}
		status = check_one((int)i, images[i], mem);
		if (fclose(mem) != 0 || len == 0) {
			free(line);
			fprintf(stderr, "%s: out of memory\n", progname);
			return Q2E_EXIT_CHECK_INCOMPLETE;
		}
		if (fwrite(line, 1, len, stdout) != len || fflush(stdout) != 0) {
			free(line);
			fprintf(stderr, "%s: cannot write to standard output\n",
				progname);
			return Q2E_EXIT_CHECK_INCOMPLETE;
		}
		free(line);
		if (status_rank(status) > status_rank(worst))
			worst = status;
	}
	return worst;
}

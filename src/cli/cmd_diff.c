/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `qcow2elf diff OLD NEW [--output=human|json] [--verbose]`
 *
 * Exit status as cmp(1) and `qemu-img compare`: 0 the metadata is the
 * same, 1 it differs, 2 trouble (bad usage, an input that cannot be read).
 * This is the one command whose errors do not exit 1.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "qcow2elf/diff.h"
#include "qcow2elf/model.h"
#include "cli.h"

#define DIFF_SAME 0
#define DIFF_DIFFERENT 1
#define DIFF_TROUBLE 2

enum { OPT_OUTPUT = 256 };

int cmd_diff(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum q2e_format format = Q2E_FORMAT_HUMAN;
	struct q2e_image *a = NULL, *b = NULL;
	struct q2e_error err = { 0 };
	struct q2e_diff *d = NULL;
	bool verbose = false;
	struct q2e_out *o;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case OPT_OUTPUT:
			if (parse_format("diff", optarg, &format))
				return DIFF_TROUBLE;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			return print_command_help("diff") ? 2 : 0;
		default:
			usage_error("diff", "%s", "invalid option");
			return DIFF_TROUBLE;
		}
	}
	if (argc - optind != 2) {
		usage_error("diff", "%s", "expects two inputs: OLD NEW");
		return DIFF_TROUBLE;
	}
	if (q2e_image_open(argv[optind], &a, &err) < 0 ||
	    q2e_image_open(argv[optind + 1], &b, &err) < 0 ||
	    q2e_diff_build(a, b, &d, &err) < 0) {
		report(&err);
		ret = DIFF_TROUBLE;
		goto out;
	}
	o = q2e_out_new(stdout, format);
	if (!o) {
		q2e_error_set(&err, Q2E_ENOMEM, "out of memory");
		report(&err);
		ret = DIFF_TROUBLE;
		goto out;
	}
	q2e_diff_render(d, o, verbose);
	if (q2e_out_finish(o) < 0) {
		q2e_error_set(&err, Q2E_EOUTPUT, "cannot write to standard output");
		report(&err);
		ret = DIFF_TROUBLE;
		goto out;
	}
	ret = q2e_diff_count(d) ? DIFF_DIFFERENT : DIFF_SAME;
out:
	q2e_diff_free(d);
	if (b)
		q2e_image_close(b);
	if (a)
		q2e_image_close(a);
	return ret;
}

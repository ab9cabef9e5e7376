/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `qcow2elf diff OLD NEW [--output=human|json] [--verbose] [--color[=WHEN]]`
 *
 * Exit status as cmp(1) and `qemu-img compare`: 0 the metadata is the
 * same, 1 it differs, 2 trouble (bad usage, an input that cannot be read).
 * This is the one command whose errors do not exit 1.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcow2elf/diff.h"
#include "qcow2elf/exit.h"
#include "qcow2elf/model.h"
#include "cli.h"


enum { OPT_OUTPUT = 256, OPT_COLOR, OPT_NO_COLOR };

/*
 * --color=auto|always|never as git reads it: --color alone is always, and
 * auto colours a terminal, or git's pager when git runs us (git diff with
 * the driver in contrib/git), unless TERM is dumb.
 */
static int parse_color(const char *arg, bool *color)
{
	const char *pager = getenv("GIT_PAGER_IN_USE");
	const char *term = getenv("TERM");

	if (!arg || strcmp(arg, "always") == 0) {
		*color = true;
	} else if (strcmp(arg, "never") == 0) {
		*color = false;
	} else if (strcmp(arg, "auto") == 0) {
		*color = (isatty(STDOUT_FILENO) ||
			  (pager && (strcmp(pager, "true") == 0 ||
				     strcmp(pager, "1") == 0))) &&
			 !(term && strcmp(term, "dumb") == 0);
	} else {
		usage_error("diff", "--color must be 'auto', 'always' or 'never', not '%s'",
			    arg);
		return -1;
	}
	return 0;
}

int cmd_diff(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "verbose", no_argument, NULL, 'v' },
		{ "color", optional_argument, NULL, OPT_COLOR },
		{ "no-color", no_argument, NULL, OPT_NO_COLOR },
		{ "force-share", no_argument, NULL, 'U' },
		QEMU_IMAGE_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum q2e_format format = Q2E_FORMAT_HUMAN;
	struct q2e_image *a = NULL, *b = NULL;
	struct q2e_error err = { 0 };
	struct q2e_diff *d = NULL;
	bool verbose = false, color = false;
	struct q2e_out *o;
	int c, ret;

	optind = 1;
	if (parse_color("auto", &color) < 0)
		return Q2E_EXIT_DIFF_ERROR;
	while ((c = getopt_long(argc, argv, "f:F:vUh", opts, NULL)) != -1) {
		switch (c) {
		case 'f':	/* qemu-img compare's, of OLD and of NEW */
		case 'F':
			if (image_format("diff", optarg))
				return Q2E_EXIT_DIFF_ERROR;
			break;
		case OPT_OUTPUT:
			if (parse_format("diff", optarg, &format))
				return Q2E_EXIT_DIFF_ERROR;
			break;
		case 'v':
			verbose = true;
			break;
		case 'U':
			force_share("diff");
			break;
		case OPT_OBJECT:
		case OPT_IMAGE_OPTS:
			ret = qemu_option("diff", c, optarg);
			if (ret)
				return ret == OBJECT_HELP_SHOWN ? 0 : Q2E_EXIT_DIFF_ERROR;
			break;
		case OPT_COLOR:
			if (parse_color(optarg, &color) < 0)
				return Q2E_EXIT_DIFF_ERROR;
			break;
		case OPT_NO_COLOR:
			color = false;
			break;
		case 'h':
			return print_command_help("diff") ? Q2E_EXIT_DIFF_ERROR : Q2E_EXIT_DIFF_SAME;
		default:
			option_error("diff");
			return Q2E_EXIT_DIFF_ERROR;
		}
	}
	if (argc - optind != 2) {
		usage_error("diff", "%s", "expects two inputs: OLD NEW");
		return Q2E_EXIT_DIFF_ERROR;
	}
	if (image_args("diff", argv + optind, 2))
		return Q2E_EXIT_DIFF_ERROR;
	ret = open_input("diff", 0, argv[optind], false, &a, &err);
	if (ret == 0)
		ret = open_input("diff", 1, argv[optind + 1], false, &b, &err);
	if (ret < 0 || q2e_diff_build(a, b, &d, &err) < 0) {
		report(&err);
		ret = Q2E_EXIT_DIFF_ERROR;
		goto out;
	}
	o = q2e_out_new(stdout, format);
	if (!o) {
		q2e_error_set(&err, Q2E_ENOMEM, "out of memory");
		report(&err);
		ret = Q2E_EXIT_DIFF_ERROR;
		goto out;
	}
	q2e_out_set_color(o, color);
	if (q2e_diff_render(d, o, verbose, &err) < 0) {
		q2e_out_finish(o);
		report(&err);
		ret = Q2E_EXIT_DIFF_ERROR;
		goto out;
	}
	if (q2e_out_finish(o) < 0) {
		q2e_error_set(&err, Q2E_EOUTPUT, "cannot write to standard output");
		report(&err);
		ret = Q2E_EXIT_DIFF_ERROR;
		goto out;
	}
	ret = q2e_diff_count(d) ? Q2E_EXIT_DIFF_DIFFERENT : Q2E_EXIT_DIFF_SAME;
out:
	q2e_diff_free(d);
	if (b)
		q2e_image_close(b);
	if (a)
		q2e_image_close(a);
	return ret;
}

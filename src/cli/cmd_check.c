/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `qcow2elf check`: qemu-img check's counters and exit status, the
 * findings qemu-img has no eye for, and with -M the metadata report.
 * As with qemu-img, the per-cluster lines go to standard error, the
 * report to standard output.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/check.h"
#include "qcow2elf/exit.h"
#include "qcow2elf/model.h"
#include "cli.h"

enum { OPT_OUTPUT = 256 };

static const struct option check_options[] = {
	{ "output", required_argument, NULL, OPT_OUTPUT },
	{ "metadata", no_argument, NULL, 'M' },
	{ "progress", no_argument, NULL, 'p' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "force-share", no_argument, NULL, 'U' },
	QEMU_IMAGE_OPTIONS,
	{ "help", no_argument, NULL, 'h' },
	/* qemu-img check's, refused with a word on where to repair */
	{ "repair", optional_argument, NULL, 'r' },
	{ NULL, 0, NULL, 0 },
};

/* qemu-img check -T's cache modes (QEMU reads "off" as "none"). */
static bool cache_mode(const char *arg)
{
	static const char *const modes[] = { "none", "off", "writeback",
		"unsafe", "directsync", "writethrough" };

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(arg, modes[i]) == 0)
			return true;
	return false;
}

/* --output: human, json, or json-lines (*JSON_LINES, for fleet.c). */
static int parse_check_format(const char *arg, enum q2e_format *format,
			      bool *json_lines)
{
	*json_lines = strcmp(arg, "json-lines") == 0;
	if (*json_lines)
		return 0;
	if (strcmp(arg, "human") == 0 || strcmp(arg, "json") == 0)
		return parse_format("check", arg, format);
	return usage_error("check", "--output must be 'human', 'json' or 'json-lines', not '%s'",
			   arg);
}

/* Like qemu-img -p: "    (12.34/100%)" rewritten in place. */
static void show_progress(void *arg, uint64_t done, uint64_t total)
{
	(void)arg;
	fprintf(stderr, "    (%.2f/100%%)\r", total ? done * 100.0 / total : 100.0);
	fflush(stderr);
}

void report_unchecked(const char *path, const struct q2e_check_result *res)
{
	struct message m;
	FILE *fp = message_start(&m);

	if (res->incomplete) {
		fputc('\'', fp);
		q2e_fputs_escaped(fp, path);
		fputs("': check could not complete: ", fp);
		q2e_fputs_escaped(fp, res->incomplete);
	} else {
		fputs("qemu-img could not open '", fp);
		q2e_fputs_escaped(fp, path);
		fputs("': ", fp);
		q2e_fputs_escaped(fp, res->unopenable);
	}
	message_end(&m);
}

int cmd_check(int argc, char **argv)
{
	struct q2e_check_options opts = { 0 };
	enum q2e_format format = Q2E_FORMAT_HUMAN;
	struct q2e_check_result *res = NULL;
	struct q2e_error err = { 0 };
	bool with_viscera = false, with_progress = false, json_lines = false;
	bool quiet = false;
	const char *cache = NULL;	/* -T */
	struct q2e_image *img;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "f:MpqT:Uhr::", check_options, NULL)) != -1) {
		switch (c) {
		case 'f':
			ret = image_format("check", optarg);
			if (ret)
				return ret;
			break;
		case OPT_OUTPUT:
			ret = parse_check_format(optarg, &format, &json_lines);
			if (ret)
				return ret;
			break;
		case 'r':
			return usage_error("check", "%s",
					   "qcow2elf does not repair images: use 'qemu-img check -r leaks|all IMAGE'");
		case 'M':
			with_viscera = true;
			break;
		case 'p':
			with_progress = true;
			break;
		case 'q':	/* qemu-img check -q: no report, the same status */
			quiet = true;
			break;
		case 'T':	/* the last counts; checked once the images are */
			cache = optarg;
			break;
		case 'U':
			force_share("check");
			break;
		case OPT_OBJECT:
		case OPT_IMAGE_OPTS:
			ret = qemu_option("check", c, optarg);
			if (ret)
				return ret == OBJECT_HELP_SHOWN ? 0 : ret;
			break;
		case 'h':
			return print_command_help("check");
		default:
			return option_error("check");
		}
	}
	ret = image_args("check", argv + optind, argc - optind);
	if (ret)
		return ret;
	if (json_lines) {	/* fleet.c: one line per image */
		if (with_viscera || with_progress || quiet)
			return usage_error("check", "%s",
					   "--output=json-lines takes none of -M, -p and -q");
		if (optind >= argc)
			return usage_error("check", "%s", "expects one IMAGE or more");
		if (cache && !cache_mode(cache))
			return usage_error("check", "Invalid source cache option: %s",
					   cache);
		return check_json_lines(argv + optind, (size_t)(argc - optind));
	}
	if (optind != argc - 1)
		return usage_error("check", "%s", optind >= argc
						   ? "expects one IMAGE"
						   : "expects exactly one IMAGE");
	if (cache && !cache_mode(cache))	/* as qemu-img, after those */
		return usage_error("check", "Invalid source cache option: %s",
				   cache);
	ret = open_input("check", 0, argv[optind], false, &img, &err);
	if (ret < 0) {
		ret = report(&err);
		/* qemu-img takes it for raw, which has no check, unless
		 * -f qcow2 said otherwise. */
		return err.code == Q2E_ENOTQCOW2 && !named_qcow2()
		       ? Q2E_EXIT_CHECK_NOT_QCOW2 : ret;
	}
	if (with_progress)
		opts.progress = show_progress;
	ret = q2e_check_run(img, &opts, &res, &err);
	if (with_progress)
		fputs("    (100.00/100%)\n", stderr);
	if (ret < 0) {
		q2e_image_close(img);
		return report(&err);
	}
	ret = q2e_check_write_lines(res, stderr, &err);
	if (ret == 0 && !quiet)
		ret = q2e_check_render(res, img, stdout, format, with_viscera,
				       &err);
	if (ret == 0 && (res->incomplete || res->unopenable))
		report_unchecked(argv[optind], res);
	else if (ret == 0 && res->check_errors)	/* as qemu-img says it */
		fprintf(stderr, "%s: Check failed\n", progname);
	if (ret == 0)
		ret = q2e_check_exit_status(res);
	else
		ret = report(&err);
	q2e_check_result_free(res);
	q2e_image_close(img);
	return ret;
}

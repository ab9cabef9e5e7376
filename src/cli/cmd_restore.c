/* SPDX-License-Identifier: GPL-2.0-or-later */
/* `qcow2elf restore DUMP -o IMAGE [--force]` */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "qcow2elf/model.h"
#include "qcow2elf/outfile.h"
#include "qcow2elf/restore.h"
#include "cli.h"

/* Says why PATH cannot be restored from, before the model is built: a
 * --no-data dump would otherwise fail on its first read. */
static int check_input(const char *path, struct q2e_error *err)
{
	enum q2e_source_kind kind;
	bool no_data;

	if (q2e_input_describe(path, &kind, &no_data, err) < 0)
		return err->code;
	if (kind != Q2E_SOURCE_DUMP)
		return q2e_error_set(err, Q2E_EUSAGE,
				     "'%s' is not a dump written by 'qcow2elf dump'",
				     path);
	if (no_data)
		return q2e_error_set(err, Q2E_EUSAGE,
				     "'%s' was written with --no-data and holds no metadata bytes to restore",
				     path);
	return 0;
}

/* --output=json would be taken for --output-file=json, a file named json:
 * --output is an option of its own, and refused. */
enum { OPT_OUTPUT = 256 };

int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output-file", required_argument, NULL, 'o' },
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct q2e_restore_options ropts = { 0 };
	struct q2e_restore_result res;
	struct q2e_error err = { 0 };
	struct q2e_image *img;
	const char *out = NULL;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:fh", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case OPT_OUTPUT:
			return usage_error("restore", "%s",
					   "--output is not an option of restore, which writes a QCOW2 image to -o IMAGE (--output-file=IMAGE); --output=FORMAT is for info, map, check and diff");
		case 'f':
			ropts.force = true;
			break;
		case 'h':
			return print_command_help("restore");
		default:
			return option_error("restore");
		}
	}
	if (optind != argc - 1)
		return usage_error("restore", "%s", "expects exactly one DUMP");
	if (!out)
		return usage_error("restore", "%s", "needs an output file: -o IMAGE");
	if (!*out)
		return usage_error("restore", "%s", "-o names no file: give a name, or - for standard output");
	/* Standard output, or another descriptor by name (/dev/stdout), is
	 * no existing file that --force would replace: it is written in place. */
	if (q2e_outfile_descriptor(out) >= 0)
		ropts.force = true;
	if (check_input(argv[optind], &err) < 0)
		return report(&err);
	if (q2e_image_open(argv[optind], &img, &err) < 0)
		return report(&err);
	warn_problems(img);
	remove_output_on_signals();
	ret = q2e_restore_write(img, out, &ropts, &res, &err);
	q2e_image_close(img);
	return ret < 0 ? report(&err) : 0;
}

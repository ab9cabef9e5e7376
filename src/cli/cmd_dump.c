/* SPDX-License-Identifier: GPL-2.0-or-later */
/* `qcow2elf dump IMAGE -o OUT.elf [--no-data] [--no-gdb-script] [--redact]` */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2elf/dump.h"
#include "qcow2elf/model.h"
#include "cli.h"

/* --output=json would be taken for --output-file=json, a file named json:
 * --output is an option of its own, and refused. */
enum { OPT_OUTPUT = 256 };

int cmd_dump(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output-file", required_argument, NULL, 'o' },
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "no-data", no_argument, NULL, 'n' },
		{ "no-gdb-script", no_argument, NULL, 'g' },
		{ "redact", no_argument, NULL, 'r' },
		{ "force-share", no_argument, NULL, 'U' },
		QEMU_IMAGE_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct q2e_dump_options dopts = { 0 };
	struct q2e_dump_result res;
	struct q2e_error err = { 0 };
	struct q2e_image *img;
	const char *out = NULL;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:f:Uh", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'f':
			if (image_format("dump", optarg))
				return Q2E_EXIT_USAGE;
			break;
		case OPT_OUTPUT:
			return usage_error("dump", "%s",
					   "--output is not an option of dump, which writes ELF to -o FILE (--output-file=FILE); --output=FORMAT is for info, map, check and diff");
		case 'n':
			dopts.no_data = true;
			break;
		case 'g':
			dopts.no_gdb_script = true;
			break;
		case 'r':
			dopts.redact = true;
			break;
		case 'U':
			force_share("dump");
			break;
		case OPT_OBJECT:
		case OPT_IMAGE_OPTS:
			ret = qemu_option("dump", c, optarg);
			if (ret)
				return ret == OBJECT_HELP_SHOWN ? 0 : Q2E_EXIT_USAGE;
			break;
		case 'h':
			return print_command_help("dump");
		default:
			return option_error("dump");
		}
	}
	if (optind != argc - 1)
		return usage_error("dump", "%s", "expects exactly one IMAGE");
	if (!out)
		return usage_error("dump", "%s", "needs an output file: -o OUT.elf");
	if (!*out)
		return usage_error("dump", "%s", "-o names no file: give a name, or - for standard output");
	if (image_args("dump", argv + optind, 1))
		return Q2E_EXIT_USAGE;
	ret = open_input("dump", 0, argv[optind], false, &img, &err);
	if (ret < 0)
		return report(&err);
	warn_problems(img);
	remove_output_on_signals();
	if (q2e_dump_write(img, out, &dopts, &res, &err) < 0) {
		q2e_image_close(img);
		return report(&err);
	}
	q2e_image_close(img);
	return 0;
}

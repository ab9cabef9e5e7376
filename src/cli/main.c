/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2elf: the command line.  A table of subcommands, each parsing its own
 * options with getopt_long; the library does the work and returns errors,
 * and only this file prints them and chooses the exit status.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcow2elf/exit.h"
#include "qcow2elf/model.h"
#include "qcow2elf/outfile.h"
#include "qcow2elf/output.h"
#include "qcow2elf/views.h"
#include "cli.h"

#ifndef Q2E_VERSION
#define Q2E_VERSION "unknown"
#endif

const char *progname = "qcow2elf";

FILE *message_start(struct message *m)
{
	m->buf = NULL;
	m->len = 0;
	m->fp = open_memstream(&m->buf, &m->len);
	if (!m->fp)
		m->fp = stderr;		/* out of memory: in pieces, then */
	fprintf(m->fp, "%s: ", progname);
	return m->fp;
}

void message_end(struct message *m)
{
	const char *p;
	size_t left;

	fputc('\n', m->fp);
	if (m->fp == stderr || fclose(m->fp) != 0) {
		free(m->buf);
		return;
	}
	for (p = m->buf, left = m->len; left;) {
		ssize_t n = write(STDERR_FILENO, p, left);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;		/* nowhere left to say so */
		p += n;
		left -= (size_t)n;
	}
	free(m->buf);
}

int usage_error(const char *cmd, const char *fmt, const char *arg)
{
	struct message m;
	char msg[1024];
	FILE *fp;

	/* ARG is the user's (a file name, say), and may hold control bytes. */
	snprintf(msg, sizeof(msg), fmt, arg);
	fp = message_start(&m);
	if (cmd)
		fprintf(fp, "%s: ", cmd);
	q2e_fputs_escaped(fp, msg);
	fprintf(fp, "\nTry '%s%s%s --help' for more information.", progname,
		cmd ? " " : "", cmd ? cmd : "");
	message_end(&m);
	return Q2E_EXIT_USAGE;
}

int option_error(const char *cmd)
{
	/* getopt_long said which option, as "qcow2elf: CMD: ..." (cli_main()
	 * names the command so). */
	fprintf(stderr, "Try '%s %s --help' for more information.\n", progname,
		cmd);
	return Q2E_EXIT_USAGE;
}

/*
 * Escaped here, where the message meets the terminal, rather than where
 * the library formats it: the library keeps the exact bytes of the names
 * it quotes (a JSON report carries them, escaped as JSON escapes them),
 * and a message is escaped once, whoever formatted it.
 */
int report(const struct q2e_error *err)
{
	struct message m;

	q2e_fputs_escaped(message_start(&m),
			  err->msg[0] ? err->msg : "unknown error");
	message_end(&m);
	return Q2E_EXIT_ERROR;
}

void warn_problems(const struct q2e_image *img)
{
	for (size_t i = 0; i < img->nproblems; i++) {
		struct message m;
		FILE *fp;

		if (img->problems[i].severity != Q2E_SEV_ERROR)
			continue;
		fp = message_start(&m);
		fputs("warning: '", fp);
		q2e_fputs_escaped(fp, img->path);
		fputs("': ", fp);
		q2e_fputs_escaped(fp, img->problems[i].message);
		message_end(&m);
	}
}

/*
 * What qemu-img says on standard error as it opens IMG, before its own
 * output (qcow2_read_extensions()): a bitmaps extension whose autoclear
 * bit a program without bitmap support cleared.  QEMU's words, after the
 * file's name; its second line ends in a newline here.
 */
static void warn_as_qemu_opens(const struct q2e_image *img, void *arg)
{
	struct message m;
	FILE *fp;

	(void)arg;
	if (!img->bitmaps_ignored)
		return;
	fp = message_start(&m);
	fputs("warning: '", fp);
	q2e_fputs_escaped(fp, img->path);
	fputs(img->hdr.version < 3
	      ? "': This qcow2 v2 image contains bitmaps, but they may have been modified by a program without persistent bitmap support; so now they must all be considered inconsistent\n"
	      : "': a program lacking bitmap support modified this file, so all bitmaps are now considered inconsistent\n",
	      fp);
	fputs("Some clusters may be leaked, run 'qemu-img check -r' on the image file to fix.",
	      fp);
	message_end(&m);
}

/* Whether CMD stands for a qemu-img command: info, map, check, and diff
 * for compare. */
static bool says_as_qemu_img(const char *cmd)
{
	return strcmp(cmd, "dump") != 0 && strcmp(cmd, "restore") != 0;
}

/* Whether CMD reads data, for QEMU's locks: info, as qemu-img info, not. */
static bool reads_data(const char *cmd)
{
	return strcmp(cmd, "info") != 0;
}

static bool share_all;		/* -U */

void force_share(const char *cmd)
{
	share_all = true;
	q2e_image_locking(true, reads_data(cmd));
}

bool forced_share(void)
{
	return share_all;
}

void image_locking(const char *cmd, bool share)
{
	q2e_image_locking(share_all || share, reads_data(cmd));
}

static bool format_named;

int image_format(const char *cmd, const char *arg)
{
	if (image_opts())
		return usage_error(cmd, "%s",
				   "--image-opts and -f are mutually exclusive, as in qemu-img");
	if (strcmp(arg, "qcow2") != 0)
		return usage_error(cmd, "reads qcow2 images and their dumps only, not the format '%s'",
				   arg);
	format_named = true;
	return 0;
}

bool named_qcow2(void)
{
	return format_named || image_opts_qcow2();
}

int parse_format(const char *cmd, const char *arg, enum q2e_format *f)
{
	if (strcmp(arg, "human") == 0)
		*f = Q2E_FORMAT_HUMAN;
	else if (strcmp(arg, "json") == 0)
		*f = Q2E_FORMAT_JSON;
	else
		return usage_error(cmd, "--output must be 'human' or 'json', not '%s'",
				   arg);
	return 0;
}

/* Options every subcommand that prints a report understands. */
enum {
	OPT_OUTPUT = 256, OPT_HELP, OPT_BACKING_CHAIN, OPT_START_OFFSET,
	OPT_MAX_LENGTH
};

static const struct option report_options[] = {
	{ "output", required_argument, NULL, OPT_OUTPUT },
	{ "backing-chain", no_argument, NULL, OPT_BACKING_CHAIN },
	{ "start-offset", required_argument, NULL, OPT_START_OFFSET },
	{ "max-length", required_argument, NULL, OPT_MAX_LENGTH },
	{ "force-share", no_argument, NULL, 'U' },
	QEMU_IMAGE_OPTIONS,
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* map's window: --start-offset and --max-length, as qemu-img map's. */
static uint64_t map_start, map_max_length;

/* --start-offset or --max-length of map: a size as qemu-img reads it. */
static int map_window(const char *cmd, const char *opt, const char *arg,
		      uint64_t *v)
{
	if (strcmp(cmd, "map") != 0)
		return usage_error(cmd, "--%s is an option of map", opt);
	if (parse_size(arg, v) < 0)
		return usage_error(cmd, strcmp(opt, "start-offset") == 0
			? "--start-offset: '%s' is no offset from 0 to 2^63 - 1 (bytes, or with a k, M, G, T, P or E suffix)"
			: "--max-length: '%s' is no length from 0 to 2^63 - 1 (bytes, or with a k, M, G, T, P or E suffix)",
			arg);
	return 0;
}

/* Parses [--output=FMT] [-f qcow2] [-U] [--object SPEC] [--image-opts]
 * IMAGE for `info` and `map`, info's --backing-chain into *CHAIN (map's is
 * NULL), and map's window. */
static int parse_report_args(const char *cmd, int argc, char **argv,
			     enum q2e_format *format, bool *chain,
			     const char **image)
{
	int c, ret;

	*format = Q2E_FORMAT_HUMAN;
	map_start = 0;
	map_max_length = UINT64_MAX;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:Uh", report_options, NULL)) != -1) {
		ret = 0;
		switch (c) {
		case OPT_OUTPUT:
			ret = parse_format(cmd, optarg, format);
			break;
		case 'f':
			ret = image_format(cmd, optarg);
			break;
		case OPT_START_OFFSET:
			ret = map_window(cmd, "start-offset", optarg, &map_start);
			break;
		case OPT_MAX_LENGTH:
			ret = map_window(cmd, "max-length", optarg,
					 &map_max_length);
			break;
		case OPT_BACKING_CHAIN:
			if (chain)
				*chain = true;
			else
				ret = usage_error(cmd, "%s",
						  "--backing-chain is an option of info");
			break;
		case 'U':
			force_share(cmd);
			break;
		case OPT_OBJECT:
		case OPT_IMAGE_OPTS:
			ret = qemu_option(cmd, c, optarg);
			break;
		case 'h':
			/* *image stays NULL: the caller stops there. */
			return print_command_help(cmd);
		default:
			return option_error(cmd);
		}
		if (ret)	/* after --object help, *image stays NULL */
			return ret == OBJECT_HELP_SHOWN ? 0 : ret;
	}
	if (optind != argc - 1)
		return usage_error(cmd, "%s", optind >= argc
						  ? "expects one IMAGE"
						  : "expects exactly one IMAGE");
	ret = image_args(cmd, argv + optind, 1);
	*image = argv[optind];
	return ret;
}

typedef int view_fn(struct q2e_image *, struct q2e_out *, struct q2e_error *);

/* `info` and `map`: open IMAGE, render VIEW (CHAIN_VIEW with
 * --backing-chain, where the command has one) to standard output. */
static int run_view(const char *cmd, int argc, char **argv, view_fn *view,
		    view_fn *chain_view)
{
	struct q2e_error err = { 0 };
	struct q2e_image *img;
	enum q2e_format format;
	const char *path = NULL;
	bool chain = false;
	struct q2e_out *o;
	int ret;

	ret = parse_report_args(cmd, argc, argv, &format,
				chain_view ? &chain : NULL, &path);
	if (ret || !path)
		return ret;
	if (chain)
		view = chain_view;
	ret = open_input(cmd, 0, path, chain, &img, &err);
	if (ret < 0)
		return report(&err);
	o = q2e_out_new(stdout, format);
	if (!o) {
		q2e_image_close(img);
		q2e_error_set(&err, Q2E_ENOMEM, "out of memory");
		return report(&err);
	}
	ret = view(img, o, &err);
	if (q2e_out_finish(o) < 0 && ret == 0)
		ret = q2e_error_set(&err, Q2E_EOUTPUT,
				    "cannot write to standard output");
	q2e_image_close(img);
	return ret < 0 ? report(&err) : Q2E_EXIT_OK;
}

static int cmd_info(int argc, char **argv)
{
	return run_view("info", argc, argv, q2e_view_info, q2e_view_info_chain);
}

static int map_view(struct q2e_image *img, struct q2e_out *o,
		    struct q2e_error *err)
{
	return q2e_view_map_range(img, o, map_start, map_max_length, err);
}

static int cmd_map(int argc, char **argv)
{
	return run_view("map", argc, argv, map_view, NULL);
}

/* -U, for the commands that read images: QEMU's locks (qemu_lock.c). */
#define FORCE_SHARE \
	"  -U, --force-share   read an image a running VM is writing\n" \
	"                      (qemu-img's -U); refused otherwise, as by\n" \
	"                      qemu-img\n"

/* qemu-img's --object and --image-opts (image_opts.c), for info and map. */
#define QEMU_OPTS \
	"  --object SPEC       qemu-img's --object, so that a command line for\n" \
	"                      a LUKS image runs: checked, not used or kept\n" \
	"  --image-opts        IMAGE is an option string, as qemu-img's:\n" \
	"                      driver=qcow2,file.filename=PATH\n"

/* What each command reads, first in its --help: restore reads only dumps. */
#define IMAGE_INPUT "IMAGE is a QCOW2 image or a dump written by 'qcow2elf dump'.\n"

/* -f, as qemu-img's, where the image is the only one. */
#define IMAGE_FORMAT \
	"  -f qcow2            the image format, as qemu-img -f: qcow2 is the\n" \
	"                      one read\n"

static const struct command commands[] = {
	{ "info", cmd_info, "info [--output=human|json] [--backing-chain] [-f qcow2] [-U] [--object SPEC] [--image-opts] IMAGE",
	  "show the header, extensions, snapshots, bitmaps and regions",
	  IMAGE_INPUT
	  "  --output=FMT        human (default) or json\n"
	  "  --backing-chain     the same for each backing file in turn, as\n"
	  "                      qemu-img info --backing-chain\n"
	  IMAGE_FORMAT
	  FORCE_SHARE
	  QEMU_OPTS
	  "  -h, --help          show this help\n" },
	{ "map", cmd_map, "map [--output=human|json] [--start-offset=OFFSET] [--max-length=LEN] [-f qcow2] [-U] [--object SPEC] [--image-opts] IMAGE",
	  "show where each guest range lives, like qemu-img map",
	  IMAGE_INPUT
	  "  --output=FMT        human (default) or json\n"
	  "  --start-offset=OFFSET\n"
	  "                      map from this guest offset (4M, 1G, 0x1000)\n"
	  "  --max-length=LEN    and at most this many bytes, as qemu-img map\n"
	  IMAGE_FORMAT
	  FORCE_SHARE
	  QEMU_OPTS
	  "  -h, --help          show this help\n" },
	{ "dump", cmd_dump,
	  "dump IMAGE -o OUT.elf [--no-data] [--no-gdb-script] [--redact] [-f qcow2] [-U] [--object SPEC] [--image-opts]",
	  "write the metadata as an ELF file for readelf, objcopy and gdb",
	  IMAGE_INPUT
	  "  -o, --output-file=OUT  the ELF file to write; - for standard output;\n"
	  "                         a regular file is replaced only on success\n"
	  "  --no-data              sections without bytes: the layout only\n"
	  "  --no-gdb-script        leave out the gdb helpers (.debug_gdb_scripts)\n"
	  "  --redact               for a bug report: the same layout without\n"
	  "                         names, file names, LUKS key material and\n"
	  "                         digests, or bitmap contents\n"
	  "  -f qcow2               the image format, as qemu-img -f: qcow2 is\n"
	  "                         the one read\n"
	  "  -U, --force-share      read an image a running VM is writing\n"
	  "                         (qemu-img's -U); refused otherwise\n"
	  "  --object SPEC          qemu-img's --object, so that a command line\n"
	  "                         for a LUKS image runs: checked, not used or\n"
	  "                         kept\n"
	  "  --image-opts           IMAGE is an option string, as qemu-img's:\n"
	  "                         driver=qcow2,file.filename=PATH\n"
	  "  -h, --help             show this help\n" },
	{ "check", cmd_check, "check [--output=human|json] [-M] [-p] [-q] [-T CACHE] [-f qcow2] [-U] [--object SPEC] [--image-opts] IMAGE\n"
	  "check --output=json-lines [-T CACHE] [-f qcow2] [-U] [--object SPEC] [--image-opts] IMAGE...",
	  "rebuild the refcounts like qemu-img check, and find what it misses",
	  IMAGE_INPUT
	  "  --output=FMT    human (default), json, or json-lines: then\n"
	  "                  IMAGE... are many, each checked in turn and\n"
	  "                  given one line with its exit status and counts\n"
	  "  -M, --metadata  add the metadata report (\"viscera\")\n"
	  "  -p, --progress  show progress on standard error\n"
	  "  -q, --quiet     no report on standard output, as in qemu-img's\n"
	  "                  check; the per-cluster lines and exit status stay\n"
	  "  -T CACHE        qemu-img check's source cache mode (none,\n"
	  "                  writeback, unsafe, directsync, writethrough):\n"
	  "                  checked; the page cache is read whichever\n"
	  "  -f qcow2        the image format, as qemu-img -f: qcow2 is the\n"
	  "                  one read; a file of another exits 1, not 63\n"
	  "  -U, --force-share\n"
	  "                  read an image a running VM is writing, as\n"
	  "                  qemu-img -U does; refused otherwise\n"
	  "  --object SPEC   qemu-img's --object, so that its command line for\n"
	  "                  a LUKS image runs: checked, not used or kept\n"
	  "  --image-opts    each IMAGE is an option string, as qemu-img's:\n"
	  "                  driver=qcow2,file.filename=PATH\n"
	  "  -h, --help      show this help\n\n"
	  "Exit status, as qemu-img check: 0 no errors, 1 the check could not\n"
	  "complete or the image could not be opened (also a missing backing\n"
	  "or data file), 2 corruptions or overlapping structures (a shared\n"
	  "table, data inside metadata), 3 leaked clusters only, 63 not a\n"
	  "QCOW2 image (qemu-img check exits 63 on a raw file).  With json-lines, the worst of the images' statuses:\n"
	  "2, then 1, 3, 63, 0.\n\n"
	  "The image is never repaired (-r and --repair are refused): use\n"
	  "qemu-img check -r.\n" },
	{ "diff", cmd_diff, "diff [--output=human|json] [-v] [--color[=WHEN]] [-f qcow2] [-F qcow2] [-U] [--object SPEC] [--image-opts] OLD NEW",
	  "show what changed in the metadata between two images or dumps",
	  "OLD and NEW are QCOW2 images or dumps written by 'qcow2elf dump'.\n"
	  "  --output=FMT   human (default) or json\n"
	  "  -v, --verbose  list every change (human output lists 5 of each kind)\n"
	  "  --color[=WHEN] colour human output: auto (the default: a terminal\n"
	  "                 or git's pager, TERM not dumb), always, never;\n"
	  "                 alone, always\n"
	  "  --no-color     the same as --color=never\n"
	  "  -f, -F qcow2   the formats of OLD and NEW, as qemu-img compare's:\n"
	  "                 qcow2 is the one read\n"
	  "  -U, --force-share\n"
	  "                 read images a running VM is writing (qemu-img's -U)\n"
	  "  --object SPEC  qemu-img's --object, so that a command line for a\n"
	  "                 LUKS image runs: checked, not used or kept\n"
	  "  --image-opts   OLD and NEW are option strings, as qemu-img\n"
	  "                 compare's: driver=qcow2,file.filename=PATH\n"
	  "  -h, --help     show this help\n\n"
	  "Exit status, as cmp and qemu-img compare: 0 the same metadata,\n"
	  "1 different metadata, 2 error.\n" },
	{ "restore", cmd_restore, "restore DUMP -o IMAGE [--force]",
	  "write a sparse image holding the dump's metadata at its offsets",
	  "DUMP is a dump written by 'qcow2elf dump' without --no-data, never\n"
	  "an image; IMAGE is the QCOW2 image it writes.\n"
	  "  -o, --output-file=IMAGE  the image to write (sparse, data reads as\n"
	  "                           zeros); - for standard output\n"
	  "  -f, --force              replace IMAGE if it exists\n"
	  "  -h, --help               show this help\n" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void remove_output_and_die(int sig)
{
	q2e_outfile_remove_pending();
	signal(sig, SIG_DFL);
	raise(sig);
}

void remove_output_on_signals(void)
{
	static const int sigs[] = { SIGHUP, SIGINT, SIGTERM, SIGQUIT };
	struct sigaction sa = { .sa_handler = remove_output_and_die };

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct sigaction old;

		/* An ignored signal (nohup, a background job) stays ignored. */
		if (sigaction(sigs[i], NULL, &old) == 0 &&
		    old.sa_handler == SIG_IGN)
			continue;
		sigaction(sigs[i], &sa, NULL);
	}
}

/* --help and --version succeed only if what they print is written. */
static int flush_stdout(void)
{
	if (fflush(stdout) == 0 && !ferror(stdout))
		return Q2E_EXIT_OK;
	fprintf(stderr, "%s: cannot write to standard output: %s\n", progname,
		strerror(errno));
	return Q2E_EXIT_ERROR;
}

int print_command_help(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++) {
		const char *form = commands[i].synopsis, *lead = "Usage:";
		size_t n;

		if (strcmp(commands[i].name, name) != 0)
			continue;
		/* One line per form of the command, as "Usage:" then "or:". */
		for (; *form; form += n + (form[n] == '\n'), lead = "   or:") {
			n = strcspn(form, "\n");
			printf("%s %s %.*s\n", lead, progname, (int)n, form);
		}
		printf("%s.\n\n%s", commands[i].summary, commands[i].options);
	}
	return flush_stdout();
}

static void print_help(void)
{
	printf("Usage: %s COMMAND [OPTIONS] FILE...\n"
	       "Find every metadata structure of a QCOW2 image and show it.\n\n"
	       "Commands:\n", progname);
	/* Each command's first form and its summary (below a long one),
	 * then its other forms. */
	for (size_t i = 0; i < NCOMMANDS; i++) {
		const char *form = commands[i].synopsis;
		int n = (int)strcspn(form, "\n");

		if (n > 44)
			printf("  %.*s\n  %-44s %s\n", n, form, "",
			       commands[i].summary);
		else
			printf("  %-44.*s %s\n", n, form, commands[i].summary);
		for (form += n; *form == '\n'; form += n) {
			n = (int)strcspn(++form, "\n");
			printf("  %.*s\n", n, form);
		}
	}
	printf("\nEvery IMAGE may also be a dump written by '%s dump'.\n"
	       "Run '%s COMMAND --help' for a command's options; see qcow2elf(1).\n\n"
	       "  -h, --help     show this help\n"
	       "  -V, --version  show the version\n\n"
	       "Exit status: 0 success, 1 error or bad usage; check and diff have\n"
	       "their own (see their --help).\n",
	       progname, progname);
}

int cli_main(int argc, char **argv)
{
	int ret;

	if (argc < 2)
		return usage_error(NULL, "%s", "missing COMMAND");
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		print_help();
		return flush_stdout();
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("qcow2elf %s\n", Q2E_VERSION);
		return flush_stdout();
	}
	for (size_t i = 0; i < NCOMMANDS; i++) {
		/* getopt_long's messages begin with the command's argv[0]. */
		static char who[64];

		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		snprintf(who, sizeof(who), "%s: %s", progname, commands[i].name);
		argv[1] = who;
		/* QEMU's locks as qemu-img takes them, until -U */
		q2e_image_locking(false, reads_data(commands[i].name));
		share_all = false;
		format_named = false;
		/* What qemu-img says as it opens each image, said by the
		 * commands that stand for its own. */
		q2e_image_observe_opens(says_as_qemu_img(commands[i].name)
					? warn_as_qemu_opens : NULL, NULL);
		image_opts_reset();
		ret = commands[i].run(argc - 1, argv + 1);
		image_opts_reset();	/* --object's ids */
		return ret;
	}
	return usage_error(NULL, "unknown command '%s'", argv[1]);
}

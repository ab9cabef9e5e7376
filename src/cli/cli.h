/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared by the subcommands of the command line (src/cli/cmd_*.c). */
#ifndef QCOW2ELF_CLI_H
#define QCOW2ELF_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "qcow2elf/error.h"
#include "qcow2elf/exit.h"
#include "qcow2elf/output.h"

struct q2e_check_result;
struct q2e_image;

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *synopsis;	/* its forms, one a line, without "qcow2elf " */
	const char *summary;
	const char *options;	/* help text: its input, then its options */
};

extern const char *progname;

/*
 * A message for standard error, built whole and written with one write(),
 * so that the lines of runs in parallel into one pipe or file (xargs -P
 * ... 2>LOG) never mix.  message_start() returns the stream to build it
 * in, "qcow2elf: " written; message_end() ends the line and writes it.
 */
struct message {
	FILE *fp;
	char *buf;
	size_t len;
};
FILE *message_start(struct message *m);
void message_end(struct message *m);

/* Prints "qcow2elf: CMD: <message>" and a hint; returns Q2E_EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, const char *arg);
/* After getopt_long's message on a bad option: where to read more;
 * returns Q2E_EXIT_USAGE. */
int option_error(const char *cmd);
/* Prints the error's one line; returns Q2E_EXIT_ERROR. */
int report(const struct q2e_error *err);
/* Prints IMG's errors as warnings, escaped; dump and restore go on. */
void warn_problems(const struct q2e_image *img);
/* -U (--force-share) of CMD: QEMU's locks as qemu-img -U takes them;
 * forced_share() says whether it was given.  image_locking() sets the
 * locks for an image SHARE says to read as -U does, or -U was given. */
void force_share(const char *cmd);
bool forced_share(void);
void image_locking(const char *cmd, bool share);
/*
 * -f FMT of CMD, qemu-img's image format: qcow2, the one format read (a
 * dump stands for its qcow2 image); 0, or Q2E_EXIT_USAGE after saying why.
 * named_qcow2() is then true: a file that is no QCOW2 image fails to open,
 * as with qemu-img -f qcow2, where check without it exits 63 as for raw.
 */
int image_format(const char *cmd, const char *arg);
bool named_qcow2(void);
/*
 * qemu-img's --object (object_opt.c) and --image-opts (image_opts.c).
 * object_option() checks an --object as qemu-img does and keeps nothing; image_opts_option() is
 * --image-opts given to CMD, after which image_args() turns each of the N
 * IMAGE arguments ARGS, option strings "driver=qcow2,file.filename=PATH",
 * into its PATH, in place.  Each returns 0, or Q2E_EXIT_USAGE after
 * saying why.  open_input() below opens image I of ARGS with the locks
 * its string asks for; image_opts_qcow2() then says whether it named
 * driver=qcow2.
 */
int object_option(const char *cmd, const char *spec);
void object_options_reset(void);
/* Whether an --object before gave the secret ID. */
bool object_secret_given(const char *id);
/* Whether V is one of WORDS (NULL-terminated). */
bool one_of(const char *v, const char *const *words);
/* What object_option() and qemu_option() return once they have printed
 * the help that "--object help" asks for: the command ends there, 0. */
#define OBJECT_HELP_SHOWN (-1)
int image_opts_option(const char *cmd);
bool image_opts(void);
void image_opts_reset(void);
int image_args(const char *cmd, char **args, int n);
bool image_opts_qcow2(void);
/*
 * The two as getopt_long() options: the entries of a subcommand's option
 * table, and qemu_option(), which takes OPT (OPT_OBJECT or OPT_IMAGE_OPTS)
 * and its ARG as the two functions above do.
 */
enum { OPT_OBJECT = 0x1000, OPT_IMAGE_OPTS };
#define QEMU_IMAGE_OPTIONS \
	{ "object", required_argument, NULL, OPT_OBJECT }, \
	{ "image-opts", no_argument, NULL, OPT_IMAGE_OPTS }
int qemu_option(const char *cmd, int opt, const char *arg);
/* The length of the option P starts, to the comma that ends it (",," is a
 * comma inside it); and whether ID's N bytes are QEMU's well-formed id. */
size_t qemu_opt_len(const char *p);
bool qemu_id_wellformed(const char *id, size_t n);
/*
 * Opens PATH, image I of CMD's IMAGE arguments, with the locks its option
 * string asks for, for it and then for its backing files (BY_NAME: these
 * are opened by their names alone, as qemu-img info --backing-chain opens
 * them); returns as q2e_image_open().
 */
int open_input(const char *cmd, int i, const char *path, bool by_name,
	       struct q2e_image **img, struct q2e_error *err);
/* A size or offset as qemu-img reads one (size.c: 4M, 1.5G, 0x1000);
 * 0, -EINVAL or -ERANGE (past 2^63 - 1). */
int parse_size(const char *s, uint64_t *out);
/* Parses an --output argument; 0, or Q2E_EXIT_USAGE after saying why. */
int parse_format(const char *cmd, const char *arg, enum q2e_format *f);
/* Prints NAME's --help; 0, or 1 when standard output cannot be written. */
int print_command_help(const char *name);
/* A signal that ends the process removes the output being written first. */
void remove_output_on_signals(void);

/* The whole command line, for main() and the fuzz target: it returns the
 * exit status rather than exiting. */
int cli_main(int argc, char **argv);

int cmd_dump(int argc, char **argv);
int cmd_check(int argc, char **argv);
/* Says why PATH's check is not complete or qemu-img could not open it,
 * as RES says (res->incomplete or res->unopenable). */
void report_unchecked(const char *path, const struct q2e_check_result *res);
/* check --output=json-lines IMAGE...: returns the worst exit status. */
int check_json_lines(char **images, size_t n);
int cmd_diff(int argc, char **argv);
int cmd_restore(int argc, char **argv);

#endif

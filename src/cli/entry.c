/* SPDX-License-Identifier: GPL-2.0-or-later */
/* main() alone, so that the fuzz target links the rest of the command line
 * and calls cli_main() once per input. */
#include <malloc.h>

#include "cli.h"

int main(int argc, char **argv)
{
	/* One malloc arena: each thread's own (the read-ahead, extents and
	 * copy threads) reserves 64 to 128 MiB of address space, which
	 * `ulimit -v` counts: a dump of 106 MB under a limit of 300 MB ran
	 * out of memory when three threads had made theirs.  The threads
	 * allocate little; the main thread does. */
	mallopt(M_ARENA_MAX, 1);
	return cli_main(argc, argv);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* main() alone, so that the fuzz target links the rest of the command line
 * and calls cli_main() once per input. */
#include "cli.h"

int main(int argc, char **argv)
{
	return cli_main(argc, argv);
}

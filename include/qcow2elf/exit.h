/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Exit statuses of the qcow2elf commands, in one place.  Every command
 * exits 0 on success and 1 on error or bad usage, except the two that
 * follow another tool's documented statuses so that scripts written for it
 * keep working: `check` as qemu-img check, `diff` as cmp(1) and
 * qemu-img compare.  Values repeat across commands on purpose.
 */
#ifndef QCOW2ELF_EXIT_H
#define QCOW2ELF_EXIT_H

enum q2e_exit {
	Q2E_EXIT_OK = 0,
	Q2E_EXIT_ERROR = 1,
	Q2E_EXIT_USAGE = 1,

	/* check: qemu-img check's statuses */
	Q2E_EXIT_CHECK_CLEAN = 0,
	Q2E_EXIT_CHECK_INCOMPLETE = 1,	/* could not complete, or not opened */
	Q2E_EXIT_CHECK_CORRUPT = 2,
	Q2E_EXIT_CHECK_LEAKS = 3,	/* leaked clusters and nothing worse */
	Q2E_EXIT_CHECK_NOT_QCOW2 = 63,	/* qemu-img's status for a raw file */

	/* diff: cmp(1)'s and qemu-img compare's statuses */
	Q2E_EXIT_DIFF_SAME = 0,
	Q2E_EXIT_DIFF_DIFFERENT = 1,
	Q2E_EXIT_DIFF_ERROR = 2,
};

#endif

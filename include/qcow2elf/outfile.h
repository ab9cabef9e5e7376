/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The output files `dump` and `restore` write are complete or absent: they
 * are written to a temporary file beside their path and renamed into place
 * only when complete (src/view/outfile.c).
 */
#ifndef QCOW2ELF_OUTFILE_PUBLIC_H
#define QCOW2ELF_OUTFILE_PUBLIC_H

/*
 * Removes the temporary file of an output being written, if there is one.
 * Async-signal-safe: for a signal handler that is about to end the process.
 */
void q2e_outfile_remove_pending(void);

#endif

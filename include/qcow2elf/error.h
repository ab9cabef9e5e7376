/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Errors carried out of the library.
 *
 * The library never prints and never exits.  A function that fails returns a
 * negative Q2E_E* code and, when given a struct q2e_error, fills it with one
 * line that names the file, the structure and the offset, in git's style:
 * lowercase, what is wrong first, no final full stop.
 */
#ifndef QCOW2ELF_ERROR_H
#define QCOW2ELF_ERROR_H

#include <stdarg.h>

enum q2e_errcode {
	Q2E_OK = 0,
	Q2E_EIO = -1,		/* the input could not be read */
	Q2E_ENOTQCOW2 = -2,	/* not a QCOW2 image or dump at all */
	Q2E_ECORRUPT = -3,	/* a structure is damaged beyond reading */
	Q2E_ENOMEM = -4,
	Q2E_EUNSUPPORTED = -5,	/* valid, but beyond what we handle */
	Q2E_EOUTPUT = -6,	/* the output could not be written */
	Q2E_EUSAGE = -7,	/* a bad argument from the caller */
};

struct q2e_error {
	int code;
	char msg[1024];
};

/* Records the first error only: later calls keep the original cause. */
int q2e_error_set(struct q2e_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int q2e_error_vset(struct q2e_error *err, int code, const char *fmt,
		   va_list ap) __attribute__((format(printf, 3, 0)));
void q2e_error_clear(struct q2e_error *err);

#endif

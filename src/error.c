/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>

#include "qcow2elf/error.h"

int q2e_error_vset(struct q2e_error *err, int code, const char *fmt,
		   va_list ap)
{
	if (err && err->code == 0) {
		err->code = code;
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	}
	return code;
}

int q2e_error_set(struct q2e_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	q2e_error_vset(err, code, fmt, ap);
	va_end(ap);
	return code;
}

void q2e_error_clear(struct q2e_error *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}

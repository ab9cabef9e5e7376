/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Loading libdwarf for `dump` (see dwarf_lib.h for why it is not linked).
 *
 * Q2E_DWARF_SONAME is the soname of the library the build found (the
 * Makefile reads it from the library), so the functions looked up are
 * those of the libdwarf.h compiled against.  The library stays loaded:
 * a process that dumps once is likely to dump again (the fuzz targets),
 * and unloading buys nothing at exit.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "dwarf_lib.h"

/* The Makefile passes the one it found, or stops; this is for tools that
 * read the file alone (tests/lint.sh). */
#ifndef Q2E_DWARF_SONAME
#define Q2E_DWARF_SONAME "libdwarf.so.1"
#endif

static struct q2e_dwarf_lib lib;
static bool loaded;
static char why[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* dlerror() starts with the file's name, which the message gives already. */
static const char *without_name(const char *msg)
{
	size_t n = strlen(Q2E_DWARF_SONAME);

	if (strncmp(msg, Q2E_DWARF_SONAME, n) == 0 && msg[n] == ':' &&
	    msg[n + 1] == ' ')
		return msg + n + 2;
	return msg;
}

static void load(void)
{
	void *h = dlopen(Q2E_DWARF_SONAME, RTLD_NOW | RTLD_LOCAL);
	const char *e;

	if (!h) {
		e = dlerror();
		snprintf(why, sizeof(why),
			 "cannot load '%s', which dump needs to describe the types: %s",
			 Q2E_DWARF_SONAME, e ? without_name(e) : "unknown error");
		return;
	}
	/* A function pointer from dlsym's void *: POSIX guarantees it works. */
#define Q2E_DWARF_LOOKUP(name)						\
	lib.name = (__typeof__(lib.name))dlsym(h, #name);		\
	if (!lib.name) {						\
		snprintf(why, sizeof(why),				\
			 "'%s' lacks '%s', which dump needs to describe the types", \
			 Q2E_DWARF_SONAME, #name);			\
		dlclose(h);						\
		return;							\
	}
	Q2E_DWARF_FUNCTIONS(Q2E_DWARF_LOOKUP)
#undef Q2E_DWARF_LOOKUP
	loaded = true;
}

const struct q2e_dwarf_lib *q2e_dwarf_lib(struct q2e_error *err)
{
	pthread_once(&once, load);
	if (loaded)
		return &lib;
	q2e_error_set(err, Q2E_EUNSUPPORTED, "%s", why);
	return NULL;
}

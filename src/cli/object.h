/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An --object as qemu-img reads it (object_parse.c), for the checks of
 * object_opt.c.
 */
#ifndef Q2E_CLI_OBJECT_H
#define Q2E_CLI_OBJECT_H

#include <stdbool.h>
#include <stddef.h>

/* One PROP=VALUE: a string, or in JSON a number's text (NUMBER), or NULL
 * for true, false, null, [...] or {...}. */
struct object_prop {
	char *key;
	char *value;
	bool number;
	size_t order;		/* its place in the spec */
};

struct object {
	char *type, *id;	/* qom-type and id, NULL where not given */
	bool type_bad, id_bad;	/* given in JSON, but no string */
	struct object_prop *props;	/* sorted by key, each once */
	size_t n, cap;
	bool help;		/* help or ? among the words */
	bool json;
	bool oom;
	/* The first error reading it: a message, a format with one %s for
	 * WORD (a bare word, which may be part of a secret's value). */
	const char *error;
	char *word;
};

/* Reads SPEC, TYPE,KEY=VALUE,... or {"qom-type": TYPE, ...}, into O: O's
 * error is set on a spec qemu-img would not read. */
void object_parse(const char *spec, struct object *o);
void object_free(struct object *o);
/* The value of KEY, NULL if O has no string for it. */
const char *object_get(const struct object *o, const char *key);

#endif

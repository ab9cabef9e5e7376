/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reading an --object as qemu-img 7.2 reads one, in either of its forms:
 *
 *   TYPE,KEY=VALUE,...   QEMU's keyval: ",," is a comma inside a value, the
 *                        last of a key given twice counts, a bare first
 *                        word is qom-type's value, a bare "help" or "?"
 *                        asks for help, an empty key is refused;
 *   {"qom-type": TYPE, "id": ID, ...}
 *                        a JSON object (QEMU's parser also takes strings
 *                        in single quotes): a key given twice is refused,
 *                        values other than strings are kept as such, for
 *                        the checks to refuse where QEMU wants a string.
 *
 * Nothing is printed here: object_opt.c says what is wrong, in qemu-img's
 * words, and keeps a secret's value out of every message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "object.h"

static void set_error(struct object *o, const char *msg, const char *word,
		      size_t len)
{
	if (o->error)
		return;
	o->error = msg;
	o->word = word ? strndup(word, len) : NULL;
	o->oom |= word && !o->word;
}

/* KEY=VALUE into O, taking ownership of both: object_finish() keeps the
 * last of a key given twice (or refuses it, in JSON). */
static void object_set(struct object *o, char *key, char *value, bool number)
{
	char **slot = NULL;

	if (!key || (!value && !number && !o->json)) {
		o->oom = true;
		free(key);
		free(value);
		return;
	}
	if (strcmp(key, "qom-type") == 0 || strcmp(key, "id") == 0) {
		bool is_type = key[0] == 'q';

		slot = is_type ? &o->type : &o->id;
		*(is_type ? &o->type_bad : &o->id_bad) = !value || number;
		free(key);
		free(*slot);
		*slot = value;
		return;
	}
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 8;
		struct object_prop *p = realloc(o->props, cap * sizeof(*p));

		if (!p) {
			o->oom = true;
			free(key);
			free(value);
			return;
		}
		o->props = p;
		o->cap = cap;
	}
	o->props[o->n++] = (struct object_prop){ key, value, number };
}

/* S's first N bytes, ",," read as ",". */
static char *unescape(const char *s, size_t n)
{
	char *out = malloc(n + 1), *w = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		*w++ = s[i];
		i += s[i] == ',';
	}
	*w = '\0';
	return out;
}

static bool is_help(const char *p, size_t n)
{
	return (n == 4 && !strncmp(p, "help", 4)) || (n == 1 && *p == '?');
}

/* TYPE,KEY=VALUE,... */
static void parse_keyval(const char *spec, struct object *o)
{
	for (const char *p = spec; *p && !o->error; p += *p == ',') {
		size_t n = qemu_opt_len(p), k = strcspn(p, "=,");

		if (p == spec && p[k] != '=') {
			/* qom-type's value, implied: no comma inside it */
			if (n == 0 || memchr(p, ',', n))
				set_error(o, "Invalid parameter ''", NULL, 0);
			else if (is_help(p, n))
				o->help = true;
			else
				object_set(o, strdup("qom-type"), unescape(p, n),
					   false);
		} else if (k == 0) {
			set_error(o, "Invalid parameter ''", NULL, 0);
		} else if (p[k] != '=') {
			if (is_help(p, k))
				o->help = true;
			else
				set_error(o, "Expected '=' after parameter '%s'",
					  p, k);
			n = k;
		} else {
			object_set(o, unescape(p, k),
				   unescape(p + k + 1, n - k - 1), false);
		}
		p += n;
	}
}

static const char *skip_space(const char *p)
{
	return p + strspn(p, " \t\r\n");
}

/* Appends code point CP to W as UTF-8; W moves past it. */
static void put_utf8(char **w, uint32_t cp)
{
	unsigned char *u = (unsigned char *)*w;

	if (cp < 0x80) {
		*u++ = (unsigned char)cp;
	} else if (cp < 0x800) {
		*u++ = (unsigned char)(0xc0 | cp >> 6);
		*u++ = (unsigned char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*u++ = (unsigned char)(0xe0 | cp >> 12);
		*u++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		*u++ = (unsigned char)(0x80 | (cp & 0x3f));
	} else {
		*u++ = (unsigned char)(0xf0 | cp >> 18);
		*u++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		*u++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		*u++ = (unsigned char)(0x80 | (cp & 0x3f));
	}
	*w = (char *)u;
}

static int hex4(const char *p, uint32_t *cp)
{
	*cp = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9' ? c - '0'
			: (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10
			: -1;

		if (d < 0)
			return -1;
		*cp = *cp << 4 | (uint32_t)d;
	}
	return 0;
}

/* The JSON string *P starts (in '"' or '\''), unescaped; *P moves past
 * it.  NULL if it is not one (or for memory: *OOM). */
static char *json_string(const char **p, bool *oom)
{
	char quote = **p, *out, *w;
	const char *s = *p + 1, *end = s;

	if (quote != '"' && quote != '\'')
		return NULL;
	while (*end && *end != quote)	/* unescaped, it is no longer */
		end += end[0] == '\\' && end[1] ? 2 : 1;
	out = w = malloc((size_t)(end - s) + 1);
	if (!out) {
		*oom = true;
		return NULL;
	}
	for (; *s && *s != quote; s++) {
		uint32_t cp, lo;
		static const char from[] = "\"\\/'bfnrt", to[] = "\"\\/'\b\f\n\r\t";
		const char *e;

		if ((unsigned char)*s < 0x20)
			break;		/* a control character, unescaped */
		if (*s != '\\') {
			*w++ = *s;
			continue;
		}
		s++;
		if (*s && (e = strchr(from, *s))) {
			*w++ = to[e - from];
		} else if (*s == 'u' && hex4(s + 1, &cp) == 0) {
			s += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && s[1] == '\\' &&
			    s[2] == 'u' && hex4(s + 3, &lo) == 0 &&
			    lo >= 0xdc00 && lo < 0xe000) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				s += 6;
			}
			put_utf8(&w, cp);
		} else {
			break;
		}
	}
	if (*s != quote) {
		free(out);
		return NULL;
	}
	*w = '\0';
	*p = s + 1;
	return out;
}

/* The length of the JSON number S starts, or 0 if it starts none. */
static size_t json_number(const char *s)
{
	const char *t = s + (*s == '-');
	size_t digits = strspn(t, "0123456789");

	if (!digits || (t[0] == '0' && digits > 1))
		return 0;	/* none, or a leading zero (QEMU: "stray") */
	t += digits;
	if (*t == '.') {
		if (!(digits = strspn(t + 1, "0123456789")))
			return 0;
		t += 1 + digits;
	}
	if (*t == 'e' || *t == 'E') {
		const char *e = t + 1 + (t[1] == '+' || t[1] == '-');

		if (!(digits = strspn(e, "0123456789")))
			return 0;
		t = e + digits;
	}
	return (size_t)(t - s);
}

#define JSON_DEPTH 1024	/* nesting QEMU's JSON parser takes */

/* Skips the JSON value *P starts, checked as JSON (DEPTH: the [ and {
 * around it); false if it is none. */
static bool json_value(const char **p, int depth, bool *oom)
{
	const char *s = *p;
	char close = *s == '{' ? '}' : ']';
	size_t n = json_number(s);

	if (*s == '"' || *s == '\'') {
		char *str = json_string(&s, oom);

		free(str);
		if (!str)
			return false;
	} else if (n) {
		s += n;
	} else if (!strncmp(s, "true", 4) || !strncmp(s, "null", 4)) {
		s += 4;
	} else if (!strncmp(s, "false", 5)) {
		s += 5;
	} else if ((*s == '{' || *s == '[') && depth < JSON_DEPTH) {
		s = skip_space(s + 1);
		for (bool first = true; !(first && *s == close); first = false) {
			if (close == '}') {
				char *key = json_string(&s, oom);

				free(key);
				s = skip_space(s);
				if (!key || *s++ != ':')
					return false;
				s = skip_space(s);
			}
			if (!json_value(&s, depth + 1, oom))
				return false;
			s = skip_space(s);
			if (*s == close)
				break;
			if (*s++ != ',')
				return false;
			s = skip_space(s);
		}
		s++;	/* the close */
	} else {
		return false;
	}
	*p = s;
	return true;
}

/* Skips the JSON value *P starts that is no string: a number's text in
 * *NUMBER (or NULL for another value).  False if there is none. */
static bool json_skip_value(const char **p, char **number, bool *oom)
{
	const char *s = *p;
	size_t n = json_number(s);

	*number = NULL;
	if (*s == '"' || *s == '\'' || !json_value(p, 0, oom))
		return false;
	if (n) {
		*number = strndup(s, n);
		*oom |= !*number;
	}
	return true;
}

static void json_fail(struct object *o)
{
	set_error(o, "JSON parse error, expecting value", NULL, 0);
}

/* {"KEY": VALUE, ...} */
static void parse_json(const char *spec, struct object *o)
{
	const char *p = skip_space(spec) + 1;	/* past '{' */

	for (bool first = true;; first = false) {
		char *key, *value = NULL, *number = NULL;
		bool dup = false;

		p = skip_space(p);
		if (first && *p == '}')
			break;
		key = json_string(&p, &o->oom);
		p = skip_space(p);
		if (!key || *p++ != ':') {
			free(key);
			json_fail(o);
			return;
		}
		p = skip_space(p);
		value = json_string(&p, &o->oom);
		if (!value && !json_skip_value(&p, &number, &o->oom)) {
			free(key);
			json_fail(o);
			return;
		}
		dup = (!strcmp(key, "qom-type") && (o->type || o->type_bad)) ||
		      (!strcmp(key, "id") && (o->id || o->id_bad));
		if (dup) {
			free(key);
			free(value);
			free(number);
			set_error(o, "JSON parse error, duplicate key", NULL, 0);
			return;
		}
		object_set(o, key, value ? value : number, number != NULL);
		p = skip_space(p);
		if (*p == '}')
			break;
		if (*p++ != ',') {
			json_fail(o);
			return;
		}
	}
	if (*skip_space(p + 1))
		json_fail(o);
}

static int prop_key_cmp(const void *pa, const void *pb)
{
	return strcmp(((const struct object_prop *)pa)->key,
		      ((const struct object_prop *)pb)->key);
}

static int prop_cmp(const void *pa, const void *pb)
{
	const struct object_prop *a = pa, *b = pb;
	int c = strcmp(a->key, b->key);

	return c ? c : (a->order > b->order) - (a->order < b->order);
}

/*
 * The properties sorted by key, for object_get(): of a key given twice
 * the last is kept, or in JSON the object is refused, as QEMU refuses it.
 * Sorted rather than searched as they come: a long --object of distinct
 * keys costs n log n.
 */
static void object_finish(struct object *o)
{
	size_t k = 0;

	for (size_t i = 0; i < o->n; i++)
		o->props[i].order = i;
	if (o->n)
		qsort(o->props, o->n, sizeof(*o->props), prop_cmp);
	for (size_t i = 0; i < o->n; i++) {
		if (i + 1 < o->n && !strcmp(o->props[i].key, o->props[i + 1].key)) {
			if (o->json)
				set_error(o, "JSON parse error, duplicate key", NULL, 0);
			free(o->props[i].key);
			free(o->props[i].value);
			continue;
		}
		o->props[k++] = o->props[i];
	}
	o->n = k;
}

void object_parse(const char *spec, struct object *o)
{
	memset(o, 0, sizeof(*o));
	o->json = spec[0] == '{';
	if (o->json)
		parse_json(spec, o);
	else
		parse_keyval(spec, o);
	object_finish(o);
}

void object_free(struct object *o)
{
	free(o->type);
	free(o->id);
	for (size_t i = 0; i < o->n; i++) {
		free(o->props[i].key);
		free(o->props[i].value);
	}
	free(o->props);
	free(o->word);
}

const char *object_get(const struct object *o, const char *key)
{
	const struct object_prop want = { .key = (char *)key };
	const struct object_prop *p;

	p = o->n ? bsearch(&want, o->props, o->n, sizeof(*o->props),
			   prop_key_cmp) : NULL;
	return p ? p->value : NULL;
}

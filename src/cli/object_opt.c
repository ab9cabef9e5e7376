/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qemu-img's --object, so that a command line written for qemu-img runs
 * unchanged: a LUKS image's above all, which qemu-img check and map cannot
 * open without its secret.
 *
 * qcow2elf decrypts nothing (a QCOW2 image's metadata is never encrypted),
 * so an --object is checked as qemu-img 7.2 checks it and is then
 * dropped: a secret it holds goes nowhere, not even into a message.  What
 * is checked, with qemu-img's words:
 *
 *   - the forms TYPE,id=ID[,PROP=VALUE...] (",," a comma in a value, the
 *     last of a repeated property counts), qom-type=TYPE,... and the JSON
 *     {"qom-type": TYPE, "id": ID, ...};
 *   - TYPE: one qemu-img can create (the list `--object help` prints), or
 *     "invalid object type" for QEMU's other types, or "does not accept
 *     value" for a name QEMU does not know;
 *   - ID: present, well formed, and not an earlier --object's;
 *   - a secret's properties (data or file, format, iv, keyid), its file
 *     readable and its keyid an earlier secret's; secret_keyring's serial.
 *
 * help (or ?) alone, or after a type qemu-img cannot create, prints the
 * list of types; secret,help and secret_keyring,help their properties.
 * Other types' properties are not checked.
 */
#define _GNU_SOURCE		/* asprintf */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* What qemu-img 7.2's `--object help` lists: the types it can create. */
static const char *const creatable[] = {
	"authz-list", "authz-list-file", "authz-simple", "main-loop",
	"pr-manager-helper", "secret", "secret_keyring", "thread-context",
	"throttle-group", "tls-cipher-suites", "tls-creds-anon",
	"tls-creds-psk", "tls-creds-x509", NULL,
};

/* QEMU 7.2's other ObjectType values, which qemu-img cannot create. */
static const char *const not_creatable[] = {
	"authz-listfile", "authz-pam", "can-bus", "can-host-socketcan",
	"colo-compare", "cryptodev-backend", "cryptodev-backend-builtin",
	"cryptodev-backend-lkcf", "cryptodev-vhost-user", "dbus-vmstate",
	"filter-buffer", "filter-dump", "filter-mirror", "filter-redirector",
	"filter-replay", "filter-rewriter", "input-barrier", "input-linux",
	"iothread", "memory-backend-epc", "memory-backend-file",
	"memory-backend-memfd", "memory-backend-ram", "pef-guest", "qtest",
	"rng-builtin", "rng-egd", "rng-random", "sev-guest", "s390-pv-guest",
	"x-remote-object", "x-vfio-user-server", NULL,
};

static const char *const secret_props[] = {
	"data", "file", "format", "iv", "keyid", NULL,
};

static const char *const keyring_props[] = {
	"format", "iv", "keyid", "serial", NULL,
};

/* The ids of the --object options before this one, and their types. */
struct object_id {
	char *id;
	bool secret;		/* secret or secret_keyring */
};
static struct object_id *ids;
static size_t nids;

void object_options_reset(void)
{
	for (size_t i = 0; i < nids; i++)
		free(ids[i].id);
	free(ids);
	ids = NULL;
	nids = 0;
}

bool object_secret_given(const char *id)
{
	for (size_t i = 0; i < nids; i++)
		if (ids[i].secret && strcmp(ids[i].id, id) == 0)
			return true;
	return false;
}

static bool listed(const char *const *list, const char *word)
{
	for (; *list; list++)
		if (strcmp(*list, word) == 0)
			return true;
	return false;
}

/* An --object as its properties: type, id, and each PROP=VALUE. */
struct object {
	char *type, *id;
	char *keys[32], *values[32];
	size_t n;
	bool help, json, overflow, oom;
};

static void object_free(struct object *o)
{
	free(o->type);
	free(o->id);
	for (size_t i = 0; i < o->n; i++) {
		free(o->keys[i]);
		free(o->values[i]);
	}
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

/* Keeps KEY=VALUE in O, the last of a key given twice counting. */
static void object_set(struct object *o, char *key, char *value)
{
	char **slot = NULL;

	if (!key || !value) {
		o->oom = true;
		free(key);
		free(value);
		return;
	}
	if (strcmp(key, "qom-type") == 0)
		slot = &o->type;
	else if (strcmp(key, "id") == 0)
		slot = &o->id;
	for (size_t i = 0; !slot && i < o->n; i++)
		if (strcmp(o->keys[i], key) == 0) {
			free(o->keys[i]);
			o->keys[i] = key;
			slot = &o->values[i];
		}
	if (slot) {
		if (slot == &o->type || slot == &o->id)
			free(key);
		free(*slot);
		*slot = value;
	} else if (o->n < sizeof(o->keys) / sizeof(o->keys[0])) {
		o->keys[o->n] = key;
		o->values[o->n++] = value;
	} else {
		o->overflow = true;
		free(key);
		free(value);
	}
}

/* TYPE,KEY=VALUE,...: 0, or -1 with *BAD the element not of that form. */
static int object_split(const char *spec, struct object *o, const char **bad)
{
	for (const char *p = spec; *p; p += *p == ',') {
		size_t n = qemu_opt_len(p), k = strcspn(p, "=,");

		if (n == 0 && p == spec) {
			*bad = p;
			return -1;
		}
		if (n == 0)
			continue;	/* after a comma, at the end */
		if (k >= n) {	/* a bare word */
			if ((n == 4 && !strncmp(p, "help", 4)) ||
			    (n == 1 && *p == '?'))
				o->help = true;
			else if (p == spec)
				object_set(o, strdup("qom-type"), unescape(p, n));
			else {
				*bad = p;
				return -1;
			}
		} else {
			object_set(o, unescape(p, k),
				   unescape(p + k + 1, n - k - 1));
		}
		p += n;
	}
	return 0;
}

/* SPEC ends with "}", white space after it allowed, as JSON's objects do. */
static bool json_closed(const char *spec)
{
	size_t end = strlen(spec);

	while (end && strchr(" \t\n\r", spec[end - 1]))
		end--;
	return end && spec[end - 1] == '}';
}

/* The JSON string value of "KEY" in SPEC, or NULL. */
static char *json_string(const char *spec, const char *key)
{
	const char *p = strstr(spec, key), *end;

	if (!p)
		return NULL;
	p += strspn(p + strlen(key), " \t\r\n") + strlen(key);
	if (*p++ != ':')
		return NULL;
	p += strspn(p, " \t\r\n");
	if (*p++ != '"' || !(end = strchr(p, '"')))
		return NULL;
	return strndup(p, (size_t)(end - p));
}

static int print_types(void)
{
	puts("List of user creatable objects:");
	for (const char *const *t = creatable; *t; t++)
		printf("  %s\n", *t);
	return OBJECT_HELP_SHOWN;
}

static int print_props(const char *cmd, const char *type)
{
	const char *const *props = strcmp(type, "secret") == 0 ? secret_props
				 : strcmp(type, "secret_keyring") == 0
				 ? keyring_props : NULL;

	if (!listed(creatable, type))
		return print_types();
	if (!props)
		return usage_error(cmd, "--object %s,help: qemu-img lists that type's properties",
				   type);
	printf("%s options:\n", type);
	for (; *props; props++)
		printf("  %s=<%s>\n", *props,
		       !strcmp(*props, "format") ? "QCryptoSecretFormat"
		       : !strcmp(*props, "serial") ? "int32_t" : "string");
	return OBJECT_HELP_SHOWN;
}

static int object_error(const char *cmd, const char *fmt, const char *arg)
{
	char *msg;
	int ret;

	if (asprintf(&msg, "--object: %s", fmt) < 0)
		return usage_error(cmd, "%s", "out of memory");
	ret = usage_error(cmd, msg, arg);
	free(msg);
	return ret;
}

/* A secret's or a keyring secret's properties, as QEMU checks them. */
static int check_secret(const char *cmd, const struct object *o, bool keyring)
{
	bool data = false, serial = false;

	for (size_t i = 0; i < o->n; i++) {
		const char *k = o->keys[i], *v = o->values[i];

		if (!listed(keyring ? keyring_props : secret_props, k))
			return object_error(cmd, !strcmp(k, "loaded")
					    ? "Property '%s.loaded' is not writable"
					    : "Parameter '%s' is unexpected",
					    !strcmp(k, "loaded") ? o->type : k);
		if (!strcmp(k, "format") && strcmp(v, "raw") &&
		    strcmp(v, "base64"))
			return object_error(cmd, "Parameter 'format' does not accept value '%s'",
					    v);
		data |= !strcmp(k, "data") || !strcmp(k, "file");
		serial |= !strcmp(k, "serial");
	}
	if (keyring && !serial)
		return object_error(cmd, "%s", "Parameter 'serial' is missing");
	if (!keyring && !data)
		return object_error(cmd, "%s", "Either 'file' or 'data' must be provided");
	return 0;
}

/* The secret's file opens, and its keyid names an earlier secret. */
static int secret_sources(const char *cmd, const struct object *o)
{
	for (size_t i = 0; i < o->n; i++) {
		const char *k = o->keys[i], *v = o->values[i];

		if (!strcmp(k, "file") && strcmp(o->type, "secret") == 0) {
			int fd = open(v, O_RDONLY | O_CLOEXEC);
			char *msg;
			int ret;

			if (fd >= 0) {
				close(fd);
				continue;
			}
			if (asprintf(&msg, "Unable to read %s: Failed to open file \xe2\x80\x9c%s\xe2\x80\x9d: %s",
				     v, v, strerror(errno)) < 0)
				return usage_error(cmd, "%s", "out of memory");
			ret = object_error(cmd, "%s", msg);
			free(msg);
			return ret;
		}
		if (strcmp(k, "keyid") != 0)
			continue;
		if (!object_secret_given(v))
			return object_error(cmd, "No secret with id '%s'", v);
	}
	return 0;
}

/* O's type, id and properties, then keeps its id. */
static int object_check(const char *cmd, const struct object *o)
{
	bool secret = !strcmp(o->type, "secret");
	bool keyring = !strcmp(o->type, "secret_keyring");
	struct object_id *grown;
	int ret;

	if (!listed(creatable, o->type))
		return object_error(cmd, listed(not_creatable, o->type)
				    ? "invalid object type: %s"
				    : "Parameter 'qom-type' does not accept value '%s'",
				    o->type);
	if (!o->id)
		return object_error(cmd, "%s", "Parameter 'id' is missing");
	if (!qemu_id_wellformed(o->id, strlen(o->id)))	/* may be a secret */
		return object_error(cmd, "%s", "Parameters 'id' expects an identifier");
	for (size_t i = 0; i < nids; i++)
		if (!strcmp(ids[i].id, o->id))
			return object_error(cmd, "attempt to add duplicate property '%s' to object (type 'container')",
					    o->id);
	if (o->overflow)
		return object_error(cmd, "%s", "more properties than qcow2elf reads");
	if ((secret || keyring) && !o->json && ((ret = check_secret(cmd, o, keyring)) ||
				    (ret = secret_sources(cmd, o))))
		return ret;
	grown = realloc(ids, (nids + 1) * sizeof(*ids));
	if (!grown || !(grown[nids].id = strdup(o->id))) {
		ids = grown ? grown : ids;
		return usage_error(cmd, "%s", "out of memory");
	}
	ids = grown;
	ids[nids++].secret = secret || keyring;
	return 0;
}

int object_option(const char *cmd, const char *spec)
{
	struct object o = { 0 };
	const char *bad = NULL;
	int ret;

	if (spec[0] == '{') {
		o.json = true;
		if (json_closed(spec)) {
			o.type = json_string(spec, "\"qom-type\"");
			o.id = json_string(spec, "\"id\"");
		}
	} else if (object_split(spec, &o, &bad) < 0) {
		char *word = strndup(bad, strcspn(bad, "=,"));

		ret = object_error(cmd, bad == spec ? "Invalid parameter '%s'"
				   : "Expected '=' after parameter '%s'",
				   word ? word : "");
		free(word);
		object_free(&o);
		return ret;
	}
	if (o.oom)
		ret = usage_error(cmd, "%s", "out of memory");
	else if (o.help && !o.type)
		ret = print_types();
	else if (o.help)
		ret = print_props(cmd, o.type);
	else if (!o.type)
		ret = object_error(cmd, "%s", spec[0] == '{'
				   ? "expects {\"qom-type\": TYPE, \"id\": ID, ...}, as qemu-img's"
				   : "expects TYPE,id=ID[,PROP=VALUE...], as qemu-img's");
	else
		ret = object_check(cmd, &o);
	object_free(&o);
	return ret;
}

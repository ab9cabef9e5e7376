/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qemu-img's --object, so that a command line written for qemu-img runs
 * unchanged: a LUKS image's above all, which qemu-img check and map cannot
 * open without its secret.
 *
 * qcow2elf decrypts nothing (a QCOW2 image's metadata is never encrypted),
 * so an --object is checked as qemu-img 7.2 checks it, in its order, and
 * is then dropped.  Read by object_parse.c, in either form; then:
 *
 *   - TYPE: one QEMU knows ("does not accept value" otherwise);
 *   - ID: given;
 *   - a secret's properties (data, file, format, iv, keyid) and a keyring
 *     secret's (serial, format, iv, keyid), and their types in JSON;
 *   - ID well formed, TYPE one qemu-img can create ("invalid object type"
 *     for QEMU's others), ID no earlier --object's;
 *   - a secret's data: given once (data or file), its file readable, its
 *     base64 well formed; with keyid, the key an earlier secret of 32
 *     bytes and the iv 16 (the ciphertext is not decrypted); a keyring
 *     secret's key in the kernel's keyring (its bytes not read).
 *
 * A secret's value never reaches a message: neither do the words of a
 * secret's --object that are not its keys (a comma left unescaped in a
 * password splits it into such words), nor the values of its keys (the
 * pieces could read as file=... or keyid=...).  Other types' properties
 * are not checked.
 *
 * help (or ?) alone, or after a type qemu-img cannot create, prints the
 * list of types; secret,help and secret_keyring,help their properties.
 */
#define _GNU_SOURCE		/* asprintf */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cli.h"
#include "object.h"

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

/* The ids of the --object options before this one, and of their secrets
 * the length (SIZE_MAX: not known, as for one a key decrypts). */
struct object_id {
	char *id;
	bool secret;		/* secret or secret_keyring */
	bool main_loop;		/* of which there is one */
	size_t length;
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

static const struct object_id *id_find(const char *id)
{
	for (size_t i = 0; i < nids; i++)
		if (strcmp(ids[i].id, id) == 0)
			return &ids[i];
	return NULL;
}

bool object_secret_given(const char *id)
{
	const struct object_id *found = id_find(id);

	return found && found->secret;
}

static bool secret_type(const char *type)
{
	return type && (!strcmp(type, "secret") ||
			!strcmp(type, "secret_keyring"));
}

static int print_types(void)
{
	puts("List of user creatable objects:");
	for (const char *const *t = creatable; *t; t++)
		printf("  %s\n", *t);
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

static int print_props(const char *cmd, const char *type)
{
	const char *const *props = strcmp(type, "secret") == 0 ? secret_props
				 : strcmp(type, "secret_keyring") == 0
				 ? keyring_props : NULL;

	if (!one_of(type, creatable))
		return print_types();
	if (!props)
		return object_error(cmd, "qcow2elf keeps no list of %s's properties (qemu-img --object TYPE,help prints it)",
				    type);
	printf("%s options:\n", type);
	for (; *props; props++)
		printf("  %s=<%s>\n", *props,
		       !strcmp(*props, "format") ? "QCryptoSecretFormat"
		       : !strcmp(*props, "serial") ? "int32_t" : "string");
	return OBJECT_HELP_SHOWN;
}

/* The keyring secret's serial, as QEMU reads an int32_t: in JSON, a
 * number without a fraction or exponent. */
static int check_serial(const char *cmd, const struct object *o,
			const struct object_prop *p)
{
	char *end;
	long long v;

	if (o->json && (!p->number || strpbrk(p->value, ".eE")))
		return object_error(cmd, "%s",
				    "Invalid parameter type for 'serial', expected: integer");
	errno = 0;
	v = strtoll(p->value, &end, o->json ? 10 : 0);
	if (!*p->value || *end || (errno && !o->json))
		return object_error(cmd, "%s", "Parameter 'serial' expects integer");
	if (errno)	/* JSON's integer past 64 bits */
		v = LLONG_MAX;
	if (v < INT32_MIN || v > INT32_MAX)
		return object_error(cmd, "%s", "Parameter 'serial' expects int32_t");
	if (v == 0)
		return object_error(cmd, "%s", "'serial' should not be equal to 0");
	return 0;
}

/*
 * A secret's or a keyring secret's properties, as QEMU's visitor reads
 * them: each known one's value, then the one required (a keyring's
 * serial), then any other.
 */
static int check_props(const char *cmd, const struct object *o, bool keyring)
{
	const char *const *known = keyring ? keyring_props : secret_props;
	bool serial = false;
	int ret;

	for (size_t i = 0; i < o->n; i++) {
		const struct object_prop *p = &o->props[i];

		if (!one_of(p->key, known))
			continue;
		if (!strcmp(p->key, "serial")) {
			serial = true;
			if ((ret = check_serial(cmd, o, p)))
				return ret;
		} else if (!p->value || p->number) {
			return object_error(cmd, "Invalid parameter type for '%s', expected: string",
					    p->key);
		} else if (!strcmp(p->key, "format") && strcmp(p->value, "raw") &&
			   strcmp(p->value, "base64")) {
			return object_error(cmd, "%s",
					    "Parameter 'format' does not accept that value: raw or base64");
		}
	}
	if (keyring && !serial)
		return object_error(cmd, "%s", "Parameter 'serial' is missing");
	for (size_t i = 0; i < o->n; i++) {
		const struct object_prop *p = &o->props[i];

		if (!strcmp(p->key, "loaded"))
			return object_error(cmd, "Property '%s.loaded' is not writable",
					    o->type);
		if (!one_of(p->key, known))	/* may be part of the secret */
			return object_error(cmd, "%s",
					    "a parameter it does not take, not named here: it may be part of the secret (',,' is a comma in a value)");
	}
	return 0;
}

/* Whether S's N bytes are base64 as QEMU's qbase64_decode() takes it. */
static bool base64_ok(const char *s, size_t n)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				       "abcdefghijklmnopqrstuvwxyz0123456789+/=";

	for (size_t i = 0; i < n; i++)
		if (!s[i] || !strchr(alphabet, s[i]))
			return false;
	return true;
}

static size_t base64_length(const char *s, size_t n)
{
	size_t chars = 0;

	for (size_t i = 0; i < n; i++)
		chars += s[i] != '=';
	return chars * 6 / 8;
}

/*
 * The secret's file, read as QEMU reads it, or its data: *BYTES and *LEN,
 * which the caller wipes and frees.  0, or a usage error's status.
 */
static int secret_bytes(const char *cmd, const char *file, const char *data,
			char **bytes, size_t *len)
{
	FILE *fp;
	char *msg = NULL;
	int ret;

	*bytes = NULL;
	if (!file) {
		*len = strlen(data);
		*bytes = strdup(data);
		return *bytes ? 0 : usage_error(cmd, "%s", "out of memory");
	}
	fp = fopen(file, "re");
	if (fp) {
		FILE *mem = open_memstream(bytes, len);
		char buf[4096];
		size_t n;

		while (mem && (n = fread(buf, 1, sizeof(buf), fp)) > 0)
			fwrite(buf, 1, n, mem);
		explicit_bzero(buf, sizeof(buf));
		errno = ferror(fp) ? errno : 0;
		if (mem)
			fclose(mem);
		fclose(fp);
		if (!errno && mem)
			return 0;
		if (asprintf(&msg, "Unable to read the secret's file: Error reading file: %s",
			     strerror(errno ? errno : ENOMEM)) < 0)
			msg = NULL;
	} else if (asprintf(&msg, "Unable to read the secret's file: Failed to open file: %s",
			    strerror(errno)) < 0) {
		msg = NULL;
	}
	ret = msg ? object_error(cmd, "%s", msg)
		  : usage_error(cmd, "%s", "out of memory");
	free(msg);
	return ret;
}

/* With keyid: the key an earlier secret of 32 bytes, the iv 16. */
static int check_key(const char *cmd, const struct object *o, const char *keyid)
{
	const struct object_id *key = id_find(keyid);
	const char *iv = object_get(o, "iv");

	/* The id keyid names is not repeated: a comma left unescaped in a
	 * password can make a piece of it look like keyid=... */
	if (!strcmp(keyid, o->id))
		return object_error(cmd, "%s", "Secret with the id keyid names has no data: it is this one");
	if (!key)
		return object_error(cmd, "%s", "No secret with the id keyid names");
	if (!key->secret)
		return object_error(cmd, "%s", "Object with the id keyid names is not a secret");
	if (key->length != SIZE_MAX && key->length != 32)
		return object_error(cmd, "%s", "Key should be 32 bytes in length");
	if (!iv)
		return object_error(cmd, "%s", "IV is required to decrypt secret");
	if (!base64_ok(iv, strlen(iv)))
		return object_error(cmd, "%s", "Base64 data contains invalid characters");
	if (base64_length(iv, strlen(iv)) != 16) {
		char n[24];

		snprintf(n, sizeof(n), "%zu", base64_length(iv, strlen(iv)));
		return object_error(cmd, "IV should be 16 bytes in length not %s", n);
	}
	return 0;
}

/* A secret's data as QEMU loads it; *LENGTH: its bytes once decoded. */
static int load_secret(const char *cmd, const struct object *o, size_t *length)
{
	const char *data = object_get(o, "data"), *file = object_get(o, "file");
	const char *format = object_get(o, "format");
	const char *keyid = object_get(o, "keyid");
	char *bytes;
	size_t len;
	int ret;

	if (data && file)
		return object_error(cmd, "%s", "'file' and 'data' are mutually exclusive");
	if (!data && !file)
		return object_error(cmd, "%s", "Either 'file' or 'data' must be provided");
	ret = secret_bytes(cmd, file, data, &bytes, &len);
	if (ret)
		return ret;
	*length = len;
	if (keyid)
		ret = check_key(cmd, o, keyid);
	if (!ret && (keyid || (format && !strcmp(format, "base64")))) {
		if (!base64_ok(bytes, len))
			ret = object_error(cmd, "%s", "Base64 data contains invalid characters");
		*length = base64_length(bytes, len);
	}
	if (keyid)
		*length = SIZE_MAX;	/* what the key decrypts */
	explicit_bzero(bytes, len);
	free(bytes);
	return ret;
}

/* A keyring secret's key is in the kernel's keyrings (its size only). */
static int load_keyring(const char *cmd, const struct object *o)
{
	const char *serial = object_get(o, "serial");
	long key = serial ? strtol(serial, NULL, o->json ? 10 : 0) : 0;
	char msg[160];

	if (!serial)
		return 0;
	if (syscall(SYS_keyctl, 11 /* KEYCTL_READ */, (int32_t)key, NULL, 0) >= 0)
		return 0;
	snprintf(msg, sizeof(msg), "Unable to read serial key %08x: %s",
		 (unsigned)(int32_t)key, strerror(errno));
	return object_error(cmd, "%s", msg);
}

/* O, read without error: its type, id and properties, then its secret. */
static int object_check(const char *cmd, const struct object *o)
{
	bool keyring = o->type && !strcmp(o->type, "secret_keyring");
	size_t length = SIZE_MAX;
	struct object_id *grown;
	int ret;

	if (o->type_bad || !o->type)
		return object_error(cmd, "%s", o->type_bad
				    ? "Invalid parameter type for 'qom-type', expected: string"
				    : "Parameter 'qom-type' is missing");
	if (!one_of(o->type, creatable) && !one_of(o->type, not_creatable))
		return object_error(cmd, "Parameter 'qom-type' does not accept value '%s'",
				    o->type);
	if (o->id_bad || !o->id)
		return object_error(cmd, "%s", o->id_bad
				    ? "Invalid parameter type for 'id', expected: string"
				    : "Parameter 'id' is missing");
	if (secret_type(o->type) && (ret = check_props(cmd, o, keyring)))
		return ret;
	if (!qemu_id_wellformed(o->id, strlen(o->id)))
		return object_error(cmd, "%s",
				    "Parameter 'id' expects an identifier: letters, digits, '-', '.', '_', starting with a letter");
	if (!one_of(o->type, creatable))
		return object_error(cmd, "invalid object type: %s", o->type);
	if (id_find(o->id))
		return object_error(cmd, "attempt to add duplicate property '%s' to object (type 'container')",
				    o->id);
	for (size_t i = 0; i < nids; i++)
		if (ids[i].main_loop && !strcmp(o->type, "main-loop"))
			return object_error(cmd, "%s",
					    "only one main-loop instance allowed");
	if (secret_type(o->type) &&
	    (ret = keyring ? load_keyring(cmd, o) : load_secret(cmd, o, &length)))
		return ret;
	grown = realloc(ids, (nids + 1) * sizeof(*ids));
	if (!grown || !(grown[nids].id = strdup(o->id))) {
		ids = grown ? grown : ids;
		return usage_error(cmd, "%s", "out of memory");
	}
	ids = grown;
	ids[nids].secret = secret_type(o->type);
	ids[nids].main_loop = !strcmp(o->type, "main-loop");
	ids[nids++].length = length;
	return 0;
}

int object_option(const char *cmd, const char *spec)
{
	struct object o;
	int ret;

	object_parse(spec, &o);
	if (o.oom)
		ret = usage_error(cmd, "%s", "out of memory");
	else if (o.error && o.word && (!o.type || secret_type(o.type)))
		ret = object_error(cmd, "%s",
				   "Expected '=' after a parameter, not named here: it may be part of the secret (',,' is a comma in a value)");
	else if (o.error)
		ret = object_error(cmd, o.error, o.word);
	else if (o.help && !o.type)
		ret = print_types();
	else if (o.help)
		ret = print_props(cmd, o.type);
	else
		ret = object_check(cmd, &o);
	object_free(&o);
	return ret;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qemu-img's --object and --image-opts, so that a command line written
 * for qemu-img works unchanged: a LUKS image's above all, which qemu-img
 * check and map cannot open without its secret.
 *
 * qcow2elf decrypts nothing (a QCOW2 image's metadata is never
 * encrypted), so an --object is checked for its form, TYPE,id=ID[,...]
 * as QEMU requires it, and is not kept: a secret it holds goes nowhere,
 * not even into an error message.
 *
 * --image-opts makes every IMAGE an option string, as QEMU reads one:
 *
 *   driver=qcow2,file.filename=PATH[,KEY=VALUE...]
 *
 * KEY=VALUE pairs split at commas, ",," standing for a comma in a value.
 * What chooses the bytes read is taken: driver (qcow2, as -f qcow2),
 * file.driver (file), file.filename, force-share and file.locking (off
 * reads as -U does).  What only tunes QEMU's own I/O or decryption is
 * accepted, as qemu-img accepts it.  Any other option is refused, never
 * ignored: backing=, say, would change what the image means.
 */
#include <stdbool.h>
#include <string.h>

#include "cli.h"

static bool image_opts_given;

void image_opts_reset(void)
{
	image_opts_given = false;
}

int image_opts_option(const char *cmd)
{
	if (named_qcow2())
		return usage_error(cmd, "%s",
				   "--image-opts and -f are mutually exclusive, as in qemu-img");
	image_opts_given = true;
	return 0;
}

bool image_opts(void)
{
	return image_opts_given;
}

/* Options accepted and not used: QEMU's I/O and decryption settings. */
static bool tuning_only(const char *key)
{
	static const char *const keys[] = {
		"read-only", "auto-read-only", "cache.direct",
		"cache.no-flush", "discard", "detect-zeroes", "file.aio",
		"file.aio-max-batch", "file.cache.direct",
		"file.cache.no-flush",
	};

	if (strncmp(key, "encrypt.", 8) == 0)
		return true;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(key, keys[i]) == 0)
			return true;
	return false;
}

/* Options whose bare name means on, as QEMU (deprecated) reads it. */
static bool boolean_key(const char *key)
{
	return !strcmp(key, "force-share") || !strcmp(key, "read-only") ||
	       !strcmp(key, "auto-read-only") ||
	       !strcmp(key, "cache.direct") || !strcmp(key, "cache.no-flush");
}

/* QEMU's words for a boolean: 1 on, 0 off, -1 neither. */
static int boolean(const char *v)
{
	if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true") ||
	    !strcmp(v, "y"))
		return 1;
	if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false") ||
	    !strcmp(v, "n"))
		return 0;
	return -1;
}

/*
 * The next KEY=VALUE of *P, split in place: the key and its value end in
 * NUL, ",," in the value becomes ",".  *P moves past it; false at the end.
 */
static bool next_pair(char **p, char **key, char **value)
{
	char *s = *p, *out;

	if (!*s)
		return false;
	*key = s;
	s += strcspn(s, "=,");
	if (*s != '=') {		/* a bare word: no value */
		*value = NULL;
		*p = *s ? s + 1 : s;
		*s = '\0';
		return true;
	}
	*s++ = '\0';
	*value = out = s;
	for (; *s; s++) {
		if (*s == ',' && s[1] != ',')
			break;
		if (*s == ',')
			s++;	/* ",," */
		*out++ = *s;
	}
	*p = *s ? s + 1 : s;
	*out = '\0';
	return true;
}

static int bad_value(const char *cmd, const char *key)
{
	return usage_error(cmd, "--image-opts: '%s' takes on or off", key);
}

/* One option of an --image-opts string; 0, or a usage error's status. */
static int take(const char *cmd, const char *key, const char *v,
		const char **path)
{
	if (!v && boolean_key(key))
		v = "on";	/* QEMU's deprecated short form */
	if (!v)
		return usage_error(cmd, "--image-opts: '%s' is no KEY=VALUE: with --image-opts, IMAGE is driver=qcow2,file.filename=PATH",
				   key);
	if (strcmp(key, "driver") == 0) {
		if (strcmp(v, "qcow2") != 0)
			return usage_error(cmd, "reads qcow2 images and their dumps only, not driver=%s",
					   v);
	} else if (strcmp(key, "file.driver") == 0) {
		if (strcmp(v, "file") != 0)
			return usage_error(cmd, "--image-opts: reads a file (file.driver=file), not file.driver=%s",
					   v);
	} else if (strcmp(key, "file.filename") == 0) {
		*path = v;
	} else if (strcmp(key, "force-share") == 0) {
		if (boolean(v) < 0)
			return bad_value(cmd, key);
		if (boolean(v) == 1)
			force_share(cmd);
	} else if (strcmp(key, "file.locking") == 0) {
		if (boolean(v) < 0 && strcmp(v, "auto") != 0)
			return usage_error(cmd, "--image-opts: 'file.locking' takes on, off or auto, not '%s'",
					   v);
		if (boolean(v) == 0)	/* QEMU then looks at no lock */
			force_share(cmd);
	} else if (!tuning_only(key)) {
		return usage_error(cmd, "--image-opts: qcow2elf does not take the option '%s'",
				   key);
	}
	return 0;
}

int image_opts_path(const char *cmd, char *spec, const char **path)
{
	char *p = spec, *key, *value;
	int ret;

	*path = NULL;
	while (next_pair(&p, &key, &value)) {
		if (!*key)
			return usage_error(cmd, "%s",
					   "--image-opts: an empty option: options are KEY=VALUE, as driver=qcow2,file.filename=PATH");
		ret = take(cmd, key, value, path);
		if (ret)
			return ret;
	}
	if (!*path || !**path)
		return usage_error(cmd, "%s",
				   "--image-opts: names no file: give file.filename=PATH");
	return 0;
}

int image_args(const char *cmd, char **args, int n)
{
	for (int i = 0; image_opts_given && i < n; i++) {
		const char *path;
		int ret = image_opts_path(cmd, args[i], &path);

		if (ret)
			return ret;
		args[i] = (char *)path;
	}
	return 0;
}

/* The length of the element P starts: to a comma, ",," inside it. */
static size_t element_len(const char *p)
{
	size_t n = 0;

	while (p[n] && !(p[n] == ',' && p[n + 1] != ','))
		n += p[n] == ',' ? 2 : 1;
	return n;
}

int object_option(const char *cmd, const char *spec)
{
	bool typed = false, id = false;

	if (spec[0] == '{')	/* the JSON form, {"qom-type": ...} */
		return 0;
	for (const char *p = spec; *p; p += *p == ',') {
		size_t n = element_len(p), k = strcspn(p, "=,");

		if (p == spec && k >= n && n > 0)
			typed = true;	/* TYPE, first */
		else if (strncmp(p, "qom-type=", 9) == 0 && n > 9)
			typed = true;
		else if (strncmp(p, "id=", 3) == 0 && n > 3)
			id = true;
		p += n;
	}
	if (!typed)
		return usage_error(cmd, "%s",
				   "--object: expects TYPE,id=ID[,PROP=VALUE...], as qemu-img's");
	if (!id)
		return usage_error(cmd, "%s",
				   "--object: parameter 'id' is missing");
	return 0;
}

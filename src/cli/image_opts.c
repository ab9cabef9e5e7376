/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qemu-img's --image-opts (and, in object_opt.c, --object), so that a
 * command line written for qemu-img works unchanged: a LUKS image's above
 * all, which qemu-img check and map cannot open without its secret.
 *
 * --image-opts makes every IMAGE an option string, as QEMU reads one:
 *
 *   driver=qcow2,file.filename=PATH[,KEY=VALUE...]
 *
 * KEY=VALUE pairs split at commas, ",," standing for a comma in a value;
 * of a key given twice the last counts.  A bare word is QEMU's implied
 * option when it comes first (refused: QEMU reads it as a node to
 * reference) and its deprecated short form of KEY=on (noKEY: off) after.
 * What chooses the bytes read is taken, for each image on its own:
 * driver (qcow2, as -f qcow2), file.driver (file), file.filename,
 * force-share (read as -U does, the backing files too, as QEMU passes it
 * on to them) and file.locking (off: the image file's locks alone are
 * not looked at).  What only tunes QEMU's caches, I/O or decryption is
 * accepted where QEMU would accept its value, and QEMU's checks across
 * options (combined()) and against the image are made as it is opened
 * (image_fits()); a secret's password is not tried.
 * Any other option is refused, never ignored: backing= or data-file=,
 * say, would change what the image means.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "qcow2elf/model.h"

#define HINT "with --image-opts, IMAGE is driver=qcow2,file.filename=PATH"

/* What an option string says of its image beyond its file. */
struct image_opt {
	bool share;		/* force-share=on or file.locking=off */
	bool share_backing;	/* force-share=on, which QEMU passes on */
	bool qcow2;		/* driver=qcow2 */
	/* What QEMU checks as it opens the image (image_fits()): values in
	 * the option string, or NULL where not given. */
	const char *aio;	/* file.aio */
	bool direct;		/* the file's cache.direct */
	const char *zeroes;	/* detect-zeroes */
	const char *discard;
	const char *cache;	/* cache-size */
	const char *l2;		/* l2-cache-size */
	const char *refcount;	/* refcount-cache-size */
	const char *entry_size;	/* l2-cache-entry-size */
	const char *clean;	/* cache-clean-interval */
	const char *lazy;	/* lazy-refcounts */
	const char *encrypt;	/* encrypt.format */
	const char *key;	/* encrypt.key-secret */
};

static bool given;		/* --image-opts */
static struct image_opt *opts;	/* one per IMAGE, after image_args() */
static int nopts;
static int current;		/* the image image_use() named */

void image_opts_reset(void)
{
	object_options_reset();
	given = false;
	free(opts);
	opts = NULL;
	nopts = 0;
	current = 0;
}

int image_opts_option(const char *cmd)
{
	if (named_qcow2())
		return usage_error(cmd, "%s",
				   "--image-opts and -f are mutually exclusive, as in qemu-img");
	given = true;
	return 0;
}

bool image_opts(void)
{
	return given;
}

bool image_opts_qcow2(void)
{
	return given && current < nopts && opts[current].qcow2;
}

static void image_use(const char *cmd, int i)
{
	current = i;
	if (given && i < nopts)
		image_locking(cmd, opts[i].share);
}

static void image_used(const char *cmd, bool backing_by_name)
{
	if (given && current < nopts)
		image_locking(cmd, !backing_by_name &&
					   opts[current].share_backing);
}

int qemu_option(const char *cmd, int opt, const char *arg)
{
	return opt == OPT_OBJECT ? object_option(cmd, arg)
				 : image_opts_option(cmd);
}

static int on_off(const char *v);

/* The size V gives, or 0 (a value check_pairs() took). */
static uint64_t size_of(const char *v)
{
	uint64_t size = 0;

	if (v && parse_size(v, &size) < 0)
		size = 0;
	return size;
}

/* QEMU's checks of the options together, as it opens the image: why it
 * refuses them, or NULL. */
static const char *combined(const struct image_opt *o)
{
	if (o->aio && !strcmp(o->aio, "native") && !o->direct)
		return "aio=native was specified, but it requires cache.direct=on, which was not specified";
	if (o->zeroes && !strcmp(o->zeroes, "unmap") &&
	    !(o->discard && (!strcmp(o->discard, "unmap") ||
			     !strcmp(o->discard, "on"))))
		return "setting detect-zeroes to unmap is not allowed without setting discard operation to unmap";
	if (o->cache && o->l2 && o->refcount)
		return "cache-size, l2-cache-size and refcount-cache-size may not be set at the same time";
	if (o->cache && o->l2 && size_of(o->l2) > size_of(o->cache))
		return "l2-cache-size may not exceed cache-size";
	if (o->cache && o->refcount && size_of(o->refcount) > size_of(o->cache))
		return "refcount-cache-size may not exceed cache-size";
	return NULL;
}

/* The caches QEMU's read_cache_sizes() gives the image, in bytes. */
struct caches {
	uint64_t l2, entry, refcount;
};

static struct caches cache_sizes(const struct image_opt *o,
				 const struct q2e_image *img)
{
	uint64_t cs = img->cluster_size, cache = size_of(o->cache);
	uint64_t entry = img->hdr.incompatible_features & QCOW2_INCOMPAT_EXTL2
			 ? 16 : 8;
	uint64_t l2_entries = img->hdr.size / cs + (img->hdr.size % cs != 0);
	uint64_t max_l2 = (l2_entries * entry + cs - 1) / cs * cs;
	uint64_t l2_max = o->l2 ? size_of(o->l2) : 32ULL << 20;
	struct caches c = { l2_max < max_l2 ? l2_max : max_l2, 0,
			    size_of(o->refcount) };

	if (o->cache && o->l2) {
		c.refcount = cache - c.l2;
	} else if (o->cache && o->refcount) {
		c.l2 = cache - c.refcount;
	} else if (o->cache && cache >= max_l2 + 4 * cs) {
		c.l2 = max_l2;
		c.refcount = cache - max_l2;
	} else if (o->cache) {
		c.refcount = cache < 4 * cs ? cache : 4 * cs;
		c.l2 = cache - c.refcount;
	}
	c.entry = o->entry_size ? size_of(o->entry_size)
		  : c.l2 < max_l2 && cs > 4096 ? 4096 : cs;
	return c;
}

/*
 * What QEMU checks of image I's options as it opens it, in its order:
 * 0, or an error for CMD naming the image.  qemu-img info opens an
 * encrypted image without its key; the other commands need the secret
 * encrypt.key-secret names (its password is not tried), and without
 * encrypt.key-secret read the image without its key, as qcow2elf does
 * without --image-opts.
 */
static int image_fits(const char *cmd, int i, const struct q2e_image *img,
		      struct q2e_error *err)
{
	static const char *const formats[] = { NULL, "aes", "luks" };
	const struct image_opt *o = &opts[i];
	uint32_t method = img->hdr.crypt_method;
	const char *has = method < 3 ? formats[method] : NULL;
	const char *why = combined(o);
	struct caches c = cache_sizes(o, img);
	uint64_t cs = img->cluster_size;
	char buf[160];

	if (!why && (c.entry < 512 || c.entry > cs || (c.entry & (c.entry - 1)))) {
		snprintf(buf, sizeof(buf), "L2 cache entry size must be a power of two between 512 and the cluster size (%" PRIu64 ")",
			 cs);
		why = buf;
	}
	if (!why && c.l2 / c.entry > INT_MAX)
		why = "L2 cache size too big";
	if (!why && c.refcount / cs > INT_MAX)
		why = "Refcount cache size too big";
	if (!why && o->clean && size_of(o->clean) > UINT_MAX)
		why = "Cache clean interval too big";
	if (!why && o->lazy && on_off(o->lazy) == 1 && img->hdr.version < 3)
		why = "Lazy refcounts require a qcow2 image with at least qemu 1.1 compatibility level";
	if (!why && o->encrypt && !method) {
		snprintf(buf, sizeof(buf), "No encryption in image header, but options specified format '%.40s'",
			 o->encrypt);
		why = buf;
	} else if (!why && o->encrypt && has && strcmp(o->encrypt, has)) {
		snprintf(buf, sizeof(buf), "Header reported '%s' encryption format but options specify '%.40s'",
			 has, o->encrypt);
		why = buf;
	}
	if (!why && method && o->key && strcmp(cmd, "info") != 0 &&
	    !object_secret_given(o->key)) {
		snprintf(buf, sizeof(buf), "No secret with id '%.60s'", o->key);
		why = buf;
	}
	return why ? q2e_error_set(err, Q2E_EUSAGE,
				   "'%s': --image-opts: %s, as QEMU says",
				   img->path, why)
		   : 0;
}

int open_input(const char *cmd, int i, const char *path, bool by_name,
	       struct q2e_image **img, struct q2e_error *err)
{
	int ret;

	image_use(cmd, i);
	ret = q2e_image_open(path, img, err);
	image_used(cmd, by_name);
	if (ret == 0 && given && i < nopts) {
		ret = image_fits(cmd, i, *img, err);
		if (ret < 0) {
			q2e_image_close(*img);
			*img = NULL;
		}
	}
	return ret;
}

struct pair {
	const char *key, *value;
};

/* QEMU's words for a boolean: 1 on, 0 off, -1 neither. */
static int on_off(const char *v)
{
	if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true") ||
	    !strcmp(v, "y"))
		return 1;
	if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false") ||
	    !strcmp(v, "n"))
		return 0;
	return -1;
}

bool one_of(const char *v, const char *const *words)
{
	for (; *words; words++)
		if (strcmp(v, *words) == 0)
			return true;
	return false;
}

/*
 * What the options QEMU takes, and qcow2elf with them, may be: "bool",
 * "number" (decimal), "size" (a number, with qemu-img's suffixes), "name"
 * (not empty), "id" (QEMU's identifier), a list of words, or NULL for any
 * value.
 */
struct option_kind {
	const char *key;
	const char *kind;
	const char *const *words;
};

static const char *const discard_words[] = { "ignore", "off", "unmap", "on",
					     NULL };
static const char *const zeroes_words[] = { "off", "on", "unmap", NULL };
static const char *const aio_words[] = { "threads", "native", "io_uring",
					 NULL };
static const char *const locking_words[] = { "on", "off", "auto", NULL };
static const char *const overlap_words[] = { "none", "constant", "cached",
					     "all", NULL };

static const struct option_kind kinds[] = {
	{ "driver", "name", NULL },
	{ "file.driver", "name", NULL },
	{ "file.filename", NULL, NULL },
	{ "force-share", "bool", NULL },
	{ "file.locking", "words", locking_words },
	{ "read-only", "bool", NULL },
	{ "auto-read-only", "bool", NULL },
	{ "cache.direct", "bool", NULL },
	{ "cache.no-flush", "bool", NULL },
	{ "file.cache.direct", "bool", NULL },
	{ "file.cache.no-flush", "bool", NULL },
	{ "discard", "words", discard_words },
	{ "detect-zeroes", "words", zeroes_words },
	{ "file.aio", "words", aio_words },
	{ "file.aio-max-batch", "number", NULL },
	{ "file.x-check-cache-dropped", "bool", NULL },
	{ "node-name", "id", NULL },
	{ "file.node-name", "id", NULL },
	{ "lazy-refcounts", "bool", NULL },
	{ "pass-discard-request", "bool", NULL },
	{ "pass-discard-snapshot", "bool", NULL },
	{ "pass-discard-other", "bool", NULL },
	{ "overlap-check", "words", overlap_words },
	{ "cache-size", "size", NULL },
	{ "l2-cache-size", "size", NULL },
	{ "l2-cache-entry-size", "size", NULL },
	{ "refcount-cache-size", "size", NULL },
	{ "cache-clean-interval", "number", NULL },
};

static const struct option_kind *kind_of(const char *key)
{
	static const struct option_kind encrypt = { "encrypt.*", NULL, NULL };

	if (strncmp(key, "encrypt.", 8) == 0)
		return &encrypt;	/* decryption: none here */
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(key, kinds[i].key) == 0)
			return &kinds[i];
	return NULL;
}


static bool value_fits(const struct option_kind *k, const char *v)
{
	uint64_t n;

	if (!k->kind)
		return true;
	if (!strcmp(k->kind, "bool"))
		return on_off(v) >= 0;
	if (!strcmp(k->kind, "number"))
		return *v && strspn(v, "0123456789") == strlen(v);
	if (!strcmp(k->kind, "size"))
		return parse_size(v, &n) == 0;
	if (!strcmp(k->kind, "id"))
		return qemu_id_wellformed(v, strlen(v));
	if (!strcmp(k->kind, "name"))
		return *v != '\0';
	return one_of(v, k->words);
}

/*
 * The next element of *P, split in place into *KEY and *VALUE (NULL for
 * a bare word), ",," in the value made ","; *P moves past it.  False at
 * the end.
 */
static bool next_pair(char **p, char **key, char **value)
{
	char *s = *p, *out;

	if (!*s)
		return false;
	*key = s;
	s += strcspn(s, "=,");
	if (*s != '=') {		/* a bare word */
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

/* SPEC's elements into PAIRS (room for one a comma and one more), in
 * place, bare words made KEY=on (noKEY: KEY=off) as QEMU takes them; 0 or
 * a usage error's status. */
static int split(const char *cmd, char *spec, struct pair *pairs, int *n)
{
	char *p = spec, *key, *value;

	*n = 0;
	while (next_pair(&p, &key, &value)) {
		if (!*key)
			return usage_error(cmd, "--image-opts: an empty option: %s",
					   HINT);
		if (!value && *n == 0)	/* QEMU's implied "file" */
			return usage_error(cmd, "--image-opts: '%s' is no KEY=VALUE: " HINT,
					   key);
		if (!value && strncmp(key, "no", 2) == 0) {
			key += 2;	/* as QEMU: any bare "noX" is X=off */
			value = "off";
		}
		pairs[(*n)++] = (struct pair){ key, value ? value : "on" };
	}
	return 0;
}

/* The value of KEY, the last given, or NULL. */
static const char *last(const struct pair *pairs, int n, const char *key)
{
	while (n-- > 0)
		if (strcmp(pairs[n].key, key) == 0)
			return pairs[n].value;
	return NULL;
}

/* Every option known and its value one QEMU takes. */
static int check_pairs(const char *cmd, const struct pair *pairs, int n)
{
	char both[128];

	for (int i = 0; i < n; i++) {
		const struct option_kind *k = kind_of(pairs[i].key);

		if (!k)
			return usage_error(cmd, "--image-opts: qcow2elf does not take the option '%s'",
					   pairs[i].key);
		if (last(pairs, n, pairs[i].key) != pairs[i].value ||
		    value_fits(k, pairs[i].value))
			continue;
		snprintf(both, sizeof(both), "%s=%s", pairs[i].key,
			 pairs[i].value);
		return usage_error(cmd, "--image-opts: QEMU takes no '%s'",
				   both);
	}
	return 0;
}

/* An option's value as on or off: DEFAULT_ON when it is not given. */
static bool is_on(const struct pair *pairs, int n, const char *key,
		  bool default_on)
{
	const char *v = last(pairs, n, key);

	return v ? on_off(v) == 1 : default_on;
}

/* What the options choose: the file, the format, QEMU's locks. */
static int choose(const char *cmd, const struct pair *pairs, int n,
		  const char **path, struct image_opt *o)
{
	const char *driver = last(pairs, n, "driver");
	const char *file_driver = last(pairs, n, "file.driver");
	const char *share = last(pairs, n, "force-share");
	const char *locking = last(pairs, n, "file.locking");
	const char *read_only = last(pairs, n, "read-only");

	if (driver && strcmp(driver, "qcow2") != 0)
		return usage_error(cmd, "reads qcow2 images and their dumps only, not driver=%s",
				   driver);
	if (file_driver && strcmp(file_driver, "file") != 0)
		return usage_error(cmd, "--image-opts: reads a file (file.driver=file), not file.driver=%s",
				   file_driver);
	*path = last(pairs, n, "file.filename");
	if (!*path || !**path)
		return usage_error(cmd, "--image-opts: names no file: %s", HINT);
	/* qemu-img's rules: -U forces force-share=on, which wants a
	 * read-only image. */
	if (forced_share() && share && strcmp(share, "on") != 0)
		return usage_error(cmd, "%s",
				   "--force-share/-U conflicts with image options, as qemu-img says");
	if ((forced_share() || (share && on_off(share) == 1)) && read_only &&
	    on_off(read_only) == 0)
		return usage_error(cmd, "%s",
				   "force-share=on can only be used with read-only images, as qemu-img says");
	o->qcow2 = driver != NULL;
	o->aio = last(pairs, n, "file.aio");
	o->direct = is_on(pairs, n, "file.cache.direct",
			  is_on(pairs, n, "cache.direct", false));
	o->zeroes = last(pairs, n, "detect-zeroes");
	o->discard = last(pairs, n, "discard");
	o->cache = last(pairs, n, "cache-size");
	o->l2 = last(pairs, n, "l2-cache-size");
	o->refcount = last(pairs, n, "refcount-cache-size");
	o->entry_size = last(pairs, n, "l2-cache-entry-size");
	o->clean = last(pairs, n, "cache-clean-interval");
	o->lazy = last(pairs, n, "lazy-refcounts");
	o->encrypt = last(pairs, n, "encrypt.format");
	o->key = last(pairs, n, "encrypt.key-secret");
	o->share_backing = share && on_off(share) == 1;
	o->share = o->share_backing || (locking && strcmp(locking, "off") == 0);
	return 0;
}

/* One option string, ARG, made its file's name in place. */
static int image_arg(const char *cmd, char **arg, struct image_opt *o)
{
	size_t room = 1;
	struct pair *pairs;
	const char *path = NULL;
	int np, ret;

	for (const char *c = *arg; *c; c++)
		room += *c == ',';
	pairs = calloc(room, sizeof(*pairs));
	if (!pairs)
		return usage_error(cmd, "%s", "out of memory");
	ret = split(cmd, *arg, pairs, &np);
	if (!ret)
		ret = check_pairs(cmd, pairs, np);
	if (!ret)
		ret = choose(cmd, pairs, np, &path, o);
	if (!ret)
		*arg = (char *)path;
	free(pairs);
	return ret;
}

int image_args(const char *cmd, char **args, int n)
{
	if (!given)
		return 0;
	free(opts);
	nopts = 0;
	opts = calloc((size_t)n + 1, sizeof(*opts));
	if (!opts)
		return usage_error(cmd, "%s", "out of memory");
	for (int i = 0; i < n; i++) {
		int ret = image_arg(cmd, &args[i], &opts[i]);

		if (ret)
			return ret;
		nopts = i + 1;
	}
	return 0;
}

/* The length of the element P starts: to a comma, ",," inside it. */
size_t qemu_opt_len(const char *p)
{
	size_t n = 0;

	while (p[n] && !(p[n] == ',' && p[n + 1] != ','))
		n += p[n] == ',' ? 2 : 1;
	return n;
}

/* QEMU's id_wellformed(): a letter, then letters, digits, '-', '.', '_'. */
bool qemu_id_wellformed(const char *id, size_t n)
{
	if (!n || !((id[0] | 0x20) >= 'a' && (id[0] | 0x20) <= 'z'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._", id[i]))
			return false;
	return true;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `info`: everything the model knows about an image, under the spec's field
 * names for the header and qemu-img's key names where qemu-img shows the
 * same fact (snapshots, bitmaps, format-specific flags).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "qcow2elf/views.h"

static void header(struct q2e_out *o, const struct qcow2_header *h)
{
	q2e_out_object(o, "header");
	q2e_out_hex(o, "magic", h->magic);
	q2e_out_uint(o, "version", h->version);
	q2e_out_hex(o, "backing_file_offset", h->backing_file_offset);
	q2e_out_uint(o, "backing_file_size", h->backing_file_size);
	q2e_out_uint(o, "cluster_bits", h->cluster_bits);
	q2e_out_uint(o, "size", h->size);
	q2e_out_uint(o, "crypt_method", h->crypt_method);
	q2e_out_uint(o, "l1_size", h->l1_size);
	q2e_out_hex(o, "l1_table_offset", h->l1_table_offset);
	q2e_out_hex(o, "refcount_table_offset", h->refcount_table_offset);
	q2e_out_uint(o, "refcount_table_clusters", h->refcount_table_clusters);
	q2e_out_uint(o, "nb_snapshots", h->nb_snapshots);
	q2e_out_hex(o, "snapshots_offset", h->snapshots_offset);
	if (h->version >= 3) {
		q2e_out_hex(o, "incompatible_features", h->incompatible_features);
		q2e_out_hex(o, "compatible_features", h->compatible_features);
		q2e_out_hex(o, "autoclear_features", h->autoclear_features);
		q2e_out_uint(o, "refcount_order", h->refcount_order);
		q2e_out_uint(o, "header_length", h->header_length);
		if (h->has_compression_type)
			q2e_out_uint(o, "compression_type", h->compression_type);
	}
	q2e_out_end(o);
}

/* The bits that are set, by name; an unnamed bit as "bit N". */
static void feature_bits(struct q2e_out *o, const struct q2e_image *img)
{
	const uint64_t v[3] = { img->hdr.incompatible_features,
				img->hdr.compatible_features,
				img->hdr.autoclear_features };

	q2e_out_object(o, "features");
	for (int t = QCOW2_FEAT_INCOMPATIBLE; t <= QCOW2_FEAT_AUTOCLEAR; t++) {
		q2e_out_array(o, qcow2_feature_type_name(t));
		for (unsigned bit = 0; bit < 64; bit++) {
			const char *name;
			char unnamed[16];

			if (!(v[t] & (1ULL << bit)))
				continue;
			name = q2e_image_feature_name(img, t, bit);
			if (!name) {
				snprintf(unnamed, sizeof(unnamed), "bit %u", bit);
				name = unnamed;
			}
			q2e_out_str(o, NULL, name);
		}
		q2e_out_end(o);
	}
	q2e_out_end(o);
}

static void extensions(struct q2e_out *o, const struct q2e_image *img)
{
	char magic[16];

	q2e_out_array(o, "extensions");
	for (size_t i = 0; i < img->nexts; i++) {
		const struct q2e_extension *e = &img->exts[i];
		const char *name = qcow2_ext_name(e->magic);

		snprintf(magic, sizeof(magic), "0x%08x", e->magic);
		q2e_out_object(o, NULL);
		q2e_out_str(o, "magic", magic);
		q2e_out_str(o, "name", name ? name : "unknown");
		q2e_out_hex(o, "offset", e->offset);
		q2e_out_uint(o, "length", e->length);
		switch (e->magic) {
		case QCOW2_EXT_BACKING_FORMAT:
		case QCOW2_EXT_DATA_FILE:
			q2e_out_strn(o, "value", (const char *)e->data,
				     e->avail);
			break;
		case QCOW2_EXT_FEATURE_TABLE:
			q2e_out_array(o, "entries");
			for (size_t k = 0; k < img->nfeatures; k++) {
				q2e_out_object(o, NULL);
				q2e_out_str(o, "type", qcow2_feature_type_name(
						       img->features[k].type));
				q2e_out_uint(o, "bit", img->features[k].bit);
				q2e_out_str(o, "name", img->features[k].name);
				q2e_out_end(o);
			}
			q2e_out_end(o);
			break;
		case QCOW2_EXT_BITMAPS:
			q2e_out_uint(o, "nb_bitmaps", img->bitmaps_ext.nb_bitmaps);
			q2e_out_uint(o, "bitmap_directory_size",
				     img->bitmaps_ext.bitmap_directory_size);
			q2e_out_hex(o, "bitmap_directory_offset",
				    img->bitmaps_ext.bitmap_directory_offset);
			break;
		case QCOW2_EXT_CRYPTO:
			q2e_out_hex(o, "offset_of_area", img->crypto_ext.offset);
			q2e_out_uint(o, "length_of_area", img->crypto_ext.length);
			break;
		default:
			q2e_out_bytes(o, "data", e->data, e->avail);
			break;
		}
		q2e_out_end(o);
	}
	q2e_out_end(o);
}

static void snapshots(struct q2e_out *o, const struct q2e_image *img)
{
	q2e_out_array(o, "snapshots");
	for (size_t i = 0; i < img->nsnapshots; i++) {
		const struct q2e_snapshot *s = &img->snapshots[i];
		const struct qcow2_snapshot *e = &s->entry;
		uint64_t vm_state = e->has_vm_state_size_large
					    ? e->vm_state_size_large
					    : e->vm_state_size;

		/* As qemu-img info shows them: QEMUSnapshotInfo holds an ID
		 * of up to 127 bytes and a name of up to 255 (the entry's
		 * are up to 65,535 each; diff and gdb keep them whole). */
		q2e_out_object(o, NULL);
		q2e_out_strn(o, "id", s->id, strnlen(s->id, 127));
		q2e_out_strn(o, "name", s->name, strnlen(s->name, 255));
		q2e_out_uint(o, "date-sec", e->date_sec);
		q2e_out_uint(o, "date-nsec", e->date_nsec);
		q2e_out_uint(o, "vm-clock-sec", e->vm_clock_nsec / 1000000000);
		q2e_out_uint(o, "vm-clock-nsec", e->vm_clock_nsec % 1000000000);
		q2e_out_uint(o, "vm-state-size", vm_state);
		if (e->has_disk_size)
			q2e_out_uint(o, "disk-size", e->disk_size);
		if (e->has_icount && e->icount != UINT64_MAX)
			q2e_out_uint(o, "icount", e->icount);
		q2e_out_hex(o, "l1-table-offset", e->l1_table_offset);
		q2e_out_uint(o, "l1-size", e->l1_size);
		q2e_out_uint(o, "extra-data-size", e->extra_data_size);
		q2e_out_hex(o, "entry-offset", s->offset);
		q2e_out_end(o);
	}
	q2e_out_end(o);
}

/*
 * "bitmaps" are the ones QEMU uses, as in qemu-img info; those it ignores,
 * their autoclear bit being clear, are listed apart, as "ignored-bitmaps".
 */
static void bitmaps(struct q2e_out *o, const struct q2e_image *img)
{
	q2e_out_array(o, "bitmaps");
	if (img->bitmaps_ignored) {
		q2e_out_end(o);
		q2e_out_array(o, "ignored-bitmaps");
	}
	for (size_t i = 0; i < img->nbitmaps; i++) {
		const struct q2e_bitmap *b = &img->bitmaps[i];
		const struct qcow2_bitmap_entry *e = &b->entry;
		uint64_t serialized = 0, ones = 0;

		for (uint64_t j = 0; j < b->ntable; j++) {
			struct qcow2_bitmap_table_entry t;

			qcow2_bitmap_table_entry_decode(b->table[j], &t);
			serialized += t.kind == QCOW2_BITMAP_SERIALIZED;
			ones += t.kind == QCOW2_BITMAP_ALL_ONES;
		}
		q2e_out_object(o, NULL);
		q2e_out_str(o, "name", b->name);
		q2e_out_array(o, "flags");
		if (e->flags & QCOW2_BITMAP_IN_USE)
			q2e_out_str(o, NULL, "in-use");
		if (e->flags & QCOW2_BITMAP_AUTO)
			q2e_out_str(o, NULL, "auto");
		if (e->flags & QCOW2_BITMAP_EXTRA_DATA_COMPATIBLE)
			q2e_out_str(o, NULL, "extra-data-compatible");
		q2e_out_end(o);
		q2e_out_uint(o, "granularity",
			     e->granularity_bits < 64 ? 1ULL << e->granularity_bits
						      : 0);
		q2e_out_uint(o, "type", e->type);
		q2e_out_hex(o, "table-offset", e->bitmap_table_offset);
		q2e_out_uint(o, "table-size", e->bitmap_table_size);
		q2e_out_uint(o, "serialized-clusters", serialized);
		q2e_out_uint(o, "all-ones-clusters", ones);
		q2e_out_uint(o, "extra-data-size", e->extra_data_size);
		q2e_out_hex(o, "entry-offset", b->offset);
		q2e_out_end(o);
	}
	q2e_out_end(o);
}

/* QEMU's name of a LUKS cipher and key size ("aes-256"), or NULL. */
static const char *luks_cipher_alg(const char *name, const char *mode,
				   uint32_t key_bytes)
{
	static const struct {
		const char *name;
		uint32_t key_bytes;
		const char *alg;
	} map[] = {
		{ "aes", 16, "aes-128" },	  { "aes", 24, "aes-192" },
		{ "aes", 32, "aes-256" },	  { "cast5", 16, "cast5-128" },
		{ "serpent", 16, "serpent-128" }, { "serpent", 24, "serpent-192" },
		{ "serpent", 32, "serpent-256" }, { "twofish", 16, "twofish-128" },
		{ "twofish", 24, "twofish-192" }, { "twofish", 32, "twofish-256" },
		{ "sm4", 16, "sm4" },
	};

	if (strncmp(mode, "xts-", 4) == 0) {	/* two keys of half the size */
		if (key_bytes % 2)
			return NULL;
		key_bytes /= 2;
	}
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].name, name) == 0 &&
		    map[i].key_bytes == key_bytes)
			return map[i].alg;
	return NULL;
}

/*
 * "encrypt", with the keys of qemu-img's format-specific encrypt object
 * (QEMU's qcrypto_block_luks_get_info() splits cipher_mode
 * "xts-plain64" or "cbc-essiv:sha256" into cipher, IV generator and its
 * hash), then the LUKS header's own fields under names qemu-img lacks.
 */
static void encrypt(struct q2e_out *o, const struct q2e_image *img)
{
	const struct qcow2_luks_header *l = &img->luks;

	if (img->hdr.crypt_method == QCOW2_CRYPT_NONE)
		return;
	q2e_out_bool(o, "encrypted", true);
	q2e_out_object(o, "encrypt");
	q2e_out_str(o, "format",
		    img->hdr.crypt_method == QCOW2_CRYPT_AES    ? "aes"
		    : img->hdr.crypt_method == QCOW2_CRYPT_LUKS ? "luks"
								: "unknown");
	if (img->has_luks) {
		const char *alg = luks_cipher_alg(l->cipher_name, l->cipher_mode,
						  l->key_bytes);
		const char *dash = strchr(l->cipher_mode, '-');
		const char *colon = dash ? strchr(dash, ':') : NULL;

		if (alg)
			q2e_out_str(o, "cipher-alg", alg);
		q2e_out_strn(o, "cipher-mode", l->cipher_mode,
			     dash ? (size_t)(dash - l->cipher_mode)
				  : strlen(l->cipher_mode));
		if (dash)
			q2e_out_strn(o, "ivgen-alg", dash + 1,
				     colon ? (size_t)(colon - dash - 1)
					   : strlen(dash + 1));
		if (colon && colon - dash - 1 == 5 &&
		    strncmp(dash + 1, "essiv", 5) == 0)
			q2e_out_str(o, "ivgen-hash-alg", colon + 1);
		q2e_out_str(o, "hash-alg", l->hash_spec);
		q2e_out_uint(o, "payload-offset", l->payload_offset * 512ULL);
		q2e_out_uint(o, "master-key-iters", l->mk_digest_iterations);
		q2e_out_str(o, "uuid", l->uuid);
		q2e_out_array(o, "slots");
		for (unsigned i = 0; i < QCOW2_LUKS_SLOTS; i++) {
			const struct qcow2_luks_slot *s = &l->slots[i];
			bool active = s->active == QCOW2_LUKS_SLOT_ENABLED;

			q2e_out_object(o, NULL);
			q2e_out_bool(o, "active", active);
			if (active) {
				q2e_out_uint(o, "iters", s->iterations);
				q2e_out_uint(o, "stripes", s->stripes);
			}
			q2e_out_uint(o, "key-offset", s->key_offset * 512ULL);
			q2e_out_end(o);
		}
		q2e_out_end(o);
		q2e_out_uint(o, "luks-version", l->version);
		q2e_out_str(o, "cipher-name", l->cipher_name);
		q2e_out_str(o, "cipher-mode-spec", l->cipher_mode);
		q2e_out_str(o, "hash-spec", l->hash_spec);
		q2e_out_uint(o, "key-bytes", l->key_bytes);
	}
	if (img->has_crypto_ext) {
		q2e_out_hex(o, "area-offset", img->crypto_ext.offset);
		q2e_out_uint(o, "area-length", img->crypto_ext.length);
	}
	q2e_out_end(o);
}

static void region_summary(struct q2e_out *o, const struct q2e_image *img)
{
	uint64_t count[Q2E_REGION_KIND_COUNT] = { 0 };
	uint64_t bytes[Q2E_REGION_KIND_COUNT] = { 0 };

	for (size_t i = 0; i < img->nregions; i++) {
		count[img->regions[i].kind]++;
		bytes[img->regions[i].kind] += img->regions[i].size;
	}
	q2e_out_array(o, "regions");
	for (int k = 0; k < Q2E_REGION_KIND_COUNT; k++) {
		if (!count[k])
			continue;
		q2e_out_object(o, NULL);
		q2e_out_str(o, "kind", q2e_region_kind_name(k));
		q2e_out_uint(o, "count", count[k]);
		q2e_out_uint(o, "bytes", bytes[k]);
		q2e_out_end(o);
	}
	q2e_out_end(o);
}

static void problems(struct q2e_out *o, const struct q2e_image *img)
{
	q2e_out_array(o, "problems");
	for (size_t i = 0; i < img->nproblems; i++) {
		const struct q2e_problem *p = &img->problems[i];

		q2e_out_object(o, NULL);
		q2e_out_str(o, "severity", q2e_severity_name(p->severity));
		q2e_out_str(o, "structure", p->structure);
		q2e_out_hex(o, "offset", p->offset);
		q2e_out_str(o, "message", p->message);
		q2e_out_end(o);
	}
	q2e_out_end(o);
}

/* IMG's object, for info and each image of info --backing-chain. */
static void info_object(struct q2e_image *img, struct q2e_out *o)
{
	const struct qcow2_header *h = &img->hdr;
	const struct q2e_dump_meta *dm = q2e_image_dump_meta(img);

	q2e_out_object(o, NULL);
	q2e_out_str(o, "filename", img->path);
	q2e_out_str(o, "format", "qcow2");
	q2e_out_str(o, "source", dm ? "dump" : "image");
	if (dm)
		q2e_out_str(o, "image-filename", dm->image_name);
	q2e_out_uint(o, "file-size", img->file_size);
	q2e_out_uint(o, "virtual-size", q2e_image_virtual_size(img));
	q2e_out_uint(o, "cluster-size", img->cluster_size);
	q2e_out_str(o, "compat", h->version >= 3 ? "1.1" : "0.10");
	if (img->refcount_bits)
		q2e_out_uint(o, "refcount-bits", img->refcount_bits);
	/* As qemu-img: the compression type always, feature flags for v3. */
	q2e_out_str(o, "compression-type",
		    h->compression_type == QCOW2_COMPRESSION_ZLIB   ? "zlib"
		    : h->compression_type == QCOW2_COMPRESSION_ZSTD ? "zstd"
								    : "unknown");
	if (h->version >= 3) {
		q2e_out_bool(o, "lazy-refcounts",
			     h->compatible_features &
				     QCOW2_COMPAT_LAZY_REFCOUNTS);
		q2e_out_bool(o, "extended-l2", img->l2.extended);
		q2e_out_bool(o, "corrupt",
			     h->incompatible_features & QCOW2_INCOMPAT_CORRUPT);
	}
	q2e_out_bool(o, "dirty-flag",
		     h->incompatible_features & QCOW2_INCOMPAT_DIRTY);
	if (q2e_image_backing(img))
		q2e_out_str(o, "backing-filename", img->backing_file);
	/* Its format only with a backing file, as block/qapi.c gives it. */
	if (q2e_image_backing(img) && q2e_image_backing_format(img))
		q2e_out_str(o, "backing-filename-format", img->backing_format);
	/* As qemu-img: the name where the extension gives one, and whether
	 * the data file is raw wherever the incompatible bit says there is
	 * one, named or not. */
	if (img->data_file)
		q2e_out_str(o, "data-file", img->data_file);
	if (h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE)
		q2e_out_bool(o, "data-file-raw",
			     h->autoclear_features &
				     QCOW2_AUTOCLEAR_DATA_FILE_RAW);
	/* The same rule check's exit status follows (qemu_rules.c). */
	const char *refusal = q2e_qemu_plain_open_refusal(img);

	q2e_out_bool(o, "qemu-opens", !refusal);
	if (refusal)
		q2e_out_str(o, "qemu-refuses", refusal);
	encrypt(o, img);
	header(o, h);
	feature_bits(o, img);
	extensions(o, img);
	snapshots(o, img);
	/* Not listed one by one: they are all the same empty entry. */
	if (img->nsnapshots_past_end)
		q2e_out_uint(o, "snapshots-past-end", img->nsnapshots_past_end);
	bitmaps(o, img);
	region_summary(o, img);
	problems(o, img);
	q2e_out_end(o);
}

int q2e_view_info(struct q2e_image *img, struct q2e_out *o,
		  struct q2e_error *err)
{
	(void)err;
	info_object(img, o);
	return 0;
}

int q2e_view_info_chain(struct q2e_image *img, struct q2e_out *o,
			struct q2e_error *err)
{
	struct q2e_chain *chain;
	int ret = q2e_chain_open_info(img, &chain, err);

	if (ret < 0)
		return ret;
	q2e_out_array(o, NULL);
	for (size_t i = 0; i < chain->nlayers; i++) {
		const struct q2e_layer *l = &chain->layers[i];

		if (l->format == Q2E_LAYER_QCOW2) {
			info_object(l->img, o);
			continue;
		}
		q2e_out_object(o, NULL);
		q2e_out_str(o, "filename", l->path);
		if (l->format == Q2E_LAYER_OTHER) {
			/* Not read: what it is, no more. */
			q2e_out_str(o, "format", l->other_format);
			q2e_out_uint(o, "file-size", l->file_size);
		} else {
			q2e_out_str(o, "format", "raw");
			q2e_out_uint(o, "file-size", l->file_size);
			q2e_out_uint(o, "virtual-size", l->size);
		}
		q2e_out_end(o);
	}
	q2e_out_end(o);
	q2e_chain_close(chain);
	return 0;
}

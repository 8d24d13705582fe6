/* Image metadata and garbage collection of the content store.
 *
 * <root>/meta/images.json (root is <--root>/supervisor) maps an image name
 * (a normalised reference, "127.0.0.1:5000/test/simple:1") to its target
 * (media type, digest and size of the manifest or index that was pulled),
 * the time of the pull (RFC 3339) and the labels of the image config. Every
 * change takes an flock on meta/images.lock, loads the file, changes it
 * and writes it back atomically (json_write_atomic), as the snapshotter
 * does.
 *
 * Removing a name leaves the content alone; image_store_gc() deletes the
 * blobs that no image's target reaches (index → manifests → config and
 * layers), except those with an active ingest. Snapshots are not part of
 * this: committed snapshots stay until they are removed. */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "content-store.h"
#include "err.h"
#include "image-manifest.h"

struct image_store;

struct image_record {
        char *name;
        char *media_type;               /* of the target */
        char digest[CONTENT_DIGEST_MAX];
        int64_t size;
        char *created;                  /* RFC 3339 */
        char **labels;                  /* key, value, ..., NULL; never NULL */
};

/* root is <--root>/supervisor; cs is borrowed and must outlive the store. */
int image_store_open(const char *root, struct content_store *cs, struct image_store **ret, struct berr *e);
void image_store_free(struct image_store *is);
void image_record_done(struct image_record *r);
void image_records_free(struct image_record *v, size_t n);

/* Records name → the target (a manifest or index in the content store; its
 * size is taken from there), created now, with the labels of the image
 * config config_digest (NULL: none). An existing record is replaced. */
int image_store_put(struct image_store *is, const char *name, const char *media_type, const char *digest,
                    const char *config_digest, struct berr *e);
/* -ENOENT when there is no image of that name. */
int image_store_get(struct image_store *is, const char *name, struct image_record *ret, struct berr *e);
/* All images, sorted by name. */
int image_store_list(struct image_store *is, struct image_record **ret, size_t *ret_n, struct berr *e);
/* dst gets src's record (target, created, labels); an existing dst is replaced. */
int image_store_tag(struct image_store *is, const char *src, const char *dst, struct berr *e);
/* Removes the name only; the content stays until image_store_gc(). */
int image_store_remove(struct image_store *is, const char *name, struct berr *e);

/* The image manifest of rec for platform: the target itself, or the index's
 * manifest for platform, or (when that is not in the store) the first of
 * the index's manifests that is. */
int image_store_manifest(struct image_store *is, const struct image_record *rec, const struct image_platform *platform,
                         struct image_manifest *ret, char ret_digest[CONTENT_DIGEST_MAX], struct berr *e);
/* Bytes of the target, the manifest for platform, its config and layers. */
int image_store_size(struct image_store *is, const struct image_record *rec, const struct image_platform *platform,
                     uint64_t *ret, struct berr *e);
/* {name, target, manifest, config, layers, diff_ids, os, architecture,
 * [variant], created, labels, size} of the image name for platform. */
int image_store_inspect(struct image_store *is, const char *name, const struct image_platform *platform,
                        json_t **ret, struct berr *e);

/* Every digest reachable from the images' targets, sorted, NULL-terminated
 * (free with strv_free). Blobs that are not in the store are listed (when a
 * descriptor names them) but not followed. */
int image_store_reachable(struct image_store *is, char ***ret, struct berr *e);
/* The digests of the image configs in the store that an image reaches
 * (every platform of an index), NULL-terminated (free with strv_free). */
int image_store_configs(struct image_store *is, char ***ret, struct berr *e);
/* Deletes every blob not reachable from an image, except a blob whose
 * ingest is being written (its writer holds the ingest's lock); ingests are
 * not touched. ret_removed (sorted, NULL-terminated, may be NULL) gets the
 * digests deleted. Runs under the metadata lock, so names do not change
 * meanwhile. */
int image_store_gc(struct image_store *is, char ***ret_removed, struct berr *e);

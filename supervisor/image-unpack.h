/* Unpacking a pulled image into committed overlay snapshots, one per layer,
 * keyed by chain id (the OCI image spec's ChainID: the first layer's diff
 * id, then sha256("<parent chain id> <diff id>")). A layer whose chain id
 * is already committed is not applied again: images share their layers.
 * Each layer's diff id is verified against the config's rootfs.diff_ids. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "content-store.h"
#include "err.h"
#include "image-manifest.h"
#include "snapshot-overlay.h"

struct image_unpack_result {
        char (*chain_ids)[CONTENT_DIGEST_MAX];
        size_t n_layers;
        size_t n_applied;       /* layers applied now (not already there) */
};

struct image_unpack_options {
        bool allow_devices;
};

/* manifest_digest names an image manifest in cs. */
int image_unpack(struct content_store *cs, struct snapshot_overlay *sn, const char *manifest_digest,
                 const struct image_unpack_options *o, struct image_unpack_result *ret, struct berr *e);
void image_unpack_result_done(struct image_unpack_result *r);

/* The steps of image_unpack, for a pull that unpacks as layers arrive. */

/* The config's rootfs.diff_ids (the config must be in cs), checked to be
 * one per layer of m; free *ret with free(). */
int image_unpack_diff_ids(struct content_store *cs, const struct image_manifest *m,
                          char (**ret)[CONTENT_DIGEST_MAX], struct berr *e);
/* Layer (in cs) with diff_id on the snapshot parent_chain (NULL for the
 * first layer): ret_chain gets its chain id; the committed snapshot of that
 * name is made unless it is there. Returns 1 when the layer was applied, 0
 * when its snapshot was there already. */
int image_unpack_layer(struct content_store *cs, struct snapshot_overlay *sn, const struct image_descriptor *layer,
                       const char *diff_id, const char *parent_chain, const struct image_unpack_options *o,
                       char ret_chain[CONTENT_DIGEST_MAX], struct berr *e);

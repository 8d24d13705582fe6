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
#include "snapshot-overlay.h"

struct image_unpack_result {
        char (*chain_ids)[CONTENT_DIGEST_MAX];
        size_t n_layers;
        size_t n_applied;       /* layers applied now (not already there) */
};

struct image_unpack_options {
        bool allow_devices;
};

/* sha256("<parent> <diff_id>") as "sha256:<hex>"; parent NULL: diff_id. */
int image_chain_id(const char *parent, const char *diff_id, char ret[CONTENT_DIGEST_MAX]);

/* manifest_digest names an image manifest in cs. */
int image_unpack(struct content_store *cs, struct snapshot_overlay *sn, const char *manifest_digest,
                 const struct image_unpack_options *o, struct image_unpack_result *ret, struct berr *e);
void image_unpack_result_done(struct image_unpack_result *r);

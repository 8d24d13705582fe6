/* Pulling an image into the content store: the manifest (through an index
 * when the reference names one, choosing the platform), then the config
 * and the layers. Every blob is verified (size and digest) before it is
 * content; what is already in the store is not downloaded again; a blob
 * whose download broke off is resumed on the next pull. The manifest (and
 * index) are stored last, so a stored manifest's blobs are all present. */
#pragma once

#include <stddef.h>

#include "content-store.h"
#include "err.h"
#include "image-manifest.h"
#include "image-reference.h"
#include "registry-client.h"

struct image_pull_result {
        char index_digest[CONTENT_DIGEST_MAX];    /* "" when the reference named a manifest */
        char *index_media_type;                    /* NULL when the reference named a manifest */
        char manifest_digest[CONTENT_DIGEST_MAX];
        char *manifest_media_type;
        char config_digest[CONTENT_DIGEST_MAX];
        char (*layers)[CONTENT_DIGEST_MAX];
        size_t n_layers;
        size_t n_fetched;                          /* blobs downloaded (not already present) */
};

int image_pull(struct registry_client *rc, struct content_store *cs, const struct image_ref *ref,
               const struct image_platform *platform, struct image_pull_result *ret, struct berr *e);
void image_pull_result_done(struct image_pull_result *r);

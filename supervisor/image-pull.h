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
#include "image-unpack.h"
#include "registry-client.h"
#include "snapshot-overlay.h"

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

/* ---- pulls with progress, in parallel, unpacking as layers arrive ---- */

enum image_pull_status {
        IMAGE_PULL_WAITING,      /* queued */
        IMAGE_PULL_DOWNLOADING,  /* current of total bytes */
        IMAGE_PULL_VERIFYING,    /* all bytes in; checking size and digest */
        IMAGE_PULL_DOWNLOADED,   /* verified and stored */
        IMAGE_PULL_EXTRACTING,   /* being applied to its snapshot */
        IMAGE_PULL_DONE,         /* applied, or its chain id was already there */
        IMAGE_PULL_EXISTS,       /* already in the content store: not downloaded */
        IMAGE_PULL_FAILED,
};

/* Called for every blob (config and layers; digest names it) as its status
 * changes, and during a download at most about every 100 ms. Calls are
 * never concurrent (made from one thread at a time), and must not block. */
struct image_pull_progress {
        void (*fn)(void *ud, const char *digest, enum image_pull_status st, uint64_t current, uint64_t total);
        void *ud;
        /* Optional: called once, before any blob's status, when the
         * manifest is known: its config and layers (bottom first). */
        void (*resolved)(void *ud, const char *config_digest, const char *const *layers, size_t n_layers);
};

struct image_pull_options {
        const struct image_platform *platform;   /* NULL: linux/<host> */
        unsigned max_parallel;                   /* blobs downloaded at once; 0: 3 */
        const struct image_pull_progress *progress;  /* may be NULL */
        /* When sn is set, layers are unpacked into committed snapshots (as
         * image_unpack does) in order, each as soon as it and the ones below
         * it are stored, while later ones still download. */
        struct snapshot_overlay *sn;
        const struct image_unpack_options *unpack;  /* NULL: defaults */
};

/* image_pull with options; ret_unpack (may be NULL) gets the snapshots
 * when o->sn is set. On failure nothing half-done is recorded: verified
 * blobs stay in the store, partial downloads stay as ingests to resume. */
int image_pull_ex(struct registry_client *rc, struct content_store *cs, const struct image_ref *ref,
                  const struct image_pull_options *o, struct image_pull_result *ret,
                  struct image_unpack_result *ret_unpack, struct berr *e);

const char *image_pull_status_string(enum image_pull_status st);

/* Image manifests and indexes as the distribution API serves them: OCI
 * image index and manifest, Docker manifest list and schema 2 manifest.
 * Docker schema 1 (signed or not) is recognised and refused. Also platform
 * strings ("linux/arm64/v8") and choosing a manifest from an index. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "content-store.h"
#include "err.h"

#define MEDIA_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MEDIA_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MEDIA_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MEDIA_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MEDIA_DOCKER_SCHEMA1 "application/vnd.docker.distribution.manifest.v1+json"
#define MEDIA_DOCKER_SCHEMA1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"

/* Largest manifest or index accepted (as containerd). */
#define IMAGE_MANIFEST_MAX (4u << 20)

struct image_platform {
        char os[32];
        char arch[32];
        char variant[32];
};

struct image_descriptor {
        char *media_type;
        char digest[CONTENT_DIGEST_MAX];
        int64_t size;
        bool has_platform;
        struct image_platform platform;
};

enum image_manifest_kind {
        IMAGE_MANIFEST_INDEX,   /* OCI index or Docker manifest list */
        IMAGE_MANIFEST_IMAGE,   /* OCI manifest or Docker schema 2 */
};

struct image_manifest {
        enum image_manifest_kind kind;
        char *media_type;
        /* IMAGE */
        struct image_descriptor config;
        struct image_descriptor *layers;
        size_t n_layers;
        /* INDEX */
        struct image_descriptor *manifests;
        size_t n_manifests;
};

/* content_type is the response's Content-Type (NULL if none); the body's
 * own mediaType wins when present. Schema 1 fails with -EPROTONOSUPPORT. */
int image_manifest_parse(const char *body, size_t len, const char *content_type, struct image_manifest *ret,
                         struct berr *e);
void image_manifest_done(struct image_manifest *m);

/* "os/arch[/variant]", normalised (x86_64 → amd64, aarch64 → arm64,
 * arm64/v8 → arm64, arm → arm/v7). */
int image_platform_parse(const char *s, struct image_platform *ret, struct berr *e);
void image_platform_normalize(struct image_platform *p);
/* linux/amd64 */
void image_platform_default(struct image_platform *ret);
/* "linux/arm/v7"; buf of at least 100 bytes. */
char *image_platform_string(const struct image_platform *p, char *buf, size_t len);

/* The manifest of idx for want: os and architecture equal, variant equal
 * after normalisation (for arm, a lower variant is accepted when the exact
 * one is missing, as containerd does). -ENOENT with a message listing the
 * platforms the index has when none matches. */
int image_index_select(const struct image_manifest *idx, const struct image_platform *want,
                       const struct image_descriptor **ret, struct berr *e);

/* The OCI image spec's ChainID step: sha256("<parent> <diff_id>") as
 * "sha256:<hex>"; parent NULL: diff_id. Here, in the light library, so
 * that the daemon (svc-images.c, container-service.c) and the unpack share
 * one implementation. */
int image_chain_id(const char *parent, const char *diff_id, char ret[CONTENT_DIGEST_MAX]);

/* Image references as Docker parses them (distribution/reference's grammar
 * and its normalisation):
 *
 *   busybox                      → docker.io/library/busybox:latest
 *   index.docker.io/foo/bar      → docker.io/foo/bar:latest
 *   localhost:5000/ns/repo:tag   → the registry "localhost:5000"
 *   repo@sha256:<hex>            → pulled by digest (no tag added)
 *   repo:tag@sha256:<hex>        → both kept; the digest wins when pulling
 *
 * The first path element is a registry when it contains '.' or ':', is
 * "localhost", or has upper-case letters; otherwise the reference is on
 * Docker Hub. Repository paths are lower-case; the whole name (registry
 * included) is at most 255 characters; tags match [\w][\w.-]{0,127};
 * digests are sha256, sha384 or sha512 with lower-case hex of their
 * length. */
#pragma once

#include <stdbool.h>

#include "err.h"

#define IMAGE_REF_NAME_MAX 255
#define IMAGE_REF_TAG_MAX 128
/* "sha512:" + 128 hex digits */
#define IMAGE_REF_DIGEST_MAX 135

#define IMAGE_REF_DEFAULT_DOMAIN "docker.io"
#define IMAGE_REF_DEFAULT_TAG "latest"

struct image_ref {
        char domain[IMAGE_REF_NAME_MAX + 1];      /* "docker.io", "127.0.0.1:5000" */
        char path[IMAGE_REF_NAME_MAX + 1];        /* "library/busybox" */
        char tag[IMAGE_REF_TAG_MAX + 1];          /* "" when only a digest was given */
        char digest[IMAGE_REF_DIGEST_MAX + 1];    /* "" or "sha256:<hex>" */
};

/* Parses and normalises s. Invalid references fail with -EINVAL and a
 * message naming the reference and the rule it breaks. */
int image_ref_parse(const char *s, struct image_ref *ret, struct berr *e);

/* "docker.io/library/busybox:latest", "...@sha256:..." or
 * "...:tag@sha256:...". buf needs IMAGE_REF_STRING_MAX bytes. */
#define IMAGE_REF_STRING_MAX (IMAGE_REF_NAME_MAX + 1 + IMAGE_REF_TAG_MAX + 1 + IMAGE_REF_DIGEST_MAX + 1)
char *image_ref_string(const struct image_ref *r, char *buf, size_t len);

/* The tag or digest to ask the registry for: the digest when there is one. */
const char *image_ref_object(const struct image_ref *r);

/* The host[:port] to connect to: docker.io is served by
 * registry-1.docker.io. */
const char *image_ref_registry_host(const struct image_ref *r);

/* Checks a digest string: "<algorithm>:<hex>", with sha256 / sha384 /
 * sha512 and lower-case hex of the algorithm's length. */
int image_ref_check_digest(const char *d, struct berr *e);

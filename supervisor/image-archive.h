/* Images to and from tarballs, as `docker save` / `docker load` and
 * `ctr images export|import` exchange them.
 *
 * An export is an OCI image layout in a tar (oci-layout, index.json with
 * one descriptor per name, annotated with io.containerd.image.name = the
 * name and org.opencontainers.image.ref.name = its tag, blobs/sha256/<hex>).
 * The docker format adds Docker's manifest.json ([{Config, RepoTags,
 * Layers}], paths into blobs/sha256/) for the manifest of the platform, so
 * the same file loads with docker load, ctr and skopeo (as Docker 25 writes
 * it; tests/dropin/mkimage.py makes the same kind of file).
 *
 * An import reads either: index.json when it names its images, else
 * manifest.json (a Docker schema 2 manifest is made for each entry). Every
 * blobs/sha256/<hex> entry goes through the content store (digest and size
 * verified); every descriptor's size is checked. On any error nothing is
 * recorded and the blobs the import added are removed again. The legacy
 * docker save layout (<id>/layer.tar, paths not named by digest) is not
 * read. */
#pragma once

#include <stddef.h>

#include "content-store.h"
#include "err.h"
#include "image-manifest.h"
#include "image-store.h"

enum image_archive_format {
        IMAGE_ARCHIVE_DOCKER,   /* OCI layout + manifest.json */
        IMAGE_ARCHIVE_OCI,      /* OCI layout only */
};

/* "docker" or "oci"; -EINVAL otherwise. */
int image_archive_format_parse(const char *s, enum image_archive_format *ret, struct berr *e);

/* Writes the images names[0..n) (normalised names as the image store keeps
 * them) to path (written as path.tmp-<pid>, then renamed). For an index
 * target, the index and those of its manifests that are in the store are
 * written; manifest.json gets the manifest for platform. */
int image_archive_export(struct image_store *is, struct content_store *cs, const char *const *names, size_t n,
                         const struct image_platform *platform, enum image_archive_format fmt, const char *path,
                         struct berr *e);

/* Reads the tarball at path into cs and records its images in is.
 * ret_names (may be NULL; NULL-terminated, free with strv_free) gets the
 * names recorded, in the archive's order. */
int image_archive_import(struct image_store *is, struct content_store *cs, const char *path,
                         const struct image_platform *platform, char ***ret_names, struct berr *e);

/* An archive's image name made a normalised reference ("busybox:latest" →
 * "docker.io/library/busybox:latest"). */
int image_archive_name(const char *s, char *buf, size_t len, struct berr *e);

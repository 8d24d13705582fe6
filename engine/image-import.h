/* docker import: a root filesystem tarball as an image of one layer (see
 * image-import.c). */
#pragma once

#include <archive.h>
#include <jansson.h>
#include <stddef.h>

struct image_import {
        int body_fd;          /* the tarball, plain or compressed */
        const char *name;     /* "repo:tag" for RepoTags */
        const char *message;  /* the history entry's comment; NULL: "Imported from -" */
        json_t *changes;      /* Dockerfile instructions (strings): CMD, ENV ... */
        const char *arch;     /* Docker's name of the machine (amd64 ...) */
        const char *tmpdir;   /* for the unnamed files */
};

/* For the docker save archives of import and commit: md (n bytes) as hex
 * into out (2n + 1 bytes); a regular file, 0644, from data (len bytes) or,
 * when src >= 0, the whole of that file. 0, or -errno. */
void image_hex(const unsigned char *md, size_t n, char *out);
int image_archive_add(struct archive *a, const char *name, const void *data, size_t len, int src);
/* The rest of the file fd as the current entry's data. */
int image_archive_copy(struct archive *a, int fd);

/* Applies Dockerfile instructions (strings: CMD, ENTRYPOINT, ENV, EXPOSE,
 * LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR) to an image config's "config"
 * object. -EINVAL and the reason in err for another instruction. */
int image_apply_changes(json_t *cfg, json_t *changes, char *err, size_t errlen);

/* Writes a docker save archive of the image to an unnamed file: *ret_fd,
 * at its end. ret_id: the image's id ("sha256:<hex>"). -errno and the
 * reason in err: -EINVAL for bad input (a body that does not decompress, a
 * change that is not one of those accepted). */
int engine_image_import(const struct image_import *im, int *ret_fd, char ret_id[72], char *err, size_t errlen);

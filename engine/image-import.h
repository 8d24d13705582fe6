/* docker import: a root filesystem tarball as an image of one layer (see
 * image-import.c). */
#pragma once

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

/* Writes a docker save archive of the image to an unnamed file: *ret_fd,
 * at its end. ret_id: the image's id ("sha256:<hex>"). -errno and the
 * reason in err: -EINVAL for bad input (a body that does not decompress, a
 * change that is not one of those accepted). */
int engine_image_import(const struct image_import *im, int *ret_fd, char ret_id[72], char *err, size_t errlen);

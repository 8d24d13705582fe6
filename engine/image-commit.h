/* docker commit: a container's writable layer on its image, as a new
 * image (see image-commit.c). */
#pragma once

#include <jansson.h>
#include <stddef.h>

struct image_commit {
        const char *upperdir;      /* the container's overlay upper directory */
        int parent_fd;             /* its image as a docker save archive */
        json_t *config;            /* the new image's "config" (the container's, changes applied) */
        const char *container_id;
        const char *created_by;    /* the history entry's: the container's command */
        const char *author;        /* may be NULL */
        const char *comment;       /* may be NULL */
        const char *name;          /* "repo:tag" for RepoTags */
        const char *tmpdir;        /* for the unnamed files */
};

/* Writes a docker save archive of the new image to an unnamed file:
 * *ret_fd, at its end; ret_id: the image's id ("sha256:<hex>"). -errno and
 * the reason in err. */
int engine_image_commit(const struct image_commit *c, int *ret_fd, char ret_id[72], char *err, size_t errlen);

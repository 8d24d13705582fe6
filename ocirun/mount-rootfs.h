/* The container's filesystem view, built inside its new mount namespace:
 * propagation, the rootfs bind, every spec mount (destinations resolved
 * inside the rootfs, never through a symlink out of it), /dev, pivot_root,
 * sysctls, read-only root, masked and read-only paths. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "err.h"
#include "spec.h"

struct rootfs_opts {
        const struct spec *spec;
        const char *rootfs;      /* absolute host path */
        const char *bundle;      /* for relative bind sources */
        json_t *cgroup_paths;    /* for mounts of type cgroup */
        bool cgroupns;           /* the container has its own cgroup namespace */
        bool no_pivot;
        /* runs after the mounts, before pivot_root (hooks) */
        int (*before_pivot)(void *userdata, struct berr *e);
        void *userdata;
};

int rootfs_setup(const struct rootfs_opts *o, struct berr *e);

/* Parses mount options into flags, propagation flags and the data string. */
int mount_parse_options(char **options, unsigned long *ret_flags, unsigned long *ret_clear,
                        unsigned long *ret_propagation, char **ret_data, struct berr *e);

/* Every mount option ocirun understands (for `features`). */
json_t *mount_option_names(void);

/* The OCI runtime spec of a container created without one: defaults in the
 * spirit of containerd's and Docker's (Docker's default capabilities, the
 * usual /proc, /dev, /sys mounts, masked and read-only paths, new pid, ipc,
 * uts, mount and network namespaces, cgroupsPath /berth/<id>), the process
 * taken from the image config (Env, Entrypoint + Cmd, WorkingDir, User)
 * and what the caller overrides.
 *
 * The user is resolved as Docker does: "uid[:gid]" numbers as they are,
 * names through the rootfs' /etc/passwd and /etc/group. The rootfs is not
 * mounted when the container is created, so the files are looked up in the
 * snapshot's layer directories, top first. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"

struct container_spec_options {
        char **args;       /* NULL-terminated; NULL or empty: the image's Cmd (after its Entrypoint) */
        char **env;        /* "K=V", override the image's by key */
        const char *cwd;   /* NULL: WorkingDir, else "/" */
        const char *user;  /* NULL: the image's User */
        bool terminal;
        int64_t memory;    /* bytes; 0: no limit */
};

/* image_config is the image config blob (with its "config" object; NULL
 * for none). layer_dirs (NULL-terminated, top first) are searched for
 * etc/passwd and etc/group. */
int container_spec_default(const char *id, const json_t *image_config, const struct container_spec_options *o,
                           char *const *layer_dirs, json_t **ret, struct berr *e);

/* "name|uid[:group|gid]" → numbers; names through the layers' files. */
int container_user_resolve(const char *user, char *const *layer_dirs, uint32_t *ret_uid, uint32_t *ret_gid,
                           struct berr *e);

/* The directories of an overlay mount's options (upperdir, then the
 * lowerdirs in order) or of a bind mount's source; NULL-terminated. */
int container_layer_dirs(const char *type, const char *source, const char *options, char ***ret);

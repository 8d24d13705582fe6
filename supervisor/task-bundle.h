/* A task's OCI bundle: <exec_root>/bundles/<id>/{config.json,rootfs/},
 * rootfs being the container's active snapshot mounted (overlay, or a
 * bind mount for a snapshot without parents). */
#pragma once

#include <jansson.h>

#include "err.h"
#include "snapshot-overlay.h"

/* A bundle in two steps, so that the shim can start up in between:
 * config.json (spec with root.path = "rootfs") and an empty rootfs (on
 * failure nothing is left behind), then m mounted on rootfs (on failure
 * the caller removes the bundle). */
int task_bundle_create_config(const char *bundle, const json_t *spec, struct berr *e);
int task_bundle_mount_rootfs(const char *bundle, const struct snapshot_mount *m, struct berr *e);

/* Unmounts rootfs (every mount stacked there) and removes the bundle; the
 * files of the rootfs are never removed through a mount that is still
 * there. A missing bundle is success. */
int task_bundle_remove(const char *bundle, struct berr *e);

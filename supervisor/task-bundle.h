/* A task's OCI bundle: <exec_root>/bundles/<id>/{config.json,rootfs/},
 * rootfs being the container's active snapshot mounted (overlay, or a
 * bind mount for a snapshot without parents). */
#pragma once

#include <jansson.h>

#include "err.h"
#include "snapshot-overlay.h"

/* Writes config.json (spec with root.path = "rootfs") and mounts m on
 * rootfs. On failure nothing is left behind. */
int task_bundle_create(const char *bundle, const json_t *spec, const struct snapshot_mount *m, struct berr *e);

/* Unmounts rootfs (every mount stacked there) and removes the bundle; the
 * files of the rootfs are never removed through a mount that is still
 * there. A missing bundle is success. */
int task_bundle_remove(const char *bundle, struct berr *e);

/* Writing, mounting and removing a task's bundle. */
#include "task-bundle.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs-util.h"
#include "json-util.h"
#include "log.h"

/* Whether path is a mount point: another mount than its parent's. The
 * mount id, not st_dev: the copy snapshotter's bind mount of a directory
 * on the bundle's own filesystem has the same st_dev, and taking it for a
 * plain directory would rm -rf the snapshot through it. */
static bool is_mountpoint(const char *path, const char *parent)
{
        struct statx a, b;
        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &a) < 0 ||
            statx(AT_FDCWD, parent, 0, STATX_MNT_ID, &b) < 0)
                return false;
        if ((a.stx_mask & STATX_MNT_ID) && (b.stx_mask & STATX_MNT_ID))
                return a.stx_mnt_id != b.stx_mnt_id;
        return a.stx_dev_major != b.stx_dev_major || a.stx_dev_minor != b.stx_dev_minor;
}

static int mount_rootfs(const char *rootfs, const struct snapshot_mount *m, struct berr *e)
{
        if (strcmp(m->type, "bind") == 0) {
                bool ro = strstr(m->options ? m->options : "", "ro") && !strstr(m->options, "rw");
                if (mount(m->source, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
                        return berr_set(e, errno, "mount(\"%s\", \"%s\", bind)", m->source, rootfs);
                if (ro && mount(NULL, rootfs, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0) {
                        int err = errno;
                        umount2(rootfs, MNT_DETACH);
                        return berr_set(e, err, "remount \"%s\" read-only", rootfs);
                }
                return 0;
        }
        if (strlen(m->options) >= (size_t) sysconf(_SC_PAGESIZE))
                return berr_setx(e, E2BIG, "mount \"%s\": overlay options of %zu bytes exceed a page (too many layers)",
                                 rootfs, strlen(m->options));
        if (mount(m->source ? m->source : "overlay", rootfs, m->type, 0, m->options) < 0)
                return berr_set(e, errno, "mount(\"%s\", \"%s\", \"%s\", \"%s\")", m->source ? m->source : "overlay",
                                rootfs, m->type, m->options);
        return 0;
}

int task_bundle_create_config(const char *bundle, const json_t *spec, struct berr *e)
{
        _cleanup_free_ char *rootfs = NULL, *config = NULL;
        if (asprintf(&rootfs, "%s/rootfs", bundle) < 0 || asprintf(&config, "%s/config.json", bundle) < 0)
                return berr_set(e, ENOMEM, "bundle");
        int r = fs_mkdir_p(rootfs, 0711);
        if (r < 0)
                return berr_set(e, -r, "cannot create \"%s\"", rootfs);
        json_t *c = json_deep_copy(spec);
        if (!c) {
                fs_rm_rf(bundle);
                return berr_set(e, ENOMEM, "bundle");
        }
        json_t *root = json_object_get(c, "root");
        if (!json_is_object(root)) {
                root = json_object();
                json_object_set_new(c, "root", root);
        }
        json_object_set_new(root, "path", json_string("rootfs"));
        r = json_write_atomic_ex(config, c, JSON_COMPACT, 0600, 0);
        json_decref(c);
        if (r < 0) {
                fs_rm_rf(bundle);
                return berr_set(e, -r, "cannot write \"%s\"", config);
        }
        return 0;
}

int task_bundle_mount_rootfs(const char *bundle, const struct snapshot_mount *m, struct berr *e)
{
        _cleanup_free_ char *rootfs = NULL;
        if (asprintf(&rootfs, "%s/rootfs", bundle) < 0)
                return berr_set(e, ENOMEM, "bundle");
        return mount_rootfs(rootfs, m, e);
}

int task_bundle_remove(const char *bundle, struct berr *e)
{
        _cleanup_free_ char *rootfs = NULL;
        if (asprintf(&rootfs, "%s/rootfs", bundle) < 0)
                return berr_set(e, ENOMEM, "bundle");
        if (access(bundle, F_OK) < 0)
                return 0;
        for (int i = 0; i < 16 && is_mountpoint(rootfs, bundle); i++) {
                if (umount2(rootfs, 0) < 0 && errno != EINVAL && errno != ENOENT) {
                        if (errno == EBUSY && umount2(rootfs, MNT_DETACH) == 0)
                                continue;
                        return berr_set(e, errno, "cannot unmount \"%s\"", rootfs);
                }
        }
        if (is_mountpoint(rootfs, bundle))
                return berr_setx(e, EBUSY, "\"%s\" is still mounted", rootfs);
        int r = fs_rm_rf(bundle);
        if (r < 0)
                return berr_set(e, -r, "cannot remove \"%s\"", bundle);
        return 0;
}

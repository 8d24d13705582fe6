/* The overlay snapshotter: snapshots as overlayfs layers, as containerd's
 * overlayfs snapshotter lays them out.
 *
 *   <root>/snapshots/<id>/fs     the snapshot's files (an upper dir while
 *                                active, a lower dir once committed)
 *   <root>/snapshots/<id>/work   overlayfs' workdir
 *   <root>/meta/snapshots.json   key → id, kind, parent, created
 *
 * <root> is <--root>/supervisor. The metadata file is rewritten atomically
 * (json_write_atomic) under an flock on meta/snapshots.lock, so processes
 * sharing a root see one consistent state. Image layers are committed
 * under their chain id: images with the same layers share the snapshots.
 *
 * A snapshot is created with prepare (active, writable) or view (read-only)
 * on a committed parent; commit turns an active snapshot into a committed
 * one under a new name; remove refuses snapshots that have children. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum snapshot_kind {
        SNAPSHOT_ACTIVE,
        SNAPSHOT_VIEW,
        SNAPSHOT_COMMITTED,
};

struct snapshot_info {
        char *key;
        char *parent;           /* NULL for none */
        enum snapshot_kind kind;
        uint64_t id;
        char *created;          /* RFC 3339, UTC */
};

/* How to mount a snapshot: mount(source, target, type, flags, options),
 * with type "overlay" or "bind" (then options are "rbind,rw" or
 * "rbind,ro"). */
struct snapshot_mount {
        char *type;
        char *source;
        char *options;
};

struct snapshot_overlay;

/* root: <--root>/supervisor; the directories are created. */
int snapshot_overlay_open(const char *root, struct snapshot_overlay **ret, struct berr *e);
void snapshot_overlay_free(struct snapshot_overlay *sn);

/* -EEXIST when key exists, -ENOENT when parent does not, -EINVAL when the
 * parent is not committed. ret_mount may be NULL. */
int snapshot_overlay_prepare(struct snapshot_overlay *sn, const char *key, const char *parent,
                             struct snapshot_mount *ret_mount, struct berr *e);
int snapshot_overlay_view(struct snapshot_overlay *sn, const char *key, const char *parent,
                          struct snapshot_mount *ret_mount, struct berr *e);
/* The active snapshot key becomes the committed snapshot name. */
int snapshot_overlay_commit(struct snapshot_overlay *sn, const char *name, const char *key, struct berr *e);
/* -EBUSY when other snapshots have key as their parent. */
int snapshot_overlay_remove(struct snapshot_overlay *sn, const char *key, struct berr *e);
int snapshot_overlay_stat(struct snapshot_overlay *sn, const char *key, struct snapshot_info *ret, struct berr *e);
/* Sorted by key. */
int snapshot_overlay_list(struct snapshot_overlay *sn, struct snapshot_info **ret, size_t *ret_n, struct berr *e);
int snapshot_overlay_mounts(struct snapshot_overlay *sn, const char *key, struct snapshot_mount *ret,
                            struct berr *e);
/* Bytes (allocated blocks) and inodes under the snapshot's fs, hardlinks
 * counted once. */
int snapshot_overlay_usage(struct snapshot_overlay *sn, const char *key, uint64_t *ret_bytes, uint64_t *ret_inodes,
                           struct berr *e);
/* The snapshot's fs directory (malloc'ed). */
int snapshot_overlay_path(struct snapshot_overlay *sn, const char *key, char **ret, struct berr *e);

const char *snapshot_kind_string(enum snapshot_kind k);
void snapshot_info_done(struct snapshot_info *i);
void snapshot_infos_free(struct snapshot_info *v, size_t n);
void snapshot_mount_done(struct snapshot_mount *m);

/* The snapshotter: snapshots as overlayfs layers, as containerd's
 * overlayfs snapshotter lays them out, or (the "copy" mode, containerd's
 * native snapshotter) as full copies where overlayfs cannot be used.
 *
 *   <root>/snapshots/<id>/fs     the snapshot's files (overlay: an upper
 *                                dir while active, a lower dir once
 *                                committed; copy: the whole tree)
 *   <root>/snapshots/<id>/work   overlayfs' workdir (overlay mode only)
 *   <root>/meta/snapshots.json   the mode, and key → id, kind, parent, created
 *
 * <root> is <--root>/supervisor. The metadata file is rewritten atomically
 * (json_write_atomic) under an flock on meta/snapshots.lock, so processes
 * sharing a root see one consistent state. Image layers are committed
 * under their chain id: images with the same layers share the snapshots.
 *
 * A snapshot is created with prepare (active, writable) or view (read-only)
 * on a committed parent; commit turns an active snapshot into a committed
 * one under a new name; remove refuses snapshots that have children.
 *
 * Modes. overlay: a committed snapshot's fs holds one layer's diff (overlay
 * whiteouts), mounts are an overlay of the parent chain. copy: prepare and
 * view copy the parent's fs (owners, modes, times, xattrs, hardlinks,
 * symlinks, devices, FIFOs; sockets skipped), every snapshot holds its
 * whole tree, mounts are bind mounts, and layers are applied with
 * whiteouts as deletions. Metadata, ids, commit, remove, list and usage
 * are shared. The mode is recorded in snapshots.json ("mode") when the
 * root is first opened; a root is never opened in the other mode. */
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
 * "rbind,ro"; copy mode: always a bind of the snapshot's fs, "ro" for a
 * view). */
struct snapshot_mount {
        char *type;
        char *source;
        char *options;
};

struct snapshot_overlay;

enum snapshot_mode {
        SNAPSHOT_MODE_AUTO,
        SNAPSHOT_MODE_OVERLAY,
        SNAPSHOT_MODE_COPY,
};

/* "auto", "overlay", "copy"; parse gives -EINVAL for anything else. */
const char *snapshot_mode_string(enum snapshot_mode m);
int snapshot_mode_parse(const char *s, enum snapshot_mode *ret);

/* root: <--root>/supervisor; the directories are created.
 *
 * mode AUTO: $BERTH_SNAPSHOTTER (overlay, copy or auto) when set, else the
 * mode recorded in the root, else a probe: overlay when a test overlay
 * mount (with a whiteout and an opaque directory in its upper dir) works
 * in <root>/snapshots, copy otherwise. The probe runs only while the root
 * has no recorded mode; its answer is recorded, so it runs once per root.
 * An explicit mode (or $BERTH_SNAPSHOTTER) that differs from the recorded
 * one fails with -EINVAL and a message naming both. */
int snapshot_overlay_open_ex(const char *root, enum snapshot_mode mode, struct snapshot_overlay **ret,
                             struct berr *e);
/* snapshot_overlay_open_ex(root, SNAPSHOT_MODE_AUTO, ...) */
int snapshot_overlay_open(const char *root, struct snapshot_overlay **ret, struct berr *e);
/* OVERLAY or COPY, never AUTO. */
enum snapshot_mode snapshot_overlay_mode(const struct snapshot_overlay *sn);
void snapshot_overlay_free(struct snapshot_overlay *sn);

/* -EEXIST when key exists, -ENOENT when parent does not, -EINVAL when the
 * parent is not committed. ret_mount may be NULL. In copy mode the
 * parent's tree is copied (under the metadata lock, as containerd's native
 * snapshotter copies inside its transaction). */
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

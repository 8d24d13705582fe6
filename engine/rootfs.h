/* A container's filesystem as `docker cp`, `export` and `diff` see it,
 * and the size of its writable layer.
 *
 * The view is built in a mount namespace of the calling thread's own
 * (rootfs_view_open unshares CLONE_NEWNS | CLONE_FS and makes every mount
 * a slave): the running container's rootfs (the bundle's, bound) or the
 * snapshot's mounts (overlay or bind) are mounted on one directory, with
 * the container's bind mounts (volumes, binds, the engine's hosts and
 * resolv.conf files) on their destinations, resolved inside the view.
 * Nothing is ever mounted in the engine's namespace, so nothing can be
 * left behind: the namespace goes away with the thread. Call it only on a
 * thread of its own that ends after rootfs_view_close.
 *
 * Every path a client gives is resolved inside the view's root
 * (openat2 RESOLVE_IN_ROOT): "..", absolute symlinks and symlinks planted
 * in the container never leave it. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

/* A snapshot's mount as snapshots.Mounts gives it. */
struct rootfs_mount {
        char *type;     /* "overlay" or "bind" */
        char *source;
        char *options;  /* overlay: "workdir=...,upperdir=...,lowerdir=a:b"; bind: "rbind,rw|ro" */
};

struct rootfs_source {
        const char *bundle_rootfs;     /* a running container's mounted rootfs, or NULL */
        struct rootfs_mount snap;      /* otherwise: the snapshot's mount */
        json_t *spec;                  /* the OCI spec (its bind mounts), may be NULL */
        bool with_binds;               /* mount the spec's binds (cp: yes, export: no) */
        bool create_mountpoints;       /* create missing bind destinations (cp of a created container) */
};

struct rootfs_view {
        char *dir;             /* where the view is mounted (in this thread's namespace) */
        int rootfd;            /* O_PATH of dir */
        uint64_t root_mnt_id;  /* the mount id of the view's root (not a bind) */
};

/* Builds the view on dir (an empty directory that exists). On failure
 * returns -errno and a message in err. */
int rootfs_view_open(const char *dir, const struct rootfs_source *src, struct rootfs_view *ret, char *err,
                     size_t errlen);
void rootfs_view_close(struct rootfs_view *v);

/* Lexical clean (Go's filepath.Clean): "." dropped, ".." applied, slashes
 * merged. Absolute (relative false): "/" + p, ".." stops at "/". Relative:
 * no leading "/", and -EXDEV when ".." would climb above the start. */
int rootfs_clean_path(const char *p, bool relative, char **ret);
/* Docker's path arithmetic: "/" + path cleaned, with a trailing "/" or
 * "/." of path kept ("foo/." → "/foo/."). */
char *rootfs_abs_path(const char *path);
/* Go's filepath.Base: "/foo/." → ".", "/foo/" → "foo", "/" → "/". */
const char *rootfs_base(const char *abs, char *buf, size_t len);

/* Evaluates every symlink of path inside the view (a missing component
 * ends the evaluation: the rest is appended as is), as dockerd's
 * FollowSymlinkInScope. *ret is an absolute, clean path in the view. */
int rootfs_eval(int rootfd, const char *path, char **ret);

/* Opens abs as HEAD/GET archive do: every component but the last
 * resolved in the root, the last not followed ("/x/." and "/x/" are the
 * directory x, followed). Returns an O_PATH fd; ret_resolved (may be NULL)
 * gets the evaluated path of what was opened. */
int rootfs_open_nofollow(int rootfd, const char *abs, char **ret_resolved);

/* X-Docker-Container-Path-Stat's JSON for abs (opened as above):
 * {name, size, mode (Go's os.FileMode), mtime, linkTarget}. */
int rootfs_path_stat(int rootfd, const char *abs, json_t **ret);

/* Go's os.FileMode bits of a st_mode. */
uint32_t rootfs_go_mode(mode_t m);

/* ---- tar (rootfs-tar.c) ---- */

/* Writes a tar of what fd (an O_PATH fd of a directory or anything else)
 * is to out: names are prefix + the path below it ("bin/sh" for prefix ""
 * of a directory; "foo/", "foo/a" for prefix "foo"; a prefix ending in
 * "/" is used as is). include_top: an entry for fd itself (named prefix).
 * Stays on fd's mounts but crosses into the view's bind mounts. */
int rootfs_tar_write(int fd, const char *prefix, bool include_top, int out, char *err, size_t errlen);

struct rootfs_extract_opts {
        bool no_overwrite_dir_nondir;
        bool chown;            /* every entry owned by uid:gid instead of the tar's owners */
        uid_t uid;
        gid_t gid;
};

/* Extracts the tar read from in into dest_abs (a directory in the view),
 * every entry resolved inside the view's root; entries that would leave
 * dest_abs ("..", hard links out of it, symlinks pointing out of it, as
 * dockerd refuses them) are refused with -EXDEV and a message. */
int rootfs_tar_extract(int rootfd, const char *dest_abs, int in, const struct rootfs_extract_opts *o, char *err,
                       size_t errlen);

/* ---- changes and sizes (rootfs-changes.c) ---- */

enum rootfs_change_kind { ROOTFS_MODIFIED = 0, ROOTFS_ADDED = 1, ROOTFS_DELETED = 2 };

/* The changes of a container's writable layer, as dockerd reports them:
 * overlay: the upper dir against the lower dirs (whiteouts are deletions,
 * opaque directories too); bind (the copy snapshotter): the tree against
 * its parent's tree (parent_fs, NULL when there is none). A JSON array of
 * {Path, Kind}. */
/* Whether abs is one of the mount points dockerd keeps in a container's
 * init layer (/proc, /etc/hosts ...) or below one. */
bool rootfs_is_init_path(const char *abs);

int rootfs_changes(const struct rootfs_mount *m, const char *parent_fs, json_t **ret, char *err, size_t errlen);

/* The bytes of the writable layer as dockerd counts them (the sizes of
 * what is not a directory, hard links once): overlay: the upper dir; copy:
 * what was added or changed against the parent. */
int rootfs_size_rw(const struct rootfs_mount *m, const char *parent_fs, int64_t *ret);

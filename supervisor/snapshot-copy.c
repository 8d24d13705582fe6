/* The snapshotter's copy mode (containerd's native snapshotter): a new
 * snapshot's fs is a copy of its committed parent's whole tree (owners,
 * modes, times, xattrs, hardlinks as hardlinks, symlinks, devices, FIFOs;
 * sockets and mount points skipped), and every snapshot mounts as a bind
 * mount of its own fs. The metadata, ids, commit, remove, list and usage
 * are snapshot-overlay.c's; this file is the backend only. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs-util.h"
#include "log.h"
#include "snapshot-internal.h"

struct copier {
        int dst_root;
        dev_t dev;              /* the source's filesystem: mounts inside are not copied */
        bool owners;            /* chown (only root can give files away) */
        void *links;            /* tsearch tree of struct seen_link: inodes with more than one link */
        const char *src_top;    /* for messages */
        char path[PATH_MAX];    /* of the entry being copied, relative to both tops */
        struct berr *e;
};

struct seen_link {
        dev_t dev;
        ino_t ino;
        char path[];            /* its copy, relative to dst_root */
};

static int link_cmp(const void *a, const void *b)
{
        const struct seen_link *x = a, *y = b;
        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static int copy_fail(struct copier *cp, int err, const char *what)
{
        return berr_set(cp->e, err, "copying \"%s/%s\": %s", cp->src_top, cp->path, what);
}

/* The xattrs of (fd or dirfd/name), trusted.overlay.* left out: they would
 * steer an overlay mount, and copies are never overlay layers. */
static int copy_xattrs(struct copier *cp, int sfd, int sdir, int dfd, int ddir, const char *name)
{
        char sp[64 + NAME_MAX], dp[64 + NAME_MAX];
        if (sfd < 0) {
                snprintf(sp, sizeof(sp), "/proc/self/fd/%d/%s", sdir, name);
                snprintf(dp, sizeof(dp), "/proc/self/fd/%d/%s", ddir, name);
        }
        ssize_t n = sfd >= 0 ? flistxattr(sfd, NULL, 0) : llistxattr(sp, NULL, 0);
        if (n < 0 && (errno == ENOTSUP || errno == ENODATA))
                return 0;
        if (n < 0)
                return copy_fail(cp, errno, "listing xattrs");
        if (n == 0)
                return 0;
        _cleanup_free_ char *names = malloc((size_t) n);
        _cleanup_free_ char *val = NULL;
        if (!names)
                return copy_fail(cp, ENOMEM, "xattrs");
        n = sfd >= 0 ? flistxattr(sfd, names, (size_t) n) : llistxattr(sp, names, (size_t) n);
        if (n < 0)
                return copy_fail(cp, errno, "listing xattrs");
        for (const char *k = names; k < names + n; k += strlen(k) + 1) {
                if (strncmp(k, "trusted.overlay.", 16) == 0)
                        continue;
                ssize_t len = sfd >= 0 ? fgetxattr(sfd, k, NULL, 0) : lgetxattr(sp, k, NULL, 0);
                if (len < 0 && errno == ENODATA)
                        continue;
                if (len < 0)
                        return copy_fail(cp, errno, k);
                free(val);
                val = malloc(len ? (size_t) len : 1);
                if (!val)
                        return copy_fail(cp, ENOMEM, k);
                len = sfd >= 0 ? fgetxattr(sfd, k, val, (size_t) len) : lgetxattr(sp, k, val, (size_t) len);
                if (len < 0)
                        return copy_fail(cp, errno, k);
                int r = dfd >= 0 ? fsetxattr(dfd, k, val, (size_t) len, 0) : lsetxattr(dp, k, val, (size_t) len, 0);
                if (r < 0 && (errno == ENOTSUP || (errno == EPERM && dfd < 0 && strncmp(k, "user.", 5) == 0))) {
                        log_warn("copying \"%s/%s\": xattr %s not kept (ignored): %s", cp->src_top, cp->path, k,
                                 strerror(errno));
                        continue;
                }
                if (r < 0)
                        return copy_fail(cp, errno, k);
        }
        return 0;
}

/* Owner, xattrs, mode, times of a copy: on fds, or by name in the
 * directories for what is not opened (symlinks, devices, FIFOs). The owner
 * first: chown clears set-id bits and file capabilities. */
static int copy_meta(struct copier *cp, const struct stat *st, int sfd, int sdir, int dfd, int ddir, const char *name)
{
        if (cp->owners && (dfd >= 0 ? fchown(dfd, st->st_uid, st->st_gid)
                                    : fchownat(ddir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW)) < 0)
                return copy_fail(cp, errno, "chown");
        int r = copy_xattrs(cp, sfd, sdir, dfd, ddir, name);
        if (r < 0)
                return r;
        if (!S_ISLNK(st->st_mode) &&
            (dfd >= 0 ? fchmod(dfd, st->st_mode & 07777) : fchmodat(ddir, name, st->st_mode & 07777, 0)) < 0)
                return copy_fail(cp, errno, "chmod");
        const struct timespec t[2] = { st->st_atim, st->st_mtim };
        if ((dfd >= 0 ? futimens(dfd, t) : utimensat(ddir, name, t, AT_SYMLINK_NOFOLLOW)) < 0)
                return copy_fail(cp, errno, "times");
        return 0;
}

/* A hardlink to the copy of an inode already copied: 1 when made, 0 when
 * the inode is new (then it is remembered under the current path). */
static int copy_link(struct copier *cp, const struct stat *st, int ddir, const char *name)
{
        if (st->st_nlink < 2)
                return 0;
        struct seen_link key = { .dev = st->st_dev, .ino = st->st_ino };
        struct seen_link **found = tfind(&key, &cp->links, link_cmp);
        if (found) {
                if (linkat(cp->dst_root, (*found)->path, ddir, name, 0) < 0)
                        return copy_fail(cp, errno, "hardlink");
                return 1;
        }
        size_t len = strlen(cp->path) + 1;
        struct seen_link *l = malloc(sizeof(*l) + len);
        if (!l)
                return copy_fail(cp, ENOMEM, "hardlinks");
        *l = key;
        memcpy(l->path, cp->path, len);
        struct seen_link **added = tsearch(l, &cp->links, link_cmp);
        if (!added || *added != l) {
                free(l);
                return copy_fail(cp, ENOMEM, "hardlinks");
        }
        return 0;
}

static int copy_dir(struct copier *cp, int sfd, int dfd);

static int copy_entry(struct copier *cp, int sdir, int ddir, const char *name)
{
        struct stat st;
        if (fstatat(sdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return copy_fail(cp, errno, "stat");
        if (st.st_dev != cp->dev) {
                log_debug("copying \"%s/%s\": a mount point, not copied", cp->src_top, cp->path);
                return 0;
        }
        if (S_ISSOCK(st.st_mode)) {
                log_debug("copying \"%s/%s\": a socket, not copied", cp->src_top, cp->path);
                return 0;
        }
        if (S_ISDIR(st.st_mode)) {
                if (mkdirat(ddir, name, 0700) < 0)
                        return copy_fail(cp, errno, "mkdir");
                _cleanup_close_ int s = openat(sdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                _cleanup_close_ int d = openat(ddir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (s < 0 || d < 0)
                        return copy_fail(cp, errno, "open");
                int r = copy_dir(cp, s, d);
                /* mode and times after the children: they change the mtime,
                 * and a read-only directory would refuse them */
                return r < 0 ? r : copy_meta(cp, &st, s, -1, d, -1, NULL);
        }
        int r = copy_link(cp, &st, ddir, name);
        if (r != 0)
                return r < 0 ? r : 0;
        if (S_ISREG(st.st_mode)) {
                _cleanup_close_ int s = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
                if (s < 0)
                        return copy_fail(cp, errno, "open");
                _cleanup_close_ int d = openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (d < 0)
                        return copy_fail(cp, errno, "create");
                r = fs_copy_fd(s, d);
                if (r < 0)
                        return copy_fail(cp, -r, "data");
                return copy_meta(cp, &st, s, -1, d, -1, NULL);
        }
        if (S_ISLNK(st.st_mode)) {
                size_t cap = (size_t) st.st_size + 1;
                _cleanup_free_ char *target = malloc(cap > PATH_MAX ? cap : PATH_MAX);
                if (!target)
                        return copy_fail(cp, ENOMEM, "readlink");
                ssize_t n = readlinkat(sdir, name, target, cap > PATH_MAX ? cap : PATH_MAX);
                if (n < 0)
                        return copy_fail(cp, errno, "readlink");
                if ((size_t) n >= (cap > PATH_MAX ? cap : PATH_MAX))
                        return copy_fail(cp, ENAMETOOLONG, "readlink");
                target[n] = '\0';
                if (symlinkat(target, ddir, name) < 0)
                        return copy_fail(cp, errno, "symlink");
        } else if (mknodat(ddir, name, st.st_mode & S_IFMT, st.st_rdev) < 0) {
                /* devices and FIFOs, never opened */
                return copy_fail(cp, errno, "mknod");
        }
        return copy_meta(cp, &st, -1, sdir, -1, ddir, name);
}

static int copy_dir(struct copier *cp, int sfd, int dfd)
{
        int fd = dup(sfd);
        if (fd < 0)
                return copy_fail(cp, errno, "dup");
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return copy_fail(cp, errno, "opendir");
        }
        size_t base = strlen(cp->path);
        struct dirent *de;
        int r = 0;
        while (r >= 0 && (errno = 0, de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                int n = snprintf(cp->path + base, sizeof(cp->path) - base, "%s%s", base ? "/" : "", de->d_name);
                if (n < 0 || (size_t) n >= sizeof(cp->path) - base)
                        r = copy_fail(cp, ENAMETOOLONG, "path");
                else
                        r = copy_entry(cp, dirfd(d), dfd, de->d_name);
                cp->path[base] = '\0';
        }
        if (r >= 0 && errno != 0)
                r = copy_fail(cp, errno, "readdir");
        closedir(d);
        return r;
}

/* fs (new, empty) becomes a copy of the parent's fs. */
static int copy_fill(struct snapshot_overlay *sn, const struct snapshot_info *parent, const char *fs, struct berr *e)
{
        _cleanup_free_ char *src = snapshot_id_dir(sn, parent->id, "fs");
        if (!src)
                return berr_set(e, ENOMEM, "snapshot");
        _cleanup_close_ int sfd = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_close_ int dfd = open(fs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (sfd < 0 || fstat(sfd, &st) < 0)
                return berr_set(e, errno, "snapshot \"%s\": \"%s\"", parent->key, src);
        if (dfd < 0)
                return berr_set(e, errno, "\"%s\"", fs);
        struct copier cp = { .dst_root = dfd, .dev = st.st_dev, .owners = geteuid() == 0, .src_top = src, .e = e };
        int r = copy_dir(&cp, sfd, dfd);
        if (r >= 0)
                r = copy_meta(&cp, &st, sfd, -1, dfd, -1, NULL);
        tdestroy(cp.links, free);
        return r;
}

static int copy_mounts(struct snapshot_overlay *sn, struct snapshot_meta *m, const struct snapshot_info *self,
                       struct snapshot_mount *ret, struct berr *e)
{
        (void) m;
        _cleanup_free_ char *fs = snapshot_id_dir(sn, self->id, "fs");
        if (!fs)
                return berr_set(e, ENOMEM, "mount");
        return snapshot_mount_set(ret, "bind", fs, self->kind == SNAPSHOT_VIEW ? "rbind,ro" : "rbind,rw", e);
}

const struct snapshot_backend snapshot_copy_backend = {
        .mode = SNAPSHOT_MODE_COPY,
        .fill = copy_fill,
        .mounts = copy_mounts,
};

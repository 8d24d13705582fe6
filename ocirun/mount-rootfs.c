#include "mount-rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs-util.h"
#include "log.h"

#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif

static const struct {
        const char *name;
        bool clear;
        unsigned long flag;
} flag_table[] = {
        { "defaults", false, 0 },
        { "ro", false, MS_RDONLY },           { "rw", true, MS_RDONLY },
        { "nosuid", false, MS_NOSUID },       { "suid", true, MS_NOSUID },
        { "nodev", false, MS_NODEV },         { "dev", true, MS_NODEV },
        { "noexec", false, MS_NOEXEC },       { "exec", true, MS_NOEXEC },
        { "sync", false, MS_SYNCHRONOUS },    { "async", true, MS_SYNCHRONOUS },
        { "dirsync", false, MS_DIRSYNC },     { "remount", false, MS_REMOUNT },
        { "mand", false, MS_MANDLOCK },       { "nomand", true, MS_MANDLOCK },
        { "noatime", false, MS_NOATIME },     { "atime", true, MS_NOATIME },
        { "nodiratime", false, MS_NODIRATIME }, { "diratime", true, MS_NODIRATIME },
        { "relatime", false, MS_RELATIME },   { "norelatime", true, MS_RELATIME },
        { "strictatime", false, MS_STRICTATIME }, { "nostrictatime", true, MS_STRICTATIME },
        { "lazytime", false, MS_LAZYTIME },   { "nolazytime", true, MS_LAZYTIME },
        { "nosymfollow", false, MS_NOSYMFOLLOW }, { "symfollow", true, MS_NOSYMFOLLOW },
        { "silent", false, MS_SILENT },       { "loud", true, MS_SILENT },
        { "bind", false, MS_BIND },           { "rbind", false, MS_BIND | MS_REC },
};

static const struct {
        const char *name;
        unsigned long flag;
} propagation_table[] = {
        { "private", MS_PRIVATE },      { "rprivate", MS_PRIVATE | MS_REC },
        { "shared", MS_SHARED },        { "rshared", MS_SHARED | MS_REC },
        { "slave", MS_SLAVE },          { "rslave", MS_SLAVE | MS_REC },
        { "unbindable", MS_UNBINDABLE }, { "runbindable", MS_UNBINDABLE | MS_REC },
};

json_t *mount_option_names(void)
{
        json_t *a = json_array();
        for (size_t i = 0; i < ARRAY_SIZE(flag_table); i++)
                json_array_append_new(a, json_string(flag_table[i].name));
        for (size_t i = 0; i < ARRAY_SIZE(propagation_table); i++)
                json_array_append_new(a, json_string(propagation_table[i].name));
        json_array_append_new(a, json_string("tmpcopyup"));
        return a;
}

int mount_parse_options(char **options, unsigned long *ret_flags, unsigned long *ret_clear,
                        unsigned long *ret_propagation, char **ret_data, struct berr *e)
{
        unsigned long flags = 0, clear = 0, prop = 0;
        _cleanup_free_ char *data = NULL;

        for (char **o = options; o && *o; o++) {
                bool done = false;
                for (size_t i = 0; !done && i < ARRAY_SIZE(flag_table); i++)
                        if (strcmp(*o, flag_table[i].name) == 0) {
                                if (flag_table[i].clear) {
                                        flags &= ~flag_table[i].flag;
                                        clear |= flag_table[i].flag;
                                } else {
                                        flags |= flag_table[i].flag;
                                        clear &= ~flag_table[i].flag;
                                }
                                done = true;
                        }
                for (size_t i = 0; !done && i < ARRAY_SIZE(propagation_table); i++)
                        if (strcmp(*o, propagation_table[i].name) == 0) {
                                prop = propagation_table[i].flag;
                                done = true;
                        }
                if (done || strcmp(*o, "tmpcopyup") == 0)
                        continue;
                if (strcmp(*o, "idmap") == 0 || strcmp(*o, "ridmap") == 0)
                        return berr_setx(e, EOPNOTSUPP, "mount option \"%s\" is not supported", *o);
                char *nd = NULL;
                if (asprintf(&nd, "%s%s%s", data ? data : "", data ? "," : "", *o) < 0)
                        return -ENOMEM;
                free(data);
                data = nd;
        }
        *ret_flags = flags;
        if (ret_clear)
                *ret_clear = clear;
        *ret_propagation = prop;
        *ret_data = TAKE_PTR(data);
        return 0;
}

/* Flags of the mount at path that a bind remount must keep (they may be
 * locked, and dropping nosuid/nodev/noexec would loosen the mount). */
static unsigned long locked_flags(const char *path)
{
        struct statvfs sv;
        unsigned long f = 0;
        if (statvfs(path, &sv) < 0)
                return 0;
        if (sv.f_flag & ST_NOSUID)
                f |= MS_NOSUID;
        if (sv.f_flag & ST_NODEV)
                f |= MS_NODEV;
        if (sv.f_flag & ST_NOEXEC)
                f |= MS_NOEXEC;
        if (sv.f_flag & ST_RDONLY)
                f |= MS_RDONLY;
        if (sv.f_flag & ST_NOATIME)
                f |= MS_NOATIME;
        if (sv.f_flag & ST_NODIRATIME)
                f |= MS_NODIRATIME;
        if (sv.f_flag & ST_RELATIME)
                f |= MS_RELATIME;
        return f;
}

static int do_mount(const char *src, const char *dst_fd_path, const char *shown_dst, const char *type,
                    unsigned long flags, const char *data, struct berr *e)
{
        if (mount(src, dst_fd_path, type, flags, data) < 0)
                return berr_set(e, errno, "mount \"%s\" on \"%s\" (type %s, flags 0x%lx, data \"%s\")",
                                src ? src : "none", shown_dst, type ? type : "none", flags, data ? data : "");
        return 0;
}

/* Reopens a destination after something was mounted on it, so that the fd
 * names the new mount, not the directory beneath. */
static int reopen_dest(int rootfd, const char *dest, struct berr *e)
{
        int fd = fs_open_in_root(rootfd, dest, O_PATH, 0);
        if (fd < 0)
                return berr_set(e, fd, "cannot reopen mount point \"%s\"", dest);
        return fd;
}

static int remount_bind(int rootfd, const char *dest, unsigned long flags, struct berr *e)
{
        char p[64];
        _cleanup_close_ int fd = reopen_dest(rootfd, dest, e);
        if (fd < 0)
                return fd;
        fs_fd_path(fd, p, sizeof(p));
        unsigned long keep = locked_flags(p) & ~MS_RDONLY;
        return do_mount(NULL, p, dest, NULL, MS_REMOUNT | MS_BIND | (flags & ~(MS_BIND | MS_REMOUNT)) | keep, NULL,
                        e);
}

/* /sys/fs/cgroup: a tmpfs with one bind per v1 hierarchy (the container's
 * own cgroup directory), or the v2 hierarchy alone. */
static int mount_cgroups(int rootfd, const struct rootfs_opts *o, const struct spec_mount *m, unsigned long flags,
                         struct berr *e)
{
        json_t *paths = o->cgroup_paths;
        json_t *v2 = json_object_get(paths, "cgroup2");
        bool only_v2 = v2 && json_object_size(paths) == 1;
        char p[64];
        int r;

        _cleanup_close_ int fd = fs_mkdir_p_in_root(rootfd, m->destination, 0755);
        if (fd < 0)
                return berr_set(e, fd, "cannot create mount point \"%s\"", m->destination);
        fs_fd_path(fd, p, sizeof(p));

        if (only_v2) {
                if (o->cgroupns)
                        return do_mount("cgroup2", p, m->destination, "cgroup2", flags & ~MS_BIND, NULL, e);
                r = do_mount(json_string_value(v2), p, m->destination, NULL, MS_BIND | MS_REC, NULL, e);
                return r < 0 ? r : remount_bind(rootfd, m->destination, flags, e);
        }

        r = do_mount("tmpfs", p, m->destination, "tmpfs", (flags & ~MS_RDONLY) | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                     "mode=755", e);
        if (r < 0)
                return r;

        const char *key;
        json_t *dir;
        json_object_foreach(paths, key, dir) {
                if (strcmp(key, "cgroup2") == 0)
                        continue;
                const char *name = strncmp(key, "name=", 5) == 0 ? key + 5 : key;
                _cleanup_free_ char *dst = NULL;
                char sp[64];
                if (asprintf(&dst, "%s/%s", m->destination, name) < 0)
                        return -ENOMEM;
                _cleanup_close_ int dfd = fs_mkdir_p_in_root(rootfd, dst, 0755);
                if (dfd < 0)
                        return berr_set(e, dfd, "cannot create mount point \"%s\"", dst);
                fs_fd_path(dfd, sp, sizeof(sp));
                if ((r = do_mount(json_string_value(dir), sp, dst, NULL, MS_BIND | MS_REC, NULL, e)) < 0 ||
                    (r = remount_bind(rootfd, dst, flags | MS_NOSUID | MS_NODEV | MS_NOEXEC, e)) < 0)
                        return r;
                /* "cpu,cpuacct" is also reachable as "cpu" and "cpuacct" */
                if (strchr(name, ',')) {
                        _cleanup_free_ char *copy = strdup(name);
                        char *save = NULL;
                        _cleanup_close_ int pfd = fs_open_in_root(rootfd, m->destination, O_PATH | O_DIRECTORY, 0);
                        for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t && pfd >= 0;
                             t = strtok_r(NULL, ",", &save))
                                symlinkat(name, pfd, t);
                }
        }
        if (flags & MS_RDONLY) {
                _cleanup_close_ int tfd = reopen_dest(rootfd, m->destination, e);
                if (tfd < 0)
                        return tfd;
                fs_fd_path(tfd, p, sizeof(p));
                return do_mount(NULL, p, m->destination, NULL,
                                MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755", e);
        }
        return 0;
}

static int mount_one(int rootfd, const struct rootfs_opts *o, const struct spec_mount *m, struct berr *e)
{
        unsigned long flags, prop;
        _cleanup_free_ char *data = NULL, *src = NULL;
        _cleanup_close_ int fd = -1;
        char p[64];
        int r;

        if ((r = mount_parse_options(m->options, &flags, NULL, &prop, &data, e)) < 0)
                return berr_prefix(e, "mount \"%s\"", m->destination);

        const char *type = m->type && *m->type ? m->type : NULL;
        bool bind = (flags & MS_BIND) || (type && strcmp(type, "bind") == 0);

        if (type && (strcmp(type, "cgroup") == 0 || strcmp(type, "cgroup2") == 0) && !bind) {
                r = mount_cgroups(rootfd, o, m, flags, e);
                if (r < 0)
                        return r;
                goto propagation;
        }

        if (bind) {
                struct stat st;
                if (!m->source || !*m->source)
                        return berr_setx(e, EINVAL, "bind mount on \"%s\" has no source", m->destination);
                if (m->source[0] == '/')
                        src = strdup(m->source);
                else if (asprintf(&src, "%s/%s", o->bundle, m->source) < 0)
                        src = NULL;
                if (!src)
                        return -ENOMEM;
                if (stat(src, &st) < 0)
                        return berr_set(e, errno, "bind mount source \"%s\"", src);
                fd = S_ISDIR(st.st_mode) ? fs_mkdir_p_in_root(rootfd, m->destination, 0755)
                                         : fs_mkfile_in_root(rootfd, m->destination, 0644);
        } else
                fd = fs_mkdir_p_in_root(rootfd, m->destination, 0755);
        if (fd < 0)
                return berr_set(e, fd, "cannot create mount point \"%s\" in the rootfs", m->destination);
        fs_fd_path(fd, p, sizeof(p));

        if (bind) {
                if ((r = do_mount(src, p, m->destination, NULL, MS_BIND | (flags & MS_REC), NULL, e)) < 0)
                        return r;
                if ((flags & ~(MS_BIND | MS_REC | MS_REMOUNT)) && (r = remount_bind(rootfd, m->destination, flags, e)) < 0)
                        return r;
        } else {
                const char *source = m->source && *m->source ? m->source : type;
                r = do_mount(source, p, m->destination, type, flags & ~MS_REMOUNT, data, e);
                if (r == -EPERM && type && strcmp(type, "sysfs") == 0) {
                        /* a network namespace owned by another user namespace
                         * (joined by path): sysfs cannot be mounted for it;
                         * bind the host's, as runc does */
                        if ((r = do_mount("/sys", p, m->destination, NULL, MS_BIND | MS_REC, NULL, e)) < 0 ||
                            (r = remount_bind(rootfd, m->destination, flags | MS_NOSUID | MS_NODEV | MS_NOEXEC, e)) < 0)
                                return r;
                } else if (r < 0)
                        return r;
        }

propagation:
        if (prop) {
                _cleanup_close_ int pfd = reopen_dest(rootfd, m->destination, e);
                if (pfd < 0)
                        return pfd;
                fs_fd_path(pfd, p, sizeof(p));
                if ((r = do_mount(NULL, p, m->destination, NULL, prop, NULL, e)) < 0)
                        return r;
        }
        return 0;
}

static bool dev_is_bound(const struct spec *s)
{
        for (size_t i = 0; i < s->n_mounts; i++) {
                const struct spec_mount *m = &s->mounts[i];
                if (strcmp(m->destination, "/dev") != 0)
                        continue;
                if (m->type && strcmp(m->type, "bind") == 0)
                        return true;
                for (char **o = m->options; o && *o; o++)
                        if (strcmp(*o, "bind") == 0 || strcmp(*o, "rbind") == 0)
                                return true;
        }
        return false;
}

static int make_device(int rootfd, const char *path, char type, unsigned major_, unsigned minor_, mode_t mode,
                       uid_t uid, gid_t gid, struct berr *e)
{
        _cleanup_free_ char *dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        char *slash = strrchr(dir, '/');
        const char *base = path + (slash - dir) + 1;
        *slash = '\0';
        _cleanup_close_ int dfd = fs_mkdir_p_in_root(rootfd, *dir ? dir : "/", 0755);
        if (dfd < 0)
                return berr_set(e, dfd, "cannot create the directory of device \"%s\"", path);

        mode_t kind = type == 'b' ? S_IFBLK : type == 'p' ? S_IFIFO : S_IFCHR;
        unlinkat(dfd, base, 0);
        if (mknodat(dfd, base, kind | (mode & 07777), makedev(major_, minor_)) < 0) {
                if (errno != EPERM)
                        return berr_set(e, errno, "cannot create device \"%s\"", path);
                /* no mknod rights (user namespace): bind the host's node */
                char p[64];
                _cleanup_close_ int ffd = fs_mkfile_in_root(rootfd, path, 0000);
                if (ffd < 0)
                        return berr_set(e, ffd, "cannot create \"%s\"", path);
                return do_mount(path, fs_fd_path(ffd, p, sizeof(p)), path, NULL, MS_BIND, NULL, e);
        }
        if (fchmodat(dfd, base, mode & 07777, 0) < 0)
                return berr_set(e, errno, "cannot chmod device \"%s\"", path);
        if (fchownat(dfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
                return berr_set(e, errno, "cannot chown device \"%s\"", path);
        return 0;
}

static int setup_dev(int rootfd, const struct spec *s, struct berr *e)
{
        static const struct {
                const char *path;
                unsigned major_, minor_;
        } defaults[] = {
                { "/dev/null", 1, 3 },   { "/dev/zero", 1, 5 },    { "/dev/full", 1, 7 },
                { "/dev/random", 1, 8 }, { "/dev/urandom", 1, 9 }, { "/dev/tty", 5, 0 },
        };
        static const struct {
                const char *target, *link;
        } links[] = {
                { "/proc/self/fd", "fd" },     { "/proc/self/fd/0", "stdin" }, { "/proc/self/fd/1", "stdout" },
                { "/proc/self/fd/2", "stderr" }, { "pts/ptmx", "ptmx" },
        };
        int r;

        for (size_t i = 0; i < ARRAY_SIZE(defaults); i++)
                if ((r = make_device(rootfd, defaults[i].path, 'c', defaults[i].major_, defaults[i].minor_, 0666, 0, 0,
                                     e)) < 0)
                        return r;
        for (size_t i = 0; i < s->n_devices; i++) {
                const struct spec_device *d = &s->devices[i];
                if ((r = make_device(rootfd, d->path, d->type, (unsigned) d->major, (unsigned) d->minor,
                                     d->has_mode ? d->mode : 0666, d->has_uid ? d->uid : 0, d->has_gid ? d->gid : 0,
                                     e)) < 0)
                        return r;
        }

        _cleanup_close_ int dev = fs_mkdir_p_in_root(rootfd, "/dev", 0755);
        if (dev < 0)
                return berr_set(e, dev, "cannot open /dev in the rootfs");
        for (size_t i = 0; i < ARRAY_SIZE(links); i++)
                if (symlinkat(links[i].target, dev, links[i].link) < 0 && errno != EEXIST)
                        return berr_set(e, errno, "cannot create symlink \"/dev/%s\"", links[i].link);
        if (access("/proc/kcore", F_OK) == 0 && symlinkat("/proc/kcore", dev, "core") < 0 && errno != EEXIST)
                return berr_set(e, errno, "cannot create symlink \"/dev/core\"");
        return 0;
}

static int pivot(const char *rootfs, bool no_pivot, struct berr *e)
{
        if (no_pivot) {
                if (chdir(rootfs) < 0)
                        return berr_set(e, errno, "cannot chdir to \"%s\"", rootfs);
                if (mount(rootfs, "/", NULL, MS_MOVE, NULL) < 0)
                        return berr_set(e, errno, "cannot move \"%s\" to /", rootfs);
                if (chroot(".") < 0)
                        return berr_set(e, errno, "cannot chroot to \"%s\"", rootfs);
                if (chdir("/") < 0)
                        return berr_set(e, errno, "cannot chdir to /");
                return 0;
        }

        _cleanup_close_ int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        _cleanup_close_ int newroot = open(rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        if (oldroot < 0 || newroot < 0)
                return berr_set(e, errno, "cannot open the old or new root");
        if (fchdir(newroot) < 0)
                return berr_set(e, errno, "cannot chdir to \"%s\"", rootfs);
        /* pivot_root(".", "."): the old root ends up on top of the new one,
         * and is then detached, with no directory needed for it. */
        if (syscall(SYS_pivot_root, ".", ".") < 0)
                return berr_set(e, errno, "pivot_root to \"%s\"", rootfs);
        if (fchdir(oldroot) < 0)
                return berr_set(e, errno, "cannot chdir to the old root");
        if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
                return berr_set(e, errno, "cannot make the old root a slave");
        if (umount2(".", MNT_DETACH) < 0)
                return berr_set(e, errno, "cannot detach the old root");
        if (chdir("/") < 0)
                return berr_set(e, errno, "cannot chdir to /");
        return 0;
}

static int apply_sysctl(const struct spec *s, struct berr *e)
{
        const char *key;
        json_t *v;
        if (!s->sysctl)
                return 0;
        json_object_foreach(s->sysctl, key, v) {
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "/proc/sys/%s", key) < 0)
                        return -ENOMEM;
                for (char *c = path + strlen("/proc/sys/"); *c; c++)
                        if (*c == '.')
                                *c = '/';
                _cleanup_close_ int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
                const char *val = json_string_value(v);
                if (fd < 0 || write(fd, val, strlen(val)) < 0)
                        return berr_set(e, errno, "cannot set sysctl %s=\"%s\"", key, val);
        }
        return 0;
}

static int mask_paths(const struct spec *s, struct berr *e)
{
        for (char **p = s->readonly_paths; p && *p; p++) {
                if (mount(*p, *p, NULL, MS_BIND | MS_REC, NULL) < 0) {
                        if (errno == ENOENT)
                                continue;
                        return berr_set(e, errno, "cannot bind \"%s\" read-only", *p);
                }
                unsigned long keep = locked_flags(*p);
                if (mount(NULL, *p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_REC | keep, NULL) < 0)
                        return berr_set(e, errno, "cannot make \"%s\" read-only", *p);
        }
        for (char **p = s->masked_paths; p && *p; p++) {
                struct stat st;
                if (lstat(*p, &st) < 0) {
                        if (errno == ENOENT)
                                continue;
                        return berr_set(e, errno, "cannot mask \"%s\"", *p);
                }
                int r;
                if (S_ISDIR(st.st_mode))
                        r = mount("tmpfs", *p, "tmpfs", MS_RDONLY, NULL);
                else
                        r = mount("/dev/null", *p, NULL, MS_BIND, NULL);
                if (r < 0 && errno != ENOENT)
                        return berr_set(e, errno, "cannot mask \"%s\"", *p);
        }
        return 0;
}

static int root_propagation(const struct spec *s, unsigned long *ret)
{
        *ret = MS_SLAVE | MS_REC;
        if (!s->rootfs_propagation || !*s->rootfs_propagation)
                return 0;
        for (size_t i = 0; i < ARRAY_SIZE(propagation_table); i++)
                if (strcmp(s->rootfs_propagation, propagation_table[i].name) == 0) {
                        *ret = propagation_table[i].flag | MS_REC;
                        return 0;
                }
        return -EINVAL;
}

int rootfs_setup(const struct rootfs_opts *o, struct berr *e)
{
        const struct spec *s = o->spec;
        unsigned long prop;
        int r;

        if (root_propagation(s, &prop) < 0)
                return berr_setx(e, EINVAL, "invalid rootfsPropagation \"%s\"", s->rootfs_propagation);
        /* Nothing we mount may propagate back to the host. */
        if (mount(NULL, "/", NULL, (prop & MS_SHARED) ? (MS_SLAVE | MS_REC) : prop, NULL) < 0)
                return berr_set(e, errno, "cannot set the propagation of /");
        if (mount(o->rootfs, o->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
                return berr_set(e, errno, "cannot bind the rootfs \"%s\"", o->rootfs);

        _cleanup_close_ int rootfd = open(o->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return berr_set(e, errno, "cannot open the rootfs \"%s\"", o->rootfs);

        mode_t old_umask = umask(0);
        for (size_t i = 0; i < s->n_mounts; i++)
                if ((r = mount_one(rootfd, o, &s->mounts[i], e)) < 0)
                        goto out;
        if (!dev_is_bound(s) && (r = setup_dev(rootfd, s, e)) < 0)
                goto out;

        /* runc creates a missing cwd; do it while the root is writable */
        if (s->process.cwd) {
                int cfd = fs_mkdir_p_in_root(rootfd, s->process.cwd, 0755);
                if (cfd < 0) {
                        r = berr_set(e, cfd, "cannot create cwd \"%s\"", s->process.cwd);
                        goto out;
                }
                close(cfd);
        }
        umask(old_umask);

        if (o->before_pivot && (r = o->before_pivot(o->userdata, e)) < 0)
                return r;
        if ((r = pivot(o->rootfs, o->no_pivot, e)) < 0)
                return r;
        if ((r = apply_sysctl(s, e)) < 0)
                return r;
        if (s->root_readonly) {
                unsigned long keep = locked_flags("/");
                if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, NULL) < 0)
                        return berr_set(e, errno, "cannot make the rootfs read-only");
        }
        if ((r = mask_paths(s, e)) < 0)
                return r;
        if (prop & MS_SHARED && mount(NULL, "/", NULL, prop, NULL) < 0)
                return berr_set(e, errno, "cannot make / %s", s->rootfs_propagation);
        return 0;
out:
        umask(old_umask);
        return r;
}

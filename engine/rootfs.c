/* A container's filesystem view in a thread's own mount namespace, and
 * Docker's path arithmetic inside it (see rootfs.h). */
#include "rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "err.h"
#include "fs-util.h"
#include "log.h"
#include "time-util.h"

#define MAX_LINKS 255

static uint64_t mnt_id_of(int fd)
{
        struct statx sx;
        if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &sx) < 0 ||
            !(sx.stx_mask & STATX_MNT_ID))
                return 0;
        return sx.stx_mnt_id;
}

static bool has_option(const char *opts, const char *want)
{
        size_t n = strlen(want);
        for (const char *p = opts; p && *p;) {
                const char *e = strchrnul(p, ',');
                if ((size_t) (e - p) == n && !strncmp(p, want, n))
                        return true;
                p = *e ? e + 1 : e;
        }
        return false;
}

struct bind {
        const char *dest;
        const char *source;
        bool ro;
        size_t depth;
};

static int bind_cmp(const void *a, const void *b)
{
        const struct bind *x = a, *y = b;
        if (x->depth != y->depth)
                return x->depth < y->depth ? -1 : 1;
        return x < y ? -1 : x > y;
}

static size_t path_depth(const char *p)
{
        size_t n = 0;
        for (; *p; p++)
                if (*p == '/' && p[1] && p[1] != '/')
                        n++;
        return n;
}

/* The spec's bind mounts, parents before children. */
static size_t spec_binds(json_t *spec, struct bind **ret)
{
        json_t *mounts = json_object_get(spec, "mounts");
        size_t n = 0, i;
        json_t *m;
        struct bind *v = calloc(json_array_size(mounts) + 1, sizeof(*v));
        if (!v) {
                *ret = NULL;
                return 0;
        }
        json_array_foreach(mounts, i, m)
        {
                const char *type = json_string_value(json_object_get(m, "type"));
                const char *dest = json_string_value(json_object_get(m, "destination"));
                const char *source = json_string_value(json_object_get(m, "source"));
                bool bind = type && !strcmp(type, "bind");
                bool ro = false;
                size_t k;
                json_t *o;
                json_array_foreach(json_object_get(m, "options"), k, o)
                {
                        const char *s = json_string_value(o);
                        if (s && (!strcmp(s, "bind") || !strcmp(s, "rbind")))
                                bind = true;
                        if (s && !strcmp(s, "ro"))
                                ro = true;
                }
                if (!bind || !dest || dest[0] != '/' || !source || source[0] != '/')
                        continue;
                v[n++] = (struct bind) { dest, source, ro, path_depth(dest) };
        }
        qsort(v, n, sizeof(*v), bind_cmp);
        *ret = v;
        return n;
}

static int mount_bind(int rootfd, const struct bind *b, bool create, char *err, size_t errlen)
{
        _cleanup_close_ int sfd = open(b->source, O_PATH | O_CLOEXEC);
        struct stat sst, dst;
        if (sfd < 0 || fstat(sfd, &sst) < 0) {
                /* dockerd fails on a vanished source too */
                return err_buf(err, errlen, -errno, "engine: the source \"%s\" of the mount on \"%s\": %s", b->source,
                            b->dest, strerror(errno));
        }
        _cleanup_close_ int dfd = fs_open_in_root(rootfd, b->dest, O_PATH, 0);
        if (dfd == -ENOENT && create)
                dfd = S_ISDIR(sst.st_mode) ? fs_mkdir_p_in_root(rootfd, b->dest, 0755)
                                           : fs_mkfile_in_root(rootfd, b->dest, 0644);
        if (dfd < 0) {
                /* never started: the mount point does not exist, nothing is there */
                log_debug("engine: the mount point \"%s\" of \"%s\": %s: not mounted", b->dest, b->source,
                          strerror(-dfd));
                return 0;
        }
        if (fstat(dfd, &dst) < 0)
                return err_buf(err, errlen, -errno, "engine: stat of the mount point \"%s\": %s", b->dest,
                            strerror(errno));
        if (S_ISDIR(sst.st_mode) != S_ISDIR(dst.st_mode)) {
                log_debug("engine: the mount point \"%s\" is not of the type of \"%s\": not mounted", b->dest,
                          b->source);
                return 0;
        }
        char sp[64], dp[64];
        snprintf(sp, sizeof(sp), "/proc/thread-self/fd/%d", sfd);
        snprintf(dp, sizeof(dp), "/proc/thread-self/fd/%d", dfd);
        if (mount(sp, dp, NULL, MS_BIND | MS_REC, NULL) < 0)
                return err_buf(err, errlen, -errno, "engine: mount(\"%s\", \"%s\", bind): %s", b->source, b->dest,
                            strerror(errno));
        if (!b->ro)
                return 0;
        /* the new mount is on top of what dfd names: open it again */
        _cleanup_close_ int nfd = fs_open_in_root(rootfd, b->dest, O_PATH, 0);
        if (nfd < 0)
                return err_buf(err, errlen, nfd, "engine: the mount point \"%s\": %s", b->dest, strerror(-nfd));
        snprintf(dp, sizeof(dp), "/proc/thread-self/fd/%d", nfd);
        if (mount(NULL, dp, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
                return err_buf(err, errlen, -errno, "engine: remount \"%s\" read-only: %s", b->dest, strerror(errno));
        return 0;
}

static int mount_root(const char *dir, const struct rootfs_source *src, char *err, size_t errlen)
{
        if (src->bundle_rootfs) {
                if (mount(src->bundle_rootfs, dir, NULL, MS_BIND, NULL) < 0)
                        return err_buf(err, errlen, -errno, "engine: mount(\"%s\", \"%s\", bind): %s",
                                    src->bundle_rootfs, dir, strerror(errno));
                return 0;
        }
        const struct rootfs_mount *m = &src->snap;
        if (!m->type)
                return err_buf(err, errlen, -EINVAL, "engine: the container has no snapshot mount");
        if (!strcmp(m->type, "overlay")) {
                if (strlen(m->options) >= 4096)
                        return err_buf(err, errlen, -E2BIG, "engine: overlay options longer than a page");
                if (mount("overlay", dir, "overlay", 0, m->options) < 0)
                        return err_buf(err, errlen, -errno, "engine: mount(\"overlay\", \"%s\", \"overlay\", \"%s\"): %s",
                                    dir, m->options, strerror(errno));
                return 0;
        }
        if (!strcmp(m->type, "bind")) {
                if (mount(m->source, dir, NULL, MS_BIND, NULL) < 0)
                        return err_buf(err, errlen, -errno, "engine: mount(\"%s\", \"%s\", bind): %s", m->source, dir,
                                    strerror(errno));
                if (has_option(m->options, "ro") &&
                    mount(NULL, dir, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0) {
                        int e = errno;
                        umount2(dir, MNT_DETACH);
                        return err_buf(err, errlen, -e, "engine: remount \"%s\" read-only: %s", dir, strerror(e));
                }
                return 0;
        }
        return err_buf(err, errlen, -EINVAL, "engine: a snapshot mount of type \"%s\"", m->type);
}

int rootfs_view_open(const char *dir, const struct rootfs_source *src, struct rootfs_view *ret, char *err,
                     size_t errlen)
{
        /* a namespace of this thread's own, receiving the host's mounts
         * (a container that stops meanwhile) but never sending ours */
        if (unshare(CLONE_NEWNS | CLONE_FS) < 0)
                return err_buf(err, errlen, -errno, "engine: unshare(CLONE_NEWNS): %s", strerror(errno));
        if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
                return err_buf(err, errlen, -errno, "engine: making the mounts slaves: %s", strerror(errno));
        int r = mount_root(dir, src, err, errlen);
        if (r < 0)
                return r;
        struct rootfs_view v = { .rootfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC) };
        if (v.rootfd < 0 || !(v.dir = strdup(dir))) {
                r = err_buf(err, errlen, v.rootfd < 0 ? -errno : -ENOMEM, "engine: opening the view \"%s\": %s", dir,
                         strerror(errno));
                goto fail;
        }
        v.root_mnt_id = mnt_id_of(v.rootfd);
        if (src->with_binds && src->spec) {
                _cleanup_free_ struct bind *binds = NULL;
                size_t n = spec_binds(src->spec, &binds);
                for (size_t i = 0; i < n; i++)
                        if ((r = mount_bind(v.rootfd, &binds[i], src->create_mountpoints, err, errlen)) < 0)
                                goto fail;
        }
        *ret = v;
        return 0;
fail:
        if (v.rootfd >= 0)
                close(v.rootfd);
        free(v.dir);
        umount2(dir, MNT_DETACH);
        return r;
}

void rootfs_view_close(struct rootfs_view *v)
{
        if (v->rootfd >= 0)
                close(v->rootfd);
        v->rootfd = -1;
        /* the view and the binds on it; the namespace dies with the thread
         * anyway */
        if (v->dir && umount2(v->dir, MNT_DETACH) < 0)
                log_warn("engine: unmounting the view \"%s\": %s", v->dir, strerror(errno));
        free(v->dir);
        v->dir = NULL;
}

/* ---- paths ---- */

int rootfs_clean_path(const char *p, bool relative, char **ret)
{
        size_t n = strlen(p);
        char *out = malloc(n + 2);
        if (!out)
                return -ENOMEM;
        /* out[0..top) is the part ".." cannot take away: "/" or nothing */
        size_t top = relative ? 0 : 1, o = top;
        out[0] = '/';
        for (const char *s = p; *s;) {
                while (*s == '/')
                        s++;
                const char *e = strchrnul(s, '/');
                size_t len = (size_t) (e - s);
                if (len == 0 || (len == 1 && s[0] == '.')) {
                } else if (len == 2 && s[0] == '.' && s[1] == '.') {
                        if (relative && o == top) {
                                free(out);
                                return -EXDEV;
                        }
                        while (o > top && out[o - 1] != '/')
                                o--;
                        if (o > top)
                                o--;
                } else {
                        if (o > top)
                                out[o++] = '/';
                        memcpy(out + o, s, len);
                        o += len;
                }
                s = e;
        }
        out[o] = '\0';
        *ret = out;
        return 0;
}

static char *clean_abs(const char *p)
{
        char *out = NULL;
        return rootfs_clean_path(p, false, &out) < 0 ? NULL : out;
}

const char *rootfs_base(const char *abs, char *buf, size_t len)
{
        size_t n = strlen(abs);
        while (n > 0 && abs[n - 1] == '/')
                n--;
        if (n == 0) {
                snprintf(buf, len, "%s", *abs ? "/" : ".");
                return buf;
        }
        size_t s = n;
        while (s > 0 && abs[s - 1] != '/')
                s--;
        snprintf(buf, len, "%.*s", (int) (n - s), abs + s);
        return buf;
}

static bool specifies_current_dir(const char *p)
{
        char b[PATH_MAX];
        return !strcmp(rootfs_base(p, b, sizeof(b)), ".");
}

char *rootfs_abs_path(const char *path)
{
        char *c = clean_abs(path);
        if (!c)
                return NULL;
        size_t n = strlen(c), pn = strlen(path);
        bool dot = specifies_current_dir(path) && !specifies_current_dir(c);
        bool sep = pn > 0 && path[pn - 1] == '/';
        char *out = malloc(n + 3);
        if (!out) {
                free(c);
                return NULL;
        }
        memcpy(out, c, n + 1);
        free(c);
        if (dot) {
                if (out[n - 1] != '/')
                        out[n++] = '/';
                out[n++] = '.';
                out[n] = '\0';
        }
        if (sep && out[n - 1] != '/') {
                out[n++] = '/';
                out[n] = '\0';
        }
        return out;
}

int rootfs_eval(int rootfd, const char *path, char **ret)
{
        _cleanup_free_ char *todo = strdup(path);
        char resolved[PATH_MAX] = "";
        size_t rlen = 0;
        int links = 0;
        if (!todo)
                return -ENOMEM;
        char *p = todo;
        for (;;) {
                while (*p == '/')
                        p++;
                if (!*p)
                        break;
                char *e = strchrnul(p, '/');
                size_t len = (size_t) (e - p);
                char comp[NAME_MAX + 1];
                if (len > NAME_MAX)
                        return -ENAMETOOLONG;
                memcpy(comp, p, len);
                comp[len] = '\0';
                p = e;
                if (!strcmp(comp, "."))
                        continue;
                if (!strcmp(comp, "..")) {
                        while (rlen > 0 && resolved[rlen - 1] != '/')
                                rlen--;
                        if (rlen > 0)
                                rlen--;
                        resolved[rlen] = '\0';
                        continue;
                }
                struct stat st;
                char target[PATH_MAX];
                ssize_t tn = -1;
                _cleanup_close_ int pfd = fs_open_in_root(rootfd, rlen ? resolved : "/", O_PATH | O_DIRECTORY, 0);
                if (pfd >= 0 && fstatat(pfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                        tn = readlinkat(pfd, comp, target, sizeof(target) - 1);
                if (tn < 0) {
                        /* not a symlink, or missing: taken as it is */
                        if (rlen + 1 + len >= sizeof(resolved))
                                return -ENAMETOOLONG;
                        resolved[rlen++] = '/';
                        memcpy(resolved + rlen, comp, len + 1);
                        rlen += len;
                        continue;
                }
                if (++links > MAX_LINKS)
                        return -ELOOP;
                target[tn] = '\0';
                if (target[0] == '/') {
                        rlen = 0;
                        resolved[0] = '\0';
                }
                char *nt = NULL;
                if (asprintf(&nt, "%s/%s", target, p) < 0)
                        return -ENOMEM;
                free(todo);
                todo = nt;
                p = todo;
        }
        char *out = strdup(rlen ? resolved : "/");
        if (!out)
                return -ENOMEM;
        *ret = out;
        return 0;
}

int rootfs_open_nofollow(int rootfd, const char *abs, char **ret_resolved)
{
        const char *slash = strrchr(abs, '/');
        const char *base = slash ? slash + 1 : abs;
        _cleanup_free_ char *dir = strndup(abs, (size_t) (base - abs));
        _cleanup_free_ char *rdir = NULL;
        if (!dir)
                return -ENOMEM;
        int r = rootfs_eval(rootfd, dir, &rdir);
        if (r < 0)
                return r;
        int fd;
        char *resolved = NULL;
        if (!*base || !strcmp(base, ".")) {
                fd = fs_open_in_root(rootfd, rdir, O_PATH, 0);
                resolved = strdup(rdir);
        } else {
                _cleanup_close_ int pfd = fs_open_in_root(rootfd, rdir, O_PATH | O_DIRECTORY, 0);
                if (pfd < 0)
                        return pfd;
                fd = openat(pfd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                if (asprintf(&resolved, "%s%s%s", rdir, strcmp(rdir, "/") ? "/" : "", base) < 0)
                        resolved = NULL;
        }
        if (fd < 0 || !resolved) {
                free(resolved);
                if (fd >= 0)
                        close(fd);
                return fd < 0 ? fd : -ENOMEM;
        }
        if (ret_resolved)
                *ret_resolved = resolved;
        else
                free(resolved);
        return fd;
}

uint32_t rootfs_go_mode(mode_t m)
{
        uint32_t g = m & 0777;
        if (m & S_ISUID)
                g |= 1u << 23;
        if (m & S_ISGID)
                g |= 1u << 22;
        if (m & S_ISVTX)
                g |= 1u << 20;
        switch (m & S_IFMT) {
        case S_IFDIR:
                g |= 1u << 31;
                break;
        case S_IFLNK:
                g |= 1u << 27;
                break;
        case S_IFBLK:
                g |= 1u << 26;
                break;
        case S_IFCHR:
                g |= 1u << 26 | 1u << 21;
                break;
        case S_IFIFO:
                g |= 1u << 25;
                break;
        case S_IFSOCK:
                g |= 1u << 24;
                break;
        }
        return g;
}

/* Go's RFC3339Nano: the fraction without trailing zeros, none when 0. */
static void go_time(const struct timespec *ts, char *buf, size_t len)
{
        time_rfc3339_nano(ts, buf, len);
        char *dot = strchr(buf, '.');
        char *z = strchr(buf, 'Z');
        if (!dot || !z)
                return;
        char *e = z;
        while (e > dot + 1 && e[-1] == '0')
                e--;
        if (e == dot + 1)
                e = dot;
        memmove(e, z, strlen(z) + 1);
}

int rootfs_path_stat(int rootfd, const char *abs, json_t **ret)
{
        _cleanup_close_ int fd = rootfs_open_nofollow(rootfd, abs, NULL);
        if (fd < 0)
                return fd;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        _cleanup_free_ char *target = NULL;
        if (S_ISLNK(st.st_mode)) {
                int r = rootfs_eval(rootfd, abs, &target);
                if (r < 0)
                        return r;
        }
        char name[NAME_MAX + 2], mtime[64];
        go_time(&st.st_mtim, mtime, sizeof(mtime));
        json_t *j = json_pack("{s:s, s:I, s:I, s:s, s:s}", "name", rootfs_base(abs, name, sizeof(name)), "size",
                              (json_int_t) st.st_size, "mode", (json_int_t) rootfs_go_mode(st.st_mode), "mtime",
                              mtime, "linkTarget", target ? target : "");
        if (!j)
                return -ENOMEM;
        *ret = j;
        return 0;
}

#include "fs-util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"

#define MAX_SYMLINKS 40

static bool force_fallback;

void fs_force_openat2_fallback(bool on)
{
        force_fallback = on;
}

char *fs_fd_path(int fd, char *buf, size_t len)
{
        snprintf(buf, len, "/proc/self/fd/%d", fd);
        return buf;
}

int fs_write_all(int fd, const void *data, size_t len)
{
        const char *p = data;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

int fs_copy_fd(int in, int out)
{
        bool plain = false; /* copy_file_range cannot serve this pair: read and write */
        char buf[64 * 1024];
        for (;;) {
                ssize_t n;
                if (!plain) {
                        n = copy_file_range(in, NULL, out, NULL, 1u << 30, 0);
                        if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
                                plain = true;
                                continue;
                        }
                } else {
                        n = read(in, buf, sizeof(buf));
                        if (n > 0) {
                                int r = fs_write_all(out, buf, (size_t) n);
                                if (r < 0)
                                        return r;
                        }
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return 0;
        }
}

static int split_parent(const char *path, char **ret_dir, const char **ret_base)
{
        const char *slash = strrchr(path, '/');
        char *dir;

        if (!slash) {
                dir = strdup(".");
                *ret_base = path;
        } else {
                dir = slash == path ? strdup("/") : strndup(path, (size_t) (slash - path));
                *ret_base = slash + 1;
        }
        if (!dir)
                return -ENOMEM;
        if (**ret_base == '\0') {
                free(dir);
                return -EINVAL;
        }
        *ret_dir = dir;
        return 0;
}

int fs_fsync_parent(const char *path)
{
        _cleanup_free_ char *dir = NULL;
        const char *base;
        int r = split_parent(path, &dir, &base);
        if (r < 0)
                return r;
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        if (fsync(dfd) < 0)
                return -errno;
        return 0;
}

int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
        return fs_write_atomic_ex(path, data, len, mode, FS_WRITE_DURABLE);
}

int fs_write_atomic_ex(const char *path, const void *data, size_t len, mode_t mode, int flags)
{
        _cleanup_free_ char *dir = NULL;
        _cleanup_free_ char *tmp = NULL;
        const char *base;
        int r;

        r = split_parent(path, &dir, &base);
        if (r < 0)
                return r;
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;

        _cleanup_close_ int fd = -1;
        for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
                free(tmp);
                if (asprintf(&tmp, ".%s.tmp%ld%d", base, (long) getpid(), attempt) < 0) {
                        tmp = NULL;
                        return -ENOMEM;
                }
                fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
                if (fd < 0 && errno != EEXIST)
                        return -errno;
        }
        if (fd < 0)
                return -EEXIST;

        r = fs_write_all(fd, data, len);
        if (r == 0 && fchmod(fd, mode) < 0)
                r = -errno;
        if (r == 0 && (flags & FS_WRITE_DURABLE) && fsync(fd) < 0)
                r = -errno;
        if (r == 0 && renameat(dfd, tmp, dfd, base) < 0)
                r = -errno;
        if (r < 0) {
                unlinkat(dfd, tmp, 0);
                return r;
        }
        if ((flags & FS_WRITE_DURABLE) && fsync(dfd) < 0)
                return -errno;
        return 0;
}

int fs_read_file(const char *path, size_t max, char **ret_data, size_t *ret_len)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;

        /* Room for max + 1 bytes, so that a file of exactly max bytes is
         * told apart from a bigger one. */
        size_t limit = max == SIZE_MAX ? max : max + 1;
        size_t cap = 4096, len = 0;
        _cleanup_free_ char *buf = malloc(cap + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len == cap) {
                        if (cap >= limit)
                                return -EFBIG;
                        cap = cap * 2 > limit ? limit : cap * 2;
                        char *nb = realloc(buf, cap + 1);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                }
                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        if (len > max)
                return -EFBIG;
        buf[len] = '\0';
        if (ret_len)
                *ret_len = len;
        *ret_data = TAKE_PTR(buf);
        return 0;
}

int fs_mkdir_p(const char *path, mode_t mode)
{
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        /* as mkdir(""); and the loop below starts past the first byte */
        if (p[0] == '\0')
                return -ENOENT;
        /* the common cases, a missing leaf or nothing to do, in one call */
        if (mkdir(p, mode) == 0)
                return 0;
        if (errno == EEXIST) {
                struct stat st;
                if (stat(p, &st) < 0)
                        return -errno;
                return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
        }
        if (errno != ENOENT)
                return -errno;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0) {
                struct stat st;
                if (errno != EEXIST)
                        return -errno;
                if (stat(p, &st) < 0)
                        return -errno;
                if (!S_ISDIR(st.st_mode))
                        return -ENOTDIR;
        }
        return 0;
}

static int rm_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
        (void) st;
        (void) ftw;
        if (remove(path) < 0 && errno != ENOENT)
                return -errno;
        (void) type;
        return 0;
}

void fs_mark_topdir(const char *path)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        int flags = 0;
        if (fd < 0 || ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0 || (flags & FS_TOPDIR_FL))
                return;
        flags |= FS_TOPDIR_FL;
        (void) ioctl(fd, FS_IOC_SETFLAGS, &flags);
}

int fs_rm_rf(const char *path)
{
        struct stat st;
        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        int r = nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
        if (r < 0)
                return -errno;
        return r > 0 ? -r : r;
}

int fs_rm_rf_at(int dfd, const char *name)
{
        if (unlinkat(dfd, name, 0) == 0)
                return 0;
        if (errno != EISDIR)
                return -errno;
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        int r = 0;
        struct dirent *de;
        while (r == 0 && (errno = 0, de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        r = fs_rm_rf_at(dirfd(d), de->d_name);
        if (r == 0 && errno)
                r = -errno;
        closedir(d);
        if (r == 0 && unlinkat(dfd, name, AT_REMOVEDIR) < 0)
                r = -errno;
        return r;
}

/* --- resolution inside a root --- */

static int openat2_in_root(int rootfd, const char *path, int flags, mode_t mode)
{
        struct open_how how = {
                .flags = (unsigned long long) (flags | O_CLOEXEC),
                /* openat2 rejects a mode without O_CREAT/O_TMPFILE; O_TMPFILE
                 * contains O_DIRECTORY's bit, so test it as a whole */
                .mode = ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) ? mode : 0,
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        for (;;) {
                long fd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
                if (fd >= 0)
                        return (int) fd;
                /* EAGAIN: a concurrent rename raced the lookup; just retry */
                if (errno != EAGAIN && errno != EINTR)
                        return -errno;
        }
}

static bool same_inode(int a, int b)
{
        struct stat sa, sb;
        if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0)
                return false;
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* The fallback: walk one component at a time with O_NOFOLLOW, expanding
 * symlinks ourselves so that absolute targets restart at rootfd and ".."
 * stops at it. A symlink swapped in between the lstat and the open is caught
 * by O_NOFOLLOW (ELOOP) and reported, never followed. */
static int walk_in_root(int rootfd, const char *path, int flags, mode_t mode)
{
        _cleanup_free_ char *rest = strdup(path);
        int links = 0;
        if (!rest)
                return -ENOMEM;

        _cleanup_close_ int cur = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cur < 0)
                return -errno;

        char *p = rest;
        for (;;) {
                while (*p == '/')
                        p++;
                if (*p == '\0') {
                        /* path named a directory (or was empty): reopen it with flags */
                        int fd = openat(cur, ".", (flags & ~(O_CREAT | O_EXCL)) | O_CLOEXEC);
                        return fd < 0 ? -errno : fd;
                }
                char *end = strchrnul(p, '/');
                bool last = true;
                for (char *q = end; *q; q++)
                        if (*q != '/') {
                                last = false;
                                break;
                        }
                char comp[NAME_MAX + 1];
                size_t clen = (size_t) (end - p);
                if (clen > NAME_MAX)
                        return -ENAMETOOLONG;
                memcpy(comp, p, clen);
                comp[clen] = '\0';
                p = end;

                if (strcmp(comp, ".") == 0)
                        continue;
                if (strcmp(comp, "..") == 0) {
                        if (same_inode(cur, rootfd))
                                continue;
                        int up = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
                        if (up < 0)
                                return -errno;
                        close(cur);
                        cur = up;
                        continue;
                }

                struct stat st;
                bool exists = fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0;
                if (!exists && errno != ENOENT)
                        return -errno;

                /* as open(2): O_NOFOLLOW, and O_CREAT|O_EXCL, do not follow a
                 * final symlink (the openat below then fails on it) */
                bool nofollow = (flags & O_NOFOLLOW) || (flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL);
                if (exists && S_ISLNK(st.st_mode) && !(last && nofollow)) {
                        char target[PATH_MAX];
                        if (++links > MAX_SYMLINKS)
                                return -ELOOP;
                        ssize_t n = readlinkat(cur, comp, target, sizeof(target) - 1);
                        if (n < 0)
                                return -errno;
                        target[n] = '\0';
                        if (target[0] == '/') {
                                int r = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
                                if (r < 0)
                                        return -errno;
                                close(cur);
                                cur = r;
                        }
                        char *nrest = NULL;
                        if (asprintf(&nrest, "%s/%s", target, p) < 0)
                                return -ENOMEM;
                        free(rest);
                        rest = nrest;
                        p = rest;
                        continue;
                }

                if (last) {
                        int fd = openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
                        if (fd < 0 && errno == ELOOP && !(flags & O_NOFOLLOW))
                                return -EXDEV; /* swapped for a symlink under us */
                        return fd < 0 ? -errno : fd;
                }
                if (!exists)
                        return -ENOENT;
                int next = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (next < 0)
                        return -errno;
                close(cur);
                cur = next;
        }
}

int fs_open_in_root(int rootfd, const char *path, int flags, mode_t mode)
{
        if (!force_fallback) {
                int fd = openat2_in_root(rootfd, path, flags, mode);
                if (fd != -ENOSYS)
                        return fd;
        }
        return walk_in_root(rootfd, path, flags, mode);
}

/* When name in pfd (the directory parent_path) is a symlink, the path to
 * use instead: its target (absolute targets start again at the root),
 * followed by rest. -EEXIST when it is not a symlink. */
static int follow_link(int pfd, const char *name, const char *parent_path, const char *rest, char **ret)
{
        struct stat st;
        char target[PATH_MAX];
        if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (!S_ISLNK(st.st_mode))
                return -EEXIST;
        ssize_t n = readlinkat(pfd, name, target, sizeof(target) - 1);
        if (n < 0)
                return -errno;
        target[n] = '\0';
        int k = target[0] == '/' ? asprintf(ret, "%s%s", target, rest)
                                 : asprintf(ret, "%s/%s%s", parent_path, target, rest);
        return k < 0 ? -ENOMEM : 0;
}

/* mkdir -p inside the root. A missing component that is a dangling
 * symlink is followed (inside the root), as the kernel would on open, and
 * its target created there. */
static int mkdir_in_root(int rootfd, const char *path, mode_t mode, int depth)
{
        if (depth > MAX_SYMLINKS)
                return -ELOOP;
        _cleanup_free_ char *buf = strdup(path);
        if (!buf)
                return -ENOMEM;
        /* "a/b/" is "a/b": the loop below ends at the last non-slash */
        size_t len = strlen(buf);
        while (len > 1 && buf[len - 1] == '/')
                buf[--len] = '\0';

        /* Try the whole path first: the common case is that it exists. */
        int fd = fs_open_in_root(rootfd, buf, O_PATH | O_DIRECTORY, 0);
        if (fd >= 0 || fd != -ENOENT)
                return fd;

        for (size_t i = 1; i <= len; i++) {
                if (buf[i] != '/' && buf[i] != '\0')
                        continue;
                if (buf[i - 1] == '/')
                        continue;
                char saved = buf[i];
                buf[i] = '\0';
                fd = fs_open_in_root(rootfd, buf, O_PATH | O_DIRECTORY, 0);
                if (fd == -ENOENT) {
                        /* create the last component in its (resolved) parent */
                        char *slash = strrchr(buf, '/');
                        const char *name = slash ? slash + 1 : buf;
                        _cleanup_free_ char *parent = slash ? strndup(buf, (size_t) (slash - buf)) : strdup("");
                        if (!parent)
                                return -ENOMEM;
                        _cleanup_close_ int pfd = fs_open_in_root(rootfd, *parent ? parent : "/", O_PATH | O_DIRECTORY, 0);
                        if (pfd < 0)
                                return pfd;
                        if (mkdirat(pfd, name, mode) < 0) {
                                if (errno != EEXIST)
                                        return -errno;
                                _cleanup_free_ char *next = NULL, *rest = NULL;
                                buf[i] = saved;
                                rest = strdup(buf + i);
                                buf[i] = '\0';
                                if (!rest)
                                        return -ENOMEM;
                                int r = follow_link(pfd, name, parent, rest, &next);
                                if (r == 0)
                                        return mkdir_in_root(rootfd, next, mode, depth + 1);
                        }
                        fd = fs_open_in_root(rootfd, buf, O_PATH | O_DIRECTORY, 0);
                }
                buf[i] = saved;
                if (fd < 0)
                        return fd;
                if (saved == '\0')
                        return fd;
                close(fd);
        }
        return -EINVAL;
}

int fs_mkdir_p_in_root(int rootfd, const char *path, mode_t mode)
{
        return mkdir_in_root(rootfd, path, mode, 0);
}

static int mkfile_in_root(int rootfd, const char *path, mode_t mode, int depth)
{
        if (depth > MAX_SYMLINKS)
                return -ELOOP;
        int fd = fs_open_in_root(rootfd, path, O_PATH, 0);
        if (fd != -ENOENT)
                return fd;

        _cleanup_free_ char *dir = NULL;
        const char *base;
        int r = split_parent(path, &dir, &base);
        if (r < 0)
                return r;
        _cleanup_close_ int pfd = fs_mkdir_p_in_root(rootfd, dir, 0755);
        if (pfd < 0)
                return pfd;
        _cleanup_close_ int dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        fd = openat(dfd, base, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0 && errno == ELOOP) {
                /* a dangling symlink: create its target, inside the root */
                _cleanup_free_ char *next = NULL;
                if ((r = follow_link(dfd, base, dir, "", &next)) < 0)
                        return r == -EEXIST ? -ELOOP : r;
                return mkfile_in_root(rootfd, next, mode, depth + 1);
        }
        if (fd < 0 && errno != EEXIST)
                return -errno;
        if (fd >= 0)
                close(fd);
        return fs_open_in_root(rootfd, path, O_PATH, 0);
}

int fs_mkfile_in_root(int rootfd, const char *path, mode_t mode)
{
        return mkfile_in_root(rootfd, path, mode, 0);
}

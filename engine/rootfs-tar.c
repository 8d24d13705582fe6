/* Tar streams of a container's view and their extraction into it
 * (libarchive reads and writes the format; every file is reached through
 * directory fds, never by a path the kernel resolves from "/"). */
#include "rootfs.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <search.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cleanup.h"
#include "err.h"
#include "fs-util.h"
#include "log.h"

static char *proc_fd(int fd, char *buf, size_t len)
{
        snprintf(buf, len, "/proc/thread-self/fd/%d", fd);
        return buf;
}

/* ---- writing ---- */

struct seen {
        dev_t dev;
        ino_t ino;
        char name[];
};

static int seen_cmp(const void *a, const void *b)
{
        const struct seen *x = a, *y = b;
        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        return x->ino < y->ino ? -1 : x->ino > y->ino;
}

struct tw {
        struct archive *a;
        struct archive_entry *e;
        void *links;      /* tsearch tree of struct seen: hard links written once */
        char *name;       /* the current entry's name (grows) */
        size_t cap;
        char *err;
        size_t errlen;
        char link[PATH_MAX];   /* a symlink's target (not on the recursion's stack) */
        char buf[64 * 1024];
};

static int name_set(struct tw *w, size_t at, const char *add)
{
        size_t n = strlen(add);
        if (at + n + 1 > w->cap) {
                size_t cap = (at + n + 1) * 2;
                char *p = realloc(w->name, cap);
                if (!p)
                        return -ENOMEM;
                w->name = p;
                w->cap = cap;
        }
        memcpy(w->name + at, add, n + 1);
        return 0;
}

static int write_fail(struct tw *w)
{
        int e = archive_errno(w->a);
        if (e == EPIPE || e == ECONNRESET)
                return -EPIPE;
        return err_buf(w->err, w->errlen, e > 0 ? -e : -EIO, "engine: writing the tar: %s",
                    archive_error_string(w->a) ?: "error");
}

/* Opens what (dfd, name) names for reading; name "" is dfd itself. */
static int open_child(int dfd, const char *name, int flags)
{
        if (*name)
                return openat(dfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
        if (flags & O_DIRECTORY)
                return openat(dfd, ".", flags | O_CLOEXEC);
        char p[64];
        return open(proc_fd(dfd, p, sizeof(p)), flags | O_CLOEXEC);
}

static int write_data(struct tw *w, int fd, off_t size)
{
        off_t done = 0;
        while (done < size) {
                size_t want = sizeof(w->buf);
                if ((off_t) want > size - done)
                        want = (size_t) (size - done);
                ssize_t n = read(fd, w->buf, want);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return err_buf(w->err, w->errlen, -errno, "engine: reading \"%s\": %s", w->name, strerror(errno));
                if (n == 0) {
                        /* it shrank while we read: the header's size stands */
                        memset(w->buf, 0, want);
                        n = (ssize_t) want;
                }
                if (archive_write_data(w->a, w->buf, (size_t) n) < 0)
                        return write_fail(w);
                done += n;
        }
        return 0;
}

static int name_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int write_tree(struct tw *w, int dfd, const char *name, size_t nlen, bool top);

static int write_children(struct tw *w, int fd, size_t nlen)
{
        int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (dup_fd < 0)
                return -errno;
        DIR *d = fdopendir(dup_fd);
        if (!d) {
                close(dup_fd);
                return -errno;
        }
        char **names = NULL;
        size_t n = 0, cap = 0;
        int r = 0;
        struct dirent *de;
        while ((errno = 0, de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                if (n == cap) {
                        char **nn = realloc(names, (cap = cap ? cap * 2 : 32) * sizeof(*names));
                        if (!nn) {
                                r = -ENOMEM;
                                break;
                        }
                        names = nn;
                }
                if (!(names[n] = strdup(de->d_name))) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        closedir(d);
        /* Go's filepath.Walk order */
        if (r == 0 && n > 1)
                qsort(names, n, sizeof(*names), name_cmp);
        for (size_t i = 0; i < n; i++) {
                if (r == 0) {
                        bool slash = nlen == 0 || w->name[nlen - 1] == '/';
                        r = name_set(w, nlen, slash ? "" : "/");
                        size_t at = nlen + (slash ? 0 : 1);
                        if (r == 0)
                                r = name_set(w, at, names[i]);
                        if (r == 0)
                                r = write_tree(w, fd, names[i], at + strlen(names[i]), false);
                        w->name[nlen] = '\0';
                }
                free(names[i]);
        }
        free(names);
        return r;
}

/* Writes (dfd, name) as w->name (of length nlen), then what is below it. */
static int write_tree(struct tw *w, int dfd, const char *name, size_t nlen, bool top)
{
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW | (*name ? 0 : AT_EMPTY_PATH)) < 0) {
                if (errno == ENOENT && !top)
                        return 0; /* gone meanwhile (a running container) */
                return err_buf(w->err, w->errlen, -errno, "engine: stat of \"%s\": %s", w->name, strerror(errno));
        }
        if (S_ISSOCK(st.st_mode))
                return 0; /* tar has no sockets; dockerd skips them too */
        _cleanup_close_ int fd = -1;
        if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
                fd = open_child(dfd, name, S_ISDIR(st.st_mode) ? O_RDONLY | O_DIRECTORY : O_RDONLY | O_NONBLOCK);
                struct stat st2;
                if (fd < 0 || fstat(fd, &st2) < 0) {
                        if (errno == ENOENT && !top)
                                return 0;
                        return err_buf(w->err, w->errlen, -errno, "engine: opening \"%s\": %s", w->name,
                                    strerror(errno));
                }
                if (st2.st_ino != st.st_ino || st2.st_dev != st.st_dev ||
                    (st2.st_mode & S_IFMT) != (st.st_mode & S_IFMT))
                        return 0; /* replaced meanwhile: skipped */
                st = st2;
        }
        struct archive_entry *e = w->e;
        archive_entry_clear(e);
        archive_entry_copy_pathname(e, nlen ? w->name : ".");
        archive_entry_copy_stat(e, &st);
        archive_entry_unset_atime(e);
        archive_entry_unset_ctime(e);
        archive_entry_unset_birthtime(e);
        if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
                struct seen key = { .dev = st.st_dev, .ino = st.st_ino };
                struct seen **found = tfind(&key, &w->links, seen_cmp);
                if (found) {
                        archive_entry_set_size(e, 0);
                        archive_entry_copy_hardlink(e, (*found)->name);
                        return archive_write_header(w->a, e) < ARCHIVE_WARN ? write_fail(w) : 0;
                }
                struct seen *s = malloc(sizeof(*s) + nlen + 1);
                if (!s)
                        return -ENOMEM;
                s->dev = st.st_dev;
                s->ino = st.st_ino;
                memcpy(s->name, w->name, nlen + 1);
                if (!tsearch(s, &w->links, seen_cmp)) {
                        free(s);
                        return -ENOMEM;
                }
        }
        if (S_ISLNK(st.st_mode)) {
                ssize_t n = readlinkat(dfd, name, w->link, sizeof(w->link) - 1);
                if (n < 0)
                        return err_buf(w->err, w->errlen, -errno, "engine: readlink \"%s\": %s", w->name,
                                    strerror(errno));
                w->link[n] = '\0';
                archive_entry_copy_symlink(e, w->link);
                archive_entry_set_size(e, 0);
        } else if (!S_ISREG(st.st_mode)) {
                archive_entry_set_size(e, 0);
        } else {
                char cap[256];
                ssize_t cn = fgetxattr(fd, "security.capability", cap, sizeof(cap));
                if (cn > 0)
                        archive_entry_xattr_add_entry(e, "security.capability", cap, (size_t) cn);
        }
        if (archive_write_header(w->a, e) < ARCHIVE_WARN)
                return write_fail(w);
        if (S_ISREG(st.st_mode))
                return write_data(w, fd, st.st_size);
        if (S_ISDIR(st.st_mode))
                return write_children(w, fd, nlen);
        return 0;
}

int rootfs_tar_write(int fd, const char *prefix, bool include_top, int out, char *err, size_t errlen)
{
        struct tw *w = calloc(1, sizeof(*w));
        if (!w)
                return err_buf(err, errlen, -ENOMEM, "engine: out of memory");
        w->err = err;
        w->errlen = errlen;
        w->a = archive_write_new();
        w->e = archive_entry_new();
        int r = (!w->a || !w->e) ? -ENOMEM : name_set(w, 0, prefix);
        if (r == 0 && (archive_write_set_format_pax_restricted(w->a) != ARCHIVE_OK ||
                       archive_write_set_bytes_per_block(w->a, 10240) != ARCHIVE_OK ||
                       archive_write_set_bytes_in_last_block(w->a, 1) != ARCHIVE_OK ||
                       archive_write_open_fd(w->a, out) != ARCHIVE_OK))
                r = write_fail(w);
        if (r == 0) {
                struct stat st;
                if (fstat(fd, &st) < 0)
                        r = err_buf(err, errlen, -errno, "engine: stat: %s", strerror(errno));
                else if (include_top || !S_ISDIR(st.st_mode))
                        r = write_tree(w, fd, "", strlen(prefix), true);
                else {
                        _cleanup_close_ int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        r = dfd < 0 ? err_buf(err, errlen, -errno, "engine: opening the directory: %s", strerror(errno))
                                    : write_children(w, dfd, strlen(prefix));
                }
        }
        if (r == 0 && archive_write_close(w->a) != ARCHIVE_OK)
                r = write_fail(w);
        if (r == -ENOMEM)
                err_buf(err, errlen, r, "engine: out of memory");
        if (w->a)
                archive_write_free(w->a);
        archive_entry_free(w->e);
        tdestroy(w->links, free);
        free(w->name);
        free(w);
        return r;
}

/* ---- extraction ---- */

struct dir_time {
        char *rel;
        struct timespec times[2];
};

struct tx {
        struct archive *a;
        int rootfd;
        const char *dest;
        const struct rootfs_extract_opts *o;
        char *err;
        size_t errlen;
        struct dir_time *dirs;
        size_t n_dirs, cap_dirs;
};

static char *join_dest(const char *dest, const char *rel)
{
        char *p = NULL;
        if (asprintf(&p, "%s/%s", dest, rel) < 0)
                return NULL;
        return p;
}

/* Owner, mode, xattrs and times of what fd (O_PATH, not a symlink) is. */
static int apply_meta(struct tx *t, struct archive_entry *e, int fd, const char *rel, bool dir)
{
        char p[64];
        proc_fd(fd, p, sizeof(p));
        uid_t uid = t->o->chown ? t->o->uid : (uid_t) archive_entry_uid(e);
        gid_t gid = t->o->chown ? t->o->gid : (gid_t) archive_entry_gid(e);
        if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH) < 0)
                return err_buf(t->err, t->errlen, -errno, "engine: chown of \"%s\": %s", rel, strerror(errno));
        if (chmod(p, archive_entry_perm(e) & 07777) < 0)
                return err_buf(t->err, t->errlen, -errno, "engine: chmod of \"%s\": %s", rel, strerror(errno));
        const char *xn;
        const void *xv;
        size_t xs;
        archive_entry_xattr_reset(e);
        while (archive_entry_xattr_next(e, &xn, &xv, &xs) == ARCHIVE_OK) {
                /* trusted.overlay.* would steer overlayfs: only these */
                if (strncmp(xn, "user.", 5) && strcmp(xn, "security.capability"))
                        continue;
                if (setxattr(p, xn, xv, xs, 0) < 0 && errno != ENOTSUP)
                        log_debug("engine: xattr %s of \"%s\": %s", xn, rel, strerror(errno));
        }
        struct timespec ts[2] = {
                { archive_entry_atime_is_set(e) ? archive_entry_atime(e) : archive_entry_mtime(e),
                  archive_entry_atime_is_set(e) ? archive_entry_atime_nsec(e) : archive_entry_mtime_nsec(e) },
                { archive_entry_mtime(e), archive_entry_mtime_nsec(e) },
        };
        if (dir) {
                /* set at the end: what is extracted into it changes them */
                if (t->n_dirs == t->cap_dirs) {
                        size_t cap = t->cap_dirs ? t->cap_dirs * 2 : 16;
                        struct dir_time *nd = realloc(t->dirs, cap * sizeof(*nd));
                        if (!nd)
                                return -ENOMEM;
                        t->dirs = nd;
                        t->cap_dirs = cap;
                }
                if (!(t->dirs[t->n_dirs].rel = strdup(rel)))
                        return -ENOMEM;
                memcpy(t->dirs[t->n_dirs++].times, ts, sizeof(ts));
                return 0;
        }
        if (utimensat(AT_FDCWD, p, ts, 0) < 0)
                log_debug("engine: times of \"%s\": %s", rel, strerror(errno));
        return 0;
}

static int copy_body(struct tx *t, int fd, const char *rel, int64_t size)
{
        const void *buf;
        size_t len;
        la_int64_t off;
        for (;;) {
                int r = archive_read_data_block(t->a, &buf, &len, &off);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN)
                        return err_buf(t->err, t->errlen, -EIO, "engine: reading the tar at \"%s\": %s", rel,
                                    archive_error_string(t->a) ?: "error");
                const char *b = buf;
                while (len > 0) {
                        ssize_t n = pwrite(fd, b, len, (off_t) off);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0)
                                return err_buf(t->err, t->errlen, -errno, "engine: writing \"%s\": %s", rel,
                                            strerror(errno));
                        b += n, len -= (size_t) n, off += n;
                }
        }
        if (ftruncate(fd, (off_t) size) < 0)
                return err_buf(t->err, t->errlen, -errno, "engine: writing \"%s\": %s", rel, strerror(errno));
        return 0;
}

/* The lexical checks dockerd makes: hard links and symlinks may not
 * point out of the destination. */
static int check_link(struct tx *t, const char *rel, const char *target, bool hard, char **ret_hard)
{
        _cleanup_free_ char *joined = NULL, *c = NULL;
        if (hard) {
                joined = strdup(target);
        } else {
                const char *slash = strrchr(rel, '/');
                if (asprintf(&joined, "%.*s/%s", slash ? (int) (slash - rel) : 0, rel, target) < 0)
                        joined = NULL;
        }
        if (!joined)
                return -ENOMEM;
        int r = rootfs_clean_path(joined, true, &c);
        if (r == -EXDEV)
                return err_buf(t->err, t->errlen, -EXDEV,
                            "engine: invalid %s link \"%s\" -> \"%s\": it points outside of \"%s\"",
                            hard ? "hard" : "symbolic", rel, target, t->dest);
        if (r < 0)
                return r;
        if (ret_hard)
                *ret_hard = TAKE_PTR(c);
        return 0;
}

static int extract_one(struct tx *t, struct archive_entry *e)
{
        const char *name = archive_entry_pathname(e);
        if (!name)
                return 0;
        _cleanup_free_ char *rel = NULL, *parent_abs = NULL, *hard = NULL;
        int r = rootfs_clean_path(name, true, &rel);
        if (r == -EXDEV)
                return err_buf(t->err, t->errlen, r, "engine: the archive entry \"%s\" is outside of \"%s\"", name,
                            t->dest);
        if (r < 0)
                return r;
        if (!*rel)
                return 0; /* the destination itself, as dockerd */
        char *slash = strrchr(rel, '/');
        const char *base = slash ? slash + 1 : rel;
        if (asprintf(&parent_abs, "%s/%.*s", t->dest, slash ? (int) (slash - rel) : 0, rel) < 0)
                return -ENOMEM;
        mode_t type = archive_entry_filetype(e);
        const char *link = archive_entry_hardlink(e);
        if (link && (r = check_link(t, rel, link, true, &hard)) < 0)
                return r;
        if (!link && type == AE_IFLNK &&
            (r = check_link(t, rel, archive_entry_symlink(e) ?: "", false, NULL)) < 0)
                return r;

        _cleanup_close_ int pfd = fs_mkdir_p_in_root(t->rootfd, parent_abs, 0755);
        if (pfd < 0)
                return err_buf(t->err, t->errlen, pfd, "engine: the directory of \"%s\": %s", rel, strerror(-pfd));
        struct stat st;
        bool exists = fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0;
        bool want_dir = !link && type == AE_IFDIR;
        if (exists) {
                if (t->o->no_overwrite_dir_nondir && S_ISDIR(st.st_mode) && !want_dir)
                        return err_buf(t->err, t->errlen, -EISDIR,
                                    "cannot overwrite directory \"%s/%s\" with non-directory \"%s\"", t->dest, rel,
                                    name);
                if (t->o->no_overwrite_dir_nondir && !S_ISDIR(st.st_mode) && want_dir)
                        return err_buf(t->err, t->errlen, -ENOTDIR,
                                    "cannot overwrite non-directory \"%s/%s\" with directory \"%s\"", t->dest, rel,
                                    name);
                if (!(S_ISDIR(st.st_mode) && want_dir) && (r = fs_rm_rf_at(pfd, base)) < 0)
                        return err_buf(t->err, t->errlen, r, "engine: removing \"%s/%s\": %s", t->dest, rel,
                                    strerror(-r));
        }

        if (link) {
                _cleanup_free_ char *tabs = join_dest(t->dest, hard);
                if (!tabs)
                        return -ENOMEM;
                _cleanup_close_ int tfd = fs_open_in_root(t->rootfd, tabs, O_PATH | O_NOFOLLOW, 0);
                if (tfd < 0)
                        return err_buf(t->err, t->errlen, tfd, "engine: the target \"%s\" of the hard link \"%s\": %s",
                                    link, rel, strerror(-tfd));
                if (linkat(tfd, "", pfd, base, AT_EMPTY_PATH) < 0)
                        return err_buf(t->err, t->errlen, -errno, "engine: hard link \"%s\" -> \"%s\": %s", rel, link,
                                    strerror(errno));
                return 0;
        }

        switch (type) {
        case AE_IFDIR:
                if (!exists && mkdirat(pfd, base, 0700) < 0)
                        return err_buf(t->err, t->errlen, -errno, "engine: mkdir \"%s\": %s", rel, strerror(errno));
                break;
        case AE_IFREG: {
                _cleanup_close_ int fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0)
                        return err_buf(t->err, t->errlen, -errno, "engine: creating \"%s\": %s", rel, strerror(errno));
                r = copy_body(t, fd, rel, archive_entry_size(e));
                if (r < 0)
                        return r;
                return apply_meta(t, e, fd, rel, false);
        }
        case AE_IFLNK: {
                if (symlinkat(archive_entry_symlink(e) ?: "", pfd, base) < 0)
                        return err_buf(t->err, t->errlen, -errno, "engine: symlink \"%s\": %s", rel, strerror(errno));
                uid_t uid = t->o->chown ? t->o->uid : (uid_t) archive_entry_uid(e);
                gid_t gid = t->o->chown ? t->o->gid : (gid_t) archive_entry_gid(e);
                if (fchownat(pfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
                        return err_buf(t->err, t->errlen, -errno, "engine: chown of \"%s\": %s", rel, strerror(errno));
                struct timespec ts[2] = { { archive_entry_mtime(e), archive_entry_mtime_nsec(e) },
                                          { archive_entry_mtime(e), archive_entry_mtime_nsec(e) } };
                (void) utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW);
                return 0;
        }
        case AE_IFCHR:
        case AE_IFBLK:
        case AE_IFIFO:
                if (mknodat(pfd, base, type | 0600, archive_entry_rdev(e)) < 0)
                        return err_buf(t->err, t->errlen, -errno, "engine: mknod \"%s\": %s", rel, strerror(errno));
                break;
        default:
                log_debug("engine: the archive entry \"%s\" of type 0%o is skipped", name, (unsigned) type);
                return 0;
        }
        _cleanup_close_ int fd = openat(pfd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        struct stat st2;
        if (fd < 0 || fstat(fd, &st2) < 0)
                return err_buf(t->err, t->errlen, -errno, "engine: opening \"%s\": %s", rel, strerror(errno));
        if ((st2.st_mode & S_IFMT) != type)
                return err_buf(t->err, t->errlen, -EEXIST, "engine: \"%s\" was replaced while it was extracted", rel);
        return apply_meta(t, e, fd, rel, type == AE_IFDIR);
}

int rootfs_tar_extract(int rootfd, const char *dest_abs, int in, const struct rootfs_extract_opts *o, char *err,
                       size_t errlen)
{
        struct tx t = { .rootfd = rootfd, .dest = dest_abs, .o = o, .err = err, .errlen = errlen };
        t.a = archive_read_new();
        if (!t.a)
                return err_buf(err, errlen, -ENOMEM, "engine: out of memory");
        /* what dockerd decompresses; never a filter that runs a program */
        archive_read_support_filter_gzip(t.a);
        archive_read_support_filter_bzip2(t.a);
        archive_read_support_filter_xz(t.a);
        archive_read_support_filter_zstd(t.a);
        archive_read_support_format_tar(t.a);
        archive_read_support_format_empty(t.a);
        int r = 0;
        if (archive_read_open_fd(t.a, in, 64 * 1024) != ARCHIVE_OK)
                r = err_buf(err, errlen, -EINVAL, "engine: the body is not a tar archive: %s",
                         archive_error_string(t.a) ?: "error");
        while (r == 0) {
                struct archive_entry *e;
                int ar = archive_read_next_header(t.a, &e);
                if (ar == ARCHIVE_EOF)
                        break;
                if (ar < ARCHIVE_WARN) {
                        r = err_buf(err, errlen, -EINVAL, "engine: reading the tar: %s",
                                 archive_error_string(t.a) ?: "error");
                        break;
                }
                r = extract_one(&t, e);
                if (r == -ENOMEM)
                        err_buf(err, errlen, r, "engine: out of memory");
        }
        /* directories' times last, deepest first */
        for (size_t i = t.n_dirs; i-- > 0;) {
                _cleanup_free_ char *abs = r == 0 ? join_dest(dest_abs, t.dirs[i].rel) : NULL;
                _cleanup_close_ int fd = abs ? fs_open_in_root(rootfd, abs, O_PATH | O_NOFOLLOW | O_DIRECTORY, 0) : -1;
                char p[64];
                if (fd >= 0 && utimensat(AT_FDCWD, proc_fd(fd, p, sizeof(p)), t.dirs[i].times, 0) < 0)
                        log_debug("engine: times of \"%s\": %s", t.dirs[i].rel, strerror(errno));
                free(t.dirs[i].rel);
        }
        free(t.dirs);
        archive_read_free(t.a);
        return r;
}

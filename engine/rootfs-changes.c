/* `docker diff` and SizeRw: a container's writable layer against its
 * image, as dockerd's overlay2 driver (the upper dir against the lower
 * dirs) and its naive differ (two trees compared, for the copy
 * snapshotter) report them. */
#include "rootfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cleanup.h"
#include "err.h"
#include "fs-util.h"

static int open_subdir(int dfd, const char *name)
{
        return openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

static int name_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* A directory's names, sorted (Go's filepath.Walk order). */
static int list_dir(int fd, char ***ret, size_t *ret_n)
{
        int d2 = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (d2 < 0)
                return -errno;
        DIR *d = fdopendir(d2);
        if (!d) {
                close(d2);
                return -errno;
        }
        char **v = NULL;
        size_t n = 0, cap = 0;
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                if (n == cap) {
                        char **nv = realloc(v, (cap = cap ? cap * 2 : 32) * sizeof(*v));
                        if (!nv) {
                                r = -ENOMEM;
                                break;
                        }
                        v = nv;
                }
                if (!(v[n] = strdup(de->d_name))) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        closedir(d);
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        free(v[i]);
                free(v);
                return r;
        }
        if (n > 1)
                qsort(v, n, sizeof(*v), name_cmp);
        *ret = v;
        *ret_n = n;
        return 0;
}

static void names_free(char **v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

static int str_cmp(const void *a, const void *b)
{
        return strcmp(a, b);
}

static bool same_fs_time(const struct timespec *a, const struct timespec *b)
{
        return (a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec) ||
               (a->tv_sec == b->tv_sec && (a->tv_nsec == 0 || b->tv_nsec == 0));
}

struct walk {
        json_t *out;             /* NULL: sizes only */
        int *lowers;
        size_t n_lowers;
        void *changed_dirs;      /* tsearch of paths (overlay) */
        void *inodes;            /* tsearch of counted hard-linked inodes */
        int64_t size;
        char *err;
        size_t errlen;
};

static int ino_cmp(const void *a, const void *b)
{
        const struct stat *x = a, *y = b;
        if (x->st_dev != y->st_dev)
                return x->st_dev < y->st_dev ? -1 : 1;
        return x->st_ino < y->st_ino ? -1 : x->st_ino > y->st_ino;
}

/* Adds a non-directory's size once (hard links once). */
static int count(struct walk *w, const struct stat *st)
{
        if (S_ISDIR(st->st_mode) || st->st_size == 0)
                return 0;
        if (st->st_nlink > 1) {
                if (tfind(st, &w->inodes, ino_cmp))
                        return 0;
                struct stat *k = malloc(sizeof(*k));
                if (!k)
                        return -ENOMEM;
                *k = *st;
                if (!tsearch(k, &w->inodes, ino_cmp)) {
                        free(k);
                        return -ENOMEM;
                }
        }
        w->size += st->st_size;
        return 0;
}

static int emit(struct walk *w, const char *path, int kind)
{
        if (!w->out)
                return 0;
        return json_array_append_new(w->out, json_pack("{s:s, s:i}", "Path", path, "Kind", kind)) < 0 ? -ENOMEM : 0;
}

static int mark_dir(struct walk *w, const char *path)
{
        if (tfind(path, &w->changed_dirs, str_cmp))
                return 0;
        char *k = strdup(path);
        if (!k || !tsearch(k, &w->changed_dirs, str_cmp)) {
                free(k);
                return -ENOMEM;
        }
        return 0;
}

static bool is_opaque(int dfd, const char *name)
{
        char v[2];
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return false;
        ssize_t n = fgetxattr(fd, "trusted.overlay.opaque", v, sizeof(v));
        close(fd);
        return n == 1 && v[0] == 'y';
}

static int join(const char *dir, const char *name, char **ret)
{
        return asprintf(ret, "%s/%s", strcmp(dir, "/") ? dir : "", name) < 0 ? -ENOMEM : 0;
}

/* dockerd's changes() with overlayDeletedFile, over one upper directory. */
static int walk_upper(struct walk *w, int dfd, const char *dir)
{
        char **names;
        size_t n;
        int r = list_dir(dfd, &names, &n);
        if (r < 0)
                return err_buf(w->err, w->errlen, r, "engine: reading the upper directory \"%s\": %s", dir, strerror(-r));
        for (size_t i = 0; r >= 0 && i < n; i++) {
                _cleanup_free_ char *path = NULL;
                struct stat st;
                if ((r = join(dir, names[i], &path)) < 0)
                        break;
                if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)
                                continue;
                        r = err_buf(w->err, w->errlen, -errno, "engine: stat of \"%s\": %s", path, strerror(errno));
                        break;
                }
                bool dir_ = S_ISDIR(st.st_mode);
                bool deleted = (S_ISCHR(st.st_mode) && st.st_rdev == 0) || (dir_ && is_opaque(dfd, names[i]));
                int kind = deleted ? ROOTFS_DELETED : ROOTFS_ADDED;
                bool skip = false;
                if (!deleted && (r = count(w, &st)) < 0)
                        break;
                for (size_t l = 0; !deleted && l < w->n_lowers; l++) {
                        _cleanup_close_ int lfd = fs_open_in_root(w->lowers[l], path, O_PATH, 0);
                        struct stat lst;
                        if (lfd < 0 || fstat(lfd, &lst) < 0)
                                continue;
                        /* a directory that is only there for what changed below */
                        if (S_ISDIR(lst.st_mode) && dir_ && lst.st_size == st.st_size &&
                            rootfs_go_mode(lst.st_mode) == rootfs_go_mode(st.st_mode) &&
                            same_fs_time(&lst.st_mtim, &st.st_mtim))
                                skip = true;
                        kind = ROOTFS_MODIFIED;
                        break;
                }
                if (!skip) {
                        if (dir_ && (r = mark_dir(w, path)) < 0)
                                break;
                        if (kind != ROOTFS_MODIFIED && strcmp(dir, "/") && !tfind(dir, &w->changed_dirs, str_cmp)) {
                                if ((r = emit(w, dir, ROOTFS_MODIFIED)) < 0 || (r = mark_dir(w, dir)) < 0)
                                        break;
                        }
                        if ((r = emit(w, path, kind)) < 0)
                                break;
                }
                if (dir_) {
                        _cleanup_close_ int cfd = open_subdir(dfd, names[i]);
                        if (cfd >= 0)
                                r = walk_upper(w, cfd, path);
                }
        }
        names_free(names, n);
        return r;
}

static bool stat_different(const struct stat *o, const struct stat *n)
{
        return o->st_mode != n->st_mode || o->st_uid != n->st_uid || o->st_gid != n->st_gid ||
               o->st_rdev != n->st_rdev ||
               (!S_ISDIR(o->st_mode) &&
                (!(o->st_mtim.tv_sec == n->st_mtim.tv_sec && o->st_mtim.tv_nsec == n->st_mtim.tv_nsec) ||
                 o->st_size != n->st_size));
}

/* Everything below a new directory is added. */
static int walk_added(struct walk *w, int dfd, const char *dir)
{
        char **names;
        size_t n;
        int r = list_dir(dfd, &names, &n);
        if (r < 0)
                return err_buf(w->err, w->errlen, r, "engine: reading \"%s\": %s", dir, strerror(-r));
        for (size_t i = 0; r >= 0 && i < n; i++) {
                _cleanup_free_ char *path = NULL;
                struct stat st;
                if ((r = join(dir, names[i], &path)) < 0)
                        break;
                if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if ((r = emit(w, path, ROOTFS_ADDED)) < 0 || (r = count(w, &st)) < 0)
                        break;
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int cfd = open_subdir(dfd, names[i]);
                        if (cfd >= 0)
                                r = walk_added(w, cfd, path);
                }
        }
        names_free(names, n);
        return r;
}

/* dockerd's naive differ: the tree nfd against ofd, both directories;
 * reported: dir itself was reported modified. */
static int walk_trees(struct walk *w, int nfd, int ofd, const char *dir, bool reported)
{
        char **nn = NULL, **on = NULL;
        size_t n_n = 0, o_n = 0;
        int r = list_dir(nfd, &nn, &n_n);
        if (r >= 0 && (r = list_dir(ofd, &on, &o_n)) < 0)
                names_free(nn, n_n);
        if (r < 0)
                return err_buf(w->err, w->errlen, r, "engine: reading \"%s\": %s", dir, strerror(-r));
        size_t at = w->out ? json_array_size(w->out) : 0;
        size_t i = 0, j = 0;
        while (r >= 0 && (i < n_n || j < o_n)) {
                int c = i == n_n ? 1 : j == o_n ? -1 : strcmp(nn[i], on[j]);
                const char *name = c <= 0 ? nn[i] : on[j];
                _cleanup_free_ char *path = NULL;
                if ((r = join(dir, name, &path)) < 0)
                        break;
                struct stat ns, os;
                bool have_n = c <= 0 && fstatat(nfd, name, &ns, AT_SYMLINK_NOFOLLOW) == 0;
                bool have_o = c >= 0 && fstatat(ofd, name, &os, AT_SYMLINK_NOFOLLOW) == 0;
                if (c <= 0)
                        i++;
                if (c >= 0)
                        j++;
                if (have_o && !have_n) {
                        r = emit(w, path, ROOTFS_DELETED);
                } else if (have_n && !have_o) {
                        if ((r = emit(w, path, ROOTFS_ADDED)) < 0 || (r = count(w, &ns)) < 0)
                                break;
                        if (S_ISDIR(ns.st_mode)) {
                                _cleanup_close_ int cfd = open_subdir(nfd, name);
                                if (cfd >= 0)
                                        r = walk_added(w, cfd, path);
                        }
                } else if (have_n && have_o) {
                        bool changed = stat_different(&os, &ns);
                        if (changed && ((r = emit(w, path, ROOTFS_MODIFIED)) < 0 || (r = count(w, &ns)) < 0))
                                break;
                        if (S_ISDIR(ns.st_mode) && S_ISDIR(os.st_mode)) {
                                _cleanup_close_ int a = open_subdir(nfd, name);
                                _cleanup_close_ int b = open_subdir(ofd, name);
                                if (a >= 0 && b >= 0)
                                        r = walk_trees(w, a, b, path, changed);
                        } else if (S_ISDIR(ns.st_mode)) {
                                _cleanup_close_ int a = open_subdir(nfd, name);
                                if (a >= 0)
                                        r = walk_added(w, a, path);
                        }
                }
        }
        names_free(nn, n_n);
        names_free(on, o_n);
        if (r < 0 || !w->out || reported || !strcmp(dir, "/"))
                return r;
        /* changes below a directory that did not change itself: it is
         * reported modified, before them */
        if (json_array_size(w->out) > at &&
            json_array_insert_new(w->out, at, json_pack("{s:s, s:i}", "Path", dir, "Kind", ROOTFS_MODIFIED)) < 0)
                return -ENOMEM;
        return 0;
}

/* "workdir=..,upperdir=..,lowerdir=a:b" → the upper dir and the lower dirs. */
static int overlay_dirs(const char *opts, char **ret_upper, char ***ret_lowers, size_t *ret_n)
{
        _cleanup_free_ char *s = strdup(opts ? opts : "");
        char *upper = NULL, **lowers = NULL;
        size_t n = 0;
        if (!s)
                return -ENOMEM;
        char *save = NULL;
        for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (!strncmp(tok, "upperdir=", 9)) {
                        free(upper);
                        upper = strdup(tok + 9);
                } else if (!strncmp(tok, "lowerdir=", 9)) {
                        char *save2 = NULL;
                        for (char *l = strtok_r(tok + 9, ":", &save2); l; l = strtok_r(NULL, ":", &save2)) {
                                char **nl = realloc(lowers, (n + 2) * sizeof(*lowers));
                                if (!nl)
                                        break;
                                lowers = nl;
                                if ((lowers[n] = strdup(l)))
                                        n++;
                        }
                }
        }
        if (!upper) {
                names_free(lowers, n);
                return -EINVAL;
        }
        *ret_upper = upper;
        *ret_lowers = lowers;
        *ret_n = n;
        return 0;
}

static int run(const struct rootfs_mount *m, const char *parent_fs, struct walk *w)
{
        int r;
        if (m->type && !strcmp(m->type, "bind") && parent_fs) {
                _cleanup_close_ int nfd = open(m->source, O_PATH | O_DIRECTORY | O_CLOEXEC);
                _cleanup_close_ int ofd = open(parent_fs, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (nfd < 0 || ofd < 0)
                        return err_buf(w->err, w->errlen, -errno, "engine: opening \"%s\": %s",
                                    nfd < 0 ? m->source : parent_fs, strerror(errno));
                return walk_trees(w, nfd, ofd, "/", false);
        }
        if (m->type && !strcmp(m->type, "bind")) {
                /* no parent: everything was added */
                _cleanup_close_ int fd = open(m->source, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        return err_buf(w->err, w->errlen, -errno, "engine: opening \"%s\": %s", m->source,
                                    strerror(errno));
                return walk_upper(w, fd, "/");
        }
        if (!m->type || strcmp(m->type, "overlay"))
                return err_buf(w->err, w->errlen, -EINVAL, "engine: a snapshot mount of type \"%s\"",
                            m->type ? m->type : "");
        _cleanup_free_ char *upper = NULL;
        char **lowers = NULL;
        size_t n = 0;
        if ((r = overlay_dirs(m->options, &upper, &lowers, &n)) < 0)
                return err_buf(w->err, w->errlen, r, "engine: no upper directory in the overlay options \"%s\"",
                            m->options ? m->options : "");
        w->lowers = calloc(n + 1, sizeof(int));
        _cleanup_close_ int ufd = open(upper, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (!w->lowers)
                r = -ENOMEM;
        else if (ufd < 0)
                r = err_buf(w->err, w->errlen, -errno, "engine: opening \"%s\": %s", upper, strerror(errno));
        for (size_t i = 0; r >= 0 && i < n; i++) {
                w->lowers[i] = open(lowers[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (w->lowers[i] < 0)
                        r = err_buf(w->err, w->errlen, -errno, "engine: opening \"%s\": %s", lowers[i], strerror(errno));
                else
                        w->n_lowers++;
        }
        if (r >= 0)
                r = walk_upper(w, ufd, "/");
        for (size_t i = 0; i < w->n_lowers; i++)
                close(w->lowers[i]);
        free(w->lowers);
        names_free(lowers, n);
        return r;
}

/* What dockerd keeps in a container's init layer (below its writable
 * layer, so never in `docker diff`): mount points the runtime creates. */
static const char *const init_paths[] = { "/proc", "/sys", "/dev", "/etc/hosts", "/etc/hostname",
                                          "/etc/resolv.conf", "/etc/mtab", "/.dockerenv" };

static bool under(const char *path, const char *top)
{
        size_t n = strlen(top);
        return !strncmp(path, top, n) && (path[n] == '\0' || path[n] == '/');
}

bool rootfs_is_init_path(const char *abs)
{
        for (size_t k = 0; k < ARRAY_SIZE(init_paths); k++)
                if (under(abs, init_paths[k]))
                        return true;
        return false;
}

static const char *change_path(json_t *out, size_t i)
{
        return json_string_value(json_object_get(json_array_get(out, i), "Path")) ?: "";
}

/* Drops the init layer's paths, and the directories that were reported
 * only for them ("/etc" for "/etc/hosts"). */
static void drop_init_paths(json_t *out)
{
        bool dropped[ARRAY_SIZE(init_paths)] = { false };
        for (size_t i = json_array_size(out); i-- > 0;) {
                for (size_t k = 0; k < ARRAY_SIZE(init_paths); k++)
                        if (under(change_path(out, i), init_paths[k])) {
                                dropped[k] = true;
                                json_array_remove(out, i);
                                break;
                        }
        }
        for (size_t i = json_array_size(out); i-- > 0;) {
                const char *p = change_path(out, i);
                bool ancestor = false;
                for (size_t k = 0; k < ARRAY_SIZE(init_paths) && !ancestor; k++)
                        ancestor = dropped[k] && strcmp(p, init_paths[k]) && under(init_paths[k], p);
                if (!ancestor)
                        continue;
                bool other = false;
                for (size_t l = 0; l < json_array_size(out) && !other; l++)
                        other = l != i && under(change_path(out, l), p);
                if (!other)
                        json_array_remove(out, i);
        }
}

int rootfs_changes(const struct rootfs_mount *m, const char *parent_fs, json_t **ret, char *err, size_t errlen)
{
        struct walk w = { .out = json_array(), .err = err, .errlen = errlen };
        if (!w.out)
                return err_buf(err, errlen, -ENOMEM, "engine: out of memory");
        int r = run(m, parent_fs, &w);
        tdestroy(w.changed_dirs, free);
        tdestroy(w.inodes, free);
        if (r < 0) {
                if (r == -ENOMEM)
                        err_buf(err, errlen, r, "engine: out of memory");
                json_decref(w.out);
                return r;
        }
        drop_init_paths(w.out);
        *ret = w.out;
        return 0;
}

int rootfs_size_rw(const struct rootfs_mount *m, const char *parent_fs, int64_t *ret)
{
        char err[256];
        struct walk w = { .err = err, .errlen = sizeof(err) };
        int r = run(m, parent_fs, &w);
        tdestroy(w.changed_dirs, free);
        tdestroy(w.inodes, free);
        if (r < 0)
                return r;
        *ret = w.size;
        return 0;
}

/* docker commit: a container's writable layer on top of its image, as a new
 * image.
 *
 * The layer is the overlay snapshot's upper directory written as a tar in
 * the image layer format: a whiteout (a 0/0 character device) becomes an
 * empty ".wh.<name>", an opaque directory gets a ".wh..wh..opq" entry, hard
 * links within the layer stay links, and what dockerd keeps in a
 * container's init layer (/etc/hosts, /proc ...) is left out. The parent
 * image comes as a docker save archive (the supervisor's export); the
 * result is that archive with the layer, a new config and a new
 * manifest.json, which the supervisor imports (it has the parent's blobs
 * already, and unpacks only the new layer). */
#include "image-commit.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <search.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "err.h"
#include "image-import.h"
#include "json-util.h"
#include "rootfs.h"
#include "time-util.h"

#define BLOCK (64 << 10)

/* ---- the layer ---- */

struct sink {
        int fd;
        gnutls_hash_hd_t h;
};

static la_ssize_t sink_write(struct archive *a, void *data, const void *buf, size_t len)
{
        struct sink *s = data;
        (void) a;
        gnutls_hash(s->h, buf, len);
        for (size_t off = 0; off < len;) {
                ssize_t w = write(s->fd, (const char *) buf + off, len - off);
                if (w < 0)
                        return -1;
                off += (size_t) w;
        }
        return (la_ssize_t) len;
}

struct link {
        dev_t dev;
        ino_t ino;
        char *path;
};

static int link_cmp(const void *a, const void *b)
{
        const struct link *x = a, *y = b;
        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static void link_free(void *p)
{
        struct link *l = p;
        free(l->path);
        free(l);
}

struct layer {
        struct archive *a;
        void *links;
        char *err;
        size_t errlen;
};

static int put(struct layer *L, const char *name, const struct stat *st, unsigned type, const char *symlink,
               const char *hardlink, int data_fd)
{
        struct archive_entry *e = archive_entry_new();
        if (!e)
                return -ENOMEM;
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, type);
        archive_entry_set_perm(e, st ? st->st_mode & 07777 : 0644);
        archive_entry_set_uid(e, st ? st->st_uid : 0);
        archive_entry_set_gid(e, st ? st->st_gid : 0);
        archive_entry_set_mtime(e, st ? st->st_mtim.tv_sec : time(NULL), st ? st->st_mtim.tv_nsec : 0);
        archive_entry_set_size(e, type == AE_IFREG && data_fd >= 0 && !hardlink ? (la_int64_t) st->st_size : 0);
        if (symlink)
                archive_entry_set_symlink(e, symlink);
        if (hardlink)
                archive_entry_set_hardlink(e, hardlink);
        if ((type == AE_IFCHR || type == AE_IFBLK) && st)
                archive_entry_set_rdev(e, st->st_rdev);
        int r = archive_write_header(L->a, e) == ARCHIVE_OK ? 0 : -EIO;
        archive_entry_free(e);
        if (r == 0 && data_fd >= 0 && !hardlink && (r = image_archive_copy(L->a, data_fd)) < 0)
                return err_buf(L->err, L->errlen, r, "engine: the layer's \"%s\"", name);
        if (r < 0)
                err_buf(L->err, L->errlen, r, "engine: writing the layer at \"%s\": %s", name,
                        archive_error_string(L->a) ?: "?");
        return r;
}

static int walk(struct layer *L, int dfd, const char *rel)
{
        _cleanup_closedir_ DIR *d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return err_buf(L->err, L->errlen, -errno, "engine: reading the layer at \"/%s\"", rel);
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *name = NULL, *abs = NULL;
                if (asprintf(&name, "%s%s", rel, de->d_name) < 0 || asprintf(&abs, "/%s", name) < 0)
                        return -ENOMEM;
                if (rootfs_is_init_path(abs))
                        continue;
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return err_buf(L->err, L->errlen, -errno, "engine: the layer's \"%s\"", abs);
                int r = 0;
                if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
                        _cleanup_free_ char *wh = NULL;
                        if (asprintf(&wh, "%s.wh.%s", rel, de->d_name) < 0)
                                return -ENOMEM;
                        r = put(L, wh, NULL, AE_IFREG, NULL, NULL, -1);
                } else if (S_ISDIR(st.st_mode)) {
                        int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub < 0)
                                return err_buf(L->err, L->errlen, -errno, "engine: the layer's \"%s\"", abs);
                        char v[4] = "";
                        ssize_t n = fgetxattr(sub, "trusted.overlay.opaque", v, sizeof(v) - 1);
                        _cleanup_free_ char *dir = NULL, *opq = NULL;
                        if (asprintf(&dir, "%s/", name) < 0 || asprintf(&opq, "%s/.wh..wh..opq", name) < 0) {
                                close(sub);
                                return -ENOMEM;
                        }
                        r = put(L, dir, &st, AE_IFDIR, NULL, NULL, -1);
                        if (r == 0 && n == 1 && v[0] == 'y')
                                r = put(L, opq, NULL, AE_IFREG, NULL, NULL, -1);
                        if (r == 0)
                                r = walk(L, sub, dir);
                        else
                                close(sub);
                } else if (S_ISLNK(st.st_mode)) {
                        char target[PATH_MAX];
                        ssize_t n = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
                        if (n < 0)
                                return err_buf(L->err, L->errlen, -errno, "engine: the layer's \"%s\"", abs);
                        target[n] = '\0';
                        r = put(L, name, &st, AE_IFLNK, target, NULL, -1);
                } else if (S_ISREG(st.st_mode)) {
                        const char *first = NULL;
                        if (st.st_nlink > 1) {
                                struct link key = { st.st_dev, st.st_ino, NULL };
                                struct link **found = tfind(&key, &L->links, link_cmp);
                                if (found) {
                                        first = (*found)->path;
                                } else {
                                        struct link *l = malloc(sizeof(*l));
                                        if (!l || !(l->path = strdup(name))) {
                                                free(l);
                                                return -ENOMEM;
                                        }
                                        l->dev = st.st_dev;
                                        l->ino = st.st_ino;
                                        if (!tsearch(l, &L->links, link_cmp)) {
                                                link_free(l);
                                                return -ENOMEM;
                                        }
                                }
                        }
                        _cleanup_close_ int fd = first ? -1
                                                       : openat(dirfd(d), de->d_name,
                                                                O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                        if (!first && fd < 0)
                                return err_buf(L->err, L->errlen, -errno, "engine: the layer's \"%s\"", abs);
                        r = put(L, name, &st, AE_IFREG, NULL, first, fd);
                } else {
                        unsigned type = S_ISCHR(st.st_mode)   ? AE_IFCHR
                                        : S_ISBLK(st.st_mode) ? AE_IFBLK
                                        : S_ISFIFO(st.st_mode) ? AE_IFIFO
                                                               : 0;
                        if (type)
                                r = put(L, name, &st, type, NULL, NULL, -1);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}


/* The upper directory as a layer tar in out; its sha256 in diff_hex. */
static int write_layer(const char *upper, int out, char diff_hex[65], char *err, size_t errlen)
{
        struct sink s = { .fd = out };
        struct layer L = { .err = err, .errlen = errlen };
        if (gnutls_hash_init(&s.h, GNUTLS_DIG_SHA256) < 0)
                return err_buf(err, errlen, -ENOMEM, "engine: out of memory");
        int r = 0;
        L.a = archive_write_new();
        int dfd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (!L.a || dfd < 0) {
                r = err_buf(err, errlen, L.a ? -errno : -ENOMEM, "engine: the container's layer \"%s\"", upper);
                if (dfd >= 0)
                        close(dfd);
        } else {
                archive_write_set_format_pax_restricted(L.a);
                archive_write_set_bytes_in_last_block(L.a, 1);
                if (archive_write_open(L.a, &s, NULL, sink_write, NULL) != ARCHIVE_OK)
                        r = err_buf(err, errlen, -EIO, "engine: writing the layer: %s",
                                    archive_error_string(L.a) ?: "?");
                else
                        r = walk(&L, dfd, "");
                if (archive_write_close(L.a) != ARCHIVE_OK && r == 0)
                        r = err_buf(err, errlen, -EIO, "engine: writing the layer: %s",
                                    archive_error_string(L.a) ?: "?");
        }
        if (L.a)
                archive_write_free(L.a);
        tdestroy(L.links, link_free);
        unsigned char md[32];
        gnutls_hash_deinit(s.h, md);
        image_hex(md, sizeof(md), diff_hex);
        return r;
}

/* ---- the archive ---- */

/* The JSON file name of the parent's archive, or NULL. */
static json_t *read_json(int fd, const char *name, char *err, size_t errlen)
{
        struct archive *a = archive_read_new();
        json_t *out = NULL;
        if (!a)
                return NULL;
        archive_read_support_format_tar(a);
        struct archive_entry *e;
        if (lseek(fd, 0, SEEK_SET) < 0 || archive_read_open_fd(a, fd, BLOCK) != ARCHIVE_OK)
                err_buf(err, errlen, -EIO, "engine: the image's archive: %s", archive_error_string(a) ?: "?");
        else
                while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
                        la_int64_t size = archive_entry_size(e);
                        if (strcmp(archive_entry_pathname(e), name) || size > (4 << 20))
                                continue;
                        _cleanup_free_ char *buf = malloc((size_t) size + 1);
                        if (buf && archive_read_data(a, buf, (size_t) size) == size) {
                                buf[size] = '\0';
                                out = json_loads(buf, 0, NULL);
                        }
                        break;
                }
        archive_read_free(a);
        if (!out && !*err)
                err_buf(err, errlen, -EINVAL, "engine: the image's archive has no usable \"%s\"", name);
        return out;
}

/* Copies the parent's entries but manifest.json, its config and the
 * other indexes (repositories; index.json and oci-layout, which the import
 * would take before manifest.json). */
static int copy_parent(int fd, struct archive *w, const char *skip_config, char *err, size_t errlen)
{
        struct archive *a = archive_read_new();
        _cleanup_free_ char *buf = malloc(BLOCK);
        if (!a || !buf) {
                if (a)
                        archive_read_free(a);
                return err_buf(err, errlen, -ENOMEM, "engine: out of memory");
        }
        archive_read_support_format_tar(a);
        int r = 0;
        struct archive_entry *e;
        if (lseek(fd, 0, SEEK_SET) < 0 || archive_read_open_fd(a, fd, BLOCK) != ARCHIVE_OK)
                r = err_buf(err, errlen, -EIO, "engine: the image's archive: %s", archive_error_string(a) ?: "?");
        while (r == 0 && archive_read_next_header(a, &e) == ARCHIVE_OK) {
                const char *name = archive_entry_pathname(e);
                if (!strcmp(name, "manifest.json") || !strcmp(name, "repositories") || !strcmp(name, "index.json") ||
                    !strcmp(name, "oci-layout") || !strcmp(name, skip_config))
                        continue;
                if (archive_write_header(w, e) != ARCHIVE_OK) {
                        r = err_buf(err, errlen, -EIO, "engine: writing the image's archive: %s",
                                    archive_error_string(w) ?: "?");
                        break;
                }
                for (;;) {
                        la_ssize_t n = archive_read_data(a, buf, BLOCK);
                        if (n < 0)
                                r = err_buf(err, errlen, -EIO, "engine: the image's archive: %s",
                                            archive_error_string(a) ?: "?");
                        if (n <= 0)
                                break;
                        if (archive_write_data(w, buf, (size_t) n) != n) {
                                r = err_buf(err, errlen, -EIO, "engine: writing the image's archive");
                                break;
                        }
                }
        }
        archive_read_free(a);
        return r;
}

static int add_blob(struct archive *w, const char *name, const void *data, size_t len, int src, char *err,
                    size_t errlen)
{
        int r = image_archive_add(w, name, data, len, src);
        return r < 0 ? err_buf(err, errlen, r, "engine: writing \"%s\" to the image's archive", name) : 0;
}

int engine_image_commit(const struct image_commit *c, int *ret_fd, char ret_id[72], char *err, size_t errlen)
{
        _cleanup_close_ int layer = open(c->tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        int out = open(c->tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        _cleanup_json_ json_t *pmanifest = NULL, *pconfig = NULL;
        _cleanup_free_ char *config_s = NULL, *manifest_s = NULL, *diff_id = NULL, *layer_name = NULL;
        struct archive *w = NULL;
        char diff[65];
        int r;

        *err = '\0';
        if (layer < 0 || out < 0) {
                r = err_buf(err, errlen, -errno, "engine: a file in %s", c->tmpdir);
                goto fail;
        }
        if ((r = write_layer(c->upperdir, layer, diff, err, errlen)) < 0)
                goto fail;
        pmanifest = read_json(c->parent_fd, "manifest.json", err, errlen);
        json_t *pm = json_array_get(pmanifest, 0);
        const char *pconfig_name = json_string_value(json_object_get(pm, "Config"));
        if (pconfig_name)
                pconfig = read_json(c->parent_fd, pconfig_name, err, errlen);
        if (!json_is_object(pconfig)) {
                r = err_buf(err, errlen, -EINVAL, "engine: the image's archive has no config");
                goto fail;
        }
        char now[40];
        time_now_rfc3339_nano(now, sizeof(now));
        if (asprintf(&diff_id, "sha256:%s", diff) < 0 || asprintf(&layer_name, "%s/layer.tar", diff) < 0) {
                r = err_buf(err, errlen, -ENOMEM, "engine: out of memory");
                goto fail;
        }
        json_t *cfg = json_deep_copy(pconfig);
        json_object_set(cfg, "config", c->config);
        json_object_set_new(cfg, "container", json_string(c->container_id));
        json_object_set_new(cfg, "created", json_string(now));
        json_object_set_new(cfg, "author", json_string(c->author ? c->author : ""));
        json_object_del(cfg, "container_config");
        json_t *rootfs = json_object_get(cfg, "rootfs");
        json_t *diffs = json_object_get(rootfs, "diff_ids");
        if (!json_is_array(diffs)) {
                json_decref(cfg);
                r = err_buf(err, errlen, -EINVAL, "engine: the image's config has no rootfs.diff_ids");
                goto fail;
        }
        json_array_append_new(diffs, json_string(diff_id));
        json_t *hist = json_object_get(cfg, "history");
        if (!json_is_array(hist))
                json_object_set_new(cfg, "history", hist = json_array());
        json_t *h = json_pack("{s:s, s:s}", "created", now, "created_by", c->created_by ? c->created_by : "");
        if (c->author && *c->author)
                json_object_set_new(h, "author", json_string(c->author));
        if (c->comment && *c->comment)
                json_object_set_new(h, "comment", json_string(c->comment));
        json_array_append_new(hist, h);
        config_s = json_dumps(cfg, JSON_COMPACT);
        json_decref(cfg);
        if (!config_s) {
                r = err_buf(err, errlen, -ENOMEM, "engine: out of memory");
                goto fail;
        }
        unsigned char md[32];
        char id[65], config_name[80];
        gnutls_hash_fast(GNUTLS_DIG_SHA256, config_s, strlen(config_s), md);
        image_hex(md, sizeof(md), id);
        snprintf(config_name, sizeof(config_name), "%s.json", id);
        json_t *layers = json_deep_copy(json_object_get(pm, "Layers"));
        if (!json_is_array(layers)) {
                json_decref(layers);
                r = err_buf(err, errlen, -EINVAL, "engine: the image's manifest.json has no Layers");
                goto fail;
        }
        json_array_append_new(layers, json_string(layer_name));
        json_t *manifest = json_pack("[{s:s, s:[s], s:o}]", "Config", config_name, "RepoTags", c->name, "Layers",
                                     layers);
        manifest_s = manifest ? json_dumps(manifest, JSON_COMPACT) : NULL;
        json_decref(manifest);
        if (!manifest_s || !(w = archive_write_new())) {
                r = err_buf(err, errlen, -ENOMEM, "engine: out of memory");
                goto fail;
        }
        archive_write_set_format_pax_restricted(w);
        if (archive_write_open_fd(w, out) != ARCHIVE_OK) {
                r = err_buf(err, errlen, -EIO, "engine: writing the image's archive");
                goto fail;
        }
        if ((r = copy_parent(c->parent_fd, w, pconfig_name, err, errlen)) < 0 ||
            (r = add_blob(w, layer_name, NULL, 0, layer, err, errlen)) < 0 ||
            (r = add_blob(w, config_name, config_s, strlen(config_s), -1, err, errlen)) < 0 ||
            (r = add_blob(w, "manifest.json", manifest_s, strlen(manifest_s), -1, err, errlen)) < 0)
                goto fail;
        if (archive_write_close(w) != ARCHIVE_OK) {
                r = err_buf(err, errlen, -EIO, "engine: writing the image's archive");
                goto fail;
        }
        archive_write_free(w);
        snprintf(ret_id, 72, "sha256:%s", id);
        *ret_fd = out;
        return 0;
fail:
        if (w)
                archive_write_free(w);
        if (out >= 0)
                close(out);
        return r;
}

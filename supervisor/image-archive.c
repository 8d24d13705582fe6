/* docker save / OCI layout tarballs: export and import (image-archive.h).
 * libarchive writes and reads the tar; blobs come from and go through the
 * content store, so an import verifies every blob as a pull does. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "image-archive.h"
#include "image-reference.h"
#include "json-util.h"

#define ANNOT_REF_NAME "org.opencontainers.image.ref.name"
#define ANNOT_IMAGE_NAME "io.containerd.image.name"
#define MEDIA_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MEDIA_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar"
#define MEDIA_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define BLOB_PREFIX "blobs/sha256/"
/* metadata files (index.json, manifest.json, ...) larger than this are refused */
#define META_MAX (8u << 20)
/* fixed mtime of the entries written, for reproducible tarballs */
#define ARCHIVE_MTIME 1700000000
#define COPY_BUF ((size_t) 1 << 16)

int image_archive_format_parse(const char *s, enum image_archive_format *ret, struct berr *e)
{
        if (strcmp(s, "docker") == 0)
                *ret = IMAGE_ARCHIVE_DOCKER;
        else if (strcmp(s, "oci") == 0)
                *ret = IMAGE_ARCHIVE_OCI;
        else
                return berr_setx(e, EINVAL, "archive format \"%s\": expected \"docker\" or \"oci\"", s);
        return 0;
}

int image_archive_name(const char *s, char *buf, size_t len, struct berr *e)
{
        struct image_ref ref;
        if (image_ref_parse(s, &ref, e) < 0)
                return -e->err;
        if (len < IMAGE_REF_STRING_MAX)
                return berr_setx(e, EINVAL, "image name buffer too small");
        image_ref_string(&ref, buf, len);
        return 0;
}

/* ---------- a small set of digests ---------- */

struct digest_set {
        char (*v)[CONTENT_DIGEST_MAX];
        size_t n;
};

static bool set_has(const struct digest_set *s, const char *d)
{
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->v[i], d) == 0)
                        return true;
        return false;
}

static int set_add(struct digest_set *s, const char *d)
{
        if (set_has(s, d))
                return 0;
        void *p = realloc(s->v, (s->n + 1) * sizeof(*s->v));
        if (!p)
                return -ENOMEM;
        s->v = p;
        snprintf(s->v[s->n++], CONTENT_DIGEST_MAX, "%s", d);
        return 1;
}

static bool present(struct content_store *cs, const char *d, int64_t size)
{
        struct content_info info;
        if (content_info(cs, d, &info, NULL) < 0)
                return false;
        return size < 0 || info.size == (uint64_t) size;
}

static int read_manifest(struct content_store *cs, const struct image_descriptor *d, struct image_manifest *ret,
                         struct berr *e)
{
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r = content_read(cs, d->digest, IMAGE_MANIFEST_MAX, &data, &len, e);
        if (r < 0)
                return r;
        return image_manifest_parse(data, len, d->media_type, ret, e);
}

/* ---------- export ---------- */

/* The blobs of an image manifest (itself, config, layers); all must be
 * in the store. */
static int collect_image(struct content_store *cs, const struct image_descriptor *d, struct digest_set *blobs,
                         struct berr *e)
{
        struct image_manifest m = { 0 };
        int r = read_manifest(cs, d, &m, e);
        if (r < 0)
                return r;
        if (m.kind != IMAGE_MANIFEST_IMAGE) {
                image_manifest_done(&m);
                return berr_setx(e, EPROTO, "manifest %s: an index inside an index is not exported", d->digest);
        }
        r = set_add(blobs, d->digest) < 0 || set_add(blobs, m.config.digest) < 0 ? -ENOMEM : 0;
        for (size_t i = 0; r >= 0 && i < m.n_layers; i++)
                if (set_add(blobs, m.layers[i].digest) < 0)
                        r = -ENOMEM;
        for (size_t i = 0; r >= 0 && i < m.n_layers; i++)
                if (!present(cs, m.layers[i].digest, m.layers[i].size))
                        r = berr_setx(e, ENOENT, "layer %s of manifest %s is not in the store", m.layers[i].digest,
                                      d->digest);
        if (r >= 0 && !present(cs, m.config.digest, m.config.size))
                r = berr_setx(e, ENOENT, "config %s of manifest %s is not in the store", m.config.digest, d->digest);
        image_manifest_done(&m);
        return r == -ENOMEM ? berr_set(e, ENOMEM, "export") : r;
}

static int collect_target(struct content_store *cs, const struct image_record *rec, struct digest_set *blobs,
                          struct berr *e)
{
        struct image_descriptor d = { .media_type = rec->media_type, .size = rec->size };
        struct image_manifest idx = { 0 };
        snprintf(d.digest, sizeof(d.digest), "%s", rec->digest);
        int r = read_manifest(cs, &d, &idx, e);
        if (r < 0)
                return berr_prefix(e, "image \"%s\"", rec->name);
        if (idx.kind == IMAGE_MANIFEST_IMAGE) {
                image_manifest_done(&idx);
                r = collect_image(cs, &d, blobs, e);
                return r < 0 ? berr_prefix(e, "image \"%s\"", rec->name) : 0;
        }
        size_t found = 0;
        r = set_add(blobs, d.digest) < 0 ? berr_set(e, ENOMEM, "export") : 0;
        for (size_t i = 0; r >= 0 && i < idx.n_manifests; i++) {
                if (!present(cs, idx.manifests[i].digest, idx.manifests[i].size))
                        continue;
                r = collect_image(cs, &idx.manifests[i], blobs, e);
                found++;
        }
        image_manifest_done(&idx);
        if (r >= 0 && found == 0)
                r = berr_setx(e, ENOENT, "none of the manifests of index %s is in the store", d.digest);
        return r < 0 ? berr_prefix(e, "image \"%s\"", rec->name) : 0;
}

static int write_header(struct archive *a, const char *name, int type, mode_t mode, int64_t size, struct berr *e)
{
        struct archive_entry *ent = archive_entry_new();
        if (!ent)
                return berr_set(e, ENOMEM, "archive entry");
        archive_entry_set_pathname(ent, name);
        archive_entry_set_filetype(ent, (unsigned) type);
        archive_entry_set_perm(ent, mode);
        archive_entry_set_size(ent, size);
        archive_entry_set_mtime(ent, ARCHIVE_MTIME, 0);
        int r = archive_write_header(a, ent);
        archive_entry_free(ent);
        if (r != ARCHIVE_OK)
                return berr_setx(e, EIO, "writing \"%s\": %s", name, archive_error_string(a));
        return 0;
}

static int write_data(struct archive *a, const char *name, const void *data, size_t len, struct berr *e)
{
        if (len > 0 && archive_write_data(a, data, len) != (la_ssize_t) len)
                return berr_setx(e, EIO, "writing \"%s\": %s", name, archive_error_string(a));
        return 0;
}

static int write_file(struct archive *a, const char *name, const char *data, struct berr *e)
{
        size_t len = strlen(data);
        int r = write_header(a, name, AE_IFREG, 0644, (int64_t) len, e);
        return r < 0 ? r : write_data(a, name, data, len, e);
}

static int write_json(struct archive *a, const char *name, json_t *j, struct berr *e)
{
        _cleanup_free_ char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(j);
        if (!s)
                return berr_set(e, ENOMEM, "\"%s\"", name);
        return write_file(a, name, s, e);
}

static int write_blob(struct archive *a, struct content_store *cs, const char *digest, struct berr *e)
{
        struct content_info info;
        char name[sizeof(BLOB_PREFIX) + CONTENT_DIGEST_MAX];
        int r = content_info(cs, digest, &info, e);
        if (r < 0)
                return r;
        _cleanup_free_ char *buf = malloc(COPY_BUF);
        if (!buf)
                return berr_set(e, ENOMEM, "export");
        _cleanup_close_ int fd = content_open(cs, digest, e);
        if (fd < 0)
                return fd;
        snprintf(name, sizeof(name), BLOB_PREFIX "%s", digest + strlen("sha256:"));
        r = write_header(a, name, AE_IFREG, 0444, (int64_t) info.size, e);
        uint64_t left = info.size;
        while (r >= 0 && left > 0) {
                ssize_t k = read(fd, buf, left < COPY_BUF ? left : COPY_BUF);
                if (k <= 0)
                        return berr_set(e, k < 0 ? errno : EIO, "reading blob %s", digest);
                r = write_data(a, name, buf, (size_t) k, e);
                left -= (uint64_t) k;
        }
        return r;
}

static const char *ref_tag(const char *name, char tag[IMAGE_REF_TAG_MAX + 1])
{
        struct image_ref ref;
        if (image_ref_parse(name, &ref, NULL) < 0 || !ref.tag[0])
                return NULL;
        return memcpy(tag, ref.tag, sizeof(ref.tag));
}

static json_t *index_entry(const struct image_record *rec)
{
        char tag[IMAGE_REF_TAG_MAX + 1];
        json_t *annot = json_pack("{s:s}", ANNOT_IMAGE_NAME, rec->name);
        if (annot && ref_tag(rec->name, tag))
                json_object_set_new(annot, ANNOT_REF_NAME, json_string(tag));
        return json_pack("{s:s, s:s, s:I, s:o*}", "mediaType", rec->media_type, "digest", rec->digest, "size",
                         (json_int_t) rec->size, "annotations", annot);
}

static json_t *blob_path(const char *digest)
{
        return json_sprintf(BLOB_PREFIX "%s", digest + strlen("sha256:"));
}

static int docker_entry(struct image_store *is, const struct image_record *rec, const struct image_platform *platform,
                        json_t *list, struct berr *e)
{
        struct image_manifest m = { 0 };
        char mdigest[CONTENT_DIGEST_MAX], tag[IMAGE_REF_TAG_MAX + 1];
        int r = image_store_manifest(is, rec, platform, &m, mdigest, e);
        if (r < 0)
                return r;
        json_t *layers = json_array();
        json_t *tags = json_array();
        if (tags && ref_tag(rec->name, tag))
                json_array_append_new(tags, json_string(rec->name));
        for (size_t i = 0; layers && i < m.n_layers; i++)
                json_array_append_new(layers, blob_path(m.layers[i].digest));
        json_t *ent = json_pack("{s:o, s:o*, s:o*}", "Config", blob_path(m.config.digest), "RepoTags", tags,
                                "Layers", layers);
        image_manifest_done(&m);
        if (!ent || json_array_append_new(list, ent) < 0)
                return berr_set(e, ENOMEM, "manifest.json");
        return 0;
}

static int export_write(struct archive *a, struct image_store *is, struct content_store *cs,
                        const struct image_record *recs, size_t n, const struct digest_set *blobs,
                        const struct image_platform *platform, enum image_archive_format fmt, struct berr *e)
{
        int r = write_header(a, "blobs", AE_IFDIR, 0755, 0, e);
        if (r >= 0)
                r = write_header(a, "blobs/sha256", AE_IFDIR, 0755, 0, e);
        for (size_t i = 0; r >= 0 && i < blobs->n; i++)
                r = write_blob(a, cs, blobs->v[i], e);
        if (r >= 0)
                r = write_file(a, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", e);
        json_t *manifests = json_array();
        for (size_t i = 0; manifests && i < n; i++)
                json_array_append_new(manifests, index_entry(&recs[i]));
        if (r >= 0)
                r = write_json(a, "index.json",
                               json_pack("{s:i, s:s, s:o*}", "schemaVersion", 2, "mediaType", MEDIA_OCI_INDEX,
                                         "manifests", manifests),
                               e);
        else
                json_decref(manifests);
        if (r < 0 || fmt != IMAGE_ARCHIVE_DOCKER)
                return r;
        json_t *list = json_array();
        if (!list)
                return berr_set(e, ENOMEM, "manifest.json");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = docker_entry(is, &recs[i], platform, list, e);
        if (r < 0) {
                json_decref(list);
                return r;
        }
        return write_json(a, "manifest.json", list, e);
}

int image_archive_export(struct image_store *is, struct content_store *cs, const char *const *names, size_t n,
                         const struct image_platform *platform, enum image_archive_format fmt, const char *path,
                         struct berr *e)
{
        struct image_record *recs = calloc(n ? n : 1, sizeof(*recs));
        struct digest_set blobs = { 0 };
        _cleanup_free_ char *tmp = NULL;
        struct archive *a = NULL;
        int r = 0;

        if (!recs || asprintf(&tmp, "%s.tmp-%d", path, (int) getpid()) < 0) {
                free(recs);
                return berr_set(e, ENOMEM, "export");
        }
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = image_store_get(is, names[i], &recs[i], e);
                if (r >= 0)
                        r = collect_target(cs, &recs[i], &blobs, e);
        }
        if (r >= 0) {
                a = archive_write_new();
                if (!a)
                        r = berr_set(e, ENOMEM, "archive");
        }
        if (r >= 0 && (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
                       archive_write_open_filename(a, tmp) != ARCHIVE_OK))
                r = berr_setx(e, EIO, "\"%s\": %s", tmp, archive_error_string(a));
        if (r >= 0)
                r = export_write(a, is, cs, recs, n, &blobs, platform, fmt, e);
        if (a) {
                if (archive_write_close(a) != ARCHIVE_OK && r >= 0)
                        r = berr_setx(e, EIO, "\"%s\": %s", tmp, archive_error_string(a));
                archive_write_free(a);
        }
        if (r >= 0) {
                int fd = open(tmp, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || fsync(fd) < 0 || rename(tmp, path) < 0)
                        r = berr_set(e, errno, "writing \"%s\"", path);
                if (fd >= 0)
                        close(fd);
        }
        if (r < 0 && a)
                unlink(tmp);
        image_records_free(recs, n);
        free(blobs.v);
        return r < 0 ? r : 0;
}

/* ---------- import ---------- */

/* A file of the legacy docker save layout (<id>/layer.tar, <hex>.json,
 * skopeo's <hex>.tar), stored by the digest of its bytes; or a symlink
 * between such files (Docker and skopeo link a layer shared between
 * images, <id>/layer.tar → ../<id2>/layer.tar). */
struct legacy_entry {
        char *path;
        char *target;                   /* a link's target as an archive path; NULL: outside the archive */
        char digest[CONTENT_DIGEST_MAX]; /* a file's */
        bool link;
};

struct import {
        struct content_store *cs;
        struct digest_set added;        /* blobs this import stored (removed again on failure) */
        json_t *index;                  /* index.json */
        json_t *docker;                 /* manifest.json */
        struct digest_set tar_blobs;    /* blobs/sha256/ entries seen, legacy files manifest.json names */
        struct legacy_entry *legacy;    /* files and links outside blobs/ */
        size_t n_legacy;
};

static int read_meta(struct archive *a, const char *name, int64_t size, json_t **ret, struct berr *e)
{
        if (size < 0 || (uint64_t) size > META_MAX)
                return berr_setx(e, EFBIG, "\"%s\" in the archive is too large", name);
        _cleanup_free_ char *buf = malloc((size_t) size + 1);
        if (!buf)
                return berr_set(e, ENOMEM, "\"%s\"", name);
        la_ssize_t k = archive_read_data(a, buf, (size_t) size);
        if (k != (la_ssize_t) size)
                return berr_setx(e, EIO, "reading \"%s\" from the archive: %s", name,
                                 k < 0 ? archive_error_string(a) : "short read");
        json_error_t je;
        json_t *j = json_loadb(buf, (size_t) size, 0, &je);
        if (!j)
                return berr_setx(e, EINVAL, "\"%s\" in the archive: invalid JSON: %s", name, je.text);
        json_decref(*ret);
        *ret = j;
        return 0;
}

static int ingest_blob(struct import *im, struct archive *a, const char *name, int64_t size, struct berr *e)
{
        char digest[CONTENT_DIGEST_MAX];
        struct content_writer *w = NULL;
        _cleanup_free_ char *buf = NULL;

        snprintf(digest, sizeof(digest), "sha256:%s", name + strlen(BLOB_PREFIX));
        if (content_digest_check(digest, e) < 0)
                return berr_prefix(e, "archive entry \"%s\"", name);
        if (set_add(&im->tar_blobs, digest) < 0)
                return berr_set(e, ENOMEM, "import");
        if (present(im->cs, digest, -1))
                return 0;
        if (!(buf = malloc(COPY_BUF)))
                return berr_set(e, ENOMEM, "import");
        int r = content_writer_open(im->cs, digest, size, &w, e);
        if (r >= 0 && content_writer_offset(w) > 0)
                r = content_writer_reset(w, e);
        while (r >= 0) {
                la_ssize_t k = archive_read_data(a, buf, COPY_BUF);
                if (k < 0)
                        r = berr_setx(e, EIO, "reading \"%s\" from the archive: %s", name, archive_error_string(a));
                else if (k == 0)
                        break;
                else
                        r = content_writer_write(w, buf, (size_t) k, e);
        }
        if (r >= 0)
                r = content_writer_commit(w, e);
        content_writer_close(w, true);
        if (r < 0)
                return berr_prefix(e, "blob \"%s\" in the archive", name);
        if (set_add(&im->added, digest) < 0)
                return berr_set(e, ENOMEM, "import");
        return 0;
}

/* A relative archive path without empty, "." or ".." components. */
static bool archive_path_ok(const char *s)
{
        if (!*s || *s == '/')
                return false;
        for (const char *p = s; *p;) {
                size_t n = strcspn(p, "/");
                if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return false;
                p += n;
                if (*p == '/')
                        p++;
        }
        return s[strlen(s) - 1] != '/';
}

/* A link's target as an archive path (relative to the link's directory,
 * ".." resolved); NULL when it leaves the archive or is absolute. */
static char *link_target(const char *path, const char *target)
{
        if (!target || *target == '/')
                return NULL;
        const char *slash = strrchr(path, '/');
        size_t dlen = slash ? (size_t) (slash - path) : 0;
        size_t cap = dlen + strlen(target) + 2;
        char *out = malloc(cap);
        if (!out)
                return NULL;
        memcpy(out, path, dlen);
        out[dlen] = '\0';
        size_t len = dlen;
        for (const char *p = target; *p;) {
                size_t n = strcspn(p, "/");
                if (n == 2 && p[0] == '.' && p[1] == '.') {
                        if (len == 0) {
                                free(out);
                                return NULL;
                        }
                        char *up = memrchr(out, '/', len);
                        len = up ? (size_t) (up - out) : 0;
                        out[len] = '\0';
                } else if (n > 0 && !(n == 1 && p[0] == '.')) {
                        if (len > 0)
                                out[len++] = '/';
                        memcpy(out + len, p, n);
                        len += n;
                        out[len] = '\0';
                }
                p += n;
                if (*p == '/')
                        p++;
        }
        if (len == 0) {
                free(out);
                return NULL;
        }
        return out;
}

static struct legacy_entry *legacy_add(struct import *im, const char *path)
{
        struct legacy_entry *v = realloc(im->legacy, (im->n_legacy + 1) * sizeof(*v));
        if (!v)
                return NULL;
        im->legacy = v;
        v = &v[im->n_legacy];
        *v = (struct legacy_entry) { .path = strdup(path) };
        if (!v->path)
                return NULL;
        im->n_legacy++;
        return v;
}

/* What the legacy layout may name in manifest.json: layers (".tar") and
 * configs (".json"); the v1 metadata (<id>/json, VERSION, repositories)
 * is not read. */
static bool legacy_candidate(const char *name)
{
        size_t n = strlen(name);
        if (strcmp(name, "index.json") == 0 || strcmp(name, "manifest.json") == 0)
                return false;
        return (n > 4 && strcmp(name + n - 4, ".tar") == 0) || (n > 5 && strcmp(name + n - 5, ".json") == 0);
}

/* A legacy file streamed into the store under the digest of its bytes. */
static int ingest_legacy(struct import *im, struct archive *a, const char *name, int64_t size, struct berr *e)
{
        struct content_writer *w = NULL;
        _cleanup_free_ char *buf = malloc(COPY_BUF);
        if (!buf)
                return berr_set(e, ENOMEM, "import");
        int r = content_writer_open(im->cs, NULL, size, &w, e);
        while (r >= 0) {
                la_ssize_t k = archive_read_data(a, buf, COPY_BUF);
                if (k < 0)
                        r = berr_setx(e, EIO, "reading \"%s\" from the archive: %s", name, archive_error_string(a));
                else if (k == 0)
                        break;
                else
                        r = content_writer_write(w, buf, (size_t) k, e);
        }
        if (r >= 0)
                r = content_writer_commit(w, e);
        struct legacy_entry *le = NULL;
        if (r >= 0) {
                const char *digest = content_writer_digest(w);
                if (r == 0 && set_add(&im->added, digest) < 0)
                        r = -ENOMEM;
                else if (!(le = legacy_add(im, name)))
                        r = -ENOMEM;
                else
                        snprintf(le->digest, sizeof(le->digest), "%s", digest);
                if (r == -ENOMEM)
                        berr_set(e, ENOMEM, "import");
        }
        content_writer_close(w, true);
        return r < 0 ? berr_prefix(e, "\"%s\" in the archive", name) : 0;
}

/* A symlink's target is relative to its directory, a hardlink's to the
 * archive's top. */
static int record_link(struct import *im, const char *name, const char *target, bool hard, struct berr *e)
{
        struct legacy_entry *le = legacy_add(im, name);
        if (!le)
                return berr_set(e, ENOMEM, "import");
        le->link = true;
        if (hard && target && strncmp(target, "./", 2) == 0)
                target += 2;
        if (!hard)
                le->target = link_target(name, target);
        else if (target && archive_path_ok(target) && !(le->target = strdup(target)))
                return berr_set(e, ENOMEM, "import");
        return 0;
}

static int import_read(struct import *im, const char *path, struct berr *e)
{
        struct archive *a = archive_read_new();
        struct archive_entry *ent;
        int r = 0, ar;

        if (!a)
                return berr_set(e, ENOMEM, "archive");
        archive_read_support_format_tar(a);
        archive_read_support_filter_all(a);
        if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
                r = berr_setx(e, EIO, "\"%s\": %s", path, archive_error_string(a));
                archive_read_free(a);
                return r;
        }
        while (r >= 0 && (ar = archive_read_next_header(a, &ent)) == ARCHIVE_OK) {
                const char *name = archive_entry_pathname(ent);
                if (strncmp(name, "./", 2) == 0)
                        name += 2;
                bool legacy = archive_path_ok(name) && strncmp(name, BLOB_PREFIX, strlen(BLOB_PREFIX)) != 0 &&
                              legacy_candidate(name);
                if (archive_entry_filetype(ent) == AE_IFLNK && legacy)
                        r = record_link(im, name, archive_entry_symlink(ent), false, e);
                if (archive_entry_hardlink(ent)) {
                        if (legacy)
                                r = record_link(im, name, archive_entry_hardlink(ent), true, e);
                        continue;
                }
                if (archive_entry_filetype(ent) != AE_IFREG)
                        continue;
                int64_t size = archive_entry_size(ent);
                if (strncmp(name, BLOB_PREFIX, strlen(BLOB_PREFIX)) == 0)
                        r = ingest_blob(im, a, name, size, e);
                else if (strcmp(name, "index.json") == 0)
                        r = read_meta(a, name, size, &im->index, e);
                else if (strcmp(name, "manifest.json") == 0)
                        r = read_meta(a, name, size, &im->docker, e);
                else if (legacy)
                        r = ingest_legacy(im, a, name, size, e);
        }
        if (r >= 0 && ar != ARCHIVE_EOF)
                r = berr_setx(e, EIO, "\"%s\": %s", path, archive_error_string(a));
        archive_read_free(a);
        return r < 0 ? berr_prefix(e, "importing \"%s\"", path) : 0;
}

/* A blob the archive must have had: in the store with the size given. */
static int need_blob(struct import *im, const char *digest, int64_t size, const char *what, struct berr *e)
{
        if (content_digest_check(digest, e) < 0)
                return berr_prefix(e, "%s", what);
        if (!set_has(&im->tar_blobs, digest))
                return berr_setx(e, ENOENT, "%s %s is not in the archive", what, digest);
        if (!present(im->cs, digest, size))
                return berr_setx(e, EBADMSG, "%s %s: size differs from its descriptor's %lld", what, digest,
                                 (long long) size);
        return 0;
}

static int check_image(struct import *im, const struct image_descriptor *d, struct berr *e)
{
        struct image_manifest m = { 0 };
        int r = need_blob(im, d->digest, d->size, "manifest", e);
        if (r >= 0)
                r = read_manifest(im->cs, d, &m, e);
        if (r < 0)
                return r;
        if (m.kind != IMAGE_MANIFEST_IMAGE)
                r = berr_setx(e, EPROTO, "manifest %s is an index inside an index", d->digest);
        if (r >= 0)
                r = need_blob(im, m.config.digest, m.config.size, "config", e);
        for (size_t i = 0; r >= 0 && i < m.n_layers; i++)
                r = need_blob(im, m.layers[i].digest, m.layers[i].size, "layer", e);
        image_manifest_done(&m);
        return r;
}

/* The target and everything it reaches that the archive has; an index
 * needs at least one of its manifests. */
static int check_target(struct import *im, const struct image_descriptor *d, struct berr *e)
{
        struct image_manifest idx = { 0 };
        int r = need_blob(im, d->digest, d->size, "target", e);
        if (r >= 0)
                r = read_manifest(im->cs, d, &idx, e);
        if (r < 0)
                return r;
        if (idx.kind == IMAGE_MANIFEST_IMAGE) {
                image_manifest_done(&idx);
                return check_image(im, d, e);
        }
        size_t found = 0;
        for (size_t i = 0; r >= 0 && i < idx.n_manifests; i++) {
                if (!set_has(&im->tar_blobs, idx.manifests[i].digest))
                        continue;
                r = check_image(im, &idx.manifests[i], e);
                found++;
        }
        if (r >= 0 && found == 0)
                r = berr_setx(e, ENOENT, "none of the manifests of index %s is in the archive", d->digest);
        image_manifest_done(&idx);
        return r;
}

/* One image to record. */
struct pending {
        char name[IMAGE_REF_STRING_MAX];
        struct image_descriptor d;
};

static int pending_add(struct pending **v, size_t *n, const char *name, const char *media_type, const char *digest,
                       int64_t size, struct berr *e)
{
        struct pending *p = realloc(*v, (*n + 1) * sizeof(**v));
        if (!p)
                return berr_set(e, ENOMEM, "import");
        *v = p;
        p = &p[*n];
        memset(p, 0, sizeof(*p));
        int r = image_archive_name(name, p->name, sizeof(p->name), e);
        if (r < 0)
                return berr_prefix(e, "image name in the archive");
        p->d.media_type = strdup(media_type);
        if (!p->d.media_type)
                return berr_set(e, ENOMEM, "import");
        snprintf(p->d.digest, sizeof(p->d.digest), "%s", digest);
        p->d.size = size;
        (*n)++;
        return 0;
}

/* index.json: one image per descriptor naming one (io.containerd.image.name,
 * or a ref.name that is a whole reference); 0 images when none names one. */
static int from_index(struct import *im, struct pending **v, size_t *n, struct berr *e)
{
        json_t *manifests, *m;
        size_t i;
        int r = json_get_array(im->index, "index.json", "manifests", &manifests, e);
        if (r < 0)
                return r;
        json_array_foreach(manifests, i, m) {
                const char *mt, *digest, *name = NULL;
                int64_t size;
                json_t *annot = json_object_get(m, "annotations");
                if ((r = json_get_string(m, "index.json manifests[]", "mediaType", &mt, e)) < 0 ||
                    (r = json_get_string(m, "index.json manifests[]", "digest", &digest, e)) < 0 ||
                    (r = json_get_int64(m, "index.json manifests[]", "size", &size, e)) < 0)
                        return r;
                name = json_string_value(json_object_get(annot, ANNOT_IMAGE_NAME));
                if (!name) {
                        name = json_string_value(json_object_get(annot, ANNOT_REF_NAME));
                        /* a bare tag names no repository */
                        if (name && !strpbrk(name, "/:@"))
                                name = NULL;
                }
                if (!name)
                        continue;
                r = pending_add(v, n, name, mt, digest, size, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int layer_media_type(struct content_store *cs, const char *digest, const char **ret, struct berr *e)
{
        unsigned char magic[2] = { 0 };
        _cleanup_close_ int fd = content_open(cs, digest, e);
        if (fd < 0)
                return fd;
        ssize_t k = read(fd, magic, sizeof(magic));
        *ret = k == 2 && magic[0] == 0x1f && magic[1] == 0x8b ? MEDIA_DOCKER_LAYER_GZIP : MEDIA_DOCKER_LAYER;
        return 0;
}

/* A legacy path (links followed) → the digest of the file it names. */
static int legacy_path(struct import *im, const char *s, char ret[CONTENT_DIGEST_MAX], struct berr *e)
{
        const char *p = s;
        for (int hops = 0; hops < 16; hops++) {
                const struct legacy_entry *le = NULL;
                /* the last entry of a name wins, as when a tar is extracted */
                for (size_t i = im->n_legacy; !le && i > 0; i--)
                        if (strcmp(im->legacy[i - 1].path, p) == 0)
                                le = &im->legacy[i - 1];
                if (!le)
                        return berr_setx(e, ENOENT, "manifest.json: \"%s\" is not in the archive", s);
                if (!le->link) {
                        snprintf(ret, CONTENT_DIGEST_MAX, "%s", le->digest);
                        return set_add(&im->tar_blobs, ret) < 0 ? berr_set(e, ENOMEM, "import") : 0;
                }
                if (!le->target)
                        return berr_setx(e, EINVAL, "manifest.json: \"%s\" is a link out of the archive", s);
                p = le->target;
        }
        return berr_setx(e, ELOOP, "manifest.json: \"%s\": too many links", s);
}

/* "blobs/sha256/<hex>" → its digest, which the archive must have; any
 * other path is one of the legacy layout (<id>/layer.tar, <hex>.json). */
static int docker_path(struct import *im, json_t *p, char ret[CONTENT_DIGEST_MAX], struct berr *e)
{
        const char *s = json_string_value(p);
        if (!s)
                return berr_setx(e, EINVAL, "manifest.json: a path is not a string");
        if (strncmp(s, "./", 2) == 0)
                s += 2;
        if (!archive_path_ok(s))
                return berr_setx(e, EINVAL, "manifest.json: unsafe path \"%s\" refused", s);
        if (strncmp(s, BLOB_PREFIX, strlen(BLOB_PREFIX)) != 0)
                return legacy_path(im, s, ret, e);
        snprintf(ret, CONTENT_DIGEST_MAX, "sha256:%s", s + strlen(BLOB_PREFIX));
        if (content_digest_check(ret, e) < 0)
                return berr_prefix(e, "manifest.json");
        if (!set_has(&im->tar_blobs, ret))
                return berr_setx(e, ENOENT, "manifest.json: \"%s\" is not in the archive", s);
        return 0;
}

/* The config's rootfs.diff_ids against the layers: as many, and an
 * uncompressed layer's digest is its diff id (a compressed one's is
 * checked when it is unpacked). A legacy layer.tar has no other check. */
static int check_diff_ids(struct import *im, json_t *config, json_t *layers, struct berr *e)
{
        _cleanup_free_ char *data = NULL;
        size_t len;
        json_t *l;
        size_t i;
        const char *cdigest = json_string_value(config);
        int r = content_read(im->cs, cdigest, META_MAX, &data, &len, e);
        if (r < 0)
                return berr_prefix(e, "config");
        json_t *cfg = json_loadb(data, len, 0, NULL);
        json_t *diffs = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
        if (!json_is_array(diffs))
                r = berr_setx(e, EINVAL, "config %s has no rootfs.diff_ids", cdigest);
        else if (json_array_size(diffs) != json_array_size(layers))
                r = berr_setx(e, EINVAL, "config %s has %zu rootfs.diff_ids for %zu layers", cdigest,
                              json_array_size(diffs), json_array_size(layers));
        json_array_foreach(layers, i, l) {
                if (r < 0)
                        break;
                const char *d = json_string_value(json_object_get(l, "digest"));
                const char *want = json_string_value(json_array_get(diffs, i));
                if (strcmp(json_string_value(json_object_get(l, "mediaType")), MEDIA_DOCKER_LAYER) == 0 &&
                    (!want || strcmp(d, want) != 0))
                        r = berr_setx(e, EBADMSG,
                                      "layer %zu (%s) does not match rootfs.diff_ids[%zu] %s of config %s; refused",
                                      i, d, i, want ? want : "(not a string)", cdigest);
        }
        json_decref(cfg);
        return r;
}

/* A Docker schema 2 manifest for one manifest.json entry, stored. */
static int docker_manifest(struct import *im, json_t *ent, char ret[CONTENT_DIGEST_MAX], int64_t *ret_size,
                           struct berr *e)
{
        char digest[CONTENT_DIGEST_MAX];
        struct content_info info;
        const char *mt;
        json_t *layers = json_object_get(ent, "Layers"), *l;
        size_t i;
        int r = docker_path(im, json_object_get(ent, "Config"), digest, e);
        if (r < 0 || (r = content_info(im->cs, digest, &info, e)) < 0)
                return r;
        json_t *m = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[]}", "schemaVersion", 2, "mediaType",
                              MEDIA_DOCKER_MANIFEST, "config", "mediaType", MEDIA_DOCKER_CONFIG, "digest", digest,
                              "size", (json_int_t) info.size, "layers");
        if (!m)
                return berr_set(e, ENOMEM, "manifest");
        if (!json_is_array(layers))
                r = berr_setx(e, EINVAL, "manifest.json: an entry has no Layers array");
        json_array_foreach(layers, i, l) {
                if (r < 0)
                        break;
                r = docker_path(im, l, digest, e);
                if (r >= 0)
                        r = content_info(im->cs, digest, &info, e);
                if (r >= 0)
                        r = layer_media_type(im->cs, digest, &mt, e);
                if (r >= 0)
                        json_array_append_new(json_object_get(m, "layers"),
                                              json_pack("{s:s, s:s, s:I}", "mediaType", mt, "digest", digest, "size",
                                                        (json_int_t) info.size));
        }
        if (r >= 0)
                r = check_diff_ids(im, json_object_get(json_object_get(m, "config"), "digest"),
                                   json_object_get(m, "layers"), e);
        _cleanup_free_ char *s = r >= 0 ? json_dumps(m, JSON_COMPACT) : NULL;
        json_decref(m);
        if (r < 0)
                return r;
        if (!s)
                return berr_set(e, ENOMEM, "manifest");
        r = content_digest_of(s, strlen(s), ret);
        if (r >= 0 && !present(im->cs, ret, -1)) {
                r = content_write_blob(im->cs, s, strlen(s), ret, NULL, e);
                if (r >= 0 && set_add(&im->added, ret) < 0)
                        r = berr_set(e, ENOMEM, "import");
        }
        if (r >= 0 && set_add(&im->tar_blobs, ret) < 0)
                r = berr_set(e, ENOMEM, "import");
        *ret_size = (int64_t) strlen(s);
        return r < 0 ? r : 0;
}

static int from_docker(struct import *im, struct pending **v, size_t *n, struct berr *e)
{
        json_t *ent, *tag;
        size_t i, j;
        if (!json_is_array(im->docker))
                return berr_setx(e, EINVAL, "manifest.json is not an array");
        json_array_foreach(im->docker, i, ent) {
                char digest[CONTENT_DIGEST_MAX];
                int64_t size = 0;
                int r = docker_manifest(im, ent, digest, &size, e);
                if (r < 0)
                        return r;
                json_array_foreach(json_object_get(ent, "RepoTags"), j, tag) {
                        if (!json_is_string(tag))
                                return berr_setx(e, EINVAL, "manifest.json: RepoTags holds a non-string");
                        r = pending_add(v, n, json_string_value(tag), MEDIA_DOCKER_MANIFEST, digest, size, e);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int import_record(struct import *im, struct image_store *is, const struct image_platform *platform,
                         struct pending *v, size_t n, struct berr *e)
{
        for (size_t i = 0; i < n; i++) {
                int r = check_target(im, &v[i].d, e);
                if (r < 0)
                        return berr_prefix(e, "image \"%s\"", v[i].name);
        }
        /* all checked: now record */
        for (size_t i = 0; i < n; i++) {
                struct image_record rec = { .name = v[i].name, .media_type = v[i].d.media_type, .size = v[i].d.size };
                struct image_manifest m = { 0 };
                char mdigest[CONTENT_DIGEST_MAX];
                snprintf(rec.digest, sizeof(rec.digest), "%s", v[i].d.digest);
                int r = image_store_manifest(is, &rec, platform, &m, mdigest, e);
                if (r < 0)
                        return r;
                r = image_store_put(is, v[i].name, v[i].d.media_type, v[i].d.digest, m.config.digest, e);
                image_manifest_done(&m);
                if (r < 0)
                        return r;
        }
        return 0;
}

int image_archive_import(struct image_store *is, struct content_store *cs, const char *path,
                         const struct image_platform *platform, char ***ret_names, struct berr *e)
{
        struct import im = { .cs = cs };
        struct pending *v = NULL;
        size_t n = 0;
        int r = import_read(&im, path, e);

        if (r >= 0 && im.index)
                r = from_index(&im, &v, &n, e);
        if (r >= 0 && n == 0 && im.docker)
                r = from_docker(&im, &v, &n, e);
        if (r >= 0 && !im.index && !im.docker)
                r = berr_setx(e, EINVAL, "\"%s\" has neither index.json nor manifest.json", path);
        if (r >= 0 && n == 0)
                r = berr_setx(e, EINVAL, "\"%s\" names no image", path);
        if (r >= 0)
                r = import_record(&im, is, platform, v, n, e);
        if (r >= 0 && ret_names) {
                char **names = calloc(n + 1, sizeof(char *));
                for (size_t i = 0; names && i < n; i++)
                        if (!(names[i] = strdup(v[i].name))) {
                                strv_free(names);
                                names = NULL;
                        }
                if (!names)
                        r = berr_set(e, ENOMEM, "import");
                else
                        *ret_names = names;
        }
        /* On failure every blob the import added goes, on success the
         * legacy files manifest.json did not name (v1 metadata, strays). */
        for (size_t i = 0; i < im.added.n; i++)
                if (r < 0 || !set_has(&im.tar_blobs, im.added.v[i]))
                        content_delete(cs, im.added.v[i], NULL);
        for (size_t i = 0; i < im.n_legacy; i++) {
                free(im.legacy[i].path);
                free(im.legacy[i].target);
        }
        free(im.legacy);
        for (size_t i = 0; i < n; i++)
                free(v[i].d.media_type);
        free(v);
        free(im.added.v);
        free(im.tar_blobs.v);
        json_decref(im.index);
        json_decref(im.docker);
        return r < 0 ? r : 0;
}

/* Image metadata and content garbage collection (see image-store.h). Each
 * operation takes the lock, loads images.json, changes it and writes it
 * back. */
#include "image-store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs-util.h"
#include "json-util.h"
#include "time-util.h"

#define META_MAX (64u << 20)
#define CONFIG_MAX (8u << 20)
/* an index inside an index inside ...: enough for every real image */
#define WALK_DEPTH_MAX 4

struct image_store {
        struct content_store *cs;
        char *meta;     /* <root>/meta/images.json */
        char *lock;     /* <root>/meta/images.lock */
};

int image_store_open(const char *root, struct content_store *cs, struct image_store **ret, struct berr *e)
{
        _cleanup_free_ char *metadir = NULL;
        struct image_store *is = calloc(1, sizeof(*is));
        if (!is)
                return berr_set(e, ENOMEM, "image store");
        is->cs = cs;
        if (asprintf(&metadir, "%s/meta", root) < 0 || asprintf(&is->meta, "%s/images.json", metadir) < 0 ||
            asprintf(&is->lock, "%s/images.lock", metadir) < 0) {
                image_store_free(is);
                return berr_set(e, ENOMEM, "image store");
        }
        int r = fs_mkdir_p(metadir, 0700);
        if (r < 0) {
                image_store_free(is);
                return berr_set(e, r, "creating \"%s\"", metadir);
        }
        *ret = is;
        return 0;
}

void image_store_free(struct image_store *is)
{
        if (!is)
                return;
        free(is->meta);
        free(is->lock);
        free(is);
}

void image_record_done(struct image_record *r)
{
        if (!r)
                return;
        free(r->name);
        free(r->media_type);
        free(r->created);
        strv_free(r->labels);
        *r = (struct image_record) { 0 };
}

void image_records_free(struct image_record *v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                image_record_done(&v[i]);
        free(v);
}

/* ---------- metadata ---------- */

struct meta {
        int lockfd;
        json_t *doc;            /* {"images": {name: {"target": {...}, "created": .., "labels": {..}}}} */
        json_t *images;         /* borrowed from doc */
};

static void meta_done(struct meta *m)
{
        json_decref(m->doc);
        if (m->lockfd >= 0)
                close(m->lockfd); /* drops the flock */
        *m = (struct meta) { .lockfd = -1 };
}

static int meta_load(struct image_store *is, struct meta *m, struct berr *e)
{
        *m = (struct meta) { .lockfd = -1 };
        m->lockfd = open(is->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (m->lockfd < 0)
                return berr_set(e, errno, "opening \"%s\"", is->lock);
        while (flock(m->lockfd, LOCK_EX) < 0)
                if (errno != EINTR) {
                        int r = berr_set(e, errno, "locking \"%s\"", is->lock);
                        meta_done(m);
                        return r;
                }
        if (access(is->meta, F_OK) < 0 && errno == ENOENT) {
                m->doc = json_pack("{s:{}}", "images");
        } else {
                int r = json_load_path(is->meta, META_MAX, &m->doc, e);
                if (r < 0) {
                        meta_done(m);
                        return r;
                }
        }
        m->images = m->doc ? json_object_get(m->doc, "images") : NULL;
        if (!json_is_object(m->images)) {
                meta_done(m);
                return berr_setx(e, EINVAL, "\"%s\": not image metadata", is->meta);
        }
        return 0;
}

static int meta_save(struct image_store *is, struct meta *m, struct berr *e)
{
        int r = json_write_atomic(is->meta, m->doc, JSON_INDENT(2) | JSON_SORT_KEYS, 0600);
        return r < 0 ? berr_set(e, r, "writing \"%s\"", is->meta) : 0;
}

static int entry_record(const char *name, const json_t *o, struct image_record *ret, struct berr *e)
{
        struct image_record rec = { 0 };
        json_t *target = NULL, *labels = NULL;
        const char *mt = NULL, *digest = NULL, *created = NULL;
        int64_t size = -1;
        int r;

        if ((r = json_get_object(o, name, "target", &target, e)) < 0 ||
            (target && ((r = json_get_string(target, "target", "mediaType", &mt, e)) < 0 ||
                        (r = json_get_string(target, "target", "digest", &digest, e)) < 0 ||
                        (r = json_get_int64(target, "target", "size", &size, e)) < 0)) ||
            (r = json_get_string(o, name, "created", &created, e)) < 0 ||
            (r = json_get_object(o, name, "labels", &labels, e)) < 0)
                return berr_prefix(e, "image \"%s\"", name);
        if (!mt || !digest || !created || size < 0 || content_digest_check(digest, NULL) < 0)
                return berr_setx(e, EINVAL, "image \"%s\": bad metadata", name);

        size_t n = labels ? json_object_size(labels) : 0, i = 0;
        const char *k;
        json_t *v;
        if (!(rec.name = strdup(name)) || !(rec.media_type = strdup(mt)) || !(rec.created = strdup(created)) ||
            !(rec.labels = calloc(2 * n + 1, sizeof(char *)))) {
                image_record_done(&rec);
                return berr_set(e, ENOMEM, "image \"%s\"", name);
        }
        if (labels)
                json_object_foreach(labels, k, v) {
                        if (!json_is_string(v))
                                continue;
                        if (!(rec.labels[i++] = strdup(k)) || !(rec.labels[i++] = strdup(json_string_value(v)))) {
                                image_record_done(&rec);
                                return berr_set(e, ENOMEM, "image \"%s\"", name);
                        }
                }
        snprintf(rec.digest, sizeof(rec.digest), "%s", digest);
        rec.size = size;
        *ret = rec;
        return 0;
}

/* config.Labels of an image config, or an empty object. */
static int config_labels(struct content_store *cs, const char *config_digest, json_t **ret, struct berr *e)
{
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        json_t *labels = NULL;

        if (config_digest) {
                int r = content_read(cs, config_digest, CONFIG_MAX, &data, &len, e);
                if (r < 0)
                        return r;
                _cleanup_json_ json_t *cfg = json_loadb(data, len, 0, NULL);
                json_t *c = json_object_get(cfg, "config");
                json_t *l = json_object_get(c, "Labels");
                if (!json_is_object(cfg))
                        return berr_setx(e, EINVAL, "image config %s is not a JSON object", config_digest);
                if (json_is_object(l))
                        labels = json_deep_copy(l);
        }
        if (!labels)
                labels = json_object();
        if (!labels)
                return berr_set(e, ENOMEM, "labels");
        *ret = labels;
        return 0;
}

int image_store_put(struct image_store *is, const char *name, const char *media_type, const char *digest,
                    const char *config_digest, struct berr *e)
{
        struct content_info info;
        struct meta m;
        char now[40];
        json_t *labels = NULL;
        int r;

        r = content_info(is->cs, digest, &info, e);
        if (r < 0)
                return berr_prefix(e, "image \"%s\"", name);
        r = config_labels(is->cs, config_digest, &labels, e);
        if (r < 0)
                return berr_prefix(e, "image \"%s\"", name);
        json_t *entry = json_pack("{s:{s:s,s:s,s:I},s:s,s:o}", "target", "mediaType", media_type, "digest", digest,
                                  "size", (json_int_t) info.size, "created",
                                  time_now_rfc3339_nano(now, sizeof(now)), "labels", labels);
        if (!entry)
                return berr_set(e, ENOMEM, "image \"%s\"", name);
        r = meta_load(is, &m, e);
        if (r < 0) {
                json_decref(entry);
                return r;
        }
        if (json_object_set_new(m.images, name, entry) < 0)
                r = berr_set(e, ENOMEM, "image \"%s\"", name);
        else
                r = meta_save(is, &m, e);
        meta_done(&m);
        return r;
}

int image_store_get(struct image_store *is, const char *name, struct image_record *ret, struct berr *e)
{
        struct meta m;
        int r = meta_load(is, &m, e);
        if (r < 0)
                return r;
        json_t *o = json_object_get(m.images, name);
        r = o ? entry_record(name, o, ret, e) : berr_setx(e, ENOENT, "image \"%s\": not found", name);
        meta_done(&m);
        return r;
}

static int record_cmp(const void *a, const void *b)
{
        return strcmp(((const struct image_record *) a)->name, ((const struct image_record *) b)->name);
}

int image_store_list(struct image_store *is, struct image_record **ret, size_t *ret_n, struct berr *e)
{
        struct meta m;
        const char *k;
        json_t *v;
        size_t n = 0;
        int r = meta_load(is, &m, e);
        if (r < 0)
                return r;
        struct image_record *recs = calloc(json_object_size(m.images) + 1, sizeof(*recs));
        if (!recs) {
                meta_done(&m);
                return berr_set(e, ENOMEM, "images");
        }
        json_object_foreach(m.images, k, v) {
                r = entry_record(k, v, &recs[n], e);
                if (r < 0) {
                        image_records_free(recs, n);
                        meta_done(&m);
                        return r;
                }
                n++;
        }
        meta_done(&m);
        qsort(recs, n, sizeof(*recs), record_cmp);
        *ret = recs;
        *ret_n = n;
        return 0;
}

int image_store_tag(struct image_store *is, const char *src, const char *dst, struct berr *e)
{
        struct meta m;
        int r = meta_load(is, &m, e);
        if (r < 0)
                return r;
        json_t *o = json_object_get(m.images, src);
        if (!o)
                r = berr_setx(e, ENOENT, "image \"%s\": not found", src);
        else if (json_object_set_new(m.images, dst, json_deep_copy(o)) < 0)
                r = berr_set(e, ENOMEM, "image \"%s\"", dst);
        else
                r = meta_save(is, &m, e);
        meta_done(&m);
        return r;
}

int image_store_remove(struct image_store *is, const char *name, struct berr *e)
{
        struct meta m;
        int r = meta_load(is, &m, e);
        if (r < 0)
                return r;
        if (json_object_del(m.images, name) < 0)
                r = berr_setx(e, ENOENT, "image \"%s\": not found", name);
        else
                r = meta_save(is, &m, e);
        meta_done(&m);
        return r;
}

/* ---------- walking an image ---------- */

static int read_manifest(struct content_store *cs, const char *digest, const char *media_type,
                         struct image_manifest *ret, struct berr *e)
{
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r = content_read(cs, digest, IMAGE_MANIFEST_MAX, &data, &len, e);
        if (r < 0)
                return r;
        r = image_manifest_parse(data, len, media_type, ret, e);
        return r < 0 ? berr_prefix(e, "%s", digest) : 0;
}

static bool present(struct content_store *cs, const char *digest)
{
        struct content_info info;
        return content_info(cs, digest, &info, NULL) == 0;
}

int image_store_manifest(struct image_store *is, const struct image_record *rec, const struct image_platform *platform,
                         struct image_manifest *ret, char ret_digest[CONTENT_DIGEST_MAX], struct berr *e)
{
        struct image_manifest idx = { 0 };
        const struct image_descriptor *d = NULL;
        int r = read_manifest(is->cs, rec->digest, rec->media_type, &idx, e);
        if (r < 0)
                return berr_prefix(e, "image \"%s\"", rec->name);
        if (idx.kind == IMAGE_MANIFEST_IMAGE) {
                *ret = idx;
                memcpy(ret_digest, rec->digest, CONTENT_DIGEST_MAX);
                return 0;
        }
        if (image_index_select(&idx, platform, &d, NULL) < 0 || !present(is->cs, d->digest)) {
                d = NULL;
                for (size_t i = 0; i < idx.n_manifests && !d; i++)
                        if (present(is->cs, idx.manifests[i].digest))
                                d = &idx.manifests[i];
        }
        if (!d) {
                image_manifest_done(&idx);
                return berr_setx(e, ENOENT, "image \"%s\": none of the manifests of index %s is in the store",
                                 rec->name, rec->digest);
        }
        r = read_manifest(is->cs, d->digest, d->media_type, ret, e);
        if (r == 0 && ret->kind != IMAGE_MANIFEST_IMAGE) {
                image_manifest_done(ret);
                r = berr_setx(e, EPROTO, "image \"%s\": manifest %s is an index", rec->name, d->digest);
        }
        if (r == 0)
                memcpy(ret_digest, d->digest, CONTENT_DIGEST_MAX);
        image_manifest_done(&idx);
        return r;
}

static uint64_t blob_size(struct content_store *cs, const char *digest)
{
        struct content_info info;
        return content_info(cs, digest, &info, NULL) == 0 ? info.size : 0;
}

int image_store_size(struct image_store *is, const struct image_record *rec, const struct image_platform *platform,
                     uint64_t *ret, struct berr *e)
{
        struct image_manifest m = { 0 };
        char digest[CONTENT_DIGEST_MAX];
        int r = image_store_manifest(is, rec, platform, &m, digest, e);
        if (r < 0)
                return r;
        uint64_t size = blob_size(is->cs, digest) + blob_size(is->cs, m.config.digest);
        if (strcmp(digest, rec->digest) != 0)
                size += blob_size(is->cs, rec->digest);
        for (size_t i = 0; i < m.n_layers; i++)
                size += blob_size(is->cs, m.layers[i].digest);
        image_manifest_done(&m);
        *ret = size;
        return 0;
}

static json_t *labels_json(char **labels)
{
        json_t *o = json_object();
        for (size_t i = 0; o && labels[i] && labels[i + 1]; i += 2)
                json_object_set_new(o, labels[i], json_string(labels[i + 1]));
        return o;
}

int image_store_inspect(struct image_store *is, const char *name, const struct image_platform *platform,
                        json_t **ret, struct berr *e)
{
        struct image_record rec = { 0 };
        struct image_manifest m = { 0 };
        char digest[CONTENT_DIGEST_MAX];
        _cleanup_free_ char *data = NULL;
        _cleanup_json_ json_t *cfg = NULL, *out = NULL;
        size_t len = 0;
        uint64_t size = 0;
        int r;

        r = image_store_get(is, name, &rec, e);
        if (r < 0)
                return r;
        r = image_store_manifest(is, &rec, platform, &m, digest, e);
        if (r == 0)
                r = image_store_size(is, &rec, platform, &size, e);
        if (r == 0)
                r = content_read(is->cs, m.config.digest, CONFIG_MAX, &data, &len, e);
        if (r == 0)
                cfg = json_loadb(data, len, 0, NULL);
        if (r == 0 && !json_is_object(cfg))
                r = berr_setx(e, EINVAL, "image \"%s\": config %s is not a JSON object", name, m.config.digest);
        if (r < 0)
                goto out;

        json_t *rootfs = json_object_get(cfg, "rootfs"), *ids = json_object_get(rootfs, "diff_ids");
        json_t *layers = json_array();
        for (size_t i = 0; layers && i < m.n_layers; i++)
                json_array_append_new(layers, json_string(m.layers[i].digest));
        out = json_pack("{s:s,s:{s:s,s:s,s:I},s:s,s:s,s:o*,s:O*,s:O*,s:O*,s:s,s:o*,s:I}", "name", name, "target",
                        "mediaType", rec.media_type, "digest", rec.digest, "size", (json_int_t) rec.size,
                        "manifest", digest, "config", m.config.digest, "layers", layers, "diff_ids",
                        json_is_array(ids) ? ids : NULL, "os", json_object_get(cfg, "os"), "architecture",
                        json_object_get(cfg, "architecture"), "created", rec.created, "labels",
                        labels_json(rec.labels), "size", (json_int_t) size);
        if (!out) {
                r = berr_set(e, ENOMEM, "image \"%s\"", name);
                goto out;
        }
        json_t *variant = json_object_get(cfg, "variant");
        if (json_is_string(variant))
                json_object_set(out, "variant", variant);
        *ret = TAKE_PTR(out);
out:
        image_manifest_done(&m);
        image_record_done(&rec);
        return r;
}

/* ---------- reachability and gc ---------- */

struct digest_set {
        char **v;
        size_t n, cap;
};

static int set_add(struct digest_set *s, const char *d)
{
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->v[i], d) == 0)
                        return 0;
        if (s->n + 1 >= s->cap) {
                size_t cap = s->cap ? 2 * s->cap : 32;
                char **v = realloc(s->v, cap * sizeof(char *));
                if (!v)
                        return -ENOMEM;
                s->v = v;
                s->cap = cap;
        }
        if (!(s->v[s->n] = strdup(d)))
                return -ENOMEM;
        s->v[++s->n] = NULL;
        return 1;
}

/* Adds digest and what it reaches to s; with configs, the config of every
 * image manifest in the store goes there too. */
static int walk(struct content_store *cs, const char *digest, const char *media_type, int depth,
                struct digest_set *s, struct digest_set *configs, struct berr *e)
{
        struct image_manifest m = { 0 };
        int r = set_add(s, digest);
        if (r <= 0)
                return r < 0 ? berr_set(e, r, "gc") : 0;
        if (!present(cs, digest))
                return 0;
        if (depth > WALK_DEPTH_MAX)
                return berr_setx(e, ELOOP, "%s: indexes nested deeper than %d", digest, WALK_DEPTH_MAX);
        r = read_manifest(cs, digest, media_type, &m, e);
        if (r < 0)
                return r;
        if (m.kind == IMAGE_MANIFEST_INDEX) {
                for (size_t i = 0; r >= 0 && i < m.n_manifests; i++)
                        r = walk(cs, m.manifests[i].digest, m.manifests[i].media_type, depth + 1, s, configs, e);
        } else {
                r = set_add(s, m.config.digest);
                if (r >= 0 && configs && present(cs, m.config.digest))
                        r = set_add(configs, m.config.digest);
                for (size_t i = 0; r >= 0 && i < m.n_layers; i++)
                        r = set_add(s, m.layers[i].digest);
                if (r < 0)
                        r = berr_set(e, r, "gc");
        }
        image_manifest_done(&m);
        return r < 0 ? r : 0;
}

static int str_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int reachable_locked(struct image_store *is, struct meta *m, struct digest_set *s,
                            struct digest_set *configs, struct berr *e)
{
        const char *k;
        json_t *v;
        json_object_foreach(m->images, k, v) {
                struct image_record rec = { 0 };
                int r = entry_record(k, v, &rec, e);
                if (r == 0)
                        r = walk(is->cs, rec.digest, rec.media_type, 0, s, configs, e);
                if (r < 0) {
                        berr_prefix(e, "image \"%s\"", k);
                        image_record_done(&rec);
                        return r;
                }
                image_record_done(&rec);
        }
        if (s->n)
                qsort(s->v, s->n, sizeof(char *), str_cmp);
        return 0;
}

static char **set_take(struct digest_set *s)
{
        if (!s->v)
                return calloc(1, sizeof(char *));
        char **v = s->v;
        *s = (struct digest_set) { 0 };
        return v;
}

int image_store_reachable(struct image_store *is, char ***ret, struct berr *e)
{
        struct digest_set s = { 0 };
        struct meta m;
        int r = meta_load(is, &m, e);
        if (r < 0)
                return r;
        r = reachable_locked(is, &m, &s, NULL, e);
        meta_done(&m);
        char **v = r < 0 ? NULL : set_take(&s);
        strv_free(s.v);
        if (r < 0)
                return r;
        if (!v)
                return berr_set(e, ENOMEM, "gc");
        *ret = v;
        return 0;
}

int image_store_configs(struct image_store *is, char ***ret, struct berr *e)
{
        struct digest_set s = { 0 }, configs = { 0 };
        struct meta m;
        int r = meta_load(is, &m, e);
        if (r < 0)
                return r;
        r = reachable_locked(is, &m, &s, &configs, e);
        meta_done(&m);
        strv_free(s.v);
        char **v = r < 0 ? NULL : set_take(&configs);
        strv_free(configs.v);
        if (r < 0)
                return r;
        if (!v)
                return berr_set(e, ENOMEM, "gc");
        *ret = v;
        return 0;
}

/* A writer holds an exclusive flock on ingest/<ref>/data while it writes. */
static bool ingest_active(struct content_store *cs, const char *digest)
{
        char ref[80];
        _cleanup_free_ char *path = NULL;
        if (content_ingest_ref(digest, ref, sizeof(ref)) < 0 ||
            asprintf(&path, "%s/ingest/%s/data", content_store_root(cs), ref) < 0)
                return true; /* when in doubt, keep */
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno != ENOENT;
        return flock(fd, LOCK_SH | LOCK_NB) < 0;
}

int image_store_gc(struct image_store *is, char ***ret_removed, struct berr *e)
{
        struct digest_set keep = { 0 }, removed = { 0 };
        _cleanup_free_ struct content_info *blobs = NULL;
        size_t n = 0;
        struct meta m;
        int r = meta_load(is, &m, e);
        if (r < 0)
                return r;
        r = reachable_locked(is, &m, &keep, NULL, e);
        if (r == 0)
                r = content_list(is->cs, &blobs, &n, e);
        for (size_t i = 0; r == 0 && i < n; i++) {
                const char *d = blobs[i].digest;
                if ((keep.n && bsearch(&d, keep.v, keep.n, sizeof(char *), str_cmp)) || ingest_active(is->cs, d))
                        continue;
                r = content_delete(is->cs, d, e);
                if (r == -ENOENT) { /* deleted meanwhile by someone else */
                        r = 0;
                        continue;
                }
                if (r < 0)
                        break;
                if ((r = set_add(&removed, d)) < 0)
                        r = berr_set(e, r, "gc");
                else
                        r = 0;
        }
        meta_done(&m);
        strv_free(keep.v);
        if (r == 0 && ret_removed) {
                char **v = set_take(&removed);
                if (!v)
                        r = berr_set(e, ENOMEM, "gc");
                else
                        *ret_removed = v;
        }
        strv_free(removed.v);
        return r;
}

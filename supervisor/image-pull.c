/* Pulling an image (see image-pull.h): the manifests first, one after the
 * other; then the config and the layers together, through
 * registry_fetch_blobs, each verified into the store as it completes. When
 * the pull also unpacks, a thread applies the layers in order, each as soon
 * as it is stored, while the later ones still download; the two threads
 * meet on the pull's lock. */
#include "image-pull.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"

void image_pull_result_done(struct image_pull_result *r)
{
        if (!r)
                return;
        free(r->manifest_media_type);
        free(r->index_media_type);
        free(r->layers);
        memset(r, 0, sizeof(*r));
}

const char *image_pull_status_string(enum image_pull_status st)
{
        switch (st) {
        case IMAGE_PULL_WAITING:
                return "waiting";
        case IMAGE_PULL_DOWNLOADING:
                return "downloading";
        case IMAGE_PULL_VERIFYING:
                return "verifying";
        case IMAGE_PULL_DOWNLOADED:
                return "downloaded";
        case IMAGE_PULL_EXTRACTING:
                return "extracting";
        case IMAGE_PULL_DONE:
                return "done";
        case IMAGE_PULL_EXISTS:
                return "exists";
        case IMAGE_PULL_FAILED:
                return "failed";
        }
        return "unknown";
}

/* ---------- the manifests ---------- */

static int get_manifest(struct registry_client *rc, const char *object, struct image_manifest *ret, char **ret_body,
                        size_t *ret_len, char digest[CONTENT_DIGEST_MAX], struct berr *e)
{
        _cleanup_free_ char *ct = NULL;
        int r = registry_get_manifest(rc, object, ret_body, ret_len, &ct, digest, e);
        if (r < 0)
                return r;
        r = image_manifest_parse(*ret_body, *ret_len, ct, ret, e);
        if (r < 0) {
                free(*ret_body);
                *ret_body = NULL;
                return berr_prefix(e, "manifest %s", object);
        }
        return 0;
}

/* The image manifest for ref, through its index when it names one. */
struct manifests {
        struct image_manifest index, m;
        char *index_body, *body;
        size_t index_len, len;
};

static void manifests_done(struct manifests *ms)
{
        image_manifest_done(&ms->index);
        image_manifest_done(&ms->m);
        free(ms->index_body);
        free(ms->body);
}

static int resolve(struct registry_client *rc, const struct image_ref *ref, const struct image_platform *platform,
                   struct manifests *ms, struct image_pull_result *res, struct berr *e)
{
        char digest[CONTENT_DIGEST_MAX];
        int r = get_manifest(rc, image_ref_object(ref), &ms->m, &ms->body, &ms->len, digest, e);
        if (r < 0)
                return r;
        if (ms->m.kind == IMAGE_MANIFEST_INDEX) {
                const struct image_descriptor *d;
                ms->index = ms->m;
                memset(&ms->m, 0, sizeof(ms->m));
                ms->index_body = TAKE_PTR(ms->body);
                ms->index_len = ms->len;
                memcpy(res->index_digest, digest, sizeof(digest));
                r = image_index_select(&ms->index, platform, &d, e);
                if (r < 0)
                        return berr_prefix(e, "%s", image_ref_object(ref));
                r = get_manifest(rc, d->digest, &ms->m, &ms->body, &ms->len, digest, e);
                if (r < 0)
                        return r;
                if (ms->m.kind != IMAGE_MANIFEST_IMAGE)
                        return berr_setx(e, EPROTO, "manifest %s: an index inside an index is not supported",
                                         d->digest);
                if ((int64_t) ms->len != d->size)
                        return berr_setx(e, EBADMSG, "manifest %s: %zu bytes, the index says %lld", d->digest,
                                         ms->len, (long long) d->size);
        }
        memcpy(res->manifest_digest, digest, sizeof(digest));
        memcpy(res->config_digest, ms->m.config.digest, CONTENT_DIGEST_MAX);
        if (!(res->manifest_media_type = strdup(ms->m.media_type)) ||
            (ms->index_body && !(res->index_media_type = strdup(ms->index.media_type))) ||
            !(res->layers = calloc(ms->m.n_layers ? ms->m.n_layers : 1, sizeof(*res->layers))))
                return berr_set(e, ENOMEM, "pull");
        res->n_layers = ms->m.n_layers;
        for (size_t i = 0; i < ms->m.n_layers; i++)
                memcpy(res->layers[i], ms->m.layers[i].digest, CONTENT_DIGEST_MAX);
        return 0;
}

/* ---------- the blobs ---------- */

/* blobs[0] is the config, blobs[1 + i] layer i. */
struct pull_blob {
        const struct image_descriptor *d;
        size_t first;                  /* the blob with the same digest that is fetched (itself if none before) */
        struct content_writer *w;      /* while it downloads */
        struct registry_sink sink;
        bool started;
        bool stored;                   /* verified, in the store (guarded by lock) */
};

struct pull {
        struct content_store *cs;
        const struct image_pull_options *o;
        const struct image_manifest *m;
        struct pull_blob *blobs;
        size_t n_blobs;
        size_t *req_blob;              /* request index → blob index */
        size_t n_fetched;

        pthread_mutex_t lock;          /* guards stored, downloads_over, unpack_failed */
        pthread_cond_t changed;
        bool downloads_over;           /* registry_fetch_blobs returned */
        bool unpack_failed;
        pthread_mutex_t progress_lock; /* progress calls come from both threads: one at a time */

        /* the unpacker */
        struct image_unpack_result unpack;
        struct berr unpack_err;
        int unpack_r;
};

static void report(struct pull *p, const char *digest, enum image_pull_status st, uint64_t current, uint64_t total)
{
        const struct image_pull_progress *pg = p->o->progress;
        if (!pg || !pg->fn)
                return;
        pthread_mutex_lock(&p->progress_lock);
        pg->fn(pg->ud, digest, st, current, total);
        pthread_mutex_unlock(&p->progress_lock);
}

static uint64_t sink_offset(void *ud)
{
        return content_writer_offset(ud);
}

static int sink_reset(void *ud, struct berr *e)
{
        return content_writer_reset(ud, e);
}

static int sink_write(void *ud, const void *data, size_t len, struct berr *e)
{
        return content_writer_write(ud, data, len, e);
}

static void on_progress(void *ud, size_t i, uint64_t current, uint64_t total)
{
        struct pull *p = ud;
        struct pull_blob *b = &p->blobs[p->req_blob[i]];
        if (!b->started) {
                b->started = true;
                if (current > 0)
                        log_debug("%s: resuming an interrupted download at byte %llu", b->d->digest,
                                  (unsigned long long) current);
        }
        report(p, b->d->digest, IMAGE_PULL_DOWNLOADING, current, total);
}

static int on_done(void *ud, size_t i, int r, struct berr *e)
{
        struct pull *p = ud;
        struct pull_blob *b = &p->blobs[p->req_blob[i]];
        uint64_t size = (uint64_t) b->d->size;
        if (r >= 0) {
                report(p, b->d->digest, IMAGE_PULL_VERIFYING, size, size);
                r = content_writer_commit(b->w, e);
        }
        /* Bytes that are known to be wrong are dropped; a transfer that
         * merely broke off is kept to be resumed. */
        content_writer_close(b->w, r == -EFBIG);
        b->w = NULL;
        if (r < 0) {
                report(p, b->d->digest, IMAGE_PULL_FAILED, 0, size);
                return r;
        }
        report(p, b->d->digest, IMAGE_PULL_DOWNLOADED, size, size);
        pthread_mutex_lock(&p->lock);
        b->stored = true;
        p->n_fetched++;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
        return 0;
}

static bool on_cancelled(void *ud)
{
        struct pull *p = ud;
        pthread_mutex_lock(&p->lock);
        bool v = p->unpack_failed;
        pthread_mutex_unlock(&p->lock);
        return v;
}

/* Finds duplicates, reports what is in the store already, opens ingests
 * for the rest. Returns the number of blobs to fetch (their indexes in
 * p->req_blob). */
static int prepare_blobs(struct pull *p, struct berr *e)
{
        size_t n_req = 0;
        for (size_t k = 0; k < p->n_blobs; k++) {
                struct pull_blob *b = &p->blobs[k];
                b->first = k;
                for (size_t j = 0; j < k; j++)
                        if (strcmp(p->blobs[j].d->digest, b->d->digest) == 0) {
                                b->first = j;
                                break;
                        }
                if (b->first != k)
                        continue;
                struct content_info info;
                if (content_info(p->cs, b->d->digest, &info, NULL) == 0) {
                        if (info.size != (uint64_t) b->d->size)
                                return berr_setx(e, EUCLEAN, "content %s has %llu bytes, the manifest says %lld",
                                                 b->d->digest, (unsigned long long) info.size, (long long) b->d->size);
                        b->stored = true;
                        report(p, b->d->digest, IMAGE_PULL_EXISTS, info.size, info.size);
                        continue;
                }
                int r = content_writer_open(p->cs, b->d->digest, b->d->size, &b->w, e);
                if (r < 0)
                        return r;
                b->sink = (struct registry_sink) { sink_offset, sink_reset, sink_write, b->w };
                p->req_blob[n_req++] = k;
                report(p, b->d->digest, IMAGE_PULL_WAITING, 0, (uint64_t) b->d->size);
        }
        return (int) n_req;
}

/* Waits until blob k is stored: false when the downloads ended without it. */
static bool wait_stored(struct pull *p, size_t k)
{
        const struct pull_blob *b = &p->blobs[p->blobs[k].first];
        pthread_mutex_lock(&p->lock);
        while (!b->stored && !p->downloads_over)
                pthread_cond_wait(&p->changed, &p->lock);
        bool ok = b->stored;
        pthread_mutex_unlock(&p->lock);
        return ok;
}

static int unpack_layers(struct pull *p, struct berr *e)
{
        _cleanup_free_ char(*ids)[CONTENT_DIGEST_MAX] = NULL;
        struct image_unpack_result *res = &p->unpack;
        const struct image_manifest *m = p->m;

        if (!wait_stored(p, 0))
                return -ECANCELED;
        int r = image_unpack_diff_ids(p->cs, m, &ids, e);
        if (r < 0)
                return r;
        res->chain_ids = calloc(m->n_layers ? m->n_layers : 1, sizeof(*res->chain_ids));
        if (!res->chain_ids)
                return berr_set(e, ENOMEM, "unpack");
        for (size_t i = 0; i < m->n_layers; i++) {
                const struct image_descriptor *d = &m->layers[i];
                if (!wait_stored(p, 1 + i))
                        return -ECANCELED;
                report(p, d->digest, IMAGE_PULL_EXTRACTING, (uint64_t) d->size, (uint64_t) d->size);
                r = image_unpack_layer(p->cs, p->o->sn, d, ids[i], i ? res->chain_ids[i - 1] : NULL, p->o->unpack,
                                       res->chain_ids[i], e);
                if (r < 0) {
                        report(p, d->digest, IMAGE_PULL_FAILED, 0, (uint64_t) d->size);
                        return r;
                }
                res->n_applied += (size_t) r;
                report(p, d->digest, IMAGE_PULL_DONE, (uint64_t) d->size, (uint64_t) d->size);
        }
        res->n_layers = m->n_layers;
        return 0;
}

static void *unpack_main(void *ud)
{
        struct pull *p = ud;
        p->unpack_r = unpack_layers(p, &p->unpack_err);
        if (p->unpack_r < 0) {
                pthread_mutex_lock(&p->lock);
                p->unpack_failed = true;
                pthread_mutex_unlock(&p->lock);
        }
        return NULL;
}

/* Fetches the config and the layers, unpacking alongside when asked. */
static int pull_blobs(struct registry_client *rc, struct pull *p, struct berr *e)
{
        _cleanup_free_ struct registry_blob_request *reqs = NULL;
        pthread_t unpacker;
        bool unpacking = false;

        int r = prepare_blobs(p, e);
        size_t n_req = r < 0 ? 0 : (size_t) r;
        if (r >= 0 && !(reqs = calloc(n_req + 1, sizeof(*reqs))))
                r = berr_set(e, ENOMEM, "pull");
        for (size_t i = 0; r >= 0 && i < n_req; i++) {
                const struct pull_blob *b = &p->blobs[p->req_blob[i]];
                reqs[i] = (struct registry_blob_request) { b->d->digest, b->d->size, &b->sink };
        }
        if (r >= 0 && p->o->sn) {
                int k = pthread_create(&unpacker, NULL, unpack_main, p);
                if (k != 0)
                        r = berr_set(e, k, "starting the unpacker thread");
                unpacking = k == 0;
        }
        if (r >= 0) {
                struct registry_blob_events ev = { on_progress, on_done, on_cancelled, p };
                r = registry_fetch_blobs(rc, reqs, n_req, p->o->max_parallel, &ev, e);
        }

        pthread_mutex_lock(&p->lock);
        p->downloads_over = true;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
        if (unpacking) {
                pthread_join(unpacker, NULL);
                /* the unpacker's own failure is the cause; a cancel follows from ours */
                if (p->unpack_r < 0 && p->unpack_r != -ECANCELED && (r >= 0 || r == -ECANCELED)) {
                        *e = p->unpack_err;
                        r = p->unpack_r;
                }
        }
        for (size_t k = 0; k < p->n_blobs; k++) {
                /* a broken-off download stays to be resumed; one not begun goes */
                struct content_writer *w = p->blobs[k].w;
                content_writer_close(w, w && content_writer_offset(w) == 0);
                p->blobs[k].w = NULL;
        }
        return r;
}

int image_pull_ex(struct registry_client *rc, struct content_store *cs, const struct image_ref *ref,
                  const struct image_pull_options *o, struct image_pull_result *ret,
                  struct image_unpack_result *ret_unpack, struct berr *e)
{
        static const struct image_pull_options defaults = { 0 };
        struct image_pull_result res = { 0 };
        struct manifests ms = { 0 };
        struct image_platform host;
        struct pull p = { .cs = cs, .o = o ? o : &defaults };
        int r;

        if (!p.o->platform)
                image_platform_default(&host);
        r = resolve(rc, ref, p.o->platform ? p.o->platform : &host, &ms, &res, e);
        if (r < 0)
                goto out;
        p.m = &ms.m;
        p.n_blobs = 1 + ms.m.n_layers;
        p.blobs = calloc(p.n_blobs, sizeof(*p.blobs));
        p.req_blob = calloc(p.n_blobs, sizeof(*p.req_blob));
        if (!p.blobs || !p.req_blob) {
                r = berr_set(e, ENOMEM, "pull");
                goto out;
        }
        p.blobs[0].d = &ms.m.config;
        for (size_t i = 0; i < ms.m.n_layers; i++)
                p.blobs[1 + i].d = &ms.m.layers[i];
        if (p.o->progress && p.o->progress->resolved) {
                const char **layers = calloc(ms.m.n_layers + 1, sizeof(char *));
                if (!layers) {
                        r = berr_set(e, ENOMEM, "pull");
                        goto out;
                }
                for (size_t i = 0; i < ms.m.n_layers; i++)
                        layers[i] = ms.m.layers[i].digest;
                p.o->progress->resolved(p.o->progress->ud, ms.m.config.digest, layers, ms.m.n_layers);
                free(layers);
        }
        pthread_mutex_init(&p.lock, NULL);
        pthread_mutex_init(&p.progress_lock, NULL);
        pthread_cond_init(&p.changed, NULL);
        r = pull_blobs(rc, &p, e);
        pthread_cond_destroy(&p.changed);
        pthread_mutex_destroy(&p.progress_lock);
        pthread_mutex_destroy(&p.lock);
        if (r < 0)
                goto out;
        res.n_fetched = p.n_fetched;
        /* last, so that a stored manifest's blobs are all there */
        r = content_write_blob(cs, ms.body, ms.len, res.manifest_digest, NULL, e);
        if (r >= 0 && ms.index_body)
                r = content_write_blob(cs, ms.index_body, ms.index_len, res.index_digest, NULL, e);
        if (r < 0)
                goto out;
        *ret = res;
        memset(&res, 0, sizeof(res));
        if (ret_unpack && p.o->sn) {
                *ret_unpack = p.unpack;
                p.unpack = (struct image_unpack_result) { 0 };
        }
out:
        image_unpack_result_done(&p.unpack);
        free(p.blobs);
        free(p.req_blob);
        manifests_done(&ms);
        image_pull_result_done(&res);
        return r;
}

int image_pull(struct registry_client *rc, struct content_store *cs, const struct image_ref *ref,
               const struct image_platform *platform, struct image_pull_result *ret, struct berr *e)
{
        struct image_pull_options o = { .platform = platform };
        return image_pull_ex(rc, cs, ref, &o, ret, NULL, e);
}

#include "image-pull.h"

#include <errno.h>
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

/* One blob into the store, unless it is there already. Returns 1 when it
 * was downloaded. */
static int fetch_blob(struct registry_client *rc, struct content_store *cs, const struct image_descriptor *d,
                      struct berr *e)
{
        struct content_info info;
        struct content_writer *w = NULL;

        if (content_info(cs, d->digest, &info, NULL) == 0) {
                if (info.size == (uint64_t) d->size)
                        return 0;
                return berr_setx(e, EUCLEAN, "content %s has %llu bytes, the manifest says %lld", d->digest,
                                 (unsigned long long) info.size, (long long) d->size);
        }
        int r = content_writer_open(cs, d->digest, d->size, &w, e);
        if (r < 0)
                return r;
        if (content_writer_offset(w) > 0)
                log_debug("%s: resuming an interrupted download at byte %llu", d->digest,
                          (unsigned long long) content_writer_offset(w));
        struct registry_sink sink = { sink_offset, sink_reset, sink_write, w };
        r = registry_fetch_blob(rc, d->digest, d->size, &sink, e);
        if (r == 0)
                r = content_writer_commit(w, e);
        /* Bytes that are known to be wrong are dropped; a transfer that
         * merely broke off is kept to be resumed. */
        content_writer_close(w, r == -EFBIG);
        return r < 0 ? r : 1;
}

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

int image_pull(struct registry_client *rc, struct content_store *cs, const struct image_ref *ref,
               const struct image_platform *platform, struct image_pull_result *ret, struct berr *e)
{
        struct image_pull_result res = { 0 };
        struct image_manifest index = { 0 }, m = { 0 };
        _cleanup_free_ char *index_body = NULL, *body = NULL;
        size_t index_len = 0, len = 0;
        char digest[CONTENT_DIGEST_MAX];
        int r;

        r = get_manifest(rc, image_ref_object(ref), &m, &body, &len, digest, e);
        if (r < 0)
                return r;
        if (m.kind == IMAGE_MANIFEST_INDEX) {
                const struct image_descriptor *d;
                index = m;
                memset(&m, 0, sizeof(m));
                index_body = TAKE_PTR(body);
                index_len = len;
                memcpy(res.index_digest, digest, sizeof(digest));
                r = image_index_select(&index, platform, &d, e);
                if (r < 0) {
                        berr_prefix(e, "%s", image_ref_object(ref));
                        goto out;
                }
                r = get_manifest(rc, d->digest, &m, &body, &len, digest, e);
                if (r < 0)
                        goto out;
                if (m.kind != IMAGE_MANIFEST_IMAGE) {
                        r = berr_setx(e, EPROTO, "manifest %s: an index inside an index is not supported", d->digest);
                        goto out;
                }
                if ((int64_t) len != d->size) {
                        r = berr_setx(e, EBADMSG, "manifest %s: %zu bytes, the index says %lld", d->digest, len,
                                      (long long) d->size);
                        goto out;
                }
        }
        memcpy(res.manifest_digest, digest, sizeof(digest));
        if (!(res.manifest_media_type = strdup(m.media_type)) ||
            (index_body && !(res.index_media_type = strdup(index.media_type))) ||
            !(res.layers = calloc(m.n_layers ? m.n_layers : 1, sizeof(*res.layers)))) {
                r = berr_set(e, ENOMEM, "pull");
                goto out;
        }
        res.n_layers = m.n_layers;

        r = fetch_blob(rc, cs, &m.config, e);
        if (r < 0)
                goto out;
        res.n_fetched += (size_t) r;
        memcpy(res.config_digest, m.config.digest, CONTENT_DIGEST_MAX);
        for (size_t i = 0; i < m.n_layers; i++) {
                r = fetch_blob(rc, cs, &m.layers[i], e);
                if (r < 0)
                        goto out;
                res.n_fetched += (size_t) r;
                memcpy(res.layers[i], m.layers[i].digest, CONTENT_DIGEST_MAX);
        }
        r = content_write_blob(cs, body, len, res.manifest_digest, NULL, e);
        if (r == 0 && index_body)
                r = content_write_blob(cs, index_body, index_len, res.index_digest, NULL, e);
        if (r < 0)
                goto out;
        *ret = res;
        memset(&res, 0, sizeof(res));
out:
        image_manifest_done(&index);
        image_manifest_done(&m);
        image_pull_result_done(&res);
        return r;
}

/* Unpacking an image into snapshots (see image-unpack.h): for each layer,
 * prepare an active snapshot on the previous chain id, apply the layer to
 * its fs directory, commit it under its chain id. */
#include "image-unpack.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "image-manifest.h"
#include "json-util.h"
#include "layer-apply.h"
#include "log.h"

#define CONFIG_MAX (8u << 20)

void image_unpack_result_done(struct image_unpack_result *r)
{
        free(r->chain_ids);
        *r = (struct image_unpack_result) { 0 };
}

int image_unpack_diff_ids(struct content_store *cs, const struct image_manifest *m,
                          char (**ret)[CONTENT_DIGEST_MAX], struct berr *e)
{
        const char *config = m->config.digest;
        _cleanup_free_ char *data = NULL;
        size_t len;
        int r = content_read(cs, config, CONFIG_MAX, &data, &len, e);
        if (r < 0)
                return r;
        json_error_t jerr;
        json_t *j = json_loadb(data, len, 0, &jerr);
        if (!j)
                return berr_setx(e, EINVAL, "image config %s: invalid JSON: %s", config, jerr.text);
        json_t *rootfs = NULL, *ids = NULL;
        char(*v)[CONTENT_DIGEST_MAX] = NULL;
        if ((r = json_get_object(j, "config", "rootfs", &rootfs, e)) < 0 ||
            (rootfs && (r = json_get_array(rootfs, "rootfs", "diff_ids", &ids, e)) < 0))
                goto out;
        if (!ids) {
                r = berr_setx(e, EINVAL, "image config %s has no rootfs.diff_ids", config);
                goto out;
        }
        if (json_array_size(ids) != m->n_layers) {
                r = berr_setx(e, EINVAL, "image config %s: the manifest has %zu layers but the config lists %zu diff ids",
                              config, m->n_layers, json_array_size(ids));
                goto out;
        }
        if (!(v = calloc(m->n_layers ? m->n_layers : 1, sizeof(*v)))) {
                r = berr_set(e, ENOMEM, "unpack");
                goto out;
        }
        for (size_t i = 0; i < m->n_layers; i++) {
                const char *d = json_string_value(json_array_get(ids, i));
                if (!d || content_digest_check(d, NULL) < 0) {
                        r = berr_setx(e, EINVAL, "image config %s: rootfs.diff_ids[%zu] is not a sha256 digest",
                                      config, i);
                        goto out;
                }
                strcpy(v[i], d);
        }
        *ret = TAKE_PTR(v);
        r = 0;
out:
        free(v);
        json_decref(j);
        return r;
}

static int apply_layer(struct content_store *cs, struct snapshot_overlay *sn, const struct image_descriptor *layer,
                       const char *diff_id, const char *parent, const char *chain, const struct image_unpack_options *o,
                       struct berr *e)
{
        char key[CONTENT_DIGEST_MAX + 64];
        snprintf(key, sizeof(key), "extract-%d-%s", (int) getpid(), chain);
        int r = snapshot_overlay_prepare(sn, key, parent, NULL, e);
        if (r < 0)
                return r;
        _cleanup_free_ char *fs = NULL;
        _cleanup_close_ int fd = -1;
        r = snapshot_overlay_path(sn, key, &fs, e);
        if (r >= 0)
                r = fd = content_open(cs, layer->digest, e);
        if (r >= 0) {
                struct layer_apply_options lo = {
                        .media_type = layer->media_type,
                        .diff_id = diff_id,
                        .keep_owner = geteuid() == 0,
                        .allow_devices = o && o->allow_devices,
                        /* copy: fs holds the parent's tree, whiteouts delete */
                        .mode = snapshot_overlay_mode(sn) == SNAPSHOT_MODE_COPY ? LAYER_APPLY_COPY
                                                                                : LAYER_APPLY_OVERLAY,
                };
                r = layer_apply(fd, fs, &lo, NULL, e);
                if (r < 0)
                        berr_prefix(e, "layer %s", layer->digest);
        }
        if (r >= 0)
                r = snapshot_overlay_commit(sn, chain, key, e);
        if (r < 0) {
                struct berr e2 = { 0 };
                if (snapshot_overlay_remove(sn, key, &e2) < 0)
                        log_warn("removing snapshot \"%s\" (ignored): %s", key, e2.msg);
                if (r == -EEXIST) {
                        /* another unpack committed the same chain first */
                        berr_clear(e);
                        return 0;
                }
                return r;
        }
        return 1;
}

int image_unpack_layer(struct content_store *cs, struct snapshot_overlay *sn, const struct image_descriptor *layer,
                       const char *diff_id, const char *parent_chain, const struct image_unpack_options *o,
                       char ret_chain[CONTENT_DIGEST_MAX], struct berr *e)
{
        char chain[CONTENT_DIGEST_MAX];
        int r = image_chain_id(parent_chain, diff_id, chain);
        if (r < 0)
                return berr_set(e, r, "chain id");
        struct snapshot_info info = { 0 };
        struct berr e2 = { 0 };
        r = snapshot_overlay_stat(sn, chain, &info, &e2);
        bool have = r >= 0 && info.kind == SNAPSHOT_COMMITTED;
        snapshot_info_done(&info);
        if (have) {
                log_debug("layer %s: snapshot %s is there", layer->digest, chain);
                r = 0;
        } else {
                r = apply_layer(cs, sn, layer, diff_id, parent_chain, chain, o, e);
                if (r < 0)
                        return r;
        }
        memcpy(ret_chain, chain, CONTENT_DIGEST_MAX);
        return r;
}

int image_unpack(struct content_store *cs, struct snapshot_overlay *sn, const char *manifest_digest,
                 const struct image_unpack_options *o, struct image_unpack_result *ret, struct berr *e)
{
        _cleanup_free_ char *body = NULL;
        _cleanup_free_ char(*ids)[CONTENT_DIGEST_MAX] = NULL;
        size_t len;
        struct image_manifest m = { 0 };
        struct image_unpack_result res = { 0 };
        int r = content_read(cs, manifest_digest, IMAGE_MANIFEST_MAX, &body, &len, e);
        if (r < 0)
                return r;
        r = image_manifest_parse(body, len, NULL, &m, e);
        if (r < 0)
                return r;
        if (m.kind != IMAGE_MANIFEST_IMAGE) {
                r = berr_setx(e, EINVAL, "%s is an index, not an image manifest", manifest_digest);
                goto out;
        }
        r = image_unpack_diff_ids(cs, &m, &ids, e);
        if (r < 0)
                goto out;
        res.chain_ids = calloc(m.n_layers ? m.n_layers : 1, sizeof(*res.chain_ids));
        if (!res.chain_ids) {
                r = berr_set(e, ENOMEM, "unpack");
                goto out;
        }
        for (size_t i = 0; i < m.n_layers; i++) {
                r = image_unpack_layer(cs, sn, &m.layers[i], ids[i], i ? res.chain_ids[i - 1] : NULL, o,
                                       res.chain_ids[i], e);
                if (r < 0)
                        goto out;
                res.n_applied += (size_t) r;
        }
        res.n_layers = m.n_layers;
        *ret = res;
        res = (struct image_unpack_result) { 0 };
        r = 0;
out:
        image_unpack_result_done(&res);
        image_manifest_done(&m);
        return r;
}

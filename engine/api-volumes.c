/* /volumes: list, create, inspect, remove, prune over the volume store
 * (volumes.c), and what container create, start and removal ask of it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "engine.h"
#include "filters.h"
#include "json-util.h"
#include "log.h"
#include "volumes.h"

static void volume_event(void *ud, const char *action, const char *name)
{
        engine_event(ud, "volume", action, name, json_pack("{s:s}", "driver", "local"));
}

static bool label_match(json_t *doc, const char *f)
{
        return filters_label_match(json_object_get(doc, "Labels"), f);
}

static bool labels_all(json_t *doc, json_t *vals)
{
        size_t i;
        json_t *v;
        json_array_foreach(vals, i, v) if (!label_match(doc, json_string_value(v))) return false;
        return true;
}

static bool any_of(json_t *vals, const char *s, bool substring)
{
        if (!vals || json_array_size(vals) == 0)
                return true;
        size_t i;
        json_t *v;
        json_array_foreach(vals, i, v)
        {
                const char *f = json_string_value(v);
                if (substring ? strstr(s, f) != NULL : !strcmp(s, f))
                        return true;
        }
        return false;
}

/* dangling: -1 either, 0 in use, 1 unused */
struct list_filter {
        json_t *f;
        int dangling;
};

static bool list_keep(json_t *doc, size_t refs, void *ud)
{
        struct list_filter *lf = ud;
        if ((lf->dangling == 1 && refs) || (lf->dangling == 0 && !refs))
                return false;
        return any_of(json_object_get(lf->f, "name"), json_string_value(json_object_get(doc, "Name")) ?: "", true) &&
               any_of(json_object_get(lf->f, "driver"), "local", false) &&
               labels_all(doc, json_object_get(lf->f, "label"));
}

static enum MHD_Result volumes_list(struct http_request *r)
{
        static const char *const accepted[] = { "dangling", "name", "driver", "label", NULL };
        struct list_filter lf = { .dangling = -1 };
        if (filters_from_query(r, accepted, false, &lf.f) < 0)
                return MHD_YES;
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(lf.f, "dangling"), i, v)
        {
                const char *s = json_string_value(v);
                if (!strcmp(s, "true") || !strcmp(s, "1")) {
                        lf.dangling = 1;
                } else if (!strcmp(s, "false") || !strcmp(s, "0")) {
                        lf.dangling = 0;
                } else {
                        json_decref(lf.f);
                        return http_reply_error(r, 400, "Invalid filter 'dangling=%s'", s);
                }
        }
        json_t *vols = vol_list(r->engine->vols, list_keep, &lf);
        json_decref(lf.f);
        return http_reply_json(r, 200, json_pack("{s:o, s:[]}", "Volumes", vols, "Warnings"));
}

static enum MHD_Result volume_create(struct http_request *r)
{
        struct engine *en = r->engine;
        json_t *body = NULL;
        if (http_body_json(r, true, &body) < 0)
                return MHD_YES;
        _cleanup_json_ json_t *b = body ? body : json_object();
        json_t *name = json_object_get(b, "Name"), *driver = json_object_get(b, "Driver");
        json_t *opts = json_object_get(b, "DriverOpts"), *labels = json_object_get(b, "Labels");
        if ((name && !json_is_string(name) && !json_is_null(name)) ||
            (driver && !json_is_string(driver) && !json_is_null(driver)))
                return http_reply_error(r, 400, "Name and Driver must be strings");
        const char *d = json_string_value(driver);
        if (d && *d && strcmp(d, "local"))
                return http_reply_error(r, 404, "error looking up volume plugin %s: plugin \"%s\" not found", d, d);
        json_t *doc = NULL;
        char err[1024];
        int rc = vol_create(en->vols, json_string_value(name), labels, opts, false, NULL, &doc, NULL, err,
                            sizeof(err));
        if (rc < 0)
                return http_reply_error(r, rc == -EINVAL ? 400 : 500, "%s", err);
        return http_reply_json(r, 201, doc);
}

static enum MHD_Result volume_inspect(struct http_request *r)
{
        json_t *doc = NULL;
        if (vol_get(r->engine->vols, r->params[0], &doc) < 0)
                return http_reply_error(r, 404, "get %s: no such volume", r->params[0]);
        return http_reply_json(r, 200, doc);
}

static enum MHD_Result volume_delete(struct http_request *r)
{
        char err[4096];
        int rc = vol_remove(r->engine->vols, r->params[0], http_query_bool(r, "force", false), err, sizeof(err));
        if (rc == -ENOENT)
                return http_reply_error(r, 404, "%s", err);
        if (rc == -EBUSY)
                return http_reply_error(r, 409, "%s", err);
        if (rc < 0)
                return http_reply_error(r, 500, "%s", err);
        return http_reply_empty(r, 204);
}

static bool prune_keep(json_t *doc, size_t refs, void *ud)
{
        json_t *f = ud;
        (void) refs;
        json_t *neg = json_object_get(f, "label!");
        if (!labels_all(doc, json_object_get(f, "label")))
                return false;
        return !(json_array_size(neg) && labels_all(doc, neg));
}

/* API 1.41: every unused local volume, named ones too (1.42 made that
 * all=true and prunes only anonymous ones by default). */
static enum MHD_Result volumes_prune(struct http_request *r)
{
        static const char *const accepted[] = { "label", "label!", "all", NULL };
        json_t *f = NULL;
        if (filters_from_query(r, accepted, false, &f) < 0)
                return MHD_YES;
        json_t *deleted = NULL;
        uint64_t space = 0;
        vol_prune(r->engine->vols, prune_keep, f, &deleted, &space);
        json_decref(f);
        return http_reply_json(r, 200,
                               json_pack("{s:o, s:I}", "VolumesDeleted", deleted, "SpaceReclaimed", (json_int_t) space));
}

/* ---- what the containers ask ---- */

int engine_volumes_init(struct engine *en)
{
        int r = vol_store_open(en->data_root, &en->vols);
        if (r < 0)
                return r;
        vol_store_set_events(en->vols, volume_event, en);
        /* the references: each container's volume mounts */
        pthread_mutex_lock(&en->ctrs.lock);
        for (struct ctr *c = en->ctrs.list; c; c = c->next) {
                size_t i;
                json_t *m;
                json_array_foreach(json_object_get(c->doc, "Mounts"), i, m)
                {
                        const char *name = json_string_value(json_object_get(m, "Name"));
                        if (strcmp(json_string_value(json_object_get(m, "Type")) ?: "", "volume") || !name)
                                continue;
                        if (vol_ref(en->vols, name, c->id) == -ENOENT)
                                log_warn("engine: container %s uses volume %s, which is gone", c->id, name);
                }
                /* containers made before the volume store: named volumes in Binds */
                if (json_array_size(json_object_get(c->doc, "Mounts")))
                        continue;
                json_array_foreach(json_object_get(json_object_get(c->doc, "HostConfig"), "Binds"), i, m)
                {
                        const char *s = json_string_value(m) ?: "";
                        const char *colon = strchr(s, ':');
                        if (s[0] == '/' || !colon)
                                continue;
                        _cleanup_free_ char *name = strndup(s, (size_t) (colon - s));
                        if (name)
                                (void) vol_ref(en->vols, name, c->id);
                }
        }
        pthread_mutex_unlock(&en->ctrs.lock);
        return 0;
}

void engine_volumes_free(struct engine *en)
{
        vol_store_free(en->vols);
        en->vols = NULL;
}

int engine_volumes_attach(struct engine *en, const char *id, json_t *planned, char *err, size_t errlen)
{
        size_t i;
        json_t *p;
        json_array_foreach(planned, i, p)
        {
                int r = vol_create(en->vols, json_string_value(json_object_get(p, "Name")),
                                   json_object_get(p, "Labels"), json_object_get(p, "Options"),
                                   json_is_true(json_object_get(p, "Anonymous")), id, NULL, NULL, err, errlen);
                if (r < 0) {
                        vol_release(en->vols, id, true);
                        return r;
                }
        }
        return 0;
}

void engine_volumes_release(struct engine *en, const char *id, bool remove_anonymous)
{
        vol_release(en->vols, id, remove_anonymous);
}

void engine_volumes_copy_up(struct engine *en, json_t *list, const char *rootfs)
{
        size_t i;
        json_t *p;
        json_array_foreach(list, i, p)
        {
                char err[1024];
                if (vol_copy_up(en->vols, json_string_value(json_object_get(p, "Name")) ?: "", rootfs,
                                json_string_value(json_object_get(p, "Destination")) ?: "/", err, sizeof(err)) < 0)
                        log_error("%s", err);
        }
}

const struct http_route engine_volume_routes[] = {
        { "GET", "/volumes", volumes_list, 0 },
        { "POST", "/volumes/create", volume_create, 0 },
        { "POST", "/volumes/prune", volumes_prune, 0 },
        { "GET", "/volumes/{}", volume_inspect, 0 },
        { "DELETE", "/volumes/{}", volume_delete, 0 },
};
const size_t engine_volume_n_routes = sizeof(engine_volume_routes) / sizeof(engine_volume_routes[0]);

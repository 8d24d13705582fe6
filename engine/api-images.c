/* The image endpoints: pull (with Docker's progress stream), list,
 * inspect, history, tag, delete, prune, save and load, over the
 * supervisor's images.* and content.* methods. */
#include <errno.h>
#include <fcntl.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <limits.h>
#include <unistd.h>

#include "cleanup.h"
#include "engine.h"
#include "filters.h"
#include "fs-util.h"
#include "image-import.h"
#include "image-reference.h"
#include "json-util.h"
#include "log.h"
#include "supervisor.pb-c.h"
#include "time-util.h"

typedef Berth__Supervisor__Image Image;

const char *engine_familiar_name(const char *name)
{
        if (!strncmp(name, "docker.io/library/", 18))
                return name + 18;
        if (!strncmp(name, "docker.io/", 10))
                return name + 10;
        return name;
}

/* "sha256:<64 hex>" → the 12 hex digits Docker shows. */
static void short_id(const char *digest, char buf[13])
{
        const char *h = strchr(digest, ':');
        h = h ? h + 1 : digest;
        snprintf(buf, 13, "%s", h);
}

/* RFC 3339 → unix seconds (0 when it does not parse). */
static long long unix_time(const char *rfc3339)
{
        struct timespec ts;
        if (!rfc3339 || time_parse_rfc3339(rfc3339, &ts) < 0)
                return 0;
        return (long long) ts.tv_sec;
}

/* ---- looking images up ---- */

static int list_images(struct engine *en, Berth__Supervisor__ListImagesResponse **ret, struct rpc_status *st)
{
        Berth__Supervisor__ListImagesRequest req = BERTH__SUPERVISOR__LIST_IMAGES_REQUEST__INIT;
        return engine_call(en, "images.ListImages", &req.base, &berth__supervisor__list_images_response__descriptor,
                           ENGINE_CALL_TIMEOUT_MS, (ProtobufCMessage **) ret, st);
}

/* An image id (Docker's: the config digest), "sha256:"-prefixed or not, in
 * full or as a unique prefix of at least 1 hex digit, → the config digest.
 * Returns 1 when name looks like an id and was found, 0 when name is not an
 * id, -ENOENT / -EEXIST (ambiguous) otherwise. */
static int match_id(Berth__Supervisor__ListImagesResponse *l, const char *name, const char **ret_digest)
{
        const char *hex = name;
        if (!strncmp(hex, "sha256:", 7))
                hex += 7;
        size_t n = strlen(hex);
        if (n == 0 || n > 64 || strspn(hex, "0123456789abcdef") != n)
                return 0;
        const char *found = NULL;
        for (size_t i = 0; i < l->n_images; i++) {
                const char *d = l->images[i]->config_digest;
                if (!d || strncmp(d, "sha256:", 7) || strncmp(d + 7, hex, n))
                        continue;
                if (found && strcmp(found, d))
                        return -EEXIST;
                found = d;
        }
        if (!found)
                return name == hex && n < 64 ? 0 : -ENOENT; /* a bare short hex may also be a name */
        *ret_digest = found;
        return 1;
}

/* name (a reference or an id) → the normalised names of the image records
 * it selects (a reference: that one; an id: every name of that config). */
static int resolve_image(struct engine *en, const char *name, char ***ret_names, char **ret_config,
                         struct rpc_status *st)
{
        Berth__Supervisor__ListImagesResponse *l = NULL;
        int r = list_images(en, &l, st);
        if (r < 0)
                return r;
        const char *cfg = NULL;
        struct image_ref ref;
        char norm[IMAGE_REF_STRING_MAX];
        char **names = calloc(l->n_images + 1, sizeof(char *));
        size_t n = 0;
        if (!names) {
                r = rpc_status_set(st, RPC_INTERNAL, "engine: out of memory");
                goto out;
        }
        r = match_id(l, name, &cfg);
        if (r == -EEXIST) {
                r = rpc_status_set(st, RPC_INVALID_ARGUMENT, "image id \"%s\" is ambiguous", name);
                goto out;
        }
        if (r == 0) {
                struct berr e = { 0 };
                if (image_ref_parse(name, &ref, &e) < 0) {
                        r = rpc_status_set(st, RPC_INVALID_ARGUMENT, "invalid reference format: %s", e.msg);
                        goto out;
                }
                image_ref_string(&ref, norm, sizeof(norm));
                for (size_t i = 0; i < l->n_images; i++)
                        if (!strcmp(l->images[i]->name, norm)) {
                                cfg = l->images[i]->config_digest;
                                names[n++] = strdup(norm);
                                break;
                        }
        } else if (r > 0) {
                for (size_t i = 0; i < l->n_images; i++)
                        if (!strcmp(l->images[i]->config_digest, cfg))
                                names[n++] = strdup(l->images[i]->name);
        }
        if (n == 0) {
                r = rpc_status_set(st, RPC_NOT_FOUND, "No such image: %s", name);
                goto out;
        }
        for (size_t i = 0; i < n; i++)
                if (!names[i]) {
                        r = rpc_status_set(st, RPC_INTERNAL, "engine: out of memory");
                        goto out;
                }
        if (ret_config && !(*ret_config = strdup(cfg ? cfg : ""))) {
                r = rpc_status_set(st, RPC_INTERNAL, "engine: out of memory");
                goto out;
        }
        *ret_names = names;
        names = NULL;
        r = 0;
out:
        if (names) {
                for (size_t i = 0; i < n; i++)
                        free(names[i]);
                free(names);
        }
        protobuf_c_message_free_unpacked(&l->base, NULL);
        return r;
}

static void names_free(char **v)
{
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

static int get_image(struct engine *en, const char *name, Berth__Supervisor__GetImageResponse **ret,
                     struct rpc_status *st)
{
        Berth__Supervisor__GetImageRequest req = BERTH__SUPERVISOR__GET_IMAGE_REQUEST__INIT;
        req.name = (char *) name;
        return engine_call(en, "images.GetImage", &req.base, &berth__supervisor__get_image_response__descriptor,
                           ENGINE_CALL_TIMEOUT_MS, (ProtobufCMessage **) ret, st);
}

/* "<familiar repo>@<digest>" for a name and its target digest. */
static json_t *repo_digest(const char *name, const char *digest)
{
        const char *f = engine_familiar_name(name);
        const char *colon = strrchr(f, ':'), *slash = strrchr(f, '/');
        size_t n = colon && (!slash || colon > slash) ? (size_t) (colon - f) : strlen(f);
        char *s = NULL;
        if (asprintf(&s, "%.*s@%s", (int) n, f, digest) < 0)
                return json_null();
        json_t *j = json_string(s);
        free(s);
        return j;
}

/* ---- list, inspect, history ---- */

static json_t *labels_json(Image *im)
{
        json_t *o = json_object();
        for (size_t i = 0; i < im->n_labels; i++)
                json_object_set_new(o, im->labels[i]->key, json_string(im->labels[i]->value));
        return o;
}

/* The digests of the blobs that make up an image's Size: the target, the
 * platform's manifest, its config and its layers. */
static json_t *blob_digests(Berth__Supervisor__GetImageResponse *g)
{
        json_t *insp = json_loadb((const char *) g->inspect_json.data, g->inspect_json.len, 0, NULL);
        json_t *out = json_array(), *v;
        json_array_append(out, json_object_get(json_object_get(insp, "target"), "digest"));
        json_array_append(out, json_object_get(insp, "manifest"));
        json_array_append(out, json_object_get(insp, "config"));
        size_t i;
        json_array_foreach(json_object_get(insp, "layers"), i, v) json_array_append(out, v);
        json_decref(insp);
        /* once each: the manifest is the target of a single-platform image */
        for (i = json_array_size(out); i-- > 0;) {
                const char *d = json_string_value(json_array_get(out, i));
                bool dup = false;
                for (size_t k = 0; d && k < i && !dup; k++)
                        dup = !strcmp(d, json_string_value(json_array_get(out, k)) ?: "");
                if (!d || dup)
                        json_array_remove(out, i);
        }
        return out;
}

int engine_images_summary(struct engine *en, json_t *filters, json_t **ret, json_t **ret_blobs,
                          struct rpc_status *st)
{
        Berth__Supervisor__ListImagesResponse *l = NULL;
        if (list_images(en, &l, st) < 0)
                return -EIO;

        json_t *ref_filter = json_object_get(filters, "reference");
        json_t *label_filter = json_object_get(filters, "label");
        bool dangling_only = json_is_true(json_object_get(json_object_get(filters, "dangling"), "true"));

        /* one entry per image id (config digest), with all its names */
        json_t *out = json_array(), *by_id = json_object(), *blobs = ret_blobs ? json_object() : NULL;
        for (size_t i = 0; i < l->n_images && !dangling_only; i++) {
                Image *im = l->images[i];
                const char *id = im->config_digest && *im->config_digest ? im->config_digest : im->target->digest;
                const char *fam = engine_familiar_name(im->name);
                if (ref_filter) {
                        bool ok = false;
                        const char *k;
                        json_t *v;
                        /* map form {"busybox":true} or list form ["busybox"] */
                        if (json_is_object(ref_filter)) {
                                json_object_foreach(ref_filter, k, v)
                                {
                                        size_t n = strlen(k);
                                        if (!strcmp(fam, k) || (!strncmp(fam, k, n) && fam[n] == ':'))
                                                ok = true;
                                }
                        } else {
                                size_t idx;
                                json_array_foreach(ref_filter, idx, v)
                                {
                                        const char *s = json_string_value(v);
                                        size_t n = s ? strlen(s) : 0;
                                        if (s && (!strcmp(fam, s) || (!strncmp(fam, s, n) && fam[n] == ':')))
                                                ok = true;
                                }
                        }
                        if (!ok)
                                continue;
                }
                if (label_filter) {
                        bool ok = true;
                        const char *k;
                        json_t *v;
                        json_t *lab = labels_json(im);
                        json_object_foreach(label_filter, k, v)
                        {
                                char *eq = strchr(k, '=');
                                if (!eq) {
                                        ok = ok && json_object_get(lab, k);
                                } else {
                                        char key[256];
                                        snprintf(key, sizeof(key), "%.*s", (int) (eq - k), k);
                                        const char *have = json_string_value(json_object_get(lab, key));
                                        ok = ok && have && !strcmp(have, eq + 1);
                                }
                        }
                        json_decref(lab);
                        if (!ok)
                                continue;
                }
                json_t *e = json_object_get(by_id, id);
                if (!e) {
                        long long created = 0;
                        Berth__Supervisor__GetImageResponse *g = NULL;
                        struct rpc_status gst;
                        if (get_image(en, im->name, &g, &gst) == 0) {
                                json_t *cfg = json_loadb((const char *) g->config_json.data, g->config_json.len,
                                                         0, NULL);
                                created = unix_time(json_string_value(json_object_get(cfg, "created")));
                                json_decref(cfg);
                                if (blobs)
                                        json_object_set_new(blobs, id, blob_digests(g));
                                protobuf_c_message_free_unpacked(&g->base, NULL);
                        }
                        e = json_pack("{s:s, s:s, s:[], s:[], s:I, s:I, s:I, s:i, s:o, s:i}", "Id", id,
                                      "ParentId", "", "RepoTags", "RepoDigests", "Created", (json_int_t) created,
                                      "Size", (json_int_t) im->size, "VirtualSize", (json_int_t) im->size,
                                      "SharedSize", -1, "Labels", labels_json(im), "Containers", -1);
                        json_object_set_new(by_id, id, e);
                        json_array_append(out, e);
                }
                json_array_append_new(json_object_get(e, "RepoTags"), json_string(fam));
                json_array_append_new(json_object_get(e, "RepoDigests"), repo_digest(im->name, im->target->digest));
        }
        json_decref(by_id);
        protobuf_c_message_free_unpacked(&l->base, NULL);
        *ret = out;
        if (ret_blobs)
                *ret_blobs = blobs;
        return 0;
}

static enum MHD_Result images_list(struct http_request *r)
{
        json_error_t jerr;
        json_t *filters = NULL;
        const char *fs = http_query(r, "filters");
        if (fs && *fs && !(filters = json_loads(fs, 0, &jerr)))
                return http_reply_error(r, 400, "invalid filters: %s", jerr.text);
        struct rpc_status st;
        json_t *out = NULL;
        int k = engine_images_summary(r->engine, filters, &out, NULL, &st);
        json_decref(filters);
        if (k < 0)
                return engine_reply_rpc_error(r, &st);
        return http_reply_json(r, 200, out);
}

/* The Docker inspect document of the image name (a normalised name). */
static int image_inspect_json(struct engine *en, const char *name, char **names, json_t **ret, struct rpc_status *st)
{
        Berth__Supervisor__GetImageResponse *g = NULL;
        int rc = get_image(en, name, &g, st);
        if (rc < 0)
                return rc;
        Image *im = g->image;
        json_t *cfg = json_loadb((const char *) g->config_json.data, g->config_json.len, 0, NULL);
        json_t *tags = json_array(), *digests = json_array();
        for (char **p = names; *p; p++) {
                json_array_append_new(tags, json_string(engine_familiar_name(*p)));
                /* the target of each name */
                Berth__Supervisor__GetImageResponse *o = NULL;
                struct rpc_status ost;
                if (get_image(en, *p, &o, &ost) == 0) {
                        json_array_append_new(digests, repo_digest(*p, o->image->target->digest));
                        protobuf_c_message_free_unpacked(&o->base, NULL);
                }
        }
        json_t *config = json_object_get(cfg, "config");
        json_t *j = json_pack("{s:s, s:o, s:o, s:s, s:s, s:o, s:s, s:{}, s:s, s:o, s:s, s:s, s:I, s:I}", "Id",
                              im->config_digest, "RepoTags", tags, "RepoDigests", digests, "Parent", "",
                              "Comment", json_string_value(json_object_get(cfg, "comment")) ?: "", "Created",
                              json_ref_or(json_object_get(cfg, "created"), json_string("")), "Container", "",
                              "ContainerConfig", "DockerVersion",
                              json_string_value(json_object_get(cfg, "docker_version")) ?: "", "Config",
                              json_ref_or(config, json_null()), "Architecture",
                              json_string_value(json_object_get(cfg, "architecture")) ?: "", "Os",
                              json_string_value(json_object_get(cfg, "os")) ?: "", "Size", (json_int_t) im->size,
                              "VirtualSize", (json_int_t) im->size);
        const char *variant = json_string_value(json_object_get(cfg, "variant"));
        if (variant)
                json_object_set_new(j, "Variant", json_string(variant));
        json_object_set_new(j, "Author", json_string(json_string_value(json_object_get(cfg, "author")) ?: ""));
        json_object_set_new(j, "GraphDriver", json_pack("{s:s, s:{}}", "Name", "overlay2", "Data"));
        json_t *rootfs = json_object_get(cfg, "rootfs");
        json_object_set_new(j, "RootFS", json_pack("{s:s, s:o}", "Type", "layers", "Layers",
                                                   json_ref_or(json_object_get(rootfs, "diff_ids"), json_array())));
        json_object_set_new(j, "Metadata", json_pack("{s:s}", "LastTagTime", im->created));
        json_decref(cfg);
        protobuf_c_message_free_unpacked(&g->base, NULL);
        *ret = j;
        return 0;
}

/* Every name of the image name selects (Docker lists all tags of an id). */
static int resolve_all_names(struct engine *en, const char *name, char ***ret, struct rpc_status *st)
{
        char **names = NULL, *cfg = NULL;
        int r = resolve_image(en, name, &names, &cfg, st);
        if (r < 0)
                return r;
        if (*cfg) {
                char **all = NULL;
                if (resolve_image(en, cfg, &all, NULL, st) == 0) {
                        /* the name asked for first */
                        for (size_t i = 1; all[i]; i++)
                                if (!strcmp(all[i], names[0])) {
                                        char *t = all[0];
                                        all[0] = all[i];
                                        all[i] = t;
                                }
                        names_free(names);
                        names = all;
                }
        }
        free(cfg);
        *ret = names;
        return 0;
}

static enum MHD_Result image_inspect(struct http_request *r)
{
        struct rpc_status st;
        char **names = NULL;
        if (resolve_all_names(r->engine, r->params[0], &names, &st) < 0)
                return engine_reply_rpc_error(r, &st);
        json_t *j = NULL;
        int rc = image_inspect_json(r->engine, names[0], names, &j, &st);
        names_free(names);
        if (rc < 0)
                return engine_reply_rpc_error(r, &st);
        return http_reply_json(r, 200, j);
}

static enum MHD_Result image_history(struct http_request *r)
{
        struct rpc_status st;
        char **names = NULL;
        if (resolve_image(r->engine, r->params[0], &names, NULL, &st) < 0)
                return engine_reply_rpc_error(r, &st);
        Berth__Supervisor__GetImageResponse *g = NULL;
        int rc = get_image(r->engine, names[0], &g, &st);
        if (rc < 0) {
                names_free(names);
                return engine_reply_rpc_error(r, &st);
        }
        json_t *cfg = json_loadb((const char *) g->config_json.data, g->config_json.len, 0, NULL);
        json_t *ins = json_loadb((const char *) g->inspect_json.data, g->inspect_json.len, 0, NULL);
        json_t *hist = json_object_get(cfg, "history"), *layers = json_object_get(ins, "layers");
        json_t *out = json_array();
        size_t idx, layer = 0;
        json_t *h;
        /* oldest first in the config; Docker answers newest first */
        json_array_foreach(hist, idx, h)
        {
                bool empty = json_is_true(json_object_get(h, "empty_layer"));
                json_int_t size = 0;
                if (!empty) {
                        json_t *d = json_array_get(layers, layer++);
                        size = json_integer_value(json_object_get(d, "size"));
                }
                json_array_insert_new(
                        out, 0,
                        json_pack("{s:s, s:I, s:s, s:n, s:I, s:s}", "Id", "<missing>", "Created",
                                  (json_int_t) unix_time(json_string_value(json_object_get(h, "created"))),
                                  "CreatedBy", json_string_value(json_object_get(h, "created_by")) ?: "", "Tags",
                                  "Size", size, "Comment", json_string_value(json_object_get(h, "comment")) ?: ""));
        }
        if (json_array_size(out) > 0) {
                json_t *top = json_array_get(out, 0);
                json_object_set_new(top, "Id", json_string(g->image->config_digest));
                json_t *tags = json_array();
                for (char **p = names; *p; p++)
                        json_array_append_new(tags, json_string(engine_familiar_name(*p)));
                json_object_set_new(top, "Tags", tags);
        }
        json_decref(cfg);
        json_decref(ins);
        protobuf_c_message_free_unpacked(&g->base, NULL);
        names_free(names);
        return http_reply_json(r, 200, out);
}

/* ---- tag, delete, prune ---- */

static enum MHD_Result image_tag(struct http_request *r)
{
        const char *repo = http_query(r, "repo"), *tag = http_query(r, "tag");
        if (!repo || !*repo)
                return http_reply_error(r, 400, "repository name (repo) must be given");
        struct rpc_status st;
        char **names = NULL;
        if (resolve_image(r->engine, r->params[0], &names, NULL, &st) < 0)
                return engine_reply_rpc_error(r, &st);
        _cleanup_free_ char *target = NULL;
        if (asprintf(&target, "%s%s%s", repo, tag && *tag ? ":" : "", tag && *tag ? tag : "") < 0) {
                names_free(names);
                return MHD_NO;
        }
        struct image_ref ref;
        struct berr e = { 0 };
        if (image_ref_parse(target, &ref, &e) < 0 || ref.digest[0]) {
                names_free(names);
                return http_reply_error(r, 400, "invalid reference format: %s", e.err ? e.msg : "a digest cannot be a tag");
        }
        Berth__Supervisor__TagImageRequest req = BERTH__SUPERVISOR__TAG_IMAGE_REQUEST__INIT;
        req.source = names[0];
        req.target = target;
        ProtobufCMessage *rep = NULL;
        int rc = engine_call(r->engine, "images.TagImage", &req.base,
                             &berth__supervisor__tag_image_response__descriptor, ENGINE_CALL_TIMEOUT_MS, &rep, &st);
        names_free(names);
        if (rc < 0)
                return engine_reply_rpc_error(r, &st);
        protobuf_c_message_free_unpacked(rep, NULL);
        engine_event(r->engine, "image", "tag", target, json_pack("{s:s}", "name", engine_familiar_name(target)));
        return http_reply_empty(r, 201);
}

static int delete_name(struct engine *en, const char *name, struct rpc_status *st)
{
        Berth__Supervisor__DeleteImageRequest req = BERTH__SUPERVISOR__DELETE_IMAGE_REQUEST__INIT;
        req.name = (char *) name;
        ProtobufCMessage *rep = NULL;
        int rc = engine_call(en, "images.DeleteImage", &req.base, &berth__supervisor__delete_image_response__descriptor,
                             ENGINE_CALL_TIMEOUT_MS, &rep, st);
        if (rc == 0)
                protobuf_c_message_free_unpacked(rep, NULL);
        return rc;
}

/* content.GC; *ret_removed gets the digests removed (may be NULL). */
static int collect(struct engine *en, Berth__Supervisor__GCResponse **ret, struct rpc_status *st)
{
        Berth__Supervisor__GCRequest req = BERTH__SUPERVISOR__GCREQUEST__INIT;
        return engine_call(en, "content.GC", &req.base, &berth__supervisor__gcresponse__descriptor,
                           ENGINE_CALL_TIMEOUT_MS, (ProtobufCMessage **) ret, st);
}

static enum MHD_Result image_delete(struct http_request *r)
{
        struct rpc_status st;
        char **names = NULL, *cfg = NULL;
        const char *name = r->params[0];
        bool force = http_query_bool(r, "force", false);
        /* the snapshots of containers just removed go first */
        engine_purges_wait(r->engine);
        if (resolve_image(r->engine, name, &names, &cfg, &st) < 0)
                return engine_reply_rpc_error(r, &st);
        size_t n = 0;
        while (names[n])
                n++;
        /* by id with several names: only with force, as Docker */
        if (n > 1 && !force) {
                char sid[13];
                short_id(cfg, sid);
                names_free(names);
                free(cfg);
                return http_reply_error(r, 409,
                                        "conflict: unable to delete %s (must be forced) - image is referenced in "
                                        "multiple repositories",
                                        sid);
        }
        /* the last names of an image a container uses: only with force
         * (then the name goes and the image stays for the container) */
        char **all = NULL;
        size_t n_all = 0;
        if (*cfg && resolve_image(r->engine, cfg, &all, NULL, &st) == 0)
                while (all[n_all])
                        n_all++;
        names_free(all);
        if (n >= n_all && *cfg && !force) {
                char user[13] = "";
                struct engine *en = r->engine;
                pthread_mutex_lock(&en->ctrs.lock);
                for (struct ctr *c = en->ctrs.list; c && !*user; c = c->next)
                        if (!strcmp(json_string_value(json_object_get(c->doc, "Image")) ?: "", cfg))
                                snprintf(user, sizeof(user), "%.12s", c->id);
                pthread_mutex_unlock(&en->ctrs.lock);
                if (*user) {
                        char sid[13];
                        short_id(cfg, sid);
                        enum MHD_Result res = http_reply_error(
                                r, 409,
                                "conflict: unable to remove repository reference \"%s\" (must force) - container %s "
                                "is using its referenced image %s",
                                name, user, sid);
                        names_free(names);
                        free(cfg);
                        return res;
                }
        }
        json_t *out = json_array();
        for (size_t i = 0; i < n; i++) {
                if (delete_name(r->engine, names[i], &st) < 0) {
                        json_decref(out);
                        names_free(names);
                        free(cfg);
                        return engine_reply_rpc_error(r, &st);
                }
                json_array_append_new(out, json_pack("{s:s}", "Untagged", engine_familiar_name(names[i])));
                engine_event(r->engine, "image", "untag", cfg,
                             json_pack("{s:s}", "name", engine_familiar_name(names[i])));
        }
        names_free(names);
        /* the config and layers go when no name is left for them */
        Berth__Supervisor__GCResponse *gc = NULL;
        if (collect(r->engine, &gc, &st) == 0) {
                for (size_t i = 0; i < gc->n_removed; i++)
                        if (!strcmp(gc->removed[i], cfg)) {
                                json_array_append_new(out, json_pack("{s:s}", "Deleted", cfg));
                                engine_event(r->engine, "image", "delete", cfg, NULL);
                        }
                protobuf_c_message_free_unpacked(&gc->base, NULL);
        } else {
                log_warn("engine: collecting content after deleting %s: %s", name, st.message);
        }
        free(cfg);
        return http_reply_json(r, 200, out);
}

/* The config's "created" of image name ("" when unknown); free it. */
static char *image_created(struct engine *en, const char *name)
{
        Berth__Supervisor__GetImageResponse *g = NULL;
        struct rpc_status st;
        char *created = NULL;
        if (get_image(en, name, &g, &st) == 0) {
                json_t *cfg = json_loadb((const char *) g->config_json.data, g->config_json.len, 0, NULL);
                created = strdup(json_string_value(json_object_get(cfg, "created")) ?: "");
                json_decref(cfg);
                protobuf_c_message_free_unpacked(&g->base, NULL);
        }
        return created ? created : strdup("");
}

static bool image_in_use(struct engine *en, const char *id)
{
        bool used = false;
        pthread_mutex_lock(&en->ctrs.lock);
        for (struct ctr *c = en->ctrs.list; c && !used; c = c->next)
                used = !strcmp(json_string_value(json_object_get(c->doc, "Image")) ?: "", id);
        pthread_mutex_unlock(&en->ctrs.lock);
        return used;
}

/* dangling=true (the default): every image keeps a name here, so none is
 * dangling, and what is reclaimed is content no name references any more.
 * dangling=false (docker image prune -a): the images no container uses,
 * those the until and label filters let through. */
static enum MHD_Result images_prune(struct http_request *r)
{
        struct engine *en = r->engine;
        static const char *const accepted[] = { "dangling", "until", "label", "label!", NULL };
        _cleanup_json_ json_t *f = NULL;
        if (filters_from_query(r, accepted, true, &f) < 0)
                return MHD_YES;
        engine_purges_wait(en);
        char err[256];
        bool pass;
        const char *dv = json_string_value(json_array_get(json_object_get(f, "dangling"), 0));
        bool dangling_only = !dv || !strcmp(dv, "true") || !strcmp(dv, "1");
        if (dv && !dangling_only && strcmp(dv, "false") && strcmp(dv, "0"))
                return http_reply_error(r, 400, "Invalid filter 'dangling=%s'", dv);

        struct rpc_status st;
        Berth__Supervisor__ListContentRequest lreq = BERTH__SUPERVISOR__LIST_CONTENT_REQUEST__INIT;
        Berth__Supervisor__ListContentResponse *before = NULL;
        if (engine_call(en, "content.ListContent", &lreq.base, &berth__supervisor__list_content_response__descriptor,
                        ENGINE_CALL_TIMEOUT_MS, (ProtobufCMessage **) &before, &st) < 0)
                return engine_reply_rpc_error(r, &st);
        json_t *deleted = json_array(), *ids = json_object();
        Berth__Supervisor__ListImagesResponse *l = NULL;
        if (!dangling_only && list_images(en, &l, &st) == 0) {
                for (size_t i = 0; i < l->n_images; i++) {
                        Image *im = l->images[i];
                        const char *id = im->config_digest && *im->config_digest ? im->config_digest
                                                                                  : im->target->digest;
                        if (image_in_use(en, id))
                                continue;
                        _cleanup_free_ char *created = image_created(en, im->name);
                        _cleanup_json_ json_t *labels = labels_json(im);
                        (void) filters_prune_match(f, created, labels, &pass, err, sizeof(err));
                        if (!pass)
                                continue;
                        if (delete_name(en, im->name, &st) < 0) {
                                log_warn("engine: prune: %s: %s", im->name, st.message);
                                continue;
                        }
                        json_array_append_new(deleted, json_pack("{s:s}", "Untagged", engine_familiar_name(im->name)));
                        engine_event(en, "image", "untag", id, json_pack("{s:s}", "name", engine_familiar_name(im->name)));
                        json_object_set_new(ids, id, json_true());
                }
                protobuf_c_message_free_unpacked(&l->base, NULL);
        }
        Berth__Supervisor__GCResponse *gc = NULL;
        if (collect(en, &gc, &st) < 0) {
                protobuf_c_message_free_unpacked(&before->base, NULL);
                json_decref(deleted);
                json_decref(ids);
                return engine_reply_rpc_error(r, &st);
        }
        json_int_t reclaimed = 0;
        for (size_t i = 0; i < gc->n_removed; i++) {
                for (size_t k = 0; k < before->n_blobs; k++)
                        if (!strcmp(before->blobs[k]->digest, gc->removed[i]))
                                reclaimed += (json_int_t) before->blobs[k]->size;
                if (json_object_get(ids, gc->removed[i])) {
                        json_array_append_new(deleted, json_pack("{s:s}", "Deleted", gc->removed[i]));
                        engine_event(en, "image", "delete", gc->removed[i], NULL);
                }
        }
        protobuf_c_message_free_unpacked(&before->base, NULL);
        protobuf_c_message_free_unpacked(&gc->base, NULL);
        json_decref(ids);
        return http_reply_json(r, 200, json_pack("{s:o, s:I}", "ImagesDeleted", deleted, "SpaceReclaimed", reclaimed));
}

/* ---- pull ---- */

/* base64 or base64url (X-Registry-Auth is the latter), padding optional. */
static int base64_decode(const char *in, char **ret, size_t *ret_len)
{
        size_t n = strlen(in);
        unsigned char *out = malloc(n / 4 * 3 + 4);
        if (!out)
                return -ENOMEM;
        unsigned v = 0, bits = 0;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                char c = in[i];
                int d;
                if (c >= 'A' && c <= 'Z')
                        d = c - 'A';
                else if (c >= 'a' && c <= 'z')
                        d = c - 'a' + 26;
                else if (c >= '0' && c <= '9')
                        d = c - '0' + 52;
                else if (c == '+' || c == '-')
                        d = 62;
                else if (c == '/' || c == '_')
                        d = 63;
                else if (c == '=')
                        break;
                else {
                        free(out);
                        return -EINVAL;
                }
                v = (v << 6) | (unsigned) d;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[k++] = (unsigned char) (v >> bits);
                        v &= (1u << bits) - 1;
                }
        }
        out[k] = '\0';
        *ret = (char *) out;
        *ret_len = k;
        return 0;
}

/* X-Registry-Auth → the supervisor's auth_json ({"username","password"} /
 * {"identitytoken"} / {"registrytoken"}); NULL when it carries nothing. */
static int registry_auth(struct http_request *r, char **ret)
{
        *ret = NULL;
        const char *h = http_header(r, "X-Registry-Auth");
        if (!h || !*h)
                return 0;
        _cleanup_free_ char *raw = NULL;
        size_t len;
        if (base64_decode(h, &raw, &len) < 0) {
                http_reply_error(r, 400, "X-Registry-Auth is not base64");
                return -EINVAL;
        }
        json_t *j = json_loadb(raw, len, 0, NULL);
        if (!json_is_object(j)) {
                json_decref(j);
                http_reply_error(r, 400, "X-Registry-Auth is not a JSON object");
                return -EINVAL;
        }
        json_t *out = json_object();
        static const char *const keys[][2] = { { "username", "username" },
                                               { "password", "password" },
                                               { "identitytoken", "identitytoken" },
                                               { "registrytoken", "registrytoken" } };
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                const char *v = json_string_value(json_object_get(j, keys[i][0]));
                if (v && *v)
                        json_object_set_new(out, keys[i][1], json_string(v));
        }
        json_decref(j);
        if (json_object_size(out) > 0)
                *ret = json_dumps(out, JSON_COMPACT);
        json_decref(out);
        return 0;
}

struct pull {
        struct engine *en;
        char *ref;              /* as the client gave it */
        char *norm;             /* normalised */
        char job_id[33];
        char *auth_json;
        nng_socket sub;
        bool sub_open;
        int out;                /* the reply's pipe, once streaming */

        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool done;
        int rc;
        struct rpc_status st;
        Berth__Supervisor__PullResponse *reply;
        pthread_t rpc_thread;
        bool joined;

        json_t *layers;         /* short id → whether it already existed */
};

static void *pull_rpc(void *arg)
{
        struct pull *p = arg;
        Berth__Supervisor__PullRequest req = BERTH__SUPERVISOR__PULL_REQUEST__INIT;
        req.ref = p->ref;
        req.job_id = p->job_id;
        if (p->auth_json) {
                req.auth_json.data = (uint8_t *) p->auth_json;
                req.auth_json.len = strlen(p->auth_json);
        }
        Berth__Supervisor__PullResponse *rep = NULL;
        struct rpc_status st = { 0 };
        int rc = engine_call(p->en, "images.Pull", &req.base, &berth__supervisor__pull_response__descriptor,
                             RPC_NO_TIMEOUT, (ProtobufCMessage **) &rep, &st);
        pthread_mutex_lock(&p->lock);
        p->rc = rc;
        p->st = st;
        p->reply = rep;
        p->done = true;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

static void pull_free(struct pull *p)
{
        if (!p)
                return;
        if (p->sub_open)
                nng_close(p->sub);
        if (p->out >= 0)
                close(p->out);
        if (p->reply)
                protobuf_c_message_free_unpacked(&p->reply->base, NULL);
        json_decref(p->layers);
        free(p->ref);
        free(p->norm);
        free(p->auth_json);
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->cond);
        free(p);
}

/* The next progress event of this pull (timeout_ms), or NULL. */
static Berth__Supervisor__PullProgress *next_event(struct pull *p, int timeout_ms, Berth__Supervisor__Envelope **env)
{
        nng_socket_set_ms(p->sub, NNG_OPT_RECVTIMEO, timeout_ms);
        for (;;) {
                nng_msg *m = NULL;
                if (nng_recvmsg(p->sub, &m, 0) != 0)
                        return NULL;
                const char *body = nng_msg_body(m);
                size_t len = nng_msg_len(m);
                const char *nul = memchr(body, '\0', len);
                Berth__Supervisor__Envelope *e = NULL;
                if (nul)
                        e = berth__supervisor__envelope__unpack(NULL, len - (size_t) (nul + 1 - body),
                                                                (const uint8_t *) nul + 1);
                nng_msg_free(m);
                if (!e)
                        continue;
                if (e->event_case == BERTH__SUPERVISOR__ENVELOPE__EVENT_PULL && e->pull->job_id &&
                    !strcmp(e->pull->job_id, p->job_id)) {
                        *env = e;
                        return e->pull;
                }
                berth__supervisor__envelope__free_unpacked(e, NULL);
        }
}

static bool pull_done(struct pull *p)
{
        pthread_mutex_lock(&p->lock);
        bool d = p->done;
        pthread_mutex_unlock(&p->lock);
        return d;
}

static void human_size(uint64_t n, char *buf, size_t len)
{
        if (n < 1000)
                snprintf(buf, len, "%lluB", (unsigned long long) n);
        else if (n < 1000 * 1000)
                snprintf(buf, len, "%.3gkB", (double) n / 1e3);
        else if (n < 1000ull * 1000 * 1000)
                snprintf(buf, len, "%.3gMB", (double) n / 1e6);
        else
                snprintf(buf, len, "%.3gGB", (double) n / 1e9);
}

static void emit(struct pull *p, json_t *line)
{
        char *s = json_dumps(line, JSON_COMPACT);
        json_decref(line);
        if (!s)
                return;
        size_t n = strlen(s);
        s[n] = '\n'; /* over the NUL: written with its length */
        if (p->out >= 0 && fs_write_all(p->out, s, n + 1) < 0) {
                close(p->out); /* the client went away: the pull goes on */
                p->out = -1;
        }
        free(s);
}

/* One supervisor progress event as Docker's progress line. */
static void emit_progress(struct pull *p, const Berth__Supervisor__PullProgress *ev)
{
        if (!ev->digest || !*ev->digest || (ev->kind && strcmp(ev->kind, "layer")))
                return;
        char id[13];
        short_id(ev->digest, id);
        bool existed = json_is_true(json_object_get(p->layers, id));
        const char *status = NULL;
        switch (ev->status) {
        case BERTH__SUPERVISOR__LAYER_STATUS__WAITING:
                status = "Pulling fs layer";
                break;
        case BERTH__SUPERVISOR__LAYER_STATUS__EXISTS:
                json_object_set_new(p->layers, id, json_true());
                status = "Already exists";
                break;
        case BERTH__SUPERVISOR__LAYER_STATUS__DOWNLOADING: {
                char cur[16], tot[16], bar[51];
                human_size(ev->current, cur, sizeof(cur));
                human_size(ev->total, tot, sizeof(tot));
                size_t fill = ev->total ? (size_t) (50.0 * (double) ev->current / (double) ev->total) : 0;
                if (fill > 50)
                        fill = 50;
                memset(bar, ' ', 50);
                memset(bar, '=', fill);
                if (fill > 0 && fill < 50)
                        bar[fill - 1] = '>';
                bar[50] = '\0';
                char progress[128];
                snprintf(progress, sizeof(progress), "[%s]  %s/%s", bar, cur, tot);
                emit(p, json_pack("{s:s, s:{s:I, s:I}, s:s, s:s}", "status", "Downloading", "progressDetail",
                                  "current", (json_int_t) ev->current, "total", (json_int_t) ev->total, "progress",
                                  progress, "id", id));
                return;
        }
        case BERTH__SUPERVISOR__LAYER_STATUS__VERIFYING:
                status = "Verifying Checksum";
                break;
        case BERTH__SUPERVISOR__LAYER_STATUS__DOWNLOADED:
                status = "Download complete";
                break;
        case BERTH__SUPERVISOR__LAYER_STATUS__EXTRACTING:
                status = existed ? NULL : "Extracting";
                break;
        case BERTH__SUPERVISOR__LAYER_STATUS__DONE:
                status = existed ? NULL : "Pull complete";
                break;
        default:
                break;
        }
        if (status)
                emit(p, json_pack("{s:s, s:{}, s:s}", "status", status, "progressDetail", "id", id));
}

static void *pull_stream(void *arg)
{
        struct pull *p = arg;
        Berth__Supervisor__Envelope *env = NULL;
        /* until the supervisor answers, then what is still in flight */
        while (!pull_done(p)) {
                Berth__Supervisor__PullProgress *ev = next_event(p, 200, &env);
                if (ev) {
                        emit_progress(p, ev);
                        berth__supervisor__envelope__free_unpacked(env, NULL);
                }
        }
        if (!p->joined)
                pthread_join(p->rpc_thread, NULL);
        for (Berth__Supervisor__PullProgress *ev; (ev = next_event(p, 100, &env));) {
                bool last = (!ev->digest || !*ev->digest) && ev->message && strcmp(ev->message, "resolved");
                emit_progress(p, ev);
                berth__supervisor__envelope__free_unpacked(env, NULL);
                if (last)
                        break;
        }
        if (p->rc < 0) {
                emit(p, json_pack("{s:{s:s}, s:s}", "errorDetail", "message", p->st.message, "error", p->st.message));
        } else {
                Image *im = p->reply->image;
                char line[IMAGE_REF_STRING_MAX + 64];
                snprintf(line, sizeof(line), "Digest: %s", im->target->digest);
                emit(p, json_pack("{s:s}", "status", line));
                bool fresh = p->reply->blobs_fetched > 0 || p->reply->layers_applied > 0;
                snprintf(line, sizeof(line), "Status: %s for %s",
                         fresh ? "Downloaded newer image" : "Image is up to date", engine_familiar_name(im->name));
                emit(p, json_pack("{s:s}", "status", line));
                engine_event(p->en, "image", "pull", engine_familiar_name(im->name),
                             json_pack("{s:s}", "name", engine_familiar_name(im->name)));
        }
        pull_free(p);
        return NULL;
}

int engine_import_archive(struct engine *en, int fd, struct rpc_status *st)
{
        /* the supervisor reads the file through this process's fd */
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int) getpid(), fd);
        Berth__Supervisor__ImportImagesRequest req = BERTH__SUPERVISOR__IMPORT_IMAGES_REQUEST__INIT;
        req.path = path;
        ProtobufCMessage *rep = NULL;
        int r = engine_call(en, "images.ImportImages", &req.base, &berth__supervisor__import_images_response__descriptor,
                            RPC_NO_TIMEOUT, &rep, st);
        if (r >= 0)
                protobuf_c_message_free_unpacked(rep, NULL);
        return r;
}

/* docker import: fromSrc=- and the tarball as the body (image-import.c).
 * berth needs a name for the image (repo, tag): its images are known by
 * their names. */
static enum MHD_Result image_import(struct http_request *r)
{
        struct engine *en = r->engine;
        const char *src = http_query(r, "fromSrc"), *repo = http_query(r, "repo"), *tag = http_query(r, "tag");
        if (strcmp(src, "-"))
                return http_reply_error(r, 501, "engine: importing from a URL (%s) is not supported: send the "
                                                "tarball (docker import FILE)", src);
        if (r->body_fd < 0)
                return http_reply_error(r, 400, "the request body (a root filesystem tarball) is empty");
        if (!repo || !*repo)
                return http_reply_error(r, 400, "engine: berth needs a name for an imported image: docker import "
                                                "FILE REPOSITORY[:TAG]");
        _cleanup_free_ char *name = NULL;
        /* the CLI sends the whole reference as repo */
        if ((tag && *tag ? asprintf(&name, "%s:%s", repo, tag) : asprintf(&name, "%s", repo)) < 0)
                return MHD_NO;
        char tmpdir[PATH_MAX], id[72], err[512];
        snprintf(tmpdir, sizeof(tmpdir), "%s/engine/tmp", en->data_root);
        struct utsname u;
        uname(&u);
        json_t *changes = http_query_list(r, "changes");
        struct image_import im = { .body_fd = r->body_fd, .name = name, .message = http_query(r, "message"),
                                   .changes = changes, .arch = engine_go_arch(u.machine), .tmpdir = tmpdir };
        int fd = -1;
        int rc = engine_image_import(&im, &fd, id, err, sizeof(err));
        json_decref(changes);
        if (rc < 0)
                return http_reply_error(r, rc == -EINVAL ? 400 : 500, "%s", err);
        struct rpc_status st;
        rc = engine_import_archive(en, fd, &st);
        close(fd);
        if (rc < 0)
                return engine_reply_rpc_error(r, &st);
        engine_event(en, "image", "import", id, json_pack("{s:s}", "name", engine_familiar_name(name)));
        json_t *j = json_pack("{s:s}", "status", id);
        _cleanup_free_ char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        _cleanup_free_ char *line = NULL;
        if (!s || asprintf(&line, "%s\r\n", s) < 0)
                return MHD_NO;
        return http_reply_text(r, 200, "application/json", line);
}

static enum MHD_Result image_create(struct http_request *r)
{
        const char *from = http_query(r, "fromImage"), *tag = http_query(r, "tag");
        if (http_query(r, "fromSrc"))
                return image_import(r);
        if (!from || !*from)
                return http_reply_error(r, 400, "fromImage must be given");

        struct pull *p = calloc(1, sizeof(*p));
        if (!p)
                return MHD_NO;
        p->en = r->engine;
        p->out = -1;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->cond, NULL);
        p->layers = json_object();
        if (tag && *tag)
                (void) asprintf(&p->ref, "%s%s%s", from, strncmp(tag, "sha256:", 7) ? ":" : "@", tag);
        else
                p->ref = strdup(from);
        struct image_ref ref;
        struct berr e = { 0 };
        char norm[IMAGE_REF_STRING_MAX];
        if (!p->ref || !p->layers) {
                pull_free(p);
                return MHD_NO;
        }
        if (image_ref_parse(p->ref, &ref, &e) < 0) {
                enum MHD_Result res = http_reply_error(r, 400, "invalid reference format: %s", e.msg);
                pull_free(p);
                return res;
        }
        image_ref_string(&ref, norm, sizeof(norm));
        p->norm = strdup(norm);
        if (registry_auth(r, &p->auth_json) < 0) {
                pull_free(p);
                return MHD_YES;
        }
        uint8_t rnd[16];
        if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
                pull_free(p);
                return http_reply_error(r, 500, "engine: getrandom: %s", strerror(errno));
        }
        for (size_t i = 0; i < sizeof(rnd); i++)
                snprintf(p->job_id + 2 * i, 3, "%02x", rnd[i]);

        /* subscribe before asking, so no event is missed */
        int rv;
        if ((rv = nng_sub0_open(&p->sub)) != 0) {
                pull_free(p);
                return http_reply_error(r, 500, "engine: events socket: %s", nng_strerror(rv));
        }
        p->sub_open = true;
        if ((rv = nng_socket_set(p->sub, NNG_OPT_SUB_SUBSCRIBE, "/images/pull", 12)) != 0 ||
            (rv = nng_dial(p->sub, r->engine->events_address, NULL, 0)) != 0) {
                pull_free(p);
                return http_reply_error(r, 503, "engine: the supervisor's events at %s: %s",
                                        r->engine->events_address, nng_strerror(rv));
        }
        if (pthread_create(&p->rpc_thread, NULL, pull_rpc, p) != 0) {
                pull_free(p);
                return http_reply_error(r, 500, "engine: no thread for a pull");
        }

        /* Errors before the pull resolves its manifest are the reply's
         * status; afterwards they end the stream, as dockerd does. */
        Berth__Supervisor__Envelope *env = NULL;
        bool resolved = false;
        while (!resolved && !pull_done(p)) {
                Berth__Supervisor__PullProgress *ev = next_event(p, 100, &env);
                if (!ev)
                        continue;
                /* the whole pull's failure is not a resolution */
                resolved = (ev->digest && *ev->digest) || ev->status != BERTH__SUPERVISOR__LAYER_STATUS__FAILED;
                berth__supervisor__envelope__free_unpacked(env, NULL);
        }
        if (!resolved) {
                pthread_join(p->rpc_thread, NULL);
                p->joined = true;
                if (p->rc < 0) {
                        enum MHD_Result res = engine_reply_rpc_error(r, &p->st);
                        pull_free(p);
                        return res;
                }
        }
        enum MHD_Result res = http_reply_stream(r, 200, "application/json", &p->out);
        if (p->out < 0) {
                if (!p->joined)
                        pthread_join(p->rpc_thread, NULL);
                pull_free(p);
                return res;
        }
        char repo[IMAGE_REF_STRING_MAX];
        snprintf(repo, sizeof(repo), "Pulling from %s", ref.path);
        emit(p, json_pack("{s:s, s:s}", "status", repo, "id", ref.tag[0] ? ref.tag : ref.digest));
        if (engine_spawn(pull_stream, p, 0) != 0) {
                if (!p->joined)
                        pthread_join(p->rpc_thread, NULL);
                pull_free(p);
                return res;
        }
        return res;
}

/* ---- save and load ---- */

struct names_arg {
        json_t *names;
};

static enum MHD_Result collect_names(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
        struct names_arg *a = cls;
        if (key && value && !strcmp(key, "names"))
                json_array_append_new(a->names, json_string(value));
        return MHD_YES;
}

static enum MHD_Result images_save(struct http_request *r)
{
        struct names_arg a = { json_array() };
        if (r->n_params == 1)
                json_array_append_new(a.names, json_string(r->params[0]));
        else
                MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_names, &a);
        if (json_array_size(a.names) == 0) {
                json_decref(a.names);
                return http_reply_error(r, 400, "no image names given (names=...)");
        }

        /* each argument → the names it selects */
        struct rpc_status st;
        json_t *sel = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(a.names, i, v)
        {
                char **names = NULL;
                if (resolve_image(r->engine, json_string_value(v), &names, NULL, &st) < 0) {
                        json_decref(sel);
                        json_decref(a.names);
                        return engine_reply_rpc_error(r, &st);
                }
                for (char **p = names; *p; p++)
                        json_array_append_new(sel, json_string(*p));
                names_free(names);
        }
        json_decref(a.names);

        size_t n = json_array_size(sel);
        char **names = calloc(n ? n : 1, sizeof(char *));
        if (!names) {
                json_decref(sel);
                return MHD_NO;
        }
        json_array_foreach(sel, i, v) names[i] = (char *) json_string_value(v);
        int fd = -1;
        int rc = engine_export_images(r->engine, names, n, &fd, &st);
        free(names);
        json_decref(sel);
        if (rc < 0)
                return engine_reply_rpc_error(r, &st);
        return http_reply_fd(r, 200, "application/x-tar", fd);
}

int engine_export_images(struct engine *en, char **names, size_t n, int *ret_fd, struct rpc_status *st)
{
        uint8_t rnd[8];
        char path[96];
        if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
                return rpc_status_set(st, RPC_INTERNAL, "engine: getrandom: %s", strerror(errno));
        snprintf(path, sizeof(path), "/var/tmp/berth-save-%02x%02x%02x%02x%02x%02x%02x%02x.tar", rnd[0], rnd[1],
                 rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
        Berth__Supervisor__ExportImagesRequest req = BERTH__SUPERVISOR__EXPORT_IMAGES_REQUEST__INIT;
        req.names = names;
        req.n_names = n;
        req.path = path;
        req.format = "docker";
        ProtobufCMessage *rep = NULL;
        if (engine_call(en, "images.ExportImages", &req.base, &berth__supervisor__export_images_response__descriptor,
                        RPC_NO_TIMEOUT, &rep, st) < 0)
                return -EIO;
        protobuf_c_message_free_unpacked(rep, NULL);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        unlink(path);
        if (fd < 0)
                return rpc_status_set(st, RPC_INTERNAL, "engine: opening the exported archive: %s", strerror(errno));
        *ret_fd = fd;
        return 0;
}

static enum MHD_Result images_load(struct http_request *r)
{
        if (r->body_fd < 0)
                return http_reply_error(r, 400, "the request body (a docker save tarball) is empty");
        /* the supervisor reads the body through this process's fd */
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int) getpid(), r->body_fd);
        Berth__Supervisor__ImportImagesRequest req = BERTH__SUPERVISOR__IMPORT_IMAGES_REQUEST__INIT;
        req.path = path;
        Berth__Supervisor__ImportImagesResponse *rep = NULL;
        struct rpc_status st;
        if (engine_call(r->engine, "images.ImportImages", &req.base,
                        &berth__supervisor__import_images_response__descriptor, RPC_NO_TIMEOUT,
                        (ProtobufCMessage **) &rep, &st) < 0)
                return engine_reply_rpc_error(r, &st);
        _cleanup_free_ char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        if (!f) {
                protobuf_c_message_free_unpacked(&rep->base, NULL);
                return MHD_NO;
        }
        for (size_t i = 0; i < rep->n_images; i++) {
                char line[IMAGE_REF_STRING_MAX + 32];
                snprintf(line, sizeof(line), "Loaded image: %s\n", engine_familiar_name(rep->images[i]->name));
                json_t *j = json_pack("{s:s}", "stream", line);
                char *s = json_dumps(j, JSON_COMPACT);
                json_decref(j);
                if (s)
                        fprintf(f, "%s\n", s);
                free(s);
        }
        fclose(f);
        protobuf_c_message_free_unpacked(&rep->base, NULL);
        return http_reply_text(r, 200, "application/json", out ? out : "");
}

const struct http_route engine_image_routes[] = {
        { "POST", "/images/create", image_create, HTTP_ROUTE_BODY_FILE },
        { "GET", "/images/json", images_list, 0 },
        { "POST", "/images/prune", images_prune, 0 },
        { "GET", "/images/get", images_save, 0 },
        { "GET", "/images/{*}/json", image_inspect, 0 },
        { "GET", "/images/{*}/history", image_history, 0 },
        { "GET", "/images/{*}/get", images_save, 0 },
        { "POST", "/images/{*}/tag", image_tag, 0 },
        { "POST", "/images/load", images_load, HTTP_ROUTE_BODY_FILE },
        { "DELETE", "/images/{*}", image_delete, 0 },
};
const size_t engine_image_n_routes = sizeof(engine_image_routes) / sizeof(engine_image_routes[0]);

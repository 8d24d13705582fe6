/* containers.*: container records on the images' snapshots (the handlers;
 * the records are container-store.c's, the default spec container-spec.c's).
 * A container's delete and a task's create for it are serialised by the
 * task registry's container lock (supervisor_tasks_lock_containers). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "container-service.h"
#include "container-spec.h"
#include "container-store.h"
#include "image-manifest.h"
#include "image-reference.h"
#include "json-util.h"
#include "log.h"

#define CONFIG_MAX (16u << 20)

static const char *str_or(const char *s, const char *dflt)
{
        return s && *s ? s : dflt;
}

static void publish_container(struct supervisor *s, const char *topic, const char *id, const char *image)
{
        Berth__Supervisor__ContainerEvent ev = BERTH__SUPERVISOR__CONTAINER_EVENT__INIT;
        Berth__Supervisor__Envelope env = BERTH__SUPERVISOR__ENVELOPE__INIT;
        ev.id = (char *) id;
        ev.image = (char *) (image ? image : "");
        env.event_case = BERTH__SUPERVISOR__ENVELOPE__EVENT_CONTAINER;
        env.container = &ev;
        supervisor_publish(s, topic, &env);
}

/* ---------------------------------------------------------------- containers: records ↔ messages */

struct pb_container {
        Berth__Supervisor__Container c;
        Berth__Supervisor__Container__LabelsEntry *entries;
        Berth__Supervisor__Container__LabelsEntry **labels;
        char **log_opts;
        char *spec;
};

/* Fills p from rec; strings point into rec, which must outlive p. */
static int container_pb(json_t *rec, struct pb_container *p)
{
        memset(p, 0, sizeof(*p));
        berth__supervisor__container__init(&p->c);
        p->c.id = (char *) str_or(json_string_value(json_object_get(rec, "id")), "");
        p->c.image = (char *) str_or(json_string_value(json_object_get(rec, "image")), "");
        p->c.snapshot_key = (char *) str_or(json_string_value(json_object_get(rec, "snapshot_key")), "");
        p->c.runtime = (char *) str_or(json_string_value(json_object_get(rec, "runtime")), "");
        p->c.log_path = (char *) str_or(json_string_value(json_object_get(rec, "log_path")), "");
        p->c.created = (char *) str_or(json_string_value(json_object_get(rec, "created")), "");
        p->c.updated = (char *) str_or(json_string_value(json_object_get(rec, "updated")), "");
        json_t *spec = json_object_get(rec, "spec");
        if (spec) {
                p->spec = json_dumps(spec, JSON_COMPACT);
                if (!p->spec)
                        return -ENOMEM;
                p->c.spec_json.data = (uint8_t *) p->spec;
                p->c.spec_json.len = strlen(p->spec);
        }
        json_t *labels = json_object_get(rec, "labels");
        size_t n = json_object_size(labels);
        p->entries = calloc(n + 1, sizeof(*p->entries));
        p->labels = calloc(n + 1, sizeof(*p->labels));
        if (!p->entries || !p->labels)
                return -ENOMEM;
        const char *k;
        json_t *v;
        json_object_foreach(labels, k, v) {
                Berth__Supervisor__Container__LabelsEntry *le = &p->entries[p->c.n_labels];
                berth__supervisor__container__labels_entry__init(le);
                le->key = (char *) k;
                le->value = (char *) str_or(json_string_value(v), "");
                p->labels[p->c.n_labels++] = le;
        }
        p->c.labels = p->labels;
        json_t *opts = json_object_get(rec, "log_opts");
        p->log_opts = calloc(json_array_size(opts) + 1, sizeof(char *));
        if (!p->log_opts)
                return -ENOMEM;
        size_t i;
        json_array_foreach(opts, i, v)
                if (json_is_string(v))
                        p->log_opts[p->c.n_log_opts++] = (char *) json_string_value(v);
        p->c.log_opts = p->log_opts;
        return 0;
}

static void container_pb_done(struct pb_container *p)
{
        free(p->entries);
        free(p->labels);
        free(p->log_opts);
        free(p->spec);
}

static json_t *labels_json(Berth__Supervisor__Container__LabelsEntry **l, size_t n)
{
        json_t *o = json_object();
        for (size_t i = 0; o && i < n; i++)
                if (l[i] && l[i]->key)
                        json_object_set_new(o, l[i]->key, json_string(l[i]->value ? l[i]->value : ""));
        return o;
}

static int parse_spec(const ProtobufCBinaryData *b, json_t **ret, struct berr *e)
{
        json_error_t je;
        json_t *j = json_loadb((const char *) b->data, b->len, 0, &je);
        if (!j)
                return berr_setx(e, EINVAL, "spec_json: %s (line %d, column %d)", je.text, je.line, je.column);
        if (!json_is_object(j) || !json_is_object(json_object_get(j, "process"))) {
                json_decref(j);
                return berr_setx(e, EINVAL, "spec_json: not an OCI runtime spec (an object with \"process\")");
        }
        *ret = j;
        return 0;
}

/* The image config and the top chain id of the image name, which must be
 * unpacked. */
static int image_top(struct supervisor *s, const char *name, json_t **ret_config, char ret_top[CONTENT_DIGEST_MAX],
                     struct berr *e)
{
        struct image_record rec = { 0 };
        struct image_manifest m = { 0 };
        struct image_platform plat;
        char mdigest[CONTENT_DIGEST_MAX];
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        image_platform_default(&plat);
        int r = image_store_get(s->is, name, &rec, e);
        if (r == -ENOENT)
                return berr_setx(e, ENOENT, "image \"%s\" not found: pull it first", name);
        if (r < 0)
                return r;
        r = image_store_manifest(s->is, &rec, &plat, &m, mdigest, e);
        image_record_done(&rec);
        if (r < 0)
                return r;
        r = content_read(s->cs, m.config.digest, CONFIG_MAX, &data, &len, e);
        image_manifest_done(&m);
        if (r < 0)
                return r;
        json_t *cfg = json_loadb(data, len, 0, NULL);
        json_t *diffs = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
        char chain[CONTENT_DIGEST_MAX] = "";
        if (!json_is_array(diffs) || json_array_size(diffs) == 0) {
                json_decref(cfg);
                return berr_setx(e, EINVAL, "image \"%s\": its config has no rootfs.diff_ids", name);
        }
        for (size_t i = 0; i < json_array_size(diffs); i++) {
                const char *d = json_string_value(json_array_get(diffs, i));
                if (!d || image_chain_id(i ? chain : NULL, d, chain) < 0) {
                        json_decref(cfg);
                        return berr_setx(e, EINVAL, "image \"%s\": bad diff id %zu", name, i);
                }
        }
        struct snapshot_info si = { 0 };
        r = snapshot_overlay_stat(s->sn, chain, &si, NULL);
        bool committed = r >= 0 && si.kind == SNAPSHOT_COMMITTED;
        snapshot_info_done(&si);
        if (!committed) {
                json_decref(cfg);
                return berr_setx(e, EBUSY, "image \"%s\" is not unpacked (no snapshot %s)", name, chain);
        }
        memcpy(ret_top, chain, CONTENT_DIGEST_MAX);
        *ret_config = cfg;
        return 0;
}

static char **strv_from_pb(char **v, size_t n)
{
        char **out = calloc(n + 1, sizeof(char *));
        for (size_t i = 0; out && i < n; i++)
                out[i] = v[i];
        return out;
}

/* ---------------------------------------------------------------- containers.* */

static void reply_container(struct rpc_call *call, json_t *rec, const ProtobufCMessageDescriptor *d)
{
        struct pb_container p;
        if (container_pb(rec, &p) < 0) {
                container_pb_done(&p);
                supervisor_fail_msg(call, ENOMEM, "out of memory");
                return;
        }
        /* Create, Get and Update responses share the shape {Container container = 1} */
        Berth__Supervisor__GetContainerResponse r = BERTH__SUPERVISOR__GET_CONTAINER_RESPONSE__INIT;
        r.base.descriptor = d;
        r.container = &p.c;
        rpc_call_reply(call, &r.base);
        container_pb_done(&p);
}

static void h_container_create_slow(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        struct supervisor *s = userdata;
                const Berth__Supervisor__CreateContainerRequest *req = (const void *) request;
        const Berth__Supervisor__Container *c = req->container;
        struct berr e = { 0 };
        char name[IMAGE_REF_STRING_MAX], top[CONTENT_DIGEST_MAX], now[48];
        struct image_ref ref;
        _cleanup_json_ json_t *config = NULL, *rec = NULL, *spec = NULL;
        struct snapshot_mount mnt = { 0 };
        int r;

        if (!c || !container_id_valid(c->id)) {
                supervisor_fail_msg(call, EINVAL, "invalid container id \"%s\": want [a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}",
                         c ? c->id : "");
                return;
        }
        if (!c->image || !*c->image) {
                supervisor_fail_msg(call, EINVAL, "container \"%s\": an image is needed", c->id);
                return;
        }
        if (image_ref_parse(c->image, &ref, &e) < 0)
                goto fail;
        image_ref_string(&ref, name, sizeof(name));
        if ((r = image_top(s, name, &config, top, &e)) < 0)
                goto fail;
        if (c->spec_json.len > 0 && parse_spec(&c->spec_json, &spec, &e) < 0)
                goto fail;

        supervisor_now(now, sizeof(now));
        json_t *opts = json_array();
        for (size_t i = 0; i < c->n_log_opts; i++)
                json_array_append_new(opts, json_string(c->log_opts[i]));
        rec = json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:o, s:s, s:s, s:s}", "id", c->id, "image", name,
                        "snapshot_key", c->id, "runtime", str_or(c->runtime, ""), "labels",
                        labels_json(c->labels, c->n_labels), "log_path", str_or(c->log_path, ""), "log_opts", opts,
                        "created", now, "updated", now, "state", "creating");
        if (!rec) {
                berr_set(&e, ENOMEM, "container");
                goto fail;
        }
        /* "creating" first: a crash from here on is rolled back on start */
        if (container_store_create(supervisor_tasks_containers(s), rec, &e) < 0)
                goto fail;
        if (snapshot_overlay_prepare(s->sn, c->id, top, &mnt, &e) < 0) {
                berr_prefix(&e, "container \"%s\": snapshot", c->id);
                goto undo_record;
        }
        if (!spec) {
                Berth__Supervisor__SpecOptions *so = req->spec_options;
                _cleanup_free_ char **args = so ? strv_from_pb(so->args, so->n_args) : NULL;
                _cleanup_free_ char **env = so ? strv_from_pb(so->env, so->n_env) : NULL;
                struct container_spec_options o = {
                        .args = args,
                        .env = env,
                        .cwd = so && *so->cwd ? so->cwd : NULL,
                        .user = so && *so->user ? so->user : NULL,
                        .terminal = so && so->terminal,
                        .memory = so ? so->memory_limit : 0,
                };
                _cleanup_strv_free_ char **dirs = NULL;
                r = container_layer_dirs(mnt.type, mnt.source, mnt.options, &dirs);
                if (r < 0) {
                        berr_set(&e, -r, "layers");
                        goto undo_snapshot;
                }
                if (container_spec_default(c->id, config, &o, dirs, &spec, &e) < 0) {
                        berr_prefix(&e, "container \"%s\"", c->id);
                        goto undo_snapshot;
                }
        } else if (json_string_value(json_object_get(json_object_get(spec, "annotations"), "org.berth.user"))) {
                /* a user given by name (the engine's "docker run -u name"):
                 * resolved through the image's /etc/passwd and /etc/group */
                json_t *ann = json_object_get(spec, "annotations");
                const char *user = json_string_value(json_object_get(ann, "org.berth.user"));
                _cleanup_strv_free_ char **dirs = NULL;
                uint32_t uid, gid;
                r = container_layer_dirs(mnt.type, mnt.source, mnt.options, &dirs);
                if (r < 0) {
                        berr_set(&e, -r, "layers");
                        goto undo_snapshot;
                }
                if (container_user_resolve(user, dirs, &uid, &gid, &e) < 0) {
                        berr_prefix(&e, "container \"%s\"", c->id);
                        goto undo_snapshot;
                }
                json_t *pu = json_object_get(json_object_get(spec, "process"), "user");
                json_object_set_new(pu, "uid", json_integer(uid));
                json_object_set_new(pu, "gid", json_integer(gid));
                json_object_del(ann, "org.berth.user");
        }
        json_object_set(rec, "spec", spec);
        json_object_set_new(rec, "state", json_string("created"));
        if (container_store_put(supervisor_tasks_containers(s), rec, &e) < 0)
                goto undo_snapshot;
        snapshot_mount_done(&mnt);
        publish_container(s, "/containers/create", c->id, name);
        reply_container(call, rec, &berth__supervisor__create_container_response__descriptor);
        return;

undo_snapshot:
        snapshot_overlay_remove(s->sn, c->id, NULL);
undo_record:
        container_store_remove(supervisor_tasks_containers(s), c->id, NULL);
fail:
        snapshot_mount_done(&mnt);
        supervisor_fail(call, -e.err, &e);
}

void container_service_create(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        supervisor_defer(call, request, userdata, h_container_create_slow);
}

void container_service_get(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        struct supervisor *s = userdata;
        const Berth__Supervisor__GetContainerRequest *req = (const void *) request;
        struct berr e = { 0 };
        _cleanup_json_ json_t *rec = NULL;
        int r = container_store_get(supervisor_tasks_containers(s), req->id, &rec, &e);
        if (r < 0 || strcmp(str_or(json_string_value(json_object_get(rec, "state")), ""), "creating") == 0) {
                if (r >= 0)
                        berr_setx(&e, ENOENT, "container \"%s\" not found", req->id);
                supervisor_fail(call, -e.err, &e);
                return;
        }
        reply_container(call, rec, &berth__supervisor__get_container_response__descriptor);
}

void container_service_list(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        struct supervisor *s = userdata;
        (void) request;
        struct berr e = { 0 };
        _cleanup_json_ json_t *all = NULL;
        if (container_store_list(supervisor_tasks_containers(s), &all, &e) < 0) {
                supervisor_fail(call, -e.err, &e);
                return;
        }
        size_t n = json_array_size(all), k = 0;
        struct pb_container *p = calloc(n + 1, sizeof(*p));
        Berth__Supervisor__Container **v = calloc(n + 1, sizeof(*v));
        Berth__Supervisor__ListContainersResponse r = BERTH__SUPERVISOR__LIST_CONTAINERS_RESPONSE__INIT;
        bool ok = p && v;
        for (size_t i = 0; ok && i < n; i++) {
                json_t *rec = json_array_get(all, i);
                if (strcmp(str_or(json_string_value(json_object_get(rec, "state")), ""), "creating") == 0)
                        continue;
                ok = container_pb(rec, &p[k]) >= 0;
                v[k] = &p[k].c;
                k++;
        }
        if (ok) {
                r.containers = v;
                r.n_containers = k;
                rpc_call_reply(call, &r.base);
        } else {
                supervisor_fail_msg(call, ENOMEM, "out of memory");
        }
        for (size_t i = 0; p && i < k; i++)
                container_pb_done(&p[i]);
        free(p);
        free(v);
}

static void h_container_update_slow(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        struct supervisor *s = userdata;
        const Berth__Supervisor__UpdateContainerRequest *req = (const void *) request;
        struct berr e = { 0 };
        _cleanup_json_ json_t *rec = NULL;
        char now[48];
        if (!req->container) {
                supervisor_fail_msg(call, EINVAL, "a container is needed");
                return;
        }
        supervisor_tasks_lock_containers(s);
        if (container_store_get(supervisor_tasks_containers(s), req->container->id, &rec, &e) < 0)
                goto fail;
        if (req->update_spec) {
                json_t *spec = NULL;
                if (parse_spec(&req->container->spec_json, &spec, &e) < 0)
                        goto fail;
                json_object_set_new(rec, "spec", spec);
        }
        if (req->update_labels)
                json_object_set_new(rec, "labels", labels_json(req->container->labels, req->container->n_labels));
        supervisor_now(now, sizeof(now));
        json_object_set_new(rec, "updated", json_string(now));
        if (container_store_put(supervisor_tasks_containers(s), rec, &e) < 0)
                goto fail;
        supervisor_tasks_unlock_containers(s);
        publish_container(s, "/containers/update", req->container->id, json_string_value(json_object_get(rec, "image")));
        reply_container(call, rec, &berth__supervisor__update_container_response__descriptor);
        return;
fail:
        supervisor_tasks_unlock_containers(s);
        supervisor_fail(call, -e.err, &e);
}

void container_service_update(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        supervisor_defer(call, request, userdata, h_container_update_slow);
}

static void h_container_delete_slow(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        struct supervisor *s = userdata;
                const Berth__Supervisor__DeleteContainerRequest *req = (const void *) request;
        struct berr e = { 0 };
        _cleanup_json_ json_t *rec = NULL;

        supervisor_tasks_lock_containers(s);
        if (container_store_get(supervisor_tasks_containers(s), req->id, &rec, &e) < 0)
                goto fail;
        bool has_task = supervisor_tasks_has_task(s, req->id);
        if (has_task) {
                berr_setx(&e, EBUSY, "container \"%s\" has a task: delete the task first", req->id);
                goto fail;
        }
        const char *key = json_string_value(json_object_get(rec, "snapshot_key"));
        if (!req->keep_snapshot && key && *key) {
                int r = snapshot_overlay_remove(s->sn, key, &e);
                if (r < 0 && r != -ENOENT) {
                        berr_prefix(&e, "container \"%s\": snapshot", req->id);
                        goto fail;
                }
        }
        if (container_store_remove(supervisor_tasks_containers(s), req->id, &e) < 0)
                goto fail;
        supervisor_tasks_unlock_containers(s);
        publish_container(s, "/containers/delete", req->id, json_string_value(json_object_get(rec, "image")));
        Berth__Supervisor__DeleteContainerResponse resp = BERTH__SUPERVISOR__DELETE_CONTAINER_RESPONSE__INIT;
        rpc_call_reply(call, &resp.base);
        return;
fail:
        supervisor_tasks_unlock_containers(s);
        supervisor_fail(call, -e.err, &e);
}

void container_service_delete(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        supervisor_defer(call, request, userdata, h_container_delete_slow);
}

/* Containers whose create a crash interrupted. */
void container_service_recover(struct supervisor *s)
{
                _cleanup_json_ json_t *all = NULL;
        struct berr e = { 0 };
        if (container_store_list(supervisor_tasks_containers(s), &all, &e) < 0) {
                log_warn("supervisor: %s", e.msg);
                return;
        }
        size_t i;
        json_t *rec;
        json_array_foreach(all, i, rec) {
                const char *id = json_string_value(json_object_get(rec, "id"));
                const char *state = json_string_value(json_object_get(rec, "state"));
                if (!id || !state || strcmp(state, "creating") != 0)
                        continue;
                const char *key = json_string_value(json_object_get(rec, "snapshot_key"));
                int r = snapshot_overlay_remove(s->sn, str_or(key, id), &e);
                if (r < 0 && r != -ENOENT) {
                        log_warn("supervisor: container \"%s\" (half-created): %s", id, e.msg);
                        continue;
                }
                container_store_remove(supervisor_tasks_containers(s), id, NULL);
                log_info("supervisor: container \"%s\": rolled back a create that did not finish", id);
        }
}


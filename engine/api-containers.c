/* The container endpoints: create, start, wait, attach, logs, list,
 * inspect, stop, kill, restart, pause, unpause, resize, rename, delete,
 * prune, over the supervisor's containers.* and tasks.* methods. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"
#include "engine.h"
#include "filters.h"
#include "json-util.h"
#include "fs-util.h"
#include "image-reference.h"
#include "log.h"
#include "network.h"
#include "oci-spec.h"
#include "supervisor.pb-c.h"
#include "time-util.h"

#define ZERO_TIME "0001-01-01T00:00:00Z"

struct ctr *engine_find_ctr_locked(struct engine *en, struct http_request *r, const char *ref)
{
        bool amb = false;
        struct ctr *c = ctr_find_locked(&en->ctrs, ref, &amb);
        if (!c) {
                if (amb)
                        http_reply_error(r, 400, "multiple IDs found with provided prefix: %s", ref);
                else
                        http_reply_error(r, 404, "No such container: %s", ref);
        }
        return c;
}

static long long unix_of(const char *rfc3339)
{
        struct timespec ts;
        if (!rfc3339 || time_parse_rfc3339(rfc3339, &ts) < 0)
                return 0;
        return (long long) ts.tv_sec;
}

/* A container event with Docker's attributes: image, name, the labels. */
static void ctr_event_locked(struct engine *en, struct ctr *c, const char *action, json_t *extra)
{
        json_t *cfg = json_object_get(c->doc, "Config");
        json_t *labels = json_object_get(cfg, "Labels");
        json_t *attrs = json_is_object(labels) ? json_deep_copy(labels) : json_object();
        json_object_set_new(attrs, "image", json_string(json_string_value(json_object_get(cfg, "Image")) ?: ""));
        json_object_set_new(attrs, "name", json_string(ctr_short_name(c)));
        if (extra) {
                json_object_update(attrs, extra);
                json_decref(extra);
        }
        engine_event(en, "container", action, c->id, attrs);
}

/* ---- calls to the supervisor's tasks ---- */

static int task_call(struct engine *en, const char *method, const ProtobufCMessage *req,
                     const ProtobufCMessageDescriptor *reply_type, int timeout_ms, ProtobufCMessage **ret,
                     struct rpc_status *st)
{
        ProtobufCMessage *rep = NULL;
        int r = engine_call(en, method, req, reply_type, timeout_ms, &rep, st);
        if (r < 0)
                return r;
        if (ret)
                *ret = rep;
        else
                protobuf_c_message_free_unpacked(rep, NULL);
        return 0;
}

static int task_delete(struct engine *en, const char *id, bool force, struct rpc_status *st)
{
        Berth__Supervisor__DeleteTaskRequest req = BERTH__SUPERVISOR__DELETE_TASK_REQUEST__INIT;
        req.id = (char *) id;
        req.force = force;
        return task_call(en, "tasks.DeleteTask", &req.base, &berth__supervisor__delete_task_response__descriptor,
                         ENGINE_CALL_TIMEOUT_MS, NULL, st);
}

static int task_kill(struct engine *en, const char *id, int sig, bool all, struct rpc_status *st)
{
        Berth__Supervisor__KillTaskRequest req = BERTH__SUPERVISOR__KILL_TASK_REQUEST__INIT;
        req.id = (char *) id;
        req.signal = (uint32_t) sig;
        req.all = all;
        return task_call(en, "tasks.KillTask", &req.base, &berth__supervisor__kill_task_response__descriptor,
                         ENGINE_CALL_TIMEOUT_MS, NULL, st);
}

static int task_get(struct engine *en, const char *id, Berth__Supervisor__GetTaskResponse **ret,
                    struct rpc_status *st)
{
        Berth__Supervisor__GetTaskRequest req = BERTH__SUPERVISOR__GET_TASK_REQUEST__INIT;
        req.id = (char *) id;
        return task_call(en, "tasks.GetTask", &req.base, &berth__supervisor__get_task_response__descriptor,
                         ENGINE_CALL_TIMEOUT_MS, (ProtobufCMessage **) ret, st);
}

/* ---- exits ---- */

struct watch {
        struct engine *en;
        struct ctr *c;
        unsigned generation;
};

static void remove_container_locked(struct engine *en, struct ctr *c);
static int start_locked(struct engine *en, struct ctr *c, char *err, size_t errlen, unsigned *ret_status);
static void schedule_restart_locked(struct engine *en, struct ctr *c);

/* ---- restart policies ---- */

static const char *restart_policy(struct ctr *c, long long *ret_max)
{
        json_t *rp = json_object_get(json_object_get(c->doc, "HostConfig"), "RestartPolicy");
        if (ret_max)
                *ret_max = json_integer_value(json_object_get(rp, "MaximumRetryCount"));
        const char *n = json_string_value(json_object_get(rp, "Name"));
        return n && *n ? n : "no";
}

static bool manually_stopped(struct ctr *c)
{
        return json_is_true(json_object_get(c->doc, "HasBeenManuallyStopped"));
}

/* Docker's rules: always and unless-stopped restart unless the user
 * stopped the container; on-failure[:max] after a non-zero exit, at most
 * max times. */
static bool should_restart_locked(struct ctr *c, int code)
{
        long long max = 0;
        const char *p = restart_policy(c, &max);
        if (c->stopping || manually_stopped(c))
                return false;
        if (!strcmp(p, "always") || !strcmp(p, "unless-stopped"))
                return true;
        if (!strcmp(p, "on-failure"))
                return code != 0 &&
                       (max <= 0 || json_integer_value(json_object_get(c->doc, "RestartCount")) < max);
        return false;
}

struct restart {
        struct engine *en;
        struct ctr *c;
        unsigned generation;
        unsigned delay_ms;
};

static void *restart_thread(void *arg)
{
        struct restart *rs = arg;
        struct engine *en = rs->en;
        struct timespec d = { rs->delay_ms / 1000, (long) (rs->delay_ms % 1000) * 1000000 };
        nanosleep(&d, NULL);
        pthread_mutex_lock(&en->ctrs.lock);
        struct ctr *c = rs->c;
        /* still waiting to restart: not removed, started or stopped meanwhile */
        if (!c->removed && c->generation == rs->generation && !strcmp(ctr_status(c), "restarting") &&
            !c->stopping && !manually_stopped(c)) {
                json_object_set_new(c->doc, "RestartCount",
                                    json_integer(json_integer_value(json_object_get(c->doc, "RestartCount")) + 1));
                char err[RPC_MESSAGE_MAX];
                unsigned status;
                if (start_locked(en, c, err, sizeof(err), &status) < 0) {
                        log_warn("engine: restarting %s: %s", c->id, err);
                        if (should_restart_locked(c, 128))
                                schedule_restart_locked(en, c);
                        ctr_save_state_locked(&en->ctrs, c);
                } else {
                        ctr_event_locked(en, c, "restart", NULL);
                }
        }
        pthread_mutex_unlock(&en->ctrs.lock);
        free(rs);
        return NULL;
}

static void schedule_restart_locked(struct engine *en, struct ctr *c)
{
        /* the backoff: 100 ms, doubling up to a minute; reset after a run of
         * at least 10 s */
        json_t *st = json_object_get(c->doc, "State");
        struct timespec a, b;
        if (time_parse_rfc3339(json_string_value(json_object_get(st, "StartedAt")) ?: "", &a) == 0 &&
            time_parse_rfc3339(json_string_value(json_object_get(st, "FinishedAt")) ?: "", &b) == 0 &&
            b.tv_sec - a.tv_sec >= 10)
                c->restart_delay_ms = 0;
        c->restart_delay_ms = c->restart_delay_ms ? c->restart_delay_ms * 2 : 100;
        if (c->restart_delay_ms > 60000)
                c->restart_delay_ms = 60000;
        struct restart *rs = malloc(sizeof(*rs));
        if (!rs)
                return;
        *rs = (struct restart) { en, c, c->generation, c->restart_delay_ms };
        ctr_set_status(c, "restarting");
        if (engine_spawn(restart_thread, rs, 128) != 0) {
                free(rs);
                ctr_set_status(c, "exited");
        }
}

/* ---- purges ---- */

/* What a removed container still holds: its container (and snapshot) in
 * the supervisor, a task left there if any, then its moved directory,
 * which stays for the next engine to retry while the supervisor cannot be
 * reached. */
static void purge(struct engine *en, const char *id)
{
        struct rpc_status st;
        Berth__Supervisor__DeleteContainerRequest req = BERTH__SUPERVISOR__DELETE_CONTAINER_REQUEST__INIT;
        req.id = (char *) id;
        int r = task_call(en, "containers.DeleteContainer", &req.base,
                          &berth__supervisor__delete_container_response__descriptor, ENGINE_CALL_TIMEOUT_MS, NULL, &st);
        if (r < 0 && st.code == RPC_FAILED_PRECONDITION) {
                /* a task is left: it goes first */
                (void) task_delete(en, id, true, NULL);
                r = task_call(en, "containers.DeleteContainer", &req.base,
                              &berth__supervisor__delete_container_response__descriptor, ENGINE_CALL_TIMEOUT_MS, NULL,
                              &st);
        }
        if (r < 0 && st.code != RPC_NOT_FOUND) {
                log_warn("engine: removing %s in the supervisor: %s", id, st.message);
                return;
        }
        ctr_purge_dir(&en->ctrs, id);
}

struct purge_job {
        struct engine *en;
        char id[65];
};

static void *purge_thread(void *arg)
{
        struct purge_job *j = arg;
        purge(j->en, j->id);
        pthread_mutex_lock(&j->en->ctrs.lock);
        j->en->ctrs.purging--;
        pthread_cond_broadcast(&j->en->ctrs.changed);
        pthread_mutex_unlock(&j->en->ctrs.lock);
        free(j);
        return NULL;
}

/* Purges id behind the caller's back (engine_purges_wait waits for it);
 * on a thread of its own, or here (the lock dropped meanwhile) when none
 * can be had. */
static void purge_spawn_locked(struct engine *en, const char *id)
{
        struct purge_job *j = malloc(sizeof(*j));
        if (j) {
                j->en = en;
                snprintf(j->id, sizeof(j->id), "%s", id);
                en->ctrs.purging++;
                if (engine_spawn(purge_thread, j, 128) == 0)
                        return;
                en->ctrs.purging--;
                free(j);
        }
        pthread_mutex_unlock(&en->ctrs.lock);
        purge(en, id);
        pthread_mutex_lock(&en->ctrs.lock);
}

void engine_ctr_settle_locked(struct engine *en, struct ctr *c)
{
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += ENGINE_CALL_TIMEOUT_MS / 1000;
        while (c->exiting && !c->removed && pthread_cond_timedwait(&en->ctrs.changed, &en->ctrs.lock, &dl) == 0)
                ;
}

void engine_purges_wait(struct engine *en)
{
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += ENGINE_CALL_TIMEOUT_MS / 1000;
        pthread_mutex_lock(&en->ctrs.lock);
        while (en->ctrs.purging > 0 && pthread_cond_timedwait(&en->ctrs.changed, &en->ctrs.lock, &dl) == 0)
                ;
        pthread_mutex_unlock(&en->ctrs.lock);
}

/* The task's process has exited (code), or the task is gone (code < 0). */
static void on_exit_locked(struct engine *en, struct ctr *c, int code, bool oom, const char *at, const char *why)
{
        struct rpc_status st;
        if ((strcmp(ctr_status(c), "running") && strcmp(ctr_status(c), "paused")) || c->exiting)
                return;
        /* The exit is visible (wait, die, --rm's removal) as soon as the
         * network is released, so that an address or port the next
         * container asks for is free. The shim and the rootfs are released
         * behind it, as dockerd deletes the task at exit; until that is
         * done c->exiting holds a start back and the container's purge. */
        c->exiting = true;
        pthread_mutex_unlock(&en->ctrs.lock);
        net_container_detach(en, c);
        pthread_mutex_lock(&en->ctrs.lock);
        ctr_set_exited(c, code < 0 ? 255 : code, oom, at, why);
        char cs[16];
        snprintf(cs, sizeof(cs), "%d", code < 0 ? 255 : code);
        if (oom)
                ctr_event_locked(en, c, "oom", NULL);
        ctr_event_locked(en, c, "die", json_pack("{s:s}", "exitCode", cs));
        c->task = false;
        if (!c->removed && should_restart_locked(c, code < 0 ? 255 : code))
                schedule_restart_locked(en, c);
        ctr_save_state_locked(&en->ctrs, c);
        pthread_cond_broadcast(&en->ctrs.changed);
        if (json_is_true(json_object_get(json_object_get(c->doc, "HostConfig"), "AutoRemove")) && !c->removed)
                remove_container_locked(en, c);
        pthread_mutex_unlock(&en->ctrs.lock);
        if (task_delete(en, c->id, true, &st) < 0 && st.code != RPC_NOT_FOUND)
                log_warn("engine: deleting the task of %s: %s", c->id, st.message);
        pthread_mutex_lock(&en->ctrs.lock);
        c->exiting = false;
        pthread_cond_broadcast(&en->ctrs.changed);
        if (c->removed)
                purge_spawn_locked(en, c->id);
}

static void *watch_thread(void *arg)
{
        struct watch *w = arg;
        struct engine *en = w->en;
        Berth__Supervisor__WaitTaskRequest req = BERTH__SUPERVISOR__WAIT_TASK_REQUEST__INIT;
        req.id = w->c->id;
        Berth__Supervisor__WaitTaskResponse *rep = NULL;
        struct rpc_status st;
        int r;
        /* the supervisor may be restarting: ask again until it answers */
        for (;;) {
                r = task_call(en, "tasks.WaitTask", &req.base, &berth__supervisor__wait_task_response__descriptor,
                              RPC_NO_TIMEOUT, (ProtobufCMessage **) &rep, &st);
                if (r == 0 || st.code != RPC_UNAVAILABLE)
                        break;
                sleep(1);
        }
        pthread_mutex_lock(&en->ctrs.lock);
        if (w->c->generation == w->generation && !w->c->removed) {
                if (r == 0)
                        on_exit_locked(en, w->c, (int) rep->exit_code, rep->oom_killed, rep->exited_at,
                                       rep->exit_reason && *rep->exit_reason ? rep->exit_reason : NULL);
                else
                        on_exit_locked(en, w->c, -1, false, NULL, st.message);
        }
        pthread_mutex_unlock(&en->ctrs.lock);
        if (rep)
                protobuf_c_message_free_unpacked(&rep->base, NULL);
        free(w);
        return NULL;
}

void engine_watch_task(struct engine *en, struct ctr *c)
{
        struct watch *w = malloc(sizeof(*w));
        if (!w)
                return;
        *w = (struct watch) { en, c, c->generation };
        if (engine_spawn(watch_thread, w, 128) != 0) {
                log_error("engine: no thread to watch %s", c->id);
                free(w);
        }
}

/* ---- create ---- */

static bool all_digits(const char *s)
{
        return *s && strspn(s, "0123456789") == strlen(s);
}

/* hostname, hosts, resolv.conf: derived from the container's record,
 * which is written durably; these are atomic (a kill -9 leaves the old or
 * the new file) but not fsynced */
static int write_file(const char *dir, const char *name, const char *content, char **ret_path)
{
        if (asprintf(ret_path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        return fs_write_atomic_ex(*ret_path, content, strlen(content), 0644, 0);
}

/* /etc/resolv.conf for a container: --dns servers, else the host's
 * without loopback servers (they mean nothing in another network
 * namespace). */
static char *resolv_conf(json_t *hc)
{
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        if (!f)
                return NULL;
        json_t *dns = json_object_get(hc, "Dns");
        size_t i;
        json_t *v;
        if (json_array_size(dns)) {
                json_array_foreach(dns, i, v) fprintf(f, "nameserver %s\n", json_string_value(v) ?: "");
        } else {
                _cleanup_free_ char *host = NULL;
                size_t n;
                if (fs_read_file("/etc/resolv.conf", 65536, &host, &n) == 0) {
                        for (char *line = strtok(host, "\n"); line; line = strtok(NULL, "\n")) {
                                if (!strncmp(line, "nameserver", 10) &&
                                    (strstr(line, " 127.") || strstr(line, " ::1")))
                                        continue;
                                fprintf(f, "%s\n", line);
                        }
                }
        }
        json_array_foreach(json_object_get(hc, "DnsSearch"), i, v)
                fprintf(f, "search %s\n", json_string_value(v) ?: "");
        json_array_foreach(json_object_get(hc, "DnsOptions"), i, v)
                fprintf(f, "options %s\n", json_string_value(v) ?: "");
        fclose(f);
        return out;
}

static char *hosts_file(const char *hostname, json_t *hc)
{
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        if (!f)
                return NULL;
        fprintf(f, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                   "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
                   "ff02::2\tip6-allrouters\n");
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(hc, "ExtraHosts"), i, v)
        {
                /* "name:ip" */
                const char *s = json_string_value(v) ?: "";
                const char *colon = strchr(s, ':');
                if (colon)
                        fprintf(f, "%s\t%.*s\n", colon + 1, (int) (colon - s), s);
        }
        (void) hostname;
        fclose(f);
        return out;
}

/* Docker's error when a create cannot go on; 400 for the user's input. */
static enum MHD_Result create_fail(struct engine *en, struct http_request *r, struct ctr *c, unsigned status,
                                   const char *msg)
{
        pthread_mutex_lock(&en->ctrs.lock);
        ctr_remove_locked(&en->ctrs, c);
        pthread_mutex_unlock(&en->ctrs.lock);
        ctr_purge_dir(&en->ctrs, c->id);
        engine_volumes_release(en, c->id, true);
        return http_reply_error(r, status, "%s", msg);
}

static enum MHD_Result container_create(struct http_request *r)
{
        struct engine *en = r->engine;
        json_t *body = NULL;
        if (http_body_json(r, false, &body) < 0)
                return MHD_YES;
        const char *image = json_string_value(json_object_get(body, "Image"));
        if (!image || !*image) {
                json_decref(body);
                return http_reply_error(r, 400, "Config cannot be empty in order to create a container");
        }
        json_t *hc = json_object_get(body, "HostConfig");
        if (hc && !json_is_object(hc)) {
                json_decref(body);
                return http_reply_error(r, 400, "HostConfig must be an object");
        }
        hc = hc ? json_deep_copy(hc) : json_object();
        /* what inspect shows for fields the client left out, as dockerd */
        json_t *defaults = json_pack("{s:{s:s, s:{}}, s:s, s:{s:s, s:i}, s:b, s:{}, s:b, s:b, s:s, s:I, s:I, s:s}",
                                     "LogConfig", "Type", "json-file", "Config", "NetworkMode", "default",
                                     "RestartPolicy", "Name", "no", "MaximumRetryCount", 0, "AutoRemove", 0,
                                     "PortBindings", "Privileged", 0, "ReadonlyRootfs", 0, "IpcMode", "private",
                                     "Memory", (json_int_t) 0, "NanoCpus", (json_int_t) 0, "CgroupnsMode", "host");
        json_object_update_missing(hc, defaults);
        json_decref(defaults);
        if (!strcmp(json_string_value(json_object_get(json_object_get(hc, "LogConfig"), "Type")) ?: "", ""))
                json_object_set_new(json_object_get(hc, "LogConfig"), "Type", json_string("json-file"));
        const char *log_driver = json_string_value(json_object_get(json_object_get(hc, "LogConfig"), "Type"));
        if (!log_driver || strcmp(log_driver, "json-file")) {
                json_decref(body);
                json_decref(hc);
                return http_reply_error(r, 400, "logging driver \"%s\" is not supported (json-file only)",
                                        log_driver ? log_driver : "");
        }
        const char *policy = json_string_value(json_object_get(json_object_get(hc, "RestartPolicy"), "Name"));
        if (policy && *policy && strcmp(policy, "no") && strcmp(policy, "always") && strcmp(policy, "unless-stopped") &&
            strcmp(policy, "on-failure")) {
                json_decref(body);
                json_decref(hc);
                return http_reply_error(r, 400, "invalid restart policy '%s'", policy);
        }
        if (policy && *policy && strcmp(policy, "no") && json_is_true(json_object_get(hc, "AutoRemove"))) {
                json_decref(body);
                json_decref(hc);
                return http_reply_error(r, 400, "Conflicting options: --restart and --rm");
        }

        /* the runtime: the supervisor's own default unless one is named
         * (docker run --runtime, or default-runtime in the config file) */
        const char *runtime = json_string_value(json_object_get(hc, "Runtime"));
        const char *runtime_path = "";
        if ((runtime && *runtime) || en->cfg.default_runtime) {
                runtime_path = berth_config_runtime_path(&en->cfg, runtime);
                if (!runtime_path) {
                        enum MHD_Result res = http_reply_error(r, 400, "Unknown runtime specified %s", runtime);
                        json_decref(body);
                        json_decref(hc);
                        return res;
                }
        }
        json_object_set_new(hc, "Runtime",
                            json_string(runtime && *runtime ? runtime
                                                            : en->cfg.default_runtime ? en->cfg.default_runtime
                                                                                      : "ocirun"));

        /* the image */
        struct image_ref ref;
        Berth__Supervisor__GetImageRequest greq = BERTH__SUPERVISOR__GET_IMAGE_REQUEST__INIT;
        greq.name = (char *) image;
        Berth__Supervisor__GetImageResponse *g = NULL;
        struct rpc_status st;
        if (engine_call(en, "images.GetImage", &greq.base, &berth__supervisor__get_image_response__descriptor,
                        ENGINE_CALL_TIMEOUT_MS, (ProtobufCMessage **) &g, &st) < 0) {
                enum MHD_Result res;
                if (st.code == RPC_NOT_FOUND || st.code == RPC_INVALID_ARGUMENT) {
                        char norm[IMAGE_REF_STRING_MAX] = "";
                        if (image_ref_parse(image, &ref, NULL) == 0)
                                image_ref_string(&ref, norm, sizeof(norm));
                        res = http_reply_error(r, 404, "No such image: %s", *norm ? engine_familiar_name(norm) : image);
                } else {
                        res = engine_reply_rpc_error(r, &st);
                }
                json_decref(body);
                json_decref(hc);
                return res;
        }
        json_t *icfg_doc = json_loadb((const char *) g->config_json.data, g->config_json.len, 0, NULL);
        json_t *icfg = json_object_get(icfg_doc, "config");
        _cleanup_free_ char *image_name = strdup(g->image->name);
        _cleanup_free_ char *image_id = strdup(g->image->config_digest);
        protobuf_c_message_free_unpacked(&g->base, NULL);

        /* the record */
        json_t *config = json_deep_copy(body);
        json_object_del(config, "HostConfig");
        json_decref(body);
        char now[64];
        json_t *doc = json_pack("{s:s, s:s, s:O, s:O, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:n, s:[]}",
                                "Created", time_now_rfc3339_nano(now, sizeof(now)), "Image", image_id, "Config",
                                config, "HostConfig", hc, "Driver", engine_storage_driver(en), "RestartCount", 0, "Platform",
                                "linux", "MountLabel", "", "ProcessLabel", "", "AppArmorProfile", "", "ImageName",
                                image_name, "LogPath", "", "ExecIDs", "Mounts");
        const char *name = http_query(r, "name");
        struct ctr *c = NULL;
        pthread_mutex_lock(&en->ctrs.lock);
        int rc = ctr_add_locked(&en->ctrs, name, doc, &c);
        pthread_mutex_unlock(&en->ctrs.lock);
        if (rc < 0) {
                json_decref(config);
                json_decref(hc);
                json_decref(icfg_doc);
                if (rc == -EINVAL)
                        return http_reply_error(r, 400,
                                                "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are "
                                                "allowed",
                                                name);
                if (rc == -EEXIST)
                        return http_reply_error(r, 409,
                                                "Conflict. The container name \"/%s\" is already in use by "
                                                "another container. You have to remove (or rename) that "
                                                "container to be able to reuse that name.",
                                                name ? name : "");
                return http_reply_error(r, 500, "engine: creating the container's record: %s", strerror(-rc));
        }
        ctr_set_status(c, "created");
        json_t *state = json_object_get(c->doc, "State");
        json_object_set_new(state, "Pid", json_integer(0));
        json_object_set_new(state, "ExitCode", json_integer(0));
        json_object_set_new(state, "OOMKilled", json_false());
        json_object_set_new(state, "Error", json_string(""));
        json_object_set_new(state, "StartedAt", json_string(ZERO_TIME));
        json_object_set_new(state, "FinishedAt", json_string(ZERO_TIME));

        /* hostname, user, files */
        char hostname[256];
        const char *h = json_string_value(json_object_get(config, "Hostname"));
        const char *netmode = json_string_value(json_object_get(hc, "NetworkMode")) ?: "default";
        bool host_net = !strcmp(netmode, "host");
        if (h && *h)
                snprintf(hostname, sizeof(hostname), "%s", h);
        else if (host_net)
                gethostname(hostname, sizeof(hostname) - 1);
        else
                snprintf(hostname, sizeof(hostname), "%.12s", c->id);
        const char *user = json_string_value(json_object_get(config, "User"));
        if (!user || !*user)
                user = json_string_value(json_object_get(icfg, "User"));
        int uid = 0, gid = 0;
        const char *user_name = NULL;
        if (user && *user) {
                char u[256];
                snprintf(u, sizeof(u), "%s", user);
                char *g2 = strchr(u, ':');
                if (g2)
                        *g2++ = '\0';
                if (all_digits(u) && (!g2 || all_digits(g2))) {
                        uid = atoi(u);
                        gid = g2 ? atoi(g2) : 0;
                } else {
                        user_name = user;
                }
        }
        _cleanup_free_ char *hostname_path = NULL, *hosts_path = NULL, *resolv_path = NULL;
        _cleanup_free_ char *hn = NULL, *hosts = hosts_file(hostname, hc), *resolv = resolv_conf(hc);
        if (asprintf(&hn, "%s\n", hostname) < 0 || !hosts || !resolv ||
            write_file(c->dir, "hostname", hn, &hostname_path) < 0 || write_file(c->dir, "hosts", hosts, &hosts_path) < 0 ||
            write_file(c->dir, "resolv.conf", resolv, &resolv_path) < 0) {
                json_decref(config);
                json_decref(hc);
                json_decref(icfg_doc);
                return create_fail(en, r, c, 500, "engine: writing the container's hostname, hosts and resolv.conf");
        }

        _cleanup_free_ char *netns = NULL;
        {
                int hn_i = 0;
                char nerr[512];
                int nr = net_container_prepare(en, c, hc, json_object_get(config, "NetworkingConfig"), &netns, &hn_i,
                                               nerr, sizeof(nerr));
                json_object_del(config, "NetworkingConfig");
                if (nr < 0) {
                        json_decref(config);
                        json_decref(hc);
                        json_decref(icfg_doc);
                        return create_fail(en, r, c, net_http_status(nr), nerr);
                }
                host_net = hn_i;
        }

        const char *init_path = NULL;
        if (json_is_true(json_object_get(hc, "Init"))) {
                if (!en->init_path || access(en->init_path, X_OK) < 0) {
                        json_decref(config);
                        json_decref(hc);
                        json_decref(icfg_doc);
                        return create_fail(en, r, c, 500, "engine: --init: no berth-init binary (see --init-path)");
                }
                init_path = en->init_path;
        }
        struct oci_spec_ctx x = {
                .init_path = init_path,
                .id = c->id,
                .data_root = en->data_root,
                .hostname = hostname,
                .hostname_file = hostname_path,
                .hosts_file = host_net ? "/etc/hosts" : hosts_path,
                .resolv_conf = host_net ? "/etc/resolv.conf" : resolv_path,
                .netns_path = netns,
                .host_network = host_net,
                .uid = uid,
                .gid = gid,
                .user_name = user_name,
        };
        json_t *spec = NULL;
        char err[1024];
        if (oci_spec_build(&x, config, hc, icfg, &spec, err, sizeof(err)) < 0) {
                json_decref(config);
                json_decref(hc);
                json_decref(icfg_doc);
                return create_fail(en, r, c, 400, err);
        }
        /* the volumes: created or referenced before the container is */
        int vr = engine_volumes_attach(en, c->id, x.volumes_out, err, sizeof(err));
        if (vr >= 0) {
                json_t *copy = json_array();
                size_t vi;
                json_t *vp;
                json_array_foreach(x.volumes_out, vi, vp) if (json_is_true(json_object_get(vp, "Copy")))
                        json_array_append_new(copy, json_pack("{s:O, s:O}", "Name", json_object_get(vp, "Name"),
                                                              "Destination", json_object_get(vp, "Destination")));
                pthread_mutex_lock(&en->ctrs.lock);
                json_object_set_new(c->doc, "Mounts", x.mounts_out);
                if (json_array_size(copy))
                        json_object_set(c->doc, "BerthCopyUp", copy);
                pthread_mutex_unlock(&en->ctrs.lock);
                json_decref(copy);
        } else {
                json_decref(x.mounts_out);
        }
        json_decref(x.volumes_out);
        if (vr < 0) {
                json_decref(spec);
                json_decref(config);
                json_decref(hc);
                json_decref(icfg_doc);
                return create_fail(en, r, c, vr == -EINVAL ? 400 : 500, err);
        }

        /* what inspect shows: the command and the config merged with the image's */
        json_t *args = json_object_get(json_object_get(spec, "process"), "args");
        json_object_set_new(c->doc, "Path", json_string(json_string_value(json_array_get(args, 0)) ?: ""));
        json_t *rest = json_array();
        for (size_t i = 1; i < json_array_size(args); i++)
                json_array_append(rest, json_array_get(args, i));
        json_object_set_new(c->doc, "Args", rest);
        json_t *dconf = json_object_get(c->doc, "Config");
        json_object_set(dconf, "Env", json_object_get(json_object_get(spec, "process"), "env"));
        if (!json_is_array(json_object_get(dconf, "Cmd")) && !json_is_array(json_object_get(dconf, "Entrypoint")))
                json_object_set_new(dconf, "Cmd", json_ref_or(json_object_get(icfg, "Cmd"), json_null()));
        if (!json_is_array(json_object_get(dconf, "Entrypoint")))
                json_object_set_new(dconf, "Entrypoint", json_ref_or(json_object_get(icfg, "Entrypoint"), json_null()));
        json_object_set_new(dconf, "Hostname", json_string(hostname));
        json_object_set_new(dconf, "WorkingDir",
                            json_string(json_string_value(json_object_get(json_object_get(spec, "process"), "cwd"))));
        json_t *ilabels = json_object_get(icfg, "Labels");
        json_t *labels = json_is_object(ilabels) ? json_deep_copy(ilabels) : json_object();
        json_object_update(labels, json_object_get(config, "Labels"));
        json_object_set_new(dconf, "Labels", labels);
        if (!json_string_value(json_object_get(dconf, "StopSignal")) && json_object_get(icfg, "StopSignal"))
                json_object_set(dconf, "StopSignal", json_object_get(icfg, "StopSignal"));
        json_object_set_new(c->doc, "HostnamePath", json_string(hostname_path));
        json_object_set_new(c->doc, "HostsPath", json_string(hosts_path));
        json_object_set_new(c->doc, "ResolvConfPath", json_string(resolv_path));
        _cleanup_free_ char *log_path = NULL;
        if (asprintf(&log_path, "%s/%s-json.log", c->dir, c->id) < 0)
                log_path = NULL;
        json_object_set_new(c->doc, "LogPath", json_string(log_path ? log_path : ""));
        json_object_set_new(c->doc, "GraphDriver", json_pack("{s:s, s:{}}", "Name", engine_storage_driver(en), "Data"));

        /* the supervisor's container: the snapshot and the spec */
        _cleanup_free_ char *spec_s = json_dumps(spec, JSON_COMPACT);
        json_decref(spec);
        Berth__Supervisor__Container sc = BERTH__SUPERVISOR__CONTAINER__INIT;
        sc.id = c->id;
        sc.image = image_name;
        sc.spec_json.data = (uint8_t *) spec_s;
        sc.spec_json.len = spec_s ? strlen(spec_s) : 0;
        sc.log_path = log_path ? log_path : "";
        json_t *lc = json_object_get(hc, "LogConfig");
        json_t *lopts = json_object_get(lc, "Config");
        const char *lk;
        json_t *lv;
        char *opts[8];
        char optbuf[8][300];
        size_t n_opts = 0;
        json_object_foreach(lopts, lk, lv)
        {
                if (n_opts == 8)
                        break;
                snprintf(optbuf[n_opts], sizeof(optbuf[n_opts]), "%s=%s", lk, json_string_value(lv) ?: "");
                opts[n_opts] = optbuf[n_opts];
                n_opts++;
        }
        sc.log_opts = opts;
        sc.n_log_opts = n_opts;
        sc.runtime = (char *) runtime_path;
        Berth__Supervisor__CreateContainerRequest creq = BERTH__SUPERVISOR__CREATE_CONTAINER_REQUEST__INIT;
        creq.container = &sc;
        json_decref(config);
        json_decref(hc);
        json_decref(icfg_doc);
        if (task_call(en, "containers.CreateContainer", &creq.base,
                      &berth__supervisor__create_container_response__descriptor, ENGINE_CALL_TIMEOUT_MS, NULL, &st) < 0) {
                char msg[RPC_MESSAGE_MAX + 32];
                snprintf(msg, sizeof(msg), "%s", st.message);
                return create_fail(en, r, c, engine_http_status(st.code), msg);
        }
        pthread_mutex_lock(&en->ctrs.lock);
        ctr_save_locked(&en->ctrs, c);
        ctr_event_locked(en, c, "create", NULL);
        pthread_mutex_unlock(&en->ctrs.lock);
        return http_reply_json(r, 201, json_pack("{s:s, s:[]}", "Id", c->id, "Warnings"));
}

/* ---- start ---- */

/* The HTTP status for a failed start, as dockerd: the user's command
 * (not found, not executable) is a 400, the rest 500. */
static unsigned start_status(const char *msg)
{
        if (strstr(msg, "executable file not found") || strstr(msg, "no such file or directory") ||
            strstr(msg, "permission denied") || strstr(msg, "is a directory") || strstr(msg, "not a directory"))
                return 400;
        return 500;
}

static int start_locked(struct engine *en, struct ctr *c, char *err, size_t errlen, unsigned *ret_status)
{
        struct rpc_status st;
        json_t *config = json_object_get(c->doc, "Config");
        *ret_status = 500;
        engine_ctr_settle_locked(en, c);
        if (c->removed) {
                snprintf(err, errlen, "No such container: %s", c->id);
                *ret_status = 404;
                return -ENOENT;
        }
        c->stopping = false;
        json_object_set_new(c->doc, "HasBeenManuallyStopped", json_false());
        json_t *copy_up = json_incref(json_object_get(c->doc, "BerthCopyUp"));
        /* Created and started in one call (one runtime command, no
         * StartTask; docs/decisions.md) unless volumes are to be copied
         * into the mounted rootfs first. The attach clients already here
         * (a run or start -a attaches first) see all the output: the shim
         * holds it until they connect. A config that expects a client
         * (AttachStd*) when none is here yet takes two calls, in case its
         * client is on the way. */
        bool expects_attach = json_is_true(json_object_get(config, "AttachStdin")) ||
                              json_is_true(json_object_get(config, "AttachStdout")) ||
                              json_is_true(json_object_get(config, "AttachStderr"));
        bool at_once = !copy_up && (c->attach_pending > 0 || !expects_attach);
        unsigned hold = at_once ? c->attach_pending : 0;
        unsigned gen = c->generation;
        pthread_mutex_unlock(&en->ctrs.lock);
        char nerr[512];
        int nr = net_container_attach(en, c, nerr, sizeof(nerr));
        if (nr < 0) {
                json_decref(copy_up);
                pthread_mutex_lock(&en->ctrs.lock);
                snprintf(err, errlen, "%s", nerr);
                *ret_status = net_http_status(nr);
                ctr_set_exited(c, 128, false, NULL, nerr);
                json_object_set_new(json_object_get(c->doc, "State"), "Status", json_string("created"));
                ctr_save_state_locked(&en->ctrs, c);
                return -EIO;
        }
        Berth__Supervisor__CreateTaskRequest creq = BERTH__SUPERVISOR__CREATE_TASK_REQUEST__INIT;
        creq.id = c->id;
        creq.stdin = json_is_true(json_object_get(config, "OpenStdin"));
        creq.stdin_once = json_is_true(json_object_get(config, "StdinOnce"));
        creq.start = at_once;
        creq.hold_for_attach = hold;
        Berth__Supervisor__CreateTaskResponse *crep = NULL;
        int r = task_call(en, "tasks.CreateTask", &creq.base, &berth__supervisor__create_task_response__descriptor,
                          ENGINE_CALL_TIMEOUT_MS, (ProtobufCMessage **) &crep, &st);
        if (r < 0 && st.code == RPC_ALREADY_EXISTS) {
                /* a task left from an earlier run (one that exited while
                 * no engine watched it): clear it and create again */
                (void) task_delete(en, c->id, true, NULL);
                r = task_call(en, "tasks.CreateTask", &creq.base,
                              &berth__supervisor__create_task_response__descriptor, ENGINE_CALL_TIMEOUT_MS,
                              (ProtobufCMessage **) &crep, &st);
        }
        if (r < 0)
                net_container_detach(en, c);
        if (r == 0 && copy_up && crep->task && crep->task->bundle) {
                /* the rootfs is mounted now, the process not started yet */
                _cleanup_free_ char *rootfs = NULL;
                if (asprintf(&rootfs, "%s/rootfs", crep->task->bundle) >= 0)
                        engine_volumes_copy_up(en, copy_up, rootfs);
        }
        int pid = r == 0 && crep->task ? (int) crep->task->pid : 0;
        if (crep)
                protobuf_c_message_free_unpacked(&crep->base, NULL);
        pthread_mutex_lock(&en->ctrs.lock);
        if (r == 0 && copy_up)
                json_object_del(c->doc, "BerthCopyUp"); /* once, as dockerd copies at create */
        json_decref(copy_up);
        if (r < 0) {
                snprintf(err, errlen, "%s", st.message);
                *ret_status = start_status(st.message);
                ctr_set_exited(c, 128, false, NULL, st.message);
                json_object_set_new(json_object_get(c->doc, "State"), "Status", json_string("created"));
                ctr_save_state_locked(&en->ctrs, c);
                return -EIO;
        }
        c->task = true;
        pthread_cond_broadcast(&en->ctrs.changed);
        /* attach clients that waited for the task connect (before it starts,
         * or before its output is read) */
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 2;
        while (c->attach_ready < c->attach_pending &&
               pthread_cond_timedwait(&en->ctrs.changed, &en->ctrs.lock, &dl) == 0)
                ;
        c->attach_pending = c->attach_ready = 0;
        if (!at_once) {
                gen = c->generation;
                pthread_mutex_unlock(&en->ctrs.lock);
                Berth__Supervisor__StartTaskRequest sreq = BERTH__SUPERVISOR__START_TASK_REQUEST__INIT;
                sreq.id = c->id;
                Berth__Supervisor__StartTaskResponse *srep = NULL;
                r = task_call(en, "tasks.StartTask", &sreq.base, &berth__supervisor__start_task_response__descriptor,
                              ENGINE_CALL_TIMEOUT_MS, (ProtobufCMessage **) &srep, &st);
                if (r < 0) {
                        (void) task_delete(en, c->id, true, NULL);
                        net_container_detach(en, c);
                } else {
                        pid = (int) srep->pid;
                        protobuf_c_message_free_unpacked(&srep->base, NULL);
                }
                pthread_mutex_lock(&en->ctrs.lock);
                if (r < 0) {
                        c->task = false;
                        snprintf(err, errlen, "%s", st.message);
                        *ret_status = start_status(st.message);
                        ctr_set_exited(c, 128, false, NULL, st.message);
                        ctr_save_state_locked(&en->ctrs, c);
                        pthread_cond_broadcast(&en->ctrs.changed);
                        return -EIO;
                }
        }
        if (c->generation == gen)
                ctr_set_running(c, pid);
        ctr_event_locked(en, c, "start", NULL);
        ctr_save_state_locked(&en->ctrs, c);
        pthread_cond_broadcast(&en->ctrs.changed);
        engine_watch_task(en, c);
        return 0;
}

static enum MHD_Result container_start(struct http_request *r)
{
        struct engine *en = r->engine;
        pthread_mutex_lock(&en->ctrs.lock);
        struct ctr *c = engine_find_ctr_locked(en, r, r->params[0]);
        if (!c) {
                pthread_mutex_unlock(&en->ctrs.lock);
                return MHD_YES;
        }
        if (!strcmp(ctr_status(c), "running") || !strcmp(ctr_status(c), "paused")) {
                pthread_mutex_unlock(&en->ctrs.lock);
                return http_reply_empty(r, 304);
        }
        char err[RPC_MESSAGE_MAX];
        unsigned status;
        int rc = start_locked(en, c, err, sizeof(err), &status);
        pthread_mutex_unlock(&en->ctrs.lock);
        if (rc < 0)
                return http_reply_error(r, status, "%s", err);
        return http_reply_empty(r, 204);
}

/* ---- wait ---- */

enum wait_cond { WAIT_NOT_RUNNING, WAIT_NEXT_EXIT, WAIT_REMOVED };

struct waiter {
        struct engine *en;
        struct ctr *c;
        enum wait_cond cond;
        unsigned generation;
        int fd;
};

static void *wait_thread(void *arg)
{
        struct waiter *w = arg;
        struct engine *en = w->en;
        pthread_mutex_lock(&en->ctrs.lock);
        for (;;) {
                bool running = !strcmp(ctr_status(w->c), "running") || !strcmp(ctr_status(w->c), "paused");
                if (w->cond == WAIT_REMOVED && w->c->removed)
                        break;
                if (w->cond == WAIT_NEXT_EXIT && (w->c->generation != w->generation || w->c->removed))
                        break;
                if (w->cond == WAIT_NOT_RUNNING && (!running || w->c->removed))
                        break;
                /* a client that went away needs no answer */
                struct pollfd p = { w->fd, 0, 0 };
                if (poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP)))
                        goto out;
                struct timespec dl;
                clock_gettime(CLOCK_REALTIME, &dl);
                dl.tv_sec += 1;
                pthread_cond_timedwait(&en->ctrs.changed, &en->ctrs.lock, &dl);
        }
        json_t *st = json_object_get(w->c->doc, "State");
        int code = (int) json_integer_value(json_object_get(st, "ExitCode"));
        const char *err = json_string_value(json_object_get(st, "Error"));
        pthread_mutex_unlock(&en->ctrs.lock);
        json_t *j = json_pack("{s:i}", "StatusCode", code);
        json_object_set_new(j, "Error", err && *err ? json_pack("{s:s}", "Message", err) : json_null());
        char *s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (s) {
                size_t n = strlen(s);
                s[n] = '\n';
                (void) fs_write_all(w->fd, s, n + 1);
                free(s);
        }
        close(w->fd);
        free(w);
        return NULL;
out:
        pthread_mutex_unlock(&en->ctrs.lock);
        close(w->fd);
        free(w);
        return NULL;
}

static enum MHD_Result container_wait(struct http_request *r)
{
        struct engine *en = r->engine;
        const char *cond = http_query(r, "condition");
        enum wait_cond wc = WAIT_NOT_RUNNING;
        if (cond && !strcmp(cond, "next-exit"))
                wc = WAIT_NEXT_EXIT;
        else if (cond && !strcmp(cond, "removed"))
                wc = WAIT_REMOVED;
        else if (cond && *cond && strcmp(cond, "not-running"))
                return http_reply_error(r, 400, "invalid condition: \"%s\" (not-running, next-exit or removed)", cond);
        pthread_mutex_lock(&en->ctrs.lock);
        struct ctr *c = engine_find_ctr_locked(en, r, r->params[0]);
        if (!c) {
                pthread_mutex_unlock(&en->ctrs.lock);
                return MHD_YES;
        }
        struct waiter *w = malloc(sizeof(*w));
        if (!w) {
                pthread_mutex_unlock(&en->ctrs.lock);
                return MHD_NO;
        }
        *w = (struct waiter) { en, c, wc, c->generation, -1 };
        pthread_mutex_unlock(&en->ctrs.lock);
        return engine_reply_streamed(r, "application/json", &w->fd, wait_thread, w, 128, free);
}

/* ---- logs ---- */

struct logs {
        struct engine *en;
        struct ctr *c;
        char *path;
        bool follow, out, err, timestamps, tty;
        long long tail;          /* -1: all */
        struct timespec since, until;
        bool has_until;
        int fd;
};

static void logs_free(struct logs *l)
{
        if (l->fd >= 0)
                close(l->fd);
        free(l->path);
        free(l);
}

static void logs_release(void *l)
{
        logs_free(l);
}

/* One json-file line to the client; -EPIPE when the client went away. */
static int logs_line(struct logs *l, const char *line, size_t len)
{
        json_t *j = json_loadb(line, len, 0, NULL);
        if (!j)
                return 0;
        const char *stream = json_string_value(json_object_get(j, "stream")) ?: "stdout";
        const char *text = json_string_value(json_object_get(j, "log")) ?: "";
        size_t tlen = json_string_length(json_object_get(j, "log"));
        const char *time = json_string_value(json_object_get(j, "time")) ?: "";
        bool is_err = !strcmp(stream, "stderr");
        int r = 0;
        char *buf = NULL;
        struct timespec ts = { 0 };
        if (time_parse_rfc3339(time, &ts) == 0) {
                if (ts.tv_sec < l->since.tv_sec ||
                    (ts.tv_sec == l->since.tv_sec && ts.tv_nsec < l->since.tv_nsec))
                        goto out;
                if (l->has_until && (ts.tv_sec > l->until.tv_sec ||
                                     (ts.tv_sec == l->until.tv_sec && ts.tv_nsec > l->until.tv_nsec)))
                        goto out;
        }
        if ((is_err && !l->err) || (!is_err && !l->out))
                goto out;
        size_t plen = l->timestamps ? strlen(time) + 1 : 0;
        size_t total = plen + tlen;
        buf = malloc(8 + total);
        if (!buf) {
                r = -ENOMEM;
                goto out;
        }
        char *p = buf + (l->tty ? 0 : 8);
        if (plen) {
                memcpy(p, time, plen - 1);
                p[plen - 1] = ' ';
        }
        memcpy(p + plen, text, tlen);
        if (!l->tty) {
                buf[0] = is_err ? 2 : 1;
                buf[1] = buf[2] = buf[3] = 0;
                buf[4] = (char) (total >> 24);
                buf[5] = (char) (total >> 16);
                buf[6] = (char) (total >> 8);
                buf[7] = (char) total;
        }
        if (fs_write_all(l->fd, buf, total + (l->tty ? 0 : 8)) < 0)
                r = -EPIPE;
out:
        free(buf);
        json_decref(j);
        return r;
}

/* Copies the container's log to l->fd as the request asked (following it
 * while the container runs when l->follow). */
static void logs_copy(struct logs *l)
{
        struct engine *en = l->en;
        FILE *f = fopen(l->path, "re");
        char *line = NULL;
        size_t cap = 0;
        /* tail: count the lines first */
        long long skip = 0;
        if (f && l->tail >= 0) {
                long long n = 0;
                while (getline(&line, &cap, f) > 0)
                        n++;
                skip = n > l->tail ? n - l->tail : 0;
                rewind(f);
        }
        for (;;) {
                ssize_t n = f ? getline(&line, &cap, f) : -1;
                if (n > 0 && line[n - 1] == '\n') {
                        if (skip > 0) {
                                skip--;
                                continue;
                        }
                        if (logs_line(l, line, (size_t) n) < 0)
                                break;
                        continue;
                }
                /* at the end (a partial line is read again when complete) */
                if (n > 0)
                        fseek(f, -n, SEEK_CUR);
                if (!l->follow)
                        break;
                pthread_mutex_lock(&en->ctrs.lock);
                bool running = !l->c->removed &&
                               (!strcmp(ctr_status(l->c), "running") || !strcmp(ctr_status(l->c), "paused"));
                pthread_mutex_unlock(&en->ctrs.lock);
                if (!running) {
                        /* one last read: what was written before the exit */
                        if (f) {
                                clearerr(f);
                                while ((n = getline(&line, &cap, f)) > 0)
                                        if (logs_line(l, line, (size_t) n) < 0)
                                                break;
                        }
                        break;
                }
                struct pollfd p = { l->fd, 0, 0 };
                if (poll(&p, 1, 100) == 1 && (p.revents & (POLLERR | POLLHUP)))
                        break;
                if (f)
                        clearerr(f);
                else
                        f = fopen(l->path, "re");
        }
        free(line);
        if (f)
                fclose(f);
}

static void *logs_thread(void *arg)
{
        logs_copy(arg);
        logs_free(arg);
        return NULL;
}

static int parse_time_arg(const char *s, struct timespec *ts)
{
        /* unix seconds, with an optional fraction; or RFC 3339 */
        if (!s || !*s)
                return 0;
        char *end;
        double d = strtod(s, &end);
        if (*end == '\0') {
                ts->tv_sec = (time_t) d;
                ts->tv_nsec = (long) ((d - (double) ts->tv_sec) * 1e9);
                return 1;
        }
        return time_parse_rfc3339(s, ts) == 0 ? 1 : -EINVAL;
}

static enum MHD_Result container_logs(struct http_request *r)
{
        struct engine *en = r->engine;
        struct logs *l = calloc(1, sizeof(*l));
        if (!l)
                return MHD_NO;
        l->en = en;
        l->fd = -1;
        l->follow = http_query_bool(r, "follow", false);
        l->out = http_query_bool(r, "stdout", false);
        l->err = http_query_bool(r, "stderr", false);
        l->timestamps = http_query_bool(r, "timestamps", false);
        const char *tail = http_query(r, "tail");
        l->tail = -1;
        if (tail && *tail && strcmp(tail, "all")) {
                char *end;
                l->tail = strtoll(tail, &end, 10);
                if (*end || l->tail < 0)
                        l->tail = -1;
        }
        int su = parse_time_arg(http_query(r, "until"), &l->until);
        l->has_until = su > 0;
        if (parse_time_arg(http_query(r, "since"), &l->since) < 0 || su < 0) {
                logs_free(l);
                return http_reply_error(r, 400, "since and until take unix timestamps or RFC 3339 times");
        }
        if (!l->out && !l->err) {
                logs_free(l);
                return http_reply_error(r, 400, "Bad parameters: you must choose at least one stream");
        }
        pthread_mutex_lock(&en->ctrs.lock);
        struct ctr *c = engine_find_ctr_locked(en, r, r->params[0]);
        if (!c) {
                pthread_mutex_unlock(&en->ctrs.lock);
                logs_free(l);
                return MHD_YES;
        }
        l->c = c;
        l->path = strdup(json_string_value(json_object_get(c->doc, "LogPath")) ?: "");
        l->tty = json_is_true(json_object_get(json_object_get(c->doc, "Config"), "Tty"));
        pthread_mutex_unlock(&en->ctrs.lock);
        return engine_reply_streamed(r, NULL, &l->fd, logs_thread, l, 0, logs_release);
}

/* ---- attach ---- */

static int connect_unix(const char *path)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int e = errno;
                close(fd);
                return -e;
        }
        return fd;
}

int engine_attach_splice(struct engine *en, const char *id, const char *exec_id, int client_fd, const char *extra,
                         size_t extra_len, bool want_stdin, bool want_stdout, bool want_stderr,
                         void (*ready)(void *ud), void *ud)
{
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/shims/%s/attach.sock", en->exec_root, id) < 0)
                return -ENOMEM;
        _cleanup_close_ int s = connect_unix(path);
        if (s < 0) {
                log_debug("engine: attach to %s: %s: %s", id, path, strerror(-s));
                return s;
        }
        json_t *h = json_pack("{s:s, s:b, s:b, s:b}", "exec_id", exec_id ? exec_id : "", "stdin", want_stdin,
                              "stdout", want_stdout, "stderr", want_stderr);
        char *hs = json_dumps(h, JSON_COMPACT);
        json_decref(h);
        if (!hs)
                return -ENOMEM;
        size_t hn = strlen(hs);
        hs[hn] = '\n';
        int r = fs_write_all(s, hs, hn + 1);
        free(hs);
        if (r < 0)
                return r;
        /* the shim's answer: one line */
        char line[1024];
        size_t n = 0;
        while (n < sizeof(line) - 1) {
                ssize_t k = read(s, line + n, 1);
                if (k <= 0)
                        return -EPIPE;
                if (line[n] == '\n')
                        break;
                n++;
        }
        line[n] = '\0';
        json_t *ans = json_loads(line, 0, NULL);
        bool ok = json_is_true(json_object_get(ans, "ok"));
        if (!ok)
                log_debug("engine: attach to %s refused: %s", id, line);
        json_decref(ans);
        if (!ok)
                return -ECONNREFUSED;
        if (ready)
                ready(ud);
        if (want_stdin && extra_len)
                (void) fs_write_all(s, extra, extra_len);

        /* copy both ways until the shim closes (the output has ended) */
        bool client_open = true;
        char buf[32 * 1024];
        for (;;) {
                struct pollfd p[2] = { { s, POLLIN, 0 }, { client_fd, client_open ? POLLIN : 0, 0 } };
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        ssize_t k = read(s, buf, sizeof(buf));
                        if (k <= 0)
                                break;
                        if (fs_write_all(client_fd, buf, (size_t) k) < 0)
                                break;
                }
                if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                        ssize_t k = read(client_fd, buf, sizeof(buf));
                        if (k <= 0) {
                                /* the client's stdin ended: so does the process's, with stdin_once */
                                client_open = false;
                                shutdown(s, SHUT_WR);
                                if (!want_stdout && !want_stderr)
                                        break;
                                continue;
                        }
                        if (want_stdin && fs_write_all(s, buf, (size_t) k) < 0)
                                break;
                }
        }
        return 0;
}

struct attach {
        struct engine *en;
        struct ctr *c;
        bool in, out, err;
        bool logs;            /* logs=1: the log so far first */
        bool stream;          /* stream=1: then the live output */
        bool counted;
        bool readied;
};

static void attach_ready(void *ud)
{
        struct attach *a = ud;
        pthread_mutex_lock(&a->en->ctrs.lock);
        ctr_event_locked(a->en, a->c, "attach", NULL);
        if (a->counted) {
                a->c->attach_ready++;
                a->readied = true;
        }
        pthread_cond_broadcast(&a->en->ctrs.changed);
        pthread_mutex_unlock(&a->en->ctrs.lock);
}

static void attach_run(int fd, const char *extra, size_t extra_len, void *ud)
{
        struct attach *a = ud;
        struct engine *en = a->en;
        if (a->logs) {
                pthread_mutex_lock(&en->ctrs.lock);
                struct logs l = {
                        .en = en,
                        .c = a->c,
                        .path = (char *) (json_string_value(json_object_get(a->c->doc, "LogPath")) ?: ""),
                        .out = a->out,
                        .err = a->err,
                        .tty = json_is_true(json_object_get(json_object_get(a->c->doc, "Config"), "Tty")),
                        .tail = -1,
                        .fd = fd,
                };
                _cleanup_free_ char *path = strdup(l.path);
                l.path = path;
                pthread_mutex_unlock(&en->ctrs.lock);
                if (path)
                        logs_copy(&l);
                if (!a->stream)
                        return;
        }
        pthread_mutex_lock(&en->ctrs.lock);
        /* before start: wait until the task exists */
        if (!a->c->task && !strcmp(ctr_status(a->c), "created")) {
                a->c->attach_pending++;
                a->counted = true;
                while (!a->c->task && !a->c->removed && !strcmp(ctr_status(a->c), "created"))
                        pthread_cond_wait(&en->ctrs.changed, &en->ctrs.lock);
        }
        bool go = a->c->task && !a->c->removed;
        pthread_mutex_unlock(&en->ctrs.lock);
        if (go) {
                int r = engine_attach_splice(en, a->c->id, "", fd, extra, extra_len, a->in, a->out, a->err,
                                             attach_ready, a);
                if (r < 0)
                        log_debug("engine: attach to %s: %s", a->c->id, strerror(-r));
        }
        pthread_mutex_lock(&en->ctrs.lock);
        if (a->counted && !a->readied) {
                /* never connected: do not hold up the start */
                if (a->c->attach_pending)
                        a->c->attach_pending--;
                pthread_cond_broadcast(&en->ctrs.changed);
        }
        pthread_mutex_unlock(&en->ctrs.lock);
}

static enum MHD_Result container_attach(struct http_request *r)
{
        struct engine *en = r->engine;
        pthread_mutex_lock(&en->ctrs.lock);
        struct ctr *c = engine_find_ctr_locked(en, r, r->params[0]);
        if (!c) {
                pthread_mutex_unlock(&en->ctrs.lock);
                return MHD_YES;
        }
        pthread_mutex_unlock(&en->ctrs.lock);
        struct attach *a = calloc(1, sizeof(*a));
        if (!a)
                return MHD_NO;
        a->en = en;
        a->c = c;
        a->in = http_query_bool(r, "stdin", false);
        a->out = http_query_bool(r, "stdout", false);
        a->err = http_query_bool(r, "stderr", false);
        a->logs = http_query_bool(r, "logs", false);
        a->stream = http_query_bool(r, "stream", false);
        return http_hijack(r, "application/vnd.docker.raw-stream", attach_run, a, free);
}

/* ---- list and inspect ---- */

/* "Up 2 seconds", "Exited (0) 6 seconds ago", as Docker words them. */
static void human_duration(long long s, char *buf, size_t len)
{
        if (s < 1)
                snprintf(buf, len, "Less than a second");
        else if (s == 1)
                snprintf(buf, len, "1 second");
        else if (s < 60)
                snprintf(buf, len, "%lld seconds", s);
        else if (s < 120)
                snprintf(buf, len, "About a minute");
        else if (s < 3600)
                snprintf(buf, len, "%lld minutes", s / 60);
        else if (s < 2 * 3600)
                snprintf(buf, len, "About an hour");
        else if (s < 48 * 3600)
                snprintf(buf, len, "%lld hours", s / 3600);
        else
                snprintf(buf, len, "%lld days", s / 86400);
}

static void status_text(struct ctr *c, char *buf, size_t len)
{
        json_t *st = json_object_get(c->doc, "State");
        const char *s = ctr_status(c);
        time_t now = time(NULL);
        char d[64];
        if (!strcmp(s, "running") || !strcmp(s, "paused")) {
                human_duration(now - unix_of(json_string_value(json_object_get(st, "StartedAt"))), d, sizeof(d));
                snprintf(buf, len, "Up %s%s", d, !strcmp(s, "paused") ? " (Paused)" : "");
        } else if (!strcmp(s, "exited")) {
                human_duration(now - unix_of(json_string_value(json_object_get(st, "FinishedAt"))), d, sizeof(d));
                snprintf(buf, len, "Exited (%lld) %s ago", (long long) json_integer_value(json_object_get(st, "ExitCode")),
                         d);
        } else if (!strcmp(s, "created")) {
                snprintf(buf, len, "Created");
        } else {
                snprintf(buf, len, "%c%s", toupper((unsigned char) s[0]), s + 1);
        }
}

/* Path and args as `docker ps` shows them: joined by spaces, an argument
 * with a space in single quotes. */
static json_t *command_text(struct ctr *c)
{
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        if (!f)
                return json_string("");
        fputs(json_string_value(json_object_get(c->doc, "Path")) ?: "", f);
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(c->doc, "Args"), i, v)
        {
                const char *a = json_string_value(v) ?: "";
                if (strchr(a, ' '))
                        fprintf(f, " '%s'", a);
                else
                        fprintf(f, " %s", a);
        }
        fclose(f);
        json_t *j = json_string(out ? out : "");
        free(out);
        return j;
}

/* filters as {"k":{"v":true}} or {"k":["v"]}: calls fn for each value */
static bool filter_any(json_t *filters, const char *key, bool (*fn)(struct ctr *c, const char *v), struct ctr *c)
{
        json_t *f = json_object_get(filters, key);
        if (!f)
                return true;
        const char *k;
        json_t *v;
        size_t i;
        if (json_is_object(f)) {
                json_object_foreach(f, k, v) if (fn(c, k)) return true;
        } else {
                json_array_foreach(f, i, v) if (json_string_value(v) && fn(c, json_string_value(v))) return true;
        }
        return false;
}

static bool f_name(struct ctr *c, const char *v)
{
        regex_t re;
        if (regcomp(&re, v, REG_EXTENDED | REG_NOSUB) != 0)
                return strstr(ctr_name(c), v) != NULL;
        bool m = regexec(&re, ctr_short_name(c), 0, NULL, 0) == 0;
        regfree(&re);
        return m;
}

static bool f_id(struct ctr *c, const char *v)
{
        return !strncmp(c->id, v, strlen(v));
}

static bool f_status(struct ctr *c, const char *v)
{
        return !strcmp(ctr_status(c), v);
}

static bool f_label(struct ctr *c, const char *v)
{
        json_t *labels = json_object_get(json_object_get(c->doc, "Config"), "Labels");
        const char *eq = strchr(v, '=');
        if (!eq)
                return json_object_get(labels, v) != NULL;
        char key[256];
        snprintf(key, sizeof(key), "%.*s", (int) (eq - v), v);
        const char *have = json_string_value(json_object_get(labels, key));
        return have && !strcmp(have, eq + 1);
}

static bool f_exited(struct ctr *c, const char *v)
{
        return !strcmp(ctr_status(c), "exited") &&
               json_integer_value(json_object_get(json_object_get(c->doc, "State"), "ExitCode")) == atoll(v);
}

static bool f_ancestor(struct ctr *c, const char *v)
{
        const char *img = json_string_value(json_object_get(json_object_get(c->doc, "Config"), "Image")) ?: "";
        const char *id = json_string_value(json_object_get(c->doc, "Image")) ?: "";
        return !strcmp(img, v) || !strncmp(id, v, strlen(v)) || (strlen(v) >= 4 && !strncmp(id + 7, v, strlen(v)));
}

static bool label_filter_all(json_t *filters, struct ctr *c)
{
        /* every label filter must match */
        json_t *f = json_object_get(filters, "label");
        const char *k;
        json_t *v;
        size_t i;
        if (json_is_object(f)) {
                json_object_foreach(f, k, v) if (!f_label(c, k)) return false;
        } else {
                json_array_foreach(f, i, v) if (!f_label(c, json_string_value(v) ?: "")) return false;
        }
        return true;
}

/* ps -s: SizeRw and SizeRootFs, computed only when asked (api-archive.c). */
static void add_sizes(struct engine *en, json_t *e, const char *id)
{
        int64_t rw, rootfs;
        if (engine_container_sizes(en, id, &rw, &rootfs) < 0)
                return;
        json_object_set_new(e, "SizeRw", json_integer(rw));
        json_object_set_new(e, "SizeRootFs", json_integer(rootfs));
}

void engine_containers_add_sizes(struct engine *en, json_t *out)
{
        size_t i;
        json_t *e;
        json_array_foreach(out, i, e)
        {
                _cleanup_free_ char *id = strdup(json_string_value(json_object_get(e, "Id")) ?: "");
                if (id)
                        add_sizes(en, e, id);
        }
}

static enum MHD_Result containers_list(struct http_request *r)
{
        struct engine *en = r->engine;
        bool all = http_query_bool(r, "all", false);
        bool ok = true;
        long long limit = http_query_int(r, "limit", -1, &ok);
        json_t *filters = NULL;
        const char *fs = http_query(r, "filters");
        json_error_t jerr;
        if (fs && *fs && !(filters = json_loads(fs, 0, &jerr)))
                return http_reply_error(r, 400, "invalid filters: %s", jerr.text);
        if (json_object_get(filters, "status") || json_object_get(filters, "exited"))
                all = true;
        json_t *out = json_array();
        pthread_mutex_lock(&en->ctrs.lock);
        for (struct ctr *c = en->ctrs.list; c; c = c->next) {
                const char *s = ctr_status(c);
                if (!all && strcmp(s, "running") && strcmp(s, "paused"))
                        continue;
                if (!filter_any(filters, "name", f_name, c) || !filter_any(filters, "id", f_id, c) ||
                    !filter_any(filters, "status", f_status, c) || !label_filter_all(filters, c) ||
                    !filter_any(filters, "exited", f_exited, c) || !filter_any(filters, "ancestor", f_ancestor, c))
                        continue;
                json_array_append_new(out, engine_container_summary_locked(c));
        }
        pthread_mutex_unlock(&en->ctrs.lock);
        json_decref(filters);
        /* newest first, as Docker; the list is kept newest first already */
        if (limit > 0)
                while ((long long) json_array_size(out) > limit)
                        json_array_remove(out, json_array_size(out) - 1);
        if (http_query_bool(r, "size", false))
                engine_containers_add_sizes(en, out);
        return http_reply_json(r, 200, out);
}

json_t *engine_container_summary_locked(struct ctr *c)
{
        const char *s = ctr_status(c);
        char status[128];
        status_text(c, status, sizeof(status));
        json_t *cfg = json_object_get(c->doc, "Config");
        json_t *e = json_pack("{s:s, s:[s], s:s, s:s, s:o, s:I, s:o, s:o, s:s, s:s, s:{s:s}, s:{s:{}}, s:[]}",
                              "Id", c->id, "Names", ctr_name(c), "Image",
                              json_string_value(json_object_get(cfg, "Image")) ?: "", "ImageID",
                              json_string_value(json_object_get(c->doc, "Image")) ?: "", "Command",
                              command_text(c), "Created",
                              (json_int_t) unix_of(json_string_value(json_object_get(c->doc, "Created"))),
                              "Ports", net_ports_summary(c), "Labels", json_ref_or(json_object_get(cfg, "Labels"), json_object()), "State", s,
                              "Status", status, "HostConfig", "NetworkMode",
                              json_string_value(json_object_get(json_object_get(c->doc, "HostConfig"),
                                                                "NetworkMode")) ?: "default",
                              "NetworkSettings", "Networks", "Mounts");
        json_object_set_new(e, "Mounts", json_ref_or(json_object_get(c->doc, "Mounts"), json_array()));
        return e;
}

static enum MHD_Result container_inspect(struct http_request *r)
{
        struct engine *en = r->engine;
        pthread_mutex_lock(&en->ctrs.lock);
        struct ctr *c = engine_find_ctr_locked(en, r, r->params[0]);
        if (!c) {
                pthread_mutex_unlock(&en->ctrs.lock);
                return MHD_YES;
        }
        json_t *doc = json_deep_copy(c->doc);
        pthread_mutex_unlock(&en->ctrs.lock);
        json_object_del(doc, "ImageName");
        json_object_del(doc, "BerthCopyUp");
        if (http_query_bool(r, "size", false))
                add_sizes(en, doc, json_string_value(json_object_get(doc, "Id")) ?: "");
        return http_reply_json(r, 200, doc);
}

/* ---- stop, kill, restart, pause ---- */

static int parse_signal(const char *s, int def)
{
        if (!s || !*s)
                return def;
        if (all_digits(s))
                return atoi(s);
        const char *n = strncasecmp(s, "SIG", 3) ? s : s + 3;
        for (int i = 1; i < NSIG; i++) {
                const char *abbrev = sigabbrev_np(i);
                if (abbrev && !strcasecmp(abbrev, n))
                        return i;
        }
        return -EINVAL;
}

/* Stops c: its stop signal, then SIGKILL after timeout seconds. Called
 * and returns with the lock held. */
static int stop_locked(struct engine *en, struct ctr *c, int timeout, struct rpc_status *st)
{
        json_t *cfg = json_object_get(c->doc, "Config");
        int sig = parse_signal(json_string_value(json_object_get(cfg, "StopSignal")), SIGTERM);
        if (sig <= 0)
                sig = SIGTERM;
        if (timeout < 0) {
                json_t *t = json_object_get(cfg, "StopTimeout");
                timeout = json_is_integer(t) ? (int) json_integer_value(t) : 10;
        }
        c->stopping = true;
        json_object_set_new(c->doc, "HasBeenManuallyStopped", json_true());
        unsigned gen = c->generation;
        bool paused = !strcmp(ctr_status(c), "paused");
        pthread_mutex_unlock(&en->ctrs.lock);
        int r = task_kill(en, c->id, sig, false, st);
        if (paused) {
                Berth__Supervisor__ResumeTaskRequest req = BERTH__SUPERVISOR__RESUME_TASK_REQUEST__INIT;
                req.id = c->id;
                (void) task_call(en, "tasks.ResumeTask", &req.base,
                                 &berth__supervisor__resume_task_response__descriptor, ENGINE_CALL_TIMEOUT_MS, NULL,
                                 NULL);
        }
        pthread_mutex_lock(&en->ctrs.lock);
        if (r < 0 && st->code != RPC_NOT_FOUND)
                return r;
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += timeout;
        while (c->generation == gen && !c->removed &&
               pthread_cond_timedwait(&en->ctrs.changed, &en->ctrs.lock, &dl) == 0)
                ;
        if (c->generation != gen || c->removed)
                return 0;
        pthread_mutex_unlock(&en->ctrs.lock);
        r = task_kill(en, c->id, SIGKILL, true, st);
        pthread_mutex_lock(&en->ctrs.lock);
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 30;
        while (c->generation == gen && !c->removed &&
               pthread_cond_timedwait(&en->ctrs.changed, &en->ctrs.lock, &dl) == 0)
                ;
        if (c->generation == gen && !c->removed)
                return rpc_status_set(st, RPC_DEADLINE_EXCEEDED, "engine: container %s did not exit after SIGKILL",
                                      c->id);
        return 0;
}

static bool is_running(struct ctr *c)
{
        return !strcmp(ctr_status(c), "running") || !strcmp(ctr_status(c), "paused");
}

static enum MHD_Result container_stop(struct http_request *r)
{
        struct engine *en = r->engine;
        bool ok;
        long long t = http_query_int(r, "t", -1, &ok);
        if (!ok)
                return http_reply_error(r, 400, "invalid value for t: %s", http_query(r, "t"));
        pthread_mutex_lock(&en->ctrs.lock);
        struct ctr *c = engine_find_ctr_locked(en, r, r->params[0]);
        if (!c) {
                pthread_mutex_unlock(&en->ctrs.lock);
                return MHD_YES;
        }
        if (!strcmp(ctr_status(c), "restarting")) {
                /* waiting out its backoff: it stays stopped */
                json_object_set_new(c->doc, "HasBeenManuallyStopped", json_true());
                ctr_set_status(c, "exited");
                ctr_save_state_locked(&en->ctrs, c);
                pthread_cond_broadcast(&en->ctrs.changed);
                pthread_mutex_unlock(&en->ctrs.lock);
                return http_reply_empty(r, 204);
        }
        if (!is_running(c)) {
                pthread_mutex_unlock(&en->ctrs.lock);
                return http_reply_empty(r, 304);
        }
        struct rpc_status st;
        int rc = stop_locked(en, c, (int) t, &st);
        if (rc == 0)
                ctr_event_locked(en, c, "stop", NULL);
        pthread_mutex_unlock(&en->ctrs.lock);
        if (rc < 0)
                return engine_reply_rpc_error(r, &st);
        return http_reply_empty(r, 204);
}

static enum MHD_Result container_restart(struct http_request *r)
{
        struct engine *en = r->engine;
        bool ok;
        long long t = http_query_int(r, "t", -1, &ok);
        pthread_mutex_lock(&en->ctrs.lock);
        struct ctr *c = engine_find_ctr_locked(en, r, r->params[0]);
        if (!c) {
                pthread_mutex_unlock(&en->ctrs.lock);
                return MHD_YES;
        }
        struct rpc_status st;
        if (is_running(c) && stop_locked(en, c, (int) t, &st) < 0) {
                pthread_mutex_unlock(&en->ctrs.lock);
                return engine_reply_rpc_error(r, &st);
        }
        char err[RPC_MESSAGE_MAX];
        unsigned status;
        int rc = c->removed ? -ENOENT : start_locked(en, c, err, sizeof(err), &status);
        pthread_mutex_unlock(&en->ctrs.lock);
        if (rc == -ENOENT)
                return http_reply_error(r, 404, "No such container: %s", r->params[0]);
        if (rc < 0)
                return http_reply_error(r, status, "%s", err);
        return http_reply_empty(r, 204);
}

static enum MHD_Result container_kill(struct http_request *r)
{
        struct engine *en = r->engine;
        int sig = parse_signal(http_query(r, "signal"), SIGKILL);
        if (sig <= 0 || sig >= NSIG)
                return http_reply_error(r, 400, "Invalid signal: %s", http_query(r, "signal"));
        pthread_mutex_lock(&en->ctrs.lock);
        struct ctr *c = engine_find_ctr_locked(en, r, r->params[0]);
        if (!c) {
                pthread_mutex_unlock(&en->ctrs.lock);
                return MHD_YES;
        }
        if (!is_running(c)) {
                pthread_mutex_unlock(&en->ctrs.lock);
                return http_reply_error(r, 409, "Cannot kill container: %s: Container %s is not running",
                                        r->params[0], c->id);
        }
        int stop_sig = parse_signal(json_string_value(json_object_get(json_object_get(c->doc, "Config"), "StopSignal")),
                                    SIGTERM);
        if (sig == SIGKILL || sig == SIGTERM || sig == SIGINT || sig == stop_sig) {
                c->stopping = true;
                json_object_set_new(c->doc, "HasBeenManuallyStopped", json_true());
        }
        char sigs[16];
        snprintf(sigs, sizeof(sigs), "%d", sig);
        ctr_event_locked(en, c, "kill", json_pack("{s:s}", "signal", sigs));
        pthread_mutex_unlock(&en->ctrs.lock);
        struct rpc_status st;
        if (task_kill(en, c->id, sig, false, &st) < 0)
                return engine_reply_rpc_error(r, &st);
        return http_reply_empty(r, 204);
}

static enum MHD_Result pause_or_resume(struct http_request *r, bool pause)
{
        struct engine *en = r->engine;
        pthread_mutex_lock(&en->ctrs.lock);
        struct ctr *c = engine_find_ctr_locked(en, r, r->params[0]);
        if (!c) {
                pthread_mutex_unlock(&en->ctrs.lock);
                return MHD_YES;
        }
        const char *s = ctr_status(c);
        if (strcmp(s, pause ? "running" : "paused")) {
                pthread_mutex_unlock(&en->ctrs.lock);
                if (pause && !strcmp(s, "paused"))
                        return http_reply_error(r, 409, "Container %s is already paused", c->id);
                if (!is_running(c))
                        return http_reply_error(r, 409, "Container %s is not running", c->id);
                return http_reply_error(r, 409, "Container %s is not paused", c->id);
        }
        pthread_mutex_unlock(&en->ctrs.lock);
        struct rpc_status st;
        int rc;
        if (pause) {
                Berth__Supervisor__PauseTaskRequest req = BERTH__SUPERVISOR__PAUSE_TASK_REQUEST__INIT;
                req.id = c->id;
                rc = task_call(en, "tasks.PauseTask", &req.base, &berth__supervisor__pause_task_response__descriptor,
                               ENGINE_CALL_TIMEOUT_MS, NULL, &st);
        } else {
                Berth__Supervisor__ResumeTaskRequest req = BERTH__SUPERVISOR__RESUME_TASK_REQUEST__INIT;
                req.id = c->id;
                rc = task_call(en, "tasks.ResumeTask", &req.base,
                               &berth__supervisor__resume_task_response__descriptor, ENGINE_CALL_TIMEOUT_MS, NULL, &st);
        }
        if (rc < 0)
                return engine_reply_rpc_error(r, &st);
        pthread_mutex_lock(&en->ctrs.lock);
        if (is_running(c)) {
                ctr_set_status(c, pause ? "paused" : "running");
                ctr_save_state_locked(&en->ctrs, c);
                ctr_event_locked(en, c, pause ? "pause" : "unpause", NULL);
        }
        pthread_mutex_unlock(&en->ctrs.lock);
        return http_reply_empty(r, 204);
}

static enum MHD_Result container_pause(struct http_request *r)
{
        return pause_or_resume(r, true);
}

static enum MHD_Result container_unpause(struct http_request *r)
{
        return pause_or_resume(r, false);
}

static enum MHD_Result container_resize(struct http_request *r)
{
        struct engine *en = r->engine;
        bool okh, okw;
        long long h = http_query_int(r, "h", 0, &okh), w = http_query_int(r, "w", 0, &okw);
        if (!okh || !okw || h < 0 || w < 0)
                return http_reply_error(r, 400, "invalid h or w");
        pthread_mutex_lock(&en->ctrs.lock);
        struct ctr *c = engine_find_ctr_locked(en, r, r->params[0]);
        if (!c) {
                pthread_mutex_unlock(&en->ctrs.lock);
                return MHD_YES;
        }
        bool running = is_running(c);
        pthread_mutex_unlock(&en->ctrs.lock);
        if (!running)
                return http_reply_error(r, 409, "Container %s is not running", c->id);
        Berth__Supervisor__ResizePtyTaskRequest req = BERTH__SUPERVISOR__RESIZE_PTY_TASK_REQUEST__INIT;
        req.id = c->id;
        req.width = (uint32_t) w;
        req.height = (uint32_t) h;
        struct rpc_status st;
        if (task_call(en, "tasks.ResizePtyTask", &req.base, &berth__supervisor__resize_pty_task_response__descriptor,
                      ENGINE_CALL_TIMEOUT_MS, NULL, &st) < 0)
                return engine_reply_rpc_error(r, &st);
        return http_reply_empty(r, 200);
}

/* ---- update ---- */

/* The HostConfig fields docker update changes, with 0 (or "") for "leave
 * it" as dockerd reads them. */
static const char *const update_ints[] = { "Memory",   "MemorySwap", "MemoryReservation", "CpuShares",
                                           "NanoCpus", "CpuQuota",   "CpuPeriod" };
static const char *const update_strings[] = { "CpusetCpus", "CpusetMems" };
/* accepted by dockerd, not applied by berth: refused when set */
static const char *const update_unsupported[] = { "BlkioWeight", "KernelMemory", "KernelMemoryTCP",
                                                  "CpuRealtimePeriod", "CpuRealtimeRuntime", "MemorySwappiness" };

/* Merges the update body into hc (a copy). NULL, or the reason it is
 * refused. */
static const char *update_merge(json_t *hc, json_t *body, char *err, size_t errlen)
{
        for (size_t i = 0; i < ARRAY_SIZE(update_unsupported); i++) {
                json_t *v = json_object_get(body, update_unsupported[i]);
                if (v && !json_is_null(v) && !(json_is_integer(v) && json_integer_value(v) == 0) &&
                    !(json_is_integer(v) && json_integer_value(v) == -1 && !strcmp(update_unsupported[i], "MemorySwappiness"))) {
                        snprintf(err, errlen, "updating %s is not supported by berth", update_unsupported[i]);
                        return err;
                }
        }
        json_int_t old_swap = json_integer_value(json_object_get(hc, "MemorySwap"));
        for (size_t i = 0; i < ARRAY_SIZE(update_ints); i++) {
                json_t *v = json_object_get(body, update_ints[i]);
                if (v && !json_is_null(v) && !json_is_integer(v)) {
                        snprintf(err, errlen, "%s must be an integer", update_ints[i]);
                        return err;
                }
                if (json_integer_value(v) != 0)
                        json_object_set(hc, update_ints[i], v);
        }
        json_int_t mem = json_integer_value(json_object_get(body, "Memory"));
        json_int_t swap = json_integer_value(json_object_get(body, "MemorySwap"));
        if (mem > 0 && swap == 0 && old_swap > 0 && mem > old_swap) {
                snprintf(err, errlen, "Memory limit should be smaller than already set memoryswap limit, update the "
                                      "memoryswap at the same time");
                return err;
        }
        /* nano CPUs and a quota/period replace each other */
        if (json_integer_value(json_object_get(body, "NanoCpus")) > 0 &&
            !json_integer_value(json_object_get(body, "CpuQuota")) &&
            !json_integer_value(json_object_get(body, "CpuPeriod"))) {
                json_object_set_new(hc, "CpuQuota", json_integer(0));
                json_object_set_new(hc, "CpuPeriod", json_integer(0));
        } else if (json_integer_value(json_object_get(body, "CpuQuota")) ||
                   json_integer_value(json_object_get(body, "CpuPeriod"))) {
                if (json_integer_value(json_object_get(body, "NanoCpus")) > 0) {
                        snprintf(err, errlen, "Conflicting options: Nano CPUs and CPU Period cannot both be set");
                        return err;
                }
                json_object_set_new(hc, "NanoCpus", json_integer(0));
        }
        for (size_t i = 0; i < ARRAY_SIZE(update_strings); i++) {
                json_t *v = json_object_get(body, update_strings[i]);
                if (v && !json_is_null(v) && !json_is_string(v)) {
                        snprintf(err, errlen, "%s must be a string", update_strings[i]);
                        return err;
                }
                if (json_string_value(v) && *json_string_value(v))
                        json_object_set(hc, update_strings[i], v);
        }
        /* PidsLimit: null leaves it, 0 or -1 lifts it */
        json_t *pids = json_object_get(body, "PidsLimit");
        if (pids && !json_is_null(pids)) {
                if (!json_is_integer(pids)) {
                        snprintf(err, errlen, "PidsLimit must be an integer");
                        return err;
                }
                json_object_set_new(hc, "PidsLimit",
                                    json_integer_value(pids) > 0 ? json_incref(pids) : json_integer(0));
        }
        json_t *rp = json_object_get(body, "RestartPolicy");
        const char *policy = json_string_value(json_object_get(rp, "Name"));
        if (policy && *policy) {
                if (strcmp(policy, "no") && strcmp(policy, "always") && strcmp(policy, "unless-stopped") &&
                    strcmp(policy, "on-failure")) {
                        snprintf(err, errlen, "invalid restart policy '%s'", policy);
                        return err;
                }
                if (strcmp(policy, "no") && json_is_true(json_object_get(hc, "AutoRemove"))) {
                        snprintf(err, errlen, "Restart policy cannot be updated because AutoRemove is enabled for "
                                              "the container");
                        return err;
                }
                json_int_t max = json_integer_value(json_object_get(rp, "MaximumRetryCount"));
                if (max < 0 || (max > 0 && strcmp(policy, "on-failure"))) {
                        snprintf(err, errlen, "maximum retry count can only be used with 'on-failure' and cannot "
                                              "be negative");
                        return err;
                }
                json_object_set_new(hc, "RestartPolicy",
                                    json_pack("{s:s, s:I}", "Name", policy, "MaximumRetryCount", max));
        }
        return NULL;
}

/* The supervisor's spec of id with linux.resources replaced. */
static int update_spec(struct engine *en, const char *id, json_t *res, struct rpc_status *st)
{
        json_t *spec = NULL;
        if (engine_container_spec(en, id, &spec, NULL, st) < 0)
                return -EIO;
        json_t *linux_ = json_object_get(spec, "linux");
        if (!json_is_object(linux_)) {
                json_decref(spec);
                return rpc_status_set(st, RPC_INTERNAL, "engine: the supervisor's spec of %s has no linux part", id);
        }
        json_object_set(linux_, "resources", res);
        _cleanup_free_ char *s = json_dumps(spec, JSON_COMPACT);
        json_decref(spec);
        if (!s)
                return rpc_status_set(st, RPC_INTERNAL, "engine: out of memory");
        Berth__Supervisor__Container sc = BERTH__SUPERVISOR__CONTAINER__INIT;
        sc.id = (char *) id;
        sc.spec_json.data = (uint8_t *) s;
        sc.spec_json.len = strlen(s);
        Berth__Supervisor__UpdateContainerRequest ureq = BERTH__SUPERVISOR__UPDATE_CONTAINER_REQUEST__INIT;
        ureq.container = &sc;
        ureq.update_spec = true;
        return task_call(en, "containers.UpdateContainer", &ureq.base,
                         &berth__supervisor__update_container_response__descriptor, ENGINE_CALL_TIMEOUT_MS, NULL, st);
}

static int update_task(struct engine *en, const char *id, json_t *res, struct rpc_status *st)
{
        _cleanup_free_ char *s = json_dumps(res, JSON_COMPACT);
        if (!s)
                return rpc_status_set(st, RPC_INTERNAL, "engine: out of memory");
        Berth__Supervisor__UpdateTaskRequest req = BERTH__SUPERVISOR__UPDATE_TASK_REQUEST__INIT;
        req.id = (char *) id;
        req.resources_json.data = (uint8_t *) s;
        req.resources_json.len = strlen(s);
        return task_call(en, "tasks.UpdateTask", &req.base, &berth__supervisor__update_task_response__descriptor,
                         ENGINE_CALL_TIMEOUT_MS, NULL, st);
}

/* docker update: the resources (applied to a running container at once,
 * kept for its next starts) and the restart policy. On failure nothing is
 * changed, as with dockerd. */
static enum MHD_Result container_update(struct http_request *r)
{
        struct engine *en = r->engine;
        json_t *body = NULL;
        char err[512];
        if (http_body_json(r, false, &body) < 0)
                return MHD_YES;
        if (!json_is_object(body)) {
                json_decref(body);
                return http_reply_error(r, 400, "the update must be a JSON object");
        }
        pthread_mutex_lock(&en->ctrs.lock);
        struct ctr *c = engine_find_ctr_locked(en, r, r->params[0]);
        if (!c) {
                pthread_mutex_unlock(&en->ctrs.lock);
                json_decref(body);
                return MHD_YES;
        }
        char id[65];
        snprintf(id, sizeof(id), "%s", c->id);
        bool running = is_running(c);
        json_t *old_hc = json_deep_copy(json_object_get(c->doc, "HostConfig"));
        pthread_mutex_unlock(&en->ctrs.lock);
        json_t *hc = json_deep_copy(old_hc);
        const char *bad = hc ? update_merge(hc, body, err, sizeof(err)) : "engine: out of memory";
        json_decref(body);
        json_t *res = bad ? NULL : oci_resources(hc, err, sizeof(err));
        json_t *old_res = res ? oci_resources(old_hc, err, sizeof(err)) : NULL;
        if (bad || !res || !old_res) {
                json_decref(hc);
                json_decref(old_hc);
                json_decref(res);
                json_decref(old_res);
                return http_reply_error(r, 400, "%s", bad ? bad : err);
        }
        struct rpc_status st;
        int rc = update_spec(en, id, res, &st);
        if (rc >= 0 && running && (rc = update_task(en, id, res, &st)) < 0) {
                struct rpc_status undo;
                if (update_spec(en, id, old_res, &undo) < 0)
                        log_warn("engine: update of %s: putting the spec back: %s", id, undo.message);
        }
        json_decref(res);
        json_decref(old_res);
        json_decref(old_hc);
        if (rc < 0) {
                json_decref(hc);
                return http_reply_error(r, st.code == RPC_NOT_FOUND ? 404 : 500, "Cannot update container %s: %s",
                                        id, st.message);
        }
        pthread_mutex_lock(&en->ctrs.lock);
        if ((c = ctr_find_locked(&en->ctrs, id, NULL)) != NULL && !c->removed) {
                json_object_set_new(c->doc, "HostConfig", hc);
                hc = NULL;
                ctr_save_locked(&en->ctrs, c);
                ctr_event_locked(en, c, "update", NULL);
        }
        pthread_mutex_unlock(&en->ctrs.lock);
        json_decref(hc);
        return http_reply_json(r, 200, json_pack("{s:[]}", "Warnings"));
}

static enum MHD_Result container_rename(struct http_request *r)
{
        struct engine *en = r->engine;
        const char *name = http_query(r, "name");
        if (!name || !*name)
                return http_reply_error(r, 400, "name must be given");
        if (name[0] == '/')
                name++;
        if (!ctr_name_valid(name))
                return http_reply_error(r, 400, "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                                        name);
        pthread_mutex_lock(&en->ctrs.lock);
        struct ctr *c = engine_find_ctr_locked(en, r, r->params[0]);
        if (!c) {
                pthread_mutex_unlock(&en->ctrs.lock);
                return MHD_YES;
        }
        struct ctr *o = ctr_find_locked(&en->ctrs, name, NULL);
        if (o && o != c && !strcmp(ctr_short_name(o), name)) {
                pthread_mutex_unlock(&en->ctrs.lock);
                return http_reply_error(r, 409, "Conflict. The container name \"/%s\" is already in use by container "
                                                "\"%s\". You have to remove (or rename) that container to be able to "
                                                "reuse that name.",
                                        name, o->id);
        }
        char nm[160];
        snprintf(nm, sizeof(nm), "/%s", name);
        json_t *old = json_pack("{s:s}", "oldName", ctr_name(c));
        json_object_set_new(c->doc, "Name", json_string(nm));
        ctr_save_locked(&en->ctrs, c);
        ctr_event_locked(en, c, "rename", old);
        pthread_mutex_unlock(&en->ctrs.lock);
        return http_reply_empty(r, 204);
}

/* ---- delete, prune ---- */

/* The record goes at once (name free, lookups miss it, "destroy"), with
 * the network and the volumes; what the supervisor holds (task, container,
 * snapshot) and the directory are purged behind it, after the exit's
 * task deletion when one is under way. */
static void remove_container_locked(struct engine *en, struct ctr *c)
{
        json_object_set_new(json_object_get(c->doc, "State"), "Status", json_string("removing"));
        /* anonymous volumes go with docker rm -v and with --rm, as dockerd */
        bool rm_volumes = c->remove_volumes ||
                          json_is_true(json_object_get(json_object_get(c->doc, "HostConfig"), "AutoRemove"));
        pthread_mutex_unlock(&en->ctrs.lock);
        net_container_remove(en, c);
        engine_volumes_release(en, c->id, rm_volumes);
        pthread_mutex_lock(&en->ctrs.lock);
        if (c->removed)
                return;
        ctr_event_locked(en, c, "destroy", NULL);
        ctr_remove_locked(&en->ctrs, c);
        if (!c->exiting)
                purge_spawn_locked(en, c->id);
}

static enum MHD_Result container_delete(struct http_request *r)
{
        struct engine *en = r->engine;
        bool force = http_query_bool(r, "force", false);
        pthread_mutex_lock(&en->ctrs.lock);
        struct ctr *c = engine_find_ctr_locked(en, r, r->params[0]);
        if (!c) {
                pthread_mutex_unlock(&en->ctrs.lock);
                return MHD_YES;
        }
        if (!strcmp(ctr_status(c), "restarting")) {
                if (!force) {
                        pthread_mutex_unlock(&en->ctrs.lock);
                        return http_reply_error(r, 409,
                                                "You cannot remove a restarting container %s. Stop the container "
                                                "before attempting removal or force remove",
                                                c->id);
                }
                c->stopping = true;
        }
        if (is_running(c)) {
                if (!force) {
                        pthread_mutex_unlock(&en->ctrs.lock);
                        return http_reply_error(r, 409,
                                                "You cannot remove a %s container %s. Stop the container before "
                                                "attempting removal or force remove",
                                                ctr_status(c), c->id);
                }
                c->stopping = true;
                unsigned gen = c->generation;
                /* as dockerd: SIGKILL to the init, whose death takes the
                 * rest of its pid namespace; every process of the cgroup
                 * when it shares the host's, or when it is frozen */
                const char *pid_mode = json_string_value(json_object_get(json_object_get(c->doc, "HostConfig"), "PidMode"));
                bool all = !strcmp(ctr_status(c), "paused") || (pid_mode && !strcmp(pid_mode, "host"));
                pthread_mutex_unlock(&en->ctrs.lock);
                struct rpc_status st;
                (void) task_kill(en, c->id, SIGKILL, all, &st);
                pthread_mutex_lock(&en->ctrs.lock);
                struct timespec dl;
                clock_gettime(CLOCK_REALTIME, &dl);
                dl.tv_sec += 30;
                while (c->generation == gen && !c->removed &&
                       pthread_cond_timedwait(&en->ctrs.changed, &en->ctrs.lock, &dl) == 0)
                        ;
        }
        c->remove_volumes = http_query_bool(r, "v", false);
        if (!c->removed)
                remove_container_locked(en, c);
        pthread_mutex_unlock(&en->ctrs.lock);
        return http_reply_empty(r, 204);
}

static enum MHD_Result containers_prune(struct http_request *r)
{
        struct engine *en = r->engine;
        static const char *const accepted[] = { "until", "label", "label!", NULL };
        _cleanup_json_ json_t *f = NULL;
        if (filters_from_query(r, accepted, true, &f) < 0)
                return MHD_YES;
        char err[256];
        bool pass;
        json_t *deleted = json_array();
        pthread_mutex_lock(&en->ctrs.lock);
        for (bool again = true; again;) {
                again = false;
                for (struct ctr *c = en->ctrs.list; c; c = c->next) {
                        if (is_running(c) || !strcmp(ctr_status(c), "removing"))
                                continue;
                        (void) filters_prune_match(f, json_string_value(json_object_get(c->doc, "Created")),
                                                   json_object_get(json_object_get(c->doc, "Config"), "Labels"), &pass,
                                                   err, sizeof(err));
                        if (!pass)
                                continue;
                        json_array_append_new(deleted, json_string(c->id));
                        remove_container_locked(en, c);
                        again = true; /* the list changed under us */
                        break;
                }
        }
        pthread_mutex_unlock(&en->ctrs.lock);
        return http_reply_json(r, 200, json_pack("{s:o, s:i}", "ContainersDeleted", deleted, "SpaceReclaimed", 0));
}

void engine_containers_stop_all(struct engine *en)
{
        pthread_mutex_lock(&en->ctrs.lock);
        for (bool again = true; again;) {
                again = false;
                for (struct ctr *c = en->ctrs.list; c; c = c->next) {
                        if (!is_running(c) || c->stopping)
                                continue;
                        struct rpc_status st;
                        log_info("engine: live-restore is off: stopping %s", c->id);
                        if (stop_locked(en, c, -1, &st) < 0)
                                log_warn("engine: stopping %s: %s", c->id, st.message);
                        /* it is still marked as stopped by the user only for
                         * this run: a restart policy applies at the next start */
                        json_object_set_new(c->doc, "HasBeenManuallyStopped", json_false());
                        ctr_save_state_locked(&en->ctrs, c);
                        again = true; /* the lock was dropped: the list may have changed */
                        break;
                }
        }
        pthread_mutex_unlock(&en->ctrs.lock);
}

/* ---- start-up ---- */

int engine_containers_init(struct engine *en)
{
        int r = ctr_table_open(&en->ctrs, en->data_root);
        if (r < 0)
                return r;
        r = engine_volumes_init(en);
        if (r < 0)
                return r;
        pthread_mutex_lock(&en->ctrs.lock);
        /* The ids first: reconciling drops the lock, and a removal (--rm,
         * or one a crash interrupted) relinks the list. */
        size_t n = 0, k = 0;
        for (struct ctr *c = en->ctrs.list; c; c = c->next)
                n++;
        char(*ids)[65] = calloc(n ? n : 1, sizeof(*ids));
        if (!ids) {
                pthread_mutex_unlock(&en->ctrs.lock);
                return -ENOMEM;
        }
        for (struct ctr *c = en->ctrs.list; c; c = c->next)
                if (is_running(c) || !strcmp(ctr_status(c), "removing"))
                        snprintf(ids[k++], sizeof(ids[0]), "%s", c->id);
        for (size_t i = 0; i < k; i++) {
                struct ctr *c = ctr_find_locked(&en->ctrs, ids[i], NULL);
                if (!c)
                        continue;
                if (!strcmp(ctr_status(c), "removing")) {
                        /* a removal the engine did not finish */
                        remove_container_locked(en, c);
                        continue;
                }
                Berth__Supervisor__GetTaskResponse *t = NULL;
                struct rpc_status st;
                pthread_mutex_unlock(&en->ctrs.lock);
                int g = task_get(en, c->id, &t, &st);
                pthread_mutex_lock(&en->ctrs.lock);
                if (g == 0 && (t->task->status == BERTH__SUPERVISOR__TASK_STATUS__RUNNING ||
                               t->task->status == BERTH__SUPERVISOR__TASK_STATUS__PAUSED)) {
                        c->task = true;
                        ctr_set_status(c, t->task->status == BERTH__SUPERVISOR__TASK_STATUS__PAUSED ? "paused"
                                                                                                   : "running");
                        engine_watch_task(en, c);
                        log_info("engine: %s is still running (pid %u)", c->id, t->task->pid);
                } else if (g == 0) {
                        /* it exited while the engine was away */
                        log_info("engine: %s exited with %u while the engine was down", c->id, t->task->exit_code);
                        on_exit_locked(en, c, (int) t->task->exit_code, t->task->oom_killed, t->task->exited_at,
                                       t->task->exit_reason && *t->task->exit_reason ? t->task->exit_reason : NULL);
                } else {
                        on_exit_locked(en, c, -1, false, NULL, "the task was gone when the engine restarted");
                }
                if (t)
                        protobuf_c_message_free_unpacked(&t->base, NULL);
        }
        free(ids);
        /* those a previous engine removed but did not purge */
        for (size_t i = 0; i < en->ctrs.n_leftovers; i++)
                purge_spawn_locked(en, en->ctrs.leftovers[i]);
        /* those the engine left waiting out a restart backoff */
        for (struct ctr *c = en->ctrs.list; c; c = c->next)
                if (!strcmp(ctr_status(c), "restarting"))
                        schedule_restart_locked(en, c);
        pthread_mutex_unlock(&en->ctrs.lock);
        return 0;
}

const struct http_route engine_container_routes[] = {
        { "POST", "/containers/create", container_create, 0 },
        { "GET", "/containers/json", containers_list, 0 },
        { "POST", "/containers/prune", containers_prune, 0 },
        { "GET", "/containers/{}/json", container_inspect, 0 },
        { "GET", "/containers/{}/logs", container_logs, 0 },
        { "POST", "/containers/{}/start", container_start, 0 },
        { "POST", "/containers/{}/wait", container_wait, 0 },
        { "POST", "/containers/{}/attach", container_attach, 0 },
        { "POST", "/containers/{}/stop", container_stop, 0 },
        { "POST", "/containers/{}/restart", container_restart, 0 },
        { "POST", "/containers/{}/kill", container_kill, 0 },
        { "POST", "/containers/{}/pause", container_pause, 0 },
        { "POST", "/containers/{}/unpause", container_unpause, 0 },
        { "POST", "/containers/{}/resize", container_resize, 0 },
        { "POST", "/containers/{}/rename", container_rename, 0 },
        { "POST", "/containers/{}/update", container_update, 0 },
        { "DELETE", "/containers/{}", container_delete, 0 },
};
const size_t engine_container_n_routes = sizeof(engine_container_routes) / sizeof(engine_container_routes[0]);

void engine_container_event_locked(struct engine *en, struct ctr *c, const char *action, json_t *attrs)
{
        ctr_event_locked(en, c, action, attrs);
}

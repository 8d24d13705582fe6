/* exec: create, start (hijacked or detached), inspect, resize. Exec
 * records live in memory and outlive their process, since the CLI reads
 * the exit code from GET /exec/{id}/json after the stream closes. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cleanup.h"
#include "engine.h"
#include "log.h"
#include "supervisor.pb-c.h"

struct exec_rec {
        char id[65];
        char ctr_id[65];
        json_t *config;     /* the create body */
        bool running;
        bool started;
        bool has_exit;
        bool done;          /* no thread uses it any more: it may be forgotten */
        int exit_code;
        int pid;
        struct exec_rec *next;
};

struct exec_table {
        pthread_mutex_t lock;
        struct exec_rec *list;
};

int engine_exec_init(struct engine *en)
{
        en->execs = calloc(1, sizeof(*en->execs));
        if (!en->execs)
                return -ENOMEM;
        pthread_mutex_init(&en->execs->lock, NULL);
        return 0;
}

void engine_exec_free(struct engine *en)
{
        if (!en->execs)
                return;
        while (en->execs->list) {
                struct exec_rec *x = en->execs->list;
                en->execs->list = x->next;
                json_decref(x->config);
                free(x);
        }
        free(en->execs);
        en->execs = NULL;
}

static struct exec_rec *find_locked(struct engine *en, const char *id)
{
        for (struct exec_rec *x = en->execs->list; x; x = x->next)
                if (!strcmp(x->id, id))
                        return x;
        return NULL;
}

static json_t *exec_json_locked(struct exec_rec *x)
{
        json_t *c = x->config;
        json_t *cmd = json_object_get(c, "Cmd");
        json_t *args = json_array();
        for (size_t i = 1; i < json_array_size(cmd); i++)
                json_array_append(args, json_array_get(cmd, i));
        json_t *j = json_pack("{s:s, s:b, s:n, s:b, s:b, s:b, s:b, s:b, s:s, s:{s:b, s:s, s:s, s:o, s:b}, s:i, s:s}",
                              "ID", x->id, "Running", x->running, "ExitCode", "OpenStdin",
                              json_is_true(json_object_get(c, "AttachStdin")), "OpenStderr",
                              json_is_true(json_object_get(c, "AttachStderr")), "OpenStdout",
                              json_is_true(json_object_get(c, "AttachStdout")), "CanRemove", 0, "DetachKeys", 0,
                              "ContainerID", x->ctr_id, "ProcessConfig", "tty",
                              json_is_true(json_object_get(c, "Tty")), "entrypoint",
                              json_string_value(json_array_get(cmd, 0)) ?: "", "user",
                              json_string_value(json_object_get(c, "User")) ?: "", "arguments", args, "privileged",
                              json_is_true(json_object_get(c, "Privileged")), "Pid", x->pid, "DetachKeys", "");
        if (x->has_exit)
                json_object_set_new(j, "ExitCode", json_integer(x->exit_code));
        return j;
}

/* Docker's exec events: "exec_create: CMD ARGS", "exec_start: ...", and
 * "exec_die" (extra: the exit code), each with the exec's id. Call with
 * en->ctrs.lock held. */
static void exec_event_locked(struct engine *en, struct ctr *c, struct exec_rec *x, const char *what, json_t *extra)
{
        json_t *cmd = strcmp(what, "exec_die") ? json_object_get(x->config, "Cmd") : NULL;
        size_t len = strlen(what) + 3;
        for (size_t i = 0; i < json_array_size(cmd); i++)
                len += strlen(json_string_value(json_array_get(cmd, i)) ?: "") + 1;
        _cleanup_free_ char *action = malloc(len);
        if (!action) {
                json_decref(extra);
                return;
        }
        char *p = action + sprintf(action, cmd ? "%s:" : "%s", what);
        for (size_t i = 0; i < json_array_size(cmd); i++)
                p += sprintf(p, " %s", json_string_value(json_array_get(cmd, i)) ?: "");
        json_t *attrs = extra ? extra : json_object();
        json_object_set_new(attrs, "execID", json_string(x->id));
        engine_container_event_locked(en, c, action, attrs);
}

/* The records of execs that ended in containers that are gone, and the
 * oldest ended ones beyond EXEC_ENDED_KEEP per container (health checks
 * and scripts exec without end): inspect stays possible for the recent
 * ones, where the CLI reads the exit code. */
#define EXEC_ENDED_KEEP 32
static void forget_ended_locked(struct engine *en)
{
        struct exec_rec **pp = &en->execs->list;
        while (*pp) {
                struct exec_rec *x = *pp;
                bool drop = false;
                if (x->done) {
                        unsigned newer = 0;
                        for (struct exec_rec *y = en->execs->list; y != x; y = y->next)
                                if (y->done && !strcmp(y->ctr_id, x->ctr_id))
                                        newer++;
                        pthread_mutex_lock(&en->ctrs.lock);
                        drop = newer >= EXEC_ENDED_KEEP || !ctr_find_locked(&en->ctrs, x->ctr_id, NULL);
                        pthread_mutex_unlock(&en->ctrs.lock);
                }
                if (!drop) {
                        pp = &x->next;
                        continue;
                }
                *pp = x->next;
                json_decref(x->config);
                free(x);
        }
}

static enum MHD_Result exec_create(struct http_request *r)
{
        struct engine *en = r->engine;
        json_t *body = NULL;
        if (http_body_json(r, false, &body) < 0)
                return MHD_YES;
        json_t *cmd = json_object_get(body, "Cmd");
        if (!json_is_array(cmd) || json_array_size(cmd) == 0) {
                json_decref(body);
                return http_reply_error(r, 400, "No exec command specified");
        }
        pthread_mutex_lock(&en->ctrs.lock);
        struct ctr *c = engine_find_ctr_locked(en, r, r->params[0]);
        if (!c) {
                pthread_mutex_unlock(&en->ctrs.lock);
                json_decref(body);
                return MHD_YES;
        }
        if (strcmp(ctr_status(c), "running")) {
                bool paused = !strcmp(ctr_status(c), "paused");
                pthread_mutex_unlock(&en->ctrs.lock);
                json_decref(body);
                return http_reply_error(r, 409, paused ? "Container %s is paused, unpause the container before exec"
                                                       : "Container %s is not running",
                                        c->id);
        }
        struct exec_rec *x = calloc(1, sizeof(*x));
        if (!x) {
                pthread_mutex_unlock(&en->ctrs.lock);
                json_decref(body);
                return MHD_NO;
        }
        snprintf(x->ctr_id, sizeof(x->ctr_id), "%s", c->id);
        /* the container's env and working dir under the exec's own */
        json_t *cfg = json_object_get(c->doc, "Config");
        json_t *cenv = json_object_get(cfg, "Env"), *benv = json_object_get(body, "Env");
        json_t *env = json_is_array(cenv) ? json_deep_copy(cenv) : json_array();
        if (json_is_array(benv))
                json_array_extend(env, benv);
        json_object_set_new(body, "Env", env);
        if (!json_string_value(json_object_get(body, "WorkingDir")) ||
            !*json_string_value(json_object_get(body, "WorkingDir")))
                json_object_set_new(body, "WorkingDir", json_ref_or(json_object_get(cfg, "WorkingDir"), json_string("/")));
        if (!json_string_value(json_object_get(body, "User")) || !*json_string_value(json_object_get(body, "User")))
                json_object_set_new(body, "User", json_ref_or(json_object_get(cfg, "User"), json_string("")));
        x->config = body;
        uint8_t b[32];
        if (getrandom(b, sizeof(b), 0) != sizeof(b)) {
                pthread_mutex_unlock(&en->ctrs.lock);
                json_decref(body);
                free(x);
                return http_reply_error(r, 500, "engine: getrandom: %s", strerror(errno));
        }
        for (size_t i = 0; i < sizeof(b); i++)
                snprintf(x->id + 2 * i, 3, "%02x", b[i]);
        /* ExecIDs lists the execs not yet ended, as dockerd (null when none) */
        if (!json_is_array(json_object_get(c->doc, "ExecIDs")))
                json_object_set_new(c->doc, "ExecIDs", json_array());
        json_array_append_new(json_object_get(c->doc, "ExecIDs"), json_string(x->id));
        exec_event_locked(en, c, x, "exec_create", NULL);
        pthread_mutex_unlock(&en->ctrs.lock);
        pthread_mutex_lock(&en->execs->lock);
        forget_ended_locked(en);
        x->next = en->execs->list;
        en->execs->list = x;
        pthread_mutex_unlock(&en->execs->lock);
        return http_reply_json(r, 201, json_pack("{s:s}", "Id", x->id));
}

/* The OCI process of an exec. */
static json_t *exec_process(json_t *c)
{
        const char *user = json_string_value(json_object_get(c, "User")) ?: "";
        int uid = 0, gid = 0;
        if (*user)
                sscanf(user, "%d:%d", &uid, &gid);
        json_t *p = json_pack("{s:b, s:{s:i, s:i}, s:O, s:o, s:s}", "terminal", json_is_true(json_object_get(c, "Tty")),
                              "user", "uid", uid, "gid", gid, "args", json_object_get(c, "Cmd"), "env",
                              json_ref_or(json_object_get(c, "Env"), json_array()), "cwd",
                              json_string_value(json_object_get(c, "WorkingDir")) ?: "/");
        if (json_is_true(json_object_get(c, "Tty")))
                json_object_set_new(p, "consoleSize", json_pack("{s:i, s:i}", "height", 24, "width", 80));
        return p;
}

static int exec_register(struct engine *en, struct exec_rec *x, struct rpc_status *st)
{
        json_t *p = exec_process(x->config);
        _cleanup_free_ char *ps = json_dumps(p, JSON_COMPACT);
        json_decref(p);
        Berth__Supervisor__ExecTaskRequest req = BERTH__SUPERVISOR__EXEC_TASK_REQUEST__INIT;
        req.id = x->ctr_id;
        req.exec_id = x->id;
        req.terminal = json_is_true(json_object_get(x->config, "Tty"));
        req.stdin = json_is_true(json_object_get(x->config, "AttachStdin"));
        req.stdin_once = req.stdin;
        req.process_json.data = (uint8_t *) ps;
        req.process_json.len = ps ? strlen(ps) : 0;
        ProtobufCMessage *rep = NULL;
        int r = engine_call(en, "tasks.ExecTask", &req.base, &berth__supervisor__exec_task_response__descriptor,
                            ENGINE_CALL_TIMEOUT_MS, &rep, st);
        if (r == 0)
                protobuf_c_message_free_unpacked(rep, NULL);
        return r;
}

static int exec_start_process(struct engine *en, struct exec_rec *x, struct rpc_status *st)
{
        Berth__Supervisor__StartTaskRequest req = BERTH__SUPERVISOR__START_TASK_REQUEST__INIT;
        req.id = x->ctr_id;
        req.exec_id = x->id;
        Berth__Supervisor__StartTaskResponse *rep = NULL;
        int r = engine_call(en, "tasks.StartTask", &req.base, &berth__supervisor__start_task_response__descriptor,
                            ENGINE_CALL_TIMEOUT_MS, (ProtobufCMessage **) &rep, st);
        if (r < 0)
                return r;
        pthread_mutex_lock(&en->execs->lock);
        x->pid = (int) rep->pid;
        x->running = true;
        pthread_mutex_unlock(&en->execs->lock);
        protobuf_c_message_free_unpacked(&rep->base, NULL);
        pthread_mutex_lock(&en->ctrs.lock);
        struct ctr *c = ctr_find_locked(&en->ctrs, x->ctr_id, NULL);
        if (c)
                exec_event_locked(en, c, x, "exec_start", NULL);
        pthread_mutex_unlock(&en->ctrs.lock);
        return 0;
}

/* The exec has ended (code): out of the container's ExecIDs, and an
 * exec_die event. */
static void exec_ended(struct engine *en, struct exec_rec *x, int code)
{
        pthread_mutex_lock(&en->execs->lock);
        x->running = false;
        x->has_exit = true;
        x->exit_code = code;
        pthread_mutex_unlock(&en->execs->lock);
        pthread_mutex_lock(&en->ctrs.lock);
        struct ctr *c = ctr_find_locked(&en->ctrs, x->ctr_id, NULL);
        json_t *ids = c ? json_object_get(c->doc, "ExecIDs") : NULL;
        for (size_t i = 0; i < json_array_size(ids); i++)
                if (!strcmp(json_string_value(json_array_get(ids, i)) ?: "", x->id)) {
                        json_array_remove(ids, i);
                        break;
                }
        if (ids && json_array_size(ids) == 0)
                json_object_set_new(c->doc, "ExecIDs", json_null());
        if (c) {
                char cs[16];
                snprintf(cs, sizeof(cs), "%d", code);
                exec_event_locked(en, c, x, "exec_die", json_pack("{s:s}", "exitCode", cs));
        }
        pthread_mutex_unlock(&en->ctrs.lock);
}

static void exec_done(struct engine *en, struct exec_rec *x)
{
        pthread_mutex_lock(&en->execs->lock);
        x->done = true;
        pthread_mutex_unlock(&en->execs->lock);
}

/* Waits for the exec's exit, records it and releases it in the shim. */
static void exec_collect(struct engine *en, struct exec_rec *x)
{
        Berth__Supervisor__WaitTaskRequest req = BERTH__SUPERVISOR__WAIT_TASK_REQUEST__INIT;
        req.id = x->ctr_id;
        req.exec_id = x->id;
        Berth__Supervisor__WaitTaskResponse *rep = NULL;
        struct rpc_status st;
        int r = engine_call(en, "tasks.WaitTask", &req.base, &berth__supervisor__wait_task_response__descriptor,
                            RPC_NO_TIMEOUT, (ProtobufCMessage **) &rep, &st);
        exec_ended(en, x, r == 0 ? (int) rep->exit_code : 126);
        if (rep)
                protobuf_c_message_free_unpacked(&rep->base, NULL);
        Berth__Supervisor__DeleteTaskRequest dreq = BERTH__SUPERVISOR__DELETE_TASK_REQUEST__INIT;
        dreq.id = x->ctr_id;
        dreq.exec_id = x->id;
        ProtobufCMessage *drep = NULL;
        if (engine_call(en, "tasks.DeleteTask", &dreq.base, &berth__supervisor__delete_task_response__descriptor,
                        ENGINE_CALL_TIMEOUT_MS, &drep, &st) == 0)
                protobuf_c_message_free_unpacked(drep, NULL);
        exec_done(en, x);
}

struct exec_attach {
        struct engine *en;
        struct exec_rec *x;
        int error;
        struct rpc_status st;
};

static void exec_ready(void *ud)
{
        struct exec_attach *a = ud;
        /* attached: now the process may start and write */
        if (exec_start_process(a->en, a->x, &a->st) < 0)
                a->error = -EIO;
}

static void exec_run(int fd, const char *extra, size_t extra_len, void *ud)
{
        struct exec_attach *a = ud;
        json_t *c = a->x->config;
        int r = engine_attach_splice(a->en, a->x->ctr_id, a->x->id, fd, extra, extra_len,
                                     json_is_true(json_object_get(c, "AttachStdin")),
                                     json_is_true(json_object_get(c, "AttachStdout")),
                                     json_is_true(json_object_get(c, "AttachStderr")), exec_ready, a);
        if (r < 0 || a->error < 0) {
                const char *msg = a->error < 0 ? a->st.message : strerror(-r);
                char line[RPC_MESSAGE_MAX + 64];
                int n = snprintf(line, sizeof(line), "engine: exec failed: %s\r\n", msg);
                if (n > 0)
                        (void) !write(fd, line, (size_t) n);
                exec_ended(a->en, a->x, strstr(msg, "not found") || strstr(msg, "no such file") ? 127 : 126);
                exec_done(a->en, a->x);
                return;
        }
        exec_collect(a->en, a->x);
}

static void *exec_detached(void *arg)
{
        struct exec_attach *a = arg;
        exec_collect(a->en, a->x);
        free(a);
        return NULL;
}

static enum MHD_Result exec_start(struct http_request *r)
{
        struct engine *en = r->engine;
        json_t *body = NULL;
        if (http_body_json(r, true, &body) < 0)
                return MHD_YES;
        bool detach = json_is_true(json_object_get(body, "Detach"));
        json_decref(body);
        pthread_mutex_lock(&en->execs->lock);
        struct exec_rec *x = find_locked(en, r->params[0]);
        if (x && x->started) {
                pthread_mutex_unlock(&en->execs->lock);
                return http_reply_error(r, 409, "Error: Exec command %s has already run", x->id);
        }
        if (x)
                x->started = true;
        pthread_mutex_unlock(&en->execs->lock);
        if (!x)
                return http_reply_error(r, 404, "No such exec instance: %s", r->params[0]);
        struct exec_attach *a = calloc(1, sizeof(*a));
        if (!a)
                return MHD_NO;
        a->en = en;
        a->x = x;
        if (exec_register(en, x, &a->st) < 0) {
                enum MHD_Result res = engine_reply_rpc_error(r, &a->st);
                free(a);
                exec_done(en, x);
                return res;
        }
        if (detach) {
                if (exec_start_process(en, x, &a->st) < 0) {
                        enum MHD_Result res = http_reply_error(r, 500, "%s", a->st.message);
                        free(a);
                        exec_ended(en, x, 126);
                        exec_done(en, x);
                        return res;
                }
                if (engine_spawn(exec_detached, a, 0) != 0)
                        free(a);
                return http_reply_empty(r, 200);
        }
        return http_hijack(r, "application/vnd.docker.raw-stream", exec_run, a, free);
}

static enum MHD_Result exec_inspect(struct http_request *r)
{
        struct engine *en = r->engine;
        pthread_mutex_lock(&en->execs->lock);
        struct exec_rec *x = find_locked(en, r->params[0]);
        json_t *j = x ? exec_json_locked(x) : NULL;
        pthread_mutex_unlock(&en->execs->lock);
        if (!j)
                return http_reply_error(r, 404, "No such exec instance: %s", r->params[0]);
        return http_reply_json(r, 200, j);
}

static enum MHD_Result exec_resize(struct http_request *r)
{
        struct engine *en = r->engine;
        bool okh, okw;
        long long h = http_query_int(r, "h", 0, &okh), w = http_query_int(r, "w", 0, &okw);
        if (!okh || !okw || h < 0 || w < 0)
                return http_reply_error(r, 400, "invalid h or w");
        pthread_mutex_lock(&en->execs->lock);
        struct exec_rec *x = find_locked(en, r->params[0]);
        char ctr_id[65], id[65];
        if (x) {
                snprintf(ctr_id, sizeof(ctr_id), "%s", x->ctr_id);
                snprintf(id, sizeof(id), "%s", x->id);
        }
        pthread_mutex_unlock(&en->execs->lock);
        if (!x)
                return http_reply_error(r, 404, "No such exec instance: %s", r->params[0]);
        Berth__Supervisor__ResizePtyTaskRequest req = BERTH__SUPERVISOR__RESIZE_PTY_TASK_REQUEST__INIT;
        req.id = ctr_id;
        req.exec_id = id;
        req.width = (uint32_t) w;
        req.height = (uint32_t) h;
        ProtobufCMessage *rep = NULL;
        struct rpc_status st;
        if (engine_call(en, "tasks.ResizePtyTask", &req.base, &berth__supervisor__resize_pty_task_response__descriptor,
                        ENGINE_CALL_TIMEOUT_MS, &rep, &st) < 0)
                return engine_reply_rpc_error(r, &st);
        protobuf_c_message_free_unpacked(rep, NULL);
        return http_reply_empty(r, 200);
}

const struct http_route engine_exec_routes[] = {
        { "POST", "/containers/{}/exec", exec_create, 0 },
        { "POST", "/exec/{}/start", exec_start, 0 },
        { "GET", "/exec/{}/json", exec_inspect, 0 },
        { "POST", "/exec/{}/resize", exec_resize, 0 },
};
const size_t engine_exec_n_routes = sizeof(engine_exec_routes) / sizeof(engine_exec_routes[0]);

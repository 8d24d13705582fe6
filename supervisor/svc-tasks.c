/* tasks.*: tasks run by one berth-shim each, and the method table of
 * containers.* (handlers in container-service.c) and tasks.*.
 *
 * The registry (struct supervisor_tasks) holds every task the daemon knows:
 * its shim's client, its status and, once it has exited, its exit. One
 * lock (reg->lock) guards the list and every field of every task; cond is
 * broadcast whenever an exit is recorded or a task goes away. Tasks are
 * reference counted: a handler or thread that uses one holds a reference,
 * so a task deleted meanwhile stays valid for it.
 *
 * Every task has a monitor thread blocked in shim.Wait (no timeout) on its
 * init process (and one per started exec): when it answers, the exit is
 * recorded and "/tasks/exit" published. When the connection is lost and the
 * shim process is gone, the task is stopped with exit_reason "shim died"
 * (see task_shim_died). tasks.Wait parks a deferred thread on cond until
 * the monitor records the exit, so any number of waiters cost no shim
 * calls, and they notice the daemon stopping.
 *
 * Durable state: the container records (container-store.c); the shims'
 * state dirs under <exec_root>/shims, from which supervisor_tasks_init
 * rebuilds the registry. */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "container-service.h"
#include "container-store.h"
#include "daemon.h"
#include "fs-util.h"
#include "json-util.h"
#include "log.h"
#include "shim.pb-c.h"
#include "task-bundle.h"
#include "task-shim.h"
#include "time-util.h"

#define SHIM_TIMEOUT_MS 30000
#define STATUS(x) BERTH__SUPERVISOR__TASK_STATUS__##x

struct exec_proc {
        char *id;
        bool started, exited, monitored;
        struct task_exit exit;
        struct exec_proc *next;
};

struct task {
        struct supervisor_tasks *reg;
        char *id, *bundle, *state_dir, *runtime, *runtime_root, *attach;
        struct rpc_client *client;   /* NULL once the shim is gone */
        uint32_t shim_pid, pid;
        int status;                  /* Berth__Supervisor__TaskStatus */
        bool terminal;
        bool creating;               /* reserved by a Create in progress */
        bool deleting;               /* a Delete shuts the shim down: a lost connection is expected */
        bool removed;                /* no longer in the list */
        bool exited;
        struct task_exit exit;
        bool monitored;              /* the init monitor runs */
        unsigned monitors;           /* monitor threads using client (init and execs) */
        unsigned users;              /* handlers in a call on client (shim_acquire) */
        struct exec_proc *execs;
        pthread_cond_t cond;         /* this task's changes: exits, monitors and users done, removal */
        unsigned refs;
        struct task *next;
};

struct supervisor_tasks {
        struct supervisor *s;
        struct container_store *cs;
        pthread_mutex_t lock;        /* the list, every task's fields, refs */
        pthread_cond_t cond;         /* a monitor ended (the count of threads), stopping */
        pthread_mutex_t ctr_lock;    /* a container's delete vs. a task's create for it */
        struct task *tasks;
        bool stopping;
        unsigned threads;            /* monitors running */
        struct spare *spare;         /* a started shim waiting for a container, or NULL */
        bool spare_thread;           /* spare_run keeps one ready */
        unsigned spare_seq;
};

/* A shim started ahead (berth-shim --spare) in <exec_root>/shims/.spare-N,
 * connected; CreateTask renames the dir and gives it the container
 * (shim.Adopt), which takes its start-up off the path of a start. */
struct spare {
        char *dir;
        struct rpc_client *client;
};

/* A spare lives this long unused, then goes: an idle daemon has none. */
#define SPARE_IDLE_MS 10000

/* ---------------------------------------------------------------- small helpers */

static const char *str_or(const char *s, const char *dflt)
{
        return s && *s ? s : dflt;
}

static void publish_task(struct supervisor *s, const char *topic, const char *id, const char *exec_id, uint32_t pid,
                         const struct task_exit *x)
{
        Berth__Supervisor__TaskEvent ev = BERTH__SUPERVISOR__TASK_EVENT__INIT;
        Berth__Supervisor__Envelope env = BERTH__SUPERVISOR__ENVELOPE__INIT;
        ev.id = (char *) id;
        ev.exec_id = (char *) (exec_id ? exec_id : "");
        ev.pid = pid;
        if (x) {
                ev.exit_code = x->code;
                ev.exit_signal = x->signal;
                ev.exited_at = (char *) x->exited_at;
                ev.reason = (char *) x->reason;
        }
        env.event_case = BERTH__SUPERVISOR__ENVELOPE__EVENT_TASK;
        env.task = &ev;
        if (!s->stopping)
                supervisor_publish(s, topic, &env);
}

/* The runtime's --root: one per runtime binary, under the exec root, so
 * that daemons with other exec roots (tests) never share state. */
static char *runtime_root_for(struct supervisor *s, const char *runtime)
{
        _cleanup_free_ char *copy = strdup(runtime);
        char *root = NULL;
        if (!copy || asprintf(&root, "%s/runtime/%s", s->exec_root, basename(copy)) < 0)
                return NULL;
        return root;
}

static const char *runtime_of(struct supervisor *s, json_t *rec)
{
        return str_or(json_string_value(json_object_get(rec, "runtime")), s->default_runtime);
}

/* ---------------------------------------------------------------- the registry */

static void exec_free(struct exec_proc *x)
{
        if (!x)
                return;
        free(x->id);
        free(x);
}

static void task_free(struct task *t)
{
        rpc_client_close(t->client);
        while (t->execs) {
                struct exec_proc *x = t->execs;
                t->execs = x->next;
                exec_free(x);
        }
        free(t->id);
        free(t->bundle);
        free(t->state_dir);
        free(t->runtime);
        free(t->runtime_root);
        free(t->attach);
        pthread_cond_destroy(&t->cond);
        free(t);
}

/* Called with reg->lock held. */
static void task_unref_locked(struct task *t)
{
        if (--t->refs == 0)
                task_free(t);
}

static void task_unref(struct task *t)
{
        struct supervisor_tasks *reg = t->reg;
        pthread_mutex_lock(&reg->lock);
        task_unref_locked(t);
        pthread_mutex_unlock(&reg->lock);
}

static struct task *find_locked(struct supervisor_tasks *reg, const char *id)
{
        for (struct task *t = reg->tasks; t; t = t->next)
                if (strcmp(t->id, id) == 0)
                        return t;
        return NULL;
}

/* A reference to the task id; NULL (the call failed) when there is none or
 * it is still being created. */
static struct task *task_get(struct supervisor *s, struct rpc_call *call, const char *id)
{
        struct supervisor_tasks *reg = s->tasks;
        pthread_mutex_lock(&reg->lock);
        struct task *t = find_locked(reg, id ? id : "");
        bool creating = t && t->creating;
        if (t && !creating)
                t->refs++;
        pthread_mutex_unlock(&reg->lock);
        if (!t)
                supervisor_fail_msg(call, ENOENT, "task \"%s\" not found", id ? id : "");
        else if (creating)
                supervisor_fail_msg(call, EBUSY, "task \"%s\" is being created", id);
        return creating ? NULL : t;
}

static void unlink_locked(struct supervisor_tasks *reg, struct task *t)
{
        for (struct task **p = &reg->tasks; *p; p = &(*p)->next)
                if (*p == t) {
                        *p = t->next;
                        t->removed = true;
                        pthread_cond_broadcast(&t->cond);
                        task_unref_locked(t);
                        break;
                }
}

static struct exec_proc *exec_find_locked(struct task *t, const char *exec_id)
{
        for (struct exec_proc *x = t->execs; x; x = x->next)
                if (strcmp(x->id, exec_id) == 0)
                        return x;
        return NULL;
}

/* Records the init process's exit once (later calls are ignored); returns
 * whether this call recorded it. */
static bool record_exit(struct task *t, const struct task_exit *x)
{
        struct supervisor_tasks *reg = t->reg;
        pthread_mutex_lock(&reg->lock);
        bool first = !t->exited;
        if (first) {
                t->exited = true;
                t->exit = *x;
                t->status = STATUS(STOPPED);
        }
        pthread_cond_broadcast(&t->cond);
        pthread_mutex_unlock(&reg->lock);
        return first;
}

static void exit_from_pb(const Berth__Shim__ExitStatus *es, struct task_exit *x)
{
        memset(x, 0, sizeof(*x));
        if (!es) {
                x->code = 255;
                snprintf(x->reason, sizeof(x->reason), "no exit status");
                return;
        }
        x->pid = es->pid;
        x->code = (uint32_t) es->exit_code;
        x->signal = es->signal;
        x->oom_killed = es->oom_killed;
        snprintf(x->exited_at, sizeof(x->exited_at), "%s", es->exited_at ? es->exited_at : "");
}

/* The shim of t is gone and left no exit file (killed -9): its container
 * cannot be trusted to run on without it (nobody holds its stdio or reaps
 * it), so it is killed and removed through the runtime, the rootfs is
 * unmounted and the bundle removed. The task stays, STOPPED with exit code
 * 137 (SIGKILL: the container is killed by `<runtime> delete --force`) and
 * exit_reason "shim died", recorded in the state dir's exit file so that a
 * restart reports the same; tasks.Delete removes it. When the shim did
 * write an exit file before it died, that exit is reported instead. */
static void task_shim_died(struct task *t, bool publish)
{
        struct supervisor *s = t->reg->s;
        struct task_exit x = { 0 };
        if (task_exit_file_read(t->state_dir, &x) < 0) {
                x.code = 128 + SIGKILL;
                x.signal = SIGKILL;
                x.pid = t->pid;
                time_now_rfc3339_nano(x.exited_at, sizeof(x.exited_at));
                snprintf(x.reason, sizeof(x.reason), "shim died");
                int r = task_exit_file_write(t->state_dir, &x);
                if (r < 0)
                        log_warn("supervisor: task \"%s\": cannot record its exit in \"%s\": %s", t->id, t->state_dir,
                                 strerror(-r));
                log_warn("supervisor: task \"%s\": its shim died; the container is killed and reported as exited",
                         t->id);
        }
        const char *del[] = { "delete", "--force", t->id, NULL };
        int r = task_runtime_run(t->runtime, t->runtime_root, del);
        if (r != 0)
                log_debug("supervisor: task \"%s\": \"%s delete --force\" exited %d", t->id, t->runtime, r);
        struct berr e = { 0 };
        if (task_bundle_remove(t->bundle, &e) < 0)
                log_warn("supervisor: task \"%s\": %s", t->id, e.msg);
        /* the shim's sockets and pid file; exit (and shim.log) stay */
        static const char *const leftovers[] = { "shim.sock", "attach.sock", "shim.pid", "shim.lock" };
        for (size_t i = 0; i < ARRAY_SIZE(leftovers); i++) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/%s", t->state_dir, leftovers[i]) >= 0)
                        unlink(p);
        }
        struct supervisor_tasks *reg = t->reg;
        pthread_mutex_lock(&reg->lock);
        t->shim_pid = 0;
        pthread_mutex_unlock(&reg->lock);
        if (record_exit(t, &x) && publish) {
                publish_task(s, "/tasks/exit", t->id, "", x.pid, &x);
                if (x.oom_killed)
                        publish_task(s, "/tasks/oom", t->id, "", x.pid, NULL);
        }
}

struct monitor {
        struct task *t;   /* a reference */
        char *exec_id;    /* NULL: init */
};

static void monitor_end(struct task *t, struct exec_proc *x)
{
        struct supervisor_tasks *reg = t->reg;
        pthread_mutex_lock(&reg->lock);
        if (x)
                x->monitored = false;
        else
                t->monitored = false;
        t->monitors--;
        reg->threads--;
        pthread_cond_broadcast(&t->cond);
        task_unref_locked(t);
        pthread_mutex_unlock(&reg->lock);
}

/* Waits for one process of t (init or an exec) and records its exit. */
static void *monitor_run(void *arg)
{
        struct monitor *m = arg;
        struct task *t = m->t;
        struct supervisor_tasks *reg = t->reg;
        struct supervisor *s = reg->s;
        Berth__Shim__WaitRequest req = BERTH__SHIM__WAIT_REQUEST__INIT;
        req.exec_id = m->exec_id ? m->exec_id : "";
        struct exec_proc *xp = NULL;
        if (m->exec_id) {
                pthread_mutex_lock(&reg->lock);
                xp = exec_find_locked(t, m->exec_id);
                pthread_mutex_unlock(&reg->lock);
        }
        for (int attempt = 0;; attempt++) {
                Berth__Shim__WaitResponse *w = NULL;
                struct berr e = { 0 };
                int r = task_shim_call(t->client, "shim.Wait", &req.base, &berth__shim__wait_response__descriptor,
                                       RPC_NO_TIMEOUT, (ProtobufCMessage **) &w, &e);
                if (r >= 0) {
                        struct task_exit x;
                        exit_from_pb(w->exit, &x);
                        protobuf_c_message_free_unpacked(&w->base, NULL);
                        if (xp) {
                                pthread_mutex_lock(&reg->lock);
                                xp->exited = true;
                                xp->exit = x;
                                pthread_cond_broadcast(&t->cond);
                                pthread_mutex_unlock(&reg->lock);
                                publish_task(s, "/tasks/exit", t->id, m->exec_id, x.pid, &x);
                        } else if (record_exit(t, &x)) {
                                publish_task(s, "/tasks/exit", t->id, "", x.pid, &x);
                                if (x.oom_killed)
                                        publish_task(s, "/tasks/oom", t->id, "", x.pid, NULL);
                        }
                        break;
                }
                pthread_mutex_lock(&reg->lock);
                bool quit = t->deleting || t->removed || reg->stopping;
                pthread_mutex_unlock(&reg->lock);
                if (quit)
                        break;
                bool alive = task_shim_pid_alive(t->state_dir) > 0;
                if (!alive && xp) {
                        struct task_exit x = { .code = 255 };
                        snprintf(x.reason, sizeof(x.reason), "shim died");
                        pthread_mutex_lock(&reg->lock);
                        xp->exited = true;
                        xp->exit = x;
                        pthread_cond_broadcast(&t->cond);
                        pthread_mutex_unlock(&reg->lock);
                        break;
                }
                if (!alive) {
                        task_shim_died(t, true);
                        break;
                }
                if (attempt > 50) {
                        log_error("supervisor: task \"%s\": giving up waiting on its shim: %s", t->id, e.msg);
                        break;
                }
                log_debug("supervisor: task \"%s\": shim.Wait: %s; retrying", t->id, e.msg);
                usleep(200 * 1000);
        }
        monitor_end(t, xp);
        free(m->exec_id);
        free(m);
        return NULL;
}

/* Starts a monitor of t's init (exec_id NULL) or of one exec. */
static int monitor_start(struct task *t, const char *exec_id)
{
        struct supervisor_tasks *reg = t->reg;
        struct monitor *m = calloc(1, sizeof(*m));
        if (!m || (exec_id && !(m->exec_id = strdup(exec_id)))) {
                free(m);
                return -ENOMEM;
        }
        m->t = t;
        pthread_mutex_lock(&reg->lock);
        struct exec_proc *x = exec_id ? exec_find_locked(t, exec_id) : NULL;
        if ((exec_id && (!x || x->monitored)) || (!exec_id && t->monitored) || !t->client) {
                pthread_mutex_unlock(&reg->lock);
                free(m->exec_id);
                free(m);
                return 0;
        }
        if (x)
                x->monitored = true;
        else
                t->monitored = true;
        t->refs++;
        t->monitors++;
        reg->threads++;
        pthread_mutex_unlock(&reg->lock);

        int r = supervisor_thread(monitor_run, m, 256);
        if (r != 0) {
                monitor_end(t, x);
                free(m->exec_id);
                free(m);
                return -r;
        }
        return 0;
}

/* ---------------------------------------------------------------- tasks: messages */

static void task_pb_locked(const struct task *t, Berth__Supervisor__Task *m)
{
        berth__supervisor__task__init(m);
        m->id = t->id;
        m->pid = t->pid;
        m->status = t->status;
        m->terminal = t->terminal;
        m->shim_pid = t->shim_pid;
        m->bundle = t->bundle;
        m->attach_socket = t->attach;
        if (t->exited) {
                m->exit_code = t->exit.code;
                m->exit_signal = t->exit.signal;
                m->oom_killed = t->exit.oom_killed;
                m->exited_at = (char *) t->exit.exited_at;
                m->exit_reason = (char *) t->exit.reason;
        }
}

/* ---------------------------------------------------------------- tasks.Create */

/* Rolls back a create that failed after the shim started. */
static void spare_free(struct spare *sp, bool shut_down)
{
        if (!sp)
                return;
        if (shut_down && sp->client) {
                Berth__Shim__ShutdownRequest sr = BERTH__SHIM__SHUTDOWN_REQUEST__INIT;
                sr.now = true;
                task_shim_call(sp->client, "shim.Shutdown", &sr.base, &berth__shim__shutdown_response__descriptor,
                               5000, NULL, NULL);
        }
        rpc_client_close(sp->client);
        if (shut_down) {
                task_shim_wait_gone(sp->dir, 500);
                fs_rm_rf(sp->dir);
        }
        free(sp->dir);
        free(sp);
}

static struct spare *spare_start(struct supervisor *s, unsigned seq)
{
        struct spare *sp = calloc(1, sizeof(*sp));
        struct berr e = { 0 };
        struct task_shim_spawn run;
        if (!sp || asprintf(&sp->dir, "%s/shims/.spare-%u", s->exec_root, seq) < 0) {
                free(sp);
                return NULL;
        }
        fs_rm_rf(sp->dir);
        struct task_shim_args a = { .state_dir = sp->dir, .spare = true };
        if (task_shim_spawn_start(s->shim_binary, &a, &run, &e) < 0 || task_shim_spawn_finish(&run, &e) < 0 ||
            task_shim_connect(sp->dir, &sp->client, &e) < 0) {
                log_warn("supervisor: a spare shim: %s", e.msg);
                spare_free(sp, true);
                return NULL;
        }
        return sp;
}

/* Keeps one spare ready while starts keep coming; ends once it has sat
 * unused for SPARE_IDLE_MS, or when the daemon stops. */
static void *spare_run(void *arg)
{
        struct supervisor_tasks *reg = arg;
        pthread_mutex_lock(&reg->lock);
        while (!reg->stopping) {
                unsigned seq = ++reg->spare_seq;
                pthread_mutex_unlock(&reg->lock);
                struct spare *sp = spare_start(reg->s, seq);
                pthread_mutex_lock(&reg->lock);
                if (!sp)
                        break;
                if (reg->stopping) {
                        pthread_mutex_unlock(&reg->lock);
                        spare_free(sp, true);
                        pthread_mutex_lock(&reg->lock);
                        break;
                }
                reg->spare = sp;
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += SPARE_IDLE_MS / 1000;
                while (reg->spare == sp && !reg->stopping &&
                       pthread_cond_timedwait(&reg->cond, &reg->lock, &until) != ETIMEDOUT)
                        ;
                if (reg->spare == sp) {
                        /* unused for that long, or the daemon stops */
                        reg->spare = NULL;
                        pthread_mutex_unlock(&reg->lock);
                        spare_free(sp, true);
                        pthread_mutex_lock(&reg->lock);
                        break;
                }
                /* taken: the next one */
        }
        reg->spare_thread = false;
        pthread_cond_broadcast(&reg->cond);
        pthread_mutex_unlock(&reg->lock);
        return NULL;
}

/* The ready spare, if any (then a new one is made behind it); starts the
 * spare thread when none runs. */
static struct spare *spare_take(struct supervisor_tasks *reg)
{
        pthread_mutex_lock(&reg->lock);
        struct spare *sp = reg->spare;
        reg->spare = NULL;
        if (!reg->spare_thread && !reg->stopping)
                reg->spare_thread = supervisor_thread(spare_run, reg, 128) == 0;
        pthread_cond_broadcast(&reg->cond);
        pthread_mutex_unlock(&reg->lock);
        return sp;
}

/* Gives sp the task t (its state dir renamed to t's): true when t->client
 * is sp's connection now. A spare that fails is shut down. */
static bool spare_adopt(struct spare *sp, struct task *t, const struct task_shim_args *a)
{
        struct berr e = { 0 };
        Berth__Shim__AdoptRequest ar = BERTH__SHIM__ADOPT_REQUEST__INIT;
        size_t n = 0;
        while (a->log_opts && a->log_opts[n])
                n++;
        ar.id = (char *) a->id;
        ar.bundle = (char *) a->bundle;
        ar.runtime = (char *) a->runtime;
        ar.runtime_root = (char *) (a->runtime_root ? a->runtime_root : "");
        ar.state_dir = (char *) a->state_dir;
        ar.log_path = (char *) (a->log_path ? a->log_path : "");
        ar.log_opts = (char **) a->log_opts;
        ar.n_log_opts = n;
        /* a state dir a dead shim left (a live one would be a task) */
        fs_rm_rf(t->state_dir);
        if (rename(sp->dir, t->state_dir) < 0) {
                log_warn("supervisor: task \"%s\": moving a spare shim's dir: %s", t->id, strerror(errno));
                spare_free(sp, true);
                return false;
        }
        if (task_shim_call(sp->client, "shim.Adopt", &ar.base, &berth__shim__adopt_response__descriptor,
                           SHIM_TIMEOUT_MS, NULL, &e) < 0) {
                log_warn("supervisor: task \"%s\": a spare shim: %s", t->id, e.msg);
                /* its dir is the task's now: that is what goes with it */
                char *moved = strdup(t->state_dir);
                if (moved) {
                        free(sp->dir);
                        sp->dir = moved;
                }
                spare_free(sp, true);
                return false;
        }
        t->client = sp->client;
        sp->client = NULL;
        spare_free(sp, false);
        return true;
}

/* Spares a crashed daemon left. */
static void spares_clean(const char *shims)
{
        _cleanup_closedir_ DIR *d = opendir(shims);
        struct dirent *de;
        while (d && (de = readdir(d))) {
                if (strncmp(de->d_name, ".spare-", 7) != 0)
                        continue;
                _cleanup_free_ char *dir = NULL;
                if (asprintf(&dir, "%s/%s", shims, de->d_name) < 0)
                        continue;
                pid_t pid = task_shim_pid_alive(dir);
                if (pid > 0)
                        kill(pid, SIGKILL);
                fs_rm_rf(dir);
        }
}

static void create_undo_shim(struct task *t)
{
        if (t->client) {
                Berth__Shim__DeleteRequest dr = BERTH__SHIM__DELETE_REQUEST__INIT;
                Berth__Shim__ShutdownRequest sr = BERTH__SHIM__SHUTDOWN_REQUEST__INIT;
                dr.exec_id = "";
                dr.force = true;
                sr.now = true;
                task_shim_call(t->client, "shim.Delete", &dr.base, &berth__shim__delete_response__descriptor, 10000,
                               NULL, NULL);
                task_shim_call(t->client, "shim.Shutdown", &sr.base, &berth__shim__shutdown_response__descriptor,
                               10000, NULL, NULL);
                rpc_client_close(t->client);
                t->client = NULL;
        }
        const char *del[] = { "delete", "--force", t->id, NULL };
        task_runtime_run(t->runtime, t->runtime_root, del);
        /* the shim removes its dir on Shutdown; give it a moment, then make sure */
        task_shim_wait_gone(t->state_dir, 500);
        fs_rm_rf(t->state_dir);
}

static void h_task_create_slow(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        struct supervisor *s = userdata;
        struct supervisor_tasks *reg = s->tasks;
        const Berth__Supervisor__CreateTaskRequest *req = (const void *) request;
        struct berr e = { 0 };
        _cleanup_json_ json_t *rec = NULL;
        struct snapshot_mount mnt = { 0 };
        struct task *t = NULL;
        bool reserved = false;
        /* before any goto: the cleanup runs at every exit */
        _cleanup_strv_free_ char **log_opts = NULL;

        pthread_mutex_lock(&reg->ctr_lock);
        if (container_store_get(reg->cs, req->id, &rec, &e) < 0 ||
            strcmp(str_or(json_string_value(json_object_get(rec, "state")), ""), "created") != 0) {
                if (!e.err)
                        berr_setx(&e, ENOENT, "container \"%s\" not found", req->id);
                pthread_mutex_unlock(&reg->ctr_lock);
                goto fail;
        }
        if (strlen(s->exec_root) + strlen("/shims/") + strlen(req->id) + strlen("/attach.sock") > SUN_PATH_MAX) {
                pthread_mutex_unlock(&reg->ctr_lock);
                berr_setx(&e, EINVAL,
                          "task \"%s\": the shim's socket %s/shims/%s/attach.sock would be longer than the %d "
                          "bytes a unix socket path may have: use a shorter --exec-root",
                          req->id, s->exec_root, req->id, SUN_PATH_MAX);
                goto fail;
        }
        t = calloc(1, sizeof(*t));
        if (t)
                pthread_cond_init(&t->cond, NULL);
        if (!t) {
                pthread_mutex_unlock(&reg->ctr_lock);
                berr_set(&e, ENOMEM, "task");
                goto fail;
        }
        t->reg = reg;
        t->refs = 1;
        t->creating = true;
        const char *runtime = runtime_of(s, rec);
        if (!(t->id = strdup(req->id)) || asprintf(&t->bundle, "%s/bundles/%s", s->exec_root, req->id) < 0 ||
            asprintf(&t->state_dir, "%s/shims/%s", s->exec_root, req->id) < 0 ||
            asprintf(&t->attach, "%s/attach.sock", t->state_dir) < 0 || !(t->runtime = strdup(runtime)) ||
            !(t->runtime_root = runtime_root_for(s, runtime))) {
                pthread_mutex_unlock(&reg->ctr_lock);
                task_free(t);
                t = NULL;
                berr_set(&e, ENOMEM, "task");
                goto fail;
        }
        pthread_mutex_lock(&reg->lock);
        if (find_locked(reg, req->id)) {
                pthread_mutex_unlock(&reg->lock);
                pthread_mutex_unlock(&reg->ctr_lock);
                task_free(t);
                t = NULL;
                berr_setx(&e, EEXIST, "task \"%s\" already exists", req->id);
                goto fail;
        }
        t->next = reg->tasks;
        reg->tasks = t;
        t->refs++;  /* the list's */
        reserved = true;
        pthread_mutex_unlock(&reg->lock);
        pthread_mutex_unlock(&reg->ctr_lock);

        json_t *spec = json_object_get(rec, "spec");
        t->terminal = json_is_true(json_object_get(json_object_get(spec, "process"), "terminal"));
        /* leftovers of an earlier attempt that a crash interrupted */
        task_bundle_remove(t->bundle, NULL);
        if (task_bundle_create_config(t->bundle, spec, &e) < 0) {
                berr_prefix(&e, "task \"%s\": bundle", req->id);
                goto fail;
        }
        /* the shim starts up while the rootfs is mounted: it needs only
         * config.json before shim.Create */
        json_get_strv(rec, "container", "log_opts", &log_opts, NULL);
        struct task_shim_args a = {
                .id = t->id,
                .bundle = t->bundle,
                .runtime = t->runtime,
                .runtime_root = t->runtime_root,
                .state_dir = t->state_dir,
                .log_path = json_string_value(json_object_get(rec, "log_path")),
                .log_opts = log_opts,
        };
        struct spare *spare = spare_take(reg);
        bool adopted = spare && spare_adopt(spare, t, &a);
        struct task_shim_spawn sp;
        if (!adopted && task_shim_spawn_start(s->shim_binary, &a, &sp, &e) < 0)
                goto fail_bundle;
        const char *key = json_string_value(json_object_get(rec, "snapshot_key"));
        int br = snapshot_overlay_mounts(s->sn, str_or(key, req->id), &mnt, &e);
        if (br < 0)
                berr_prefix(&e, "task \"%s\": snapshot", req->id);
        else if ((br = task_bundle_mount_rootfs(t->bundle, &mnt, &e)) < 0)
                berr_prefix(&e, "task \"%s\": bundle", req->id);
        struct berr se = { 0 };
        int sr = adopted ? 0 : task_shim_spawn_finish(&sp, &se);
        if (br < 0) {
                if (sr == 0 && !adopted && task_shim_connect(t->state_dir, &t->client, &se) < 0)
                        log_warn("supervisor: task \"%s\": %s", t->id, se.msg);
                if (sr == 0)
                        create_undo_shim(t);
                goto fail_bundle;
        }
        if (sr < 0) {
                e = se;
                goto fail_bundle;
        }
        if (!adopted && task_shim_connect(t->state_dir, &t->client, &e) < 0)
                goto fail_shim;
        Berth__Shim__CreateRequest cr = BERTH__SHIM__CREATE_REQUEST__INIT;
        Berth__Shim__CreateResponse *crr = NULL;
        cr.stdin = req->stdin || req->stdin_once;
        cr.stdin_once = req->stdin_once;
        cr.start = req->start;
        cr.hold_for_attach = req->hold_for_attach;
        if (task_shim_call(t->client, "shim.Create", &cr.base, &berth__shim__create_response__descriptor,
                           SHIM_TIMEOUT_MS, (ProtobufCMessage **) &crr, &e) < 0)
                goto fail_shim;
        uint32_t pid = crr->pid;
        protobuf_c_message_free_unpacked(&crr->base, NULL);

        pthread_mutex_lock(&reg->lock);
        t->pid = pid;
        t->shim_pid = (uint32_t) task_shim_pid_alive(t->state_dir);
        if (!req->start)
                t->status = STATUS(CREATED);
        else if (!t->exited) /* the monitor may have seen it go already */
                t->status = STATUS(RUNNING);
        t->creating = false;
        pthread_mutex_unlock(&reg->lock);
        snapshot_mount_done(&mnt);
        if (monitor_start(t, NULL) < 0)
                log_warn("supervisor: task \"%s\": cannot start its monitor thread", t->id);
        publish_task(s, "/tasks/create", t->id, "", pid, NULL);
        if (req->start)
                publish_task(s, "/tasks/start", t->id, "", pid, NULL);

        Berth__Supervisor__Task m;
        Berth__Supervisor__CreateTaskResponse resp = BERTH__SUPERVISOR__CREATE_TASK_RESPONSE__INIT;
        pthread_mutex_lock(&reg->lock);
        task_pb_locked(t, &m);
        resp.task = &m;
        rpc_call_reply(call, &resp.base);
        task_unref_locked(t);
        pthread_mutex_unlock(&reg->lock);
        return;

fail_shim:
        create_undo_shim(t);
fail_bundle: {
        struct berr be = { 0 };
        if (task_bundle_remove(t->bundle, &be) < 0)
                log_warn("supervisor: task \"%s\": %s", t->id, be.msg);
}
fail:
        snapshot_mount_done(&mnt);
        if (reserved) {
                pthread_mutex_lock(&reg->lock);
                unlink_locked(reg, t);
                task_unref_locked(t);
                pthread_mutex_unlock(&reg->lock);
        }
        supervisor_fail(call, -e.err, &e);
}

/* ---------------------------------------------------------------- tasks.*: simple calls to the shim */

/* t's client for one call (the call fails when there is none, or when
 * the task is being deleted); give it back with shim_release. A Delete
 * closes the client only once no one uses it. */
static struct rpc_client *shim_acquire(struct rpc_call *call, struct task *t)
{
        char reason[sizeof(t->exit.reason)];
        pthread_mutex_lock(&t->reg->lock);
        struct rpc_client *c = t->deleting ? NULL : t->client;
        bool deleting = t->deleting;
        if (c)
                t->users++;
        snprintf(reason, sizeof(reason), "%s", t->exit.reason[0] ? t->exit.reason : "stopped");
        pthread_mutex_unlock(&t->reg->lock);
        if (!c && call && deleting)
                supervisor_fail_msg(call, EBUSY, "task \"%s\" is being deleted", t->id);
        else if (!c && call)
                supervisor_fail_msg(call, EBUSY, "task \"%s\": its shim is gone (%s): only delete is possible", t->id, reason);
        return c;
}

static void shim_release(struct task *t)
{
        pthread_mutex_lock(&t->reg->lock);
        t->users--;
        pthread_cond_broadcast(&t->cond);
        pthread_mutex_unlock(&t->reg->lock);
}

static void h_task_start_slow(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        struct supervisor *s = userdata;
        const Berth__Supervisor__StartTaskRequest *req = (const void *) request;
        struct berr e = { 0 };
        struct task *t = task_get(s, call, req->id);
        if (!t)
                return;
        bool is_exec = req->exec_id && *req->exec_id;
        if (is_exec) {
                pthread_mutex_lock(&s->tasks->lock);
                bool known = exec_find_locked(t, req->exec_id) != NULL;
                pthread_mutex_unlock(&s->tasks->lock);
                if (!known) {
                        supervisor_fail_msg(call, ENOENT, "task \"%s\": exec \"%s\" not found", t->id, req->exec_id);
                        task_unref(t);
                        return;
                }
        }
        Berth__Shim__StartRequest sr = BERTH__SHIM__START_REQUEST__INIT;
        Berth__Shim__StartResponse *resp = NULL;
        sr.exec_id = (char *) str_or(req->exec_id, "");
        struct rpc_client *cl = shim_acquire(call, t);
        if (!cl) {
                task_unref(t);
                return;
        }
        int rc = task_shim_call(cl, "shim.Start", &sr.base, &berth__shim__start_response__descriptor, SHIM_TIMEOUT_MS,
                                (ProtobufCMessage **) &resp, &e);
        shim_release(t);
        if (rc < 0) {
                supervisor_fail(call, -e.err, &e);
                task_unref(t);
                return;
        }
        Berth__Supervisor__StartTaskResponse r = BERTH__SUPERVISOR__START_TASK_RESPONSE__INIT;
        r.pid = resp->pid;
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        if (is_exec) {
                pthread_mutex_lock(&s->tasks->lock);
                struct exec_proc *x = exec_find_locked(t, req->exec_id);
                if (x)
                        x->started = true;
                pthread_mutex_unlock(&s->tasks->lock);
                monitor_start(t, req->exec_id);
                publish_task(s, "/tasks/exec-started", t->id, req->exec_id, r.pid, NULL);
        } else {
                pthread_mutex_lock(&s->tasks->lock);
                if (!t->exited)
                        t->status = STATUS(RUNNING);
                pthread_mutex_unlock(&s->tasks->lock);
                publish_task(s, "/tasks/start", t->id, "", r.pid, NULL);
        }
        rpc_call_reply(call, &r.base);
        task_unref(t);
}

/* One call to t's shim; on success the reply (may be NULL if unwanted). */
static int shim_simple(struct rpc_call *call, struct supervisor *s, const char *id, const char *method,
                       const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_type,
                       ProtobufCMessage **ret_reply, struct task **ret_task)
{
        struct berr e = { 0 };
        struct task *t = task_get(s, call, id);
        if (!t)
                return -ENOENT;
        struct rpc_client *cl = shim_acquire(call, t);
        if (!cl) {
                task_unref(t);
                return -EBUSY;
        }
        int r = task_shim_call(cl, method, req, reply_type, SHIM_TIMEOUT_MS, ret_reply, &e);
        shim_release(t);
        if (r < 0) {
                supervisor_fail(call, r, &e);
                task_unref(t);
                return r;
        }
        if (ret_task)
                *ret_task = t;
        else
                task_unref(t);
        return 0;
}

static void h_task_kill_slow(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Supervisor__KillTaskRequest *req = (const void *) request;
        Berth__Shim__KillRequest kr = BERTH__SHIM__KILL_REQUEST__INIT;
        kr.exec_id = (char *) str_or(req->exec_id, "");
        kr.signal = req->signal ? req->signal : SIGTERM;
        kr.all = req->all;
        if (shim_simple(call, userdata, req->id, "shim.Kill", &kr.base, &berth__shim__kill_response__descriptor, NULL,
                        NULL) < 0)
                return;
        Berth__Supervisor__KillTaskResponse r = BERTH__SUPERVISOR__KILL_TASK_RESPONSE__INIT;
        rpc_call_reply(call, &r.base);
}

static void h_task_exec_slow(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        struct supervisor *s = userdata;
        const Berth__Supervisor__ExecTaskRequest *req = (const void *) request;
        if (!req->exec_id || !container_id_valid(req->exec_id)) {
                supervisor_fail_msg(call, EINVAL, "invalid exec id \"%s\"", str_or(req->exec_id, ""));
                return;
        }
        struct task *t = task_get(s, call, req->id);
        if (!t)
                return;
        struct exec_proc *x = calloc(1, sizeof(*x));
        if (!x || !(x->id = strdup(req->exec_id))) {
                free(x);
                task_unref(t);
                supervisor_fail_msg(call, ENOMEM, "out of memory");
                return;
        }
        pthread_mutex_lock(&s->tasks->lock);
        bool dup = exec_find_locked(t, req->exec_id) != NULL;
        if (!dup) {
                x->next = t->execs;
                t->execs = x;
        }
        pthread_mutex_unlock(&s->tasks->lock);
        if (dup) {
                exec_free(x);
                task_unref(t);
                supervisor_fail_msg(call, EEXIST, "task \"%s\": exec \"%s\" already exists", req->id, req->exec_id);
                return;
        }
        Berth__Shim__ExecRequest er = BERTH__SHIM__EXEC_REQUEST__INIT;
        er.exec_id = req->exec_id;
        er.terminal = req->terminal;
        er.stdin = req->stdin || req->stdin_once;
        er.stdin_once = req->stdin_once;
        er.process_json = req->process_json;
        struct berr e = { 0 };
        struct rpc_client *cl = shim_acquire(NULL, t);
        int r = cl ? task_shim_call(cl, "shim.Exec", &er.base, &berth__shim__exec_response__descriptor, SHIM_TIMEOUT_MS,
                                    NULL, &e)
                   : berr_setx(&e, EBUSY, "task \"%s\": its shim is gone or it is being deleted", req->id);
        if (cl)
                shim_release(t);
        if (r < 0) {
                pthread_mutex_lock(&s->tasks->lock);
                for (struct exec_proc **p = &t->execs; *p; p = &(*p)->next)
                        if (*p == x) {
                                *p = x->next;
                                break;
                        }
                pthread_cond_broadcast(&t->cond); /* a Wait on it: "was deleted" */
                pthread_mutex_unlock(&s->tasks->lock);
                exec_free(x);
                task_unref(t);
                supervisor_fail(call, r, &e);
                return;
        }
        publish_task(s, "/tasks/exec-added", req->id, req->exec_id, 0, NULL);
        task_unref(t);
        Berth__Supervisor__ExecTaskResponse resp = BERTH__SUPERVISOR__EXEC_TASK_RESPONSE__INIT;
        rpc_call_reply(call, &resp.base);
}

static void h_task_pids_slow(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Supervisor__PidsTaskRequest *req = (const void *) request;
        Berth__Shim__PidsRequest pr = BERTH__SHIM__PIDS_REQUEST__INIT;
        Berth__Shim__PidsResponse *resp = NULL;
        if (shim_simple(call, userdata, req->id, "shim.Pids", &pr.base, &berth__shim__pids_response__descriptor,
                        (ProtobufCMessage **) &resp, NULL) < 0)
                return;
        Berth__Supervisor__PidsTaskResponse r = BERTH__SUPERVISOR__PIDS_TASK_RESPONSE__INIT;
        Berth__Supervisor__ProcessInfo *pi = calloc(resp->n_processes + 1, sizeof(*pi));
        Berth__Supervisor__ProcessInfo **pv = calloc(resp->n_processes + 1, sizeof(*pv));
        if (!pi || !pv) {
                supervisor_fail_msg(call, ENOMEM, "out of memory");
        } else {
                for (size_t i = 0; i < resp->n_processes; i++) {
                        berth__supervisor__process_info__init(&pi[i]);
                        pi[i].pid = resp->processes[i]->pid;
                        pi[i].exec_id = resp->processes[i]->exec_id;
                        pv[i] = &pi[i];
                }
                r.processes = pv;
                r.n_processes = resp->n_processes;
                rpc_call_reply(call, &r.base);
        }
        free(pi);
        free(pv);
        protobuf_c_message_free_unpacked(&resp->base, NULL);
}

static void pause_resume(struct rpc_call *call, struct supervisor *s, const char *id, bool pause)
{
        Berth__Shim__PauseRequest pr = BERTH__SHIM__PAUSE_REQUEST__INIT;
        Berth__Shim__ResumeRequest rr = BERTH__SHIM__RESUME_REQUEST__INIT;
        struct task *t = NULL;
        if (shim_simple(call, s, id, pause ? "shim.Pause" : "shim.Resume", pause ? &pr.base : &rr.base,
                        pause ? &berth__shim__pause_response__descriptor : &berth__shim__resume_response__descriptor,
                        NULL, &t) < 0)
                return;
        pthread_mutex_lock(&s->tasks->lock);
        if (!t->exited)
                t->status = pause ? STATUS(PAUSED) : STATUS(RUNNING);
        uint32_t pid = t->pid;
        pthread_mutex_unlock(&s->tasks->lock);
        publish_task(s, pause ? "/tasks/paused" : "/tasks/resumed", id, "", pid, NULL);
        task_unref(t);
        Berth__Supervisor__PauseTaskResponse r = BERTH__SUPERVISOR__PAUSE_TASK_RESPONSE__INIT;
        if (!pause)
                r.base.descriptor = &berth__supervisor__resume_task_response__descriptor;
        rpc_call_reply(call, &r.base);
}

static void h_task_pause_slow(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        pause_resume(call, userdata, ((const Berth__Supervisor__PauseTaskRequest *) request)->id, true);
}

static void h_task_resume_slow(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        pause_resume(call, userdata, ((const Berth__Supervisor__ResumeTaskRequest *) request)->id, false);
}

static void h_task_update_slow(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Supervisor__UpdateTaskRequest *req = (const void *) request;
        Berth__Shim__UpdateRequest ur = BERTH__SHIM__UPDATE_REQUEST__INIT;
        ur.resources_json = req->resources_json;
        if (shim_simple(call, userdata, req->id, "shim.Update", &ur.base, &berth__shim__update_response__descriptor,
                        NULL, NULL) < 0)
                return;
        Berth__Supervisor__UpdateTaskResponse r = BERTH__SUPERVISOR__UPDATE_TASK_RESPONSE__INIT;
        rpc_call_reply(call, &r.base);
}

static void h_task_metrics_slow(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Supervisor__MetricsTaskRequest *req = (const void *) request;
        Berth__Shim__StatsRequest sr = BERTH__SHIM__STATS_REQUEST__INIT;
        Berth__Shim__StatsResponse *st = NULL;
        if (shim_simple(call, userdata, req->id, "shim.Stats", &sr.base, &berth__shim__stats_response__descriptor,
                        (ProtobufCMessage **) &st, NULL) < 0)
                return;
        Berth__Supervisor__MetricsTaskResponse r = BERTH__SUPERVISOR__METRICS_TASK_RESPONSE__INIT;
        r.cpu_usage_ns = st->cpu_usage_ns;
        r.memory_usage = st->memory_usage;
        r.memory_limit = st->memory_limit;
        r.memory_max_usage = st->memory_max_usage;
        r.oom_kills = st->oom_kills;
        r.pids_current = st->pids_current;
        r.pids_limit = st->pids_limit;
        r.cgroup_version = st->cgroup_version;
        rpc_call_reply(call, &r.base);
        protobuf_c_message_free_unpacked(&st->base, NULL);
}

static void h_task_resize_slow(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Supervisor__ResizePtyTaskRequest *req = (const void *) request;
        Berth__Shim__ResizePtyRequest rr = BERTH__SHIM__RESIZE_PTY_REQUEST__INIT;
        rr.exec_id = (char *) str_or(req->exec_id, "");
        rr.width = req->width;
        rr.height = req->height;
        if (shim_simple(call, userdata, req->id, "shim.ResizePty", &rr.base,
                        &berth__shim__resize_pty_response__descriptor, NULL, NULL) < 0)
                return;
        Berth__Supervisor__ResizePtyTaskResponse r = BERTH__SUPERVISOR__RESIZE_PTY_TASK_RESPONSE__INIT;
        rpc_call_reply(call, &r.base);
}

static void h_task_close_stdin_slow(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Supervisor__CloseStdinTaskRequest *req = (const void *) request;
        Berth__Shim__CloseStdinRequest cr = BERTH__SHIM__CLOSE_STDIN_REQUEST__INIT;
        cr.exec_id = (char *) str_or(req->exec_id, "");
        if (shim_simple(call, userdata, req->id, "shim.CloseStdin", &cr.base,
                        &berth__shim__close_stdin_response__descriptor, NULL, NULL) < 0)
                return;
        Berth__Supervisor__CloseStdinTaskResponse r = BERTH__SUPERVISOR__CLOSE_STDIN_TASK_RESPONSE__INIT;
        rpc_call_reply(call, &r.base);
}

/* ---------------------------------------------------------------- tasks.Get / List / Wait */

static void h_task_get_slow(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        struct supervisor *s = userdata;
        const Berth__Supervisor__GetTaskRequest *req = (const void *) request;
        struct task *t = task_get(s, call, req->id);
        if (!t)
                return;
        Berth__Supervisor__Task m;
        Berth__Supervisor__GetTaskResponse r = BERTH__SUPERVISOR__GET_TASK_RESPONSE__INIT;
        if (!req->exec_id || !*req->exec_id) {
                pthread_mutex_lock(&s->tasks->lock);
                task_pb_locked(t, &m);
                r.task = &m;
                rpc_call_reply(call, &r.base);
                task_unref_locked(t);
                pthread_mutex_unlock(&s->tasks->lock);
                return;
        }
        Berth__Shim__StateRequest sr = BERTH__SHIM__STATE_REQUEST__INIT;
        Berth__Shim__StateResponse *st = NULL;
        struct berr e = { 0 };
        sr.exec_id = req->exec_id;
        struct rpc_client *cl = shim_acquire(call, t);
        if (!cl) {
                task_unref(t);
                return;
        }
        int rc = task_shim_call(cl, "shim.State", &sr.base, &berth__shim__state_response__descriptor, SHIM_TIMEOUT_MS,
                                (ProtobufCMessage **) &st, &e);
        shim_release(t);
        if (rc < 0) {
                supervisor_fail(call, -e.err, &e);
                task_unref(t);
                return;
        }
        berth__supervisor__task__init(&m);
        m.id = t->id;
        m.pid = st->pid;
        m.status = (Berth__Supervisor__TaskStatus) st->status;
        m.terminal = st->terminal;
        m.shim_pid = t->shim_pid;
        m.bundle = t->bundle;
        m.attach_socket = t->attach;
        if (st->exit) {
                m.exit_code = (uint32_t) st->exit->exit_code;
                m.exit_signal = st->exit->signal;
                m.oom_killed = st->exit->oom_killed;
                m.exited_at = st->exit->exited_at;
        }
        r.task = &m;
        rpc_call_reply(call, &r.base);
        protobuf_c_message_free_unpacked(&st->base, NULL);
        task_unref(t);
}

static void h_task_get(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Supervisor__GetTaskRequest *req = (const void *) request;
        if (req->exec_id && *req->exec_id)
                supervisor_defer(call, request, userdata, h_task_get_slow);
        else
                h_task_get_slow(call, request, userdata);  /* from memory: does not block */
}

static int cmp_task(const void *a, const void *b)
{
        return strcmp((*(Berth__Supervisor__Task *const *) a)->id, (*(Berth__Supervisor__Task *const *) b)->id);
}

static void h_task_list(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        struct supervisor *s = userdata;
        struct supervisor_tasks *reg = s->tasks;
        (void) request;
        Berth__Supervisor__ListTasksResponse r = BERTH__SUPERVISOR__LIST_TASKS_RESPONSE__INIT;
        pthread_mutex_lock(&reg->lock);
        size_t n = 0;
        for (struct task *t = reg->tasks; t; t = t->next)
                n += !t->creating;
        Berth__Supervisor__Task *m = calloc(n + 1, sizeof(*m));
        Berth__Supervisor__Task **v = calloc(n + 1, sizeof(*v));
        if (m && v) {
                size_t i = 0;
                for (struct task *t = reg->tasks; t; t = t->next) {
                        if (t->creating)
                                continue;
                        task_pb_locked(t, &m[i]);
                        v[i] = &m[i];
                        i++;
                }
                qsort(v, n, sizeof(*v), cmp_task);
                r.tasks = v;
                r.n_tasks = n;
                rpc_call_reply(call, &r.base);
        } else {
                supervisor_fail_msg(call, ENOMEM, "out of memory");
        }
        pthread_mutex_unlock(&reg->lock);
        free(m);
        free(v);
}

static void reply_wait(struct rpc_call *call, const struct task_exit *x)
{
        Berth__Supervisor__WaitTaskResponse r = BERTH__SUPERVISOR__WAIT_TASK_RESPONSE__INIT;
        r.exit_code = x->code;
        r.exit_signal = x->signal;
        r.oom_killed = x->oom_killed;
        r.exited_at = (char *) x->exited_at;
        r.exit_reason = (char *) x->reason;
        rpc_call_reply(call, &r.base);
}

static void h_task_wait_slow(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        struct supervisor *s = userdata;
        struct supervisor_tasks *reg = s->tasks;
        const Berth__Supervisor__WaitTaskRequest *req = (const void *) request;
        const char *exec_id = req->exec_id && *req->exec_id ? req->exec_id : NULL;
        struct task *t = task_get(s, call, req->id);
        if (!t)
                return;
        if (exec_id) {
                /* an exec started before a restart: watch it now */
                pthread_mutex_lock(&reg->lock);
                bool known = exec_find_locked(t, exec_id) != NULL;
                pthread_mutex_unlock(&reg->lock);
                if (!known) {
                        Berth__Shim__StateRequest sr = BERTH__SHIM__STATE_REQUEST__INIT;
                        struct berr e = { 0 };
                        sr.exec_id = (char *) exec_id;
                        struct exec_proc *x = calloc(1, sizeof(*x));
                        struct rpc_client *cl = shim_acquire(NULL, t);
                        int rc = cl && x && (x->id = strdup(exec_id))
                                         ? task_shim_call(cl, "shim.State", &sr.base,
                                                          &berth__shim__state_response__descriptor, SHIM_TIMEOUT_MS,
                                                          NULL, &e)
                                         : -ENOENT;
                        if (cl)
                                shim_release(t);
                        if (rc < 0) {
                                exec_free(x);
                                supervisor_fail_msg(call, ENOENT, "task \"%s\": exec \"%s\" not found", t->id, exec_id);
                                task_unref(t);
                                return;
                        }
                        x->started = true;
                        pthread_mutex_lock(&reg->lock);
                        if (exec_find_locked(t, exec_id)) {
                                exec_free(x);
                        } else {
                                x->next = t->execs;
                                t->execs = x;
                        }
                        pthread_mutex_unlock(&reg->lock);
                }
                monitor_start(t, exec_id);
        }
        pthread_mutex_lock(&reg->lock);
        for (;;) {
                struct exec_proc *x = exec_id ? exec_find_locked(t, exec_id) : NULL;
                if (exec_id && !x) {
                        pthread_mutex_unlock(&reg->lock);
                        supervisor_fail_msg(call, ENOENT, "task \"%s\": exec \"%s\" was deleted", t->id, exec_id);
                        break;
                }
                if (exec_id ? x->exited : t->exited) {
                        struct task_exit ex = exec_id ? x->exit : t->exit;
                        pthread_mutex_unlock(&reg->lock);
                        reply_wait(call, &ex);
                        break;
                }
                if (t->removed || s->stopping || reg->stopping) {
                        pthread_mutex_unlock(&reg->lock);
                        supervisor_fail_msg(call, t->removed ? ENOENT : ECONNREFUSED, "task \"%s\": %s", t->id,
                                 t->removed ? "deleted while waiting" : "the supervisor is stopping");
                        break;
                }
                /* woken by the exit, the removal, or supervisor_tasks_stop */
                pthread_cond_wait(&t->cond, &reg->lock);
        }
        task_unref(t);
}

/* ---------------------------------------------------------------- tasks.Delete */

static void delete_exec(struct rpc_call *call, struct supervisor *s, struct task *t, const char *exec_id)
{
        Berth__Shim__DeleteRequest dr = BERTH__SHIM__DELETE_REQUEST__INIT;
        Berth__Shim__DeleteResponse *resp = NULL;
        struct berr e = { 0 };
        dr.exec_id = (char *) exec_id;
        struct rpc_client *cl = shim_acquire(call, t);
        if (!cl)
                return;
        int rc = task_shim_call(cl, "shim.Delete", &dr.base, &berth__shim__delete_response__descriptor,
                                SHIM_TIMEOUT_MS, (ProtobufCMessage **) &resp, &e);
        shim_release(t);
        if (rc < 0) {
                supervisor_fail(call, -e.err, &e);
                return;
        }
        struct task_exit x;
        exit_from_pb(resp->exit, &x);
        protobuf_c_message_free_unpacked(&resp->base, NULL);
        pthread_mutex_lock(&s->tasks->lock);
        for (struct exec_proc **p = &t->execs; *p; p = &(*p)->next)
                if (strcmp((*p)->id, exec_id) == 0) {
                        struct exec_proc *d = *p;
                        if (d->monitored) {
                                /* its monitor still looks at it: leave it to be freed with the task */
                                d->exited = true;
                                d->exit = x;
                                break;
                        }
                        *p = d->next;
                        exec_free(d);
                        break;
                }
        pthread_cond_broadcast(&t->cond);
        pthread_mutex_unlock(&s->tasks->lock);
        Berth__Supervisor__DeleteTaskResponse r = BERTH__SUPERVISOR__DELETE_TASK_RESPONSE__INIT;
        r.exit_code = x.code;
        r.exited_at = x.exited_at;
        rpc_call_reply(call, &r.base);
}

static void h_task_delete_slow(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        struct supervisor *s = userdata;
        struct supervisor_tasks *reg = s->tasks;
        const Berth__Supervisor__DeleteTaskRequest *req = (const void *) request;
        struct berr e = { 0 };
        struct task *t = task_get(s, call, req->id);
        if (!t)
                return;
        if (req->exec_id && *req->exec_id) {
                delete_exec(call, s, t, req->exec_id);
                task_unref(t);
                return;
        }
        pthread_mutex_lock(&reg->lock);
        bool busy = t->deleting;
        t->deleting = true;
        pthread_mutex_unlock(&reg->lock);
        if (busy) {
                supervisor_fail_msg(call, EBUSY, "task \"%s\" is being deleted", t->id);
                task_unref(t);
                return;
        }
        if (t->client) {
                Berth__Shim__DeleteRequest dr = BERTH__SHIM__DELETE_REQUEST__INIT;
                Berth__Shim__DeleteResponse *resp = NULL;
                dr.exec_id = "";
                dr.force = req->force;
                int r = task_shim_call(t->client, "shim.Delete", &dr.base, &berth__shim__delete_response__descriptor,
                                       SHIM_TIMEOUT_MS, (ProtobufCMessage **) &resp, &e);
                if (r < 0 && task_shim_pid_alive(t->state_dir) > 0) {
                        pthread_mutex_lock(&reg->lock);
                        t->deleting = false;
                        pthread_mutex_unlock(&reg->lock);
                        supervisor_fail(call, r, &e);
                        task_unref(t);
                        return;
                }
                if (r >= 0) {
                        struct task_exit x;
                        exit_from_pb(resp->exit, &x);
                        protobuf_c_message_free_unpacked(&resp->base, NULL);
                        if (record_exit(t, &x))
                                publish_task(s, "/tasks/exit", t->id, "", x.pid, &x);
                        Berth__Shim__ShutdownRequest sr = BERTH__SHIM__SHUTDOWN_REQUEST__INIT;
                        sr.now = true;
                        if (task_shim_call(t->client, "shim.Shutdown", &sr.base,
                                           &berth__shim__shutdown_response__descriptor, SHIM_TIMEOUT_MS, NULL, &e) < 0)
                                log_warn("supervisor: task \"%s\": %s", t->id, e.msg);
                } else {
                        /* the shim died under us */
                        task_shim_died(t, true);
                }
                /* The monitors have their answers once the processes are
                 * gone (or the connection when the shim goes); then our
                 * connection is closed: the shim waits for that to exit. */
                pthread_mutex_lock(&reg->lock);
                for (int i = 0; i < 50 && (t->monitors > 0 || t->users > 0); i++) {
                        struct timespec until;
                        clock_gettime(CLOCK_REALTIME, &until);
                        until.tv_nsec += 100 * 1000000L;
                        if (until.tv_nsec >= 1000000000L) {
                                until.tv_sec++;
                                until.tv_nsec -= 1000000000L;
                        }
                        pthread_cond_timedwait(&t->cond, &reg->lock, &until);
                }
                struct rpc_client *client = t->monitors == 0 && t->users == 0 ? t->client : NULL;
                if (client)
                        t->client = NULL;
                pthread_mutex_unlock(&reg->lock);
                rpc_client_close(client);
        } else {
                const char *del[] = { "delete", "--force", t->id, NULL };
                task_runtime_run(t->runtime, t->runtime_root, del);
        }
        if (task_bundle_remove(t->bundle, &e) < 0)
                log_warn("supervisor: task \"%s\": %s", t->id, e.msg);
        /* Shutdown removes the shim's dir; what a dead shim left goes here */
        task_shim_wait_gone(t->state_dir, 500);
        fs_rm_rf(t->state_dir);

        pthread_mutex_lock(&reg->lock);
        struct task_exit x = t->exit;
        uint32_t pid = t->pid;
        unlink_locked(reg, t);
        pthread_mutex_unlock(&reg->lock);
        publish_task(s, "/tasks/delete", req->id, "", pid, &x);
        Berth__Supervisor__DeleteTaskResponse r = BERTH__SUPERVISOR__DELETE_TASK_RESPONSE__INIT;
        r.exit_code = x.code;
        r.exited_at = x.exited_at;
        rpc_call_reply(call, &r.base);
        task_unref(t);
}

/* ---------------------------------------------------------------- for container-service.c */

struct container_store *supervisor_tasks_containers(struct supervisor *s)
{
        return s->tasks->cs;
}

void supervisor_tasks_lock_containers(struct supervisor *s)
{
        pthread_mutex_lock(&s->tasks->ctr_lock);
}

void supervisor_tasks_unlock_containers(struct supervisor *s)
{
        pthread_mutex_unlock(&s->tasks->ctr_lock);
}

bool supervisor_tasks_has_task(struct supervisor *s, const char *id)
{
        pthread_mutex_lock(&s->tasks->lock);
        bool has = find_locked(s->tasks, id) != NULL;
        pthread_mutex_unlock(&s->tasks->lock);
        return has;
}

/* ---------------------------------------------------------------- the method table */

#define DEFERRED(name, slow)                                                                    \
        static void name(struct rpc_call *call, const ProtobufCMessage *request, void *userdata) \
        {                                                                                       \
                supervisor_defer(call, request, userdata, slow);                                \
        }

DEFERRED(h_task_create, h_task_create_slow)
DEFERRED(h_task_start, h_task_start_slow)
DEFERRED(h_task_kill, h_task_kill_slow)
DEFERRED(h_task_wait, h_task_wait_slow)
DEFERRED(h_task_delete, h_task_delete_slow)
DEFERRED(h_task_exec, h_task_exec_slow)
DEFERRED(h_task_pids, h_task_pids_slow)
DEFERRED(h_task_pause, h_task_pause_slow)
DEFERRED(h_task_resume, h_task_resume_slow)
DEFERRED(h_task_update, h_task_update_slow)
DEFERRED(h_task_metrics, h_task_metrics_slow)
DEFERRED(h_task_resize, h_task_resize_slow)
DEFERRED(h_task_close_stdin, h_task_close_stdin_slow)

#define M(svc, msg, lower, fn)                                                                      \
        {                                                                                                 \
                svc "." #msg, &berth__supervisor__##lower##_request__descriptor,                          \
                        &berth__supervisor__##lower##_response__descriptor, fn                            \
        }

const struct rpc_method supervisor_tasks_methods[] = {
        M("containers", CreateContainer, create_container, container_service_create),
        M("containers", GetContainer, get_container, container_service_get),
        M("containers", ListContainers, list_containers, container_service_list),
        M("containers", UpdateContainer, update_container, container_service_update),
        M("containers", DeleteContainer, delete_container, container_service_delete),
        M("tasks", CreateTask, create_task, h_task_create),
        M("tasks", StartTask, start_task, h_task_start),
        M("tasks", GetTask, get_task, h_task_get),
        M("tasks", ListTasks, list_tasks, h_task_list),
        M("tasks", KillTask, kill_task, h_task_kill),
        M("tasks", WaitTask, wait_task, h_task_wait),
        M("tasks", DeleteTask, delete_task, h_task_delete),
        M("tasks", ExecTask, exec_task, h_task_exec),
        M("tasks", PidsTask, pids_task, h_task_pids),
        M("tasks", PauseTask, pause_task, h_task_pause),
        M("tasks", ResumeTask, resume_task, h_task_resume),
        M("tasks", UpdateTask, update_task, h_task_update),
        M("tasks", MetricsTask, metrics_task, h_task_metrics),
        M("tasks", ResizePtyTask, resize_pty_task, h_task_resize),
        M("tasks", CloseStdinTask, close_stdin_task, h_task_close_stdin),
};
const size_t supervisor_tasks_n_methods = ARRAY_SIZE(supervisor_tasks_methods);

/* ---------------------------------------------------------------- recovery */

/* A live shim whose container record is gone: shut it down. */
static void shim_discard(struct supervisor *s, const char *id, const char *state_dir, struct rpc_client *c)
{
        struct task t = { .id = (char *) id, .state_dir = (char *) state_dir, .client = c };
        _cleanup_free_ char *bundle = NULL;
        t.runtime = s->default_runtime;
        t.runtime_root = runtime_root_for(s, s->default_runtime);
        create_undo_shim(&t);
        if (asprintf(&bundle, "%s/bundles/%s", s->exec_root, id) >= 0)
                task_bundle_remove(bundle, NULL);
        free(t.runtime_root);
        log_info("supervisor: shim of \"%s\" has no container: shut down and removed", id);
}

static void recover_shim(struct supervisor *s, const char *id)
{
        struct supervisor_tasks *reg = s->tasks;
        _cleanup_free_ char *state_dir = NULL;
        _cleanup_json_ json_t *rec = NULL;
        struct berr e = { 0 };
        struct rpc_client *c = NULL;
        if (asprintf(&state_dir, "%s/shims/%s", s->exec_root, id) < 0)
                return;
        bool have_rec = container_id_valid(id) && container_store_get(reg->cs, id, &rec, NULL) >= 0;
        pid_t pid = task_shim_pid_alive(state_dir);
        bool live = false;
        Berth__Shim__StateResponse *st = NULL;
        if (pid > 0 && task_shim_connect(state_dir, &c, &e) >= 0) {
                Berth__Shim__ConnectRequest cr = BERTH__SHIM__CONNECT_REQUEST__INIT;
                Berth__Shim__StateRequest sr = BERTH__SHIM__STATE_REQUEST__INIT;
                sr.exec_id = "";
                live = task_shim_call(c, "shim.Connect", &cr.base, &berth__shim__connect_response__descriptor, 5000,
                                      NULL, &e) >= 0 &&
                       task_shim_call(c, "shim.State", &sr.base, &berth__shim__state_response__descriptor, 5000,
                                      (ProtobufCMessage **) &st, &e) >= 0;
                if (!live)
                        log_warn("supervisor: shim of \"%s\" (pid %d) does not answer: %s", id, (int) pid, e.msg);
        }
        if (!have_rec || (live && st->status == BERTH__SHIM__STATUS__UNKNOWN)) {
                if (st)
                        protobuf_c_message_free_unpacked(&st->base, NULL);
                if (live || c) {
                        shim_discard(s, id, state_dir, c);
                } else {
                        _cleanup_free_ char *bundle = NULL;
                        const char *del[] = { "delete", "--force", id, NULL };
                        _cleanup_free_ char *rr = runtime_root_for(s, s->default_runtime);
                        task_runtime_run(s->default_runtime, rr, del);
                        if (asprintf(&bundle, "%s/bundles/%s", s->exec_root, id) >= 0)
                                task_bundle_remove(bundle, NULL);
                        fs_rm_rf(state_dir);
                        log_info("supervisor: leftovers of \"%s\" (no container, no shim) removed", id);
                }
                return;
        }
        struct task *t = calloc(1, sizeof(*t));
        if (t)
                pthread_cond_init(&t->cond, NULL);
        const char *runtime = runtime_of(s, rec);
        if (!t || !(t->id = strdup(id)) || asprintf(&t->bundle, "%s/bundles/%s", s->exec_root, id) < 0 ||
            !(t->state_dir = strdup(state_dir)) || asprintf(&t->attach, "%s/attach.sock", state_dir) < 0 ||
            !(t->runtime = strdup(runtime)) || !(t->runtime_root = runtime_root_for(s, runtime))) {
                if (t)
                        task_free(t);
                rpc_client_close(c);
                if (st)
                        protobuf_c_message_free_unpacked(&st->base, NULL);
                return;
        }
        t->reg = reg;
        t->refs = 1;  /* the list's */
        if (live) {
                t->client = c;
                t->shim_pid = (uint32_t) pid;
                t->pid = st->pid;
                t->terminal = st->terminal;
                t->status = (int) st->status;
                protobuf_c_message_free_unpacked(&st->base, NULL);
        } else {
                rpc_client_close(c);
                t->status = STATUS(STOPPED);
        }
        pthread_mutex_lock(&reg->lock);
        t->next = reg->tasks;
        reg->tasks = t;
        pthread_mutex_unlock(&reg->lock);
        if (live) {
                /* the monitor records an exit that happened meanwhile at once */
                monitor_start(t, NULL);
                log_info("supervisor: task \"%s\": reconnected to its shim (pid %d)", id, (int) pid);
        } else {
                task_shim_died(t, false);
                log_info("supervisor: task \"%s\": its shim is gone; exit %u (%s)", id, t->exit.code,
                         t->exit.reason[0] ? t->exit.reason : "recorded by the shim");
        }
}

int supervisor_tasks_init(struct supervisor *s, struct berr *e)
{
        struct supervisor_tasks *reg = calloc(1, sizeof(*reg));
        if (!reg)
                return berr_set(e, ENOMEM, "tasks");
        int r = container_store_open(s->root, &reg->cs, e);
        if (r < 0) {
                free(reg);
                return r;
        }
        reg->s = s;
        pthread_mutex_init(&reg->lock, NULL);
        pthread_mutex_init(&reg->ctr_lock, NULL);
        pthread_cond_init(&reg->cond, NULL);
        s->tasks = reg;

        container_service_recover(s);
        _cleanup_free_ char *shims = NULL, *bundles = NULL;
        if (asprintf(&shims, "%s/shims", s->exec_root) < 0 || asprintf(&bundles, "%s/bundles", s->exec_root) < 0)
                return berr_set(e, ENOMEM, "tasks");
        fs_mkdir_p(shims, 0711);
        fs_mkdir_p(bundles, 0711);
        spares_clean(shims);
        _cleanup_closedir_ DIR *d = opendir(shims);
        struct dirent *de;
        while (d && (de = readdir(d)))
                if (de->d_name[0] != '.')
                        recover_shim(s, de->d_name);
        /* bundles without a task: a create that a crash interrupted */
        _cleanup_closedir_ DIR *b = opendir(bundles);
        while (b && (de = readdir(b))) {
                if (de->d_name[0] == '.')
                        continue;
                pthread_mutex_lock(&reg->lock);
                bool known = find_locked(reg, de->d_name) != NULL;
                pthread_mutex_unlock(&reg->lock);
                if (known)
                        continue;
                _cleanup_free_ char *p = NULL;
                struct berr be = { 0 };
                if (asprintf(&p, "%s/%s", bundles, de->d_name) >= 0 && task_bundle_remove(p, &be) < 0)
                        log_warn("supervisor: %s", be.msg);
                else
                        log_info("supervisor: removed the bundle of \"%s\" (no task)", de->d_name);
        }
        return 0;
}

void supervisor_tasks_stop(struct supervisor *s)
{
        struct supervisor_tasks *reg = s->tasks;
        if (!reg)
                return;
        /* s->stopping is set: a waiter checks it under the lock before it
         * sleeps, so it either sees the flag or gets this broadcast */
        pthread_mutex_lock(&reg->lock);
        for (struct task *t = reg->tasks; t; t = t->next)
                pthread_cond_broadcast(&t->cond);
        pthread_mutex_unlock(&reg->lock);
}

void supervisor_tasks_fini(struct supervisor *s)
{
        struct supervisor_tasks *reg = s->tasks;
        if (!reg)
                return;
        pthread_mutex_lock(&reg->lock);
        reg->stopping = true;
        pthread_cond_broadcast(&reg->cond);
        for (struct task *t = reg->tasks; t; t = t->next)
                pthread_cond_broadcast(&t->cond);
        /* the spare thread shuts its spare down and ends */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 5;
        while (reg->spare_thread && pthread_cond_timedwait(&reg->cond, &reg->lock, &until) != ETIMEDOUT)
                ;
        unsigned running = reg->threads + (reg->spare_thread ? 1 : 0);
        if (running == 0) {
                while (reg->tasks) {
                        struct task *t = reg->tasks;
                        reg->tasks = t->next;
                        task_unref_locked(t);
                }
        }
        pthread_mutex_unlock(&reg->lock);
        s->tasks = NULL;
        if (running > 0) {
                /* Monitors stay blocked in shim.Wait until the process
                 * exits; the shims and containers keep running. What they
                 * use is left to them (reachable from their stacks). */
                log_debug("supervisor: leaving %u shim monitor(s) behind", running);
                return;
        }
        container_store_free(reg->cs);
        pthread_cond_destroy(&reg->cond);
        pthread_mutex_destroy(&reg->ctr_lock);
        pthread_mutex_destroy(&reg->lock);
        free(reg);
}

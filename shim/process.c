/* The processes of the container: the init process (runtime create /
 * start / kill / delete / pause / resume) and exec'd ones (runtime exec),
 * their exits, and the Wait calls that are answered by them. */
#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attach.h"
#include "cgroup-info.h"
#include "cleanup.h"
#include "fs-util.h"
#include "json-util.h"
#include "log.h"
#include "loop.h"
#include "runtime.h"
#include "shim.pb-c.h"
#include "time-util.h"

/* How long output may keep flowing after the process exited before the
 * shim stops waiting for it (someone outside the container holds the pipe). */
#define DRAIN_TIMEOUT_MS 2000
/* how long output started at create waits for its attach clients */
#define HOLD_TIMEOUT_MS 2000
/* How long a Delete waits for the killed process to be reaped. */
#define DELETE_REAP_TIMEOUT_MS 10000

/* One runtime command in flight on behalf of a call. */
struct op {
        struct proc *p;
        struct rpc_call *call;
        int console_fd; /* listening --console-socket, or -1 */
        char *console_path;
        char *file; /* a file to remove afterwards (update's resources) */
        uint64_t spawned_ns; /* when the runtime command was started */
        bool started; /* a create that started the process too (run --detach) */
        unsigned hold; /* then: attach clients its output waits for */
};

char *shim_path(const struct shim *s, const char *fmt, ...)
{
        _cleanup_free_ char *name = NULL;
        char *p = NULL;
        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(&name, fmt, ap);
        va_end(ap);
        if (r < 0)
                return NULL;
        if (asprintf(&p, "%s/%s", s->state_dir, name) < 0)
                return NULL;
        return p;
}

struct proc *proc_new(struct shim *s, const char *exec_id)
{
        struct proc *p = calloc(1, sizeof(*p));
        if (!p)
                return NULL;
        p->shim = s;
        if (exec_id && !(p->exec_id = strdup(exec_id))) {
                free(p);
                return NULL;
        }
        io_init_empty(&p->io, p);
        return p;
}

static void fail_waiters(struct proc *p, enum rpc_code code, const char *msg)
{
        while (p->waiters) {
                struct waiter *w = p->waiters;
                p->waiters = w->next;
                rpc_call_fail(w->call, code, "%s", msg);
                free(w);
        }
}

void proc_free(struct proc *p)
{
        if (!p)
                return;
        fail_waiters(p, RPC_UNAVAILABLE, "shim: shutting down");
        if (p->deleting)
                rpc_call_fail(p->deleting, RPC_UNAVAILABLE, "shim: shutting down");
        loop_cancel_timer(p->delete_timer);
        io_free(&p->io);
        if (p->process_path) {
                unlink(p->process_path);
                free(p->process_path);
        }
        free(p->exec_id);
        free(p);
}

struct proc *shim_find_proc(struct shim *s, const char *exec_id)
{
        if (!exec_id || !exec_id[0])
                return s->init;
        for (struct proc *p = s->execs; p; p = p->next)
                if (strcmp(p->exec_id, exec_id) == 0)
                        return p;
        return NULL;
}

const char *proc_name(const struct proc *p)
{
        static char buf[128];
        if (!p->exec_id)
                return "init";
        snprintf(buf, sizeof(buf), "exec \"%s\"", p->exec_id);
        return buf;
}

static const char *status_name(enum proc_status st)
{
        static const char *const names[] = { "new", "created", "running", "paused", "stopped", "deleted" };
        return names[st];
}

/* ------------------------------------------------------------------ */
/* exits */

static void fill_exit(Berth__Shim__ExitStatus *out, const struct proc *p, char *ts, size_t len)
{
        out->exit_code = p->exit.code;
        out->signal = p->exit.signal;
        out->oom_killed = p->exit.oom_killed;
        out->pid = (uint32_t) p->pid;
        out->exited_at = time_rfc3339_nano(&p->exit.at, ts, len);
}

static bool reportable(const struct proc *p)
{
        return p->exited && (p->io.done || (!p->io.started && !p->io.held));
}

static void reply_wait(struct rpc_call *call, const struct proc *p)
{
        Berth__Shim__WaitResponse r = BERTH__SHIM__WAIT_RESPONSE__INIT;
        Berth__Shim__ExitStatus ex = BERTH__SHIM__EXIT_STATUS__INIT;
        char ts[40];
        fill_exit(&ex, p, ts, sizeof(ts));
        r.exit = &ex;
        rpc_call_reply(call, &r.base);
}

static void reply_delete(struct rpc_call *call, const struct proc *p)
{
        Berth__Shim__DeleteResponse r = BERTH__SHIM__DELETE_RESPONSE__INIT;
        Berth__Shim__ExitStatus ex = BERTH__SHIM__EXIT_STATUS__INIT;
        char ts[40];
        r.pid = (uint32_t) p->pid;
        if (p->exited) {
                fill_exit(&ex, p, ts, sizeof(ts));
                r.exit = &ex;
        }
        rpc_call_reply(call, &r.base);
}

/* Exited and every byte of output copied: answer who waits. */
static void proc_finish(struct proc *p)
{
        while (p->waiters) {
                struct waiter *w = p->waiters;
                p->waiters = w->next;
                reply_wait(w->call, p);
                free(w);
        }
        if (p->deleting) {
                loop_cancel_timer(p->delete_timer);
                p->delete_timer = NULL;
                reply_delete(p->deleting, p);
                p->deleting = NULL;
        }
}

void proc_io_done(struct proc *p)
{
        if (p->exited)
                proc_finish(p);
}

void proc_io_released(struct proc *p)
{
        if (p->exited)
                io_drain(&p->io, DRAIN_TIMEOUT_MS);
}

static void write_exit_file(struct proc *p)
{
        struct shim *s = p->shim;
        char ts[40];
        _cleanup_free_ char *path = shim_path(s, "exit");
        _cleanup_json_ json_t *j = json_pack("{s:i, s:i, s:i, s:b, s:s}", "pid", (int) p->pid, "exit_code",
                                             p->exit.code, "signal", p->exit.signal, "oom_killed",
                                             p->exit.oom_killed, "exited_at",
                                             time_rfc3339_nano(&p->exit.at, ts, sizeof(ts)));
        if (!path || !j) {
                log_error("shim: cannot record the exit status: out of memory");
                return;
        }
        /* /run is tmpfs: the rename makes it atomic, durability is moot */
        int r = json_write_atomic_ex(path, j, JSON_COMPACT, 0644, 0);
        if (r < 0)
                log_error("shim: cannot write \"%s\": %s", path, strerror(-r));
}

void proc_exited(struct proc *p, int status)
{
        p->exited = true;
        p->status = PROC_STOPPED;
        clock_gettime(CLOCK_REALTIME, &p->exit.at);
        if (WIFSIGNALED(status)) {
                p->exit.signal = WTERMSIG(status);
                p->exit.code = 128 + p->exit.signal;
        } else {
                p->exit.code = WEXITSTATUS(status);
        }
        if (!p->exec_id) {
                p->exit.oom_killed = cg_oom_kills(p->shim) > 0;
                write_exit_file(p);
        }
        log_info("shim: %s (pid %d) exited: code %d, signal %d%s", proc_name(p), (int) p->pid, p->exit.code,
                 p->exit.signal, p->exit.oom_killed ? ", OOM killed" : "");
        if (p->io.started)
                io_drain(&p->io, DRAIN_TIMEOUT_MS);
        if (reportable(p))
                proc_finish(p);
}

bool shim_claim_exit(struct shim *s, pid_t pid, uint64_t since_ns, int *ret_status)
{
        unsigned n = s->n_unclaimed < SHIM_UNCLAIMED_MAX ? s->n_unclaimed : SHIM_UNCLAIMED_MAX;
        for (unsigned i = 0; i < n; i++)
                if (s->unclaimed[i].pid == pid && s->unclaimed[i].at_ns >= since_ns) {
                        *ret_status = s->unclaimed[i].status;
                        s->unclaimed[i].pid = 0;
                        return true;
                }
        return false;
}

void shim_child_exited(struct shim *s, pid_t pid, int status)
{
        if (rt_reaped(s, pid, status))
                return;
        if (s->init && s->init->pid == pid && !s->init->exited) {
                proc_exited(s->init, status);
                return;
        }
        for (struct proc *p = s->execs; p; p = p->next)
                if (p->pid == pid && !p->exited) {
                        proc_exited(p, status);
                        return;
                }
        /* an orphan of the container or of the runtime, or a process whose
         * pid file has not been read yet */
        s->unclaimed[s->n_unclaimed % SHIM_UNCLAIMED_MAX] =
                (struct reaped) { .pid = pid, .status = status, .at_ns = time_monotonic_ns() };
        s->n_unclaimed++;
}

/* ------------------------------------------------------------------ */
/* helpers for runtime commands */

static struct op *op_new(struct proc *p, struct rpc_call *call)
{
        struct op *o = calloc(1, sizeof(*o));
        if (!o)
                return NULL;
        o->p = p;
        o->call = call;
        o->console_fd = -1;
        o->spawned_ns = time_monotonic_ns();
        return o;
}

static void op_free(struct op *o)
{
        if (o->console_fd >= 0)
                close(o->console_fd);
        if (o->console_path) {
                unlink(o->console_path);
                free(o->console_path);
        }
        if (o->file) {
                unlink(o->file);
                free(o->file);
        }
        free(o);
}

/* A unix socket for --console-socket. */
static int console_listen(struct shim *s, struct op *o, struct berr *e)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        o->console_path = shim_path(s, "console-%u.sock", ++s->seq);
        if (!o->console_path)
                return berr_set(e, ENOMEM, "shim: console socket");
        if (strlen(o->console_path) >= sizeof(sa.sun_path))
                return berr_setx(e, ENAMETOOLONG, "shim: console socket path \"%s\" is too long", o->console_path);
        strcpy(sa.sun_path, o->console_path);
        unlink(o->console_path);
        o->console_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (o->console_fd < 0)
                return berr_set(e, errno, "shim: console socket");
        if (bind(o->console_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(o->console_fd, 4) < 0)
                return berr_set(e, errno, "shim: cannot listen on \"%s\"", o->console_path);
        return 0;
}

/* The pty master the runtime sent (it connected and left before exiting). */
static int console_receive(struct op *o, struct berr *e)
{
        int c = accept4(o->console_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c < 0)
                return berr_setx(e, EPROTO, "shim: the runtime did not connect to the console socket");
        char data[4096];
        char cbuf[CMSG_SPACE(sizeof(int))];
        struct iovec iov = { .iov_base = data, .iov_len = sizeof(data) };
        struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
        ssize_t n = recvmsg(c, &m, MSG_CMSG_CLOEXEC);
        close(c);
        if (n < 0)
                return berr_set(e, errno, "shim: console socket");
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                        int fd;
                        memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
                        return fd;
                }
        return berr_setx(e, EPROTO, "shim: the runtime sent no terminal on the console socket");
}

static int read_pid_file(const char *path, pid_t *ret, struct berr *e)
{
        _cleanup_free_ char *data = NULL;
        int r = fs_read_file(path, 64, &data, NULL);
        if (r < 0)
                return berr_set(e, -r, "shim: cannot read pid file \"%s\"", path);
        char *end;
        long v = strtol(data, &end, 10);
        if (end == data || v <= 0 || v > 4194304)
                return berr_setx(e, EINVAL, "shim: pid file \"%s\" holds no pid", path);
        *ret = (pid_t) v;
        return 0;
}

static void fail_rt(struct rpc_call *call, const char *verb, const struct rt_result *res, const char *extra)
{
        _cleanup_free_ char *msg = rt_error(verb, res, extra);
        rpc_call_fail(call, RPC_INTERNAL, "shim: runtime %s failed: %s", verb, msg);
}

static void cleanup_done(struct shim *s, struct rt_result *res, void *data)
{
        if (!res->ok)
                log_warn("shim: cleaning up after a failed create: %s", res->err);
}

/* Best effort: the container half exists after a failed create. */
static void runtime_cleanup(struct shim *s)
{
        const char *args[] = { "delete", "--force", s->id, NULL };
        const int stdio[3] = { -1, -1, -1 };
        struct berr e = { 0 };
        if (rt_spawn(s, args, stdio, cleanup_done, NULL, &e) < 0)
                log_warn("%s", e.msg);
}

/* ------------------------------------------------------------------ */
/* Create / Start */

static void on_created(struct shim *s, struct rt_result *res, void *data)
{
        struct op *o = data;
        struct proc *p = o->p;
        struct berr e = { 0 };
        _cleanup_free_ char *pidfile = NULL;
        pid_t pid = 0;
        int st;

        p->busy = false;
        if (!res->ok) {
                _cleanup_free_ char *text = p->terminal ? NULL : io_slurp(&p->io);
                fail_rt(o->call, "create", res, text);
                io_free(&p->io);
                io_init_empty(&p->io, p);
                op_free(o);
                return;
        }
        if (p->terminal) {
                int master = console_receive(o, &e);
                if (master < 0 || io_set_pty(&p->io, master, p->stdin) < 0) {
                        if (master >= 0 && !e.msg[0])
                                berr_set(&e, errno, "shim: terminal");
                        goto fail;
                }
        }
        pidfile = shim_path(s, "init.pid");
        if (!pidfile) {
                berr_set(&e, ENOMEM, "shim: pid file");
                goto fail;
        }
        if (read_pid_file(pidfile, &pid, &e) < 0)
                goto fail;
        p->pid = pid;
        p->status = o->started ? PROC_RUNNING : PROC_CREATED;
        if (cg_locate(s, pid) < 0)
                log_debug("shim: no cgroups found for pid %d: stats and OOM flag unavailable", (int) pid);
        if (!p->terminal && !o->started) {
                /* the container cannot have written yet: this is the
                 * runtime's (warnings) */
                _cleanup_free_ char *warn = io_slurp(&p->io);
                if (warn && warn[0])
                        log_warn("shim: runtime create: %s", warn);
        }
        if (o->started && o->hold > 0)
                io_hold(&p->io, o->hold, HOLD_TIMEOUT_MS);
        else
                io_start(&p->io);
        if (shim_claim_exit(s, pid, o->spawned_ns, &st))
                proc_exited(p, st);

        Berth__Shim__CreateResponse r = BERTH__SHIM__CREATE_RESPONSE__INIT;
        r.pid = (uint32_t) pid;
        rpc_call_reply(o->call, &r.base);
        op_free(o);
        return;

fail:
        rpc_call_fail(o->call, RPC_INTERNAL, "%s", e.msg);
        io_free(&p->io);
        io_init_empty(&p->io, p);
        p->pid = 0;
        runtime_cleanup(s);
        op_free(o);
}

void proc_create(struct proc *p, struct rpc_call *call, bool want_stdin, bool stdin_once, bool start,
                 unsigned hold)
{
        struct shim *s = p->shim;
        struct berr e = { 0 };
        struct op *o;
        int r;

        if (p->busy) {
                rpc_call_fail(call, RPC_FAILED_PRECONDITION, "shim: another operation is in progress");
                return;
        }
        if (p->status != PROC_NEW) {
                rpc_call_fail(call, RPC_ALREADY_EXISTS, "shim: container \"%s\" is already created (%s)",
                              s->id, status_name(p->status));
                return;
        }
        if (!(o = op_new(p, call))) {
                rpc_call_fail(call, RPC_INTERNAL, "shim: out of memory");
                return;
        }

        p->terminal = s->terminal;
        p->stdin = want_stdin;
        p->stdin_once = stdin_once;
        _cleanup_free_ char *pidfile = shim_path(s, "init.pid");
        if (!pidfile) {
                op_free(o);
                rpc_call_fail(call, RPC_INTERNAL, "shim: out of memory");
                return;
        }
        unlink(pidfile);

        const char *args[16];
        size_t n = 0;
        o->started = start;
        o->hold = hold;
        args[n++] = start ? "run" : "create";
        if (start)
                args[n++] = "--detach";
        args[n++] = "--bundle";
        args[n++] = s->bundle;
        args[n++] = "--pid-file";
        args[n++] = pidfile;
        int stdio[3] = { -1, -1, -1 };
        if (p->terminal) {
                if ((r = console_listen(s, o, &e)) < 0)
                        goto fail;
                io_init_tty(&p->io, p);
                args[n++] = "--console-socket";
                args[n++] = o->console_path;
        } else {
                if ((r = io_init_pipes(&p->io, p, want_stdin)) < 0) {
                        berr_set(&e, r, "shim: stdio pipes");
                        goto fail;
                }
                stdio[0] = p->io.child_in;
                stdio[1] = p->io.child_out;
                stdio[2] = p->io.child_err;
        }
        args[n++] = s->id;
        args[n] = NULL;
        if ((r = rt_spawn(s, args, stdio, on_created, o, &e)) < 0)
                goto fail;
        io_close_child_ends(&p->io);
        p->busy = true;
        return;

fail:
        io_free(&p->io);
        io_init_empty(&p->io, p);
        op_free(o);
        rpc_call_fail(call, RPC_INTERNAL, "%s", e.msg);
}

static void reply_start(struct rpc_call *call, pid_t pid)
{
        Berth__Shim__StartResponse r = BERTH__SHIM__START_RESPONSE__INIT;
        r.pid = (uint32_t) pid;
        rpc_call_reply(call, &r.base);
}

static void on_started(struct shim *s, struct rt_result *res, void *data)
{
        struct op *o = data;
        struct proc *p = o->p;
        p->busy = false;
        if (!res->ok)
                fail_rt(o->call, "start", res, NULL);
        else {
                if (!p->exited)
                        p->status = PROC_RUNNING;
                reply_start(o->call, p->pid);
        }
        op_free(o);
}

static void on_exec_started(struct shim *s, struct rt_result *res, void *data)
{
        struct op *o = data;
        struct proc *p = o->p;
        struct berr e = { 0 };
        pid_t pid;
        int st;

        p->busy = false;
        if (!res->ok) {
                _cleanup_free_ char *text = p->terminal ? NULL : io_slurp(&p->io);
                fail_rt(o->call, "exec", res, text);
                /* fresh stdio: the exec may be started again or deleted */
                io_free(&p->io);
                if (p->terminal)
                        io_init_tty(&p->io, p);
                else if (io_init_pipes(&p->io, p, p->stdin) < 0)
                        io_init_empty(&p->io, p);
                op_free(o);
                return;
        }
        if (p->terminal) {
                int master = console_receive(o, &e);
                if (master < 0 || io_set_pty(&p->io, master, p->stdin) < 0) {
                        if (master >= 0 && !e.msg[0])
                                berr_set(&e, errno, "shim: terminal");
                        rpc_call_fail(o->call, RPC_INTERNAL, "%s", e.msg);
                        op_free(o);
                        return;
                }
        }
        _cleanup_free_ char *pidfile = shim_path(s, "exec-%s.pid", p->exec_id);
        if (read_pid_file(pidfile, &pid, &e) < 0) {
                rpc_call_fail(o->call, RPC_INTERNAL, "%s", e.msg);
                op_free(o);
                return;
        }
        unlink(pidfile);
        p->pid = pid;
        p->status = PROC_RUNNING;
        io_start(&p->io);
        if (shim_claim_exit(s, pid, o->spawned_ns, &st))
                proc_exited(p, st);
        reply_start(o->call, pid);
        op_free(o);
}

static void exec_start(struct proc *p, struct rpc_call *call)
{
        struct shim *s = p->shim;
        struct berr e = { 0 };
        struct op *o;

        if (p->status != PROC_NEW) {
                rpc_call_fail(call, RPC_FAILED_PRECONDITION, "shim: %s is already started (%s)", proc_name(p),
                              status_name(p->status));
                return;
        }
        if (s->init->status != PROC_RUNNING) {
                rpc_call_fail(call, RPC_FAILED_PRECONDITION, "shim: container \"%s\" is %s, not running",
                              s->id, status_name(s->init->status));
                return;
        }
        if (!(o = op_new(p, call))) {
                rpc_call_fail(call, RPC_INTERNAL, "shim: out of memory");
                return;
        }
        _cleanup_free_ char *pidfile = shim_path(s, "exec-%s.pid", p->exec_id);
        if (!pidfile) {
                op_free(o);
                rpc_call_fail(call, RPC_INTERNAL, "shim: out of memory");
                return;
        }
        unlink(pidfile);
        const char *args[16];
        size_t n = 0;
        args[n++] = "exec";
        args[n++] = "--process";
        args[n++] = p->process_path;
        args[n++] = "--detach";
        args[n++] = "--pid-file";
        args[n++] = pidfile;
        int stdio[3] = { -1, -1, -1 };
        if (p->terminal) {
                if (console_listen(s, o, &e) < 0)
                        goto fail;
                args[n++] = "--console-socket";
                args[n++] = o->console_path;
        } else {
                stdio[0] = p->io.child_in;
                stdio[1] = p->io.child_out;
                stdio[2] = p->io.child_err;
        }
        args[n++] = s->id;
        args[n] = NULL;
        if (rt_spawn(s, args, stdio, on_exec_started, o, &e) < 0)
                goto fail;
        io_close_child_ends(&p->io);
        p->busy = true;
        return;
fail:
        op_free(o);
        rpc_call_fail(call, RPC_INTERNAL, "%s", e.msg);
}

void proc_start(struct proc *p, struct rpc_call *call)
{
        struct shim *s = p->shim;
        struct berr e = { 0 };

        if (p->busy) {
                rpc_call_fail(call, RPC_FAILED_PRECONDITION, "shim: another operation is in progress");
                return;
        }
        if (p->exec_id) {
                exec_start(p, call);
                return;
        }
        if (p->status != PROC_CREATED) {
                rpc_call_fail(call, RPC_FAILED_PRECONDITION, "shim: container \"%s\" is %s, not created",
                              s->id, status_name(p->status));
                return;
        }
        struct op *o = op_new(p, call);
        if (!o) {
                rpc_call_fail(call, RPC_INTERNAL, "shim: out of memory");
                return;
        }
        const char *args[] = { "start", s->id, NULL };
        const int stdio[3] = { -1, -1, -1 };
        if (rt_spawn(s, args, stdio, on_started, o, &e) < 0) {
                op_free(o);
                rpc_call_fail(call, RPC_INTERNAL, "%s", e.msg);
                return;
        }
        p->busy = true;
}

/* ------------------------------------------------------------------ */
/* Kill / Delete / Pause / Resume / Update / Pids */

static void on_simple(struct shim *s, struct rt_result *res, void *data)
{
        struct op *o = data;
        const char *verb = rpc_call_method(o->call) + strlen("shim.");
        if (!res->ok) {
                char v[32];
                snprintf(v, sizeof(v), "%s", verb);
                for (char *c = v; *c; c++)
                        *c = (char) (*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
                fail_rt(o->call, v, res, NULL);
        } else if (strcmp(verb, "Kill") == 0) {
                Berth__Shim__KillResponse r = BERTH__SHIM__KILL_RESPONSE__INIT;
                rpc_call_reply(o->call, &r.base);
        } else if (strcmp(verb, "Update") == 0) {
                Berth__Shim__UpdateResponse r = BERTH__SHIM__UPDATE_RESPONSE__INIT;
                rpc_call_reply(o->call, &r.base);
        }
        op_free(o);
}

static int spawn_simple(struct proc *p, struct rpc_call *call, const char *const *args, rt_done_fn done,
                        struct op **ret)
{
        struct berr e = { 0 };
        const int stdio[3] = { -1, -1, -1 };
        struct op *o = op_new(p, call);
        if (!o) {
                rpc_call_fail(call, RPC_INTERNAL, "shim: out of memory");
                return -ENOMEM;
        }
        if (rt_spawn(p->shim, args, stdio, done, o, &e) < 0) {
                op_free(o);
                rpc_call_fail(call, RPC_INTERNAL, "%s", e.msg);
                return -EIO;
        }
        if (ret)
                *ret = o;
        return 0;
}

void proc_kill(struct proc *p, struct rpc_call *call, unsigned sig, bool all)
{
        struct shim *s = p->shim;
        if (sig == 0 || sig >= 65) {
                rpc_call_fail(call, RPC_INVALID_ARGUMENT, "shim: invalid signal %u", sig);
                return;
        }
        if (p->status == PROC_NEW) {
                rpc_call_fail(call, RPC_FAILED_PRECONDITION, "shim: %s is not %s", proc_name(p),
                              p->exec_id ? "started" : "created");
                return;
        }
        if (p->status == PROC_DELETED) {
                rpc_call_fail(call, RPC_FAILED_PRECONDITION, "shim: container \"%s\" is deleted", s->id);
                return;
        }
        if (p->exited && !(all && !p->exec_id)) {
                rpc_call_fail(call, RPC_FAILED_PRECONDITION, "shim: %s has already exited", proc_name(p));
                return;
        }
        /* an exec, or the init alone (not frozen: the runtime thaws for a
         * SIGKILL), is ours to signal: our child (or, as subreaper, our
         * orphan) until we reap it, so the pid cannot be reused meanwhile,
         * and no runtime process needs to start for it */
        if (p->exec_id || (!all && p->pid > 0 && (p->status == PROC_CREATED || p->status == PROC_RUNNING))) {
                if (kill(p->pid, (int) sig) < 0) {
                        rpc_call_fail(call, RPC_INTERNAL, "shim: kill %s (pid %d): %s", proc_name(p),
                                      (int) p->pid, strerror(errno));
                        return;
                }
                Berth__Shim__KillResponse r = BERTH__SHIM__KILL_RESPONSE__INIT;
                rpc_call_reply(call, &r.base);
                return;
        }
        char signum[16];
        snprintf(signum, sizeof(signum), "%u", sig);
        const char *args_all[] = { "kill", "--all", s->id, signum, NULL };
        const char *args_one[] = { "kill", s->id, signum, NULL };
        spawn_simple(p, call, all ? args_all : args_one, on_simple, NULL);
}

static void on_delete_timeout(struct loop_timer *t, void *data)
{
        struct proc *p = data;
        p->delete_timer = NULL;
        if (p->deleting) {
                log_warn("shim: container deleted but pid %d not reaped after %d ms", (int) p->pid,
                         DELETE_REAP_TIMEOUT_MS);
                reply_delete(p->deleting, p);
                p->deleting = NULL;
        }
}

static void on_deleted(struct shim *s, struct rt_result *res, void *data)
{
        struct op *o = data;
        struct proc *p = o->p;
        p->busy = false;
        if (!res->ok) {
                fail_rt(o->call, "delete", res, NULL);
                op_free(o);
                return;
        }
        p->status = PROC_DELETED;
        if (p->pid > 0 && !reportable(p)) {
                /* delete killed it (created, or --force): answer with the
                 * exit status once it is reaped */
                p->deleting = o->call;
                p->delete_timer = loop_add_timer(s->loop, DELETE_REAP_TIMEOUT_MS, on_delete_timeout, p);
        } else {
                reply_delete(o->call, p);
        }
        op_free(o);
}

static void exec_delete(struct proc *p, struct rpc_call *call)
{
        struct shim *s = p->shim;
        if (p->busy) {
                rpc_call_fail(call, RPC_FAILED_PRECONDITION, "shim: %s is being started", proc_name(p));
                return;
        }
        if (p->status != PROC_NEW && !reportable(p)) {
                rpc_call_fail(call, RPC_FAILED_PRECONDITION, "shim: %s is running", proc_name(p));
                return;
        }
        for (struct proc **pp = &s->execs; *pp; pp = &(*pp)->next)
                if (*pp == p) {
                        *pp = p->next;
                        break;
                }
        reply_delete(call, p);
        fail_waiters(p, RPC_NOT_FOUND, "shim: exec deleted before it ran");
        proc_free(p);
}

void proc_delete(struct proc *p, struct rpc_call *call, bool force)
{
        struct shim *s = p->shim;
        if (p->exec_id) {
                exec_delete(p, call);
                return;
        }
        if (p->busy) {
                rpc_call_fail(call, RPC_FAILED_PRECONDITION, "shim: another operation is in progress");
                return;
        }
        if (p->status == PROC_NEW) {
                rpc_call_fail(call, RPC_FAILED_PRECONDITION, "shim: container \"%s\" is not created", s->id);
                return;
        }
        if (p->status == PROC_DELETED) {
                rpc_call_fail(call, RPC_NOT_FOUND, "shim: container \"%s\" is already deleted", s->id);
                return;
        }
        if ((p->status == PROC_RUNNING || p->status == PROC_PAUSED) && !force) {
                rpc_call_fail(call, RPC_FAILED_PRECONDITION,
                              "shim: container \"%s\" is %s; kill it first or delete with force", s->id,
                              status_name(p->status));
                return;
        }
        const char *args_force[] = { "delete", "--force", s->id, NULL };
        const char *args[] = { "delete", s->id, NULL };
        if (spawn_simple(p, call, force ? args_force : args, on_deleted, NULL) == 0)
                p->busy = true;
}

static void on_paused(struct shim *s, struct rt_result *res, void *data)
{
        struct op *o = data;
        struct proc *p = o->p;
        bool pause = strcmp(rpc_call_method(o->call), "shim.Pause") == 0;
        p->busy = false;
        if (!res->ok) {
                fail_rt(o->call, pause ? "pause" : "resume", res, NULL);
        } else {
                if (!p->exited)
                        p->status = pause ? PROC_PAUSED : PROC_RUNNING;
                if (pause) {
                        Berth__Shim__PauseResponse r = BERTH__SHIM__PAUSE_RESPONSE__INIT;
                        rpc_call_reply(o->call, &r.base);
                } else {
                        Berth__Shim__ResumeResponse r = BERTH__SHIM__RESUME_RESPONSE__INIT;
                        rpc_call_reply(o->call, &r.base);
                }
        }
        op_free(o);
}

void proc_pause(struct proc *p, struct rpc_call *call, bool pause)
{
        struct shim *s = p->shim;
        if (p->busy) {
                rpc_call_fail(call, RPC_FAILED_PRECONDITION, "shim: another operation is in progress");
                return;
        }
        if (p->status != (pause ? PROC_RUNNING : PROC_PAUSED)) {
                rpc_call_fail(call, RPC_FAILED_PRECONDITION, "shim: container \"%s\" is %s, not %s", s->id,
                              status_name(p->status), pause ? "running" : "paused");
                return;
        }
        const char *args[] = { pause ? "pause" : "resume", s->id, NULL };
        if (spawn_simple(p, call, args, on_paused, NULL) == 0)
                p->busy = true;
}

static bool init_exists(struct proc *p, struct rpc_call *call)
{
        if (p->status == PROC_NEW || p->status == PROC_DELETED) {
                rpc_call_fail(call, RPC_FAILED_PRECONDITION, "shim: container \"%s\" is %s", p->shim->id,
                              p->status == PROC_NEW ? "not created" : "deleted");
                return false;
        }
        return true;
}

void proc_update(struct proc *p, struct rpc_call *call, const void *resources, size_t len)
{
        struct shim *s = p->shim;
        json_error_t jerr;
        if (!init_exists(p, call))
                return;
        _cleanup_json_ json_t *j = json_loadb(resources, len, 0, &jerr);
        if (!j || !json_is_object(j)) {
                rpc_call_fail(call, RPC_INVALID_ARGUMENT, "shim: resources are not a JSON object%s%s",
                              j ? "" : ": ", j ? "" : jerr.text);
                return;
        }
        _cleanup_free_ char *path = shim_path(s, "update-%u.json", ++s->seq);
        int r = path ? json_write_atomic_ex(path, j, JSON_COMPACT, 0600, 0) : -ENOMEM;
        if (r < 0) {
                rpc_call_fail(call, RPC_INTERNAL, "shim: cannot write resources: %s", strerror(-r));
                return;
        }
        const char *args[] = { "update", "--resources", path, s->id, NULL };
        struct op *o;
        if (spawn_simple(p, call, args, on_simple, &o) == 0)
                o->file = TAKE_PTR(path);
        else
                unlink(path);
}

static void on_ps(struct shim *s, struct rt_result *res, void *data)
{
        struct op *o = data;
        json_error_t jerr;
        if (!res->ok) {
                fail_rt(o->call, "ps", res, NULL);
                op_free(o);
                return;
        }
        _cleanup_json_ json_t *j = json_loadb(res->out, res->out_len, 0, &jerr);
        if (!json_is_array(j)) {
                rpc_call_fail(o->call, RPC_INTERNAL, "shim: runtime ps printed no JSON list of pids: %.200s",
                              res->out);
                op_free(o);
                return;
        }
        size_t n = json_array_size(j);
        Berth__Shim__ProcessInfo *infos = calloc(n ? n : 1, sizeof(*infos));
        Berth__Shim__ProcessInfo **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
        if (!infos || !ptrs) {
                free(infos);
                free(ptrs);
                rpc_call_fail(o->call, RPC_INTERNAL, "shim: out of memory");
                op_free(o);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                berth__shim__process_info__init(&infos[i]);
                pid_t pid = (pid_t) json_integer_value(json_array_get(j, i));
                infos[i].pid = (uint32_t) pid;
                infos[i].exec_id = "";
                for (struct proc *p = s->execs; p; p = p->next)
                        if (p->pid == pid && !p->exited)
                                infos[i].exec_id = p->exec_id;
                ptrs[i] = &infos[i];
        }
        Berth__Shim__PidsResponse r = BERTH__SHIM__PIDS_RESPONSE__INIT;
        r.n_processes = n;
        r.processes = ptrs;
        rpc_call_reply(o->call, &r.base);
        free(infos);
        free(ptrs);
        op_free(o);
}

void proc_pids(struct proc *p, struct rpc_call *call)
{
        if (!init_exists(p, call))
                return;
        const char *args[] = { "ps", "--format", "json", p->shim->id, NULL };
        spawn_simple(p, call, args, on_ps, NULL);
}

/* ------------------------------------------------------------------ */
/* Exec / Wait / State */

static bool valid_exec_id(const char *id)
{
        size_t n = strlen(id);
        if (n == 0 || n > 64)
                return false;
        for (const char *c = id; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                      *c == '-' || *c == '_' || *c == '.'))
                        return false;
        return id[0] != '.';
}

void proc_exec(struct shim *s, struct rpc_call *call, const char *exec_id, bool terminal, bool want_stdin,
               bool stdin_once, const void *process_json, size_t len)
{
        json_error_t jerr;
        if (!valid_exec_id(exec_id)) {
                rpc_call_fail(call, RPC_INVALID_ARGUMENT,
                              "shim: invalid exec id \"%.64s\" (1 to 64 of [A-Za-z0-9_.-])", exec_id);
                return;
        }
        if (shim_find_proc(s, exec_id)) {
                rpc_call_fail(call, RPC_ALREADY_EXISTS, "shim: exec \"%s\" already exists", exec_id);
                return;
        }
        if (s->init->status != PROC_RUNNING && s->init->status != PROC_CREATED) {
                rpc_call_fail(call, RPC_FAILED_PRECONDITION, "shim: container \"%s\" is %s", s->id,
                              status_name(s->init->status));
                return;
        }
        _cleanup_json_ json_t *j = json_loadb(process_json, len, 0, &jerr);
        if (!j || !json_is_object(j)) {
                rpc_call_fail(call, RPC_INVALID_ARGUMENT, "shim: process is not a JSON object%s%s",
                              j ? "" : ": ", j ? "" : jerr.text);
                return;
        }
        json_object_set_new(j, "terminal", json_boolean(terminal));

        struct proc *p = proc_new(s, exec_id);
        if (!p) {
                rpc_call_fail(call, RPC_INTERNAL, "shim: out of memory");
                return;
        }
        p->terminal = terminal;
        p->stdin = want_stdin;
        p->stdin_once = stdin_once;
        p->process_path = shim_path(s, "exec-%s.json", exec_id);
        int r = p->process_path ? json_write_atomic_ex(p->process_path, j, JSON_COMPACT, 0600, 0) : -ENOMEM;
        if (r < 0) {
                proc_free(p);
                rpc_call_fail(call, RPC_INTERNAL, "shim: cannot write the process of exec \"%s\": %s",
                              exec_id, strerror(-r));
                return;
        }
        if (terminal)
                io_init_tty(&p->io, p);
        else if ((r = io_init_pipes(&p->io, p, want_stdin)) < 0) {
                proc_free(p);
                rpc_call_fail(call, RPC_INTERNAL, "shim: stdio pipes: %s", strerror(-r));
                return;
        }
        p->next = s->execs;
        s->execs = p;
        Berth__Shim__ExecResponse resp = BERTH__SHIM__EXEC_RESPONSE__INIT;
        rpc_call_reply(call, &resp.base);
}

void proc_wait(struct proc *p, struct rpc_call *call)
{
        if (!p->exec_id && p->status == PROC_NEW) {
                /* a create that fails would leave it waiting forever */
                rpc_call_fail(call, RPC_FAILED_PRECONDITION, "shim: container \"%s\" is not created", p->shim->id);
                return;
        }
        if (reportable(p)) {
                reply_wait(call, p);
                return;
        }
        struct waiter *w = calloc(1, sizeof(*w));
        if (!w) {
                rpc_call_fail(call, RPC_INTERNAL, "shim: out of memory");
                return;
        }
        w->call = call;
        w->next = p->waiters;
        p->waiters = w;
}

void proc_state(struct proc *p, struct rpc_call *call)
{
        static const Berth__Shim__Status map[] = {
                [PROC_NEW] = BERTH__SHIM__STATUS__UNKNOWN,    [PROC_CREATED] = BERTH__SHIM__STATUS__CREATED,
                [PROC_RUNNING] = BERTH__SHIM__STATUS__RUNNING, [PROC_PAUSED] = BERTH__SHIM__STATUS__PAUSED,
                [PROC_STOPPED] = BERTH__SHIM__STATUS__STOPPED, [PROC_DELETED] = BERTH__SHIM__STATUS__STOPPED,
        };
        Berth__Shim__StateResponse r = BERTH__SHIM__STATE_RESPONSE__INIT;
        Berth__Shim__ExitStatus ex = BERTH__SHIM__EXIT_STATUS__INIT;
        char ts[40];
        r.id = p->shim->id;
        r.exec_id = p->exec_id ? p->exec_id : "";
        r.bundle = p->shim->bundle;
        r.pid = (uint32_t) p->pid;
        r.status = map[p->status];
        r.terminal = p->terminal;
        r.stdin = p->stdin;
        if (p->exited) {
                fill_exit(&ex, p, ts, sizeof(ts));
                r.exit = &ex;
        }
        rpc_call_reply(call, &r.base);
}

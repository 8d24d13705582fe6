#include "service.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cgroup-info.h"
#include "cleanup.h"
#include "log.h"
#include "loop.h"
#include "process.h"
#include "shim.pb-c.h"
#include "shim.h"

/* The process an exec_id names, or a NOT_FOUND answer. */
static struct proc *find(struct shim *s, struct rpc_call *call, const char *exec_id)
{
        struct proc *p = shim_find_proc(s, exec_id);
        if (!p)
                rpc_call_fail(call, RPC_NOT_FOUND, "shim: no exec \"%.64s\" in container \"%s\"", exec_id, s->id);
        return p;
}

static void h_connect(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        struct shim *s = userdata;
        Berth__Shim__ConnectResponse r = BERTH__SHIM__CONNECT_RESPONSE__INIT;
        r.shim_pid = (uint32_t) getpid();
        r.id = s->id ? s->id : "";
        r.bundle = s->bundle ? s->bundle : "";
        r.runtime = s->runtime;
        r.version = BERTH_VERSION;
        r.task_pid = (uint32_t) s->init->pid;
        rpc_call_reply(call, &r.base);
}

/* A spare shim does nothing but Connect, Adopt and Shutdown. */
static bool adopted(struct shim *s, struct rpc_call *call)
{
        if (!s->id)
                rpc_call_fail(call, RPC_FAILED_PRECONDITION, "shim: a spare shim has no container yet (shim.Adopt)");
        return s->id != NULL;
}

static void h_adopt(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Shim__AdoptRequest *req = (const void *) request;
        struct shim *s = userdata;
        struct berr e = { 0 };
        struct adoption a = {
                .id = req->id, .bundle = req->bundle, .runtime = req->runtime, .runtime_root = req->runtime_root,
                .state_dir = req->state_dir, .log_path = req->log_path, .log_opts = req->log_opts,
                .n_log_opts = req->n_log_opts,
        };
        if (shim_adopt(s, &a, &e) < 0) {
                rpc_call_fail(call, rpc_code_from_errno(e.err), "shim: %s", e.msg);
                return;
        }
        Berth__Shim__AdoptResponse r = BERTH__SHIM__ADOPT_RESPONSE__INIT;
        rpc_call_reply(call, &r.base);
}

static void h_create(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Shim__CreateRequest *req = (const void *) request;
        struct shim *s = userdata;
        if (!adopted(s, call))
                return;
        proc_create(s->init, call, req->stdin, req->stdin_once, req->start, req->hold_for_attach);
}

static void h_start(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Shim__StartRequest *req = (const void *) request;
        struct proc *p = find(userdata, call, req->exec_id);
        if (p)
                proc_start(p, call);
}

static void h_state(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Shim__StateRequest *req = (const void *) request;
        struct proc *p = find(userdata, call, req->exec_id);
        if (p)
                proc_state(p, call);
}

static void h_wait(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Shim__WaitRequest *req = (const void *) request;
        struct proc *p = find(userdata, call, req->exec_id);
        if (p)
                proc_wait(p, call);
}

static void h_kill(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Shim__KillRequest *req = (const void *) request;
        struct proc *p = find(userdata, call, req->exec_id);
        if (p)
                proc_kill(p, call, req->signal, req->all);
}

static void h_exec(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Shim__ExecRequest *req = (const void *) request;
        if (!adopted(userdata, call))
                return;
        proc_exec(userdata, call, req->exec_id, req->terminal, req->stdin, req->stdin_once, req->process_json.data,
                  req->process_json.len);
}

static void h_resize(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Shim__ResizePtyRequest *req = (const void *) request;
        struct proc *p = find(userdata, call, req->exec_id);
        if (!p)
                return;
        if (req->width == 0 || req->height == 0 || req->width > 65535 || req->height > 65535) {
                rpc_call_fail(call, RPC_INVALID_ARGUMENT, "shim: invalid terminal size %ux%u", req->width,
                              req->height);
                return;
        }
        int r = io_resize(&p->io, req->width, req->height);
        if (r == -ENOTTY) {
                rpc_call_fail(call, RPC_FAILED_PRECONDITION, "shim: %s has no terminal", proc_name(p));
                return;
        }
        if (r < 0) {
                rpc_call_fail(call, RPC_INTERNAL, "shim: resize terminal of %s: %s", proc_name(p), strerror(-r));
                return;
        }
        Berth__Shim__ResizePtyResponse resp = BERTH__SHIM__RESIZE_PTY_RESPONSE__INIT;
        rpc_call_reply(call, &resp.base);
}

static void h_close_stdin(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Shim__CloseStdinRequest *req = (const void *) request;
        struct proc *p = find(userdata, call, req->exec_id);
        if (!p)
                return;
        if (!p->stdin) {
                rpc_call_fail(call, RPC_FAILED_PRECONDITION, "shim: %s was started without stdin", proc_name(p));
                return;
        }
        io_close_stdin(&p->io);
        Berth__Shim__CloseStdinResponse resp = BERTH__SHIM__CLOSE_STDIN_RESPONSE__INIT;
        rpc_call_reply(call, &resp.base);
}

static void h_pids(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        struct shim *s = userdata;
        proc_pids(s->init, call);
}

static void h_stats(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        struct shim *s = userdata;
        struct cg_stats st;
        if (s->init->status == PROC_NEW || s->init->status == PROC_DELETED) {
                rpc_call_fail(call, RPC_FAILED_PRECONDITION, "shim: container \"%s\" is %s", s->id,
                              s->init->status == PROC_NEW ? "not created" : "deleted");
                return;
        }
        if (cg_read_stats(s, &st) < 0) {
                rpc_call_fail(call, RPC_FAILED_PRECONDITION, "shim: no cgroups known for container \"%s\"", s->id);
                return;
        }
        Berth__Shim__StatsResponse r = BERTH__SHIM__STATS_RESPONSE__INIT;
        r.cpu_usage_ns = st.cpu_usage_ns;
        r.memory_usage = st.memory_usage;
        r.memory_limit = st.memory_limit;
        r.memory_max_usage = st.memory_max_usage;
        r.oom_kills = st.oom_kills;
        r.pids_current = st.pids_current;
        r.pids_limit = st.pids_limit;
        r.cgroup_version = st.version == 2 ? "v2" : "v1";
        rpc_call_reply(call, &r.base);
}

static void h_pause(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        struct shim *s = userdata;
        proc_pause(s->init, call, true);
}

static void h_resume(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        struct shim *s = userdata;
        proc_pause(s->init, call, false);
}

static void h_update(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Shim__UpdateRequest *req = (const void *) request;
        struct shim *s = userdata;
        proc_update(s->init, call, req->resources_json.data, req->resources_json.len);
}

static void h_delete(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Shim__DeleteRequest *req = (const void *) request;
        struct proc *p = find(userdata, call, req->exec_id);
        if (p)
                proc_delete(p, call, req->force);
}

static void h_shutdown(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Shim__ShutdownRequest *req = (const void *) request;
        struct shim *s = userdata;
        enum proc_status st = s->init->status;
        if (!req->now && st != PROC_NEW && st != PROC_DELETED) {
                rpc_call_fail(call, RPC_FAILED_PRECONDITION,
                              "shim: container \"%s\" still exists in the runtime; delete it first (or shut down now)",
                              s->id);
                return;
        }
        if (s->init->busy && !req->now) {
                rpc_call_fail(call, RPC_FAILED_PRECONDITION, "shim: an operation is in progress");
                return;
        }
        s->shutting_down = true;
        s->shutdown_pipe = rpc_call_pipe_id(call);
        log_info("shim: shutting down%s", req->now ? " now" : "");
        Berth__Shim__ShutdownResponse r = BERTH__SHIM__SHUTDOWN_RESPONSE__INIT;
        rpc_call_reply(call, &r.base);
        loop_quit(s->loop);
}

#define METHOD(name, lower, fn)                                                                                \
        {                                                                                                      \
                "shim." name, &berth__shim__##lower##_request__descriptor,                                   \
                        &berth__shim__##lower##_response__descriptor, fn                                       \
        }

const struct rpc_method shim_methods[] = {
        METHOD("Connect", connect, h_connect),
        METHOD("Create", create, h_create),
        METHOD("Start", start, h_start),
        METHOD("State", state, h_state),
        METHOD("Wait", wait, h_wait),
        METHOD("Kill", kill, h_kill),
        METHOD("Exec", exec, h_exec),
        METHOD("ResizePty", resize_pty, h_resize),
        METHOD("CloseStdin", close_stdin, h_close_stdin),
        METHOD("Pids", pids, h_pids),
        METHOD("Stats", stats, h_stats),
        METHOD("Pause", pause, h_pause),
        METHOD("Resume", resume, h_resume),
        METHOD("Update", update, h_update),
        METHOD("Delete", delete, h_delete),
        METHOD("Shutdown", shutdown, h_shutdown),
        METHOD("Adopt", adopt, h_adopt),
};

const size_t shim_n_methods = ARRAY_SIZE(shim_methods);

/* Talking to one berth-shim from the supervisor: spawning it, connecting,
 * calls whose errors name the layer, its exit file, and cleaning up after
 * a shim that died. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "rpc-client.h"

struct task_shim_args {
        const char *id;
        const char *bundle;
        const char *runtime;        /* name or path */
        const char *runtime_root;   /* the runtime's --root */
        const char *state_dir;      /* <exec_root>/shims/<id> */
        const char *log_path;       /* NULL or "": none */
        char *const *log_opts;      /* NULL-terminated, may be NULL */
        bool spare;                 /* --spare: only state_dir counts (shim.Adopt gives the rest) */
};

/* Runs "berth-shim ..."; task_shim_spawn_finish waits until it serves
 * (its first process exits 0) or failed ("shim: <its reason>"), and must
 * follow every successful start. In between the caller may prepare the
 * bundle, which the shim reads only at shim.Create: its start-up runs
 * meanwhile. */
struct task_shim_spawn {
        pid_t pid;
        int out_fd;
        const char *binary;
        const char *id;
};
int task_shim_spawn_start(const char *shim_binary, const struct task_shim_args *a, struct task_shim_spawn *ret,
                          struct berr *e);
int task_shim_spawn_finish(struct task_shim_spawn *sp, struct berr *e);

/* Connects to <state_dir>/shim.sock. */
int task_shim_connect(const char *state_dir, struct rpc_client **ret, struct berr *e);

/* rpc_client_call; a failure's message is the shim's (which names its
 * layer: "shim:", "ocirun:") or "shim: <transport error>". -errno from the
 * code (UNAVAILABLE: -ECONNREFUSED). */
int task_shim_call(struct rpc_client *c, const char *method, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *reply_type, int timeout_ms, ProtobufCMessage **ret_reply,
                   struct berr *e);

struct task_exit {
        uint32_t pid;
        uint32_t code;
        int32_t signal;
        bool oom_killed;
        char exited_at[48];
        char reason[128];
};

/* <state_dir>/exit as the shim writes it (also with "reason" when the
 * supervisor wrote it for a shim that died). -ENOENT when there is none. */
int task_exit_file_read(const char *state_dir, struct task_exit *ret);
int task_exit_file_write(const char *state_dir, const struct task_exit *x);

/* The pid in <state_dir>/shim.pid, when that process is alive; 0 if not. */
pid_t task_shim_pid_alive(const char *state_dir);

/* Waits up to timeout_ms for the shim of state_dir to exit (not polling:
 * a pidfd); true when it is gone. */
bool task_shim_wait_gone(const char *state_dir, int timeout_ms);

/* "<runtime> --root ROOT <args...>", waited for; its output discarded.
 * Returns its exit status (or -errno when it could not run). */
int task_runtime_run(const char *runtime, const char *runtime_root, const char *const *args);

/* The shim's state: one container (the init process) and its exec'd
 * processes, driven by one thread's event loop (loop.h). RPC handlers
 * (service.c) run on that thread too: the RPC server queues calls and the
 * loop dispatches them. Nothing here is touched by another thread. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "io.h"
#include "log-json.h"
#include "rpc-server.h"

struct loop;
struct loop_source;
struct loop_timer;
struct attach_server;
struct rt_cmd;

enum proc_status {
        PROC_NEW = 0,  /* registered, not created (init) / not started (exec) */
        PROC_CREATED,  /* init: runtime create done, start not yet */
        PROC_RUNNING,
        PROC_PAUSED,
        PROC_STOPPED,  /* reaped */
        PROC_DELETED,  /* init: runtime delete done */
};

struct exit_info {
        int code;   /* exit status, or 128 + signal */
        int signal; /* 0 unless killed by a signal */
        bool oom_killed;
        struct timespec at;
};

struct waiter {
        struct rpc_call *call;
        struct waiter *next;
};

struct proc {
        struct shim *shim;
        char *exec_id; /* NULL for the init process */
        enum proc_status status;
        pid_t pid;
        bool exited; /* reaped; exit is valid */
        struct exit_info exit;
        bool terminal, stdin, stdin_once;
        char *process_path; /* exec: the process.json given to the runtime */
        bool busy;          /* a create/start/delete/pause/resume is running */
        struct io io;
        struct waiter *waiters;   /* Wait calls answered when exited and drained */
        struct rpc_call *deleting; /* Delete answered when the process is reaped */
        struct loop_timer *delete_timer;
        struct proc *next;
};

struct reaped {
        pid_t pid;
        int status;
        uint64_t at_ns; /* monotonic */
};

#define SHIM_UNCLAIMED_MAX 64

struct shim {
        struct loop *loop;
        struct rpc_server *rpc;
        struct attach_server *attach;

        char *id;
        char *bundle;       /* absolute */
        char *runtime;      /* binary: a path or a name looked up on PATH */
        char *runtime_root; /* NULL: the runtime's default */
        char *state_dir;
        char *log_path;     /* NULL: no json-file log */
        bool terminal;      /* process.terminal of the bundle's config.json */
        struct jlog_opts log_opts;
        struct jlog *log;
        uint64_t log_errors;   /* failed log writes since the last good one */

        struct proc *init;
        struct proc *execs;
        struct rt_cmd *cmds; /* runtime commands running */
        unsigned seq;        /* for per-command file names */

        /* exits of children nobody claimed yet (a pid read from a pid file
         * after the process was already reaped) */
        struct reaped unclaimed[SHIM_UNCLAIMED_MAX];
        unsigned n_unclaimed;

        /* cgroup directories of the container, found from the init pid */
        char *cg_memory, *cg_cpu, *cg_pids;
        int cg_version;

        bool shutting_down;
        uint32_t shutdown_pipe;
};

/* main.c: a spare shim (--spare) takes its container (shim.Adopt); see
 * AdoptRequest in shim.proto. */
struct adoption {
        const char *id, *bundle, *runtime, *runtime_root, *state_dir, *log_path;
        char **log_opts;
        size_t n_log_opts;
};
int shim_adopt(struct shim *s, const struct adoption *a, struct berr *e);

/* "shim: <layer message>"-style helpers for paths in the state dir. */
char *shim_path(const struct shim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* process.c */
struct proc *proc_new(struct shim *s, const char *exec_id);
void proc_free(struct proc *p);
struct proc *shim_find_proc(struct shim *s, const char *exec_id); /* "" or NULL: init */
const char *proc_name(const struct proc *p);                      /* "init" or "exec \"<id>\"" */
void shim_child_exited(struct shim *s, pid_t pid, int status);
/* Exit of a pid that was reaped before anyone knew it (see unclaimed),
 * reaped after since_ns (so that an old orphan with a reused pid is never
 * taken for it). */
bool shim_claim_exit(struct shim *s, pid_t pid, uint64_t since_ns, int *ret_status);
void proc_exited(struct proc *p, int status);
/* Called by io.c when the last output stream of p ended. */
void proc_io_done(struct proc *p);
/* Called by io.c when held output (io_hold) starts being read. */
void proc_io_released(struct proc *p);

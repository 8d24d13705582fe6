/* The container lifecycle, parent side: create (everything up to the point
 * where the container's process waits to exec), start (release it), and
 * destroy (kill what is left, remove cgroups and state). The child side is
 * container-init.c; they talk over a SOCK_SEQPACKET pair (struct sync_msg). */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "err.h"
#include "spec.h"
#include "seccomp.h"
#include "state.h"

struct create_opts {
        const char *root;
        const char *id;
        const char *bundle;
        const char *pid_file;
        const char *console_socket;
        bool no_pivot;
        bool no_new_keyring;
        int preserve_fds;
        /* process.terminal without a console socket: the pty master comes
         * back to the caller (run -t in the foreground) */
        bool console_to_caller;
};

/* What the child needs; filled by the parent before clone. */
struct init_ctx {
        const struct spec *spec;
        const struct spec_process *process;  /* what to exec */
        bool exec;                /* `exec` into a running container: join, do not build */
        bool new_userns;          /* cloned into a new user namespace: wait for the id maps */
        bool joined_userns;       /* the user namespace is joined by path */
        bool two_stage;           /* join namespaces by path, then unshare the user (and pid)
                                   * namespace and fork the real init: see container_init */
        const char *id;
        const char *bundle;       /* absolute */
        const char *rootfs;       /* absolute */
        json_t *cgroup_paths;
        int sync_fd;
        int state_dir_fd;         /* O_PATH; exec.fifo is opened through it */
        int console_fd;           /* connected --console-socket, or -1 */
        int ns_fds[9];            /* namespaces to join by path (not pid) */
        int ns_flags[9];
        size_t n_ns_fds;
        bool no_pivot, no_new_keyring;
        int preserve_fds;
        sigset_t saved_mask;
        struct seccomp_ctx *seccomp;  /* NULL: no filter */
        int trampoline_fd;            /* sealed exec trampoline, see self-exe.h */
        json_t *hooks;                /* the spec's hooks object, or NULL */
        bool runtime_hooks;           /* prestart or createRuntime hooks to run from the parent */
        bool got_go;                  /* child side: GO received */
        pid_t host_pid;               /* child side: our pid as the runtime sees it (from GO) */
};

enum sync_type {
        SYNC_GO = 1,   /* parent → child: cgroups joined, go on */
        SYNC_READY,    /* child → parent: set up, waiting on exec.fifo */
        SYNC_ERROR,    /* child → parent: failed, see err/msg */
        SYNC_CONSOLE,  /* child → parent: the pty master, as SCM_RIGHTS */
        SYNC_HOOKS,    /* child → parent: namespaces and mounts ready, run prestart/createRuntime */
        SYNC_HOOKS_DONE, /* parent → child: they ran */
        SYNC_USERNS,   /* child → parent: user namespace made, write my id maps */
        SYNC_USERNS_DONE, /* parent → child: written */
        SYNC_STAGE2,   /* child → parent: the container's init is pid (stage 1 exits) */
        SYNC_SECCOMP,  /* child → parent: the seccomp notify fd, as SCM_RIGHTS, for the agent */
        SYNC_SECCOMP_DONE, /* parent → child: sent to the agent */
};

struct sync_msg {
        int type;
        int err;
        int pid;       /* with GO: the child's pid as the runtime sees it */
        char msg[BERR_MSG_MAX];
};

/* Creates the container; on success the init process (pid in *ret_pid) is
 * blocked before exec and the state is saved. Signals stay blocked in the
 * caller afterwards (so `run` can forward them); *ret_saved_mask has the
 * mask to restore. *ret_master gets the pty master when console_to_caller
 * was asked for and the process has a terminal, else -1. */
int container_create(const struct create_opts *o, pid_t *ret_pid, sigset_t *ret_saved_mask, int *ret_master,
                     struct berr *e);

struct exec_opts {
        const char *root;
        const char *id;
        const char *process_file;  /* --process: a process.json */
        char **args;               /* or the command line */
        bool tty, detach, no_new_privs, ignore_paused;
        const char *pid_file, *console_socket, *cwd, *user, *apparmor;
        char **env;                /* -e, added to the container's env */
        char **caps;               /* --cap, added to every set */
        uint32_t *additional_gids; /* -g */
        size_t n_additional_gids;
        int preserve_fds;
};

/* Starts a new process in a running container: its namespaces, cgroups,
 * and (unless overridden) the container's process settings. Signals stay
 * blocked in the caller (see container_create). */
int container_exec(const struct exec_opts *o, pid_t *ret_pid, sigset_t *ret_saved_mask, int *ret_master,
                   struct berr *e);

/* Clones the container's process (flags: CLONE_NEW* | SIGCHLD), which
 * runs container_init(c); closes the child's end of the sync pair and goes
 * back to our own pid namespace (own_pidns, when we had entered the
 * container's). *ret_pid is the child (>0 even when the return to our
 * namespace failed: the caller kills it), or -1. */
int container_spawn(struct init_ctx *c, unsigned long flags, int sp[2], int own_pidns, pid_t *ret_pid,
                    struct berr *e);

/* Closes what create/exec opened for the child (namespace fds, sync pair,
 * state dir, console, trampoline, seccomp) and reaps the prewarm helper. */
void init_ctx_release(struct init_ctx *c, int pidns_fd, const int sp[2], pid_t prewarm);

/* Shared by create and exec: connect --console-socket; the parent half of
 * the sync handshake (cgroups, GO, save(), then READY or the child's
 * error); write a --pid-file. */
int console_socket_connect(const char *path, struct berr *e);
struct handshake_ops {
        int (*save)(void *userdata);                       /* once GO is sent (may be NULL) */
        int (*run_hooks)(void *userdata);                  /* prestart/createRuntime (may be NULL) */
        int (*seccomp_listener)(void *userdata, int fd);   /* hand the notify fd to the agent */
        void *userdata;
};
int container_handshake(pid_t pid, int sync_fd, json_t *cgroup_paths, const struct handshake_ops *ops,
                        int *ret_master, pid_t *ret_stage2, struct berr *e);
struct pid_file_ctx {
        const char *path;  /* NULL: none */
        pid_t pid;
        struct berr *e;
};
int write_pid_file(void *userdata);

/* Releases a created container's process to exec. */
int container_start(const char *root, const char *id, struct berr *e);

/* Kills whatever is left in the container and removes its cgroups and state. */
int container_destroy(const char *root, struct container_state *st);

/* Waits until pid (not necessarily our child) has exited; timeout_ms < 0
 * waits forever. -ETIMEDOUT otherwise. */
int wait_pid_gone(pid_t pid, uint64_t start_time, int timeout_ms);

/* The child's entry point; never returns. */
_Noreturn void container_init(struct init_ctx *c);

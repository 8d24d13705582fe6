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
};

/* What the child needs; filled by the parent before clone. */
struct init_ctx {
        const struct spec *spec;
        const char *id;
        const char *bundle;       /* absolute */
        const char *rootfs;       /* absolute */
        json_t *cgroup_paths;
        int sync_fd;
        int state_dir_fd;         /* O_PATH; exec.fifo is opened through it */
        int console_fd;           /* connected --console-socket, or -1 */
        int ns_fds[8];            /* namespaces to join by path (not pid) */
        int ns_flags[8];
        size_t n_ns_fds;
        bool no_pivot, no_new_keyring;
        int preserve_fds;
        sigset_t saved_mask;
};

enum sync_type {
        SYNC_GO = 1,   /* parent → child: cgroups joined, go on */
        SYNC_READY,    /* child → parent: set up, waiting on exec.fifo */
        SYNC_ERROR,    /* child → parent: failed, see err/msg */
};

struct sync_msg {
        int type;
        int err;
        char msg[BERR_MSG_MAX];
};

/* Creates the container; on success the init process (pid in *ret_pid) is
 * blocked before exec and the state is saved. Signals stay blocked in the
 * caller afterwards (so `run` can forward them); *ret_saved_mask has the
 * mask to restore. */
int container_create(const struct create_opts *o, pid_t *ret_pid, sigset_t *ret_saved_mask, struct berr *e);

/* Releases a created container's process to exec. */
int container_start(const char *root, const char *id, struct berr *e);

/* Kills whatever is left in the container and removes its cgroups and state. */
int container_destroy(const char *root, struct container_state *st);

/* Waits until pid (not necessarily our child) has exited; timeout_ms < 0
 * waits forever. -ETIMEDOUT otherwise. */
int wait_pid_gone(pid_t pid, uint64_t start_time, int timeout_ms);

/* The child's entry point; never returns. */
_Noreturn void container_init(struct init_ctx *c);

/* The container's first process, from clone to exec. It reports failures
 * to the parent through the sync socket (never exit() here: _exit only)
 * and, once set up, waits on exec.fifo for `start`. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cleanup.h"
#include "console.h"
#include "hooks.h"
#include "container.h"
#include "log.h"
#include "mount-rootfs.h"
#include "process-setup.h"
#include "self-exe.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#define KEYCTL_JOIN_SESSION_KEYRING 1

_Noreturn static void fail(struct init_ctx *c, struct berr *e)
{
        struct sync_msg m = { .type = SYNC_ERROR, .err = e->err };
        snprintf(m.msg, sizeof(m.msg), "%s", e->msg);
        send(c->sync_fd, &m, sizeof(m), MSG_NOSIGNAL);
        /* Wait for the parent to read it and kill us: exiting with its GO
         * still unread would reset the socket and lose the message. */
        char drain[sizeof(struct sync_msg)];
        while (recv(c->sync_fd, drain, sizeof(drain), 0) > 0 || errno == EINTR)
                ;
        _exit(1);
}

/* process.terminal: the master goes to --console-socket, or to ocirun
 * itself (run -t in the foreground). */
static int setup_terminal(struct init_ctx *c, struct berr *e)
{
        int master, r;
        if ((r = console_setup(&master, e)) < 0)
                return r;
        if (c->console_fd >= 0)
                r = fd_send(c->console_fd, master, "/dev/ptmx", 9);
        else {
                struct sync_msg m = { .type = SYNC_CONSOLE };
                r = fd_send(c->sync_fd, master, &m, offsetof(struct sync_msg, msg));
        }
        close(master);
        return r < 0 ? berr_set(e, r, "cannot hand over the pty master") : 0;
}

/* Waits for a message of type want from the parent; GO may come first
 * (it is sent as soon as we are in our cgroups) and is recorded. */
static void wait_for(struct init_ctx *c, int want)
{
        struct sync_msg m;
        while (!(want == SYNC_GO && c->got_go)) {
                ssize_t n = recv(c->sync_fd, &m, sizeof(m), 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < (ssize_t) offsetof(struct sync_msg, msg))
                        _exit(1);
                if (m.type == SYNC_GO) {
                        c->got_go = true;
                        c->host_pid = m.pid;
                        continue;
                }
                if (m.type != want)
                        _exit(1);
                return;
        }
}

static void wait_for_go(struct init_ctx *c)
{
        wait_for(c, SYNC_GO);
}

static json_t *hook_state(struct init_ctx *c, const char *status)
{
        const struct spec *s = c->spec;
        return state_hook_json(s->oci_version, c->id, status, c->host_pid, c->bundle, s->annotations);
}

/* Called by rootfs_setup once mounts are in place, before pivot_root:
 * prestart and createRuntime run in the parent (the runtime's
 * namespaces), then createContainer here, in the container's namespaces. */
static int before_pivot(void *userdata, struct berr *e)
{
        struct init_ctx *c = userdata;
        if (c->runtime_hooks) {
                struct sync_msg m = { .type = SYNC_HOOKS };
                if (send(c->sync_fd, &m, offsetof(struct sync_msg, msg), MSG_NOSIGNAL) < 0)
                        return berr_set(e, errno, "cannot ask for the runtime hooks");
                wait_for(c, SYNC_HOOKS_DONE);
        }
        if (json_array_size(json_object_get(c->hooks, "createContainer")) == 0)
                return 0;
        wait_for_go(c); /* the hook's state needs our pid */
        json_t *st = hook_state(c, "creating");
        int r = hooks_run(c->hooks, HOOK_CREATE_CONTAINER, st, e);
        json_decref(st);
        return r;
}

/* create: new namespaces, hostname, the rootfs. Sets *joined when it had
 * to wait for the cgroups first (for a new cgroup namespace). */
static void setup_container(struct init_ctx *c, bool *joined)
{
        const struct spec *s = c->spec;
        const struct spec_namespace *cgns = spec_namespace(s, CLONE_NEWCGROUP);
        struct berr e = { 0 };
        int r;

        int unshare_flags = 0;
        static const int kinds[] = { CLONE_NEWNS, CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS };
        for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
                const struct spec_namespace *ns = spec_namespace(s, kinds[i]);
                if (ns && !ns->path)
                        unshare_flags |= kinds[i];
        }
        if (unshare_flags && unshare(unshare_flags) < 0) {
                berr_set(&e, errno, "cannot create namespaces (flags 0x%x)", unshare_flags);
                fail(c, &e);
        }
        if (cgns && !cgns->path) {
                wait_for_go(c);
                *joined = true;
                if (unshare(CLONE_NEWCGROUP) < 0) {
                        berr_set(&e, errno, "cannot create the cgroup namespace");
                        fail(c, &e);
                }
        }
        if (setsid() < 0) {
                berr_set(&e, errno, "setsid");
                fail(c, &e);
        }
        if (!c->no_new_keyring && syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, c->id) < 0 && errno != ENOSYS &&
            errno != EPERM) {
                berr_set(&e, errno, "cannot create a session keyring");
                fail(c, &e);
        }
        if (s->hostname && *s->hostname && sethostname(s->hostname, strlen(s->hostname)) < 0) {
                berr_set(&e, errno, "cannot set hostname \"%s\"", s->hostname);
                fail(c, &e);
        }

        struct rootfs_opts ro = {
                .spec = s,
                .rootfs = c->rootfs,
                .bundle = c->bundle,
                .cgroup_paths = c->cgroup_paths,
                .cgroupns = cgns != NULL,
                .no_pivot = c->no_pivot,
                .before_pivot = before_pivot,
                .userdata = c,
        };
        if ((r = rootfs_setup(&ro, &e)) < 0)
                fail(c, &e);

}

_Noreturn void container_init(struct init_ctx *c)
{
        const struct spec_process *p = c->process;
        struct berr e = { 0 };
        _cleanup_free_ char *prog = NULL;
        int r;

        /* Die with ocirun while being set up; cleared once ready. */
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        /* Nobody in the container may open /proc/<us>/exe (see self-exe.h). */
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        /* Nothing ocirun holds open may reach the container: everything
         * past stdio and the preserved fds is closed at exec. */
        syscall(SYS_close_range, 3 + c->preserve_fds, ~0U, CLOSE_RANGE_CLOEXEC);

        /* The parent moves us into our cgroups meanwhile. On cgroup v1 the
         * first migration waits for an RCU grace period (several ms), so
         * setup runs in parallel and we wait for GO only where it matters:
         * before unsharing the cgroup namespace (its root is the cgroup we
         * are in), or else before the limits must hold (rlimits, exec). */
        bool joined = false;

        for (size_t i = 0; i < c->n_ns_fds; i++)
                if (setns(c->ns_fds[i], c->ns_flags[i]) < 0) {
                        berr_set(&e, errno, "cannot join namespace (type 0x%x)", c->ns_flags[i]);
                        fail(c, &e);
                }

        /* Two stages (a new user namespace beside namespaces joined by
         * path): those were entered above while we were still privileged
         * over them; now make the user namespace, have the parent write its
         * maps, make the pid namespace and fork the real init into it. */
        if (c->two_stage && c->new_userns) {
                if (unshare(CLONE_NEWUSER) < 0) {
                        berr_set(&e, errno, "cannot create the user namespace");
                        fail(c, &e);
                }
                struct sync_msg m = { .type = SYNC_USERNS };
                if (send(c->sync_fd, &m, offsetof(struct sync_msg, msg), MSG_NOSIGNAL) < 0)
                        _exit(1);
                wait_for(c, SYNC_USERNS_DONE);
        }

        /* In a new user namespace nothing works until the parent has
         * written our id maps; then become root of the namespace. */
        if (c->new_userns || c->joined_userns) {
                if (!c->two_stage)
                        wait_for_go(c);
                if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
                        berr_set(&e, errno, "cannot become root in the user namespace (is 0 mapped?)");
                        fail(c, &e);
                }
        }

        if (c->two_stage) {
                const struct spec_namespace *pidns = spec_namespace(c->spec, CLONE_NEWPID);
                if (pidns && !pidns->path && unshare(CLONE_NEWPID) < 0) {
                        berr_set(&e, errno, "cannot create the pid namespace");
                        fail(c, &e);
                }
                wait_for_go(c); /* in our cgroups: stage 2 is born there */
                int pp[2];
                if (pipe2(pp, O_CLOEXEC) < 0) {
                        berr_set(&e, errno, "pipe");
                        fail(c, &e);
                }
                pid_t init = fork();
                if (init < 0) {
                        berr_set(&e, errno, "cannot fork the container's init");
                        fail(c, &e);
                }
                if (init > 0) {
                        struct sync_msg m = { .type = SYNC_STAGE2, .pid = init };
                        send(c->sync_fd, &m, offsetof(struct sync_msg, msg), MSG_NOSIGNAL);
                        if (write(pp[1], &init, sizeof(init)) < 0)
                                _exit(1);
                        _exit(0);
                }
                /* stage 2: its parent is about to exit, so no PDEATHSIG (if
                 * ocirun dies, the sync socket's EOF ends us); its pid as the
                 * runtime sees it comes from stage 1, for the hooks' state */
                close(pp[1]);
                if (read(pp[0], &c->host_pid, sizeof(c->host_pid)) != sizeof(c->host_pid))
                        _exit(1);
                close(pp[0]);
        }
        if (c->new_userns || c->two_stage)
                joined = true;

        if (c->exec) {
                if (setsid() < 0) {
                        berr_set(&e, errno, "setsid");
                        fail(c, &e);
                }
        } else
                setup_container(c, &joined);

        if (!joined)
                wait_for_go(c);
        if (p->terminal && (r = setup_terminal(c, &e)) < 0)
                fail(c, &e);
        /* Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load
         * it before the capabilities go (as runc does); with it, as late as
         * possible, just before exec. */
        if (c->seccomp && !p->no_new_privileges && seccomp_filter_load(c->seccomp, &e) < 0)
                fail(c, &e);
        if ((r = process_set_lsm(p, &e)) < 0 || (r = process_set_personality(c->spec, &e)) < 0)
                fail(c, &e);
        if ((r = process_set_rlimits(p, &e)) < 0 || (r = process_set_identity(p, &e)) < 0 ||
            (r = process_set_finish(p, &e)) < 0 || (r = process_find_program(p, &prog, &e)) < 0)
                fail(c, &e);
        char **env = process_env(p);
        if (!env) {
                berr_setx(&e, ENOMEM, "out of memory");
                fail(c, &e);
        }

        /* A seccomp agent needs the notify fd before the process runs: load
         * the filter now (it was loaded already without no_new_privs) and
         * hand the fd over through ocirun. */
        bool seccomp_loaded = c->seccomp && !p->no_new_privileges;
        if (seccomp_filter_notifies(c->seccomp)) {
                if (!seccomp_loaded && seccomp_filter_load(c->seccomp, &e) < 0)
                        fail(c, &e);
                seccomp_loaded = true;
                int nfd = seccomp_filter_notify_fd(c->seccomp);
                struct sync_msg sm = { .type = SYNC_SECCOMP };
                if (nfd < 0 || fd_send(c->sync_fd, nfd, &sm, offsetof(struct sync_msg, msg)) < 0) {
                        berr_set(&e, nfd < 0 ? nfd : errno, "cannot hand over the seccomp notify fd");
                        fail(c, &e);
                }
                close(nfd);
                wait_for(c, SYNC_SECCOMP_DONE);
        }

        prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
        struct sync_msg ready = { .type = SYNC_READY };
        if (send(c->sync_fd, &ready, offsetof(struct sync_msg, msg), MSG_NOSIGNAL) < 0)
                _exit(1);
        close(c->sync_fd);

        /* create: block here until `start` opens the fifo for reading */
        if (!c->exec) {
                int ffd;
                do
                        ffd = openat(c->state_dir_fd, STATE_FIFO, O_WRONLY | O_CLOEXEC);
                while (ffd < 0 && errno == EINTR);
                if (ffd < 0) {
                        dprintf(STDERR_FILENO, "ocirun: cannot open exec.fifo: %s\n", strerror(errno));
                        _exit(127);
                }
                if (write(ffd, "0", 1) != 1)
                        _exit(127);
                close(ffd);
        }

        if (!c->exec && json_array_size(json_object_get(c->hooks, "startContainer")) > 0) {
                json_t *st = hook_state(c, "created");
                if (hooks_run(c->hooks, HOOK_START_CONTAINER, st, &e) < 0) {
                        dprintf(STDERR_FILENO, "ocirun: %s\n", e.msg);
                        _exit(127);
                }
                json_decref(st);
        }

        /* Back to a clean signal state for the program. */
        for (int sig = 1; sig < NSIG; sig++)
                signal(sig, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);

        if (c->seccomp && !seccomp_loaded && seccomp_filter_load(c->seccomp, &e) < 0) {
                dprintf(STDERR_FILENO, "ocirun: %s\n", e.msg);
                _exit(127);
        }
        r = self_exe_exec(c->trampoline_fd, prog, p->args, env);
        dprintf(STDERR_FILENO, "ocirun: exec \"%s\": %s\n", prog,
                r == -EPERM ? "refusing to run ocirun's own binary in the container" : strerror(-r));
        _exit(127);
}

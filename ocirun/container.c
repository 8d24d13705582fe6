#include "container.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "console.h"
#include "hooks.h"
#include "process-setup.h"
#include "cleanup.h"
#include "self-exe.h"
#include "fs-util.h"
#include "log.h"

static int pidfd_open_(pid_t pid)
{
        long fd = syscall(SYS_pidfd_open, pid, 0);
        return fd < 0 ? -errno : (int) fd;
}

int wait_pid_gone(pid_t pid, uint64_t start_time, int timeout_ms)
{
        _cleanup_close_ int pfd = pidfd_open_(pid);
        if (pfd < 0)
                return 0; /* already gone (ESRCH) */
        /* the pidfd now pins the process: check it is still ours */
        if (!state_pid_alive(pid, start_time))
                return 0;
        struct pollfd p = { .fd = pfd, .events = POLLIN };
        for (;;) {
                int r = poll(&p, 1, timeout_ms);
                if (r > 0)
                        return 0;
                if (r == 0)
                        return -ETIMEDOUT;
                if (errno != EINTR)
                        return -errno;
        }
}

int container_destroy(const char *root, struct container_state *st)
{
        if (st->cgroup_paths && cgroup_paths_populated(st->cgroup_paths)) {
                cgroup_paths_kill(st->cgroup_paths, SIGKILL);
                for (int i = 0; i < 200 && cgroup_paths_populated(st->cgroup_paths); i++)
                        nanosleep(&(struct timespec) { .tv_nsec = 5 * 1000 * 1000 }, NULL);
        }
        if (st->cgroup_paths)
                cgroup_paths_destroy(st->cgroup_paths);
        /* poststop: the container is gone; a failure is a warning */
        if (st->hooks) {
                json_t *hs = state_hook_json(st->oci_version, st->id, "stopped", 0, st->bundle, st->annotations);
                hooks_run(st->hooks, HOOK_POSTSTOP, hs, NULL);
                json_decref(hs);
        }
        int r = state_remove(root, st->id);
        if (r < 0)
                return log_errno(LOG_LEVEL_ERROR, r, "cannot remove state of container \"%s\"", st->id);
        return 0;
}

static int resolve_dir(const char *path, const char *what, char **ret, struct berr *e)
{
        char buf[PATH_MAX];
        struct stat st;
        if (!realpath(path, buf)) {
                if (errno == ENOENT)
                        return berr_setx(e, ENOENT, "%s \"%s\" does not exist", what, path);
                return berr_set(e, errno, "cannot resolve %s \"%s\"", what, path);
        }
        if (stat(buf, &st) < 0)
                return berr_set(e, errno, "cannot stat %s \"%s\"", what, buf);
        if (!S_ISDIR(st.st_mode))
                return berr_setx(e, ENOTDIR, "%s \"%s\" is not a directory", what, buf);
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

int console_socket_connect(const char *path, struct berr *e)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(sa.sun_path))
                return berr_setx(e, ENAMETOOLONG, "console socket path \"%s\" is too long", path);
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return berr_set(e, errno, "cannot create console socket");
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int r = berr_set(e, errno, "cannot connect to console socket \"%s\"", path);
                close(fd);
                return r;
        }
        return fd;
}

static int open_namespaces(const struct spec *s, struct init_ctx *c, int *ret_pidns_fd, struct berr *e)
{
        static const struct {
                int flag;
                const char *name;
        } order[] = {
                /* the order runc joins them in: user first (the others may
                 * be owned by it), ipc, uts, net, then mnt and cgroup */
                { CLONE_NEWUSER, "user" },
                { CLONE_NEWIPC, "ipc" },   { CLONE_NEWUTS, "uts" },       { CLONE_NEWNET, "network" },
                { CLONE_NEWNS, "mount" },  { CLONE_NEWCGROUP, "cgroup" }, { CLONE_NEWTIME, "time" },
                { CLONE_NEWPID, "pid" },
        };
        for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
                const struct spec_namespace *ns = spec_namespace(s, order[i].flag);
                if (!ns || !ns->path)
                        continue;
                int fd = open(ns->path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return berr_set(e, errno, "cannot open %s namespace \"%s\"", order[i].name, ns->path);
                long type = syscall(SYS_ioctl, fd, 0xb703 /* NS_GET_NSTYPE */);
                if (type >= 0 && type != order[i].flag) {
                        close(fd);
                        return berr_setx(e, EINVAL, "\"%s\" is not a %s namespace", ns->path, order[i].name);
                }
                if (order[i].flag == CLONE_NEWPID) {
                        *ret_pidns_fd = fd;
                        continue;
                }
                c->ns_fds[c->n_ns_fds] = fd;
                c->ns_flags[c->n_ns_fds++] = order[i].flag;
        }
        return 0;
}

/* Receives one sync message; an fd passed along with it lands in *ret_fd
 * (closed by the caller) when ret_fd is given. */
static int recv_sync(int fd, struct sync_msg *m, int *ret_fd)
{
        int passed = -1;
        int n = fd_recv(fd, m, sizeof(*m), &passed);
        if (passed >= 0) {
                if (ret_fd)
                        *ret_fd = passed;
                else
                        close(passed);
        }
        if (n < 0)
                return n;
        if (n == 0)
                return -EPIPE;
        if ((size_t) n < offsetof(struct sync_msg, msg))
                return -EBADMSG;
        if ((size_t) n < sizeof(*m))
                m->msg[(size_t) n - offsetof(struct sync_msg, msg)] = '\0';
        m->msg[sizeof(m->msg) - 1] = '\0';
        return 0;
}

static int write_proc_file(pid_t pid, const char *file, const char *data, struct berr *e)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, file);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, data, strlen(data)) < 0)
                return berr_set(e, errno, "cannot write \"%s\" to \"%s\"", data, path);
        return 0;
}

/* The new user namespace's uid and gid maps, written from outside. */
static int write_idmaps(pid_t pid, const struct spec *s, struct berr *e)
{
        for (int k = 0; k < 2; k++) {
                const struct spec_idmap *m = k == 0 ? s->uid_maps : s->gid_maps;
                size_t n = k == 0 ? s->n_uid_maps : s->n_gid_maps;
                _cleanup_free_ char *buf = calloc(n + 1, 36);
                size_t off = 0;
                if (!buf)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++)
                        off += (size_t) sprintf(buf + off, "%u %u %u\n", m[i].container_id, m[i].host_id, m[i].size);
                int r = write_proc_file(pid, k == 0 ? "uid_map" : "gid_map", buf, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A new time namespace takes its offsets before any process enters it:
 * we unshare it for our children, write them, and the clone enters it. */
static int prepare_timens(const struct spec *s, struct berr *e)
{
        char buf[128];
        int n = 0;
        if (unshare(CLONE_NEWTIME) < 0)
                return berr_set(e, errno, "cannot create the time namespace");
        if (s->time.has_monotonic)
                n += snprintf(buf + n, sizeof(buf) - (size_t) n, "monotonic %lld %u\n",
                              (long long) s->time.monotonic_secs, s->time.monotonic_nsecs);
        if (s->time.has_boottime)
                n += snprintf(buf + n, sizeof(buf) - (size_t) n, "boottime %lld %u\n",
                              (long long) s->time.boottime_secs, s->time.boottime_nsecs);
        if (n == 0)
                return 0;
        _cleanup_close_ int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, buf, (size_t) n) < 0)
                return berr_set(e, errno, "cannot set linux.timeOffsets");
        return 0;
}

static void kill_and_reap(pid_t pid)
{
        kill(pid, SIGKILL);
        /* a second-stage init is not our child (its parent exited): then
         * waitpid fails at once and the kill is all we can do */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}

/* Parent half of the handshake: put the child in its cgroups (while it
 * sets itself up), let it go on, save what we know, and wait for it to be
 * ready (or to report why it is not). */
int container_handshake(pid_t pid, int sync_fd, json_t *cgroup_paths, const struct handshake_ops *ops,
                        int *ret_master, pid_t *ret_stage2, struct berr *e)
{
        struct sync_msg m = { .type = SYNC_GO, .pid = pid };
        int r = cgroup_paths_enter(cgroup_paths, pid, e);
        if (r >= 0 && send(sync_fd, &m, offsetof(struct sync_msg, msg), MSG_NOSIGNAL) < 0)
                r = berr_set(e, errno, "cannot signal the container process");
        if (r >= 0 && ops->save)
                r = ops->save(ops->userdata);
        if (r < 0) {
                /* the child may have failed first: its reason is the one to tell */
                struct sync_msg early;
                if (recv(sync_fd, &early, sizeof(early), MSG_DONTWAIT) > (ssize_t) offsetof(struct sync_msg, msg) &&
                    early.type == SYNC_ERROR) {
                        early.msg[sizeof(early.msg) - 1] = '\0';
                        return berr_setx(e, early.err ? early.err : EINVAL, "%s", early.msg);
                }
                return r;
        }
        for (;;) {
                int passed = -1;
                r = recv_sync(sync_fd, &m, &passed);
                if (r >= 0 && m.type == SYNC_CONSOLE && passed >= 0 && ret_master && *ret_master < 0) {
                        *ret_master = passed;
                        continue;
                }
                if (r >= 0 && m.type == SYNC_SECCOMP) {
                        if (passed < 0 || !ops->seccomp_listener)
                                r = berr_setx(e, EBADMSG, "unexpected seccomp fd from the container process");
                        else
                                r = ops->seccomp_listener(ops->userdata, passed);
                        if (passed >= 0)
                                close(passed);
                        if (r < 0)
                                return r;
                        struct sync_msg done = { .type = SYNC_SECCOMP_DONE };
                        if (send(sync_fd, &done, offsetof(struct sync_msg, msg), MSG_NOSIGNAL) < 0)
                                return berr_set(e, errno, "cannot signal the container process");
                        continue;
                }
                if (passed >= 0)
                        close(passed);
                if (r < 0 || (m.type != SYNC_CONSOLE && m.type != SYNC_HOOKS && m.type != SYNC_STAGE2))
                        break;
                if (m.type == SYNC_STAGE2) {
                        if (!ret_stage2)
                                return berr_setx(e, EBADMSG, "unexpected second stage from the container process");
                        *ret_stage2 = m.pid;
                        continue;
                }
                if (m.type == SYNC_HOOKS) {
                        if (!ops->run_hooks)
                                return berr_setx(e, EBADMSG, "the container process asked for hooks");
                        if ((r = ops->run_hooks(ops->userdata)) < 0)
                                return r;
                        struct sync_msg done = { .type = SYNC_HOOKS_DONE };
                        if (send(sync_fd, &done, offsetof(struct sync_msg, msg), MSG_NOSIGNAL) < 0)
                                return berr_set(e, errno, "cannot signal the container process");
                }
        }
        if (r == -EPIPE) {
                int status = 0;
                if (waitpid(pid, &status, WNOHANG) == pid && WIFSIGNALED(status))
                        return berr_setx(e, ECHILD, "container process was killed by signal %d during setup",
                                         WTERMSIG(status));
                return berr_setx(e, ECHILD, "container process exited during setup");
        }
        if (r < 0)
                return berr_set(e, r, "cannot read from the container process");
        if (m.type == SYNC_ERROR)
                return berr_setx(e, m.err ? m.err : EINVAL, "%s", m.msg);
        if (m.type != SYNC_READY)
                return berr_setx(e, EBADMSG, "unexpected message %d from the container process", m.type);
        return 0;
}

struct save_ctx {
        pid_t *stage2;     /* the init when made in two stages, else <= 0 */
        struct seccomp_ctx *seccomp;
        const struct create_opts *o;
        const struct spec *spec;
        const char *bundle, *rootfs;
        json_t *cgroup_paths;
        pid_t pid;
        struct berr *e;
};

/* prestart (deprecated but what dockerd uses) and createRuntime: in the
 * runtime's namespaces, once the container's namespaces exist. */
static int runtime_hooks(void *userdata)
{
        struct save_ctx *sc = userdata;
        json_t *hooks = json_object_get(sc->spec->doc, "hooks");
        pid_t pid = *sc->stage2 > 0 ? *sc->stage2 : sc->pid;
        json_t *st = state_hook_json(sc->spec->oci_version, sc->o->id, "creating", pid, sc->bundle,
                                     sc->spec->annotations);
        int r = hooks_run(hooks, HOOK_PRESTART, st, sc->e);
        if (r >= 0)
                r = hooks_run(hooks, HOOK_CREATE_RUNTIME, st, sc->e);
        json_decref(st);
        return r;
}

static int seccomp_to_agent(void *userdata, int fd)
{
        struct save_ctx *sc = userdata;
        pid_t pid = *sc->stage2 > 0 ? *sc->stage2 : sc->pid;
        json_t *st = state_hook_json(sc->spec->oci_version, sc->o->id, "creating", pid, sc->bundle,
                                     sc->spec->annotations);
        int r = seccomp_filter_send_listener(sc->seccomp, fd, pid, st, sc->e);
        json_decref(st);
        return r;
}

static int save_state(void *userdata)
{
        struct save_ctx *sc = userdata;
        uint64_t start_time = 0;
        int r;

        if ((r = proc_start_time(sc->pid, &start_time)) < 0)
                return berr_set(sc->e, r, "container process %d vanished", (int) sc->pid);
        _cleanup_(state_freep) struct container_state *st =
                state_new(sc->o->id, sc->spec->oci_version, sc->bundle, sc->rootfs, sc->pid, start_time,
                          sc->spec->annotations, sc->cgroup_paths, json_object_get(sc->spec->doc, "hooks"));
        if (!st)
                return -ENOMEM;
        if ((r = state_save(sc->o->root, st)) < 0)
                return berr_set(sc->e, r, "cannot write the state of container \"%s\"", sc->o->id);
        struct pid_file_ctx pf = { .path = sc->o->pid_file, .pid = sc->pid, .e = sc->e };
        return write_pid_file(&pf);
}

int write_pid_file(void *userdata)
{
        struct pid_file_ctx *pf = userdata;
        char buf[32];
        if (!pf->path)
                return 0;
        int n = snprintf(buf, sizeof(buf), "%d", (int) pf->pid);
        int r = fs_write_atomic_ex(pf->path, buf, (size_t) n, 0644, 0);
        return r < 0 ? berr_set(pf->e, r, "cannot write pid file \"%s\"", pf->path) : 0;
}

int container_spawn(struct init_ctx *c, unsigned long flags, int sp[2], int own_pidns, pid_t *ret_pid,
                    struct berr *e)
{
        pid_t pid = (pid_t) syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
        *ret_pid = pid;
        if (pid < 0)
                return berr_set(e, errno, "cannot create the container process");
        if (pid == 0) {
                close(sp[0]);
                container_init(c);
        }
        close(sp[1]);
        sp[1] = -1;
        /* later children of ours (hooks, sanitizer helpers) belong in our
         * own pid namespace, not the container's */
        if (own_pidns >= 0 && setns(own_pidns, CLONE_NEWPID) < 0)
                return berr_set(e, errno, "cannot return to our own pid namespace");
        return 0;
}

void init_ctx_release(struct init_ctx *c, int pidns_fd, const int sp[2], pid_t prewarm)
{
        if (prewarm > 0)
                while (waitpid(prewarm, NULL, 0) < 0 && errno == EINTR)
                        ;
        for (size_t i = 0; i < c->n_ns_fds; i++)
                close(c->ns_fds[i]);
        const int fds[] = { pidns_fd, sp[0], sp[1], c->state_dir_fd, c->console_fd, c->trampoline_fd };
        for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        seccomp_filter_free(c->seccomp);
        c->seccomp = NULL;
}

int container_create(const struct create_opts *o, pid_t *ret_pid, sigset_t *ret_saved_mask, int *ret_master,
                     struct berr *e)
{
        _cleanup_free_ char *bundle = NULL, *rootfs_in = NULL, *rootfs = NULL, *sdir = NULL, *fifo = NULL;
        struct spec *spec = NULL;
        struct cgroup *cg = NULL;
        struct init_ctx c = { .sync_fd = -1, .state_dir_fd = -1, .console_fd = -1, .trampoline_fd = -1 };
        int pidns_fd = -1, own_pidns = -1, sp[2] = { -1, -1 };
        bool dir_made = false;
        pid_t pid = -1, prewarm = -1;
        int r;

        if ((r = state_check_id(o->id, e)) < 0)
                return r;
        if ((r = resolve_dir(o->bundle, "bundle", &bundle, e)) < 0)
                return r;
        prewarm = cgroup_prewarm();
        if ((r = spec_load(bundle, &spec, e)) < 0)
                goto fail;
        c.hooks = json_object_get(spec->doc, "hooks");
        if ((r = hooks_validate(c.hooks, e)) < 0) {
                r = berr_prefix(e, "invalid config.json");
                goto fail;
        }
        if ((r = process_check_lsm(&spec->process, e)) < 0)
                goto fail;
        c.runtime_hooks = json_array_size(json_object_get(c.hooks, "prestart")) > 0 ||
                          json_array_size(json_object_get(c.hooks, "createRuntime")) > 0;
        if (spec->root_path[0] == '/')
                rootfs_in = strdup(spec->root_path);
        else if (asprintf(&rootfs_in, "%s/%s", bundle, spec->root_path) < 0)
                rootfs_in = NULL;
        if (!rootfs_in) {
                r = -ENOMEM;
                goto fail;
        }
        if ((r = resolve_dir(rootfs_in, "rootfs", &rootfs, e)) < 0)
                goto fail;
        *ret_master = -1;
        if (spec->process.terminal && !o->console_socket && !o->console_to_caller) {
                r = berr_setx(e, EINVAL,
                              "process.terminal is true but no --console-socket was given "
                              "(set terminal to false, or pass a console socket)");
                goto fail;
        }

        if ((r = state_create_dir(o->root, o->id, e)) < 0)
                goto fail;
        dir_made = true;
        if ((r = state_dir(o->root, o->id, &sdir)) < 0 || asprintf(&fifo, "%s/%s", sdir, STATE_FIFO) < 0)
                goto fail;
        if (mkfifo(fifo, 0622) < 0 || chmod(fifo, 0622) < 0) {
                r = berr_set(e, errno, "cannot create \"%s\"", fifo);
                goto fail;
        }
        c.state_dir_fd = open(sdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (c.state_dir_fd < 0) {
                r = berr_set(e, errno, "cannot open \"%s\"", sdir);
                goto fail;
        }

        if ((r = seccomp_filter_prepare_cached(json_object_get(json_object_get(spec->doc, "linux"), "seccomp"),
                                                 o->root, &c.seccomp, e)) < 0)
                goto fail;
        if ((r = cgroup_create(spec, o->id, &cg, e)) < 0)
                goto fail;
        c.cgroup_paths = cgroup_to_json(cg);
        if ((r = open_namespaces(spec, &c, &pidns_fd, e)) < 0)
                goto fail;
        if (o->console_socket && (c.console_fd = console_socket_connect(o->console_socket, e)) < 0) {
                r = c.console_fd;
                goto fail;
        }
        if ((c.trampoline_fd = self_exe_trampoline_fd()) < 0) {
                r = berr_set(e, c.trampoline_fd, "cannot prepare the exec trampoline");
                goto fail;
        }
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
                r = berr_set(e, errno, "cannot create the sync socket");
                goto fail;
        }

        c.spec = spec;
        c.process = &spec->process;
        c.id = o->id;
        c.bundle = bundle;
        c.rootfs = rootfs;
        c.sync_fd = sp[1];
        c.no_pivot = o->no_pivot;
        c.no_new_keyring = o->no_new_keyring;
        c.preserve_fds = o->preserve_fds;

        /* Block signals from here on: they are forwarded once the container
         * runs (`run`), and the child unblocks them just before exec. */
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_BLOCK, &all, &c.saved_mask);
        *ret_saved_mask = c.saved_mask;

        if (pidns_fd >= 0 && (own_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC)) < 0) {
                r = berr_set(e, errno, "cannot open our own pid namespace");
                goto fail;
        }
        if (pidns_fd >= 0 && setns(pidns_fd, CLONE_NEWPID) < 0) {
                r = berr_set(e, errno, "cannot join pid namespace \"%s\"", spec_namespace(spec, CLONE_NEWPID)->path);
                goto fail;
        }

        unsigned long flags = SIGCHLD;
        const struct spec_namespace *pidns = spec_namespace(spec, CLONE_NEWPID);
        const struct spec_namespace *userns = spec_namespace(spec, CLONE_NEWUSER);
        const struct spec_namespace *timens = spec_namespace(spec, CLONE_NEWTIME);
        if (pidns && !pidns->path)
                flags |= CLONE_NEWPID;
        if (userns && !userns->path) {
                c.new_userns = true;
                /* Namespaces joined by path belong to another user namespace:
                 * they must be entered before ours exists (two stages). */
                c.two_stage = c.n_ns_fds > 0 || (pidns && pidns->path);
                if (c.two_stage)
                        flags &= ~(unsigned long) CLONE_NEWPID;
                else
                        flags |= CLONE_NEWUSER;
        }
        if (userns && userns->path) {
                /* joined by path: enter it, then make the pid namespace in it */
                c.joined_userns = true;
                c.two_stage = true;
                flags &= ~(unsigned long) CLONE_NEWPID;
        }
        if (timens && !timens->path && (r = prepare_timens(spec, e)) < 0)
                goto fail;
        if ((r = container_spawn(&c, flags, sp, own_pidns, &pid, e)) < 0)
                goto fail;

        if (c.two_stage && c.new_userns) {
                /* stage 1 joins the namespaces, unshares its user namespace and asks for the maps */
                struct sync_msg um;
                if ((r = recv_sync(sp[0], &um, NULL)) < 0 || um.type != SYNC_USERNS) {
                        if (r >= 0 && um.type == SYNC_ERROR)
                                r = berr_setx(e, um.err ? um.err : EINVAL, "%s", um.msg);
                        else
                                r = berr_setx(e, ECHILD, "container process exited during setup");
                        goto fail;
                }
                if ((r = write_idmaps(pid, spec, e)) < 0)
                        goto fail;
                um = (struct sync_msg) { .type = SYNC_USERNS_DONE };
                if (send(sp[0], &um, offsetof(struct sync_msg, msg), MSG_NOSIGNAL) < 0) {
                        r = berr_set(e, errno, "cannot signal the container process");
                        goto fail;
                }
        } else if (c.new_userns && (r = write_idmaps(pid, spec, e)) < 0)
                goto fail;
        if (spec->process.has_oom_score_adj) {
                char buf[16];
                snprintf(buf, sizeof(buf), "%d", spec->process.oom_score_adj);
                if ((r = write_proc_file(pid, "oom_score_adj", buf, e)) < 0)
                        goto fail;
        }

        pid_t stage2 = -1;
        struct save_ctx sc = {
                .o = o, .spec = spec, .bundle = bundle, .rootfs = rootfs,
                .cgroup_paths = c.cgroup_paths, .pid = pid, .stage2 = &stage2, .e = e,
                .seccomp = c.seccomp,
        };
        struct handshake_ops ops = {
                .save = c.two_stage ? NULL : save_state,
                .run_hooks = runtime_hooks,
                .seccomp_listener = seccomp_to_agent,
                .userdata = &sc,
        };
        r = container_handshake(pid, sp[0], c.cgroup_paths, &ops, ret_master, c.two_stage ? &stage2 : NULL, e);
        if (c.two_stage) {
                /* stage 1 exits once it has forked stage 2, the container's
                 * init; on failure it may still be there */
                if (r < 0) {
                        kill(pid, SIGKILL);
                        if (stage2 > 0)
                                kill(stage2, SIGKILL);
                }
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                pid = stage2;
                sc.pid = stage2;
                if (r >= 0 && stage2 <= 0)
                        r = berr_setx(e, ECHILD, "the container's init was not created");
                if (r >= 0)
                        r = save_state(&sc);
        }
        if (r < 0)
                goto fail;
        *ret_pid = pid;
        r = 0;
        goto out;

fail:
        if (*ret_master >= 0) {
                close(*ret_master);
                *ret_master = -1;
        }
        if (pid > 0)
                kill_and_reap(pid);
        if (c.cgroup_paths)
                cgroup_paths_destroy(c.cgroup_paths);
        if (dir_made)
                state_remove(o->root, o->id);
out:
        if (own_pidns >= 0)
                close(own_pidns);
        init_ctx_release(&c, pidns_fd, sp, prewarm);
        json_decref(c.cgroup_paths);
        cgroup_free(cg);
        spec_free(spec);
        return r;
}

int container_start(const char *root, const char *id, struct berr *e)
{
        _cleanup_(state_freep) struct container_state *st = NULL;
        _cleanup_free_ char *fifo = NULL;
        int r = state_load(root, id, &st, e);
        if (r < 0)
                return r;

        switch (state_status(root, st)) {
        case STATUS_CREATED:
                break;
        case STATUS_STOPPED:
                return berr_setx(e, EINVAL, "cannot start a container that has stopped");
        default:
                return berr_setx(e, EINVAL, "cannot start an already running container");
        }

        if (asprintf(&fifo, "%s/%s/%s", root, id, STATE_FIFO) < 0)
                return -ENOMEM;
        /* The pidfd first: until the fifo is opened the init cannot run, so
         * it is still there; once the fifo is open it may run, exit and be
         * reaped before we look. */
        _cleanup_close_ int pfd = pidfd_open_(st->pid);
        if (pfd < 0)
                return berr_setx(e, ESRCH, "container process %d has exited before start", (int) st->pid);
        _cleanup_close_ int ffd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (ffd < 0)
                return berr_set(e, errno, "cannot open \"%s\"", fifo);

        struct pollfd p[2] = { { .fd = ffd, .events = POLLIN }, { .fd = pfd, .events = POLLIN } };
        for (;;) {
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return berr_set(e, errno, "cannot wait for the container process");
                }
                if (p[0].revents & (POLLIN | POLLHUP)) {
                        char b;
                        if (read(ffd, &b, 1) == 1)
                                break;
                }
                if (p[1].revents)
                        return berr_setx(e, ESRCH, "container process %d has exited before start", (int) st->pid);
        }
        unlink(fifo);

        /* poststart: after the process has started; a failure is a warning */
        if (st->hooks) {
                json_t *hs = state_hook_json(st->oci_version, st->id, "running", st->pid, st->bundle, st->annotations);
                hooks_run(st->hooks, HOOK_POSTSTART, hs, NULL);
                json_decref(hs);
        }
        return 0;
}

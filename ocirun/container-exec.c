/* `exec`: a new process in a running container. The child joins the
 * container's namespaces (through /proc/<init>/ns), the parent puts it in
 * the container's cgroups, and the same init code as `create` finishes the
 * process (terminal, seccomp, capabilities, user, cwd) and execs it. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "cleanup.h"
#include "self-exe.h"
#include "container.h"
#include "fs-util.h"
#include "json-util.h"
#include "log.h"
#include "process-setup.h"

static int append_strv(char ***v, char **add)
{
        size_t n = 0, m = 0;
        for (char **p = *v; p && *p; p++)
                n++;
        for (char **p = add; p && *p; p++)
                m++;
        if (m == 0)
                return 0;
        char **nv = realloc(*v, (n + m + 1) * sizeof(char *));
        if (!nv)
                return -ENOMEM;
        for (size_t i = 0; i < m; i++)
                if (!(nv[n + i] = strdup(add[i])))
                        return -ENOMEM;
        nv[n + m] = NULL;
        *v = nv;
        return 0;
}

static int parse_user(const char *u, uint32_t *uid, uint32_t *gid, struct berr *e)
{
        char *end;
        unsigned long a = strtoul(u, &end, 10);
        if (end == u || (*end && *end != ':'))
                return berr_setx(e, EINVAL, "--user \"%s\" must be UID[:GID] (numbers)", u);
        *uid = (uint32_t) a;
        if (*end == ':') {
                const char *g = end + 1;
                unsigned long b = strtoul(g, &end, 10);
                if (end == g || *end)
                        return berr_setx(e, EINVAL, "--user \"%s\" must be UID[:GID] (numbers)", u);
                *gid = (uint32_t) b;
        }
        return 0;
}

/* The process to run: --process FILE as is, or the container's process
 * with the command line's overrides. */
static int build_process(const struct exec_opts *o, const struct spec *spec, json_t **ret_doc,
                         struct spec_process *p, struct berr *e)
{
        int r;

        if (o->process_file) {
                if ((r = json_load_path(o->process_file, 1u << 20, ret_doc, e)) < 0)
                        return r;
                if ((r = spec_process_parse(*ret_doc, p, e)) < 0)
                        return berr_prefix(e, "invalid process \"%s\"", o->process_file);
                return 0;
        }

        if (!o->args || !o->args[0])
                return berr_setx(e, EINVAL, "exec needs a command (or --process FILE)");
        /* start from the container's process: same user, caps, rlimits, env */
        json_t *proc = json_object_get(spec->doc, "process");
        *ret_doc = json_deep_copy(proc);
        if (!*ret_doc)
                return -ENOMEM;
        json_t *args = json_array();
        for (char **a = o->args; *a; a++)
                json_array_append_new(args, json_string(*a));
        json_object_set_new(*ret_doc, "args", args);
        json_object_set_new(*ret_doc, "terminal", json_boolean(o->tty));
        if (o->cwd)
                json_object_set_new(*ret_doc, "cwd", json_string(o->cwd));
        if ((r = spec_process_parse(*ret_doc, p, e)) < 0)
                return r;

        if ((r = append_strv(&p->env, o->env)) < 0)
                return r;
        if (o->user && (r = parse_user(o->user, &p->uid, &p->gid, e)) < 0)
                return r;
        if (o->n_additional_gids) {
                free(p->additional_gids);
                p->additional_gids = calloc(o->n_additional_gids, sizeof(uint32_t));
                if (!p->additional_gids)
                        return -ENOMEM;
                memcpy(p->additional_gids, o->additional_gids, o->n_additional_gids * sizeof(uint32_t));
                p->n_additional_gids = o->n_additional_gids;
        }
        for (char **c = o->caps; c && *c; c++) {
                int cap = spec_cap_from_name(*c);
                if (cap < 0)
                        return berr_setx(e, EINVAL, "unknown capability \"%s\"", *c);
                uint64_t bit = 1ull << cap;
                p->caps.present = true;
                p->caps.bounding |= bit;
                p->caps.effective |= bit;
                p->caps.permitted |= bit;
                p->caps.inheritable |= bit;
                p->caps.ambient |= bit;
        }
        if (o->no_new_privs)
                p->no_new_privileges = true;
        if (o->apparmor)
                p->apparmor_profile = o->apparmor;
        return process_check_lsm(p, e);
}

static int open_container_namespaces(pid_t pid, const struct spec *spec, struct init_ctx *c, int *ret_pidns,
                                     struct berr *e)
{
        /* joined in this order; mount last, after which only fds are used */
        static const struct {
                int flag;
                const char *name;
        } order[] = {
                { CLONE_NEWIPC, "ipc" }, { CLONE_NEWUTS, "uts" },       { CLONE_NEWNET, "net" },
                { CLONE_NEWPID, "pid" }, { CLONE_NEWCGROUP, "cgroup" }, { CLONE_NEWNS, "mnt" },
        };
        for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
                if (!spec_namespace(spec, order[i].flag))
                        continue;
                char path[64];
                snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int) pid, order[i].name);
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return berr_set(e, errno, "cannot open the container's %s namespace \"%s\"", order[i].name,
                                        path);
                if (order[i].flag == CLONE_NEWPID) {
                        *ret_pidns = fd;
                        continue;
                }
                c->ns_fds[c->n_ns_fds] = fd;
                c->ns_flags[c->n_ns_fds++] = order[i].flag;
        }
        return 0;
}

struct exec_ctx {
        struct pid_file_ctx pf;
        struct seccomp_ctx *seccomp;
        const struct container_state *st;
};

static int exec_save(void *userdata)
{
        return write_pid_file(&((struct exec_ctx *) userdata)->pf);
}

static int exec_seccomp_to_agent(void *userdata, int fd)
{
        struct exec_ctx *ec = userdata;
        json_t *js = state_to_json(ec->st, STATUS_RUNNING);
        int r = seccomp_filter_send_listener(ec->seccomp, fd, ec->pf.pid, js, ec->pf.e);
        json_decref(js);
        return r;
}

int container_exec(const struct exec_opts *o, pid_t *ret_pid, sigset_t *ret_saved_mask, int *ret_master,
                   struct berr *e)
{
        _cleanup_(state_freep) struct container_state *st = NULL;
        struct spec *spec = NULL;
        json_t *pdoc = NULL;
        struct spec_process proc = { 0 };
        struct init_ctx c = { .sync_fd = -1, .state_dir_fd = -1, .console_fd = -1, .trampoline_fd = -1, .exec = true };
        int pidns_fd = -1, own_pidns = -1, sp[2] = { -1, -1 };
        pid_t pid = -1, prewarm = -1;
        int r;

        *ret_master = -1;
        if ((r = state_load(o->root, o->id, &st, e)) < 0)
                return r;
        switch (state_status(o->root, st)) {
        case STATUS_STOPPED:
                return berr_setx(e, EINVAL, "cannot exec in a stopped container");
        case STATUS_PAUSED:
                if (!o->ignore_paused)
                        return berr_setx(e, EINVAL, "cannot exec in a paused container (use --ignore-paused)");
                break;
        default:
                break;
        }
        prewarm = cgroup_prewarm();
        if ((r = spec_load(st->bundle, &spec, e)) < 0)
                goto out;
        if ((r = build_process(o, spec, &pdoc, &proc, e)) < 0)
                goto out;
        if (proc.terminal && !o->console_socket && o->detach) {
                r = berr_setx(e, EINVAL, "cannot allocate a tty for a detached exec without --console-socket");
                goto out;
        }
        if ((r = seccomp_filter_prepare_cached(json_object_get(json_object_get(spec->doc, "linux"), "seccomp"),
                                                 o->root, &c.seccomp, e)) < 0)
                goto out;
        if ((r = open_container_namespaces(st->pid, spec, &c, &pidns_fd, e)) < 0)
                goto out;
        /* the process must still be the container's init once we hold its namespaces */
        if (!state_pid_alive(st->pid, st->start_time)) {
                r = berr_setx(e, ESRCH, "container \"%s\" stopped", o->id);
                goto out;
        }
        if (o->console_socket) {
                c.console_fd = console_socket_connect(o->console_socket, e);
                if (c.console_fd < 0) {
                        r = c.console_fd;
                        goto out;
                }
        }
        if ((c.trampoline_fd = self_exe_trampoline_fd()) < 0) {
                r = berr_set(e, c.trampoline_fd, "cannot prepare the exec trampoline");
                goto out;
        }
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
                r = berr_set(e, errno, "cannot create the sync socket");
                goto out;
        }
        c.spec = spec;
        c.process = &proc;
        c.id = o->id;
        c.sync_fd = sp[1];
        c.preserve_fds = o->preserve_fds;
        c.cgroup_paths = st->cgroup_paths;

        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_BLOCK, &all, &c.saved_mask);
        *ret_saved_mask = c.saved_mask;

        if (pidns_fd >= 0 && (own_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC)) < 0) {
                r = berr_set(e, errno, "cannot open our own pid namespace");
                goto out;
        }
        if (pidns_fd >= 0 && setns(pidns_fd, CLONE_NEWPID) < 0) {
                r = berr_set(e, errno, "cannot join the pid namespace of container \"%s\"", o->id);
                goto out;
        }
        if ((r = container_spawn(&c, SIGCHLD, sp, own_pidns, &pid, e)) < 0) {
                if (pid > 0)
                        goto kill_out;
                goto out;
        }

        struct exec_ctx ec = { .pf = { .path = o->pid_file, .pid = pid, .e = e }, .seccomp = c.seccomp, .st = st };
        struct handshake_ops ops = { .save = exec_save, .seccomp_listener = exec_seccomp_to_agent, .userdata = &ec };
        if ((r = container_handshake(pid, sp[0], st->cgroup_paths, &ops, ret_master, NULL, e)) < 0) {
kill_out:
                kill(pid, SIGKILL);
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                goto out;
        }
        *ret_pid = pid;
        r = 0;
out:
        if (own_pidns >= 0)
                close(own_pidns);
        init_ctx_release(&c, pidns_fd, sp, prewarm);
        spec_process_clear(&proc);
        json_decref(pdoc);
        spec_free(spec);
        return r;
}

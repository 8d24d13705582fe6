/* berth-shim: one per container. Owns the container's stdio, its log and
 * its exit status, and serves shim.proto on <state dir>/shim.sock and the
 * attach protocol on <state dir>/attach.sock. It detaches from whoever
 * started it (new session, reparented away) so that the daemons can be
 * killed or restarted while containers keep running.
 *
 * The process that runs "berth-shim ..." exits 0 once the shim serves its
 * sockets, or 1 with the reason on stderr. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attach.h"
#include "cleanup.h"
#include "fs-util.h"
#include "json-util.h"
#include "log.h"
#include "loop.h"
#include "process.h"
#include "runtime.h"
#include "service.h"

#define DEFAULT_STATE_ROOT "/run/berth/shims"
#define RPC_MAX_MESSAGE (1u << 20)
#define SHIM_PROBE_MS 5000

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: berth-shim --id ID --bundle DIR [options]\n"
                "       berth-shim --spare --state-dir DIR [options]\n"
                "\n"
                "  --id ID               container id\n"
                "  --bundle DIR          OCI bundle (config.json, rootfs)\n"
                "  --runtime BIN         runc-compatible runtime (default: ocirun)\n"
                "  --runtime-root DIR    the runtime's --root (default: the runtime's own)\n"
                "  --state-dir DIR       sockets, pid and exit files (default: " DEFAULT_STATE_ROOT "/<id>)\n"
                "  --log-path FILE       container output in Docker's json-file format\n"
                "  --log-opt KEY=VALUE   max-size=SIZE (k, m, g), max-file=N\n"
                "  --shim-log FILE       the shim's own log (default: <state dir>/shim.log)\n"
                "  --spare               serve without a container until shim.Adopt gives one\n"
                "                        (the caller renames DIR to the container's state dir)\n"
                "  --debug               debug messages in the shim's log\n"
                "  --foreground          do not detach (for debugging)\n"
                "  --version, --help\n");
}

struct options {
        bool spare;
        bool foreground;
        bool debug;
        const char *shim_log;
};

static bool valid_id(const char *id)
{
        size_t n = strlen(id);
        if (n == 0 || n > 128 || id[0] == '.' || id[0] == '-')
                return false;
        for (const char *c = id; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                      *c == '-' || *c == '_' || *c == '.'))
                        return false;
        return true;
}

static int parse_args(int argc, char **argv, struct shim *s, struct options *o)
{
        static const struct option opts[] = {
                { "id", required_argument, NULL, 'i' },
                { "bundle", required_argument, NULL, 'b' },
                { "runtime", required_argument, NULL, 'r' },
                { "runtime-root", required_argument, NULL, 'R' },
                { "state-dir", required_argument, NULL, 's' },
                { "log-path", required_argument, NULL, 'l' },
                { "log-opt", required_argument, NULL, 'o' },
                { "shim-log", required_argument, NULL, 'L' },
                { "debug", no_argument, NULL, 'd' },
                { "spare", no_argument, NULL, 'S' },
                { "foreground", no_argument, NULL, 'f' },
                { "version", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct berr e = { 0 };
        const char *bundle = NULL, *state_dir = NULL;
        int c;

        s->runtime = "ocirun";
        s->log_opts.max_file = 1;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'i':
                        s->id = optarg;
                        break;
                case 'b':
                        bundle = optarg;
                        break;
                case 'r':
                        s->runtime = optarg;
                        break;
                case 'R':
                        s->runtime_root = optarg;
                        break;
                case 's':
                        state_dir = optarg;
                        break;
                case 'l':
                        s->log_path = optarg;
                        break;
                case 'o':
                        if (jlog_parse_opt(&s->log_opts, optarg, &e) < 0) {
                                log_error("%s", e.msg);
                                return -1;
                        }
                        break;
                case 'L':
                        o->shim_log = optarg;
                        break;
                case 'd':
                        o->debug = true;
                        break;
                case 'S':
                        o->spare = true;
                        break;
                case 'f':
                        o->foreground = true;
                        break;
                case 'v':
                        printf("berth-shim version %s\n", BERTH_VERSION);
                        exit(0);
                case 'h':
                        usage(stdout);
                        exit(0);
                default:
                        usage(stderr);
                        return -1;
                }
        }
        if (o->spare) {
                /* the container comes with shim.Adopt */
                if (optind < argc || s->id || bundle || !state_dir) {
                        usage(stderr);
                        return -1;
                }
                return (s->state_dir = strdup(state_dir)) ? 0 : -1;
        }
        if (optind < argc || !s->id || !bundle) {
                usage(stderr);
                return -1;
        }
        if (!valid_id(s->id)) {
                log_error("invalid container id \"%s\"", s->id);
                return -1;
        }
        s->bundle = realpath(bundle, NULL);
        if (!s->bundle) {
                log_error("bundle \"%s\": %m", bundle);
                return -1;
        }
        if (!state_dir) {
                if (asprintf(&s->state_dir, "%s/%s", DEFAULT_STATE_ROOT, s->id) < 0)
                        s->state_dir = NULL;
        } else
                s->state_dir = strdup(state_dir);
        if (!s->state_dir)
                return -1;
        return 0;
}

static int read_terminal(struct shim *s)
{
        _cleanup_free_ char *path = NULL;
        _cleanup_json_ json_t *j = NULL;
        json_t *proc = NULL;
        struct berr e = { 0 };
        if (asprintf(&path, "%s/config.json", s->bundle) < 0)
                return -ENOMEM;
        if (json_load_path(path, 16 << 20, &j, &e) < 0 || json_get_object(j, "config", "process", &proc, &e) < 0 ||
            (proc && json_get_bool(proc, "process", "terminal", &s->terminal, &e) < 0)) {
                log_error("%s", e.msg);
                return -EINVAL;
        }
        return 0;
}

/* Forks twice: the caller waits for a line on a pipe ("ok" or an error)
 * and exits with it; the grandchild, in a new session and reparented away
 * from the caller, returns with the pipe's write end. */
static int daemonize(int *ret_ready)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return log_errno(LOG_LEVEL_ERROR, errno, "pipe");
        pid_t pid = fork();
        if (pid < 0)
                return log_errno(LOG_LEVEL_ERROR, errno, "fork");
        if (pid > 0) {
                char buf[2048];
                size_t len = 0;
                ssize_t n;
                close(p[1]);
                waitpid(pid, NULL, 0);
                while (len < sizeof(buf) - 1 && (n = read(p[0], buf + len, sizeof(buf) - 1 - len)) != 0) {
                        if (n < 0) {
                                if (errno == EINTR)
                                        continue;
                                break;
                        }
                        len += (size_t) n;
                }
                buf[len] = '\0';
                if (strncmp(buf, "ok\n", 3) == 0)
                        exit(0);
                if (len == 0)
                        fprintf(stderr, "berth-shim: the shim exited while starting\n");
                else
                        fprintf(stderr, "berth-shim: %s%s", buf, buf[len - 1] == '\n' ? "" : "\n");
                exit(1);
        }
        close(p[0]);
        if (setsid() < 0)
                _exit(1);
        pid = fork();
        if (pid < 0) {
                dprintf(p[1], "fork: %s\n", strerror(errno));
                _exit(1);
        }
        if (pid > 0)
                _exit(0);
        *ret_ready = p[1];
        return 0;
}

static void report(int ready_fd, const char *msg)
{
        if (ready_fd >= 0)
                dprintf(ready_fd, "%s\n", msg);
        else
                fprintf(stderr, "berth-shim: %s\n", msg);
}

static void on_rpc(struct loop_source *src, int fd, uint32_t events, void *data)
{
        struct shim *s = data;
        rpc_server_dispatch(s->rpc);
}

static void reap(struct shim *s)
{
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
                shim_child_exited(s, pid, status);
}

static void on_signal(struct loop_source *src, int fd, uint32_t events, void *data)
{
        struct shim *s = data;
        struct signalfd_siginfo si;
        while (read(fd, &si, sizeof(si)) == sizeof(si)) {
                if (si.ssi_signo == SIGCHLD)
                        continue; /* reaped below: signals of several children merge */
                log_warn("shim: signal %u: exiting; the container is left running without its stdio",
                         si.ssi_signo);
                loop_quit(s->loop);
        }
        reap(s);
}

static void stop_children(struct shim *s)
{
        /* runtime commands still running: wait for them so that their
         * callbacks run and free what they hold */
        rt_abandon_all(s);
}

/* What shim.Adopt gave a spare: freed at the end. */
static struct {
        char *id, *bundle, *runtime, *runtime_root, *state_dir, *log_path;
} adopted;

static void adoption_free(void)
{
        free(adopted.id);
        free(adopted.bundle);
        free(adopted.runtime);
        free(adopted.runtime_root);
        free(adopted.state_dir);
        free(adopted.log_path);
}

int shim_adopt(struct shim *s, const struct adoption *a, struct berr *e)
{
        if (s->id)
                return berr_setx(e, EEXIST, "this shim serves container \"%s\" already", s->id);
        if (!a->id || !valid_id(a->id))
                return berr_setx(e, EINVAL, "invalid container id \"%s\"", a->id ? a->id : "");
        if (!a->state_dir || !*a->state_dir || !a->runtime || !*a->runtime)
                return berr_setx(e, EINVAL, "a state dir and a runtime are needed");
        /* the caller moved our state dir there: our pid file says so */
        _cleanup_free_ char *pid_path = NULL, *pid_text = NULL;
        if (asprintf(&pid_path, "%s/shim.pid", a->state_dir) < 0)
                return berr_set(e, ENOMEM, "adopt");
        if (fs_read_file(pid_path, 64, &pid_text, NULL) < 0 || atoi(pid_text) != (int) getpid())
                return berr_setx(e, EINVAL, "\"%s\" is not this shim's state dir (rename it there first)",
                                 a->state_dir);
        struct jlog_opts lo = { .max_file = 1 };
        for (size_t i = 0; i < a->n_log_opts; i++)
                if (jlog_parse_opt(&lo, a->log_opts[i], e) < 0)
                        return -EINVAL;
        _cleanup_free_ char *bundle = realpath(a->bundle ? a->bundle : "", NULL);
        if (!bundle)
                return berr_set(e, errno, "bundle \"%s\"", a->bundle ? a->bundle : "");
        char *old_bundle = s->bundle;
        s->bundle = bundle;
        if (read_terminal(s) < 0) {
                s->bundle = old_bundle;
                return berr_setx(e, EINVAL, "bundle \"%s\": cannot read process.terminal from config.json", bundle);
        }
        struct jlog *log = NULL;
        if (a->log_path && *a->log_path) {
                _cleanup_free_ char *dir = strdup(a->log_path);
                if (dir)
                        fs_mkdir_p(dirname(dir), 0700);
                if (jlog_open(a->log_path, &lo, &log, e) < 0) {
                        s->bundle = old_bundle;
                        return -EIO;
                }
        }
        _cleanup_free_ char *attach_path = NULL, *sock_path = NULL;
        if (asprintf(&attach_path, "%s/attach.sock", a->state_dir) < 0 ||
            asprintf(&sock_path, "%s/shim.sock", a->state_dir) < 0 || rpc_server_moved(s->rpc, sock_path) < 0 ||
            attach_server_moved(s->attach, attach_path) < 0 || !(adopted.id = strdup(a->id)) ||
            !(adopted.runtime = strdup(a->runtime)) || !(adopted.state_dir = strdup(a->state_dir)) ||
            (a->runtime_root && *a->runtime_root && !(adopted.runtime_root = strdup(a->runtime_root))) ||
            (log && !(adopted.log_path = strdup(a->log_path)))) {
                jlog_close(log);
                s->bundle = old_bundle;
                adoption_free();
                memset(&adopted, 0, sizeof(adopted));
                return berr_set(e, ENOMEM, "adopt");
        }
        adopted.bundle = TAKE_PTR(bundle);
        s->bundle = adopted.bundle;
        s->id = adopted.id;
        s->runtime = adopted.runtime;
        s->runtime_root = adopted.runtime_root;
        s->state_dir = adopted.state_dir;
        s->log_path = adopted.log_path;
        s->log_opts = lo;
        s->log = log;
        log_info("shim: spare adopted: container \"%s\" (bundle \"%s\", runtime \"%s\") in \"%s\"", s->id,
                 s->bundle, s->runtime, s->state_dir);
        return 0;
}

int main(int argc, char **argv)
{
        struct shim s = { 0 };
        struct options o = { 0 };
        struct berr e = { 0 };
        int ready = -1, sigfd = -1, lockfd = -1, r;
        char msg[BERR_MSG_MAX + 64];
        sigset_t mask;

        /* One malloc arena: nng's threads allocate little and rarely, and
         * each arena of its own would stay resident (4-8 KB apiece) in a
         * process that spends its life idle. */
        mallopt(M_ARENA_MAX, 1);
        log_setup("berth-shim", LOG_LEVEL_WARN);
        r = parse_args(argc, argv, &s, &o);
        _cleanup_free_ char *own_bundle = s.bundle, *own_state_dir = s.state_dir;
        if (r < 0)
                return 2;
        if (!o.spare && read_terminal(&s) < 0)
                return 1;
        if ((r = fs_mkdir_p(s.state_dir, 0700)) < 0) {
                log_error("cannot create state dir \"%s\": %s", s.state_dir, strerror(-r));
                return 1;
        }
        _cleanup_free_ char *lock_path = shim_path(&s, "shim.lock");
        lockfd = lock_path ? open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
        if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
                if (errno == EWOULDBLOCK)
                        log_error("a shim for \"%s\" is already running (state dir \"%s\")", s.id ? s.id : "(spare)",
                                  s.state_dir);
                else
                        log_error("cannot lock \"%s\": %m", lock_path ? lock_path : "shim.lock");
                return 1;
        }
        /* not needed again; freed before the forks, whose _exit would leave
         * it behind in the processes that end there */
        free(lock_path);
        lock_path = NULL;

        if (!o.foreground && daemonize(&ready) < 0)
                return 1;

        /* From here on: the shim itself. No threads exist yet, so the
         * signals blocked here are blocked in nng's threads too, and only
         * the signalfd sees them. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0 || sigfd < 0) {
                snprintf(msg, sizeof(msg), "subreaper / signalfd: %s", strerror(errno));
                report(ready, msg);
                return 1;
        }
        _cleanup_free_ char *shim_log = o.shim_log ? strdup(o.shim_log) : shim_path(&s, "shim.log");
        if (!shim_log || (r = log_open_file(shim_log, LOG_FORMAT_JSON)) < 0) {
                snprintf(msg, sizeof(msg), "cannot open shim log \"%s\": %s", shim_log ? shim_log : "",
                         strerror(r < 0 ? -r : ENOMEM));
                report(ready, msg);
                return 1;
        }
        log_set_level(o.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
        if (!o.foreground) {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (null >= 0) {
                        dup2(null, 0);
                        dup2(null, 1);
                        dup2(null, 2);
                        if (null > 2)
                                close(null);
                }
                if (chdir("/") < 0)
                        log_debug("chdir /: %m");
        }

        char pidbuf[32];
        int pidlen = snprintf(pidbuf, sizeof(pidbuf), "%d\n", (int) getpid());
        _cleanup_free_ char *pid_path = shim_path(&s, "shim.pid");
        _cleanup_free_ char *sock_path = shim_path(&s, "shim.sock");
        _cleanup_free_ char *attach_path = shim_path(&s, "attach.sock");
        _cleanup_free_ char *url = NULL;
        if (!pid_path || !sock_path || !attach_path || asprintf(&url, "ipc://%s", sock_path) < 0) {
                report(ready, "out of memory");
                return 1;
        }
        if ((r = fs_write_atomic_ex(pid_path, pidbuf, (size_t) pidlen, 0644, 0)) < 0) {
                snprintf(msg, sizeof(msg), "cannot write \"%s\": %s", pid_path, strerror(-r));
                report(ready, msg);
                return 1;
        }
        if (s.log_path) {
                _cleanup_free_ char *dir = strdup(s.log_path);
                if (dir)
                        fs_mkdir_p(dirname(dir), 0700);
                if (jlog_open(s.log_path, &s.log_opts, &s.log, &e) < 0) {
                        report(ready, e.msg);
                        return 1;
                }
        }
        if ((r = loop_new(&s.loop)) < 0 || !(s.init = proc_new(&s, NULL))) {
                report(ready, "out of memory");
                return 1;
        }
        loop_add_fd(s.loop, sigfd, EPOLLIN, on_signal, &s);

        unlink(sock_path);
        /* a shim's listener is checked every 5 s, not every second: each
         * probe costs about 0.4 ms of CPU, times every container, and its
         * one client (the supervisor) connects again only after a restart */
        struct rpc_server_options ro = {
                .flags = RPC_SERVER_QUEUE, .max_message = RPC_MAX_MESSAGE, .probe_ms = SHIM_PROBE_MS
        };
        if (rpc_server_start(url, shim_methods, shim_n_methods, &s, &ro, &s.rpc, &e) < 0) {
                report(ready, e.msg);
                return 1;
        }
        loop_add_fd(s.loop, rpc_server_fd(s.rpc), EPOLLIN, on_rpc, &s);
        if (attach_server_start(&s, attach_path, &s.attach, &e) < 0) {
                report(ready, e.msg);
                rpc_server_free(s.rpc);
                return 1;
        }

        if (o.spare)
                log_info("shim: spare, serving on \"%s\" until a container is given", sock_path);
        else
                log_info("shim: serving container \"%s\" (bundle \"%s\", runtime \"%s\") on \"%s\"", s.id,
                         s.bundle, s.runtime, sock_path);
        if (ready >= 0) {
                report(ready, "ok");
                close(ready);
                ready = -1;
        }

        r = loop_run(s.loop);
        if (r < 0)
                log_error("shim: event loop: %s", strerror(-r));

        stop_children(&s);
        while (s.execs) {
                struct proc *p = s.execs;
                s.execs = p->next;
                proc_free(p);
        }
        proc_free(s.init);
        s.init = NULL;
        if (s.shutting_down)
                rpc_server_flush(s.rpc, s.shutdown_pipe, 1000);
        rpc_server_free(s.rpc);
        attach_server_free(s.attach);
        jlog_close(s.log);
        loop_free(s.loop);
        /* an adopted spare's files moved with its state dir */
        _cleanup_free_ char *sock_now = shim_path(&s, "shim.sock"), *pid_now = shim_path(&s, "shim.pid");
        if (sock_now)
                unlink(sock_now);
        if (s.shutting_down) {
                log_close();
                fs_rm_rf(s.state_dir);
        } else if (pid_now) {
                unlink(pid_now);
        }
        adoption_free();
        close(sigfd);
        close(lockfd);
        free(s.cg_memory);
        free(s.cg_cpu);
        free(s.cg_pids);
        return r < 0 ? 1 : 0;
}

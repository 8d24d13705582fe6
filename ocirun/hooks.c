/* OCI lifecycle hooks: fork + exec of each hook with the state on stdin.
 *
 * ocirun is single-threaded and usually has every signal blocked while it
 * runs hooks, so nothing here waits for SIGCHLD: the hook's exit is
 * watched through a pidfd in the same poll() as its pipes and its timeout,
 * and the hook is always reaped before hooks_run returns. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "hooks.h"
#include "log.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* How much of a hook's stderr goes into the error message (its end: that
 * is where the reason usually is). */
#define HOOK_OUTPUT_KEEP 512
/* Without a pidfd (Linux < 5.3), how often to look for the hook's exit. */
#define HOOK_POLL_FALLBACK_MS 10
/* After the hook exits, read at most this much more of what a process it
 * left behind may still be writing, then stop. */
#define HOOK_DRAIN_MAX (64 * 1024)

static const char *const stage_names[] = {
        [HOOK_PRESTART] = "prestart",
        [HOOK_CREATE_RUNTIME] = "createRuntime",
        [HOOK_CREATE_CONTAINER] = "createContainer",
        [HOOK_START_CONTAINER] = "startContainer",
        [HOOK_POSTSTART] = "poststart",
        [HOOK_POSTSTOP] = "poststop",
};

const char *hook_stage_name(enum hook_stage stage)
{
        if ((unsigned) stage >= ARRAY_SIZE(stage_names))
                return "unknown";
        return stage_names[stage];
}

/* ---- validation ---- */

static int validate_strv(const json_t *h, const char *where, const char *key, struct berr *e)
{
        json_t *v = json_object_get(h, key);
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_array(v))
                return berr_setx(e, EINVAL, "%s.%s must be an array of strings", where, key);
        size_t i;
        json_t *s;
        json_array_foreach(v, i, s)
                if (!json_is_string(s))
                        return berr_setx(e, EINVAL, "%s.%s[%zu] must be a string", where, key, i);
        return 0;
}

static int validate_hook(const json_t *h, const char *where, struct berr *e)
{
        int r;

        if (!json_is_object(h))
                return berr_setx(e, EINVAL, "%s must be an object", where);
        json_t *path = json_object_get(h, "path");
        if (!path || json_is_null(path))
                return berr_setx(e, EINVAL, "%s.path is required", where);
        if (!json_is_string(path))
                return berr_setx(e, EINVAL, "%s.path must be a string", where);
        if (json_string_value(path)[0] != '/')
                return berr_setx(e, EINVAL, "%s.path \"%s\" must be an absolute path", where, json_string_value(path));
        if ((r = validate_strv(h, where, "args", e)) < 0 || (r = validate_strv(h, where, "env", e)) < 0)
                return r;
        json_t *t = json_object_get(h, "timeout");
        if (t && !json_is_null(t) && (!json_is_integer(t) || json_integer_value(t) <= 0))
                return berr_setx(e, EINVAL, "%s.timeout must be an integer greater than zero", where);
        /* Unknown members are ignored, as the spec requires of runtimes. */
        return 0;
}

static int validate_stage(const json_t *hooks, enum hook_stage stage, struct berr *e)
{
        const char *name = hook_stage_name(stage);
        json_t *list = json_object_get(hooks, name);
        if (!list || json_is_null(list))
                return 0;
        if (!json_is_array(list))
                return berr_setx(e, EINVAL, "hooks.%s must be an array", name);
        size_t i;
        json_t *h;
        json_array_foreach(list, i, h) {
                char where[64];
                snprintf(where, sizeof(where), "hooks.%s[%zu]", name, i);
                int r = validate_hook(h, where, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

int hooks_validate(const json_t *hooks, struct berr *e)
{
        if (!hooks || json_is_null(hooks))
                return 0;
        if (!json_is_object(hooks))
                return berr_setx(e, EINVAL, "hooks must be an object");
        for (size_t s = 0; s < ARRAY_SIZE(stage_names); s++) {
                int r = validate_stage(hooks, (enum hook_stage) s, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- running one hook ---- */

/* The last HOOK_OUTPUT_KEEP bytes written to a pipe. */
struct tail {
        char buf[HOOK_OUTPUT_KEEP];
        size_t len;
        bool cut;
};

static void tail_add(struct tail *t, const char *data, size_t n)
{
        if (n >= sizeof(t->buf)) {
                memcpy(t->buf, data + n - sizeof(t->buf), sizeof(t->buf));
                t->cut = t->cut || n > sizeof(t->buf) || t->len > 0;
                t->len = sizeof(t->buf);
                return;
        }
        if (t->len + n > sizeof(t->buf)) {
                size_t drop = t->len + n - sizeof(t->buf);
                memmove(t->buf, t->buf + drop, t->len - drop);
                t->len -= drop;
                t->cut = true;
        }
        memcpy(t->buf + t->len, data, n);
        t->len += n;
}

/* One line for a message: control characters become spaces, surrounding
 * whitespace goes, "..." marks a cut. */
static void tail_text(const struct tail *t, char *out, size_t size)
{
        size_t a = 0, b = t->len, n = 0;
        while (a < b && (unsigned char) t->buf[a] <= ' ')
                a++;
        while (b > a && (unsigned char) t->buf[b - 1] <= ' ')
                b--;
        if (t->cut && a < b && size > 4) {
                memcpy(out, "...", 3);
                n = 3;
        }
        for (size_t i = a; i < b && n + 1 < size; i++) {
                unsigned char c = (unsigned char) t->buf[i];
                out[n++] = c < ' ' || c == 0x7f ? ' ' : (char) c;
        }
        out[n] = '\0';
}

struct hook {
        const char *path;
        char **argv;
        char **env;        /* NULL: ocirun's own environment, as runc and crun */
        int64_t timeout;   /* seconds, 0 = none */
};

static void hook_done(struct hook *h)
{
        strv_free(h->argv);
        strv_free(h->env);
}

static char **strv_from_json(const json_t *arr)
{
        size_t n = json_array_size(arr);
        char **v = calloc(n + 1, sizeof(char *));
        if (!v)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (!(v[i] = strdup(json_string_value(json_array_get(arr, i))))) {
                        strv_free(v);
                        return NULL;
                }
        return v;
}

/* h has been validated. */
static int hook_from_json(const json_t *j, struct hook *h)
{
        *h = (struct hook) { .path = json_string_value(json_object_get(j, "path")) };
        json_t *args = json_object_get(j, "args");
        json_t *env = json_object_get(j, "env");
        json_t *t = json_object_get(j, "timeout");

        /* args[0] is argv[0]; without args, argv is just the path. */
        if (json_array_size(args) > 0)
                h->argv = strv_from_json(args);
        else if ((h->argv = calloc(2, sizeof(char *))))
                h->argv[0] = strdup(h->path);
        if (!h->argv || !h->argv[0])
                return -ENOMEM;
        if (json_is_array(env) && !(h->env = strv_from_json(env)))
                return -ENOMEM;
        if (json_is_integer(t))
                h->timeout = json_integer_value(t);
        return 0;
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* In the forked child: never returns. Errors before exec go to the parent
 * as an errno over err_fd. */
_Noreturn static void hook_child(const struct hook *h, enum hook_stage stage, const char *bundle, int fds[3],
                                 int err_fd)
{
        extern char **environ;
        int saved;

        /* Handlers first, then the mask: a signal pending at unblock must not
         * run one of ocirun's handlers here. */
        for (int sig = 1; sig < NSIG; sig++)
                signal(sig, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);

        /* Move the pipe ends above 2 first, so that dup2 never overwrites
         * one that happens to be 0-2 (and always clears O_CLOEXEC). */
        for (int k = 0; k < 3; k++)
                if ((fds[k] = fcntl(fds[k], F_DUPFD_CLOEXEC, 3)) < 0)
                        goto fail;
        for (int k = 0; k < 3; k++)
                if (dup2(fds[k], k) < 0)
                        goto fail;
        /* Only 0-2 reach the hook, whatever ocirun holds without O_CLOEXEC. */
        if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
                struct rlimit rl;
                int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int) rl.rlim_cur : 65536;
                for (int fd = 3; fd < max; fd++)
                        fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
        /* Runtime-namespace hooks start in the bundle, as under runc (which
         * chdirs there); startContainer runs after pivot_root, where the
         * bundle path means nothing. */
        if (bundle && stage != HOOK_START_CONTAINER && chdir(bundle) < 0) {
                /* then the hook starts in ocirun's cwd */
        }
        execve(h->path, h->argv, h->env ? h->env : environ);
fail:
        saved = errno;
        if (write(err_fd, &saved, sizeof(saved)) < 0) {
                /* nothing left to report it to */
        }
        _exit(127);
}

static void read_some(int *fd, struct tail *t, size_t *budget)
{
        char buf[4096];
        for (;;) {
                ssize_t n = read(*fd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n > 0) {
                        tail_add(t, buf, (size_t) n);
                        if (budget) {
                                if ((size_t) n >= *budget)
                                        break;
                                *budget -= (size_t) n;
                        }
                        continue;
                }
                if (n == 0 || errno != EAGAIN) {
                        close(*fd);
                        *fd = -1;
                }
                return;
        }
}

static void reap(pid_t pid, int *status)
{
        while (waitpid(pid, status, 0) < 0 && errno == EINTR)
                ;
}

struct hook_result {
        int status;        /* waitpid status */
        int exec_errno;    /* the hook could not be executed */
        bool timed_out;
        struct tail out, err;
};

/* Feeds stdin, collects stdout/stderr, waits for the exit or the timeout.
 * The child is reaped on every path. */
static int supervise(pid_t pid, const struct hook *h, const char *payload, size_t len, int in_fd, int out_fd,
                     int err_fd, struct hook_result *res)
{
        int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        int64_t deadline = h->timeout > 0 ? now_ms() + (h->timeout > INT32_MAX ? INT32_MAX : h->timeout) * 1000 : -1;
        size_t off = 0;
        bool exited = false;

        if (len == 0) {
                close(in_fd);
                in_fd = -1;
        }
        while (!exited) {
                struct pollfd p[4];
                int n = 0, i_in = -1, i_out = -1, i_err = -1;
                if (in_fd >= 0)
                        p[i_in = n++] = (struct pollfd) { .fd = in_fd, .events = POLLOUT };
                if (out_fd >= 0)
                        p[i_out = n++] = (struct pollfd) { .fd = out_fd, .events = POLLIN };
                if (err_fd >= 0)
                        p[i_err = n++] = (struct pollfd) { .fd = err_fd, .events = POLLIN };
                if (pidfd >= 0)
                        p[n++] = (struct pollfd) { .fd = pidfd, .events = POLLIN };

                int wait_ms = -1;
                if (deadline >= 0) {
                        int64_t left = deadline - now_ms();
                        wait_ms = left < 0 ? 0 : left > INT_MAX ? INT_MAX : (int) left;
                }
                if (pidfd < 0 && (wait_ms < 0 || wait_ms > HOOK_POLL_FALLBACK_MS))
                        wait_ms = HOOK_POLL_FALLBACK_MS;
                if (poll(p, (nfds_t) n, wait_ms) < 0 && errno != EINTR) {
                        int r = -errno;
                        kill(pid, SIGKILL);
                        reap(pid, &res->status);
                        if (pidfd >= 0)
                                close(pidfd);
                        return r;
                }

                if (i_in >= 0 && p[i_in].revents) {
                        ssize_t w = write(in_fd, payload + off, len - off);
                        if (w > 0)
                                off += (size_t) w;
                        /* EPIPE (the hook does not read its stdin) is fine. */
                        if (off == len || (w < 0 && errno != EAGAIN && errno != EINTR)) {
                                close(in_fd);
                                in_fd = -1;
                        }
                }
                if (i_out >= 0 && p[i_out].revents)
                        read_some(&out_fd, &res->out, NULL);
                if (i_err >= 0 && p[i_err].revents)
                        read_some(&err_fd, &res->err, NULL);

                pid_t w = waitpid(pid, &res->status, WNOHANG);
                if (w == pid || (w < 0 && errno == ECHILD))
                        exited = true;
                else if (deadline >= 0 && now_ms() >= deadline) {
                        kill(pid, SIGKILL);
                        reap(pid, &res->status);
                        res->timed_out = true;
                        exited = true;
                }
        }

        /* What the hook wrote just before exiting; a process it left behind
         * holding the pipes is not waited for. */
        size_t budget = HOOK_DRAIN_MAX;
        if (out_fd >= 0)
                read_some(&out_fd, &res->out, &budget);
        budget = HOOK_DRAIN_MAX;
        if (err_fd >= 0)
                read_some(&err_fd, &res->err, &budget);
        if (in_fd >= 0)
                close(in_fd);
        if (out_fd >= 0)
                close(out_fd);
        if (err_fd >= 0)
                close(err_fd);
        if (pidfd >= 0)
                close(pidfd);
        return 0;
}

static void close_pair(int p[2])
{
        for (int k = 0; k < 2; k++)
                if (p[k] >= 0) {
                        close(p[k]);
                        p[k] = -1;
                }
}

static int report(const struct hook *h, enum hook_stage stage, const struct hook_result *res, struct berr *e)
{
        const char *name = hook_stage_name(stage);
        char err[HOOK_OUTPUT_KEEP + 8], out[HOOK_OUTPUT_KEEP + 8], what[64];

        if (res->exec_errno)
                return berr_set(e, res->exec_errno, "%s hook \"%s\": cannot execute it", name, h->path);

        tail_text(&res->out, out, sizeof(out));
        if (*out)
                log_debug("%s hook \"%s\" stdout: %s", name, h->path, out);
        if (!res->timed_out && WIFEXITED(res->status) && WEXITSTATUS(res->status) == 0)
                return 0;

        tail_text(&res->err, err, sizeof(err));
        const char *sep = *err ? ": " : "";
        if (res->timed_out)
                return berr_setx(e, ETIMEDOUT, "%s hook \"%s\" timed out after %" PRId64 " s%s%s", name, h->path,
                                 h->timeout, sep, err);
        if (WIFSIGNALED(res->status)) {
                const char *sig = sigabbrev_np(WTERMSIG(res->status));
                if (sig)
                        snprintf(what, sizeof(what), "killed by SIG%s", sig);
                else
                        snprintf(what, sizeof(what), "killed by signal %d", WTERMSIG(res->status));
        } else
                snprintf(what, sizeof(what), "exit status %d", WEXITSTATUS(res->status));
        return berr_setx(e, EIO, "%s hook \"%s\" failed: %s%s%s", name, h->path, what, sep, err);
}

static int run_one(const struct hook *h, enum hook_stage stage, const char *bundle, const char *payload,
                   size_t len, struct berr *e)
{
        int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 }, ex[2] = { -1, -1 };
        struct hook_result res = { 0 };
        int r = 0;

        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
            pipe2(ex, O_CLOEXEC) < 0) {
                r = berr_set(e, errno, "%s hook \"%s\": cannot create pipes", hook_stage_name(stage), h->path);
                goto out;
        }
        pid_t pid = fork();
        if (pid < 0) {
                r = berr_set(e, errno, "%s hook \"%s\": cannot fork", hook_stage_name(stage), h->path);
                goto out;
        }
        if (pid == 0) {
                int fds[3] = { in[0], out[1], errp[1] };
                hook_child(h, stage, bundle, fds, ex[1]);
        }
        close(in[0]);
        close(out[1]);
        close(errp[1]);
        close(ex[1]);
        in[0] = out[1] = errp[1] = ex[1] = -1;
        fcntl(in[1], F_SETFL, O_NONBLOCK);
        fcntl(out[0], F_SETFL, O_NONBLOCK);
        fcntl(errp[0], F_SETFL, O_NONBLOCK);

        /* supervise() closes the three pipe ends it is given. */
        r = supervise(pid, h, payload, len, in[1], out[0], errp[0], &res);
        in[1] = out[0] = errp[0] = -1;
        if (r < 0) {
                r = berr_set(e, r, "%s hook \"%s\": cannot wait for it", hook_stage_name(stage), h->path);
                goto out;
        }
        /* The hook is reaped: every write end of ex is closed. */
        ssize_t n;
        do
                n = read(ex[0], &res.exec_errno, sizeof(res.exec_errno));
        while (n < 0 && errno == EINTR);
        if (n != (ssize_t) sizeof(res.exec_errno))
                res.exec_errno = 0;
        r = report(h, stage, &res, e);
out:
        close_pair(in);
        close_pair(out);
        close_pair(errp);
        close_pair(ex);
        return r;
}

int hooks_run(const json_t *hooks, enum hook_stage stage, const json_t *state, struct berr *e)
{
        if ((unsigned) stage >= ARRAY_SIZE(stage_names))
                return berr_setx(e, EINVAL, "unknown hook stage %d", (int) stage);
        if (!hooks || json_is_null(hooks))
                return 0;
        if (!json_is_object(hooks))
                return berr_setx(e, EINVAL, "hooks must be an object");
        /* The whole stage is checked before any hook of it runs. */
        int r = validate_stage(hooks, stage, e);
        if (r < 0)
                return r;
        json_t *list = json_object_get(hooks, hook_stage_name(stage));
        if (json_array_size(list) == 0)
                return 0;

        _cleanup_free_ char *payload = state ? json_dumps(state, JSON_COMPACT) : strdup("");
        if (!payload)
                return berr_setx(e, ENOMEM, "out of memory");
        size_t len = strlen(payload);
        const char *bundle = json_string_value(json_object_get(state, "bundle"));
        if (bundle && bundle[0] != '/')
                bundle = NULL;

        /* A hook that does not read its stdin must not kill ocirun with
         * SIGPIPE: block it, and swallow the one our writes may raise. */
        sigset_t pipe_set, saved, pending;
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        sigprocmask(SIG_BLOCK, &pipe_set, &saved);
        sigpending(&pending);
        bool was_pending = sigismember(&pending, SIGPIPE);

        /* With SIGCHLD ignored the kernel reaps the hook itself and its
         * exit status is lost: restore the default for the duration. */
        struct sigaction chld_saved, chld_dfl = { .sa_handler = SIG_DFL };
        sigaction(SIGCHLD, NULL, &chld_saved);
        bool chld_changed = chld_saved.sa_handler == SIG_IGN || (chld_saved.sa_flags & SA_NOCLDWAIT);
        if (chld_changed)
                sigaction(SIGCHLD, &chld_dfl, NULL);

        bool keep_going = stage == HOOK_POSTSTART || stage == HOOK_POSTSTOP;
        size_t i;
        json_t *j;
        r = 0;
        json_array_foreach(list, i, j) {
                struct hook h;
                struct berr he = { 0 };
                int hr = hook_from_json(j, &h);
                if (hr < 0)
                        hr = berr_setx(&he, ENOMEM, "out of memory");
                else
                        hr = run_one(&h, stage, bundle, payload, len, &he);
                hook_done(&h);
                if (hr >= 0)
                        continue;
                if (keep_going) {
                        log_warn("%s (ignored, as for every %s hook)", he.msg, hook_stage_name(stage));
                        continue;
                }
                if (e)
                        *e = he;
                r = hr;
                break;
        }

        if (chld_changed)
                sigaction(SIGCHLD, &chld_saved, NULL);
        sigpending(&pending);
        if (!was_pending && sigismember(&pending, SIGPIPE)) {
                struct timespec zero = { 0 };
                sigtimedwait(&pipe_set, NULL, &zero);
        }
        sigprocmask(SIG_SETMASK, &saved, NULL);
        return r;
}

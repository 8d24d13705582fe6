#include "runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs-util.h"
#include "log.h"
#include "shim.h"

extern char **environ;

struct rt_cmd {
        pid_t pid;
        int out_mfd, err_mfd; /* captures, or -1 */
        char *log_path;
        char *verb;
        rt_done_fn done;
        void *data;
        struct rt_cmd *next;
};

static int capture_fd(const char *name)
{
        return memfd_create(name, MFD_CLOEXEC);
}

static char *read_capture(int fd, size_t *ret_len)
{
        if (fd < 0) {
                *ret_len = 0;
                return strdup("");
        }
        off_t size = lseek(fd, 0, SEEK_END);
        if (size < 0)
                size = 0;
        if (size > (16 << 20))
                size = 16 << 20;
        char *buf = malloc((size_t) size + 1);
        if (!buf)
                return NULL;
        ssize_t n = pread(fd, buf, (size_t) size, 0);
        if (n < 0)
                n = 0;
        buf[n] = '\0';
        *ret_len = (size_t) n;
        return buf;
}

static void trim(char *s)
{
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
                s[--n] = '\0';
}

/* The last level=error message of a runtime's JSON log. */
static char *last_log_error(const char *path)
{
        _cleanup_free_ char *data = NULL;
        char *found = NULL;
        if (fs_read_file(path, 4 << 20, &data, NULL) < 0)
                return NULL;
        for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
                json_t *j = json_loads(line, 0, NULL);
                const char *level = json_string_value(json_object_get(j, "level"));
                const char *msg = json_string_value(json_object_get(j, "msg"));
                if (level && msg && (strcmp(level, "error") == 0 || strcmp(level, "fatal") == 0)) {
                        free(found);
                        found = strdup(msg);
                }
                json_decref(j);
        }
        return found;
}

int rt_spawn(struct shim *s, const char *const *args, const int stdio[3], rt_done_fn done, void *data,
             struct berr *e)
{
        struct rt_cmd *c = calloc(1, sizeof(*c));
        const char *argv[64];
        size_t n = 0;
        int fds[3] = { -1, -1, -1 };
        _cleanup_close_ int devnull = -1;
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none, all;
        int r;

        if (!c)
                return berr_set(e, ENOMEM, "shim: runtime command");
        c->out_mfd = c->err_mfd = -1;
        c->verb = strdup(args[0]);
        c->log_path = shim_path(s, "runtime-%u.log", ++s->seq);
        if (!c->verb || !c->log_path) {
                r = berr_set(e, ENOMEM, "shim: runtime command");
                goto fail;
        }
        unlink(c->log_path);

        argv[n++] = s->runtime;
        if (s->runtime_root) {
                argv[n++] = "--root";
                argv[n++] = s->runtime_root;
        }
        argv[n++] = "--log";
        argv[n++] = c->log_path;
        argv[n++] = "--log-format";
        argv[n++] = "json";
        for (size_t i = 0; args[i]; i++) {
                if (n >= ARRAY_SIZE(argv) - 1) {
                        r = berr_setx(e, E2BIG, "shim: too many runtime arguments");
                        goto fail;
                }
                argv[n++] = args[i];
        }
        argv[n] = NULL;

        devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull < 0) {
                r = berr_set(e, errno, "shim: /dev/null");
                goto fail;
        }
        fds[0] = stdio[0] >= 0 ? stdio[0] : devnull;
        if (stdio[1] >= 0)
                fds[1] = stdio[1];
        else if ((fds[1] = c->out_mfd = capture_fd("runtime-stdout")) < 0) {
                r = berr_set(e, errno, "shim: memfd");
                goto fail;
        }
        if (stdio[2] >= 0)
                fds[2] = stdio[2];
        else if ((fds[2] = c->err_mfd = capture_fd("runtime-stderr")) < 0) {
                r = berr_set(e, errno, "shim: memfd");
                goto fail;
        }

        posix_spawn_file_actions_init(&fa);
        for (int i = 0; i < 3; i++)
                posix_spawn_file_actions_adddup2(&fa, fds[i], i);
        posix_spawnattr_init(&attr);
        /* the shim blocks SIGCHLD (signalfd) and ignores SIGPIPE; the runtime
         * and the container must start with neither */
        sigemptyset(&none);
        sigfillset(&all);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &all);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        r = posix_spawnp(&c->pid, s->runtime, &fa, &attr, (char *const *) argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (r != 0) {
                r = berr_set(e, r, "shim: cannot run runtime \"%s\"", s->runtime);
                goto fail;
        }
        log_debug("shim: runtime %s started as pid %d", c->verb, (int) c->pid);
        c->done = done;
        c->data = data;
        c->next = s->cmds;
        s->cmds = c;
        return 0;

fail:
        if (c->out_mfd >= 0)
                close(c->out_mfd);
        if (c->err_mfd >= 0)
                close(c->err_mfd);
        free(c->verb);
        free(c->log_path);
        free(c);
        return r;
}

static void cmd_free(struct rt_cmd *c)
{
        if (c->out_mfd >= 0)
                close(c->out_mfd);
        if (c->err_mfd >= 0)
                close(c->err_mfd);
        if (c->log_path)
                unlink(c->log_path);
        free(c->log_path);
        free(c->verb);
        free(c);
}

bool rt_reaped(struct shim *s, pid_t pid, int status)
{
        struct rt_cmd *c = NULL;
        for (struct rt_cmd **p = &s->cmds; *p; p = &(*p)->next)
                if ((*p)->pid == pid) {
                        c = *p;
                        *p = c->next;
                        break;
                }
        if (!c)
                return false;

        struct rt_result res = { .status = status, .ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 };
        size_t err_len;
        res.out = read_capture(c->out_mfd, &res.out_len);
        res.err = read_capture(c->err_mfd, &err_len);
        if (res.err)
                trim(res.err);
        if (!res.ok)
                res.log_error = last_log_error(c->log_path);
        log_debug("shim: runtime %s (pid %d) exited with status %d", c->verb, (int) pid, status);
        c->done(s, &res, c->data);
        free(res.out);
        free(res.err);
        free(res.log_error);
        cmd_free(c);
        return true;
}

char *rt_error(const char *verb, const struct rt_result *res, const char *extra)
{
        char *msg = NULL;
        const char *text = NULL;
        _cleanup_free_ char *trimmed = extra ? strdup(extra) : NULL;
        if (trimmed)
                trim(trimmed);
        if (trimmed && trimmed[0])
                text = trimmed;
        else if (res->err && res->err[0])
                text = res->err;
        else if (res->log_error && res->log_error[0])
                text = res->log_error;
        if (text) {
                if (asprintf(&msg, "%s", text) < 0)
                        msg = NULL;
        } else if (WIFSIGNALED(res->status)) {
                if (asprintf(&msg, "runtime %s was killed by signal %d", verb, WTERMSIG(res->status)) < 0)
                        msg = NULL;
        } else if (asprintf(&msg, "runtime %s failed with exit status %d", verb, WEXITSTATUS(res->status)) < 0) {
                msg = NULL;
        }
        return msg ? msg : strdup("runtime failed");
}

void rt_abandon_all(struct shim *s)
{
        /* kill and reap each, so that its callback answers its call and
         * frees what it holds */
        while (s->cmds) {
                pid_t pid = s->cmds->pid;
                int status = SIGKILL; /* "killed by SIGKILL" if it cannot be waited for */
                kill(pid, SIGKILL);
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                        ;
                rt_reaped(s, pid, status);
        }
}

/* Spawning and calling a task's shim. */
#include "task-shim.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs-util.h"
#include "json-util.h"
#include "log.h"

extern char **environ;

/* Starts path with stdin on /dev/null and stdout+stderr on a pipe (*ret_out)
 * or /dev/null (ret_out NULL); spawn_finish collects it. */
static int spawn_start(const char *path, char *const *argv, bool search, int *ret_out, pid_t *ret_pid)
{
        int p[2] = { -1, -1 };
        posix_spawn_file_actions_t fa;
        int r;

        if (ret_out && pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        if (ret_out) {
                posix_spawn_file_actions_adddup2(&fa, p[1], 1);
                posix_spawn_file_actions_adddup2(&fa, p[1], 2);
        } else {
                posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
                posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        }
        posix_spawnattr_t at;
        posix_spawnattr_init(&at);
        sigset_t none, all;
        sigemptyset(&none);
        sigfillset(&all);
        posix_spawnattr_setsigmask(&at, &none);
        posix_spawnattr_setsigdefault(&at, &all);
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        r = search ? posix_spawnp(ret_pid, path, &fa, &at, argv, environ)
                   : posix_spawn(ret_pid, path, &fa, &at, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&at);
        if (ret_out)
                close(p[1]);
        if (r != 0) {
                if (ret_out)
                        close(p[0]);
                return -r;
        }
        if (ret_out)
                *ret_out = p[0];
        return 0;
}

/* Reads what the process wrote to out_fd (closed here; -1: none) into out
 * (NUL-terminated, cut to out_len), then reaps it. */
static int spawn_finish(pid_t pid, int out_fd, char *out, size_t out_len, int *ret_status)
{
        size_t n = 0;
        if (out_fd >= 0) {
                char junk[512];
                for (;;) {
                        bool room = n + 1 < out_len;
                        ssize_t k = read(out_fd, room ? out + n : junk, room ? out_len - n - 1 : sizeof(junk));
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k <= 0)
                                break;
                        if (room)
                                n += (size_t) k;
                }
                out[n] = '\0';
                close(out_fd);
        }
        int st;
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        *ret_status = st;
        return 0;
}

static int spawn_wait(const char *path, char *const *argv, bool search, char *out, size_t out_len, int *ret_status)
{
        int fd = -1;
        pid_t pid;
        int r = spawn_start(path, argv, search, out ? &fd : NULL, &pid);
        return r < 0 ? r : spawn_finish(pid, fd, out, out_len, ret_status);
}

int task_shim_spawn_start(const char *shim_binary, const struct task_shim_args *a, struct task_shim_spawn *ret,
                          struct berr *e)
{
        const char *argv[64];
        size_t n = 0;
        argv[n++] = shim_binary;
        if (a->spare) {
                argv[n++] = "--spare";
                argv[n++] = "--state-dir";
                argv[n++] = a->state_dir;
                argv[n] = NULL;
                goto spawn;
        }
        argv[n++] = "--id";
        argv[n++] = a->id;
        argv[n++] = "--bundle";
        argv[n++] = a->bundle;
        argv[n++] = "--runtime";
        argv[n++] = a->runtime;
        if (a->runtime_root) {
                argv[n++] = "--runtime-root";
                argv[n++] = a->runtime_root;
        }
        argv[n++] = "--state-dir";
        argv[n++] = a->state_dir;
        if (a->log_path && *a->log_path) {
                argv[n++] = "--log-path";
                argv[n++] = a->log_path;
        }
        for (size_t i = 0; a->log_opts && a->log_opts[i] && n < 60; i++) {
                argv[n++] = "--log-opt";
                argv[n++] = a->log_opts[i];
        }
        argv[n] = NULL;
spawn:
        *ret = (struct task_shim_spawn) { .pid = -1, .out_fd = -1, .binary = shim_binary, .id = a->spare ? "(spare)" : a->id };
        int r = spawn_start(shim_binary, (char *const *) argv, strchr(shim_binary, '/') == NULL, &ret->out_fd,
                            &ret->pid);
        if (r < 0)
                return berr_set(e, -r, "shim: cannot run \"%s\"", shim_binary);
        return 0;
}

int task_shim_spawn_finish(struct task_shim_spawn *sp, struct berr *e)
{
        char out[2048] = "";
        int st = 0;
        if (sp->pid < 0)
                return berr_setx(e, EINVAL, "shim: not started");
        int r = spawn_finish(sp->pid, sp->out_fd, out, sizeof(out), &st);
        sp->pid = -1;
        sp->out_fd = -1;
        if (r < 0)
                return berr_set(e, -r, "shim: waiting for \"%s\"", sp->binary);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
                return 0;
        size_t len = strlen(out);
        while (len && (out[len - 1] == '\n' || out[len - 1] == ' '))
                out[--len] = '\0';
        const char *msg = out;
        if (strncmp(msg, "berth-shim: ", 12) == 0)
                msg += 12;
        if (WIFSIGNALED(st))
                return berr_setx(e, EIO, "shim: \"%s\" was killed by signal %d%s%s", sp->binary, WTERMSIG(st),
                                 *msg ? ": " : "", msg);
        return berr_setx(e, EIO, "shim: failed to start for \"%s\": %s", sp->id, *msg ? msg : "no reason given");
}

int task_shim_connect(const char *state_dir, struct rpc_client **ret, struct berr *e)
{
        _cleanup_free_ char *url = NULL;
        struct rpc_status st;
        if (asprintf(&url, "ipc://%s/shim.sock", state_dir) < 0)
                return berr_set(e, ENOMEM, "shim");
        int r = rpc_client_open(url, ret, &st);
        if (r < 0)
                return berr_setx(e, -r, "shim: %s", st.message);
        return 0;
}

static bool names_layer(const char *m)
{
        return strncmp(m, "shim:", 5) == 0 || strncmp(m, "ocirun:", 7) == 0 || strncmp(m, "runc:", 5) == 0 ||
               strncmp(m, "supervisor:", 11) == 0;
}

int task_shim_call(struct rpc_client *c, const char *method, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *reply_type, int timeout_ms, ProtobufCMessage **ret_reply,
                   struct berr *e)
{
        struct rpc_status st;
        ProtobufCMessage *reply = NULL;
        int r = rpc_client_call(c, method, req, reply_type, timeout_ms, &reply, &st);
        if (r < 0)
                return berr_setx(e, -r, "%s%s", names_layer(st.message) ? "" : "shim: ", st.message);
        if (ret_reply)
                *ret_reply = reply;
        else
                protobuf_c_message_free_unpacked(reply, NULL);
        return 0;
}

int task_exit_file_read(const char *state_dir, struct task_exit *ret)
{
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/exit", state_dir) < 0)
                return -ENOMEM;
        if (access(path, F_OK) < 0)
                return -errno;
        json_t *j = NULL;
        struct berr e = { 0 };
        int r = json_load_path(path, 65536, &j, &e);
        if (r < 0)
                return r;
        struct task_exit x = { 0 };
        json_int_t v;
        v = json_integer_value(json_object_get(j, "pid"));
        x.pid = (uint32_t) v;
        v = json_integer_value(json_object_get(j, "exit_code"));
        x.code = (uint32_t) v;
        v = json_integer_value(json_object_get(j, "signal"));
        x.signal = (int32_t) v;
        x.oom_killed = json_is_true(json_object_get(j, "oom_killed"));
        const char *s = json_string_value(json_object_get(j, "exited_at"));
        snprintf(x.exited_at, sizeof(x.exited_at), "%s", s ? s : "");
        s = json_string_value(json_object_get(j, "reason"));
        snprintf(x.reason, sizeof(x.reason), "%s", s ? s : "");
        json_decref(j);
        *ret = x;
        return 0;
}

int task_exit_file_write(const char *state_dir, const struct task_exit *x)
{
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/exit", state_dir) < 0)
                return -ENOMEM;
        json_t *j = json_pack("{s:I, s:I, s:i, s:b, s:s, s:s}", "pid", (json_int_t) x->pid, "exit_code",
                              (json_int_t) x->code, "signal", (int) x->signal, "oom_killed", x->oom_killed,
                              "exited_at", x->exited_at, "reason", x->reason);
        if (!j)
                return -ENOMEM;
        int r = json_write_atomic_ex(path, j, JSON_COMPACT, 0644, 0);
        json_decref(j);
        return r;
}

pid_t task_shim_pid_alive(const char *state_dir)
{
        _cleanup_free_ char *path = NULL, *data = NULL;
        if (asprintf(&path, "%s/shim.pid", state_dir) < 0)
                return 0;
        if (fs_read_file(path, 64, &data, NULL) < 0)
                return 0;
        long pid = strtol(data, NULL, 10);
        if (pid <= 1)
                return 0;
        if (kill((pid_t) pid, 0) < 0 && errno == ESRCH)
                return 0;
        /* a zombie (the supervisor started it and it has not been reaped,
         * or pid reuse by something else) is not a live shim */
        _cleanup_free_ char *stat = NULL, *sp = NULL;
        if (asprintf(&sp, "/proc/%ld/stat", pid) >= 0 && fs_read_file(sp, 4096, &stat, NULL) >= 0) {
                char *rp = strrchr(stat, ')');
                if (rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'))
                        return 0;
        }
        return (pid_t) pid;
}

bool task_shim_wait_gone(const char *state_dir, int timeout_ms)
{
        pid_t pid = task_shim_pid_alive(state_dir);
        if (pid <= 0)
                return true;
        _cleanup_close_ int fd = (int) syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0)
                return errno == ESRCH;
        /* the pid may have been reused between reading shim.pid and
         * opening it: the shim it names must still be there */
        if (task_shim_pid_alive(state_dir) != pid)
                return true;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r;
        while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
                ;
        return r > 0;
}

int task_runtime_run(const char *runtime, const char *runtime_root, const char *const *args)
{
        const char *argv[32];
        size_t n = 0;
        argv[n++] = runtime;
        if (runtime_root) {
                argv[n++] = "--root";
                argv[n++] = runtime_root;
        }
        for (size_t i = 0; args[i] && n < 31; i++)
                argv[n++] = args[i];
        argv[n] = NULL;
        int st = 0;
        int r = spawn_wait(runtime, (char *const *) argv, strchr(runtime, '/') == NULL, NULL, 0, &st);
        if (r < 0)
                return r;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

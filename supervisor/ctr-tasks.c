/* berth-ctr run, containers, tasks: containers on the supervisor, their
 * tasks, and a process's stdio through its shim's attach.sock. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "cleanup.h"
#include "signal-util.h"
#include "ctr.h"
#include "fs-util.h"

/* Exit statuses of run when the container never ran (as docker run). */
#define EXIT_RUN_FAILED 125

static int usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_err(const char *fmt, ...)
{
        va_list ap;
        fputs("berth-ctr: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return 2;
}

static int parse_bytes(const char *s, int64_t *ret)
{
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (end == s || errno || v < 0)
                return -EINVAL;
        switch (*end) {
        case 'k': case 'K': v *= 1024; end++; break;
        case 'm': case 'M': v *= 1024 * 1024; end++; break;
        case 'g': case 'G': v *= 1024.0 * 1024 * 1024; end++; break;
        }
        if (*end == 'b' || *end == 'B')
                end++;
        if (*end)
                return -EINVAL;
        *ret = (int64_t) v;
        return 0;
}

/* ---------------------------------------------------------------- attach.sock */

struct attach {
        int fd;
        bool tty;
        unsigned char hdr[8];
        size_t hdr_len, frame_left;
        int frame_fd;
};

static int attach_open(const char *path, const char *exec_id, bool in, struct attach *a)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        memset(a, 0, sizeof(*a));
        a->fd = -1;
        if (strlen(path) >= sizeof(sa.sun_path))
                return usage_err("attach socket path too long: \"%s\"", path);
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                fprintf(stderr, "berth-ctr: shim: cannot connect to \"%s\": %s\n", path, strerror(errno));
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        json_t *h = json_pack("{s:s, s:b, s:b, s:b}", "exec_id", exec_id ? exec_id : "", "stdin", in, "stdout", 1,
                              "stderr", 1);
        char *hs = json_dumps(h, JSON_COMPACT);
        json_decref(h);
        int r = hs ? fs_write_all(fd, hs, strlen(hs)) : -ENOMEM;
        if (r >= 0)
                r = fs_write_all(fd, "\n", 1);
        free(hs);
        char line[4096];
        size_t n = 0;
        while (r >= 0 && n < sizeof(line) - 1) {
                ssize_t k = read(fd, line + n, 1);
                if (k <= 0)
                        break;
                if (line[n++] == '\n')
                        break;
        }
        line[n] = '\0';
        json_t *ans = json_loads(line, 0, NULL);
        if (!ans || !json_is_true(json_object_get(ans, "ok"))) {
                const char *err = json_string_value(json_object_get(ans, "error"));
                fprintf(stderr, "berth-ctr: shim: attach refused: %s\n", err ? err : "no answer");
                json_decref(ans);
                close(fd);
                return -1;
        }
        a->tty = json_is_true(json_object_get(ans, "tty"));
        json_decref(ans);
        a->fd = fd;
        a->frame_fd = 1;
        return 0;
}

/* Copies what arrived on the attach socket to stdout / stderr. Returns 0
 * at EOF, 1 when more may come. */
static int attach_pump(struct attach *a)
{
        char buf[65536];
        ssize_t r = read(a->fd, buf, sizeof(buf));
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
                return 1;
        if (r <= 0)
                return 0;
        if (a->tty) {
                fs_write_all(1, buf, (size_t) r);
                return 1;
        }
        for (size_t i = 0; i < (size_t) r;) {
                if (a->frame_left == 0) {
                        a->hdr[a->hdr_len++] = (unsigned char) buf[i++];
                        if (a->hdr_len == 8) {
                                a->frame_fd = a->hdr[0] == 2 ? 2 : 1;
                                a->frame_left = (size_t) a->hdr[4] << 24 | (size_t) a->hdr[5] << 16 |
                                                (size_t) a->hdr[6] << 8 | a->hdr[7];
                                a->hdr_len = 0;
                        }
                        continue;
                }
                size_t take = (size_t) r - i < a->frame_left ? (size_t) r - i : a->frame_left;
                fs_write_all(a->frame_fd, buf + i, take);
                i += take;
                a->frame_left -= take;
        }
        return 1;
}

/* ---------------------------------------------------------------- waiting in the background */

struct waiter {
        struct ctr *c;
        const char *id, *exec_id;
        int pipe[2];
        int rc;
        Berth__Supervisor__WaitTaskResponse *resp;
};

static void *waiter_run(void *arg)
{
        struct waiter *w = arg;
        Berth__Supervisor__WaitTaskRequest req = BERTH__SUPERVISOR__WAIT_TASK_REQUEST__INIT;
        req.id = (char *) w->id;
        req.exec_id = (char *) (w->exec_id ? w->exec_id : "");
        w->rc = ctr_call(w->c, "tasks.WaitTask", &req.base, &berth__supervisor__wait_task_response__descriptor,
                         RPC_NO_TIMEOUT, (ProtobufCMessage **) &w->resp);
        (void) !write(w->pipe[1], "x", 1);
        return NULL;
}

static int sig_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
        int saved = errno;
        unsigned char b = (unsigned char) sig;
        (void) !write(sig_pipe[1], &b, 1);
        errno = saved;
}

static void resize(struct ctr *c, const char *id, const char *exec_id)
{
        struct winsize ws;
        if (ioctl(0, TIOCGWINSZ, &ws) < 0 || ws.ws_col == 0)
                return;
        Berth__Supervisor__ResizePtyTaskRequest req = BERTH__SUPERVISOR__RESIZE_PTY_TASK_REQUEST__INIT;
        req.id = (char *) id;
        req.exec_id = (char *) (exec_id ? exec_id : "");
        req.width = ws.ws_col;
        req.height = ws.ws_row;
        ProtobufCMessage *r = NULL;
        if (ctr_call(c, "tasks.ResizePtyTask", &req.base, &berth__supervisor__resize_pty_task_response__descriptor,
                     c->timeout_ms, &r) >= 0)
                protobuf_c_message_free_unpacked(r, NULL);
}

static void kill_task(struct ctr *c, const char *id, const char *exec_id, int sig)
{
        Berth__Supervisor__KillTaskRequest req = BERTH__SUPERVISOR__KILL_TASK_REQUEST__INIT;
        req.id = (char *) id;
        req.exec_id = (char *) (exec_id ? exec_id : "");
        req.signal = (uint32_t) sig;
        ProtobufCMessage *r = NULL;
        if (ctr_call(c, "tasks.KillTask", &req.base, &berth__supervisor__kill_task_response__descriptor, c->timeout_ms,
                     &r) >= 0)
                protobuf_c_message_free_unpacked(r, NULL);
}

static int start_task(struct ctr *c, const char *id, const char *exec_id)
{
        Berth__Supervisor__StartTaskRequest req = BERTH__SUPERVISOR__START_TASK_REQUEST__INIT;
        ProtobufCMessage *r = NULL;
        req.id = (char *) id;
        req.exec_id = (char *) (exec_id ? exec_id : "");
        int rc = ctr_call(c, "tasks.StartTask", &req.base, &berth__supervisor__start_task_response__descriptor,
                          c->timeout_ms, &r);
        if (rc >= 0)
                protobuf_c_message_free_unpacked(r, NULL);
        return rc;
}

static int delete_task(struct ctr *c, const char *id, const char *exec_id, bool force, uint32_t *ret_code)
{
        Berth__Supervisor__DeleteTaskRequest req = BERTH__SUPERVISOR__DELETE_TASK_REQUEST__INIT;
        Berth__Supervisor__DeleteTaskResponse *r = NULL;
        req.id = (char *) id;
        req.exec_id = (char *) (exec_id ? exec_id : "");
        req.force = force;
        int rc = ctr_call(c, "tasks.DeleteTask", &req.base, &berth__supervisor__delete_task_response__descriptor,
                          c->timeout_ms, (ProtobufCMessage **) &r);
        if (rc >= 0) {
                if (ret_code)
                        *ret_code = r->exit_code;
                protobuf_c_message_free_unpacked(&r->base, NULL);
        }
        return rc;
}

static int delete_container(struct ctr *c, const char *id, bool keep_snapshot)
{
        Berth__Supervisor__DeleteContainerRequest req = BERTH__SUPERVISOR__DELETE_CONTAINER_REQUEST__INIT;
        ProtobufCMessage *r = NULL;
        req.id = (char *) id;
        req.keep_snapshot = keep_snapshot;
        int rc = ctr_call(c, "containers.DeleteContainer", &req.base, &berth__supervisor__delete_container_response__descriptor,
                          c->timeout_ms, &r);
        if (rc >= 0)
                protobuf_c_message_free_unpacked(r, NULL);
        return rc;
}

/* Attaches (already done: a), starts (unless already started) the process,
 * copies stdio until it has exited, and returns its exit code (or -1). */
static int run_attached(struct ctr *c, const char *id, const char *exec_id, struct attach *a, bool in, bool tty)
{
        struct termios saved;
        bool raw = false;
        struct waiter w = { .c = c, .id = id, .exec_id = exec_id, .rc = -1 };
        pthread_t th;
        int code = -1;

        if (pipe2(w.pipe, O_CLOEXEC) < 0 || pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
                return -1;
        if (tty && isatty(0) && tcgetattr(0, &saved) == 0) {
                struct termios t = saved;
                cfmakeraw(&t);
                raw = tcsetattr(0, TCSANOW, &t) == 0;
        }
        struct sigaction sa = { .sa_handler = on_signal };
        sigemptyset(&sa.sa_mask);
        sigaction(SIGWINCH, &sa, NULL);
        if (!tty) {
                sigaction(SIGINT, &sa, NULL);
                sigaction(SIGTERM, &sa, NULL);
                sigaction(SIGHUP, &sa, NULL);
        }
        if (tty)
                resize(c, id, exec_id);
        if (start_task(c, id, exec_id) < 0)
                goto out;
        if (pthread_create(&th, NULL, waiter_run, &w) != 0)
                goto out;

        bool in_open = in, out_open = true, waited = false;
        while (out_open) {
                struct pollfd p[4] = {
                        { .fd = a->fd, .events = POLLIN },
                        { .fd = in_open ? 0 : -1, .events = POLLIN },
                        { .fd = sig_pipe[0], .events = POLLIN },
                        { .fd = waited ? -1 : w.pipe[0], .events = POLLIN },
                };
                /* once the process has exited, its output is all in the
                 * socket (the shim answers Wait after copying it): drain */
                int n = poll(p, 4, waited ? 300 : -1);
                if (n < 0 && errno != EINTR)
                        break;
                if (n == 0)
                        break;
                if (p[0].revents && attach_pump(a) == 0)
                        out_open = false;
                if (p[1].revents) {
                        char buf[65536];
                        ssize_t k = read(0, buf, sizeof(buf));
                        if (k > 0) {
                                fs_write_all(a->fd, buf, (size_t) k);
                        } else if (k == 0 || errno != EINTR) {
                                in_open = false;
                                shutdown(a->fd, SHUT_WR);
                        }
                }
                if (p[2].revents) {
                        unsigned char sig;
                        while (read(sig_pipe[0], &sig, 1) == 1) {
                                if (sig == SIGWINCH)
                                        resize(c, id, exec_id);
                                else
                                        kill_task(c, id, exec_id, sig);
                        }
                }
                if (p[3].revents) {
                        char x;
                        (void) !read(w.pipe[0], &x, 1);
                        waited = true;
                }
        }
        pthread_join(th, NULL);
        if (w.rc >= 0) {
                code = (int) w.resp->exit_code;
                if (w.resp->exit_reason && *w.resp->exit_reason)
                        fprintf(stderr, "berth-ctr: %s exited %d: %s\n", id, code, w.resp->exit_reason);
                protobuf_c_message_free_unpacked(&w.resp->base, NULL);
        }
out:
        if (raw)
                tcsetattr(0, TCSANOW, &saved);
        signal(SIGWINCH, SIG_DFL);
        close(w.pipe[0]);
        close(w.pipe[1]);
        close(sig_pipe[0]);
        close(sig_pipe[1]);
        return code;
}

/* ---------------------------------------------------------------- run / containers create */

struct run_opts {
        bool rm, tty, detach, interactive;
        const char *cwd, *user, *runtime;
        int64_t memory;
        char **env;
        size_t n_env;
        char **labels;  /* "k=v" */
        size_t n_labels;
};

static int push(char ***v, size_t *n, char *s)
{
        char **nv = realloc(*v, (*n + 2) * sizeof(char *));
        if (!nv)
                return -ENOMEM;
        nv[(*n)++] = s;
        nv[*n] = NULL;
        *v = nv;
        return 0;
}

static const char run_usage[] =
        "Usage: berth-ctr run [--rm] [-t] [-i] [-d] [--env K=V]... [--cwd DIR] [--user U[:G]] [--memory BYTES]\n"
        "                     [--runtime BINARY] [--label K=V]... IMAGE ID [CMD...]\n"
        "       berth-ctr containers create [same options but --rm, -d] IMAGE ID [CMD...]\n";

/* Parses options; returns the index of IMAGE, or -1 (usage printed). */
static int parse_run(int argc, char **argv, struct run_opts *o)
{
        static const struct option opts[] = {
                { "rm", no_argument, NULL, 'r' },         { "tty", no_argument, NULL, 't' },
                { "detach", no_argument, NULL, 'd' },     { "interactive", no_argument, NULL, 'i' },
                { "env", required_argument, NULL, 'e' },  { "cwd", required_argument, NULL, 'w' },
                { "user", required_argument, NULL, 'u' }, { "memory", required_argument, NULL, 'm' },
                { "runtime", required_argument, NULL, 'R' }, { "label", required_argument, NULL, 'l' },
                { "help", no_argument, NULL, 'h' },       {},
        };
        int ch;
        optind = 0;
        while ((ch = getopt_long(argc, argv, "+tdie:w:u:m:l:h", opts, NULL)) != -1) {
                switch (ch) {
                case 'r':
                        o->rm = true;
                        break;
                case 't':
                        o->tty = true;
                        break;
                case 'd':
                        o->detach = true;
                        break;
                case 'i':
                        o->interactive = true;
                        break;
                case 'e':
                        if (push(&o->env, &o->n_env, optarg) < 0)
                                return -1;
                        break;
                case 'l':
                        if (!strchr(optarg, '=') || push(&o->labels, &o->n_labels, optarg) < 0) {
                                usage_err("--label wants K=V");
                                return -1;
                        }
                        break;
                case 'w':
                        o->cwd = optarg;
                        break;
                case 'u':
                        o->user = optarg;
                        break;
                case 'm':
                        if (parse_bytes(optarg, &o->memory) < 0) {
                                usage_err("invalid --memory \"%s\"", optarg);
                                return -1;
                        }
                        break;
                case 'R':
                        o->runtime = optarg;
                        break;
                case 'h':
                        fputs(run_usage, stdout);
                        exit(0);
                default:
                        fputs(run_usage, stderr);
                        return -1;
                }
        }
        if (argc - optind < 2) {
                fputs(run_usage, stderr);
                return -1;
        }
        return optind;
}

static int create_container(struct ctr *c, const struct run_opts *o, const char *image, const char *id, char **args,
                            size_t n_args)
{
        Berth__Supervisor__CreateContainerRequest req = BERTH__SUPERVISOR__CREATE_CONTAINER_REQUEST__INIT;
        Berth__Supervisor__Container ct = BERTH__SUPERVISOR__CONTAINER__INIT;
        Berth__Supervisor__SpecOptions so = BERTH__SUPERVISOR__SPEC_OPTIONS__INIT;
        ProtobufCMessage *r = NULL;
        Berth__Supervisor__Container__LabelsEntry *le = calloc(o->n_labels + 1, sizeof(*le));
        Berth__Supervisor__Container__LabelsEntry **lv = calloc(o->n_labels + 1, sizeof(*lv));
        _cleanup_strv_free_ char **keys = calloc(o->n_labels + 1, sizeof(char *));
        if (!le || !lv || !keys) {
                free(le);
                free(lv);
                return -ENOMEM;
        }
        for (size_t i = 0; i < o->n_labels; i++) {
                const char *eq = strchr(o->labels[i], '=');
                keys[i] = strndup(o->labels[i], (size_t) (eq - o->labels[i]));
                berth__supervisor__container__labels_entry__init(&le[i]);
                le[i].key = keys[i];
                le[i].value = (char *) eq + 1;
                lv[i] = &le[i];
        }
        ct.id = (char *) id;
        ct.image = (char *) image;
        ct.runtime = (char *) (o->runtime ? o->runtime : "");
        ct.labels = lv;
        ct.n_labels = o->n_labels;
        so.args = args;
        so.n_args = n_args;
        so.env = o->env;
        so.n_env = o->n_env;
        so.cwd = (char *) (o->cwd ? o->cwd : "");
        so.user = (char *) (o->user ? o->user : "");
        so.terminal = o->tty;
        so.memory_limit = o->memory;
        req.container = &ct;
        req.spec_options = &so;
        int rc = ctr_call(c, "containers.CreateContainer", &req.base, &berth__supervisor__create_container_response__descriptor,
                          c->timeout_ms, &r);
        if (rc >= 0 && c->json)
                ctr_print_json(r);
        if (rc >= 0)
                protobuf_c_message_free_unpacked(r, NULL);
        free(le);
        free(lv);
        return rc;
}

static int create_task(struct ctr *c, const char *id, bool in, Berth__Supervisor__CreateTaskResponse **ret)
{
        Berth__Supervisor__CreateTaskRequest req = BERTH__SUPERVISOR__CREATE_TASK_REQUEST__INIT;
        req.id = (char *) id;
        req.stdin = in;
        req.stdin_once = in;
        return ctr_call(c, "tasks.CreateTask", &req.base, &berth__supervisor__create_task_response__descriptor,
                        c->timeout_ms, (ProtobufCMessage **) ret);
}

int ctr_cmd_run(struct ctr *c, int argc, char **argv)
{
        struct run_opts o = { 0 };
        int first = parse_run(argc, argv, &o);
        int code = EXIT_RUN_FAILED;
        if (first < 0) {
                free(o.env);
                free(o.labels);
                return 2;
        }
        const char *image = argv[first], *id = argv[first + 1];
        bool in = o.tty || o.interactive;
        Berth__Supervisor__CreateTaskResponse *tr = NULL;
        struct attach a = { .fd = -1 };
        if (create_container(c, &o, image, id, argv + first + 2, (size_t) (argc - first - 2)) < 0)
                goto out;
        if (create_task(c, id, in && !o.detach, &tr) < 0)
                goto out_container;
        if (o.detach) {
                if (start_task(c, id, NULL) < 0)
                        goto out_task;
                printf("%s\n", id);
                code = 0;
                goto out;
        }
        if (attach_open(tr->task->attach_socket, NULL, in, &a) < 0)
                goto out_task;
        int rc = run_attached(c, id, NULL, &a, in, o.tty);
        if (rc >= 0)
                code = rc;
        close(a.fd);
        if (rc >= 0 && !o.rm)
                goto out;
out_task:
        delete_task(c, id, NULL, true, NULL);
out_container:
        if (o.rm)
                delete_container(c, id, false);
out:
        if (tr)
                protobuf_c_message_free_unpacked(&tr->base, NULL);
        free(o.env);
        free(o.labels);
        return code;
}

/* ---------------------------------------------------------------- containers */

static int containers_ls(struct ctr *c)
{
        Berth__Supervisor__ListContainersRequest req = BERTH__SUPERVISOR__LIST_CONTAINERS_REQUEST__INIT;
        Berth__Supervisor__ListContainersResponse *r = NULL;
        if (ctr_call(c, "containers.ListContainers", &req.base, &berth__supervisor__list_containers_response__descriptor,
                     c->timeout_ms, (ProtobufCMessage **) &r) < 0)
                return 1;
        if (c->json) {
                ctr_print_json(&r->base);
        } else {
                printf("%-24s %-48s %s\n", "CONTAINER", "IMAGE", "RUNTIME");
                for (size_t i = 0; i < r->n_containers; i++)
                        printf("%-24s %-48s %s\n", r->containers[i]->id, r->containers[i]->image,
                               *r->containers[i]->runtime ? r->containers[i]->runtime : "default");
        }
        protobuf_c_message_free_unpacked(&r->base, NULL);
        return 0;
}

static int containers_info(struct ctr *c, const char *id)
{
        Berth__Supervisor__GetContainerRequest req = BERTH__SUPERVISOR__GET_CONTAINER_REQUEST__INIT;
        ProtobufCMessage *r = NULL;
        req.id = (char *) id;
        if (ctr_call(c, "containers.GetContainer", &req.base, &berth__supervisor__get_container_response__descriptor,
                     c->timeout_ms, &r) < 0)
                return 1;
        ctr_print_json(r);
        protobuf_c_message_free_unpacked(r, NULL);
        return 0;
}

int ctr_cmd_containers(struct ctr *c, int argc, char **argv)
{
        static const char use[] = "Usage: berth-ctr containers create [OPTIONS] IMAGE ID [CMD...] | ls | info ID |"
                                  " rm [--keep-snapshot] ID...\n";
        if (argc < 2 || strcmp(argv[1], "--help") == 0) {
                fputs(use, argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        const char *sub = argv[1];
        argc--;
        argv++;
        if (strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0)
                return containers_ls(c);
        if (strcmp(sub, "info") == 0) {
                if (argc != 2)
                        return usage_err("containers info: expected ID");
                return containers_info(c, argv[1]);
        }
        if (strcmp(sub, "create") == 0) {
                struct run_opts o = { 0 };
                int first = parse_run(argc, argv, &o);
                int rc = 2;
                if (first >= 0)
                        rc = create_container(c, &o, argv[first], argv[first + 1], argv + first + 2,
                                              (size_t) (argc - first - 2)) < 0;
                free(o.env);
                free(o.labels);
                return rc;
        }
        if (strcmp(sub, "rm") == 0 || strcmp(sub, "delete") == 0) {
                bool keep = false;
                int rc = 0, n = 0;
                for (int i = 1; i < argc; i++) {
                        if (strcmp(argv[i], "--keep-snapshot") == 0) {
                                keep = true;
                                continue;
                        }
                        n++;
                        if (delete_container(c, argv[i], keep) < 0)
                                rc = 1;
                }
                if (n == 0)
                        return usage_err("containers rm: expected ID...");
                return rc;
        }
        return usage_err("containers: unknown subcommand \"%s\"", sub);
}

/* ---------------------------------------------------------------- tasks */

static const char *status_name(Berth__Supervisor__TaskStatus s)
{
        switch (s) {
        case BERTH__SUPERVISOR__TASK_STATUS__CREATED:
                return "CREATED";
        case BERTH__SUPERVISOR__TASK_STATUS__RUNNING:
                return "RUNNING";
        case BERTH__SUPERVISOR__TASK_STATUS__STOPPED:
                return "STOPPED";
        case BERTH__SUPERVISOR__TASK_STATUS__PAUSED:
                return "PAUSED";
        default:
                return "UNKNOWN";
        }
}

static int tasks_ls(struct ctr *c)
{
        Berth__Supervisor__ListTasksRequest req = BERTH__SUPERVISOR__LIST_TASKS_REQUEST__INIT;
        Berth__Supervisor__ListTasksResponse *r = NULL;
        if (ctr_call(c, "tasks.ListTasks", &req.base, &berth__supervisor__list_tasks_response__descriptor, c->timeout_ms,
                     (ProtobufCMessage **) &r) < 0)
                return 1;
        if (c->json) {
                ctr_print_json(&r->base);
        } else {
                printf("%-24s %-8s %-8s %s\n", "TASK", "PID", "STATUS", "EXIT");
                for (size_t i = 0; i < r->n_tasks; i++) {
                        const Berth__Supervisor__Task *t = r->tasks[i];
                        printf("%-24s %-8u %-8s", t->id, t->pid, status_name(t->status));
                        if (t->status == BERTH__SUPERVISOR__TASK_STATUS__STOPPED)
                                printf(" %u%s%s", t->exit_code, *t->exit_reason ? " " : "", t->exit_reason);
                        putchar('\n');
                }
        }
        protobuf_c_message_free_unpacked(&r->base, NULL);
        return 0;
}

/* The process of the container's spec with args (and terminal) replaced. */
static char *exec_process_json(struct ctr *c, const char *id, char **args, int n, bool tty)
{
        Berth__Supervisor__GetContainerRequest req = BERTH__SUPERVISOR__GET_CONTAINER_REQUEST__INIT;
        Berth__Supervisor__GetContainerResponse *r = NULL;
        req.id = (char *) id;
        if (ctr_call(c, "containers.GetContainer", &req.base, &berth__supervisor__get_container_response__descriptor,
                     c->timeout_ms, (ProtobufCMessage **) &r) < 0)
                return NULL;
        json_t *spec = json_loadb((const char *) r->container->spec_json.data, r->container->spec_json.len, 0, NULL);
        protobuf_c_message_free_unpacked(&r->base, NULL);
        json_t *proc = json_deep_copy(json_object_get(spec, "process"));
        json_decref(spec);
        if (!proc)
                proc = json_pack("{s:{s:i, s:i}, s:s, s:[s]}", "user", "uid", 0, "gid", 0, "cwd", "/", "env",
                                 "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        json_t *a = json_array();
        for (int i = 0; i < n; i++)
                json_array_append_new(a, json_string(args[i]));
        json_object_set_new(proc, "args", a);
        json_object_set_new(proc, "terminal", json_boolean(tty));
        char *s = json_dumps(proc, JSON_COMPACT);
        json_decref(proc);
        return s;
}

static int tasks_exec(struct ctr *c, int argc, char **argv)
{
        static const struct option opts[] = {
                { "tty", no_argument, NULL, 't' },     { "interactive", no_argument, NULL, 'i' },
                { "detach", no_argument, NULL, 'd' },  { "exec-id", required_argument, NULL, 'x' },
                {},
        };
        bool tty = false, inter = false, detach = false;
        const char *exec_id = NULL;
        int ch;
        optind = 0;
        while ((ch = getopt_long(argc, argv, "+tid", opts, NULL)) != -1) {
                switch (ch) {
                case 't':
                        tty = true;
                        break;
                case 'i':
                        inter = true;
                        break;
                case 'd':
                        detach = true;
                        break;
                case 'x':
                        exec_id = optarg;
                        break;
                default:
                        return usage_err("tasks exec [-t] [-i] [-d] --exec-id X ID CMD...");
                }
        }
        if (!exec_id || argc - optind < 2)
                return usage_err("tasks exec [-t] [-i] [-d] --exec-id X ID CMD...");
        const char *id = argv[optind];
        bool in = (tty || inter) && !detach;
        _cleanup_free_ char *pj = exec_process_json(c, id, argv + optind + 1, argc - optind - 1, tty);
        if (!pj)
                return 1;
        Berth__Supervisor__ExecTaskRequest req = BERTH__SUPERVISOR__EXEC_TASK_REQUEST__INIT;
        ProtobufCMessage *r = NULL;
        req.id = (char *) id;
        req.exec_id = (char *) exec_id;
        req.terminal = tty;
        req.stdin = in;
        req.stdin_once = in;
        req.process_json.data = (uint8_t *) pj;
        req.process_json.len = strlen(pj);
        if (ctr_call(c, "tasks.ExecTask", &req.base, &berth__supervisor__exec_task_response__descriptor, c->timeout_ms,
                     &r) < 0)
                return 1;
        protobuf_c_message_free_unpacked(r, NULL);
        if (detach)
                return start_task(c, id, exec_id) < 0;

        Berth__Supervisor__GetTaskRequest gr = BERTH__SUPERVISOR__GET_TASK_REQUEST__INIT;
        Berth__Supervisor__GetTaskResponse *g = NULL;
        gr.id = (char *) id;
        if (ctr_call(c, "tasks.GetTask", &gr.base, &berth__supervisor__get_task_response__descriptor, c->timeout_ms,
                     (ProtobufCMessage **) &g) < 0) {
                delete_task(c, id, exec_id, true, NULL);
                return 1;
        }
        struct attach a;
        int ar = attach_open(g->task->attach_socket, exec_id, in, &a);
        protobuf_c_message_free_unpacked(&g->base, NULL);
        if (ar < 0) {
                delete_task(c, id, exec_id, true, NULL);
                return 1;
        }
        int code = run_attached(c, id, exec_id, &a, in, tty);
        close(a.fd);
        delete_task(c, id, exec_id, true, NULL);
        return code < 0 ? 1 : code;
}

static int tasks_kill(struct ctr *c, int argc, char **argv)
{
        static const struct option opts[] = {
                { "signal", required_argument, NULL, 's' },
                { "all", no_argument, NULL, 'a' },
                { "exec-id", required_argument, NULL, 'x' },
                {},
        };
        int sig = SIGTERM, ch;
        bool all = false;
        const char *exec_id = "";
        optind = 0;
        while ((ch = getopt_long(argc, argv, "+s:a", opts, NULL)) != -1) {
                switch (ch) {
                case 's':
                        if ((sig = signal_parse(optarg, true)) < 0)
                                return usage_err("tasks kill: unknown signal \"%s\"", optarg);
                        break;
                case 'a':
                        all = true;
                        break;
                case 'x':
                        exec_id = optarg;
                        break;
                default:
                        return usage_err("tasks kill [-s SIG] [--all] [--exec-id X] ID");
                }
        }
        if (argc - optind != 1)
                return usage_err("tasks kill [-s SIG] [--all] [--exec-id X] ID");
        Berth__Supervisor__KillTaskRequest req = BERTH__SUPERVISOR__KILL_TASK_REQUEST__INIT;
        ProtobufCMessage *r = NULL;
        req.id = argv[optind];
        req.exec_id = (char *) exec_id;
        req.signal = (uint32_t) sig;
        req.all = all;
        if (ctr_call(c, "tasks.KillTask", &req.base, &berth__supervisor__kill_task_response__descriptor, c->timeout_ms,
                     &r) < 0)
                return 1;
        protobuf_c_message_free_unpacked(r, NULL);
        return 0;
}

static int tasks_simple(struct ctr *c, const char *sub, const char *id)
{
        ProtobufCMessage *r = NULL;
        int rc;
        if (strcmp(sub, "pause") == 0) {
                Berth__Supervisor__PauseTaskRequest req = BERTH__SUPERVISOR__PAUSE_TASK_REQUEST__INIT;
                req.id = (char *) id;
                rc = ctr_call(c, "tasks.PauseTask", &req.base, &berth__supervisor__pause_task_response__descriptor,
                              c->timeout_ms, &r);
        } else if (strcmp(sub, "resume") == 0) {
                Berth__Supervisor__ResumeTaskRequest req = BERTH__SUPERVISOR__RESUME_TASK_REQUEST__INIT;
                req.id = (char *) id;
                rc = ctr_call(c, "tasks.ResumeTask", &req.base, &berth__supervisor__resume_task_response__descriptor,
                              c->timeout_ms, &r);
        } else if (strcmp(sub, "start") == 0) {
                return start_task(c, id, NULL) < 0;
        } else if (strcmp(sub, "ps") == 0) {
                Berth__Supervisor__PidsTaskRequest req = BERTH__SUPERVISOR__PIDS_TASK_REQUEST__INIT;
                req.id = (char *) id;
                rc = ctr_call(c, "tasks.PidsTask", &req.base, &berth__supervisor__pids_task_response__descriptor,
                              c->timeout_ms, &r);
                if (rc >= 0 && !c->json) {
                        const Berth__Supervisor__PidsTaskResponse *p = (const void *) r;
                        printf("%-8s %s\n", "PID", "EXEC_ID");
                        for (size_t i = 0; i < p->n_processes; i++)
                                printf("%-8u %s\n", p->processes[i]->pid, p->processes[i]->exec_id);
                        protobuf_c_message_free_unpacked(r, NULL);
                        return 0;
                }
        } else if (strcmp(sub, "metrics") == 0) {
                Berth__Supervisor__MetricsTaskRequest req = BERTH__SUPERVISOR__METRICS_TASK_REQUEST__INIT;
                req.id = (char *) id;
                rc = ctr_call(c, "tasks.MetricsTask", &req.base, &berth__supervisor__metrics_task_response__descriptor,
                              c->timeout_ms, &r);
                if (rc >= 0) {
                        ctr_print_json(r);
                        protobuf_c_message_free_unpacked(r, NULL);
                        return 0;
                }
        } else if (strcmp(sub, "info") == 0 || strcmp(sub, "get") == 0) {
                Berth__Supervisor__GetTaskRequest req = BERTH__SUPERVISOR__GET_TASK_REQUEST__INIT;
                req.id = (char *) id;
                rc = ctr_call(c, "tasks.GetTask", &req.base, &berth__supervisor__get_task_response__descriptor,
                              c->timeout_ms, &r);
                if (rc >= 0) {
                        ctr_print_json(r);
                        protobuf_c_message_free_unpacked(r, NULL);
                        return 0;
                }
        } else {
                return usage_err("tasks: unknown subcommand \"%s\"", sub);
        }
        if (rc < 0)
                return 1;
        if (c->json)
                ctr_print_json(r);
        protobuf_c_message_free_unpacked(r, NULL);
        return 0;
}

static int tasks_wait(struct ctr *c, int argc, char **argv)
{
        const char *exec_id = "";
        int i = 1;
        if (argc > 2 && strcmp(argv[1], "--exec-id") == 0) {
                exec_id = argv[2];
                i = 3;
        }
        if (argc - i != 1)
                return usage_err("tasks wait [--exec-id X] ID");
        Berth__Supervisor__WaitTaskRequest req = BERTH__SUPERVISOR__WAIT_TASK_REQUEST__INIT;
        Berth__Supervisor__WaitTaskResponse *r = NULL;
        req.id = argv[i];
        req.exec_id = (char *) exec_id;
        if (ctr_call(c, "tasks.WaitTask", &req.base, &berth__supervisor__wait_task_response__descriptor, RPC_NO_TIMEOUT,
                     (ProtobufCMessage **) &r) < 0)
                return 1;
        if (c->json)
                ctr_print_json(&r->base);
        else
                printf("%u%s%s\n", r->exit_code, *r->exit_reason ? " " : "", r->exit_reason);
        int code = (int) r->exit_code;
        protobuf_c_message_free_unpacked(&r->base, NULL);
        return code;
}

int ctr_cmd_tasks(struct ctr *c, int argc, char **argv)
{
        static const char use[] =
                "Usage: berth-ctr tasks ls | start ID | kill [-s SIG] [--all] [--exec-id X] ID |\n"
                "       exec [-t] [-i] [-d] --exec-id X ID CMD... | ps ID | pause ID | resume ID | metrics ID |\n"
                "       info ID | wait [--exec-id X] ID | rm [-f] ID...\n";
        if (argc < 2 || strcmp(argv[1], "--help") == 0) {
                fputs(use, argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        const char *sub = argv[1];
        argc--;
        argv++;
        if (strcmp(sub, "ls") == 0 || strcmp(sub, "list") == 0)
                return tasks_ls(c);
        if (strcmp(sub, "kill") == 0)
                return tasks_kill(c, argc, argv);
        if (strcmp(sub, "exec") == 0)
                return tasks_exec(c, argc, argv);
        if (strcmp(sub, "wait") == 0)
                return tasks_wait(c, argc, argv);
        if (strcmp(sub, "rm") == 0 || strcmp(sub, "delete") == 0) {
                bool force = false;
                int rc = 0, n = 0;
                for (int i = 1; i < argc; i++) {
                        if (strcmp(argv[i], "-f") == 0 || strcmp(argv[i], "--force") == 0) {
                                force = true;
                                continue;
                        }
                        n++;
                        uint32_t code = 0;
                        if (delete_task(c, argv[i], NULL, force, &code) < 0)
                                rc = 1;
                }
                if (n == 0)
                        return usage_err("tasks rm [-f] ID...");
                return rc;
        }
        if (argc != 2)
                return usage_err("tasks %s: expected ID", sub);
        return tasks_simple(c, sub, argv[1]);
}

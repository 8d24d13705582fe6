/* ocirun pause / resume / ps / update / events / checkpoint / restore */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "cleanup.h"
#include "cli.h"
#include "fs-util.h"
#include "json-util.h"
#include "log.h"
#include "state.h"

extern char **environ;

/* Loads a container and checks its status is one of those allowed. */
static int load_checked(const struct global_opts *g, const char *id, unsigned allowed, const char *verb,
                        struct container_state **ret)
{
        struct berr e = { 0 };
        struct container_state *st = NULL;
        if (state_load(g->root, id, &st, &e) < 0)
                return cli_fail(&e);
        enum container_status s = state_status(g->root, st);
        if (!(allowed & (1u << s))) {
                log_error("cannot %s container \"%s\": it is %s", verb, id, status_to_string(s));
                state_free(st);
                return 1;
        }
        if (!st->cgroup_paths) {
                log_error("container \"%s\" has no cgroups recorded", id);
                state_free(st);
                return 1;
        }
        *ret = st;
        return 0;
}

static int pause_resume(const struct global_opts *g, int argc, char **argv, bool freeze)
{
        const char *verb = freeze ? "pause" : "resume";
        _cleanup_(state_freep) struct container_state *st = NULL;
        struct berr e = { 0 };
        if (cli_expect_args(verb, "<container-id>", argc - 1, 1, 1))
                return 1;
        int r = load_checked(g, argv[1], freeze ? 1u << STATUS_RUNNING : 1u << STATUS_PAUSED, verb, &st);
        if (r)
                return r;
        if (cgroup_paths_freeze(st->cgroup_paths, freeze, &e) < 0)
                return cli_fail(&e);
        return 0;
}

int cmd_pause(const struct global_opts *g, int argc, char **argv)
{
        return pause_resume(g, argc, argv, true);
}

int cmd_resume(const struct global_opts *g, int argc, char **argv)
{
        return pause_resume(g, argc, argv, false);
}

/* Runs `ps <args>` and keeps the header and the lines of our pids. */
static int ps_table(char **ps_args, const pid_t *pids, size_t n)
{
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0)
                return log_errno(LOG_LEVEL_ERROR, errno, "pipe");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, pfd[1], STDOUT_FILENO);
        pid_t child;
        int r = posix_spawnp(&child, "ps", &fa, NULL, ps_args, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(pfd[1]);
        if (r != 0) {
                close(pfd[0]);
                return log_errno(LOG_LEVEL_ERROR, r, "cannot run ps");
        }
        _cleanup_fclose_ FILE *f = fdopen(pfd[0], "r");
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        int pid_col = -1;
        while (f && getline(&line, &cap, f) > 0) {
                if (pid_col < 0) {
                        /* the header names the columns: find PID */
                        int col = 0;
                        char *save = NULL;
                        _cleanup_free_ char *copy = strdup(line);
                        for (char *t = copy ? strtok_r(copy, " \t\n", &save) : NULL; t;
                             t = strtok_r(NULL, " \t\n", &save), col++)
                                if (strcmp(t, "PID") == 0)
                                        pid_col = col;
                        if (pid_col < 0) {
                                log_error("ps output has no PID column");
                                break;
                        }
                        fputs(line, stdout);
                        continue;
                }
                _cleanup_free_ char *copy = strdup(line);
                char *save = NULL, *t = copy ? strtok_r(copy, " \t\n", &save) : NULL;
                for (int col = 0; t && col < pid_col; col++)
                        t = strtok_r(NULL, " \t\n", &save);
                if (!t)
                        continue;
                pid_t p = (pid_t) strtol(t, NULL, 10);
                for (size_t i = 0; i < n; i++)
                        if (pids[i] == p) {
                                fputs(line, stdout);
                                break;
                        }
        }
        int status;
        waitpid(child, &status, 0);
        return pid_col < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ? 1 : 0;
}

int cmd_ps(const struct global_opts *g, int argc, char **argv)
{
        static const struct option opts[] = {
                { "format", required_argument, NULL, 'f' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *format = "table";
        _cleanup_(state_freep) struct container_state *st = NULL;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+f:h", opts, NULL)) != -1) {
                if (c == 'f')
                        format = optarg;
                else if (c == 'h') {
                        printf("Usage: ocirun ps [--format table|json] <container-id> [ps options]\n");
                        return 0;
                } else
                        return cli_usage_error("ps", "unknown option");
        }
        if (argc - optind < 1)
                return cli_usage_error("ps", "expects a container id");
        if (strcmp(format, "table") != 0 && strcmp(format, "json") != 0)
                return cli_usage_error("ps", "invalid format \"%s\": use table or json", format);
        int r = load_checked(g, argv[optind], ~(1u << STATUS_STOPPED), "ps", &st);
        if (r)
                return r;

        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;
        if (cgroup_paths_pids(st->cgroup_paths, &pids, &n) < 0) {
                log_error("cannot read the processes of container \"%s\"", argv[optind]);
                return 1;
        }
        if (strcmp(format, "json") == 0) {
                json_t *a = json_array();
                for (size_t i = 0; i < n; i++)
                        json_array_append_new(a, json_integer(pids[i]));
                char *s = json_dumps(a, JSON_COMPACT);
                puts(s ? s : "[]");
                free(s);
                json_decref(a);
                return 0;
        }
        /* ps arguments after the id; default -ef */
        int extra = argc - optind - 1;
        _cleanup_free_ char **ps_args = calloc((size_t) (extra > 0 ? extra : 1) + 2, sizeof(char *));
        if (!ps_args)
                return 1;
        ps_args[0] = (char *) "ps";
        if (extra > 0)
                for (int i = 0; i < extra; i++)
                        ps_args[i + 1] = argv[optind + 1 + i];
        else
                ps_args[1] = (char *) "-ef";
        return ps_table(ps_args, pids, n);
}

/* "512m", "1g", "1024" → bytes; -1 stays -1 (unlimited). */
static int parse_size(const char *s, int64_t *ret)
{
        char *end;
        long double v = strtold(s, &end);
        if (end == s)
                return -EINVAL;
        int64_t mul = 1;
        switch (tolower((unsigned char) *end)) {
        case 'k':
                mul = 1ll << 10;
                break;
        case 'm':
                mul = 1ll << 20;
                break;
        case 'g':
                mul = 1ll << 30;
                break;
        case 't':
                mul = 1ll << 40;
                break;
        case 'b':
        case '\0':
                break;
        default:
                return -EINVAL;
        }
        if (*end && *end != 'b' && *end != 'B') {
                end++;
                if (*end == 'b' || *end == 'B')
                        end++;
        } else if (*end)
                end++;
        if (*end)
                return -EINVAL;
        *ret = v < 0 ? -1 : (int64_t) (v * mul);
        return 0;
}

int cmd_update(const struct global_opts *g, int argc, char **argv)
{
        enum { O_RES = 'r', O_BLKIO = 256, O_CPU_PERIOD, O_CPU_QUOTA, O_CPU_SHARE, O_RT_PERIOD, O_RT_RUNTIME,
               O_CPUSET_CPUS, O_CPUSET_MEMS, O_KMEM, O_KMEM_TCP, O_MEM, O_MEM_RES, O_MEM_SWAP, O_PIDS, O_L3,
               O_MEMBW };
        static const struct option opts[] = {
                { "resources", required_argument, NULL, O_RES },
                { "blkio-weight", required_argument, NULL, O_BLKIO },
                { "cpu-period", required_argument, NULL, O_CPU_PERIOD },
                { "cpu-quota", required_argument, NULL, O_CPU_QUOTA },
                { "cpu-share", required_argument, NULL, O_CPU_SHARE },
                { "cpu-rt-period", required_argument, NULL, O_RT_PERIOD },
                { "cpu-rt-runtime", required_argument, NULL, O_RT_RUNTIME },
                { "cpuset-cpus", required_argument, NULL, O_CPUSET_CPUS },
                { "cpuset-mems", required_argument, NULL, O_CPUSET_MEMS },
                { "kernel-memory", required_argument, NULL, O_KMEM },
                { "kernel-memory-tcp", required_argument, NULL, O_KMEM_TCP },
                { "memory", required_argument, NULL, O_MEM },
                { "memory-reservation", required_argument, NULL, O_MEM_RES },
                { "memory-swap", required_argument, NULL, O_MEM_SWAP },
                { "pids-limit", required_argument, NULL, O_PIDS },
                { "l3-cache-schema", required_argument, NULL, O_L3 },
                { "mem-bw-schema", required_argument, NULL, O_MEMBW },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(state_freep) struct container_state *st = NULL;
        _cleanup_json_ json_t *res = NULL;
        const char *file = NULL;
        struct berr e = { 0 };
        int c;

        json_t *flags = json_pack("{s:{}, s:{}, s:{}, s:{}}", "memory", "cpu", "pids", "blockIO");
        _cleanup_json_ json_t *flags_owner = flags;
        optind = 0;
        while ((c = getopt_long(argc, argv, "+r:h", opts, NULL)) != -1) {
                int64_t v = 0;
                char *end = NULL;
                switch (c) {
                case O_RES:
                        file = optarg;
                        continue;
                case 'h':
                        printf("Usage: ocirun update [--resources FILE|-] [--memory N] [--cpu-quota N] ... <container-id>\n");
                        return 0;
                case O_CPUSET_CPUS:
                        json_object_set_new(json_object_get(flags, "cpu"), "cpus", json_string(optarg));
                        continue;
                case O_CPUSET_MEMS:
                        json_object_set_new(json_object_get(flags, "cpu"), "mems", json_string(optarg));
                        continue;
                case O_L3:
                case O_MEMBW:
                        log_error("Intel RDT (--l3-cache-schema / --mem-bw-schema) is not supported by ocirun");
                        return 1;
                case O_KMEM:
                case O_KMEM_TCP:
                        log_warn("kernel memory limits are deprecated and ignored");
                        continue;
                case O_MEM:
                case O_MEM_RES:
                case O_MEM_SWAP:
                        if (parse_size(optarg, &v) < 0)
                                return cli_usage_error("update", "invalid size \"%s\"", optarg);
                        json_object_set_new(json_object_get(flags, "memory"),
                                            c == O_MEM ? "limit" : c == O_MEM_RES ? "reservation" : "swap",
                                            json_integer(v));
                        continue;
                case '?':
                        return cli_usage_error("update", "unknown option");
                default:
                        break;
                }
                v = strtoll(optarg, &end, 10);
                if (!*optarg || *end)
                        return cli_usage_error("update", "invalid number \"%s\"", optarg);
                switch (c) {
                case O_BLKIO:
                        json_object_set_new(json_object_get(flags, "blockIO"), "weight", json_integer(v));
                        break;
                case O_CPU_PERIOD:
                        json_object_set_new(json_object_get(flags, "cpu"), "period", json_integer(v));
                        break;
                case O_CPU_QUOTA:
                        json_object_set_new(json_object_get(flags, "cpu"), "quota", json_integer(v));
                        break;
                case O_CPU_SHARE:
                        json_object_set_new(json_object_get(flags, "cpu"), "shares", json_integer(v));
                        break;
                case O_RT_PERIOD:
                        json_object_set_new(json_object_get(flags, "cpu"), "realtimePeriod", json_integer(v));
                        break;
                case O_RT_RUNTIME:
                        json_object_set_new(json_object_get(flags, "cpu"), "realtimeRuntime", json_integer(v));
                        break;
                case O_PIDS:
                        json_object_set_new(json_object_get(flags, "pids"), "limit", json_integer(v));
                        break;
                }
        }
        if (cli_expect_args("update", "<container-id>", argc - optind, 1, 1))
                return 1;

        if (file) {
                if (strcmp(file, "-") == 0) {
                        json_error_t jerr;
                        res = json_loadf(stdin, 0, &jerr);
                        if (!res) {
                                log_error("invalid resources JSON on stdin at line %d: %s", jerr.line, jerr.text);
                                return 1;
                        }
                } else if (json_load_path(file, 1u << 20, &res, &e) < 0)
                        return cli_fail(&e);
        } else
                res = json_incref(flags);

        struct spec_resources r = { 0 };
        if (spec_resources_parse(res, &r, &e) < 0)
                return cli_fail(&e);
        int ret = load_checked(g, argv[optind], ~(1u << STATUS_STOPPED), "update", &st);
        if (ret)
                return ret;
        if (cgroup_paths_apply(st->cgroup_paths, &r, &e) < 0)
                return cli_fail(&e);
        return 0;
}

static int print_event(const char *type, const char *id, json_t *data)
{
        json_t *ev = json_pack("{s:s, s:s}", "type", type, "id", id);
        if (data)
                json_object_set_new(ev, "data", data);
        char *s = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(ev);
        if (!s)
                return -ENOMEM;
        puts(s);
        fflush(stdout);
        free(s);
        return 0;
}

static uint64_t oom_count(json_t *paths)
{
        const char *key;
        json_t *v;
        json_object_foreach(paths, key, v) {
                bool v2 = strcmp(key, "cgroup2") == 0;
                if (!json_string_value(v) || (!v2 && !strstr(key, "memory")))
                        continue;
                _cleanup_free_ char *path = NULL, *data = NULL;
                if (asprintf(&path, "%s/%s", json_string_value(v), v2 ? "memory.events" : "memory.oom_control") < 0)
                        return 0;
                if (fs_read_file(path, 65536, &data, NULL) < 0)
                        continue;
                char *p = strstr(data, "oom_kill ");
                if (p)
                        return strtoull(p + 9, NULL, 10);
        }
        return 0;
}

int cmd_events(const struct global_opts *g, int argc, char **argv)
{
        static const struct option opts[] = {
                { "stats", no_argument, NULL, 's' },
                { "interval", required_argument, NULL, 'i' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(state_freep) struct container_state *st = NULL;
        bool stats = false;
        double interval = 5;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
                if (c == 's')
                        stats = true;
                else if (c == 'i') {
                        char *end;
                        interval = strtod(optarg, &end);
                        if (strcmp(end, "ms") == 0)
                                interval /= 1000;
                        else if (strcmp(end, "m") == 0)
                                interval *= 60;
                        else if (*end && strcmp(end, "s") != 0)
                                return cli_usage_error("events", "invalid interval \"%s\"", optarg);
                        if (interval <= 0)
                                return cli_usage_error("events", "the interval must be above 0");
                } else if (c == 'h') {
                        printf("Usage: ocirun events [--stats] [--interval 5s] <container-id>\n");
                        return 0;
                } else
                        return cli_usage_error("events", "unknown option");
        }
        if (cli_expect_args("events", "<container-id>", argc - optind, 1, 1))
                return 1;
        const char *id = argv[optind];
        int r = load_checked(g, id, ~(1u << STATUS_STOPPED), "get events of", &st);
        if (r)
                return r;
        if (stats)
                return print_event("stats", id, cgroup_paths_stats(st->cgroup_paths)) < 0;

        /* the stream: stats every interval, oom as it happens, until the container stops */
        uint64_t ooms = oom_count(st->cgroup_paths);
        double waited = interval;
        while (state_status(g->root, st) != STATUS_STOPPED) {
                uint64_t now = oom_count(st->cgroup_paths);
                if (now > ooms)
                        print_event("oom", id, NULL);
                ooms = now;
                if (waited >= interval) {
                        print_event("stats", id, cgroup_paths_stats(st->cgroup_paths));
                        waited = 0;
                }
                nanosleep(&(struct timespec) { .tv_nsec = 100 * 1000 * 1000 }, NULL);
                waited += 0.1;
        }
        return 0;
}

int cmd_checkpoint(const struct global_opts *g, int argc, char **argv)
{
        (void) g;
        (void) argc;
        log_error("%s is not supported: ocirun has no CRIU integration", argv[0]);
        return 1;
}

/* stats (one-shot and streamed, from the cgroup figures the shim reads)
 * and top (the container's processes, read from /proc). */
#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "engine.h"
#include "fs-util.h"
#include "log.h"
#include "supervisor.pb-c.h"
#include "time-util.h"

/* Total CPU time of the host in ns, as Docker's system_cpu_usage. */
static uint64_t system_cpu_ns(void)
{
        _cleanup_free_ char *s = NULL;
        size_t len;
        if (fs_read_file("/proc/stat", 1 << 20, &s, &len) < 0 || strncmp(s, "cpu ", 4))
                return 0;
        uint64_t total = 0;
        char *p = s + 4;
        for (int i = 0; i < 8; i++) {
                char *end;
                unsigned long long v = strtoull(p, &end, 10);
                if (end == p)
                        break;
                total += v;
                p = end;
        }
        long hz = sysconf(_SC_CLK_TCK);
        return hz > 0 ? total * (1000000000ull / (uint64_t) hz) : 0;
}

static int metrics(struct engine *en, const char *id, Berth__Supervisor__MetricsTaskResponse **ret,
                   struct rpc_status *st)
{
        Berth__Supervisor__MetricsTaskRequest req = BERTH__SUPERVISOR__METRICS_TASK_REQUEST__INIT;
        req.id = (char *) id;
        return engine_call(en, "tasks.MetricsTask", &req.base, &berth__supervisor__metrics_task_response__descriptor,
                           ENGINE_CALL_TIMEOUT_MS, (ProtobufCMessage **) ret, st);
}

static json_t *cpu_json(uint64_t usage, uint64_t system)
{
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        return json_pack("{s:{s:I, s:I, s:I}, s:I, s:i, s:{s:i, s:i, s:i}}", "cpu_usage", "total_usage",
                         (json_int_t) usage, "usage_in_kernelmode", (json_int_t) 0, "usage_in_usermode",
                         (json_int_t) 0, "system_cpu_usage", (json_int_t) system, "online_cpus", (int) ncpu,
                         "throttling_data", "periods", 0, "throttled_periods", 0, "throttled_time", 0);
}

/* One stats document; prev (may be NULL) gives precpu_stats. */
static json_t *stats_json(struct ctr *c, const Berth__Supervisor__MetricsTaskResponse *m, const char *read_at,
                          json_t *prev_cpu, const char *prev_read)
{
        uint64_t limit = m->memory_limit;
        if (!limit) {
                long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
                limit = pages > 0 && psize > 0 ? (uint64_t) pages * (uint64_t) psize : 0;
        }
        json_t *j = json_pack("{s:s, s:s, s:{s:I, s:I}, s:o, s:o, s:{s:I, s:I, s:I, s:{}}, s:s, s:s}", "read", read_at,
                              "preread", prev_read ? prev_read : "0001-01-01T00:00:00Z", "pids_stats", "current",
                              (json_int_t) m->pids_current, "limit",
                              (json_int_t) (m->pids_limit ? m->pids_limit : 0), "cpu_stats",
                              cpu_json(m->cpu_usage_ns, system_cpu_ns()), "precpu_stats",
                              json_ref_or(prev_cpu, json_object()), "memory_stats", "usage",
                              (json_int_t) m->memory_usage, "max_usage", (json_int_t) m->memory_max_usage, "limit",
                              (json_int_t) limit, "stats", "name", ctr_name(c), "id", c->id);
        json_object_set_new(j, "blkio_stats", json_pack("{s:n}", "io_service_bytes_recursive"));
        json_object_set_new(j, "networks", json_object());
        return j;
}

struct stats_stream {
        struct engine *en;
        struct ctr *c;
        int fd;
};

static void *stats_thread(void *arg)
{
        struct stats_stream *s = arg;
        json_t *prev = NULL;
        char prev_read[64] = "";
        for (;;) {
                Berth__Supervisor__MetricsTaskResponse *m = NULL;
                struct rpc_status st;
                if (metrics(s->en, s->c->id, &m, &st) < 0)
                        break;
                char now[64];
                time_now_rfc3339_nano(now, sizeof(now));
                json_t *j = stats_json(s->c, m, now, prev, *prev_read ? prev_read : NULL);
                json_decref(prev);
                prev = json_incref(json_object_get(j, "cpu_stats"));
                snprintf(prev_read, sizeof(prev_read), "%s", now);
                protobuf_c_message_free_unpacked(&m->base, NULL);
                char *t = json_dumps(j, JSON_COMPACT);
                json_decref(j);
                if (!t)
                        break;
                size_t n = strlen(t);
                t[n] = '\n';
                int r = fs_write_all(s->fd, t, n + 1);
                free(t);
                if (r < 0)
                        break;
                sleep(1);
        }
        json_decref(prev);
        close(s->fd);
        free(s);
        return NULL;
}

static enum MHD_Result container_stats(struct http_request *r)
{
        struct engine *en = r->engine;
        bool stream = http_query_bool(r, "stream", true) && !http_query_bool(r, "one-shot", false);
        pthread_mutex_lock(&en->ctrs.lock);
        struct ctr *c = engine_find_ctr_locked(en, r, r->params[0]);
        if (!c) {
                pthread_mutex_unlock(&en->ctrs.lock);
                return MHD_YES;
        }
        bool running = !strcmp(ctr_status(c), "running") || !strcmp(ctr_status(c), "paused");
        pthread_mutex_unlock(&en->ctrs.lock);
        if (!running) {
                /* Docker answers a stopped container with empty figures */
                Berth__Supervisor__MetricsTaskResponse zero = BERTH__SUPERVISOR__METRICS_TASK_RESPONSE__INIT;
                return http_reply_json(r, 200, stats_json(c, &zero, "0001-01-01T00:00:00Z", NULL, NULL));
        }
        if (!stream) {
                Berth__Supervisor__MetricsTaskResponse *m = NULL;
                struct rpc_status st;
                if (metrics(en, c->id, &m, &st) < 0)
                        return engine_reply_rpc_error(r, &st);
                char now[64];
                json_t *j = stats_json(c, m, time_now_rfc3339_nano(now, sizeof(now)), NULL, NULL);
                protobuf_c_message_free_unpacked(&m->base, NULL);
                return http_reply_json(r, 200, j);
        }
        struct stats_stream *s = calloc(1, sizeof(*s));
        if (!s)
                return MHD_NO;
        s->en = en;
        s->c = c;
        return engine_reply_streamed(r, "application/json", &s->fd, stats_thread, s, 0, free);
}

/* ps -ef's columns for one pid, from /proc. */
static json_t *proc_row(unsigned pid)
{
        char path[64];
        _cleanup_free_ char *stat = NULL, *cmdline = NULL, *status = NULL;
        size_t len, clen, slen;
        snprintf(path, sizeof(path), "/proc/%u/stat", pid);
        if (fs_read_file(path, 65536, &stat, &len) < 0)
                return NULL;
        snprintf(path, sizeof(path), "/proc/%u/cmdline", pid);
        if (fs_read_file(path, 1 << 20, &cmdline, &clen) < 0)
                clen = 0;
        snprintf(path, sizeof(path), "/proc/%u/status", pid);
        if (fs_read_file(path, 65536, &status, &slen) < 0)
                return NULL;
        char *rp = strrchr(stat, ')');
        if (!rp)
                return NULL;
        char comm[64] = "";
        char *lp = strchr(stat, '(');
        if (lp)
                snprintf(comm, sizeof(comm), "%.*s", (int) (rp - lp - 1), lp + 1);
        int ppid = 0, tty = 0;
        unsigned long long utime = 0, stime = 0, start = 0;
        char state;
        if (sscanf(rp + 2, "%c %d %*d %*d %d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu", &state,
                   &ppid, &tty, &utime, &stime, &start) < 6)
                return NULL;
        unsigned uid = 0;
        char *u = strstr(status, "\nUid:");
        if (u)
                sscanf(u + 5, "%u", &uid);
        char user[64];
        struct passwd pw, *pwp = NULL;
        char pwbuf[1024];
        if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &pwp) == 0 && pwp)
                snprintf(user, sizeof(user), "%s", pw.pw_name);
        else
                snprintf(user, sizeof(user), "%u", uid);
        long hz = sysconf(_SC_CLK_TCK);
        unsigned long long secs = hz > 0 ? (utime + stime) / (unsigned long long) hz : 0;
        char cputime[32], stime_s[32], ttys[16];
        snprintf(cputime, sizeof(cputime), "%02llu:%02llu:%02llu", secs / 3600, secs / 60 % 60, secs % 60);
        /* the start, from the boot time */
        struct timespec up;
        clock_gettime(CLOCK_BOOTTIME, &up);
        time_t started = time(NULL) - up.tv_sec + (time_t) (hz > 0 ? start / (unsigned long long) hz : 0);
        struct tm tm;
        localtime_r(&started, &tm);
        strftime(stime_s, sizeof(stime_s), "%H:%M", &tm);
        if (tty)
                snprintf(ttys, sizeof(ttys), "pts/%d", (tty & 0xff) | ((tty >> 12) & 0xfff00));
        else
                snprintf(ttys, sizeof(ttys), "?");
        for (size_t i = 0; clen && i + 1 < clen; i++)
                if (cmdline[i] == '\0')
                        cmdline[i] = ' ';
        char pids[16], ppids[16];
        snprintf(pids, sizeof(pids), "%u", pid);
        snprintf(ppids, sizeof(ppids), "%d", ppid);
        return json_pack("[s, s, s, s, s, s, s, s]", user, pids, ppids, "0", stime_s, ttys, cputime,
                         clen ? cmdline : comm);
}

static enum MHD_Result container_top(struct http_request *r)
{
        struct engine *en = r->engine;
        pthread_mutex_lock(&en->ctrs.lock);
        struct ctr *c = engine_find_ctr_locked(en, r, r->params[0]);
        if (!c) {
                pthread_mutex_unlock(&en->ctrs.lock);
                return MHD_YES;
        }
        bool running = !strcmp(ctr_status(c), "running") || !strcmp(ctr_status(c), "paused");
        pthread_mutex_unlock(&en->ctrs.lock);
        if (!running)
                return http_reply_error(r, 409, "Container %s is not running", c->id);
        const char *ps_args = http_query(r, "ps_args");
        if (ps_args && *ps_args && strcmp(ps_args, "-ef"))
                return http_reply_error(r, 400, "engine: top supports the default columns (ps -ef) only");
        Berth__Supervisor__PidsTaskRequest req = BERTH__SUPERVISOR__PIDS_TASK_REQUEST__INIT;
        req.id = c->id;
        Berth__Supervisor__PidsTaskResponse *rep = NULL;
        struct rpc_status st;
        if (engine_call(en, "tasks.PidsTask", &req.base, &berth__supervisor__pids_task_response__descriptor,
                        ENGINE_CALL_TIMEOUT_MS, (ProtobufCMessage **) &rep, &st) < 0)
                return engine_reply_rpc_error(r, &st);
        json_t *procs = json_array();
        for (size_t i = 0; i < rep->n_processes; i++) {
                json_t *row = proc_row(rep->processes[i]->pid);
                if (row)
                        json_array_append_new(procs, row);
        }
        protobuf_c_message_free_unpacked(&rep->base, NULL);
        return http_reply_json(r, 200, json_pack("{s:[ssssssss], s:o}", "Titles", "UID", "PID", "PPID", "C", "STIME",
                                                 "TTY", "TIME", "CMD", "Processes", procs));
}

const struct http_route engine_stats_routes[] = {
        { "GET", "/containers/{}/stats", container_stats, 0 },
        { "GET", "/containers/{}/top", container_top, 0 },
};
const size_t engine_stats_n_routes = sizeof(engine_stats_routes) / sizeof(engine_stats_routes[0]);

/* Statistics of a container's cgroups, in the shape of runc's
 * `events --stats` (libcontainer's cgroups.Stats). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"
#include "cleanup.h"
#include "fs-util.h"

#define NS_PER_TICK (1000000000ull / 100) /* USER_HZ is 100 */

static const char *dir_for(json_t *paths, const char *ctrl)
{
        const char *key;
        json_t *v;
        size_t n = strlen(ctrl);
        json_object_foreach(paths, key, v) {
                for (const char *p = key; (p = strstr(p, ctrl)); p += n)
                        if ((p == key || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
                                return json_string_value(v);
        }
        return NULL;
}

static char *read_file(const char *dir, const char *file)
{
        _cleanup_free_ char *path = NULL;
        char *data = NULL;
        if (!dir || asprintf(&path, "%s/%s", dir, file) < 0)
                return NULL;
        if (fs_read_file(path, 1 << 20, &data, NULL) < 0)
                return NULL;
        return data;
}

/* A single number; "max" → 0 (unlimited), missing → *present false. */
static uint64_t read_u64(const char *dir, const char *file, bool *present)
{
        _cleanup_free_ char *s = read_file(dir, file);
        if (present)
                *present = s != NULL;
        if (!s || strncmp(s, "max", 3) == 0)
                return 0;
        return strtoull(s, NULL, 10);
}

/* "key value" lines → object of integers */
static json_t *read_kv(const char *dir, const char *file)
{
        _cleanup_free_ char *s = read_file(dir, file);
        json_t *o = json_object();
        char *save = NULL;
        for (char *line = s ? strtok_r(s, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
                char key[128];
                unsigned long long v;
                if (sscanf(line, "%127s %llu", key, &v) == 2)
                        json_object_set_new(o, key, json_integer((json_int_t) v));
        }
        return o;
}

static uint64_t kv(json_t *o, const char *key)
{
        return (uint64_t) json_integer_value(json_object_get(o, key));
}

static json_t *mem_entry(const char *dir, const char *prefix)
{
        char f[96];
        json_t *o = json_object();
        snprintf(f, sizeof(f), "%s.limit_in_bytes", prefix);
        json_object_set_new(o, "limit", json_integer((json_int_t) read_u64(dir, f, NULL)));
        snprintf(f, sizeof(f), "%s.usage_in_bytes", prefix);
        json_object_set_new(o, "usage", json_integer((json_int_t) read_u64(dir, f, NULL)));
        snprintf(f, sizeof(f), "%s.max_usage_in_bytes", prefix);
        json_object_set_new(o, "max", json_integer((json_int_t) read_u64(dir, f, NULL)));
        snprintf(f, sizeof(f), "%s.failcnt", prefix);
        json_object_set_new(o, "failcnt", json_integer((json_int_t) read_u64(dir, f, NULL)));
        return o;
}

static json_t *blkio_entries(const char *dir, const char *file)
{
        _cleanup_free_ char *s = read_file(dir, file);
        json_t *a = json_array();
        char *save = NULL;
        for (char *line = s ? strtok_r(s, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
                unsigned maj, min;
                char op[32];
                unsigned long long v;
                if (sscanf(line, "%u:%u %31s %llu", &maj, &min, op, &v) == 4)
                        json_array_append_new(a, json_pack("{s:i, s:i, s:s, s:I}", "major", maj, "minor", min, "op",
                                                           op, "value", (json_int_t) v));
        }
        return a;
}

static json_t *stats_v1(json_t *paths)
{
        const char *cpuacct = dir_for(paths, "cpuacct"), *cpu = dir_for(paths, "cpu");
        const char *mem = dir_for(paths, "memory"), *pids = dir_for(paths, "pids"), *blkio = dir_for(paths, "blkio");

        json_t *percpu = json_array();
        _cleanup_free_ char *pc = read_file(cpuacct, "cpuacct.usage_percpu");
        char *save = NULL;
        for (char *t = pc ? strtok_r(pc, " \n", &save) : NULL; t; t = strtok_r(NULL, " \n", &save))
                json_array_append_new(percpu, json_integer((json_int_t) strtoull(t, NULL, 10)));
        json_t *cstat = read_kv(cpuacct, "cpuacct.stat");
        json_t *thr = read_kv(cpu, "cpu.stat");
        json_t *cpu_o = json_pack("{s:{s:I, s:o, s:I, s:I}, s:{s:I, s:I, s:I}}", "usage", "total",
                                  (json_int_t) read_u64(cpuacct, "cpuacct.usage", NULL), "percpu", percpu, "kernel",
                                  (json_int_t) (kv(cstat, "system") * NS_PER_TICK), "user",
                                  (json_int_t) (kv(cstat, "user") * NS_PER_TICK), "throttling", "periods",
                                  (json_int_t) kv(thr, "nr_periods"), "throttledPeriods",
                                  (json_int_t) kv(thr, "nr_throttled"), "throttledTime",
                                  (json_int_t) kv(thr, "throttled_time"));
        json_decref(cstat);
        json_decref(thr);

        json_t *raw = read_kv(mem, "memory.stat");
        json_t *mem_o = json_pack("{s:I, s:o, s:o, s:o, s:o, s:o}", "cache", (json_int_t) kv(raw, "cache"), "usage",
                                  mem_entry(mem, "memory"), "swap", mem_entry(mem, "memory.memsw"), "kernel",
                                  mem_entry(mem, "memory.kmem"), "kernelTCP", mem_entry(mem, "memory.kmem.tcp"),
                                  "raw", raw);

        json_t *blk = json_pack("{s:o, s:o}", "ioServiceBytesRecursive",
                                blkio_entries(blkio, "blkio.throttle.io_service_bytes_recursive"),
                                "ioServicedRecursive", blkio_entries(blkio, "blkio.throttle.io_serviced_recursive"));
        return json_pack("{s:o, s:o, s:{s:I, s:I}, s:o, s:{}}", "cpu", cpu_o, "memory", mem_o, "pids", "current",
                         (json_int_t) read_u64(pids, "pids.current", NULL), "limit",
                         (json_int_t) read_u64(pids, "pids.max", NULL), "blkio", blk, "hugetlb");
}

static json_t *stats_v2(const char *dir)
{
        json_t *cs = read_kv(dir, "cpu.stat");
        json_t *ms = read_kv(dir, "memory.stat");
        json_t *cpu_o = json_pack("{s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I}}", "usage", "total",
                                  (json_int_t) (kv(cs, "usage_usec") * 1000), "kernel",
                                  (json_int_t) (kv(cs, "system_usec") * 1000), "user",
                                  (json_int_t) (kv(cs, "user_usec") * 1000), "throttling", "periods",
                                  (json_int_t) kv(cs, "nr_periods"), "throttledPeriods",
                                  (json_int_t) kv(cs, "nr_throttled"), "throttledTime",
                                  (json_int_t) (kv(cs, "throttled_usec") * 1000));
        json_decref(cs);
        json_t *mem_o = json_pack("{s:I, s:{s:I, s:I, s:I}, s:{s:I, s:I}, s:o}", "cache", (json_int_t) kv(ms, "file"),
                                  "usage", "limit", (json_int_t) read_u64(dir, "memory.max", NULL), "usage",
                                  (json_int_t) read_u64(dir, "memory.current", NULL), "max",
                                  (json_int_t) read_u64(dir, "memory.peak", NULL), "swap", "limit",
                                  (json_int_t) read_u64(dir, "memory.swap.max", NULL), "usage",
                                  (json_int_t) read_u64(dir, "memory.swap.current", NULL), "raw", ms);
        return json_pack("{s:o, s:o, s:{s:I, s:I}, s:{}, s:{}}", "cpu", cpu_o, "memory", mem_o, "pids", "current",
                         (json_int_t) read_u64(dir, "pids.current", NULL), "limit",
                         (json_int_t) read_u64(dir, "pids.max", NULL), "blkio", "hugetlb");
}

json_t *cgroup_paths_stats(json_t *paths)
{
        json_t *v2 = json_object_get(paths, "cgroup2");
        if (v2 && json_object_size(paths) == 1)
                return stats_v2(json_string_value(v2));
        return stats_v1(paths);
}

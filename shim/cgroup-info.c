#include "cgroup-info.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "fs-util.h"
#include "shim.h"

/* Up to n whitespace-separated fields of s, split in place; how many. */
static size_t split_fields(char *s, char **fields, size_t n)
{
        size_t i = 0;
        char *save = NULL;
        for (char *t = strtok_r(s, " \t\n", &save); t && i < n; t = strtok_r(NULL, " \t\n", &save))
                fields[i++] = t;
        return i;
}

/* The mount point of a v1 controller (or of cgroup2 when controller is
 * NULL), from /proc/self/mountinfo; only mounts of the hierarchy's root.
 * Lines: "id parent maj:min root mount-point options [optional...] -
 * fstype source super-options". */
static char *mount_point(const char *controller)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        char *line = NULL;
        size_t cap = 0;
        char *found = NULL;
        if (!f)
                return NULL;
        while (!found && getline(&line, &cap, f) > 0) {
                char *pre[5], *post[3];
                char *dash = strstr(line, " - ");
                if (!dash)
                        continue;
                *dash = '\0';
                if (split_fields(line, pre, 5) != 5 || split_fields(dash + 3, post, 3) != 3)
                        continue;
                const char *root = pre[3], *mp = pre[4], *fstype = post[0];
                char *opts = post[2];
                if (strcmp(root, "/") != 0)
                        continue;
                if (!controller) {
                        if (strcmp(fstype, "cgroup2") == 0)
                                found = strdup(mp);
                        continue;
                }
                if (strcmp(fstype, "cgroup") != 0)
                        continue;
                for (char *save = NULL, *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save))
                        if (strcmp(o, controller) == 0) {
                                found = strdup(mp);
                                break;
                        }
        }
        free(line);
        return found;
}

static char *join(const char *a, const char *b)
{
        char *p = NULL;
        if (asprintf(&p, "%s%s", a, b) < 0)
                return NULL;
        return p;
}

int cg_locate(struct shim *s, pid_t pid)
{
        char path[64];
        _cleanup_fclose_ FILE *f = NULL;
        char *line = NULL;
        size_t cap = 0;

        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (getline(&line, &cap, f) > 0) {
                line[strcspn(line, "\n")] = '\0';
                char *c1 = strchr(line, ':');
                char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (!c2)
                        continue;
                *c1 = *c2 = '\0';
                const char *ctrls = c1 + 1, *rel = c2 + 1;
                if (strcmp(line, "0") == 0 && ctrls[0] == '\0') {
                        _cleanup_free_ char *mp = mount_point(NULL);
                        if (!mp || s->cg_version == 1)
                                continue;
                        s->cg_version = 2;
                        free(s->cg_memory);
                        free(s->cg_cpu);
                        free(s->cg_pids);
                        s->cg_memory = join(mp, rel);
                        s->cg_cpu = join(mp, rel);
                        s->cg_pids = join(mp, rel);
                        continue;
                }
                char list[256];
                snprintf(list, sizeof(list), ",%s,", ctrls);
                struct {
                        const char *name;
                        char **slot;
                } want[] = { { "memory", &s->cg_memory }, { "cpuacct", &s->cg_cpu }, { "pids", &s->cg_pids } };
                for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
                        char key[32];
                        snprintf(key, sizeof(key), ",%s,", want[i].name);
                        if (!strstr(list, key))
                                continue;
                        _cleanup_free_ char *mp = mount_point(want[i].name);
                        if (!mp)
                                continue;
                        if (s->cg_version == 2) {
                                /* hybrid: v1 controllers win */
                                free(s->cg_memory);
                                free(s->cg_cpu);
                                free(s->cg_pids);
                                s->cg_memory = s->cg_cpu = s->cg_pids = NULL;
                        }
                        s->cg_version = 1;
                        free(*want[i].slot);
                        *want[i].slot = join(mp, rel);
                }
        }
        free(line);
        return s->cg_version ? 0 : -ENOENT;
}

static int read_u64(const char *dir, const char *file, uint64_t *ret)
{
        char path[4096];
        char buf[64];
        _cleanup_fclose_ FILE *f = NULL;
        if (!dir)
                return -ENOENT;
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        if (!fgets(buf, sizeof(buf), f))
                return -EIO;
        if (strncmp(buf, "max", 3) == 0) {
                *ret = 0;
                return 0;
        }
        *ret = strtoull(buf, NULL, 10);
        return 0;
}

/* "key value" lines: the value of key. (No scanf: it would link glibc's
 * scanf, wide-character and float parsers into the static shim.) */
static int read_keyed(const char *dir, const char *file, const char *key, uint64_t *ret)
{
        char path[4096];
        char line[256];
        size_t klen = strlen(key);
        _cleanup_fclose_ FILE *f = NULL;
        if (!dir)
                return -ENOENT;
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                bool whole = strchr(line, '\n') != NULL;
                if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
                        char *end;
                        errno = 0;
                        unsigned long long v = strtoull(line + klen + 1, &end, 10);
                        if (end != line + klen + 1 && errno == 0 && (*end == '\n' || *end == '\0')) {
                                *ret = v;
                                return 0;
                        }
                }
                /* the rest of an overlong line is no "key value" line */
                while (!whole && fgets(line, sizeof(line), f))
                        whole = strchr(line, '\n') != NULL;
        }
        return -ENOENT;
}

int cg_read_stats(const struct shim *s, struct cg_stats *ret)
{
        struct cg_stats st = { .version = s->cg_version };
        if (!s->cg_version)
                return -ENOENT;
        if (s->cg_version == 2) {
                uint64_t usec = 0;
                if (read_keyed(s->cg_cpu, "cpu.stat", "usage_usec", &usec) == 0)
                        st.cpu_usage_ns = usec * 1000;
                read_u64(s->cg_memory, "memory.current", &st.memory_usage);
                read_u64(s->cg_memory, "memory.max", &st.memory_limit);
                read_u64(s->cg_memory, "memory.peak", &st.memory_max_usage);
                read_keyed(s->cg_memory, "memory.events", "oom_kill", &st.oom_kills);
        } else {
                read_u64(s->cg_cpu, "cpuacct.usage", &st.cpu_usage_ns);
                read_u64(s->cg_memory, "memory.usage_in_bytes", &st.memory_usage);
                read_u64(s->cg_memory, "memory.limit_in_bytes", &st.memory_limit);
                read_u64(s->cg_memory, "memory.max_usage_in_bytes", &st.memory_max_usage);
                read_keyed(s->cg_memory, "memory.oom_control", "oom_kill", &st.oom_kills);
                /* v1 says "no limit" with a huge page-aligned number */
                if (st.memory_limit >= (UINT64_C(1) << 62))
                        st.memory_limit = 0;
        }
        read_u64(s->cg_pids, "pids.current", &st.pids_current);
        read_u64(s->cg_pids, "pids.max", &st.pids_limit);
        *ret = st;
        return 0;
}

uint64_t cg_oom_kills(const struct shim *s)
{
        uint64_t n = 0;
        if (s->cg_version == 2)
                read_keyed(s->cg_memory, "memory.events", "oom_kill", &n);
        else if (s->cg_version == 1)
                read_keyed(s->cg_memory, "memory.oom_control", "oom_kill", &n);
        return n;
}

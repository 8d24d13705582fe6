/* cgroup v2: the unified hierarchy. Limits from the (v1-shaped) spec are
 * converted as runc and crun do. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"
#include "cleanup.h"
#include "fs-util.h"

static const char *const wanted[] = { "cpu", "cpuset", "io", "memory", "pids", "hugetlb" };

/* Delegate the controllers we may use from the root down to our parent. */
static int v2_prepare(const struct cgroup_hierarchy *h, struct berr *e)
{
        size_t base = strlen(h->mountpoint);
        _cleanup_free_ char *dir = strdup(h->dir);
        if (!dir)
                return -ENOMEM;
        for (size_t i = base; i < strlen(h->dir); i++) {
                if (i != base && h->dir[i] != '/')
                        continue;
                dir[i] = '\0';
                const char *d = i == base ? h->mountpoint : dir;
                _cleanup_free_ char *cpath = NULL, *avail = NULL;
                if (asprintf(&cpath, "%s/cgroup.controllers", d) < 0)
                        return -ENOMEM;
                if (fs_read_file(cpath, 65536, &avail, NULL) == 0) {
                        for (size_t k = 0; k < sizeof(wanted) / sizeof(wanted[0]); k++) {
                                char word[32];
                                snprintf(word, sizeof(word), "+%s", wanted[k]);
                                bool present = false;
                                _cleanup_free_ char *copy = strdup(avail);
                                for (char *t = copy ? strtok(copy, " \n") : NULL; t; t = strtok(NULL, " \n"))
                                        present = present || strcmp(t, wanted[k]) == 0;
                                /* failures show up as a missing file when the limit is written */
                                if (present)
                                        cgroup_write(d, "cgroup.subtree_control", word, NULL);
                        }
                }
                dir[i] = h->dir[i];
        }
        (void) e;
        return 0;
}

static int write_or_max(const char *dir, const char *file, int64_t v, struct berr *e)
{
        char buf[32];
        if (v < 0)
                snprintf(buf, sizeof(buf), "max");
        else
                snprintf(buf, sizeof(buf), "%lld", (long long) v);
        return cgroup_write(dir, file, buf, e);
}

/* cpu.shares (2..262144) → cpu.weight (1..10000) */
static uint64_t shares_to_weight(uint64_t shares)
{
        if (shares == 0)
                return 0;
        if (shares < 2)
                shares = 2;
        if (shares > 262144)
                shares = 262144;
        return 1 + ((shares - 2) * 9999) / 262142;
}

static int v2_apply(const struct cgroup_hierarchy *h, const struct spec_resources *r, struct berr *e)
{
        int ret;
        char buf[64];

        if (r->has_mem_limit && (ret = write_or_max(h->dir, "memory.max", r->mem_limit, e)) < 0)
                return ret;
        if (r->has_mem_swap) {
                /* v1's memsw is memory+swap; v2's swap.max is swap alone */
                int64_t sw = r->mem_swap;
                if (sw > 0 && r->has_mem_limit && r->mem_limit > 0)
                        sw -= r->mem_limit;
                if ((ret = write_or_max(h->dir, "memory.swap.max", sw, e)) < 0)
                        return ret;
        }
        if (r->has_mem_reservation && (ret = write_or_max(h->dir, "memory.low", r->mem_reservation, e)) < 0)
                return ret;
        if (r->has_pids_limit && (ret = write_or_max(h->dir, "pids.max", r->pids_limit > 0 ? r->pids_limit : -1, e)) < 0)
                return ret;
        if (r->has_cpu_shares && r->cpu_shares) {
                snprintf(buf, sizeof(buf), "%llu", (unsigned long long) shares_to_weight(r->cpu_shares));
                if ((ret = cgroup_write(h->dir, "cpu.weight", buf, e)) < 0)
                        return ret;
        }
        if ((r->has_cpu_quota && r->cpu_quota) || (r->has_cpu_period && r->cpu_period)) {
                uint64_t period = r->has_cpu_period && r->cpu_period ? r->cpu_period : 100000;
                if (r->has_cpu_period && r->cpu_period == 0 && r->has_cpu_quota && r->cpu_quota > 0)
                        return berr_setx(e, EINVAL, "linux.resources.cpu: a quota needs a period above 0");
                if (r->has_cpu_quota && r->cpu_quota > 0)
                        snprintf(buf, sizeof(buf), "%lld %llu", (long long) r->cpu_quota, (unsigned long long) period);
                else
                        snprintf(buf, sizeof(buf), "max %llu", (unsigned long long) period);
                if ((ret = cgroup_write(h->dir, "cpu.max", buf, e)) < 0)
                        return ret;
        }
        if (r->cpuset_cpus && *r->cpuset_cpus && (ret = cgroup_write(h->dir, "cpuset.cpus", r->cpuset_cpus, e)) < 0)
                return ret;
        if (r->cpuset_mems && *r->cpuset_mems && (ret = cgroup_write(h->dir, "cpuset.mems", r->cpuset_mems, e)) < 0)
                return ret;
        return 0;
}

const struct cgroup_ops cgroup_v2_ops = {
        .prepare = v2_prepare,
        .apply = v2_apply,
};

/* cgroup v2: the unified hierarchy. Limits from the (v1-shaped) spec are
 * converted as runc and crun do. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup-devices.h"
#include "cgroup.h"
#include "cleanup.h"
#include "fs-util.h"
#include "log.h"

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

static bool file_exists(const char *dir, const char *file)
{
        _cleanup_free_ char *p = NULL;
        return asprintf(&p, "%s/%s", dir, file) > 0 && access(p, F_OK) == 0;
}

/* blkio weight (10..1000) → io.weight (1..10000), as runc converts. */
static uint64_t blkio_to_io_weight(uint16_t w)
{
        return w ? 1 + ((uint64_t) w - 10) * 9999 / 990 : 0;
}

/* One io.max line per device, with every limit given for it:
 * "8:0 rbps=1048576 wiops=100". */
static int io_max_apply(const char *dir, const struct spec_resources *r, struct berr *e)
{
        static const char *const keys[SPEC_THROTTLE_MAX] = {
                [SPEC_THROTTLE_READ_BPS] = "rbps",
                [SPEC_THROTTLE_WRITE_BPS] = "wbps",
                [SPEC_THROTTLE_READ_IOPS] = "riops",
                [SPEC_THROTTLE_WRITE_IOPS] = "wiops",
        };
        struct io_max {
                int64_t major, minor;
                bool has[SPEC_THROTTLE_MAX];
                uint64_t rate[SPEC_THROTTLE_MAX];
        };
        size_t total = 0, n = 0;
        int ret;

        for (int t = 0; t < SPEC_THROTTLE_MAX; t++)
                total += json_array_size(r->blkio_throttle[t]);
        if (!total)
                return 0;
        _cleanup_free_ struct io_max *devs = calloc(total, sizeof(*devs));
        if (!devs)
                return -ENOMEM;
        for (int t = 0; t < SPEC_THROTTLE_MAX; t++)
                for (size_t i = 0; i < json_array_size(r->blkio_throttle[t]); i++) {
                        struct spec_blkio_device d;
                        if ((ret = spec_blkio_device_get(r->blkio_throttle[t], i, &d, e)) < 0)
                                return ret;
                        size_t k = 0;
                        while (k < n && (devs[k].major != d.major || devs[k].minor != d.minor))
                                k++;
                        if (k == n)
                                devs[n++] = (struct io_max) { .major = d.major, .minor = d.minor };
                        devs[k].has[t] = true;
                        devs[k].rate[t] = d.rate;
                }
        for (size_t k = 0; k < n; k++) {
                char line[256];
                int len = snprintf(line, sizeof(line), "%lld:%lld", (long long) devs[k].major,
                                   (long long) devs[k].minor);
                for (int t = 0; t < SPEC_THROTTLE_MAX; t++)
                        if (devs[k].has[t])
                                len += snprintf(line + len, sizeof(line) - (size_t) len, " %s=%llu", keys[t],
                                                (unsigned long long) devs[k].rate[t]);
                if ((ret = cgroup_write(dir, "io.max", line, e)) < 0)
                        return ret;
        }
        return 0;
}

/* With BFQ, io.bfq.weight takes blkio's values unconverted (and per-device
 * lines); otherwise io.weight, converted. */
static int io_apply(const char *dir, const struct spec_resources *r, struct berr *e)
{
        bool bfq = file_exists(dir, "io.bfq.weight");
        char buf[96];
        int ret;

        if (r->blkio_weight) {
                if (bfq)
                        snprintf(buf, sizeof(buf), "%u", (unsigned) r->blkio_weight);
                else
                        snprintf(buf, sizeof(buf), "%llu", (unsigned long long) blkio_to_io_weight(r->blkio_weight));
                if ((ret = cgroup_write(dir, bfq ? "io.bfq.weight" : "io.weight", buf, e)) < 0)
                        return ret;
        }
        for (size_t i = 0; i < json_array_size(r->blkio_weight_device); i++) {
                struct spec_blkio_device d;
                if ((ret = spec_blkio_device_get(r->blkio_weight_device, i, &d, e)) < 0)
                        return ret;
                if (!d.weight)
                        continue;
                snprintf(buf, sizeof(buf), "%lld:%lld %llu", (long long) d.major, (long long) d.minor,
                         (unsigned long long) (bfq ? d.weight : blkio_to_io_weight(d.weight)));
                if ((ret = cgroup_write(dir, bfq ? "io.bfq.weight" : "io.weight", buf, e)) < 0)
                        return ret;
        }
        if (r->blkio_leaf_weight)
                log_warn("linux.resources.blockIO.leafWeight has no cgroup v2 equivalent: ignored");
        return io_max_apply(dir, r, e);
}

static int hugetlb_apply(const char *dir, const struct spec_resources *r, struct berr *e)
{
        for (size_t i = 0; i < json_array_size(r->hugepage_limits); i++) {
                struct spec_hugepage_limit l;
                char file[64];
                int ret = spec_hugepage_limit_get(r->hugepage_limits, i, &l, e);
                if (ret < 0)
                        return ret;
                snprintf(file, sizeof(file), "hugetlb.%s.max", l.page_size);
                if (!file_exists(dir, file))
                        return berr_setx(e, ENOTSUP, "hugepage size %s is not supported here (no \"%s/%s\")",
                                         l.page_size, dir, file);
                if ((ret = write_or_max(dir, file, (int64_t) l.limit, e)) < 0)
                        return ret;
        }
        return 0;
}

/* linux.resources.unified, written as given, after everything else so
 * that it wins over converted values (as in runc). */
static int unified_apply(const char *dir, json_t *unified, struct berr *e)
{
        const char *k;
        json_t *v;
        json_object_foreach(unified, k, v) {
                int ret = cgroup_write(dir, k, json_string_value(v), e);
                if (ret == -ENOENT) {
                        size_t n = strcspn(k, ".");
                        return berr_setx(e, ENOENT,
                                         "linux.resources.unified: no cgroup file \"%s\" in \"%s\" "
                                         "(is the %.*s controller available?)", k, dir, (int) n, k);
                }
                if (ret < 0)
                        return ret;
        }
        return 0;
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
        if ((r->has_cpu_rt_runtime && r->cpu_rt_runtime) || (r->has_cpu_rt_period && r->cpu_rt_period))
                return berr_setx(e, ENOTSUP,
                                 "linux.resources.cpu.realtimeRuntime/realtimePeriod are not supported on cgroup v2");
        if (r->has_mem_swappiness)
                log_warn("linux.resources.memory.swappiness is not supported on cgroup v2: ignored");
        if (r->has_mem_disable_oom_killer && r->mem_disable_oom_killer)
                log_warn("linux.resources.memory.disableOOMKiller is not supported on cgroup v2: ignored");
        if ((ret = io_apply(h->dir, r, e)) < 0 || (ret = hugetlb_apply(h->dir, r, e)) < 0 ||
            (ret = cgroup_devices_apply(h, r, e)) < 0)
                return ret;
        return unified_apply(h->dir, r->unified, e);
}

const struct cgroup_ops cgroup_v2_ops = {
        .prepare = v2_prepare,
        .apply = v2_apply,
};

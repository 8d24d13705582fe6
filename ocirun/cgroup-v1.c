/* cgroup v1: one hierarchy per controller (or controller group). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup-devices.h"
#include "cgroup.h"
#include "cleanup.h"
#include "fs-util.h"

static bool has(const struct cgroup_hierarchy *h, const char *ctrl)
{
        size_t n = strlen(ctrl);
        for (const char *p = h->key; (p = strstr(p, ctrl)); p += n)
                if ((p == h->key || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
                        return true;
        return false;
}

static int write_i64(const char *dir, const char *file, int64_t v, struct berr *e)
{
        char buf[32];
        snprintf(buf, sizeof(buf), "%lld", (long long) v);
        return cgroup_write(dir, file, buf, e);
}

/* A new cpuset cgroup starts with empty cpus/mems, and a task cannot join
 * it until both are set: copy them down from the parent at every level. */
static int cpuset_inherit(const struct cgroup_hierarchy *h, struct berr *e)
{
        static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };
        size_t base = strlen(h->mountpoint), len = strlen(h->dir);

        for (size_t i = base + 1; i <= len; i++) {
                if (h->dir[i] != '/' && h->dir[i] != '\0')
                        continue;
                _cleanup_free_ char *level = strndup(h->dir, i);
                if (!level)
                        return -ENOMEM;
                _cleanup_free_ char *parent = strndup(level, (size_t) (strrchr(level, '/') - level));
                if (!parent)
                        return -ENOMEM;
                for (size_t k = 0; k < 2; k++) {
                        _cleanup_free_ char *cp = NULL, *pp = NULL, *cv = NULL, *pv = NULL;
                        if (asprintf(&cp, "%s/%s", level, files[k]) < 0 || asprintf(&pp, "%s/%s", parent, files[k]) < 0)
                                return -ENOMEM;
                        if (fs_read_file(cp, 65536, &cv, NULL) < 0 || strspn(cv, " \n") != strlen(cv))
                                continue;
                        if (fs_read_file(pp, 65536, &pv, NULL) < 0)
                                continue;
                        int r = cgroup_write(level, files[k], pv, e);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static bool file_exists(const char *dir, const char *file)
{
        _cleanup_free_ char *p = NULL;
        return asprintf(&p, "%s/%s", dir, file) > 0 && access(p, F_OK) == 0;
}

static int write_dev(const char *dir, const char *file, const struct spec_blkio_device *d, uint64_t v, struct berr *e)
{
        char buf[96];
        snprintf(buf, sizeof(buf), "%lld:%lld %llu", (long long) d->major, (long long) d->minor, (unsigned long long) v);
        return cgroup_write(dir, file, buf, e);
}

/* blkio.weight belongs to CFQ, gone since Linux 5.0; BFQ has blkio.bfq.weight.
 * Use whichever the kernel has, as runc does. */
static int blkio_apply(const char *dir, const struct spec_resources *r, struct berr *e)
{
        static const char *const throttle_files[SPEC_THROTTLE_MAX] = {
                [SPEC_THROTTLE_READ_BPS] = "blkio.throttle.read_bps_device",
                [SPEC_THROTTLE_WRITE_BPS] = "blkio.throttle.write_bps_device",
                [SPEC_THROTTLE_READ_IOPS] = "blkio.throttle.read_iops_device",
                [SPEC_THROTTLE_WRITE_IOPS] = "blkio.throttle.write_iops_device",
        };
        bool cfq = file_exists(dir, "blkio.weight");
        const char *weight = cfq ? "blkio.weight" : "blkio.bfq.weight";
        const char *weight_dev = cfq ? "blkio.weight_device" : "blkio.bfq.weight_device";
        struct spec_blkio_device d;
        int ret;

        if ((r->blkio_weight || json_array_size(r->blkio_weight_device)) && !file_exists(dir, weight))
                return berr_setx(e, ENOTSUP,
                                 "linux.resources.blockIO: block I/O weights need the CFQ or BFQ I/O scheduler "
                                 "(no blkio.weight or blkio.bfq.weight in \"%s\")", dir);
        if (r->blkio_weight && (ret = write_i64(dir, weight, r->blkio_weight, e)) < 0)
                return ret;
        if (r->blkio_leaf_weight && (ret = write_i64(dir, "blkio.leaf_weight", r->blkio_leaf_weight, e)) < 0)
                return ret;
        for (size_t i = 0; i < json_array_size(r->blkio_weight_device); i++) {
                if ((ret = spec_blkio_device_get(r->blkio_weight_device, i, &d, e)) < 0)
                        return ret;
                if (d.weight && (ret = write_dev(dir, weight_dev, &d, d.weight, e)) < 0)
                        return ret;
                if (d.leaf_weight && (ret = write_dev(dir, "blkio.leaf_weight_device", &d, d.leaf_weight, e)) < 0)
                        return ret;
        }
        for (int t = 0; t < SPEC_THROTTLE_MAX; t++)
                for (size_t i = 0; i < json_array_size(r->blkio_throttle[t]); i++) {
                        if ((ret = spec_blkio_device_get(r->blkio_throttle[t], i, &d, e)) < 0 ||
                            (ret = write_dev(dir, throttle_files[t], &d, d.rate, e)) < 0)
                                return ret;
                }
        return 0;
}

static int hugetlb_apply(const char *dir, const struct spec_resources *r, struct berr *e)
{
        for (size_t i = 0; i < json_array_size(r->hugepage_limits); i++) {
                struct spec_hugepage_limit l;
                char file[64];
                int ret = spec_hugepage_limit_get(r->hugepage_limits, i, &l, e);
                if (ret < 0)
                        return ret;
                snprintf(file, sizeof(file), "hugetlb.%s.limit_in_bytes", l.page_size);
                if (!file_exists(dir, file))
                        return berr_setx(e, ENOTSUP, "hugepage size %s is not supported by the kernel (no \"%s/%s\")",
                                         l.page_size, dir, file);
                if ((ret = write_i64(dir, file, (int64_t) l.limit, e)) < 0)
                        return ret;
        }
        return 0;
}

/* Realtime group scheduling needs CONFIG_RT_GROUP_SCHED. The period first:
 * a runtime is checked against it. */
static int cpu_rt_apply(const char *dir, const struct spec_resources *r, struct berr *e)
{
        bool period = r->has_cpu_rt_period && r->cpu_rt_period, runtime = r->has_cpu_rt_runtime && r->cpu_rt_runtime;
        int ret;
        if ((period || runtime) && !file_exists(dir, "cpu.rt_runtime_us"))
                return berr_setx(e, ENOTSUP,
                                 "linux.resources.cpu.realtimeRuntime/realtimePeriod: the kernel has no realtime "
                                 "group scheduling (no cpu.rt_runtime_us in \"%s\")", dir);
        if (period && (ret = write_i64(dir, "cpu.rt_period_us", (int64_t) r->cpu_rt_period, e)) < 0)
                return ret;
        if (runtime && (ret = write_i64(dir, "cpu.rt_runtime_us", r->cpu_rt_runtime, e)) < 0)
                return ret;
        return 0;
}

static int v1_prepare(const struct cgroup_hierarchy *h, struct berr *e)
{
        return has(h, "cpuset") ? cpuset_inherit(h, e) : 0;
}

/* memory.limit_in_bytes must stay <= memory.memsw.limit_in_bytes at every
 * step: when the new memory+swap limit is above the current one (raising),
 * write it first; otherwise the memory limit goes first. */
static int v1_memory_limits(const struct cgroup_hierarchy *h, const struct spec_resources *r, struct berr *e)
{
        _cleanup_free_ char *p = NULL;
        int ret;
        if (asprintf(&p, "%s/memory.memsw.limit_in_bytes", h->dir) < 0)
                return -ENOMEM;
        bool have_memsw = access(p, F_OK) == 0;

        if (r->has_mem_swap && !have_memsw && r->mem_swap > 0 && (!r->has_mem_limit || r->mem_swap != r->mem_limit))
                return berr_setx(e, ENODEV,
                                 "a swap limit was requested but the kernel has no swap accounting "
                                 "(memory.memsw.limit_in_bytes)");
        bool swap_first = false;
        if (r->has_mem_swap && have_memsw) {
                _cleanup_free_ char *cur = NULL;
                long long now = -1;
                if (fs_read_file(p, 64, &cur, NULL) == 0)
                        now = strtoll(cur, NULL, 10);
                swap_first = r->mem_swap == -1 || (uint64_t) r->mem_swap > (uint64_t) now;
        }
        if (swap_first && (ret = write_i64(h->dir, "memory.memsw.limit_in_bytes", r->mem_swap, e)) < 0)
                return ret;
        if (r->has_mem_limit && (ret = write_i64(h->dir, "memory.limit_in_bytes", r->mem_limit, e)) < 0)
                return ret;
        if (r->has_mem_swap && have_memsw && !swap_first &&
            (ret = write_i64(h->dir, "memory.memsw.limit_in_bytes", r->mem_swap, e)) < 0)
                return ret;
        return 0;
}

static int v1_apply(const struct cgroup_hierarchy *h, const struct spec_resources *r, struct berr *e)
{
        int ret;

        if (has(h, "memory")) {
                if ((ret = v1_memory_limits(h, r, e)) < 0)
                        return ret;
                if (r->has_mem_reservation &&
                    (ret = write_i64(h->dir, "memory.soft_limit_in_bytes", r->mem_reservation, e)) < 0)
                        return ret;
                if (r->has_mem_swappiness &&
                    (ret = write_i64(h->dir, "memory.swappiness", (int64_t) r->mem_swappiness, e)) < 0)
                        return ret;
                if (r->has_mem_disable_oom_killer && r->mem_disable_oom_killer &&
                    (ret = cgroup_write(h->dir, "memory.oom_control", "1", e)) < 0)
                        return ret;
        }
        if (has(h, "pids") && r->has_pids_limit) {
                if (r->pids_limit > 0)
                        ret = write_i64(h->dir, "pids.max", r->pids_limit, e);
                else
                        ret = cgroup_write(h->dir, "pids.max", "max", e);
                if (ret < 0)
                        return ret;
        }
        if (has(h, "cpu")) {
                if (r->has_cpu_shares && r->cpu_shares &&
                    (ret = write_i64(h->dir, "cpu.shares", (int64_t) r->cpu_shares, e)) < 0)
                        return ret;
                if (r->has_cpu_period && r->cpu_period &&
                    (ret = write_i64(h->dir, "cpu.cfs_period_us", (int64_t) r->cpu_period, e)) < 0)
                        return ret;
                if (r->has_cpu_period && r->cpu_period == 0 && r->has_cpu_quota && r->cpu_quota > 0)
                        return berr_setx(e, EINVAL, "linux.resources.cpu: a quota needs a period above 0");
                if (r->has_cpu_quota && r->cpu_quota &&
                    (ret = write_i64(h->dir, "cpu.cfs_quota_us", r->cpu_quota, e)) < 0)
                        return ret;
                if ((ret = cpu_rt_apply(h->dir, r, e)) < 0)
                        return ret;
        }
        if (has(h, "blkio") && (ret = blkio_apply(h->dir, r, e)) < 0)
                return ret;
        if (has(h, "hugetlb") && (ret = hugetlb_apply(h->dir, r, e)) < 0)
                return ret;
        if (has(h, "devices") && (ret = cgroup_devices_apply(h, r, e)) < 0)
                return ret;
        if (has(h, "cpuset")) {
                if (r->cpuset_cpus && *r->cpuset_cpus && (ret = cgroup_write(h->dir, "cpuset.cpus", r->cpuset_cpus, e)) < 0)
                        return ret;
                if (r->cpuset_mems && *r->cpuset_mems && (ret = cgroup_write(h->dir, "cpuset.mems", r->cpuset_mems, e)) < 0)
                        return ret;
        }
        return 0;
}

const struct cgroup_ops cgroup_v1_ops = {
        .prepare = v1_prepare,
        .apply = v1_apply,
};

/* The container's cgroup figures, read from cgroupfs (v1 or v2) by the
 * shim itself, so that Stats and the OOM flag work over any runtime. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

struct shim;

struct cg_stats {
        uint64_t cpu_usage_ns;
        uint64_t memory_usage;
        uint64_t memory_limit; /* 0: none */
        uint64_t memory_max_usage;
        uint64_t oom_kills;
        uint64_t pids_current;
        uint64_t pids_limit; /* 0: none */
        int version;         /* 1 or 2 */
};

/* Finds the memory, cpu accounting and pids cgroup directories of pid
 * (from /proc/<pid>/cgroup and the host's cgroup mounts) and keeps them in
 * s. Returns -errno if none is found. */
int cg_locate(struct shim *s, pid_t pid);

int cg_read_stats(const struct shim *s, struct cg_stats *ret);

/* Number of OOM kills recorded by the container's memory cgroup (0 if
 * unknown). */
uint64_t cg_oom_kills(const struct shim *s);

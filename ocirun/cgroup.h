/* Cgroups for one container, on cgroup v1, v2 and hybrid hosts.
 *
 * Every mounted hierarchy is joined (v1 controllers, named v1 hierarchies
 * such as name=systemd, and the v2 hierarchy, alone or beside v1 as on
 * hybrid hosts). Limits go through a small per-version ops table
 * (cgroup-v1.c, cgroup-v2.c). What a later ocirun invocation needs (kill,
 * delete, pause state) is the map of hierarchy → directory, which is saved
 * in the container state. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "err.h"
#include "spec.h"

struct cgroup_hierarchy {
        char *key;          /* "cpu,cpuacct", "memory", "name=systemd", "cgroup2" */
        char *mountpoint;   /* host mount point of the hierarchy */
        bool v2;
        char *dir;          /* the container's cgroup directory in it */
};

struct cgroup {
        struct cgroup_hierarchy *h;
        size_t n;
};

/* Per-version operations. */
struct cgroup_ops {
        /* Makes dir usable before limits are written (cpuset inheritance on
         * v1, controller delegation on v2). */
        int (*prepare)(const struct cgroup_hierarchy *h, struct berr *e);
        int (*apply)(const struct cgroup_hierarchy *h, const struct spec_resources *r, struct berr *e);
};

extern const struct cgroup_ops cgroup_v1_ops;
extern const struct cgroup_ops cgroup_v2_ops;

/* Creates the container's cgroups at the spec's cgroupsPath (absolute:
 * from each hierarchy's root; relative or empty: below ocirun's own cgroup,
 * empty meaning the container id) and writes the limits. On failure
 * nothing created is left behind. */
int cgroup_create(const struct spec *s, const char *id, struct cgroup **ret, struct berr *e);
/* hierarchy key → directory, for the state file. */
json_t *cgroup_to_json(const struct cgroup *cg);
void cgroup_free(struct cgroup *cg);

/* Starts, in a throwaway child, the RCU grace period that the first cgroup
 * migration after a quiet spell waits for (several ms on v1), so that it
 * runs while we set up instead of after. Returns the child's pid (reap it)
 * or -1. The child moves itself into the cgroup it is already in. */
pid_t cgroup_prewarm(void);

/* Operations on a saved map. */
int cgroup_paths_enter(json_t *paths, pid_t pid, struct berr *e);
/* Writes new limits (update). */
int cgroup_paths_apply(json_t *paths, const struct spec_resources *r, struct berr *e);
/* Freezes or thaws every process (pause / resume), waiting until done. */
int cgroup_paths_freeze(json_t *paths, bool freeze, struct berr *e);
/* The pids in the container's cgroup. */
int cgroup_paths_pids(json_t *paths, pid_t **ret, size_t *ret_n);
/* runc-shaped statistics ("cpu", "memory", "pids", "blkio", ...). */
json_t *cgroup_paths_stats(json_t *paths);
int cgroup_paths_destroy(json_t *paths);
int cgroup_paths_kill(json_t *paths, int sig);
bool cgroup_paths_frozen(json_t *paths);
/* True while any process is left in the container's cgroups. */
bool cgroup_paths_populated(json_t *paths);

/* Write a value to <dir>/<file>, naming both in the error. */
int cgroup_write(const char *dir, const char *file, const char *value, struct berr *e);

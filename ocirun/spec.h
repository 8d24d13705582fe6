/* The OCI runtime spec (config.json) as ocirun uses it: parsed and validated
 * up front, so that a bad config fails before anything is created. Strings
 * point into the JSON document, which the spec owns. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

#define SPEC_MAX_SIZE (16u << 20)

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

struct spec_mount {
        const char *destination;
        const char *type;   /* may be NULL (bind) */
        const char *source; /* may be NULL */
        char **options;     /* NULL-terminated, may be NULL */
};

struct spec_namespace {
        int flag;           /* CLONE_NEW* */
        const char *path;   /* join this one when set */
};

struct spec_rlimit {
        int resource;
        uint64_t soft, hard;
};

struct spec_idmap {
        uint32_t container_id, host_id, size;
};

struct spec_device {
        const char *path;
        char type;          /* 'c', 'b', 'u', 'p' */
        int64_t major, minor;
        bool has_mode, has_uid, has_gid;
        uint32_t mode, uid, gid;
};

/* Capability sets as bitmasks over capability numbers. */
struct spec_caps {
        bool present;
        uint64_t bounding, effective, inheritable, permitted, ambient;
};

struct spec_resources {
        bool has_mem_limit, has_mem_reservation, has_mem_swap, has_mem_swappiness;
        int64_t mem_limit, mem_reservation, mem_swap;
        uint64_t mem_swappiness;
        bool has_pids_limit;
        int64_t pids_limit;
        bool has_cpu_shares, has_cpu_quota, has_cpu_period;
        uint64_t cpu_shares, cpu_period;
        int64_t cpu_quota;
        const char *cpuset_cpus, *cpuset_mems;
};

struct spec_process {
        bool terminal;
        uint32_t uid, gid;
        uint32_t *additional_gids;
        size_t n_additional_gids;
        bool has_umask;
        uint32_t umask;
        char **args;
        char **env;
        const char *cwd;
        struct spec_caps caps;
        struct spec_rlimit *rlimits;
        size_t n_rlimits;
        bool no_new_privileges;
        bool has_oom_score_adj;
        int oom_score_adj;
        const char *apparmor_profile; /* NULL: none */
        const char *selinux_label;    /* NULL: none */
};

struct spec_time_offsets {
        bool has_monotonic, has_boottime;
        int64_t monotonic_secs, boottime_secs;
        uint32_t monotonic_nsecs, boottime_nsecs;
};

struct spec {
        json_t *doc;
        const char *oci_version;
        struct spec_process process;
        const char *root_path;
        bool root_readonly;
        const char *hostname;
        struct spec_mount *mounts;
        size_t n_mounts;
        struct spec_namespace *namespaces;
        size_t n_namespaces;
        struct spec_idmap *uid_maps, *gid_maps;
        size_t n_uid_maps, n_gid_maps;
        struct spec_device *devices;
        size_t n_devices;
        struct spec_resources resources;
        struct spec_time_offsets time;
        bool has_personality, personality_linux32;
        const char *cgroups_path;
        const char *rootfs_propagation;
        char **masked_paths;
        char **readonly_paths;
        json_t *sysctl;      /* object of string → string, borrowed */
        json_t *annotations; /* borrowed */
};

/* Loads and validates <bundle>/config.json. */
int spec_load(const char *bundle, struct spec **ret, struct berr *e);
/* Validates and parses an already-loaded document (takes a reference). */
int spec_parse(json_t *doc, struct spec **ret, struct berr *e);
void spec_free(struct spec *s);

/* A process object (config.json's "process", or `exec --process FILE`).
 * String fields point into proc, which must outlive p. */
int spec_process_parse(json_t *proc, struct spec_process *p, struct berr *e);
void spec_process_clear(struct spec_process *p);

/* linux.resources (or `update --resources FILE`). Strings point into res. */
int spec_resources_parse(json_t *res, struct spec_resources *r, struct berr *e);

/* The namespace entry of the given CLONE_NEW* flag, or NULL. */
const struct spec_namespace *spec_namespace(const struct spec *s, int flag);

/* The default config of `ocirun spec`. */
json_t *spec_default(bool rootless);

/* Capability name ("CAP_KILL" or "KILL") → number, -1 if unknown. */
int spec_cap_from_name(const char *name);
/* "CAP_CHOWN" for 0, ...; NULL past the last one ocirun knows. */
const char *spec_cap_name(int cap);

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

/* One linux.resources.devices rule. */
#define SPEC_DEV_ACC_MKNOD 1u /* the bits of BPF_DEVCG_ACC_* */
#define SPEC_DEV_ACC_READ 2u
#define SPEC_DEV_ACC_WRITE 4u
#define SPEC_DEV_ACC_ALL 7u
struct spec_device_rule {
        bool allow;
        char type;            /* 'a' (all), 'c' or 'b' */
        int64_t major, minor; /* -1: any */
        unsigned access;      /* SPEC_DEV_ACC_* */
};

/* linux.resources.blockIO.weightDevice[] or throttle*Device[]. */
struct spec_blkio_device {
        int64_t major, minor;
        uint16_t weight, leaf_weight; /* weightDevice; 0: unset */
        uint64_t rate;                /* throttle*Device */
};

enum spec_throttle {
        SPEC_THROTTLE_READ_BPS,
        SPEC_THROTTLE_WRITE_BPS,
        SPEC_THROTTLE_READ_IOPS,
        SPEC_THROTTLE_WRITE_IOPS,
        SPEC_THROTTLE_MAX,
};

struct spec_hugepage_limit {
        const char *page_size; /* "2MB", "1GB", "64KB" */
        uint64_t limit;
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
        bool has_cpu_rt_runtime, has_cpu_rt_period;
        int64_t cpu_rt_runtime;
        uint64_t cpu_rt_period;
        bool has_mem_kernel;     /* kernel or kernelTCP: deprecated, ignored */
        bool has_mem_disable_oom_killer, mem_disable_oom_killer;

        /* blockIO; weights 0: unset */
        uint16_t blkio_weight, blkio_leaf_weight;
        /* The arrays below are validated and borrowed from the document;
         * read their entries with the spec_*_get() functions. */
        json_t *blkio_weight_device;              /* spec_blkio_device_get */
        json_t *blkio_throttle[SPEC_THROTTLE_MAX]; /* spec_blkio_device_get */
        json_t *hugepage_limits;                  /* spec_hugepage_limit_get */
        json_t *unified;                          /* object of string → string */

        /* The device cgroup. devices: linux.resources.devices
         * (spec_device_rule_get). device_defaults is set for a container's
         * own config (not for update): the rules then end with the ones
         * runc adds for every container, except those for a path that
         * linux.devices also lists. Without either the device cgroup is
         * left alone. */
        json_t *devices;
        bool device_defaults;
        const struct spec_device *linux_devices;
        size_t n_linux_devices;
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

/* Entry i of a validated array of spec_resources (the parse checked
 * every entry; e names the entry otherwise). */
int spec_device_rule_get(json_t *arr, size_t i, struct spec_device_rule *ret, struct berr *e);
int spec_blkio_device_get(json_t *arr, size_t i, struct spec_blkio_device *ret, struct berr *e);
int spec_hugepage_limit_get(json_t *arr, size_t i, struct spec_hugepage_limit *ret, struct berr *e);
/* The key of a throttle array in linux.resources.blockIO ("throttleReadBpsDevice"). */
const char *spec_throttle_name(enum spec_throttle t);

/* The namespace entry of the given CLONE_NEW* flag, or NULL. */
const struct spec_namespace *spec_namespace(const struct spec *s, int flag);

/* The default config of `ocirun spec`. */
json_t *spec_default(bool rootless);

/* Capability name ("CAP_KILL" or "KILL") → number, -1 if unknown. */
int spec_cap_from_name(const char *name);
/* "CAP_CHOWN" for 0, ...; NULL past the last one ocirun knows. */
const char *spec_cap_name(int cap);

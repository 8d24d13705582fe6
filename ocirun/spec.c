#include "spec.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cleanup.h"
#include "json-util.h"
#include "log.h"


static const char *const cap_names[] = {
        "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
        "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
        "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
        "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
        "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
        "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
};

const char *spec_cap_name(int cap)
{
        static char buf[ARRAY_SIZE(cap_names)][32];
        if (cap < 0 || (size_t) cap >= ARRAY_SIZE(cap_names))
                return NULL;
        if (!buf[cap][0])
                snprintf(buf[cap], sizeof(buf[cap]), "CAP_%s", cap_names[cap]);
        return buf[cap];
}

int spec_cap_from_name(const char *name)
{
        if (strncasecmp(name, "CAP_", 4) == 0)
                name += 4;
        for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
                if (strcasecmp(name, cap_names[i]) == 0)
                        return (int) i;
        return -1;
}

static const struct {
        const char *name;
        int resource;
} rlimit_names[] = {
        { "RLIMIT_CPU", RLIMIT_CPU },         { "RLIMIT_FSIZE", RLIMIT_FSIZE },
        { "RLIMIT_DATA", RLIMIT_DATA },       { "RLIMIT_STACK", RLIMIT_STACK },
        { "RLIMIT_CORE", RLIMIT_CORE },       { "RLIMIT_RSS", RLIMIT_RSS },
        { "RLIMIT_NPROC", RLIMIT_NPROC },     { "RLIMIT_NOFILE", RLIMIT_NOFILE },
        { "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK }, { "RLIMIT_AS", RLIMIT_AS },
        { "RLIMIT_LOCKS", RLIMIT_LOCKS },     { "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
        { "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE }, { "RLIMIT_NICE", RLIMIT_NICE },
        { "RLIMIT_RTPRIO", RLIMIT_RTPRIO },   { "RLIMIT_RTTIME", RLIMIT_RTTIME },
};

static const struct {
        const char *name;
        int flag;
} ns_names[] = {
        { "pid", CLONE_NEWPID },   { "network", CLONE_NEWNET }, { "mount", CLONE_NEWNS },
        { "ipc", CLONE_NEWIPC },   { "uts", CLONE_NEWUTS },     { "user", CLONE_NEWUSER },
        { "cgroup", CLONE_NEWCGROUP }, { "time", CLONE_NEWTIME },
};

void spec_process_clear(struct spec_process *p)
{
        strv_free(p->args);
        strv_free(p->env);
        free(p->additional_gids);
        free(p->rlimits);
        *p = (struct spec_process) { 0 };
}

void spec_free(struct spec *s)
{
        if (!s)
                return;
        spec_process_clear(&s->process);
        for (size_t i = 0; i < s->n_mounts; i++)
                strv_free(s->mounts[i].options);
        free(s->mounts);
        free(s->namespaces);
        free(s->uid_maps);
        free(s->gid_maps);
        free(s->devices);
        strv_free(s->masked_paths);
        strv_free(s->readonly_paths);
        json_decref(s->doc);
        free(s);
}

const struct spec_namespace *spec_namespace(const struct spec *s, int flag)
{
        for (size_t i = 0; i < s->n_namespaces; i++)
                if (s->namespaces[i].flag == flag)
                        return &s->namespaces[i];
        return NULL;
}

static int parse_cap_set(json_t *caps, const char *key, uint64_t *ret, struct berr *e)
{
        json_t *arr = NULL;
        int r = json_get_array(caps, "process.capabilities", key, &arr, e);
        if (r < 0 || !arr)
                return r;
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) {
                if (!json_is_string(v))
                        return berr_setx(e, EINVAL, "process.capabilities.%s must be an array of strings", key);
                int cap = spec_cap_from_name(json_string_value(v));
                if (cap < 0) {
                        log_warn("ignoring unknown capability \"%s\" in process.capabilities.%s",
                                 json_string_value(v), key);
                        continue;
                }
                *ret |= 1ull << cap;
        }
        return 0;
}

int spec_process_parse(json_t *proc, struct spec_process *p, struct berr *e)
{
        json_t *user = NULL, *caps = NULL, *rl = NULL, *gids = NULL;
        int r;

        if ((r = json_get_bool(proc, "process", "terminal", &p->terminal, e)) < 0 ||
            (r = json_get_strv(proc, "process", "args", &p->args, e)) < 0 ||
            (r = json_get_strv(proc, "process", "env", &p->env, e)) < 0 ||
            (r = json_get_string(proc, "process", "cwd", &p->cwd, e)) < 0 ||
            (r = json_get_bool(proc, "process", "noNewPrivileges", &p->no_new_privileges, e)) < 0 ||
            (r = json_get_string(proc, "process", "apparmorProfile", &p->apparmor_profile, e)) < 0 ||
            (r = json_get_string(proc, "process", "selinuxLabel", &p->selinux_label, e)) < 0 ||
            (r = json_get_object(proc, "process", "user", &user, e)) < 0 ||
            (r = json_get_object(proc, "process", "capabilities", &caps, e)) < 0 ||
            (r = json_get_array(proc, "process", "rlimits", &rl, e)) < 0)
                return r;

        if (!p->args || !p->args[0])
                return berr_setx(e, EINVAL, "process.args must name the program to run");
        if (!p->cwd)
                return berr_setx(e, EINVAL, "process.cwd is required");
        if (p->cwd[0] != '/')
                return berr_setx(e, EINVAL, "process.cwd \"%s\" must be an absolute path", p->cwd);

        if (json_object_get(proc, "oomScoreAdj")) {
                int64_t v = 0;
                if ((r = json_get_int64(proc, "process", "oomScoreAdj", &v, e)) < 0)
                        return r;
                if (v < -1000 || v > 1000)
                        return berr_setx(e, EINVAL, "process.oomScoreAdj %lld is outside -1000..1000", (long long) v);
                p->has_oom_score_adj = true;
                p->oom_score_adj = (int) v;
        }

        if (user) {
                if ((r = json_get_uint32(user, "process.user", "uid", &p->uid, e)) < 0 ||
                    (r = json_get_uint32(user, "process.user", "gid", &p->gid, e)) < 0 ||
                    (r = json_get_array(user, "process.user", "additionalGids", &gids, e)) < 0)
                        return r;
                if (json_object_get(user, "umask") && !json_is_null(json_object_get(user, "umask"))) {
                        if ((r = json_get_uint32(user, "process.user", "umask", &p->umask, e)) < 0)
                                return r;
                        p->has_umask = true;
                }
                if (gids) {
                        p->n_additional_gids = json_array_size(gids);
                        p->additional_gids = calloc(p->n_additional_gids + 1, sizeof(uint32_t));
                        if (!p->additional_gids)
                                return -ENOMEM;
                        for (size_t i = 0; i < p->n_additional_gids; i++) {
                                json_t *g = json_array_get(gids, i);
                                if (!json_is_integer(g) || json_integer_value(g) < 0 ||
                                    json_integer_value(g) > (json_int_t) UINT32_MAX)
                                        return berr_setx(e, EINVAL, "process.user.additionalGids must be an array of gids");
                                p->additional_gids[i] = (uint32_t) json_integer_value(g);
                        }
                }
        }

        if (caps) {
                p->caps.present = true;
                if ((r = parse_cap_set(caps, "bounding", &p->caps.bounding, e)) < 0 ||
                    (r = parse_cap_set(caps, "effective", &p->caps.effective, e)) < 0 ||
                    (r = parse_cap_set(caps, "inheritable", &p->caps.inheritable, e)) < 0 ||
                    (r = parse_cap_set(caps, "permitted", &p->caps.permitted, e)) < 0 ||
                    (r = parse_cap_set(caps, "ambient", &p->caps.ambient, e)) < 0)
                        return r;
        }

        if (rl) {
                p->rlimits = calloc(json_array_size(rl) + 1, sizeof(*p->rlimits));
                if (!p->rlimits)
                        return -ENOMEM;
                size_t i;
                json_t *v;
                json_array_foreach(rl, i, v) {
                        const char *type = NULL;
                        json_int_t soft, hard;
                        if (!json_is_object(v) || json_get_string(v, "process.rlimits", "type", &type, e) < 0 || !type)
                                return berr_setx(e, EINVAL, "process.rlimits[%zu] needs a type", i);
                        if (!json_is_integer(json_object_get(v, "soft")) || !json_is_integer(json_object_get(v, "hard")))
                                return berr_setx(e, EINVAL, "process.rlimits[%zu] (%s) needs integer soft and hard", i, type);
                        soft = json_integer_value(json_object_get(v, "soft"));
                        hard = json_integer_value(json_object_get(v, "hard"));
                        int res = -1;
                        for (size_t k = 0; k < ARRAY_SIZE(rlimit_names); k++)
                                if (strcmp(type, rlimit_names[k].name) == 0)
                                        res = rlimit_names[k].resource;
                        if (res < 0)
                                return berr_setx(e, EINVAL, "process.rlimits: unknown rlimit type \"%s\"", type);
                        for (size_t k = 0; k < p->n_rlimits; k++)
                                if (p->rlimits[k].resource == res)
                                        return berr_setx(e, EINVAL, "process.rlimits: duplicate type \"%s\"", type);
                        p->rlimits[p->n_rlimits++] = (struct spec_rlimit) {
                                .resource = res,
                                .soft = (uint64_t) soft,
                                .hard = (uint64_t) hard,
                        };
                }
        }
        return 0;
}

static int parse_mounts(struct spec *s, json_t *mounts, struct berr *e)
{
        s->mounts = calloc(json_array_size(mounts) + 1, sizeof(*s->mounts));
        if (!s->mounts)
                return -ENOMEM;
        size_t i;
        json_t *m;
        json_array_foreach(mounts, i, m) {
                struct spec_mount *sm = &s->mounts[i];
                char where[32];
                int r;
                snprintf(where, sizeof(where), "mounts[%zu]", i);
                if (!json_is_object(m))
                        return berr_setx(e, EINVAL, "%s must be an object", where);
                s->n_mounts = i + 1;
                if ((r = json_get_string(m, where, "destination", &sm->destination, e)) < 0 ||
                    (r = json_get_string(m, where, "type", &sm->type, e)) < 0 ||
                    (r = json_get_string(m, where, "source", &sm->source, e)) < 0 ||
                    (r = json_get_strv(m, where, "options", &sm->options, e)) < 0)
                        return r;
                if (!sm->destination || !*sm->destination)
                        return berr_setx(e, EINVAL, "%s.destination is required", where);
                if (sm->destination[0] != '/')
                        return berr_setx(e, EINVAL, "%s.destination \"%s\" must be an absolute path", where,
                                         sm->destination);
        }
        return 0;
}

static int parse_idmaps(json_t *arr, const char *key, struct spec_idmap **ret, size_t *ret_n, struct berr *e)
{
        *ret = calloc(json_array_size(arr) + 1, sizeof(**ret));
        if (!*ret)
                return -ENOMEM;
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) {
                struct spec_idmap *m = &(*ret)[i];
                int r;
                if (!json_is_object(v))
                        return berr_setx(e, EINVAL, "linux.%s[%zu] must be an object", key, i);
                if ((r = json_get_uint32(v, key, "containerID", &m->container_id, e)) < 0 ||
                    (r = json_get_uint32(v, key, "hostID", &m->host_id, e)) < 0 ||
                    (r = json_get_uint32(v, key, "size", &m->size, e)) < 0)
                        return r;
                *ret_n = i + 1;
        }
        return 0;
}

/* An optional integer member: *ret untouched and *has false when missing or null. */
static int opt_i64(const json_t *o, const char *where, const char *key, int64_t *ret, bool *has, struct berr *e)
{
        json_t *v = json_object_get(o, key);
        if (!v || json_is_null(v))
                return 0;
        int r = json_get_int64(o, where, key, ret, e);
        if (r < 0)
                return r;
        if (has)
                *has = true;
        return 0;
}

/* A major or minor: missing, null and -1 mean any. */
static int dev_number(const json_t *o, const char *where, const char *key, int64_t *ret, struct berr *e)
{
        int64_t v = -1;
        int r = opt_i64(o, where, key, &v, NULL, e);
        if (r < 0)
                return r;
        if (v < -1 || v > (int64_t) UINT32_MAX)
                return berr_setx(e, EINVAL, "%s.%s %lld is not a device number", where, key, (long long) v);
        *ret = v;
        return 0;
}

int spec_device_rule_get(json_t *arr, size_t i, struct spec_device_rule *ret, struct berr *e)
{
        json_t *v = json_array_get(arr, i);
        char where[64];
        const char *type = NULL, *access = NULL;
        struct spec_device_rule d = { .type = 'a', .major = -1, .minor = -1 };
        int r;

        snprintf(where, sizeof(where), "linux.resources.devices[%zu]", i);
        if (!json_is_object(v))
                return berr_setx(e, EINVAL, "%s must be an object", where);
        if ((r = json_get_bool(v, where, "allow", &d.allow, e)) < 0 ||
            (r = json_get_string(v, where, "type", &type, e)) < 0 ||
            (r = json_get_string(v, where, "access", &access, e)) < 0 ||
            (r = dev_number(v, where, "major", &d.major, e)) < 0 || (r = dev_number(v, where, "minor", &d.minor, e)) < 0)
                return r;
        if (!json_is_boolean(json_object_get(v, "allow")))
                return berr_setx(e, EINVAL, "%s.allow is required", where);
        if (type && *type) {
                if (strlen(type) != 1 || !strchr("acb", type[0]))
                        return berr_setx(e, EINVAL, "%s.type \"%s\" is not one of a, c, b", where, type);
                d.type = type[0];
        }
        /* as runc: an empty access is a mistake, not "nothing" */
        if (!access || !*access)
                return berr_setx(e, EINVAL, "%s.access must not be empty", where);
        for (const char *c = access; *c; c++) {
                unsigned bit = *c == 'r' ? SPEC_DEV_ACC_READ : *c == 'w' ? SPEC_DEV_ACC_WRITE : *c == 'm' ? SPEC_DEV_ACC_MKNOD : 0;
                if (!bit)
                        return berr_setx(e, EINVAL, "%s.access \"%s\" may only hold r, w and m", where, access);
                d.access |= bit;
        }
        *ret = d;
        return 0;
}

static const char *const throttle_names[SPEC_THROTTLE_MAX] = {
        [SPEC_THROTTLE_READ_BPS] = "throttleReadBpsDevice",
        [SPEC_THROTTLE_WRITE_BPS] = "throttleWriteBpsDevice",
        [SPEC_THROTTLE_READ_IOPS] = "throttleReadIOPSDevice",
        [SPEC_THROTTLE_WRITE_IOPS] = "throttleWriteIOPSDevice",
};

const char *spec_throttle_name(enum spec_throttle t)
{
        return t < SPEC_THROTTLE_MAX ? throttle_names[t] : NULL;
}

/* 0 (unset) or 10..1000 (blkio.weight's range; io.weight is converted from it) */
static int blkio_weight(const json_t *o, const char *where, const char *key, uint16_t *ret, struct berr *e)
{
        int64_t v = 0;
        int r = opt_i64(o, where, key, &v, NULL, e);
        if (r < 0)
                return r;
        if (v != 0 && (v < 10 || v > 1000))
                return berr_setx(e, EINVAL, "%s.%s %lld is outside 10..1000", where, key, (long long) v);
        *ret = (uint16_t) v;
        return 0;
}

static int blkio_device_parse(json_t *v, const char *where, struct spec_blkio_device *ret, struct berr *e)
{
        struct spec_blkio_device d = { 0 };
        int64_t rate = 0;
        bool has_rate = false;
        int r;

        if (!json_is_object(v))
                return berr_setx(e, EINVAL, "%s must be an object", where);
        if ((r = json_get_int64(v, where, "major", &d.major, e)) < 0 ||
            (r = json_get_int64(v, where, "minor", &d.minor, e)) < 0 ||
            (r = blkio_weight(v, where, "weight", &d.weight, e)) < 0 ||
            (r = blkio_weight(v, where, "leafWeight", &d.leaf_weight, e)) < 0 ||
            (r = opt_i64(v, where, "rate", &rate, &has_rate, e)) < 0)
                return r;
        if (!json_is_integer(json_object_get(v, "major")) || !json_is_integer(json_object_get(v, "minor")) ||
            d.major < 0 || d.minor < 0 || d.major > (int64_t) UINT32_MAX || d.minor > (int64_t) UINT32_MAX)
                return berr_setx(e, EINVAL, "%s needs a major and a minor device number", where);
        if (rate < 0)
                return berr_setx(e, EINVAL, "%s.rate must not be negative", where);
        d.rate = (uint64_t) rate;
        *ret = d;
        return 0;
}

int spec_blkio_device_get(json_t *arr, size_t i, struct spec_blkio_device *ret, struct berr *e)
{
        char where[64];
        snprintf(where, sizeof(where), "linux.resources.blockIO device [%zu]", i);
        return blkio_device_parse(json_array_get(arr, i), where, ret, e);
}

int spec_hugepage_limit_get(json_t *arr, size_t i, struct spec_hugepage_limit *ret, struct berr *e)
{
        json_t *v = json_array_get(arr, i);
        struct spec_hugepage_limit l = { 0 };
        char where[64];
        int64_t limit = -1;
        int r;

        snprintf(where, sizeof(where), "linux.resources.hugepageLimits[%zu]", i);
        if (!json_is_object(v))
                return berr_setx(e, EINVAL, "%s must be an object", where);
        if ((r = json_get_string(v, where, "pageSize", &l.page_size, e)) < 0 ||
            (r = opt_i64(v, where, "limit", &limit, NULL, e)) < 0)
                return r;
        size_t digits = l.page_size ? strspn(l.page_size, "0123456789") : 0;
        if (!digits || l.page_size[0] == '0' ||
            (strcmp(l.page_size + digits, "KB") != 0 && strcmp(l.page_size + digits, "MB") != 0 &&
             strcmp(l.page_size + digits, "GB") != 0))
                return berr_setx(e, EINVAL, "%s.pageSize must be a size such as \"2MB\" or \"1GB\"", where);
        if (limit < 0)
                return berr_setx(e, EINVAL, "%s.limit is required and must not be negative", where);
        l.limit = (uint64_t) limit;
        *ret = l;
        return 0;
}

static int parse_blkio(json_t *bio, struct spec_resources *rs, struct berr *e)
{
        const char *where = "linux.resources.blockIO";
        struct spec_blkio_device d;
        int r;

        if ((r = blkio_weight(bio, where, "weight", &rs->blkio_weight, e)) < 0 ||
            (r = blkio_weight(bio, where, "leafWeight", &rs->blkio_leaf_weight, e)) < 0 ||
            (r = json_get_array(bio, where, "weightDevice", &rs->blkio_weight_device, e)) < 0)
                return r;
        for (int t = -1; t < SPEC_THROTTLE_MAX; t++) {
                const char *name = t < 0 ? "weightDevice" : throttle_names[t];
                json_t *arr = rs->blkio_weight_device;
                if (t >= 0 && (r = json_get_array(bio, where, name, &rs->blkio_throttle[t], e)) < 0)
                        return r;
                if (t >= 0)
                        arr = rs->blkio_throttle[t];
                for (size_t i = 0; i < json_array_size(arr); i++) {
                        json_t *v = json_array_get(arr, i);
                        char ewhere[96];
                        snprintf(ewhere, sizeof(ewhere), "%s.%s[%zu]", where, name, i);
                        if ((r = blkio_device_parse(v, ewhere, &d, e)) < 0)
                                return r;
                        if (t >= 0 && !json_is_integer(json_object_get(v, "rate")))
                                return berr_setx(e, EINVAL, "%s needs a rate", ewhere);
                }
        }
        return 0;
}

int spec_resources_parse(json_t *res, struct spec_resources *rs, struct berr *e)
{
        json_t *mem = NULL, *pids = NULL, *cpu = NULL, *bio = NULL;
        int r;

        if ((r = json_get_object(res, "linux.resources", "memory", &mem, e)) < 0 ||
            (r = json_get_object(res, "linux.resources", "pids", &pids, e)) < 0 ||
            (r = json_get_object(res, "linux.resources", "cpu", &cpu, e)) < 0 ||
            (r = json_get_object(res, "linux.resources", "blockIO", &bio, e)) < 0 ||
            (r = json_get_array(res, "linux.resources", "devices", &rs->devices, e)) < 0 ||
            (r = json_get_array(res, "linux.resources", "hugepageLimits", &rs->hugepage_limits, e)) < 0 ||
            (r = json_get_object(res, "linux.resources", "unified", &rs->unified, e)) < 0)
                return r;

#define GET_I64(obj, where, key, field, flag)                                  \
        if (json_object_get(obj, key) && !json_is_null(json_object_get(obj, key))) { \
                if ((r = json_get_int64(obj, where, key, &(field), e)) < 0)    \
                        return r;                                              \
                flag = true;                                                   \
        }

        if (mem) {
                GET_I64(mem, "linux.resources.memory", "limit", rs->mem_limit, rs->has_mem_limit);
                GET_I64(mem, "linux.resources.memory", "reservation", rs->mem_reservation, rs->has_mem_reservation);
                GET_I64(mem, "linux.resources.memory", "swap", rs->mem_swap, rs->has_mem_swap);
                int64_t sw = 0;
                GET_I64(mem, "linux.resources.memory", "swappiness", sw, rs->has_mem_swappiness);
                if (rs->has_mem_swappiness && (sw < 0 || sw > 100))
                        return berr_setx(e, EINVAL, "linux.resources.memory.swappiness %lld is outside 0..100",
                                         (long long) sw);
                rs->mem_swappiness = (uint64_t) sw;
                if (rs->has_mem_limit && rs->has_mem_swap && rs->mem_swap > 0 && rs->mem_limit > 0 &&
                    rs->mem_swap < rs->mem_limit)
                        return berr_setx(e, EINVAL,
                                         "linux.resources.memory.swap (%lld) must not be below memory.limit (%lld)",
                                         (long long) rs->mem_swap, (long long) rs->mem_limit);
                int64_t kmem = 0;
                bool use_hierarchy = true;
                GET_I64(mem, "linux.resources.memory", "kernel", kmem, rs->has_mem_kernel);
                GET_I64(mem, "linux.resources.memory", "kernelTCP", kmem, rs->has_mem_kernel);
                /* useHierarchy is always on in current kernels (runc ignores it too) */
                if ((r = json_get_bool(mem, "linux.resources.memory", "useHierarchy", &use_hierarchy, e)) < 0 ||
                    (r = json_get_bool(mem, "linux.resources.memory", "disableOOMKiller", &rs->mem_disable_oom_killer,
                                       e)) < 0)
                        return r;
                rs->has_mem_disable_oom_killer = json_is_boolean(json_object_get(mem, "disableOOMKiller"));
        }
        if (pids) {
                GET_I64(pids, "linux.resources.pids", "limit", rs->pids_limit, rs->has_pids_limit);
        }
        if (cpu) {
                int64_t v = 0;
                GET_I64(cpu, "linux.resources.cpu", "shares", v, rs->has_cpu_shares);
                rs->cpu_shares = (uint64_t) v;
                GET_I64(cpu, "linux.resources.cpu", "quota", rs->cpu_quota, rs->has_cpu_quota);
                v = 0;
                GET_I64(cpu, "linux.resources.cpu", "period", v, rs->has_cpu_period);
                rs->cpu_period = (uint64_t) v;
                GET_I64(cpu, "linux.resources.cpu", "realtimeRuntime", rs->cpu_rt_runtime, rs->has_cpu_rt_runtime);
                v = 0;
                GET_I64(cpu, "linux.resources.cpu", "realtimePeriod", v, rs->has_cpu_rt_period);
                if (v < 0)
                        return berr_setx(e, EINVAL, "linux.resources.cpu.realtimePeriod must not be negative");
                rs->cpu_rt_period = (uint64_t) v;
                if ((r = json_get_string(cpu, "linux.resources.cpu", "cpus", &rs->cpuset_cpus, e)) < 0 ||
                    (r = json_get_string(cpu, "linux.resources.cpu", "mems", &rs->cpuset_mems, e)) < 0)
                        return r;
        }
#undef GET_I64
        if (bio && (r = parse_blkio(bio, rs, e)) < 0)
                return r;
        for (size_t i = 0; i < json_array_size(rs->devices); i++) {
                struct spec_device_rule d;
                if ((r = spec_device_rule_get(rs->devices, i, &d, e)) < 0)
                        return r;
        }
        for (size_t i = 0; i < json_array_size(rs->hugepage_limits); i++) {
                struct spec_hugepage_limit l;
                if ((r = spec_hugepage_limit_get(rs->hugepage_limits, i, &l, e)) < 0)
                        return r;
        }
        if (rs->unified) {
                const char *k;
                json_t *v;
                json_object_foreach(rs->unified, k, v) {
                        if (!json_is_string(v))
                                return berr_setx(e, EINVAL, "linux.resources.unified[\"%s\"] must be a string", k);
                        /* a file in the container's own cgroup directory, nothing else */
                        if (!*k || strchr(k, '/') || k[0] == '.' || !strchr(k, '.'))
                                return berr_setx(e, EINVAL, "linux.resources.unified: \"%s\" is not a cgroup file name", k);
                }
        }
        return 0;
}

static int parse_devices(struct spec *s, json_t *devs, struct berr *e)
{
        s->devices = calloc(json_array_size(devs) + 1, sizeof(*s->devices));
        if (!s->devices)
                return -ENOMEM;
        size_t i;
        json_t *v;
        json_array_foreach(devs, i, v) {
                struct spec_device *d = &s->devices[i];
                const char *type = NULL;
                int r;
                if (!json_is_object(v))
                        return berr_setx(e, EINVAL, "linux.devices[%zu] must be an object", i);
                if ((r = json_get_string(v, "linux.devices", "path", &d->path, e)) < 0 ||
                    (r = json_get_string(v, "linux.devices", "type", &type, e)) < 0 ||
                    (r = json_get_int64(v, "linux.devices", "major", &d->major, e)) < 0 ||
                    (r = json_get_int64(v, "linux.devices", "minor", &d->minor, e)) < 0)
                        return r;
                if (!d->path || d->path[0] != '/')
                        return berr_setx(e, EINVAL, "linux.devices[%zu].path must be an absolute path", i);
                if (!type || strlen(type) != 1 || !strchr("cbup", type[0]))
                        return berr_setx(e, EINVAL, "linux.devices[%zu].type must be one of c, b, u, p", i);
                d->type = type[0];
#define OPT_U32(key, field, flag)                                                       \
        if (json_object_get(v, key) && !json_is_null(json_object_get(v, key))) {       \
                if ((r = json_get_uint32(v, "linux.devices", key, &d->field, e)) < 0)   \
                        return r;                                                       \
                d->flag = true;                                                         \
        }
                OPT_U32("fileMode", mode, has_mode);
                OPT_U32("uid", uid, has_uid);
                OPT_U32("gid", gid, has_gid);
#undef OPT_U32
                s->n_devices = i + 1;
        }
        return 0;
}

static int parse_linux(struct spec *s, json_t *lx, struct berr *e)
{
        json_t *nss = NULL, *res = NULL, *um = NULL, *gm = NULL, *devs = NULL;
        int r;

        if ((r = json_get_array(lx, "linux", "namespaces", &nss, e)) < 0 ||
            (r = json_get_object(lx, "linux", "resources", &res, e)) < 0 ||
            (r = json_get_array(lx, "linux", "uidMappings", &um, e)) < 0 ||
            (r = json_get_array(lx, "linux", "gidMappings", &gm, e)) < 0 ||
            (r = json_get_array(lx, "linux", "devices", &devs, e)) < 0 ||
            (r = json_get_string(lx, "linux", "cgroupsPath", &s->cgroups_path, e)) < 0 ||
            (r = json_get_string(lx, "linux", "rootfsPropagation", &s->rootfs_propagation, e)) < 0 ||
            (r = json_get_strv(lx, "linux", "maskedPaths", &s->masked_paths, e)) < 0 ||
            (r = json_get_strv(lx, "linux", "readonlyPaths", &s->readonly_paths, e)) < 0 ||
            (r = json_get_object(lx, "linux", "sysctl", &s->sysctl, e)) < 0)
                return r;

        if (nss) {
                s->namespaces = calloc(json_array_size(nss) + 1, sizeof(*s->namespaces));
                if (!s->namespaces)
                        return -ENOMEM;
                size_t i;
                json_t *v;
                json_array_foreach(nss, i, v) {
                        const char *type = NULL, *path = NULL;
                        if (!json_is_object(v) || json_get_string(v, "linux.namespaces", "type", &type, e) < 0 ||
                            json_get_string(v, "linux.namespaces", "path", &path, e) < 0 || !type)
                                return berr_setx(e, EINVAL, "linux.namespaces[%zu] needs a string type", i);
                        int flag = 0;
                        for (size_t k = 0; k < ARRAY_SIZE(ns_names); k++)
                                if (strcmp(type, ns_names[k].name) == 0)
                                        flag = ns_names[k].flag;
                        if (!flag)
                                return berr_setx(e, EINVAL, "linux.namespaces: unknown namespace type \"%s\"", type);
                        if (spec_namespace(s, flag))
                                return berr_setx(e, EINVAL, "linux.namespaces: duplicate namespace type \"%s\"", type);
                        if (path && !*path)
                                path = NULL;
                        if (path && path[0] != '/')
                                return berr_setx(e, EINVAL, "linux.namespaces: %s path \"%s\" must be absolute", type, path);
                        s->namespaces[s->n_namespaces++] = (struct spec_namespace) { .flag = flag, .path = path };
                }
        }
        json_t *pers = NULL;
        if ((r = json_get_object(lx, "linux", "personality", &pers, e)) < 0)
                return r;
        if (pers) {
                const char *domain = NULL;
                if ((r = json_get_string(pers, "linux.personality", "domain", &domain, e)) < 0)
                        return r;
                if (!domain || (strcmp(domain, "LINUX") != 0 && strcmp(domain, "LINUX32") != 0))
                        return berr_setx(e, EINVAL, "linux.personality.domain must be LINUX or LINUX32");
                json_t *flags = json_object_get(pers, "flags");
                if (flags && json_array_size(flags) > 0)
                        return berr_setx(e, EINVAL, "linux.personality.flags are not supported (the spec defines none)");
                s->has_personality = true;
                s->personality_linux32 = strcmp(domain, "LINUX32") == 0;
        }
        json_t *to = NULL;
        if ((r = json_get_object(lx, "linux", "timeOffsets", &to, e)) < 0)
                return r;
        for (int k = 0; to && k < 2; k++) {
                const char *clock = k == 0 ? "monotonic" : "boottime";
                json_t *o = NULL;
                char where[48];
                snprintf(where, sizeof(where), "linux.timeOffsets.%s", clock);
                if ((r = json_get_object(to, "linux.timeOffsets", clock, &o, e)) < 0)
                        return r;
                if (!o)
                        continue;
                int64_t secs = 0;
                uint32_t ns = 0;
                if ((r = json_get_int64(o, where, "secs", &secs, e)) < 0 ||
                    (r = json_get_uint32(o, where, "nanosecs", &ns, e)) < 0)
                        return r;
                if (ns >= 1000000000u)
                        return berr_setx(e, EINVAL, "%s.nanosecs must be below 1000000000", where);
                if (k == 0) {
                        s->time.has_monotonic = true;
                        s->time.monotonic_secs = secs;
                        s->time.monotonic_nsecs = ns;
                } else {
                        s->time.has_boottime = true;
                        s->time.boottime_secs = secs;
                        s->time.boottime_nsecs = ns;
                }
        }
        if (um && (r = parse_idmaps(um, "uidMappings", &s->uid_maps, &s->n_uid_maps, e)) < 0)
                return r;
        if (gm && (r = parse_idmaps(gm, "gidMappings", &s->gid_maps, &s->n_gid_maps, e)) < 0)
                return r;
        if (devs && (r = parse_devices(s, devs, e)) < 0)
                return r;
        if (res && (r = spec_resources_parse(res, &s->resources, e)) < 0)
                return r;
        s->resources.device_defaults = true;
        s->resources.linux_devices = s->devices;
        s->resources.n_linux_devices = s->n_devices;
        if (s->sysctl) {
                const char *k;
                json_t *v;
                json_object_foreach(s->sysctl, k, v) {
                        if (!json_is_string(v))
                                return berr_setx(e, EINVAL, "linux.sysctl[\"%s\"] must be a string", k);
                        if (strstr(k, "..") || strchr(k, '/') == k)
                                return berr_setx(e, EINVAL, "linux.sysctl: invalid key \"%s\"", k);
                }
        }
        return 0;
}

static int validate(struct spec *s, struct berr *e)
{
        const struct spec_namespace *user = spec_namespace(s, CLONE_NEWUSER);

        if (s->hostname && *s->hostname && !spec_namespace(s, CLONE_NEWUTS))
                return berr_setx(e, EINVAL, "hostname \"%s\" needs a private UTS namespace (linux.namespaces has no uts)",
                                 s->hostname);
        if (user && !user->path && (s->n_uid_maps == 0 || s->n_gid_maps == 0))
                return berr_setx(e, EINVAL, "a new user namespace needs linux.uidMappings and linux.gidMappings");
        if (!user && (s->n_uid_maps || s->n_gid_maps))
                return berr_setx(e, EINVAL, "linux.uidMappings/gidMappings are set but there is no user namespace");
        if ((s->time.has_monotonic || s->time.has_boottime) &&
            !(spec_namespace(s, CLONE_NEWTIME) && !spec_namespace(s, CLONE_NEWTIME)->path))
                return berr_setx(e, EINVAL, "linux.timeOffsets needs a new time namespace");
        if (!spec_namespace(s, CLONE_NEWNS))
                return berr_setx(e, EINVAL, "linux.namespaces must include a mount namespace");
        if (s->rootfs_propagation && *s->rootfs_propagation) {
                static const char *const ok[] = { "private", "rprivate", "slave", "rslave", "shared", "rshared",
                                                  "unbindable", "runbindable" };
                bool found = false;
                for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
                        found = found || strcmp(ok[i], s->rootfs_propagation) == 0;
                if (!found)
                        return berr_setx(e, EINVAL, "linux.rootfsPropagation \"%s\" is not a propagation mode",
                                         s->rootfs_propagation);
        }
        return 0;
}

int spec_parse(json_t *doc, struct spec **ret, struct berr *e)
{
        json_t *proc = NULL, *root = NULL, *mounts = NULL, *lx = NULL;
        int r;

        if (!json_is_object(doc))
                return berr_setx(e, EINVAL, "config.json must hold a JSON object");

        struct spec *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->doc = json_incref(doc);

        if ((r = json_get_string(doc, "", "ociVersion", &s->oci_version, e)) < 0 ||
            (r = json_get_object(doc, "", "process", &proc, e)) < 0 ||
            (r = json_get_object(doc, "", "root", &root, e)) < 0 ||
            (r = json_get_string(doc, "", "hostname", &s->hostname, e)) < 0 ||
            (r = json_get_array(doc, "", "mounts", &mounts, e)) < 0 ||
            (r = json_get_object(doc, "", "linux", &lx, e)) < 0 ||
            (r = json_get_object(doc, "", "annotations", &s->annotations, e)) < 0)
                goto fail;

        if (!s->oci_version) {
                r = berr_setx(e, EINVAL, "ociVersion is required");
                goto fail;
        }
        if (!root || json_get_string(root, "root", "path", &s->root_path, e) < 0 || !s->root_path || !*s->root_path) {
                r = berr_setx(e, EINVAL, "root.path is required and must be a string");
                goto fail;
        }
        if ((r = json_get_bool(root, "root", "readonly", &s->root_readonly, e)) < 0)
                goto fail;
        if (!proc) {
                r = berr_setx(e, EINVAL, "process is required");
                goto fail;
        }
        if (!lx) {
                r = berr_setx(e, EINVAL, "linux is required on Linux");
                goto fail;
        }
        if ((r = spec_process_parse(proc, &s->process, e)) < 0)
                goto fail;
        if (mounts && (r = parse_mounts(s, mounts, e)) < 0)
                goto fail;
        if ((r = parse_linux(s, lx, e)) < 0)
                goto fail;
        if ((r = validate(s, e)) < 0)
                goto fail;

        *ret = s;
        return 0;
fail:
        spec_free(s);
        return r;
}

int spec_load(const char *bundle, struct spec **ret, struct berr *e)
{
        _cleanup_free_ char *path = NULL;
        json_t *doc = NULL;

        if (asprintf(&path, "%s/config.json", bundle) < 0)
                return -ENOMEM;
        int r = json_load_path(path, SPEC_MAX_SIZE, &doc, e);
        if (r < 0)
                return r;
        r = spec_parse(doc, ret, e);
        json_decref(doc);
        if (r < 0)
                return berr_prefix(e, "invalid \"%s\"", path);
        return 0;
}

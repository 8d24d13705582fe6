/* Docker's container config + host config, merged with the image config,
 * as an OCI runtime spec (config.json), the way dockerd builds one:
 * Docker's default capabilities, mounts, masked and read-only paths and
 * device rules, then the user's settings on top. */
#include "oci-spec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "fs-util.h"
#include "log.h"
#include "seccomp-default.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static const char *const default_caps[] = {
        "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",     "CAP_MKNOD",
        "CAP_NET_RAW", "CAP_SETGID",      "CAP_SETUID",           "CAP_SETFCAP",    "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",     "CAP_AUDIT_WRITE", NULL,
};

static const char *const all_caps[] = {
        "CAP_CHOWN",          "CAP_DAC_OVERRIDE",   "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
        "CAP_FSETID",         "CAP_KILL",           "CAP_SETGID",          "CAP_SETUID",
        "CAP_SETPCAP",        "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",      "CAP_NET_RAW",        "CAP_IPC_LOCK",        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",     "CAP_SYS_RAWIO",      "CAP_SYS_CHROOT",      "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",      "CAP_SYS_ADMIN",      "CAP_SYS_BOOT",        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",   "CAP_SYS_TIME",       "CAP_SYS_TTY_CONFIG",  "CAP_MKNOD",
        "CAP_LEASE",          "CAP_AUDIT_WRITE",    "CAP_AUDIT_CONTROL",   "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",   "CAP_MAC_ADMIN",      "CAP_SYSLOG",          "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",  "CAP_AUDIT_READ",     "CAP_PERFMON",         "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE", NULL,
};

static const char *const masked_paths[] = {
        "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", NULL,
};

static const char *const readonly_paths[] = {
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
};

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t len, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, len, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

static json_t *strv_json(const char *const *v)
{
        json_t *a = json_array();
        for (; *v; v++)
                json_array_append_new(a, json_string(*v));
        return a;
}

/* "NET_ADMIN", "cap_net_admin", "ALL" → "CAP_NET_ADMIN" (or "ALL"). */
static void cap_name(const char *in, char *buf, size_t len)
{
        const char *s = strncasecmp(in, "CAP_", 4) ? in : in + 4;
        if (!strcasecmp(s, "ALL")) {
                snprintf(buf, len, "ALL");
                return;
        }
        snprintf(buf, len, "CAP_%s", s);
        for (char *p = buf; *p; p++)
                if (*p >= 'a' && *p <= 'z')
                        *p = (char) (*p - 'a' + 'A');
}

static bool cap_known(const char *name)
{
        for (const char *const *p = all_caps; *p; p++)
                if (!strcmp(*p, name))
                        return true;
        return false;
}

/* Every capability the engine itself may hand on (its bounding set), as
 * Docker gives a privileged container "all the capabilities the daemon
 * has". all_caps is in the kernel's numbering. */
static void append_all_caps(json_t *caps)
{
        for (int i = 0; all_caps[i]; i++)
                if (prctl(PR_CAPBSET_READ, i, 0, 0, 0) == 1)
                        json_array_append_new(caps, json_string(all_caps[i]));
}

static json_t *capabilities(json_t *hc, char *err, size_t errlen)
{
        json_t *caps = json_array();
        if (json_is_true(json_object_get(hc, "Privileged")))
                append_all_caps(caps);
        else
                for (const char *const *p = default_caps; *p; p++)
                        json_array_append_new(caps, json_string(*p));
        size_t i;
        json_t *v;
        json_t *add = json_object_get(hc, "CapAdd"), *drop = json_object_get(hc, "CapDrop");
        json_array_foreach(drop, i, v)
        {
                char n[64];
                cap_name(json_string_value(v) ?: "", n, sizeof(n));
                if (!strcmp(n, "ALL")) {
                        json_array_clear(caps);
                        continue;
                }
                if (!cap_known(n)) {
                        json_decref(caps);
                        fail(err, errlen, "unknown capability to drop: \"%s\"", json_string_value(v) ?: "");
                        return NULL;
                }
                for (size_t k = 0; k < json_array_size(caps); k++)
                        if (!strcmp(json_string_value(json_array_get(caps, k)), n)) {
                                json_array_remove(caps, k);
                                break;
                        }
        }
        json_array_foreach(add, i, v)
        {
                char n[64];
                cap_name(json_string_value(v) ?: "", n, sizeof(n));
                if (!strcmp(n, "ALL")) {
                        json_array_clear(caps);
                        append_all_caps(caps);
                        continue;
                }
                if (!cap_known(n)) {
                        json_decref(caps);
                        fail(err, errlen, "unknown capability: \"%s\"", json_string_value(v) ?: "");
                        return NULL;
                }
                bool have = false;
                for (size_t k = 0; k < json_array_size(caps); k++)
                        have = have || !strcmp(json_string_value(json_array_get(caps, k)), n);
                if (!have)
                        json_array_append_new(caps, json_string(n));
        }
        json_t *ret = json_pack("{s:O, s:O, s:O, s:[]}", "bounding", caps, "effective", caps, "permitted", caps,
                                "ambient");
        json_decref(caps);
        return ret;
}

/* Image env, then the container's over it (same key replaced). */
static json_t *merge_env(json_t *image_env, json_t *env, const char *hostname, bool tty)
{
        json_t *out = json_array();
        json_t *lists[2] = { image_env, env };
        for (int l = 0; l < 2; l++) {
                size_t i;
                json_t *v;
                json_array_foreach(lists[l], i, v)
                {
                        const char *s = json_string_value(v);
                        if (!s)
                                continue;
                        const char *eq = strchr(s, '=');
                        size_t klen = eq ? (size_t) (eq - s) : strlen(s);
                        bool replaced = false;
                        for (size_t k = 0; k < json_array_size(out); k++) {
                                const char *o = json_string_value(json_array_get(out, k));
                                if (!strncmp(o, s, klen) && (o[klen] == '=' || o[klen] == '\0')) {
                                        json_array_set_new(out, k, json_string(s));
                                        replaced = true;
                                        break;
                                }
                        }
                        if (!replaced)
                                json_array_append_new(out, json_string(s));
                }
        }
        bool has_path = false;
        for (size_t k = 0; k < json_array_size(out); k++)
                has_path = has_path || !strncmp(json_string_value(json_array_get(out, k)), "PATH=", 5);
        if (!has_path)
                json_array_insert_new(out, 0, json_string(DEFAULT_PATH));
        char h[300];
        snprintf(h, sizeof(h), "HOSTNAME=%s", hostname);
        json_array_insert_new(out, 1, json_string(h));
        if (tty) {
                bool has_term = false;
                for (size_t k = 0; k < json_array_size(out); k++)
                        has_term = has_term || !strncmp(json_string_value(json_array_get(out, k)), "TERM=", 5);
                if (!has_term)
                        json_array_append_new(out, json_string("TERM=xterm"));
        }
        return out;
}

int oci_command(json_t *config, json_t *image_config, json_t **ret_args, char *err, size_t errlen)
{
        json_t *ep = json_object_get(config, "Entrypoint"), *cmd = json_object_get(config, "Cmd");
        json_t *args = json_array();
        /* an entrypoint given at create replaces the image's, and then the
         * image's Cmd is not used either */
        if (json_is_array(ep)) {
                if (!(json_array_size(ep) == 1 && !strcmp(json_string_value(json_array_get(ep, 0)) ?: "", "")))
                        json_array_extend(args, ep);
        } else {
                json_t *iep = json_object_get(image_config, "Entrypoint");
                if (json_is_array(iep))
                        json_array_extend(args, iep);
                if (!json_is_array(cmd) || json_array_size(cmd) == 0)
                        cmd = json_object_get(image_config, "Cmd");
        }
        if (json_is_array(cmd))
                json_array_extend(args, cmd);
        if (json_array_size(args) == 0) {
                json_decref(args);
                return fail(err, errlen, "no command specified");
        }
        *ret_args = args;
        return 0;
}

/* "/host:/ctr[:opts]" or "name:/ctr[:opts]" → an OCI mount. */
static json_t *bind_mount(struct oci_spec_ctx *x, const char *spec, char *err, size_t errlen)
{
        _cleanup_free_ char *s = strdup(spec);
        if (!s)
                return NULL;
        char *src = s, *dst = strchr(s, ':');
        if (!dst) {
                fail(err, errlen, "invalid volume specification: '%s': anonymous volumes are not implemented", spec);
                return NULL;
        }
        *dst++ = '\0';
        char *opts = strchr(dst, ':');
        if (opts)
                *opts++ = '\0';
        if (dst[0] != '/') {
                fail(err, errlen, "invalid volume specification: '%s': the container path must be absolute", spec);
                return NULL;
        }
        _cleanup_free_ char *vol = NULL;
        if (src[0] != '/') {
                /* a named volume: a directory of the engine's */
                if (strchr(src, '/') || !strcmp(src, "..") || !strcmp(src, ".") || !*src) {
                        fail(err, errlen, "invalid volume name \"%s\"", src);
                        return NULL;
                }
                if (asprintf(&vol, "%s/engine/volumes/%s/_data", x->data_root, src) < 0)
                        return NULL;
                if (fs_mkdir_p(vol, 0755) < 0) {
                        fail(err, errlen, "creating volume %s: %s", src, strerror(errno));
                        return NULL;
                }
                src = vol;
        } else {
                struct stat st;
                /* as Docker: a missing host directory of -v is created */
                if (stat(src, &st) < 0 && fs_mkdir_p(src, 0755) < 0) {
                        fail(err, errlen, "creating the host directory %s: %s", src, strerror(errno));
                        return NULL;
                }
        }
        json_t *o = json_pack("[s, s]", "rbind", "rprivate");
        bool ro = false;
        for (char *tok = opts ? strtok(opts, ",") : NULL; tok; tok = strtok(NULL, ",")) {
                if (!strcmp(tok, "ro"))
                        ro = true;
                else if (!strcmp(tok, "rw") || !strcmp(tok, "z") || !strcmp(tok, "Z") || !strcmp(tok, "nocopy"))
                        ;
                else if (!strcmp(tok, "shared") || !strcmp(tok, "rshared") || !strcmp(tok, "slave") ||
                         !strcmp(tok, "rslave") || !strcmp(tok, "private") || !strcmp(tok, "rprivate")) {
                        json_array_set_new(o, 1, json_string(tok));
                } else {
                        json_decref(o);
                        fail(err, errlen, "invalid mode \"%s\" in volume specification '%s'", tok, spec);
                        return NULL;
                }
        }
        if (ro)
                json_array_append_new(o, json_string("ro"));
        return json_pack("{s:s, s:s, s:s, s:o}", "destination", dst, "type", "bind", "source", src, "options", o);
}

/* Whether the memory cgroup limits swap here (v1: memory.memsw.*, which
 * needs swap accounting; v2: memory.swap.max). Without it dockerd drops the
 * swap limit with a warning; so does the engine. */
static bool swap_limit_supported(void)
{
        struct stat st;
        return stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", &st) == 0 ||
               stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0;
}

static json_t *resources(json_t *hc, char *err, size_t errlen)
{
        json_t *res = json_object();
        json_t *devices = json_pack("[{s:b, s:s}]", "allow", 0, "access", "rwm");
        static const struct {
                const char *type;
                int major, minor;
        } dev[] = { { "c", 1, 3 }, { "c", 1, 5 }, { "c", 1, 7 }, { "c", 1, 8 },     { "c", 1, 9 },
                    { "c", 5, 0 }, { "c", 5, 1 }, { "c", 5, 2 }, { "c", 136, -1 }, { "c", 10, 200 } };
        bool privileged = json_is_true(json_object_get(hc, "Privileged"));
        if (privileged) {
                json_decref(devices);
                devices = json_pack("[{s:b, s:s}]", "allow", 1, "access", "rwm");
        } else {
                json_array_append_new(devices, json_pack("{s:b, s:s, s:s}", "allow", 1, "type", "c", "access", "m"));
                json_array_append_new(devices, json_pack("{s:b, s:s, s:s}", "allow", 1, "type", "b", "access", "m"));
                for (size_t i = 0; i < sizeof(dev) / sizeof(dev[0]); i++) {
                        json_t *d = json_pack("{s:b, s:s, s:i, s:s}", "allow", 1, "type", dev[i].type, "major",
                                              dev[i].major, "access", "rwm");
                        if (dev[i].minor >= 0)
                                json_object_set_new(d, "minor", json_integer(dev[i].minor));
                        json_array_append_new(devices, d);
                }
        }
        json_object_set_new(res, "devices", devices);

        json_int_t mem = json_integer_value(json_object_get(hc, "Memory"));
        json_int_t swap = json_integer_value(json_object_get(hc, "MemorySwap"));
        json_int_t reservation = json_integer_value(json_object_get(hc, "MemoryReservation"));
        if (mem < 0 || (mem > 0 && mem < 6 * 1024 * 1024)) {
                json_decref(res);
                fail(err, errlen, "Minimum memory limit allowed is 6MB");
                return NULL;
        }
        if (swap > 0 && mem > 0 && swap < mem) {
                json_decref(res);
                fail(err, errlen, "Minimum memoryswap limit should be larger than memory limit, see usage");
                return NULL;
        }
        if (swap > 0 && mem == 0) {
                json_decref(res);
                fail(err, errlen, "You should always set the Memory limit when using Memoryswap limit, see usage");
                return NULL;
        }
        json_t *m = json_object();
        if (mem > 0)
                json_object_set_new(m, "limit", json_integer(mem));
        if (!swap_limit_supported())
                log_debug("engine: no swap accounting in the memory cgroup: the swap limit is dropped");
        else if (swap != 0 && mem > 0)
                json_object_set_new(m, "swap", json_integer(swap));
        else if (mem > 0)
                json_object_set_new(m, "swap", json_integer(2 * mem)); /* Docker's default: as much swap again */
        if (reservation > 0)
                json_object_set_new(m, "reservation", json_integer(reservation));
        if (json_object_size(m))
                json_object_set_new(res, "memory", m);
        else
                json_decref(m);

        json_t *cpu = json_object();
        json_int_t shares = json_integer_value(json_object_get(hc, "CpuShares"));
        json_int_t nano = json_integer_value(json_object_get(hc, "NanoCpus"));
        json_int_t quota = json_integer_value(json_object_get(hc, "CpuQuota"));
        json_int_t period = json_integer_value(json_object_get(hc, "CpuPeriod"));
        if (nano && (quota || period)) {
                json_decref(cpu);
                json_decref(res);
                fail(err, errlen, "Conflicting options: Nano CPUs and CPU Period cannot both be set");
                return NULL;
        }
        if (nano < 0) {
                json_decref(cpu);
                json_decref(res);
                fail(err, errlen, "Range of CPUs is from 0.01 to the number of CPUs available");
                return NULL;
        }
        if (shares > 0)
                json_object_set_new(cpu, "shares", json_integer(shares));
        if (nano > 0) {
                json_object_set_new(cpu, "period", json_integer(100000));
                json_object_set_new(cpu, "quota", json_integer(nano * 100000 / 1000000000));
        }
        if (quota)
                json_object_set_new(cpu, "quota", json_integer(quota));
        if (period)
                json_object_set_new(cpu, "period", json_integer(period));
        const char *cpus = json_string_value(json_object_get(hc, "CpusetCpus"));
        const char *mems = json_string_value(json_object_get(hc, "CpusetMems"));
        if (cpus && *cpus)
                json_object_set_new(cpu, "cpus", json_string(cpus));
        if (mems && *mems)
                json_object_set_new(cpu, "mems", json_string(mems));
        if (json_object_size(cpu))
                json_object_set_new(res, "cpu", cpu);
        else
                json_decref(cpu);

        json_int_t pids = json_integer_value(json_object_get(hc, "PidsLimit"));
        if (pids > 0)
                json_object_set_new(res, "pids", json_pack("{s:I}", "limit", pids));
        return res;
}

static json_t *rlimits(json_t *hc, char *err, size_t errlen)
{
        json_t *out = json_array();
        size_t i;
        json_t *u;
        json_array_foreach(json_object_get(hc, "Ulimits"), i, u)
        {
                const char *name = json_string_value(json_object_get(u, "Name"));
                if (!name || !*name) {
                        json_decref(out);
                        fail(err, errlen, "invalid ulimit: no name");
                        return NULL;
                }
                char type[64];
                snprintf(type, sizeof(type), "RLIMIT_%s", name);
                for (char *p = type; *p; p++)
                        if (*p >= 'a' && *p <= 'z')
                                *p = (char) (*p - 'a' + 'A');
                json_array_append_new(out, json_pack("{s:s, s:I, s:I}", "type", type, "hard",
                                                     json_integer_value(json_object_get(u, "Hard")), "soft",
                                                     json_integer_value(json_object_get(u, "Soft"))));
        }
        return out;
}

int oci_spec_build(struct oci_spec_ctx *x, json_t *config, json_t *hc, json_t *image_config, json_t **ret,
                   char *err, size_t errlen)
{
        json_t *args = NULL;
        int r = oci_command(config, image_config, &args, err, errlen);
        if (r < 0)
                return r;
        if (x->init_path) {
                json_array_insert_new(args, 0, json_string("--"));
                json_array_insert_new(args, 0, json_string("/sbin/docker-init"));
        }
        bool tty = json_is_true(json_object_get(config, "Tty"));
        const char *wd = json_string_value(json_object_get(config, "WorkingDir"));
        if (!wd || !*wd)
                wd = json_string_value(json_object_get(image_config, "WorkingDir"));
        if (!wd || !*wd)
                wd = "/";
        if (wd[0] != '/') {
                json_decref(args);
                return fail(err, errlen, "the working directory '%s' is invalid, it needs to be an absolute path",
                            wd);
        }

        json_t *caps = capabilities(hc, err, errlen);
        json_t *res = caps ? resources(hc, err, errlen) : NULL;
        json_t *rl = res ? rlimits(hc, err, errlen) : NULL;
        if (!rl) {
                json_decref(args);
                json_decref(caps);
                json_decref(res);
                return -EINVAL;
        }

        bool nnp = false, seccomp_unconfined = false;
        const char *seccomp_profile = NULL; /* the profile's JSON text: the docker CLI reads the file */
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(hc, "SecurityOpt"), i, v)
        {
                const char *o = json_string_value(v) ?: "";
                if (!strcmp(o, "no-new-privileges") || !strcmp(o, "no-new-privileges:true") ||
                    !strcmp(o, "no-new-privileges=true"))
                        nnp = true;
                else if (!strcmp(o, "no-new-privileges:false") || !strcmp(o, "no-new-privileges=false"))
                        nnp = false;
                else if (!strcmp(o, "seccomp=unconfined") || !strcmp(o, "seccomp:unconfined"))
                        seccomp_unconfined = true;
                else if (!strncmp(o, "seccomp=", 8) || !strncmp(o, "seccomp:", 8))
                        seccomp_profile = o + 8;
                else if (!strncmp(o, "label", 5) || !strncmp(o, "apparmor", 8))
                        ; /* no LSM is configured for berth's containers */
                else {
                        json_decref(args);
                        json_decref(caps);
                        json_decref(res);
                        json_decref(rl);
                        return fail(err, errlen, "invalid --security-opt: \"%s\" (supported: no-new-privileges, "
                                                 "seccomp=unconfined, seccomp=<profile>)",
                                    o);
                }
        }

        json_t *env = merge_env(json_object_get(image_config, "Env"), json_object_get(config, "Env"), x->hostname,
                                tty);
        json_t *process = json_pack("{s:b, s:{s:i, s:i}, s:o, s:o, s:s, s:o, s:o, s:b, s:i}", "terminal", tty,
                                    "user", "uid", x->uid, "gid", x->gid, "args", args, "env", env, "cwd", wd,
                                    "capabilities", caps, "rlimits", rl, "noNewPrivileges", nnp, "oomScoreAdj", 0);
        if (x->additional_gids && json_array_size(x->additional_gids))
                json_object_set(json_object_get(process, "user"), "additionalGids", x->additional_gids);
        if (tty)
                json_object_set_new(process, "consoleSize", json_pack("{s:i, s:i}", "height", 24, "width", 80));

        bool privileged = json_is_true(json_object_get(hc, "Privileged"));
        json_t *mounts = json_pack(
                "[{s:s, s:s, s:s, s:[sss]},"
                " {s:s, s:s, s:s, s:[ssss]},"
                " {s:s, s:s, s:s, s:[ssssss]},"
                " {s:s, s:s, s:s, s:[ssss]},"
                " {s:s, s:s, s:s, s:[ssss]},"
                " {s:s, s:s, s:s, s:[sss]},"
                " {s:s, s:s, s:s, s:[sssss]}]",
                "destination", "/proc", "type", "proc", "source", "proc", "options", "nosuid", "noexec", "nodev",
                "destination", "/dev", "type", "tmpfs", "source", "tmpfs", "options", "nosuid", "strictatime",
                "mode=755", "size=65536k", "destination", "/dev/pts", "type", "devpts", "source", "devpts", "options",
                "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5", "destination", "/sys",
                "type", "sysfs", "source", "sysfs", "options", "nosuid", "noexec", "nodev", privileged ? "rw" : "ro",
                "destination", "/sys/fs/cgroup", "type", "cgroup", "source", "cgroup", "options", "nosuid", "noexec",
                "nodev", privileged ? "rw" : "ro", "destination", "/dev/mqueue", "type", "mqueue", "source",
                "mqueue", "options", "nosuid", "noexec", "nodev", "destination", "/dev/shm", "type", "tmpfs",
                "source", "shm", "options", "nosuid", "noexec", "nodev", "mode=1777", "size=65536k");
        /* the engine's generated files */
        const char *files[][2] = { { "/etc/resolv.conf", x->resolv_conf },
                                   { "/etc/hostname", x->hostname_file },
                                   { "/etc/hosts", x->hosts_file } };
        for (size_t k = 0; k < 3; k++)
                if (files[k][1])
                        json_array_append_new(mounts, json_pack("{s:s, s:s, s:s, s:[ss]}", "destination", files[k][0],
                                                                "type", "bind", "source", files[k][1], "options",
                                                                "rbind", "rprivate"));
        if (x->init_path)
                json_array_append_new(mounts, json_pack("{s:s, s:s, s:s, s:[sss]}", "destination", "/sbin/docker-init",
                                                        "type", "bind", "source", x->init_path, "options", "rbind",
                                                        "rprivate", "ro"));
        json_array_foreach(json_object_get(hc, "Binds"), i, v)
        {
                json_t *m = bind_mount(x, json_string_value(v) ?: "", err, errlen);
                if (!m) {
                        json_decref(mounts);
                        json_decref(process);
                        json_decref(res);
                        return -EINVAL;
                }
                json_array_append_new(mounts, m);
        }
        const char *k;
        json_object_foreach(json_object_get(hc, "Tmpfs"), k, v)
        {
                if (k[0] != '/') {
                        json_decref(mounts);
                        json_decref(process);
                        json_decref(res);
                        return fail(err, errlen, "invalid tmpfs mount point \"%s\": an absolute path is expected", k);
                }
                json_t *o = json_pack("[sss]", "noexec", "nosuid", "nodev");
                _cleanup_free_ char *opts = strdup(json_string_value(v) ?: "");
                for (char *t = opts ? strtok(opts, ",") : NULL; t; t = strtok(NULL, ","))
                        json_array_append_new(o, json_string(t));
                json_array_append_new(mounts, json_pack("{s:s, s:s, s:s, s:o}", "destination", k, "type", "tmpfs",
                                                        "source", "tmpfs", "options", o));
        }

        json_t *ns = json_pack("[{s:s}, {s:s}, {s:s}, {s:s}]", "type", "mount", "type", "uts", "type", "pid", "type",
                               "ipc");
        if (x->netns_path)
                json_array_append_new(ns, json_pack("{s:s, s:s}", "type", "network", "path", x->netns_path));
        else if (!x->host_network)
                json_array_append_new(ns, json_pack("{s:s}", "type", "network"));

        /* as dockerd: privileged containers and seccomp=unconfined run
         * without a filter; the profile's capability entries follow the
         * bounding set */
        json_t *seccomp = NULL;
        if (!privileged && !seccomp_unconfined) {
                json_t *bounding = json_object_get(caps, "bounding");
                if (seccomp_profile && strcmp(seccomp_profile, "builtin"))
                        r = oci_seccomp_from_docker_profile(seccomp_profile, bounding, &seccomp, err, errlen);
                else if (!(seccomp = oci_seccomp_default(bounding)))
                        r = fail(err, errlen, "building the seccomp profile");
                if (r < 0) {
                        json_decref(ns);
                        json_decref(mounts);
                        json_decref(process);
                        json_decref(res);
                        return r;
                }
        }

        char cgpath[128];
        snprintf(cgpath, sizeof(cgpath), "/berth/%s", x->id);
        json_t *linux_ = json_pack("{s:o, s:o, s:s}", "namespaces", ns, "resources", res, "cgroupsPath", cgpath);
        if (seccomp)
                json_object_set_new(linux_, "seccomp", seccomp);
        if (!privileged) {
                json_object_set_new(linux_, "maskedPaths", strv_json(masked_paths));
                json_object_set_new(linux_, "readonlyPaths", strv_json(readonly_paths));
        }

        json_t *spec = json_pack("{s:s, s:o, s:{s:s, s:b}, s:s, s:o, s:o}", "ociVersion", "1.0.2", "process", process,
                                 "root", "path", "rootfs", "readonly",
                                 json_is_true(json_object_get(hc, "ReadonlyRootfs")), "hostname", x->hostname,
                                 "mounts", mounts, "linux", linux_);
        if (!spec)
                return fail(err, errlen, "building the runtime spec");
        if (x->user_name)
                json_object_set_new(spec, "annotations", json_pack("{s:s}", "org.berth.user", x->user_name));
        *ret = spec;
        return 0;
}

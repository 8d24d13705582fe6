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
#include "volumes.h"

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

/* ---- the user's mounts: Binds, Mounts, Tmpfs, and volumes ---- */

/* What the user's mounts become: OCI mounts, inspect's Mounts and the
 * volumes the engine creates or references. */
struct user_mounts {
        json_t *oci;
        json_t *inspect;
        json_t *volumes;
};

/* A destination without trailing slashes; "/" and relative paths are
 * refused. */
static int clean_dest(const char *in, const char *type, char *buf, size_t len, char *err, size_t errlen)
{
        if (!in || !*in)
                return fail(err, errlen, "invalid mount config for type \"%s\": field Target must not be empty", type);
        if (in[0] != '/')
                return fail(err, errlen,
                            "invalid mount config for type \"%s\": invalid mount path: '%s' mount path must be absolute",
                            type, in);
        snprintf(buf, len, "%s", in);
        size_t n = strlen(buf);
        while (n > 1 && buf[n - 1] == '/')
                buf[--n] = '\0';
        if (!strcmp(buf, "/"))
                return fail(err, errlen, "invalid specification: destination can't be '/'");
        return 0;
}

static bool dest_taken(struct user_mounts *u, json_t *hc, const char *dst)
{
        size_t i;
        json_t *m;
        json_array_foreach(u->inspect, i, m) if (!strcmp(json_string_value(json_object_get(m, "Destination")), dst))
                return true;
        return json_object_get(json_object_get(hc, "Tmpfs"), dst) != NULL;
}

static bool is_propagation(const char *s)
{
        return !strcmp(s, "shared") || !strcmp(s, "rshared") || !strcmp(s, "slave") || !strcmp(s, "rslave") ||
               !strcmp(s, "private") || !strcmp(s, "rprivate");
}

static void add_volume(struct oci_spec_ctx *x, struct user_mounts *u, const char *name, bool anonymous,
                       const char *dst, bool ro, bool copy, const char *mode, json_t *labels, json_t *opts)
{
        _cleanup_free_ char *mp = vol_mountpoint(x->data_root, name);
        json_t *o = json_pack("[s, s]", "rbind", "rprivate");
        if (ro)
                json_array_append_new(o, json_string("ro"));
        json_array_append_new(u->oci, json_pack("{s:s, s:s, s:s, s:o}", "destination", dst, "type", "bind", "source",
                                                mp ? mp : "", "options", o));
        json_array_append_new(u->inspect, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s}", "Type", "volume",
                                                     "Name", name, "Source", mp ? mp : "", "Destination", dst,
                                                     "Driver", "local", "Mode", mode, "RW", !ro, "Propagation", ""));
        json_array_append_new(u->volumes, json_pack("{s:s, s:b, s:O?, s:O?, s:s, s:b}", "Name", name, "Anonymous",
                                                    anonymous, "Labels", labels, "Options", opts, "Destination", dst,
                                                    "Copy", copy));
}

static void add_bind(struct user_mounts *u, const char *src, const char *dst, bool ro, bool recursive,
                     const char *propagation, const char *mode)
{
        json_t *o = json_pack("[s, s]", recursive ? "rbind" : "bind", propagation);
        if (ro)
                json_array_append_new(o, json_string("ro"));
        json_array_append_new(u->oci, json_pack("{s:s, s:s, s:s, s:o}", "destination", dst, "type", "bind", "source",
                                                src, "options", o));
        json_array_append_new(u->inspect, json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "Type", "bind", "Source", src,
                                                    "Destination", dst, "Mode", mode, "RW", !ro, "Propagation",
                                                    propagation));
}

static int volume_name_ok(const char *name, char *err, size_t errlen)
{
        if (vol_name_valid(name))
                return 0;
        char m[512];
        vol_name_error(name, m, sizeof(m));
        return fail(err, errlen, "create %s: %s", name, m);
}

/* A Binds entry: "/ctr" (an anonymous volume), "name:/ctr[:mode]" (a
 * named volume) or "/host:/ctr[:mode]" (a bind), as dockerd parses them. */
static int bind_entry(struct oci_spec_ctx *x, struct user_mounts *u, json_t *hc, const char *spec, char *err,
                      size_t errlen)
{
        _cleanup_free_ char *s = strdup(spec);
        if (!s)
                return -ENOMEM;
        char *parts[4] = { NULL };
        size_t n = 0;
        for (char *p = s, *c; p && n < 4; p = c) {
                c = strchr(p, ':');
                if (c)
                        *c++ = '\0';
                parts[n++] = p;
        }
        if (n == 0 || n > 3 || strchr(spec, ':') == spec || (n == 3 && strchr(parts[2], ':')))
                return fail(err, errlen, "invalid volume specification: '%s'", spec);
        const char *src = n == 1 ? "" : parts[0], *mode = n == 3 ? parts[2] : "";
        char dst[4096];
        if (clean_dest(n == 1 ? parts[0] : parts[1], *src == '/' ? "bind" : "volume", dst, sizeof(dst), err,
                       errlen) < 0)
                return -EINVAL;
        bool ro = false, nocopy = false;
        const char *propagation = "rprivate";
        _cleanup_free_ char *m = strdup(mode);
        char *save = NULL;
        for (char *tok = m ? strtok_r(m, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save)) {
                if (!strcmp(tok, "ro"))
                        ro = true;
                else if (!strcmp(tok, "nocopy"))
                        nocopy = true;
                else if (is_propagation(tok))
                        propagation = tok;
                else if (strcmp(tok, "rw") && strcmp(tok, "z") && strcmp(tok, "Z"))
                        return fail(err, errlen, "invalid mode: %s", mode);
        }
        if (dest_taken(u, hc, dst))
                return fail(err, errlen, "Duplicate mount point: %s", dst);
        if (src[0] == '/') {
                struct stat st;
                /* as Docker: a missing host directory of -v is created */
                if (stat(src, &st) < 0 && fs_mkdir_p(src, 0755) < 0)
                        return fail(err, errlen, "creating the host directory %s: %s", src, strerror(errno));
                add_bind(u, src, dst, ro, true, propagation, mode);
                return 0;
        }
        char gen[65];
        if (!*src) {
                int r = vol_generate_name(gen, sizeof(gen));
                if (r < 0)
                        return r;
        } else if (volume_name_ok(src, err, errlen) < 0) {
                return -EINVAL;
        }
        add_volume(x, u, *src ? src : gen, !*src, dst, ro, !nocopy, *mode ? mode : "z", NULL, NULL);
        return 0;
}

/* A HostConfig.Mounts entry (--mount): bind, volume or tmpfs. */
static int mount_entry(struct oci_spec_ctx *x, struct user_mounts *u, json_t *hc, json_t *m, char *err, size_t errlen)
{
        if (!json_is_object(m))
                return fail(err, errlen, "invalid mount config: a Mounts entry must be an object");
        const char *type = json_string_value(json_object_get(m, "Type")) ?: "";
        const char *src = json_string_value(json_object_get(m, "Source")) ?: "";
        bool ro = json_is_true(json_object_get(m, "ReadOnly"));
        json_t *bo = json_object_get(m, "BindOptions"), *vo = json_object_get(m, "VolumeOptions");
        json_t *to = json_object_get(m, "TmpfsOptions");
        if (strcmp(type, "bind") && strcmp(type, "volume") && strcmp(type, "tmpfs"))
                return fail(err, errlen, "invalid mount config for type \"%s\": mount type unknown", type);
        char dst[4096];
        if (clean_dest(json_string_value(json_object_get(m, "Target")), type, dst, sizeof(dst), err, errlen) < 0)
                return -EINVAL;
        if (dest_taken(u, hc, dst))
                return fail(err, errlen, "Duplicate mount point: %s", dst);
        if (json_is_object(bo) && strcmp(type, "bind"))
                return fail(err, errlen, "invalid mount config for type \"%s\": BindOptions must not be specified", type);
        if (json_is_object(vo) && strcmp(type, "volume"))
                return fail(err, errlen, "invalid mount config for type \"%s\": VolumeOptions must not be specified",
                            type);
        if (json_is_object(to) && strcmp(type, "tmpfs"))
                return fail(err, errlen, "invalid mount config for type \"%s\": TmpfsOptions must not be specified",
                            type);
        if (!strcmp(type, "bind")) {
                struct stat st;
                if (!*src)
                        return fail(err, errlen, "invalid mount config for type \"bind\": field Source must not be empty");
                if (src[0] != '/')
                        return fail(err, errlen,
                                    "invalid mount config for type \"bind\": invalid mount path: '%s' mount path must "
                                    "be absolute",
                                    src);
                if (stat(src, &st) < 0)
                        return fail(err, errlen,
                                    "invalid mount config for type \"bind\": bind source path does not exist: %s", src);
                const char *prop = json_string_value(json_object_get(bo, "Propagation"));
                if (prop && *prop && !is_propagation(prop))
                        return fail(err, errlen, "invalid mount config for type \"bind\": invalid propagation \"%s\"",
                                    prop);
                add_bind(u, src, dst, ro, !json_is_true(json_object_get(bo, "NonRecursive")),
                         prop && *prop ? prop : "rprivate", "");
                return 0;
        }
        if (!strcmp(type, "tmpfs")) {
                if (*src)
                        return fail(err, errlen, "invalid mount config for type \"tmpfs\": Source must not be specified");
                json_t *o = json_pack("[sss]", "noexec", "nosuid", "nodev");
                json_int_t size = json_integer_value(json_object_get(to, "SizeBytes"));
                json_int_t mode = json_integer_value(json_object_get(to, "Mode"));
                char b[64];
                if (size > 0) {
                        snprintf(b, sizeof(b), "size=%lldk", (long long) (size + 1023) / 1024);
                        json_array_append_new(o, json_string(b));
                }
                if (mode > 0) {
                        snprintf(b, sizeof(b), "mode=%llo", (unsigned long long) mode & 07777);
                        json_array_append_new(o, json_string(b));
                }
                if (ro)
                        json_array_append_new(o, json_string("ro"));
                json_array_append_new(u->oci, json_pack("{s:s, s:s, s:s, s:o}", "destination", dst, "type", "tmpfs",
                                                        "source", "tmpfs", "options", o));
                json_array_append_new(u->inspect, json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "Type", "tmpfs",
                                                            "Source", "", "Destination", dst, "Mode", "", "RW", !ro,
                                                            "Propagation", ""));
                return 0;
        }
        json_t *dc = json_object_get(vo, "DriverConfig");
        const char *driver = json_string_value(json_object_get(dc, "Name")) ?: "";
        if (*driver && strcmp(driver, "local"))
                return fail(err, errlen, "error looking up volume plugin %s: plugin \"%s\" not found", driver, driver);
        json_t *opts = json_object_get(dc, "Options");
        char m2[512];
        if (vol_check_options(opts, m2, sizeof(m2)) < 0)
                return fail(err, errlen, "create %s: %s", *src ? src : "(anonymous)", m2);
        json_t *labels = json_object_get(vo, "Labels");
        char gen[65];
        if (!*src) {
                int r = vol_generate_name(gen, sizeof(gen));
                if (r < 0)
                        return r;
        } else if (volume_name_ok(src, err, errlen) < 0) {
                return -EINVAL;
        }
        add_volume(x, u, *src ? src : gen, !*src, dst, ro, !json_is_true(json_object_get(vo, "NoCopy")), "",
                   json_is_object(labels) ? labels : NULL, json_is_object(opts) ? opts : NULL);
        return 0;
}

/* Depth of a destination: parents are mounted before their children. */
static size_t dest_depth(json_t *m)
{
        size_t n = 0;
        for (const char *p = json_string_value(json_object_get(m, "destination")) ?: ""; *p; p++)
                n += *p == '/';
        return n;
}

static int build_user_mounts(struct oci_spec_ctx *x, json_t *config, json_t *hc, json_t *image_config,
                             struct user_mounts *u, char *err, size_t errlen)
{
        size_t i;
        json_t *v;
        int r;
        const char *vd = json_string_value(json_object_get(hc, "VolumeDriver")) ?: "";
        if (*vd && strcmp(vd, "local"))
                return fail(err, errlen, "error looking up volume plugin %s: plugin \"%s\" not found", vd, vd);
        if (json_array_size(json_object_get(hc, "VolumesFrom")))
                return fail(err, errlen, "engine: --volumes-from is not supported; name the volumes with -v instead");
        json_array_foreach(json_object_get(hc, "Binds"), i, v)
        {
                if (!json_is_string(v))
                        return fail(err, errlen, "invalid volume specification: Binds must be strings");
                if ((r = bind_entry(x, u, hc, json_string_value(v), err, errlen)) < 0)
                        return r;
        }
        json_array_foreach(json_object_get(hc, "Mounts"), i, v) if ((r = mount_entry(x, u, hc, v, err, errlen)) < 0)
                return r;
        /* the image's VOLUMEs and -v /path (Config.Volumes): an anonymous
         * volume each, unless something is mounted there already */
        json_t *lists[2] = { json_object_get(config, "Volumes"), json_object_get(image_config, "Volumes") };
        for (size_t l = 0; l < 2; l++) {
                const char *k;
                json_object_foreach(lists[l], k, v)
                {
                        char dst[4096], gen[65];
                        if (clean_dest(k, "volume", dst, sizeof(dst), err, errlen) < 0)
                                return -EINVAL;
                        if (dest_taken(u, hc, dst))
                                continue;
                        if ((r = vol_generate_name(gen, sizeof(gen))) < 0)
                                return r;
                        add_volume(x, u, gen, true, dst, false, true, "", NULL, NULL);
                }
        }
        const char *k;
        json_object_foreach(json_object_get(hc, "Tmpfs"), k, v)
        {
                if (k[0] != '/')
                        return fail(err, errlen, "invalid tmpfs mount point \"%s\": an absolute path is expected", k);
                json_t *o = json_pack("[sss]", "noexec", "nosuid", "nodev");
                _cleanup_free_ char *opts = strdup(json_string_value(v) ?: "");
                char *save = NULL;
                for (char *t = opts ? strtok_r(opts, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save))
                        json_array_append_new(o, json_string(t));
                json_array_append_new(u->oci, json_pack("{s:s, s:s, s:s, s:o}", "destination", k, "type", "tmpfs",
                                                        "source", "tmpfs", "options", o));
        }
        /* stable insertion sort by depth, as dockerd orders them */
        for (size_t a = 1; a < json_array_size(u->oci); a++) {
                json_t *m = json_incref(json_array_get(u->oci, a));
                size_t b = a;
                while (b > 0 && dest_depth(json_array_get(u->oci, b - 1)) > dest_depth(m)) {
                        json_array_set(u->oci, b, json_array_get(u->oci, b - 1));
                        b--;
                }
                json_array_set_new(u->oci, b, m);
        }
        return 0;
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

json_t *oci_resources(json_t *hc, char *err, size_t errlen)
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
        json_t *res = caps ? oci_resources(hc, err, errlen) : NULL;
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
        struct user_mounts um = { json_array(), json_array(), json_array() };
        r = build_user_mounts(x, config, hc, image_config, &um, err, errlen);
        json_array_extend(mounts, um.oci);
        json_decref(um.oci);
        if (r < 0) {
                json_decref(um.inspect);
                json_decref(um.volumes);
                json_decref(mounts);
                json_decref(process);
                json_decref(res);
                return r == -EINVAL ? r : fail(err, errlen, "engine: the container's mounts: %s", strerror(-r));
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
                        json_decref(um.inspect);
                        json_decref(um.volumes);
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
        if (!spec) {
                json_decref(um.inspect);
                json_decref(um.volumes);
                return fail(err, errlen, "building the runtime spec");
        }
        if (x->user_name)
                json_object_set_new(spec, "annotations", json_pack("{s:s}", "org.berth.user", x->user_name));
        x->mounts_out = um.inspect;
        x->volumes_out = um.volumes;
        *ret = spec;
        return 0;
}

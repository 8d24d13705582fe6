/* linux.seccomp → a libseccomp filter.
 *
 * Everything is parsed and the whole filter is built in the parent, before
 * the container's process exists, so that a bad profile fails `create` with
 * a message naming the field and nothing to clean up in the container. The
 * child only loads the BPF program. libseccomp opens no file descriptors for
 * any of this (it would only for SCMP_ACT_NOTIFY, which is refused).
 *
 * Building a profile the size of Docker's default (~400 syscalls on three
 * architectures) costs libseccomp ~5 ms, a third of a `create`, and every
 * container of an engine has the same one. So the BPF program, once
 * generated, is kept in <root>/.seccomp/<hash> together with the whole
 * key it was made from (the profile's JSON with sorted keys, libseccomp's
 * version and API level, the kernel release, SECCOMP_CACHE_FORMAT); a
 * later create whose key is byte for byte the same loads that program
 * instead (crun has the same cache). Filters with SCMP_ACT_NOTIFY are
 * never cached: their listener fd comes from libseccomp's own load. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cleanup.h"
#include "console.h"
#include "fs-util.h"
#include "log.h"
#include "seccomp.h"

/* Syscalls take at most six arguments. */
#define SECCOMP_MAX_ARGS 6
/* Above this many entries a binary-tree filter is faster (runc's threshold;
 * libseccomp <= 2.5.4 misbehaves with the tree and no rules at all). */
#define SECCOMP_TREE_THRESHOLD 32
#define SECCOMP_ERRNO_MAX 0xffff
/* Bump whenever build() would make another program from the same profile. */
#define SECCOMP_CACHE_FORMAT "ocirun-seccomp-cache 1"
#define SECCOMP_CACHE_DIR ".seccomp"
#define SECCOMP_PROG_MAX (BPF_MAXINSNS * 8)

struct seccomp_ctx {
        scmp_filter_ctx filter;          /* NULL when the program came from the cache */
        struct sock_filter *prog;        /* the program (NULL: SCMP_ACT_NOTIFY, loaded by libseccomp) */
        size_t prog_len;                 /* instructions */
        unsigned int flags;              /* SECCOMP_FILTER_FLAG_* */
        char *listener_path;   /* with SCMP_ACT_NOTIFY: the agent's socket */
        char *listener_metadata;
};

struct action_name {
        const char *name;
        uint32_t action;   /* errno / trace data left 0 */
        bool takes_errno;  /* the only actions errnoRet may go with */
};

static const struct action_name actions[] = {
        { "SCMP_ACT_KILL", SCMP_ACT_KILL_THREAD, false },
        { "SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD, false },
        { "SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS, false },
        { "SCMP_ACT_TRAP", SCMP_ACT_TRAP, false },
        { "SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0), true },
        { "SCMP_ACT_TRACE", SCMP_ACT_TRACE(0), true },
        { "SCMP_ACT_ALLOW", SCMP_ACT_ALLOW, false },
        { "SCMP_ACT_LOG", SCMP_ACT_LOG, false },
        { "SCMP_ACT_NOTIFY", SCMP_ACT_NOTIFY, false },
};

static const struct {
        const char *name;
        enum scmp_compare op;
} operators[] = {
        { "SCMP_CMP_NE", SCMP_CMP_NE },
        { "SCMP_CMP_LT", SCMP_CMP_LT },
        { "SCMP_CMP_LE", SCMP_CMP_LE },
        { "SCMP_CMP_EQ", SCMP_CMP_EQ },
        { "SCMP_CMP_GE", SCMP_CMP_GE },
        { "SCMP_CMP_GT", SCMP_CMP_GT },
        { "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
};

/* A member that is absent or JSON null counts as not set, as in json-util. */
static json_t *member(const json_t *o, const char *key)
{
        json_t *v = json_object_get(o, key);
        return json_is_null(v) ? NULL : v;
}

static int get_required_string(const json_t *o, const char *where, const char *key, const char **ret,
                               struct berr *e)
{
        json_t *v = member(o, key);
        if (!v)
                return berr_setx(e, EINVAL, "%s.%s is required", where, key);
        if (!json_is_string(v))
                return berr_setx(e, EINVAL, "%s.%s must be a string", where, key);
        *ret = json_string_value(v);
        return 0;
}

/* Integer in [0, max]; *ret_set tells whether the member was there. */
static int get_uint(const json_t *o, const char *where, const char *key, uint64_t max, uint64_t *ret,
                    bool *ret_set, struct berr *e)
{
        json_t *v = member(o, key);
        *ret_set = v != NULL;
        if (!v)
                return 0;
        /* jansson holds integers as signed 64 bits: values above INT64_MAX
         * already fail when config.json is parsed. */
        if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t) json_integer_value(v) > max)
                return berr_setx(e, EINVAL, "%s.%s must be an integer from 0 to %" PRIu64, where, key, max);
        *ret = (uint64_t) json_integer_value(v);
        return 0;
}

/* <action_key> (required) and <errno_key> (optional) → a libseccomp action. */
static int parse_action(const json_t *o, const char *where, const char *action_key, const char *errno_key,
                        uint32_t *ret, struct berr *e)
{
        const char *name = NULL;
        uint64_t errno_ret = EPERM;
        bool errno_set;
        int r;

        if ((r = get_required_string(o, where, action_key, &name, e)) < 0 ||
            (r = get_uint(o, where, errno_key, SECCOMP_ERRNO_MAX, &errno_ret, &errno_set, e)) < 0)
                return r;

        const struct action_name *a = NULL;
        for (size_t i = 0; i < ARRAY_SIZE(actions); i++)
                if (strcmp(actions[i].name, name) == 0)
                        a = &actions[i];
        if (!a)
                return berr_setx(e, EINVAL, "%s.%s \"%s\" is not an action", where, action_key, name);
        if (errno_set && !a->takes_errno)
                return berr_setx(e, EINVAL,
                                 "%s.%s cannot be used with %s (only with SCMP_ACT_ERRNO and SCMP_ACT_TRACE)",
                                 where, errno_key, name);
        /* As runc: ERRNO and TRACE without a number return EPERM. */
        *ret = a->takes_errno ? a->action | (uint32_t) errno_ret : a->action;
        return 0;
}

static int add_architectures(scmp_filter_ctx f, const json_t *seccomp, struct berr *e)
{
        json_t *archs = member(seccomp, "architectures");
        if (!archs)
                return 0;
        if (!json_is_array(archs))
                return berr_setx(e, EINVAL, "linux.seccomp.architectures must be an array of strings");

        size_t i;
        json_t *v;
        json_array_foreach(archs, i, v) {
                if (!json_is_string(v))
                        return berr_setx(e, EINVAL, "linux.seccomp.architectures must be an array of strings");
                const char *name = json_string_value(v);
                static const char prefix[] = "SCMP_ARCH_";
                char lower[32];
                size_t n = strlen(name);
                uint32_t token = 0;
                /* SCMP_ARCH_X86_64 → libseccomp's "x86_64". */
                if (strncmp(name, prefix, sizeof(prefix) - 1) == 0 && n - (sizeof(prefix) - 1) < sizeof(lower)) {
                        const char *s = name + sizeof(prefix) - 1;
                        for (n = 0; s[n]; n++)
                                lower[n] = (char) tolower((unsigned char) s[n]);
                        lower[n] = '\0';
                        token = strcmp(lower, "native") == 0 ? seccomp_arch_native() : seccomp_arch_resolve_name(lower);
                }
                if (token == 0)
                        return berr_setx(e, EINVAL, "linux.seccomp.architectures[%zu] \"%s\" is not an architecture",
                                         i, name);
                int r = seccomp_arch_add(f, token);
                if (r == -EDOM)
                        return berr_setx(e, EINVAL,
                                         "linux.seccomp.architectures[%zu] \"%s\" has another byte order than "
                                         "this machine: one filter cannot hold both",
                                         i, name);
                if (r < 0 && r != -EEXIST)
                        return berr_set(e, r, "linux.seccomp.architectures[%zu]: cannot add \"%s\"", i, name);
        }
        return 0;
}

static int set_flags(scmp_filter_ctx f, const json_t *seccomp, struct berr *e)
{
        static const struct {
                const char *name;
                enum scmp_filter_attr attr;
        } flags[] = {
                { "SECCOMP_FILTER_FLAG_TSYNC", SCMP_FLTATR_CTL_TSYNC },
                { "SECCOMP_FILTER_FLAG_LOG", SCMP_FLTATR_CTL_LOG },
                { "SECCOMP_FILTER_FLAG_SPEC_ALLOW", SCMP_FLTATR_CTL_SSB },
        };
        json_t *arr = member(seccomp, "flags");
        if (!arr)
                return 0;
        if (!json_is_array(arr))
                return berr_setx(e, EINVAL, "linux.seccomp.flags must be an array of strings");

        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) {
                if (!json_is_string(v))
                        return berr_setx(e, EINVAL, "linux.seccomp.flags must be an array of strings");
                const char *name = json_string_value(v);
                size_t k;
                for (k = 0; k < ARRAY_SIZE(flags); k++)
                        if (strcmp(flags[k].name, name) == 0)
                                break;
                if (k == ARRAY_SIZE(flags)) {
                        /* Known to the spec, but it only applies to a
                         * listener, which ocirun does not support. */
                        if (strcmp(name, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV") == 0)
                                return berr_setx(e, EOPNOTSUPP,
                                                 "linux.seccomp.flags[%zu]: %s is not supported by ocirun", i, name);
                        return berr_setx(e, EINVAL, "linux.seccomp.flags[%zu] \"%s\" is not a seccomp flag", i, name);
                }
                int r = seccomp_attr_set(f, flags[k].attr, 1);
                if (r == -EOPNOTSUPP || r == -EINVAL)
                        return berr_setx(e, EOPNOTSUPP,
                                         "linux.seccomp.flags[%zu]: %s is not supported by this kernel or "
                                         "libseccomp %u.%u.%u",
                                         i, name, seccomp_version()->major, seccomp_version()->minor,
                                         seccomp_version()->micro);
                if (r < 0)
                        return berr_set(e, r, "linux.seccomp.flags[%zu]: cannot set %s", i, name);
        }
        return 0;
}

static int parse_arg(const json_t *arg, const char *where, struct scmp_arg_cmp *ret, struct berr *e)
{
        uint64_t index = 0, value = 0, value2 = 0;
        bool set;
        const char *op = NULL;
        int r;

        if (!json_is_object(arg))
                return berr_setx(e, EINVAL, "%s must be an object", where);
        if ((r = get_uint(arg, where, "index", SECCOMP_MAX_ARGS - 1, &index, &set, e)) < 0)
                return r;
        if (!set)
                return berr_setx(e, EINVAL, "%s.index is required", where);
        if ((r = get_uint(arg, where, "value", INT64_MAX, &value, &set, e)) < 0)
                return r;
        if (!set)
                return berr_setx(e, EINVAL, "%s.value is required", where);
        if ((r = get_uint(arg, where, "valueTwo", INT64_MAX, &value2, &set, e)) < 0 ||
            (r = get_required_string(arg, where, "op", &op, e)) < 0)
                return r;

        size_t k;
        for (k = 0; k < ARRAY_SIZE(operators); k++)
                if (strcmp(operators[k].name, op) == 0)
                        break;
        if (k == ARRAY_SIZE(operators))
                return berr_setx(e, EINVAL, "%s.op \"%s\" is not an operator", where, op);
        /* For SCMP_CMP_MASKED_EQ, value is the mask and valueTwo the datum
         * (the spec's order is libseccomp's). */
        *ret = (struct scmp_arg_cmp) {
                .arg = (unsigned int) index,
                .op = operators[k].op,
                .datum_a = value,
                .datum_b = value2,
        };
        return 0;
}

static int add_rule(scmp_filter_ctx f, uint32_t action, int nr, const char *name, const struct scmp_arg_cmp *conds,
                    unsigned n, const char *where, struct berr *e)
{
        int r = seccomp_rule_add_array(f, action, nr, n, n ? conds : NULL);
        if (r < 0)
                return berr_set(e, r, "%s: cannot add the rule for syscall \"%s\"", where, name);
        return 0;
}

static int add_syscall_entry(scmp_filter_ctx f, const json_t *entry, size_t idx, uint32_t default_action,
                             struct berr *e)
{
        char where[64];
        _cleanup_free_ struct scmp_arg_cmp *conds = NULL;
        unsigned n_conds = 0, per_index[SECCOMP_MAX_ARGS] = { 0 };
        bool same_index = false;
        uint32_t action;
        int r = 0;

        snprintf(where, sizeof(where), "linux.seccomp.syscalls[%zu]", idx);
        if (!json_is_object(entry))
                return berr_setx(e, EINVAL, "%s must be an object", where);

        json_t *names = member(entry, "names");
        if (!names)
                return berr_setx(e, EINVAL, "%s.names is required", where);
        if (!json_is_array(names) || json_array_size(names) == 0)
                return berr_setx(e, EINVAL, "%s.names must be a non-empty array of strings", where);
        size_t i;
        json_t *v;
        json_array_foreach(names, i, v)
                if (!json_is_string(v) || !*json_string_value(v))
                        return berr_setx(e, EINVAL, "%s.names must be a non-empty array of strings", where);

        if ((r = parse_action(entry, where, "action", "errnoRet", &action, e)) < 0)
                return r;

        json_t *args = member(entry, "args");
        if (args && !json_is_array(args))
                return berr_setx(e, EINVAL, "%s.args must be an array", where);
        if (json_array_size(args) > 0 && !(conds = calloc(json_array_size(args), sizeof(*conds))))
                return berr_setx(e, ENOMEM, "out of memory");
        json_array_foreach(args, i, v) {
                char awhere[96];
                snprintf(awhere, sizeof(awhere), "%s.args[%zu]", where, i);
                if ((r = parse_arg(v, awhere, &conds[n_conds], e)) < 0)
                        return r;
                if (++per_index[conds[n_conds].arg] > 1)
                        same_index = true;
                n_conds++;
        }

        /* libseccomp refuses rules that would do what the default does. */
        if (action == default_action)
                return 0;

        json_array_foreach(names, i, v) {
                const char *name = json_string_value(v);
                int nr = seccomp_syscall_resolve_name(name);
                if (nr == __NR_SCMP_ERROR) {
                        /* As runc: a name this libseccomp does not know is
                         * a syscall this kernel cannot have. */
                        log_debug("seccomp: unknown syscall \"%s\" (%s) ignored", name, where);
                        continue;
                }
                /* Conditions on different arguments are ANDed in one rule.
                 * libseccomp cannot AND two conditions on the same
                 * argument, so then, as runc does, each condition becomes a
                 * rule of its own (ORed). */
                if (!same_index)
                        r = add_rule(f, action, nr, name, conds, n_conds, where, e);
                else
                        for (unsigned k = 0; k < n_conds && r >= 0; k++)
                                r = add_rule(f, action, nr, name, &conds[k], 1, where, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int build(scmp_filter_ctx *ret_filter, const json_t *seccomp, struct berr *e)
{
        uint32_t default_action;
        int r;

        if (!json_is_object(seccomp))
                return berr_setx(e, EINVAL, "linux.seccomp must be an object");
        if ((r = parse_action(seccomp, "linux.seccomp", "defaultAction", "defaultErrnoRet", &default_action, e)) < 0)
                return r;

        json_t *listener = member(seccomp, "listenerPath");
        json_t *metadata = member(seccomp, "listenerMetadata");
        if (listener && !json_is_string(listener))
                return berr_setx(e, EINVAL, "linux.seccomp.listenerPath must be a string");
        if (metadata && !json_is_string(metadata))
                return berr_setx(e, EINVAL, "linux.seccomp.listenerMetadata must be a string");
        if (metadata && !listener)
                return berr_setx(e, EINVAL, "linux.seccomp.listenerMetadata is set without listenerPath");
        /* listenerPath alone is harmless: it only matters with SCMP_ACT_NOTIFY. */

        json_t *syscalls = member(seccomp, "syscalls");
        if (syscalls && !json_is_array(syscalls))
                return berr_setx(e, EINVAL, "linux.seccomp.syscalls must be an array");

        scmp_filter_ctx f = seccomp_init(default_action);
        if (!f)
                return berr_setx(e, EOPNOTSUPP, "linux.seccomp.defaultAction \"%s\" is not supported by this kernel",
                                 json_string_value(json_object_get(seccomp, "defaultAction")));
        *ret_filter = f;

        /* ocirun sets no_new_privs itself when process.noNewPrivileges asks;
         * kernel errors come back as themselves, not as -ECANCELED. */
        if ((r = seccomp_attr_set(f, SCMP_FLTATR_CTL_NNP, 0)) < 0 ||
            (r = seccomp_attr_set(f, SCMP_FLTATR_API_SYSRAWRC, 1)) < 0)
                return berr_set(e, r, "cannot set up the seccomp filter");
        /* Architectures first: a rule is added for every architecture the
         * filter has at the time. */
        if ((r = add_architectures(f, seccomp, e)) < 0 || (r = set_flags(f, seccomp, e)) < 0)
                return r;
        if (json_array_size(syscalls) > SECCOMP_TREE_THRESHOLD &&
            (r = seccomp_attr_set(f, SCMP_FLTATR_CTL_OPTIMIZE, 2)) < 0)
                log_debug("seccomp: binary tree optimization not available: %s", strerror(-r));

        size_t i;
        json_t *v;
        json_array_foreach(syscalls, i, v)
                if ((r = add_syscall_entry(f, v, i, default_action, e)) < 0)
                        return r;
        return 0;
}

static bool uses_notify(const json_t *seccomp)
{
        const char *def = json_string_value(json_object_get(seccomp, "defaultAction"));
        if (def && strcmp(def, "SCMP_ACT_NOTIFY") == 0)
                return true;
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(seccomp, "syscalls"), i, v) {
                const char *a = json_string_value(json_object_get(v, "action"));
                if (a && strcmp(a, "SCMP_ACT_NOTIFY") == 0)
                        return true;
        }
        return false;
}

/* ---------------------------------------------------------------- the cache */

/* Everything the program depends on; NULL when out of memory. */
static char *cache_key(const json_t *seccomp)
{
        _cleanup_free_ char *profile = json_dumps(seccomp, JSON_COMPACT | JSON_SORT_KEYS);
        struct utsname u;
        const struct scmp_version *v = seccomp_version();
        char *key = NULL;
        if (!profile || uname(&u) < 0)
                return NULL;
        if (asprintf(&key, "%s\nlibseccomp %u.%u.%u api %u\nkernel %s %s\n%s\n", SECCOMP_CACHE_FORMAT, v->major,
                     v->minor, v->micro, seccomp_api_get(), u.release, u.machine, profile) < 0)
                return NULL;
        return key;
}

/* FNV-1a, 64 bits: only names the file, which holds the whole key. */
static uint64_t cache_hash(const char *key)
{
        uint64_t h = 0xcbf29ce484222325ULL;
        for (const unsigned char *c = (const unsigned char *) key; *c; c++)
                h = (h ^ *c) * 0x100000001b3ULL;
        return h;
}

static char *cache_path(const char *root, const char *key)
{
        char *p = NULL;
        if (asprintf(&p, "%s/" SECCOMP_CACHE_DIR "/%016" PRIx64, root, cache_hash(key)) < 0)
                return NULL;
        return p;
}

/* The file: "<flags>\n<key length>\n<key><program>". */
static int cache_load(const char *root, const char *key, struct seccomp_ctx *ctx)
{
        _cleanup_free_ char *path = cache_path(root, key), *data = NULL;
        size_t len = 0, klen = strlen(key);
        if (!path || fs_read_file(path, SECCOMP_PROG_MAX + klen + 64, &data, &len) < 0)
                return -ENOENT;
        unsigned int flags;
        size_t stored_klen;
        int hdr = 0;
        if (sscanf(data, "%u\n%zu\n%n", &flags, &stored_klen, &hdr) != 2 || hdr <= 0 || stored_klen != klen ||
            len < (size_t) hdr + klen || memcmp(data + hdr, key, klen) != 0)
                return -ENOENT;
        size_t plen = len - (size_t) hdr - klen;
        if (plen == 0 || plen % sizeof(struct sock_filter) != 0)
                return -ENOENT;
        ctx->prog = malloc(plen);
        if (!ctx->prog)
                return -ENOMEM;
        memcpy(ctx->prog, data + hdr + klen, plen);
        ctx->prog_len = plen / sizeof(struct sock_filter);
        ctx->flags = flags;
        return 0;
}

/* Best effort: a cache that cannot be written only costs time. */
static void cache_store(const char *root, const char *key, const struct seccomp_ctx *ctx)
{
        _cleanup_free_ char *dir = NULL, *path = cache_path(root, key), *data = NULL;
        size_t klen = strlen(key), plen = ctx->prog_len * sizeof(struct sock_filter);
        char hdr[64];
        int hlen = snprintf(hdr, sizeof(hdr), "%u\n%zu\n", ctx->flags, klen);
        if (!path || asprintf(&dir, "%s/" SECCOMP_CACHE_DIR, root) < 0 || !(data = malloc((size_t) hlen + klen + plen)))
                return;
        memcpy(data, hdr, (size_t) hlen);
        memcpy(data + hlen, key, klen);
        memcpy(data + hlen + klen, ctx->prog, plen);
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return;
        /* atomic: a concurrent create reads the old file or the new one */
        int r = fs_write_atomic_ex(path, data, (size_t) hlen + klen + plen, 0600, 0);
        if (r < 0)
                log_debug("seccomp: cannot write the cache \"%s\": %s", path, strerror(-r));
}

/* The program libseccomp generates for f, and the flags it would load it with. */
static int export_program(scmp_filter_ctx f, struct seccomp_ctx *ctx, struct berr *e)
{
        _cleanup_close_ int fd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
        if (fd < 0)
                return berr_set(e, errno, "memfd");
        int r = seccomp_export_bpf(f, fd);
        if (r < 0)
                return berr_set(e, r, "cannot generate the seccomp filter");
        off_t size = lseek(fd, 0, SEEK_END);
        if (size <= 0 || size > SECCOMP_PROG_MAX || size % (off_t) sizeof(struct sock_filter) != 0)
                return berr_setx(e, EINVAL, "the seccomp filter has %lld bytes of program", (long long) size);
        ctx->prog = malloc((size_t) size);
        if (!ctx->prog)
                return berr_setx(e, ENOMEM, "out of memory");
        if (pread(fd, ctx->prog, (size_t) size, 0) != size)
                return berr_set(e, errno ? errno : EIO, "memfd");
        ctx->prog_len = (size_t) size / sizeof(struct sock_filter);
        static const struct {
                enum scmp_filter_attr attr;
                unsigned int flag;
        } attrs[] = {
                { SCMP_FLTATR_CTL_TSYNC, SECCOMP_FILTER_FLAG_TSYNC },
                { SCMP_FLTATR_CTL_LOG, SECCOMP_FILTER_FLAG_LOG },
                { SCMP_FLTATR_CTL_SSB, SECCOMP_FILTER_FLAG_SPEC_ALLOW },
        };
        ctx->flags = 0;
        for (size_t i = 0; i < ARRAY_SIZE(attrs); i++) {
                uint32_t v = 0;
                if (seccomp_attr_get(f, attrs[i].attr, &v) == 0 && v)
                        ctx->flags |= attrs[i].flag;
        }
        return 0;
}

int seccomp_filter_prepare_cached(const json_t *linux_seccomp, const char *cache_root, struct seccomp_ctx **ret,
                                  struct berr *e)
{
        scmp_filter_ctx f = NULL;

        if (!linux_seccomp || json_is_null(linux_seccomp)) {
                *ret = NULL;
                return 0;
        }
        struct seccomp_ctx *ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
                return berr_setx(e, ENOMEM, "out of memory");
        bool notify = json_is_object(linux_seccomp) && uses_notify(linux_seccomp);
        _cleanup_free_ char *key = cache_root && json_is_object(linux_seccomp) && !notify ? cache_key(linux_seccomp)
                                                                                          : NULL;
        if (key && cache_load(cache_root, key, ctx) == 0) {
                *ret = ctx;
                return 0;
        }
        int r = build(&f, linux_seccomp, e);
        if (r < 0) {
                seccomp_release(f);
                seccomp_filter_free(ctx);
                return r;
        }
        ctx->filter = f;
        if (notify) {
                const char *lp = json_string_value(json_object_get(linux_seccomp, "listenerPath"));
                const char *md = json_string_value(json_object_get(linux_seccomp, "listenerMetadata"));
                if (!lp || !*lp) {
                        seccomp_filter_free(ctx);
                        return berr_setx(e, EINVAL, "linux.seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath");
                }
                ctx->listener_path = strdup(lp);
                ctx->listener_metadata = md ? strdup(md) : NULL;
                *ret = ctx;
                return 0;
        }
        if ((r = export_program(f, ctx, e)) < 0) {
                seccomp_filter_free(ctx);
                return r;
        }
        if (key)
                cache_store(cache_root, key, ctx);
        *ret = ctx;
        return 0;
}

int seccomp_filter_prepare(const json_t *linux_seccomp, struct seccomp_ctx **ret, struct berr *e)
{
        return seccomp_filter_prepare_cached(linux_seccomp, NULL, ret, e);
}

bool seccomp_filter_notifies(const struct seccomp_ctx *ctx)
{
        return ctx && ctx->listener_path;
}

int seccomp_filter_notify_fd(struct seccomp_ctx *ctx)
{
        int fd = seccomp_notify_fd(ctx->filter);
        return fd < 0 ? fd : fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

int seccomp_filter_send_listener(const struct seccomp_ctx *ctx, int notify_fd, pid_t pid, const json_t *state,
                                 struct berr *e)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(ctx->listener_path) >= sizeof(sa.sun_path))
                return berr_setx(e, ENAMETOOLONG, "linux.seccomp.listenerPath \"%s\" is too long", ctx->listener_path);
        strcpy(sa.sun_path, ctx->listener_path);
        json_t *msg = json_pack("{s:s, s:[s], s:i, s:s, s:O}", "ociVersion", "1.0.2", "fds", "seccompFd", "pid",
                                (int) pid, "metadata", ctx->listener_metadata ? ctx->listener_metadata : "", "state",
                                state);
        char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
        json_decref(msg);
        if (!text)
                return -ENOMEM;
        int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int r = 0;
        if (sock < 0 || connect(sock, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                r = berr_set(e, errno, "cannot connect to the seccomp agent at \"%s\"", ctx->listener_path);
        else if (fd_send(sock, notify_fd, text, strlen(text)) < 0)
                r = berr_set(e, errno, "cannot send the seccomp fd to \"%s\"", ctx->listener_path);
        if (sock >= 0)
                close(sock);
        free(text);
        return r;
}

int seccomp_filter_load(struct seccomp_ctx *ctx, struct berr *e)
{
        if (!ctx)
                return 0;
        int r;
        if (ctx->prog) {
                /* what seccomp_load() does, without generating the program again */
                struct sock_fprog fp = { .len = (unsigned short) ctx->prog_len, .filter = ctx->prog };
                r = (int) syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, ctx->flags, &fp);
                if (r > 0) /* TSYNC: a thread that could not be synchronised */
                        r = -ESRCH;
                else if (r < 0)
                        r = -errno;
        } else {
                r = seccomp_load(ctx->filter);
        }
        if (r == 0)
                return 0;
        switch (-r) {
        case EACCES:
                return berr_set(e, r, "cannot load the seccomp filter (it needs no_new_privs or CAP_SYS_ADMIN)");
        case EINVAL:
                return berr_set(e, r,
                                "cannot load the seccomp filter (the kernel refused one of its flags or actions)");
        default:
                return berr_set(e, r, "cannot load the seccomp filter");
        }
}

void seccomp_filter_free(struct seccomp_ctx *ctx)
{
        if (!ctx)
                return;
        if (ctx->filter)
                seccomp_release(ctx->filter);
        free(ctx->prog);
        free(ctx->listener_path);
        free(ctx->listener_metadata);
        free(ctx);
}

json_t *seccomp_features(void)
{
        static const char *const archs[] = {
                "x86", "x86_64", "x32", "arm", "aarch64", "mips", "mips64", "mips64n32", "mipsel", "mipsel64",
                "mipsel64n32", "ppc", "ppc64", "ppc64le", "s390", "s390x", "parisc", "parisc64", "riscv64",
        };
        json_t *acts = json_array(), *ops = json_array(), *arch = json_array();
        for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
                json_array_append_new(acts, json_string(actions[i].name));
        for (size_t i = 0; i < sizeof(operators) / sizeof(operators[0]); i++)
                json_array_append_new(ops, json_string(operators[i].name));
        for (size_t i = 0; i < sizeof(archs) / sizeof(archs[0]); i++) {
                if (!seccomp_arch_resolve_name(archs[i]))
                        continue;
                char name[48];
                snprintf(name, sizeof(name), "SCMP_ARCH_%s", archs[i]);
                for (char *c = name; *c; c++)
                        *c = (char) toupper((unsigned char) *c);
                json_array_append_new(arch, json_string(name));
        }
        return json_pack("{s:b, s:o, s:o, s:o, s:[s,s,s]}", "enabled", 1, "actions", acts, "operators", ops, "archs",
                         arch, "knownFlags", "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                         "SECCOMP_FILTER_FLAG_SPEC_ALLOW");
}

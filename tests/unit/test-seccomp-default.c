/* Unit tests for engine/seccomp-default: Docker's default profile as
 * linux.seccomp (its shape, its names against this machine's libseccomp,
 * the capability-dependent entries), the conversion of Docker-format
 * profiles with their errors, and the generated profile loaded by ocirun's
 * seccomp module into a forked child, where syscalls are then made: the
 * engine's output and the runtime's reading of it must agree. */
#include "unit-helpers.h"

#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "cleanup.h"
#include "seccomp-default.h"
/* ocirun's module, by path: its name would shadow libseccomp's <seccomp.h> */
#include "../../ocirun/seccomp.h"

/* Docker's default capabilities (engine/oci-spec.c). */
static const char *const default_caps[] = {
        "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",  "CAP_FOWNER", "CAP_MKNOD",
        "CAP_NET_RAW", "CAP_SETGID",      "CAP_SETUID",  "CAP_SETFCAP", "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE", NULL,
};

static const char *const all_caps[] = {
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
        "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
        "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE", NULL,
};

/* ---- helpers ---- */

static json_t *caps_json(const char *const *v, const char *extra)
{
        json_t *a = json_array();
        for (; v && *v; v++)
                json_array_append_new(a, json_string(*v));
        if (extra)
                json_array_append_new(a, json_string(extra));
        return a;
}

static json_t *default_for(const char *const *caps, const char *extra)
{
        json_t *c = caps_json(caps, extra);
        json_t *p = oci_seccomp_default(c);
        json_decref(c);
        assert_non_null(p);
        return p;
}

/* The entry with this name and action; with_args: one with conditions
 * (true), one without (false). */
static json_t *find_entry(json_t *profile, const char *name, const char *action, bool with_args)
{
        size_t i, k;
        json_t *e, *n;
        json_array_foreach(json_object_get(profile, "syscalls"), i, e)
        {
                if (strcmp(json_string_value(json_object_get(e, "action")), action) ||
                    (json_array_size(json_object_get(e, "args")) > 0) != with_args)
                        continue;
                json_array_foreach(json_object_get(e, "names"), k, n)
                        if (!strcmp(json_string_value(n), name))
                                return e;
        }
        return NULL;
}

static bool allowed(json_t *profile, const char *name)
{
        return find_entry(profile, name, "SCMP_ACT_ALLOW", false) != NULL;
}

static json_t *parse(const char *text)
{
        json_error_t jerr;
        json_t *j = json_loads(text, 0, &jerr);
        if (!j)
                fail_msg("bad test JSON: %s: %s", jerr.text, text);
        return j;
}

/* ---- the default profile ---- */

static void test_default_shape(void **state)
{
        (void) state;
        json_t *p = default_for(default_caps, NULL);
        assert_string_equal(json_string_value(json_object_get(p, "defaultAction")), "SCMP_ACT_ERRNO");
        assert_int_equal(json_integer_value(json_object_get(p, "defaultErrnoRet")), EPERM);
        json_t *arch = json_object_get(p, "architectures");
#if defined(__x86_64__) && !defined(__ILP32__)
        json_t *want = parse("[\"SCMP_ARCH_X86_64\", \"SCMP_ARCH_X86\", \"SCMP_ARCH_X32\"]");
#elif defined(__aarch64__)
        json_t *want = parse("[\"SCMP_ARCH_AARCH64\", \"SCMP_ARCH_ARM\"]");
#else
        json_t *want = json_incref(arch);
#endif
        assert_true(json_equal(arch, want));
        json_decref(want);
        /* a few hundred syscalls, the everyday ones among them */
        size_t n = 0, i;
        json_t *e;
        json_array_foreach(json_object_get(p, "syscalls"), i, e)
                n += json_array_size(json_object_get(e, "names"));
        assert_true(n > 300);
        const char *everyday[] = { "read", "write", "openat", "execve", "exit_group", "futex", "mmap", "wait4",
                                   "rt_sigreturn", "getpid", "chroot" /* CAP_SYS_CHROOT is a default cap */ };
        for (size_t k = 0; k < ARRAY_SIZE(everyday); k++)
                if (!allowed(p, everyday[k]))
                        fail_msg("\"%s\" is not allowed", everyday[k]);
        /* conditional ones */
        assert_non_null(find_entry(p, "socket", "SCMP_ACT_ALLOW", true));
        assert_non_null(find_entry(p, "personality", "SCMP_ACT_ALLOW", true));
        assert_non_null(find_entry(p, "clone", "SCMP_ACT_ALLOW", true));
        assert_false(allowed(p, "socket"));
        assert_false(allowed(p, "personality"));
        assert_false(allowed(p, "clone"));
        json_t *c3 = find_entry(p, "clone3", "SCMP_ACT_ERRNO", false);
        assert_non_null(c3);
        assert_int_equal(json_integer_value(json_object_get(c3, "errnoRet")), ENOSYS);
        json_decref(p);
}

/* Every name must be one libseccomp knows: a typo would silently allow
 * nothing. libseccomp 2.5.4 knows all of Docker's names; an older one
 * misses the newest, which the runtime then skips (ocirun and runc alike),
 * so there they are only listed. */
static void test_names_known_to_libseccomp(void **state)
{
        (void) state;
        const struct scmp_version *v = seccomp_version();
        bool strict = v->major > 2 || (v->major == 2 && (v->minor > 5 || (v->minor == 5 && v->micro >= 4)));
        json_t *p = default_for(all_caps, NULL);
        size_t i, k, unknown = 0;
        json_t *e, *n;
        json_array_foreach(json_object_get(p, "syscalls"), i, e)
                json_array_foreach(json_object_get(e, "names"), k, n)
                        if (seccomp_syscall_resolve_name(json_string_value(n)) == __NR_SCMP_ERROR) {
                                print_message("libseccomp %u.%u.%u does not know \"%s\"\n", v->major, v->minor,
                                              v->micro, json_string_value(n));
                                unknown++;
                        }
        json_decref(p);
        if (strict)
                assert_int_equal(unknown, 0);
}

static void test_capability_entries(void **state)
{
        (void) state;
        static const struct {
                const char *cap, *syscall;
        } gated[] = {
                { "CAP_SYS_ADMIN", "mount" },        { "CAP_SYS_ADMIN", "umount2" },
                { "CAP_SYS_ADMIN", "unshare" },      { "CAP_SYS_ADMIN", "setns" },
                { "CAP_SYS_ADMIN", "sethostname" },  { "CAP_SYS_ADMIN", "clone" },
                { "CAP_SYS_ADMIN", "clone3" },       { "CAP_SYS_ADMIN", "bpf" },
                { "CAP_SYS_BOOT", "reboot" },        { "CAP_SYS_MODULE", "init_module" },
                { "CAP_SYS_MODULE", "finit_module" }, { "CAP_SYS_PACCT", "acct" },
                { "CAP_SYS_PTRACE", "kcmp" },        { "CAP_SYS_PTRACE", "pidfd_getfd" },
                { "CAP_SYS_RAWIO", "iopl" },         { "CAP_SYS_RAWIO", "ioperm" },
                { "CAP_SYS_TIME", "settimeofday" },  { "CAP_SYS_TIME", "clock_settime" },
                { "CAP_SYS_TTY_CONFIG", "vhangup" }, { "CAP_SYS_NICE", "mbind" },
                { "CAP_SYSLOG", "syslog" },          { "CAP_BPF", "bpf" },
                { "CAP_PERFMON", "perf_event_open" }, { "CAP_DAC_READ_SEARCH", "open_by_handle_at" },
                { "CAP_SYS_CHROOT", "chroot" },
        };
        json_t *none = default_for(NULL, NULL);
        for (size_t i = 0; i < ARRAY_SIZE(gated); i++) {
                if (allowed(none, gated[i].syscall))
                        fail_msg("\"%s\" is allowed without %s", gated[i].syscall, gated[i].cap);
                json_t *with = default_for(NULL, gated[i].cap);
                if (!allowed(with, gated[i].syscall))
                        fail_msg("\"%s\" is not allowed with %s", gated[i].syscall, gated[i].cap);
                json_decref(with);
        }
        /* CAP_SYS_ADMIN lifts clone's condition and clone3's ENOSYS */
        json_t *admin = default_for(default_caps, "CAP_SYS_ADMIN");
        assert_null(find_entry(admin, "clone", "SCMP_ACT_ALLOW", true));
        assert_null(find_entry(admin, "clone3", "SCMP_ACT_ERRNO", false));
        json_decref(admin);
        /* ptrace: allowed to all from kernel 4.8 (this kernel is newer) */
        assert_true(allowed(none, "ptrace"));
        /* the bounding set is all that counts: the same profile twice */
        json_t *again = default_for(NULL, NULL);
        assert_true(json_equal(none, again));
        json_decref(again);
        json_decref(none);
}

/* ---- under ocirun's filter ---- */

_Noreturn static void child_exit(int code)
{
        syscall(SYS_exit_group, code);
        _exit(code);
}

/* Expectations checked in a child under the filter: a syscall's result,
 * 0 or its errno. */
struct expect {
        const char *what;
        long nr, a0, a1, a2;
        int want; /* 0: succeeds; -1: fails with anything but EPERM/ENOSYS */
};

static void run_under(json_t *linux_seccomp, const struct expect *x, size_t n)
{
        struct seccomp_ctx *ctx = NULL;
        struct berr e = { 0 };
        if (seccomp_filter_prepare(linux_seccomp, &ctx, &e) < 0)
                fail_msg("ocirun refuses the profile: %s", e.msg);
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(pfd[0]);
                signal(SIGSYS, SIG_DFL);
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || seccomp_filter_load(ctx, &e) < 0)
                        child_exit(100);
                for (size_t i = 0; i < n; i++) {
                        errno = 0;
                        long r = syscall(x[i].nr, x[i].a0, x[i].a1, x[i].a2, 0, 0, 0);
                        int got = r < 0 ? errno : 0;
                        if (r > 0 && x[i].nr == SYS_socket)
                                close((int) r);
                        bool ok = x[i].want == -1 ? (got != 0 && got != EPERM && got != ENOSYS) : got == x[i].want;
                        if (!ok) {
                                char msg[160];
                                int len = snprintf(msg, sizeof(msg), "%s: got errno %d, want %d", x[i].what, got,
                                                   x[i].want);
                                if (write(pfd[1], msg, (size_t) len) < 0)
                                        child_exit(102);
                                child_exit(101);
                        }
                }
                child_exit(0);
        }
        close(pfd[1]);
        char buf[200] = "";
        ssize_t len = read(pfd[0], buf, sizeof(buf) - 1);
        close(pfd[0]);
        buf[len > 0 ? len : 0] = '\0';
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        seccomp_filter_free(ctx);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fail_msg("child: status 0x%x: %s", status, buf);
}

static void test_loaded_default_caps(void **state)
{
        (void) state;
        json_t *p = default_for(default_caps, NULL);
        const struct expect x[] = {
                { "getpid", SYS_getpid, 0, 0, 0, 0 },
                { "unshare(CLONE_NEWUSER)", SYS_unshare, CLONE_NEWUSER, 0, 0, EPERM },
                { "unshare(CLONE_NEWNS)", SYS_unshare, CLONE_NEWNS, 0, 0, EPERM },
                { "mount", SYS_mount, (long) "none", (long) "/", (long) "tmpfs", EPERM },
                { "setns", SYS_setns, -1, 0, 0, EPERM },
                { "clone3", SYS_clone3, 0, 0, 0, ENOSYS },
                /* clone into a new namespace: refused by the filter */
                { "clone(CLONE_NEWUSER)", SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, EPERM },
                { "personality(query)", SYS_personality, 0xffffffff, 0, 0, 0 },
                { "personality(PER_LINUX)", SYS_personality, PER_LINUX, 0, 0, 0 },
                { "personality(PER_BSD)", SYS_personality, PER_BSD, 0, 0, EPERM },
                { "socket(AF_UNIX)", SYS_socket, AF_UNIX, SOCK_STREAM, 0, 0 },
                { "socket(AF_VSOCK)", SYS_socket, AF_VSOCK, SOCK_STREAM, 0, EPERM },
                { "reboot", SYS_reboot, 0, 0, 0, EPERM },
                { "chroot(nonexistent)", SYS_chroot, (long) "/nonexistent/x", 0, 0, -1 },
        };
        run_under(p, x, ARRAY_SIZE(x));
        json_decref(p);
}

static void test_loaded_with_sys_admin(void **state)
{
        (void) state;
        json_t *p = default_for(default_caps, "CAP_SYS_ADMIN");
        const struct expect x[] = {
                { "getpid", SYS_getpid, 0, 0, 0, 0 },
                /* reaches the kernel, which refuses the arguments */
                { "clone3(NULL)", SYS_clone3, 0, 0, 0, -1 },
                { "setns(-1)", SYS_setns, -1, 0, 0, -1 },
        };
        run_under(p, x, ARRAY_SIZE(x));
        json_decref(p);
}

/* ---- Docker-format profiles ---- */

static json_t *convert_ok(const char *text, const char *const *caps)
{
        json_t *c = caps_json(caps, NULL), *ret = NULL;
        char err[256] = "";
        int r = oci_seccomp_from_docker_profile(text, c, &ret, err, sizeof(err));
        json_decref(c);
        if (r < 0)
                fail_msg("profile %s\n  failed: %s", text, err);
        return ret;
}

static void expect_error(const char *text, const char *needle)
{
        json_t *ret = (json_t *) 0x1;
        char err[256] = "";
        int r = oci_seccomp_from_docker_profile(text, NULL, &ret, err, sizeof(err));
        if (r != -EINVAL || !strstr(err, needle) || strncmp(err, "seccomp profile: ", 17))
                fail_msg("profile %s\n  returned %d (%s), want -EINVAL with \"%s\"", text, r, err, needle);
        assert_ptr_equal(ret, (json_t *) 0x1);
}

#if defined(__x86_64__) && !defined(__ILP32__)
#define NATIVE "amd64"
#define NATIVE_SCMP "SCMP_ARCH_X86_64"
#elif defined(__aarch64__)
#define NATIVE "arm64"
#define NATIVE_SCMP "SCMP_ARCH_AARCH64"
#endif

#ifdef NATIVE
static void test_convert_profile(void **state)
{
        (void) state;
        static const char profile[] =
                "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 38,"
                " \"archMap\": [{\"architecture\": \"SCMP_ARCH_S390X\", \"subArchitectures\": [\"SCMP_ARCH_S390\"]},"
                "              {\"architecture\": \"" NATIVE_SCMP "\", \"subArchitectures\": [\"SCMP_ARCH_X\"]}],"
                " \"flags\": [\"SECCOMP_FILTER_FLAG_LOG\"],"
                " \"syscalls\": ["
                "  {\"names\": [\"read\", \"write\"], \"action\": \"SCMP_ACT_ALLOW\", \"comment\": \"x\", \"args\": []},"
                "  {\"name\": \"getpid\", \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {}, \"excludes\": {}},"
                "  {\"names\": [\"kill\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 13,"
                "   \"args\": [{\"index\": 1, \"value\": 9, \"op\": \"SCMP_CMP_EQ\"}]},"
                "  {\"names\": [\"mount\"], \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"caps\": [\"CAP_SYS_ADMIN\"]}},"
                "  {\"names\": [\"chroot\"], \"action\": \"SCMP_ACT_ALLOW\","
                "   \"includes\": {\"caps\": [\"CAP_SYS_CHROOT\", \"CAP_CHOWN\"]}},"
                "  {\"names\": [\"clone\"], \"action\": \"SCMP_ACT_ALLOW\", \"excludes\": {\"caps\": [\"CAP_SYS_ADMIN\"]},"
                "   \"args\": [{\"index\": 0, \"value\": 2114060288, \"valueTwo\": 0, \"op\": \"SCMP_CMP_MASKED_EQ\"}]},"
                "  {\"names\": [\"here\"], \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"arches\": [\"" NATIVE "\"]}},"
                "  {\"names\": [\"elsewhere\"], \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"arches\": [\"s390x\"]}},"
                "  {\"names\": [\"not_here\"], \"action\": \"SCMP_ACT_ALLOW\", \"excludes\": {\"arches\": [\"" NATIVE "\"]}},"
                "  {\"names\": [\"old_kernel\"], \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"minKernel\": \"3.10\"}},"
                "  {\"names\": [\"future_kernel\"], \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"minKernel\": \"999.0\"}},"
                "  {\"names\": [\"until_future\"], \"action\": \"SCMP_ACT_ALLOW\", \"excludes\": {\"minKernel\": \"999.1\"}}"
                " ]}";
        static const char *const chroot_only[] = { "CAP_SYS_CHROOT", NULL };
        static const char *const both[] = { "CAP_SYS_CHROOT", "CAP_CHOWN", "CAP_SYS_ADMIN", NULL };

        json_t *got = convert_ok(profile, chroot_only);
        json_t *want = parse(
                "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 38,"
                " \"architectures\": [\"" NATIVE_SCMP "\", \"SCMP_ARCH_X\"],"
                " \"flags\": [\"SECCOMP_FILTER_FLAG_LOG\"],"
                " \"syscalls\": ["
                "  {\"names\": [\"read\", \"write\"], \"action\": \"SCMP_ACT_ALLOW\"},"
                "  {\"names\": [\"getpid\"], \"action\": \"SCMP_ACT_ALLOW\"},"
                "  {\"names\": [\"kill\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 13,"
                "   \"args\": [{\"index\": 1, \"value\": 9, \"valueTwo\": 0, \"op\": \"SCMP_CMP_EQ\"}]},"
                "  {\"names\": [\"clone\"], \"action\": \"SCMP_ACT_ALLOW\","
                "   \"args\": [{\"index\": 0, \"value\": 2114060288, \"valueTwo\": 0, \"op\": \"SCMP_CMP_MASKED_EQ\"}]},"
                "  {\"names\": [\"here\"], \"action\": \"SCMP_ACT_ALLOW\"},"
                "  {\"names\": [\"old_kernel\"], \"action\": \"SCMP_ACT_ALLOW\"},"
                "  {\"names\": [\"until_future\"], \"action\": \"SCMP_ACT_ALLOW\"}"
                " ]}");
        if (!json_equal(got, want))
                fail_msg("got %s", json_dumps(got, JSON_COMPACT));
        json_decref(got);
        json_decref(want);

        /* all of includes' caps needed; any of excludes' caps drops */
        got = convert_ok(profile, both);
        assert_true(allowed(got, "mount"));
        assert_true(allowed(got, "chroot"));
        assert_null(find_entry(got, "clone", "SCMP_ACT_ALLOW", true));
        json_decref(got);

        /* architectures are passed as they are */
        got = convert_ok("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_X86\"],"
                         " \"syscalls\": [{\"names\": [\"getppid\"], \"action\": \"SCMP_ACT_ERRNO\"}]}",
                         NULL);
        want = parse("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_X86\"],"
                     " \"syscalls\": [{\"names\": [\"getppid\"], \"action\": \"SCMP_ACT_ERRNO\"}]}");
        assert_true(json_equal(got, want));
        json_decref(got);
        json_decref(want);
}
#endif

static void test_convert_nothing(void **state)
{
        (void) state;
        /* Docker: no defaultAction and no syscalls is no seccomp */
        json_t *ret = (json_t *) 0x1;
        char err[128] = "";
        assert_int_equal(oci_seccomp_from_docker_profile("{}", NULL, &ret, err, sizeof(err)), 0);
        assert_null(ret);
        ret = convert_ok("{\"defaultAction\": \"SCMP_ACT_ALLOW\"}", NULL);
        json_t *want = parse("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": []}");
        assert_true(json_equal(ret, want));
        json_decref(ret);
        json_decref(want);
}

#define S(...) "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [" __VA_ARGS__ "]}"

static void test_convert_errors(void **state)
{
        (void) state;
        expect_error("", "not valid JSON");
        expect_error("{\"defaultAction\": ", "not valid JSON: line 1");
        expect_error("[]", "the profile must be a JSON object");
        expect_error("{\"defaultAction\": 1}", "defaultAction must be a string");
        expect_error("{\"defaultAction\": \"SCMP_ACT_NOPE\"}", "defaultAction \"SCMP_ACT_NOPE\" is not a seccomp action");
        expect_error("{\"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\"}]}",
                     "defaultAction is required");
        expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"defaultErrnoRet\": 1}",
                     "defaultErrnoRet cannot go with SCMP_ACT_ALLOW");
        expect_error("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": -1}",
                     "defaultErrnoRet must be an integer from 0 to 65535");
        expect_error("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"architectures\": [\"SCMP_ARCH_X86\"],"
                     " \"archMap\": [{\"architecture\": \"SCMP_ARCH_X86\"}]}",
                     "'architectures' and 'archMap' were both given");
        expect_error("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"architectures\": \"SCMP_ARCH_X86\"}",
                     "architectures must be an array of strings");
        expect_error("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"archMap\": [{\"subArchitectures\": []}]}",
                     "archMap[0].architecture must be a string");
        expect_error("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"flags\": \"x\"}", "flags must be an array of strings");
        expect_error("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": {}}", "syscalls must be an array");
        expect_error(S("1"), "syscalls[0] must be an object");
        expect_error(S("{\"action\": \"SCMP_ACT_ALLOW\"}"), "syscalls[0] has neither 'names' nor 'name'");
        expect_error(S("{\"name\": \"a\", \"names\": [\"b\"], \"action\": \"SCMP_ACT_ALLOW\"}"),
                     "syscalls[0]: 'name' and 'names' were both given");
        expect_error(S("{\"names\": [], \"action\": \"SCMP_ACT_ALLOW\"}"),
                     "syscalls[0].names must be a non-empty array of strings");
        expect_error(S("{\"names\": [\"read\", 3], \"action\": \"SCMP_ACT_ALLOW\"}"),
                     "syscalls[0].names must be a non-empty array of strings");
        expect_error(S("{\"names\": [\"read\", \"\"], \"action\": \"SCMP_ACT_ALLOW\"}"), "syscalls[0].names[1] is empty");
        expect_error(S("{\"names\": [\"read\"]}"), "syscalls[0].action is required");
        expect_error(S("{\"names\": [\"read\"], \"action\": \"allow\"}"),
                     "syscalls[0].action \"allow\" is not a seccomp action");
        expect_error(S("{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"errnoRet\": 1}"),
                     "syscalls[0].errnoRet cannot go with SCMP_ACT_ALLOW");
        expect_error(S("{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"args\": {}}"),
                     "syscalls[0].args must be an array");
        expect_error(S("{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"args\": [1]}"),
                     "syscalls[0].args[0] must be an object");
        expect_error(S("{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\","
                       " \"args\": [{\"index\": 6, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"}]}"),
                     "syscalls[0].args[0].index must be an integer from 0 to 5");
        expect_error(S("{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\","
                       " \"args\": [{\"index\": 0, \"value\": -1, \"op\": \"SCMP_CMP_EQ\"}]}"),
                     "syscalls[0].args[0].value must be an integer");
        expect_error(S("{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"args\": [{\"index\": 0, \"value\": 1}]}"),
                     "syscalls[0].args[0].op is required");
        expect_error(S("{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\","
                       " \"args\": [{\"index\": 0, \"value\": 1, \"op\": \"==\"}]}"),
                     "syscalls[0].args[0].op \"==\" is not a seccomp operator");
        expect_error(S("{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"includes\": []}"),
                     "syscalls[0].includes must be an object");
        expect_error(S("{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"caps\": \"CAP_X\"}}"),
                     "syscalls[0].includes.caps must be an array of strings");
        expect_error(S("{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"excludes\": {\"arches\": [1]}}"),
                     "syscalls[0].excludes.arches must be an array of strings");
        expect_error(S("{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"minKernel\": \"four\"}}"),
                     "syscalls[0].includes.minKernel \"four\" is not a kernel version");
        /* the index names the entry, after good ones */
        expect_error(S("{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\"},"
                       "{\"names\": [\"write\"], \"action\": \"SCMP_ACT_ALLOW\", \"args\": [{\"op\": 1}]}"),
                     "syscalls[1].args[0].op");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_default_shape),
                cmocka_unit_test(test_names_known_to_libseccomp),
                cmocka_unit_test(test_capability_entries),
                cmocka_unit_test(test_loaded_default_caps),
                cmocka_unit_test(test_loaded_with_sys_admin),
#ifdef NATIVE
                cmocka_unit_test(test_convert_profile),
#endif
                cmocka_unit_test(test_convert_nothing),
                cmocka_unit_test(test_convert_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for ocirun/seccomp: profile validation (every malformed field
 * named in the error) and the built filter's behaviour, checked by loading
 * it into a forked child and making syscalls there. */
#include "unit-helpers.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "cleanup.h"
#include "seccomp.h"

/* ---- helpers ---- */

static json_t *parse(const char *text)
{
        json_error_t jerr;
        json_t *j = json_loads(text, 0, &jerr);
        if (!j)
                fail_msg("bad test JSON: %s: %s", jerr.text, text);
        return j;
}

/* Prepares text; returns the result, with the error in *e. */
static int prepare_text(const char *text, struct seccomp_ctx **ret, struct berr *e)
{
        json_t *j = parse(text);
        berr_clear(e);
        *ret = NULL;
        int r = seccomp_filter_prepare(j, ret, e);
        json_decref(j);
        return r;
}

static void expect_error(const char *text, int err, const char *needle)
{
        struct seccomp_ctx *ctx = NULL;
        struct berr e;
        int r = prepare_text(text, &ctx, &e);
        if (r != -err || !strstr(e.msg, needle))
                fail_msg("profile %s\n  returned %d (%s), want %d with \"%s\"", text, r, e.msg, -err, needle);
        assert_null(ctx);
}

static struct seccomp_ctx *expect_ok(const char *text)
{
        struct seccomp_ctx *ctx = NULL;
        struct berr e;
        int r = prepare_text(text, &ctx, &e);
        if (r < 0)
                fail_msg("profile %s\n  failed: %s", text, e.msg);
        assert_non_null(ctx);
        return ctx;
}

/* How a child ended: exit code, or 1000 + signal. */
static int child_result(pid_t pid)
{
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (WIFSIGNALED(status))
                return 1000 + WTERMSIG(status);
        return WEXITSTATUS(status);
}

#define LOAD_FAILED 200

/* _exit() without libc or sanitizer hooks (LeakSanitizer's check at
 * _exit needs syscalls a deny-by-default filter refuses). */
_Noreturn static void child_exit(int code)
{
        syscall(SYS_exit_group, code);
        _exit(code);
}

/* Loads the profile in a child, then makes syscall nr with two arguments
 * there. Result: 0 if the syscall succeeded, its errno if it failed,
 * 1000 + signal if the child was killed, LOAD_FAILED if loading failed. */
static int call_under(const char *profile, long nr, long a0, long a1)
{
        struct seccomp_ctx *ctx = expect_ok(profile);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct berr e = { 0 };
                /* cmocka catches SIGSYS (TRAP) to report a crash: the
                 * child must die of it instead */
                signal(SIGSYS, SIG_DFL);
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || seccomp_filter_load(ctx, &e) < 0)
                        _exit(LOAD_FAILED);
                long r = syscall(nr, a0, a1, 0, 0, 0, 0);
                child_exit(r < 0 ? errno : 0);
        }
        seccomp_filter_free(ctx);
        return child_result(pid);
}

static const char allow_getppid_errno[] =
        "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": ["
        "{\"names\": [\"getppid\"], \"action\": \"SCMP_ACT_ERRNO\"%s}]}";

static int getppid_under_action(const char *action_fields, long a0)
{
        char profile[512];
        snprintf(profile, sizeof(profile), allow_getppid_errno, action_fields);
        return call_under(profile, SYS_getppid, a0, 0);
}

/* ---- nothing to do ---- */

static void test_null_is_no_filter(void **state)
{
        (void) state;
        struct seccomp_ctx *ctx = (struct seccomp_ctx *) 0x1;
        struct berr e = { 0 };
        assert_int_equal(seccomp_filter_prepare(NULL, &ctx, &e), 0);
        assert_null(ctx);
        ctx = (struct seccomp_ctx *) 0x1;
        json_t *null = json_null();
        assert_int_equal(seccomp_filter_prepare(null, &ctx, &e), 0);
        assert_null(ctx);
        json_decref(null);
        /* loading and freeing nothing is fine */
        assert_int_equal(seccomp_filter_load(NULL, &e), 0);
        seccomp_filter_free(NULL);
}

/* ---- validation ---- */

static void test_top_level_errors(void **state)
{
        (void) state;
        expect_error("[]", EINVAL, "linux.seccomp must be an object");
        expect_error("{}", EINVAL, "linux.seccomp.defaultAction is required");
        expect_error("{\"defaultAction\": 1}", EINVAL, "linux.seccomp.defaultAction must be a string");
        expect_error("{\"defaultAction\": \"SCMP_ACT_FOO\"}", EINVAL,
                     "linux.seccomp.defaultAction \"SCMP_ACT_FOO\" is not an action");
        expect_error("{\"defaultAction\": \"allow\"}", EINVAL, "\"allow\" is not an action");
        expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"defaultErrnoRet\": 1}", EINVAL,
                     "linux.seccomp.defaultErrnoRet cannot be used with SCMP_ACT_ALLOW");
        expect_error("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": -1}", EINVAL,
                     "linux.seccomp.defaultErrnoRet must be an integer from 0 to 65535");
        expect_error("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 65536}", EINVAL,
                     "linux.seccomp.defaultErrnoRet must be an integer");
        expect_error("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": \"1\"}", EINVAL,
                     "linux.seccomp.defaultErrnoRet must be an integer");
        expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": {}}", EINVAL,
                     "linux.seccomp.syscalls must be an array");
        expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"listenerPath\": 3}", EINVAL,
                     "linux.seccomp.listenerPath must be a string");
        expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"listenerMetadata\": \"x\"}", EINVAL,
                     "listenerMetadata is set without listenerPath");
}

static void test_architecture_errors(void **state)
{
        (void) state;
        expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": \"SCMP_ARCH_X86\"}", EINVAL,
                     "linux.seccomp.architectures must be an array of strings");
        expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [1]}", EINVAL,
                     "linux.seccomp.architectures must be an array of strings");
        expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_X86\", \"SCMP_ARCH_VAX\"]}",
                     EINVAL, "linux.seccomp.architectures[1] \"SCMP_ARCH_VAX\" is not an architecture");
        /* the spec's names only, not libseccomp's bare ones */
        expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"x86_64\"]}", EINVAL,
                     "\"x86_64\" is not an architecture");
        expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_\"]}", EINVAL,
                     "is not an architecture");
        expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": "
                     "[\"SCMP_ARCH_X86_64_AND_A_VERY_LONG_NAME_THAT_IS_NOT_ONE\"]}",
                     EINVAL, "is not an architecture");
}

static void test_flag_errors(void **state)
{
        (void) state;
        expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"flags\": \"SECCOMP_FILTER_FLAG_LOG\"}", EINVAL,
                     "linux.seccomp.flags must be an array of strings");
        expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"flags\": [\"SECCOMP_FILTER_FLAG_FOO\"]}", EINVAL,
                     "linux.seccomp.flags[0] \"SECCOMP_FILTER_FLAG_FOO\" is not a seccomp flag");
        expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"flags\": [\"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV\"]}",
                     EOPNOTSUPP, "linux.seccomp.flags[0]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is not supported");
}

#define RULES_PREFIX                                                                  \
        "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": ["                     \
        "{\"names\": [\"getppid\"], \"action\": \"SCMP_ACT_ERRNO\"},"                 \
        "{\"names\": [\"getpgid\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 5}," \
        "{\"names\": [\"getsid\"], \"action\": \"SCMP_ACT_ALLOW\"},"

static void test_syscall_errors(void **state)
{
        (void) state;
        expect_error(RULES_PREFIX "1]}", EINVAL, "linux.seccomp.syscalls[3] must be an object");
        expect_error(RULES_PREFIX "{\"action\": \"SCMP_ACT_ERRNO\"}]}", EINVAL,
                     "linux.seccomp.syscalls[3].names is required");
        expect_error(RULES_PREFIX "{\"names\": [], \"action\": \"SCMP_ACT_ERRNO\"}]}", EINVAL,
                     "linux.seccomp.syscalls[3].names must be a non-empty array of strings");
        expect_error(RULES_PREFIX "{\"names\": \"read\", \"action\": \"SCMP_ACT_ERRNO\"}]}", EINVAL,
                     "linux.seccomp.syscalls[3].names must be a non-empty array of strings");
        expect_error(RULES_PREFIX "{\"names\": [\"read\", 7], \"action\": \"SCMP_ACT_ERRNO\"}]}", EINVAL,
                     "linux.seccomp.syscalls[3].names must be a non-empty array of strings");
        expect_error(RULES_PREFIX "{\"names\": [\"\"], \"action\": \"SCMP_ACT_ERRNO\"}]}", EINVAL,
                     "linux.seccomp.syscalls[3].names must be a non-empty array of strings");
        expect_error(RULES_PREFIX "{\"names\": [\"read\"]}]}", EINVAL, "linux.seccomp.syscalls[3].action is required");
        expect_error(RULES_PREFIX "{\"names\": [\"read\"], \"action\": \"SCMP_ACT_FOO\"}]}", EINVAL,
                     "linux.seccomp.syscalls[3].action \"SCMP_ACT_FOO\" is not an action");
        expect_error(RULES_PREFIX "{\"names\": [\"read\"], \"action\": \"SCMP_ACT_KILL\", \"errnoRet\": 1}]}", EINVAL,
                     "linux.seccomp.syscalls[3].errnoRet cannot be used with SCMP_ACT_KILL");
        expect_error(RULES_PREFIX "{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": true}]}",
                     EINVAL, "linux.seccomp.syscalls[3].errnoRet must be an integer");
        /* a rule that the default already does is still checked */
        expect_error(RULES_PREFIX "{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\", \"args\": 1}]}", EINVAL,
                     "linux.seccomp.syscalls[3].args must be an array");
}

#define ARG_RULE(args) RULES_PREFIX "{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ERRNO\", \"args\": [" args "]}]}"

static void test_arg_errors(void **state)
{
        (void) state;
        expect_error(ARG_RULE("[]"), EINVAL, "linux.seccomp.syscalls[3].args[0] must be an object");
        expect_error(ARG_RULE("{\"value\": 1, \"op\": \"SCMP_CMP_EQ\"}"), EINVAL,
                     "linux.seccomp.syscalls[3].args[0].index is required");
        expect_error(ARG_RULE("{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"},"
                              "{\"index\": 6, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"}"),
                     EINVAL, "linux.seccomp.syscalls[3].args[1].index must be an integer from 0 to 5");
        expect_error(ARG_RULE("{\"index\": -1, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"}"), EINVAL,
                     "linux.seccomp.syscalls[3].args[0].index must be an integer from 0 to 5");
        expect_error(ARG_RULE("{\"index\": 0, \"op\": \"SCMP_CMP_EQ\"}"), EINVAL,
                     "linux.seccomp.syscalls[3].args[0].value is required");
        expect_error(ARG_RULE("{\"index\": 0, \"value\": \"1\", \"op\": \"SCMP_CMP_EQ\"}"), EINVAL,
                     "linux.seccomp.syscalls[3].args[0].value must be an integer");
        expect_error(ARG_RULE("{\"index\": 0, \"value\": -2, \"op\": \"SCMP_CMP_EQ\"}"), EINVAL,
                     "linux.seccomp.syscalls[3].args[0].value must be an integer");
        expect_error(ARG_RULE("{\"index\": 0, \"value\": 1, \"valueTwo\": 1.5, \"op\": \"SCMP_CMP_EQ\"}"), EINVAL,
                     "linux.seccomp.syscalls[3].args[0].valueTwo must be an integer");
        expect_error(ARG_RULE("{\"index\": 0, \"value\": 1}"), EINVAL, "linux.seccomp.syscalls[3].args[0].op is required");
        expect_error(ARG_RULE("{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_FOO\"}"), EINVAL,
                     "linux.seccomp.syscalls[3].args[0].op \"SCMP_CMP_FOO\" is not an operator");
        expect_error(ARG_RULE("{\"index\": 0, \"value\": 1, \"op\": \"==\"}"), EINVAL, "\"==\" is not an operator");
}

static void test_notify(void **state)
{
        (void) state;
        /* a notify rule needs an agent to send the fd to */
        expect_error(RULES_PREFIX "{\"names\": [\"read\"], \"action\": \"SCMP_ACT_NOTIFY\"}]}", EINVAL,
                     "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath");
        struct seccomp_ctx *ctx = expect_ok(RULES_PREFIX "{\"names\": [\"mkdir\"], \"action\": \"SCMP_ACT_NOTIFY\"}], "
                                                         "\"listenerPath\": \"/run/agent.sock\"}");
        assert_true(seccomp_filter_notifies(ctx));
        seccomp_filter_free(ctx);
        /* listenerPath without any notify rule changes nothing */
        ctx = expect_ok("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"listenerPath\": \"/run/a.sock\", "
                        "\"listenerMetadata\": \"x\", \"syscalls\": [{\"names\": [\"getppid\"], "
                        "\"action\": \"SCMP_ACT_ERRNO\"}]}");
        assert_false(seccomp_filter_notifies(ctx));
        seccomp_filter_free(ctx);
}

/* ---- accepted profiles ---- */

static void test_all_actions_operators_archs_flags(void **state)
{
        (void) state;
        static const char *const actions[] = {
                "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
                "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",
        };
        for (size_t i = 0; i < ARRAY_SIZE(actions); i++) {
                char p[512];
                snprintf(p, sizeof(p),
                         "{\"defaultAction\": \"%s\", \"syscalls\": [{\"names\": [\"getppid\"], \"action\": \"%s\"}]}",
                         actions[i], actions[(i + 1) % ARRAY_SIZE(actions)]);
                seccomp_filter_free(expect_ok(p));
        }
        seccomp_filter_free(expect_ok(
                "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"getppid\"], "
                "\"action\": \"SCMP_ACT_ERRNO\", \"args\": ["
                "{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_NE\"},"
                "{\"index\": 1, \"value\": 1, \"op\": \"SCMP_CMP_LT\"},"
                "{\"index\": 2, \"value\": 1, \"op\": \"SCMP_CMP_LE\"},"
                "{\"index\": 3, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"},"
                "{\"index\": 4, \"value\": 1, \"op\": \"SCMP_CMP_GE\"},"
                "{\"index\": 5, \"value\": 1, \"op\": \"SCMP_CMP_GT\"},"
                "{\"index\": 5, \"value\": 255, \"valueTwo\": 3, \"op\": \"SCMP_CMP_MASKED_EQ\"}]}]}"));
        /* Every architecture the spec lists (as of libseccomp 2.5), one at a
         * time, and the native one again. libseccomp cannot mix byte orders
         * in one filter: the others fail, naming the entry. */
        static const char *const little[] = {
                "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
                "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC64LE",
                "SCMP_ARCH_RISCV64",
        };
        static const char *const big[] = {
                "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
                "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64",
        };
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        const char *const *same = little, *const *other = big;
        size_t n_same = ARRAY_SIZE(little), n_other = ARRAY_SIZE(big);
#else
        const char *const *same = big, *const *other = little;
        size_t n_same = ARRAY_SIZE(big), n_other = ARRAY_SIZE(little);
#endif
        static const char arch_profile[] = "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"%s\"], "
                                           "\"syscalls\": [{\"names\": [\"getppid\", \"read\"], "
                                           "\"action\": \"SCMP_ACT_ERRNO\"}]}";
        char p[512];
        for (size_t i = 0; i < n_same; i++) {
                snprintf(p, sizeof(p), arch_profile, same[i]);
                seccomp_filter_free(expect_ok(p));
        }
        snprintf(p, sizeof(p), arch_profile, "SCMP_ARCH_NATIVE");
        seccomp_filter_free(expect_ok(p));
        for (size_t i = 0; i < n_other; i++) {
                char want[128];
                snprintf(p, sizeof(p), arch_profile, other[i]);
                snprintf(want, sizeof(want), "linux.seccomp.architectures[0] \"%s\" has another byte order", other[i]);
                expect_error(p, EINVAL, want);
        }
        /* Docker's usual triple on x86_64 */
        seccomp_filter_free(expect_ok("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"architectures\": "
                                      "[\"SCMP_ARCH_X86_64\", \"SCMP_ARCH_X86\", \"SCMP_ARCH_X32\"], "
                                      "\"syscalls\": [{\"names\": [\"read\", \"socketcall\"], "
                                      "\"action\": \"SCMP_ACT_ALLOW\"}]}"));
        seccomp_filter_free(expect_ok("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"flags\": "
                                      "[\"SECCOMP_FILTER_FLAG_TSYNC\", \"SECCOMP_FILTER_FLAG_LOG\", "
                                      "\"SECCOMP_FILTER_FLAG_SPEC_ALLOW\"]}"));
        /* an empty profile, and JSON nulls for the optional members */
        seccomp_filter_free(expect_ok("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": null, "
                                      "\"architectures\": null, \"flags\": null, \"defaultErrnoRet\": null}"));
}

static void test_unknown_syscalls_skipped(void **state)
{
        (void) state;
        /* all unknown is fine, a mix keeps the known ones */
        seccomp_filter_free(expect_ok("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": ["
                                      "{\"names\": [\"no_such_syscall\", \"nor_this\"], \"action\": \"SCMP_ACT_ERRNO\"}]}"));
        assert_int_equal(call_under("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": ["
                                    "{\"names\": [\"no_such_syscall\", \"getppid\"], \"action\": \"SCMP_ACT_ERRNO\"}]}",
                                    SYS_getppid, 0, 0),
                         EPERM);
}

static void test_rule_like_default_skipped(void **state)
{
        (void) state;
        /* libseccomp refuses these; they are dropped instead */
        seccomp_filter_free(expect_ok("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": ["
                                      "{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\"}]}"));
        seccomp_filter_free(expect_ok("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 38, \"syscalls\": ["
                                      "{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 38}]}"));
        /* same action, another errno: not the default, so kept */
        assert_int_equal(call_under("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 38, \"syscalls\": ["
                                    "{\"names\": [\"exit_group\", \"exit\"], \"action\": \"SCMP_ACT_ALLOW\"},"
                                    "{\"names\": [\"getppid\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 7}]}",
                                    SYS_getppid, 0, 0),
                         7);
}

static void test_prepare_leaves_no_fds(void **state)
{
        (void) state;
        int before = unit_count_entries("/proc/self/fd");
        struct seccomp_ctx *ctx = expect_ok(
                "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"architectures\": [\"SCMP_ARCH_X86\"], "
                "\"flags\": [\"SECCOMP_FILTER_FLAG_LOG\"], \"syscalls\": [{\"names\": [\"read\", \"write\"], "
                "\"action\": \"SCMP_ACT_ALLOW\", \"args\": [{\"index\": 0, \"value\": 3, \"op\": \"SCMP_CMP_LT\"}]}]}");
        assert_int_equal(unit_count_entries("/proc/self/fd"), before);
        seccomp_filter_free(ctx);
        assert_int_equal(unit_count_entries("/proc/self/fd"), before);
}

/* ---- behaviour ---- */

static void test_errno_actions(void **state)
{
        (void) state;
        assert_int_equal(getppid_under_action("", 0), EPERM);
        assert_int_equal(getppid_under_action(", \"errnoRet\": 1", 0), EPERM);
        assert_int_equal(getppid_under_action(", \"errnoRet\": 38", 0), ENOSYS);
        /* errnoRet 0: the syscall "succeeds" without running */
        assert_int_equal(getppid_under_action(", \"errnoRet\": 0", 0), 0);
        /* other syscalls are untouched */
        assert_int_equal(call_under("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": ["
                                    "{\"names\": [\"getppid\"], \"action\": \"SCMP_ACT_ERRNO\"}]}",
                                    SYS_getpid, 0, 0),
                         0);
}

static void test_default_errno(void **state)
{
        (void) state;
        static const char profile[] = "{\"defaultAction\": \"SCMP_ACT_ERRNO\"%s, \"syscalls\": ["
                                      "{\"names\": [\"exit_group\", \"exit\", \"getppid\"], \"action\": \"SCMP_ACT_ALLOW\"}]}";
        char p[512];
        snprintf(p, sizeof(p), profile, "");
        assert_int_equal(call_under(p, SYS_getpid, 0, 0), EPERM);
        assert_int_equal(call_under(p, SYS_getppid, 0, 0), 0);
        snprintf(p, sizeof(p), profile, ", \"defaultErrnoRet\": 13");
        assert_int_equal(call_under(p, SYS_getpid, 0, 0), EACCES);
}

static void test_kill_trap_trace_log(void **state)
{
        (void) state;
        static const char profile[] = "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": ["
                                      "{\"names\": [\"getppid\"], \"action\": \"%s\"}]}";
        char p[512];
        snprintf(p, sizeof(p), profile, "SCMP_ACT_KILL");
        assert_int_equal(call_under(p, SYS_getppid, 0, 0), 1000 + SIGSYS);
        snprintf(p, sizeof(p), profile, "SCMP_ACT_KILL_PROCESS");
        assert_int_equal(call_under(p, SYS_getppid, 0, 0), 1000 + SIGSYS);
        snprintf(p, sizeof(p), profile, "SCMP_ACT_KILL_THREAD");
        assert_int_equal(call_under(p, SYS_getppid, 0, 0), 1000 + SIGSYS);
        snprintf(p, sizeof(p), profile, "SCMP_ACT_TRAP");
        assert_int_equal(call_under(p, SYS_getppid, 0, 0), 1000 + SIGSYS);
        /* no tracer: the syscall fails with ENOSYS */
        snprintf(p, sizeof(p), profile, "SCMP_ACT_TRACE");
        assert_int_equal(call_under(p, SYS_getppid, 0, 0), ENOSYS);
        snprintf(p, sizeof(p), profile, "SCMP_ACT_LOG");
        assert_int_equal(call_under(p, SYS_getppid, 0, 0), 0);
}

#define ARGS_PROFILE(args)                                                                  \
        "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"getppid\"], " \
        "\"action\": \"SCMP_ACT_ERRNO\", \"args\": [" args "]}]}"

static void test_arg_conditions(void **state)
{
        (void) state;
        /* one condition */
        static const char eq[] = ARGS_PROFILE("{\"index\": 0, \"value\": 2, \"op\": \"SCMP_CMP_EQ\"}");
        assert_int_equal(call_under(eq, SYS_getppid, 2, 0), EPERM);
        assert_int_equal(call_under(eq, SYS_getppid, 1, 0), 0);
        static const char ge[] = ARGS_PROFILE("{\"index\": 1, \"value\": 10, \"op\": \"SCMP_CMP_GE\"}");
        assert_int_equal(call_under(ge, SYS_getppid, 0, 10), EPERM);
        assert_int_equal(call_under(ge, SYS_getppid, 0, 9), 0);
        /* value is the mask, valueTwo the datum */
        static const char masked[] =
                ARGS_PROFILE("{\"index\": 0, \"value\": 240, \"valueTwo\": 16, \"op\": \"SCMP_CMP_MASKED_EQ\"}");
        assert_int_equal(call_under(masked, SYS_getppid, 0x1f, 0), EPERM);
        assert_int_equal(call_under(masked, SYS_getppid, 0x2f, 0), 0);
        /* conditions on different arguments: all must hold */
        static const char and[] = ARGS_PROFILE("{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"},"
                                               "{\"index\": 1, \"value\": 2, \"op\": \"SCMP_CMP_EQ\"}");
        assert_int_equal(call_under(and, SYS_getppid, 1, 2), EPERM);
        assert_int_equal(call_under(and, SYS_getppid, 1, 3), 0);
        assert_int_equal(call_under(and, SYS_getppid, 3, 2), 0);
        /* several on one argument: one rule each, so any may match (runc) */
        static const char or[] = ARGS_PROFILE("{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"},"
                                              "{\"index\": 0, \"value\": 2, \"op\": \"SCMP_CMP_EQ\"}");
        assert_int_equal(call_under(or, SYS_getppid, 1, 0), EPERM);
        assert_int_equal(call_under(or, SYS_getppid, 2, 0), EPERM);
        assert_int_equal(call_under(or, SYS_getppid, 3, 0), 0);
}

static void test_socket_family(void **state)
{
        (void) state;
        static const char profile[] = ARGS_PROFILE("{\"index\": 0, \"value\": 2, \"op\": \"SCMP_CMP_EQ\"}");
        char p[sizeof(profile) + 16];
        /* the same profile for socket() instead of getppid() */
        const char *at = strstr(profile, "getppid");
        snprintf(p, sizeof(p), "%.*ssocket%s", (int) (at - profile), profile, at + strlen("getppid"));
        assert_int_equal(call_under(p, SYS_socket, AF_INET, SOCK_STREAM), EPERM);
        assert_int_equal(call_under(p, SYS_socket, AF_UNIX, SOCK_STREAM), 0);
}

static void test_loaded_filter_shows_in_status(void **state)
{
        (void) state;
        struct seccomp_ctx *ctx = expect_ok("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"flags\": "
                                            "[\"SECCOMP_FILTER_FLAG_TSYNC\", \"SECCOMP_FILTER_FLAG_LOG\"], \"syscalls\": "
                                            "[{\"names\": [\"getppid\"], \"action\": \"SCMP_ACT_ERRNO\"}]}");
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct berr e = { 0 };
                close(pfd[0]);
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || seccomp_filter_load(ctx, &e) < 0) {
                        dprintf(pfd[1], "load: %s", e.msg);
                        _exit(LOAD_FAILED);
                }
                FILE *f = fopen("/proc/self/status", "re");
                char line[256];
                while (f && fgets(line, sizeof(line), f))
                        if (strncmp(line, "Seccomp:", 8) == 0)
                                dprintf(pfd[1], "%s", line);
                _exit(0);
        }
        close(pfd[1]);
        char buf[256] = "";
        ssize_t n = read(pfd[0], buf, sizeof(buf) - 1);
        close(pfd[0]);
        assert_int_equal(child_result(pid), 0);
        assert_true(n > 0);
        buf[n] = '\0';
        assert_string_equal(buf, "Seccomp:\t2\n");
        seccomp_filter_free(ctx);
}

static void test_load_error_is_named(void **state)
{
        (void) state;
        /* Without no_new_privs and CAP_SYS_ADMIN the kernel says EACCES. */
        struct seccomp_ctx *ctx = expect_ok("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": "
                                            "[{\"names\": [\"getppid\"], \"action\": \"SCMP_ACT_ERRNO\"}]}");
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct berr e = { 0 };
                close(pfd[0]);
                /* drop CAP_SYS_ADMIN from the effective set (a no-op when
                 * not root, where it is not there anyway) */
                struct {
                        uint32_t version;
                        int pid;
                } hdr = { 0x20080522, 0 };
                struct {
                        uint32_t effective, permitted, inheritable;
                } data[2] = { { 0 } };
                if (syscall(SYS_capget, &hdr, data) == 0) {
                        data[0].effective &= ~(1u << 21);
                        syscall(SYS_capset, &hdr, data);
                }
                int r = seccomp_filter_load(ctx, &e);
                dprintf(pfd[1], "%d %s", r, e.msg);
                _exit(0);
        }
        close(pfd[1]);
        char buf[1200] = "";
        ssize_t n = read(pfd[0], buf, sizeof(buf) - 1);
        close(pfd[0]);
        assert_int_equal(child_result(pid), 0);
        assert_true(n > 0);
        buf[n] = '\0';
        char want[64];
        snprintf(want, sizeof(want), "%d ", -EACCES);
        if (strncmp(buf, want, strlen(want)) != 0 || !strstr(buf, "cannot load the seccomp filter"))
                fail_msg("unexpected: %s", buf);
        seccomp_filter_free(ctx);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_null_is_no_filter),
                cmocka_unit_test(test_top_level_errors),
                cmocka_unit_test(test_architecture_errors),
                cmocka_unit_test(test_flag_errors),
                cmocka_unit_test(test_syscall_errors),
                cmocka_unit_test(test_arg_errors),
                cmocka_unit_test(test_notify),
                cmocka_unit_test(test_all_actions_operators_archs_flags),
                cmocka_unit_test(test_unknown_syscalls_skipped),
                cmocka_unit_test(test_rule_like_default_skipped),
                cmocka_unit_test(test_prepare_leaves_no_fds),
                cmocka_unit_test(test_errno_actions),
                cmocka_unit_test(test_default_errno),
                cmocka_unit_test(test_kill_trap_trace_log),
                cmocka_unit_test(test_arg_conditions),
                cmocka_unit_test(test_socket_family),
                cmocka_unit_test(test_loaded_filter_shows_in_status),
                cmocka_unit_test(test_load_error_is_named),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

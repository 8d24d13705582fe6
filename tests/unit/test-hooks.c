/* Unit tests for ocirun/hooks: validation of the hooks object, and running
 * real hooks (/bin/sh and coreutils from the host) through every way they
 * can end: success, exit status, signal, timeout, exec failure. */
#include "unit-helpers.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "hooks.h"

static char *tmpdir;

static int setup(void **state)
{
        (void) state;
        tmpdir = unit_mkdtemp("hooks");
        return 0;
}

static int teardown(void **state)
{
        (void) state;
        unit_rm_tree(tmpdir);
        free(tmpdir);
        tmpdir = NULL;
        return 0;
}

static json_t *parse(const char *text)
{
        json_error_t jerr;
        json_t *j = json_loads(text, 0, &jerr);
        if (!j)
                fail_msg("bad test JSON: %s: %s", jerr.text, text);
        return j;
}

/* A state as `ocirun state` prints it, with the bundle in tmpdir. */
static json_t *test_state(void)
{
        json_t *s = json_pack("{s:s, s:s, s:s, s:i, s:s, s:{s:s}}", "ociVersion", "1.0.2", "id", "c1", "status",
                              "created", "pid", 4242, "bundle", tmpdir, "annotations", "k", "v");
        assert_non_null(s);
        return s;
}

/* hooks = { stage: [ {path: /bin/sh, args: [sh, -c, script]} ... ] } */
static json_t *sh_hooks(const char *stage, const char *const *scripts, size_t n)
{
        json_t *list = json_array();
        for (size_t i = 0; i < n; i++)
                json_array_append_new(list, json_pack("{s:s, s:[s,s,s]}", "path", "/bin/sh", "args", "sh", "-c",
                                                      scripts[i]));
        json_t *hooks = json_object();
        json_object_set_new(hooks, stage, list);
        return hooks;
}

static int run_sh(enum hook_stage stage, const char *script, struct berr *e)
{
        json_t *hooks = sh_hooks(hook_stage_name(stage), &script, 1);
        json_t *st = test_state();
        berr_clear(e);
        int r = hooks_run(hooks, stage, st, e);
        json_decref(st);
        json_decref(hooks);
        return r;
}

static char *file_in_tmp(const char *name)
{
        return unit_path(tmpdir, name);
}

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* ---- validation ---- */

static void expect_invalid(const char *text, const char *needle)
{
        json_t *j = parse(text);
        struct berr e = { 0 };
        int r = hooks_validate(j, &e);
        if (r != -EINVAL || !strstr(e.msg, needle))
                fail_msg("hooks %s\n  returned %d (%s), want -EINVAL with \"%s\"", text, r, e.msg, needle);
        /* hooks_run refuses the same, before running anything */
        for (int s = HOOK_PRESTART; s <= HOOK_POSTSTOP; s++) {
                berr_clear(&e);
                r = hooks_run(j, (enum hook_stage) s, NULL, &e);
                if (r < 0 && !strstr(e.msg, needle))
                        fail_msg("hooks_run %s: %s", text, e.msg);
        }
        json_decref(j);
}

static void test_stage_names(void **state)
{
        (void) state;
        assert_string_equal(hook_stage_name(HOOK_PRESTART), "prestart");
        assert_string_equal(hook_stage_name(HOOK_CREATE_RUNTIME), "createRuntime");
        assert_string_equal(hook_stage_name(HOOK_CREATE_CONTAINER), "createContainer");
        assert_string_equal(hook_stage_name(HOOK_START_CONTAINER), "startContainer");
        assert_string_equal(hook_stage_name(HOOK_POSTSTART), "poststart");
        assert_string_equal(hook_stage_name(HOOK_POSTSTOP), "poststop");
        assert_string_equal(hook_stage_name((enum hook_stage) 99), "unknown");
}

static void test_validate_ok(void **state)
{
        (void) state;
        struct berr e = { 0 };
        assert_int_equal(hooks_validate(NULL, &e), 0);
        json_t *j = json_null();
        assert_int_equal(hooks_validate(j, &e), 0);
        json_decref(j);
        j = parse("{\"prestart\": [{\"path\": \"/bin/true\"}],"
                  " \"createRuntime\": [{\"path\": \"/bin/true\", \"args\": [\"true\", \"x\"], \"env\": [\"A=b\"],"
                  "   \"timeout\": 5}],"
                  " \"createContainer\": [], \"startContainer\": null,"
                  " \"poststart\": [{\"path\": \"/x\", \"args\": null, \"env\": null, \"timeout\": null}],"
                  " \"poststop\": [{\"path\": \"/x\", \"somethingNew\": 1}],"
                  " \"futureStage\": 42}");
        /* unknown members are ignored, as the spec requires */
        assert_int_equal(hooks_validate(j, &e), 0);
        json_decref(j);
}

static void test_validate_errors(void **state)
{
        (void) state;
        expect_invalid("[]", "hooks must be an object");
        expect_invalid("{\"prestart\": {}}", "hooks.prestart must be an array");
        expect_invalid("{\"poststop\": [{\"path\": \"/bin/true\"}, 3]}", "hooks.poststop[1] must be an object");
        expect_invalid("{\"createRuntime\": [{\"args\": [\"x\"]}]}", "hooks.createRuntime[0].path is required");
        expect_invalid("{\"createContainer\": [{\"path\": 1}]}", "hooks.createContainer[0].path must be a string");
        expect_invalid("{\"startContainer\": [{\"path\": \"bin/true\"}]}",
                       "hooks.startContainer[0].path \"bin/true\" must be an absolute path");
        expect_invalid("{\"poststart\": [{\"path\": \"\"}]}", "hooks.poststart[0].path \"\" must be an absolute path");
        expect_invalid("{\"prestart\": [{\"path\": \"/x\", \"args\": \"x\"}]}",
                       "hooks.prestart[0].args must be an array of strings");
        expect_invalid("{\"prestart\": [{\"path\": \"/x\", \"args\": [\"x\", 2]}]}", "hooks.prestart[0].args[1] must be a string");
        expect_invalid("{\"prestart\": [{\"path\": \"/x\", \"env\": {\"A\": \"b\"}}]}",
                       "hooks.prestart[0].env must be an array of strings");
        expect_invalid("{\"prestart\": [{\"path\": \"/x\", \"env\": [null]}]}", "hooks.prestart[0].env[0] must be a string");
        expect_invalid("{\"prestart\": [{\"path\": \"/x\", \"timeout\": 0}]}",
                       "hooks.prestart[0].timeout must be an integer greater than zero");
        expect_invalid("{\"prestart\": [{\"path\": \"/x\", \"timeout\": -3}]}", "hooks.prestart[0].timeout must be");
        expect_invalid("{\"prestart\": [{\"path\": \"/x\", \"timeout\": \"5\"}]}", "hooks.prestart[0].timeout must be");
        expect_invalid("{\"prestart\": [{\"path\": \"/x\", \"timeout\": 1.5}]}", "hooks.prestart[0].timeout must be");
}

static void test_run_rejects_bad_stage_before_running(void **state)
{
        (void) state;
        char *marker = file_in_tmp("ran");
        char script[512];
        snprintf(script, sizeof(script), "touch %s", marker);
        json_t *hooks = sh_hooks("prestart", (const char *[]) { script }, 1);
        /* a malformed second hook: the first must not run either */
        json_array_append_new(json_object_get(hooks, "prestart"), json_pack("{s:s}", "path", "relative"));
        struct berr e = { 0 };
        assert_int_equal(hooks_run(hooks, HOOK_PRESTART, NULL, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "hooks.prestart[1].path"));
        assert_false(unit_exists(marker));
        json_decref(hooks);
        free(marker);
}

/* ---- running ---- */

static void test_no_hooks(void **state)
{
        (void) state;
        struct berr e = { 0 };
        assert_int_equal(hooks_run(NULL, HOOK_PRESTART, NULL, &e), 0);
        json_t *j = parse("{\"poststop\": [{\"path\": \"/nonexistent\"}]}");
        /* other stages are not run */
        assert_int_equal(hooks_run(j, HOOK_PRESTART, NULL, &e), 0);
        json_decref(j);
        j = parse("{\"prestart\": []}");
        assert_int_equal(hooks_run(j, HOOK_PRESTART, NULL, &e), 0);
        json_decref(j);
}

static void test_success(void **state)
{
        (void) state;
        struct berr e;
        assert_int_equal(run_sh(HOOK_CREATE_RUNTIME, "exit 0", &e), 0);
        /* what a successful hook says is not an error */
        assert_int_equal(run_sh(HOOK_CREATE_RUNTIME, "echo out; echo err >&2", &e), 0);
}

static void test_exit_status(void **state)
{
        (void) state;
        struct berr e;
        int r = run_sh(HOOK_PRESTART, "echo some output; echo 'it broke' >&2; exit 3", &e);
        assert_true(r < 0);
        assert_int_equal(e.err, -r);
        assert_string_equal(e.msg, "prestart hook \"/bin/sh\" failed: exit status 3: it broke");
        /* no stderr: no trailing colon */
        assert_true(run_sh(HOOK_CREATE_CONTAINER, "exit 1", &e) < 0);
        assert_string_equal(e.msg, "createContainer hook \"/bin/sh\" failed: exit status 1");
}

static void test_killed_by_signal(void **state)
{
        (void) state;
        struct berr e;
        assert_true(run_sh(HOOK_START_CONTAINER, "echo dying >&2; kill -TERM $$", &e) < 0);
        assert_string_equal(e.msg, "startContainer hook \"/bin/sh\" failed: killed by SIGTERM: dying");
}

static void test_timeout(void **state)
{
        (void) state;
        json_t *hooks = parse("{\"prestart\": [{\"path\": \"/bin/sleep\", \"args\": [\"sleep\", \"5\"], \"timeout\": 1}]}");
        struct berr e = { 0 };
        double t0 = now_s();
        int r = hooks_run(hooks, HOOK_PRESTART, NULL, &e);
        double took = now_s() - t0;
        assert_int_equal(r, -ETIMEDOUT);
        assert_string_equal(e.msg, "prestart hook \"/bin/sleep\" timed out after 1 s");
        assert_true(took >= 0.9 && took < 2.0);
        /* the hook was reaped: no child left */
        assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
        assert_int_equal(errno, ECHILD);
        json_decref(hooks);
}

static void test_fast_hook_with_timeout(void **state)
{
        (void) state;
        json_t *hooks = parse("{\"poststart\": [{\"path\": \"/bin/true\", \"timeout\": 30}]}");
        struct berr e = { 0 };
        double t0 = now_s();
        assert_int_equal(hooks_run(hooks, HOOK_POSTSTART, NULL, &e), 0);
        assert_true(now_s() - t0 < 1.0);
        json_decref(hooks);
}

static void test_state_on_stdin(void **state)
{
        (void) state;
        char *out = file_in_tmp("state.json");
        char script[512];
        snprintf(script, sizeof(script), "cat > %s", out);
        struct berr e;
        assert_int_equal(run_sh(HOOK_CREATE_RUNTIME, script, &e), 0);
        json_t *st = test_state();
        char *want = json_dumps(st, JSON_COMPACT);
        char *got = unit_read(out, NULL);
        assert_string_equal(got, want);
        free(got);
        free(want);
        json_decref(st);
        free(out);
}

static void test_large_state_not_read(void **state)
{
        (void) state;
        /* A state larger than a pipe holds, to a hook that never reads it:
         * no hang, no SIGPIPE for us (not blocked here), none left pending. */
        size_t big = 1 << 20;
        char *val = malloc(big + 1);
        assert_non_null(val);
        memset(val, 'a', big);
        val[big] = '\0';
        json_t *st = json_pack("{s:s, s:s}", "id", "c1", "big", val);
        free(val);
        json_t *hooks = parse("{\"poststop\": [{\"path\": \"/bin/true\"}], "
                              "\"prestart\": [{\"path\": \"/bin/sh\", \"args\": [\"sh\", \"-c\", \"exec <&-; sleep 0.1\"]}]}");
        sigset_t none, pending;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        struct berr e = { 0 };
        assert_int_equal(hooks_run(hooks, HOOK_POSTSTOP, st, &e), 0);
        assert_int_equal(hooks_run(hooks, HOOK_PRESTART, st, &e), 0);
        sigpending(&pending);
        assert_false(sigismember(&pending, SIGPIPE));
        json_decref(hooks);
        json_decref(st);
}

static void test_args_and_env(void **state)
{
        (void) state;
        char *out = file_in_tmp("args");
        char *envf = file_in_tmp("env");
        char script[512];
        snprintf(script, sizeof(script), "printf '%%s|%%s|%%s' \"$0\" \"$1\" \"$FOO\" > %s; env > %s", out, envf);
        json_t *hooks = json_pack("{s:[{s:s, s:[s,s,s,s,s], s:[s,s]}]}", "createRuntime", "path", "/bin/sh", "args",
                                  "my-hook", "-c", script, "zero", "one", "env", "FOO=bar", "OTHER=1");
        /* argv[0] from args: sh takes $0 from the word after the script */
        setenv("BERTH_UNIT_OCIRUN_ENV", "leak", 1);
        struct berr e = { 0 };
        assert_int_equal(hooks_run(hooks, HOOK_CREATE_RUNTIME, NULL, &e), 0);
        char *got = unit_read(out, NULL);
        assert_string_equal(got, "zero|one|bar");
        free(got);
        got = unit_read(envf, NULL);
        assert_non_null(strstr(got, "FOO=bar\n"));
        assert_non_null(strstr(got, "OTHER=1\n"));
        /* the given env replaces ocirun's */
        assert_null(strstr(got, "BERTH_UNIT_OCIRUN_ENV"));
        free(got);
        unsetenv("BERTH_UNIT_OCIRUN_ENV");
        json_decref(hooks);
        free(out);
        free(envf);
}

static void test_argv0_and_env_defaults(void **state)
{
        (void) state;
        /* Without args, argv = [path]; without env, ocirun's environment
         * (as runc and crun). The hook starts in the bundle directory. */
        char *script = file_in_tmp("hook.sh");
        char *out = file_in_tmp("argv0");
        char text[512];
        snprintf(text, sizeof(text), "#!/bin/sh\nprintf '%%s|%%s|%%s|%%s' \"$0\" \"$#\" \"$BERTH_UNIT_MARK\" \"$PWD\" > %s\n",
                 out);
        unit_write_str(script, text);
        assert_int_equal(chmod(script, 0755), 0);
        json_t *hooks = json_pack("{s:[{s:s}]}", "poststop", "path", script);
        json_t *st = test_state();
        setenv("BERTH_UNIT_MARK", "inherited", 1);
        struct berr e = { 0 };
        assert_int_equal(hooks_run(hooks, HOOK_POSTSTOP, st, &e), 0);
        unsetenv("BERTH_UNIT_MARK");
        char *got = unit_read(out, NULL);
        char want[1024];
        snprintf(want, sizeof(want), "%s|0|inherited|%s", script, tmpdir);
        assert_string_equal(got, want);
        free(got);
        json_decref(st);
        json_decref(hooks);
        free(out);
        free(script);
}

static void test_exec_failure(void **state)
{
        (void) state;
        json_t *hooks = parse("{\"createRuntime\": [{\"path\": \"/nonexistent/hook\"}]}");
        struct berr e = { 0 };
        assert_int_equal(hooks_run(hooks, HOOK_CREATE_RUNTIME, NULL, &e), -ENOENT);
        char want[256];
        snprintf(want, sizeof(want), "createRuntime hook \"/nonexistent/hook\": cannot execute it: %s", strerror(ENOENT));
        assert_string_equal(e.msg, want);
        json_decref(hooks);
        /* not executable */
        char *f = file_in_tmp("plain");
        unit_write_str(f, "#!/bin/sh\nexit 0\n");
        assert_int_equal(chmod(f, 0644), 0);
        hooks = json_pack("{s:[{s:s}]}", "prestart", "path", f);
        assert_int_equal(hooks_run(hooks, HOOK_PRESTART, NULL, &e), -EACCES);
        json_decref(hooks);
        free(f);
}

static void test_stop_or_continue_after_failure(void **state)
{
        (void) state;
        char *marker = file_in_tmp("second");
        char second[512];
        snprintf(second, sizeof(second), "echo ran >> %s", marker);
        const char *scripts[] = { "echo first failed >&2; exit 2", second };
        struct berr e = { 0 };

        /* poststart and poststop: a warning, the rest still runs, 0 */
        for (int stage = HOOK_POSTSTART; stage <= HOOK_POSTSTOP; stage++) {
                json_t *hooks = sh_hooks(hook_stage_name((enum hook_stage) stage), scripts, 2);
                berr_clear(&e);
                assert_int_equal(hooks_run(hooks, (enum hook_stage) stage, NULL, &e), 0);
                assert_int_equal(e.err, 0);
                json_decref(hooks);
        }
        char *got = unit_read(marker, NULL);
        assert_string_equal(got, "ran\nran\n");
        free(got);
        unlink(marker);

        /* the others stop at the first failure and return it */
        for (int stage = HOOK_PRESTART; stage <= HOOK_START_CONTAINER; stage++) {
                json_t *hooks = sh_hooks(hook_stage_name((enum hook_stage) stage), scripts, 2);
                assert_true(hooks_run(hooks, (enum hook_stage) stage, NULL, &e) < 0);
                assert_non_null(strstr(e.msg, "failed: exit status 2: first failed"));
                assert_non_null(strstr(e.msg, hook_stage_name((enum hook_stage) stage)));
                json_decref(hooks);
        }
        assert_false(unit_exists(marker));
        free(marker);
}

static void test_only_stdio_fds(void **state)
{
        (void) state;
        /* an fd ocirun holds without O_CLOEXEC must not reach the hook */
        int fd = open("/dev/null", O_RDONLY);
        assert_true(fd >= 0);
        assert_int_equal(dup2(fd, 50), 50);
        close(fd);
        struct berr e;
        int r = run_sh(HOOK_CREATE_RUNTIME, "test -e /proc/self/fd/50 && echo fd 50 leaked >&2 && exit 1; exit 0", &e);
        close(50);
        if (r < 0)
                fail_msg("%s", e.msg);
}

static void test_all_signals_blocked(void **state)
{
        (void) state;
        /* ocirun runs hooks with every signal blocked: the hook must start
         * with none blocked, and the timeout must work without SIGCHLD. */
        sigset_t all, saved;
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, &saved);
        char *out = file_in_tmp("mask");
        char script[512];
        snprintf(script, sizeof(script), "grep SigBlk /proc/self/status > %s", out);
        struct berr e;
        assert_int_equal(run_sh(HOOK_CREATE_RUNTIME, script, &e), 0);
        char *got = unit_read(out, NULL);
        assert_string_equal(got, "SigBlk:\t0000000000000000\n");
        free(got);
        free(out);

        json_t *hooks = parse("{\"prestart\": [{\"path\": \"/bin/sleep\", \"args\": [\"sleep\", \"5\"], \"timeout\": 1}]}");
        double t0 = now_s();
        assert_int_equal(hooks_run(hooks, HOOK_PRESTART, NULL, &e), -ETIMEDOUT);
        assert_true(now_s() - t0 < 2.0);
        json_decref(hooks);

        sigset_t pending;
        sigpending(&pending);
        sigprocmask(SIG_SETMASK, &saved, NULL);
        /* the SIGCHLDs stay pending for ocirun to deal with as it likes */
        (void) pending;
}

static void test_sigchld_ignored(void **state)
{
        (void) state;
        /* The exit status is still seen when ocirun ignores SIGCHLD. */
        struct sigaction ign = { .sa_handler = SIG_IGN }, saved, now;
        sigaction(SIGCHLD, &ign, &saved);
        struct berr e;
        assert_true(run_sh(HOOK_PRESTART, "exit 6", &e) < 0);
        assert_string_equal(e.msg, "prestart hook \"/bin/sh\" failed: exit status 6");
        sigaction(SIGCHLD, NULL, &now);
        assert_true(now.sa_handler == SIG_IGN);
        sigaction(SIGCHLD, &saved, NULL);
}

static void test_long_stderr_is_trimmed(void **state)
{
        (void) state;
        struct berr e;
        int r = run_sh(HOOK_PRESTART,
                       "i=0; while [ $i -lt 200 ]; do printf 'line %03d of noise\\n' $i >&2; i=$((i+1)); done;"
                       " echo 'the real reason' >&2; exit 4",
                       &e);
        assert_true(r < 0);
        assert_non_null(strstr(e.msg, "failed: exit status 4: ..."));
        /* the end is kept, newlines flattened, length bounded */
        size_t len = strlen(e.msg);
        assert_true(len < 700);
        assert_string_equal(e.msg + len - strlen("the real reason"), "the real reason");
        assert_null(strchr(e.msg, '\n'));
}

static void test_background_child_does_not_block(void **state)
{
        (void) state;
        /* A hook that leaves a process holding its stdout/stderr: we return
         * when the hook exits, not when the pipes close. */
        struct berr e;
        double t0 = now_s();
        assert_int_equal(run_sh(HOOK_POSTSTART, "sleep 3 & echo started", &e), 0);
        assert_true(now_s() - t0 < 1.5);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_stage_names),
                cmocka_unit_test(test_validate_ok),
                cmocka_unit_test(test_validate_errors),
                cmocka_unit_test(test_run_rejects_bad_stage_before_running),
                cmocka_unit_test(test_no_hooks),
                cmocka_unit_test(test_success),
                cmocka_unit_test(test_exit_status),
                cmocka_unit_test(test_killed_by_signal),
                cmocka_unit_test(test_timeout),
                cmocka_unit_test(test_fast_hook_with_timeout),
                cmocka_unit_test(test_state_on_stdin),
                cmocka_unit_test(test_large_state_not_read),
                cmocka_unit_test(test_args_and_env),
                cmocka_unit_test(test_argv0_and_env_defaults),
                cmocka_unit_test(test_exec_failure),
                cmocka_unit_test(test_stop_or_continue_after_failure),
                cmocka_unit_test(test_only_stdio_fds),
                cmocka_unit_test(test_all_signals_blocked),
                cmocka_unit_test(test_sigchld_ignored),
                cmocka_unit_test(test_long_stderr_is_trimmed),
                cmocka_unit_test(test_background_child_does_not_block),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}

/* Unit tests for supervisor/container-spec: the default OCI spec from an
 * image config and the caller's options, users and groups resolved
 * through the layers' /etc/passwd and /etc/group (top layer first), and
 * the layer directories of a snapshot's mount. */
#include "unit-helpers.h"

#include "cleanup.h"
#include "container-spec.h"

struct fixture {
        char *dir;
        char *dirs[3];  /* top, lower, NULL */
};

static void mkdirs(const char *top, const char *rel)
{
        _cleanup_free_ char *p = unit_path(top, rel);
        assert_int_equal(mkdir(p, 0755), 0);
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        f->dir = unit_mkdtemp("spec");
        f->dirs[0] = unit_path(f->dir, "top");
        f->dirs[1] = unit_path(f->dir, "lower");
        for (int i = 0; i < 2; i++) {
                assert_int_equal(mkdir(f->dirs[i], 0755), 0);
                mkdirs(f->dirs[i], "etc");
        }
        _cleanup_free_ char *pw = unit_path(f->dirs[1], "etc/passwd");
        _cleanup_free_ char *gr = unit_path(f->dirs[1], "etc/group");
        unit_write_str(pw, "root:x:0:0:root:/root:/bin/sh\n"
                           "alice:x:1234:2345:alice:/home/alice:/bin/sh\n"
                           "nobody:x:65534:65534:nobody:/:/bin/false\n");
        unit_write_str(gr, "root:x:0:\nstaff:x:50:alice\nalice:x:2345:\n");
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        unit_rm_tree(f->dir);
        free(f->dir);
        free(f->dirs[0]);
        free(f->dirs[1]);
        free(f);
        return 0;
}

static void resolve_ok(char *const *dirs, const char *user, uint32_t uid, uint32_t gid)
{
        struct berr e = { 0 };
        uint32_t u = 99, g = 99;
        if (container_user_resolve(user, dirs, &u, &g, &e) < 0)
                fail_msg("%s: %s", user ? user : "(none)", e.msg);
        assert_int_equal(u, uid);
        assert_int_equal(g, gid);
}

static void test_user_resolve(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        uint32_t u, g;

        resolve_ok(f->dirs, NULL, 0, 0);
        resolve_ok(f->dirs, "", 0, 0);
        resolve_ok(f->dirs, "alice", 1234, 2345);
        resolve_ok(f->dirs, "alice:staff", 1234, 50);
        resolve_ok(f->dirs, "alice:7", 1234, 7);
        resolve_ok(f->dirs, "1234", 1234, 2345);   /* numeric: the group from passwd */
        resolve_ok(f->dirs, "4321", 4321, 0);      /* not in passwd: group 0 */
        resolve_ok(f->dirs, "4321:staff", 4321, 50);
        resolve_ok(f->dirs, "0:0", 0, 0);

        assert_int_equal(container_user_resolve("bob", f->dirs, &u, &g, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "unable to find user bob"));
        assert_int_equal(container_user_resolve("alice:wheel", f->dirs, &u, &g, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "unable to find group wheel"));
        char *none[] = { f->dirs[0], NULL };
        assert_int_equal(container_user_resolve("alice", none, &u, &g, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "no /etc/passwd"));
        resolve_ok(none, "12:34", 12, 34);
}

static void test_top_layer_wins(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *pw = unit_path(f->dirs[0], "etc/passwd");
        unit_write_str(pw, "alice:x:1111:2222::/:/bin/sh\n");
        resolve_ok(f->dirs, "alice", 1111, 2222);
        /* the lower layer's other users are hidden by the top file */
        struct berr e = { 0 };
        uint32_t u, g;
        assert_int_equal(container_user_resolve("nobody", f->dirs, &u, &g, &e), -EINVAL);
}

static void test_passwd_symlink_stays_in_layer(void **state)
{
        struct fixture *f = *state;
        /* a passwd that is a symlink out of the layer is not followed */
        _cleanup_free_ char *pw = unit_path(f->dirs[0], "etc/passwd");
        _cleanup_free_ char *outside = unit_path(f->dir, "outside");
        unit_write_str(outside, "alice:x:7:7::/:/bin/sh\n");
        assert_int_equal(symlink(outside, pw), 0);
        struct berr e = { 0 };
        uint32_t u = 0, g = 0;
        int r = container_user_resolve("alice", f->dirs, &u, &g, &e);
        assert_false(r == 0 && u == 7);
}

static void test_layer_dirs(void **state)
{
        (void) state;
        char **v = NULL;
        assert_int_equal(container_layer_dirs("bind", "/s/5/fs", "rbind,rw", &v), 0);
        assert_string_equal(v[0], "/s/5/fs");
        assert_null(v[1]);
        strv_free(v);
        assert_int_equal(container_layer_dirs("overlay", "overlay",
                                              "workdir=/s/3/work,upperdir=/s/3/fs,lowerdir=/s/2/fs:/s/1/fs", &v),
                         0);
        assert_string_equal(v[0], "/s/3/fs");
        assert_string_equal(v[1], "/s/2/fs");
        assert_string_equal(v[2], "/s/1/fs");
        assert_null(v[3]);
        strv_free(v);
        /* a view: lowerdirs only */
        assert_int_equal(container_layer_dirs("overlay", "overlay", "lowerdir=/s/2/fs:/s/1/fs", &v), 0);
        assert_string_equal(v[0], "/s/2/fs");
        assert_string_equal(v[1], "/s/1/fs");
        assert_null(v[2]);
        strv_free(v);
        assert_int_equal(container_layer_dirs("overlay", "overlay", NULL, &v), 0);
        assert_null(v[0]);
        strv_free(v);
}

static json_t *config(const char *json)
{
        json_error_t je;
        json_t *j = json_loads(json, 0, &je);
        if (!j)
                fail_msg("config: %s", je.text);
        return j;
}

static const char *str_at(json_t *a, size_t i)
{
        return json_string_value(json_array_get(a, i));
}

static bool has_string(json_t *a, const char *s)
{
        size_t i;
        json_t *v;
        json_array_foreach(a, i, v)
                if (strcmp(json_string_value(v), s) == 0)
                        return true;
        return false;
}

static void test_spec_from_image(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        json_t *cfg = config("{\"config\": {\"Entrypoint\": [\"/bin/sh\", \"-c\"], \"Cmd\": [\"echo hi\"],"
                             " \"Env\": [\"A=1\", \"PATH=/opt/bin\"], \"WorkingDir\": \"/srv\", \"User\": \"alice\"}}");
        json_t *spec = NULL;
        assert_int_equal(container_spec_default("web", cfg, NULL, f->dirs, &spec, &e), 0);
        json_t *proc = json_object_get(spec, "process");
        json_t *args = json_object_get(proc, "args");
        assert_int_equal(json_array_size(args), 3);
        assert_string_equal(str_at(args, 0), "/bin/sh");
        assert_string_equal(str_at(args, 2), "echo hi");
        json_t *env = json_object_get(proc, "env");
        assert_true(has_string(env, "A=1"));
        assert_true(has_string(env, "PATH=/opt/bin"));
        assert_int_equal(json_array_size(env), 2);
        assert_string_equal(json_string_value(json_object_get(proc, "cwd")), "/srv");
        assert_int_equal(json_integer_value(json_object_get(json_object_get(proc, "user"), "uid")), 1234);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(proc, "user"), "gid")), 2345);
        assert_false(json_boolean_value(json_object_get(proc, "terminal")));
        assert_string_equal(json_string_value(json_object_get(spec, "hostname")), "web");
        json_t *lx = json_object_get(spec, "linux");
        assert_string_equal(json_string_value(json_object_get(lx, "cgroupsPath")), "/berth/web");
        assert_null(json_object_get(json_object_get(lx, "resources"), "memory"));
        json_t *caps = json_object_get(proc, "capabilities");
        assert_true(has_string(json_object_get(caps, "bounding"), "CAP_CHOWN"));
        assert_true(has_string(json_object_get(caps, "effective"), "CAP_KILL"));
        assert_false(has_string(json_object_get(caps, "bounding"), "CAP_SYS_ADMIN"));
        assert_int_equal(json_array_size(json_object_get(lx, "namespaces")), 5);
        json_decref(spec);
        json_decref(cfg);
}

static void test_spec_overrides(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        json_t *cfg = config("{\"config\": {\"Entrypoint\": [\"/entry\"], \"Cmd\": [\"default\"],"
                             " \"Env\": [\"A=1\", \"B=2\"], \"User\": \"alice\"}}");
        char *args[] = { "x", "y", NULL };
        char *env[] = { "B=3", "C=4", NULL };
        struct container_spec_options o = { .args = args, .env = env, .cwd = "/tmp", .user = "0:50",
                                            .terminal = true, .memory = 64 << 20 };
        json_t *spec = NULL;
        assert_int_equal(container_spec_default("t1", cfg, &o, f->dirs, &spec, &e), 0);
        json_t *proc = json_object_get(spec, "process");
        json_t *a = json_object_get(proc, "args");
        assert_int_equal(json_array_size(a), 3); /* the Entrypoint stays, the args replace Cmd */
        assert_string_equal(str_at(a, 0), "/entry");
        assert_string_equal(str_at(a, 1), "x");
        json_t *ev = json_object_get(proc, "env");
        assert_true(has_string(ev, "A=1"));
        assert_true(has_string(ev, "B=3"));
        assert_false(has_string(ev, "B=2"));
        assert_true(has_string(ev, "C=4"));
        assert_true(has_string(ev, "TERM=xterm"));
        bool path = false;
        for (size_t i = 0; i < json_array_size(ev); i++)
                path |= strncmp(str_at(ev, i), "PATH=", 5) == 0;
        assert_true(path);
        assert_string_equal(json_string_value(json_object_get(proc, "cwd")), "/tmp");
        assert_int_equal(json_integer_value(json_object_get(json_object_get(proc, "user"), "uid")), 0);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(proc, "user"), "gid")), 50);
        assert_true(json_boolean_value(json_object_get(proc, "terminal")));
        json_t *mem = json_object_get(json_object_get(json_object_get(spec, "linux"), "resources"), "memory");
        assert_int_equal(json_integer_value(json_object_get(mem, "limit")), 64 << 20);
        json_decref(spec);
        json_decref(cfg);
}

static void test_spec_errors(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        json_t *spec = NULL;
        json_t *empty = config("{\"config\": {}}");
        assert_int_equal(container_spec_default("t", empty, NULL, f->dirs, &spec, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "no command"));
        assert_null(spec);
        /* no image config at all: the caller's args are enough, cwd "/" */
        char *args[] = { "/bin/true", NULL };
        struct container_spec_options o = { .args = args };
        assert_int_equal(container_spec_default("t", NULL, &o, f->dirs, &spec, &e), 0);
        assert_string_equal(json_string_value(json_object_get(json_object_get(spec, "process"), "cwd")), "/");
        json_decref(spec);
        spec = NULL;
        o.cwd = "relative";
        assert_int_equal(container_spec_default("t", NULL, &o, f->dirs, &spec, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "not absolute"));
        o.cwd = NULL;
        o.user = "nosuchuser";
        assert_int_equal(container_spec_default("t", NULL, &o, f->dirs, &spec, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "nosuchuser"));
        assert_null(spec);
        json_decref(empty);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_user_resolve, setup, teardown),
                cmocka_unit_test_setup_teardown(test_top_layer_wins, setup, teardown),
                cmocka_unit_test_setup_teardown(test_passwd_symlink_stays_in_layer, setup, teardown),
                cmocka_unit_test(test_layer_dirs),
                cmocka_unit_test_setup_teardown(test_spec_from_image, setup, teardown),
                cmocka_unit_test_setup_teardown(test_spec_overrides, setup, teardown),
                cmocka_unit_test_setup_teardown(test_spec_errors, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

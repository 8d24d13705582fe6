/* Unit tests for supervisor/registry-auth: config.json lookups and
 * WWW-Authenticate parsing, login server addresses. */
#include "unit-helpers.h"

#include "cleanup.h"
#include "registry-auth.h"

static char *write_config(const char *dir, const char *json)
{
        char *p = unit_path(dir, "config.json");
        unit_write_str(p, json);
        return p;
}

static void test_lookup(void **state)
{
        (void) state;
        char *dir = unit_mkdtemp("auth");
        /* "alice:s3cr:et" and "bob:pw" in base64 */
        char *cfg = write_config(dir, "{\"auths\":{"
                                      "\"https://index.docker.io/v1/\":{\"auth\":\"YWxpY2U6czNjcjpldA==\"},"
                                      "\"localhost:5000\":{\"username\":\"carol\",\"password\":\"pw2\"},"
                                      "\"http://reg.example.com:8443/some/path\":{\"auth\":\"Ym9iOnB3\"},"
                                      "\"tokenonly.example.com\":{\"identitytoken\":\"x\"},"
                                      "\"bad.example.com\":{\"auth\":\"!!!notbase64\"}}}");
        struct registry_credentials c = { 0 };
        struct berr e = { 0 };

        assert_int_equal(registry_auth_lookup(cfg, "docker.io", &c, &e), 1);
        assert_string_equal(c.username, "alice");
        assert_string_equal(c.password, "s3cr:et");
        registry_credentials_done(&c);
        assert_int_equal(registry_auth_lookup(cfg, "localhost:5000", &c, &e), 1);
        assert_string_equal(c.username, "carol");
        assert_string_equal(c.password, "pw2");
        registry_credentials_done(&c);
        assert_int_equal(registry_auth_lookup(cfg, "reg.example.com:8443", &c, &e), 1);
        assert_string_equal(c.username, "bob");
        assert_string_equal(c.password, "pw");
        registry_credentials_done(&c);
        assert_int_equal(registry_auth_lookup(cfg, "localhost:5001", &c, &e), 0);
        assert_null(c.username);
        assert_int_equal(registry_auth_lookup(cfg, "tokenonly.example.com", &c, &e), 0);
        assert_int_equal(registry_auth_lookup(cfg, "bad.example.com", &c, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "base64"));
        free(cfg);

        cfg = write_config(dir, "{\"auths\": 3}");
        assert_int_equal(registry_auth_lookup(cfg, "docker.io", &c, &e), -EINVAL);
        free(cfg);
        cfg = write_config(dir, "{}");
        assert_int_equal(registry_auth_lookup(cfg, "docker.io", &c, &e), 0);
        free(cfg);
        cfg = unit_path(dir, "missing.json");
        assert_int_equal(registry_auth_lookup(cfg, "docker.io", &c, &e), -ENOENT);
        assert_non_null(strstr(e.msg, "missing.json"));
        free(cfg);
        unit_rm_tree(dir);
        free(dir);
}

static void test_challenge(void **state)
{
        (void) state;
        struct registry_challenge c;
        struct berr e = { 0 };

        assert_int_equal(registry_challenge_parse("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:library/busybox:pull\"",
                                                  &c, &e),
                         0);
        assert_true(registry_challenge_is_bearer(&c));
        assert_string_equal(c.realm, "https://auth.docker.io/token");
        assert_string_equal(c.service, "registry.docker.io");
        assert_string_equal(c.scope, "repository:library/busybox:pull");
        registry_challenge_done(&c);

        assert_int_equal(registry_challenge_parse("Basic realm=\"basic-realm\"", &c, &e), 0);
        assert_false(registry_challenge_is_bearer(&c));
        assert_string_equal(c.realm, "basic-realm");
        assert_null(c.service);
        registry_challenge_done(&c);

        /* unquoted values, escapes, spaces, an unknown scheme first */
        assert_int_equal(registry_challenge_parse("Negotiate abc, bearer  realm = http://127.0.0.1:1/t , service=\"a\\\"b\"",
                                                  &c, &e),
                         0);
        assert_true(registry_challenge_is_bearer(&c));
        assert_string_equal(c.realm, "http://127.0.0.1:1/t");
        assert_string_equal(c.service, "a\"b");
        registry_challenge_done(&c);

        assert_int_equal(registry_challenge_parse("Bearer service=\"x\"", &c, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "without a realm"));
        assert_int_equal(registry_challenge_parse("Digest realm=\"x\"", &c, &e), -ENOTSUP);
        assert_int_equal(registry_challenge_parse("Bearer realm=\"unterminated", &c, &e), -EINVAL);
        assert_int_equal(registry_challenge_parse("", &c, &e), -ENOTSUP);
}

/* docker login's server addresses as registries */
static void test_domain(void **state)
{
        (void) state;
        static const char *const cases[][2] = {
                { "", "docker.io" },
                { "https://index.docker.io/v1/", "docker.io" },
                { "index.docker.io", "docker.io" },
                { "registry-1.docker.io", "docker.io" },
                { "127.0.0.1:5000", "127.0.0.1:5000" },
                { "http://reg.example.com:8443/some/path", "reg.example.com:8443" },
        };
        char buf[256];
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                registry_auth_domain(cases[i][0], buf, sizeof(buf));
                assert_string_equal(buf, cases[i][1]);
        }
        registry_auth_domain(NULL, buf, sizeof(buf));
        assert_string_equal(buf, "docker.io");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_lookup),
                cmocka_unit_test(test_challenge),
                cmocka_unit_test(test_domain),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

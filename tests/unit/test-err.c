/* Unit tests for common/err: struct berr messages and -errno returns. */
#include "unit-helpers.h"

#include "err.h"

/* A berr with guard bytes on both sides, to catch writes past msg even in
 * builds without AddressSanitizer. */
struct guarded {
        unsigned char before[64];
        struct berr e;
        unsigned char after[64];
};

static void guard_init(struct guarded *g)
{
        memset(g, 0xa5, sizeof(*g));
        g->e.err = 0;
        g->e.msg[0] = '\0';
}

static void guard_check(const struct guarded *g)
{
        for (size_t i = 0; i < sizeof(g->before); i++)
                assert_int_equal(g->before[i], 0xa5);
        for (size_t i = 0; i < sizeof(g->after); i++)
                assert_int_equal(g->after[i], 0xa5);
        assert_true(memchr(g->e.msg, '\0', sizeof(g->e.msg)) != NULL);
}

static char *expect_with_strerror(const char *msg, int err)
{
        char *s = NULL;
        assert_true(asprintf(&s, "%s: %s", msg, strerror(err)) > 0);
        return s;
}

static void test_set_appends_strerror(void **state)
{
        (void) state;
        struct berr e = { 0 };

        assert_int_equal(berr_set(&e, ENOENT, "cannot open \"%s\"", "/x/y"), -ENOENT);
        assert_int_equal(e.err, ENOENT);
        char *want = expect_with_strerror("cannot open \"/x/y\"", ENOENT);
        assert_string_equal(e.msg, want);
        free(want);

        /* the sign of err does not matter */
        assert_int_equal(berr_set(&e, -EACCES, "mount %d", 3), -EACCES);
        assert_int_equal(e.err, EACCES);
        want = expect_with_strerror("mount 3", EACCES);
        assert_string_equal(e.msg, want);
        free(want);
}

static void test_setx_has_no_strerror(void **state)
{
        (void) state;
        struct berr e = { 0 };

        assert_int_equal(berr_setx(&e, EINVAL, "process.args must be %s", "an array"), -EINVAL);
        assert_int_equal(e.err, EINVAL);
        assert_string_equal(e.msg, "process.args must be an array");

        assert_int_equal(berr_setx(&e, -EPERM, "plain"), -EPERM);
        assert_int_equal(e.err, EPERM);
        assert_string_equal(e.msg, "plain");
}

static void test_zero_becomes_einval(void **state)
{
        (void) state;
        struct berr e = { 0 };

        assert_int_equal(berr_set(&e, 0, "zero"), -EINVAL);
        assert_int_equal(e.err, EINVAL);
        char *want = expect_with_strerror("zero", EINVAL);
        assert_string_equal(e.msg, want);
        free(want);

        assert_int_equal(berr_setx(&e, 0, "zero"), -EINVAL);
        assert_int_equal(e.err, EINVAL);
        assert_string_equal(e.msg, "zero");
}

static void test_null_berr(void **state)
{
        (void) state;
        assert_int_equal(berr_set(NULL, ENOENT, "x %s", "y"), -ENOENT);
        assert_int_equal(berr_setx(NULL, -EBUSY, "x"), -EBUSY);
        assert_int_equal(berr_set(NULL, 0, "x"), -EINVAL);
        assert_int_equal(berr_prefix(NULL, "ctx"), -EINVAL);
        berr_clear(NULL);
}

static void test_prefix(void **state)
{
        (void) state;
        struct berr e = { 0 };

        berr_setx(&e, ENOENT, "no such thing");
        assert_int_equal(berr_prefix(&e, "layer %d", 2), -ENOENT);
        assert_string_equal(e.msg, "layer 2: no such thing");
        assert_int_equal(e.err, ENOENT);
        assert_int_equal(berr_prefix(&e, "ocirun"), -ENOENT);
        assert_string_equal(e.msg, "ocirun: layer 2: no such thing");

        berr_set(&e, EEXIST, "mkdir \"%s\"", "/run/x");
        assert_int_equal(berr_prefix(&e, "create"), -EEXIST);
        char *want = expect_with_strerror("create: mkdir \"/run/x\"", EEXIST);
        assert_string_equal(e.msg, want);
        free(want);
}

static void test_clear(void **state)
{
        (void) state;
        struct berr e = { 0 };
        berr_set(&e, EIO, "x");
        berr_clear(&e);
        assert_int_equal(e.err, 0);
        assert_string_equal(e.msg, "");
}

static char *long_string(size_t n, char c)
{
        char *s = malloc(n + 1);
        assert_non_null(s);
        memset(s, c, n);
        s[n] = '\0';
        return s;
}

static void test_long_messages_truncate(void **state)
{
        (void) state;
        struct guarded g;
        char *big = long_string(3 * BERR_MSG_MAX, 'x');

        guard_init(&g);
        assert_int_equal(berr_set(&g.e, ENOENT, "%s", big), -ENOENT);
        guard_check(&g);
        assert_int_equal(strlen(g.e.msg), BERR_MSG_MAX - 1);
        assert_memory_equal(g.e.msg, big, BERR_MSG_MAX - 1);
        assert_int_equal(g.e.err, ENOENT);

        guard_init(&g);
        assert_int_equal(berr_setx(&g.e, EIO, "%s", big), -EIO);
        guard_check(&g);
        assert_int_equal(strlen(g.e.msg), BERR_MSG_MAX - 1);

        /* just short enough for the message, not for the strerror suffix */
        for (size_t n = BERR_MSG_MAX - 8; n < BERR_MSG_MAX + 2; n++) {
                char *s = long_string(n, 'y');
                guard_init(&g);
                assert_int_equal(berr_set(&g.e, EACCES, "%s", s), -EACCES);
                guard_check(&g);
                assert_true(strlen(g.e.msg) <= BERR_MSG_MAX - 1);
                assert_memory_equal(g.e.msg, s, n < BERR_MSG_MAX - 1 ? n : BERR_MSG_MAX - 1);
                free(s);
        }

        /* a long context keeps its start; a long message keeps the context */
        guard_init(&g);
        berr_setx(&g.e, EINVAL, "inner");
        assert_int_equal(berr_prefix(&g.e, "%s", big), -EINVAL);
        guard_check(&g);
        assert_true(strlen(g.e.msg) <= BERR_MSG_MAX - 1);
        assert_memory_equal(g.e.msg, big, BERR_MSG_MAX - 8);

        guard_init(&g);
        berr_setx(&g.e, EINVAL, "%s", big);
        assert_int_equal(berr_prefix(&g.e, "ctx"), -EINVAL);
        guard_check(&g);
        assert_int_equal(strlen(g.e.msg), BERR_MSG_MAX - 1);
        assert_memory_equal(g.e.msg, "ctx: xxxx", 9);

        /* repeated prefixing never grows past the buffer */
        guard_init(&g);
        berr_setx(&g.e, EINVAL, "base");
        for (int i = 0; i < 500; i++)
                berr_prefix(&g.e, "level %d", i);
        guard_check(&g);
        assert_int_equal(strlen(g.e.msg), BERR_MSG_MAX - 1);
        assert_memory_equal(g.e.msg, "level 499: level 498: ", 22);

        free(big);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_set_appends_strerror),
                cmocka_unit_test(test_setx_has_no_strerror),
                cmocka_unit_test(test_zero_becomes_einval),
                cmocka_unit_test(test_null_berr),
                cmocka_unit_test(test_prefix),
                cmocka_unit_test(test_clear),
                cmocka_unit_test(test_long_messages_truncate),
        };
        return cmocka_run_group_tests_name("err", tests, NULL, NULL) ? 1 : 0;
}

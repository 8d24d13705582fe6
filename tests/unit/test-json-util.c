/* Unit tests for common/json-util: loading with useful errors, the typed
 * getters and atomic writes. */
#include "unit-helpers.h"

#include "cleanup.h"
#include "json-util.h"

static int setup(void **state)
{
        *state = unit_mkdtemp("json");
        return 0;
}

static int teardown(void **state)
{
        unit_rm_tree(*state);
        free(*state);
        return 0;
}

static char *write_tmp(const char *dir, const char *name, const char *content)
{
        char *p = unit_path(dir, name);
        unit_write_str(p, content);
        return p;
}

static json_t *parse(const char *s)
{
        json_error_t je;
        json_t *j = json_loads(s, 0, &je);
        if (!j)
                fail_msg("test JSON does not parse: %s", je.text);
        return j;
}

static void assert_contains(const char *haystack, const char *needle)
{
        if (!strstr(haystack, needle))
                fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

/* ---------- json_load_path ---------- */

static void test_load_good(void **state)
{
        _cleanup_free_ char *p = write_tmp(*state, "good.json", "{\"a\": 1, \"b\": [true, null], \"c\": \"\xc3\xa9\"}\n");
        struct berr e = { 0 };
        json_t *j = NULL;

        assert_int_equal(json_load_path(p, 1024, &j, &e), 0);
        assert_non_null(j);
        assert_true(json_is_object(j));
        assert_int_equal(json_integer_value(json_object_get(j, "a")), 1);
        assert_int_equal(json_array_size(json_object_get(j, "b")), 2);
        assert_string_equal(json_string_value(json_object_get(j, "c")), "\xc3\xa9");
        assert_int_equal(e.err, 0);
        json_decref(j);

        /* e may be NULL */
        j = NULL;
        assert_int_equal(json_load_path(p, 1024, &j, NULL), 0);
        json_decref(j);
}

static void test_load_missing(void **state)
{
        _cleanup_free_ char *p = unit_path(*state, "missing.json");
        struct berr e = { 0 };
        json_t *sentinel = json_true();
        json_t *j = sentinel;

        assert_int_equal(json_load_path(p, 1024, &j, &e), -ENOENT);
        assert_ptr_equal(j, sentinel);
        assert_int_equal(e.err, ENOENT);
        assert_contains(e.msg, p);
        assert_contains(e.msg, strerror(ENOENT));
        assert_int_equal(json_load_path(p, 1024, &j, NULL), -ENOENT);
}

static void test_load_syntax_error(void **state)
{
        _cleanup_free_ char *p = write_tmp(*state, "bad.json", "{\n  \"a\": 1,\n  \"b\": ,\n  \"c\": 3\n}\n");
        struct berr e = { 0 };
        json_t *j = NULL;

        assert_int_equal(json_load_path(p, 1024, &j, &e), -EINVAL);
        assert_null(j);
        assert_int_equal(e.err, EINVAL);
        assert_contains(e.msg, p);
        assert_contains(e.msg, "line 3");
        assert_contains(e.msg, "column");

        /* an empty file and trailing garbage are errors too */
        _cleanup_free_ char *q = write_tmp(*state, "empty.json", "");
        assert_int_equal(json_load_path(q, 1024, &j, &e), -EINVAL);
        assert_contains(e.msg, "line");
        _cleanup_free_ char *r = write_tmp(*state, "trail.json", "{} {}");
        assert_int_equal(json_load_path(r, 1024, &j, &e), -EINVAL);
        assert_null(j);
}

static void test_load_duplicate_keys(void **state)
{
        _cleanup_free_ char *p = write_tmp(*state, "dup.json", "{\"a\": 1, \"b\": {\"x\": 1, \"x\": 2}}");
        struct berr e = { 0 };
        json_t *j = NULL;

        assert_int_equal(json_load_path(p, 1024, &j, &e), -EINVAL);
        assert_null(j);
        assert_contains(e.msg, p);
        assert_contains(e.msg, "duplicate");
}

static void test_load_size_cap(void **state)
{
        _cleanup_free_ char *p = write_tmp(*state, "big.json", "{\"key\": \"0123456789\"}");
        size_t n = strlen("{\"key\": \"0123456789\"}");
        struct berr e = { 0 };
        json_t *j = NULL;

        assert_int_equal(json_load_path(p, n - 1, &j, &e), -EFBIG);
        assert_null(j);
        assert_int_equal(e.err, EFBIG);
        assert_contains(e.msg, p);

        assert_int_equal(json_load_path(p, n, &j, &e), 0);
        assert_non_null(j);
        json_decref(j);
}

/* ---------- getters ---------- */

static const char doc[] = "{"
                          "\"s\": \"str\", \"b\": true, \"f\": false, \"i\": -42, \"big\": 9223372036854775807,"
                          "\"u\": 4294967295, \"neg\": -1, \"over\": 4294967296, \"real\": 1.5,"
                          "\"o\": {\"k\": 1}, \"a\": [1, 2], \"sv\": [\"x\", \"y\", \"\"], \"empty\": [],"
                          "\"mixed\": [\"x\", 1], \"n\": null"
                          "}";

/* Checks the wrong-type error: -EINVAL, e.err, and the field named in full. */
static void check_wrong_type(int r, const struct berr *e, const char *field)
{
        assert_int_equal(r, -EINVAL);
        assert_int_equal(e->err, EINVAL);
        char want[128];
        snprintf(want, sizeof(want), "%s must be ", field);
        if (strncmp(e->msg, want, strlen(want)) != 0)
                fail_msg("message \"%s\" does not start with \"%s\"", e->msg, want);
}

static void test_get_string(void **state)
{
        (void) state;
        json_t *j = parse(doc);
        struct berr e = { 0 };
        const char *v = "default";

        assert_int_equal(json_get_string(j, "root", "s", &v, &e), 0);
        assert_string_equal(v, "str");

        v = "default";
        assert_int_equal(json_get_string(j, "root", "missing", &v, &e), 0);
        assert_string_equal(v, "default");
        assert_int_equal(json_get_string(j, "root", "n", &v, &e), 0);
        assert_string_equal(v, "default");

        check_wrong_type(json_get_string(j, "process", "i", &v, &e), &e, "process.i");
        assert_string_equal(v, "default");
        check_wrong_type(json_get_string(j, "process", "o", &v, &e), &e, "process.o");
        assert_contains(e.msg, "a string");
        /* without where, only the key is named */
        check_wrong_type(json_get_string(j, NULL, "b", &v, &e), &e, "b");
        check_wrong_type(json_get_string(j, "", "b", &v, &e), &e, "b");
        assert_int_equal(json_get_string(j, "x", "b", &v, NULL), -EINVAL);
        assert_string_equal(v, "default");
        json_decref(j);
}

static void test_get_bool(void **state)
{
        (void) state;
        json_t *j = parse(doc);
        struct berr e = { 0 };
        bool v = false;

        assert_int_equal(json_get_bool(j, "w", "b", &v, &e), 0);
        assert_true(v);
        assert_int_equal(json_get_bool(j, "w", "f", &v, &e), 0);
        assert_false(v);

        v = true;
        assert_int_equal(json_get_bool(j, "w", "missing", &v, &e), 0);
        assert_true(v);
        assert_int_equal(json_get_bool(j, "w", "n", &v, &e), 0);
        assert_true(v);
        check_wrong_type(json_get_bool(j, "linux", "s", &v, &e), &e, "linux.s");
        check_wrong_type(json_get_bool(j, "linux", "i", &v, &e), &e, "linux.i");
        assert_true(v);
        json_decref(j);
}

static void test_get_int64(void **state)
{
        (void) state;
        json_t *j = parse(doc);
        struct berr e = { 0 };
        int64_t v = 7;

        assert_int_equal(json_get_int64(j, "w", "i", &v, &e), 0);
        assert_int_equal(v, -42);
        assert_int_equal(json_get_int64(j, "w", "big", &v, &e), 0);
        assert_true(v == INT64_MAX);

        v = 7;
        assert_int_equal(json_get_int64(j, "w", "missing", &v, &e), 0);
        assert_int_equal(v, 7);
        assert_int_equal(json_get_int64(j, "w", "n", &v, &e), 0);
        assert_int_equal(v, 7);
        check_wrong_type(json_get_int64(j, "rlimit", "real", &v, &e), &e, "rlimit.real");
        check_wrong_type(json_get_int64(j, "rlimit", "s", &v, &e), &e, "rlimit.s");
        assert_int_equal(v, 7);
        json_decref(j);
}

static void test_get_uint32(void **state)
{
        (void) state;
        json_t *j = parse("{\"zero\": 0, \"max\": 4294967295, \"neg\": -1, \"over\": 4294967296,"
                          " \"huge\": -9223372036854775807, \"real\": 3.0, \"s\": \"1\", \"n\": null}");
        struct berr e = { 0 };
        uint32_t v = 7;

        assert_int_equal(json_get_uint32(j, "w", "zero", &v, &e), 0);
        assert_int_equal(v, 0);
        assert_int_equal(json_get_uint32(j, "w", "max", &v, &e), 0);
        assert_true(v == UINT32_MAX);

        v = 7;
        assert_int_equal(json_get_uint32(j, "w", "missing", &v, &e), 0);
        assert_int_equal(json_get_uint32(j, "w", "n", &v, &e), 0);
        assert_int_equal(v, 7);

        static const char *const bad[] = { "neg", "over", "huge", "real", "s" };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                char field[64];
                snprintf(field, sizeof(field), "user.%s", bad[i]);
                memset(&e, 0, sizeof(e));
                check_wrong_type(json_get_uint32(j, "user", bad[i], &v, &e), &e, field);
                assert_int_equal(v, 7);
        }
        json_decref(j);
}

static void test_get_object_and_array(void **state)
{
        (void) state;
        json_t *j = parse(doc);
        struct berr e = { 0 };
        json_t *sentinel = json_false();
        json_t *v = sentinel;

        assert_int_equal(json_get_object(j, "w", "o", &v, &e), 0);
        assert_ptr_equal(v, json_object_get(j, "o"));
        v = sentinel;
        assert_int_equal(json_get_object(j, "w", "missing", &v, &e), 0);
        assert_int_equal(json_get_object(j, "w", "n", &v, &e), 0);
        assert_ptr_equal(v, sentinel);
        check_wrong_type(json_get_object(j, "spec", "a", &v, &e), &e, "spec.a");
        assert_contains(e.msg, "an object");
        assert_ptr_equal(v, sentinel);

        assert_int_equal(json_get_array(j, "w", "a", &v, &e), 0);
        assert_ptr_equal(v, json_object_get(j, "a"));
        v = sentinel;
        assert_int_equal(json_get_array(j, "w", "missing", &v, &e), 0);
        assert_int_equal(json_get_array(j, "w", "n", &v, &e), 0);
        assert_ptr_equal(v, sentinel);
        check_wrong_type(json_get_array(j, "spec", "o", &v, &e), &e, "spec.o");
        assert_contains(e.msg, "an array");
        assert_ptr_equal(v, sentinel);
        json_decref(j);
}

static void test_get_strv(void **state)
{
        (void) state;
        json_t *j = parse(doc);
        struct berr e = { 0 };
        char **v = NULL;

        assert_int_equal(json_get_strv(j, "process", "sv", &v, &e), 0);
        assert_non_null(v);
        assert_string_equal(v[0], "x");
        assert_string_equal(v[1], "y");
        assert_string_equal(v[2], "");
        assert_null(v[3]);
        /* a copy: independent of the document */
        assert_ptr_not_equal(v[0], json_string_value(json_array_get(json_object_get(j, "sv"), 0)));
        json_decref(j);
        assert_string_equal(v[1], "y");
        strv_free(v);

        j = parse(doc);
        v = NULL;
        assert_int_equal(json_get_strv(j, "process", "empty", &v, &e), 0);
        assert_non_null(v);
        assert_null(v[0]);
        strv_free(v);

        char *dflt[] = { (char *) "keep", NULL };
        v = dflt;
        assert_int_equal(json_get_strv(j, "process", "missing", &v, &e), 0);
        assert_ptr_equal(v, dflt);
        assert_int_equal(json_get_strv(j, "process", "n", &v, &e), 0);
        assert_ptr_equal(v, dflt);
        check_wrong_type(json_get_strv(j, "process", "mixed", &v, &e), &e, "process.mixed");
        assert_contains(e.msg, "an array of strings");
        assert_ptr_equal(v, dflt);
        check_wrong_type(json_get_strv(j, "process", "s", &v, &e), &e, "process.s");
        assert_ptr_equal(v, dflt);
        json_decref(j);
}

/* ---------- json_write_atomic ---------- */

static void test_write_atomic_round_trip(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *p = unit_path(dir, "out.json");
        json_t *j = parse("{\"b\": [1, 2.5, \"three\", null, true], \"a\": {\"nested\": \"\xc3\xa9\\n\"}, \"c\": -7}");
        struct berr e = { 0 };

        assert_int_equal(json_write_atomic(p, j, JSON_INDENT(2) | JSON_SORT_KEYS, 0600), 0);
        struct stat st;
        assert_int_equal(lstat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        size_t len;
        _cleanup_free_ char *raw = unit_read(p, &len);
        assert_true(len > 1);
        assert_int_equal(raw[len - 1], '\n');
        assert_int_equal(raw[len - 2], '}');
        /* sorted keys: "a" comes before "b" */
        assert_true(strstr(raw, "\"a\"") < strstr(raw, "\"b\""));

        json_t *back = NULL;
        assert_int_equal(json_load_path(p, 1 << 20, &back, &e), 0);
        assert_true(json_equal(j, back));
        json_decref(back);

        /* overwrite with a compact document; nothing else left in dir */
        json_t *small = parse("[1]");
        assert_int_equal(json_write_atomic(p, small, JSON_COMPACT, 0644), 0);
        _cleanup_free_ char *raw2 = unit_read(p, NULL);
        assert_string_equal(raw2, "[1]\n");
        assert_int_equal(unit_count_entries(dir), 1);
        json_decref(small);

        _cleanup_free_ char *bad = unit_path(dir, "missing/out.json");
        assert_int_equal(json_write_atomic(bad, j, 0, 0644), -ENOENT);
        json_decref(j);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(test_load_good),
                T(test_load_missing),
                T(test_load_syntax_error),
                T(test_load_duplicate_keys),
                T(test_load_size_cap),
                cmocka_unit_test(test_get_string),
                cmocka_unit_test(test_get_bool),
                cmocka_unit_test(test_get_int64),
                cmocka_unit_test(test_get_uint32),
                cmocka_unit_test(test_get_object_and_array),
                cmocka_unit_test(test_get_strv),
                T(test_write_atomic_round_trip),
        };
        return cmocka_run_group_tests_name("json-util", tests, NULL, NULL) ? 1 : 0;
}

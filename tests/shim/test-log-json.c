/* Unit tests of shim/log-json: Docker's json-file format, line cutting,
 * escaping, rotation, and what a failed write leaves behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log-json.h"

static char dir[64];

static int setup(void **state)
{
        (void) state;
        strcpy(dir, "/tmp/berth-jlog-XXXXXX");
        assert_non_null(mkdtemp(dir));
        return 0;
}

static int teardown(void **state)
{
        (void) state;
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
        return 0;
}

static char *path_of(const char *name)
{
        static char p[128];
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        return p;
}

static const struct timespec T = { .tv_sec = 1700000000, .tv_nsec = 123400000 };

/* The "log" fields of the file, in order; count in *n. */
static json_t *read_entries(const char *path)
{
        FILE *f = fopen(path, "r");
        json_t *arr = json_array();
        char *line = NULL;
        size_t cap = 0;
        assert_non_null(f);
        while (getline(&line, &cap, f) > 0) {
                json_error_t err;
                json_t *j = json_loads(line, 0, &err);
                if (!j)
                        fail_msg("not JSON: %s (%s)", line, err.text);
                assert_int_equal(json_object_size(j), 3);
                assert_non_null(json_object_get(j, "stream"));
                assert_string_equal(json_string_value(json_object_get(j, "time")), "2023-11-14T22:13:20.1234Z");
                json_array_append_new(arr, j);
        }
        free(line);
        fclose(f);
        return arr;
}

static const char *entry_log(json_t *arr, size_t i)
{
        return json_string_value(json_object_get(json_array_get(arr, i), "log"));
}

static void test_time_format(void **state)
{
        (void) state;
        char buf[48];
        struct timespec ts = { .tv_sec = 0, .tv_nsec = 0 };
        assert_string_equal(jlog_time(&ts, buf, sizeof(buf)), "1970-01-01T00:00:00Z");
        ts.tv_nsec = 500000000;
        assert_string_equal(jlog_time(&ts, buf, sizeof(buf)), "1970-01-01T00:00:00.5Z");
        ts.tv_nsec = 1;
        assert_string_equal(jlog_time(&ts, buf, sizeof(buf)), "1970-01-01T00:00:00.000000001Z");
        ts.tv_nsec = 120;
        assert_string_equal(jlog_time(&ts, buf, sizeof(buf)), "1970-01-01T00:00:00.00000012Z");
}

static void check_escape(const char *in, size_t len, const char *want)
{
        char buf[256];
        size_t n = jlog_escape(buf, in, len);
        buf[n] = '\0';
        assert_string_equal(buf, want);
}

static void test_escape(void **state)
{
        (void) state;
        check_escape("plain", 5, "\"plain\"");
        check_escape("a\"b\\c\n\t\r", 8, "\"a\\\"b\\\\c\\n\\t\\r\"");
        check_escape("<&>", 3, "\"\\u003c\\u0026\\u003e\"");
        check_escape("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\"");
        check_escape("\xc3\xa9", 2, "\"\xc3\xa9\"");            /* é stays */
        check_escape("\xff", 1, "\"\\ufffd\"");                  /* invalid byte */
        check_escape("\xc3", 1, "\"\\ufffd\"");                  /* truncated sequence */
        check_escape("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""); /* a surrogate */
        check_escape("\xe2\x80\xa8", 3, "\"\\u2028\"");
        check_escape("\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\""); /* 4-byte emoji */
        check_escape("a\0b", 3, "\"a\\u0000b\"");
}

static void test_parse_opts(void **state)
{
        (void) state;
        struct jlog_opts o = { 0 };
        struct berr e = { 0 };
        assert_int_equal(jlog_parse_opt(&o, "max-size=10m", &e), 0);
        assert_int_equal(o.max_size, 10 * 1024 * 1024);
        assert_int_equal(jlog_parse_opt(&o, "max-size=2k", &e), 0);
        assert_int_equal(o.max_size, 2048);
        assert_int_equal(jlog_parse_opt(&o, "max-size=1g", &e), 0);
        assert_int_equal(o.max_size, 1024ull * 1024 * 1024);
        assert_int_equal(jlog_parse_opt(&o, "max-size=100", &e), 0);
        assert_int_equal(o.max_size, 100);
        assert_int_equal(jlog_parse_opt(&o, "max-file=5", &e), 0);
        assert_int_equal(o.max_file, 5);
        assert_int_equal(jlog_parse_opt(&o, "max-size=12q", &e), -EINVAL);
        assert_int_equal(jlog_parse_opt(&o, "max-size=0", &e), -EINVAL);
        assert_int_equal(jlog_parse_opt(&o, "max-file=0", &e), -EINVAL);
        assert_int_equal(jlog_parse_opt(&o, "compress=true", &e), -EINVAL);
        assert_non_null(strstr(e.msg, "unknown log option \"compress\""));
        assert_int_equal(jlog_parse_opt(&o, "nonsense", &e), -EINVAL);
}

static void test_lines_and_partials(void **state)
{
        (void) state;
        struct jlog *l;
        struct berr e = { 0 };
        char *p = path_of("lines.log");
        assert_int_equal(jlog_open(p, NULL, &l, &e), 0);

        /* a line in pieces, two lines in one write, stderr interleaved */
        assert_int_equal(jlog_write(l, JLOG_STDOUT, "hel", 3, &T, &e), 0);
        assert_int_equal(jlog_write(l, JLOG_STDERR, "oops\n", 5, &T, &e), 0);
        assert_int_equal(jlog_write(l, JLOG_STDOUT, "lo\nworld\nte", 11, &T, &e), 0);
        /* 40000 bytes without a newline, then one */
        char *big = malloc(40001);
        memset(big, 'a', 40000);
        big[40000] = '\n';
        assert_int_equal(jlog_write(l, JLOG_STDOUT, big, 30000, &T, &e), 0);
        assert_int_equal(jlog_write(l, JLOG_STDOUT, big + 30000, 10001, &T, &e), 0);
        /* exactly 16384 + "\n" */
        assert_int_equal(jlog_write(l, JLOG_STDOUT, big, JLOG_MAX_LINE, &T, &e), 0);
        assert_int_equal(jlog_write(l, JLOG_STDOUT, "\n", 1, &T, &e), 0);
        assert_int_equal(jlog_write(l, JLOG_STDOUT, "tail", 4, &T, &e), 0);
        assert_int_equal(jlog_finish(l, JLOG_STDOUT, &T, &e), 0);
        assert_int_equal(jlog_finish(l, JLOG_STDERR, &T, &e), 0); /* nothing left: nothing written */
        jlog_close(l);
        free(big);

        json_t *a = read_entries(p);
        assert_int_equal(json_array_size(a), 9);
        assert_string_equal(entry_log(a, 0), "oops\n");
        assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "stream")), "stderr");
        assert_string_equal(entry_log(a, 1), "hello\n");
        assert_string_equal(entry_log(a, 2), "world\n");
        /* "te" + 16382 a's fill the first 16 KiB */
        assert_int_equal(strlen(entry_log(a, 3)), JLOG_MAX_LINE);
        assert_memory_equal(entry_log(a, 3), "teaaa", 5);
        assert_int_equal(strlen(entry_log(a, 4)), JLOG_MAX_LINE);
        assert_int_equal(strlen(entry_log(a, 5)), 40002 - 2 * JLOG_MAX_LINE + 1);
        assert_int_equal(strlen(entry_log(a, 6)), JLOG_MAX_LINE);
        assert_string_equal(entry_log(a, 7), "\n");
        assert_string_equal(entry_log(a, 8), "tail");
        json_decref(a);
}

static off_t size_of(const char *p)
{
        struct stat st;
        return stat(p, &st) == 0 ? st.st_size : -1;
}

static void test_rotation(void **state)
{
        (void) state;
        struct jlog *l;
        struct berr e = { 0 };
        struct jlog_opts o = { .max_size = 1000, .max_file = 3 };
        char p[128];
        snprintf(p, sizeof(p), "%s", path_of("rot.log"));
        assert_int_equal(jlog_open(p, &o, &l, &e), 0);
        char line[64];
        for (int i = 0; i < 200; i++) {
                int n = snprintf(line, sizeof(line), "line %03d\n", i);
                assert_int_equal(jlog_write(l, JLOG_STDOUT, line, (size_t) n, &T, &e), 0);
        }
        jlog_close(l);
        char p1[140], p2[140], p3[140];
        snprintf(p1, sizeof(p1), "%s.1", p);
        snprintf(p2, sizeof(p2), "%s.2", p);
        snprintf(p3, sizeof(p3), "%s.3", p);
        assert_true(size_of(p) > 0 && size_of(p) <= 1000);
        assert_true(size_of(p1) > 900 && size_of(p1) <= 1000);
        assert_true(size_of(p2) > 900 && size_of(p2) <= 1000);
        assert_int_equal(size_of(p3), -1);
        /* continuous and newest last */
        json_t *a2 = read_entries(p2), *a1 = read_entries(p1), *a0 = read_entries(p);
        int prev = -1;
        json_t *all[] = { a2, a1, a0 };
        for (int k = 0; k < 3; k++)
                for (size_t i = 0; i < json_array_size(all[k]); i++) {
                        int v = atoi(entry_log(all[k], i) + 5);
                        if (prev >= 0)
                                assert_int_equal(v, prev + 1);
                        prev = v;
                }
        assert_int_equal(prev, 199);
        json_decref(a0);
        json_decref(a1);
        json_decref(a2);

        /* reopening continues with the size on disk */
        assert_int_equal(jlog_open(p, &o, &l, &e), 0);
        assert_int_equal(jlog_size(l), size_of(p));
        jlog_close(l);
}

static void test_max_file_one_truncates(void **state)
{
        (void) state;
        struct jlog *l;
        struct berr e = { 0 };
        struct jlog_opts o = { .max_size = 500, .max_file = 1 };
        char *p = path_of("trunc.log");
        assert_int_equal(jlog_open(p, &o, &l, &e), 0);
        for (int i = 0; i < 100; i++)
                assert_int_equal(jlog_write(l, JLOG_STDOUT, "0123456789\n", 11, &T, &e), 0);
        jlog_close(l);
        assert_true(size_of(p) <= 500);
        char p1[140];
        snprintf(p1, sizeof(p1), "%s.1", p);
        assert_int_equal(size_of(p1), -1);
}

static void test_write_failure(void **state)
{
        (void) state;
        struct jlog *l;
        struct berr e = { 0 };
        if (access("/dev/full", W_OK) != 0)
                skip();
        assert_int_equal(jlog_open("/dev/full", NULL, &l, &e), 0);
        assert_int_equal(jlog_write(l, JLOG_STDOUT, "lost\n", 5, &T, &e), -ENOSPC);
        assert_non_null(strstr(e.msg, "No space left on device"));
        /* the stream's state goes on: the next line is attempted in full */
        assert_int_equal(jlog_write(l, JLOG_STDOUT, "part", 4, &T, &e), 0);
        assert_int_equal(jlog_write(l, JLOG_STDOUT, "ial\n", 4, &T, &e), -ENOSPC);
        jlog_close(l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_time_format),
                cmocka_unit_test(test_escape),
                cmocka_unit_test(test_parse_opts),
                cmocka_unit_test(test_lines_and_partials),
                cmocka_unit_test(test_rotation),
                cmocka_unit_test(test_max_file_one_truncates),
                cmocka_unit_test(test_write_failure),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}

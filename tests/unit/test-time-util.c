/* Unit tests for common/time-util: RFC 3339 formatting with nanoseconds. */
#include "unit-helpers.h"

#include <time.h>

#include "time-util.h"

static void check_format(time_t sec, long nsec, const char *want)
{
        struct timespec ts = { .tv_sec = sec, .tv_nsec = nsec };
        char buf[64];
        memset(buf, 'Z', sizeof(buf));
        assert_ptr_equal(time_rfc3339_nano(&ts, buf, sizeof(buf)), buf);
        assert_string_equal(buf, want);
}

static void test_fixed_times(void **state)
{
        (void) state;
        check_format(0, 5, "1970-01-01T00:00:00.000000005Z");
        check_format(0, 0, "1970-01-01T00:00:00.000000000Z");
        check_format(1700000000, 123456789, "2023-11-14T22:13:20.123456789Z");
        check_format(951782400, 999999999, "2000-02-29T00:00:00.999999999Z");
        check_format(-1, 0, "1969-12-31T23:59:59.000000000Z");
        check_format(253402300799, 1, "9999-12-31T23:59:59.000000001Z");
}

/* The header promises that 32 bytes are enough. */
static void test_32_byte_buffer(void **state)
{
        (void) state;
        struct {
                char buf[32];
                char guard[16];
        } s;
        struct timespec ts = { .tv_sec = 1700000000, .tv_nsec = 999999999 };
        memset(&s, 'G', sizeof(s));
        time_rfc3339_nano(&ts, s.buf, sizeof(s.buf));
        assert_string_equal(s.buf, "2023-11-14T22:13:20.999999999Z");
        for (size_t i = 0; i < sizeof(s.guard); i++)
                assert_int_equal(s.guard[i], 'G');
}

static void test_small_buffer_truncates(void **state)
{
        (void) state;
        struct {
                char buf[10];
                char guard[16];
        } s;
        struct timespec ts = { .tv_sec = 0, .tv_nsec = 5 };
        memset(&s, 'G', sizeof(s));
        time_rfc3339_nano(&ts, s.buf, sizeof(s.buf));
        assert_string_equal(s.buf, "1970-01-0");
        for (size_t i = 0; i < sizeof(s.guard); i++)
                assert_int_equal(s.guard[i], 'G');
}

/* Times far outside RFC 3339's four-digit years (a crafted mtime in an
 * image layer, say) still give a NUL-terminated string and no overflow. */
static void test_out_of_range_years(void **state)
{
        (void) state;
        check_format(10000000000000000LL, 0, "316889355-01-25T17:46:40.000000000Z");

        static const time_t secs[] = { INT64_MAX, INT64_MIN, -67768040609740801LL, 67767976233532800LL };
        for (size_t i = 0; i < sizeof(secs) / sizeof(secs[0]); i++) {
                struct timespec ts = { .tv_sec = secs[i], .tv_nsec = 0 };
                char buf[64];
                memset(buf, 'Q', sizeof(buf));
                time_rfc3339_nano(&ts, buf, sizeof(buf));
                assert_non_null(memchr(buf, '\0', sizeof(buf)));
        }
}

static void test_now(void **state)
{
        (void) state;
        char buf[64];
        time_t before = time(NULL);
        assert_ptr_equal(time_now_rfc3339_nano(buf, sizeof(buf)), buf);
        time_t after = time(NULL);

        assert_int_equal(strlen(buf), 30);
        assert_int_equal(buf[29], 'Z');
        assert_int_equal(buf[19], '.');
        struct tm tm = { 0 };
        const char *end = strptime(buf, "%Y-%m-%dT%H:%M:%S", &tm);
        assert_non_null(end);
        assert_ptr_equal(end, buf + 19);
        time_t t = timegm(&tm);
        assert_true(t >= before && t <= after);
}

static void test_monotonic(void **state)
{
        (void) state;
        uint64_t a = time_monotonic_ns();
        struct timespec d = { .tv_sec = 0, .tv_nsec = 2000000 };
        nanosleep(&d, NULL);
        uint64_t b = time_monotonic_ns();
        assert_true(a > 0);
        assert_true(b >= a + 2000000);
        assert_true(b - a < 10ull * 1000000000ull);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fixed_times),
                cmocka_unit_test(test_32_byte_buffer),
                cmocka_unit_test(test_small_buffer_truncates),
                cmocka_unit_test(test_out_of_range_years),
                cmocka_unit_test(test_now),
                cmocka_unit_test(test_monotonic),
        };
        return cmocka_run_group_tests_name("time-util", tests, NULL, NULL) ? 1 : 0;
}

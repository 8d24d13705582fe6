/* Unit tests for common/log: the JSON and text file formats, level
 * filtering, what reaches stderr, and the string parsers. */
#include "unit-helpers.h"

#include <jansson.h>
#include <time.h>

#include "cleanup.h"
#include "log.h"

#define PROG "test-log"

struct lines {
        char **v;
        size_t n;
};

static void lines_free(struct lines *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i]);
        free(l->v);
        l->v = NULL;
        l->n = 0;
}

/* Splits a file into lines; every line, the last included, must end in \n. */
static struct lines read_lines(const char *path)
{
        struct lines l = { 0 };
        size_t len;
        char *data = unit_read(path, &len);
        assert_true(len == 0 || data[len - 1] == '\n');
        char *p = data;
        while (*p) {
                char *nl = strchr(p, '\n');
                assert_non_null(nl);
                l.v = realloc(l.v, (l.n + 1) * sizeof(char *));
                assert_non_null(l.v);
                l.v[l.n++] = strndup(p, (size_t) (nl - p));
                p = nl + 1;
        }
        free(data);
        return l;
}

/* "2006-01-02T15:04:05.999999999Z", within a minute of now */
static void check_timestamp(const char *ts)
{
        static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddddddddZ";
        assert_int_equal(strlen(ts), strlen(shape));
        for (size_t i = 0; shape[i]; i++) {
                if (shape[i] == 'd')
                        assert_true(ts[i] >= '0' && ts[i] <= '9');
                else
                        assert_int_equal(ts[i], shape[i]);
        }
        struct tm tm = { 0 };
        assert_non_null(strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm));
        time_t t = timegm(&tm);
        time_t now = time(NULL);
        assert_true(t <= now + 1 && t >= now - 60);
}

static json_t *parse_json_line(const char *line, const char *want_level, const char *want_msg)
{
        json_error_t je;
        json_t *j = json_loads(line, JSON_REJECT_DUPLICATES, &je);
        if (!j)
                fail_msg("not JSON: %s (%s)", line, je.text);
        assert_true(json_is_object(j));
        assert_int_equal(json_object_size(j), 3);
        const char *level = json_string_value(json_object_get(j, "level"));
        const char *msg = json_string_value(json_object_get(j, "msg"));
        const char *ts = json_string_value(json_object_get(j, "time"));
        assert_non_null(level);
        assert_non_null(msg);
        assert_non_null(ts);
        assert_string_equal(level, want_level);
        if (want_msg)
                assert_string_equal(msg, want_msg);
        check_timestamp(ts);
        return j;
}

/* time="<ts>" level=<level> msg=<JSON-quoted message> */
static void check_text_line(const char *line, const char *want_level, const char *want_msg)
{
        assert_true(strncmp(line, "time=\"", 6) == 0);
        const char *ts_end = strchr(line + 6, '"');
        assert_non_null(ts_end);
        _cleanup_free_ char *ts = strndup(line + 6, (size_t) (ts_end - line - 6));
        check_timestamp(ts);

        _cleanup_free_ char *mid = NULL;
        assert_true(asprintf(&mid, "\" level=%s msg=", want_level) > 0);
        if (strncmp(ts_end, mid, strlen(mid)) != 0)
                fail_msg("bad text line: %s", line);
        const char *quoted = ts_end + strlen(mid);
        assert_int_equal(quoted[0], '"');
        json_error_t je;
        json_t *s = json_loads(quoted, JSON_DECODE_ANY, &je);
        if (!s)
                fail_msg("msg is not a quoted string: %s", quoted);
        assert_true(json_is_string(s));
        assert_string_equal(json_string_value(s), want_msg);
        json_decref(s);
}

/* ---------- stderr capture ---------- */

struct capture {
        int saved;
        char *path;
};

static void capture_start(struct capture *c, const char *dir)
{
        c->path = unit_path(dir, "stderr");
        int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        fflush(stderr);
        c->saved = dup(STDERR_FILENO);
        assert_true(c->saved >= 0);
        assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
        close(fd);
}

/* Restores stderr and returns what was written to it. */
static char *capture_end(struct capture *c)
{
        fflush(stderr);
        dup2(c->saved, STDERR_FILENO);
        close(c->saved);
        char *out = unit_read(c->path, NULL);
        free(c->path);
        return out;
}

/* ---------- fixtures ---------- */

static int setup(void **state)
{
        *state = unit_mkdtemp("log");
        log_setup(PROG, LOG_LEVEL_DEBUG);
        return 0;
}

static int teardown(void **state)
{
        log_close();
        log_setup(PROG, LOG_LEVEL_WARN);
        unit_rm_tree(*state);
        free(*state);
        return 0;
}

static const char tricky[] = "quotes \" backslash \\ newline\nand tab\t and unicode \xc3\xa9";

/* ---------- tests ---------- */

static void test_json_format(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *p = unit_path(dir, "log.json");
        struct capture cap;

        assert_int_equal(log_open_file(p, LOG_FORMAT_JSON), 0);
        capture_start(&cap, dir);
        log_error("e %d", 1);
        log_warn("w");
        log_info("i");
        log_debug("%s", tricky);
        _cleanup_free_ char *err = capture_end(&cap);
        log_close();

        struct lines l = read_lines(p);
        assert_int_equal(l.n, 4);
        json_decref(parse_json_line(l.v[0], "error", "e 1"));
        json_decref(parse_json_line(l.v[1], "warning", "w"));
        json_decref(parse_json_line(l.v[2], "info", "i"));
        json_decref(parse_json_line(l.v[3], "debug", tricky));
        lines_free(&l);

        /* with a log file, stderr keeps errors and warnings only */
        assert_string_equal(err, PROG ": e 1\n" PROG ": warning: w\n");
}

static void test_text_format(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *p = unit_path(dir, "log.txt");

        assert_int_equal(log_open_file(p, LOG_FORMAT_TEXT), 0);
        struct capture cap;
        capture_start(&cap, dir);
        log_error("e %d", 1);
        log_warn("w");
        log_info("i");
        log_debug("%s", tricky);
        free(capture_end(&cap));
        log_close();

        struct lines l = read_lines(p);
        assert_int_equal(l.n, 4);
        check_text_line(l.v[0], "error", "e 1");
        check_text_line(l.v[1], "warning", "w");
        check_text_line(l.v[2], "info", "i");
        check_text_line(l.v[3], "debug", tricky);
        lines_free(&l);
}

static void emit_all(void)
{
        log_error("e");
        log_warn("w");
        log_info("i");
        log_debug("d");
}

static void test_level_filtering(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *p = unit_path(dir, "log.json");
        struct capture cap;

        assert_int_equal(log_open_file(p, LOG_FORMAT_JSON), 0);
        capture_start(&cap, dir);
        log_set_level(LOG_LEVEL_WARN);
        assert_int_equal(log_get_level(), LOG_LEVEL_WARN);
        emit_all();
        log_set_level(LOG_LEVEL_ERROR);
        assert_int_equal(log_get_level(), LOG_LEVEL_ERROR);
        emit_all();
        log_set_level(LOG_LEVEL_INFO);
        emit_all();
        free(capture_end(&cap));
        log_close();

        struct lines l = read_lines(p);
        static const char *const want[] = { "error", "warning", "error", "error", "warning", "info" };
        assert_int_equal(l.n, ARRAY_SIZE(want));
        for (size_t i = 0; i < l.n; i++)
                json_decref(parse_json_line(l.v[i], want[i], NULL));
        lines_free(&l);

        /* without a log file everything at or above the level goes to stderr */
        log_setup("other", LOG_LEVEL_INFO);
        capture_start(&cap, dir);
        emit_all();
        _cleanup_free_ char *err = capture_end(&cap);
        assert_string_equal(err, "other: e\nother: warning: w\nother: i\n");
}

static void test_log_errno(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *p = unit_path(dir, "log.json");
        struct capture cap;
        char want[256];

        assert_int_equal(log_open_file(p, LOG_FORMAT_JSON), 0);
        capture_start(&cap, dir);
        assert_int_equal(log_errno(LOG_LEVEL_ERROR, ENOENT, "open \"%s\"", "/x"), -ENOENT);
        assert_int_equal(log_errno(LOG_LEVEL_WARN, -EACCES, "mount"), -EACCES);
        assert_int_equal(log_errno(LOG_LEVEL_INFO, 0, "zero"), -EINVAL);
        log_set_level(LOG_LEVEL_WARN);
        /* filtered out, still returns the error */
        assert_int_equal(log_errno(LOG_LEVEL_DEBUG, EBUSY, "quiet"), -EBUSY);
        _cleanup_free_ char *err = capture_end(&cap);
        log_close();

        struct lines l = read_lines(p);
        assert_int_equal(l.n, 3);
        snprintf(want, sizeof(want), "open \"/x\": %s", strerror(ENOENT));
        json_decref(parse_json_line(l.v[0], "error", want));
        snprintf(want, sizeof(want), "mount: %s", strerror(EACCES));
        json_decref(parse_json_line(l.v[1], "warning", want));
        snprintf(want, sizeof(want), "zero: %s", strerror(EINVAL));
        json_decref(parse_json_line(l.v[2], "info", want));
        lines_free(&l);

        snprintf(want, sizeof(want), PROG ": open \"/x\": %s\n", strerror(ENOENT));
        assert_true(strncmp(err, want, strlen(want)) == 0);
}

static void test_errno_preserved(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *p = unit_path(dir, "log.json");
        struct capture cap;

        assert_int_equal(log_open_file(p, LOG_FORMAT_JSON), 0);
        capture_start(&cap, dir);
        errno = EBUSY;
        log_info("x");
        log_error("y");
        int saved = errno;
        free(capture_end(&cap));
        assert_int_equal(saved, EBUSY);
}

static void test_file_append_and_mode(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *p = unit_path(dir, "log.json");
        _cleanup_free_ char *missing = unit_path(dir, "no/such/log");
        struct capture cap;

        capture_start(&cap, dir);
        assert_int_equal(log_open_file(missing, LOG_FORMAT_JSON), -ENOENT);

        mode_t old = umask(022);
        assert_int_equal(log_open_file(p, LOG_FORMAT_JSON), 0);
        umask(old);
        struct stat st;
        assert_int_equal(lstat(p, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0640);
        log_error("one");
        log_close();

        /* reopening appends */
        assert_int_equal(log_open_file(p, LOG_FORMAT_JSON), 0);
        log_error("two");
        log_close();
        free(capture_end(&cap));
        struct lines l = read_lines(p);
        assert_int_equal(l.n, 2);
        json_decref(parse_json_line(l.v[0], "error", "one"));
        json_decref(parse_json_line(l.v[1], "error", "two"));
        lines_free(&l);
}

static void test_set_file_fd(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *p = unit_path(dir, "log.txt");
        int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        struct capture cap;

        capture_start(&cap, dir);
        log_set_file_fd(fd, LOG_FORMAT_TEXT);
        log_error("via fd");
        log_close();
        free(capture_end(&cap));
        /* the fd was taken over and closed */
        assert_int_equal(fcntl(fd, F_GETFD), -1);
        assert_int_equal(errno, EBADF);

        struct lines l = read_lines(p);
        assert_int_equal(l.n, 1);
        check_text_line(l.v[0], "error", "via fd");
        lines_free(&l);
}

/* A message that is not valid UTF-8 (a path from a container image, say)
 * must still produce a line; jansson refuses such strings. */
static void test_invalid_utf8(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *pj = unit_path(dir, "log.json");
        _cleanup_free_ char *pt = unit_path(dir, "log.txt");
        struct capture cap;

        capture_start(&cap, dir);
        assert_int_equal(log_open_file(pj, LOG_FORMAT_JSON), 0);
        log_error("bad \xff\xfe byte in \"%s\"", "/x\xc3");
        assert_int_equal(log_open_file(pt, LOG_FORMAT_TEXT), 0);
        log_error("bad \xff\xfe byte in \"%s\"", "/x\xc3");
        log_close();
        free(capture_end(&cap));

        struct lines l = read_lines(pj);
        assert_int_equal(l.n, 1);
        json_t *j = parse_json_line(l.v[0], "error", NULL);
        const char *msg = json_string_value(json_object_get(j, "msg"));
        assert_true(strncmp(msg, "bad ", 4) == 0);
        assert_non_null(strstr(msg, " byte in \"/x"));
        json_decref(j);
        lines_free(&l);

        l = read_lines(pt);
        assert_int_equal(l.n, 1);
        assert_non_null(strstr(l.v[0], "level=error msg=\"bad "));
        assert_non_null(strstr(l.v[0], " byte in \\\"/x"));
        lines_free(&l);
}

static void test_long_message(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *p = unit_path(dir, "log.json");
        size_t n = 100000;
        _cleanup_free_ char *big = malloc(n + 1);
        assert_non_null(big);
        for (size_t i = 0; i < n; i++)
                big[i] = (char) ('a' + i % 26);
        big[n] = '\0';

        struct capture cap;
        capture_start(&cap, dir);
        assert_int_equal(log_open_file(p, LOG_FORMAT_JSON), 0);
        log_error("%s", big);
        log_close();
        free(capture_end(&cap));

        struct lines l = read_lines(p);
        assert_int_equal(l.n, 1);
        json_decref(parse_json_line(l.v[0], "error", big));
        lines_free(&l);
}

static void test_format_from_string(void **state)
{
        (void) state;
        enum log_format f = LOG_FORMAT_JSON;

        assert_int_equal(log_format_from_string("text", &f), 0);
        assert_int_equal(f, LOG_FORMAT_TEXT);
        assert_int_equal(log_format_from_string("json", &f), 0);
        assert_int_equal(f, LOG_FORMAT_JSON);

        static const char *const bad[] = { "", "JSON", "xml", "jsonx", "tex" };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                f = (enum log_format) 42;
                assert_int_equal(log_format_from_string(bad[i], &f), -EINVAL);
                assert_int_equal(f, 42);
        }
}

static void test_level_from_string(void **state)
{
        (void) state;
        static const struct {
                const char *s;
                enum log_level l;
        } good[] = {
                { "error", LOG_LEVEL_ERROR },
                { "warn", LOG_LEVEL_WARN },
                { "info", LOG_LEVEL_INFO },
                { "debug", LOG_LEVEL_DEBUG },
        };
        enum log_level l;

        for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
                l = (enum log_level) 42;
                assert_int_equal(log_level_from_string(good[i].s, &l), 0);
                assert_int_equal(l, good[i].l);
        }
        static const char *const bad[] = { "", "ERROR", "trace", "fatal", "warn " };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                l = (enum log_level) 42;
                assert_int_equal(log_level_from_string(bad[i], &l), -EINVAL);
                assert_int_equal(l, 42);
        }
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(test_json_format),
                T(test_text_format),
                T(test_level_filtering),
                T(test_log_errno),
                T(test_errno_preserved),
                T(test_file_append_and_mode),
                T(test_set_file_fd),
                T(test_invalid_utf8),
                T(test_long_message),
                cmocka_unit_test(test_format_from_string),
                cmocka_unit_test(test_level_from_string),
        };
        return cmocka_run_group_tests_name("log", tests, NULL, NULL) ? 1 : 0;
}

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "time-util.h"

static const char *log_prog = "berth";
static enum log_level log_level = LOG_LEVEL_WARN;
static int log_fd = -1;
static enum log_format log_fmt = LOG_FORMAT_TEXT;

static const char *const level_names[] = {
        [LOG_LEVEL_ERROR] = "error",
        [LOG_LEVEL_WARN] = "warning",
        [LOG_LEVEL_INFO] = "info",
        [LOG_LEVEL_DEBUG] = "debug",
};

void log_setup(const char *prog, enum log_level level)
{
        if (prog)
                log_prog = prog;
        log_level = level;
}

void log_set_level(enum log_level level)
{
        log_level = level;
}

enum log_level log_get_level(void)
{
        return log_level;
}

void log_set_file_fd(int fd, enum log_format fmt)
{
        log_close();
        log_fd = fd;
        log_fmt = fmt;
}

int log_open_file(const char *path, enum log_format fmt)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0)
                return -errno;
        log_set_file_fd(fd, fmt);
        return 0;
}

void log_close(void)
{
        if (log_fd >= 0)
                close(log_fd);
        log_fd = -1;
}

int log_format_from_string(const char *s, enum log_format *ret)
{
        if (strcmp(s, "text") == 0)
                *ret = LOG_FORMAT_TEXT;
        else if (strcmp(s, "json") == 0)
                *ret = LOG_FORMAT_JSON;
        else
                return -EINVAL;
        return 0;
}

int log_level_from_string(const char *s, enum log_level *ret)
{
        if (strcmp(s, "warn") == 0) {
                *ret = LOG_LEVEL_WARN;
                return 0;
        }
        for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
                if (strcmp(s, level_names[i]) == 0) {
                        *ret = (enum log_level) i;
                        return 0;
                }
        return -EINVAL;
}

/* One write(2) per line so concurrent writers to an O_APPEND file do not
 * interleave within a line. */
static void write_all(int fd, const char *buf, size_t len)
{
        while (len > 0) {
                ssize_t n = write(fd, buf, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return;
                }
                buf += n;
                len -= (size_t) n;
        }
}

/* jansson takes only valid UTF-8; a message that is not (a path from an
 * image, say) is logged with its non-ASCII bytes as '?' rather than dropped. */
static json_t *json_string_lossy(const char *msg)
{
        json_t *s = json_string(msg);
        if (s)
                return s;
        char *copy = strdup(msg);
        if (!copy)
                return NULL;
        for (char *p = copy; *p; p++)
                if ((unsigned char) *p >= 0x80)
                        *p = '?';
        s = json_string(copy);
        free(copy);
        return s;
}

static void write_file_line(enum log_level level, const char *msg)
{
        char ts[40];
        time_now_rfc3339_nano(ts, sizeof(ts));

        if (log_fmt == LOG_FORMAT_JSON) {
                json_t *o = json_pack("{s:s, s:o, s:s}", "level", level_names[level], "msg", json_string_lossy(msg),
                                      "time", ts);
                if (!o)
                        return;
                char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
                json_decref(o);
                if (!s)
                        return;
                size_t n = strlen(s);
                char *line = malloc(n + 2);
                if (line) {
                        memcpy(line, s, n);
                        line[n] = '\n';
                        write_all(log_fd, line, n + 1);
                        free(line);
                }
                free(s);
                return;
        }

        /* logrus text: time="..." level=... msg="..." with the message quoted */
        json_t *q = json_string_lossy(msg);
        char *quoted = q ? json_dumps(q, JSON_ENCODE_ANY) : NULL;
        json_decref(q);
        char *line = NULL;
        int n = asprintf(&line, "time=\"%s\" level=%s msg=%s\n", ts, level_names[level], quoted ? quoted : "\"\"");
        if (n > 0)
                write_all(log_fd, line, (size_t) n);
        free(line);
        free(quoted);
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
        if (level > log_level)
                return;

        int saved = errno;
        char *msg = NULL;
        if (vasprintf(&msg, fmt, ap) < 0) {
                errno = saved;
                return;
        }

        if (log_fd >= 0)
                write_file_line(level, msg);

        /* With a log file, stderr keeps only what the caller must see. */
        if (log_fd >= 0 && level > LOG_LEVEL_WARN) {
                free(msg);
                errno = saved;
                return;
        }
        char *line = NULL;
        int n = asprintf(&line, "%s: %s%s\n", log_prog, level == LOG_LEVEL_WARN ? "warning: " : "", msg);
        if (n > 0)
                write_all(STDERR_FILENO, line, (size_t) n);
        free(line);
        free(msg);
        errno = saved;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        log_vmsg(level, fmt, ap);
        va_end(ap);
}

int log_errno(enum log_level level, int err, const char *fmt, ...)
{
        char buf[1024];
        va_list ap;

        if (err < 0)
                err = -err;
        if (err == 0)
                err = EINVAL;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        log_msg(level, "%s: %s", buf, strerror(err));
        return -err;
}

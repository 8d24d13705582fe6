/* Levelled logging for every berth program.
 *
 * Messages go to stderr as "<prog>: <message>" when their level is at or
 * above the stderr threshold, and, when a log file is open, to it in either
 * logrus-style text or runc's JSON line format ({"level","msg","time"}),
 * which containerd and other runc callers parse. */
#pragma once

#include <stdarg.h>

enum log_level {
        LOG_LEVEL_ERROR = 0,
        LOG_LEVEL_WARN,
        LOG_LEVEL_INFO,
        LOG_LEVEL_DEBUG,
};

enum log_format {
        LOG_FORMAT_TEXT = 0,
        LOG_FORMAT_JSON,
};

/* prog prefixes stderr lines; level is the most verbose level logged. */
void log_setup(const char *prog, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Opens (append, create 0640) a log file; fmt applies to the file only. */
int log_open_file(const char *path, enum log_format fmt);
/* Uses an already-open fd as the file sink (taken over, closed by log_close). */
void log_set_file_fd(int fd, enum log_format fmt);
void log_close(void);

/* "text" / "json" → format; -EINVAL otherwise. */
int log_format_from_string(const char *s, enum log_format *ret);
/* "error" / "warn" / "info" / "debug" → level; -EINVAL otherwise. */
int log_level_from_string(const char *s, enum log_level *ret);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Logs "<msg>: <strerror(err)>" and returns -abs(err) (EINVAL when 0). */
int log_errno(enum log_level level, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

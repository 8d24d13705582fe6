#pragma once

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Formats ts as RFC 3339 UTC with nanoseconds ("2006-01-02T15:04:05.999999999Z").
 * buf needs at least 32 bytes. Returns buf. */
char *time_rfc3339_nano(const struct timespec *ts, char *buf, size_t len);

/* The current wall-clock time in that format. */
char *time_now_rfc3339_nano(char *buf, size_t len);

uint64_t time_monotonic_ns(void);

/* Parses RFC 3339 ("2006-01-02T15:04:05[.frac](Z|+07:00)") into ts (UTC).
 * Returns 0, or -EINVAL. */
int time_parse_rfc3339(const char *s, struct timespec *ts);

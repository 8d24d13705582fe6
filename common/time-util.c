#include "time-util.h"

#include <stdio.h>

char *time_rfc3339_nano(const struct timespec *ts, char *buf, size_t len)
{
        struct tm tm;
        char base[64];

        /* Room for any year gmtime_r gives; on failure base would be
         * indeterminate, so the result is the empty string. */
        if (!gmtime_r(&ts->tv_sec, &tm) || strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
                if (len > 0)
                        buf[0] = '\0';
                return buf;
        }
        snprintf(buf, len, "%s.%09ldZ", base, (long) ts->tv_nsec);
        return buf;
}

char *time_now_rfc3339_nano(char *buf, size_t len)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return time_rfc3339_nano(&ts, buf, len);
}

uint64_t time_monotonic_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

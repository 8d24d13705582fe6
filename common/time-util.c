#include "time-util.h"

#include <errno.h>
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

int time_parse_rfc3339(const char *s, struct timespec *ts)
{
        struct tm tm = { 0 };
        const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!p)
                return -EINVAL;
        long nsec = 0;
        if (*p == '.') {
                long scale = 100000000;
                for (p++; *p >= '0' && *p <= '9'; p++) {
                        nsec += (*p - '0') * scale;
                        scale /= 10;
                }
        }
        long off = 0;
        if (*p == 'Z' || *p == 'z') {
                p++;
        } else if (*p == '+' || *p == '-') {
                int hh, mm;
                if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
                        return -EINVAL;
                off = (hh * 3600L + mm * 60L) * (*p == '-' ? -1 : 1);
                p += 6;
        } else {
                return -EINVAL;
        }
        if (*p)
                return -EINVAL;
        ts->tv_sec = timegm(&tm) - off;
        ts->tv_nsec = nsec;
        return 0;
}

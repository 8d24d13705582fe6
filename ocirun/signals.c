#include "signals.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int signal_from_string(const char *s)
{
        char *end;
        long n = strtol(s, &end, 10);
        if (*s && !*end)
                return n > 0 && n < NSIG ? (int) n : -EINVAL;
        if (strncasecmp(s, "SIG", 3) == 0)
                s += 3;
        for (int sig = 1; sig < NSIG; sig++) {
                const char *name = sigabbrev_np(sig);
                if (name && strcasecmp(s, name) == 0)
                        return sig;
        }
        if (strncasecmp(s, "RTMIN+", 6) == 0 || strncasecmp(s, "RTMAX-", 6) == 0) {
                long k = strtol(s + 6, &end, 10);
                int sig = s[3] == 'I' || s[3] == 'i' ? SIGRTMIN + (int) k : SIGRTMAX - (int) k;
                if (!*end && k >= 0 && sig >= SIGRTMIN && sig <= SIGRTMAX)
                        return sig;
        }
        return -EINVAL;
}

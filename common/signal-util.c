#include "signal-util.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"

static const struct {
        const char *name;
        int num;
} signal_names[] = {
        { "HUP", SIGHUP },   { "INT", SIGINT },   { "QUIT", SIGQUIT }, { "ILL", SIGILL },   { "ABRT", SIGABRT },
        { "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV }, { "USR2", SIGUSR2 }, { "PIPE", SIGPIPE },
        { "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "CHLD", SIGCHLD }, { "CONT", SIGCONT }, { "STOP", SIGSTOP },
        { "TSTP", SIGTSTP }, { "WINCH", SIGWINCH },
};

int signal_parse(const char *s, bool ignore_case)
{
        int (*cmp)(const char *, const char *) = ignore_case ? strcasecmp : strcmp;
        int (*ncmp)(const char *, const char *, size_t) = ignore_case ? strncasecmp : strncmp;
        char *end;
        long n = strtol(s, &end, 10);
        if (*end == '\0' && end != s)
                return n > 0 && n < 65 ? (int) n : -1;
        if (ncmp(s, "SIG", 3) == 0)
                s += 3;
        for (size_t i = 0; i < ARRAY_SIZE(signal_names); i++)
                if (cmp(s, signal_names[i].name) == 0)
                        return signal_names[i].num;
        return -1;
}

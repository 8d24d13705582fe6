/* berth-init: the small init `docker run --init` puts in front of the
 * command, as pid 1 of the container. It runs the command as its child,
 * passes on every signal it can catch, reaps the orphans the container's
 * processes leave, and exits with the command's status (128 + the signal
 * when a signal ended it), which is what the user sees.
 *
 * Usage: berth-init [--] COMMAND [ARG...]
 * Static, free of everything but libc. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
        int first = 1;
        if (argc > 1 && !strcmp(argv[1], "--"))
                first = 2;
        if (first >= argc) {
                fputs("usage: berth-init [--] COMMAND [ARG...]\n", stderr);
                return 2;
        }
        /* orphans of nested inits come to us too */
        prctl(PR_SET_CHILD_SUBREAPER, 1);

        sigset_t all, old;
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, &old);

        pid_t child = fork();
        if (child < 0) {
                fprintf(stderr, "berth-init: fork: %s\n", strerror(errno));
                return 1;
        }
        if (child == 0) {
                sigprocmask(SIG_SETMASK, &old, NULL);
                execvp(argv[first], argv + first);
                int err = errno;
                fprintf(stderr, "berth-init: exec %s: %s\n", argv[first], strerror(err));
                _exit(err == ENOENT ? 127 : 126);
        }

        for (;;) {
                siginfo_t si;
                int sig = sigwaitinfo(&all, &si);
                if (sig < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "berth-init: sigwaitinfo: %s\n", strerror(errno));
                        return 1;
                }
                if (sig != SIGCHLD) {
                        /* to the command; it decides what the signal means */
                        kill(child, sig);
                        continue;
                }
                for (;;) {
                        int status;
                        pid_t p = waitpid(-1, &status, WNOHANG);
                        if (p <= 0)
                                break;
                        if (p != child)
                                continue;
                        if (WIFEXITED(status))
                                return WEXITSTATUS(status);
                        return 128 + WTERMSIG(status);
                }
        }
}

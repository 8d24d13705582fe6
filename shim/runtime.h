/* Runs the OCI runtime (ocirun, runc, any runc-compatible CLI) without
 * waiting for it: the command is spawned, the loop goes on, and the
 * result is delivered when the shim reaps it (shim_child_exited →
 * rt_reaped). Each command gets its own --log file (JSON lines) so that
 * concurrent commands do not mix their errors. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "err.h"

struct shim;

struct rt_result {
        bool ok;        /* exited with status 0 */
        int status;     /* wait status */
        char *out;      /* captured stdout (NUL-terminated; "" if not captured) */
        size_t out_len;
        char *err;      /* captured stderr, trimmed ("" if not captured) */
        char *log_error; /* the last "error" message of the runtime's --log, or NULL */
};

typedef void (*rt_done_fn)(struct shim *s, struct rt_result *res, void *data);

/* Spawns "<runtime> [--root R] --log F --log-format json <args...>".
 * stdio[i] < 0: stdin is /dev/null, stdout/stderr are captured. The
 * fds given are only dup'ed into the child. done runs from the loop once
 * the command has been reaped. */
int rt_spawn(struct shim *s, const char *const *args, const int stdio[3], rt_done_fn done, void *data,
             struct berr *e);

/* The reaper found pid: if it is a runtime command, deliver its result and
 * return true. */
bool rt_reaped(struct shim *s, pid_t pid, int status);

/* A one-line description of a failed command: its stderr if any, else its
 * log's last error, else how it ended. extra (may be NULL or "") is
 * preferred to all of them (a create's stderr read from the container's
 * pipe). Returns a malloc'ed string. */
char *rt_error(const char *verb, const struct rt_result *res, const char *extra);

/* Kills the runtime commands still running and forgets them (shutdown). */
void rt_abandon_all(struct shim *s);

/* Terminals for process.terminal: the pty is made inside the container
 * (from its own devpts), the slave becomes the process's stdio and
 * controlling terminal, and the master goes either to --console-socket
 * (containerd, podman) or back to ocirun, which then relays between its own
 * stdio and the pty (`run -t`, `exec -t` in the foreground). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "err.h"

/* In the container: opens a pty from /dev/ptmx; returns the master in
 * *ret_master and makes the slave our stdin/stdout/stderr and controlling
 * terminal. */
int console_setup(int *ret_master, struct berr *e);

/* SCM_RIGHTS: sends fd with a small payload / receives one. */
int fd_send(int sock, int fd, const void *payload, size_t len);
int fd_recv(int sock, void *payload, size_t len, int *ret_fd);

/* Waits for pid (our child) to exit, forwarding every signal we receive
 * (all signals must be blocked by the caller) and, when master >= 0,
 * relaying stdin → master and master → stdout, with our terminal in raw
 * mode and window size changes passed on. Reaps other children too (we may
 * be a subreaper). Returns the exit code (128+signal when killed). */
int wait_foreground(pid_t pid, int master);

/* attach.sock: any number of clients of one process's stdio at once.
 *
 * A client connects and sends one header line, a JSON object:
 *     {"exec_id": "", "stdin": true, "stdout": true, "stderr": true}
 * (exec_id empty or absent: the container's init process). The shim answers
 * one line, {"ok": true, "tty": false} or {"error": "..."}, then streams the
 * output written from then on: raw bytes for a process with a terminal,
 * otherwise Docker's frames (1 byte stream 1 = stdout / 2 = stderr, 3 zero
 * bytes, a 4-byte big-endian length, the data). Bytes the client sends after
 * the header go to the process's stdin if it asked for stdin and the process
 * has one; when such a client shuts down its sending side (or goes away)
 * and the process was started with stdin_once, stdin is closed. When the
 * process's output has ended the shim closes the connection. */
#pragma once

#include <stddef.h>

#include "err.h"
#include "log-json.h"

struct shim;
struct io;
struct attach_server;

int attach_server_start(struct shim *s, const char *path, struct attach_server **ret, struct berr *e);
void attach_server_free(struct attach_server *a);
/* The socket's file was moved to path (its directory renamed): the name
 * the server removes at the end. */
int attach_server_moved(struct attach_server *a, const char *path);

/* Output of io's process, to its clients. */
void attach_broadcast(struct io *io, enum jlog_stream kind, const void *data, size_t len);
/* io's output has ended: each client is closed once its queue is sent. */
void attach_finish(struct io *io);
/* stdin has room again: clients that were paused are read again. */
void attach_resume_input(struct io *io);
/* How many clients io has. */
unsigned attach_count(const struct io *io);
/* io goes away: its clients are closed now. */
void attach_drop_all(struct io *io);

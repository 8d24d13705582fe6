/* The stdio of one process: pipes (or a pty master) between the process
 * and the shim, copied to the json-file log (init only) and to attached
 * clients, and stdin fed from clients. Reading never waits for anyone: the
 * log is written synchronously and a client that does not keep up is
 * disconnected rather than allowed to stall the container. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "log-json.h"

struct proc;
struct loop_source;
struct loop_timer;
struct attach_client;

struct io_stream {
        struct io *io;
        int fd; /* read end; -1 when closed */
        struct loop_source *src;
        enum jlog_stream kind;
};

struct byte_queue {
        char *data;
        size_t head, len, cap;
};

struct io {
        struct proc *proc;
        bool tty;
        int pty;        /* the pty master, kept for resizing; -1 without */
        bool started;   /* output is being read */
        bool held;      /* not yet: until hold_for attach clients are here */
        unsigned hold_for;
        struct loop_timer *hold_timer;
        bool done;      /* every output stream has ended */
        struct io_stream out, err;
        /* the process's ends, given to the runtime; closed once it runs */
        int child_in, child_out, child_err;
        /* stdin: the write end of the pipe, or a dup of the pty master */
        int stdin_fd;
        struct loop_source *stdin_src;
        struct byte_queue stdin_q;
        bool stdin_close_pending; /* close once the queue is written */
        struct attach_client *clients;
        struct loop_timer *drain_timer;
};

#define IO_STDIN_QUEUE_MAX (1u << 20)

/* No stdio yet (fds -1); attach clients may register already. */
void io_init_empty(struct io *io, struct proc *p);
/* Pipes for a process without a terminal (stdin only when wanted). Attach
 * clients registered so far stay. */
int io_init_pipes(struct io *io, struct proc *p, bool want_stdin);
/* A process with a terminal: nothing until io_set_pty(). */
void io_init_tty(struct io *io, struct proc *p);
/* The pty master received from the runtime (taken over). */
int io_set_pty(struct io *io, int master, bool want_stdin);
/* The runtime has the child ends now: close ours. */
void io_close_child_ends(struct io *io);
/* Reads what is already in the pipes without waiting (a runtime's error
 * text after a failed create). Returns a malloc'ed string (maybe empty). */
char *io_slurp(struct io *io);
/* Starts copying output (after the runtime created the process). */
int io_start(struct io *io);
/* io_start once `clients` attach clients are registered, or after
 * timeout_ms: a process started at create writes before its attach clients
 * can connect, and what it writes waits in the pipes (or the pty) for them.
 * proc_io_released() is called when reading starts. */
int io_hold(struct io *io, unsigned clients, unsigned timeout_ms);
/* An attach client registered on io (attach.c). */
void io_client_added(struct io *io);
/* The process exited: read what is left, then close; io.done is set (and
 * proc_io_done called) when the streams end or after timeout_ms. */
void io_drain(struct io *io, unsigned timeout_ms);
void io_free(struct io *io);

/* Queues bytes for the process's stdin. Returns false if stdin is closed. */
bool io_stdin_write(struct io *io, const void *data, size_t len);
bool io_stdin_full(const struct io *io);
/* Closes stdin once what is queued is written (EOT on a terminal). */
void io_close_stdin(struct io *io);
bool io_stdin_open(const struct io *io);
/* Resize the terminal; -ENOTTY without one. */
int io_resize(struct io *io, unsigned width, unsigned height);

/* byte_queue helpers (also used by attach.c) */
int bq_push(struct byte_queue *q, const void *data, size_t len);
void bq_consume(struct byte_queue *q, size_t n);
void bq_free(struct byte_queue *q);

#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "attach.h"
#include "cleanup.h"
#include "log.h"
#include "loop.h"
#include "shim.h"

#define PIPE_SIZE (1 << 20)

int bq_push(struct byte_queue *q, const void *data, size_t len)
{
        if (q->head > 0 && q->head + q->len + len > q->cap) {
                memmove(q->data, q->data + q->head, q->len);
                q->head = 0;
        }
        if (q->head + q->len + len > q->cap) {
                size_t cap = q->cap ? q->cap : 4096;
                while (cap < q->len + len)
                        cap *= 2;
                char *n = realloc(q->data, cap);
                if (!n)
                        return -ENOMEM;
                q->data = n;
                q->cap = cap;
        }
        memcpy(q->data + q->head + q->len, data, len);
        q->len += len;
        return 0;
}

void bq_consume(struct byte_queue *q, size_t n)
{
        q->head += n;
        q->len -= n;
        if (q->len == 0)
                q->head = 0;
}

void bq_free(struct byte_queue *q)
{
        free(q->data);
        *q = (struct byte_queue) { 0 };
}

static void io_reset(struct io *io, struct proc *p)
{
        struct attach_client *clients = io->clients;
        *io = (struct io) {
                .clients = clients,
                .proc = p,
                .pty = -1,
                .out = { .io = io, .fd = -1, .kind = JLOG_STDOUT },
                .err = { .io = io, .fd = -1, .kind = JLOG_STDERR },
                .child_in = -1,
                .child_out = -1,
                .child_err = -1,
                .stdin_fd = -1,
        };
}

void io_init_empty(struct io *io, struct proc *p)
{
        io->clients = NULL;
        io_reset(io, p);
}

int io_init_pipes(struct io *io, struct proc *p, bool want_stdin)
{
        int out[2], err[2], in[2] = { -1, -1 };

        io_reset(io, p);
        if (pipe2(out, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(err, O_CLOEXEC) < 0) {
                int r = -errno;
                close(out[0]);
                close(out[1]);
                return r;
        }
        if (want_stdin ? pipe2(in, O_CLOEXEC) < 0 : (in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
                int r = -errno;
                close(out[0]);
                close(out[1]);
                close(err[0]);
                close(err[1]);
                return r;
        }
        /* bigger pipes: fewer wake-ups for a chatty container (best effort) */
        fcntl(out[1], F_SETPIPE_SZ, PIPE_SIZE);
        fcntl(err[1], F_SETPIPE_SZ, PIPE_SIZE);
        fcntl(out[0], F_SETFL, O_NONBLOCK);
        fcntl(err[0], F_SETFL, O_NONBLOCK);
        io->out.fd = out[0];
        io->err.fd = err[0];
        io->child_out = out[1];
        io->child_err = err[1];
        io->child_in = in[0];
        if (in[1] >= 0) {
                fcntl(in[1], F_SETFL, O_NONBLOCK);
                io->stdin_fd = in[1];
        }
        return 0;
}

void io_init_tty(struct io *io, struct proc *p)
{
        io_reset(io, p);
        io->tty = true;
}

int io_set_pty(struct io *io, int master, bool want_stdin)
{
        fcntl(master, F_SETFL, O_NONBLOCK);
        io->out.fd = master;
        io->pty = fcntl(master, F_DUPFD_CLOEXEC, 3);
        if (io->pty < 0)
                return -errno;
        if (want_stdin) {
                io->stdin_fd = fcntl(master, F_DUPFD_CLOEXEC, 3);
                if (io->stdin_fd < 0)
                        return -errno;
        }
        return 0;
}

void io_close_child_ends(struct io *io)
{
        int *fds[] = { &io->child_in, &io->child_out, &io->child_err };
        for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
                if (*fds[i] >= 0) {
                        close(*fds[i]);
                        *fds[i] = -1;
                }
}

char *io_slurp(struct io *io)
{
        struct byte_queue q = { 0 };
        char buf[4096];
        struct io_stream *st[] = { &io->err, &io->out };
        for (size_t i = 0; i < ARRAY_SIZE(st); i++) {
                if (st[i]->fd < 0 || io->tty)
                        continue;
                ssize_t n;
                while ((n = read(st[i]->fd, buf, sizeof(buf))) > 0 && q.len < 65536)
                        bq_push(&q, buf, (size_t) n);
        }
        bq_push(&q, "", 1);
        if (!q.data)
                return strdup("");
        char *s = q.data;
        if (q.head)
                memmove(s, s + q.head, q.len);
        return s;
}

static void log_output(struct io *io, enum jlog_stream kind, const void *data, size_t len, bool finish)
{
        struct shim *s = io->proc->shim;
        struct berr e = { 0 };
        struct timespec now;
        int r;

        if (!s->log || io->proc != s->init)
                return;
        clock_gettime(CLOCK_REALTIME, &now);
        r = finish ? jlog_finish(s->log, kind, &now, &e) : jlog_write(s->log, kind, data, len, &now, &e);
        if (r < 0) {
                /* the container keeps running; say so once per failure
                 * streak (and now and then while it lasts) */
                if (s->log_errors == 0 || s->log_errors % 10000 == 0)
                        log_error("shim: container log: %s; output is dropped until writing works again", e.msg);
                s->log_errors++;
        } else if (s->log_errors > 0) {
                log_warn("shim: container log \"%s\" is written again after %llu failed writes", s->log_path,
                         (unsigned long long) s->log_errors);
                s->log_errors = 0;
        }
}

static void stream_end(struct io *io, struct io_stream *st)
{
        if (st->fd < 0)
                return;
        log_output(io, io->tty ? JLOG_STDOUT : st->kind, NULL, 0, true);
        loop_remove(st->src);
        st->src = NULL;
        close(st->fd);
        st->fd = -1;
        if (io->out.fd >= 0 || io->err.fd >= 0 || io->done)
                return;
        io->done = true;
        loop_cancel_timer(io->drain_timer);
        io->drain_timer = NULL;
        attach_finish(io);
        proc_io_done(io->proc);
}

/* Reads what is there; returns false once the stream has ended. */
static bool stream_read(struct io *io, struct io_stream *st, int max_reads)
{
        static char buf[65536];
        for (int i = 0; i < max_reads; i++) {
                ssize_t n = read(st->fd, buf, sizeof(buf));
                if (n > 0) {
                        enum jlog_stream kind = io->tty ? JLOG_STDOUT : st->kind;
                        log_output(io, kind, buf, (size_t) n, false);
                        attach_broadcast(io, kind, buf, (size_t) n);
                        if ((size_t) n < sizeof(buf))
                                return true;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return true;
                /* 0: every writer is gone; EIO: the pty's other side closed */
                stream_end(io, st);
                return false;
        }
        return true;
}

static void on_output(struct loop_source *src, int fd, uint32_t events, void *data)
{
        struct io_stream *st = data;
        stream_read(st->io, st, 16);
}

int io_start(struct io *io)
{
        struct shim *s = io->proc->shim;
        struct io_stream *st[] = { &io->out, &io->err };
        for (size_t i = 0; i < ARRAY_SIZE(st); i++) {
                if (st[i]->fd < 0 || st[i]->src)
                        continue;
                st[i]->src = loop_add_fd(s->loop, st[i]->fd, EPOLLIN, on_output, st[i]);
                if (!st[i]->src)
                        return -errno;
        }
        io->started = true;
        if (io->out.fd < 0 && io->err.fd < 0 && !io->done) {
                io->done = true;
                attach_finish(io);
        }
        return 0;
}

static void io_release(struct io *io)
{
        if (!io->held)
                return;
        io->held = false;
        loop_cancel_timer(io->hold_timer);
        io->hold_timer = NULL;
        if (io_start(io) < 0)
                log_warn("shim: %s: cannot read its output: %m", proc_name(io->proc));
        proc_io_released(io->proc);
}

static void on_hold_timeout(struct loop_timer *t, void *data)
{
        struct io *io = data;
        io->hold_timer = NULL;
        log_debug("shim: %s: %u attach client(s) expected, not all came: output read", proc_name(io->proc),
                  io->hold_for);
        io_release(io);
}

int io_hold(struct io *io, unsigned clients, unsigned timeout_ms)
{
        if (attach_count(io) >= clients)
                return io_start(io);
        io->hold_timer = loop_add_timer(io->proc->shim->loop, timeout_ms, on_hold_timeout, io);
        if (!io->hold_timer)
                return io_start(io);
        io->held = true;
        io->hold_for = clients;
        return 0;
}

void io_client_added(struct io *io)
{
        if (io->held && attach_count(io) >= io->hold_for)
                io_release(io);
}

static void on_drain_timeout(struct loop_timer *t, void *data)
{
        struct io *io = data;
        io->drain_timer = NULL;
        /* someone outside still holds the write end (a daemon that left the
         * container's pid namespace with our pipe): take what is there and
         * stop */
        struct io_stream *st[] = { &io->out, &io->err };
        for (size_t i = 0; i < ARRAY_SIZE(st); i++)
                if (st[i]->fd >= 0 && stream_read(io, st[i], 64) && st[i]->fd >= 0) {
                        log_warn("shim: %s: output still open after the process exited (another process "
                                 "holds it); closing it",
                                 proc_name(io->proc));
                        stream_end(io, st[i]);
                }
}

void io_drain(struct io *io, unsigned timeout_ms)
{
        /* stdin has no reader any more */
        bq_free(&io->stdin_q);
        loop_remove(io->stdin_src);
        io->stdin_src = NULL;
        if (io->stdin_fd >= 0) {
                close(io->stdin_fd);
                io->stdin_fd = -1;
        }
        if (io->done || io->drain_timer)
                return;
        io->drain_timer = loop_add_timer(io->proc->shim->loop, timeout_ms, on_drain_timeout, io);
}

void io_free(struct io *io)
{
        attach_drop_all(io);
        loop_cancel_timer(io->drain_timer);
        io->drain_timer = NULL;
        loop_cancel_timer(io->hold_timer);
        io->hold_timer = NULL;
        io->held = false;
        struct io_stream *st[] = { &io->out, &io->err };
        for (size_t i = 0; i < ARRAY_SIZE(st); i++) {
                loop_remove(st[i]->src);
                st[i]->src = NULL;
                if (st[i]->fd >= 0)
                        close(st[i]->fd);
                st[i]->fd = -1;
        }
        loop_remove(io->stdin_src);
        io->stdin_src = NULL;
        if (io->stdin_fd >= 0)
                close(io->stdin_fd);
        io->stdin_fd = -1;
        if (io->pty >= 0)
                close(io->pty);
        io->pty = -1;
        io_close_child_ends(io);
        bq_free(&io->stdin_q);
}

static void stdin_closed(struct io *io)
{
        loop_remove(io->stdin_src);
        io->stdin_src = NULL;
        if (io->stdin_fd >= 0)
                close(io->stdin_fd);
        io->stdin_fd = -1;
        io->stdin_close_pending = false;
        bq_free(&io->stdin_q);
        attach_resume_input(io);
}

static void stdin_flush(struct io *io);

static void on_stdin(struct loop_source *src, int fd, uint32_t events, void *data)
{
        stdin_flush(data);
}

/* Writes as much of the queue as the pipe takes. */
static void stdin_flush(struct io *io)
{
        while (io->stdin_q.len > 0) {
                ssize_t n = write(io->stdin_fd, io->stdin_q.data + io->stdin_q.head, io->stdin_q.len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        /* EPIPE: the process closed its stdin */
                        log_debug("shim: %s: stdin: %m", proc_name(io->proc));
                        stdin_closed(io);
                        return;
                }
                bq_consume(&io->stdin_q, (size_t) n);
        }
        if (io->stdin_q.len == 0) {
                loop_remove(io->stdin_src);
                io->stdin_src = NULL;
                if (io->stdin_close_pending && !io->tty) {
                        stdin_closed(io);
                        return;
                }
                io->stdin_close_pending = false;
        } else if (!io->stdin_src) {
                io->stdin_src = loop_add_fd(io->proc->shim->loop, io->stdin_fd, EPOLLOUT, on_stdin, io);
        }
        if (io->stdin_q.len < IO_STDIN_QUEUE_MAX / 2)
                attach_resume_input(io);
}

bool io_stdin_open(const struct io *io)
{
        return io->stdin_fd >= 0 && !io->stdin_close_pending;
}

bool io_stdin_full(const struct io *io)
{
        return io->stdin_q.len >= IO_STDIN_QUEUE_MAX;
}

bool io_stdin_write(struct io *io, const void *data, size_t len)
{
        if (!io_stdin_open(io))
                return false;
        if (bq_push(&io->stdin_q, data, len) < 0)
                return false;
        stdin_flush(io);
        return true;
}

void io_close_stdin(struct io *io)
{
        if (io->stdin_fd < 0 || io->stdin_close_pending)
                return;
        if (io->tty) {
                /* a terminal has no half-close: send EOF (^D) as a user would */
                static const char eot = 4;
                bq_push(&io->stdin_q, &eot, 1);
        }
        io->stdin_close_pending = true;
        stdin_flush(io);
}

int io_resize(struct io *io, unsigned width, unsigned height)
{
        if (io->pty < 0)
                return -ENOTTY;
        struct winsize ws = { .ws_col = (unsigned short) width, .ws_row = (unsigned short) height };
        if (ioctl(io->pty, TIOCSWINSZ, &ws) < 0)
                return -errno;
        return 0;
}

#include "attach.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"
#include "io.h"
#include "json-util.h"
#include "log.h"
#include "loop.h"
#include "shim.h"

#define HEADER_MAX 4096
/* A client this far behind is disconnected: the container never waits. */
#define CLIENT_QUEUE_MAX (4u << 20)

struct attach_client {
        struct attach_server *srv;
        int fd;
        struct loop_source *src;
        char header[HEADER_MAX];
        size_t header_len;
        struct io *io; /* set once the header is accepted */
        bool want_stdin, want_stdout, want_stderr;
        bool read_eof;
        bool closing;       /* close once the queue is sent */
        bool input_paused;  /* stdin is full: not reading */
        struct byte_queue q;
        struct attach_client *next; /* in io->clients or srv->pending */
};

struct attach_server {
        struct shim *shim;
        char *path;
        int fd;
        struct loop_source *src;
        struct attach_client *pending; /* connected, no header yet */
};

static void client_events(struct attach_client *c);

static void unlink_client(struct attach_client *c)
{
        struct attach_client **head = c->io ? &c->io->clients : &c->srv->pending;
        for (struct attach_client **p = head; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        return;
                }
}

static void client_free(struct attach_client *c)
{
        unlink_client(c);
        loop_remove(c->src);
        close(c->fd);
        bq_free(&c->q);
        free(c);
}

/* Sends what is queued; false if the client was freed. */
static bool client_flush(struct attach_client *c)
{
        while (c->q.len > 0) {
                ssize_t n = send(c->fd, c->q.data + c->q.head, c->q.len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        client_free(c);
                        return false;
                }
                bq_consume(&c->q, (size_t) n);
        }
        if (c->q.len == 0 && c->closing) {
                client_free(c);
                return false;
        }
        client_events(c);
        return true;
}

/* Queues a frame header (hlen may be 0) and data; false if the client was
 * dropped (too far behind) or freed. */
static bool client_queue(struct attach_client *c, const void *h, size_t hlen, const void *data, size_t len)
{
        if (c->q.len + hlen + len > CLIENT_QUEUE_MAX) {
                log_warn("shim: attach client of %s is %zu bytes behind; disconnecting it", proc_name(c->io->proc),
                         c->q.len);
                client_free(c);
                return false;
        }
        if ((hlen && bq_push(&c->q, h, hlen) < 0) || bq_push(&c->q, data, len) < 0) {
                client_free(c);
                return false;
        }
        return client_flush(c);
}

static void client_reply(struct attach_client *c, json_t *j)
{
        char *s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (!s) {
                client_free(c);
                return;
        }
        size_t n = strlen(s);
        bq_push(&c->q, s, n);
        bq_push(&c->q, "\n", 1);
        free(s);
}

static void client_stdin(struct attach_client *c, const char *data, size_t len)
{
        if (!c->want_stdin || len == 0)
                return;
        io_stdin_write(c->io, data, len);
}

/* The client has finished sending (shut down its side, or went away). */
static void client_input_done(struct attach_client *c)
{
        c->read_eof = true;
        if (c->io && c->want_stdin && c->io->proc->stdin_once)
                io_close_stdin(c->io);
}

static void client_header(struct attach_client *c, size_t nl)
{
        struct shim *s = c->srv->shim;
        json_error_t jerr;
        _cleanup_json_ json_t *h = json_loadb(c->header, nl, 0, &jerr);
        const char *exec_id = "";
        bool in = false, out = true, err = true;
        struct berr e = { 0 };

        unlink_client(c); /* from pending */
        c->next = NULL;
        if (!h || !json_is_object(h) || json_get_string(h, "attach", "exec_id", &exec_id, &e) < 0 ||
            json_get_bool(h, "attach", "stdin", &in, &e) < 0 || json_get_bool(h, "attach", "stdout", &out, &e) < 0 ||
            json_get_bool(h, "attach", "stderr", &err, &e) < 0) {
                client_reply(c, json_pack("{s:s}", "error",
                                          e.msg[0] ? e.msg : "shim: attach header is not a JSON object"));
                c->closing = true;
                c->next = c->srv->pending; /* on the pending list until flushed */
                c->srv->pending = c;
                client_flush(c);
                return;
        }
        struct proc *p = shim_find_proc(s, exec_id);
        if (!p) {
                char msg[256];
                snprintf(msg, sizeof(msg), "shim: no process with exec id \"%.64s\"", exec_id);
                client_reply(c, json_pack("{s:s}", "error", msg));
                c->closing = true;
                c->next = c->srv->pending;
                c->srv->pending = c;
                client_flush(c);
                return;
        }
        c->io = &p->io;
        c->want_stdin = in && p->stdin;
        c->want_stdout = out;
        c->want_stderr = err;
        c->next = c->io->clients;
        c->io->clients = c;
        client_reply(c, json_pack("{s:b, s:b, s:b}", "ok", 1, "tty", p->terminal, "stdin", c->want_stdin));
        if (c->io->done)
                c->closing = true;
        io_client_added(c->io); /* last: it may start reading, and send */

        /* bytes after the header line are stdin already */
        size_t rest = c->header_len - nl - 1;
        if (rest > 0)
                client_stdin(c, c->header + nl + 1, rest);
        if (c->read_eof)
                client_input_done(c);
        client_flush(c);
}

static void on_client(struct loop_source *src, int fd, uint32_t events, void *data)
{
        struct attach_client *c = data;
        char buf[65536];

        if (events & EPOLLERR) {
                if (!c->read_eof)
                        client_input_done(c);
                client_free(c);
                return;
        }
        if (events & EPOLLOUT) {
                if (!client_flush(c))
                        return;
        }
        if (c->read_eof) {
                /* EPOLLHUP: both directions are closed, nothing more to send */
                if (events & EPOLLHUP)
                        client_free(c);
                return;
        }
        if (!(events & (EPOLLIN | EPOLLHUP)))
                return;

        if (!c->io && !c->closing) {
                ssize_t n = recv(fd, c->header + c->header_len, sizeof(c->header) - c->header_len, MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (n <= 0) {
                        client_free(c);
                        return;
                }
                c->header_len += (size_t) n;
                char *nl = memchr(c->header, '\n', c->header_len);
                if (nl) {
                        client_header(c, (size_t) (nl - c->header));
                        return;
                }
                if (c->header_len == sizeof(c->header)) {
                        log_warn("shim: attach client sent no header line within %d bytes", HEADER_MAX);
                        client_free(c);
                }
                return;
        }
        if (c->closing && !c->io) {
                /* an error reply is being sent; ignore input */
                ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                        client_free(c);
                return;
        }
        for (int i = 0; i < 4; i++) {
                if (io_stdin_full(c->io)) {
                        c->input_paused = true;
                        client_events(c);
                        return;
                }
                ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n > 0) {
                        client_stdin(c, buf, (size_t) n);
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                /* EOF: the client shut down its sending side or left */
                client_input_done(c);
                if (n < 0 || (events & EPOLLHUP)) {
                        client_free(c);
                        return;
                }
                client_events(c);
                return;
        }
}

static void client_events(struct attach_client *c)
{
        uint32_t ev = 0;
        if (!c->read_eof && !c->input_paused)
                ev |= EPOLLIN;
        if (c->q.len > 0)
                ev |= EPOLLOUT;
        loop_mod_fd(c->src, ev);
}

static void on_accept(struct loop_source *src, int fd, uint32_t events, void *data)
{
        struct attach_server *a = data;
        for (;;) {
                int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (cfd < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                log_warn("shim: attach: accept: %m");
                        return;
                }
                struct attach_client *c = calloc(1, sizeof(*c));
                if (!c) {
                        close(cfd);
                        continue;
                }
                c->srv = a;
                c->fd = cfd;
                c->src = loop_add_fd(a->shim->loop, cfd, EPOLLIN, on_client, c);
                if (!c->src) {
                        close(cfd);
                        free(c);
                        continue;
                }
                c->next = a->pending;
                a->pending = c;
        }
}

int attach_server_start(struct shim *s, const char *path, struct attach_server **ret, struct berr *e)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(sa.sun_path))
                return berr_setx(e, ENAMETOOLONG, "shim: attach socket path \"%s\" is too long", path);
        strcpy(sa.sun_path, path);

        struct attach_server *a = calloc(1, sizeof(*a));
        if (!a || !(a->path = strdup(path))) {
                free(a);
                return berr_set(e, ENOMEM, "shim: attach socket");
        }
        a->shim = s;
        a->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (a->fd < 0) {
                int r = berr_set(e, errno, "shim: attach socket");
                free(a->path);
                free(a);
                return r;
        }
        unlink(path);
        mode_t old = umask(0077);
        int r = bind(a->fd, (struct sockaddr *) &sa, sizeof(sa));
        umask(old);
        if (r < 0 || listen(a->fd, 64) < 0) {
                r = berr_set(e, errno, "shim: cannot listen on \"%s\"", path);
                close(a->fd);
                free(a->path);
                free(a);
                return r;
        }
        a->src = loop_add_fd(s->loop, a->fd, EPOLLIN, on_accept, a);
        if (!a->src) {
                r = berr_set(e, errno, "shim: attach socket");
                close(a->fd);
                free(a->path);
                free(a);
                return r;
        }
        *ret = a;
        return 0;
}

int attach_server_moved(struct attach_server *a, const char *path)
{
        char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        free(a->path);
        a->path = p;
        return 0;
}

void attach_server_free(struct attach_server *a)
{
        if (!a)
                return;
        while (a->pending)
                client_free(a->pending);
        loop_remove(a->src);
        close(a->fd);
        unlink(a->path);
        free(a->path);
        free(a);
}

void attach_broadcast(struct io *io, enum jlog_stream kind, const void *data, size_t len)
{
        /* Docker's stream header: type, 0, 0, 0, size (big endian) */
        uint32_t n = (uint32_t) len; /* one read: at most 64 KiB */
        const unsigned char h[8] = { kind == JLOG_STDOUT ? 1 : 2, 0, 0, 0, (unsigned char) (n >> 24),
                                     (unsigned char) (n >> 16), (unsigned char) (n >> 8), (unsigned char) n };
        struct attach_client *c = io->clients;
        while (c) {
                struct attach_client *next = c->next;
                bool want = kind == JLOG_STDOUT ? c->want_stdout : c->want_stderr;
                if (want && !c->closing)
                        client_queue(c, h, io->tty ? 0 : sizeof(h), data, len);
                c = next;
        }
}

unsigned attach_count(const struct io *io)
{
        unsigned n = 0;
        for (const struct attach_client *c = io->clients; c; c = c->next)
                n++;
        return n;
}

void attach_finish(struct io *io)
{
        struct attach_client *c = io->clients;
        while (c) {
                struct attach_client *next = c->next;
                c->closing = true;
                client_flush(c);
                c = next;
        }
}

void attach_resume_input(struct io *io)
{
        for (struct attach_client *c = io->clients; c; c = c->next)
                if (c->input_paused) {
                        c->input_paused = false;
                        client_events(c);
                }
}

void attach_drop_all(struct io *io)
{
        while (io->clients)
                client_free(io->clients);
}

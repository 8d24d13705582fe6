#include "listen-guard.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "rpc-util.h"
#include "time-util.h"

#define DEFAULT_PROBE_MS 1000
#define PROBE_TIMEOUT_MS 1000
#define IPC_SCHEME "ipc://"

/* A pipe the socket has, and the listener that accepted it (0: a dialer's). */
struct guard_pipe {
        uint32_t pipe;
        uint32_t listener;
};

struct listen_guard {
        nng_socket sock;
        mode_t mode;
        unsigned probe_ms;
        nng_pipe_cb pipe_cb;
        void *pipe_arg;

        /* lock guards everything below; cond wakes the thread to stop */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        char *path;           /* NULL: not ipc, no probes */
        nng_listener current;
        nng_listener *retired; /* replaced, closed once their pipes are gone */
        size_t n_retired;
        struct guard_pipe *pipes;
        size_t n_pipes, cap_pipes;
        unsigned renewals;
        bool stopping;
        bool thread_started;
        pthread_t thread;
};

/* Temporary names differ within the process, so that a listener's close
 * (nng unlinks the name it bound) never removes another's file. */
static atomic_uint name_seq;

static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
        struct listen_guard *g = arg;
        uint32_t id = nng_pipe_id(p);

        pthread_mutex_lock(&g->lock);
        if (ev == NNG_PIPE_EV_ADD_POST) {
                if (g->n_pipes == g->cap_pipes) {
                        size_t cap = g->cap_pipes ? g->cap_pipes * 2 : 8;
                        struct guard_pipe *n = realloc(g->pipes, cap * sizeof(*n));
                        if (n) {
                                g->pipes = n;
                                g->cap_pipes = cap;
                        }
                }
                /* a pipe not recorded only keeps a retired listener open
                 * for less long, and a flush waits less for it */
                if (g->n_pipes < g->cap_pipes) {
                        int l = nng_listener_id(nng_pipe_listener(p));
                        g->pipes[g->n_pipes++] = (struct guard_pipe) { id, l > 0 ? (uint32_t) l : 0 };
                }
        } else if (ev == NNG_PIPE_EV_REM_POST) {
                for (size_t i = 0; i < g->n_pipes; i++)
                        if (g->pipes[i].pipe == id) {
                                g->pipes[i] = g->pipes[--g->n_pipes];
                                break;
                        }
        }
        pthread_mutex_unlock(&g->lock);
        if (g->pipe_cb)
                g->pipe_cb(p, ev, g->pipe_arg);
}

/* Binds a new listener to a temporary name beside path, sets its mode and
 * renames it to path. Called with g->lock held (or before the thread
 * starts). */
static int listen_at(struct listen_guard *g, nng_listener *ret, struct berr *e)
{
        const char *slash = strrchr(g->path, '/');
        int dirlen = slash ? (int) (slash - g->path) : 1;
        const char *dir = slash ? g->path : ".";
        char tmp[sizeof(((struct sockaddr_un *) 0)->sun_path)];
        char url[sizeof(tmp) + sizeof(IPC_SCHEME)];
        nng_listener l = NNG_LISTENER_INITIALIZER;
        int rv;

        int n = snprintf(tmp, sizeof(tmp), "%.*s/.nl%u", dirlen, dir, atomic_fetch_add(&name_seq, 1) + 1);
        if (n < 0 || (size_t) n >= sizeof(tmp))
                return berr_setx(e, ENAMETOOLONG, "cannot listen on \"%s\": a name beside it is too long", g->path);
        snprintf(url, sizeof(url), IPC_SCHEME "%s", tmp);
        /* left by a process that was killed while it renewed a listener */
        unlink(tmp);
        if ((rv = nng_listener_create(&l, g->sock, url)) != 0 || (rv = nng_listener_start(l, 0)) != 0) {
                if (nng_listener_id(l) > 0)
                        nng_listener_close(l);
                return berr_setx(e, rpc_errno_from_nng(rv), "cannot listen on \"%s\": %s", tmp, nng_strerror(rv));
        }
        if (chmod(tmp, g->mode) < 0 || rename(tmp, g->path) < 0) {
                int err = errno;
                nng_listener_close(l);
                unlink(tmp);
                return berr_set(e, err, "cannot put the socket \"%s\" in place", g->path);
        }
        *ret = l;
        return 0;
}

/* Connects to path as a peer of protocol 0 and waits for the socket to
 * refuse it. Returns 1 when it did (the listener works), 0 when it did not
 * in time or the connection was refused (no listener behind the file), and
 * -1 when no probe was possible (no file: it is being moved; a full
 * backlog: the server is busy, not stuck). */
static int probe(const char *path)
{
        static const uint8_t hello[8] = { 0, 'S', 'P', 0, 0, 0, 0, 0 };
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int result = 0;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -1;
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -1;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                result = errno == ECONNREFUSED ? 0 : -1;
                goto out;
        }
        /* the whole handshake is sent at once: the probe never leaves
         * one half-done, which is what stops nng 1.5.2 */
        if (write(fd, hello, sizeof(hello)) != (ssize_t) sizeof(hello)) {
                result = -1;
                goto out;
        }
        uint64_t deadline = time_monotonic_ns() + PROBE_TIMEOUT_MS * 1000000ull;
        for (;;) {
                uint8_t buf[64];
                ssize_t r = read(fd, buf, sizeof(buf));
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                        result = 1;
                        break;
                }
                if (r > 0)
                        continue;
                uint64_t now = time_monotonic_ns();
                if (now >= deadline)
                        break;
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                poll(&pfd, 1, (int) ((deadline - now + 999999) / 1000000));
        }
out:
        close(fd);
        return result;
}

static bool has_pipes(const struct listen_guard *g, nng_listener l)
{
        int id = nng_listener_id(l);
        for (size_t i = 0; i < g->n_pipes; i++)
                if ((int) g->pipes[i].listener == id)
                        return true;
        return false;
}

/* Takes the retired listeners whose connections are all gone off the list,
 * into idle (room for n_retired). Called with g->lock held; they are
 * closed after it is released: a close waits for the listener's callbacks,
 * and on_pipe takes the lock. */
static size_t take_idle_retired(struct listen_guard *g, nng_listener *idle)
{
        size_t k = 0, n = 0;
        for (size_t i = 0; i < g->n_retired; i++) {
                if (has_pipes(g, g->retired[i]))
                        g->retired[k++] = g->retired[i];
                else
                        idle[n++] = g->retired[i];
        }
        g->n_retired = k;
        return n;
}

static void renew(struct listen_guard *g)
{
        struct berr e = { 0 };
        nng_listener l;

        nng_listener *n = realloc(g->retired, (g->n_retired + 1) * sizeof(*n));
        if (!n) {
                log_warn("listener for \"%s\" has stopped accepting; no memory to renew it", g->path);
                return;
        }
        g->retired = n;
        if (listen_at(g, &l, &e) < 0) {
                log_warn("listener for \"%s\" has stopped accepting; renewing it failed: %s", g->path, e.msg);
                return;
        }
        g->retired[g->n_retired++] = g->current;
        g->current = l;
        g->renewals++;
        log_warn("listener for \"%s\" had stopped accepting (no answer to the probe within %d ms); renewed",
                 g->path, PROBE_TIMEOUT_MS);
}

static void *guard_thread(void *arg)
{
        struct listen_guard *g = arg;

        pthread_mutex_lock(&g->lock);
        while (!g->stopping) {
                uint64_t wake = time_monotonic_ns() + (uint64_t) g->probe_ms * 1000000ull;
                struct timespec ts = { .tv_sec = (time_t) (wake / 1000000000ull),
                                       .tv_nsec = (long) (wake % 1000000000ull) };
                while (!g->stopping && pthread_cond_timedwait(&g->cond, &g->lock, &ts) != ETIMEDOUT)
                        ;
                if (g->stopping)
                        break;
                char *path = strdup(g->path);
                pthread_mutex_unlock(&g->lock);
                int ok = path ? probe(path) : -1;
                pthread_mutex_lock(&g->lock);
                /* the file may have moved while the probe ran */
                bool same = path && strcmp(path, g->path) == 0;
                free(path);
                if (ok == 0 && same && !g->stopping)
                        renew(g);
                nng_listener *idle = g->n_retired ? calloc(g->n_retired, sizeof(*idle)) : NULL;
                size_t n_idle = idle ? take_idle_retired(g, idle) : 0;
                if (n_idle) {
                        pthread_mutex_unlock(&g->lock);
                        for (size_t i = 0; i < n_idle; i++)
                                nng_listener_close(idle[i]);
                        pthread_mutex_lock(&g->lock);
                }
                free(idle);
        }
        pthread_mutex_unlock(&g->lock);
        return NULL;
}

int listen_guard_start(nng_socket sock, const char *url, const struct listen_guard_options *opts,
                       struct listen_guard **ret, struct berr *e)
{
        struct listen_guard *g = calloc(1, sizeof(*g));
        int rv;

        if (!g)
                return berr_set(e, ENOMEM, "listener for \"%s\"", url);
        g->sock = sock;
        g->mode = opts && opts->mode ? opts->mode : 0600;
        g->probe_ms = opts && opts->probe_ms ? opts->probe_ms : DEFAULT_PROBE_MS;
        g->pipe_cb = opts ? opts->pipe_cb : NULL;
        g->pipe_arg = opts ? opts->pipe_arg : NULL;
        pthread_mutex_init(&g->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&g->cond, &ca);
        pthread_condattr_destroy(&ca);
        nng_pipe_notify(sock, NNG_PIPE_EV_ADD_POST, on_pipe, g);
        nng_pipe_notify(sock, NNG_PIPE_EV_REM_POST, on_pipe, g);

        if (strncmp(url, IPC_SCHEME, strlen(IPC_SCHEME)) != 0) {
                if ((rv = nng_listen(sock, url, &g->current, 0)) != 0) {
                        rv = berr_setx(e, rpc_errno_from_nng(rv), "cannot listen on \"%s\": %s", url,
                                       nng_strerror(rv));
                        goto fail;
                }
                *ret = g;
                return 0;
        }
        if (!(g->path = strdup(url + strlen(IPC_SCHEME)))) {
                rv = berr_set(e, ENOMEM, "listener for \"%s\"", url);
                goto fail;
        }
        if ((rv = listen_at(g, &g->current, e)) < 0)
                goto fail;
        if ((rv = pthread_create(&g->thread, NULL, guard_thread, g)) != 0) {
                rv = berr_set(e, rv, "listener for \"%s\": thread", url);
                nng_listener_close(g->current);
                unlink(g->path);
                goto fail;
        }
        g->thread_started = true;
        *ret = g;
        return 0;

fail:
        nng_pipe_notify(sock, NNG_PIPE_EV_ADD_POST, NULL, NULL);
        nng_pipe_notify(sock, NNG_PIPE_EV_REM_POST, NULL, NULL);
        g->thread_started = false;
        listen_guard_free(g);
        return rv;
}

int listen_guard_moved(struct listen_guard *g, const char *path)
{
        char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        pthread_mutex_lock(&g->lock);
        free(g->path);
        g->path = p;
        pthread_mutex_unlock(&g->lock);
        return 0;
}

bool listen_guard_has_pipe(struct listen_guard *g, uint32_t pipe_id)
{
        pthread_mutex_lock(&g->lock);
        bool found = false;
        for (size_t i = 0; i < g->n_pipes && !found; i++)
                found = g->pipes[i].pipe == pipe_id;
        pthread_mutex_unlock(&g->lock);
        return found;
}

unsigned listen_guard_renewals(struct listen_guard *g)
{
        pthread_mutex_lock(&g->lock);
        unsigned n = g->renewals;
        pthread_mutex_unlock(&g->lock);
        return n;
}

void listen_guard_stop(struct listen_guard *g)
{
        if (!g || !g->thread_started)
                return;
        pthread_mutex_lock(&g->lock);
        g->stopping = true;
        pthread_cond_broadcast(&g->cond);
        pthread_mutex_unlock(&g->lock);
        pthread_join(g->thread, NULL);
        g->thread_started = false;
}

void listen_guard_free(struct listen_guard *g)
{
        if (!g)
                return;
        listen_guard_stop(g);
        free(g->retired);
        free(g->pipes);
        free(g->path);
        pthread_cond_destroy(&g->cond);
        pthread_mutex_destroy(&g->lock);
        free(g);
}

#include "rpc-server.h"

#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "listen-guard.h"
#include "log.h"
#include "rpc-util.h"
#include "rpc.pb-c.h"

#define SAME_CODE(a, b) ((int) (a) == (int) (b))
_Static_assert(SAME_CODE(RPC_OK, BERTH__RPC__CODE__OK) && SAME_CODE(RPC_NOT_FOUND, BERTH__RPC__CODE__NOT_FOUND) &&
                       SAME_CODE(RPC_ALREADY_EXISTS, BERTH__RPC__CODE__ALREADY_EXISTS) &&
                       SAME_CODE(RPC_INVALID_ARGUMENT, BERTH__RPC__CODE__INVALID_ARGUMENT) &&
                       SAME_CODE(RPC_FAILED_PRECONDITION, BERTH__RPC__CODE__FAILED_PRECONDITION) &&
                       SAME_CODE(RPC_UNAVAILABLE, BERTH__RPC__CODE__UNAVAILABLE) &&
                       SAME_CODE(RPC_DEADLINE_EXCEEDED, BERTH__RPC__CODE__DEADLINE_EXCEEDED) &&
                       SAME_CODE(RPC_INTERNAL, BERTH__RPC__CODE__INTERNAL),
               "enum rpc_code must match berth.rpc.Code");

#define DEFAULT_MAX_MESSAGE (4u << 20)
#define DEFAULT_RECEIVERS 4
#define DEFAULT_MAX_CALLS 4096
/* Messages between max_message and this many times it are read and
 * refused with INVALID_ARGUMENT; above it nng drops the connection. */
#define TRANSPORT_CAP_FACTOR 16

enum worker_state {
        W_IDLE,  /* on the idle list, no operation */
        W_RECV,  /* waiting for a request */
        W_BUSY,  /* holds a call that has not been answered */
        W_SEND,  /* sending the reply */
};

struct rpc_call {
        struct rpc_worker *worker;
        const struct rpc_method *method;
        ProtobufCMessage *request;
        uint32_t pipe_id;
        struct rpc_call *next_queued;
};

struct rpc_worker {
        struct rpc_server *srv;
        nng_aio *aio;
        nng_ctx ctx;
        enum worker_state state; /* under srv->lock */
        struct rpc_worker *next_all;
        struct rpc_worker *next_idle;
        struct rpc_call call;
};

struct rpc_server {
        nng_socket sock;
        struct listen_guard *guard;
        const struct rpc_method *methods;
        size_t n_methods;
        void *userdata;
        struct rpc_server_options opt;
        int efd; /* queue mode: eventfd, readable while calls are queued */

        /* lock guards everything below; cond is signalled when a send
         * completes and when a pipe goes away. */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool closing;
        struct rpc_worker *all;
        struct rpc_worker *idle;
        unsigned n_workers;
        unsigned n_receiving;
        unsigned n_busy;
        unsigned n_sending;
        struct rpc_call *queue_head, *queue_tail;
};

static void worker_cb(void *arg);

/* The guard keeps the list of pipes (listen_guard_has_pipe); a pipe that
 * goes away may be the one rpc_server_flush waits for. */
static void pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
        struct rpc_server *s = arg;
        (void) p;

        if (ev != NNG_PIPE_EV_REM_POST)
                return;
        pthread_mutex_lock(&s->lock);
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
}

static struct rpc_worker *worker_new(struct rpc_server *s)
{
        struct rpc_worker *w = calloc(1, sizeof(*w));
        if (!w)
                return NULL;
        w->srv = s;
        w->call.worker = w;
        if (nng_aio_alloc(&w->aio, worker_cb, w) != 0) {
                free(w);
                return NULL;
        }
        if (nng_ctx_open(&w->ctx, s->sock) != 0) {
                nng_aio_free(w->aio);
                free(w);
                return NULL;
        }
        return w;
}

/* Tops the receivers up to opt.receivers: idle workers first, new ones
 * while fewer than max_calls exist. nng operations are started outside the
 * lock. */
static void arm_receivers(struct rpc_server *s)
{
        struct rpc_worker *start[64];
        size_t n_start = 0;
        unsigned n_new = 0;

        pthread_mutex_lock(&s->lock);
        while (!s->closing && s->n_receiving < s->opt.receivers && n_start < ARRAY_SIZE(start)) {
                if (s->idle) {
                        struct rpc_worker *w = s->idle;
                        s->idle = w->next_idle;
                        w->state = W_RECV;
                        start[n_start++] = w;
                } else if (s->n_workers + n_new < s->opt.max_calls) {
                        n_new++;
                } else
                        break;
                s->n_receiving++;
        }
        pthread_mutex_unlock(&s->lock);

        for (unsigned i = 0; i < n_new; i++) {
                struct rpc_worker *w = worker_new(s);
                pthread_mutex_lock(&s->lock);
                if (!w) {
                        s->n_receiving--;
                        pthread_mutex_unlock(&s->lock);
                        log_debug("rpc: cannot allocate a context; %u receivers", s->n_receiving);
                        continue;
                }
                w->next_all = s->all;
                s->all = w;
                s->n_workers++;
                w->state = W_RECV;
                pthread_mutex_unlock(&s->lock);
                nng_ctx_recv(w->ctx, w->aio);
        }
        for (size_t i = 0; i < n_start; i++)
                nng_ctx_recv(start[i]->ctx, start[i]->aio);
}

/* Packs the envelope and sends it on the call's context. Frees the request. */
static void call_send(struct rpc_call *call, enum rpc_code code, const char *message, const ProtobufCMessage *reply)
{
        struct rpc_worker *w = call->worker;
        struct rpc_server *s = w->srv;
        Berth__Rpc__Reply env = BERTH__RPC__REPLY__INIT;
        uint8_t *payload = NULL;
        nng_msg *msg = NULL;

        if (reply && code == RPC_OK) {
                size_t n = protobuf_c_message_get_packed_size(reply);
                payload = malloc(n ? n : 1);
                if (!payload) {
                        code = RPC_INTERNAL;
                        message = "rpc: out of memory packing the reply";
                } else {
                        protobuf_c_message_pack(reply, payload);
                        env.payload.data = payload;
                        env.payload.len = n;
                }
        }
        env.code = (Berth__Rpc__Code) code;
        env.message = (char *) (message ? message : "");

        size_t len = berth__rpc__reply__get_packed_size(&env);
        if (nng_msg_alloc(&msg, len) == 0)
                berth__rpc__reply__pack(&env, nng_msg_body(msg));
        free(payload);
        if (call->request)
                protobuf_c_message_free_unpacked(call->request, NULL);
        call->request = NULL;
        call->method = NULL;

        pthread_mutex_lock(&s->lock);
        s->n_busy--;
        if (!msg) {
                /* Nothing to send: the client's deadline answers it. */
                w->state = W_IDLE;
                w->next_idle = s->idle;
                s->idle = w;
                pthread_mutex_unlock(&s->lock);
                log_error("rpc: out of memory for a reply of %zu bytes", len);
                arm_receivers(s);
                return;
        }
        w->state = W_SEND;
        s->n_sending++;
        pthread_mutex_unlock(&s->lock);

        nng_aio_set_msg(w->aio, msg);
        nng_ctx_send(w->ctx, w->aio);
}

static void call_failf(struct rpc_call *call, enum rpc_code code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void call_failf(struct rpc_call *call, enum rpc_code code, const char *fmt, ...)
{
        char buf[RPC_MESSAGE_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        call_send(call, code, buf, NULL);
}

static const struct rpc_method *find_method(const struct rpc_server *s, const char *name)
{
        for (size_t i = 0; i < s->n_methods; i++)
                if (strcmp(s->methods[i].name, name) == 0)
                        return &s->methods[i];
        return NULL;
}

/* A request arrived on w: decode, check, then hand it to its handler (or
 * the queue). Must not touch w once the handler has it: the handler may
 * have answered, and the send may already be completing elsewhere. */
static void handle_request(struct rpc_worker *w, nng_msg *msg)
{
        struct rpc_server *s = w->srv;
        struct rpc_call *call = &w->call;
        size_t len = nng_msg_len(msg);
        char name[128];

        call->pipe_id = nng_pipe_id(nng_msg_get_pipe(msg));
        call->request = NULL;
        call->method = NULL;
        call->next_queued = NULL;

        if (len > s->opt.max_message) {
                nng_msg_free(msg);
                call_failf(call, RPC_INVALID_ARGUMENT, "rpc: request of %zu bytes exceeds the limit of %zu bytes", len,
                           s->opt.max_message);
                return;
        }
        Berth__Rpc__Request *env = berth__rpc__request__unpack(NULL, len, nng_msg_body(msg));
        nng_msg_free(msg);
        if (!env) {
                call_failf(call, RPC_INVALID_ARGUMENT, "rpc: request of %zu bytes is not a berth.rpc.Request", len);
                return;
        }
        rpc_printable(env->method, name, sizeof(name));
        const struct rpc_method *m = find_method(s, env->method);
        if (!m) {
                berth__rpc__request__free_unpacked(env, NULL);
                call_failf(call, RPC_INVALID_ARGUMENT, "rpc: unknown method \"%s\"", name);
                return;
        }
        ProtobufCMessage *req = protobuf_c_message_unpack(m->request_type, NULL, env->payload.len, env->payload.data);
        size_t plen = env->payload.len;
        berth__rpc__request__free_unpacked(env, NULL);
        if (!req) {
                call_failf(call, RPC_INVALID_ARGUMENT, "rpc: %s: payload of %zu bytes is not a %s", name, plen,
                           m->request_type->name);
                return;
        }
        call->method = m;
        call->request = req;

        if (s->opt.flags & RPC_SERVER_QUEUE) {
                pthread_mutex_lock(&s->lock);
                if (s->queue_tail)
                        s->queue_tail->next_queued = call;
                else
                        s->queue_head = call;
                s->queue_tail = call;
                pthread_mutex_unlock(&s->lock);
                uint64_t one = 1;
                if (write(s->efd, &one, sizeof(one)) < 0)
                        log_debug("rpc: eventfd write: %m");
                return;
        }
        m->handler(call, req, s->userdata);
}

static void worker_cb(void *arg)
{
        struct rpc_worker *w = arg;
        struct rpc_server *s = w->srv;
        int rv = nng_aio_result(w->aio);

        pthread_mutex_lock(&s->lock);
        enum worker_state st = w->state;
        pthread_mutex_unlock(&s->lock);

        if (st == W_RECV) {
                if (rv != 0) {
                        pthread_mutex_lock(&s->lock);
                        s->n_receiving--;
                        w->state = W_IDLE;
                        w->next_idle = s->idle;
                        s->idle = w;
                        bool closing = s->closing;
                        pthread_mutex_unlock(&s->lock);
                        if (!closing && rv != NNG_ECLOSED) {
                                log_debug("rpc: receive failed: %s", nng_strerror(rv));
                                arm_receivers(s);
                        }
                        return;
                }
                nng_msg *msg = nng_aio_get_msg(w->aio);
                nng_aio_set_msg(w->aio, NULL);
                pthread_mutex_lock(&s->lock);
                s->n_receiving--;
                s->n_busy++;
                w->state = W_BUSY;
                pthread_mutex_unlock(&s->lock);
                arm_receivers(s);
                handle_request(w, msg);
                return;
        }

        if (st == W_SEND) {
                if (rv != 0) {
                        nng_msg_free(nng_aio_get_msg(w->aio));
                        nng_aio_set_msg(w->aio, NULL);
                        log_debug("rpc: reply not sent: %s", nng_strerror(rv));
                }
                pthread_mutex_lock(&s->lock);
                s->n_sending--;
                pthread_cond_broadcast(&s->cond);
                bool again = !s->closing && s->n_receiving < s->opt.receivers;
                if (again) {
                        w->state = W_RECV;
                        s->n_receiving++;
                } else {
                        w->state = W_IDLE;
                        w->next_idle = s->idle;
                        s->idle = w;
                }
                pthread_mutex_unlock(&s->lock);
                if (again)
                        nng_ctx_recv(w->ctx, w->aio);
        }
}

int rpc_server_start(const char *url, const struct rpc_method *methods, size_t n_methods, void *userdata,
                     const struct rpc_server_options *opts, struct rpc_server **ret, struct berr *e)
{
        struct rpc_server *s = calloc(1, sizeof(*s));
        int rv;

        if (!s)
                return berr_set(e, ENOMEM, "rpc: server for \"%s\"", url);
        s->methods = methods;
        s->n_methods = n_methods;
        s->userdata = userdata;
        s->efd = -1;
        if (opts)
                s->opt = *opts;
        if (!s->opt.max_message)
                s->opt.max_message = DEFAULT_MAX_MESSAGE;
        if (!s->opt.receivers)
                s->opt.receivers = DEFAULT_RECEIVERS;
        if (!s->opt.max_calls)
                s->opt.max_calls = DEFAULT_MAX_CALLS;
        if (s->opt.max_calls < s->opt.receivers)
                s->opt.max_calls = s->opt.receivers;
        pthread_mutex_init(&s->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&s->cond, &ca);
        pthread_condattr_destroy(&ca);

        if (s->opt.flags & RPC_SERVER_QUEUE) {
                s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (s->efd < 0) {
                        rv = berr_set(e, errno, "rpc: eventfd");
                        goto fail_nosock;
                }
        }

        if ((rv = nng_rep0_open(&s->sock)) != 0) {
                rv = berr_setx(e, EIO, "rpc: cannot open a rep socket: %s", nng_strerror(rv));
                goto fail_nosock;
        }
        size_t cap = s->opt.max_message > SIZE_MAX / TRANSPORT_CAP_FACTOR ? SIZE_MAX
                                                                           : s->opt.max_message * TRANSPORT_CAP_FACTOR;
        nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, cap);
        struct listen_guard_options lo = {
                .mode = s->opt.mode, .probe_ms = s->opt.probe_ms, .pipe_cb = pipe_cb, .pipe_arg = s
        };
        if ((rv = listen_guard_start(s->sock, url, &lo, &s->guard, e)) < 0) {
                berr_prefix(e, "rpc");
                goto fail;
        }
        arm_receivers(s);
        pthread_mutex_lock(&s->lock);
        unsigned armed = s->n_receiving;
        pthread_mutex_unlock(&s->lock);
        if (armed == 0) {
                rv = berr_set(e, ENOMEM, "rpc: cannot allocate contexts for \"%s\"", url);
                goto fail;
        }
        *ret = s;
        return 0;

fail:
        rpc_server_free(s);
        return rv;
fail_nosock:
        if (s->efd >= 0)
                close(s->efd);
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return rv;
}

int rpc_server_fd(const struct rpc_server *s)
{
        return s->efd;
}

int rpc_server_dispatch(struct rpc_server *s)
{
        uint64_t v;
        int n = 0;

        if (s->efd < 0)
                return 0;
        if (read(s->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                log_debug("rpc: eventfd read: %m");
        for (;;) {
                pthread_mutex_lock(&s->lock);
                struct rpc_call *call = s->queue_head;
                if (call) {
                        s->queue_head = call->next_queued;
                        if (!s->queue_head)
                                s->queue_tail = NULL;
                }
                pthread_mutex_unlock(&s->lock);
                if (!call)
                        break;
                n++;
                call->method->handler(call, call->request, s->userdata);
        }
        return n;
}


int rpc_server_flush(struct rpc_server *s, uint32_t pipe_id, int timeout_ms)
{
        struct timespec dl;
        int r = 0;

        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
                dl.tv_sec++;
                dl.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&s->lock);
        while (s->n_sending > 0 || (pipe_id && s->guard && listen_guard_has_pipe(s->guard, pipe_id))) {
                if (pthread_cond_timedwait(&s->cond, &s->lock, &dl) == ETIMEDOUT) {
                        r = -ETIMEDOUT;
                        break;
                }
        }
        pthread_mutex_unlock(&s->lock);
        return r;
}

int rpc_server_moved(struct rpc_server *s, const char *path)
{
        return s->guard ? listen_guard_moved(s->guard, path) : 0;
}

unsigned rpc_server_renewals(struct rpc_server *s)
{
        return s->guard ? listen_guard_renewals(s->guard) : 0;
}

unsigned rpc_server_pending(struct rpc_server *s)
{
        pthread_mutex_lock(&s->lock);
        unsigned n = s->n_busy;
        pthread_mutex_unlock(&s->lock);
        return n;
}

void rpc_server_free(struct rpc_server *s)
{
        if (!s)
                return;
        pthread_mutex_lock(&s->lock);
        s->closing = true;
        pthread_mutex_unlock(&s->lock);

        listen_guard_stop(s->guard);
        nng_close(s->sock);
        listen_guard_free(s->guard);
        for (struct rpc_worker *w = s->all; w; w = w->next_all)
                nng_aio_stop(w->aio);

        struct rpc_worker *w = s->all;
        while (w) {
                struct rpc_worker *next = w->next_all;
                if (w->call.request)
                        protobuf_c_message_free_unpacked(w->call.request, NULL);
                nng_msg_free(nng_aio_get_msg(w->aio));
                nng_aio_free(w->aio);
                free(w);
                w = next;
        }
        if (s->efd >= 0)
                close(s->efd);
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        free(s);
}

void rpc_call_reply(struct rpc_call *call, const ProtobufCMessage *reply)
{
        const struct rpc_method *m = call->method;
        if (reply && m && m->reply_type && reply->descriptor != m->reply_type) {
                call_failf(call, RPC_INTERNAL, "rpc: %s answered with a %s instead of a %s", m->name,
                           reply->descriptor->name, m->reply_type->name);
                return;
        }
        call_send(call, RPC_OK, NULL, reply);
}

void rpc_call_fail(struct rpc_call *call, enum rpc_code code, const char *fmt, ...)
{
        char buf[RPC_MESSAGE_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (code == RPC_OK)
                code = RPC_INTERNAL;
        call_send(call, code, buf, NULL);
}

void rpc_call_fail_status(struct rpc_call *call, const struct rpc_status *st)
{
        call_send(call, st->code == RPC_OK ? RPC_INTERNAL : st->code, st->message, NULL);
}

const char *rpc_call_method(const struct rpc_call *call)
{
        return call->method ? call->method->name : "";
}

uint32_t rpc_call_pipe_id(const struct rpc_call *call)
{
        return call->pipe_id;
}

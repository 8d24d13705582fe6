#include "rpc-client.h"

#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rpc-util.h"
#include "rpc.pb-c.h"
#include "time-util.h"

/* Replies can be large (Pids of a big container); the transport's default
 * cap is 1 MiB. */
#define CLIENT_RECV_MAX (64u << 20)
#define RECONNECT_WAIT_NS (2000ull * 1000000ull)
/* A call that finds no connection this long replaces the dialer, at most
 * once per this long (see wait_connected). */
#define REDIAL_NS (250ull * 1000000ull)

struct inflight {
        nng_aio *aio;
        bool lost; /* the connection went away while the call was in flight */
        struct inflight *next;
};

struct rpc_client {
        nng_socket sock;
        char *url;
        /* lock guards everything below; cond is signalled when a pipe comes
         * up and when a redial ends. */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        unsigned n_pipes;
        struct inflight *inflight;
        nng_dialer dialer;
        bool redialing;
        uint64_t redialed_ns; /* when the dialer was last made */
};

static void pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
        struct rpc_client *c = arg;
        (void) p;

        (void) p;
        pthread_mutex_lock(&c->lock);
        if (ev == NNG_PIPE_EV_ADD_POST) {
                c->n_pipes++;
                pthread_cond_broadcast(&c->cond);
        } else if (ev == NNG_PIPE_EV_REM_POST) {
                if (c->n_pipes > 0)
                        c->n_pipes--;
                /* One server per client: a lost connection loses every
                 * request in flight. REQ would otherwise wait for a new
                 * connection and resend, which a Wait must not do silently. */
                for (struct inflight *f = c->inflight; f; f = f->next) {
                        f->lost = true;
                        nng_aio_abort(f->aio, NNG_ECONNSHUT);
                }
        }
        pthread_mutex_unlock(&c->lock);
}

int rpc_client_open(const char *url, struct rpc_client **ret, struct rpc_status *st)
{
        struct rpc_client *c = calloc(1, sizeof(*c));
        int rv;

        if (!c || !(c->url = strdup(url))) {
                free(c);
                return rpc_status_set(st, RPC_INTERNAL, "rpc: out of memory");
        }
        pthread_mutex_init(&c->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&c->cond, &ca);
        pthread_condattr_destroy(&ca);

        if ((rv = nng_req0_open(&c->sock)) != 0) {
                rpc_status_set(st, RPC_INTERNAL, "rpc: cannot open a req socket: %s", nng_strerror(rv));
                goto fail_nosock;
        }
        nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
        nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, CLIENT_RECV_MAX);
        nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 20);
        nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 1000);
        nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, c);
        nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, pipe_cb, c);
        if ((rv = nng_dial(c->sock, url, &c->dialer, 0)) != 0) {
                rpc_status_set(st, RPC_UNAVAILABLE, "rpc: cannot connect to \"%s\": %s", url, nng_strerror(rv));
                nng_close(c->sock);
                goto fail_nosock;
        }
        c->redialed_ns = time_monotonic_ns();
        *ret = c;
        return 0;

fail_nosock:
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->lock);
        free(c->url);
        free(c);
        return -rpc_code_to_errno(st ? st->code : RPC_UNAVAILABLE);
}

void rpc_client_close(struct rpc_client *c)
{
        if (!c)
                return;
        nng_close(c->sock);
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->lock);
        free(c->url);
        free(c);
}

static int64_t remaining_ms(uint64_t deadline_ns)
{
        if (deadline_ns == UINT64_MAX)
                return NNG_DURATION_INFINITE;
        uint64_t now = time_monotonic_ns();
        if (now >= deadline_ns)
                return 0;
        return (int64_t) ((deadline_ns - now + 999999) / 1000000);
}

/* Replaces the dialer with one that starts over. nng 1.5.2's dialer gives
 * up for good when its connection attempt ends with NNG_ECLOSED, which is
 * what a server that dies during the handshake gives (the same bug as
 * nanomsg/nng#1518 on the dialing side). A dialer that was only waiting to
 * retry loses nothing by it. Called with c->lock held; releases it while
 * nng works (closing a dialer waits for its callbacks, and pipe_cb takes
 * the lock). */
static void redial(struct rpc_client *c)
{
        c->redialing = true;
        nng_dialer old = c->dialer, d = NNG_DIALER_INITIALIZER;
        pthread_mutex_unlock(&c->lock);
        nng_dialer_close(old);
        int rv = nng_dial(c->sock, c->url, &d, NNG_FLAG_NONBLOCK);
        pthread_mutex_lock(&c->lock);
        if (rv == 0)
                c->dialer = d;
        c->redialed_ns = time_monotonic_ns();
        c->redialing = false;
        pthread_cond_broadcast(&c->cond);
}

/* Waits for a connection until the deadline. Called with c->lock held. */
static bool wait_connected(struct rpc_client *c, uint64_t deadline_ns)
{
        /* A server that stays away this long is unavailable, whatever the
         * call's own deadline (the dialer retries every 20 ms to 1 s). */
        uint64_t now = time_monotonic_ns(), limit = now + RECONNECT_WAIT_NS;
        if (deadline_ns > limit)
                deadline_ns = limit;
        while (c->n_pipes == 0) {
                now = time_monotonic_ns();
                if (now >= deadline_ns)
                        return false;
                if (!c->redialing && now - c->redialed_ns >= REDIAL_NS) {
                        redial(c);
                        continue;
                }
                uint64_t wake = c->redialed_ns + REDIAL_NS;
                if (c->redialing || wake > deadline_ns)
                        wake = deadline_ns;
                /* time_monotonic_ns() is CLOCK_MONOTONIC, the cond's clock */
                struct timespec ts = {
                        .tv_sec = (time_t) (wake / 1000000000ull),
                        .tv_nsec = (long) (wake % 1000000000ull),
                };
                pthread_cond_timedwait(&c->cond, &c->lock, &ts);
        }
        return true;
}

static int transport_error(struct rpc_client *c, const char *what, int rv, bool lost, int timeout_ms,
                           struct rpc_status *st)
{
        if (lost || rv == NNG_ECONNSHUT || rv == NNG_ECONNRESET || rv == NNG_ECLOSED)
                return rpc_status_set(st, RPC_UNAVAILABLE, "rpc: %s: connection to \"%s\" lost", what, c->url);
        if (rv == NNG_ETIMEDOUT)
                return rpc_status_set(st, RPC_DEADLINE_EXCEEDED, "rpc: %s: no reply from \"%s\" within %d ms", what,
                                      c->url, timeout_ms);
        return rpc_status_set(st, RPC_UNAVAILABLE, "rpc: %s: \"%s\": %s", what, c->url, nng_strerror(rv));
}

/* Sends data, receives the reply message. */
static int exchange(struct rpc_client *c, const char *what, const void *data, size_t len, int timeout_ms,
                    nng_msg **ret, struct rpc_status *st)
{
        uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : time_monotonic_ns() + (uint64_t) timeout_ms * 1000000ull;
        struct inflight f = { 0 };
        nng_ctx ctx;
        nng_msg *msg = NULL;
        int rv;

        if ((rv = nng_msg_alloc(&msg, len)) != 0)
                return rpc_status_set(st, RPC_INTERNAL, "rpc: %s: cannot allocate %zu bytes", what, len);
        if (len)
                memcpy(nng_msg_body(msg), data, len);
        if ((rv = nng_aio_alloc(&f.aio, NULL, NULL)) != 0) {
                nng_msg_free(msg);
                return rpc_status_set(st, RPC_INTERNAL, "rpc: %s: %s", what, nng_strerror(rv));
        }
        if ((rv = nng_ctx_open(&ctx, c->sock)) != 0) {
                nng_aio_free(f.aio);
                nng_msg_free(msg);
                return transport_error(c, what, rv, false, timeout_ms, st);
        }
        nng_ctx_set_ms(ctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);

        pthread_mutex_lock(&c->lock);
        if (!wait_connected(c, deadline)) {
                pthread_mutex_unlock(&c->lock);
                nng_msg_free(msg);
                rv = rpc_status_set(st, RPC_UNAVAILABLE, "rpc: %s: not connected to \"%s\"", what, c->url);
                goto out;
        }
        f.next = c->inflight;
        c->inflight = &f;
        pthread_mutex_unlock(&c->lock);

        nng_aio_set_timeout(f.aio, (nng_duration) remaining_ms(deadline));
        nng_aio_set_msg(f.aio, msg);
        nng_ctx_send(ctx, f.aio);
        nng_aio_wait(f.aio);
        if ((rv = nng_aio_result(f.aio)) != 0) {
                nng_msg_free(nng_aio_get_msg(f.aio));
                msg = NULL;
                goto unlink;
        }
        msg = NULL;

        pthread_mutex_lock(&c->lock);
        bool lost = f.lost;
        pthread_mutex_unlock(&c->lock);
        if (lost) {
                rv = NNG_ECONNSHUT;
                goto unlink;
        }
        nng_aio_set_timeout(f.aio, (nng_duration) remaining_ms(deadline));
        nng_ctx_recv(ctx, f.aio);
        nng_aio_wait(f.aio);
        rv = nng_aio_result(f.aio);
        if (rv == 0)
                msg = nng_aio_get_msg(f.aio);

unlink:
        pthread_mutex_lock(&c->lock);
        for (struct inflight **p = &c->inflight; *p; p = &(*p)->next)
                if (*p == &f) {
                        *p = f.next;
                        break;
                }
        lost = f.lost;
        pthread_mutex_unlock(&c->lock);
        if (rv != 0)
                rv = transport_error(c, what, rv, lost, timeout_ms, st);
        else
                *ret = msg;
out:
        nng_ctx_close(ctx);
        nng_aio_free(f.aio);
        return rv;
}

static int decode_reply(const char *what, nng_msg *msg, Berth__Rpc__Reply **ret, struct rpc_status *st)
{
        Berth__Rpc__Reply *r = berth__rpc__reply__unpack(NULL, nng_msg_len(msg), nng_msg_body(msg));
        size_t n = nng_msg_len(msg);
        nng_msg_free(msg);
        if (!r)
                return rpc_status_set(st, RPC_INTERNAL, "rpc: %s: reply of %zu bytes is not a berth.rpc.Reply", what,
                                      n);
        *ret = r;
        return 0;
}

int rpc_client_call_bytes(struct rpc_client *c, const void *data, size_t len, int timeout_ms,
                          struct rpc_status *st)
{
        nng_msg *msg;
        Berth__Rpc__Reply *r = NULL;
        int rv = exchange(c, "raw request", data, len, timeout_ms, &msg, st);
        if (rv < 0)
                return rv;
        if ((rv = decode_reply("raw request", msg, &r, st)) < 0)
                return rv;
        rpc_status_set(st, (enum rpc_code) r->code, "%s", r->message ? r->message : "");
        berth__rpc__reply__free_unpacked(r, NULL);
        return 0;
}

int rpc_client_call_payload(struct rpc_client *c, const char *method, const void *payload, size_t len,
                            int timeout_ms, void **ret_payload, size_t *ret_len, struct rpc_status *st)
{
        Berth__Rpc__Request env = BERTH__RPC__REQUEST__INIT;
        Berth__Rpc__Reply *r = NULL;
        nng_msg *msg;
        int rv;

        env.method = (char *) method;
        env.payload.data = (uint8_t *) payload;
        env.payload.len = len;
        size_t n = berth__rpc__request__get_packed_size(&env);
        uint8_t *buf = malloc(n ? n : 1);
        if (!buf)
                return rpc_status_set(st, RPC_INTERNAL, "rpc: %s: out of memory", method);
        berth__rpc__request__pack(&env, buf);
        rv = exchange(c, method, buf, n, timeout_ms, &msg, st);
        free(buf);
        if (rv < 0)
                return rv;
        if ((rv = decode_reply(method, msg, &r, st)) < 0)
                return rv;
        if (r->code != BERTH__RPC__CODE__OK) {
                rv = rpc_status_set(st, (enum rpc_code) r->code, "%s",
                                    r->message && r->message[0] ? r->message : rpc_code_name(r->code));
                berth__rpc__reply__free_unpacked(r, NULL);
                return rv;
        }
        uint8_t *out = malloc(r->payload.len + 1);
        if (!out) {
                berth__rpc__reply__free_unpacked(r, NULL);
                return rpc_status_set(st, RPC_INTERNAL, "rpc: %s: out of memory", method);
        }
        if (r->payload.len)
                memcpy(out, r->payload.data, r->payload.len);
        out[r->payload.len] = 0;
        *ret_payload = out;
        *ret_len = r->payload.len;
        berth__rpc__reply__free_unpacked(r, NULL);
        rpc_status_clear(st);
        return 0;
}

int rpc_client_call(struct rpc_client *c, const char *method, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *reply_type, int timeout_ms, ProtobufCMessage **ret_reply,
                    struct rpc_status *st)
{
        uint8_t *buf = NULL;
        size_t n = 0;
        void *out;
        size_t out_len;

        if (req) {
                n = protobuf_c_message_get_packed_size(req);
                buf = malloc(n ? n : 1);
                if (!buf)
                        return rpc_status_set(st, RPC_INTERNAL, "rpc: %s: out of memory", method);
                protobuf_c_message_pack(req, buf);
        }
        int rv = rpc_client_call_payload(c, method, buf, n, timeout_ms, &out, &out_len, st);
        free(buf);
        if (rv < 0)
                return rv;
        ProtobufCMessage *reply = protobuf_c_message_unpack(reply_type, NULL, out_len, out);
        free(out);
        if (!reply)
                return rpc_status_set(st, RPC_INTERNAL, "rpc: %s: reply payload of %zu bytes is not a %s", method,
                                      out_len, reply_type->name);
        *ret_reply = reply;
        return 0;
}

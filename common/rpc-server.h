/* An nng REQ/REP server for berth's RPC envelope (proto/rpc.proto).
 *
 * Many requests are served at once: a few nng contexts always wait for the
 * next request, and each request that arrives takes its context with it
 * until it is answered. A handler may answer at once or much later (a Wait
 * that answers when a process exits): the call is parked on its context,
 * no thread waits for it, and a fresh context takes its place among the
 * receivers, so parked calls never starve new ones.
 *
 * Requests that cannot be served never reach a handler and are answered
 * with INVALID_ARGUMENT: an envelope that does not decode, an unknown
 * method, a payload that does not decode as the method's request message,
 * or a message above max_message bytes. Messages above the transport cap
 * (16 x max_message) make nng drop the connection; the client then reports
 * UNAVAILABLE.
 *
 * Threads: without RPC_SERVER_QUEUE, handlers run on nng's callback threads
 * and must not block. With it, calls are queued and run by
 * rpc_server_dispatch() on the caller's thread (an event loop that polls
 * rpc_server_fd()). Replies may be given from any thread. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "rpc-code.h"

struct rpc_server;
struct rpc_call;

/* request is the decoded request message; it stays valid until the call is
 * answered. */
typedef void (*rpc_handler_fn)(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);

struct rpc_method {
        const char *name;                               /* "shim.Create" */
        const ProtobufCMessageDescriptor *request_type; /* payload is decoded as this */
        const ProtobufCMessageDescriptor *reply_type;   /* rpc_call_reply checks against it */
        rpc_handler_fn handler;
};

#define RPC_SERVER_QUEUE 1

struct rpc_server_options {
        size_t max_message;  /* requests above this get INVALID_ARGUMENT; 0: 4 MiB */
        unsigned receivers;  /* contexts waiting for requests; 0: 4 */
        unsigned max_calls;  /* contexts in all (parked calls included); 0: 4096 */
        int flags;           /* RPC_SERVER_QUEUE */
        mode_t mode;         /* ipc: the socket file's mode; 0: 0600 */
        unsigned probe_ms;   /* ipc: how often the listener is checked; 0: 1 s */
};

/* Listens on url ("ipc:///run/berth/shims/<id>/shim.sock"), through a
 * listen guard (listen-guard.h): the socket file gets its mode before it
 * appears at the path, a listener that stops accepting is replaced, and the
 * path is left in place when the server is freed. methods must outlive the
 * server. opts may be NULL. */
int rpc_server_start(const char *url, const struct rpc_method *methods, size_t n_methods, void *userdata,
                     const struct rpc_server_options *opts, struct rpc_server **ret, struct berr *e);

/* RPC_SERVER_QUEUE: an fd that is readable while calls wait for
 * rpc_server_dispatch(); -1 otherwise. */
int rpc_server_fd(const struct rpc_server *s);

/* Runs the handlers of all queued calls. Returns how many ran. */
int rpc_server_dispatch(struct rpc_server *s);

/* Waits (at most timeout_ms) until every reply given so far has been handed
 * to its connection and the connection that carried pipe_id (0: none) has
 * gone away, e.g. after answering a request to shut down: the client reads
 * its reply and closes. Returns 0, or -ETIMEDOUT. */
int rpc_server_flush(struct rpc_server *s, uint32_t pipe_id, int timeout_ms);

/* The socket file was moved to path (its directory was renamed). */
int rpc_server_moved(struct rpc_server *s, const char *path);

/* How many times the listener was replaced because it had stopped
 * accepting. */
unsigned rpc_server_renewals(struct rpc_server *s);

/* Number of calls received and not yet answered (parked ones included). */
unsigned rpc_server_pending(struct rpc_server *s);

/* Closes the socket and frees everything. Calls not answered by then are
 * dropped: their rpc_call pointers must not be used afterwards. */
void rpc_server_free(struct rpc_server *s);

/* Answers a call with OK and reply (of the method's reply_type; NULL means
 * an empty reply). Exactly one rpc_call_reply / rpc_call_fail per call; the
 * call (and its request) is gone afterwards. */
void rpc_call_reply(struct rpc_call *call, const ProtobufCMessage *reply);
void rpc_call_fail(struct rpc_call *call, enum rpc_code code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
void rpc_call_fail_status(struct rpc_call *call, const struct rpc_status *st);

const char *rpc_call_method(const struct rpc_call *call);
/* The id of the nng pipe (connection) the request came in on. */
uint32_t rpc_call_pipe_id(const struct rpc_call *call);

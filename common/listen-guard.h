/* nng listeners on ipc:// paths that keep accepting.
 *
 * nng 1.5.2 (Debian 12's) stops accepting for good when a client closes
 * its connection in the middle of the SP handshake: the transport reports
 * NNG_ECLOSED for the client's close, and nng's listener takes it for its
 * own closing (nanomsg/nng#1518, fixed in 1.6.0). Later clients still
 * complete the handshake, in the transport, but the socket never sees
 * them, so they wait for replies that never come. A plain connect() and
 * close() on the socket file is enough, and so is a client killed while it
 * dials.
 *
 * A guard owns the listener of one socket. Every probe_ms its thread
 * connects to the socket file, does the handshake as a peer of protocol 0
 * (none of nng's) and waits for nng to drop the connection: the socket
 * refuses a peer of the wrong protocol only once its listener has handed
 * the connection over, so a drop means the listener still works. With no
 * drop within a second (or a refused connection), the guard starts a new
 * listener and puts its socket file in place of the old one with rename(),
 * so that the path always leads to a listener. The old listener is closed
 * as soon as the connections it accepted are gone; closing it also drops
 * the clients that were stuck in it.
 *
 * Every listener is bound to a temporary name in the same directory
 * (".nl<n>"), given its mode there and then renamed to the path: the file
 * never appears at the path with other permissions, and closing a listener
 * (nng unlinks the name it bound) never removes the path. So the path is
 * not removed when the socket closes: the owner unlinks it.
 *
 * Other schemes (tcp://, inproc://) are listened on as they are, with no
 * guard thread. */
#pragma once

#include <nng/nng.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

struct listen_guard;

struct listen_guard_options {
        mode_t mode;         /* the socket file's mode; 0: 0600 */
        unsigned probe_ms;   /* between two probes; 0: 1000 */
        /* The guard takes the socket's NNG_PIPE_EV_ADD_POST and REM_POST
         * notifications; these are passed on to pipe_cb. */
        nng_pipe_cb pipe_cb;
        void *pipe_arg;
};

/* Listens on url for sock. opts may be NULL. */
int listen_guard_start(nng_socket sock, const char *url, const struct listen_guard_options *opts,
                       struct listen_guard **ret, struct berr *e);

/* The socket file was moved to path (its directory was renamed). */
int listen_guard_moved(struct listen_guard *g, const char *path);

/* Whether the socket has that pipe (connection) now. */
bool listen_guard_has_pipe(struct listen_guard *g, uint32_t pipe_id);

/* How many times a new listener replaced one that had stopped accepting. */
unsigned listen_guard_renewals(struct listen_guard *g);

/* Stops the probes; no listener is replaced after this. Call it before
 * nng_close() of the socket, and listen_guard_free() after it (the pipe
 * notifications use the guard until the socket is closed). */
void listen_guard_stop(struct listen_guard *g);
void listen_guard_free(struct listen_guard *g);

/* The client side of berth's RPC envelope (proto/rpc.proto) over nng
 * REQ/REP. Calls block the calling thread until the reply or the deadline;
 * any number of threads may call at once on one client (each call has its
 * own nng context).
 *
 * Errors come back as a struct rpc_status and -errno (see rpc-code.h):
 *   UNAVAILABLE        the server cannot be reached, or the connection was
 *                      lost while the call was in flight;
 *   DEADLINE_EXCEEDED  no reply within the call's timeout;
 *   INTERNAL           the reply does not decode;
 *   anything else      the code and message the server sent. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "rpc-code.h"

struct rpc_client;

/* No deadline. */
#define RPC_NO_TIMEOUT (-1)

/* Connects to url ("ipc:///run/berth/shims/<id>/shim.sock"). A server that
 * is not listening is UNAVAILABLE at once. Later the connection is redialled
 * in the background if it drops. */
int rpc_client_open(const char *url, struct rpc_client **ret, struct rpc_status *st);
void rpc_client_close(struct rpc_client *c);

/* Sends req to method and waits at most timeout_ms (RPC_NO_TIMEOUT: no
 * limit) for the reply, decoded as reply_type into *ret_reply (free with
 * protobuf_c_message_free_unpacked(..., NULL)). req NULL sends an empty
 * payload. */
int rpc_client_call(struct rpc_client *c, const char *method, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *reply_type, int timeout_ms, ProtobufCMessage **ret_reply,
                    struct rpc_status *st);

/* The same with the payloads as bytes (a payload that is not a valid
 * message, for tests). *ret_payload is malloc'ed (NUL-terminated, not
 * counted in *ret_len). */
int rpc_client_call_payload(struct rpc_client *c, const char *method, const void *payload, size_t len,
                            int timeout_ms, void **ret_payload, size_t *ret_len, struct rpc_status *st);

/* Sends bytes that need not be an envelope at all and returns the decoded
 * reply envelope's code and message in st (the return value is 0 when the
 * server answered, whatever the code). For tests of the server. */
int rpc_client_call_bytes(struct rpc_client *c, const void *data, size_t len, int timeout_ms,
                          struct rpc_status *st);

/* Status codes of the RPC envelope (proto/rpc.proto) on the C side: names,
 * the errno each one stands for, and a status value (code + message) that
 * clients fill and servers send. Free of nng and protobuf-c so that any
 * program may use it. */
#pragma once

#include <stdarg.h>

/* Same numbers as berth.rpc.Code in proto/rpc.proto (checked at build time
 * in rpc-server.c). */
enum rpc_code {
        RPC_OK = 0,
        RPC_NOT_FOUND = 1,
        RPC_ALREADY_EXISTS = 2,
        RPC_INVALID_ARGUMENT = 3,
        RPC_FAILED_PRECONDITION = 4,
        RPC_UNAVAILABLE = 5,
        RPC_DEADLINE_EXCEEDED = 6,
        RPC_INTERNAL = 7,
        _RPC_CODE_MAX,
};

#define RPC_MESSAGE_MAX 2048

struct rpc_status {
        enum rpc_code code;
        char message[RPC_MESSAGE_MAX];
};

/* "OK", "NOT_FOUND", ...; "UNKNOWN" for a value out of range. */
const char *rpc_code_name(int code);
/* The inverse of rpc_code_name; -EINVAL for an unknown name. */
int rpc_code_from_name(const char *name, enum rpc_code *ret);

/* A positive errno for a code (ENOENT, EEXIST, EINVAL, EBUSY, ECONNREFUSED,
 * ETIMEDOUT, EIO; 0 for OK) and a code for an errno (the reverse, with
 * ENOENT/ESRCH → NOT_FOUND, EEXIST → ALREADY_EXISTS, EINVAL/E2BIG/EMSGSIZE →
 * INVALID_ARGUMENT, EBUSY/EPERM/EALREADY → FAILED_PRECONDITION,
 * ECONNREFUSED/ECONNRESET/ENOTCONN/EPIPE → UNAVAILABLE, ETIMEDOUT →
 * DEADLINE_EXCEEDED, anything else → INTERNAL). The sign of err is ignored. */
int rpc_code_to_errno(enum rpc_code code);
enum rpc_code rpc_code_from_errno(int err);

/* Fills st (NULL allowed) and returns -rpc_code_to_errno(code) (or 0 for OK). */
int rpc_status_set(struct rpc_status *st, enum rpc_code code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
int rpc_status_setv(struct rpc_status *st, enum rpc_code code, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));
void rpc_status_clear(struct rpc_status *st);

#include "rpc-code.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const code_names[_RPC_CODE_MAX] = {
        [RPC_OK] = "OK",
        [RPC_NOT_FOUND] = "NOT_FOUND",
        [RPC_ALREADY_EXISTS] = "ALREADY_EXISTS",
        [RPC_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
        [RPC_FAILED_PRECONDITION] = "FAILED_PRECONDITION",
        [RPC_UNAVAILABLE] = "UNAVAILABLE",
        [RPC_DEADLINE_EXCEEDED] = "DEADLINE_EXCEEDED",
        [RPC_INTERNAL] = "INTERNAL",
};

const char *rpc_code_name(int code)
{
        if (code < 0 || code >= _RPC_CODE_MAX)
                return "UNKNOWN";
        return code_names[code];
}

int rpc_code_from_name(const char *name, enum rpc_code *ret)
{
        for (int i = 0; i < _RPC_CODE_MAX; i++)
                if (strcmp(name, code_names[i]) == 0) {
                        *ret = (enum rpc_code) i;
                        return 0;
                }
        return -EINVAL;
}

int rpc_code_to_errno(enum rpc_code code)
{
        switch (code) {
        case RPC_OK:
                return 0;
        case RPC_NOT_FOUND:
                return ENOENT;
        case RPC_ALREADY_EXISTS:
                return EEXIST;
        case RPC_INVALID_ARGUMENT:
                return EINVAL;
        case RPC_FAILED_PRECONDITION:
                return EBUSY;
        case RPC_UNAVAILABLE:
                return ECONNREFUSED;
        case RPC_DEADLINE_EXCEEDED:
                return ETIMEDOUT;
        default:
                return EIO;
        }
}

enum rpc_code rpc_code_from_errno(int err)
{
        if (err < 0)
                err = -err;
        switch (err) {
        case 0:
                return RPC_OK;
        case ENOENT:
        case ESRCH:
                return RPC_NOT_FOUND;
        case EEXIST:
                return RPC_ALREADY_EXISTS;
        case EINVAL:
        case E2BIG:
        case EMSGSIZE:
                return RPC_INVALID_ARGUMENT;
        case EBUSY:
        case EPERM:
        case EALREADY:
                return RPC_FAILED_PRECONDITION;
        case ECONNREFUSED:
        case ECONNRESET:
        case ENOTCONN:
        case EPIPE:
                return RPC_UNAVAILABLE;
        case ETIMEDOUT:
                return RPC_DEADLINE_EXCEEDED;
        default:
                return RPC_INTERNAL;
        }
}

int rpc_status_setv(struct rpc_status *st, enum rpc_code code, const char *fmt, va_list ap)
{
        if (st) {
                st->code = code;
                if (vsnprintf(st->message, sizeof(st->message), fmt, ap) < 0)
                        st->message[0] = '\0';
        }
        return -rpc_code_to_errno(code);
}

int rpc_status_set(struct rpc_status *st, enum rpc_code code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = rpc_status_setv(st, code, fmt, ap);
        va_end(ap);
        return r;
}

void rpc_status_clear(struct rpc_status *st)
{
        if (st) {
                st->code = RPC_OK;
                st->message[0] = '\0';
        }
}

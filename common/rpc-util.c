#include "rpc-util.h"

#include <errno.h>
#include <nng/nng.h>

int rpc_errno_from_nng(int nng_err)
{
        switch (nng_err) {
        case 0:
                return 0;
        case NNG_ENOENT:
                return ENOENT;
        case NNG_ECONNREFUSED:
                return ECONNREFUSED;
        case NNG_ECONNRESET:
        case NNG_ECONNSHUT:
        case NNG_ECLOSED:
                return ECONNRESET;
        case NNG_ETIMEDOUT:
                return ETIMEDOUT;
        case NNG_EADDRINUSE:
                return EADDRINUSE;
        case NNG_EADDRINVAL:
                return EINVAL;
        case NNG_EINVAL:
                return EINVAL;
        case NNG_EPERM:
                return EPERM;
        case NNG_ENOMEM:
                return ENOMEM;
        case NNG_EMSGSIZE:
                return EMSGSIZE;
        case NNG_ENOTSUP:
                return ENOTSUP;
        default:
                return EIO;
        }
}

char *rpc_printable(const char *s, char *buf, size_t size)
{
        size_t i = 0;
        for (; s && s[i] && i + 1 < size; i++) {
                unsigned char c = (unsigned char) s[i];
                buf[i] = c >= 0x20 && c < 0x7f ? (char) c : '?';
        }
        buf[i] = '\0';
        return buf;
}

#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int normalize(int err)
{
        if (err < 0)
                err = -err;
        return err == 0 ? EINVAL : err;
}

static int vset(struct berr *e, int err, int with_strerror, const char *fmt, va_list ap)
{
        err = normalize(err);
        if (!e)
                return -err;
        e->err = err;
        int n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        if (n < 0)
                e->msg[0] = '\0', n = 0;
        if (with_strerror && (size_t) n < sizeof(e->msg))
                snprintf(e->msg + n, sizeof(e->msg) - (size_t) n, ": %s", strerror(err));
        return -err;
}

int berr_set(struct berr *e, int err, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = vset(e, err, 1, fmt, ap);
        va_end(ap);
        return r;
}

int berr_setx(struct berr *e, int err, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int r = vset(e, err, 0, fmt, ap);
        va_end(ap);
        return r;
}

int berr_prefix(struct berr *e, const char *fmt, ...)
{
        char ctx[BERR_MSG_MAX], old[BERR_MSG_MAX];
        va_list ap;

        if (!e)
                return -EINVAL;
        va_start(ap, fmt);
        vsnprintf(ctx, sizeof(ctx), fmt, ap);
        va_end(ap);
        memcpy(old, e->msg, sizeof(old));
        size_t n = strnlen(ctx, sizeof(ctx) - 1);
        if (n > sizeof(e->msg) - 3)
                n = sizeof(e->msg) - 3;
        memcpy(e->msg, ctx, n);
        memcpy(e->msg + n, ": ", 2);
        n += 2;
        size_t m = strnlen(old, sizeof(old) - 1);
        if (m > sizeof(e->msg) - 1 - n)
                m = sizeof(e->msg) - 1 - n;
        memcpy(e->msg + n, old, m);
        e->msg[n + m] = '\0';
        return -normalize(e->err);
}

void berr_clear(struct berr *e)
{
        if (e) {
                e->err = 0;
                e->msg[0] = '\0';
        }
}

int err_buf(char *buf, size_t len, int r, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, len, fmt, ap);
        va_end(ap);
        return r;
}

/* An error that carries an errno and a message with its context.
 *
 * Functions follow the -errno convention (return >= 0 on success, -errno on
 * failure); those that know context fill a struct berr so that the program's
 * edge can print one line naming the cause. */
#pragma once

#include <stdarg.h>
#include <stddef.h>

#define BERR_MSG_MAX 1024

struct berr {
        int err;                   /* positive errno, 0 = no error */
        char msg[BERR_MSG_MAX];    /* "context: strerror" */
};

/* Records err (sign ignored; 0 becomes EINVAL) with a formatted message
 * followed by ": <strerror(err)>". Returns -err. A NULL e is allowed. */
int berr_set(struct berr *e, int err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Like berr_set, but the message is used as is (no strerror suffix). */
int berr_setx(struct berr *e, int err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Prepends "<context>: " to an existing message. Returns -e->err. */
int berr_prefix(struct berr *e, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

void berr_clear(struct berr *e);

/* For code that reports into a caller's buffer (char *err, size_t len):
 * formats the message there and returns r (a -errno), so that
 * `return err_buf(err, len, -EINVAL, "...", ...)` fails in one line. */
int err_buf(char *buf, size_t len, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

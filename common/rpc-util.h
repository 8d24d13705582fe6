/* Helpers shared by rpc-server.c and rpc-client.c (nng error mapping,
 * printable copies of untrusted strings). Not for other users. */
#pragma once

#include <stddef.h>

/* A positive errno for an nng error number (NNG_ECONNREFUSED →
 * ECONNREFUSED, NNG_ENOENT → ENOENT, NNG_ETIMEDOUT → ETIMEDOUT, ...; EIO when
 * there is no close match). */
int rpc_errno_from_nng(int nng_err);

/* Copies s into buf (size > 0) with bytes outside printable ASCII as '?',
 * cut to fit. Returns buf. */
char *rpc_printable(const char *s, char *buf, size_t size);

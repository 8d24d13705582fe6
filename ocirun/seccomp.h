/* Seccomp filters from the spec's linux.seccomp, through libseccomp.
 *
 * The filter is built (and every error in it reported) before the
 * container's process is created, and loaded in that process as the last
 * step before execve, so that as few syscalls as possible run under it. */
#pragma once

#include <jansson.h>

#include "err.h"

struct seccomp_ctx;

/* The functions are prefixed seccomp_filter_, not seccomp_: libseccomp owns
 * that namespace (seccomp_load() is its own). */

/* Parses and builds the filter described by linux.seccomp (the JSON object;
 * NULL or JSON null → *ret = NULL, nothing to do). */
int seccomp_filter_prepare(const json_t *linux_seccomp, struct seccomp_ctx **ret, struct berr *e);

/* Loads the filter into the calling process. Needs no_new_privs or
 * CAP_SYS_ADMIN. */
int seccomp_filter_load(struct seccomp_ctx *ctx, struct berr *e);

void seccomp_filter_free(struct seccomp_ctx *ctx);

/* The "seccomp" object of `ocirun features`. */
json_t *seccomp_features(void);

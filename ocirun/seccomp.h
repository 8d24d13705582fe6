/* Seccomp filters from the spec's linux.seccomp, through libseccomp.
 *
 * The filter is built (and every error in it reported) before the
 * container's process is created, and loaded in that process as the last
 * step before execve, so that as few syscalls as possible run under it. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "err.h"

struct seccomp_ctx;

/* The functions are prefixed seccomp_filter_, not seccomp_: libseccomp owns
 * that namespace (seccomp_load() is its own). */

/* Parses and builds the filter described by linux.seccomp (the JSON object;
 * NULL or JSON null → *ret = NULL, nothing to do). */
int seccomp_filter_prepare(const json_t *linux_seccomp, struct seccomp_ctx **ret, struct berr *e);

/* The same, with the generated program kept in <cache_root>/.seccomp (the
 * state root) for the next container with the same profile, and taken
 * from there when it is; cache_root NULL: no cache. */
int seccomp_filter_prepare_cached(const json_t *linux_seccomp, const char *cache_root, struct seccomp_ctx **ret,
                                  struct berr *e);

/* Loads the filter into the calling process. Needs no_new_privs or
 * CAP_SYS_ADMIN. */
int seccomp_filter_load(struct seccomp_ctx *ctx, struct berr *e);

void seccomp_filter_free(struct seccomp_ctx *ctx);

/* SCMP_ACT_NOTIFY: the filter has rules for a seccomp agent
 * (linux.seccomp.listenerPath). Then the container's process loads it
 * before it reports ready, passes the notify fd (seccomp_filter_notify_fd)
 * to ocirun, which sends it to the agent with the runtime-spec's
 * ContainerProcessState (seccomp_filter_send_listener). */
bool seccomp_filter_notifies(const struct seccomp_ctx *ctx);
int seccomp_filter_notify_fd(struct seccomp_ctx *ctx);
int seccomp_filter_send_listener(const struct seccomp_ctx *ctx, int notify_fd, pid_t pid, const json_t *state,
                                 struct berr *e);

/* The "seccomp" object of `ocirun features`. */
json_t *seccomp_features(void);

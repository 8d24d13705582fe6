/* OCI lifecycle hooks (the spec's "hooks" object). */
#pragma once

#include <jansson.h>

#include "err.h"

enum hook_stage {
        HOOK_PRESTART,
        HOOK_CREATE_RUNTIME,
        HOOK_CREATE_CONTAINER,
        HOOK_START_CONTAINER,
        HOOK_POSTSTART,
        HOOK_POSTSTOP,
};

const char *hook_stage_name(enum hook_stage stage);

/* Runs every hook of one stage, in order, each with the container state
 * (the JSON of `ocirun state`) on its stdin, its own args and env, and its
 * timeout. For prestart, createRuntime, createContainer and startContainer
 * the first failure stops the rest and is returned (naming the hook, its
 * exit status or signal, and its stderr); for poststart and poststop a
 * failure is logged as a warning and the remaining hooks still run.
 * hooks may be NULL (no hooks). */
int hooks_run(const json_t *hooks, enum hook_stage stage, const json_t *state, struct berr *e);

/* Validates the hooks object (types, absolute paths, timeouts > 0). */
int hooks_validate(const json_t *hooks, struct berr *e);

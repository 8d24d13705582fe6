/* Docker's /events: the engine's own record of what it did. */
#pragma once

#include <jansson.h>

struct engine;

int engine_events_init(struct engine *en);
void engine_events_free(struct engine *en);

/* Records an event: type "container", "image", ...; action "create",
 * "start", "die", ...; id the actor; attrs (taken over, may be NULL) its
 * attributes (name, image, exitCode, ...). */
void engine_event(struct engine *en, const char *type, const char *action, const char *id, json_t *attrs);

/* Container state on disk: <root>/<id>/state.json (written atomically) and
 * <root>/<id>/exec.fifo while the container is created but not started.
 * The status is derived, never stored: from the init process (pid plus its
 * start time, so a reused pid is not mistaken for it), the fifo, and the
 * freezer. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

#define STATE_DEFAULT_ROOT "/run/ocirun"
#define STATE_FIFO "exec.fifo"

enum container_status {
        STATUS_CREATING,
        STATUS_CREATED,
        STATUS_RUNNING,
        STATUS_PAUSED,
        STATUS_STOPPED,
};

struct container_state {
        json_t *doc;            /* owns the strings below */
        const char *id;
        const char *oci_version;
        const char *bundle;
        const char *rootfs;
        const char *created;
        pid_t pid;
        uint64_t start_time;    /* /proc/<pid>/stat field 22 */
        json_t *annotations;    /* borrowed, may be NULL */
        json_t *cgroup_paths;   /* hierarchy name → absolute dir, borrowed */
        json_t *hooks;          /* the spec's hooks (poststart/poststop run later), borrowed */
        uid_t owner;
};

const char *status_to_string(enum container_status s);

/* runc's rule: letters, digits, '_', '+', '-', '.' and not "." / "..". */
int state_check_id(const char *id, struct berr *e);

/* "<root>/<id>" */
int state_dir(const char *root, const char *id, char **ret);

/* Creates <root>/<id>; -EEXIST when the id is taken. */
int state_create_dir(const char *root, const char *id, struct berr *e);

int state_load(const char *root, const char *id, struct container_state **ret, struct berr *e);
int state_save(const char *root, const struct container_state *st);
void state_free(struct container_state *st);
static inline void state_freep(struct container_state **st)
{
        state_free(*st);
}

/* Builds a state from its parts (strings are copied). */
struct container_state *state_new(const char *id, const char *oci_version, const char *bundle, const char *rootfs,
                                  pid_t pid, uint64_t start_time, json_t *annotations, json_t *cgroup_paths,
                                  json_t *hooks);

enum container_status state_status(const char *root, const struct container_state *st);

/* True when pid is alive, not a zombie, and started at start_time. */
bool state_pid_alive(pid_t pid, uint64_t start_time);
int proc_start_time(pid_t pid, uint64_t *ret);

/* The runc-shaped JSON of `ocirun state` / `list --format json`. */
json_t *state_to_json(const struct container_state *st, enum container_status status);

/* The state a hook gets on stdin (the runtime-spec's state). */
json_t *state_hook_json(const char *oci_version, const char *id, const char *status, pid_t pid, const char *bundle,
                        json_t *annotations);

/* Removes <root>/<id> entirely. */
int state_remove(const char *root, const char *id);

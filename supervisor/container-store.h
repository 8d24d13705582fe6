/* Container metadata: one JSON file per container,
 * <root>/meta/containers/<id>.json, written atomically (json_write_atomic:
 * temp file, fsync, rename, fsync of the directory).
 *
 * A record is a JSON object:
 *   {"id", "image", "snapshot_key", "spec": {OCI runtime spec}, "runtime",
 *    "labels": {k: v}, "log_path", "log_opts": [..], "created", "updated",
 *    "state": "creating" | "created"}
 * "creating" is written before the container's snapshot is prepared and
 * replaced by "created" once it is: a record still "creating" on start is
 * a create that a crash interrupted, and is rolled back.
 *
 * One mutex serialises the store's changes inside the process; the
 * daemon is the only writer. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "err.h"

struct container_store;

/* [a-zA-Z0-9][a-zA-Z0-9_.-]{0,127} */
bool container_id_valid(const char *id);

/* root: <--root>/supervisor; meta/containers is created. */
int container_store_open(const char *root, struct container_store **ret, struct berr *e);
void container_store_free(struct container_store *cs);

/* Records rec (its "id" names it); -EEXIST when the id is taken. The
 * write is atomic, not durable: the create's intent record, made durable
 * by the container_store_put that completes the create (see
 * docs/decisions.md). container_store_put is durable. */
int container_store_create(struct container_store *cs, json_t *rec, struct berr *e);
/* Replaces the record of rec's id; -ENOENT when there is none. */
int container_store_put(struct container_store *cs, json_t *rec, struct berr *e);
/* -ENOENT when there is no such container. *ret is a new reference. */
int container_store_get(struct container_store *cs, const char *id, json_t **ret, struct berr *e);
/* Every record, as an array sorted by id. Unreadable files are skipped
 * with a warning. */
int container_store_list(struct container_store *cs, json_t **ret, struct berr *e);
/* -ENOENT when there is no such container. */
int container_store_remove(struct container_store *cs, const char *id, struct berr *e);

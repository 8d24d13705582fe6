/* The engine's containers: Docker's view of each one (config, host
 * config, state, name), kept as the JSON document `docker inspect` shows,
 * in memory and in <data root>/engine/containers/<id>/config.v2.json
 * (written atomically on every change).
 *
 * One lock guards the table; a condition variable is broadcast on every
 * state change, so waiters (wait, logs -f, attach before start) sleep on
 * it. Functions named *_locked expect the lock held. */
#pragma once

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

struct engine;

struct ctr {
        char id[65];
        json_t *doc;          /* the inspect document (Id, Name, State, Config, HostConfig, ...) */
        char *dir;            /* <data root>/engine/containers/<id> */
        unsigned attach_pending;   /* attach clients waiting for the task to exist */
        unsigned attach_ready;     /* of those, connected to the shim */
        bool task;            /* a task exists in the supervisor */
        bool removed;
        bool stopping;        /* a stop or kill by the user: no restart */
        bool exiting;         /* its exit is being recorded (the task deleted) */
        bool remove_volumes;  /* its removal takes its anonymous volumes (docker rm -v) */
        unsigned generation;  /* bumped on each exit */
        unsigned restart_delay_ms;  /* the restart policy's backoff: 100 ms doubling to 1 min */
        struct ctr *next;
};

struct ctr_table {
        pthread_mutex_t lock;
        pthread_cond_t changed;
        struct ctr *list;
        struct ctr *graveyard;  /* removed ones: waiters may still hold them */
        char *root;           /* <data root>/engine/containers */
        unsigned purging;     /* removed containers whose resources are still being freed */
        char (*leftovers)[65];  /* ids of those a previous engine left half-purged */
        size_t n_leftovers;
};

int ctr_table_open(struct ctr_table *t, const char *data_root);
void ctr_table_close(struct ctr_table *t);

/* By full id, unique id prefix, or name (with or without the leading
 * slash). NULL with *ambiguous set when a prefix matches several. */
struct ctr *ctr_find_locked(struct ctr_table *t, const char *ref, bool *ambiguous);

/* A new record (id and name chosen unless name is given; -EEXIST when the
 * name is taken). doc is taken over. */
int ctr_add_locked(struct ctr_table *t, const char *name, json_t *doc, struct ctr **ret);
/* Takes c out of the table: its name is free and lookups miss it at once.
 * Its directory is renamed to .removed-<id> beside it (one rename, so a kill -9 leaves
 * it whole or moved), for ctr_purge_dir to delete once the supervisor's
 * share is gone; ctr_table_open lists what a dead engine left there in
 * t->leftovers. */
void ctr_remove_locked(struct ctr_table *t, struct ctr *c);
/* Deletes the moved directory of a removed container (or of a leftover
 * id). Needs no lock: nobody else uses it. */
int ctr_purge_dir(struct ctr_table *t, const char *id);

/* Writes c's document to disk, atomically (a kill -9 leaves the old or
 * the new one). ctr_save_locked also makes it durable (fsync of the file
 * and its directory): for what only the user can give again (create,
 * rename, network connect). ctr_save_state_locked does not: for run-time
 * state (started, exited, paused, addresses), which no power loss can
 * make stale in a way the start-up reconciliation does not mend, since
 * every task is gone after one (docs/decisions.md). */
int ctr_save_locked(struct ctr_table *t, struct ctr *c);
int ctr_save_state_locked(struct ctr_table *t, struct ctr *c);

/* State helpers on the document. */
const char *ctr_status(struct ctr *c);   /* "created", "running", "paused", "exited", ... */
void ctr_set_running(struct ctr *c, int pid);
void ctr_set_exited(struct ctr *c, int code, bool oom, const char *finished_at, const char *error);
void ctr_set_status(struct ctr *c, const char *status);
const char *ctr_name(struct ctr *c);     /* with the leading slash */
const char *ctr_short_name(struct ctr *c);  /* without */

/* A readable generated name ("brave_harbor"), not used yet in t. */
int ctr_generate_name_locked(struct ctr_table *t, char *buf, size_t len);
bool ctr_name_valid(const char *name);

/* berth-supervisor, the daemon: what its services share.
 *
 * One struct supervisor holds the stores and the sockets; daemon-main.c
 * builds it and serves the methods of every service on one rpc_server
 * (proto/supervisor.proto). Handlers run on nng's callback threads and must
 * not block for long: anything slow (pulls, imports, exports, gc, creating
 * or deleting a task, Wait) is handed to a thread of its own with
 * supervisor_defer() and answered from there.
 *
 * Locking: gc_lock is a reader/writer lock around the content store's
 * garbage collection. Every operation that writes content before it
 * records what references it (a pull, an import) holds it shared for its
 * whole length; gc holds it exclusive. That is the daemon's lease: a gc
 * never takes blobs a pull in progress has stored and not yet recorded.
 *
 * Workers: the daemon links neither libcurl nor libarchive. A pull, an
 * import or an export runs in a berth-fetch worker process (fetch_binary,
 * "worker pull|import|export"), started from the handler's thread, which
 * holds gc_lock (shared) for the worker's whole life, turns its JSON lines
 * into events and replies, and records pulled images itself. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "content-store.h"
#include "err.h"
#include "image-store.h"
#include "registry-client.h"
#include "rpc-server.h"
#include "snapshot-overlay.h"
#include "supervisor.pb-c.h"

/* The longest path a unix socket can have (sun_path, less its NUL). */
#define SUN_PATH_MAX 107

struct supervisor_events;
struct supervisor_pulls;
struct supervisor_tasks;

struct supervisor {
        char *data_root;        /* --root, default /var/lib/berth */
        char *root;             /* <data_root>/supervisor */
        char *exec_root;        /* --exec-root, default /run/berth */
        char *shim_binary;      /* --shim, default: berth-shim beside this binary, else on PATH */
        char *default_runtime;  /* --runtime, default "ocirun" */
        char *auth_config;      /* --auth-config: a Docker config.json; NULL: none */
        char **insecure;        /* --insecure-registry, NULL-terminated, may be NULL */
        char **mirrors;         /* --registry-mirror (docker.io), NULL-terminated, may be NULL */
        unsigned max_downloads; /* --max-concurrent-downloads: blobs at once per pull; 0: 3 */
        char *fetch_binary;     /* --fetch: berth-fetch, the worker of pulls, imports and exports */
        enum snapshot_mode snapshotter; /* --snapshotter; the workers get the mode in use (never AUTO) */

        struct content_store *cs;
        struct snapshot_overlay *sn;
        struct image_store *is;
        pthread_rwlock_t gc_lock;

        struct supervisor_events *events;  /* daemon-events.c */
        struct supervisor_pulls *pulls;    /* svc-images.c: pulls in progress, by ref */
        struct supervisor_tasks *tasks;    /* svc-tasks.c: live shims and their tasks */

        struct rpc_server *server;
        volatile bool stopping;
};

/* ---- daemon-core.c ---- */

/* Answers call with the error r / e: the code from the errno
 * (rpc_code_from_errno), the message e->msg (or strerror) prefixed with
 * "supervisor: " unless it already names a layer ("shim:", "ocirun:"). */
void supervisor_fail(struct rpc_call *call, int r, const struct berr *e);
/* The same with a message of its own (err: a positive errno). */
void supervisor_fail_msg(struct rpc_call *call, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Runs fn(call, request, s) on a new detached thread, for a handler that
 * blocks; the call is answered from there. Fails the call with
 * UNAVAILABLE when no thread can be made, or while the daemon stops. */
void supervisor_defer(struct rpc_call *call, const ProtobufCMessage *request, struct supervisor *s,
                      rpc_handler_fn fn);

/* Waits at most timeout_ms for every deferred handler to return (after
 * s->stopping is set no new ones start). Returns how many still run. */
int supervisor_defer_drain(int timeout_ms);
/* Runs fn(arg) on a detached thread with a stack of stack_kb KiB. 0, or
 * the positive error of pthread_create (then fn did not run). */
int supervisor_thread(void *(*fn)(void *), void *arg, size_t stack_kb);

/* The current time as RFC 3339 with nanoseconds, UTC, into buf (>= 40 bytes). */
void supervisor_now(char *buf, size_t len);

/* ---- daemon-events.c ---- */

int supervisor_events_open(struct supervisor *s, const char *url, struct berr *e);
void supervisor_events_close(struct supervisor *s);

/* Publishes env (its topic and timestamp are set here) on the events
 * socket: "<topic>\0<Envelope>". Never blocks; a message nobody reads is
 * dropped. Safe from any thread. */
void supervisor_publish(struct supervisor *s, const char *topic, Berth__Supervisor__Envelope *env);

/* ---- the services: each a table of methods, concatenated by the daemon ---- */

extern const struct rpc_method supervisor_core_methods[];   /* supervisor.Version */
extern const size_t supervisor_core_n_methods;
extern const struct rpc_method supervisor_images_methods[]; /* images.*, content.*, snapshots.* */
extern const size_t supervisor_images_n_methods;
extern const struct rpc_method supervisor_tasks_methods[];  /* containers.*, tasks.* */
extern const size_t supervisor_tasks_n_methods;

/* svc-images.c: set up / tear down s->pulls. */
int supervisor_images_init(struct supervisor *s, struct berr *e);
void supervisor_images_fini(struct supervisor *s);

/* svc-tasks.c: set up s->tasks and recover: find every shim by its
 * directory under <exec_root>/shims, reconnect, re-issue Wait, record
 * exits that happened while the daemon was down, clean up shims whose
 * container is gone, roll back half-created containers. Called before the
 * RPC socket opens. */
int supervisor_tasks_init(struct supervisor *s, struct berr *e);
/* Wakes the calls that wait on tasks once s->stopping is set. */
void supervisor_tasks_stop(struct supervisor *s);
/* Stops waiting on shims (they and their containers keep running). */
void supervisor_tasks_fini(struct supervisor *s);

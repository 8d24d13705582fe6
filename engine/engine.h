/* berth-engine: what its API modules share. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <time.h>

#include "config.h"
#include "containers.h"
#include "events.h"
#include "http.h"
#include "rpc-client.h"
#include "rpc-code.h"

struct engine {
        char *data_root;            /* --data-root, default /var/lib/berth */
        char *exec_root;            /* --exec-root, default /run/berth */
        char *host;                 /* the unix socket's path */
        char *supervisor_address;   /* ipc://<exec root>/supervisor.sock */
        char *events_address;       /* ipc://<exec root>/supervisor-events.sock */
        char *pid_file;
        char *init_path;            /* --init-path: berth-init for `docker run --init` */
        struct berth_config cfg;   /* --config-file */
        struct rpc_client *sup;
        struct http_server *http;
        struct timespec started;
        struct ctr_table ctrs;
        struct exec_table *execs;   /* api-exec.c */
        struct engine_events *events;  /* events.c */
        struct vol_store *vols;     /* volumes.c, opened by engine_volumes_init */
};

/* Runs fn(arg) on a detached thread of stack_kb KiB (0: 256), counted so
 * that shutdown knows whether anything still runs. Returns 0 or -errno
 * (then fn did not run). */
int engine_spawn(void *(*fn)(void *), void *arg, size_t stack_kb);
/* A streamed 200 reply fed by fn(arg) on a thread of its own: *fd (a
 * field of arg) gets the pipe the thread writes the body to and closes.
 * When the reply or the thread cannot be had, *fd is closed and set to -1
 * and release(arg) runs. */
enum MHD_Result engine_reply_streamed(struct http_request *r, const char *content_type, int *fd,
                                      void *(*fn)(void *), void *arg, size_t stack_kb, void (*release)(void *arg));
/* Threads started by engine_spawn that have not ended. */
unsigned engine_threads_active(void);

/* A new reference to x, or dflt (taken over) when x is NULL: for "s:o"
 * in json_pack and json_object_set_new with a default. */
static inline json_t *json_ref_or(json_t *x, json_t *dflt)
{
        if (x) {
                json_decref(dflt);
                return json_incref(x);
        }
        return dflt;
}

/* Calls the supervisor (see rpc_client_call). */
int engine_call(struct engine *en, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *reply_type, int timeout_ms, ProtobufCMessage **ret,
                struct rpc_status *st);

/* The HTTP status for an RPC code: NOT_FOUND 404, ALREADY_EXISTS and
 * FAILED_PRECONDITION 409, INVALID_ARGUMENT 400, UNAVAILABLE 503,
 * DEADLINE_EXCEEDED 504, anything else 500. */
unsigned engine_http_status(enum rpc_code code);
/* api-archive.c: the supervisor's OCI spec of container id (NULL when it
 * does not parse) and, when ret_key, its snapshot's key. */
int engine_container_spec(struct engine *en, const char *id, json_t **ret_spec, char **ret_key,
                          struct rpc_status *st);
/* api-images.c: the supervisor imports the docker save archive or OCI
 * layout tarball open as fd (images.ImportImages). */
int engine_import_archive(struct engine *en, int fd, struct rpc_status *st);
/* The images (names) as one docker save archive, opened read-only: *ret_fd
 * (the file is already unlinked). */
int engine_export_images(struct engine *en, char **names, size_t n, int *ret_fd, struct rpc_status *st);
/* Docker's name for the machine (uname's): amd64, arm64, ... */
const char *engine_go_arch(const char *machine);
enum MHD_Result engine_reply_rpc_error(struct http_request *r, const struct rpc_status *st);

/* Calls that are not long-running give up after this long. */
#define ENGINE_CALL_TIMEOUT_MS 60000

/* The routes of each API module. */
extern const struct http_route engine_system_routes[];
extern const size_t engine_system_n_routes;
extern const struct http_route engine_image_routes[];
extern const size_t engine_image_n_routes;
extern const struct http_route engine_container_routes[];
extern const size_t engine_container_n_routes;
extern const struct http_route engine_stats_routes[];
extern const size_t engine_stats_n_routes;
extern const struct http_route engine_event_routes[];
extern const size_t engine_event_n_routes;
extern const struct http_route engine_exec_routes[];
extern const size_t engine_exec_n_routes;
extern const struct http_route engine_archive_routes[];
extern const size_t engine_archive_n_routes;
extern const struct http_route engine_volume_routes[];
extern const size_t engine_volume_n_routes;
extern const struct http_route engine_auth_routes[];
extern const size_t engine_auth_n_routes;
extern const struct http_route engine_df_routes[];
extern const size_t engine_df_n_routes;

/* api-containers.c: load the containers and reconcile them with the
 * supervisor's tasks (exits during the engine's downtime are recorded;
 * running ones are watched again). */
int engine_containers_init(struct engine *en);
/* Stops every running container (live-restore false, at shutdown). */
void engine_containers_stop_all(struct engine *en);
/* Waits (a minute at most) until removed containers are purged from the
 * supervisor: before what counts their snapshots (rmi, image prune). */
void engine_purges_wait(struct engine *en);
/* Waits (a minute at most) while the task of c's last run is being
 * deleted after its exit, so that what needs the task gone (a start, a
 * mount of its snapshot) finds it gone. Call with en->ctrs.lock held. */
void engine_ctr_settle_locked(struct engine *en, struct ctr *c);
/* Watches a started task until it exits (a thread of its own). */
void engine_watch_task(struct engine *en, struct ctr *c);
/* The entry of GET /containers/json for c (ContainerSummary, without the
 * sizes). Call with en->ctrs.lock held. */
json_t *engine_container_summary_locked(struct ctr *c);
/* Adds SizeRw and SizeRootFs (engine_container_sizes) to each entry of
 * out, an array of those summaries. Call without en->ctrs.lock. */
void engine_containers_add_sizes(struct engine *en, json_t *out);
/* Resolves a container reference; answers 404 (or 400 when ambiguous)
 * itself when there is none. Call with en->ctrs.lock held. */
struct ctr *engine_find_ctr_locked(struct engine *en, struct http_request *r, const char *ref);
/* api-system.c: the storage driver's name as Docker gives it, from the
 * supervisor's snapshotter ("overlay2", or "vfs" for the copying one). */
const char *engine_storage_driver(struct engine *en);
/* A container event (type "container") with the container's labels, image
 * and name as attributes, plus attrs (taken over, may be NULL). Call with
 * en->ctrs.lock held. */
void engine_container_event_locked(struct engine *en, struct ctr *c, const char *action, json_t *attrs);

/* api-volumes.c: the volume store, opened once the containers are loaded
 * (their volume mounts are its references). */
int engine_volumes_init(struct engine *en);
void engine_volumes_free(struct engine *en);
/* Creates or finds the volumes a new container uses (planned: what
 * oci_spec_build listed in ret_volumes) and references them; on failure
 * nothing it created stays, and the reason is in err (-EINVAL: the
 * user's). */
int engine_volumes_attach(struct engine *en, const char *id, json_t *planned, char *err, size_t errlen);
/* The container id is gone: its references go, and with remove_anonymous
 * its anonymous volumes nobody else uses (docker rm -v, --rm). */
void engine_volumes_release(struct engine *en, const char *id, bool remove_anonymous);
/* Docker's copy-up into empty volumes from the container's rootfs (a host
 * path): list is [{"Name", "Destination"}]. Failures are logged. */
void engine_volumes_copy_up(struct engine *en, json_t *list, const char *rootfs);

/* api-archive.c: SizeRw (the bytes of the container's writable layer) and
 * SizeRootFs (SizeRw + its image's size) of container id, as `ps -s` and
 * `inspect -s` show them. Takes en->ctrs.lock: call without it. */
int engine_container_sizes(struct engine *en, const char *id, int64_t *ret_rw, int64_t *ret_rootfs);

/* api-exec.c */
int engine_exec_init(struct engine *en);
void engine_exec_free(struct engine *en);

/* Splices a hijacked client to a shim's attach socket for one process
 * (exec_id "" = init): sends the attach header, then copies both ways
 * until the shim closes. ready (may be NULL) is called once the shim
 * accepted the client. Returns 0 or -errno. */
int engine_attach_splice(struct engine *en, const char *id, const char *exec_id, int client_fd, const char *extra,
                         size_t extra_len, bool want_stdin, bool want_stdout, bool want_stderr,
                         void (*ready)(void *ud), void *ud);

/* api-images.c: the entries of GET /images/json (ImageSummary, one per
 * image id with all its names) that filters (its query's JSON, may be
 * NULL) let through. *ret_blobs (ret_blobs may be NULL) gets {image id:
 * [the digests of the blobs its Size counts: target, manifest, config,
 * layers]}. Returns 0 or -EIO with st set. */
int engine_images_summary(struct engine *en, json_t *filters, json_t **ret, json_t **ret_blobs,
                          struct rpc_status *st);

/* Image names as Docker users see them: "docker.io/library/busybox:latest"
 * → "busybox:latest", "docker.io/ns/r:t" → "ns/r:t", others unchanged. */
const char *engine_familiar_name(const char *name);

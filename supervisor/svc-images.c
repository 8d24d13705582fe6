/* The "images", "content" and "snapshots" services of berth-supervisor.
 *
 * Every handler here touches the disk (metadata files under an flock,
 * blobs, layer trees), so each is deferred to a thread of its own
 * (supervisor_defer) and answers from there; the nng threads only decode.
 *
 * Pulls are jobs keyed by what they fetch (normalised reference, platform,
 * unpack or not): a second Pull of the same key while one runs attaches to
 * it, its job id is added to the job's progress events, and it is answered
 * with the same result. A pull holds gc_lock shared from its first blob to
 * the moment the image is recorded (daemon.h); gc holds it exclusive.
 *
 * What needs libcurl or libarchive (pulls, imports, exports, unpacking)
 * runs in a berth-fetch worker process (worker_run): the daemon stays
 * small while idle, whatever those libraries map. The worker stores blobs
 * and snapshots; the daemon keeps the image metadata of pulls. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "daemon.h"
#include "image-manifest.h"
#include "image-reference.h"
#include "image-store.h"
#include "json-util.h"
#include "log.h"
#include "time-util.h"

#define CONFIG_MAX (16u << 20)

/* ---------------------------------------------------------------- arena */

/* Reply messages are built from many small allocations; they all go into
 * one arena freed after the reply is packed. */
struct arena {
        void **v;
        size_t n, cap;
};

static void *arena_alloc(struct arena *a, size_t size)
{
        if (a->n == a->cap) {
                size_t cap = a->cap ? a->cap * 2 : 32;
                void **v = realloc(a->v, cap * sizeof(*v));
                if (!v)
                        return NULL;
                a->v = v;
                a->cap = cap;
        }
        void *p = calloc(1, size ? size : 1);
        if (p)
                a->v[a->n++] = p;
        return p;
}

static char *arena_strdup(struct arena *a, const char *s)
{
        size_t len = strlen(s ? s : "");
        char *p = arena_alloc(a, len + 1);
        if (p)
                memcpy(p, s ? s : "", len);
        return p;
}

static void arena_free(struct arena *a)
{
        for (size_t i = 0; i < a->n; i++)
                free(a->v[i]);
        free(a->v);
        a->v = NULL;
        a->n = a->cap = 0;
}

/* ---------------------------------------------------------------- helpers */

static int parse_name(const char *s, char name[IMAGE_REF_STRING_MAX], struct berr *e)
{
        struct image_ref ref;
        if (!s || !*s)
                return berr_setx(e, EINVAL, "an image name is needed");
        if (image_ref_parse(s, &ref, e) < 0)
                return -e->err;
        image_ref_string(&ref, name, IMAGE_REF_STRING_MAX);
        return 0;
}

/* "" fields: os linux, the host's architecture (what image_platform_default says). */
static int parse_platform(const Berth__Supervisor__Platform *p, struct image_platform *ret, struct berr *e)
{
        struct image_platform def;
        char buf[128];
        image_platform_default(&def);
        if (!p || (!*p->os && !*p->architecture && !*p->variant)) {
                *ret = def;
                return 0;
        }
        snprintf(buf, sizeof(buf), "%s/%s%s%s", *p->os ? p->os : def.os, *p->architecture ? p->architecture : def.arch,
                 *p->variant ? "/" : "", p->variant);
        return image_platform_parse(buf, ret, e);
}

static char *rfc3339(const struct timespec *ts, char *buf, size_t len)
{
        return time_rfc3339_nano(ts, buf, len);
}

/* The chain ids of an image config's rootfs.diff_ids. */
static int config_chain_ids(struct supervisor *s, const char *config_digest, char ***ret, struct berr *e)
{
        _cleanup_free_ char *data = NULL;
        _cleanup_json_ json_t *cfg = NULL;
        _cleanup_strv_free_ char **ids = NULL;
        char chain[CONTENT_DIGEST_MAX] = "";
        size_t len = 0;
        int r = content_read(s->cs, config_digest, CONFIG_MAX, &data, &len, e);
        if (r < 0)
                return r;
        cfg = json_loadb(data, len, 0, NULL);
        json_t *diffs = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
        if (!json_is_array(diffs))
                return berr_setx(e, EINVAL, "image config %s has no rootfs.diff_ids", config_digest);
        ids = calloc(json_array_size(diffs) + 1, sizeof(char *));
        if (!ids)
                return berr_set(e, ENOMEM, "chain ids");
        for (size_t i = 0; i < json_array_size(diffs); i++) {
                const char *d = json_string_value(json_array_get(diffs, i));
                if (!d || image_chain_id(i ? chain : NULL, d, chain) < 0)
                        return berr_setx(e, EINVAL, "image config %s: bad diff id %zu", config_digest, i);
                if (!(ids[i] = strdup(chain)))
                        return berr_set(e, ENOMEM, "chain ids");
        }
        *ret = TAKE_PTR(ids);
        return 0;
}

/* An Image message for rec. What cannot be worked out (a manifest or
 * config not in the store) is left empty: listing never fails for it. */
static Berth__Supervisor__Image *image_msg(struct supervisor *s, struct arena *a, const struct image_record *rec,
                                           const struct image_platform *plat)
{
        Berth__Supervisor__Image *im = arena_alloc(a, sizeof(*im));
        Berth__Supervisor__Descriptor *d = arena_alloc(a, sizeof(*d));
        struct image_manifest m = { 0 };
        char mdigest[CONTENT_DIGEST_MAX];
        struct berr e = { 0 };
        uint64_t size = 0;
        size_t nl = 0;

        if (!im || !d)
                return NULL;
        berth__supervisor__image__init(im);
        berth__supervisor__descriptor__init(d);
        im->name = arena_strdup(a, rec->name);
        d->media_type = arena_strdup(a, rec->media_type);
        d->digest = arena_strdup(a, rec->digest);
        d->size = rec->size;
        im->target = d;
        im->created = arena_strdup(a, rec->created);
        im->config_digest = "";
        for (char **l = rec->labels; l[0] && l[1]; l += 2)
                nl++;
        im->labels = arena_alloc(a, (nl + 1) * sizeof(*im->labels));
        for (size_t i = 0; im->labels && i < nl; i++) {
                Berth__Supervisor__Image__LabelsEntry *le = arena_alloc(a, sizeof(*le));
                if (!le)
                        break;
                berth__supervisor__image__labels_entry__init(le);
                le->key = arena_strdup(a, rec->labels[2 * i]);
                le->value = arena_strdup(a, rec->labels[2 * i + 1]);
                im->labels[im->n_labels++] = le;
        }
        if (image_store_size(s->is, rec, plat, &size, &e) >= 0)
                im->size = (int64_t) size;
        if (image_store_manifest(s->is, rec, plat, &m, mdigest, &e) < 0) {
                log_debug("image \"%s\": %s", rec->name, e.msg);
                return im;
        }
        im->config_digest = arena_strdup(a, m.config.digest);
        _cleanup_strv_free_ char **chain = NULL;
        if (config_chain_ids(s, m.config.digest, &chain, &e) >= 0) {
                size_t n = 0;
                while (chain[n])
                        n++;
                im->chain_ids = arena_alloc(a, (n + 1) * sizeof(char *));
                im->unpacked = im->chain_ids != NULL;
                for (size_t i = 0; im->chain_ids && i < n; i++) {
                        struct snapshot_info si = { 0 };
                        im->chain_ids[im->n_chain_ids++] = arena_strdup(a, chain[i]);
                        if (snapshot_overlay_stat(s->sn, chain[i], &si, NULL) < 0 || si.kind != SNAPSHOT_COMMITTED)
                                im->unpacked = false;
                        snapshot_info_done(&si);
                }
        }
        image_manifest_done(&m);
        return im;
}

static void publish_image(struct supervisor *s, const char *topic, const char *name, const char *digest)
{
        Berth__Supervisor__Envelope env = BERTH__SUPERVISOR__ENVELOPE__INIT;
        Berth__Supervisor__ImageEvent ev = BERTH__SUPERVISOR__IMAGE_EVENT__INIT;
        ev.name = (char *) name;
        ev.digest = (char *) (digest ? digest : "");
        env.event_case = BERTH__SUPERVISOR__ENVELOPE__EVENT_IMAGE;
        env.image = &ev;
        supervisor_publish(s, topic, &env);
}

/* ---------------------------------------------------------------- workers */

/* How often a thread waiting on a worker looks at s->stopping. */
#define WORKER_POLL_MS 250
/* A worker's stdout line (the result of a pull names every layer). */
#define WORKER_LINE_MAX (4u << 20)

/* What a worker run came to: its "result" event, or its "error" event's
 * message and errno, or how it ended without either. */
struct worker_outcome {
        json_t *result;
        bool error_seen;
        bool cancelled;                  /* killed because the daemon stops */
};

typedef void (*worker_event_fn)(void *ud, const char *event, json_t *ev);

static void worker_line(const char *line, size_t len, struct worker_outcome *out, worker_event_fn fn, void *ud,
                        struct berr *e)
{
        json_error_t je;
        json_t *ev = json_loadb(line, len, 0, &je);
        const char *event = json_string_value(json_object_get(ev, "event"));
        if (!event) {
                log_warn("supervisor: worker: a line that is not an event (ignored): %.*s", (int) (len > 200 ? 200 : len),
                         line);
        } else if (strcmp(event, "result") == 0) {
                json_decref(out->result);
                out->result = json_incref(ev);
        } else if (strcmp(event, "error") == 0) {
                const char *msg = json_string_value(json_object_get(ev, "message"));
                json_int_t err = json_integer_value(json_object_get(ev, "errno"));
                out->error_seen = true;
                berr_setx(e, err > 0 && err < 4096 ? (int) err : EIO, "%s", msg && *msg ? msg : "worker failed");
        } else if (fn) {
                fn(ud, event, ev);
        }
        json_decref(ev);
}

/* Runs `berth-fetch --root <data_root> worker <mode> --job-json -` with job
 * on its stdin, hands each event line to fn (on this thread), and waits for
 * it. Returns 0 with *ret_result (its "result" event) when it succeeded;
 * otherwise the error it reported (its message, its errno), or one that
 * says how it ended: killed by a signal, exited without a result, or
 * cancelled (-ESHUTDOWN) because the daemon stops. */
static int worker_run(struct supervisor *s, const char *mode, json_t *job, worker_event_fn fn, void *ud,
                      json_t **ret_result, struct berr *e)
{
        _cleanup_free_ char *job_text = NULL, *buf = NULL;
        _cleanup_close_ int in_w = -1, out_r = -1;
        int in[2] = { -1, -1 }, out[2] = { -1, -1 };
        struct worker_outcome o = { 0 };
        size_t len = 0, cap = 0;
        pid_t pid = -1;
        int r, status = 0;

        json_object_set_new(job, "parent_pid", json_integer(getpid()));
        if (!(job_text = json_dumps(job, JSON_COMPACT)))
                return berr_set(e, ENOMEM, "worker %s: job", mode);
        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
                r = -errno;
                if (in[0] >= 0) {
                        close(in[0]);
                        close(in[1]);
                }
                return berr_set(e, r, "worker %s: pipe", mode);
        }
        in_w = in[1];
        out_r = out[0];

        /* the snapshotter's mode on the command line: it wins over a
         * $BERTH_SNAPSHOTTER the worker would inherit */
        char *argv[] = { s->fetch_binary, "--root", s->data_root, "--snapshotter",
                         (char *) snapshot_mode_string(s->snapshotter), "worker", (char *) mode, "--job-json", "-",
                         NULL };
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t at;
        sigset_t none, dfl;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
        posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
        posix_spawnattr_init(&at);
        /* the daemon blocks its stop signals and ignores SIGPIPE: the
         * worker gets neither (a closed stdout must end it) */
        sigemptyset(&none);
        sigfillset(&dfl);
        posix_spawnattr_setsigmask(&at, &none);
        posix_spawnattr_setsigdefault(&at, &dfl);
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        r = strchr(s->fetch_binary, '/') ? posix_spawn(&pid, s->fetch_binary, &fa, &at, argv, environ)
                                         : posix_spawnp(&pid, s->fetch_binary, &fa, &at, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&at);
        close(in[0]);
        close(out[1]);
        if (r != 0) {
                berr_set(e, r, "cannot run the worker \"%s\"", s->fetch_binary);
                e->err = EIO;   /* INTERNAL, not the errno's NOT_FOUND: the daemon is broken */
                return -EIO;
        }
        log_debug("supervisor: worker %s: pid %d", mode, (int) pid);

        /* the job is small (a pipe buffer's worth); a worker that died
         * first shows as EPIPE here and by its status below */
        size_t jl = strlen(job_text), done = 0;
        while (done < jl) {
                ssize_t n = write(in_w, job_text + done, jl - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                done += (size_t) n;
        }
        if (done == jl && write(in_w, "\n", 1) < 0)
                log_debug("supervisor: worker %s: job: %m", mode);
        close(TAKE_FD(in_w));

        for (;;) {
                struct pollfd pfd = { .fd = out_r, .events = POLLIN };
                if (s->stopping && !o.cancelled) {
                        log_info("supervisor: stopping: worker %s (pid %d) killed", mode, (int) pid);
                        kill(pid, SIGKILL);
                        o.cancelled = true;
                }
                int n = poll(&pfd, 1, WORKER_POLL_MS);
                if (n < 0 && errno != EINTR)
                        break;
                if (n <= 0)
                        continue;
                if (cap - len < 65536) {
                        if (cap >= WORKER_LINE_MAX) {
                                log_warn("supervisor: worker %s (pid %d): a line over %u bytes: killed", mode,
                                         (int) pid, WORKER_LINE_MAX);
                                kill(pid, SIGKILL);
                                break;
                        }
                        size_t ncap = cap ? cap * 2 : 65536;
                        char *nb = realloc(buf, ncap);
                        if (!nb) {
                                kill(pid, SIGKILL);
                                break;
                        }
                        buf = nb;
                        cap = ncap;
                }
                ssize_t got = read(out_r, buf + len, cap - len);
                if (got < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (got <= 0)
                        break;
                len += (size_t) got;
                char *start = buf, *nl;
                while ((nl = memchr(start, '\n', len - (size_t) (start - buf)))) {
                        worker_line(start, (size_t) (nl - start), &o, fn, ud, e);
                        start = nl + 1;
                }
                len -= (size_t) (start - buf);
                memmove(buf, start, len);
        }
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (o.cancelled && !o.result) {
                json_decref(o.result);
                return berr_setx(e, ESHUTDOWN, "%s cancelled: the daemon is stopping", mode);
        }
        if (o.error_seen) {
                json_decref(o.result);
                return -e->err;
        }
        if (o.result && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                *ret_result = o.result;
                return 0;
        }
        json_decref(o.result);
        if (WIFSIGNALED(status))
                return berr_setx(e, EIO, "worker %s (%s, pid %d) was killed by signal %d (%s)", mode,
                                 s->fetch_binary, (int) pid, WTERMSIG(status), strsignal(WTERMSIG(status)));
        return berr_setx(e, EIO, "worker %s (%s, pid %d) exited with status %d without a result", mode,
                         s->fetch_binary, (int) pid, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* Fails call with r / e; a worker cancelled by the stop is UNAVAILABLE. */
static void worker_fail(struct rpc_call *call, int r, const struct berr *e)
{
        if (r == -ESHUTDOWN)
                rpc_call_fail(call, RPC_UNAVAILABLE, "supervisor: %s", e->msg);
        else
                supervisor_fail(call, r, e);
}

/* A JSON array of the strings of a NULL-terminated vector (may be NULL). */
static json_t *json_strv(char *const *v)
{
        json_t *a = json_array();
        for (size_t i = 0; a && v && v[i]; i++)
                json_array_append_new(a, json_string(v[i]));
        return a;
}

/* ---------------------------------------------------------------- pulls */

struct pull_job {
        struct pull_job *next;
        char *key;                      /* ref, platform, unpack: what is fetched */
        char ref[IMAGE_REF_STRING_MAX]; /* normalised */
        char **job_ids;                 /* of every caller attached */
        size_t n_ids;
        unsigned users;                 /* callers attached (the runner too) */
        bool resolved;                  /* the "resolved" event went out */
        char config[CONTENT_DIGEST_MAX];  /* the config's digest, once resolved */
        bool done;
        int r;
        struct berr e;
        uint32_t blobs_fetched, layers_applied;
        struct supervisor *s;
};

struct supervisor_pulls {
        pthread_mutex_t lock;           /* jobs and everything in them */
        pthread_cond_t cond;            /* a job is done */
        struct pull_job *jobs;
};

int supervisor_images_init(struct supervisor *s, struct berr *e)
{
        struct supervisor_pulls *p = calloc(1, sizeof(*p));
        if (!p)
                return berr_set(e, ENOMEM, "pulls");
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->cond, NULL);
        s->pulls = p;
        if (!s->fetch_binary)
                return berr_setx(e, EINVAL, "no berth-fetch worker binary");
        if (strchr(s->fetch_binary, '/') && access(s->fetch_binary, X_OK) < 0)
                log_warn("supervisor: the worker \"%s\" cannot be run (%m): pulls, imports and exports will fail",
                         s->fetch_binary);
        log_debug("supervisor: worker binary \"%s\"", s->fetch_binary);
        return 0;
}

void supervisor_images_fini(struct supervisor *s)
{
        struct supervisor_pulls *p = s->pulls;
        if (!p)
                return;
        /* jobs still listed belong to threads the daemon gave up waiting
         * for: leave them (and the lock) alone */
        if (p->jobs)
                return;
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->cond);
        free(p);
        s->pulls = NULL;
}

static void job_free(struct pull_job *j)
{
        for (size_t i = 0; i < j->n_ids; i++)
                free(j->job_ids[i]);
        free(j->job_ids);
        free(j->key);
        free(j);
}

static int job_add_id(struct pull_job *j, const char *id)
{
        char **v = realloc(j->job_ids, (j->n_ids + 1) * sizeof(char *));
        if (!v)
                return -ENOMEM;
        j->job_ids = v;
        if (!(v[j->n_ids] = strdup(id)))
                return -ENOMEM;
        j->n_ids++;
        return 0;
}

/* Publishes one PullProgress per attached caller. Called with the lock held. */
static void job_publish(struct supervisor *s, struct pull_job *j, const char *digest, Berth__Supervisor__LayerStatus st,
                        uint64_t current, uint64_t total, const char *message)
{
        const char *kind = "";
        if (digest && *digest)
                kind = !strcmp(digest, j->config) ? "config" : "layer";
        Berth__Supervisor__Envelope env = BERTH__SUPERVISOR__ENVELOPE__INIT;
        Berth__Supervisor__PullProgress pp = BERTH__SUPERVISOR__PULL_PROGRESS__INIT;
        pp.ref = j->ref;
        pp.digest = (char *) (digest ? digest : "");
        pp.status = st;
        pp.current = current;
        pp.total = total;
        pp.message = (char *) (message ? message : "");
        pp.kind = (char *) kind;
        env.event_case = BERTH__SUPERVISOR__ENVELOPE__EVENT_PULL;
        env.pull = &pp;
        for (size_t i = 0; i < j->n_ids; i++) {
                pp.job_id = j->job_ids[i];
                supervisor_publish(s, "/images/pull", &env);
        }
}

static void job_event(struct supervisor *s, struct pull_job *j, const char *digest, Berth__Supervisor__LayerStatus st,
                      uint64_t current, uint64_t total, const char *message)
{
        pthread_mutex_lock(&s->pulls->lock);
        if (digest && !j->resolved) {
                j->resolved = true;
                job_publish(s, j, NULL, BERTH__SUPERVISOR__LAYER_STATUS__WAITING, 0, 0, "resolved");
        }
        job_publish(s, j, digest, st, current, total, message);
        pthread_mutex_unlock(&s->pulls->lock);
}

/* The worker's status names (image_pull_status_string), in LayerStatus order. */
static const char *const pull_status_names[] = {
        [BERTH__SUPERVISOR__LAYER_STATUS__WAITING] = "waiting",
        [BERTH__SUPERVISOR__LAYER_STATUS__DOWNLOADING] = "downloading",
        [BERTH__SUPERVISOR__LAYER_STATUS__VERIFYING] = "verifying",
        [BERTH__SUPERVISOR__LAYER_STATUS__DOWNLOADED] = "downloaded",
        [BERTH__SUPERVISOR__LAYER_STATUS__EXTRACTING] = "extracting",
        [BERTH__SUPERVISOR__LAYER_STATUS__DONE] = "done",
        [BERTH__SUPERVISOR__LAYER_STATUS__EXISTS] = "exists",
        [BERTH__SUPERVISOR__LAYER_STATUS__FAILED] = "failed",
};

/* A pull worker's events: "resolved" (the manifest is known: the config
 * is told apart from the layers in the events that follow) and "progress"
 * per blob. */
static void pull_worker_event(void *ud, const char *event, json_t *ev)
{
        struct pull_job *job = ud;
        struct supervisor *s = job->s;
        if (strcmp(event, "resolved") == 0) {
                const char *config = json_string_value(json_object_get(ev, "config"));
                pthread_mutex_lock(&s->pulls->lock);
                snprintf(job->config, sizeof(job->config), "%s", config ? config : "");
                if (!job->resolved) {
                        job->resolved = true;
                        job_publish(s, job, NULL, BERTH__SUPERVISOR__LAYER_STATUS__WAITING, 0, 0, "resolved");
                }
                pthread_mutex_unlock(&s->pulls->lock);
        } else if (strcmp(event, "progress") == 0) {
                const char *digest = json_string_value(json_object_get(ev, "digest"));
                const char *status = json_string_value(json_object_get(ev, "status"));
                json_int_t current = json_integer_value(json_object_get(ev, "current"));
                json_int_t total = json_integer_value(json_object_get(ev, "total"));
                size_t st = 0;
                while (st < ARRAY_SIZE(pull_status_names) && (!status || strcmp(status, pull_status_names[st]) != 0))
                        st++;
                if (!digest || st == ARRAY_SIZE(pull_status_names)) {
                        log_debug("supervisor: pull worker: progress without digest or known status (ignored)");
                        return;
                }
                job_event(s, job, digest, (Berth__Supervisor__LayerStatus) st, current > 0 ? (uint64_t) current : 0,
                          total > 0 ? (uint64_t) total : 0, NULL);
        }
}

/* Inline credentials of a PullRequest: {"username","password"},
 * {"identitytoken"} or {"registrytoken"} (Docker's X-Registry-Auth),
 * checked here and handed to the worker as they are. */
static int auth_from_json(const ProtobufCBinaryData *b, json_t **ret_j, struct berr *e)
{
        static const char *const keys[] = { "username", "password", "identitytoken", "registrytoken" };
        json_error_t je;
        if (b->len == 0)
                return 0;
        json_t *j = json_loadb((const char *) b->data, b->len, 0, &je);
        if (!json_is_object(j)) {
                json_decref(j);
                return berr_setx(e, EINVAL, "auth_json is not a JSON object");
        }
        *ret_j = j;
        for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
                const char *v = NULL;
                if (json_get_string(j, "auth", keys[i], &v, e) < 0)
                        return -e->err;
        }
        return 0;
}

/* The pull itself, with gc_lock held shared: a worker fetches (and
 * unpacks), the image is recorded here. */
static int pull_locked(struct supervisor *s, struct pull_job *job, const Berth__Supervisor__PullRequest *req,
                       const struct image_platform *plat, struct berr *e)
{
        _cleanup_json_ json_t *auth = NULL, *jobj = NULL, *res = NULL;
        struct image_record old = { 0 };
        char platbuf[128];
        int r = auth_from_json(&req->auth_json, &auth, e);
        if (r < 0)
                return r;
        const char *auth_config = *req->auth_config ? req->auth_config : s->auth_config;
        jobj = json_pack("{s:s, s:s, s:b, s:i, s:s?, s:O?, s:o, s:o}", "ref", job->ref, "platform",
                         image_platform_string(plat, platbuf, sizeof(platbuf)), "unpack", !req->no_unpack,
                         "parallel", s->max_downloads ? (int) s->max_downloads : 3, "auth_config", auth_config,
                         "auth", auth, "insecure", json_strv(s->insecure), "mirrors", json_strv(s->mirrors));
        if (!jobj)
                return berr_set(e, ENOMEM, "pull job");
        r = worker_run(s, "pull", jobj, pull_worker_event, job, &res, e);
        if (r < 0)
                return r;

        const char *index = json_string_value(json_object_get(res, "index_digest"));
        const char *index_type = json_string_value(json_object_get(res, "index_media_type"));
        const char *manifest = json_string_value(json_object_get(res, "manifest_digest"));
        const char *manifest_type = json_string_value(json_object_get(res, "manifest_media_type"));
        const char *config = json_string_value(json_object_get(res, "config_digest"));
        bool is_index = index && *index;
        const char *digest = is_index ? index : manifest;
        const char *media_type = is_index ? index_type : manifest_type;
        if (!digest || !*digest || !media_type || !config)
                return berr_setx(e, EIO, "pull worker: a result without the manifest, its media type or config");
        job->blobs_fetched = (uint32_t) json_integer_value(json_object_get(res, "fetched"));
        job->layers_applied = (uint32_t) json_integer_value(json_object_get(res, "applied"));
        bool existed = image_store_get(s->is, job->ref, &old, NULL) >= 0;
        r = image_store_put(s->is, job->ref, media_type, digest, config, e);
        if (r >= 0 && !existed)
                publish_image(s, "/images/create", job->ref, digest);
        else if (r >= 0 && strcmp(old.digest, digest) != 0)
                publish_image(s, "/images/update", job->ref, digest);
        image_record_done(&old);
        return r;
}

/* Runs job (its runner is the first caller) and wakes the callers attached. */
static void job_run(struct supervisor *s, struct pull_job *job, const Berth__Supervisor__PullRequest *req,
                    const struct image_platform *plat)
{
        struct berr e = { 0 };
        int r;

        log_info("pull \"%s\" (job %s) started", job->ref, job->job_ids[0]);
        pthread_rwlock_rdlock(&s->gc_lock);
        r = pull_locked(s, job, req, plat, &e);
        pthread_rwlock_unlock(&s->gc_lock);
        if (r < 0)
                log_info("pull \"%s\" failed: %s", job->ref, e.msg);
        else
                log_info("pull \"%s\" done: %" PRIu32 " blob(s) fetched, %" PRIu32 " layer(s) applied", job->ref,
                         job->blobs_fetched, job->layers_applied);

        pthread_mutex_lock(&s->pulls->lock);
        job->r = r;
        job->e = e;
        if (r < 0) {
                char msg[BERR_MSG_MAX + 16];
                snprintf(msg, sizeof(msg), "supervisor: %s", e.msg[0] ? e.msg : strerror(-r));
                job_publish(s, job, NULL, BERTH__SUPERVISOR__LAYER_STATUS__FAILED, 0, 0, msg);
        } else {
                job_publish(s, job, NULL, BERTH__SUPERVISOR__LAYER_STATUS__DONE, 0, 0, "done");
        }
        job->done = true;
        for (struct pull_job **pp = &s->pulls->jobs; *pp; pp = &(*pp)->next)
                if (*pp == job) {
                        *pp = job->next;
                        break;
                }
        pthread_cond_broadcast(&s->pulls->cond);
        pthread_mutex_unlock(&s->pulls->lock);
}

static void pull_reply(struct supervisor *s, struct rpc_call *call, const char *name, const char *job_id,
                       const struct image_platform *plat, uint32_t fetched, uint32_t applied)
{
        _cleanup_(arena_free) struct arena a = { 0 };
        struct image_record rec = { 0 };
        struct berr e = { 0 };
        int r = image_store_get(s->is, name, &rec, &e);
        if (r < 0) {
                supervisor_fail(call, r, &e);
                return;
        }
        Berth__Supervisor__PullResponse resp = BERTH__SUPERVISOR__PULL_RESPONSE__INIT;
        resp.image = image_msg(s, &a, &rec, plat);
        resp.job_id = (char *) job_id;
        resp.blobs_fetched = fetched;
        resp.layers_applied = applied;
        image_record_done(&rec);
        if (!resp.image)
                rpc_call_fail(call, RPC_INTERNAL, "supervisor: out of memory");
        else
                rpc_call_reply(call, &resp.base);
}

static void run_pull(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Supervisor__PullRequest *req = (const void *) request;
        struct supervisor *s = userdata;
        struct supervisor_pulls *p = s->pulls;
        struct image_ref ref;
        struct image_platform plat;
        struct berr e = { 0 };
        char platbuf[128], idbuf[40];
        _cleanup_free_ char *key = NULL;
        struct pull_job *job;
        const char *job_id = req->job_id;

        if (image_ref_parse(req->ref, &ref, &e) < 0 || parse_platform(req->platform, &plat, &e) < 0) {
                supervisor_fail(call, -EINVAL, &e);
                return;
        }
        if (!*job_id) {
                uint64_t rnd = 0;
                if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                        rnd = time_monotonic_ns();
                snprintf(idbuf, sizeof(idbuf), "pull-%016" PRIx64, rnd);
                job_id = idbuf;
        }
        char name[IMAGE_REF_STRING_MAX];
        image_ref_string(&ref, name, sizeof(name));
        if (asprintf(&key, "%s %s %s", name, image_platform_string(&plat, platbuf, sizeof(platbuf)),
                     req->no_unpack ? "fetch" : "unpack") < 0) {
                rpc_call_fail(call, RPC_INTERNAL, "supervisor: out of memory");
                return;
        }

        pthread_mutex_lock(&p->lock);
        for (job = p->jobs; job; job = job->next)
                if (strcmp(job->key, key) == 0)
                        break;
        if (job) {
                /* the same pull runs: wait for its result */
                if (job_add_id(job, job_id) < 0) {
                        pthread_mutex_unlock(&p->lock);
                        rpc_call_fail(call, RPC_INTERNAL, "supervisor: out of memory");
                        return;
                }
                job->users++;
                log_info("pull \"%s\" (job %s) joins job %s", name, job_id, job->job_ids[0]);
                while (!job->done)
                        pthread_cond_wait(&p->cond, &p->lock);
        } else {
                job = calloc(1, sizeof(*job));
                if (!job || job_add_id(job, job_id) < 0) {
                        pthread_mutex_unlock(&p->lock);
                        if (job)
                                job_free(job);
                        rpc_call_fail(call, RPC_INTERNAL, "supervisor: out of memory");
                        return;
                }
                job->key = TAKE_PTR(key);
                snprintf(job->ref, sizeof(job->ref), "%s", name);
                job->s = s;
                job->users = 1;
                job->next = p->jobs;
                p->jobs = job;
                pthread_mutex_unlock(&p->lock);
                job_run(s, job, req, &plat);
                pthread_mutex_lock(&p->lock);
        }
        int r = job->r;
        struct berr je = job->e;
        uint32_t fetched = job->blobs_fetched, applied = job->layers_applied;
        if (--job->users == 0)
                job_free(job);
        pthread_mutex_unlock(&p->lock);

        if (r < 0)
                worker_fail(call, r, &je);
        else
                pull_reply(s, call, name, job_id, &plat, fetched, applied);
}

/* ---------------------------------------------------------------- images */

static void run_list_images(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Supervisor__ListImagesRequest *req = (const void *) request;
        struct supervisor *s = userdata;
        _cleanup_(arena_free) struct arena a = { 0 };
        struct image_record *v = NULL;
        struct image_platform plat;
        struct berr e = { 0 };
        size_t n = 0;
        int r = image_store_list(s->is, &v, &n, &e);
        if (r < 0) {
                supervisor_fail(call, r, &e);
                return;
        }
        image_platform_default(&plat);
        Berth__Supervisor__ListImagesResponse resp = BERTH__SUPERVISOR__LIST_IMAGES_RESPONSE__INIT;
        resp.images = arena_alloc(&a, (n + 1) * sizeof(*resp.images));
        for (size_t i = 0; resp.images && i < n; i++) {
                bool want = req->n_names == 0;
                for (size_t k = 0; !want && k < req->n_names; k++)
                        want = strcmp(req->names[k], v[i].name) == 0;
                if (!want)
                        continue;
                if (!(resp.images[resp.n_images] = image_msg(s, &a, &v[i], &plat))) {
                        resp.images = NULL;
                        break;
                }
                resp.n_images++;
        }
        image_records_free(v, n);
        if (!resp.images)
                rpc_call_fail(call, RPC_INTERNAL, "supervisor: out of memory");
        else
                rpc_call_reply(call, &resp.base);
}

static void run_get_image(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Supervisor__GetImageRequest *req = (const void *) request;
        struct supervisor *s = userdata;
        _cleanup_(arena_free) struct arena a = { 0 };
        _cleanup_json_ json_t *insp = NULL;
        _cleanup_free_ char *insp_text = NULL, *config = NULL;
        struct image_record rec = { 0 };
        struct image_platform plat;
        struct berr e = { 0 };
        char name[IMAGE_REF_STRING_MAX];
        size_t config_len = 0;
        int r = parse_name(req->name, name, &e);
        if (r >= 0)
                r = parse_platform(req->platform, &plat, &e);
        if (r >= 0)
                r = image_store_get(s->is, name, &rec, &e);
        if (r < 0) {
                supervisor_fail(call, r, &e);
                return;
        }
        Berth__Supervisor__GetImageResponse resp = BERTH__SUPERVISOR__GET_IMAGE_RESPONSE__INIT;
        resp.image = image_msg(s, &a, &rec, &plat);
        image_record_done(&rec);
        if (!resp.image) {
                rpc_call_fail(call, RPC_INTERNAL, "supervisor: out of memory");
                return;
        }
        r = image_store_inspect(s->is, name, &plat, &insp, &e);
        if (r >= 0 && !(insp_text = json_dumps(insp, JSON_COMPACT)))
                r = berr_set(&e, ENOMEM, "inspect");
        if (r >= 0 && *resp.image->config_digest)
                r = content_read(s->cs, resp.image->config_digest, CONFIG_MAX, &config, &config_len, &e);
        if (r < 0) {
                supervisor_fail(call, r, &e);
                return;
        }
        resp.inspect_json.data = (uint8_t *) insp_text;
        resp.inspect_json.len = strlen(insp_text);
        resp.config_json.data = (uint8_t *) config;
        resp.config_json.len = config_len;
        rpc_call_reply(call, &resp.base);
}

static void run_tag_image(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Supervisor__TagImageRequest *req = (const void *) request;
        struct supervisor *s = userdata;
        _cleanup_(arena_free) struct arena a = { 0 };
        struct image_record rec = { 0 }, old = { 0 };
        struct image_platform plat;
        struct berr e = { 0 };
        char src[IMAGE_REF_STRING_MAX], dst[IMAGE_REF_STRING_MAX];
        int r = parse_name(req->source, src, &e);
        if (r >= 0)
                r = parse_name(req->target, dst, &e);
        bool existed = r >= 0 && image_store_get(s->is, dst, &old, NULL) >= 0;
        if (r >= 0)
                r = image_store_tag(s->is, src, dst, &e);
        if (r >= 0)
                r = image_store_get(s->is, dst, &rec, &e);
        if (r < 0) {
                image_record_done(&old);
                supervisor_fail(call, r, &e);
                return;
        }
        if (!existed)
                publish_image(s, "/images/create", dst, rec.digest);
        else if (strcmp(old.digest, rec.digest) != 0)
                publish_image(s, "/images/update", dst, rec.digest);
        image_record_done(&old);
        image_platform_default(&plat);
        Berth__Supervisor__TagImageResponse resp = BERTH__SUPERVISOR__TAG_IMAGE_RESPONSE__INIT;
        resp.image = image_msg(s, &a, &rec, &plat);
        image_record_done(&rec);
        if (!resp.image)
                rpc_call_fail(call, RPC_INTERNAL, "supervisor: out of memory");
        else
                rpc_call_reply(call, &resp.base);
}

static bool strv_has(char **v, const char *s)
{
        for (; v && *v; v++)
                if (strcmp(*v, s) == 0)
                        return true;
        return false;
}

/* Removes the committed snapshots that nothing needs any more: an image
 * keeps the layer chain of every config it reaches that is in the store,
 * a container's active snapshot (or a view) keeps its parents. Children
 * go before their parents. Call with gc_lock held for writing (no pull is
 * unpacking meanwhile). */
static int snapshot_gc(struct supervisor *s, struct berr *e)
{
        _cleanup_strv_free_ char **configs = NULL;
        struct snapshot_info *v = NULL;
        size_t n = 0;
        int r = image_store_configs(s->is, &configs, e);
        if (r < 0)
                return r;
        r = snapshot_overlay_list(s->sn, &v, &n, e);
        if (r < 0)
                return r;
        bool *keep = calloc(n + 1, sizeof(bool)), *gone = calloc(n + 1, sizeof(bool));
        if (!keep || !gone)
                r = berr_set(e, ENOMEM, "snapshot gc");
        for (size_t i = 0; r >= 0 && configs[i]; i++) {
                _cleanup_strv_free_ char **chain = NULL;
                struct berr ce = { 0 };
                if (config_chain_ids(s, configs[i], &chain, &ce) < 0)
                        continue; /* not an image config after all: nothing to keep for it */
                for (size_t j = 0; j < n; j++)
                        keep[j] = keep[j] || strv_has(chain, v[j].key);
        }
        /* what an active snapshot or a view stands on, up its parents */
        for (size_t i = 0; r >= 0 && i < n; i++) {
                if (v[i].kind == SNAPSHOT_COMMITTED)
                        continue;
                keep[i] = true;
                const char *p = v[i].parent;
                for (size_t hops = 0; p && hops < n; hops++) {
                        size_t j = 0;
                        while (j < n && strcmp(v[j].key, p) != 0)
                                j++;
                        if (j == n)
                                break;
                        keep[j] = true;
                        p = v[j].parent;
                }
        }
        /* leaves first: a snapshot goes once no remaining one names it as parent */
        for (bool progress = true; r >= 0 && progress;) {
                progress = false;
                for (size_t i = 0; r >= 0 && i < n; i++) {
                        if (keep[i] || gone[i])
                                continue;
                        bool parent = false;
                        for (size_t j = 0; j < n && !parent; j++)
                                parent = !gone[j] && v[j].parent && strcmp(v[j].parent, v[i].key) == 0;
                        if (parent)
                                continue;
                        r = snapshot_overlay_remove(s->sn, v[i].key, e);
                        if (r == -ENOENT)
                                r = 0;
                        gone[i] = progress = true;
                        if (r >= 0)
                                log_debug("supervisor: gc: snapshot \"%s\" removed", v[i].key);
                }
        }
        free(keep);
        free(gone);
        snapshot_infos_free(v, n);
        return r;
}

static int gc_locked(struct supervisor *s, char ***ret_removed, struct berr *e)
{
        pthread_rwlock_wrlock(&s->gc_lock);
        int r = image_store_gc(s->is, ret_removed, e);
        if (r >= 0)
                r = snapshot_gc(s, e);
        pthread_rwlock_unlock(&s->gc_lock);
        return r;
}

static void run_delete_image(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Supervisor__DeleteImageRequest *req = (const void *) request;
        struct supervisor *s = userdata;
        struct image_record rec = { 0 };
        struct berr e = { 0 };
        char name[IMAGE_REF_STRING_MAX];
        /* Containers keep their own snapshot (an active one on the image's
         * chain), so removing the name does not pull anything from under
         * them; a check that refuses while a container names the image
         * comes with the containers store. */
        int r = parse_name(req->name, name, &e);
        if (r >= 0)
                r = image_store_get(s->is, name, &rec, &e);
        if (r >= 0)
                r = image_store_remove(s->is, name, &e);
        if (r >= 0) {
                publish_image(s, "/images/delete", name, rec.digest);
                if (req->sync_gc)
                        r = gc_locked(s, NULL, &e);
        }
        image_record_done(&rec);
        if (r < 0) {
                supervisor_fail(call, r, &e);
                return;
        }
        Berth__Supervisor__DeleteImageResponse resp = BERTH__SUPERVISOR__DELETE_IMAGE_RESPONSE__INIT;
        rpc_call_reply(call, &resp.base);
}

static void run_import_images(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Supervisor__ImportImagesRequest *req = (const void *) request;
        struct supervisor *s = userdata;
        _cleanup_(arena_free) struct arena a = { 0 };
        _cleanup_strv_free_ char **names = NULL;
        struct image_platform plat;
        struct berr e = { 0 };
        size_t n = 0;
        int r = parse_platform(req->platform, &plat, &e);
        if (r >= 0 && (!*req->path || req->path[0] != '/'))
                r = berr_setx(&e, EINVAL, "import: an absolute path is needed, not \"%s\"", req->path);
        if (r >= 0) {
                char platbuf[128];
                _cleanup_json_ json_t *job = json_pack("{s:s, s:s, s:b}", "path", req->path, "platform",
                                                       image_platform_string(&plat, platbuf, sizeof(platbuf)),
                                                       "unpack", !req->no_unpack);
                _cleanup_json_ json_t *res = NULL;
                /* the worker stores blobs before it records the names */
                pthread_rwlock_rdlock(&s->gc_lock);
                r = job ? worker_run(s, "import", job, NULL, NULL, &res, &e) : berr_set(&e, ENOMEM, "import job");
                pthread_rwlock_unlock(&s->gc_lock);
                json_t *got = json_object_get(res, "names");
                if (r >= 0 && !(names = calloc(json_array_size(got) + 1, sizeof(char *))))
                        r = berr_set(&e, ENOMEM, "import");
                for (size_t i = 0; r >= 0 && i < json_array_size(got); i++) {
                        const char *nm = json_string_value(json_array_get(got, i));
                        if (nm && !(names[n++] = strdup(nm)))
                                r = berr_set(&e, ENOMEM, "import");
                }
                n = 0;
        }
        if (r < 0) {
                worker_fail(call, r, &e);
                return;
        }
        while (names[n])
                n++;
        Berth__Supervisor__ImportImagesResponse resp = BERTH__SUPERVISOR__IMPORT_IMAGES_RESPONSE__INIT;
        resp.images = arena_alloc(&a, (n + 1) * sizeof(*resp.images));
        for (size_t i = 0; resp.images && i < n; i++) {
                struct image_record rec = { 0 };
                if (image_store_get(s->is, names[i], &rec, NULL) < 0)
                        continue;
                publish_image(s, "/images/create", rec.name, rec.digest);
                Berth__Supervisor__Image *im = image_msg(s, &a, &rec, &plat);
                image_record_done(&rec);
                if (im)
                        resp.images[resp.n_images++] = im;
        }
        rpc_call_reply(call, &resp.base);
}

static void run_export_images(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Supervisor__ExportImagesRequest *req = (const void *) request;
        struct supervisor *s = userdata;
        struct image_platform plat;
        struct berr e = { 0 };
        char platbuf[128];
        _cleanup_json_ json_t *names = json_array(), *job = NULL, *res = NULL;
        int r = names ? 0 : berr_set(&e, ENOMEM, "export");
        if (r >= 0 && req->n_names == 0)
                r = berr_setx(&e, EINVAL, "export: no image names");
        if (r >= 0 && (!*req->path || req->path[0] != '/'))
                r = berr_setx(&e, EINVAL, "export: an absolute path is needed, not \"%s\"", req->path);
        if (r >= 0 && *req->format && strcmp(req->format, "docker") != 0 && strcmp(req->format, "oci") != 0)
                r = berr_setx(&e, EINVAL, "archive format \"%s\": expected \"docker\" or \"oci\"", req->format);
        if (r >= 0)
                r = parse_platform(req->platform, &plat, &e);
        for (size_t i = 0; r >= 0 && i < req->n_names; i++) {
                char nb[IMAGE_REF_STRING_MAX];
                struct image_record rec = { 0 };
                r = parse_name(req->names[i], nb, &e);
                if (r >= 0)
                        r = image_store_get(s->is, nb, &rec, &e);
                image_record_done(&rec);
                if (r >= 0 && json_array_append_new(names, json_string(nb)) < 0)
                        r = berr_set(&e, ENOMEM, "export");
        }
        if (r >= 0 && !(job = json_pack("{s:O, s:s, s:s, s:s}", "names", names, "platform",
                                        image_platform_string(&plat, platbuf, sizeof(platbuf)), "format",
                                        *req->format ? req->format : "docker", "path", req->path)))
                r = berr_set(&e, ENOMEM, "export job");
        if (r >= 0)
                r = worker_run(s, "export", job, NULL, NULL, &res, &e);
        if (r < 0) {
                worker_fail(call, r, &e);
                return;
        }
        Berth__Supervisor__ExportImagesResponse resp = BERTH__SUPERVISOR__EXPORT_IMAGES_RESPONSE__INIT;
        rpc_call_reply(call, &resp.base);
}

/* docker login: a worker asks the registry's /v2/ with the credentials
 * (the daemon's insecure registries apply). Nothing is stored. */
static void run_check_auth(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Supervisor__CheckAuthRequest *req = (const void *) request;
        struct supervisor *s = userdata;
        struct berr e = { 0 };
        _cleanup_json_ json_t *job = NULL, *res = NULL;
        int r = 0;

        json_t *auth = json_pack("{s:s, s:s, s:s}", "username", req->username, "password", req->password,
                                 "identitytoken", req->identity_token);
        if (auth)
                job = json_pack("{s:s, s:o, s:o}", "registry", req->registry, "auth", auth, "insecure",
                                json_strv(s->insecure));
        if (!job)
                r = berr_set(&e, ENOMEM, "auth job");
        if (r >= 0)
                r = worker_run(s, "auth", job, NULL, NULL, &res, &e);
        if (r < 0) {
                log_info("supervisor: login to \"%s\" as \"%s\" failed: %s", *req->registry ? req->registry : "docker.io",
                         req->username, e.msg);
                /* rpc.proto has no PERMISSION_DENIED: refused credentials
                 * are the caller's invalid argument */
                if (r == -EACCES)
                        rpc_call_fail(call, RPC_INVALID_ARGUMENT, "supervisor: %s", e.msg);
                else
                        worker_fail(call, r, &e);
                return;
        }
        log_info("supervisor: login to \"%s\" as \"%s\" succeeded", *req->registry ? req->registry : "docker.io",
                 req->username);
        Berth__Supervisor__CheckAuthResponse resp = BERTH__SUPERVISOR__CHECK_AUTH_RESPONSE__INIT;
        rpc_call_reply(call, &resp.base);
}

/* ---------------------------------------------------------------- content */

static Berth__Supervisor__ContentInfo *content_msg(struct arena *a, const struct content_info *ci)
{
        char ts[64];
        Berth__Supervisor__ContentInfo *m = arena_alloc(a, sizeof(*m));
        if (!m)
                return NULL;
        berth__supervisor__content_info__init(m);
        m->digest = arena_strdup(a, ci->digest);
        m->size = ci->size;
        m->created = arena_strdup(a, rfc3339(&ci->created, ts, sizeof(ts)));
        return m;
}

static void run_list_content(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        struct supervisor *s = userdata;
        _cleanup_(arena_free) struct arena a = { 0 };
        _cleanup_free_ struct content_info *v = NULL;
        struct berr e = { 0 };
        size_t n = 0;
        int r = content_list(s->cs, &v, &n, &e);
        if (r < 0) {
                supervisor_fail(call, r, &e);
                return;
        }
        Berth__Supervisor__ListContentResponse resp = BERTH__SUPERVISOR__LIST_CONTENT_RESPONSE__INIT;
        resp.blobs = arena_alloc(&a, (n + 1) * sizeof(*resp.blobs));
        for (size_t i = 0; resp.blobs && i < n; i++)
                if ((resp.blobs[resp.n_blobs] = content_msg(&a, &v[i])))
                        resp.n_blobs++;
        rpc_call_reply(call, &resp.base);
}

static void run_info_content(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Supervisor__InfoContentRequest *req = (const void *) request;
        struct supervisor *s = userdata;
        _cleanup_(arena_free) struct arena a = { 0 };
        struct content_info ci;
        struct berr e = { 0 };
        int r = content_digest_check(req->digest, &e);
        if (r >= 0)
                r = content_info(s->cs, req->digest, &ci, &e);
        if (r < 0) {
                supervisor_fail(call, r, &e);
                return;
        }
        Berth__Supervisor__InfoContentResponse resp = BERTH__SUPERVISOR__INFO_CONTENT_RESPONSE__INIT;
        resp.info = content_msg(&a, &ci);
        rpc_call_reply(call, &resp.base);
}

static void run_delete_content(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Supervisor__DeleteContentRequest *req = (const void *) request;
        struct supervisor *s = userdata;
        struct berr e = { 0 };
        int r = content_digest_check(req->digest, &e);
        if (r >= 0)
                r = content_delete(s->cs, req->digest, &e);
        if (r < 0) {
                supervisor_fail(call, r, &e);
                return;
        }
        Berth__Supervisor__DeleteContentResponse resp = BERTH__SUPERVISOR__DELETE_CONTENT_RESPONSE__INIT;
        rpc_call_reply(call, &resp.base);
}

static void run_gc(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        struct supervisor *s = userdata;
        _cleanup_strv_free_ char **removed = NULL;
        struct berr e = { 0 };
        int r = gc_locked(s, &removed, &e);
        if (r < 0) {
                supervisor_fail(call, r, &e);
                return;
        }
        Berth__Supervisor__GCResponse resp = BERTH__SUPERVISOR__GCRESPONSE__INIT;
        while (removed && removed[resp.n_removed])
                resp.n_removed++;
        resp.removed = removed;
        rpc_call_reply(call, &resp.base);
}

/* ---------------------------------------------------------------- snapshots */

static void run_list_snapshots(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Supervisor__ListSnapshotsRequest *req = (const void *) request;
        struct supervisor *s = userdata;
        _cleanup_(arena_free) struct arena a = { 0 };
        struct snapshot_info *v = NULL;
        struct berr e = { 0 };
        size_t n = 0;
        int r = snapshot_overlay_list(s->sn, &v, &n, &e);
        if (r < 0) {
                supervisor_fail(call, r, &e);
                return;
        }
        Berth__Supervisor__ListSnapshotsResponse resp = BERTH__SUPERVISOR__LIST_SNAPSHOTS_RESPONSE__INIT;
        resp.snapshots = arena_alloc(&a, (n + 1) * sizeof(*resp.snapshots));
        for (size_t i = 0; resp.snapshots && i < n; i++) {
                Berth__Supervisor__Snapshot *m = arena_alloc(&a, sizeof(*m));
                if (!m)
                        break;
                berth__supervisor__snapshot__init(m);
                m->key = arena_strdup(&a, v[i].key);
                m->parent = arena_strdup(&a, v[i].parent);
                m->kind = (char *) snapshot_kind_string(v[i].kind);
                m->created = arena_strdup(&a, v[i].created);
                if (req->usage && snapshot_overlay_usage(s->sn, v[i].key, &m->size, &m->inodes, &e) < 0)
                        log_debug("usage of snapshot \"%s\": %s", v[i].key, e.msg);
                resp.snapshots[resp.n_snapshots++] = m;
        }
        snapshot_infos_free(v, n);
        rpc_call_reply(call, &resp.base);
}

static void run_remove_snapshot(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Supervisor__RemoveSnapshotRequest *req = (const void *) request;
        struct supervisor *s = userdata;
        struct berr e = { 0 };
        int r = *req->key ? snapshot_overlay_remove(s->sn, req->key, &e)
                          : berr_setx(&e, EINVAL, "a snapshot key is needed");
        if (r < 0) {
                supervisor_fail(call, r, &e);
                return;
        }
        Berth__Supervisor__RemoveSnapshotResponse resp = BERTH__SUPERVISOR__REMOVE_SNAPSHOT_RESPONSE__INIT;
        rpc_call_reply(call, &resp.base);
}

/* The mounts of a snapshot (the engine mounts a stopped container's rootfs
 * with them for cp, export and diff) and its parent. */
static void run_mounts(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        const Berth__Supervisor__MountsRequest *req = (const void *) request;
        struct supervisor *s = userdata;
        struct snapshot_mount m = { 0 };
        struct snapshot_info info = { 0 };
        struct berr e = { 0 };
        int r = *req->key ? snapshot_overlay_stat(s->sn, req->key, &info, &e)
                          : berr_setx(&e, EINVAL, "a snapshot key is needed");
        if (r >= 0)
                r = snapshot_overlay_mounts(s->sn, req->key, &m, &e);
        if (r < 0) {
                snapshot_info_done(&info);
                supervisor_fail(call, r, &e);
                return;
        }
        Berth__Supervisor__Mount pm = BERTH__SUPERVISOR__MOUNT__INIT;
        pm.type = m.type;
        pm.source = m.source ? m.source : (char *) "";
        pm.options = m.options ? m.options : (char *) "";
        Berth__Supervisor__Mount *pms[] = { &pm };
        Berth__Supervisor__MountsResponse resp = BERTH__SUPERVISOR__MOUNTS_RESPONSE__INIT;
        resp.mounts = pms;
        resp.n_mounts = 1;
        resp.parent = info.parent ? info.parent : (char *) "";
        rpc_call_reply(call, &resp.base);
        snapshot_mount_done(&m);
        snapshot_info_done(&info);
}

/* ---------------------------------------------------------------- the table */

/* Each method's nng-thread handler only hands the call to a thread: the
 * handler functions differ by the function they defer, nothing else. */
#define DEFERRED(name)                                                                                         \
        static void h_##name(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)         \
        {                                                                                                      \
                supervisor_defer(call, request, userdata, run_##name);                                         \
        }

DEFERRED(pull)
DEFERRED(list_images)
DEFERRED(get_image)
DEFERRED(tag_image)
DEFERRED(delete_image)
DEFERRED(import_images)
DEFERRED(export_images)
DEFERRED(check_auth)
DEFERRED(list_content)
DEFERRED(info_content)
DEFERRED(delete_content)
DEFERRED(gc)
DEFERRED(list_snapshots)
DEFERRED(remove_snapshot)
DEFERRED(mounts)

#define METHOD(name, lower, fn)                                                                                \
        {                                                                                                      \
                name, &berth__supervisor__##lower##_request__descriptor,                                     \
                        &berth__supervisor__##lower##_response__descriptor, fn                                 \
        }

const struct rpc_method supervisor_images_methods[] = {
        METHOD("images.Pull", pull, h_pull),
        METHOD("images.ListImages", list_images, h_list_images),
        METHOD("images.GetImage", get_image, h_get_image),
        METHOD("images.TagImage", tag_image, h_tag_image),
        METHOD("images.DeleteImage", delete_image, h_delete_image),
        METHOD("images.ImportImages", import_images, h_import_images),
        METHOD("images.ExportImages", export_images, h_export_images),
        METHOD("images.CheckAuth", check_auth, h_check_auth),
        METHOD("content.ListContent", list_content, h_list_content),
        METHOD("content.InfoContent", info_content, h_info_content),
        METHOD("content.DeleteContent", delete_content, h_delete_content),
        { "content.GC", &berth__supervisor__gcrequest__descriptor, &berth__supervisor__gcresponse__descriptor, h_gc },
        METHOD("snapshots.ListSnapshots", list_snapshots, h_list_snapshots),
        METHOD("snapshots.RemoveSnapshot", remove_snapshot, h_remove_snapshot),
        METHOD("snapshots.Mounts", mounts, h_mounts),
};
const size_t supervisor_images_n_methods = ARRAY_SIZE(supervisor_images_methods);

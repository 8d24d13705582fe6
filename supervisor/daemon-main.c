/* berth-supervisor: the daemon. Builds struct supervisor (the stores
 * under <root>/supervisor), wires the services in a fixed order, serves
 * them on one nng REP socket and publishes events on a PUB socket, both
 * under the exec root. SIGTERM / SIGINT stop it cleanly: no new calls,
 * the running ones get a few seconds, the services are finished, the
 * sockets and the pid file removed. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "config.h"
#include "daemon.h"
#include "fs-util.h"
#include "log.h"
#include "rpc-client.h"

#define DEFAULT_ROOT "/var/lib/berth"
#define DEFAULT_EXEC_ROOT "/run/berth"
#define RPC_MAX_MESSAGE (16u << 20)
/* How long a stop waits for calls in progress (pulls, imports) */
#define STOP_GRACE_MS 5000

struct options {
        const char *root, *exec_root, *address, *events_address, *pid_file, *log_file;
        const char *shim, *runtime, *auth_config, *fetch;
        char **insecure;
        size_t n_insecure;
        char **mirrors;
        size_t n_mirrors;
        unsigned max_downloads;
        enum snapshot_mode snapshotter;
        enum log_level level;
        bool level_set;
        const char *config_file;
};

static void usage(FILE *f)
{
        fprintf(f, "Usage: berth-supervisor [options]\n"
                   "\n"
                   "  --root DIR                 data root (default " DEFAULT_ROOT "); state in DIR/supervisor\n"
                   "  --exec-root DIR            sockets, pid file, bundles (default " DEFAULT_EXEC_ROOT ")\n"
                   "  --address URL              RPC socket (default ipc://<exec-root>/supervisor.sock)\n"
                   "  --events-address URL       events socket (default ipc://<exec-root>/supervisor-events.sock)\n"
                   "  --pid-file FILE            (default <exec-root>/supervisor.pid)\n"
                   "  --shim BIN                 berth-shim (default: beside this binary, else on PATH)\n"
                   "  --runtime BIN              default OCI runtime (default ocirun)\n"
                   "  --auth-config FILE         Docker config.json with registry credentials\n"
                   "  --insecure-registry HOST   plain http for HOST[:PORT] (repeatable)\n"
                   "  --registry-mirror URL      a mirror for docker.io, http[s]://HOST[:PORT] (repeatable, tried in order)\n"
                   "  --max-concurrent-downloads N  blobs downloaded at once per pull (default 3)\n"
                   "  --snapshotter MODE         auto (default: $BERTH_SNAPSHOTTER, else the root's mode, else a\n"
                   "                             probe of overlayfs), overlay or copy\n"
                   "  --fetch BIN                berth-fetch, the worker of pulls, imports and exports\n"
                   "                             (default: beside this binary, else on PATH)\n"
                   "  --log-level LEVEL          error, warn, info (default), debug\n"
                   "  --config-file FILE         the configuration file (default /etc/berth/engine.json;\n"
                   "                             options override its keys; see docs/configuration.md)\n"
                   "  --log-file FILE            log there too (JSON lines)\n"
                   "  --version, --help\n");
}

static int parse_args(int argc, char **argv, struct options *o)
{
        static const struct option opts[] = {
                { "root", required_argument, NULL, 'r' },
                { "exec-root", required_argument, NULL, 'x' },
                { "address", required_argument, NULL, 'a' },
                { "events-address", required_argument, NULL, 'E' },
                { "pid-file", required_argument, NULL, 'p' },
                { "shim", required_argument, NULL, 's' },
                { "runtime", required_argument, NULL, 'R' },
                { "auth-config", required_argument, NULL, 'A' },
                { "insecure-registry", required_argument, NULL, 'i' },
                { "registry-mirror", required_argument, NULL, 'm' },
                { "max-concurrent-downloads", required_argument, NULL, 'j' },
                { "fetch", required_argument, NULL, 'f' },
                { "snapshotter", required_argument, NULL, 'S' },
                { "log-level", required_argument, NULL, 'l' },
                { "log-file", required_argument, NULL, 'L' },
                { "config-file", required_argument, NULL, 'C' },
                { "version", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        o->runtime = "ocirun";
        o->level = LOG_LEVEL_INFO;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'r':
                        o->root = optarg;
                        break;
                case 'x':
                        o->exec_root = optarg;
                        break;
                case 'a':
                        o->address = optarg;
                        break;
                case 'E':
                        o->events_address = optarg;
                        break;
                case 'p':
                        o->pid_file = optarg;
                        break;
                case 's':
                        o->shim = optarg;
                        break;
                case 'R':
                        o->runtime = optarg;
                        break;
                case 'A':
                        o->auth_config = optarg;
                        break;
                case 'i': {
                        char **v = realloc(o->insecure, (o->n_insecure + 2) * sizeof(char *));
                        if (!v)
                                return -ENOMEM;
                        o->insecure = v;
                        v[o->n_insecure++] = optarg;
                        v[o->n_insecure] = NULL;
                        break;
                }
                case 'm': {
                        if (strncmp(optarg, "http://", 7) != 0 && strncmp(optarg, "https://", 8) != 0) {
                                log_error("--registry-mirror \"%s\": a URL http[s]://HOST[:PORT] is needed", optarg);
                                return -EINVAL;
                        }
                        char **v = realloc(o->mirrors, (o->n_mirrors + 2) * sizeof(char *));
                        if (!v)
                                return -ENOMEM;
                        o->mirrors = v;
                        v[o->n_mirrors++] = optarg;
                        v[o->n_mirrors] = NULL;
                        break;
                }
                case 'j': {
                        char *end;
                        errno = 0;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (errno || end == optarg || *end || v == 0 || v > 64) {
                                log_error("--max-concurrent-downloads \"%s\": a number from 1 to 64 is needed", optarg);
                                return -EINVAL;
                        }
                        o->max_downloads = (unsigned) v;
                        break;
                }
                case 'f':
                        o->fetch = optarg;
                        break;
                case 'S':
                        if (snapshot_mode_parse(optarg, &o->snapshotter) < 0) {
                                log_error("--snapshotter \"%s\": auto, overlay or copy", optarg);
                                return -EINVAL;
                        }
                        break;
                case 'l':
                        if (log_level_from_string(optarg, &o->level) < 0) {
                                log_error("invalid --log-level \"%s\" (error, warn, info, debug)", optarg);
                                return -EINVAL;
                        }
                        o->level_set = true;
                        break;
                case 'C':
                        o->config_file = optarg;
                        break;
                case 'L':
                        o->log_file = optarg;
                        break;
                case 'v':
                        printf("berth-supervisor version %s\n", BERTH_VERSION);
                        exit(0);
                case 'h':
                        usage(stdout);
                        exit(0);
                default:
                        usage(stderr);
                        return -EINVAL;
                }
        }
        if (optind < argc) {
                usage(stderr);
                return -EINVAL;
        }
        return 0;
}

/* The path of an ipc:// URL, or NULL for other transports. */
static const char *ipc_path(const char *url)
{
        return strncmp(url, "ipc://", 6) == 0 ? url + 6 : NULL;
}

/* berth-fetch beside this binary when it is there, else by name (PATH). */
static char *find_fetch(const char *given)
{
        char self[4096];
        if (given)
                return strdup(given);
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n > 0) {
                self[n] = '\0';
                char *slash = strrchr(self, '/');
                _cleanup_free_ char *p = NULL;
                if (slash) {
                        *slash = '\0';
                        if (asprintf(&p, "%s/berth-fetch", self) < 0)
                                return NULL;
                        if (access(p, X_OK) == 0)
                                return TAKE_PTR(p);
                }
        }
        return strdup("berth-fetch");
}

/* berth-shim beside this binary when it is there, else by name (PATH). */
static char *find_shim(const char *given)
{
        char self[4096];
        if (given)
                return strdup(given);
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n > 0) {
                self[n] = '\0';
                char *slash = strrchr(self, '/');
                _cleanup_free_ char *p = NULL;
                if (slash) {
                        *slash = '\0';
                        /* build tree: <build>/supervisor/ → <build>/shim/ */
                        const char *cands[] = { "berth-shim", "../shim/berth-shim" };
                        for (size_t i = 0; i < ARRAY_SIZE(cands); i++) {
                                free(p);
                                if (asprintf(&p, "%s/%s", self, cands[i]) < 0)
                                        return NULL;
                                if (access(p, X_OK) == 0)
                                        return realpath(p, NULL);
                        }
                }
        }
        return strdup("berth-shim");
}

/* Exclusive use of the exec root: an flock on <exec-root>/supervisor.lock
 * (held until exit), and no one answering on the RPC address. */
static int claim(const struct options *o, const char *address, int *ret_lockfd)
{
        _cleanup_free_ char *lock_path = NULL;
        _cleanup_close_ int fd = -1;
        struct rpc_client *c = NULL;
        struct rpc_status st;

        if (asprintf(&lock_path, "%s/supervisor.lock", o->exec_root) < 0)
                return -ENOMEM;
        fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return log_errno(LOG_LEVEL_ERROR, errno, "cannot open \"%s\"", lock_path);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno != EWOULDBLOCK)
                        return log_errno(LOG_LEVEL_ERROR, errno, "cannot lock \"%s\"", lock_path);
                char pid[32] = "";
                ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
                pid[n > 0 ? n : 0] = '\0';
                pid[strcspn(pid, "\n")] = '\0';
                log_error("another berth-supervisor%s%s%s is running with exec root \"%s\" (it holds \"%s\")",
                          *pid ? " (pid " : "", pid, *pid ? ")" : "", o->exec_root, lock_path);
                return -EBUSY;
        }
        if (rpc_client_open(address, &c, &st) >= 0) {
                /* someone else (another exec root) answers there: ask */
                ProtobufCMessage *rep = NULL;
                int r = rpc_client_call(c, "supervisor.Version", NULL, &berth__supervisor__version_response__descriptor,
                                        2000, &rep, &st);
                if (r >= 0) {
                        Berth__Supervisor__VersionResponse *v = (void *) rep;
                        log_error("another berth-supervisor (pid %u, root \"%s\") already serves \"%s\"", v->pid, v->root,
                                  address);
                        protobuf_c_message_free_unpacked(rep, NULL);
                } else {
                        log_error("\"%s\" is in use by another process (%s)", address, st.message);
                }
                rpc_client_close(c);
                return -EADDRINUSE;
        }
        char buf[32];
        int len = snprintf(buf, sizeof(buf), "%d\n", (int) getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t) len, 0) != len)
                log_debug("cannot write the pid into \"%s\": %m", lock_path);
        *ret_lockfd = TAKE_FD(fd);
        return 0;
}

static int open_stores(struct supervisor *s, struct berr *e)
{
        _cleanup_free_ char *content = NULL;
        int r;
        if (asprintf(&content, "%s/content", s->root) < 0)
                return berr_set(e, ENOMEM, "content store");
        if ((r = fs_mkdir_p(s->root, 0711)) < 0)
                return berr_set(e, r, "cannot create \"%s\"", s->root);
        if ((r = content_store_open(content, &s->cs, e)) < 0)
                return r;
        if ((r = snapshot_overlay_open_ex(s->root, s->snapshotter, &s->sn, e)) < 0)
                return r;
        /* the workers open the root in the mode it is now in */
        s->snapshotter = snapshot_overlay_mode(s->sn);
        log_info("supervisor: snapshotter %s", snapshot_mode_string(s->snapshotter));
        return image_store_open(s->root, s->cs, &s->is, e);
}

static void close_stores(struct supervisor *s)
{
        image_store_free(s->is);
        snapshot_overlay_free(s->sn);
        content_store_free(s->cs);
}

/* One table of every service's methods, in this order. */
static struct rpc_method *all_methods(size_t *ret_n)
{
        static const struct {
                const struct rpc_method *v;
                const size_t *n;
        } services[] = {
                { supervisor_core_methods, &supervisor_core_n_methods },
                { supervisor_images_methods, &supervisor_images_n_methods },
                { supervisor_tasks_methods, &supervisor_tasks_n_methods },
        };
        size_t n = 0;
        for (size_t i = 0; i < ARRAY_SIZE(services); i++)
                n += *services[i].n;
        struct rpc_method *all = calloc(n, sizeof(*all));
        if (!all)
                return NULL;
        n = 0;
        for (size_t i = 0; i < ARRAY_SIZE(services); i++)
                for (size_t k = 0; k < *services[i].n; k++)
                        all[n++] = services[i].v[k];
        *ret_n = n;
        return all;
}

static void unlink_socket(const char *url)
{
        const char *p = ipc_path(url);
        if (p)
                unlink(p);
}

static struct berth_config config;

static void free_config(void)
{
        berth_config_done(&config);
}

/* A list option not given on the command line comes from the file:
 * a NULL-terminated array of its strings (owned by config). */
static int list_from_config(json_t *list, char ***v, size_t *n)
{
        if (*n || json_array_size(list) == 0)
                return 0;
        char **a = calloc(json_array_size(list) + 1, sizeof(char *));
        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < json_array_size(list); i++)
                a[i] = (char *) json_string_value(json_array_get(list, i));
        *v = a;
        *n = json_array_size(list);
        return 0;
}

int main(int argc, char **argv)
{
        struct options o = { 0 };
        struct supervisor s = { 0 };
        struct berr e = { 0 };
        _cleanup_free_ char *address = NULL, *events_address = NULL, *pid_file = NULL;
        _cleanup_free_ struct rpc_method *methods = NULL;
        _cleanup_close_ int lockfd = -1;
        bool images_up = false, tasks_up = false;
        size_t n_methods = 0;
        sigset_t mask;
        int r, ret = 1;

        /* One malloc arena: the daemon idles most of its life, and each
         * arena of nng's and the handlers' threads would stay resident. */
        mallopt(M_ARENA_MAX, 1);
        log_setup("berth-supervisor", LOG_LEVEL_INFO);
        r = parse_args(argc, argv, &o);
        _cleanup_free_ char **own_insecure = o.insecure;
        _cleanup_free_ char **own_mirrors = o.mirrors;
        if (r < 0)
                return 2;
        /* the file, then the options over it */
        char cerr[1024];
        if (berth_config_load(o.config_file ? o.config_file : "/etc/berth/engine.json", o.config_file != NULL, &config,
                              cerr, sizeof(cerr)) < 0) {
                log_error("%s", cerr);
                return 2;
        }
        atexit(free_config);
        if (!o.root)
                o.root = config.data_root ? config.data_root : DEFAULT_ROOT;
        if (!o.exec_root)
                o.exec_root = config.exec_root ? config.exec_root : DEFAULT_EXEC_ROOT;
        if (!o.level_set && config.log_level && log_level_from_string(config.log_level, &o.level) < 0) {
                log_error("%s: log-level \"%s\": error, warn, info or debug", o.config_file ? o.config_file
                                                                                           : "/etc/berth/engine.json",
                          config.log_level);
                return 2;
        }
        if (list_from_config(config.insecure_registries, &o.insecure, &o.n_insecure) < 0 ||
            list_from_config(config.registry_mirrors, &o.mirrors, &o.n_mirrors) < 0)
                return 1;
        own_insecure = o.insecure;
        own_mirrors = o.mirrors;
        log_set_level(o.level);
        if (o.log_file && (r = log_open_file(o.log_file, LOG_FORMAT_JSON)) < 0) {
                log_error("cannot open log file \"%s\": %s", o.log_file, strerror(-r));
                return 1;
        }
        if (geteuid() != 0) {
                log_error("must run as root (it mounts overlay snapshots, owns \"%s\" and starts shims); "
                          "running as uid %u",
                          o.root, (unsigned) geteuid());
                return 1;
        }

        s.data_root = realpath(o.root, NULL);
        if (!s.data_root && errno == ENOENT && fs_mkdir_p(o.root, 0711) >= 0)
                s.data_root = realpath(o.root, NULL);
        if (!s.data_root) {
                log_error("root \"%s\": %m", o.root);
                return 1;
        }
        if ((r = fs_mkdir_p(o.exec_root, 0711)) < 0) {
                log_error("cannot create exec root \"%s\": %s", o.exec_root, strerror(-r));
                goto out;
        }
        s.exec_root = realpath(o.exec_root, NULL);
        if (!s.exec_root || asprintf(&s.root, "%s/supervisor", s.data_root) < 0) {
                log_error("exec root \"%s\": %m", o.exec_root);
                goto out;
        }
        o.exec_root = s.exec_root;
        /* the shims' sockets live at <exec root>/shims/<id>/attach.sock,
         * which must fit in sun_path: tasks.CreateTask refuses an id too
         * long for it; warn now when the engine's ids (64 characters) are */
        if (strlen(s.exec_root) + strlen("/shims/") + 64 + strlen("/attach.sock") > SUN_PATH_MAX)
                log_warn("exec root \"%s\" is long (%zu bytes): the shims' sockets under it "
                         "(<exec root>/shims/<id>/attach.sock) must fit in %d bytes, which the engine's "
                         "64-character container ids do not; choose a shorter exec root",
                         s.exec_root, strlen(s.exec_root), SUN_PATH_MAX);
        if ((o.address ? !(address = strdup(o.address)) : asprintf(&address, "ipc://%s/supervisor.sock", s.exec_root) < 0) ||
            (o.events_address ? !(events_address = strdup(o.events_address))
                              : asprintf(&events_address, "ipc://%s/supervisor-events.sock", s.exec_root) < 0) ||
            (o.pid_file ? !(pid_file = strdup(o.pid_file)) : asprintf(&pid_file, "%s/supervisor.pid", s.exec_root) < 0))
                goto out;
        s.shim_binary = find_shim(o.shim);
        s.default_runtime = strdup(o.runtime);
        s.auth_config = o.auth_config ? strdup(o.auth_config) : NULL;
        s.insecure = o.insecure;
        s.mirrors = o.mirrors;
        s.max_downloads = o.max_downloads;
        s.snapshotter = o.snapshotter;
        s.fetch_binary = find_fetch(o.fetch);

        if (claim(&o, address, &lockfd) < 0)
                goto out;

        /* Signals: blocked before any thread exists, so that only sigwait
         * in this thread sees them. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        pthread_rwlock_init(&s.gc_lock, NULL);
        if (open_stores(&s, &e) < 0) {
                log_error("%s", e.msg);
                goto out_stores;
        }
        if (supervisor_images_init(&s, &e) < 0) {
                log_error("%s", e.msg);
                goto out_stores;
        }
        images_up = true;
        if (supervisor_tasks_init(&s, &e) < 0) {
                log_error("%s", e.msg);
                goto out_services;
        }
        tasks_up = true;
        if (!(methods = all_methods(&n_methods))) {
                log_error("out of memory");
                goto out_services;
        }
        /* an ipc socket left by a daemon that was killed: claim() made sure
         * no one serves it */
        unlink_socket(address);
        unlink_socket(events_address);
        if (supervisor_events_open(&s, events_address, &e) < 0) {
                log_error("%s", e.msg);
                goto out_services;
        }
        struct rpc_server_options ro = { .max_message = RPC_MAX_MESSAGE, .receivers = 4 };
        if (rpc_server_start(address, methods, n_methods, &s, &ro, &s.server, &e) < 0) {
                log_error("%s", e.msg);
                goto out_events;
        }
        char pidbuf[32];
        int pidlen = snprintf(pidbuf, sizeof(pidbuf), "%d\n", (int) getpid());
        if ((r = fs_write_atomic_ex(pid_file, pidbuf, (size_t) pidlen, 0644, 0)) < 0)
                log_warn("cannot write pid file \"%s\" (ignored): %s", pid_file, strerror(-r));
        log_info("supervisor: serving \"%s\" (events \"%s\"), root \"%s\"", address, events_address, s.root);

        for (;;) {
                siginfo_t si;
                int sig = sigwaitinfo(&mask, &si);
                if (sig < 0)
                        continue;
                if (sig == SIGHUP) {
                        log_info("supervisor: SIGHUP ignored");
                        continue;
                }
                log_info("supervisor: signal %d: stopping", sig);
                break;
        }

        s.stopping = true;
        if (tasks_up)
                supervisor_tasks_stop(&s);
        int left = supervisor_defer_drain(STOP_GRACE_MS);
        unlink(pid_file);
        unlink_socket(address);
        unlink_socket(events_address);
        if (left > 0) {
                /* Pulls still running: their downloads stay as ingests to
                 * be resumed, nothing half-recorded (a pull records its
                 * image last). Freeing what they use would crash them. */
                log_warn("supervisor: %d operation(s) still running; exiting without them", left);
                fflush(NULL);
                _exit(0);
        }
        rpc_server_free(s.server);
        ret = 0;
out_events:
        supervisor_events_close(&s);
out_services:
        if (tasks_up) {
                supervisor_tasks_fini(&s);
        }
        if (images_up)
                supervisor_images_fini(&s);
out_stores:
        close_stores(&s);
        pthread_rwlock_destroy(&s.gc_lock);
out:
        free(s.data_root);
        free(s.root);
        free(s.exec_root);
        free(s.shim_binary);
        free(s.fetch_binary);
        free(s.default_runtime);
        free(s.auth_config);
        log_close();
        return ret;
}

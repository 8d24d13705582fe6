/* berth-engine: the Docker Engine API on a unix socket, in front of
 * berth-supervisor. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"
#include "engine.h"
#include "network.h"
#include "fs-util.h"
#include "log.h"

static void usage(FILE *f)
{
        fputs("Usage: berth-engine [OPTIONS]\n"
              "\n"
              "Serves the Docker Engine API (version " ENGINE_API_VERSION ", down to " ENGINE_API_MIN_VERSION
              ") on a unix socket, in front of berth-supervisor.\n"
              "\n"
              "  -H, --host unix:///PATH     the socket (default unix:///run/berth/engine.sock); mode 0660,\n"
              "                              group \"berth\" when that group exists\n"
              "      --data-root DIR         persistent state (default /var/lib/berth)\n"
              "      --exec-root DIR         runtime state and sockets (default /run/berth)\n"
              "      --supervisor URL        the supervisor (default ipc://<exec-root>/supervisor.sock)\n"
              "      --supervisor-events URL its events (default ipc://<exec-root>/supervisor-events.sock)\n"
              "      --pid-file PATH         (default <exec-root>/engine.pid)\n"
              "      --init-path PATH        the init of `docker run --init` (default: berth-init beside this\n"
              "                              program, else " BERTH_LIBEXECDIR "/berth/berth-init)\n"
              "      --log-level LEVEL       error, warn, info (default) or debug\n"
              "      --log-file PATH         log there too (text)\n"
              "      --bip CIDR              the default bridge's address and prefix (default 172.31.0.1/16)\n"
              "      --config-file PATH      the configuration file (default /etc/berth/engine.json;\n"
              "                              options override its keys; see docs/configuration.md)\n"
              "  -h, --help                  this text\n"
              "  -v, --version               the version\n",
              f);
}

static _Atomic unsigned threads_active;

struct spawn {
        void *(*fn)(void *);
        void *arg;
};

static void *spawn_main(void *p)
{
        struct spawn sp = *(struct spawn *) p;
        free(p);
        sp.fn(sp.arg);
        threads_active--;
        return NULL;
}

int engine_spawn(void *(*fn)(void *), void *arg, size_t stack_kb)
{
        struct spawn *sp = malloc(sizeof(*sp));
        if (!sp)
                return -ENOMEM;
        *sp = (struct spawn) { fn, arg };
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&a, (stack_kb ? stack_kb : 256) << 10);
        threads_active++;
        pthread_t t;
        int r = pthread_create(&t, &a, spawn_main, sp);
        pthread_attr_destroy(&a);
        if (r != 0) {
                threads_active--;
                free(sp);
                return -r;
        }
        return 0;
}

enum MHD_Result engine_reply_streamed(struct http_request *r, const char *content_type, int *fd,
                                      void *(*fn)(void *), void *arg, size_t stack_kb, void (*release)(void *arg))
{
        enum MHD_Result res = http_reply_stream(r, 200, content_type, fd);
        if (*fd >= 0 && engine_spawn(fn, arg, stack_kb) == 0)
                return res;
        if (*fd >= 0) {
                close(*fd);
                *fd = -1;
        }
        release(arg);
        return res;
}

unsigned engine_threads_active(void)
{
        return threads_active;
}

int engine_call(struct engine *en, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *reply_type, int timeout_ms, ProtobufCMessage **ret,
                struct rpc_status *st)
{
        return rpc_client_call(en->sup, method, req, reply_type, timeout_ms, ret, st);
}

unsigned engine_http_status(enum rpc_code code)
{
        switch (code) {
        case RPC_OK:
                return 200;
        case RPC_NOT_FOUND:
                return 404;
        case RPC_ALREADY_EXISTS:
        case RPC_FAILED_PRECONDITION:
                return 409;
        case RPC_INVALID_ARGUMENT:
                return 400;
        case RPC_UNAVAILABLE:
                return 503;
        case RPC_DEADLINE_EXCEEDED:
                return 504;
        default:
                return 500;
        }
}

enum MHD_Result engine_reply_rpc_error(struct http_request *r, const struct rpc_status *st)
{
        /* UNAVAILABLE from the RPC layer itself (no "supervisor:" in it)
         * means the supervisor could not be reached */
        if (st->code == RPC_UNAVAILABLE && strncmp(st->message, "supervisor:", 11))
                return http_reply_error(r, 503, "engine: the supervisor is not reachable: %s", st->message);
        return http_reply_error(r, engine_http_status(st->code), "%s", st->message);
}

/* A path from "unix:///run/x.sock" or "/run/x.sock". */
static int host_path(const char *host, char **ret)
{
        if (!strncmp(host, "unix://", 7))
                host += 7;
        else if (strstr(host, "://")) {
                fprintf(stderr, "berth-engine: %s: only unix:// hosts are served (TCP needs TLS with client "
                                "certificates, which berth-engine does not implement yet)\n",
                        host);
                return -EINVAL;
        }
        if (host[0] != '/') {
                fprintf(stderr, "berth-engine: %s: the socket path must be absolute\n", host);
                return -EINVAL;
        }
        *ret = strdup(host);
        return *ret ? 0 : -ENOMEM;
}

static int listen_unix(const char *path)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "berth-engine: %s: socket path too long\n", path);
                return -ENAMETOOLONG;
        }
        strcpy(sa.sun_path, path);

        /* another engine answering there owns it; a stale file is replaced */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0) {
                int c = connect(probe, (struct sockaddr *) &sa, sizeof(sa));
                close(probe);
                if (c == 0) {
                        fprintf(stderr, "berth-engine: %s is served by another process (another berth-engine "
                                        "or dockerd?): stop it first or choose another --host\n",
                                path);
                        return -EADDRINUSE;
                }
        }
        _cleanup_free_ char *dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        *strrchr(dir, '/') = '\0';
        if (*dir && fs_mkdir_p(dir, 0711) < 0) {
                fprintf(stderr, "berth-engine: creating %s: %s\n", dir, strerror(errno));
                return -errno;
        }
        (void) unlink(path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        mode_t old = umask(0117);
        int b = bind(fd, (struct sockaddr *) &sa, sizeof(sa));
        umask(old);
        if (b < 0 || listen(fd, 128) < 0) {
                int err = errno;
                fprintf(stderr, "berth-engine: listening on %s: %s\n", path, strerror(err));
                close(fd);
                return -err;
        }
        struct group *g = getgrnam("berth");
        if (g && chown(path, 0, g->gr_gid) < 0)
                log_warn("engine: giving %s to group berth: %s", path, strerror(errno));
        if (chmod(path, 0660) < 0)
                log_warn("engine: chmod %s: %s", path, strerror(errno));
        return fd;
}

static int write_pid_file(const char *path)
{
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "%d\n", (int) getpid());
        return fs_write_atomic(path, buf, (size_t) n, 0644);
}

static struct berth_config *config_at_exit;

static void free_config(void)
{
        if (config_at_exit)
                berth_config_done(config_at_exit);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "host", required_argument, NULL, 'H' },
                { "data-root", required_argument, NULL, 'd' },
                { "exec-root", required_argument, NULL, 'e' },
                { "supervisor", required_argument, NULL, 's' },
                { "supervisor-events", required_argument, NULL, 'E' },
                { "pid-file", required_argument, NULL, 'p' },
                { "init-path", required_argument, NULL, 'I' },
                { "config-file", required_argument, NULL, 'c' },
                { "bip", required_argument, NULL, 'B' },
                { "log-level", required_argument, NULL, 'l' },
                { "log-file", required_argument, NULL, 'L' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'v' },
                {},
        };
        /* static: the exit handler frees its configuration after main returns */
        static struct engine en;
        const char *host = NULL, *log_file = NULL, *config_file = NULL, *level_s = NULL, *bip_opt = NULL;
        enum log_level level = LOG_LEVEL_INFO;
        int c;

        log_setup("berth-engine", LOG_LEVEL_INFO);
        while ((c = getopt_long(argc, argv, "H:hv", opts, NULL)) != -1) {
                switch (c) {
                case 'H':
                        host = optarg;
                        break;
                case 'd':
                        en.data_root = optarg;
                        break;
                case 'e':
                        en.exec_root = optarg;
                        break;
                case 's':
                        en.supervisor_address = optarg;
                        break;
                case 'E':
                        en.events_address = optarg;
                        break;
                case 'p':
                        en.pid_file = optarg;
                        break;
                case 'I':
                        en.init_path = optarg;
                        break;
                case 'c':
                        config_file = optarg;
                        break;
                case 'B':
                        bip_opt = optarg;
                        break;
                case 'l':
                        level_s = optarg;
                        break;
                case 'L':
                        log_file = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case 'v':
                        printf("berth-engine %s (Docker Engine API %s)\n", BERTH_VERSION, ENGINE_API_VERSION);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "berth-engine: unexpected argument \"%s\"\n", argv[optind]);
                return 2;
        }
        /* the file, then the options over it */
        char cerr[1024];
        if (berth_config_load(config_file ? config_file : "/etc/berth/engine.json", config_file != NULL, &en.cfg, cerr,
                               sizeof(cerr)) < 0) {
                fprintf(stderr, "berth-engine: %s\n", cerr);
                return 2;
        }
        config_at_exit = &en.cfg;
        atexit(free_config);
        if (!level_s)
                level_s = en.cfg.log_level;
        if (level_s && log_level_from_string(level_s, &level) < 0) {
                fprintf(stderr, "berth-engine: log level \"%s\": expected error, warn, info or debug\n", level_s);
                return 2;
        }
        if (!host)
                host = en.cfg.host ? en.cfg.host : "unix:///run/berth/engine.sock";
        if (!en.data_root)
                en.data_root = (char *) en.cfg.data_root;
        if (!en.exec_root)
                en.exec_root = (char *) en.cfg.exec_root;
        log_set_level(level);
        if (log_file && log_open_file(log_file, LOG_FORMAT_TEXT) < 0) {
                fprintf(stderr, "berth-engine: --log-file %s: %s\n", log_file, strerror(errno));
                return 1;
        }
        if (geteuid() != 0) {
                fprintf(stderr, "berth-engine: must run as root: it serves a root-owned socket and drives the "
                                "supervisor, which mounts filesystems and creates namespaces (rootless mode is "
                                "not implemented)\n");
                return 1;
        }

        _cleanup_free_ char *sup = NULL, *events = NULL, *pidf = NULL;
        if (!en.data_root)
                en.data_root = "/var/lib/berth";
        if (!en.exec_root)
                en.exec_root = "/run/berth";
        if (!en.supervisor_address && asprintf(&sup, "ipc://%s/supervisor.sock", en.exec_root) >= 0)
                en.supervisor_address = sup;
        if (!en.events_address && asprintf(&events, "ipc://%s/supervisor-events.sock", en.exec_root) >= 0)
                en.events_address = events;
        if (!en.pid_file && asprintf(&pidf, "%s/engine.pid", en.exec_root) >= 0)
                en.pid_file = pidf;
        if (!en.supervisor_address || !en.events_address || !en.pid_file)
                return 1;
        _cleanup_free_ char *init_path = NULL;
        if (!en.init_path) {
                /* beside this program (a build tree), else where meson installs it */
                char self[4096];
                ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
                if (n > 0) {
                        self[n] = '\0';
                        *strrchr(self, '/') = '\0';
                        if (asprintf(&init_path, "%s/berth-init", self) >= 0 && access(init_path, X_OK) < 0) {
                                free(init_path);
                                init_path = NULL;
                        }
                }
                en.init_path = init_path ? init_path : BERTH_LIBEXECDIR "/berth/berth-init";
        }
        if (host_path(host, &en.host) < 0)
                return 2;
        clock_gettime(CLOCK_REALTIME, &en.started);

        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &ss, NULL);
        signal(SIGPIPE, SIG_IGN);

        /* the supervisor may be starting at the same moment: wait a little */
        struct rpc_status st;
        for (int i = 0; rpc_client_open(en.supervisor_address, &en.sup, &st) < 0; i++) {
                if (i == 100) {
                        fprintf(stderr, "berth-engine: the supervisor at %s is not reachable: %s (start "
                                        "berth-supervisor first)\n",
                                en.supervisor_address, st.message);
                        return 1;
                }
                usleep(50 * 1000);
        }

        if (engine_events_init(&en) < 0 || engine_exec_init(&en) < 0)
                return 1;
        const char *bip = bip_opt ? bip_opt : en.cfg.bip;
        if (bip && net_set_default_bip(bip) < 0) {
                fprintf(stderr, "berth-engine: bip \"%s\": an address and prefix length (a.b.c.d/n) is expected\n", bip);
                return 2;
        }
        if (net_init(&en) < 0)
                log_error("engine: networking is not available; containers get no network but \"host\" and \"none\"");
        int ir = engine_containers_init(&en);
        if (ir < 0) {
                fprintf(stderr, "berth-engine: loading the containers under %s/engine: %s\n", en.data_root,
                        strerror(-ir));
                return 1;
        }

        int fd = listen_unix(en.host);
        if (fd < 0)
                return 1;

        static struct http_route routes[64];
        size_t n = 0;
        const struct {
                const struct http_route *r;
                size_t n;
        } mods[] = {
                { engine_system_routes, engine_system_n_routes },
                { engine_image_routes, engine_image_n_routes },
                { engine_container_routes, engine_container_n_routes },
                { engine_exec_routes, engine_exec_n_routes },
                { engine_event_routes, engine_event_n_routes },
                { engine_stats_routes, engine_stats_n_routes },
                { engine_network_routes, engine_network_n_routes },
        };
        for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++)
                for (size_t j = 0; j < mods[i].n && n < sizeof(routes) / sizeof(routes[0]); j++)
                        routes[n++] = mods[i].r[j];

        /* request bodies that are files (docker load) wait on the data root's
         * disk, as dockerd's <data-root>/tmp */
        _cleanup_free_ char *tmpdir = NULL;
        if (asprintf(&tmpdir, "%s/engine/tmp", en.data_root) < 0 || fs_mkdir_p(tmpdir, 0700) < 0) {
                fprintf(stderr, "berth-engine: creating %s/engine/tmp: %s\n", en.data_root, strerror(errno));
                return 1;
        }
        int r = http_server_start(&en, fd, routes, n, tmpdir, &en.http);
        if (r < 0) {
                fprintf(stderr, "berth-engine: starting the HTTP server: %s\n", strerror(-r));
                unlink(en.host);
                return 1;
        }
        if (write_pid_file(en.pid_file) < 0)
                log_warn("engine: writing %s: %s", en.pid_file, strerror(errno));
        log_info("engine: serving the Docker API %s on unix://%s (supervisor %s)", ENGINE_API_VERSION, en.host,
                 en.supervisor_address);

        int sig = 0;
        while (sigwait(&ss, &sig) == 0 && sig == SIGHUP)
                log_info("engine: SIGHUP: nothing to reload");
        log_info("engine: %s: shutting down", strsignal(sig));
        http_server_stop(en.http);
        if (!en.cfg.live_restore)
                engine_containers_stop_all(&en);
        unlink(en.host);
        unlink(en.pid_file);
        /* Threads that stream to clients end within a second once their
         * clients are gone; those watching running containers wait on the
         * supervisor until the containers exit: with live restore the
         * containers outlive the engine, so then the process just ends. */
        for (int i = 0; i < 30 && engine_threads_active() > 0; i++) {
                pthread_mutex_lock(&en.ctrs.lock);
                pthread_cond_broadcast(&en.ctrs.changed);
                pthread_mutex_unlock(&en.ctrs.lock);
                usleep(100 * 1000);
        }
        net_fini(&en);
        if (engine_threads_active() > 0) {
                log_info("engine: %u containers or streams still running: they are left to run", engine_threads_active());
                log_close();
                _exit(0);
        }
        ctr_table_close(&en.ctrs);
        engine_exec_free(&en);
        engine_events_free(&en);
        rpc_client_close(en.sup);
        free(en.host);
        log_close();
        return 0;
}

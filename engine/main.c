/* berth-engine: the Docker Engine API on a unix socket, in front of
 * berth-supervisor. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
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
              ") on unix sockets (and on TCP with TLS and client certificates), in front of\n"
              "berth-supervisor.\n"
              "\n"
              "  -H, --host URL              where to serve, repeatable (default unix:///run/berth/engine.sock):\n"
              "                              unix:///PATH (mode 0660, group \"berth\" when it exists),\n"
              "                              tcp://ADDR:PORT (only with --tlsverify), fd:// or fd://N (sockets\n"
              "                              from systemd: all, or the one numbered N)\n"
              "      --tls                   TLS on tcp:// hosts (not enough alone: --tlsverify is required)\n"
              "      --tlsverify             TLS, and only clients with a certificate signed by --tlscacert\n"
              "      --tlscacert PATH        the CA of the clients' certificates (PEM)\n"
              "      --tlscert PATH          the server's certificate (PEM)\n"
              "      --tlskey PATH           the server's private key (PEM, not encrypted)\n"
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

/* ---- listeners ---- */

/* Where the API is served: one libmicrohttpd daemon (thread per
 * connection) per -H. A socket on the network is served only with TLS and
 * verified client certificates (dockerd's --tlsverify): anyone who reaches
 * the API controls the host as root. */
#define MAX_LISTENERS 16

enum listener_kind { LISTEN_UNIX, LISTEN_TCP, LISTEN_FD };

struct listener {
        char *url;                  /* as given, for messages */
        enum listener_kind kind;
        char *path;                 /* LISTEN_UNIX: the socket's path */
        int fd;                     /* the listening socket, -1 until opened */
        bool inet;                  /* a TCP socket: served with TLS only */
        bool made;                  /* a unix socket the engine bound itself: removed at exit */
        struct http_server *http;
};

static struct listener listeners[MAX_LISTENERS];
static size_t n_listeners;
static struct http_tls *tls;

/* The sockets systemd passed (LISTEN_FDS, from fd 3); -1 once taken. */
static int sd_fds[MAX_LISTENERS];
static size_t n_sd_fds;

static void listeners_free(void)
{
        for (size_t i = 0; i < n_listeners; i++) {
                struct listener *l = &listeners[i];
                if (l->fd >= 0 && !l->http)
                        close(l->fd);
                free(l->url);
                free(l->path);
        }
        n_listeners = 0;
        for (size_t i = 0; i < n_sd_fds; i++)
                if (sd_fds[i] >= 0)
                        close(sd_fds[i]);
        n_sd_fds = 0;
        http_tls_free(tls);
        tls = NULL;
}

/* Takes the sockets of systemd's socket activation (sd_listen_fds(3)):
 * LISTEN_PID must be this process; the variables are removed so that no
 * child sees them. */
static int sd_listen_fds(void)
{
        const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
        if (!pid_s || !fds_s)
                return 0;
        char *end;
        errno = 0;
        long pid = strtol(pid_s, &end, 10);
        bool ours = !errno && !*end && pid == (long) getpid();
        errno = 0;
        long n = strtol(fds_s, &end, 10);
        bool valid = !errno && !*end && n >= 0 && n <= 1024;
        if (ours && !valid)
                fprintf(stderr, "berth-engine: LISTEN_FDS=\"%s\" from systemd is not a number of sockets: ignored\n",
                        fds_s);
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
        if (!ours || !valid)
                return 0;
        for (long i = 0; i < n; i++) {
                int fd = 3 + (int) i;
                if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
                        fprintf(stderr, "berth-engine: socket %d from systemd (LISTEN_FDS=%ld): %s\n", fd, n,
                                strerror(errno));
                        return -EBADF;
                }
                if (n_sd_fds == MAX_LISTENERS) {
                        fprintf(stderr, "berth-engine: more than %d sockets from systemd: socket %d closed\n",
                                MAX_LISTENERS, fd);
                        close(fd);
                        continue;
                }
                sd_fds[n_sd_fds++] = fd;
        }
        return 0;
}

/* A listening stream socket from systemd: whether it is on the network
 * (AF_INET/AF_INET6) and, for a unix socket, its path in ret_path (may be
 * NULL). */
static int sd_fd_inspect(int fd, bool *ret_inet, char **ret_path)
{
        int type = 0, acc = 0;
        socklen_t len = sizeof(type);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
                return -errno;
        len = sizeof(acc);
        if (type != SOCK_STREAM || getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) < 0 || !acc)
                return -ENOTSOCK;
        struct sockaddr_storage ss;
        len = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *) &ss, &len) < 0)
                return -errno;
        *ret_inet = ss.ss_family == AF_INET || ss.ss_family == AF_INET6;
        if (ret_path)
                *ret_path = NULL;
        if (ss.ss_family == AF_UNIX) {
                const struct sockaddr_un *su = (const struct sockaddr_un *) &ss;
                size_t n = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path)
                                                                          : 0;
                if (ret_path && n > 0 && su->sun_path[0] && !(*ret_path = strndup(su->sun_path, n)))
                        return -ENOMEM;
        } else if (!*ret_inet) {
                return -EAFNOSUPPORT;
        }
        return 0;
}

static int listener_add(const char *url, enum listener_kind kind, const char *path, int fd)
{
        if (n_listeners == MAX_LISTENERS) {
                fprintf(stderr, "berth-engine: more than %d hosts\n", MAX_LISTENERS);
                return -E2BIG;
        }
        struct listener *l = &listeners[n_listeners];
        *l = (struct listener) { .kind = kind, .fd = fd, .inet = kind == LISTEN_TCP };
        l->url = strdup(url);
        if (path)
                l->path = strdup(path);
        if (!l->url || (path && !l->path)) {
                free(l->url);
                free(l->path);
                return -ENOMEM;
        }
        n_listeners++;
        return 0;
}

/* An fd:// host: every socket systemd passed that is not yet taken
 * (fd://), or the one numbered N (fd://N), as dockerd reads them. */
static int host_fd(const char *url)
{
        const char *rest = url + 5;
        if (n_sd_fds == 0) {
                fprintf(stderr, "berth-engine: -H %s: no sockets from systemd (LISTEN_FDS and LISTEN_PID are not "
                                "set for this process: start it through a socket unit, berth-engine.socket)\n",
                        url);
                return -EINVAL;
        }
        long want = -1;
        if (*rest) {
                char *end;
                errno = 0;
                want = strtol(rest, &end, 10);
                if (errno || *end || want < 3) {
                        fprintf(stderr, "berth-engine: -H %s: expected fd:// or fd://N (a socket number, 3 or "
                                        "more)\n",
                                url);
                        return -EINVAL;
                }
        }
        size_t taken = 0;
        for (size_t i = 0; i < n_sd_fds; i++) {
                if (sd_fds[i] < 0 || (want >= 0 && sd_fds[i] != want))
                        continue;
                char name[32];
                snprintf(name, sizeof(name), "fd://%d", sd_fds[i]);
                int r = listener_add(name, LISTEN_FD, NULL, sd_fds[i]);
                if (r < 0)
                        return r;
                sd_fds[i] = -1;
                taken++;
        }
        if (taken == 0) {
                fprintf(stderr, "berth-engine: -H %s: %s (systemd passed sockets 3 to %d)\n", url,
                        want >= 0 ? "no such socket from systemd, or already taken" : "all sockets already taken",
                        2 + (int) n_sd_fds);
                return -EINVAL;
        }
        return 0;
}

/* Checks a host URL and records it; tcp:// and fd:// sockets on the
 * network need TLS with client verification (verify). Nothing is bound
 * yet. */
static int host_add(const char *url, bool tls_on, bool verify)
{
        size_t first = n_listeners;
        int r;
        if (!strncmp(url, "unix://", 7) || url[0] == '/') {
                const char *path = url[0] == '/' ? url : url + 7;
                if (path[0] != '/') {
                        fprintf(stderr, "berth-engine: -H %s: the socket path must be absolute\n", url);
                        return -EINVAL;
                }
                r = listener_add(url, LISTEN_UNIX, path, -1);
        } else if (!strncmp(url, "tcp://", 6)) {
                r = listener_add(url, LISTEN_TCP, NULL, -1);
        } else if (!strncmp(url, "fd://", 5)) {
                r = host_fd(url);
        } else {
                fprintf(stderr, "berth-engine: -H %s: expected unix:///PATH, tcp://ADDR:PORT or fd://[N]\n", url);
                return -EINVAL;
        }
        if (r < 0)
                return r;
        for (size_t i = first; i < n_listeners; i++) {
                struct listener *l = &listeners[i];
                if (l->kind == LISTEN_FD) {
                        r = sd_fd_inspect(l->fd, &l->inet, NULL);
                        if (r < 0) {
                                fprintf(stderr, "berth-engine: -H %s: %s is not a listening unix or TCP stream "
                                                "socket: %s\n",
                                        url, l->url, strerror(-r));
                                return r;
                        }
                }
                if (!l->inet)
                        continue;
                if (!tls_on) {
                        fprintf(stderr, "engine: refusing to listen on %s without TLS: anyone who reaches the "
                                        "port would control the engine (as root); give --tlsverify with "
                                        "--tlscacert, --tlscert and --tlskey (clients need a certificate signed "
                                        "by that CA), or serve a unix socket\n",
                                l->url);
                        return -EPERM;
                }
                if (!verify) {
                        fprintf(stderr, "engine: refusing to listen on %s without TLS client verification: --tls "
                                        "alone lets any client that reaches the port control the engine (as "
                                        "root); give --tlsverify and --tlscacert as well\n",
                                l->url);
                        return -EPERM;
                }
        }
        return 0;
}

/* "tcp://ADDR:PORT", "tcp://[::1]:PORT", "tcp://:PORT" (every address)
 * or without ":PORT" (2376, dockerd's TLS port). */
static int listen_tcp(const char *url)
{
        const char *hp = url + 6;
        char host[256] = "", port[8] = "2376";
        const char *colon;
        if (*hp == '[') {
                const char *e = strchr(hp, ']');
                if (!e || (size_t) (e - hp - 1) >= sizeof(host))
                        goto bad;
                memcpy(host, hp + 1, (size_t) (e - hp - 1));
                colon = e[1] == ':' ? e + 1 : NULL;
                if (!colon && e[1])
                        goto bad;
        } else {
                colon = strrchr(hp, ':');
                size_t n = colon ? (size_t) (colon - hp) : strlen(hp);
                if (n >= sizeof(host) || memchr(hp, '/', n))
                        goto bad;
                memcpy(host, hp, n);
        }
        if (colon) {
                char *end;
                errno = 0;
                unsigned long p = strtoul(colon + 1, &end, 10);
                if (errno || *end || !colon[1] || p == 0 || p > 65535)
                        goto bad;
                snprintf(port, sizeof(port), "%lu", p);
        }

        struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM };
        struct addrinfo *res = NULL;
        int g = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
        if (g != 0) {
                fprintf(stderr, "berth-engine: -H %s: %s\n", url, gai_strerror(g));
                return -EINVAL;
        }
        int err = EADDRNOTAVAIL;
        /* no address: IPv6's any address, which takes IPv4 too, first */
        for (int pass = 0; pass < 2; pass++) {
                for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                        if (!host[0] && (pass == 0) != (ai->ai_family == AF_INET6))
                                continue;
                        if (host[0] && pass == 1)
                                continue;
                        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
                        if (fd < 0) {
                                err = errno;
                                continue;
                        }
                        int one = 1, zero = 0;
                        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                        if (ai->ai_family == AF_INET6 && !host[0])
                                (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
                        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0) {
                                freeaddrinfo(res);
                                return fd;
                        }
                        err = errno;
                        close(fd);
                }
        }
        freeaddrinfo(res);
        fprintf(stderr, "berth-engine: listening on %s: %s\n", url, strerror(err));
        return -err;
bad:
        fprintf(stderr, "berth-engine: -H %s: expected tcp://ADDR:PORT, tcp://[ADDR]:PORT or tcp://:PORT\n", url);
        return -EINVAL;
}


/* The berth group's id from /etc/group, as dockerd finds its docker group
 * (files only: no NSS module gets loaded into the daemon for it). */
static bool berth_group(gid_t *ret)
{
        FILE *f = fopen("/etc/group", "re");
        bool found = false;
        struct group *g;
        while (f && !found && (g = fgetgrent(f)))
                if (strcmp(g->gr_name, "berth") == 0) {
                        *ret = g->gr_gid;
                        found = true;
                }
        if (f)
                fclose(f);
        return found;
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
        gid_t gid;
        if (berth_group(&gid) && chown(path, 0, gid) < 0)
                log_warn("engine: giving %s to group berth: %s", path, strerror(errno));
        if (chmod(path, 0660) < 0)
                log_warn("engine: chmod %s: %s", path, strerror(errno));
        return fd;
}

/* Binds (or takes from systemd) every listener's socket. A unix:// host
 * whose path is a socket systemd passed is served on that socket, so that
 * the service works with its socket unit and without it. */
static int listeners_open(void)
{
        for (size_t i = 0; i < n_listeners; i++) {
                struct listener *l = &listeners[i];
                if (l->kind == LISTEN_UNIX) {
                        for (size_t j = 0; j < n_sd_fds && l->fd < 0; j++) {
                                bool inet;
                                _cleanup_free_ char *path = NULL;
                                if (sd_fds[j] >= 0 && sd_fd_inspect(sd_fds[j], &inet, &path) == 0 && path &&
                                    !strcmp(path, l->path)) {
                                        l->fd = sd_fds[j];
                                        sd_fds[j] = -1;
                                }
                        }
                        if (l->fd < 0) {
                                l->fd = listen_unix(l->path);
                                if (l->fd < 0)
                                        return l->fd;
                                l->made = true;
                        }
                } else if (l->kind == LISTEN_TCP) {
                        l->fd = listen_tcp(l->url);
                        if (l->fd < 0)
                                return l->fd;
                }
        }
        for (size_t j = 0; j < n_sd_fds; j++) {
                if (sd_fds[j] < 0)
                        continue;
                log_warn("engine: socket %d from systemd is not one of the hosts (-H fd:// serves them all): "
                         "closed",
                         sd_fds[j]);
                close(sd_fds[j]);
                sd_fds[j] = -1;
        }
        return 0;
}

/* Stops the servers and removes the unix sockets the engine made. */
static void listeners_close(void)
{
        for (size_t i = 0; i < n_listeners; i++) {
                struct listener *l = &listeners[i];
                if (l->http) {
                        http_server_stop(l->http);
                        l->http = NULL;
                        l->fd = -1; /* closed by libmicrohttpd */
                }
                if (l->made) {
                        unlink(l->path);
                        l->made = false;
                }
        }
}

static int parse_bool(const char *opt, const char *v, bool *ret)
{
        if (!v || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "t") || !strcmp(v, "TRUE") ||
            !strcmp(v, "True")) {
                *ret = true;
                return 0;
        }
        if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "f") || !strcmp(v, "FALSE") ||
            !strcmp(v, "False")) {
                *ret = false;
                return 0;
        }
        fprintf(stderr, "berth-engine: --%s=%s: expected true or false\n", opt, v);
        return -EINVAL;
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
                { "tls", optional_argument, NULL, 'T' },
                { "tlsverify", optional_argument, NULL, 'V' },
                { "tlscacert", required_argument, NULL, 'A' },
                { "tlscert", required_argument, NULL, 'C' },
                { "tlskey", required_argument, NULL, 'K' },
                { "log-level", required_argument, NULL, 'l' },
                { "log-file", required_argument, NULL, 'L' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'v' },
                {},
        };
        /* static: the exit handler frees its configuration after main returns */
        static struct engine en;
        const char *log_file = NULL, *config_file = NULL, *level_s = NULL, *bip_opt = NULL;
        const char *hosts[MAX_LISTENERS];
        size_t n_hosts = 0;
        const char *tls_ca = NULL, *tls_cert = NULL, *tls_key = NULL;
        bool tls_on = false, tls_verify = false, tls_set = false, verify_set = false;
        enum log_level level = LOG_LEVEL_INFO;
        int c;

        /* One malloc arena, as the supervisor: a thread per connection would
         * otherwise leave an arena of its own resident after each request. */
        mallopt(M_ARENA_MAX, 1);
        log_setup("berth-engine", LOG_LEVEL_INFO);
        while ((c = getopt_long(argc, argv, "H:hv", opts, NULL)) != -1) {
                switch (c) {
                case 'H':
                        if (n_hosts == MAX_LISTENERS) {
                                fprintf(stderr, "berth-engine: more than %d -H\n", MAX_LISTENERS);
                                return 2;
                        }
                        hosts[n_hosts++] = optarg;
                        break;
                case 'T':
                        if (parse_bool("tls", optarg, &tls_on) < 0)
                                return 2;
                        tls_set = true;
                        break;
                case 'V':
                        if (parse_bool("tlsverify", optarg, &tls_verify) < 0)
                                return 2;
                        verify_set = true;
                        break;
                case 'A':
                        tls_ca = optarg;
                        break;
                case 'C':
                        tls_cert = optarg;
                        break;
                case 'K':
                        tls_key = optarg;
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
        if (n_hosts == 0 && json_array_size(en.cfg.hosts) > MAX_LISTENERS) {
                fprintf(stderr, "berth-engine: \"hosts\": more than %d\n", MAX_LISTENERS);
                return 2;
        }
        for (size_t i = 0; n_hosts == 0 && i < json_array_size(en.cfg.hosts); i++)
                hosts[i] = json_string_value(json_array_get(en.cfg.hosts, i));
        if (n_hosts == 0)
                n_hosts = json_array_size(en.cfg.hosts);
        if (n_hosts == 0)
                hosts[n_hosts++] = "unix:///run/berth/engine.sock";
        if (!tls_set)
                tls_on = en.cfg.tls;
        if (!verify_set)
                tls_verify = en.cfg.tlsverify;
        tls_on = tls_on || tls_verify; /* --tlsverify implies --tls, as for dockerd */
        if (!tls_ca)
                tls_ca = en.cfg.tlscacert;
        if (!tls_cert)
                tls_cert = en.cfg.tlscert;
        if (!tls_key)
                tls_key = en.cfg.tlskey;
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
        /* the hosts and TLS are checked before anything else is started */
        atexit(listeners_free);
        if (sd_listen_fds() < 0)
                return 2;
        if (tls_verify) {
                char terr[1024];
                if (http_tls_load(tls_ca, tls_cert, tls_key, &tls, terr, sizeof(terr)) < 0) {
                        fprintf(stderr, "berth-engine: TLS: %s\n", terr);
                        return 2;
                }
        }
        for (size_t i = 0; i < n_hosts; i++)
                if (host_add(hosts[i], tls_on, tls_verify) < 0)
                        return 2;
        for (size_t i = 0; i < n_listeners && !en.host; i++)
                if (listeners[i].kind == LISTEN_UNIX && !(en.host = strdup(listeners[i].path)))
                        return 1;
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

        if (listeners_open() < 0) {
                listeners_close();
                return 1;
        }

        static struct http_route routes[128];
        size_t n = 0;
        const struct {
                const struct http_route *r;
                size_t n;
        } mods[] = {
                { engine_system_routes, engine_system_n_routes },
                { engine_image_routes, engine_image_n_routes },
                { engine_container_routes, engine_container_n_routes },
                { engine_exec_routes, engine_exec_n_routes },
                { engine_archive_routes, engine_archive_n_routes },
                { engine_event_routes, engine_event_n_routes },
                { engine_stats_routes, engine_stats_n_routes },
                { engine_network_routes, engine_network_n_routes },
                { engine_volume_routes, engine_volume_n_routes },
                { engine_auth_routes, engine_auth_n_routes },
                { engine_df_routes, engine_df_n_routes },
        };
        for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++)
                for (size_t j = 0; j < mods[i].n; j++) {
                        if (n == sizeof(routes) / sizeof(routes[0])) {
                                log_error("engine: more routes than the table's %zu: make it larger", n);
                                return 1;
                        }
                        routes[n++] = mods[i].r[j];
                }

        /* request bodies that are files (docker load) wait on the data root's
         * disk, as dockerd's <data-root>/tmp */
        _cleanup_free_ char *tmpdir = NULL;
        if (asprintf(&tmpdir, "%s/engine/tmp", en.data_root) < 0 || fs_mkdir_p(tmpdir, 0700) < 0) {
                fprintf(stderr, "berth-engine: creating %s/engine/tmp: %s\n", en.data_root, strerror(errno));
                return 1;
        }
        for (size_t i = 0; i < n_listeners; i++) {
                struct listener *l = &listeners[i];
                int fd = l->fd;
                l->fd = -1; /* taken over by http_server_start */
                int r = http_server_start(&en, fd, l->inet ? tls : NULL, routes, n, tmpdir, &l->http);
                if (r < 0) {
                        fprintf(stderr, "berth-engine: starting the HTTP server on %s: %s\n", l->url,
                                strerror(-r));
                        listeners_close();
                        return 1;
                }
                if (!en.http)
                        en.http = l->http;
        }
        if (write_pid_file(en.pid_file) < 0)
                log_warn("engine: writing %s: %s", en.pid_file, strerror(errno));
        for (size_t i = 0; i < n_listeners; i++)
                log_info("engine: serving the Docker API %s on %s%s%s (supervisor %s)", ENGINE_API_VERSION,
                         listeners[i].kind == LISTEN_UNIX && strncmp(listeners[i].url, "unix://", 7) ? "unix://" : "",
                         listeners[i].url, listeners[i].inet ? " with TLS, client certificates verified" : "",
                         en.supervisor_address);

        int sig = 0;
        while (sigwait(&ss, &sig) == 0 && sig == SIGHUP)
                log_info("engine: SIGHUP: nothing to reload");
        log_info("engine: %s: shutting down", strsignal(sig));
        listeners_close();
        en.http = NULL;
        if (!en.cfg.live_restore)
                engine_containers_stop_all(&en);
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
        engine_volumes_free(&en);
        engine_events_free(&en);
        rpc_client_close(en.sup);
        free(en.host);
        log_close();
        return 0;
}

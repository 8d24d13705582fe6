/* The HTTP layer (see http.h). libmicrohttpd parses requests and runs one
 * thread per connection; this file adds Docker's version prefix, routing,
 * body collection, the reply shapes the Docker API uses, and TLS with
 * client certificates in front of libmicrohttpd for TCP. */
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "cleanup.h"
#include "log.h"

struct http_server {
        struct engine *engine;
        struct MHD_Daemon *mhd;
        const struct http_route *routes;
        size_t n_routes;
        const char *tmpdir;
        /* TLS (see "TLS in front of libmicrohttpd"); NULL: plain */
        const struct http_tls *tls;
        int listen_fd;                  /* accepted by the acceptor thread */
        int stop_fd;                    /* an eventfd that stops it */
        pthread_t acceptor;
        pthread_mutex_t lock;           /* conns and n_conns */
        pthread_cond_t idle;            /* signalled when n_conns drops to 0 */
        struct tls_conn *conns;
        unsigned n_conns;
};

/* ---- TLS ---- */

struct http_tls {
        gnutls_certificate_credentials_t cred; /* the server's pair and the clients' CA; read-only once made */
        gnutls_priority_t prio;
};

/* Only what dockerd offers by default: TLS 1.2 and 1.3. */
#define HTTP_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

static void pem_free(char *pem)
{
        if (pem) {
                explicit_bzero(pem, strlen(pem));
                free(pem);
        }
}

void http_tls_free(struct http_tls *t)
{
        if (!t)
                return;
        if (t->cred)
                gnutls_certificate_free_credentials(t->cred);
        if (t->prio)
                gnutls_priority_deinit(t->prio);
        free(t);
}

/* A whole PEM file (at most 1 MiB), NUL-terminated. */
static int pem_read(const char *what, const char *path, char **ret, char *err, size_t errlen)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
                int e = errno;
                snprintf(err, errlen, "%s \"%s\": %s", what, path, strerror(e));
                return -e;
        }
        if (!S_ISREG(st.st_mode) || st.st_size > (1 << 20)) {
                snprintf(err, errlen, "%s \"%s\": %s", what, path,
                         S_ISREG(st.st_mode) ? "larger than 1 MiB: not a PEM file" : "not a regular file");
                return -EINVAL;
        }
        char *buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        size_t n = 0;
        while (n < (size_t) st.st_size) {
                ssize_t k = read(fd, buf + n, (size_t) st.st_size - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        int e = k < 0 ? errno : EIO;
                        snprintf(err, errlen, "%s \"%s\": reading: %s", what, path, strerror(e));
                        free(buf);
                        return -e;
                }
                n += (size_t) k;
        }
        buf[n] = '\0';
        if (memchr(buf, '\0', n) || !strstr(buf, "-----BEGIN ")) {
                snprintf(err, errlen, "%s \"%s\": not a PEM file (no \"-----BEGIN\" line)", what, path);
                pem_free(buf);
                return -EINVAL;
        }
        *ret = buf;
        return 0;
}

static gnutls_datum_t datum(const char *pem)
{
        return (gnutls_datum_t) { (unsigned char *) pem, (unsigned) strlen(pem) };
}

/* The certificates in pem: at least one, each one that parses; warns of
 * an expired first certificate (the CA's or the server's own). */
static int pem_check_certs(const char *what, const char *path, const char *pem, char *err, size_t errlen)
{
        gnutls_x509_crt_t *list = NULL;
        unsigned n = 0;
        gnutls_datum_t d = datum(pem);
        int r = gnutls_x509_crt_list_import2(&list, &n, &d, GNUTLS_X509_FMT_PEM, 0);
        if (r < 0 || n == 0) {
                snprintf(err, errlen, "%s \"%s\": no valid PEM certificate: %s", what, path,
                         r < 0 ? gnutls_strerror(r) : "none found");
                return -EINVAL;
        }
        time_t until = gnutls_x509_crt_get_expiration_time(list[0]);
        if (until != (time_t) -1 && until < time(NULL))
                log_warn("engine: %s \"%s\": the certificate has expired: TLS clients will refuse it", what, path);
        for (unsigned i = 0; i < n; i++)
                gnutls_x509_crt_deinit(list[i]);
        gnutls_free(list);
        return 0;
}

int http_tls_load(const char *ca_path, const char *cert_path, const char *key_path, struct http_tls **ret,
                  char *err, size_t errlen)
{
        if (!ca_path || !cert_path || !key_path) {
                snprintf(err, errlen, "--tlsverify needs --tlscacert, --tlscert and --tlskey (missing: %s)",
                         !ca_path ? "tlscacert" : !cert_path ? "tlscert" : "tlskey");
                return -EINVAL;
        }
        struct http_tls *t = calloc(1, sizeof(*t));
        char *ca = NULL, *cert = NULL, *key = NULL;
        if (!t)
                return -ENOMEM;
        int r;
        if ((r = pem_read("tlscacert", ca_path, &ca, err, errlen)) < 0 ||
            (r = pem_read("tlscert", cert_path, &cert, err, errlen)) < 0 ||
            (r = pem_read("tlskey", key_path, &key, err, errlen)) < 0 ||
            (r = pem_check_certs("tlscacert", ca_path, ca, err, errlen)) < 0 ||
            (r = pem_check_certs("tlscert", cert_path, cert, err, errlen)) < 0)
                goto out;

        gnutls_x509_privkey_t pk;
        r = gnutls_x509_privkey_init(&pk);
        if (r < 0) {
                snprintf(err, errlen, "gnutls: %s", gnutls_strerror(r));
                r = -ENOMEM;
                goto out;
        }
        gnutls_datum_t kd = datum(key), cd = datum(cert), ad = datum(ca);
        r = gnutls_x509_privkey_import2(pk, &kd, GNUTLS_X509_FMT_PEM, NULL, 0);
        gnutls_x509_privkey_deinit(pk);
        if (r < 0) {
                snprintf(err, errlen, "tlskey \"%s\": not a usable PEM private key: %s%s", key_path,
                         gnutls_strerror(r),
                         r == GNUTLS_E_DECRYPTION_FAILED ? " (encrypted keys are not supported)" : "");
                r = -EINVAL;
                goto out;
        }
        if ((r = gnutls_certificate_allocate_credentials(&t->cred)) < 0 ||
            (r = gnutls_priority_init(&t->prio, HTTP_TLS_PRIORITIES, NULL)) < 0) {
                snprintf(err, errlen, "gnutls: %s", gnutls_strerror(r));
                r = -ENOMEM;
                goto out;
        }
        r = gnutls_certificate_set_x509_key_mem2(t->cred, &cd, &kd, GNUTLS_X509_FMT_PEM, NULL, 0);
        if (r < 0) {
                if (r == GNUTLS_E_CERTIFICATE_KEY_MISMATCH)
                        snprintf(err, errlen, "tlscert \"%s\" and tlskey \"%s\" do not match: the key is not "
                                              "the certificate's", cert_path, key_path);
                else
                        snprintf(err, errlen, "tlscert \"%s\" with tlskey \"%s\": %s", cert_path, key_path,
                                 gnutls_strerror(r));
                r = -EINVAL;
                goto out;
        }
        r = gnutls_certificate_set_x509_trust_mem(t->cred, &ad, GNUTLS_X509_FMT_PEM);
        if (r <= 0) {
                snprintf(err, errlen, "tlscacert \"%s\": no CA certificate could be loaded%s%s", ca_path,
                         r < 0 ? ": " : "", r < 0 ? gnutls_strerror(r) : "");
                r = -EINVAL;
                goto out;
        }
        *ret = TAKE_PTR(t);
        r = 0;
out:
        pem_free(ca);
        pem_free(cert);
        pem_free(key);
        http_tls_free(t);
        return r;
}

/* ---- TLS in front of libmicrohttpd ----
 *
 * A tcp:// listener is served by an accept thread of ours: each client
 * gets a thread that does the TLS handshake (a client certificate is
 * required and verified against the CA, so a client without one fails the
 * handshake as with dockerd), then hands one end of a socketpair to
 * libmicrohttpd (MHD_add_connection: the same thread per connection as on
 * the unix socket) and relays between the two, with a second thread for
 * the other direction. libmicrohttpd's own TLS (MHD_USE_TLS) is not used:
 * for hijacked connections it relays through a socketpair too, but it
 * does not pass the client's half-close on, and `docker run -i` ends
 * stdin with one (CloseWrite). Here the end of the client's input is a
 * shutdown(SHUT_WR) of the socketpair, as on the unix socket. */

struct tls_conn {
        struct http_server *s;
        gnutls_session_t sess;
        int tcp;                        /* the client's socket */
        int app;                        /* our end of the socketpair; -1 until made */
        struct sockaddr_storage peer;
        socklen_t peer_len;
        char name[INET6_ADDRSTRLEN + 8];
        struct tls_conn *prev, *next;   /* s->conns, under s->lock */
};

/* Clients must present a certificate for client authentication. */
static gnutls_typed_vdata_st tls_client_purpose = {
        .type = GNUTLS_DT_KEY_PURPOSE_OID,
        .data = (unsigned char *) GNUTLS_KP_TLS_WWW_CLIENT,
};

static int write_all(int fd, const char *buf, size_t n)
{
        while (n > 0) {
                ssize_t k = write(fd, buf, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? -errno : -EIO;
                buf += k, n -= (size_t) k;
        }
        return 0;
}

static int tls_send_all(gnutls_session_t sess, const char *buf, size_t n)
{
        while (n > 0) {
                ssize_t k = gnutls_record_send(sess, buf, n);
                if (k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED)
                        continue;
                if (k <= 0)
                        return -EIO;
                buf += k, n -= (size_t) k;
        }
        return 0;
}

/* libmicrohttpd → the client, until libmicrohttpd (or the hijacked
 * connection's handler) closes its end. */
static void *tls_out_thread(void *arg)
{
        struct tls_conn *c = arg;
        char buf[16384];
        for (;;) {
                ssize_t n = read(c->app, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                if (tls_send_all(c->sess, buf, (size_t) n) < 0) {
                        /* the client is gone: so is the connection */
                        shutdown(c->app, SHUT_RDWR);
                        break;
                }
        }
        (void) gnutls_bye(c->sess, GNUTLS_SHUT_WR);
        /* ends the receiving thread's wait too */
        shutdown(c->tcp, SHUT_RDWR);
        return NULL;
}

static void tls_conn_free(struct tls_conn *c)
{
        struct http_server *s = c->s;
        pthread_mutex_lock(&s->lock);
        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        if (--s->n_conns == 0)
                pthread_cond_broadcast(&s->idle);
        pthread_mutex_unlock(&s->lock);
        gnutls_deinit(c->sess);
        close(c->tcp);
        if (c->app >= 0)
                close(c->app);
        free(c);
}

/* The handshake, then the client → libmicrohttpd direction. */
static void *tls_conn_thread(void *arg)
{
        struct tls_conn *c = arg;
        struct http_server *s = c->s;
        int r;
        do
                r = gnutls_handshake(c->sess);
        while (r < 0 && !gnutls_error_is_fatal(r));
        if (r < 0) {
                log_warn("engine: TLS client %s refused: %s", c->name, gnutls_strerror(r));
                (void) gnutls_alert_send_appropriate(c->sess, r);
                /* A TLS 1.3 client has sent its request by the time the
                 * certificate is refused. Closing with those bytes unread
                 * would reset the connection, and the reset can overtake the
                 * alert: the client would tell "connection reset", not why.
                 * So the reading side is drained first (1 s, 64 KB at most). */
                shutdown(c->tcp, SHUT_WR);
                struct timeval tv = { .tv_sec = 1 };
                setsockopt(c->tcp, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                char buf[4096];
                for (size_t got = 0; got < (64u << 10);) {
                        ssize_t n = recv(c->tcp, buf, sizeof(buf), 0);
                        if (n <= 0)
                                break;
                        got += (size_t) n;
                }
                tls_conn_free(c);
                return NULL;
        }
        gnutls_handshake_set_timeout(c->sess, 0);

        int sp[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
                log_errno(LOG_LEVEL_WARN, errno, "engine: a socketpair for TLS client %s", c->name);
                tls_conn_free(c);
                return NULL;
        }
        pthread_mutex_lock(&s->lock);
        c->app = sp[0];
        pthread_mutex_unlock(&s->lock);
        /* libmicrohttpd closes sp[1], also when it fails */
        if (MHD_add_connection(s->mhd, sp[1], (const struct sockaddr *) &c->peer, c->peer_len) != MHD_YES) {
                log_errno(LOG_LEVEL_WARN, errno, "engine: serving TLS client %s", c->name);
                tls_conn_free(c);
                return NULL;
        }
        pthread_t out;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 128u << 10);
        r = pthread_create(&out, &a, tls_out_thread, c);
        pthread_attr_destroy(&a);
        if (r != 0) {
                log_warn("engine: no thread for TLS client %s", c->name);
                shutdown(c->app, SHUT_RDWR);
                tls_conn_free(c);
                return NULL;
        }

        char buf[16384];
        bool eof = false;
        for (;;) {
                ssize_t n = gnutls_record_recv(c->sess, buf, sizeof(buf));
                if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
                        continue;
                /* close_notify, or a TCP half-close without it (Go's
                 * CloseWrite on a TLS connection: the end of stdin) */
                if (n == 0 || n == GNUTLS_E_PREMATURE_TERMINATION) {
                        eof = true;
                        break;
                }
                if (n < 0 || write_all(c->app, buf, (size_t) n) < 0)
                        break;
        }
        shutdown(c->app, eof ? SHUT_WR : SHUT_RDWR);
        pthread_join(out, NULL);
        tls_conn_free(c);
        return NULL;
}

static void tls_conn_start(struct http_server *s, int fd, const struct sockaddr_storage *peer, socklen_t len)
{
        struct tls_conn *c = calloc(1, sizeof(*c));
        if (!c) {
                close(fd);
                return;
        }
        c->s = s;
        c->tcp = fd;
        c->app = -1;
        c->peer = *peer;
        c->peer_len = len;
        char host[INET6_ADDRSTRLEN], port[8];
        if (getnameinfo((const struct sockaddr *) peer, len, host, sizeof(host), port, sizeof(port),
                        NI_NUMERICHOST | NI_NUMERICSERV) == 0)
                snprintf(c->name, sizeof(c->name), "%s:%s", host, port);
        else
                snprintf(c->name, sizeof(c->name), "?");
        int one = 1;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

        int r = gnutls_init(&c->sess, GNUTLS_SERVER | GNUTLS_NO_SIGNAL);
        if (r < 0) {
                log_warn("engine: TLS client %s: %s", c->name, gnutls_strerror(r));
                close(fd);
                free(c);
                return;
        }
        if ((r = gnutls_priority_set(c->sess, s->tls->prio)) < 0 ||
            (r = gnutls_credentials_set(c->sess, GNUTLS_CRD_CERTIFICATE, s->tls->cred)) < 0) {
                log_warn("engine: TLS client %s: %s", c->name, gnutls_strerror(r));
                gnutls_deinit(c->sess);
                close(fd);
                free(c);
                return;
        }
        gnutls_certificate_server_set_request(c->sess, GNUTLS_CERT_REQUIRE);
        gnutls_session_set_verify_cert2(c->sess, &tls_client_purpose, 1, 0);
        gnutls_transport_set_int(c->sess, fd);
        gnutls_handshake_set_timeout(c->sess, 30 * 1000);

        pthread_mutex_lock(&s->lock);
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        pthread_mutex_unlock(&s->lock);

        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&a, 256u << 10);
        r = pthread_create(&t, &a, tls_conn_thread, c);
        pthread_attr_destroy(&a);
        if (r != 0) {
                log_warn("engine: no thread for TLS client %s", c->name);
                tls_conn_free(c);
        }
}

static void *tls_accept_thread(void *arg)
{
        struct http_server *s = arg;
        for (;;) {
                struct pollfd p[2] = { { s->listen_fd, POLLIN, 0 }, { s->stop_fd, POLLIN, 0 } };
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        log_errno(LOG_LEVEL_ERROR, errno, "engine: waiting for TLS clients");
                        break;
                }
                if (p[1].revents)
                        break;
                if (!p[0].revents)
                        continue;
                struct sockaddr_storage peer;
                socklen_t len = sizeof(peer);
                int fd = accept4(s->listen_fd, (struct sockaddr *) &peer, &len, SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                                log_errno(LOG_LEVEL_WARN, errno, "engine: accepting a TLS client");
                                usleep(100 * 1000);
                        }
                        continue;
                }
                tls_conn_start(s, fd, &peer, len);
        }
        return NULL;
}

/* ---- requests ---- */

static void request_free(struct http_request *r)
{
        if (!r)
                return;
        for (size_t i = 0; i < r->n_params; i++)
                free(r->params[i]);
        free(r->body);
        free(r->header[0]);
        free(r->header[1]);
        if (r->body_fd >= 0)
                close(r->body_fd);
        free(r);
}

/* "/v1.41/containers/json" → minor 41 and the rest "/containers/json".
 * Returns 1 when there was a prefix, 0 when not, -1 when it is malformed. */
static int strip_version(const char *url, unsigned *ret_minor, const char **ret_rest)
{
        if (url[0] != '/' || url[1] != 'v' || !isdigit((unsigned char) url[2]))
                return 0;
        char *end;
        errno = 0;
        unsigned long major = strtoul(url + 2, &end, 10);
        if (*end != '.' || !isdigit((unsigned char) end[1]))
                return 0;
        unsigned long minor = strtoul(end + 1, &end, 10);
        if (errno || (*end != '/' && *end != '\0'))
                return 0;
        if (major != 1 || minor > 999)
                return -1;
        *ret_minor = (unsigned) minor;
        *ret_rest = *end ? end : "/";
        return 1;
}

static char *segment_dup(const char *s, size_t n)
{
        return strndup(s, n);
}

/* Matches path against pattern; fills r->params with the captures. */
static bool route_match(const char *pattern, const char *path, struct http_request *r)
{
        const char *psegs[16], *xsegs[64];
        size_t plen[16], xlen[64], np = 0, nx = 0;

        for (const char *p = pattern; *p;) {
                if (*p == '/')
                        p++;
                const char *e = strchrnul(p, '/');
                if (np == 16)
                        return false;
                psegs[np] = p, plen[np++] = (size_t) (e - p);
                p = e;
        }
        for (const char *p = path; *p;) {
                if (*p == '/')
                        p++;
                const char *e = strchrnul(p, '/');
                if (e == p && !*e)
                        break; /* a trailing slash */
                if (nx == 64)
                        return false;
                xsegs[nx] = p, xlen[nx++] = (size_t) (e - p);
                p = e;
        }

        size_t n_params = 0, ix = 0;
        char *params[HTTP_MAX_PARAMS];
        for (size_t ip = 0; ip < np; ip++) {
                bool star = plen[ip] == 3 && !strncmp(psegs[ip], "{*}", 3);
                bool one = plen[ip] == 2 && !strncmp(psegs[ip], "{}", 2);
                if (star) {
                        /* takes what the fixed segments after it leave */
                        size_t after = np - ip - 1;
                        if (nx < ix + 1 + after)
                                goto fail;
                        size_t take = nx - ix - after;
                        const char *s = xsegs[ix];
                        const char *e = xsegs[ix + take - 1] + xlen[ix + take - 1];
                        if (n_params == HTTP_MAX_PARAMS)
                                goto fail;
                        params[n_params++] = segment_dup(s, (size_t) (e - s));
                        ix += take;
                } else {
                        if (ix >= nx)
                                goto fail;
                        if (one) {
                                if (xlen[ix] == 0 || n_params == HTTP_MAX_PARAMS)
                                        goto fail;
                                params[n_params++] = segment_dup(xsegs[ix], xlen[ix]);
                        } else if (plen[ip] != xlen[ix] || strncmp(psegs[ip], xsegs[ix], xlen[ix])) {
                                goto fail;
                        }
                        ix++;
                }
        }
        if (ix != nx)
                goto fail;
        for (size_t i = 0; i < n_params; i++)
                r->params[i] = params[i];
        r->n_params = n_params;
        return true;
fail:
        for (size_t i = 0; i < n_params; i++)
                free(params[i]);
        return false;
}

static const struct http_route *route_find(struct http_server *s, struct http_request *r)
{
        const char *m = strcmp(r->method, "HEAD") ? r->method : "GET";
        for (size_t i = 0; i < s->n_routes; i++) {
                const struct http_route *rt = &s->routes[i];
                if (strcmp(rt->method, m) && !(strcmp(r->method, "HEAD") == 0 && strcmp(rt->method, "HEAD") == 0))
                        continue;
                if (route_match(rt->pattern, r->path, r))
                        return rt;
        }
        return NULL;
}

static enum MHD_Result body_append(struct http_server *s, struct http_request *r, const char *data, size_t len)
{
        if (r->too_large)
                return MHD_YES;
        if (r->route && (r->route->flags & HTTP_ROUTE_BODY_FILE)) {
                if (r->body_fd < 0) {
                        r->body_fd = open(s->tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
                        if (r->body_fd < 0) {
                                log_errno(LOG_LEVEL_ERROR, errno, "engine: a temporary file in %s for a request body",
                                          s->tmpdir);
                                return MHD_NO;
                        }
                }
                while (len > 0) {
                        ssize_t n = write(r->body_fd, data, len);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0) {
                                log_errno(LOG_LEVEL_ERROR, errno, "engine: writing a request body");
                                return MHD_NO;
                        }
                        data += n, len -= (size_t) n;
                }
                return MHD_YES;
        }
        if (r->body_len + len > HTTP_BODY_MAX) {
                r->too_large = true;
                free(r->body);
                r->body = NULL;
                r->body_len = 0;
                return MHD_YES;
        }
        char *b = realloc(r->body, r->body_len + len + 1);
        if (!b)
                return MHD_NO;
        memcpy(b + r->body_len, data, len);
        r->body = b;
        r->body_len += len;
        b[r->body_len] = '\0';
        return MHD_YES;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                      const char *version, const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
        struct http_server *s = cls;
        struct http_request *r = *con_cls;

        if (!r) {
                r = calloc(1, sizeof(*r));
                if (!r)
                        return MHD_NO;
                r->conn = conn;
                r->engine = s->engine;
                r->method = method;
                r->body_fd = -1;
                r->api_minor = ENGINE_API_MINOR;
                r->path = url;
                int v = strip_version(url, &r->api_minor, &r->path);
                if (v < 0)
                        r->api_minor = 0;
                r->route = route_find(s, r);
                *con_cls = r;
                return MHD_YES;
        }
        if (*upload_data_size) {
                enum MHD_Result ok = body_append(s, r, upload_data, *upload_data_size);
                *upload_data_size = 0;
                return ok;
        }
        if (r->answered)
                return MHD_YES;
        log_debug("%s %s", method, url);
        if (r->api_minor == 0)
                return http_reply_error(r, 400, "malformed API version in %s", url);
        if (r->api_minor > ENGINE_API_MINOR)
                return http_reply_error(r, 400,
                                        "client version 1.%u is too new. Maximum supported API version is %s",
                                        r->api_minor, ENGINE_API_VERSION);
        if (r->api_minor < ENGINE_API_MIN_MINOR)
                return http_reply_error(r, 400,
                                        "client version 1.%u is too old. Minimum supported API version is %s, "
                                        "please upgrade your client to a newer version",
                                        r->api_minor, ENGINE_API_MIN_VERSION);
        if (!r->route)
                return http_reply_error(r, 404, "page not found");
        if (r->too_large)
                return http_reply_error(r, 413, "request body larger than %u bytes", HTTP_BODY_MAX);
        if (r->body_fd >= 0 && lseek(r->body_fd, 0, SEEK_SET) < 0)
                return http_reply_error(r, 500, "engine: rewinding the request body: %s", strerror(errno));
        return r->route->handler(r);
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
        request_free(*con_cls);
        *con_cls = NULL;
}

int http_server_start(struct engine *engine, int listen_fd, const struct http_tls *tls,
                      const struct http_route *routes, size_t n_routes, const char *tmpdir,
                      struct http_server **ret)
{
        struct http_server *s = calloc(1, sizeof(*s));
        if (!s) {
                close(listen_fd);
                return -ENOMEM;
        }
        s->engine = engine;
        s->routes = routes;
        s->n_routes = n_routes;
        s->tmpdir = tmpdir;
        s->tls = tls;
        s->listen_fd = s->stop_fd = -1;
        unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_UPGRADE |
                         MHD_USE_ITC;
        /* with TLS, connections come from tls_conn_thread (MHD_add_connection) */
        struct MHD_OptionItem listen_opt[] = {
                { tls ? MHD_OPTION_END : MHD_OPTION_LISTEN_SOCKET, listen_fd, NULL },
                { MHD_OPTION_END, 0, NULL },
        };
        if (tls)
                flags |= MHD_USE_NO_LISTEN_SOCKET;
        s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, access_handler, s, MHD_OPTION_ARRAY, listen_opt,
                                  MHD_OPTION_NOTIFY_COMPLETED, request_completed, s,
                                  MHD_OPTION_CONNECTION_TIMEOUT, 0u,
                                  MHD_OPTION_THREAD_STACK_SIZE, (size_t) (512u << 10),
                                  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) (64u << 10), MHD_OPTION_END);
        if (!s->mhd) {
                close(listen_fd);
                free(s);
                return -EIO;
        }
        if (tls) {
                pthread_mutex_init(&s->lock, NULL);
                pthread_cond_init(&s->idle, NULL);
                s->listen_fd = listen_fd;
                int fl = fcntl(listen_fd, F_GETFL);
                s->stop_fd = eventfd(0, EFD_CLOEXEC);
                int r = s->stop_fd < 0 || fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) < 0 ? errno : 0;
                if (!r)
                        r = pthread_create(&s->acceptor, NULL, tls_accept_thread, s);
                if (r) {
                        s->tls = NULL; /* no acceptor to stop */
                        http_server_stop(s);
                        return -r;
                }
        }
        *ret = s;
        return 0;
}

void http_server_stop(struct http_server *s)
{
        if (!s)
                return;
        if (s->tls) {
                /* no new clients; the current ones are cut off, and
                 * libmicrohttpd is stopped only when no thread of ours
                 * can hand it a connection any more */
                (void) eventfd_write(s->stop_fd, 1);
                pthread_join(s->acceptor, NULL);
                pthread_mutex_lock(&s->lock);
                for (struct tls_conn *c = s->conns; c; c = c->next) {
                        shutdown(c->tcp, SHUT_RDWR);
                        if (c->app >= 0)
                                shutdown(c->app, SHUT_RDWR);
                }
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += 10;
                while (s->n_conns > 0 && pthread_cond_timedwait(&s->idle, &s->lock, &until) == 0)
                        ;
                unsigned left = s->n_conns;
                pthread_mutex_unlock(&s->lock);
                if (left > 0) {
                        log_warn("engine: %u TLS connections did not end: the server is left running", left);
                        return;
                }
        }
        MHD_stop_daemon(s->mhd);
        if (s->listen_fd >= 0) {
                close(s->listen_fd);
                pthread_mutex_destroy(&s->lock);
                pthread_cond_destroy(&s->idle);
        }
        if (s->stop_fd >= 0)
                close(s->stop_fd);
        free(s);
}

/* ---- arguments ---- */

const char *http_query(struct http_request *r, const char *key)
{
        return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

struct query_list {
        const char *key;
        json_t *out;
};

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
        struct query_list *q = cls;
        (void) kind;
        if (key && value && !strcmp(key, q->key))
                json_array_append_new(q->out, json_string(value));
        return MHD_YES;
}

json_t *http_query_list(struct http_request *r, const char *key)
{
        struct query_list q = { key, json_array() };
        MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect, &q);
        return q.out;
}

const char *http_header(struct http_request *r, const char *key)
{
        return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, key);
}

bool http_query_bool(struct http_request *r, const char *key, bool def)
{
        const char *v = http_query(r, key);
        if (!v)
                return def;
        static const char *const falses[] = { "", "0", "false", "no", "none" };
        for (size_t i = 0; i < sizeof(falses) / sizeof(falses[0]); i++)
                if (!strcasecmp(v, falses[i]))
                        return false;
        return true;
}

long long http_query_int(struct http_request *r, const char *key, long long def, bool *ok)
{
        const char *v = http_query(r, key);
        if (ok)
                *ok = true;
        if (!v || !*v)
                return def;
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || *end) {
                if (ok)
                        *ok = false;
                return def;
        }
        return n;
}

int http_body_json(struct http_request *r, bool allow_empty, json_t **ret)
{
        *ret = NULL;
        const char *p = r->body;
        while (p && isspace((unsigned char) *p))
                p++;
        if (!p || !*p) {
                if (allow_empty)
                        return 0;
                http_reply_error(r, 400, "request body is empty: a JSON object is expected");
                return -EINVAL;
        }
        json_error_t jerr;
        json_t *j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!j) {
                http_reply_error(r, 400, "invalid JSON in the request body: %s (line %d, column %d)", jerr.text,
                                 jerr.line, jerr.column);
                return -EINVAL;
        }
        if (!json_is_object(j)) {
                json_decref(j);
                http_reply_error(r, 400, "invalid JSON in the request body: an object is expected");
                return -EINVAL;
        }
        *ret = j;
        return 0;
}

/* ---- replies ---- */

static enum MHD_Result queue(struct http_request *r, unsigned status, struct MHD_Response *resp)
{
        if (!resp)
                return MHD_NO;
        MHD_add_response_header(resp, "Api-Version", ENGINE_API_VERSION);
        MHD_add_response_header(resp, "Docker-Experimental", "false");
        MHD_add_response_header(resp, "Ostype", "linux");
        MHD_add_response_header(resp, "Server", "berth/" BERTH_VERSION " (linux)");
        if (r->header[0])
                MHD_add_response_header(resp, r->header[0], r->header[1]);
        enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
        MHD_destroy_response(resp);
        r->answered = true;
        return ret;
}

int http_set_header(struct http_request *r, const char *name, const char *value)
{
        char *n = strdup(name), *v = strdup(value);
        if (!n || !v) {
                free(n);
                free(v);
                return -ENOMEM;
        }
        free(r->header[0]);
        free(r->header[1]);
        r->header[0] = n;
        r->header[1] = v;
        return 0;
}

enum MHD_Result http_reply_text(struct http_request *r, unsigned status, const char *content_type, const char *text)
{
        struct MHD_Response *resp =
                MHD_create_response_from_buffer(strlen(text), (void *) text, MHD_RESPMEM_MUST_COPY);
        if (resp && content_type)
                MHD_add_response_header(resp, "Content-Type", content_type);
        return queue(r, status, resp);
}

enum MHD_Result http_reply_json(struct http_request *r, unsigned status, json_t *body)
{
        if (!body) {
                /* a reply that could not be built (out of memory, text that
                 * is not UTF-8): still an answer */
                status = 500;
                body = json_pack("{s:s}", "message", "engine: the reply could not be encoded as JSON");
        }
        char *s = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        if (!s)
                return MHD_NO;
        size_t n = strlen(s);
        /* Docker ends JSON replies with a newline */
        char *t = realloc(s, n + 2);
        if (!t) {
                free(s);
                return MHD_NO;
        }
        t[n] = '\n', t[n + 1] = '\0';
        struct MHD_Response *resp = MHD_create_response_from_buffer(n + 1, t, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(t);
                return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type", "application/json");
        return queue(r, status, resp);
}

enum MHD_Result http_reply_error(struct http_request *r, unsigned status, const char *fmt, ...)
{
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (status >= 500)
                log_warn("%s %s: %u %s", r->method, r->path, status, msg);
        else
                log_debug("%s %s: %u %s", r->method, r->path, status, msg);
        return http_reply_json(r, status, json_pack("{s:s}", "message", msg));
}

enum MHD_Result http_reply_empty(struct http_request *r, unsigned status)
{
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *) "", MHD_RESPMEM_PERSISTENT);
        return queue(r, status, resp);
}

enum MHD_Result http_reply_fd(struct http_request *r, unsigned status, const char *content_type, int fd)
{
        struct stat st;
        if (fstat(fd, &st) < 0) {
                close(fd);
                return http_reply_error(r, 500, "engine: stat of a reply's file: %s", strerror(errno));
        }
        struct MHD_Response *resp = MHD_create_response_from_fd64((uint64_t) st.st_size, fd);
        if (!resp) {
                close(fd);
                return MHD_NO;
        }
        if (content_type)
                MHD_add_response_header(resp, "Content-Type", content_type);
        return queue(r, status, resp);
}

/* Streams */

struct stream {
        int fd;       /* the read end of the pipe */
        int conn_fd;  /* the client's socket, watched for a hang-up */
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
        struct stream *st = cls;
        for (;;) {
                struct pollfd p[2] = { { st->fd, POLLIN, 0 }, { st->conn_fd, POLLRDHUP, 0 } };
                int n = poll(p, st->conn_fd >= 0 ? 2 : 1, -1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return MHD_CONTENT_READER_END_WITH_ERROR;
                }
                if (p[0].revents) {
                        ssize_t k = read(st->fd, buf, max);
                        if (k > 0)
                                return k;
                        if (k == 0)
                                return MHD_CONTENT_READER_END_OF_STREAM;
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return MHD_CONTENT_READER_END_WITH_ERROR;
                }
                if (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR))
                        return MHD_CONTENT_READER_END_WITH_ERROR;
        }
}

static void stream_free(void *cls)
{
        struct stream *st = cls;
        close(st->fd);
        free(st);
}

enum MHD_Result http_reply_stream(struct http_request *r, unsigned status, const char *content_type, int *ret_fd)
{
        int p[2];
        *ret_fd = -1;
        if (pipe2(p, O_CLOEXEC) < 0)
                return http_reply_error(r, 500, "engine: pipe: %s", strerror(errno));
        struct stream *st = malloc(sizeof(*st));
        if (!st) {
                close(p[0]), close(p[1]);
                return MHD_NO;
        }
        st->fd = p[0];
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        st->conn_fd = ci ? ci->connect_fd : -1;
        struct MHD_Response *resp =
                MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, stream_read, st, stream_free);
        if (!resp) {
                stream_free(st);
                close(p[1]);
                return MHD_NO;
        }
        if (content_type)
                MHD_add_response_header(resp, "Content-Type", content_type);
        enum MHD_Result ret = queue(r, status, resp);
        if (ret == MHD_YES)
                *ret_fd = p[1];
        else
                close(p[1]);
        return ret;
}

/* Hijacking */

struct hijack {
        http_hijack_fn fn;
        void *ud;
        void (*free_ud)(void *ud);
        int fd;
        char *extra;
        size_t extra_len;
        struct MHD_UpgradeResponseHandle *urh;
};

static void hijack_free(struct hijack *h)
{
        if (h->free_ud)
                h->free_ud(h->ud);
        free(h->extra);
        free(h);
}

/* Waits (up to 200 ms) until the client has read everything sent so far:
 * the 101 reply's headers. A client that reads them through a buffered
 * reader and then the stream from the raw socket (docker-py does) would
 * lose stream bytes that arrived together with the headers: writing only
 * once they are read keeps them apart. SIOCOUTQ counts what the peer has
 * not read yet on a unix socket; elsewhere it may not, and the wait ends
 * at once or at the deadline. */
static void wait_headers_read(int fd)
{
        for (int i = 0; i < 200; i++) {
                int queued = 0;
                if (ioctl(fd, SIOCOUTQ, &queued) < 0 || queued == 0)
                        return;
                struct pollfd p = { fd, POLLRDHUP, 0 };
                if (poll(&p, 1, 1) > 0)
                        return; /* the client went away: nothing to protect */
        }
}

static void *hijack_thread(void *arg)
{
        struct hijack *h = arg;
        int fl = fcntl(h->fd, F_GETFL);
        if (fl >= 0)
                (void) fcntl(h->fd, F_SETFL, fl & ~O_NONBLOCK);
        wait_headers_read(h->fd);
        h->fn(h->fd, h->extra, h->extra_len, h->ud);
        /* the client sees the end now, not when libmicrohttpd's
         * connection thread next looks at the closed handle */
        shutdown(h->fd, SHUT_RDWR);
        MHD_upgrade_action(h->urh, MHD_UPGRADE_ACTION_CLOSE);
        hijack_free(h);
        return NULL;
}

static void upgrade_cb(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
                       size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
        struct hijack *h = cls;
        h->fd = sock;
        h->urh = urh;
        if (extra_in_size && (h->extra = malloc(extra_in_size))) {
                memcpy(h->extra, extra_in, extra_in_size);
                h->extra_len = extra_in_size;
        }
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&a, 256u << 10);
        if (pthread_create(&t, &a, hijack_thread, h) != 0) {
                log_error("engine: no thread for a hijacked connection");
                MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
                hijack_free(h);
        }
        pthread_attr_destroy(&a);
}

enum MHD_Result http_hijack(struct http_request *r, const char *content_type, http_hijack_fn fn, void *ud,
                            void (*free_ud)(void *ud))
{
        struct hijack *h = calloc(1, sizeof(*h));
        if (!h) {
                if (free_ud)
                        free_ud(ud);
                return MHD_NO;
        }
        h->fn = fn;
        h->ud = ud;
        h->free_ud = free_ud;
        h->fd = -1;
        struct MHD_Response *resp = MHD_create_response_for_upgrade(upgrade_cb, h);
        if (!resp) {
                hijack_free(h);
                return MHD_NO;
        }
        MHD_add_response_header(resp, "Upgrade", "tcp");
        MHD_add_response_header(resp, "Content-Type", content_type);
        return queue(r, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
}

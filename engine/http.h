/* The engine's HTTP layer over libmicrohttpd: one thread per connection
 * (so a handler may block on the supervisor), routes with {captures},
 * Docker's version prefix (/v1.41/...), JSON bodies with a size limit,
 * JSON and error replies, streamed replies fed through a pipe, and
 * connection hijacking (Upgrade: tcp → 101) for attach and exec. */
#pragma once

#include <jansson.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

/* The API versions served: the newest (what /_ping and /version report)
 * and the oldest accepted in a path prefix. */
#define ENGINE_API_VERSION "1.41"
#define ENGINE_API_MAJOR 1
#define ENGINE_API_MINOR 41
#define ENGINE_API_MIN_VERSION "1.12"
#define ENGINE_API_MIN_MINOR 12

/* Bodies above this are refused with 413, except for routes that take a
 * stream (HTTP_ROUTE_BODY_FILE), whose body goes to a temporary file. */
#define HTTP_BODY_MAX (4u << 20)

struct engine;
struct http_request;

typedef enum MHD_Result (*http_handler_fn)(struct http_request *r);

enum {
        HTTP_ROUTE_BODY_FILE = 1 << 0, /* the body is written to a temporary file (body_fd) */
};

struct http_route {
        const char *method;   /* "GET", "POST", ...; "HEAD" is served by a GET route too */
        const char *pattern;  /* "/containers/{}/json"; "{*}" takes one or more segments */
        http_handler_fn handler;
        int flags;
};

#define HTTP_MAX_PARAMS 4

struct http_request {
        struct MHD_Connection *conn;
        struct engine *engine;
        const char *method;
        const char *path;                 /* the URL's path without the /vX.Y prefix */
        unsigned api_minor;               /* the version asked for (1.x), or ours */
        char *params[HTTP_MAX_PARAMS];    /* the route's captures, URL-decoded */
        size_t n_params;
        char *body;                       /* NUL-terminated; NULL when there was none */
        size_t body_len;
        int body_fd;                      /* HTTP_ROUTE_BODY_FILE: the body, at offset 0; else -1 */
        const struct http_route *route;
        bool too_large;
        bool answered;
        char *header[2];                  /* http_set_header: one more header for the reply */
};

struct http_server;

/* TLS with client certificates, as dockerd's --tlsverify: the server's
 * certificate (chain) and key, and the CA that must have signed every
 * client's certificate. Loaded from PEM files and checked (each file
 * parses, the key matches the certificate) by http_tls_load; err names the
 * file and the cause. */
struct http_tls;
int http_tls_load(const char *ca_path, const char *cert_path, const char *key_path, struct http_tls **ret,
                  char *err, size_t errlen);
void http_tls_free(struct http_tls *t);

/* Serves routes on the listening socket fd (taken over). With tls (which
 * must outlive the server), clients must complete a TLS handshake with a
 * certificate the CA verifies (for client authentication); the HTTP
 * behind it, hijacking included, is the same as without. Bodies of
 * HTTP_ROUTE_BODY_FILE routes go to unnamed files in tmpdir (which must
 * outlive the server). */
int http_server_start(struct engine *engine, int listen_fd, const struct http_tls *tls,
                      const struct http_route *routes, size_t n_routes, const char *tmpdir,
                      struct http_server **ret);
void http_server_stop(struct http_server *s);

/* A query argument (NULL when absent), as a bool (Docker's clients send
 * 1/0 and True/False: "", "0", "false", "no", "none" are false), as an
 * integer (def when absent; -EINVAL in *ok when not a number). */
const char *http_query(struct http_request *r, const char *key);
/* Every value of a query argument given more than once (?k=a&k=b), as a
 * JSON array of strings. */
json_t *http_query_list(struct http_request *r, const char *key);
bool http_query_bool(struct http_request *r, const char *key, bool def);
long long http_query_int(struct http_request *r, const char *key, long long def, bool *ok);
const char *http_header(struct http_request *r, const char *key);

/* The body as JSON: an object (or, with allow_empty, NULL for an empty
 * body). Answers 400 itself and returns -EINVAL when it is not. */
int http_body_json(struct http_request *r, bool allow_empty, json_t **ret);

/* Replies. Each queues the response and returns what the handler returns. */
enum MHD_Result http_reply_json(struct http_request *r, unsigned status, json_t *body /* stolen */);
enum MHD_Result http_reply_error(struct http_request *r, unsigned status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
enum MHD_Result http_reply_empty(struct http_request *r, unsigned status);
enum MHD_Result http_reply_text(struct http_request *r, unsigned status, const char *content_type, const char *text);

/* A reply of the whole file fd (taken over; its size known). */
enum MHD_Result http_reply_fd(struct http_request *r, unsigned status, const char *content_type, int fd);

/* A streamed reply (chunked): the handler gets the write end of a pipe in
 * *ret_fd and hands it to a producer (a thread) that writes the body and
 * closes it; the reply ends at EOF, and the producer gets EPIPE when the
 * client went away. content_type may be NULL (no Content-Type). */
enum MHD_Result http_reply_stream(struct http_request *r, unsigned status, const char *content_type, int *ret_fd);
/* One header of the handler's (name: value) that the reply will carry
 * besides the usual ones; -ENOMEM or 0. */
int http_set_header(struct http_request *r, const char *name, const char *value);

/* Hijacks the connection: answers 101 with Upgrade: tcp and the
 * content_type, then runs fn on a thread of its own with the raw socket
 * (blocking) and the bytes the client sent after its request (extra: the
 * start of stdin). fn must not close fd: it returns, and the connection is
 * closed. */
typedef void (*http_hijack_fn)(int fd, const char *extra, size_t extra_len, void *ud);
enum MHD_Result http_hijack(struct http_request *r, const char *content_type, http_hijack_fn fn, void *ud,
                            void (*free_ud)(void *ud));

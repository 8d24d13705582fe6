#include "registry-client.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cleanup.h"
#include "image-manifest.h"
#include "json-util.h"
#include "log.h"
#include "registry-auth.h"

#define ERROR_BODY_MAX (64u << 10)
#define TOKEN_BODY_MAX (1u << 20)

/* Where requests go: the registry itself, or a mirror of docker.io. Each
 * has its own authorization; auth_gen counts its changes, so that a request
 * answered 401 can tell whether another request got a new token meanwhile. */
struct endpoint {
        char *base;              /* "https://host:port/v2/<path>" */
        bool plain_http;
        char *authorization;     /* "Bearer ..." / "Basic ..." once known */
        unsigned auth_gen;
};

struct registry_client {
        struct image_ref ref;
        struct endpoint *ep;     /* mirrors first, the registry last */
        size_t n_ep, cur;        /* cur: the first endpoint not known to fail */
        bool have_creds;
        struct registry_credentials creds;
        char *identity_token, *registry_token;
        struct registry_options o;
        CURL *h;                 /* for manifests and tokens; reused: keeps the connection alive */
};

/* One HTTP exchange. */
struct xfer {
        struct registry_client *c;
        CURL *h;
        const char *url;
        const char *post;        /* a form to POST instead of a GET */
        unsigned auth_gen;       /* of the authorization sent */
        long status;
        char reason[64];
        char *content_type, *www_auth, *docker_digest, *content_range;
        /* the body, when it is not for the sink (or is an error) */
        char *buf;
        size_t len, max;
        bool truncated;
        /* blob mode */
        const struct registry_sink *sink;
        uint64_t start;          /* the offset asked for with Range */
        uint64_t received;       /* bytes given to the sink in this exchange */
        int64_t size;
        bool decided, to_sink;
        int sink_err;
        struct berr *serr;
        /* progress of a blob */
        const struct registry_blob_events *ev;
        size_t idx;
        uint64_t reported_ms;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
        curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void registry_global_cleanup(void)
{
        curl_global_cleanup();
}

static void xfer_clear(struct xfer *x)
{
        free(x->content_type);
        free(x->www_auth);
        free(x->docker_digest);
        free(x->content_range);
        free(x->buf);
        x->content_type = x->www_auth = x->docker_digest = x->content_range = x->buf = NULL;
        x->len = 0;
        x->status = 0;
        x->reason[0] = '\0';
        x->truncated = false;
        x->decided = x->to_sink = false;
        x->received = 0;
        x->sink_err = 0;
}

/* ---------- transport choice ---------- */

static bool host_is_local(const char *domain)
{
        char host[256];
        if (domain[0] == '[') {
                snprintf(host, sizeof(host), "%.*s", (int) strcspn(domain + 1, "]"), domain + 1);
                struct in6_addr a6;
                return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
        }
        snprintf(host, sizeof(host), "%.*s", (int) strcspn(domain, ":"), domain);
        if (strcasecmp(host, "localhost") == 0)
                return true;
        struct in_addr a4;
        return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

static bool host_is_insecure(const char *domain, char *const *list)
{
        if (host_is_local(domain))
                return true;
        size_t hostlen = domain[0] == '[' ? strcspn(domain, "]") + 1 : strcspn(domain, ":");
        for (char *const *p = list; p && *p; p++) {
                if (strcasecmp(*p, domain) == 0)
                        return true;
                if (strlen(*p) == hostlen && strncasecmp(*p, domain, hostlen) == 0)
                        return true;
        }
        return false;
}

/* ---------- callbacks ---------- */

static char *header_value(const char *line, size_t n, const char *name)
{
        size_t k = strlen(name);
        if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
                return NULL;
        const char *v = line + k + 1;
        const char *end = line + n;
        while (v < end && (*v == ' ' || *v == '\t'))
                v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
                end--;
        return strndup(v, (size_t) (end - v));
}

static void set_header(char **slot, char *v)
{
        if (!v)
                return;
        free(*slot);
        *slot = v;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
        struct xfer *x = ud;
        size_t n = size * nmemb;
        if (n > 5 && strncmp(data, "HTTP/", 5) == 0) {
                /* a new response (after a redirect or a 100): forget the last one's headers */
                free(x->content_type);
                free(x->www_auth);
                free(x->docker_digest);
                free(x->content_range);
                x->content_type = x->www_auth = x->docker_digest = x->content_range = NULL;
                const char *sp = memchr(data, ' ', n);
                const char *sp2 = sp ? memchr(sp + 1, ' ', n - (size_t) (sp + 1 - data)) : NULL;
                x->reason[0] = '\0';
                if (sp2) {
                        size_t rl = n - (size_t) (sp2 + 1 - data);
                        while (rl > 0 && (sp2[rl] == '\r' || sp2[rl] == '\n'))
                                rl--;
                        snprintf(x->reason, sizeof(x->reason), "%.*s", (int) rl, sp2 + 1);
                        x->reason[strcspn(x->reason, "\r\n")] = '\0';
                }
                return n;
        }
        set_header(&x->content_type, header_value(data, n, "content-type"));
        set_header(&x->www_auth, header_value(data, n, "www-authenticate"));
        set_header(&x->docker_digest, header_value(data, n, "docker-content-digest"));
        set_header(&x->content_range, header_value(data, n, "content-range"));
        return n;
}

/* Keeps the body in memory; more than x->max stops the transfer. */
static size_t buffer_body(struct xfer *x, const char *data, size_t n)
{
        if (x->len + n > x->max) {
                x->truncated = true;
                return 0;
        }
        char *nb = realloc(x->buf, x->len + n + 1);
        if (!nb)
                return 0;
        x->buf = nb;
        memcpy(x->buf + x->len, data, n);
        x->len += n;
        x->buf[x->len] = '\0';
        return n;
}

static uint64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* "bytes 100-199/200" → 100 */
static int content_range_start(const char *v, uint64_t *ret)
{
        unsigned long long s;
        if (!v || sscanf(v, "bytes %llu-", &s) != 1)
                return -EINVAL;
        *ret = s;
        return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
        struct xfer *x = ud;
        size_t n = size * nmemb;

        if (!x->sink)
                return buffer_body(x, data, n);
        if (!x->decided) {
                x->decided = true;
                curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
                if (x->status == 206) {
                        uint64_t s;
                        if (content_range_start(x->content_range, &s) < 0 || s != x->start) {
                                x->sink_err = berr_setx(x->serr, EPROTO,
                                                        "GET %s: 206 with Content-Range \"%s\", asked for bytes %llu-",
                                                        x->url, x->content_range ? x->content_range : "",
                                                        (unsigned long long) x->start);
                                return 0;
                        }
                        x->to_sink = true;
                        log_debug("GET %s: resuming at byte %llu (206)", x->url, (unsigned long long) x->start);
                } else if (x->status == 200) {
                        x->to_sink = true;
                        if (x->start > 0) {
                                log_debug("GET %s: the registry ignored the range; starting over", x->url);
                                int r = x->sink->reset(x->sink->ud, x->serr);
                                if (r < 0) {
                                        x->sink_err = r;
                                        return 0;
                                }
                                x->start = 0;
                        }
                }
        }
        if (!x->to_sink)
                return buffer_body(x, data, n);
        int r = x->sink->write(x->sink->ud, data, n, x->serr);
        if (r < 0) {
                x->sink_err = r;
                return 0;
        }
        x->received += n;
        if (x->ev && x->ev->progress) {
                uint64_t now = now_ms();
                if (now - x->reported_ms >= 100) {
                        x->reported_ms = now;
                        x->ev->progress(x->ev->ud, x->idx, x->start + x->received, (uint64_t) x->size);
                }
        }
        return n;
}

/* ---------- requests ---------- */

static int errno_from_curl(CURLcode rc)
{
        switch (rc) {
        case CURLE_COULDNT_CONNECT:
                return ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return EHOSTUNREACH;
        case CURLE_OPERATION_TIMEDOUT:
                return ETIMEDOUT;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CACERT_BADFILE:
                return EPROTO;
        case CURLE_UNSUPPORTED_PROTOCOL:
                return EPROTONOSUPPORT;
        default:
                return EIO;
        }
}

static bool curl_retryable(CURLcode rc)
{
        switch (rc) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_PARTIAL_FILE:
        case CURLE_GOT_NOTHING:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
                return true;
        default:
                return false;
        }
}

static bool status_retryable(long status)
{
        return status == 429 || (status >= 500 && status <= 599);
}

static int errno_from_status(long status)
{
        if (status == 404)
                return ENOENT;
        if (status == 401 || status == 403)
                return EACCES;
        if (status == 429 || status >= 500)
                return EAGAIN;
        return EPROTO;
}

/* The registry's own explanation: {"errors":[{"code":..,"message":..}]}. */
static void registry_error_text(const struct xfer *x, char *buf, size_t len)
{
        buf[0] = '\0';
        if (!x->buf || !x->len)
                return;
        json_t *j = json_loadb(x->buf, x->len, 0, NULL);
        json_t *errs = j ? json_object_get(j, "errors") : NULL;
        json_t *first = json_is_array(errs) ? json_array_get(errs, 0) : NULL;
        const char *code = json_string_value(json_object_get(first, "code"));
        const char *msg = json_string_value(json_object_get(first, "message"));
        if (code || msg)
                snprintf(buf, len, " (%s%s%s)", code ? code : "", code && msg ? ": " : "", msg ? msg : "");
        json_decref(j);
}

static int status_error(const struct xfer *x, struct berr *e, const char *hint)
{
        char detail[512];
        registry_error_text(x, detail, sizeof(detail));
        return berr_setx(e, errno_from_status(x->status), "GET %s: %ld%s%s%s%s", x->url, x->status,
                         x->reason[0] ? " " : "", x->reason, detail, hint ? hint : "");
}

static void sleep_ms(long ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* The request headers of one attempt; they must live until it ends. */
struct req_headers {
        struct curl_slist *list;
        char *accept, *authz, *range;
};

static void req_headers_done(struct req_headers *rh)
{
        curl_slist_free_all(rh->list);
        if (rh->authz)
                explicit_bzero(rh->authz, strlen(rh->authz));
        free(rh->accept);
        free(rh->authz);
        free(rh->range);
        *rh = (struct req_headers) { 0 };
}

/* Sets up h for one attempt of x: GET (or POST x->post) x->url, with the
 * authorization given (a header) or Basic user/password. */
static void setup_handle(struct registry_client *c, CURL *h, bool plain_http, struct xfer *x, const char *accept,
                         const char *authorization, const char *user, const char *password, struct req_headers *rh)
{
        x->h = h;
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, x->url);
        curl_easy_setopt(h, CURLOPT_PRIVATE, x);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, plain_http ? "http,https" : "https");
        curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, plain_http ? "http,https" : "https");
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->o.connect_timeout_ms);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->o.stall_timeout_s);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "berth/" BERTH_VERSION);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
        if (x->post)
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, x->post);
        if (accept && asprintf(&rh->accept, "Accept: %s", accept) >= 0)
                rh->list = curl_slist_append(rh->list, rh->accept);
        /* A custom Authorization header is not sent on to another host
         * after a redirect (blob storage), which is what we want. */
        if (authorization && asprintf(&rh->authz, "Authorization: %s", authorization) >= 0)
                rh->list = curl_slist_append(rh->list, rh->authz);
        if (x->sink && x->start > 0 &&
            asprintf(&rh->range, "Range: bytes=%llu-", (unsigned long long) x->start) >= 0)
                rh->list = curl_slist_append(rh->list, rh->range);
        if (rh->list)
                curl_easy_setopt(h, CURLOPT_HTTPHEADER, rh->list);
        if (user) {
                curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
                curl_easy_setopt(h, CURLOPT_USERNAME, user);
                curl_easy_setopt(h, CURLOPT_PASSWORD, password);
        }
}

/* After an attempt ended with rc: the status, when a response arrived. */
static void attempt_ended(struct xfer *x, CURLcode rc)
{
        if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && !x->sink_err && x->truncated))
                curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
}

/* One blocking attempt on the client's own handle. */
static CURLcode perform(struct registry_client *c, bool plain_http, struct xfer *x, const char *accept,
                        const char *authorization, const char *user, const char *password)
{
        struct req_headers rh = { 0 };
        setup_handle(c, c->h, plain_http, x, accept, authorization, user, password, &rh);
        CURLcode rc = curl_easy_perform(c->h);
        req_headers_done(&rh);
        attempt_ended(x, rc);
        return rc;
}

static int url_escape(CURL *h, const char *s, char **ret)
{
        char *v = curl_easy_escape(h, s, 0);
        if (!v)
                return -ENOMEM;
        *ret = strdup(v);
        curl_free(v);
        return *ret ? 0 : -ENOMEM;
}

static int set_authorization(struct endpoint *ep, const char *scheme, const char *value, struct berr *e)
{
        char *v = NULL;
        if (asprintf(&v, "%s %s", scheme, value) < 0)
                return berr_set(e, ENOMEM, "auth");
        if (ep->authorization)
                explicit_bzero(ep->authorization, strlen(ep->authorization));
        free(ep->authorization);
        ep->authorization = v;
        ep->auth_gen++;
        return 0;
}

/* The Bearer flow: ask the challenge's realm for a token. With an identity
 * token, that is an OAuth2 refresh (POST grant_type=refresh_token), as
 * Docker does; else a GET, with Basic credentials when there are any. */
static int fetch_token(struct registry_client *c, struct endpoint *ep, const struct registry_challenge *ch,
                       const char *for_url, struct berr *e)
{
        _cleanup_free_ char *scope_default = NULL, *svc = NULL, *scope = NULL, *url = NULL, *form = NULL,
                            *refresh = NULL;
        struct xfer x = { .c = c, .max = TOKEN_BODY_MAX };
        int r;

        /* a client without a repository (registry_check_auth) asks for
         * no scope, as docker login does */
        if (c->ref.path[0] && asprintf(&scope_default, "repository:%s:pull", c->ref.path) < 0)
                return berr_set(e, ENOMEM, "token");
        const char *want = ch->scope ? ch->scope : scope_default;
        if ((want && url_escape(c->h, want, &scope) < 0) || (ch->service && url_escape(c->h, ch->service, &svc) < 0))
                return berr_set(e, ENOMEM, "token");
        /* the query (or form) after the realm: "scope=..&service=.." */
        _cleanup_free_ char *params = NULL;
        if (asprintf(&params, "%s%s%s%s%s", scope ? "scope=" : "", scope ? scope : "", scope && svc ? "&" : "",
                     svc ? "service=" : "", svc ? svc : "") < 0)
                return berr_set(e, ENOMEM, "token");
        if (c->identity_token) {
                if (url_escape(c->h, c->identity_token, &refresh) < 0 ||
                    asprintf(&form, "grant_type=refresh_token&client_id=berth&refresh_token=%s%s%s", refresh,
                             *params ? "&" : "", params) < 0)
                        return berr_set(e, ENOMEM, "token");
                url = strdup(ch->realm);
                x.post = form;
        } else if (asprintf(&url, "%s%s%s", ch->realm, !*params ? "" : strchr(ch->realm, '?') ? "&" : "?",
                            params) < 0) {
                url = NULL;
        }
        if (!url)
                return berr_set(e, ENOMEM, "token");
        x.url = url;
        log_debug("GET %s: asking %s for a token", for_url, url);
        bool basic = c->have_creds && !c->identity_token;
        CURLcode rc = perform(c, ep->plain_http, &x, "application/json", NULL, basic ? c->creds.username : NULL,
                              basic ? c->creds.password : NULL);
        if (form)
                explicit_bzero(form, strlen(form));
        if (rc != CURLE_OK) {
                r = berr_setx(e, errno_from_curl(rc), "token request %s %s: %s", x.post ? "POST" : "GET", url,
                              curl_easy_strerror(rc));
                goto out;
        }
        if (x.status != 200) {
                r = status_error(&x, e, c->have_creds || c->identity_token
                                                ? ": the credentials were refused"
                                                : ": no credentials for this registry (--auth-config)");
                goto out;
        }
        json_t *j = json_loadb(x.buf ? x.buf : "", x.len, 0, NULL);
        const char *tok = json_string_value(json_object_get(j, "token"));
        if (!tok || !*tok)
                tok = json_string_value(json_object_get(j, "access_token"));
        if (!tok || !*tok)
                r = berr_setx(e, EPROTO, "token request %s: no token in the answer", url);
        else
                r = set_authorization(ep, "Bearer", tok, e);
        json_decref(j);
out:
        xfer_clear(&x);
        return r;
}

static int basic_authorization(struct registry_client *c, struct endpoint *ep, struct berr *e)
{
        _cleanup_free_ char *plain = NULL;
        if (asprintf(&plain, "%s:%s", c->creds.username, c->creds.password) < 0)
                return berr_set(e, ENOMEM, "auth");
        size_t n = strlen(plain);
        _cleanup_free_ char *v = malloc(4 * ((n + 2) / 3) + 1);
        if (!v) {
                explicit_bzero(plain, n);
                return berr_set(e, ENOMEM, "auth");
        }
        EVP_EncodeBlock((unsigned char *) v, (const unsigned char *) plain, (int) n);
        explicit_bzero(plain, n);
        int r = set_authorization(ep, "Basic", v, e);
        explicit_bzero(v, strlen(v));
        return r;
}

/* Answers a 401: gets a token or sets Basic credentials. */
static int authenticate(struct registry_client *c, struct endpoint *ep, const struct xfer *x, struct berr *e)
{
        struct registry_challenge ch = { 0 };
        if (c->registry_token)
                return status_error(x, e, ": the registry token was refused");
        if (!x->www_auth)
                return status_error(x, e, ": no WWW-Authenticate challenge");
        int r = registry_challenge_parse(x->www_auth, &ch, e);
        if (r < 0)
                return berr_prefix(e, "GET %s: 401", x->url);
        if (registry_challenge_is_bearer(&ch)) {
                r = fetch_token(c, ep, &ch, x->url, e);
        } else if (!c->have_creds) {
                r = status_error(x, e, ": the registry wants credentials and none are configured for it (--auth-config)");
        } else {
                r = basic_authorization(c, ep, e);
        }
        registry_challenge_done(&ch);
        return r;
}

/* Retry state of one request. */
struct attempts {
        int n;                   /* retries made */
        long backoff_ms;         /* before the next one */
        bool authenticated;
};

enum verdict {
        VERDICT_DONE,            /* a good response */
        VERDICT_AGAIN,           /* go again now (new authorization, or a range restart) */
        VERDICT_RETRY,           /* go again after the backoff */
};

/* What to do after an attempt that ended with rc: a verdict, or -errno
 * with e set. For a blob, the sink has been written to already. */
static int judge(struct registry_client *c, struct endpoint *ep, struct xfer *x, CURLcode rc, struct attempts *a,
                 struct berr *e)
{
        if (x->sink_err)
                return x->sink_err;
        if (rc == CURLE_WRITE_ERROR && x->truncated)
                rc = CURLE_OK; /* a body over the limit: judged below */
        if (rc != CURLE_OK) {
                if (!curl_retryable(rc) || a->n >= c->o.retries)
                        return berr_setx(e, errno_from_curl(rc), "GET %s: %s%s", x->url, curl_easy_strerror(rc),
                                         a->n ? " (after retries)" : "");
                log_debug("GET %s: %s; retrying", x->url, curl_easy_strerror(rc));
                return VERDICT_RETRY;
        }
        if (x->status == 401 && !a->authenticated) {
                a->authenticated = true;
                if (x->auth_gen != ep->auth_gen)
                        return VERDICT_AGAIN; /* another request got new credentials meanwhile */
                int r = authenticate(c, ep, x, e);
                return r < 0 ? r : VERDICT_AGAIN;
        }
        if (x->status == 416 && x->sink && x->start > 0) {
                /* our partial data does not fit the blob: start over */
                int r = x->sink->reset(x->sink->ud, e);
                return r < 0 ? r : VERDICT_AGAIN;
        }
        if (status_retryable(x->status) && a->n < c->o.retries) {
                log_debug("GET %s: %ld; retrying", x->url, x->status);
                return VERDICT_RETRY;
        }
        if (x->status == 401)
                return status_error(x, e, ": authentication failed");
        if (x->status != 200 && !(x->sink && x->status == 206))
                return status_error(x, e, NULL);
        if (x->sink && x->size >= 0 && x->start + x->received < (uint64_t) x->size) {
                /* the connection ended early without an error */
                if (a->n >= c->o.retries)
                        return berr_setx(e, EIO, "GET %s: got %llu of %lld bytes", x->url,
                                         (unsigned long long) (x->start + x->received), (long long) x->size);
                return VERDICT_RETRY;
        }
        return VERDICT_DONE;
}

/* A blocking GET (manifests) with authentication and retries. */
static int request(struct registry_client *c, struct endpoint *ep, struct xfer *x, const char *accept,
                   struct berr *e)
{
        struct attempts a = { .backoff_ms = c->o.backoff_ms };
        for (;;) {
                xfer_clear(x);
                x->auth_gen = ep->auth_gen;
                CURLcode rc = perform(c, ep->plain_http, x, accept, ep->authorization, NULL, NULL);
                int r = judge(c, ep, x, rc, &a, e);
                if (r < 0 || r == VERDICT_DONE)
                        return r < 0 ? r : 0;
                if (r == VERDICT_RETRY) {
                        a.n++;
                        sleep_ms(a.backoff_ms);
                        a.backoff_ms *= 2;
                }
        }
}

/* ---------- several blobs at once ---------- */

enum blob_state {
        BLOB_QUEUED,
        BLOB_RUNNING,
        BLOB_SLEEPING,           /* waiting for its backoff to pass */
        BLOB_FINISHED,
};

struct blob_xfer {
        struct xfer x;
        enum blob_state state;
        struct attempts a;
        size_t ep;
        char *url;
        CURL *h;
        struct req_headers rh;
        uint64_t wake_ms;
        struct berr err;
};

struct blob_fetch {
        struct registry_client *c;
        const struct registry_blob_request *reqs;
        const struct registry_blob_events *ev;
        struct blob_xfer *bx;
        size_t n, next, n_finished;
        unsigned busy, max;      /* running or sleeping, of at most max */
        CURLM *m;
        /* after a blob failed: nothing new starts, what runs is finished */
        bool draining;
        int r;
        struct berr err;
};

static int blob_finish(struct blob_fetch *f, struct blob_xfer *b, int r, struct berr *e)
{
        size_t i = (size_t) (b - f->bx);
        b->state = BLOB_FINISHED;
        f->busy--;
        f->n_finished++;
        if (f->ev && f->ev->done) {
                int k = f->ev->done(f->ev->ud, i, r, &b->err);
                if (r >= 0)
                        r = k;
        }
        if (r < 0)
                *e = b->err;
        return r;
}

/* Starts (or restarts) an attempt of blob b on its endpoint. */
static int blob_start(struct blob_fetch *f, struct blob_xfer *b, struct berr *e)
{
        struct registry_client *c = f->c;
        const struct registry_blob_request *q = &f->reqs[b - f->bx];
        struct endpoint *ep = &c->ep[b->ep];

        xfer_clear(&b->x);
        b->x.start = q->sink->offset(q->sink->ud);
        if (q->size >= 0 && b->x.start == (uint64_t) q->size)
                return blob_finish(f, b, 0, e); /* an earlier, interrupted download had it all */
        free(b->url);
        if (asprintf(&b->url, "%s/blobs/%s", ep->base, q->digest) < 0) {
                b->url = NULL;
                berr_set(&b->err, ENOMEM, "blob");
                return blob_finish(f, b, -ENOMEM, e);
        }
        if (!b->h && !(b->h = curl_easy_init())) {
                berr_setx(&b->err, EIO, "libcurl: cannot create a handle");
                return blob_finish(f, b, -EIO, e);
        }
        b->x.url = b->url;
        b->x.auth_gen = ep->auth_gen;
        b->x.reported_ms = now_ms();
        setup_handle(c, b->h, ep->plain_http, &b->x, NULL, ep->authorization, NULL, NULL, &b->rh);
        CURLMcode mc = curl_multi_add_handle(f->m, b->h);
        if (mc != CURLM_OK) {
                berr_setx(&b->err, EIO, "libcurl: %s", curl_multi_strerror(mc));
                return blob_finish(f, b, -EIO, e);
        }
        b->state = BLOB_RUNNING;
        if (f->ev && f->ev->progress)
                f->ev->progress(f->ev->ud, (size_t) (b - f->bx), b->x.start, (uint64_t) q->size);
        return 0;
}

/* An attempt of blob b ended with rc: judge it, then finish, go again or
 * sleep; a failure on a mirror moves on to the next endpoint. */
static int blob_ended(struct blob_fetch *f, struct blob_xfer *b, CURLcode rc, struct berr *e)
{
        struct registry_client *c = f->c;
        curl_multi_remove_handle(f->m, b->h);
        req_headers_done(&b->rh);
        attempt_ended(&b->x, rc);
        int r = judge(c, &c->ep[b->ep], &b->x, rc, &b->a, &b->err);
        if (r == VERDICT_DONE)
                return blob_finish(f, b, 0, e);
        if (r == VERDICT_AGAIN)
                return blob_start(f, b, e);
        if (r == VERDICT_RETRY) {
                b->a.n++;
                b->wake_ms = now_ms() + (uint64_t) b->a.backoff_ms;
                b->a.backoff_ms *= 2;
                b->state = BLOB_SLEEPING;
                return 0;
        }
        if (!b->x.sink_err && b->ep + 1 < c->n_ep) {
                log_debug("%s; trying the next endpoint", b->err.msg);
                c->cur = b->ep + 1 > c->cur ? b->ep + 1 : c->cur;
                b->ep++;
                b->a = (struct attempts) { .backoff_ms = c->o.backoff_ms };
                berr_clear(&b->err);
                return blob_start(f, b, e);
        }
        return blob_finish(f, b, r, e);
}

/* Starts what may start: sleepers whose time came, then queued blobs. */
static int blob_fill(struct blob_fetch *f, uint64_t now, struct berr *e)
{
        if (f->draining)
                return 0;
        for (size_t i = 0; i < f->next; i++) {
                struct blob_xfer *b = &f->bx[i];
                if (b->state == BLOB_SLEEPING && b->wake_ms <= now) {
                        int r = blob_start(f, b, e);
                        if (r < 0)
                                return r;
                }
        }
        while (f->busy < f->max && f->next < f->n) {
                struct blob_xfer *b = &f->bx[f->next++];
                b->ep = f->c->cur;
                b->a.backoff_ms = f->c->o.backoff_ms;
                f->busy++;
                int r = blob_start(f, b, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* How long to wait for sockets: until the next sleeper wakes, at most 100 ms. */
static int blob_poll_timeout(const struct blob_fetch *f, uint64_t now)
{
        uint64_t t = 100;
        for (size_t i = 0; i < f->next; i++)
                if (f->bx[i].state == BLOB_SLEEPING)
                        t = f->bx[i].wake_ms <= now ? 0 : (f->bx[i].wake_ms - now < t ? f->bx[i].wake_ms - now : t);
        return (int) t;
}

/* The first failure is the one returned. When a blob fails, the transfers
 * running then are let finish (and verified), so that they are not left
 * half done; queued and sleeping ones do not start. A cancel stops all. */
static void blob_failed(struct blob_fetch *f, int r, const struct berr *e)
{
        if (f->draining)
                return;
        f->draining = true;
        f->r = r;
        f->err = *e;
}

static unsigned blob_running(const struct blob_fetch *f)
{
        unsigned k = 0;
        for (size_t i = 0; i < f->next; i++)
                k += f->bx[i].state == BLOB_RUNNING;
        return k;
}

static int blob_fetch_run(struct blob_fetch *f, struct berr *e)
{
        int r;
        while (f->n_finished < f->n) {
                r = blob_fill(f, now_ms(), e);
                if (r < 0)
                        blob_failed(f, r, e);
                if (f->n_finished == f->n || (f->draining && blob_running(f) == 0))
                        break;
                int running;
                CURLMcode mc = curl_multi_perform(f->m, &running);
                if (mc != CURLM_OK)
                        return berr_setx(e, EIO, "libcurl: %s", curl_multi_strerror(mc));
                CURLMsg *msg;
                int left;
                while ((msg = curl_multi_info_read(f->m, &left))) {
                        if (msg->msg != CURLMSG_DONE)
                                continue;
                        struct xfer *x = NULL;
                        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &x);
                        r = blob_ended(f, (struct blob_xfer *) x, msg->data.result, e);
                        if (r < 0)
                                blob_failed(f, r, e);
                }
                if (f->ev && f->ev->cancelled && f->ev->cancelled(f->ev->ud))
                        return berr_setx(e, ECANCELED, "pull cancelled");
                if (f->draining && blob_running(f) == 0)
                        break;
                if (f->n_finished < f->n) {
                        mc = curl_multi_poll(f->m, NULL, 0, blob_poll_timeout(f, now_ms()), NULL);
                        if (mc != CURLM_OK)
                                return berr_setx(e, EIO, "libcurl: %s", curl_multi_strerror(mc));
                }
        }
        return 0;
}

int registry_fetch_blobs(struct registry_client *c, const struct registry_blob_request *reqs, size_t n,
                         unsigned max_parallel, const struct registry_blob_events *ev, struct berr *e)
{
        struct blob_fetch f = { .c = c, .reqs = reqs, .ev = ev, .n = n, .max = max_parallel ? max_parallel : 3 };
        int r;

        if (n == 0)
                return 0;
        f.bx = calloc(n, sizeof(*f.bx));
        f.m = curl_multi_init();
        if (!f.bx || !f.m) {
                r = berr_set(e, ENOMEM, "blobs");
                goto out;
        }
        for (size_t i = 0; i < n; i++)
                f.bx[i].x = (struct xfer) { .c = c, .max = ERROR_BODY_MAX, .sink = reqs[i].sink,
                                            .size = reqs[i].size, .serr = &f.bx[i].err, .ev = ev, .idx = i };
        r = blob_fetch_run(&f, e);
        if (r >= 0 && f.draining) {
                r = f.r;
                *e = f.err;
        }
out:
        for (size_t i = 0; f.bx && i < n; i++) {
                struct blob_xfer *b = &f.bx[i];
                if (b->h) {
                        if (b->state == BLOB_RUNNING)
                                curl_multi_remove_handle(f.m, b->h);
                        curl_easy_cleanup(b->h);
                }
                req_headers_done(&b->rh);
                xfer_clear(&b->x);
                free(b->url);
        }
        if (f.m)
                curl_multi_cleanup(f.m);
        free(f.bx);
        return r;
}

int registry_fetch_blob(struct registry_client *c, const char *digest, int64_t size, const struct registry_sink *sink,
                        struct berr *e)
{
        struct registry_blob_request q = { .digest = digest, .size = size, .sink = sink };
        return registry_fetch_blobs(c, &q, 1, 1, NULL, e);
}

/* ---------- public ---------- */

static int add_endpoint(struct registry_client *c, const char *url_base, bool plain_http, struct berr *e)
{
        struct endpoint *ep = &c->ep[c->n_ep];
        size_t n = strlen(url_base);
        while (n > 0 && url_base[n - 1] == '/')
                n--;
        if (asprintf(&ep->base, "%.*s/v2/%s", (int) n, url_base, c->ref.path) < 0) {
                ep->base = NULL;
                return berr_set(e, ENOMEM, "registry client");
        }
        ep->plain_http = plain_http;
        c->n_ep++;
        return 0;
}

static int add_endpoints(struct registry_client *c, struct berr *e)
{
        size_t n_mirrors = 0;
        bool hub = strcmp(c->ref.domain, "docker.io") == 0;
        for (char *const *m = c->o.mirrors; hub && m && *m; m++)
                n_mirrors++;
        c->ep = calloc(n_mirrors + 1, sizeof(*c->ep));
        if (!c->ep)
                return berr_set(e, ENOMEM, "registry client");
        for (size_t i = 0; i < n_mirrors; i++) {
                const char *m = c->o.mirrors[i];
                bool http = strncasecmp(m, "http://", 7) == 0;
                if (!http && strncasecmp(m, "https://", 8) != 0)
                        return berr_setx(e, EINVAL, "mirror \"%s\": not an http:// or https:// URL", m);
                int r = add_endpoint(c, m, http, e);
                if (r < 0)
                        return r;
        }
        _cleanup_free_ char *url = NULL;
        bool plain = host_is_insecure(c->ref.domain, c->o.insecure);
        if (asprintf(&url, "%s://%s", plain ? "http" : "https", image_ref_registry_host(&c->ref)) < 0)
                return berr_set(e, ENOMEM, "registry client");
        return add_endpoint(c, url, plain, e);
}

static int dup_opt(const char *s, char **ret, struct berr *e)
{
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 1 : berr_set(e, ENOMEM, "registry client");
}

static int setup_credentials(struct registry_client *c, struct berr *e)
{
        int r;
        if (c->o.username || c->o.password) {
                if ((r = dup_opt(c->o.username ? c->o.username : "", &c->creds.username, e)) < 0 ||
                    (r = dup_opt(c->o.password ? c->o.password : "", &c->creds.password, e)) < 0)
                        return r;
                c->have_creds = true;
        }
        if ((r = dup_opt(c->o.identity_token, &c->identity_token, e)) < 0 ||
            (r = dup_opt(c->o.registry_token, &c->registry_token, e)) < 0)
                return r;
        if (c->registry_token) {
                for (size_t i = 0; i < c->n_ep; i++)
                        if ((r = set_authorization(&c->ep[i], "Bearer", c->registry_token, e)) < 0)
                                return r;
        }
        if (c->o.auth_config && !c->have_creds && !c->identity_token && !c->registry_token) {
                r = registry_auth_lookup(c->o.auth_config, c->ref.domain, &c->creds, e);
                if (r < 0)
                        return r;
                c->have_creds = r > 0;
        }
        return 0;
}

int registry_client_new(const struct image_ref *ref, const struct registry_options *o, struct registry_client **ret,
                        struct berr *e)
{
        pthread_once(&curl_once, curl_init);
        if (curl_init_rc != CURLE_OK)
                return berr_setx(e, EIO, "libcurl: %s", curl_easy_strerror(curl_init_rc));

        struct registry_client *c = calloc(1, sizeof(*c));
        if (!c)
                return berr_set(e, ENOMEM, "registry client");
        c->ref = *ref;
        if (o)
                c->o = *o;
        if (c->o.connect_timeout_ms <= 0)
                c->o.connect_timeout_ms = 30000;
        if (c->o.stall_timeout_s <= 0)
                c->o.stall_timeout_s = 60;
        if (c->o.retries < 0)
                c->o.retries = 3;
        if (c->o.backoff_ms <= 0)
                c->o.backoff_ms = 200;
        int r = add_endpoints(c, e);
        if (r < 0)
                goto fail;
        if (!(c->h = curl_easy_init())) {
                r = berr_setx(e, EIO, "libcurl: cannot create a handle");
                goto fail;
        }
        r = setup_credentials(c, e);
        if (r < 0)
                goto fail;
        /* not kept: they belong to the caller */
        c->o.auth_config = c->o.username = c->o.password = c->o.identity_token = c->o.registry_token = NULL;
        c->o.insecure = c->o.mirrors = NULL;
        *ret = c;
        return 0;
fail:
        registry_client_free(c);
        return r;
}

static void free_secret(char *s)
{
        if (s)
                explicit_bzero(s, strlen(s));
        free(s);
}

void registry_client_free(struct registry_client *c)
{
        if (!c)
                return;
        if (c->h)
                curl_easy_cleanup(c->h);
        registry_credentials_done(&c->creds);
        free_secret(c->identity_token);
        free_secret(c->registry_token);
        for (size_t i = 0; i < c->n_ep; i++) {
                free_secret(c->ep[i].authorization);
                free(c->ep[i].base);
        }
        free(c->ep);
        free(c);
}

const char *registry_client_scheme(const struct registry_client *c)
{
        return c->ep[c->cur].plain_http ? "http" : "https";
}

/* The registry's own message of an error answer, or "". */
static void registry_error_message(const struct xfer *x, char *buf, size_t len)
{
        buf[0] = '\0';
        json_t *j = x->buf && x->len ? json_loadb(x->buf, x->len, 0, NULL) : NULL;
        json_t *errs = j ? json_object_get(j, "errors") : NULL;
        const char *msg = json_string_value(json_object_get(json_array_get(errs, 0), "message"));
        if (msg)
                snprintf(buf, len, "%s", msg);
        json_decref(j);
}

int registry_check_auth(struct registry_client *c, struct berr *e)
{
        /* the registry itself, never a mirror */
        struct endpoint *ep = &c->ep[c->n_ep - 1];
        struct xfer x = { .c = c, .url = ep->base, .max = ERROR_BODY_MAX };
        int r = request(c, ep, &x, "application/json", e);
        if (r == -EACCES && x.status == 401) {
                /* dockerd's wording: Get "<url>": unauthorized: <why> */
                char msg[256];
                bool bearer = x.www_auth && strncasecmp(x.www_auth, "Bearer", 6) == 0;
                registry_error_message(&x, msg, sizeof(msg));
                if (bearer && c->have_creds)
                        berr_prefix(e, "Get \"%s\": unauthorized: the token server refused the credentials", x.url);
                else
                        berr_setx(e, EACCES, "Get \"%s\": unauthorized: %s", x.url,
                                  !c->have_creds && !c->identity_token ? "the registry wants credentials"
                                  : msg[0]                             ? msg
                                                                       : "authentication failed");
        }
        xfer_clear(&x);
        return r;
}

static const char manifest_accept[] = MEDIA_OCI_INDEX ", " MEDIA_OCI_MANIFEST ", " MEDIA_DOCKER_LIST
                                      ", " MEDIA_DOCKER_MANIFEST;

/* One manifest GET on endpoint ep, checked. */
static int get_manifest_from(struct registry_client *c, struct endpoint *ep, const char *object, char **ret_body,
                             size_t *ret_len, char **ret_content_type, char ret_digest[CONTENT_DIGEST_MAX],
                             struct berr *e)
{
        _cleanup_free_ char *url = NULL;
        struct xfer x = { .c = c, .max = IMAGE_MANIFEST_MAX };
        char digest[CONTENT_DIGEST_MAX];
        int r;

        if (asprintf(&url, "%s/manifests/%s", ep->base, object) < 0)
                return berr_set(e, ENOMEM, "manifest");
        x.url = url;
        r = request(c, ep, &x, manifest_accept, e);
        if (r < 0)
                goto out;
        if (x.truncated) {
                r = berr_setx(e, EFBIG, "GET %s: manifest larger than %u bytes", url, IMAGE_MANIFEST_MAX);
                goto out;
        }
        if (!x.buf && !(x.buf = strdup(""))) {
                r = berr_set(e, ENOMEM, "manifest");
                goto out;
        }
        content_digest_of(x.buf, x.len, digest);
        if (strncmp(object, "sha256:", 7) == 0 && strcmp(object, digest) != 0) {
                r = berr_setx(e, EBADMSG, "GET %s: digest mismatch: the manifest's sha256 is %s; refused", url, digest);
                goto out;
        }
        if (x.docker_digest && strncmp(x.docker_digest, "sha256:", 7) == 0 && strcmp(x.docker_digest, digest) != 0) {
                r = berr_setx(e, EBADMSG, "GET %s: digest mismatch: Docker-Content-Digest %s, content %s; refused",
                              url, x.docker_digest, digest);
                goto out;
        }
        *ret_body = TAKE_PTR(x.buf);
        *ret_len = x.len;
        *ret_content_type = TAKE_PTR(x.content_type);
        memcpy(ret_digest, digest, CONTENT_DIGEST_MAX);
out:
        xfer_clear(&x);
        return r;
}

int registry_get_manifest(struct registry_client *c, const char *object, char **ret_body, size_t *ret_len,
                          char **ret_content_type, char ret_digest[CONTENT_DIGEST_MAX], struct berr *e)
{
        for (;;) {
                int r = get_manifest_from(c, &c->ep[c->cur], object, ret_body, ret_len, ret_content_type, ret_digest,
                                          e);
                if (r >= 0 || r == -ENOMEM || c->cur + 1 >= c->n_ep)
                        return r;
                /* a mirror failed: as Docker does, go on to the next endpoint */
                log_debug("%s; trying the next endpoint", e->msg);
                berr_clear(e);
                c->cur++;
        }
}

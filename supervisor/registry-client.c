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

struct registry_client {
        struct image_ref ref;
        char *base;              /* "https://host:port/v2/<path>" */
        bool plain_http;
        char *authorization;     /* "Bearer ..." / "Basic ..." once known */
        bool have_creds;
        struct registry_credentials creds;
        struct registry_options o;
        CURL *h;                 /* reused: keeps the connection alive */
};

/* One HTTP exchange. */
struct xfer {
        struct registry_client *c;
        const char *url;
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

const char *registry_client_scheme(const struct registry_client *c)
{
        return c->plain_http ? "http" : "https";
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
                curl_easy_getinfo(x->c->h, CURLINFO_RESPONSE_CODE, &x->status);
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

/* One attempt: GET url into x. Returns 0 when a response arrived (any
 * status), or the failed CURLcode. */
static CURLcode perform(struct registry_client *c, struct xfer *x, const char *accept, bool with_auth,
                        const char *user, const char *password)
{
        struct curl_slist *hdrs = NULL;
        _cleanup_free_ char *acc = NULL, *authz = NULL, *range = NULL;
        CURL *h = c->h;

        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, x->url);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, c->plain_http ? "http,https" : "https");
        curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, c->plain_http ? "http,https" : "https");
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->o.connect_timeout_ms);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->o.stall_timeout_s);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "berth/" BERTH_VERSION);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
        if (accept && asprintf(&acc, "Accept: %s", accept) >= 0)
                hdrs = curl_slist_append(hdrs, acc);
        /* A custom Authorization header is not sent on to another host
         * after a redirect (blob storage), which is what we want. */
        if (with_auth && c->authorization && asprintf(&authz, "Authorization: %s", c->authorization) >= 0)
                hdrs = curl_slist_append(hdrs, authz);
        if (x->sink && x->start > 0 && asprintf(&range, "Range: bytes=%llu-", (unsigned long long) x->start) >= 0)
                hdrs = curl_slist_append(hdrs, range);
        if (hdrs)
                curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        if (user) {
                curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
                curl_easy_setopt(h, CURLOPT_USERNAME, user);
                curl_easy_setopt(h, CURLOPT_PASSWORD, password);
        }
        CURLcode rc = curl_easy_perform(h);
        curl_slist_free_all(hdrs);
        if (authz)
                explicit_bzero(authz, strlen(authz));
        if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && !x->sink_err && x->truncated))
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->status);
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

/* The Bearer flow: ask the challenge's realm for a token. */
static int fetch_token(struct registry_client *c, const struct registry_challenge *ch, const char *for_url,
                       struct berr *e)
{
        _cleanup_free_ char *scope_default = NULL, *svc = NULL, *scope = NULL, *url = NULL;
        struct xfer x = { .c = c, .max = TOKEN_BODY_MAX };
        int r;

        if (asprintf(&scope_default, "repository:%s:pull", c->ref.path) < 0)
                return berr_set(e, ENOMEM, "token");
        if (url_escape(c->h, ch->scope ? ch->scope : scope_default, &scope) < 0 ||
            (ch->service && url_escape(c->h, ch->service, &svc) < 0))
                return berr_set(e, ENOMEM, "token");
        if (asprintf(&url, "%s%sscope=%s%s%s", ch->realm, strchr(ch->realm, '?') ? "&" : "?", scope,
                     svc ? "&service=" : "", svc ? svc : "") < 0)
                return berr_set(e, ENOMEM, "token");
        x.url = url;
        log_debug("GET %s: asking %s for a token", for_url, url);
        CURLcode rc = perform(c, &x, "application/json", false, c->have_creds ? c->creds.username : NULL,
                              c->have_creds ? c->creds.password : NULL);
        if (rc != CURLE_OK) {
                r = berr_setx(e, errno_from_curl(rc), "token request GET %s: %s", url, curl_easy_strerror(rc));
                goto out;
        }
        if (x.status != 200) {
                r = status_error(&x, e, c->have_creds ? ": the credentials were refused"
                                                       : ": no credentials for this registry (--auth-config)");
                goto out;
        }
        json_t *j = json_loadb(x.buf ? x.buf : "", x.len, 0, NULL);
        const char *tok = json_string_value(json_object_get(j, "token"));
        if (!tok || !*tok)
                tok = json_string_value(json_object_get(j, "access_token"));
        if (!tok || !*tok) {
                json_decref(j);
                r = berr_setx(e, EPROTO, "token request GET %s: no token in the answer", url);
                goto out;
        }
        free(c->authorization);
        if (asprintf(&c->authorization, "Bearer %s", tok) < 0)
                c->authorization = NULL;
        json_decref(j);
        r = c->authorization ? 0 : berr_set(e, ENOMEM, "token");
out:
        xfer_clear(&x);
        return r;
}

static int basic_authorization(struct registry_client *c, struct berr *e)
{
        _cleanup_free_ char *plain = NULL;
        if (asprintf(&plain, "%s:%s", c->creds.username, c->creds.password) < 0)
                return berr_set(e, ENOMEM, "auth");
        size_t n = strlen(plain);
        char *v = malloc(6 + 4 * ((n + 2) / 3) + 1);
        if (!v) {
                explicit_bzero(plain, n);
                return berr_set(e, ENOMEM, "auth");
        }
        memcpy(v, "Basic ", 6);
        EVP_EncodeBlock((unsigned char *) v + 6, (const unsigned char *) plain, (int) n);
        explicit_bzero(plain, n);
        free(c->authorization);
        c->authorization = v;
        return 0;
}

/* Answers a 401: gets a token or sets Basic credentials. */
static int authenticate(struct registry_client *c, const struct xfer *x, struct berr *e)
{
        struct registry_challenge ch = { 0 };
        if (!x->www_auth)
                return status_error(x, e, ": no WWW-Authenticate challenge");
        int r = registry_challenge_parse(x->www_auth, &ch, e);
        if (r < 0)
                return berr_prefix(e, "GET %s: 401", x->url);
        if (registry_challenge_is_bearer(&ch)) {
                r = fetch_token(c, &ch, x->url, e);
        } else if (!c->have_creds) {
                r = status_error(x, e, ": the registry wants credentials and none are configured for it (--auth-config)");
        } else {
                r = basic_authorization(c, e);
        }
        registry_challenge_done(&ch);
        return r;
}

/* GET with authentication and retries. For a blob (x->sink set), each
 * attempt starts where the sink is. */
static int request(struct registry_client *c, struct xfer *x, const char *accept, struct berr *e)
{
        long backoff = c->o.backoff_ms;
        bool authenticated = false;
        int attempt = 0;

        for (;;) {
                xfer_clear(x);
                if (x->sink)
                        x->start = x->sink->offset(x->sink->ud);
                CURLcode rc = perform(c, x, accept, true, NULL, NULL);
                if (x->sink_err)
                        return x->sink_err;
                if (rc == CURLE_WRITE_ERROR && x->truncated)
                        rc = CURLE_OK; /* a body over the limit: judged below */
                bool retry = false;
                if (rc != CURLE_OK) {
                        if (!curl_retryable(rc) || attempt >= c->o.retries)
                                return berr_setx(e, errno_from_curl(rc), "GET %s: %s%s", x->url,
                                                 curl_easy_strerror(rc),
                                                 attempt ? " (after retries)" : "");
                        retry = true;
                        log_debug("GET %s: %s; retrying", x->url, curl_easy_strerror(rc));
                } else if (x->status == 401 && !authenticated) {
                        int r = authenticate(c, x, e);
                        if (r < 0)
                                return r;
                        authenticated = true;
                        continue;
                } else if (x->status == 416 && x->sink && x->start > 0) {
                        /* our partial data does not fit the blob: start over */
                        int r = x->sink->reset(x->sink->ud, e);
                        if (r < 0)
                                return r;
                        continue;
                } else if (status_retryable(x->status) && attempt < c->o.retries) {
                        retry = true;
                        log_debug("GET %s: %ld; retrying", x->url, x->status);
                } else if (x->status == 401) {
                        return status_error(x, e, ": authentication failed");
                } else if (x->status != 200 && !(x->sink && x->status == 206)) {
                        return status_error(x, e, NULL);
                } else if (x->sink && x->size >= 0 && x->start + x->received < (uint64_t) x->size) {
                        /* the connection ended early without an error */
                        if (attempt >= c->o.retries)
                                return berr_setx(e, EIO, "GET %s: got %llu of %lld bytes", x->url,
                                                 (unsigned long long) (x->start + x->received),
                                                 (long long) x->size);
                        retry = true;
                }
                if (!retry)
                        return 0;
                attempt++;
                sleep_ms(backoff);
                backoff *= 2;
        }
}

/* ---------- public ---------- */

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
        c->plain_http = host_is_insecure(ref->domain, c->o.insecure);
        const char *host = image_ref_registry_host(ref);
        int r;
        if (asprintf(&c->base, "%s://%s/v2/%s", c->plain_http ? "http" : "https", host, ref->path) < 0) {
                c->base = NULL;
                r = berr_set(e, ENOMEM, "registry client");
                goto fail;
        }
        if (!(c->h = curl_easy_init())) {
                r = berr_setx(e, EIO, "libcurl: cannot create a handle");
                goto fail;
        }
        if (c->o.auth_config) {
                r = registry_auth_lookup(c->o.auth_config, ref->domain, &c->creds, e);
                if (r < 0)
                        goto fail;
                c->have_creds = r > 0;
                c->o.auth_config = NULL; /* not kept */
        }
        c->o.insecure = NULL;
        *ret = c;
        return 0;
fail:
        registry_client_free(c);
        return r;
}

void registry_client_free(struct registry_client *c)
{
        if (!c)
                return;
        if (c->h)
                curl_easy_cleanup(c->h);
        registry_credentials_done(&c->creds);
        if (c->authorization)
                explicit_bzero(c->authorization, strlen(c->authorization));
        free(c->authorization);
        free(c->base);
        free(c);
}

static const char manifest_accept[] = MEDIA_OCI_INDEX ", " MEDIA_OCI_MANIFEST ", " MEDIA_DOCKER_LIST
                                      ", " MEDIA_DOCKER_MANIFEST;

int registry_get_manifest(struct registry_client *c, const char *object, char **ret_body, size_t *ret_len,
                          char **ret_content_type, char ret_digest[CONTENT_DIGEST_MAX], struct berr *e)
{
        _cleanup_free_ char *url = NULL;
        struct xfer x = { .c = c, .max = IMAGE_MANIFEST_MAX };
        char digest[CONTENT_DIGEST_MAX];
        int r;

        if (asprintf(&url, "%s/manifests/%s", c->base, object) < 0)
                return berr_set(e, ENOMEM, "manifest");
        x.url = url;
        r = request(c, &x, manifest_accept, e);
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

int registry_fetch_blob(struct registry_client *c, const char *digest, int64_t size, const struct registry_sink *sink,
                        struct berr *e)
{
        _cleanup_free_ char *url = NULL;
        struct xfer x = { .c = c, .max = ERROR_BODY_MAX, .sink = sink, .size = size, .serr = e };
        int r;

        if (size >= 0 && sink->offset(sink->ud) == (uint64_t) size)
                return 0; /* an earlier, interrupted download had it all */
        if (asprintf(&url, "%s/blobs/%s", c->base, digest) < 0)
                return berr_set(e, ENOMEM, "blob");
        x.url = url;
        r = request(c, &x, NULL, e);
        xfer_clear(&x);
        return r;
}

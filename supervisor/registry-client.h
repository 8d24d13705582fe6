/* A client of the distribution API v2 (libcurl) for one repository:
 * manifests with content negotiation, blobs streamed to a sink.
 *
 * Transport: https with the system CAs; plain http only for localhost,
 * 127.0.0.0/8, ::1 and the hosts of the insecure list (as Docker does,
 * host or host:port). Redirects are followed on the same terms.
 *
 * Authentication happens when the registry asks (401 + WWW-Authenticate):
 * Basic with the credentials from the Docker-style config.json, or the
 * Bearer token flow (GET realm?service=&scope=repository:<path>:pull, with
 * those credentials when there are any, then the request again).
 *
 * Credentials can also be given inline (Docker's X-Registry-Auth): a user
 * and password, an identity token (an OAuth2 refresh token, exchanged at
 * the realm with a POST as Docker does) or a registry token (a Bearer
 * token sent as is); then config.json is not read.
 *
 * Mirrors (Docker's registry-mirrors) serve docker.io references: they are
 * tried in order before docker.io itself, a request that fails on one
 * going on to the next; once a mirror failed, it is not asked again.
 *
 * Connection errors, 429 and 5xx are retried with exponential backoff; a
 * blob download that breaks resumes where its sink stopped (Range), and
 * starts over when the registry ignores the range. Blobs are downloaded
 * several at once (curl multi), sharing the client's connections and its
 * authorization. Errors name the URL and the HTTP status, with the
 * registry's own error code and message. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "content-store.h"
#include "err.h"
#include "image-reference.h"

struct registry_options {
        const char *auth_config;        /* config.json with "auths"; NULL: none */
        /* inline credentials, used instead of auth_config when any is set */
        const char *username, *password;
        const char *identity_token;     /* OAuth2 refresh token for the Bearer flow */
        const char *registry_token;     /* a Bearer token, sent as is */
        char *const *mirrors;           /* NULL-terminated "http[s]://host[:port]"; for docker.io only */
        char *const *insecure;          /* NULL-terminated, may be NULL */
        long connect_timeout_ms;        /* 0: 30 s */
        long stall_timeout_s;           /* a transfer slower than 1 KB/s for this long fails; 0: 60 */
        int retries;                    /* after the first attempt; < 0: 3 */
        long backoff_ms;                /* first retry delay, doubling; 0: 200 ms */
};

struct registry_client;

int registry_client_new(const struct image_ref *ref, const struct registry_options *o, struct registry_client **ret,
                        struct berr *e);
void registry_client_free(struct registry_client *c);

/* "http" or "https", as chosen for the reference's registry. */
const char *registry_client_scheme(const struct registry_client *c);

/* GETs the manifest or index for object (a tag or a digest), at most
 * IMAGE_MANIFEST_MAX bytes. Its sha256 is computed and checked against
 * object when that is a digest, and against Docker-Content-Digest when the
 * registry sends one. ret_body is NUL-terminated, ret_content_type may be
 * NULL in the response (then *ret_content_type is NULL). */
int registry_get_manifest(struct registry_client *c, const char *object, char **ret_body, size_t *ret_len,
                          char **ret_content_type, char ret_digest[CONTENT_DIGEST_MAX], struct berr *e);

/* Where a blob goes. offset: the bytes the sink already has (a download
 * asks for the rest); reset: start over from byte 0; write: append. */
struct registry_sink {
        uint64_t (*offset)(void *ud);
        int (*reset)(void *ud, struct berr *e);
        int (*write)(void *ud, const void *data, size_t len, struct berr *e);
        void *ud;
};

/* GETs a blob into sink until it holds size bytes. The sink checks the
 * digest (content_writer does); this checks the length. */
int registry_fetch_blob(struct registry_client *c, const char *digest, int64_t size, const struct registry_sink *sink,
                        struct berr *e);

struct registry_blob_request {
        const char *digest;
        int64_t size;
        const struct registry_sink *sink;
};

/* What registry_fetch_blobs tells its caller about blob i (the index in
 * the request array). All calls come from the calling thread. */
struct registry_blob_events {
        /* A transfer started (first call, current = the resume offset) or
         * bytes arrived (at most about every 100 ms). May be NULL. */
        void (*progress)(void *ud, size_t i, uint64_t current, uint64_t total);
        /* r == 0: the sink holds all the bytes; the callback verifies and
         * returns 0, or < 0 with e set to stop everything (that error is
         * returned). r < 0: the transfer failed for the reason in e (the
         * whole fetch then stops with it); the return value is ignored. */
        int (*done)(void *ud, size_t i, int r, struct berr *e);
        /* Asked at least every 100 ms: true stops everything (-ECANCELED).
         * May be NULL. */
        bool (*cancelled)(void *ud);
        void *ud;
};

/* Downloads the blobs, up to max_parallel at once (0: 3), starting them in
 * array order. Returns 0 when every done callback returned 0. After the
 * first failure no other transfer starts, those running are let finish
 * (their done callbacks are called), and that first error is returned. A
 * cancel stops all at once (sinks keep what they got, to be resumed). */
int registry_fetch_blobs(struct registry_client *c, const struct registry_blob_request *reqs, size_t n,
                         unsigned max_parallel, const struct registry_blob_events *ev, struct berr *e);

/* Checks the client's credentials as docker login does: GET /v2/ on the
 * registry (not a mirror), answering its challenge (Basic, or a Bearer
 * token asked for without a scope when the reference has no path). 0: the
 * registry took them (or needs none); -EACCES with dockerd's wording
 * ("Get \"<url>\": unauthorized: ...") when it refused them; otherwise the
 * transport's error. */
int registry_check_auth(struct registry_client *c, struct berr *e);

/* Optional: releases libcurl's global state at program exit. */
void registry_global_cleanup(void);

/* Registry credentials and challenges: credentials for a registry from a
 * Docker-style config.json ("auths": {"<registry>": {"auth": base64
 * "user:password"} or {"username", "password"}}), and the parsing of a
 * WWW-Authenticate challenge (RFC 7235: scheme, then realm/service/scope
 * parameters, quoted or not). Credential helpers (credsStore,
 * credHelpers) are not used. */
#pragma once

#include <stdbool.h>

#include "err.h"

struct registry_credentials {
        char *username;
        char *password;
};

/* Looks the registry up in config_path. domain is the reference's registry
 * ("docker.io", "localhost:5000"); keys match after dropping a scheme and
 * a path ("https://index.docker.io/v1/" is Docker Hub). Returns 1 and fills
 * ret when found, 0 when the file has no entry for it. */
int registry_auth_lookup(const char *config_path, const char *domain, struct registry_credentials *ret,
                         struct berr *e);
void registry_credentials_done(struct registry_credentials *c);

/* The registry a docker login server address names, as a reference's
 * domain: "https://index.docker.io/v1/", "index.docker.io" and "" give
 * "docker.io"; "http://host:5000/x" gives "host:5000". */
void registry_auth_domain(const char *server, char *buf, size_t len);

struct registry_challenge {
        char scheme[16]; /* "Bearer", "Basic" (as sent) */
        char *realm;
        char *service;
        char *scope;
};

/* The first Bearer or Basic challenge in a WWW-Authenticate value. */
int registry_challenge_parse(const char *header, struct registry_challenge *ret, struct berr *e);
void registry_challenge_done(struct registry_challenge *c);
bool registry_challenge_is_bearer(const struct registry_challenge *c);

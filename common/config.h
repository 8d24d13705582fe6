/* /etc/berth/engine.json (docs/configuration.md), read by berth-engine
 * and berth-supervisor: the keys they use, and the check that every key is
 * one berth knows. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct berth_config {
        json_t *doc;                 /* the whole file ({} when there is none) */
        const char *data_root;       /* NULL: not set */
        const char *exec_root;
        const char *host;            /* the first of "hosts" */
        json_t *hosts;               /* array of strings; never NULL */
        bool tls;                    /* "tls", "tlsverify": default false */
        bool tlsverify;
        const char *tlscacert;       /* PEM files; NULL: not set */
        const char *tlscert;
        const char *tlskey;
        const char *log_level;
        const char *bip;
        const char *default_runtime; /* NULL: ocirun */
        json_t *runtimes;            /* {name: {path, runtimeArgs}}; never NULL */
        json_t *insecure_registries; /* array; never NULL */
        json_t *registry_mirrors;    /* array; never NULL */
        bool live_restore;           /* default true */
};

/* Reads path. A missing file is all defaults unless must_exist. Errors
 * (unreadable, not JSON, a wrong type, an unknown key) go to err. */
int berth_config_load(const char *path, bool must_exist, struct berth_config *ret, char *err, size_t errlen);
void berth_config_done(struct berth_config *c);

/* The binary of a runtime name ("" or NULL: the default runtime); NULL
 * when the name is unknown. */
const char *berth_config_runtime_path(const struct berth_config *c, const char *name);

/* The configuration file (see config.h and docs/configuration.md). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const known_keys[] = {
        "data-root", "exec-root", "hosts", "insecure-registries", "registry-mirrors", "live-restore", "bip",
        "default-address-pools", "log-level", "default-runtime", "runtimes", "tls", "tlsverify", "tlscacert",
        "tlscert", "tlskey", NULL,
};

static int bad(char *err, size_t len, const char *path, const char *key, const char *want)
{
        snprintf(err, len, "%s: \"%s\" must be %s", path, key, want);
        return -EINVAL;
}

static int get_string(json_t *doc, const char *path, const char *key, const char **ret, char *err, size_t len)
{
        json_t *v = json_object_get(doc, key);
        if (!v)
                return 0;
        if (!json_is_string(v))
                return bad(err, len, path, key, "a string");
        *ret = json_string_value(v);
        return 0;
}

static int get_strings(json_t *doc, const char *path, const char *key, json_t **ret, char *err, size_t len)
{
        json_t *v = json_object_get(doc, key);
        if (!v) {
                *ret = json_array();
                return 0;
        }
        size_t i;
        json_t *x;
        if (!json_is_array(v))
                return bad(err, len, path, key, "a list of strings");
        json_array_foreach(v, i, x) if (!json_is_string(x)) return bad(err, len, path, key, "a list of strings");
        *ret = json_incref(v);
        return 0;
}

static int get_bool(json_t *doc, const char *path, const char *key, bool *ret, char *err, size_t len)
{
        json_t *v = json_object_get(doc, key);
        if (!v)
                return 0;
        if (!json_is_boolean(v))
                return bad(err, len, path, key, "true or false");
        *ret = json_is_true(v);
        return 0;
}

static int load(const char *path, bool must_exist, struct berth_config *c, char *err, size_t errlen)
{
        memset(c, 0, sizeof(*c));
        c->live_restore = true;
        if (access(path, F_OK) < 0 && errno == ENOENT && !must_exist) {
                c->doc = json_object();
        } else {
                json_error_t jerr;
                c->doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
                if (!c->doc) {
                        snprintf(err, errlen, "%s: %s (line %d)", path, jerr.text, jerr.line);
                        return -EINVAL;
                }
                if (!json_is_object(c->doc)) {
                        snprintf(err, errlen, "%s: a JSON object is expected", path);
                        return -EINVAL;
                }
        }
        const char *k;
        json_t *v;
        json_object_foreach(c->doc, k, v)
        {
                bool known = false;
                for (const char *const *p = known_keys; *p && !known; p++)
                        known = !strcmp(*p, k);
                if (!known) {
                        snprintf(err, errlen, "%s: unknown key \"%s\" (see docs/configuration.md)", path, k);
                        return -EINVAL;
                }
        }
        int r;
        if ((r = get_string(c->doc, path, "data-root", &c->data_root, err, errlen)) < 0 ||
            (r = get_string(c->doc, path, "exec-root", &c->exec_root, err, errlen)) < 0 ||
            (r = get_string(c->doc, path, "log-level", &c->log_level, err, errlen)) < 0 ||
            (r = get_string(c->doc, path, "bip", &c->bip, err, errlen)) < 0 ||
            (r = get_string(c->doc, path, "default-runtime", &c->default_runtime, err, errlen)) < 0 ||
            (r = get_string(c->doc, path, "tlscacert", &c->tlscacert, err, errlen)) < 0 ||
            (r = get_string(c->doc, path, "tlscert", &c->tlscert, err, errlen)) < 0 ||
            (r = get_string(c->doc, path, "tlskey", &c->tlskey, err, errlen)) < 0 ||
            (r = get_strings(c->doc, path, "hosts", &c->hosts, err, errlen)) < 0 ||
            (r = get_strings(c->doc, path, "insecure-registries", &c->insecure_registries, err, errlen)) < 0 ||
            (r = get_strings(c->doc, path, "registry-mirrors", &c->registry_mirrors, err, errlen)) < 0)
                return r;
        c->host = json_string_value(json_array_get(c->hosts, 0));
        if ((r = get_bool(c->doc, path, "live-restore", &c->live_restore, err, errlen)) < 0 ||
            (r = get_bool(c->doc, path, "tls", &c->tls, err, errlen)) < 0 ||
            (r = get_bool(c->doc, path, "tlsverify", &c->tlsverify, err, errlen)) < 0)
                return r;
        json_t *rt = json_object_get(c->doc, "runtimes");
        if (rt && !json_is_object(rt))
                return bad(err, errlen, path, "runtimes", "an object of {\"path\": ...} by name");
        c->runtimes = rt ? json_deep_copy(rt) : json_object();
        json_object_foreach(c->runtimes, k, v)
        {
                if (!json_is_string(json_object_get(v, "path")))
                        return bad(err, errlen, path, "runtimes", "an object of {\"path\": ...} by name");
        }
        /* ocirun is always there, as runc is for dockerd */
        if (!json_object_get(c->runtimes, "ocirun"))
                json_object_set_new(c->runtimes, "ocirun", json_pack("{s:s}", "path", "ocirun"));
        if (c->default_runtime && !json_object_get(c->runtimes, c->default_runtime)) {
                snprintf(err, errlen, "%s: default-runtime \"%s\" is not in runtimes", path, c->default_runtime);
                return -EINVAL;
        }
        return 0;
}

int berth_config_load(const char *path, bool must_exist, struct berth_config *c, char *err, size_t errlen)
{
        int r = load(path, must_exist, c, err, errlen);
        if (r < 0)
                berth_config_done(c);
        return r;
}

void berth_config_done(struct berth_config *c)
{
        json_decref(c->doc);
        json_decref(c->runtimes);
        json_decref(c->hosts);
        json_decref(c->insecure_registries);
        json_decref(c->registry_mirrors);
        memset(c, 0, sizeof(*c));
}

const char *berth_config_runtime_path(const struct berth_config *c, const char *name)
{
        if (!name || !*name)
                name = c->default_runtime ? c->default_runtime : "ocirun";
        return json_string_value(json_object_get(json_object_get(c->runtimes, name), "path"));
}

#include "registry-auth.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "json-util.h"

#define CONFIG_MAX (1u << 20)

void registry_credentials_done(struct registry_credentials *c)
{
        if (!c)
                return;
        if (c->password)
                explicit_bzero(c->password, strlen(c->password));
        free(c->username);
        free(c->password);
        c->username = c->password = NULL;
}

/* "https://index.docker.io/v1/" → "index.docker.io" (into buf). */
static void key_hostname(const char *key, char *buf, size_t len)
{
        if (strncmp(key, "http://", 7) == 0)
                key += 7;
        else if (strncmp(key, "https://", 8) == 0)
                key += 8;
        snprintf(buf, len, "%.*s", (int) strcspn(key, "/"), key);
}

static bool is_docker_hub(const char *host)
{
        return strcmp(host, "docker.io") == 0 || strcmp(host, "index.docker.io") == 0 ||
               strcmp(host, "registry-1.docker.io") == 0;
}

void registry_auth_domain(const char *server, char *buf, size_t len)
{
        key_hostname(server ? server : "", buf, len);
        if (!buf[0] || is_docker_hub(buf))
                snprintf(buf, len, "docker.io");
}

static int decode_auth(const char *b64, struct registry_credentials *ret, struct berr *e)
{
        size_t n = strlen(b64);
        if (n == 0 || n % 4 != 0 || n > 16384)
                return berr_setx(e, EINVAL, "\"auth\" is not valid base64");
        _cleanup_free_ unsigned char *out = malloc(n / 4 * 3 + 1);
        if (!out)
                return berr_set(e, ENOMEM, "auth");
        int m = EVP_DecodeBlock(out, (const unsigned char *) b64, (int) n);
        if (m < 0)
                return berr_setx(e, EINVAL, "\"auth\" is not valid base64");
        /* EVP_DecodeBlock counts the padding as zero bytes. */
        for (size_t i = n; i > 0 && b64[i - 1] == '='; i--)
                m--;
        out[m] = '\0';
        if (memchr(out, '\0', (size_t) m))
                return berr_setx(e, EINVAL, "\"auth\" holds a NUL byte");
        char *colon = strchr((char *) out, ':');
        if (!colon)
                return berr_setx(e, EINVAL, "\"auth\" is not base64 of \"user:password\"");
        *colon = '\0';
        ret->username = strdup((char *) out);
        ret->password = strdup(colon + 1);
        explicit_bzero(out, (size_t) m);
        if (!ret->username || !ret->password) {
                registry_credentials_done(ret);
                return berr_set(e, ENOMEM, "auth");
        }
        return 0;
}

int registry_auth_lookup(const char *config_path, const char *domain, struct registry_credentials *ret,
                         struct berr *e)
{
        _cleanup_json_ json_t *root = NULL;
        json_t *auths = NULL;
        const char *key;
        json_t *entry;
        int r;

        r = json_load_path(config_path, CONFIG_MAX, &root, e);
        if (r < 0)
                return r;
        if (!json_is_object(root))
                return berr_setx(e, EINVAL, "\"%s\" is not a JSON object", config_path);
        r = json_get_object(root, "config", "auths", &auths, e);
        if (r < 0)
                return berr_prefix(e, "\"%s\"", config_path);
        if (!auths)
                return 0;
        json_object_foreach(auths, key, entry) {
                char host[256];
                key_hostname(key, host, sizeof(host));
                if (strcasecmp(host, domain) != 0 && !(is_docker_hub(domain) && is_docker_hub(host)))
                        continue;
                const char *auth = NULL, *user = NULL, *pass = NULL;
                struct registry_credentials c = { 0 };
                if (!json_is_object(entry))
                        return berr_setx(e, EINVAL, "\"%s\": auths.\"%s\" must be an object", config_path, key);
                r = json_get_string(entry, key, "auth", &auth, e);
                if (r == 0)
                        r = json_get_string(entry, key, "username", &user, e);
                if (r == 0)
                        r = json_get_string(entry, key, "password", &pass, e);
                if (r < 0)
                        return berr_prefix(e, "\"%s\"", config_path);
                if (auth && *auth) {
                        r = decode_auth(auth, &c, e);
                        if (r < 0)
                                return berr_prefix(e, "\"%s\": auths.\"%s\"", config_path, key);
                } else if (user && pass) {
                        c.username = strdup(user);
                        c.password = strdup(pass);
                        if (!c.username || !c.password) {
                                registry_credentials_done(&c);
                                return berr_set(e, ENOMEM, "auth");
                        }
                } else {
                        continue; /* e.g. only an identitytoken: not used */
                }
                *ret = c;
                return 1;
        }
        return 0;
}

void registry_challenge_done(struct registry_challenge *c)
{
        if (!c)
                return;
        free(c->realm);
        free(c->service);
        free(c->scope);
        memset(c, 0, sizeof(*c));
}

bool registry_challenge_is_bearer(const struct registry_challenge *c)
{
        return strcasecmp(c->scheme, "Bearer") == 0;
}

static const char *skip_ws(const char *p)
{
        while (*p == ' ' || *p == '\t')
                p++;
        return p;
}

static bool is_token_char(char c)
{
        return c && !strchr(" \t,=\"", c);
}

/* One parameter value, quoted (with backslash escapes) or a token. */
static int parse_value(const char **pp, char **ret)
{
        const char *p = *pp;
        size_t cap = strlen(p) + 1, n = 0;
        _cleanup_free_ char *v = malloc(cap);
        if (!v)
                return -ENOMEM;
        if (*p == '"') {
                p++;
                while (*p && *p != '"') {
                        if (*p == '\\' && p[1])
                                p++;
                        v[n++] = *p++;
                }
                if (*p != '"')
                        return -EINVAL;
                p++;
        } else {
                while (is_token_char(*p))
                        v[n++] = *p++;
        }
        v[n] = '\0';
        *pp = p;
        *ret = TAKE_PTR(v);
        return 0;
}

int registry_challenge_parse(const char *header, struct registry_challenge *ret, struct berr *e)
{
        const char *p = skip_ws(header);
        while (*p) {
                struct registry_challenge c = { 0 };
                size_t n = 0;
                while (is_token_char(p[n]))
                        n++;
                if (n == 0 || n >= sizeof(c.scheme))
                        return berr_setx(e, EINVAL, "malformed WWW-Authenticate \"%s\"", header);
                memcpy(c.scheme, p, n);
                p = skip_ws(p + n);
                /* auth-params until the next scheme (a token not followed by '=') */
                for (;;) {
                        const char *k = p;
                        size_t kn = 0;
                        while (is_token_char(k[kn]))
                                kn++;
                        const char *eq = skip_ws(k + kn);
                        if (kn == 0 || *eq != '=')
                                break;
                        p = skip_ws(eq + 1);
                        char *v = NULL;
                        int r = parse_value(&p, &v);
                        if (r < 0) {
                                registry_challenge_done(&c);
                                return r == -ENOMEM ? berr_set(e, ENOMEM, "challenge")
                                                    : berr_setx(e, EINVAL, "malformed WWW-Authenticate \"%s\"",
                                                                header);
                        }
                        char **slot = NULL;
                        if (kn == 5 && strncasecmp(k, "realm", 5) == 0)
                                slot = &c.realm;
                        else if (kn == 7 && strncasecmp(k, "service", 7) == 0)
                                slot = &c.service;
                        else if (kn == 5 && strncasecmp(k, "scope", 5) == 0)
                                slot = &c.scope;
                        if (slot) {
                                free(*slot);
                                *slot = v;
                        } else {
                                free(v);
                        }
                        p = skip_ws(p);
                        if (*p != ',')
                                break;
                        p = skip_ws(p + 1);
                }
                if (strcasecmp(c.scheme, "Bearer") == 0 || strcasecmp(c.scheme, "Basic") == 0) {
                        if (registry_challenge_is_bearer(&c) && (!c.realm || !*c.realm)) {
                                registry_challenge_done(&c);
                                return berr_setx(e, EINVAL, "Bearer challenge without a realm: \"%s\"", header);
                        }
                        *ret = c;
                        return 0;
                }
                registry_challenge_done(&c);
                p = skip_ws(p);
                if (*p == ',')
                        p = skip_ws(p + 1);
        }
        return berr_setx(e, ENOTSUP, "no Bearer or Basic challenge in WWW-Authenticate \"%s\"", header);
}

/* Docker's reference grammar, hand-parsed (no regex engine):
 *
 *   reference        := name [ ":" tag ] [ "@" digest ]
 *   name             := [domain "/"] path-component ["/" path-component]*
 *   domain           := host [":" port-number]
 *   host             := domain-name | "[" IPv6 hex and colons "]"
 *   domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
 *   path-component   := [a-z0-9]+ ( ("." | "_" | "__" | "-"+) [a-z0-9]+ )*
 *   tag              := [\w][\w.-]{0,127}
 *   digest           := algorithm ":" [0-9a-fA-F]{32,}, then checked per
 *                       algorithm as go-digest does */
#include "image-reference.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static bool is_lower_alnum(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
        return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_word(char c)
{
        return is_alnum(c) || c == '_';
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
        return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool has_upper(const char *s, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (s[i] >= 'A' && s[i] <= 'Z')
                        return true;
        return false;
}

static bool path_component_ok(const char *s, size_t n)
{
        size_t i = 0;
        while (i < n) {
                size_t start = i;
                while (i < n && is_lower_alnum(s[i]))
                        i++;
                if (i == start)
                        return false;
                if (i == n)
                        return true;
                if (s[i] == '.') {
                        i++;
                } else if (s[i] == '_') {
                        i++;
                        if (i < n && s[i] == '_')
                                i++;
                } else if (s[i] == '-') {
                        while (i < n && s[i] == '-')
                                i++;
                } else {
                        return false;
                }
                if (i == n)
                        return false; /* a separator must be followed */
        }
        return false; /* empty */
}

static bool path_ok(const char *s, size_t n)
{
        size_t start = 0;
        for (size_t i = 0; i <= n; i++) {
                if (i == n || s[i] == '/') {
                        if (!path_component_ok(s + start, i - start))
                                return false;
                        start = i + 1;
                }
        }
        return true;
}

static bool domain_component_ok(const char *s, size_t n)
{
        if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
                return false;
        for (size_t i = 1; i + 1 < n; i++)
                if (!is_alnum(s[i]) && s[i] != '-')
                        return false;
        return true;
}

static bool port_ok(const char *s, size_t n)
{
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_digit(s[i]))
                        return false;
        return true;
}

static bool domain_ok(const char *s)
{
        size_t n = strlen(s);
        size_t host_end;

        if (n > 0 && s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close == s + 1)
                        return false;
                for (const char *p = s + 1; p < close; p++)
                        if (!is_hex(*p) && *p != ':')
                                return false;
                host_end = (size_t) (close - s) + 1;
        } else {
                const char *colon = strchr(s, ':');
                host_end = colon ? (size_t) (colon - s) : n;
                size_t start = 0;
                for (size_t i = 0; i <= host_end; i++) {
                        if (i == host_end || s[i] == '.') {
                                if (!domain_component_ok(s + start, i - start))
                                        return false;
                                start = i + 1;
                        }
                }
        }
        if (host_end == n)
                return true;
        return s[host_end] == ':' && port_ok(s + host_end + 1, n - host_end - 1);
}

static bool tag_ok(const char *s, size_t n)
{
        if (n == 0 || n > IMAGE_REF_TAG_MAX || !is_word(s[0]))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!is_word(s[i]) && s[i] != '.' && s[i] != '-')
                        return false;
        return true;
}

/* The grammar's digest: algorithm components [A-Za-z][A-Za-z0-9]* joined
 * by [+._-], a colon, then at least 32 hex digits. */
static bool digest_grammar_ok(const char *s)
{
        const char *colon = strchr(s, ':');
        if (!colon)
                return false;
        bool want_alpha = true;
        for (const char *p = s; p < colon; p++) {
                char c = *p;
                if (want_alpha) {
                        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
                                return false;
                        want_alpha = false;
                } else if (c == '+' || c == '.' || c == '_' || c == '-') {
                        want_alpha = true;
                } else if (!is_alnum(c)) {
                        return false;
                }
        }
        if (want_alpha)
                return false;
        size_t hex = 0;
        for (const char *p = colon + 1; *p; p++, hex++)
                if (!is_hex(*p))
                        return false;
        return hex >= 32;
}

int image_ref_check_digest(const char *d, struct berr *e)
{
        static const struct {
                const char *name;
                size_t hex;
        } algs[] = { { "sha256", 64 }, { "sha384", 96 }, { "sha512", 128 } };

        if (!digest_grammar_ok(d))
                return berr_setx(e, EINVAL, "invalid digest format \"%s\"", d);
        const char *colon = strchr(d, ':');
        size_t alen = (size_t) (colon - d);
        for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
                if (strlen(algs[i].name) != alen || strncmp(d, algs[i].name, alen) != 0)
                        continue;
                const char *hex = colon + 1;
                if (strlen(hex) != algs[i].hex)
                        return berr_setx(e, EINVAL, "invalid digest \"%s\": %s needs %zu hex digits", d,
                                         algs[i].name, algs[i].hex);
                for (const char *p = hex; *p; p++)
                        if (!is_digit(*p) && !(*p >= 'a' && *p <= 'f'))
                                return berr_setx(e, EINVAL, "invalid digest \"%s\": hex digits must be lower-case", d);
                return 0;
        }
        return berr_setx(e, EINVAL, "invalid digest \"%s\": unsupported digest algorithm \"%.*s\"", d, (int) alen, d);
}

static bool is_identifier(const char *s)
{
        size_t n = strlen(s);
        if (n != 64)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_digit(s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
                        return false;
        return true;
}

static int copy_field(char *dst, size_t size, const char *src, size_t n)
{
        if (n >= size)
                return -ENAMETOOLONG;
        memcpy(dst, src, n);
        dst[n] = '\0';
        return 0;
}

int image_ref_parse(const char *s, struct image_ref *ret, struct berr *e)
{
        struct image_ref r = { 0 };
        const char *rem;
        bool library = false;

        if (!s || !*s)
                return berr_setx(e, EINVAL, "invalid reference \"\": repository name must have at least one component");
        if (is_identifier(s))
                return berr_setx(e, EINVAL,
                                 "invalid reference \"%s\": cannot specify 64-byte hexadecimal strings as a repository name",
                                 s);

        /* Which registry: Docker's splitDockerDomain. */
        const char *slash = strchr(s, '/');
        if (!slash) {
                strcpy(r.domain, IMAGE_REF_DEFAULT_DOMAIN);
                rem = s;
                library = true;
        } else {
                size_t n = (size_t) (slash - s);
                bool is_domain = (n == 9 && strncmp(s, "localhost", n) == 0) || memchr(s, '.', n) ||
                                 memchr(s, ':', n) || has_upper(s, n);
                if (!is_domain) {
                        strcpy(r.domain, IMAGE_REF_DEFAULT_DOMAIN);
                        rem = s;
                } else {
                        if (copy_field(r.domain, sizeof(r.domain), s, n) < 0)
                                return berr_setx(e, EINVAL,
                                                 "invalid reference \"%s\": repository name must not be more than %d characters",
                                                 s, IMAGE_REF_NAME_MAX);
                        if (strcmp(r.domain, "index.docker.io") == 0)
                                strcpy(r.domain, IMAGE_REF_DEFAULT_DOMAIN);
                        rem = slash + 1;
                }
                if (strcmp(r.domain, IMAGE_REF_DEFAULT_DOMAIN) == 0 && !strchr(rem, '/'))
                        library = true;
        }
        if (strcmp(r.domain, IMAGE_REF_DEFAULT_DOMAIN) != 0 && !domain_ok(r.domain))
                return berr_setx(e, EINVAL, "invalid reference format \"%s\": bad registry \"%s\"", s, r.domain);

        /* The repository path ends at the tag or the digest. */
        size_t plen = strcspn(rem, ":@");
        if (has_upper(rem, plen))
                return berr_setx(e, EINVAL, "invalid reference format \"%s\": repository name \"%.*s\" must be lowercase",
                                 s, (int) plen, rem);
        if (!path_ok(rem, plen))
                return berr_setx(e, EINVAL, "invalid reference format \"%s\": bad repository name \"%.*s\"", s,
                                 (int) plen, rem);
        size_t full = strlen(r.domain) + 1 + (library ? 8 : 0) + plen;
        if (full > IMAGE_REF_NAME_MAX)
                return berr_setx(e, EINVAL,
                                 "invalid reference \"%s\": repository name must not be more than %d characters", s,
                                 IMAGE_REF_NAME_MAX);
        snprintf(r.path, sizeof(r.path), "%s%.*s", library ? "library/" : "", (int) plen, rem);

        const char *p = rem + plen;
        if (*p == ':') {
                p++;
                size_t tlen = strcspn(p, "@");
                if (!tag_ok(p, tlen))
                        return berr_setx(e, EINVAL,
                                         "invalid reference format \"%s\": bad tag \"%.*s\" (want [A-Za-z0-9_][A-Za-z0-9_.-]{0,127})",
                                         s, (int) tlen, p);
                memcpy(r.tag, p, tlen);
                r.tag[tlen] = '\0';
                p += tlen;
        }
        if (*p == '@') {
                p++;
                int k = image_ref_check_digest(p, e);
                if (k < 0)
                        return berr_prefix(e, "invalid reference \"%s\"", s);
                if (copy_field(r.digest, sizeof(r.digest), p, strlen(p)) < 0)
                        return berr_setx(e, EINVAL, "invalid reference \"%s\": digest too long", s);
        } else if (*p) {
                return berr_setx(e, EINVAL, "invalid reference format \"%s\"", s);
        }
        if (!r.tag[0] && !r.digest[0])
                strcpy(r.tag, IMAGE_REF_DEFAULT_TAG);
        *ret = r;
        return 0;
}

char *image_ref_string(const struct image_ref *r, char *buf, size_t len)
{
        snprintf(buf, len, "%s/%s%s%s%s%s", r->domain, r->path, r->tag[0] ? ":" : "", r->tag,
                 r->digest[0] ? "@" : "", r->digest);
        return buf;
}

const char *image_ref_object(const struct image_ref *r)
{
        return r->digest[0] ? r->digest : r->tag;
}

const char *image_ref_registry_host(const struct image_ref *r)
{
        if (strcmp(r->domain, IMAGE_REF_DEFAULT_DOMAIN) == 0)
                return "registry-1.docker.io";
        return r->domain;
}

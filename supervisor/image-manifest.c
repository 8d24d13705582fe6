#include "image-manifest.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "json-util.h"

void image_platform_default(struct image_platform *ret)
{
        memset(ret, 0, sizeof(*ret));
        strcpy(ret->os, "linux");
        strcpy(ret->arch, "amd64");
}

void image_platform_normalize(struct image_platform *p)
{
        static const struct {
                const char *from, *arch, *variant;
        } aliases[] = {
                { "x86_64", "amd64", NULL }, { "x86-64", "amd64", NULL }, { "aarch64", "arm64", NULL },
                { "armhf", "arm", "v7" },    { "armel", "arm", "v6" },    { "i386", "386", NULL },
        };
        for (size_t i = 0; i < ARRAY_SIZE(aliases); i++) {
                if (strcmp(p->arch, aliases[i].from) != 0)
                        continue;
                snprintf(p->arch, sizeof(p->arch), "%s", aliases[i].arch);
                if (aliases[i].variant)
                        snprintf(p->variant, sizeof(p->variant), "%s", aliases[i].variant);
                break;
        }
        for (char *c = p->os; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                        *c = (char) (*c - 'A' + 'a');
        if (strcmp(p->arch, "arm64") == 0 && (strcmp(p->variant, "v8") == 0 || strcmp(p->variant, "8") == 0))
                p->variant[0] = '\0';
        if (strcmp(p->arch, "amd64") == 0 && strcmp(p->variant, "v1") == 0)
                p->variant[0] = '\0';
        if (strcmp(p->arch, "arm") == 0) {
                if (!p->variant[0])
                        strcpy(p->variant, "v7");
                else if (p->variant[0] >= '5' && p->variant[0] <= '8' && !p->variant[1]) {
                        char v = p->variant[0];
                        p->variant[0] = 'v', p->variant[1] = v, p->variant[2] = '\0';
                }
        }
}

int image_platform_parse(const char *s, struct image_platform *ret, struct berr *e)
{
        struct image_platform p = { 0 };
        const char *a = strchr(s, '/');
        if (!a || a == s || !a[1])
                return berr_setx(e, EINVAL, "invalid platform \"%s\": want os/arch[/variant]", s);
        const char *v = strchr(a + 1, '/');
        size_t alen = v ? (size_t) (v - a - 1) : strlen(a + 1);
        if ((size_t) (a - s) >= sizeof(p.os) || alen == 0 || alen >= sizeof(p.arch) ||
            (v && (!v[1] || strlen(v + 1) >= sizeof(p.variant) || strchr(v + 1, '/'))))
                return berr_setx(e, EINVAL, "invalid platform \"%s\": want os/arch[/variant]", s);
        memcpy(p.os, s, (size_t) (a - s));
        memcpy(p.arch, a + 1, alen);
        if (v)
                strcpy(p.variant, v + 1);
        image_platform_normalize(&p);
        *ret = p;
        return 0;
}

char *image_platform_string(const struct image_platform *p, char *buf, size_t len)
{
        snprintf(buf, len, "%s/%s%s%s", p->os, p->arch, p->variant[0] ? "/" : "", p->variant);
        return buf;
}

static void descriptor_done(struct image_descriptor *d)
{
        free(d->media_type);
        d->media_type = NULL;
}

void image_manifest_done(struct image_manifest *m)
{
        if (!m)
                return;
        free(m->media_type);
        descriptor_done(&m->config);
        for (size_t i = 0; i < m->n_layers; i++)
                descriptor_done(&m->layers[i]);
        free(m->layers);
        for (size_t i = 0; i < m->n_manifests; i++)
                descriptor_done(&m->manifests[i]);
        free(m->manifests);
        memset(m, 0, sizeof(*m));
}

static int copy_str(const json_t *o, const char *where, const char *key, char *buf, size_t len, bool required,
                    struct berr *e)
{
        const char *s = NULL;
        int r = json_get_string(o, where, key, &s, e);
        if (r < 0)
                return r;
        if (!s) {
                if (required)
                        return berr_setx(e, EINVAL, "%s.%s is missing", where, key);
                return 0;
        }
        if (strlen(s) >= len)
                return berr_setx(e, EINVAL, "%s.%s is too long", where, key);
        strcpy(buf, s);
        return 0;
}

static int parse_descriptor(const json_t *o, const char *where, struct image_descriptor *ret, struct berr *e)
{
        struct image_descriptor d = { 0 };
        const char *mt = NULL;
        json_t *plat = NULL;
        int r;

        if (!json_is_object(o))
                return berr_setx(e, EINVAL, "%s must be an object", where);
        r = json_get_string(o, where, "mediaType", &mt, e);
        if (r < 0)
                return r;
        r = copy_str(o, where, "digest", d.digest, sizeof(d.digest), true, e);
        if (r < 0)
                return berr_prefix(e, "descriptor");
        r = content_digest_check(d.digest, e);
        if (r < 0)
                return berr_prefix(e, "%s.digest", where);
        d.size = -1;
        r = json_get_int64(o, where, "size", &d.size, e);
        if (r < 0)
                return r;
        if (d.size < 0)
                return berr_setx(e, EINVAL, "%s.size is missing or negative", where);
        r = json_get_object(o, where, "platform", &plat, e);
        if (r < 0)
                return r;
        if (plat) {
                d.has_platform = true;
                r = copy_str(plat, "platform", "os", d.platform.os, sizeof(d.platform.os), true, e);
                if (r == 0)
                        r = copy_str(plat, "platform", "architecture", d.platform.arch, sizeof(d.platform.arch),
                                     true, e);
                if (r == 0)
                        r = copy_str(plat, "platform", "variant", d.platform.variant,
                                     sizeof(d.platform.variant), false, e);
                if (r < 0)
                        return berr_prefix(e, "%s", where);
                image_platform_normalize(&d.platform);
        }
        if (mt && !(d.media_type = strdup(mt)))
                return berr_set(e, ENOMEM, "manifest");
        *ret = d;
        return 0;
}

static int parse_descriptors(const json_t *o, const char *key, bool required, struct image_descriptor **ret,
                             size_t *ret_n, struct berr *e)
{
        json_t *a = NULL;
        int r = json_get_array(o, "manifest", key, &a, e);
        if (r < 0)
                return r;
        if (!a) {
                if (required)
                        return berr_setx(e, EINVAL, "manifest.%s is missing", key);
                return 0;
        }
        size_t n = json_array_size(a);
        struct image_descriptor *v = calloc(n ? n : 1, sizeof(*v));
        if (!v)
                return berr_set(e, ENOMEM, "manifest");
        for (size_t i = 0; i < n; i++) {
                char where[64];
                snprintf(where, sizeof(where), "%s[%zu]", key, i);
                r = parse_descriptor(json_array_get(a, i), where, &v[i], e);
                if (r < 0) {
                        for (size_t j = 0; j < i; j++)
                                descriptor_done(&v[j]);
                        free(v);
                        return r;
                }
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static bool media_is(const char *mt, const char *want)
{
        return mt && strcmp(mt, want) == 0;
}

int image_manifest_parse(const char *body, size_t len, const char *content_type, struct image_manifest *ret,
                         struct berr *e)
{
        struct image_manifest m = { 0 };
        json_error_t jerr;
        const char *mt = NULL;
        int64_t schema = 0;
        int r;

        /* "application/json; charset=utf-8" → "application/json" */
        char ct[128] = "";
        if (content_type) {
                snprintf(ct, sizeof(ct), "%s", content_type);
                ct[strcspn(ct, "; \t")] = '\0';
        }
        if (media_is(ct, MEDIA_DOCKER_SCHEMA1) || media_is(ct, MEDIA_DOCKER_SCHEMA1_SIGNED))
                return berr_setx(e, EPROTONOSUPPORT,
                                 "Docker schema 1 manifests (%s) are not supported: push the image again with a current client",
                                 ct);
        if (len > IMAGE_MANIFEST_MAX)
                return berr_setx(e, EFBIG, "manifest of %zu bytes is larger than %u", len, IMAGE_MANIFEST_MAX);

        _cleanup_json_ json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root)
                return berr_setx(e, EINVAL, "manifest is not valid JSON: %s (line %d, column %d)", jerr.text,
                                 jerr.line, jerr.column);
        if (!json_is_object(root))
                return berr_setx(e, EINVAL, "manifest is not a JSON object");
        r = json_get_int64(root, "manifest", "schemaVersion", &schema, e);
        if (r < 0)
                return r;
        r = json_get_string(root, "manifest", "mediaType", &mt, e);
        if (r < 0)
                return r;
        if (schema == 1 || media_is(mt, MEDIA_DOCKER_SCHEMA1) || media_is(mt, MEDIA_DOCKER_SCHEMA1_SIGNED))
                return berr_setx(e, EPROTONOSUPPORT,
                                 "Docker schema 1 manifests are not supported: push the image again with a current client");
        if (schema != 2)
                return berr_setx(e, EINVAL, "manifest has schemaVersion %lld, want 2", (long long) schema);
        if (!mt && ct[0] && strcmp(ct, "application/json") != 0)
                mt = ct;
        if (!mt) /* OCI allows leaving mediaType out: tell by the shape */
                mt = json_object_get(root, "manifests") ? MEDIA_OCI_INDEX : MEDIA_OCI_MANIFEST;

        if (media_is(mt, MEDIA_OCI_INDEX) || media_is(mt, MEDIA_DOCKER_LIST)) {
                m.kind = IMAGE_MANIFEST_INDEX;
                r = parse_descriptors(root, "manifests", true, &m.manifests, &m.n_manifests, e);
        } else if (media_is(mt, MEDIA_OCI_MANIFEST) || media_is(mt, MEDIA_DOCKER_MANIFEST)) {
                json_t *cfg = NULL;
                m.kind = IMAGE_MANIFEST_IMAGE;
                r = json_get_object(root, "manifest", "config", &cfg, e);
                if (r == 0 && !cfg)
                        r = berr_setx(e, EINVAL, "manifest.config is missing");
                if (r == 0)
                        r = parse_descriptor(cfg, "config", &m.config, e);
                if (r == 0)
                        r = parse_descriptors(root, "layers", true, &m.layers, &m.n_layers, e);
        } else {
                return berr_setx(e, EPROTONOSUPPORT, "unsupported manifest media type \"%s\"", mt);
        }
        if (r == 0 && !(m.media_type = strdup(mt)))
                r = berr_set(e, ENOMEM, "manifest");
        if (r < 0) {
                image_manifest_done(&m);
                return r;
        }
        *ret = m;
        return 0;
}

static bool usable(const struct image_descriptor *d)
{
        /* Attestations and other non-images sit in indexes as unknown/unknown. */
        return d->has_platform && strcmp(d->platform.os, "unknown") != 0;
}

int image_index_select(const struct image_manifest *idx, const struct image_platform *want_in,
                       const struct image_descriptor **ret, struct berr *e)
{
        struct image_platform want = *want_in;
        image_platform_normalize(&want);

        /* Exact first; then, for arm, lower variants (v7 runs v6 and v5). */
        char variants[4][32];
        size_t n_variants = 0;
        snprintf(variants[n_variants++], sizeof(variants[0]), "%s", want.variant);
        if (strcmp(want.arch, "arm") == 0 && want.variant[0] == 'v')
                for (char v = (char) (want.variant[1] - 1); v >= '5' && n_variants < 4; v--)
                        snprintf(variants[n_variants++], sizeof(variants[0]), "v%c", v);

        for (size_t k = 0; k < n_variants; k++)
                for (size_t i = 0; i < idx->n_manifests; i++) {
                        const struct image_descriptor *d = &idx->manifests[i];
                        if (usable(d) && strcmp(d->platform.os, want.os) == 0 &&
                            strcmp(d->platform.arch, want.arch) == 0 && strcmp(d->platform.variant, variants[k]) == 0) {
                                *ret = d;
                                return 0;
                        }
                }

        char have[512] = "";
        size_t n = 0;
        for (size_t i = 0; i < idx->n_manifests && n < sizeof(have) - 1; i++) {
                char p[100];
                if (!usable(&idx->manifests[i]))
                        continue;
                image_platform_string(&idx->manifests[i].platform, p, sizeof(p));
                int k = snprintf(have + n, sizeof(have) - n, "%s%s", n ? ", " : "", p);
                if (k < 0 || (size_t) k >= sizeof(have) - n)
                        break;
                n += (size_t) k;
        }
        char w[100];
        return berr_setx(e, ENOENT, "no manifest for platform %s in the index (it has: %s)",
                         image_platform_string(&want, w, sizeof(w)), n ? have : "none");
}

int image_chain_id(const char *parent, const char *diff_id, char ret[CONTENT_DIGEST_MAX])
{
        if (!parent) {
                if (strlen(diff_id) >= CONTENT_DIGEST_MAX)
                        return -EINVAL;
                strcpy(ret, diff_id);
                return 0;
        }
        _cleanup_free_ char *s = NULL;
        int n = asprintf(&s, "%s %s", parent, diff_id);
        if (n < 0)
                return -ENOMEM;
        return content_digest_of(s, (size_t) n, ret);
}

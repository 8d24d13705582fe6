/* Unit tests for supervisor/image-manifest: the four manifest kinds,
 * schema 1 refused, malformed descriptors, platforms and index selection. */
#include "unit-helpers.h"

#include "cleanup.h"
#include "image-manifest.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"

static int parse(const char *body, const char *ct, struct image_manifest *m, struct berr *e)
{
        return image_manifest_parse(body, strlen(body), ct, m, e);
}

static void test_image_manifests(void **state)
{
        (void) state;
        static const char *types[] = { MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST };
        for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
                char *body = NULL;
                assert_true(asprintf(&body,
                                     "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"c\","
                                     "\"digest\":\"" D1 "\",\"size\":10},\"layers\":[{\"mediaType\":\"l\",\"digest\":\"" D2
                                     "\",\"size\":20},{\"digest\":\"" D3 "\",\"size\":0}]}",
                                     types[i]) > 0);
                struct image_manifest m;
                struct berr e = { 0 };
                if (parse(body, "application/json", &m, &e) < 0)
                        fail_msg("%s: %s", types[i], e.msg);
                assert_int_equal(m.kind, IMAGE_MANIFEST_IMAGE);
                assert_string_equal(m.media_type, types[i]);
                assert_string_equal(m.config.digest, D1);
                assert_int_equal(m.config.size, 10);
                assert_int_equal(m.n_layers, 2);
                assert_string_equal(m.layers[0].digest, D2);
                assert_string_equal(m.layers[0].media_type, "l");
                assert_int_equal(m.layers[1].size, 0);
                assert_null(m.layers[1].media_type);
                image_manifest_done(&m);
                free(body);
        }
}

static const char index_body[] =
        "{\"schemaVersion\":2,\"manifests\":["
        "{\"mediaType\":\"" MEDIA_OCI_MANIFEST "\",\"digest\":\"" D1 "\",\"size\":1,"
        "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
        "{\"mediaType\":\"" MEDIA_OCI_MANIFEST "\",\"digest\":\"" D2 "\",\"size\":2,"
        "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
        "{\"mediaType\":\"" MEDIA_OCI_MANIFEST "\",\"digest\":\"" D3 "\",\"size\":3,"
        "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":\"v6\"}},"
        "{\"mediaType\":\"" MEDIA_OCI_MANIFEST "\",\"digest\":\"" D3 "\",\"size\":3,"
        "\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"}}]}";

static void select_ok(const struct image_manifest *idx, const char *plat, const char *want)
{
        struct image_platform p;
        const struct image_descriptor *d = NULL;
        struct berr e = { 0 };
        assert_int_equal(image_platform_parse(plat, &p, &e), 0);
        if (image_index_select(idx, &p, &d, &e) < 0)
                fail_msg("%s: %s", plat, e.msg);
        assert_string_equal(d->digest, want);
}

static void test_index(void **state)
{
        (void) state;
        struct image_manifest m;
        struct berr e = { 0 };
        /* no mediaType in the body: Content-Type, then the shape decide */
        assert_int_equal(parse(index_body, MEDIA_DOCKER_LIST, &m, &e), 0);
        assert_int_equal(m.kind, IMAGE_MANIFEST_INDEX);
        assert_string_equal(m.media_type, MEDIA_DOCKER_LIST);
        image_manifest_done(&m);
        assert_int_equal(parse(index_body, NULL, &m, &e), 0);
        assert_int_equal(m.kind, IMAGE_MANIFEST_INDEX);
        assert_string_equal(m.media_type, MEDIA_OCI_INDEX);
        assert_int_equal(m.n_manifests, 4);

        struct image_platform def;
        const struct image_descriptor *d = NULL;
        image_platform_default(&def);
        assert_int_equal(image_index_select(&m, &def, &d, &e), 0);
        assert_string_equal(d->digest, D2);
        select_ok(&m, "linux/arm64", D1);
        select_ok(&m, "linux/arm64/v8", D1);
        select_ok(&m, "linux/aarch64", D1);
        select_ok(&m, "linux/x86_64", D2);
        select_ok(&m, "linux/arm/v7", D3); /* v7 runs v6 */
        select_ok(&m, "linux/arm/v6", D3);

        struct image_platform p;
        assert_int_equal(image_platform_parse("linux/arm/v5", &p, &e), 0);
        assert_int_equal(image_index_select(&m, &p, &d, &e), -ENOENT);
        assert_int_equal(image_platform_parse("linux/s390x", &p, &e), 0);
        assert_int_equal(image_index_select(&m, &p, &d, &e), -ENOENT);
        assert_non_null(strstr(e.msg, "no manifest for platform linux/s390x"));
        assert_non_null(strstr(e.msg, "linux/arm64, linux/amd64, linux/arm/v6"));
        assert_null(strstr(e.msg, "unknown"));
        image_manifest_done(&m);
}

static void test_schema1_refused(void **state)
{
        (void) state;
        struct image_manifest m;
        struct berr e = { 0 };
        assert_int_equal(parse("{\"schemaVersion\":1,\"name\":\"x\",\"tag\":\"latest\",\"fsLayers\":[]}",
                               MEDIA_DOCKER_SCHEMA1_SIGNED, &m, &e),
                         -EPROTONOSUPPORT);
        assert_non_null(strstr(e.msg, "schema 1"));
        assert_int_equal(parse("{\"schemaVersion\":1,\"name\":\"x\",\"fsLayers\":[]}", "application/json", &m, &e),
                         -EPROTONOSUPPORT);
        assert_non_null(strstr(e.msg, "schema 1"));
}

static void test_malformed(void **state)
{
        (void) state;
        static const struct {
                const char *body, *msg;
        } cases[] = {
                { "not json", "not valid JSON" },
                { "[]", "not a JSON object" },
                { "{\"schemaVersion\":3}", "schemaVersion 3" },
                { "{\"schemaVersion\":2,\"mediaType\":\"text/plain\"}", "unsupported manifest media type" },
                { "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_OCI_MANIFEST "\",\"layers\":[]}", "config is missing" },
                { "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_OCI_MANIFEST "\",\"config\":{\"digest\":\"" D1
                  "\",\"size\":1}}",
                  "layers is missing" },
                { "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_OCI_MANIFEST
                  "\",\"config\":{\"digest\":\"sha256:../../etc\",\"size\":1},\"layers\":[]}",
                  "invalid digest" },
                { "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_OCI_MANIFEST "\",\"config\":{\"digest\":\"" D1
                  "\",\"size\":-1},\"layers\":[]}",
                  "size is missing or negative" },
                { "{\"schemaVersion\":2,\"mediaType\":\"" MEDIA_OCI_MANIFEST "\",\"config\":{\"digest\":\"" D1
                  "\",\"size\":1},\"layers\":[{\"digest\":\"" D2 "\"}]}",
                  "layers[0].size" },
                { "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"" D1
                  "\",\"size\":1,\"platform\":{\"os\":\"linux\"}}]}",
                  "architecture is missing" },
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                struct image_manifest m;
                struct berr e = { 0 };
                if (parse(cases[i].body, NULL, &m, &e) >= 0)
                        fail_msg("accepted: %s", cases[i].body);
                if (!strstr(e.msg, cases[i].msg))
                        fail_msg("%s: message \"%s\" lacks \"%s\"", cases[i].body, e.msg, cases[i].msg);
        }
}

static void test_platform_parse(void **state)
{
        (void) state;
        struct image_platform p;
        char buf[100];
        assert_int_equal(image_platform_parse("linux/arm", &p, NULL), 0);
        assert_string_equal(image_platform_string(&p, buf, sizeof(buf)), "linux/arm/v7");
        assert_int_equal(image_platform_parse("linux/arm64/v8", &p, NULL), 0);
        assert_string_equal(image_platform_string(&p, buf, sizeof(buf)), "linux/arm64");
        assert_int_equal(image_platform_parse("Linux/x86_64", &p, NULL), 0);
        assert_string_equal(image_platform_string(&p, buf, sizeof(buf)), "linux/amd64");
        assert_int_equal(image_platform_parse("linux", &p, NULL), -EINVAL);
        assert_int_equal(image_platform_parse("linux/", &p, NULL), -EINVAL);
        assert_int_equal(image_platform_parse("/amd64", &p, NULL), -EINVAL);
        assert_int_equal(image_platform_parse("linux/arm/v7/x", &p, NULL), -EINVAL);
        assert_int_equal(image_platform_parse("linux/arm/", &p, NULL), -EINVAL);
}

/* The OCI ChainID: the first layer's diff id, then sha256("<parent> <diff id>"). */
static void test_chain_id(void **state)
{
        (void) state;
        char a[CONTENT_DIGEST_MAX], chain[CONTENT_DIGEST_MAX];
        snprintf(a, sizeof(a), "sha256:%064d", 0);
        memset(a + 7, 'a', 64);
        assert_int_equal(image_chain_id(NULL, a, chain), 0);
        assert_string_equal(chain, a);
        char b[CONTENT_DIGEST_MAX];
        memcpy(b, a, sizeof(b));
        memset(b + 7, 'b', 64);
        assert_int_equal(image_chain_id(a, b, chain), 0);
        assert_string_equal(chain, "sha256:ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c");
        char big[2 * CONTENT_DIGEST_MAX];
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(image_chain_id(NULL, big, chain), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_image_manifests), cmocka_unit_test(test_index),
                cmocka_unit_test(test_schema1_refused), cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_platform_parse),
                cmocka_unit_test(test_chain_id),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

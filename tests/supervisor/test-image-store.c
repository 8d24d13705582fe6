/* Unit tests for supervisor/image-store: records written atomically under
 * the lock, tag and rm of names, reachability (index → manifests → config
 * and layers) and gc, which keeps what an image reaches and what is being
 * ingested. No network, no root. */
#include "unit-helpers.h"

#include "cleanup.h"
#include "content-store.h"
#include "image-store.h"

struct fixture {
        char *dir;
        char *content;
        struct content_store *cs;
        struct image_store *is;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        struct berr e = { 0 };
        assert_non_null(f);
        f->dir = unit_mkdtemp("images");
        f->content = unit_path(f->dir, "content");
        if (content_store_open(f->content, &f->cs, &e) < 0 || image_store_open(f->dir, f->cs, &f->is, &e) < 0)
                fail_msg("open: %s", e.msg);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        image_store_free(f->is);
        content_store_free(f->cs);
        unit_rm_tree(f->dir);
        free(f->content);
        free(f->dir);
        free(f);
        return 0;
}

struct blob {
        char digest[CONTENT_DIGEST_MAX];
        size_t size;
};

static struct blob put_blob(struct fixture *f, const char *data)
{
        struct blob b = { .size = strlen(data) };
        struct berr e = { 0 };
        if (content_write_blob(f->cs, data, b.size, NULL, b.digest, &e) < 0)
                fail_msg("write: %s", e.msg);
        return b;
}

/* A blob's digest without storing it. */
static struct blob absent_blob(const char *data)
{
        struct blob b = { .size = strlen(data) };
        assert_int_equal(content_digest_of(data, b.size, b.digest), 0);
        return b;
}

static struct blob put_manifest(struct fixture *f, struct blob config, const struct blob *layers, size_t n)
{
        char buf[4096];
        int len = snprintf(buf, sizeof(buf),
                           "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":"
                           "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},\"layers\":[",
                           MEDIA_OCI_MANIFEST, config.digest, config.size);
        for (size_t i = 0; i < n; i++)
                len += snprintf(buf + len, sizeof(buf) - (size_t) len,
                                "%s{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"%s\","
                                "\"size\":%zu}",
                                i ? "," : "", layers[i].digest, layers[i].size);
        snprintf(buf + len, sizeof(buf) - (size_t) len, "]}");
        return put_blob(f, buf);
}

static struct blob put_index(struct fixture *f, struct blob amd64, struct blob arm64)
{
        char buf[4096];
        snprintf(buf, sizeof(buf),
                 "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":["
                 "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
                 "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}}]}",
                 MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST, amd64.digest, amd64.size, MEDIA_OCI_MANIFEST, arm64.digest,
                 arm64.size);
        return put_blob(f, buf);
}

static bool stored(struct fixture *f, struct blob b)
{
        struct content_info info;
        return content_info(f->cs, b.digest, &info, NULL) == 0;
}

static size_t strv_len(char **v)
{
        size_t n = 0;
        while (v && v[n])
                n++;
        return n;
}

static bool strv_has(char **v, const char *s)
{
        for (size_t i = 0; v && v[i]; i++)
                if (strcmp(v[i], s) == 0)
                        return true;
        return false;
}

static void test_put_get_list(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        struct image_record rec = { 0 };

        struct blob cfg = put_blob(f, "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Labels\":"
                                      "{\"org.example\":\"yes\"}},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}");
        struct blob layer = put_blob(f, "layer one");
        struct blob m = put_manifest(f, cfg, &layer, 1);

        assert_int_equal(image_store_get(f->is, "x/a:1", &rec, &e), -ENOENT);
        /* the target must be in the store */
        struct blob missing = absent_blob("nope");
        assert_int_equal(image_store_put(f->is, "x/a:1", MEDIA_OCI_MANIFEST, missing.digest, NULL, &e), -ENOENT);

        assert_int_equal(image_store_put(f->is, "x/a:1", MEDIA_OCI_MANIFEST, m.digest, cfg.digest, &e), 0);
        assert_int_equal(image_store_put(f->is, "x/b:1", MEDIA_OCI_MANIFEST, m.digest, NULL, &e), 0);
        assert_int_equal(image_store_get(f->is, "x/a:1", &rec, &e), 0);
        assert_string_equal(rec.name, "x/a:1");
        assert_string_equal(rec.media_type, MEDIA_OCI_MANIFEST);
        assert_string_equal(rec.digest, m.digest);
        assert_int_equal(rec.size, (int64_t) m.size);
        assert_true(strlen(rec.created) > 20 && rec.created[strlen(rec.created) - 1] == 'Z');
        assert_string_equal(rec.labels[0], "org.example");
        assert_string_equal(rec.labels[1], "yes");
        assert_null(rec.labels[2]);
        image_record_done(&rec);

        uint64_t size = 0;
        struct image_platform p;
        image_platform_default(&p);
        assert_int_equal(image_store_get(f->is, "x/b:1", &rec, &e), 0);
        assert_null(rec.labels[0]);
        assert_int_equal(image_store_size(f->is, &rec, &p, &size, &e), 0);
        assert_int_equal(size, m.size + cfg.size + layer.size);
        image_record_done(&rec);

        struct image_record *v = NULL;
        size_t n = 0;
        assert_int_equal(image_store_list(f->is, &v, &n, &e), 0);
        assert_int_equal(n, 2);
        assert_string_equal(v[0].name, "x/a:1");
        assert_string_equal(v[1].name, "x/b:1");
        image_records_free(v, n);

        /* written atomically: the file and its lock, no temporary left */
        char *meta = unit_path(f->dir, "meta");
        assert_int_equal(unit_count_entries(meta), 2);
        char *json = unit_path(meta, "images.json");
        size_t len = 0;
        char *text = unit_read(json, &len);
        assert_non_null(strstr(text, m.digest));
        free(text);

        /* corrupt metadata: refused, and left as it is */
        unit_write_str(json, "{\"images\": [");
        assert_true(image_store_put(f->is, "x/c:1", MEDIA_OCI_MANIFEST, m.digest, NULL, &e) < 0);
        text = unit_read(json, &len);
        assert_string_equal(text, "{\"images\": [");
        free(text);
        unit_write_str(json, "{\"images\": []}");
        assert_int_equal(image_store_list(f->is, &v, &n, &e), -EINVAL);
        free(json);
        free(meta);
}

static void test_tag_rm(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        struct image_record rec = { 0 };

        struct blob cfg = put_blob(f, "{\"os\":\"linux\"}");
        struct blob m = put_manifest(f, cfg, NULL, 0);
        assert_int_equal(image_store_put(f->is, "x/a:1", MEDIA_OCI_MANIFEST, m.digest, NULL, &e), 0);
        assert_int_equal(image_store_tag(f->is, "x/none:1", "x/b:1", &e), -ENOENT);
        assert_int_equal(image_store_tag(f->is, "x/a:1", "x/b:1", &e), 0);
        assert_int_equal(image_store_remove(f->is, "x/a:1", &e), 0);
        assert_int_equal(image_store_remove(f->is, "x/a:1", &e), -ENOENT);
        assert_int_equal(image_store_get(f->is, "x/a:1", &rec, &e), -ENOENT);
        assert_int_equal(image_store_get(f->is, "x/b:1", &rec, &e), 0);
        assert_string_equal(rec.digest, m.digest);
        image_record_done(&rec);
        /* content stays until gc */
        assert_true(stored(f, m) && stored(f, cfg));
}

static void test_reachable_and_gc(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        char **v = NULL;

        /* A: an index with a stored amd64 manifest and an arm64 one not pulled */
        struct blob shared = put_blob(f, "shared layer");
        struct blob l2 = put_blob(f, "layer of A only");
        struct blob ca = put_blob(f, "{\"os\":\"linux\",\"architecture\":\"amd64\"}");
        struct blob la[] = { shared, l2 };
        struct blob ma = put_manifest(f, ca, la, 2);
        struct blob arm = absent_blob("{\"arm64\":1}");
        struct blob ia = put_index(f, ma, arm);
        /* B: a manifest sharing A's first layer */
        struct blob cb = put_blob(f, "{\"os\":\"linux\",\"architecture\":\"amd64\",\"b\":1}");
        struct blob mb = put_manifest(f, cb, &shared, 1);
        struct blob stray = put_blob(f, "not referenced");

        assert_int_equal(image_store_put(f->is, "x/a:1", MEDIA_OCI_INDEX, ia.digest, ca.digest, &e), 0);
        assert_int_equal(image_store_put(f->is, "x/b:1", MEDIA_OCI_MANIFEST, mb.digest, cb.digest, &e), 0);

        assert_int_equal(image_store_reachable(f->is, &v, &e), 0);
        assert_int_equal(strv_len(v), 8);
        struct blob want[] = { shared, l2, ca, ma, arm, ia, cb, mb };
        for (size_t i = 0; i < ARRAY_SIZE(want); i++)
                assert_true(strv_has(v, want[i].digest));
        for (size_t i = 1; v[i]; i++)
                assert_true(strcmp(v[i - 1], v[i]) < 0);
        strv_free(v);

        /* the index's size: index + the amd64 manifest + config + layers */
        struct image_record rec = { 0 };
        struct image_platform p;
        uint64_t size = 0;
        image_platform_default(&p);
        assert_int_equal(image_store_get(f->is, "x/a:1", &rec, &e), 0);
        assert_int_equal(image_store_size(f->is, &rec, &p, &size, &e), 0);
        assert_int_equal(size, ia.size + ma.size + ca.size + shared.size + l2.size);
        /* arm64 not in the store: the stored manifest is used */
        assert_int_equal(image_platform_parse("linux/arm64", &p, &e), 0);
        assert_int_equal(image_store_size(f->is, &rec, &p, &size, &e), 0);
        assert_int_equal(size, ia.size + ma.size + ca.size + shared.size + l2.size);
        image_record_done(&rec);

        /* everything referenced stays */
        assert_int_equal(image_store_gc(f->is, &v, &e), 0);
        assert_int_equal(strv_len(v), 1);
        assert_string_equal(v[0], stray.digest);
        strv_free(v);
        assert_false(stored(f, stray));

        /* A's name gone: its blobs go, the shared layer stays */
        assert_int_equal(image_store_remove(f->is, "x/a:1", &e), 0);
        assert_int_equal(image_store_gc(f->is, &v, &e), 0);
        assert_int_equal(strv_len(v), 4);
        struct blob gone[] = { l2, ca, ma, ia };
        for (size_t i = 0; i < ARRAY_SIZE(gone); i++) {
                assert_true(strv_has(v, gone[i].digest));
                assert_false(stored(f, gone[i]));
        }
        strv_free(v);
        assert_true(stored(f, shared) && stored(f, cb) && stored(f, mb));

        /* the last name gone; a blob being ingested is kept, and its ingest */
        struct content_writer *w = NULL;
        assert_int_equal(image_store_remove(f->is, "x/b:1", &e), 0);
        assert_int_equal(content_writer_open(f->cs, cb.digest, (int64_t) cb.size, &w, &e), 0);
        assert_int_equal(image_store_gc(f->is, &v, &e), 0);
        assert_int_equal(strv_len(v), 2);
        assert_true(strv_has(v, shared.digest) && strv_has(v, mb.digest));
        strv_free(v);
        assert_true(stored(f, cb));
        char *ingest = unit_path(f->content, "ingest");
        assert_int_equal(unit_count_entries(ingest), 1);
        content_writer_close(w, false);
        /* a left-over ingest nobody writes does not keep the blob */
        assert_int_equal(image_store_gc(f->is, &v, &e), 0);
        assert_int_equal(strv_len(v), 1);
        assert_string_equal(v[0], cb.digest);
        strv_free(v);
        assert_int_equal(unit_count_entries(ingest), 1);
        free(ingest);

        struct content_info *all = NULL;
        size_t n = 9;
        assert_int_equal(content_list(f->cs, &all, &n, &e), 0);
        assert_int_equal(n, 0);
        free(all);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_put_get_list, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tag_rm, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reachable_and_gc, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

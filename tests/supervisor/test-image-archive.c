/* Unit tests for supervisor/image-archive: export of an image made in a
 * temporary store (both formats), import into a second store (same
 * digests, names), and archives written here with libarchive that must be
 * refused with nothing recorded or stored: a blob whose bytes do not match
 * its name, a descriptor whose size is wrong, a missing layer. Names are
 * normalised. No network, no root. */
#include "unit-helpers.h"

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>

#include "cleanup.h"
#include "content-store.h"
#include "image-archive.h"
#include "image-reference.h"
#include "image-store.h"

struct store {
        char *content;
        struct content_store *cs;
        struct image_store *is;
};

struct fixture {
        char *dir;
        struct store a, b;
        char *tar;
};

static void store_open(struct fixture *f, struct store *s, const char *name)
{
        struct berr e = { 0 };
        char *root = unit_path(f->dir, name);
        assert_int_equal(mkdir(root, 0700), 0);
        s->content = unit_path(root, "content");
        if (content_store_open(s->content, &s->cs, &e) < 0 || image_store_open(root, s->cs, &s->is, &e) < 0)
                fail_msg("open: %s", e.msg);
        free(root);
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        f->dir = unit_mkdtemp("archive");
        store_open(f, &f->a, "a");
        store_open(f, &f->b, "b");
        f->tar = unit_path(f->dir, "image.tar");
        *state = f;
        return 0;
}

static void store_close(struct store *s)
{
        image_store_free(s->is);
        content_store_free(s->cs);
        free(s->content);
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        store_close(&f->a);
        store_close(&f->b);
        unit_rm_tree(f->dir);
        free(f->dir);
        free(f->tar);
        free(f);
        return 0;
}

#define CONFIG "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Labels\":{\"k\":\"v\"}}," \
               "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}"
#define LAYER "not really a tar, but blobs are only bytes here"

struct image {
        char config[CONTENT_DIGEST_MAX], layer[CONTENT_DIGEST_MAX], manifest[CONTENT_DIGEST_MAX];
        char manifest_json[2048];
};

static void put(struct store *s, const char *data, char digest[CONTENT_DIGEST_MAX])
{
        struct berr e = { 0 };
        if (content_write_blob(s->cs, data, strlen(data), NULL, digest, &e) < 0)
                fail_msg("write: %s", e.msg);
}

static void make_image(struct store *s, struct image *im, const char *name)
{
        struct berr e = { 0 };
        put(s, CONFIG, im->config);
        put(s, LAYER, im->layer);
        snprintf(im->manifest_json, sizeof(im->manifest_json),
                 "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":"
                 "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},\"layers\":["
                 "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":%zu}]}",
                 MEDIA_OCI_MANIFEST, im->config, strlen(CONFIG), im->layer, strlen(LAYER));
        put(s, im->manifest_json, im->manifest);
        if (image_store_put(s->is, name, MEDIA_OCI_MANIFEST, im->manifest, im->config, &e) < 0)
                fail_msg("put: %s", e.msg);
}

static size_t n_blobs(struct store *s)
{
        struct content_info *v = NULL;
        size_t n = 0;
        assert_int_equal(content_list(s->cs, &v, &n, NULL), 0);
        free(v);
        return n;
}

static size_t n_images(struct store *s)
{
        struct image_record *v = NULL;
        size_t n = 0;
        assert_int_equal(image_store_list(s->is, &v, &n, NULL), 0);
        image_records_free(v, n);
        return n;
}

/* The names of the regular files in the tar at path and, for name, its data. */
static char *tar_read(const char *path, const char *name)
{
        struct archive *a = archive_read_new();
        struct archive_entry *ent;
        char *data = NULL;
        archive_read_support_format_tar(a);
        assert_int_equal(archive_read_open_filename(a, path, 10240), ARCHIVE_OK);
        while (archive_read_next_header(a, &ent) == ARCHIVE_OK) {
                if (strcmp(archive_entry_pathname(ent), name) != 0)
                        continue;
                size_t len = (size_t) archive_entry_size(ent);
                data = calloc(1, len + 1);
                assert_non_null(data);
                assert_int_equal(archive_read_data(a, data, len), (la_ssize_t) len);
        }
        archive_read_free(a);
        return data;
}

static void test_name(void **state)
{
        char buf[IMAGE_REF_STRING_MAX];
        struct berr e = { 0 };
        (void) state;
        assert_int_equal(image_archive_name("busybox:latest", buf, sizeof(buf), &e), 0);
        assert_string_equal(buf, "docker.io/library/busybox:latest");
        assert_int_equal(image_archive_name("localhost/x", buf, sizeof(buf), &e), 0);
        assert_string_equal(buf, "localhost/x:latest");
        assert_int_equal(image_archive_name("Bad Name", buf, sizeof(buf), &e), -EINVAL);
        enum image_archive_format fmt;
        assert_int_equal(image_archive_format_parse("oci", &fmt, &e), 0);
        assert_int_equal(fmt, IMAGE_ARCHIVE_OCI);
        assert_int_equal(image_archive_format_parse("docker", &fmt, &e), 0);
        assert_int_equal(fmt, IMAGE_ARCHIVE_DOCKER);
        assert_int_equal(image_archive_format_parse("tar", &fmt, &e), -EINVAL);
}

static void round_trip(struct fixture *f, enum image_archive_format fmt)
{
        struct berr e = { 0 };
        struct image im;
        struct image_platform p;
        const char *names[] = { "docker.io/library/busybox:latest" };
        char **got = NULL;
        image_platform_default(&p);
        make_image(&f->a, &im, names[0]);
        if (image_archive_export(f->a.is, f->a.cs, names, 1, &p, fmt, f->tar, &e) < 0)
                fail_msg("export: %s", e.msg);

        _cleanup_free_ char *index = tar_read(f->tar, "index.json");
        _cleanup_free_ char *manifest = tar_read(f->tar, "manifest.json");
        assert_non_null(index);
        assert_non_null(strstr(index, "\"org.opencontainers.image.ref.name\":\"latest\""));
        assert_non_null(strstr(index, im.manifest));
        if (fmt == IMAGE_ARCHIVE_DOCKER) {
                assert_non_null(manifest);
                assert_non_null(strstr(manifest, "\"RepoTags\":[\"docker.io/library/busybox:latest\"]"));
                assert_non_null(strstr(manifest, im.config + strlen("sha256:")));
        } else {
                assert_null(manifest);
        }

        if (image_archive_import(f->b.is, f->b.cs, f->tar, &p, &got, &e) < 0)
                fail_msg("import: %s", e.msg);
        assert_non_null(got);
        assert_string_equal(got[0], names[0]);
        assert_null(got[1]);
        strv_free(got);
        struct image_record rec = { 0 };
        assert_int_equal(image_store_get(f->b.is, names[0], &rec, &e), 0);
        assert_string_equal(rec.digest, im.manifest);
        assert_string_equal(rec.labels[0], "k");
        image_record_done(&rec);
        assert_int_equal(n_blobs(&f->b), 3);
}

static void test_round_trip_docker(void **state)
{
        round_trip(*state, IMAGE_ARCHIVE_DOCKER);
}

static void test_round_trip_oci(void **state)
{
        round_trip(*state, IMAGE_ARCHIVE_OCI);
}

static void test_export_unknown(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        struct image_platform p;
        const char *names[] = { "docker.io/library/nothing:latest" };
        image_platform_default(&p);
        assert_true(image_archive_export(f->a.is, f->a.cs, names, 1, &p, IMAGE_ARCHIVE_DOCKER, f->tar, &e) < 0);
        assert_int_equal(access(f->tar, F_OK), -1);
}

/* A tar of name → data pairs. */
static void write_tar(const char *path, const char *const *entries)
{
        struct archive *a = archive_write_new();
        archive_write_set_format_pax_restricted(a);
        assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
        for (size_t i = 0; entries[i]; i += 2) {
                struct archive_entry *ent = archive_entry_new();
                archive_entry_set_pathname(ent, entries[i]);
                archive_entry_set_filetype(ent, AE_IFREG);
                archive_entry_set_perm(ent, 0644);
                archive_entry_set_size(ent, (la_int64_t) strlen(entries[i + 1]));
                assert_int_equal(archive_write_header(a, ent), ARCHIVE_OK);
                archive_write_data(a, entries[i + 1], strlen(entries[i + 1]));
                archive_entry_free(ent);
        }
        archive_write_close(a);
        archive_write_free(a);
}

static char *blob_name(const char *digest)
{
        char *s = NULL;
        assert_true(asprintf(&s, "blobs/sha256/%s", digest + strlen("sha256:")) > 0);
        return s;
}

/* An archive of image im (from store a) whose index.json says size for
 * the manifest, with the layer's bytes replaced by layer (NULL: left out). */
static int import_crafted(struct fixture *f, const struct image *im, size_t size, const char *layer, struct berr *e)
{
        _cleanup_free_ char *index = NULL;
        _cleanup_free_ char *bc = blob_name(im->config), *bl = blob_name(im->layer), *bm = blob_name(im->manifest);
        struct image_platform p;
        image_platform_default(&p);
        assert_true(asprintf(&index,
                             "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"%s\",\"digest\":\"%s\","
                             "\"size\":%zu,\"annotations\":{\"org.opencontainers.image.ref.name\":\"x/y:1\"}}]}",
                             MEDIA_OCI_MANIFEST, im->manifest, size) > 0);
        const char *entries[] = { bc, CONFIG, bm, im->manifest_json, "index.json", index,
                                  layer ? bl : NULL, layer, NULL };
        write_tar(f->tar, entries);
        return image_archive_import(f->b.is, f->b.cs, f->tar, &p, NULL, e);
}

static void test_import_refusals(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        struct image im;
        make_image(&f->a, &im, "docker.io/library/busybox:latest");
        size_t msize = strlen(im.manifest_json);

        /* a ref.name that is a whole reference names the image */
        assert_int_equal(import_crafted(f, &im, msize, LAYER, &e), 0);
        struct image_record rec = { 0 };
        assert_int_equal(image_store_get(f->b.is, "docker.io/x/y:1", &rec, &e), 0);
        image_record_done(&rec);
        assert_int_equal(image_store_remove(f->b.is, "docker.io/x/y:1", &e), 0);
        assert_int_equal(image_store_gc(f->b.is, NULL, &e), 0);
        assert_int_equal(n_blobs(&f->b), 0);

        assert_true(import_crafted(f, &im, msize, "corrupted bytes of the same length, or not", &e) < 0);
        assert_non_null(strstr(e.msg, im.layer + strlen("sha256:")));
        assert_int_equal(n_blobs(&f->b), 0);
        assert_int_equal(n_images(&f->b), 0);

        assert_int_equal(import_crafted(f, &im, msize + 1, LAYER, &e), -EBADMSG);
        assert_non_null(strstr(e.msg, "size"));
        assert_int_equal(n_blobs(&f->b), 0);
        assert_int_equal(n_images(&f->b), 0);

        assert_int_equal(import_crafted(f, &im, msize, NULL, &e), -ENOENT);
        assert_non_null(strstr(e.msg, "not in the archive"));
        assert_int_equal(n_blobs(&f->b), 0);
        assert_int_equal(n_images(&f->b), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_name),
                cmocka_unit_test_setup_teardown(test_round_trip_docker, setup, teardown),
                cmocka_unit_test_setup_teardown(test_round_trip_oci, setup, teardown),
                cmocka_unit_test_setup_teardown(test_export_unknown, setup, teardown),
                cmocka_unit_test_setup_teardown(test_import_refusals, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

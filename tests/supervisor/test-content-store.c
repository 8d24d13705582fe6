/* Unit tests for supervisor/content-store: ingest with verification,
 * resume, corrupt data refused, atomic visibility, info/read/list/delete. */
#include "unit-helpers.h"

#include "cleanup.h"
#include "content-store.h"

/* sha256("hello world\n") */
#define HELLO "hello world\n"
#define HELLO_DIGEST "sha256:a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447"
#define EMPTY_DIGEST "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct fixture {
        char *dir;
        struct content_store *cs;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        f->dir = unit_mkdtemp("content");
        char *root = unit_path(f->dir, "content");
        struct berr e = { 0 };
        if (content_store_open(root, &f->cs, &e) < 0)
                fail_msg("open: %s", e.msg);
        free(root);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        content_store_free(f->cs);
        unit_rm_tree(f->dir);
        free(f->dir);
        free(f);
        return 0;
}

static char *blobs_dir(struct fixture *f)
{
        return unit_path(f->dir, "content/blobs/sha256");
}

static char *ingest_dir(struct fixture *f)
{
        return unit_path(f->dir, "content/ingest");
}

static void test_digest(void **state)
{
        (void) state;
        char d[CONTENT_DIGEST_MAX];
        assert_int_equal(content_digest_of(HELLO, strlen(HELLO), d), 0);
        assert_string_equal(d, HELLO_DIGEST);
        assert_int_equal(content_digest_of("", 0, d), 0);
        assert_string_equal(d, EMPTY_DIGEST);
        assert_int_equal(content_digest_check(HELLO_DIGEST, NULL), 0);
        assert_int_equal(content_digest_check("sha256:../../../../etc/passwd", NULL), -EINVAL);
        assert_int_equal(content_digest_check("sha512:a948", NULL), -EINVAL);
        assert_int_equal(content_digest_check("sha256:A948904F2F0F479B8F8197694B30184B0D2ED1C1CD2A1EC0FB85D299A192A447",
                                              NULL),
                         -EINVAL);
}

static void test_write_and_read(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        struct content_writer *w = NULL;
        struct content_info info;

        assert_int_equal(content_info(f->cs, HELLO_DIGEST, &info, &e), -ENOENT);
        assert_non_null(strstr(e.msg, HELLO_DIGEST));
        assert_int_equal(content_writer_open(f->cs, HELLO_DIGEST, (int64_t) strlen(HELLO), &w, &e), 0);
        assert_int_equal(content_writer_offset(w), 0);
        assert_int_equal(content_writer_write(w, "hello ", 6, &e), 0);
        assert_int_equal(content_writer_write(w, "world\n", 6, &e), 0);

        /* not visible before the commit */
        char *blobs = blobs_dir(f);
        assert_int_equal(unit_count_entries(blobs), 0);
        assert_int_equal(content_info(f->cs, HELLO_DIGEST, &info, NULL), -ENOENT);

        if (content_writer_commit(w, &e) < 0)
                fail_msg("commit: %s", e.msg);
        content_writer_close(w, false);

        assert_int_equal(content_info(f->cs, HELLO_DIGEST, &info, &e), 0);
        assert_int_equal(info.size, strlen(HELLO));
        assert_string_equal(info.digest, HELLO_DIGEST);
        char *path = unit_path(blobs, HELLO_DIGEST + 7);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0444);
        free(path);

        char *data = NULL;
        size_t len = 0;
        assert_int_equal(content_read(f->cs, HELLO_DIGEST, 1024, &data, &len, &e), 0);
        assert_int_equal(len, strlen(HELLO));
        assert_memory_equal(data, HELLO, len);
        free(data);
        assert_int_equal(content_read(f->cs, HELLO_DIGEST, 4, &data, &len, &e), -EFBIG);

        int fd = content_open(f->cs, HELLO_DIGEST, &e);
        assert_true(fd >= 0);
        char buf[32];
        assert_int_equal(read(fd, buf, sizeof(buf)), (ssize_t) strlen(HELLO));
        close(fd);

        /* the ingest is gone */
        char *ingest = ingest_dir(f);
        assert_int_equal(unit_count_entries(ingest), 0);
        free(ingest);
        free(blobs);
}

static void test_corrupt_refused(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        struct content_writer *w = NULL;

        assert_int_equal(content_writer_open(f->cs, HELLO_DIGEST, (int64_t) strlen(HELLO), &w, &e), 0);
        assert_int_equal(content_writer_write(w, "hello WORLD\n", 12, &e), 0);
        assert_int_equal(content_writer_commit(w, &e), -EBADMSG);
        assert_non_null(strstr(e.msg, "digest mismatch"));
        assert_non_null(strstr(e.msg, HELLO_DIGEST));
        content_writer_close(w, false);

        char *blobs = blobs_dir(f), *ingest = ingest_dir(f);
        assert_int_equal(unit_count_entries(blobs), 0);
        /* wrong bytes are not kept for a resume */
        assert_int_equal(unit_count_entries(ingest), 0);

        /* too short */
        assert_int_equal(content_writer_open(f->cs, HELLO_DIGEST, (int64_t) strlen(HELLO), &w, &e), 0);
        assert_int_equal(content_writer_write(w, "hello", 5, &e), 0);
        assert_int_equal(content_writer_commit(w, &e), -EBADMSG);
        assert_non_null(strstr(e.msg, "size 5"));
        content_writer_close(w, false);
        assert_int_equal(unit_count_entries(blobs), 0);

        /* too long */
        assert_int_equal(content_writer_open(f->cs, HELLO_DIGEST, (int64_t) strlen(HELLO), &w, &e), 0);
        assert_int_equal(content_writer_write(w, HELLO "x", strlen(HELLO) + 1, &e), -EFBIG);
        content_writer_close(w, true);
        assert_int_equal(unit_count_entries(blobs), 0);
        assert_int_equal(unit_count_entries(ingest), 0);

        /* an in-memory blob under a wrong digest */
        assert_int_equal(content_write_blob(f->cs, "nope", 4, HELLO_DIGEST, NULL, &e), -EBADMSG);
        assert_int_equal(unit_count_entries(blobs), 0);
        free(blobs);
        free(ingest);
}

static void test_resume(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        struct content_writer *w = NULL;

        assert_int_equal(content_writer_open(f->cs, HELLO_DIGEST, (int64_t) strlen(HELLO), &w, &e), 0);
        assert_int_equal(content_writer_write(w, "hello ", 6, &e), 0);
        content_writer_close(w, false); /* broken off: kept */

        char *data = unit_path(f->dir, "content/ingest/sha256-a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447/data");
        assert_true(unit_exists(data));

        assert_int_equal(content_writer_open(f->cs, HELLO_DIGEST, (int64_t) strlen(HELLO), &w, &e), 0);
        assert_int_equal(content_writer_offset(w), 6);
        assert_int_equal(content_writer_write(w, "world\n", 6, &e), 0);
        if (content_writer_commit(w, &e) < 0)
                fail_msg("commit after resume: %s", e.msg);
        content_writer_close(w, false);
        assert_false(unit_exists(data));

        struct content_info info;
        assert_int_equal(content_info(f->cs, HELLO_DIGEST, &info, &e), 0);
        assert_int_equal(info.size, 12);
        free(data);
}

static void test_resume_reset(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        struct content_writer *w = NULL;

        /* a wrong prefix left behind: the source starts over (reset) */
        assert_int_equal(content_writer_open(f->cs, HELLO_DIGEST, (int64_t) strlen(HELLO), &w, &e), 0);
        assert_int_equal(content_writer_write(w, "HELLO ", 6, &e), 0);
        content_writer_close(w, false);
        assert_int_equal(content_writer_open(f->cs, HELLO_DIGEST, (int64_t) strlen(HELLO), &w, &e), 0);
        assert_int_equal(content_writer_offset(w), 6);
        assert_int_equal(content_writer_reset(w, &e), 0);
        assert_int_equal(content_writer_offset(w), 0);
        assert_int_equal(content_writer_write(w, HELLO, strlen(HELLO), &e), 0);
        assert_int_equal(content_writer_commit(w, &e), 0);
        content_writer_close(w, false);

        /* an ingest longer than the blob cannot be its prefix: dropped on open */
        assert_int_equal(content_delete(f->cs, HELLO_DIGEST, &e), 0);
        char *dir = unit_path(f->dir, "content/ingest/sha256-a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447");
        assert_int_equal(mkdir(dir, 0700), 0);
        char *data = unit_path(dir, "data");
        unit_write_str(data, "this is far longer than twelve bytes");
        assert_int_equal(content_writer_open(f->cs, HELLO_DIGEST, (int64_t) strlen(HELLO), &w, &e), 0);
        assert_int_equal(content_writer_offset(w), 0);
        content_writer_close(w, true);
        assert_false(unit_exists(dir));
        free(data);
        free(dir);
}

static void test_one_writer(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        struct content_writer *w1 = NULL, *w2 = NULL;

        assert_int_equal(content_writer_open(f->cs, HELLO_DIGEST, -1, &w1, &e), 0);
        assert_int_equal(content_writer_open(f->cs, HELLO_DIGEST, -1, &w2, &e), -EBUSY);
        assert_non_null(strstr(e.msg, "another writer"));
        /* unknown size: only the digest is checked */
        assert_int_equal(content_writer_write(w1, HELLO, strlen(HELLO), &e), 0);
        assert_int_equal(content_writer_commit(w1, &e), 0);
        content_writer_close(w1, false);
}

/* A writer without an expected digest (legacy docker save layers): the
 * blob goes in under the digest of its bytes; one already there is
 * reported (1) and not written again; its ingest never stays. */
static void test_unknown_digest(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        struct content_writer *w = NULL, *w2 = NULL;
        _cleanup_free_ char *ingest = ingest_dir(f), *blobs = blobs_dir(f);

        assert_int_equal(content_writer_open(f->cs, NULL, -1, &w, &e), 0);
        assert_int_equal(content_writer_open(f->cs, NULL, -1, &w2, &e), 0); /* each its own ingest */
        assert_int_equal(unit_count_entries(ingest), 2);
        assert_null(content_writer_digest(w));
        assert_int_equal(content_writer_write(w, "hello ", 6, &e), 0);
        assert_int_equal(content_writer_write(w, "world\n", 6, &e), 0);
        assert_int_equal(content_writer_commit(w, &e), 0);
        assert_string_equal(content_writer_digest(w), HELLO_DIGEST);
        content_writer_close(w, false);
        struct content_info info;
        assert_int_equal(content_info(f->cs, HELLO_DIGEST, &info, &e), 0);
        assert_int_equal(info.size, strlen(HELLO));
        /* the same bytes again: already there */
        assert_int_equal(content_writer_write(w2, HELLO, strlen(HELLO), &e), 0);
        assert_int_equal(content_writer_commit(w2, &e), 1);
        assert_string_equal(content_writer_digest(w2), HELLO_DIGEST);
        content_writer_close(w2, false);
        assert_int_equal(unit_count_entries(ingest), 0);
        assert_int_equal(unit_count_entries(blobs), 1);
        /* an unfinished one is dropped even without discard */
        assert_int_equal(content_writer_open(f->cs, NULL, 3, &w, &e), 0);
        assert_int_equal(content_writer_write(w, "abcd", 4, &e), -EFBIG);
        content_writer_close(w, false);
        assert_int_equal(unit_count_entries(ingest), 0);
        assert_int_equal(unit_count_entries(blobs), 1);
}

static void test_list_delete(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        char d[CONTENT_DIGEST_MAX];

        assert_int_equal(content_write_blob(f->cs, HELLO, strlen(HELLO), NULL, d, &e), 0);
        assert_string_equal(d, HELLO_DIGEST);
        assert_int_equal(content_write_blob(f->cs, "", 0, EMPTY_DIGEST, NULL, &e), 0);
        /* again: already there is fine */
        assert_int_equal(content_write_blob(f->cs, "", 0, EMPTY_DIGEST, NULL, &e), 0);

        /* stray files in blobs/ are not content */
        char *blobs = blobs_dir(f);
        char *junk = unit_path(blobs, "junk");
        unit_write_str(junk, "x");

        struct content_info *v = NULL;
        size_t n = 0;
        assert_int_equal(content_list(f->cs, &v, &n, &e), 0);
        assert_int_equal(n, 2);
        assert_string_equal(v[0].digest, HELLO_DIGEST); /* sorted: a948 < e3b0 */
        assert_int_equal(v[0].size, 12);
        assert_string_equal(v[1].digest, EMPTY_DIGEST);
        assert_int_equal(v[1].size, 0);
        free(v);

        assert_int_equal(content_delete(f->cs, HELLO_DIGEST, &e), 0);
        assert_int_equal(content_delete(f->cs, HELLO_DIGEST, &e), -ENOENT);
        assert_non_null(strstr(e.msg, HELLO_DIGEST));
        assert_int_equal(content_delete(f->cs, "sha256:../../x", &e), -EINVAL);
        assert_int_equal(content_list(f->cs, &v, &n, &e), 0);
        assert_int_equal(n, 1);
        free(v);
        free(junk);
        free(blobs);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_digest),
                cmocka_unit_test_setup_teardown(test_write_and_read, setup, teardown),
                cmocka_unit_test_setup_teardown(test_corrupt_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_resume, setup, teardown),
                cmocka_unit_test_setup_teardown(test_resume_reset, setup, teardown),
                cmocka_unit_test_setup_teardown(test_one_writer, setup, teardown),
                cmocka_unit_test_setup_teardown(test_list_delete, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unknown_digest, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

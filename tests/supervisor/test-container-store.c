/* Unit tests for supervisor/container-store: ids, create / get / put /
 * list / remove, one file per record written atomically, unreadable
 * records skipped by list. */
#include "unit-helpers.h"

#include "cleanup.h"
#include "container-store.h"

struct fixture {
        char *dir;
        struct container_store *cs;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        f->dir = unit_mkdtemp("containers");
        struct berr e = { 0 };
        if (container_store_open(f->dir, &f->cs, &e) < 0)
                fail_msg("open: %s", e.msg);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        container_store_free(f->cs);
        unit_rm_tree(f->dir);
        free(f->dir);
        free(f);
        return 0;
}

static json_t *rec(const char *id, const char *image)
{
        json_t *j = json_pack("{s:s, s:s, s:s, s:{}}", "id", id, "image", image, "state", "created", "spec");
        assert_non_null(j);
        return j;
}

static void test_id_valid(void **state)
{
        (void) state;
        char long_id[130];
        assert_true(container_id_valid("a"));
        assert_true(container_id_valid("web-1_2.x"));
        assert_true(container_id_valid("0abc"));
        assert_false(container_id_valid(NULL));
        assert_false(container_id_valid(""));
        assert_false(container_id_valid("-a"));
        assert_false(container_id_valid(".a"));
        assert_false(container_id_valid("_a"));
        assert_false(container_id_valid("a/b"));
        assert_false(container_id_valid("../x"));
        assert_false(container_id_valid("a b"));
        memset(long_id, 'a', 128);
        long_id[128] = '\0';
        assert_true(container_id_valid(long_id));
        long_id[128] = 'a';
        long_id[129] = '\0';
        assert_false(container_id_valid(long_id));
}

static void test_create_get_put_remove(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        json_t *r1 = rec("c1", "busybox"), *got = NULL;
        _cleanup_free_ char *path = unit_path(f->dir, "meta/containers/c1.json");

        assert_int_equal(container_store_create(f->cs, r1, &e), 0);
        assert_true(unit_exists(path));
        assert_int_equal(container_store_create(f->cs, r1, &e), -EEXIST);
        assert_non_null(strstr(e.msg, "already exists"));
        assert_int_equal(container_store_get(f->cs, "c1", &got, &e), 0);
        assert_true(json_equal(got, r1));
        json_decref(got);

        json_object_set_new(r1, "image", json_string("alpine"));
        assert_int_equal(container_store_put(f->cs, r1, &e), 0);
        assert_int_equal(container_store_get(f->cs, "c1", &got, &e), 0);
        assert_string_equal(json_string_value(json_object_get(got, "image")), "alpine");
        json_decref(got);

        json_t *r2 = rec("c2", "x");
        assert_int_equal(container_store_put(f->cs, r2, &e), -ENOENT);
        assert_int_equal(container_store_get(f->cs, "c2", &got, &e), -ENOENT);
        assert_non_null(strstr(e.msg, "not found"));

        assert_int_equal(container_store_remove(f->cs, "c1", &e), 0);
        assert_false(unit_exists(path));
        assert_int_equal(container_store_remove(f->cs, "c1", &e), -ENOENT);
        assert_int_equal(container_store_get(f->cs, "c1", &got, &e), -ENOENT);
        /* no temp files left behind */
        _cleanup_free_ char *dir = unit_path(f->dir, "meta/containers");
        assert_int_equal(unit_count_entries(dir), 0);
        json_decref(r1);
        json_decref(r2);
}

static void test_invalid_ids_refused(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        json_t *got = NULL;
        json_t *bad = rec("../escape", "x");
        assert_int_equal(container_store_create(f->cs, bad, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "invalid container id"));
        assert_int_equal(container_store_get(f->cs, "../escape", &got, &e), -EINVAL);
        assert_int_equal(container_store_remove(f->cs, "a/b", &e), -EINVAL);
        _cleanup_free_ char *esc = unit_path(f->dir, "meta/escape.json");
        assert_false(unit_exists(esc));
        json_decref(bad);
}

static void test_list_sorted_skips_bad(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        const char *ids[] = { "zeta", "alpha", "mid" };
        for (size_t i = 0; i < 3; i++) {
                json_t *r = rec(ids[i], "img");
                assert_int_equal(container_store_create(f->cs, r, &e), 0);
                json_decref(r);
        }
        _cleanup_free_ char *junk = unit_path(f->dir, "meta/containers/broken.json");
        _cleanup_free_ char *arr = unit_path(f->dir, "meta/containers/array.json");
        _cleanup_free_ char *other = unit_path(f->dir, "meta/containers/notes.txt");
        unit_write_str(junk, "{not json");
        unit_write_str(arr, "[1, 2]");
        unit_write_str(other, "ignored");

        json_t *list = NULL;
        assert_int_equal(container_store_list(f->cs, &list, &e), 0);
        assert_int_equal(json_array_size(list), 3);
        assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "id")), "alpha");
        assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "id")), "mid");
        assert_string_equal(json_string_value(json_object_get(json_array_get(list, 2), "id")), "zeta");
        json_decref(list);

        /* an empty store lists as [] */
        for (size_t i = 0; i < 3; i++)
                assert_int_equal(container_store_remove(f->cs, ids[i], &e), 0);
        unlink(junk);
        unlink(arr);
        assert_int_equal(container_store_list(f->cs, &list, &e), 0);
        assert_int_equal(json_array_size(list), 0);
        json_decref(list);
}

static void test_reopen_keeps_records(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        json_t *r = rec("keep", "img"), *got = NULL;
        assert_int_equal(container_store_create(f->cs, r, &e), 0);
        container_store_free(f->cs);
        f->cs = NULL;
        assert_int_equal(container_store_open(f->dir, &f->cs, &e), 0);
        assert_int_equal(container_store_get(f->cs, "keep", &got, &e), 0);
        assert_true(json_equal(got, r));
        json_decref(got);
        json_decref(r);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_id_valid),
                cmocka_unit_test_setup_teardown(test_create_get_put_remove, setup, teardown),
                cmocka_unit_test_setup_teardown(test_invalid_ids_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_list_sorted_skips_bad, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reopen_keeps_records, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for supervisor/snapshot-overlay's metadata: prepare, view,
 * commit, remove, list, mounts (the options, not a mount), usage. No root. */
#include "unit-helpers.h"

#include "cleanup.h"
#include "snapshot-overlay.h"

struct fixture {
        char *dir;
        struct snapshot_overlay *sn;
};

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        f->dir = unit_mkdtemp("snap");
        struct berr e = { 0 };
        if (snapshot_overlay_open(f->dir, &f->sn, &e) < 0)
                fail_msg("open: %s", e.msg);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        snapshot_overlay_free(f->sn);
        unit_rm_tree(f->dir);
        free(f->dir);
        free(f);
        return 0;
}

static char *fs_of(struct fixture *f, int id)
{
        char *p = NULL;
        assert_true(asprintf(&p, "%s/snapshots/%d/fs", f->dir, id) > 0);
        return p;
}

static void test_chain(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        struct snapshot_mount m = { 0 };

        /* a first layer: a bind mount of its own fs */
        assert_int_equal(snapshot_overlay_prepare(f->sn, "x1", NULL, &m, &e), 0);
        char *fs1 = fs_of(f, 1), *fs2 = fs_of(f, 2), *fs3 = fs_of(f, 3);
        assert_string_equal(m.type, "bind");
        assert_string_equal(m.source, fs1);
        assert_string_equal(m.options, "rbind,rw");
        snapshot_mount_done(&m);
        char *file = unit_path(fs1, "hello");
        unit_write_str(file, "hello world\n");
        free(file);

        /* parents must be committed */
        assert_int_equal(snapshot_overlay_prepare(f->sn, "x2", "x1", NULL, &e), -EINVAL);
        assert_int_equal(snapshot_overlay_commit(f->sn, "L1", "x1", &e), 0);
        assert_int_equal(snapshot_overlay_stat(f->sn, "x1", &(struct snapshot_info) { 0 }, &e), -ENOENT);
        assert_int_equal(snapshot_overlay_commit(f->sn, "L1b", "L1", &e), -EINVAL);
        assert_int_equal(snapshot_overlay_prepare(f->sn, "x2", "missing", NULL, &e), -ENOENT);
        assert_int_equal(snapshot_overlay_prepare(f->sn, "L1", NULL, NULL, &e), -EEXIST);

        assert_int_equal(snapshot_overlay_prepare(f->sn, "x2", "L1", NULL, &e), 0);
        assert_int_equal(snapshot_overlay_commit(f->sn, "L2", "x2", &e), 0);
        assert_int_equal(snapshot_overlay_prepare(f->sn, "c", "L2", &m, &e), 0);
        char *want = NULL;
        assert_true(asprintf(&want, "workdir=%s/snapshots/3/work,upperdir=%s,lowerdir=%s:%s", f->dir, fs3, fs2,
                             fs1) > 0);
        assert_string_equal(m.type, "overlay");
        assert_string_equal(m.options, want);
        free(want);
        snapshot_mount_done(&m);

        /* views: one parent is a read-only bind, more are a lowerdir-only overlay */
        assert_int_equal(snapshot_overlay_view(f->sn, "v1", "L1", &m, &e), 0);
        assert_string_equal(m.type, "bind");
        assert_string_equal(m.source, fs1);
        assert_string_equal(m.options, "rbind,ro");
        snapshot_mount_done(&m);
        assert_int_equal(snapshot_overlay_view(f->sn, "v2", "L2", &m, &e), 0);
        assert_true(asprintf(&want, "lowerdir=%s:%s", fs2, fs1) > 0);
        assert_string_equal(m.options, want);
        free(want);
        snapshot_mount_done(&m);
        assert_int_equal(snapshot_overlay_commit(f->sn, "v2c", "v2", &e), -EINVAL);

        struct snapshot_info *v = NULL;
        size_t n = 0;
        assert_int_equal(snapshot_overlay_list(f->sn, &v, &n, &e), 0);
        assert_int_equal(n, 5);
        const char *keys[] = { "L1", "L2", "c", "v1", "v2" };
        const enum snapshot_kind kinds[] = { SNAPSHOT_COMMITTED, SNAPSHOT_COMMITTED, SNAPSHOT_ACTIVE, SNAPSHOT_VIEW,
                                             SNAPSHOT_VIEW };
        for (size_t i = 0; i < n; i++) {
                assert_string_equal(v[i].key, keys[i]);
                assert_int_equal(v[i].kind, kinds[i]);
        }
        assert_null(v[0].parent);
        assert_string_equal(v[1].parent, "L1");
        snapshot_infos_free(v, n);

        uint64_t bytes = 0, inodes = 0;
        assert_int_equal(snapshot_overlay_usage(f->sn, "L1", &bytes, &inodes, &e), 0);
        assert_int_equal(inodes, 2);
        assert_true(bytes > 0);

        /* remove: children first */
        assert_int_equal(snapshot_overlay_remove(f->sn, "L1", &e), -EBUSY);
        assert_non_null(strstr(e.msg, "has children"));
        for (size_t i = 5; i-- > 0;)
                if (snapshot_overlay_remove(f->sn, keys[i], &e) < 0)
                        fail_msg("%s", e.msg);
        assert_int_equal(snapshot_overlay_list(f->sn, &v, &n, &e), 0);
        assert_int_equal(n, 0);
        free(v);
        char *snaps = unit_path(f->dir, "snapshots");
        DIR *d = opendir(snaps);
        assert_non_null(d);
        struct dirent *de;
        while ((de = readdir(d)))
                assert_true(strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0);
        closedir(d);
        free(snaps);

        /* ids are not reused, and the metadata survives a reopen */
        assert_int_equal(snapshot_overlay_prepare(f->sn, "again", NULL, &m, &e), 0);
        char *fs6 = fs_of(f, 6);
        assert_string_equal(m.source, fs6);
        snapshot_mount_done(&m);
        snapshot_overlay_free(f->sn);
        assert_int_equal(snapshot_overlay_open(f->dir, &f->sn, &e), 0);
        struct snapshot_info info = { 0 };
        assert_int_equal(snapshot_overlay_stat(f->sn, "again", &info, &e), 0);
        assert_int_equal(info.id, 6);
        assert_int_equal(info.kind, SNAPSHOT_ACTIVE);
        snapshot_info_done(&info);
        free(fs1);
        free(fs2);
        free(fs3);
        free(fs6);
}

static void test_corrupt_metadata(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        char *meta = unit_path(f->dir, "meta/snapshots.json");
        unit_write_str(meta, "{\"next\": 1, \"snapshots\": [");
        assert_int_equal(snapshot_overlay_prepare(f->sn, "k", NULL, NULL, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "snapshots.json"));
        unit_write_str(meta, "[]");
        assert_int_equal(snapshot_overlay_prepare(f->sn, "k", NULL, NULL, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "not snapshot metadata"));
        free(meta);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_chain, setup, teardown),
                cmocka_unit_test_setup_teardown(test_corrupt_metadata, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

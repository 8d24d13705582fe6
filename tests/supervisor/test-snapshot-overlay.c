/* Unit tests for supervisor/snapshot-overlay's metadata: prepare, view,
 * commit, remove, list, mounts (the options, not a mount), usage; the copy
 * mode's copies (owners, devices and trusted.* xattrs only as root) and the
 * choice of mode. No root needed. */
#include "unit-helpers.h"

#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>

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
        if (snapshot_overlay_open_ex(f->dir, SNAPSHOT_MODE_OVERLAY, &f->sn, &e) < 0)
                fail_msg("open: %s", e.msg);
        *state = f;
        return 0;
}

static int setup_copy(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        f->dir = unit_mkdtemp("snapcopy");
        struct berr e = { 0 };
        if (snapshot_overlay_open_ex(f->dir, SNAPSHOT_MODE_COPY, &f->sn, &e) < 0)
                fail_msg("open: %s", e.msg);
        assert_int_equal(snapshot_overlay_mode(f->sn), SNAPSHOT_MODE_COPY);
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
        assert_int_equal(snapshot_overlay_mode(f->sn), SNAPSHOT_MODE_OVERLAY);
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


/* ---------- copy mode ---------- */

static void mk(const char *top, const char *rel, mode_t mode, const char *data)
{
        char *p = unit_path(top, rel);
        if (S_ISDIR(mode))
                assert_int_equal(mkdir(p, mode & 07777), 0);
        else if (S_ISREG(mode)) {
                unit_write_str(p, data);
                assert_int_equal(chmod(p, mode & 07777), 0);
        } else if (S_ISLNK(mode))
                assert_int_equal(symlink(data, p), 0);
        else
                assert_int_equal(mknod(p, mode, S_ISFIFO(mode) ? 0 : makedev(1, 3)), 0);
        free(p);
}

static void st_of(const char *top, const char *rel, struct stat *st)
{
        char *p = unit_path(top, rel);
        if (lstat(p, st) < 0)
                fail_msg("lstat \"%s\": %s", p, strerror(errno));
        free(p);
}

/* What a copy must keep of rel: type, mode, owner, size, mtime, rdev,
 * link target, the user.test xattr. */
static void assert_same(const char *a, const char *b, const char *rel)
{
        struct stat x, y;
        st_of(a, rel, &x);
        st_of(b, rel, &y);
        assert_int_equal(x.st_mode, y.st_mode);
        assert_int_equal(x.st_uid, y.st_uid);
        assert_int_equal(x.st_gid, y.st_gid);
        assert_int_equal(x.st_rdev, y.st_rdev);
        assert_int_equal(x.st_nlink, y.st_nlink);
        if (!S_ISDIR(x.st_mode)) {
                assert_int_equal(x.st_size, y.st_size);
                assert_int_equal(x.st_mtim.tv_sec, y.st_mtim.tv_sec);
                assert_int_equal(x.st_mtim.tv_nsec, y.st_mtim.tv_nsec);
        }
        assert_true(x.st_ino != y.st_ino);
        char *pa = unit_path(a, rel), *pb = unit_path(b, rel);
        if (S_ISLNK(x.st_mode)) {
                char ta[256] = { 0 }, tb[256] = { 0 };
                assert_true(readlink(pa, ta, sizeof(ta) - 1) > 0);
                assert_true(readlink(pb, tb, sizeof(tb) - 1) > 0);
                assert_string_equal(ta, tb);
        } else if (S_ISREG(x.st_mode)) {
                char *da = unit_read(pa, NULL), *db = unit_read(pb, NULL);
                assert_string_equal(da, db);
                free(da);
                free(db);
        }
        char va[64] = { 0 }, vb[64] = { 0 };
        ssize_t na = lgetxattr(pa, "user.test", va, sizeof(va)), nb = lgetxattr(pb, "user.test", vb, sizeof(vb));
        assert_int_equal(na, nb);
        if (na > 0)
                assert_string_equal(va, vb);
        free(pa);
        free(pb);
}

static void test_copy_chain(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        struct snapshot_mount m = { 0 };
        bool root = geteuid() == 0;

        assert_int_equal(snapshot_overlay_prepare(f->sn, "x1", NULL, &m, &e), 0);
        char *fs1 = fs_of(f, 1), *fs2 = fs_of(f, 2), *fs3 = fs_of(f, 3), *fs4 = fs_of(f, 4);
        assert_string_equal(m.type, "bind");
        assert_string_equal(m.source, fs1);
        assert_string_equal(m.options, "rbind,rw");
        snapshot_mount_done(&m);
        /* no overlay workdir in copy mode */
        char *work = unit_path(f->dir, "snapshots/1/work");
        assert_false(unit_exists(work));
        free(work);

        /* a tree with everything a copy must keep */
        mk(fs1, "d", S_IFDIR | 0750, NULL);
        mk(fs1, "d/f", S_IFREG | 0640, "data\n");
        mk(fs1, "d/suid", S_IFREG | 04755, "#!/bin/sh\n");
        mk(fs1, "d/sub", S_IFDIR | 0700, NULL);
        mk(fs1, "d/sub/deep", S_IFREG | 0600, "deep\n");
        mk(fs1, "rel", S_IFLNK, "d/f");
        mk(fs1, "abs", S_IFLNK, "/etc/passwd");
        mk(fs1, "fifo", S_IFIFO | 0620, NULL);
        char *p = unit_path(fs1, "d/f"), *q = unit_path(fs1, "hard"), *q2 = unit_path(fs1, "d/sub/hard2");
        assert_int_equal(link(p, q), 0);
        assert_int_equal(link(p, q2), 0);
        assert_int_equal(setxattr(p, "user.test", "v1", 2, 0), 0);
        struct timespec t[2] = { { 1600000000, 123456789 }, { 1600000001, 987654321 } };
        assert_int_equal(utimensat(AT_FDCWD, p, t, 0), 0);
        free(q);
        free(q2);
        if (root) {
                assert_int_equal(chown(p, 1000, 1001), 0);
                mk(fs1, "null", S_IFCHR | 0666, NULL);
                char *d = unit_path(fs1, "d");
                assert_int_equal(chown(d, 1002, 1003), 0);
                assert_int_equal(setxattr(d, "trusted.test", "t", 1, 0), 0);
                /* never carried into a copy: it would steer an overlay */
                assert_int_equal(setxattr(d, "trusted.overlay.opaque", "y", 1, 0), 0);
                free(d);
                char *l = unit_path(fs1, "abs");
                assert_int_equal(lchown(l, 1004, 1005), 0);
                free(l);
        }
        free(p);
        /* sockets are skipped */
        int sock = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char *sp = unit_path(fs1, "sock");
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sp);
        assert_int_equal(bind(sock, (struct sockaddr *) &sa, sizeof(sa)), 0);
        close(sock);
        free(sp);

        assert_int_equal(snapshot_overlay_commit(f->sn, "L1", "x1", &e), 0);
        if (snapshot_overlay_prepare(f->sn, "x2", "L1", &m, &e) < 0)
                fail_msg("%s", e.msg);
        assert_string_equal(m.type, "bind");
        assert_string_equal(m.source, fs2);
        assert_string_equal(m.options, "rbind,rw");
        snapshot_mount_done(&m);

        const char *rels[] = { "d", "d/f", "d/suid", "d/sub", "d/sub/deep", "rel", "abs", "fifo", "hard",
                               "d/sub/hard2" };
        for (size_t i = 0; i < ARRAY_SIZE(rels); i++)
                assert_same(fs1, fs2, rels[i]);
        struct stat a, b, c;
        /* hardlinks stay hardlinks, within the copy */
        st_of(fs2, "d/f", &a);
        st_of(fs2, "hard", &b);
        st_of(fs2, "d/sub/hard2", &c);
        assert_int_equal(a.st_ino, b.st_ino);
        assert_int_equal(a.st_ino, c.st_ino);
        assert_int_equal(a.st_nlink, 3);
        char *sock2 = unit_path(fs2, "sock");
        assert_false(unit_exists(sock2));
        free(sock2);
        if (root) {
                assert_same(fs1, fs2, "null");
                st_of(fs2, "null", &a);
                assert_true(S_ISCHR(a.st_mode));
                assert_int_equal(a.st_rdev, makedev(1, 3));
                char *d = unit_path(fs2, "d");
                char v[8] = { 0 };
                assert_int_equal(getxattr(d, "trusted.test", v, sizeof(v)), 1);
                assert_string_equal(v, "t");
                assert_int_equal(getxattr(d, "trusted.overlay.opaque", v, sizeof(v)), -1);
                free(d);
        }

        /* changes in the copy do not reach the parent */
        char *x = unit_path(fs2, "d/f");
        unit_write_str(x, "changed\n");
        free(x);
        x = unit_path(fs2, "d/sub/deep");
        assert_int_equal(unlink(x), 0);
        free(x);
        x = unit_path(fs1, "d/sub/deep");
        assert_true(unit_exists(x));
        free(x);
        x = unit_path(fs1, "hard");
        char *data = unit_read(x, NULL);
        assert_string_equal(data, "data\n");
        free(data);
        free(x);

        /* a committed copy holds the whole tree; a view copies it read-only */
        assert_int_equal(snapshot_overlay_commit(f->sn, "L2", "x2", &e), 0);
        assert_int_equal(snapshot_overlay_view(f->sn, "v", "L2", &m, &e), 0);
        assert_string_equal(m.type, "bind");
        assert_string_equal(m.source, fs3);
        assert_string_equal(m.options, "rbind,ro");
        snapshot_mount_done(&m);
        x = unit_path(fs3, "hard");
        data = unit_read(x, NULL);
        assert_string_equal(data, "changed\n");
        free(data);
        free(x);
        x = unit_path(fs3, "d/sub/deep");
        assert_false(unit_exists(x));
        free(x);
        assert_int_equal(snapshot_overlay_mounts(f->sn, "v", &m, &e), 0);
        assert_string_equal(m.options, "rbind,ro");
        snapshot_mount_done(&m);
        assert_int_equal(snapshot_overlay_commit(f->sn, "vc", "v", &e), -EINVAL);
        assert_int_equal(snapshot_overlay_prepare(f->sn, "c", "L2", &m, &e), 0);
        assert_string_equal(m.source, fs4);
        snapshot_mount_done(&m);

        uint64_t bytes = 0, inodes = 0;
        assert_int_equal(snapshot_overlay_usage(f->sn, "L2", &bytes, &inodes, &e), 0);
        assert_true(bytes > 0);
        /* fs, d, d/f (3 links, once), d/suid, d/sub, rel, abs, fifo [, null] */
        assert_int_equal(inodes, root ? 9 : 8);

        assert_int_equal(snapshot_overlay_remove(f->sn, "L1", &e), -EBUSY);
        const char *keys[] = { "c", "v", "L2", "L1" };
        for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
                if (snapshot_overlay_remove(f->sn, keys[i], &e) < 0)
                        fail_msg("%s", e.msg);
        char *snaps = unit_path(f->dir, "snapshots");
        assert_int_equal(unit_count_entries(snaps), 0);
        free(snaps);
        free(fs1);
        free(fs2);
        free(fs3);
        free(fs4);
}

static void test_copy_parent_missing_fs(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        assert_int_equal(snapshot_overlay_prepare(f->sn, "x1", NULL, NULL, &e), 0);
        assert_int_equal(snapshot_overlay_commit(f->sn, "L1", "x1", &e), 0);
        char *fs1 = fs_of(f, 1);
        unit_rm_tree(fs1);
        free(fs1);
        /* a failed copy leaves neither metadata nor a directory */
        assert_int_equal(snapshot_overlay_prepare(f->sn, "x2", "L1", NULL, &e), -ENOENT);
        assert_non_null(strstr(e.msg, "L1"));
        assert_int_equal(snapshot_overlay_stat(f->sn, "x2", &(struct snapshot_info) { 0 }, &e), -ENOENT);
        char *d2 = unit_path(f->dir, "snapshots/2");
        assert_false(unit_exists(d2));
        free(d2);
}

static void test_modes(void **state)
{
        (void) state;
        struct berr e = { 0 };
        struct snapshot_overlay *sn = NULL;
        char *dir = unit_mkdtemp("snapmode");
        unsetenv("BERTH_SNAPSHOTTER");

        /* made in copy mode: auto follows, overlay is refused, by name */
        assert_int_equal(snapshot_overlay_open_ex(dir, SNAPSHOT_MODE_COPY, &sn, &e), 0);
        assert_int_equal(snapshot_overlay_prepare(sn, "k", NULL, NULL, &e), 0);
        snapshot_overlay_free(sn);
        assert_int_equal(snapshot_overlay_open(dir, &sn, &e), 0);
        assert_int_equal(snapshot_overlay_mode(sn), SNAPSHOT_MODE_COPY);
        snapshot_overlay_free(sn);
        assert_int_equal(snapshot_overlay_open_ex(dir, SNAPSHOT_MODE_OVERLAY, &sn, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "made by the copy snapshotter"));
        assert_non_null(strstr(e.msg, "opened by the overlay snapshotter"));
        setenv("BERTH_SNAPSHOTTER", "overlay", 1);
        assert_int_equal(snapshot_overlay_open(dir, &sn, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "copy"));
        /* an explicit mode wins over the environment */
        assert_int_equal(snapshot_overlay_open_ex(dir, SNAPSHOT_MODE_COPY, &sn, &e), 0);
        snapshot_overlay_free(sn);
        setenv("BERTH_SNAPSHOTTER", "bogus", 1);
        assert_int_equal(snapshot_overlay_open(dir, &sn, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "BERTH_SNAPSHOTTER=\"bogus\""));
        unsetenv("BERTH_SNAPSHOTTER");
        /* the mode is in the metadata, nothing extra in snapshots/ */
        char *meta = unit_path(dir, "meta/snapshots.json");
        char *json = unit_read(meta, NULL);
        assert_non_null(strstr(json, "\"mode\": \"copy\""));
        free(json);
        char *snaps = unit_path(dir, "snapshots");
        assert_int_equal(unit_count_entries(snaps), 1);
        free(snaps);

        /* metadata from before the modes, with snapshots: overlay */
        unit_write_str(meta, "{\"next\": 2, \"snapshots\": {\"a\": {\"id\": 1, \"kind\": \"committed\", "
                             "\"created\": \"2024-01-01T00:00:00Z\"}}}");
        assert_int_equal(snapshot_overlay_open_ex(dir, SNAPSHOT_MODE_COPY, &sn, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "made by the overlay snapshotter"));
        assert_int_equal(snapshot_overlay_open(dir, &sn, &e), 0);
        assert_int_equal(snapshot_overlay_mode(sn), SNAPSHOT_MODE_OVERLAY);
        snapshot_overlay_free(sn);
        json = unit_read(meta, NULL);
        assert_non_null(strstr(json, "\"mode\": \"overlay\""));
        free(json);

        /* a root opened in one mode and remade by another process */
        assert_int_equal(snapshot_overlay_open_ex(dir, SNAPSHOT_MODE_OVERLAY, &sn, &e), 0);
        unit_write_str(meta, "{\"mode\": \"copy\", \"next\": 1, \"snapshots\": {}}");
        assert_int_equal(snapshot_overlay_prepare(sn, "k2", NULL, NULL, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "made by the copy snapshotter, not the overlay snapshotter"));
        snapshot_overlay_free(sn);
        free(meta);
        unit_rm_tree(dir);
        free(dir);

        /* auto on a new root: the probe decides, leaves nothing, is recorded */
        dir = unit_mkdtemp("snapauto");
        assert_int_equal(snapshot_overlay_open(dir, &sn, &e), 0);
        enum snapshot_mode got = snapshot_overlay_mode(sn);
        assert_true(got == SNAPSHOT_MODE_OVERLAY || got == SNAPSHOT_MODE_COPY);
        if (geteuid() != 0)
                assert_int_equal(got, SNAPSHOT_MODE_COPY); /* no overlay mount without privilege */
        snapshot_overlay_free(sn);
        snaps = unit_path(dir, "snapshots");
        assert_int_equal(unit_count_entries(snaps), 0);
        free(snaps);
        meta = unit_path(dir, "meta/snapshots.json");
        json = unit_read(meta, NULL);
        assert_non_null(strstr(json, got == SNAPSHOT_MODE_COPY ? "\"mode\": \"copy\"" : "\"mode\": \"overlay\""));
        free(json);
        free(meta);
        setenv("BERTH_SNAPSHOTTER", "copy", 1);
        assert_int_equal(snapshot_overlay_open(dir, &sn, &e), got == SNAPSHOT_MODE_COPY ? 0 : -EINVAL);
        if (got == SNAPSHOT_MODE_COPY)
                snapshot_overlay_free(sn);
        unsetenv("BERTH_SNAPSHOTTER");
        unit_rm_tree(dir);
        free(dir);
}

/* Two handles on one root, as the supervisor and a worker process have:
 * each keeps the metadata it last read or wrote, and must see the other's
 * changes (and a change made behind both, by rewriting the file in place). */
static void test_two_handles(void **state)
{
        struct fixture *f = *state;
        struct berr e = { 0 };
        struct snapshot_overlay *other = NULL;
        struct snapshot_info i = { 0 };
        if (snapshot_overlay_open_ex(f->dir, SNAPSHOT_MODE_OVERLAY, &other, &e) < 0)
                fail_msg("open: %s", e.msg);

        assert_int_equal(snapshot_overlay_prepare(f->sn, "a", NULL, NULL, &e), 0);
        assert_int_equal(snapshot_overlay_stat(f->sn, "a", &i, &e), 0); /* kept by f->sn */
        snapshot_info_done(&i);
        assert_int_equal(snapshot_overlay_stat(other, "a", &i, &e), 0);
        snapshot_info_done(&i);
        assert_int_equal(snapshot_overlay_commit(other, "A", "a", &e), 0);
        assert_int_equal(snapshot_overlay_prepare(other, "b", "A", NULL, &e), 0);
        /* the other handle's writes are seen */
        assert_int_equal(snapshot_overlay_stat(f->sn, "a", &i, &e), -ENOENT);
        assert_int_equal(snapshot_overlay_stat(f->sn, "b", &i, &e), 0);
        assert_int_equal(i.id, 2);
        snapshot_info_done(&i);
        /* ids keep counting across handles */
        assert_int_equal(snapshot_overlay_prepare(f->sn, "c", "A", NULL, &e), 0);
        assert_int_equal(snapshot_overlay_stat(other, "c", &i, &e), 0);
        assert_int_equal(i.id, 3);
        snapshot_info_done(&i);
        assert_int_equal(snapshot_overlay_remove(other, "c", &e), 0);
        assert_int_equal(snapshot_overlay_stat(f->sn, "c", &i, &e), -ENOENT);

        /* a failed change leaves nothing behind in what a handle keeps */
        assert_int_equal(snapshot_overlay_commit(f->sn, "A", "b", &e), -EEXIST);
        assert_int_equal(snapshot_overlay_stat(f->sn, "b", &i, &e), 0);
        snapshot_info_done(&i);

        /* the file rewritten in place (same inode), shorter: not what was kept */
        char *meta = unit_path(f->dir, "meta/snapshots.json");
        FILE *fp = fopen(meta, "r+");
        assert_non_null(fp);
        assert_int_equal(fputs("{\"next\": 9, \"mode\": \"overlay\", \"snapshots\": {}}", fp) >= 0, 1);
        assert_int_equal(ftruncate(fileno(fp), ftell(fp)), 0);
        fclose(fp);
        free(meta);
        assert_int_equal(snapshot_overlay_stat(f->sn, "b", &i, &e), -ENOENT);
        assert_int_equal(snapshot_overlay_stat(other, "A", &i, &e), -ENOENT);
        assert_int_equal(snapshot_overlay_prepare(other, "d", NULL, NULL, &e), 0);
        assert_int_equal(snapshot_overlay_stat(f->sn, "d", &i, &e), 0);
        assert_int_equal(i.id, 9);
        snapshot_info_done(&i);
        snapshot_overlay_free(other);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_chain, setup, teardown),
                cmocka_unit_test_setup_teardown(test_corrupt_metadata, setup, teardown),
                cmocka_unit_test_setup_teardown(test_corrupt_metadata, setup_copy, teardown),
                cmocka_unit_test_setup_teardown(test_copy_chain, setup_copy, teardown),
                cmocka_unit_test_setup_teardown(test_copy_parent_missing_fs, setup_copy, teardown),
                cmocka_unit_test(test_modes),
                cmocka_unit_test_setup_teardown(test_two_handles, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

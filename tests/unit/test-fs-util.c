/* Unit tests for common/fs-util: atomic writes, capped reads, mkdir -p,
 * rm -rf, and resolution inside a root. Every in-root case runs twice: once
 * through openat2(RESOLVE_IN_ROOT) and once through the fallback walk. */
#include "unit-helpers.h"

#include <linux/openat2.h>
#include <sys/syscall.h>

#include "cleanup.h"
#include "fs-util.h"

/* ---------- helpers ---------- */

static void assert_same_file(int fd, const char *path)
{
        struct stat a, b;
        assert_true(fd >= 0);
        assert_int_equal(fstat(fd, &a), 0);
        if (lstat(path, &b) < 0)
                fail_msg("lstat \"%s\": %s", path, strerror(errno));
        if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
                fail_msg("fd %d is not \"%s\"", fd, path);
}

static void assert_not_same_file(int fd, const char *path)
{
        struct stat a, b;
        assert_int_equal(fstat(fd, &a), 0);
        if (lstat(path, &b) < 0)
                return;
        if (a.st_dev == b.st_dev && a.st_ino == b.st_ino)
                fail_msg("fd %d is \"%s\" but must not be", fd, path);
}

static void assert_is_dir(const char *path)
{
        struct stat st;
        if (lstat(path, &st) < 0)
                fail_msg("lstat \"%s\": %s", path, strerror(errno));
        assert_true(S_ISDIR(st.st_mode));
}

static void xsymlink(const char *target, const char *dir, const char *name)
{
        _cleanup_free_ char *p = unit_path(dir, name);
        if (symlink(target, p) < 0)
                fail_msg("symlink \"%s\" -> \"%s\": %s", p, target, strerror(errno));
}

static void xmkdir(const char *dir, const char *name)
{
        _cleanup_free_ char *p = unit_path(dir, name);
        assert_int_equal(mkdir(p, 0755), 0);
}

static void xwrite(const char *dir, const char *name, const char *content)
{
        _cleanup_free_ char *p = unit_path(dir, name);
        unit_write_str(p, content);
}

static char *fd_read_all(int fd)
{
        char buf[256];
        ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
        assert_true(n >= 0);
        buf[n] = '\0';
        return strdup(buf);
}

/* ---------- fs_write_atomic ---------- */

static int tmp_setup(void **state)
{
        *state = unit_mkdtemp("fs");
        return 0;
}

static int tmp_teardown(void **state)
{
        unit_rm_tree(*state);
        free(*state);
        return 0;
}

static void test_write_atomic_content_and_mode(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *p = unit_path(dir, "file");
        struct stat st;

        /* the mode is applied exactly, whatever the umask */
        mode_t old = umask(0077);
        int r = fs_write_atomic(p, "hello\n", 6, 0644);
        umask(old);
        assert_int_equal(r, 0);

        size_t len;
        _cleanup_free_ char *data = unit_read(p, &len);
        assert_int_equal(len, 6);
        assert_string_equal(data, "hello\n");
        assert_int_equal(lstat(p, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0644);

        assert_int_equal(fs_write_atomic(p, "x", 1, 0600), 0);
        assert_int_equal(lstat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
}

static void test_write_atomic_empty_and_binary(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *p = unit_path(dir, "empty");
        _cleanup_free_ char *q = unit_path(dir, "big");

        assert_int_equal(fs_write_atomic(p, "", 0, 0644), 0);
        size_t len = 99;
        _cleanup_free_ char *d1 = unit_read(p, &len);
        assert_int_equal(len, 0);

        size_t n = 1 << 20;
        _cleanup_free_ unsigned char *big = malloc(n);
        assert_non_null(big);
        for (size_t i = 0; i < n; i++)
                big[i] = (unsigned char) (i * 7 + (i >> 8));
        assert_int_equal(fs_write_atomic(q, big, n, 0644), 0);
        _cleanup_free_ char *d2 = unit_read(q, &len);
        assert_int_equal(len, n);
        assert_memory_equal(d2, big, n);
}

static void test_write_atomic_overwrite_replaces(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *p = unit_path(dir, "file");

        assert_int_equal(fs_write_atomic(p, "first, rather long content", 26, 0644), 0);
        /* a reader holding the old file keeps seeing the old content: the
         * file was replaced by rename, not truncated and rewritten */
        _cleanup_close_ int oldfd = open(p, O_RDONLY | O_CLOEXEC);
        assert_true(oldfd >= 0);

        assert_int_equal(fs_write_atomic(p, "2nd", 3, 0640), 0);

        size_t len;
        _cleanup_free_ char *data = unit_read(p, &len);
        assert_int_equal(len, 3);
        assert_string_equal(data, "2nd");
        _cleanup_free_ char *old = fd_read_all(oldfd);
        assert_string_equal(old, "first, rather long content");
        assert_not_same_file(oldfd, p);

        struct stat st;
        assert_int_equal(lstat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0640);
}

static void test_write_atomic_no_leftovers(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *p = unit_path(dir, "state.json");

        for (int i = 0; i < 20; i++) {
                char buf[32];
                int n = snprintf(buf, sizeof(buf), "{\"i\":%d}", i);
                assert_int_equal(fs_write_atomic(p, buf, (size_t) n, 0644), 0);
        }
        assert_int_equal(unit_count_entries(dir), 1);
        _cleanup_free_ char *data = unit_read(p, NULL);
        assert_string_equal(data, "{\"i\":19}");

        /* a failed rename (target is a directory) removes its temp file */
        _cleanup_free_ char *d = unit_path(dir, "isdir");
        assert_int_equal(mkdir(d, 0755), 0);
        int r = fs_write_atomic(d, "x", 1, 0644);
        assert_true(r < 0);
        assert_int_equal(unit_count_entries(dir), 2);
        assert_int_equal(unit_count_entries(d), 0);
}

static void test_write_atomic_errors(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *p = unit_path(dir, "missing/file");

        assert_int_equal(fs_write_atomic(p, "x", 1, 0644), -ENOENT);
        assert_int_equal(unit_count_entries(dir), 0);

        _cleanup_free_ char *q = unit_path(dir, "trailing/");
        assert_int_equal(fs_write_atomic(q, "x", 1, 0644), -EINVAL);
        assert_int_equal(unit_count_entries(dir), 0);
}

/* ---------- fs_read_file ---------- */

static void test_read_file_content(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *p = unit_path(dir, "f");
        unit_write(p, "a\0bc", 4);

        char *data = NULL;
        size_t len = 0;
        assert_int_equal(fs_read_file(p, 1024, &data, &len), 0);
        assert_non_null(data);
        assert_int_equal(len, 4);
        assert_memory_equal(data, "a\0bc", 4);
        assert_int_equal(data[4], '\0');
        free(data);

        /* ret_len may be NULL */
        data = NULL;
        assert_int_equal(fs_read_file(p, 1024, &data, NULL), 0);
        assert_int_equal(data[4], '\0');
        free(data);

        /* empty file: an empty string, not NULL */
        _cleanup_free_ char *e = unit_path(dir, "empty");
        unit_write(e, "", 0);
        len = 99;
        data = NULL;
        assert_int_equal(fs_read_file(e, 1024, &data, &len), 0);
        assert_non_null(data);
        assert_int_equal(len, 0);
        assert_string_equal(data, "");
        free(data);
}

/* A file of exactly max bytes is accepted and one of max + 1 is not, at
 * sizes below, at and above the reader's first buffer (4 KiB). */
static void test_read_file_size_cap(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *p = unit_path(dir, "f");
        static const size_t sizes[] = { 1, 10, 4095, 4096, 4097, 8192, 10000, 65536, 100000 };

        for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
                size_t n = sizes[i];
                _cleanup_free_ char *content = malloc(n);
                assert_non_null(content);
                for (size_t k = 0; k < n; k++)
                        content[k] = (char) ('a' + k % 26);
                unit_write(p, content, n);

                char *data = NULL;
                size_t len = 0;
                int r = fs_read_file(p, n, &data, &len);
                if (r != 0)
                        fail_msg("file of %zu bytes with max %zu: %s", n, n, strerror(-r));
                assert_int_equal(len, n);
                assert_memory_equal(data, content, n);
                assert_int_equal(data[n], '\0');
                free(data);

                data = (char *) "untouched";
                len = 12345;
                r = fs_read_file(p, n - 1, &data, &len);
                if (r != -EFBIG)
                        fail_msg("file of %zu bytes with max %zu: got %d, want -EFBIG", n, n - 1, r);
                assert_string_equal(data, "untouched");
                assert_int_equal(len, 12345);

                data = NULL;
                assert_int_equal(fs_read_file(p, n * 3, &data, &len), 0);
                assert_int_equal(len, n);
                free(data);
        }
}

static void test_read_file_errors(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *p = unit_path(dir, "nope");
        char *data = (char *) "untouched";

        assert_int_equal(fs_read_file(p, 1024, &data, NULL), -ENOENT);
        assert_string_equal(data, "untouched");
        assert_int_equal(fs_read_file(dir, 1024, &data, NULL), -EISDIR);
        assert_string_equal(data, "untouched");
}

/* ---------- fs_mkdir_p ---------- */

static void test_mkdir_p(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *p = unit_path(dir, "a/b/c");
        _cleanup_free_ char *a = unit_path(dir, "a");
        _cleanup_free_ char *ab = unit_path(dir, "a/b");

        mode_t old = umask(022);
        assert_int_equal(fs_mkdir_p(p, 0750), 0);
        umask(old);
        assert_is_dir(a);
        assert_is_dir(ab);
        assert_is_dir(p);
        struct stat st;
        assert_int_equal(lstat(p, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0750);

        /* existing is fine, and so are doubled and trailing slashes */
        assert_int_equal(fs_mkdir_p(p, 0755), 0);
        assert_int_equal(fs_mkdir_p(dir, 0755), 0);
        _cleanup_free_ char *q = unit_path(dir, "x//y/z/");
        assert_int_equal(fs_mkdir_p(q, 0755), 0);
        _cleanup_free_ char *xyz = unit_path(dir, "x/y/z");
        assert_is_dir(xyz);
}

static void test_mkdir_p_file_in_the_way(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *f = unit_path(dir, "file");
        _cleanup_free_ char *sub = unit_path(dir, "file/sub/deeper");
        unit_write_str(f, "x");

        int r = fs_mkdir_p(f, 0755);
        assert_true(r == -ENOTDIR || r == -EEXIST);
        r = fs_mkdir_p(sub, 0755);
        assert_true(r == -ENOTDIR || r == -EEXIST);

        struct stat st;
        assert_int_equal(lstat(f, &st), 0);
        assert_true(S_ISREG(st.st_mode));
}

static void test_mkdir_p_empty(void **state)
{
        (void) state;
        /* must fail cleanly (mkdir("") is ENOENT), not read past the string */
        assert_int_equal(fs_mkdir_p("", 0755), -ENOENT);
}

/* ---------- fs_rm_rf ---------- */

static void test_rm_rf_tree(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *t = unit_path(dir, "tree");
        _cleanup_free_ char *deep = unit_path(dir, "tree/a/b/c");
        assert_int_equal(fs_mkdir_p(deep, 0755), 0);
        xwrite(dir, "tree/f", "1");
        xwrite(dir, "tree/a/f", "2");
        xwrite(dir, "tree/a/b/c/f", "3");
        xsymlink("/nonexistent/dangling", dir, "tree/a/dangling");
        xsymlink("f", dir, "tree/a/rel");
        _cleanup_free_ char *fifo = unit_path(dir, "tree/a/b/fifo");
        assert_int_equal(mkfifo(fifo, 0600), 0);
        /* a read-only directory inside the tree */
        _cleanup_free_ char *ro = unit_path(dir, "tree/a/ro");
        assert_int_equal(mkdir(ro, 0500), 0);

        assert_int_equal(fs_rm_rf(t), 0);
        assert_false(unit_exists(t));
        assert_int_equal(unit_count_entries(dir), 0);

        /* a single file */
        _cleanup_free_ char *f = unit_path(dir, "single");
        unit_write_str(f, "x");
        assert_int_equal(fs_rm_rf(f), 0);
        assert_false(unit_exists(f));
}

static void test_rm_rf_does_not_follow_symlinks(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *outside = unit_path(dir, "outside");
        _cleanup_free_ char *keep = unit_path(outside, "keep");
        _cleanup_free_ char *keepdir = unit_path(outside, "keepdir");
        assert_int_equal(mkdir(outside, 0755), 0);
        unit_write_str(keep, "precious");
        assert_int_equal(mkdir(keepdir, 0755), 0);

        _cleanup_free_ char *t = unit_path(dir, "tree");
        _cleanup_free_ char *sub = unit_path(dir, "tree/sub");
        assert_int_equal(fs_mkdir_p(sub, 0755), 0);
        xsymlink(outside, dir, "tree/sub/link-to-dir");
        xsymlink(keep, dir, "tree/link-to-file");

        assert_int_equal(fs_rm_rf(t), 0);
        assert_false(unit_exists(t));
        assert_true(unit_exists(keep));
        assert_true(unit_exists(keepdir));
        _cleanup_free_ char *content = unit_read(keep, NULL);
        assert_string_equal(content, "precious");

        /* rm -rf of a symlink itself removes the link, not what it names */
        _cleanup_free_ char *top = unit_path(dir, "toplink");
        assert_int_equal(symlink(outside, top), 0);
        assert_int_equal(fs_rm_rf(top), 0);
        assert_false(unit_exists(top));
        assert_int_equal(unit_count_entries(outside), 2);
}

static void test_rm_rf_missing(void **state)
{
        const char *dir = *state;
        _cleanup_free_ char *p = unit_path(dir, "nope");
        _cleanup_free_ char *q = unit_path(dir, "nope/deeper");
        assert_int_equal(fs_rm_rf(p), 0);
        assert_int_equal(fs_rm_rf(q), 0);
}

/* ---------- resolution inside a root ---------- */

struct root_ctx {
        char *root;    /* plays "/" */
        char *outside; /* a sibling of root that nothing may write to */
        int rootfd;
};

static bool use_fallback;
static bool have_openat2;

static int group_openat2(void **state)
{
        (void) state;
        use_fallback = false;
        return 0;
}

static int group_fallback(void **state)
{
        (void) state;
        use_fallback = true;
        return 0;
}

static int group_teardown(void **state)
{
        (void) state;
        use_fallback = false;
        fs_force_openat2_fallback(false);
        return 0;
}

/* root/etc/marker, root/a -> /etc, root/b -> ../../.. */
static int root_setup(void **state)
{
        struct root_ctx *c = calloc(1, sizeof(*c));
        assert_non_null(c);
        c->root = unit_mkdtemp("root");
        c->outside = unit_mkdtemp("outside");
        c->rootfd = open(c->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        assert_true(c->rootfd >= 0);
        xmkdir(c->root, "etc");
        xwrite(c->root, "etc/marker", "inside\n");
        xsymlink("/etc", c->root, "a");
        xsymlink("../../..", c->root, "b");
        fs_force_openat2_fallback(use_fallback);
        *state = c;
        return 0;
}

static int root_teardown(void **state)
{
        struct root_ctx *c = *state;
        fs_force_openat2_fallback(false);
        if (c) {
                /* where a broken ".." clamp would have put "../../<outside>" */
                _cleanup_free_ char *stray = unit_path("", strrchr(c->outside, '/') + 1);
                if (unit_exists(stray))
                        print_error("removing \"%s\", created outside the root\n", stray);
                unit_rm_tree(stray);
                close(c->rootfd);
                unit_rm_tree(c->root);
                unit_rm_tree(c->outside);
                free(c->root);
                free(c->outside);
                free(c);
        }
        return 0;
}

static struct root_ctx *ctx(void **state)
{
        if (!use_fallback && !have_openat2) {
                print_message("openat2 is not available here: only the fallback is tested\n");
                skip();
        }
        return *state;
}

static char *rpath(const struct root_ctx *c, const char *rel)
{
        return unit_path(c->root, rel);
}

/* Fails if fd is not root/<rel>. Closes fd. */
static void check_fd(const struct root_ctx *c, int fd, const char *rel)
{
        if (fd < 0)
                fail_msg("resolving to root/%s failed: %s", rel, strerror(-fd));
        _cleanup_free_ char *p = rpath(c, rel);
        assert_same_file(fd, p);
        close(fd);
}

static void check_etc_untouched(const char *name)
{
        _cleanup_free_ char *p = unit_path("/etc", name);
        if (unit_exists(p)) {
                unit_rm_tree(p);
                fail_msg("\"%s\" was created outside the root", p);
        }
}

static void test_in_root_absolute_symlink(void **state)
{
        struct root_ctx *c = ctx(state);
        int fd;

        fd = fs_open_in_root(c->rootfd, "a/marker", O_RDONLY, 0);
        assert_true(fd >= 0);
        _cleanup_free_ char *content = fd_read_all(fd);
        assert_string_equal(content, "inside\n");
        check_fd(c, fd, "etc/marker");

        check_fd(c, fs_open_in_root(c->rootfd, "/a/marker", O_RDONLY, 0), "etc/marker");
        check_fd(c, fs_open_in_root(c->rootfd, "/etc/marker", O_RDONLY, 0), "etc/marker");

        fd = fs_open_in_root(c->rootfd, "a", O_PATH | O_DIRECTORY, 0);
        assert_true(fd >= 0);
        assert_not_same_file(fd, "/etc");
        check_fd(c, fd, "etc");

        /* the host's /etc/passwd exists, root/etc/passwd does not */
        if (unit_exists("/etc/passwd"))
                assert_int_equal(fs_open_in_root(c->rootfd, "a/passwd", O_RDONLY, 0), -ENOENT);
}

static void test_in_root_create_through_absolute_symlink(void **state)
{
        struct root_ctx *c = ctx(state);
        char f1[64], f2[64], d1[64], rel[128];

        snprintf(f1, sizeof(f1), "berth-unit-%d-open", (int) getpid());
        snprintf(f2, sizeof(f2), "berth-unit-%d-mkfile", (int) getpid());
        snprintf(d1, sizeof(d1), "berth-unit-%d-mkdir", (int) getpid());

        snprintf(rel, sizeof(rel), "a/%s", f1);
        int fd = fs_open_in_root(c->rootfd, rel, O_WRONLY | O_CREAT, 0644);
        check_etc_untouched(f1);
        snprintf(rel, sizeof(rel), "etc/%s", f1);
        check_fd(c, fd, rel);

        snprintf(rel, sizeof(rel), "a/%s", f2);
        fd = fs_mkfile_in_root(c->rootfd, rel, 0644);
        check_etc_untouched(f2);
        snprintf(rel, sizeof(rel), "etc/%s", f2);
        check_fd(c, fd, rel);

        snprintf(rel, sizeof(rel), "/a/%s/x", d1);
        fd = fs_mkdir_p_in_root(c->rootfd, rel, 0755);
        check_etc_untouched(d1);
        snprintf(rel, sizeof(rel), "etc/%s/x", d1);
        check_fd(c, fd, rel);
}

static void test_in_root_relative_escape_symlink(void **state)
{
        struct root_ctx *c = ctx(state);

        check_fd(c, fs_open_in_root(c->rootfd, "b", O_PATH | O_DIRECTORY, 0), "");
        check_fd(c, fs_open_in_root(c->rootfd, "b/etc/marker", O_RDONLY, 0), "etc/marker");
        check_fd(c, fs_open_in_root(c->rootfd, "b/b/b/a/marker", O_RDONLY, 0), "etc/marker");
        check_fd(c, fs_open_in_root(c->rootfd, "b/../../etc/marker", O_RDONLY, 0), "etc/marker");

        /* a relative link deeper down that climbs past the root */
        xsymlink("../../../../etc", c->root, "etc/up");
        check_fd(c, fs_open_in_root(c->rootfd, "etc/up/marker", O_RDONLY, 0), "etc/marker");

        /* root and outside are siblings: "b/<outside>" must not reach it */
        _cleanup_free_ char *secret = unit_path(c->outside, "secret");
        unit_write_str(secret, "s");
        char rel[256];
        snprintf(rel, sizeof(rel), "b/%s/secret", strrchr(c->outside, '/') + 1);
        assert_int_equal(fs_open_in_root(c->rootfd, rel, O_RDONLY, 0), -ENOENT);
        int fd = fs_mkfile_in_root(c->rootfd, rel, 0644);
        assert_true(fd >= 0);
        snprintf(rel, sizeof(rel), "%s/secret", strrchr(c->outside, '/') + 1);
        check_fd(c, fd, rel);
        assert_int_equal(unit_count_entries(c->outside), 1);
}

static void test_in_root_dotdot_clamps(void **state)
{
        struct root_ctx *c = ctx(state);
        const char *obase = strrchr(c->outside, '/') + 1;
        char rel[256];

        check_fd(c, fs_open_in_root(c->rootfd, "..", O_PATH | O_DIRECTORY, 0), "");
        check_fd(c, fs_open_in_root(c->rootfd, "/..", O_PATH | O_DIRECTORY, 0), "");
        check_fd(c, fs_open_in_root(c->rootfd, "../../../etc/marker", O_RDONLY, 0), "etc/marker");
        check_fd(c, fs_open_in_root(c->rootfd, "etc/../../etc/./marker", O_RDONLY, 0), "etc/marker");

        /* creating "../../<name>" makes root/<name>, not a file beside the
         * root or in the real / */
        char name[64];
        snprintf(name, sizeof(name), "berth-unit-%d-clamp", (int) getpid());
        snprintf(rel, sizeof(rel), "../../%s", name);
        int fd = fs_open_in_root(c->rootfd, rel, O_WRONLY | O_CREAT, 0644);
        _cleanup_free_ char *parent = strndup(c->root, (size_t) (strrchr(c->root, '/') - c->root));
        _cleanup_free_ char *beside = unit_path(parent, name);
        _cleanup_free_ char *top = unit_path("", name);
        bool escaped = unit_exists(beside) || unit_exists(top);
        unlink(beside);
        unlink(top);
        assert_false(escaped);
        check_fd(c, fd, name);

        /* "../<outside>" names the sibling only if ".." escapes */
        snprintf(rel, sizeof(rel), "../%s/y", obase);
        assert_int_equal(fs_open_in_root(c->rootfd, rel, O_WRONLY | O_CREAT, 0644), -ENOENT);
        fd = fs_mkdir_p_in_root(c->rootfd, rel, 0755);
        snprintf(rel, sizeof(rel), "%s/y", obase);
        check_fd(c, fd, rel);
        snprintf(rel, sizeof(rel), "../../%s/z", obase);
        fd = fs_mkfile_in_root(c->rootfd, rel, 0644);
        snprintf(rel, sizeof(rel), "%s/z", obase);
        check_fd(c, fd, rel);
        assert_int_equal(unit_count_entries(c->outside), 0);
}

static void test_in_root_symlink_chains(void **state)
{
        struct root_ctx *c = ctx(state);

        /* c1 -> c2 -> /d/c3 -> ../target */
        xmkdir(c->root, "d");
        xwrite(c->root, "target", "T");
        xsymlink("c2", c->root, "c1");
        xsymlink("/d/c3", c->root, "c2");
        xsymlink("../target", c->root, "d/c3");
        check_fd(c, fs_open_in_root(c->rootfd, "c1", O_RDONLY, 0), "target");

        /* directory chain in the middle of a path: l1 -> /l2/ -> d */
        xwrite(c->root, "d/f", "F");
        xsymlink("/l2/", c->root, "l1");
        xsymlink("d", c->root, "l2");
        check_fd(c, fs_open_in_root(c->rootfd, "l1/f", O_RDONLY, 0), "d/f");

        /* a chain that tries to escape at every step: e1 -> ../../e2 -> /etc */
        xsymlink("../../e2", c->root, "e1");
        xsymlink("/etc", c->root, "e2");
        check_fd(c, fs_open_in_root(c->rootfd, "e1/marker", O_RDONLY, 0), "etc/marker");

        /* 30 links in a row is deep but legal (the kernel allows 40) */
        char name[16], target[16];
        for (int i = 0; i < 30; i++) {
                snprintf(name, sizeof(name), "n%d", i);
                snprintf(target, sizeof(target), i == 29 ? "/target" : "n%d", i + 1);
                xsymlink(target, c->root, name);
        }
        check_fd(c, fs_open_in_root(c->rootfd, "n0", O_RDONLY, 0), "target");
}

static void test_in_root_symlink_loop(void **state)
{
        struct root_ctx *c = ctx(state);

        xsymlink("loop2", c->root, "loop1");
        xsymlink("/loop1", c->root, "loop2");
        xsymlink("self", c->root, "self");

        assert_int_equal(fs_open_in_root(c->rootfd, "loop1", O_RDONLY, 0), -ELOOP);
        assert_int_equal(fs_open_in_root(c->rootfd, "self", O_RDONLY, 0), -ELOOP);
        assert_int_equal(fs_open_in_root(c->rootfd, "loop1/x", O_RDONLY, 0), -ELOOP);
        assert_int_equal(fs_open_in_root(c->rootfd, "self", O_WRONLY | O_CREAT, 0644), -ELOOP);
        assert_int_equal(fs_mkdir_p_in_root(c->rootfd, "loop1/x", 0755), -ELOOP);
        assert_int_equal(fs_mkfile_in_root(c->rootfd, "self", 0644), -ELOOP);
        assert_int_equal(fs_mkfile_in_root(c->rootfd, "self/x", 0644), -ELOOP);

        /* no loop, but more links than the kernel's 40: ELOOP both ways */
        xwrite(c->root, "end", "E");
        char name[16], target[16];
        for (int i = 0; i < 50; i++) {
                snprintf(name, sizeof(name), "m%d", i);
                snprintf(target, sizeof(target), i == 49 ? "end" : "m%d", i + 1);
                xsymlink(target, c->root, name);
        }
        check_fd(c, fs_open_in_root(c->rootfd, "m20", O_RDONLY, 0), "end");
        assert_int_equal(fs_open_in_root(c->rootfd, "m0", O_RDONLY, 0), -ELOOP);
}

static void test_in_root_mkdir_p_through_symlink(void **state)
{
        struct root_ctx *c = ctx(state);
        char rel[512];

        /* root/link -> <outside> (absolute); root<outside> exists */
        _cleanup_free_ char *inner = unit_path(c->root, c->outside + 1);
        assert_int_equal(fs_mkdir_p(inner, 0755), 0);
        xsymlink(c->outside, c->root, "link");

        int fd = fs_mkdir_p_in_root(c->rootfd, "link/x/y", 0755);
        assert_true(fd >= 0);
        int fl = fcntl(fd, F_GETFL);
        assert_true(fl >= 0 && (fl & O_PATH));
        snprintf(rel, sizeof(rel), "%s/x/y", c->outside + 1);
        check_fd(c, fd, rel);
        assert_int_equal(unit_count_entries(c->outside), 0);

        /* relative link with more ".." than the root is deep */
        snprintf(rel, sizeof(rel), "../../../../../../../../../..%s", c->outside);
        xsymlink(rel, c->root, "rel");
        fd = fs_mkdir_p_in_root(c->rootfd, "rel/z/w", 0755);
        snprintf(rel, sizeof(rel), "%s/z/w", c->outside + 1);
        check_fd(c, fd, rel);
        assert_int_equal(unit_count_entries(c->outside), 0);

        /* links whose target does not exist inside the root: whatever the
         * result, nothing appears outside */
        snprintf(rel, sizeof(rel), "%s/sub", c->outside);
        xsymlink(rel, c->root, "dangle");
        fd = fs_mkdir_p_in_root(c->rootfd, "dangle/x", 0755);
        if (fd >= 0)
                close(fd);
        assert_int_equal(unit_count_entries(c->outside), 0);

        char host[64];
        snprintf(host, sizeof(host), "/berth-unit-nonexistent-%d", (int) getpid());
        xsymlink(host, c->root, "dangle2");
        fd = fs_mkdir_p_in_root(c->rootfd, "dangle2/x", 0755);
        if (fd >= 0)
                close(fd);
        if (unit_exists(host)) {
                unit_rm_tree(host);
                fail_msg("\"%s\" was created outside the root", host);
        }
}

static void test_in_root_mkdir_p_paths(void **state)
{
        struct root_ctx *c = ctx(state);

        check_fd(c, fs_mkdir_p_in_root(c->rootfd, "m1/m2/", 0755), "m1/m2");
        check_fd(c, fs_mkdir_p_in_root(c->rootfd, "..//../m3/./m4", 0755), "m3/m4");
        check_fd(c, fs_mkdir_p_in_root(c->rootfd, "/m5//m6//", 0755), "m5/m6");
        check_fd(c, fs_mkdir_p_in_root(c->rootfd, "b/m7", 0755), "m7");
        _cleanup_free_ char *p = rpath(c, "m3/m4");
        assert_is_dir(p);

        /* a file in the way */
        assert_int_equal(fs_mkdir_p_in_root(c->rootfd, "etc/marker", 0755), -ENOTDIR);
        assert_int_equal(fs_mkdir_p_in_root(c->rootfd, "etc/marker/sub", 0755), -ENOTDIR);
}

static void test_in_root_mkfile(void **state)
{
        struct root_ctx *c = ctx(state);

        mode_t old = umask(022);
        int fd = fs_mkfile_in_root(c->rootfd, "p/q/r/file", 0600);
        umask(old);
        assert_true(fd >= 0);
        int fl = fcntl(fd, F_GETFL);
        assert_true(fl >= 0 && (fl & O_PATH));
        check_fd(c, fd, "p/q/r/file");
        _cleanup_free_ char *p = rpath(c, "p/q/r/file");
        struct stat st;
        assert_int_equal(lstat(p, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(st.st_size, 0);
        _cleanup_free_ char *q = rpath(c, "p/q");
        assert_is_dir(q);

        /* an existing file is returned as is, not truncated */
        check_fd(c, fs_mkfile_in_root(c->rootfd, "/etc/marker", 0644), "etc/marker");
        _cleanup_free_ char *m = rpath(c, "etc/marker");
        _cleanup_free_ char *content = unit_read(m, NULL);
        assert_string_equal(content, "inside\n");

        check_fd(c, fs_mkfile_in_root(c->rootfd, "b/p2/f", 0644), "p2/f");
        check_fd(c, fs_mkfile_in_root(c->rootfd, "top", 0644), "top");
}

static void test_in_root_existing_directory(void **state)
{
        struct root_ctx *c = ctx(state);

        check_fd(c, fs_open_in_root(c->rootfd, "etc", O_PATH | O_DIRECTORY, 0), "etc");
        check_fd(c, fs_open_in_root(c->rootfd, "etc", O_RDONLY | O_DIRECTORY, 0), "etc");
        check_fd(c, fs_open_in_root(c->rootfd, "etc/", O_RDONLY, 0), "etc");
        check_fd(c, fs_open_in_root(c->rootfd, "/", O_PATH | O_DIRECTORY, 0), "");
        check_fd(c, fs_open_in_root(c->rootfd, ".", O_RDONLY | O_DIRECTORY, 0), "");
        /* as for openat(), mode is ignored without O_CREAT */
        check_fd(c, fs_open_in_root(c->rootfd, "etc", O_RDONLY | O_DIRECTORY, 0755), "etc");
        check_fd(c, fs_open_in_root(c->rootfd, "etc/marker", O_RDONLY, 0644), "etc/marker");

        check_fd(c, fs_mkdir_p_in_root(c->rootfd, "etc", 0755), "etc");
        check_fd(c, fs_mkdir_p_in_root(c->rootfd, "/", 0755), "");
        check_fd(c, fs_mkdir_p_in_root(c->rootfd, "a", 0755), "etc");
        check_fd(c, fs_mkfile_in_root(c->rootfd, "etc", 0644), "etc");
        _cleanup_free_ char *p = rpath(c, "etc");
        assert_is_dir(p);
}

static void test_in_root_errors(void **state)
{
        struct root_ctx *c = ctx(state);

        assert_int_equal(fs_open_in_root(c->rootfd, "nope", O_RDONLY, 0), -ENOENT);
        assert_int_equal(fs_open_in_root(c->rootfd, "nope/x", O_RDONLY, 0), -ENOENT);
        assert_int_equal(fs_open_in_root(c->rootfd, "nope/x", O_WRONLY | O_CREAT, 0644), -ENOENT);
        assert_int_equal(fs_open_in_root(c->rootfd, "etc/marker/x", O_RDONLY, 0), -ENOTDIR);
        assert_int_equal(fs_open_in_root(c->rootfd, "etc", O_WRONLY, 0), -EISDIR);
        assert_int_equal(fs_mkfile_in_root(c->rootfd, "etc/marker/x", 0644), -ENOTDIR);
}

static void test_in_root_nofollow_and_excl(void **state)
{
        struct root_ctx *c = ctx(state);

        /* O_NOFOLLOW applies to the last component only */
        int fd = fs_open_in_root(c->rootfd, "a", O_PATH | O_NOFOLLOW, 0);
        assert_true(fd >= 0);
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        assert_true(S_ISLNK(st.st_mode));
        check_fd(c, fd, "a");
        assert_int_equal(fs_open_in_root(c->rootfd, "a", O_RDONLY | O_NOFOLLOW, 0), -ELOOP);
        check_fd(c, fs_open_in_root(c->rootfd, "a/marker", O_RDONLY | O_NOFOLLOW, 0), "etc/marker");

        /* as for openat(), O_CREAT|O_EXCL never follows a final symlink */
        xsymlink("/made-by-excl", c->root, "dl");
        assert_int_equal(fs_open_in_root(c->rootfd, "dl", O_WRONLY | O_CREAT | O_EXCL, 0644), -EEXIST);
        _cleanup_free_ char *made = rpath(c, "made-by-excl");
        assert_false(unit_exists(made));
        assert_int_equal(fs_open_in_root(c->rootfd, "a", O_WRONLY | O_CREAT | O_EXCL, 0644), -EEXIST);

        /* without O_EXCL a dangling final symlink is followed, inside root */
        fd = fs_open_in_root(c->rootfd, "dl", O_WRONLY | O_CREAT, 0644);
        check_fd(c, fd, "made-by-excl");
        assert_false(unit_exists("/made-by-excl"));
}

static void test_fd_path(void **state)
{
        (void) state;
        char buf[32];
        assert_string_equal(fs_fd_path(7, buf, sizeof(buf)), "/proc/self/fd/7");
}

static bool probe_openat2(void)
{
        struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
        long fd = syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof(how));
        if (fd < 0)
                return false;
        close((int) fd);
        return true;
}

#define ROOT_TEST(f) cmocka_unit_test_setup_teardown(f, root_setup, root_teardown)
#define TMP_TEST(f) cmocka_unit_test_setup_teardown(f, tmp_setup, tmp_teardown)

int main(void)
{
        const struct CMUnitTest plain[] = {
                TMP_TEST(test_write_atomic_content_and_mode),
                TMP_TEST(test_write_atomic_empty_and_binary),
                TMP_TEST(test_write_atomic_overwrite_replaces),
                TMP_TEST(test_write_atomic_no_leftovers),
                TMP_TEST(test_write_atomic_errors),
                TMP_TEST(test_read_file_content),
                TMP_TEST(test_read_file_size_cap),
                TMP_TEST(test_read_file_errors),
                TMP_TEST(test_mkdir_p),
                TMP_TEST(test_mkdir_p_file_in_the_way),
                cmocka_unit_test(test_mkdir_p_empty),
                TMP_TEST(test_rm_rf_tree),
                TMP_TEST(test_rm_rf_does_not_follow_symlinks),
                TMP_TEST(test_rm_rf_missing),
                cmocka_unit_test(test_fd_path),
        };
        const struct CMUnitTest in_root[] = {
                ROOT_TEST(test_in_root_absolute_symlink),
                ROOT_TEST(test_in_root_create_through_absolute_symlink),
                ROOT_TEST(test_in_root_relative_escape_symlink),
                ROOT_TEST(test_in_root_dotdot_clamps),
                ROOT_TEST(test_in_root_symlink_chains),
                ROOT_TEST(test_in_root_symlink_loop),
                ROOT_TEST(test_in_root_mkdir_p_through_symlink),
                ROOT_TEST(test_in_root_mkdir_p_paths),
                ROOT_TEST(test_in_root_mkfile),
                ROOT_TEST(test_in_root_existing_directory),
                ROOT_TEST(test_in_root_errors),
                ROOT_TEST(test_in_root_nofollow_and_excl),
        };
        int failed = 0;

        have_openat2 = probe_openat2();
        failed += cmocka_run_group_tests_name("fs-util", plain, NULL, NULL);
        failed += cmocka_run_group_tests_name("in-root (openat2)", in_root, group_openat2, group_teardown);
        failed += cmocka_run_group_tests_name("in-root (fallback walk)", in_root, group_fallback, group_teardown);
        return failed ? 1 : 0;
}

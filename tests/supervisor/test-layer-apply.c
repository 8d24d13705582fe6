/* Unit tests for supervisor/layer-apply: tar streams built in memory with
 * libarchive's writer (plain, gzip, zstd), applied to a new directory:
 * files, links, whiteouts and opaque directories, the diff id, and every
 * unsafe case refused with nothing left behind; the copy mode (whiteouts
 * as deletions in a directory that holds the lower layers). Root is needed
 * for the overlay xattr and ownership (skipped otherwise). */
#include "unit-helpers.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "cleanup.h"
#include "content-store.h"
#include "layer-apply.h"

enum { T_DIR, T_FILE, T_SYMLINK, T_HARD, T_CHR, T_WHDEV };

struct ent {
        const char *name;
        int type;
        const char *arg; /* file content, link target */
};

/* The tar (compressed with filter: "none", "gzip", "zstd") in a file;
 * the uncompressed stream's digest into diff. Returns an fd at offset 0. */
static int make_layer(const struct ent *v, size_t n, const char *filter, char diff[CONTENT_DIGEST_MAX])
{
        size_t cap = 1 << 20, used = 0;
        char *buf = malloc(cap);
        assert_non_null(buf);
        for (int pass = 0; pass < 2; pass++) {
                struct archive *a = archive_write_new();
                archive_write_set_format_pax_restricted(a);
                if (pass == 1 && strcmp(filter, "gzip") == 0)
                        assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
                else if (pass == 1 && strcmp(filter, "zstd") == 0)
                        assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
                else
                        archive_write_add_filter_none(a);
                archive_write_set_bytes_in_last_block(a, 1);
                assert_int_equal(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);
                for (size_t i = 0; i < n; i++) {
                        struct archive_entry *en = archive_entry_new();
                        archive_entry_set_pathname(en, v[i].name);
                        archive_entry_set_mtime(en, 1700000000, 0);
                        archive_entry_set_uid(en, 1000);
                        archive_entry_set_gid(en, 1001);
                        switch (v[i].type) {
                        case T_DIR:
                                archive_entry_set_filetype(en, AE_IFDIR);
                                archive_entry_set_perm(en, 0750);
                                break;
                        case T_FILE:
                                archive_entry_set_filetype(en, AE_IFREG);
                                archive_entry_set_perm(en, 0640);
                                archive_entry_set_size(en, (la_int64_t) strlen(v[i].arg));
                                break;
                        case T_SYMLINK:
                                archive_entry_set_filetype(en, AE_IFLNK);
                                archive_entry_set_perm(en, 0777);
                                archive_entry_set_symlink(en, v[i].arg);
                                break;
                        case T_HARD:
                                archive_entry_set_filetype(en, AE_IFREG);
                                archive_entry_set_perm(en, 0640);
                                archive_entry_set_hardlink(en, v[i].arg);
                                break;
                        case T_CHR:
                        case T_WHDEV:
                                archive_entry_set_filetype(en, AE_IFCHR);
                                archive_entry_set_perm(en, 0600);
                                archive_entry_set_rdev(en, v[i].type == T_CHR ? makedev(1, 3) : makedev(0, 0));
                                break;
                        }
                        assert_int_equal(archive_write_header(a, en), ARCHIVE_OK);
                        if (v[i].type == T_FILE)
                                assert_int_equal(archive_write_data(a, v[i].arg, strlen(v[i].arg)),
                                                 (la_ssize_t) strlen(v[i].arg));
                        archive_entry_free(en);
                }
                assert_int_equal(archive_write_close(a), ARCHIVE_OK);
                archive_write_free(a);
                if (pass == 0)
                        assert_int_equal(content_digest_of(buf, used, diff), 0);
        }
        char path[] = "/tmp/berth-unit-layer-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        unlink(path);
        assert_int_equal(write(fd, buf, used), (ssize_t) used);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        free(buf);
        return fd;
}

static size_t count_entries(const char *dir)
{
        DIR *d = opendir(dir);
        assert_non_null(d);
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

static void test_apply_tree(void **state)
{
        (void) state;
        static const struct ent v[] = {
                { "./", T_DIR, NULL },
                { "etc", T_DIR, NULL },
                { "etc/passwd", T_FILE, "root:x:0:0\n" },
                { "etc/link", T_HARD, "etc/passwd" },
                { "bin/sh", T_SYMLINK, "/bin/busybox" },
                { "etc/.wh.shadow", T_FILE, "" },
                { "opq/.wh..wh..opq", T_FILE, "" },
                { "opq/new", T_FILE, "new\n" },
                { "etc/.wh..wh.plnk", T_FILE, "" },
        };
        const char *filters[] = { "none", "gzip", "zstd" };
        for (size_t f = 0; f < ARRAY_SIZE(filters); f++) {
                char diff[CONTENT_DIGEST_MAX], got[CONTENT_DIGEST_MAX];
                _cleanup_close_ int fd = make_layer(v, ARRAY_SIZE(v), filters[f], diff);
                char *dir = unit_mkdtemp("apply");
                char *dest = unit_path(dir, "layer");
                struct berr e = { 0 };
                struct layer_apply_options o = { .diff_id = diff, .keep_owner = true };
                if (layer_apply(fd, dest, &o, got, &e) < 0)
                        fail_msg("%s: %s", filters[f], e.msg);
                assert_string_equal(got, diff);
                assert_int_equal(count_entries(dir), 1);

                char *p = unit_path(dest, "etc/passwd");
                char *data = unit_read(p, NULL);
                assert_string_equal(data, "root:x:0:0\n");
                struct stat st, st2;
                assert_int_equal(stat(p, &st), 0);
                assert_int_equal(st.st_uid, 1000);
                assert_int_equal(st.st_gid, 1001);
                assert_int_equal(st.st_mode & 07777, 0640);
                assert_int_equal(st.st_mtime, 1700000000);
                assert_int_equal(st.st_nlink, 2);
                free(data);
                free(p);
                p = unit_path(dest, "etc/link");
                assert_int_equal(stat(p, &st2), 0);
                assert_int_equal(st.st_ino, st2.st_ino);
                free(p);
                p = unit_path(dest, "etc");
                assert_int_equal(stat(p, &st), 0);
                assert_int_equal(st.st_mode & 07777, 0750);
                assert_int_equal(st.st_mtime, 1700000000);
                free(p);
                char target[64] = { 0 };
                p = unit_path(dest, "bin/sh");
                assert_int_equal(readlink(p, target, sizeof(target) - 1), 12);
                assert_string_equal(target, "/bin/busybox");
                free(p);
                /* whiteout: a 0:0 character device named after the entry */
                p = unit_path(dest, "etc/shadow");
                assert_int_equal(lstat(p, &st), 0);
                assert_true(S_ISCHR(st.st_mode));
                assert_int_equal(st.st_rdev, makedev(0, 0));
                free(p);
                p = unit_path(dest, "etc/.wh.shadow");
                assert_int_equal(lstat(p, &st), -1);
                free(p);
                p = unit_path(dest, "etc/.wh..wh.plnk");
                assert_int_equal(lstat(p, &st), -1);
                free(p);
                p = unit_path(dest, "opq");
                char x[4] = { 0 };
                assert_int_equal(getxattr(p, "trusted.overlay.opaque", x, sizeof(x)), 1);
                assert_string_equal(x, "y");
                free(p);
                p = unit_path(dest, "opq/new");
                assert_int_equal(lstat(p, &st), 0);
                free(p);

                unit_rm_tree(dir);
                free(dest);
                free(dir);
        }
}

/* The layer fails with err and a message containing want; nothing is
 * left in the parent directory. */
static void expect_refused(const struct ent *v, size_t n, const struct layer_apply_options *o, int err,
                           const char *want)
{
        char diff[CONTENT_DIGEST_MAX];
        _cleanup_close_ int fd = make_layer(v, n, "gzip", diff);
        char *dir = unit_mkdtemp("refuse");
        char *dest = unit_path(dir, "layer");
        struct berr e = { 0 };
        int r = layer_apply(fd, dest, o, NULL, &e);
        if (r != -err || !strstr(e.msg, want))
                fail_msg("want -%d with \"%s\", got %d: %s", err, want, r, e.msg);
        assert_int_equal(count_entries(dir), 0);
        unit_rm_tree(dir);
        free(dest);
        free(dir);
}

static void test_unsafe(void **state)
{
        (void) state;
        struct layer_apply_options o = { .keep_owner = true };
        const struct ent dotdot[] = { { "a", T_FILE, "x" }, { "../escape", T_FILE, "x" } };
        expect_refused(dotdot, 2, &o, EPERM, "entry \"../escape\": \"..\" in its path");
        const struct ent inner[] = { { "a/../../b", T_FILE, "x" } };
        expect_refused(inner, 1, &o, EPERM, "\"a/../../b\"");
        const struct ent abs[] = { { "/etc/passwd", T_FILE, "x" } };
        expect_refused(abs, 1, &o, EPERM, "entry \"/etc/passwd\": absolute path");
        const struct ent sym_abs[] = { { "l", T_SYMLINK, "/tmp" }, { "l/x", T_FILE, "x" } };
        expect_refused(sym_abs, 2, &o, EPERM, "entry \"l/x\": its path goes through a symlink");
        const struct ent sym_up[] = { { "d", T_DIR, NULL }, { "d/l", T_SYMLINK, "../.." }, { "d/l/x", T_FILE, "x" } };
        expect_refused(sym_up, 3, &o, EPERM, "entry \"d/l/x\": its path goes through a symlink");
        const struct ent hard_up[] = { { "h", T_HARD, "../etc/passwd" } };
        expect_refused(hard_up, 1, &o, EPERM, "entry \"h\": hardlink to a path outside");
        const struct ent hard_abs[] = { { "h", T_HARD, "/etc/passwd" } };
        expect_refused(hard_abs, 1, &o, EPERM, "entry \"h\": hardlink to a path outside");
        const struct ent hard_sym[] = { { "l", T_SYMLINK, "/etc" }, { "h", T_HARD, "l/passwd" } };
        expect_refused(hard_sym, 2, &o, EPERM, "entry \"h\": its path goes through a symlink");
        const struct ent dev[] = { { "dev", T_DIR, NULL }, { "dev/null", T_CHR, NULL } };
        expect_refused(dev, 2, &o, EPERM, "entry \"dev/null\": device nodes are not allowed");
        /* a symlink inside the layer may be written through */
        const struct ent ok[] = { { "d", T_DIR, NULL }, { "l", T_SYMLINK, "d" }, { "l/x", T_FILE, "x" },
                                  { "dev/null", T_CHR, NULL } };
        char diff[CONTENT_DIGEST_MAX];
        _cleanup_close_ int fd = make_layer(ok, ARRAY_SIZE(ok), "none", diff);
        char *dir = unit_mkdtemp("ok");
        char *dest = unit_path(dir, "layer");
        struct berr e = { 0 };
        o.allow_devices = true;
        if (layer_apply(fd, dest, &o, NULL, &e) < 0)
                fail_msg("%s", e.msg);
        char *p = unit_path(dest, "d/x");
        struct stat st;
        assert_int_equal(lstat(p, &st), 0);
        free(p);
        p = unit_path(dest, "dev/null");
        assert_int_equal(lstat(p, &st), 0);
        assert_true(S_ISCHR(st.st_mode));
        assert_int_equal(st.st_rdev, makedev(1, 3));
        free(p);
        unit_rm_tree(dir);
        free(dest);
        free(dir);
}

static void test_diff_id_and_media_type(void **state)
{
        (void) state;
        const struct ent v[] = { { "a", T_FILE, "hello" } };
        struct layer_apply_options o = {
                .diff_id = "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        };
        expect_refused(v, 1, &o, EBADMSG, "layer diff id mismatch");
        struct layer_apply_options o2 = { .media_type = "application/vnd.oci.image.layer.v1.tar+zstd" };
        expect_refused(v, 1, &o2, EBADMSG, "does not start with zstd magic bytes");
        struct layer_apply_options o3 = { .media_type = "application/vnd.oci.image.layer.v1.tar+gzip+encrypted" };
        expect_refused(v, 1, &o3, EPROTONOSUPPORT, "is not supported");
}

static void test_truncated(void **state)
{
        (void) state;
        const struct ent v[] = { { "a", T_FILE, "hello" }, { "b", T_FILE, "world" } };
        char diff[CONTENT_DIGEST_MAX];
        int fd = make_layer(v, 2, "gzip", diff);
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal(ftruncate(fd, st.st_size / 2), 0);
        char *dir = unit_mkdtemp("trunc");
        char *dest = unit_path(dir, "layer");
        struct berr e = { 0 };
        struct layer_apply_options o = { 0 };
        assert_true(layer_apply(fd, dest, &o, NULL, &e) < 0);
        assert_non_null(strstr(e.msg, "gzip"));
        assert_int_equal(count_entries(dir), 0);
        close(fd);
        unit_rm_tree(dir);
        free(dest);
        free(dir);
}


/* ---------- copy mode ---------- */

/* A lower tree in dir/layer, as a copy snapshot's fs holds it, and a
 * victim directory beside it that no layer may touch. */
static char *make_lower(const char *dir)
{
        char *dest = unit_path(dir, "layer");
        static const char *dirs[] = { "layer",           "layer/etc",     "layer/etc/sub", "layer/opq",
                                      "layer/opq/olddir", "layer/keep",   "victim",        "victim/sub" };
        for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
                char *p = unit_path(dir, dirs[i]);
                assert_int_equal(mkdir(p, 0755), 0);
                free(p);
        }
        static const char *files[] = { "layer/etc/passwd", "layer/etc/shadow", "layer/etc/sub/x", "layer/opq/old",
                                       "layer/opq/olddir/y", "layer/opq/-first", "layer/keep/k", "victim/f",
                                       "victim/sub/g" };
        for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
                char *p = unit_path(dir, files[i]);
                unit_write_str(p, "lower\n");
                free(p);
        }
        char *victim = unit_path(dir, "victim");
        const struct {
                const char *name, *target;
        } links[] = {
                { "layer/out", victim },       /* absolute: outside */
                { "layer/up", "../victim" },   /* relative, past the top */
                { "layer/rel", "etc" },        /* inside */
                { "layer/etc/outlink", victim }, /* a whiteout removes the link, not its target */
        };
        for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
                char *p = unit_path(dir, links[i].name);
                assert_int_equal(symlink(links[i].target, p), 0);
                free(p);
        }
        free(victim);
        return dest;
}

static void assert_victim_intact(const char *dir)
{
        const char *v[] = { "victim/f", "victim/sub/g" };
        for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
                char *p = unit_path(dir, v[i]);
                assert_true(unit_exists(p));
                free(p);
        }
        char *p = unit_path(dir, "victim");
        assert_int_equal(unit_count_entries(p), 2);
        free(p);
}

static bool lexists(const char *top, const char *rel)
{
        char *p = unit_path(top, rel);
        struct stat st;
        bool r = lstat(p, &st) == 0;
        free(p);
        return r;
}

/* No overlay whiteout or opaque xattr anywhere under dir. */
static void assert_no_overlay_marks(const char *dir)
{
        DIR *d = opendir(dir);
        assert_non_null(d);
        char x[4];
        assert_int_equal(lgetxattr(dir, "trusted.overlay.opaque", x, sizeof(x)), -1);
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                char *p = unit_path(dir, de->d_name);
                struct stat st;
                assert_int_equal(lstat(p, &st), 0);
                assert_false(S_ISCHR(st.st_mode) && st.st_rdev == 0);
                assert_null(strstr(de->d_name, ".wh."));
                if (S_ISDIR(st.st_mode))
                        assert_no_overlay_marks(p);
                free(p);
        }
        closedir(d);
}

static void test_copy_whiteouts(void **state)
{
        (void) state;
        static const struct ent v[] = {
                { "etc", T_DIR, NULL },
                { "etc/.wh.shadow", T_FILE, "" },
                { "etc/.wh.sub", T_FILE, "" },          /* a directory, recursively */
                { "etc/.wh.outlink", T_FILE, "" },      /* the link only */
                { "etc/.wh..wh.plnk", T_FILE, "" },     /* aufs: skipped */
                { "keep/.wh.missing", T_FILE, "" },     /* nothing to delete */
                { "rel/.wh.passwd", T_FILE, "" },       /* through a symlink inside */
                { "opq", T_DIR, NULL },
                { "opq/!early", T_FILE, "mine\n" },     /* before the marker: stays */
                { "opq/olddir", T_DIR, NULL },          /* the layer's own dir, lower content gone */
                { "opq/.wh..wh..opq", T_FILE, "" },
                { "opq/new", T_FILE, "new\n" },
                { "opq/.wh.new", T_FILE, "" },          /* the layer's own file: not hidden */
                { "fresh/.wh..wh..opq", T_FILE, "" },   /* a new, empty directory */
                { "dev/gone", T_FILE, "" },
                { "keep/k2", T_FILE, "k2\n" },
                { "keep/k", T_WHDEV, NULL },            /* an overlay whiteout in a tar: a deletion */
        };
        char diff[CONTENT_DIGEST_MAX];
        _cleanup_close_ int fd = make_layer(v, ARRAY_SIZE(v), "gzip", diff);
        char *dir = unit_mkdtemp("copywh");
        char *dest = make_lower(dir);
        struct berr e = { 0 };
        struct layer_apply_options o = {
                .diff_id = diff, .keep_owner = true, .allow_devices = true, .mode = LAYER_APPLY_COPY,
        };
        if (layer_apply(fd, dest, &o, NULL, &e) < 0)
                fail_msg("%s", e.msg);
        assert_false(lexists(dest, "etc/shadow"));
        assert_false(lexists(dest, "etc/sub"));
        assert_false(lexists(dest, "etc/outlink"));
        assert_false(lexists(dest, "etc/passwd"));
        assert_true(lexists(dest, "rel"));
        assert_true(lexists(dest, "keep/k2"));
        assert_false(lexists(dest, "keep/k"));
        char *opq = unit_path(dest, "opq");
        assert_int_equal(unit_count_entries(opq), 3);
        free(opq);
        assert_true(lexists(dest, "opq/!early"));
        assert_true(lexists(dest, "opq/new"));
        assert_false(lexists(dest, "opq/old"));
        assert_false(lexists(dest, "opq/-first"));
        char *od = unit_path(dest, "opq/olddir");
        assert_int_equal(unit_count_entries(od), 0);
        free(od);
        char *fresh = unit_path(dest, "fresh");
        assert_int_equal(unit_count_entries(fresh), 0);
        free(fresh);
        assert_true(lexists(dest, "dev/gone"));
        assert_no_overlay_marks(dest);
        assert_victim_intact(dir);
        unit_rm_tree(dir);
        free(dest);
        free(dir);
}

/* In copy mode the refused layer is part-applied (the snapshot is thrown
 * away), but nothing outside dest is touched. */
static void expect_refused_copy(const struct ent *v, size_t n, const struct layer_apply_options *o, const char *want)
{
        char diff[CONTENT_DIGEST_MAX];
        _cleanup_close_ int fd = make_layer(v, n, "none", diff);
        char *dir = unit_mkdtemp("copyrefuse");
        char *dest = make_lower(dir);
        struct berr e = { 0 };
        int r = layer_apply(fd, dest, o, NULL, &e);
        if (r != -EPERM || !strstr(e.msg, want))
                fail_msg("want -EPERM with \"%s\", got %d: %s", want, r, e.msg);
        assert_victim_intact(dir);
        assert_int_equal(unit_count_entries(dir), 2);
        unit_rm_tree(dir);
        free(dest);
        free(dir);
}

static void test_copy_unsafe(void **state)
{
        (void) state;
        struct layer_apply_options o = { .keep_owner = true, .mode = LAYER_APPLY_COPY };
        const char *through = "its path goes through a symlink that points outside the layer";
        const struct ent wh_abs[] = { { "out/.wh.f", T_FILE, "" } };
        expect_refused_copy(wh_abs, 1, &o, through);
        const struct ent wh_up[] = { { "up/.wh.sub", T_FILE, "" } };
        expect_refused_copy(wh_up, 1, &o, through);
        const struct ent opq_abs[] = { { "out/.wh..wh..opq", T_FILE, "" } };
        expect_refused_copy(opq_abs, 1, &o, through);
        const struct ent opq_up[] = { { "up/sub/.wh..wh..opq", T_FILE, "" } };
        expect_refused_copy(opq_up, 1, &o, through);
        const struct ent wh_dotdot[] = { { "etc/../../.wh.victim", T_FILE, "" } };
        expect_refused_copy(wh_dotdot, 1, &o, "\"..\" in its path");
        const struct ent wh_abs_name[] = { { "/.wh.etc", T_FILE, "" } };
        expect_refused_copy(wh_abs_name, 1, &o, "absolute path");
        const struct ent file_through[] = { { "out/new", T_FILE, "x" } };
        expect_refused_copy(file_through, 1, &o, through);
        const struct ent hard_through[] = { { "h", T_HARD, "out/f" } };
        expect_refused_copy(hard_through, 1, &o, through);
        const struct ent hard_up[] = { { "h", T_HARD, "../victim/f" } };
        expect_refused_copy(hard_up, 1, &o, "hardlink to a path outside");
        const struct ent dev[] = { { "null", T_CHR, NULL } };
        expect_refused_copy(dev, 1, &o, "device nodes are not allowed");
        const struct ent whdev[] = { { "etc/passwd", T_WHDEV, NULL } };
        expect_refused_copy(whdev, 1, &o, "device nodes are not allowed");
        /* a whiteout of the symlink itself is fine: the link goes, not the victim */
        const struct ent wh_link[] = { { ".wh.out", T_FILE, "" }, { ".wh.up", T_FILE, "" } };
        char diff[CONTENT_DIGEST_MAX];
        _cleanup_close_ int fd = make_layer(wh_link, 2, "none", diff);
        char *dir = unit_mkdtemp("copylink");
        char *dest = make_lower(dir);
        struct berr e = { 0 };
        if (layer_apply(fd, dest, &o, NULL, &e) < 0)
                fail_msg("%s", e.msg);
        assert_false(lexists(dest, "out"));
        assert_false(lexists(dest, "up"));
        assert_victim_intact(dir);
        unit_rm_tree(dir);
        free(dest);
        free(dir);
}

static void test_copy_diff_id(void **state)
{
        (void) state;
        const struct ent v[] = { { "a", T_FILE, "hello" } };
        struct layer_apply_options o = {
                .diff_id = "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                .mode = LAYER_APPLY_COPY,
        };
        char diff[CONTENT_DIGEST_MAX];
        _cleanup_close_ int fd = make_layer(v, 1, "zstd", diff);
        char *dir = unit_mkdtemp("copydiff");
        char *dest = unit_path(dir, "missing");
        struct berr e = { 0 };
        assert_int_equal(layer_apply(fd, dest, &o, NULL, &e), -ENOENT);
        assert_int_equal(mkdir(dest, 0755), 0);
        assert_int_equal(layer_apply(fd, dest, &o, NULL, &e), -EBADMSG);
        assert_non_null(strstr(e.msg, "layer diff id mismatch"));
        unit_rm_tree(dir);
        free(dest);
        free(dir);
}

int main(void)
{
        if (geteuid() != 0) {
                fprintf(stderr, "needs root (trusted.overlay xattrs, chown)\n");
                return UNIT_EXIT_SKIP;
        }
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_apply_tree),
                cmocka_unit_test(test_unsafe),
                cmocka_unit_test(test_diff_id_and_media_type),
                cmocka_unit_test(test_truncated),
                cmocka_unit_test(test_copy_whiteouts),
                cmocka_unit_test(test_copy_unsafe),
                cmocka_unit_test(test_copy_diff_id),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

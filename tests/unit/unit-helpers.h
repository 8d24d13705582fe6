/* Small helpers shared by the unit tests: temporary directories and plain
 * file I/O done with libc only, so a test never depends on the module it is
 * testing to set up or clean up (fs_rm_rf is not used for cleanup: a broken
 * one could follow the tests' symlinks to /etc). */
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Exit code meson reads as "skipped". */
#define UNIT_EXIT_SKIP 77

static inline char *unit_mkdtemp(const char *tag)
{
        char *p = NULL;
        assert_true(asprintf(&p, "/tmp/berth-unit-%s-XXXXXX", tag) > 0);
        assert_non_null(mkdtemp(p));
        return p;
}

static inline int unit_rm_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
        (void) st;
        (void) type;
        (void) ftw;
        remove(path);
        return 0;
}

/* rm -rf with FTW_PHYS: symlinks are removed, never followed. */
static inline void unit_rm_tree(const char *path)
{
        if (path)
                nftw(path, unit_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static inline char *unit_path(const char *dir, const char *rel)
{
        char *p = NULL;
        assert_true(asprintf(&p, "%s/%s", dir, rel) > 0);
        return p;
}

static inline void unit_write(const char *path, const void *data, size_t len)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t) len);
        assert_int_equal(close(fd), 0);
}

static inline void unit_write_str(const char *path, const char *s)
{
        unit_write(path, s, strlen(s));
}

/* Whole file, NUL terminated; *ret_len gets the length when not NULL. */
static inline char *unit_read(const char *path, size_t *ret_len)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        size_t cap = 4096, len = 0;
        char *buf = malloc(cap + 1);
        assert_non_null(buf);
        for (;;) {
                if (len == cap) {
                        cap *= 2;
                        buf = realloc(buf, cap + 1);
                        assert_non_null(buf);
                }
                ssize_t n = read(fd, buf + len, cap - len);
                assert_true(n >= 0);
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        close(fd);
        buf[len] = '\0';
        if (ret_len)
                *ret_len = len;
        return buf;
}

static inline bool unit_exists(const char *path)
{
        struct stat st;
        return lstat(path, &st) == 0;
}

/* Number of entries in a directory, "." and ".." excluded. */
static inline int unit_count_entries(const char *path)
{
        DIR *d = opendir(path);
        assert_non_null(d);
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        n++;
        closedir(d);
        return n;
}

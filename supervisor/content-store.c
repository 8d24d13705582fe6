#include "content-store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "sha256.h"
#include "fs-util.h"

struct content_store {
        char *root;
        char *blobs;   /* <root>/blobs/sha256 */
        char *ingest;  /* <root>/ingest */
};

struct content_writer {
        struct content_store *cs;
        char expected[CONTENT_DIGEST_MAX];
        int64_t size;           /* expected, < 0: unknown */
        char *dir;              /* <root>/ingest/<ref> */
        char *data;             /* <dir>/data */
        int fd;
        uint64_t offset;
        struct sha256 *md;
        bool unknown;           /* opened without a digest: it is learnt at commit */
        bool done;
};

int content_digest_check(const char *d, struct berr *e)
{
        if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != 7 + 64)
                return berr_setx(e, EINVAL, "invalid digest \"%s\": want sha256:<64 hex digits>", d);
        for (const char *p = d + 7; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return berr_setx(e, EINVAL, "invalid digest \"%s\": want lower-case hex digits", d);
        return 0;
}

static void hex_digest(const unsigned char *md, unsigned len, char ret[CONTENT_DIGEST_MAX])
{
        static const char hexd[] = "0123456789abcdef";
        memcpy(ret, "sha256:", 7);
        for (unsigned i = 0; i < len && i < 32; i++) {
                ret[7 + 2 * i] = hexd[md[i] >> 4];
                ret[7 + 2 * i + 1] = hexd[md[i] & 0xf];
        }
        ret[7 + 64] = '\0';
}

int content_digest_of(const void *data, size_t len, char ret[CONTENT_DIGEST_MAX])
{
        unsigned char md[32];
        if (sha256_buf(data, len, md) != 0)
                return -EIO;
        hex_digest(md, sizeof(md), ret);
        return 0;
}

int content_ingest_ref(const char *digest, char *buf, size_t len)
{
        int r = content_digest_check(digest, NULL);
        if (r < 0)
                return r;
        snprintf(buf, len, "sha256-%s", digest + 7);
        return 0;
}

const char *content_store_root(const struct content_store *cs)
{
        return cs->root;
}

void content_store_free(struct content_store *cs)
{
        if (!cs)
                return;
        free(cs->root);
        free(cs->blobs);
        free(cs->ingest);
        free(cs);
}

int content_store_open(const char *root, struct content_store **ret, struct berr *e)
{
        struct content_store *cs = calloc(1, sizeof(*cs));
        if (!cs)
                return berr_set(e, ENOMEM, "content store");
        if (!(cs->root = strdup(root)) || asprintf(&cs->blobs, "%s/blobs/sha256", root) < 0 ||
            asprintf(&cs->ingest, "%s/ingest", root) < 0) {
                content_store_free(cs);
                return berr_set(e, ENOMEM, "content store");
        }
        int r = fs_mkdir_p(cs->blobs, 0755);
        if (r == 0)
                r = fs_mkdir_p(cs->ingest, 0700);
        if (r < 0) {
                berr_set(e, r, "content store \"%s\"", root);
                content_store_free(cs);
                return r;
        }
        *ret = cs;
        return 0;
}

static int blob_path(struct content_store *cs, const char *digest, char **ret, struct berr *e)
{
        int r = content_digest_check(digest, e);
        if (r < 0)
                return r;
        if (asprintf(ret, "%s/%s", cs->blobs, digest + 7) < 0)
                return berr_set(e, ENOMEM, "content %s", digest);
        return 0;
}

int content_info(struct content_store *cs, const char *digest, struct content_info *ret, struct berr *e)
{
        _cleanup_free_ char *path = NULL;
        struct stat st;
        int r = blob_path(cs, digest, &path, e);
        if (r < 0)
                return r;
        if (lstat(path, &st) < 0)
                return berr_set(e, errno, "content %s", digest);
        if (!S_ISREG(st.st_mode))
                return berr_setx(e, EUCLEAN, "content %s: \"%s\" is not a regular file", digest, path);
        snprintf(ret->digest, sizeof(ret->digest), "%s", digest);
        ret->size = (uint64_t) st.st_size;
        ret->created = st.st_mtim;
        return 0;
}

int content_open(struct content_store *cs, const char *digest, struct berr *e)
{
        _cleanup_free_ char *path = NULL;
        int r = blob_path(cs, digest, &path, e);
        if (r < 0)
                return r;
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return berr_set(e, errno, "content %s", digest);
        return fd;
}

int content_read(struct content_store *cs, const char *digest, size_t max, char **ret_data, size_t *ret_len,
                 struct berr *e)
{
        _cleanup_free_ char *path = NULL;
        int r = blob_path(cs, digest, &path, e);
        if (r < 0)
                return r;
        r = fs_read_file(path, max, ret_data, ret_len);
        if (r < 0)
                return berr_set(e, r, "content %s", digest);
        return 0;
}

static int info_cmp(const void *a, const void *b)
{
        return strcmp(((const struct content_info *) a)->digest, ((const struct content_info *) b)->digest);
}

int content_list(struct content_store *cs, struct content_info **ret, size_t *ret_n, struct berr *e)
{
        _cleanup_closedir_ DIR *d = opendir(cs->blobs);
        if (!d)
                return berr_set(e, errno, "content store \"%s\"", cs->blobs);
        _cleanup_free_ struct content_info *v = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        while ((errno = 0, de = readdir(d))) {
                char digest[CONTENT_DIGEST_MAX];
                if (strlen(de->d_name) != 64)
                        continue;
                snprintf(digest, sizeof(digest), "sha256:%s", de->d_name);
                if (content_digest_check(digest, NULL) < 0)
                        continue;
                if (n == cap) {
                        cap = cap ? cap * 2 : 16;
                        struct content_info *nv = realloc(v, cap * sizeof(*v));
                        if (!nv)
                                return berr_set(e, ENOMEM, "content list");
                        v = nv;
                }
                if (content_info(cs, digest, &v[n], NULL) == 0)
                        n++;
        }
        if (errno)
                return berr_set(e, errno, "reading \"%s\"", cs->blobs);
        if (n)
                qsort(v, n, sizeof(*v), info_cmp);
        *ret = TAKE_PTR(v);
        *ret_n = n;
        return 0;
}

int content_delete(struct content_store *cs, const char *digest, struct berr *e)
{
        _cleanup_free_ char *path = NULL;
        int r = blob_path(cs, digest, &path, e);
        if (r < 0)
                return r;
        if (unlink(path) < 0)
                return berr_set(e, errno, "content %s", digest);
        r = fs_fsync_parent(path);
        if (r < 0)
                return berr_set(e, r, "fsync of \"%s\"", cs->blobs);
        return 0;
}

/* ---------- writers ---------- */


/* Hashes what an earlier writer left in the ingest file. */
static int rehash(struct content_writer *w, struct berr *e)
{
        char buf[65536];
        if (lseek(w->fd, 0, SEEK_SET) < 0)
                return berr_set(e, errno, "ingest \"%s\"", w->data);
        for (;;) {
                ssize_t n = read(w->fd, buf, sizeof(buf));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return berr_set(e, errno, "reading ingest \"%s\"", w->data);
                }
                if (n == 0)
                        break;
                if (sha256_update(w->md, buf, (size_t) n) != 0)
                        return berr_setx(e, EIO, "sha256 of \"%s\" failed", w->data);
                w->offset += (uint64_t) n;
        }
        return 0;
}

int content_writer_reset(struct content_writer *w, struct berr *e)
{
        if (ftruncate(w->fd, 0) < 0 || lseek(w->fd, 0, SEEK_SET) < 0)
                return berr_set(e, errno, "truncating ingest \"%s\"", w->data);
        if (sha256_reset(w->md) != 0)
                return berr_setx(e, EIO, "sha256 init failed");
        w->offset = 0;
        return 0;
}

void content_writer_close(struct content_writer *w, bool discard)
{
        if (!w)
                return;
        /* an ingest of unknown digest cannot be resumed: never kept */
        if ((discard || w->unknown) && !w->done) {
                if (w->data)
                        unlink(w->data);
                if (w->dir)
                        rmdir(w->dir);
        }
        if (w->fd >= 0)
                close(w->fd);
        sha256_free(w->md);
        free(w->dir);
        free(w->data);
        free(w);
}

int content_writer_open(struct content_store *cs, const char *expected, int64_t size, struct content_writer **ret,
                        struct berr *e)
{
        char ref[80];
        int r;

        if (expected) {
                r = content_digest_check(expected, e);
                if (r < 0)
                        return r;
                content_ingest_ref(expected, ref, sizeof(ref));
        }
        struct content_writer *w = calloc(1, sizeof(*w));
        if (!w)
                return berr_set(e, ENOMEM, "ingest");
        w->fd = -1;
        w->cs = cs;
        w->size = size;
        w->unknown = !expected;
        snprintf(w->expected, sizeof(w->expected), "%s", expected ? expected : "(unknown digest)");
        if (expected ? asprintf(&w->dir, "%s/%s", cs->ingest, ref) < 0
                     : asprintf(&w->dir, "%s/unknown-XXXXXX", cs->ingest) < 0) {
                content_writer_close(w, false);
                return berr_set(e, ENOMEM, "ingest");
        }
        /* A blob of unknown digest gets an ingest of its own, never resumed. */
        if (expected ? mkdir(w->dir, 0700) < 0 && errno != EEXIST : !mkdtemp(w->dir)) {
                r = berr_set(e, errno, "creating ingest \"%s\"", w->dir);
                goto fail;
        }
        if (asprintf(&w->data, "%s/data", w->dir) < 0) {
                r = berr_set(e, ENOMEM, "ingest");
                goto fail;
        }
        w->fd = open(w->data, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (w->fd < 0) {
                r = berr_set(e, errno, "opening ingest \"%s\"", w->data);
                goto fail;
        }
        if (flock(w->fd, LOCK_EX | LOCK_NB) < 0) {
                r = errno == EWOULDBLOCK ? berr_setx(e, EBUSY, "ingest \"%s\" is being written by another writer",
                                                     w->data)
                                         : berr_set(e, errno, "locking ingest \"%s\"", w->data);
                content_writer_close(w, false);
                return r;
        }
        if (!(w->md = sha256_new())) {
                r = berr_setx(e, ENOMEM, "sha256 init failed");
                goto fail;
        }
        r = rehash(w, e);
        if (r < 0)
                goto fail;
        /* More than the blob's size cannot be a prefix of it. */
        if (size >= 0 && w->offset > (uint64_t) size) {
                r = content_writer_reset(w, e);
                if (r < 0)
                        goto fail;
        }
        *ret = w;
        return 0;
fail:
        content_writer_close(w, w->unknown);
        return r;
}

const char *content_writer_digest(const struct content_writer *w)
{
        return w->unknown && !w->done ? NULL : w->expected;
}

uint64_t content_writer_offset(const struct content_writer *w)
{
        return w->offset;
}

int content_writer_write(struct content_writer *w, const void *data, size_t len, struct berr *e)
{
        if (w->size >= 0 && w->offset + len > (uint64_t) w->size)
                return berr_setx(e, EFBIG, "%s: more data than its size of %lld bytes", w->expected,
                                 (long long) w->size);
        int r = fs_write_all(w->fd, data, len);
        if (r < 0)
                return berr_set(e, r, "writing ingest \"%s\"", w->data);
        if (sha256_update(w->md, data, len) != 0)
                return berr_setx(e, EIO, "sha256 update failed");
        w->offset += len;
        return 0;
}

static void remove_ingest(struct content_writer *w)
{
        unlink(w->data);
        rmdir(w->dir);
        w->done = true;
}

int content_writer_commit(struct content_writer *w, struct berr *e)
{
        unsigned char md[32];
        char got[CONTENT_DIGEST_MAX];
        _cleanup_free_ char *target = NULL;
        int r;

        if (w->done)
                return berr_setx(e, EINVAL, "%s: already committed", w->expected);
        if (w->size >= 0 && w->offset != (uint64_t) w->size) {
                r = berr_setx(e, EBADMSG, "%s: size %llu does not match the expected %lld bytes", w->expected,
                              (unsigned long long) w->offset, (long long) w->size);
                remove_ingest(w);
                return r;
        }
        if (sha256_final(w->md, md) != 0)
                return berr_setx(e, EIO, "sha256 final failed");
        hex_digest(md, sizeof(md), got);
        if (w->unknown) {
                struct content_info info;
                snprintf(w->expected, sizeof(w->expected), "%s", got);
                if (content_info(w->cs, got, &info, NULL) == 0 && info.size == w->offset) {
                        remove_ingest(w);
                        return 1;
                }
        }
        if (strcmp(got, w->expected) != 0) {
                r = berr_setx(e, EBADMSG, "digest mismatch: expected %s, got %s (%llu bytes); refused",
                              w->expected, got, (unsigned long long) w->offset);
                remove_ingest(w);
                return r;
        }
        if (fsync(w->fd) < 0)
                return berr_set(e, errno, "fsync of \"%s\"", w->data);
        if (fchmod(w->fd, 0444) < 0)
                return berr_set(e, errno, "chmod of \"%s\"", w->data);
        r = blob_path(w->cs, w->expected, &target, e);
        if (r < 0)
                return r;
        if (rename(w->data, target) < 0)
                return berr_set(e, errno, "moving \"%s\" to \"%s\"", w->data, target);
        w->done = true;
        rmdir(w->dir);
        r = fs_fsync_parent(target);
        if (r < 0)
                return berr_set(e, r, "fsync of \"%s\"", w->cs->blobs);
        return 0;
}

int content_write_blob(struct content_store *cs, const void *data, size_t len, const char *expected,
                       char ret_digest[CONTENT_DIGEST_MAX], struct berr *e)
{
        char digest[CONTENT_DIGEST_MAX];
        struct content_info info;
        struct content_writer *w = NULL;
        int r;

        if (expected) {
                r = content_digest_check(expected, e);
                if (r < 0)
                        return r;
                snprintf(digest, sizeof(digest), "%s", expected);
        } else if (content_digest_of(data, len, digest) < 0) {
                return berr_setx(e, EIO, "sha256 failed");
        }
        if (content_info(cs, digest, &info, NULL) == 0 && info.size == len)
                goto out;
        r = content_writer_open(cs, digest, (int64_t) len, &w, e);
        if (r < 0)
                return r;
        r = content_writer_reset(w, e);
        if (r == 0)
                r = content_writer_write(w, data, len, e);
        if (r == 0)
                r = content_writer_commit(w, e);
        content_writer_close(w, r < 0);
        if (r < 0)
                return r;
out:
        if (ret_digest)
                memcpy(ret_digest, digest, CONTENT_DIGEST_MAX);
        return 0;
}

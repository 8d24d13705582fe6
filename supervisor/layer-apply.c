/* Layer application: decompression and the diff id in a read callback that
 * feeds libarchive's tar reader, then each entry resolved beneath the new
 * layer directory and created with the *at() calls (see layer-apply.h). */
#include "layer-apply.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <search.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "cleanup.h"
#include "fs-util.h"
#include "log.h"

#define IN_BUF (128 * 1024)
#define OUT_BUF (256 * 1024)

/* ---------- the uncompressed stream ---------- */

struct stream {
        int fd;
        enum layer_compression comp;
        z_stream z;
        bool z_init;
        bool z_end;             /* a gzip member ended */
        ZSTD_DStream *zs;
        bool zs_frame_done;
        unsigned char *in;
        size_t in_pos, in_len;
        bool in_eof;
        unsigned char *out;
        EVP_MD_CTX *sha;
        uint64_t total;
        struct berr err;        /* set when a read callback failed */
};

static int stream_fill(struct stream *s)
{
        if (s->in_pos < s->in_len || s->in_eof)
                return 0;
        for (;;) {
                ssize_t n = read(s->fd, s->in, IN_BUF);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return berr_set(&s->err, errno, "reading the layer");
                s->in_pos = 0;
                s->in_len = (size_t) n;
                s->in_eof = n == 0;
                return 0;
        }
}

/* The next uncompressed bytes into s->out: their count, 0 at the end. */
static ssize_t stream_inflate(struct stream *s)
{
        for (;;) {
                int r = stream_fill(s);
                if (r < 0)
                        return r;
                if (s->z_end) {
                        if (s->in_pos == s->in_len && s->in_eof)
                                return 0;
                        /* another gzip member follows (pigz, concatenated streams) */
                        if (inflateReset(&s->z) != Z_OK)
                                return berr_setx(&s->err, EBADMSG, "gzip: cannot reset the inflater");
                        s->z_end = false;
                }
                s->z.next_in = s->in + s->in_pos;
                s->z.avail_in = (uInt) (s->in_len - s->in_pos);
                s->z.next_out = s->out;
                s->z.avail_out = OUT_BUF;
                int zr = inflate(&s->z, Z_NO_FLUSH);
                s->in_pos = s->in_len - s->z.avail_in;
                size_t produced = OUT_BUF - s->z.avail_out;
                if (zr == Z_STREAM_END)
                        s->z_end = true;
                else if (zr != Z_OK && !(zr == Z_BUF_ERROR && produced == 0))
                        return berr_setx(&s->err, EBADMSG, "gzip: %s", s->z.msg ? s->z.msg : "corrupt data");
                if (produced > 0)
                        return (ssize_t) produced;
                if (!s->z_end && s->in_pos == s->in_len && s->in_eof)
                        return berr_setx(&s->err, EBADMSG, "gzip: the stream is truncated");
        }
}

static ssize_t stream_unzstd(struct stream *s)
{
        for (;;) {
                int r = stream_fill(s);
                if (r < 0)
                        return r;
                ZSTD_inBuffer in = { s->in, s->in_len, s->in_pos };
                ZSTD_outBuffer out = { s->out, OUT_BUF, 0 };
                size_t zr = ZSTD_decompressStream(s->zs, &out, &in);
                bool progress = in.pos != s->in_pos || out.pos > 0;
                s->in_pos = in.pos;
                if (ZSTD_isError(zr))
                        return berr_setx(&s->err, EBADMSG, "zstd: %s", ZSTD_getErrorName(zr));
                /* with no input left, a finished frame's next call asks
                 * for a new frame header: that is not truncation */
                if (progress)
                        s->zs_frame_done = zr == 0;
                if (out.pos > 0)
                        return (ssize_t) out.pos;
                if (s->in_pos == s->in_len && s->in_eof) {
                        if (!s->zs_frame_done)
                                return berr_setx(&s->err, EBADMSG, "zstd: the stream is truncated");
                        return 0;
                }
        }
}

static ssize_t stream_read(struct stream *s)
{
        ssize_t n;
        switch (s->comp) {
        case LAYER_COMPRESSION_GZIP:
                n = stream_inflate(s);
                break;
        case LAYER_COMPRESSION_ZSTD:
                n = stream_unzstd(s);
                break;
        default:
                if (s->in_pos < s->in_len) {
                        n = (ssize_t) (s->in_len - s->in_pos);
                        memcpy(s->out, s->in + s->in_pos, (size_t) n);
                        s->in_pos = s->in_len;
                        break;
                }
                for (;;) {
                        n = read(s->fd, s->out, OUT_BUF);
                        if (n >= 0 || errno != EINTR)
                                break;
                }
                if (n < 0)
                        return berr_set(&s->err, errno, "reading the layer");
        }
        if (n > 0) {
                if (EVP_DigestUpdate(s->sha, s->out, (size_t) n) != 1)
                        return berr_setx(&s->err, EIO, "sha256 failed");
                s->total += (uint64_t) n;
        }
        return n;
}

static la_ssize_t archive_read_cb(struct archive *a, void *ud, const void **buf)
{
        struct stream *s = ud;
        ssize_t n = stream_read(s);
        if (n < 0) {
                archive_set_error(a, s->err.err, "%s", s->err.msg);
                return -1;
        }
        *buf = s->out;
        return n;
}

int layer_media_compression(const char *mt, enum layer_compression *ret, struct berr *e)
{
        static const struct {
                const char *type;
                enum layer_compression comp;
        } known[] = {
                { "application/vnd.oci.image.layer.v1.tar", LAYER_COMPRESSION_NONE },
                { "application/vnd.oci.image.layer.v1.tar+gzip", LAYER_COMPRESSION_GZIP },
                { "application/vnd.oci.image.layer.v1.tar+zstd", LAYER_COMPRESSION_ZSTD },
                { "application/vnd.oci.image.layer.nondistributable.v1.tar", LAYER_COMPRESSION_NONE },
                { "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", LAYER_COMPRESSION_GZIP },
                { "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", LAYER_COMPRESSION_ZSTD },
                { "application/vnd.docker.image.rootfs.diff.tar", LAYER_COMPRESSION_NONE },
                { "application/vnd.docker.image.rootfs.diff.tar.gzip", LAYER_COMPRESSION_GZIP },
                { "application/vnd.docker.image.rootfs.diff.tar.zstd", LAYER_COMPRESSION_ZSTD },
                { "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", LAYER_COMPRESSION_GZIP },
        };
        if (!mt) {
                *ret = LAYER_COMPRESSION_NONE;
                return 0;
        }
        for (size_t i = 0; i < ARRAY_SIZE(known); i++)
                if (strcmp(mt, known[i].type) == 0) {
                        *ret = known[i].comp;
                        return 0;
                }
        return berr_setx(e, EPROTONOSUPPORT, "layer media type \"%s\" is not supported", mt);
}

static int stream_open(struct stream *s, int fd, const char *media_type, struct berr *e)
{
        enum layer_compression want;
        int r = layer_media_compression(media_type, &want, e);
        if (r < 0)
                return r;
        s->fd = fd;
        s->in = malloc(IN_BUF);
        s->out = malloc(OUT_BUF);
        s->sha = EVP_MD_CTX_new();
        if (!s->in || !s->out || !s->sha || EVP_DigestInit_ex(s->sha, EVP_sha256(), NULL) != 1)
                return berr_set(e, ENOMEM, "layer stream");
        /* enough bytes for the magic numbers */
        while (s->in_len < 4 && !s->in_eof) {
                ssize_t n = read(fd, s->in + s->in_len, IN_BUF - s->in_len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return berr_set(e, errno, "reading the layer");
                s->in_len += (size_t) n;
                s->in_eof = n == 0;
        }
        enum layer_compression magic = LAYER_COMPRESSION_NONE;
        if (s->in_len >= 2 && s->in[0] == 0x1f && s->in[1] == 0x8b)
                magic = LAYER_COMPRESSION_GZIP;
        else if (s->in_len >= 4 && s->in[0] == 0x28 && s->in[1] == 0xb5 && s->in[2] == 0x2f && s->in[3] == 0xfd)
                magic = LAYER_COMPRESSION_ZSTD;
        if (want != LAYER_COMPRESSION_NONE && magic != want)
                return berr_setx(e, EBADMSG, "layer of media type \"%s\" does not start with %s magic bytes",
                                 media_type, want == LAYER_COMPRESSION_GZIP ? "gzip" : "zstd");
        s->comp = magic;
        if (magic == LAYER_COMPRESSION_GZIP) {
                /* 15 + 16: a gzip wrapper only */
                if (inflateInit2(&s->z, 15 + 16) != Z_OK)
                        return berr_set(e, ENOMEM, "gzip");
                s->z_init = true;
        } else if (magic == LAYER_COMPRESSION_ZSTD) {
                s->zs = ZSTD_createDStream();
                if (!s->zs || ZSTD_isError(ZSTD_initDStream(s->zs)))
                        return berr_set(e, ENOMEM, "zstd");
        }
        return 0;
}

static void stream_done(struct stream *s)
{
        if (s->z_init)
                inflateEnd(&s->z);
        ZSTD_freeDStream(s->zs);
        EVP_MD_CTX_free(s->sha);
        free(s->in);
        free(s->out);
}

/* ---------- paths ---------- */

/* raw as a relative path of plain components ("" for the top), or -EPERM
 * for absolute names and ".." components. */
static int clean_name(const char *raw, char **ret)
{
        if (raw[0] == '/')
                return -EPERM;
        _cleanup_free_ char *out = malloc(strlen(raw) + 1);
        if (!out)
                return -ENOMEM;
        size_t n = 0;
        const char *p = raw;
        while (*p) {
                const char *end = strchrnul(p, '/');
                size_t len = (size_t) (end - p);
                if (len == 2 && p[0] == '.' && p[1] == '.')
                        return -EPERM;
                if (len > 0 && !(len == 1 && p[0] == '.')) {
                        if (n > 0)
                                out[n++] = '/';
                        memcpy(out + n, p, len);
                        n += len;
                }
                p = *end ? end + 1 : end;
        }
        out[n] = '\0';
        *ret = TAKE_PTR(out);
        return 0;
}

static int open_beneath(int rootfd, const char *path, int flags, uint64_t resolve)
{
        struct open_how how = {
                .flags = (uint64_t) (flags | O_CLOEXEC),
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | resolve,
        };
        for (;;) {
                long fd = syscall(SYS_openat2, rootfd, *path ? path : ".", &how, sizeof(how));
                if (fd >= 0)
                        return (int) fd;
                if (errno != EAGAIN && errno != EINTR)
                        return -errno;
        }
}

struct applier {
        int rootfd;
        const struct layer_apply_options *o;
        struct berr *e;
        const char *entry;      /* the raw name, for messages */
        struct dir_meta {
                char *path;
                mode_t mode;
                struct timespec times[2];
        } *dirs;
        size_t n_dirs, cap_dirs;
        void *written;          /* copy mode: tsearch tree of the inodes (ino_t *) this layer made or kept */
};

static int refuse(struct applier *ap, const char *why)
{
        return berr_setx(ap->e, EPERM, "unsafe layer: entry \"%s\": %s", ap->entry, why);
}

/* An O_PATH fd of directory dir inside the layer, created when missing. A
 * path through a symlink that leaves the layer is refused. */
static int resolve_dir(struct applier *ap, const char *dir, bool create)
{
        int fd = open_beneath(ap->rootfd, dir, O_PATH | O_DIRECTORY, 0);
        if (fd == -ENOENT && create) {
                /* in-root resolution cannot leave the layer either; the
                 * check below then says whether it went through a symlink
                 * pointing outside */
                int c = fs_mkdir_p_in_root(ap->rootfd, dir, 0755);
                if (c < 0)
                        return berr_set(ap->e, -c, "layer entry \"%s\": creating \"%s\"", ap->entry, dir);
                close(c);
                fd = open_beneath(ap->rootfd, dir, O_PATH | O_DIRECTORY, 0);
        }
        if (fd == -ENOSYS) /* no openat2: in-root resolution still keeps us inside */
                fd = create ? fs_mkdir_p_in_root(ap->rootfd, dir, 0755)
                            : fs_open_in_root(ap->rootfd, dir, O_PATH | O_DIRECTORY, 0);
        if (fd == -EXDEV || fd == -ELOOP)
                return refuse(ap, "its path goes through a symlink that points outside the layer");
        if (fd < 0)
                return berr_set(ap->e, -fd, "layer entry \"%s\": directory \"%s\"", ap->entry, *dir ? dir : ".");
        return fd;
}

/* Makes room for name in pfd: 1 when an existing directory is kept
 * (keep_dir), 0 when nothing is there any more. */
static int clear_entry(int pfd, const char *name, bool keep_dir)
{
        struct stat st;
        if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (S_ISDIR(st.st_mode)) {
                if (keep_dir)
                        return 1;
                return fs_rm_rf_at(pfd, name);
        }
        return unlinkat(pfd, name, 0) < 0 ? -errno : 0;
}

static int set_xattrs(struct applier *ap, struct archive_entry *en, int fd, int pfd, const char *name)
{
        const char *k;
        const void *v;
        size_t len;
        archive_entry_xattr_reset(en);
        while (archive_entry_xattr_next(en, &k, &v, &len) == ARCHIVE_OK) {
                /* these steer overlayfs (opaque, redirect, metacopy): only
                 * the layer's whiteout rules may set them */
                if (strncmp(k, "trusted.overlay.", 16) == 0) {
                        log_debug("layer entry \"%s\": xattr %s dropped", ap->entry, k);
                        continue;
                }
                int r;
                if (fd >= 0) {
                        r = fsetxattr(fd, k, v, len, 0);
                } else {
                        char p[64 + NAME_MAX];
                        snprintf(p, sizeof(p), "/proc/self/fd/%d/%s", pfd, name);
                        r = lsetxattr(p, k, v, len, 0);
                }
                if (r < 0 && (errno == ENOTSUP || (errno == EPERM && fd < 0 && strncmp(k, "user.", 5) == 0))) {
                        /* user.* on symlinks is refused by the kernel; unsupported
                         * namespaces are what the filesystem cannot hold */
                        log_warn("layer entry \"%s\": xattr %s not kept (ignored): %s", ap->entry, k,
                                 strerror(errno));
                        continue;
                }
                if (r < 0)
                        return berr_set(ap->e, errno, "layer entry \"%s\": xattr %s", ap->entry, k);
        }
        return 0;
}

static void entry_times(struct archive_entry *en, struct timespec t[2])
{
        t[1].tv_sec = archive_entry_mtime(en);
        t[1].tv_nsec = archive_entry_mtime_nsec(en);
        if (archive_entry_atime_is_set(en)) {
                t[0].tv_sec = archive_entry_atime(en);
                t[0].tv_nsec = archive_entry_atime_nsec(en);
        } else {
                t[0] = t[1];
        }
}

/* Owner, xattrs, then (files) mode and times, on an fd or, for symlinks,
 * by name in pfd. */
static int set_meta(struct applier *ap, struct archive_entry *en, int fd, int pfd, const char *name, bool is_link)
{
        if (ap->o->keep_owner) {
                int r = fd >= 0 ? fchown(fd, archive_entry_uid(en), archive_entry_gid(en))
                                : fchownat(pfd, name, archive_entry_uid(en), archive_entry_gid(en),
                                           AT_SYMLINK_NOFOLLOW);
                if (r < 0)
                        return berr_set(ap->e, errno, "layer entry \"%s\": chown %jd:%jd", ap->entry,
                                        (intmax_t) archive_entry_uid(en), (intmax_t) archive_entry_gid(en));
        }
        int r = set_xattrs(ap, en, fd, pfd, name);
        if (r < 0)
                return r;
        if (!is_link && fd >= 0 && fchmod(fd, archive_entry_perm(en)) < 0)
                return berr_set(ap->e, errno, "layer entry \"%s\": chmod", ap->entry);
        struct timespec t[2];
        entry_times(en, t);
        if ((fd >= 0 ? futimens(fd, t) : utimensat(pfd, name, t, AT_SYMLINK_NOFOLLOW)) < 0)
                return berr_set(ap->e, errno, "layer entry \"%s\": times", ap->entry);
        return 0;
}

static int push_dir(struct applier *ap, const char *path, struct archive_entry *en)
{
        if (ap->n_dirs == ap->cap_dirs) {
                size_t cap = ap->cap_dirs ? ap->cap_dirs * 2 : 64;
                struct dir_meta *v = realloc(ap->dirs, cap * sizeof(*v));
                if (!v)
                        return berr_set(ap->e, ENOMEM, "layer");
                ap->dirs = v;
                ap->cap_dirs = cap;
        }
        struct dir_meta *d = &ap->dirs[ap->n_dirs];
        d->path = strdup(path);
        if (!d->path)
                return berr_set(ap->e, ENOMEM, "layer");
        d->mode = archive_entry_perm(en);
        entry_times(en, d->times);
        ap->n_dirs++;
        return 0;
}

/* Directory modes and times last: creating children changes a directory's
 * mtime, and a read-only directory would refuse them. */
static int finish_dirs(struct applier *ap)
{
        for (size_t i = ap->n_dirs; i-- > 0;) {
                struct dir_meta *d = &ap->dirs[i];
                _cleanup_close_ int fd = open_beneath(ap->rootfd, d->path, O_RDONLY | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
                if (fd == -ENOENT || fd == -ENOTDIR || fd == -ELOOP)
                        continue; /* replaced by a later entry */
                if (fd < 0)
                        return berr_set(ap->e, -fd, "layer directory \"%s\"", d->path);
                if (fchmod(fd, d->mode) < 0 || futimens(fd, d->times) < 0)
                        return berr_set(ap->e, errno, "layer directory \"%s\": mode and times", d->path);
        }
        return 0;
}

static int write_data(struct applier *ap, struct archive *a, int fd, int64_t size)
{
        for (;;) {
                const void *buf;
                size_t len;
                la_int64_t off;
                int r = archive_read_data_block(a, &buf, &len, &off);
                if (r == ARCHIVE_EOF)
                        break;
                if (r != ARCHIVE_OK)
                        return berr_setx(ap->e, archive_errno(a) > 0 ? archive_errno(a) : EIO,
                                         "layer entry \"%s\": %s", ap->entry, archive_error_string(a));
                const char *p = buf;
                while (len > 0) {
                        ssize_t n = pwrite(fd, p, len, off);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0)
                                return berr_set(ap->e, errno, "layer entry \"%s\": write", ap->entry);
                        p += n;
                        len -= (size_t) n;
                        off += n;
                }
        }
        /* a sparse file's trailing hole */
        if (ftruncate(fd, size) < 0)
                return berr_set(ap->e, errno, "layer entry \"%s\": truncate", ap->entry);
        return 0;
}

static int apply_hardlink(struct applier *ap, const char *target_raw, int pfd, const char *base)
{
        _cleanup_free_ char *target = NULL;
        int r = clean_name(target_raw, &target);
        if (r == -EPERM)
                return refuse(ap, "hardlink to a path outside the layer");
        if (r < 0)
                return berr_set(ap->e, -r, "layer entry \"%s\"", ap->entry);
        char *slash = strrchr(target, '/');
        const char *tbase = slash ? slash + 1 : target;
        if (slash)
                *slash = '\0';
        if (!*tbase)
                return refuse(ap, "hardlink to the top of the layer");
        _cleanup_close_ int tfd = resolve_dir(ap, slash ? target : "", false);
        if (tfd < 0)
                return tfd;
        struct stat st;
        if (fstatat(tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return berr_set(ap->e, errno, "layer entry \"%s\": hardlink target \"%s\"", ap->entry, target_raw);
        if (S_ISDIR(st.st_mode))
                return refuse(ap, "hardlink to a directory");
        r = clear_entry(pfd, base, false);
        if (r < 0)
                return berr_set(ap->e, -r, "layer entry \"%s\": replacing", ap->entry);
        if (linkat(tfd, tbase, pfd, base, 0) < 0)
                return berr_set(ap->e, errno, "layer entry \"%s\": hardlink to \"%s\"", ap->entry, target_raw);
        return 0;
}

static int ino_cmp(const void *a, const void *b)
{
        ino_t x = *(const ino_t *) a, y = *(const ino_t *) b;
        return x < y ? -1 : x > y;
}

static bool written(struct applier *ap, ino_t ino)
{
        return tfind(&ino, &ap->written, ino_cmp) != NULL;
}

/* Copy mode: name in pfd is this layer's (whiteouts and opaque markers
 * leave it alone). */
static int note_written(struct applier *ap, int pfd, const char *name)
{
        struct stat st;
        if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return berr_set(ap->e, errno, "layer entry \"%s\"", ap->entry);
        if (written(ap, st.st_ino))
                return 0;
        ino_t *k = malloc(sizeof(*k));
        if (!k)
                return berr_set(ap->e, ENOMEM, "layer");
        *k = st.st_ino;
        if (!tsearch(k, &ap->written, ino_cmp)) {
                free(k);
                return berr_set(ap->e, ENOMEM, "layer");
        }
        return 0;
}

/* Copy mode, an opaque directory: removes from dfd what this layer did not
 * write, never following symlinks; a directory this layer did not write
 * stays only while something of the layer is in it. Returns 1 when
 * anything is left in dfd, 0 when it is empty. */
static int prune_lower(struct applier *ap, int dfd)
{
        int fd = dup(dfd);
        DIR *d = fd < 0 ? NULL : fdopendir(fd);
        if (!d) {
                if (fd >= 0)
                        close(fd);
                return -errno;
        }
        struct dirent *de;
        int r = 0;
        bool left = false;
        while (r >= 0 && (errno = 0, de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                struct stat st;
                if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        r = -errno;
                        break;
                }
                bool mine = written(ap, st.st_ino);
                if (S_ISDIR(st.st_mode)) {
                        int c = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (c < 0) {
                                r = -errno;
                                break;
                        }
                        int k = prune_lower(ap, c);
                        close(c);
                        if (k < 0)
                                r = k;
                        else if (k == 0 && !mine && unlinkat(dfd, de->d_name, AT_REMOVEDIR) < 0)
                                r = -errno;
                        else
                                left = true;
                } else if (mine) {
                        left = true;
                } else if (unlinkat(dfd, de->d_name, 0) < 0) {
                        r = -errno;
                }
        }
        if (r >= 0 && errno != 0)
                r = -errno;
        closedir(d);
        return r < 0 ? r : left;
}

/* Copy mode: the whiteout of name in pfd deletes it, unless this layer
 * wrote it. */
static int delete_lower(struct applier *ap, int pfd, const char *name)
{
        struct stat st;
        if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return 0;
                return berr_set(ap->e, errno, "layer entry \"%s\"", ap->entry);
        }
        if (written(ap, st.st_ino)) {
                log_debug("layer entry \"%s\": whiteout of the layer's own \"%s\" ignored", ap->entry, name);
                return 0;
        }
        int r = clear_entry(pfd, name, false);
        if (r < 0)
                return berr_set(ap->e, -r, "layer entry \"%s\": deleting \"%s\"", ap->entry, name);
        return 0;
}

static int apply_whiteout(struct applier *ap, const char *dir, const char *base)
{
        bool copy = ap->o->mode == LAYER_APPLY_COPY;
        if (strncmp(base, ".wh..wh.", 8) == 0 && strcmp(base, ".wh..wh..opq") != 0) {
                log_debug("layer entry \"%s\": aufs metadata skipped", ap->entry);
                return 0;
        }
        /* the same resolution as any entry: a whiteout never reaches
         * through a symlink out of the layer's directory */
        _cleanup_close_ int pfd = resolve_dir(ap, dir, true);
        if (pfd < 0)
                return pfd;
        if (strcmp(base, ".wh..wh..opq") == 0) {
                _cleanup_close_ int dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (copy) {
                        int r = dfd < 0 ? -errno : prune_lower(ap, dfd);
                        if (r < 0)
                                return berr_set(ap->e, -r, "layer entry \"%s\": emptying \"%s\"", ap->entry,
                                                *dir ? dir : "/");
                        return 0;
                }
                if (dfd < 0 || fsetxattr(dfd, "trusted.overlay.opaque", "y", 1, 0) < 0)
                        return berr_set(ap->e, errno, "layer entry \"%s\": making \"%s\" opaque", ap->entry,
                                        *dir ? dir : "/");
                return 0;
        }
        const char *name = base + 4;
        if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return refuse(ap, "a whiteout without a name");
        if (copy)
                return delete_lower(ap, pfd, name);
        int r = clear_entry(pfd, name, false);
        if (r < 0)
                return berr_set(ap->e, -r, "layer entry \"%s\": replacing", ap->entry);
        if (mknodat(pfd, name, S_IFCHR | 0, makedev(0, 0)) < 0)
                return berr_set(ap->e, errno, "layer entry \"%s\": whiteout", ap->entry);
        return 0;
}

static int create_entry(struct applier *ap, struct archive *a, struct archive_entry *en, int pfd, const char *base,
                        const char *path);

static int apply_entry(struct applier *ap, struct archive *a, struct archive_entry *en)
{
        _cleanup_free_ char *path = NULL;
        int r = clean_name(ap->entry, &path);
        if (r == -EPERM)
                return refuse(ap, ap->entry[0] == '/' ? "absolute path" : "\"..\" in its path");
        if (r < 0)
                return berr_set(ap->e, -r, "layer entry \"%s\"", ap->entry);

        char *slash = strrchr(path, '/');
        const char *base = slash ? slash + 1 : path;
        _cleanup_free_ char *dir = slash ? strndup(path, (size_t) (slash - path)) : strdup("");
        if (!dir)
                return berr_set(ap->e, ENOMEM, "layer");

        if (strncmp(base, ".wh.", 4) == 0)
                return apply_whiteout(ap, dir, base);

        mode_t type = archive_entry_filetype(en);
        if (!*base) {
                /* the top of the layer ("./") */
                if (type != AE_IFDIR)
                        return refuse(ap, "the top of the layer is not a directory");
                _cleanup_close_ int fd = openat(ap->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        return berr_set(ap->e, errno, "layer top");
                r = set_meta(ap, en, fd, -1, NULL, true);
                return r < 0 ? r : push_dir(ap, "", en);
        }

        _cleanup_close_ int pfd = resolve_dir(ap, dir, true);
        if (pfd < 0)
                return pfd;
        if (ap->o->mode != LAYER_APPLY_COPY)
                return create_entry(ap, a, en, pfd, base, path);
        if (type == AE_IFCHR && archive_entry_rdev(en) == 0 && !archive_entry_hardlink(en)) {
                /* an overlay whiteout: a deletion here */
                if (!ap->o->allow_devices)
                        return refuse(ap, "device nodes are not allowed");
                return delete_lower(ap, pfd, base);
        }
        r = create_entry(ap, a, en, pfd, base, path);
        return r < 0 ? r : note_written(ap, pfd, base);
}

/* The entry base in pfd (path: its whole name in the layer). */
static int create_entry(struct applier *ap, struct archive *a, struct archive_entry *en, int pfd, const char *base,
                        const char *path)
{
        mode_t type = archive_entry_filetype(en);
        const char *link = archive_entry_hardlink(en);
        if (link)
                return apply_hardlink(ap, link, pfd, base);

        if ((type == AE_IFCHR || type == AE_IFBLK) && !ap->o->allow_devices)
                return refuse(ap, "device nodes are not allowed");

        int r = clear_entry(pfd, base, type == AE_IFDIR);
        if (r < 0)
                return berr_set(ap->e, -r, "layer entry \"%s\": replacing", ap->entry);

        _cleanup_close_ int fd = -1;
        switch (type) {
        case AE_IFDIR:
                if (r == 0 && mkdirat(pfd, base, 0700) < 0)
                        return berr_set(ap->e, errno, "layer entry \"%s\": mkdir", ap->entry);
                fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return berr_set(ap->e, errno, "layer entry \"%s\"", ap->entry);
                /* mode and times at the end (finish_dirs) */
                if (ap->o->keep_owner && fchown(fd, archive_entry_uid(en), archive_entry_gid(en)) < 0)
                        return berr_set(ap->e, errno, "layer entry \"%s\": chown", ap->entry);
                r = set_xattrs(ap, en, fd, -1, NULL);
                return r < 0 ? r : push_dir(ap, path, en);
        case AE_IFREG:
                fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0)
                        return berr_set(ap->e, errno, "layer entry \"%s\": create", ap->entry);
                r = write_data(ap, a, fd, archive_entry_size(en));
                if (r < 0)
                        return r;
                return set_meta(ap, en, fd, -1, NULL, false);
        case AE_IFLNK: {
                const char *target = archive_entry_symlink(en);
                if (!target)
                        return berr_setx(ap->e, EBADMSG, "layer entry \"%s\": symlink without a target",
                                         ap->entry);
                if (symlinkat(target, pfd, base) < 0)
                        return berr_set(ap->e, errno, "layer entry \"%s\": symlink", ap->entry);
                return set_meta(ap, en, -1, pfd, base, true);
        }
        case AE_IFCHR:
        case AE_IFBLK:
        case AE_IFIFO:
                if (mknodat(pfd, base, type | archive_entry_perm(en), archive_entry_rdev(en)) < 0)
                        return berr_set(ap->e, errno, "layer entry \"%s\": mknod", ap->entry);
                /* a device or FIFO is not opened (that could block or act) */
                r = set_meta(ap, en, -1, pfd, base, true);
                if (r < 0)
                        return r;
                if (fchmodat(pfd, base, archive_entry_perm(en), 0) < 0)
                        return berr_set(ap->e, errno, "layer entry \"%s\": chmod", ap->entry);
                return 0;
        default:
                return berr_setx(ap->e, EPROTONOSUPPORT, "layer entry \"%s\": unsupported file type 0%o", ap->entry,
                                 (unsigned) type);
        }
}

static int apply_stream(int rootfd, struct stream *s, const struct layer_apply_options *o, struct berr *e)
{
        struct applier ap = { .rootfd = rootfd, .o = o, .e = e };
        struct archive *a = archive_read_new();
        int r = 0;
        if (!a)
                return berr_set(e, ENOMEM, "libarchive");
        archive_read_support_format_tar(a);
        archive_read_support_filter_none(a);
        if (archive_read_open(a, s, NULL, archive_read_cb, NULL) != ARCHIVE_OK) {
                r = s->err.err ? berr_setx(e, s->err.err, "%s", s->err.msg)
                               : berr_setx(e, EBADMSG, "layer: %s", archive_error_string(a));
                goto out;
        }
        for (;;) {
                struct archive_entry *en;
                int ar = archive_read_next_header(a, &en);
                if (ar == ARCHIVE_EOF)
                        break;
                if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN) {
                        r = s->err.err ? berr_setx(e, s->err.err, "%s", s->err.msg)
                                       : berr_setx(e, EBADMSG, "layer: %s", archive_error_string(a));
                        goto out;
                }
                ap.entry = archive_entry_pathname(en);
                if (!ap.entry) {
                        r = berr_setx(e, EBADMSG, "layer: an entry without a name");
                        goto out;
                }
                r = apply_entry(&ap, a, en);
                if (r < 0) {
                        if (s->err.err) /* the stream broke under the entry */
                                r = berr_setx(e, s->err.err, "%s", s->err.msg);
                        goto out;
                }
        }
        r = finish_dirs(&ap);
        if (r < 0)
                goto out;
        /* the diff id covers the whole stream, end-of-archive padding too */
        for (;;) {
                ssize_t n = stream_read(s);
                if (n < 0) {
                        r = berr_setx(e, s->err.err, "%s", s->err.msg);
                        goto out;
                }
                if (n == 0)
                        break;
        }
out:
        archive_read_free(a);
        for (size_t i = 0; i < ap.n_dirs; i++)
                free(ap.dirs[i].path);
        free(ap.dirs);
        tdestroy(ap.written, free);
        return r;
}

/* The stream's sha256 as "sha256:<hex>", checked against o->diff_id. */
static int check_diff_id(struct stream *s, const struct layer_apply_options *o, char digest[CONTENT_DIGEST_MAX],
                         struct berr *e)
{
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        if (EVP_DigestFinal_ex(s->sha, md, &mdlen) != 1 || mdlen != 32)
                return berr_setx(e, EIO, "sha256 failed");
        strcpy(digest, "sha256:");
        for (unsigned i = 0; i < mdlen; i++)
                snprintf(digest + 7 + 2 * i, 3, "%02x", md[i]);
        if (o->diff_id && strcmp(o->diff_id, digest) != 0)
                return berr_setx(e, EBADMSG,
                                 "layer diff id mismatch: the uncompressed layer is %s, the image config says %s", digest,
                                 o->diff_id);
        return 0;
}

/* Copy mode: in place (see layer-apply.h). */
static int apply_in_place(int fd, const char *dest, const struct layer_apply_options *o,
                          char ret_diff_id[CONTENT_DIGEST_MAX], struct berr *e)
{
        struct stream s = { .fd = -1 };
        char digest[CONTENT_DIGEST_MAX];
        _cleanup_close_ int rootfd = open(dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int r = rootfd < 0 ? berr_set(e, errno, "\"%s\"", dest) : 0;
        if (r >= 0)
                r = stream_open(&s, fd, o->media_type, e);
        if (r >= 0)
                r = apply_stream(rootfd, &s, o, e);
        if (r >= 0)
                r = check_diff_id(&s, o, digest, e);
        if (r >= 0 && syncfs(rootfd) < 0)
                r = berr_set(e, errno, "syncfs \"%s\"", dest);
        stream_done(&s);
        if (r >= 0 && ret_diff_id)
                memcpy(ret_diff_id, digest, CONTENT_DIGEST_MAX);
        return r;
}

int layer_apply(int fd, const char *dest, const struct layer_apply_options *o, char ret_diff_id[CONTENT_DIGEST_MAX],
                struct berr *e)
{
        if (o->mode == LAYER_APPLY_COPY)
                return apply_in_place(fd, dest, o, ret_diff_id, e);
        _cleanup_free_ char *tmp = NULL;
        const char *slash = strrchr(dest, '/');
        int r = slash ? asprintf(&tmp, "%.*s/.%s.apply-XXXXXX", (int) (slash - dest), dest, slash + 1)
                      : asprintf(&tmp, ".%s.apply-XXXXXX", dest);
        if (r < 0)
                return berr_set(e, ENOMEM, "layer");
        if (!mkdtemp(tmp))
                return berr_set(e, errno, "creating a directory next to \"%s\"", dest);

        struct stream s = { .fd = -1 };
        _cleanup_close_ int rootfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0 || fchmod(rootfd, 0755) < 0) {
                r = berr_set(e, errno, "\"%s\"", tmp);
                goto fail;
        }
        r = stream_open(&s, fd, o->media_type, e);
        if (r < 0)
                goto fail;
        r = apply_stream(rootfd, &s, o, e);
        if (r < 0)
                goto fail;

        char digest[CONTENT_DIGEST_MAX];
        r = check_diff_id(&s, o, digest, e);
        if (r < 0)
                goto fail;
        /* what the layer wrote reaches the disk before it is committed */
        if (syncfs(rootfd) < 0) {
                r = berr_set(e, errno, "syncfs \"%s\"", tmp);
                goto fail;
        }
        if (rename(tmp, dest) < 0) {
                r = berr_set(e, errno, "renaming \"%s\" to \"%s\"", tmp, dest);
                goto fail;
        }
        stream_done(&s);
        if (ret_diff_id)
                memcpy(ret_diff_id, digest, CONTENT_DIGEST_MAX);
        return 0;
fail:
        stream_done(&s);
        int k = fs_rm_rf(tmp);
        if (k < 0)
                log_warn("removing \"%s\" (ignored): %s", tmp, strerror(-k));
        return r;
}

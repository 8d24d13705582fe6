/* The snapshotter (see snapshot-overlay.h). Each operation takes the lock,
 * loads snapshots.json, changes it and writes it back. The parsed document
 * is kept between operations while the file is the one this process last
 * read or wrote (same inode, size and times: every write is a rename of a
 * new file), so that a process which alone writes it does not parse it
 * again on every operation. The two modes share
 * all of that; they differ only in how a new snapshot's fs is filled and
 * how a snapshot is mounted (struct snapshot_backend, snapshot-internal.h): the
 * overlay mode's backend is here, the copy mode's in snapshot-copy.c. */
#include "snapshot-overlay.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs-util.h"
#include "json-util.h"
#include "log.h"
#include "snapshot-internal.h"
#include "time-util.h"

/* the kernel copies at most a page of mount options */
#define MOUNT_OPTIONS_MAX 4095
#define META_MAX (64u << 20)

static const struct snapshot_backend overlay_backend;

static const char *const mode_names[] = {
        [SNAPSHOT_MODE_AUTO] = "auto",
        [SNAPSHOT_MODE_OVERLAY] = "overlay",
        [SNAPSHOT_MODE_COPY] = "copy",
};

const char *snapshot_mode_string(enum snapshot_mode m)
{
        return (size_t) m < ARRAY_SIZE(mode_names) ? mode_names[m] : "unknown";
}

int snapshot_mode_parse(const char *s, enum snapshot_mode *ret)
{
        for (size_t i = 0; i < ARRAY_SIZE(mode_names); i++)
                if (strcmp(s, mode_names[i]) == 0) {
                        *ret = (enum snapshot_mode) i;
                        return 0;
                }
        return -EINVAL;
}

enum snapshot_mode snapshot_overlay_mode(const struct snapshot_overlay *sn)
{
        return sn->mode;
}

static const char *const kind_names[] = {
        [SNAPSHOT_ACTIVE] = "active",
        [SNAPSHOT_VIEW] = "view",
        [SNAPSHOT_COMMITTED] = "committed",
};

const char *snapshot_kind_string(enum snapshot_kind k)
{
        return (size_t) k < ARRAY_SIZE(kind_names) ? kind_names[k] : "unknown";
}

static int kind_parse(const char *s, enum snapshot_kind *ret)
{
        for (size_t i = 0; i < ARRAY_SIZE(kind_names); i++)
                if (strcmp(s, kind_names[i]) == 0) {
                        *ret = (enum snapshot_kind) i;
                        return 0;
                }
        return -EINVAL;
}

static int choose_mode(struct snapshot_overlay *sn, enum snapshot_mode want, struct berr *e);

int snapshot_overlay_open_ex(const char *root, enum snapshot_mode mode, struct snapshot_overlay **ret,
                             struct berr *e)
{
        const char *env = mode == SNAPSHOT_MODE_AUTO ? getenv("BERTH_SNAPSHOTTER") : NULL;
        if (env && *env && snapshot_mode_parse(env, &mode) < 0)
                return berr_setx(e, EINVAL, "BERTH_SNAPSHOTTER=\"%s\": not overlay, copy or auto", env);
        struct snapshot_overlay *sn = calloc(1, sizeof(*sn));
        if (!sn)
                return berr_set(e, ENOMEM, "snapshotter");
        _cleanup_free_ char *metadir = NULL;
        if (!(sn->root = strdup(root)) || asprintf(&sn->snapshots, "%s/snapshots", root) < 0 ||
            asprintf(&metadir, "%s/meta", root) < 0 || asprintf(&sn->meta, "%s/snapshots.json", metadir) < 0 ||
            asprintf(&sn->lock, "%s/snapshots.lock", metadir) < 0) {
                snapshot_overlay_free(sn);
                return berr_set(e, ENOMEM, "snapshotter");
        }
        int r = fs_mkdir_p(sn->snapshots, 0700);
        if (r >= 0) {
                fs_mark_topdir(sn->snapshots); /* see docs/decisions.md */
                r = fs_mkdir_p(metadir, 0700);
        }
        if (r < 0) {
                berr_set(e, r, "creating the snapshotter's directories under \"%s\"", root);
                snapshot_overlay_free(sn);
                return r;
        }
        r = choose_mode(sn, mode, e);
        if (r < 0) {
                snapshot_overlay_free(sn);
                return r;
        }
        log_debug("snapshotter \"%s\": %s mode", root, snapshot_mode_string(sn->mode));
        *ret = sn;
        return 0;
}

int snapshot_overlay_open(const char *root, struct snapshot_overlay **ret, struct berr *e)
{
        return snapshot_overlay_open_ex(root, SNAPSHOT_MODE_AUTO, ret, e);
}

void snapshot_overlay_free(struct snapshot_overlay *sn)
{
        if (!sn)
                return;
        free(sn->root);
        free(sn->snapshots);
        free(sn->meta);
        free(sn->lock);
        json_decref(sn->cache);
        free(sn);
}

void snapshot_info_done(struct snapshot_info *i)
{
        free(i->key);
        free(i->parent);
        free(i->created);
        *i = (struct snapshot_info) { 0 };
}

void snapshot_infos_free(struct snapshot_info *v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                snapshot_info_done(&v[i]);
        free(v);
}

void snapshot_mount_done(struct snapshot_mount *m)
{
        free(m->type);
        free(m->source);
        free(m->options);
        *m = (struct snapshot_mount) { 0 };
}

/* ---------- metadata ---------- */

struct snapshot_meta {
        int lockfd;
        json_t *doc;            /* {"next": N, "snapshots": {key: {...}}} */
        json_t *snaps;          /* borrowed from doc */
        struct snapshot_overlay *sn;
        struct stat st;         /* the file doc was read from or written to */
        bool same;              /* doc is what that file holds: kept at meta_done */
};

static bool same_file(const struct stat *a, const struct stat *b)
{
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
               a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
               a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Before a change to m->doc: unless it is saved, it is not kept. */
static void meta_change(struct snapshot_meta *m)
{
        m->same = false;
}

static void meta_done(struct snapshot_meta *m)
{
        /* still under the lock: the kept document belongs to it */
        if (m->sn && m->same && m->doc) {
                json_decref(m->sn->cache);
                m->sn->cache = m->doc;
                m->sn->cache_st = m->st;
        } else {
                json_decref(m->doc);
        }
        if (m->lockfd >= 0)
                close(m->lockfd); /* drops the flock */
        m->lockfd = -1;
        m->doc = NULL;
}

static int meta_load(struct snapshot_overlay *sn, struct snapshot_meta *m, struct berr *e)
{
        *m = (struct snapshot_meta) { .lockfd = -1, .sn = sn };
        m->lockfd = open(sn->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (m->lockfd < 0)
                return berr_set(e, errno, "opening \"%s\"", sn->lock);
        while (flock(m->lockfd, LOCK_EX) < 0)
                if (errno != EINTR) {
                        int r = berr_set(e, errno, "locking \"%s\"", sn->lock);
                        meta_done(m);
                        return r;
                }
        if (stat(sn->meta, &m->st) < 0 && errno == ENOENT) {
                m->doc = json_pack("{s:I,s:{}}", "next", (json_int_t) 1, "snapshots");
        } else if (sn->cache && same_file(&m->st, &sn->cache_st)) {
                m->doc = TAKE_PTR(sn->cache);
                m->same = true;
        } else {
                json_decref(TAKE_PTR(sn->cache));
                int r = json_load_path(sn->meta, META_MAX, &m->doc, e);
                if (r < 0) {
                        meta_done(m);
                        return r;
                }
                /* no writer while the lock is held: what was read is that file */
                m->same = true;
        }
        m->snaps = m->doc ? json_object_get(m->doc, "snapshots") : NULL;
        if (!json_is_object(m->snaps) || !json_is_integer(json_object_get(m->doc, "next"))) {
                meta_done(m);
                return berr_setx(e, EINVAL, "\"%s\": not snapshot metadata", sn->meta);
        }
        if (sn->mode == SNAPSHOT_MODE_AUTO)
                return 0; /* opening: choose_mode looks */
        /* another process may have made a new root since we opened it */
        const char *rec = json_string_value(json_object_get(m->doc, "mode"));
        int r = 0;
        if (!rec) {
                meta_change(m);
                r = json_object_set_new(m->doc, "mode", json_string(snapshot_mode_string(sn->mode))) < 0
                            ? berr_set(e, ENOMEM, "snapshot metadata")
                            : 0;
        } else if (strcmp(rec, snapshot_mode_string(sn->mode)) != 0)
                r = berr_setx(e, EINVAL, "snapshots in \"%s\" were made by the %s snapshotter, not the %s snapshotter",
                              sn->snapshots, rec, snapshot_mode_string(sn->mode));
        if (r < 0)
                meta_done(m);
        return r;
}

static int meta_save(struct snapshot_overlay *sn, struct snapshot_meta *m, struct berr *e)
{
        meta_change(m);
        int r = json_write_atomic(sn->meta, m->doc, JSON_INDENT(2) | JSON_SORT_KEYS, 0600);
        if (r < 0)
                return berr_set(e, r, "writing \"%s\"", sn->meta);
        m->same = stat(sn->meta, &m->st) == 0;
        return 0;
}

/* ---------- the mode ---------- */

/* 1 when overlayfs works in the snapshots directory as layers need it: a
 * mount whose upper dir holds a whiteout (0:0 device) and an opaque
 * directory (trusted.overlay.opaque), both hiding what the lower dir has.
 * 0 otherwise (no overlayfs, no privilege, an upper dir on overlayfs, a
 * user namespace without trusted.* xattrs). */
static int probe_overlay(struct snapshot_overlay *sn)
{
        _cleanup_free_ char *tmp = NULL, *opts = NULL, *opq = NULL;
        if (asprintf(&tmp, "%s/.probe-XXXXXX", sn->snapshots) < 0)
                return -ENOMEM;
        if (!mkdtemp(tmp))
                return -errno;
        _cleanup_close_ int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        char merged[PATH_MAX];
        const char *step = "setup";
        int works = 0;
        if (fd < 0 || mkdirat(fd, "l", 0755) < 0 || mkdirat(fd, "u", 0755) < 0 || mkdirat(fd, "w", 0700) < 0 ||
            mkdirat(fd, "m", 0755) < 0 || mkdirat(fd, "l/opq", 0755) < 0 || mkdirat(fd, "u/opq", 0755) < 0)
                goto out;
        int x = openat(fd, "l/opq/x", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (x < 0)
                goto out;
        close(x);
        x = openat(fd, "l/wh", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (x < 0)
                goto out;
        close(x);
        step = "whiteout";
        if (mknodat(fd, "u/wh", S_IFCHR | 0, makedev(0, 0)) < 0)
                goto out;
        step = "opaque xattr";
        if (asprintf(&opq, "%s/u/opq", tmp) < 0 || setxattr(opq, "trusted.overlay.opaque", "y", 1, 0) < 0)
                goto out;
        step = "mount";
        snprintf(merged, sizeof(merged), "%s/m", tmp);
        if (asprintf(&opts, "lowerdir=%s/l,upperdir=%s/u,workdir=%s/w", tmp, tmp, tmp) < 0 ||
            mount("overlay", merged, "overlay", 0, opts) < 0)
                goto out;
        struct stat st;
        step = "whiteouts";
        errno = 0;
        works = fstatat(fd, "m/wh", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT &&
                fstatat(fd, "m/opq/x", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT;
        if (umount2(merged, 0) < 0 && umount2(merged, MNT_DETACH) < 0)
                log_warn("unmounting the overlay probe \"%s\" (ignored): %s", merged, strerror(errno));
out:
        if (!works)
                log_debug("overlay probe in \"%s\": %s failed (%s): copy mode", sn->snapshots, step,
                          errno ? strerror(errno) : "hidden files visible");
        int k = fs_rm_rf(tmp);
        if (k < 0)
                log_warn("removing \"%s\" (ignored): %s", tmp, strerror(-k));
        return works;
}

/* The mode: the one recorded in snapshots.json (or overlay for metadata
 * with snapshots written before there were modes), else want, else the
 * probe's answer; recorded when it was not. */
static int choose_mode(struct snapshot_overlay *sn, enum snapshot_mode want, struct berr *e)
{
        struct snapshot_meta m;
        int r = meta_load(sn, &m, e);
        if (r < 0)
                return r;
        const char *rec = json_string_value(json_object_get(m.doc, "mode"));
        enum snapshot_mode have = SNAPSHOT_MODE_AUTO;
        if (rec && (snapshot_mode_parse(rec, &have) < 0 || have == SNAPSHOT_MODE_AUTO)) {
                r = berr_setx(e, EINVAL, "\"%s\": unknown snapshotter mode \"%s\"", sn->meta, rec);
                goto out;
        }
        if (!rec && json_object_size(m.snaps) > 0)
                have = SNAPSHOT_MODE_OVERLAY;
        if (have != SNAPSHOT_MODE_AUTO && want != SNAPSHOT_MODE_AUTO && want != have) {
                r = berr_setx(e, EINVAL,
                              "snapshots in \"%s\" were made by the %s snapshotter, they cannot be opened by the %s "
                              "snapshotter",
                              sn->snapshots, snapshot_mode_string(have), snapshot_mode_string(want));
                goto out;
        }
        if (have == SNAPSHOT_MODE_AUTO)
                have = want;
        if (have == SNAPSHOT_MODE_AUTO) {
                r = probe_overlay(sn);
                if (r < 0) {
                        berr_set(e, r, "probing overlayfs in \"%s\"", sn->snapshots);
                        goto out;
                }
                have = r ? SNAPSHOT_MODE_OVERLAY : SNAPSHOT_MODE_COPY;
        }
        sn->mode = have;
        sn->be = have == SNAPSHOT_MODE_COPY ? &snapshot_copy_backend : &overlay_backend;
        r = 0;
        if (!rec) {
                meta_change(&m);
                if (json_object_set_new(m.doc, "mode", json_string(snapshot_mode_string(have))) < 0)
                        r = berr_set(e, ENOMEM, "snapshot metadata");
                else
                        r = meta_save(sn, &m, e);
        }
out:
        meta_done(&m);
        return r;
}

static int entry_info(const char *key, json_t *o, struct snapshot_info *ret, struct berr *e)
{
        const char *kind = NULL, *parent = NULL, *created = NULL;
        int64_t id = 0;
        int r;
        if ((r = json_get_string(o, key, "kind", &kind, e)) < 0 || (r = json_get_string(o, key, "parent", &parent, e)) < 0 ||
            (r = json_get_string(o, key, "created", &created, e)) < 0 || (r = json_get_int64(o, key, "id", &id, e)) < 0)
                return r;
        struct snapshot_info i = { .id = (uint64_t) id };
        if (!kind || kind_parse(kind, &i.kind) < 0 || id <= 0)
                return berr_setx(e, EINVAL, "snapshot \"%s\": bad metadata", key);
        i.key = strdup(key);
        i.parent = parent ? strdup(parent) : NULL;
        i.created = strdup(created ? created : "");
        if (!i.key || (parent && !i.parent) || !i.created) {
                snapshot_info_done(&i);
                return berr_set(e, ENOMEM, "snapshot");
        }
        *ret = i;
        return 0;
}

static int meta_get(struct snapshot_meta *m, const char *key, struct snapshot_info *ret, struct berr *e)
{
        json_t *o = json_object_get(m->snaps, key);
        if (!json_is_object(o))
                return berr_setx(e, ENOENT, "snapshot \"%s\" does not exist", key);
        return entry_info(key, o, ret, e);
}

char *snapshot_id_dir(struct snapshot_overlay *sn, uint64_t id, const char *sub)
{
        char *p = NULL;
        if (asprintf(&p, "%s/%" PRIu64 "%s%s", sn->snapshots, id, sub ? "/" : "", sub ? sub : "") < 0)
                return NULL;
        return p;
}

/* ---------- mounts ---------- */

int snapshot_mount_set(struct snapshot_mount *m, const char *type, const char *source, const char *options,
                       struct berr *e)
{
        m->type = strdup(type);
        m->source = strdup(source);
        m->options = strdup(options);
        if (!m->type || !m->source || !m->options) {
                snapshot_mount_done(m);
                return berr_set(e, ENOMEM, "mount");
        }
        return 0;
}

static int overlay_mounts(struct snapshot_overlay *sn, struct snapshot_meta *m, const struct snapshot_info *selfp,
                          struct snapshot_mount *ret, struct berr *e)
{
        const struct snapshot_info self = *selfp;
        const char *key = self.key;
        _cleanup_free_ char *fs = snapshot_id_dir(sn, self.id, "fs"), *work = snapshot_id_dir(sn, self.id, "work");
        /* lowerdir: the nearest parent first */
        char *lower = strdup("");
        size_t n_lower = 0;
        _cleanup_free_ char *first_lower = NULL;
        char *parent = self.parent ? strdup(self.parent) : NULL;
        int r = (!fs || !work || !lower || (self.parent && !parent)) ? berr_set(e, ENOMEM, "mount") : 0;
        while (r >= 0 && parent) {
                struct snapshot_info p = { 0 };
                r = meta_get(m, parent, &p, e);
                if (r < 0)
                        break;
                _cleanup_free_ char *pfs = snapshot_id_dir(sn, p.id, "fs");
                char *nl = NULL;
                if (!pfs || asprintf(&nl, "%s%s%s", lower, n_lower ? ":" : "", pfs) < 0) {
                        r = berr_set(e, ENOMEM, "mount");
                } else {
                        free(lower);
                        lower = nl;
                        if (n_lower++ == 0)
                                first_lower = TAKE_PTR(pfs);
                }
                free(parent);
                parent = p.parent ? strdup(p.parent) : NULL;
                bool oom = p.parent && !parent;
                snapshot_info_done(&p);
                if (r >= 0 && oom)
                        r = berr_set(e, ENOMEM, "mount");
        }
        free(parent);
        if (r >= 0) {
                _cleanup_free_ char *opts = NULL;
                bool view = self.kind == SNAPSHOT_VIEW;
                if (n_lower == 0)
                        r = snapshot_mount_set(ret, "bind", fs, view ? "rbind,ro" : "rbind,rw", e);
                else if (view && n_lower == 1)
                        r = snapshot_mount_set(ret, "bind", first_lower, "rbind,ro", e);
                else if ((view ? asprintf(&opts, "lowerdir=%s", lower)
                               : asprintf(&opts, "workdir=%s,upperdir=%s,lowerdir=%s", work, fs, lower)) < 0)
                        r = berr_set(e, ENOMEM, "mount");
                else if (strlen(opts) > MOUNT_OPTIONS_MAX)
                        r = berr_setx(e, E2BIG, "snapshot \"%s\": %zu layers make overlay options longer than a page",
                                      key, n_lower);
                else
                        r = snapshot_mount_set(ret, "overlay", "overlay", opts, e);
        }
        free(lower);
        return r;
}

static int meta_mounts(struct snapshot_overlay *sn, struct snapshot_meta *m, const char *key, struct snapshot_mount *ret,
                       struct berr *e)
{
        struct snapshot_info self = { 0 };
        int r = meta_get(m, key, &self, e);
        if (r < 0)
                return r;
        r = sn->be->mounts(sn, m, &self, ret, e);
        snapshot_info_done(&self);
        return r;
}

static const struct snapshot_backend overlay_backend = {
        .mode = SNAPSHOT_MODE_OVERLAY,
        .workdir = true,
        .mounts = overlay_mounts,
};

/* ---------- operations ---------- */

static int create(struct snapshot_overlay *sn, const char *key, const char *parent, enum snapshot_kind kind,
                  struct snapshot_mount *ret_mount, struct berr *e)
{
        struct snapshot_meta m;
        struct snapshot_info p = { 0 };
        _cleanup_free_ char *dir = NULL, *fs = NULL, *work = NULL;
        int r = meta_load(sn, &m, e);
        if (r < 0)
                return r;
        if (!*key) {
                r = berr_setx(e, EINVAL, "a snapshot key must not be empty");
                goto out;
        }
        if (json_object_get(m.snaps, key)) {
                r = berr_setx(e, EEXIST, "snapshot \"%s\" already exists", key);
                goto out;
        }
        if (parent) {
                r = meta_get(&m, parent, &p, e);
                if (r < 0) {
                        berr_prefix(e, "parent");
                        goto out;
                }
                if (p.kind != SNAPSHOT_COMMITTED) {
                        r = berr_setx(e, EINVAL, "parent snapshot \"%s\" is not committed", parent);
                        goto out;
                }
        }
        json_int_t id = json_integer_value(json_object_get(m.doc, "next"));
        dir = snapshot_id_dir(sn, (uint64_t) id, NULL);
        fs = snapshot_id_dir(sn, (uint64_t) id, "fs");
        work = snapshot_id_dir(sn, (uint64_t) id, "work");
        char created[64];
        if (!dir || !fs || !work || !time_now_rfc3339_nano(created, sizeof(created))) {
                r = berr_set(e, ENOMEM, "snapshot");
                goto out;
        }
        /* a directory left by a crash between mkdir and the metadata write */
        (void) fs_rm_rf(dir);
        if (mkdir(dir, 0700) < 0 || mkdir(fs, 0755) < 0 || (sn->be->workdir && mkdir(work, 0700) < 0)) {
                r = berr_set(e, errno, "creating \"%s\"", dir);
                (void) fs_rm_rf(dir);
                goto out;
        }
        if (parent && sn->be->fill) {
                r = sn->be->fill(sn, &p, fs, e);
                if (r < 0) {
                        (void) fs_rm_rf(dir);
                        goto out;
                }
        }
        meta_change(&m);
        json_t *o = json_pack("{s:I,s:s,s:s}", "id", id, "kind", snapshot_kind_string(kind), "created", created);
        if (!o || (parent && json_object_set_new(o, "parent", json_string(parent)) < 0) ||
            json_object_set_new(m.snaps, key, o) < 0 ||
            json_object_set_new(m.doc, "next", json_integer(id + 1)) < 0) {
                r = berr_set(e, ENOMEM, "snapshot");
                (void) fs_rm_rf(dir);
                goto out;
        }
        r = meta_save(sn, &m, e);
        if (r < 0) {
                (void) fs_rm_rf(dir);
                goto out;
        }
        if (ret_mount)
                r = meta_mounts(sn, &m, key, ret_mount, e);
out:
        snapshot_info_done(&p);
        meta_done(&m);
        return r;
}

int snapshot_overlay_prepare(struct snapshot_overlay *sn, const char *key, const char *parent,
                             struct snapshot_mount *ret_mount, struct berr *e)
{
        return create(sn, key, parent, SNAPSHOT_ACTIVE, ret_mount, e);
}

int snapshot_overlay_view(struct snapshot_overlay *sn, const char *key, const char *parent,
                          struct snapshot_mount *ret_mount, struct berr *e)
{
        return create(sn, key, parent, SNAPSHOT_VIEW, ret_mount, e);
}

int snapshot_overlay_commit(struct snapshot_overlay *sn, const char *name, const char *key, struct berr *e)
{
        struct snapshot_meta m;
        int r = meta_load(sn, &m, e);
        if (r < 0)
                return r;
        json_t *o = json_object_get(m.snaps, key);
        const char *kind = json_string_value(json_object_get(o, "kind"));
        if (!o)
                r = berr_setx(e, ENOENT, "snapshot \"%s\" does not exist", key);
        else if (!kind || strcmp(kind, "active") != 0)
                r = berr_setx(e, EINVAL, "snapshot \"%s\" is not active, it cannot be committed", key);
        else if (!*name)
                r = berr_setx(e, EINVAL, "a snapshot name must not be empty");
        else if (json_object_get(m.snaps, name))
                r = berr_setx(e, EEXIST, "snapshot \"%s\" already exists", name);
        if (r < 0)
                goto out;
        meta_change(&m);
        json_incref(o);
        if (json_object_set_new(o, "kind", json_string("committed")) < 0 || json_object_del(m.snaps, key) < 0 ||
            json_object_set_new(m.snaps, name, o) < 0) {
                r = berr_set(e, ENOMEM, "snapshot");
                goto out;
        }
        r = meta_save(sn, &m, e);
out:
        meta_done(&m);
        return r;
}

int snapshot_overlay_remove(struct snapshot_overlay *sn, const char *key, struct berr *e)
{
        struct snapshot_meta m;
        struct snapshot_info self = { 0 };
        _cleanup_free_ char *dir = NULL;
        int r = meta_load(sn, &m, e);
        if (r < 0)
                return r;
        r = meta_get(&m, key, &self, e);
        if (r < 0)
                goto out;
        const char *k;
        json_t *o;
        json_object_foreach(m.snaps, k, o) {
                const char *p = json_string_value(json_object_get(o, "parent"));
                if (p && strcmp(p, key) == 0) {
                        r = berr_setx(e, EBUSY, "snapshot \"%s\" has children (\"%s\"), it cannot be removed", key, k);
                        goto out;
                }
        }
        meta_change(&m);
        json_object_del(m.snaps, key);
        /* the metadata first: a crash then leaves an unused directory (the
         * next create of that id removes it), never an entry without files */
        r = meta_save(sn, &m, e);
        if (r < 0)
                goto out;
        dir = snapshot_id_dir(sn, self.id, NULL);
        if (!dir) {
                r = berr_set(e, ENOMEM, "snapshot");
                goto out;
        }
        r = fs_rm_rf(dir);
        if (r < 0)
                berr_set(e, r, "removing \"%s\"", dir);
out:
        snapshot_info_done(&self);
        meta_done(&m);
        return r;
}

int snapshot_overlay_stat(struct snapshot_overlay *sn, const char *key, struct snapshot_info *ret, struct berr *e)
{
        struct snapshot_meta m;
        int r = meta_load(sn, &m, e);
        if (r < 0)
                return r;
        r = meta_get(&m, key, ret, e);
        meta_done(&m);
        return r;
}

static int info_cmp(const void *a, const void *b)
{
        return strcmp(((const struct snapshot_info *) a)->key, ((const struct snapshot_info *) b)->key);
}

int snapshot_overlay_list(struct snapshot_overlay *sn, struct snapshot_info **ret, size_t *ret_n, struct berr *e)
{
        struct snapshot_meta m;
        int r = meta_load(sn, &m, e);
        if (r < 0)
                return r;
        size_t n = 0, cap = json_object_size(m.snaps);
        struct snapshot_info *v = calloc(cap ? cap : 1, sizeof(*v));
        if (!v) {
                meta_done(&m);
                return berr_set(e, ENOMEM, "snapshot list");
        }
        const char *k;
        json_t *o;
        json_object_foreach(m.snaps, k, o) {
                r = entry_info(k, o, &v[n], e);
                if (r < 0)
                        break;
                n++;
        }
        meta_done(&m);
        if (r < 0) {
                snapshot_infos_free(v, n);
                return r;
        }
        qsort(v, n, sizeof(*v), info_cmp);
        *ret = v;
        *ret_n = n;
        return 0;
}

int snapshot_overlay_mounts(struct snapshot_overlay *sn, const char *key, struct snapshot_mount *ret,
                            struct berr *e)
{
        struct snapshot_meta m;
        int r = meta_load(sn, &m, e);
        if (r < 0)
                return r;
        r = meta_mounts(sn, &m, key, ret, e);
        meta_done(&m);
        return r;
}

int snapshot_overlay_path(struct snapshot_overlay *sn, const char *key, char **ret, struct berr *e)
{
        struct snapshot_info i = { 0 };
        int r = snapshot_overlay_stat(sn, key, &i, e);
        if (r < 0)
                return r;
        char *p = snapshot_id_dir(sn, i.id, "fs");
        snapshot_info_done(&i);
        if (!p)
                return berr_set(e, ENOMEM, "snapshot");
        *ret = p;
        return 0;
}

/* ---------- usage ---------- */

struct usage {
        uint64_t bytes, inodes;
        ino_t *linked;          /* inodes with more than one link, seen */
        size_t n_linked, cap_linked;
};

static int usage_walk(int dfd, dev_t dev, struct usage *u)
{
        DIR *d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return -errno;
        }
        struct dirent *de;
        int r = 0;
        while (r == 0 && (errno = 0, de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        r = -errno;
                        break;
                }
                if (st.st_dev != dev)
                        continue; /* something mounted inside: not ours */
                bool seen = false;
                if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
                        for (size_t i = 0; i < u->n_linked && !seen; i++)
                                seen = u->linked[i] == st.st_ino;
                        if (!seen) {
                                if (u->n_linked == u->cap_linked) {
                                        size_t cap = u->cap_linked ? u->cap_linked * 2 : 16;
                                        ino_t *v = realloc(u->linked, cap * sizeof(*v));
                                        if (!v) {
                                                r = -ENOMEM;
                                                break;
                                        }
                                        u->linked = v;
                                        u->cap_linked = cap;
                                }
                                u->linked[u->n_linked++] = st.st_ino;
                        }
                }
                if (!seen) {
                        u->bytes += (uint64_t) st.st_blocks * 512;
                        u->inodes++;
                }
                if (S_ISDIR(st.st_mode)) {
                        int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        r = fd < 0 ? -errno : usage_walk(fd, dev, u);
                }
        }
        if (r == 0 && errno != 0)
                r = -errno;
        closedir(d);
        return r;
}

int snapshot_overlay_usage(struct snapshot_overlay *sn, const char *key, uint64_t *ret_bytes, uint64_t *ret_inodes,
                           struct berr *e)
{
        _cleanup_free_ char *fs = NULL;
        int r = snapshot_overlay_path(sn, key, &fs, e);
        if (r < 0)
                return r;
        int fd = open(fs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
                r = berr_set(e, errno, "\"%s\"", fs);
                if (fd >= 0)
                        close(fd);
                return r;
        }
        struct usage u = { .bytes = (uint64_t) st.st_blocks * 512, .inodes = 1 };
        r = usage_walk(fd, st.st_dev, &u);
        free(u.linked);
        if (r < 0)
                return berr_set(e, r, "usage of \"%s\"", fs);
        *ret_bytes = u.bytes;
        *ret_inodes = u.inodes;
        return 0;
}

/* The engine's volume store (see volumes.h). */
#include "volumes.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "err.h"
#include "fs-util.h"
#include "json-util.h"
#include "log.h"

#ifndef STATX_ATTR_MOUNT_ROOT
#define STATX_ATTR_MOUNT_ROOT 0x00002000
#endif

#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"

struct vol {
        char *name;
        json_t *doc;          /* what inspect shows */
        bool anonymous;
        json_t *refs;         /* ids of the containers that use it */
        struct vol *next;
};

struct vol_store {
        pthread_mutex_t lock; /* guards list and every vol */
        char *root;           /* <data root>/engine/volumes */
        struct vol *list;
        void (*event)(void *ud, const char *action, const char *name);
        void *event_ud;
};

bool vol_name_valid(const char *name)
{
        size_t n = strlen(name);
        if (n < 2 || n > 200 || !strchr(NAME_CHARS, name[0]) || name[0] == '_' || name[0] == '.' || name[0] == '-')
                return false;
        return strspn(name, NAME_CHARS) == n;
}

void vol_name_error(const char *name, char *err, size_t errlen)
{
        snprintf(err, errlen,
                 "\"%s\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are "
                 "allowed. If you intended to pass a host directory, use absolute path",
                 name);
}

int vol_generate_name(char *buf, size_t len)
{
        uint8_t b[32];
        if (len < 65)
                return -EINVAL;
        if (getrandom(b, sizeof(b), 0) != sizeof(b))
                return -errno;
        for (size_t i = 0; i < sizeof(b); i++)
                snprintf(buf + 2 * i, 3, "%02x", b[i]);
        return 0;
}

char *vol_mountpoint(const char *data_root, const char *name)
{
        char *p = NULL;
        if (asprintf(&p, "%s/engine/volumes/%s/_data", data_root, name) < 0)
                return NULL;
        return p;
}

static char *vol_dir(struct vol_store *vs, const char *name)
{
        char *p = NULL;
        if (asprintf(&p, "%s/%s", vs->root, name) < 0)
                return NULL;
        return p;
}

static const char *mountpoint_of(struct vol *v)
{
        return json_string_value(json_object_get(v->doc, "Mountpoint")) ?: "";
}

/* ---- the local driver's options: tmpfs and bind mounts ---- */

int vol_check_options(json_t *opts, char *err, size_t errlen)
{
        if (!opts || json_is_null(opts) || (json_is_object(opts) && json_object_size(opts) == 0))
                return 0;
        if (!json_is_object(opts))
                return err_buf(err, errlen, -EINVAL, "DriverOpts must be an object of strings");
        const char *k;
        json_t *v;
        json_object_foreach(opts, k, v)
        {
                if (!json_is_string(v))
                        return err_buf(err, errlen, -EINVAL, "DriverOpts: the value of \"%s\" must be a string", k);
                if (!strcmp(k, "size"))
                        return err_buf(err, errlen, -EINVAL, "quota size requested but no quota support");
                if (strcmp(k, "type") && strcmp(k, "device") && strcmp(k, "o"))
                        return err_buf(err, errlen, -EINVAL, "invalid option key: \"%s\"", k);
        }
        /* dockerd's mandatory companions */
        const char *type = json_string_value(json_object_get(opts, "type"));
        const char *device = json_string_value(json_object_get(opts, "device"));
        const char *o = json_string_value(json_object_get(opts, "o"));
        if ((type || o) && !device)
                return err_buf(err, errlen, -EINVAL, "missing required option: \"device\"");
        if ((device || o) && !type)
                return err_buf(err, errlen, -EINVAL, "missing required option: \"type\"");
        if (!type || !strcmp(type, "tmpfs"))
                return 0;
        bool bind = false;
        _cleanup_free_ char *s = strdup(o ? o : "");
        if (!s)
                return -ENOMEM;
        char *save = NULL;
        for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save))
                bind = bind || !strcmp(t, "bind") || !strcmp(t, "rbind");
        if (!bind)
                return err_buf(err, errlen, -EINVAL,
                            "engine: the local driver's type \"%s\" is not supported (only type=tmpfs, and "
                            "type=none with o=bind for a host directory)",
                            type);
        if (device[0] != '/')
                return err_buf(err, errlen, -EINVAL, "engine: a bind volume's device must be an absolute path: \"%s\"",
                            device);
        return 0;
}

static bool has_mount_options(struct vol *v)
{
        return json_string_value(json_object_get(json_object_get(v->doc, "Options"), "type")) != NULL;
}

static bool is_mountpoint(const char *path)
{
        struct statx sx;
        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx) < 0)
                return false;
        if (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)
                return (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
        _cleanup_free_ char *parent = NULL;
        struct stat a, b;
        if (asprintf(&parent, "%s/..", path) < 0 || stat(path, &a) < 0 || stat(parent, &b) < 0)
                return false;
        return a.st_dev != b.st_dev;
}

static const struct {
        const char *name;
        unsigned long set, clear;
} mount_flags[] = {
        { "ro", MS_RDONLY, 0 },          { "rw", 0, MS_RDONLY },         { "nosuid", MS_NOSUID, 0 },
        { "suid", 0, MS_NOSUID },        { "nodev", MS_NODEV, 0 },       { "dev", 0, MS_NODEV },
        { "noexec", MS_NOEXEC, 0 },      { "exec", 0, MS_NOEXEC },       { "sync", MS_SYNCHRONOUS, 0 },
        { "async", 0, MS_SYNCHRONOUS },  { "dirsync", MS_DIRSYNC, 0 },   { "noatime", MS_NOATIME, 0 },
        { "atime", 0, MS_NOATIME },      { "nodiratime", MS_NODIRATIME, 0 }, { "relatime", MS_RELATIME, 0 },
        { "strictatime", MS_STRICTATIME, 0 }, { "bind", MS_BIND, 0 },    { "rbind", MS_BIND | MS_REC, 0 },
        { "defaults", 0, 0 },
};

/* Mounts a volume with type/device/o options on its _data, as the local
 * driver does when a container first uses it. */
static int mount_volume(struct vol *v, char *err, size_t errlen)
{
        const char *path = mountpoint_of(v);
        if (!has_mount_options(v) || is_mountpoint(path))
                return 0;
        json_t *opts = json_object_get(v->doc, "Options");
        const char *type = json_string_value(json_object_get(opts, "type"));
        const char *device = json_string_value(json_object_get(opts, "device")) ?: "none";
        const char *o = json_string_value(json_object_get(opts, "o")) ?: "";
        _cleanup_free_ char *s = strdup(o), *data = calloc(1, strlen(o) + 1);
        if (!s || !data)
                return -ENOMEM;
        unsigned long flags = 0;
        char *save = NULL;
        for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                bool known = false;
                for (size_t i = 0; i < ARRAY_SIZE(mount_flags) && !known; i++)
                        if (!strcmp(t, mount_flags[i].name)) {
                                flags = (flags | mount_flags[i].set) & ~mount_flags[i].clear;
                                known = true;
                        }
                if (!known) {
                        if (*data)
                                strcat(data, ",");
                        strcat(data, t);
                }
        }
        bool bind = flags & MS_BIND;
        if (mount(device, path, bind ? NULL : type, bind ? (flags & (MS_BIND | MS_REC)) : flags,
                  bind ? NULL : data) < 0)
                return err_buf(err, errlen, -errno, "engine: mounting volume %s (type %s, device \"%s\", o \"%s\") on "
                            "\"%s\": %s", v->name, type, device, o, path, strerror(errno));
        if (bind && (flags & ~(MS_BIND | MS_REC)) &&
            mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | (flags & ~(MS_BIND | MS_REC)), NULL) < 0)
                log_warn("engine: remounting volume %s with \"%s\": %s", v->name, o, strerror(errno));
        log_debug("engine: volume %s mounted on \"%s\"", v->name, path);
        return 0;
}

static int unmount_volume(struct vol *v)
{
        const char *path = mountpoint_of(v);
        for (int i = 0; i < 16 && is_mountpoint(path); i++)
                if (umount2(path, i == 0 ? 0 : MNT_DETACH) < 0 && errno != EINVAL && errno != EBUSY)
                        return -errno;
        return is_mountpoint(path) ? -EBUSY : 0;
}

/* ---- records ---- */

static void vol_free(struct vol *v)
{
        if (!v)
                return;
        free(v->name);
        json_decref(v->doc);
        json_decref(v->refs);
        free(v);
}

static struct vol *vol_new(const char *name, json_t *doc, bool anonymous)
{
        struct vol *v = calloc(1, sizeof(*v));
        if (!v || !(v->name = strdup(name)) || !(v->refs = json_array())) {
                json_decref(doc);
                vol_free(v);
                return NULL;
        }
        v->doc = doc;
        v->anonymous = anonymous;
        return v;
}

static struct vol *find_locked(struct vol_store *vs, const char *name)
{
        for (struct vol *v = vs->list; v; v = v->next)
                if (!strcmp(v->name, name))
                        return v;
        return NULL;
}

static void now_rfc3339(char *buf, size_t len)
{
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *record_json(struct vol *v)
{
        return json_pack("{s:O, s:b}", "Volume", v->doc, "Anonymous", v->anonymous);
}

static void event(struct vol_store *vs, const char *action, const char *name)
{
        if (vs->event)
                vs->event(vs->event_ud, action, name);
}

static bool has_ref(struct vol *v, const char *id)
{
        size_t i;
        json_t *r;
        json_array_foreach(v->refs, i, r) if (!strcmp(json_string_value(r), id)) return true;
        return false;
}

static int add_ref(struct vol *v, const char *id, char *err, size_t errlen)
{
        if (!id || has_ref(v, id))
                return 0;
        int r = mount_volume(v, err, errlen);
        if (r < 0)
                return r;
        json_array_append_new(v->refs, json_string(id));
        return 0;
}

/* The directory of a new volume, made whole in a temporary directory and
 * renamed into place. */
static int create_dir(struct vol_store *vs, struct vol *v)
{
        _cleanup_free_ char *tmp = NULL, *data = NULL, *rec = NULL, *dir = vol_dir(vs, v->name);
        if (!dir || asprintf(&tmp, "%s/.new-%s", vs->root, v->name) < 0 || asprintf(&data, "%s/_data", tmp) < 0 ||
            asprintf(&rec, "%s/volume.json", tmp) < 0)
                return -ENOMEM;
        fs_rm_rf(tmp);
        if (mkdir(tmp, 0701) < 0 || mkdir(data, 0755) < 0) {
                int r = -errno;
                fs_rm_rf(tmp);
                return r;
        }
        _cleanup_json_ json_t *j = record_json(v);
        int r = json_write_atomic(rec, j, JSON_COMPACT, 0600);
        if (r == 0 && rename(tmp, dir) < 0)
                r = -errno;
        if (r == 0)
                r = fs_fsync_parent(dir);
        if (r < 0)
                fs_rm_rf(tmp);
        return r;
}

int vol_create(struct vol_store *vs, const char *name, json_t *labels, json_t *opts, bool anonymous, const char *ref,
               json_t **ret_doc, bool *ret_created, char *err, size_t errlen)
{
        char gen[65];
        if (!name || !*name) {
                int r = vol_generate_name(gen, sizeof(gen));
                if (r < 0)
                        return err_buf(err, errlen, r, "engine: generating a volume name: %s", strerror(-r));
                name = gen;
        }
        if (!vol_name_valid(name)) {
                char m[512];
                vol_name_error(name, m, sizeof(m));
                return err_buf(err, errlen, -EINVAL, "create %s: %s", name, m);
        }
        char m[512];
        int r = vol_check_options(opts, m, sizeof(m));
        if (r < 0)
                return err_buf(err, errlen, r, "create %s: %s", name, m);
        if (labels && !json_is_null(labels)) {
                const char *k;
                json_t *lv;
                if (!json_is_object(labels))
                        return err_buf(err, errlen, -EINVAL, "create %s: Labels must be an object of strings", name);
                json_object_foreach(labels, k, lv) if (!json_is_string(lv)) return err_buf(
                        err, errlen, -EINVAL, "create %s: the value of the label \"%s\" must be a string", name, k);
        }

        pthread_mutex_lock(&vs->lock);
        struct vol *v = find_locked(vs, name);
        bool created = false;
        if (!v) {
                _cleanup_free_ char *mp = NULL;
                if (asprintf(&mp, "%s/%s/_data", vs->root, name) < 0) {
                        pthread_mutex_unlock(&vs->lock);
                        return -ENOMEM;
                }
                char now[64];
                now_rfc3339(now, sizeof(now));
                json_t *doc = json_pack("{s:s, s:s, s:o, s:s, s:s, s:o, s:s}", "CreatedAt", now, "Driver", "local",
                                        "Labels", labels && json_is_object(labels) ? json_deep_copy(labels) : json_null(),
                                        "Mountpoint", mp, "Name", name, "Options",
                                        opts && json_is_object(opts) ? json_deep_copy(opts) : json_null(), "Scope",
                                        "local");
                v = doc ? vol_new(name, doc, anonymous) : NULL;
                if (!v) {
                        pthread_mutex_unlock(&vs->lock);
                        return -ENOMEM;
                }
                r = create_dir(vs, v);
                if (r < 0) {
                        pthread_mutex_unlock(&vs->lock);
                        vol_free(v);
                        return err_buf(err, errlen, r, "engine: creating volume %s under \"%s\": %s", name, vs->root,
                                    strerror(-r));
                }
                v->next = vs->list;
                vs->list = v;
                created = true;
                event(vs, "create", name);
        }
        r = add_ref(v, ref, err, errlen);
        if (r < 0) {
                pthread_mutex_unlock(&vs->lock);
                return r;
        }
        if (ret_doc)
                *ret_doc = json_deep_copy(v->doc);
        pthread_mutex_unlock(&vs->lock);
        if (ret_created)
                *ret_created = created;
        return 0;
}

int vol_get(struct vol_store *vs, const char *name, json_t **ret_doc)
{
        pthread_mutex_lock(&vs->lock);
        struct vol *v = find_locked(vs, name);
        if (v)
                *ret_doc = json_deep_copy(v->doc);
        pthread_mutex_unlock(&vs->lock);
        return v ? 0 : -ENOENT;
}

static int cmp_name(const void *a, const void *b)
{
        return strcmp(json_string_value(json_object_get(*(json_t *const *) a, "Name")) ?: "",
                      json_string_value(json_object_get(*(json_t *const *) b, "Name")) ?: "");
}

json_t *vol_list(struct vol_store *vs, vol_keep_fn keep, void *ud)
{
        size_t n = 0;
        pthread_mutex_lock(&vs->lock);
        for (struct vol *v = vs->list; v; v = v->next)
                n++;
        json_t **docs = calloc(n ? n : 1, sizeof(*docs));
        size_t k = 0;
        for (struct vol *v = vs->list; v && docs; v = v->next)
                if (!keep || keep(v->doc, json_array_size(v->refs), ud))
                        docs[k++] = json_deep_copy(v->doc);
        pthread_mutex_unlock(&vs->lock);
        json_t *out = json_array();
        if (!docs)
                return out;
        qsort(docs, k, sizeof(*docs), cmp_name);
        for (size_t i = 0; i < k; i++)
                json_array_append_new(out, docs[i]);
        free(docs);
        return out;
}

/* ---- removal ---- */

/* Bytes in the files under dirfd (taken over), not crossing mounts. */
static uint64_t tree_size(int dirfd, dev_t dev)
{
        uint64_t sum = 0;
        DIR *d = fdopendir(dirfd);
        if (!d) {
                close(dirfd);
                return 0;
        }
        for (struct dirent *de; (de = readdir(d));) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                struct stat st;
                if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != dev)
                        continue;
                if (S_ISDIR(st.st_mode)) {
                        int fd = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (fd >= 0)
                                sum += tree_size(fd, dev);
                } else if (S_ISREG(st.st_mode)) {
                        sum += (uint64_t) st.st_size;
                }
        }
        closedir(d);
        return sum;
}

static uint64_t path_size(const char *path)
{
        struct stat st;
        if (stat(path, &st) < 0)
                return 0;
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        return fd < 0 ? 0 : tree_size(fd, st.st_dev);
}

static uint64_t volume_size(struct vol *v)
{
        return has_mount_options(v) ? 0 : path_size(mountpoint_of(v));
}

static bool no_options(json_t *doc, size_t refs, void *ud)
{
        (void) refs;
        (void) ud;
        return json_object_size(json_object_get(doc, "Options")) == 0;
}

json_t *vol_list_usage(struct vol_store *vs)
{
        json_t *out = vol_list(vs, no_options, NULL);
        size_t i;
        json_t *doc;
        /* the references under the lock, the sizes without it (a volume
         * removed meanwhile counts what is left of it) */
        pthread_mutex_lock(&vs->lock);
        json_array_foreach(out, i, doc)
        {
                struct vol *v = find_locked(vs, json_string_value(json_object_get(doc, "Name")) ?: "");
                json_object_set_new(doc, "UsageData", json_pack("{s:I, s:I}", "Size", (json_int_t) 0, "RefCount",
                                                                (json_int_t) (v ? json_array_size(v->refs) : 0)));
        }
        pthread_mutex_unlock(&vs->lock);
        json_array_foreach(out, i, doc)
        {
                const char *path = json_string_value(json_object_get(doc, "Mountpoint")) ?: "";
                json_object_set_new(json_object_get(doc, "UsageData"), "Size",
                                    json_integer((json_int_t) path_size(path)));
        }
        return out;
}

/* Unmounts, renames the directory away (the volume is gone from then on,
 * also after a crash) and deletes it; unlinks v from the list and frees
 * it. */
static int remove_locked(struct vol_store *vs, struct vol *v, char *err, size_t errlen)
{
        int r = unmount_volume(v);
        if (r < 0)
                return err_buf(err, errlen, r, "engine: unmounting volume %s from \"%s\": %s", v->name, mountpoint_of(v),
                            strerror(-r));
        _cleanup_free_ char *dir = vol_dir(vs, v->name), *gone = NULL;
        char rnd[65];
        if (!dir || vol_generate_name(rnd, sizeof(rnd)) < 0 || asprintf(&gone, "%s/.rm-%.16s", vs->root, rnd) < 0)
                return -ENOMEM;
        if (rename(dir, gone) < 0 && errno != ENOENT)
                return err_buf(err, errlen, -errno, "engine: removing volume %s: renaming \"%s\": %s", v->name, dir,
                            strerror(errno));
        r = fs_rm_rf(gone);
        if (r < 0)
                log_warn("engine: removing \"%s\" (volume %s): %s", gone, v->name, strerror(-r));
        for (struct vol **p = &vs->list; *p; p = &(*p)->next)
                if (*p == v) {
                        *p = v->next;
                        break;
                }
        event(vs, "destroy", v->name);
        vol_free(v);
        return 0;
}

static void in_use_error(struct vol *v, char *err, size_t errlen)
{
        size_t k = (size_t) snprintf(err, errlen, "remove %s: volume is in use - [", v->name);
        size_t i;
        json_t *id;
        json_array_foreach(v->refs, i, id)
        {
                if (k >= errlen)
                        break;
                k += (size_t) snprintf(err + k, errlen - k, "%s%s", i ? ", " : "", json_string_value(id));
        }
        if (k < errlen)
                snprintf(err + k, errlen - k, "]");
}

int vol_remove(struct vol_store *vs, const char *name, bool force, char *err, size_t errlen)
{
        pthread_mutex_lock(&vs->lock);
        struct vol *v = find_locked(vs, name);
        int r;
        if (!v) {
                r = force ? 0 : err_buf(err, errlen, -ENOENT, "get %s: no such volume", name);
        } else if (json_array_size(v->refs)) {
                in_use_error(v, err, errlen);
                r = -EBUSY;
        } else {
                r = remove_locked(vs, v, err, errlen);
        }
        pthread_mutex_unlock(&vs->lock);
        return r;
}

int vol_prune(struct vol_store *vs, vol_keep_fn keep, void *ud, json_t **ret_deleted, uint64_t *ret_space)
{
        json_t *deleted = json_array();
        uint64_t space = 0;
        pthread_mutex_lock(&vs->lock);
        for (struct vol *v = vs->list, *next; v; v = next) {
                next = v->next;
                if (json_array_size(v->refs) || (keep && !keep(v->doc, 0, ud)))
                        continue;
                _cleanup_free_ char *name = strdup(v->name);
                uint64_t size = volume_size(v);
                char err[512];
                if (!name || remove_locked(vs, v, err, sizeof(err)) < 0) {
                        log_warn("engine: pruning volumes: %s", name ? err : "out of memory");
                        continue;
                }
                json_array_append_new(deleted, json_string(name));
                space += size;
        }
        pthread_mutex_unlock(&vs->lock);
        *ret_deleted = deleted;
        *ret_space = space;
        return 0;
}

/* ---- references ---- */

int vol_ref(struct vol_store *vs, const char *name, const char *id)
{
        char err[512];
        pthread_mutex_lock(&vs->lock);
        struct vol *v = find_locked(vs, name);
        int r = v ? add_ref(v, id, err, sizeof(err)) : -ENOENT;
        pthread_mutex_unlock(&vs->lock);
        if (r < 0 && r != -ENOENT)
                log_warn("%s", err);
        return r;
}

void vol_release(struct vol_store *vs, const char *id, bool remove_anonymous)
{
        pthread_mutex_lock(&vs->lock);
        for (struct vol *v = vs->list, *next; v; v = next) {
                next = v->next;
                bool had = false;
                for (size_t i = 0; i < json_array_size(v->refs); i++)
                        if (!strcmp(json_string_value(json_array_get(v->refs, i)), id)) {
                                json_array_remove(v->refs, i);
                                had = true;
                                break;
                        }
                if (!had || json_array_size(v->refs))
                        continue;
                char err[512];
                if (remove_anonymous && v->anonymous) {
                        if (remove_locked(vs, v, err, sizeof(err)) < 0)
                                log_warn("%s", err);
                } else if (has_mount_options(v)) {
                        /* as the local driver: unmounted when unused */
                        int r = unmount_volume(v);
                        if (r < 0)
                                log_warn("engine: unmounting volume %s: %s", v->name, strerror(-r));
                }
        }
        pthread_mutex_unlock(&vs->lock);
}

/* ---- copy-up ---- */

/* Owner, mode and times of st onto name in dirfd (or dirfd itself when
 * name is NULL). Ownership first: chown clears set-id bits. */
static int copy_meta(int dirfd, const char *name, const struct stat *st)
{
        const char *n = name ? name : "";
        int fl = name ? AT_SYMLINK_NOFOLLOW : AT_EMPTY_PATH;
        if (fchownat(dirfd, n, st->st_uid, st->st_gid, fl) < 0)
                return -errno;
        if (!S_ISLNK(st->st_mode)) {
                int r = name ? fchmodat(dirfd, name, st->st_mode & 07777, 0) : fchmod(dirfd, st->st_mode & 07777);
                if (r < 0)
                        return -errno;
        }
        struct timespec ts[2] = { st->st_atim, st->st_mtim };
        if (name ? utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0 : futimens(dirfd, ts) < 0)
                return -errno;
        return 0;
}

static int copy_tree(int sfd, int dfd, unsigned depth)
{
        if (depth > 256)
                return -ELOOP;
        int dup_fd = fcntl(sfd, F_DUPFD_CLOEXEC, 3);
        if (dup_fd < 0)
                return -errno;
        _cleanup_closedir_ DIR *d = fdopendir(dup_fd);
        if (!d) {
                close(dup_fd);
                return -errno;
        }
        rewinddir(d); /* the offset is shared with sfd's other readers */
        int r = 0;
        for (struct dirent *de; r == 0 && (de = readdir(d));) {
                const char *n = de->d_name;
                if (!strcmp(n, ".") || !strcmp(n, ".."))
                        continue;
                struct stat st;
                if (fstatat(sfd, n, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                if (S_ISDIR(st.st_mode)) {
                        if (mkdirat(dfd, n, 0700) < 0)
                                return -errno;
                        _cleanup_close_ int s2 = openat(sfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        _cleanup_close_ int d2 = openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (s2 < 0 || d2 < 0)
                                return -errno;
                        r = copy_tree(s2, d2, depth + 1);
                        if (r == 0)
                                r = copy_meta(d2, NULL, &st);
                } else if (S_ISREG(st.st_mode)) {
                        _cleanup_close_ int s2 = openat(sfd, n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                        _cleanup_close_ int d2 = openat(dfd, n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                                        0600);
                        if (s2 < 0 || d2 < 0)
                                return -errno;
                        r = fs_copy_fd(s2, d2);
                        if (r == 0)
                                r = copy_meta(d2, NULL, &st);
                } else if (S_ISLNK(st.st_mode)) {
                        char target[4096];
                        ssize_t len = readlinkat(sfd, n, target, sizeof(target) - 1);
                        if (len < 0)
                                return -errno;
                        target[len] = '\0';
                        if (symlinkat(target, dfd, n) < 0)
                                return -errno;
                        r = copy_meta(dfd, n, &st);
                } else {
                        if (mknodat(dfd, n, st.st_mode, st.st_rdev) < 0)
                                return -errno;
                        r = copy_meta(dfd, n, &st);
                }
        }
        return r;
}

static bool dir_empty(int fd)
{
        int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (dup_fd < 0)
                return false;
        _cleanup_closedir_ DIR *d = fdopendir(dup_fd);
        if (!d) {
                close(dup_fd);
                return false;
        }
        rewinddir(d);
        for (struct dirent *de; (de = readdir(d));)
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        return false;
        return true;
}

int vol_copy_up(struct vol_store *vs, const char *name, const char *rootfs, const char *dest, char *err,
                size_t errlen)
{
        pthread_mutex_lock(&vs->lock);
        struct vol *v = find_locked(vs, name);
        _cleanup_free_ char *mp = v ? strdup(mountpoint_of(v)) : NULL;
        pthread_mutex_unlock(&vs->lock);
        if (!mp)
                return v ? -ENOMEM : 0;
        _cleanup_close_ int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return err_buf(err, errlen, -errno, "engine: copying into volume %s: opening \"%s\": %s", name, rootfs,
                            strerror(errno));
        int sfd = fs_open_in_root(rootfd, dest, O_RDONLY | O_DIRECTORY, 0);
        if (sfd == -ENOENT || sfd == -ENOTDIR)
                return 0;
        if (sfd < 0)
                return err_buf(err, errlen, sfd, "engine: copying into volume %s: opening \"%s\" in the image: %s", name,
                            dest, strerror(-sfd));
        _cleanup_close_ int src = sfd;
        _cleanup_close_ int dst = open(mp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dst < 0)
                return err_buf(err, errlen, -errno, "engine: copying into volume %s: opening \"%s\": %s", name, mp,
                            strerror(errno));
        if (!dir_empty(dst) || dir_empty(src))
                return 0;
        struct stat st;
        if (fstat(src, &st) < 0)
                return -errno;
        int r = copy_tree(src, dst, 0);
        if (r == 0)
                r = copy_meta(dst, NULL, &st);
        if (r < 0)
                return err_buf(err, errlen, r, "engine: copying \"%s\" of the image into volume %s: %s", dest, name,
                            strerror(-r));
        log_debug("engine: copied \"%s\" of the image into volume %s", dest, name);
        return 0;
}

/* ---- the store ---- */

void vol_store_set_events(struct vol_store *vs, void (*fn)(void *ud, const char *action, const char *name), void *ud)
{
        pthread_mutex_lock(&vs->lock);
        vs->event = fn;
        vs->event_ud = ud;
        pthread_mutex_unlock(&vs->lock);
}

/* A volume directory without volume.json but with _data: one made by `-v
 * name:/path` before the store existed. */
static struct vol *adopt(struct vol_store *vs, const char *name)
{
        _cleanup_free_ char *dir = vol_dir(vs, name), *data = NULL, *rec = NULL;
        struct stat st;
        if (!dir || asprintf(&data, "%s/_data", dir) < 0 || asprintf(&rec, "%s/volume.json", dir) < 0 ||
            stat(data, &st) < 0 || !S_ISDIR(st.st_mode) || !vol_name_valid(name))
                return NULL;
        char created[64];
        struct tm tm;
        gmtime_r(&st.st_mtim.tv_sec, &tm);
        strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_t *doc = json_pack("{s:s, s:s, s:n, s:s, s:s, s:n, s:s}", "CreatedAt", created, "Driver", "local",
                                "Labels", "Mountpoint", data, "Name", name, "Options", "Scope", "local");
        struct vol *v = doc ? vol_new(name, doc, false) : NULL;
        if (!v)
                return NULL;
        _cleanup_json_ json_t *j = record_json(v);
        int r = json_write_atomic(rec, j, JSON_COMPACT, 0600);
        if (r < 0)
                log_warn("engine: recording volume %s in \"%s\": %s", name, rec, strerror(-r));
        log_info("engine: adopted volume %s (made before the volume store)", name);
        return v;
}

static struct vol *load_one(struct vol_store *vs, const char *name)
{
        _cleanup_free_ char *rec = NULL;
        if (asprintf(&rec, "%s/%s/volume.json", vs->root, name) < 0)
                return NULL;
        json_error_t jerr;
        json_t *j = json_load_file(rec, 0, &jerr);
        if (!j)
                return access(rec, F_OK) < 0 ? adopt(vs, name) : NULL;
        json_t *doc = json_object_get(j, "Volume");
        struct vol *v = NULL;
        if (json_is_object(doc) && !strcmp(json_string_value(json_object_get(doc, "Name")) ?: "", name))
                v = vol_new(name, json_incref(doc), json_is_true(json_object_get(j, "Anonymous")));
        else
                log_warn("engine: \"%s\" is not a volume record: skipped", rec);
        json_decref(j);
        if (v) {
                /* the data root may have moved since */
                _cleanup_free_ char *mp = NULL;
                if (asprintf(&mp, "%s/%s/_data", vs->root, name) >= 0)
                        json_object_set_new(v->doc, "Mountpoint", json_string(mp));
        }
        return v;
}

int vol_store_open(const char *data_root, struct vol_store **ret)
{
        struct vol_store *vs = calloc(1, sizeof(*vs));
        if (!vs)
                return -ENOMEM;
        pthread_mutex_init(&vs->lock, NULL);
        if (asprintf(&vs->root, "%s/engine/volumes", data_root) < 0) {
                free(vs);
                return -ENOMEM;
        }
        int r = fs_mkdir_p(vs->root, 0701);
        _cleanup_closedir_ DIR *d = r < 0 ? NULL : opendir(vs->root);
        if (!d) {
                r = r < 0 ? r : -errno;
                vol_store_free(vs);
                return r;
        }
        for (struct dirent *de; (de = readdir(d));) {
                const char *n = de->d_name;
                if (!strcmp(n, ".") || !strcmp(n, ".."))
                        continue;
                if (!strncmp(n, ".new-", 5) || !strncmp(n, ".rm-", 4)) {
                        /* an interrupted create or removal */
                        _cleanup_free_ char *p = vol_dir(vs, n), *data = NULL;
                        if (p && asprintf(&data, "%s/_data", p) >= 0 && !is_mountpoint(data))
                                fs_rm_rf(p);
                        continue;
                }
                struct vol *v = load_one(vs, n);
                if (!v)
                        continue;
                v->next = vs->list;
                vs->list = v;
        }
        *ret = vs;
        return 0;
}

void vol_store_free(struct vol_store *vs)
{
        if (!vs)
                return;
        for (struct vol *v = vs->list, *next; v; v = next) {
                next = v->next;
                vol_free(v);
        }
        free(vs->root);
        pthread_mutex_destroy(&vs->lock);
        free(vs);
}

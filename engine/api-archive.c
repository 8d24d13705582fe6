/* `docker cp`, `docker export`, `docker diff` and the sizes of `ps -s` /
 * `inspect -s`: HEAD/GET/PUT /containers/{id}/archive, GET
 * /containers/{id}/export, GET /containers/{id}/changes.
 *
 * The filesystem work runs on a thread of its own that builds the
 * container's view in a mount namespace of its own (rootfs.h): the
 * running container's rootfs, or the snapshot's mounts the supervisor
 * gives (snapshots.Mounts) for a created or exited one, with the
 * container's bind mounts on their destinations. The handler waits for
 * the view and the path's stat, answers (errors as dockerd words them),
 * and a tar then streams from that thread through a pipe. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cleanup.h"
#include "engine.h"
#include "err.h"
#include "fs-util.h"
#include "image-commit.h"
#include "image-import.h"
#include "log.h"
#include "rootfs.h"
#include "supervisor.pb-c.h"
#include "time-util.h"

#define STAT_HEADER "X-Docker-Container-Path-Stat"

/* ---- what the supervisor knows of a container ---- */

struct ctr_fs {
        json_t *spec;              /* the OCI spec */
        struct rootfs_mount snap;  /* the snapshot's mount */
        char *parent;              /* its parent snapshot ("" none) */
};

static void ctr_fs_done(struct ctr_fs *f)
{
        json_decref(f->spec);
        free(f->snap.type);
        free(f->snap.source);
        free(f->snap.options);
        free(f->parent);
        *f = (struct ctr_fs) { 0 };
}

static int snapshot_mounts(struct engine *en, const char *key, struct rootfs_mount *ret, char **ret_parent,
                           struct rpc_status *st)
{
        Berth__Supervisor__MountsRequest req = BERTH__SUPERVISOR__MOUNTS_REQUEST__INIT;
        req.key = (char *) key;
        Berth__Supervisor__MountsResponse *rep = NULL;
        if (engine_call(en, "snapshots.Mounts", &req.base, &berth__supervisor__mounts_response__descriptor,
                        ENGINE_CALL_TIMEOUT_MS, (ProtobufCMessage **) &rep, st) < 0)
                return -EIO;
        int r = 0;
        if (rep->n_mounts < 1) {
                rpc_status_set(st, RPC_INTERNAL, "engine: snapshot \"%s\" has no mount", key);
                r = -EIO;
        } else {
                ret->type = strdup(rep->mounts[0]->type);
                ret->source = strdup(rep->mounts[0]->source);
                ret->options = strdup(rep->mounts[0]->options);
                if (ret_parent)
                        *ret_parent = strdup(rep->parent);
                if (!ret->type || !ret->source || !ret->options || (ret_parent && !*ret_parent)) {
                        rpc_status_set(st, RPC_INTERNAL, "engine: out of memory");
                        r = -ENOMEM;
                }
        }
        protobuf_c_message_free_unpacked(&rep->base, NULL);
        return r;
}

int engine_container_spec(struct engine *en, const char *id, json_t **ret_spec, char **ret_key,
                          struct rpc_status *st)
{
        Berth__Supervisor__GetContainerRequest req = BERTH__SUPERVISOR__GET_CONTAINER_REQUEST__INIT;
        req.id = (char *) id;
        Berth__Supervisor__GetContainerResponse *rep = NULL;
        if (engine_call(en, "containers.GetContainer", &req.base,
                        &berth__supervisor__get_container_response__descriptor, ENGINE_CALL_TIMEOUT_MS,
                        (ProtobufCMessage **) &rep, st) < 0)
                return -EIO;
        json_t *spec = NULL;
        char *key = NULL;
        if (rep->container) {
                spec = json_loadb((const char *) rep->container->spec_json.data, rep->container->spec_json.len, 0,
                                  NULL);
                key = strdup(*rep->container->snapshot_key ? rep->container->snapshot_key : id);
        }
        protobuf_c_message_free_unpacked(&rep->base, NULL);
        if (!key) {
                json_decref(spec);
                rpc_status_set(st, RPC_INTERNAL, "engine: the supervisor's record of %s", id);
                return -EIO;
        }
        *ret_spec = spec;
        if (ret_key)
                *ret_key = key;
        else
                free(key);
        return 0;
}

/* The spec and the snapshot's mount (want_mounts) of container id. */
static int ctr_fs_get(struct engine *en, const char *id, bool want_mounts, struct ctr_fs *ret, struct rpc_status *st)
{
        struct ctr_fs f = { 0 };
        _cleanup_free_ char *key = NULL;
        if (engine_container_spec(en, id, &f.spec, &key, st) < 0)
                return -EIO;
        if (want_mounts && snapshot_mounts(en, key, &f.snap, &f.parent, st) < 0) {
                ctr_fs_done(&f);
                return -EIO;
        }
        *ret = f;
        return 0;
}

/* The snapshot's mount and, for the copy snapshotter, its parent's tree. */
static int layer_of(struct engine *en, const char *id, struct ctr_fs *f, char **ret_parent_fs, struct rpc_status *st)
{
        int r = ctr_fs_get(en, id, true, f, st);
        if (r < 0)
                return r;
        *ret_parent_fs = NULL;
        if (!strcmp(f->snap.type, "bind") && *f->parent) {
                struct rootfs_mount pm = { 0 };
                r = snapshot_mounts(en, f->parent, &pm, NULL, st);
                if (r < 0) {
                        ctr_fs_done(f);
                        return r;
                }
                *ret_parent_fs = pm.source;
                free(pm.type);
                free(pm.options);
        }
        return 0;
}

/* ---- sizes ---- */

int engine_container_sizes(struct engine *en, const char *id, int64_t *ret_rw, int64_t *ret_rootfs)
{
        _cleanup_free_ char *image = NULL;
        pthread_mutex_lock(&en->ctrs.lock);
        bool amb;
        struct ctr *c = ctr_find_locked(&en->ctrs, id, &amb);
        if (c)
                image = strdup(json_string_value(json_object_get(c->doc, "ImageName")) ?: "");
        pthread_mutex_unlock(&en->ctrs.lock);
        if (!c)
                return -ENOENT;
        struct ctr_fs f = { 0 };
        _cleanup_free_ char *parent_fs = NULL;
        struct rpc_status st;
        int64_t rw = 0;
        int r = layer_of(en, id, &f, &parent_fs, &st);
        if (r < 0) {
                log_debug("engine: the size of %s: %s", id, st.message);
                return r;
        }
        r = rootfs_size_rw(&f.snap, parent_fs, &rw);
        ctr_fs_done(&f);
        if (r < 0) {
                log_debug("engine: the size of %s: %s", id, strerror(-r));
                return r;
        }
        int64_t isize = 0;
        Berth__Supervisor__GetImageRequest greq = BERTH__SUPERVISOR__GET_IMAGE_REQUEST__INIT;
        greq.name = image;
        Berth__Supervisor__GetImageResponse *g = NULL;
        if (image && *image &&
            engine_call(en, "images.GetImage", &greq.base, &berth__supervisor__get_image_response__descriptor,
                        ENGINE_CALL_TIMEOUT_MS, (ProtobufCMessage **) &g, &st) == 0) {
                if (g->image)
                        isize = g->image->size;
                protobuf_c_message_free_unpacked(&g->base, NULL);
        }
        *ret_rw = rw;
        *ret_rootfs = rw + isize;
        return 0;
}

/* ---- jobs: the filesystem work on a thread of its own ---- */

enum job_op { JOB_STAT, JOB_GET, JOB_PUT, JOB_EXPORT };

struct job {
        struct engine *en;
        enum job_op op;
        char id[65];
        char *ref;               /* the container as the client named it */
        char *path;              /* the path as the client gave it */
        char *abs;
        char *view_dir;
        char *bundle_rootfs;
        struct ctr_fs fs;
        bool readonly_rootfs;
        char *user;
        bool copy_uidgid, no_overwrite;
        int body_fd;

        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool prepared;           /* the answer is known (status, msg, stat_b64) */
        unsigned status;         /* 200, or the error's */
        char msg[1024];
        char *stat_b64;
        bool go, abort;          /* the handler's word for a stream */
        int out_fd;              /* the stream's pipe */
        int refs;
};

static void job_unref(struct job *j)
{
        pthread_mutex_lock(&j->lock);
        bool last = --j->refs == 0;
        pthread_mutex_unlock(&j->lock);
        if (!last)
                return;
        free(j->ref);
        free(j->path);
        free(j->abs);
        free(j->view_dir);
        free(j->bundle_rootfs);
        ctr_fs_done(&j->fs);
        free(j->user);
        if (j->body_fd >= 0)
                close(j->body_fd);
        if (j->out_fd >= 0)
                close(j->out_fd);
        free(j->stat_b64);
        pthread_mutex_destroy(&j->lock);
        pthread_cond_destroy(&j->cond);
        free(j);
}

static void job_prepared(struct job *j, unsigned status)
{
        pthread_mutex_lock(&j->lock);
        j->status = status;
        j->prepared = true;
        pthread_cond_broadcast(&j->cond);
        pthread_mutex_unlock(&j->lock);
}

static char *base64(const char *s, size_t n)
{
        static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
        if (!out)
                return NULL;
        const unsigned char *p = (const unsigned char *) s;
        for (size_t i = 0; i < n; i += 3) {
                unsigned v = (unsigned) p[i] << 16 | (i + 1 < n ? (unsigned) p[i + 1] << 8 : 0) |
                             (i + 2 < n ? p[i + 2] : 0);
                *o++ = tab[v >> 18 & 63];
                *o++ = tab[v >> 12 & 63];
                *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
                *o++ = i + 2 < n ? tab[v & 63] : '=';
        }
        *o = '\0';
        return out;
}

static unsigned not_found(struct job *j)
{
        snprintf(j->msg, sizeof(j->msg), "Could not find the file %s in container %s", j->path, j->ref);
        return 404;
}

static unsigned stat_path(struct job *j, int rootfd)
{
        json_t *st = NULL;
        int r = rootfs_path_stat(rootfd, j->abs, &st);
        if (r == -ENOENT || r == -ENOTDIR)
                return not_found(j);
        if (r < 0) {
                snprintf(j->msg, sizeof(j->msg), "engine: stat of %s in container %s: %s", j->path, j->ref,
                         strerror(-r));
                return 500;
        }
        _cleanup_free_ char *s = json_dumps(st, JSON_COMPACT);
        json_decref(st);
        if (!s || !(j->stat_b64 = base64(s, strlen(s)))) {
                snprintf(j->msg, sizeof(j->msg), "engine: out of memory");
                return 500;
        }
        return 200;
}

/* A user of the container ("uid[:gid]" or names) through its own
 * /etc/passwd and /etc/group. */
static int lookup_id(int rootfd, const char *file, const char *name, bool group, unsigned *ret)
{
        char *end;
        errno = 0;
        unsigned long v = strtoul(name, &end, 10);
        if (*name && !*end && !errno) {
                *ret = (unsigned) v;
                return 0;
        }
        _cleanup_close_ int fd = fs_open_in_root(rootfd, file, O_RDONLY, 0);
        if (fd < 0)
                return fd;
        _cleanup_fclose_ FILE *f = fdopen(fd, "r");
        if (!f)
                return -errno;
        fd = -1;
        char line[1024];
        while (fgets(line, sizeof(line), f)) {
                char *save = NULL, *n = strtok_r(line, ":", &save);
                (void) strtok_r(NULL, ":", &save);
                char *id = strtok_r(NULL, ":", &save);
                char *gid = group ? NULL : strtok_r(NULL, ":", &save);
                if (n && id && !strcmp(n, name)) {
                        *ret = (unsigned) strtoul(id, NULL, 10);
                        if (gid)
                                ret[1] = (unsigned) strtoul(gid, NULL, 10);
                        return 0;
                }
        }
        return -ENOENT;
}

static int container_user(int rootfd, const char *user, uid_t *ret_uid, gid_t *ret_gid)
{
        _cleanup_free_ char *u = strdup(user);
        if (!u)
                return -ENOMEM;
        char *g = strchr(u, ':');
        if (g)
                *g++ = '\0';
        unsigned ids[2] = { 0, 0 };
        int r = lookup_id(rootfd, "/etc/passwd", u, false, ids);
        if (r < 0)
                return r;
        if (g && (r = lookup_id(rootfd, "/etc/group", g, true, &ids[1])) < 0)
                return r;
        *ret_uid = ids[0];
        *ret_gid = ids[1];
        return 0;
}

static unsigned put_archive(struct job *j, const struct rootfs_view *v)
{
        _cleanup_free_ char *dest = NULL;
        int r = rootfs_eval(v->rootfd, j->abs, &dest);
        if (r < 0) {
                snprintf(j->msg, sizeof(j->msg), "engine: %s in container %s: %s", j->path, j->ref, strerror(-r));
                return 500;
        }
        _cleanup_close_ int dfd = fs_open_in_root(v->rootfd, dest, O_PATH, 0);
        struct stat st;
        if (dfd == -ENOENT || dfd == -ENOTDIR)
                return not_found(j);
        if (dfd < 0 || fstat(dfd, &st) < 0) {
                snprintf(j->msg, sizeof(j->msg), "engine: %s in container %s: %s", j->path, j->ref,
                         strerror(dfd < 0 ? -dfd : errno));
                return 500;
        }
        if (!S_ISDIR(st.st_mode)) {
                snprintf(j->msg, sizeof(j->msg), "extraction point is not a directory");
                return 400;
        }
        struct statx sx;
        bool in_root = statx(dfd, "", AT_EMPTY_PATH, STATX_MNT_ID, &sx) == 0 && (sx.stx_mask & STATX_MNT_ID) &&
                       sx.stx_mnt_id == v->root_mnt_id;
        struct statvfs vfs;
        if (in_root && j->readonly_rootfs) {
                snprintf(j->msg, sizeof(j->msg), "container rootfs is marked read-only");
                return 403;
        }
        if (!in_root && fstatvfs(dfd, &vfs) == 0 && (vfs.f_flag & ST_RDONLY)) {
                snprintf(j->msg, sizeof(j->msg), "mounted volume is marked read-only");
                return 403;
        }
        struct rootfs_extract_opts o = { .no_overwrite_dir_nondir = j->no_overwrite };
        if (j->copy_uidgid && j->user && *j->user) {
                r = container_user(v->rootfd, j->user, &o.uid, &o.gid);
                if (r < 0) {
                        snprintf(j->msg, sizeof(j->msg), "engine: the user \"%s\" of container %s: %s", j->user,
                                 j->ref, strerror(-r));
                        return 400;
                }
                o.chown = true;
        }
        r = rootfs_tar_extract(v->rootfd, dest, j->body_fd, &o, j->msg, sizeof(j->msg));
        if (r == -EXDEV || r == -EINVAL || r == -EISDIR || r == -ENOTDIR)
                return 400;
        return r < 0 ? 500 : 200;
}

/* Waits for the handler's go (a stream reply sent) and writes the tar. */
static void stream_tar(struct job *j, int fd, const char *prefix, bool include_top)
{
        pthread_mutex_lock(&j->lock);
        while (!j->go && !j->abort)
                pthread_cond_wait(&j->cond, &j->lock);
        int out = j->go ? j->out_fd : -1;
        j->out_fd = -1;
        pthread_mutex_unlock(&j->lock);
        if (out < 0)
                return;
        char err[512] = "";
        int r = rootfs_tar_write(fd, prefix, include_top, out, err, sizeof(err));
        if (r < 0 && r != -EPIPE)
                log_warn("%s (container %s)", err, j->id);
        close(out);
}

static void *job_run(void *arg)
{
        struct job *j = arg;
        struct rootfs_source src = {
                .bundle_rootfs = j->bundle_rootfs,
                .snap = j->fs.snap,
                .spec = j->fs.spec,
                .with_binds = j->op != JOB_EXPORT,
                .create_mountpoints = j->op == JOB_PUT,
        };
        struct rootfs_view v = { .rootfd = -1 };
        int r = rootfs_view_open(j->view_dir, &src, &v, j->msg, sizeof(j->msg));
        if (r < 0) {
                log_warn("%s", j->msg);
                job_prepared(j, 500);
                job_unref(j);
                return NULL;
        }
        unsigned status;
        switch (j->op) {
        case JOB_STAT:
                job_prepared(j, stat_path(j, v.rootfd));
                break;
        case JOB_PUT:
                job_prepared(j, put_archive(j, &v));
                break;
        case JOB_EXPORT:
                job_prepared(j, 200);
                stream_tar(j, v.rootfd, "", false);
                break;
        case JOB_GET: {
                status = stat_path(j, v.rootfd);
                _cleanup_free_ char *resolved = NULL;
                _cleanup_close_ int fd = status == 200 ? rootfs_open_nofollow(v.rootfd, j->abs, &resolved) : -1;
                if (status == 200 && fd < 0) {
                        snprintf(j->msg, sizeof(j->msg), "engine: %s in container %s: %s", j->path, j->ref,
                                 strerror(-fd));
                        status = fd == -ENOENT ? not_found(j) : 500;
                }
                job_prepared(j, status);
                if (status != 200)
                        break;
                /* the entries are named after the path asked for, as
                 * dockerd rebases them: "foo", "foo/a"; "./a" for "foo/.";
                 * "/a" for "/" (no entry for "/" itself) */
                char base[NAME_MAX + 2];
                rootfs_base(j->abs, base, sizeof(base));
                stream_tar(j, fd, base, strcmp(base, "/") != 0);
                break;
        }
        }
        rootfs_view_close(&v);
        job_unref(j);
        return NULL;
}

/* ---- replies ---- */

/* The stat header on the reply (HEAD: no body; GET: a tar streamed from
 * the pipe whose write end goes to *ret_fd). */
static enum MHD_Result reply_with_stat(struct http_request *r, const char *stat_b64, bool body, int *ret_fd)
{
        if (ret_fd)
                *ret_fd = -1;
        if (stat_b64 && http_set_header(r, STAT_HEADER, stat_b64) < 0)
                return MHD_NO;
        if (!body)
                return http_reply_text(r, 200, "application/x-tar", "");
        return http_reply_stream(r, 200, "application/x-tar", ret_fd);
}

/* ---- handlers ---- */

static char *view_dir(struct engine *en)
{
        char *d = NULL;
        if (asprintf(&d, "%s/engine-rootfs", en->exec_root) < 0)
                return NULL;
        int r = fs_mkdir_p(d, 0700);
        if (r < 0) {
                log_warn("engine: creating \"%s\": %s", d, strerror(-r));
                free(d);
                return NULL;
        }
        return d;
}

static bool is_mount_point(const char *path, const char *parent)
{
        struct statx a, b;
        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &a) < 0 ||
            statx(AT_FDCWD, parent, AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &b) < 0)
                return false;
        return (a.stx_mask & STATX_MNT_ID) && (b.stx_mask & STATX_MNT_ID) && a.stx_mnt_id != b.stx_mnt_id;
}

/* A new job for the container r->params[0]; answers itself (404, 500)
 * and returns NULL when there is none. */
static struct job *job_new(struct http_request *r, enum job_op op, const char *path)
{
        struct engine *en = r->engine;
        struct job *j = calloc(1, sizeof(*j));
        if (!j) {
                http_reply_error(r, 500, "engine: out of memory");
                return NULL;
        }
        j->en = en;
        j->op = op;
        j->body_fd = j->out_fd = -1;
        j->refs = 1;
        pthread_mutex_init(&j->lock, NULL);
        pthread_cond_init(&j->cond, NULL);
        bool task = false;
        pthread_mutex_lock(&en->ctrs.lock);
        struct ctr *c = engine_find_ctr_locked(en, r, r->params[0]);
        if (c) {
                snprintf(j->id, sizeof(j->id), "%s", c->id);
                engine_ctr_settle_locked(en, c);
                task = c->task;
                json_t *hc = json_object_get(c->doc, "HostConfig");
                j->readonly_rootfs = json_is_true(json_object_get(hc, "ReadonlyRootfs"));
                j->user = strdup(json_string_value(json_object_get(json_object_get(c->doc, "Config"), "User")) ?: "");
        }
        pthread_mutex_unlock(&en->ctrs.lock);
        if (!c) {
                job_unref(j);
                return NULL;
        }
        j->ref = strdup(r->params[0]);
        j->path = strdup(path ? path : "");
        j->abs = path ? rootfs_abs_path(path) : NULL;
        j->view_dir = view_dir(en);
        _cleanup_free_ char *bundle = NULL;
        if (task && asprintf(&bundle, "%s/bundles/%s", en->exec_root, j->id) >= 0 &&
            asprintf(&j->bundle_rootfs, "%s/rootfs", bundle) >= 0 && !is_mount_point(j->bundle_rootfs, bundle)) {
                free(j->bundle_rootfs);
                j->bundle_rootfs = NULL;
        }
        if (!j->ref || !j->path || (path && !j->abs) || !j->view_dir || !j->user) {
                http_reply_error(r, 500, "engine: out of memory or no directory for the view");
                job_unref(j);
                return NULL;
        }
        struct rpc_status st;
        if (ctr_fs_get(en, j->id, !j->bundle_rootfs, &j->fs, &st) < 0) {
                engine_reply_rpc_error(r, &st);
                job_unref(j);
                return NULL;
        }
        return j;
}

/* Starts the job's thread and waits until it has the answer (or, for a
 * stream, the view and the stat). Returns the status. */
static unsigned job_start(struct job *j)
{
        j->refs++;
        int r = engine_spawn(job_run, j, 512);
        if (r < 0) {
                j->refs--;
                snprintf(j->msg, sizeof(j->msg), "engine: no thread: %s", strerror(-r));
                return 500;
        }
        pthread_mutex_lock(&j->lock);
        while (!j->prepared)
                pthread_cond_wait(&j->cond, &j->lock);
        unsigned status = j->status;
        pthread_mutex_unlock(&j->lock);
        return status;
}

static void job_go(struct job *j, int fd)
{
        pthread_mutex_lock(&j->lock);
        if (fd >= 0) {
                j->out_fd = fd;
                j->go = true;
        } else {
                j->abort = true;
        }
        pthread_cond_broadcast(&j->cond);
        pthread_mutex_unlock(&j->lock);
}

static void job_event(struct job *j, const char *action)
{
        json_t *attrs = json_object();
        struct engine *en = j->en;
        pthread_mutex_lock(&en->ctrs.lock);
        bool amb;
        struct ctr *c = ctr_find_locked(&en->ctrs, j->id, &amb);
        if (c) {
                json_object_set_new(attrs, "image",
                                    json_string(json_string_value(json_object_get(json_object_get(c->doc, "Config"),
                                                                                  "Image")) ?: ""));
                json_object_set_new(attrs, "name", json_string(ctr_short_name(c)));
        }
        pthread_mutex_unlock(&en->ctrs.lock);
        engine_event(en, "container", action, j->id, attrs);
}

static enum MHD_Result archive_get(struct http_request *r)
{
        const char *path = http_query(r, "path");
        if (!path || !*path)
                return http_reply_error(r, 400, "path is required");
        bool head = !strcmp(r->method, "HEAD");
        struct job *j = job_new(r, head ? JOB_STAT : JOB_GET, path);
        if (!j)
                return MHD_YES;
        unsigned status = job_start(j);
        enum MHD_Result res;
        if (status != 200) {
                res = http_reply_error(r, status, "%s", j->msg);
                if (!head)
                        job_go(j, -1);
        } else if (head) {
                res = reply_with_stat(r, j->stat_b64, false, NULL);
        } else {
                int fd;
                res = reply_with_stat(r, j->stat_b64, true, &fd);
                job_go(j, fd);
                if (fd >= 0)
                        job_event(j, "archive-path");
        }
        job_unref(j);
        return res;
}

static enum MHD_Result archive_put(struct http_request *r)
{
        const char *path = http_query(r, "path");
        if (!path || !*path)
                return http_reply_error(r, 400, "path is required");
        struct job *j = job_new(r, JOB_PUT, path);
        if (!j)
                return MHD_YES;
        j->no_overwrite = http_query_bool(r, "noOverwriteDirNonDir", false);
        j->copy_uidgid = http_query_bool(r, "copyUIDGID", false);
        j->body_fd = r->body_fd >= 0 ? fcntl(r->body_fd, F_DUPFD_CLOEXEC, 3) : open("/dev/null", O_RDONLY | O_CLOEXEC);
        enum MHD_Result res;
        unsigned status = j->body_fd < 0 ? 500 : job_start(j);
        if (j->body_fd < 0)
                snprintf(j->msg, sizeof(j->msg), "engine: the request body: %s", strerror(errno));
        if (status == 200) {
                job_event(j, "extract-to-dir");
                res = http_reply_empty(r, 200);
        } else {
                res = http_reply_error(r, status, "%s", j->msg);
        }
        job_unref(j);
        return res;
}

static enum MHD_Result container_export(struct http_request *r)
{
        struct job *j = job_new(r, JOB_EXPORT, NULL);
        if (!j)
                return MHD_YES;
        unsigned status = job_start(j);
        enum MHD_Result res;
        if (status != 200) {
                res = http_reply_error(r, status, "%s", j->msg);
                job_go(j, -1);
        } else {
                int fd;
                res = http_reply_stream(r, 200, "application/x-tar", &fd);
                job_go(j, fd);
                if (fd >= 0)
                        job_event(j, "export");
        }
        job_unref(j);
        return res;
}

/* ---- commit ---- */

/* "upperdir=" of an overlay mount's options, or NULL. */
static char *upperdir_of(const struct rootfs_mount *m)
{
        if (!m->type || strcmp(m->type, "overlay") || !m->options)
                return NULL;
        const char *p = strstr(m->options, "upperdir=");
        if (!p)
                return NULL;
        p += strlen("upperdir=");
        return strndup(p, strcspn(p, ","));
}

static int pause_task(struct engine *en, const char *id, bool pause, struct rpc_status *st)
{
        Berth__Supervisor__PauseTaskRequest p = BERTH__SUPERVISOR__PAUSE_TASK_REQUEST__INIT;
        Berth__Supervisor__ResumeTaskRequest q = BERTH__SUPERVISOR__RESUME_TASK_REQUEST__INIT;
        p.id = q.id = (char *) id;
        ProtobufCMessage *rep = NULL;
        int r = pause ? engine_call(en, "tasks.PauseTask", &p.base, &berth__supervisor__pause_task_response__descriptor,
                                    ENGINE_CALL_TIMEOUT_MS, &rep, st)
                      : engine_call(en, "tasks.ResumeTask", &q.base,
                                    &berth__supervisor__resume_task_response__descriptor, ENGINE_CALL_TIMEOUT_MS, &rep,
                                    st);
        if (r >= 0)
                protobuf_c_message_free_unpacked(rep, NULL);
        return r;
}


/* POST /commit: the container's writable layer on its image, under the
 * name repo[:tag] (image-commit.c). The container is paused meanwhile
 * unless pause=0. */
static enum MHD_Result commit(struct http_request *r)
{
        struct engine *en = r->engine;
        const char *ref = http_query(r, "container"), *repo = http_query(r, "repo"), *tag = http_query(r, "tag");
        if (!ref || !*ref)
                return http_reply_error(r, 400, "container must be given");
        if (!repo || !*repo)
                return http_reply_error(r, 400, "engine: berth needs a name for a committed image: docker commit "
                                                "CONTAINER REPOSITORY[:TAG]");
        /* the CLI sends "null" when there is no config */
        json_t *body = NULL;
        size_t skip = r->body ? strspn(r->body, " \t\r\n") : 0;
        bool none = !r->body || !strncmp(r->body + skip, "null", 4);
        if (!none && http_body_json(r, true, &body) < 0)
                return MHD_YES;
        char id[65];
        pthread_mutex_lock(&en->ctrs.lock);
        struct ctr *c = engine_find_ctr_locked(en, r, ref);
        json_t *config = NULL;
        _cleanup_free_ char *image = NULL, *created_by = NULL;
        bool running = false;
        if (c) {
                snprintf(id, sizeof(id), "%s", c->id);
                config = json_deep_copy(json_object_get(c->doc, "Config"));
                /* by the name it was created from: the supervisor's
                 * images are known by their names */
                image = strdup(json_string_value(json_object_get(json_object_get(c->doc, "Config"), "Image")) ?: "");
                const char *status = json_string_value(json_object_get(json_object_get(c->doc, "State"), "Status"));
                running = status && !strcmp(status, "running");
                /* what dockerd shows in the history: the command */
                json_t *args = json_object_get(c->doc, "Args");
                size_t i;
                json_t *a;
                char *s = strdup(json_string_value(json_object_get(c->doc, "Path")) ?: "");
                json_array_foreach(args, i, a) {
                        char *t = NULL;
                        if (s && asprintf(&t, "%s %s", s, json_string_value(a) ?: "") < 0)
                                t = NULL;
                        free(s);
                        s = t;
                }
                created_by = s;
        }
        pthread_mutex_unlock(&en->ctrs.lock);
        if (!c) {
                json_decref(body);
                return MHD_YES;
        }
        /* the body (a container config) and the changes override */
        const char *k;
        json_t *v;
        json_object_foreach(body, k, v) if (!json_is_null(v)) json_object_set(config, k, v);
        json_decref(body);
        json_object_del(config, "Hostname");
        json_object_del(config, "Image");
        char err[1024] = "";
        json_t *changes = http_query_list(r, "changes");
        int rc = config && image ? image_apply_changes(config, changes, err, sizeof(err))
                                 : err_buf(err, sizeof(err), -ENOMEM, "engine: out of memory");
        json_decref(changes);
        if (rc < 0) {
                json_decref(config);
                return http_reply_error(r, rc == -EINVAL ? 400 : 500, "%s", err);
        }
        struct rpc_status st;
        struct ctr_fs f = { 0 };
        if (ctr_fs_get(en, id, true, &f, &st) < 0) {
                json_decref(config);
                return engine_reply_rpc_error(r, &st);
        }
        _cleanup_free_ char *upper = upperdir_of(&f.snap);
        ctr_fs_done(&f);
        if (!upper) {
                json_decref(config);
                return http_reply_error(r, 501, "engine: commit needs the overlay snapshotter");
        }
        int parent = -1;
        char *names[1] = { image };
        if (engine_export_images(en, names, 1, &parent, &st) < 0) {
                json_decref(config);
                return engine_reply_rpc_error(r, &st);
        }
        bool pause = running && http_query_bool(r, "pause", true);
        if (pause && pause_task(en, id, true, &st) < 0)
                pause = false; /* exited meanwhile, or cannot be frozen: as it is */
        _cleanup_free_ char *name = NULL;
        if ((tag && *tag ? asprintf(&name, "%s:%s", repo, tag) : asprintf(&name, "%s", repo)) < 0)
                name = NULL;
        char tmpdir[PATH_MAX], new_id[72];
        snprintf(tmpdir, sizeof(tmpdir), "%s/engine/tmp", en->data_root);
        struct image_commit ic = { .upperdir = upper, .parent_fd = parent, .config = config, .container_id = id,
                                   .created_by = created_by, .author = http_query(r, "author"),
                                   .comment = http_query(r, "comment"), .name = name, .tmpdir = tmpdir };
        int out = -1;
        rc = name ? engine_image_commit(&ic, &out, new_id, err, sizeof(err))
                  : err_buf(err, sizeof(err), -ENOMEM, "engine: out of memory");
        if (pause && pause_task(en, id, false, &st) < 0)
                log_warn("engine: commit of %s: resuming it: %s", id, st.message);
        close(parent);
        json_decref(config);
        if (rc < 0)
                return http_reply_error(r, rc == -EINVAL ? 400 : 500, "%s", err);
        rc = engine_import_archive(en, out, &st);
        close(out);
        if (rc < 0)
                return engine_reply_rpc_error(r, &st);
        pthread_mutex_lock(&en->ctrs.lock);
        if ((c = ctr_find_locked(&en->ctrs, id, NULL)) != NULL)
                engine_container_event_locked(en, c, "commit", NULL);
        pthread_mutex_unlock(&en->ctrs.lock);
        return http_reply_json(r, 201, json_pack("{s:s}", "Id", new_id));
}

static enum MHD_Result container_changes(struct http_request *r)
{
        struct engine *en = r->engine;
        char id[65];
        pthread_mutex_lock(&en->ctrs.lock);
        struct ctr *c = engine_find_ctr_locked(en, r, r->params[0]);
        if (c)
                snprintf(id, sizeof(id), "%s", c->id);
        pthread_mutex_unlock(&en->ctrs.lock);
        if (!c)
                return MHD_YES;
        struct ctr_fs f = { 0 };
        _cleanup_free_ char *parent_fs = NULL;
        struct rpc_status st;
        if (layer_of(en, id, &f, &parent_fs, &st) < 0)
                return engine_reply_rpc_error(r, &st);
        json_t *out = NULL;
        char err[1024] = "";
        int rc = rootfs_changes(&f.snap, parent_fs, &out, err, sizeof(err));
        ctr_fs_done(&f);
        if (rc < 0)
                return http_reply_error(r, 500, "%s", err);
        return http_reply_json(r, 200, out);
}

const struct http_route engine_archive_routes[] = {
        { "HEAD", "/containers/{}/archive", archive_get, 0 },
        { "GET", "/containers/{}/archive", archive_get, 0 },
        { "PUT", "/containers/{}/archive", archive_put, HTTP_ROUTE_BODY_FILE },
        { "GET", "/containers/{}/export", container_export, 0 },
        { "GET", "/containers/{}/changes", container_changes, 0 },
        { "POST", "/commit", commit, 0 },
};
const size_t engine_archive_n_routes = sizeof(engine_archive_routes) / sizeof(engine_archive_routes[0]);

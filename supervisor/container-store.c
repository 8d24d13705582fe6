/* Container metadata, one atomically written JSON file per container. */
#include "container-store.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs-util.h"
#include "json-util.h"
#include "log.h"

#define RECORD_MAX (8u << 20)

struct container_store {
        char *dir;              /* <root>/meta/containers */
        pthread_mutex_t lock;   /* serialises create / put / remove */
};

bool container_id_valid(const char *id)
{
        size_t n = id ? strlen(id) : 0;
        if (n == 0 || n > 128)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = id[i];
                bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
                if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
                        return false;
        }
        return true;
}

int container_store_open(const char *root, struct container_store **ret, struct berr *e)
{
        _cleanup_free_ struct container_store *cs = calloc(1, sizeof(*cs));
        if (!cs || asprintf(&cs->dir, "%s/meta/containers", root) < 0)
                return berr_set(e, ENOMEM, "container store");
        int r = fs_mkdir_p(cs->dir, 0700);
        if (r < 0) {
                berr_set(e, -r, "cannot create \"%s\"", cs->dir);
                free(cs->dir);
                return r;
        }
        pthread_mutex_init(&cs->lock, NULL);
        *ret = TAKE_PTR(cs);
        return 0;
}

void container_store_free(struct container_store *cs)
{
        if (!cs)
                return;
        pthread_mutex_destroy(&cs->lock);
        free(cs->dir);
        free(cs);
}

static int record_path(struct container_store *cs, const char *id, char **ret, struct berr *e)
{
        if (!container_id_valid(id))
                return berr_setx(e, EINVAL, "invalid container id \"%s\": want [a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}",
                                 id ? id : "");
        if (asprintf(ret, "%s/%s.json", cs->dir, id) < 0)
                return berr_set(e, ENOMEM, "container \"%s\"", id);
        return 0;
}

static int write_record(const char *path, json_t *rec, int fs_flags, struct berr *e)
{
        int r = json_write_atomic_ex(path, rec, JSON_INDENT(1) | JSON_SORT_KEYS, 0600, fs_flags);
        if (r < 0)
                return berr_set(e, -r, "cannot write \"%s\"", path);
        return 0;
}

int container_store_create(struct container_store *cs, json_t *rec, struct berr *e)
{
        const char *id = json_string_value(json_object_get(rec, "id"));
        _cleanup_free_ char *path = NULL;
        int r = record_path(cs, id, &path, e);
        if (r < 0)
                return r;
        pthread_mutex_lock(&cs->lock);
        if (access(path, F_OK) == 0)
                r = berr_setx(e, EEXIST, "container \"%s\" already exists", id);
        else
                r = write_record(path, rec, 0, e);
        pthread_mutex_unlock(&cs->lock);
        return r;
}

int container_store_put(struct container_store *cs, json_t *rec, struct berr *e)
{
        const char *id = json_string_value(json_object_get(rec, "id"));
        _cleanup_free_ char *path = NULL;
        int r = record_path(cs, id, &path, e);
        if (r < 0)
                return r;
        pthread_mutex_lock(&cs->lock);
        if (access(path, F_OK) < 0)
                r = berr_setx(e, ENOENT, "container \"%s\" not found", id);
        else
                r = write_record(path, rec, FS_WRITE_DURABLE, e);
        pthread_mutex_unlock(&cs->lock);
        return r;
}

int container_store_get(struct container_store *cs, const char *id, json_t **ret, struct berr *e)
{
        _cleanup_free_ char *path = NULL;
        int r = record_path(cs, id, &path, e);
        if (r < 0)
                return r;
        if (access(path, F_OK) < 0)
                return berr_setx(e, ENOENT, "container \"%s\" not found", id);
        json_t *j = NULL;
        r = json_load_path(path, RECORD_MAX, &j, e);
        if (r < 0)
                return r;
        if (!json_is_object(j)) {
                json_decref(j);
                return berr_setx(e, EINVAL, "\"%s\": not a JSON object", path);
        }
        *ret = j;
        return 0;
}

static int cmp_id(const void *a, const void *b)
{
        const char *x = json_string_value(json_object_get(*(json_t *const *) a, "id"));
        const char *y = json_string_value(json_object_get(*(json_t *const *) b, "id"));
        return strcmp(x ? x : "", y ? y : "");
}

int container_store_list(struct container_store *cs, json_t **ret, struct berr *e)
{
        _cleanup_closedir_ DIR *d = opendir(cs->dir);
        if (!d)
                return berr_set(e, errno, "cannot read \"%s\"", cs->dir);
        json_t **v = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);
                if (len <= 5 || strcmp(de->d_name + len - 5, ".json") != 0)
                        continue;
                _cleanup_free_ char *id = strndup(de->d_name, len - 5);
                json_t *j = NULL;
                struct berr le = { 0 };
                if (!id || container_store_get(cs, id, &j, &le) < 0) {
                        log_warn("supervisor: skipping container record \"%s\": %s", de->d_name,
                                 id ? le.msg : "out of memory");
                        continue;
                }
                if (n == cap) {
                        cap = cap ? 2 * cap : 16;
                        json_t **nv = realloc(v, cap * sizeof(*v));
                        if (!nv) {
                                json_decref(j);
                                break;
                        }
                        v = nv;
                }
                v[n++] = j;
        }
        if (n > 1)
                qsort(v, n, sizeof(*v), cmp_id);
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
                json_array_append_new(a, v[i]);
        free(v);
        if (!a)
                return berr_set(e, ENOMEM, "container list");
        *ret = a;
        return 0;
}

int container_store_remove(struct container_store *cs, const char *id, struct berr *e)
{
        _cleanup_free_ char *path = NULL;
        int r = record_path(cs, id, &path, e);
        if (r < 0)
                return r;
        pthread_mutex_lock(&cs->lock);
        if (unlink(path) < 0)
                r = errno == ENOENT ? berr_setx(e, ENOENT, "container \"%s\" not found", id)
                                    : berr_set(e, errno, "cannot remove \"%s\"", path);
        else
                fs_fsync_parent(path);
        pthread_mutex_unlock(&cs->lock);
        return r;
}

#include "state.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "cleanup.h"
#include "fs-util.h"
#include "json-util.h"
#include "time-util.h"

const char *status_to_string(enum container_status s)
{
        switch (s) {
        case STATUS_CREATING:
                return "creating";
        case STATUS_CREATED:
                return "created";
        case STATUS_RUNNING:
                return "running";
        case STATUS_PAUSED:
                return "paused";
        case STATUS_STOPPED:
        default:
                return "stopped";
        }
}

int state_check_id(const char *id, struct berr *e)
{
        if (!id || !*id)
                return berr_setx(e, EINVAL, "container id must not be empty");
        if (strcmp(id, ".") == 0 || strcmp(id, "..") == 0 || strlen(id) > 1024)
                return berr_setx(e, EINVAL, "invalid container id \"%s\"", id);
        for (const char *p = id; *p; p++)
                if (!isalnum((unsigned char) *p) && !strchr("_+-.", *p))
                        return berr_setx(e, EINVAL,
                                         "invalid container id \"%s\": only letters, digits and _+-. are allowed", id);
        return 0;
}

int state_dir(const char *root, const char *id, char **ret)
{
        return asprintf(ret, "%s/%s", root, id) < 0 ? -ENOMEM : 0;
}

int state_create_dir(const char *root, const char *id, struct berr *e)
{
        _cleanup_free_ char *dir = NULL;
        int r = fs_mkdir_p(root, 0700);
        if (r < 0)
                return berr_set(e, r, "cannot create state root \"%s\"", root);
        if ((r = state_dir(root, id, &dir)) < 0)
                return r;
        /* 0711: the container's process, possibly no longer root, must be
         * able to reach exec.fifo inside. */
        if (mkdir(dir, 0711) < 0) {
                if (errno == EEXIST)
                        return berr_setx(e, EEXIST, "container \"%s\" already exists", id);
                return berr_set(e, errno, "cannot create state directory \"%s\"", dir);
        }
        chmod(dir, 0711);
        return 0;
}

void state_free(struct container_state *st)
{
        if (!st)
                return;
        json_decref(st->doc);
        free(st);
}

static int fill(struct container_state *st, struct berr *e)
{
        json_t *d = st->doc;
        json_int_t pid = json_integer_value(json_object_get(d, "init_pid"));
        st->id = json_string_value(json_object_get(d, "id"));
        st->oci_version = json_string_value(json_object_get(d, "ociVersion"));
        st->bundle = json_string_value(json_object_get(d, "bundle"));
        st->rootfs = json_string_value(json_object_get(d, "rootfs"));
        st->created = json_string_value(json_object_get(d, "created"));
        st->pid = (pid_t) pid;
        st->start_time = (uint64_t) json_integer_value(json_object_get(d, "init_start_time"));
        st->annotations = json_object_get(d, "annotations");
        st->cgroup_paths = json_object_get(d, "cgroup_paths");
        st->hooks = json_object_get(d, "hooks");
        if (!st->id || !st->bundle || !st->rootfs || !st->created || !st->oci_version || pid < 0)
                return berr_setx(e, EINVAL, "state of container is incomplete");
        return 0;
}

struct container_state *state_new(const char *id, const char *oci_version, const char *bundle, const char *rootfs,
                                  pid_t pid, uint64_t start_time, json_t *annotations, json_t *cgroup_paths,
                                  json_t *hooks)
{
        char created[40];
        struct container_state *st = calloc(1, sizeof(*st));
        if (!st)
                return NULL;
        time_now_rfc3339_nano(created, sizeof(created));
        st->doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:O?, s:O?, s:O?}", "id", id, "ociVersion",
                            oci_version, "bundle", bundle, "rootfs", rootfs, "created", created, "init_pid",
                            (json_int_t) pid, "init_start_time", (json_int_t) start_time, "annotations", annotations,
                            "cgroup_paths", cgroup_paths, "hooks", hooks);
        if (!st->doc || fill(st, NULL) < 0) {
                state_free(st);
                return NULL;
        }
        st->owner = geteuid();
        return st;
}

int state_load(const char *root, const char *id, struct container_state **ret, struct berr *e)
{
        _cleanup_free_ char *path = NULL;
        struct stat stb;
        int r;

        if ((r = state_check_id(id, e)) < 0)
                return r;
        if (asprintf(&path, "%s/%s/state.json", root, id) < 0)
                return -ENOMEM;
        if (stat(path, &stb) < 0) {
                if (errno == ENOENT)
                        return berr_setx(e, ENOENT, "container \"%s\" does not exist", id);
                return berr_set(e, errno, "cannot read state of container \"%s\"", id);
        }

        struct container_state *st = calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        r = json_load_path(path, 1u << 20, &st->doc, e);
        if (r >= 0)
                r = fill(st, e);
        if (r < 0) {
                state_free(st);
                return r;
        }
        st->owner = stb.st_uid;
        *ret = st;
        return 0;
}

int state_save(const char *root, const struct container_state *st)
{
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/%s/state.json", root, st->id) < 0)
                return -ENOMEM;
        /* Atomic but not fsync'ed: the state root lives under /run and is
         * meant to vanish on reboot; rename keeps it whole across kill -9. */
        return json_write_atomic_ex(path, st->doc, JSON_COMPACT, 0600, 0);
}

int proc_start_time(pid_t pid, uint64_t *ret)
{
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return n < 0 ? -errno : -EIO;
        buf[n] = '\0';

        /* comm may hold spaces and parentheses: fields start after the last ')' */
        char *p = strrchr(buf, ')');
        if (!p)
                return -EIO;
        p += 2;
        char state = *p;
        /* state is field 3; starttime is field 22 */
        for (int field = 3; field < 22; field++) {
                p = strchr(p, ' ');
                if (!p)
                        return -EIO;
                p++;
        }
        if (state == 'Z' || state == 'X')
                return -ESRCH;
        *ret = strtoull(p, NULL, 10);
        return 0;
}

bool state_pid_alive(pid_t pid, uint64_t start_time)
{
        uint64_t st;
        if (pid <= 0)
                return false;
        if (proc_start_time(pid, &st) < 0)
                return false;
        return st == start_time;
}

enum container_status state_status(const char *root, const struct container_state *st)
{
        if (!state_pid_alive(st->pid, st->start_time))
                return STATUS_STOPPED;

        _cleanup_free_ char *fifo = NULL;
        if (asprintf(&fifo, "%s/%s/%s", root, st->id, STATE_FIFO) >= 0 && access(fifo, F_OK) == 0)
                return STATUS_CREATED;
        if (cgroup_paths_frozen(st->cgroup_paths))
                return STATUS_PAUSED;
        return STATUS_RUNNING;
}

/* The user name of uid from /etc/passwd (ocirun is linked statically, so
 * no NSS); the number when there is none. */
static void owner_name(uid_t uid, char *buf, size_t len)
{
        _cleanup_fclose_ FILE *f = fopen("/etc/passwd", "re");
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        snprintf(buf, len, "%u", (unsigned) uid);
        while (f && getline(&line, &cap, f) > 0) {
                char *c1 = strchr(line, ':');
                char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (!c2)
                        continue;
                if (strtoul(c2 + 1, NULL, 10) == uid && c1 - line < (long) len) {
                        *c1 = '\0';
                        snprintf(buf, len, "%s", line);
                        return;
                }
        }
}

json_t *state_to_json(const struct container_state *st, enum container_status status)
{
        char owner[256];
        owner_name(st->owner, owner, sizeof(owner));
        json_t *j = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s}", "ociVersion", st->oci_version, "id", st->id,
                              "pid", status == STATUS_STOPPED ? 0 : (int) st->pid, "status", status_to_string(status),
                              "bundle", st->bundle, "rootfs", st->rootfs, "created", st->created, "owner",
                              owner);
        if (j && st->annotations && json_object_size(st->annotations) > 0)
                json_object_set(j, "annotations", st->annotations);
        return j;
}

json_t *state_hook_json(const char *oci_version, const char *id, const char *status, pid_t pid, const char *bundle,
                        json_t *annotations)
{
        json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:s}", "ociVersion", oci_version, "id", id, "status", status, "pid",
                              (int) pid, "bundle", bundle);
        if (j && annotations && json_object_size(annotations) > 0)
                json_object_set(j, "annotations", annotations);
        return j;
}

int state_remove(const char *root, const char *id)
{
        _cleanup_free_ char *dir = NULL;
        int r = state_dir(root, id, &dir);
        if (r < 0)
                return r;
        return fs_rm_rf(dir);
}

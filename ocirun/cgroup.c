#include "cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs-util.h"
#include "log.h"

static const char *const v1_controllers[] = {
        "cpu",      "cpuacct", "cpuset",     "memory",  "devices", "freezer", "net_cls",
        "net_prio", "blkio",   "perf_event", "hugetlb", "pids",    "rdma",    "misc",
};

int cgroup_write(const char *dir, const char *file, const char *value, struct berr *e)
{
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/%s", dir, file) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return berr_set(e, errno, "cannot open cgroup file \"%s\"", path);
        size_t len = strlen(value);
        if (write(fd, value, len) != (ssize_t) len)
                return berr_set(e, errno, "cannot write \"%s\" to \"%s\"", value, path);
        return 0;
}

void cgroup_free(struct cgroup *cg)
{
        if (!cg)
                return;
        for (size_t i = 0; i < cg->n; i++) {
                free(cg->h[i].key);
                free(cg->h[i].mountpoint);
                free(cg->h[i].dir);
        }
        free(cg->h);
        free(cg);
}

static char *unescape_mountinfo(const char *s)
{
        char *out = malloc(strlen(s) + 1), *o = out;
        if (!out)
                return NULL;
        while (*s) {
                if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] && s[3]) {
                        *o++ = (char) (((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
                        s += 4;
                } else
                        *o++ = *s++;
        }
        *o = '\0';
        return out;
}

/* The controllers of a v1 mount from its super options: the known
 * controller names plus name=..., joined with ','. */
static char *v1_key(const char *superopts)
{
        _cleanup_free_ char *opts = strdup(superopts);
        char *key = NULL, *save = NULL;
        if (!opts)
                return NULL;
        for (char *t = strtok_r(opts, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                bool known = strncmp(t, "name=", 5) == 0;
                for (size_t i = 0; !known && i < ARRAY_SIZE(v1_controllers); i++)
                        known = strcmp(t, v1_controllers[i]) == 0;
                if (!known)
                        continue;
                char *nk = NULL;
                if (asprintf(&nk, "%s%s%s", key ? key : "", key ? "," : "", t) < 0) {
                        free(key);
                        return NULL;
                }
                free(key);
                key = nk;
        }
        return key;
}

static int add_hierarchy(struct cgroup *cg, char *key, char *mnt, bool v2)
{
        for (size_t i = 0; i < cg->n; i++)
                if (strcmp(cg->h[i].key, key) == 0) { /* the same hierarchy mounted twice */
                        free(key);
                        free(mnt);
                        return 0;
                }
        struct cgroup_hierarchy *nh = realloc(cg->h, (cg->n + 1) * sizeof(*nh));
        if (!nh) {
                free(key);
                free(mnt);
                return -ENOMEM;
        }
        cg->h = nh;
        cg->h[cg->n++] = (struct cgroup_hierarchy) { .key = key, .mountpoint = mnt, .v2 = v2 };
        return 0;
}

static int discover(struct cgroup *cg)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        if (!f)
                return -errno;

        while (getline(&line, &cap, f) > 0) {
                char mnt[4096], fstype[64], superopts[1024];
                char *sep = strstr(line, " - ");
                if (!sep)
                        continue;
                if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
                        continue;
                if (sscanf(sep + 3, "%63s %*s %1023s", fstype, superopts) != 2)
                        continue;
                bool v2 = strcmp(fstype, "cgroup2") == 0;
                if (!v2 && strcmp(fstype, "cgroup") != 0)
                        continue;
                char *key = v2 ? strdup("cgroup2") : v1_key(superopts);
                char *m = unescape_mountinfo(mnt);
                if (!key || !m) {
                        free(key);
                        free(m);
                        continue;
                }
                int r = add_hierarchy(cg, key, m, v2);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The cgroup ocirun itself is in, for hierarchy key (from /proc/self/cgroup). */
/* The cgroup ocirun itself is in, for hierarchy key, from the text of
 * /proc/self/cgroup. */
static char *own_cgroup(const char *self_cgroup, const char *key, bool v2)
{
        _cleanup_free_ char *copy = self_cgroup ? strdup(self_cgroup) : NULL;
        char *save = NULL;
        for (char *line = copy ? strtok_r(copy, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
                char *c1 = strchr(line, ':');
                char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (!c2)
                        continue;
                *c2 = '\0';
                if (v2 ? (strncmp(line, "0:", 2) == 0 && c1[1] == '\0') : strcmp(c1 + 1, key) == 0)
                        return strdup(c2 + 1);
        }
        return NULL;
}

static char *read_self_cgroup(void)
{
        char *data = NULL;
        return fs_read_file("/proc/self/cgroup", 1 << 16, &data, NULL) == 0 ? data : NULL;
}

/* Lexically clean "/a/./b/../c" → "/a/c", never rising above "/". */
static char *clean_path(const char *p)
{
        size_t len = strlen(p);
        char *out = malloc(len + 2);
        if (!out)
                return NULL;
        size_t o = 0;
        const char *s = p;
        while (*s) {
                while (*s == '/')
                        s++;
                const char *end = strchrnul(s, '/');
                size_t n = (size_t) (end - s);
                if (n == 0)
                        break;
                if (n == 1 && s[0] == '.') {
                } else if (n == 2 && s[0] == '.' && s[1] == '.') {
                        while (o > 0 && out[o - 1] != '/')
                                o--;
                        if (o > 0)
                                o--;
                } else {
                        out[o++] = '/';
                        memcpy(out + o, s, n);
                        o += n;
                }
                s = end;
        }
        if (o == 0)
                out[o++] = '/';
        out[o] = '\0';
        return out;
}

static int compute_dirs(struct cgroup *cg, const struct spec *s, const char *id, struct berr *e)
{
        const char *cp = s->cgroups_path && *s->cgroups_path ? s->cgroups_path : NULL;
        _cleanup_free_ char *self_cgroup = NULL;
        for (size_t i = 0; i < cg->n; i++) {
                struct cgroup_hierarchy *h = &cg->h[i];
                _cleanup_free_ char *rel = NULL, *clean = NULL;
                if (cp && cp[0] == '/') {
                        rel = strdup(cp);
                } else {
                        if (!self_cgroup)
                                self_cgroup = read_self_cgroup();
                        _cleanup_free_ char *own = own_cgroup(self_cgroup, h->key, h->v2);
                        if (asprintf(&rel, "%s/%s", own ? own : "", cp ? cp : id) < 0)
                                rel = NULL;
                }
                if (!rel || !(clean = clean_path(rel)))
                        return -ENOMEM;
                if (strcmp(clean, "/") == 0)
                        return berr_setx(e, EINVAL, "linux.cgroupsPath \"%s\" names the root cgroup", cp ? cp : "");
                if (asprintf(&h->dir, "%s%s", h->mountpoint, clean) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* The controllers a container's limits can go to, space-separated: those
 * of the v1 hierarchies, or on a pure v2 host those in cgroup.controllers
 * of v2_dir. A hybrid host's v2 hierarchy holds no limits (see
 * cgroup_create), whatever controllers it offers. */
static char *available_controllers(char *const *v1_keys, size_t n_v1, const char *v2_dir)
{
        char *out = NULL;
        if (n_v1 == 0) {
                _cleanup_free_ char *path = NULL;
                if (!v2_dir || asprintf(&path, "%s/cgroup.controllers", v2_dir) < 0 ||
                    fs_read_file(path, 65536, &out, NULL) < 0)
                        return strdup("");
                return out;
        }
        size_t len = 1;
        for (size_t i = 0; i < n_v1; i++)
                len += strlen(v1_keys[i]) + 1;
        out = calloc(1, len);
        for (size_t i = 0; out && i < n_v1; i++) {
                strcat(out, v1_keys[i]);
                strcat(out, " ");
        }
        for (char *c = out; c && *c; c++)
                if (*c == ',' || *c == '\n')
                        *c = ' ';
        return out;
}

static bool has_controller(const char *avail, const char *name)
{
        size_t n = strlen(name);
        for (const char *p = avail; (p = strstr(p, name)); p += n)
                if ((p == avail || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' ' || p[n] == '\n'))
                        return true;
        return false;
}

/* What the limits need from the host, checked before anything is written
 * (by create and by update). */
static int check_resources(const char *avail, bool v2, const struct spec_resources *r, struct berr *e)
{
        bool blkio = r->blkio_weight || r->blkio_leaf_weight || json_array_size(r->blkio_weight_device);
        for (int t = 0; t < SPEC_THROTTLE_MAX; t++)
                blkio = blkio || json_array_size(r->blkio_throttle[t]);
        const struct {
                const char *name;
                bool wanted;
        } need[] = {
                { "memory", r->has_mem_limit || r->has_mem_reservation },
                { "pids", r->has_pids_limit },
                { "cpu", r->has_cpu_shares || r->has_cpu_quota },
                { "cpu", (r->has_cpu_rt_runtime && r->cpu_rt_runtime) || (r->has_cpu_rt_period && r->cpu_rt_period) },
                { v2 ? "io" : "blkio", blkio },
        };
        for (size_t i = 0; i < ARRAY_SIZE(need); i++)
                if (need[i].wanted && !has_controller(avail, need[i].name))
                        return berr_setx(e, ENODEV, "the %s cgroup controller is not available on this host",
                                         need[i].name);
        if (json_array_size(r->hugepage_limits) && !has_controller(avail, "hugetlb"))
                return berr_setx(e, ENODEV,
                                 "linux.resources.hugepageLimits: the hugetlb cgroup controller is not available "
                                 "on this host%s", v2 ? "" : " (as a cgroup v1 hierarchy)");
        if (json_object_size(r->unified) && !v2)
                return berr_setx(e, EOPNOTSUPP,
                                 "linux.resources.unified: unified resources need cgroup v2 (this host uses v1 "
                                 "controllers)");
        if (!v2 && (r->devices || r->device_defaults) && !has_controller(avail, "devices"))
                log_debug("no devices cgroup controller: device rules are not enforced");
        if (r->has_mem_kernel)
                log_warn("linux.resources.memory.kernel/kernelTCP are deprecated and ignored");
        return 0;
}

static int check_controllers(const struct cgroup *cg, const struct spec_resources *r, struct berr *e)
{
        _cleanup_free_ char **keys = calloc(cg->n + 1, sizeof(char *));
        const char *v2_mount = NULL;
        size_t n = 0;
        if (!keys)
                return -ENOMEM;
        for (size_t i = 0; i < cg->n; i++) {
                if (cg->h[i].v2)
                        v2_mount = cg->h[i].mountpoint;
                else
                        keys[n++] = cg->h[i].key;
        }
        _cleanup_free_ char *avail = available_controllers(keys, n, v2_mount);
        if (!avail)
                return -ENOMEM;
        return check_resources(avail, n == 0, r, e);
}

/* Remove the directories we made, deepest first; only the container's own
 * directory (the leaf) is ours to remove. */
static void remove_dirs(const struct cgroup *cg)
{
        for (size_t i = 0; i < cg->n; i++)
                if (cg->h[i].dir)
                        rmdir(cg->h[i].dir);
}

int cgroup_create(const struct spec *s, const char *id, struct cgroup **ret, struct berr *e)
{
        struct cgroup *cg = calloc(1, sizeof(*cg));
        int r;
        if (!cg)
                return -ENOMEM;
        r = discover(cg);
        if (r < 0) {
                cgroup_free(cg);
                return berr_set(e, r, "cannot read the cgroup mounts from /proc/self/mountinfo");
        }
        if (cg->n == 0) {
                cgroup_free(cg);
                return berr_setx(e, ENODEV, "no cgroup hierarchy is mounted");
        }
        if ((r = compute_dirs(cg, s, id, e)) < 0 || (r = check_controllers(cg, &s->resources, e)) < 0)
                goto fail;

        /* On a hybrid host the v2 hierarchy has no controllers: it is joined
         * (systemd and others track processes there) but holds no limits. */
        bool hybrid = false;
        for (size_t i = 0; i < cg->n; i++)
                hybrid = hybrid || !cg->h[i].v2;

        for (size_t i = 0; i < cg->n; i++) {
                struct cgroup_hierarchy *h = &cg->h[i];
                const struct cgroup_ops *ops = h->v2 ? &cgroup_v2_ops : &cgroup_v1_ops;
                if ((r = fs_mkdir_p(h->dir, 0755)) < 0) {
                        r = berr_set(e, r, "cannot create cgroup \"%s\"", h->dir);
                        goto fail;
                }
                if (h->v2 && hybrid)
                        continue;
                if ((r = ops->prepare(h, e)) < 0 || (r = ops->apply(h, &s->resources, e)) < 0)
                        goto fail;
        }
        *ret = cg;
        return 0;
fail:
        remove_dirs(cg);
        cgroup_free(cg);
        return r;
}

pid_t cgroup_prewarm(void)
{
        pid_t pid = fork();
        if (pid != 0)
                return pid;

        /* Any migration takes the lock whose grace period this is after,
         * whatever the hierarchy: the first of /proc/self/cgroup at its usual
         * mount point will do (mountinfo, which the parent reads, costs
         * more, and more with every mount). A guess that fails is no harm. */
        _cleanup_free_ char *self_cgroup = read_self_cgroup();
        char *line = self_cgroup ? strtok(self_cgroup, "\n") : NULL;
        char *c1 = line ? strchr(line, ':') : NULL;
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
                _exit(0);
        *c2 = '\0';
        const char *ctrls = c1 + 1;
        if (!strncmp(ctrls, "name=", 5))
                ctrls += 5;
        _cleanup_free_ char *path = NULL;
        int fd = -1;
        if (*ctrls && asprintf(&path, "/sys/fs/cgroup/%s%s/cgroup.procs", ctrls, c2 + 1) > 0)
                fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 && !*ctrls) {
                free(path);
                path = NULL;
                if (asprintf(&path, "/sys/fs/cgroup%s/cgroup.procs", c2 + 1) > 0)
                        fd = open(path, O_WRONLY | O_CLOEXEC);
        }
        if (fd >= 0 && write(fd, "0", 1) < 0)
                _exit(1);
        _exit(0);
}

int cgroup_paths_enter(json_t *paths, pid_t pid, struct berr *e)
{
        char buf[32];
        const char *key;
        json_t *v;
        snprintf(buf, sizeof(buf), "%d", (int) pid);
        json_object_foreach(paths, key, v) {
                int r = json_string_value(v) ? cgroup_write(json_string_value(v), "cgroup.procs", buf, e) : 0;
                if (r < 0)
                        return r;
        }
        return 0;
}

json_t *cgroup_to_json(const struct cgroup *cg)
{
        json_t *o = json_object();
        for (size_t i = 0; o && i < cg->n; i++)
                json_object_set_new(o, cg->h[i].key, json_string(cg->h[i].dir));
        return o;
}

int cgroup_paths_destroy(json_t *paths)
{
        const char *key;
        json_t *v;
        int ret = 0;

        json_object_foreach(paths, key, v) {
                const char *dir = json_string_value(v);
                if (!dir)
                        continue;
                /* A cgroup is busy for a moment after its last task exits. */
                for (int attempt = 0;; attempt++) {
                        if (rmdir(dir) == 0 || errno == ENOENT)
                                break;
                        if (errno != EBUSY || attempt >= 200) {
                                ret = log_errno(LOG_LEVEL_WARN, errno, "cannot remove cgroup \"%s\"", dir);
                                break;
                        }
                        nanosleep(&(struct timespec) { .tv_nsec = 5 * 1000 * 1000 }, NULL);
                }
        }
        return ret;
}

static int kill_dir(const char *dir, int sig, bool *ret_found)
{
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        if (asprintf(&path, "%s/cgroup.procs", dir) < 0)
                return -ENOMEM;
        f = fopen(path, "re");
        if (!f)
                return -errno;
        int pid;
        while (fscanf(f, "%d", &pid) == 1) {
                if (ret_found)
                        *ret_found = true;
                if (sig && kill(pid, sig) < 0 && errno != ESRCH)
                        return -errno;
        }
        return 0;
}

int cgroup_paths_kill(json_t *paths, int sig)
{
        const char *key;
        json_t *v;
        /* Every process is in every hierarchy: one readable list suffices. */
        json_object_foreach(paths, key, v) {
                if (json_string_value(v) && kill_dir(json_string_value(v), sig, NULL) == 0)
                        return 0;
        }
        return -ENOENT;
}

bool cgroup_paths_populated(json_t *paths)
{
        const char *key;
        json_t *v;
        json_object_foreach(paths, key, v) {
                bool found = false;
                if (json_string_value(v) && kill_dir(json_string_value(v), 0, &found) == 0)
                        return found;
        }
        return false;
}

bool cgroup_paths_frozen(json_t *paths)
{
        const char *key;
        json_t *v;
        json_object_foreach(paths, key, v) {
                const char *dir = json_string_value(v);
                _cleanup_free_ char *path = NULL, *data = NULL;
                bool v2 = strcmp(key, "cgroup2") == 0;
                if (!dir || (!v2 && !strstr(key, "freezer")))
                        continue;
                if (asprintf(&path, "%s/%s", dir, v2 ? "cgroup.freeze" : "freezer.state") < 0)
                        continue;
                if (fs_read_file(path, 4096, &data, NULL) < 0)
                        continue;
                if (v2 ? data[0] == '1' : strncmp(data, "FROZEN", 6) == 0)
                        return true;
        }
        return false;
}

static bool paths_hybrid(json_t *paths)
{
        return json_object_size(paths) > (json_object_get(paths, "cgroup2") ? 1u : 0u);
}

int cgroup_paths_apply(json_t *paths, const struct spec_resources *r, struct berr *e)
{
        const char *key;
        json_t *v;
        bool v1 = paths_hybrid(paths);
        _cleanup_free_ char **keys = calloc(json_object_size(paths) + 1, sizeof(char *));
        size_t n = 0;
        if (!keys)
                return -ENOMEM;
        json_object_foreach(paths, key, v)
                if (strcmp(key, "cgroup2") != 0)
                        keys[n++] = (char *) key;
        _cleanup_free_ char *avail =
                available_controllers(keys, n, json_string_value(json_object_get(paths, "cgroup2")));
        if (!avail)
                return -ENOMEM;
        int ret = check_resources(avail, !v1, r, e);
        if (ret < 0)
                return ret;
        /* The device rules are the container's for life, as in runc. */
        struct spec_resources nodev = *r;
        if (nodev.devices)
                log_warn("linux.resources.devices cannot be updated: ignored");
        nodev.devices = NULL;
        nodev.device_defaults = false;
        r = &nodev;
        json_object_foreach(paths, key, v) {
                bool v2 = strcmp(key, "cgroup2") == 0;
                if (v2 && v1)
                        continue;
                struct cgroup_hierarchy h = { .key = (char *) key, .dir = (char *) json_string_value(v), .v2 = v2 };
                if (!h.dir)
                        continue;
                ret = (v2 ? &cgroup_v2_ops : &cgroup_v1_ops)->apply(&h, r, e);
                if (ret < 0)
                        return ret;
        }
        return 0;
}

int cgroup_paths_freeze(json_t *paths, bool freeze, struct berr *e)
{
        const char *key;
        json_t *v;
        json_object_foreach(paths, key, v) {
                const char *dir = json_string_value(v);
                bool v2 = strcmp(key, "cgroup2") == 0;
                if (!dir || (v2 ? paths_hybrid(paths) : !strstr(key, "freezer")))
                        continue;
                const char *file = v2 ? "cgroup.freeze" : "freezer.state";
                const char *want = v2 ? (freeze ? "1" : "0") : (freeze ? "FROZEN" : "THAWED");
                int r = cgroup_write(dir, file, want, e);
                if (r < 0)
                        return r;
                /* v1 passes through FREEZING; v2 reports "frozen 1" in cgroup.events */
                for (int i = 0; i < 5000; i++) {
                        _cleanup_free_ char *path = NULL, *data = NULL;
                        if (asprintf(&path, "%s/%s", dir, v2 ? "cgroup.events" : "freezer.state") < 0)
                                return -ENOMEM;
                        if (fs_read_file(path, 4096, &data, NULL) < 0)
                                break;
                        bool done = v2 ? (strstr(data, freeze ? "frozen 1" : "frozen 0") != NULL)
                                       : strncmp(data, want, strlen(want)) == 0;
                        if (done)
                                return 0;
                        nanosleep(&(struct timespec) { .tv_nsec = 1000 * 1000 }, NULL);
                }
                return berr_setx(e, ETIMEDOUT, "the cgroup \"%s\" did not become %s", dir, freeze ? "frozen" : "thawed");
        }
        return berr_setx(e, ENODEV, "no freezer cgroup for this container");
}

int cgroup_paths_pids(json_t *paths, pid_t **ret, size_t *ret_n)
{
        const char *key;
        json_t *v;
        json_object_foreach(paths, key, v) {
                _cleanup_free_ char *path = NULL;
                if (!json_string_value(v) || asprintf(&path, "%s/cgroup.procs", json_string_value(v)) < 0)
                        continue;
                _cleanup_fclose_ FILE *f = fopen(path, "re");
                if (!f)
                        continue;
                pid_t *pids = NULL;
                size_t n = 0;
                int pid;
                while (fscanf(f, "%d", &pid) == 1) {
                        pid_t *np = realloc(pids, (n + 1) * sizeof(pid_t));
                        if (!np) {
                                free(pids);
                                return -ENOMEM;
                        }
                        pids = np;
                        pids[n++] = pid;
                }
                *ret = pids;
                *ret_n = n;
                return 0;
        }
        return -ENOENT;
}

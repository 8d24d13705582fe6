/* A default OCI runtime spec for a container, from its image config. */
#include "container-spec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs-util.h"

static const char default_spec[] =
        "{"
        " \"ociVersion\": \"1.0.2\","
        " \"process\": {"
        "  \"terminal\": false,"
        "  \"user\": {\"uid\": 0, \"gid\": 0},"
        "  \"cwd\": \"/\","
        "  \"capabilities\": {"
        "   \"bounding\": [], \"effective\": [], \"permitted\": []"
        "  },"
        "  \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"hard\": 1024, \"soft\": 1024}],"
        "  \"noNewPrivileges\": true"
        " },"
        " \"root\": {\"path\": \"rootfs\", \"readonly\": false},"
        " \"mounts\": ["
        "  {\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\","
        "   \"options\": [\"nosuid\", \"noexec\", \"nodev\"]},"
        "  {\"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\","
        "   \"options\": [\"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\"]},"
        "  {\"destination\": \"/dev/pts\", \"type\": \"devpts\", \"source\": \"devpts\","
        "   \"options\": [\"nosuid\", \"noexec\", \"newinstance\", \"ptmxmode=0666\", \"mode=0620\", \"gid=5\"]},"
        "  {\"destination\": \"/dev/shm\", \"type\": \"tmpfs\", \"source\": \"shm\","
        "   \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"mode=1777\", \"size=65536k\"]},"
        "  {\"destination\": \"/dev/mqueue\", \"type\": \"mqueue\", \"source\": \"mqueue\","
        "   \"options\": [\"nosuid\", \"noexec\", \"nodev\"]},"
        "  {\"destination\": \"/sys\", \"type\": \"sysfs\", \"source\": \"sysfs\","
        "   \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"ro\"]},"
        "  {\"destination\": \"/sys/fs/cgroup\", \"type\": \"cgroup\", \"source\": \"cgroup\","
        "   \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"relatime\", \"ro\"]}"
        " ],"
        " \"linux\": {"
        "  \"resources\": {\"devices\": ["
        "   {\"allow\": false, \"access\": \"rwm\"},"
        "   {\"allow\": true, \"type\": \"c\", \"major\": 1, \"minor\": 3, \"access\": \"rwm\"},"
        "   {\"allow\": true, \"type\": \"c\", \"major\": 1, \"minor\": 5, \"access\": \"rwm\"},"
        "   {\"allow\": true, \"type\": \"c\", \"major\": 1, \"minor\": 7, \"access\": \"rwm\"},"
        "   {\"allow\": true, \"type\": \"c\", \"major\": 1, \"minor\": 8, \"access\": \"rwm\"},"
        "   {\"allow\": true, \"type\": \"c\", \"major\": 1, \"minor\": 9, \"access\": \"rwm\"},"
        "   {\"allow\": true, \"type\": \"c\", \"major\": 5, \"minor\": 0, \"access\": \"rwm\"},"
        "   {\"allow\": true, \"type\": \"c\", \"major\": 5, \"minor\": 1, \"access\": \"rwm\"},"
        "   {\"allow\": true, \"type\": \"c\", \"major\": 5, \"minor\": 2, \"access\": \"rwm\"},"
        "   {\"allow\": true, \"type\": \"c\", \"major\": 136, \"access\": \"rwm\"}"
        "  ]},"
        "  \"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"ipc\"}, {\"type\": \"uts\"},"
        "                  {\"type\": \"mount\"}, {\"type\": \"network\"}],"
        "  \"maskedPaths\": [\"/proc/acpi\", \"/proc/asound\", \"/proc/kcore\", \"/proc/keys\","
        "                   \"/proc/latency_stats\", \"/proc/timer_list\", \"/proc/timer_stats\","
        "                   \"/proc/sched_debug\", \"/sys/firmware\", \"/proc/scsi\"],"
        "  \"readonlyPaths\": [\"/proc/bus\", \"/proc/fs\", \"/proc/irq\", \"/proc/sys\", \"/proc/sysrq-trigger\"]"
        " }"
        "}";

/* Docker's default capabilities. */
static const char *const default_caps[] = {
        "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",     "CAP_MKNOD",
        "CAP_NET_RAW", "CAP_SETGID",      "CAP_SETUID",           "CAP_SETFCAP",    "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",     "CAP_AUDIT_WRITE",
};

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

int container_layer_dirs(const char *type, const char *source, const char *options, char ***ret)
{
        char **v = calloc(64, sizeof(char *));
        size_t n = 0;
        if (!v)
                return -ENOMEM;
        if (type && strcmp(type, "bind") == 0) {
                v[n++] = strdup(source);
                *ret = v;
                return v[0] ? 0 : -ENOMEM;
        }
        _cleanup_free_ char *opts = strdup(options ? options : "");
        if (!opts) {
                free(v);
                return -ENOMEM;
        }
        char *upper = NULL, *lower = NULL, *save = NULL;
        for (char *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
                if (strncmp(o, "upperdir=", 9) == 0)
                        upper = o + 9;
                else if (strncmp(o, "lowerdir=", 9) == 0)
                        lower = o + 9;
        }
        if (upper)
                v[n++] = strdup(upper);
        if (lower) {
                char *s2 = NULL;
                for (char *l = strtok_r(lower, ":", &s2); l && n < 63; l = strtok_r(NULL, ":", &s2))
                        v[n++] = strdup(l);
        }
        for (size_t i = 0; i < n; i++)
                if (!v[i]) {
                        strv_free(v);
                        return -ENOMEM;
                }
        *ret = v;
        return 0;
}

/* The first layer that has path: its content (NULL when none has it). */
static char *layers_read(char *const *dirs, const char *path)
{
        for (size_t i = 0; dirs && dirs[i]; i++) {
                _cleanup_close_ int root = open(dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (root < 0)
                        continue;
                int fd = fs_open_in_root(root, path, O_RDONLY | O_NOFOLLOW, 0);
                if (fd < 0) {
                        if (fd == -ENOENT)
                                continue;
                        return NULL;  /* a whiteout (0:0 device) or unreadable: hidden */
                }
                char fdp[32];
                char *data = NULL;
                int r = fs_read_file(fs_fd_path(fd, fdp, sizeof(fdp)), 4u << 20, &data, NULL);
                close(fd);
                return r < 0 ? NULL : data;
        }
        return NULL;
}

static bool parse_u32(const char *s, uint32_t *ret)
{
        char *end;
        if (!*s || *s < '0' || *s > '9')
                return false;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (*end || errno || v > UINT32_MAX)
                return false;
        *ret = (uint32_t) v;
        return true;
}

/* Field 0 == name (or, when by_id, field idx == id): fields idx into ret. */
static bool db_lookup(const char *data, const char *name, int idx, uint32_t *ret_a, uint32_t *ret_b)
{
        if (!data)
                return false;
        const char *line = data;
        while (*line) {
                const char *eol = strchr(line, '\n');
                size_t len = eol ? (size_t) (eol - line) : strlen(line);
                char buf[1024];
                if (len < sizeof(buf)) {
                        memcpy(buf, line, len);
                        buf[len] = '\0';
                        char *f[8] = { 0 };
                        int nf = 0;
                        char *p = buf;
                        while (nf < 8) {
                                f[nf++] = p;
                                char *c = strchr(p, ':');
                                if (!c)
                                        break;
                                *c = '\0';
                                p = c + 1;
                        }
                        if (nf > idx && strcmp(f[0], name) == 0 && parse_u32(f[idx], ret_a)) {
                                if (ret_b && (nf <= idx + 1 || !parse_u32(f[idx + 1], ret_b)))
                                        return false;
                                return true;
                        }
                }
                line += len + (eol ? 1 : 0);
        }
        return false;
}

int container_user_resolve(const char *user, char *const *layer_dirs, uint32_t *ret_uid, uint32_t *ret_gid,
                           struct berr *e)
{
        _cleanup_free_ char *u = strdup(user ? user : "");
        if (!u)
                return berr_set(e, ENOMEM, "user");
        char *g = strchr(u, ':');
        if (g)
                *g++ = '\0';
        uint32_t uid = 0, gid = 0;
        bool have_gid = false;
        if (*u == '\0') {
                uid = 0;
        } else if (parse_u32(u, &uid)) {
                /* numeric: the primary group from passwd when it names the uid, else 0 */
                _cleanup_free_ char *pw = layers_read(layer_dirs, "/etc/passwd");
                if (pw) {
                        const char *line = pw;
                        while (*line && !have_gid) {
                                const char *eol = strchr(line, '\n');
                                size_t len = eol ? (size_t) (eol - line) : strlen(line);
                                unsigned a, b;
                                char nm[256];
                                _cleanup_free_ char *l = strndup(line, len);
                                if (l && sscanf(l, "%255[^:]:%*[^:]:%u:%u", nm, &a, &b) == 3 && a == uid) {
                                        gid = b;
                                        have_gid = true;
                                }
                                line += len + (eol ? 1 : 0);
                        }
                }
        } else {
                _cleanup_free_ char *pw = layers_read(layer_dirs, "/etc/passwd");
                if (!pw)
                        return berr_setx(e, EINVAL, "unable to find user %s: no /etc/passwd in the image", u);
                if (!db_lookup(pw, u, 2, &uid, &gid))
                        return berr_setx(e, EINVAL, "unable to find user %s: no matching entries in passwd file", u);
                have_gid = true;
        }
        if (g && *g) {
                if (!parse_u32(g, &gid)) {
                        _cleanup_free_ char *gr = layers_read(layer_dirs, "/etc/group");
                        if (!gr || !db_lookup(gr, g, 2, &gid, NULL))
                                return berr_setx(e, EINVAL, "unable to find group %s: no matching entries in group file",
                                                 g);
                }
        }
        *ret_uid = uid;
        *ret_gid = gid;
        return 0;
}

static json_t *strv_json(json_t *arr, char *const *v)
{
        for (size_t i = 0; v && v[i]; i++)
                json_array_append_new(arr, json_string(v[i]));
        return arr;
}

/* env with each "K=V" of over replacing K, or appended. */
static void env_merge(json_t *env, char *const *over)
{
        for (size_t i = 0; over && over[i]; i++) {
                const char *eq = strchr(over[i], '=');
                size_t klen = eq ? (size_t) (eq - over[i]) : strlen(over[i]);
                size_t k;
                json_t *v;
                bool done = false;
                json_array_foreach(env, k, v) {
                        const char *s = json_string_value(v);
                        if (s && strncmp(s, over[i], klen) == 0 && (s[klen] == '=' || s[klen] == '\0')) {
                                json_array_set_new(env, k, json_string(over[i]));
                                done = true;
                                break;
                        }
                }
                if (!done)
                        json_array_append_new(env, json_string(over[i]));
        }
}

static bool env_has(json_t *env, const char *key)
{
        size_t k, n = strlen(key);
        json_t *v;
        json_array_foreach(env, k, v) {
                const char *s = json_string_value(v);
                if (s && strncmp(s, key, n) == 0 && s[n] == '=')
                        return true;
        }
        return false;
}

int container_spec_default(const char *id, const json_t *image_config, const struct container_spec_options *o,
                           char *const *layer_dirs, json_t **ret, struct berr *e)
{
        static const struct container_spec_options none = { 0 };
        json_error_t je;
        if (!o)
                o = &none;
        json_t *spec = json_loads(default_spec, 0, &je);
        if (!spec)
                return berr_setx(e, EINVAL, "default spec: %s", je.text);
        json_t *cfg = json_object_get(image_config, "config");
        json_t *proc = json_object_get(spec, "process");
        json_t *caps = json_object_get(proc, "capabilities");
        const char *sets[] = { "bounding", "effective", "permitted" };
        for (size_t i = 0; i < 3; i++)
                for (size_t k = 0; k < sizeof(default_caps) / sizeof(default_caps[0]); k++)
                        json_array_append_new(json_object_get(caps, sets[i]), json_string(default_caps[k]));

        /* args: Entrypoint + (the caller's args or Cmd) */
        json_t *args = json_array();
        size_t k;
        json_t *v;
        json_array_foreach(json_object_get(cfg, "Entrypoint"), k, v)
                json_array_append(args, v);
        if (o->args && o->args[0])
                strv_json(args, o->args);
        else
                json_array_foreach(json_object_get(cfg, "Cmd"), k, v)
                        json_array_append(args, v);
        json_object_set_new(proc, "args", args);
        if (json_array_size(args) == 0) {
                json_decref(spec);
                return berr_setx(e, EINVAL, "no command specified: the image has no Cmd or Entrypoint");
        }

        json_t *env = json_array();
        json_array_foreach(json_object_get(cfg, "Env"), k, v)
                if (json_is_string(v))
                        json_array_append(env, v);
        if (!env_has(env, "PATH"))
                json_array_insert_new(env, 0, json_string(DEFAULT_PATH));
        if (o->terminal && !env_has(env, "TERM"))
                json_array_append_new(env, json_string("TERM=xterm"));
        env_merge(env, o->env);
        json_object_set_new(proc, "env", env);

        const char *wd = json_string_value(json_object_get(cfg, "WorkingDir"));
        const char *cwd = o->cwd ? o->cwd : (wd && *wd ? wd : "/");
        if (cwd[0] != '/') {
                json_decref(spec);
                return berr_setx(e, EINVAL, "the working directory \"%s\" is not absolute", cwd);
        }
        json_object_set_new(proc, "cwd", json_string(cwd));
        json_object_set_new(proc, "terminal", json_boolean(o->terminal));

        const char *user = o->user ? o->user : json_string_value(json_object_get(cfg, "User"));
        uint32_t uid = 0, gid = 0;
        int r = container_user_resolve(user, layer_dirs, &uid, &gid, e);
        if (r < 0) {
                json_decref(spec);
                return r;
        }
        json_object_set_new(proc, "user", json_pack("{s:I, s:I}", "uid", (json_int_t) uid, "gid", (json_int_t) gid));

        char host[64];
        snprintf(host, sizeof(host), "%s", id);
        json_object_set_new(spec, "hostname", json_string(host));
        json_t *lx = json_object_get(spec, "linux");
        char cg[200];
        snprintf(cg, sizeof(cg), "/berth/%s", id);
        json_object_set_new(lx, "cgroupsPath", json_string(cg));
        if (o->memory > 0)
                json_object_set_new(json_object_get(lx, "resources"), "memory",
                                    json_pack("{s:I}", "limit", (json_int_t) o->memory));
        *ret = spec;
        return 0;
}

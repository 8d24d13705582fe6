/* docker import (POST /images/create?fromSrc=-): the request body, a root
 * filesystem as a tar (plain, or compressed with gzip, bzip2, xz or zstd),
 * becomes an image of one layer.
 *
 * The engine writes a docker save archive of that image (manifest.json,
 * the config, the layer as a plain tar) to an unnamed file, and the
 * supervisor imports it as it imports docker load's archives: the layer is
 * checked and unpacked there, and the image is named after RepoTags. */
#include "image-import.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "err.h"
#include "log.h"
#include "time-util.h"

#define BLOCK (64 << 10)

void image_hex(const unsigned char *md, size_t n, char *out)
{
        for (size_t i = 0; i < n; i++)
                sprintf(out + 2 * i, "%02x", md[i]);
}

/* The body, whatever its compression, as a plain tar in out; its sha256
 * in diff_hex. */
static int decompress(int in, int out, char diff_hex[65], char *err, size_t errlen)
{
        struct archive *a = archive_read_new();
        gnutls_hash_hd_t h = NULL;
        _cleanup_free_ char *buf = malloc(BLOCK);
        int r = 0;

        if (!a || !buf || gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0) {
                if (a)
                        archive_read_free(a);
                return err_buf(err, errlen, -ENOMEM, "%s", "engine: out of memory");
        }
        archive_read_support_filter_all(a);
        archive_read_support_format_raw(a);
        struct archive_entry *ent;
        if (lseek(in, 0, SEEK_SET) < 0 || archive_read_open_fd(a, in, BLOCK) != ARCHIVE_OK ||
            archive_read_next_header(a, &ent) != ARCHIVE_OK) {
                r = err_buf(err, errlen, -EINVAL, "the root filesystem cannot be read: %s",
                          archive_error_string(a) ?: "empty");
                goto out;
        }
        for (;;) {
                la_ssize_t n = archive_read_data(a, buf, BLOCK);
                if (n == 0)
                        break;
                if (n < 0) {
                        r = err_buf(err, errlen, -EINVAL, "the root filesystem cannot be read: %s",
                                  archive_error_string(a) ?: "?");
                        goto out;
                }
                gnutls_hash(h, buf, (size_t) n);
                for (la_ssize_t off = 0; off < n;) {
                        ssize_t w = write(out, buf + off, (size_t) (n - off));
                        if (w < 0) {
                                r = err_buf(err, errlen, -errno, "engine: writing the layer: %s", strerror(errno));
                                goto out;
                        }
                        off += w;
                }
        }
out:
        archive_read_free(a);
        unsigned char md[32];
        gnutls_hash_deinit(h, md);
        image_hex(md, sizeof(md), diff_hex);
        return r;
}

/* The first word of a Dockerfile instruction, upper-cased, and the rest. */
static const char *instruction(const char *s, char *word, size_t len)
{
        while (isspace((unsigned char) *s))
                s++;
        size_t n = 0;
        while (*s && !isspace((unsigned char) *s)) {
                if (n + 1 < len)
                        word[n++] = (char) toupper((unsigned char) *s);
                s++;
        }
        word[n] = '\0';
        while (isspace((unsigned char) *s))
                s++;
        return s;
}

/* The JSON form (["a", "b"]) or the shell form of CMD and ENTRYPOINT. */
static json_t *exec_form(const char *args)
{
        if (*args == '[') {
                json_t *v = json_loads(args, 0, NULL);
                size_t i;
                json_t *x;
                bool ok = json_is_array(v);
                json_array_foreach(v, i, x) ok = ok && json_is_string(x);
                if (ok)
                        return v;
                json_decref(v);
        }
        return json_pack("[s, s, s]", "/bin/sh", "-c", args);
}

/* A word with its quotes taken off. */
static char *unquote(const char *s, size_t n)
{
        if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
                s++;
                n -= 2;
        }
        return strndup(s, n);
}

/* key=value pairs (ENV, LABEL); ENV also takes "key value". */
static int pairs(const char *args, bool env, json_t *obj)
{
        if (env && !strchr(args, '=')) {
                const char *sp = args;
                while (*sp && !isspace((unsigned char) *sp))
                        sp++;
                const char *v = sp;
                while (isspace((unsigned char) *v))
                        v++;
                _cleanup_free_ char *k = strndup(args, (size_t) (sp - args));
                if (!k || !*k)
                        return -EINVAL;
                json_object_set_new(obj, k, json_string(v));
                return 0;
        }
        const char *p = args;
        while (*p) {
                const char *start = p;
                char q = 0;
                while (*p && (q || !isspace((unsigned char) *p))) {
                        if (*p == '"' || *p == '\'')
                                q = q == *p ? 0 : q ? q : *p;
                        p++;
                }
                const char *eq = memchr(start, '=', (size_t) (p - start));
                if (!eq || eq == start)
                        return -EINVAL;
                _cleanup_free_ char *k = strndup(start, (size_t) (eq - start));
                _cleanup_free_ char *v = unquote(eq + 1, (size_t) (p - eq - 1));
                if (!k || !v)
                        return -ENOMEM;
                json_object_set_new(obj, k, json_string(v));
                while (isspace((unsigned char) *p))
                        p++;
        }
        return 0;
}

/* The image config's "config" from the --change instructions. */
int image_apply_changes(json_t *cfg, json_t *changes, char *err, size_t errlen)
{
        size_t i;
        json_t *c;
        json_array_foreach(changes, i, c)
        {
                char word[16];
                const char *line = json_string_value(c);
                const char *args = instruction(line ? line : "", word, sizeof(word));
                if (!*word)
                        continue;
                if (!*args)
                        return err_buf(err, errlen, -EINVAL, "%s requires at least one argument", word);
                if (!strcmp(word, "CMD") || !strcmp(word, "ENTRYPOINT")) {
                        json_object_set_new(cfg, !strcmp(word, "CMD") ? "Cmd" : "Entrypoint", exec_form(args));
                } else if (!strcmp(word, "ENV") || !strcmp(word, "LABEL")) {
                        bool env = !strcmp(word, "ENV");
                        json_t *kv = json_object();
                        if (pairs(args, env, kv) < 0) {
                                json_decref(kv);
                                return err_buf(err, errlen, -EINVAL, "%s must have the form key=value", word);
                        }
                        if (env) {
                                json_t *list = json_object_get(cfg, "Env");
                                if (!json_is_array(list))
                                        json_object_set_new(cfg, "Env", list = json_array());
                                const char *k;
                                json_t *v;
                                json_object_foreach(kv, k, v)
                                {
                                        size_t j, klen = strlen(k);
                                        json_t *old;
                                        json_array_foreach(list, j, old)
                                        {
                                                const char *o = json_string_value(old);
                                                if (o && !strncmp(o, k, klen) && o[klen] == '=') {
                                                        json_array_remove(list, j);
                                                        break;
                                                }
                                        }
                                        _cleanup_free_ char *e = NULL;
                                        if (asprintf(&e, "%s=%s", k, json_string_value(v)) >= 0)
                                                json_array_append_new(list, json_string(e));
                                }
                        } else {
                                json_t *labels = json_object_get(cfg, "Labels");
                                if (!json_is_object(labels))
                                        json_object_set_new(cfg, "Labels", labels = json_object());
                                json_object_update(labels, kv);
                        }
                        json_decref(kv);
                } else if (!strcmp(word, "EXPOSE") || !strcmp(word, "VOLUME")) {
                        bool expose = !strcmp(word, "EXPOSE");
                        json_t *set = json_object_get(cfg, expose ? "ExposedPorts" : "Volumes");
                        if (!json_is_object(set))
                                json_object_set_new(cfg, expose ? "ExposedPorts" : "Volumes", set = json_object());
                        json_t *list = !expose && *args == '[' ? exec_form(args) : NULL;
                        if (list && json_array_size(list) && strcmp(json_string_value(json_array_get(list, 0)),
                                                                   "/bin/sh")) {
                                size_t j;
                                json_t *v;
                                json_array_foreach(list, j, v) json_object_set_new(set, json_string_value(v),
                                                                                   json_object());
                        } else {
                                for (const char *p = args; *p;) {
                                        size_t n = strcspn(p, " \t");
                                        _cleanup_free_ char *w = strndup(p, n);
                                        if (w && *w) {
                                                char key[64];
                                                if (expose && !strchr(w, '/'))
                                                        snprintf(key, sizeof(key), "%s/tcp", w);
                                                else
                                                        snprintf(key, sizeof(key), "%s", w);
                                                json_object_set_new(set, expose ? key : w, json_object());
                                        }
                                        p += n;
                                        p += strspn(p, " \t");
                                }
                        }
                        json_decref(list);
                } else if (!strcmp(word, "WORKDIR") || !strcmp(word, "USER") || !strcmp(word, "STOPSIGNAL")) {
                        json_object_set_new(cfg,
                                            !strcmp(word, "WORKDIR") ? "WorkingDir"
                                            : !strcmp(word, "USER")  ? "User"
                                                                     : "StopSignal",
                                            json_string(args));
                } else {
                        return err_buf(err, errlen, -EINVAL, "%s is not a valid change command", word);
                }
        }
        return 0;
}

int image_archive_copy(struct archive *a, int fd)
{
        _cleanup_free_ char *buf = malloc(BLOCK);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, buf, BLOCK);
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return 0;
                if (archive_write_data(a, buf, (size_t) n) != n)
                        return -EIO;
        }
}

int image_archive_add(struct archive *a, const char *name, const void *data, size_t len, int src)
{
        time_t mtime = time(NULL);
        struct stat st;
        if (src >= 0) {
                if (fstat(src, &st) < 0 || lseek(src, 0, SEEK_SET) < 0)
                        return -errno;
                len = (size_t) st.st_size;
        }
        struct archive_entry *e = archive_entry_new();
        if (!e)
                return -ENOMEM;
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, (la_int64_t) len);
        archive_entry_set_mtime(e, mtime, 0);
        int r = archive_write_header(a, e) == ARCHIVE_OK ? 0 : -EIO;
        archive_entry_free(e);
        if (r == 0 && src < 0 && len && archive_write_data(a, data, len) != (la_ssize_t) len)
                r = -EIO;
        if (r == 0 && src >= 0)
                r = image_archive_copy(a, src);
        return r;
}

int engine_image_import(const struct image_import *im, int *ret_fd, char ret_id[72], char *err, size_t errlen)
{
        _cleanup_close_ int layer = open(im->tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        int out = open(im->tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        /* before any goto: the cleanups run at every exit */
        _cleanup_free_ char *diff_id = NULL, *comment = NULL, *config_s = NULL, *manifest_s = NULL;
        char diff[65];
        int r;

        if (layer < 0 || out < 0) {
                r = err_buf(err, errlen, -errno, "engine: a file in %s", im->tmpdir);
                goto fail;
        }
        if ((r = decompress(im->body_fd, layer, diff, err, errlen)) < 0)
                goto fail;

        char now[40];
        time_now_rfc3339_nano(now, sizeof(now));
        json_t *cfg = json_object();
        if ((r = image_apply_changes(cfg, im->changes, err, errlen)) < 0) {
                json_decref(cfg);
                goto fail;
        }
        if (asprintf(&diff_id, "sha256:%s", diff) < 0 ||
            asprintf(&comment, "%s", im->message && *im->message ? im->message : "Imported from -") < 0) {
                json_decref(cfg);
                r = err_buf(err, errlen, -ENOMEM, "%s", "engine: out of memory");
                goto fail;
        }
        json_t *config = json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:[s]}, s:[{s:s, s:s, s:s}]}", "architecture",
                                   im->arch, "os", "linux", "created", now, "config", cfg, "rootfs", "type",
                                   "layers", "diff_ids", diff_id, "history", "created", now, "created_by", "",
                                   "comment", comment);
        config_s = config ? json_dumps(config, JSON_COMPACT) : NULL;
        json_decref(config);
        if (!config_s) {
                r = err_buf(err, errlen, -ENOMEM, "%s", "engine: out of memory");
                goto fail;
        }
        unsigned char md[32];
        char id[65];
        gnutls_hash_fast(GNUTLS_DIG_SHA256, config_s, strlen(config_s), md);
        image_hex(md, sizeof(md), id);

        char config_name[80], layer_name[80];
        snprintf(config_name, sizeof(config_name), "%s.json", id);
        snprintf(layer_name, sizeof(layer_name), "%s/layer.tar", diff);
        json_t *manifest = json_pack("[{s:s, s:[s], s:[s]}]", "Config", config_name, "RepoTags", im->name, "Layers",
                                     layer_name);
        manifest_s = manifest ? json_dumps(manifest, JSON_COMPACT) : NULL;
        json_decref(manifest);
        struct archive *a = archive_write_new();
        if (!manifest_s || !a) {
                if (a)
                        archive_write_free(a);
                r = err_buf(err, errlen, -ENOMEM, "%s", "engine: out of memory");
                goto fail;
        }
        archive_write_set_format_pax_restricted(a);
        r = archive_write_open_fd(a, out) == ARCHIVE_OK ? 0 : -EIO;
        if (r == 0)
                r = image_archive_add(a, config_name, config_s, strlen(config_s), -1);
        if (r == 0)
                r = image_archive_add(a, layer_name, NULL, 0, layer);
        if (r == 0)
                r = image_archive_add(a, "manifest.json", manifest_s, strlen(manifest_s), -1);
        if (r == 0 && archive_write_close(a) != ARCHIVE_OK)
                r = -EIO;
        if (r < 0)
                err_buf(err, errlen, r, "engine: writing the image archive: %s", archive_error_string(a) ?: "?");
        archive_write_free(a);
        if (r < 0)
                goto fail;
        snprintf(ret_id, 72, "sha256:%s", id);
        *ret_fd = out;
        return 0;
fail:
        if (out >= 0)
                close(out);
        return r;
}

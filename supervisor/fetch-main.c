/* berth-fetch: pulls an image into a content store and looks at the store,
 * without the daemon. A driver for tests and people while berth-supervisor
 * is being built:
 *
 *   berth-fetch [--root DIR] [--insecure-registry HOST]... [--auth-config FILE]
 *               [--username U --password P] [--mirror URL]... [--parallel N]
 *               [--progress] [--platform os/arch[/variant]] [--debug] pull REF
 *   berth-fetch [--root DIR] content ls | info DIGEST | rm DIGEST | gc
 *   berth-fetch [pull options] [--allow-devices] unpack REF
 *   berth-fetch [pull options] [--allow-devices] mount REF DIR [KEY]
 *   berth-fetch [--root DIR] snapshots ls | rm KEY | usage KEY | mounts KEY
 *   berth-fetch [--root DIR] [--platform P] images ls | inspect NAME | tag SRC DST | rm NAME
 *   berth-fetch [--root DIR] [--platform P] images export NAME... -o FILE [--format docker|oci]
 *   berth-fetch [--root DIR] [--platform P] images import FILE | unpack NAME
 *   berth-fetch [--root DIR] [--debug] worker pull|import|export|auth --job-json FILE|-
 *
 * worker is berth-supervisor's: the daemon links neither libcurl nor
 * libarchive and runs every pull, import and export as a berth-fetch
 * worker. The request is one JSON object (on stdin with "-"); the worker
 * writes one JSON object per line on stdout, {"event": "resolved" |
 * "progress" | "result" | "error", ...} (worker_* below), and records no
 * image name for a pull (the daemon does). It dies with its parent
 * (PR_SET_PDEATHSIG) and on a closed stdout (SIGPIPE).
 * A pull (also by unpack and mount) records the image under its normalised
 * reference. images ls prints "<name> <target digest> <size>" per image,
 * the size being that of all its blobs for the platform; inspect prints
 * JSON. images export writes an OCI layout tarball that is also a docker save
 * archive (--format docker, the default) or only an OCI layout; images
 * import reads either and prints "imported <name>" per image; images unpack
 * unpacks a recorded image without pulling (as unpack does after its pull).
 * images rm removes the name only; content gc then deletes the blobs
 * no image reaches and prints "removed <digest>" for each.
 * unpack pulls the image, then prints one "chain <chain id>" line per layer
 * and "path <dir>", the top snapshot's fs directory. mount prepares an
 * active snapshot KEY (default: DIR made absolute) on the top chain id and
 * mounts it on DIR; undo with umount DIR and snapshots rm KEY.
 * pull prints one "<kind> <digest>" line per object: "index" (when the
 * reference named an index), "manifest", "config", then "layer" in order.
 * Blobs download --parallel N at once (default 3); unpack and mount apply
 * each layer as soon as it and those below it are stored. With --progress
 * (or when stderr is a terminal) stderr gets one line per blob and status,
 * "<digest prefix> <status> [<done>/<total> MB]", and during a download one
 * every second or so.
 * Errors are one line on stderr, "supervisor: <cause>", and exit status 1. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "content-store.h"
#include "err.h"
#include "image-archive.h"
#include "image-manifest.h"
#include "image-pull.h"
#include "image-reference.h"
#include "image-store.h"
#include "image-unpack.h"
#include "json-util.h"
#include "log.h"
#include "registry-auth.h"
#include "registry-client.h"
#include "snapshot-overlay.h"

#define DEFAULT_ROOT "/var/lib/berth"

struct opts {
        const char *root;
        const char *auth_config;
        const char *username, *password;
        char **insecure;
        size_t n_insecure;
        char **mirrors;
        size_t n_mirrors;
        unsigned parallel;
        bool progress;
        struct image_platform platform;
        bool allow_devices;
        enum snapshot_mode snapshotter; /* --snapshotter; AUTO: $BERTH_SNAPSHOTTER, the root's, a probe */
};

static void usage(FILE *f)
{
        fprintf(f, "Usage: berth-fetch [--root DIR] [--insecure-registry HOST]... [--auth-config FILE]\n"
                   "                   [--username USER --password PASSWORD] [--mirror URL]...\n"
                   "                   [--parallel N] [--progress] [--platform os/arch[/variant]] [--debug] pull REF\n"
                   "       berth-fetch [--root DIR] content ls | info DIGEST | rm DIGEST | gc\n"
                   "       berth-fetch [pull options] [--allow-devices] unpack REF\n"
                   "       berth-fetch [pull options] [--allow-devices] mount REF DIR [KEY]\n"
                   "       berth-fetch [--root DIR] snapshots ls | rm KEY | usage KEY | mounts KEY\n"
                   "       berth-fetch [--root DIR] [--platform P] images ls | inspect NAME | tag SRC DST | rm NAME\n"
                   "       berth-fetch [--root DIR] [--platform P] images export NAME... -o FILE [--format docker|oci]\n"
                   "       berth-fetch [--root DIR] [--platform P] [--allow-devices] images import FILE | unpack NAME\n"
                   "       berth-fetch [--root DIR] worker pull|import|export|auth --job-json FILE|- (berth-supervisor's)\n"
                   "\n"
                   "--snapshotter auto|overlay|copy chooses the snapshotter (default auto: $BERTH_SNAPSHOTTER,\n"
                   "else the mode recorded in the root, else a probe of overlayfs).\n"
                   "pull prints \"index\", \"manifest\", \"config\" and \"layer\" lines, each with a digest.\n"
                   "The store is DIR/supervisor/content (DIR defaults to " DEFAULT_ROOT ").\n");
}

static int fail(const struct berr *e)
{
        log_error("%s", e->msg);
        return 1;
}

static int open_store(const struct opts *o, struct content_store **ret, struct berr *e)
{
        _cleanup_free_ char *dir = NULL;
        if (asprintf(&dir, "%s/supervisor/content", o->root) < 0)
                return berr_set(e, ENOMEM, "content store");
        return content_store_open(dir, ret, e);
}

static int open_images(const struct opts *o, struct content_store *cs, struct image_store **ret, struct berr *e)
{
        _cleanup_free_ char *dir = NULL;
        if (asprintf(&dir, "%s/supervisor", o->root) < 0)
                return berr_set(e, ENOMEM, "image store");
        return image_store_open(dir, cs, ret, e);
}

/* Records a pulled image under its normalised reference. */
static int record_image(const struct opts *o, struct content_store *cs, const struct image_ref *ref,
                        const struct image_pull_result *res, struct berr *e)
{
        struct image_store *is = NULL;
        char name[IMAGE_REF_STRING_MAX];
        bool index = res->index_digest[0] != '\0';
        int r = open_images(o, cs, &is, e);
        if (r < 0)
                return r;
        r = image_store_put(is, image_ref_string(ref, name, sizeof(name)),
                            index ? res->index_media_type : res->manifest_media_type,
                            index ? res->index_digest : res->manifest_digest, res->config_digest, e);
        image_store_free(is);
        return r;
}

/* Progress on stderr: a line per status change, and about every second
 * during a download. Calls are never concurrent (image_pull_ex). */
struct progress_display {
        char last_digest[CONTENT_DIGEST_MAX];
        enum image_pull_status last_st;
        struct timespec last;
};

static void show_progress(void *ud, const char *digest, enum image_pull_status st, uint64_t current, uint64_t total)
{
        struct progress_display *d = ud;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        bool same = strcmp(d->last_digest, digest) == 0 && d->last_st == st;
        if (same && (st != IMAGE_PULL_DOWNLOADING ||
                     (now.tv_sec - d->last.tv_sec) * 1000 + (now.tv_nsec - d->last.tv_nsec) / 1000000 < 1000))
                return;
        snprintf(d->last_digest, sizeof(d->last_digest), "%s", digest);
        d->last_st = st;
        d->last = now;
        const char *hex = strchr(digest, ':');
        hex = hex ? hex + 1 : digest;
        if (st == IMAGE_PULL_DOWNLOADING || st == IMAGE_PULL_VERIFYING || st == IMAGE_PULL_DOWNLOADED ||
            st == IMAGE_PULL_EXISTS)
                fprintf(stderr, "%.12s %s %.1f/%.1f MB\n", hex, image_pull_status_string(st), current / 1e6,
                        total / 1e6);
        else
                fprintf(stderr, "%.12s %s\n", hex, image_pull_status_string(st));
}

/* Pulls refstr into cs (opened here) and records the image; the caller
 * frees res and cs. With sn, the layers are unpacked into ret_unpack too. */
static int do_pull(const struct opts *o, const char *refstr, struct content_store **cs, struct image_pull_result *res,
                   struct snapshot_overlay *sn, struct image_unpack_result *ret_unpack, struct berr *e)
{
        struct image_ref ref;
        struct registry_client *rc = NULL;
        if (image_ref_parse(refstr, &ref, e) < 0)
                return -e->err;
        struct registry_options ro = {
                .auth_config = o->auth_config,
                .username = o->username,
                .password = o->password,
                .insecure = o->insecure,
                .mirrors = o->mirrors,
                .retries = -1,
        };
        struct progress_display display = { .last_st = IMAGE_PULL_FAILED };
        struct image_pull_progress progress = { show_progress, &display };
        struct image_unpack_options uo = { .allow_devices = o->allow_devices };
        struct image_pull_options po = {
                .platform = &o->platform,
                .max_parallel = o->parallel,
                .progress = o->progress || isatty(STDERR_FILENO) ? &progress : NULL,
                .sn = sn,
                .unpack = &uo,
        };
        int r = open_store(o, cs, e);
        if (r >= 0)
                r = registry_client_new(&ref, &ro, &rc, e);
        if (r >= 0)
                r = image_pull_ex(rc, *cs, &ref, &po, res, ret_unpack, e);
        if (r >= 0)
                r = record_image(o, *cs, &ref, res, e);
        registry_client_free(rc);
        return r;
}

static int cmd_pull(const struct opts *o, const char *refstr)
{
        struct berr e = { 0 };
        struct content_store *cs = NULL;
        struct image_pull_result res = { 0 };
        int ret = 1;

        if (do_pull(o, refstr, &cs, &res, NULL, NULL, &e) < 0) {
                fail(&e);
                goto out;
        }
        if (res.index_digest[0])
                printf("index %s\n", res.index_digest);
        printf("manifest %s\n", res.manifest_digest);
        printf("config %s\n", res.config_digest);
        for (size_t i = 0; i < res.n_layers; i++)
                printf("layer %s\n", res.layers[i]);
        log_debug("%zu blob(s) downloaded, manifest type %s", res.n_fetched, res.manifest_media_type);
        ret = fflush(stdout) == 0 ? 0 : 1;
out:
        image_pull_result_done(&res);
        content_store_free(cs);
        return ret;
}

static int open_snapshots(const struct opts *o, struct snapshot_overlay **ret, struct berr *e)
{
        _cleanup_free_ char *dir = NULL;
        if (asprintf(&dir, "%s/supervisor", o->root) < 0)
                return berr_set(e, ENOMEM, "snapshots");
        return snapshot_overlay_open_ex(dir, o->snapshotter, ret, e);
}

/* Pull and unpack, each layer as soon as it is there. */
static int do_unpack(const struct opts *o, const char *refstr, struct snapshot_overlay **sn,
                     struct image_unpack_result *res, struct berr *e)
{
        struct content_store *cs = NULL;
        struct image_pull_result pr = { 0 };
        int r = open_snapshots(o, sn, e);
        if (r >= 0)
                r = do_pull(o, refstr, &cs, &pr, *sn, res, e);
        image_pull_result_done(&pr);
        content_store_free(cs);
        return r;
}

/* "chain <id>" per layer and "path <dir>" of the top snapshot. */
static void print_unpacked(struct snapshot_overlay *sn, const struct image_unpack_result *res, struct berr *e,
                           int *r)
{
        _cleanup_free_ char *path = NULL;
        for (size_t i = 0; i < res->n_layers; i++)
                printf("chain %s\n", res->chain_ids[i]);
        if (res->n_layers == 0)
                return;
        *r = snapshot_overlay_path(sn, res->chain_ids[res->n_layers - 1], &path, e);
        if (*r >= 0)
                printf("path %s\n", path);
}

static int cmd_unpack(const struct opts *o, const char *refstr)
{
        struct berr e = { 0 };
        struct snapshot_overlay *sn = NULL;
        struct image_unpack_result res = { 0 };
        int ret = 1;

        if (do_unpack(o, refstr, &sn, &res, &e) < 0) {
                fail(&e);
                goto out;
        }
        int r = 0;
        print_unpacked(sn, &res, &e, &r);
        if (r < 0) {
                fail(&e);
                goto out;
        }
        log_debug("%zu layer(s) applied", res.n_applied);
        ret = fflush(stdout) == 0 ? 0 : 1;
out:
        image_unpack_result_done(&res);
        snapshot_overlay_free(sn);
        return ret;
}

static int cmd_mount(const struct opts *o, const char *refstr, const char *dir, const char *keyarg)
{
        struct berr e = { 0 };
        struct snapshot_overlay *sn = NULL;
        struct image_unpack_result res = { 0 };
        struct snapshot_mount m = { 0 };
        char abs[PATH_MAX];
        int ret = 1;

        if (!realpath(dir, abs)) {
                log_error("mount point \"%s\": %s", dir, strerror(errno));
                return 1;
        }
        const char *key = keyarg ? keyarg : abs;
        if (do_unpack(o, refstr, &sn, &res, &e) < 0) {
                fail(&e);
                goto out;
        }
        if (snapshot_overlay_prepare(sn, key, res.n_layers ? res.chain_ids[res.n_layers - 1] : NULL, &m, &e) < 0) {
                fail(&e);
                goto out;
        }
        unsigned long flags = strcmp(m.type, "bind") == 0 ? MS_BIND | MS_REC : 0;
        if (mount(m.source, abs, strcmp(m.type, "bind") == 0 ? NULL : m.type, flags,
                  flags ? NULL : m.options) < 0) {
                log_error("mount of snapshot \"%s\" on \"%s\" (type %s, options %s) failed: %s", key, abs, m.type,
                          m.options, strerror(errno));
                if (snapshot_overlay_remove(sn, key, &e) < 0)
                        log_warn("removing snapshot \"%s\" (ignored): %s", key, e.msg);
                goto out;
        }
        printf("key %s\n", key);
        ret = fflush(stdout) == 0 ? 0 : 1;
out:
        snapshot_mount_done(&m);
        image_unpack_result_done(&res);
        snapshot_overlay_free(sn);
        return ret;
}

static int cmd_snapshots(const struct opts *o, int argc, char **argv)
{
        struct berr e = { 0 };
        struct snapshot_overlay *sn = NULL;
        int ret = 1;

        bool ls = argc == 1 && strcmp(argv[0], "ls") == 0;
        if (!ls && !(argc == 2 && (strcmp(argv[0], "rm") == 0 || strcmp(argv[0], "usage") == 0 ||
                                   strcmp(argv[0], "mounts") == 0))) {
                usage(stderr);
                return 2;
        }
        if (open_snapshots(o, &sn, &e) < 0)
                return fail(&e);
        if (ls) {
                struct snapshot_info *v = NULL;
                size_t n = 0;
                if (snapshot_overlay_list(sn, &v, &n, &e) < 0) {
                        fail(&e);
                        goto out;
                }
                for (size_t i = 0; i < n; i++)
                        printf("%s %s %s\n", v[i].key, snapshot_kind_string(v[i].kind), v[i].parent ? v[i].parent : "-");
                snapshot_infos_free(v, n);
        } else if (strcmp(argv[0], "rm") == 0) {
                if (snapshot_overlay_remove(sn, argv[1], &e) < 0) {
                        fail(&e);
                        goto out;
                }
        } else if (strcmp(argv[0], "usage") == 0) {
                uint64_t bytes, inodes;
                if (snapshot_overlay_usage(sn, argv[1], &bytes, &inodes, &e) < 0) {
                        fail(&e);
                        goto out;
                }
                printf("size %" PRIu64 "\ninodes %" PRIu64 "\n", bytes, inodes);
        } else {
                struct snapshot_mount m = { 0 };
                if (snapshot_overlay_mounts(sn, argv[1], &m, &e) < 0) {
                        fail(&e);
                        goto out;
                }
                printf("type %s\nsource %s\noptions %s\n", m.type, m.source, m.options);
                snapshot_mount_done(&m);
        }
        ret = fflush(stdout) == 0 ? 0 : 1;
out:
        snapshot_overlay_free(sn);
        return ret;
}

/* A name as given, normalised when it parses as a reference. */
static const char *image_name(const char *s, char buf[IMAGE_REF_STRING_MAX])
{
        struct image_ref ref;
        if (image_ref_parse(s, &ref, NULL) < 0)
                return s;
        return image_ref_string(&ref, buf, IMAGE_REF_STRING_MAX);
}

static int images_ls(const struct opts *o, struct image_store *is, struct berr *e)
{
        struct image_record *v = NULL;
        size_t n = 0;
        int r = image_store_list(is, &v, &n, e);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                uint64_t size;
                r = image_store_size(is, &v[i], &o->platform, &size, e);
                if (r >= 0)
                        printf("%s %s %" PRIu64 "\n", v[i].name, v[i].digest, size);
        }
        image_records_free(v, n);
        return r;
}

/* images export NAME... -o FILE [--format docker|oci] */
static int images_export(const struct opts *o, struct content_store *cs, struct image_store *is, int argc,
                         char **argv, struct berr *e)
{
        enum image_archive_format fmt = IMAGE_ARCHIVE_DOCKER;
        const char *out = NULL;
        _cleanup_free_ char *buf = malloc((size_t) argc * IMAGE_REF_STRING_MAX + 1);
        _cleanup_free_ const char **names = calloc((size_t) argc + 1, sizeof(char *));
        size_t n = 0;
        if (!buf || !names)
                return berr_set(e, ENOMEM, "export");
        for (int i = 0; i < argc; i++) {
                if ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) && i + 1 < argc) {
                        out = argv[++i];
                } else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) {
                        if (image_archive_format_parse(argv[++i], &fmt, e) < 0)
                                return -e->err;
                } else {
                        char *nb = buf + n * IMAGE_REF_STRING_MAX;
                        names[n++] = image_name(argv[i], nb);
                }
        }
        if (!out || n == 0)
                return berr_setx(e, EINVAL, "images export: NAME... and -o FILE are needed");
        return image_archive_export(is, cs, names, n, &o->platform, fmt, out, e);
}

static int images_import(const struct opts *o, struct content_store *cs, struct image_store *is, const char *path,
                         struct berr *e)
{
        _cleanup_strv_free_ char **names = NULL;
        int r = image_archive_import(is, cs, path, &o->platform, &names, e);
        for (size_t i = 0; r >= 0 && names[i]; i++)
                printf("imported %s\n", names[i]);
        return r;
}

/* Unpacks a recorded image (no pull). */
static int images_unpack(const struct opts *o, struct content_store *cs, struct image_store *is, const char *name,
                         struct berr *e)
{
        struct image_record rec = { 0 };
        struct image_manifest m = { 0 };
        struct snapshot_overlay *sn = NULL;
        struct image_unpack_result res = { 0 };
        char mdigest[CONTENT_DIGEST_MAX];
        int r = image_store_get(is, name, &rec, e);
        if (r >= 0)
                r = image_store_manifest(is, &rec, &o->platform, &m, mdigest, e);
        if (r >= 0)
                r = open_snapshots(o, &sn, e);
        if (r >= 0) {
                struct image_unpack_options uo = { .allow_devices = o->allow_devices };
                r = image_unpack(cs, sn, mdigest, &uo, &res, e);
        }
        if (r >= 0)
                print_unpacked(sn, &res, e, &r);
        image_unpack_result_done(&res);
        snapshot_overlay_free(sn);
        image_manifest_done(&m);
        image_record_done(&rec);
        return r;
}

static int cmd_images(const struct opts *o, int argc, char **argv)
{
        struct berr e = { 0 };
        struct content_store *cs = NULL;
        struct image_store *is = NULL;
        char name[IMAGE_REF_STRING_MAX], dst[IMAGE_REF_STRING_MAX];
        int r, ret = 1;

        const char *cmd = argc >= 1 ? argv[0] : "";
        if (!((strcmp(cmd, "ls") == 0 && argc == 1) ||
              ((strcmp(cmd, "inspect") == 0 || strcmp(cmd, "rm") == 0) && argc == 2) ||
              (strcmp(cmd, "tag") == 0 && argc == 3) || (strcmp(cmd, "export") == 0 && argc >= 4) ||
              ((strcmp(cmd, "import") == 0 || strcmp(cmd, "unpack") == 0) && argc == 2))) {
                usage(stderr);
                return 2;
        }
        r = open_store(o, &cs, &e);
        if (r >= 0)
                r = open_images(o, cs, &is, &e);
        if (r < 0) {
                fail(&e);
                goto out;
        }
        if (strcmp(cmd, "ls") == 0) {
                r = images_ls(o, is, &e);
        } else if (strcmp(cmd, "export") == 0) {
                r = images_export(o, cs, is, argc - 1, argv + 1, &e);
        } else if (strcmp(cmd, "import") == 0) {
                r = images_import(o, cs, is, argv[1], &e);
        } else if (strcmp(cmd, "unpack") == 0) {
                r = images_unpack(o, cs, is, image_name(argv[1], name), &e);
        } else if (strcmp(cmd, "inspect") == 0) {
                json_t *j = NULL;
                r = image_store_inspect(is, image_name(argv[1], name), &o->platform, &j, &e);
                if (r >= 0) {
                        r = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS) < 0 ? -EIO : 0;
                        putchar('\n');
                        json_decref(j);
                }
        } else if (strcmp(cmd, "tag") == 0) {
                struct image_ref ref;
                r = image_ref_parse(argv[2], &ref, &e);
                if (r >= 0)
                        r = image_store_tag(is, image_name(argv[1], name), image_ref_string(&ref, dst, sizeof(dst)),
                                            &e);
        } else {
                r = image_store_remove(is, image_name(argv[1], name), &e);
        }
        if (r < 0) {
                fail(&e);
                goto out;
        }
        ret = fflush(stdout) == 0 ? 0 : 1;
out:
        image_store_free(is);
        content_store_free(cs);
        return ret;
}

static int content_gc(const struct opts *o, struct content_store *cs, struct berr *e)
{
        struct image_store *is = NULL;
        _cleanup_strv_free_ char **removed = NULL;
        int r = open_images(o, cs, &is, e);
        if (r >= 0)
                r = image_store_gc(is, &removed, e);
        for (size_t i = 0; r >= 0 && removed[i]; i++)
                printf("removed %s\n", removed[i]);
        image_store_free(is);
        return r;
}

static int cmd_content(const struct opts *o, int argc, char **argv)
{
        struct berr e = { 0 };
        struct content_store *cs = NULL;
        int ret = 1;

        if (argc < 1 || ((strcmp(argv[0], "ls") == 0 || strcmp(argv[0], "gc") == 0) && argc != 1) ||
            ((strcmp(argv[0], "info") == 0 || strcmp(argv[0], "rm") == 0) && argc != 2)) {
                usage(stderr);
                return 2;
        }
        if (open_store(o, &cs, &e) < 0)
                return fail(&e);
        if (strcmp(argv[0], "ls") == 0) {
                _cleanup_free_ struct content_info *v = NULL;
                size_t n = 0;
                if (content_list(cs, &v, &n, &e) < 0) {
                        fail(&e);
                        goto out;
                }
                for (size_t i = 0; i < n; i++)
                        printf("%s %" PRIu64 "\n", v[i].digest, v[i].size);
        } else if (strcmp(argv[0], "info") == 0) {
                struct content_info info;
                if (content_info(cs, argv[1], &info, &e) < 0) {
                        fail(&e);
                        goto out;
                }
                printf("digest %s\nsize %" PRIu64 "\n", info.digest, info.size);
        } else if (strcmp(argv[0], "rm") == 0) {
                if (content_delete(cs, argv[1], &e) < 0) {
                        fail(&e);
                        goto out;
                }
        } else if (strcmp(argv[0], "gc") == 0) {
                if (content_gc(o, cs, &e) < 0) {
                        fail(&e);
                        goto out;
                }
        } else {
                log_error("unknown content command \"%s\"", argv[0]);
                goto out;
        }
        ret = fflush(stdout) == 0 ? 0 : 1;
out:
        content_store_free(cs);
        return ret;
}

/* ---------------------------------------------------------------- worker */

/* One event, one line on stdout, flushed at once: the daemon turns each
 * into its own events while the work goes on. A closed stdout (the daemon
 * is gone) ends the worker by SIGPIPE. */
static void worker_emit(json_t *ev)
{
        if (!ev)
                return;
        char *line = json_dumps(ev, JSON_COMPACT);
        json_decref(ev);
        if (!line)
                return;
        fputs(line, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        free(line);
}

static int worker_error(const struct berr *e)
{
        int err = e->err ? e->err : EIO;
        worker_emit(json_pack("{s:s, s:s, s:i}", "event", "error", "message", e->msg[0] ? e->msg : strerror(err),
                              "errno", err));
        return 1;
}

static void worker_progress(void *ud, const char *digest, enum image_pull_status st, uint64_t current,
                            uint64_t total)
{
        (void) ud;
        worker_emit(json_pack("{s:s, s:s, s:s, s:I, s:I}", "event", "progress", "digest", digest, "status",
                              image_pull_status_string(st), "current", (json_int_t) current, "total",
                              (json_int_t) total));
}

static void worker_resolved(void *ud, const char *config_digest, const char *const *layers, size_t n_layers)
{
        (void) ud;
        json_t *l = json_array();
        for (size_t i = 0; l && i < n_layers; i++)
                json_array_append_new(l, json_string(layers[i]));
        worker_emit(json_pack("{s:s, s:s, s:o}", "event", "resolved", "config", config_digest, "layers",
                              l ? l : json_array()));
}

/* The job's "auth" object, if any: username, password, identitytoken and
 * (when ret_rtoken) registrytoken, borrowed from the job. */
static int job_credentials(const json_t *job, const char **ret_user, const char **ret_password,
                           const char **ret_itoken, const char **ret_rtoken, struct berr *e)
{
        json_t *auth = NULL;
        int r = json_get_object(job, "job", "auth", &auth, e);
        if (r < 0 || !auth)
                return r;
        r = json_get_string(auth, "auth", "username", ret_user, e);
        if (r >= 0)
                r = json_get_string(auth, "auth", "password", ret_password, e);
        if (r >= 0)
                r = json_get_string(auth, "auth", "identitytoken", ret_itoken, e);
        if (r >= 0 && ret_rtoken)
                r = json_get_string(auth, "auth", "registrytoken", ret_rtoken, e);
        return r;
}

/* A JSON array of strings as a NULL-terminated vector borrowing them. */
static int worker_strv(const json_t *job, const char *key, const char ***ret, struct berr *e)
{
        json_t *a = NULL;
        int r = json_get_array(job, "job", key, &a, e);
        if (r < 0)
                return r;
        size_t n = a ? json_array_size(a) : 0;
        const char **v = calloc(n + 1, sizeof(char *));
        if (!v)
                return berr_set(e, ENOMEM, "job");
        for (size_t i = 0; i < n; i++)
                if (!(v[i] = json_string_value(json_array_get(a, i)))) {
                        free(v);
                        return berr_setx(e, EINVAL, "job.%s must be an array of strings", key);
                }
        *ret = v;
        return 0;
}

static int worker_platform(struct opts *o, const json_t *job, struct berr *e)
{
        const char *p = NULL;
        int r = json_get_string(job, "job", "platform", &p, e);
        if (r >= 0 && p && *p)
                r = image_platform_parse(p, &o->platform, e);
        return r;
}

/* {"ref", "platform", "unpack", "parallel", "auth_config", "auth":
 * {"username", "password", "identitytoken", "registrytoken"}, "insecure":
 * [...], "mirrors": [...], "allow_devices"} → "resolved", "progress"...,
 * then {"event": "result", "index_digest", "index_media_type",
 * "manifest_digest", "manifest_media_type", "config_digest", "layers",
 * "fetched", "applied"}. Blobs and snapshots are stored; no name is
 * recorded. */
static int worker_pull(struct opts *o, const json_t *job, struct berr *e)
{
        const char *refstr = NULL, *auth_config = NULL;
        const char *user = NULL, *password = NULL, *itoken = NULL, *rtoken = NULL;
        _cleanup_free_ const char **insecure = NULL, **mirrors = NULL;
        bool unpack = false;
        uint32_t parallel = 0;
        struct image_ref ref;
        struct content_store *cs = NULL;
        struct snapshot_overlay *sn = NULL;
        struct registry_client *rc = NULL;
        struct image_pull_result res = { 0 };
        struct image_unpack_result ures = { 0 };

        int r = json_get_string(job, "job", "ref", &refstr, e);
        if (r >= 0 && !refstr)
                r = berr_setx(e, EINVAL, "job: a ref is needed");
        if (r >= 0)
                r = image_ref_parse(refstr, &ref, e) < 0 ? -e->err : 0;
        if (r >= 0)
                r = worker_platform(o, job, e);
        if (r >= 0)
                r = json_get_bool(job, "job", "unpack", &unpack, e);
        if (r >= 0)
                r = json_get_bool(job, "job", "allow_devices", &o->allow_devices, e);
        if (r >= 0)
                r = json_get_uint32(job, "job", "parallel", &parallel, e);
        if (r >= 0)
                r = json_get_string(job, "job", "auth_config", &auth_config, e);
        if (r >= 0)
                r = job_credentials(job, &user, &password, &itoken, &rtoken, e);
        if (r >= 0)
                r = worker_strv(job, "insecure", &insecure, e);
        if (r >= 0)
                r = worker_strv(job, "mirrors", &mirrors, e);
        if (r < 0)
                return r;

        struct registry_options ro = {
                .auth_config = auth_config && *auth_config ? auth_config : NULL,
                .username = user && *user ? user : NULL,
                .password = password && *password ? password : NULL,
                .identity_token = itoken && *itoken ? itoken : NULL,
                .registry_token = rtoken && *rtoken ? rtoken : NULL,
                .insecure = (char *const *) insecure,
                .mirrors = (char *const *) mirrors,
                .retries = -1,
        };
        struct image_pull_progress progress = { worker_progress, NULL, worker_resolved };
        struct image_unpack_options uo = { .allow_devices = o->allow_devices };
        r = open_store(o, &cs, e);
        if (r >= 0 && unpack)
                r = open_snapshots(o, &sn, e);
        if (r >= 0)
                r = registry_client_new(&ref, &ro, &rc, e);
        if (r >= 0) {
                struct image_pull_options po = {
                        .platform = &o->platform,
                        .max_parallel = parallel > 64 ? 64 : parallel,
                        .progress = &progress,
                        .sn = sn,
                        .unpack = &uo,
                };
                r = image_pull_ex(rc, cs, &ref, &po, &res, &ures, e);
        }
        if (r >= 0) {
                json_t *layers = json_array();
                for (size_t i = 0; layers && i < res.n_layers; i++)
                        json_array_append_new(layers, json_string(res.layers[i]));
                json_t *ev = json_pack("{s:s, s:s, s:s?, s:s, s:s?, s:s, s:o, s:I, s:I}", "event", "result",
                                       "index_digest", res.index_digest, "index_media_type", res.index_media_type,
                                       "manifest_digest", res.manifest_digest, "manifest_media_type",
                                       res.manifest_media_type, "config_digest", res.config_digest, "layers",
                                       layers ? layers : json_array(), "fetched", (json_int_t) res.n_fetched,
                                       "applied", (json_int_t) ures.n_applied);
                r = ev ? 0 : berr_set(e, ENOMEM, "result");
                worker_emit(ev);
        }
        registry_client_free(rc);
        image_unpack_result_done(&ures);
        image_pull_result_done(&res);
        snapshot_overlay_free(sn);
        content_store_free(cs);
        return r;
}

/* {"registry", "auth": {"username", "password", "identitytoken"},
 * "insecure": [...]} → {"event": "result"} when the registry takes the
 * credentials (docker login). */
static int worker_auth(const json_t *job, struct berr *e)
{
        const char *registry = NULL, *user = NULL, *password = NULL, *itoken = NULL;
        _cleanup_free_ const char **insecure = NULL;
        struct image_ref ref = { 0 };
        struct registry_client *rc = NULL;

        int r = json_get_string(job, "job", "registry", &registry, e);
        if (r >= 0)
                r = job_credentials(job, &user, &password, &itoken, NULL, e);
        if (r >= 0)
                r = worker_strv(job, "insecure", &insecure, e);
        if (r < 0)
                return r;

        /* a reference without a repository: the client asks for /v2/ */
        registry_auth_domain(registry, ref.domain, sizeof(ref.domain));
        struct registry_options ro = {
                .username = user && *user ? user : NULL,
                .password = password && *password ? password : NULL,
                .identity_token = itoken && *itoken ? itoken : NULL,
                .insecure = (char *const *) insecure,
                .retries = -1,
        };
        r = registry_client_new(&ref, &ro, &rc, e);
        if (r >= 0)
                r = registry_check_auth(rc, e);
        registry_client_free(rc);
        if (r >= 0)
                worker_emit(json_pack("{s:s, s:s}", "event", "result", "registry", ref.domain));
        return r;
}

/* Unpacks the recorded image name for o->platform; *applied += the layers
 * applied. */
static int worker_unpack_recorded(const struct opts *o, struct content_store *cs, struct image_store *is,
                                  struct snapshot_overlay *sn, const char *name, size_t *applied, struct berr *e)
{
        struct image_record rec = { 0 };
        struct image_manifest m = { 0 };
        struct image_unpack_result res = { 0 };
        struct image_unpack_options uo = { .allow_devices = o->allow_devices };
        char mdigest[CONTENT_DIGEST_MAX];
        int r = image_store_get(is, name, &rec, e);
        if (r >= 0)
                r = image_store_manifest(is, &rec, &o->platform, &m, mdigest, e);
        if (r >= 0)
                r = image_unpack(cs, sn, mdigest, &uo, &res, e);
        if (r >= 0)
                *applied += res.n_applied;
        image_unpack_result_done(&res);
        image_manifest_done(&m);
        image_record_done(&rec);
        return r;
}

/* An import whose unpacking failed leaves the names as they were: those
 * it added go, those it moved point where they did before (their blobs go
 * with the next gc). */
static void import_undo(struct opts *o, struct image_store *is, char **names, const struct image_record *before,
                        size_t n_before)
{
        for (size_t i = 0; names && names[i]; i++) {
                const struct image_record *old = NULL;
                for (size_t k = 0; k < n_before && !old; k++)
                        if (!strcmp(before[k].name, names[i]))
                                old = &before[k];
                struct berr e = { 0 };
                if (!old) {
                        image_store_remove(is, names[i], &e);
                        continue;
                }
                struct image_manifest m = { 0 };
                char mdigest[CONTENT_DIGEST_MAX];
                const char *config = image_store_manifest(is, old, &o->platform, &m, mdigest, &e) >= 0
                                             ? m.config.digest
                                             : NULL;
                if (image_store_put(is, old->name, old->media_type, old->digest, config, &e) < 0)
                        image_store_remove(is, names[i], NULL);
                image_manifest_done(&m);
        }
}

/* {"path", "platform", "unpack", "allow_devices"} → {"event": "result",
 * "names": [...], "applied"}: the archive's blobs are stored and its names
 * recorded (image_archive_import does both, all or nothing), then each
 * image is unpacked when asked. */
static int worker_import(struct opts *o, const json_t *job, struct berr *e)
{
        const char *path = NULL;
        bool unpack = false;
        _cleanup_strv_free_ char **names = NULL;
        struct content_store *cs = NULL;
        struct image_store *is = NULL;
        struct snapshot_overlay *sn = NULL;
        size_t applied = 0;

        int r = json_get_string(job, "job", "path", &path, e);
        if (r >= 0 && !path)
                r = berr_setx(e, EINVAL, "job: a path is needed");
        if (r >= 0)
                r = worker_platform(o, job, e);
        if (r >= 0)
                r = json_get_bool(job, "job", "unpack", &unpack, e);
        if (r >= 0)
                r = json_get_bool(job, "job", "allow_devices", &o->allow_devices, e);
        if (r >= 0)
                r = open_store(o, &cs, e);
        if (r >= 0)
                r = open_images(o, cs, &is, e);
        if (r >= 0 && unpack)
                r = open_snapshots(o, &sn, e);
        struct image_record *before = NULL;
        size_t n_before = 0;
        if (r >= 0)
                r = image_store_list(is, &before, &n_before, e);
        if (r >= 0)
                r = image_archive_import(is, cs, path, &o->platform, &names, e);
        bool recorded = r >= 0;
        for (size_t i = 0; r >= 0 && unpack && names[i]; i++)
                r = worker_unpack_recorded(o, cs, is, sn, names[i], &applied, e);
        if (r < 0 && recorded)
                import_undo(o, is, names, before, n_before);
        image_records_free(before, n_before);
        if (r >= 0) {
                json_t *a = json_array();
                for (size_t i = 0; a && names[i]; i++)
                        json_array_append_new(a, json_string(names[i]));
                json_t *ev = json_pack("{s:s, s:o, s:I}", "event", "result", "names", a ? a : json_array(),
                                       "applied", (json_int_t) applied);
                r = ev ? 0 : berr_set(e, ENOMEM, "result");
                worker_emit(ev);
        }
        snapshot_overlay_free(sn);
        image_store_free(is);
        content_store_free(cs);
        return r;
}

/* {"names": [...] (recorded, normalised), "platform", "format": "docker" |
 * "oci", "path"} → {"event": "result"}. */
static int worker_export(struct opts *o, const json_t *job, struct berr *e)
{
        const char *path = NULL, *format = NULL;
        _cleanup_free_ const char **names = NULL;
        enum image_archive_format fmt = IMAGE_ARCHIVE_DOCKER;
        struct content_store *cs = NULL;
        struct image_store *is = NULL;
        size_t n = 0;

        int r = json_get_string(job, "job", "path", &path, e);
        if (r >= 0 && !path)
                r = berr_setx(e, EINVAL, "job: a path is needed");
        if (r >= 0)
                r = worker_platform(o, job, e);
        if (r >= 0)
                r = json_get_string(job, "job", "format", &format, e);
        if (r >= 0 && format && *format)
                r = image_archive_format_parse(format, &fmt, e);
        if (r >= 0)
                r = worker_strv(job, "names", &names, e);
        while (r >= 0 && names[n])
                n++;
        if (r >= 0 && n == 0)
                r = berr_setx(e, EINVAL, "export: no image names");
        if (r >= 0)
                r = open_store(o, &cs, e);
        if (r >= 0)
                r = open_images(o, cs, &is, e);
        if (r >= 0)
                r = image_archive_export(is, cs, names, n, &o->platform, fmt, path, e);
        if (r >= 0)
                worker_emit(json_pack("{s:s}", "event", "result"));
        image_store_free(is);
        content_store_free(cs);
        return r;
}

/* worker pull|import|export|auth --job-json FILE|- */
static int cmd_worker(struct opts *o, int argc, char **argv)
{
        _cleanup_json_ json_t *job = NULL;
        struct berr e = { 0 };
        json_error_t je;
        json_int_t parent = 0;

        if (argc != 3 || strcmp(argv[1], "--job-json") != 0) {
                usage(stderr);
                return 2;
        }
        /* the daemon's death (kill -9 included) ends the worker too */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                log_debug("PR_SET_PDEATHSIG (ignored): %m");
        job = strcmp(argv[2], "-") == 0 ? json_loadf(stdin, JSON_DISABLE_EOF_CHECK, &je)
                                        : json_load_file(argv[2], 0, &je);
        if (!json_is_object(job)) {
                berr_setx(&e, EINVAL, "worker: the job is not a JSON object (%s, line %d)", je.text, je.line);
                return worker_error(&e);
        }
        /* the parent died before PR_SET_PDEATHSIG took hold */
        parent = json_integer_value(json_object_get(job, "parent_pid"));
        if (parent > 0 && getppid() != (pid_t) parent) {
                berr_setx(&e, ECHILD, "worker: berth-supervisor (pid %lld) is gone", (long long) parent);
                return worker_error(&e);
        }
        int r;
        if (strcmp(argv[0], "pull") == 0) {
                r = worker_pull(o, job, &e);
        } else if (strcmp(argv[0], "import") == 0) {
                r = worker_import(o, job, &e);
        } else if (strcmp(argv[0], "export") == 0) {
                r = worker_export(o, job, &e);
        } else if (strcmp(argv[0], "auth") == 0) {
                r = worker_auth(job, &e);
        } else {
                usage(stderr);
                return 2;
        }
        if (r < 0)
                return worker_error(&e);
        return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "root", required_argument, NULL, 'r' },
                { "insecure-registry", required_argument, NULL, 'i' },
                { "auth-config", required_argument, NULL, 'a' },
                { "username", required_argument, NULL, 'U' },
                { "password", required_argument, NULL, 'P' },
                { "mirror", required_argument, NULL, 'm' },
                { "parallel", required_argument, NULL, 'j' },
                { "progress", no_argument, NULL, 'g' },
                { "platform", required_argument, NULL, 'p' },
                { "allow-devices", no_argument, NULL, 'D' },
                { "snapshotter", required_argument, NULL, 'S' },
                { "debug", no_argument, NULL, 'd' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct opts o = { .root = DEFAULT_ROOT };
        struct berr e = { 0 };
        int c, ret;

        log_setup("supervisor", LOG_LEVEL_WARN);
        image_platform_default(&o.platform);
        o.insecure = calloc((size_t) argc + 1, sizeof(char *));
        o.mirrors = calloc((size_t) argc + 1, sizeof(char *));
        if (!o.insecure || !o.mirrors) {
                free(o.insecure);
                free(o.mirrors);
                return 1;
        }
        while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
                switch (c) {
                case 'r':
                        o.root = optarg;
                        break;
                case 'i':
                        o.insecure[o.n_insecure++] = optarg;
                        break;
                case 'a':
                        o.auth_config = optarg;
                        break;
                case 'U':
                        o.username = optarg;
                        break;
                case 'P':
                        o.password = optarg;
                        break;
                case 'm':
                        o.mirrors[o.n_mirrors++] = optarg;
                        break;
                case 'j': {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (*end || v == 0 || v > 64) {
                                log_error("--parallel \"%s\": a number from 1 to 64 is needed", optarg);
                                ret = 2;
                                goto done;
                        }
                        o.parallel = (unsigned) v;
                        break;
                }
                case 'g':
                        o.progress = true;
                        break;
                case 'p':
                        if (image_platform_parse(optarg, &o.platform, &e) < 0) {
                                ret = fail(&e);
                                goto done;
                        }
                        break;
                case 'D':
                        o.allow_devices = true;
                        break;
                case 'S':
                        if (snapshot_mode_parse(optarg, &o.snapshotter) < 0) {
                                log_error("--snapshotter \"%s\": auto, overlay or copy", optarg);
                                ret = 2;
                                goto done;
                        }
                        break;
                case 'd':
                        log_set_level(LOG_LEVEL_DEBUG);
                        break;
                case 'h':
                        usage(stdout);
                        ret = 0;
                        goto done;
                default:
                        usage(stderr);
                        ret = 2;
                        goto done;
                }
        }
        argc -= optind;
        argv += optind;
        if (argc == 2 && strcmp(argv[0], "pull") == 0) {
                ret = cmd_pull(&o, argv[1]);
        } else if (argc >= 1 && strcmp(argv[0], "content") == 0) {
                ret = cmd_content(&o, argc - 1, argv + 1);
        } else if (argc == 2 && strcmp(argv[0], "unpack") == 0) {
                ret = cmd_unpack(&o, argv[1]);
        } else if ((argc == 3 || argc == 4) && strcmp(argv[0], "mount") == 0) {
                ret = cmd_mount(&o, argv[1], argv[2], argc == 4 ? argv[3] : NULL);
        } else if (argc >= 1 && strcmp(argv[0], "images") == 0) {
                ret = cmd_images(&o, argc - 1, argv + 1);
        } else if (argc >= 1 && strcmp(argv[0], "snapshots") == 0) {
                ret = cmd_snapshots(&o, argc - 1, argv + 1);
        } else if (argc >= 1 && strcmp(argv[0], "worker") == 0) {
                ret = cmd_worker(&o, argc - 1, argv + 1);
        } else {
                usage(stderr);
                ret = 2;
        }
        registry_global_cleanup();
done:
        free(o.insecure);
        free(o.mirrors);
        return ret;
}

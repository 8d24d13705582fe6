/* berth-fetch: pulls an image into a content store and looks at the store,
 * without the daemon. A driver for tests and people while berth-supervisor
 * is being built:
 *
 *   berth-fetch [--root DIR] [--insecure-registry HOST]... [--auth-config FILE]
 *               [--platform os/arch[/variant]] [--debug] pull REF
 *   berth-fetch [--root DIR] content ls | info DIGEST | rm DIGEST | gc
 *   berth-fetch [pull options] [--allow-devices] unpack REF
 *   berth-fetch [pull options] [--allow-devices] mount REF DIR [KEY]
 *   berth-fetch [--root DIR] snapshots ls | rm KEY | usage KEY | mounts KEY
 *   berth-fetch [--root DIR] [--platform P] images ls | inspect NAME | tag SRC DST | rm NAME
 *   berth-fetch [--root DIR] [--platform P] images export NAME... -o FILE [--format docker|oci]
 *   berth-fetch [--root DIR] [--platform P] images import FILE | unpack NAME
 *
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
 * Errors are one line on stderr, "supervisor: <cause>", and exit status 1. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "cleanup.h"
#include "content-store.h"
#include "err.h"
#include "image-archive.h"
#include "image-manifest.h"
#include "image-pull.h"
#include "image-reference.h"
#include "image-store.h"
#include "image-unpack.h"
#include "log.h"
#include "registry-client.h"
#include "snapshot-overlay.h"

#define DEFAULT_ROOT "/var/lib/berth"

struct opts {
        const char *root;
        const char *auth_config;
        char **insecure;
        size_t n_insecure;
        struct image_platform platform;
        bool allow_devices;
};

static void usage(FILE *f)
{
        fprintf(f, "Usage: berth-fetch [--root DIR] [--insecure-registry HOST]... [--auth-config FILE]\n"
                   "                   [--platform os/arch[/variant]] [--debug] pull REF\n"
                   "       berth-fetch [--root DIR] content ls | info DIGEST | rm DIGEST | gc\n"
                   "       berth-fetch [pull options] [--allow-devices] unpack REF\n"
                   "       berth-fetch [pull options] [--allow-devices] mount REF DIR [KEY]\n"
                   "       berth-fetch [--root DIR] snapshots ls | rm KEY | usage KEY | mounts KEY\n"
                   "       berth-fetch [--root DIR] [--platform P] images ls | inspect NAME | tag SRC DST | rm NAME\n"
                   "       berth-fetch [--root DIR] [--platform P] images export NAME... -o FILE [--format docker|oci]\n"
                   "       berth-fetch [--root DIR] [--platform P] [--allow-devices] images import FILE | unpack NAME\n"
                   "\n"
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

/* Pulls refstr into cs (opened here) and records the image; the caller
 * frees res and cs. */
static int do_pull(const struct opts *o, const char *refstr, struct content_store **cs, struct image_pull_result *res,
                   struct berr *e)
{
        struct image_ref ref;
        struct registry_client *rc = NULL;
        if (image_ref_parse(refstr, &ref, e) < 0)
                return -e->err;
        struct registry_options ro = {
                .auth_config = o->auth_config,
                .insecure = o->insecure,
                .retries = -1,
        };
        int r = open_store(o, cs, e);
        if (r >= 0)
                r = registry_client_new(&ref, &ro, &rc, e);
        if (r >= 0)
                r = image_pull(rc, *cs, &ref, &o->platform, res, e);
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

        if (do_pull(o, refstr, &cs, &res, &e) < 0) {
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
        return snapshot_overlay_open(dir, ret, e);
}

/* Pull and unpack; ret_top gets the top chain id ("" for an image without
 * layers). */
static int do_unpack(const struct opts *o, const char *refstr, struct snapshot_overlay **sn,
                     struct image_unpack_result *res, struct berr *e)
{
        struct content_store *cs = NULL;
        struct image_pull_result pr = { 0 };
        int r = do_pull(o, refstr, &cs, &pr, e);
        if (r >= 0)
                r = open_snapshots(o, sn, e);
        if (r >= 0) {
                struct image_unpack_options uo = { .allow_devices = o->allow_devices };
                r = image_unpack(cs, *sn, pr.manifest_digest, &uo, res, e);
        }
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

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "root", required_argument, NULL, 'r' },
                { "insecure-registry", required_argument, NULL, 'i' },
                { "auth-config", required_argument, NULL, 'a' },
                { "platform", required_argument, NULL, 'p' },
                { "allow-devices", no_argument, NULL, 'D' },
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
        if (!o.insecure)
                return 1;
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
                case 'p':
                        if (image_platform_parse(optarg, &o.platform, &e) < 0) {
                                free(o.insecure);
                                return fail(&e);
                        }
                        break;
                case 'D':
                        o.allow_devices = true;
                        break;
                case 'd':
                        log_set_level(LOG_LEVEL_DEBUG);
                        break;
                case 'h':
                        usage(stdout);
                        free(o.insecure);
                        return 0;
                default:
                        usage(stderr);
                        free(o.insecure);
                        return 2;
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
        } else {
                usage(stderr);
                ret = 2;
        }
        free(o.insecure);
        registry_global_cleanup();
        return ret;
}

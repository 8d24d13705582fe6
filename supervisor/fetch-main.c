/* berth-fetch: pulls an image into a content store and looks at the store,
 * without the daemon. A driver for tests and people while berth-supervisor
 * is being built:
 *
 *   berth-fetch [--root DIR] [--insecure-registry HOST]... [--auth-config FILE]
 *               [--platform os/arch[/variant]] [--debug] pull REF
 *   berth-fetch [--root DIR] content ls | info DIGEST | rm DIGEST
 *
 * pull prints one "<kind> <digest>" line per object: "index" (when the
 * reference named an index), "manifest", "config", then "layer" in order.
 * Errors are one line on stderr, "supervisor: <cause>", and exit status 1. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "content-store.h"
#include "err.h"
#include "image-manifest.h"
#include "image-pull.h"
#include "image-reference.h"
#include "log.h"
#include "registry-client.h"

#define DEFAULT_ROOT "/var/lib/berth"

struct opts {
        const char *root;
        const char *auth_config;
        char **insecure;
        size_t n_insecure;
        struct image_platform platform;
};

static void usage(FILE *f)
{
        fprintf(f, "Usage: berth-fetch [--root DIR] [--insecure-registry HOST]... [--auth-config FILE]\n"
                   "                   [--platform os/arch[/variant]] [--debug] pull REF\n"
                   "       berth-fetch [--root DIR] content ls | info DIGEST | rm DIGEST\n"
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

static int cmd_pull(const struct opts *o, const char *refstr)
{
        struct berr e = { 0 };
        struct image_ref ref;
        struct content_store *cs = NULL;
        struct registry_client *rc = NULL;
        struct image_pull_result res = { 0 };
        int ret = 1;

        if (image_ref_parse(refstr, &ref, &e) < 0)
                return fail(&e);
        struct registry_options ro = {
                .auth_config = o->auth_config,
                .insecure = o->insecure,
                .retries = -1,
        };
        if (open_store(o, &cs, &e) < 0 || registry_client_new(&ref, &ro, &rc, &e) < 0 ||
            image_pull(rc, cs, &ref, &o->platform, &res, &e) < 0) {
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
        registry_client_free(rc);
        content_store_free(cs);
        return ret;
}

static int cmd_content(const struct opts *o, int argc, char **argv)
{
        struct berr e = { 0 };
        struct content_store *cs = NULL;
        int ret = 1;

        if (argc < 1 || (strcmp(argv[0], "ls") == 0 && argc != 1) ||
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
        } else {
                usage(stderr);
                ret = 2;
        }
        free(o.insecure);
        registry_global_cleanup();
        return ret;
}

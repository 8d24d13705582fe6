/* berth-ctr images | content | snapshots: the image side of the
 * supervisor. A pull shows the progress the daemon publishes for the job
 * id it chose (per blob, as docker pull does: redrawn on a terminal, a line
 * per change otherwise). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cleanup.h"
#include "ctr.h"
#include "time-util.h"

#define MAX_BLOBS 256

static int usage_error(const char *what)
{
        fprintf(stderr, "berth-ctr: usage: %s\n", what);
        return 2;
}

/* 1.2MB as docker prints sizes (decimal units). */
static char *human(uint64_t n, char *buf, size_t len)
{
        static const char *const units[] = { "B", "kB", "MB", "GB", "TB" };
        double v = (double) n;
        size_t u = 0;
        while (v >= 1000 && u + 1 < ARRAY_SIZE(units)) {
                v /= 1000;
                u++;
        }
        if (u == 0)
                snprintf(buf, len, "%" PRIu64 "B", n);
        else
                snprintf(buf, len, "%.3g%s", v, units[u]);
        return buf;
}

/* A path as the daemon must see it: absolute. */
static char *absolute(const char *p)
{
        char cwd[PATH_MAX];
        char *r = NULL;
        if (p[0] == '/')
                return strdup(p);
        if (!getcwd(cwd, sizeof(cwd)) || asprintf(&r, "%s/%s", cwd, p) < 0)
                return NULL;
        return r;
}

static int parse_platform_arg(const char *s, Berth__Supervisor__Platform *p, char buf[3][64])
{
        char tmp[192];
        snprintf(tmp, sizeof(tmp), "%s", s);
        char *save = NULL, *f[3] = { NULL, NULL, NULL };
        int n = 0;
        for (char *t = strtok_r(tmp, "/", &save); t && n < 3; t = strtok_r(NULL, "/", &save))
                f[n++] = t;
        if (n < 2) {
                fprintf(stderr, "berth-ctr: invalid platform \"%s\" (os/arch[/variant])\n", s);
                return -EINVAL;
        }
        for (int i = 0; i < 3; i++)
                snprintf(buf[i], 64, "%s", f[i] ? f[i] : "");
        p->os = buf[0];
        p->architecture = buf[1];
        p->variant = buf[2];
        return 0;
}

/* ---------------------------------------------------------------- pull progress */

struct blob_line {
        char digest[80];
        Berth__Supervisor__LayerStatus status;
        uint64_t current, total;
};

struct progress {
        pthread_mutex_t lock;
        const char *job_id;
        bool tty;
        struct blob_line lines[MAX_BLOBS];
        size_t n, drawn;
        uint64_t last_draw_ns;
        nng_socket sock;
};

static const char *status_word(Berth__Supervisor__LayerStatus st)
{
        switch (st) {
        case BERTH__SUPERVISOR__LAYER_STATUS__WAITING:
                return "Waiting";
        case BERTH__SUPERVISOR__LAYER_STATUS__DOWNLOADING:
                return "Downloading";
        case BERTH__SUPERVISOR__LAYER_STATUS__VERIFYING:
                return "Verifying Checksum";
        case BERTH__SUPERVISOR__LAYER_STATUS__DOWNLOADED:
                return "Download complete";
        case BERTH__SUPERVISOR__LAYER_STATUS__EXTRACTING:
                return "Extracting";
        case BERTH__SUPERVISOR__LAYER_STATUS__DONE:
                return "Pull complete";
        case BERTH__SUPERVISOR__LAYER_STATUS__EXISTS:
                return "Already exists";
        case BERTH__SUPERVISOR__LAYER_STATUS__FAILED:
                return "Failed";
        default:
                return "?";
        }
}

static void format_line(const struct blob_line *l, char *buf, size_t len)
{
        const char *hex = strchr(l->digest, ':');
        char cur[32], tot[32];
        hex = hex ? hex + 1 : l->digest;
        if (l->status == BERTH__SUPERVISOR__LAYER_STATUS__DOWNLOADING && l->total)
                snprintf(buf, len, "%.12s: %s %s/%s", hex, status_word(l->status), human(l->current, cur, sizeof(cur)),
                         human(l->total, tot, sizeof(tot)));
        else
                snprintf(buf, len, "%.12s: %s", hex, status_word(l->status));
}

/* Redraws every line in place (terminal). Called with the lock held. */
static void redraw(struct progress *p)
{
        char line[160];
        if (p->drawn)
                printf("\033[%zuA", p->drawn);
        for (size_t i = 0; i < p->n; i++) {
                format_line(&p->lines[i], line, sizeof(line));
                printf("\033[2K%s\n", line);
        }
        p->drawn = p->n;
        p->last_draw_ns = time_monotonic_ns();
        fflush(stdout);
}

static void progress_event(struct progress *p, const Berth__Supervisor__PullProgress *pp)
{
        struct blob_line *l = NULL;
        bool changed;

        if (strcmp(pp->job_id, p->job_id) != 0)
                return;
        pthread_mutex_lock(&p->lock);
        if (!*pp->digest) {
                /* the whole pull: "resolved", "done" or the error (printed by the caller) */
                if (!p->tty && strcmp(pp->message, "resolved") == 0)
                        printf("%s: resolved\n", pp->ref);
                pthread_mutex_unlock(&p->lock);
                return;
        }
        for (size_t i = 0; i < p->n && !l; i++)
                if (strcmp(p->lines[i].digest, pp->digest) == 0)
                        l = &p->lines[i];
        if (!l && p->n < MAX_BLOBS) {
                l = &p->lines[p->n++];
                snprintf(l->digest, sizeof(l->digest), "%s", pp->digest);
                l->status = (Berth__Supervisor__LayerStatus) -1;
        }
        if (!l) {
                pthread_mutex_unlock(&p->lock);
                return;
        }
        changed = l->status != pp->status;
        l->status = pp->status;
        l->current = pp->current;
        l->total = pp->total;
        if (p->tty) {
                if (changed || time_monotonic_ns() - p->last_draw_ns > 100 * 1000000ull)
                        redraw(p);
        } else if (changed) {
                char line[160];
                format_line(l, line, sizeof(line));
                printf("%s\n", line);
                fflush(stdout);
        }
        pthread_mutex_unlock(&p->lock);
}

static void *progress_thread(void *arg)
{
        struct progress *p = arg;
        for (;;) {
                Berth__Supervisor__Envelope *env = NULL;
                if (ctr_events_recv(p->sock, &env) < 0)
                        break;
                if (env && env->event_case == BERTH__SUPERVISOR__ENVELOPE__EVENT_PULL)
                        progress_event(p, env->pull);
                if (env)
                        berth__supervisor__envelope__free_unpacked(env, NULL);
        }
        return NULL;
}

static int images_pull(struct ctr *c, int argc, char **argv)
{
        static const struct option opts[] = {
                { "platform", required_argument, NULL, 'p' },
                { "user", required_argument, NULL, 'u' },
                { "no-unpack", no_argument, NULL, 'n' },
                {},
        };
        Berth__Supervisor__PullRequest req = BERTH__SUPERVISOR__PULL_REQUEST__INIT;
        Berth__Supervisor__Platform plat = BERTH__SUPERVISOR__PLATFORM__INIT;
        char platbuf[3][64], job_id[64];
        _cleanup_free_ char *auth = NULL;
        struct progress *p = NULL;
        pthread_t thread;
        bool watching = false;
        ProtobufCMessage *rep = NULL;
        uint64_t rnd = 0;
        int opt, r;

        while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
                switch (opt) {
                case 'p':
                        if (parse_platform_arg(optarg, &plat, platbuf) < 0)
                                return 2;
                        req.platform = &plat;
                        break;
                case 'u': {
                        char *colon = strchr(optarg, ':');
                        json_t *j = json_pack("{s:s%,s:s}", "username", optarg,
                                              colon ? (size_t) (colon - optarg) : strlen(optarg), "password",
                                              colon ? colon + 1 : "");
                        free(auth);
                        auth = j ? json_dumps(j, JSON_COMPACT) : NULL;
                        json_decref(j);
                        if (!auth)
                                return 1;
                        req.auth_json.data = (uint8_t *) auth;
                        req.auth_json.len = strlen(auth);
                        break;
                }
                case 'n':
                        req.no_unpack = true;
                        break;
                default:
                        return usage_error("images pull [--platform os/arch[/variant]] [--user U:P] [--no-unpack] REF");
                }
        }
        if (optind + 1 != argc)
                return usage_error("images pull [--platform os/arch[/variant]] [--user U:P] [--no-unpack] REF");
        req.ref = argv[optind];
        if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                rnd = time_monotonic_ns();
        snprintf(job_id, sizeof(job_id), "ctr-%d-%016" PRIx64, (int) getpid(), rnd);
        req.job_id = job_id;

        if (!c->json && (p = calloc(1, sizeof(*p)))) {
                pthread_mutex_init(&p->lock, NULL);
                p->job_id = job_id;
                p->tty = isatty(STDOUT_FILENO);
                /* without the events socket the pull still works, silently */
                if (ctr_events_open(c, "/images/pull", &p->sock) == 0)
                        watching = pthread_create(&thread, NULL, progress_thread, p) == 0;
                if (!watching && p->sock.id)
                        nng_close(p->sock);
        }
        r = ctr_call(c, "images.Pull", &req.base, &berth__supervisor__pull_response__descriptor, RPC_NO_TIMEOUT, &rep);
        if (watching) {
                /* the last events came before the reply; give them a moment */
                usleep(50 * 1000);
                nng_close(p->sock);
                pthread_join(thread, NULL);
                if (p->tty && p->n)
                        redraw(p);
        }
        if (p) {
                pthread_mutex_destroy(&p->lock);
                free(p);
        }
        if (r < 0)
                return 1;
        Berth__Supervisor__PullResponse *resp = (void *) rep;
        if (c->json)
                ctr_print_json(rep);
        else if (resp->image)
                printf("%s: %s (%u blob(s) fetched, %u layer(s) applied)\n", resp->image->name,
                       resp->image->target ? resp->image->target->digest : "", resp->blobs_fetched,
                       resp->layers_applied);
        protobuf_c_message_free_unpacked(rep, NULL);
        return 0;
}

/* login [--user USER:PASSWORD] REGISTRY: the supervisor checks the
 * credentials with the registry (docker login's check); nothing is stored. */
int ctr_cmd_login(struct ctr *c, int argc, char **argv)
{
        static const struct option opts[] = {
                { "user", required_argument, NULL, 'u' },
                {},
        };
        Berth__Supervisor__CheckAuthRequest req = BERTH__SUPERVISOR__CHECK_AUTH_REQUEST__INIT;
        _cleanup_free_ char *user = NULL;
        ProtobufCMessage *rep = NULL;
        int opt;

        while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
                if (opt != 'u')
                        return usage_error("login [--user USER:PASSWORD] REGISTRY");
                free(user);
                if (!(user = strdup(optarg)))
                        return 1;
                char *colon = strchr(user, ':');
                if (colon)
                        *colon = '\0';
                req.username = user;
                req.password = colon ? colon + 1 : (char *) "";
        }
        if (optind + 1 != argc)
                return usage_error("login [--user USER:PASSWORD] REGISTRY");
        req.registry = argv[optind];
        int r = ctr_call(c, "images.CheckAuth", &req.base, &berth__supervisor__check_auth_response__descriptor,
                         RPC_NO_TIMEOUT, &rep);
        if (user)
                explicit_bzero(user, strlen(user) + strlen(req.password) + 1);
        if (r < 0)
                return 1;
        if (c->json)
                ctr_print_json(rep);
        else
                printf("Login Succeeded\n");
        protobuf_c_message_free_unpacked(rep, NULL);
        return 0;
}

/* ---------------------------------------------------------------- images */

static int images_ls(struct ctr *c, int argc, char **argv)
{
        Berth__Supervisor__ListImagesRequest req = BERTH__SUPERVISOR__LIST_IMAGES_REQUEST__INIT;
        ProtobufCMessage *rep = NULL;
        if (argc != 1)
                return usage_error("images ls");
        if (ctr_call(c, "images.ListImages", &req.base, &berth__supervisor__list_images_response__descriptor,
                     c->timeout_ms, &rep) < 0)
                return 1;
        Berth__Supervisor__ListImagesResponse *resp = (void *) rep;
        if (c->json) {
                ctr_print_json(rep);
        } else {
                printf("%-50s %-71s %10s %s\n", "REF", "DIGEST", "SIZE", "UNPACKED");
                for (size_t i = 0; i < resp->n_images; i++) {
                        Berth__Supervisor__Image *im = resp->images[i];
                        char sz[32];
                        printf("%-50s %-71s %10s %s\n", im->name, im->target ? im->target->digest : "",
                               human((uint64_t) im->size, sz, sizeof(sz)), im->unpacked ? "yes" : "no");
                }
        }
        protobuf_c_message_free_unpacked(rep, NULL);
        return 0;
}

static int images_inspect(struct ctr *c, int argc, char **argv)
{
        Berth__Supervisor__GetImageRequest req = BERTH__SUPERVISOR__GET_IMAGE_REQUEST__INIT;
        ProtobufCMessage *rep = NULL;
        if (argc != 2)
                return usage_error("images inspect NAME");
        req.name = argv[1];
        if (ctr_call(c, "images.GetImage", &req.base, &berth__supervisor__get_image_response__descriptor,
                     c->timeout_ms, &rep) < 0)
                return 1;
        Berth__Supervisor__GetImageResponse *resp = (void *) rep;
        if (c->json) {
                ctr_print_json(rep);
        } else {
                json_t *j = json_loadb((const char *) resp->inspect_json.data, resp->inspect_json.len, 0, NULL);
                if (j) {
                        json_dumpf(j, stdout, JSON_INDENT(2));
                        fputc('\n', stdout);
                        json_decref(j);
                }
        }
        protobuf_c_message_free_unpacked(rep, NULL);
        return 0;
}

static int images_tag(struct ctr *c, int argc, char **argv)
{
        Berth__Supervisor__TagImageRequest req = BERTH__SUPERVISOR__TAG_IMAGE_REQUEST__INIT;
        ProtobufCMessage *rep = NULL;
        if (argc != 3)
                return usage_error("images tag SRC DST");
        req.source = argv[1];
        req.target = argv[2];
        if (ctr_call(c, "images.TagImage", &req.base, &berth__supervisor__tag_image_response__descriptor,
                     c->timeout_ms, &rep) < 0)
                return 1;
        Berth__Supervisor__TagImageResponse *resp = (void *) rep;
        if (c->json)
                ctr_print_json(rep);
        else if (resp->image)
                printf("%s\n", resp->image->name);
        protobuf_c_message_free_unpacked(rep, NULL);
        return 0;
}

static int images_rm(struct ctr *c, int argc, char **argv)
{
        Berth__Supervisor__DeleteImageRequest req = BERTH__SUPERVISOR__DELETE_IMAGE_REQUEST__INIT;
        int i = 1, ret = 0;
        if (i < argc && strcmp(argv[i], "--sync") == 0) {
                req.sync_gc = true;
                i++;
        }
        if (i >= argc)
                return usage_error("images rm [--sync] NAME...");
        for (; i < argc; i++) {
                ProtobufCMessage *rep = NULL;
                req.name = argv[i];
                if (ctr_call(c, "images.DeleteImage", &req.base, &berth__supervisor__delete_image_response__descriptor,
                             RPC_NO_TIMEOUT, &rep) < 0) {
                        ret = 1;
                        continue;
                }
                printf("%s\n", argv[i]);
                protobuf_c_message_free_unpacked(rep, NULL);
        }
        return ret;
}

static int images_import(struct ctr *c, int argc, char **argv)
{
        Berth__Supervisor__ImportImagesRequest req = BERTH__SUPERVISOR__IMPORT_IMAGES_REQUEST__INIT;
        Berth__Supervisor__Platform plat = BERTH__SUPERVISOR__PLATFORM__INIT;
        char platbuf[3][64];
        ProtobufCMessage *rep = NULL;
        _cleanup_free_ char *path = NULL;
        const char *file = NULL;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--no-unpack") == 0)
                        req.no_unpack = true;
                else if (strcmp(argv[i], "--platform") == 0 && i + 1 < argc) {
                        if (parse_platform_arg(argv[++i], &plat, platbuf) < 0)
                                return 2;
                        req.platform = &plat;
                } else if (!file)
                        file = argv[i];
                else
                        return usage_error("images import [--no-unpack] [--platform P] FILE");
        }
        if (!file)
                return usage_error("images import [--no-unpack] [--platform P] FILE");
        if (!(path = absolute(file)))
                return 1;
        req.path = path;
        if (ctr_call(c, "images.ImportImages", &req.base, &berth__supervisor__import_images_response__descriptor,
                     RPC_NO_TIMEOUT, &rep) < 0)
                return 1;
        Berth__Supervisor__ImportImagesResponse *resp = (void *) rep;
        if (c->json)
                ctr_print_json(rep);
        else
                for (size_t i = 0; i < resp->n_images; i++)
                        printf("imported %s\n", resp->images[i]->name);
        protobuf_c_message_free_unpacked(rep, NULL);
        return 0;
}

static int images_export(struct ctr *c, int argc, char **argv)
{
        Berth__Supervisor__ExportImagesRequest req = BERTH__SUPERVISOR__EXPORT_IMAGES_REQUEST__INIT;
        Berth__Supervisor__Platform plat = BERTH__SUPERVISOR__PLATFORM__INIT;
        char platbuf[3][64];
        ProtobufCMessage *rep = NULL;
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ char **names = calloc((size_t) argc + 1, sizeof(char *));
        const char *file = NULL;
        if (!names)
                return 1;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
                        req.format = argv[++i];
                else if (strcmp(argv[i], "--platform") == 0 && i + 1 < argc) {
                        if (parse_platform_arg(argv[++i], &plat, platbuf) < 0)
                                return 2;
                        req.platform = &plat;
                } else if (!file)
                        file = argv[i];
                else
                        names[req.n_names++] = argv[i];
        }
        if (!file || req.n_names == 0)
                return usage_error("images export [--format docker|oci] [--platform P] FILE NAME...");
        if (!(path = absolute(file)))
                return 1;
        req.path = path;
        req.names = names;
        if (ctr_call(c, "images.ExportImages", &req.base, &berth__supervisor__export_images_response__descriptor,
                     RPC_NO_TIMEOUT, &rep) < 0)
                return 1;
        protobuf_c_message_free_unpacked(rep, NULL);
        return 0;
}

int ctr_cmd_images(struct ctr *c, int argc, char **argv)
{
        static const struct {
                const char *name;
                int (*fn)(struct ctr *c, int argc, char **argv);
        } subs[] = {
                { "pull", images_pull },     { "ls", images_ls },         { "list", images_ls },
                { "inspect", images_inspect }, { "tag", images_tag },     { "rm", images_rm },
                { "remove", images_rm },     { "import", images_import }, { "export", images_export },
        };
        if (argc < 2)
                return usage_error("images pull|ls|inspect|tag|rm|import|export ...");
        for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
                if (strcmp(argv[1], subs[i].name) == 0) {
                        optind = 0;
                        return subs[i].fn(c, argc - 1, argv + 1);
                }
        return usage_error("images pull|ls|inspect|tag|rm|import|export ...");
}

/* ---------------------------------------------------------------- content */

int ctr_cmd_content(struct ctr *c, int argc, char **argv)
{
        ProtobufCMessage *rep = NULL;
        int ret = 0;
        if (argc == 2 && strcmp(argv[1], "ls") == 0) {
                Berth__Supervisor__ListContentRequest req = BERTH__SUPERVISOR__LIST_CONTENT_REQUEST__INIT;
                if (ctr_call(c, "content.ListContent", &req.base, &berth__supervisor__list_content_response__descriptor,
                             c->timeout_ms, &rep) < 0)
                        return 1;
                Berth__Supervisor__ListContentResponse *resp = (void *) rep;
                if (c->json)
                        ctr_print_json(rep);
                else {
                        printf("%-71s %12s %s\n", "DIGEST", "SIZE", "CREATED");
                        for (size_t i = 0; i < resp->n_blobs; i++)
                                printf("%-71s %12" PRIu64 " %s\n", resp->blobs[i]->digest, resp->blobs[i]->size,
                                       resp->blobs[i]->created);
                }
        } else if (argc == 3 && strcmp(argv[1], "info") == 0) {
                Berth__Supervisor__InfoContentRequest req = BERTH__SUPERVISOR__INFO_CONTENT_REQUEST__INIT;
                req.digest = argv[2];
                if (ctr_call(c, "content.InfoContent", &req.base, &berth__supervisor__info_content_response__descriptor,
                             c->timeout_ms, &rep) < 0)
                        return 1;
                Berth__Supervisor__InfoContentResponse *resp = (void *) rep;
                if (c->json)
                        ctr_print_json(rep);
                else if (resp->info)
                        printf("digest %s\nsize %" PRIu64 "\ncreated %s\n", resp->info->digest, resp->info->size,
                               resp->info->created);
        } else if (argc >= 3 && strcmp(argv[1], "rm") == 0) {
                for (int i = 2; i < argc; i++) {
                        Berth__Supervisor__DeleteContentRequest req = BERTH__SUPERVISOR__DELETE_CONTENT_REQUEST__INIT;
                        req.digest = argv[i];
                        if (ctr_call(c, "content.DeleteContent", &req.base,
                                     &berth__supervisor__delete_content_response__descriptor, c->timeout_ms, &rep) < 0) {
                                ret = 1;
                                continue;
                        }
                        printf("%s\n", argv[i]);
                        protobuf_c_message_free_unpacked(rep, NULL);
                }
                return ret;
        } else if (argc == 2 && strcmp(argv[1], "gc") == 0) {
                Berth__Supervisor__GCRequest req = BERTH__SUPERVISOR__GCREQUEST__INIT;
                if (ctr_call(c, "content.GC", &req.base, &berth__supervisor__gcresponse__descriptor, RPC_NO_TIMEOUT,
                             &rep) < 0)
                        return 1;
                Berth__Supervisor__GCResponse *resp = (void *) rep;
                if (c->json)
                        ctr_print_json(rep);
                else
                        for (size_t i = 0; i < resp->n_removed; i++)
                                printf("removed %s\n", resp->removed[i]);
        } else {
                return usage_error("content ls | info DIGEST | rm DIGEST... | gc");
        }
        protobuf_c_message_free_unpacked(rep, NULL);
        return 0;
}

/* ---------------------------------------------------------------- snapshots */

int ctr_cmd_snapshots(struct ctr *c, int argc, char **argv)
{
        ProtobufCMessage *rep = NULL;
        int ret = 0;
        bool ls = argc >= 2 && (strcmp(argv[1], "ls") == 0 || strcmp(argv[1], "list") == 0);
        if (ls && (argc == 2 || (argc == 3 && strcmp(argv[2], "--usage") == 0))) {
                Berth__Supervisor__ListSnapshotsRequest req = BERTH__SUPERVISOR__LIST_SNAPSHOTS_REQUEST__INIT;
                req.usage = argc == 3;
                if (ctr_call(c, "snapshots.ListSnapshots", &req.base,
                             &berth__supervisor__list_snapshots_response__descriptor, RPC_NO_TIMEOUT, &rep) < 0)
                        return 1;
                Berth__Supervisor__ListSnapshotsResponse *resp = (void *) rep;
                if (c->json)
                        ctr_print_json(rep);
                else {
                        printf("%-71s %-71s %-9s%s\n", "KEY", "PARENT", "KIND", req.usage ? " SIZE INODES" : "");
                        for (size_t i = 0; i < resp->n_snapshots; i++) {
                                Berth__Supervisor__Snapshot *sn = resp->snapshots[i];
                                printf("%-71s %-71s %-9s", sn->key, *sn->parent ? sn->parent : "-", sn->kind);
                                if (req.usage)
                                        printf(" %" PRIu64 " %" PRIu64, sn->size, sn->inodes);
                                putchar('\n');
                        }
                }
                protobuf_c_message_free_unpacked(rep, NULL);
                return 0;
        }
        if (argc >= 3 && strcmp(argv[1], "rm") == 0) {
                for (int i = 2; i < argc; i++) {
                        Berth__Supervisor__RemoveSnapshotRequest req = BERTH__SUPERVISOR__REMOVE_SNAPSHOT_REQUEST__INIT;
                        req.key = argv[i];
                        if (ctr_call(c, "snapshots.RemoveSnapshot", &req.base,
                                     &berth__supervisor__remove_snapshot_response__descriptor, RPC_NO_TIMEOUT, &rep) < 0) {
                                ret = 1;
                                continue;
                        }
                        printf("%s\n", argv[i]);
                        protobuf_c_message_free_unpacked(rep, NULL);
                }
                return ret;
        }
        return usage_error("snapshots ls [--usage] | rm KEY...");
}

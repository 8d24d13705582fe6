/* berth-ctr: the supervisor's command-line client, like containerd's ctr.
 *
 *   berth-ctr [--address URL] [--events-address URL] [--timeout SECONDS] [--json] COMMAND ...
 *
 * Commands: version, events [--topic PREFIX], images, content, snapshots,
 * login (ctr-images.c), run, containers, tasks (ctr-tasks.c). Errors are one line
 * on stderr, "berth-ctr: <the daemon's message> [<CODE>]", exit status 1
 * (2 for usage). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "ctr.h"
#include "log.h"
#include "pb-json.h"

#define DEFAULT_ADDRESS "ipc:///run/berth/supervisor.sock"
#define DEFAULT_EVENTS_ADDRESS "ipc:///run/berth/supervisor-events.sock"
#define DEFAULT_TIMEOUT_MS 30000

static void usage(FILE *f)
{
        fprintf(f, "Usage: berth-ctr [--address URL] [--events-address URL] [--timeout SECONDS] [--json] COMMAND ...\n"
                   "\n"
                   "  version\n"
                   "  events [--topic PREFIX]\n"
                   "  images pull [--platform os/arch[/variant]] [--user USER:PASSWORD] [--no-unpack] REF\n"
                   "  images ls | inspect NAME | tag SRC DST | rm [--sync] NAME...\n"
                   "  images import [--no-unpack] FILE | export [--format docker|oci] FILE NAME...\n"
                   "  content ls | info DIGEST | rm DIGEST... | gc\n"
                   "  snapshots ls [--usage] | rm KEY...\n"
                   "  login [--user USER:PASSWORD] REGISTRY   (checks the credentials; nothing is stored)\n"
                   "  run, containers, tasks: see berth-ctr COMMAND --help\n"
                   "\n"
                   "--address defaults to " DEFAULT_ADDRESS ", --events-address to " DEFAULT_EVENTS_ADDRESS ".\n");
}

int ctr_call(struct ctr *c, const char *method, const ProtobufCMessage *req,
             const ProtobufCMessageDescriptor *reply_type, int timeout_ms, ProtobufCMessage **ret_reply)
{
        struct rpc_status st;
        int r;
        if (!c->client && (r = rpc_client_open(c->address, &c->client, &st)) < 0) {
                fprintf(stderr, "berth-ctr: cannot reach the supervisor at \"%s\": %s [%s]\n", c->address, st.message,
                        rpc_code_name(st.code));
                return r;
        }
        r = rpc_client_call(c->client, method, req, reply_type, timeout_ms, ret_reply, &st);
        if (r < 0)
                fprintf(stderr, "berth-ctr: %s [%s]\n", st.message, rpc_code_name(st.code));
        return r;
}

void ctr_print_json(const ProtobufCMessage *msg)
{
        json_t *j = pb_to_json(msg);
        if (!j)
                return;
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        fputc('\n', stdout);
        json_decref(j);
}

int ctr_cmd_version(struct ctr *c, int argc, char **argv)
{
        ProtobufCMessage *rep = NULL;
        if (argc != 1) {
                usage(stderr);
                return 2;
        }
        if (ctr_call(c, "supervisor.Version", NULL, &berth__supervisor__version_response__descriptor, c->timeout_ms,
                     &rep) < 0)
                return 1;
        Berth__Supervisor__VersionResponse *v = (void *) rep;
        if (c->json)
                ctr_print_json(rep);
        else
                printf("Client:\n  Version: %s\nServer:\n  Version: %s\n  Revision: %s\n  Pid: %u\n  Root: %s\n"
                       "  Exec root: %s\n",
                       BERTH_VERSION, v->version, v->revision, v->pid, v->root, v->exec_root);
        protobuf_c_message_free_unpacked(rep, NULL);
        return 0;
}

/* The event of an envelope, whichever it is. */
static const ProtobufCMessage *envelope_event(const Berth__Supervisor__Envelope *env)
{
        switch (env->event_case) {
        case BERTH__SUPERVISOR__ENVELOPE__EVENT_PULL:
                return &env->pull->base;
        case BERTH__SUPERVISOR__ENVELOPE__EVENT_IMAGE:
                return &env->image->base;
        case BERTH__SUPERVISOR__ENVELOPE__EVENT_CONTAINER:
                return &env->container->base;
        case BERTH__SUPERVISOR__ENVELOPE__EVENT_TASK:
                return &env->task->base;
        default:
                return NULL;
        }
}

/* "key=value" for each field that is set, as ctr prints events. */
static void print_fields(const ProtobufCMessage *m)
{
        json_t *j = m ? pb_to_json(m) : NULL;
        const char *k;
        json_t *v;
        bool first = true;
        json_object_foreach (j, k, v) {
                if ((json_is_string(v) && !*json_string_value(v)) || (json_is_integer(v) && !json_integer_value(v)) ||
                    json_is_false(v))
                        continue;
                char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                printf("%s%s=%s", first ? "" : " ", k, s ? s : json_string_value(v));
                free(s);
                first = false;
        }
        json_decref(j);
}

int ctr_events_open(struct ctr *c, const char *topic, nng_socket *ret)
{
        nng_socket sock;
        int rv = nng_sub0_open(&sock);
        if (rv == 0)
                rv = nng_socket_set(sock, NNG_OPT_SUB_SUBSCRIBE, topic, strlen(topic));
        if (rv == 0 && (rv = nng_dial(sock, c->events_address, NULL, 0)) != 0)
                nng_close(sock);
        if (rv != 0) {
                fprintf(stderr, "berth-ctr: cannot subscribe to \"%s\": %s\n", c->events_address, nng_strerror(rv));
                return -EIO;
        }
        *ret = sock;
        return 0;
}

int ctr_events_recv(nng_socket sock, Berth__Supervisor__Envelope **ret)
{
        nng_msg *msg = NULL;
        int rv = nng_recvmsg(sock, &msg, 0);
        if (rv != 0)
                return rv == NNG_ECLOSED ? -ECANCELED : -EIO;
        size_t len = nng_msg_len(msg);
        const char *body = nng_msg_body(msg);
        const char *nul = memchr(body, '\0', len);
        Berth__Supervisor__Envelope *env = NULL;
        if (nul)
                env = berth__supervisor__envelope__unpack(NULL, len - (size_t) (nul + 1 - body),
                                                          (const uint8_t *) nul + 1);
        nng_msg_free(msg);
        *ret = env;
        return 0;
}

int ctr_cmd_events(struct ctr *c, int argc, char **argv)
{
        const char *topic = "";
        nng_socket sock;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc)
                        topic = argv[++i];
                else if (strncmp(argv[i], "--topic=", 8) == 0)
                        topic = argv[i] + 8;
                else {
                        usage(stderr);
                        return 2;
                }
        }
        if (ctr_events_open(c, topic, &sock) < 0)
                return 1;
        setvbuf(stdout, NULL, _IOLBF, 0);
        for (;;) {
                Berth__Supervisor__Envelope *env = NULL;
                int r = ctr_events_recv(sock, &env);
                if (r < 0)
                        break;
                if (!env)
                        continue; /* not an envelope: skipped */
                if (c->json) {
                        json_t *j = pb_to_json(&env->base);
                        json_dumpf(j, stdout, JSON_COMPACT | JSON_SORT_KEYS);
                        fputc('\n', stdout);
                        json_decref(j);
                } else {
                        printf("%s %s ", env->timestamp, env->topic);
                        print_fields(envelope_event(env));
                        fputc('\n', stdout);
                }
                fflush(stdout);
                berth__supervisor__envelope__free_unpacked(env, NULL);
        }
        nng_close(sock);
        return 1;
}

static const struct {
        const char *name;
        int (*fn)(struct ctr *c, int argc, char **argv);
} commands[] = {
        { "version", ctr_cmd_version },
        { "events", ctr_cmd_events },
        { "images", ctr_cmd_images },
        { "content", ctr_cmd_content },
        { "snapshots", ctr_cmd_snapshots },
        { "login", ctr_cmd_login },
        { "run", ctr_cmd_run },
        { "containers", ctr_cmd_containers },
        { "tasks", ctr_cmd_tasks },
};

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "address", required_argument, NULL, 'a' },
                { "events-address", required_argument, NULL, 'E' },
                { "timeout", required_argument, NULL, 't' },
                { "json", no_argument, NULL, 'j' },
                { "version", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct ctr c = {
                .address = DEFAULT_ADDRESS,
                .events_address = DEFAULT_EVENTS_ADDRESS,
                .timeout_ms = DEFAULT_TIMEOUT_MS,
        };
        int opt, ret = 2;

        log_setup("berth-ctr", LOG_LEVEL_WARN);
        /* "+": options end at the command */
        while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
                switch (opt) {
                case 'a':
                        c.address = optarg;
                        break;
                case 'E':
                        c.events_address = optarg;
                        break;
                case 't': {
                        char *end;
                        double secs = strtod(optarg, &end);
                        if (end == optarg || (*end && strcmp(end, "s") != 0) || secs < 0) {
                                fprintf(stderr, "berth-ctr: invalid --timeout \"%s\" (seconds)\n", optarg);
                                return 2;
                        }
                        c.timeout_ms = secs == 0 ? RPC_NO_TIMEOUT : (int) (secs * 1000);
                        break;
                }
                case 'j':
                        c.json = true;
                        break;
                case 'v':
                        printf("berth-ctr version %s\n", BERTH_VERSION);
                        return 0;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return 2;
        }
        for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
                if (strcmp(argv[optind], commands[i].name) == 0) {
                        int cmd = optind;
                        optind = 0; /* a command's own getopt starts afresh after its name */
                        ret = commands[i].fn(&c, argc - cmd, argv + cmd);
                        goto done;
                }
        fprintf(stderr, "berth-ctr: unknown command \"%s\"\n", argv[optind]);
        usage(stderr);
done:
        if (c.client)
                rpc_client_close(c.client);
        fflush(stdout);
        return ret;
}

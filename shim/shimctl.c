/* berth-shimctl: a small client of one berth-shim, for tests and for
 * people: each command is one RPC (printed as one line of JSON), or an
 * attach session on attach.sock.
 *
 * Errors are printed as {"error": {"code": "...", "message": "..."}} on
 * stdout, and the exit status is 1. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"
#include "signal-util.h"
#include "pb-json.h"
#include "rpc-client.h"
#include "shim.pb-c.h"

#define DEFAULT_STATE_ROOT "/run/berth/shims"
#define DEFAULT_TIMEOUT_MS 60000

struct ctl {
        const char *state_dir;
        int timeout_ms;
        bool timeout_set;
        struct rpc_client *client;
};

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: berth-shimctl (--state-dir DIR | --id ID) [--timeout MS] COMMAND [ARGS]\n"
                "\n"
                "Commands (one RPC each, the reply printed as JSON):\n"
                "  connect\n"
                "  create [--stdin] [--stdin-once] [--start [--hold N]]\n"
                "  start [--exec ID]\n"
                "  state [--exec ID]\n"
                "  wait [--exec ID]                       (no timeout unless --timeout)\n"
                "  kill [--exec ID] [--all] [SIGNAL]      (name or number; default TERM)\n"
                "  exec [--tty] [--stdin] [--stdin-once] [--cwd DIR] [--env K=V]... EXEC_ID -- ARG...\n"
                "  exec --process FILE [--tty] [--stdin] [--stdin-once] EXEC_ID\n"
                "  resize [--exec ID] WIDTH HEIGHT\n"
                "  close-stdin [--exec ID]\n"
                "  pids | stats | pause | resume\n"
                "  update FILE                            (linux.resources JSON; - for stdin)\n"
                "  delete [--exec ID] [--force]\n"
                "  shutdown [--now]\n"
                "  call METHOD [--payload-hex HEX | --payload-size N]   (any payload, for tests)\n"
                "  raw HEX                                (bytes that need not be an envelope)\n"
                "  lifecycle                              create, start, wait, delete, shutdown\n"
                "\n"
                "Attach (attach.sock):\n"
                "  attach [--exec ID] [--stdin] [--no-stdout] [--no-stderr] [--raw]\n"
                "      copies the process's output to stdout/stderr (--raw: the stream as sent,\n"
                "      frames included) and, with --stdin, this stdin to the process.\n");
}

static int print_error(enum rpc_code code, const char *msg)
{
        json_t *j = json_pack("{s:{s:s, s:s}}", "error", "code", rpc_code_name(code), "message", msg);
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (s)
                printf("%s\n", s);
        else
                printf("{\"error\": {\"code\": \"%s\"}}\n", rpc_code_name(code));
        free(s);
        json_decref(j);
        return 1;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
        va_list ap;
        fputs("berth-shimctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return 2;
}

static void print_message(const ProtobufCMessage *m)
{
        json_t *j = pb_to_json(m);
        char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(j);
}

static int connect_client(struct ctl *c)
{
        struct rpc_status st;
        _cleanup_free_ char *url = NULL;
        if (asprintf(&url, "ipc://%s/shim.sock", c->state_dir) < 0)
                return print_error(RPC_INTERNAL, "out of memory");
        if (rpc_client_open(url, &c->client, &st) < 0)
                return print_error(st.code, st.message);
        return 0;
}

static int call(struct ctl *c, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *reply_type, int default_timeout)
{
        struct rpc_status st;
        ProtobufCMessage *reply = NULL;
        int r = connect_client(c);
        if (r)
                return r;
        int timeout = c->timeout_set ? c->timeout_ms : default_timeout;
        r = rpc_client_call(c->client, method, req, reply_type, timeout, &reply, &st);
        rpc_client_close(c->client);
        c->client = NULL;
        if (r < 0)
                return print_error(st.code, st.message);
        print_message(reply);
        protobuf_c_message_free_unpacked(reply, NULL);
        return 0;
}

/* Options shared by the commands: --exec ID, and flags. */
struct cmd_opts {
        const char *exec_id;
        bool all, force, now, tty, in, in_once, raw, no_stdout, no_stderr, start;
        const char *process, *cwd, *payload_hex;
        long payload_size;
        unsigned hold;
        char **env;
        size_t n_env;
};

static int parse_cmd_opts(int argc, char **argv, struct cmd_opts *o)
{
        static const struct option opts[] = {
                { "exec", required_argument, NULL, 'e' },
                { "all", no_argument, NULL, 'a' },
                { "force", no_argument, NULL, 'f' },
                { "now", no_argument, NULL, 'n' },
                { "tty", no_argument, NULL, 't' },
                { "stdin", no_argument, NULL, 'i' },
                { "stdin-once", no_argument, NULL, 'I' },
                { "start", no_argument, NULL, 'S' },
                { "hold", required_argument, NULL, 'H' },
                { "raw", no_argument, NULL, 'r' },
                { "no-stdout", no_argument, NULL, 'O' },
                { "no-stderr", no_argument, NULL, 'E' },
                { "process", required_argument, NULL, 'p' },
                { "cwd", required_argument, NULL, 'c' },
                { "env", required_argument, NULL, 'v' },
                { "payload-hex", required_argument, NULL, 'x' },
                { "payload-size", required_argument, NULL, 's' },
                {},
        };
        int ch;
        optind = 1;
        while ((ch = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
                switch (ch) {
                case 'e':
                        o->exec_id = optarg;
                        break;
                case 'a':
                        o->all = true;
                        break;
                case 'f':
                        o->force = true;
                        break;
                case 'n':
                        o->now = true;
                        break;
                case 't':
                        o->tty = true;
                        break;
                case 'i':
                        o->in = true;
                        break;
                case 'I':
                        o->in_once = true;
                        break;
                case 'S':
                        o->start = true;
                        break;
                case 'H':
                        o->hold = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 'r':
                        o->raw = true;
                        break;
                case 'O':
                        o->no_stdout = true;
                        break;
                case 'E':
                        o->no_stderr = true;
                        break;
                case 'p':
                        o->process = optarg;
                        break;
                case 'c':
                        o->cwd = optarg;
                        break;
                case 'v': {
                        char **n = realloc(o->env, (o->n_env + 1) * sizeof(*n));
                        if (!n)
                                return -1;
                        o->env = n;
                        o->env[o->n_env++] = optarg;
                        break;
                }
                case 'x':
                        o->payload_hex = optarg;
                        break;
                case 's':
                        o->payload_size = strtol(optarg, NULL, 10);
                        break;
                default:
                        return -1;
                }
        }
        return optind;
}

static int read_file_or_stdin(const char *path, char **ret, size_t *ret_len)
{
        FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
        if (!f)
                return -errno;
        char *buf = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
                if (len + 4096 > cap) {
                        cap = cap ? cap * 2 : 8192;
                        char *n = realloc(buf, cap);
                        if (!n) {
                                free(buf);
                                return -ENOMEM;
                        }
                        buf = n;
                }
                size_t n = fread(buf + len, 1, cap - len, f);
                len += n;
                if (n == 0)
                        break;
        }
        if (f != stdin)
                fclose(f);
        *ret = buf;
        *ret_len = len;
        return 0;
}

static int hex_decode(const char *hex, uint8_t **ret, size_t *ret_len)
{
        size_t n = strlen(hex);
        if (n % 2)
                return -EINVAL;
        uint8_t *b = malloc(n / 2 + 1);
        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < n / 2; i++) {
                unsigned v;
                if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
                        free(b);
                        return -EINVAL;
                }
                b[i] = (uint8_t) v;
        }
        *ret = b;
        *ret_len = n / 2;
        return 0;
}

static int cmd_exec(struct ctl *c, struct cmd_opts *o, int argc, char **argv)
{
        Berth__Shim__ExecRequest req = BERTH__SHIM__EXEC_REQUEST__INIT;
        _cleanup_free_ char *json = NULL;
        size_t len = 0;
        if (argc < 1)
                return usage_error("exec: missing EXEC_ID");
        req.exec_id = argv[0];
        if (argc > 1 && strcmp(argv[1], "--") == 0) {
                argv++;
                argc--;
        }
        req.terminal = o->tty;
        req.stdin = o->in || o->in_once;
        req.stdin_once = o->in_once;
        if (o->process) {
                int r = read_file_or_stdin(o->process, &json, &len);
                if (r < 0)
                        return usage_error("exec: cannot read the process file \"%s\"", o->process);
        } else {
                if (argc < 2)
                        return usage_error("exec: missing the command after EXEC_ID");
                json_t *args = json_array();
                for (int i = 1; i < argc; i++)
                        json_array_append_new(args, json_string(argv[i]));
                json_t *env = json_array();
                json_array_append_new(env,
                                      json_string("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
                for (size_t i = 0; i < o->n_env; i++)
                        json_array_append_new(env, json_string(o->env[i]));
                json_t *p = json_pack("{s:o, s:o, s:s, s:{s:i, s:i}, s:b}", "args", args, "env", env, "cwd",
                                      o->cwd ? o->cwd : "/", "user", "uid", 0, "gid", 0, "terminal", o->tty);
                json = p ? json_dumps(p, JSON_COMPACT) : NULL;
                json_decref(p);
                if (!json)
                        return print_error(RPC_INTERNAL, "cannot build the process JSON");
                len = strlen(json);
        }
        req.process_json.data = (uint8_t *) json;
        req.process_json.len = len;
        return call(c, "shim.Exec", &req.base, &berth__shim__exec_response__descriptor, DEFAULT_TIMEOUT_MS);
}

static int cmd_call(struct ctl *c, struct cmd_opts *o, int argc, char **argv)
{
        struct rpc_status st;
        uint8_t *payload = NULL;
        size_t len = 0;
        void *out = NULL;
        size_t out_len = 0;
        if (argc < 1)
                return usage_error("call: missing METHOD");
        /* options may follow METHOD too */
        if (parse_cmd_opts(argc, argv, o) < 0)
                return usage_error("call: invalid options");
        if (o->payload_hex && hex_decode(o->payload_hex, &payload, &len) < 0)
                return usage_error("call: invalid hex \"%s\"", o->payload_hex);
        if (o->payload_size > 0) {
                len = (size_t) o->payload_size;
                payload = malloc(len);
                if (!payload)
                        return print_error(RPC_INTERNAL, "out of memory");
                /* zeros: not a valid message; the size is what is tested */
                memset(payload, 0, len);
        }
        int r = connect_client(c);
        if (r) {
                free(payload);
                return r;
        }
        r = rpc_client_call_payload(c->client, argv[0], payload, len, c->timeout_set ? c->timeout_ms : 10000, &out,
                                    &out_len, &st);
        rpc_client_close(c->client);
        free(payload);
        if (r < 0)
                return print_error(st.code, st.message);
        printf("{\"payload_len\": %zu}\n", out_len);
        free(out);
        return 0;
}

static int cmd_raw(struct ctl *c, int argc, char **argv)
{
        struct rpc_status st;
        uint8_t *data = NULL;
        size_t len = 0;
        if (argc < 1 || hex_decode(argv[0], &data, &len) < 0)
                return usage_error("raw: expected HEX bytes");
        int r = connect_client(c);
        if (r) {
                free(data);
                return r;
        }
        r = rpc_client_call_bytes(c->client, data, len, c->timeout_set ? c->timeout_ms : 10000, &st);
        rpc_client_close(c->client);
        free(data);
        if (r < 0 || st.code != RPC_OK)
                return print_error(st.code, st.message);
        printf("{}\n");
        return 0;
}

/* Create, Start, Wait, Delete and Shutdown on one connection, as a
 * supervisor would; prints the exit status. For the overhead benchmark. */
static int cmd_lifecycle(struct ctl *c)
{
        struct rpc_status st;
        ProtobufCMessage *reply = NULL;
        int code = -1;
        int r = connect_client(c);
        if (r)
                return r;
        Berth__Shim__CreateRequest cr = BERTH__SHIM__CREATE_REQUEST__INIT;
        Berth__Shim__StartRequest sr = BERTH__SHIM__START_REQUEST__INIT;
        Berth__Shim__WaitRequest wr = BERTH__SHIM__WAIT_REQUEST__INIT;
        Berth__Shim__DeleteRequest dr = BERTH__SHIM__DELETE_REQUEST__INIT;
        Berth__Shim__ShutdownRequest shr = BERTH__SHIM__SHUTDOWN_REQUEST__INIT;
        const struct {
                const char *method;
                const ProtobufCMessage *req;
                const ProtobufCMessageDescriptor *reply;
        } steps[] = {
                { "shim.Create", &cr.base, &berth__shim__create_response__descriptor },
                { "shim.Start", &sr.base, &berth__shim__start_response__descriptor },
                { "shim.Wait", &wr.base, &berth__shim__wait_response__descriptor },
                { "shim.Delete", &dr.base, &berth__shim__delete_response__descriptor },
                { "shim.Shutdown", &shr.base, &berth__shim__shutdown_response__descriptor },
        };
        sr.exec_id = wr.exec_id = dr.exec_id = "";
        for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
                r = rpc_client_call(c->client, steps[i].method, steps[i].req, steps[i].reply,
                                    c->timeout_set ? c->timeout_ms : DEFAULT_TIMEOUT_MS, &reply, &st);
                if (r < 0) {
                        rpc_client_close(c->client);
                        return print_error(st.code, st.message);
                }
                if (steps[i].reply == &berth__shim__wait_response__descriptor) {
                        const Berth__Shim__WaitResponse *w = (const void *) reply;
                        code = w->exit ? w->exit->exit_code : -1;
                }
                protobuf_c_message_free_unpacked(reply, NULL);
        }
        rpc_client_close(c->client);
        printf("{\"exit_code\": %d}\n", code);
        return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
        while (n > 0) {
                ssize_t w = write(fd, p, n);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += w;
                n -= (size_t) w;
        }
        return 0;
}

static int cmd_attach(struct ctl *c, struct cmd_opts *o)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if ((size_t) snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/attach.sock", c->state_dir) >=
            sizeof(sa.sun_path))
                return usage_error("attach: state dir path too long");
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                char msg[600];
                snprintf(msg, sizeof(msg), "cannot connect to \"%s\": %s", sa.sun_path, strerror(errno));
                return print_error(RPC_UNAVAILABLE, msg);
        }
        json_t *h = json_pack("{s:s, s:b, s:b, s:b}", "exec_id", o->exec_id ? o->exec_id : "", "stdin", o->in,
                              "stdout", !o->no_stdout, "stderr", !o->no_stderr);
        char *hs = json_dumps(h, JSON_COMPACT);
        json_decref(h);
        write_all(fd, hs, strlen(hs));
        write_all(fd, "\n", 1);
        free(hs);

        /* the answer line */
        char line[4096];
        size_t n = 0;
        while (n < sizeof(line) - 1) {
                ssize_t r = read(fd, line + n, 1);
                if (r <= 0)
                        break;
                if (line[n++] == '\n')
                        break;
        }
        line[n] = '\0';
        json_t *ans = json_loads(line, 0, NULL);
        if (!ans || !json_is_true(json_object_get(ans, "ok"))) {
                const char *err = json_string_value(json_object_get(ans, "error"));
                print_error(RPC_FAILED_PRECONDITION, err ? err : "attach refused");
                json_decref(ans);
                close(fd);
                return 1;
        }
        bool tty = json_is_true(json_object_get(ans, "tty"));
        json_decref(ans);

        bool in_open = o->in;
        unsigned char hdr[8];
        size_t hdr_len = 0, frame_left = 0;
        int frame_fd = 1;
        for (;;) {
                struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = in_open ? 0 : -1, .events = POLLIN } };
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[1].revents) {
                        char buf[65536];
                        ssize_t r = read(0, buf, sizeof(buf));
                        if (r > 0)
                                write_all(fd, buf, (size_t) r);
                        else {
                                in_open = false;
                                shutdown(fd, SHUT_WR);
                        }
                }
                if (!p[0].revents)
                        continue;
                char buf[65536];
                ssize_t r = read(fd, buf, sizeof(buf));
                if (r <= 0)
                        break;
                if (tty || o->raw) {
                        write_all(1, buf, (size_t) r);
                        continue;
                }
                /* demultiplex Docker's frames */
                for (size_t i = 0; i < (size_t) r;) {
                        if (frame_left == 0) {
                                hdr[hdr_len++] = (unsigned char) buf[i++];
                                if (hdr_len == 8) {
                                        frame_fd = hdr[0] == 2 ? 2 : 1;
                                        frame_left = (size_t) hdr[4] << 24 | (size_t) hdr[5] << 16 |
                                                     (size_t) hdr[6] << 8 | hdr[7];
                                        hdr_len = 0;
                                }
                                continue;
                        }
                        size_t take = (size_t) r - i < frame_left ? (size_t) r - i : frame_left;
                        write_all(frame_fd, buf + i, take);
                        i += take;
                        frame_left -= take;
                }
        }
        close(fd);
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "state-dir", required_argument, NULL, 's' },
                { "id", required_argument, NULL, 'i' },
                { "timeout", required_argument, NULL, 't' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct ctl c = { .timeout_ms = DEFAULT_TIMEOUT_MS };
        _cleanup_free_ char *dir = NULL;
        int ch;

        signal(SIGPIPE, SIG_IGN);
        while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
                switch (ch) {
                case 's':
                        c.state_dir = optarg;
                        break;
                case 'i':
                        if (asprintf(&dir, "%s/%s", DEFAULT_STATE_ROOT, optarg) < 0)
                                return 1;
                        c.state_dir = dir;
                        break;
                case 't':
                        c.timeout_ms = atoi(optarg);
                        c.timeout_set = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (!c.state_dir || optind >= argc) {
                usage(stderr);
                return 2;
        }
        const char *cmd = argv[optind];
        argc -= optind;
        argv += optind;
        struct cmd_opts o = { 0 };
        int first = parse_cmd_opts(argc, argv, &o);
        if (first < 0)
                return usage_error("invalid options for \"%s\"", cmd);
        argc -= first;
        argv += first;
        int r = 2;

        if (strcmp(cmd, "connect") == 0) {
                Berth__Shim__ConnectRequest req = BERTH__SHIM__CONNECT_REQUEST__INIT;
                r = call(&c, "shim.Connect", &req.base, &berth__shim__connect_response__descriptor,
                         DEFAULT_TIMEOUT_MS);
        } else if (strcmp(cmd, "create") == 0) {
                Berth__Shim__CreateRequest req = BERTH__SHIM__CREATE_REQUEST__INIT;
                req.stdin = o.in || o.in_once;
                req.stdin_once = o.in_once;
                req.start = o.start;
                req.hold_for_attach = o.hold;
                r = call(&c, "shim.Create", &req.base, &berth__shim__create_response__descriptor,
                         DEFAULT_TIMEOUT_MS);
        } else if (strcmp(cmd, "start") == 0) {
                Berth__Shim__StartRequest req = BERTH__SHIM__START_REQUEST__INIT;
                req.exec_id = (char *) (o.exec_id ? o.exec_id : "");
                r = call(&c, "shim.Start", &req.base, &berth__shim__start_response__descriptor, DEFAULT_TIMEOUT_MS);
        } else if (strcmp(cmd, "state") == 0) {
                Berth__Shim__StateRequest req = BERTH__SHIM__STATE_REQUEST__INIT;
                req.exec_id = (char *) (o.exec_id ? o.exec_id : "");
                r = call(&c, "shim.State", &req.base, &berth__shim__state_response__descriptor, DEFAULT_TIMEOUT_MS);
        } else if (strcmp(cmd, "wait") == 0) {
                Berth__Shim__WaitRequest req = BERTH__SHIM__WAIT_REQUEST__INIT;
                req.exec_id = (char *) (o.exec_id ? o.exec_id : "");
                r = call(&c, "shim.Wait", &req.base, &berth__shim__wait_response__descriptor, RPC_NO_TIMEOUT);
        } else if (strcmp(cmd, "kill") == 0) {
                Berth__Shim__KillRequest req = BERTH__SHIM__KILL_REQUEST__INIT;
                req.exec_id = (char *) (o.exec_id ? o.exec_id : "");
                req.all = o.all;
                int sig = argc > 0 ? signal_parse(argv[0], false) : SIGTERM;
                if (sig < 0)
                        return usage_error("kill: unknown signal \"%s\"", argv[0]);
                req.signal = (uint32_t) sig;
                r = call(&c, "shim.Kill", &req.base, &berth__shim__kill_response__descriptor, DEFAULT_TIMEOUT_MS);
        } else if (strcmp(cmd, "exec") == 0) {
                r = cmd_exec(&c, &o, argc, argv);
        } else if (strcmp(cmd, "resize") == 0) {
                Berth__Shim__ResizePtyRequest req = BERTH__SHIM__RESIZE_PTY_REQUEST__INIT;
                if (argc < 2)
                        return usage_error("resize: expected WIDTH HEIGHT");
                req.exec_id = (char *) (o.exec_id ? o.exec_id : "");
                req.width = (uint32_t) strtoul(argv[0], NULL, 10);
                req.height = (uint32_t) strtoul(argv[1], NULL, 10);
                r = call(&c, "shim.ResizePty", &req.base, &berth__shim__resize_pty_response__descriptor,
                         DEFAULT_TIMEOUT_MS);
        } else if (strcmp(cmd, "close-stdin") == 0) {
                Berth__Shim__CloseStdinRequest req = BERTH__SHIM__CLOSE_STDIN_REQUEST__INIT;
                req.exec_id = (char *) (o.exec_id ? o.exec_id : "");
                r = call(&c, "shim.CloseStdin", &req.base, &berth__shim__close_stdin_response__descriptor,
                         DEFAULT_TIMEOUT_MS);
        } else if (strcmp(cmd, "pids") == 0) {
                Berth__Shim__PidsRequest req = BERTH__SHIM__PIDS_REQUEST__INIT;
                r = call(&c, "shim.Pids", &req.base, &berth__shim__pids_response__descriptor, DEFAULT_TIMEOUT_MS);
        } else if (strcmp(cmd, "stats") == 0) {
                Berth__Shim__StatsRequest req = BERTH__SHIM__STATS_REQUEST__INIT;
                r = call(&c, "shim.Stats", &req.base, &berth__shim__stats_response__descriptor, DEFAULT_TIMEOUT_MS);
        } else if (strcmp(cmd, "pause") == 0) {
                Berth__Shim__PauseRequest req = BERTH__SHIM__PAUSE_REQUEST__INIT;
                r = call(&c, "shim.Pause", &req.base, &berth__shim__pause_response__descriptor, DEFAULT_TIMEOUT_MS);
        } else if (strcmp(cmd, "resume") == 0) {
                Berth__Shim__ResumeRequest req = BERTH__SHIM__RESUME_REQUEST__INIT;
                r = call(&c, "shim.Resume", &req.base, &berth__shim__resume_response__descriptor,
                         DEFAULT_TIMEOUT_MS);
        } else if (strcmp(cmd, "update") == 0) {
                Berth__Shim__UpdateRequest req = BERTH__SHIM__UPDATE_REQUEST__INIT;
                _cleanup_free_ char *json = NULL;
                size_t len;
                if (argc < 1 || read_file_or_stdin(argv[0], &json, &len) < 0)
                        return usage_error("update: expected a readable FILE");
                req.resources_json.data = (uint8_t *) json;
                req.resources_json.len = len;
                r = call(&c, "shim.Update", &req.base, &berth__shim__update_response__descriptor,
                         DEFAULT_TIMEOUT_MS);
        } else if (strcmp(cmd, "delete") == 0) {
                Berth__Shim__DeleteRequest req = BERTH__SHIM__DELETE_REQUEST__INIT;
                req.exec_id = (char *) (o.exec_id ? o.exec_id : "");
                req.force = o.force;
                r = call(&c, "shim.Delete", &req.base, &berth__shim__delete_response__descriptor,
                         DEFAULT_TIMEOUT_MS);
        } else if (strcmp(cmd, "shutdown") == 0) {
                Berth__Shim__ShutdownRequest req = BERTH__SHIM__SHUTDOWN_REQUEST__INIT;
                req.now = o.now;
                r = call(&c, "shim.Shutdown", &req.base, &berth__shim__shutdown_response__descriptor,
                         DEFAULT_TIMEOUT_MS);
        } else if (strcmp(cmd, "call") == 0) {
                r = cmd_call(&c, &o, argc, argv);
        } else if (strcmp(cmd, "raw") == 0) {
                r = cmd_raw(&c, argc, argv);
        } else if (strcmp(cmd, "lifecycle") == 0) {
                r = cmd_lifecycle(&c);
        } else if (strcmp(cmd, "attach") == 0) {
                r = cmd_attach(&c, &o);
        } else {
                usage_error("unknown command \"%s\"", cmd);
        }
        free(o.env);
        return r;
}

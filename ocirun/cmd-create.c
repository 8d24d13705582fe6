/* ocirun create / run / start */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "console.h"
#include "container.h"
#include "log.h"

static int parse_create(const char *verb, int argc, char **argv, const struct global_opts *g, struct create_opts *o,
                        bool *ret_detach)
{
        static const struct option opts[] = {
                { "bundle", required_argument, NULL, 'b' },
                { "console-socket", required_argument, NULL, 'c' },
                { "pid-file", required_argument, NULL, 'p' },
                { "no-pivot", no_argument, NULL, 'P' },
                { "no-new-keyring", no_argument, NULL, 'K' },
                { "preserve-fds", required_argument, NULL, 'F' },
                { "detach", no_argument, NULL, 'd' },
                { "keep", no_argument, NULL, 'k' },
                { "no-subreaper", no_argument, NULL, 'S' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        bool is_run = strcmp(verb, "run") == 0;
        int c;

        *o = (struct create_opts) { .root = g->root, .bundle = "." };
        optind = 0;
        while ((c = getopt_long(argc, argv, is_run ? "+b:dh" : "+b:h", opts, NULL)) != -1) {
                switch (c) {
                case 'b':
                        o->bundle = optarg;
                        break;
                case 'c':
                        o->console_socket = optarg;
                        break;
                case 'p':
                        o->pid_file = optarg;
                        break;
                case 'P':
                        o->no_pivot = true;
                        break;
                case 'K':
                        o->no_new_keyring = true;
                        break;
                case 'F': {
                        char *end;
                        long n = strtol(optarg, &end, 10);
                        if (*end || n < 0 || n > 65536)
                                return cli_usage_error(verb, "invalid --preserve-fds \"%s\"", optarg);
                        o->preserve_fds = (int) n;
                        break;
                }
                case 'd':
                case 'k':
                case 'S':
                        if (!is_run)
                                return cli_usage_error(verb, "unknown option");
                        if (c == 'd')
                                *ret_detach = true;
                        break;
                case 'h':
                        printf("Usage: ocirun %s [--bundle DIR] [--pid-file FILE] [--console-socket PATH] [--no-pivot]\n"
                               "       [--no-new-keyring] [--preserve-fds N]%s <container-id>\n",
                               verb, is_run ? " [--detach]" : "");
                        return -1;
                default:
                        return cli_usage_error(verb, "unknown option");
                }
        }
        if (cli_expect_args(verb, "<container-id>", argc - optind, 1, 1))
                return 1;
        o->id = argv[optind];
        return 0;
}

int cmd_create(const struct global_opts *g, int argc, char **argv)
{
        struct create_opts o;
        struct berr e = { 0 };
        sigset_t saved;
        pid_t pid;
        int master = -1;
        bool detach = false;

        int r = parse_create("create", argc, argv, g, &o, &detach);
        if (r)
                return r < 0 ? 0 : r;
        if (container_create(&o, &pid, &saved, &master, &e) < 0)
                return cli_fail(&e);
        sigprocmask(SIG_SETMASK, &saved, NULL);
        return 0;
}

int cmd_start(const struct global_opts *g, int argc, char **argv)
{
        struct berr e = { 0 };
        if (cli_expect_args("start", "<container-id>", argc - 1, 1, 1))
                return 1;
        if (container_start(g->root, argv[1], &e) < 0)
                return cli_fail(&e);
        return 0;
}

int cmd_run(const struct global_opts *g, int argc, char **argv)
{
        struct create_opts o;
        struct berr e = { 0 };
        sigset_t saved;
        pid_t pid;
        _cleanup_close_ int master = -1;
        bool detach = false;

        int r = parse_create("run", argc, argv, g, &o, &detach);
        if (r)
                return r < 0 ? 0 : r;
        if (!detach) {
                prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
                o.console_to_caller = !o.console_socket;
        }
        if (container_create(&o, &pid, &saved, &master, &e) < 0)
                return cli_fail(&e);

        if (container_start(o.root, o.id, &e) < 0) {
                _cleanup_(state_freep) struct container_state *st = NULL;
                if (state_load(o.root, o.id, &st, NULL) == 0)
                        container_destroy(o.root, st);
                return cli_fail(&e);
        }
        if (detach) {
                sigprocmask(SIG_SETMASK, &saved, NULL);
                return 0;
        }

        int code = wait_foreground(pid, master);
        _cleanup_(state_freep) struct container_state *st = NULL;
        if (state_load(o.root, o.id, &st, &e) == 0)
                container_destroy(o.root, st);
        sigprocmask(SIG_SETMASK, &saved, NULL);
        return code;
}

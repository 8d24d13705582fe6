/* ocirun exec */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "cleanup.h"
#include "cli.h"
#include "console.h"
#include "container.h"
#include "log.h"

static int push(char ***v, size_t *n, const char *s)
{
        char **nv = realloc(*v, (*n + 2) * sizeof(char *));
        if (!nv)
                return -ENOMEM;
        nv[(*n)++] = (char *) s;
        nv[*n] = NULL;
        *v = nv;
        return 0;
}

int cmd_exec(const struct global_opts *g, int argc, char **argv)
{
        static const struct option opts[] = {
                { "console-socket", required_argument, NULL, 'C' },
                { "cwd", required_argument, NULL, 'w' },
                { "env", required_argument, NULL, 'e' },
                { "tty", no_argument, NULL, 't' },
                { "user", required_argument, NULL, 'u' },
                { "additional-gids", required_argument, NULL, 'g' },
                { "process", required_argument, NULL, 'p' },
                { "detach", no_argument, NULL, 'd' },
                { "pid-file", required_argument, NULL, 'P' },
                { "process-label", required_argument, NULL, 'L' },
                { "apparmor", required_argument, NULL, 'A' },
                { "no-new-privs", no_argument, NULL, 'N' },
                { "cap", required_argument, NULL, 'c' },
                { "preserve-fds", required_argument, NULL, 'F' },
                { "ignore-paused", no_argument, NULL, 'I' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct exec_opts o = { .root = g->root };
        _cleanup_free_ char **env = NULL, **caps = NULL;
        _cleanup_free_ uint32_t *gids = NULL;
        size_t n_env = 0, n_caps = 0;
        struct berr e = { 0 };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+e:tu:g:p:dc:h", opts, NULL)) != -1) {
                switch (c) {
                case 'C':
                        o.console_socket = optarg;
                        break;
                case 'w':
                        o.cwd = optarg;
                        break;
                case 'e':
                        if (push(&env, &n_env, optarg) < 0)
                                return 1;
                        break;
                case 't':
                        o.tty = true;
                        break;
                case 'u':
                        o.user = optarg;
                        break;
                case 'g': {
                        char *end;
                        unsigned long v = strtoul(optarg, &end, 10);
                        if (end == optarg || *end)
                                return cli_usage_error("exec", "invalid --additional-gids \"%s\"", optarg);
                        uint32_t *ng = realloc(gids, (o.n_additional_gids + 1) * sizeof(uint32_t));
                        if (!ng)
                                return 1;
                        gids = ng;
                        gids[o.n_additional_gids++] = (uint32_t) v;
                        break;
                }
                case 'p':
                        o.process_file = optarg;
                        break;
                case 'd':
                        o.detach = true;
                        break;
                case 'P':
                        o.pid_file = optarg;
                        break;
                case 'L':
                        break; /* SELinux labels: no SELinux on the hosts ocirun supports yet; see docs */
                case 'A':
                        o.apparmor = optarg;
                        break;
                case 'N':
                        o.no_new_privs = true;
                        break;
                case 'c':
                        if (push(&caps, &n_caps, optarg) < 0)
                                return 1;
                        break;
                case 'F': {
                        char *end;
                        long n = strtol(optarg, &end, 10);
                        if (*end || n < 0 || n > 65536)
                                return cli_usage_error("exec", "invalid --preserve-fds \"%s\"", optarg);
                        o.preserve_fds = (int) n;
                        break;
                }
                case 'I':
                        o.ignore_paused = true;
                        break;
                case 'h':
                        printf("Usage: ocirun exec [options] <container-id> <command> [args...]\n"
                               "       ocirun exec [options] --process FILE <container-id>\n");
                        return 0;
                default:
                        return cli_usage_error("exec", "unknown option");
                }
        }
        if (argc - optind < 1)
                return cli_usage_error("exec", "expects a container id");
        o.id = argv[optind];
        o.args = argv + optind + 1;
        o.env = env;
        o.caps = caps;
        o.additional_gids = gids;
        if (o.process_file && o.args[0])
                return cli_usage_error("exec", "give either --process or a command, not both");

        sigset_t saved;
        pid_t pid;
        _cleanup_close_ int master = -1;
        if (!o.detach)
                prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        if (container_exec(&o, &pid, &saved, &master, &e) < 0)
                return cli_fail(&e);
        if (o.detach) {
                sigprocmask(SIG_SETMASK, &saved, NULL);
                return 0;
        }
        int code = wait_foreground(pid, master);
        sigprocmask(SIG_SETMASK, &saved, NULL);
        return code;
}

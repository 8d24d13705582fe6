/* ocirun: a runc-compatible OCI runtime. This file only parses the global
 * options and dispatches to the verbs (cmd-*.c). */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "state.h"

static const struct command commands[] = {
        { "checkpoint", "checkpoint a running container (not supported)", cmd_checkpoint },
        { "create", "create a container", cmd_create },
        { "delete", "delete any resources held by the container often used with detached container", cmd_delete },
        { "exec", "execute new process inside the container", cmd_exec },
        { "events", "display container events such as OOM notifications, cpu, memory, and IO usage statistics", cmd_events },
        { "features", "show the enabled features", cmd_features },
        { "kill", "kill sends the specified signal (default: SIGTERM) to the container's init process", cmd_kill },
        { "list", "lists containers started by ocirun with the given root", cmd_list },
        { "pause", "pause suspends all processes inside the container", cmd_pause },
        { "ps", "ps displays the processes running inside a container", cmd_ps },
        { "restore", "restore a container from a previous checkpoint (not supported)", cmd_checkpoint },
        { "resume", "resumes all processes that have been previously paused", cmd_resume },
        { "run", "create and run a container", cmd_run },
        { "spec", "create a new specification file", cmd_spec },
        { "start", "executes the user defined process in a created container", cmd_start },
        { "state", "output the state of a container", cmd_state },
        { "update", "update container resource constraints", cmd_update },
};

static void print_help(void)
{
        printf("NAME:\n   ocirun - Open Container Initiative runtime (berth)\n\n"
               "USAGE:\n   ocirun [global options] command [command options] [arguments...]\n\n"
               "VERSION:\n   %s\n\nCOMMANDS:\n",
               BERTH_VERSION);
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                printf("   %-10s %s\n", commands[i].name, commands[i].summary);
        printf("\nGLOBAL OPTIONS:\n"
               "   --debug             enable debug logging\n"
               "   --log value         set the log file to write ocirun logs to (default is stderr)\n"
               "   --log-format value  set the log format ('text' (default), or 'json') (default: \"text\")\n"
               "   --root value        root directory for storage of container state (default: \"%s\")\n"
               "   --systemd-cgroup    enable systemd cgroup support (not supported by ocirun)\n"
               "   --help, -h          show help\n"
               "   --version, -v       print the version\n",
               STATE_DEFAULT_ROOT);
}

int cli_fail(const struct berr *e)
{
        log_error("%s", e->msg[0] ? e->msg : "unknown error");
        return 1;
}

int cli_usage_error(const char *verb, const char *fmt, ...)
{
        char buf[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (verb)
                log_error("%s: %s (see 'ocirun %s --help')", verb, buf, verb);
        else
                log_error("%s (see 'ocirun --help')", buf);
        return 1;
}

int cli_expect_args(const char *verb, const char *usage, int have, int min, int max)
{
        if (have < min || (max >= 0 && have > max))
                return cli_usage_error(verb, "expects %s%s, got %d argument(s): usage: ocirun %s %s",
                                       min == max ? "exactly " : "", usage, have, verb, usage);
        return 0;
}

int cli_print_json(json_t *j)
{
        char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (!s)
                return -ENOMEM;
        puts(s);
        free(s);
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "root", required_argument, NULL, 'r' },
                { "log", required_argument, NULL, 'l' },
                { "log-format", required_argument, NULL, 'f' },
                { "debug", no_argument, NULL, 'd' },
                { "systemd-cgroup", no_argument, NULL, 's' },
                { "rootless", required_argument, NULL, 'R' },
                { "criu", required_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'v' },
                {},
        };
        struct global_opts g = { .root = STATE_DEFAULT_ROOT };
        const char *log_format = "text";
        bool systemd = false;
        int c;

        log_setup("ocirun", LOG_LEVEL_WARN);
        while ((c = getopt_long(argc, argv, "+hv", opts, NULL)) != -1) {
                switch (c) {
                case 'r':
                        g.root = optarg;
                        break;
                case 'l':
                        g.log_path = optarg;
                        break;
                case 'f':
                        log_format = optarg;
                        break;
                case 'd':
                        g.debug = true;
                        break;
                case 's':
                        systemd = true;
                        break;
                case 'R':
                case 'c':
                        break; /* accepted for compatibility; nothing to do */
                case 'h':
                        print_help();
                        return 0;
                case 'v':
                        printf("ocirun version %s\nspec: 1.0.2-dev\n", BERTH_VERSION);
                        return 0;
                default:
                        return cli_usage_error(NULL, "unknown global option");
                }
        }

        enum log_format fmt;
        if (log_format_from_string(log_format, &fmt) < 0)
                return cli_usage_error(NULL, "invalid --log-format \"%s\": use text or json", log_format);
        g.json_log = fmt == LOG_FORMAT_JSON;
        if (g.debug)
                log_set_level(LOG_LEVEL_DEBUG);
        if (g.log_path && *g.log_path) {
                int r = log_open_file(g.log_path, fmt);
                if (r < 0) {
                        log_errno(LOG_LEVEL_ERROR, r, "cannot open log file \"%s\"", g.log_path);
                        return 1;
                }
        }
        if (systemd) {
                log_error("--systemd-cgroup is not supported: ocirun manages cgroups through cgroupfs only");
                return 1;
        }

        if (optind >= argc) {
                print_help();
                return 0;
        }
        const char *verb = argv[optind];
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (strcmp(verb, commands[i].name) == 0) {
                        int rc = commands[i].run(&g, argc - optind, argv + optind);
                        log_close();
                        return rc;
                }
        log_error("no such command \"%s\" (see 'ocirun --help')", verb);
        return 1;
}

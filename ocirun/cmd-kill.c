/* ocirun kill / delete */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cgroup.h"
#include "cleanup.h"
#include "cli.h"
#include "container.h"
#include "log.h"
#include "signals.h"

int cmd_kill(const struct global_opts *g, int argc, char **argv)
{
        static const struct option opts[] = {
                { "all", no_argument, NULL, 'a' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(state_freep) struct container_state *st = NULL;
        struct berr e = { 0 };
        bool all = false;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+ah", opts, NULL)) != -1) {
                if (c == 'a')
                        all = true;
                else if (c == 'h') {
                        printf("Usage: ocirun kill [--all] <container-id> [signal]\n");
                        return 0;
                } else
                        return cli_usage_error("kill", "unknown option");
        }
        if (cli_expect_args("kill", "<container-id> [signal]", argc - optind, 1, 2))
                return 1;
        const char *id = argv[optind];
        const char *signame = optind + 1 < argc ? argv[optind + 1] : "SIGTERM";
        int sig = signal_from_string(signame);
        if (sig < 0)
                return cli_usage_error("kill", "unknown signal \"%s\"", signame);

        if (state_load(g->root, id, &st, &e) < 0)
                return cli_fail(&e);
        enum container_status status = state_status(g->root, st);
        if (status == STATUS_STOPPED && !all) {
                log_error("container \"%s\" is not running", id);
                return 1;
        }
        if (all && st->cgroup_paths) {
                int r = cgroup_paths_kill(st->cgroup_paths, sig);
                if (r < 0) {
                        log_errno(LOG_LEVEL_ERROR, r, "cannot signal the processes of container \"%s\"", id);
                        return 1;
                }
                return 0;
        }
        if (kill(st->pid, sig) < 0) {
                log_errno(LOG_LEVEL_ERROR, errno, "cannot send signal %d to container \"%s\" (pid %d)", sig, id,
                          (int) st->pid);
                return 1;
        }
        return 0;
}

static int delete_one(const struct global_opts *g, const char *id, bool force)
{
        _cleanup_(state_freep) struct container_state *st = NULL;
        struct berr e = { 0 };

        if (state_load(g->root, id, &st, &e) < 0) {
                if (force && e.err == ENOENT) {
                        /* as runc: --force of an unknown id removes any leftover dir */
                        if (state_check_id(id, NULL) == 0)
                                state_remove(g->root, id);
                        return 0;
                }
                return cli_fail(&e);
        }

        enum container_status status = state_status(g->root, st);
        if ((status == STATUS_RUNNING || status == STATUS_PAUSED) && !force) {
                log_error("cannot delete container \"%s\" that is not stopped: %s", id, status_to_string(status));
                return 1;
        }
        if (status != STATUS_STOPPED) {
                if (status == STATUS_PAUSED && st->cgroup_paths)
                        cgroup_paths_kill(st->cgroup_paths, SIGKILL);
                kill(st->pid, SIGKILL);
                if (wait_pid_gone(st->pid, st->start_time, 10000) < 0) {
                        log_error("container \"%s\" (pid %d) did not die after SIGKILL", id, (int) st->pid);
                        return 1;
                }
        }
        return container_destroy(g->root, st) < 0 ? 1 : 0;
}

int cmd_delete(const struct global_opts *g, int argc, char **argv)
{
        static const struct option opts[] = {
                { "force", no_argument, NULL, 'f' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        bool force = false;
        int c, rc = 0;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+fh", opts, NULL)) != -1) {
                if (c == 'f')
                        force = true;
                else if (c == 'h') {
                        printf("Usage: ocirun delete [--force] <container-id>\n");
                        return 0;
                } else
                        return cli_usage_error("delete", "unknown option");
        }
        if (cli_expect_args("delete", "<container-id>", argc - optind, 1, -1))
                return 1;
        for (int i = optind; i < argc; i++)
                if (delete_one(g, argv[i], force))
                        rc = 1;
        return rc;
}

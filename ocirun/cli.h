/* The ocirun command line: global options and one handler per verb
 * (cmd-<verb>.c), as runc has them. Handlers return the process exit code. */
#pragma once

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>

#include "err.h"

struct global_opts {
        const char *root;
        const char *log_path;
        bool debug;
        bool json_log;
};

struct command {
        const char *name;
        const char *summary;
        int (*run)(const struct global_opts *g, int argc, char **argv);
};

int cmd_spec(const struct global_opts *g, int argc, char **argv);
int cmd_create(const struct global_opts *g, int argc, char **argv);
int cmd_run(const struct global_opts *g, int argc, char **argv);
int cmd_start(const struct global_opts *g, int argc, char **argv);
int cmd_state(const struct global_opts *g, int argc, char **argv);
int cmd_kill(const struct global_opts *g, int argc, char **argv);
int cmd_delete(const struct global_opts *g, int argc, char **argv);
int cmd_list(const struct global_opts *g, int argc, char **argv);
int cmd_exec(const struct global_opts *g, int argc, char **argv);
int cmd_pause(const struct global_opts *g, int argc, char **argv);
int cmd_resume(const struct global_opts *g, int argc, char **argv);
int cmd_ps(const struct global_opts *g, int argc, char **argv);
int cmd_update(const struct global_opts *g, int argc, char **argv);
int cmd_events(const struct global_opts *g, int argc, char **argv);
int cmd_checkpoint(const struct global_opts *g, int argc, char **argv);
int cmd_features(const struct global_opts *g, int argc, char **argv);

/* Prints the error (one line) and returns the exit code for it. */
int cli_fail(const struct berr *e);
/* Usage error: "ocirun <verb>: <message>" plus a hint; exit code 1. */
int cli_usage_error(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Checks the positional argument count; prints a usage error otherwise. */
int cli_expect_args(const char *verb, const char *usage, int have, int min, int max);
/* Prints JSON with runc's two-space indentation. */
int cli_print_json(json_t *j);

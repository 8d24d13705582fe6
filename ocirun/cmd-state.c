/* ocirun state / list */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "cli.h"
#include "log.h"
#include "state.h"

int cmd_state(const struct global_opts *g, int argc, char **argv)
{
        _cleanup_(state_freep) struct container_state *st = NULL;
        struct berr e = { 0 };

        if (cli_expect_args("state", "<container-id>", argc - 1, 1, 1))
                return 1;
        if (state_load(g->root, argv[1], &st, &e) < 0)
                return cli_fail(&e);
        json_t *j = state_to_json(st, state_status(g->root, st));
        if (!j)
                return 1;
        cli_print_json(j);
        json_decref(j);
        return 0;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* A row's value as text: numbers formatted, strings as they are. */
static const char *cell_text(json_t *v, char *buf, size_t len)
{
        if (!json_is_integer(v))
                return json_string_value(v);
        snprintf(buf, len, "%lld", (long long) json_integer_value(v));
        return buf;
}

static void print_cell(int col, size_t width, const char *s)
{
        if (col < 5)
                printf("%-*s", (int) width, s);
        else
                printf("%s\n", s);
}

/* Like Go's tabwriter as runc uses it: minwidth 12, padding 3. */
static void print_table(json_t *rows)
{
        static const char *const cols[] = { "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER" };
        static const char *const keys[] = { "id", "pid", "status", "bundle", "created", "owner" };
        size_t width[6];
        size_t i;
        json_t *row;

        for (int c = 0; c < 6; c++)
                width[c] = strlen(cols[c]);
        json_array_foreach(rows, i, row) {
                for (int c = 0; c < 6; c++) {
                        char buf[64];
                        const char *s = cell_text(json_object_get(row, keys[c]), buf, sizeof(buf));
                        if (s && strlen(s) > width[c])
                                width[c] = strlen(s);
                }
        }
        for (int c = 0; c < 5; c++)
                width[c] = width[c] + 3 < 12 ? 12 : width[c] + 3;

        for (int c = 0; c < 6; c++)
                print_cell(c, width[c], cols[c]);
        json_array_foreach(rows, i, row) {
                for (int c = 0; c < 6; c++) {
                        char buf[64];
                        const char *s = cell_text(json_object_get(row, keys[c]), buf, sizeof(buf));
                        print_cell(c, width[c], s ? s : "");
                }
        }
}

int cmd_list(const struct global_opts *g, int argc, char **argv)
{
        static const struct option opts[] = {
                { "format", required_argument, NULL, 'f' },
                { "quiet", no_argument, NULL, 'q' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *format = "table";
        bool quiet = false;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+f:qh", opts, NULL)) != -1) {
                switch (c) {
                case 'f':
                        format = optarg;
                        break;
                case 'q':
                        quiet = true;
                        break;
                case 'h':
                        printf("Usage: ocirun list [--format table|json] [--quiet]\n");
                        return 0;
                default:
                        return cli_usage_error("list", "unknown option");
                }
        }
        if (strcmp(format, "table") != 0 && strcmp(format, "json") != 0)
                return cli_usage_error("list", "invalid format option \"%s\": use table or json", format);

        json_t *rows = json_array();
        _cleanup_closedir_ DIR *d = opendir(g->root);
        if (d) {
                struct dirent *de;
                char **ids = NULL;
                size_t n = 0;
                while ((de = readdir(d))) {
                        if (de->d_name[0] == '.')
                                continue;
                        char **nids = realloc(ids, (n + 1) * sizeof(char *));
                        if (!nids)
                                break;
                        ids = nids;
                        ids[n++] = strdup(de->d_name);
                }
                if (n)
                        qsort(ids, n, sizeof(char *), cmp_str);
                for (size_t i = 0; i < n; i++) {
                        struct container_state *st = NULL;
                        if (ids[i] && state_load(g->root, ids[i], &st, NULL) == 0) {
                                json_array_append_new(rows, state_to_json(st, state_status(g->root, st)));
                                state_free(st);
                        }
                        free(ids[i]);
                }
                free(ids);
        } else if (errno != ENOENT) {
                log_errno(LOG_LEVEL_ERROR, errno, "cannot read \"%s\"", g->root);
                json_decref(rows);
                return 1;
        }

        if (quiet) {
                size_t i;
                json_t *row;
                json_array_foreach(rows, i, row) puts(json_string_value(json_object_get(row, "id")));
        } else if (strcmp(format, "json") == 0) {
                if (json_array_size(rows) == 0)
                        puts("null");
                else {
                        char *s = json_dumps(rows, JSON_COMPACT | JSON_PRESERVE_ORDER);
                        if (s)
                                puts(s);
                        free(s);
                }
        } else
                print_table(rows);
        json_decref(rows);
        return 0;
}

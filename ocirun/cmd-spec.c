/* ocirun spec */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "fs-util.h"
#include "json-util.h"
#include "log.h"
#include "spec.h"

int cmd_spec(const struct global_opts *g, int argc, char **argv)
{
        static const struct option opts[] = {
                { "bundle", required_argument, NULL, 'b' },
                { "rootless", no_argument, NULL, 'r' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *bundle = ".";
        bool rootless = false;
        _cleanup_free_ char *path = NULL;
        int c;

        (void) g;
        optind = 0;
        while ((c = getopt_long(argc, argv, "+b:h", opts, NULL)) != -1) {
                switch (c) {
                case 'b':
                        bundle = optarg;
                        break;
                case 'r':
                        rootless = true;
                        break;
                case 'h':
                        printf("Usage: ocirun spec [--bundle DIR] [--rootless]\n");
                        return 0;
                default:
                        return cli_usage_error("spec", "unknown option");
                }
        }
        if (cli_expect_args("spec", "no arguments", argc - optind, 0, 0))
                return 1;

        if (asprintf(&path, "%s/config.json", bundle) < 0)
                return 1;
        if (access(path, F_OK) == 0) {
                log_error("file \"%s\" exists: remove it first", path);
                return 1;
        }
        json_t *spec = spec_default(rootless);
        if (!spec)
                return 1;
        _cleanup_free_ char *s = json_dumps(spec, JSON_INDENT(8) | JSON_PRESERVE_ORDER);
        json_decref(spec);
        if (!s)
                return 1;
        /* O_EXCL: never clobber a config.json that appeared meanwhile */
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0) {
                log_errno(LOG_LEVEL_ERROR, errno, "cannot create \"%s\"", path);
                return 1;
        }
        size_t len = strlen(s);
        if (write(fd, s, len) != (ssize_t) len) {
                log_errno(LOG_LEVEL_ERROR, errno, "cannot write \"%s\"", path);
                unlink(path);
                return 1;
        }
        return 0;
}

/* Name resolution: maintained /etc/hosts files (see docs/decisions.md).
 *
 * The engine writes c->dir/hosts at create (localhost, --add-host); this
 * module appends, after a marker line, the container's own address with
 * its hostname and, on user-defined networks, one line per other member
 * (its name and aliases). The file is rewritten in place, never renamed:
 * it is bind-mounted into the container by inode. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs-util.h"
#include "log.h"
#include "network-internal.h"

#define MARKER "# berth: the container's networks (maintained by berth-engine)\n"

static void names(FILE *f, json_t *ep, const char *first)
{
        const char *name = json_string_value(json_object_get(ep, "Name"));
        if (first)
                fprintf(f, " %s", first);
        if (name && *name && (!first || strcmp(name, first)))
                fprintf(f, " %s", name);
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(ep, "Aliases"), i, a)
        {
                const char *s = json_string_value(a);
                if (s && *s && (!name || strcmp(s, name)) && (!first || strcmp(s, first)))
                        fprintf(f, " %s", s);
        }
}

void net_hosts_write(const char *ctr_id)
{
        _cleanup_free_ char *path = NULL, *old = NULL, *out = NULL;
        size_t n_old = 0, n_out = 0;
        if (!net_store.ctr_root || asprintf(&path, "%s/%s/hosts", net_store.ctr_root, ctr_id) < 0)
                return;
        if (fs_read_file(path, 1 << 20, &old, &n_old) < 0)
                return;
        char *m = strstr(old, MARKER);
        if (m)
                *m = '\0';
        FILE *f = open_memstream(&out, &n_out);
        if (!f)
                return;
        fputs(old, f);
        bool marked = false;
        for (struct network *n = net_store.list; n; n = n->next) {
                json_t *eps = json_object_get(n->doc, "Endpoints");
                json_t *self = json_object_get(eps, ctr_id);
                if (!self)
                        continue;
                if (!marked)
                        fputs(MARKER, f);
                marked = true;
                const char *ip = json_string_value(json_object_get(self, "IPAddress"));
                const char *hn = json_string_value(json_object_get(self, "Hostname"));
                fprintf(f, "%s\t%s", ip ? ip : "", hn ? hn : "");
                if (!n->predefined)
                        names(f, self, hn);
                fputc('\n', f);
                if (n->predefined)
                        continue; /* as Docker: no name resolution on the default bridge */
                const char *k;
                json_t *ep;
                json_object_foreach(eps, k, ep)
                {
                        if (!strcmp(k, ctr_id))
                                continue;
                        fprintf(f, "%s\t", json_string_value(json_object_get(ep, "IPAddress")) ?: "");
                        names(f, ep, NULL);
                        fputc('\n', f);
                }
        }
        fclose(f);
        if (!out)
                return;
        _cleanup_close_ int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 || fs_write_all(fd, out, n_out) < 0)
                log_warn("engine: rewriting \"%s\": %s", path, strerror(errno));
}

void net_hosts_update(struct network *n, const char *ctr_id)
{
        const char *k;
        json_t *ep;
        json_object_foreach(json_object_get(n->doc, "Endpoints"), k, ep) net_hosts_write(k);
        if (ctr_id && !json_object_get(json_object_get(n->doc, "Endpoints"), ctr_id))
                net_hosts_write(ctr_id);
}

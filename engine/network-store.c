/* The networks and their endpoints, as records under
 * <data root>/engine/network/<id>.json (written atomically on every
 * change), address allocation (IPAM) and host port reservation.
 *
 * An endpoint is in its network's record from the container's start to
 * its exit: the record is what the engine holds after a restart, so an
 * address or a port is never given twice. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "engine.h"
#include "fs-util.h"
#include "log.h"
#include "network-internal.h"
#include "time-util.h"

struct net_store net_store;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void net_lock(void)
{
        pthread_mutex_lock(&lock);
}

void net_unlock(void)
{
        pthread_mutex_unlock(&lock);
}

void net_random_hex(char *buf, size_t n_hex)
{
        unsigned char b[64];
        size_t n = (n_hex + 1) / 2;
        if (n > sizeof(b))
                n = sizeof(b);
        if (getrandom(b, n, 0) != (ssize_t) n)
                for (size_t i = 0; i < n; i++)
                        b[i] = (unsigned char) random();
        for (size_t i = 0; i < n_hex && i / 2 < n; i++)
                buf[i] = "0123456789abcdef"[i % 2 ? b[i / 2] & 15 : b[i / 2] >> 4];
        buf[n_hex] = '\0';
}

int net_parse_cidr(const char *s, struct in_addr *ret_addr, int *ret_prefix, bool mask)
{
        char buf[64];
        if (!s || strlen(s) >= sizeof(buf))
                return -EINVAL;
        snprintf(buf, sizeof(buf), "%s", s);
        char *slash = strchr(buf, '/');
        if (!slash)
                return -EINVAL;
        *slash++ = '\0';
        char *end;
        long p = strtol(slash, &end, 10);
        if (!*slash || *end || p < 0 || p > 32)
                return -EINVAL;
        struct in_addr a;
        if (inet_pton(AF_INET, buf, &a) != 1)
                return -EINVAL;
        if (mask)
                a.s_addr &= p ? htonl(0xffffffffu << (32 - p)) : 0;
        *ret_addr = a;
        *ret_prefix = (int) p;
        return 0;
}

bool net_subnets_overlap(struct in_addr a, int pa, struct in_addr b, int pb)
{
        int p = pa < pb ? pa : pb;
        uint32_t m = p ? 0xffffffffu << (32 - p) : 0;
        return (ntohl(a.s_addr) & m) == (ntohl(b.s_addr) & m);
}

bool net_in_subnet(const struct network *n, struct in_addr ip)
{
        return net_subnets_overlap(n->subnet, n->prefix, ip, 32);
}

/* The list is kept in id order: the ruleset made from it is the same
 * before and after a restart. */
static void list_insert(struct network *n)
{
        struct network **p = &net_store.list;
        while (*p && strcmp((*p)->id, n->id) < 0)
                p = &(*p)->next;
        n->next = *p;
        *p = n;
}

static int network_from_doc(json_t *doc, struct network **ret)
{
        struct network *n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        const char *id = json_string_value(json_object_get(doc, "Id"));
        const char *name = json_string_value(json_object_get(doc, "Name"));
        const char *br = json_string_value(json_object_get(doc, "Bridge"));
        json_t *cfg = json_array_get(json_object_get(json_object_get(doc, "IPAM"), "Config"), 0);
        const char *subnet = json_string_value(json_object_get(cfg, "Subnet"));
        const char *gw = json_string_value(json_object_get(cfg, "Gateway"));
        if (!id || strlen(id) != 64 || !name || !br || strlen(br) >= sizeof(n->bridge) || !gw ||
            net_parse_cidr(subnet, &n->subnet, &n->prefix, true) < 0 || inet_pton(AF_INET, gw, &n->gateway) != 1) {
                free(n);
                return -EINVAL;
        }
        snprintf(n->id, sizeof(n->id), "%s", id);
        snprintf(n->name, sizeof(n->name), "%s", name);
        snprintf(n->bridge, sizeof(n->bridge), "%s", br);
        n->internal = json_is_true(json_object_get(doc, "Internal"));
        n->predefined = json_is_true(json_object_get(doc, "Predefined"));
        if (!json_is_object(json_object_get(doc, "Endpoints")))
                json_object_set_new(doc, "Endpoints", json_object());
        n->doc = json_incref(doc);
        *ret = n;
        return 0;
}

int net_store_save(struct network *n)
{
        _cleanup_free_ char *path = NULL, *s = json_dumps(n->doc, JSON_COMPACT);
        if (!s || asprintf(&path, "%s/%s.json", net_store.dir, n->id) < 0)
                return -ENOMEM;
        int r = fs_write_atomic(path, s, strlen(s), 0600);
        if (r < 0)
                log_error("engine: writing \"%s\": %s", path, strerror(-r));
        return r;
}

int net_store_load(struct engine *en)
{
        if (asprintf(&net_store.dir, "%s/engine/network", en->data_root) < 0 ||
            asprintf(&net_store.netns_dir, "%s/netns", en->exec_root) < 0 ||
            asprintf(&net_store.ctr_root, "%s/engine/containers", en->data_root) < 0)
                return -ENOMEM;
        int r = fs_mkdir_p(net_store.dir, 0700);
        if (r < 0)
                return r;
        _cleanup_closedir_ DIR *d = opendir(net_store.dir);
        if (!d)
                return -errno;
        struct dirent *e;
        while ((e = readdir(d))) {
                size_t len = strlen(e->d_name);
                if (len != 69 || strcmp(e->d_name + 64, ".json"))
                        continue;
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s/%s", net_store.dir, e->d_name) < 0)
                        return -ENOMEM;
                json_error_t jerr;
                json_t *doc = json_load_file(path, 0, &jerr);
                struct network *n = NULL;
                if (!doc || network_from_doc(doc, &n) < 0) {
                        log_warn("engine: ignoring the network record \"%s\": %s", path,
                                 doc ? "incomplete" : jerr.text);
                        json_decref(doc);
                        continue;
                }
                json_decref(doc);
                list_insert(n);
        }
        return 0;
}

void net_store_free(void)
{
        while (net_store.list) {
                struct network *n = net_store.list;
                net_store.list = n->next;
                json_decref(n->doc);
                free(n);
        }
        free(net_store.dir);
        free(net_store.netns_dir);
        free(net_store.ctr_root);
        net_store.dir = net_store.netns_dir = net_store.ctr_root = NULL;
}

struct network *net_default(void)
{
        for (struct network *n = net_store.list; n; n = n->next)
                if (n->predefined)
                        return n;
        return NULL;
}

struct network *net_find(const char *ref, bool *ambiguous)
{
        if (ambiguous)
                *ambiguous = false;
        if (!ref || !*ref)
                return NULL;
        for (struct network *n = net_store.list; n; n = n->next)
                if (!strcmp(n->name, ref) || !strcmp(n->id, ref))
                        return n;
        struct network *hit = NULL;
        size_t len = strlen(ref);
        for (struct network *n = net_store.list; n; n = n->next)
                if (!strncmp(n->id, ref, len)) {
                        if (hit) {
                                if (ambiguous)
                                        *ambiguous = true;
                                return NULL;
                        }
                        hit = n;
                }
        return hit;
}

/* A free /16 for a network created without a subnet: 10.210.0.0/16 to
 * 10.249.0.0/16, clear of the other networks and of the host's routes. */
static int pick_subnet(struct in_addr *ret, int *ret_prefix)
{
        for (unsigned b = 210; b < 250; b++) {
                struct in_addr a = { .s_addr = htonl((10u << 24) | (b << 16)) };
                bool clash = false;
                for (struct network *n = net_store.list; n && !clash; n = n->next)
                        clash = net_subnets_overlap(n->subnet, n->prefix, a, 16);
                if (clash || (net_store.nl && net_link_route_overlaps(net_store.nl, a, 16)))
                        continue;
                *ret = a;
                *ret_prefix = 16;
                return 0;
        }
        return -ENOSPC;
}

int net_store_add(const char *name, const char *subnet_cidr, const char *gateway, bool internal, json_t *labels,
                  json_t *options, bool predefined, struct network **ret, char *err, size_t errlen)
{
        struct in_addr subnet, gw;
        int prefix;
        if (subnet_cidr && *subnet_cidr) {
                struct in_addr raw;
                if (net_parse_cidr(subnet_cidr, &raw, &prefix, false) < 0) {
                        snprintf(err, errlen, "invalid CIDR address: %s", subnet_cidr);
                        return -EINVAL;
                }
                if (prefix > 30 || prefix < 8) {
                        snprintf(err, errlen, "invalid subnet %s: the prefix must be between /8 and /30", subnet_cidr);
                        return -EINVAL;
                }
                net_parse_cidr(subnet_cidr, &subnet, &prefix, true);
        } else if (pick_subnet(&subnet, &prefix) < 0) {
                snprintf(err, errlen, "could not find an available, non-overlapping IPv4 address pool among the "
                                      "defaults to assign to the network");
                return -ENOSPC;
        }
        for (struct network *n = net_store.list; n; n = n->next)
                if (net_subnets_overlap(n->subnet, n->prefix, subnet, prefix)) {
                        char a[INET_ADDRSTRLEN];
                        inet_ntop(AF_INET, &n->subnet, a, sizeof(a));
                        snprintf(err, errlen, "Pool overlaps with other one on this address space (%s/%d of %s)", a,
                                 n->prefix, n->name);
                        return -EPERM;
                }
        if (gateway && *gateway) {
                if (inet_pton(AF_INET, gateway, &gw) != 1) {
                        snprintf(err, errlen, "invalid gateway address: %s", gateway);
                        return -EINVAL;
                }
                uint32_t host = ntohl(gw.s_addr) & (0xffffffffu >> prefix);
                if (!net_subnets_overlap(subnet, prefix, gw, 32) || host == 0 || host == (0xffffffffu >> prefix)) {
                        snprintf(err, errlen, "no matching subnet for gateway %s", gateway);
                        return -EINVAL;
                }
        } else {
                gw.s_addr = htonl(ntohl(subnet.s_addr) + 1);
        }
        char id[65], bridge[16], sub[INET_ADDRSTRLEN], gws[INET_ADDRSTRLEN], subs[64], now[64];
        net_random_hex(id, 64);
        if (predefined)
                snprintf(bridge, sizeof(bridge), "berth0");
        else
                snprintf(bridge, sizeof(bridge), "br-%.12s", id);
        inet_ntop(AF_INET, &subnet, sub, sizeof(sub));
        inet_ntop(AF_INET, &gw, gws, sizeof(gws));
        snprintf(subs, sizeof(subs), "%s/%d", sub, prefix);
        json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:{s:s, s:n, s:[{s:s, s:s}]}, s:o, s:o, s:{}}",
                                "Name", name, "Id", id, "Created", time_now_rfc3339_nano(now, sizeof(now)), "Driver",
                                "bridge", "Bridge", bridge, "Internal", internal, "Predefined", predefined, "Attachable",
                                0, "IPAM", "Driver", "default", "Options", "Config", "Subnet", subs, "Gateway", gws,
                                "Labels", json_is_object(labels) ? json_incref(labels) : json_object(), "Options",
                                json_is_object(options) ? json_incref(options) : json_object(), "Endpoints");
        if (!doc)
                return -ENOMEM;
        struct network *n = NULL;
        int r = network_from_doc(doc, &n);
        json_decref(doc);
        if (r < 0)
                return r;
        if ((r = net_store_save(n)) < 0) {
                snprintf(err, errlen, "engine: writing the network's record: %s", strerror(-r));
                json_decref(n->doc);
                free(n);
                return r;
        }
        list_insert(n);
        *ret = n;
        return 0;
}

void net_store_delete(struct network *n)
{
        for (struct network **p = &net_store.list; *p; p = &(*p)->next)
                if (*p == n) {
                        *p = n->next;
                        break;
                }
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/%s.json", net_store.dir, n->id) >= 0 && unlink(path) < 0 && errno != ENOENT)
                log_warn("engine: removing \"%s\": %s", path, strerror(errno));
        json_decref(n->doc);
        free(n);
}

static bool ip_used(struct network *n, struct in_addr ip)
{
        if (ip.s_addr == n->gateway.s_addr)
                return true;
        const char *k;
        json_t *ep;
        json_object_foreach(json_object_get(n->doc, "Endpoints"), k, ep)
        {
                struct in_addr a;
                const char *s = json_string_value(json_object_get(ep, "IPAddress"));
                if (s && inet_pton(AF_INET, s, &a) == 1 && a.s_addr == ip.s_addr)
                        return true;
        }
        return false;
}

int net_ipam_alloc(struct network *n, struct in_addr want, struct in_addr *ret)
{
        uint32_t base = ntohl(n->subnet.s_addr), size = 1u << (32 - n->prefix);
        if (want.s_addr) {
                uint32_t h = ntohl(want.s_addr) - base;
                if (!net_in_subnet(n, want) || h == 0 || h == size - 1)
                        return -EINVAL;
                if (ip_used(n, want))
                        return -EADDRINUSE;
                *ret = want;
                return 0;
        }
        for (uint32_t h = 1; h < size - 1; h++) {
                struct in_addr a = { .s_addr = htonl(base + h) };
                if (!ip_used(n, a)) {
                        *ret = a;
                        return 0;
                }
        }
        return -ENOSPC;
}

/* ---- host ports ---- */

static bool port_in_records(const char *proto, const char *host_ip, unsigned port, const char *except_ctr)
{
        for (struct network *n = net_store.list; n; n = n->next) {
                const char *k;
                json_t *ep;
                json_object_foreach(json_object_get(n->doc, "Endpoints"), k, ep)
                {
                        if (except_ctr && !strcmp(k, except_ctr))
                                continue;
                        size_t i;
                        json_t *p;
                        json_array_foreach(json_object_get(ep, "Ports"), i, p)
                        {
                                const char *pp = json_string_value(json_object_get(p, "Proto"));
                                const char *hi = json_string_value(json_object_get(p, "HostIp"));
                                unsigned hp = (unsigned) json_integer_value(json_object_get(p, "HostPort"));
                                if (hp != port || !pp || strcmp(pp, proto))
                                        continue;
                                if (!hi || !strcmp(hi, "0.0.0.0") || !strcmp(host_ip, "0.0.0.0") ||
                                    !strcmp(hi, host_ip))
                                        return true;
                        }
                }
        }
        return false;
}

/* Whether a host process holds the port: a bind test. */
static bool port_bindable(const char *proto, const char *host_ip, unsigned port)
{
        bool udp = !strcmp(proto, "udp");
        _cleanup_close_ int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return true;
        int one = 1;
        if (!udp)
                (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
        if (inet_pton(AF_INET, host_ip, &sa.sin_addr) != 1)
                return false;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0)
                return true;
        /* an address the host does not have (yet): nothing listens there */
        return errno == EADDRNOTAVAIL;
}

int net_port_reserve(const char *proto, const char *host_ip, unsigned *port, const char *except_ctr)
{
        if (*port) {
                if (port_in_records(proto, host_ip, *port, except_ctr) || !port_bindable(proto, host_ip, *port))
                        return -EADDRINUSE;
                return 0;
        }
        static unsigned next = 0;
        const unsigned lo = 49153, hi = 60999;
        if (!next)
                next = lo + (unsigned) (random() % (hi - lo));
        for (unsigned i = 0; i <= hi - lo; i++) {
                unsigned p = lo + (next - lo + i) % (hi - lo + 1);
                if (port_in_records(proto, host_ip, p, NULL) || !port_bindable(proto, host_ip, p))
                        continue;
                next = p + 1 > hi ? lo : p + 1;
                *port = p;
                return 0;
        }
        return -EADDRINUSE;
}

/* The hooks of network.h: what a container's create, start, exit and
 * removal do to its networking, over network-store.c (records, IPAM,
 * ports), network-link.c (libnl), network-nft.c (nftables) and
 * network-hosts.c (/etc/hosts). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "engine.h"
#include "fs-util.h"
#include "log.h"
#include "network-internal.h"
#include "network.h"

static char default_bip[64] = "172.31.0.1/16";

int net_set_default_bip(const char *cidr)
{
        struct in_addr a;
        int p;
        if (net_parse_cidr(cidr, &a, &p, false) < 0 || p < 8 || p > 30)
                return -EINVAL;
        struct in_addr m;
        net_parse_cidr(cidr, &m, &p, true);
        if (a.s_addr == m.s_addr) /* a network address: the gateway is its first host */
                return -EINVAL;
        snprintf(default_bip, sizeof(default_bip), "%s", cidr);
        return 0;
}

unsigned net_http_status(int r)
{
        switch (r) {
        case -EINVAL:
                return 400;
        case -EPERM:
                return 403;
        case -ENOENT:
                return 404;
        case -EEXIST:
        case -EADDRINUSE:
        case -EBUSY:
                return 409;
        default:
                return 500;
        }
}

static char *netns_path(const char *id)
{
        char *p = NULL;
        if (asprintf(&p, "%s/%s", net_store.netns_dir, id) < 0)
                return NULL;
        return p;
}

static bool path_exists(const char *p)
{
        struct stat st;
        return p && lstat(p, &st) == 0;
}

/* ---- start-up ---- */

static int ensure_default(void)
{
        struct in_addr gw, sub;
        int prefix;
        net_parse_cidr(default_bip, &gw, &prefix, false);
        net_parse_cidr(default_bip, &sub, &prefix, true);
        char subs[64], gws[INET_ADDRSTRLEN], a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &sub, a, sizeof(a));
        inet_ntop(AF_INET, &gw, gws, sizeof(gws));
        snprintf(subs, sizeof(subs), "%s/%d", a, prefix);
        struct network *n = net_default();
        if (n && (n->subnet.s_addr != sub.s_addr || n->prefix != prefix || n->gateway.s_addr != gw.s_addr)) {
                if (json_object_size(json_object_get(n->doc, "Endpoints"))) {
                        log_warn("engine: the default bridge keeps its subnet while containers use it (--bip %s "
                                 "applies once they are stopped)",
                                 default_bip);
                        return 0;
                }
                log_info("engine: the default bridge network moves to %s", default_bip);
                (void) net_link_delete(net_store.nl, n->bridge);
                n->subnet = sub;
                n->prefix = prefix;
                n->gateway = gw;
                json_object_set_new(json_object_get(n->doc, "IPAM"), "Config",
                                    json_pack("[{s:s, s:s}]", "Subnet", subs, "Gateway", gws));
                return net_store_save(n);
        }
        if (n)
                return 0;
        char err[256];
        json_t *opts = json_pack("{s:s, s:s, s:s}", "com.docker.network.bridge.default_bridge", "true",
                                 "com.docker.network.bridge.name", "berth0",
                                 "com.docker.network.bridge.enable_ip_masquerade", "true");
        int r = net_store_add("bridge", subs, gws, false, NULL, opts, true, &n, err, sizeof(err));
        json_decref(opts);
        if (r < 0)
                log_error("engine: the default bridge network (%s): %s", default_bip, err);
        return r;
}

/* Endpoints whose namespace is gone (a reboot, someone's umount): their
 * container is not running, whatever the records say. */
static void drop_stale(void)
{
        for (struct network *n = net_store.list; n; n = n->next) {
                json_t *eps = json_object_get(n->doc, "Endpoints");
                const char *k;
                json_t *ep;
                void *tmp;
                bool changed = false;
                json_object_foreach_safe(eps, tmp, k, ep)
                {
                        _cleanup_free_ char *p = netns_path(k);
                        if (path_exists(p))
                                continue;
                        log_info("engine: releasing %s on %s: its network namespace is gone",
                                 json_string_value(json_object_get(ep, "IPAddress")) ?: "?", n->name);
                        const char *hif = json_string_value(json_object_get(ep, "HostIf"));
                        if (hif)
                                (void) net_link_delete(net_store.nl, hif);
                        json_object_del(eps, k);
                        changed = true;
                }
                if (changed)
                        net_store_save(n);
                if (json_object_size(eps) && net_link_bridge_ensure(net_store.nl, n) < 0)
                        log_error("engine: the bridge \"%s\" of %s could not be restored", n->bridge, n->name);
        }
}

static void ensure_forwarding(void)
{
        if (net_store.forwarding_checked)
                return;
        char v[16] = "";
        if (net_sysctl_get("net/ipv4/ip_forward", v, sizeof(v)) == 0 && strcmp(v, "1")) {
                int r = net_sysctl_set("net/ipv4/ip_forward", "1");
                if (r < 0) {
                        log_warn("engine: enabling IPv4 forwarding: %s (containers will not reach beyond the host)",
                                 strerror(-r));
                        return;
                }
                log_info("engine: enabled IPv4 forwarding (net.ipv4.ip_forward=1) for the containers' outbound "
                         "traffic");
                _cleanup_free_ char *mark = NULL;
                if (asprintf(&mark, "%s/ip_forward.set-by-engine", net_store.dir) >= 0)
                        (void) fs_write_atomic(mark, "1\n", 2, 0600);
        }
        net_store.forwarding_checked = true;
}

int net_init(struct engine *en)
{
        net_lock();
        int r = net_store_load(en);
        if (r >= 0)
                r = net_link_open(&net_store.nl);
        if (r >= 0)
                r = net_nft_open(&net_store.nft);
        if (r >= 0 && (r = net_netns_dir_setup(net_store.netns_dir)) < 0)
                log_error("engine: preparing \"%s\" for network namespaces: %s", net_store.netns_dir, strerror(-r));
        if (r >= 0)
                r = ensure_default();
        if (r >= 0) {
                drop_stale();
                bool outbound = false;
                for (struct network *n = net_store.list; n; n = n->next)
                        if (!n->internal && json_object_size(json_object_get(n->doc, "Endpoints")))
                                outbound = true;
                if (outbound)
                        ensure_forwarding();
                if (net_nft_sync() < 0)
                        log_error("engine: the nftables table could not be restored");
        }
        net_unlock();
        if (r < 0)
                log_error("engine: networking: %s", strerror(-r));
        return r;
}

void net_fini(struct engine *en)
{
        (void) en;
        net_lock();
        /* With no container on any network, a clean stop leaves the host as
         * it found it: no bridge, no table, forwarding as it was. With some,
         * everything stays (they keep running: live restore). */
        bool idle = net_store.nl != NULL;
        for (struct network *n = net_store.list; n && idle; n = n->next)
                if (json_object_size(json_object_get(n->doc, "Endpoints")))
                        idle = false;
        if (idle) {
                for (struct network *n = net_store.list; n; n = n->next)
                        (void) net_link_delete(net_store.nl, n->bridge);
                (void) net_nft_delete_table();
                /* the shared mount net_netns_dir_setup made, when nothing is in it */
                if (net_store.netns_dir && rmdir(net_store.netns_dir) < 0 && errno == EBUSY &&
                    umount2(net_store.netns_dir, MNT_DETACH) == 0)
                        (void) rmdir(net_store.netns_dir);
                _cleanup_free_ char *mark = NULL;
                if (asprintf(&mark, "%s/ip_forward.set-by-engine", net_store.dir) >= 0 && path_exists(mark)) {
                        if (net_sysctl_set("net/ipv4/ip_forward", "0") == 0)
                                log_info("engine: disabled IPv4 forwarding again (the engine had enabled it)");
                        unlink(mark);
                }
        }
        net_nft_close(net_store.nft);
        net_store.nft = NULL;
        net_link_close(net_store.nl);
        net_store.nl = NULL;
        net_store_free();
        net_unlock();
}

/* ---- create ---- */

static json_t *endpoint_settings(const char *net_id, json_t *aliases, json_t *ipam)
{
        return json_pack("{s:O, s:n, s:O, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:i, s:s, s:n}", "IPAMConfig",
                         ipam && json_object_size(ipam) ? ipam : json_null(), "Links", "Aliases",
                         json_array_size(aliases) ? aliases : json_null(), "NetworkID", net_id, "EndpointID", "",
                         "Gateway", "", "IPAddress", "", "IPPrefixLen", 0, "IPv6Gateway", "", "GlobalIPv6Address", "",
                         "GlobalIPv6PrefixLen", 0, "MacAddress", "", "DriverOpts");
}

/* "80/tcp" → 80, "tcp"; -EINVAL. */
static int parse_port_key(const char *key, unsigned *ret_port, char proto[8])
{
        char *end;
        errno = 0;
        unsigned long p = strtoul(key, &end, 10);
        if (end == key || errno || p == 0 || p > 65535)
                return -EINVAL;
        if (!*end)
                snprintf(proto, 8, "tcp");
        else if (!strcmp(end, "/tcp") || !strcmp(end, "/udp"))
                snprintf(proto, 8, "%s", end + 1);
        else
                return -EINVAL;
        *ret_port = (unsigned) p;
        return 0;
}

static int parse_host_port(const char *s, unsigned *ret)
{
        if (!s || !*s) {
                *ret = 0;
                return 0;
        }
        char *end;
        unsigned long p = strtoul(s, &end, 10);
        if (*end || p > 65535)
                return -EINVAL;
        *ret = (unsigned) p;
        return 0;
}

static int check_ports(json_t *hc, char *err, size_t errlen)
{
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(hc, "PortBindings"), k, v)
        {
                unsigned port, hp;
                char proto[8];
                if (parse_port_key(k, &port, proto) < 0) {
                        snprintf(err, errlen, "invalid port specification: \"%s\"", k);
                        return -EINVAL;
                }
                size_t i;
                json_t *b;
                json_array_foreach(v, i, b)
                {
                        const char *hip = json_string_value(json_object_get(b, "HostIp"));
                        const char *hps = json_string_value(json_object_get(b, "HostPort"));
                        struct in_addr a;
                        if (parse_host_port(hps, &hp) < 0) {
                                snprintf(err, errlen, "invalid host port: \"%s\"", hps);
                                return -EINVAL;
                        }
                        if (hip && *hip && inet_pton(AF_INET, hip, &a) != 1) {
                                snprintf(err, errlen, "invalid host IP address for a published port: \"%s\" (IPv4 only)",
                                         hip);
                                return -EINVAL;
                        }
                }
        }
        return 0;
}

static json_t *network_settings(const char *sandbox_key, json_t *networks)
{
        return json_pack("{s:s, s:s, s:b, s:s, s:i, s:{}, s:s, s:n, s:n, s:s, s:s, s:s, s:i, s:s, s:i, s:s, s:s, s:o}",
                         "Bridge", "", "SandboxID", "", "HairpinMode", 0, "LinkLocalIPv6Address", "",
                         "LinkLocalIPv6PrefixLen", 0, "Ports", "SandboxKey", sandbox_key ? sandbox_key : "",
                         "SecondaryIPAddresses", "SecondaryIPv6Addresses", "EndpointID", "", "Gateway", "",
                         "GlobalIPv6Address", "", "GlobalIPv6PrefixLen", 0, "IPAddress", "", "IPPrefixLen", 0,
                         "IPv6Gateway", "", "MacAddress", "", "Networks", networks);
}

/* The pseudo-networks "host" and "none" have stable ids of their own. */
static const char HOST_ID[] = "4f1c3a6e8d2b4c5a9e7f1b3d5c7a9e1f3b5d7c9a1e3f5b7d9c1a3e5f7b9d1c3a";
static const char NONE_ID[] = "0a2c4e6f8b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a";

const char *net_pseudo_id(const char *name)
{
        return !strcmp(name, "host") ? HOST_ID : !strcmp(name, "none") ? NONE_ID : NULL;
}

int net_container_prepare(struct engine *en, struct ctr *c, json_t *hc, json_t *networking_config,
                          char **ret_netns_path, int *ret_host_network, char *err, size_t errlen)
{
        const char *mode = json_string_value(json_object_get(hc, "NetworkMode"));
        if (!mode || !*mode)
                mode = "default";
        _cleanup_free_ char *path = NULL, *norm = NULL;
        int host = 0;
        json_t *networks = json_object();
        int r = check_ports(hc, err, errlen);
        if (r < 0)
                goto fail;
        if (!strcmp(mode, "host")) {
                host = 1;
                json_object_set_new(networks, "host", endpoint_settings(HOST_ID, NULL, NULL));
        } else if (!strcmp(mode, "none")) {
                path = netns_path(c->id);
                json_object_set_new(networks, "none", endpoint_settings(NONE_ID, NULL, NULL));
        } else if (!strncmp(mode, "container:", 10)) {
                pthread_mutex_lock(&en->ctrs.lock);
                bool amb = false;
                struct ctr *o = ctr_find_locked(&en->ctrs, mode + 10, &amb);
                const char *omode = o ? json_string_value(json_object_get(json_object_get(o->doc, "HostConfig"),
                                                                          "NetworkMode"))
                                      : NULL;
                char oid[65] = "";
                if (o)
                        snprintf(oid, sizeof(oid), "%s", o->id);
                /* joining a container that joined another: that one's namespace */
                _cleanup_free_ char *onorm = omode ? strdup(omode) : NULL;
                pthread_mutex_unlock(&en->ctrs.lock);
                if (!o) {
                        /* not a 404: the CLI would take it for a missing image and pull */
                        snprintf(err, errlen, "No such container: %s", mode + 10);
                        r = -EINVAL;
                        goto fail;
                }
                if (o == c) {
                        snprintf(err, errlen, "cannot join own network namespace");
                        r = -EINVAL;
                        goto fail;
                }
                if (onorm && !strcmp(onorm, "host")) {
                        host = 1;
                } else {
                        path = netns_path(onorm && !strncmp(onorm, "container:", 10) ? onorm + 10 : oid);
                }
                if (asprintf(&norm, "container:%s", oid) < 0)
                        norm = NULL;
        } else {
                const char *ref = !strcmp(mode, "default") ? "bridge" : mode;
                net_lock();
                bool amb = false;
                struct network *n = !strcmp(ref, "bridge") ? net_default() : net_find(ref, &amb);
                char id[65] = "", name[256] = "";
                bool predefined = false;
                struct network tmp = { 0 };
                if (n) {
                        snprintf(id, sizeof(id), "%s", n->id);
                        snprintf(name, sizeof(name), "%s", n->name);
                        predefined = n->predefined;
                        tmp = *n;
                }
                net_unlock();
                if (!n) {
                        /* not a 404: the CLI would take it for a missing image and pull */
                        snprintf(err, errlen, "network %s not found", mode);
                        r = -EINVAL;
                        goto fail;
                }
                json_t *ecs = json_object_get(networking_config, "EndpointsConfig");
                json_t *ec = json_object_get(ecs, mode);
                if (!ec)
                        ec = json_object_get(ecs, name);
                if (!ec)
                        ec = json_object_get(ecs, id);
                json_t *ipam = json_object_get(ec, "IPAMConfig");
                const char *want = json_string_value(json_object_get(ipam, "IPv4Address"));
                if (want && *want) {
                        struct in_addr a;
                        if (predefined) {
                                snprintf(err, errlen, "user specified IP address is supported on user defined "
                                                      "networks only");
                                r = -EINVAL;
                                goto fail;
                        }
                        if (inet_pton(AF_INET, want, &a) != 1) {
                                snprintf(err, errlen, "invalid IPv4 address: %s", want);
                                r = -EINVAL;
                                goto fail;
                        }
                        if (!net_in_subnet(&tmp, a)) {
                                snprintf(err, errlen, "no configured subnet or ip-range contain the IP address %s",
                                         want);
                                r = -EINVAL;
                                goto fail;
                        }
                }
                json_t *aliases = json_object_get(ec, "Aliases");
                if (predefined && json_array_size(aliases)) {
                        snprintf(err, errlen, "network-scoped alias is supported only for containers in user "
                                              "defined networks");
                        r = -EINVAL;
                        goto fail;
                }
                json_object_set_new(networks, name, endpoint_settings(id, aliases, json_is_object(ipam) ? ipam : NULL));
                path = netns_path(c->id);
        }
        pthread_mutex_lock(&en->ctrs.lock);
        json_t *dhc = json_object_get(c->doc, "HostConfig");
        if (json_is_object(dhc))
                json_object_set_new(dhc, "NetworkMode", json_string(norm ? norm : mode));
        if (json_is_object(hc) && hc != dhc)
                json_object_set_new(hc, "NetworkMode", json_string(norm ? norm : mode));
        json_object_set_new(c->doc, "NetworkSettings", network_settings(path, networks));
        pthread_mutex_unlock(&en->ctrs.lock);
        *ret_netns_path = TAKE_PTR(path);
        *ret_host_network = host;
        return 0;
fail:
        json_decref(networks);
        return r;
}

/* ---- start ---- */

/* The published ports asked for: [{Proto, HostIp, HostPort (0: any), CtrPort}] */
static json_t *port_requests(json_t *bindings, json_t *exposed, bool publish_all)
{
        json_t *out = json_array();
        const char *k;
        json_t *v;
        json_object_foreach(bindings, k, v)
        {
                unsigned port, hp;
                char proto[8];
                if (parse_port_key(k, &port, proto) < 0)
                        continue;
                size_t i;
                json_t *b;
                json_array_foreach(v, i, b)
                {
                        const char *hip = json_string_value(json_object_get(b, "HostIp"));
                        if (parse_host_port(json_string_value(json_object_get(b, "HostPort")), &hp) < 0)
                                continue;
                        json_array_append_new(out, json_pack("{s:s, s:s, s:i, s:i}", "Proto", proto, "HostIp",
                                                             hip && *hip ? hip : "0.0.0.0", "HostPort", (int) hp,
                                                             "CtrPort", (int) port));
                }
        }
        if (publish_all)
                json_object_foreach(exposed, k, v)
                {
                        unsigned port;
                        char proto[8];
                        if (json_object_get(bindings, k) || parse_port_key(k, &port, proto) < 0)
                                continue;
                        json_array_append_new(out, json_pack("{s:s, s:s, s:i, s:i}", "Proto", proto, "HostIp",
                                                             "0.0.0.0", "HostPort", 0, "CtrPort", (int) port));
                }
        return out;
}

/* Removes ctr_id's endpoints (all, or only on only) and, with all, its
 * namespace. Returns whether anything changed. */
static bool detach_locked(const char *ctr_id, struct network *only, bool netns)
{
        bool changed = false;
        for (struct network *n = net_store.list; n; n = n->next) {
                if (only && n != only)
                        continue;
                json_t *eps = json_object_get(n->doc, "Endpoints");
                json_t *ep = json_object_get(eps, ctr_id);
                if (!ep)
                        continue;
                const char *hif = json_string_value(json_object_get(ep, "HostIf"));
                int r = hif ? net_link_delete(net_store.nl, hif) : 0;
                if (r < 0)
                        log_warn("engine: deleting the interface \"%s\": %s", hif, strerror(-r));
                log_debug("engine: %s left %s (%s)", ctr_id, n->name,
                          json_string_value(json_object_get(ep, "IPAddress")) ?: "");
                json_object_del(eps, ctr_id);
                net_store_save(n);
                net_hosts_update(n, ctr_id);
                changed = true;
        }
        if (changed)
                (void) net_nft_sync();
        if (netns) {
                _cleanup_free_ char *p = netns_path(ctr_id);
                if (path_exists(p)) {
                        int r = net_netns_remove(p);
                        if (r < 0)
                                log_warn("engine: removing the network namespace \"%s\": %s", p, strerror(-r));
                }
        }
        return changed;
}

struct attach_req {
        const char *ctr_id;
        const char *name;
        const char *hostname;
        json_t *cfg;          /* NetworkSettings.Networks.<name> as prepare wrote it */
        json_t *ports;        /* port_requests(), primary network only; else NULL */
        bool primary;
        int index;            /* ethN */
};

/* One endpoint: address, veth, record. The caller syncs the rules. */
static int attach_one_locked(struct network *n, const struct attach_req *q, struct nl_sock *nsk, int nsfd,
                             json_t **ret_ep, char *err, size_t errlen)
{
        struct in_addr want = { 0 }, ip;
        const char *ws = json_string_value(json_object_get(json_object_get(q->cfg, "IPAMConfig"), "IPv4Address"));
        if (ws && *ws && inet_pton(AF_INET, ws, &want) != 1) {
                snprintf(err, errlen, "invalid IPv4 address: %s", ws);
                return -EINVAL;
        }
        int r = net_ipam_alloc(n, want, &ip);
        if (r < 0) {
                if (r == -EADDRINUSE)
                        snprintf(err, errlen, "Address already in use: %s on network %s", ws, n->name);
                else if (r == -EINVAL)
                        snprintf(err, errlen, "no configured subnet or ip-range contain the IP address %s", ws);
                else
                        snprintf(err, errlen, "no available IPv4 addresses on network %s", n->name);
                return r == -ENOSPC ? -EBUSY : r;
        }
        /* the published ports, checked before anything is created */
        json_t *ports = json_array();
        size_t i;
        json_t *p;
        json_array_foreach(q->ports, i, p)
        {
                const char *proto = json_string_value(json_object_get(p, "Proto"));
                const char *hip = json_string_value(json_object_get(p, "HostIp"));
                unsigned hp = (unsigned) json_integer_value(json_object_get(p, "HostPort"));
                bool dup = false;
                size_t j;
                json_t *o;
                json_array_foreach(ports, j, o) /* the same binding twice in one request */
                        dup |= hp && (unsigned) json_integer_value(json_object_get(o, "HostPort")) == hp &&
                               !strcmp(json_string_value(json_object_get(o, "Proto")), proto);
                if (dup || net_port_reserve(proto, hip, &hp, NULL) < 0) {
                        if (hp)
                                snprintf(err, errlen, "Bind for %s:%u failed: port is already allocated", hip, hp);
                        else
                                snprintf(err, errlen, "no free host port for %s", proto);
                        json_decref(ports);
                        return -EADDRINUSE;
                }
                json_t *b = json_deep_copy(p);
                json_object_set_new(b, "HostPort", json_integer(hp));
                json_array_append_new(ports, b);
        }
        r = net_link_bridge_ensure(net_store.nl, n);
        if (r < 0) {
                snprintf(err, errlen, "engine: setting up the bridge \"%s\": %s", n->bridge, strerror(-r));
                json_decref(ports);
                return r;
        }
        uint8_t mac[6] = { 0x02, 0x42 };
        memcpy(mac + 2, &ip, 4);
        char host_if[16], ifname[16], ips[INET_ADDRSTRLEN], macs[18], gws[INET_ADDRSTRLEN], epid[65];
        snprintf(host_if, sizeof(host_if), "vb%.10s%d", q->ctr_id, q->index);
        snprintf(ifname, sizeof(ifname), "eth%d", q->index);
        inet_ntop(AF_INET, &ip, ips, sizeof(ips));
        inet_ntop(AF_INET, &n->gateway, gws, sizeof(gws));
        snprintf(macs, sizeof(macs), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
        net_random_hex(epid, 64);
        (void) net_link_delete(net_store.nl, host_if); /* a leftover of a crash */
        r = net_link_veth_setup(net_store.nl, n->bridge, host_if, nsfd, nsk, ifname, mac, ip, n->prefix,
                                q->primary ? n->gateway : (struct in_addr) { 0 });
        if (r < 0) {
                snprintf(err, errlen, "engine: setting up the interface %s of %s on %s: %s", ifname, q->ctr_id,
                         n->name, strerror(-r));
                json_decref(ports);
                return r;
        }
        json_t *aliases = json_array();
        if (json_is_array(json_object_get(q->cfg, "Aliases")))
                json_array_extend(aliases, json_object_get(q->cfg, "Aliases"));
        if (!n->predefined) {
                char shortid[13];
                snprintf(shortid, sizeof(shortid), "%.12s", q->ctr_id);
                bool have = false;
                size_t j;
                json_t *a;
                json_array_foreach(aliases, j, a) have |= !strcmp(json_string_value(a) ?: "", shortid);
                if (!have)
                        json_array_append_new(aliases, json_string(shortid));
        }
        json_t *ep = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:o, s:o}", "Name", q->name,
                               "Hostname", q->hostname, "EndpointID", epid, "MacAddress", macs, "IPAddress", ips,
                               "IPPrefixLen", n->prefix, "Gateway", gws, "HostIf", host_if, "IfName", ifname,
                               "Aliases", aliases, "Ports", ports);
        json_object_set_new(json_object_get(n->doc, "Endpoints"), q->ctr_id, ep); /* *ret_ep: borrowed */
        *ret_ep = ep;
        log_debug("engine: %s joined %s as %s (%s)", q->ctr_id, n->name, ips, host_if);
        return 0;
}

/* NetworkSettings.Networks.<n> of a live endpoint. */
static void fill_settings(json_t *s, struct network *n, json_t *ep)
{
        json_object_set_new(s, "NetworkID", json_string(n->id));
        json_object_set(s, "EndpointID", json_object_get(ep, "EndpointID"));
        json_object_set(s, "Gateway", json_object_get(ep, "Gateway"));
        json_object_set(s, "IPAddress", json_object_get(ep, "IPAddress"));
        json_object_set(s, "IPPrefixLen", json_object_get(ep, "IPPrefixLen"));
        json_object_set(s, "MacAddress", json_object_get(ep, "MacAddress"));
        if (!n->predefined)
                json_object_set(s, "Aliases", json_object_get(ep, "Aliases"));
}

static void clear_settings(json_t *s)
{
        json_object_set_new(s, "EndpointID", json_string(""));
        json_object_set_new(s, "Gateway", json_string(""));
        json_object_set_new(s, "IPAddress", json_string(""));
        json_object_set_new(s, "IPPrefixLen", json_integer(0));
        json_object_set_new(s, "MacAddress", json_string(""));
}

/* NetworkSettings.Ports: {"80/tcp": [{"HostIp", "HostPort"}] or null}. */
static json_t *ports_map(json_t *ep_ports, json_t *exposed, json_t *bindings)
{
        json_t *m = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(exposed, k, v) json_object_set_new(m, k, json_null());
        json_object_foreach(bindings, k, v) json_object_set_new(m, k, json_null());
        size_t i;
        json_t *p;
        json_array_foreach(ep_ports, i, p)
        {
                char key[32], hp[16];
                snprintf(key, sizeof(key), "%lld/%s", json_integer_value(json_object_get(p, "CtrPort")),
                         json_string_value(json_object_get(p, "Proto")));
                snprintf(hp, sizeof(hp), "%lld", json_integer_value(json_object_get(p, "HostPort")));
                json_t *list = json_object_get(m, key);
                if (!json_is_array(list)) {
                        list = json_array();
                        json_object_set_new(m, key, list);
                }
                json_array_append_new(list, json_pack("{s:O, s:s}", "HostIp", json_object_get(p, "HostIp"),
                                                      "HostPort", hp));
        }
        /* "80" in ExposedPorts means 80/tcp */
        void *tmp;
        json_object_foreach_safe(m, tmp, k, v) if (!strchr(k, '/'))
        {
                char key[32];
                snprintf(key, sizeof(key), "%s/tcp", k);
                if (!json_object_get(m, key))
                        json_object_set(m, key, v);
                json_object_del(m, k);
        }
        return m;
}

int net_container_attach(struct engine *en, struct ctr *c, char *err, size_t errlen)
{
        pthread_mutex_lock(&en->ctrs.lock);
        json_t *hc = json_object_get(c->doc, "HostConfig");
        json_t *cfg = json_object_get(c->doc, "Config");
        _cleanup_free_ char *mode = strdup(json_string_value(json_object_get(hc, "NetworkMode")) ?: "default");
        _cleanup_free_ char *hostname = strdup(json_string_value(json_object_get(cfg, "Hostname")) ?: "");
        _cleanup_free_ char *name = strdup(ctr_short_name(c));
        json_t *networks = json_deep_copy(json_object_get(json_object_get(c->doc, "NetworkSettings"), "Networks"));
        json_t *bindings = json_deep_copy(json_object_get(hc, "PortBindings"));
        json_t *exposed = json_deep_copy(json_object_get(cfg, "ExposedPorts"));
        bool publish_all = json_is_true(json_object_get(hc, "PublishAllPorts"));
        pthread_mutex_unlock(&en->ctrs.lock);
        int r = 0;
        json_t *settings = NULL, *portmap = NULL;
        _cleanup_free_ char *path = netns_path(c->id);
        char sandbox[65];
        net_random_hex(sandbox, 64);
        if (!mode || !hostname || !name || !path) {
                r = -ENOMEM;
                goto out;
        }
        if (!strcmp(mode, "host"))
                goto out;
        if (!strncmp(mode, "container:", 10)) {
                _cleanup_free_ char *other = netns_path(mode + 10);
                /* follows the chain prepare resolved: the path in the spec */
                pthread_mutex_lock(&en->ctrs.lock);
                const char *key = json_string_value(
                        json_object_get(json_object_get(c->doc, "NetworkSettings"), "SandboxKey"));
                _cleanup_free_ char *sk = key ? strdup(key) : NULL;
                pthread_mutex_unlock(&en->ctrs.lock);
                if (!path_exists(sk && *sk ? sk : other)) {
                        snprintf(err, errlen, "cannot join network of a non running container: %.12s", mode + 10);
                        r = -EBUSY;
                }
                goto out;
        }
        net_lock();
        struct nl_sock *nsk = NULL;
        int nsfd = -1;
        if (!net_store.nl) {
                net_unlock();
                snprintf(err, errlen, "engine: networking is not available (see the engine's log)");
                r = -ENOTCONN;
                goto out;
        }
        (void) detach_locked(c->id, NULL, true); /* whatever a crash left */
        r = net_netns_create(path, &nsk, &nsfd);
        if (r < 0) {
                net_unlock();
                snprintf(err, errlen, "engine: creating the network namespace \"%s\": %s", path, strerror(-r));
                goto out;
        }
        settings = json_object();
        json_t *all_ports = NULL;
        if (strcmp(mode, "none")) {
                /* the primary network (NetworkMode's) first: eth0, the default route, the ports */
                const char *primary = !strcmp(mode, "default") ? "bridge" : mode;
                struct network *pn = !strcmp(primary, "bridge") ? net_default() : net_find(primary, NULL);
                json_t *order = json_array();
                const char *k;
                json_t *v;
                json_object_foreach(networks, k, v)
                {
                        struct network *n = net_find(json_string_value(json_object_get(v, "NetworkID")), NULL);
                        if (!n)
                                n = net_find(k, NULL);
                        if (!n) {
                                snprintf(err, errlen, "network %s not found", k);
                                r = -ENOENT;
                                break;
                        }
                        json_array_insert_new(order, n == pn ? 0 : json_array_size(order),
                                              json_pack("{s:s, s:O}", "net", n->id, "cfg", v));
                }
                size_t i;
                json_t *o;
                bool outbound = false;
                json_array_foreach(order, i, o)
                {
                        if (r < 0)
                                break;
                        struct network *n = net_find(json_string_value(json_object_get(o, "net")), NULL);
                        json_t *reqs = i == 0 ? port_requests(bindings, exposed, publish_all) : NULL;
                        struct attach_req q = { c->id, name, hostname, json_object_get(o, "cfg"), reqs, i == 0, (int) i };
                        json_t *ep = NULL;
                        r = attach_one_locked(n, &q, nsk, nsfd, &ep, err, errlen);
                        json_decref(reqs);
                        if (r < 0)
                                break;
                        json_t *s = json_deep_copy(json_object_get(o, "cfg"));
                        fill_settings(s, n, ep);
                        json_object_set_new(settings, n->name, s);
                        if (i == 0) {
                                all_ports = json_incref(json_object_get(ep, "Ports"));
                                if (n->predefined)
                                        json_object_set_new(settings, "", json_incref(ep)); /* the top level */
                        }
                        outbound |= !n->internal;
                        net_store_save(n);
                }
                json_decref(order);
                if (r == 0 && outbound)
                        ensure_forwarding();
                if (r == 0 && (r = net_nft_sync()) < 0)
                        snprintf(err, errlen, "engine: programming the nftables rules failed (see the engine's log)");
                if (r == 0)
                        for (struct network *n = net_store.list; n; n = n->next)
                                if (json_object_get(json_object_get(n->doc, "Endpoints"), c->id))
                                        net_hosts_update(n, NULL);
        }
        if (r < 0)
                (void) detach_locked(c->id, NULL, true);
        net_unlock();
        net_link_close(nsk);
        if (nsfd >= 0)
                close(nsfd);
        if (r == 0)
                portmap = ports_map(all_ports, exposed, all_ports ? bindings : NULL);
        json_decref(all_ports);
out:
        if (r == 0) {
                pthread_mutex_lock(&en->ctrs.lock);
                json_t *ns = json_object_get(c->doc, "NetworkSettings");
                json_t *top = json_object_get(settings, "");
                if (json_is_object(ns) && strcmp(mode ? mode : "", "host") && strncmp(mode ? mode : "", "container:", 10)) {
                        json_object_set_new(ns, "SandboxID", json_string(sandbox));
                        json_object_set_new(ns, "SandboxKey", json_string(path));
                }
                if (json_is_object(ns)) {
                        json_object_set_new(ns, "Ports", portmap ? portmap : json_object());
                        portmap = NULL;
                        json_object_set_new(ns, "EndpointID",
                                            json_string(json_string_value(json_object_get(top, "EndpointID")) ?: ""));
                        json_object_set_new(ns, "IPAddress",
                                            json_string(json_string_value(json_object_get(top, "IPAddress")) ?: ""));
                        json_object_set_new(ns, "Gateway",
                                            json_string(json_string_value(json_object_get(top, "Gateway")) ?: ""));
                        json_object_set_new(ns, "MacAddress",
                                            json_string(json_string_value(json_object_get(top, "MacAddress")) ?: ""));
                        json_object_set_new(ns, "IPPrefixLen",
                                            json_integer(json_integer_value(json_object_get(top, "IPPrefixLen"))));
                        json_t *nets = json_object_get(ns, "Networks");
                        const char *k;
                        json_t *v;
                        json_object_foreach(settings, k, v) if (*k && json_is_object(nets))
                                json_object_set(nets, k, v);
                }
                if (!c->removed)
                        ctr_save_state_locked(&en->ctrs, c);
                pthread_mutex_unlock(&en->ctrs.lock);
        }
        json_decref(portmap);
        json_decref(settings);
        json_decref(networks);
        json_decref(bindings);
        json_decref(exposed);
        return r;
}

/* ---- exit, removal ---- */

void net_container_detach(struct engine *en, struct ctr *c)
{
        net_lock();
        if (net_store.nl)
                (void) detach_locked(c->id, NULL, true);
        net_unlock();
        pthread_mutex_lock(&en->ctrs.lock);
        json_t *ns = json_object_get(c->doc, "NetworkSettings");
        if (json_is_object(ns)) {
                json_object_set_new(ns, "Ports", json_object());
                clear_settings(ns);
                const char *k;
                json_t *v;
                json_object_foreach(json_object_get(ns, "Networks"), k, v) clear_settings(v);
        }
        pthread_mutex_unlock(&en->ctrs.lock);
}

void net_container_remove(struct engine *en, struct ctr *c)
{
        net_lock();
        if (net_store.nl)
                (void) detach_locked(c->id, NULL, true);
        net_unlock();
        (void) en;
}

json_t *net_ports_summary(struct ctr *c)
{
        json_t *out = json_array();
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(json_object_get(c->doc, "NetworkSettings"), "Ports"), k, v)
        {
                unsigned port;
                char proto[8];
                if (parse_port_key(k, &port, proto) < 0)
                        continue;
                if (!json_array_size(v)) {
                        json_array_append_new(out, json_pack("{s:i, s:s}", "PrivatePort", (int) port, "Type", proto));
                        continue;
                }
                size_t i;
                json_t *b;
                json_array_foreach(v, i, b)
                {
                        unsigned hp = 0;
                        parse_host_port(json_string_value(json_object_get(b, "HostPort")), &hp);
                        json_array_append_new(out, json_pack("{s:s, s:i, s:i, s:s}", "IP",
                                                             json_string_value(json_object_get(b, "HostIp")) ?: "",
                                                             "PrivatePort", (int) port, "PublicPort", (int) hp,
                                                             "Type", proto));
                }
        }
        return out;
}

/* ---- connect, disconnect (api-networks.c) ---- */

static bool is_live(struct ctr *c)
{
        const char *s = ctr_status(c);
        return !strcmp(s, "running") || !strcmp(s, "paused") || !strcmp(s, "restarting");
}

int net_connect(struct engine *en, const char *ctr_ref, const char *net_ref, json_t *epcfg, char *err, size_t errlen)
{
        pthread_mutex_lock(&en->ctrs.lock);
        bool amb = false;
        struct ctr *c = ctr_find_locked(&en->ctrs, ctr_ref, &amb);
        if (!c) {
                pthread_mutex_unlock(&en->ctrs.lock);
                snprintf(err, errlen, "No such container: %s", ctr_ref);
                return -ENOENT;
        }
        const char *mode = json_string_value(json_object_get(json_object_get(c->doc, "HostConfig"), "NetworkMode")) ?: "";
        bool bad_mode = !strcmp(mode, "host") || !strcmp(mode, "none") || !strncmp(mode, "container:", 10);
        bool live = is_live(c);
        char id[65];
        snprintf(id, sizeof(id), "%s", c->id);
        _cleanup_free_ char *name = strdup(ctr_short_name(c));
        _cleanup_free_ char *hostname =
                strdup(json_string_value(json_object_get(json_object_get(c->doc, "Config"), "Hostname")) ?: "");
        json_t *nets = json_object_get(json_object_get(c->doc, "NetworkSettings"), "Networks");
        size_t n_nets = json_object_size(nets);
        pthread_mutex_unlock(&en->ctrs.lock);
        if (bad_mode) {
                snprintf(err, errlen, "container sharing network namespace with another container or host cannot "
                                      "be connected to any other network");
                return -EPERM;
        }
        net_lock();
        struct network *n = net_find(net_ref, NULL);
        if (!n) {
                net_unlock();
                snprintf(err, errlen, "network %s not found", net_ref);
                return -ENOENT;
        }
        char nid[65], nname[256];
        snprintf(nid, sizeof(nid), "%s", n->id);
        snprintf(nname, sizeof(nname), "%s", n->name);
        json_t *ipam = json_object_get(epcfg, "IPAMConfig");
        json_t *aliases = json_object_get(epcfg, "Aliases");
        if (n->predefined && (json_array_size(aliases) ||
                              json_string_length(json_object_get(ipam, "IPv4Address")))) {
                net_unlock();
                snprintf(err, errlen, "user specified IP address and aliases are supported on user defined networks "
                                      "only");
                return -EINVAL;
        }
        json_t *s = endpoint_settings(nid, aliases, json_is_object(ipam) ? ipam : NULL);
        int r = 0;
        if (json_object_get(json_object_get(n->doc, "Endpoints"), id)) {
                snprintf(err, errlen, "endpoint with name %s already exists in network %s", name, nname);
                r = -EPERM;
        } else if (live) {
                _cleanup_free_ char *path = netns_path(id);
                struct nl_sock *nsk = NULL;
                int nsfd = -1;
                r = net_netns_open(path, &nsk, &nsfd);
                if (r < 0) {
                        snprintf(err, errlen, "engine: opening the network namespace \"%s\": %s", path, strerror(-r));
                } else {
                        /* the first free ethN */
                        int idx = 0;
                        for (bool used = true; used; idx += used) {
                                used = false;
                                char ifn[16];
                                snprintf(ifn, sizeof(ifn), "eth%d", idx);
                                for (struct network *o = net_store.list; o; o = o->next)
                                        used |= !strcmp(json_string_value(json_object_get(json_object_get(
                                                                json_object_get(o->doc, "Endpoints"), id),
                                                                                          "IfName")) ?: "",
                                                        ifn);
                        }
                        struct attach_req q = { id, name, hostname, s, NULL, n_nets == 0, idx };
                        json_t *ep = NULL;
                        r = attach_one_locked(n, &q, nsk, nsfd, &ep, err, errlen);
                        if (r == 0) {
                                fill_settings(s, n, ep);
                                net_store_save(n);
                                if (!n->internal)
                                        ensure_forwarding();
                                if ((r = net_nft_sync()) < 0) {
                                        snprintf(err, errlen, "engine: programming the nftables rules failed");
                                        detach_locked(id, n, false);
                                } else {
                                        net_hosts_update(n, NULL);
                                }
                        }
                        net_link_close(nsk);
                        close(nsfd);
                }
        }
        net_unlock();
        if (r < 0) {
                json_decref(s);
                return r;
        }
        pthread_mutex_lock(&en->ctrs.lock);
        json_t *ns = json_object_get(c->doc, "NetworkSettings");
        if (!json_is_object(json_object_get(ns, "Networks")))
                json_object_set_new(ns, "Networks", json_object());
        json_object_set_new(json_object_get(ns, "Networks"), nname, s);
        if (!c->removed)
                ctr_save_locked(&en->ctrs, c);
        pthread_mutex_unlock(&en->ctrs.lock);
        return 0;
}

int net_disconnect(struct engine *en, const char *ctr_ref, const char *net_ref, bool force, char *err, size_t errlen)
{
        net_lock();
        struct network *n = net_find(net_ref, NULL);
        char nid[65] = "", nname[256] = "";
        if (n) {
                snprintf(nid, sizeof(nid), "%s", n->id);
                snprintf(nname, sizeof(nname), "%s", n->name);
        }
        net_unlock();
        if (!n) {
                snprintf(err, errlen, "network %s not found", net_ref);
                return -ENOENT;
        }
        pthread_mutex_lock(&en->ctrs.lock);
        struct ctr *c = ctr_find_locked(&en->ctrs, ctr_ref, NULL);
        json_t *nets = c ? json_object_get(json_object_get(c->doc, "NetworkSettings"), "Networks") : NULL;
        bool member = json_object_get(nets, nname) != NULL;
        char id[65] = "";
        if (c)
                snprintf(id, sizeof(id), "%s", c->id);
        pthread_mutex_unlock(&en->ctrs.lock);
        if (!c && !force) {
                snprintf(err, errlen, "No such container: %s", ctr_ref);
                return -ENOENT;
        }
        if (!member && c && !force) {
                snprintf(err, errlen, "container %s is not connected to network %s", id, nname);
                return -EPERM;
        }
        net_lock();
        n = net_find(nid, NULL);
        if (n) {
                if (*id)
                        (void) detach_locked(id, n, false);
                else /* --force with a name: an endpoint left by a container gone */
                {
                        const char *k;
                        json_t *ep;
                        void *tmp;
                        json_object_foreach_safe(json_object_get(n->doc, "Endpoints"), tmp, k, ep)
                        if (!strcmp(json_string_value(json_object_get(ep, "Name")) ?: "", ctr_ref))
                        {
                                char kid[65];
                                snprintf(kid, sizeof(kid), "%s", k);
                                (void) detach_locked(kid, n, false);
                        }
                }
        }
        net_unlock();
        if (c) {
                pthread_mutex_lock(&en->ctrs.lock);
                json_object_del(json_object_get(json_object_get(c->doc, "NetworkSettings"), "Networks"), nname);
                if (!c->removed)
                        ctr_save_locked(&en->ctrs, c);
                pthread_mutex_unlock(&en->ctrs.lock);
        }
        return 0;
}

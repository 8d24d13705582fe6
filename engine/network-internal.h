/* What the network-*.c modules and api-networks.c share (not for the
 * rest of the engine: that uses network.h).
 *
 *   network-store.c   the networks and their endpoints: records under
 *                     <data root>/engine/network/<id>.json, IPAM, host ports
 *   network-link.c    libnl-route-3: bridges, veth pairs, namespaces,
 *                     addresses and routes
 *   network-nft.c     libnftables: the engine's own table "ip berth",
 *                     regenerated whole from the records on each change
 *   network-hosts.c   the containers' /etc/hosts (name resolution)
 *   network.c         the hooks of network.h over the above
 *
 * One lock (net_lock(), below) guards the records, the netlink socket and
 * the nftables context; it is never held while taking the container
 * table's lock. */
#pragma once

#include <jansson.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct engine;

/* ---- network-store.c ---- */

struct network {
        char id[65];
        char name[256];
        char bridge[16];      /* "berth0", "br-<12 hex>" */
        struct in_addr subnet;   /* network address */
        int prefix;
        struct in_addr gateway;
        bool internal;
        bool predefined;      /* the default "bridge" */
        json_t *doc;          /* the record: Name, Id, Created, Labels, Options, IPAM, Internal,
                               * Endpoints {ctr id: {Name, Hostname, EndpointID, MacAddress,
                               * IPAddress, HostIf, IfName, Aliases, Ports [...]}} */
        struct network *next;
};

struct net_store {
        char *dir;            /* <data root>/engine/network */
        char *netns_dir;      /* <exec root>/netns */
        char *ctr_root;       /* <data root>/engine/containers */
        struct network *list;
        struct nl_sock *nl;   /* NETLINK_ROUTE in the host's namespace */
        struct nft_ctx *nft;
        bool forwarding_checked;
};

extern struct net_store net_store;

void net_lock(void);
void net_unlock(void);

int net_store_load(struct engine *en);
void net_store_free(void);
int net_store_save(struct network *n);
int net_store_add(const char *name, const char *subnet_cidr, const char *gateway, bool internal, json_t *labels,
                  json_t *options, bool predefined, struct network **ret, char *err, size_t errlen);
void net_store_delete(struct network *n);

/* By exact name, full id, or unique id prefix; NULL when none (or
 * ambiguous: *ambiguous set). */
struct network *net_find(const char *ref, bool *ambiguous);
struct network *net_default(void);

/* "a.b.c.d/p" → address (masked when mask) and prefix; -EINVAL. */
int net_parse_cidr(const char *s, struct in_addr *ret_addr, int *ret_prefix, bool mask);
bool net_subnets_overlap(struct in_addr a, int pa, struct in_addr b, int pb);
bool net_in_subnet(const struct network *n, struct in_addr ip);

/* An address for an endpoint: want (0: any free one). -EADDRINUSE,
 * -EINVAL (not in the subnet), -ENOSPC. */
int net_ipam_alloc(struct network *n, struct in_addr want, struct in_addr *ret);

/* Host ports: is (proto, ip, port) free in the records and on the host
 * (a bind test)? Picks an ephemeral one when *port is 0. */
int net_port_reserve(const char *proto, const char *host_ip, unsigned *port, const char *except_ctr);

void net_random_hex(char *buf, size_t n_hex);

/* ---- network-link.c ---- */

int net_link_open(struct nl_sock **ret);
void net_link_close(struct nl_sock *sk);
/* The bridge with the gateway's address, up, route_localnet on. */
int net_link_bridge_ensure(struct nl_sock *sk, const struct network *n);
int net_link_delete(struct nl_sock *sk, const char *name);
bool net_link_exists(struct nl_sock *sk, const char *name);

/* <netns_dir>/<id>: a new network namespace, bind-mounted there, with lo
 * up. *ret_sk: a netlink socket inside it; *ret_fd: an fd of it. */
int net_netns_create(const char *path, struct nl_sock **ret_sk, int *ret_fd);
/* The same for an existing one. */
int net_netns_open(const char *path, struct nl_sock **ret_sk, int *ret_fd);
int net_netns_remove(const char *path);
/* Makes dir a shared mount point (as `ip netns` does) so that removals
 * propagate to mount namespaces created meanwhile. */
int net_netns_dir_setup(const char *dir);

/* A veth pair: host_if on the bridge (up), its peer ifname in the
 * namespace (nsfd/nsk) with mac, ip/prefix, up, and a default route
 * via gw when gw.s_addr != 0. */
int net_link_veth_setup(struct nl_sock *sk, const char *bridge, const char *host_if, int nsfd, struct nl_sock *nsk,
                        const char *ifname, const uint8_t mac[6], struct in_addr ip, int prefix, struct in_addr gw);

/* Writes value to /proc/sys/<key> (dots or slashes); -errno. */
int net_sysctl_set(const char *key, const char *value);
int net_sysctl_get(const char *key, char *buf, size_t len);

/* Host's IPv4 routes: does any overlap the subnet? */
bool net_link_route_overlaps(struct nl_sock *sk, struct in_addr subnet, int prefix);

/* ---- network-nft.c ---- */

int net_nft_open(struct nft_ctx **ret);
void net_nft_close(struct nft_ctx *nft);
/* The table from the records (deleted when no endpoint is left). */
int net_nft_sync(void);
int net_nft_delete_table(void);

/* ---- network-hosts.c ---- */

/* Rewrites in place the hosts file of each container on n (and of ctr_id
 * when it is not on n any more). */
void net_hosts_update(struct network *n, const char *ctr_id);
/* A container's hosts file from its records (its own lines, peers). */
void net_hosts_write(const char *ctr_id);

/* ---- network.c, for api-networks.c ---- */

/* POST /networks/{id}/connect and /disconnect: the records, and the
 * interfaces at once when the container runs. */
int net_connect(struct engine *en, const char *ctr_ref, const char *net_ref, json_t *epcfg, char *err,
                size_t errlen);
int net_disconnect(struct engine *en, const char *ctr_ref, const char *net_ref, bool force, char *err,
                   size_t errlen);
/* The ids of the pseudo-networks "host" and "none" (NULL for others). */
const char *net_pseudo_id(const char *name);

/* berth-engine's networking (issue 8): networks (the default "bridge",
 * "host", "none", user-defined bridges), a network namespace per
 * container, veth pairs on a bridge, IP allocation, NAT and published
 * ports, name resolution. api-containers.c calls these at the container's
 * create, start, exit and removal; network-*.c implement them.
 *
 * None is called with the container table's lock held; each may take it
 * briefly (to read or update c->doc's NetworkSettings and save it).
 * Errors fill err with a message for the HTTP reply (and return -errno:
 * -EINVAL/-ENOENT → 4xx, the rest 500). */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "http.h"

struct engine;
struct ctr;

/* Loads the networks and allocations from <data root>/engine/network/,
 * creates the default bridge network when missing, and re-creates what a
 * restart of the engine may have lost (bridges, rules) without
 * duplicating anything. */
int net_init(struct engine *en);
void net_fini(struct engine *en);

/* At create: checks HostConfig.NetworkMode ("default"/"bridge", "none",
 * "host", "container:<id|name>", or a user network's name or id),
 * NetworkingConfig (aliases, --ip) and PortBindings/ExposedPorts, and
 * records the choice in c->doc (HostConfig.NetworkMode normalised,
 * NetworkSettings.Networks with empty addresses). Sets *ret_netns_path to
 * the path the OCI spec must join (malloc'ed; NULL: no network namespace
 * entry, i.e. the host's) and *ret_host_network. Nothing is created yet. */
int net_container_prepare(struct engine *en, struct ctr *c, json_t *hc, json_t *networking_config,
                          char **ret_netns_path, int *ret_host_network, char *err, size_t errlen);

/* At each start, before the task is created: the namespace at the path
 * prepare gave, its interfaces, addresses, routes, the NAT and port
 * rules, /etc/hosts (c->dir/hosts, rewritten in place: it is bind-mounted
 * by inode) and NetworkSettings in c->doc (IPAddress, Gateway,
 * MacAddress, Ports, Networks.<name>.IPAddress ...). On failure nothing
 * is left half-configured. */
int net_container_attach(struct engine *en, struct ctr *c, char *err, size_t errlen);

/* After the task exited (or a failed start): interfaces, rules and the
 * namespace go; the addresses are released. Idempotent. */
void net_container_detach(struct engine *en, struct ctr *c);

/* At removal: whatever detach left (idempotent), and the records. */
void net_container_remove(struct engine *en, struct ctr *c);

/* The default bridge's address and subnet ("172.31.0.1/16", the
 * default), before net_init: the option --bip. -EINVAL when it is not an
 * IPv4 host address with a prefix of /8 to /30. */
int net_set_default_bip(const char *cidr);

/* The HTTP status for an error of the functions above: -EINVAL 400,
 * -EPERM 403, -ENOENT 404, -EEXIST/-EADDRINUSE/-EBUSY 409, else 500. */
unsigned net_http_status(int r);

/* The "Ports" array of GET /containers/json (`docker ps`' PORTS column),
 * [{IP, PrivatePort, PublicPort, Type}], from c->doc's
 * NetworkSettings.Ports. A new reference. Call with the container
 * table's lock held (it reads c->doc only). */
json_t *net_ports_summary(struct ctr *c);

/* /networks, /networks/create, /networks/{id}, connect, disconnect,
 * prune. */
extern const struct http_route engine_network_routes[];
extern const size_t engine_network_n_routes;

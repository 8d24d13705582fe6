/* /networks: list, inspect, create, remove, connect, disconnect, prune
 * (Docker Engine API 1.41), over network-store.c and network.c. Only the
 * bridge driver; "host" and "none" are listed as Docker lists them. */
#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "engine.h"
#include "log.h"
#include "network-internal.h"
#include "network.h"

static json_t *pseudo_doc(const char *name)
{
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:{s:s, s:n, s:[]}, s:b, s:b, s:b, s:{s:s}, s:b, s:{}, "
                         "s:{}, s:{}}",
                         "Name", name, "Id", net_pseudo_id(name), "Created", "0001-01-01T00:00:00Z", "Scope", "local",
                         "Driver", !strcmp(name, "host") ? "host" : "null", "EnableIPv6", 0, "IPAM", "Driver",
                         "default", "Options", "Config", "Internal", 0, "Attachable", 0, "Ingress", 0, "ConfigFrom",
                         "Network", "", "ConfigOnly", 0, "Containers", "Options", "Labels");
}

/* Docker's view of a network; with containers, its endpoints. Call with
 * net_lock() held. */
static json_t *network_doc(struct network *n, bool containers)
{
        json_t *d = n->doc;
        json_t *ctrs = json_object();
        if (containers) {
                const char *k;
                json_t *ep;
                json_object_foreach(json_object_get(d, "Endpoints"), k, ep)
                {
                        char v4[64];
                        snprintf(v4, sizeof(v4), "%s/%d", json_string_value(json_object_get(ep, "IPAddress")) ?: "",
                                 n->prefix);
                        json_object_set_new(ctrs, k,
                                            json_pack("{s:O, s:O, s:O, s:s, s:s}", "Name", json_object_get(ep, "Name"),
                                                      "EndpointID", json_object_get(ep, "EndpointID"), "MacAddress",
                                                      json_object_get(ep, "MacAddress"), "IPv4Address", v4,
                                                      "IPv6Address", ""));
                }
        }
        return json_pack("{s:s, s:s, s:O, s:s, s:s, s:b, s:{s:s, s:n, s:O}, s:b, s:b, s:b, s:{s:s}, s:b, s:o, s:O, "
                         "s:O}",
                         "Name", n->name, "Id", n->id, "Created", json_object_get(d, "Created"), "Scope", "local",
                         "Driver", "bridge", "EnableIPv6", 0, "IPAM", "Driver", "default", "Options", "Config",
                         json_object_get(json_object_get(d, "IPAM"), "Config"), "Internal", n->internal, "Attachable",
                         json_is_true(json_object_get(d, "Attachable")), "Ingress", 0, "ConfigFrom", "Network", "",
                         "ConfigOnly", 0, "Containers", ctrs, "Options", json_object_get(d, "Options"), "Labels",
                         json_object_get(d, "Labels"));
}

static size_t json_size(json_t *f)
{
        return json_is_object(f) ? json_object_size(f) : json_array_size(f);
}

/* filters: {"name": {"x": true}} or {"name": ["x"]}: any value matches. */
static bool filter_ok(json_t *filters, const char *key, bool (*fn)(json_t *doc, const char *v), json_t *doc)
{
        json_t *f = json_object_get(filters, key);
        if (!f)
                return true;
        const char *k;
        json_t *v;
        size_t i;
        if (json_is_object(f)) {
                json_object_foreach(f, k, v) if (fn(doc, k)) return true;
        } else {
                json_array_foreach(f, i, v) if (fn(doc, json_string_value(v) ?: "")) return true;
        }
        return json_size(f) == 0;
}

static bool f_name(json_t *doc, const char *v)
{
        return strstr(json_string_value(json_object_get(doc, "Name")) ?: "", v) != NULL;
}

static bool f_id(json_t *doc, const char *v)
{
        return !strncmp(json_string_value(json_object_get(doc, "Id")) ?: "", v, strlen(v));
}

static bool f_driver(json_t *doc, const char *v)
{
        return !strcmp(json_string_value(json_object_get(doc, "Driver")) ?: "", v);
}

static bool f_label(json_t *doc, const char *v)
{
        json_t *labels = json_object_get(doc, "Labels");
        const char *eq = strchr(v, '=');
        if (!eq)
                return json_object_get(labels, v) != NULL;
        _cleanup_free_ char *k = strndup(v, (size_t) (eq - v));
        return k && !strcmp(json_string_value(json_object_get(labels, k)) ?: "\x01", eq + 1);
}

static bool f_type(json_t *doc, const char *v)
{
        const char *name = json_string_value(json_object_get(doc, "Name")) ?: "";
        bool builtin = !strcmp(name, "bridge") || !strcmp(name, "host") || !strcmp(name, "none");
        return !strcmp(v, builtin ? "builtin" : "custom");
}

static bool filters_ok(json_t *filters, json_t *doc)
{
        /* labels: all must match */
        json_t *lf = json_object_get(filters, "label");
        const char *k;
        json_t *v;
        size_t i;
        if (json_is_object(lf)) {
                json_object_foreach(lf, k, v) if (!f_label(doc, k)) return false;
        } else {
                json_array_foreach(lf, i, v) if (!f_label(doc, json_string_value(v) ?: "")) return false;
        }
        return filter_ok(filters, "name", f_name, doc) && filter_ok(filters, "id", f_id, doc) &&
               filter_ok(filters, "driver", f_driver, doc) && filter_ok(filters, "type", f_type, doc);
}

static int parse_filters(struct http_request *r, json_t **ret)
{
        const char *fs = http_query(r, "filters");
        *ret = NULL;
        if (!fs || !*fs)
                return 0;
        json_error_t jerr;
        if (!(*ret = json_loads(fs, 0, &jerr)) || !json_is_object(*ret)) {
                json_decref(*ret);
                *ret = NULL;
                http_reply_error(r, 400, "invalid filters: %s", jerr.text);
                return -EINVAL;
        }
        return 0;
}

static enum MHD_Result networks_list(struct http_request *r)
{
        json_t *filters;
        if (parse_filters(r, &filters) < 0)
                return MHD_YES;
        json_t *out = json_array();
        net_lock();
        for (struct network *n = net_store.list; n; n = n->next) {
                json_t *d = network_doc(n, false);
                if (filters_ok(filters, d))
                        json_array_append_new(out, d);
                else
                        json_decref(d);
        }
        net_unlock();
        static const char *const pseudo[] = { "host", "none" };
        for (size_t i = 0; i < 2; i++) {
                json_t *d = pseudo_doc(pseudo[i]);
                if (filters_ok(filters, d))
                        json_array_append_new(out, d);
                else
                        json_decref(d);
        }
        json_decref(filters);
        return http_reply_json(r, 200, out);
}

static const char *pseudo_name(const char *ref)
{
        static const char *const pseudo[] = { "host", "none" };
        for (size_t i = 0; i < 2; i++)
                if (!strcmp(ref, pseudo[i]) || (strlen(ref) >= 12 && !strncmp(net_pseudo_id(pseudo[i]), ref, strlen(ref))))
                        return pseudo[i];
        return NULL;
}

static enum MHD_Result network_inspect(struct http_request *r)
{
        const char *ref = r->params[0];
        const char *p = pseudo_name(ref);
        if (p)
                return http_reply_json(r, 200, pseudo_doc(p));
        net_lock();
        bool amb = false;
        struct network *n = net_find(ref, &amb);
        json_t *d = n ? network_doc(n, true) : NULL;
        net_unlock();
        if (amb)
                return http_reply_error(r, 400, "network %s is ambiguous", ref);
        if (!d)
                return http_reply_error(r, 404, "network %s not found", ref);
        return http_reply_json(r, 200, d);
}

static bool name_valid(const char *s)
{
        if (!s || !*s || strlen(s) > 200)
                return false;
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", s[0]))
                return false;
        return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == strlen(s);
}

static enum MHD_Result network_create(struct http_request *r)
{
        json_t *body = NULL;
        if (http_body_json(r, false, &body) < 0)
                return MHD_YES;
        const char *name = json_string_value(json_object_get(body, "Name"));
        const char *driver = json_string_value(json_object_get(body, "Driver"));
        json_t *ipam = json_object_get(body, "IPAM");
        json_t *configs = json_object_get(ipam, "Config");
        const char *ipam_driver = json_string_value(json_object_get(ipam, "Driver"));
        json_t *cfg = json_array_get(configs, 0);
        enum MHD_Result res;
        char err[512] = "";
        unsigned status = 0;
        if (!name || !*name) {
                status = 400;
                snprintf(err, sizeof(err), "network name must not be empty");
        } else if (!name_valid(name)) {
                status = 400;
                snprintf(err, sizeof(err), "invalid network name \"%s\", only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                         name);
        } else if (driver && *driver && strcmp(driver, "bridge")) {
                status = 400;
                snprintf(err, sizeof(err), "network driver \"%s\" is not supported (bridge only)", driver);
        } else if (ipam_driver && *ipam_driver && strcmp(ipam_driver, "default")) {
                status = 400;
                snprintf(err, sizeof(err), "IPAM driver \"%s\" is not supported (default only)", ipam_driver);
        } else if (json_is_true(json_object_get(body, "EnableIPv6"))) {
                status = 400;
                snprintf(err, sizeof(err), "IPv6 networks are not supported");
        } else if (json_array_size(configs) > 1) {
                status = 400;
                snprintf(err, sizeof(err), "only one IPv4 subnet per network is supported");
        } else if (json_string_length(json_object_get(cfg, "IPRange")) ||
                   json_object_size(json_object_get(cfg, "AuxiliaryAddresses"))) {
                status = 400;
                snprintf(err, sizeof(err), "IPRange and AuxiliaryAddresses are not supported");
        } else if (!strcmp(name, "host") || !strcmp(name, "none")) {
                status = 409;
                snprintf(err, sizeof(err), "network with name %s already exists", name);
        }
        if (status) {
                json_decref(body);
                return http_reply_error(r, status, "%s", err);
        }
        const char *subnet = json_string_value(json_object_get(cfg, "Subnet"));
        const char *gw = json_string_value(json_object_get(cfg, "Gateway"));
        if (gw && *gw && !(subnet && *subnet)) {
                json_decref(body);
                return http_reply_error(r, 400, "a gateway needs a subnet");
        }
        net_lock();
        struct network *n = NULL;
        int rc;
        if (net_find(name, NULL) && !strcmp(net_find(name, NULL)->name, name)) {
                snprintf(err, sizeof(err), "network with name %s already exists", name);
                rc = -EEXIST;
        } else {
                rc = net_store_add(name, subnet, gw, json_is_true(json_object_get(body, "Internal")),
                                   json_object_get(body, "Labels"), json_object_get(body, "Options"), false, &n, err,
                                   sizeof(err));
        }
        char id[65] = "";
        if (rc == 0) {
                if (json_is_true(json_object_get(body, "Attachable")))
                        json_object_set_new(n->doc, "Attachable", json_true());
                snprintf(id, sizeof(id), "%s", n->id);
                log_info("engine: created the network %s (%s)", name, json_string_value(json_object_get(
                                                                            json_array_get(json_object_get(
                                                                                    json_object_get(n->doc, "IPAM"),
                                                                                    "Config"),
                                                                                           0),
                                                                            "Subnet")));
                (void) net_nft_sync(); /* the isolation rules name every bridge */
        }
        net_unlock();
        json_decref(body);
        if (rc < 0)
                return http_reply_error(r, rc == -ENOSPC ? 400 : net_http_status(rc), "%s", err);
        res = http_reply_json(r, 201, json_pack("{s:s, s:s}", "Id", id, "Warning", ""));
        return res;
}

/* Removes n (no endpoint left). Call with net_lock() held. */
static void network_remove_locked(struct network *n)
{
        log_info("engine: removing the network %s", n->name);
        if (net_store.nl)
                (void) net_link_delete(net_store.nl, n->bridge);
        net_store_delete(n);
        (void) net_nft_sync();
}

static enum MHD_Result network_delete(struct http_request *r)
{
        const char *ref = r->params[0];
        const char *p = pseudo_name(ref);
        if (p)
                return http_reply_error(r, 403, "%s is a pre-defined network and cannot be removed", p);
        net_lock();
        bool amb = false;
        struct network *n = net_find(ref, &amb);
        enum MHD_Result res;
        if (amb) {
                res = http_reply_error(r, 400, "network %s is ambiguous", ref);
        } else if (!n) {
                res = http_reply_error(r, 404, "network %s not found", ref);
        } else if (n->predefined) {
                res = http_reply_error(r, 403, "%s is a pre-defined network and cannot be removed", n->name);
        } else if (json_object_size(json_object_get(n->doc, "Endpoints"))) {
                res = http_reply_error(r, 403, "error while removing network: network %s id %s has active endpoints",
                                       n->name, n->id);
        } else {
                network_remove_locked(n);
                res = http_reply_empty(r, 204);
        }
        net_unlock();
        return res;
}

/* The body of connect and disconnect: {"Container": ..., ...}, for a
 * network other than host, none and the like. On failure the reply (400
 * or 403) is queued, *ret_res holds what the handler returns, and -1. */
static int endpoint_request(struct http_request *r, json_t **ret_body, const char **ret_ctr,
                            enum MHD_Result *ret_res)
{
        json_t *body = NULL;
        if (http_body_json(r, false, &body) < 0) {
                *ret_res = MHD_YES;
                return -1;
        }
        const char *ctr = json_string_value(json_object_get(body, "Container"));
        if (ctr && *ctr && !pseudo_name(r->params[0])) {
                *ret_body = body;
                *ret_ctr = ctr;
                return 0;
        }
        if (!ctr || !*ctr)
                *ret_res = http_reply_error(r, 400, "Container must be given");
        else
                *ret_res = http_reply_error(r, 403, "container cannot be disconnected from host network or "
                                                    "connected to host network");
        json_decref(body);
        return -1;
}

static enum MHD_Result network_connect(struct http_request *r)
{
        json_t *body = NULL;
        const char *ctr = NULL;
        enum MHD_Result bad;
        if (endpoint_request(r, &body, &ctr, &bad) < 0)
                return bad;
        char err[512];
        int rc = net_connect(r->engine, ctr, r->params[0], json_object_get(body, "EndpointConfig"), err, sizeof(err));
        json_decref(body);
        if (rc < 0)
                return http_reply_error(r, net_http_status(rc), "%s", err);
        return http_reply_empty(r, 200);
}

static enum MHD_Result network_disconnect(struct http_request *r)
{
        json_t *body = NULL;
        const char *ctr = NULL;
        enum MHD_Result bad;
        if (endpoint_request(r, &body, &ctr, &bad) < 0)
                return bad;
        char err[512];
        int rc = net_disconnect(r->engine, ctr, r->params[0], json_is_true(json_object_get(body, "Force")), err,
                                sizeof(err));
        json_decref(body);
        if (rc < 0)
                return http_reply_error(r, net_http_status(rc), "%s", err);
        return http_reply_empty(r, 200);
}

static enum MHD_Result networks_prune(struct http_request *r)
{
        struct engine *en = r->engine;
        json_t *filters;
        if (parse_filters(r, &filters) < 0)
                return MHD_YES;
        /* the networks any container refers to, running or not */
        json_t *used = json_object();
        pthread_mutex_lock(&en->ctrs.lock);
        for (struct ctr *c = en->ctrs.list; c; c = c->next) {
                const char *k;
                json_t *v;
                json_object_foreach(json_object_get(json_object_get(c->doc, "NetworkSettings"), "Networks"), k, v)
                {
                        const char *id = json_string_value(json_object_get(v, "NetworkID"));
                        if (id)
                                json_object_set_new(used, id, json_true());
                }
        }
        pthread_mutex_unlock(&en->ctrs.lock);
        json_t *deleted = json_array();
        net_lock();
        for (struct network *n = net_store.list, *next; n; n = next) {
                next = n->next;
                if (n->predefined || json_object_get(used, n->id) ||
                    json_object_size(json_object_get(n->doc, "Endpoints")))
                        continue;
                json_t *d = network_doc(n, false);
                bool ok = filters_ok(filters, d);
                json_decref(d);
                if (!ok)
                        continue;
                json_array_append_new(deleted, json_string(n->name));
                network_remove_locked(n);
        }
        net_unlock();
        json_decref(used);
        json_decref(filters);
        return http_reply_json(r, 200, json_pack("{s:o}", "NetworksDeleted", deleted));
}

const struct http_route engine_network_routes[] = {
        { "GET", "/networks", networks_list, 0 },
        { "POST", "/networks/create", network_create, 0 },
        { "POST", "/networks/prune", networks_prune, 0 },
        { "GET", "/networks/{}", network_inspect, 0 },
        { "DELETE", "/networks/{}", network_delete, 0 },
        { "POST", "/networks/{}/connect", network_connect, 0 },
        { "POST", "/networks/{}/disconnect", network_disconnect, 0 },
};
const size_t engine_network_n_routes = sizeof(engine_network_routes) / sizeof(engine_network_routes[0]);

/* NAT and filtering in the engine's own nftables table, "ip berth",
 * through libnftables. The table is regenerated whole from the records
 * on each change, in one transaction ("add; delete; define" of the
 * table): nothing is ever duplicated or left over, and after a restart
 * the engine simply writes it again. The table goes when no endpoint is
 * left. Nothing of anyone else's ruleset is touched.
 *
 *   prerouting/output (nat)  fib daddr type local → chain ports: DNAT of
 *                            the published ports (output: the host itself,
 *                            127.0.0.1 included, with route_localnet on
 *                            the bridges)
 *   postrouting (nat)        masquerade: loopback-sourced packets sent to
 *                            a bridge, hairpin, outbound of each
 *                            non-internal network
 *   forward (filter)         isolation: no traffic between two networks'
 *                            bridges, none in or out of an internal one;
 *                            DNAT'd (published) traffic passes */
#include <arpa/inet.h>
#include <errno.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"
#include "network-internal.h"

#define TABLE "ip berth"

int net_nft_open(struct nft_ctx **ret)
{
        struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
        if (!nft)
                return -ENOMEM;
        if (nft_ctx_buffer_output(nft) < 0 || nft_ctx_buffer_error(nft) < 0) {
                nft_ctx_free(nft);
                return -ENOMEM;
        }
        *ret = nft;
        return 0;
}

void net_nft_close(struct nft_ctx *nft)
{
        if (nft)
                nft_ctx_free(nft);
}

static int run(const char *cmds)
{
        if (!net_store.nft)
                return -ENOTCONN;
        int r = nft_run_cmd_from_buffer(net_store.nft, cmds);
        if (r != 0) {
                const char *e = nft_ctx_get_error_buffer(net_store.nft);
                log_error("engine: nftables: %s", e && *e ? e : "failed");
                log_debug("engine: the commands were:\n%s", cmds);
                return -EIO;
        }
        return 0;
}

int net_nft_delete_table(void)
{
        return run("add table " TABLE "\ndelete table " TABLE "\n");
}

static void write_ports(FILE *f, json_t *ep)
{
        const char *ip = json_string_value(json_object_get(ep, "IPAddress"));
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(ep, "Ports"), i, p)
        {
                const char *proto = json_string_value(json_object_get(p, "Proto"));
                const char *hip = json_string_value(json_object_get(p, "HostIp")) ?: "0.0.0.0";
                long long hp = json_integer_value(json_object_get(p, "HostPort"));
                long long cp = json_integer_value(json_object_get(p, "CtrPort"));
                if (!proto || !ip)
                        continue;
                fprintf(f, "\t\t");
                if (strcmp(hip, "0.0.0.0"))
                        fprintf(f, "ip daddr %s ", hip);
                fprintf(f, "%s dport %lld dnat to %s:%lld\n", proto, hp, ip, cp);
        }
}

int net_nft_sync(void)
{
        bool any = false;
        for (struct network *n = net_store.list; n && !any; n = n->next)
                any = json_object_size(json_object_get(n->doc, "Endpoints")) > 0;
        if (!any)
                return net_nft_delete_table();
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        fprintf(f, "add table " TABLE "\ndelete table " TABLE "\ntable " TABLE " {\n\tchain ports {\n");
        for (struct network *n = net_store.list; n; n = n->next) {
                const char *k;
                json_t *ep;
                json_object_foreach(json_object_get(n->doc, "Endpoints"), k, ep) write_ports(f, ep);
        }
        fprintf(f, "\t}\n"
                   "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
                   "\t\tfib daddr type local jump ports\n\t}\n"
                   "\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n"
                   "\t\tfib daddr type local jump ports\n\t}\n"
                   "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n");
        for (struct network *n = net_store.list; n; n = n->next) {
                char sub[INET_ADDRSTRLEN];
                inet_ntop(AF_INET, &n->subnet, sub, sizeof(sub));
                fprintf(f, "\t\toifname \"%s\" ip saddr 127.0.0.0/8 masquerade\n", n->bridge);
                fprintf(f, "\t\tct status dnat oifname \"%s\" ip saddr %s/%d masquerade\n", n->bridge, sub, n->prefix);
                if (!n->internal)
                        fprintf(f, "\t\tip saddr %s/%d oifname != \"%s\" masquerade\n", sub, n->prefix, n->bridge);
        }
        fprintf(f, "\t}\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n"
                   "\t\tct status dnat accept\n");
        for (struct network *n = net_store.list; n; n = n->next) {
                if (n->internal) {
                        fprintf(f, "\t\tiifname \"%s\" oifname != \"%s\" drop\n", n->bridge, n->bridge);
                        fprintf(f, "\t\toifname \"%s\" iifname != \"%s\" drop\n", n->bridge, n->bridge);
                        continue;
                }
                bool first = true;
                for (struct network *o = net_store.list; o; o = o->next) {
                        if (o == n)
                                continue;
                        if (first)
                                fprintf(f, "\t\tiifname \"%s\" oifname { \"%s\"", n->bridge, o->bridge);
                        else
                                fprintf(f, ", \"%s\"", o->bridge);
                        first = false;
                }
                if (!first)
                        fprintf(f, " } drop\n");
        }
        fprintf(f, "\t}\n}\n");
        fclose(f);
        return run(buf);
}

/* Links, addresses, routes and namespaces with libnl-route-3 (no `ip`).
 *
 * A namespace is made on a short-lived thread of its own: it unshares
 * CLONE_NEWNET (which only that thread enters), bind-mounts
 * /proc/thread-self/ns/net at the path, opens a netlink socket there (a
 * socket stays in the namespace it was made in) and ends. The engine's
 * other threads never change namespace. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <netlink/addr.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs-util.h"
#include "log.h"
#include "network-internal.h"

/* libnl's NLE_* codes as errno values. */
static int nl_errno(int e)
{
        switch (-e) {
        case NLE_EXIST:
                return -EEXIST;
        case NLE_OBJ_NOTFOUND:
        case NLE_NODEV:
                return -ENODEV;
        case NLE_PERM:
                return -EPERM;
        case NLE_BUSY:
                return -EBUSY;
        case NLE_NOMEM:
                return -ENOMEM;
        case NLE_INVAL:
                return -EINVAL;
        case NLE_NOADDR:
                return -EADDRNOTAVAIL;
        default:
                return -EIO;
        }
}

int net_link_open(struct nl_sock **ret)
{
        struct nl_sock *sk = nl_socket_alloc();
        if (!sk)
                return -ENOMEM;
        int r = nl_connect(sk, NETLINK_ROUTE);
        if (r < 0) {
                nl_socket_free(sk);
                return nl_errno(r);
        }
        *ret = sk;
        return 0;
}

void net_link_close(struct nl_sock *sk)
{
        if (sk)
                nl_socket_free(sk);
}

static int link_ifindex(struct nl_sock *sk, const char *name)
{
        struct rtnl_link *l = NULL;
        int r = rtnl_link_get_kernel(sk, 0, name, &l);
        if (r < 0)
                return nl_errno(r);
        int idx = rtnl_link_get_ifindex(l);
        rtnl_link_put(l);
        return idx;
}

bool net_link_exists(struct nl_sock *sk, const char *name)
{
        return link_ifindex(sk, name) > 0;
}

static int link_up(struct nl_sock *sk, int ifindex)
{
        struct rtnl_link *orig = rtnl_link_alloc(), *ch = rtnl_link_alloc();
        int r = -ENOMEM;
        if (orig && ch) {
                rtnl_link_set_ifindex(orig, ifindex);
                rtnl_link_set_flags(ch, IFF_UP);
                r = rtnl_link_change(sk, orig, ch, 0);
                r = r < 0 ? nl_errno(r) : 0;
        }
        if (orig)
                rtnl_link_put(orig);
        if (ch)
                rtnl_link_put(ch);
        return r;
}

static int addr_add(struct nl_sock *sk, int ifindex, struct in_addr ip, int prefix)
{
        struct rtnl_addr *a = rtnl_addr_alloc();
        if (!a)
                return -ENOMEM;
        struct nl_addr *local = nl_addr_build(AF_INET, &ip, 4);
        int r = -ENOMEM;
        if (local) {
                nl_addr_set_prefixlen(local, prefix);
                rtnl_addr_set_ifindex(a, ifindex);
                rtnl_addr_set_local(a, local);
                struct in_addr bc = { .s_addr = ip.s_addr | (prefix ? htonl(0xffffffffu >> prefix) : 0xffffffffu) };
                struct nl_addr *b = prefix < 31 ? nl_addr_build(AF_INET, &bc, 4) : NULL;
                if (b) {
                        rtnl_addr_set_broadcast(a, b);
                        nl_addr_put(b);
                }
                r = rtnl_addr_add(sk, a, 0);
                r = r < 0 ? nl_errno(r) : 0;
                nl_addr_put(local);
        }
        rtnl_addr_put(a);
        return r;
}

int net_sysctl_set(const char *key, const char *value)
{
        char path[256];
        snprintf(path, sizeof(path), "/proc/sys/%s", key);
        for (char *p = path + 10; *p; p++)
                if (*p == '.')
                        *p = '/';
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return fs_write_all(fd, value, strlen(value));
}

int net_sysctl_get(const char *key, char *buf, size_t len)
{
        char path[256];
        snprintf(path, sizeof(path), "/proc/sys/%s", key);
        for (char *p = path + 10; *p; p++)
                if (*p == '.')
                        *p = '/';
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, buf, len - 1);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        return 0;
}

int net_link_bridge_ensure(struct nl_sock *sk, const struct network *n)
{
        int idx = link_ifindex(sk, n->bridge);
        if (idx < 0) {
                struct rtnl_link *br = rtnl_link_bridge_alloc();
                if (!br)
                        return -ENOMEM;
                rtnl_link_set_name(br, n->bridge);
                int r = rtnl_link_add(sk, br, NLM_F_CREATE | NLM_F_EXCL);
                rtnl_link_put(br);
                if (r < 0 && nl_errno(r) != -EEXIST) {
                        log_debug("engine: creating the bridge \"%s\": %s", n->bridge, nl_geterror(r));
                        return nl_errno(r);
                }
                idx = link_ifindex(sk, n->bridge);
                if (idx < 0)
                        return idx;
                log_info("engine: created the bridge \"%s\" for the network %s", n->bridge, n->name);
        }
        int r = addr_add(sk, idx, n->gateway, n->prefix);
        if (r < 0 && r != -EEXIST)
                return r;
        char key[128];
        /* published ports reached at 127.0.0.1: the output chain's DNAT
         * sends loopback-sourced packets out of the bridge */
        snprintf(key, sizeof(key), "net/ipv4/conf/%s/route_localnet", n->bridge);
        if ((r = net_sysctl_set(key, "1")) < 0)
                log_warn("engine: setting %s: %s (published ports will not answer on 127.0.0.1)", key,
                         strerror(-r));
        return link_up(sk, idx);
}

int net_link_delete(struct nl_sock *sk, const char *name)
{
        struct rtnl_link *l = rtnl_link_alloc();
        if (!l)
                return -ENOMEM;
        rtnl_link_set_name(l, name);
        int r = rtnl_link_delete(sk, l);
        rtnl_link_put(l);
        if (r < 0 && nl_errno(r) == -ENODEV)
                return 0;
        return r < 0 ? nl_errno(r) : 0;
}

/* ---- namespaces ---- */

struct ns_job {
        const char *path;
        bool create;
        int err;
        struct nl_sock *sk;
        int fd;
};

static void *ns_thread(void *arg)
{
        struct ns_job *j = arg;
        if (j->create) {
                if (unshare(CLONE_NEWNET) < 0) {
                        j->err = -errno;
                        return NULL;
                }
                int fd = open(j->path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
                if (fd < 0) {
                        j->err = -errno;
                        return NULL;
                }
                close(fd);
                if (mount("/proc/thread-self/ns/net", j->path, "none", MS_BIND, NULL) < 0) {
                        j->err = -errno;
                        unlink(j->path);
                        return NULL;
                }
        } else {
                _cleanup_close_ int fd = open(j->path, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
                        j->err = -errno;
                        return NULL;
                }
        }
        j->fd = open(j->path, O_RDONLY | O_CLOEXEC);
        if (j->fd < 0) {
                j->err = -errno;
                return NULL;
        }
        j->err = net_link_open(&j->sk);
        if (j->err == 0 && j->create)
                j->err = link_up(j->sk, 1); /* lo is always 1 in a new namespace */
        return NULL;
}

static int ns_run(const char *path, bool create, struct nl_sock **ret_sk, int *ret_fd)
{
        struct ns_job j = { .path = path, .create = create, .fd = -1 };
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 128 << 10);
        int r = pthread_create(&t, &a, ns_thread, &j);
        pthread_attr_destroy(&a);
        if (r)
                return -r;
        pthread_join(t, NULL);
        if (j.err < 0) {
                if (j.sk)
                        nl_socket_free(j.sk);
                if (j.fd >= 0)
                        close(j.fd);
                if (create && j.err != -EEXIST)
                        (void) net_netns_remove(path);
                return j.err;
        }
        *ret_sk = j.sk;
        *ret_fd = j.fd;
        return 0;
}

int net_netns_create(const char *path, struct nl_sock **ret_sk, int *ret_fd)
{
        return ns_run(path, true, ret_sk, ret_fd);
}

int net_netns_open(const char *path, struct nl_sock **ret_sk, int *ret_fd)
{
        return ns_run(path, false, ret_sk, ret_fd);
}

int net_netns_remove(const char *path)
{
        if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
                log_warn("engine: unmounting \"%s\": %s", path, strerror(errno));
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int net_netns_dir_setup(const char *dir)
{
        int r = fs_mkdir_p(dir, 0755);
        if (r < 0)
                return r;
        if (mount("", dir, "none", MS_SHARED | MS_REC, NULL) == 0)
                return 0;
        if (errno != EINVAL)
                return -errno;
        /* not a mount point yet */
        if (mount(dir, dir, "none", MS_BIND | MS_REC, NULL) < 0)
                return -errno;
        if (mount("", dir, "none", MS_SHARED | MS_REC, NULL) < 0)
                return -errno;
        return 0;
}

/* ---- veth ---- */

static int route_default(struct nl_sock *sk, int ifindex, struct in_addr gw)
{
        struct rtnl_route *rt = rtnl_route_alloc();
        struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
        struct nl_addr *dst = nl_addr_build(AF_INET, &(struct in_addr) { 0 }, 4);
        struct nl_addr *via = nl_addr_build(AF_INET, &gw, 4);
        int r = -ENOMEM;
        if (rt && nh && dst && via) {
                nl_addr_set_prefixlen(dst, 0);
                rtnl_route_set_family(rt, AF_INET);
                rtnl_route_set_table(rt, RT_TABLE_MAIN);
                rtnl_route_set_protocol(rt, RTPROT_BOOT);
                rtnl_route_set_scope(rt, RT_SCOPE_UNIVERSE);
                rtnl_route_set_type(rt, RTN_UNICAST);
                rtnl_route_set_dst(rt, dst);
                rtnl_route_nh_set_gateway(nh, via);
                rtnl_route_nh_set_ifindex(nh, ifindex);
                rtnl_route_add_nexthop(rt, nh);
                nh = NULL; /* the route owns it */
                r = rtnl_route_add(sk, rt, NLM_F_CREATE | NLM_F_REPLACE);
                r = r < 0 ? nl_errno(r) : 0;
        }
        if (nh)
                rtnl_route_nh_free(nh);
        if (rt)
                rtnl_route_put(rt);
        if (dst)
                nl_addr_put(dst);
        if (via)
                nl_addr_put(via);
        return r;
}

int net_link_veth_setup(struct nl_sock *sk, const char *bridge, const char *host_if, int nsfd, struct nl_sock *nsk,
                        const char *ifname, const uint8_t mac[6], struct in_addr ip, int prefix, struct in_addr gw)
{
        int br = link_ifindex(sk, bridge);
        if (br < 0)
                return br;
        struct rtnl_link *veth = rtnl_link_veth_alloc();
        if (!veth)
                return -ENOMEM;
        rtnl_link_set_name(veth, host_if);
        rtnl_link_set_master(veth, br);
        rtnl_link_set_flags(veth, IFF_UP);
        struct rtnl_link *peer = rtnl_link_veth_get_peer(veth);
        rtnl_link_set_name(peer, ifname);
        rtnl_link_set_ns_fd(peer, nsfd);
        struct nl_addr *lladdr = nl_addr_build(AF_LLC, mac, 6);
        if (lladdr) {
                rtnl_link_set_addr(peer, lladdr);
                nl_addr_put(lladdr);
        }
        rtnl_link_put(peer);
        int r = rtnl_link_add(sk, veth, NLM_F_CREATE | NLM_F_EXCL);
        rtnl_link_veth_release(veth);
        if (r < 0) {
                log_debug("engine: creating the veth pair \"%s\": %s", host_if, nl_geterror(r));
                return nl_errno(r);
        }
        /* with br_netfilter, a published port reached from a container of
         * the same bridge (hairpin) is bridged back out of its own port */
        char hp[128];
        snprintf(hp, sizeof(hp), "/sys/class/net/%s/brport/hairpin_mode", host_if);
        _cleanup_close_ int hfd = open(hp, O_WRONLY | O_CLOEXEC);
        if (hfd < 0 || fs_write_all(hfd, "1", 1) < 0)
                log_debug("engine: hairpin mode on \"%s\": %s", host_if, strerror(errno));
        int idx = link_ifindex(nsk, ifname);
        if (idx < 0)
                r = idx;
        else if ((r = addr_add(nsk, idx, ip, prefix)) < 0 && r != -EEXIST)
                ;
        else if ((r = link_up(nsk, idx)) < 0)
                ;
        else if (gw.s_addr && (r = route_default(nsk, idx, gw)) < 0 && r != -EEXIST)
                ;
        else
                r = 0;
        if (r < 0)
                (void) net_link_delete(sk, host_if);
        return r;
}

bool net_link_route_overlaps(struct nl_sock *sk, struct in_addr subnet, int prefix)
{
        struct nl_cache *cache = NULL;
        if (rtnl_route_alloc_cache(sk, AF_INET, 0, &cache) < 0)
                return false;
        bool hit = false;
        for (struct nl_object *o = nl_cache_get_first(cache); o && !hit; o = nl_cache_get_next(o)) {
                struct rtnl_route *rt = (struct rtnl_route *) o;
                if (rtnl_route_get_table(rt) != RT_TABLE_MAIN)
                        continue;
                struct nl_addr *d = rtnl_route_get_dst(rt);
                int p = d ? (int) nl_addr_get_prefixlen(d) : 0;
                if (!d || p == 0 || nl_addr_get_len(d) != 4)
                        continue; /* the default route overlaps everything: not a conflict */
                struct in_addr a;
                memcpy(&a, nl_addr_get_binary_addr(d), 4);
                hit = net_subnets_overlap(a, p, subnet, prefix);
        }
        nl_cache_free(cache);
        return hit;
}

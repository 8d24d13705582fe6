/* /_ping, /version, /info. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cleanup.h"
#include "engine.h"
#include "fs-util.h"
#include "log.h"
#include "supervisor.pb-c.h"

static enum MHD_Result ping(struct http_request *r)
{
        if (!strcmp(r->method, "HEAD"))
                return http_reply_text(r, 200, "text/plain; charset=utf-8", "");
        return http_reply_text(r, 200, "text/plain; charset=utf-8", "OK");
}

const char *engine_go_arch(const char *m)
{
        if (!strcmp(m, "x86_64"))
                return "amd64";
        if (!strcmp(m, "aarch64"))
                return "arm64";
        if (!strncmp(m, "armv", 4))
                return "arm";
        if (!strcmp(m, "i686") || !strcmp(m, "i386"))
                return "386";
        return m;
}

static enum MHD_Result version(struct http_request *r)
{
        struct utsname u;
        uname(&u);
        json_t *details = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "ApiVersion", ENGINE_API_VERSION,
                                    "MinAPIVersion", ENGINE_API_MIN_VERSION, "GitCommit", "berth",
                                    "GoVersion", "none (C)", "Os", "linux", "Arch", engine_go_arch(u.machine),
                                    "KernelVersion", u.release);
        json_object_set_new(details, "BuildTime", json_string(BERTH_BUILD_TIME));
        json_t *j = json_pack("{s:{s:s}, s:[{s:s, s:s, s:o}], s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                              "Platform", "Name", "berth " BERTH_VERSION, "Components", "Name", "Engine",
                              "Version", BERTH_VERSION, "Details", details, "Version", BERTH_VERSION,
                              "ApiVersion", ENGINE_API_VERSION, "MinAPIVersion", ENGINE_API_MIN_VERSION,
                              "GitCommit", "berth", "GoVersion", "none (C)", "Os", "linux", "Arch",
                              engine_go_arch(u.machine), "KernelVersion", u.release, "BuildTime", BERTH_BUILD_TIME);
        return http_reply_json(r, 200, j);
}

/* PRETTY_NAME of /etc/os-release. */
static char *os_name(void)
{
        _cleanup_free_ char *data = NULL;
        size_t len;
        if (fs_read_file("/etc/os-release", 65536, &data, &len) < 0)
                return strdup("Linux");
        for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
                if (strncmp(line, "PRETTY_NAME=", 12))
                        continue;
                char *v = line + 12;
                size_t n = strlen(v);
                if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
                        return strndup(v + 1, n - 2);
                return strdup(v);
        }
        return strdup("Linux");
}

static int ip_forward(void)
{
        _cleanup_free_ char *v = NULL;
        size_t len;
        return fs_read_file("/proc/sys/net/ipv4/ip_forward", 16, &v, &len) == 0 && v[0] == '1';
}

static int cgroup_version(void)
{
        struct stat st;
        return stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0 ? 2 : 1;
}

const char *engine_storage_driver(struct engine *en)
{
        /* the supervisor's snapshotter under Docker's names: overlay2, or
         * vfs for the copying one; asked once, since the supervisor picks
         * it at start */
        static _Atomic int known; /* 0: not asked yet, 1: overlay2, 2: vfs */
        if (known)
                return known == 2 ? "vfs" : "overlay2";
        Berth__Supervisor__VersionRequest req = BERTH__SUPERVISOR__VERSION_REQUEST__INIT;
        Berth__Supervisor__VersionResponse *v = NULL;
        struct rpc_status st;
        if (engine_call(en, "supervisor.Version", &req.base, &berth__supervisor__version_response__descriptor,
                        ENGINE_CALL_TIMEOUT_MS, (ProtobufCMessage **) &v, &st) < 0)
                return "overlay2";
        known = v->snapshotter && !strcmp(v->snapshotter, "copy") ? 2 : 1;
        protobuf_c_message_free_unpacked(&v->base, NULL);
        return known == 2 ? "vfs" : "overlay2";
}

static enum MHD_Result info(struct http_request *r)
{
        struct engine *en = r->engine;
        struct rpc_status st;
        ProtobufCMessage *rep = NULL;
        Berth__Supervisor__ListImagesRequest ireq = BERTH__SUPERVISOR__LIST_IMAGES_REQUEST__INIT;
        size_t n_images = 0;

        if (engine_call(en, "images.ListImages", &ireq.base, &berth__supervisor__list_images_response__descriptor,
                        ENGINE_CALL_TIMEOUT_MS, &rep, &st) < 0)
                return engine_reply_rpc_error(r, &st);
        n_images = ((Berth__Supervisor__ListImagesResponse *) rep)->n_images;
        protobuf_c_message_free_unpacked(rep, NULL);

        /* Docker's counts are of containers, in every state */
        size_t running = 0, paused = 0, stopped = 0;
        pthread_mutex_lock(&en->ctrs.lock);
        for (struct ctr *c = en->ctrs.list; c; c = c->next) {
                const char *status = ctr_status(c);
                if (!strcmp(status, "running"))
                        running++;
                else if (!strcmp(status, "paused"))
                        paused++;
                else
                        stopped++;
        }
        pthread_mutex_unlock(&en->ctrs.lock);

        struct utsname u;
        uname(&u);
        struct sysinfo si;
        sysinfo(&si);
        char host[256] = "";
        gethostname(host, sizeof(host) - 1);
        _cleanup_free_ char *os = os_name();
        char now[64];
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        size_t k = strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(now + k, sizeof(now) - k, ".%09ldZ", ts.tv_nsec);
        int cgv = cgroup_version();

        json_t *j = json_pack(
                "{s:s, s:I, s:I, s:I, s:I, s:I, s:s, s:[], s:{s:[s], s:[s,s,s], s:[], s:[]},"
                " s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b,"
                " s:i, s:i, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:s, s:s, s:[], s:b, s:s}",
                "ID", host, "Containers", (json_int_t) (running + paused + stopped), "ContainersRunning",
                (json_int_t) running, "ContainersPaused", (json_int_t) paused, "ContainersStopped",
                (json_int_t) stopped, "Images", (json_int_t) n_images, "Driver", engine_storage_driver(en), "DriverStatus",
                "Plugins", "Volume", "local", "Network", "bridge", "host", "none",
                "Authorization", "Log", "MemoryLimit", 1, "SwapLimit", 1, "KernelMemory", 0, "KernelMemoryTCP", 0,
                "CpuCfsPeriod", 1, "CpuCfsQuota", 1, "CPUShares", 1, "CPUSet", 1, "PidsLimit", 1, "IPv4Forwarding",
                ip_forward(), "BridgeNfIptables", 0, "BridgeNfIp6tables", 0, "NFd", 0, "NGoroutines", 0, "SystemTime", now,
                "LoggingDriver", "json-file", "CgroupDriver", "cgroupfs", "CgroupVersion", cgv == 2 ? "2" : "1",
                "NEventsListener", 0, "KernelVersion", u.release, "OperatingSystem", os, "OSVersion", "",
                "OSType", "linux", "Architecture", u.machine, "IndexServerAddress", "https://index.docker.io/v1/",
                "NCPU", (int) sysconf(_SC_NPROCESSORS_ONLN), "MemTotal", (json_int_t) si.totalram * si.mem_unit,
                "DockerRootDir", en->data_root, "Name", host, "Labels", "ExperimentalBuild", 0, "ServerVersion",
                BERTH_VERSION);
        if (!j)
                return http_reply_error(r, 500, "engine: building the info reply");
        json_object_set_new(j, "Debug", json_boolean(log_get_level() >= LOG_LEVEL_DEBUG));
        json_object_set_new(j, "OomKillDisable", json_boolean(cgv == 1));
        /* CIDRs in one list, registries by name in IndexConfigs, as dockerd */
        json_t *cidrs = json_pack("[s]", "127.0.0.0/8");
        json_t *index = json_pack("{s:{s:s, s:O, s:b, s:b}}", "docker.io", "Name", "docker.io", "Mirrors",
                                  en->cfg.registry_mirrors, "Secure", 1, "Official", 1);
        size_t i;
        json_t *v;
        json_array_foreach(en->cfg.insecure_registries, i, v)
        {
                const char *s = json_string_value(v);
                if (strchr(s, '/'))
                        json_array_append(cidrs, v);
                else
                        json_object_set_new(index, s,
                                            json_pack("{s:s, s:[], s:b, s:b}", "Name", s, "Mirrors", "Secure", 0,
                                                      "Official", 0));
        }
        json_object_set_new(j, "RegistryConfig",
                            json_pack("{s:[], s:o, s:o, s:O}", "AllowNondistributableArtifactsCIDRs",
                                      "InsecureRegistryCIDRs", cidrs, "IndexConfigs", index, "Mirrors",
                                      en->cfg.registry_mirrors));
        json_object_set(j, "Runtimes", en->cfg.runtimes);
        json_object_set_new(j, "DefaultRuntime",
                            json_string(en->cfg.default_runtime ? en->cfg.default_runtime : "ocirun"));
        json_object_set_new(j, "Swarm", json_pack("{s:s, s:s, s:s, s:s, s:b, s:n}", "NodeID", "", "NodeAddr", "",
                                                  "LocalNodeState", "inactive", "Error", "", "ControlAvailable", 0,
                                                  "RemoteManagers"));
        json_object_set_new(j, "LiveRestoreEnabled", json_boolean(en->cfg.live_restore));
        json_object_set_new(j, "Isolation", json_string(""));
        json_object_set_new(j, "InitBinary", json_string(""));
        json_object_set_new(j, "ContainerdCommit", json_pack("{s:s, s:s}", "ID", "berth-supervisor", "Expected",
                                                             "berth-supervisor"));
        json_object_set_new(j, "RuncCommit", json_pack("{s:s, s:s}", "ID", "ocirun", "Expected", "ocirun"));
        json_object_set_new(j, "InitCommit", json_pack("{s:s, s:s}", "ID", "", "Expected", ""));
        /* every container gets Docker's default seccomp profile unless it
         * asks otherwise; user namespaces and AppArmor are not used */
        json_object_set_new(j, "SecurityOptions", json_pack("[s]", "name=seccomp,profile=default"));
        json_object_set_new(j, "Warnings", json_array());
        return http_reply_json(r, 200, j);
}

/* docker system prune asks for the build cache too: berth has no builder,
 * so there is never a cache to free */
static enum MHD_Result build_prune(struct http_request *r)
{
        return http_reply_json(r, 200, json_pack("{s:[], s:i}", "CachesDeleted", "SpaceReclaimed", 0));
}

const struct http_route engine_system_routes[] = {
        { "POST", "/build/prune", build_prune, 0 },
        { "GET", "/_ping", ping, 0 },
        { "HEAD", "/_ping", ping, 0 },
        { "GET", "/version", version, 0 },
        { "GET", "/info", info, 0 },
};
const size_t engine_system_n_routes = sizeof(engine_system_routes) / sizeof(engine_system_routes[0]);

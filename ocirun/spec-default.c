/* The config.json that `ocirun spec` writes: a busybox-friendly default with
 * the same shape and choices as runc's, so tools that start from `runc spec`
 * get what they expect. */
#include <string.h>
#include <unistd.h>

#include "spec.h"

static const char default_spec[] =
        "{"
        " \"ociVersion\": \"1.0.2-dev\","
        " \"process\": {"
        "  \"terminal\": true,"
        "  \"user\": {\"uid\": 0, \"gid\": 0},"
        "  \"args\": [\"sh\"],"
        "  \"env\": [\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\", \"TERM=xterm\"],"
        "  \"cwd\": \"/\","
        "  \"capabilities\": {"
        "   \"bounding\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"],"
        "   \"effective\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"],"
        "   \"permitted\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"],"
        "   \"ambient\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"]"
        "  },"
        "  \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"hard\": 1024, \"soft\": 1024}],"
        "  \"noNewPrivileges\": true"
        " },"
        " \"root\": {\"path\": \"rootfs\", \"readonly\": true},"
        " \"hostname\": \"ocirun\","
        " \"mounts\": ["
        "  {\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"},"
        "  {\"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\","
        "   \"options\": [\"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\"]},"
        "  {\"destination\": \"/dev/pts\", \"type\": \"devpts\", \"source\": \"devpts\","
        "   \"options\": [\"nosuid\", \"noexec\", \"newinstance\", \"ptmxmode=0666\", \"mode=0620\", \"gid=5\"]},"
        "  {\"destination\": \"/dev/shm\", \"type\": \"tmpfs\", \"source\": \"shm\","
        "   \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"mode=1777\", \"size=65536k\"]},"
        "  {\"destination\": \"/dev/mqueue\", \"type\": \"mqueue\", \"source\": \"mqueue\","
        "   \"options\": [\"nosuid\", \"noexec\", \"nodev\"]},"
        "  {\"destination\": \"/sys\", \"type\": \"sysfs\", \"source\": \"sysfs\","
        "   \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"ro\"]},"
        "  {\"destination\": \"/sys/fs/cgroup\", \"type\": \"cgroup\", \"source\": \"cgroup\","
        "   \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"relatime\", \"ro\"]}"
        " ],"
        " \"linux\": {"
        "  \"resources\": {\"devices\": [{\"allow\": false, \"access\": \"rwm\"}]},"
        "  \"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"network\"}, {\"type\": \"ipc\"},"
        "                  {\"type\": \"uts\"}, {\"type\": \"mount\"}],"
        "  \"maskedPaths\": [\"/proc/acpi\", \"/proc/asound\", \"/proc/kcore\", \"/proc/keys\","
        "                   \"/proc/latency_stats\", \"/proc/timer_list\", \"/proc/timer_stats\","
        "                   \"/proc/sched_debug\", \"/sys/firmware\", \"/proc/scsi\"],"
        "  \"readonlyPaths\": [\"/proc/bus\", \"/proc/fs\", \"/proc/irq\", \"/proc/sys\", \"/proc/sysrq-trigger\"]"
        " }"
        "}";

/* Rootless: a user namespace mapping the caller to root, no network
 * namespace (no one to set it up), /sys bound from the host, no devpts
 * gid, and no resources (no cgroup rights). */
static void make_rootless(json_t *spec)
{
        json_t *lx = json_object_get(spec, "linux");
        json_t *nss = json_array();
        size_t i;
        json_t *v;

        json_array_foreach(json_object_get(lx, "namespaces"), i, v) {
                const char *t = json_string_value(json_object_get(v, "type"));
                if (t && strcmp(t, "network") != 0)
                        json_array_append(nss, v);
        }
        json_array_append_new(nss, json_pack("{s:s}", "type", "user"));
        json_object_set_new(lx, "namespaces", nss);
        json_object_set_new(lx, "uidMappings",
                            json_pack("[{s:i, s:I, s:i}]", "containerID", 0, "hostID", (json_int_t) geteuid(), "size", 1));
        json_object_set_new(lx, "gidMappings",
                            json_pack("[{s:i, s:I, s:i}]", "containerID", 0, "hostID", (json_int_t) getegid(), "size", 1));
        json_object_del(lx, "resources");

        json_t *mounts = json_array();
        json_array_foreach(json_object_get(spec, "mounts"), i, v) {
                const char *dst = json_string_value(json_object_get(v, "destination"));
                if (strcmp(dst, "/sys") == 0) {
                        json_array_append_new(mounts,
                                              json_pack("{s:s, s:s, s:s, s:[s,s,s,s,s]}", "destination", "/sys", "type",
                                                        "none", "source", "/sys", "options", "rbind", "nosuid",
                                                        "noexec", "nodev", "ro"));
                        continue;
                }
                if (strcmp(dst, "/dev/pts") == 0) {
                        json_t *opts = json_array();
                        size_t k;
                        json_t *o;
                        json_array_foreach(json_object_get(v, "options"), k, o)
                                if (strcmp(json_string_value(o), "gid=5") != 0)
                                        json_array_append(opts, o);
                        json_object_set_new(v, "options", opts);
                }
                json_array_append(mounts, v);
        }
        json_object_set_new(spec, "mounts", mounts);
}

json_t *spec_default(bool rootless)
{
        json_t *spec = json_loads(default_spec, 0, NULL);
        if (spec && rootless)
                make_rootless(spec);
        return spec;
}

/* ocirun features: what this runtime supports, as the runtime-spec's
 * features document describes it. Built from the same tables the runtime
 * uses, so it cannot claim what the code does not do. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "mount-rootfs.h"
#include "seccomp.h"
#include "spec.h"

int cmd_features(const struct global_opts *g, int argc, char **argv)
{
        (void) g;
        if (cli_expect_args("features", "no arguments", argc - 1, 0, 0))
                return 1;

        json_t *caps = json_array();
        for (int i = 0;; i++) {
                const char *name = spec_cap_name(i);
                if (!name)
                        break;
                json_array_append_new(caps, json_string(name));
        }
        json_t *f = json_pack(
                "{s:s, s:s, s:[s,s,s,s,s,s], s:o, s:{s:[s,s,s,s,s,s], s:o, s:{s:b, s:b, s:b, s:b}, s:{s:b}, s:{s:b}}, "
                "s:{}}",
                "ociVersionMin", "1.0.0", "ociVersionMax", "1.1.0", "hooks", "prestart", "createRuntime",
                "createContainer", "startContainer", "poststart", "poststop", "mountOptions", mount_option_names(),
                "linux", "namespaces", "cgroup", "ipc", "mount", "network", "pid", "uts", "capabilities", caps,
                "cgroup", "v1", 1, "v2", 1, "systemd", 0, "systemdUser", 0, "apparmor", "enabled", 0, "selinux",
                "enabled", 0, "annotations");
        if (!f)
                return 1;
        json_t *sc = seccomp_features();
        if (sc)
                json_object_set_new(json_object_get(f, "linux"), "seccomp", sc);
        cli_print_json(f);
        json_decref(f);
        return 0;
}

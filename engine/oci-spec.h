/* Docker's container config and host config, with the image's config, as
 * an OCI runtime spec. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct oci_spec_ctx {
        const char *id;              /* the container's id: cgroupsPath /berth/<id> */
        const char *data_root;       /* named volumes: <data root>/engine/volumes/<name>/_data */
        const char *hostname;
        const char *hostname_file;   /* bound at /etc/hostname (NULL: none) */
        const char *hosts_file;      /* bound at /etc/hosts */
        const char *resolv_conf;     /* bound at /etc/resolv.conf */
        const char *netns_path;      /* join this network namespace (NULL: a new one, unless host_network) */
        bool host_network;
        int uid, gid;                /* a numeric user */
        json_t *additional_gids;     /* may be NULL */
        const char *init_path;       /* --init: this binary is bound at /sbin/docker-init and runs the command */
        const char *user_name;       /* a user given by name ("name[:group]"), resolved in the rootfs by the
                                      * supervisor through the annotation org.berth.user; NULL when numeric */
        /* Set by oci_spec_build on success (the caller releases them):
         * mounts_out, the container's Mounts as inspect shows them;
         * volumes_out, the volumes to create or reference before the
         * container exists: [{Name, Anonymous, Labels, Options,
         * Destination, Copy}] (Copy: Docker's copy-up of the image's
         * content into an empty volume). */
        json_t *mounts_out;
        json_t *volumes_out;
};

/* The command: the create's Entrypoint (or the image's) and Cmd (or the
 * image's, when no entrypoint was given at create). */
int oci_command(json_t *config, json_t *image_config, json_t **ret_args, char *err, size_t errlen);

/* The spec's linux.resources for HostConfig hc (devices, memory, cpu,
 * pids), or NULL with the reason in err. */
json_t *oci_resources(json_t *hc, char *err, size_t errlen);

/* config: the create body's Config part; hc: HostConfig; image_config: the
 * image config's "config" object (may be NULL). On bad input: -EINVAL and
 * the reason in err. */
int oci_spec_build(struct oci_spec_ctx *x, json_t *config, json_t *hc, json_t *image_config, json_t **ret,
                   char *err, size_t errlen);

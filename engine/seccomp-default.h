/* Docker's seccomp profiles as the OCI runtime spec's linux.seccomp.
 *
 * Docker's default profile (moby's profiles/seccomp, API 1.41 and later:
 * deny with EPERM, a few hundred syscalls allowed, some only with argument
 * conditions, some only with a capability in the bounding set), and
 * profiles in Docker's own format, as `docker run --security-opt
 * seccomp=<file>` sends them (the CLI reads the file and puts its text in
 * HostConfig.SecurityOpt as "seccomp=<JSON>").
 *
 * Syscall names are kept whether or not this machine's libseccomp knows
 * them, as dockerd does: the runtime skips the names it cannot resolve
 * (ocirun/seccomp.c and runc both do), and the engine needs no libseccomp. */
#pragma once

#include <jansson.h>
#include <stddef.h>

/* The linux.seccomp object of Docker's default profile for a container
 * whose bounding set is capabilities_bounding (an array of "CAP_..."
 * strings; NULL: none), for this machine's architecture and kernel (a few
 * entries depend on the kernel version). New reference; NULL only when out
 * of memory. Privileged containers and seccomp=unconfined get no profile:
 * the caller leaves linux.seccomp out. */
json_t *oci_seccomp_default(json_t *capabilities_bounding);

/* A profile in Docker's format (defaultAction, defaultErrnoRet,
 * architectures or archMap, syscalls with names or name, action, errnoRet,
 * args, includes / excludes by caps, arches and minKernel, flags,
 * listenerPath, listenerMetadata) → linux.seccomp for a container whose
 * bounding set is caps. On success *ret is a new reference, or NULL when
 * the profile has neither a defaultAction nor syscalls (Docker then runs
 * the container without seccomp). On a malformed profile: -EINVAL, *ret
 * untouched and the reason in err ("seccomp profile: syscalls[3].args[0].op
 * ..."). */
int oci_seccomp_from_docker_profile(const char *json_text, json_t *caps, json_t **ret, char *err,
                                    size_t errlen);

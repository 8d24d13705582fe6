/* The device cgroup: which device nodes a container may create (mknod),
 * read and write.
 *
 * cgroup v1 keeps a rule list in the kernel (devices.allow/devices.deny).
 * cgroup v2 has no such files: the rules become an eBPF program of type
 * BPF_PROG_TYPE_CGROUP_DEVICE attached to the container's cgroup. We
 * assemble it by hand (no libbpf), as runc and crun do, after reducing the
 * rules the way the v1 kernel would, so that both versions allow the same
 * devices. */
#pragma once

#include <linux/bpf.h>
#include <stddef.h>

#include "cgroup.h"
#include "spec.h"

/* The rules for r in the order they apply: a deny-all, then
 * linux.resources.devices, then, for a container's own config
 * (r->device_defaults), the rules runc 1.1 adds for every container
 * (mknod of any device; null, zero, full, random, urandom, tty, ptmx,
 * the ptys, tun), less those whose path linux.devices lists. */
int cgroup_devices_rules(const struct spec_resources *r, struct spec_device_rule **ret, size_t *ret_n,
                         struct berr *e);

/* "c 1:3 rwm", "a *:* rwm": a rule as devices.allow/devices.deny take it. */
void cgroup_devices_rule_string(const struct spec_device_rule *d, char *buf, size_t size);

/* The v2 program for rules (freed by the caller). */
int cgroup_devices_program(const struct spec_device_rule *rules, size_t n, struct bpf_insn **ret, size_t *ret_n,
                           struct berr *e);
/* Loads a program: returns its fd, or fails with the verifier's first
 * complaint. */
int cgroup_devices_load(const struct bpf_insn *insns, size_t n, struct berr *e);

/* Writes the rules into a v1 "devices" cgroup: deny all, then each rule. */
int cgroup_devices_apply_v1(const char *dir, const struct spec_device_rule *rules, size_t n, struct berr *e);
/* Loads the rules' program and attaches it to a v2 cgroup. */
int cgroup_devices_apply_v2(const char *dir, const struct spec_device_rule *rules, size_t n, struct berr *e);

/* The cgroup ops' entry: r's rules into h (a v1 "devices" hierarchy or
 * the v2 one); nothing when r has no device rules (update). */
int cgroup_devices_apply(const struct cgroup_hierarchy *h, const struct spec_resources *r, struct berr *e);

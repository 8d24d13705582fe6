#include "cgroup-devices.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"

#define ACC_ALL SPEC_DEV_ACC_ALL

/* runc 1.1's specconv.AllowedDevices, in its order. Appended after the
 * spec's own rules, so a spec cannot take them away, except by listing the
 * path in linux.devices (runc lets that entry take over the default). */
static const struct {
        const char *path;
        struct spec_device_rule rule;
} default_rules[] = {
        { NULL, { true, 'c', -1, -1, SPEC_DEV_ACC_MKNOD } },
        { NULL, { true, 'b', -1, -1, SPEC_DEV_ACC_MKNOD } },
        { "/dev/null", { true, 'c', 1, 3, ACC_ALL } },
        { "/dev/random", { true, 'c', 1, 8, ACC_ALL } },
        { "/dev/full", { true, 'c', 1, 7, ACC_ALL } },
        { "/dev/tty", { true, 'c', 5, 0, ACC_ALL } },
        { "/dev/zero", { true, 'c', 1, 5, ACC_ALL } },
        { "/dev/urandom", { true, 'c', 1, 9, ACC_ALL } },
        { NULL, { true, 'c', 136, -1, ACC_ALL } }, /* the ptys in /dev/pts */
        { NULL, { true, 'c', 5, 2, ACC_ALL } },    /* /dev/ptmx */
        { NULL, { true, 'c', 10, 200, ACC_ALL } }, /* /dev/net/tun */
};

static bool listed_in_linux_devices(const struct spec_resources *r, const char *path)
{
        for (size_t i = 0; path && i < r->n_linux_devices; i++)
                if (strcmp(r->linux_devices[i].path, path) == 0)
                        return true;
        return false;
}

int cgroup_devices_rules(const struct spec_resources *r, struct spec_device_rule **ret, size_t *ret_n,
                         struct berr *e)
{
        size_t n_spec = json_array_size(r->devices), n = 0;
        _cleanup_free_ struct spec_device_rule *rules = calloc(1 + n_spec + ARRAY_SIZE(default_rules), sizeof(*rules));
        if (!rules)
                return -ENOMEM;
        rules[n++] = (struct spec_device_rule) { false, 'a', -1, -1, ACC_ALL };
        for (size_t i = 0; i < n_spec; i++) {
                int ret_get = spec_device_rule_get(r->devices, i, &rules[n], e);
                if (ret_get < 0)
                        return ret_get;
                n++;
        }
        for (size_t i = 0; r->device_defaults && i < ARRAY_SIZE(default_rules); i++)
                if (!listed_in_linux_devices(r, default_rules[i].path))
                        rules[n++] = default_rules[i].rule;
        *ret = TAKE_PTR(rules);
        *ret_n = n;
        return 0;
}

static void access_string(unsigned access, char buf[4])
{
        size_t k = 0;
        if (access & SPEC_DEV_ACC_READ)
                buf[k++] = 'r';
        if (access & SPEC_DEV_ACC_WRITE)
                buf[k++] = 'w';
        if (access & SPEC_DEV_ACC_MKNOD)
                buf[k++] = 'm';
        buf[k] = '\0';
}

void cgroup_devices_rule_string(const struct spec_device_rule *d, char *buf, size_t size)
{
        char maj[24] = "*", min[24] = "*", acc[4];
        if (d->major >= 0)
                snprintf(maj, sizeof(maj), "%lld", (long long) d->major);
        if (d->minor >= 0)
                snprintf(min, sizeof(min), "%lld", (long long) d->minor);
        access_string(d->access, acc);
        snprintf(buf, size, "%c %s:%s %s", d->type, maj, min, acc);
}

/* Each write to devices.allow or devices.deny is one rule, so the two
 * files are opened once for all of them (a start writes about fifteen). */
int cgroup_devices_apply_v1(const char *dir, const struct spec_device_rule *rules, size_t n, struct berr *e)
{
        static const char *const names[2] = { "devices.deny", "devices.allow" };
        _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        int fds[2] = { -1, -1 };
        int r = 0;

        if (dfd < 0)
                return berr_set(e, errno, "cannot open cgroup \"%s\"", dir);
        for (int k = 0; k < 2 && r >= 0; k++)
                if ((fds[k] = openat(dfd, names[k], O_WRONLY | O_CLOEXEC)) < 0)
                        r = berr_set(e, errno, "cannot open cgroup file \"%s/%s\"", dir, names[k]);
        for (size_t i = 0; r >= 0 && i <= n; i++) {
                char buf[64] = "a";
                int k = i == 0 ? 0 : rules[i - 1].allow; /* deny everything first */
                if (i > 0)
                        cgroup_devices_rule_string(&rules[i - 1], buf, sizeof(buf));
                size_t len = strlen(buf);
                if (write(fds[k], buf, len) != (ssize_t) len)
                        r = berr_set(e, errno, "cannot write \"%s\" to \"%s/%s\"", buf, dir, names[k]);
        }
        for (int k = 0; k < 2; k++)
                if (fds[k] >= 0)
                        close(fds[k]);
        return r;
}

/* The rules reduced as the v1 kernel applies them: a default (allow or
 * deny everything) and exceptions to it. A rule for all devices sets the
 * default and drops the exceptions; a rule against the default adds an
 * exception (or widens the one for the same devices); a rule agreeing
 * with it narrows the exception for exactly those devices. */
struct reduced {
        bool default_allow;
        struct spec_device_rule *exc;
        size_t n;
};

static void reduce(const struct spec_device_rule *rules, size_t n, struct reduced *out)
{
        out->default_allow = false;
        out->n = 0;
        for (size_t i = 0; i < n; i++) {
                const struct spec_device_rule *d = &rules[i];
                if (d->type == 'a') {
                        out->default_allow = d->allow;
                        out->n = 0;
                        continue;
                }
                struct spec_device_rule *same = NULL;
                for (size_t k = 0; k < out->n && !same; k++)
                        if (out->exc[k].type == d->type && out->exc[k].major == d->major &&
                            out->exc[k].minor == d->minor)
                                same = &out->exc[k];
                if (d->allow != out->default_allow) {
                        if (same)
                                same->access |= d->access;
                        else
                                out->exc[out->n++] = *d;
                } else if (same) {
                        same->access &= ~d->access;
                        if (!same->access)
                                *same = out->exc[--out->n];
                }
        }
}

/* Instruction encoders. Registers: r1 the context, then scratch; r2 the
 * device type, r3 the requested access, r4 the major, r5 the minor. */
static struct bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
        return (struct bpf_insn) { .code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm };
}

#define LDX_W(dst, src, off) insn(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
#define ALU32_IMM(op, dst, imm) insn(BPF_ALU | (op) | BPF_K, dst, 0, 0, imm)
#define MOV32_REG(dst, src) insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
#define JMP_IMM(op, dst, imm, off) insn(BPF_JMP | (op) | BPF_K, dst, 0, off, imm)
#define JMP_REG(op, dst, src, off) insn(BPF_JMP | (op) | BPF_X, dst, src, off, 0)
#define EXIT() insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* Emits the test of one exception; every check jumps past the block when
 * the device does not match. */
static size_t emit_exception(struct bpf_insn *p, const struct spec_device_rule *d)
{
        struct bpf_insn block[8];
        size_t n = 0;
        /* jump offsets are patched once the block's length is known */
        block[n++] = JMP_IMM(BPF_JNE, BPF_REG_2, d->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK, 0);
        if (d->access != ACC_ALL) {
                block[n++] = MOV32_REG(BPF_REG_1, BPF_REG_3);
                block[n++] = ALU32_IMM(BPF_AND, BPF_REG_1, (int32_t) d->access);
                /* An allowing exception must grant all that is asked; a
                 * denying one refuses as soon as it covers any of it. */
                if (d->allow)
                        block[n++] = JMP_REG(BPF_JNE, BPF_REG_1, BPF_REG_3, 0);
                else
                        block[n++] = JMP_IMM(BPF_JEQ, BPF_REG_1, 0, 0);
        }
        if (d->major >= 0)
                block[n++] = JMP_IMM(BPF_JNE, BPF_REG_4, (int32_t) d->major, 0);
        if (d->minor >= 0)
                block[n++] = JMP_IMM(BPF_JNE, BPF_REG_5, (int32_t) d->minor, 0);
        block[n++] = ALU32_IMM(BPF_MOV, BPF_REG_0, d->allow ? 1 : 0);
        block[n++] = EXIT();
        for (size_t i = 0; i < n; i++) {
                if (BPF_CLASS(block[i].code) == BPF_JMP && BPF_OP(block[i].code) != BPF_EXIT)
                        block[i].off = (int16_t) (n - (i + 1));
                p[i] = block[i];
        }
        return n;
}

int cgroup_devices_program(const struct spec_device_rule *rules, size_t n, struct bpf_insn **ret, size_t *ret_n,
                           struct berr *e)
{
        struct reduced red = { .exc = calloc(n + 1, sizeof(*red.exc)) };
        _cleanup_free_ struct spec_device_rule *exc_owner = red.exc;
        if (!red.exc)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (rules[i].type != 'a' && (rules[i].major > INT32_MAX || rules[i].minor > INT32_MAX))
                        return berr_setx(e, EINVAL, "device rule %c %lld:%lld: the device number is too large",
                                         rules[i].type, (long long) rules[i].major, (long long) rules[i].minor);
        }
        reduce(rules, n, &red);

        /* prologue 6, at most 8 per exception, epilogue 2 */
        _cleanup_free_ struct bpf_insn *prog = calloc(6 + 8 * red.n + 2, sizeof(*prog));
        size_t k = 0;
        if (!prog)
                return -ENOMEM;
        /* struct bpf_cgroup_dev_ctx { u32 access_type (access << 16 | type); u32 major; u32 minor; } */
        prog[k++] = LDX_W(BPF_REG_2, BPF_REG_1, 0);
        prog[k++] = ALU32_IMM(BPF_AND, BPF_REG_2, 0xffff);
        prog[k++] = LDX_W(BPF_REG_3, BPF_REG_1, 0);
        prog[k++] = ALU32_IMM(BPF_RSH, BPF_REG_3, 16);
        prog[k++] = LDX_W(BPF_REG_4, BPF_REG_1, 4);
        prog[k++] = LDX_W(BPF_REG_5, BPF_REG_1, 8);
        /* All exceptions give the same answer, so their order does not matter. */
        for (size_t i = 0; i < red.n; i++) {
                red.exc[i].allow = !red.default_allow;
                k += emit_exception(prog + k, &red.exc[i]);
        }
        prog[k++] = ALU32_IMM(BPF_MOV, BPF_REG_0, red.default_allow ? 1 : 0);
        prog[k++] = EXIT();
        *ret = TAKE_PTR(prog);
        *ret_n = k;
        return 0;
}

static int sys_bpf(int cmd, union bpf_attr *attr)
{
        long r = syscall(SYS_bpf, cmd, attr, sizeof(*attr));
        return r < 0 ? -errno : (int) r;
}

int cgroup_devices_load(const struct bpf_insn *insns, size_t n, struct berr *e)
{
        static const char license[] = "Apache-2.0";
        union bpf_attr attr = {
                .prog_type = BPF_PROG_TYPE_CGROUP_DEVICE,
                .insns = (uint64_t) (uintptr_t) insns,
                .insn_cnt = (uint32_t) n,
                .license = (uint64_t) (uintptr_t) license,
        };
        int fd = sys_bpf(BPF_PROG_LOAD, &attr);
        if (fd >= 0 || (fd != -EINVAL && fd != -EACCES))
                return fd >= 0 ? fd : berr_set(e, fd, "the kernel refused to load the device cgroup eBPF program");

        /* Rejected by the verifier: load again for its reason. */
        _cleanup_free_ char *log = calloc(1, 65536);
        if (log) {
                attr.log_buf = (uint64_t) (uintptr_t) log;
                attr.log_size = 65536;
                attr.log_level = 1;
                int fd2 = sys_bpf(BPF_PROG_LOAD, &attr);
                if (fd2 >= 0)
                        return fd2;
                log_debug("device cgroup program rejected by the verifier:\n%s", log);
                /* the last non-empty line says why */
                char *end = log + strlen(log);
                while (end > log && end[-1] == '\n')
                        *--end = '\0';
                char *last = strrchr(log, '\n');
                if (*log)
                        return berr_setx(e, -fd, "the kernel refused the device cgroup eBPF program: %s",
                                         last ? last + 1 : log);
        }
        return berr_set(e, fd, "the kernel refused the device cgroup eBPF program");
}

int cgroup_devices_apply_v2(const char *dir, const struct spec_device_rule *rules, size_t n, struct berr *e)
{
        _cleanup_free_ struct bpf_insn *prog = NULL;
        size_t len = 0;
        int r = cgroup_devices_program(rules, n, &prog, &len, e);
        if (r < 0)
                return r;
        _cleanup_close_ int pfd = cgroup_devices_load(prog, len, e);
        if (pfd < 0)
                return pfd;
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return berr_set(e, errno, "cannot open cgroup \"%s\"", dir);
        /* The cgroup keeps its own reference: the fds can go. ALLOW_MULTI
         * leaves the programs of parent cgroups (systemd's) in force. */
        union bpf_attr attr = {
                .target_fd = (uint32_t) dfd,
                .attach_bpf_fd = (uint32_t) pfd,
                .attach_type = BPF_CGROUP_DEVICE,
                .attach_flags = BPF_F_ALLOW_MULTI,
        };
        r = sys_bpf(BPF_PROG_ATTACH, &attr);
        if (r < 0)
                return berr_set(e, r, "cannot attach the device cgroup eBPF program to \"%s\"", dir);
        return 0;
}

int cgroup_devices_apply(const struct cgroup_hierarchy *h, const struct spec_resources *r, struct berr *e)
{
        _cleanup_free_ struct spec_device_rule *rules = NULL;
        size_t n = 0;
        if (!r->devices && !r->device_defaults)
                return 0;
        int ret = cgroup_devices_rules(r, &rules, &n, e);
        if (ret < 0)
                return ret;
        return h->v2 ? cgroup_devices_apply_v2(h->dir, rules, n, e) : cgroup_devices_apply_v1(h->dir, rules, n, e);
}

/* Unit tests for the resources part of ocirun/spec (devices, blockIO,
 * hugepageLimits, unified, realtime cpu, memory flags) and for
 * ocirun/cgroup-devices: the rule list every container gets, the v1 rule
 * strings, and the v2 eBPF program, which is run here through a small
 * interpreter of the instructions it uses, loaded into the kernel when we
 * may, and attached to a real cgroup v2 directory when there is one. */
#include "unit-helpers.h"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "cgroup-devices.h"
#include "cleanup.h"
#include "spec.h"

static json_t *parse_json(const char *text)
{
        json_error_t jerr;
        json_t *j = json_loads(text, 0, &jerr);
        if (!j)
                fail_msg("bad test JSON: %s: %s", jerr.text, text);
        return j;
}

/* Parses text as linux.resources; keeps the document alive in *doc. */
static int parse_res(const char *text, json_t **doc, struct spec_resources *r, struct berr *e)
{
        *doc = parse_json(text);
        *r = (struct spec_resources) { 0 };
        return spec_resources_parse(*doc, r, e);
}

static void expect_parse_error(const char *text, const char *needle)
{
        json_t *doc = NULL;
        struct spec_resources r;
        struct berr e = { 0 };
        int ret = parse_res(text, &doc, &r, &e);
        if (ret >= 0)
                fail_msg("parsed, expected an error with \"%s\": %s", needle, text);
        if (!strstr(e.msg, needle))
                fail_msg("error \"%s\" lacks \"%s\"", e.msg, needle);
        json_decref(doc);
}

/* ---- parsing ------------------------------------------------------------ */

static void test_parse_devices(void **state)
{
        (void) state;
        json_t *doc = NULL;
        struct spec_resources r;
        struct berr e = { 0 };
        assert_int_equal(parse_res("{\"devices\": ["
                                   "{\"allow\": false, \"access\": \"rwm\"},"
                                   "{\"allow\": true, \"type\": \"c\", \"major\": 1, \"minor\": 3, \"access\": \"rw\"},"
                                   "{\"allow\": true, \"type\": \"b\", \"major\": 8, \"minor\": -1, \"access\": \"m\"},"
                                   "{\"allow\": true, \"type\": \"c\", \"major\": null, \"access\": \"r\"}]}",
                                   &doc, &r, &e),
                         0);
        assert_int_equal(json_array_size(r.devices), 4);
        assert_false(r.device_defaults);
        struct spec_device_rule d;
        assert_int_equal(spec_device_rule_get(r.devices, 0, &d, &e), 0);
        assert_false(d.allow);
        assert_int_equal(d.type, 'a');
        assert_int_equal(d.major, -1);
        assert_int_equal(d.minor, -1);
        assert_int_equal(d.access, SPEC_DEV_ACC_ALL);
        assert_int_equal(spec_device_rule_get(r.devices, 1, &d, &e), 0);
        assert_true(d.allow);
        assert_int_equal(d.type, 'c');
        assert_int_equal(d.major, 1);
        assert_int_equal(d.minor, 3);
        assert_int_equal(d.access, SPEC_DEV_ACC_READ | SPEC_DEV_ACC_WRITE);
        assert_int_equal(spec_device_rule_get(r.devices, 2, &d, &e), 0);
        assert_int_equal(d.type, 'b');
        assert_int_equal(d.minor, -1);
        assert_int_equal(d.access, SPEC_DEV_ACC_MKNOD);
        assert_int_equal(spec_device_rule_get(r.devices, 3, &d, &e), 0);
        assert_int_equal(d.major, -1);
        assert_int_equal(d.minor, -1);
        json_decref(doc);

        expect_parse_error("{\"devices\": [{\"allow\": true, \"access\": \"\"}]}", "devices[0].access must not be empty");
        expect_parse_error("{\"devices\": [{\"allow\": true}]}", "access must not be empty");
        expect_parse_error("{\"devices\": [{\"allow\": true, \"access\": \"rx\"}]}", "may only hold r, w and m");
        expect_parse_error("{\"devices\": [{\"allow\": true, \"type\": \"u\", \"access\": \"r\"}]}",
                           "is not one of a, c, b");
        expect_parse_error("{\"devices\": [{\"access\": \"r\"}]}", "allow is required");
        expect_parse_error("{\"devices\": [{\"allow\": true, \"major\": -2, \"access\": \"r\"}]}",
                           "major -2 is not a device number");
        expect_parse_error("{\"devices\": [1]}", "devices[0] must be an object");
        expect_parse_error("{\"devices\": {}}", "devices");
}

static void test_parse_blkio(void **state)
{
        (void) state;
        json_t *doc = NULL;
        struct spec_resources r;
        struct berr e = { 0 };
        assert_int_equal(parse_res("{\"blockIO\": {\"weight\": 300, \"leafWeight\": 20,"
                                   " \"weightDevice\": [{\"major\": 8, \"minor\": 0, \"weight\": 500}],"
                                   " \"throttleReadBpsDevice\": [{\"major\": 8, \"minor\": 0, \"rate\": 1048576}],"
                                   " \"throttleWriteIOPSDevice\": [{\"major\": 253, \"minor\": 1, \"rate\": 0}]}}",
                                   &doc, &r, &e),
                         0);
        assert_int_equal(r.blkio_weight, 300);
        assert_int_equal(r.blkio_leaf_weight, 20);
        struct spec_blkio_device d;
        assert_int_equal(spec_blkio_device_get(r.blkio_weight_device, 0, &d, &e), 0);
        assert_int_equal(d.major, 8);
        assert_int_equal(d.weight, 500);
        assert_int_equal(d.leaf_weight, 0);
        assert_int_equal(spec_blkio_device_get(r.blkio_throttle[SPEC_THROTTLE_READ_BPS], 0, &d, &e), 0);
        assert_int_equal(d.rate, 1048576);
        assert_null(r.blkio_throttle[SPEC_THROTTLE_WRITE_BPS]);
        assert_int_equal(json_array_size(r.blkio_throttle[SPEC_THROTTLE_WRITE_IOPS]), 1);
        assert_string_equal(spec_throttle_name(SPEC_THROTTLE_READ_IOPS), "throttleReadIOPSDevice");
        json_decref(doc);

        expect_parse_error("{\"blockIO\": {\"weight\": 5}}", "blockIO.weight 5 is outside 10..1000");
        expect_parse_error("{\"blockIO\": {\"weight\": 1001}}", "outside 10..1000");
        expect_parse_error("{\"blockIO\": {\"throttleReadBpsDevice\": [{\"major\": 8, \"minor\": 0}]}}",
                           "throttleReadBpsDevice[0] needs a rate");
        expect_parse_error("{\"blockIO\": {\"throttleWriteBpsDevice\": [{\"major\": 8, \"rate\": 1}]}}",
                           "throttleWriteBpsDevice[0] needs a major and a minor");
        expect_parse_error("{\"blockIO\": {\"weightDevice\": [{\"major\": 8, \"minor\": 0, \"weight\": 2}]}}",
                           "weightDevice[0].weight 2 is outside");
        expect_parse_error("{\"blockIO\": {\"throttleReadIOPSDevice\": [{\"major\": 8, \"minor\": 0, \"rate\": -1}]}}",
                           "rate must not be negative");
}

static void test_parse_hugetlb_unified_cpu_memory(void **state)
{
        (void) state;
        json_t *doc = NULL;
        struct spec_resources r;
        struct berr e = { 0 };
        assert_int_equal(parse_res("{\"hugepageLimits\": [{\"pageSize\": \"2MB\", \"limit\": 4194304},"
                                   "                     {\"pageSize\": \"1GB\", \"limit\": 0}],"
                                   " \"unified\": {\"memory.high\": \"50M\", \"io.weight\": \"default 100\"},"
                                   " \"cpu\": {\"realtimeRuntime\": 950000, \"realtimePeriod\": 1000000},"
                                   " \"memory\": {\"kernel\": 1, \"swappiness\": 10, \"disableOOMKiller\": true,"
                                   "              \"useHierarchy\": true}}",
                                   &doc, &r, &e),
                         0);
        struct spec_hugepage_limit l;
        assert_int_equal(spec_hugepage_limit_get(r.hugepage_limits, 0, &l, &e), 0);
        assert_string_equal(l.page_size, "2MB");
        assert_int_equal(l.limit, 4194304);
        assert_int_equal(spec_hugepage_limit_get(r.hugepage_limits, 1, &l, &e), 0);
        assert_string_equal(l.page_size, "1GB");
        assert_int_equal(json_object_size(r.unified), 2);
        assert_true(r.has_cpu_rt_runtime && r.has_cpu_rt_period);
        assert_int_equal(r.cpu_rt_runtime, 950000);
        assert_int_equal(r.cpu_rt_period, 1000000);
        assert_true(r.has_mem_kernel);
        assert_true(r.has_mem_swappiness);
        assert_int_equal(r.mem_swappiness, 10);
        assert_true(r.has_mem_disable_oom_killer && r.mem_disable_oom_killer);
        json_decref(doc);

        assert_int_equal(parse_res("{\"memory\": {\"kernelTCP\": 5, \"disableOOMKiller\": false}}", &doc, &r, &e), 0);
        assert_true(r.has_mem_kernel);
        assert_true(r.has_mem_disable_oom_killer);
        assert_false(r.mem_disable_oom_killer);
        json_decref(doc);

        expect_parse_error("{\"hugepageLimits\": [{\"pageSize\": \"2M\", \"limit\": 1}]}", "pageSize must be a size");
        expect_parse_error("{\"hugepageLimits\": [{\"pageSize\": \"MB\", \"limit\": 1}]}", "pageSize must be a size");
        expect_parse_error("{\"hugepageLimits\": [{\"pageSize\": \"2MB\"}]}", "limit is required");
        expect_parse_error("{\"unified\": {\"memory.high\": 5}}", "unified[\"memory.high\"] must be a string");
        expect_parse_error("{\"unified\": {\"../memory.high\": \"5\"}}", "is not a cgroup file name");
        expect_parse_error("{\"unified\": {\"memory\": \"5\"}}", "is not a cgroup file name");
        expect_parse_error("{\"unified\": []}", "unified");
        expect_parse_error("{\"cpu\": {\"realtimePeriod\": -1}}", "realtimePeriod must not be negative");
        expect_parse_error("{\"memory\": {\"disableOOMKiller\": 1}}", "disableOOMKiller");
}

/* A config's own resources get the defaults; linux.devices paths take
 * theirs away. */
static void test_spec_sets_defaults(void **state)
{
        (void) state;
        json_t *doc = parse_json("{\"ociVersion\": \"1.0.2\", \"process\": {\"args\": [\"sh\"], \"cwd\": \"/\"},"
                                 " \"root\": {\"path\": \"rootfs\"},"
                                 " \"linux\": {\"namespaces\": [{\"type\": \"mount\"}],"
                                 "  \"devices\": [{\"path\": \"/dev/zero\", \"type\": \"c\", \"major\": 1, \"minor\": 5}]}}");
        struct spec *s = NULL;
        struct berr e = { 0 };
        assert_int_equal(spec_parse(doc, &s, &e), 0);
        json_decref(doc);
        assert_true(s->resources.device_defaults);
        assert_null(s->resources.devices);
        assert_int_equal(s->resources.n_linux_devices, 1);

        struct spec_device_rule *rules = NULL;
        size_t n = 0;
        assert_int_equal(cgroup_devices_rules(&s->resources, &rules, &n, &e), 0);
        /* deny-all, then the 11 defaults less /dev/zero's */
        assert_int_equal(n, 11);
        for (size_t i = 0; i < n; i++)
                assert_false(rules[i].type == 'c' && rules[i].major == 1 && rules[i].minor == 5);
        free(rules);
        spec_free(s);
}

static void rules_string(const struct spec_device_rule *rules, size_t n, char *out, size_t size)
{
        out[0] = '\0';
        for (size_t i = 0; i < n; i++) {
                char buf[64];
                cgroup_devices_rule_string(&rules[i], buf, sizeof(buf));
                snprintf(out + strlen(out), size - strlen(out), "%s%s %s", i ? "; " : "", rules[i].allow ? "allow" : "deny",
                         buf);
        }
}

static void test_rules_order_and_strings(void **state)
{
        (void) state;
        json_t *doc = NULL;
        struct spec_resources r;
        struct berr e = { 0 };
        assert_int_equal(parse_res("{\"devices\": [{\"allow\": false, \"access\": \"rwm\"},"
                                   " {\"allow\": true, \"type\": \"c\", \"major\": 10, \"minor\": 229, \"access\": \"mwr\"}]}",
                                   &doc, &r, &e),
                         0);
        struct spec_device_rule *rules = NULL;
        size_t n = 0;
        char buf[1024];

        /* update: the spec's rules only (after the deny-all) */
        assert_int_equal(cgroup_devices_rules(&r, &rules, &n, &e), 0);
        rules_string(rules, n, buf, sizeof(buf));
        assert_string_equal(buf, "deny a *:* rwm; deny a *:* rwm; allow c 10:229 rwm");
        free(rules);

        /* a container: then runc 1.1's defaults, in its order */
        r.device_defaults = true;
        assert_int_equal(cgroup_devices_rules(&r, &rules, &n, &e), 0);
        rules_string(rules, n, buf, sizeof(buf));
        assert_string_equal(buf, "deny a *:* rwm; deny a *:* rwm; allow c 10:229 rwm; "
                                 "allow c *:* m; allow b *:* m; allow c 1:3 rwm; allow c 1:8 rwm; allow c 1:7 rwm; "
                                 "allow c 5:0 rwm; allow c 1:5 rwm; allow c 1:9 rwm; allow c 136:* rwm; "
                                 "allow c 5:2 rwm; allow c 10:200 rwm");
        free(rules);
        json_decref(doc);
}

/* ---- the v2 program ------------------------------------------------------- */

/* Runs prog on one device access as the kernel would: 1 allow, 0 deny,
 * -1 for an instruction this interpreter (and the generator) does not use. */
static int interpret(const struct bpf_insn *prog, size_t n, char type, unsigned access, uint32_t major, uint32_t minor)
{
        uint32_t ctx[3] = { (access << 16) | (type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK), major, minor };
        uint64_t reg[11] = { 0 };
        size_t pc = 0;
        bool ctx_in_r1 = true;

        for (size_t steps = 0; pc < n && steps < 100000; steps++) {
                const struct bpf_insn *i = &prog[pc++];
                uint64_t src = BPF_SRC(i->code) == BPF_X ? reg[i->src_reg] : (uint64_t) (int64_t) i->imm;
                switch (BPF_CLASS(i->code)) {
                case BPF_LDX:
                        if (i->code != (BPF_LDX | BPF_MEM | BPF_W) || i->src_reg != 1 || !ctx_in_r1 || i->off % 4 ||
                            i->off < 0 || i->off > 8)
                                return -1;
                        reg[i->dst_reg] = ctx[i->off / 4];
                        break;
                case BPF_ALU: {
                        uint32_t d = (uint32_t) reg[i->dst_reg], s = (uint32_t) src;
                        switch (BPF_OP(i->code)) {
                        case BPF_MOV: d = s; break;
                        case BPF_AND: d &= s; break;
                        case BPF_RSH: d >>= s; break;
                        default: return -1;
                        }
                        reg[i->dst_reg] = d; /* 32-bit ops zero the upper half */
                        if (i->dst_reg == 1)
                                ctx_in_r1 = false;
                        break;
                }
                case BPF_JMP:
                        if (BPF_OP(i->code) == BPF_EXIT)
                                return (int) reg[0];
                        if (BPF_OP(i->code) == BPF_JNE) {
                                if (reg[i->dst_reg] != src)
                                        pc += (size_t) i->off;
                        } else if (BPF_OP(i->code) == BPF_JEQ) {
                                if (reg[i->dst_reg] == src)
                                        pc += (size_t) i->off;
                        } else
                                return -1;
                        break;
                default:
                        return -1;
                }
        }
        return -1;
}

struct probe {
        char type;
        unsigned access;
        uint32_t major, minor;
        int want;
};

#define R SPEC_DEV_ACC_READ
#define W SPEC_DEV_ACC_WRITE
#define M SPEC_DEV_ACC_MKNOD

static void check_program(const struct spec_device_rule *rules, size_t n, const struct probe *probes, size_t np)
{
        struct bpf_insn *prog = NULL;
        size_t len = 0;
        struct berr e = { 0 };
        assert_int_equal(cgroup_devices_program(rules, n, &prog, &len, &e), 0);
        assert_true(len >= 8);
        assert_int_equal(prog[len - 1].code, BPF_JMP | BPF_EXIT);
        for (size_t i = 0; i < np; i++) {
                int got = interpret(prog, len, probes[i].type, probes[i].access, probes[i].major, probes[i].minor);
                if (got != probes[i].want)
                        fail_msg("probe %zu (%c %u:%u access %u): got %d, want %d", i, probes[i].type, probes[i].major,
                                 probes[i].minor, probes[i].access, got, probes[i].want);
        }
        free(prog);
}

static void test_program_defaults(void **state)
{
        (void) state;
        struct spec_resources r = { .device_defaults = true };
        struct spec_device_rule *rules = NULL;
        size_t n = 0;
        struct berr e = { 0 };
        assert_int_equal(cgroup_devices_rules(&r, &rules, &n, &e), 0);
        const struct probe probes[] = {
                { 'c', R | W, 1, 3, 1 },   /* null */
                { 'c', R, 1, 5, 1 },       /* zero */
                { 'c', R | W | M, 1, 9, 1 }, /* urandom */
                { 'c', R, 136, 7, 1 },     /* a pts */
                { 'c', R | W, 5, 2, 1 },   /* ptmx */
                { 'c', R | W, 10, 200, 1 }, /* tun */
                { 'c', M, 8, 1, 1 },       /* mknod of anything */
                { 'b', M, 8, 0, 1 },
                { 'b', R, 8, 0, 0 },       /* but no I/O on it */
                { 'c', R, 1, 1, 0 },       /* /dev/mem */
                { 'c', R | M, 4, 1, 0 },   /* access beyond m */
                { 'c', R, 10, 229, 0 },    /* fuse */
        };
        check_program(rules, n, probes, ARRAY_SIZE(probes));
        free(rules);
}

static void test_program_semantics(void **state)
{
        (void) state;
        /* later narrowing of an exact rule, widening, wildcards */
        const struct spec_device_rule a[] = {
                { false, 'a', -1, -1, SPEC_DEV_ACC_ALL },
                { true, 'c', 1, 3, R },
                { true, 'c', 1, 3, W },           /* widens to rw */
                { true, 'c', 1, 5, R | W | M },
                { false, 'c', 1, 5, W },          /* narrows to rm */
                { true, 'b', 7, -1, R },
                { false, 'c', 1, -1, R },         /* no exact match: nothing */
                { true, 'c', 4, 1, R },
                { false, 'c', 4, 1, R },          /* removes it */
        };
        const struct probe pa[] = {
                { 'c', R | W, 1, 3, 1 }, { 'c', M, 1, 3, 0 },     { 'c', R | M, 1, 5, 1 }, { 'c', W, 1, 5, 0 },
                { 'b', R, 7, 0, 1 },     { 'b', R, 7, 99, 1 },    { 'b', W, 7, 0, 0 },     { 'c', R, 7, 0, 0 },
                { 'c', R, 4, 1, 0 },     { 'c', R, 1, 4, 0 },
        };
        check_program(a, ARRAY_SIZE(a), pa, ARRAY_SIZE(pa));

        /* allow everything, then deny some: denials match on any overlap */
        const struct spec_device_rule b[] = {
                { false, 'a', -1, -1, SPEC_DEV_ACC_ALL },
                { true, 'c', 1, 3, R },
                { true, 'a', -1, -1, SPEC_DEV_ACC_ALL }, /* drops the exception */
                { false, 'c', 10, 229, W },
                { false, 'b', -1, -1, M },
        };
        const struct probe pb[] = {
                { 'c', R, 10, 229, 1 }, { 'c', R | W, 10, 229, 0 }, { 'c', W, 10, 229, 0 },
                { 'b', R | W, 8, 0, 1 }, { 'b', M, 8, 0, 0 },        { 'c', R | W | M, 1, 1, 1 },
        };
        check_program(b, ARRAY_SIZE(b), pb, ARRAY_SIZE(pb));

        /* nothing at all: deny everything */
        const struct spec_device_rule c[] = { { false, 'a', -1, -1, SPEC_DEV_ACC_ALL } };
        const struct probe pc[] = { { 'c', R, 1, 3, 0 }, { 'b', M, 8, 0, 0 } };
        check_program(c, ARRAY_SIZE(c), pc, ARRAY_SIZE(pc));

        /* a too large device number is an error, not a wrong program */
        const struct spec_device_rule big[] = { { true, 'c', 1, 3000000000LL, R } };
        struct bpf_insn *prog = NULL;
        size_t len = 0;
        struct berr e = { 0 };
        assert_int_equal(cgroup_devices_program(big, 1, &prog, &len, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "too large"));
        assert_null(prog);
}

static void test_program_instructions(void **state)
{
        (void) state;
        const struct spec_device_rule rules[] = {
                { false, 'a', -1, -1, SPEC_DEV_ACC_ALL },
                { true, 'c', 1, 3, R | W },
        };
        struct bpf_insn *p = NULL;
        size_t n = 0;
        struct berr e = { 0 };
        assert_int_equal(cgroup_devices_program(rules, 2, &p, &n, &e), 0);
        /* prologue 6; type, access (3), major, minor, r0=1, exit; r0=0, exit */
        assert_int_equal(n, 6 + 8 + 2);
        assert_int_equal(p[0].code, BPF_LDX | BPF_MEM | BPF_W);
        assert_int_equal(p[1].imm, 0xffff);
        assert_int_equal(p[3].code, BPF_ALU | BPF_RSH | BPF_K);
        assert_int_equal(p[3].imm, 16);
        assert_int_equal(p[4].off, 4);
        assert_int_equal(p[5].off, 8);
        assert_int_equal(p[6].code, BPF_JMP | BPF_JNE | BPF_K);
        assert_int_equal(p[6].imm, BPF_DEVCG_DEV_CHAR);
        assert_int_equal(p[6].off, 7); /* to the final r0=0 */
        assert_int_equal(p[9].code, BPF_JMP | BPF_JNE | BPF_X);
        assert_int_equal(p[10].imm, 1);
        assert_int_equal(p[10].off, 3);
        assert_int_equal(p[11].imm, 3);
        assert_int_equal(p[11].off, 2);
        assert_int_equal(p[12].imm, 1);
        assert_int_equal(p[14].code, BPF_ALU | BPF_MOV | BPF_K);
        assert_int_equal(p[14].imm, 0);
        free(p);
}

/* The verifier accepts what we generate (skipped without CAP_BPF/CAP_SYS_ADMIN). */
static void test_program_loads(void **state)
{
        (void) state;
        struct spec_resources r = { .device_defaults = true };
        struct spec_device_rule *rules = NULL;
        size_t n = 0;
        struct berr e = { 0 };
        assert_int_equal(cgroup_devices_rules(&r, &rules, &n, &e), 0);
        struct bpf_insn *prog = NULL;
        size_t len = 0;
        assert_int_equal(cgroup_devices_program(rules, n, &prog, &len, &e), 0);
        int fd = cgroup_devices_load(prog, len, &e);
        if (fd == -EPERM || fd == -ENOSYS) {
                free(prog);
                free(rules);
                skip();
        }
        if (fd < 0)
                fail_msg("load failed: %s", e.msg);
        close(fd);

        /* a broken program is refused with the verifier's reason */
        struct bpf_insn bad[] = { prog[0], prog[len - 1] }; /* exits with r0 unset */
        fd = cgroup_devices_load(bad, 2, &e);
        assert_true(fd < 0);
        assert_non_null(strstr(e.msg, "refused"));
        free(prog);
        free(rules);
}

/* ---- attached to a real cgroup v2 directory ---------------------------- */

static char *cgroup2_mount(void)
{
        FILE *f = fopen("/proc/self/mountinfo", "re");
        char *line = NULL, *found = NULL;
        size_t cap = 0;
        while (f && !found && getline(&line, &cap, f) > 0) {
                char mnt[4096], fstype[64];
                char *sep = strstr(line, " - ");
                if (sep && sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 && sscanf(sep + 3, "%63s", fstype) == 1 &&
                    strcmp(fstype, "cgroup2") == 0)
                        found = strdup(mnt);
        }
        free(line);
        if (f)
                fclose(f);
        return found;
}

/* In the child: what each access gives, as a bitmask of failures. */
static int child_probe(const char *dir, const char *tmp)
{
        char path[4200], pid[32];
        snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
        snprintf(pid, sizeof(pid), "%d", (int) getpid());
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, pid, strlen(pid)) < 0)
                return 100;
        close(fd);
        int bad = 0;
        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                bad |= 1; /* allowed: must open */
        else
                close(fd);
        fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
        if (fd >= 0 || errno != EPERM)
                bad |= 2; /* not allowed */
        if (fd >= 0)
                close(fd);
        snprintf(path, sizeof(path), "%s/null2", tmp);
        if (mknod(path, S_IFCHR | 0600, makedev(1, 3)) == 0 || errno != EPERM)
                bad |= 4; /* no m */
        snprintf(path, sizeof(path), "%s/full2", tmp);
        if (mknod(path, S_IFCHR | 0600, makedev(1, 7)) != 0)
                bad |= 8; /* m only */
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0 || errno != EPERM)
                bad |= 16;
        return bad;
}

static void test_attach_v2(void **state)
{
        (void) state;
        char *mnt = cgroup2_mount();
        if (geteuid() != 0 || !mnt) {
                free(mnt);
                skip();
        }
        char *dir = NULL, *tmp = unit_mkdtemp("cgdev");
        assert_true(asprintf(&dir, "%s/berth-unit-cgdev-%d", mnt, (int) getpid()) > 0);
        free(mnt);
        if (mkdir(dir, 0755) < 0) {
                free(dir);
                unit_rm_tree(tmp);
                free(tmp);
                skip();
        }
        const struct spec_device_rule rules[] = {
                { false, 'a', -1, -1, SPEC_DEV_ACC_ALL },
                { true, 'c', 1, 3, R | W },
                { true, 'c', 1, 7, M },
        };
        struct berr e = { 0 };
        int r = cgroup_devices_apply_v2(dir, rules, ARRAY_SIZE(rules), &e);
        if (r == -EPERM || r == -EINVAL || r == -EOPNOTSUPP) {
                rmdir(dir);
                free(dir);
                unit_rm_tree(tmp);
                free(tmp);
                skip();
        }
        if (r < 0)
                fail_msg("attach: %s", e.msg);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(child_probe(dir, tmp));
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        for (int i = 0; i < 200 && rmdir(dir) < 0 && errno == EBUSY; i++)
                usleep(5000);
        free(dir);
        unit_rm_tree(tmp);
        free(tmp);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) != 0)
                fail_msg("device accesses in the cgroup went wrong: mask %d", WEXITSTATUS(status));
}

/* The v2 ops end to end on a cgroup v2 directory (the unified hierarchy
 * of a hybrid host will do: it takes device programs and cgroup.* files):
 * the default device rules hold, unified files are written, an unknown one
 * is a clear error. */
static int child_defaults(const char *dir, const char *tmp, dev_t blk)
{
        char path[4200], pid[32];
        snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
        snprintf(pid, sizeof(pid), "%d", (int) getpid());
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, pid, strlen(pid)) < 0)
                return 100;
        close(fd);
        int bad = 0;
        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                bad |= 1;
        else
                close(fd);
        snprintf(path, sizeof(path), "%s/blk", tmp);
        if (mknod(path, S_IFBLK | 0600, blk) != 0) /* b *:* m */
                bad |= 2;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0 || errno != EPERM)
                bad |= 4;
        if (fd >= 0)
                close(fd);
        return bad;
}

static dev_t some_block_device(void)
{
        DIR *d = opendir("/sys/block");
        struct dirent *de;
        dev_t found = 0;
        while (d && !found && (de = readdir(d))) {
                char path[512], buf[32];
                unsigned maj, min;
                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "/sys/block/%s/dev", de->d_name);
                FILE *f = fopen(path, "re");
                if (f && fgets(buf, sizeof(buf), f) && sscanf(buf, "%u:%u", &maj, &min) == 2)
                        found = makedev(maj, min);
                if (f)
                        fclose(f);
        }
        if (d)
                closedir(d);
        return found;
}

static void test_v2_apply_on_unified(void **state)
{
        (void) state;
        char *mnt = cgroup2_mount();
        dev_t blk = some_block_device();
        if (geteuid() != 0 || !mnt || !blk) {
                free(mnt);
                skip();
        }
        char *dir = NULL, *tmp = unit_mkdtemp("cgdev2");
        assert_true(asprintf(&dir, "%s/berth-unit-cgdev2-%d", mnt, (int) getpid()) > 0);
        if (mkdir(dir, 0755) < 0) {
                free(mnt);
                free(dir);
                unit_rm_tree(tmp);
                free(tmp);
                skip();
        }
        json_t *doc = NULL;
        struct spec_resources r;
        struct berr e = { 0 };
        assert_int_equal(parse_res("{\"unified\": {\"cgroup.max.descendants\": \"3\"}}", &doc, &r, &e), 0);
        r.device_defaults = true;
        struct cgroup_hierarchy h = { .key = (char *) "cgroup2", .mountpoint = mnt, .v2 = true, .dir = dir };
        int ret = cgroup_v2_ops.apply(&h, &r, &e);
        json_decref(doc);
        if (ret == -EPERM || ret == -EINVAL || ret == -EOPNOTSUPP) {
                rmdir(dir);
                free(mnt);
                free(dir);
                unit_rm_tree(tmp);
                free(tmp);
                skip();
        }
        if (ret < 0)
                fail_msg("apply: %s", e.msg);

        char path[4200], buf[32] = "";
        snprintf(path, sizeof(path), "%s/cgroup.max.descendants", dir);
        FILE *f = fopen(path, "re");
        assert_non_null(f);
        assert_non_null(fgets(buf, sizeof(buf), f));
        fclose(f);
        assert_string_equal(buf, "3\n");

        assert_int_equal(parse_res("{\"unified\": {\"nosuch.file\": \"1\"}}", &doc, &r, &e), 0);
        assert_int_equal(cgroup_v2_ops.apply(&h, &r, &e), -ENOENT);
        assert_non_null(strstr(e.msg, "is the nosuch controller available?"));
        json_decref(doc);

        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(child_defaults(dir, tmp, blk));
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        for (int i = 0; i < 200 && rmdir(dir) < 0 && errno == EBUSY; i++)
                usleep(5000);
        free(mnt);
        free(dir);
        unit_rm_tree(tmp);
        free(tmp);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) != 0)
                fail_msg("device accesses under the default rules went wrong: mask %d", WEXITSTATUS(status));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_devices),
                cmocka_unit_test(test_parse_blkio),
                cmocka_unit_test(test_parse_hugetlb_unified_cpu_memory),
                cmocka_unit_test(test_spec_sets_defaults),
                cmocka_unit_test(test_rules_order_and_strings),
                cmocka_unit_test(test_program_defaults),
                cmocka_unit_test(test_program_semantics),
                cmocka_unit_test(test_program_instructions),
                cmocka_unit_test(test_program_loads),
                cmocka_unit_test(test_attach_v2),
                cmocka_unit_test(test_v2_apply_on_unified),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

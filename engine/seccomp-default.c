/* Docker's seccomp profiles → linux.seccomp.
 *
 * The default profile is written below as a table in Docker's terms (names,
 * action, argument conditions, includes / excludes by capability,
 * architecture and kernel version), turned into a Docker-format profile and
 * converted by the same code as a user's profile file, so that both go
 * through one filter: what dockerd's setupSeccomp does. */
#include "seccomp-default.h"

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>

#include "cleanup.h"

/* The machine's architecture in Docker's words (Go's GOARCH, mapped as
 * moby's goToNative does): what includes/excludes "arches" name. */
#if defined(__x86_64__) && defined(__ILP32__)
#define NATIVE_ARCH "x32"
#elif defined(__x86_64__)
#define NATIVE_ARCH "amd64"
#elif defined(__i386__)
#define NATIVE_ARCH "x86"
#elif defined(__aarch64__)
#define NATIVE_ARCH "arm64"
#elif defined(__arm__)
#define NATIVE_ARCH "arm"
#elif defined(__s390x__)
#define NATIVE_ARCH "s390x"
#elif defined(__s390__)
#define NATIVE_ARCH "s390"
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NATIVE_ARCH "ppc64le"
#elif defined(__powerpc64__)
#define NATIVE_ARCH "ppc64"
#elif defined(__powerpc__)
#define NATIVE_ARCH "ppc"
#elif defined(__riscv) && __riscv_xlen == 64
#define NATIVE_ARCH "riscv64"
#elif defined(__mips__) && defined(_ABI64) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NATIVE_ARCH "mipsel64"
#elif defined(__mips__) && defined(_ABI64)
#define NATIVE_ARCH "mips64"
#elif defined(__mips__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NATIVE_ARCH "mipsel"
#else
#define NATIVE_ARCH "unknown"
#endif

/* Docker's architecture → the libseccomp architectures a filter covers on
 * it: the main one and the ABIs its kernel also runs (archMap). */
static const struct {
        const char *arch;
        const char *main;
        const char *sub[3];
} arch_map[] = {
        { "amd64", "SCMP_ARCH_X86_64", { "SCMP_ARCH_X86", "SCMP_ARCH_X32" } },
        { "x86", "SCMP_ARCH_X86", { 0 } },
        { "arm64", "SCMP_ARCH_AARCH64", { "SCMP_ARCH_ARM" } },
        { "arm", "SCMP_ARCH_ARM", { 0 } },
        { "mips64", "SCMP_ARCH_MIPS64", { "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32" } },
        { "mipsel64", "SCMP_ARCH_MIPSEL64", { "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32" } },
        { "mipsel", "SCMP_ARCH_MIPSEL", { 0 } },
        { "s390x", "SCMP_ARCH_S390X", { "SCMP_ARCH_S390" } },
        { "s390", "SCMP_ARCH_S390", { 0 } },
        { "ppc64le", "SCMP_ARCH_PPC64LE", { 0 } },
        { "ppc64", "SCMP_ARCH_PPC64", { 0 } },
        { "ppc", "SCMP_ARCH_PPC", { 0 } },
        { "riscv64", "SCMP_ARCH_RISCV64", { 0 } },
};

/* ---- Docker's default profile ---- */

/* Allowed to every container. */
static const char *const allow_always[] = {
        "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset", "chdir", "chmod",
        "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64",
        "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range",
        "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
        "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd",
        "eventfd2", "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64",
        "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown", "fchown32",
        "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
        "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64",
        "futex", "futex_time64", "futex_waitv", "futimesat", "getcpu", "getcwd", "getdents", "getdents64",
        "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
        "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
        "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage",
        "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32",
        "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel",
        "ioctl", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get",
        "ioprio_set", "io_setup", "io_submit", "io_uring_enter", "io_uring_register", "io_uring_setup", "ipc",
        "kill", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32",
        "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek",
        "lsetxattr", "lstat", "lstat64", "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore",
        "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
        "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
        "mq_timedsend_time64", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
        "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open", "openat",
        "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free",
        "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
        "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read",
        "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64",
        "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat", "renameat2", "restart_syscall",
        "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
        "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity",
        "sched_getattr", "sched_getparam", "sched_get_priority_max", "sched_get_priority_min",
        "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
        "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl",
        "semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg",
        "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32",
        "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32", "setresgid",
        "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list",
        "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr", "shmat",
        "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask",
        "sigreturn", "socketcall", "socketpair", "splice", "stat", "stat64", "statfs", "statfs64", "statx",
        "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time",
        "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
        "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
        "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink",
        "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid",
        "waitpid", "write", "writev", NULL,
};

#define NAMES(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* The namespace flags of clone(2): without CAP_SYS_ADMIN a container may
 * clone, but not into new namespaces. */
#define CLONE_NS_FLAGS \
        (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP)

struct profile_arg {
        unsigned index;
        uint64_t value, value_two;
        const char *op;
};

struct profile_entry {
        const char *const *names;
        const char *action;              /* NULL: SCMP_ACT_ALLOW */
        int errno_ret;                   /* with SCMP_ACT_ERRNO */
        const struct profile_arg *arg;   /* at most one condition in Docker's profile */
        const char *with_cap;            /* only when the bounding set has it */
        const char *without_cap;         /* only when the bounding set lacks it */
        const char *const *on_arches;    /* only on these architectures */
        const char *const *not_arches;   /* never on these */
        const char *min_kernel;          /* only from this kernel version on */
};

#define ARG(i, op_, v, v2) (&(const struct profile_arg){ .index = (i), .op = (op_), .value = (v), .value_two = (v2) })

static const struct profile_entry default_profile[] = {
        { .names = allow_always },
        /* ptrace is safe from kernel 4.8 on (it can no longer bypass seccomp) */
        { .names = NAMES("process_vm_readv", "process_vm_writev", "ptrace"), .min_kernel = "4.8" },
        /* vsock reaches the host across the network namespace */
        { .names = NAMES("socket"), .arg = ARG(0, "SCMP_CMP_NE", AF_VSOCK, 0) },
        /* personality: Linux, 32-bit addresses, no randomization, and querying */
        { .names = NAMES("personality"), .arg = ARG(0, "SCMP_CMP_EQ", 0x0, 0) },
        { .names = NAMES("personality"), .arg = ARG(0, "SCMP_CMP_EQ", 0x0008, 0) },
        { .names = NAMES("personality"), .arg = ARG(0, "SCMP_CMP_EQ", 0x20000, 0) },
        { .names = NAMES("personality"), .arg = ARG(0, "SCMP_CMP_EQ", 0x20008, 0) },
        { .names = NAMES("personality"), .arg = ARG(0, "SCMP_CMP_EQ", 0xffffffff, 0) },
        /* architecture-specific calls */
        { .names = NAMES("sync_file_range2", "swapcontext"), .on_arches = NAMES("ppc64le") },
        { .names = NAMES("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush",
                         "set_tls"),
          .on_arches = NAMES("arm", "arm64") },
        { .names = NAMES("arch_prctl"), .on_arches = NAMES("amd64", "x32") },
        { .names = NAMES("modify_ldt"), .on_arches = NAMES("amd64", "x32", "x86") },
        { .names = NAMES("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"),
          .on_arches = NAMES("s390", "s390x") },
        { .names = NAMES("riscv_flush_icache"), .on_arches = NAMES("riscv64") },
        /* by capability */
        { .names = NAMES("open_by_handle_at"), .with_cap = "CAP_DAC_READ_SEARCH" },
        { .names = NAMES("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
                         "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open",
                         "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount",
                         "umount2", "unshare"),
          .with_cap = "CAP_SYS_ADMIN" },
        /* clone without CAP_SYS_ADMIN: no new namespaces (s390 swaps the
         * first two arguments) */
        { .names = NAMES("clone"), .arg = ARG(0, "SCMP_CMP_MASKED_EQ", CLONE_NS_FLAGS, 0),
          .without_cap = "CAP_SYS_ADMIN", .not_arches = NAMES("s390", "s390x") },
        { .names = NAMES("clone"), .arg = ARG(1, "SCMP_CMP_MASKED_EQ", CLONE_NS_FLAGS, 0),
          .without_cap = "CAP_SYS_ADMIN", .on_arches = NAMES("s390", "s390x") },
        /* clone3 hides its flags in memory seccomp cannot read: ENOSYS makes
         * the C libraries fall back to clone */
        { .names = NAMES("clone3"), .action = "SCMP_ACT_ERRNO", .errno_ret = ENOSYS, .without_cap = "CAP_SYS_ADMIN" },
        { .names = NAMES("reboot"), .with_cap = "CAP_SYS_BOOT" },
        { .names = NAMES("chroot"), .with_cap = "CAP_SYS_CHROOT" },
        { .names = NAMES("delete_module", "init_module", "finit_module"), .with_cap = "CAP_SYS_MODULE" },
        { .names = NAMES("acct"), .with_cap = "CAP_SYS_PACCT" },
        { .names = NAMES("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev",
                         "ptrace"),
          .with_cap = "CAP_SYS_PTRACE" },
        { .names = NAMES("iopl", "ioperm"), .with_cap = "CAP_SYS_RAWIO" },
        { .names = NAMES("settimeofday", "stime", "clock_settime", "clock_settime64"), .with_cap = "CAP_SYS_TIME" },
        { .names = NAMES("vhangup"), .with_cap = "CAP_SYS_TTY_CONFIG" },
        { .names = NAMES("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
          .with_cap = "CAP_SYS_NICE" },
        { .names = NAMES("syslog"), .with_cap = "CAP_SYSLOG" },
        { .names = NAMES("bpf"), .with_cap = "CAP_BPF" },
        { .names = NAMES("perf_event_open"), .with_cap = "CAP_PERFMON" },
};

static json_t *strv_json(const char *const *v)
{
        json_t *a = json_array();
        for (; v && *v; v++)
                json_array_append_new(a, json_string(*v));
        return a;
}

/* {caps, arches, minKernel} of Docker's includes / excludes. */
static json_t *filter_json(const char *cap, const char *const *arches, const char *min_kernel)
{
        json_t *f = json_object();
        if (cap)
                json_object_set_new(f, "caps", json_pack("[s]", cap));
        if (arches)
                json_object_set_new(f, "arches", strv_json(arches));
        if (min_kernel)
                json_object_set_new(f, "minKernel", json_string(min_kernel));
        return f;
}

/* The table as a profile in Docker's format, for every architecture. */
static json_t *default_profile_json(void)
{
        json_t *arch_json = json_array(), *syscalls = json_array();
        for (size_t i = 0; i < ARRAY_SIZE(arch_map); i++)
                json_array_append_new(arch_json, json_pack("{s:s, s:o}", "architecture", arch_map[i].main,
                                                           "subArchitectures", strv_json(arch_map[i].sub)));
        for (size_t i = 0; i < ARRAY_SIZE(default_profile); i++) {
                const struct profile_entry *p = &default_profile[i];
                json_t *e = json_pack("{s:o, s:s}", "names", strv_json(p->names), "action",
                                      p->action ?: "SCMP_ACT_ALLOW");
                if (p->errno_ret)
                        json_object_set_new(e, "errnoRet", json_integer(p->errno_ret));
                if (p->arg)
                        json_object_set_new(e, "args",
                                            json_pack("[{s:i, s:I, s:I, s:s}]", "index", (int) p->arg->index,
                                                      "value", (json_int_t) p->arg->value, "valueTwo",
                                                      (json_int_t) p->arg->value_two, "op", p->arg->op));
                json_object_set_new(e, "includes", filter_json(p->with_cap, p->on_arches, p->min_kernel));
                json_object_set_new(e, "excludes", filter_json(p->without_cap, p->not_arches, NULL));
                json_array_append_new(syscalls, e);
        }
        return json_pack("{s:s, s:i, s:o, s:o}", "defaultAction", "SCMP_ACT_ERRNO", "defaultErrnoRet", EPERM,
                         "archMap", arch_json, "syscalls", syscalls);
}

/* ---- conversion of a Docker-format profile ---- */

static const char *const actions[] = {
        "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", NULL,
};

static const char *const operators[] = {
        "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ", NULL,
};

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t len, const char *fmt, ...)
{
        int n = snprintf(err, len, "seccomp profile: ");
        va_list ap;
        va_start(ap, fmt);
        if (n >= 0 && (size_t) n < len)
                vsnprintf(err + n, len - (size_t) n, fmt, ap);
        va_end(ap);
        return -EINVAL;
}

static bool strv_has(const char *const *v, const char *s)
{
        for (; *v; v++)
                if (!strcmp(*v, s))
                        return true;
        return false;
}

static bool json_strings_have(json_t *a, const char *s)
{
        size_t i;
        json_t *v;
        json_array_foreach(a, i, v)
                if (json_is_string(v) && !strcmp(json_string_value(v), s))
                        return true;
        return false;
}

/* A member that is absent or null counts as not set, as in Go's decoder. */
static json_t *member(json_t *o, const char *key)
{
        json_t *v = json_object_get(o, key);
        return json_is_null(v) ? NULL : v;
}

static bool is_strings(json_t *a)
{
        size_t i;
        json_t *v;
        if (!json_is_array(a))
                return false;
        json_array_foreach(a, i, v)
                if (!json_is_string(v))
                        return false;
        return true;
}

/* where.key, or key alone at the top level (where NULL) */
#define WHERE_FMT "%s%s%s"
#define WHERE_ARGS(where, key) (where) ?: "", (where) ? "." : "", (key)

/* An optional non-negative integer member; *ret_set says whether it is there. */
static int get_uint(json_t *o, const char *where, const char *key, json_int_t max, json_int_t *ret, bool *ret_set,
                    char *err, size_t errlen)
{
        json_t *v = member(o, key);
        *ret_set = v != NULL;
        if (!v)
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
                return fail(err, errlen, WHERE_FMT " must be an integer from 0 to %lld", WHERE_ARGS(where, key),
                            (long long) max);
        *ret = json_integer_value(v);
        return 0;
}

static int get_action(json_t *o, const char *where, const char *key, bool required, const char **ret, char *err,
                      size_t errlen)
{
        json_t *v = member(o, key);
        if (!v) {
                *ret = NULL;
                return required ? fail(err, errlen, WHERE_FMT " is required", WHERE_ARGS(where, key)) : 0;
        }
        if (!json_is_string(v))
                return fail(err, errlen, WHERE_FMT " must be a string", WHERE_ARGS(where, key));
        if (!strv_has(actions, json_string_value(v)))
                return fail(err, errlen, WHERE_FMT " \"%s\" is not a seccomp action", WHERE_ARGS(where, key),
                            json_string_value(v));
        *ret = json_string_value(v);
        return 0;
}

/* "major.minor[.patch][-extra]" → major, minor. */
static bool parse_kernel_version(const char *s, int *ret_major, int *ret_minor)
{
        int major, minor, n = 0;
        if (sscanf(s, "%d.%d%n", &major, &minor, &n) != 2 || major < 0 || minor < 0)
                return false;
        if (s[n] != '\0' && s[n] != '.' && s[n] != '-')
                return false;
        *ret_major = major;
        *ret_minor = minor;
        return true;
}

static int kernel_at_least(const char *version, const char *where, bool *ret, char *err, size_t errlen)
{
        int want_major, want_minor, major, minor;
        struct utsname u;
        if (!parse_kernel_version(version, &want_major, &want_minor))
                return fail(err, errlen, "%s.minKernel \"%s\" is not a kernel version (\"major.minor\")", where,
                            version);
        if (uname(&u) < 0)
                return fail(err, errlen, "%s.minKernel: uname: %s", where, strerror(errno));
        if (!parse_kernel_version(u.release, &major, &minor))
                return fail(err, errlen, "%s.minKernel: cannot read the kernel's version \"%s\"", where, u.release);
        *ret = major > want_major || (major == want_major && minor >= want_minor);
        return 0;
}

/* includes / excludes: checks the shape; *ret_matches tells whether the
 * container matches the filter, as Docker reads it: includes wants every
 * listed capability and this architecture, excludes drops the entry on any
 * listed capability or on this architecture. */
static int filter_check(json_t *f, const char *where, bool includes, json_t *caps, bool *ret_matches, char *err,
                        size_t errlen)
{
        if (!f) {
                *ret_matches = includes;
                return 0;
        }
        if (!json_is_object(f))
                return fail(err, errlen, "%s must be an object", where);
        json_t *fcaps = member(f, "caps"), *arches = member(f, "arches"), *mk = member(f, "minKernel");
        if (fcaps && !is_strings(fcaps))
                return fail(err, errlen, "%s.caps must be an array of strings", where);
        if (arches && !is_strings(arches))
                return fail(err, errlen, "%s.arches must be an array of strings", where);
        if (mk && !json_is_string(mk))
                return fail(err, errlen, "%s.minKernel must be a string", where);

        bool kernel_ok = true;
        if (mk && *json_string_value(mk)) {
                int r = kernel_at_least(json_string_value(mk), where, &kernel_ok, err, errlen);
                if (r < 0)
                        return r;
        }
        size_t i;
        json_t *v;
        if (includes) {
                bool ok = kernel_ok && (json_array_size(arches) == 0 || json_strings_have(arches, NATIVE_ARCH));
                json_array_foreach(fcaps, i, v)
                        ok = ok && json_strings_have(caps, json_string_value(v));
                *ret_matches = ok;
        } else {
                bool hit = (mk && *json_string_value(mk) && kernel_ok) || json_strings_have(arches, NATIVE_ARCH);
                json_array_foreach(fcaps, i, v)
                        hit = hit || json_strings_have(caps, json_string_value(v));
                *ret_matches = hit;
        }
        return 0;
}

static int convert_args(json_t *args, const char *where, json_t **ret, char *err, size_t errlen)
{
        if (!json_is_array(args))
                return fail(err, errlen, "%s.args must be an array", where);
        json_t *out = json_array();
        size_t i;
        json_t *a;
        json_array_foreach(args, i, a)
        {
                char awhere[96];
                json_int_t index = 0, value = 0, value2 = 0;
                bool set;
                int r;
                snprintf(awhere, sizeof(awhere), "%s.args[%zu]", where, i);
                json_t *op = member(a, "op");
                if (!json_is_object(a))
                        r = fail(err, errlen, "%s must be an object", awhere);
                else if ((r = get_uint(a, awhere, "index", 5, &index, &set, err, errlen)) < 0 ||
                         (r = get_uint(a, awhere, "value", INT64_MAX, &value, &set, err, errlen)) < 0 ||
                         (r = get_uint(a, awhere, "valueTwo", INT64_MAX, &value2, &set, err, errlen)) < 0)
                        ;
                else if (!op)
                        r = fail(err, errlen, "%s.op is required", awhere);
                else if (!json_is_string(op))
                        r = fail(err, errlen, "%s.op must be a string", awhere);
                else if (!strv_has(operators, json_string_value(op)))
                        r = fail(err, errlen, "%s.op \"%s\" is not a seccomp operator", awhere, json_string_value(op));
                if (r < 0) {
                        json_decref(out);
                        return r;
                }
                json_array_append_new(out, json_pack("{s:I, s:I, s:I, s:s}", "index", index, "value", value,
                                                     "valueTwo", value2, "op", json_string_value(op)));
        }
        *ret = out;
        return 0;
}

/* One entry of syscalls: *ret is the OCI entry, or NULL when the filters
 * leave it out for this container. */
static int convert_syscall(json_t *s, size_t idx, json_t *caps, json_t **ret, char *err, size_t errlen)
{
        char where[64], fwhere[80];
        snprintf(where, sizeof(where), "syscalls[%zu]", idx);
        if (!json_is_object(s))
                return fail(err, errlen, "%s must be an object", where);

        json_t *name = member(s, "name"), *names = member(s, "names");
        if (name && names)
                return fail(err, errlen, "%s: 'name' and 'names' were both given, use either 'name' or 'names'", where);
        if (name && (!json_is_string(name) || !*json_string_value(name)))
                return fail(err, errlen, "%s.name must be a non-empty string", where);
        if (names && (!is_strings(names) || json_array_size(names) == 0))
                return fail(err, errlen, "%s.names must be a non-empty array of strings", where);
        if (!name && !names)
                return fail(err, errlen, "%s has neither 'names' nor 'name'", where);
        size_t i;
        json_t *v;
        json_array_foreach(names, i, v)
                if (!*json_string_value(v))
                        return fail(err, errlen, "%s.names[%zu] is empty", where, i);

        const char *action;
        json_int_t errno_ret = 0;
        bool errno_set;
        int r;
        if ((r = get_action(s, where, "action", true, &action, err, errlen)) < 0 ||
            (r = get_uint(s, where, "errnoRet", 0xffff, &errno_ret, &errno_set, err, errlen)) < 0)
                return r;
        if (errno_set && strcmp(action, "SCMP_ACT_ERRNO") && strcmp(action, "SCMP_ACT_TRACE"))
                return fail(err, errlen, "%s.errnoRet cannot go with %s (only with SCMP_ACT_ERRNO or SCMP_ACT_TRACE)",
                            where, action);

        json_t *args = NULL, *a = member(s, "args");
        if (a && (r = convert_args(a, where, &args, err, errlen)) < 0)
                return r;

        bool included, excluded;
        snprintf(fwhere, sizeof(fwhere), "%s.includes", where);
        if ((r = filter_check(member(s, "includes"), fwhere, true, caps, &included, err, errlen)) < 0) {
                json_decref(args);
                return r;
        }
        snprintf(fwhere, sizeof(fwhere), "%s.excludes", where);
        if ((r = filter_check(member(s, "excludes"), fwhere, false, caps, &excluded, err, errlen)) < 0) {
                json_decref(args);
                return r;
        }
        if (!included || excluded) {
                json_decref(args);
                *ret = NULL;
                return 0;
        }

        json_t *e = json_pack("{s:o, s:s}", "names", name ? json_pack("[O]", name) : json_copy(names), "action",
                              action);
        if (errno_set)
                json_object_set_new(e, "errnoRet", json_integer(errno_ret));
        if (json_array_size(args))
                json_object_set_new(e, "args", args);
        else
                json_decref(args);
        *ret = e;
        return 0;
}

static int convert_architectures(json_t *profile, json_t *out, char *err, size_t errlen)
{
        json_t *archs = member(profile, "architectures"), *map = member(profile, "archMap");
        if (json_array_size(archs) && json_array_size(map))
                return fail(err, errlen, "'architectures' and 'archMap' were both given, use either one");
        if (archs) {
                if (!is_strings(archs))
                        return fail(err, errlen, "architectures must be an array of strings");
                if (json_array_size(archs))
                        json_object_set(out, "architectures", archs);
                return 0;
        }
        if (!map)
                return 0;
        if (!json_is_array(map))
                return fail(err, errlen, "archMap must be an array");

        const char *native = NULL;
        for (size_t k = 0; k < ARRAY_SIZE(arch_map); k++)
                if (!strcmp(arch_map[k].arch, NATIVE_ARCH))
                        native = arch_map[k].main;
        size_t i;
        json_t *m;
        json_array_foreach(map, i, m)
        {
                json_t *main = member(m, "architecture"), *sub = member(m, "subArchitectures");
                if (!json_is_object(m) || !json_is_string(main))
                        return fail(err, errlen, "archMap[%zu].architecture must be a string", i);
                if (sub && !is_strings(sub))
                        return fail(err, errlen, "archMap[%zu].subArchitectures must be an array of strings", i);
        }
        /* only this machine's entry counts (the first, as Docker) */
        json_array_foreach(map, i, m)
        {
                if (!native || strcmp(json_string_value(json_object_get(m, "architecture")), native))
                        continue;
                json_t *a = json_pack("[s]", native), *sub = member(m, "subArchitectures");
                if (sub)
                        json_array_extend(a, sub);
                json_object_set_new(out, "architectures", a);
                break;
        }
        return 0;
}

static int convert(json_t *profile, json_t *caps, json_t **ret, char *err, size_t errlen)
{
        if (!json_is_object(profile))
                return fail(err, errlen, "the profile must be a JSON object");
        json_t *syscalls = member(profile, "syscalls");
        if (syscalls && !json_is_array(syscalls))
                return fail(err, errlen, "syscalls must be an array");

        const char *def;
        json_int_t def_errno = 0;
        bool def_errno_set;
        int r;
        if ((r = get_action(profile, NULL, "defaultAction", false, &def, err, errlen)) < 0)
                return r;
        /* Docker: no default action and no syscalls is no seccomp at all */
        if (!def && json_array_size(syscalls) == 0) {
                *ret = NULL;
                return 0;
        }
        if (!def)
                return fail(err, errlen, "defaultAction is required when syscalls are given");
        if ((r = get_uint(profile, NULL, "defaultErrnoRet", 0xffff, &def_errno, &def_errno_set, err, errlen)) < 0)
                return r;
        if (def_errno_set && strcmp(def, "SCMP_ACT_ERRNO") && strcmp(def, "SCMP_ACT_TRACE"))
                return fail(err, errlen, "defaultErrnoRet cannot go with %s (only with SCMP_ACT_ERRNO or "
                                         "SCMP_ACT_TRACE)", def);

        json_t *out = json_pack("{s:s}", "defaultAction", def);
        if (def_errno_set)
                json_object_set_new(out, "defaultErrnoRet", json_integer(def_errno));
        if ((r = convert_architectures(profile, out, err, errlen)) < 0) {
                json_decref(out);
                return r;
        }
        static const char *const passed[] = { "flags", "listenerPath", "listenerMetadata" };
        for (size_t k = 0; k < ARRAY_SIZE(passed); k++) {
                json_t *v = member(profile, passed[k]);
                bool ok = !v || (k == 0 ? is_strings(v) : json_is_string(v));
                if (!ok) {
                        json_decref(out);
                        return fail(err, errlen, "%s must be %s", passed[k],
                                    k == 0 ? "an array of strings" : "a string");
                }
                if (v && !(k == 0 && json_array_size(v) == 0))
                        json_object_set(out, passed[k], v);
        }

        json_t *list = json_array();
        json_object_set_new(out, "syscalls", list);
        size_t i;
        json_t *s;
        json_array_foreach(syscalls, i, s)
        {
                json_t *e = NULL;
                if ((r = convert_syscall(s, i, caps, &e, err, errlen)) < 0) {
                        json_decref(out);
                        return r;
                }
                if (e)
                        json_array_append_new(list, e);
        }
        *ret = out;
        return 0;
}

json_t *oci_seccomp_default(json_t *capabilities_bounding)
{
        json_t *profile = default_profile_json(), *ret = NULL;
        char err[256];
        if (!profile)
                return NULL;
        int r = convert(profile, capabilities_bounding, &ret, err, sizeof(err));
        json_decref(profile);
        return r < 0 ? NULL : ret;
}

int oci_seccomp_from_docker_profile(const char *json_text, json_t *caps, json_t **ret, char *err, size_t errlen)
{
        json_error_t jerr;
        json_t *profile = json_loads(json_text, JSON_REJECT_DUPLICATES, &jerr);
        if (!profile)
                return fail(err, errlen, "not valid JSON: line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        int r = convert(profile, caps, ret, err, errlen);
        json_decref(profile);
        return r;
}

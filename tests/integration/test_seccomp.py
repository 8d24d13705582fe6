"""linux.seccomp: filters seen from inside the container (errno, kill,
argument conditions, deny-by-default allow lists), and bad profiles
refused at create with nothing left behind."""

import pytest

from conftest import run_container

AF_INET = 2
AF_NETLINK = 16
PER_LINUX32 = 0x0008

# Enough for busybox sh/echo/true/cat/mkdir (found with strace) plus what
# runc's Go init still does after loading the filter (futex, epoll,
# signals, ...). ocirun loads the filter just before execve.
ALLOW_LIST = [
    "execve", "execveat", "brk", "arch_prctl", "set_tid_address", "set_robust_list",
    "rseq", "prlimit64", "mprotect", "mmap", "munmap", "madvise", "getrandom",
    "readlink", "readlinkat", "uname", "getuid", "geteuid", "getgid", "getegid",
    "getpid", "getppid", "gettid", "getpgrp", "getpgid", "setpgid", "rt_sigaction",
    "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "prctl", "write", "writev",
    "read", "readv", "close", "open", "openat", "stat", "lstat", "fstat",
    "newfstatat", "statx", "fcntl", "dup", "dup2", "dup3", "ioctl", "lseek",
    "getcwd", "access", "faccessat", "faccessat2", "sendfile", "exit", "exit_group",
    "wait4", "waitid", "clone", "clone3", "vfork", "fork", "pipe", "pipe2",
    "futex", "nanosleep", "clock_nanosleep", "clock_gettime", "sched_yield",
    "sched_getaffinity", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_wait",
    "tgkill", "kill", "getdents64", "mincore", "capget", "capset", "statfs",
    "fstatfs", "close_range",
]

# The syscalls busybox itself needs for `sh -c 'echo ...; mkdir ...'`, and
# nothing of any runtime: enough only when the runtime runs nothing but
# execve under the filter.
BUSYBOX_ONLY = [
    "execve", "arch_prctl", "brk", "clone", "close", "dup2", "exit_group", "fcntl",
    "getpid", "getppid", "getrandom", "getuid", "mprotect", "newfstatat", "prctl",
    "prlimit64", "readlink", "rseq", "rt_sigaction", "rt_sigreturn", "set_robust_list",
    "set_tid_address", "uname", "wait4", "write",
]


def profile(default="SCMP_ACT_ALLOW", syscalls=(), **extra):
    p = {"defaultAction": default, "syscalls": list(syscalls)}
    p.update(extra)
    return p


def rule(names, action, **extra):
    r = {"names": list(names) if not isinstance(names, str) else [names], "action": action}
    r.update(extra)
    return r


def with_seccomp(prof, no_new_privs=None):
    def edit(c):
        c.setdefault("linux", {})["seccomp"] = prof
        if no_new_privs is not None:
            c["process"]["noNewPrivileges"] = no_new_privs
    return edit


def run(rt, bundle, args, prof, **kw):
    b = bundle(args, edit=with_seccomp(prof, kw.pop("no_new_privs", None)))
    return b, run_container(rt, b, **kw)


def run_ok(rt, bundle, args, prof, **kw):
    _, p = run(rt, bundle, args, prof, **kw)
    assert p.returncode == 0, f"rc={p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p.stdout


def assert_error(p, *keywords, max_lines=4):
    """Non-zero exit, short stderr that mentions one of the keywords."""
    assert p.returncode != 0, f"expected failure, got rc=0; stdout={p.stdout!r}"
    err = p.stderr.strip()
    assert err, "no error message on stderr"
    assert len(err.splitlines()) <= max_lines, f"error message too long:\n{err}"
    assert any(k.lower() in err.lower() for k in keywords), \
        f"stderr does not mention any of {keywords}:\n{err}"


def no_leftovers(rt, b, leftovers):
    assert leftovers(b) == []
    assert rt("state", b.id).returncode != 0, "container state exists after failure"


# ------------------------------------------------------------- filter loaded


def test_status_shows_filter(rt, bundle):
    out = run_ok(rt, bundle, ["grep", "-E", "^(Seccomp|NoNewPrivs):", "/proc/self/status"],
                 profile(syscalls=[rule("mkdir", "SCMP_ACT_ERRNO")]))
    assert out.split() == ["NoNewPrivs:", "1", "Seccomp:", "2"], out


def test_no_filter_without_profile(rt, bundle):
    b = bundle(["grep", "^Seccomp:", "/proc/self/status"])
    p = run_container(rt, b)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["Seccomp:", "0"]


def test_filter_without_no_new_privs(rt, bundle):
    """Loaded while the runtime still holds CAP_SYS_ADMIN."""
    out = run_ok(rt, bundle,
                 ["sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; "
                              "mkdir /tmp/x 2>&1; echo rc=$?"],
                 profile(syscalls=[rule("mkdir", "SCMP_ACT_ERRNO")]), no_new_privs=False)
    lines = out.splitlines()
    assert lines[0].split() == ["NoNewPrivs:", "0"], out
    assert lines[1].split() == ["Seccomp:", "2"], out
    assert "Operation not permitted" in out and "rc=1" in out, out


# --------------------------------------------------------------------- errno


@pytest.mark.parametrize("errno_ret,message", [
    (None, "Operation not permitted"),
    (1, "Operation not permitted"),
    (28, "No space left on device"),
], ids=["default", "EPERM", "ENOSPC"])
def test_mkdir_errno(rt, bundle, errno_ret, message):
    extra = {} if errno_ret is None else {"errnoRet": errno_ret}
    out = run_ok(rt, bundle, ["sh", "-c", "mkdir /tmp/x 2>&1; echo rc=$?; test -d /tmp/x || echo absent"],
                 profile(syscalls=[rule(["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", **extra)]))
    assert message in out, out
    assert "rc=1" in out and "absent" in out, out


def test_other_syscalls_unaffected(rt, bundle):
    out = run_ok(rt, bundle, ["sh", "-c", "echo hi > /tmp/f; cat /tmp/f; rmdir /tmp 2>/dev/null; echo ok"],
                 profile(syscalls=[rule("mkdir", "SCMP_ACT_ERRNO")]))
    assert out.split() == ["hi", "ok"], out


def test_unknown_syscall_names_skipped(rt, bundle):
    out = run_ok(rt, bundle, ["sh", "-c", "mkdir /tmp/x 2>&1; echo rc=$?"],
                 profile(syscalls=[rule(["no_such_syscall_xyz"], "SCMP_ACT_ERRNO"),
                                   rule(["another_unknown", "mkdir"], "SCMP_ACT_ERRNO")]))
    assert "Operation not permitted" in out and "rc=1" in out, out


def test_rule_with_default_action_is_ignored(rt, bundle):
    out = run_ok(rt, bundle, ["sh", "-c", "mkdir /tmp/x && echo made"],
                 profile(syscalls=[rule("mkdir", "SCMP_ACT_ALLOW")]))
    assert out.strip() == "made"


# ------------------------------------------------------------ deny by default


@pytest.mark.parametrize("one_entry", [True, False], ids=["one-entry", "entry-per-syscall"])
def test_default_errno_with_allow_list(rt, bundle, one_entry):
    """defaultAction ERRNO: what is listed works, the rest fails with
    EPERM. One entry per syscall is also > 32 entries (binary tree)."""
    if one_entry:
        rules = [rule(ALLOW_LIST, "SCMP_ACT_ALLOW")]
    else:
        rules = [rule(n, "SCMP_ACT_ALLOW") for n in ALLOW_LIST]
    out = run_ok(rt, bundle, ["sh", "-c", "echo hello; mkdir /tmp/x 2>&1 || true"],
                 profile("SCMP_ACT_ERRNO", rules))
    assert out.splitlines()[0] == "hello", out
    assert "Operation not permitted" in out, out


def test_true_with_allow_list(rt, bundle):
    _, p = run(rt, bundle, ["true"], profile("SCMP_ACT_ERRNO", [rule(ALLOW_LIST, "SCMP_ACT_ALLOW")]))
    assert p.returncode == 0, p.stderr


def test_default_errno_ret(rt, bundle):
    out = run_ok(rt, bundle, ["sh", "-c", "mkdir /tmp/x 2>&1 || true"],
                 profile("SCMP_ACT_ERRNO", [rule(ALLOW_LIST, "SCMP_ACT_ALLOW")], defaultErrnoRet=28))
    assert "No space left on device" in out, out


@pytest.mark.ocirun_only
def test_filter_is_loaded_just_before_exec(rt, bundle):
    """With noNewPrivileges, only execve runs under the filter before the
    program: busybox's own syscalls are enough (runc needs its Go
    runtime's too)."""
    out = run_ok(rt, bundle, ["sh", "-c", "echo hello; mkdir /tmp/x 2>&1 || true"],
                 profile("SCMP_ACT_ERRNO", [rule(BUSYBOX_ONLY, "SCMP_ACT_ALLOW")]))
    assert out.splitlines() == ["hello", "mkdir: can't create directory '/tmp/x': Operation not permitted"], out


def test_architectures(rt, bundle):
    """Docker's usual list on x86_64 (the native one given again is fine)."""
    prof = profile("SCMP_ACT_ERRNO", [rule(ALLOW_LIST, "SCMP_ACT_ALLOW")],
                   architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    out = run_ok(rt, bundle, ["sh", "-c", "echo hello; mkdir /tmp/x 2>&1 || true"], prof)
    assert out.splitlines()[0] == "hello"
    assert "Operation not permitted" in out, out


@pytest.mark.ocirun_only  # runc 1.1.5: "seccomp flags are not yet supported by runc"
def test_flags(rt, bundle):
    prof = profile(syscalls=[rule("mkdir", "SCMP_ACT_ERRNO")],
                   flags=["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                          "SECCOMP_FILTER_FLAG_SPEC_ALLOW"])
    out = run_ok(rt, bundle, ["sh", "-c", "grep ^Seccomp: /proc/self/status; mkdir /tmp/x 2>&1 || true"], prof)
    assert out.splitlines()[0].split() == ["Seccomp:", "2"], out
    assert "Operation not permitted" in out, out


# --------------------------------------------------------------------- kill


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD"])
def test_kill_action(rt, bundle, leftovers, action):
    b, p = run(rt, bundle, ["mkdir", "/tmp/x"], profile(syscalls=[rule(["mkdir", "mkdirat"], action)]))
    assert p.returncode == 128 + 31, f"rc={p.returncode} stderr={p.stderr}"  # SIGSYS
    assert leftovers(b) == []


def test_kill_only_matching_process(rt, bundle):
    """The shell survives its child's SIGSYS and sees it."""
    out = run_ok(rt, bundle, ["sh", "-c", "mkdir /tmp/x; echo status=$?"],
                 profile(syscalls=[rule("mkdir", "SCMP_ACT_KILL_PROCESS")]))
    assert "status=159" in out, out


# ------------------------------------------------------------ argument rules


def test_socket_family_condition(rt, bundle):
    """socket(AF_INET, ...) is refused, netlink sockets still work."""
    prof = profile(syscalls=[rule("socket", "SCMP_ACT_ERRNO",
                                  args=[{"index": 0, "value": AF_INET, "op": "SCMP_CMP_EQ"}])])
    out = run_ok(rt, bundle, ["sh", "-c", "ifconfig lo 2>&1; echo rc=$?; ip -o link show lo 2>&1"], prof)
    assert "Operation not permitted" in out and "rc=1" in out, out
    assert "1: lo:" in out, out


def test_conditions_on_same_argument_are_alternatives(rt, bundle):
    """Two conditions on arg 0 become two rules (runc): either matches."""
    prof = profile(syscalls=[rule("socket", "SCMP_ACT_ERRNO", args=[
        {"index": 0, "value": AF_INET, "op": "SCMP_CMP_EQ"},
        {"index": 0, "value": AF_NETLINK, "op": "SCMP_CMP_EQ"},
    ])])
    out = run_ok(rt, bundle, ["sh", "-c", "ifconfig lo >/dev/null 2>&1 || echo inet-denied; "
                                          "ip -o link show lo >/dev/null 2>&1 || echo netlink-denied"], prof)
    assert out.split() == ["inet-denied", "netlink-denied"], out


def test_conditions_on_different_arguments_all_hold(rt, bundle):
    """socket(AF_INET, SOCK_STREAM) only: ifconfig's SOCK_DGRAM passes."""
    prof = profile(syscalls=[rule("socket", "SCMP_ACT_ERRNO", args=[
        {"index": 0, "value": AF_INET, "op": "SCMP_CMP_EQ"},
        {"index": 1, "value": 1, "op": "SCMP_CMP_EQ"},  # SOCK_STREAM
    ])])
    out = run_ok(rt, bundle, ["sh", "-c", "ifconfig lo >/dev/null 2>&1; echo rc=$?"], prof)
    assert out.strip() == "rc=0", out


@pytest.mark.parametrize("arg", [
    {"index": 0, "value": PER_LINUX32, "op": "SCMP_CMP_EQ"},
    {"index": 0, "value": 0xff, "valueTwo": PER_LINUX32, "op": "SCMP_CMP_MASKED_EQ"},
    {"index": 0, "value": 0, "op": "SCMP_CMP_NE"},
    {"index": 0, "value": 1, "op": "SCMP_CMP_GE"},
], ids=["EQ", "MASKED_EQ", "NE", "GE"])
def test_personality_condition(rt, bundle, arg):
    """personality(PER_LINUX32) is refused, personality(PER_LINUX) not."""
    prof = profile(syscalls=[rule("personality", "SCMP_ACT_ERRNO", args=[arg])])
    out = run_ok(rt, bundle, ["sh", "-c", "linux64 true; echo linux64=$?; "
                                          "linux32 true 2>/dev/null; echo linux32=$?"], prof)
    assert out.split() == ["linux64=0", "linux32=1"], out


# ------------------------------------------------------------- bad profiles


BAD_PROFILES = {
    "bad-default-action": (profile("SCMP_ACT_FOO"), "SCMP_ACT_FOO"),
    "bad-action": (profile(syscalls=[rule("mkdir", "SCMP_ACT_BOGUS")]), "SCMP_ACT_BOGUS"),
    "bad-arch": (profile(architectures=["SCMP_ARCH_VAX"]), "SCMP_ARCH_VAX"),
    "bad-op": (profile(syscalls=[rule("socket", "SCMP_ACT_ERRNO",
                                      args=[{"index": 0, "value": 2, "op": "SCMP_CMP_APPROX"}])]),
               "SCMP_CMP_APPROX"),
}


@pytest.mark.parametrize("cmd", ["create", "run"])
@pytest.mark.parametrize("name", sorted(BAD_PROFILES))
def test_bad_profile_fails_cleanly(rt, bundle, leftovers, name, cmd):
    prof, keyword = BAD_PROFILES[name]
    b = bundle(["sh", "-c", "echo should-not-run @MARKER@"], edit=with_seccomp(prof))
    p = rt(cmd, "-b", b.path, b.id)
    assert_error(p, keyword)
    assert "should-not-run" not in p.stdout
    no_leftovers(rt, b, leftovers)


@pytest.mark.ocirun_only
@pytest.mark.parametrize("prof,message", [
    (profile(syscalls=[{}, rule("mkdir", "SCMP_ACT_ERRNO"), rule("x", "SCMP_ACT_FOO")]),
     'ocirun: linux.seccomp.syscalls[0].names is required'),
    (profile(syscalls=[rule("mkdir", "SCMP_ACT_ERRNO"), rule("x", "SCMP_ACT_FOO")]),
     'ocirun: linux.seccomp.syscalls[1].action "SCMP_ACT_FOO" is not an action'),
    (profile(architectures=["SCMP_ARCH_X86", "SCMP_ARCH_VAX"]),
     'ocirun: linux.seccomp.architectures[1] "SCMP_ARCH_VAX" is not an architecture'),
    (profile(syscalls=[rule("socket", "SCMP_ACT_ERRNO",
                            args=[{"index": 0, "value": 2, "op": "SCMP_CMP_APPROX"}])]),
     'ocirun: linux.seccomp.syscalls[0].args[0].op "SCMP_CMP_APPROX" is not an operator'),
    (profile(syscalls=[rule("socket", "SCMP_ACT_ERRNO",
                            args=[{"index": 6, "value": 2, "op": "SCMP_CMP_EQ"}])]),
     'ocirun: linux.seccomp.syscalls[0].args[0].index must be an integer from 0 to 5'),
    (profile(syscalls=[rule("mkdir", "SCMP_ACT_KILL", errnoRet=1)]),
     'ocirun: linux.seccomp.syscalls[0].errnoRet cannot be used with SCMP_ACT_KILL '
     '(only with SCMP_ACT_ERRNO and SCMP_ACT_TRACE)'),
    (profile(flags=["SECCOMP_FILTER_FLAG_BOGUS"]),
     'ocirun: linux.seccomp.flags[0] "SECCOMP_FILTER_FLAG_BOGUS" is not a seccomp flag'),
    (profile(syscalls=[rule("mkdir", "SCMP_ACT_NOTIFY")]),
     'ocirun: linux.seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath'),
    ("SCMP_ACT_ALLOW", "ocirun: linux.seccomp must be an object"),
], ids=["names-missing", "action", "arch", "op", "index", "errnoRet", "flag", "notify", "not-object"])
def test_bad_profile_message(rt, bundle, leftovers, prof, message):
    b = bundle(["true"], edit=with_seccomp(prof))
    p = rt("create", "-b", b.path, b.id)
    assert p.returncode != 0
    assert p.stderr.strip() == message
    no_leftovers(rt, b, leftovers)


# ------------------------------------------------------------ program cache


CACHE_SCRIPT = ["sh", "-c", "mkdir /tmp/x 2>&1; echo mkdir=$?; rmdir /tmp/x 2>&1; echo rmdir=$?"]
DENY_MKDIR = profile(syscalls=[rule(["mkdir", "mkdirat"], "SCMP_ACT_ERRNO", errnoRet=28)])
DENY_RMDIR = profile(syscalls=[rule(["rmdir", "unlinkat"], "SCMP_ACT_ERRNO")],
                     flags=["SECCOMP_FILTER_FLAG_LOG"])


def check_deny_mkdir(out):
    assert "No space left on device" in out and "mkdir=1" in out, out


def check_deny_rmdir(out):
    assert "mkdir=0" in out and "Operation not permitted" in out and "rmdir=1" in out, out


def test_same_profile_again_and_another(rt, bundle):
    """ocirun keeps the programs it generates in <root>/.seccomp: a second
    container with a profile gets the same filter, another profile its own."""
    for _ in range(2):
        check_deny_mkdir(run_ok(rt, bundle, CACHE_SCRIPT, DENY_MKDIR))
    for _ in range(2):
        check_deny_rmdir(run_ok(rt, bundle, CACHE_SCRIPT, DENY_RMDIR))
    check_deny_mkdir(run_ok(rt, bundle, CACHE_SCRIPT, DENY_MKDIR))
    assert "NoNewPrivs:\t1" in run_ok(rt, bundle, ["cat", "/proc/self/status"], DENY_MKDIR)
    if rt.name == "ocirun":
        assert len(list((rt.root / ".seccomp").iterdir())) == 2
        assert ".seccomp" not in rt("list").stdout


@pytest.mark.ocirun_only
def test_cache_entry_for_another_key_is_not_used(rt, bundle):
    """A cache file holds its whole key: one whose key differs (another
    profile's program under this profile's name, or garbage) is rebuilt."""
    check_deny_mkdir(run_ok(rt, bundle, CACHE_SCRIPT, DENY_MKDIR))
    (mkdir_file,) = list((rt.root / ".seccomp").iterdir())
    mkdir_file.rename(mkdir_file.with_name("saved"))
    check_deny_rmdir(run_ok(rt, bundle, CACHE_SCRIPT, DENY_RMDIR))
    (rmdir_file,) = [f for f in (rt.root / ".seccomp").iterdir() if f.name != "saved"]
    rmdir_file.rename(mkdir_file)  # the rmdir program under the mkdir key's name
    check_deny_mkdir(run_ok(rt, bundle, CACHE_SCRIPT, DENY_MKDIR))
    mkdir_file.write_bytes(b"garbage")
    check_deny_mkdir(run_ok(rt, bundle, CACHE_SCRIPT, DENY_MKDIR))
    check_deny_mkdir(run_ok(rt, bundle, CACHE_SCRIPT, DENY_MKDIR))

/* Keeps the container from reaching the host's ocirun binary
 * (CVE-2019-5736).
 *
 * While ocirun's own code runs inside a container (the init before exec,
 * an exec'd process before exec), /proc/<pid>/exe names ocirun's binary.
 * Two defences:
 * - the process is non-dumpable from clone to exec, so other processes in
 *   the container cannot open /proc/<pid>/exe (that needs CAP_SYS_PTRACE
 *   over the host's user namespace);
 * - the last exec goes through a tiny trampoline run from a sealed memfd
 *   (exec-trampoline.c), so that a container program resolving to
 *   /proc/self/exe — directly or as a script's interpreter — reaches the
 *   sealed trampoline, never the host binary. A full sealed copy of ocirun
 *   (runc 1.1's way) would do too, but costs about 2 ms per container here;
 *   the trampoline is a few KB. */
#pragma once

/* A sealed, executable memfd holding the trampoline (close-on-exec), or
 * -errno. */
int self_exe_trampoline_fd(void);

/* execs prog with argv/envp through the trampoline in tfd. Only returns on
 * failure, with -errno. When the kernel or a seccomp filter refuses
 * execveat(), falls back to a direct execve() of prog once it has checked
 * that neither prog nor its script interpreter is ocirun's own binary. */
int self_exe_exec(int tfd, const char *prog, char *const argv[], char *const envp[]);

#include "self-exe.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/memfd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

extern const unsigned char ocirun_trampoline[];
extern const size_t ocirun_trampoline_len;

#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

int self_exe_trampoline_fd(void)
{
        /* MFD_EXEC: hosts with vm.memfd_noexec=1 make memfds non-executable by default */
        _cleanup_close_ int fd = memfd_create("ocirun-exec", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
        if (fd < 0 && errno == EINVAL)
                fd = memfd_create("ocirun-exec", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        for (size_t off = 0; off < ocirun_trampoline_len;) {
                ssize_t n = write(fd, ocirun_trampoline + off, ocirun_trampoline_len - off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                off += (size_t) n;
        }
        if (fcntl(fd, F_ADD_SEALS, SEALS) < 0)
                return -errno;
        return TAKE_FD(fd);
}

/* True when path (as execve would open it) is the binary we are running. */
static bool is_own_binary(const char *path)
{
        struct stat a, b;
        if (stat(path, &a) < 0 || stat("/proc/self/exe", &b) < 0)
                return false;
        return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* prog or the interpreter chain of a script is our own binary. */
static bool reaches_own_binary(const char *prog, int depth)
{
        if (depth > 4 || is_own_binary(prog))
                return true;
        _cleanup_close_ int fd = open(prog, O_RDONLY | O_CLOEXEC);
        char buf[256];
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
        if (n < 2 || buf[0] != '#' || buf[1] != '!')
                return false;
        buf[n] = '\0';
        char *p = buf + 2;
        while (*p == ' ' || *p == '\t')
                p++;
        p[strcspn(p, " \t\n")] = '\0';
        return *p && reaches_own_binary(p, depth + 1);
}

int self_exe_exec(int tfd, const char *prog, char *const argv[], char *const envp[])
{
        size_t n = 0;
        while (argv[n])
                n++;
        _cleanup_free_ char **targv = calloc(n + 3, sizeof(char *));
        if (!targv)
                return -ENOMEM;
        targv[0] = (char *) "ocirun-exec";
        targv[1] = (char *) prog;
        for (size_t i = 0; i < n; i++)
                targv[i + 2] = argv[i];

        if (tfd >= 0) {
                syscall(SYS_execveat, tfd, "", targv, envp, AT_EMPTY_PATH);
                if (errno != EPERM && errno != ENOSYS && errno != EACCES)
                        return -errno;
        }
        if (reaches_own_binary(prog, 0))
                return -EPERM;
        execve(prog, argv, envp);
        return -errno;
}

#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"

int console_setup(int *ret_master, struct berr *e)
{
        int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0)
                return berr_set(e, errno, "cannot open /dev/ptmx in the container");
        if (unlockpt(master) < 0) {
                close(master);
                return berr_set(e, errno, "cannot unlock the pty");
        }
        int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
        if (slave < 0) {
                close(master);
                return berr_set(e, errno, "cannot open the pty slave");
        }
        for (int fd = 0; fd < 3; fd++)
                if (dup2(slave, fd) < 0) {
                        close(master);
                        return berr_set(e, errno, "cannot attach the pty to fd %d", fd);
                }
        if (slave > 2)
                close(slave);
        if (ioctl(0, TIOCSCTTY, 0) < 0) {
                close(master);
                return berr_set(e, errno, "cannot make the pty the controlling terminal");
        }
        *ret_master = master;
        return 0;
}

int fd_send(int sock, int fd, const void *payload, size_t len)
{
        struct iovec iov = { .iov_base = (void *) payload, .iov_len = len };
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } u;
        memset(&u, 0, sizeof(u));
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
        return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

int fd_recv(int sock, void *payload, size_t len, int *ret_fd)
{
        struct iovec iov = { .iov_base = payload, .iov_len = len };
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } u;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
        ssize_t n;

        *ret_fd = -1;
        do
                n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
                        memcpy(ret_fd, CMSG_DATA(cm), sizeof(int));
        return (int) n;
}

static int exit_code(int status)
{
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return 255;
}

static void copy_winsize(int from, int to)
{
        struct winsize ws;
        if (ioctl(from, TIOCGWINSZ, &ws) == 0)
                ioctl(to, TIOCSWINSZ, &ws);
}

/* Moves what is readable from one fd to another; false at EOF/error. */
static bool pump(int from, int to)
{
        char buf[16384];
        ssize_t n = read(from, buf, sizeof(buf));
        if (n < 0)
                return errno == EINTR || errno == EAGAIN;
        if (n == 0)
                return false;
        for (ssize_t off = 0; off < n;) {
                ssize_t w = write(to, buf + off, (size_t) (n - off));
                if (w < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return false;
                }
                off += w;
        }
        return true;
}

int wait_foreground(pid_t pid, int master)
{
        sigset_t all;
        sigfillset(&all);
        _cleanup_close_ int sfd = signalfd(-1, &all, SFD_CLOEXEC);
        struct termios saved;
        bool raw = false;
        int code = 255;

        if (master >= 0 && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
                struct termios t = saved;
                cfmakeraw(&t);
                t.c_oflag |= OPOST; /* keep output processing as runc does */
                raw = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
                copy_winsize(STDIN_FILENO, master);
        }

        bool in_open = master >= 0, out_open = master >= 0;
        for (;;) {
                int status;
                pid_t w;
                bool done = false;
                while ((w = waitpid(-1, &status, WNOHANG)) > 0)
                        if (w == pid) {
                                code = exit_code(status);
                                done = true;
                        }
                if (done || (w < 0 && errno == ECHILD))
                        break;

                struct pollfd p[3] = {
                        { .fd = sfd, .events = POLLIN },
                        { .fd = in_open ? STDIN_FILENO : -1, .events = POLLIN },
                        { .fd = out_open ? master : -1, .events = POLLIN },
                };
                if (poll(p, 3, -1) < 0 && errno != EINTR)
                        break;
                if (p[0].revents & POLLIN) {
                        struct signalfd_siginfo si;
                        if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
                                int sig = (int) si.ssi_signo;
                                if (sig == SIGWINCH && master >= 0)
                                        copy_winsize(STDIN_FILENO, master);
                                else if (sig != SIGCHLD && sig != SIGURG && sig != SIGWINCH &&
                                         kill(pid, sig) < 0 && errno != ESRCH)
                                        log_warn("cannot forward signal %d to %d: %s", sig, (int) pid,
                                                 strerror(errno));
                        }
                }
                if (p[1].revents & (POLLIN | POLLHUP | POLLERR) && !pump(STDIN_FILENO, master))
                        in_open = false;
                if (p[2].revents & (POLLIN | POLLHUP | POLLERR) && !pump(master, STDOUT_FILENO))
                        out_open = false;
        }
        /* drain what the process wrote before it exited */
        if (out_open) {
                int fl = fcntl(master, F_GETFL);
                fcntl(master, F_SETFL, fl | O_NONBLOCK);
                while (pump(master, STDOUT_FILENO)) {
                        struct pollfd p = { .fd = master, .events = POLLIN };
                        if (poll(&p, 1, 0) <= 0)
                                break;
                }
        }
        if (raw)
                tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        return code;
}

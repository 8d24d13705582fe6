#include "process-setup.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs-util.h"
#include "log.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

int process_set_rlimits(const struct spec_process *p, struct berr *e)
{
        for (size_t i = 0; i < p->n_rlimits; i++) {
                struct rlimit rl = { .rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard };
                if (setrlimit(p->rlimits[i].resource, &rl) < 0)
                        return berr_set(e, errno, "cannot set rlimit %d to %llu/%llu", p->rlimits[i].resource,
                                        (unsigned long long) rl.rlim_cur, (unsigned long long) rl.rlim_max);
        }
        return 0;
}

static int last_cap(void)
{
        _cleanup_free_ char *s = NULL;
        if (fs_read_file("/proc/sys/kernel/cap_last_cap", 64, &s, NULL) < 0)
                return CAP_LAST_CAP;
        return atoi(s);
}

static int capset_sets(uint64_t eff, uint64_t perm, uint64_t inh)
{
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct d[2] = {
                { .effective = (uint32_t) eff, .permitted = (uint32_t) perm, .inheritable = (uint32_t) inh },
                { .effective = (uint32_t) (eff >> 32), .permitted = (uint32_t) (perm >> 32),
                  .inheritable = (uint32_t) (inh >> 32) },
        };
        return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

int process_set_identity(const struct spec_process *p, struct berr *e)
{
        const struct spec_caps *c = &p->caps;
        int last = last_cap();
        uint64_t known = last >= 63 ? ~0ull : (1ull << (last + 1)) - 1;
        int r;

        for (int cap = 0; cap <= last; cap++)
                if (!(c->bounding & (1ull << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
                        return berr_set(e, errno, "cannot drop capability %d from the bounding set", cap);

        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
                return berr_set(e, errno, "cannot set keepcaps");
        _cleanup_free_ gid_t *groups = calloc(p->n_additional_gids + 1, sizeof(gid_t));
        if (!groups)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_additional_gids; i++)
                groups[i] = p->additional_gids[i];
        if (setgroups(p->n_additional_gids, groups) < 0) {
                /* a user namespace with setgroups denied (as rootless tools
                 * make them) cannot drop groups either: fine when none are
                 * asked for */
                _cleanup_free_ char *sg = NULL;
                bool denied = fs_read_file("/proc/self/setgroups", 64, &sg, NULL) == 0 && strncmp(sg, "deny", 4) == 0;
                if (!(errno == EPERM && denied && p->n_additional_gids == 0))
                        return berr_set(e, errno, "cannot set additional groups");
        }
        if (setresgid(p->gid, p->gid, p->gid) < 0)
                return berr_set(e, errno, "cannot set gid %u", p->gid);
        if (setresuid(p->uid, p->uid, p->uid) < 0)
                return berr_set(e, errno, "cannot set uid %u", p->uid);
        if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
                return berr_set(e, errno, "cannot clear keepcaps");

        if ((r = capset_sets(c->effective & known, c->permitted & known, c->inheritable & known)) < 0)
                return berr_set(e, r, "cannot set capabilities");

        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        for (int cap = 0; cap <= last; cap++)
                if ((c->ambient & (1ull << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
                        /* as runc: an ambient cap not also inheritable and
                         * permitted cannot be raised, and is skipped */
                        log_debug("cannot raise ambient capability %d: %s", cap, strerror(errno));
        return 0;
}

int process_set_finish(const struct spec_process *p, struct berr *e)
{
        umask(p->has_umask ? (mode_t) p->umask : 0022);
        if (chdir(p->cwd) < 0)
                return berr_set(e, errno, "cannot chdir to cwd \"%s\"", p->cwd);
        /* A cwd through one of our own fds (/proc/self/fd/N) would land
         * outside the container (CVE-2024-21626): the kernel then reports
         * the cwd as unreachable, which glibc's getcwd() turns into ENOENT. */
        char buf[PATH_MAX];
        if (!getcwd(buf, sizeof(buf)) || buf[0] != '/')
                return berr_setx(e, EPERM, "cwd \"%s\" is outside the container", p->cwd);
        if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return berr_set(e, errno, "cannot set no_new_privs");
        return 0;
}

static bool apparmor_enabled(void)
{
        _cleanup_free_ char *s = NULL;
        return fs_read_file("/sys/module/apparmor/parameters/enabled", 64, &s, NULL) == 0 && s[0] == 'Y';
}

static bool selinux_enabled(void)
{
        return access("/sys/fs/selinux/enforce", F_OK) == 0;
}

int process_check_lsm(const struct spec_process *p, struct berr *e)
{
        if (p->apparmor_profile && *p->apparmor_profile && !apparmor_enabled())
                return berr_setx(e, EOPNOTSUPP, "process.apparmorProfile \"%s\" is set but AppArmor is not enabled on this host",
                                 p->apparmor_profile);
        if (p->selinux_label && *p->selinux_label && !selinux_enabled())
                return berr_setx(e, EOPNOTSUPP, "process.selinuxLabel is set but SELinux is not enabled on this host");
        return 0;
}

/* Writes to /proc/self/attr/<lsm>/exec (newer kernels) or attr/exec. */
static int write_attr_exec(const char *lsm, const char *value, struct berr *e)
{
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/attr/%s/exec", lsm);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                fd = open("/proc/self/attr/exec", O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, value, strlen(value)) < 0)
                return berr_set(e, errno, "cannot set the %s context \"%s\"", lsm, value);
        return 0;
}

int process_set_lsm(const struct spec_process *p, struct berr *e)
{
        int r;
        if (p->apparmor_profile && *p->apparmor_profile) {
                _cleanup_free_ char *cmd = NULL;
                if (asprintf(&cmd, "exec %s", p->apparmor_profile) < 0)
                        return -ENOMEM;
                if ((r = write_attr_exec("apparmor", cmd, e)) < 0)
                        return r;
        }
        if (p->selinux_label && *p->selinux_label && selinux_enabled() &&
            (r = write_attr_exec("selinux", p->selinux_label, e)) < 0)
                return r;
        return 0;
}

int process_set_personality(const struct spec *s, struct berr *e)
{
        if (s->has_personality && personality(s->personality_linux32 ? PER_LINUX32 : PER_LINUX) < 0)
                return berr_set(e, errno, "cannot set the personality %s", s->personality_linux32 ? "LINUX32" : "LINUX");
        return 0;
}

static const char *env_get(char **env, const char *name)
{
        size_t n = strlen(name);
        for (char **v = env; v && *v; v++)
                if (strncmp(*v, name, n) == 0 && (*v)[n] == '=')
                        return *v + n + 1;
        return NULL;
}

static bool is_executable(const char *path)
{
        struct stat st;
        return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int process_find_program(const struct spec_process *p, char **ret, struct berr *e)
{
        const char *prog = p->args[0];
        /* runc's wording, lower case as Go's errors: callers (the docker
         * CLI) map "no such file or directory" to 127 and "permission
         * denied" / "is a directory" to 126 */
        if (strchr(prog, '/')) {
                struct stat st;
                if (stat(prog, &st) < 0) {
                        int err = errno;
                        char msg[128];
                        snprintf(msg, sizeof(msg), "%s", strerror(err));
                        msg[0] = (char) tolower((unsigned char) msg[0]);
                        return berr_setx(e, err, "exec: \"%s\": stat %s: %s", prog, prog, msg);
                }
                if (S_ISDIR(st.st_mode))
                        return berr_setx(e, EACCES, "exec: \"%s\": is a directory", prog);
                if (!S_ISREG(st.st_mode) || access(prog, X_OK) < 0)
                        return berr_setx(e, EACCES, "exec: \"%s\": permission denied", prog);
                *ret = strdup(prog);
                return *ret ? 0 : -ENOMEM;
        }

        const char *path = env_get(p->env, "PATH");
        _cleanup_free_ char *copy = strdup(path ? path : DEFAULT_PATH);
        char *save = NULL;
        if (!copy)
                return -ENOMEM;
        for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
                char *cand = NULL;
                if (asprintf(&cand, "%s/%s", *dir ? dir : ".", prog) < 0)
                        return -ENOMEM;
                if (is_executable(cand)) {
                        *ret = cand;
                        return 0;
                }
                free(cand);
        }
        return berr_setx(e, ENOENT, "exec: \"%s\": executable file not found in $PATH", prog);
}

static char *home_of(uid_t uid)
{
        _cleanup_fclose_ FILE *f = fopen("/etc/passwd", "re");
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        while (f && getline(&line, &cap, f) > 0) {
                char *fields[7] = { 0 };
                char *s = line;
                for (int i = 0; i < 7 && s; i++) {
                        fields[i] = s;
                        s = strchr(s, ':');
                        if (s)
                                *s++ = '\0';
                }
                if (fields[2] && fields[5] && (uid_t) strtoul(fields[2], NULL, 10) == uid && *fields[5])
                        return strdup(fields[5]);
        }
        return strdup("/");
}

char **process_env(const struct spec_process *p)
{
        size_t n = 0;
        for (char **v = p->env; v && *v; v++)
                n++;
        char **env = calloc(n + 2, sizeof(char *));
        if (!env)
                return NULL;
        for (size_t i = 0; i < n; i++)
                env[i] = p->env[i];
        if (!env_get(p->env, "HOME")) {
                _cleanup_free_ char *home = home_of(p->uid);
                if (home && asprintf(&env[n], "HOME=%s", home) < 0)
                        env[n] = NULL;
        }
        return env;
}

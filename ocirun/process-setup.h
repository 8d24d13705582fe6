/* The container process's identity and limits, set in the child just
 * before exec: rlimits, capabilities (all five sets), user and groups,
 * umask, cwd, no_new_privs, and the program to exec from PATH. */
#pragma once

#include "err.h"
#include "spec.h"

int process_set_rlimits(const struct spec_process *p, struct berr *e);
/* Bounding set, groups, uid/gid, capability sets, ambient set. */
int process_set_identity(const struct spec_process *p, struct berr *e);
/* umask, cwd, no_new_privs. */
int process_set_finish(const struct spec_process *p, struct berr *e);

/* Checks, before anything is created, that the host can apply the
 * process's AppArmor profile and SELinux label: asking for either on a host
 * without that LSM is an error, as with runc. */
int process_check_lsm(const struct spec_process *p, struct berr *e);

/* Just before exec: the AppArmor profile / SELinux label for the program,
 * and the personality. */
int process_set_lsm(const struct spec_process *p, struct berr *e);
int process_set_personality(const struct spec *s, struct berr *e);

/* Finds args[0] the way execvp would with the process's PATH. */
int process_find_program(const struct spec_process *p, char **ret, struct berr *e);

/* The process environment with HOME added (from /etc/passwd) if missing. */
char **process_env(const struct spec_process *p);

#pragma once
/* "KILL", "SIGKILL", "kill" or "9" → signal number; -EINVAL if none. */
int signal_from_string(const char *s);

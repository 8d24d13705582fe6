/* Signals by number or by name, as the command-line clients take them. */
#pragma once

#include <stdbool.h>

/* "9", "KILL" or "SIGKILL" (any case when ignore_case) → the signal's
 * number; -1 for anything else. Numbers go from 1 to 64; the names are
 * the common ones (HUP INT QUIT ILL ABRT KILL USR1 SEGV USR2 PIPE ALRM
 * TERM CHLD CONT STOP TSTP WINCH). */
int signal_parse(const char *s, bool ignore_case);

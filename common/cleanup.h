/* Scope-bound cleanup helpers (__attribute__((cleanup))). Destructors accept
 * NULL / -1, so a variable whose ownership was handed out with TAKE_PTR or
 * TAKE_FD is left alone. */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p)
{
        free(*(void **) p);
}

static inline void closep(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}

static inline void fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
}

static inline void closedirp(DIR **d)
{
        if (*d)
                closedir(*d);
}

static inline void strv_free(char **v)
{
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

static inline void strv_freep(char ***v)
{
        strv_free(*v);
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_closedir_ _cleanup_(closedirp)
#define _cleanup_strv_free_ _cleanup_(strv_freep)

/* Hand ownership out of a cleanup-managed variable. */
#define TAKE_PTR(p)                                \
        ({                                         \
                __typeof__(p) _taken_ = (p);       \
                (p) = NULL;                        \
                _taken_;                           \
        })

#define TAKE_FD(fd)                                \
        ({                                         \
                int _taken_fd_ = (fd);             \
                (fd) = -1;                         \
                _taken_fd_;                        \
        })

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

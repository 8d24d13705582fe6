#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "time-util.h"

struct loop_source {
        struct loop *loop;
        int fd;
        loop_fd_fn fn;
        void *data;
        bool dead;
        struct loop_source *next_dead;
        struct loop_source *prev, *next; /* live sources */
};

struct loop_timer {
        uint64_t at_ns;
        loop_timer_fn fn;
        void *data;
        bool dead;
        struct loop_timer *next;
};

struct loop {
        int epfd;
        bool quit;
        struct loop_source *dead;
        struct loop_source *live;
        struct loop_timer *timers; /* unsorted; a handful at most */
};

int loop_new(struct loop **ret)
{
        struct loop *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (l->epfd < 0) {
                int r = -errno;
                free(l);
                return r;
        }
        *ret = l;
        return 0;
}

static void free_dead(struct loop *l)
{
        while (l->dead) {
                struct loop_source *s = l->dead;
                l->dead = s->next_dead;
                free(s);
        }
        struct loop_timer **pp = &l->timers;
        while (*pp) {
                struct loop_timer *t = *pp;
                if (t->dead) {
                        *pp = t->next;
                        free(t);
                } else
                        pp = &t->next;
        }
}

void loop_free(struct loop *l)
{
        if (!l)
                return;
        while (l->live)
                loop_remove(l->live);
        for (struct loop_timer *t = l->timers; t; t = t->next)
                t->dead = true;
        free_dead(l);
        close(l->epfd);
        free(l);
}

struct loop_source *loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_fn fn, void *data)
{
        struct loop_source *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        *s = (struct loop_source) { .loop = l, .fd = fd, .fn = fn, .data = data };
        struct epoll_event ev = { .events = events, .data.ptr = s };
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                free(s);
                return NULL;
        }
        s->next = l->live;
        if (l->live)
                l->live->prev = s;
        l->live = s;
        return s;
}

int loop_mod_fd(struct loop_source *s, uint32_t events)
{
        struct epoll_event ev = { .events = events, .data.ptr = s };
        if (epoll_ctl(s->loop->epfd, EPOLL_CTL_MOD, s->fd, &ev) < 0)
                return -errno;
        return 0;
}

void loop_remove(struct loop_source *s)
{
        if (!s || s->dead)
                return;
        epoll_ctl(s->loop->epfd, EPOLL_CTL_DEL, s->fd, NULL);
        if (s->prev)
                s->prev->next = s->next;
        else
                s->loop->live = s->next;
        if (s->next)
                s->next->prev = s->prev;
        s->dead = true;
        s->next_dead = s->loop->dead;
        s->loop->dead = s;
}

struct loop_timer *loop_add_timer(struct loop *l, uint64_t ms, loop_timer_fn fn, void *data)
{
        struct loop_timer *t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        t->at_ns = time_monotonic_ns() + ms * 1000000ull;
        t->fn = fn;
        t->data = data;
        t->next = l->timers;
        l->timers = t;
        return t;
}

void loop_cancel_timer(struct loop_timer *t)
{
        if (t)
                t->dead = true;
}

void loop_quit(struct loop *l)
{
        l->quit = true;
}

static int next_timeout_ms(struct loop *l)
{
        uint64_t now = time_monotonic_ns(), best = UINT64_MAX;
        for (struct loop_timer *t = l->timers; t; t = t->next)
                if (!t->dead && t->at_ns < best)
                        best = t->at_ns;
        if (best == UINT64_MAX)
                return -1;
        if (best <= now)
                return 0;
        return (int) ((best - now + 999999) / 1000000);
}

static void run_timers(struct loop *l)
{
        uint64_t now = time_monotonic_ns();
        for (struct loop_timer *t = l->timers; t; t = t->next)
                if (!t->dead && t->at_ns <= now) {
                        t->dead = true;
                        t->fn(t, t->data);
                }
}

int loop_run(struct loop *l)
{
        struct epoll_event evs[32];
        while (!l->quit) {
                int n = epoll_wait(l->epfd, evs, 32, next_timeout_ms(l));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                for (int i = 0; i < n && !l->quit; i++) {
                        struct loop_source *s = evs[i].data.ptr;
                        if (!s->dead)
                                s->fn(s, s->fd, evs[i].events, s->data);
                }
                run_timers(l);
                free_dead(l);
        }
        return 0;
}

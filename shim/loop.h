/* A small epoll event loop for the shim's one thread: fd sources and
 * one-shot timers. Sources removed during a round are freed after it, so a
 * callback may remove any source, its own included. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

struct loop;
struct loop_source;
struct loop_timer;

typedef void (*loop_fd_fn)(struct loop_source *src, int fd, uint32_t events, void *data);
typedef void (*loop_timer_fn)(struct loop_timer *t, void *data);

int loop_new(struct loop **ret);
void loop_free(struct loop *l);

/* Watches fd for events (EPOLLIN / EPOLLOUT). The fd stays the caller's. */
struct loop_source *loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_fn fn, void *data);
int loop_mod_fd(struct loop_source *src, uint32_t events);
/* Stops watching (NULL allowed). The caller closes the fd afterwards. */
void loop_remove(struct loop_source *src);

/* Calls fn once, after ms milliseconds. */
struct loop_timer *loop_add_timer(struct loop *l, uint64_t ms, loop_timer_fn fn, void *data);
void loop_cancel_timer(struct loop_timer *t); /* NULL allowed */

/* Runs until loop_quit(). Returns 0 or -errno of epoll_wait. */
int loop_run(struct loop *l);
void loop_quit(struct loop *l);

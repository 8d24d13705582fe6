/* What every service of berth-supervisor shares: errors on the wire,
 * deferring slow handlers to threads of their own, the time, and the
 * "supervisor" service (Version). */
#include <errno.h>
#include <stdarg.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "daemon.h"
#include "log.h"
#include "time-util.h"

#ifndef BERTH_REVISION
#define BERTH_REVISION ""
#endif

/* Deferred handlers in flight: the daemon waits for them before it frees
 * the server their calls belong to. One daemon per process. */
static pthread_mutex_t defer_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t defer_cond = PTHREAD_COND_INITIALIZER;
static unsigned defer_running;

static bool names_layer(const char *msg)
{
        static const char *const layers[] = { "supervisor:", "shim:", "ocirun:", "engine:" };
        for (size_t i = 0; i < ARRAY_SIZE(layers); i++)
                if (strncmp(msg, layers[i], strlen(layers[i])) == 0)
                        return true;
        return false;
}

void supervisor_fail(struct rpc_call *call, int r, const struct berr *e)
{
        int err = r < 0 ? -r : r;
        if (err == 0)
                err = e && e->err ? e->err : EIO;
        const char *msg = e && e->err && e->msg[0] ? e->msg : strerror(err);
        rpc_call_fail(call, rpc_code_from_errno(err), "%s%s", names_layer(msg) ? "" : "supervisor: ", msg);
}

void supervisor_fail_msg(struct rpc_call *call, int err, const char *fmt, ...)
{
        struct berr e = { .err = err };
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
        va_end(ap);
        supervisor_fail(call, -err, &e);
}

struct deferred {
        struct rpc_call *call;
        const ProtobufCMessage *request;
        struct supervisor *s;
        rpc_handler_fn fn;
};

static void *deferred_run(void *arg)
{
        struct deferred *d = arg;
        d->fn(d->call, d->request, d->s);
        free(d);
        pthread_mutex_lock(&defer_lock);
        /* the last slow call done: the daemon goes idle, give back what
         * pulls and unpacks took from the heap */
        if (--defer_running == 0)
                malloc_trim(0);
        pthread_cond_broadcast(&defer_cond);
        pthread_mutex_unlock(&defer_lock);
        return NULL;
}

void supervisor_defer(struct rpc_call *call, const ProtobufCMessage *request, struct supervisor *s,
                      rpc_handler_fn fn)
{
        struct deferred *d;
        int r;

        if (s->stopping) {
                rpc_call_fail(call, RPC_UNAVAILABLE, "supervisor: shutting down");
                return;
        }
        d = malloc(sizeof(*d));
        if (!d) {
                rpc_call_fail(call, RPC_UNAVAILABLE, "supervisor: out of memory");
                return;
        }
        *d = (struct deferred){ call, request, s, fn };
        pthread_mutex_lock(&defer_lock);
        defer_running++;
        pthread_mutex_unlock(&defer_lock);
        /* pulls and unpacks use libarchive and libcurl: more than a tiny
         * stack, far less than the 8 MiB default that would count in RSS
         * only when touched anyway */
        r = supervisor_thread(deferred_run, d, 512);
        if (r != 0) {
                free(d);
                pthread_mutex_lock(&defer_lock);
                defer_running--;
                pthread_cond_broadcast(&defer_cond);
                pthread_mutex_unlock(&defer_lock);
                rpc_call_fail(call, RPC_UNAVAILABLE, "supervisor: cannot start a thread: %s", strerror(r));
        }
}

int supervisor_thread(void *(*fn)(void *), void *arg, size_t stack_kb)
{
        pthread_attr_t attr;
        pthread_t t;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, stack_kb << 10);
        int r = pthread_create(&t, &attr, fn, arg);
        pthread_attr_destroy(&attr);
        return r;
}

int supervisor_defer_drain(int timeout_ms)
{
        struct timespec until;
        int r = 0;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&defer_lock);
        while (defer_running > 0 && r == 0)
                r = pthread_cond_timedwait(&defer_cond, &defer_lock, &until);
        unsigned left = defer_running;
        pthread_mutex_unlock(&defer_lock);
        return (int) left;
}

void supervisor_now(char *buf, size_t len)
{
        time_now_rfc3339_nano(buf, len);
}

static void h_version(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        struct supervisor *s = userdata;
        Berth__Supervisor__VersionResponse r = BERTH__SUPERVISOR__VERSION_RESPONSE__INIT;
        r.version = BERTH_VERSION;
        r.revision = BERTH_REVISION;
        r.pid = (uint32_t) getpid();
        r.root = s->root;
        r.exec_root = s->exec_root;
        r.snapshotter = (char *) snapshot_mode_string(snapshot_overlay_mode(s->sn));
        rpc_call_reply(call, &r.base);
}

const struct rpc_method supervisor_core_methods[] = {
        { "supervisor.Version", &berth__supervisor__version_request__descriptor,
          &berth__supervisor__version_response__descriptor, h_version },
};
const size_t supervisor_core_n_methods = ARRAY_SIZE(supervisor_core_methods);

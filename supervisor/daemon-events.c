/* The events socket: an nng pub socket on which every message is
 * "<topic>\0<Envelope>". nng's pub never waits for a subscriber: a message
 * that a slow subscriber has no room for is dropped for it. */
#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "listen-guard.h"
#include "log.h"

struct supervisor_events {
        nng_socket sock;
        struct listen_guard *guard;
};

int supervisor_events_open(struct supervisor *s, const char *url, struct berr *e)
{
        struct supervisor_events *ev = calloc(1, sizeof(*ev));
        int rv;
        if (!ev)
                return berr_set(e, ENOMEM, "events");
        if ((rv = nng_pub0_open(&ev->sock)) != 0) {
                free(ev);
                return berr_setx(e, EIO, "cannot open the events socket: %s", nng_strerror(rv));
        }
        if ((rv = listen_guard_start(ev->sock, url, NULL, &ev->guard, e)) < 0) {
                nng_close(ev->sock);
                free(ev);
                return rv;
        }
        s->events = ev;
        return 0;
}

void supervisor_events_close(struct supervisor *s)
{
        if (!s->events)
                return;
        listen_guard_stop(s->events->guard);
        nng_close(s->events->sock);
        listen_guard_free(s->events->guard);
        free(s->events);
        s->events = NULL;
}

void supervisor_publish(struct supervisor *s, const char *topic, Berth__Supervisor__Envelope *env)
{
        char ts[64];
        nng_msg *msg = NULL;
        size_t tlen = strlen(topic) + 1;
        int rv;

        if (!s->events)
                return;
        supervisor_now(ts, sizeof(ts));
        env->topic = (char *) topic;
        env->timestamp = ts;
        size_t len = berth__supervisor__envelope__get_packed_size(env);
        if (nng_msg_alloc(&msg, tlen + len) != 0) {
                log_debug("events: no memory for \"%s\"", topic);
                return;
        }
        memcpy(nng_msg_body(msg), topic, tlen);
        berth__supervisor__envelope__pack(env, (uint8_t *) nng_msg_body(msg) + tlen);
        if ((rv = nng_sendmsg(s->events->sock, msg, NNG_FLAG_NONBLOCK)) != 0) {
                log_debug("events: \"%s\" dropped: %s", topic, nng_strerror(rv));
                nng_msg_free(msg);
        }
}

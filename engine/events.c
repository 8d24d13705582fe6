/* Docker's events: what the engine did to containers and images, kept in
 * a ring of the latest ones (for ?since=) and streamed to /events clients
 * as they happen. */
#include "events.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "fs-util.h"
#include "log.h"
#include "time-util.h"

#define RING 1024

struct engine_events {
        pthread_mutex_t lock;
        pthread_cond_t added;
        json_t *ring[RING];
        uint64_t next;          /* sequence number of the next event */
};

int engine_events_init(struct engine *en)
{
        en->events = calloc(1, sizeof(*en->events));
        if (!en->events)
                return -ENOMEM;
        pthread_mutex_init(&en->events->lock, NULL);
        pthread_cond_init(&en->events->added, NULL);
        return 0;
}

void engine_events_free(struct engine *en)
{
        if (!en->events)
                return;
        for (size_t i = 0; i < RING; i++)
                json_decref(en->events->ring[i]);
        free(en->events);
        en->events = NULL;
}

void engine_event(struct engine *en, const char *type, const char *action, const char *id, json_t *attrs)
{
        struct engine_events *ev = en->events;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        if (!attrs)
                attrs = json_object();
        json_t *j = json_pack("{s:s, s:s, s:{s:s, s:o}, s:s, s:I, s:I}", "Type", type, "Action", action, "Actor", "ID",
                              id ? id : "", "Attributes", attrs, "scope", "local", "time", (json_int_t) ts.tv_sec,
                              "timeNano", (json_int_t) ts.tv_sec * 1000000000 + ts.tv_nsec);
        if (!j)
                return;
        /* the older fields, still read by clients */
        if (!strcmp(type, "container") || !strcmp(type, "image")) {
                json_object_set_new(j, "status", json_string(action));
                json_object_set_new(j, "id", json_string(id ? id : ""));
                const char *from = json_string_value(json_object_get(json_object_get(json_object_get(j, "Actor"),
                                                                                     "Attributes"),
                                                                     "image"));
                if (from)
                        json_object_set_new(j, "from", json_string(from));
        }
        pthread_mutex_lock(&ev->lock);
        json_decref(ev->ring[ev->next % RING]);
        ev->ring[ev->next % RING] = j;
        ev->next++;
        pthread_cond_broadcast(&ev->added);
        pthread_mutex_unlock(&ev->lock);
}


/* A filter of /events: {"type":{"container":true},"container":{"name":true},"event":{"die":true},...} */
static bool match_one(json_t *values, const char *v)
{
        if (!values)
                return true;
        if (!v)
                return false;
        const char *k;
        json_t *x;
        size_t i;
        if (json_is_object(values)) {
                json_object_foreach(values, k, x) if (!strcmp(k, v)) return true;
        } else {
                json_array_foreach(values, i, x) if (json_string_value(x) && !strcmp(json_string_value(x), v)) return true;
        }
        return false;
}

static bool match_prefix_or_name(json_t *values, const char *id, const char *name)
{
        if (!values)
                return true;
        const char *k;
        json_t *x;
        size_t i;
        if (json_is_object(values)) {
                json_object_foreach(values, k, x)
                {
                        if ((id && *k && !strncmp(id, k, strlen(k))) || (name && !strcmp(name, k)))
                                return true;
                }
        } else {
                json_array_foreach(values, i, x)
                {
                        const char *s = json_string_value(x);
                        if (s && ((id && *s && !strncmp(id, s, strlen(s))) || (name && !strcmp(name, s))))
                                return true;
                }
        }
        return false;
}

static bool matches(json_t *filters, json_t *e)
{
        if (!filters)
                return true;
        const char *type = json_string_value(json_object_get(e, "Type"));
        json_t *actor = json_object_get(e, "Actor");
        json_t *attrs = json_object_get(actor, "Attributes");
        const char *id = json_string_value(json_object_get(actor, "ID"));
        const char *name = json_string_value(json_object_get(attrs, "name"));
        if (!match_one(json_object_get(filters, "type"), type))
                return false;
        /* "exec_create: sh -c ..." matches event=exec_create too, as with dockerd */
        const char *action = json_string_value(json_object_get(e, "Action"));
        char verb[32];
        snprintf(verb, sizeof(verb), "%.*s", (int) strcspn(action ? action : "", ":"), action ? action : "");
        if (!match_one(json_object_get(filters, "event"), action) &&
            !(action && strchr(action, ':') && match_one(json_object_get(filters, "event"), verb)))
                return false;
        json_t *cf = json_object_get(filters, "container");
        if (cf && (strcmp(type, "container") || !match_prefix_or_name(cf, id, name)))
                return false;
        json_t *imf = json_object_get(filters, "image");
        if (imf && !match_prefix_or_name(imf, json_string_value(json_object_get(attrs, "image")), NULL) &&
            !(!strcmp(type, "image") && match_prefix_or_name(imf, id, NULL)))
                return false;
        json_t *lf = json_object_get(filters, "label");
        if (lf) {
                const char *k;
                json_t *x;
                size_t i;
                bool ok = true;
                json_t *vals = json_is_object(lf) ? NULL : lf;
                if (json_is_object(lf)) {
                        json_object_foreach(lf, k, x)
                        {
                                const char *eq = strchr(k, '=');
                                char key[256];
                                snprintf(key, sizeof(key), "%.*s", eq ? (int) (eq - k) : (int) strlen(k), k);
                                const char *have = json_string_value(json_object_get(attrs, key));
                                ok = ok && have && (!eq || !strcmp(have, eq + 1));
                        }
                } else {
                        json_array_foreach(vals, i, x)
                        {
                                const char *s = json_string_value(x) ?: "";
                                const char *eq = strchr(s, '=');
                                char key[256];
                                snprintf(key, sizeof(key), "%.*s", eq ? (int) (eq - s) : (int) strlen(s), s);
                                const char *have = json_string_value(json_object_get(attrs, key));
                                ok = ok && have && (!eq || !strcmp(have, eq + 1));
                        }
                }
                if (!ok)
                        return false;
        }
        return true;
}

struct stream {
        struct engine *en;
        int fd;
        json_t *filters;
        int64_t since_ns;       /* -1: none */
        int64_t until_ns;       /* -1: none */
};

static int64_t event_ns(json_t *e)
{
        return (int64_t) json_integer_value(json_object_get(e, "timeNano"));
}

static int send_event(struct stream *s, json_t *e)
{
        char *t = json_dumps(e, JSON_COMPACT);
        if (!t)
                return 0;
        size_t n = strlen(t);
        t[n] = '\n';
        int r = fs_write_all(s->fd, t, n + 1);
        free(t);
        return r;
}

static void stream_release(void *arg)
{
        struct stream *s = arg;
        json_decref(s->filters);
        free(s);
}

static void *stream_thread(void *arg)
{
        struct stream *s = arg;
        struct engine_events *ev = s->en->events;
        pthread_mutex_lock(&ev->lock);
        uint64_t pos = ev->next;
        if (s->since_ns >= 0) {
                /* the backlog still in the ring */
                uint64_t first = ev->next > RING ? ev->next - RING : 0;
                for (pos = first; pos < ev->next; pos++) {
                        json_t *e = ev->ring[pos % RING];
                        if (event_ns(e) < s->since_ns)
                                continue;
                        if (s->until_ns >= 0 && event_ns(e) > s->until_ns)
                                continue;
                        if (!matches(s->filters, e))
                                continue;
                        json_incref(e);
                        pthread_mutex_unlock(&ev->lock);
                        int r = send_event(s, e);
                        json_decref(e);
                        pthread_mutex_lock(&ev->lock);
                        if (r < 0)
                                goto out;
                }
        }
        for (;;) {
                struct timespec now;
                clock_gettime(CLOCK_REALTIME, &now);
                int64_t now_ns = (int64_t) now.tv_sec * 1000000000 + now.tv_nsec;
                if (s->until_ns >= 0 && now_ns >= s->until_ns)
                        break;
                while (pos < ev->next) {
                        if (ev->next - pos > RING)
                                pos = ev->next - RING; /* a slow reader loses the oldest */
                        json_t *e = json_incref(ev->ring[pos % RING]);
                        pos++;
                        bool ok = matches(s->filters, e) && (s->until_ns < 0 || event_ns(e) <= s->until_ns);
                        pthread_mutex_unlock(&ev->lock);
                        int r = ok ? send_event(s, e) : 0;
                        json_decref(e);
                        pthread_mutex_lock(&ev->lock);
                        if (r < 0)
                                goto out;
                }
                /* a client that went away ends the stream */
                struct pollfd p = { s->fd, 0, 0 };
                if (poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP)))
                        break;
                struct timespec dl = now;
                dl.tv_sec += 1;
                if (s->until_ns >= 0 && s->until_ns < (int64_t) dl.tv_sec * 1000000000 + dl.tv_nsec) {
                        dl.tv_sec = (time_t) (s->until_ns / 1000000000);
                        dl.tv_nsec = (long) (s->until_ns % 1000000000);
                }
                pthread_cond_timedwait(&ev->added, &ev->lock, &dl);
        }
out:
        pthread_mutex_unlock(&ev->lock);
        close(s->fd);
        json_decref(s->filters);
        free(s);
        return NULL;
}

/* unix seconds with an optional fraction, or RFC 3339; -1 when absent */
static int parse_ts(const char *v, int64_t *ret)
{
        *ret = -1;
        if (!v || !*v)
                return 0;
        char *end;
        double d = strtod(v, &end);
        if (*end == '\0') {
                *ret = (int64_t) (d * 1e9);
                return 0;
        }
        struct timespec ts;
        if (time_parse_rfc3339(v, &ts) < 0)
                return -EINVAL;
        *ret = (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
        return 0;
}

static enum MHD_Result events(struct http_request *r)
{
        struct stream *s = calloc(1, sizeof(*s));
        if (!s)
                return MHD_NO;
        s->en = r->engine;
        s->fd = -1;
        if (parse_ts(http_query(r, "since"), &s->since_ns) < 0 || parse_ts(http_query(r, "until"), &s->until_ns) < 0) {
                free(s);
                return http_reply_error(r, 400, "since and until take unix timestamps or RFC 3339 times");
        }
        const char *f = http_query(r, "filters");
        if (f && *f) {
                json_error_t jerr;
                if (!(s->filters = json_loads(f, 0, &jerr)) || !json_is_object(s->filters)) {
                        json_decref(s->filters);
                        free(s);
                        return http_reply_error(r, 400, "invalid filters: %s", jerr.text);
                }
        }
        return engine_reply_streamed(r, "application/json", &s->fd, stream_thread, s, 128, stream_release);
}

const struct http_route engine_event_routes[] = {
        { "GET", "/events", events, 0 },
};
const size_t engine_event_n_routes = sizeof(engine_event_routes) / sizeof(engine_event_routes[0]);

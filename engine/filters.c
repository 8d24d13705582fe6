/* Docker's filters query parameter (filters.h). */
#include "filters.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "http.h"
#include "json-util.h"
#include "time-util.h"

int filters_parse(const char *query, const char *const *accepted, json_t **ret, char *err, size_t errlen)
{
        json_t *out = json_object();
        *ret = NULL;
        if (!out)
                return -ENOMEM;
        if (!query || !*query) {
                *ret = out;
                return 0;
        }
        json_error_t jerr;
        _cleanup_json_ json_t *in = json_loads(query, 0, &jerr);
        if (!json_is_object(in)) {
                snprintf(err, errlen, "invalid filters: %s", in ? "an object is expected" : jerr.text);
                json_decref(out);
                return -EINVAL;
        }
        const char *k;
        json_t *v;
        json_object_foreach(in, k, v)
        {
                bool ok = false;
                for (const char *const *a = accepted; *a && !ok; a++)
                        ok = !strcmp(*a, k);
                if (!ok) {
                        snprintf(err, errlen, "Invalid filter '%s'", k);
                        json_decref(out);
                        return -EINVAL;
                }
                json_t *vals = json_array();
                json_object_set_new(out, k, vals);
                const char *vk;
                json_t *vv;
                size_t i;
                if (json_is_object(v)) {
                        json_object_foreach(v, vk, vv) if (json_is_true(vv)) json_array_append_new(vals, json_string(vk));
                } else if (json_is_array(v)) {
                        json_array_foreach(v, i, vv) if (json_is_string(vv)) json_array_append(vals, vv);
                } else {
                        snprintf(err, errlen, "invalid filters: the values of '%s' must be a list", k);
                        json_decref(out);
                        return -EINVAL;
                }
        }
        *ret = out;
        return 0;
}

bool filters_label_match(json_t *labels, const char *f)
{
        const char *eq = strchr(f, '=');
        if (!eq)
                return json_object_get(labels, f) != NULL;
        _cleanup_free_ char *k = strndup(f, (size_t) (eq - f));
        const char *val = k ? json_string_value(json_object_get(labels, k)) : NULL;
        return val && !strcmp(val, eq + 1);
}

/* A Go duration ("90s", "1h30m", "1.5h", "250ms"): seconds, or -1. */
static double go_duration(const char *s)
{
        static const struct {
                const char *unit;
                double secs;
        } units[] = { { "ns", 1e-9 }, { "us", 1e-6 }, { "ms", 1e-3 }, { "s", 1 }, { "m", 60 }, { "h", 3600 } };
        double total = 0;
        if (!*s)
                return -1;
        while (*s) {
                char *end;
                double n = strtod(s, &end);
                if (end == s || n < 0)
                        return -1;
                size_t best = 0, best_len = 0;
                for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                        size_t l = strlen(units[i].unit);
                        if (strncmp(end, units[i].unit, l) == 0 && l > best_len) {
                                best = i;
                                best_len = l;
                        }
                }
                if (!best_len)
                        return -1;
                total += n * units[best].secs;
                s = end + best_len;
        }
        return total;
}

/* until: a Unix time (seconds, with an optional fraction), an RFC 3339
 * time, or a duration before now. */
static int parse_until(const char *s, struct timespec *ret)
{
        char *end;
        double secs = strtod(s, &end);
        if (end != s && !*end) {
                ret->tv_sec = (time_t) secs;
                ret->tv_nsec = (long) ((secs - (double) ret->tv_sec) * 1e9);
                return 0;
        }
        if (time_parse_rfc3339(s, ret) == 0)
                return 0;
        double d = go_duration(s);
        if (d < 0)
                return -EINVAL;
        clock_gettime(CLOCK_REALTIME, ret);
        ret->tv_sec -= (time_t) d;
        return 0;
}

int filters_prune_match(json_t *f, const char *created, json_t *labels, bool *ret, char *err, size_t errlen)
{
        json_t *until = json_object_get(f, "until");
        *ret = false;
        if (json_array_size(until) > 1) {
                snprintf(err, errlen, "more than one until filter");
                return -EINVAL;
        }
        if (json_array_size(until) == 1) {
                const char *u = json_string_value(json_array_get(until, 0)) ?: "";
                struct timespec t, c;
                if (parse_until(u, &t) < 0) {
                        snprintf(err, errlen, "invalid until filter \"%s\": a time or a duration (like 10m) is needed",
                                 u);
                        return -EINVAL;
                }
                if (!created || time_parse_rfc3339(created, &c) < 0 || c.tv_sec > t.tv_sec ||
                    (c.tv_sec == t.tv_sec && c.tv_nsec >= t.tv_nsec))
                        return 0;
        }
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(f, "label"), i, v) if (!filters_label_match(labels, json_string_value(v) ?: ""))
                return 0;
        /* label!: out when all of them match (dockerd's MatchKVList) */
        json_t *neg = json_object_get(f, "label!");
        bool all = json_array_size(neg) > 0;
        json_array_foreach(neg, i, v) all = all && filters_label_match(labels, json_string_value(v) ?: "");
        *ret = !all;
        return 0;
}

int filters_from_query(struct http_request *r, const char *const *accepted, bool prune, json_t **ret)
{
        char err[256];
        int rc = filters_parse(http_query(r, "filters"), accepted, ret, err, sizeof(err));
        bool pass;
        if (rc == 0 && prune && (rc = filters_prune_match(*ret, NULL, NULL, &pass, err, sizeof(err))) < 0) {
                json_decref(*ret);
                *ret = NULL;
        }
        if (rc < 0)
                http_reply_error(r, rc == -EINVAL ? 400 : 500, "%s", rc == -EINVAL ? err : strerror(-rc));
        return rc;
}

/* Docker's filters query parameter, as the list, prune and events
 * endpoints read it (filters.c). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Parses a filters query, in either encoding ({"k": ["v"]} or
 * {"k": {"v": true}}), to {"k": ["v", ...]} (*ret: a new reference; an empty
 * object for NULL or ""). Keys outside accepted (NULL-terminated) are
 * refused as dockerd refuses them: -EINVAL with the message in err. */
int filters_parse(const char *query, const char *const *accepted, json_t **ret, char *err, size_t errlen);
/* label filter f ("k" or "k=v") against a labels object. */
bool filters_label_match(json_t *labels, const char *f);
/* The prune filters of f (as filters_parse gives them): until (a Unix
 * time, an RFC 3339 time or a duration before now, like 10m; only what was
 * created before it), label (all must match) and label! (out when all of
 * them match, as dockerd). -EINVAL with the message in err for a bad
 * until. *ret: whether something created at created (RFC 3339) with
 * labels passes. */
int filters_prune_match(json_t *f, const char *created, json_t *labels, bool *ret, char *err, size_t errlen);

struct http_request;
/* filters_parse of r's filters query; with prune, the until filter is
 * checked too. On failure the reply (400) has been queued. */
int filters_from_query(struct http_request *r, const char *const *accepted, bool prune, json_t **ret);

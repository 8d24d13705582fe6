/* JSON helpers over jansson: loading with clear errors, typed field access
 * that names the offending field, and atomic writes. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"

/* jansson provides json_decrefp() */
#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))

/* Loads a JSON document of at most max bytes. Errors name the file and, for
 * syntax errors, the line and column. */
int json_load_path(const char *path, size_t max, json_t **ret, struct berr *e);

/* Serializes j (flags as json_dumps) plus a newline and writes it atomically. */
int json_write_atomic(const char *path, const json_t *j, size_t flags, mode_t mode);
/* fs_flags: FS_WRITE_DURABLE or 0, see fs_write_atomic_ex(). */
int json_write_atomic_ex(const char *path, const json_t *j, size_t flags, mode_t mode, int fs_flags);

/* Typed getters. A missing key (or JSON null) leaves *ret untouched and
 * returns 0; a key of the wrong type fails with -EINVAL and a message such
 * as "process.args must be an array of strings". where names the object
 * ("process"), key the member. */
int json_get_string(const json_t *o, const char *where, const char *key, const char **ret, struct berr *e);
int json_get_bool(const json_t *o, const char *where, const char *key, bool *ret, struct berr *e);
int json_get_int64(const json_t *o, const char *where, const char *key, int64_t *ret, struct berr *e);
/* Integer in [0, UINT32_MAX]. */
int json_get_uint32(const json_t *o, const char *where, const char *key, uint32_t *ret, struct berr *e);
int json_get_object(const json_t *o, const char *where, const char *key, json_t **ret, struct berr *e);
int json_get_array(const json_t *o, const char *where, const char *key, json_t **ret, struct berr *e);
/* Array of strings → NULL-terminated, heap-allocated copy (free with strv_free). */
int json_get_strv(const json_t *o, const char *where, const char *key, char ***ret, struct berr *e);

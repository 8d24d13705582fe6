#include "json-util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "fs-util.h"

int json_load_path(const char *path, size_t max, json_t **ret, struct berr *e)
{
        _cleanup_free_ char *data = NULL;
        size_t len;
        json_error_t jerr;

        int r = fs_read_file(path, max, &data, &len);
        if (r == -EFBIG)
                return berr_setx(e, EFBIG, "\"%s\" is larger than %zu bytes", path, max);
        if (r < 0)
                return berr_set(e, r, "cannot read \"%s\"", path);

        json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!j)
                return berr_setx(e, EINVAL, "invalid JSON in \"%s\" at line %d column %d: %s", path, jerr.line,
                                 jerr.column, jerr.text);
        *ret = j;
        return 0;
}

int json_write_atomic(const char *path, const json_t *j, size_t flags, mode_t mode)
{
        return json_write_atomic_ex(path, j, flags, mode, FS_WRITE_DURABLE);
}

int json_write_atomic_ex(const char *path, const json_t *j, size_t flags, mode_t mode, int fs_flags)
{
        _cleanup_free_ char *s = json_dumps(j, flags);
        if (!s)
                return -ENOMEM;
        size_t len = strlen(s);
        _cleanup_free_ char *buf = malloc(len + 2);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, s, len);
        buf[len] = '\n';
        return fs_write_atomic_ex(path, buf, len + 1, mode, fs_flags);
}

static json_t *member(const json_t *o, const char *key)
{
        json_t *v = json_object_get(o, key);
        return json_is_null(v) ? NULL : v;
}

static int wrong_type(struct berr *e, const char *where, const char *key, const char *what)
{
        if (where && *where)
                return berr_setx(e, EINVAL, "%s.%s must be %s", where, key, what);
        return berr_setx(e, EINVAL, "%s must be %s", key, what);
}

int json_get_string(const json_t *o, const char *where, const char *key, const char **ret, struct berr *e)
{
        json_t *v = member(o, key);
        if (!v)
                return 0;
        if (!json_is_string(v))
                return wrong_type(e, where, key, "a string");
        *ret = json_string_value(v);
        return 0;
}

int json_get_bool(const json_t *o, const char *where, const char *key, bool *ret, struct berr *e)
{
        json_t *v = member(o, key);
        if (!v)
                return 0;
        if (!json_is_boolean(v))
                return wrong_type(e, where, key, "a boolean");
        *ret = json_is_true(v);
        return 0;
}

int json_get_int64(const json_t *o, const char *where, const char *key, int64_t *ret, struct berr *e)
{
        json_t *v = member(o, key);
        if (!v)
                return 0;
        if (!json_is_integer(v))
                return wrong_type(e, where, key, "an integer");
        *ret = (int64_t) json_integer_value(v);
        return 0;
}

int json_get_uint32(const json_t *o, const char *where, const char *key, uint32_t *ret, struct berr *e)
{
        json_t *v = member(o, key);
        if (!v)
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (json_int_t) UINT32_MAX)
                return wrong_type(e, where, key, "an integer from 0 to 4294967295");
        *ret = (uint32_t) json_integer_value(v);
        return 0;
}

int json_get_object(const json_t *o, const char *where, const char *key, json_t **ret, struct berr *e)
{
        json_t *v = member(o, key);
        if (!v)
                return 0;
        if (!json_is_object(v))
                return wrong_type(e, where, key, "an object");
        *ret = v;
        return 0;
}

int json_get_array(const json_t *o, const char *where, const char *key, json_t **ret, struct berr *e)
{
        json_t *v = member(o, key);
        if (!v)
                return 0;
        if (!json_is_array(v))
                return wrong_type(e, where, key, "an array");
        *ret = v;
        return 0;
}

int json_get_strv(const json_t *o, const char *where, const char *key, char ***ret, struct berr *e)
{
        json_t *v = member(o, key);
        if (!v)
                return 0;
        if (!json_is_array(v))
                return wrong_type(e, where, key, "an array of strings");

        size_t n = json_array_size(v);
        _cleanup_strv_free_ char **out = calloc(n + 1, sizeof(char *));
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_t *s = json_array_get(v, i);
                if (!json_is_string(s))
                        return wrong_type(e, where, key, "an array of strings");
                out[i] = strdup(json_string_value(s));
                if (!out[i])
                        return -ENOMEM;
        }
        strv_free(*ret);
        *ret = TAKE_PTR(out);
        return 0;
}

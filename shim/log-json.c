#include "log-json.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct stream_buf {
        char data[JLOG_MAX_LINE];
        size_t len;
};

struct jlog {
        char *path;
        int fd;
        uint64_t size;
        struct jlog_opts opt;
        struct stream_buf pending[2];
        /* entries formatted for one write(2) */
        char *out;
        size_t out_len, out_cap;
};

static const char *const stream_names[] = { "stdout", "stderr" };

static int parse_size(const char *v, uint64_t *ret)
{
        char *end;
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (errno || end == v)
                return -EINVAL;
        uint64_t mult = 1;
        /* Docker's units.RAMInBytes: binary multiples, optional "b"/"ib" */
        switch (*end) {
        case 'k':
        case 'K':
                mult = 1024;
                end++;
                break;
        case 'm':
        case 'M':
                mult = 1024 * 1024;
                end++;
                break;
        case 'g':
        case 'G':
                mult = 1024ull * 1024 * 1024;
                end++;
                break;
        default:
                break;
        }
        if (*end == 'i' || *end == 'I')
                end++;
        if (*end == 'b' || *end == 'B')
                end++;
        if (*end || n > UINT64_MAX / mult)
                return -EINVAL;
        *ret = n * mult;
        return 0;
}

int jlog_parse_opt(struct jlog_opts *o, const char *kv, struct berr *e)
{
        const char *eq = strchr(kv, '=');
        if (!eq)
                return berr_setx(e, EINVAL, "log option \"%s\" is not key=value", kv);
        size_t klen = (size_t) (eq - kv);
        const char *v = eq + 1;
        if (klen == 8 && strncmp(kv, "max-size", 8) == 0) {
                uint64_t n;
                if (parse_size(v, &n) < 0 || n == 0)
                        return berr_setx(e, EINVAL, "invalid max-size \"%s\"", v);
                o->max_size = n;
                return 0;
        }
        if (klen == 8 && strncmp(kv, "max-file", 8) == 0) {
                char *end;
                unsigned long n = strtoul(v, &end, 10);
                if (*end || end == v || n < 1 || n > 1000)
                        return berr_setx(e, EINVAL, "invalid max-file \"%s\" (1 to 1000)", v);
                o->max_file = (unsigned) n;
                return 0;
        }
        return berr_setx(e, EINVAL, "unknown log option \"%.*s\" (known: max-size, max-file)", (int) klen, kv);
}

static int open_log(struct jlog *l, struct berr *e)
{
        l->fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (l->fd < 0)
                return berr_set(e, errno, "cannot open log \"%s\"", l->path);
        struct stat st;
        l->size = fstat(l->fd, &st) == 0 ? (uint64_t) st.st_size : 0;
        return 0;
}

int jlog_open(const char *path, const struct jlog_opts *o, struct jlog **ret, struct berr *e)
{
        struct jlog *l = calloc(1, sizeof(*l));
        if (!l || !(l->path = strdup(path))) {
                free(l);
                return berr_set(e, ENOMEM, "log \"%s\"", path);
        }
        l->fd = -1;
        if (o)
                l->opt = *o;
        if (l->opt.max_file < 1)
                l->opt.max_file = 1;
        int r = open_log(l, e);
        if (r < 0) {
                free(l->path);
                free(l);
                return r;
        }
        *ret = l;
        return 0;
}

void jlog_close(struct jlog *l)
{
        if (!l)
                return;
        if (l->fd >= 0)
                close(l->fd);
        free(l->out);
        free(l->path);
        free(l);
}

uint64_t jlog_size(const struct jlog *l)
{
        return l->size;
}

/* The proleptic Gregorian date of day z since 1970-01-01 (Howard Hinnant's
 * civil_from_days). Not gmtime_r: in the static shim that links glibc's
 * time zone code, and with it scanf, for a conversion that is UTC only. */
static void civil_from_days(int64_t z, int64_t *year, unsigned *month, unsigned *day)
{
        z += 719468;
        int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        unsigned doe = (unsigned) (z - era * 146097);
        unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        unsigned mp = (5 * doy + 2) / 153;
        *day = doy - (153 * mp + 2) / 5 + 1;
        *month = mp < 10 ? mp + 3 : mp - 9;
        *year = (int64_t) yoe + era * 400 + (*month <= 2);
}

char *jlog_time(const struct timespec *ts, char *buf, size_t len)
{
        int64_t days = ts->tv_sec / 86400, secs = ts->tv_sec % 86400, year;
        unsigned month, day;
        char frac[16] = "";
        if (secs < 0)
                secs += 86400, days--;
        civil_from_days(days, &year, &month, &day);
        /* Go's RFC 3339 has four-digit years only */
        if (year < 0 || year > 9999) {
                if (len)
                        buf[0] = '\0';
                return buf;
        }
        long ns = ts->tv_nsec;
        if (ns > 0) {
                int digits = 9;
                while (ns % 10 == 0) {
                        ns /= 10;
                        digits--;
                }
                snprintf(frac, sizeof(frac), ".%0*ld", digits, ns);
        }
        snprintf(buf, len, "%04d-%02u-%02uT%02u:%02u:%02u%sZ", (int) year, month, day, (unsigned) (secs / 3600),
                 (unsigned) (secs / 60 % 60), (unsigned) (secs % 60), frac);
        return buf;
}

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
        unsigned c = p[0];
        size_t len;
        unsigned min;
        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                len = 2, min = 0x80;
        else if (c >= 0xe0 && c <= 0xef)
                len = 3, min = 0x800;
        else if (c >= 0xf0 && c <= 0xf4)
                len = 4, min = 0x10000;
        else
                return 0;
        if (n < len)
                return 0;
        unsigned cp = c & (0xff >> (len + 1));
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return len;
}

/* Bytes copied as they are: printable ASCII except " \\ < > &. */
static const unsigned char plain[256] = {
        [' '] = 1, ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['\''] = 1, ['('] = 1, [')'] = 1, ['*'] = 1,
        ['+'] = 1, [','] = 1, ['-'] = 1, ['.'] = 1, ['/'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1,
        ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1, [':'] = 1, [';'] = 1, ['='] = 1,
        ['?'] = 1, ['@'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1,
        ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
        ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1,
        ['Z'] = 1, ['['] = 1, [']'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,
        ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
        ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
        ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1, ['{'] = 1, ['|'] = 1, ['}'] = 1, ['~'] = 1,
        [0x7f] = 1,
};

size_t jlog_escape(char *buf, const void *data, size_t len)
{
        static const char hex[] = "0123456789abcdef";
        const unsigned char *p = data;
        char *o = buf;
        *o++ = '"';
        for (size_t i = 0; i < len;) {
                /* the common case: a run of plain bytes, copied at once */
                size_t run = i;
                while (run < len && plain[p[run]])
                        run++;
                if (run > i) {
                        memcpy(o, p + i, run - i);
                        o += run - i;
                        i = run;
                        continue;
                }
                unsigned char c = p[i];
                if (c < 0x80) {
                        *o++ = '\\';
                        switch (c) {
                        case '"':
                        case '\\':
                                *o++ = (char) c;
                                break;
                        case '\n':
                                *o++ = 'n';
                                break;
                        case '\r':
                                *o++ = 'r';
                                break;
                        case '\t':
                                *o++ = 't';
                                break;
                        default: /* other controls and <, >, & */
                                *o++ = 'u';
                                *o++ = '0';
                                *o++ = '0';
                                *o++ = hex[c >> 4];
                                *o++ = hex[c & 0xf];
                                break;
                        }
                        i++;
                        continue;
                }
                size_t n = utf8_len(p + i, len - i);
                if (n == 0) {
                        memcpy(o, "\\ufffd", 6);
                        o += 6;
                        i++;
                        continue;
                }
                /* U+2028 and U+2029 are escaped by Go for JavaScript's sake */
                if (n == 3 && c == 0xe2 && p[i + 1] == 0x80 && (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
                        memcpy(o, p[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
                        o += 6;
                } else {
                        memcpy(o, p + i, n);
                        o += n;
                }
                i += n;
        }
        *o++ = '"';
        return (size_t) (o - buf);
}

static int out_reserve(struct jlog *l, size_t more)
{
        if (l->out_len + more <= l->out_cap)
                return 0;
        size_t cap = l->out_cap ? l->out_cap : 65536;
        while (cap < l->out_len + more)
                cap *= 2;
        char *n = realloc(l->out, cap);
        if (!n)
                return -ENOMEM;
        l->out = n;
        l->out_cap = cap;
        return 0;
}

/* Shifts path.(n-1) → path.n ... path → path.1 and starts a new file. */
static int rotate(struct jlog *l, struct berr *e)
{
        if (l->opt.max_file <= 1) {
                if (ftruncate(l->fd, 0) < 0)
                        return berr_set(e, errno, "cannot truncate log \"%s\"", l->path);
                l->size = 0;
                return 0;
        }
        size_t plen = strlen(l->path) + 16;
        char *from = malloc(plen), *to = malloc(plen);
        int r = 0;
        if (!from || !to) {
                r = berr_set(e, ENOMEM, "rotating log \"%s\"", l->path);
                goto out;
        }
        for (unsigned i = l->opt.max_file - 1; i >= 1; i--) {
                snprintf(to, plen, "%s.%u", l->path, i);
                if (i == 1)
                        snprintf(from, plen, "%s", l->path);
                else
                        snprintf(from, plen, "%s.%u", l->path, i - 1);
                if (rename(from, to) < 0 && errno != ENOENT) {
                        r = berr_set(e, errno, "cannot rotate log \"%s\" to \"%s\"", from, to);
                        goto out;
                }
        }
        close(l->fd);
        l->fd = -1;
        r = open_log(l, e);
out:
        free(from);
        free(to);
        return r;
}

static int write_out(struct jlog *l, struct berr *e)
{
        size_t done = 0;
        int r = 0;
        if (l->fd < 0 && (r = open_log(l, e)) < 0) {
                l->out_len = 0;
                return r;
        }
        while (done < l->out_len) {
                ssize_t n = write(l->fd, l->out + done, l->out_len - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = berr_set(e, errno, "cannot write log \"%s\"", l->path);
                        break;
                }
                done += (size_t) n;
        }
        if (r < 0 && done > 0) {
                /* keep the file whole lines: drop the part that made it (if
                 * even that fails, a reader skips one torn line) */
                if (ftruncate(l->fd, (off_t) l->size) == 0)
                        done = 0;
        }
        l->size += done;
        l->out_len = 0;
        return r;
}

/* What follows the "log" string of every entry of one write: the stream
 * and the time (formatted once, not per line). */
struct tail {
        char text[96];
        size_t len;
};

static void make_tail(struct tail *t, enum jlog_stream s, const struct timespec *now)
{
        char ts[48];
        jlog_time(now, ts, sizeof(ts));
        int n = snprintf(t->text, sizeof(t->text), ",\"stream\":\"%s\",\"time\":\"%s\"}\n", stream_names[s], ts);
        t->len = n > 0 && (size_t) n < sizeof(t->text) ? (size_t) n : 0;
}

/* Formats one entry into the out buffer, writing out first when the entry
 * would cross max-size. */
static int emit(struct jlog *l, const char *data, size_t len, const struct tail *t, struct berr *e)
{
        size_t need = 6 * len + 2 + 7 + t->len;
        int r = 0;
        if (out_reserve(l, need) < 0)
                return berr_set(e, ENOMEM, "log entry of %zu bytes", len);
        char *start = l->out + l->out_len;
        char *p = start;
        memcpy(p, "{\"log\":", 7);
        p += 7;
        p += jlog_escape(p, data, len);
        memcpy(p, t->text, t->len);
        p += t->len;
        size_t entry = (size_t) (p - start);

        if (l->opt.max_size && l->size + l->out_len + entry > l->opt.max_size && l->size + l->out_len > 0) {
                /* write what precedes this entry, then rotate */
                if (l->out_len > 0) {
                        char *keep = malloc(entry);
                        if (!keep)
                                return berr_set(e, ENOMEM, "log entry");
                        memcpy(keep, start, entry);
                        r = write_out(l, e);
                        memcpy(l->out, keep, entry);
                        free(keep);
                }
                int rr = rotate(l, r < 0 ? NULL : e);
                if (r == 0)
                        r = rr;
        }
        l->out_len += entry;
        return r;
}

static int feed(struct jlog *l, enum jlog_stream s, const char *data, size_t len, const struct tail *t,
                struct berr *e)
{
        struct stream_buf *b = &l->pending[s];
        int r = 0, rr;
        while (len > 0) {
                const char *nl = memchr(data, '\n', len);
                size_t take = nl ? (size_t) (nl - data) + 1 : len;
                size_t room = JLOG_MAX_LINE - b->len;
                if (take > room)
                        take = room, nl = NULL;
                if (b->len == 0 && (nl || take == JLOG_MAX_LINE)) {
                        /* a whole entry straight from the input */
                        rr = emit(l, data, take, t, e);
                } else {
                        memcpy(b->data + b->len, data, take);
                        b->len += take;
                        rr = 0;
                        if (nl || b->len == JLOG_MAX_LINE) {
                                rr = emit(l, b->data, b->len, t, e);
                                b->len = 0;
                        }
                }
                if (rr < 0 && r == 0)
                        r = rr;
                data += take;
                len -= take;
        }
        return r;
}

int jlog_write(struct jlog *l, enum jlog_stream s, const void *data, size_t len, const struct timespec *now,
               struct berr *e)
{
        struct tail t;
        make_tail(&t, s, now);
        int r = feed(l, s, data, len, &t, e);
        int rw = l->out_len ? write_out(l, r < 0 ? NULL : e) : 0;
        return r < 0 ? r : rw;
}

int jlog_finish(struct jlog *l, enum jlog_stream s, const struct timespec *now, struct berr *e)
{
        struct stream_buf *b = &l->pending[s];
        if (b->len == 0)
                return 0;
        struct tail t;
        make_tail(&t, s, now);
        int r = emit(l, b->data, b->len, &t, e);
        b->len = 0;
        int rw = l->out_len ? write_out(l, r < 0 ? NULL : e) : 0;
        return r < 0 ? r : rw;
}

/* Docker's json-file log format, written by the shim.
 *
 * One JSON object per line: {"log":"<text>","stream":"stdout","time":"<RFC
 * 3339, nanoseconds, trailing zeros trimmed as Go does>"}. Output is cut as
 * Docker's copier cuts it: each line (with its "\n") is one entry; a line
 * longer than 16 KiB becomes entries of 16 KiB without "\n" (partial)
 * followed by the rest; what is left when a stream ends is written without
 * "\n". Strings are escaped like Go's encoding/json (<, >, & as \u003c ...,
 * invalid UTF-8 as \ufffd), so the file reads the same as Docker's.
 *
 * Rotation (max-size / max-file) follows Docker: before an entry that would
 * make the file larger than max-size, <path>.1 ... are shifted up by one
 * (the oldest dropped), the file becomes <path>.1 and a new one starts;
 * with max-file=1 the file is truncated instead.
 *
 * A failed write (a full disk) drops the entries of that write, cuts the
 * file back to its last complete line, and returns the error; the next
 * write tries again. The caller reports it and carries on: the log must
 * never hold the container up. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "err.h"

#define JLOG_MAX_LINE 16384

enum jlog_stream {
        JLOG_STDOUT = 0,
        JLOG_STDERR = 1,
};

struct jlog_opts {
        uint64_t max_size; /* 0: unlimited */
        unsigned max_file; /* files kept, current included; >= 1 */
};

struct jlog;

/* Parses one "key=value" log option (max-size=10m, max-file=3) into o. */
int jlog_parse_opt(struct jlog_opts *o, const char *kv, struct berr *e);

/* Opens (append, create 0640) the log at path. */
int jlog_open(const char *path, const struct jlog_opts *o, struct jlog **ret, struct berr *e);
void jlog_close(struct jlog *l);

/* Feeds bytes read from a stream at time now; writes what makes complete
 * entries. Returns 0 or -errno of a failed write (see above). */
int jlog_write(struct jlog *l, enum jlog_stream s, const void *data, size_t len, const struct timespec *now,
               struct berr *e);

/* The stream ended: writes what is left of its last line. */
int jlog_finish(struct jlog *l, enum jlog_stream s, const struct timespec *now, struct berr *e);

/* Size of the current file as the writer sees it. */
uint64_t jlog_size(const struct jlog *l);

/* Appends to buf the JSON string (quotes included) for data, escaped as Go
 * does; returns the new length. buf must have room for 6 * len + 2 bytes.
 * Exposed for tests. */
size_t jlog_escape(char *buf, const void *data, size_t len);

/* RFC 3339 UTC with up to nine fraction digits, trailing zeros trimmed
 * (Go's time.RFC3339Nano). buf needs 40 bytes. */
char *jlog_time(const struct timespec *ts, char *buf, size_t len);

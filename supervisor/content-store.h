/* The content store: blobs addressed by their sha256 digest.
 *
 *   <root>/blobs/sha256/<hex>      verified content, read-only (0444)
 *   <root>/ingest/<ref>/data       a write in progress (kept when it is cut
 *                                  off, so that it can be resumed)
 *
 * <root> is <--root>/supervisor/content. A blob appears in blobs/ only
 * after its size and digest were checked, by an atomic rename (data fsync'ed
 * before, the directory after): a reader sees a whole, verified blob or
 * none. Only sha256 is stored. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "err.h"

/* "sha256:" + 64 hex + NUL */
#define CONTENT_DIGEST_MAX 72

struct content_store;
struct content_writer;

struct content_info {
        char digest[CONTENT_DIGEST_MAX];
        uint64_t size;
        struct timespec created;
};

/* Opens (creating the directories) the store under root. */
int content_store_open(const char *root, struct content_store **ret, struct berr *e);
void content_store_free(struct content_store *cs);
const char *content_store_root(const struct content_store *cs);

/* Checks that d is "sha256:<64 lower-case hex>" (the only kind stored). */
int content_digest_check(const char *d, struct berr *e);
/* The sha256 digest of a buffer, as "sha256:<hex>". */
int content_digest_of(const void *data, size_t len, char ret[CONTENT_DIGEST_MAX]);

/* -ENOENT when the blob is not there. */
int content_info(struct content_store *cs, const char *digest, struct content_info *ret, struct berr *e);
/* An O_RDONLY fd of the blob. */
int content_open(struct content_store *cs, const char *digest, struct berr *e);
/* The whole blob in memory (at most max bytes, else -EFBIG), NUL-terminated. */
int content_read(struct content_store *cs, const char *digest, size_t max, char **ret_data, size_t *ret_len,
                 struct berr *e);
/* All blobs, sorted by digest; free with free(). */
int content_list(struct content_store *cs, struct content_info **ret, size_t *ret_n, struct berr *e);
int content_delete(struct content_store *cs, const char *digest, struct berr *e);

/* Stores an in-memory blob whose digest must be expected (NULL: computed;
 * ret_digest, if not NULL, gets it). Already present is success. */
int content_write_blob(struct content_store *cs, const void *data, size_t len, const char *expected,
                       char ret_digest[CONTENT_DIGEST_MAX], struct berr *e);

/* Opens the ingest for a blob with the expected digest and size (size < 0:
 * unknown). An ingest left by an earlier, interrupted write is continued:
 * its bytes are hashed again and content_writer_offset() says where to go
 * on. Only one writer per ingest at a time (-EBUSY otherwise).
 * expected NULL: the digest is not known beforehand (a layer of a legacy
 * docker save archive); the blob is stored under the digest of what was
 * written, its ingest is private and never kept for a resume. */
int content_writer_open(struct content_store *cs, const char *expected, int64_t size, struct content_writer **ret,
                        struct berr *e);
uint64_t content_writer_offset(const struct content_writer *w);
/* Drops what was written so far (the source restarts from byte 0). */
int content_writer_reset(struct content_writer *w, struct berr *e);
/* Appends; more bytes than the expected size fail with -EFBIG. */
int content_writer_write(struct content_writer *w, const void *data, size_t len, struct berr *e);
/* Checks size and digest and moves the blob into blobs/. On a mismatch the
 * ingest is removed (its bytes are wrong, resuming it would not help) and
 * -EBADMSG returned; nothing appears in blobs/. A writer of unknown digest
 * returns 1 when that blob was in the store already (the ingest is
 * dropped), 0 when it stored it. */
int content_writer_commit(struct content_writer *w, struct berr *e);
/* The digest expected, or learnt at commit (NULL before the commit of a
 * writer of unknown digest). */
const char *content_writer_digest(const struct content_writer *w);
/* Closes the writer. An uncommitted ingest is kept for a later resume
 * unless discard is set. NULL is allowed. */
void content_writer_close(struct content_writer *w, bool discard);

/* The ingest directory name for a digest ("sha256-<hex>"). */
int content_ingest_ref(const char *digest, char *buf, size_t len);

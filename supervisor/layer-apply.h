/* Applying an image layer (a tar changeset, plain, gzip or zstd), as the
 * OCI image spec's changeset rules say, in one of two modes:
 *
 * LAYER_APPLY_OVERLAY: to a new directory that becomes an overlay upper
 * directory (an overlay snapshot's fs).
 *   - ".wh.<name>" becomes a whiteout (a 0:0 character device "<name>");
 *     "<dir>/.wh..wh..opq" sets trusted.overlay.opaque=y on <dir>.
 *   - The layer is applied into a temporary directory next to dest and
 *     renamed onto dest (missing or an empty directory) only when all of it
 *     applied and its diff id matched: a failure leaves dest as it was and
 *     nothing else behind.
 *
 * LAYER_APPLY_COPY: into dest, an existing directory holding the lower
 * layers' files (a copy snapshot's fs).
 *   - ".wh.<name>" deletes <name> (recursively, never following a
 *     symlink); "<dir>/.wh..wh..opq" removes from <dir> everything the
 *     lower layers put there, whatever the order of the entries: what this
 *     layer writes stays (the spec: a whiteout hides only lower content).
 *     A 0:0 character device in the tar (an overlay whiteout) deletes too.
 *     No whiteout devices or overlay xattrs are ever made.
 *   - Applied in place: on a failure dest is part-applied and must be
 *     thrown away (image-unpack removes the active snapshot), as
 *     containerd does with an active snapshot whose apply failed.
 *
 * Both modes:
 *   - other ".wh..wh.*" entries (aufs metadata) are skipped.
 *   - Ownership (when keep_owner), modes, mtimes, xattrs (trusted.overlay.*
 *     from the tar are dropped: they would steer the overlay), hardlinks,
 *     symlinks, FIFOs and (when allow_devices) device nodes are kept.
 *   - Unsafe entries fail the whole layer with -EPERM and a message naming
 *     the entry: absolute names, ".." components, a path (also a whiteout's
 *     or an opaque marker's) through a symlink that points outside the
 *     layer's directory (absolute, or ".." past its top), hardlinks to
 *     absolute or ".." targets or through such a symlink, and device nodes
 *     unless allowed. Existing entries are replaced, never written through.
 *   - The tree is syncfs'ed before layer_apply returns success. */
#pragma once

#include <stdbool.h>

#include "content-store.h"
#include "err.h"

enum layer_compression {
        LAYER_COMPRESSION_NONE,
        LAYER_COMPRESSION_GZIP,
        LAYER_COMPRESSION_ZSTD,
};

enum layer_apply_mode {
        LAYER_APPLY_OVERLAY,        /* dest new: an overlay upper dir */
        LAYER_APPLY_COPY,           /* dest holds the lower layers: whiteouts delete */
};

struct layer_apply_options {
        const char *media_type;     /* the descriptor's; NULL: go by the magic bytes */
        const char *diff_id;        /* expected "sha256:…"; NULL: not checked */
        bool keep_owner;            /* chown entries to the tar's uid/gid */
        bool allow_devices;         /* character and block devices */
        enum layer_apply_mode mode;
};

/* The compression a layer media type says (-EPROTONOSUPPORT for media
 * types that are not layers, or are encrypted or foreign). Plain "tar"
 * types and NULL give NONE, and the magic bytes decide. */
int layer_media_compression(const char *media_type, enum layer_compression *ret, struct berr *e);

/* Reads the layer from fd (its current offset) and applies it to dest.
 * ret_diff_id (may be NULL) gets the sha256 of the uncompressed stream. */
int layer_apply(int fd, const char *dest, const struct layer_apply_options *o, char ret_diff_id[CONTENT_DIGEST_MAX],
                struct berr *e);

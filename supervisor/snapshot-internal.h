/* What snapshot-overlay.c (the snapshotter: metadata, ids, operations, the
 * overlay mode) shares with the other mode's backend, snapshot-copy.c.
 * Private to those two files. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include <jansson.h>

#include "err.h"
#include "snapshot-overlay.h"

struct snapshot_meta;   /* snapshots.json, loaded under its lock */

/* What differs between the modes: one per file. */
struct snapshot_backend {
        enum snapshot_mode mode;
        bool workdir;           /* <id>/work is made */
        /* fills fs, a new empty directory, from the committed parent's;
         * NULL: a new snapshot starts empty */
        int (*fill)(struct snapshot_overlay *sn, const struct snapshot_info *parent, const char *fs, struct berr *e);
        int (*mounts)(struct snapshot_overlay *sn, struct snapshot_meta *m, const struct snapshot_info *self,
                      struct snapshot_mount *ret, struct berr *e);
};

extern const struct snapshot_backend snapshot_copy_backend;

struct snapshot_overlay {
        char *root;
        char *snapshots;        /* <root>/snapshots */
        char *meta;             /* <root>/meta/snapshots.json */
        char *lock;             /* <root>/meta/snapshots.lock */
        enum snapshot_mode mode; /* AUTO only while opening */
        const struct snapshot_backend *be;
        /* snapshots.json as this process last read or wrote it, with the
         * file's stat; used under the lock only */
        json_t *cache;
        struct stat cache_st;
};

/* <snapshots>/<id>[/sub], malloc'ed; NULL when out of memory. */
char *snapshot_id_dir(struct snapshot_overlay *sn, uint64_t id, const char *sub);
/* Fills m (strdup'ed); on failure m is left empty. */
int snapshot_mount_set(struct snapshot_mount *m, const char *type, const char *source, const char *options,
                       struct berr *e);

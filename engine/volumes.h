/* The engine's volumes (Docker's `local` driver): each one is a directory
 * <data root>/engine/volumes/<name>/ holding the data in _data/ and the
 * record in volume.json: the document `docker volume inspect` shows
 * (Name, Driver, Mountpoint, CreatedAt, Labels, Options, Scope) and
 * whether the volume is anonymous (made for one container, removed with
 * it by `docker rm -v`). A volume is created in a temporary directory
 * that is renamed into place, and removed by renaming it away first, so a
 * kill -9 leaves either the whole volume or nothing.
 *
 * References (the containers that use a volume) are kept in memory only;
 * the engine rebuilds them from the containers' Mounts at start-up.
 *
 * One lock guards the store; it is a leaf: nothing else is locked while it
 * is held (the container table's lock may be held around the calls). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vol_store;

/* Opens <data root>/engine/volumes: loads the records, adopts directories
 * that have _data but no record (named volumes made by `-v` before the
 * store existed), and removes leftovers of interrupted creates and
 * removals. */
int vol_store_open(const char *data_root, struct vol_store **ret);
void vol_store_free(struct vol_store *vs);

/* Called (with the store's lock held: it must not call back into the
 * store) when a volume is created or removed: action "create"/"destroy". */
void vol_store_set_events(struct vol_store *vs, void (*fn)(void *ud, const char *action, const char *name), void *ud);

/* Docker's rule for local volume names: [a-zA-Z0-9][a-zA-Z0-9_.-]+ */
bool vol_name_valid(const char *name);
/* dockerd's message for an invalid name (without the "create NAME: "). */
void vol_name_error(const char *name, char *err, size_t errlen);
/* A new anonymous volume's name: 64 hex digits. buf: at least 65 bytes. */
int vol_generate_name(char *buf, size_t len);
/* <data root>/engine/volumes/<name>/_data (malloc'ed; NULL on ENOMEM). */
char *vol_mountpoint(const char *data_root, const char *name);

/* The local driver's options (DriverOpts): none, or type/device/o for a
 * tmpfs (type=tmpfs) or a bind of a host directory (type=none, o=bind).
 * -EINVAL and the reason in err when they cannot be served. */
int vol_check_options(json_t *opts, char *err, size_t errlen);

/* Creates the volume name (NULL: an anonymous-style generated name), or
 * finds the existing one (then labels and opts are not applied, as
 * dockerd). ref (may be NULL) is a container that now uses it. *ret_doc
 * (may be NULL) gets a copy of its document; *ret_created whether it is
 * new. Returns 0 or -errno with the reason in err. */
int vol_create(struct vol_store *vs, const char *name, json_t *labels, json_t *opts, bool anonymous, const char *ref,
               json_t **ret_doc, bool *ret_created, char *err, size_t errlen);

/* A copy of name's document; -ENOENT when there is none. */
int vol_get(struct vol_store *vs, const char *name, json_t **ret_doc);

/* The documents of the volumes keep() accepts (NULL: all), sorted by name.
 * keep runs with the lock held; refs: how many containers use the volume. */
typedef bool (*vol_keep_fn)(json_t *doc, size_t refs, void *ud);
json_t *vol_list(struct vol_store *vs, vol_keep_fn keep, void *ud);

/* The documents (vol_list) of the volumes without options, as GET
 * /system/df gives them (dockerd leaves those with options out: their
 * bytes are not the store's), with UsageData {Size, RefCount}: Size is
 * the bytes of the files under _data (not crossing mounts), RefCount the
 * containers that use it. */
json_t *vol_list_usage(struct vol_store *vs);

/* Removes name: -ENOENT ("get NAME: no such volume"; success with force),
 * -EBUSY when a container uses it ("remove NAME: volume is in use -
 * [ids]", also with force, as dockerd), other -errno. */
int vol_remove(struct vol_store *vs, const char *name, bool force, char *err, size_t errlen);

/* Removes every unused volume keep() accepts; their names in *ret_deleted
 * (a new array), the bytes they held in *ret_space. */
int vol_prune(struct vol_store *vs, vol_keep_fn keep, void *ud, json_t **ret_deleted, uint64_t *ret_space);

/* Container id uses / no longer uses its volumes. vol_ref: -ENOENT when
 * name does not exist. vol_release drops id's references; with
 * remove_anonymous the anonymous volumes it used that nobody else uses
 * are removed too (docker rm -v, --rm). */
int vol_ref(struct vol_store *vs, const char *name, const char *id);
void vol_release(struct vol_store *vs, const char *id, bool remove_anonymous);

/* Docker's copy-up: when the volume is empty, the content of dest in the
 * container's rootfs (a host path) is copied into it with ownership,
 * modes and times. Nothing happens when dest is missing there or not a
 * directory. */
int vol_copy_up(struct vol_store *vs, const char *name, const char *rootfs, const char *dest, char *err,
                size_t errlen);

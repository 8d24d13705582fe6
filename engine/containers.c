/* The engine's container table (see containers.h). */
#include "containers.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs-util.h"
#include "json-util.h"
#include "log.h"
#include "time-util.h"

/* Words for generated names: harbours and the sea, berth's own lists. */
static const char *const adjectives[] = {
        "amber",   "ancient", "bold",    "brave",   "breezy",  "bright",  "busy",    "calm",    "careful",
        "cheerful", "clever", "cosy",    "crisp",   "daring",  "deep",    "eager",   "early",   "fair",
        "fearless", "gentle", "glad",    "golden",  "grand",   "happy",   "hardy",   "honest",  "humble",
        "jolly",   "keen",    "kind",    "late",    "lively",  "lucky",   "merry",   "mighty",  "misty",
        "modest",  "nimble",  "noble",   "patient", "plucky",  "polite",  "proud",   "quiet",   "quick",
        "rapid",   "restful", "salty",   "serene",  "sharp",   "silver",  "sleepy",  "smooth",  "snug",
        "steady",  "stout",   "sturdy",  "sunny",   "swift",   "tidal",   "tidy",    "tranquil", "trusty",
        "vivid",   "wandering", "warm",  "wary",    "windy",   "wise",    "zealous",
};

static const char *const nouns[] = {
        "anchor",   "atoll",    "bay",      "beacon",   "bollard",  "bow",      "breakwater", "buoy",
        "cabin",    "canal",    "cargo",    "channel",  "cleat",    "compass",  "cove",       "crane",
        "current",  "deck",     "dinghy",   "dock",     "ferry",    "fjord",    "galley",     "gull",
        "harbor",   "hawser",   "haven",    "helm",     "hull",     "inlet",    "island",     "jetty",
        "keel",     "kelp",     "lagoon",   "lantern",  "lighthouse", "lock",   "mast",       "mooring",
        "narrows",  "oar",      "otter",    "pelican",  "pier",     "pilot",    "port",       "quay",
        "reef",     "rudder",   "sail",     "schooner", "seal",     "shoal",    "skiff",      "slip",
        "sound",    "starboard", "stern",   "strait",   "tern",     "tide",     "tugboat",    "wake",
        "wharf",    "whale",
};

static uint32_t rnd32(void)
{
        uint32_t v = 0;
        if (getrandom(&v, sizeof(v), 0) != sizeof(v))
                v = (uint32_t) time_monotonic_ns();
        return v;
}

bool ctr_name_valid(const char *name)
{
        /* Docker's: [a-zA-Z0-9][a-zA-Z0-9_.-]+ */
        size_t n = strlen(name);
        if (n < 2 || n > 128)
                return false;
        if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') ||
              (name[0] >= '0' && name[0] <= '9')))
                return false;
        return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

const char *ctr_name(struct ctr *c)
{
        return json_string_value(json_object_get(c->doc, "Name")) ?: "";
}

const char *ctr_short_name(struct ctr *c)
{
        const char *n = ctr_name(c);
        return n[0] == '/' ? n + 1 : n;
}

static bool name_taken(struct ctr_table *t, const char *name)
{
        for (struct ctr *c = t->list; c; c = c->next)
                if (!strcmp(ctr_short_name(c), name))
                        return true;
        return false;
}

int ctr_generate_name_locked(struct ctr_table *t, char *buf, size_t len)
{
        size_t na = sizeof(adjectives) / sizeof(adjectives[0]), nn = sizeof(nouns) / sizeof(nouns[0]);
        for (int i = 0; i < 64; i++) {
                snprintf(buf, len, "%s_%s", adjectives[rnd32() % na], nouns[rnd32() % nn]);
                if (i >= 8) {
                        size_t k = strlen(buf);
                        snprintf(buf + k, len - k, "%u", rnd32() % 100);
                }
                if (!name_taken(t, buf))
                        return 0;
        }
        return -EEXIST;
}

struct ctr *ctr_find_locked(struct ctr_table *t, const char *ref, bool *ambiguous)
{
        struct ctr *found = NULL;
        if (ambiguous)
                *ambiguous = false;
        if (!ref || !*ref)
                return NULL;
        /* full id, then name, then id prefix: Docker's order */
        for (struct ctr *c = t->list; c; c = c->next)
                if (!c->removed && !strcmp(c->id, ref))
                        return c;
        const char *name = ref[0] == '/' ? ref + 1 : ref;
        for (struct ctr *c = t->list; c; c = c->next)
                if (!c->removed && !strcmp(ctr_short_name(c), name))
                        return c;
        size_t n = strlen(ref);
        for (struct ctr *c = t->list; c; c = c->next) {
                if (c->removed || strncmp(c->id, ref, n))
                        continue;
                if (found) {
                        if (ambiguous)
                                *ambiguous = true;
                        return NULL;
                }
                found = c;
        }
        return found;
}

static int ctr_save(struct ctr *c, int fs_flags)
{
        if (c->removed)
                return 0;
        char *s = json_dumps(c->doc, JSON_COMPACT);
        if (!s)
                return -ENOMEM;
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/config.v2.json", c->dir) < 0) {
                free(s);
                return -ENOMEM;
        }
        int r = fs_write_atomic_ex(path, s, strlen(s), 0600, fs_flags);
        free(s);
        if (r < 0)
                log_warn("engine: saving %s: %s", path, strerror(-r));
        return r;
}

int ctr_save_locked(struct ctr_table *t, struct ctr *c)
{
        return ctr_save(c, FS_WRITE_DURABLE);
}

int ctr_save_state_locked(struct ctr_table *t, struct ctr *c)
{
        return ctr_save(c, 0);
}

static struct ctr *ctr_new(struct ctr_table *t, const char *id, json_t *doc)
{
        struct ctr *c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        snprintf(c->id, sizeof(c->id), "%s", id);
        c->doc = doc;
        if (asprintf(&c->dir, "%s/%s", t->root, id) < 0) {
                free(c);
                return NULL;
        }
        return c;
}

int ctr_add_locked(struct ctr_table *t, const char *name, json_t *doc, struct ctr **ret)
{
        char gen[64], id[65];
        if (name && *name) {
                if (name[0] == '/')
                        name++;
                if (!ctr_name_valid(name)) {
                        json_decref(doc);
                        return -EINVAL;
                }
                if (name_taken(t, name)) {
                        json_decref(doc);
                        return -EEXIST;
                }
        } else {
                if (ctr_generate_name_locked(t, gen, sizeof(gen)) < 0) {
                        json_decref(doc);
                        return -EEXIST;
                }
                name = gen;
        }
        uint8_t b[32];
        if (getrandom(b, sizeof(b), 0) != sizeof(b)) {
                json_decref(doc);
                return -errno;
        }
        for (size_t i = 0; i < sizeof(b); i++)
                snprintf(id + 2 * i, 3, "%02x", b[i]);
        struct ctr *c = ctr_new(t, id, doc);
        if (!c) {
                json_decref(doc);
                return -ENOMEM;
        }
        char nm[160];
        snprintf(nm, sizeof(nm), "/%s", name);
        json_object_set_new(doc, "Id", json_string(id));
        json_object_set_new(doc, "Name", json_string(nm));
        int r = fs_mkdir_p(c->dir, 0700);
        if (r < 0) {
                json_decref(doc);
                free(c->dir);
                free(c);
                return r;
        }
        c->next = t->list;
        t->list = c;
        *ret = c;
        return 0;
}

static char *trash_path(struct ctr_table *t, const char *id)
{
        char *p = NULL;
        return asprintf(&p, "%s/.removed-%s", t->root, id) < 0 ? NULL : p;
}

void ctr_remove_locked(struct ctr_table *t, struct ctr *c)
{
        c->removed = true;
        _cleanup_free_ char *trash = trash_path(t, c->id);
        if (!trash || rename(c->dir, trash) < 0) {
                /* no room for the name: delete it now */
                fs_rm_rf(c->dir);
        }
        for (struct ctr **p = &t->list; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        break;
                }
        pthread_cond_broadcast(&t->changed);
        /* waiters may still hold c: records are freed at shutdown only */
        c->next = t->graveyard;
        t->graveyard = c;
}

int ctr_purge_dir(struct ctr_table *t, const char *id)
{
        _cleanup_free_ char *p = trash_path(t, id);
        return p ? fs_rm_rf(p) : -ENOMEM;
}

static json_t *state(struct ctr *c)
{
        json_t *s = json_object_get(c->doc, "State");
        if (!s) {
                s = json_object();
                json_object_set_new(c->doc, "State", s);
        }
        return s;
}

const char *ctr_status(struct ctr *c)
{
        return json_string_value(json_object_get(state(c), "Status")) ?: "created";
}

void ctr_set_status(struct ctr *c, const char *status)
{
        json_t *s = state(c);
        json_object_set_new(s, "Status", json_string(status));
        json_object_set_new(s, "Running", json_boolean(!strcmp(status, "running") || !strcmp(status, "paused")));
        json_object_set_new(s, "Paused", json_boolean(!strcmp(status, "paused")));
        json_object_set_new(s, "Restarting", json_boolean(!strcmp(status, "restarting")));
        json_object_set_new(s, "Dead", json_boolean(!strcmp(status, "dead")));
}

void ctr_set_running(struct ctr *c, int pid)
{
        char now[64];
        ctr_set_status(c, "running");
        json_t *s = state(c);
        json_object_set_new(s, "Pid", json_integer(pid));
        json_object_set_new(s, "ExitCode", json_integer(0));
        json_object_set_new(s, "Error", json_string(""));
        json_object_set_new(s, "OOMKilled", json_false());
        json_object_set_new(s, "StartedAt", json_string(time_now_rfc3339_nano(now, sizeof(now))));
        json_object_set_new(s, "FinishedAt", json_string("0001-01-01T00:00:00Z"));
}

void ctr_set_exited(struct ctr *c, int code, bool oom, const char *finished_at, const char *error)
{
        char now[64];
        ctr_set_status(c, "exited");
        json_t *s = state(c);
        json_object_set_new(s, "Pid", json_integer(0));
        json_object_set_new(s, "ExitCode", json_integer(code));
        json_object_set_new(s, "OOMKilled", json_boolean(oom));
        json_object_set_new(s, "Error", json_string(error ? error : ""));
        json_object_set_new(s, "FinishedAt",
                            json_string(finished_at && *finished_at ? finished_at
                                                                    : time_now_rfc3339_nano(now, sizeof(now))));
        c->generation++;
}

int ctr_table_open(struct ctr_table *t, const char *data_root)
{
        pthread_mutex_init(&t->lock, NULL);
        pthread_cond_init(&t->changed, NULL);
        t->list = t->graveyard = NULL;
        t->purging = 0;
        t->leftovers = NULL;
        t->n_leftovers = 0;
        if (asprintf(&t->root, "%s/engine/containers", data_root) < 0)
                return -ENOMEM;
        int r = fs_mkdir_p(t->root, 0700);
        if (r < 0)
                return r;
        /* each container's directory in a block group of its own choosing:
         * see docs/decisions.md */
        fs_mark_topdir(t->root);
        _cleanup_(closedirp) DIR *d = opendir(t->root);
        if (!d)
                return -errno;
        for (struct dirent *de; (de = readdir(d));) {
                if (!strncmp(de->d_name, ".removed-", 9) && strlen(de->d_name + 9) == 64) {
                        /* removed, not yet purged when the engine stopped */
                        char(*l)[65] = realloc(t->leftovers, (t->n_leftovers + 1) * sizeof(*l));
                        if (!l)
                                return -ENOMEM;
                        t->leftovers = l;
                        snprintf(l[t->n_leftovers++], 65, "%s", de->d_name + 9);
                        continue;
                }
                if (de->d_name[0] == '.' || strlen(de->d_name) != 64)
                        continue;
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s/%s/config.v2.json", t->root, de->d_name) < 0)
                        return -ENOMEM;
                json_error_t jerr;
                json_t *doc = json_load_file(path, 0, &jerr);
                if (!doc) {
                        /* a create that crashed before its first save */
                        log_warn("engine: %s: %s: removing the leftover", path, jerr.text);
                        _cleanup_free_ char *dir = NULL;
                        if (asprintf(&dir, "%s/%s", t->root, de->d_name) >= 0)
                                fs_rm_rf(dir);
                        continue;
                }
                struct ctr *c = ctr_new(t, de->d_name, doc);
                if (!c) {
                        json_decref(doc);
                        return -ENOMEM;
                }
                c->next = t->list;
                t->list = c;
        }
        return 0;
}

static void free_list(struct ctr *c)
{
        while (c) {
                struct ctr *next = c->next;
                json_decref(c->doc);
                free(c->dir);
                free(c);
                c = next;
        }
}

void ctr_table_close(struct ctr_table *t)
{
        free_list(t->list);
        free_list(t->graveyard);
        t->list = t->graveyard = NULL;
        free(t->leftovers);
        free(t->root);
}

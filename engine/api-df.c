/* GET /system/df: what `docker system df` shows, in API 1.41's shape
 * (LayersSize, Images, Containers, Volumes, BuildCache), from the same
 * entries GET /images/json, GET /containers/json?all=1&size=1 and the
 * volume store give, with the usage figures only df asks for.
 *
 * The images' sizes are those of their content (compressed layers,
 * manifests, config: the supervisor's Image.size), so LayersSize is the
 * sum of the store's blobs the images use, each counted once, and an
 * image's SharedSize the part of it another image uses too
 * (docs/compatibility.md). berth has no builder: BuildCache is empty. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "cleanup.h"
#include "engine.h"
#include "json-util.h"
#include "supervisor.pb-c.h"
#include "volumes.h"

/* {digest: size} of the content store's blobs. */
static int blob_sizes(struct engine *en, json_t **ret, struct rpc_status *st)
{
        Berth__Supervisor__ListContentRequest req = BERTH__SUPERVISOR__LIST_CONTENT_REQUEST__INIT;
        Berth__Supervisor__ListContentResponse *l = NULL;
        if (engine_call(en, "content.ListContent", &req.base, &berth__supervisor__list_content_response__descriptor,
                        ENGINE_CALL_TIMEOUT_MS, (ProtobufCMessage **) &l, st) < 0)
                return -EIO;
        json_t *out = json_object();
        for (size_t i = 0; i < l->n_blobs; i++)
                json_object_set_new(out, l->blobs[i]->digest, json_integer((json_int_t) l->blobs[i]->size));
        protobuf_c_message_free_unpacked(&l->base, NULL);
        *ret = out;
        return 0;
}

/* Every container's summary with its sizes; per_image gets the number of
 * containers of each image id. */
static json_t *df_containers(struct engine *en, json_t *per_image)
{
        json_t *out = json_array();
        pthread_mutex_lock(&en->ctrs.lock);
        for (struct ctr *c = en->ctrs.list; c; c = c->next) {
                json_array_append_new(out, engine_container_summary_locked(c));
                const char *image = json_string_value(json_object_get(c->doc, "Image"));
                if (image && *image)
                        json_object_set_new(per_image, image,
                                            json_integer(json_integer_value(json_object_get(per_image, image)) + 1));
        }
        pthread_mutex_unlock(&en->ctrs.lock);
        engine_containers_add_sizes(en, out);
        return out;
}

/* The images' summaries with Containers and SharedSize, and LayersSize. */
static int df_images(struct engine *en, json_t *per_image, json_t **ret, json_int_t *ret_layers_size,
                     struct rpc_status *st)
{
        _cleanup_json_ json_t *blobs = NULL, *sizes = NULL;
        json_t *images = NULL;
        if (engine_images_summary(en, NULL, &images, &blobs, st) < 0)
                return -EIO;
        if (blob_sizes(en, &sizes, st) < 0) {
                json_decref(images);
                return -EIO;
        }
        /* how many images each blob belongs to */
        _cleanup_json_ json_t *users = json_object();
        const char *id, *d;
        json_t *list, *v;
        size_t i;
        json_object_foreach(blobs, id, list)
        {
                json_array_foreach(list, i, v)
                {
                        d = json_string_value(v);
                        json_object_set_new(users, d, json_integer(json_integer_value(json_object_get(users, d)) + 1));
                }
        }
        json_int_t layers_size = 0;
        json_object_foreach(users, d, v)
                layers_size += json_integer_value(json_object_get(sizes, d));

        json_t *e;
        json_array_foreach(images, i, e)
        {
                id = json_string_value(json_object_get(e, "Id")) ?: "";
                json_int_t shared = 0;
                size_t k;
                json_array_foreach(json_object_get(blobs, id), k, v)
                {
                        d = json_string_value(v);
                        if (json_integer_value(json_object_get(users, d)) > 1)
                                shared += json_integer_value(json_object_get(sizes, d));
                }
                json_object_set_new(e, "SharedSize", json_integer(shared));
                json_object_set_new(e, "Containers", json_integer(json_integer_value(json_object_get(per_image, id))));
        }
        *ret = images;
        *ret_layers_size = layers_size;
        return 0;
}

static enum MHD_Result system_df(struct http_request *r)
{
        struct engine *en = r->engine;
        struct rpc_status st;
        _cleanup_json_ json_t *per_image = json_object();
        json_t *containers = df_containers(en, per_image);
        json_t *images = NULL;
        json_int_t layers_size = 0;
        if (df_images(en, per_image, &images, &layers_size, &st) < 0) {
                json_decref(containers);
                return engine_reply_rpc_error(r, &st);
        }
        return http_reply_json(r, 200,
                               json_pack("{s:I, s:o, s:o, s:o, s:[]}", "LayersSize", layers_size, "Images", images,
                                         "Containers", containers, "Volumes", vol_list_usage(en->vols),
                                         "BuildCache"));
}

const struct http_route engine_df_routes[] = {
        { "GET", "/system/df", system_df, 0 },
};
const size_t engine_df_n_routes = sizeof(engine_df_routes) / sizeof(engine_df_routes[0]);

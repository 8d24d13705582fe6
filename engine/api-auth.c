/* POST /auth: docker login. The supervisor checks the credentials with the
 * registry (images.CheckAuth: GET /v2/ with them, in a berth-fetch
 * worker); nothing is kept here. The client stores what it sent and gives
 * it back with X-Registry-Auth on later pulls, as with dockerd. */
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "engine.h"
#include "json-util.h"
#include "supervisor.pb-c.h"

/* Registries that are slow to answer are given the worker's own connect
 * timeout and retries (a few times 30 s), not the 60 s of short calls. */
#define AUTH_CALL_TIMEOUT_MS (5 * 60 * 1000)

static enum MHD_Result auth_check(struct http_request *r)
{
        json_t *body = NULL;
        if (http_body_json(r, false, &body) < 0)
                return MHD_YES; /* answered 400 */

        const char *user = NULL, *password = NULL, *server = NULL, *itoken = NULL;
        struct berr e = { 0 };
        int k = json_get_string(body, "body", "username", &user, &e);
        if (k >= 0)
                k = json_get_string(body, "body", "password", &password, &e);
        if (k >= 0)
                k = json_get_string(body, "body", "serveraddress", &server, &e);
        if (k >= 0)
                k = json_get_string(body, "body", "identitytoken", &itoken, &e);
        if (k < 0) {
                json_decref(body);
                return http_reply_error(r, 400, "%s", e.msg);
        }

        Berth__Supervisor__CheckAuthRequest req = BERTH__SUPERVISOR__CHECK_AUTH_REQUEST__INIT;
        req.registry = (char *) (server ? server : "");
        req.username = (char *) (user ? user : "");
        req.password = (char *) (password ? password : "");
        req.identity_token = (char *) (itoken ? itoken : "");
        ProtobufCMessage *rep = NULL;
        struct rpc_status st;
        int rc = engine_call(r->engine, "images.CheckAuth", &req.base,
                             &berth__supervisor__check_auth_response__descriptor, AUTH_CALL_TIMEOUT_MS, &rep, &st);
        json_decref(body);
        if (rc < 0) {
                /* refused credentials come back as INVALID_ARGUMENT: 401 with
                 * dockerd's message ("Get \"<url>\": unauthorized: ..."); a
                 * registry that cannot be reached is the server's 500 */
                const char *msg = st.message;
                if (st.code == RPC_INVALID_ARGUMENT && strncmp(msg, "supervisor: ", 12) == 0)
                        msg += 12;
                return http_reply_error(r, st.code == RPC_INVALID_ARGUMENT ? 401 : 500, "%s", msg);
        }
        protobuf_c_message_free_unpacked(rep, NULL);
        return http_reply_json(r, 200, json_pack("{s:s, s:s}", "Status", "Login Succeeded", "IdentityToken", ""));
}

const struct http_route engine_auth_routes[] = {
        { "POST", "/auth", auth_check, 0 },
};
const size_t engine_auth_n_routes = sizeof(engine_auth_routes) / sizeof(engine_auth_routes[0]);

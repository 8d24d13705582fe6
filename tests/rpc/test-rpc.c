/* Unit tests of common/rpc-server and common/rpc-client over a real nng ipc
 * socket in a temporary directory. The messages are those of shim.proto;
 * the methods are the test's own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "rpc-client.h"
#include "rpc-server.h"
#include "shim.pb-c.h"
#include "time-util.h"

#define MAX_PARKED 64

/* The server side of a test: parked calls wait here until released. */
struct fixture {
        char dir[64];
        char url[128];
        struct rpc_server *srv;
        pthread_mutex_t lock;
        struct rpc_call *parked[MAX_PARKED];
        unsigned n_parked;
        atomic_int handled;
};

/* shim.State: echoes exec_id; "parked" is answered later with pid 42. */
static void h_state(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
        struct fixture *fx = userdata;
        const Berth__Shim__StateRequest *req = (const Berth__Shim__StateRequest *) request;
        atomic_fetch_add(&fx->handled, 1);
        if (strcmp(req->exec_id, "parked") == 0) {
                pthread_mutex_lock(&fx->lock);
                assert_true(fx->n_parked < MAX_PARKED);
                fx->parked[fx->n_parked++] = call;
                pthread_mutex_unlock(&fx->lock);
                return;
        }
        if (strcmp(req->exec_id, "fail") == 0) {
                rpc_call_fail(call, RPC_NOT_FOUND, "test: no such process \"%s\"", req->exec_id);
                return;
        }
        if (strcmp(req->exec_id, "wrong-type") == 0) {
                Berth__Shim__KillResponse k = BERTH__SHIM__KILL_RESPONSE__INIT;
                rpc_call_reply(call, &k.base);
                return;
        }
        Berth__Shim__StateResponse r = BERTH__SHIM__STATE_RESPONSE__INIT;
        r.exec_id = req->exec_id;
        r.pid = 7;
        r.status = BERTH__SHIM__STATUS__RUNNING;
        rpc_call_reply(call, &r.base);
}

static const struct rpc_method methods[] = {
        { "shim.State", &berth__shim__state_request__descriptor, &berth__shim__state_response__descriptor, h_state },
};

static struct fixture *fixture_new(const struct rpc_server_options *opts)
{
        struct fixture *fx = calloc(1, sizeof(*fx));
        struct berr e = { 0 };
        assert_non_null(fx);
        strcpy(fx->dir, "/tmp/berth-rpc-XXXXXX");
        assert_non_null(mkdtemp(fx->dir));
        snprintf(fx->url, sizeof(fx->url), "ipc://%s/rpc.sock", fx->dir);
        pthread_mutex_init(&fx->lock, NULL);
        int r = rpc_server_start(fx->url, methods, ARRAY_SIZE(methods), fx, opts, &fx->srv, &e);
        if (r < 0)
                fail_msg("rpc_server_start: %s", e.msg);
        return fx;
}

static void fixture_free(struct fixture *fx)
{
        rpc_server_free(fx->srv);
        char path[160];
        snprintf(path, sizeof(path), "%s/rpc.sock", fx->dir);
        unlink(path);
        rmdir(fx->dir);
        pthread_mutex_destroy(&fx->lock);
        free(fx);
}

static void release_parked(struct fixture *fx, unsigned pid)
{
        pthread_mutex_lock(&fx->lock);
        for (unsigned i = 0; i < fx->n_parked; i++) {
                Berth__Shim__StateResponse r = BERTH__SHIM__STATE_RESPONSE__INIT;
                r.pid = pid;
                r.exec_id = "parked";
                rpc_call_reply(fx->parked[i], &r.base);
        }
        fx->n_parked = 0;
        pthread_mutex_unlock(&fx->lock);
}

static unsigned n_parked(struct fixture *fx)
{
        pthread_mutex_lock(&fx->lock);
        unsigned n = fx->n_parked;
        pthread_mutex_unlock(&fx->lock);
        return n;
}

static void wait_parked(struct fixture *fx, unsigned n)
{
        for (int i = 0; i < 500 && n_parked(fx) < n; i++)
                usleep(10000);
        assert_int_equal(n_parked(fx), n);
}

static struct rpc_client *client(struct fixture *fx)
{
        struct rpc_client *c = NULL;
        struct rpc_status st;
        if (rpc_client_open(fx->url, &c, &st) < 0)
                fail_msg("rpc_client_open: %s", st.message);
        return c;
}

static int call_state(struct rpc_client *c, const char *exec_id, int timeout_ms, Berth__Shim__StateResponse **ret,
                      struct rpc_status *st)
{
        Berth__Shim__StateRequest req = BERTH__SHIM__STATE_REQUEST__INIT;
        req.exec_id = (char *) exec_id;
        return rpc_client_call(c, "shim.State", &req.base, &berth__shim__state_response__descriptor, timeout_ms,
                               (ProtobufCMessage **) ret, st);
}

static void test_roundtrip(void **state)
{
        (void) state;
        struct fixture *fx = fixture_new(NULL);
        struct rpc_client *c = client(fx);
        Berth__Shim__StateResponse *r = NULL;
        struct rpc_status st;

        assert_int_equal(call_state(c, "e1", 2000, &r, &st), 0);
        assert_string_equal(r->exec_id, "e1");
        assert_int_equal(r->pid, 7);
        assert_int_equal(r->status, BERTH__SHIM__STATUS__RUNNING);
        protobuf_c_message_free_unpacked(&r->base, NULL);

        /* the server's own error code and message come through */
        assert_int_equal(call_state(c, "fail", 2000, &r, &st), -ENOENT);
        assert_int_equal(st.code, RPC_NOT_FOUND);
        assert_string_equal(st.message, "test: no such process \"fail\"");

        /* a handler that answers with the wrong message type: INTERNAL */
        assert_true(call_state(c, "wrong-type", 2000, &r, &st) < 0);
        assert_int_equal(st.code, RPC_INTERNAL);
        assert_non_null(strstr(st.message, "berth.shim.KillResponse"));

        rpc_client_close(c);
        fixture_free(fx);
}

static void test_unknown_method(void **state)
{
        (void) state;
        struct fixture *fx = fixture_new(NULL);
        struct rpc_client *c = client(fx);
        struct rpc_status st;
        void *out;
        size_t len;

        assert_int_equal(rpc_client_call_payload(c, "shim.Nope", "", 0, 2000, &out, &len, &st), -EINVAL);
        assert_int_equal(st.code, RPC_INVALID_ARGUMENT);
        assert_string_equal(st.message, "rpc: unknown method \"shim.Nope\"");
        /* bytes that are not printable are not echoed raw */
        assert_int_equal(rpc_client_call_payload(c, "bad\x01name", "", 0, 2000, &out, &len, &st), -EINVAL);
        assert_string_equal(st.message, "rpc: unknown method \"bad?name\"");
        assert_int_equal(atomic_load(&fx->handled), 0);
        rpc_client_close(c);
        fixture_free(fx);
}

static void test_undecodable(void **state)
{
        (void) state;
        struct fixture *fx = fixture_new(NULL);
        struct rpc_client *c = client(fx);
        struct rpc_status st;
        void *out;
        size_t len;

        /* a payload that is not a StateRequest: field 1 claims 100 bytes */
        static const uint8_t bad_payload[] = { 0x0a, 0x64, 'x' };
        assert_int_equal(rpc_client_call_payload(c, "shim.State", bad_payload, sizeof(bad_payload), 2000, &out, &len,
                                                 &st),
                         -EINVAL);
        assert_int_equal(st.code, RPC_INVALID_ARGUMENT);
        assert_non_null(strstr(st.message, "is not a berth.shim.StateRequest"));

        /* an envelope that is not a Request at all */
        static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x13 };
        assert_int_equal(rpc_client_call_bytes(c, garbage, sizeof(garbage), 2000, &st), 0);
        assert_int_equal(st.code, RPC_INVALID_ARGUMENT);
        assert_non_null(strstr(st.message, "is not a berth.rpc.Request"));

        /* an empty message decodes as an empty envelope: no method */
        assert_int_equal(rpc_client_call_bytes(c, "", 0, 2000, &st), 0);
        assert_int_equal(st.code, RPC_INVALID_ARGUMENT);
        assert_string_equal(st.message, "rpc: unknown method \"\"");

        /* random messages never crash the server, and it still serves */
        srand(1);
        uint8_t buf[256];
        for (int i = 0; i < 200; i++) {
                size_t n = (size_t) (rand() % (int) sizeof(buf));
                for (size_t k = 0; k < n; k++)
                        buf[k] = (uint8_t) rand();
                assert_int_equal(rpc_client_call_bytes(c, buf, n, 2000, &st), 0);
                assert_true(st.code == RPC_INVALID_ARGUMENT);
        }
        Berth__Shim__StateResponse *r = NULL;
        assert_int_equal(call_state(c, "still", 2000, &r, &st), 0);
        protobuf_c_message_free_unpacked(&r->base, NULL);
        assert_int_equal(atomic_load(&fx->handled), 1);
        rpc_client_close(c);
        fixture_free(fx);
}

static void test_oversized(void **state)
{
        (void) state;
        struct rpc_server_options o = { .max_message = 1024 };
        struct fixture *fx = fixture_new(&o);
        struct rpc_client *c = client(fx);
        struct rpc_status st;
        Berth__Shim__StateResponse *r = NULL;

        char *big = malloc(4096);
        memset(big, 'a', 4095);
        big[4095] = 0;
        assert_int_equal(call_state(c, big, 2000, &r, &st), -EINVAL);
        assert_int_equal(st.code, RPC_INVALID_ARGUMENT);
        assert_non_null(strstr(st.message, "exceeds the limit of 1024 bytes"));

        /* above the transport cap (16 x) nng drops the connection: the
         * client says UNAVAILABLE, not a timeout, and reconnects after */
        size_t huge_n = 64 * 1024;
        char *huge = malloc(huge_n);
        memset(huge, 'b', huge_n - 1);
        huge[huge_n - 1] = 0;
        uint64_t t0 = time_monotonic_ns();
        assert_true(call_state(c, huge, 5000, &r, &st) < 0);
        assert_int_equal(st.code, RPC_UNAVAILABLE);
        assert_true(time_monotonic_ns() - t0 < 4000ull * 1000000ull);

        /* a call racing with the old connection's teardown may be lost
         * too; within a few tries the redialled connection serves it */
        int rv = -1;
        for (int i = 0; i < 20 && rv < 0; i++) {
                rv = call_state(c, "small", 3000, &r, &st);
                if (rv < 0 && st.code != RPC_UNAVAILABLE)
                        fail_msg("after reconnect: %s", st.message);
        }
        assert_int_equal(rv, 0);
        assert_string_equal(r->exec_id, "small");
        protobuf_c_message_free_unpacked(&r->base, NULL);
        free(big);
        free(huge);
        rpc_client_close(c);
        fixture_free(fx);
}

struct caller {
        struct fixture *fx;
        struct rpc_client *c;
        const char *exec_id;
        int timeout_ms;
        int rv;
        struct rpc_status st;
        unsigned pid;
        uint64_t elapsed_ms;
};

static void *caller_main(void *arg)
{
        struct caller *cl = arg;
        Berth__Shim__StateResponse *r = NULL;
        uint64_t t0 = time_monotonic_ns();
        cl->rv = call_state(cl->c, cl->exec_id, cl->timeout_ms, &r, &cl->st);
        cl->elapsed_ms = (time_monotonic_ns() - t0) / 1000000ull;
        if (cl->rv == 0) {
                cl->pid = r->pid;
                protobuf_c_message_free_unpacked(&r->base, NULL);
        }
        return NULL;
}

/* Many parked calls (more than the receiving contexts) on one client and
 * on several; other calls are still served meanwhile; all are answered. */
static void test_parked_calls(void **state)
{
        (void) state;
        struct rpc_server_options o = { .receivers = 2 };
        struct fixture *fx = fixture_new(&o);
        struct rpc_client *shared = client(fx);
        struct rpc_client *own[8];
        struct caller cl[40];
        pthread_t th[40];

        for (unsigned i = 0; i < ARRAY_SIZE(own); i++)
                own[i] = client(fx);
        for (unsigned i = 0; i < ARRAY_SIZE(cl); i++) {
                cl[i] = (struct caller) { .fx = fx, .c = i < 32 ? shared : own[i - 32], .exec_id = "parked",
                                          .timeout_ms = 10000 };
                assert_int_equal(pthread_create(&th[i], NULL, caller_main, &cl[i]), 0);
        }
        wait_parked(fx, 40);
        assert_int_equal(rpc_server_pending(fx->srv), 40);

        /* the server still answers at once */
        Berth__Shim__StateResponse *r = NULL;
        struct rpc_status st;
        uint64_t t0 = time_monotonic_ns();
        assert_int_equal(call_state(shared, "quick", 2000, &r, &st), 0);
        assert_true(time_monotonic_ns() - t0 < 500ull * 1000000ull);
        protobuf_c_message_free_unpacked(&r->base, NULL);

        release_parked(fx, 42);
        for (unsigned i = 0; i < ARRAY_SIZE(cl); i++) {
                pthread_join(th[i], NULL);
                assert_int_equal(cl[i].rv, 0);
                assert_int_equal(cl[i].pid, 42);
        }
        assert_int_equal(rpc_server_pending(fx->srv), 0);
        for (unsigned i = 0; i < ARRAY_SIZE(own); i++)
                rpc_client_close(own[i]);
        rpc_client_close(shared);
        fixture_free(fx);
}

static void test_deadline(void **state)
{
        (void) state;
        struct fixture *fx = fixture_new(NULL);
        struct rpc_client *c = client(fx);
        struct caller cl = { .fx = fx, .c = c, .exec_id = "parked", .timeout_ms = 200 };

        caller_main(&cl);
        assert_int_equal(cl.rv, -ETIMEDOUT);
        assert_int_equal(cl.st.code, RPC_DEADLINE_EXCEEDED);
        assert_non_null(strstr(cl.st.message, "within 200 ms"));
        assert_true(cl.elapsed_ms >= 190 && cl.elapsed_ms < 1500);

        /* the late reply to the abandoned call goes nowhere; the client
         * keeps working */
        wait_parked(fx, 1);
        release_parked(fx, 1);
        Berth__Shim__StateResponse *r = NULL;
        struct rpc_status st;
        assert_int_equal(call_state(c, "after", 2000, &r, &st), 0);
        assert_string_equal(r->exec_id, "after");
        protobuf_c_message_free_unpacked(&r->base, NULL);
        rpc_client_close(c);
        fixture_free(fx);
}

static void test_unavailable(void **state)
{
        (void) state;
        struct rpc_client *c = NULL;
        struct rpc_status st;
        assert_int_equal(rpc_client_open("ipc:///tmp/berth-rpc-does-not-exist/x.sock", &c, &st), -ECONNREFUSED);
        assert_int_equal(st.code, RPC_UNAVAILABLE);
        assert_non_null(strstr(st.message, "cannot connect to \"ipc:///tmp/berth-rpc-does-not-exist/x.sock\""));
        assert_null(c);
}

/* Connects to the server's socket file and closes at once, before the
 * server has sent its half of the SP handshake: the server's send fails,
 * and nng 1.5.2's listener takes that for its own closing and stops
 * accepting for good. The server may be quicker (then the close is a
 * reset, which it survives), so this is tried until the listener has been
 * renewed once, so that the first listener is the only one renewed (the
 * client connected before keeps it open). */
static void leave_during_handshake(struct fixture *fx)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/rpc.sock", fx->dir);
        for (int i = 0; i < 50 && rpc_server_renewals(fx->srv) == 0; i++) {
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                assert_true(fd >= 0);
                assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
                close(fd);
                for (int k = 0; k < 30 && rpc_server_renewals(fx->srv) == 0; k++)
                        usleep(10000);
        }
}

/* Clients that leave during the handshake: the listener is replaced, a new
 * client is served, and a client connected before keeps its connection.
 * The socket file is 0600 from the start. */
static void test_listener_renewed(void **state)
{
        (void) state;
        struct rpc_server_options o = { .probe_ms = 50 };
        struct fixture *fx = fixture_new(&o);
        struct rpc_status st;
        Berth__Shim__StateResponse *r = NULL;
        char path[160];
        struct stat sb;

        snprintf(path, sizeof(path), "%s/rpc.sock", fx->dir);
        assert_int_equal(stat(path, &sb), 0);
        assert_true(S_ISSOCK(sb.st_mode));
        assert_int_equal(sb.st_mode & 07777, 0600);

        struct rpc_client *before = client(fx);
        assert_int_equal(call_state(before, "a", 5000, &r, &st), 0);
        berth__shim__state_response__free_unpacked(r, NULL);

        leave_during_handshake(fx);
        assert_int_equal(rpc_server_renewals(fx->srv), 1);

        struct rpc_client *after = client(fx);
        assert_int_equal(call_state(after, "b", 5000, &r, &st), 0);
        assert_string_equal(r->exec_id, "b");
        berth__shim__state_response__free_unpacked(r, NULL);
        assert_int_equal(call_state(before, "c", 5000, &r, &st), 0);
        berth__shim__state_response__free_unpacked(r, NULL);
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0600);

        /* a working listener is left alone: the probes alone renew nothing */
        unsigned n = rpc_server_renewals(fx->srv);
        usleep(300000);
        assert_int_equal(rpc_server_renewals(fx->srv), n);

        rpc_client_close(before);
        rpc_client_close(after);
        fixture_free(fx);
}

/* The server goes away while calls are parked: the callers hear
 * UNAVAILABLE at once, not at their deadline; later calls too. */
static void test_server_gone(void **state)
{
        (void) state;
        struct fixture *fx = fixture_new(NULL);
        struct rpc_client *c = client(fx);
        struct caller cl[3];
        pthread_t th[3];

        for (int i = 0; i < 3; i++) {
                cl[i] = (struct caller) { .fx = fx, .c = c, .exec_id = "parked", .timeout_ms = 20000 };
                pthread_create(&th[i], NULL, caller_main, &cl[i]);
        }
        wait_parked(fx, 3);
        rpc_server_free(fx->srv);
        fx->srv = NULL;
        for (int i = 0; i < 3; i++) {
                pthread_join(th[i], NULL);
                assert_int_equal(cl[i].st.code, RPC_UNAVAILABLE);
                assert_true(cl[i].elapsed_ms < 5000);
        }
        struct caller after = { .fx = fx, .c = c, .exec_id = "x", .timeout_ms = 10000 };
        caller_main(&after);
        assert_int_equal(after.st.code, RPC_UNAVAILABLE);
        assert_true(after.elapsed_ms < 3000);

        /* a new server on the same address: the client reconnects */
        struct berr e = { 0 };
        char path[160];
        snprintf(path, sizeof(path), "%s/rpc.sock", fx->dir);
        unlink(path);
        assert_int_equal(rpc_server_start(fx->url, methods, ARRAY_SIZE(methods), fx, NULL, &fx->srv, &e), 0);
        struct caller again = { .fx = fx, .c = c, .exec_id = "y", .timeout_ms = 5000 };
        caller_main(&again);
        assert_int_equal(again.rv, 0);
        rpc_client_close(c);
        fx->n_parked = 0;
        fixture_free(fx);
}

/* A server that dies while a client's reconnect is in the middle of the
 * handshake: here a plain socket that accepts and closes without a word,
 * for each connection, for a while. The client must still reach the real
 * server that comes after it. */
static void *dying_server(void *arg)
{
        int lfd = *(int *) arg;
        uint64_t until = time_monotonic_ns() + 1500ull * 1000000ull;
        while (time_monotonic_ns() < until) {
                struct pollfd p = { .fd = lfd, .events = POLLIN };
                if (poll(&p, 1, 50) <= 0)
                        continue;
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd >= 0)
                        close(fd);
        }
        return NULL;
}

static void test_reconnect_after_dying_server(void **state)
{
        (void) state;
        struct fixture *fx = fixture_new(NULL);
        struct rpc_client *c = client(fx);
        struct rpc_status st;
        Berth__Shim__StateResponse *r = NULL;
        assert_int_equal(call_state(c, "a", 5000, &r, &st), 0);
        berth__shim__state_response__free_unpacked(r, NULL);
        rpc_server_free(fx->srv);
        fx->srv = NULL;

        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/rpc.sock", fx->dir);
        unlink(sa.sun_path);
        int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(bind(lfd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(lfd, 16), 0);
        pthread_t th;
        pthread_create(&th, NULL, dying_server, &lfd);
        pthread_join(th, NULL);
        close(lfd);
        unlink(sa.sun_path);

        struct berr e = { 0 };
        assert_int_equal(rpc_server_start(fx->url, methods, ARRAY_SIZE(methods), fx, NULL, &fx->srv, &e), 0);
        int rv = -1;
        for (int i = 0; i < 5 && rv != 0; i++)
                rv = call_state(c, "b", 3000, &r, &st);
        assert_int_equal(rv, 0);
        berth__shim__state_response__free_unpacked(r, NULL);
        rpc_client_close(c);
        fixture_free(fx);
}

/* Queue mode: handlers run on the thread that dispatches. */
static void *dispatch_loop(void *arg)
{
        struct fixture *fx = arg;
        struct pollfd p = { .fd = rpc_server_fd(fx->srv), .events = POLLIN };
        for (int i = 0; i < 300; i++) {
                if (poll(&p, 1, 10) > 0)
                        rpc_server_dispatch(fx->srv);
                if (atomic_load(&fx->handled) >= 2)
                        break;
        }
        return NULL;
}

static void test_queue_mode(void **state)
{
        (void) state;
        struct rpc_server_options o = { .flags = RPC_SERVER_QUEUE };
        struct fixture *fx = fixture_new(&o);
        struct rpc_client *c = client(fx);
        pthread_t th;
        assert_true(rpc_server_fd(fx->srv) >= 0);
        pthread_create(&th, NULL, dispatch_loop, fx);
        Berth__Shim__StateResponse *r = NULL;
        struct rpc_status st;
        assert_int_equal(call_state(c, "q1", 2000, &r, &st), 0);
        assert_string_equal(r->exec_id, "q1");
        protobuf_c_message_free_unpacked(&r->base, NULL);
        assert_int_equal(call_state(c, "fail", 2000, &r, &st), -ENOENT);
        pthread_join(th, NULL);
        rpc_client_close(c);
        fixture_free(fx);
}

/* flush waits for the reply to leave and for the asking connection to
 * close (a shutdown that must deliver its answer before exiting). */
static void test_flush(void **state)
{
        (void) state;
        struct fixture *fx = fixture_new(NULL);
        struct rpc_client *c = client(fx);
        struct caller cl = { .fx = fx, .c = c, .exec_id = "parked", .timeout_ms = 5000 };
        pthread_t th;
        pthread_create(&th, NULL, caller_main, &cl);
        wait_parked(fx, 1);
        uint32_t pipe = rpc_call_pipe_id(fx->parked[0]);
        assert_true(pipe != 0);
        release_parked(fx, 9);
        pthread_join(th, NULL);
        assert_int_equal(cl.rv, 0);
        assert_int_equal(cl.pid, 9);
        /* the client still holds its connection: flush times out */
        assert_int_equal(rpc_server_flush(fx->srv, pipe, 100), -ETIMEDOUT);
        rpc_client_close(c);
        assert_int_equal(rpc_server_flush(fx->srv, pipe, 2000), 0);
        fixture_free(fx);
}

static void test_codes(void **state)
{
        (void) state;
        enum rpc_code c;
        for (int i = 0; i < _RPC_CODE_MAX; i++) {
                assert_int_equal(rpc_code_from_name(rpc_code_name(i), &c), 0);
                assert_int_equal((int) c, i);
                assert_int_equal(rpc_code_from_errno(rpc_code_to_errno((enum rpc_code) i)), i);
        }
        assert_string_equal(rpc_code_name(99), "UNKNOWN");
        assert_int_equal(rpc_code_from_name("nope", &c), -EINVAL);
        assert_int_equal(rpc_code_from_errno(-ESRCH), RPC_NOT_FOUND);
        assert_int_equal(rpc_code_from_errno(ENOSPC), RPC_INTERNAL);
        struct rpc_status st;
        assert_int_equal(rpc_status_set(&st, RPC_DEADLINE_EXCEEDED, "x %d", 1), -ETIMEDOUT);
        assert_string_equal(st.message, "x 1");
        assert_int_equal(rpc_status_set(NULL, RPC_OK, "y"), 0);
}

int main(int argc, char **argv)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_codes),
                cmocka_unit_test(test_roundtrip),
                cmocka_unit_test(test_unknown_method),
                cmocka_unit_test(test_undecodable),
                cmocka_unit_test(test_oversized),
                cmocka_unit_test(test_parked_calls),
                cmocka_unit_test(test_deadline),
                cmocka_unit_test(test_unavailable),
                cmocka_unit_test(test_server_gone),
                cmocka_unit_test(test_queue_mode),
                cmocka_unit_test(test_flush),
                cmocka_unit_test(test_reconnect_after_dying_server),
        };
        /* Closing a socket whose listener nng had stopped serving leaks the
         * connections stuck in it, inside nng 1.5.2: run apart, with leak
         * detection off (meson.build). */
        const struct CMUnitTest renewal[] = {
                cmocka_unit_test(test_listener_renewed),
        };
        if (argc > 1 && strcmp(argv[1], "renewal") == 0)
                return cmocka_run_group_tests_name("renewal", renewal, NULL, NULL);
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* berth-ctr, the supervisor's command-line client (like containerd's ctr):
 * what its command files share. ctr-main.c parses the global options,
 * connects, and runs one command. */
#pragma once

#include <nng/nng.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

#include "rpc-client.h"
#include "supervisor.pb-c.h"

struct ctr {
        const char *address;      /* --address, default ipc:///run/berth/supervisor.sock */
        const char *events_address; /* --events-address, default ipc:///run/berth/supervisor-events.sock */
        int timeout_ms;           /* --timeout for calls that are not long-running; RPC_NO_TIMEOUT for pulls, waits */
        bool json;                /* --json: print replies as JSON (pb-json) instead of tables */
        struct rpc_client *client;
};

/* Calls method with req; on failure prints "berth-ctr: <message>" to
 * stderr and returns -errno. */
int ctr_call(struct ctr *c, const char *method, const ProtobufCMessage *req,
             const ProtobufCMessageDescriptor *reply_type, int timeout_ms, ProtobufCMessage **ret_reply);

/* Prints msg as JSON on stdout (pb-json). */
void ctr_print_json(const ProtobufCMessage *msg);

/* ctr-main.c: subscribes to the events socket for topics starting with
 * topic ("" for all); prints the reason and returns -errno on failure. */
int ctr_events_open(struct ctr *c, const char *topic, nng_socket *ret);
/* The next event (blocking): *ret is NULL for a message that is not an
 * envelope. -ECANCELED once the socket is closed (from another thread). */
int ctr_events_recv(nng_socket sock, Berth__Supervisor__Envelope **ret);

/* Each command gets argv after the global options, argv[0] being its own
 * name ("images", "run", ...), and returns the process's exit code. */
int ctr_cmd_version(struct ctr *c, int argc, char **argv);
int ctr_cmd_images(struct ctr *c, int argc, char **argv);     /* ctr-images.c: pull|ls|rm|tag|inspect|import|export */
int ctr_cmd_content(struct ctr *c, int argc, char **argv);    /* ctr-images.c: ls|info|rm|gc */
int ctr_cmd_snapshots(struct ctr *c, int argc, char **argv);  /* ctr-images.c: ls|rm */
int ctr_cmd_login(struct ctr *c, int argc, char **argv);      /* ctr-images.c */
int ctr_cmd_events(struct ctr *c, int argc, char **argv);     /* ctr-main.c */
int ctr_cmd_run(struct ctr *c, int argc, char **argv);        /* ctr-tasks.c */
int ctr_cmd_containers(struct ctr *c, int argc, char **argv); /* ctr-tasks.c: create|ls|info|rm */
int ctr_cmd_tasks(struct ctr *c, int argc, char **argv);      /* ctr-tasks.c: ls|start|kill|exec|ps|pause|resume|metrics|wait|rm */

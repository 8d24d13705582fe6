/* containers.* of berth-supervisor (proto/supervisor.proto): the handlers,
 * wired into supervisor_tasks_methods by svc-tasks.c, and the roll-back of
 * creates that a crash cut short. */
#pragma once

#include <stdbool.h>

#include "container-store.h"
#include "daemon.h"

void container_service_create(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
void container_service_get(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
void container_service_list(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
void container_service_update(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
void container_service_delete(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);

/* Records still marked "creating": their snapshots and records go. */
void container_service_recover(struct supervisor *s);

/* svc-tasks.c, for the handlers above */
struct container_store *supervisor_tasks_containers(struct supervisor *s);
void supervisor_tasks_lock_containers(struct supervisor *s);
void supervisor_tasks_unlock_containers(struct supervisor *s);
bool supervisor_tasks_has_task(struct supervisor *s, const char *id);

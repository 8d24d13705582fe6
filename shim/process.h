/* Operations on the container's processes, called by the RPC handlers
 * (service.c). Each answers its call, at once or when the runtime command
 * it started has finished. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "shim.h"

/* start: the runtime's run --detach, no Start follows; hold: then the
 * output is read only once that many attach clients are here (io_hold). */
void proc_create(struct proc *init, struct rpc_call *call, bool want_stdin, bool stdin_once, bool start,
                 unsigned hold);
void proc_start(struct proc *p, struct rpc_call *call);
void proc_kill(struct proc *p, struct rpc_call *call, unsigned sig, bool all);
void proc_delete(struct proc *p, struct rpc_call *call, bool force);
void proc_pause(struct proc *init, struct rpc_call *call, bool pause);
void proc_update(struct proc *init, struct rpc_call *call, const void *resources, size_t len);
void proc_pids(struct proc *init, struct rpc_call *call);
void proc_exec(struct shim *s, struct rpc_call *call, const char *exec_id, bool terminal, bool want_stdin,
               bool stdin_once, const void *process_json, size_t len);
void proc_wait(struct proc *p, struct rpc_call *call);
void proc_state(struct proc *p, struct rpc_call *call);

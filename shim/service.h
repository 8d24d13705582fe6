/* The RPC methods of shim.proto: thin handlers over process.c. */
#pragma once

#include <stddef.h>

#include "rpc-server.h"

extern const struct rpc_method shim_methods[];
extern const size_t shim_n_methods;

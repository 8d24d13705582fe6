/* A protobuf-c message as JSON (jansson), driven by its descriptor: every
 * field by its proto name, proto3 defaults included; enums by name; bytes
 * as a string when they are UTF-8, else as {"hex": "..."}. For tools and
 * tests that print replies (berth-shimctl), not for the wire. */
#pragma once

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

json_t *pb_to_json(const ProtobufCMessage *m);

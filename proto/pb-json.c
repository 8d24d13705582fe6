#include "pb-json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static json_t *bytes_to_json(const ProtobufCBinaryData *b)
{
        json_t *s = json_stringn((const char *) b->data, b->len);
        if (s)
                return s;
        char *hex = malloc(b->len * 2 + 1);
        if (!hex)
                return NULL;
        for (size_t i = 0; i < b->len; i++)
                snprintf(hex + 2 * i, 3, "%02x", b->data[i]);
        json_t *o = json_pack("{s:s}", "hex", hex);
        free(hex);
        return o;
}

/* One value of a field at p (a pointer into the message or a repeated array). */
static json_t *value_to_json(const ProtobufCFieldDescriptor *f, const void *p)
{
        switch (f->type) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
                return json_integer(*(const int32_t *) p);
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
                return json_integer(*(const uint32_t *) p);
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
                return json_integer(*(const int64_t *) p);
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64: {
                uint64_t v = *(const uint64_t *) p;
                return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t) v);
        }
        case PROTOBUF_C_TYPE_FLOAT:
                return json_real(*(const float *) p);
        case PROTOBUF_C_TYPE_DOUBLE:
                return json_real(*(const double *) p);
        case PROTOBUF_C_TYPE_BOOL:
                return json_boolean(*(const protobuf_c_boolean *) p);
        case PROTOBUF_C_TYPE_ENUM: {
                int v = *(const int *) p;
                const ProtobufCEnumValue *ev =
                        protobuf_c_enum_descriptor_get_value((const ProtobufCEnumDescriptor *) f->descriptor, v);
                return ev ? json_string(ev->name) : json_integer(v);
        }
        case PROTOBUF_C_TYPE_STRING: {
                const char *s = *(char *const *) p;
                if (!s)
                        return json_string("");
                json_t *j = json_string(s);
                return j ? j : json_string("<invalid utf-8>");
        }
        case PROTOBUF_C_TYPE_BYTES:
                return bytes_to_json((const ProtobufCBinaryData *) p);
        case PROTOBUF_C_TYPE_MESSAGE: {
                const ProtobufCMessage *m = *(ProtobufCMessage *const *) p;
                return m ? pb_to_json(m) : json_null();
        }
        }
        return json_null();
}

static size_t value_size(const ProtobufCFieldDescriptor *f)
{
        switch (f->type) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
                return 4;
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
                return 8;
        case PROTOBUF_C_TYPE_FLOAT:
                return sizeof(float);
        case PROTOBUF_C_TYPE_DOUBLE:
                return sizeof(double);
        case PROTOBUF_C_TYPE_BOOL:
                return sizeof(protobuf_c_boolean);
        case PROTOBUF_C_TYPE_ENUM:
                return sizeof(int);
        case PROTOBUF_C_TYPE_STRING:
        case PROTOBUF_C_TYPE_MESSAGE:
                return sizeof(void *);
        case PROTOBUF_C_TYPE_BYTES:
                return sizeof(ProtobufCBinaryData);
        }
        return 0;
}

json_t *pb_to_json(const ProtobufCMessage *m)
{
        const ProtobufCMessageDescriptor *d = m->descriptor;
        json_t *o = json_object();
        if (!o)
                return NULL;
        for (unsigned i = 0; i < d->n_fields; i++) {
                const ProtobufCFieldDescriptor *f = &d->fields[i];
                const char *base = (const char *) m;
                json_t *v;
                if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                        size_t n = *(const size_t *) (base + f->quantifier_offset);
                        const char *arr = *(char *const *) (base + f->offset);
                        v = json_array();
                        for (size_t k = 0; v && k < n; k++)
                                json_array_append_new(v, value_to_json(f, arr + k * value_size(f)));
                } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
                           f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING &&
                           !*(const protobuf_c_boolean *) (base + f->quantifier_offset)) {
                        continue;
                } else {
                        v = value_to_json(f, base + f->offset);
                }
                json_object_set_new(o, f->name, v ? v : json_null());
        }
        return o;
}

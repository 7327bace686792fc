/* jsonutil.h: small json-c helpers the layers share. */
#ifndef OFFLOAD_JSONUTIL_H
#define OFFLOAD_JSONUTIL_H

#include <json-c/json.h>

/* The member key of obj, or NULL when obj is not an object, has no such member, or the
 * member is JSON null (json-c's null is a NULL object). */
json_object *jsonutil_member(json_object *obj, const char *key);

#endif

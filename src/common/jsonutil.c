/* jsonutil.c: small json-c helpers the layers share (see jsonutil.h). */
#include <stddef.h>

#include "common/jsonutil.h"

json_object *jsonutil_member(json_object *obj, const char *key)
{
	json_object *v = NULL;

	return json_object_object_get_ex(obj, key, &v) ? v : NULL;
}

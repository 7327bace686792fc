/* subject.c: the one "Re:" rule for the subject of a message in an existing thread. */
#include <strings.h>

#include "common/xalloc.h"
#include "mail/subject.h"

char *mail_reply_subject(const char *first)
{
	if (strncasecmp(first, "Re:", 3) == 0)
		return xstrdup(first);
	return xasprintf("Re: %s", first);
}

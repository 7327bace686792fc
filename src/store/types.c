/* types.c: names of the case statuses and event types, as stored. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "store/types.h"

static const char *const status_names[CASE_STATUS_COUNT] = {
	[CASE_CREATED] = "CREATED",	    [CASE_RUNNING] = "RUNNING",
	[CASE_INPUT_NEEDED] = "INPUT_NEEDED", [CASE_COMPLETED] = "COMPLETED",
	[CASE_FAILED] = "FAILED",
};

static const char *const event_names[EVENT_TYPE_COUNT] = {
	[EVENT_CASE_CREATED] = "CASE_CREATED",
	[EVENT_FOLLOW_UP_DUE] = "FOLLOW_UP_DUE",
	[EVENT_REPLY_RECEIVED] = "REPLY_RECEIVED",
	[EVENT_INPUT_PROVIDED] = "INPUT_PROVIDED",
	[EVENT_BOUNCE_RECEIVED] = "BOUNCE_RECEIVED",
	[EVENT_COMPLAINT_RECEIVED] = "COMPLAINT_RECEIVED",
	[EVENT_SMS_OPT_OUT] = "SMS_OPT_OUT",
};

static int lookup(const char *const *names, int n, const char *name)
{
	if (!name)
		return -1;
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

const char *store_case_status_name(enum store_case_status s)
{
	return (unsigned)s < CASE_STATUS_COUNT ? status_names[s] : "?";
}

int store_case_status_parse(const char *name, enum store_case_status *s_r)
{
	int i = lookup(status_names, CASE_STATUS_COUNT, name);

	if (i < 0)
		return -1;
	*s_r = (enum store_case_status)i;
	return 0;
}

void store_case_status_list(char *out, size_t cap)
{
	size_t used = 0;

	if (cap == 0)
		return;
	out[0] = '\0';
	for (int i = 0; i < CASE_STATUS_COUNT && used < cap; i++) {
		const char *sep = i == 0 ? "" : i == CASE_STATUS_COUNT - 1 ? " or " : ", ";
		int n = snprintf(out + used, cap - used, "%s%s", sep, status_names[i]);

		if (n < 0)
			break;
		used += (size_t)n;
	}
}

int store_case_status_final(enum store_case_status s)
{
	return s == CASE_COMPLETED || s == CASE_FAILED;
}

const char *store_event_type_name(enum store_event_type t)
{
	return (unsigned)t < EVENT_TYPE_COUNT ? event_names[t] : "?";
}

int store_event_type_parse(const char *name, enum store_event_type *t_r)
{
	int i = lookup(event_names, EVENT_TYPE_COUNT, name);

	if (i < 0)
		return -1;
	*t_r = (enum store_event_type)i;
	return 0;
}

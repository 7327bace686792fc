/* types.h: the case statuses and event types of the store, with their names in one table. */
#ifndef OFFLOAD_STORE_TYPES_H
#define OFFLOAD_STORE_TYPES_H

#include <stddef.h>

/* The statuses of doc/api.md, "Lifecycle"; the stored text is store_case_status_name(). */
enum store_case_status {
	CASE_CREATED,      /* stored, first message not sent yet */
	CASE_RUNNING,      /* outreach sent; waiting for a reply or the next follow-up */
	CASE_INPUT_NEEDED, /* paused on a question to the client's operator */
	CASE_COMPLETED,    /* final: the goal was reached */
	CASE_FAILED,       /* final: see result_status */
	CASE_STATUS_COUNT
};

/* The internal work queue's event types (table events, column type). */
enum store_event_type {
	EVENT_CASE_CREATED,       /* send the first message */
	EVENT_FOLLOW_UP_DUE,      /* next_action_at passed while RUNNING */
	EVENT_REPLY_RECEIVED,     /* a person's message matched the case */
	EVENT_INPUT_PROVIDED,     /* the operator answered POST /cases/{id}/input */
	EVENT_BOUNCE_RECEIVED,    /* an RFC 3464 report with Action: failed */
	EVENT_COMPLAINT_RECEIVED, /* an RFC 5965 feedback report */
	EVENT_SMS_OPT_OUT,        /* the counterparty answered an SMS with STOP (or the like) */
	EVENT_TYPE_COUNT
};

/* The stored name ("RUNNING"); never NULL for a valid value. */
const char *store_case_status_name(enum store_case_status s);
/* 0 with *s_r set, or -1 when name is not a status (NULL included). */
int store_case_status_parse(const char *name, enum store_case_status *s_r);
/* The statuses as a message lists them, from the one table: "CREATED, RUNNING,
 * INPUT_NEEDED, COMPLETED or FAILED" (cut to cap bytes with the NUL). */
void store_case_status_list(char *out, size_t cap);
/* COMPLETED and FAILED. */
int store_case_status_final(enum store_case_status s);

const char *store_event_type_name(enum store_event_type t);
int store_event_type_parse(const char *name, enum store_event_type *t_r);

#endif

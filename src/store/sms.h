/* sms.h: the SMS channel's tables: the per-number lock row, opt-outs, incoming SMS from
 * Kannel (stored once per Kannel id) and delivery reports on outbound SMS. */
#ifndef OFFLOAD_STORE_SMS_H
#define OFFLOAD_STORE_SMS_H

#include <stddef.h>
#include <stdint.h>

struct db;

/*
 * Inside the caller's transaction: writes (creating it if needed) the sms_numbers row of
 * number, so that every other transaction deciding about the number waits until this one
 * ends. The caller takes the locks of several numbers in strcmp order. 0 or -1.
 */
int store_sms_lock_number(struct db *db, const char *number, int64_t now_ms);

/* 1 when number has opted out, 0 when not, -1 on a database error. Inside a transaction
 * after store_sms_lock_number, the answer holds until the transaction ends. */
int store_sms_opted_out(struct db *db, const char *number);

/*
 * The open (not COMPLETED/FAILED) SMS case of number: 1 with its id in case_id_r and its
 * creation time (Unix ms) in *created_at_r, 0 when there is none, -1 on a database error.
 * Either out-parameter may be NULL.
 */
int store_sms_open_case(struct db *db, const char *number, char case_id_r[37],
			int64_t *created_at_r);

/* What an incoming SMS says, as the endpoint decided from its text. */
enum store_sms_intent {
	STORE_SMS_TEXT,  /* a message for the case */
	STORE_SMS_STOP,  /* an opt-out keyword: end the case, record the opt-out */
	STORE_SMS_START, /* START/UNSTOP: lift the opt-out */
};

/* An incoming SMS (Kannel's sms-service get-url). Strings borrowed. */
struct store_sms_incoming {
	const char *kannel_id;  /* Kannel's message id (%I): the same id is stored once */
	const char *from;       /* the sender, E.164 as the stored counterparty numbers */
	const char *to;         /* our number it was sent to */
	const char *text;       /* UTF-8 */
	enum store_sms_intent intent;
	const char *keyword;    /* STOP: the keyword as recognised, upper case ("STOP") */
	int unmatchable;        /* from is not an E.164 number: stored unmatched, no lock */
	int64_t now_ms;
};

enum store_sms_result {
	STORE_SMS_STORED,    /* committed */
	STORE_SMS_DUPLICATE, /* this Kannel id was stored before: nothing changed */
	STORE_SMS_REFUSED,   /* a value the schema refuses: trying again will not help */
	STORE_SMS_ERROR,     /* database trouble that may go away */
};

/*
 * Stores in, in one transaction that holds the number's lock row: the message (matched to
 * the open SMS case of in->from, else unmatched with case_id NULL), and by intent: TEXT
 * queues REPLY_RECEIVED for a matched case; STOP records the opt-out (keeping the first
 * date) and queues SMS_OPT_OUT for a matched case; START deletes the opt-out, and when a
 * case is open the message is a reply to it like TEXT. On STORED, case_id_r holds the case
 * ("" for none) and *row_r the messages row. *error_r: the database's text for the other
 * results (valid until db's next statement).
 */
enum store_sms_result store_sms_incoming_store(struct db *db, const struct store_sms_incoming *in,
					       char case_id_r[37], int64_t *row_r,
					       const char **error_r);

/* The delivery-report types of Kannel's %d that the service acts on. */
#define STORE_SMS_DLR_DELIVERED 1
#define STORE_SMS_DLR_UNDELIVERED 2
#define STORE_SMS_DLR_QUEUED 4
#define STORE_SMS_DLR_ACCEPTED 8
#define STORE_SMS_DLR_REJECTED 16

/*
 * Records the delivery report type (Kannel's %d) with the SMSC's text report on our
 * outbound SMS message_id, in one transaction: delivered, queued and accepted are recorded
 * on the message (a final state is never replaced by queued/accepted, the first failure
 * by anything); undelivered and
 * rejected are recorded and, the first time, queue BOUNCE_RECEIVED for its case with a
 * diagnostic naming the report. Returns 1 recorded, 0 when message_id is none of our
 * outbound SMS (nothing changed), -1 on a database error.
 */
int store_sms_dlr_record(struct db *db, const char *message_id, int type, const char *report,
			 int64_t now_ms);

/* 1 when our outbound row has a delivery report of any type, 0 when not, -1 on error. A
 * report means Kannel took the message: a retry must not send it again. */
int store_sms_outbound_reported(struct db *db, int64_t row);

/* An opt-out as listed for the operator. Strings owned by the list. */
struct store_sms_optout {
	char *number;
	int64_t since;
	char *case_id; /* the case the STOP ended, or NULL */
	char *keyword; /* the word received, or NULL */
};

/* Every opt-out, oldest first (at most max rows). 0 with *list_r and *n_r (free with
 * store_sms_optouts_free), or -1. */
int store_sms_optouts_list(struct db *db, size_t max, struct store_sms_optout **list_r,
			   size_t *n_r);
void store_sms_optouts_free(struct store_sms_optout **list, size_t n);

/* An incoming SMS that matched no case, as listed for the operator. Strings owned. */
struct store_sms_unmatched {
	int64_t received_at;
	char *from;
	char *to;
	char *kannel_id; /* or NULL */
	char *text;
};

/* The newest max incoming SMS without a case, newest first. 0 with *list_r and *n_r (free
 * with store_sms_unmatched_free), or -1. */
int store_sms_unmatched_list(struct db *db, size_t max, struct store_sms_unmatched **list_r,
			     size_t *n_r);
void store_sms_unmatched_free(struct store_sms_unmatched **list, size_t n);

/* Lifts the opt-out of number (under its lock row): 1 lifted, 0 there was none, -1. */
int store_sms_optout_clear(struct db *db, const char *number, int64_t now_ms);

#endif

/* kannel.h: sending one SMS through Kannel's smsbox sendsms interface (HTTP GET). */
#ifndef OFFLOAD_SMS_KANNEL_H
#define OFFLOAD_SMS_KANNEL_H

#include <stddef.h>

#include "sms/segments.h"

struct sms_config;

enum sms_send_result {
	SMS_SEND_SENT,      /* Kannel accepted it (202 "0: Accepted for delivery") */
	SMS_SEND_TEMPORARY, /* 5xx, no connection, timeout: try again later */
	SMS_SEND_PERMANENT, /* 4xx: Kannel refused it; trying again will not help */
};

/* Most bytes of Kannel's answer kept as the reason. */
#define SMS_KANNEL_REASON_MAX 512

/*
 * Sends text (UTF-8) to the number to (E.164) from c->sender with one GET of c->sendsms_url:
 * username, password, from, to, text, charset=UTF-8, coding (0 GSM-7 or 2 UCS-2, as given),
 * dlr-mask=19 (delivered, undelivered, rejected) and dlr-url =
 * c->callback_base "/kannel/dlr?secret=S&msg=MESSAGE_ID&type=%d&reply=%A", each value
 * URL-encoded. Waits at most c->timeout_ms; follows no redirect. The reason (Kannel's text,
 * or what went wrong, for logs and failureReason) goes to reason (cap bytes). The URL holds
 * the password and the secret: it is never logged. message_id must be URL-safe
 * (sms_config_url_safe).
 */
enum sms_send_result sms_kannel_send(const struct sms_config *c, const char *to,
				     const char *text, enum sms_coding coding,
				     const char *message_id, char *reason, size_t cap);

#endif

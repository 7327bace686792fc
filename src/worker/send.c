/* send.c: the worker's two transports: a message over SMTP, an SMS through Kannel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "common/xalloc.h"
#include "mail/compose.h"
#include "mail/smtp.h"
#include "sms/kannel.h"
#include "sms/segments.h"
#include "store/messages_out.h"
#include "worker/sender.h"
#include "worker/worker.h"

int worker_sms_text_fits(const struct worker_ctx *w, const char *text, enum sms_coding *coding_r,
			 char *why, size_t cap)
{
	return sms_text_fits(text, w->s->sms.max_segments, "[sms] max_segments", coding_r, why,
			     cap);
}

enum smtp_result worker_send_mail(struct worker_ctx *w, const struct worker_sender *snd,
				  const char *case_id, const char *from_name,
				  const char *to_name, const char *to_addr,
				  const struct store_outbound *o, char *reason, size_t reason_cap,
				  int64_t now)
{
	struct compose_msg m;
	const char *err = NULL;
	char *raw = NULL, *reply_to;
	size_t raw_len = 0;
	enum smtp_result sr;
	const char *inbox = snd->inbox_address, *at = strrchr(inbox, '@');
	int64_t t0;

	/* Replies come back plus-addressed to the case, at the client's reply domain when it
	 * has one (doc/operator-guide.md, "Sender identities"). */
	reply_to = at ? xasprintf("%.*s+%s%s", (int)(at - inbox), inbox, case_id, at)
		      : xstrdup(inbox);
	m = (struct compose_msg){
		.from_name = from_name,
		.from_addr = snd->from_address,
		.reply_to = reply_to,
		.to_name = to_name,
		.to_addr = to_addr,
		.subject = o->subject,
		.body = o->body,
		.message_id = o->message_id,
		.in_reply_to = o->in_reply_to,
		.references = o->references,
		.case_id = case_id,
		.date_ms = now,
	};
	if (compose_message(&m, &raw, &raw_len, &err) < 0) {
		snprintf(reason, reason_cap, "the message could not be written: %s", err);
		free(reply_to);
		return SMTP_PERMANENT;
	}
	t0 = util_now_us();
	sr = smtp_send(w->smtp, snd->route, snd->from_address, to_addr, raw, raw_len, reason,
		       reason_cap);
	w->stats.smtp_us += util_now_us() - t0;
	free(raw);
	free(reply_to);
	return sr;
}

enum smtp_result worker_send_sms(struct worker_ctx *w, const char *to,
				 const struct store_outbound *o, char *reason, size_t reason_cap)
{
	enum sms_coding coding = SMS_CODING_GSM7;
	char why[256];
	int64_t t0;
	enum sms_send_result r;

	/* The text fitted when it was recorded; a smaller max_segments since is no reason to
	 * withhold a message already decided, so only the coding is taken here. */
	if (!worker_sms_text_fits(w, o->body, &coding, why, sizeof why) &&
	    (!o->body || !*o->body)) {
		snprintf(reason, reason_cap, "the SMS text is empty");
		return SMTP_PERMANENT;
	}
	t0 = util_now_us();
	r = sms_kannel_send(&w->s->sms, to, o->body, coding, o->message_id, reason, reason_cap);
	w->stats.smtp_us += util_now_us() - t0;
	if (r == SMS_SEND_SENT)
		return SMTP_SENT;
	return r == SMS_SEND_PERMANENT ? SMTP_PERMANENT : SMTP_TEMPORARY;
}

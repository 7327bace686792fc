/* sender.c: per-thread cache of client sender identities, with their SMTP passwords. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "mail/identity.h"
#include "store/senders.h"
#include "worker/sender.h"
#include "worker/worker.h"

/* Distinct clients a thread remembers in one pass; past that the cache starts afresh. */
#define SENDERS_MAX 256

struct entry {
	struct worker_sender pub;
	struct store_sender row;
	char *inbox;           /* the inbox address at the reply domain */
	char *password;        /* from the password file; cleared on free */
	struct smtp_route route;
	char error[600];
};

struct worker_senders {
	struct entry *v[SENDERS_MAX];
	size_t n;
};

struct worker_senders *worker_senders_new(void)
{
	return xcalloc(1, sizeof(struct worker_senders));
}

static void entry_free(struct entry *e)
{
	if (!e)
		return;
	store_sender_free(&e->row);
	free(e->inbox);
	if (e->password) {
		explicit_bzero(e->password, strlen(e->password));
		free(e->password);
	}
	free(e);
}

static void clear(struct worker_senders *c)
{
	for (size_t i = 0; i < c->n; i++)
		entry_free(c->v[i]);
	c->n = 0;
}

void worker_senders_free(struct worker_senders **cp)
{
	if (!*cp)
		return;
	clear(*cp);
	free(*cp);
	*cp = NULL;
}

/* Fills e from its row (found) or from the server's settings. */
static void entry_build(struct entry *e, int found, const struct worker_settings *s)
{
	struct worker_sender *p = &e->pub;

	p->own = found;
	p->from_address = s->from_address;
	p->inbox_address = s->inbox_address;
	p->msgid_domain = s->domain;
	if (!found)
		return;
	p->from_address = e->row.from_address;
	if (e->row.reply_domain) {
		e->inbox = mail_identity_rehome(s->inbox_address, e->row.reply_domain);
		if (e->inbox)
			p->inbox_address = e->inbox;
		p->msgid_domain = e->row.reply_domain;
		e->route.bounce_domain = e->row.reply_domain;
	}
	if (e->row.smtp_url) {
		e->route.url = e->row.smtp_url;
		e->route.user = e->row.smtp_user;
		if (e->row.smtp_user && e->row.smtp_password_file) {
			char err[500];

			if (mail_identity_password_read(e->row.smtp_password_file, &e->password, err,
							sizeof err) < 0) {
				snprintf(e->error, sizeof e->error, "the SMTP password file of client "
					 "%s cannot be used: %s", e->row.client_id, err);
				p->error = e->error;
				log_error("%s", e->error);
			}
			e->route.password = e->password;
		}
	}
	if (e->route.url || e->route.bounce_domain)
		p->route = &e->route;
}

int worker_sender_get(struct worker_senders *c, struct db *db, const struct worker_settings *s,
		      const char *client_id, const struct worker_sender **out)
{
	struct entry *e;
	const char *err = NULL;
	int found;

	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->v[i]->pub.client_id, client_id) == 0) {
			*out = &c->v[i]->pub;
			return 0;
		}
	e = xcalloc(1, sizeof *e);
	found = store_sender_get(db, client_id, &e->row, &err);
	if (found < 0) {
		entry_free(e);
		return -1;
	}
	snprintf(e->pub.client_id, sizeof e->pub.client_id, "%s", client_id);
	entry_build(e, found, s);
	if (c->n == SENDERS_MAX)
		clear(c);
	c->v[c->n++] = e;
	*out = &e->pub;
	return 0;
}

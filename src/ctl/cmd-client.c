/* cmd-client.c: 'offloadctl client': create, list and show clients, rotate a client's
 * webhook signing secret, set or clear a client's sender identity.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/cfg.h"
#include "common/log.h"
#include "common/plans.h"
#include "common/util.h"
#include "ctl/ctl.h"
#include "mail/identity.h"
#include "store/clients.h"
#include "store/senders.h"

static int cmd_client_create(struct ctl *ctl, int argc, char **argv)
{
	const char *name = NULL, *plan_name = NULL, *err;
	struct opt opts[] = { { "name", &name, NULL }, { "plan", &plan_name, NULL },
			      { NULL, NULL, NULL } };
	unsigned char raw[32];
	char secret[64], b64[48], id[37];
	enum plan plan;
	int n, r = parse_sub(argc, argv, opts, NULL, 0, &n, &ctl->json);

	if (r == 1) {
		printf("usage: offloadctl client create --name NAME --plan PLAN [--json]\n\n"
		       "Creates a client (an account that owns cases and keys). PLAN is SANDBOX,\n"
		       "PAYG, BASE_PRO or UNLIMITED. Prints the client id and its webhook signing\n"
		       "secret (whsec_...); the secret is shown only here.\n");
		return 0;
	}
	if (r)
		return r;
	if (!name || !*name || strlen(name) > 255 || strpbrk(name, "\r\n"))
		return usage_error("--name is required (1-255 characters, one line)");
	if (!plan_name || plans_parse(plan_name, &plan) < 0)
		return usage_error("--plan must be SANDBOX, PAYG, BASE_PRO or UNLIMITED");
	util_random_bytes(raw, sizeof raw);
	util_base64(raw, sizeof raw, b64);
	snprintf(secret, sizeof secret, "whsec_%s", b64);
	util_uuid_v4(id);
	if (open_db(ctl) < 0)
		return 1;
	{
		struct store_client_new c = { .id = id, .name = name, .plan = plans_name(plan),
					      .webhook_secret = secret,
					      .created_at_ms = util_now_ms() };

		if (store_client_create(ctl->db, &c, &err) < 0) {
			log_error("client create: %s", err);
			return 1;
		}
	}
	if (ctl->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "clientId", json_object_new_string(id));
		json_object_object_add(o, "name", json_object_new_string(name));
		json_object_object_add(o, "plan", json_object_new_string(plans_name(plan)));
		json_object_object_add(o, "webhookSecret", json_object_new_string(secret));
		print_json(o);
		json_object_put(o);
	} else {
		printf("client id:      %s\nname:           %s\nplan:           %s\n"
		       "webhook secret: %s\n\nThe webhook secret is shown only now: store it where "
		       "the client's webhook receiver can read it.\n",
		       id, name, plans_name(plan), secret);
	}
	return 0;
}

/* ---- sender identities (doc/operator-guide.md, "Sender identities") ---- */

/* The JSON of an identity: never a password, only the path of its file. */
static json_object *sender_json(const struct store_sender *s)
{
	json_object *o = json_object_new_object();

#define OPT_STR(v) ((v) ? json_object_new_string(v) : NULL)
	json_object_object_add(o, "fromAddress", json_object_new_string(s->from_address));
	json_object_object_add(o, "replyDomain", OPT_STR(s->reply_domain));
	json_object_object_add(o, "smtpUrl", OPT_STR(s->smtp_url));
	json_object_object_add(o, "smtpUser", OPT_STR(s->smtp_user));
	json_object_object_add(o, "smtpPasswordFile", OPT_STR(s->smtp_password_file));
	json_object_object_add(o, "updatedAt", json_object_new_int64(s->updated_at_ms));
#undef OPT_STR
	return o;
}

/* The server's reply domain: the domain of [mail] inbox_address (else from_address). */
static const char *server_reply_domain(struct ctl *ctl)
{
	const char *from = cfg_get(ctl->cfg, "mail", "from_address", "offload@localhost");
	const char *inbox = cfg_get(ctl->cfg, "mail", "inbox_address", from);

	return mail_identity_domain_of(*inbox ? inbox : from);
}

static void sender_print(struct ctl *ctl, const struct store_sender *s)
{
	if (!s) {
		printf("sender:         the server's [mail] settings (no identity of its own)\n");
		return;
	}
	printf("from address:   %s\n", s->from_address);
	printf("reply domain:   %s%s\n", s->reply_domain ? s->reply_domain : server_reply_domain(ctl),
	       s->reply_domain ? "" : " (the server's)");
	printf("smtp url:       %s\n", s->smtp_url ? s->smtp_url : "the server's [mail] smtp_url");
	if (s->smtp_user)
		printf("smtp user:      %s\nsmtp password:  read from %s\n", s->smtp_user,
		       s->smtp_password_file);
}

/* 1 when s has a control character (or DEL), else 0. */
static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

static int cmd_client_set(struct ctl *ctl, int argc, char **argv)
{
	const char *pos[1] = { NULL }, *from = NULL, *domain_arg = NULL, *url = NULL, *user = NULL,
		   *pwfile = NULL, *err = NULL;
	int clear = 0;
	struct opt opts[] = { { "from-address", &from, NULL }, { "reply-domain", &domain_arg, NULL },
			      { "smtp-url", &url, NULL }, { "smtp-user", &user, NULL },
			      { "smtp-password-file", &pwfile, NULL },
			      { "clear-sender", NULL, &clear }, { NULL, NULL, NULL } };
	struct store_sender s;
	char domain[STORE_SENDER_DOMAIN_SIZE] = "", warning[600] = "", problem[600] = "";
	char other[37];
	int n, r = parse_sub(argc, argv, opts, pos, 1, &n, &ctl->json);

	if (r == 1) {
		printf("usage: offloadctl client set CLIENT_ID --from-address ADDRESS\n"
		       "           [--reply-domain DOMAIN]\n"
		       "           [--smtp-url URL [--smtp-user USER --smtp-password-file FILE]] [--json]\n"
		       "       offloadctl client set CLIENT_ID --clear-sender [--json]\n\n"
		       "Sets the client's sender identity; its mail is sent with it from the worker's\n"
		       "next pass on. Every call states the whole identity: an option left out is\n"
		       "not kept from before.\n"
		       "  --from-address ADDRESS   the From address of the client's mail\n"
		       "  --reply-domain DOMAIN    replies come back to <inbox>+<caseId>@DOMAIN and\n"
		       "                           bounces to <bounces>+<tag>@DOMAIN (the local parts\n"
		       "                           of [mail] inbox_address and bounce_address); it\n"
		       "                           must reach this server's mailbox. One client per\n"
		       "                           domain. Default: the server's own.\n"
		       "  --smtp-url URL           smtp://HOST[:PORT] or smtps://HOST[:PORT] for this\n"
		       "                           client's mail. Default: [mail] smtp_url.\n"
		       "  --smtp-user USER         log in as USER (over TLS only), with the password\n"
		       "  --smtp-password-file FILE  read from FILE's first line by the worker at\n"
		       "                           each pass. FILE must be an absolute path, not\n"
		       "                           readable by others (mode 0600, owned by the\n"
		       "                           service user); group-readable is warned about.\n"
		       "                           The password is never stored in the database.\n"
		       "  --clear-sender           remove the identity: the server's [mail] settings\n"
		       "                           apply again.\n"
		       "Exit status: 0 set, 1 failed, 2 bad arguments (nothing changed), 3 no such\n"
		       "client.\n");
		return 0;
	}
	if (r)
		return r;
	if (n != 1 || !util_uuid_valid(pos[0]))
		return usage_error("client set needs a CLIENT_ID (from 'client list')");
	if (clear) {
		if (from || domain_arg || url || user || pwfile)
			return usage_error("--clear-sender goes alone: it removes the whole identity");
		if (open_db(ctl) < 0)
			return 1;
		r = store_sender_clear(ctl->db, pos[0], &err);
		if (r == 0)
			r = store_sender_client_exists(ctl->db, pos[0], &err) ? 0 : -2;
		if (r == -2) {
			log_error("no client %s", pos[0]);
			return EXIT_NOT_FOUND;
		}
		if (r < 0) {
			log_error("client set: %s", err);
			return 1;
		}
		if (ctl->json) {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "clientId", json_object_new_string(pos[0]));
			json_object_object_add(o, "sender", NULL);
			print_json(o);
			json_object_put(o);
		} else {
			printf("client %s: %s; its mail uses the server's [mail] settings\n", pos[0],
			       r ? "sender identity removed" : "had no sender identity");
		}
		return 0;
	}
	if (!from)
		return usage_error("--from-address is required (or --clear-sender to remove the "
				   "identity)");
	if (!mail_identity_address_valid(from))
		return usage_error("--from-address: must be an email address local@domain (ASCII, "
				   "at most 254 characters)");
	if (domain_arg) {
		if (!mail_identity_domain_valid(domain_arg))
			return usage_error("--reply-domain: must be a domain name such as "
					   "mail.example.com (letters, digits, '-' and '.'; no "
					   "trailing dot)");
		for (size_t i = 0; domain_arg[i] && i < sizeof domain - 1; i++)
			domain[i] = (char)tolower((unsigned char)domain_arg[i]);
		if (strcasecmp(domain, server_reply_domain(ctl)) == 0)
			return usage_error("--reply-domain: %s is the server's own reply domain "
					   "([mail] inbox_address); leave --reply-domain out to use "
					   "it", domain);
	}
	if ((user || pwfile) && !url)
		return usage_error("--smtp-user and --smtp-password-file need --smtp-url");
	if (!user != !pwfile)
		return usage_error("--smtp-user and --smtp-password-file go together");
	if (url && mail_identity_smtp_url_check(url, &err) < 0)
		return usage_error("--smtp-url: %s", err);
	if (user && (!*user || strlen(user) > 255 || has_control(user)))
		return usage_error("--smtp-user: 1 to 255 characters, no control characters");
	if (pwfile && mail_identity_password_file_check(pwfile, warning, sizeof warning, problem,
							sizeof problem) < 0)
		return usage_error("--smtp-password-file: %s", problem);
	if (*warning)
		log_warn("--smtp-password-file: %s", warning);
	if (open_db(ctl) < 0)
		return 1;
	memset(&s, 0, sizeof s);
	snprintf(s.client_id, sizeof s.client_id, "%s", pos[0]);
	/* Borrowed: s is not freed with store_sender_free. */
	s.from_address = (char *)from;
	s.reply_domain = *domain ? domain : NULL;
	s.smtp_url = (char *)url;
	s.smtp_user = (char *)user;
	s.smtp_password_file = (char *)pwfile;
	s.updated_at_ms = util_now_ms();
	switch (store_sender_set(ctl->db, &s, other, &err)) {
	case STORE_SENDER_SET:
		break;
	case STORE_SENDER_NO_CLIENT:
		log_error("no client %s", pos[0]);
		return EXIT_NOT_FOUND;
	case STORE_SENDER_DOMAIN_TAKEN:
		log_error("--reply-domain: %s is already the reply domain of client %s (a reply "
			  "domain belongs to one client); nothing changed", domain, other);
		return EXIT_USAGE;
	default:
		log_error("client set: %s", err);
		return 1;
	}
	if (ctl->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "clientId", json_object_new_string(pos[0]));
		json_object_object_add(o, "sender", sender_json(&s));
		print_json(o);
		json_object_put(o);
	} else {
		printf("client %s: sender identity set\n", pos[0]);
		sender_print(ctl, &s);
	}
	return 0;
}

static int cmd_client_show(struct ctl *ctl, int argc, char **argv)
{
	const char *pos[1] = { NULL }, *err;
	struct store_client_row *rows = NULL;
	struct store_sender s;
	size_t nrows = 0;
	int found = 0, n, rc = 1, r = parse_sub(argc, argv, NULL, pos, 1, &n, &ctl->json);

	memset(&s, 0, sizeof s);
	if (r == 1) {
		printf("usage: offloadctl client show CLIENT_ID [--json]\n\n"
		       "Shows a client: its plan, active keys and sender identity (never its webhook\n"
		       "secret or an SMTP password; only the password file's path).\n");
		return 0;
	}
	if (r)
		return r;
	if (n != 1 || !util_uuid_valid(pos[0]))
		return usage_error("client show needs a CLIENT_ID (from 'client list')");
	if (open_db(ctl) < 0)
		return 1;
	if (store_client_list(ctl->db, &rows, &nrows, &err) < 0 ||
	    (found = store_sender_get(ctl->db, pos[0], &s, &err)) < 0) {
		log_error("client show: %s", err);
		goto out;
	}
	rc = EXIT_NOT_FOUND;
	for (size_t i = 0; i < nrows; i++) {
		const struct store_client_row *c = &rows[i];

		if (strcmp(c->id, pos[0]) != 0)
			continue;
		if (ctl->json) {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "clientId", json_object_new_string(c->id));
			json_object_object_add(o, "name", json_object_new_string(c->name));
			json_object_object_add(o, "plan", json_object_new_string(c->plan));
			json_object_object_add(o, "createdAt", json_object_new_int64(c->created_at_ms));
			json_object_object_add(o, "activeKeys", json_object_new_int64(c->active_keys));
			json_object_object_add(o, "sender", found ? sender_json(&s) : NULL);
			print_json(o);
			json_object_put(o);
		} else {
			printf("client id:      %s\nname:           %s\nplan:           %s\n"
			       "active keys:    %lld\n", c->id, c->name, c->plan,
			       (long long)c->active_keys);
			sender_print(ctl, found ? &s : NULL);
		}
		rc = 0;
	}
	if (rc == EXIT_NOT_FOUND)
		log_error("no client %s", pos[0]);
out:
	store_sender_free(&s);
	store_client_rows_free(&rows, nrows);
	return rc;
}

static int cmd_client_list(struct ctl *ctl, int argc, char **argv)
{
	struct store_client_row *rows = NULL;
	struct store_sender *senders = NULL;
	size_t nrows = 0, nsenders = 0;
	const char *err;
	json_object *arr;
	int n, r = parse_sub(argc, argv, NULL, NULL, 0, &n, &ctl->json);

	if (r == 1) {
		printf("usage: offloadctl client list [--json]\n\nLists every client with its sender\n"
		       "identity (SENDER: its From address, or \"-\" for the server's [mail] settings).\n");
		return 0;
	}
	if (r)
		return r;
	if (open_db(ctl) < 0)
		return 1;
	if (store_client_list(ctl->db, &rows, &nrows, &err) < 0 ||
	    store_sender_list(ctl->db, &senders, &nsenders, &err) < 0) {
		log_error("client list: %s", err);
		store_client_rows_free(&rows, nrows);
		return 1;
	}
	arr = json_object_new_array();
	if (!ctl->json)
		printf("%-36s  %-10s  %-4s  %-30s  %s\n", "CLIENT ID", "PLAN", "KEYS", "SENDER", "NAME");
	for (size_t i = 0; i < nrows; i++) {
		const struct store_client_row *c = &rows[i];
		const struct store_sender *snd = NULL;
		json_object *o = json_object_new_object();

		for (size_t k = 0; k < nsenders && !snd; k++)
			if (strcmp(senders[k].client_id, c->id) == 0)
				snd = &senders[k];
		json_object_object_add(o, "clientId", json_object_new_string(c->id));
		json_object_object_add(o, "name", json_object_new_string(c->name));
		json_object_object_add(o, "plan", json_object_new_string(c->plan));
		json_object_object_add(o, "createdAt", json_object_new_int64(c->created_at_ms));
		json_object_object_add(o, "activeKeys", json_object_new_int64(c->active_keys));
		json_object_object_add(o, "sender", snd ? sender_json(snd) : NULL);
		json_object_array_add(arr, o);
		if (!ctl->json)
			printf("%-36s  %-10s  %-4lld  %-30s  %s\n", c->id, c->plan,
			       (long long)c->active_keys, snd ? snd->from_address : "-", c->name);
	}
	if (ctl->json)
		print_json(arr);
	json_object_put(arr);
	store_senders_free(&senders, nsenders);
	store_client_rows_free(&rows, nrows);
	return 0;
}

static int cmd_client_rotate_secret(struct ctl *ctl, int argc, char **argv)
{
	const char *pos[1] = { NULL }, *err;
	int fin = 0, force = 0, in_rotation = 0;
	struct opt opts[] = { { "finish", NULL, &fin }, { "force", NULL, &force },
			      { NULL, NULL, NULL } };
	unsigned char raw[32];
	char secret[64], b64[48];
	int n, rc = 1, r = parse_sub(argc, argv, opts, pos, 1, &n, &ctl->json);

	if (r == 1) {
		printf("usage: offloadctl client rotate-secret CLIENT_ID [--force] [--json]\n"
		       "       offloadctl client rotate-secret CLIENT_ID --finish [--json]\n\n"
		       "Starts a rotation of the client's webhook signing secret: a new secret\n"
		       "(whsec_...) is made current and printed (shown only here) and the old one is\n"
		       "kept as the previous secret. Until the rotation is finished every delivery\n"
		       "carries two signatures, one per secret, so the receiver verifies with either\n"
		       "while it switches. A rotation already in progress is refused (its previous\n"
		       "secret would be lost) unless --force.\n"
		       "--finish: forgets the previous secret; deliveries carry one signature again.\n");
		return 0;
	}
	if (r)
		return r;
	if (n != 1 || !util_uuid_valid(pos[0]))
		return usage_error("client rotate-secret needs a CLIENT_ID (from 'client list')");
	if (fin && force)
		return usage_error("--finish and --force do not go together");
	if (open_db(ctl) < 0)
		return 1;
	util_random_bytes(raw, sizeof raw);
	util_base64(raw, sizeof raw, b64);
	snprintf(secret, sizeof secret, "whsec_%s", b64);
	switch (store_client_rotate_secret(ctl->db, pos[0], secret, fin, force, &in_rotation,
					   &err)) {
	case STORE_ROTATION_DONE:
		break;
	case STORE_ROTATION_NO_CLIENT:
		log_error("no client %s", pos[0]);
		rc = EXIT_NOT_FOUND;
		goto out;
	case STORE_ROTATION_BUSY:
		log_error("client %s: a secret rotation is already in progress; finish it with "
			  "--finish first (or --force to drop the older secret)", pos[0]);
		goto out;
	default:
		log_error("client rotate-secret: %s", err);
		goto out;
	}
	if (fin) {
		if (ctl->json) {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "clientId", json_object_new_string(pos[0]));
			json_object_object_add(o, "rotationFinished", json_object_new_boolean(1));
			print_json(o);
			json_object_put(o);
		} else {
			printf("client %s: %s\n", pos[0],
			       in_rotation ? "previous webhook secret forgotten; one signature from now on"
					   : "no rotation was in progress");
		}
		rc = 0;
		goto out;
	}
	if (ctl->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "clientId", json_object_new_string(pos[0]));
		json_object_object_add(o, "webhookSecret", json_object_new_string(secret));
		print_json(o);
		json_object_put(o);
	} else {
		printf("client %s\nnew webhook secret: %s\n\nThe new secret is shown only now. "
		       "Deliveries are signed with both the new and the previous secret until you "
		       "run:\n  offloadctl client rotate-secret %s --finish\n", pos[0], secret, pos[0]);
	}
	rc = 0;
out:
	explicit_bzero(secret, sizeof secret);
	explicit_bzero(raw, sizeof raw);
	return rc;
}

static const struct ctl_verb verbs[] = {
	{ "create", cmd_client_create },
	{ "list", cmd_client_list },
	{ "show", cmd_client_show },
	{ "set", cmd_client_set },
	{ "rotate-secret", cmd_client_rotate_secret },
	{ NULL, NULL },
};

const struct ctl_group ctl_group_client = {
	"client",
	"  client create --name NAME --plan PLAN    create a client; prints its id and webhook\n"
	"                                           secret (shown once). PLAN: SANDBOX, PAYG,\n"
	"                                           BASE_PRO or UNLIMITED\n"
	"  client list                              list clients (and their sender identities)\n"
	"  client show CLIENT_ID                    a client and its sender identity\n"
	"  client set CLIENT_ID --from-address ADDR [--reply-domain DOMAIN]\n"
	"             [--smtp-url URL [--smtp-user USER --smtp-password-file FILE]]\n"
	"                                           the client's own sender identity\n"
	"  client set CLIENT_ID --clear-sender      back to the server's [mail] settings\n"
	"  client rotate-secret CLIENT_ID [--finish]\n"
	"                                           new webhook secret (shown once); both are\n"
	"                                           used to sign until --finish\n",
	verbs,
};

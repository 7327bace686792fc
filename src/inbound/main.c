/* main.c: offload-inbound: stores one RFC 5322 message read on stdin (an MTA's pipe
 * delivery) through the same ingest code as IMAP polling; sysexits tell the MTA what next. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "common/cfg.h"
#include "common/cli.h"
#include "common/log.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "mail/ingest.h"
#include "store/db.h"

static const char usage_text[] =
	"usage: offload-inbound [-c FILE] [--verbose] [--help]\n"
	"\n"
	"Reads one email message (RFC 5322) on standard input and stores it the way the\n"
	"worker stores mail it fetches over IMAP: it is matched to a case by In-Reply-To,\n"
	"References or a plus address (local+CASEID@domain); delivery and complaint reports\n"
	"count only at a signed bounce address (bounces+TAG@domain, the envelope sender of our\n"
	"messages; route it here too); the raw message is kept under\n"
	"[files] dir, attachments of matched mail are stored in the database, and the case's\n"
	"event is queued.\n"
	"For an MTA pipe delivery, e.g. in Postfix master.cf:\n"
	"  offload unix - n n - - pipe flags=q user=offload\n"
	"    argv=/usr/sbin/offload-inbound\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE  configuration file (default: $OFFLOAD_CONFIG, then\n"
	"                     " SYSCONFDIR "/offload/offload.conf)\n"
	"  -v, --verbose      log more\n"
	"  -h, --help         this text\n"
	"\n"
	"Configuration: [database] (the connection), [files] dir (default\n"
	"/var/lib/offload/files), [mail] inbox_address (the address mail arrives at;\n"
	"default [mail] from_address; one of them must be set), [mail] max_message_bytes\n"
	"(default 52428800), [mail] authserv_id (replies need that MTA's\n"
	"Authentication-Results to pass; default empty: the sender rule alone).\n"
	"\n"
	"Exit status (sysexits):\n"
	"   0  stored; also when it was a duplicate or matched no case (the message is kept)\n"
	"  64  bad command line (EX_USAGE)\n"
	"  65  not a mail message (EX_DATAERR): empty input; no header or no From mailbox\n"
	"      (a copy is kept under [files] dir/unparsed/); or larger than\n"
	"      max_message_bytes (not kept)\n"
	"  75  temporary failure: configuration, database or disk trouble (EX_TEMPFAIL);\n"
	"      the MTA keeps the message and delivers it again later\n";

/* Reads all of stdin, at most max bytes. 0, 1 when there was more than max, -1 on error. */
static void usage(FILE *f)
{
	fputs(usage_text, f);
}

static int read_stdin(size_t max, char **data_r, size_t *len_r)
{
	size_t cap = 64 * 1024, len = 0;
	char *data = xmalloc(cap);

	for (;;) {
		ssize_t n;

		if (len == cap) {
			if (cap > max) {
				free(data);
				return 1;
			}
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			data = xrealloc(data, cap);
		}
		n = read(STDIN_FILENO, data + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(data);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			free(data);
			return 1;
		}
	}
	*data_r = data;
	*len_r = len;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli cli = { .program = "offload-inbound", .usage = usage, .usage_status = EX_USAGE,
			   .writes_files = 1 };
	const char *err;
	struct cfg *cfg = NULL;
	struct db *db = NULL;
	struct ingest_settings settings = { 0 };
	char *raw = NULL, case_id[37];
	size_t len = 0;
	int64_t max_bytes;
	int c, r, gmime_up = 0, db_up = 0, rc = EX_TEMPFAIL;

	cli_start(&cli);
	while ((c = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1)
		if ((r = cli_option(&cli, c)) != CLI_NEXT)
			return r;
	if (optind < argc) {
		fprintf(stderr, "offload-inbound: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EX_USAGE;
	}

	cfg = cli_config(&cli);
	if (!cfg)
		return EX_TEMPFAIL;
	if (cfg_get_int(cfg, "mail", "max_message_bytes", (int64_t)INGEST_DEFAULT_MAX_BYTES, 1024,
			INT64_C(1) << 32, &max_bytes, &err) < 0) {
		log_error("%s", err);
		goto out;
	}
	settings.files_dir = cfg_get(cfg, "files", "dir", "/var/lib/offload/files");
	settings.inbox_address = cfg_get(cfg, "mail", "inbox_address", "");
	if (!*settings.inbox_address)
		settings.inbox_address = cfg_get(cfg, "mail", "from_address", "");
	settings.max_bytes = (size_t)max_bytes;
	settings.authserv_id = cfg_get(cfg, "mail", "authserv_id", "");
	if (!*settings.files_dir) {
		log_error("[files] dir is empty");
		goto out;
	}
	if (!*settings.inbox_address) {
		log_error("neither [mail] inbox_address nor [mail] from_address is set");
		goto out;
	}

	r = read_stdin(settings.max_bytes, &raw, &len);
	if (r < 0) {
		log_error("reading standard input: %s", strerror(errno));
		goto out;
	}
	if (r > 0) {
		log_warn("refused: the message is larger than [mail] max_message_bytes (%zu)",
			 settings.max_bytes);
		rc = EX_DATAERR;
		goto out;
	}
	if (len == 0) {
		log_warn("refused: empty input");
		rc = EX_DATAERR;
		goto out;
	}

	g_mime_init();
	gmime_up = 1;
	if (db_library_init() < 0) {
		log_error("MariaDB client library initialisation failed");
		goto out;
	}
	db_up = 1;
	/* Connects on first use: malformed input is answered without the database. */
	db = db_new(cfg, &err);
	if (!db) {
		log_error("%s", err);
		goto out;
	}
	switch (ingest_store(db, &settings, raw, len, util_now_ms(), case_id)) {
	case INGEST_STORED:
	case INGEST_UNMATCHED:
	case INGEST_DUPLICATE:
		rc = 0;
		break;
	case INGEST_MALFORMED:
		rc = EX_DATAERR;
		break;
	case INGEST_TEMPFAIL:
		rc = EX_TEMPFAIL;
		break;
	}
out:
	db_close(&db);
	if (db_up)
		db_library_end();
	if (gmime_up)
		g_mime_shutdown();
	free(raw);
	cfg_free(&cfg);
	return rc;
}

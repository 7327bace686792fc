/* imap.h: polling an IMAP mailbox through libcurl, by UID, into the ingest code. */
#ifndef OFFLOAD_IMAP_H
#define OFFLOAD_IMAP_H

#include <stdint.h>

struct cfg;
struct db;
struct ingest_settings;

/* What one poll did. */
struct imap_stats {
	int fetched;    /* messages read from the server */
	int stored;     /* INGEST_STORED: matched to a case */
	int unmatched;  /* INGEST_UNMATCHED: kept without a case */
	int duplicates; /* INGEST_DUPLICATE: already stored (e.g. after a UIDVALIDITY change) */
	int malformed;  /* INGEST_MALFORMED: kept under unparsed/ */
	int skipped;    /* over max_bytes, or gone before it could be fetched: passed over */
	int more;       /* 1 when max_messages ended the poll with new messages left */
};

/*
 * Fetches the messages that arrived since the last poll and hands each to ingest_store.
 *
 * Reads [mail] imap_url (imap:// or imaps://host[:port]/MAILBOX, default mailbox INBOX;
 * empty or unset: nothing to do, returns 0), imap_user, imap_password or
 * imap_password_file, and timeout_s (default 30) for every server command.
 *
 * Progress lives in the table mailbox_state (one row per user and mailbox URL): the
 * mailbox's UIDVALIDITY and the last UID handed to ingest, written after each message, so
 * a restart neither reads a message twice nor skips one. A changed UIDVALIDITY starts over
 * from UID 0 (ingest recognises the copies it already has by Message-ID). At most
 * max_messages are fetched per call. A named database lock keeps two workers from polling
 * one mailbox at the same time; the loser returns 0 at once. No row lock is held while
 * talking to the server.
 *
 * curl_global_init must have been called. now_ms is passed to ingest_store. *stats_r is
 * always filled. Returns 0, or -1 with *error_r (static text, never the password) when the
 * server could not be used or ingest_store answered INGEST_TEMPFAIL (the message stays
 * on the server and is read again next time).
 */
int imap_poll(struct db *db, struct cfg *cfg, const struct ingest_settings *s, int64_t now_ms,
	      int max_messages, struct imap_stats *stats_r, const char **error_r);

#endif

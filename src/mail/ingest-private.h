/* ingest-private.h: what the inbound mail files share behind ingest.h. Only src/mail/
 * ingest.c, parse.c, text.c, reports.c, match.c and files.c include it.
 *
 * The contract: nothing here is API for the rest of the program (that is ingest.h).
 * Allocation failure aborts (common/xalloc.h), so functions returning memory never
 * return NULL unless they say so; the caller frees what is "newly allocated". Every
 * string a function here returns is valid UTF-8 unless stated otherwise. Functions that
 * touch the database return 1/0/-1 (found, not found, error with *error_r set); those
 * that touch the disk return 0 or -1 with errno set.
 */
#ifndef OFFLOAD_INGEST_PRIVATE_H
#define OFFLOAD_INGEST_PRIVATE_H

#include <stddef.h>

#include <gmime/gmime.h>

#include "mail/ingest.h"

struct db;

/* An address field (From, the To display) is cut to this many bytes. */
#define MAX_ADDR_FIELD 512

/* ---- text.c: strings, line endings, HTML, quoted history */

/* A newly allocated valid UTF-8 copy of len bytes of s: bytes that are not UTF-8 are read
 * as Windows-1252, else replaced by U+FFFD; NUL bytes are dropped. */
char *ingest_utf8_dup(const char *s, size_t len);
/* ingest_utf8_dup of a C string; NULL gives "". Newly allocated. */
char *ingest_utf8_dup0(const char *s);
/* Replaces control characters (C0, DEL, C1) in s by spaces; for one-line fields. */
void ingest_one_line(char *s);
/* Cuts s in place to at most max bytes at a character boundary. */
void ingest_cut_in_place(char *s, size_t max);
/* A newly allocated copy of len bytes of s without leading and trailing white space. */
char *ingest_trim_dup(const char *s, size_t len);
/* Lower-cases the ASCII letters of s in place. */
void ingest_lower_ascii(char *s);
/* ASCII-case-insensitive search of needle in the first len bytes of hay; NULL if absent. */
const char *ingest_find_ci(const char *hay, size_t len, const char *needle);
/* A newly allocated copy of s with CRLF and lone CR as LF, C0 controls other than TAB and
 * LF dropped. */
char *ingest_text_normalise(const char *s);
/* The visible text of len bytes of HTML, newly allocated. */
char *ingest_html_to_text(const char *in, size_t len);
/* A newly allocated copy of s with trailing blanks stripped from every line and, when
 * collapse is set, runs of blank lines squeezed into one. */
char *ingest_tidy_lines(const char *s, int collapse);
/* Splits normalised text t into the new text (*body_r) and the quoted history under it
 * (*quoted_r, NULL when there is none); both newly allocated. */
void ingest_split_quoted(const char *t, char **body_r, char **quoted_r);

/* One line of a text, as ingest_line_at finds it. */
struct line {
	const char *s; /* trimmed start */
	size_t len;    /* trimmed length */
	size_t off;    /* offset of the untrimmed line in the text */
};

/* The line of t (len bytes) starting at off; *next_r is the offset of the next line. */
struct line ingest_line_at(const char *t, size_t len, size_t off, size_t *next_r);

/* ---- parse.c: the MIME message (ingest_parse and ingest_mail_free are in ingest.h) */

/* A message id we can store and compare: printable ASCII without <> or spaces. 1 or 0. */
int ingest_id_usable(const char *id);
/* The decoded content of a leaf part, NUL-terminated, newly allocated; *len_r its size. */
unsigned char *ingest_part_bytes(GMimePart *part, size_t *len_r);
/* 1 when obj's content type is type/subtype ("*" matches any subtype), else 0. */
int ingest_ct_is(GMimeObject *obj, const char *type, const char *subtype);

/* ---- reports.c: delivery (RFC 3464) and feedback (RFC 5965) reports */

/* Reads a multipart/report of report_type into m: kind, diagnostic, report recipient and
 * status, feedback type, original Message-ID. Returns the child that carries the
 * human-readable text (owned by report), or NULL. */
GMimeObject *ingest_read_report(GMimeMultipart *report, const char *report_type,
				struct ingest_mail *m);
/* The first word of a field value, lower case, without comments: "failed (x)" → "failed".
 * Newly allocated. */
char *ingest_first_word(const char *v);

/* ---- match.c: which case a message belongs to */

/* Finds the case of m (see ingest.h for the order) into case_id; *how_r names the rule
 * that decided (static storage). 1 found, 0 not, -1 database error. */
int ingest_match_case(struct db *db, const struct ingest_settings *s,
		      const struct ingest_mail *m, char case_id[37], const char **how_r,
		      const char **error_r);
/* The sender rule (doc/hostile-input.md): 1 when m's sender may speak for case_id, 0 not,
 * -1 database error. */
int ingest_sender_matches_case(struct db *db, const struct ingest_mail *m, const char *case_id,
			       const char **error_r);
/* The reply-domain rule (doc/operator-guide.md, "Sender identities per client"): 0 when m
 * was addressed (To, Cc) to a case address at one of our domains that is not case_id's
 * reply domain (logged, naming how it matched), 1 when it may belong to case_id, -1
 * database error. */
int ingest_reply_domain_matches_case(struct db *db, const struct ingest_settings *s,
				     const struct ingest_mail *m, const char *case_id,
				     const char *how, const char **error_r);

/* ---- files.c: the raw copy and unparsable mail on disk */

/* The file written for one message, removed again when its transaction fails. */
struct written {
	char *raw_path; /* the raw copy, when this call created it */
};

/* Stores data as dir/name (making dir) unless that file exists already; sets *created_r
 * when this call made it. 0 or -1 (errno). */
int ingest_keep_file(const char *dir, const char *name, const void *data, size_t len,
		     int *created_r);
/* Keeps mail we could not store under files_dir/unparsed/<sha>.eml. 0 or -1 (errno). */
int ingest_keep_unparsed(const struct ingest_settings *s, const char *raw, size_t len,
			 const char *sha);
/* Removes (and forgets) the raw copy recorded in w. */
void ingest_written_remove_raw(struct written *w);
/* Forgets what w records, leaving the files in place. */
void ingest_written_free(struct written *w);

#endif

/* tls.h: the TLS policy shared by SMTP submission and IMAP polling. */
#ifndef OFFLOAD_MAIL_TLS_H
#define OFFLOAD_MAIL_TLS_H

#include <curl/curl.h>

struct cfg;

/*
 * Sets h's TLS options for a mail server connection. With credentials (a user name is
 * configured) TLS is required: implicit TLS (smtps://, imaps://) or STARTTLS, and a
 * server that offers neither gets no password (curl fails with CURLE_USE_SSL_FAILED).
 * Without credentials STARTTLS is used when offered. Certificates are always verified,
 * against [mail] ca_file when it is set, else the system's CA store; there is no switch
 * that turns verification off.
 */
void mail_tls_setopt(CURL *h, struct cfg *cfg, int credentials);

/* The one-line log/failure text for a TLS outcome of curl, or NULL when cc is not one. */
const char *mail_tls_error(CURLcode cc, int credentials);

#endif

/* test-identity.c: sender identity checks: domains, SMTP URLs (and common/url.c's checks under
 * them), password files, rehoming. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/url.h"
#include "mail/identity.h"
#include "test.h"

static void test_domains(void)
{
	char long_label[65], long_domain[4 * 65 + 16];

	test_begin("identity: domain names");
	test_assert(mail_identity_domain_valid("acme.example"));
	test_assert(mail_identity_domain_valid("mail-1.ACME.example"));
	test_assert(mail_identity_domain_valid("localhost"));
	test_assert(!mail_identity_domain_valid(NULL));
	test_assert(!mail_identity_domain_valid(""));
	test_assert(!mail_identity_domain_valid("-acme.example"));
	test_assert(!mail_identity_domain_valid("acme-.example"));
	test_assert(!mail_identity_domain_valid("a..example"));
	test_assert(!mail_identity_domain_valid("acme.example."));
	test_assert(!mail_identity_domain_valid(".acme.example"));
	test_assert(!mail_identity_domain_valid("ac me.example"));
	test_assert(!mail_identity_domain_valid("user@acme.example"));
	test_assert(!mail_identity_domain_valid("acme.example\r\nBcc: x"));
	test_assert(!mail_identity_domain_valid("[127.0.0.1]"));
	test_assert(!mail_identity_domain_valid("b\xc3\xbcro.example"));
	memset(long_label, 'a', 64);
	long_label[64] = '\0';
	snprintf(long_domain, sizeof long_domain, "%s.example", long_label);
	test_assert(!mail_identity_domain_valid(long_domain));
	long_label[63] = '\0';
	snprintf(long_domain, sizeof long_domain, "%s.example", long_label);
	test_assert(mail_identity_domain_valid(long_domain));
	/* 4 labels of 63 + 3 dots = 255 characters: longer than an address allows */
	snprintf(long_domain, sizeof long_domain, "%s.%s.%s.%s", long_label, long_label, long_label,
		 long_label);
	test_assert(!mail_identity_domain_valid(long_domain));
	test_end();
}

static void test_addresses(void)
{
	test_begin("identity: From addresses");
	test_assert(mail_identity_address_valid("ap@acme.example"));
	test_assert(mail_identity_address_valid("Accounts.Payable+x@acme.example"));
	test_assert(!mail_identity_address_valid("ap"));
	test_assert(!mail_identity_address_valid("ap@"));
	test_assert(!mail_identity_address_valid("a p@acme.example"));
	test_assert(!mail_identity_address_valid("ap@acme.example\r\nBcc: x@y.example"));
	test_assert(!mail_identity_address_valid("<ap@acme.example>"));
	test_end();
}

static void test_urls(void)
{
	const char *err = NULL;

	test_begin("identity: SMTP URLs");
	test_assert(mail_identity_smtp_url_check("smtp://127.0.0.1:25", &err) == 0);
	test_assert(mail_identity_smtp_url_check("smtps://smtp.acme.example:465", &err) == 0);
	test_assert(mail_identity_smtp_url_check("SMTP://smtp.acme.example", &err) == 0);
	test_assert(mail_identity_smtp_url_check("smtp://[::1]:2525", &err) == 0);
	err = NULL;
	test_assert(mail_identity_smtp_url_check("http://smtp.acme.example", &err) < 0 && err &&
		    strstr(err, "smtp://"));
	test_assert(mail_identity_smtp_url_check("imap://smtp.acme.example", &err) < 0);
	test_assert(mail_identity_smtp_url_check("smtp.acme.example:25", &err) < 0);
	test_assert(mail_identity_smtp_url_check("smtp://", &err) < 0);
	test_assert(mail_identity_smtp_url_check("", &err) < 0);
	test_assert(mail_identity_smtp_url_check(NULL, &err) < 0);
	err = NULL;
	test_assert(mail_identity_smtp_url_check("smtp://u:secret@smtp.acme.example", &err) < 0 &&
		    err && strstr(err, "password") && !strstr(err, "secret"));
	test_assert(mail_identity_smtp_url_check("smtp://u@smtp.acme.example", &err) < 0);
	test_assert(mail_identity_smtp_url_check("smtp://smtp.acme.example/?x=1", &err) < 0);
	test_assert(mail_identity_smtp_url_check("smtp://smtp.acme.example/#f", &err) < 0);
	test_assert(mail_identity_smtp_url_check("smtp://smtp.acme.example /x", &err) < 0);
	test_assert(mail_identity_smtp_url_check("smtp://smtp.acme.example\r\n", &err) < 0);
	/* The path is libcurl's EHLO name: CR/LF percent-encoded there is CR/LF too (libcurl
	 * refuses it only when sending, so every message to the client would fail). */
	test_assert(mail_identity_smtp_url_check("smtp://smtp.acme.example/%0d%0aRSET", &err) < 0);
	test_assert(mail_identity_smtp_url_check("smtp://smtp.acme.example/a%00b", &err) < 0);
	test_assert(mail_identity_smtp_url_check("smtp://smtp.acme.example/%c3%a4", &err) < 0);
	test_assert(mail_identity_smtp_url_check("smtp://smtp.acme.example/", &err) == 0);
	test_assert(mail_identity_smtp_url_check("smtp://127.0.0.1:25/client.acme.example", &err) == 0);
	test_end();
}

/* url_check: each result in its order, and the parsed URL handed over only when valid. */
static void test_url_check(void)
{
	CURLU *u = NULL, *kept;
	char *port = NULL;

	test_begin("url_check: each result");
	test_assert(url_check("https://h.example/x", "http", "https", 0, NULL) == URL_VALID);
	test_assert(url_check("HTTP://h.example", "http", "https", 0, NULL) == URL_VALID);
	test_assert(url_check("http://h.example/a b", "http", "https", 0, NULL) == URL_BAD_CHARS);
	test_assert(url_check("http://h.example/", "http", "https", 0, NULL) == URL_BAD_CHARS);
	test_assert(url_check("http://h.Ã©xample", "http", "https", 0, NULL) == URL_BAD_CHARS);
	test_assert(url_check("h.example/x", "http", "https", 0, NULL) == URL_NOT_URL);
	test_assert(url_check("", "http", "https", 0, NULL) == URL_NOT_URL);
	test_assert(url_check("ftp://h.example", "http", "https", 0, NULL) == URL_BAD_SCHEME);
	/* libcurl refuses an empty authority itself; a file: URL may have no host. */
	test_assert(url_check("smtp://", "smtp", "smtps", CURLU_NON_SUPPORT_SCHEME, NULL) ==
		    URL_NOT_URL);
	test_assert(url_check("file:///etc/passwd", "file", "files", 0, NULL) == URL_NO_HOST);
	/* A bad scheme is told before a missing host. */
	test_assert(url_check("file:///etc/passwd", "http", "https", 0, NULL) == URL_BAD_SCHEME);
	test_end();

	test_begin("url_check: the parsed URL only when valid");
	test_assert(url_check("smtps://h.example:465", "smtp", "smtps", CURLU_NON_SUPPORT_SCHEME,
			      &u) == URL_VALID &&
		    u != NULL);
	test_assert(u && curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && port &&
		    strcmp(port, "465") == 0);
	kept = u;
	test_assert(url_check("ftp://h.example", "http", "https", 0, &u) == URL_BAD_SCHEME &&
		    u == NULL);
	curl_free(port);
	curl_url_cleanup(kept);
	test_end();
}

/* A temporary file with text at mode; its path in path (PATH_MAX). 0 or -1. */
static int make_file(char *path, size_t cap, const char *text, mode_t mode)
{
	const char *tmp = getenv("TMPDIR");
	FILE *f;
	int fd;

	snprintf(path, cap, "%s/test-identity.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	f = fdopen(fd, "w");
	if (!f)
		return -1;
	fputs(text, f);
	fclose(f);
	return chmod(path, mode);
}

static void test_password_files(void)
{
	char path[4096], warn[600], err[600];
	char *pw = NULL;

	test_begin("identity: password files");
	test_assert(make_file(path, sizeof path, "s3cret\nsecond line\n", 0600) == 0);
	test_assert(mail_identity_password_file_check(path, warn, sizeof warn, err, sizeof err) == 0);
	test_assert_str(warn, "");
	test_assert(mail_identity_password_read(path, &pw, err, sizeof err) == 0);
	test_assert_str(pw, "s3cret");
	free(pw);
	pw = NULL;
	/* group-readable: accepted, with a warning naming the file */
	test_assert(chmod(path, 0640) == 0);
	test_assert(mail_identity_password_file_check(path, warn, sizeof warn, err, sizeof err) == 0);
	test_assert(strstr(warn, path) != NULL && strstr(warn, "group") != NULL);
	/* readable or writable by everyone: refused, without the password in the error */
	test_assert(chmod(path, 0644) == 0);
	test_assert(mail_identity_password_file_check(path, warn, sizeof warn, err, sizeof err) < 0);
	test_assert(strstr(err, "every user") != NULL && strstr(err, "s3cret") == NULL);
	test_assert(mail_identity_password_read(path, &pw, err, sizeof err) < 0 && pw == NULL);
	test_assert(chmod(path, 0602) == 0);
	test_assert(mail_identity_password_file_check(path, warn, sizeof warn, err, sizeof err) < 0);
	unlink(path);
	/* gone */
	test_assert(mail_identity_password_file_check(path, warn, sizeof warn, err, sizeof err) < 0);
	test_assert(strstr(err, "No such file") != NULL);
	/* empty first line */
	test_assert(make_file(path, sizeof path, "\nsecret\n", 0600) == 0);
	test_assert(mail_identity_password_file_check(path, warn, sizeof warn, err, sizeof err) < 0);
	test_assert(strstr(err, "no password") != NULL);
	unlink(path);
	/* CRLF line end, no trailing newline */
	test_assert(make_file(path, sizeof path, "pw\r\n", 0400) == 0);
	test_assert(mail_identity_password_read(path, &pw, err, sizeof err) == 0);
	test_assert_str(pw, "pw");
	free(pw);
	unlink(path);
	/* relative paths, directories */
	test_assert(mail_identity_password_file_check("etc/pw", warn, sizeof warn, err, sizeof err) < 0);
	test_assert(strstr(err, "absolute") != NULL);
	test_assert(mail_identity_password_file_check("/", warn, sizeof warn, err, sizeof err) < 0);
	test_assert(strstr(err, "not a regular file") != NULL);
	test_end();
}

static void test_rehome(void)
{
	char *s;

	test_begin("identity: addresses at another domain");
	s = mail_identity_rehome("offload@offload.example", "acme.example");
	test_assert_str(s, "offload@acme.example");
	free(s);
	s = mail_identity_rehome("a@b@offload.example", "acme.example");
	test_assert_str(s, "a@b@acme.example");
	free(s);
	s = mail_identity_rehome("offload@offload.example", NULL);
	test_assert_str(s, "offload@offload.example");
	free(s);
	test_assert(mail_identity_rehome("offload", "acme.example") == NULL);
	test_assert_str(mail_identity_domain_of("x@acme.example"), "acme.example");
	test_assert_str(mail_identity_domain_of("x"), "");
	test_end();
}

int main(void)
{
	test_domains();
	test_addresses();
	test_urls();
	test_url_check();
	test_password_files();
	test_rehome();
	return test_done();
}

/* test-authres.c: RFC 8601 Authentication-Results: which field counts and what it says. */
#include <stdio.h>
#include <string.h>

#include "mail/authres.h"
#include "test.h"

#define ID "mx.offload.test"

static enum authres_verdict judge(const char *raw, const char *domain)
{
	return authres_check(raw, strlen(raw), ID, domain);
}

static void test_values(void)
{
	enum authres_verdict v;

	test_begin("authres: field values (RFC 8601 §2.2 and appendix B examples)");
	test_assert(authres_judge_value(" " ID "; dmarc=pass (p=reject dis=none) header.from=northstar.example",
					ID, "northstar.example", &v) == 1 && v == AUTHRES_DMARC_PASS);
	test_assert(authres_judge_value(" " ID ";\r\n\tdkim=pass (2048-bit key) header.d=northstar.example"
					" header.s=sel header.b=abcd;\r\n\tspf=pass smtp.mailfrom=a@b",
					ID, "northstar.example", &v) == 1 && v == AUTHRES_DKIM_PASS);
	test_assert(authres_judge_value(" " ID " 1; dkim/1=pass header.i=@Northstar.Example", ID,
					"northstar.example", &v) == 1 && v == AUTHRES_DKIM_PASS);
	/* DKIM for another domain proves nothing about the counterparty */
	test_assert(authres_judge_value(" " ID "; dkim=pass header.d=mailer.example", ID,
					"northstar.example", &v) == 1 && v == AUTHRES_FAIL);
	test_assert(authres_judge_value(" " ID "; dmarc=fail header.from=northstar.example; "
					"dkim=fail header.d=northstar.example", ID, "northstar.example",
					&v) == 1 && v == AUTHRES_FAIL);
	test_assert(authres_judge_value(" " ID "; none", ID, "northstar.example", &v) == 1 &&
		    v == AUTHRES_FAIL);
	test_assert(authres_judge_value(" \"" ID "\" (our MX); dmarc=pass", ID, "x.example", &v) == 1 &&
		    v == AUTHRES_DMARC_PASS);
	/* comments may hold anything, even "dmarc=pass" */
	test_assert(authres_judge_value(" " ID "; dmarc=fail (dmarc=pass; (nested)) header.from=x", ID,
					"x", &v) == 1 && v == AUTHRES_FAIL);
	/* another authserv-id: not ours */
	test_assert(authres_judge_value(" mx.attacker.example; dmarc=pass", ID, "x", &v) == 0);
	test_assert(authres_judge_value(" " ID ".attacker.example; dmarc=pass", ID, "x", &v) == 0);
	/* ours but unreadable: vouches for nothing */
	test_assert(authres_judge_value(" " ID "; dmarc=pass (unclosed", ID, "x", &v) == 1 &&
		    v == AUTHRES_FAIL);
	test_assert(authres_judge_value(" " ID "; dmarc=pass = =", ID, "x", &v) == 1 && v == AUTHRES_FAIL);
	test_assert(authres_judge_value(" " ID " x; dmarc=pass", ID, "x", &v) == 1 && v == AUTHRES_FAIL);
	test_assert(authres_judge_value("", ID, "x", &v) == -1);
	test_end();
}

static void test_topmost(void)
{
	test_begin("authres: only the topmost field with our id counts");
	test_assert(judge("Authentication-Results: " ID "; dmarc=fail header.from=n.example\r\n"
			  "Received: from x\r\n"
			  "Authentication-Results: " ID "; dmarc=pass header.from=n.example\r\n"
			  "From: a@n.example\r\n\r\nbody\r\n", "n.example") == AUTHRES_FAIL);
	test_assert(judge("Authentication-Results: other.example; dmarc=fail\r\n"
			  "Authentication-Results: " ID ";\r\n dmarc=pass header.from=n.example\r\n"
			  "From: a@n.example\r\n\r\n", "n.example") == AUTHRES_DMARC_PASS);
	test_assert(judge("From: a@n.example\r\nSubject: x\r\n\r\n"
			  "Authentication-Results: " ID "; dmarc=pass\r\n", "n.example") == AUTHRES_NONE);
	test_assert(judge("From: a@n.example\n\n", "n.example") == AUTHRES_NONE);
	test_assert(judge("authentication-results:" ID "; dkim=pass header.d=n.example\n\n",
			  "n.example") == AUTHRES_DKIM_PASS);
	test_end();
}

int main(void)
{
	test_values();
	test_topmost();
	return test_done();
}

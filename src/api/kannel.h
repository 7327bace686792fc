/* kannel.h: the two endpoints Kannel calls (doc/api.md, "SMS"): incoming SMS
 * (sms-service get-url) and delivery reports (dlr-url). Not client routes: no API key; a
 * secret shared with Kannel, and nginx's allow list (doc/operator-guide.md, SMS). */
#ifndef OFFLOAD_KANNEL_H
#define OFFLOAD_KANNEL_H

struct http_request;

/* GET /kannel/incoming?secret=&from=&to=&id=&text= : stores the SMS once per id, matched
 * to the open SMS case of the sender; STOP/START words as doc/api.md says. 200, empty. */
void kannel_incoming(struct http_request *r);

/* GET /kannel/dlr?secret=&msg=&type=&reply= : records the delivery report on our message;
 * undelivered (2) and rejected (16) fail its case BOUNCED. 200, empty. */
void kannel_dlr(struct http_request *r);

#endif

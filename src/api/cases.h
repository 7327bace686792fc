/* cases.h: the /cases routes (doc/api.md, "Routes"). Each handler sends exactly one reply. */
#ifndef OFFLOAD_CASES_H
#define OFFLOAD_CASES_H

struct http_request;

void cases_create(struct http_request *r);     /* POST /cases */
void cases_list(struct http_request *r);       /* GET /cases */
void cases_get(struct http_request *r);        /* GET /cases/{id} */
void cases_attachment(struct http_request *r); /* GET /cases/{id}/attachments/{attachmentId} */
void cases_input(struct http_request *r);      /* POST /cases/{id}/input */

#endif

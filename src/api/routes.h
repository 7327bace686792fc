/* routes.h: the route table of offload-api and the dispatcher that applies the common rules. */
#ifndef OFFLOAD_ROUTES_H
#define OFFLOAD_ROUTES_H

struct api_thread;
struct http_request;

/* Handles the request just accepted on t->req: matches the route (404/405), authenticates
 * (401/403), reads the body, calls the handler, and makes sure exactly one reply is sent. */
void routes_dispatch(struct api_thread *t);

/*
 * For a handler that authenticated through the key cache and then read the database: when
 * any connection of this process was (re)established since the key was read (so the
 * database may have restarted, possibly with other data), reads the key again and checks
 * it still names the same client and is active. Returns 0 when the request may go on, or
 * -1 after replying 401/403/500. Costs nothing when no reconnection happened.
 */
int routes_key_recheck_or_reply(struct http_request *r);

#endif

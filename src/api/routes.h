/* routes.h: the route table of offload-api and the dispatcher that applies the common rules. */
#ifndef OFFLOAD_ROUTES_H
#define OFFLOAD_ROUTES_H

struct api_thread;

/* Handles the request just accepted on t->req: matches the route (404/405), authenticates
 * (401/403), reads the body, calls the handler, and makes sure exactly one reply is sent. */
void routes_dispatch(struct api_thread *t);

#endif

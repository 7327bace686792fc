/* conns.h: FastCGI connections for a fixed pool of threads. Connections that nginx keeps open
 * between requests (fastcgi_keep_conn) wait in epoll, not in a thread, so an idle kept
 * connection never holds a thread while a request waits for one. */
#ifndef OFFLOAD_CONNS_H
#define OFFLOAD_CONNS_H

#include <stddef.h>

#include <fcgiapp.h>

/* Serves the request just read into req (libfcgi's streams and envp are ready); arg is the
 * thread's own argument. The caller finishes the request afterwards. */
typedef void conns_handler(FCGX_Request *req, void *arg);

/*
 * Starts n threads serving the listening socket listen_fd (made non-blocking): they wait
 * together in epoll for a connection with a request, or for new connections. Thread i reads each request into reqs[i] (initialised here) and calls
 * handler(reqs[i], args[i]). FCGX_Init must have run, and signals should be blocked first
 * (the threads inherit the mask). One pool per process. Returns 0, or -1 (logged; what had
 * started is stopped again).
 */
int conns_start(int listen_fd, FCGX_Request *const *reqs, void *const *args, size_t n,
		conns_handler *handler);

/*
 * Lets every thread finish the request it is serving, joins them, stops accepting (pending
 * and idle connections are closed when the process exits) and frees the requests.
 * Idempotent.
 */
void conns_stop(void);

#endif

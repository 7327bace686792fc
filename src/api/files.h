/* files.h: signed attachment downloads (GET /files/{id}) and the key that signs them. */
#ifndef OFFLOAD_FILES_H
#define OFFLOAD_FILES_H

#include <stdint.h>

struct http_request;

/* GET /files/{attachmentId}?expires=&sig= : checks the link and hands the file to nginx. */
void files_download(struct http_request *r);

/* Loads the signing key into the thread (once). 0, or -1 after replying 500. */
int files_key_or_reply(struct http_request *r);

#endif

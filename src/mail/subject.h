/* subject.h: the subject of a message sent in an existing thread (no GMime: the agents use it). */
#ifndef OFFLOAD_SUBJECT_H
#define OFFLOAD_SUBJECT_H

/*
 * The subject of a follow-up or reply in the thread whose first subject is first (not
 * NULL): first itself when it already starts with "Re:" in any case, else "Re: " and first.
 * Mail clients thread by subject too, and one prefix is enough. Newly allocated.
 */
char *mail_reply_subject(const char *first);

#endif

/* sendwindow.h: send windows (doc/api.md "Send windows"): the weekdays and the hours of the
 * counterparty's day in which the worker may send, parsed from a case's sendWindow object or
 * from [worker] send_window. Parsing only: the time-zone arithmetic is src/worker/window.h. */
#ifndef OFFLOAD_SENDWINDOW_H
#define OFFLOAD_SENDWINDOW_H

#include <stddef.h>

#include <json-c/json.h>

/* The longest [worker] send_window value and stored sendWindow text we read (bytes). */
#define SEND_WINDOW_MAX_TEXT 256

/* A window: on each of days, open from start_min (inclusive) to end_min (exclusive),
 * minutes after local midnight. */
struct send_window {
	unsigned days; /* bit d set: weekday d may send; d = 0 Monday … 6 Sunday */
	int start_min; /* 0 … 1438 */
	int end_min;   /* start_min < end_min ≤ 1439 */
};

/*
 * Validates a sendWindow value (doc/api.md): an object with days (a non-empty array of
 * distinct "MON" … "SUN"), start and end ("HH:MM", 24 h, start < end); other members are
 * ignored. field names it in messages ("sendWindow.start: must be HH:MM"). Returns 0 with
 * *w filled and, when stored_r is not NULL, *stored_r set to a new object holding only
 * days, start and end as given (the caller owns it: json_object_put); -1 with the message
 * in err (errlen bytes), *w unspecified and nothing stored.
 */
int send_window_from_json(json_object *v, const char *field, struct send_window *w,
			  json_object **stored_r, char *err, size_t errlen);

/* Reads a stored sendWindow (JSON text written by the API). 0, or -1 when text is not a
 * valid window (the caller treats the case as having none and says so). */
int send_window_from_text(const char *text, struct send_window *w);

/*
 * Parses the [worker] send_window syntax: DAYS HH:MM-HH:MM, where DAYS is a comma list of
 * days (MON … SUN) and ranges of days (MON-FRI; a range may wrap the week: FRI-MON), case
 * insensitive, e.g. "MON-FRI 09:00-17:00" or "MON,WED,FRI 08:30-12:00". "" and "off" mean
 * no window. Returns 1 with *w filled, 0 for no window, -1 with *error_r (static text).
 */
int send_window_parse_spec(const char *spec, struct send_window *w, const char **error_r);

/* 1 when the window is open on weekday wday (0 Monday) at minute min of the local day. */
int send_window_open_at(const struct send_window *w, int wday, int min);

/* Writes w as the [worker] send_window syntax ("MON,TUE 09:00-17:00") into buf (at least
 * 64 bytes) and returns buf; for logs. */
char *send_window_format(const struct send_window *w, char *buf, size_t len);

#endif

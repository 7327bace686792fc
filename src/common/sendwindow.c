/* sendwindow.c: parsing send windows (the case's sendWindow, [worker] send_window). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/jsonutil.h"
#include "common/sendwindow.h"

static const char day_names[7][4] = { "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN" };

/* "HH:MM" exactly, 00:00 … 23:59: minutes after midnight, or -1. */
static int parse_hhmm(const char *s, size_t len)
{
	int h, m;

	if (len != 5 || s[2] != ':')
		return -1;
	for (int i = 0; i < 5; i++)
		if (i != 2 && (s[i] < '0' || s[i] > '9'))
			return -1;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	if (h > 23 || m > 59)
		return -1;
	return h * 60 + m;
}

/* The weekday named by the len bytes at s (any case), or -1. */
static int parse_day(const char *s, size_t len)
{
	if (len != 3)
		return -1;
	for (int d = 0; d < 7; d++)
		if (strncasecmp(s, day_names[d], 3) == 0)
			return d;
	return -1;
}

/* start or end: a JSON string "HH:MM". Minutes, or -1 with the message in err. */
static int time_member(json_object *v, const char *field, const char *key, char *err,
		       size_t errlen)
{
	json_object *t = jsonutil_member(v, key);
	int min;

	if (!t) {
		snprintf(err, errlen, "%s.%s: is required", field, key);
		return -1;
	}
	/* The length from json-c, not strlen: "09:00\u0000x" is not a time. */
	min = json_object_is_type(t, json_type_string)
		      ? parse_hhmm(json_object_get_string(t), (size_t)json_object_get_string_len(t))
		      : -1;
	if (min < 0)
		snprintf(err, errlen, "%s.%s: must be HH:MM (00:00 to 23:59)", field, key);
	return min;
}

int send_window_from_json(json_object *v, const char *field, struct send_window *w,
			  json_object **stored_r, char *err, size_t errlen)
{
	json_object *days, *stored;
	size_t n;

	if (stored_r)
		*stored_r = NULL;
	memset(w, 0, sizeof *w);
	if (!v || !json_object_is_type(v, json_type_object)) {
		snprintf(err, errlen, "%s: must be an object", field);
		return -1;
	}
	days = jsonutil_member(v, "days");
	if (!days) {
		snprintf(err, errlen, "%s.days: is required", field);
		return -1;
	}
	if (!json_object_is_type(days, json_type_array) ||
	    (n = json_object_array_length(days)) == 0) {
		snprintf(err, errlen, "%s.days: must be a non-empty array of MON, TUE, WED, THU, "
			 "FRI, SAT, SUN", field);
		return -1;
	}
	/* More than seven must repeat one, and is refused on that day below. */
	for (size_t i = 0; i < n; i++) {
		json_object *d = json_object_array_get_idx(days, i);
		int day = d && json_object_is_type(d, json_type_string) &&
				  json_object_get_string_len(d) == 3
			  ? parse_day(json_object_get_string(d), 3) : -1;

		/* The names are upper case, as documented; "mon" is a typo worth a clear no. */
		if (day < 0 || strcmp(json_object_get_string(d), day_names[day]) != 0) {
			snprintf(err, errlen, "%s.days[%zu]: must be one of MON, TUE, WED, THU, FRI, "
				 "SAT, SUN", field, i);
			return -1;
		}
		if (w->days & (1u << day)) {
			snprintf(err, errlen, "%s.days[%zu]: %s is listed twice", field, i,
				 day_names[day]);
			return -1;
		}
		w->days |= 1u << day;
	}
	if ((w->start_min = time_member(v, field, "start", err, errlen)) < 0 ||
	    (w->end_min = time_member(v, field, "end", err, errlen)) < 0)
		return -1;
	if (w->start_min >= w->end_min) {
		snprintf(err, errlen, "%s.end: must be later than %s.start", field, field);
		return -1;
	}
	if (stored_r) {
		stored = json_object_new_object();
		json_object_object_add(stored, "days", json_object_get(days));
		json_object_object_add(stored, "start",
				       json_object_get(jsonutil_member(v, "start")));
		json_object_object_add(stored, "end", json_object_get(jsonutil_member(v, "end")));
		*stored_r = stored;
	}
	return 0;
}

int send_window_from_text(const char *text, struct send_window *w)
{
	json_object *v;
	char err[160];
	int rc;

	memset(w, 0, sizeof *w);
	if (!text || strlen(text) > SEND_WINDOW_MAX_TEXT)
		return -1;
	v = json_tokener_parse(text);
	rc = send_window_from_json(v, "sendWindow", w, NULL, err, sizeof err);
	json_object_put(v);
	return rc;
}

int send_window_parse_spec(const char *spec, struct send_window *w, const char **error_r)
{
	const char *p = spec, *sp;
	size_t len;

	memset(w, 0, sizeof *w);
	while (*p == ' ' || *p == '\t')
		p++;
	len = strlen(p);
	while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	if (len == 0 || (len == 3 && strncasecmp(p, "off", 3) == 0))
		return 0;
	if (len > SEND_WINDOW_MAX_TEXT)
		goto bad;
	sp = memchr(p, ' ', len);
	if (!sp)
		goto bad;
	/* DAYS: ranges and single days, comma separated. */
	for (const char *q = p; q < sp;) {
		const char *comma = memchr(q, ',', (size_t)(sp - q));
		const char *end = comma ? comma : sp;
		int a, b;

		if (end - q == 7 && q[3] == '-') {
			a = parse_day(q, 3);
			b = parse_day(q + 4, 3);
		} else {
			a = b = parse_day(q, (size_t)(end - q));
		}
		if (a < 0 || b < 0)
			goto bad;
		for (int d = a;; d = (d + 1) % 7) {
			w->days |= 1u << d;
			if (d == b)
				break;
		}
		q = comma ? comma + 1 : sp;
		if (comma && q == sp)
			goto bad;
	}
	while (*sp == ' ')
		sp++;
	/* HH:MM-HH:MM */
	if ((size_t)(p + len - sp) != 11 || sp[5] != '-')
		goto bad;
	w->start_min = parse_hhmm(sp, 5);
	w->end_min = parse_hhmm(sp + 6, 5);
	if (w->start_min < 0 || w->end_min < 0 || w->start_min >= w->end_min)
		goto bad;
	return 1;
bad:
	memset(w, 0, sizeof *w);
	*error_r = "must be off, or days and hours such as MON-FRI 09:00-17:00 (days MON … SUN, "
		   "comma-separated, ranges allowed; HH:MM-HH:MM in 24 h, start before end)";
	return -1;
}

int send_window_open_at(const struct send_window *w, int wday, int min)
{
	return wday >= 0 && wday < 7 && (w->days & (1u << wday)) && min >= w->start_min &&
	       min < w->end_min;
}

char *send_window_format(const struct send_window *w, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int d = 0; d < 7; d++)
		if (w->days & (1u << d)) {
			int n = snprintf(buf + off, len - off, "%s%s", off ? "," : "", day_names[d]);

			if (n < 0 || (size_t)n >= len - off)
				return buf;
			off += (size_t)n;
		}
	snprintf(buf + off, len - off, " %02d:%02d-%02d:%02d", w->start_min / 60, w->start_min % 60,
		 w->end_min / 60, w->end_min % 60);
	return buf;
}

/* health.c: the database node's state for /healthz and /metrics. */
#include <string.h>
#include <strings.h>

#include "store/db.h"
#include "store/health.h"

int store_node_check(struct db *db, struct store_node_state *state_r, const char **why_r)
{
	/* information_schema.GLOBAL_STATUS has the wsrep_* rows only while a provider is
	 * loaded; @@wsrep_on exists on every MariaDB built with Galera support (Debian's). */
	static const char sql[] =
		"SELECT @@wsrep_on,"
		" (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"
		"  WHERE VARIABLE_NAME = 'WSREP_READY'),"
		" (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"
		"  WHERE VARIABLE_NAME = 'WSREP_LOCAL_STATE'),"
		" (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"
		"  WHERE VARIABLE_NAME = 'WSREP_CLUSTER_SIZE'),"
		" (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"
		"  WHERE VARIABLE_NAME = 'WSREP_CLUSTER_STATUS')";
	struct store_node_state st;
	struct db_res *res = NULL;
	const char *v;
	int rc;

	memset(&st, 0, sizeof st);
	if (db_query(db, sql, NULL, 0, &res) < 0) {
		*why_r = db_error(db);
		return -1;
	}
	st.wsrep_on = db_res_int(res, 0, 0) != 0;
	v = db_res_get(res, 0, 1);
	st.ready = v && strcasecmp(v, "ON") == 0;
	st.local_state = db_res_int(res, 0, 2);
	st.cluster_size = db_res_int(res, 0, 3);
	v = db_res_get(res, 0, 4);
	st.primary = v && strcasecmp(v, "Primary") == 0;
	db_res_free(&res);
	if (!st.wsrep_on) {
		rc = 1;
	} else if (!st.primary) {
		*why_r = "the database node is not in the cluster's primary component";
		rc = 0;
	} else if (!st.ready || st.local_state != 4) {
		*why_r = "the database node is not synced with its cluster";
		rc = 0;
	} else {
		rc = 1;
	}
	if (state_r)
		*state_r = st;
	return rc;
}

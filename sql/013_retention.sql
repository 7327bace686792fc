-- 013_retention.sql: retention and erasure of cases (doc/operator-guide.md, "Retention and
-- erasure"). The usage of deleted cases is kept as numbers, so that deleting cases does
-- not give a client its cap back; an erasure that has begun is queued until every row and
-- file of its case is gone (a crash in the middle is finished by the next worker pass);
-- /metrics counts the cases deleted; the retention pass walks an index range of finished
-- cases; and an Idempotency-Key remembers the case it created, so that its entry goes with
-- the case.

-- The usage of deleted cases per client and UTC calendar month (month = YYYYMM): the monthly
-- caps (doc/api.md, "Plans and usage limits") count the cases stored plus these numbers,
-- which the transaction deleting a case adds to: it was created in a month, and maybe
-- finished, billable, in a month.
CREATE TABLE usage_deleted (
  client_id CHAR(36) CHARACTER SET ascii NOT NULL,
  month INT NOT NULL,
  cases_created BIGINT NOT NULL DEFAULT 0,
  cases_finished_billable BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (client_id, month)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Erasures begun and not finished: the case row is gone (GET answers 404), its other rows
-- and files are being deleted. Only the case id and when stay here, until the end.
CREATE TABLE erasures (
  case_id CHAR(36) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  reason VARCHAR(16) CHARACTER SET ascii NOT NULL,
  requested_at BIGINT NOT NULL,
  KEY erasures_requested (requested_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Counters kept across processes (GET /metrics reads them).
CREATE TABLE counters (
  name VARCHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  value BIGINT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT IGNORE INTO counters (name, value) VALUES ('cases_deleted_retention', 0),
  ('cases_deleted_request', 0);

-- The retention pass: finished cases by status and finish time, an index range.
ALTER TABLE cases ADD KEY cases_status_finished (status, finished_at);

ALTER TABLE idempotency_keys
  ADD COLUMN case_id CHAR(36) CHARACTER SET ascii NULL,
  ADD KEY idempotency_keys_case (case_id);

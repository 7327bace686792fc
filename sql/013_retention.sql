-- 013_retention.sql: retention and erasure of cases (doc/operator-guide.md, "Retention and
-- erasure"). Monthly usage is kept as numbers, so that deleting cases does not give a client
-- its cap back; an erasure that has begun is queued until every row and file of its case is
-- gone (a crash in the middle is finished by the next worker pass); /metrics counts the cases
-- deleted; the retention pass walks an index range of finished cases; and an
-- Idempotency-Key remembers the case it created, so that its entry goes with the case.

-- Usage per client and UTC calendar month (month = YYYYMM), the figures the monthly caps
-- compare with (doc/api.md, "Plans and usage limits"): cases created, and billable cases
-- finished, counted by the transactions that create and finish them.
CREATE TABLE usage_monthly (
  client_id CHAR(36) CHARACTER SET ascii NOT NULL,
  month INT NOT NULL,
  cases_created BIGINT NOT NULL DEFAULT 0,
  cases_finished_billable BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (client_id, month)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The usage so far, from the cases stored (FROM_UNIXTIME reads the session's zone: UTC here).
SET time_zone = '+00:00';
INSERT INTO usage_monthly (client_id, month, cases_created)
  SELECT client_id, EXTRACT(YEAR_MONTH FROM FROM_UNIXTIME(created_at DIV 1000)), COUNT(*)
  FROM cases GROUP BY 1, 2;
INSERT INTO usage_monthly (client_id, month, cases_finished_billable)
  SELECT client_id, EXTRACT(YEAR_MONTH FROM FROM_UNIXTIME(finished_at DIV 1000)) AS m, COUNT(*) AS n
  FROM cases WHERE finished_at IS NOT NULL AND (status = 'COMPLETED' OR (status = 'FAILED'
  AND (result_status IS NULL OR result_status NOT IN ('BOUNCED', 'REJECTED', 'COMPLAINED'))))
  GROUP BY 1, 2
  ON DUPLICATE KEY UPDATE cases_finished_billable = VALUES(cases_finished_billable);
SET time_zone = @@global.time_zone;

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

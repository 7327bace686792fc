-- 007_exact_match.sql: stored strings that are looked up or compared match exactly (SPEC §2).
-- utf8mb4_bin is a PAD SPACE collation, so "ref-X" = "ref-X " there; utf8mb4_nopad_bin
-- compares every byte, trailing spaces included. (The ascii columns are not changed here: a
-- parameter arrives as utf8mb4 and MariaDB compares an ascii column with it in the
-- parameter's collation, whatever the column's; see doc/hostile-input.md.)

-- GET /cases?clientReferenceId=ref-X lists ref-X only, never "ref-X " (the index is rebuilt).
ALTER TABLE cases
  MODIFY client_reference_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NULL;

-- Idempotency-Key "k" and "k " are two keys (the primary key compares with the column's
-- collation, so it follows).
ALTER TABLE idempotency_keys
  MODIFY idem_key VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL;

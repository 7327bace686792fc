-- 005_agent.sql: one row per call to the LLM agent (doc/operator-guide.md,
-- "The agent"), for accounting: the token
-- usage the server reported and the latency, per case. offloadctl case show sums them.
-- outcome: ok, bad_output (unusable JSON or shape), result_mismatch (a result that does
-- not conform to resultSchema), refused, truncated (finish_reason length), http_error,
-- timeout, connection_error, bad_response (a 200 that was no Chat Completions answer).

CREATE TABLE agent_calls (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  case_id CHAR(36) CHARACTER SET ascii NOT NULL,
  call_name VARCHAR(32) CHARACTER SET ascii NOT NULL,
  model VARCHAR(256) NOT NULL,
  prompt_tokens INT NOT NULL DEFAULT 0,
  completion_tokens INT NOT NULL DEFAULT 0,
  total_tokens INT NOT NULL DEFAULT 0,
  latency_ms INT NOT NULL,
  http_status INT NULL,
  outcome VARCHAR(24) CHARACTER SET ascii NOT NULL,
  created_at BIGINT NOT NULL,
  KEY agent_calls_case (case_id, created_at),
  KEY agent_calls_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- 001_init.sql: clients, keys, cases, the event queue, messages, attachments,
-- the webhook outbox and idempotency keys. Times are Unix milliseconds (BIGINT),
-- set by the application clock, never by NOW().

CREATE TABLE settings (
  name VARCHAR(64) NOT NULL PRIMARY KEY,
  value VARBINARY(1024) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The key that signs /files/ download links, shared by every API host.
INSERT INTO settings (name, value) VALUES ('files_signing_key', RANDOM_BYTES(32));

CREATE TABLE clients (
  id CHAR(36) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  name VARCHAR(255) NOT NULL,
  plan VARCHAR(16) CHARACTER SET ascii NOT NULL,
  webhook_secret VARCHAR(128) CHARACTER SET ascii NOT NULL,
  webhook_secret_previous VARCHAR(128) CHARACTER SET ascii NULL,
  created_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE api_keys (
  id CHAR(36) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  client_id CHAR(36) CHARACTER SET ascii NOT NULL,
  key_hash BINARY(32) NOT NULL,
  key_prefix VARCHAR(16) CHARACTER SET ascii NOT NULL,
  active TINYINT NOT NULL DEFAULT 1,
  created_at BIGINT NOT NULL,
  deactivated_at BIGINT NULL,
  UNIQUE KEY api_keys_hash (key_hash),
  KEY api_keys_client (client_id),
  CONSTRAINT api_keys_client_fk FOREIGN KEY (client_id) REFERENCES clients (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE cases (
  id CHAR(36) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  client_id CHAR(36) CHARACTER SET ascii NOT NULL,
  client_reference_id VARCHAR(255) NULL,
  status VARCHAR(16) CHARACTER SET ascii NOT NULL,
  channel VARCHAR(8) CHARACTER SET ascii NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  next_action_at BIGINT NOT NULL DEFAULT 253402300799999,
  attempt_count INT NOT NULL DEFAULT 0,
  follow_ups_sent INT NOT NULL DEFAULT 0,
  max_attempts INT NOT NULL,
  follow_up_delay_hours INT NOT NULL,
  counterparty_address VARCHAR(254) NOT NULL,
  goal LONGTEXT NOT NULL CHECK (JSON_VALID(goal)),
  counterparty LONGTEXT NOT NULL CHECK (JSON_VALID(counterparty)),
  sender_persona LONGTEXT NOT NULL CHECK (JSON_VALID(sender_persona)),
  constraints_json LONGTEXT NULL CHECK (constraints_json IS NULL OR JSON_VALID(constraints_json)),
  result_schema LONGTEXT NULL CHECK (result_schema IS NULL OR JSON_VALID(result_schema)),
  metadata LONGTEXT NULL CHECK (metadata IS NULL OR JSON_VALID(metadata)),
  client_webhook_url VARCHAR(2048) NULL,
  result_status VARCHAR(32) NULL,
  result LONGTEXT NULL CHECK (result IS NULL OR JSON_VALID(result)),
  failure_reason TEXT NULL,
  input_request_id CHAR(36) CHARACTER SET ascii NULL,
  finished_at BIGINT NULL,
  version INT NOT NULL DEFAULT 0,
  KEY cases_client_created (client_id, created_at),
  KEY cases_client_finished (client_id, finished_at),
  KEY cases_client_updated (client_id, updated_at, id),
  KEY cases_client_ref (client_id, client_reference_id),
  KEY cases_due (status, next_action_at, id),
  CONSTRAINT cases_client_fk FOREIGN KEY (client_id) REFERENCES clients (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Questions put to the client's operator, and their answers.
CREATE TABLE input_requests (
  id CHAR(36) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  case_id CHAR(36) CHARACTER SET ascii NOT NULL,
  question TEXT NOT NULL,
  status VARCHAR(16) CHARACTER SET ascii NOT NULL,
  requested_at BIGINT NOT NULL,
  resolved_at BIGINT NULL,
  answer MEDIUMTEXT NULL,
  decision LONGTEXT NULL CHECK (decision IS NULL OR JSON_VALID(decision)),
  KEY input_requests_case (case_id, requested_at),
  CONSTRAINT input_requests_case_fk FOREIGN KEY (case_id) REFERENCES cases (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The internal work queue: claimed with FOR UPDATE SKIP LOCKED and a lease.
CREATE TABLE events (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  case_id CHAR(36) CHARACTER SET ascii NOT NULL,
  type VARCHAR(32) CHARACTER SET ascii NOT NULL,
  payload LONGTEXT NULL CHECK (payload IS NULL OR JSON_VALID(payload)),
  state VARCHAR(12) CHARACTER SET ascii NOT NULL DEFAULT 'pending',
  available_at BIGINT NOT NULL,
  attempts INT NOT NULL DEFAULT 0,
  lease_owner VARCHAR(64) CHARACTER SET ascii NULL,
  lease_until BIGINT NULL,
  last_error TEXT NULL,
  created_at BIGINT NOT NULL,
  done_at BIGINT NULL,
  KEY events_due (state, available_at, id),
  KEY events_case (case_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Every inbound and outbound message of a thread; inbound mail that matched no case keeps
-- case_id NULL.
CREATE TABLE messages (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  case_id CHAR(36) CHARACTER SET ascii NULL,
  direction VARCHAR(8) CHARACTER SET ascii NOT NULL,
  kind VARCHAR(16) CHARACTER SET ascii NOT NULL,
  message_id VARCHAR(998) CHARACTER SET ascii NOT NULL,
  in_reply_to VARCHAR(998) CHARACTER SET ascii NULL,
  references_ids TEXT CHARACTER SET ascii NULL,
  from_addr VARCHAR(512) NOT NULL,
  to_addr VARCHAR(512) NOT NULL,
  subject TEXT NOT NULL,
  body_text MEDIUMTEXT NOT NULL,
  quoted_text MEDIUMTEXT NULL,
  send_state VARCHAR(12) CHARACTER SET ascii NULL,
  created_at BIGINT NOT NULL,
  sent_at BIGINT NULL,
  raw_path VARCHAR(512) NULL,
  KEY messages_case (case_id, created_at, id),
  KEY messages_message_id (message_id(255))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE attachments (
  id CHAR(36) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  case_id CHAR(36) CHARACTER SET ascii NOT NULL,
  message_row_id BIGINT NULL,
  name VARCHAR(255) NOT NULL,
  size BIGINT NOT NULL,
  content_type VARCHAR(255) CHARACTER SET ascii NOT NULL,
  sha256 CHAR(64) CHARACTER SET ascii NOT NULL,
  storage_path VARCHAR(512) NOT NULL,
  message_id VARCHAR(998) CHARACTER SET ascii NOT NULL,
  inbox_id VARCHAR(254) NOT NULL,
  received_at BIGINT NOT NULL,
  KEY attachments_case (case_id, received_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The webhook outbox: written in the transaction that changes the case.
CREATE TABLE webhook_deliveries (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  event_id VARCHAR(128) CHARACTER SET ascii NOT NULL,
  client_id CHAR(36) CHARACTER SET ascii NOT NULL,
  case_id CHAR(36) CHARACTER SET ascii NOT NULL,
  event_type VARCHAR(32) CHARACTER SET ascii NOT NULL,
  url VARCHAR(2048) NOT NULL,
  body LONGTEXT NOT NULL,
  state VARCHAR(12) CHARACTER SET ascii NOT NULL DEFAULT 'pending',
  attempts INT NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL,
  lease_owner VARCHAR(64) CHARACTER SET ascii NULL,
  lease_until BIGINT NULL,
  last_status_code INT NULL,
  last_error TEXT NULL,
  last_response_body TEXT NULL,
  created_at BIGINT NOT NULL,
  delivered_at BIGINT NULL,
  UNIQUE KEY webhook_deliveries_event (event_id),
  KEY webhook_deliveries_due (state, next_attempt_at, id),
  KEY webhook_deliveries_case (case_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE idempotency_keys (
  client_id CHAR(36) CHARACTER SET ascii NOT NULL,
  idem_key VARCHAR(255) NOT NULL,
  request_hash BINARY(32) NOT NULL,
  state VARCHAR(12) CHARACTER SET ascii NOT NULL,
  response_status INT NULL,
  response_body MEDIUMTEXT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (client_id, idem_key),
  KEY idempotency_keys_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

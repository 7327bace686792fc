-- 012_sender_identity.sql: a client's own sender identity (doc/operator-guide.md, "Sender
-- identities"): the From address of its mail, the domain its replies and bounces come back
-- to (inbox+<caseId>@domain, bounces+<tag>@domain), and optionally its own SMTP server.
-- A client without a row sends with the server's [mail] settings. The SMTP password is
-- never stored: only the path of a file that holds it, readable by the service user.
-- reply_domain is stored in lower case and is unique, so that a reply domain names at most
-- one client (a reply to one client's domain can never attach to another client's case).
CREATE TABLE client_senders (
  client_id CHAR(36) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  from_address VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
  reply_domain VARCHAR(253) CHARACTER SET ascii COLLATE ascii_nopad_bin NULL,
  smtp_url VARCHAR(1024) CHARACTER SET ascii COLLATE ascii_nopad_bin NULL,
  smtp_user VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NULL,
  smtp_password_file VARCHAR(1024) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NULL,
  updated_at BIGINT NOT NULL,
  UNIQUE KEY client_senders_reply_domain (reply_domain),
  CONSTRAINT client_senders_client_fk FOREIGN KEY (client_id) REFERENCES clients (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

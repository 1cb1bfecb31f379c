-- Server-side limits for the connector's own role, so that a Lambda that is
-- frozen, timed out or killed in the middle of a transaction never holds
-- locks for long. They are role settings, not SET on a session: RDS Proxy
-- and PgBouncer (transaction mode) hand sessions from one client to the
-- next, and a role's defaults apply to every session the pooler opens for
-- it. They apply to new sessions; they do not touch other roles (the rest
-- of KeyBuzz) sharing the database. Run migrations as the connector's role
-- (docs/deploy.md).
--
-- idle_in_transaction_session_timeout 15 s: no transaction of the
--   connector waits on anything but the database between two statements
--   (Amazon and Vault are called outside transactions), so a session idle
--   inside a transaction for 15 s belongs to a frozen or dead container;
--   the server ends it and releases its locks.
-- lock_timeout 5 s: a statement that would wait longer for a row lock fails
--   as a transient error (the SQS record or the HTTP request is retried)
--   instead of piling up behind a stuck session.
-- statement_timeout 20 s: the longest statement is a page's ingestion
--   (at most 100 orders, milliseconds); 20 s is below the API functions'
--   25 s timeout, so a runaway statement fails before its Lambda does.
--   cmd/migrate lifts these limits for its own session.
ALTER ROLE CURRENT_USER SET idle_in_transaction_session_timeout = '15s';
ALTER ROLE CURRENT_USER SET lock_timeout = '5s';
ALTER ROLE CURRENT_USER SET statement_timeout = '20s';

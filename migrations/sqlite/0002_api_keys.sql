-- API keys: one row per key ever created. The key itself is never stored, only the SHA-256 of it, as
-- 64 lowercase hex digits; a caller's key is found by that hash. Revoked keys stay, for the record.
CREATE TABLE IF NOT EXISTS api_keys (
    seq               INTEGER  PRIMARY KEY AUTOINCREMENT,  -- creation order; never shown
    id                TEXT     NOT NULL UNIQUE,      -- 'key_' + 26 Crockford base32 characters; public
    key_hash          TEXT     NOT NULL,
    name              TEXT     NOT NULL,
    admin             BOOLEAN  NOT NULL,             -- the admin scope
    rate_per_minute   BIGINT,                        -- NULL: the server's default for keys
    daily_tokens      BIGINT,                        -- LLM tokens per UTC day; NULL: unlimited
    created_at_ms     BIGINT   NOT NULL,             -- Unix epoch milliseconds, UTC
    revoked_at_ms     BIGINT                         -- NULL while the key is active
);
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_key_hash ON api_keys (key_hash);

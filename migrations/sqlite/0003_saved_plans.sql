-- Saved plans: every completed plan, kept for its owner (PLAN_RETENTION_DAYS after its last version).
-- A plan has one row here and one row per version in saved_plan_versions; share links are plan_shares.
CREATE TABLE IF NOT EXISTS saved_plans (
    seq               INTEGER  PRIMARY KEY AUTOINCREMENT,  -- save order; never shown
    id                TEXT     NOT NULL UNIQUE,      -- 'plan_' + 26 Crockford base32 characters, random
    owner             TEXT     NOT NULL,             -- 'key:<key id>', 'session:<page session id>' or 'anonymous'
    source_plan       TEXT     NOT NULL,             -- the generation's plan id (pln_…): a replay finds this copy
    request           TEXT     NOT NULL,             -- the request, as JSON in the contract's form
    location          TEXT     NOT NULL,
    start_date        TEXT     NOT NULL,             -- YYYY-MM-DD
    end_date          TEXT     NOT NULL,
    title             TEXT     NOT NULL,             -- the latest version's title
    latest_version    INTEGER  NOT NULL,             -- 1, 2, …
    created_at_ms     BIGINT   NOT NULL,             -- Unix epoch milliseconds, UTC
    updated_at_ms     BIGINT   NOT NULL              -- when the latest version was saved; retention counts from it
);
CREATE UNIQUE INDEX IF NOT EXISTS saved_plans_owner_source ON saved_plans (owner, source_plan);
CREATE INDEX IF NOT EXISTS saved_plans_owner_updated ON saved_plans (owner, updated_at_ms);
CREATE INDEX IF NOT EXISTS saved_plans_updated ON saved_plans (updated_at_ms);

CREATE TABLE IF NOT EXISTS saved_plan_versions (
    plan_id           TEXT     NOT NULL,             -- saved_plans.id
    version           INTEGER  NOT NULL,
    plan              TEXT     NOT NULL,             -- the plan, as JSON in the contract's form
    created_at_ms     BIGINT   NOT NULL,
    PRIMARY KEY (plan_id, version)
);

-- Read-only links to a saved plan: whoever has the id reads the plan's latest version. Revoking deletes the row.
CREATE TABLE IF NOT EXISTS plan_shares (
    id                TEXT     PRIMARY KEY,          -- 'shr_' + 26 Crockford base32 characters, random
    plan_id           TEXT     NOT NULL,             -- saved_plans.id
    created_at_ms     BIGINT   NOT NULL
);
CREATE INDEX IF NOT EXISTS plan_shares_plan ON plan_shares (plan_id);

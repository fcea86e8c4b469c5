-- One row per plan request (JSON or stream), written off the request path by the run log.
CREATE TABLE IF NOT EXISTS plan_streaming_logs (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id            TEXT,
    stream_id             TEXT,
    endpoint              TEXT     NOT NULL,             -- 'stream' | 'json'
    location              TEXT     NOT NULL,
    start_date            TEXT     NOT NULL,
    end_date              TEXT     NOT NULL,
    budget                TEXT     NOT NULL,
    travelers             INTEGER  NOT NULL,
    language              TEXT     NOT NULL,
    interests             TEXT     NOT NULL,             -- JSON array
    started_at_ms         BIGINT   NOT NULL,             -- Unix epoch milliseconds, UTC
    duration_ms           BIGINT   NOT NULL,
    first_event_ms        BIGINT,                        -- time to the first event
    event_count           INTEGER  NOT NULL,
    events_by_type        TEXT     NOT NULL,             -- JSON object: type -> count
    events_by_step        TEXT     NOT NULL,             -- JSON object: step -> count
    has_error             BOOLEAN  NOT NULL,
    error_code            TEXT,
    received_complete     BOOLEAN  NOT NULL,
    client_disconnected   BOOLEAN  NOT NULL,
    cache_hit             BOOLEAN  NOT NULL,
    coalesced             BOOLEAN  NOT NULL,
    provider              TEXT,
    model                 TEXT,
    input_tokens          BIGINT   NOT NULL DEFAULT 0,
    output_tokens         BIGINT   NOT NULL DEFAULT 0,
    refine_iterations     INTEGER  NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS plan_streaming_logs_started ON plan_streaming_logs (started_at_ms);

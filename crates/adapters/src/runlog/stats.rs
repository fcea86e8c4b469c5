//! The monitoring numbers, from run-log rows: the original service's four (average streaming duration,
//! average event count by step, error rate, completion rate) and p50/p95 duration, cache hit rate and
//! requests by provider. Shared by `GET /api/v1/stats` and `tripstream stats`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::RunRecord;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub since_ms: i64,
    pub requests: u64,
    pub streams: u64,
    /// Mean duration of streamed requests, milliseconds.
    pub avg_stream_duration_ms: Option<f64>,
    /// Per step, the mean number of events a streamed request received.
    pub avg_events_by_step: BTreeMap<String, f64>,
    /// Share of requests that ended with an `error` event or error response.
    pub error_rate: Option<f64>,
    /// Share of requests that received `complete`.
    pub completion_rate: Option<f64>,
    pub p50_duration_ms: Option<i64>,
    pub p95_duration_ms: Option<i64>,
    pub cache_hit_rate: Option<f64>,
    pub coalesced: u64,
    pub client_disconnects: u64,
    pub by_provider: BTreeMap<String, u64>,
    pub errors_by_code: BTreeMap<String, u64>,
}

pub fn stats(since_ms: i64, rows: &[RunRecord]) -> Stats {
    let n = rows.len() as f64;
    let share =
        |f: &dyn Fn(&RunRecord) -> bool| (!rows.is_empty()).then(|| rows.iter().filter(|r| f(r)).count() as f64 / n);
    let streams: Vec<&RunRecord> = rows.iter().filter(|r| r.endpoint == "stream").collect();
    let mut steps: BTreeMap<String, f64> = BTreeMap::new();
    for r in &streams {
        for (step, count) in &r.events_by_step {
            *steps.entry(step.clone()).or_default() += f64::from(*count);
        }
    }
    if !streams.is_empty() {
        steps.values_mut().for_each(|v| *v /= streams.len() as f64);
    }
    let mut durations: Vec<i64> = rows.iter().map(|r| r.duration_ms).collect();
    durations.sort_unstable();
    let percentile = |p: f64| {
        (!durations.is_empty())
            .then(|| durations[((p * durations.len() as f64).ceil() as usize).clamp(1, durations.len()) - 1])
    };
    let mut by_provider = BTreeMap::new();
    let mut errors_by_code = BTreeMap::new();
    for r in rows {
        *by_provider.entry(r.provider.clone().unwrap_or_else(|| "none".into())).or_default() += 1;
        if let Some(code) = &r.error_code {
            *errors_by_code.entry(code.clone()).or_default() += 1;
        }
    }
    Stats {
        since_ms,
        requests: rows.len() as u64,
        streams: streams.len() as u64,
        avg_stream_duration_ms: (!streams.is_empty())
            .then(|| streams.iter().map(|r| r.duration_ms as f64).sum::<f64>() / streams.len() as f64),
        avg_events_by_step: steps,
        error_rate: share(&|r| r.has_error),
        completion_rate: share(&|r| r.received_complete),
        p50_duration_ms: percentile(0.50),
        p95_duration_ms: percentile(0.95),
        cache_hit_rate: share(&|r| r.cache_hit),
        coalesced: rows.iter().filter(|r| r.coalesced).count() as u64,
        client_disconnects: rows.iter().filter(|r| r.client_disconnected).count() as u64,
        by_provider,
        errors_by_code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(endpoint: &str, duration_ms: i64, error: bool, cache_hit: bool) -> RunRecord {
        RunRecord {
            endpoint: endpoint.into(),
            duration_ms,
            has_error: error,
            error_code: error.then(|| "llm_timeout".into()),
            received_complete: !error,
            cache_hit,
            provider: Some("offline".into()),
            events_by_step: [("generate_draft".to_owned(), 10), ("finalize_plan".to_owned(), 3)].into(),
            ..RunRecord::default()
        }
    }

    #[test]
    fn the_numbers_of_a_known_set_of_rows() {
        let rows: Vec<RunRecord> =
            (1..=20).map(|i| row(if i % 2 == 0 { "stream" } else { "json" }, i * 100, i == 20, i <= 5)).collect();
        let s = stats(0, &rows);
        assert_eq!((s.requests, s.streams), (20, 10));
        assert_eq!(s.avg_stream_duration_ms, Some(1100.0));
        assert_eq!(s.avg_events_by_step["generate_draft"], 10.0);
        assert_eq!((s.error_rate, s.completion_rate), (Some(0.05), Some(0.95)));
        assert_eq!((s.p50_duration_ms, s.p95_duration_ms), (Some(1000), Some(1900)));
        assert_eq!(s.cache_hit_rate, Some(0.25));
        assert_eq!(s.by_provider["offline"], 20);
        assert_eq!(s.errors_by_code["llm_timeout"], 1);
        let empty = stats(0, &[]);
        assert_eq!((empty.requests, empty.error_rate, empty.p95_duration_ms), (0, None, None));
    }
}

//! Property tests (proptest) of what reads a provider's reply: the SSE layer ([`transport::read_sse`])
//! and the partial-JSON reader ([`PlanStream`]). Replies are untrusted input, cut anywhere by the
//! network: nothing may panic, the cut must not change what is read, and the work stays linear. A fixed
//! seed; 256 cases unless `PROPTEST_CASES` says otherwise.

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use serde_json::json;
use tripstream_domain::event::ErrorCode;

use super::incremental::{Piece, PlanStream};
use super::transport::{self, Flow};

fn config() -> Config {
    Config { rng_seed: RngSeed::Fixed(0x7219_5EED), failure_persistence: None, ..Config::default() }
}

/// `bytes` cut at the given points (each taken modulo the length), in order.
fn cut(bytes: &[u8], points: &[usize]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = points.iter().map(|p| p % (bytes.len() + 1)).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| bytes[w[0]..w[1]].to_vec()).collect()
}

/// Runs `read_sse` over a body that arrives in `chunks`, returning the data it passed on.
fn read(chunks: Vec<Vec<u8>>, max_bytes: usize) -> (Vec<String>, Result<(), ErrorCode>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    runtime.block_on(async {
        let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>)));
        let response = reqwest::Response::from(http::Response::new(body));
        let mut seen = Vec::new();
        let result = transport::read_sse("test", response, Duration::from_secs(10), max_bytes, |data| {
            seen.push(data.to_owned());
            Ok(Flow::Continue)
        })
        .await;
        (seen, result.map_err(|e| e.code))
    })
}

/// A plan in the model's shape with arbitrary text where people's words go.
fn plan_json() -> impl Strategy<Value = String> {
    let activity = (any::<String>(), any::<String>(), 0u64..1_000_000, any::<bool>()).prop_map(
        |(name, description, cost, indoor)| {
            json!({"time": "09:00", "durationMinutes": 60, "name": name, "description": description,
                   "category": "sightseeing", "area": "a", "costPerPerson": cost, "indoor": indoor})
        },
    );
    let day = (any::<String>(), prop::collection::vec(activity, 0..5))
        .prop_map(|(theme, activities)| json!({"day": 1, "theme": theme, "activities": activities}));
    (any::<String>(), prop::collection::vec(day, 0..4), any::<bool>(), "[^{]{0,20}").prop_map(
        |(title, days, pretty, preface)| {
            let plan = json!({"title": title, "days": days, "tips": ["t"]});
            let text = if pretty { serde_json::to_string_pretty(&plan) } else { serde_json::to_string(&plan) };
            format!("{preface}{}", text.unwrap())
        },
    )
}

/// Pushes `text` cut at `points` (moved to character boundaries).
fn push_cut(text: &str, points: &[usize]) -> (Vec<Piece>, PlanStream) {
    let mut stream = PlanStream::new();
    let mut pieces = Vec::new();
    let mut from = 0;
    let mut at: Vec<usize> = points.iter().map(|p| p % (text.len() + 1)).collect();
    at.push(text.len());
    at.sort_unstable();
    for mut to in at {
        while !text.is_char_boundary(to) {
            to += 1;
        }
        if to > from {
            pieces.extend(stream.push(&text[from..to]));
            from = to;
        }
    }
    (pieces, stream)
}

proptest! {
    #![proptest_config(config())]

    /// Well-formed SSE, with any line endings, cut anywhere (inside a line ending or a character too):
    /// every frame's data arrives once, in order, and a body past the cap is `llm_bad_output`.
    #[test]
    fn sse_frames_survive_any_cut_and_the_cap_holds(
        frames in prop::collection::vec("[^\r\n]{0,40}", 0..20),
        endings in prop::collection::vec(prop::sample::select(vec!["\n", "\r\n", "\r"]), 20),
        comments in any::<bool>(),
        points in prop::collection::vec(any::<usize>(), 0..30),
        max_bytes in prop_oneof![Just(usize::MAX), 0usize..2000],
    ) {
        let mut body = String::new();
        for (i, data) in frames.iter().enumerate() {
            let eol = endings[i % endings.len()];
            if comments {
                body.push_str(&format!(": keep-alive{eol}"));
            }
            body.push_str(&format!("data:{data}{eol}{eol}"));
        }
        let (seen, result) = read(cut(body.as_bytes(), &points), max_bytes);
        if body.len() > max_bytes {
            prop_assert_eq!(result, Err(ErrorCode::LlmBadOutput));
        } else {
            prop_assert_eq!(result, Ok(()));
            // One space after `data:` is the field's separator, not the data's.
            let expected: Vec<String> =
                frames.iter().map(|d| d.strip_prefix(' ').unwrap_or(d)).filter(|d| !d.is_empty()).map(String::from).collect();
            prop_assert_eq!(seen, expected);
        }
    }

    /// Any bytes at all, cut anywhere: an answer (never a panic), and only a code the contract has for a
    /// broken reply.
    #[test]
    fn any_body_is_read_or_refused_without_panicking(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        points in prop::collection::vec(any::<usize>(), 0..10),
        max_bytes in prop_oneof![Just(usize::MAX), 0usize..600],
    ) {
        let (_, result) = read(cut(&bytes, &points), max_bytes);
        if let Err(code) = result {
            prop_assert!([ErrorCode::LlmBadOutput, ErrorCode::LlmUnavailable].contains(&code), "{:?}", code);
        }
    }

    /// A plan cut anywhere reads the same as the plan in one piece, the whole plan parses at the end, and
    /// the reader's work stays within a few times the reply's length.
    #[test]
    fn the_partial_json_reader_is_indifferent_to_cuts_and_linear(
        text in plan_json(),
        points in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let (whole, stream) = push_cut(&text, &[]);
        let (pieces, cut_stream) = push_cut(&text, &points);
        prop_assert_eq!(&pieces, &whole);
        prop_assert!(stream.finish().is_ok());
        prop_assert!(cut_stream.work() <= 5 * text.len() + 1, "{} for {}", cut_stream.work(), text.len());
        let closed = pieces.iter().filter(|p| matches!(p, Piece::DayClosed { .. })).count();
        prop_assert_eq!(closed, stream.finish().unwrap().days.len());
    }

    /// Any text at all: no panic, and the work stays linear.
    #[test]
    fn the_partial_json_reader_takes_any_text(
        text in prop_oneof![any::<String>(), "[\\[\\]{}\":, a\\\\]{0,300}"],
        points in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let (_, stream) = push_cut(&text, &points);
        prop_assert!(stream.work() <= 5 * text.len() + 1, "{} for {}", stream.work(), text.len());
        let _ = stream.finish();
    }
}

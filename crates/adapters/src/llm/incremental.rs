//! Reads a JSON plan while it is still being written, so people see each activity the moment its object
//! closes and each day the moment the day's object closes — never raw JSON.
//!
//! The work is linear in the reply's length, whatever its shape or however it is cut into pieces: each
//! byte is looked at once by a small structural scanner (strings, escapes, nesting, and the few keys that
//! matter: `days`, `theme`, `activities`), which keeps its state between pieces, and each activity's
//! text is handed to serde once, when its object closes. A day and the whole plan are then made of the
//! activities and days already read: serde only counts their elements and reads the few fields around
//! them, and reads the whole text again only when the counts disagree (a shape the scanner did not follow,
//! which serde then judges, as it would have). An object counts as complete only
//! when its closing brace has arrived, so a number cut mid-digit or a string cut mid-word is never shown.
//! Whatever precedes the first `{` (a sentence, a markdown fence) is ignored, and so is whatever follows
//! the object. Nesting deeper than [`MAX_DEPTH`] stops the reading (serde would refuse it too), so a
//! hostile reply cannot grow the scanner's stack.

use super::schema::{DayHead, ModelActivity, ModelDay, ModelPlan, PlanHead};

/// The deepest nesting read; a plan needs four levels.
pub const MAX_DEPTH: usize = 64;

/// The longest key that is remembered: the keys that matter are short, and a hostile one is not copied.
const MAX_KEY: usize = 16;

/// Something that became readable.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// The first complete activity of day `index` (0-based) arrived: the day can be announced.
    DayStarted {
        index: usize,
        theme: String,
    },
    Activity {
        index: usize,
        activity: ModelActivity,
    },
    /// Day `index`'s object closed.
    DayClosed {
        index: usize,
        day: ModelDay,
    },
}

/// What an open object or array is, by where it sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Root,
    Days,
    Day,
    Activities,
    Activity,
    Other,
}

/// An object or array that has opened and not yet closed.
#[derive(Debug)]
struct Open {
    role: Role,
    /// Where its `{` or `[` is in the reply.
    start: usize,
    object: bool,
    /// In an object: where the key of the value being read is in the reply (without its quotes), when
    /// short enough to matter. The reply is only ever appended to, so the place stays valid.
    key: Option<(usize, usize)>,
    /// In an object: past the `:`, reading a value.
    in_value: bool,
}

/// Where the scanner is inside a string.
#[derive(Debug, Clone, Copy)]
struct InString {
    start: usize,
    key: bool,
    escaped: bool,
}

#[derive(Debug, Default)]
pub struct PlanStream {
    buf: String,
    /// Where the root object starts (the first `{`).
    start: Option<usize>,
    /// How much of `buf` has been scanned.
    scanned: usize,
    stack: Vec<Open>,
    string: Option<InString>,
    /// The root closed, or the JSON broke: nothing more will become readable.
    finished: bool,
    days_closed: usize,
    /// Activities of the open day whose objects closed.
    activities_seen: usize,
    day_started: bool,
    /// The open day's theme, once read.
    theme: Option<String>,
    /// The open day's activities, as read when each closed.
    activities: Vec<ModelActivity>,
    /// An activity of the open day did not read: its day is read whole, and fails as serde says.
    activity_failed: bool,
    /// The days read so far.
    days: Vec<ModelDay>,
    /// A day did not read: the plan is read whole, and fails as serde says.
    day_failed: bool,
    /// Bytes looked at so far, by the scanner and by serde: the measure of the reading's cost.
    work: usize,
}

impl PlanStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything received so far.
    pub fn text(&self) -> &str {
        &self.buf
    }

    /// Bytes examined so far (each scanned byte, plus each byte handed to serde). It stays within a small
    /// multiple of the reply's length, however the reply arrives; tests hold it to that.
    pub fn work(&self) -> usize {
        self.work
    }

    /// Adds a piece of the reply and returns what became readable.
    pub fn push(&mut self, text: &str) -> Vec<Piece> {
        let from = self.buf.len();
        self.buf.push_str(text);
        if self.start.is_none() {
            self.start = self.buf[from..].find('{').map(|i| from + i);
            self.work += text.len();
            match self.start {
                Some(start) => self.scanned = start,
                None => return Vec::new(),
            }
        }
        let mut out = Vec::new();
        let buf = std::mem::take(&mut self.buf);
        let end = buf.len();
        let mut at = self.scanned;
        while at < end && !self.finished {
            // Inside a string only a quote or a backslash matters: most of a reply is its strings.
            if self.string.is_some_and(|s| !s.escaped) {
                match memchr::memchr2(b'"', b'\\', &buf.as_bytes()[at..end]) {
                    Some(skip) => at += skip,
                    None => {
                        at = end;
                        break;
                    }
                }
            }
            self.step(&buf, at, &mut out);
            at += 1;
        }
        self.work += at - self.scanned;
        self.scanned = at;
        self.buf = buf;
        out
    }

    /// The complete plan, once the reply has ended.
    pub fn finish(&self) -> Result<ModelPlan, String> {
        if let Ok(head) = self.first_value::<PlanHead>()
            && !self.day_failed
            && head.days.len() == self.days.len()
        {
            return Ok(ModelPlan { title: head.title, days: self.days.clone(), tips: head.tips });
        }
        self.first_value::<ModelPlan>()
    }

    /// The first JSON value of the reply, whatever follows it.
    fn first_value<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        let start = self.start.ok_or("the reply holds no JSON object")?;
        let mut values = serde_json::Deserializer::from_str(&self.buf[start..]).into_iter::<T>();
        match values.next() {
            Some(Ok(value)) => Ok(value),
            Some(Err(e)) => Err(format!("the plan JSON does not parse: {e}")),
            None => Err("the reply holds no JSON object".into()),
        }
    }

    /// Looks at the byte at `at`. Multi-byte UTF-8 characters never contain an ASCII byte, so reading
    /// bytes is reading the JSON's structure.
    fn step(&mut self, buf: &str, at: usize, out: &mut Vec<Piece>) {
        let b = buf.as_bytes()[at];
        if let Some(s) = &mut self.string {
            if s.escaped {
                s.escaped = false;
            } else if b == b'\\' {
                s.escaped = true;
            } else if b == b'"' {
                let s = *s;
                self.string = None;
                self.string_closed(buf, s.start, at, s.key);
            }
            return;
        }
        match b {
            b'"' => {
                let key = self.stack.last().is_some_and(|o| o.object && !o.in_value);
                self.string = Some(InString { start: at, key, escaped: false });
            }
            b'{' | b'[' => {
                if self.stack.len() >= MAX_DEPTH {
                    self.finished = true;
                    return;
                }
                let object = b == b'{';
                let role = match (self.stack.last(), object) {
                    (None, _) => Role::Root,
                    (Some(parent), _) => child_role(parent, object, buf),
                };
                self.stack.push(Open { role, start: at, object, key: None, in_value: false });
            }
            b'}' | b']' => match self.stack.pop() {
                Some(open) if open.object == (b == b'}') => {
                    let json = &buf[open.start..=at];
                    self.closed(open.role, json, out);
                }
                _ => self.finished = true,
            },
            b':' => {
                if let Some(open) = self.stack.last_mut().filter(|o| o.object) {
                    open.in_value = true;
                }
            }
            b',' => {
                if let Some(open) = self.stack.last_mut().filter(|o| o.object) {
                    open.in_value = false;
                    open.key = None;
                }
            }
            _ => {}
        }
    }

    /// The string whose quotes are at `open_quote` and `close_quote` in `buf` has closed.
    fn string_closed(&mut self, buf: &str, open_quote: usize, close_quote: usize, key: bool) {
        let Some(open) = self.stack.last_mut() else { return };
        if key {
            // Keys are compared as written: a model does not escape `days`.
            let inner = (open_quote + 1, close_quote);
            open.key = (inner.1 - inner.0 <= MAX_KEY).then_some(inner);
        } else if open.role == Role::Day && open.in_value && key_is(open, buf, "theme") {
            let quoted = &buf[open_quote..=close_quote];
            self.work += quoted.len();
            self.theme = serde_json::from_str(quoted).ok();
        }
    }

    fn closed(&mut self, role: Role, json: &str, out: &mut Vec<Piece>) {
        match role {
            Role::Root => self.finished = true,
            Role::Activity => {
                self.work += json.len();
                self.activities_seen += 1;
                match serde_json::from_str::<ModelActivity>(json) {
                    Ok(activity) => {
                        let index = self.days_closed;
                        if !self.day_started {
                            self.day_started = true;
                            out.push(Piece::DayStarted { index, theme: self.theme.clone().unwrap_or_default() });
                        }
                        self.activities.push(activity.clone());
                        out.push(Piece::Activity { index, activity });
                    }
                    Err(_) => self.activity_failed = true,
                }
            }
            Role::Day => {
                self.work += json.len();
                let index = self.days_closed;
                let activities = std::mem::take(&mut self.activities);
                let day = match serde_json::from_str::<DayHead>(json) {
                    Ok(head) if !self.activity_failed && head.activities.len() == activities.len() => {
                        Ok(ModelDay { day: head.day, theme: head.theme, activities })
                    }
                    _ => serde_json::from_str::<ModelDay>(json),
                };
                match day {
                    Ok(day) => {
                        if !self.day_started {
                            out.push(Piece::DayStarted { index, theme: day.theme.clone() });
                        }
                        for activity in day.activities.iter().skip(self.activities_seen) {
                            out.push(Piece::Activity { index, activity: activity.clone() });
                        }
                        self.days.push(day.clone());
                        out.push(Piece::DayClosed { index, day });
                    }
                    Err(_) => self.day_failed = true,
                }
                self.days_closed += 1;
                self.activities_seen = 0;
                self.activity_failed = false;
                self.day_started = false;
                self.theme = None;
            }
            Role::Days | Role::Activities | Role::Other => {}
        }
    }
}

/// Whether the value `open` is reading is under `key`.
fn key_is(open: &Open, buf: &str, key: &str) -> bool {
    open.key.is_some_and(|(from, to)| &buf[from..to] == key)
}

/// What a new object (`object`) or array opened inside `parent` (in the reply `buf`) is.
fn child_role(parent: &Open, object: bool, buf: &str) -> Role {
    let key = parent.key.map(|(from, to)| &buf[from..to]);
    match (parent.role, key, object) {
        (Role::Root, Some("days"), false) => Role::Days,
        (Role::Days, _, true) => Role::Day,
        (Role::Day, Some("activities"), false) => Role::Activities,
        (Role::Activities, _, true) => Role::Activity,
        _ => Role::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"Here is your plan:
```json
{"title": "Seoul", "days": [
  {"day": 1, "theme": "Jongno", "activities": [
    {"time": "09:00", "durationMinutes": 120, "name": "Gyeongbokgung", "description": "Palace", "category": "sightseeing", "area": "Jongno", "costPerPerson": 3000, "indoor": false},
    {"time": "12:00", "durationMinutes": 60, "name": "Tosokchon", "description": "", "category": "food", "area": "Jongno", "costPerPerson": 20000, "indoor": true}
  ]},
  {"day": 2, "theme": "Gangnam \"south\"", "activities": [
    {"time": "10:00", "durationMinutes": 90, "name": "COEX", "description": "Mall {big}", "category": "shopping", "area": "Gangnam", "costPerPerson": 0, "indoor": true}
  ]}
], "tips": ["Use T-money"]}
```"#;

    fn kinds(pieces: &[Piece]) -> Vec<String> {
        pieces
            .iter()
            .map(|p| match p {
                Piece::DayStarted { index, theme } => format!("start {index} {theme}"),
                Piece::Activity { index, activity } => format!("activity {index} {}", activity.name),
                Piece::DayClosed { index, .. } => format!("close {index}"),
            })
            .collect()
    }

    #[test]
    fn byte_by_byte_every_piece_arrives_once_in_order_and_only_when_complete() {
        let mut stream = PlanStream::new();
        let mut seen = Vec::new();
        let mut at = Vec::new();
        let mut boundary = 0;
        for (i, ch) in PLAN.char_indices() {
            boundary = i + ch.len_utf8();
            let pieces = stream.push(&PLAN[i..boundary]);
            at.extend(pieces.iter().map(|_| boundary));
            seen.extend(pieces);
        }
        assert_eq!(
            kinds(&seen),
            [
                "start 0 Jongno",
                "activity 0 Gyeongbokgung",
                "activity 0 Tosokchon",
                "close 0",
                "start 1 Gangnam \"south\"",
                "activity 1 COEX",
                "close 1"
            ]
        );
        // The first activity is shown as soon as its object closes, not when its day does.
        let first_close = PLAN.find("\"indoor\": false}").unwrap() + "\"indoor\": false}".len();
        assert_eq!(at[1], first_close);
        // A day closes with its `}`.
        let day_close = PLAN.find("}\n  ]},").unwrap() + "}\n  ]}".len();
        assert_eq!(at[3], day_close);
        assert!(boundary == PLAN.len());
        let plan = stream.finish().unwrap();
        assert_eq!((plan.days.len(), plan.tips.len()), (2, 1));
    }

    #[test]
    fn large_pieces_give_the_same_result_as_small_ones() {
        let mut stream = PlanStream::new();
        let mut seen = stream.push(&PLAN[..PLAN.len() / 2]);
        seen.extend(stream.push(&PLAN[PLAN.len() / 2..]));
        assert_eq!(kinds(&seen).len(), 7);
        let mut whole = PlanStream::new();
        assert_eq!(whole.push(PLAN), seen);
    }

    #[test]
    fn a_truncated_or_broken_reply_is_reported_by_finish() {
        let mut stream = PlanStream::new();
        stream.push(&PLAN[..PLAN.len() / 2]);
        assert!(stream.finish().unwrap_err().contains("does not parse"));
        let mut prose = PlanStream::new();
        assert!(prose.push("I cannot help with that.").is_empty());
        assert_eq!(prose.finish().unwrap_err(), "the reply holds no JSON object");
        let mut broken = PlanStream::new();
        broken.push(r#"{"days": [{"day": 1, "activities": [}]}"#);
        assert!(broken.finish().is_err());
    }

    #[test]
    fn days_and_plans_made_of_what_was_read_are_what_serde_reads_from_the_whole_text() {
        // Shapes the scanner does not follow, or follows only in part: each must give the days and the plan
        // (or the failure) that reading the whole text gives.
        let variants = [
            PLAN.to_owned(),
            // An escaped key: serde reads `activities`, the scanner does not see it.
            PLAN.replacen(r#""activities""#, r#""activit\u0069es""#, 1),
            // An activity serde refuses (no name): its day fails, and so does the plan.
            PLAN.replacen(r#""name": "Tosokchon", "#, "", 1),
            // Something in the activities that is not an activity.
            PLAN.replacen(r#""activities": ["#, r#""activities": ["a walk", "#, 1),
            // A day serde refuses.
            PLAN.replacen(r#""day": 2"#, r#""day": "second""#, 1),
            // Something in the days that is not a day.
            PLAN.replacen(r#""days": ["#, r#""days": [7, "#, 1),
            // The days twice.
            PLAN.replacen(r#""tips""#, r#""days": [], "tips""#, 1),
            // A day's activities twice.
            PLAN.replacen(r#""theme": "Jongno""#, r#""theme": "Jongno", "activities": []"#, 1),
        ];
        for text in variants {
            let mut stream = PlanStream::new();
            let mut closed = Vec::new();
            for chunk in text.as_bytes().chunks(5) {
                let pieces = stream.push(std::str::from_utf8(chunk).unwrap());
                closed.extend(pieces.into_iter().filter_map(|p| match p {
                    Piece::DayClosed { day, .. } => Some(day),
                    _ => None,
                }));
            }
            let start = text.find('{').unwrap();
            let whole = serde_json::Deserializer::from_str(&text[start..]).into_iter::<ModelPlan>().next().unwrap();
            match whole {
                Ok(plan) => {
                    assert_eq!(stream.finish().as_ref(), Ok(&plan), "{text}");
                    // Every day the scanner saw close is the whole text's day.
                    assert!(closed.iter().all(|day| plan.days.contains(day)), "{text}");
                }
                Err(_) => assert!(stream.finish().is_err(), "{text}"),
            }
        }
    }

    /// A plan of `days` days, each of eight activities, as a model writes it.
    fn big_plan(days: usize) -> String {
        let activity = r#"{"time": "09:00", "durationMinutes": 60, "name": "Place {n}", "description": "A \"quoted\" {brace} [bracket]", "category": "sightseeing", "area": "Area", "costPerPerson": 1000, "indoor": true}"#;
        let days: Vec<String> = (0..days)
            .map(|d| {
                let acts: Vec<String> = (0..8).map(|a| activity.replace("{n}", &format!("{d}-{a}"))).collect();
                format!(r#"{{"day": {}, "theme": "Theme {d}", "activities": [{}]}}"#, d + 1, acts.join(", "))
            })
            .collect();
        format!(r#"{{"title": "Long", "days": [{}], "tips": []}}"#, days.join(", "))
    }

    /// Feeds `text` in pieces of `size` bytes (at character boundaries) and returns the work and pieces.
    fn feed(text: &str, size: usize) -> (usize, usize) {
        let mut stream = PlanStream::new();
        let mut pieces = 0;
        let mut from = 0;
        while from < text.len() {
            let mut to = (from + size).min(text.len());
            while !text.is_char_boundary(to) {
                to += 1;
            }
            pieces += stream.push(&text[from..to]).len();
            from = to;
        }
        assert!(stream.finish().is_ok());
        (stream.work(), pieces)
    }

    #[test]
    fn reading_is_linear_in_the_reply_length_however_it_is_cut() {
        // Counted, not timed: the bytes the reader looks at stay within a fixed multiple of the reply, for
        // a reply of 2 days or 64, in pieces of 1 byte (a `}` in nearly every piece, the worst case for
        // a reader that re-parses at each closing brace) or of 4 KiB.
        for days in [2, 16, 64] {
            let text = big_plan(days);
            for size in [1, 7, 4096] {
                let (work, pieces) = feed(&text, size);
                assert_eq!(pieces, days * (1 + 8 + 1), "{days} days in pieces of {size}");
                assert!(work <= 4 * text.len(), "{days} days in pieces of {size}: {work} for {} bytes", text.len());
            }
        }
        // Twice the reply, at most about twice the work (quadratic reading would be four times).
        let (small, _) = feed(&big_plan(32), 1);
        let (large, _) = feed(&big_plan(64), 1);
        assert!((large as f64) / (small as f64) < 2.2, "{small} → {large}");
    }

    #[test]
    fn hostile_shapes_cost_no_more_than_their_length() {
        // A huge title before the days, deep nesting, a long key, a stray bracket.
        let title = format!(r#"{{"title": "{}", "days": [], "tips": []}}"#, "x".repeat(200_000));
        let deep = format!("{{\"days\": {}", "[".repeat(100_000));
        let long_key = format!(r#"{{"{}": 1, "days": []}}"#, "k".repeat(100_000));
        for text in [title, deep, long_key, r#"{"days": [}]"#.to_owned()] {
            let mut stream = PlanStream::new();
            for chunk in text.as_bytes().chunks(3) {
                assert!(stream.push(std::str::from_utf8(chunk).unwrap()).is_empty());
            }
            assert!(stream.work() <= 3 * text.len());
        }
    }
}

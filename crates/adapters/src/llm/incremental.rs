//! Reads a JSON plan while it is still being written, so people see each activity the moment its object
//! closes and each day the moment the day's object closes — never raw JSON.
//!
//! Each push re-walks what has arrived with jiter's token reader (a well-kept parser; we write none),
//! skipping the days already closed. An object counts as complete only when jiter can skip it whole, so a
//! number cut mid-digit or a string cut mid-word is never shown. Whatever precedes the first `{` (a
//! sentence, a markdown fence) is ignored, and so is whatever follows the object.

use jiter::{Jiter, JiterResult};

use super::schema::{ModelActivity, ModelDay, ModelPlan};

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

#[derive(Debug, Default)]
pub struct PlanStream {
    buf: String,
    start: Option<usize>,
    days_closed: usize,
    /// Activities of the open day already reported.
    activities_sent: usize,
    day_started: bool,
}

impl PlanStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything received so far.
    pub fn text(&self) -> &str {
        &self.buf
    }

    /// Adds a piece of the reply and returns what became readable.
    pub fn push(&mut self, text: &str) -> Vec<Piece> {
        let from = self.buf.len();
        self.buf.push_str(text);
        if self.start.is_none() {
            self.start = self.buf[from..].find('{').map(|i| from + i);
        }
        // Only a closing brace can complete an object, so a piece without one cannot make anything
        // readable: most pieces (a model streams a few characters at a time) skip the walk.
        let Some(start) = self.start.filter(|_| text.contains('}')) else { return Vec::new() };
        let buf = std::mem::take(&mut self.buf);
        let mut out = Vec::new();
        // An error means the walk reached the end of what has arrived (or JSON so broken that `finish`
        // will report it); either way there is nothing more to read yet.
        let _ = self.walk(&buf.as_bytes()[start..], &mut out);
        self.buf = buf;
        out
    }

    /// The complete plan, once the reply has ended.
    pub fn finish(&self) -> Result<ModelPlan, String> {
        let start = self.start.ok_or("the reply holds no JSON object")?;
        let mut values = serde_json::Deserializer::from_str(&self.buf[start..]).into_iter::<ModelPlan>();
        match values.next() {
            Some(Ok(plan)) => Ok(plan),
            Some(Err(e)) => Err(format!("the plan JSON does not parse: {e}")),
            None => Err("the reply holds no JSON object".into()),
        }
    }

    fn walk(&mut self, json: &[u8], out: &mut Vec<Piece>) -> JiterResult<()> {
        let mut j = Jiter::new(json);
        let mut key = j.next_object()?.map(str::to_owned);
        while let Some(k) = key {
            if k == "days" {
                let mut peek = j.next_array()?;
                let mut index = 0;
                while let Some(p) = peek {
                    let begin = j.current_index();
                    if index < self.days_closed {
                        j.known_skip(p)?;
                    } else if let Err(e) = j.known_skip(p) {
                        self.read_open_day(&json[begin..], index, out);
                        return Err(e);
                    } else {
                        self.close_day(&json[begin..j.current_index()], index, out);
                    }
                    index += 1;
                    peek = j.array_step()?;
                }
            } else {
                j.next_skip()?;
            }
            key = j.next_key()?.map(str::to_owned);
        }
        Ok(())
    }

    fn close_day(&mut self, json: &[u8], index: usize, out: &mut Vec<Piece>) {
        if let Ok(day) = serde_json::from_slice::<ModelDay>(json) {
            if !self.day_started {
                out.push(Piece::DayStarted { index, theme: day.theme.clone() });
            }
            for activity in day.activities.iter().skip(self.activities_sent) {
                out.push(Piece::Activity { index, activity: activity.clone() });
            }
            out.push(Piece::DayClosed { index, day });
        }
        self.days_closed += 1;
        self.activities_sent = 0;
        self.day_started = false;
    }

    /// Reports the complete activities of the day still being written.
    fn read_open_day(&mut self, json: &[u8], index: usize, out: &mut Vec<Piece>) {
        let mut j = Jiter::new(json);
        let mut theme = String::new();
        let mut read = || -> JiterResult<()> {
            let mut key = j.next_object()?.map(str::to_owned);
            while let Some(k) = key {
                match k.as_str() {
                    "theme" => theme = j.next_str()?.to_owned(),
                    "activities" => {
                        let mut peek = j.next_array()?;
                        let mut n = 0;
                        while let Some(p) = peek {
                            let begin = j.current_index();
                            j.known_skip(p)?;
                            if n >= self.activities_sent {
                                self.activities_sent = n + 1;
                                let parsed = serde_json::from_slice::<ModelActivity>(&json[begin..j.current_index()]);
                                if let Ok(activity) = parsed {
                                    if !self.day_started {
                                        self.day_started = true;
                                        out.push(Piece::DayStarted { index, theme: theme.clone() });
                                    }
                                    out.push(Piece::Activity { index, activity });
                                }
                            }
                            n += 1;
                            peek = j.array_step()?;
                        }
                    }
                    _ => j.next_skip()?,
                }
                key = j.next_key()?.map(str::to_owned);
            }
            Ok(())
        };
        let _ = read();
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
}

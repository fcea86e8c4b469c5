//! Calendar files of plans: the domain's RFC 5545 writer given the destination's zone from the time zone
//! database compiled into the binary. Used by `tripstream plan --ics` and the `calendar.ics` endpoints.

use jiff::tz::TimeZone;
use tripstream_domain::Plan;
use tripstream_domain::calendar::{self, CalendarOptions};

/// A plan's calendar, ready to save or serve.
#[derive(Debug, Clone)]
pub struct Calendar {
    /// The `text/calendar` body.
    pub body: String,
    /// The IANA zone the times are written in, or `None` when they are floating local times because the
    /// destination's zone is not known.
    pub time_zone: Option<String>,
    /// How many events (one per activity) it holds.
    pub events: usize,
}

/// The calendar of `plan`, its events' UIDs made of `uid_base` (a saved plan's id, else the plan's own),
/// `sequence` the plan's version less one.
pub fn plan_calendar(plan: &Plan, uid_base: &str, sequence: u32) -> Calendar {
    let tz = calendar::destination_zone(&plan.destination.timezone, |name| TimeZone::get(name).ok());
    let options = CalendarOptions { uid_base, time_zone: tz.as_ref(), stamp: plan.metadata.generated_at, sequence };
    Calendar {
        body: calendar::write(plan, &options),
        time_zone: tz.as_ref().and_then(|tz| tz.iana_name()).map(str::to_owned),
        events: plan.days.iter().map(|d| d.activities.len()).sum(),
    }
}

/// A file name for the calendar: the destination and the first day, in ASCII (`paris-2025-10-24.ics`),
/// safe in a `Content-Disposition` header and on any file system.
pub fn file_name(plan: &Plan) -> String {
    let mut stem = String::new();
    for c in plan.location.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            stem.push(c);
        } else if !stem.is_empty() && !stem.ends_with('-') {
            stem.push('-');
        }
    }
    let stem = stem.trim_end_matches('-');
    let stem = if stem.is_empty() { "trip" } else { stem };
    format!("{stem}-{}.ics", plan.start_date)
}

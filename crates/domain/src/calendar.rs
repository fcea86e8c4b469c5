//! A plan as an RFC 5545 calendar: one `VEVENT` per activity, for `--ics` on the CLI and the
//! `calendar.ics` endpoints.
//!
//! Times are the destination's local times, written with `TZID` and a `VTIMEZONE` whose observances are
//! the zone's real transitions (from the time zone database the caller passes in) over the trip's years,
//! so a calendar shows 09:00 in Paris as 09:00 on both sides of a daylight-saving change. When the zone is
//! not known the times are floating: the same wall-clock time wherever the calendar is opened, which is
//! what an itinerary means when nobody knows the offset.
//!
//! UIDs are `{base}-d{day}-a{index}@tripstream`: importing the same plan again (or a newer version of a
//! saved plan) updates its events instead of adding copies.

use std::fmt::Write as _;

use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};

use crate::money::format_amount;
use crate::plan::{Activity, Category, Day, Plan};
use crate::request::Language;

/// What a calendar is written with besides the plan.
#[derive(Debug, Clone)]
pub struct CalendarOptions<'a> {
    /// What the events' UIDs are made of: the saved plan's id when there is one, else the plan's `id`.
    pub uid_base: &'a str,
    /// The destination's time zone; `None` writes floating local times.
    pub time_zone: Option<&'a TimeZone>,
    /// `DTSTAMP`: when this version of the plan was made.
    pub stamp: Timestamp,
    /// `SEQUENCE`: 0 for a plan's first version, one more for each later version of a saved plan.
    pub sequence: u32,
}

/// The zone a plan's times are written in: its destination's IANA zone, unless that is unknown to `lookup`
/// or is plain UTC, which a geocoded destination only gets when its country's zone is not known (no city
/// a trip goes to keeps UTC as its civil time), so floating times are the honest choice there.
pub fn destination_zone(timezone: &str, lookup: impl FnOnce(&str) -> Option<TimeZone>) -> Option<TimeZone> {
    let name = timezone.trim();
    if name.is_empty() || matches!(name, "UTC" | "Etc/UTC" | "Etc/GMT" | "GMT" | "Z") {
        return None;
    }
    lookup(name)
}

/// Writes the calendar: CRLF line ends, lines folded at 75 octets.
pub fn write(plan: &Plan, options: &CalendarOptions<'_>) -> String {
    let tz = options.time_zone.and_then(|tz| tz.iana_name().map(|name| (tz, name)));
    let mut out = Lines::default();
    out.line("BEGIN:VCALENDAR");
    out.line("VERSION:2.0");
    out.line(&format!("PRODID:-//tripstream//tripstream {}//EN", env!("CARGO_PKG_VERSION")));
    out.line("CALSCALE:GREGORIAN");
    out.line("METHOD:PUBLISH");
    out.property("X-WR-CALNAME", &escape_text(&plan.title));
    if let Some((tz, name)) = tz {
        out.property("X-WR-TIMEZONE", name);
        write_vtimezone(&mut out, plan, tz, name);
    }
    let stamp = utc(options.stamp);
    for day in &plan.days {
        for (index, activity) in day.activities.iter().enumerate() {
            out.line("BEGIN:VEVENT");
            out.property("UID", &format!("{}-d{}-a{}@tripstream", options.uid_base, day.day, index + 1));
            out.property("DTSTAMP", &stamp);
            if options.sequence > 0 {
                out.property("SEQUENCE", &options.sequence.to_string());
            }
            write_times(&mut out, day, activity, tz);
            out.property("SUMMARY", &escape_text(&activity.name));
            out.property("LOCATION", &escape_text(&location(plan, activity)));
            if let Some(geo) = activity.location {
                out.property("GEO", &format!("{:.6};{:.6}", geo.lat, geo.lon));
            }
            out.property("DESCRIPTION", &escape_text(&description(plan, activity)));
            out.property("CATEGORIES", category(activity.category));
            out.line("TRANSP:OPAQUE");
            out.line("END:VEVENT");
        }
    }
    out.line("END:VCALENDAR");
    out.0
}

/// An activity's start as a civil date and time: `24:00` is the next day's midnight.
fn local_start(day: &Day, activity: &Activity) -> Option<DateTime> {
    day.date.to_datetime(jiff::civil::Time::midnight()).checked_add(activity_minutes(activity.time.minutes())).ok()
}

fn activity_minutes(minutes: u16) -> SignedDuration {
    SignedDuration::from_mins(i64::from(minutes))
}

/// `DTSTART` and `DTEND`: in the zone, the end is the start plus the duration in elapsed time (an evening
/// that runs over a change of offset ends when it really ends); floating, on the wall clock. An activity of
/// no duration has no `DTEND`, which RFC 5545 reads as ending when it starts.
fn write_times(out: &mut Lines, day: &Day, activity: &Activity, tz: Option<(&TimeZone, &str)>) {
    let Some(start) = local_start(day, activity) else { return };
    let duration = activity_minutes(activity.duration_minutes);
    match tz {
        Some((tz, name)) => {
            let Ok(at) = tz.to_ambiguous_timestamp(start).compatible() else { return };
            out.line(&format!("DTSTART;TZID={name}:{}", local(tz.to_datetime(at))));
            if let (false, Ok(end)) = (duration.is_zero(), at.checked_add(duration)) {
                out.line(&format!("DTEND;TZID={name}:{}", local(tz.to_datetime(end))));
            }
        }
        None => {
            out.property("DTSTART", &local(start));
            if let (false, Ok(end)) = (duration.is_zero(), start.checked_add(duration)) {
                out.property("DTEND", &local(end));
            }
        }
    }
}

/// The `VTIMEZONE`: the observance in force a year before the trip and every transition until a year
/// after it, each with its onset, offsets and abbreviation. Explicit onsets rather than `RRULE`s are exact
/// for whatever rules the zone had in those years, and cover an event moved by hand within them.
fn write_vtimezone(out: &mut Lines, plan: &Plan, tz: &TimeZone, name: &str) {
    let year_start = |year: i16| {
        Offset::UTC.to_timestamp(jiff::civil::date(year, 1, 1).to_datetime(jiff::civil::Time::midnight())).ok()
    };
    let from = year_start(plan.start_date.year().saturating_sub(1)).unwrap_or(Timestamp::UNIX_EPOCH);
    let until = year_start(plan.end_date.year().saturating_add(2)).unwrap_or(Timestamp::MAX);
    out.line("BEGIN:VTIMEZONE");
    out.property("TZID", name);
    // The observance in force at `from`, including one that starts exactly then.
    match tz.preceding(from.checked_add(SignedDuration::from_secs(1)).unwrap_or(from)).next() {
        Some(first) => {
            observance(out, tz, first.timestamp(), first.offset(), first.abbreviation(), first.dst().is_dst())
        }
        // A zone that never changed: one observance from the epoch on.
        None => {
            let info = tz.to_offset_info(from);
            let at = Timestamp::UNIX_EPOCH;
            let offset = info.offset();
            out.line(if info.dst().is_dst() { "BEGIN:DAYLIGHT" } else { "BEGIN:STANDARD" });
            out.property("DTSTART", &local(offset.to_datetime(at)));
            out.property("TZOFFSETFROM", &utc_offset(offset));
            out.property("TZOFFSETTO", &utc_offset(offset));
            out.property("TZNAME", &escape_text(info.abbreviation()));
            out.line(if info.dst().is_dst() { "END:DAYLIGHT" } else { "END:STANDARD" });
        }
    }
    for t in tz.following(from).take_while(|t| t.timestamp() < until) {
        observance(out, tz, t.timestamp(), t.offset(), t.abbreviation(), t.dst().is_dst());
    }
    out.line("END:VTIMEZONE");
}

/// One `STANDARD` or `DAYLIGHT` observance starting at the transition `at`: its onset is written in the
/// local time of the offset it replaces, as RFC 5545 section 3.6.5 says.
fn observance(out: &mut Lines, tz: &TimeZone, at: Timestamp, to: Offset, abbreviation: &str, dst: bool) {
    let before = at.checked_sub(SignedDuration::from_secs(1)).map(|t| tz.to_offset(t)).unwrap_or(to);
    let kind = if dst { "DAYLIGHT" } else { "STANDARD" };
    out.line(&format!("BEGIN:{kind}"));
    out.property("DTSTART", &local(before.to_datetime(at)));
    out.property("TZOFFSETFROM", &utc_offset(before));
    out.property("TZOFFSETTO", &utc_offset(to));
    if !abbreviation.is_empty() {
        out.property("TZNAME", &escape_text(abbreviation));
    }
    out.line(&format!("END:{kind}"));
}

/// `LOCATION`: the place, its area and the city, which is what a map search in a calendar app needs.
fn location(plan: &Plan, activity: &Activity) -> String {
    let mut parts: Vec<&str> = Vec::with_capacity(3);
    for part in [activity.name.as_str(), activity.area.as_str(), plan.destination.name.as_str()] {
        let part = part.trim();
        if !part.is_empty() && !parts.iter().any(|p| p.eq_ignore_ascii_case(part)) {
            parts.push(part);
        }
    }
    parts.join(", ")
}

/// `DESCRIPTION`: the activity's description, then what it costs for the whole party.
fn description(plan: &Plan, activity: &Activity) -> String {
    let amount = format_amount(&plan.currency, activity.cost);
    let cost = match (plan.language, plan.travelers) {
        (Language::Ko, n) if n > 1 => format!("비용: {amount} ({n}명 합계)"),
        (Language::Ko, _) => format!("비용: {amount}"),
        (Language::En, n) if n > 1 => format!("Cost: {amount} for {n} travellers"),
        (Language::En, _) => format!("Cost: {amount}"),
    };
    match activity.description.trim() {
        "" => cost,
        text => format!("{text}\n\n{cost}"),
    }
}

fn category(category: Category) -> &'static str {
    match category {
        Category::Sightseeing => "SIGHTSEEING",
        Category::Food => "FOOD",
        Category::Cafe => "CAFE",
        Category::Shopping => "SHOPPING",
        Category::Culture => "CULTURE",
        Category::Nature => "NATURE",
        Category::Activity => "ACTIVITY",
        Category::Nightlife => "NIGHTLIFE",
        Category::Transport => "TRANSPORT",
        Category::Rest => "REST",
    }
}

/// A `DATE-TIME` without zone: `20251025T090000`.
fn local(dt: DateTime) -> String {
    format!("{:04}{:02}{:02}T{:02}{:02}{:02}", dt.year(), dt.month(), dt.day(), dt.hour(), dt.minute(), dt.second())
}

fn utc(at: Timestamp) -> String {
    format!("{}Z", local(Offset::UTC.to_datetime(at)))
}

/// A `UTC-OFFSET`: `+0200`, `-0500`, seconds only when there are some.
fn utc_offset(offset: Offset) -> String {
    let seconds = offset.seconds();
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
    if sec == 0 { format!("{sign}{h:02}{m:02}") } else { format!("{sign}{h:02}{m:02}{sec:02}") }
}

/// Escapes a `TEXT` value (RFC 5545 section 3.3.11): backslash, semicolon, comma and newlines; other
/// control characters, which `TEXT` may not hold, are dropped.
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds one content line (RFC 5545 section 3.1): no line longer than 75 octets before its CRLF, a
/// continuation starting with one space, and never a break inside a UTF-8 character.
pub fn fold(line: &str) -> String {
    const LIMIT: usize = 75;
    let mut out = String::with_capacity(line.len() + line.len() / 70 * 3 + 2);
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > LIMIT {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
    out
}

/// The calendar being written, one folded line at a time.
#[derive(Default)]
struct Lines(String);

impl Lines {
    fn line(&mut self, line: &str) {
        self.0.push_str(&fold(line));
    }

    /// `NAME:value`, the value already escaped where its type needs it.
    fn property(&mut self, name: &str, value: &str) {
        let mut line = String::with_capacity(name.len() + 1 + value.len());
        let _ = write!(line, "{name}:{value}");
        self.line(&line);
    }
}

#[cfg(test)]
mod tests;

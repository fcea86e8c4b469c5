use jiff::civil::date;
use jiff::tz::TimeZone;

use super::*;
use crate::plan::{Category, GeoPoint};
use crate::rules::tests::{activity, day, good_day, plan};

fn zone(name: &str) -> TimeZone {
    destination_zone(name, |n| TimeZone::get(n).ok()).expect("the bundled time zone database knows it")
}

fn options<'a>(tz: Option<&'a TimeZone>) -> CalendarOptions<'a> {
    CalendarOptions { uid_base: "pln_test", time_zone: tz, stamp: "2025-10-01T08:30:00Z".parse().unwrap(), sequence: 0 }
}

/// Undoes folding: what a parser sees as the content lines.
fn unfolded(ics: &str) -> Vec<String> {
    ics.replace("\r\n ", "").split("\r\n").filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

/// The calendar's lines from `BEGIN:{component}` to its `END`, for each such component.
fn components(ics: &str, component: &str) -> Vec<Vec<String>> {
    let (begin, end) = (format!("BEGIN:{component}"), format!("END:{component}"));
    let mut found = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in unfolded(ics) {
        if line == begin {
            current = Some(Vec::new());
        } else if line == end {
            found.extend(current.take());
        } else if let Some(c) = current.as_mut() {
            c.push(line);
        }
    }
    found
}

fn paris_across_the_clock_change() -> Plan {
    let mut p = plan(vec![day(1, 10, vec![]), day(2, 10, vec![])]);
    p.destination.name = "Paris".into();
    p.destination.timezone = "Europe/Paris".into();
    p.currency = "EUR".into();
    p.language = Language::En;
    p.travelers = 2;
    p.start_date = date(2025, 10, 25);
    p.end_date = date(2025, 10, 26);
    p.days[0].date = date(2025, 10, 25);
    p.days[1].date = date(2025, 10, 26);
    let mut louvre = activity("09:00", 120, "Louvre", Category::Culture, 44, true);
    louvre.area = "1st arrondissement".into();
    louvre.description = "Paintings; sculpture, and \\ antiquities\nBook ahead".into();
    louvre.location = Some(GeoPoint { lat: 48.8606, lon: 2.3376 });
    let late = activity("23:00", 240, "Jazz club", Category::Nightlife, 60, true);
    p.days[0].activities = vec![louvre, late];
    p.days[1].activities = vec![activity("10:00", 90, "Orsay", Category::Culture, 32, true)];
    p.recompute_costs();
    p
}

#[test]
fn lines_fold_at_75_octets_without_splitting_characters() {
    let ascii = format!("DESCRIPTION:{}", "x".repeat(200));
    let korean = format!("SUMMARY:{}", "경복궁과 북촌 한옥마을 산책".repeat(8));
    for line in [ascii, korean] {
        let folded = fold(&line);
        assert!(folded.ends_with("\r\n"));
        let physical: Vec<&str> = folded.trim_end_matches("\r\n").split("\r\n").collect();
        assert!(physical.len() > 2, "{folded}");
        for (i, l) in physical.iter().enumerate() {
            assert!(l.len() <= 75, "line {i} has {} octets: {l:?}", l.len());
            assert_eq!(i > 0, l.starts_with(' '), "{l:?}");
        }
        assert_eq!(folded.replace("\r\n ", "").trim_end_matches("\r\n"), line);
    }
}

#[test]
fn a_line_of_exactly_75_octets_is_not_folded() {
    let line = "x".repeat(75);
    assert_eq!(fold(&line), format!("{line}\r\n"));
    let longer = "x".repeat(76);
    assert_eq!(fold(&longer), format!("{}\r\n x\r\n", "x".repeat(75)));
    // A three-octet character that would end at octet 76 moves to the next line whole.
    let line = format!("{}한", "x".repeat(73));
    assert_eq!(fold(&line), format!("{}\r\n 한\r\n", "x".repeat(73)));
}

#[test]
fn text_escapes_commas_semicolons_backslashes_and_newlines() {
    assert_eq!(escape_text(r"a,b;c\d"), r"a\,b\;c\\d");
    assert_eq!(escape_text("one\ntwo\r\nthree\rfour"), r"one\ntwo\nthree\nfour");
    assert_eq!(escape_text("tab\there\u{7}bell"), "tab\therebell");
    assert_eq!(escape_text("카페: 커피"), "카페: 커피");
}

#[test]
fn events_are_in_local_time_with_a_vtimezone_across_a_clock_change() {
    let p = paris_across_the_clock_change();
    let tz = zone("Europe/Paris");
    let ics = write(&p, &options(Some(&tz)));
    assert!(ics.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:"), "{ics}");
    assert!(ics.ends_with("END:VCALENDAR\r\n"));
    assert!(!ics.replace("\r\n", "").contains('\n'), "only CRLF line ends");

    let zones = components(&ics, "VTIMEZONE");
    assert_eq!(zones.len(), 1);
    let text = zones[0].join("\n");
    assert!(text.starts_with("TZID:Europe/Paris\n"), "{text}");
    // The 2025 changes, onsets in the local time they replace.
    assert!(
        text.contains("BEGIN:DAYLIGHT\nDTSTART:20250330T020000\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0200\nTZNAME:CEST"),
        "{text}"
    );
    assert!(
        text.contains("BEGIN:STANDARD\nDTSTART:20251026T030000\nTZOFFSETFROM:+0200\nTZOFFSETTO:+0100\nTZNAME:CET"),
        "{text}"
    );

    let events = components(&ics, "VEVENT");
    assert_eq!(events.len(), 3);
    let louvre = &events[0];
    for want in [
        "UID:pln_test-d1-a1@tripstream",
        "DTSTAMP:20251001T083000Z",
        "DTSTART;TZID=Europe/Paris:20251025T090000",
        "DTEND;TZID=Europe/Paris:20251025T110000",
        "SUMMARY:Louvre",
        "LOCATION:Louvre\\, 1st arrondissement\\, Paris",
        "GEO:48.860600;2.337600",
        "DESCRIPTION:Paintings\\; sculpture\\, and \\\\ antiquities\\nBook ahead\\n\\nCost: €44 for 2 travellers",
        "CATEGORIES:CULTURE",
    ] {
        assert!(louvre.iter().any(|l| l == want), "{want} not in {louvre:#?}");
    }
    // Four hours from 23:00 CEST is 02:00 CET: the clock went back an hour on the way.
    assert!(events[1].contains(&"DTSTART;TZID=Europe/Paris:20251025T230000".to_owned()), "{:#?}", events[1]);
    assert!(events[1].contains(&"DTEND;TZID=Europe/Paris:20251026T020000".to_owned()), "{:#?}", events[1]);
    assert!(!events[1].iter().any(|l| l.starts_with("GEO:")), "no coordinates, no GEO");
    assert!(events[2].contains(&"UID:pln_test-d2-a1@tripstream".to_owned()));
    assert!(events[2].contains(&"DTSTART;TZID=Europe/Paris:20251026T100000".to_owned()));
}

#[test]
fn the_same_plan_writes_the_same_uids_and_a_later_version_a_higher_sequence() {
    let p = paris_across_the_clock_change();
    let tz = zone("Europe/Paris");
    let first = write(&p, &options(Some(&tz)));
    assert_eq!(first, write(&p, &options(Some(&tz))));
    let uids = |ics: &str| -> Vec<String> { unfolded(ics).into_iter().filter(|l| l.starts_with("UID:")).collect() };
    let later = write(&p, &CalendarOptions { sequence: 2, ..options(Some(&tz)) });
    assert_eq!(uids(&first), uids(&later));
    assert!(later.contains("\r\nSEQUENCE:2\r\n") && !first.contains("SEQUENCE"));
}

#[test]
fn a_zone_without_daylight_saving_has_its_one_standard_observance() {
    let p = plan(vec![good_day(1), good_day(2)]);
    let tz = zone("Asia/Seoul");
    let ics = write(&p, &options(Some(&tz)));
    let zones = components(&ics, "VTIMEZONE");
    let text = zones[0].join("\n");
    assert_eq!(text.matches("BEGIN:STANDARD").count(), 1, "{text}");
    assert!(!text.contains("DAYLIGHT"), "{text}");
    assert!(text.contains("TZOFFSETTO:+0900"), "{text}");
    assert_eq!(components(&ics, "VEVENT").len(), 8);
    assert!(ics.contains("DTSTART;TZID=Asia/Seoul:20251110T090000\r\n"), "{ics}");
    assert!(ics.contains("DESCRIPTION:비용: ₩3\\,000\r\n"), "{ics}");
}

#[test]
fn an_unknown_zone_gives_floating_local_times() {
    assert!(destination_zone("UTC", |n| TimeZone::get(n).ok()).is_none());
    assert!(destination_zone("", |n| TimeZone::get(n).ok()).is_none());
    assert!(destination_zone("Mars/Olympus_Mons", |n| TimeZone::get(n).ok()).is_none());
    let p = plan(vec![good_day(1)]);
    let ics = write(&p, &options(None));
    assert!(!ics.contains("VTIMEZONE") && !ics.contains("TZID"), "{ics}");
    assert!(ics.contains("\r\nDTSTART:20251110T090000\r\nDTEND:20251110T110000\r\n"), "{ics}");
}

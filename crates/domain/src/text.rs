//! A plan as people read it while it streams: the text of `chunk` events. Every generator, and the
//! cached replay, renders days through here so a client sees one style whatever produced the plan.

use crate::money::format_amount;
use crate::plan::{Activity, Category, Day};
use crate::request::Language;

/// The part of the day an activity belongs to, as a label. Before noon is morning: in Korean the label
/// reads as the time's AM/PM (`11:30 오후` is half past eleven at night).
pub fn slot_label(activity: &Activity, lang: Language) -> &'static str {
    let m = activity.time.minutes();
    let (ko, en) = if activity.category == Category::Food {
        match m {
            0..660 => ("아침", "Breakfast"),
            660..900 => ("점심", "Lunch"),
            900..1020 => ("간식", "Snack"),
            _ => ("저녁", "Dinner"),
        }
    } else {
        match m {
            0..720 => ("오전", "Morning"),
            720..1050 => ("오후", "Afternoon"),
            1050..1200 => ("저녁", "Evening"),
            _ => ("밤", "Night"),
        }
    };
    match lang {
        Language::Ko => ko,
        Language::En => en,
    }
}

/// The heading line of a day: `1일차 — 종로 & 북촌 (11/10, 맑음 5–14°C, 강수 10%)`.
pub fn day_heading(day: &Day, lang: Language) -> String {
    let w = &day.weather;
    let (min, max) = (w.temp_min_c.round(), w.temp_max_c.round());
    match lang {
        Language::Ko => format!(
            "{}일차 — {} ({}/{}, {} {min}–{max}°C, 강수 {}%)",
            day.day,
            day.theme,
            day.date.month(),
            day.date.day(),
            w.summary,
            w.precipitation_chance
        ),
        Language::En => format!(
            "Day {} — {} ({} {}, {} {min}–{max}°C, {}% rain)",
            day.day,
            day.theme,
            day.date.strftime("%b"),
            day.date.day(),
            w.summary,
            w.precipitation_chance
        ),
    }
}

/// One activity line: `09:00 오전: 경복궁 (₩3,000) - 조선의 법궁…`.
pub fn activity_line(activity: &Activity, currency: &str, lang: Language) -> String {
    let cost = match (activity.cost, lang) {
        (0, Language::Ko) => "무료".to_owned(),
        (0, Language::En) => "free".to_owned(),
        (c, _) => format_amount(currency, c),
    };
    let mut line = format!("{} {}: {} ({cost})", activity.time, slot_label(activity, lang), activity.name);
    if !activity.description.is_empty() {
        line.push_str(" - ");
        line.push_str(&activity.description);
    }
    line
}

/// The day as lines of text, heading first, then a line per activity and the day's cost.
pub fn day_lines(day: &Day, currency: &str, lang: Language) -> Vec<String> {
    let mut lines = Vec::with_capacity(day.activities.len() + 2);
    lines.push(day_heading(day, lang));
    lines.extend(day.activities.iter().map(|a| activity_line(a, currency, lang)));
    lines.push(day_total_line(day, currency, lang));
    lines
}

/// The closing line of a day: `하루 비용: ₩33,000`.
pub fn day_total_line(day: &Day, currency: &str, lang: Language) -> String {
    let total = format_amount(currency, day.daily_cost);
    match lang {
        Language::Ko => format!("하루 비용: {total}"),
        Language::En => format!("Day total: {total}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ClockTime;
    use crate::rules::tests::good_day;

    #[test]
    fn a_day_reads_like_an_itinerary() {
        let mut day = good_day(1);
        day.activities[0].name = "경복궁".into();
        day.activities[0].description = "조선의 법궁".into();
        let lines = day_lines(&day, "KRW", Language::Ko);
        assert_eq!(lines[0], "1일차 — t (11/10, s 5–14°C, 강수 10%)");
        assert_eq!(lines[1], "09:00 오전: 경복궁 (₩3,000) - 조선의 법궁");
        assert_eq!(lines[3], "14:00 오후: Museum 1 (무료)");
        assert_eq!(lines.last().unwrap(), "하루 비용: ₩33,000");
        let en = day_lines(&day, "KRW", Language::En);
        assert_eq!(en[0], "Day 1 — t (Nov 10, s 5–14°C, 10% rain)");
        assert_eq!(en[2], "12:00 Lunch: Lunch (₩10,000)");
    }

    #[test]
    fn a_sight_before_noon_is_morning_and_from_noon_afternoon() {
        let mut day = good_day(1);
        let label = |day: &mut Day, time: &str, lang| {
            day.activities[0].time = ClockTime::parse(time).unwrap();
            slot_label(&day.activities[0], lang)
        };
        assert_eq!(label(&mut day, "11:30", Language::Ko), "오전");
        assert_eq!(label(&mut day, "11:59", Language::En), "Morning");
        assert_eq!(label(&mut day, "12:00", Language::Ko), "오후");
        assert_eq!(label(&mut day, "17:29", Language::En), "Afternoon");
        assert_eq!(label(&mut day, "17:30", Language::Ko), "저녁");
    }
}

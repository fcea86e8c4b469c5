//! What checking a model's places found: a place replaced because it could not be found, places that
//! could not be found and stay as the model wrote them, and places nobody could check. The notes become
//! `warnings`, grouped, so that a plan says once which places were not checked, not once per place.

use crate::plan::Day;
use crate::request::Language;
use crate::rules::normalize_name;

/// One thing place verification says about a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaceNote {
    /// `name` could not be found near the destination; the bundled place `by` took its slot on `day`.
    Replaced { day: u32, name: String, by: String },
    /// `name` could not be found near the destination, and nothing bundled could take its place.
    Unverified { name: String },
    /// `name` was not checked: no place search is configured, or it did not answer in time.
    NotChecked { name: String },
    /// The bundled place `name` is closed when `day` has it (its closing day, a holiday, outside its
    /// hours); the bundled place `by`, of the same kind and open then, took its slot.
    Closed { day: u32, name: String, by: String },
}

impl PlaceNote {
    /// The name the note is about, as it stands in the plan.
    fn subject(&self) -> &str {
        match self {
            PlaceNote::Replaced { by, .. } | PlaceNote::Closed { by, .. } => by,
            PlaceNote::Unverified { name } | PlaceNote::NotChecked { name } => name,
        }
    }
}

/// The `warnings` for `notes` about the places of `days`: one per replacement, one listing every
/// unverified place, one listing every place not checked. A note whose place is no longer in the plan
/// (refinement or repair dropped it) says nothing, and a place is named once.
pub fn place_warnings(lang: Language, notes: &[PlaceNote], days: &[Day]) -> Vec<String> {
    let present: std::collections::HashSet<String> =
        days.iter().flat_map(|d| &d.activities).map(|a| normalize_name(&a.name)).collect();
    let mut seen = std::collections::HashSet::new();
    let kept: Vec<&PlaceNote> = notes
        .iter()
        .filter(|n| present.contains(&normalize_name(n.subject())))
        .filter(|n| seen.insert(normalize_name(n.subject())))
        .collect();
    let mut out: Vec<String> = kept
        .iter()
        .filter_map(|n| match n {
            PlaceNote::Replaced { day, name, by } => Some(match lang {
                Language::Ko => {
                    format!("{day}일차: '{name}'을(를) 목적지 근처에서 찾을 수 없어 '{by}'(으)로 바꿨습니다.")
                }
                Language::En => {
                    format!("Day {day}: \"{name}\" could not be found near the destination; \"{by}\" takes its place.")
                }
            }),
            PlaceNote::Closed { day, name, by } => Some(match lang {
                Language::Ko => format!("{day}일차: '{name}'은(는) 그 시간에 문을 닫아 '{by}'(으)로 바꿨습니다."),
                Language::En => format!("Day {day}: \"{name}\" is closed at that time; \"{by}\" takes its place."),
            }),
            _ => None,
        })
        .collect();
    let list = |pick: fn(&PlaceNote) -> bool| -> Option<String> {
        let names: Vec<&str> = kept.iter().filter(|n| pick(n)).map(|n| n.subject()).collect();
        (!names.is_empty()).then(|| names.join(", "))
    };
    if let Some(names) = list(|n| matches!(n, PlaceNote::Unverified { .. })) {
        out.push(match lang {
            Language::Ko => format!("다음 장소는 지도에서 확인되지 않았습니다. 방문 전에 확인하세요: {names}"),
            Language::En => format!("These places could not be found on the map; check them before you go: {names}"),
        });
    }
    if let Some(names) = list(|n| matches!(n, PlaceNote::NotChecked { .. })) {
        out.push(match lang {
            Language::Ko => format!("다음 장소는 실제로 있는지 확인하지 못했습니다: {names}"),
            Language::En => format!("These places were not checked against a map: {names}"),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Category;
    use crate::rules::tests::{activity, day};

    fn notes() -> Vec<PlaceNote> {
        vec![
            PlaceNote::NotChecked { name: "Cafe Lune".into() },
            PlaceNote::Replaced { day: 1, name: "Moon Temple".into(), by: "Kiyomizu-dera".into() },
            PlaceNote::NotChecked { name: "Tea House Kaze".into() },
            PlaceNote::Unverified { name: "Gone Gallery".into() },
            PlaceNote::Closed { day: 1, name: "Kyoto National Museum".into(), by: "Sanjusangen-do".into() },
            // Said again by a second pass, and about a place the plan no longer has.
            PlaceNote::NotChecked { name: "cafe  lune".into() },
            PlaceNote::NotChecked { name: "Dropped Bar".into() },
        ]
    }

    fn days() -> Vec<Day> {
        let names = ["Cafe Lune", "Kiyomizu-dera", "Tea House Kaze", "Gone Gallery", "Sanjusangen-do"];
        vec![day(1, 0, names.iter().map(|n| activity("09:00", 60, n, Category::Culture, 0, true)).collect())]
    }

    #[test]
    fn places_not_checked_are_listed_once_in_one_warning_in_either_language() {
        let en = place_warnings(Language::En, &notes(), &days());
        assert_eq!(
            en,
            [
                "Day 1: \"Moon Temple\" could not be found near the destination; \"Kiyomizu-dera\" takes its place.",
                "Day 1: \"Kyoto National Museum\" is closed at that time; \"Sanjusangen-do\" takes its place.",
                "These places could not be found on the map; check them before you go: Gone Gallery",
                "These places were not checked against a map: Cafe Lune, Tea House Kaze",
            ]
        );
        let ko = place_warnings(Language::Ko, &notes(), &days());
        assert_eq!(ko.len(), 4);
        assert!(ko[0].contains("Moon Temple") && ko[0].contains("바꿨습니다"), "{ko:?}");
        assert_eq!(
            ko[1],
            "1일차: 'Kyoto National Museum'은(는) 그 시간에 문을 닫아 'Sanjusangen-do'(으)로 바꿨습니다."
        );
        assert!(ko[3].ends_with("확인하지 못했습니다: Cafe Lune, Tea House Kaze"), "{ko:?}");
        assert!(place_warnings(Language::En, &[], &days()).is_empty());
    }
}

//! A model's place that repeats an earlier day's is swapped for a bundled one of the same kind nearby,
//! open then and not in the plan yet: rule 7 holds without dropping the stop and leaving a hole in the
//! day. Each swap is noted in the plan's warnings.

use std::collections::HashSet;

use tripstream_domain::Language;
use tripstream_domain::checks::route::km;
use tripstream_domain::plan::{Activity, Category, GeoPoint};
use tripstream_domain::rules::normalize_name;
use tripstream_engine::{Draft, PlanContext};

use crate::catalog::{DestinationData, Place, Weekday};

/// Swaps every repeated sight of `draft` (meals may repeat) and returns the notes saying so.
pub fn swap_repeats(draft: &mut Draft, data: &DestinationData, ctx: &PlanContext) -> Vec<String> {
    let lang = ctx.request.language;
    let travelers = u64::from(ctx.request.travelers.max(1));
    let centre = GeoPoint { lat: ctx.destination.lat, lon: ctx.destination.lon };
    let mut used: HashSet<String> =
        draft.days.iter().flat_map(|d| &d.activities).map(|a| normalize_name(&a.name)).collect();
    let mut seen = HashSet::new();
    let mut notes = Vec::new();
    for day in &mut draft.days {
        let weekday = Weekday::from(day.date.weekday());
        let mut previous = centre;
        for a in &mut day.activities {
            let near = a.location.unwrap_or(previous);
            let key = normalize_name(&a.name);
            if a.is_meal() || key.is_empty() {
                previous = near;
                continue;
            }
            if seen.insert(key) {
                previous = near;
                continue;
            }
            let Some(place) = nearest(data, a, near, weekday, &used) else {
                previous = near;
                continue;
            };
            let old = std::mem::take(&mut a.name);
            a.name = place.name.get(lang).to_owned();
            a.description = place.description.get(lang).to_owned();
            a.area = place.area.get(lang).to_owned();
            a.category = place.category;
            a.cost = place.cost.saturating_mul(travelers);
            a.indoor = place.indoor;
            a.location = Some(GeoPoint { lat: place.lat, lon: place.lon });
            for name in [&place.name.en, &place.name.ko] {
                used.insert(normalize_name(name));
            }
            seen.insert(normalize_name(&a.name));
            notes.push(note(lang, day.day, &old, &a.name));
            previous = a.location.unwrap_or(near);
        }
    }
    notes
}

/// The bundled place nearest `near` of the activity's kind (else any sight), not a day trip, open for
/// the activity's slot that weekday, and not in the plan.
fn nearest<'a>(
    data: &'a DestinationData,
    a: &Activity,
    near: GeoPoint,
    weekday: Weekday,
    used: &HashSet<String>,
) -> Option<&'a Place> {
    let (start, end) = (u32::from(a.time.minutes()), a.end_minutes());
    let open = |p: &&Place| {
        !p.day_trip
            && !p.closed_on.contains(&weekday)
            && u32::from(p.hours.open.minutes()) <= start
            && end <= u32::from(p.hours.close.minutes()).max(u32::from(p.hours.open.minutes()))
            && !used.contains(&normalize_name(&p.name.en))
            && !used.contains(&normalize_name(&p.name.ko))
    };
    let distance = |p: &&Place| km(near, GeoPoint { lat: p.lat, lon: p.lon });
    let by_distance = |x: &&Place, y: &&Place| distance(x).total_cmp(&distance(y));
    let sight = |c: Category| {
        matches!(
            c,
            Category::Sightseeing | Category::Culture | Category::Nature | Category::Activity | Category::Shopping
        )
    };
    data.places.iter().filter(open).filter(|p| p.category == a.category).min_by(by_distance).or_else(|| {
        data.places.iter().filter(open).filter(|p| sight(p.category) && sight(a.category)).min_by(by_distance)
    })
}

fn note(lang: Language, day: u32, old: &str, new: &str) -> String {
    match lang {
        Language::Ko => format!("{day}일차 '{old}'은(는) 앞선 날과 겹쳐 가까운 '{new}'(으)로 바꿨습니다."),
        Language::En => format!("Day {day}: '{old}' was already on an earlier day; it is swapped for '{new}' nearby."),
    }
}

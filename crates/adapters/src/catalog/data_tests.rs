//! What the bundled data must hold for plans a traveller would follow (issue 15): enough restaurants at
//! every price near every place, day trips, flagships, daylight hours for nature and public holidays.
//! `scripts/check_destinations.py` checks the same and more (holiday dates against each country's rules).

use tripstream_domain::plan::{Category, ClockTime};

use super::{BestTime, Catalog, FILES, Meal, MealKind, Place};

/// Every place has this many lunch and dinner restaurants (not cafés) near it: within this many minutes by
/// the destination's own transit model (a few km in a metro city, more where one drives), and at least
/// `NEAR_KM`.
const NEAR_KM: f64 = 2.5;
const NEAR_MINUTES: f64 = 20.0;
const NEAR_MEALS: usize = 2;

fn km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1, la2, lo2) = (a.0.to_radians(), a.1.to_radians(), b.0.to_radians(), b.1.to_radians());
    6371.0 * ((lo2 - lo1) * ((la1 + la2) / 2.0).cos()).hypot(la2 - la1)
}

#[test]
fn restaurants_span_every_price_level_and_cafes_serve_only_breakfast() {
    for d in Catalog::bundled().all() {
        assert!(d.meals.len() >= 30, "{}: {} meals", d.id, d.meals.len());
        let restaurants = d.meals.iter().filter(|m| m.category == Category::Food).count();
        assert!(restaurants >= 30, "{}: {restaurants} restaurants (food, not cafés)", d.id);
        let (low, medium, high) = (d.budget.low, d.budget.medium, d.budget.high);
        let cheap = d.meals.iter().filter(|m| m.cost <= low / 3).count();
        let upscale = d.meals.iter().filter(|m| m.cost >= medium * 2 / 5).count();
        let mid = d.meals.len() - cheap - upscale;
        assert!(cheap >= 8 && mid >= 8 && upscale >= 5, "{}: {cheap} cheap, {mid} mid, {upscale} high-end", d.id);
        let flagships: Vec<&Meal> = d.meals.iter().filter(|m| m.flagship).collect();
        assert!((2..=4).contains(&flagships.len()), "{}: {} flagship tables", d.id, flagships.len());
        for m in flagships {
            assert!(m.cost >= medium * 2 / 5 && m.cost <= high / 2, "{}/{}: flagship at {}", d.id, m.id, m.cost);
        }
        let breakfasts = d.meals.iter().filter(|m| m.meals.contains(&MealKind::Breakfast)).count();
        assert!(breakfasts >= 5, "{}: {breakfasts} breakfast places", d.id);
        for m in d.meals.iter().filter(|m| m.category == Category::Cafe) {
            assert_eq!(m.meals, [MealKind::Breakfast], "{}/{}: a café is not lunch or dinner", d.id, m.id);
        }
    }
}

#[test]
fn every_place_has_lunch_and_dinner_nearby() {
    // A place needs lunch nearby if it is open at lunchtime, dinner if it is open in the evening.
    let at = ClockTime::hm;
    let times = [(MealKind::Lunch, at(11, 30), at(14, 0)), (MealKind::Dinner, at(18, 0), at(21, 0))];
    for d in Catalog::bundled().all() {
        let transit = d.profile().transit;
        let near_km = NEAR_KM.max((NEAR_MINUTES - f64::from(transit.overhead_minutes)) / 60.0 * transit.speed_kmh);
        for p in d.places.iter().filter(|p| !p.day_trip) {
            for (kind, _, _) in times.into_iter().filter(|(_, from, to)| p.hours.open < *to && p.hours.close > *from) {
                let near = d
                    .meals
                    .iter()
                    .filter(|m| m.category == Category::Food && m.meals.contains(&kind))
                    .filter(|m| km((p.lat, p.lon), (m.lat, m.lon)) <= near_km)
                    .count();
                assert!(near >= NEAR_MEALS, "{}/{}: {near} {kind:?} places within {near_km:.1} km", d.id, p.id);
            }
        }
    }
}

#[test]
fn day_trips_fill_a_day_and_flagships_mark_the_premium_experiences() {
    for d in Catalog::bundled().all() {
        let trips: Vec<&Place> = d.places.iter().filter(|p| p.day_trip).collect();
        assert!((2..=4).contains(&trips.len()), "{}: {} day trips", d.id, trips.len());
        for p in trips {
            assert!((300..=600).contains(&p.duration_minutes), "{}/{}: {} min", d.id, p.id, p.duration_minutes);
            assert!(p.cost > 0, "{}/{}: a day trip's cost includes getting there", d.id, p.id);
            assert!(km((p.lat, p.lon), (d.lat, d.lon)) >= 10.0, "{}/{}: a day trip leaves the city", d.id, p.id);
        }
        let flagships = d.places.iter().filter(|p| p.flagship).count();
        assert!((3..=6).contains(&flagships), "{}: {flagships} flagship places", d.id);
        for p in d.places.iter().filter(|p| p.flagship) {
            assert!(p.cost > 0 && p.cost <= d.budget.high / 2, "{}/{}: flagship at {}", d.id, p.id, p.cost);
        }
    }
}

#[test]
fn places_keep_to_their_time_of_day_and_nature_to_daylight() {
    for d in Catalog::bundled().all() {
        for p in &d.places {
            let (open, close) = (p.hours.open.minutes(), p.hours.close.minutes());
            assert!(
                (30..=600).contains(&p.duration_minutes) && p.duration_minutes % 15 == 0,
                "{}/{}: {} min",
                d.id,
                p.id,
                p.duration_minutes
            );
            assert!(close - open >= p.duration_minutes, "{}/{}: open shorter than a visit", d.id, p.id);
            if p.category == Category::Nightlife {
                assert_eq!(p.best_time, BestTime::Night, "{}/{}", d.id, p.id);
            }
            if p.category == Category::Nature && !p.indoor {
                assert!(open >= 4 * 60 && close <= 22 * 60, "{}/{}: outdoor nature open {open}..{close}", d.id, p.id);
            }
        }
    }
}

#[test]
fn holidays_cover_2025_to_2028_in_order_and_close_known_places() {
    for d in Catalog::bundled().all() {
        let profile = d.profile();
        assert!(profile.holidays.windows(2).all(|w| w[0].date < w[1].date), "{}: holidays out of order", d.id);
        for year in 2025..=2028 {
            let n = profile.holidays.iter().filter(|h| h.date.year() == year).count();
            // The fewest any of the countries has: France's 11.
            assert!(n >= 11, "{}: {n} holidays in {year}", d.id);
        }
        let ids: Vec<&str> =
            d.places.iter().map(|p| p.id.as_str()).chain(d.meals.iter().map(|m| m.id.as_str())).collect();
        for h in profile.holidays.iter() {
            for id in &h.closes {
                assert!(ids.contains(&id.as_str()), "{}: {} closes unknown {id}", d.id, h.date);
            }
        }
        let windows = profile.meal_windows;
        assert!(windows.breakfast.from < windows.lunch.from && windows.lunch.from < windows.dinner.from, "{}", d.id);
        assert!(profile.transit.speed_kmh > profile.transit.walk_kmh, "{}", d.id);
    }
}

#[test]
fn a_file_without_meal_windows_or_transit_is_rejected() {
    let (name, seoul) = FILES[0];
    for key in ["mealWindows", "transit"] {
        // Drop the top-level block: its key line and the indented lines under it.
        let mut skipping = false;
        let text: String = seoul
            .lines()
            .filter(|line| {
                if !line.starts_with(' ') {
                    skipping = line.starts_with(&format!("{key}:"));
                }
                !skipping
            })
            .map(|line| format!("{line}\n"))
            .collect();
        let err = Catalog::parse(&[(name, &text)]).expect_err(key);
        assert!(err.message.contains(key), "{key}: {err}");
    }
}

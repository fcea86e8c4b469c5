//! Distances, door-to-door travel times and the shortest order of a day's stops with its meals fixed.

use crate::destination::Transit;
use crate::plan::{Day, GeoPoint};

/// Great-circle distance in km.
pub fn km(a: GeoPoint, b: GeoPoint) -> f64 {
    let (la1, lo1, la2, lo2) = (a.lat.to_radians(), a.lon.to_radians(), b.lat.to_radians(), b.lon.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2) + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().min(1.0).asin()
}

/// What going by `via` adds to the way from `a` to `b`, in km.
pub fn detour(a: GeoPoint, via: GeoPoint, b: GeoPoint) -> f64 {
    km(a, via) + km(via, b) - km(a, b)
}

/// The walk each of a day's lunches adds to the way between the stops either side of it, in km (lunches
/// first or last in the day, or next to a stop without a location, have no way to be off).
pub fn lunch_detours(day: &Day) -> impl Iterator<Item = f64> + '_ {
    day.activities.windows(3).filter_map(|w| {
        let lunch = w[1].is_meal() && super::MealKind::at(w[1].time) == super::MealKind::Lunch;
        match (lunch, w[0].location, w[1].location, w[2].location) {
            (true, Some(a), Some(via), Some(b)) => Some(detour(a, via, b)),
            _ => None,
        }
    })
}

impl Transit {
    /// Door-to-door minutes for `km` in a straight line: on foot up to `walk_max_km`, else transit
    /// (fixed overhead plus distance at the effective speed), rounded up.
    pub fn minutes(&self, km: f64) -> u16 {
        let minutes = if km <= self.walk_max_km {
            km / self.walk_kmh * 60.0
        } else {
            f64::from(self.overhead_minutes) + km / self.speed_kmh * 60.0
        };
        minutes.ceil().clamp(0.0, f64::from(u16::MAX)) as u16
    }

    /// [`Self::minutes`] between two points.
    pub fn between(&self, a: GeoPoint, b: GeoPoint) -> u16 {
        self.minutes(km(a, b))
    }
}

/// Beyond this many movable stops between two fixed ones, the order is taken as it is.
pub const MOST_EXACT: usize = 12;

/// A day's route: its length as planned, the shortest length with its meals kept in their places, and
/// the order (indices into the day's activities) that achieves it. `None` when a stop has no location.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub planned_km: f64,
    pub shortest_km: f64,
    pub order: Vec<usize>,
}

impl Route {
    /// Shortest ÷ planned: 1.0 for a day already in its best order.
    pub fn efficiency(&self) -> f64 {
        if self.planned_km <= 1e-9 { 1.0 } else { (self.shortest_km / self.planned_km).min(1.0) }
    }
}

/// The day's route. Meals stay where they are (breakfast at a café too: it is the morning's meal, not a
/// stop to move); the stops between two meals (or before the first, or
/// after the last) may go in any order. Solved exactly (Held–Karp) for up to [`MOST_EXACT`] stops per run.
pub fn route(day: &Day) -> Option<Route> {
    let points: Vec<GeoPoint> = day.activities.iter().map(|a| a.location).collect::<Option<_>>()?;
    let fixed: Vec<bool> = day.activities.iter().map(is_fixed).collect();
    Some(route_of(&points, &fixed))
}

/// Whether a stop keeps its place in the day's order: a meal, or a café at breakfast time.
pub fn is_fixed(a: &crate::plan::Activity) -> bool {
    a.is_meal()
        || (a.category == crate::plan::Category::Cafe && super::MealKind::at(a.time) == super::MealKind::Breakfast)
}

/// [`route`] over bare points: `fixed[i]` keeps stop `i` in its place.
pub fn route_of(points: &[GeoPoint], fixed: &[bool]) -> Route {
    let planned_km = path_km(points, &(0..points.len()).collect::<Vec<_>>());
    let mut order = Vec::with_capacity(points.len());
    let mut i = 0;
    while i < points.len() {
        if fixed[i] {
            order.push(i);
            i += 1;
            continue;
        }
        let run_end = (i..points.len()).find(|&j| fixed[j]).unwrap_or(points.len());
        let run: Vec<usize> = (i..run_end).collect();
        let before = i.checked_sub(1).map(|b| points[b]);
        let after = (run_end < points.len()).then(|| points[run_end]);
        order.extend(shortest_path(points, &run, before, after));
        i = run_end;
    }
    let shortest_km = path_km(points, &order);
    Route { planned_km, shortest_km, order }
}

fn path_km(points: &[GeoPoint], order: &[usize]) -> f64 {
    order.windows(2).map(|w| km(points[w[0]], points[w[1]])).sum()
}

/// The order of `stops` with the shortest path from `start` (if any) through all of them to `end` (if
/// any): exact dynamic programming over subsets.
fn shortest_path(points: &[GeoPoint], stops: &[usize], start: Option<GeoPoint>, end: Option<GeoPoint>) -> Vec<usize> {
    let n = stops.len();
    if n <= 1 || n > MOST_EXACT {
        return stops.to_vec();
    }
    let d = |a: usize, b: usize| km(points[stops[a]], points[stops[b]]);
    let from_start = |a: usize| start.map_or(0.0, |s| km(s, points[stops[a]]));
    let to_end = |a: usize| end.map_or(0.0, |e| km(points[stops[a]], e));
    let full = 1usize << n;
    let mut cost = vec![f64::INFINITY; full * n];
    let mut prev = vec![usize::MAX; full * n];
    for a in 0..n {
        cost[(1 << a) * n + a] = from_start(a);
    }
    for mask in 1..full {
        for last in 0..n {
            let here = cost[mask * n + last];
            if mask & (1 << last) == 0 || here.is_infinite() {
                continue;
            }
            for next in 0..n {
                if mask & (1 << next) != 0 {
                    continue;
                }
                let m2 = mask | (1 << next);
                let c = here + d(last, next);
                if c < cost[m2 * n + next] - 1e-12 {
                    cost[m2 * n + next] = c;
                    prev[m2 * n + next] = last;
                }
            }
        }
    }
    let all = full - 1;
    // Ties go to the planned order: the identity wins unless something is strictly shorter.
    let planned: Vec<usize> = (0..n).collect();
    let planned_cost = from_start(0) + planned.windows(2).map(|w| d(w[0], w[1])).sum::<f64>() + to_end(n - 1);
    let (mut last, best) = (0..n)
        .map(|a| (a, cost[all * n + a] + to_end(a)))
        .min_by(|x, y| x.1.total_cmp(&y.1))
        .unwrap_or((0, f64::INFINITY));
    if best >= planned_cost - 1e-9 {
        return stops.to_vec();
    }
    let mut mask = all;
    let mut rev = Vec::with_capacity(n);
    while last != usize::MAX {
        rev.push(stops[last]);
        let p = prev[mask * n + last];
        mask &= !(1 << last);
        last = p;
    }
    rev.reverse();
    rev
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(lat: f64, lon: f64) -> GeoPoint {
        GeoPoint { lat, lon }
    }

    #[test]
    fn distances_and_travel_times() {
        assert!((km(p(37.5796, 126.9770), p(37.5512, 126.9882)) - 3.3).abs() < 0.2);
        let t = Transit { walk_max_km: 1.2, walk_kmh: 4.5, speed_kmh: 20.0, overhead_minutes: 10 };
        assert_eq!(t.minutes(0.0), 0);
        assert_eq!(t.minutes(0.9), 12);
        assert_eq!(t.minutes(10.0), 40);
    }

    /// The exact solver against every permutation, on small random-looking instances.
    #[test]
    fn the_shortest_order_is_the_brute_force_one() {
        let mut seed = 7u64;
        let mut rnd = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) as f64) / f64::from(u32::MAX) * 0.2
        };
        for n in 2..=6 {
            let points: Vec<GeoPoint> = (0..n + 2).map(|_| p(37.5 + rnd(), 127.0 + rnd())).collect();
            let stops: Vec<usize> = (1..=n).collect();
            let (s, e) = (Some(points[0]), Some(points[n + 1]));
            let got = shortest_path(&points, &stops, s, e);
            let len = |o: &[usize]| {
                let mut full = vec![0];
                full.extend_from_slice(o);
                full.push(n + 1);
                path_km(&points, &full)
            };
            let mut best = f64::INFINITY;
            permute(&mut stops.clone(), 0, &mut |o| best = best.min(len(o)));
            assert!((len(&got) - best).abs() < 1e-9, "n={n}");
        }
    }

    fn permute(v: &mut Vec<usize>, k: usize, f: &mut dyn FnMut(&[usize])) {
        if k == v.len() {
            f(v);
            return;
        }
        for i in k..v.len() {
            v.swap(k, i);
            permute(v, k + 1, f);
            v.swap(k, i);
        }
    }

    #[test]
    fn meals_stay_in_their_places() {
        // A zig-zag: west, east, west around a fixed lunch in the middle.
        let points = [p(37.55, 126.90), p(37.55, 127.10), p(37.55, 126.91), p(37.55, 127.00), p(37.55, 127.09)];
        let fixed = [false, false, false, true, false];
        let r = route_of(&points, &fixed);
        assert_eq!(r.order[3], 3);
        assert!(r.efficiency() < 0.8, "{}", r.efficiency());
        let again = route_of(&r.order.iter().map(|&i| points[i]).collect::<Vec<_>>(), &fixed);
        assert!((again.efficiency() - 1.0).abs() < 1e-9);
    }
}

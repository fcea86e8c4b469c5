//! Sunrise and sunset from coordinates and a date: NOAA's solar calculator (Meeus' low-precision
//! formulas), good to about a minute between ±72° latitude.

use jiff::civil::Date;

/// Sunrise and sunset on `date` at `(lat, lon)`, in minutes after local midnight for a clock
/// `utc_offset_minutes` ahead of UTC. `None` on a day without either (polar day or night).
pub fn sunrise_sunset(date: Date, lat: f64, lon: f64, utc_offset_minutes: i32) -> Option<(i32, i32)> {
    // Julian day at local noon.
    let jd = julian_day(date) + 0.5 - f64::from(utc_offset_minutes) / 1440.0;
    let t = (jd - 2_451_545.0) / 36_525.0;
    let l0 = (280.46646 + t * (36000.76983 + t * 0.0003032)).rem_euclid(360.0);
    let m = 357.52911 + t * (35999.05029 - 0.0001537 * t);
    let e = 0.016708634 - t * (0.000042037 + 0.0000001267 * t);
    let mr = m.to_radians();
    let c = mr.sin() * (1.914602 - t * (0.004817 + 0.000014 * t))
        + (2.0 * mr).sin() * (0.019993 - 0.000101 * t)
        + (3.0 * mr).sin() * 0.000289;
    let omega = (125.04 - 1934.136 * t).to_radians();
    let lambda = (l0 + c - 0.00569 - 0.00478 * omega.sin()).to_radians();
    let eps0 = 23.0 + (26.0 + (21.448 - t * (46.815 + t * (0.00059 - t * 0.001813))) / 60.0) / 60.0;
    let eps = (eps0 + 0.00256 * omega.cos()).to_radians();
    let decl = (eps.sin() * lambda.sin()).asin();
    let y = (eps / 2.0).tan().powi(2);
    let l0r = l0.to_radians();
    let eq_time = 4.0
        * (y * (2.0 * l0r).sin() - 2.0 * e * mr.sin() + 4.0 * e * y * mr.sin() * (2.0 * l0r).cos()
            - 0.5 * y * y * (4.0 * l0r).sin()
            - 1.25 * e * e * (2.0 * mr).sin())
        .to_degrees();
    let latr = lat.to_radians();
    // The sun's centre 0.833° below the horizon: refraction and the solar disc's radius.
    let cos_ha = 90.833f64.to_radians().cos() / (latr.cos() * decl.cos()) - latr.tan() * decl.tan();
    if !(-1.0..=1.0).contains(&cos_ha) {
        return None;
    }
    let ha = cos_ha.acos().to_degrees();
    let noon = 720.0 - 4.0 * lon - eq_time + f64::from(utc_offset_minutes);
    Some(((noon - 4.0 * ha).round() as i32, (noon + 4.0 * ha).round() as i32))
}

/// The Julian day number at 00:00 UTC of `date`.
fn julian_day(date: Date) -> f64 {
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let (y, m, d) = (i64::from(date.year()), i64::from(date.month()), i64::from(date.day()));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    2_440_587.5 + days as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn hm(minutes: i32) -> String {
        format!("{:02}:{:02}", minutes / 60, minutes % 60)
    }

    /// Published times (timeanddate.com, NOAA's calculator), to within two minutes.
    #[test]
    fn sunrise_and_sunset_match_published_times() {
        let cases = [
            // Paris, summer solstice, CEST.
            (date(2025, 6, 21), 48.8566, 2.3522, 120, (5 * 60 + 46, 21 * 60 + 58)),
            // Seoul, winter solstice, KST.
            (date(2025, 12, 21), 37.5665, 126.978, 540, (7 * 60 + 43, 17 * 60 + 17)),
            // London, summer solstice, BST.
            (date(2025, 6, 21), 51.5074, -0.1278, 60, (4 * 60 + 43, 21 * 60 + 21)),
        ];
        for (d, lat, lon, offset, (rise, set)) in cases {
            let (r, s) = sunrise_sunset(d, lat, lon, offset).unwrap();
            assert!((r - rise).abs() <= 2, "{d} sunrise {} vs {}", hm(r), hm(rise));
            assert!((s - set).abs() <= 2, "{d} sunset {} vs {}", hm(s), hm(set));
        }
    }

    #[test]
    fn polar_day_and_night_have_no_sunset() {
        assert_eq!(sunrise_sunset(date(2025, 12, 21), 69.65, 18.96, 60), None);
        assert_eq!(sunrise_sunset(date(2025, 6, 21), 69.65, 18.96, 120), None);
    }

    #[test]
    fn julian_days_are_the_astronomers() {
        assert_eq!(julian_day(date(2000, 1, 1)), 2_451_544.5);
        assert_eq!(julian_day(date(1970, 1, 1)), 2_440_587.5);
    }
}

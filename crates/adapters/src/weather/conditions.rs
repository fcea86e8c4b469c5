//! The one mapping from upstream weather codes to the summaries a plan shows.
//!
//! OpenWeatherMap reports condition groups (`Clear`, `Rain`, …) and Open-Meteo reports WMO weather
//! codes; both are translated into a [`Condition`], and only a `Condition` knows its words, so the two
//! sources can never disagree on what "rain" is called.

use tripstream_domain::Language;

/// A day's kind of weather, ordered from mildest to most severe so that ties between equally frequent
/// conditions can be broken toward the wetter, more disruptive one (`max` picks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Condition {
    Clear,
    PartlyCloudy,
    Cloudy,
    Fog,
    /// Smoke, dust, sand or volcanic ash in the air.
    Dust,
    Drizzle,
    Showers,
    Rain,
    SnowShowers,
    Snow,
    Squall,
    Thunderstorm,
    Tornado,
}

impl Condition {
    /// Every condition, mildest first.
    pub const ALL: [Condition; 13] = [
        Condition::Clear,
        Condition::PartlyCloudy,
        Condition::Cloudy,
        Condition::Fog,
        Condition::Dust,
        Condition::Drizzle,
        Condition::Showers,
        Condition::Rain,
        Condition::SnowShowers,
        Condition::Snow,
        Condition::Squall,
        Condition::Thunderstorm,
        Condition::Tornado,
    ];

    /// The short summary a day card shows, in the request's language.
    pub fn summary(self, lang: Language) -> &'static str {
        let (ko, en) = match self {
            Condition::Clear => ("맑음", "Clear"),
            Condition::PartlyCloudy => ("구름 조금", "Partly cloudy"),
            Condition::Cloudy => ("흐림", "Cloudy"),
            Condition::Fog => ("안개", "Fog"),
            Condition::Dust => ("먼지", "Dust or smoke"),
            Condition::Drizzle => ("이슬비", "Drizzle"),
            Condition::Showers => ("소나기", "Rain showers"),
            Condition::Rain => ("비", "Rain"),
            Condition::SnowShowers => ("소낙눈", "Snow showers"),
            Condition::Snow => ("눈", "Snow"),
            Condition::Squall => ("돌풍", "Squalls"),
            Condition::Thunderstorm => ("뇌우", "Thunderstorm"),
            Condition::Tornado => ("토네이도", "Tornado"),
        };
        match lang {
            Language::Ko => ko,
            Language::En => en,
        }
    }

    /// An OpenWeatherMap condition group (`weather[].main`); `None` for a group this service does not
    /// know, so that an upstream addition is skipped rather than mislabelled.
    pub fn from_owm_main(main: &str) -> Option<Self> {
        Some(match main {
            "Clear" => Condition::Clear,
            "Clouds" => Condition::Cloudy,
            "Mist" | "Fog" | "Haze" => Condition::Fog,
            "Smoke" | "Dust" | "Sand" | "Ash" => Condition::Dust,
            "Drizzle" => Condition::Drizzle,
            "Rain" => Condition::Rain,
            "Snow" => Condition::Snow,
            "Squall" => Condition::Squall,
            "Thunderstorm" => Condition::Thunderstorm,
            "Tornado" => Condition::Tornado,
            _ => return None,
        })
    }

    /// A WMO 4677 weather code as Open-Meteo reports it; `None` for codes outside the documented set.
    pub fn from_wmo(code: u16) -> Option<Self> {
        Some(match code {
            0 => Condition::Clear,
            1 | 2 => Condition::PartlyCloudy,
            3 => Condition::Cloudy,
            45 | 48 => Condition::Fog,
            51..=57 => Condition::Drizzle,
            61..=67 => Condition::Rain,
            71..=77 => Condition::Snow,
            80..=82 => Condition::Showers,
            85 | 86 => Condition::SnowShowers,
            95..=99 => Condition::Thunderstorm,
            _ => return None,
        })
    }

    /// The most frequent of `conditions`; among equally frequent ones the most severe. `None` when empty.
    pub fn dominant(conditions: impl IntoIterator<Item = Condition>) -> Option<Self> {
        let mut counts = [0usize; Condition::ALL.len()];
        for c in conditions {
            counts[c as usize] += 1;
        }
        // `max_by_key` returns the last maximum, and `ALL` runs mildest to most severe.
        Condition::ALL.into_iter().zip(counts).filter(|&(_, n)| n > 0).max_by_key(|&(_, n)| n).map(|(c, _)| c)
    }
}

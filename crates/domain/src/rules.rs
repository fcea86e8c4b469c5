//! The seven validation rules of API.md that a delivered plan satisfies, as findings a generator can be
//! told about (refine) and people can read (warnings).

use std::collections::{HashMap, HashSet};

use crate::checks::{Check, Severity};
use crate::money::format_amount;
use crate::plan::{ClockTime, Day, Plan};
use crate::request::{Language, TripDates};

/// Fewest and most activities a day may hold (rule 2).
pub const MIN_ACTIVITIES: usize = 3;
pub const MAX_ACTIVITIES: usize = 8;
/// The window activity start times must fall in (rule 2).
pub const EARLIEST: ClockTime = ClockTime::hm(6, 0);
pub const LATEST: ClockTime = ClockTime::hm(23, 59);

/// What the validator needs beyond the plan itself.
#[derive(Debug, Clone)]
pub struct ValidationContext {
    pub dates: TripDates,
    /// The budget ceiling for the whole trip and all travellers (rule 5).
    pub budget_ceiling: u64,
    pub currency: String,
}

/// The rule a finding breaks, numbered as in API.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    DayCount = 1,
    DaySchedule = 2,
    ActivityFields = 3,
    Sums = 4,
    Budget = 5,
    RainyDay = 6,
    Repeats = 7,
    /// Not one of API.md's seven: the commonsense checks ([`crate::checks`]), never hard.
    Commonsense = 8,
}

impl Rule {
    /// Rules 1–4 are hard: no plan that breaks one is ever delivered.
    pub fn is_hard(self) -> bool {
        self <= Rule::Sums
    }
}

/// One way in which a plan breaks a rule. `day` fields are 1-based day numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    DayCount {
        expected: u32,
        actual: u32,
    },
    DayNumbering {
        index: u32,
    },
    ActivityCount {
        day: u32,
        count: usize,
    },
    TimeOrder {
        day: u32,
        name: String,
    },
    TimeWindow {
        day: u32,
        name: String,
        time: ClockTime,
    },
    Overlap {
        day: u32,
        name: String,
    },
    EmptyName {
        day: u32,
    },
    DailyCost {
        day: u32,
        stated: u64,
        actual: u64,
    },
    TotalCost {
        stated: u64,
        actual: u64,
    },
    /// The costs add up to more than a `u64` holds (day `Some(n)`, or the whole trip): no sum can be stated.
    CostOverflow {
        day: Option<u32>,
    },
    OverBudget {
        total: u64,
        ceiling: u64,
        currency: String,
    },
    RainyDayOutdoors {
        day: u32,
        outdoor: usize,
        chance: u8,
    },
    Repeated {
        day: u32,
        name: String,
    },
    /// A commonsense finding.
    Check(Check),
}

impl Finding {
    pub fn rule(&self) -> Rule {
        match self {
            Finding::DayCount { .. } | Finding::DayNumbering { .. } => Rule::DayCount,
            Finding::ActivityCount { .. }
            | Finding::TimeOrder { .. }
            | Finding::TimeWindow { .. }
            | Finding::Overlap { .. } => Rule::DaySchedule,
            Finding::EmptyName { .. } => Rule::ActivityFields,
            Finding::DailyCost { .. } | Finding::TotalCost { .. } | Finding::CostOverflow { .. } => Rule::Sums,
            Finding::OverBudget { .. } => Rule::Budget,
            Finding::RainyDayOutdoors { .. } => Rule::RainyDay,
            Finding::Repeated { .. } => Rule::Repeats,
            Finding::Check(_) => Rule::Commonsense,
        }
    }

    pub fn is_hard(&self) -> bool {
        self.rule().is_hard()
    }

    /// Errors are never delivered; warnings are worth a repair or a refinement; notices only inform.
    pub fn severity(&self) -> Severity {
        match self {
            Finding::Check(c) => c.severity(),
            f if f.is_hard() => Severity::Error,
            _ => Severity::Warning,
        }
    }

    /// The finding in words, for a refine prompt or a plan's `warnings`.
    pub fn message(&self, lang: Language) -> String {
        use Language::{En, Ko};
        match (self, lang) {
            (Finding::DayCount { expected, actual }, Ko) => {
                format!("일정이 {actual}일이지만 {expected}일이어야 합니다.")
            }
            (Finding::DayCount { expected, actual }, En) => {
                format!("The plan has {actual} days but must have {expected}.")
            }
            (Finding::DayNumbering { index }, Ko) => {
                format!("{}번째 날의 일차 번호나 날짜가 맞지 않습니다.", index + 1)
            }
            (Finding::DayNumbering { index }, En) => {
                format!("Day {} has the wrong day number or date.", index + 1)
            }
            (Finding::ActivityCount { day, count }, Ko) => {
                format!("{day}일차에 활동이 {count}개입니다 ({MIN_ACTIVITIES}–{MAX_ACTIVITIES}개여야 합니다).")
            }
            (Finding::ActivityCount { day, count }, En) => {
                format!("Day {day} has {count} activities (it needs {MIN_ACTIVITIES}–{MAX_ACTIVITIES}).")
            }
            (Finding::TimeOrder { day, name }, Ko) => {
                format!("{day}일차 '{name}'의 시간이 앞 활동보다 빠릅니다.")
            }
            (Finding::TimeOrder { day, name }, En) => {
                format!("Day {day}: '{name}' is not after the previous activity.")
            }
            (Finding::TimeWindow { day, name, time }, Ko) => {
                format!("{day}일차 '{name}'의 시작 시간 {time}이 06:00–23:59 밖입니다.")
            }
            (Finding::TimeWindow { day, name, time }, En) => {
                format!("Day {day}: '{name}' starts at {time}, outside 06:00–23:59.")
            }
            (Finding::Overlap { day, name }, Ko) => {
                format!("{day}일차 '{name}'이 앞 활동이 끝나기 전에 시작합니다.")
            }
            (Finding::Overlap { day, name }, En) => {
                format!("Day {day}: '{name}' starts before the previous activity ends.")
            }
            (Finding::EmptyName { day }, Ko) => format!("{day}일차에 이름 없는 활동이 있습니다."),
            (Finding::EmptyName { day }, En) => {
                format!("Day {day} has an activity without a name.")
            }
            (Finding::DailyCost { day, stated, actual }, Ko) => {
                format!("{day}일차 비용 합계가 {stated}이지만 실제 합은 {actual}입니다.")
            }
            (Finding::DailyCost { day, stated, actual }, En) => {
                format!("Day {day}: dailyCost is {stated} but the activities add up to {actual}.")
            }
            (Finding::TotalCost { stated, actual }, Ko) => {
                format!("총비용이 {stated}이지만 일별 합은 {actual}입니다.")
            }
            (Finding::TotalCost { stated, actual }, En) => {
                format!("totalCost is {stated} but the days add up to {actual}.")
            }
            (Finding::CostOverflow { day: Some(day) }, Ko) => format!("{day}일차 비용의 합이 너무 큽니다."),
            (Finding::CostOverflow { day: None }, Ko) => "총비용의 합이 너무 큽니다.".to_owned(),
            (Finding::CostOverflow { day: Some(day) }, En) => format!("Day {day}: the costs add up to too much."),
            (Finding::CostOverflow { day: None }, En) => "The costs add up to too much.".to_owned(),
            (Finding::OverBudget { total, ceiling, currency }, Ko) => format!(
                "총비용 {}이 예산 상한 {}을 넘습니다.",
                format_amount(currency, *total),
                format_amount(currency, *ceiling)
            ),
            (Finding::OverBudget { total, ceiling, currency }, En) => format!(
                "The total cost {} is over the budget ceiling of {}.",
                format_amount(currency, *total),
                format_amount(currency, *ceiling)
            ),
            (Finding::RainyDayOutdoors { day, outdoor, chance }, Ko) => {
                format!("{day}일차는 강수확률 {chance}%인데 야외 활동이 {outdoor}개입니다 (1개 이하 권장).")
            }
            (Finding::RainyDayOutdoors { day, outdoor, chance }, En) => {
                format!("Day {day}: rain is likely ({chance}%) but {outdoor} activities are outdoors (at most 1).")
            }
            (Finding::Repeated { day, name }, Ko) => {
                format!("'{name}'이 {day}일차에 다시 나옵니다.")
            }
            (Finding::Repeated { day, name }, En) => {
                format!("'{name}' appears again on day {day}.")
            }
            (Finding::Check(c), lang) => c.message(lang),
        }
    }
}

/// Every way in which `plan` breaks rules 1–7, in rule order.
pub fn validate(plan: &Plan, ctx: &ValidationContext) -> Vec<Finding> {
    let mut findings = Vec::new();
    let expected = ctx.dates.len();
    if plan.days.len() != expected as usize {
        findings.push(Finding::DayCount { expected, actual: plan.days.len() as u32 });
    }
    for (index, day) in plan.days.iter().enumerate() {
        let index = index as u32;
        if day.day != index + 1 || (index < expected && day.date != ctx.dates.date(index)) {
            findings.push(Finding::DayNumbering { index });
        }
    }

    for day in &plan.days {
        let n = day.day;
        if !(MIN_ACTIVITIES..=MAX_ACTIVITIES).contains(&day.activities.len()) {
            findings.push(Finding::ActivityCount { day: n, count: day.activities.len() });
        }
        let mut previous: Option<(ClockTime, u32)> = None;
        for a in &day.activities {
            if !(EARLIEST..=LATEST).contains(&a.time) {
                findings.push(Finding::TimeWindow { day: n, name: a.name.clone(), time: a.time });
            }
            if let Some((time, end)) = previous {
                if a.time <= time {
                    findings.push(Finding::TimeOrder { day: n, name: a.name.clone() });
                } else if u32::from(a.time.minutes()) < end {
                    findings.push(Finding::Overlap { day: n, name: a.name.clone() });
                }
            }
            previous = Some((a.time, a.end_minutes()));
            if a.name.trim().is_empty() {
                findings.push(Finding::EmptyName { day: n });
            }
        }
    }

    // Checked: a sum that wrapped would read as small and pass rules 4 and 5.
    let mut sum = Some(0u64);
    for day in &plan.days {
        match day.checked_activities_cost() {
            Some(actual) => {
                if day.daily_cost != actual {
                    findings.push(Finding::DailyCost { day: day.day, stated: day.daily_cost, actual });
                }
                sum = sum.and_then(|s| s.checked_add(actual));
            }
            None => {
                findings.push(Finding::CostOverflow { day: Some(day.day) });
                sum = None;
            }
        }
    }
    match sum {
        Some(sum) => {
            if plan.total_cost != sum {
                findings.push(Finding::TotalCost { stated: plan.total_cost, actual: sum });
            }
            if sum > ctx.budget_ceiling {
                let currency = ctx.currency.clone();
                findings.push(Finding::OverBudget { total: sum, ceiling: ctx.budget_ceiling, currency });
            }
        }
        None if !findings.iter().any(|f| matches!(f, Finding::CostOverflow { .. })) => {
            findings.push(Finding::CostOverflow { day: None });
        }
        None => {}
    }

    for day in &plan.days {
        let outdoor = day.activities.iter().filter(|a| !a.indoor).count();
        if day.weather.is_rainy() && outdoor > 1 {
            findings.push(Finding::RainyDayOutdoors {
                day: day.day,
                outdoor,
                chance: day.weather.precipitation_chance,
            });
        }
    }

    let mut seen: HashMap<String, u32> = HashMap::new();
    for day in &plan.days {
        for a in day.activities.iter().filter(|a| !a.is_meal()) {
            let key = normalize_name(&a.name);
            if key.is_empty() {
                continue;
            }
            if seen.insert(key, day.day).is_some() {
                findings.push(Finding::Repeated { day: day.day, name: a.name.clone() });
            }
        }
    }
    findings
}

/// Names compared for rule 7: case and spacing do not make a new place.
pub fn normalize_name(name: &str) -> String {
    if !name.is_ascii() {
        // `str::to_lowercase` knows where a word ends (Greek's final sigma); a character alone does not.
        return name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    }
    // Most names: one pass into one string, where the general case makes three.
    let mut normal = String::with_capacity(name.len());
    for word in name.split_whitespace() {
        if !normal.is_empty() {
            normal.push(' ');
        }
        normal.extend(word.bytes().map(|b| char::from(b.to_ascii_lowercase())));
    }
    normal
}

/// The sights (meals aside) of every day but `index`, by [`normalize_name`]: what rule 7 forbids day
/// `index` to visit again.
pub fn sights_elsewhere(days: &[Day], index: usize) -> HashSet<String> {
    days.iter()
        .enumerate()
        .filter(|(i, _)| *i != index)
        .flat_map(|(_, d)| d.activities.iter().filter(|a| !a.is_meal()).map(|a| normalize_name(&a.name)))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::plan::*;
    use crate::request::BudgetLevel;
    use jiff::civil::date;

    /// The one-pass reading of an ASCII name is the general one's, whatever the spacing.
    #[test]
    fn a_name_normalizes_alike_by_either_way() {
        let general = |name: &str| name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
        for name in [
            "Gyeongbokgung Palace",
            "  Kyoto  National\tMuseum ",
            "Line\x0bFeed\x0cForm\r\nBreak",
            "",
            "   ",
            "ALL CAPS 123",
            "경복궁  Palace",
            "ΟΔΟΣ Athens",
        ] {
            assert_eq!(normalize_name(name), general(name), "{name:?}");
        }
        assert!(normalize_name("ΟΔΟΣ").ends_with('\u{3c2}'), "Greek's final sigma, as str::to_lowercase writes it");
    }

    pub fn activity(time: &str, minutes: u16, name: &str, category: Category, cost: u64, indoor: bool) -> Activity {
        Activity {
            time: ClockTime::parse(time).unwrap(),
            duration_minutes: minutes,
            name: name.into(),
            description: String::new(),
            category,
            area: "Jongno".into(),
            cost,
            indoor,
            location: None,
        }
    }

    pub fn day(n: u32, chance: u8, activities: Vec<Activity>) -> Day {
        let mut d = Day {
            day: n,
            date: date(2025, 11, 9).checked_add(jiff::Span::new().days(i64::from(n))).unwrap(),
            theme: "t".into(),
            weather: DayWeather {
                summary: "s".into(),
                temp_min_c: 5.0,
                temp_max_c: 14.0,
                precipitation_chance: chance,
                source: WeatherSource::Climatology,
            },
            activities,
            daily_cost: 0,
        };
        d.daily_cost = d.activities_cost();
        d
    }

    pub fn good_day(n: u32) -> Day {
        day(
            n,
            10,
            vec![
                activity("09:00", 120, &format!("Palace {n}"), Category::Sightseeing, 3000, false),
                activity("12:00", 60, "Lunch", Category::Food, 10000, true),
                activity("14:00", 90, &format!("Museum {n}"), Category::Culture, 0, true),
                activity("18:00", 90, "Dinner", Category::Food, 20000, true),
            ],
        )
    }

    pub fn plan(days: Vec<Day>) -> Plan {
        let mut p = Plan {
            id: "pln_test".into(),
            title: "t".into(),
            location: "Seoul".into(),
            destination: PlanDestination {
                name: "Seoul".into(),
                country: "KR".into(),
                lat: 37.5,
                lon: 127.0,
                timezone: "Asia/Seoul".into(),
            },
            start_date: date(2025, 11, 10),
            end_date: date(2025, 11, 12),
            budget: BudgetLevel::Medium,
            travelers: 1,
            currency: "KRW".into(),
            language: Language::Ko,
            days,
            total_cost: 0,
            tips: vec![],
            warnings: vec![],
            metadata: Metadata {
                provider: "test".into(),
                model: "test".into(),
                generated_at: jiff::Timestamp::UNIX_EPOCH,
                iterations: 1,
                prompt_version: "t".into(),
                weather_source: "climatology".into(),
                duration_ms: 0,
                cached: false,
                usage: Usage::default(),
            },
        };
        p.recompute_costs();
        p
    }

    pub fn ctx(ceiling: u64) -> ValidationContext {
        ValidationContext {
            dates: TripDates::new(date(2025, 11, 10), date(2025, 11, 12), 14).unwrap(),
            budget_ceiling: ceiling,
            currency: "KRW".into(),
        }
    }

    #[test]
    fn a_good_plan_has_no_findings() {
        let p = plan(vec![good_day(1), good_day(2), good_day(3)]);
        assert_eq!(validate(&p, &ctx(1_000_000)), vec![]);
    }

    #[test]
    fn each_rule_is_detected() {
        let mut p = plan(vec![good_day(1), good_day(2)]);
        p.days[1].date = date(2025, 11, 20);
        p.days[0].activities.swap(0, 1);
        p.days[0].activities[2].time = ClockTime::hm(12, 30);
        p.days[1].activities[0].name = " ".into();
        p.days[1].activities[3].time = ClockTime::hm(5, 0);
        p.days[1].daily_cost += 1;
        p.total_cost = 7;
        p.days[1].weather.precipitation_chance = 80;
        p.days[1].activities[2].indoor = false;
        p.days[1].activities[2].name = "PALACE  1".into();
        let rules: Vec<Rule> = validate(&p, &ctx(10)).iter().map(Finding::rule).collect();
        for rule in [
            Rule::DayCount,
            Rule::DaySchedule,
            Rule::ActivityFields,
            Rule::Sums,
            Rule::Budget,
            Rule::RainyDay,
            Rule::Repeats,
        ] {
            assert!(rules.contains(&rule), "{rule:?} not found in {rules:?}");
        }
    }

    #[test]
    fn costs_that_overflow_break_rule_4_and_never_wrap_under_the_budget() {
        // Two days whose costs each fit, but whose total wraps to a small one (under the ceiling) unchecked.
        let mut p = plan(vec![good_day(1), good_day(2), good_day(3)]);
        p.days[0].activities[0].cost = u64::MAX / 2 + 1;
        p.days[1].activities[0].cost = u64::MAX / 2 + 1;
        p.recompute_costs();
        let findings = validate(&p, &ctx(1_000_000));
        assert!(findings.contains(&Finding::CostOverflow { day: None }), "{findings:?}");
        assert!(findings.iter().any(|f| f.is_hard()));
        assert!(!findings.iter().any(|f| matches!(f, Finding::TotalCost { .. })), "no sum is claimed: {findings:?}");
        // One day alone overflowing is named.
        p.days[0].activities[1].cost = u64::MAX;
        p.recompute_costs();
        assert_eq!(p.days[0].daily_cost, u64::MAX);
        let findings = validate(&p, &ctx(u64::MAX));
        assert_eq!(findings, vec![Finding::CostOverflow { day: Some(1) }]);
    }

    #[test]
    fn meals_may_repeat_and_rain_allows_one_outdoor_activity() {
        let mut p = plan(vec![good_day(1), good_day(2), good_day(3)]);
        p.days[2].weather.precipitation_chance = 60;
        assert_eq!(validate(&p, &ctx(1_000_000)), vec![]);
        p.days[2].activities[1].indoor = false;
        assert_eq!(validate(&p, &ctx(1_000_000))[0].rule(), Rule::RainyDay);
    }

    /// One finding of every kind.
    fn every_finding() -> Vec<Finding> {
        vec![
            Finding::DayCount { expected: 3, actual: 2 },
            Finding::DayNumbering { index: 1 },
            Finding::ActivityCount { day: 2, count: 9 },
            Finding::TimeOrder { day: 1, name: "경복궁".into() },
            Finding::TimeWindow { day: 3, name: "Night market".into(), time: ClockTime::hm(5, 30) },
            Finding::Overlap { day: 2, name: "Lunch".into() },
            Finding::EmptyName { day: 4 },
            Finding::DailyCost { day: 1, stated: 10, actual: 12 },
            Finding::TotalCost { stated: 30, actual: 36 },
            Finding::CostOverflow { day: Some(2) },
            Finding::OverBudget { total: 500000, ceiling: 360000, currency: "KRW".into() },
            Finding::RainyDayOutdoors { day: 2, outdoor: 3, chance: 80 },
            Finding::Repeated { day: 3, name: "N Seoul Tower".into() },
            Finding::Check(Check::NightlifeEarly { day: 1, name: "Hongdae".into(), time: ClockTime::hm(11, 0) }),
        ]
    }

    #[test]
    fn every_finding_reads_in_both_languages() {
        let messages: Vec<(String, String)> =
            every_finding().iter().map(|f| (f.message(Language::Ko), f.message(Language::En))).collect();
        let expected = [
            ("일정이 2일이지만 3일이어야 합니다.", "The plan has 2 days but must have 3."),
            ("2번째 날의 일차 번호나 날짜가 맞지 않습니다.", "Day 2 has the wrong day number or date."),
            ("2일차에 활동이 9개입니다 (3–8개여야 합니다).", "Day 2 has 9 activities (it needs 3–8)."),
            ("1일차 '경복궁'의 시간이 앞 활동보다 빠릅니다.", "Day 1: '경복궁' is not after the previous activity."),
            (
                "3일차 'Night market'의 시작 시간 05:30이 06:00–23:59 밖입니다.",
                "Day 3: 'Night market' starts at 05:30, outside 06:00–23:59.",
            ),
            (
                "2일차 'Lunch'이 앞 활동이 끝나기 전에 시작합니다.",
                "Day 2: 'Lunch' starts before the previous activity ends.",
            ),
            ("4일차에 이름 없는 활동이 있습니다.", "Day 4 has an activity without a name."),
            (
                "1일차 비용 합계가 10이지만 실제 합은 12입니다.",
                "Day 1: dailyCost is 10 but the activities add up to 12.",
            ),
            ("총비용이 30이지만 일별 합은 36입니다.", "totalCost is 30 but the days add up to 36."),
            ("2일차 비용의 합이 너무 큽니다.", "Day 2: the costs add up to too much."),
            (
                "총비용 ₩500,000이 예산 상한 ₩360,000을 넘습니다.",
                "The total cost ₩500,000 is over the budget ceiling of ₩360,000.",
            ),
            (
                "2일차는 강수확률 80%인데 야외 활동이 3개입니다 (1개 이하 권장).",
                "Day 2: rain is likely (80%) but 3 activities are outdoors (at most 1).",
            ),
            ("'N Seoul Tower'이 3일차에 다시 나옵니다.", "'N Seoul Tower' appears again on day 3."),
            (
                "1일차 'Hongdae'은 밤에 즐기는 곳인데 11:00에 시작합니다 (18:00 이후 권장).",
                "Day 1: 'Hongdae' is nightlife but starts at 11:00; it belongs after 18:00.",
            ),
        ];
        // A new kind of finding does not compile here until it is listed above.
        let kind = |f: &Finding| match f {
            Finding::DayCount { .. } => 0,
            Finding::DayNumbering { .. } => 1,
            Finding::ActivityCount { .. } => 2,
            Finding::TimeOrder { .. } => 3,
            Finding::TimeWindow { .. } => 4,
            Finding::Overlap { .. } => 5,
            Finding::EmptyName { .. } => 6,
            Finding::DailyCost { .. } => 7,
            Finding::TotalCost { .. } => 8,
            Finding::CostOverflow { .. } => 9,
            Finding::OverBudget { .. } => 10,
            Finding::RainyDayOutdoors { .. } => 11,
            Finding::Repeated { .. } => 12,
            Finding::Check(_) => 13,
        };
        let kinds: Vec<usize> = every_finding().iter().map(kind).collect();
        assert_eq!(kinds, (0..expected.len()).collect::<Vec<_>>());
        assert_eq!(messages.len(), expected.len());
        for ((ko, en), (want_ko, want_en)) in messages.iter().zip(expected) {
            assert_eq!((ko.as_str(), en.as_str()), (want_ko, want_en));
        }
    }
}

//! A plan as a readable itinerary for the terminal.

use std::fmt::Write;

use tripstream_domain::money::format_amount;
use tripstream_domain::text::day_lines;
use tripstream_domain::{Language, Plan};

/// The plan as text; with the trip's budget ceiling (from its destination) when it is known.
pub fn itinerary(plan: &Plan, ceiling: Option<u64>) -> String {
    let lang = plan.language;
    let ko = lang == Language::Ko;
    let mut out = String::new();
    let travelers = match (lang, plan.travelers) {
        (Language::Ko, n) => format!("{n}명"),
        (Language::En, 1) => "1 traveler".to_owned(),
        (Language::En, n) => format!("{n} travelers"),
    };
    let _ = writeln!(out, "{}", plan.title);
    let _ = writeln!(
        out,
        "{} · {} – {} · {} · {travelers}",
        plan.destination.name,
        plan.start_date,
        plan.end_date,
        plan.budget.as_str()
    );
    for day in &plan.days {
        let _ = writeln!(out);
        for (i, line) in day_lines(day, &plan.currency, lang).into_iter().enumerate() {
            let indent = if i == 0 { "" } else { "  " };
            let _ = writeln!(out, "{indent}{line}");
        }
    }
    let _ = writeln!(out);
    let total = format!("{} {}", if ko { "총비용:" } else { "Total:" }, format_amount(&plan.currency, plan.total_cost));
    match ceiling {
        Some(ceiling) => {
            let label = if ko { "예산 상한" } else { "budget ceiling" };
            let _ = writeln!(out, "{total} / {label} {}", format_amount(&plan.currency, ceiling));
        }
        None => {
            let _ = writeln!(out, "{total}");
        }
    }
    if !plan.tips.is_empty() {
        let _ = writeln!(out, "\n{}", if ko { "팁:" } else { "Tips:" });
        for tip in &plan.tips {
            let _ = writeln!(out, "  - {tip}");
        }
    }
    if !plan.warnings.is_empty() {
        let _ = writeln!(out, "\n{}", if ko { "주의:" } else { "Warnings:" });
        for w in &plan.warnings {
            let _ = writeln!(out, "  ! {w}");
        }
    }
    let m = &plan.metadata;
    let _ = writeln!(out, "\n{} · {} · {} · {} ms", m.provider, m.model, m.weather_source, m.duration_ms);
    out
}

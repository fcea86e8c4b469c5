//! Every human-readable status string of a stream, in Korean and English. The Korean strings are the
//! original service's, byte for byte (API.md "Messages").

use crate::event::ErrorCode;
use crate::request::Language;

pub fn gather_status(lang: Language, location: &str) -> String {
    match lang {
        Language::Ko => format!("{location}의 날씨 정보를 수집하고 있습니다..."),
        Language::En => format!("Gathering weather for {location}..."),
    }
}

pub fn gather_done(lang: Language) -> String {
    pick(lang, "날씨 정보 수집 완료", "Weather gathered")
}

pub fn draft_status(lang: Language) -> String {
    pick(lang, "AI가 여행 계획을 생성하고 있습니다...", "AI is drafting your travel plan...")
}

pub fn draft_done(lang: Language, days: usize) -> String {
    match lang {
        Language::Ko => format!("{days}일 일정 초안 생성 완료"),
        Language::En => format!("{days}-day draft ready"),
    }
}

pub fn regenerate_status(lang: Language, day: u32) -> String {
    match lang {
        Language::Ko => format!("AI가 {day}일차 일정을 새로 만들고 있습니다..."),
        Language::En => format!("AI is redrafting day {day}..."),
    }
}

pub fn regenerate_done(lang: Language, day: u32) -> String {
    match lang {
        Language::Ko => format!("{day}일차 새 일정 초안 완료"),
        Language::En => format!("Day {day} redrafted"),
    }
}

pub fn validate_status(lang: Language) -> String {
    pick(lang, "계획을 검증하고 있습니다...", "Checking the plan...")
}

pub fn validate_done(lang: Language) -> String {
    pick(lang, "검증 완료", "Check complete")
}

pub fn refine_status(lang: Language, i: u32, max: u32) -> String {
    match lang {
        Language::Ko => format!("계획을 개선하고 있습니다 ({i}/{max})..."),
        Language::En => format!("Improving the plan ({i}/{max})..."),
    }
}

pub fn refine_done(lang: Language, i: u32, max: u32) -> String {
    match lang {
        Language::Ko => format!("개선 완료 ({i}/{max})"),
        Language::En => format!("Improvement done ({i}/{max})"),
    }
}

pub fn finalize_status(lang: Language) -> String {
    pick(lang, "최종 계획을 완성하고 있습니다...", "Finalizing the plan...")
}

pub fn complete(lang: Language) -> String {
    pick(lang, "여행 계획 생성 완료!", "Your travel plan is ready!")
}

/// Said to listeners of a stream the server had to end while shutting down.
pub fn shutting_down(lang: Language) -> String {
    pick(
        lang,
        "서버가 재시작 중이라 생성을 마치지 못했습니다. 다시 시도해 주세요.",
        "The server is restarting and could not finish this plan. Please try again.",
    )
}

/// Ext: another replica took over a generation whose replica stopped.
pub fn restarted(lang: Language) -> String {
    pick(
        lang,
        "연결된 서버가 멈춰 다른 서버에서 계획 생성을 다시 시작합니다...",
        "The server making your plan stopped; another one is starting it again...",
    )
}

/// Ext: said to a stream's listeners on a replica that stalled and lost it to another, which goes on
/// with it; they read on from the shared log.
pub fn moved(lang: Language) -> String {
    pick(
        lang,
        "다른 서버가 계획 생성을 이어받았습니다. 그곳에서 이어서 받습니다...",
        "Another server took over making your plan; continuing from there...",
    )
}

/// The title of a plan: `서울 3일 여행` / `3 days in Seoul`.
pub fn plan_title(lang: Language, place: &str, days: u32) -> String {
    match lang {
        Language::Ko => format!("{place} {days}일 여행"),
        Language::En if days == 1 => format!("A day in {place}"),
        Language::En => format!("{days} days in {place}"),
    }
}

/// What an `error` event says to people.
pub fn error(lang: Language, code: ErrorCode) -> String {
    let (ko, en) = match code {
        ErrorCode::InvalidRequest => ("요청이 올바르지 않습니다.", "The request is not valid."),
        ErrorCode::UnknownDestination => ("알 수 없는 여행지입니다.", "We do not know this destination."),
        ErrorCode::LlmUnavailable => (
            "AI 서비스를 지금 사용할 수 없습니다. 잠시 후 다시 시도해 주세요.",
            "The AI service is unavailable right now. Please try again shortly.",
        ),
        ErrorCode::LlmRateLimited => (
            "AI 서비스 요청이 많아 잠시 처리할 수 없습니다. 잠시 후 다시 시도해 주세요.",
            "The AI service is receiving too many requests. Please try again in a minute.",
        ),
        ErrorCode::LlmBadOutput => (
            "AI가 올바른 여행 계획을 만들지 못했습니다. 다시 시도해 주세요.",
            "The AI could not produce a valid travel plan. Please try again.",
        ),
        ErrorCode::LlmTimeout => (
            "AI 응답이 너무 오래 걸려 중단했습니다. 다시 시도해 주세요.",
            "The AI took too long to answer. Please try again.",
        ),
        ErrorCode::WeatherUnavailable => ("날씨 정보를 가져올 수 없습니다.", "Weather information is unavailable."),
        ErrorCode::Timeout => {
            ("요청 처리 시간이 초과되었습니다. 다시 시도해 주세요.", "The request took too long. Please try again.")
        }
        ErrorCode::Internal => {
            ("서버에서 문제가 발생했습니다. 다시 시도해 주세요.", "Something went wrong on our side. Please try again.")
        }
        ErrorCode::Cancelled => ("여행 계획 생성이 취소되었습니다.", "Plan generation was cancelled."),
        ErrorCode::NotFound => ("찾을 수 없습니다.", "Not found."),
        ErrorCode::PlanNotFound => ("저장된 여행 계획을 찾을 수 없습니다.", "No such saved plan."),
        ErrorCode::ShareNotFound => ("공유 링크를 찾을 수 없습니다.", "No such share link."),
        ErrorCode::Unavailable => (
            "서비스를 잠시 사용할 수 없습니다. 잠시 후 다시 시도해 주세요.",
            "The service is briefly unavailable. Please try again shortly.",
        ),
        ErrorCode::Unauthorized => ("API 키가 필요하거나 올바르지 않습니다.", "An API key is missing or not valid."),
        ErrorCode::Forbidden => ("이 작업을 할 권한이 없습니다.", "This key may not do that."),
        ErrorCode::IdempotencyKeyReused => (
            "이 Idempotency-Key는 다른 요청에 이미 쓰였습니다.",
            "This Idempotency-Key was already used for another request.",
        ),
        ErrorCode::RateLimited => {
            ("요청이 너무 많습니다. 잠시 후 다시 시도해 주세요.", "Too many requests. Please try again in a moment.")
        }
        ErrorCode::QuotaExceeded => {
            ("오늘 사용할 수 있는 AI 사용량을 모두 썼습니다.", "Today's AI usage for this key is spent.")
        }
        ErrorCode::Overloaded => (
            "서버가 지금 너무 바쁩니다. 잠시 후 다시 시도해 주세요.",
            "The server is too busy right now. Please try again shortly.",
        ),
    };
    pick(lang, ko, en)
}

/// A shared plan's preview title in chat apps (Open Graph): "Seoul, 3 days".
pub fn share_title(lang: Language, location: &str, days: usize) -> String {
    match lang {
        Language::Ko => format!("{location}, {days}일"),
        Language::En if days == 1 => format!("{location}, 1 day"),
        Language::En => format!("{location}, {days} days"),
    }
}

/// A shared plan's preview description: its title, dates and total cost.
pub fn share_description(lang: Language, title: &str, dates: &str, total: &str) -> String {
    match lang {
        Language::Ko => format!("{title} · {dates} · 총 {total}"),
        Language::En => format!("{title} · {dates} · {total} in all"),
    }
}

fn pick(lang: Language, ko: &str, en: &str) -> String {
    match lang {
        Language::Ko => ko.to_owned(),
        Language::En => en.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn korean_strings_are_the_originals() {
        assert_eq!(gather_status(Language::Ko, "Seoul"), "Seoul의 날씨 정보를 수집하고 있습니다...");
        assert_eq!(draft_done(Language::Ko, 3), "3일 일정 초안 생성 완료");
        assert_eq!(refine_status(Language::Ko, 1, 2), "계획을 개선하고 있습니다 (1/2)...");
        assert_eq!(complete(Language::Ko), "여행 계획 생성 완료!");
        assert_eq!(plan_title(Language::Ko, "서울", 3), "서울 3일 여행");
    }

    #[test]
    fn english_strings_match_the_contract() {
        assert_eq!(gather_status(Language::En, "Seoul"), "Gathering weather for Seoul...");
        assert_eq!(draft_done(Language::En, 3), "3-day draft ready");
        assert_eq!(refine_done(Language::En, 2, 2), "Improvement done (2/2)");
        assert_eq!(complete(Language::En), "Your travel plan is ready!");
    }
}

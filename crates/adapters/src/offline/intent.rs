//! What a traveller's instruction for a regenerated day asks for ("more food, less walking", "실내 위주로,
//! 비 온대요"), read as the offline planner's preferences. Simple keyword intents in English and Korean;
//! what it does not recognise it ignores (an LLM reads the instruction itself).

use tripstream_domain::Category;

/// The instruction as preferences the itinerary algorithm can follow.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Preferences {
    /// Places of these kinds are favoured; each is a category and the catalog tags that mean it.
    pub wanted: Vec<Interest>,
    /// Places of these kinds are left out.
    pub unwanted: Vec<Interest>,
    /// Indoor places only (rain, "indoors").
    pub indoors: bool,
    /// Fewer places, close together.
    pub less_walking: bool,
    /// Breakfast out as well as lunch and dinner ("more food").
    pub more_meals: bool,
}

/// A kind of place: the categories and catalog tags that mean it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest {
    pub categories: &'static [Category],
    pub tags: &'static [&'static str],
}

impl Interest {
    pub fn matches(&self, category: Category, tags: &[String]) -> bool {
        self.categories.contains(&category) || tags.iter().any(|t| self.tags.contains(&t.as_str()))
    }
}

const FOOD: Interest = Interest { categories: &[Category::Food, Category::Cafe], tags: &["food", "markets"] };
const MUSEUM: Interest = Interest { categories: &[Category::Culture], tags: &["art", "history"] };
const NATURE: Interest = Interest { categories: &[Category::Nature], tags: &["nature"] };
const SHOPPING: Interest = Interest { categories: &[Category::Shopping], tags: &["shopping", "markets"] };
const NIGHT: Interest = Interest { categories: &[Category::Nightlife], tags: &["nightlife"] };
const HISTORY: Interest = Interest { categories: &[Category::Culture], tags: &["history", "architecture"] };
const VIEWS: Interest = Interest { categories: &[Category::Sightseeing], tags: &["views"] };
const FAMILY: Interest = Interest { categories: &[], tags: &["family"] };
const RELAX: Interest = Interest { categories: &[Category::Rest, Category::Cafe], tags: &["relaxation"] };
const ADVENTURE: Interest = Interest { categories: &[Category::Activity], tags: &["adventure"] };

/// English stems (a word is the stem, or starts with a stem of four letters or more: "museum" finds
/// "museums", "rain" finds "rainy" but not "train", "bar" does not find "barbecue") and Korean stems
/// (found anywhere in a word: Korean attaches particles).
const INTERESTS: &[(Interest, &[&str], &[&str])] = &[
    (
        FOOD,
        &["food", "eat", "eating", "restaurant", "cuisine", "meal", "dining", "snack"],
        &["음식", "맛집", "먹", "식당", "미식"],
    ),
    (MUSEUM, &["museum", "gallery", "galleries", "art", "arts", "exhibit"], &["박물관", "미술관", "전시", "갤러리"]),
    (
        NATURE,
        &["nature", "park", "garden", "hike", "hiking", "outdoor", "green", "mountain"],
        &["자연", "공원", "정원", "등산", "숲"],
    ),
    (SHOPPING, &["shop", "market", "mall", "boutique"], &["쇼핑", "시장", "상점", "백화점"]),
    (
        NIGHT,
        &["night", "nightlife", "bar", "bars", "pub", "pubs", "evening", "club"],
        &["야경", "밤", "야간", "나이트", "술집"],
    ),
    (
        HISTORY,
        &["history", "historic", "palace", "temple", "heritage", "culture", "cultural"],
        &["역사", "궁궐", "고궁", "사찰", "유적", "문화"],
    ),
    (VIEWS, &["view", "scenic", "skyline", "sunset"], &["전망", "풍경", "뷰"]),
    (FAMILY, &["kid", "kids", "child", "family", "families"], &["아이", "가족", "어린이"]),
    (
        RELAX,
        &["relax", "rest", "resting", "calm", "quiet", "slow", "easy", "cafe", "cafes", "coffee"],
        &["휴식", "여유", "느긋", "카페", "조용"],
    ),
    (ADVENTURE, &["adventure", "active", "sport", "thrill"], &["모험", "액티비티", "체험", "스포츠"]),
];

const INDOORS_EN: &[&str] = &["indoor", "inside", "rain", "wet", "storm", "umbrella"];
const INDOORS_KO: &[&str] =
    &["실내", "우천", "장마", "비가", "비 오", "비오", "비 온", "비온", "비와", "비 와", "비 소식"];
const LESS_WALKING_EN: &[&str] =
    &["less walking", "walk less", "less walk", "not much walking", "fewer places", "fewer stops", "tired"];
const LESS_WALKING_KO: &[&str] = &["덜 걷", "덜걷", "적게 걷", "조금 걷", "걷기 싫", "걷는 거 싫", "피곤", "적게 이동"];
const MORE_FOOD_EN: &[&str] = &["more food", "more eating", "more meals", "food tour"];
const MORE_FOOD_KO: &[&str] = &["맛집 위주", "먹방", "많이 먹", "음식 위주", "맛집 투어"];
/// English words that turn the next interest into one to avoid ("no museums", "without shopping").
const NOT_EN: &[&str] = &["no", "not", "without", "avoid", "skip", "fewer", "less", "nothing", "never", "hate"];
/// Korean words after an interest that mean "not that" ("박물관 말고", "쇼핑 빼고").
const NOT_KO: &[&str] = &["말고", "빼고", "없이", "제외", "싫", "아니"];

/// Reads an instruction. Case and punctuation do not matter; nothing in it is ever an error.
pub fn preferences(instruction: &str) -> Preferences {
    let text = instruction.to_lowercase();
    let words: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let spaced = words.join(" ");
    let has = |phrases: &[&str]| phrases.iter().any(|p| spaced.contains(p));
    let mut prefs = Preferences {
        indoors: has(INDOORS_KO) || words.iter().any(|w| *w == "비" || INDOORS_EN.iter().any(|s| stem_of(w, s))),
        less_walking: has(LESS_WALKING_EN) || has(LESS_WALKING_KO),
        more_meals: has(MORE_FOOD_EN) || has(MORE_FOOD_KO),
        ..Preferences::default()
    };
    for (interest, english, korean) in INTERESTS {
        let mut wanted = false;
        let mut unwanted = false;
        for (i, word) in words.iter().enumerate() {
            if english.iter().any(|k| stem_of(word, k)) {
                // "less walking" is about walking, not a dislike of what follows it.
                let negated = i > 0 && NOT_EN.contains(&words[i - 1]);
                if negated { unwanted = true } else { wanted = true }
            } else if korean.iter().any(|k| word.contains(k)) {
                let after = words.get(i + 1).copied().unwrap_or("");
                let negated = NOT_KO.iter().any(|n| word.ends_with(n) || after.starts_with(n));
                if negated { unwanted = true } else { wanted = true }
            }
        }
        // An interest both asked for and refused is taken as refused ("not museums, art galleries" is rare).
        if unwanted {
            prefs.unwanted.push(*interest);
        } else if wanted {
            prefs.wanted.push(*interest);
        }
    }
    if prefs.indoors {
        // "It will rain": outdoor nature is not what is wanted, whatever else was said.
        prefs.wanted.retain(|i| *i != NATURE);
    }
    prefs.more_meals |= prefs.wanted.contains(&FOOD);
    prefs
}

fn stem_of(word: &str, stem: &str) -> bool {
    word == stem || (stem.len() >= 4 && word.starts_with(stem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_intents_are_read() {
        let p = preferences("More food, less walking please!");
        assert!(p.more_meals && p.less_walking && !p.indoors);
        assert_eq!(p.wanted, vec![FOOD]);
        assert!(p.unwanted.is_empty(), "{p:?}");

        let p = preferences("Indoors, it will rain");
        assert!(p.indoors && !p.less_walking);
        let p = preferences("museums and a night view");
        assert_eq!(p.wanted, vec![MUSEUM, NIGHT, VIEWS]);
        assert!(!preferences("take the train").indoors, "rain is not train");
    }

    #[test]
    fn korean_intents_are_read() {
        let p = preferences("비가 온대요, 실내 위주로 박물관");
        assert!(p.indoors);
        assert_eq!(p.wanted, vec![MUSEUM]);
        let p = preferences("맛집 위주로, 덜 걷고 싶어요");
        assert!(p.more_meals && p.less_walking);
        assert_eq!(p.wanted, vec![FOOD]);
        assert_eq!(preferences("야경 보고 싶어요").wanted, vec![NIGHT]);
        assert!(!preferences("비싼 곳은 괜찮아요").indoors, "비싼 is expensive, not rain");
    }

    #[test]
    fn refusals_are_read_as_things_to_avoid() {
        let p = preferences("no shopping, nature instead");
        assert_eq!((p.wanted, p.unwanted), (vec![NATURE], vec![SHOPPING]));
        let p = preferences("쇼핑 말고 자연");
        assert_eq!((p.wanted, p.unwanted), (vec![NATURE], vec![SHOPPING]));
        assert_eq!(preferences(""), Preferences::default());
    }
}

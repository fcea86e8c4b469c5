//! What the providers' stream frames have in common: each carries a piece of the answer and, at the
//! end, why it stopped, inside lists (Gemini's candidates and their parts, OpenAI's choices) that hold
//! one element nearly always. A reply is forty frames or more, so each frame's answer is folded as the
//! frame is read — no list is kept — and its text is borrowed from the frame where it has no escapes.

use std::borrow::Cow;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, SeqAccess, Visitor};

use super::Finish;

/// A frame's answer: the text of its pieces, in order, and the last finish reason given.
#[derive(Debug, Default, PartialEq)]
pub struct Answer<'a> {
    pub text: Option<Cow<'a, str>>,
    pub finish_reason: Option<Cow<'a, str>>,
}

impl<'a> Answer<'a> {
    /// Adds a piece of text; an empty one is none. The first is kept as it came.
    pub fn push(&mut self, more: Text<'a>) {
        if more.0.is_empty() {
            return;
        }
        match &mut self.text {
            None => self.text = Some(more.0),
            Some(text) => text.to_mut().push_str(&more.0),
        }
    }

    /// Hands the text on, and records why the reply stopped: the provider's words for a natural end
    /// (`stop`) and for running out of tokens (`max_tokens`); any other reason is a block.
    pub fn deliver(self, on_text: &mut dyn FnMut(&str), finish: &mut Option<Finish>, stop: &str, max_tokens: &str) {
        if let Some(text) = self.text {
            on_text(&text);
        }
        if let Some(reason) = self.finish_reason {
            *finish = Some(match &*reason {
                r if r == stop => Finish::Stop,
                r if r == max_tokens => Finish::MaxTokens,
                _ => Finish::Blocked(reason.into_owned()),
            });
        }
    }

    /// Adds another element's answer: its text after this one's, its finish reason over this one's.
    pub fn extend(&mut self, other: Answer<'a>) {
        if let Some(text) = other.text {
            self.push(Text(text));
        }
        if other.finish_reason.is_some() {
            self.finish_reason = other.finish_reason;
        }
    }
}

/// A JSON list read element by element into `V`, `each` folding every element in as it is read.
pub fn fold_list<'de, D, T, V>(deserializer: D, what: &'static str, each: impl FnMut(&mut V, T)) -> Result<V, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
    V: Default,
{
    struct Fold<T, V, F>(&'static str, F, PhantomData<(T, V)>);
    impl<'de, T: Deserialize<'de>, V: Default, F: FnMut(&mut V, T)> Visitor<'de> for Fold<T, V, F> {
        type Value = V;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str(self.0)
        }

        fn visit_seq<A: SeqAccess<'de>>(mut self, mut list: A) -> Result<V, A::Error> {
            let mut value = V::default();
            while let Some(element) = list.next_element::<T>()? {
                (self.1)(&mut value, element);
            }
            Ok(value)
        }
    }
    deserializer.deserialize_seq(Fold(what, each, PhantomData))
}

/// A piece of text that may be `null` or absent (empty then), borrowed from the frame where it has no
/// escapes. serde borrows a bare `Cow<str>` field marked `borrow`, but copies one inside an `Option`.
#[derive(Debug, Default, PartialEq)]
pub struct Text<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Read<'a>(PhantomData<Text<'a>>);
        impl<'de: 'a, 'a> Visitor<'de> for Read<'a> {
            type Value = Text<'a>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or null")
            }

            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(text)))
            }

            fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }

            fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text)))
            }

            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Text::default())
            }

            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Text::default())
            }

            fn visit_some<D: Deserializer<'de>>(self, text: D) -> Result<Self::Value, D::Error> {
                text.deserialize_str(self)
            }
        }
        deserializer.deserialize_option(Read(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Piece<'a> {
        #[serde(default, borrow)]
        text: Text<'a>,
    }

    #[test]
    fn text_is_borrowed_without_escapes_and_empty_when_null_or_absent() {
        let text = |json: &str| {
            let piece: Piece = serde_json::from_str(json).unwrap();
            (matches!(piece.text.0, Cow::Borrowed(_)), piece.text.0.into_owned())
        };
        assert_eq!(text(r#"{"text": "Day 1"}"#), (true, "Day 1".to_owned()));
        assert_eq!(text(r#"{"text": "a\"b\n"}"#), (false, "a\"b\n".to_owned()));
        assert_eq!(text(r#"{"text": null}"#).1, "");
        assert_eq!(text("{}").1, "");
        for refused in [r#"{"text": 1}"#, r#"{"text": ["a"]}"#, r#"{"text": {}}"#] {
            assert!(serde_json::from_str::<Piece>(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn answers_add_up_in_order_and_the_last_finish_reason_wins() {
        let text = |t: &'static str| Text(Cow::Borrowed(t));
        let mut answer = Answer::default();
        answer.push(text(""));
        assert_eq!(answer, Answer::default(), "an empty piece is none");
        answer.push(text("a"));
        assert!(matches!(answer.text, Some(Cow::Borrowed("a"))), "one piece stays borrowed");
        answer.extend(Answer { text: Some("b".into()), finish_reason: Some("length".into()) });
        answer.extend(Answer { text: None, finish_reason: Some("stop".into()) });
        answer.extend(Answer::default());
        assert_eq!(answer, Answer { text: Some("ab".into()), finish_reason: Some("stop".into()) });
    }

    #[test]
    fn an_answer_is_delivered_with_the_providers_words_for_its_end() {
        let deliver = |text: Option<&'static str>, reason: Option<&'static str>, finish: Option<Finish>| {
            let (mut got, mut finish) = (Vec::new(), finish);
            let answer = Answer { text: text.map(Cow::Borrowed), finish_reason: reason.map(Cow::Borrowed) };
            answer.deliver(&mut |t: &str| got.push(t.to_owned()), &mut finish, "STOP", "MAX_TOKENS");
            (got, finish)
        };
        assert_eq!(deliver(Some("a"), None, None), (vec!["a".to_owned()], None));
        assert_eq!(deliver(None, Some("STOP"), None), (vec![], Some(Finish::Stop)));
        assert_eq!(deliver(None, Some("MAX_TOKENS"), None), (vec![], Some(Finish::MaxTokens)));
        assert_eq!(deliver(None, Some("SAFETY"), None), (vec![], Some(Finish::Blocked("SAFETY".into()))));
        assert_eq!(deliver(None, None, Some(Finish::Stop)), (vec![], Some(Finish::Stop)), "an earlier end stays");
    }
}

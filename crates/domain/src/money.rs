//! Formatting amounts the way people of each currency read them: ₩64,000, ¥12,000, €85, $120, ฿900.

/// The symbol of an ISO 4217 currency, or the code itself followed by a space.
pub fn symbol(currency: &str) -> &str {
    match currency {
        "KRW" => "₩",
        "JPY" => "¥",
        "EUR" => "€",
        "USD" => "$",
        "THB" => "฿",
        "GBP" => "£",
        "CNY" => "CN¥",
        _ => "",
    }
}

/// `format_amount("KRW", 64000)` is `₩64,000`; an unknown currency reads `64,000 CHF`.
pub fn format_amount(currency: &str, amount: u64) -> String {
    let digits = amount.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match symbol(currency) {
        "" => format!("{grouped} {currency}"),
        s => format!("{s}{grouped}"),
    }
}

/// The sum of `amounts`, or `None` when it does not fit in a `u64`. Money is always added this way: a
/// sum that wrapped would read as a small amount and pass the budget rule.
pub fn checked_sum(amounts: impl IntoIterator<Item = u64>) -> Option<u64> {
    amounts.into_iter().try_fold(0u64, u64::checked_add)
}

#[cfg(test)]
mod tests {
    use super::{checked_sum, format_amount};

    #[test]
    fn sums_that_do_not_fit_are_none_never_wrapped() {
        assert_eq!(checked_sum([1, 2, 3]), Some(6));
        assert_eq!(checked_sum([]), Some(0));
        assert_eq!(checked_sum([u64::MAX, 0]), Some(u64::MAX));
        assert_eq!(checked_sum([u64::MAX, 1]), None);
        assert_eq!(checked_sum([u64::MAX / 2 + 1, u64::MAX / 2 + 1]), None);
    }

    #[test]
    fn amounts_are_grouped_with_the_currency_symbol() {
        assert_eq!(format_amount("KRW", 64000), "₩64,000");
        assert_eq!(format_amount("KRW", 0), "₩0");
        assert_eq!(format_amount("JPY", 1234567), "¥1,234,567");
        assert_eq!(format_amount("EUR", 85), "€85");
        assert_eq!(format_amount("CHF", 100), "100 CHF");
    }
}

//! Values written as text — CSV fields, JSON number literals — and when a typed column holds
//! them exactly. Every parser here accepts a value only if the type it yields represents the
//! text's value exactly; anything else stays text (CSV) or is refused (JSON numbers).

use arrow::datatypes::TimeUnit;

/// An integer literal `-?(0|[1-9][0-9]*)` that fits an i64. Leading zeros and `+` are not
/// integers (a column of `007` codes stays text, so `007` comes back as `007`), nor is `-0`.
pub fn integer(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0";
    if canonical { text.parse().ok() } else { None }
}

/// A decimal literal `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` as its sign, its
/// significant digits and the power of ten of the last one; zero has no digits.
fn decimal(text: &str) -> Option<(bool, Vec<u8>, i64)> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (mantissa, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || (whole.len() > 1 && whole.starts_with('0')) {
        return None;
    }
    if fraction.is_some_and(|f| !all_digits(f)) {
        return None;
    }
    let mut power: i64 = match exponent {
        None => 0,
        Some(e) => {
            let unsigned = e.strip_prefix(['+', '-']).unwrap_or(e);
            if !all_digits(unsigned) {
                return None;
            }
            // Saturate: an exponent this far out is never exact in f64 anyway.
            let magnitude = unsigned
                .parse::<i64>()
                .unwrap_or(i64::MAX / 4)
                .min(i64::MAX / 4);
            if e.starts_with('-') {
                -magnitude
            } else {
                magnitude
            }
        }
    };
    let fraction = fraction.unwrap_or("");
    power -= fraction.len() as i64;
    let mut digits: Vec<u8> = whole.bytes().chain(fraction.bytes()).collect();
    let leading = digits.iter().take_while(|&&d| d == b'0').count();
    digits.drain(..leading);
    while digits.last() == Some(&b'0') {
        digits.pop();
        power += 1;
    }
    if digits.is_empty() {
        power = 0;
    }
    Some((negative, digits, power))
}

/// A decimal literal (see [`decimal`]) whose value a 64-bit float holds exactly: the text
/// and the shortest decimal that reads back as the parsed double are the same number. So
/// `0.1` and `2.50` are exact, `9007199254740993` (2^53 + 1) and `0.30000000000000001` are not.
pub fn exact_float(text: &str) -> Option<f64> {
    let written = decimal(text)?;
    let value: f64 = text.parse().ok()?;
    if !value.is_finite() {
        return None;
    }
    // Fast path: distinct decimals of at most 15 significant digits are further apart than
    // doubles (10^-14 relative against 2^-52), so in the normal range such a decimal is
    // always the shortest form of the double it parses to.
    let magnitude = written.2 + written.1.len() as i64;
    if written.1.len() <= 15 && (-290..=290).contains(&magnitude) {
        return Some(value);
    }
    let shortest = decimal(&format!("{value:e}"))?;
    (written == shortest).then_some(value)
}

/// Whether `text` is a decimal literal at all (for JSON numbers, which are, by grammar).
pub fn is_decimal(text: &str) -> bool {
    decimal(text).is_some()
}

/// `true` or `false`, in any case.
pub fn boolean(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn number(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    bytes.iter().try_fold(0i64, |n, &b| {
        n.checked_mul(10)?.checked_add(i64::from(b - b'0'))
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A calendar date `YYYY-MM-DD` (years 0000–9999) as days since 1970-01-01.
pub fn date(text: &str) -> Option<i32> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (number(&b[..4])?, number(&b[5..7])?, number(&b[8..10])?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month {
        return None;
    }
    i32::try_from(days_from_civil(year, month, day)).ok()
}

/// A timestamp as CSV text writes it: `YYYY-MM-DD[T ]HH:MM:SS[.f{1,9}]`, then nothing (a
/// local time, no zone) or `Z` or `±HH:MM` (an instant).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp {
    /// Nanoseconds since the epoch, UTC for an instant (offset applied).
    pub nanos: i128,
    /// Digits after the decimal point (0–9): the unit the value needs.
    pub fraction_digits: u32,
    pub has_offset: bool,
}

pub fn timestamp(text: &str) -> Option<Timestamp> {
    let b = text.as_bytes();
    if b.len() < 19 || !matches!(b[10], b'T' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let days = date(text.get(..10)?)?;
    let (hour, minute, second) = (
        number(&b[11..13])?,
        number(&b[14..16])?,
        number(&b[17..19])?,
    );
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let (mut fraction_nanos, mut fraction_digits) = (0i64, 0u32);
    if let Some(after) = rest.strip_prefix(b".") {
        let digits = after.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        fraction_digits = digits as u32;
        fraction_nanos = number(&after[..digits])? * 10i64.pow(9 - fraction_digits);
        rest = &after[digits..];
    }
    let (offset_seconds, has_offset) = match rest {
        [] => (0, false),
        [b'Z' | b'z'] => (0, true),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (number(&[*h1, *h2])?, number(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let magnitude = h * 3600 + m * 60;
            (if *sign == b'-' { -magnitude } else { magnitude }, true)
        }
        _ => return None,
    };
    let seconds = i64::from(days) * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(Timestamp {
        nanos: i128::from(seconds) * 1_000_000_000 + i128::from(fraction_nanos),
        fraction_digits,
        has_offset,
    })
}

/// The coarsest unit Parquet can store (never seconds) that holds `fraction_digits` digits.
pub fn unit_for(fraction_digits: u32) -> TimeUnit {
    match fraction_digits {
        0..=3 => TimeUnit::Millisecond,
        4..=6 => TimeUnit::Microsecond,
        _ => TimeUnit::Nanosecond,
    }
}

/// `nanos` in `unit`, if it fits an i64 there (nanoseconds cover only 1677–2262).
pub fn in_unit(nanos: i128, unit: TimeUnit) -> Option<i64> {
    let per = match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    };
    debug_assert_eq!(nanos % per, 0, "the unit holds every digit of the value");
    i64::try_from(nanos / per).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_canonical_decimal_literals_that_fit_an_i64() {
        assert_eq!(integer("0"), Some(0));
        assert_eq!(integer("-12"), Some(-12));
        assert_eq!(integer("9223372036854775807"), Some(i64::MAX));
        for text in [
            "007",
            "+1",
            "-0",
            "",
            "-",
            "1.0",
            "9223372036854775808",
            " 1",
        ] {
            assert_eq!(integer(text), None, "{text}");
        }
    }

    #[test]
    fn a_float_is_exact_only_if_its_shortest_form_is_the_same_number() {
        assert_eq!(exact_float("0.1"), Some(0.1));
        assert_eq!(exact_float("2.50"), Some(2.5));
        assert_eq!(exact_float("-1.5e3"), Some(-1500.0));
        assert_eq!(
            exact_float("9007199254740992"),
            Some(9_007_199_254_740_992.0)
        );
        assert_eq!(exact_float("-0.0"), Some(-0.0));
        for text in [
            "9007199254740993",
            "0.30000000000000001",
            "1e400",
            "NaN",
            "inf",
            ".5",
            "5.",
        ] {
            assert_eq!(exact_float(text), None, "{text}");
        }
    }

    proptest::proptest! {
        #[test]
        fn every_double_written_shortest_is_exact(f in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO) {
            proptest::prop_assert_eq!(exact_float(&format!("{f}")).map(f64::to_bits), Some(f.to_bits()));
            proptest::prop_assert_eq!(exact_float(&format!("{f:e}")).map(f64::to_bits), Some(f.to_bits()));
        }

        #[test]
        fn the_fast_path_agrees_with_the_shortest_form(digits in "[1-9][0-9]{0,14}", point in 0usize..16, exponent in -300i32..300) {
            let point = point.min(digits.len());
            let whole = if point == 0 { "0" } else { &digits[..point] };
            let text = format!("{whole}.{}0e{exponent}", &digits[point..]);
            let value: f64 = text.parse().unwrap();
            let shortest = decimal(&format!("{value:e}"));
            let slow = (value.is_finite() && decimal(&text) == shortest).then_some(value);
            proptest::prop_assert_eq!(exact_float(&text), slow, "{}", text);
        }
    }

    #[test]
    fn timestamps_with_an_offset_are_normalized_to_utc() {
        let t = timestamp("2024-03-01T12:00:00+02:00").unwrap();
        assert_eq!(t.nanos, 1_709_287_200 * 1_000_000_000);
        assert!(t.has_offset);
        let t = timestamp("1969-12-31 23:59:59.123456").unwrap();
        assert_eq!(t.nanos, -876_544_000);
        assert_eq!(t.fraction_digits, 6);
        assert!(!t.has_offset);
        for text in [
            "2024-02-30T00:00:00",
            "2024-01-01T24:00:00",
            "2024-01-01T00:00:00+2",
            "2024-01-01T00:00",
        ] {
            assert_eq!(timestamp(text), None, "{text}");
        }
    }
}

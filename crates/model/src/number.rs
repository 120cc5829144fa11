//! DynamoDB numbers: exact decimals with at most 38 significant digits and a magnitude between
//! 1E-130 and 9.9999999999999999999999999999999999999E+125 (or zero).
//!
//! A [`Number`] is always normalized (no trailing zeros, `-0` is `0`), so equal values have
//! equal representations, equal key encodings and equal bytes on disk.

use crate::error::ApiError;
use bigdecimal::BigDecimal;
use bigdecimal::num_bigint::Sign;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// Largest number of significant digits DynamoDB stores.
pub const MAX_DIGITS: u64 = 38;
/// Largest adjusted exponent (the `125` of `9.99…E+125`).
pub const MAX_EXPONENT: i64 = 125;
/// Smallest adjusted exponent (the `-130` of `1E-130`).
pub const MIN_EXPONENT: i64 = -130;

/// Longest number string given to the decimal parser, whose cost grows with the square of the
/// length: every number DynamoDB can hold fits with room to spare (38 digits and up to 130
/// zeros written out, or an exponent), so a longer one is refused before any arithmetic.
pub const MAX_NUMBER_CHARS: usize = 512;

const TOO_MANY_DIGITS: &str = "Attempting to store more than 38 significant digits in a Number";

const OVERFLOW: &str =
    "Number overflow. Attempting to store a number with magnitude larger than supported range";

/// An exact DynamoDB number.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Number(BigDecimal);

impl Number {
    /// Parses and validates a number as DynamoDB does, with DynamoDB's error messages.
    pub fn parse(s: &str) -> Result<Number, ApiError> {
        let not_a_number = || {
            ApiError::validation(if s.is_empty() {
                "The parameter cannot be converted to a numeric value".to_owned()
            } else {
                format!("The parameter cannot be converted to a numeric value: {s}")
            })
        };
        if !is_number_syntax(s) {
            return Err(not_a_number());
        }
        if significant_digits(s) > MAX_DIGITS as usize {
            return Err(ApiError::validation(TOO_MANY_DIGITS));
        }
        if s.len() > MAX_NUMBER_CHARS {
            return Err(not_a_number());
        }
        let d = BigDecimal::from_str(s).map_err(|_| not_a_number())?;
        Number::from_decimal(d)
    }

    /// Validates an arbitrary decimal (e.g. the result of arithmetic).
    pub fn from_decimal(d: BigDecimal) -> Result<Number, ApiError> {
        let d = d.normalized();
        if d.is_zero_value() {
            return Ok(Number(BigDecimal::from(0)));
        }
        if d.digits() > MAX_DIGITS {
            return Err(ApiError::validation(TOO_MANY_DIGITS));
        }
        let adj = adjusted_exponent(&d);
        if adj > MAX_EXPONENT {
            return Err(ApiError::validation(OVERFLOW));
        }
        if adj < MIN_EXPONENT {
            return Err(ApiError::validation(
                "Number underflow. Attempting to store a number with magnitude smaller than supported range",
            ));
        }
        Ok(Number(d))
    }

    /// The underlying decimal.
    pub fn as_decimal(&self) -> &BigDecimal {
        &self.0
    }

    /// `self + other`, validated.
    pub fn add(&self, other: &Number) -> Result<Number, ApiError> {
        Number::arithmetic(&self.0 + &other.0)
    }

    /// `self - other`, validated.
    pub fn sub(&self, other: &Number) -> Result<Number, ApiError> {
        Number::arithmetic(&self.0 - &other.0)
    }

    /// The result of `+`/`-`: DynamoDB reports a result needing more than 38 digits (e.g.
    /// `1E50 - 1`) as an overflow, not with the "38 significant digits" message of an input.
    fn arithmetic(d: BigDecimal) -> Result<Number, ApiError> {
        let d = d.normalized();
        if d.digits() > MAX_DIGITS && !d.is_zero_value() {
            return Err(ApiError::validation(OVERFLOW));
        }
        Number::from_decimal(d)
    }

    /// Sign: -1, 0 or 1.
    pub fn signum(&self) -> i8 {
        match self.0.sign() {
            Sign::Minus => -1,
            Sign::NoSign => 0,
            Sign::Plus => 1,
        }
    }

    /// The significant digits (no leading or trailing zeros) and the exponent `e` such that
    /// `|self| = 0.d1d2…dn × 10^e`. `None` for zero.
    pub fn digits_and_exponent(&self) -> Option<(Vec<u8>, i64)> {
        if self.signum() == 0 {
            return None;
        }
        let (int, scale) = self.0.as_bigint_and_exponent();
        let digits: Vec<u8> = int
            .magnitude()
            .to_string()
            .bytes()
            .map(|b| b.wrapping_sub(b'0'))
            .collect();
        let e = digits.len() as i64 - scale;
        Some((digits, e))
    }

    /// Approximate number of bytes DynamoDB counts for this number.
    pub fn size(&self) -> usize {
        match self.digits_and_exponent() {
            None => 1,
            Some((d, _)) => d.len().div_ceil(2) + 1,
        }
    }
}

fn adjusted_exponent(d: &BigDecimal) -> i64 {
    let (_, scale) = d.as_bigint_and_exponent();
    d.digits() as i64 - 1 - scale
}

trait IsZero {
    fn is_zero_value(&self) -> bool;
}
impl IsZero for BigDecimal {
    fn is_zero_value(&self) -> bool {
        self.sign() == Sign::NoSign
    }
}

/// `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?`
/// Significant digits of a number in valid syntax (leading and trailing zeros of the mantissa do
/// not count), in one pass over the string.
fn significant_digits(s: &str) -> usize {
    let mantissa = s.split(['e', 'E']).next().unwrap_or_default();
    let digits = mantissa.bytes().filter(u8::is_ascii_digit);
    let mut first_nonzero = None;
    let mut last_nonzero = 0usize;
    for (i, d) in digits.enumerate() {
        if d != b'0' {
            first_nonzero.get_or_insert(i);
            last_nonzero = i;
        }
    }
    first_nonzero.map_or(0, |f| last_nonzero - f + 1)
}

fn is_number_syntax(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    let int_start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let mut digits = i - int_start;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == exp_start || i - exp_start > 6 {
            return false;
        }
    }
    i == b.len()
}

impl fmt::Display for Number {
    /// Plain notation, as DynamoDB returns numbers (`1E+2` → `100`, `1.50` → `1.5`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (int, scale) = self.0.as_bigint_and_exponent();
        let digits = int.magnitude().to_string();
        if int.sign() == Sign::Minus {
            f.write_str("-")?;
        }
        if scale <= 0 {
            f.write_str(&digits)?;
            for _ in 0..(-scale) {
                f.write_str("0")?;
            }
            Ok(())
        } else {
            let scale = scale as usize;
            if scale >= digits.len() {
                f.write_str("0.")?;
                for _ in 0..(scale - digits.len()) {
                    f.write_str("0")?;
                }
                f.write_str(&digits)
            } else {
                let (a, b) = digits.split_at(digits.len() - scale);
                write!(f, "{a}.{b}")
            }
        }
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "N({self})")
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0)
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl From<i64> for Number {
    fn from(v: i64) -> Self {
        Number(BigDecimal::from(v).normalized())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Number {
        Number::parse(s).expect(s)
    }

    #[test]
    fn normalizes_like_dynamodb() {
        for (input, out) in [
            ("1", "1"),
            ("1.50", "1.5"),
            ("-0", "0"),
            ("0.000", "0"),
            ("1E+2", "100"),
            ("1e2", "100"),
            ("+7", "7"),
            (".5", "0.5"),
            ("5.", "5"),
            ("-12.340e-3", "-0.01234"),
            ("00012", "12"),
        ] {
            assert_eq!(n(input).to_string(), out, "{input}");
        }
    }

    #[test]
    fn huge_number_strings_are_refused_before_parsing() {
        let digits = "7".repeat(2_000_000);
        let started = std::time::Instant::now();
        let err = Number::parse(&digits).unwrap_err();
        assert!(matches!(err, ApiError::Validation(m) if m.contains("38 significant digits")));
        let zeros = format!("0.{}1", "0".repeat(1_000_000));
        assert!(Number::parse(&zeros).is_err());
        // The decimal parse of these would take minutes; the checks before it are linear.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // Zeros around 38 digits are not significant: the limit is on length only past 512.
        assert_eq!(
            n(&format!("000{}00.000", "9".repeat(38))).to_string().len(),
            40
        );
        assert_eq!(n(&format!("0.{}1", "0".repeat(129))).to_string().len(), 132);
    }

    #[test]
    fn keeps_38_digits_exactly() {
        let s = "12345678901234567890123456789012345678";
        assert_eq!(n(s).to_string(), s);
        let s = "-0.12345678901234567890123456789012345678";
        assert_eq!(n(s).to_string(), s);
        let err = Number::parse("123456789012345678901234567890123456789").unwrap_err();
        assert!(matches!(err, ApiError::Validation(m) if m.contains("38 significant digits")));
    }

    #[test]
    fn range_limits() {
        assert!(Number::parse("9.9999999999999999999999999999999999999E+125").is_ok());
        assert!(Number::parse("1E-130").is_ok());
        assert!(
            matches!(Number::parse("1E+126"), Err(ApiError::Validation(m)) if m.contains("overflow"))
        );
        assert!(
            matches!(Number::parse("1E-131"), Err(ApiError::Validation(m)) if m.contains("underflow"))
        );
    }

    #[test]
    fn rejects_non_numbers() {
        for bad in [
            "",
            "abc",
            "1.2.3",
            "NaN",
            "Infinity",
            "1e",
            " 1",
            "1 ",
            "--1",
            ".",
            "0x10",
            "1e9999999",
        ] {
            assert!(Number::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn arithmetic_is_exact_and_validated() {
        assert_eq!(n("0.1").add(&n("0.2")).expect("add").to_string(), "0.3");
        assert_eq!(n("10").sub(&n("10.5")).expect("sub").to_string(), "-0.5");
        assert!(
            n("9.9999999999999999999999999999999999999E+125")
                .add(&n("9E+125"))
                .is_err()
        );
    }

    #[test]
    fn imprecise_arithmetic_is_an_overflow_as_in_dynamodb() {
        for r in [n("1E50").sub(&n("1")), n("1E50").add(&n("1"))] {
            match r {
                Err(ApiError::Validation(m)) => assert!(m.starts_with("Number overflow"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
        // An input with too many digits keeps its own message.
        match Number::parse("1.000000000000000000000000000000000000001") {
            Err(ApiError::Validation(m)) => assert!(m.contains("38 significant digits"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(n("1E50").sub(&n("1E50")).is_ok());
    }

    #[test]
    fn non_numbers_are_refused_in_dynamodb_words() {
        for (s, want) in [
            (
                "dog",
                "The parameter cannot be converted to a numeric value: dog",
            ),
            (
                "NaN",
                "The parameter cannot be converted to a numeric value: NaN",
            ),
            ("", "The parameter cannot be converted to a numeric value"),
        ] {
            match Number::parse(s) {
                Err(ApiError::Validation(m)) => assert_eq!(m, want),
                other => panic!("{s:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn equal_values_are_equal() {
        assert_eq!(n("1.0"), n("1"));
        assert_eq!(n("100"), n("1e2"));
        assert!(n("-1") < n("0.0001"));
    }
}

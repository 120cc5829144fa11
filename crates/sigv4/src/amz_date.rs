//! The `X-Amz-Date` timestamp (`YYYYMMDDTHHMMSSZ`, UTC) to and from Unix seconds.
//!
//! Hand-written (Howard Hinnant's civil-date algorithms) to keep this crate free of a date
//! library for two conversions.

const SECS_PER_DAY: i64 = 86_400;

/// Parses `YYYYMMDDTHHMMSSZ` into Unix seconds; `None` unless it is exactly that shape and a real
/// calendar time.
pub(crate) fn parse(s: &str) -> Option<i64> {
    let [y @ .., b'T', h0, h1, m0, m1, s0, s1, b'Z'] = s.as_bytes() else {
        return None;
    };
    let [y0, y1, y2, y3, mo0, mo1, d0, d1] = y else {
        return None;
    };
    let year = digits(&[*y0, *y1, *y2, *y3])?;
    let (month, day) = (digits(&[*mo0, *mo1])?, digits(&[*d0, *d1])?);
    let (hour, minute, second) = (
        digits(&[*h0, *h1])?,
        digits(&[*m0, *m1])?,
        digits(&[*s0, *s1])?,
    );
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    valid.then(|| {
        days_from_civil(year, month, day) * SECS_PER_DAY + hour * 3600 + minute * 60 + second
    })
}

/// Formats Unix seconds as `YYYYMMDDTHHMMSSZ`.
pub(crate) fn format(unix_secs: i64) -> String {
    let (days, secs) = (
        unix_secs.div_euclid(SECS_PER_DAY),
        unix_secs.rem_euclid(SECS_PER_DAY),
    );
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (secs / 3600, secs % 3600 / 60, secs % 60);
    format!("{year:04}{month:02}{day:02}T{hour:02}{minute:02}{second:02}Z")
}

fn digits(ds: &[u8]) -> Option<i64> {
    ds.iter().try_fold(0, |acc, d| {
        d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::{format, parse};

    #[test]
    fn round_trips_the_suite_date() {
        assert_eq!(parse("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(format(1_440_938_160), "20150830T123600Z");
        assert_eq!(
            parse("20000229T000000Z").map(format).as_deref(),
            Some("20000229T000000Z")
        );
        assert_eq!(format(0), "19700101T000000Z");
    }

    #[test]
    fn rejects_anything_else() {
        for bad in [
            "",
            "20150830T123600",
            "2015-08-30T12:36:00Z",
            "20150830t123600Z",
            "20151330T123600Z",
            "20150230T123600Z",
            "19000229T000000Z",
            "20150830T243600Z",
            "20150830T126000Z",
            "2015083OT123600Z",
            "+2015830T123600Z",
            "20150830T123600Zé",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}

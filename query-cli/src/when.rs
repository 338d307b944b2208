//! Times given on the command line: an instant, an age, or a calendar period, in the zone of
//! `--tz` (UTC unless it or `TZ` says otherwise).
//!
//! - an instant: RFC 3339 (`2026-02-10T01:02:03Z`, an offset, fractions);
//! - an age before now: `45min`, `12h`, `30d`, `2w`, `3mo`, `1y` (months and years by the
//!   calendar); `m` alone is refused, being minutes to some and months to others;
//! - a period: a day `2026-02-10`, a month `2026-02`, a quarter `2026-Q3`, a year `2026`.
//!
//! `--since` takes the start of a period and `--until` its end, so `--since 2026-03 --until
//! 2026-04` is March and April whole, and `--until 2026-04-30` takes in the 30th.

use anyhow::{bail, Result};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, ToSpan, Zoned};

/// What a time given on the command line names: seconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    /// One moment.
    Instant(i64),
    /// A day, month, quarter or year: its first second, and the first second after it.
    Period { start: i64, end: i64 },
}

const HINT: &str = "use RFC 3339 (2026-02-10T08:00:00Z), a day (2026-02-10), a month (2026-02), a quarter (2026-Q3), a year (2026), or an age (45min, 12h, 30d, 2w, 3mo, 1y)";

/// The start of what `s` names, a period taken in `tz`: for `--since`.
pub fn since(s: &str, tz: &TimeZone) -> Result<i64> {
    Ok(match parse(s, Zoned::now().with_time_zone(tz.clone()))? {
        When::Instant(t) => t,
        When::Period { start, .. } => start,
    })
}

/// The end of what `s` names (the first second after a period taken in `tz`): for `--until`.
pub fn until(s: &str, tz: &TimeZone) -> Result<i64> {
    Ok(match parse(s, Zoned::now().with_time_zone(tz.clone()))? {
        When::Instant(t) => t,
        When::Period { end, .. } => end,
    })
}

/// `--since` and `--until` together: an empty or inverted window is refused, saying why.
pub fn window(
    since_arg: Option<&str>,
    until_arg: Option<&str>,
    tz: &TimeZone,
) -> Result<(Option<i64>, Option<i64>)> {
    let since = since_arg.map(|s| since(s, tz)).transpose()?;
    let until = until_arg.map(|u| until(u, tz)).transpose()?;
    if let (Some(s), Some(u), Some(a), Some(b)) = (since, until, since_arg, until_arg) {
        if s >= u {
            bail!(
                "--since {a} ({}) is not before --until {b} ({}): no session can start in that window",
                show(s),
                show(u)
            );
        }
    }
    Ok((since, until))
}

fn show(t: i64) -> String {
    Timestamp::from_second(t)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| t.to_string())
}

fn parse(s: &str, now: Zoned) -> Result<When> {
    let s = s.trim();
    if let Some(t) = indexer::model::parse_time(s).filter(|_| s.contains('T') || s.contains(' ')) {
        return Ok(When::Instant(t));
    }
    if let Some(p) = period(s, now.time_zone())? {
        return Ok(p);
    }
    if let Some(span) = age(s)? {
        let then = now
            .checked_sub(span)
            .map_err(|e| anyhow::anyhow!("{s}: {e}"))?;
        return Ok(When::Instant(then.timestamp().as_second()));
    }
    bail!("not a time: {HINT}")
}

/// A day, month, quarter or year, in `tz`.
fn period(s: &str, tz: &TimeZone) -> Result<Option<When>> {
    // A part of exactly `len` digits.
    let digits = |p: &str, len: usize| -> Option<i16> {
        (p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    let parts: Vec<&str> = s.split('-').collect();
    // Year, month and day of its first day, and how long it lasts.
    let (y, m, d, length) = match parts.as_slice() {
        [y] => (digits(y, 4), Some(1), Some(1), 1.year()),
        [y, q] if y.len() == 4 && (q.starts_with('Q') || q.starts_with('q')) => {
            let Some(q) = digits(&q[1..], 1).filter(|q| (1..=4).contains(q)) else {
                bail!("{s}: a quarter is YYYY-Q1 to YYYY-Q4");
            };
            (digits(y, 4), Some((q - 1) * 3 + 1), Some(1), 3.months())
        }
        [y, m] => (digits(y, 4), digits(m, 2), Some(1), 1.month()),
        [y, m, d] => (digits(y, 4), digits(m, 2), digits(d, 2), 1.day()),
        _ => return Ok(None),
    };
    let (Some(y), Some(m), Some(d)) = (y, m, d) else {
        return Ok(None);
    };
    let first = date(s, y, m, d)?;
    let next = first
        .checked_add(length)
        .map_err(|e| anyhow::anyhow!("{s}: {e}"))?;
    let at = |d: Date| -> Result<i64> {
        Ok(d.to_zoned(tz.clone())
            .map_err(|e| anyhow::anyhow!("{s}: {e}"))?
            .timestamp()
            .as_second())
    };
    Ok(Some(When::Period {
        start: at(first)?,
        end: at(next)?,
    }))
}

fn date(s: &str, y: i16, m: i16, d: i16) -> Result<Date> {
    let (Ok(m), Ok(d)) = (i8::try_from(m), i8::try_from(d)) else {
        bail!("{s}: not a date");
    };
    Date::new(y, m, d).map_err(|e| anyhow::anyhow!("{s}: not a date ({e})"))
}

/// An age: a whole number and a unit.
fn age(s: &str) -> Result<Option<Span>> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Ok(None);
    }
    let Ok(n) = num.parse::<i64>() else {
        bail!("{s}: too large");
    };
    let span = match unit {
        "min" | "mins" | "minute" | "minutes" => n.minutes(),
        "h" | "hour" | "hours" => n.hours(),
        "d" | "day" | "days" => n.days(),
        "w" | "week" | "weeks" => n.weeks(),
        "mo" | "month" | "months" => n.months(),
        "y" | "year" | "years" => n.years(),
        "m" => bail!("{s}: `m` is ambiguous: write {n}min for minutes or {n}mo for months"),
        "" => bail!("{s}: a number needs a unit ({HINT})"),
        other => bail!("{s}: unknown unit {other:?}: min, h, d, w, mo or y"),
    };
    // A span past jiff's range is an error, not a wrap.
    Ok(Some(span))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_second()
    }

    fn now() -> Zoned {
        "2026-03-31T10:00:00Z"
            .parse::<Timestamp>()
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC)
    }

    #[test]
    fn instants_periods_and_ages() {
        assert_eq!(
            parse("2026-02-10T01:02:03Z", now()).unwrap(),
            When::Instant(1_770_685_323)
        );
        assert_eq!(
            parse("2026-02-10", now()).unwrap(),
            When::Period {
                start: at("2026-02-10T00:00:00Z"),
                end: at("2026-02-11T00:00:00Z")
            }
        );
        assert_eq!(
            parse("2026-02", now()).unwrap(),
            When::Period {
                start: at("2026-02-01T00:00:00Z"),
                end: at("2026-03-01T00:00:00Z")
            }
        );
        assert_eq!(
            parse("2026-Q3", now()).unwrap(),
            When::Period {
                start: at("2026-07-01T00:00:00Z"),
                end: at("2026-10-01T00:00:00Z")
            }
        );
        assert_eq!(
            parse("2025", now()).unwrap(),
            When::Period {
                start: at("2025-01-01T00:00:00Z"),
                end: at("2026-01-01T00:00:00Z")
            }
        );
        // Months and years by the calendar: a month before March 31 is February 28.
        assert_eq!(
            parse("1mo", now()).unwrap(),
            When::Instant(at("2026-02-28T10:00:00Z"))
        );
        assert_eq!(
            parse("1y", now()).unwrap(),
            When::Instant(at("2025-03-31T10:00:00Z"))
        );
        assert_eq!(
            parse("45min", now()).unwrap(),
            When::Instant(at("2026-03-31T09:15:00Z"))
        );
        assert_eq!(
            parse("2w", now()).unwrap(),
            When::Instant(at("2026-03-17T10:00:00Z"))
        );
    }

    #[test]
    fn what_is_refused_says_why() {
        let err = |s: &str| parse(s, now()).unwrap_err().to_string();
        assert!(err("3m").contains("ambiguous"), "{}", err("3m"));
        assert!(err("2026-Q5").contains("Q1 to YYYY-Q4"));
        assert!(err("2026-13").contains("not a date"));
        assert!(err("yesterday").contains("not a time"));
        assert!(err("30").contains("needs a unit"));
        assert!(err("3fortnights").contains("unknown unit"));
    }

    #[test]
    fn since_and_until_take_the_ends_of_a_period() {
        let utc = TimeZone::UTC;
        let (s, u) = window(Some("2026-03"), Some("2026-04"), &utc).unwrap();
        assert_eq!(s, Some(at("2026-03-01T00:00:00Z")));
        assert_eq!(u, Some(at("2026-05-01T00:00:00Z")));
        let (_, u) = window(None, Some("2026-04-30"), &utc).unwrap();
        assert_eq!(u, Some(at("2026-05-01T00:00:00Z")));
        let e = window(Some("2026-05"), Some("2026-04"), &utc)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not before --until"), "{e}");
        // A day in Seoul begins at 15:00 UTC the day before.
        let seoul = TimeZone::get("Asia/Seoul").unwrap();
        let (s, u) = window(Some("2026-03-01"), Some("2026-03-01"), &seoul).unwrap();
        assert_eq!(s, Some(at("2026-02-28T15:00:00Z")));
        assert_eq!(u, Some(at("2026-03-01T15:00:00Z")));
    }
}

//! `date-time` property values as instants, and instants as the text Cloud Control takes.
//!
//! Handlers mostly send RFC 3339 (`2025-03-01T10:00:00Z`), but not all of them: some write
//! `+0000` offsets (`2019-10-24T23:07:22.000+0000`), a space for the `T`, no zone at all (read
//! as UTC), a bare date, or epoch seconds (or milliseconds) as a number. Each of those is
//! read here; anything else is no instant, and the scan leaves the column NULL with a WARNING.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use serde_json::Value;

/// Epoch numbers at least this large count milliseconds: as seconds they would be past the
/// year 5000.
const MILLISECONDS_FROM: f64 = 1e11;

/// Formats with an offset, tried after RFC 3339.
const ZONED: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M%z",
];
/// Formats without one, read as UTC.
const UNZONED: &[&str] = &["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"];

/// The instant a property value stands for, in microseconds since 1970 UTC.
pub fn instant_micros(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => epoch_micros(n.as_f64()?),
        Value::String(s) => text_micros(s),
        _ => None,
    }
}

/// An instant written as text, in any of the shapes handlers use.
pub fn text_micros(text: &str) -> Option<i64> {
    let t = text.trim();
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return epoch_micros(t.parse().ok()?);
    }
    let t = t
        .strip_suffix(" UTC")
        .or_else(|| t.strip_suffix(" GMT"))
        .map_or(t, |s| s.trim_end());
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.timestamp_micros());
    }
    if let Some(d) = ZONED.iter().find_map(|f| DateTime::parse_from_str(t, f).ok()) {
        return Some(d.timestamp_micros());
    }
    if let Some(d) = UNZONED.iter().find_map(|f| NaiveDateTime::parse_from_str(t, f).ok()) {
        return Some(d.and_utc().timestamp_micros());
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_micros())
}

fn epoch_micros(n: f64) -> Option<i64> {
    let seconds = if n.abs() >= MILLISECONDS_FROM { n / 1000.0 } else { n };
    let micros = (seconds * 1e6).round();
    // PostgreSQL's timestamptz ends in the year 294276; chrono's range is narrower still.
    (micros.is_finite() && DateTime::from_timestamp_micros(micros as i64).is_some()).then_some(micros as i64)
}

/// An instant as RFC 3339 in UTC, the form Cloud Control's `date-time` properties take:
/// fractions of a second only when there are some.
pub fn rfc3339(micros: i64) -> Option<String> {
    let d: DateTime<Utc> = DateTime::from_timestamp_micros(micros)?;
    let format = if micros % 1_000_000 == 0 {
        SecondsFormat::Secs
    } else if micros % 1_000 == 0 {
        SecondsFormat::Millis
    } else {
        SecondsFormat::Micros
    };
    Some(d.to_rfc3339_opts(format, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes_handlers_send_are_read() {
        let expected = DateTime::parse_from_rfc3339("2019-10-24T23:07:22Z").unwrap().timestamp_micros();
        for v in [
            json!("2019-10-24T23:07:22Z"),
            json!("2019-10-24T23:07:22.000Z"),
            json!("2019-10-24T23:07:22.000+0000"),
            json!("2019-10-25T01:07:22+02:00"),
            json!("2019-10-24 23:07:22"),
            json!("2019-10-24T23:07:22"),
            json!("2019-10-24 23:07:22 UTC"),
            json!("2019-10-24 23:07:22+00"),
            json!(1_571_958_442),
            json!(1_571_958_442.0),
            json!(1_571_958_442_000_i64),
            json!("1571958442"),
        ] {
            assert_eq!(instant_micros(&v), Some(expected), "{v}");
        }
        let midnight = DateTime::parse_from_rfc3339("2019-10-24T00:00:00Z").unwrap().timestamp_micros();
        assert_eq!(instant_micros(&json!("2019-10-24")), Some(midnight));
        assert_eq!(instant_micros(&json!(1.5)), Some(1_500_000));
        for bad in [
            json!("soon"),
            json!(""),
            json!("2019-13-40"),
            json!(true),
            json!({"at": 1}),
            json!(1e300),
        ] {
            assert_eq!(instant_micros(&bad), None, "{bad}");
        }
    }

    #[test]
    fn instants_are_written_as_rfc3339() {
        assert_eq!(rfc3339(1_571_958_442_000_000).unwrap(), "2019-10-24T23:07:22Z");
        assert_eq!(rfc3339(1_571_958_442_250_000).unwrap(), "2019-10-24T23:07:22.250Z");
        assert_eq!(rfc3339(1_571_958_442_000_001).unwrap(), "2019-10-24T23:07:22.000001Z");
    }
}

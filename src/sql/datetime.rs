//! The session's `TimeZone` and `DateStyle`: what `SET` accepts for them, how `SHOW` spells
//! them, and date-time values printed as PostgreSQL prints them in that zone and style.
//!
//! Zones follow PostgreSQL's reading of a `TimeZone` value: an IANA name (any letter case,
//! shown as the database spells it), a bare number of hours east of UTC (`-8`, `5.5`, shown
//! as `<-08>+08`), or a POSIX zone (`UTC+3`, `<+04>-4`, `-08:00`) whose offset counts hours
//! *west*, as POSIX does.

use std::borrow::Cow;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike};
use chrono_tz::{OffsetName, Tz};

/// A session time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    rule: Rule,
    /// What SHOW prints.
    shown: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Rule {
    Named(Tz),
    /// A constant offset, in seconds east of UTC, and the abbreviation non-ISO styles print.
    Fixed {
        east: i32,
        abbreviation: String,
    },
}

/// Offsets further from UTC than a week are not time zones.
const MAX_OFFSET_SECONDS: i64 = 7 * 24 * 3600;

impl Zone {
    pub fn utc() -> Zone {
        Zone {
            rule: Rule::Named(Tz::UTC),
            shown: "UTC".into(),
        }
    }

    /// A `TimeZone` value as PostgreSQL reads it; `None` when it names no zone.
    pub fn parse(text: &str) -> Option<Zone> {
        if let Some(east) = hours_east(text) {
            return Some(Zone {
                shown: format!("<{}>{}", offset_text(east), offset_text(-east)),
                rule: Rule::Fixed {
                    east,
                    abbreviation: offset_text(east),
                },
            });
        }
        if let Some(tz) = named(text) {
            return Some(Zone {
                rule: Rule::Named(tz),
                shown: tz.name().to_string(),
            });
        }
        if text == "localtime" {
            // The server's own zone, which is UTC wherever cloudpg runs.
            return Some(Zone {
                rule: Rule::Fixed {
                    east: 0,
                    abbreviation: "UTC".into(),
                },
                shown: text.to_string(),
            });
        }
        let (abbreviation, west) = posix(text)?;
        Some(Zone {
            rule: Rule::Fixed { east: -west, abbreviation },
            shown: text.to_string(),
        })
    }

    /// What `SHOW TimeZone` prints.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The zone as Arrow names it (an IANA name, or `+05:30`), for the query engine's
    /// `now()` and its reading of text without an offset.
    pub fn arrow_name(&self) -> String {
        match &self.rule {
            Rule::Named(tz) => tz.name().to_string(),
            Rule::Fixed { east, .. } => {
                let minutes = east / 60;
                format!(
                    "{}{:02}:{:02}",
                    if minutes < 0 { '-' } else { '+' },
                    minutes.abs() / 60,
                    minutes.abs() % 60
                )
            }
        }
    }

    /// Seconds east of UTC at an instant, and the zone's abbreviation then.
    fn offset_at(&self, utc: &NaiveDateTime) -> (i32, Cow<'_, str>) {
        match &self.rule {
            Rule::Named(tz) => {
                let offset = tz.offset_from_utc_datetime(utc);
                let east = offset.fix().local_minus_utc();
                let abbreviation = offset
                    .abbreviation()
                    .map_or_else(|| Cow::Owned(offset_text(east)), |a| Cow::Owned(a.to_string()));
                (east, abbreviation)
            }
            Rule::Fixed { east, abbreviation } => (*east, Cow::Borrowed(abbreviation)),
        }
    }
}

/// A bare number is hours east of UTC (`SET TIME ZONE -8`).
fn hours_east(text: &str) -> Option<i32> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let hours: f64 = text.parse().ok()?;
    let seconds = (hours * 3600.0).round();
    (seconds.abs() <= MAX_OFFSET_SECONDS as f64).then_some(seconds as i32)
}

/// An IANA zone name in any letter case.
fn named(text: &str) -> Option<Tz> {
    text.parse::<Tz>().ok().or_else(|| {
        chrono_tz::TZ_VARIANTS
            .iter()
            .copied()
            .find(|tz| tz.name().eq_ignore_ascii_case(text))
    })
}

/// A POSIX zone without daylight rules, `NAME[+|-]hh[:mm[:ss]]` or `<NAME>offset`: its
/// abbreviation and seconds *west* of UTC.
fn posix(text: &str) -> Option<(String, i32)> {
    let (name, rest) = if let Some(quoted) = text.strip_prefix('<') {
        let (name, rest) = quoted.split_once('>')?;
        (name.to_string(), rest)
    } else {
        let end = text.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(text.len());
        if end != 0 && end < 3 {
            return None;
        }
        (text[..end].to_string(), &text[end..])
    };
    let (sign, clock) = match rest.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, rest.strip_prefix('+').unwrap_or(rest)),
    };
    let mut parts = clock.split(':');
    let mut seconds = 0i64;
    for (i, scale) in [3600, 60, 1].into_iter().enumerate() {
        match parts.next() {
            Some(p) if !p.is_empty() && p.len() <= 2 && p.chars().all(|c| c.is_ascii_digit()) => {
                let n: i64 = p.parse().ok()?;
                if i > 0 && n > 59 {
                    return None;
                }
                seconds += n * scale;
            }
            None if i > 0 => break,
            _ => return None,
        }
    }
    if parts.next().is_some() || seconds > MAX_OFFSET_SECONDS {
        return None;
    }
    Some((name, sign * seconds as i32))
}

/// `+05:30`, `-08`, `+00:19:32`: an offset east of UTC as ISO output prints it.
fn offset_text(east: i32) -> String {
    let sign = if east < 0 { '-' } else { '+' };
    let a = east.unsigned_abs();
    let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
    match (m, s) {
        (0, 0) => format!("{sign}{h:02}"),
        (_, 0) => format!("{sign}{h:02}:{m:02}"),
        _ => format!("{sign}{h:02}:{m:02}:{s:02}"),
    }
}

/// How dates are written: `DateStyle`'s output style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Iso,
    Sql,
    Postgres,
    German,
}

/// `DateStyle`'s field order, for reading and for the SQL and Postgres output styles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Mdy,
    Dmy,
    Ymd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateStyle {
    pub style: Style,
    pub order: Order,
}

impl Default for DateStyle {
    fn default() -> DateStyle {
        DateStyle {
            style: Style::Iso,
            order: Order::Mdy,
        }
    }
}

impl DateStyle {
    /// A `SET DateStyle` value (`'SQL, DMY'`, `'German'`, `'European'`) applied to the
    /// current setting, as PostgreSQL applies it: what the value leaves out stays. `Err` holds
    /// PostgreSQL's detail line.
    pub fn parse(text: &str, current: DateStyle) -> Result<DateStyle, String> {
        let (mut style, mut order) = (None, None);
        for word in text.split(',').map(str::trim) {
            match word.to_ascii_uppercase().as_str() {
                "ISO" => pick(&mut style, Style::Iso)?,
                "SQL" => pick(&mut style, Style::Sql)?,
                "POSTGRES" => pick(&mut style, Style::Postgres)?,
                "GERMAN" => pick(&mut style, Style::German)?,
                "YMD" => pick(&mut order, Order::Ymd)?,
                "DMY" | "EURO" | "EUROPEAN" => pick(&mut order, Order::Dmy)?,
                "MDY" | "US" | "NONEURO" | "NONEUROPEAN" => pick(&mut order, Order::Mdy)?,
                "DEFAULT" => {
                    pick(&mut style, Style::Iso)?;
                    pick(&mut order, Order::Mdy)?;
                }
                _ => return Err(format!("Unrecognized key word: \"{word}\".")),
            }
        }
        let style = style.unwrap_or(current.style);
        let order = match (order, style) {
            (Some(o), _) => o,
            // German dates are day first unless the value says otherwise.
            (None, Style::German) => Order::Dmy,
            (None, _) => current.order,
        };
        Ok(DateStyle { style, order })
    }

    /// What `SHOW DateStyle` prints.
    pub fn shown(self) -> String {
        let style = match self.style {
            Style::Iso => "ISO",
            Style::Sql => "SQL",
            Style::Postgres => "Postgres",
            Style::German => "German",
        };
        let order = match self.order {
            Order::Mdy => "MDY",
            Order::Dmy => "DMY",
            Order::Ymd => "YMD",
        };
        format!("{style}, {order}")
    }
}

/// One field of a DateStyle value: set once, or again to the same thing.
fn pick<T: PartialEq>(slot: &mut Option<T>, value: T) -> Result<(), String> {
    match slot {
        Some(old) if *old != value => Err("Conflicting \"datestyle\" specifications.".to_string()),
        _ => {
            *slot = Some(value);
            Ok(())
        }
    }
}

/// What date-time output depends on: the session's zone and style.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeFormat {
    pub zone: Zone,
    pub style: DateStyle,
}

impl Default for TimeFormat {
    fn default() -> TimeFormat {
        TimeFormat {
            zone: Zone::utc(),
            style: DateStyle::default(),
        }
    }
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// A `timestamptz` (microseconds since 1970 UTC) as PostgreSQL prints it in this session.
pub fn timestamptz_text(micros: i64, format: &TimeFormat) -> String {
    let Some(utc) = DateTime::from_timestamp_micros(micros).map(|d| d.naive_utc()) else {
        return micros.to_string();
    };
    let (east, abbreviation) = format.zone.offset_at(&utc);
    let local = utc + chrono::Duration::seconds(i64::from(east));
    let zone = match format.style.style {
        Style::Iso => offset_text(east),
        _ => format!(" {abbreviation}"),
    };
    date_time_text(&local, format.style, &zone)
}

/// A `timestamp` (without time zone) as PostgreSQL prints it.
pub fn timestamp_text(micros: i64, style: DateStyle) -> String {
    match DateTime::from_timestamp_micros(micros) {
        Some(d) => date_time_text(&d.naive_utc(), style, ""),
        None => micros.to_string(),
    }
}

/// A `date` (days since 1970-01-01) as PostgreSQL prints it.
pub fn date_text(days: i32, style: DateStyle) -> String {
    let Some(date) = NaiveDate::from_num_days_from_ce_opt(days.saturating_add(719_163)) else {
        return days.to_string();
    };
    let (year, bc) = year_of(&date);
    let (d, m) = (date.day(), date.month());
    let text = match (style.style, style.order) {
        (Style::Iso, _) => format!("{year}-{m:02}-{d:02}"),
        (Style::Sql, Order::Dmy) => format!("{d:02}/{m:02}/{year}"),
        (Style::Sql, _) => format!("{m:02}/{d:02}/{year}"),
        (Style::Postgres, Order::Dmy) => format!("{d:02}-{m:02}-{year}"),
        (Style::Postgres, _) => format!("{m:02}-{d:02}-{year}"),
        (Style::German, _) => format!("{d:02}.{m:02}.{year}"),
    };
    if bc {
        format!("{text} BC")
    } else {
        text
    }
}

/// Year as printed (at least four digits; years before 1 counted BC), and whether it is BC.
fn year_of(date: &NaiveDate) -> (String, bool) {
    let y = date.year();
    if y <= 0 {
        (format!("{:04}", 1 - y), true)
    } else {
        (format!("{y:04}"), false)
    }
}

/// Date and time of day in a style, then `zone` (an ISO offset, or ` ABBREV`).
fn date_time_text(local: &NaiveDateTime, style: DateStyle, zone: &str) -> String {
    let date = local.date();
    let (year, bc) = year_of(&date);
    let (d, m) = (date.day(), date.month());
    let time = clock_text(local);
    let text = match (style.style, style.order) {
        (Style::Iso, _) => format!("{year}-{m:02}-{d:02} {time}{zone}"),
        (Style::Sql, Order::Dmy) => format!("{d:02}/{m:02}/{year} {time}{zone}"),
        (Style::Sql, _) => format!("{m:02}/{d:02}/{year} {time}{zone}"),
        (Style::German, _) => format!("{d:02}.{m:02}.{year} {time}{zone}"),
        (Style::Postgres, order) => {
            let weekday = WEEKDAYS[date.weekday().num_days_from_monday() as usize];
            let month = MONTHS[date.month0() as usize];
            match order {
                Order::Dmy => format!("{weekday} {d:02} {month} {time} {year}{zone}"),
                _ => format!("{weekday} {month} {d:02} {time} {year}{zone}"),
            }
        }
    };
    if bc {
        format!("{text} BC")
    } else {
        text
    }
}

/// `HH:MM:SS`, with the fraction of a second only when there is one, trailing zeros dropped.
fn clock_text(t: &NaiveDateTime) -> String {
    let micros = t.nanosecond() / 1000 % 1_000_000;
    let whole = format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second());
    if micros == 0 {
        whole
    } else {
        format!("{whole}.{}", format!("{micros:06}").trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text).unwrap().timestamp_micros()
    }

    fn shown(zone: &str, style: &str, instant: &str) -> String {
        let format = TimeFormat {
            zone: Zone::parse(zone).unwrap(),
            style: DateStyle::parse(style, DateStyle::default()).unwrap(),
        };
        timestamptz_text(at(instant), &format)
    }

    /// Each expectation is what PostgreSQL 15 printed for the same zone and style.
    #[test]
    fn timestamptz_prints_as_postgres_prints_it() {
        let cases = [
            ("UTC", "ISO", "2025-01-02T01:04:05.5Z", "2025-01-02 01:04:05.5+00"),
            ("UTC", "ISO", "2025-01-02T03:04:05Z", "2025-01-02 03:04:05+00"),
            ("America/New_York", "ISO", "2025-01-02T03:04:05Z", "2025-01-01 22:04:05-05"),
            ("America/New_York", "ISO", "2025-07-02T03:04:05Z", "2025-07-01 23:04:05-04"),
            ("Asia/Kolkata", "ISO", "2025-01-02T03:04:05Z", "2025-01-02 08:34:05+05:30"),
            ("Asia/Kathmandu", "ISO", "2025-01-02T03:04:05Z", "2025-01-02 08:49:05+05:45"),
            ("-8", "ISO", "2025-01-02T03:04:05Z", "2025-01-01 19:04:05-08"),
            ("+3", "ISO", "2025-01-02T03:04:05Z", "2025-01-02 06:04:05+03"),
            ("UTC+3", "ISO", "2025-01-02T03:04:05Z", "2025-01-02 00:04:05-03"),
            ("5.5", "ISO", "2025-01-02T03:04:05Z", "2025-01-02 08:34:05+05:30"),
            ("europe/paris", "ISO", "2025-01-02T03:04:05Z", "2025-01-02 04:04:05+01"),
            ("EST", "ISO", "2025-07-02T03:04:05Z", "2025-07-01 22:04:05-05"),
            ("-08:00", "ISO", "2025-01-02T03:04:05Z", "2025-01-02 11:04:05+08"),
            ("UTC", "SQL", "2025-01-02T03:04:05.25Z", "01/02/2025 03:04:05.25 UTC"),
            ("Europe/Paris", "SQL", "2025-01-02T03:04:05.25Z", "01/02/2025 04:04:05.25 CET"),
            (
                "Asia/Kolkata",
                "Postgres",
                "2025-01-02T03:04:05.25Z",
                "Thu Jan 02 08:34:05.25 2025 IST",
            ),
            ("Asia/Kolkata", "German", "2025-01-02T03:04:05.25Z", "02.01.2025 08:34:05.25 IST"),
            ("Asia/Kolkata", "SQL, DMY", "2025-01-02T03:04:05.25Z", "02/01/2025 08:34:05.25 IST"),
            (
                "Asia/Kolkata",
                "Postgres, DMY",
                "2025-01-02T03:04:05.25Z",
                "Thu 02 Jan 08:34:05.25 2025 IST",
            ),
            ("UTC-3", "SQL", "2025-01-02T03:04:05Z", "01/02/2025 06:04:05 UTC"),
            ("Etc/GMT+3", "SQL", "2025-01-02T03:04:05Z", "01/02/2025 00:04:05 -03"),
            ("20", "SQL", "2025-01-02T03:04:05Z", "01/02/2025 23:04:05 +20"),
            ("<+04>-4", "SQL", "2025-01-02T03:04:05Z", "01/02/2025 07:04:05 +04"),
            ("US/Pacific", "SQL", "2025-01-02T03:04:05Z", "01/01/2025 19:04:05 PST"),
        ];
        for (zone, style, instant, expected) in cases {
            assert_eq!(shown(zone, style, instant), expected, "{zone} {style} {instant}");
        }
    }

    #[test]
    fn dates_and_timestamps_without_zone() {
        let style = |s: &str| DateStyle::parse(s, DateStyle::default()).unwrap();
        let ts = at("2025-06-02T03:04:05.123Z");
        assert_eq!(timestamp_text(ts, style("ISO")), "2025-06-02 03:04:05.123");
        assert_eq!(
            timestamp_text(at("2025-01-02T03:04:05Z"), style("Postgres")),
            "Thu Jan 02 03:04:05 2025"
        );
        let day = 20090; // 2025-01-02
        assert_eq!(date_text(day, style("ISO")), "2025-01-02");
        assert_eq!(date_text(day, style("SQL")), "01/02/2025");
        assert_eq!(date_text(day, style("Postgres")), "01-02-2025");
        assert_eq!(date_text(day, style("German")), "02.01.2025");
        assert_eq!(date_text(3_789_212, style("ISO")), "12344-07-06");
        assert_eq!(date_text(-719_892, style("ISO")), "0002-01-02 BC");
    }

    #[test]
    fn zones_are_shown_as_postgres_shows_them() {
        let cases = [
            ("-8", "<-08>+08"),
            ("+3", "<+03>-03"),
            ("5.5", "<+05:30>-05:30"),
            ("-15.5", "<-15:30>+15:30"),
            ("utc", "UTC"),
            ("europe/paris", "Europe/Paris"),
            ("zulu", "Zulu"),
            ("UTC-3", "UTC-3"),
            ("<+04>-4", "<+04>-4"),
            ("-08:00", "-08:00"),
            ("EST5", "EST5"),
            ("localtime", "localtime"),
        ];
        for (value, expected) in cases {
            let zone = Zone::parse(value).unwrap_or_else(|| panic!("{value}"));
            assert_eq!(zone.shown(), expected);
            assert_eq!(Zone::parse(zone.shown()).as_ref(), Some(&zone), "{value} round-trips through SHOW");
        }
        for bad in ["Foo/Bar", "PST", "Z", "  UTC  ", "", "UT+3", "UTC+3:99", "200", "<abc", "UTC+3EDT"] {
            assert!(Zone::parse(bad).is_none(), "{bad:?}");
        }
        assert_eq!(Zone::parse("Asia/Kolkata").unwrap().arrow_name(), "Asia/Kolkata");
        assert_eq!(Zone::parse("-5.5").unwrap().arrow_name(), "-05:30");
        assert_eq!(Zone::parse("UTC+3").unwrap().arrow_name(), "-03:00");
    }

    #[test]
    fn date_styles_read_as_postgres_reads_them() {
        let iso = DateStyle::default();
        let parse = |s: &str| DateStyle::parse(s, iso).map(DateStyle::shown);
        assert_eq!(parse("SQL, DMY").unwrap(), "SQL, DMY");
        assert_eq!(parse("Postgres, DMY").unwrap(), "Postgres, DMY");
        assert_eq!(parse("DMY").unwrap(), "ISO, DMY");
        assert_eq!(parse("iso").unwrap(), "ISO, MDY");
        assert_eq!(parse("YMD, German").unwrap(), "German, YMD");
        assert_eq!(parse("German").unwrap(), "German, DMY");
        assert_eq!(parse("European").unwrap(), "ISO, DMY");
        assert!(parse("ISO, SQL").unwrap_err().contains("Conflicting"));
        assert!(parse("ISO, Swatch").unwrap_err().contains("\"Swatch\""));
        let sql = DateStyle::parse("SQL", iso).unwrap();
        assert_eq!(
            DateStyle::parse("DMY", sql).unwrap().shown(),
            "SQL, DMY",
            "an order alone keeps the style"
        );
    }
}

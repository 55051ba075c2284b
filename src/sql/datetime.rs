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
use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};

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

    /// An IANA zone, shown as the zone database spells it.
    fn named(tz: Tz) -> Zone {
        Zone {
            rule: Rule::Named(tz),
            shown: tz.name().to_string(),
        }
    }

    /// A constant offset east of UTC, abbreviated as ISO writes the offset.
    fn fixed(east: i32, shown: String) -> Zone {
        Zone {
            rule: Rule::Fixed {
                east,
                abbreviation: offset_text(east),
            },
            shown,
        }
    }

    /// A `TimeZone` value as PostgreSQL reads it; `None` when it names no zone.
    pub fn parse(text: &str) -> Option<Zone> {
        if let Some(east) = hours_east(text) {
            return Some(Zone::fixed(east, format!("<{}>{}", offset_text(east), offset_text(-east))));
        }
        if let Some(tz) = named(text) {
            return Some(Zone::named(tz));
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

    /// The instant a wall-clock time in this zone names: in a daylight-saving overlap the
    /// later one (standard time, as PostgreSQL takes it); in a gap, the time read with the
    /// offset before the gap.
    pub fn instant_of(&self, local: &NaiveDateTime) -> NaiveDateTime {
        let east = match &self.rule {
            Rule::Named(tz) => match tz.offset_from_local_datetime(local) {
                chrono::LocalResult::Single(o) | chrono::LocalResult::Ambiguous(_, o) => o.fix().local_minus_utc(),
                chrono::LocalResult::None => tz.offset_from_utc_datetime(local).fix().local_minus_utc(),
            },
            Rule::Fixed { east, .. } => *east,
        };
        *local - chrono::Duration::seconds(i64::from(east))
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

    /// The wall-clock time in this zone at an instant.
    fn wall_clock(&self, utc: &NaiveDateTime) -> NaiveDateTime {
        *utc + chrono::Duration::seconds(i64::from(self.offset_at(utc).0))
    }

    /// Seconds east of UTC at an instant, and the zone's abbreviation then.
    fn offset_at(&self, utc: &NaiveDateTime) -> (i32, Cow<'_, str>) {
        match &self.rule {
            Rule::Named(tz) => {
                let offset = tz.offset_from_utc_datetime(utc);
                let east = offset.fix().local_minus_utc();
                let abbreviation = offset
                    .abbreviation()
                    .map_or_else(|| Cow::Owned(numeric_abbreviation(east)), |a| Cow::Owned(a.to_string()));
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

/// The zone database's name for an offset without a letter abbreviation: `+0545`, `-03`.
fn numeric_abbreviation(east: i32) -> String {
    offset_text(east).replace(':', "")
}

/// How to write a timestamp that reads, for errors about one that does not.
pub const INPUT_HINT: &str = "write it as '2025-03-01 10:00:00+00', '2025-03-01T10:00:00Z' or '2025-03-01'";

/// A `timestamptz` as PostgreSQL reads its ISO input forms (`2025-03-01`, `2025-03-01 10:00`,
/// `2025-03-01T10:00:00.5`, followed by `Z`, `UTC`, `+02`, `+05:30`, `-0800` or a zone name,
/// or by nothing: a time in `session`), and the words `epoch`, `now`, `today`, `tomorrow`,
/// `yesterday`. Microseconds since 1970 UTC; `None` when the text is none of these.
pub fn read_timestamptz(text: &str, session: &Zone, now: NaiveDateTime) -> Option<i64> {
    let (local, zone) = read_local(text, session, now)?;
    let utc = match zone {
        Some(zone) => zone.instant_of(&local),
        None => session.instant_of(&local),
    };
    Some(utc.and_utc().timestamp_micros())
}

/// A `timestamp` (without time zone) as PostgreSQL reads it: a zone in the text is ignored.
pub fn read_timestamp(text: &str, session: &Zone, now: NaiveDateTime) -> Option<i64> {
    read_local(text, session, now).map(|(local, _)| local.and_utc().timestamp_micros())
}

/// Whether unreadable timestamp text is shaped like a date whose fields are out of range
/// (`2025-13-01`, `2025-02-30 10:00`), which PostgreSQL reports apart from text that is no
/// date at all.
pub fn is_out_of_range(text: &str) -> bool {
    let t = text.trim();
    let date = t.split([' ', 'T', 't']).next().unwrap_or_default();
    let parts: Vec<&str> = date.split('-').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())) && parts[0].len() == 4
}

/// The wall-clock time a text names, and the zone it names if any.
fn read_local(text: &str, session: &Zone, now: NaiveDateTime) -> Option<(NaiveDateTime, Option<Zone>)> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let today = || session.wall_clock(&now).date();
    let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0);
    match lower.as_str() {
        "epoch" => return Some((DateTime::UNIX_EPOCH.naive_utc(), Some(Zone::utc()))),
        "now" => return Some((now, Some(Zone::utc()))),
        "today" => return Some((midnight(today())?, None)),
        "tomorrow" => return Some((midnight(today().succ_opt()?)?, None)),
        "yesterday" => return Some((midnight(today().pred_opt()?)?, None)),
        _ => {}
    }
    let date_end = t.find([' ', 'T', 't']).unwrap_or(t.len());
    let date = NaiveDate::parse_from_str(&t[..date_end], "%Y-%m-%d").ok()?;
    let rest = t[date_end..].trim_start_matches(['T', 't']).trim_start();
    let clock_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.'))
        .unwrap_or(rest.len());
    let (clock, zone_text) = (&rest[..clock_end], rest[clock_end..].trim());
    let time = match clock {
        "" => chrono::NaiveTime::MIN,
        c => chrono::NaiveTime::parse_from_str(c, "%H:%M:%S%.f")
            .or_else(|_| chrono::NaiveTime::parse_from_str(c, "%H:%M"))
            .ok()?,
    };
    let zone = match zone_text {
        "" => None,
        z if z.eq_ignore_ascii_case("z") || z.eq_ignore_ascii_case("utc") || z.eq_ignore_ascii_case("gmt") => Some(Zone::utc()),
        z if z.starts_with(['+', '-']) => Some(iso_offset_zone(z)?),
        z => Some(Zone::named(named(z)?)),
    };
    Some((date.and_time(time), zone))
}

/// `+02`, `+05:30`, `-0800`, `+5`: an offset east of UTC as ISO input writes it.
fn iso_offset_zone(text: &str) -> Option<Zone> {
    let sign = if text.starts_with('-') { -1 } else { 1 };
    let digits = &text[1..];
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) => (h, m),
        None if digits.len() == 4 => digits.split_at(2),
        None => (digits, "0"),
    };
    if h.is_empty() || h.len() > 2 || !h.chars().chain(m.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 15 || m > 59 {
        return None;
    }
    let east = sign * (h * 3600 + m * 60);
    Some(Zone::fixed(east, offset_text(east)))
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

/// A timestamp in `unit` as microseconds, PostgreSQL's precision (nanoseconds truncate).
pub fn micros_of(value: i64, unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => value.saturating_mul(1_000_000),
        TimeUnit::Millisecond => value.saturating_mul(1_000),
        TimeUnit::Microsecond => value,
        TimeUnit::Nanosecond => value.div_euclid(1_000),
    }
}

/// Microseconds as a timestamp in `unit` (coarser units truncate).
pub fn micros_in(micros: i64, unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => micros.div_euclid(1_000_000),
        TimeUnit::Millisecond => micros.div_euclid(1_000),
        TimeUnit::Microsecond => micros,
        TimeUnit::Nanosecond => micros.saturating_mul(1_000),
    }
}

/// A timestamp array's value in microseconds.
fn micros_at(array: &ArrayRef, unit: TimeUnit, row: usize) -> i64 {
    let value = match unit {
        TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(row),
        TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().value(row),
        TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(row),
        TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(row),
    };
    micros_of(value, unit)
}

/// A non-null timestamp or date of an array as PostgreSQL prints it in this session; `None`
/// for other types.
pub fn value_text(array: &ArrayRef, row: usize, format: &TimeFormat) -> Option<String> {
    match array.data_type() {
        DataType::Timestamp(unit, Some(_)) => Some(timestamptz_text(micros_at(array, *unit, row), format)),
        DataType::Timestamp(unit, None) => Some(timestamp_text(micros_at(array, *unit, row), format.style)),
        DataType::Date32 => Some(date_text(array.as_primitive::<Date32Type>().value(row), format.style)),
        _ => None,
    }
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
    with_era(numeric_date(&date, style), &date)
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

/// A date in figures as a style writes it (the Postgres style's date alone is `mm-dd-yyyy`).
fn numeric_date(date: &NaiveDate, style: DateStyle) -> String {
    let (year, _) = year_of(date);
    let (d, m) = (date.day(), date.month());
    match (style.style, style.order) {
        (Style::Iso, _) => format!("{year}-{m:02}-{d:02}"),
        (Style::Sql, Order::Dmy) => format!("{d:02}/{m:02}/{year}"),
        (Style::Sql, _) => format!("{m:02}/{d:02}/{year}"),
        (Style::Postgres, Order::Dmy) => format!("{d:02}-{m:02}-{year}"),
        (Style::Postgres, _) => format!("{m:02}-{d:02}-{year}"),
        (Style::German, _) => format!("{d:02}.{m:02}.{year}"),
    }
}

/// The text with ` BC` after it when the date is before year 1.
fn with_era(text: String, date: &NaiveDate) -> String {
    if year_of(date).1 {
        format!("{text} BC")
    } else {
        text
    }
}

/// Date and time of day in a style, then `zone` (an ISO offset, or ` ABBREV`).
fn date_time_text(local: &NaiveDateTime, style: DateStyle, zone: &str) -> String {
    let date = local.date();
    let time = clock_text(local);
    let text = match (style.style, style.order) {
        // The Postgres style spells the date out around the time.
        (Style::Postgres, order) => {
            let weekday = WEEKDAYS[date.weekday().num_days_from_monday() as usize];
            let month = MONTHS[date.month0() as usize];
            let (d, (year, _)) = (date.day(), year_of(&date));
            match order {
                Order::Dmy => format!("{weekday} {d:02} {month} {time} {year}{zone}"),
                _ => format!("{weekday} {month} {d:02} {time} {year}{zone}"),
            }
        }
        _ => format!("{} {time}{zone}", numeric_date(&date, style)),
    };
    with_era(text, &date)
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
            ("Asia/Kathmandu", "SQL", "2025-01-02T03:04:05.25Z", "01/02/2025 08:49:05.25 +0545"),
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
    fn timestamps_are_read_as_postgres_reads_them() {
        let now = at("2025-06-15T22:30:00Z");
        let now = DateTime::from_timestamp_micros(now).unwrap().naive_utc();
        let kolkata = Zone::parse("Asia/Kolkata").unwrap();
        let read = |text: &str| read_timestamptz(text, &kolkata, now);
        let cases = [
            ("2025-01-02 03:04:05+00", "2025-01-02T03:04:05Z"),
            ("2025-01-02T03:04:05Z", "2025-01-02T03:04:05Z"),
            ("2025-01-02 03:04:05.25 UTC", "2025-01-02T03:04:05.25Z"),
            ("2025-01-02 03:04:05-0800", "2025-01-02T11:04:05Z"),
            ("2025-01-02 03:04+05:30", "2025-01-01T21:34:00Z"),
            ("2025-01-02 08:34", "2025-01-02T03:04:00Z"),
            ("2025-01-02", "2025-01-01T18:30:00Z"),
            ("  2025-01-02 12:00:00 America/New_York ", "2025-01-02T17:00:00Z"),
            ("epoch", "1970-01-01T00:00:00Z"),
            ("now", "2025-06-15T22:30:00Z"),
            ("today", "2025-06-15T18:30:00Z"),
            ("Tomorrow", "2025-06-16T18:30:00Z"),
        ];
        for (text, expected) in cases {
            assert_eq!(read(text), Some(at(expected)), "{text}");
        }
        for bad in [
            "soon",
            "2025-13-01",
            "2025-01-02 25:00",
            "2025-01-02 10:00 Mars/Base",
            "2025-01-02 10:00 +99",
            "",
        ] {
            assert_eq!(read(bad), None, "{bad:?}");
        }
        assert_eq!(
            read_timestamp("2025-01-02 03:04:05+02", &kolkata, now),
            Some(at("2025-01-02T03:04:05Z"))
        );
        let fixed = Zone::parse("-5.5").unwrap();
        assert_eq!(read_timestamptz("2025-01-02 00:00", &fixed, now), Some(at("2025-01-02T05:30:00Z")));
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

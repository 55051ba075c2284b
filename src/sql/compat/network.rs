//! PostgreSQL's network types as security engineers use them on text columns: `::cidr` and
//! `::inet` casts (checked and printed as PostgreSQL prints them), the containment and overlap
//! operators `<<`, `<<=`, `>>`, `>>=`, `&&`, and `host`, `masklen`, `network`, `family`,
//! `broadcast`, `netmask`. Values stay text on the wire; the syntax rewrite turns the casts
//! into `_pg_cidr`/`_pg_inet` calls and the operators between them into `_pg_net_*` calls.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue};
use datafusion::logical_expr::ScalarUDF;

use super::function::{boolean, text, utf8, Arg, PgFunction};
use crate::error::Error;

/// An address with a prefix length: what both types hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    pub addr: IpAddr,
    pub bits: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cidr,
    Inet,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Cidr => "cidr",
            Kind::Inet => "inet",
        }
    }
}

fn max_bits(addr: &IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

fn to_bits(addr: &IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(*a)),
        IpAddr::V6(a) => u128::from(*a),
    }
}

fn from_bits(v4: bool, bits: u128) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(u32::try_from(bits & u128::from(u32::MAX)).unwrap_or(0)))
    } else {
        IpAddr::V6(Ipv6Addr::from(bits))
    }
}

/// The mask of the first `bits` of an address of `width` bits, in the low `width` bits.
fn mask(width: u8, bits: u8) -> u128 {
    if bits == 0 {
        return 0;
    }
    let ones = if bits >= 128 { u128::MAX } else { (1u128 << bits) - 1 };
    ones << (width - bits)
}

impl Net {
    fn width(&self) -> u8 {
        max_bits(&self.addr)
    }

    fn network_bits(&self) -> u128 {
        to_bits(&self.addr) & mask(self.width(), self.bits)
    }

    /// The network: host bits cleared.
    pub fn network(&self) -> Net {
        Net {
            addr: from_bits(self.addr.is_ipv4(), self.network_bits()),
            bits: self.bits,
        }
    }

    pub fn broadcast(&self) -> Net {
        let host = !mask(self.width(), self.bits) & mask(self.width(), self.width());
        Net {
            addr: from_bits(self.addr.is_ipv4(), to_bits(&self.addr) | host),
            bits: self.bits,
        }
    }

    pub fn netmask(&self) -> IpAddr {
        from_bits(self.addr.is_ipv4(), mask(self.width(), self.bits))
    }

    /// Whether `other` lies within this network (`strict`: and is not the same network).
    pub fn contains(&self, other: &Net, strict: bool) -> bool {
        if self.addr.is_ipv4() != other.addr.is_ipv4() || other.bits < self.bits || (strict && other.bits == self.bits) {
            return false;
        }
        to_bits(&other.addr) & mask(self.width(), self.bits) == self.network_bits()
    }

    pub fn overlaps(&self, other: &Net) -> bool {
        self.contains(other, false) || other.contains(self, false)
    }

    /// As PostgreSQL prints the type: cidr always with its length, inet without a full one.
    pub fn display(&self, kind: Kind) -> String {
        if kind == Kind::Inet && self.bits == self.width() {
            self.addr.to_string()
        } else {
            format!("{}/{}", self.addr, self.bits)
        }
    }
}

/// Reads `text` as `kind`, with PostgreSQL's checks: a cidr has no bits set right of its mask.
pub fn parse(text: &str, kind: Kind) -> Result<Net, Error> {
    let bad = |detail: &str| Error::InvalidText {
        message: format!("invalid input syntax for type {}: \"{text}\"", kind.name()),
        hint: (!detail.is_empty()).then(|| detail.to_string()),
    };
    let trimmed = text.trim();
    let (addr, bits) = match trimmed.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (trimmed, None),
    };
    let addr: IpAddr = match addr.parse() {
        Ok(a) => a,
        // PostgreSQL accepts abbreviated IPv4 networks in cidr: 10/8, 192.168/16.
        Err(_) if kind == Kind::Cidr && (addr.contains('.') || !addr.is_empty() && addr.chars().all(|c| c.is_ascii_digit())) => {
            let mut octets: Vec<&str> = addr.split('.').collect();
            if octets.len() > 4 {
                return Err(bad("an IPv4 address has four parts, like 10.0.0.0"));
            }
            octets.resize(4, "0");
            octets
                .join(".")
                .parse()
                .map_err(|_| bad("write an address like 10.0.0.0/16 or 2001:db8::/32"))?
        }
        Err(_) => return Err(bad("write an address like 10.0.0.0/16 or 2001:db8::/32")),
    };
    let width = max_bits(&addr);
    let bits = match bits {
        Some(b) => match b.parse::<u8>() {
            Ok(n) if n <= width => n,
            _ => return Err(bad(&format!("the prefix length must be from 0 to {width}"))),
        },
        None => width,
    };
    let net = Net { addr, bits };
    if kind == Kind::Cidr && net.network() != net {
        return Err(Error::InvalidText {
            message: format!("invalid cidr value: \"{text}\""),
            hint: Some(format!(
                "the value has bits set to the right of its mask; the network is {} (or cast to inet to keep the host)",
                net.network().display(Kind::Cidr)
            )),
        });
    }
    Ok(net)
}

fn df(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// An argument as a network; text without a prefix is a host (inet), as PostgreSQL coerces
/// an untyped literal to the other operand's type.
fn arg(v: &ScalarValue) -> DfResult<Option<Net>> {
    match text(v) {
        Some(t) => parse(t, Kind::Inet).map(Some).map_err(df),
        None => Ok(None),
    }
}

pub fn functions() -> Vec<ScalarUDF> {
    let cast = |name: &str, kind: Kind| {
        PgFunction::new(name, &[Arg::Text], 1, DataType::Utf8, move |a| {
            Ok(utf8(
                text(&a[0])
                    .map(|t| parse(t, kind).map(|n| n.display(kind)))
                    .transpose()
                    .map_err(df)?,
            ))
        })
        .udf()
    };
    let contains = PgFunction::new("_pg_net_contains", &[Arg::Text, Arg::Text, Arg::Bool], 3, DataType::Boolean, |a| {
        let (outer, inner) = (arg(&a[0])?, arg(&a[1])?);
        let strict = boolean(&a[2]).unwrap_or(false);
        Ok(ScalarValue::Boolean(outer.zip(inner).map(|(o, i)| o.contains(&i, strict))))
    });
    let overlaps = PgFunction::new("_pg_net_overlaps", &[Arg::Text, Arg::Text], 2, DataType::Boolean, |a| {
        Ok(ScalarValue::Boolean(arg(&a[0])?.zip(arg(&a[1])?).map(|(x, y)| x.overlaps(&y))))
    });
    let text_fn = |name: &str, f: fn(&Net) -> String| {
        PgFunction::new(name, &[Arg::Text], 1, DataType::Utf8, move |a| Ok(utf8(arg(&a[0])?.map(|n| f(&n))))).udf()
    };
    let int_fn = |name: &str, f: fn(&Net) -> i32| {
        PgFunction::new(name, &[Arg::Text], 1, DataType::Int32, move |a| {
            Ok(ScalarValue::Int32(arg(&a[0])?.map(|n| f(&n))))
        })
        .udf()
    };
    vec![
        cast("_pg_cidr", Kind::Cidr),
        cast("_pg_inet", Kind::Inet),
        contains.udf(),
        overlaps.udf(),
        text_fn("host", |n| n.addr.to_string()),
        text_fn("network", |n| n.network().display(Kind::Cidr)),
        text_fn("broadcast", |n| n.broadcast().display(Kind::Inet)),
        text_fn("netmask", |n| n.netmask().to_string()),
        int_fn("masklen", |n| i32::from(n.bits)),
        int_fn("family", |n| if n.addr.is_ipv4() { 4 } else { 6 }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(t: &str) -> Net {
        parse(t, Kind::Cidr).unwrap()
    }

    #[test]
    fn casts_check_and_print_as_postgres() {
        assert_eq!(cidr("10.0.0.0/16").display(Kind::Cidr), "10.0.0.0/16");
        assert_eq!(cidr("10/8").display(Kind::Cidr), "10.0.0.0/8");
        assert_eq!(cidr("192.168.1.5").display(Kind::Cidr), "192.168.1.5/32");
        assert_eq!(parse("192.168.1.5/24", Kind::Inet).unwrap().display(Kind::Inet), "192.168.1.5/24");
        assert_eq!(parse("192.168.1.5", Kind::Inet).unwrap().display(Kind::Inet), "192.168.1.5");
        assert_eq!(cidr("2001:db8::/32").display(Kind::Cidr), "2001:db8::/32");
        let e = parse("10.0.0.1/16", Kind::Cidr).unwrap_err();
        assert_eq!(e.sqlstate(), "22P02");
        assert!(e.hint().unwrap().contains("10.0.0.0/16"), "{e:?}");
        for bad in ["10.0.0.0/33", "nonsense", "1.2.3.4.5", "::/129", ""] {
            assert_eq!(parse(bad, Kind::Cidr).map_err(|e| e.sqlstate()), Err("22P02"), "{bad}");
        }
        assert!(parse("10", Kind::Inet).is_err(), "only cidr abbreviates");
    }

    #[test]
    fn containment_overlap_and_parts() {
        let net8 = cidr("10.0.0.0/8");
        assert!(net8.contains(&cidr("10.1.0.0/16"), true));
        assert!(net8.contains(&net8, false) && !net8.contains(&net8, true));
        assert!(!net8.contains(&cidr("11.0.0.0/16"), false));
        assert!(!net8.contains(&cidr("::/0"), false), "families never contain each other");
        assert!(cidr("0.0.0.0/0").contains(&cidr("203.0.113.7/32"), true));
        assert!(net8.overlaps(&cidr("10.200.0.0/16")) && !net8.overlaps(&cidr("172.16.0.0/12")));
        let host = parse("192.168.1.5/24", Kind::Inet).unwrap();
        assert_eq!(host.network().display(Kind::Cidr), "192.168.1.0/24");
        assert_eq!(host.broadcast().display(Kind::Inet), "192.168.1.255/24");
        assert_eq!(host.netmask().to_string(), "255.255.255.0");
        assert_eq!(
            cidr("2001:db8::/32").broadcast().addr.to_string(),
            "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"
        );
    }
}

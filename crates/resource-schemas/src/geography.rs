//! Where types live: the partition of a region, the types that are global (one set of resources
//! per account, served from the partition's home region), and the regions an account must opt
//! into. Shared by the server (which calls a global type once per account) and the emulator
//! (which keeps one set of its resources per account).

/// An AWS partition: a set of regions with their own accounts and endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Partition {
    Aws,
    AwsCn,
    AwsUsGov,
    AwsIso,
    AwsIsoB,
    AwsIsoE,
    AwsIsoF,
    AwsEusc,
}

impl Partition {
    /// The partition a region belongs to, by its name.
    pub fn of(region: &str) -> Partition {
        let prefixes: [(&str, Partition); 7] = [
            ("cn-", Partition::AwsCn),
            ("us-gov-", Partition::AwsUsGov),
            ("us-isob-", Partition::AwsIsoB),
            ("us-isof-", Partition::AwsIsoF),
            ("us-iso-", Partition::AwsIso),
            ("eu-isoe-", Partition::AwsIsoE),
            ("eusc-", Partition::AwsEusc),
        ];
        prefixes
            .iter()
            .find(|(prefix, _)| region.starts_with(prefix))
            .map_or(Partition::Aws, |(_, p)| *p)
    }

    /// The name ARNs use: `aws`, `aws-cn`, `aws-us-gov`, ….
    pub fn name(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::AwsCn => "aws-cn",
            Partition::AwsUsGov => "aws-us-gov",
            Partition::AwsIso => "aws-iso",
            Partition::AwsIsoB => "aws-iso-b",
            Partition::AwsIsoE => "aws-iso-e",
            Partition::AwsIsoF => "aws-iso-f",
            Partition::AwsEusc => "aws-eusc",
        }
    }

    /// The region global services (IAM, Organizations, CloudFront, Route 53) answer from.
    pub fn home_region(self) -> &'static str {
        match self {
            Partition::Aws => "us-east-1",
            Partition::AwsCn => "cn-north-1",
            Partition::AwsUsGov => "us-gov-west-1",
            Partition::AwsIso => "us-iso-east-1",
            Partition::AwsIsoB => "us-isob-east-1",
            Partition::AwsIsoE => "eu-isoe-west-1",
            Partition::AwsIsoF => "us-isof-south-1",
            Partition::AwsEusc => "eusc-de-east-1",
        }
    }
}

/// Services whose resources belong to the account, not to a region: every region's endpoint
/// lists the same ones.
const GLOBAL_SERVICES: &[&str] = &["IAM", "Organizations", "CloudFront", "Route53"];

/// Whether `type_name` (`AWS::IAM::Role`) is global: one set of resources per account and
/// partition, read from the partition's home region.
pub fn is_global_type(type_name: &str) -> bool {
    let mut parts = type_name.split("::");
    matches!((parts.next(), parts.next()), (Some("AWS"), Some(service)) if GLOBAL_SERVICES.contains(&service))
}

/// The region a type's resources in `region` live in: the partition's home region for a global
/// type, `region` itself for the others.
pub fn home_of<'a>(type_name: &str, region: &'a str) -> &'a str {
    if is_global_type(type_name) {
        Partition::of(region).home_region()
    } else {
        region
    }
}

/// Regions disabled in a new account until it opts in (launched after March 2019).
pub const OPT_IN_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-west-1",
    "eu-central-2",
    "eu-south-1",
    "eu-south-2",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
];

pub fn is_opt_in(region: &str) -> bool {
    OPT_IN_REGIONS.contains(&region)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_and_home_regions() {
        assert_eq!(Partition::of("eu-west-1"), Partition::Aws);
        assert_eq!(Partition::of("cn-northwest-1").home_region(), "cn-north-1");
        assert_eq!(Partition::of("us-gov-east-1").name(), "aws-us-gov");
        assert_eq!(Partition::of("us-isob-east-1"), Partition::AwsIsoB);
        assert_eq!(Partition::of("us-iso-west-1"), Partition::AwsIso);
    }

    #[test]
    fn global_types_live_in_the_home_region() {
        assert!(is_global_type("AWS::IAM::Role"));
        assert!(is_global_type("AWS::Route53::HostedZone"));
        assert!(!is_global_type("AWS::Route53Resolver::ResolverRule"));
        assert!(!is_global_type("AWS::EC2::VPC"));
        assert_eq!(home_of("AWS::IAM::Role", "eu-west-1"), "us-east-1");
        assert_eq!(home_of("AWS::IAM::Role", "cn-northwest-1"), "cn-north-1");
        assert_eq!(home_of("AWS::EC2::VPC", "eu-west-1"), "eu-west-1");
    }
}

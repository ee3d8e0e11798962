//! SSRF defence: decides which origin IP addresses may be fetched, and reads IP-literal URL hosts.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Why an address is refused.
///
/// Most variants name a special-purpose range. The four tunnelling variants
/// ([`Ipv4Mapped`](Blocked::Ipv4Mapped), [`Ipv4Compatible`](Blocked::Ipv4Compatible),
/// [`Nat64`](Blocked::Nat64), [`SixToFour`](Blocked::SixToFour)) are IPv6 addresses that
/// carry an IPv4 address; they are refused only when the embedded IPv4 address is
/// itself refused, and they hold that inner verdict (always a non-tunnelling variant),
/// e.g. `::ffff:127.0.0.1` gives `Ipv4Mapped(&Loopback)`.
///
/// The inner verdict is a `&'static Blocked` so the enum stays `Copy`; the references
/// point into this module's constant range tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Blocked {
    /// `0.0.0.0/8` ("this network", RFC 1122 §3.2.1.3) and `::/128`. On Linux,
    /// connecting to `0.0.0.0` reaches the local host, which makes it a well-known SSRF
    /// bypass. `allow_private` never lets it through.
    Unspecified,
    /// `127.0.0.0/8` and `::1/128`.
    Loopback,
    /// RFC 1918 private networks: `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`.
    Private,
    /// `100.64.0.0/10`, shared address space for carrier-grade NAT (RFC 6598).
    Cgnat,
    /// `169.254.0.0/16` (RFC 3927) and `fe80::/10`, except the metadata endpoints
    /// listed under [`CloudMetadata`](Blocked::CloudMetadata).
    LinkLocal,
    /// Known cloud instance-metadata and host-agent endpoints, which hand out credentials:
    /// `169.254.169.254` (AWS, GCP, Azure, OCI, OpenStack, DigitalOcean, …),
    /// `169.254.170.2` (AWS ECS task metadata), `169.254.170.23` and `fd00:ec2::23`
    /// (EKS Pod Identity agent), `fd00:ec2::254` (AWS IMDS over IPv6), `fd20:ce::254`
    /// (GCP metadata over IPv6), `100.100.100.200` (Alibaba Cloud), and
    /// `168.63.129.16` (Azure WireServer). That last one is publicly allocated space but only
    /// means anything from inside Azure. `allow_private` never lets these through;
    /// list them in `allowed_nets` if you really mean it.
    CloudMetadata,
    /// `192.0.0.0/24` (IETF protocol assignments, RFC 6890; includes the DS-Lite and
    /// NAT64-discovery addresses) and whatever part of `2001::/23` is not named by another
    /// variant (RFC 2928). This includes the PCP/TURN anycast addresses; an image origin
    /// has no business there.
    IetfProtocol,
    /// `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24` (RFC 5737), `2001:db8::/32`
    /// (RFC 3849) and `3fff::/20` (RFC 9637).
    Documentation,
    /// `198.18.0.0/15` (RFC 2544) and `2001:2::/48` (RFC 5180).
    Benchmarking,
    /// `192.88.99.0/24`, the deprecated 6to4 relay anycast prefix (RFC 7526).
    SixToFourRelay,
    /// `224.0.0.0/4` and `ff00::/8`.
    Multicast,
    /// `255.255.255.255/32`, limited broadcast.
    Broadcast,
    /// `240.0.0.0/4`, reserved for future use (RFC 1112), apart from the broadcast address.
    /// Also covers all IPv6 space outside global unicast `2000::/3` that no other variant
    /// names, for example `5f00::/16` SRv6 SIDs, `::ffff:0:0:0/96` SIIT, and unassigned
    /// space.
    Reserved,
    /// `fc00::/7` unique local addresses (RFC 4193), except the metadata endpoints listed
    /// under [`CloudMetadata`](Blocked::CloudMetadata).
    UniqueLocal,
    /// `fec0::/10`, deprecated site-local (RFC 3879).
    SiteLocal,
    /// `100::/64`, discard-only (RFC 6666).
    Discard,
    /// `2001:10::/28` ORCHID (RFC 4843, deprecated) and `2001:20::/28` ORCHIDv2
    /// (RFC 7343). These are cryptographic identifiers, not locators.
    Orchid,
    /// `2001::/32` Teredo (RFC 4380). It tunnels to an obfuscated IPv4 client address
    /// through a relay, so we cannot vet the real destination, and it is always refused.
    Teredo,
    /// `64:ff9b:1::/48`, local-use NAT64 (RFC 8215). The translator's prefix length (/48
    /// to /96) decides where the IPv4 address sits, so the embedded address cannot be read
    /// reliably. Also, IANA marks the prefix as not globally reachable. Always refused.
    Nat64Local,
    /// `::ffff:0:0/96`, IPv4-mapped: the socket connects to the embedded IPv4 address,
    /// which is refused for the carried reason. This is the only tunnelling form that
    /// `allow_private` and `allowed_nets` look through, because it *is* the IPv4 address.
    Ipv4Mapped(&'static Blocked),
    /// `::/96` apart from `::` and `::1`: deprecated IPv4-compatible addresses
    /// (RFC 4291 §2.5.5.1), refused when the embedded IPv4 address is refused.
    Ipv4Compatible(&'static Blocked),
    /// `64:ff9b::/96`, the well-known NAT64 prefix (RFC 6052). The translator
    /// connects to the embedded IPv4 address, which is refused for the carried reason.
    Nat64(&'static Blocked),
    /// `2002::/16` 6to4 (RFC 3056). Bits 16..48 hold the IPv4 address of the tunnel
    /// endpoint, which is refused for the carried reason.
    SixToFour(&'static Blocked),
}

impl Blocked {
    /// The innermost reason: for tunnelling variants, the verdict on the embedded
    /// IPv4 address; otherwise `self`.
    pub fn innermost(self) -> Blocked {
        match self {
            Blocked::Ipv4Mapped(inner)
            | Blocked::Ipv4Compatible(inner)
            | Blocked::Nat64(inner)
            | Blocked::SixToFour(inner) => inner.innermost(),
            other => other,
        }
    }

    /// Whether [`AddressPolicy`]'s `allow_private` switch lifts this refusal.
    ///
    /// True for the classes an operator may run their own origins in: [`Loopback`],
    /// [`Private`], [`Cgnat`], [`LinkLocal`], [`UniqueLocal`] and [`SiteLocal`], and for
    /// [`Ipv4Mapped`] forms of those. Everything else stays refused:
    /// - [`Unspecified`]: `0.0.0.0` is the classic "localhost" bypass, and nobody configures
    ///   an origin as `0.0.0.0`. If you mean loopback, write `127.0.0.1`.
    /// - [`Multicast`], [`Broadcast`]: never unicast origins.
    /// - [`CloudMetadata`]: credentials. Opting into "private networks" must not also
    ///   opt into leaking instance credentials.
    /// - The NAT64, 6to4 and IPv4-compatible forms: these are only ever used as
    ///   spellings that smuggle a private address past a filter, never as the way to reach
    ///   a private origin.
    /// - Documentation, benchmarking, reserved and other protocol ranges are not real
    ///   private networks.
    ///
    /// `allowed_nets` overrides all of this for the nets an operator lists.
    ///
    /// [`Loopback`]: Blocked::Loopback
    /// [`Private`]: Blocked::Private
    /// [`Cgnat`]: Blocked::Cgnat
    /// [`LinkLocal`]: Blocked::LinkLocal
    /// [`UniqueLocal`]: Blocked::UniqueLocal
    /// [`SiteLocal`]: Blocked::SiteLocal
    /// [`Ipv4Mapped`]: Blocked::Ipv4Mapped
    /// [`Unspecified`]: Blocked::Unspecified
    /// [`Multicast`]: Blocked::Multicast
    /// [`Broadcast`]: Blocked::Broadcast
    /// [`CloudMetadata`]: Blocked::CloudMetadata
    pub fn is_private_use(self) -> bool {
        match self {
            Blocked::Loopback
            | Blocked::Private
            | Blocked::Cgnat
            | Blocked::LinkLocal
            | Blocked::UniqueLocal
            | Blocked::SiteLocal => true,
            Blocked::Ipv4Mapped(inner) => inner.is_private_use(),
            _ => false,
        }
    }
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            Blocked::Unspecified => "an unspecified / \"this network\" address",
            Blocked::Loopback => "a loopback address",
            Blocked::Private => "a private network address (RFC 1918)",
            Blocked::Cgnat => "a carrier-grade NAT shared address (100.64.0.0/10)",
            Blocked::LinkLocal => "a link-local address",
            Blocked::CloudMetadata => "a cloud metadata endpoint",
            Blocked::IetfProtocol => "an IETF protocol assignment address",
            Blocked::Documentation => "a documentation address",
            Blocked::Benchmarking => "a benchmarking address",
            Blocked::SixToFourRelay => "the 6to4 relay anycast prefix",
            Blocked::Multicast => "a multicast address",
            Blocked::Broadcast => "the broadcast address",
            Blocked::Reserved => "a reserved address",
            Blocked::UniqueLocal => "a unique local address (fc00::/7)",
            Blocked::SiteLocal => "a deprecated site-local address (fec0::/10)",
            Blocked::Discard => "a discard-only address (100::/64)",
            Blocked::Orchid => "an ORCHID identifier",
            Blocked::Teredo => "a Teredo tunnel address (2001::/32)",
            Blocked::Nat64Local => "a local-use NAT64 address (64:ff9b:1::/48)",
            Blocked::Ipv4Mapped(inner) => return write!(f, "an IPv4-mapped form of {inner}"),
            Blocked::Ipv4Compatible(inner) => return write!(f, "an IPv4-compatible form of {inner}"),
            Blocked::Nat64(inner) => return write!(f, "a NAT64 form of {inner}"),
            Blocked::SixToFour(inner) => return write!(f, "a 6to4 form of {inner}"),
        };
        f.write_str(what)
    }
}

impl std::error::Error for Blocked {}

/// Classify an address with no exceptions. `Ok(())` means it is publicly routable
/// and is not a known cloud metadata endpoint, so it may be fetched.
///
/// The range tables are explicit (see [`Blocked`]); this does not rely on the
/// unstable `IpAddr::is_global`.
pub fn classify(ip: IpAddr) -> Result<(), Blocked> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4).map_err(|b| *b),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// IPv4 special-purpose ranges. First match wins, so exact addresses come before
/// their covering ranges, and broadcast comes before `240.0.0.0/4`.
const V4_RANGES: &[(IpNet, Blocked)] = &[
    (IpNet::v4(169, 254, 169, 254, 32), Blocked::CloudMetadata),
    (IpNet::v4(169, 254, 170, 2, 32), Blocked::CloudMetadata),
    (IpNet::v4(169, 254, 170, 23, 32), Blocked::CloudMetadata),
    (IpNet::v4(100, 100, 100, 200, 32), Blocked::CloudMetadata),
    (IpNet::v4(168, 63, 129, 16, 32), Blocked::CloudMetadata),
    (IpNet::v4(0, 0, 0, 0, 8), Blocked::Unspecified),
    (IpNet::v4(10, 0, 0, 0, 8), Blocked::Private),
    (IpNet::v4(100, 64, 0, 0, 10), Blocked::Cgnat),
    (IpNet::v4(127, 0, 0, 0, 8), Blocked::Loopback),
    (IpNet::v4(169, 254, 0, 0, 16), Blocked::LinkLocal),
    (IpNet::v4(172, 16, 0, 0, 12), Blocked::Private),
    (IpNet::v4(192, 0, 0, 0, 24), Blocked::IetfProtocol),
    (IpNet::v4(192, 0, 2, 0, 24), Blocked::Documentation),
    (IpNet::v4(192, 88, 99, 0, 24), Blocked::SixToFourRelay),
    (IpNet::v4(192, 168, 0, 0, 16), Blocked::Private),
    (IpNet::v4(198, 18, 0, 0, 15), Blocked::Benchmarking),
    (IpNet::v4(198, 51, 100, 0, 24), Blocked::Documentation),
    (IpNet::v4(203, 0, 113, 0, 24), Blocked::Documentation),
    (IpNet::v4(224, 0, 0, 0, 4), Blocked::Multicast),
    (IpNet::v4(255, 255, 255, 255, 32), Blocked::Broadcast),
    (IpNet::v4(240, 0, 0, 0, 4), Blocked::Reserved),
];

/// IPv6 special-purpose ranges that refuse outright. First match wins. The
/// IPv4-embedding prefixes (`::ffff:0:0/96`, `::/96`, `64:ff9b::/96`, `2002::/16`) and the
/// catch-all "outside `2000::/3`" are handled in [`classify_v6`] after this table.
const V6_RANGES: &[(IpNet, Blocked)] = &[
    (IpNet::v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128), Blocked::CloudMetadata),
    (IpNet::v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23], 128), Blocked::CloudMetadata),
    (IpNet::v6([0xfd20, 0xce, 0, 0, 0, 0, 0, 0x254], 128), Blocked::CloudMetadata),
    (IpNet::v6([0, 0, 0, 0, 0, 0, 0, 0], 128), Blocked::Unspecified),
    (IpNet::v6([0, 0, 0, 0, 0, 0, 0, 1], 128), Blocked::Loopback),
    (IpNet::v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), Blocked::Nat64Local),
    (IpNet::v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), Blocked::Discard),
    (IpNet::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), Blocked::Teredo),
    (IpNet::v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48), Blocked::Benchmarking),
    (IpNet::v6([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28), Blocked::Orchid),
    (IpNet::v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28), Blocked::Orchid),
    (IpNet::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), Blocked::IetfProtocol),
    (IpNet::v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), Blocked::Documentation),
    (IpNet::v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), Blocked::Documentation),
    (IpNet::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), Blocked::UniqueLocal),
    (IpNet::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), Blocked::LinkLocal),
    (IpNet::v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), Blocked::SiteLocal),
    (IpNet::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), Blocked::Multicast),
];

fn lookup(table: &'static [(IpNet, Blocked)], ip: IpAddr) -> Option<&'static Blocked> {
    table.iter().find(|(net, _)| net.contains(ip)).map(|(_, blocked)| blocked)
}

fn classify_v4(ip: Ipv4Addr) -> Result<(), &'static Blocked> {
    match lookup(V4_RANGES, IpAddr::V4(ip)) {
        Some(blocked) => Err(blocked),
        None => Ok(()),
    }
}

fn classify_v6(ip: Ipv6Addr) -> Result<(), Blocked> {
    if let Some(blocked) = lookup(V6_RANGES, IpAddr::V6(ip)) {
        return Err(*blocked);
    }
    let bits = u128::from(ip);
    let low_v4 = Ipv4Addr::from(bits as u32);
    match bits >> 32 {
        // ::ffff:0:0/96
        0xffff => return classify_v4(low_v4).map_err(Blocked::Ipv4Mapped),
        // ::/96 (:: and ::1 were matched by the table above)
        0 => return classify_v4(low_v4).map_err(Blocked::Ipv4Compatible),
        // 64:ff9b::/96
        0x0064_ff9b_0000_0000_0000_0000 => return classify_v4(low_v4).map_err(Blocked::Nat64),
        _ => {}
    }
    // 2002::/16: the IPv4 address is in bits 16..48.
    if bits >> 112 == 0x2002 {
        return classify_v4(Ipv4Addr::from((bits >> 80) as u32)).map_err(Blocked::SixToFour);
    }
    // Everything else outside global unicast 2000::/3 is reserved or not globally routed.
    if bits >> 125 != 0b001 {
        return Err(Blocked::Reserved);
    }
    Ok(())
}

/// Which refused addresses are let through anyway, as set in config.
///
/// The check runs in this order:
/// 1. [`classify`] returns `Ok`: allowed.
/// 2. The address, or its IPv4/IPv4-mapped counterpart, is inside one of
///    `allowed_nets`: allowed. This is an explicit operator decision and overrides
///    every class, including metadata, multicast and `0.0.0.0`. `0.0.0.0/0` plus
///    `::/0` switches the defence off.
/// 3. `allow_private` is set and [`Blocked::is_private_use`] holds: allowed.
///    This covers loopback, RFC 1918, CGNAT, link-local, ULA and site-local. It never
///    covers unspecified, multicast, broadcast, cloud metadata, or the NAT64, 6to4 and
///    IPv4-compatible spellings.
/// 4. Otherwise refused, with the reason from [`classify`].
///
/// The default is [`AddressPolicy::strict`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allow_private: bool,
    allowed_nets: Vec<IpNet>,
}

impl AddressPolicy {
    /// Only publicly routable addresses.
    pub fn strict() -> Self {
        Self::new(false, Vec::new())
    }

    /// Also let through private-use classes (see [`Blocked::is_private_use`]).
    pub fn allow_all_private() -> Self {
        Self::new(true, Vec::new())
    }

    /// A policy from config values.
    pub fn new(allow_private: bool, allowed_nets: Vec<IpNet>) -> Self {
        Self { allow_private, allowed_nets }
    }

    /// Whether private-use classes are let through.
    pub fn allow_private(&self) -> bool {
        self.allow_private
    }

    /// Nets whose addresses are always let through.
    pub fn allowed_nets(&self) -> &[IpNet] {
        &self.allowed_nets
    }

    /// Decide whether `ip` may be fetched. `Err` carries the reason from [`classify`].
    ///
    /// Call this on every address you are about to connect to: on the IP literal in the
    /// URL (see [`parse_host_ip`]), on *each* address DNS returns, and again on every
    /// redirect hop. Then connect to the address you checked, not to a fresh lookup, or
    /// DNS rebinding gets around the check.
    pub fn check(&self, ip: IpAddr) -> Result<(), Blocked> {
        let blocked = match classify(ip) {
            Ok(()) => return Ok(()),
            Err(blocked) => blocked,
        };
        let counterpart = ipv4_counterpart(ip);
        let listed =
            self.allowed_nets.iter().any(|net| net.contains(ip) || counterpart.is_some_and(|alt| net.contains(alt)));
        if listed || (self.allow_private && blocked.is_private_use()) {
            return Ok(());
        }
        Err(blocked)
    }
}

/// `a.b.c.d` ↔ `::ffff:a.b.c.d`: the same destination, spelled in the other family.
fn ipv4_counterpart(ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(v4) => Some(IpAddr::V6(v4.to_ipv6_mapped())),
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
    }
}

/// A CIDR network such as `10.0.0.0/8` or `::1/128`.
///
/// Parses from `"10.0.0.0/8"`, `"::1/128"`, or a bare address (`"127.0.0.1"` is a /32,
/// `"::1"` is a /128). Addresses must be in canonical form (`127.1` is rejected), and
/// host bits past the prefix must be zero. `10.0.0.1/8` is rejected rather than
/// silently widened, since it is most likely a typo in an allowlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// A network from its base address and prefix length. Fails if the prefix is longer
    /// than the address or host bits are set.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, IpNetParseError> {
        let net = IpNet { addr, prefix };
        if prefix > net.max_prefix() {
            return Err(IpNetParseError::new(net.to_string(), "prefix too long"));
        }
        if net.host_bits(addr) != 0 {
            return Err(IpNetParseError::new(net.to_string(), "host bits set past the prefix"));
        }
        Ok(net)
    }

    /// The network's base address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is inside this network. Families never mix: `10.0.0.0/8` does not
    /// contain `::ffff:10.0.0.1`. [`AddressPolicy::check`] handles that mapping.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = prefix_mask(self.prefix, 32) as u32;
                u32::from(ip) & mask == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = prefix_mask(self.prefix, 128);
                u128::from(ip) & mask == u128::from(net)
            }
            _ => false,
        }
    }

    /// Table constructor; the tables are checked in tests.
    const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Self {
        IpNet { addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)), prefix }
    }

    /// Table constructor; the tables are checked in tests.
    const fn v6(s: [u16; 8], prefix: u8) -> Self {
        IpNet { addr: IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7])), prefix }
    }

    fn max_prefix(&self) -> u8 {
        match self.addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        }
    }

    fn host_bits(&self, ip: IpAddr) -> u128 {
        match ip {
            IpAddr::V4(v4) => u128::from(u32::from(v4)) & !prefix_mask(self.prefix, 32),
            IpAddr::V6(v6) => u128::from(v6) & !prefix_mask(self.prefix, 128),
        }
    }
}

/// The mask for the top `prefix` bits of a `width`-bit address, in the low `width`
/// bits of a u128.
fn prefix_mask(prefix: u8, width: u32) -> u128 {
    let prefix = u32::from(prefix).min(width);
    if prefix == 0 {
        return 0;
    }
    (u128::MAX << (128 - prefix)) >> (128 - width)
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for IpNet {
    type Err = IpNetParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let input = s.trim();
        let err = |reason| IpNetParseError::new(input.to_owned(), reason);
        let (addr, prefix) = match input.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (input, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| err("not an IP address"))?;
        let prefix = match prefix {
            None => match addr {
                IpAddr::V4(_) => 32,
                IpAddr::V6(_) => 128,
            },
            Some(p) => {
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err("prefix length is not a number"));
                }
                p.parse::<u8>().map_err(|_| err("prefix length is not a number"))?
            }
        };
        IpNet::new(addr, prefix).map_err(|e| err(e.reason))
    }
}

/// Why a string is not a valid [`IpNet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpNetParseError {
    input: String,
    reason: &'static str,
}

impl IpNetParseError {
    fn new(input: String, reason: &'static str) -> Self {
        Self { input, reason }
    }
}

impl fmt::Display for IpNetParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid network {:?}: {}", self.input, self.reason)
    }
}

impl std::error::Error for IpNetParseError {}

/// Read a URL host as an IP address the way a WHATWG URL parser does (browsers,
/// the `url` crate and so `reqwest`; curl and `inet_aton` agree on the IPv4 forms), so a
/// literal host can be checked before any connection.
///
/// - IPv4 in every legacy spelling: `2130706433`, `0x7f000001`, `0x7f.1`, `127.1`,
///   `127.0.1`, `0177.0.0.1`, `017700000001`, and a trailing dot (`127.0.0.1.`).
///   Percent-escapes are decoded first (`127.0.0.%31`). Unicode compatibility
///   forms that IDNA mapping folds to ASCII are folded too (fullwidth `１２７．０．０．１`,
///   ideographic `。`, circled `①`, mathematical digits and so on; the table is NFKC_Casefold
///   restricted to characters that can spell an IPv4 literal). Characters IDNA ignores,
///   such as the soft hyphen, are dropped.
/// - IPv6 in brackets (`[::ffff:127.0.0.1]`) or bare (`::1`). A zone id
///   (`[fe80::1%25eth0]`, which curl accepts) is dropped, so the address is still
///   classified.
///
/// Returns `None` for names (`example.com`, `localhost`) and for hosts a URL parser
/// rejects (`1.2.3.4.5`, `256.0.0.1`, `08.0.0.1`). Pass the host only, with no port or
/// userinfo. `None` does not mean safe: resolve the name and [`AddressPolicy::check`]
/// every address it resolves to.
pub fn parse_host_ip(host: &str) -> Option<IpAddr> {
    // The URL parser strips leading/trailing C0 controls and spaces and removes tabs and
    // newlines anywhere.
    let host: String =
        host.trim_matches(|c: char| c <= ' ').chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).collect();
    if let Some(inner) = host.strip_prefix('[') {
        return parse_ipv6_literal(inner.strip_suffix(']')?).map(IpAddr::V6);
    }
    if host.contains(':') {
        return parse_ipv6_literal(&host).map(IpAddr::V6);
    }
    let decoded = percent_decode(host.as_bytes());
    let decoded = String::from_utf8_lossy(&decoded);
    let mut folded = String::with_capacity(decoded.len());
    for c in decoded.chars() {
        fold_char(c, &mut folded);
    }
    parse_whatwg_ipv4(&folded).map(IpAddr::V4)
}

/// An IPv6 literal with an optional `%zone` suffix (`%25zone` in URLs), which is dropped.
fn parse_ipv6_literal(s: &str) -> Option<Ipv6Addr> {
    let addr = s.split('%').next().unwrap_or(s);
    addr.parse().ok()
}

/// WHATWG percent-decode: `%XX` becomes a byte; a malformed escape stays as it is.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' && i + 2 < input.len() {
            if let (Some(h), Some(l)) = (hex(input[i + 1]), hex(input[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// WHATWG IPv4 parser (URL Standard §3.5, "IPv4 parser"). `None` on failure.
fn parse_whatwg_ipv4(input: &str) -> Option<Ipv4Addr> {
    let mut parts: Vec<&str> = input.split('.').collect();
    if parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    if parts.len() > 4 {
        return None;
    }
    let numbers = parts.iter().map(|p| parse_ipv4_number(p)).collect::<Option<Vec<u64>>>()?;
    let (&last, leading) = numbers.split_last()?;
    if leading.iter().any(|&n| n > 255) {
        return None;
    }
    // numbers.len() is 1..=4, so the limit is 256^4 ..= 256^1.
    if last >= 256u64.pow(5 - numbers.len() as u32) {
        return None;
    }
    let mut value = last;
    for (i, &n) in leading.iter().enumerate() {
        value += n << (8 * (3 - i));
    }
    u32::try_from(value).ok().map(Ipv4Addr::from)
}

/// WHATWG "IPv4 number parser": `0x`/`0X` means hex, a leading `0` means octal, otherwise
/// decimal; a bare `0x` is 0. The result saturates, which is fine because anything
/// ≥ 2^32 fails the range checks.
fn parse_ipv4_number(input: &str) -> Option<u64> {
    if input.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(rest) = input.strip_prefix("0x").or_else(|| input.strip_prefix("0X")) {
        (rest, 16)
    } else if input.len() >= 2 && input.starts_with('0') {
        (&input[1..], 8)
    } else {
        (input, 10)
    };
    let mut value: u64 = 0;
    for c in digits.chars() {
        let d = c.to_digit(radix)?;
        value = value.saturating_mul(u64::from(radix)).saturating_add(u64::from(d));
    }
    Some(value)
}

/// Append `c` after IDNA-style folding: ASCII is lowercased, ignorable characters are
/// dropped, compatibility characters that can spell part of an IPv4 literal become their
/// ASCII form, and anything else is kept (and then fails the IPv4 parse, as it should).
fn fold_char(c: char, out: &mut String) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
        return;
    }
    let cp = u32::from(c);
    if IDNA_IGNORED.iter().any(|&(lo, hi)| (lo..=hi).contains(&cp)) {
        return;
    }
    let idx = COMPAT_FOLD.partition_point(|&(_, hi, _)| hi < cp);
    match COMPAT_FOLD.get(idx) {
        Some(&(lo, hi, to)) if lo <= cp && cp <= hi => {
            if lo == hi {
                out.push_str(to);
            } else {
                // A run of consecutive characters mapping to consecutive ASCII.
                let first = u32::from(to.as_bytes()[0]);
                out.push(char::from_u32(first + (cp - lo)).unwrap_or(c));
            }
        }
        _ => out.push(c),
    }
}

/// Default_Ignorable_Code_Point, which UTS #46 (Unicode 15.1 and later, as used by the
/// `url` crate) maps to nothing. A few of these make IDNA fail rather than vanish; dropping
/// them anyway only turns an invalid URL into an address that still gets checked.
const IDNA_IGNORED: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
];

/// Non-ASCII code points whose NFKC_Casefold (plus the UTS #46 mapping of U+3002 to '.')
/// consists only of `0-9 a-f x .`, i.e. the ones that can help spell an IPv4
/// literal. `(first, last, mapping)`: a run with `first < last` maps to consecutive
/// single characters starting at `mapping`. Sorted, non-overlapping.
///
/// Generated from Python's `unicodedata` (Unicode 14.0) with
/// `nfkc(nfkc(c).casefold()).replace('\u3002', '.')`, plus Unicode 16 outlined
/// digits and letters (U+1CCD6.., U+1CCF0..).
const COMPAT_FOLD: &[(u32, u32, &str)] = &[
    (0x00AA, 0x00AA, "a"),
    (0x00B2, 0x00B3, "2"),
    (0x00B9, 0x00B9, "1"),
    (0x02E3, 0x02E3, "x"),
    (0x1D2C, 0x1D2C, "a"),
    (0x1D2E, 0x1D2E, "b"),
    (0x1D30, 0x1D31, "d"),
    (0x1D43, 0x1D43, "a"),
    (0x1D47, 0x1D47, "b"),
    (0x1D48, 0x1D49, "d"),
    (0x1D9C, 0x1D9C, "c"),
    (0x1DA0, 0x1DA0, "f"),
    (0x2024, 0x2024, "."),
    (0x2025, 0x2025, ".."),
    (0x2026, 0x2026, "..."),
    (0x2070, 0x2070, "0"),
    (0x2074, 0x2079, "4"),
    (0x2080, 0x2089, "0"),
    (0x2090, 0x2090, "a"),
    (0x2091, 0x2091, "e"),
    (0x2093, 0x2093, "x"),
    (0x2102, 0x2102, "c"),
    (0x212C, 0x212D, "b"),
    (0x212F, 0x212F, "e"),
    (0x2130, 0x2131, "e"),
    (0x213B, 0x213B, "fax"),
    (0x2145, 0x2145, "d"),
    (0x2146, 0x2147, "d"),
    (0x2169, 0x2169, "x"),
    (0x216D, 0x216E, "c"),
    (0x2179, 0x2179, "x"),
    (0x217D, 0x217E, "c"),
    (0x2460, 0x2468, "1"),
    (0x2469, 0x2469, "10"),
    (0x246A, 0x246A, "11"),
    (0x246B, 0x246B, "12"),
    (0x246C, 0x246C, "13"),
    (0x246D, 0x246D, "14"),
    (0x246E, 0x246E, "15"),
    (0x246F, 0x246F, "16"),
    (0x2470, 0x2470, "17"),
    (0x2471, 0x2471, "18"),
    (0x2472, 0x2472, "19"),
    (0x2473, 0x2473, "20"),
    (0x2488, 0x2488, "1."),
    (0x2489, 0x2489, "2."),
    (0x248A, 0x248A, "3."),
    (0x248B, 0x248B, "4."),
    (0x248C, 0x248C, "5."),
    (0x248D, 0x248D, "6."),
    (0x248E, 0x248E, "7."),
    (0x248F, 0x248F, "8."),
    (0x2490, 0x2490, "9."),
    (0x2491, 0x2491, "10."),
    (0x2492, 0x2492, "11."),
    (0x2493, 0x2493, "12."),
    (0x2494, 0x2494, "13."),
    (0x2495, 0x2495, "14."),
    (0x2496, 0x2496, "15."),
    (0x2497, 0x2497, "16."),
    (0x2498, 0x2498, "17."),
    (0x2499, 0x2499, "18."),
    (0x249A, 0x249A, "19."),
    (0x249B, 0x249B, "20."),
    (0x24B6, 0x24BB, "a"),
    (0x24CD, 0x24CD, "x"),
    (0x24D0, 0x24D5, "a"),
    (0x24E7, 0x24E7, "x"),
    (0x24EA, 0x24EA, "0"),
    (0x3002, 0x3002, "."),
    (0x3251, 0x3251, "21"),
    (0x3252, 0x3252, "22"),
    (0x3253, 0x3253, "23"),
    (0x3254, 0x3254, "24"),
    (0x3255, 0x3255, "25"),
    (0x3256, 0x3256, "26"),
    (0x3257, 0x3257, "27"),
    (0x3258, 0x3258, "28"),
    (0x3259, 0x3259, "29"),
    (0x325A, 0x325A, "30"),
    (0x325B, 0x325B, "31"),
    (0x325C, 0x325C, "32"),
    (0x325D, 0x325D, "33"),
    (0x325E, 0x325E, "34"),
    (0x325F, 0x325F, "35"),
    (0x32B1, 0x32B1, "36"),
    (0x32B2, 0x32B2, "37"),
    (0x32B3, 0x32B3, "38"),
    (0x32B4, 0x32B4, "39"),
    (0x32B5, 0x32B5, "40"),
    (0x32B6, 0x32B6, "41"),
    (0x32B7, 0x32B7, "42"),
    (0x32B8, 0x32B8, "43"),
    (0x32B9, 0x32B9, "44"),
    (0x32BA, 0x32BA, "45"),
    (0x32BB, 0x32BB, "46"),
    (0x32BC, 0x32BC, "47"),
    (0x32BD, 0x32BD, "48"),
    (0x32BE, 0x32BE, "49"),
    (0x32BF, 0x32BF, "50"),
    (0x3372, 0x3372, "da"),
    (0x33C4, 0x33C4, "cc"),
    (0x33C5, 0x33C5, "cd"),
    (0x33C8, 0x33C8, "db"),
    (0xA7F2, 0xA7F2, "c"),
    (0xA7F3, 0xA7F3, "f"),
    (0xFB00, 0xFB00, "ff"),
    (0xFE12, 0xFE12, "."),
    (0xFE19, 0xFE19, "..."),
    (0xFE30, 0xFE30, ".."),
    (0xFE52, 0xFE52, "."),
    (0xFF0E, 0xFF0E, "."),
    (0xFF10, 0xFF19, "0"),
    (0xFF21, 0xFF26, "a"),
    (0xFF38, 0xFF38, "x"),
    (0xFF41, 0xFF46, "a"),
    (0xFF58, 0xFF58, "x"),
    (0xFF61, 0xFF61, "."),
    (0x1CCD6, 0x1CCDB, "a"),
    (0x1CCED, 0x1CCED, "x"),
    (0x1CCF0, 0x1CCF9, "0"),
    (0x1D400, 0x1D405, "a"),
    (0x1D417, 0x1D417, "x"),
    (0x1D41A, 0x1D41F, "a"),
    (0x1D431, 0x1D431, "x"),
    (0x1D434, 0x1D439, "a"),
    (0x1D44B, 0x1D44B, "x"),
    (0x1D44E, 0x1D453, "a"),
    (0x1D465, 0x1D465, "x"),
    (0x1D468, 0x1D46D, "a"),
    (0x1D47F, 0x1D47F, "x"),
    (0x1D482, 0x1D487, "a"),
    (0x1D499, 0x1D499, "x"),
    (0x1D49C, 0x1D49C, "a"),
    (0x1D49E, 0x1D49F, "c"),
    (0x1D4B3, 0x1D4B3, "x"),
    (0x1D4B6, 0x1D4B9, "a"),
    (0x1D4BB, 0x1D4BB, "f"),
    (0x1D4CD, 0x1D4CD, "x"),
    (0x1D4D0, 0x1D4D5, "a"),
    (0x1D4E7, 0x1D4E7, "x"),
    (0x1D4EA, 0x1D4EF, "a"),
    (0x1D501, 0x1D501, "x"),
    (0x1D504, 0x1D505, "a"),
    (0x1D507, 0x1D509, "d"),
    (0x1D51B, 0x1D51B, "x"),
    (0x1D51E, 0x1D523, "a"),
    (0x1D535, 0x1D535, "x"),
    (0x1D538, 0x1D539, "a"),
    (0x1D53B, 0x1D53D, "d"),
    (0x1D54F, 0x1D54F, "x"),
    (0x1D552, 0x1D557, "a"),
    (0x1D569, 0x1D569, "x"),
    (0x1D56C, 0x1D571, "a"),
    (0x1D583, 0x1D583, "x"),
    (0x1D586, 0x1D58B, "a"),
    (0x1D59D, 0x1D59D, "x"),
    (0x1D5A0, 0x1D5A5, "a"),
    (0x1D5B7, 0x1D5B7, "x"),
    (0x1D5BA, 0x1D5BF, "a"),
    (0x1D5D1, 0x1D5D1, "x"),
    (0x1D5D4, 0x1D5D9, "a"),
    (0x1D5EB, 0x1D5EB, "x"),
    (0x1D5EE, 0x1D5F3, "a"),
    (0x1D605, 0x1D605, "x"),
    (0x1D608, 0x1D60D, "a"),
    (0x1D61F, 0x1D61F, "x"),
    (0x1D622, 0x1D627, "a"),
    (0x1D639, 0x1D639, "x"),
    (0x1D63C, 0x1D641, "a"),
    (0x1D653, 0x1D653, "x"),
    (0x1D656, 0x1D65B, "a"),
    (0x1D66D, 0x1D66D, "x"),
    (0x1D670, 0x1D675, "a"),
    (0x1D687, 0x1D687, "x"),
    (0x1D68A, 0x1D68F, "a"),
    (0x1D6A1, 0x1D6A1, "x"),
    (0x1D7CE, 0x1D7D7, "0"),
    (0x1D7D8, 0x1D7E1, "0"),
    (0x1D7E2, 0x1D7EB, "0"),
    (0x1D7EC, 0x1D7F5, "0"),
    (0x1D7F6, 0x1D7FF, "0"),
    (0x1F100, 0x1F100, "0."),
    (0x1F12B, 0x1F12B, "c"),
    (0x1F12D, 0x1F12D, "cd"),
    (0x1F130, 0x1F135, "a"),
    (0x1F147, 0x1F147, "x"),
    (0x1FBF0, 0x1FBF9, "0"),
];

#[cfg(test)]
mod tests {
    use super::Blocked::*;
    use super::*;

    type Verdict = Result<(), Blocked>;
    type Wrap = fn(&'static Blocked) -> Blocked;

    /// Every vector goes through `parse_host_ip`, then `AddressPolicy::strict().check`.
    /// The expected verdict names the class; a failure message names the vector.
    const STRICT_TABLE: &[(&str, Verdict)] = &[
        // Public, allowed.
        ("8.8.8.8", Ok(())),
        ("1.1.1.1", Ok(())),
        ("93.184.216.34", Ok(())),
        ("[2606:4700:4700::1111]", Ok(())),
        ("2001:4860:4860::8888", Ok(())),
        ("2a00:1450:4001:830::200e", Ok(())),
        ("1.0.0.0", Ok(())),
        ("9.255.255.255", Ok(())),
        ("11.0.0.0", Ok(())),
        ("126.255.255.255", Ok(())),
        ("128.0.0.0", Ok(())),
        ("169.253.255.255", Ok(())),
        ("169.255.0.0", Ok(())),
        ("192.0.1.0", Ok(())),
        ("192.167.255.255", Ok(())),
        ("192.169.0.0", Ok(())),
        ("198.17.255.255", Ok(())),
        ("198.20.0.0", Ok(())),
        ("223.255.255.255", Ok(())),
        ("168.63.129.17", Ok(())),
        ("2001:200::1", Ok(())),
        ("2001:db9::1", Ok(())),
        ("::ffff:8.8.8.8", Ok(())),
        ("64:ff9b::808:808", Ok(())),
        ("2002:808:808::1", Ok(())),
        ("::1.1.1.1", Ok(())),
        // Boundaries: 172.16.0.0/12 and 100.64.0.0/10.
        ("172.15.255.255", Ok(())),
        ("172.16.0.0", Err(Private)),
        ("172.31.255.255", Err(Private)),
        ("172.32.0.0", Ok(())),
        ("100.63.255.255", Ok(())),
        ("100.64.0.0", Err(Cgnat)),
        ("100.127.255.255", Err(Cgnat)),
        ("100.128.0.0", Ok(())),
        // IPv4 special-purpose ranges.
        ("0.0.0.0", Err(Unspecified)),
        ("0.255.255.255", Err(Unspecified)),
        ("10.0.0.0", Err(Private)),
        ("10.255.255.255", Err(Private)),
        ("127.0.0.1", Err(Loopback)),
        ("127.255.255.254", Err(Loopback)),
        ("169.254.0.1", Err(LinkLocal)),
        ("169.254.255.255", Err(LinkLocal)),
        ("169.254.169.254", Err(CloudMetadata)),
        ("169.254.170.2", Err(CloudMetadata)),
        ("169.254.170.23", Err(CloudMetadata)),
        ("100.100.100.200", Err(CloudMetadata)),
        ("168.63.129.16", Err(CloudMetadata)),
        ("192.0.0.0", Err(IetfProtocol)),
        ("192.0.0.170", Err(IetfProtocol)),
        ("192.0.2.1", Err(Documentation)),
        ("192.88.99.1", Err(SixToFourRelay)),
        ("192.168.0.0", Err(Private)),
        ("192.168.255.255", Err(Private)),
        ("198.18.0.0", Err(Benchmarking)),
        ("198.19.255.255", Err(Benchmarking)),
        ("198.51.100.7", Err(Documentation)),
        ("203.0.113.9", Err(Documentation)),
        ("224.0.0.1", Err(Multicast)),
        ("239.255.255.250", Err(Multicast)),
        ("240.0.0.0", Err(Reserved)),
        ("255.255.255.254", Err(Reserved)),
        ("255.255.255.255", Err(Broadcast)),
        // Odd IPv4 spellings (WHATWG / inet_aton).
        ("2130706433", Err(Loopback)),
        ("0x7f.1", Err(Loopback)),
        ("127.1", Err(Loopback)),
        ("127.0.1", Err(Loopback)),
        ("0177.0.0.1", Err(Loopback)),
        ("0x7f000001", Err(Loopback)),
        ("0X7F000001", Err(Loopback)),
        ("017700000001", Err(Loopback)),
        ("0x7f.0x0.0x0.0x1", Err(Loopback)),
        ("127.0.0.1.", Err(Loopback)),
        ("127.0.0.%31", Err(Loopback)),
        ("%31%32%37.0.0.1", Err(Loopback)),
        ("\u{FF11}\u{FF12}\u{FF17}\u{FF0E}\u{FF10}\u{FF0E}\u{FF10}\u{FF0E}\u{FF11}", Err(Loopback)),
        ("127\u{3002}0\u{3002}0\u{3002}1", Err(Loopback)),
        ("\u{2460}\u{2461}\u{2466}.\u{24EA}.\u{24EA}.\u{2460}", Err(Loopback)),
        ("127.0.0.1\u{AD}", Err(Loopback)),
        ("0", Err(Unspecified)),
        ("0x", Err(Unspecified)),
        ("2852039166", Err(CloudMetadata)),
        ("0xa9fea9fe", Err(CloudMetadata)),
        ("0251.0376.0251.0376", Err(CloudMetadata)),
        ("169.254.43518", Err(CloudMetadata)),
        ("10.1", Err(Private)),
        ("3232235777", Err(Private)),
        ("0xc0.0xa8.1.1", Err(Private)),
        ("4294967295", Err(Broadcast)),
        ("0xffffffff", Err(Broadcast)),
        // IPv6 special-purpose ranges.
        ("[::]", Err(Unspecified)),
        ("[::1]", Err(Loopback)),
        ("0:0:0:0:0:0:0:1", Err(Loopback)),
        ("[fe80::1]", Err(LinkLocal)),
        ("[fe80::1%25eth0]", Err(LinkLocal)),
        ("febf:ffff::1", Err(LinkLocal)),
        ("fec0::1", Err(SiteLocal)),
        ("fc00::1", Err(UniqueLocal)),
        ("fd12:3456:789a::1", Err(UniqueLocal)),
        ("[fd00:ec2::254]", Err(CloudMetadata)),
        ("fd00:ec2::23", Err(CloudMetadata)),
        ("fd20:ce::254", Err(CloudMetadata)),
        ("ff02::1", Err(Multicast)),
        ("ff0e::1", Err(Multicast)),
        ("100::1", Err(Discard)),
        ("100::ffff:ffff:ffff:ffff", Err(Discard)),
        ("100:0:0:1::", Err(Reserved)),
        ("2001::1", Err(Teredo)),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Err(Teredo)),
        ("2001:1::1", Err(IetfProtocol)),
        ("2001:1ff:ffff::1", Err(IetfProtocol)),
        ("2001:2::1", Err(Benchmarking)),
        ("2001:10::1", Err(Orchid)),
        ("2001:2f::1", Err(Orchid)),
        ("2001:db8::1", Err(Documentation)),
        ("2001:db8:ffff::1", Err(Documentation)),
        ("3fff::1", Err(Documentation)),
        ("64:ff9b:1::a00:1", Err(Nat64Local)),
        ("64:ff9b:1:ffff::808:808", Err(Nat64Local)),
        ("5f00::1", Err(Reserved)),
        ("4000::1", Err(Reserved)),
        ("1fff:ffff::1", Err(Reserved)),
        ("::ffff:0:808:808", Err(Reserved)),
        // IPv4-mapped: one per blocked IPv4 class.
        ("[::ffff:127.0.0.1]", Err(Ipv4Mapped(&Loopback))),
        ("::ffff:7f00:1", Err(Ipv4Mapped(&Loopback))),
        ("::ffff:0.0.0.0", Err(Ipv4Mapped(&Unspecified))),
        ("::ffff:10.0.0.1", Err(Ipv4Mapped(&Private))),
        ("::ffff:100.64.0.1", Err(Ipv4Mapped(&Cgnat))),
        ("::ffff:169.254.1.1", Err(Ipv4Mapped(&LinkLocal))),
        ("::ffff:169.254.169.254", Err(Ipv4Mapped(&CloudMetadata))),
        ("::ffff:192.0.0.1", Err(Ipv4Mapped(&IetfProtocol))),
        ("::ffff:192.0.2.1", Err(Ipv4Mapped(&Documentation))),
        ("::ffff:198.18.0.1", Err(Ipv4Mapped(&Benchmarking))),
        ("::ffff:192.88.99.1", Err(Ipv4Mapped(&SixToFourRelay))),
        ("::ffff:224.0.0.1", Err(Ipv4Mapped(&Multicast))),
        ("::ffff:240.0.0.1", Err(Ipv4Mapped(&Reserved))),
        ("::ffff:255.255.255.255", Err(Ipv4Mapped(&Broadcast))),
        // IPv4-compatible (deprecated).
        ("::127.0.0.1", Err(Ipv4Compatible(&Loopback))),
        ("::10.0.0.1", Err(Ipv4Compatible(&Private))),
        ("::169.254.169.254", Err(Ipv4Compatible(&CloudMetadata))),
        ("::2", Err(Ipv4Compatible(&Unspecified))),
        // NAT64 well-known prefix.
        ("64:ff9b::127.0.0.1", Err(Nat64(&Loopback))),
        ("64:ff9b::a9fe:a9fe", Err(Nat64(&CloudMetadata))),
        ("64:ff9b::192.168.0.1", Err(Nat64(&Private))),
        ("64:ff9b::100.64.0.1", Err(Nat64(&Cgnat))),
        ("64:ff9b::224.0.0.1", Err(Nat64(&Multicast))),
        // 6to4: IPv4 in bits 16..48.
        ("2002:7f00:1::", Err(SixToFour(&Loopback))),
        ("2002:a9fe:a9fe::1", Err(SixToFour(&CloudMetadata))),
        ("2002:c0a8:101::1", Err(SixToFour(&Private))),
        ("2002:a00:1::", Err(SixToFour(&Private))),
        ("2002:6440:1::", Err(SixToFour(&Cgnat))),
        ("2002:ffff:ffff::", Err(SixToFour(&Broadcast))),
        ("2002:c058:6301::", Err(SixToFour(&SixToFourRelay))),
        ("2002::", Err(SixToFour(&Unspecified))),
    ];

    #[test]
    fn strict_table() {
        assert!(STRICT_TABLE.len() >= 70, "{} vectors", STRICT_TABLE.len());
        let policy = AddressPolicy::strict();
        let mut failures = Vec::new();
        for (i, &(input, expected)) in STRICT_TABLE.iter().enumerate() {
            let Some(ip) = parse_host_ip(input) else {
                failures.push(format!("vector #{i} {input:?}: expected {expected:?}, but parse_host_ip gave None"));
                continue;
            };
            let got = policy.check(ip);
            if got != expected {
                failures.push(format!("vector #{i} {input:?} ({ip}): expected {expected:?}, got {got:?}"));
            }
            if classify(ip) != expected {
                failures.push(format!("vector #{i} {input:?} ({ip}): classify disagrees with strict policy"));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn every_class_has_a_vector() {
        let all = [
            Unspecified,
            Loopback,
            Private,
            Cgnat,
            LinkLocal,
            CloudMetadata,
            IetfProtocol,
            Documentation,
            Benchmarking,
            SixToFourRelay,
            Multicast,
            Broadcast,
            Reserved,
            UniqueLocal,
            SiteLocal,
            Discard,
            Orchid,
            Teredo,
            Nat64Local,
            Ipv4Mapped(&Loopback),
            Ipv4Compatible(&Loopback),
            Nat64(&Loopback),
            SixToFour(&Loopback),
        ];
        let same_kind = |a: &Blocked, b: &Blocked| std::mem::discriminant(a) == std::mem::discriminant(b);
        for class in &all {
            assert!(
                STRICT_TABLE.iter().any(|(_, v)| matches!(v, Err(b) if same_kind(b, class))),
                "no vector for {class:?}"
            );
        }
    }

    /// Every blocked IPv4 vector, re-spelled in each IPv4-embedding IPv6 form, is blocked
    /// with the same inner class; every allowed one stays allowed.
    #[test]
    fn embedded_forms_carry_the_ipv4_verdict() {
        let mut failures = Vec::new();
        for &(input, _) in STRICT_TABLE {
            let Some(IpAddr::V4(v4)) = parse_host_ip(input) else {
                continue;
            };
            let inner = classify(IpAddr::V4(v4));
            let bits = u128::from(u32::from(v4));
            let forms: [(&str, Ipv6Addr, Wrap); 4] = [
                ("mapped", v4.to_ipv6_mapped(), Ipv4Mapped),
                ("compatible", Ipv6Addr::from(bits), Ipv4Compatible),
                ("nat64", Ipv6Addr::from(0x64_ff9b_u128 << 96 | bits), Nat64),
                ("6to4", Ipv6Addr::from(0x2002_u128 << 112 | bits << 80 | 1), SixToFour),
            ];
            for (name, v6, wrap) in forms {
                let got = classify(IpAddr::V6(v6));
                let expected = match inner {
                    Ok(()) => Ok(()),
                    Err(b) => Err(wrap(lookup_static(b))),
                };
                // ::0.0.0.0 and ::0.0.0.1 are the unspecified and loopback addresses.
                let expected = match (name, u32::from(v4)) {
                    ("compatible", 0) => Err(Unspecified),
                    ("compatible", 1) => Err(Loopback),
                    _ => expected,
                };
                if got != expected {
                    failures.push(format!("{input:?} as {name} {v6}: expected {expected:?}, got {got:?}"));
                }
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    fn lookup_static(b: Blocked) -> &'static Blocked {
        V4_RANGES
            .iter()
            .map(|(_, blocked)| blocked)
            .find(|blocked| **blocked == b)
            .expect("IPv4 classes come from V4_RANGES")
    }

    #[test]
    fn range_tables_are_well_formed() {
        for (net, class) in V4_RANGES.iter().chain(V6_RANGES) {
            assert_eq!(IpNet::new(net.addr(), net.prefix_len()), Ok(*net), "table entry {net} for {class:?}");
            // The base address of every range is refused (by this or an earlier entry).
            assert!(classify(net.addr()).is_err(), "{net} base");
        }
    }

    /// Cross-check against std's stable predicates over a sweep of the IPv4 space.
    #[test]
    fn agrees_with_std_predicates_v4() {
        let mut x: u32 = 0x1234_5678;
        let mut samples: Vec<u32> = (0..=255u32).flat_map(|a| [a << 24, a << 24 | 0x00ff_ffff]).collect();
        for _ in 0..200_000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            samples.push(x);
        }
        for bits in samples {
            let ip = Ipv4Addr::from(bits);
            let got = classify(IpAddr::V4(ip));
            let expect_class = if ip.is_broadcast() {
                Some(Broadcast)
            } else if ip.is_loopback() {
                Some(Loopback)
            } else if ip.is_private() {
                Some(Private)
            } else if ip.is_multicast() {
                Some(Multicast)
            } else if ip.is_documentation() {
                Some(Documentation)
            } else {
                None
            };
            if let Some(class) = expect_class {
                assert_eq!(got, Err(class), "{ip}");
            }
            if ip.is_link_local() {
                assert!(matches!(got, Err(LinkLocal | CloudMetadata)), "{ip}");
            }
            if ip.is_unspecified() {
                assert_eq!(got, Err(Unspecified), "{ip}");
            }
        }
    }

    #[test]
    fn agrees_with_std_predicates_v6() {
        let mut x: u128 = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
        for i in 0..200_000u32 {
            x = x
                .wrapping_mul(0x2360_ed05_1fc6_5da4_4385_df64_9fcc_f645)
                .wrapping_add(0x5851_f42d_4c95_7f2d_1405_7b7e_f767_814f);
            // Spread samples over interesting top bytes too.
            let top: u128 = [0x00, 0x01, 0x20, 0x26, 0x3f, 0xfc, 0xfd, 0xfe, 0xff][i as usize % 9];
            let bits = if i % 2 == 0 { x } else { (x >> 8) | (top << 120) };
            let ip = Ipv6Addr::from(bits);
            let got = classify(IpAddr::V6(ip));
            if ip.is_multicast() {
                assert_eq!(got, Err(Multicast), "{ip}");
            }
            if ip.is_unique_local() {
                assert!(matches!(got, Err(UniqueLocal | CloudMetadata)), "{ip}");
            }
            if ip.is_unicast_link_local() {
                assert_eq!(got, Err(LinkLocal), "{ip}");
            }
            if got.is_ok() {
                assert_eq!(bits >> 125, 0b001, "{ip} allowed outside 2000::/3");
            }
        }
    }

    #[test]
    fn allow_private_policy() {
        let policy = AddressPolicy::allow_all_private();
        assert!(policy.allow_private());
        let cases: &[(&str, Verdict)] = &[
            ("127.0.0.1", Ok(())),
            ("[::1]", Ok(())),
            ("10.1.2.3", Ok(())),
            ("172.16.0.1", Ok(())),
            ("192.168.1.1", Ok(())),
            ("100.64.0.1", Ok(())),
            ("169.254.1.1", Ok(())),
            ("fe80::1", Ok(())),
            ("fc00::1", Ok(())),
            ("fec0::1", Ok(())),
            ("::ffff:10.0.0.1", Ok(())),
            ("::ffff:127.0.0.1", Ok(())),
            ("8.8.8.8", Ok(())),
            // Never lifted by allow_private.
            ("0.0.0.0", Err(Unspecified)),
            ("0", Err(Unspecified)),
            ("[::]", Err(Unspecified)),
            ("::ffff:0.0.0.0", Err(Ipv4Mapped(&Unspecified))),
            ("224.0.0.1", Err(Multicast)),
            ("ff02::1", Err(Multicast)),
            ("255.255.255.255", Err(Broadcast)),
            ("169.254.169.254", Err(CloudMetadata)),
            ("fd00:ec2::254", Err(CloudMetadata)),
            ("::ffff:169.254.169.254", Err(Ipv4Mapped(&CloudMetadata))),
            ("64:ff9b::a00:1", Err(Nat64(&Private))),
            ("2002:a00:1::", Err(SixToFour(&Private))),
            ("::10.0.0.1", Err(Ipv4Compatible(&Private))),
            ("192.0.2.1", Err(Documentation)),
            ("198.18.0.1", Err(Benchmarking)),
            ("240.0.0.1", Err(Reserved)),
            ("2001::1", Err(Teredo)),
            ("100::1", Err(Discard)),
        ];
        check_cases("allow_all_private", &policy, cases);
    }

    #[test]
    fn allowed_nets_v4_slash_32() {
        let policy = AddressPolicy::new(false, vec!["127.0.0.1".parse().unwrap()]);
        let cases: &[(&str, Verdict)] = &[
            ("127.0.0.1", Ok(())),
            ("2130706433", Ok(())),
            ("::ffff:127.0.0.1", Ok(())),
            ("127.0.0.2", Err(Loopback)),
            ("[::1]", Err(Loopback)),
            ("10.0.0.1", Err(Private)),
            ("0.0.0.0", Err(Unspecified)),
            ("64:ff9b::7f00:1", Err(Nat64(&Loopback))),
            ("8.8.8.8", Ok(())),
        ];
        check_cases("allowed 127.0.0.1", &policy, cases);
    }

    #[test]
    fn allowed_nets_v4_slash_8() {
        let policy = AddressPolicy::new(false, vec!["10.0.0.0/8".parse().unwrap()]);
        let cases: &[(&str, Verdict)] = &[
            ("10.0.0.0", Ok(())),
            ("10.255.255.255", Ok(())),
            ("10.1", Ok(())),
            ("::ffff:10.1.2.3", Ok(())),
            ("11.0.0.0", Ok(())),
            ("9.255.255.255", Ok(())),
            ("172.16.0.1", Err(Private)),
            ("192.168.1.1", Err(Private)),
            ("127.0.0.1", Err(Loopback)),
            ("64:ff9b::a00:1", Err(Nat64(&Private))),
            ("2002:a00:1::", Err(SixToFour(&Private))),
        ];
        check_cases("allowed 10.0.0.0/8", &policy, cases);
    }

    #[test]
    fn allowed_nets_v6_slash_128() {
        let policy = AddressPolicy::new(false, vec!["::1/128".parse().unwrap()]);
        let cases: &[(&str, Verdict)] = &[
            ("[::1]", Ok(())),
            ("::2", Err(Ipv4Compatible(&Unspecified))),
            ("127.0.0.1", Err(Loopback)),
            ("fe80::1", Err(LinkLocal)),
        ];
        check_cases("allowed ::1/128", &policy, cases);

        let metadata = AddressPolicy::new(true, vec!["fd00:ec2::254".parse().unwrap()]);
        let cases: &[(&str, Verdict)] = &[
            ("fd00:ec2::254", Ok(())),
            ("fd00:ec2::23", Err(CloudMetadata)),
            ("169.254.169.254", Err(CloudMetadata)),
            ("fd00::1", Ok(())),
        ];
        check_cases("allowed fd00:ec2::254 + private", &metadata, cases);
    }

    #[test]
    fn allowed_nets_can_disable_everything() {
        let policy = AddressPolicy::new(false, vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()]);
        for &(input, _) in STRICT_TABLE {
            let ip = parse_host_ip(input).unwrap();
            assert_eq!(policy.check(ip), Ok(()), "{input:?}");
        }
    }

    #[test]
    fn default_policy_is_strict() {
        assert_eq!(AddressPolicy::default(), AddressPolicy::strict());
        assert!(!AddressPolicy::strict().allow_private());
        assert!(AddressPolicy::strict().allowed_nets().is_empty());
    }

    fn check_cases(name: &str, policy: &AddressPolicy, cases: &[(&str, Verdict)]) {
        let mut failures = Vec::new();
        for (i, &(input, expected)) in cases.iter().enumerate() {
            let ip = parse_host_ip(input).unwrap_or_else(|| panic!("{name} #{i} {input:?}: no IP"));
            let got = policy.check(ip);
            if got != expected {
                failures.push(format!("{name} #{i} {input:?} ({ip}): expected {expected:?}, got {got:?}"));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn parse_host_ip_vectors() {
        let v4 = |a, b, c, d| Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)));
        let cases: &[(&str, Option<IpAddr>)] = &[
            ("127.0.0.1", v4(127, 0, 0, 1)),
            ("0x7f.1", v4(127, 0, 0, 1)),
            ("0.0x10.0", v4(0, 16, 0, 0)),
            ("1.0xffffff", v4(1, 255, 255, 255)),
            ("1.2.65535", v4(1, 2, 255, 255)),
            ("0x0000000000000000000000007f.1", v4(127, 0, 0, 1)),
            ("00000000000000000000177.1", v4(127, 0, 0, 1)),
            ("0x.0x.0x.0x", v4(0, 0, 0, 0)),
            ("\t127.0.\n0.1 ", v4(127, 0, 0, 1)),
            ("\u{1D7CF}\u{1D7D0}\u{1D7D5}.0.0.1", v4(127, 0, 0, 1)),
            ("\u{FF10}\u{FF58}\u{FF17}\u{FF46}.1", v4(127, 0, 0, 1)),
            ("%EF%BC%91%EF%BC%92%EF%BC%97.0.0.1", v4(127, 0, 0, 1)),
            ("\u{2488}\u{2488}\u{2488}1", v4(1, 1, 1, 1)),
            ("1\u{3164}27.0.0.\u{2061}1\u{E0041}", v4(127, 0, 0, 1)),
            ("[::ffff:127.0.0.1]", Some("::ffff:7f00:1".parse().unwrap())),
            ("[FE80::1%eth0]", Some("fe80::1".parse().unwrap())),
            ("::1", Some("::1".parse().unwrap())),
            // Names, and hosts a URL parser rejects.
            ("example.com", None),
            ("localhost", None),
            ("", None),
            (".", None),
            ("127.0.0.1..", None),
            ("1.2.3.4.5", None),
            ("256.0.0.1", None),
            ("1.256.0.1", None),
            ("1.0x1000000", None),
            ("1.2.65536", None),
            ("4294967296", None),
            ("0x100000000", None),
            ("99999999999999999999999", None),
            ("08.0.0.1", None),
            ("09", None),
            ("0xg.1", None),
            ("127..0.1", None),
            ("0x7f.example", None),
            ("example.0x7f", None),
            ("-1.0.0.1", None),
            ("+1.0.0.1", None),
            ("127.0.0.1%", None),
            ("127.0.0.%3", None),
            ("127.0.0.1:80", None),
            ("[127.0.0.1]", None),
            ("[::1", None),
            ("xn--ls8h", None),
            ("\u{FF11}27.0.0.\u{FF47}", None),
        ];
        let mut failures = Vec::new();
        for (i, &(input, expected)) in cases.iter().enumerate() {
            let got = parse_host_ip(input);
            if got != expected {
                failures.push(format!("#{i} {input:?}: expected {expected:?}, got {got:?}"));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    /// Every address round-trips through dotted, decimal, hex and octal spellings.
    #[test]
    fn parse_host_ip_spellings_round_trip() {
        let mut x: u32 = 0xdead_beef;
        for _ in 0..20_000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let ip = Ipv4Addr::from(x);
            let [a, b, c, d] = ip.octets();
            let want = Some(IpAddr::V4(ip));
            for s in [
                ip.to_string(),
                format!("{x}"),
                format!("0x{x:x}"),
                format!("0{x:o}"),
                format!("{a}.{}", x & 0x00ff_ffff),
                format!("{a}.{b}.{}", x & 0xffff),
                format!("0x{a:X}.0{b:o}.{c}.0x{d:02x}."),
            ] {
                assert_eq!(parse_host_ip(&s), want, "{s:?}");
            }
        }
    }

    #[test]
    fn ipnet_parsing() {
        let ok: &[(&str, &str)] = &[
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("127.0.0.1", "127.0.0.1/32"),
            ("::1/128", "::1/128"),
            ("::1", "::1/128"),
            (" 192.168.0.0/16 ", "192.168.0.0/16"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("fd00::/8", "fd00::/8"),
        ];
        for &(input, display) in ok {
            let net: IpNet = input.parse().unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(net.to_string(), display, "{input:?}");
            assert_eq!(display.parse::<IpNet>(), Ok(net), "{display:?} round-trip");
        }
        let bad = [
            "10.0.0.1/8",
            "10.0.0.0/33",
            "::1/129",
            "::/1000",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/-1",
            "10.0.0.0/8/8",
            "/8",
            "127.1",
            "0x7f000001",
            "localhost",
            "",
        ];
        for input in bad {
            let result = input.parse::<IpNet>();
            assert!(result.is_err(), "{input:?} parsed as {result:?}");
        }
        let err = "10.0.0.1/8".parse::<IpNet>().unwrap_err().to_string();
        assert!(err.contains("10.0.0.1/8") && err.contains("host bits"), "{err}");
    }

    #[test]
    fn ipnet_contains() {
        let net: IpNet = "172.16.0.0/12".parse().unwrap();
        let has = |s: &str| net.contains(s.parse().unwrap());
        assert!(has("172.16.0.0") && has("172.31.255.255"));
        assert!(!has("172.15.255.255") && !has("172.32.0.0") && !has("::ffff:172.16.0.1"));
        let all6: IpNet = "::/0".parse().unwrap();
        assert!(all6.contains("2001:db8::1".parse().unwrap()));
        assert!(!all6.contains("1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn helpers_and_display() {
        assert_eq!(Nat64(&CloudMetadata).innermost(), CloudMetadata);
        assert_eq!(Loopback.innermost(), Loopback);
        assert!(Ipv4Mapped(&Private).is_private_use());
        assert!(!SixToFour(&Private).is_private_use());
        assert_eq!(Ipv4Mapped(&Loopback).to_string(), "an IPv4-mapped form of a loopback address");
        assert_eq!(CloudMetadata.to_string(), "a cloud metadata endpoint");
    }

    #[test]
    fn compat_fold_table_is_sorted() {
        for w in COMPAT_FOLD.windows(2) {
            assert!(w[0].1 < w[1].0, "{:X} overlaps {:X}", w[0].1, w[1].0);
        }
        for &(lo, hi, to) in COMPAT_FOLD {
            assert!(lo <= hi && lo >= 0x80 && !to.is_empty());
            assert!(lo == hi || to.len() == 1, "{lo:X}: runs map to one char");
        }
    }
}

//! SSRF defence: decides which origin IP addresses may be fetched, and reads IP-literal URL hosts.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

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
const V4_RANGES: &[(Ipv4Net, Blocked)] = &[
    (v4(169, 254, 169, 254, 32), Blocked::CloudMetadata),
    (v4(169, 254, 170, 2, 32), Blocked::CloudMetadata),
    (v4(169, 254, 170, 23, 32), Blocked::CloudMetadata),
    (v4(100, 100, 100, 200, 32), Blocked::CloudMetadata),
    (v4(168, 63, 129, 16, 32), Blocked::CloudMetadata),
    (v4(0, 0, 0, 0, 8), Blocked::Unspecified),
    (v4(10, 0, 0, 0, 8), Blocked::Private),
    (v4(100, 64, 0, 0, 10), Blocked::Cgnat),
    (v4(127, 0, 0, 0, 8), Blocked::Loopback),
    (v4(169, 254, 0, 0, 16), Blocked::LinkLocal),
    (v4(172, 16, 0, 0, 12), Blocked::Private),
    (v4(192, 0, 0, 0, 24), Blocked::IetfProtocol),
    (v4(192, 0, 2, 0, 24), Blocked::Documentation),
    (v4(192, 88, 99, 0, 24), Blocked::SixToFourRelay),
    (v4(192, 168, 0, 0, 16), Blocked::Private),
    (v4(198, 18, 0, 0, 15), Blocked::Benchmarking),
    (v4(198, 51, 100, 0, 24), Blocked::Documentation),
    (v4(203, 0, 113, 0, 24), Blocked::Documentation),
    (v4(224, 0, 0, 0, 4), Blocked::Multicast),
    (v4(255, 255, 255, 255, 32), Blocked::Broadcast),
    (v4(240, 0, 0, 0, 4), Blocked::Reserved),
];

/// IPv6 special-purpose ranges that refuse outright. First match wins. The
/// IPv4-embedding prefixes (`::ffff:0:0/96`, `::/96`, `64:ff9b::/96`, `2002::/16`) and the
/// catch-all "outside `2000::/3`" are handled in [`classify_v6`] after this table.
const V6_RANGES: &[(Ipv6Net, Blocked)] = &[
    (v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128), Blocked::CloudMetadata),
    (v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23], 128), Blocked::CloudMetadata),
    (v6([0xfd20, 0xce, 0, 0, 0, 0, 0, 0x254], 128), Blocked::CloudMetadata),
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), Blocked::Unspecified),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), Blocked::Loopback),
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), Blocked::Nat64Local),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), Blocked::Discard),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), Blocked::Teredo),
    (v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48), Blocked::Benchmarking),
    (v6([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28), Blocked::Orchid),
    (v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28), Blocked::Orchid),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), Blocked::IetfProtocol),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), Blocked::Documentation),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), Blocked::Documentation),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), Blocked::UniqueLocal),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), Blocked::LinkLocal),
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), Blocked::SiteLocal),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), Blocked::Multicast),
];

/// Table entry; a prefix too long for the family fails to compile.
const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)
}

/// Table entry; a prefix too long for the family fails to compile.
const fn v6(s: [u16; 8], prefix: u8) -> Ipv6Net {
    Ipv6Net::new_assert(Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]), prefix)
}

fn classify_v4(ip: Ipv4Addr) -> Result<(), &'static Blocked> {
    match V4_RANGES.iter().find(|(net, _)| net.contains(&ip)) {
        Some((_, blocked)) => Err(blocked),
        None => Ok(()),
    }
}

fn classify_v6(ip: Ipv6Addr) -> Result<(), Blocked> {
    if let Some((_, blocked)) = V6_RANGES.iter().find(|(net, _)| net.contains(&ip)) {
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
        // `IpNet::contains` never mixes families (`10.0.0.0/8` does not contain
        // `::ffff:10.0.0.1`), so the other spelling is tried too.
        let counterpart = ipv4_counterpart(ip);
        let listed =
            self.allowed_nets.iter().any(|net| net.contains(&ip) || counterpart.is_some_and(|alt| net.contains(&alt)));
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

/// Parse a network as written in config: `10.0.0.0/8`, `::1/128`, or a bare address
/// (`127.0.0.1` is a /32, `::1` is a /128). Surrounding whitespace is ignored.
///
/// Stricter than `ipnet`'s own `FromStr`: addresses must be in canonical form (`127.1` is
/// rejected), the prefix length is plain decimal digits, and host bits past the prefix must
/// be zero. `10.0.0.1/8` is rejected rather than silently widened, since it is most likely
/// a typo in an allowlist. The error names the input and the reason.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    let input = s.trim();
    let err = |reason| format!("invalid network {input:?}: {reason}");
    let (addr, prefix) = match input.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (input, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| err("not an IP address"))?;
    let prefix = match prefix {
        None if addr.is_ipv4() => 32,
        None => 128,
        Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse().map_err(|_| err("prefix length is not a number"))?
        }
        Some(_) => return Err(err("prefix length is not a number")),
    };
    let net = IpNet::new(addr, prefix).map_err(|_| err("prefix too long"))?;
    if net.trunc() != net {
        return Err(err("host bits set past the prefix"));
    }
    Ok(net)
}

/// Read a URL host as an IP address the way a WHATWG URL parser does (browsers,
/// the `url` crate and so `reqwest`; curl and `inet_aton` agree on the IPv4 forms), so a
/// literal host can be checked before any connection.
///
/// - IPv4 in every legacy spelling: `2130706433`, `0x7f000001`, `0x7f.1`, `127.1`,
///   `127.0.1`, `0177.0.0.1`, `017700000001`, and a trailing dot (`127.0.0.1.`).
///   Percent-escapes are decoded first (`127.0.0.%31`), then IDNA mapping folds Unicode
///   compatibility forms to ASCII (fullwidth `１２７．０．０．１`, ideographic `。`,
///   circled `①`, mathematical digits and so on) and drops ignorable characters such as
///   the soft hyphen. All of this is [`url::Host::parse`].
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
    // newlines anywhere before it gets to the host; `Host::parse` does neither.
    let host: String =
        host.trim_matches(|c: char| c <= ' ').chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).collect();
    // IPv6 goes to std's parser: `Host::parse` refuses a zone id and a bare address (`::1`,
    // as from a URL host with its brackets stripped), and both still name an address.
    if let Some(inner) = host.strip_prefix('[') {
        return parse_ipv6_literal(inner.strip_suffix(']')?).map(IpAddr::V6);
    }
    if host.contains(':') {
        return parse_ipv6_literal(&host).map(IpAddr::V6);
    }
    // Percent-decode once, as `Host::parse` does first, so the step below sees the decoded
    // characters. A `%` still there is a forbidden host code point, so no address; without
    // one, `Host::parse` decoding again changes nothing.
    let decoded = percent_encoding::percent_decode_str(&host).decode_utf8_lossy();
    if decoded.contains('%') {
        return None;
    }
    let mut host = String::with_capacity(decoded.len());
    for c in decoded.chars() {
        legacy_idna(c, &mut host);
    }
    match url::Host::parse(&host).ok()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// Append `c`, or what a more lenient IDNA makes of it, for the few characters where
/// `Host::parse` refuses the whole host but a host spelling an address with them is still
/// classified as that address, not taken for a name (it errs towards checking):
/// - Default_Ignorable_Code_Point characters that UTS #46 disallows, where it ignores the
///   rest of that property: bidi marks and controls, joiners, tag characters and so on.
///   Dropped like the rest, so `127.0.0.1` with a tag character in it is `127.0.0.1`.
/// - Characters UTS #46 mapped to text with a full stop until Unicode 15.1 and disallows
///   since, while clients on older IDNA tables still map them: `⒈⒈⒈1` is `1.1.1.1`.
///
/// Everything else is left to `Host::parse`.
fn legacy_idna(c: char, out: &mut String) {
    match u32::from(c) {
        // Default_Ignorable_Code_Point that UTS #46 disallows.
        0x061C | 0x200C..=0x200F | 0x202A..=0x202E | 0x2065..=0x2069 | 0xFFF0..=0xFFF8 | 0xE0000..=0xE0FFF => {}
        // One dot leader, vertical and small full stops: `.`.
        0x2024 | 0xFE12 | 0xFE52 => out.push('.'),
        // Digit full stops `⒈`..`⒛`: `1.`..`20.`; digit zero full stop `🄀`: `0.`.
        cp @ 0x2488..=0x249B => {
            out.push_str(&(cp - 0x2487).to_string());
            out.push('.');
        }
        0x1F100 => out.push_str("0."),
        _ => out.push(c),
    }
}

/// An IPv6 literal with an optional `%zone` suffix (`%25zone` in URLs), which is dropped.
fn parse_ipv6_literal(s: &str) -> Option<Ipv6Addr> {
    let addr = s.split('%').next().unwrap_or(s);
    addr.parse().ok()
}

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
        let v4 = V4_RANGES.iter().map(|(net, class)| (IpNet::V4(*net), class));
        let v6 = V6_RANGES.iter().map(|(net, class)| (IpNet::V6(*net), class));
        for (net, class) in v4.chain(v6) {
            assert_eq!(net.trunc(), net, "table entry {net} for {class:?} has host bits set");
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
        let policy = AddressPolicy::new(false, vec![parse_net("127.0.0.1").unwrap()]);
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
        let policy = AddressPolicy::new(false, vec![parse_net("10.0.0.0/8").unwrap()]);
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
        let policy = AddressPolicy::new(false, vec![parse_net("::1/128").unwrap()]);
        let cases: &[(&str, Verdict)] = &[
            ("[::1]", Ok(())),
            ("::2", Err(Ipv4Compatible(&Unspecified))),
            ("127.0.0.1", Err(Loopback)),
            ("fe80::1", Err(LinkLocal)),
        ];
        check_cases("allowed ::1/128", &policy, cases);

        let metadata = AddressPolicy::new(true, vec![parse_net("fd00:ec2::254").unwrap()]);
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
        let policy = AddressPolicy::new(false, vec![parse_net("0.0.0.0/0").unwrap(), parse_net("::/0").unwrap()]);
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
            let net = parse_net(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(net.to_string(), display, "{input:?}");
            assert_eq!(parse_net(display), Ok(net), "{display:?} round-trip");
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
            let result = parse_net(input);
            assert!(result.is_err(), "{input:?} parsed as {result:?}");
        }
        let err = parse_net("10.0.0.1/8").unwrap_err();
        assert!(err.contains("10.0.0.1/8") && err.contains("host bits"), "{err}");
    }

    #[test]
    fn ipnet_contains() {
        let net = parse_net("172.16.0.0/12").unwrap();
        let has = |s: &str| net.contains(&s.parse::<IpAddr>().unwrap());
        assert!(has("172.16.0.0") && has("172.31.255.255"));
        assert!(!has("172.15.255.255") && !has("172.32.0.0") && !has("::ffff:172.16.0.1"));
        let all6 = parse_net("::/0").unwrap();
        assert!(all6.contains(&"2001:db8::1".parse::<IpAddr>().unwrap()));
        assert!(!all6.contains(&"1.2.3.4".parse::<IpAddr>().unwrap()));
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
}

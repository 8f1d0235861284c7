/**
 * SSRF guard for HTTP targets: refuses URLs whose host is, as written, inside a
 * private, loopback, link-local, metadata or reserved network.
 *
 * Policy choices (DESIGN.md "HTTP targets"):
 * - Parsing is the WHATWG `URL`, the parser `fetch` uses, so decimal, hex, octal
 *   and short IPv4 spellings and IPv6 forms are judged after normalisation.
 * - Credentials in the URL (`user:pass@`) are refused: they would be stored and
 *   echoed with the job in plain text, and `a@b` is a classic host confusion.
 *   Send them in an `authorization` header instead.
 * - Control characters and surrounding whitespace are refused: `URL` silently
 *   drops them, so the request would go somewhere other than the text shown.
 * - IPv4-mapped, -compatible, -translated and NAT64 IPv6 addresses are refused
 *   whatever they embed: they are only ever spellings of an IPv4 host. 6to4
 *   (2002::/16) is refused only when it embeds a non-public IPv4 address.
 * - Names refused: `localhost`, `*.localhost`, `*.internal` (ICANN private use,
 *   includes `metadata.google.internal`), `*.local` (mDNS) and every dotless
 *   name (`metadata`, `ip6-localhost`): these resolve only through hosts files,
 *   search domains or a local resolver, never through public DNS.
 * - Names that only DNS makes private (`127.0.0.1.nip.io`) pass here; the
 *   resolved address needs `isPrivateAddress` when the request is made.
 * - URL hygiene (scheme, credentials, control characters) applies even with
 *   `allowPrivate`, so a target accepted in local development is accepted or
 *   refused in production for the same reason only.
 */

/** Result of checking an outbound target URL. */
export type TargetCheck = { ok: true; url: URL } | { ok: false; reason: string };

/** Options for `checkTargetUrl`. */
export interface TargetCheckOptions {
  /** Local development: allow any http(s) host, including private ones. */
  allowPrivate: boolean;
}

interface Range<T> {
  base: T;
  bits: number;
  label: string;
  /** The low 32 bits are an IPv4 address, named in the reason. */
  embedsIPv4?: boolean;
}

const IPV4_RANGES: ReadonlyArray<Range<number>> = [
  v4("0.0.0.0", 8, "a this-network address"),
  v4("10.0.0.0", 8, "a private address"),
  v4("100.64.0.0", 10, "a shared (CGNAT) address"),
  v4("127.0.0.0", 8, "a loopback address"),
  v4("169.254.0.0", 16, "a link-local (cloud metadata) address"),
  v4("172.16.0.0", 12, "a private address"),
  v4("192.0.0.0", 24, "an IETF protocol assignment (includes Oracle metadata)"),
  v4("192.0.2.0", 24, "a documentation address"),
  v4("192.88.99.0", 24, "a deprecated 6to4 relay address"),
  v4("192.168.0.0", 16, "a private address"),
  v4("198.18.0.0", 15, "a benchmarking address"),
  v4("198.51.100.0", 24, "a documentation address"),
  v4("203.0.113.0", 24, "a documentation address"),
  v4("224.0.0.0", 4, "a multicast address"),
  v4("240.0.0.0", 4, "a reserved or broadcast address"),
];

// The first match wins, so the exact ::/128 and ::1/128 entries come before
// the ::/96 (IPv4-compatible) block that contains them.
const IPV6_RANGES: ReadonlyArray<Range<bigint>> = [
  v6("::", 128, "the unspecified address"),
  v6("::1", 128, "a loopback address"),
  v6("::ffff:0:0", 96, "an IPv4-mapped address", true),
  v6("::ffff:0:0:0", 96, "an IPv4-translated address", true),
  v6("::", 96, "an IPv4-compatible address", true),
  v6("64:ff9b::", 96, "a NAT64 address", true),
  v6("64:ff9b:1::", 48, "a local-use NAT64 address"),
  v6("100::", 64, "a discard-only address"),
  v6("2001::", 32, "a Teredo tunnel address"),
  v6("2001:db8::", 32, "a documentation address"),
  v6("3fff::", 20, "a documentation address"),
  v6("fc00::", 7, "a unique local address"),
  v6("fe80::", 10, "a link-local address"),
  v6("fec0::", 10, "a deprecated site-local address"),
  v6("ff00::", 8, "a multicast address"),
];

// 6to4 carries the IPv4 address in bits 16..48 and is a real site prefix, so
// only a non-public embedded address makes it private.
const SIX_TO_FOUR = v6("2002::", 16, "a 6to4 address");

/** Checks an outbound target URL; the refusal reason is written for a 400 message. */
export function checkTargetUrl(raw: string, options: TargetCheckOptions): TargetCheck {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point.
  if (/[\u0000-\u001f\u007f]/.test(raw) || raw !== raw.trim()) {
    return refuse("target URL contains control characters or surrounding whitespace");
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return refuse("target URL is not a valid absolute URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return refuse(`target URL scheme ${url.protocol} is not allowed; use http: or https:`);
  }
  if (url.username !== "" || url.password !== "") {
    return refuse("target URL must not contain credentials; send them in a header instead");
  }
  if (options.allowPrivate) return { ok: true, url };
  const problem = describeHost(url.hostname);
  return problem === undefined ? { ok: true, url } : refuse(`target host ${url.hostname} is ${problem}`);
}

/** True when an IP literal (resolved address or redirect hop) is not publicly routable; false for non-IPs. */
export function isPrivateAddress(ip: string): boolean {
  // Drop brackets and a zone id (fe80::1%eth0): a zone only exists on-link.
  const bare = ip
    .trim()
    .replace(/^\[(.*)\]$/, "$1")
    .replace(/%.*$/, "");
  // Only IP literal characters, so "evil@127.0.0.1" or "host:port" are not parsed as URLs.
  if (!/^[0-9a-fx.:]+$/i.test(bare)) return false;
  let hostname: string;
  try {
    hostname = new URL(`http://${bare.includes(":") ? `[${bare}]` : bare}/`).hostname;
  } catch {
    return false;
  }
  if (hostname.startsWith("[") || isIPv4Literal(hostname)) return describeHost(hostname) !== undefined;
  return false;
}

/** Why a parsed URL hostname is not a public target, or undefined when it is. */
function describeHost(hostname: string): string | undefined {
  if (hostname.startsWith("[")) return describeIPv6(parseIPv6(hostname.slice(1, -1)));
  if (isIPv4Literal(hostname)) return describeIPv4(parseIPv4(hostname));
  return describeName(hostname);
}

function describeIPv4(addr: number): string | undefined {
  return IPV4_RANGES.find((r) => inRange4(addr, r))?.label;
}

function describeIPv6(addr: bigint): string | undefined {
  const match = IPV6_RANGES.find((r) => inRange6(addr, r));
  if (match !== undefined) {
    return match.embedsIPv4 === true ? withEmbedded(match.label, Number(addr & 0xffffffffn)) : match.label;
  }
  if (inRange6(addr, SIX_TO_FOUR)) {
    const embedded = Number((addr >> 80n) & 0xffffffffn);
    if (describeIPv4(embedded) !== undefined) return withEmbedded(SIX_TO_FOUR.label, embedded);
  }
  return undefined;
}

/** "an IPv4-mapped address of 127.0.0.1 (a loopback address)" */
function withEmbedded(label: string, embedded: number): string {
  const inner = describeIPv4(embedded);
  return `${label} of ${formatIPv4(embedded)}${inner === undefined ? "" : ` (${inner})`}`;
}

function describeName(hostname: string): string | undefined {
  // "localhost." is the same name as "localhost" to a resolver.
  const name = hostname.endsWith(".") ? hostname.slice(0, -1) : hostname;
  if (name === "localhost" || name.endsWith(".localhost")) return "a reserved local name";
  if (name.endsWith(".internal")) return "a private-use name (.internal, includes cloud metadata)";
  if (name.endsWith(".local")) return "a link-local multicast DNS name (.local)";
  if (!name.includes(".")) return "a single-label name, which only a local resolver can answer";
  return undefined;
}

function refuse(reason: string): TargetCheck {
  return { ok: false, reason };
}

function inRange4(addr: number, range: Range<number>): boolean {
  // >>> keeps both sides unsigned 32-bit.
  const shift = 32 - range.bits;
  return addr >>> shift === range.base >>> shift;
}

function inRange6(addr: bigint, range: Range<bigint>): boolean {
  const shift = BigInt(128 - range.bits);
  return addr >> shift === range.base >> shift;
}

function v4(text: string, bits: number, label: string): Range<number> {
  return { base: parseIPv4(text), bits, label };
}

function v6(text: string, bits: number, label: string, embedsIPv4 = false): Range<bigint> {
  return { base: parseIPv6(text), bits, label, embedsIPv4 };
}

function isIPv4Literal(hostname: string): boolean {
  return /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/** Dotted quad, as `URL` serialises every IPv4 spelling, to an unsigned 32-bit number. */
function parseIPv4(text: string): number {
  return text.split(".").reduce((acc, part) => acc * 256 + Number(part), 0);
}

function formatIPv4(addr: number): string {
  return [24, 16, 8, 0].map((shift) => (addr >>> shift) & 0xff).join(".");
}

/** Hex IPv6 text, as `URL` serialises it (no dotted tail), to a 128-bit number. */
function parseIPv6(text: string): bigint {
  const [head = "", tail] = text.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const zeros: string[] = Array.from({ length: 8 - left.length - right.length }, () => "0");
  return [...left, ...zeros, ...right].reduce((acc, group) => (acc << 16n) | BigInt(`0x${group}`), 0n);
}

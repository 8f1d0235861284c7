/// <reference types="vite/client" />
import { describe, expect, it } from "vitest";
import { checkTargetUrl, isPrivateAddress } from "../../src/execution/ssrf";
// Loaded as text: the corpus holds raw U+2028/U+2029 characters, and a plain
// JSON import of it fails to evaluate in the workerd module runner.
import corpusText from "../corpora/abuse-corpus.json?raw";

interface CorpusCase {
  id: string;
  category: string;
  body?: string;
  body_base64?: string;
  expect: string;
  note: string;
}

const strict = { allowPrivate: false };
const ssrfCases = (JSON.parse(corpusText) as CorpusCase[]).filter((c) => c.category === "ssrf" || c.category === "ssrf-dns");

/** The target URL a corpus case sends: an HTTP target's `url`, or a handler's `args.url`. */
function targetUrlOf(c: CorpusCase): string {
  const text = c.body ?? (c.body_base64 === undefined ? "" : atob(c.body_base64));
  const body = JSON.parse(text) as { target?: { url?: unknown; args?: { url?: unknown } } };
  const url = body.target?.url ?? body.target?.args?.url;
  if (typeof url !== "string") throw new Error(`${c.id} has no target url`);
  return url;
}

function reasonFor(raw: string): string | undefined {
  const result = checkTargetUrl(raw, strict);
  return result.ok ? undefined : result.reason;
}

describe("abuse corpus", () => {
  it("has SSRF cases, each with a url and an expectation this suite understands", () => {
    expect(ssrfCases.length).toBeGreaterThan(600);
    for (const c of ssrfCases) {
      expect(["400", "4xx-json", "not-500"], c.id).toContain(c.expect);
      expect(() => targetUrlOf(c), c.id).not.toThrow();
    }
  });

  // 4xx-json cases (raw control characters, a handler's url argument) are
  // refused here too: this guard is where such a target is stopped.
  const refused = ssrfCases.filter((c) => c.expect === "400" || c.expect === "4xx-json");
  it.each(refused.map((c) => [c.id, targetUrlOf(c), c.note] as const))("case %s with target %j is refused", (_id, url) => {
    expect(checkTargetUrl(url, strict).ok).toBe(false);
  });

  const dnsOnly = ssrfCases.filter((c) => c.expect === "not-500");
  it.each(dnsOnly.map((c) => [c.id, targetUrlOf(c)] as const))("case %s with target %j is judged without throwing", (_id, url) => {
    expect(() => checkTargetUrl(url, strict)).not.toThrow();
  });
});

describe("checkTargetUrl refuses private IPv4 ranges", () => {
  it.each([
    ["http://127.0.0.1/", "a loopback address"],
    ["http://127.255.255.254/", "a loopback address"],
    ["http://0.0.0.0/", "a this-network address"],
    ["http://0.1.2.3/", "a this-network address"],
    ["http://10.0.0.1/", "a private address"],
    ["http://172.16.0.1/", "a private address"],
    ["http://172.31.255.255/", "a private address"],
    ["http://192.168.1.1/", "a private address"],
    ["http://100.64.0.1/", "a shared (CGNAT) address"],
    ["http://100.127.255.255/", "a shared (CGNAT) address"],
    ["http://169.254.169.254/", "a link-local (cloud metadata) address"],
    ["http://192.0.0.192/", "an IETF protocol assignment (includes Oracle metadata)"],
    ["http://192.0.2.1/", "a documentation address"],
    ["http://198.18.0.1/", "a benchmarking address"],
    ["http://198.19.255.255/", "a benchmarking address"],
    ["http://198.51.100.7/", "a documentation address"],
    ["http://203.0.113.9/", "a documentation address"],
    ["http://224.0.0.1/", "a multicast address"],
    ["http://239.255.255.250/", "a multicast address"],
    ["http://240.0.0.1/", "a reserved or broadcast address"],
    ["http://255.255.255.255/", "a reserved or broadcast address"],
  ])("%s is refused as %s", (url, label) => {
    expect(reasonFor(url)).toBe(`target host ${new URL(url).hostname} is ${label}`);
  });

  it("a loopback refusal names the host and the range", () => {
    expect(checkTargetUrl("http://127.0.0.1/", strict)).toEqual({
      ok: false,
      reason: "target host 127.0.0.1 is a loopback address",
    });
  });
});

describe("checkTargetUrl judges IPv4 after URL normalisation", () => {
  it.each([
    ["decimal", "http://2130706433/", "127.0.0.1"],
    ["hex", "http://0x7f000001/", "127.0.0.1"],
    ["dotted hex", "http://0x7f.0x0.0x0.0x1/", "127.0.0.1"],
    ["short hex", "http://0x7f.1/", "127.0.0.1"],
    ["octal", "http://0177.0.0.1/", "127.0.0.1"],
    ["short", "http://127.1/", "127.0.0.1"],
    ["zero-padded", "http://127.000.000.001/", "127.0.0.1"],
    ["trailing dot", "http://127.0.0.1./", "127.0.0.1"],
    ["percent-encoded", "http://%31%32%37.0.0.1/", "127.0.0.1"],
    ["full-width digits", "http://１２７.０.０.１/", "127.0.0.1"],
    ["decimal metadata", "http://2852039166/", "169.254.169.254"],
    ["mixed octal metadata", "http://0251.254.169.254/", "169.254.169.254"],
    ["bare zero", "http://0/", "0.0.0.0"],
  ])("the %s spelling %s is refused as %s", (_form, url, host) => {
    expect(reasonFor(url)).toMatch(new RegExp(`^target host ${host.replaceAll(".", "\\.")} is `));
  });
});

describe("checkTargetUrl refuses private IPv6 forms", () => {
  it.each([
    ["loopback", "http://[::1]/", "a loopback address"],
    ["expanded loopback", "http://[0:0:0:0:0:0:0:1]/", "a loopback address"],
    ["unspecified", "http://[::]/", "the unspecified address"],
    ["IPv4-mapped dotted", "http://[::ffff:127.0.0.1]/", "an IPv4-mapped address of 127.0.0.1 (a loopback address)"],
    ["IPv4-mapped hex", "http://[::ffff:7f00:1]/", "an IPv4-mapped address of 127.0.0.1 (a loopback address)"],
    ["IPv4-mapped public", "http://[::ffff:8.8.8.8]/", "an IPv4-mapped address of 8.8.8.8"],
    ["IPv4-translated", "http://[::ffff:0:a00:1]/", "an IPv4-translated address of 10.0.0.1 (a private address)"],
    ["IPv4-compatible", "http://[::127.0.0.1]/", "an IPv4-compatible address of 127.0.0.1 (a loopback address)"],
    ["NAT64", "http://[64:ff9b::a9fe:a9fe]/", "a NAT64 address of 169.254.169.254 (a link-local (cloud metadata) address)"],
    ["local-use NAT64", "http://[64:ff9b:1::1]/", "a local-use NAT64 address"],
    ["6to4 of loopback", "http://[2002:7f00:1::]/", "a 6to4 address of 127.0.0.1 (a loopback address)"],
    ["Teredo", "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "a Teredo tunnel address"],
    ["documentation", "http://[2001:db8::1]/", "a documentation address"],
    ["unique local", "http://[fd00:ec2::254]/", "a unique local address"],
    ["link-local", "http://[fe80::1]/", "a link-local address"],
    ["link-local upper edge", "http://[febf::1]/", "a link-local address"],
    ["site-local", "http://[fec0::1]/", "a deprecated site-local address"],
    ["multicast", "http://[ff02::1]/", "a multicast address"],
    ["discard-only", "http://[100::1]/", "a discard-only address"],
  ])("the %s address %s is refused", (_form, url, label) => {
    expect(reasonFor(url)).toBe(`target host ${new URL(url).hostname} is ${label}`);
  });
});

describe("checkTargetUrl refuses local names", () => {
  it.each([
    "http://localhost/",
    "http://localhost./",
    "http://LOCALHOST:8787/",
    "http://foo.localhost/",
    "http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://metadata.google.internal./",
    "http://db.corp.internal/",
    "http://printer.local/",
    "http://metadata/",
    "http://ip6-localhost/",
  ])("%s is refused", (url) => {
    expect(checkTargetUrl(url, strict).ok).toBe(false);
  });
});

describe("checkTargetUrl refuses unsafe URL shapes", () => {
  it.each([
    ["a file: URL", "file:///etc/passwd", "target URL scheme file: is not allowed; use http: or https:"],
    ["a gopher: URL", "gopher://example.com/", "target URL scheme gopher: is not allowed; use http: or https:"],
    ["a ws: URL", "ws://example.com/", "target URL scheme ws: is not allowed; use http: or https:"],
    ["a relative URL", "/v1/jobs", "target URL is not a valid absolute URL"],
    ["an out-of-range IPv4 literal", "http://256.0.0.1/", "target URL is not a valid absolute URL"],
    ["a URL with credentials", "https://user:pass@example.com/", "target URL must not contain credentials; send them in a header instead"],
    [
      "a userinfo host confusion",
      "http://example.com@127.0.0.1/",
      "target URL must not contain credentials; send them in a header instead",
    ],
    ["a URL with CRLF", "http://example.com/\r\nX-Injected: 1", "target URL contains control characters or surrounding whitespace"],
    ["a URL with a NUL", "https://example.com/\u0000", "target URL contains control characters or surrounding whitespace"],
    ["a URL with leading space", " https://example.com/", "target URL contains control characters or surrounding whitespace"],
  ])("%s is refused", (_shape, url, reason) => {
    expect(reasonFor(url)).toBe(reason);
  });
});

describe("checkTargetUrl allows public targets", () => {
  it.each([
    "https://example.com/",
    "https://8.8.8.8/",
    "https://[2606:4700::1111]/",
    "http://example.com:8080/hook?x=1",
    "http://172.15.255.255/",
    "http://172.32.0.1/",
    "http://100.63.255.255/",
    "http://100.128.0.1/",
    "http://198.17.255.255/",
    "http://223.255.255.255/",
    "http://[2002:808:808::1]/",
    "http://127.0.0.1.nip.io/",
  ])("%s is allowed", (url) => {
    const result = checkTargetUrl(url, strict);
    expect(result.ok).toBe(true);
    expect(result.ok && result.url.href).toBe(new URL(url).href);
  });
});

describe("checkTargetUrl with allowPrivate", () => {
  const local = { allowPrivate: true };

  it("allows a loopback target for local development", () => {
    expect(checkTargetUrl("http://127.0.0.1:8787/hook", local).ok).toBe(true);
    expect(checkTargetUrl("http://localhost/", local).ok).toBe(true);
    expect(checkTargetUrl("http://[::1]/", local).ok).toBe(true);
  });

  it("still refuses schemes other than http and https", () => {
    expect(checkTargetUrl("file:///etc/passwd", local).ok).toBe(false);
  });

  it("still refuses credentials in the URL", () => {
    expect(checkTargetUrl("http://user:pass@localhost/", local).ok).toBe(false);
  });
});

describe("isPrivateAddress", () => {
  it.each([
    ["127.0.0.1", true],
    ["10.1.2.3", true],
    ["169.254.169.254", true],
    ["::1", true],
    ["[::1]", true],
    ["fe80::1%eth0", true],
    ["::ffff:127.0.0.1", true],
    ["fd00::1", true],
    ["8.8.8.8", false],
    ["2606:4700::1111", false],
    ["0x7f.1", true],
    ["example.com", false],
    ["evil@127.0.0.1", false],
    ["not an address", false],
  ] as const)("says %s is private: %s", (ip, expected) => {
    expect(isPrivateAddress(ip)).toBe(expected);
  });
});

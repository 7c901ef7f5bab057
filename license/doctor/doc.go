// Package doctor diagnoses a licence client on a customer's machine in one
// call and writes a redacted support bundle, so that a vendor's support
// team can tell a network path problem from a clock, state, hardware or
// licence problem without a remote session.
//
// # Overview
//
// [Run] builds the client the product would build from the same
// [license.Config] (pass the product's options with [WithClientOptions],
// [WithHTTPClient] and [WithRootCAs]) and runs every check in a fixed
// order, each with a [Verdict] (ok, warn, fail, skipped), a one-line
// finding in plain words, redacted evidence and a suggested fix:
//
//   - config: every problem license.New finds, at once;
//   - dns: the server host resolves ([WithResolver] replaces the lookup);
//   - proxy: which proxy the product's transport selects for the server URL
//     (its HTTP client's, else HTTPS_PROXY, HTTP_PROXY and NO_PROXY) and
//     whether it passes requests on; a 407, an HTML page or a redirect is
//     "a proxy or gateway answered instead of the licence server";
//   - tcp: a connection to the server, or through the proxy;
//   - tls: handshake, chain against the configured roots, expiry, host
//     name, and interception when [WithExpectedIssuer] or [WithPinnedKeys]
//     is given (or the issuer is a known TLS-inspection product);
//   - http: one harmless request (extend_session for a token that names no
//     session) and its round-trip time, judged by the SDK's own reply
//     classification;
//   - clock: the server's time from that reply: warn past a minute, fail
//     past the 5 minutes the client tolerates;
//   - state: the state directory is usable, which slots running products
//     hold (never waited for or taken over), whether the saved state opens,
//     its deadlines and its high-water mark against the wall clock;
//   - fingerprint: every component with its source, strength and missing
//     reason, what changed since the machine registered, and container or
//     VM advice;
//   - license: without [Full], one register_instance, only for a machine
//     the server already registered (the spec makes it return the existing
//     instance); otherwise the licence is reported as not checked;
//   - roundtrip: only with [Full], a real register, begin and end.
//
// One root cause gives one failing check: when the proxy refuses, the
// checks that need it are skipped with "not checked: proxy refused".
// Without [Full] no check takes a seat or creates anything on the server,
// and none changes the saved state. docs/doctor.md has sample output and
// what each check fails on.
//
// # Support bundle
//
// [Report.WriteBundle] writes one JSON document: the report, the SDK and Go
// versions, OS and architecture. The API key, licence key, shared secret
// and tokens never enter a report; every string of it passes the SDK's
// redactor, which removes them anyway. Hardware identifiers appear only as
// HMAC-SHA256 digests keyed with a salt that is fresh for each report, so
// bundles made independently cannot be linked to each other or to a
// machine. To compare two bundles from one machine, make the second with
// [WithBaseline]: the fingerprint check names every component that differs,
// and the second bundle still has a fresh salt of its own (see
// docs/doctor.md for why).
package doctor

// Package licensetest provides a mock v2 licence server for tests, built
// like net/http/httptest.
//
// # Overview
//
// A Server implements the four v2 endpoints for real: it opens each request's
// envelope with its private key (public-key mode) or its secret
// (shared-secret mode; both are accepted at once), checks licences, registers
// instances, issues, extends and ends sessions, enforces seat limits and
// reaps lapsed sessions. It answers in the spec's shapes, sealing the reply
// whenever the client asks for a sealed reply.
//
//	s := licensetest.NewServer(nil)
//	t.Cleanup(s.Close)
//	err := s.AddLicense(licensetest.License{ProductGUID: "app", Key: "K-1", Seats: 2,
//		SessionDuration: 10 * time.Minute, GracePeriod: time.Hour})
//
// A client is configured with s.URL and what s.Info() returns (the API key and
// either the public key or the secret), and sends its requests with s.Client()
// (or s.Transport()). Package testclient (license/licensetest/testclient) does
// that in one call for a license.Client:
//
//	c := testclient.New(t, s, lic) // Config, the right transport, Close on cleanup
//
// # Endpoints
//
// Every endpoint takes POST {"key":...,"data":...} at URL + "/" + endpoint.
//
// The envelope is checked first, as envelope/FORMAT.md describes: a body
// that is not a request, an unknown API key, data that does not open, data
// sealed for another endpoint, a timestamp outside the freshness window
// (Config.FreshnessWindow, default 5 minutes behind and 30 seconds ahead of the
// server's clock), a request id reused by other
// data, or, with Config.SealedReplies, a request that does not ask for a sealed
// reply, all get an envelope-level rejection: a plain body
// {"success":false,"time":...,"error":"envelope: ...","envelope_error":<code>}
// with 400, 401 or 503 (see envelope.RejectionReply). These are not licence
// verdicts: nothing is processed and a client treats them as "unreachable".
// A repeat of a request the server already answered (the same data,
// within the window) gets the stored reply again and is never processed
// twice, so a client's retries are idempotent and captured requests cannot
// be replayed. Only requests that name an existing licence (register, begin)
// or a live session token (extend, end) are remembered, each licence and
// session within its own quota, so a flood of envelopes sealed by anyone
// holding a copy of the product never takes room from a customer
// (Config.ReplayCache bounds the memory).
//
// A licence failure is always {"success":false,"time":...,"error":...},
// sealed when the client asked for it, with these HTTP statuses; by default
// the error texts contain the words shown in quotes. Config.RefusalTexts words
// the licence refusals (403, 404, 409) like another server does, to test a
// client's refusal rules against them:
//
//   - 400: the payload is malformed, a required field is missing or has the
//     wrong JSON type ("malformed");
//   - 403: the licence is unknown ("unknown license"), revoked ("revoked") or
//     expired ("expired");
//   - 404: begin_session names an unknown instance ("unknown instance"), or
//     extend_session an unknown or ended token ("unknown token") or a lapsed
//     one ("session lapsed");
//   - 409: begin_session would exceed the seat limit ("seat limit");
//   - 422: every end_session failure, as the spec says.
//
// register_instance returns the same instance (same guid and
// first_registered_at) for the same hardware and user; see Match for what
// "same" means. begin_session needs an instance registered under the same
// licence, takes a seat, and returns status 1 (SessionStatus), a random
// session_key and token, the licence's features and its control options.
// extend_session extends a live session and returns its token (a new one
// with Config.TokenRotation). end_session ends it and frees the seat. A
// requested duration is clamped to the licence's MaxDuration, and the reply's
// control_options.session_duration is the effective duration.
//
// Sessions lapse at the time of their last begin or extend plus that
// duration. They are reaped lazily, on each request and on each observation
// call, so the server needs no background goroutine.
//
// # Faults
//
// Faults make the mock worth using. Inject queues a Fault for one endpoint
// (Register, Begin, Extend, End) or all four (""): fail with a chosen status,
// spoil or lose the reply of a processed request, replay an old sealed reply
// or break a seal (see FaultKind). SetDown and SetDownMode (refuse
// connections, reset them or answer 503; see DownMode), SetLatency,
// SetRetryAfter, SetContentType and SetClockSkew change how every request is
// served until changed back. ClearFaults removes them all.
//
// # Licences and observation
//
// AddLicense adds a licence; SetLicenseState and SetControlOptions change
// one on the fly. Requests returns the decrypted requests with their status,
// Count counts them per endpoint, and Sessions, SeatsInUse, Instances,
// License and Licenses show the server's state.
//
// # Testing with synctest
//
// A client tested inside a testing/synctest bubble must use Transport, which
// calls the handler in memory (see there why). Create the server inside the
// bubble with NewUnstartedServer (no listener, no goroutine) and Close it
// there:
//
//	synctest.Test(t, func(t *testing.T) {
//		s := licensetest.NewUnstartedServer(nil)
//		defer s.Close()
//		client := &http.Client{Transport: s.Transport()}
//		// ... time.Sleep moves the bubble's clock; sessions lapse on it.
//	})
//
// A license.Client gets the same with license.WithRoundTripper(s.Transport()),
// which testclient.Options adds for a server that is not listening; without
// it, it dials the placeholder address of URL. A server built outside a
// bubble also serves in-memory requests from inside it, but then Close it
// only when no request from the bubble is in flight. See Config.Clock for
// the server's clock.
//
// # Admin API, console and scenarios
//
// Package licensetest/admin serves the admin API (every fault and licence
// change as POST /admin/COMMAND, the state, the request log, the
// configuration) and a live web console for a Server, and plays scenarios
// ("at 5m down refuse"): scripts of timed steps run against the server's
// clock, so they also run on fake time under testing/synctest.
// examples/mockserver serves both; docs/mockserver.md describes them.
//
// # Secrets
//
// This is a test server: Sessions includes tokens. It never writes an API
// key, licence key, token, session key or payload to its logger or into an
// error.
package licensetest

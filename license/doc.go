// Package license is the licensing client: it registers this machine's
// product instance with the licence server (API v2), holds a licence
// session, renews it in the background, keeps the product running offline
// for the grace period the server grants, and ends the session at shutdown.
//
// # Overview
//
// Create a client with New, which validates the Config and does no I/O,
// then call Start. Gate features on Status, Valid or HasFeature, which are
// lock-free and allocation-free, so they are cheap enough for every request
// a product serves. Call Close at shutdown.
//
//	c, err := license.New(license.Config{
//		ServerURL:       "https://licensing.example.com/api/v2",
//		APIKey:          apiKey,
//		ServerPublicKey: serverPublicKeyPEM,
//		ProductGUID:     productGUID,
//		LicenseKey:      licenseKey,
//		StateDir:        stateDir,
//	})
//	if err != nil { ... }
//	if err := c.Start(ctx); err != nil { ... }
//	defer c.Close(context.Background())
//	if c.HasFeature("export") { ... }
//
// Several clients can live in one process; there is no package-level state.
//
// # Lifecycle
//
// Start does, in order: load the sealed state; end a session that a
// previous run left live (orphan cleanup, best effort); register_instance
// if this machine has no stored instance or its hardware changed; then
// begin_session; then it starts the renewal goroutine. Products that drive
// the lifecycle by hand use Register, BeginSession, ExtendSession and
// EndSession instead.
//
// The states are Idle, Active, Grace, Expired, Refused and Ended:
//
//	Idle --Start ok--> Active --session lapses, server unreachable--> Grace
//	Grace --grace period spent--> Expired
//	Grace, Expired --server answers--> Active
//	any --server refuses (no grace)--> Refused (final: Close keeps it)
//	Idle, Active, Grace, Expired --Close--> Ended
//
// An offline Start resumes the deadlines the server last granted: Active
// until the saved session's lapse, then Grace, whether or not the previous
// run's end_session reached the server. Active then means "within the last
// granted session", not "a session is open on the server".
//
// Renewing is a flag on Status, not a state. Done closes once, when the
// client is finished for good (see Client.Done); Expired recovers and is
// not an end. See docs/lifecycle.md for the start-up budget and the
// deadline margin.
//
// # Renewal and grace
//
// With D = session_duration and G = validation_grace_period from the latest
// reply, and sent the time the last successful begin_session or
// extend_session request was sent (not when its reply arrived):
//   - The session is valid until sent + D. Renewal is due at a uniformly
//     random point in [50 %, 70 %) of D after sent, always with the latest
//     reply's D; extend_session may rotate the token, and the latest one is
//     used and persisted.
//   - When the server is unreachable (network error, timeout, 5xx, 429, 408,
//     or a reply that cannot be trusted), the client retries with equal
//     jitter: U[0.5, 1) × min(cap, 2 s × 2^(n-1)), never less than 100 ms;
//     cap is min(60 s, max(D/10, 5 s)) while the session is live,
//     min(60 s, max(G/10, 5 s)) in Grace and 5 min in Expired. Retry-After
//     counts, capped the same way. No wait or call runs past the next
//     deadline, so state changes are never late. The state is Active until
//     sent + D, Grace until sent + D + G, then Expired; the client keeps
//     trying, and an extend of the old token, or else a fresh begin,
//     returns it to Active.
//   - When the server refuses extend_session, the client ends the old token
//     (so that it cannot hold a seat) and tries one begin_session; if that
//     is refused too, the state becomes Refused at once, with no grace. A
//     begin_session refused because the server no longer knows the stored
//     instance registers again once.
//   - Elapsed time is a budget: the budget used before plus monotonic
//     elapsed time, or wall elapsed time if that is more, so a suspend
//     counts and setting the clock back never extends a deadline. It is
//     saved at every state change and every minute offline, so a restart
//     continues it. A wall clock more than five minutes before the highest
//     wall time seen means the clock was rolled back: offline allowance is
//     refused (ErrClockRollback) until the server is reached again.
//
// Worked example: D = 1 h, G = 24 h, session begun at 00:00, renewal due
// between 00:30 and 00:42. If the network goes down at 00:40 before the
// renewal, the client stays Active until 01:00, is in Grace from 01:00 and
// Expired at 25:00 (01:00 the next day), unless the server answers first.
// docs/renewal.md has the full schedule.
//
// # Persisted state
//
// With Config.StateDir set, the client keeps its instance, session token,
// deadlines, control options, last contact and the wall-time high-water
// mark in a state file sealed with AES-256-GCM under a key derived from the
// product, the licence key and one machine identifier any user can read, so
// a run as another user of the same machine opens it too. A copied or
// hand-edited file does not open: this stops casual tampering and copying,
// not a determined reverse engineer. Writes are atomic. Licences sharing a
// StateDir never touch each other's files, and each live client of one
// licence has its own slot (WithStateSlots). A corrupt file is moved aside
// (ErrStateCorrupt) and the client then needs the server. docs/lifecycle.md
// names the files and the key.
//
// A product restarted while offline continues the deadlines it had, never
// fresh ones, within the budgets Start describes. A final refusal is saved
// at once and only an authenticated success clears it; a capacity refusal
// is not saved (RefusalKind.Final). A state restored from a copy grants no
// offline time (ErrStateRollback). An envelope-level rejection is
// unreachable, never a refusal (EnvelopeError, ErrClockSkew).
// docs/security.md says what these measures stop and what they cannot.
//
// On a machine with fewer than two strong hardware components (containers,
// cloned VMs), the client keeps a random install ID in the state and sends
// "install-<id>" as mb_serial, so the instance stays stable across restarts
// and distinct from its clones.
//
// # Errors
//
// Every failed call matches exactly one category: ErrUnreachable (no word
// from the licence server; grace applies), ErrRefused (the licence server
// said no; no grace) or ErrClientFault (the call failed on this machine;
// grace applies). New's errors match ErrInvalidConfig. Replies are sealed
// by default, and only a reply that opens as a sealed reply to its own
// request is the licence server's word; the sentinels' docs say what each
// covers. A refusal is an *APIError; any other failure is an *Error that
// reads as one line. Every network text passes one redactor that knows the
// client's secrets, so no error, log line or event contains the API key,
// the licence key, the shared secret, a token, the session key or a
// payload. The full outcome table is in docs/errors.md.
//
// # Events
//
// WithEventHandler receives state changes, renewals, failed attempts,
// orphan cleanup and more, serially and in order, from one goroutine, never
// after Close returns. The schedule never waits for the handler.
//
// # Testing
//
// Package licensetest is a real mock server with fault injection. Its
// Transport method returns an in-memory http.RoundTripper, which, passed
// with WithRoundTripper, lets a test run a client under testing/synctest
// and cover a day of renewals in milliseconds. Package
// license/licensetest/testclient builds the Config and options for a licence
// on a licensetest server in one call:
//
//	srv := licensetest.NewUnstartedServer(nil)
//	t.Cleanup(srv.Close)
//	srv.AddLicense(lic)
//	c := testclient.New(t, srv, lic) // in-memory transport, closed on cleanup
package license

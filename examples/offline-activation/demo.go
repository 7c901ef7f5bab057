package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/licensekit/licensekit-go/examples/internal/serverflags"
	"github.com/licensekit/licensekit-go/license"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// The demo's licence: an offline licence gets a long session and grace
// (the server decides).
const (
	demoProduct  = "demo-product"
	demoLicense  = "DEMO-OFFLINE-0001"
	demoFeatures = "export,pro"
	demoSession  = 90 * 24 * time.Hour
	demoGrace    = 14 * 24 * time.Hour
)

// demo is the one-run ceremony: an offline machine (a client with no
// network and its own state directory) and an online machine (the exchange)
// against an in-process mock server over loopback HTTP.
type demo struct {
	io  ios
	srv *licensetest.Server
	c   *license.Client
	qr  bool
	t0  time.Time
}

// step prints one step's line: its elapsed time and what happened.
func (d *demo) step(took time.Duration, format string, a ...any) {
	fmt.Fprintf(d.io.out, "%-9s %s\n", took.Round(10*time.Microsecond), fmt.Sprintf(format, a...))
}

func (d *demo) note(format string, a ...any) {
	fmt.Fprintf(d.io.out, "          %s\n", fmt.Sprintf(format, a...))
}

// runDemo runs the whole ceremony in one run.
func runDemo(ctx context.Context, args []string, io ios) error {
	fs := newFlags("demo", io)
	qr := fs.Bool("qr", false, "print each request file as a QR code, if it fits one")
	if err := parse(fs, args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "licensekit-offline-activation-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, cfg, err := serverflags.StartMock(licensetest.License{ProductGUID: demoProduct, Key: demoLicense, Seats: 1,
		SessionDuration: demoSession, GracePeriod: demoGrace, Features: demoFeatures})
	if err != nil {
		return err
	}
	defer srv.Close()
	cfg.ServerURL, cfg.StateDir = offlineURL, dir+"/state"
	c, err := license.New(cfg, offlineOptions(license.WithRollbackRecordDir(dir+"/rollback"))...)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx)) //nolint:errcheck // offline: Close cannot end the session
	d := &demo{io: io, srv: srv, c: c, qr: *qr, t0: time.Now()}
	fmt.Fprintf(io.out, "online:  in-process mock server at %s; licence %s: session %s, grace %s, 1 seat\n",
		srv.URL, demoLicense, demoSession, demoGrace)
	fmt.Fprintf(io.out, "offline: a client with no network, state in %s\n", dir)
	fmt.Fprintln(io.out, "time      step")
	return d.script(ctx)
}

func (d *demo) script(ctx context.Context) error {
	// 1-3: request, exchange, activate; a new machine carries two files.
	var begin []byte
	for {
		req, _, more, err := d.trip(ctx)
		if err != nil {
			return err
		}
		if !more {
			begin = req
			break
		}
		d.note("registered: the server assigned this machine's instance; the session needs a second file (begin_session)")
	}
	st := d.c.Status()
	d.note("licence: %s, valid %t, features %v, session until %s", st.State, st.Valid(), st.FeatureSet, st.SessionExpiry.UTC().Format(time.DateOnly))
	d.note("seats in use: %d", d.srv.SeatsInUse(demoProduct, demoLicense))

	// The same file carried twice: the server answers from its memory.
	r1, err := d.exchange(ctx, begin)
	if err != nil {
		return err
	}
	r2, err := d.exchange(ctx, begin)
	if err != nil {
		return err
	}
	d.note("the begin_session file posted twice more: same reply %t, seats in use: %d",
		bytes.Equal(replyBodies(r1), replyBodies(r2)), d.srv.SeatsInUse(demoProduct, demoLicense))

	// The product code is the same as online.
	t := time.Now()
	if err := d.c.Start(ctx); err != nil {
		return fmt.Errorf("start offline: %w", err)
	}
	d.step(time.Since(t), "start (offline): %s", d.c.Status().State)

	// 4: refresh by file.
	_, reply, _, err := d.trip(ctx)
	if err != nil {
		return err
	}
	st = d.c.Status()
	d.note("refreshed: licence %s, session until %s", st.State, st.SessionExpiry.UTC().Format(time.DateOnly))
	if _, err := d.c.ActivateOffline(ctx, bytes.NewReader(reply)); err != nil {
		d.note("the refresh reply loaded again: refused: %v", err)
	}

	// 5: deactivate.
	var end bytes.Buffer
	t = time.Now()
	if err := d.c.OfflineDeactivate(ctx, &end); err != nil {
		return err
	}
	d.step(time.Since(t), "deactivate: end_session request file, %d bytes; licence %s, valid %t", end.Len(), d.c.Status().State, d.c.Valid())
	if _, err := d.exchange(ctx, end.Bytes()); err != nil {
		return err
	}
	d.note("seats in use: %d", d.srv.SeatsInUse(demoProduct, demoLicense))
	if _, err := d.c.ActivateOffline(ctx, bytes.NewReader(reply)); err != nil {
		d.note("the old reply file after deactivation: refused: %v", err)
	}
	fmt.Fprintf(d.io.out, "done in %s\n", time.Since(d.t0).Round(time.Millisecond))
	return nil
}

// trip carries one request file from the offline machine to the server and
// its reply file back, and activates it: request, exchange, activate. more
// reports that the machine needs another trip.
func (d *demo) trip(ctx context.Context) (req, reply []byte, more bool, err error) {
	if req, err = d.request(ctx); err != nil {
		return nil, nil, false, err
	}
	if reply, err = d.exchange(ctx, req); err != nil {
		return nil, nil, false, err
	}
	more, err = d.activate(ctx, reply)
	return req, reply, more, err
}

// request writes the offline machine's next request file.
func (d *demo) request(ctx context.Context) ([]byte, error) {
	var b bytes.Buffer
	t := time.Now()
	if err := d.c.OfflineRequest(ctx, &b); err != nil {
		return nil, err
	}
	took := time.Since(t)
	text := b.Bytes()
	fit := "does not fit one QR code"
	if q, err := qrFit(text); err == nil {
		fit = fmt.Sprintf("fits QR version %d at level L", q.VersionNumber)
	}
	d.step(took, "request: %s, %d bytes (%s)", headerValue(text, "Kind"), len(text), fit)
	for _, l := range blockHeaders(text) {
		d.note("%s", l)
	}
	if d.qr {
		printQR(d.io.out, text)
	}
	return text, nil
}

// exchange posts a request file on the online machine.
func (d *demo) exchange(ctx context.Context, req []byte) ([]byte, error) {
	var b bytes.Buffer
	t := time.Now()
	err := license.ExchangeOffline(ctx, license.ExchangeConfig{ServerURL: d.srv.URL, APIKey: d.srv.Info().APIKey}, bytes.NewReader(req), &b)
	if err != nil {
		return nil, err
	}
	d.step(time.Since(t), "exchange: reply file, %d bytes (%s)", b.Len(), strings.Join(blockHeaders(b.Bytes()), ", "))
	return b.Bytes(), nil
}

// activate applies a reply file on the offline machine.
func (d *demo) activate(ctx context.Context, reply []byte) (bool, error) {
	t := time.Now()
	more, err := d.c.ActivateOffline(ctx, bytes.NewReader(reply))
	if err != nil {
		return false, err
	}
	d.step(time.Since(t), "activate: licence %s", d.c.Status().State)
	return more, nil
}

// headerValue returns a header line's value from a file's readable header.
func headerValue(text []byte, name string) string {
	for l := range bytes.Lines(text) {
		if v, ok := bytes.CutPrefix(l, []byte(name+": ")); ok {
			return string(bytes.TrimSpace(v))
		}
	}
	return ""
}

// replyBodies returns a reply file without its Created line (the time of
// the exchange): what the server answered.
func replyBodies(text []byte) []byte {
	var b bytes.Buffer
	for l := range bytes.Lines(text) {
		if !bytes.HasPrefix(l, []byte("Created: ")) {
			b.Write(l)
		}
	}
	return b.Bytes()
}

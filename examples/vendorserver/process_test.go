package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/fingerprint"
	"github.com/licensekit/licensekit-go/license"
)

// process is a vendorserver command running as its own process.
type process struct {
	api, admin string // host:port of the licence API and the admin API
}

// startProcesses runs n copies of the vendorserver command with args, as
// processes of the test binary (childEnv) started at once, and returns
// once each serves. At the end of the test each is interrupted and must
// stop cleanly, having printed no error.
func startProcesses(t *testing.T, n int, args ...string) []process {
	t.Helper()
	cmds := make([]*exec.Cmd, n)
	stdout := make([]io.Reader, n)
	stderr := make([]*bytes.Buffer, n)
	for i := range cmds {
		cmds[i] = exec.Command(os.Args[0], args...)
		cmds[i].Env = append(os.Environ(), childEnv+"=1")
		stderr[i] = &bytes.Buffer{}
		cmds[i].Stderr = stderr[i]
		var err error
		stdout[i], err = cmds[i].StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmds[i].Start())
	}
	procs := make([]process, n)
	for i, cmd := range cmds {
		p := &procs[i]
		lines := bufio.NewScanner(stdout[i])
		for p.api == "" || p.admin == "" {
			if !lines.Scan() {
				_ = cmd.Wait()
				t.Fatalf("vendorserver stopped before serving: %s", stderr[i])
			}
			if _, rest, ok := strings.Cut(lines.Text(), "licence server for API v2 at http://"); ok {
				p.api = strings.TrimSuffix(rest, "/api/v2")
			}
			if _, rest, ok := strings.Cut(lines.Text(), "admin API at http://"); ok {
				p.admin, _, _ = strings.Cut(rest, "/")
			}
		}
		var rest strings.Builder
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			for lines.Scan() {
				rest.WriteString(lines.Text() + "\n")
			}
		}()
		t.Cleanup(func() {
			require.NoError(t, cmd.Process.Signal(os.Interrupt))
			<-drained
			assert.NoError(t, cmd.Wait(), "vendorserver on %s: %s", p.api, stderr[i])
			assert.Contains(t, rest.String(), "stopped")
			assert.Empty(t, stderr[i].String())
		})
	}
	return procs
}

// spread is a client's network that sends each request to the next of
// several server processes, as a load balancer would, and keeps every
// failure: a transport error or a 5xx answer.
type spread struct {
	hosts    []string
	next     atomic.Uint64
	mu       sync.Mutex
	failures []string
}

func (s *spread) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Host = s.hosts[s.next.Add(1)%uint64(len(s.hosts))]
	r.Host = ""
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || resp.StatusCode >= 500 {
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			s.failures = append(s.failures, fmt.Sprintf("%s %s: %v", r.URL.Host, r.URL.Path, err))
		} else {
			s.failures = append(s.failures, fmt.Sprintf("%s %s: HTTP %d", r.URL.Host, r.URL.Path, resp.StatusCode))
		}
	}
	return resp, err
}

// TestProcessesShareOneDatabase runs three vendorserver processes on one
// SQLite file, started at once on a file none of them created, and clients
// whose requests go to each process in turn (register to one, begin to
// the next, extend to the next): licences issued through different
// processes at once, the same licence issued through all three at once
// (one wins, two are told it exists), twelve clients starting at once on
// seven licences, one of them three seats for six machines (exactly three
// begin), extensions through every process, and a revocation through one
// process seen by a client renewing through another. No request fails (no
// "database is locked", no 5xx), and the database holds the right counts.
func TestProcessesShareOneDatabase(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the test stops its server processes with os.Interrupt, which Windows cannot send to another process")
	}
	ctx := context.Background()
	priv, _ := newKey(t, envelope.KEMX25519)
	dir := t.TempDir()
	keyFile, db := filepath.Join(dir, "server.key"), filepath.Join(dir, "vendorserver.db")
	require.NoError(t, os.WriteFile(keyFile, priv.EncodePEM(), 0o600))
	t.Setenv(AdminTokenEnv, adminToken)

	procs := startProcesses(t, 3, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-key-file", keyFile,
		"-db", db, "-api-key", apiKey)
	var wg sync.WaitGroup
	hosts := []string{procs[0].api, procs[1].api, procs[2].api}
	issue := func(p process, key string, seats int) error {
		_, err := call(ctx, http.MethodPost, "http://"+p.admin+"/admin/licences", adminToken,
			licenceJSON{Product: lic.ProductGUID, Key: key, Seats: &seats})
		return err
	}

	// Licences issued through every process at once; the same licence
	// through all three.
	keys := []string{"K-0", "K-1", "K-2", "K-3", "K-4", "K-5", "SEATS"}
	issued := make([]error, len(keys))
	dup := make([]error, len(procs))
	for i, k := range keys {
		wg.Go(func() { issued[i] = issue(procs[i%len(procs)], k, map[bool]int{true: 3}[k == "SEATS"]) })
	}
	for i, p := range procs {
		wg.Go(func() { dup[i] = issue(p, "DUP", 0) })
	}
	wg.Wait()
	for i, err := range issued {
		require.NoError(t, err, keys[i])
	}
	var won int
	for _, err := range dup {
		if err == nil {
			won++
		} else {
			assert.ErrorContains(t, err, "HTTP 409")
		}
	}
	assert.Equal(t, 1, won, "the same licence issued through three processes at once")

	// Twelve machines start at once: one on each K-, six on SEATS.
	lb := &spread{hosts: hosts}
	newClient := func(key string, machine int) *license.Client {
		cfg := config("http://"+hosts[0]+"/api/v2", priv.Public(), true)
		cfg.LicenseKey, cfg.StateDir = key, t.TempDir()
		c, err := license.New(cfg, license.WithRoundTripper(lb), license.WithRetry(license.Retry{Attempts: 1}),
			license.WithFingerprintSource(machineFingerprint(machine)))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close(ctx) })
		return c
	}
	var clients []*license.Client
	for i, k := range keys[:6] {
		clients = append(clients, newClient(k, i))
	}
	for i := range 6 {
		clients = append(clients, newClient("SEATS", 100+i))
	}
	started := make([]error, len(clients))
	for i, c := range clients {
		wg.Go(func() { started[i] = c.Start(ctx) })
	}
	wg.Wait()
	var active []*license.Client
	for i, err := range started {
		if err == nil {
			active = append(active, clients[i])
			continue
		}
		require.GreaterOrEqual(t, i, 6, "a client of a licence without a seat limit: %v", err)
		assert.ErrorIs(t, err, license.ErrRefused, "client %d", i)
	}
	assert.Len(t, active, 9, "six K- machines and three of the six SEATS machines")

	// Every active client extends three times, each time through another
	// process.
	const rounds = 3
	extended := make([]error, len(active))
	for i, c := range active {
		wg.Go(func() {
			for range rounds {
				if extended[i] = c.ExtendSession(ctx); extended[i] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	for i, err := range extended {
		assert.NoError(t, err, "client %d", i)
	}

	// Revoked through process 0, seen by a client renewing through process 2.
	require.NoError(t, issue(procs[1], "REVOKE", 0))
	cfg := config("http://"+procs[2].api+"/api/v2", priv.Public(), true)
	cfg.LicenseKey, cfg.StateDir = "REVOKE", t.TempDir()
	c, err := license.New(cfg, license.WithRetry(license.Retry{Attempts: 1}), license.WithFingerprintSource(machineFingerprint(200)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(ctx) })
	require.NoError(t, c.Start(ctx))
	_, err = call(ctx, http.MethodPost, "http://"+procs[0].admin+"/admin/licences/revoke", adminToken,
		licenceJSON{Product: lic.ProductGUID, Key: "REVOKE"})
	require.NoError(t, err)
	err = c.ExtendSession(ctx)
	assert.ErrorIs(t, err, license.ErrRevoked)
	assert.Equal(t, license.Refused, c.Status().State)

	lb.mu.Lock()
	assert.Empty(t, lb.failures, "requests that failed")
	lb.mu.Unlock()

	// What every process sees: nine licences, thirteen machines registered,
	// three live sessions on SEATS.
	for _, p := range procs {
		out, err := call(ctx, http.MethodGet, "http://"+p.admin+"/admin/licences", adminToken, nil)
		require.NoError(t, err)
		var ls []licenceJSON
		require.NoError(t, json.Unmarshal(out, &ls))
		live := map[string]int{}
		for _, l := range ls {
			live[l.Key] = l.LiveSessions
			assert.Equal(t, l.Key == "REVOKE", l.Revoked, l.Key)
		}
		assert.Equal(t, 9, len(ls), p.admin)
		assert.Equal(t, 3, live["SEATS"], p.admin)
		out, err = call(ctx, http.MethodGet, "http://"+p.admin+"/admin/instances", adminToken, nil)
		require.NoError(t, err)
		var in []Instance
		require.NoError(t, json.Unmarshal(out, &in))
		assert.Equal(t, 13, len(in), p.admin)
	}
}

// machineFingerprint is the fixed fingerprint of machine n.
func machineFingerprint(n int) license.FingerprintSource {
	return func(context.Context) (*fingerprint.Fingerprint, error) {
		return &fingerprint.Fingerprint{
			MBSerial: fingerprint.Component{Name: fingerprint.NameMBSerial, Value: fmt.Sprint("board-", n), Strength: fingerprint.Strong},
			HostName: fingerprint.Component{Name: fingerprint.NameHostName, Value: fmt.Sprint("host-", n), Strength: fingerprint.Weak},
			Extra:    []fingerprint.Component{{Name: fingerprint.NameMachineID, Value: fmt.Sprint("machine-", n), Strength: fingerprint.Strong}},
		}, nil
	}
}

// TestOpenNewFileAtOnce opens one new database file from three stores at
// once, sixty times: every open succeeds, although SQLite does not wait
// for the lock when a new file switches to WAL (OpenStore retries). It is
// the start of TestProcessesShareOneDatabase in one process, repeated
// often enough to fail without the retry (one new file in twenty failed).
func TestOpenNewFileAtOnce(t *testing.T) {
	dir := t.TempDir()
	for i := range 60 {
		path := filepath.Join(dir, fmt.Sprint(i, ".db"))
		errs := make([]error, 3)
		var wg sync.WaitGroup
		for j := range errs {
			wg.Go(func() {
				st, err := OpenStore(path)
				if err == nil {
					err = st.Close()
				}
				errs[j] = err
			})
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...), "file %d", i)
	}
}

package license

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/internal/statefile"
	"github.com/licensekit/licensekit-go/license/licensetest"
)

// TestEverySaveBumpsGenerationAndWritesRecord is a property test over
// random sequences of operations (start online or offline, renew, run
// offline, refuse, crash, close, back up and restore an old copy, switch
// between shared and normal mode). After every operation, each state file
// the client wrote since the last look has a generation above every
// generation written before it (a restored copy included), and its
// anti-rollback record holds that same generation and offline budget: no
// save path writes the state without bumping the generation and writing
// the record.
func TestEverySaveBumpsGenerationAndWritesRecord(t *testing.T) {
	for seed := range uint64(24) {
		t.Run(fmt.Sprint("seed-", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { saveProperty(t, seed) })
		})
	}
}

// propFile is one state file the property watches, with its record.
type propFile struct {
	name, record string
	last         []byte // the bytes at the last look
	restored     []byte // bytes a restore put back, not written by the client
	maxGen       uint64
}

func saveProperty(t *testing.T, seed uint64) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 20))
	dir, records, backups := t.TempDir(), t.TempDir(), t.TempDir()
	e := newEnv(t, envConfig{session: 10 * time.Minute, grace: time.Hour})
	abs, err := filepath.Abs(dir)
	require.NoError(t, err)
	cfg := Config{ProductGUID: testProduct, LicenseKey: testLicense}
	shName := statefile.SharedName(testProduct, testLicense)
	files := []*propFile{
		{name: stateBase, record: recordName(&cfg, abs, 0)},
		{name: shName, record: recordName(&cfg, filepath.Join(abs, shName), 0)},
	}
	var (
		c       *Client
		shared  bool
		backup  bool
		history []string
	)
	opts := func() []Option {
		o := []Option{WithRollbackRecordDir(records)}
		if shared {
			o = append(o, WithSharedSession(SharedSession{}))
		}
		return o
	}
	stop := func(crashIt bool) {
		if c == nil {
			return
		}
		if crashIt {
			crash(c)
		} else {
			_ = c.Close(ctx)
		}
		c = nil
	}
	ops := []struct {
		name string
		do   func()
	}{
		{"start-online", func() { stop(false); e.srv.SetDown(false); c, _ = e.startIn(dir, opts()...) }},
		{"start-offline", func() { stop(false); e.srv.SetDown(true); c, _ = e.startIn(dir, opts()...) }},
		{"renew", func() { e.srv.SetDown(false); time.Sleep(6 * time.Minute) }},
		{"offline", func() { e.srv.SetDown(true); time.Sleep(150 * time.Second) }},
		{"refuse", func() {
			e.srv.SetDown(false)
			require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Revoked))
			if c == nil {
				c, _ = e.startIn(dir, opts()...)
			} else {
				time.Sleep(11 * time.Minute)
			}
			require.NoError(t, e.srv.SetLicenseState(testProduct, testLicense, licensetest.Active))
		}},
		{"crash", func() { stop(true) }},
		{"close", func() { stop(false) }},
		{"backup", func() { copyDir(t, dir, backups); backup = true }},
		{"restore", func() {
			if !backup {
				return
			}
			stop(false)
			copyDir(t, backups, dir)
			for _, f := range files {
				f.restored, _ = os.ReadFile(filepath.Join(dir, f.name))
			}
		}},
		{"toggle-shared", func() { stop(false); shared = !shared }},
	}
	for range 14 {
		op := ops[rng.IntN(len(ops))]
		history = append(history, op.name)
		op.do()
		synctest.Wait() // every goroutine has finished its writes
		for _, f := range files {
			checkSaved(t, dir, records, f, strings.Join(history, " "))
		}
	}
	stop(false)
}

// checkSaved checks one state file against the property.
func checkSaved(t *testing.T, dir, records string, f *propFile, history string) {
	t.Helper()
	blob, err := os.ReadFile(filepath.Join(dir, f.name))
	if err != nil || bytes.Equal(blob, f.last) || bytes.Equal(blob, f.restored) {
		f.last = blob
		return
	}
	f.last = blob
	var st persisted
	require.NoError(t, json.Unmarshal(readSealed(t, dir, f.name, stateAAD), &st), history)
	require.Greater(t, st.Generation, f.maxGen, "%s: a save did not move the generation past every earlier one (after: %s)", f.name, history)
	f.maxGen = st.Generation
	plain := readSealed(t, records, f.record, rollbackAAD)
	require.NotNil(t, plain, "%s: saved without its record (after: %s)", f.name, history)
	var rec rollbackRecord
	require.NoError(t, json.Unmarshal(plain, &rec))
	require.Equal(t, st.Generation, rec.Generation, "%s: the record does not hold the saved generation (after: %s)", f.name, history)
	require.Equal(t, st.Used, rec.Used, "%s: the record does not hold the saved offline budget (after: %s)", f.name, history)
}

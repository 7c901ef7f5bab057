package license

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

var updateOffline = flag.Bool("update-offline", false, "regenerate testdata/offline/*.txt")

// TestOfflineVectorFiles writes (with -update-offline) and then applies the
// carried-file vectors in testdata/offline: every kind of file the ceremony
// produces. internal/carried opens them with the standard library alone.
func TestOfflineVectorFiles(t *testing.T) {
	dir := filepath.Join("..", "testdata", "offline")
	if *updateOffline {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, envConfig{session: 90 * 24 * time.Hour, grace: 14 * 24 * time.Hour, seats: 1, features: "pro"})
			c := e.offlineMachine(e.fp, &MemoryStateStore{})
			write := func(name string, b []byte) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
			}
			reg := request(t, c)
			regReply := e.exchange(reg)
			_, err := activate(c, regReply)
			require.NoError(t, err)
			begin := request(t, c)
			beginReply := e.exchange(begin)
			_, err = activate(c, beginReply)
			require.NoError(t, err)
			time.Sleep(80 * 24 * time.Hour)
			refresh := request(t, c)
			refreshReply := e.exchange(refresh)
			_, err = activate(c, refreshReply)
			require.NoError(t, err)
			var end bytes.Buffer
			require.NoError(t, c.OfflineDeactivate(context.Background(), &end))
			write("register-request.txt", reg)
			write("register-reply.txt", regReply)
			write("begin-request.txt", begin)
			write("begin-reply.txt", beginReply)
			write("refresh-request.txt", refresh)
			write("refresh-reply.txt", refreshReply)
			write("deactivation-request.txt", end.Bytes())
			write("begin-reply-truncated.txt", beginReply[:len(beginReply)*2/3])
		})
	}
	for _, name := range []string{"register-request.txt", "begin-request.txt", "refresh-request.txt", "deactivation-request.txt"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		_, err = activate(&Client{}, b) // a request file is never a reply file
		require.ErrorIs(t, err, ErrOfflineFile, name)
	}
}

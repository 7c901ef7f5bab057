package transport_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/transport"
)

// TestAttemptRecordCleansErrorText: the error text of Do's own per-attempt
// debug record passes the redactor and is then cleaned and bounded, like
// every other network text the Client logs: a control character or an
// overlong text from the network never reaches the log as it came.
func TestAttemptRecordCleansErrorText(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	noisy := "boom\x1b[31m\x00 " + strings.Repeat("x", 2000)
	c, err := transport.New("https://licensing.example.com/api/v2", transport.WithLogger(log),
		transport.WithMaxAttempts(1),
		transport.WithRoundTripper(rtFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New(noisy) })))
	require.NoError(t, err)
	_, err = c.Do(t.Context(), transport.Request{Endpoint: "begin_session", Body: []byte(`{}`)})
	require.Error(t, err)
	var rec struct {
		Msg   string `json:"msg"`
		Error string `json:"error"`
	}
	found := false
	for _, line := range bytes.Split(buf.Bytes(), []byte("\n")) {
		if !bytes.Contains(line, []byte(`"transport attempt"`)) {
			continue
		}
		require.NoError(t, json.Unmarshal(line, &rec))
		found = true
		assert.Contains(t, rec.Error, "boom")
		assert.NotContains(t, rec.Error, "\x1b")
		assert.NotContains(t, rec.Error, "\x00")
		assert.LessOrEqual(t, len(rec.Error), 260, "bounded")
	}
	assert.True(t, found, "no attempt record: %s", buf.String())
}

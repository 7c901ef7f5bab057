package envelope_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/licensekit/licensekit-go/envelope"
)

// replayVectors is testdata/envelope/replay_cache.json: a sequence of
// requests to one replay cache and the expected answers (FORMAT.md,
// "Server-side checks").
type replayVectors struct {
	Window           int64        `json:"window"`
	Future           int64        `json:"future"`
	MaxEntries       int          `json:"max_entries"`
	PartitionEntries int          `json:"partition_entries"`
	Steps            []replayStep `json:"steps"`
}

type replayStep struct {
	Op          string `json:"op"` // admit, done, forget
	Name        string `json:"name"`
	Now         string `json:"now"`
	Timestamp   string `json:"timestamp"`
	RequestID   string `json:"request_id"`
	Body        string `json:"body"`
	Partition   string `json:"partition"`
	Expect      string `json:"expect"`
	ReplyStatus int    `json:"reply_status"`
	ReplyBody   string `json:"reply_body"`
	Entries     *int   `json:"entries"`
}

// TestReplayCacheVectors runs the replay-cache vectors against Guard.
func TestReplayCacheVectors(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../testdata/envelope/replay_cache.json")
	require.NoError(t, err)
	var vf replayVectors
	require.NoError(t, json.Unmarshal(raw, &vf))
	require.GreaterOrEqual(t, len(vf.Steps), 20)
	g := envelope.NewGuard(envelope.GuardConfig{
		Window: time.Duration(vf.Window) * time.Second, Future: time.Duration(vf.Future) * time.Second,
		MaxEntries: vf.MaxEntries, PartitionEntries: vf.PartitionEntries,
	})
	tickets := map[string]*envelope.Ticket{}
	for i, st := range vf.Steps {
		switch st.Op {
		case "admit":
			now, err := time.Parse(time.RFC3339Nano, st.Now)
			require.NoError(t, err, st.Name)
			ts, err := time.Parse(time.RFC3339, st.Timestamp)
			require.NoError(t, err, st.Name)
			var body struct {
				Data string `json:"data"`
			}
			require.NoError(t, json.Unmarshal([]byte(st.Body), &body), st.Name)
			op := &envelope.Opened{Time: ts}
			id, err := hex.DecodeString(st.RequestID)
			require.NoError(t, err)
			copy(op.ID[:], id)
			tk, cached, err := g.Admit(op, body.Data, now, envelope.Scope{Partition: st.Partition})
			got := ""
			switch {
			case errors.Is(err, envelope.ErrStale):
				got = "stale"
			case errors.Is(err, envelope.ErrReplayed):
				got = "replayed"
			case errors.Is(err, envelope.ErrInProgress):
				got = "in_progress"
			case err != nil:
				t.Fatalf("step %d %q: %v", i, st.Name, err)
			case cached != nil:
				got = "stored_reply"
				require.Equal(t, st.ReplyStatus, cached.Status, "step %d %q", i, st.Name)
				require.Equal(t, st.ReplyBody, string(cached.Body), "step %d %q", i, st.Name)
			case tk.Remembered():
				got = "process"
				tickets[st.RequestID] = tk
			default:
				got = "process_unremembered"
			}
			require.Equal(t, st.Expect, got, "step %d %q", i, st.Name)
		case "done":
			tickets[st.RequestID].Done(st.ReplyStatus, []byte(st.ReplyBody))
		case "forget":
			tickets[st.RequestID].Forget()
		default:
			t.Fatalf("step %d: unknown op %q", i, st.Op)
		}
		if st.Entries != nil {
			require.Equal(t, *st.Entries, g.Len(), "step %d %q: entries", i, st.Name)
		}
	}
}

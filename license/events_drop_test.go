package license

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// A handler that blocks makes the queue overflow: the drops are logged with
// their running count at the 1st, 2nd, 4th … drop, and every event that was
// queued is still delivered, in order, before close returns.
func TestDispatcherLogsDrops(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	release, entered := make(chan struct{}), make(chan struct{}, 1)
	var got []EventType
	d := newDispatcher(func(e Event) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		got = append(got, e.Type)
	}, log)
	const extra = 10
	// The first event is taken by the goroutine, which blocks in the
	// handler; the next eventQueueSize fill the queue; the rest are dropped.
	d.emit(Event{Type: EventRenewed})
	<-entered
	for i := 0; i < eventQueueSize+extra; i++ {
		d.emit(Event{Type: EventRenewed})
	}
	close(release)
	d.close()
	assert.Equal(t, int64(extra), d.dropped.Load())
	assert.Equal(t, 1+eventQueueSize, len(got), "every queued event is delivered")
	lines := strings.Count(buf.String(), "event dropped")
	// Drops 1, 2, 4, 8 are logged (and 16 would be, but there are ≤ 11).
	assert.Equal(t, 4, lines, buf.String())
	assert.Contains(t, buf.String(), "dropped_so_far=8")
}

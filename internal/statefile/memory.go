package statefile

import (
	"fmt"
	"io/fs"
	"strconv"
	"sync"
)

// Memory is an in-memory [Slot] with the same Read, Write, Quarantine and
// Release behaviour as [File], for tests and for products that opt out of
// persistence. Its methods are safe for concurrent use. The zero value is an
// empty, usable store; after Release, Read, Write and Quarantine return an
// error matching fs.ErrClosed.
type Memory struct {
	mu          sync.Mutex
	data        []byte
	present     bool
	quarantined [][]byte
	seq         int
	released    bool
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{} }

// memoryName is the Path of Memory's errors.
const memoryName = "memory"

// Read returns a copy of the stored bytes, or an error matching
// [ErrNotExist] when nothing is stored.
func (m *Memory) Read() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.released {
		return nil, &Error{Op: "read", Path: memoryName, Err: fs.ErrClosed}
	}
	if !m.present {
		return nil, &Error{Op: "read", Path: memoryName, Err: ErrNotExist}
	}
	return append([]byte{}, m.data...), nil
}

// Write stores a copy of data. Data over [MaxSize] bytes is refused and the
// previous contents stay.
func (m *Memory) Write(data []byte) error {
	if len(data) > MaxSize {
		return &Error{Op: "write", Path: memoryName, Err: fmt.Errorf("state of %d bytes is over the %d-byte limit", len(data), MaxSize)}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.released {
		return &Error{Op: "write", Path: memoryName, Err: fs.ErrClosed}
	}
	m.data = append([]byte{}, data...)
	m.present = true
	return nil
}

// Quarantine moves the stored bytes aside, keeping the three newest such
// copies, and returns a name "memory.corrupt-<n>" for them. When nothing is
// stored it returns "" and nil. After Quarantine, Read reports
// [ErrNotExist].
func (m *Memory) Quarantine() (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.released {
		return "", &Error{Op: "quarantine", Path: memoryName, Err: fs.ErrClosed}
	}
	if !m.present {
		return "", nil
	}
	m.seq++
	m.quarantined = append(m.quarantined, m.data)
	if len(m.quarantined) > keepCorrupt {
		m.quarantined = append([][]byte{}, m.quarantined[len(m.quarantined)-keepCorrupt:]...)
	}
	m.data, m.present = nil, false
	return memoryName + ".corrupt-" + strconv.Itoa(m.seq), nil
}

// Quarantined returns copies of the quarantined contents still kept, oldest
// first. It works after Release too.
func (m *Memory) Quarantined() [][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([][]byte, len(m.quarantined))
	for i, q := range m.quarantined {
		out[i] = append([]byte{}, q...)
	}
	return out
}

// Release marks the store released. It is idempotent and always returns
// nil.
func (m *Memory) Release() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.released = true
	return nil
}

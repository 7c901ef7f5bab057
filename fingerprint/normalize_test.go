package fingerprint

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestIsPlaceholder(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"", "unknown", "Unknown", "None", "To be filled by O.E.M.", "Default string", "Not Specified",
		"System Serial Number", "0123456789", "0", "00000000", "FFFFFFFF", "........", "----",
		"00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
		"03000200-0400-0500-0006-000700080009", "uninitialized", "N/A",
	} {
		assert.True(t, isPlaceholder(s), "isPlaceholder(%q) = false; want true", s)
	}
	for _, s := range []string{"/7XYZ123/CN1296372A00AB/", "C02XK1ABJG5H", "4c4c4544-0058-5910-8033-b7c04f595a31", "01"} {
		assert.False(t, isPlaceholder(s), "isPlaceholder(%q) = true; want false", s)
	}
}

func TestNormalizeUUID(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"4C4C4544-0058-5910-8033-B7C04F595A31\n":   "4c4c4544-0058-5910-8033-b7c04f595a31",
		"{4C4C4544-0058-5910-8033-B7C04F595A31}":   "4c4c4544-0058-5910-8033-b7c04f595a31",
		"4c4c4544005859108033b7c04f595a31":         "4c4c4544-0058-5910-8033-b7c04f595a31",
		"4c4c4544-0058-5910-8033-b7c04f595a31\x00": "4c4c4544-0058-5910-8033-b7c04f595a31",
	} {
		got, ok := normalizeUUID(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, got)
	}
	for _, in := range []string{"", "not-a-uuid", "4c4c4544-0058-5910-8033-b7c04f595a3", "zc4c4544005859108033b7c04f595a31"} {
		_, ok := normalizeUUID(in)
		assert.False(t, ok, in)
	}
	// A non-UUID value in a UUID source is kept as text; an all-zero UUID is a placeholder.
	assert.Equal(t, "ABC-123", fromUUID(NameMachineID, "s", Strong, " ABC-123 ", nil).Value)
	assert.Equal(t, Placeholder, reasonOf(fromUUID(NameProductUUID, "s", Strong, "00000000000000000000000000000000", nil)))
}

func TestVolumeHashKnownAnswer(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte("licensekit fp1 volume\x00uuid:0fd2a6c3-5b1e-4c7a-9d2f-3e4b5a6c7d8e"))
	assert.Equal(t, hex.EncodeToString(sum[:]), volumeHash("uuid:0fd2a6c3-5b1e-4c7a-9d2f-3e4b5a6c7d8e"))
	plain := sha256.Sum256([]byte("uuid:0fd2a6c3-5b1e-4c7a-9d2f-3e4b5a6c7d8e"))
	assert.NotEqual(t, hex.EncodeToString(plain[:]), volumeHash("uuid:0fd2a6c3-5b1e-4c7a-9d2f-3e4b5a6c7d8e"), "labelled")
}

func TestReasonFor(t *testing.T) {
	t.Parallel()
	assert.Equal(t, NeedsPrivilege, reasonFor(&fs.PathError{Op: "open", Path: "x", Err: fs.ErrPermission}))
	assert.Equal(t, NotPresent, reasonFor(&fs.PathError{Op: "open", Path: "x", Err: fs.ErrNotExist}))
	assert.Equal(t, Unsupported, reasonFor(errors.ErrUnsupported))
	assert.Equal(t, NotPresent, reasonFor(errors.New("EIO")))
}

func TestMBSerial(t *testing.T) {
	t.Parallel()
	board := present(NameBoardSerial, "B1", "/b", Strong)
	prod := present(NameProductUUID, "u1", "/u", Strong)
	priv := func(n, src string) Component { return missing(n, src, Strong, NeedsPrivilege, fs.ErrPermission) }
	ph := func(n, src string) Component { return missing(n, src, Strong, Placeholder, errPlaceholder("x")) }
	np := func(n, src string) Component { return missing(n, src, Strong, NotPresent, fs.ErrNotExist) }

	tests := []struct {
		name        string
		board, prod Component
		value, src  string
		reason      Reason
	}{
		{"board wins", board, prod, "B1", "/b", 0},
		{"uuid fallback", ph(NameBoardSerial, "/b"), prod, "u1", "/u", 0},
		{"privilege beats placeholder", ph(NameBoardSerial, "/b"), priv(NameProductUUID, "/u"), "", "/u", NeedsPrivilege},
		{"placeholder beats not present", np(NameBoardSerial, "/b"), ph(NameProductUUID, "/u"), "", "/u", Placeholder},
		{"both absent", np(NameBoardSerial, "/b"), np(NameProductUUID, "/u"), "", "/b", NotPresent},
		{"zero components, no panic", Component{}, Component{}, "", "", NotPresent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mbSerial(tt.board, tt.prod)
			assert.Equal(t, NameMBSerial, c.Name)
			assert.Equal(t, tt.value, c.Value)
			assert.Equal(t, tt.src, c.Source)
			assert.Equal(t, tt.reason, reasonOf(c))
			assert.Equal(t, Strong, c.Strength)
			if c.Missing != nil {
				assert.Equal(t, NameMBSerial, c.Missing.Component)
			}
		})
	}
}

func TestHostComponent(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "build-7", hostComponent(" build-7\n", nil).Value)
	assert.Equal(t, Placeholder, reasonOf(hostComponent("localhost", nil)))
	assert.Equal(t, Placeholder, reasonOf(hostComponent("(none)", nil)))
	assert.Equal(t, NotPresent, reasonOf(hostComponent("", nil)))
	assert.Equal(t, NeedsPrivilege, reasonOf(hostComponent("", fs.ErrPermission)))
}

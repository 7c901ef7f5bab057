package fingerprint

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// smbiosStruct encodes one SMBIOS structure: formatted area (type, length, handle, fields) and strings.
func smbiosStruct(typ byte, fields []byte, strs ...string) []byte {
	b := []byte{typ, byte(4 + len(fields)), 0x00, 0x01}
	b = append(b, fields...)
	if len(strs) == 0 {
		return append(b, 0, 0)
	}
	for _, s := range strs {
		b = append(append(b, s...), 0)
	}
	return append(b, 0)
}

var testUUID = []byte{0x44, 0x45, 0x4c, 0x4c, 0x58, 0x00, 0x10, 0x59, 0x80, 0x33, 0xb7, 0xc0, 0x4f, 0x59, 0x5a, 0x31}

// rawSMBIOS builds the RawSMBIOSData buffer GetSystemFirmwareTable('RSMB') returns.
func rawSMBIOS(major, minor byte, boardSerial string) []byte {
	var t []byte
	t = append(t, smbiosStruct(0, []byte{1, 2, 0, 0}, "Dell Inc.", "1.2.3")...)
	sys := append([]byte{1, 2, 0, 3}, testUUID...) // version: no string
	sys = append(sys, 6)                           // wake-up type
	t = append(t, smbiosStruct(1, sys, "Dell Inc.", "Precision 3630 Tower", "7XYZ123")...)
	t = append(t, smbiosStruct(2, []byte{1, 2, 0, 3}, "Dell Inc.", "0NNNCT", boardSerial)...)
	t = append(t, smbiosStruct(2, []byte{1, 0, 0, 0}, "Second board")...)
	t = append(t, smbiosStruct(127, nil)...)
	t = append(t, 0xde, 0xad) // trailing bytes after end-of-table are ignored
	h := []byte{0, major, minor, 0, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(h[4:], uint32(len(t)))
	return append(h, t...)
}

func TestParseRawSMBIOS(t *testing.T) {
	t.Parallel()
	info, err := parseRawSMBIOS(rawSMBIOS(3, 4, "/7XYZ123/CN1296372A00AB/"))
	require.NoError(t, err)
	assert.Equal(t, "Dell Inc.", info.biosVendor)
	assert.Equal(t, "Dell Inc.", info.sysVendor)
	assert.Equal(t, "Precision 3630 Tower", info.sysProduct)
	assert.Equal(t, "7XYZ123", info.sysSerial)
	assert.Equal(t, "4c4c4544-0058-5910-8033-b7c04f595a31", info.uuid, "SMBIOS >= 2.6: first fields little-endian")
	assert.Equal(t, "/7XYZ123/CN1296372A00AB/", info.boardSerial, "first baseboard structure")

	old, err := parseRawSMBIOS(rawSMBIOS(2, 4, "x"))
	require.NoError(t, err)
	assert.Equal(t, "44454c4c-5800-1059-8033-b7c04f595a31", old.uuid, "before 2.6: bytes as stored")

	res := smbiosResult(info, srcRSMB)
	require.Len(t, res.comps, 3)
	assert.Equal(t, "/7XYZ123/CN1296372A00AB/", res.comps[0].Value, "mb_serial")
	assert.Equal(t, "GetSystemFirmwareTable(RSMB) type 2", res.comps[0].Source)
	assert.Equal(t, "4c4c4544-0058-5910-8033-b7c04f595a31", res.comps[1].Value)
	assert.Equal(t, NameBoardSerial, res.comps[2].Name)
}

func TestSMBIOSPlaceholders(t *testing.T) {
	t.Parallel()
	info, err := parseRawSMBIOS(rawSMBIOS(3, 0, "Default string"))
	require.NoError(t, err)
	info.uuid = smbiosUUID(make([]byte, 16), 3, 0)
	res := smbiosResult(info, srcRSMB)
	assert.Equal(t, Placeholder, reasonOf(res.comps[2]), "board serial")
	assert.Equal(t, Placeholder, reasonOf(res.comps[1]), "all-zero uuid")
	assert.Equal(t, Placeholder, reasonOf(res.comps[0]), "mb_serial")

	res = smbiosResult(smbiosInfo{}, srcRSMB)
	assert.Equal(t, NotPresent, reasonOf(res.comps[1]))
	assert.Equal(t, NotPresent, reasonOf(res.comps[2]))
}

func TestParseRawSMBIOSMalformed(t *testing.T) {
	t.Parallel()
	good := rawSMBIOS(3, 4, "S")
	for name, b := range map[string][]byte{
		"short header":    good[:5],
		"length past end": append(append([]byte{}, good[:4]...), 0xff, 0xff, 0, 0),
		"structure too short": func() []byte {
			b := append([]byte{}, good...)
			b[9] = 2
			return b
		}(),
		"unterminated strings": func() []byte {
			h := []byte{0, 3, 4, 0, 6, 0, 0, 0}
			return append(h, 1, 4, 0, 0, 'a', 'b')
		}(),
	} {
		_, err := parseRawSMBIOS(b)
		assert.ErrorIs(t, err, errSMBIOS, name)
	}
}

func FuzzParseRawSMBIOS(f *testing.F) {
	f.Add(rawSMBIOS(3, 4, "serial"))
	f.Add(rawSMBIOS(2, 4, ""))
	f.Add([]byte{0, 3, 4, 0, 4, 0, 0, 0, 1, 4, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := parseRawSMBIOS(b)
		if err == nil {
			_ = smbiosResult(info, srcRSMB)
		}
	})
}

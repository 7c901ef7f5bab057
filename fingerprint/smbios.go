package fingerprint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// smbiosInfo holds the SMBIOS strings Collect uses: the system (type 1), baseboard (type 2) and BIOS
// (type 0) structures. Empty strings mean "absent".
type smbiosInfo struct {
	biosVendor                       string
	sysVendor, sysProduct, sysSerial string
	uuid                             string // lowercase 8-4-4-4-12, "" when absent
	boardVendor, boardSerial         string
	hasSystem, hasBoard              bool
}

const srcRSMB = "GetSystemFirmwareTable(RSMB)"

var errSMBIOS = errors.New("fingerprint: malformed smbios data")

// parseRawSMBIOS parses the buffer Windows GetSystemFirmwareTable('RSMB', 0) fills: the RawSMBIOSData
// header (Used20CallingMethod, SMBIOSMajorVersion, SMBIOSMinorVersion, DmiRevision, a little-endian
// uint32 Length) followed by Length bytes of structure table. It never panics on bad input.
func parseRawSMBIOS(b []byte) (smbiosInfo, error) {
	if len(b) < 8 {
		return smbiosInfo{}, fmt.Errorf("%w: %d-byte header", errSMBIOS, len(b))
	}
	n := binary.LittleEndian.Uint32(b[4:8])
	if uint64(n) > uint64(len(b)-8) {
		return smbiosInfo{}, fmt.Errorf("%w: table length %d exceeds %d bytes", errSMBIOS, n, len(b)-8)
	}
	return parseSMBIOSTable(b[8:8+int(n)], int(b[1]), int(b[2]))
}

// parseSMBIOSTable walks an SMBIOS structure table (DMTF DSP0134): each structure is a formatted area
// (type, length, handle, fields) followed by a string set ending in two NUL bytes. Only the first
// structure of each type is used. Parsing stops at the end-of-table structure (type 127) or at the
// end of the data; a structure that runs past the end is an error.
func parseSMBIOSTable(t []byte, major, minor int) (smbiosInfo, error) {
	var info smbiosInfo
	var seenBIOS bool
	for i := 0; i+4 <= len(t); {
		typ, l := t[i], int(t[i+1])
		if l < 4 || i+l > len(t) {
			return info, fmt.Errorf("%w: structure at %d has length %d", errSMBIOS, i, l)
		}
		area := t[i : i+l]
		end := bytes.Index(t[i+l:], []byte{0, 0})
		if end < 0 {
			return info, fmt.Errorf("%w: unterminated strings at %d", errSMBIOS, i)
		}
		strs := bytes.Split(t[i+l:i+l+end], []byte{0})
		if end == 0 {
			strs = nil
		}
		str := func(off int) string {
			if off >= len(area) {
				return ""
			}
			idx := int(area[off])
			if idx == 0 || idx > len(strs) {
				return ""
			}
			return cleanValue(string(strs[idx-1]))
		}
		switch typ {
		case 0:
			if !seenBIOS {
				seenBIOS = true
				info.biosVendor = str(0x04)
			}
		case 1:
			if !info.hasSystem {
				info.hasSystem = true
				info.sysVendor, info.sysProduct, info.sysSerial = str(0x04), str(0x05), str(0x07)
				if len(area) >= 0x18 {
					info.uuid = smbiosUUID(area[0x08:0x18], major, minor)
				}
			}
		case 2:
			if !info.hasBoard {
				info.hasBoard = true
				info.boardVendor, info.boardSerial = str(0x04), str(0x07)
			}
		case 127:
			return info, nil
		}
		i += l + end + 2
	}
	return info, nil
}

// smbiosUUID formats the 16 UUID bytes of a type 1 structure. Since SMBIOS 2.6 the first three fields
// are little-endian; earlier tables are read as stored (version-blind readers disagree, which is why
// QEMU and bhyve changed their tables).
func smbiosUUID(b []byte, major, minor int) string {
	u := make([]byte, 16)
	copy(u, b)
	if major > 2 || (major == 2 && minor >= 6) {
		u[0], u[1], u[2], u[3] = b[3], b[2], b[1], b[0]
		u[4], u[5] = b[5], b[4]
		u[6], u[7] = b[7], b[6]
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func smbiosResult(info smbiosInfo, src string) taskResult {
	var board, prod Component
	if info.hasBoard {
		board = fromString(NameBoardSerial, src+" type 2", Strong, info.boardSerial, nil)
	} else {
		board = missing(NameBoardSerial, src+" type 2", Strong, NotPresent, errors.New("no baseboard structure"))
	}
	switch {
	case !info.hasSystem:
		prod = missing(NameProductUUID, src+" type 1", Strong, NotPresent, errors.New("no system structure"))
	case info.uuid == "":
		prod = missing(NameProductUUID, src+" type 1", Strong, NotPresent, errors.New("system structure has no uuid"))
	default:
		prod = fromUUID(NameProductUUID, src+" type 1", Strong, info.uuid, nil)
	}
	return firmwareResult(board, prod, firmwareStrings(info.sysVendor, info.sysProduct, info.boardVendor, info.biosVendor))
}

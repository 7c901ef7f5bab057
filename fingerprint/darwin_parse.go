package fingerprint

// macOS helpers that need no macOS API, so their tests run everywhere.

import (
	"errors"
	"slices"
	"strings"

	psnet "github.com/shirou/gopsutil/v3/net"
)

func ioregResult(props map[string]string) taskResult {
	get := func(key, name string, from func(string, string, Strength, string, error) Component) Component {
		src := "ioreg " + key
		v, ok := props[key]
		if !ok {
			return missing(name, src, Strong, NotPresent, errors.New("no "+key+" property"))
		}
		return from(name, src, Strong, v, nil)
	}
	board := get("IOPlatformSerialNumber", NameBoardSerial, fromString)
	prod := get("IOPlatformUUID", NameProductUUID, fromUUID)
	return firmwareResult(board, prod, firmwareStrings(props["manufacturer"], props["model"]))
}

// darwinNICs turns gopsutil interfaces into filter input. Only en* links (Ethernet, Wi-Fi,
// Thunderbolt) can be physical on macOS; loopback and point-to-point links are virtual.
func darwinNICs(ifs []psnet.InterfaceStat) []nic {
	out := make([]nic, 0, len(ifs))
	for _, i := range ifs {
		virtual := !strings.HasPrefix(i.Name, "en") ||
			slices.Contains(i.Flags, "loopback") || slices.Contains(i.Flags, "pointtopoint")
		out = append(out, nic{name: i.Name, mac: i.HardwareAddr, assign: addrUnknown, virtual: virtual})
	}
	return out
}

package fingerprint

import "slices"

// MatchThreshold is the score at or above which a licence check would treat two fingerprints as the
// same machine, in the spirit of Keygen's MATCH_MOST. Match itself only scores; the caller decides.
const MatchThreshold = 0.6

// Weight returns the base weight of a component in Match: product_uuid, board_serial, machine_id and
// mb_serial 3, volume_hash 2, mac_addresses 2, cpu_id 1, host_name 0.5, ip_address 0, anything else
// 0. Match then lowers two of them: mb_serial to 0 when both sides have board_serial or
// product_uuid (it repeats one of them), and mac_addresses to 1 when either side is weak.
func Weight(name string) float64 {
	switch name {
	case NameProductUUID, NameBoardSerial, NameMachineID, NameMBSerial:
		return 3
	case NameVolumeHash, NameMACAddresses:
		return 2
	case NameCPUID:
		return 1
	case NameHostName:
		return 0.5
	}
	return 0
}

// Match compares two fingerprints as a weighted k-of-n vote. Only components present on both sides
// are compared; score is the weight of the equal ones divided by the weight of all compared ones
// (0 when nothing can be compared). mac_addresses count as equal when the two sets share at least
// one address. changed lists, in Components order, every compared component whose value differs,
// including weightless ones such as ip_address and MAC sets that merely grew. Fingerprints of
// different modes (one hashed, one raw) compare as entirely changed. Nil arguments score 0.
func Match(a, b *Fingerprint) (score float64, changed []string) {
	if a == nil || b == nil {
		return 0, nil
	}
	counted := func(f *Fingerprint) bool {
		return slices.ContainsFunc([]string{NameBoardSerial, NameProductUUID}, func(n string) bool {
			c, ok := f.Component(n)
			return ok && c.Present()
		})
	}
	mbCounted := counted(a) && counted(b)
	var total, same float64
	for _, ca := range a.Components() {
		cb, ok := b.Component(ca.Name)
		if !ok || !ca.Present() || !cb.Present() {
			continue
		}
		w := Weight(ca.Name)
		switch {
		case ca.Name == NameMBSerial && mbCounted:
			w = 0
		case ca.Name == NameMACAddresses && (ca.Weak || cb.Weak):
			w = 1
		}
		equal := a.Hashed == b.Hashed && ca.text() == cb.text()
		matched := equal
		if a.Hashed == b.Hashed && ca.Name == NameMACAddresses {
			matched = slices.ContainsFunc(ca.Values, func(v string) bool { return slices.Contains(cb.Values, v) })
		}
		total += w
		if matched {
			same += w
		}
		if !equal {
			changed = append(changed, ca.Name)
		}
	}
	if total == 0 {
		return 0, changed
	}
	return same / total, changed
}

package fingerprint

import (
	"cmp"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"

	psnet "github.com/shirou/gopsutil/v3/net"
)

// Default probe addresses for ip_address (see WithServerAddress): documentation addresses (RFC 5737,
// RFC 3849) that follow the default route.
const (
	probeV4 = "192.0.2.1:443"
	probeV6 = "[2001:db8::1]:443"
)

func ipTask(o *options) task {
	src := "udp connect " + cmp.Or(o.server, probeV4)
	return task{name: "ip", fills: []Component{{Name: NameIPAddress, Source: src, Strength: Weak}},
		run: func(ctx context.Context) taskResult {
			return one(localIP(ctx, o))
		}}
}

// localIP finds the local address the OS would use to reach the licence server (udpLocal). When that
// fails (no route), it falls back to firstUnicast of gopsutil's net.Interfaces.
func localIP(ctx context.Context, o *options) Component {
	if o.noNet {
		return missing(NameIPAddress, "network", Weak, Unsupported, errors.New("network disabled"))
	}
	targets := []string{probeV4, probeV6}
	if o.server != "" {
		targets = []string{o.server}
	}
	var firstErr error
	for _, t := range targets {
		ip, err := udpLocal(ctx, t)
		if err == nil {
			return present(NameIPAddress, ip, "udp connect "+t, Weak)
		}
		firstErr = cmp.Or(firstErr, err)
		if ctx.Err() != nil {
			return missing(NameIPAddress, "udp connect "+t, Weak, TimedOut, ctx.Err())
		}
	}
	const src = "gopsutil net.Interfaces"
	ifs, err := psnet.InterfacesWithContext(ctx)
	if err != nil {
		return missing(NameIPAddress, src, Weak, reasonFor(err), errors.Join(firstErr, err))
	}
	var addrs []string
	for _, i := range ifs {
		for _, a := range i.Addrs {
			addrs = append(addrs, a.Addr)
		}
	}
	if ip, ok := firstUnicast(addrs); ok {
		return present(NameIPAddress, ip, src, Weak)
	}
	return missing(NameIPAddress, src, Weak, NotPresent, errors.Join(firstErr, errors.New("no non-loopback unicast address")))
}

// udpLocal returns the source address the kernel picks for a UDP socket connected to hostport.
// Connecting a UDP socket sends no packet. A host name is resolved first.
func udpLocal(ctx context.Context, hostport string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", hostport)
	if err != nil {
		return "", err
	}
	defer c.Close()
	ua, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok || ua.IP == nil || ua.IP.IsUnspecified() {
		return "", errors.New("no local address")
	}
	a, _ := netip.AddrFromSlice(ua.IP)
	return a.Unmap().String(), nil
}

// firstUnicast picks from interface addresses ("192.168.1.5/24", "fe80::1/64") the first usable one:
// global IPv4, then global IPv6, then IPv4 link-local, then IPv6 link-local. Loopback, multicast and
// unspecified addresses are never picked.
func firstUnicast(addrs []string) (string, bool) {
	best, bestRank := "", 99
	for _, s := range addrs {
		a, err := netip.ParseAddr(strings.Split(s, "/")[0])
		if err != nil {
			continue
		}
		a = a.Unmap()
		if a.IsLoopback() || a.IsMulticast() || a.IsUnspecified() {
			continue
		}
		rank := 0
		if a.Is6() {
			rank = 1
		}
		if a.IsLinkLocalUnicast() {
			rank += 2
		}
		if rank < bestRank {
			best, bestRank = a.String(), rank
		}
	}
	return best, best != ""
}

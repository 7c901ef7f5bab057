package fingerprint_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/licensekit/licensekit-go/fingerprint"
)

// The examples read a Linux machine captured in testdata (WithRoot works on
// any OS), so their output is the same everywhere. In a product, call
// Collect without WithRoot.
const (
	bareMetal = "../testdata/fingerprint/baremetal/root"
	container = "../testdata/fingerprint/container/root"
)

// Collect returns every component with its value and where it came from.
func ExampleCollect() {
	fp, err := fingerprint.Collect(context.Background(), fingerprint.WithRoot(bareMetal))
	if err != nil {
		log.Fatal(err) // only when nothing usable was found
	}
	fmt.Println("cpu_id:   ", fp.CPUID.Value)
	fmt.Println("mb_serial:", fp.MBSerial.Value, "from", fp.MBSerial.Source)
	fmt.Println("host_name:", fp.HostName.Value)
	machineID, _ := fp.Component("machine_id")
	fmt.Println("machine_id:", machineID.Value, machineID.Strength)
	fmt.Println("strong components:", fp.StrongCount())
	// Output:
	// cpu_id:    GenuineIntel/000906ea/Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz
	// mb_serial: /7XYZ123/CN1296372A00AB/ from /sys/class/dmi/id/board_serial
	// host_name: workstation-01
	// machine_id: b08dfa6083e7567a1921a715000001fb strong
	// strong components: 3
}

// A missing component is never a silent "": it carries a typed reason. In a
// container most strong components are missing, which is why a licence client
// falls back to a persisted install id when StrongCount is below two.
// volume_hash is unsupported below a root on every OS: the tree's device and
// fsid would be those of the host holding it.
func ExampleCollect_missing() {
	fp, err := fingerprint.Collect(context.Background(), fingerprint.WithRoot(container))
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range fp.Components() {
		if c.Missing != nil {
			fmt.Printf("%-13s %v\n", c.Name, c.Missing.Reason)
		}
	}
	fmt.Println("container:", fp.Environment.Container, fp.Environment.ContainerHints)
	fmt.Println("strong components:", fp.StrongCount())
	// Output:
	// mb_serial     not present
	// mac_addresses not present
	// volume_hash   unsupported
	// product_uuid  not present
	// board_serial  not present
	// machine_id    not present
	// container: true [/.dockerenv cgroup:docker]
	// strong components: 0
}

// WithHashedIdentifiers sends a per-product HMAC of each value instead of the
// value: hex HMAC-SHA256(key, "fp1" 0x00 name 0x00 value). So raw serials never leave the machine and two products cannot
// correlate a user. The hashes stay stable, so matching still works.
func ExampleWithHashedIdentifiers() {
	fp, err := fingerprint.Collect(context.Background(),
		fingerprint.WithRoot(bareMetal),
		fingerprint.WithHashedIdentifiers([]byte("product key of app")))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("hashed:", fp.Hashed)
	fmt.Println("host_name:", fp.HostName.Value[:16]+"…")
	fmt.Println("mb_serial:", fp.MBSerial.Value[:16]+"…")
	// Output:
	// hashed: true
	// host_name: e092f59e5885dd01…
	// mb_serial: ded9d143fa11b675…
}

// Match compares two fingerprints component by component: a renamed host
// still matches, a different board does not.
func ExampleMatch() {
	ctx := context.Background()
	registered, err := fingerprint.Collect(ctx, fingerprint.WithRoot(bareMetal))
	if err != nil {
		log.Fatal(err)
	}

	renamed := *registered
	renamed.HostName.Value = "workstation-02"
	score, changed := fingerprint.Match(registered, &renamed)
	fmt.Printf("renamed host: %.2f %v same machine: %v\n", score, changed, score >= fingerprint.MatchThreshold)

	other, err := fingerprint.Collect(ctx, fingerprint.WithRoot("../testdata/fingerprint/vm/root"))
	if err != nil {
		log.Fatal(err)
	}
	score, _ = fingerprint.Match(registered, other)
	fmt.Printf("another machine: same machine: %v\n", score >= fingerprint.MatchThreshold)
	// Output:
	// renamed host: 0.95 [host_name] same machine: true
	// another machine: same machine: false
}

// Cached keeps one Collect result for a TTL; a warm read is an atomic load.
func ExampleNewCached() {
	cache := fingerprint.NewCached(10*time.Minute, fingerprint.WithRoot(bareMetal))
	ctx := context.Background()
	first, err := cache.Collect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	second, err := cache.Collect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same result:", first == second)
	cache.Reset()
	third, err := cache.Collect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("after Reset:", first == third, third.CPUID.Value == first.CPUID.Value)
	// Output:
	// same result: true
	// after Reset: false true
}

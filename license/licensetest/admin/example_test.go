package admin_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/licensekit/licensekit-go/license/licensetest"
	"github.com/licensekit/licensekit-go/license/licensetest/admin"
)

// A scenario is a script of timed steps that the server plays against its
// own clock; parse errors name their line.
func ExampleParseScenario() {
	sc, err := admin.ParseScenario("outage.txt", strings.NewReader(`
# Outage within grace.
at 0s    license product=app key=K-1 session=2m grace=10m seats=1
at 5m    down refuse for=30s
at 2h    revoke product=app key=K-1
`))
	if err != nil {
		panic(err)
	}
	for _, st := range sc.Steps {
		fmt.Printf("line %d at %-6s %s\n", st.Line, st.At, st.Text)
	}

	_, err = admin.ParseScenario("typo.txt", strings.NewReader("at 5m down on=yes\n"))
	fmt.Println(err)
	// Output:
	// line 3 at 0s     license product=app key=K-1 session=2m grace=10m seats=1
	// line 4 at 5m0s   down refuse for=30s
	// line 4 at 5m30s  up (end of down for=30s)
	// line 5 at 2h0m0s revoke product=app key=K-1
	// licensetest: scenario typo.txt line 1: down: on: unknown value "yes" (accepted: 1, 0, true, false)
}

// AdminHandler mounts the admin API and the console on any server. Every
// request carries the token; here, as a bearer header.
func ExampleNewHandler() {
	s := licensetest.NewServer(nil)
	defer s.Close()
	adm := admin.NewHandler(s, admin.Options{Token: "example-token"})
	defer adm.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: adm}
	licensetest.DefaultTimeouts().Apply(srv)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	req, _ := http.NewRequest(http.MethodPost, base+"/admin/down?mode=503&for=30s", nil)
	req.Header.Set("Authorization", "Bearer "+adm.Token())
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, strings.TrimSpace(string(body)))
	fmt.Println(strings.TrimPrefix(adm.ConsoleURL(base), base))
	// Output:
	// 200 {
	//   "ok": true
	// }
	// /admin/?token=example-token
}

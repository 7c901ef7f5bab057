package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// commands are the vendor's operations, run against a running server's
// admin API (-admin URL, token from VENDORSERVER_ADMIN_TOKEN or
// -admin-token).
var commands = map[string]string{
	"issue":     "issue a licence: -product, -key [-features] [-seats] [-session]",
	"set":       "change a licence: -product, -key and any of -features, -seats, -session",
	"revoke":    "revoke a licence: -product, -key (clients are refused at their next renewal)",
	"reinstate": "undo a revocation: -product, -key",
	"licences":  "list the licences",
	"sessions":  "list the live sessions",
	"instances": "list the registered instances",
	"free":      "free a seat: end every session of -instance",
	"token":     "print a new random admin token (no server needed)",
}

// runCommand runs one of commands.
func runCommand(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	if name == "token" {
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		fmt.Fprintln(stdout, hex.EncodeToString(b))
		return nil
	}
	fs := flag.NewFlagSet("vendorserver "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	adminURL := fs.String("admin", "http://127.0.0.1:8081", "the server's admin API (its -admin address)")
	token := fs.String("admin-token", "", "the admin token (better: env "+AdminTokenEnv+")")
	asJSON := fs.Bool("json", false, "print the server's JSON answer")
	var in licenceJSON
	var features, session string
	var seats int
	var instance string
	switch name {
	case "issue", "set", "revoke", "reinstate":
		fs.StringVar(&in.Product, "product", "", "product GUID")
		fs.StringVar(&in.Key, "key", "", "licence key")
	}
	switch name {
	case "issue", "set":
		fs.StringVar(&features, "features", "", "features, comma-separated")
		fs.IntVar(&seats, "seats", 0, "machines with a live session at once (0: no limit)")
		fs.StringVar(&session, "session", "", "longest session a client gets, such as 10m (issue default "+DefaultSession.String()+")")
	case "free":
		fs.StringVar(&instance, "instance", "", "instance guid (see: vendorserver instances)")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *token == "" {
		*token = os.Getenv(AdminTokenEnv)
	}
	if *token == "" {
		return fmt.Errorf("no admin token: set %s (or -admin-token) to the server's token", AdminTokenEnv)
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "features":
			in.Features = &features
		case "seats":
			in.Seats = &seats
		case "session":
			in.Session = session
		}
	})

	method, path, body := http.MethodGet, "/admin/"+name, any(nil)
	switch name {
	case "issue":
		method, path, body = http.MethodPost, "/admin/licences", in
	case "set", "revoke", "reinstate":
		method, path, body = http.MethodPost, "/admin/licences/"+name, in
	case "free":
		method, body = http.MethodPost, freeJSON{Instance: instance}
	}
	out, err := call(ctx, method, strings.TrimSuffix(*adminURL, "/")+path, *token, body)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := stdout.Write(out)
		return err
	}
	return printAnswer(stdout, name, in, out)
}

// call sends one admin request and returns the body of a 2xx answer.
func call(ctx context.Context, method, url, token string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API: %w (is the server running with -admin?)", err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		_ = json.Unmarshal(out, &e)
		if e.Error == "" {
			e.Error = http.StatusText(resp.StatusCode)
		}
		if resp.StatusCode == http.StatusUnauthorized {
			e.Error += "; check " + AdminTokenEnv
		}
		return nil, fmt.Errorf("admin API: %s (HTTP %d)", e.Error, resp.StatusCode)
	}
	return out, nil
}

// printAnswer prints an answer for people: a line for a change, a table
// for a listing.
func printAnswer(w io.Writer, name string, in licenceJSON, out []byte) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	switch name {
	case "issue":
		fmt.Fprintf(tw, "issued: product %s, key %s\n", in.Product, in.Key)
	case "set", "revoke", "reinstate":
		fmt.Fprintf(tw, "%s: product %s, key %s\n", map[string]string{"set": "changed", "revoke": "revoked",
			"reinstate": "reinstated"}[name], in.Product, in.Key)
	case "free":
		var f freeJSON
		if err := json.Unmarshal(out, &f); err != nil {
			return err
		}
		fmt.Fprintf(tw, "freed: instance %s, %d sessions ended\n", f.Instance, f.Ended)
	case "licences":
		return table(tw, out, "PRODUCT\tKEY\tFEATURES\tSEATS\tSESSION\tSTATE\tLIVE SESSIONS", func(l licenceJSON) string {
			state, seats, features := "active", "no limit", ""
			if l.Revoked {
				state = "revoked"
			}
			if l.Seats != nil && *l.Seats > 0 {
				seats = fmt.Sprint(*l.Seats)
			}
			if l.Features != nil {
				features = *l.Features
			}
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%d", l.Product, l.Key, features, seats, l.Session, state, l.LiveSessions)
		})
	case "sessions":
		return table(tw, out, "SESSION\tPRODUCT\tKEY\tINSTANCE\tBEGUN\tLAPSES", func(s Session) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", s.ID, s.ProductGUID, s.Key, s.Instance,
				s.Begun.Format(time.RFC3339), s.Lapses.Format(time.RFC3339))
		})
	case "instances":
		return table(tw, out, "INSTANCE\tPRODUCT\tKEY\tHOST\tREGISTERED", func(i Instance) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", i.GUID, i.ProductGUID, i.Key, i.Host, i.Registered.Format(time.RFC3339))
		})
	default:
		return errors.New("unknown command " + name)
	}
	return nil
}

// table prints out, a JSON list, as a table: header, then a row per item.
func table[T any](w io.Writer, out []byte, header string, row func(T) string) error {
	var items []T
	if err := json.Unmarshal(out, &items); err != nil {
		return err
	}
	fmt.Fprintln(w, header)
	for _, it := range items {
		fmt.Fprintln(w, row(it))
	}
	return nil
}

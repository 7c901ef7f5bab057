// Command fingerprint shows what the licensekit fingerprint package sees on this machine: every
// component with its value or the reason it is missing, where it came from and how strong it is,
// plus the container and hypervisor signal. It is the support tool for "my machine stopped
// matching".
//
// Usage:
//
//	go run ./examples/fingerprint                    # table
//	go run ./examples/fingerprint -json > saved.json # machine-readable
//	go run ./examples/fingerprint -diff saved.json   # what changed since, and the Match score
//	go run ./examples/fingerprint -hashed KEY        # per-product HMAC instead of raw values
//
// Flags:
//
//	-json          print the fingerprint (or, with -diff, the comparison) as JSON
//	-diff FILE     compare with a fingerprint saved with -json
//	-hashed KEY    use WithHashedIdentifiers with this product key
//	-server H:P    licence server address used to pick ip_address (no packet is sent)
//	-root DIR      read the Linux sources below DIR (a mounted image or a test fixture)
//	-timeout D     overall collection budget (default 2s)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"

	"github.com/licensekit/licensekit-go/fingerprint"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fingerprint:", err)
		os.Exit(1)
	}
}

// run is the whole program; flag errors and usage go to stderr, everything else to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("fingerprint", flag.ContinueOnError)
	fl.SetOutput(stderr)
	jsonOut := fl.Bool("json", false, "print JSON instead of a table")
	diffFile := fl.String("diff", "", "compare with a fingerprint saved with -json")
	key := fl.String("hashed", "", "hash identifiers with this product key")
	server := fl.String("server", "", "licence server host:port used to pick ip_address")
	root := fl.String("root", "", "read the Linux sources below this directory")
	timeout := fl.Duration("timeout", fingerprint.DefaultTimeout, "overall collection budget")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fl.Arg(0))
	}

	var saved *fingerprint.Fingerprint
	if *diffFile != "" {
		b, err := os.ReadFile(*diffFile)
		if err != nil {
			return err
		}
		saved = new(fingerprint.Fingerprint)
		if err := json.Unmarshal(b, saved); err != nil {
			return fmt.Errorf("%s: %w", *diffFile, err)
		}
		switch {
		case saved.Hashed && *key == "":
			return errors.New("the saved fingerprint is hashed: pass -hashed with the same product key")
		case !saved.Hashed && *key != "":
			return errors.New("the saved fingerprint holds raw values: drop -hashed")
		}
	}

	opts := []fingerprint.Option{fingerprint.WithTimeout(*timeout)}
	if *key != "" {
		opts = append(opts, fingerprint.WithHashedIdentifiers([]byte(*key)))
	}
	if *server != "" {
		opts = append(opts, fingerprint.WithServerAddress(*server))
	}
	if *root != "" {
		opts = append(opts, fingerprint.WithRoot(*root))
	}
	fp, err := fingerprint.Collect(ctx, opts...)
	if fp == nil {
		return err
	}

	switch {
	case saved != nil && *jsonOut:
		werr := writeJSON(stdout, compare(saved, fp))
		return errors.Join(err, werr)
	case saved != nil:
		return errors.Join(err, printDiff(stdout, saved, fp))
	case *jsonOut:
		return errors.Join(err, writeJSON(stdout, fp))
	}
	return errors.Join(err, printTable(stdout, fp))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// valueText is what the table shows for a component: its value(s), or the reason it is missing.
func valueText(c fingerprint.Component) string {
	switch {
	case c.Missing != nil:
		s := "(" + c.Missing.Reason.String()
		if c.Missing.Err != nil {
			s += ": " + c.Missing.Err.Error()
		}
		return s + ")"
	case len(c.Values) > 0:
		return strings.Join(c.Values, ", ")
	}
	return c.Value
}

func strengthText(c fingerprint.Component) string {
	if c.Weak {
		return c.Strength.String() + " (fallback tier)"
	}
	return c.Strength.String()
}

func printTable(w io.Writer, fp *fingerprint.Fingerprint) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tVALUE OR REASON\tSOURCE\tSTRENGTH")
	for _, c := range fp.Components() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, valueText(c), c.Source, strengthText(c))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "environment:", environmentText(fp.Environment))
	n := fp.StrongCount()
	note := ""
	if n < 2 {
		note = " (fewer than 2: a licence client relies on its persisted install id)"
	}
	fmt.Fprintf(w, "strong components: %d%s\n", n, note)
	if fp.Hashed {
		fmt.Fprintln(w, "values: per-product HMAC-SHA256 (pseudonymous, not anonymous)")
	}
	_, err := fmt.Fprintln(w, "digest:", fp.Digest())
	return err
}

func environmentText(e fingerprint.Environment) string {
	var parts []string
	if e.Container {
		parts = append(parts, "container ("+strings.Join(e.ContainerHints, ", ")+")")
	} else {
		parts = append(parts, "no container markers")
	}
	switch {
	case e.Hypervisor && e.HypervisorVendor != "":
		parts = append(parts, "hypervisor "+e.HypervisorVendor)
	case e.Hypervisor:
		parts = append(parts, "hypervisor (vendor unknown)")
	default:
		parts = append(parts, "no hypervisor detected")
	}
	return strings.Join(parts, "; ")
}

// componentDiff is one row of a comparison.
type componentDiff struct {
	Name   string  `json:"name"`
	Status string  `json:"status"` // same, changed, now missing, new, missing
	Saved  string  `json:"saved,omitempty"`
	Now    string  `json:"now,omitempty"`
	Weight float64 `json:"weight"`
}

// comparison is the -diff result.
type comparison struct {
	Score      float64         `json:"score"`
	Threshold  float64         `json:"threshold"`
	Matches    bool            `json:"matches"`
	Changed    []string        `json:"changed"`
	Components []componentDiff `json:"components"`
}

func compare(saved, now *fingerprint.Fingerprint) comparison {
	score, changed := fingerprint.Match(saved, now)
	cmp := comparison{Score: score, Threshold: fingerprint.MatchThreshold, Matches: score >= fingerprint.MatchThreshold,
		Changed: changed}
	if cmp.Changed == nil {
		cmp.Changed = []string{}
	}
	names := []string{}
	seen := map[string]bool{}
	for _, f := range []*fingerprint.Fingerprint{now, saved} {
		for _, c := range f.Components() {
			if !seen[c.Name] {
				seen[c.Name] = true
				names = append(names, c.Name)
			}
		}
	}
	for _, n := range names {
		s, _ := saved.Component(n)
		c, _ := now.Component(n)
		d := componentDiff{Name: n, Saved: valueText(s), Now: valueText(c), Weight: fingerprint.Weight(n)}
		switch {
		case s.Present() && c.Present() && valueText(s) == valueText(c):
			d.Status = "same"
		case s.Present() && c.Present():
			d.Status = "changed"
		case s.Present():
			d.Status = "now missing"
		case c.Present():
			d.Status = "new"
		default:
			d.Status = "missing"
		}
		if d.Status == "same" {
			d.Now = ""
		}
		cmp.Components = append(cmp.Components, d)
	}
	return cmp
}

func shorten(s string) string {
	const max = 40
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

func printDiff(w io.Writer, saved, now *fingerprint.Fingerprint) error {
	cmp := compare(saved, now)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tSTATUS\tSAVED\tNOW\tWEIGHT")
	for _, d := range cmp.Components {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%g\n", d.Name, d.Status, shorten(d.Saved), shorten(d.Now), d.Weight)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	verdict := "below the threshold: the machine looks different"
	if cmp.Matches {
		verdict = "at or above the threshold: the same machine"
	}
	fmt.Fprintf(w, "\nmatch score: %.2f (threshold %.2f), %s\n", cmp.Score, cmp.Threshold, verdict)
	changed := "nothing"
	if len(cmp.Changed) > 0 {
		changed = strings.Join(cmp.Changed, ", ")
	}
	_, err := fmt.Fprintln(w, "changed:", changed)
	return err
}

package doctor

import (
	"bufio"
	"fmt"
	"io"
	"time"

	"github.com/licensekit/licensekit-go/transport"
)

// WriteText writes the report for people: a header, one line per check
// with a verdict column, and for every check that warns or fails its
// suggested fix. With evidence it also lists each check's evidence below its line.
func (r *Report) WriteText(w io.Writer, evidence bool) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "licensekit doctor %s: server %s, %s\n\n", transport.Version, r.Server, r.Time.UTC().Format(time.RFC3339))
	fmt.Fprintf(bw, "%-12s %-8s %s\n", "CHECK", "VERDICT", "FINDING")
	for _, c := range r.Checks {
		fmt.Fprintf(bw, "%-12s %-8s %s\n", c.ID, c.Verdict, c.Finding)
		if evidence {
			for _, f := range c.Evidence {
				fmt.Fprintf(bw, "%-21s   %s: %s\n", "", f.Name, f.Value)
			}
		}
		if c.Fix != "" && (c.Verdict == Warn || c.Verdict == Fail) {
			fmt.Fprintf(bw, "%-21s → %s\n", "", c.Fix)
		}
	}
	fmt.Fprintf(bw, "\n%d ok, %d warn, %d fail, %d skipped", r.Count(OK), r.Count(Warn), r.Count(Fail), r.Count(Skipped))
	if c, ok := r.Check(CheckLicense); ok && c.Verdict == Skipped && !r.Full {
		// A run that did not ask the server about the licence never reads
		// as if the licence were fine.
		bw.WriteString("; the licence was not checked")
	}
	bw.WriteString("\n")
	return bw.Flush()
}

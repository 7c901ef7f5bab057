// Command keygen makes the key pair of a licence server's public-key mode: it
// writes the private key to a file only its owner can read (mode 0600) and
// prints the public key, which the vendor builds into the product as
// license.Config.ServerPublicKey.
//
//	go run ./examples/keygen                                   # X25519, to the default path
//	go run ./examples/keygen -out "$DIR/server.key" -kem mlkem768x25519   # hybrid post-quantum
//	go run ./examples/keygen -show "$DIR/server.key"           # print the public key again
//
// Without -out it writes to server.key in the vendor directory of the user's
// configuration directory (on Linux ~/.config/licensekit-vendor/server.key,
// where examples/vendorserver looks by default), never into the current
// directory: a private key does not belong in a source tree.
//
// The public key is printed twice, as a "LICENSEKIT HPKE PUBLIC KEY" PEM block
// and as one line of base64; license.Config accepts either. The key id printed
// with it is the one every request sealed to this key carries, so a server that
// holds several keys during a rotation (envelope.MultiOpener) picks the right
// one; it is not a secret.
//
// The private key is the one secret of public-key mode: whoever holds it can
// read every request and answer for the licence server. keygen never prints
// it and never overwrites an existing file unless -force is given. The file is
// written atomically (temporary file, fsync, rename). Store it the way the
// server stores its other secrets (a secret manager, or a file readable by the
// server's user only), and keep a backup: a lost private key means shipping a
// new public key in every product. docs/server.md has the whole story.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/licensekit/licensekit-go/envelope"
	"github.com/licensekit/licensekit-go/examples/internal/vendorfiles"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "keygen:", err)
		}
		os.Exit(2)
	}
}

// kems maps the -kem names onto the KEMs envelope supports.
var kems = map[string]envelope.KEM{
	"x25519":         envelope.KEMX25519,
	"mlkem768x25519": envelope.KEMMLKEM768X25519,
}

// run is the command, with its arguments and output streams.
func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defaultOut, _ := vendorfiles.Path("server.key")
	out := fs.String("out", defaultOut, "write a new private key to this file (mode 0600; its directory is created with mode 0700)")
	kemName := fs.String("kem", "x25519", "KEM of the new key: x25519 or mlkem768x25519")
	force := fs.Bool("force", false, "with -out, replace an existing file")
	show := fs.String("show", "", "read this private key file and print its public key; writes nothing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case *show != "" && setOut(fs):
		return errors.New("give -out or -show, not both")
	case *show != "":
		text, err := os.ReadFile(*show)
		if err != nil {
			return err
		}
		priv, err := envelope.ParsePrivateKey(text)
		if err != nil {
			return fmt.Errorf("%s: %w", *show, err)
		}
		printPublic(stdout, priv.Public())
		return nil
	case *out == "":
		fs.Usage()
		return errors.New("-out is required: where to write the private key (there is no default location here)")
	}
	kem, ok := kems[strings.ToLower(*kemName)]
	if !ok {
		return fmt.Errorf("-kem %q: want x25519 or mlkem768x25519", *kemName)
	}
	priv, err := envelope.GenerateKey(kem)
	if err != nil {
		return err
	}
	if err := writeSecretFile(*out, priv.EncodePEM(), *force); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Wrote the private key to %s (mode 0600). Keep it secret and backed up; never ship it.\n\n", *out)
	printPublic(stdout, priv.Public())
	return nil
}

// setOut reports whether -out was given.
func setOut(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "out" })
	return set
}

// printPublic prints what a vendor builds into the product.
func printPublic(w io.Writer, pub *envelope.PublicKey) {
	fmt.Fprintf(w, "KEM:    %s\n", pub.KEM())
	fmt.Fprintf(w, "Key id: %s\n\n", pub.KeyID())
	fmt.Fprintf(w, "Public key, PEM (license.Config.ServerPublicKey accepts it as is):\n%s\n", pub.EncodePEM())
	fmt.Fprintf(w, "Public key, base64 (the same key on one line):\n%s\n", pub.EncodeBase64())
}

// writeSecretFile writes data to path with mode 0600, atomically: a temporary
// file in the same directory, fsync, then a rename (with force) or a hard
// link (without, which fails if path exists, so nothing is overwritten).
func writeSecretFile(path string, data []byte, force bool) (err error) {
	if !force {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%s exists; keygen does not overwrite a key without -force", path)
		}
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".keygen-*") // mode 0600
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o600); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if force {
		err = os.Rename(tmp.Name(), path)
	} else {
		err = os.Link(tmp.Name(), path)
		if err == nil {
			os.Remove(tmp.Name())
		}
	}
	if err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// syncDir makes the new directory entry durable where the OS allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

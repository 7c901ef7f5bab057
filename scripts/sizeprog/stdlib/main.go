// Command stdlib does the same kind of work as ../sdk with the standard
// library only: an HPKE seal, a JSON body, an HTTPS-capable POST and slog.
// scripts/size builds both to measure what embedding the SDK adds to a
// product's binary. It is built, never run, by scripts/size.
package main

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/hpke"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	raw, err := base64.StdEncoding.DecodeString(os.Getenv("LICENSEKIT_PUBLIC_KEY"))
	if err != nil {
		logger.Error("key", "error", err)
		os.Exit(2)
	}
	pk, err := hpke.DHKEM(ecdh.X25519()).NewPublicKey(raw)
	if err != nil {
		logger.Error("key", "error", err)
		os.Exit(2)
	}
	plain, _ := json.Marshal(map[string]string{"product_guid": os.Getenv("LICENSEKIT_PRODUCT"),
		"license_key": os.Getenv("LICENSEKIT_LICENSE")})
	ct, err := hpke.Seal(pk, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte("info"), plain)
	if err != nil {
		logger.Error("seal", "error", err)
		os.Exit(1)
	}
	body, _ := json.Marshal(map[string]string{"key": os.Getenv("LICENSEKIT_API_KEY"),
		"data": base64.StdEncoding.EncodeToString(ct)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, os.Getenv("LICENSEKIT_SERVER")+"/begin_session",
		bytes.NewReader(body))
	if err != nil {
		logger.Error("request", "error", err)
		os.Exit(2)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		logger.Error("post", "error", err)
		os.Exit(1)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var r struct {
		Status int `json:"status"`
	}
	_ = json.Unmarshal(reply, &r)
	fmt.Println(resp.Status, r.Status)
}

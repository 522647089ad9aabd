package trustedroot

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

func TestPublicGoodIsPinned(t *testing.T) {
	sum := sha256.Sum256(PublicGoodJSON())
	if got := hex.EncodeToString(sum[:]); got != PublicGoodSHA256 {
		t.Fatalf("sha256 of public-good.json = %s, want %s (refresh the constant and docs/policy-keyless.md together)", got, PublicGoodSHA256)
	}
}

func TestPublicGoodParses(t *testing.T) {
	tr, err := PublicGood()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(tr.FulcioCertificateAuthorities()); got == 0 {
		t.Errorf("certificate authorities: got %d, want at least 1", got)
	}
	if got := len(tr.RekorLogs()); got == 0 {
		t.Errorf("rekor logs: got %d, want at least 1", got)
	}
	if got := len(tr.CTLogs()); got == 0 {
		t.Errorf("CT logs: got %d, want at least 1 (SCTs are then required)", got)
	}
}

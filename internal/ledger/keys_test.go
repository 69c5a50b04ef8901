package ledger_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ecogrid/internal/ledger"
)

func TestLoadKeys(t *testing.T) {
	skey, vkey, err := ledger.NewKeyPair("")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(vkey, ledger.DefaultKeyName+"+") {
		t.Fatalf("public key %q does not carry the default name", vkey)
	}
	_, retired, _ := ledger.NewKeyPair("old-key")
	file := filepath.Join(t.TempDir(), "ledger.key")
	if err := os.WriteFile(file, []byte("# comment\n# Public key: "+vkey+"\n"+skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(ledger.EnvKey, "")
	t.Setenv(ledger.EnvKeyFile, file)
	t.Setenv(ledger.EnvTrustedKeys, retired+", "+vkey)
	keys, err := ledger.LoadKeys(ledger.KeyConfigFromEnv())
	if err != nil {
		t.Fatal(err)
	}
	if keys.Signer() == nil || keys.PublicKey() != vkey {
		t.Fatalf("signer %v public %q", keys.Signer(), keys.PublicKey())
	}
	if got := keys.PublicKeys(); len(got) != 2 || got[0] != vkey || got[1] != retired {
		t.Fatalf("trusted keys %v", got)
	}
	// The environment variable wins over the file.
	other, otherPub, _ := ledger.NewKeyPair("other")
	t.Setenv(ledger.EnvKey, other)
	keys, err = ledger.LoadKeys(ledger.KeyConfigFromEnv())
	if err != nil || keys.PublicKey() != otherPub {
		t.Fatalf("env key: %v %q", err, keys.PublicKey())
	}
	// Bad keys fail without echoing them.
	for _, cfg := range []ledger.KeyConfig{
		{PrivateKey: "PRIVATE+KEY+x+00000000+AAAA"},
		{PrivateKey: "not a key at all"},
		{PrivateKeyFile: filepath.Join(t.TempDir(), "missing")},
		{TrustedKeys: []string{"garbage"}},
	} {
		_, err := ledger.LoadKeys(cfg)
		if err == nil {
			t.Errorf("%+v: loaded", cfg)
			continue
		}
		if strings.Contains(err.Error(), "AAAA") || strings.Contains(err.Error(), "not a key at all") {
			t.Errorf("error echoes the private key: %v", err)
		}
	}
	// No key at all: verification only.
	keys, err = ledger.LoadKeys(ledger.KeyConfig{})
	if err != nil || keys.Signer() != nil || keys.PublicKey() != "" {
		t.Fatalf("empty config: %v", err)
	}
}

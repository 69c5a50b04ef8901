package devstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5/pgxpool"

	"ecogrid/internal/accounts"
	"ecogrid/internal/accounts/password"
	"ecogrid/internal/auth"
	"ecogrid/internal/grid"
	"ecogrid/internal/grid/demo"
	"ecogrid/internal/ledger"
	"ecogrid/internal/messaging"
	"ecogrid/internal/people"
)

// DevAdminUser is the administrator the dev stack creates.
const DevAdminUser = "admin"

// Keys are the signing keys of a dev stack, kept in its data folder.
type Keys struct {
	AuthKeyFile   string // access-token signing key (PKCS#8 PEM)
	LedgerKeyFile string // checkpoint signing key (note format)
	LedgerPublic  string // the checkpoint verifier key, for gridctl audit verify
}

// ensureKeys makes the dev stack's signing keys on first use. They live in
// the data folder, never in the database.
func ensureKeys(dir string) (Keys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Keys{}, err
	}
	k := Keys{AuthKeyFile: filepath.Join(dir, "auth-token.pem"), LedgerKeyFile: filepath.Join(dir, "ledger.key")}
	if _, err := os.Stat(k.AuthKeyFile); errors.Is(err, os.ErrNotExist) {
		pem, err := auth.GenerateKeyPEM()
		if err != nil {
			return Keys{}, err
		}
		if err := os.WriteFile(k.AuthKeyFile, pem, 0o600); err != nil {
			return Keys{}, err
		}
	}
	pubFile := filepath.Join(dir, "ledger.pub")
	if _, err := os.Stat(k.LedgerKeyFile); errors.Is(err, os.ErrNotExist) {
		priv, pub, err := ledger.NewKeyPair("ecogrid-dev")
		if err != nil {
			return Keys{}, err
		}
		if err := os.WriteFile(k.LedgerKeyFile, []byte(priv+"\n"), 0o600); err != nil {
			return Keys{}, err
		}
		if err := os.WriteFile(pubFile, []byte(pub+"\n"), 0o644); err != nil {
			return Keys{}, err
		}
	}
	pub, err := os.ReadFile(pubFile)
	if err != nil {
		return Keys{}, err
	}
	k.LedgerPublic = string(bytes.TrimSpace(pub))
	return k, nil
}

// ensureNATSUsers returns a user per NATS role for the embedded server,
// each password random and kept in dir/nats-<role>.password (0600) so a
// restart of the dev stack, and an integrator's test client, reuse it. The
// integrator is the demo county's (integrator_<county>).
func ensureNATSUsers(dir string) (map[messaging.Role]messaging.Credentials, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	users := map[messaging.Role]messaging.Credentials{}
	for _, r := range append(messaging.Roles(), messaging.Integrator(demoCountyCode())) {
		f := filepath.Join(dir, "nats-"+string(r)+".password")
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			b = []byte(rand.Text())
			err = os.WriteFile(f, append(b, '\n'), 0o600)
		}
		if err != nil {
			return nil, err
		}
		pw := string(bytes.TrimSpace(b))
		if pw == "" {
			return nil, fmt.Errorf("%s is empty: delete it to have a new password made", f)
		}
		users[r] = messaging.Credentials{User: string(r), Password: pw}
	}
	return users, nil
}

// demoCountyCode is the code of the demo county (its shortest node code).
func demoCountyCode() string {
	nodes := demo.CountyNodes()
	county := nodes[0].Code
	for _, n := range nodes {
		if len(n.Code) < len(county) {
			county = n.Code
		}
	}
	return county
}

// loadDemo imports the demo county into an empty grid and creates the dev
// administrator, once. It returns the county code.
func loadDemo(ctx context.Context, pool *pgxpool.Pool, adminPassword string, out io.Writer) (string, error) {
	county := demoCountyCode()
	gridStore := grid.NewStore(pool, grid.Config{})
	count, err := gridStore.CountNodes(ctx)
	if err != nil {
		return "", err
	}
	if count == 0 {
		features, problems := grid.ParseFeatureCollection(bytes.NewReader(demo.County()), grid.ParseLimits{})
		res, err := gridStore.Import(ctx, features, problems, grid.ImportOptions{})
		if err != nil {
			return "", err
		}
		fmt.Fprintf(out, "demo county %s loaded: %d grid nodes\n", county, res.Created)
	} else {
		fmt.Fprintf(out, "grid already holds %d nodes; demo county not reloaded\n", count)
	}

	if _, err := accounts.ByUsername(ctx, pool, DevAdminUser); err == nil {
		fmt.Fprintf(out, "dev administrator %q exists\n", DevAdminUser)
		return county, nil
	}
	if err := password.CheckPolicy(adminPassword); err != nil {
		return "", fmt.Errorf("dev admin password: %w", err)
	}
	hash, err := password.NewHasher(password.Default, 1).Hash(adminPassword)
	if err != nil {
		return "", err
	}
	if _, err := people.BootstrapAdmin(ctx, pool, county, "Dev Administrator", "", DevAdminUser, hash); err != nil {
		return "", err
	}
	fmt.Fprintf(out, "dev administrator %q created\n", DevAdminUser)
	return county, nil
}

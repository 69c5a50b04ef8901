package ledger_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/ledger"
)

// testKeys makes a signing key pair for a test.
func testKeys(t testing.TB) (*ledger.Keys, string) {
	t.Helper()
	skey, vkey, err := ledger.NewKeyPair("test-ledger")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ledger.LoadKeys(ledger.KeyConfig{PrivateKey: skey})
	if err != nil {
		t.Fatal(err)
	}
	if keys.PublicKey() != vkey {
		t.Fatalf("derived public key %q, want %q", keys.PublicKey(), vkey)
	}
	return keys, vkey
}

type fixture struct {
	pool    *pgxpool.Pool
	ledger  *ledger.Ledger
	keys    *ledger.Keys
	pub     string
	witness string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{pool: dbtest.NewPool(t), witness: t.TempDir()}
	f.keys, f.pub = testKeys(t)
	f.ledger = ledger.New(f.pool, f.keys, ledger.Config{WitnessDir: f.witness}, nil)
	return f
}

func (f *fixture) append(t *testing.T, n int) {
	t.Helper()
	for range n {
		var i int64
		_ = f.pool.QueryRow(context.Background(), `SELECT COALESCE(max(seq)+1, 0) FROM ledger.records`).Scan(&i)
		e := entry(int(i))
		if i%3 == 0 {
			e.Responsible = []ledger.Responsible{
				{PersonID: e.ActorID, Name: "张三", Role: "inspector", NodeCode: e.NodeCode},
				{PersonID: "7f6c0a0e-5a7e-4d51-9c1e-0b8f5d3a9c11", Name: "李四", Role: "grid_chief", NodeCode: "330106001"},
			}
		}
		appendOne(t, f.pool, e)
	}
}

func (f *fixture) checkpoint(t *testing.T) ledger.Checkpoint {
	t.Helper()
	cp, err := f.ledger.Checkpoint(context.Background(), county)
	if err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	return cp
}

// build makes a chain of 40 records with checkpoints at 16, 32 and 40.
func (f *fixture) build(t *testing.T) {
	t.Helper()
	f.append(t, 16)
	f.checkpoint(t)
	f.append(t, 16)
	f.checkpoint(t)
	f.append(t, 8)
	f.checkpoint(t)
}

func (f *fixture) verify(t *testing.T, known ...string) ledger.Result {
	t.Helper()
	res, err := f.ledger.VerifyChain(context.Background(), county, known)
	if err != nil {
		t.Fatalf("verify chain: %v", err)
	}
	return res
}

func (f *fixture) export(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := f.ledger.Export(context.Background(), county, &buf); err != nil {
		t.Fatalf("export: %v", err)
	}
	return buf.Bytes()
}

func (f *fixture) verifyExport(t *testing.T, data []byte, witnesses ...string) ledger.Result {
	t.Helper()
	keys, err := ledger.ParsePublicKeys(f.pub)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ledger.VerifyExport(bytes.NewReader(data), keys, witnesses)
	if err != nil {
		t.Fatalf("verify export: %v", err)
	}
	return res
}

// asSuperuser runs sql with the ledger's triggers off, as an attacker with
// the database superuser would.
func (f *fixture) asSuperuser(t *testing.T, sql string, args ...any) {
	t.Helper()
	err := database.InTx(context.Background(), f.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(context.Background(), `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		_, err := tx.Exec(context.Background(), sql, args...)
		return err
	})
	if err != nil {
		t.Fatalf("tampering failed: %v", err)
	}
}

func wantDefect(t *testing.T, what string, res ledger.Result, seq int64, reason string) {
	t.Helper()
	if res.Defect == nil {
		t.Fatalf("%s: chain verified (%d records, %d checkpoints), want a defect at %d", what, res.Records, res.Checkpoints, seq)
	}
	if res.Defect.Seq != seq || !strings.Contains(res.Defect.Reason, reason) {
		t.Fatalf("%s: defect at %d (%s), want at %d containing %q", what, res.Defect.Seq, res.Defect.Reason, seq, reason)
	}
}

func TestCheckpointsVerifyAndExport(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.append(t, 5)
	cp1 := f.checkpoint(t)
	if cp1.Size != 5 || cp1.PrevSize != 0 {
		t.Fatalf("first checkpoint %+v", cp1)
	}
	// Nothing new: the same checkpoint comes back.
	if again := f.checkpoint(t); again.Size != 5 || again.Note != cp1.Note {
		t.Fatalf("checkpoint without growth made a new one: %+v", again)
	}
	f.append(t, 38)
	cp2 := f.checkpoint(t)
	if cp2.Size != 43 || cp2.PrevSize != 5 || len(cp2.Proof) == 0 {
		t.Fatalf("second checkpoint %+v", cp2)
	}
	if err := tlog.CheckTree(cp2.Proof, cp2.Size, cp2.Root, cp1.Size, cp1.Root); err != nil {
		t.Fatalf("consistency proof: %v", err)
	}
	// The signed note verifies with the published key and says what we think.
	keys, _ := ledger.ParsePublicKeys(f.pub)
	opened, err := ledger.OpenCheckpoint(cp2.Note, keys)
	if err != nil || opened.Size != 43 || opened.Root != cp2.Root || opened.CountyCode != county {
		t.Fatalf("open checkpoint: %+v %v", opened, err)
	}
	if !strings.HasPrefix(cp2.Note, ledger.CheckpointBody(county, 43, cp2.Root)) {
		t.Fatalf("note text %q", cp2.Note)
	}

	res := f.verify(t)
	if !res.OK() || res.Records != 43 || res.Checkpoints < 2 || res.LastCheckpoint.Size != 43 {
		t.Fatalf("verify: %+v %v", res, res.Defect)
	}
	data := f.export(t)
	res = f.verifyExport(t, data, cp2.Note)
	if !res.OK() || res.Records != 43 || res.Checkpoints != 2 {
		t.Fatalf("offline verify: %+v %v", res, res.Defect)
	}
	// A different key does not vouch for these checkpoints.
	_, otherPub, _ := ledger.NewKeyPair("test-ledger")
	other, _ := ledger.ParsePublicKeys(otherPub)
	res, err = ledger.VerifyExport(bytes.NewReader(data), other, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantDefect(t, "wrong public key", res, 0, "not signed by a trusted ledger key")
}

func TestCheckpointAllAndInterval(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.append(t, 3)
	appendOne(t, f.pool, func() ledger.Entry { e := entry(0); e.CountyCode = "330110"; return e }())
	cps, err := f.ledger.CheckpointAll(context.Background())
	if err != nil || len(cps) != 2 {
		t.Fatalf("checkpoint all: %d %v", len(cps), err)
	}
	cps, err = f.ledger.CheckpointAll(context.Background())
	if err != nil || len(cps) != 0 {
		t.Fatalf("second checkpoint all signed %d chains (err %v), want none", len(cps), err)
	}
	// The interval checkpointer signs a chain that grew.
	l := ledger.New(f.pool, f.keys, ledger.Config{CheckpointInterval: 20 * 1e6, WitnessDir: f.witness}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.RunCheckpointer(ctx) }()
	f.append(t, 2)
	for {
		var size int64
		if err := f.pool.QueryRow(context.Background(), `SELECT COALESCE(max(size), 0) FROM ledger.checkpoints WHERE county_code = $1`, county).Scan(&size); err != nil {
			t.Fatal(err)
		}
		if size == 5 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("checkpointer stopped: %v", err)
		default:
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCheckpointNeedsKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.append(t, 1)
	_, pub := testKeys(t)
	keys, err := ledger.LoadKeys(ledger.KeyConfig{TrustedKeys: []string{pub}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.New(f.pool, keys, ledger.Config{}, nil).Checkpoint(context.Background(), county); err == nil {
		t.Fatal("checkpoint signed without a private key")
	}
}

func TestDatabaseRefusesChanges(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.build(t)
	ctx := context.Background()
	for _, sql := range []string{
		`UPDATE ledger.records SET subject_id = 'x' WHERE seq = 3`,
		`DELETE FROM ledger.records WHERE seq = 39`,
		`TRUNCATE ledger.records CASCADE`,
		`UPDATE ledger.checkpoints SET size = 1`,
		`DELETE FROM ledger.checkpoints`,
		`TRUNCATE ledger.checkpoints`,
		`UPDATE ledger.tree_hashes SET hash = hash`,
		`DELETE FROM ledger.tree_hashes`,
		`TRUNCATE ledger.tree_hashes`,
		`DELETE FROM ledger.record_people`,
		`TRUNCATE ledger.record_people`,
		`UPDATE ledger.chains SET size = 10`,
		`UPDATE ledger.chains SET size = size + 1`, // no record 40 yet
		`DELETE FROM ledger.chains`,
		`TRUNCATE ledger.chains CASCADE`,
	} {
		_, err := f.pool.Exec(ctx, sql)
		if err == nil || !strings.Contains(err.Error(), "append-only") && !strings.Contains(err.Error(), "only advances") {
			t.Errorf("%s: err %v, want refused by the ledger's triggers", sql, err)
		}
	}
	// The service role may add and read, not change.
	asApp := func(sql string) error {
		return database.InTx(ctx, f.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL ROLE ecogrid_app`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, sql)
			return err
		})
	}
	for _, sql := range []string{
		`UPDATE ledger.records SET subject_id = 'x' WHERE seq = 3`,
		`DELETE FROM ledger.records WHERE seq = 39`,
		`TRUNCATE ledger.records`,
		`UPDATE ledger.checkpoints SET size = 1`,
		`DELETE FROM ledger.tree_hashes`,
	} {
		err := asApp(sql)
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("as ecogrid_app: %s: err %v, want permission denied", sql, err)
		}
	}
	if err := asApp(`SELECT count(*) FROM ledger.records`); err != nil {
		t.Errorf("ecogrid_app cannot read the ledger: %v", err)
	}
	err := database.InTx(ctx, f.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE ecogrid_app`); err != nil {
			return err
		}
		_, err := ledger.Append(ctx, tx, entry(99))
		return err
	})
	if err != nil {
		t.Errorf("ecogrid_app cannot append: %v", err)
	}
	if res := f.verify(t); !res.OK() {
		t.Fatalf("chain broken after refused changes: %v", res.Defect)
	}
}

// recomputeFrom rewrites the chain from seq on the way a careful attacker
// would: leaf hashes, links, stored tree hashes and the head all made
// consistent again. Only the signed checkpoints can tell.
func (f *fixture) recomputeFrom(t *testing.T, from int64) {
	t.Helper()
	ctx := context.Background()
	var recs []ledger.Record
	rows, err := f.pool.Query(ctx, `SELECT seq, recorded_at, COALESCE(actor_id::text,''), actor_role, actor_node_code, action, subject_type, subject_id, node_code, responsible, payload
		FROM ledger.records WHERE county_code = $1 ORDER BY seq`, county)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		r := ledger.Record{CountyCode: county}
		if err := rows.Scan(&r.Seq, &r.RecordedAt, &r.ActorID, &r.ActorRole, &r.ActorNodeCode, &r.Action, &r.SubjectType, &r.SubjectID, &r.NodeCode, &r.Responsible, &r.Payload); err != nil {
			t.Fatal(err)
		}
		r.RecordedAt = r.RecordedAt.UTC()
		recs = append(recs, r)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	stored := map[int64]tlog.Hash{}
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	var prev tlog.Hash
	for i := range recs {
		recs[i].PrevHash = prev
		recs[i].LeafHash = recs[i].ComputeLeafHash()
		prev = recs[i].LeafHash
		hs, err := tlog.StoredHashesForRecordHash(int64(i), recs[i].LeafHash, reader)
		if err != nil {
			t.Fatal(err)
		}
		for j, h := range hs {
			stored[tlog.StoredHashIndex(0, int64(i))+int64(j)] = h
		}
		if int64(i) >= from {
			f.asSuperuser(t, `UPDATE ledger.records SET prev_hash = $3, leaf_hash = $4 WHERE county_code = $1 AND seq = $2`,
				county, int64(i), recs[i].PrevHash[:], recs[i].LeafHash[:])
		}
	}
	for idx, h := range stored {
		f.asSuperuser(t, `UPDATE ledger.tree_hashes SET hash = $3 WHERE county_code = $1 AND idx = $2`, county, idx, h[:])
	}
	f.asSuperuser(t, `UPDATE ledger.chains SET head_hash = $2 WHERE county_code = $1`, county, prev[:])
}

func TestTamperingIsDetected(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		tamper  func(t *testing.T, f *fixture)
		seq     int64  // first bad seq from VerifyChain
		reason  string // part of the reason
		offline int64  // first bad seq from the offline verifier of an export made afterwards (-1: same as seq)
	}{
		{
			name: "changed field as superuser with replication role",
			tamper: func(t *testing.T, f *fixture) {
				f.asSuperuser(t, `UPDATE ledger.records SET actor_role = 'county_officer' WHERE seq = 21`)
			},
			seq: 21, reason: "content differs", offline: -1,
		},
		{
			name: "changed payload with the trigger disabled",
			tamper: func(t *testing.T, f *fixture) {
				ctx := context.Background()
				for _, sql := range []string{
					`ALTER TABLE ledger.records DISABLE TRIGGER records_append_only`,
					`UPDATE ledger.records SET payload = convert_to('{"category":"air"}', 'UTF8') WHERE seq = 5`,
					`ALTER TABLE ledger.records ENABLE TRIGGER records_append_only`,
				} {
					if _, err := f.pool.Exec(ctx, sql); err != nil {
						t.Fatal(err)
					}
				}
			},
			seq: 5, reason: "content differs", offline: -1,
		},
		{
			name: "changed time",
			tamper: func(t *testing.T, f *fixture) {
				f.asSuperuser(t, `UPDATE ledger.records SET recorded_at = recorded_at - interval '1 day' WHERE seq = 37`)
			},
			seq: 37, reason: "content differs", offline: -1,
		},
		{
			name: "responsible person removed",
			tamper: func(t *testing.T, f *fixture) {
				f.asSuperuser(t, `UPDATE ledger.records SET responsible = responsible - 1 WHERE seq = 9`)
			},
			seq: 9, reason: "content differs", offline: -1,
		},
		{
			name: "changed field and leaf re-hashed",
			tamper: func(t *testing.T, f *fixture) {
				f.asSuperuser(t, `UPDATE ledger.records SET subject_id = 'forged' WHERE seq = 21`)
				var r ledger.Record
				rehashOne(t, f, 21, &r)
			},
			seq: 21, reason: "Merkle tree hashes were altered", offline: 21,
		},
		{
			name:   "deleted record",
			tamper: func(t *testing.T, f *fixture) { f.asSuperuser(t, `DELETE FROM ledger.records WHERE seq = 10`) },
			seq:    10, reason: "record 10 is missing", offline: -1,
		},
		{
			name: "deleted record and the rest renumbered",
			tamper: func(t *testing.T, f *fixture) {
				f.asSuperuser(t, `DELETE FROM ledger.records WHERE seq = 10`)
				for s := 11; s < 40; s++ {
					f.asSuperuser(t, `UPDATE ledger.records SET seq = seq - 1 WHERE seq = $1`, s)
				}
				f.asSuperuser(t, `UPDATE ledger.chains SET size = 39`)
			},
			seq: 10, reason: "content differs", offline: -1,
		},
		{
			name: "two records swapped",
			tamper: func(t *testing.T, f *fixture) {
				f.asSuperuser(t, `UPDATE ledger.records SET seq = 1000 WHERE seq = 12`)
				f.asSuperuser(t, `UPDATE ledger.records SET seq = 12 WHERE seq = 13`)
				f.asSuperuser(t, `UPDATE ledger.records SET seq = 13 WHERE seq = 1000`)
			},
			seq: 12, reason: "content differs", offline: -1,
		},
		{
			name: "tail cut off",
			tamper: func(t *testing.T, f *fixture) {
				f.asSuperuser(t, `DELETE FROM ledger.records WHERE seq >= 36`)
				f.asSuperuser(t, `UPDATE ledger.chains SET size = 36, head_hash = (SELECT leaf_hash FROM ledger.records WHERE seq = 35)`)
			},
			seq: 36, reason: "records from 36 on are missing", offline: -1,
		},
		{
			name: "tail and its checkpoints cut off, witness remembers",
			tamper: func(t *testing.T, f *fixture) {
				f.asSuperuser(t, `DELETE FROM ledger.records WHERE seq >= 30`)
				f.asSuperuser(t, `DELETE FROM ledger.checkpoints WHERE size > 16`)
				f.asSuperuser(t, `UPDATE ledger.chains SET size = 30, head_hash = (SELECT leaf_hash FROM ledger.records WHERE seq = 29)`)
			},
			seq: 30, reason: "records from 30 on are missing", offline: 30,
		},
		{
			name: "chain rewritten consistently from record 20",
			tamper: func(t *testing.T, f *fixture) {
				f.asSuperuser(t, `UPDATE ledger.records SET subject_id = 'forged' WHERE seq = 20`)
				f.recomputeFrom(t, 20)
			},
			seq: 16, reason: "do not reproduce the root", offline: -1,
		},
		{
			name: "stored tree hash altered",
			tamper: func(t *testing.T, f *fixture) {
				// level 2 hash over records 8..11
				f.asSuperuser(t, `UPDATE ledger.tree_hashes SET hash = sha256(hash) WHERE idx = $1`, tlog.StoredHashIndex(2, 2))
			},
			seq: 8, reason: "Merkle tree hashes were altered", offline: 0, // the export holds no tree hashes: verifies
		},
		{
			name: "person index row removed",
			tamper: func(t *testing.T, f *fixture) {
				f.asSuperuser(t, `DELETE FROM ledger.record_people WHERE seq = 15 AND as_actor`)
			},
			seq: 15, reason: "person index misses", offline: 0,
		},
		{
			name: "forged checkpoint signed with another key",
			tamper: func(t *testing.T, f *fixture) {
				other, _ := testKeys(t)
				insertCheckpoint(t, f, other.Signer(), 24, rootAt(t, f, 24))
			},
			seq: 16, reason: "not signed by a trusted ledger key", offline: -1,
		},
		{
			name: "checkpoint size changed",
			tamper: func(t *testing.T, f *fixture) {
				f.asSuperuser(t, `UPDATE ledger.checkpoints SET size = 30 WHERE size = 32`)
			},
			seq: 16, reason: "changed after signing", offline: 0, // the export carries the signed note, which is intact
		},
		{
			name: "checkpoint note edited",
			tamper: func(t *testing.T, f *fixture) {
				f.asSuperuser(t, `UPDATE ledger.checkpoints SET note = regexp_replace(note, E'\n32\n', E'\n31\n') WHERE size = 32`)
			},
			seq: 16, reason: "does not verify", offline: -1,
		},
		{
			name: "fork: a second signed root at a checkpointed size",
			tamper: func(t *testing.T, f *fixture) {
				insertCheckpointNote(t, f, f.keys.Signer(), 32, tlog.RecordHash([]byte("another tree")), 16)
			},
			seq: 16, reason: "fork", offline: -1,
		},
		{
			name: "fork: a signed checkpoint the records do not reproduce",
			tamper: func(t *testing.T, f *fixture) {
				insertCheckpoint(t, f, f.keys.Signer(), 24, tlog.RecordHash([]byte("another tree")))
			},
			seq: 16, reason: "do not reproduce the root", offline: -1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.build(t)
			if res := f.verify(t); !res.OK() {
				t.Fatalf("untouched chain: %v", res.Defect)
			}
			witness := f.export(t) // an auditor's earlier export
			tc.tamper(t, f)
			wantDefect(t, "VerifyChain", f.verify(t), tc.seq, tc.reason)
			offline := tc.offline
			if offline < 0 {
				offline = tc.seq
			}
			data := f.export(t)
			res := f.verifyExport(t, data, lastNote(t, witness))
			if offline == 0 && tc.seq != 0 {
				if !res.OK() {
					t.Fatalf("offline: %v", res.Defect)
				}
				return
			}
			wantDefect(t, "offline", res, offline, "")
		})
	}
}

// rehashOne recomputes one record's leaf hash after an edit (and its
// level-0 tree hash is left alone).
func rehashOne(t *testing.T, f *fixture, seq int64, r *ledger.Record) {
	t.Helper()
	row := f.pool.QueryRow(context.Background(), `SELECT recorded_at, COALESCE(actor_id::text,''), actor_role, actor_node_code, action, subject_type, subject_id, node_code, responsible, payload, prev_hash
		FROM ledger.records WHERE county_code = $1 AND seq = $2`, county, seq)
	var prev []byte
	if err := row.Scan(&r.RecordedAt, &r.ActorID, &r.ActorRole, &r.ActorNodeCode, &r.Action, &r.SubjectType, &r.SubjectID, &r.NodeCode, &r.Responsible, &r.Payload, &prev); err != nil {
		t.Fatal(err)
	}
	r.CountyCode, r.Seq, r.RecordedAt = county, seq, r.RecordedAt.UTC()
	copy(r.PrevHash[:], prev)
	h := r.ComputeLeafHash()
	f.asSuperuser(t, `UPDATE ledger.records SET leaf_hash = $2 WHERE seq = $1`, seq, h[:])
}

// rootAt is the true Merkle root of the first n records.
func rootAt(t *testing.T, f *fixture, n int64) tlog.Hash {
	t.Helper()
	var h tlog.Hash
	err := database.InTx(context.Background(), f.pool, func(tx pgx.Tx) error {
		var err error
		h, err = tlog.TreeHash(n, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for i, x := range idx {
				var b []byte
				if err := tx.QueryRow(context.Background(), `SELECT hash FROM ledger.tree_hashes WHERE idx = $1`, x).Scan(&b); err != nil {
					return nil, err
				}
				copy(out[i][:], b)
			}
			return out, nil
		}))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func insertCheckpoint(t *testing.T, f *fixture, s note.Signer, size int64, root tlog.Hash) {
	t.Helper()
	insertCheckpointNote(t, f, s, size, root, 0)
}

func insertCheckpointNote(t *testing.T, f *fixture, s note.Signer, size int64, root tlog.Hash, prev int64) {
	t.Helper()
	msg, err := note.Sign(&note.Note{Text: ledger.CheckpointBody(county, size, root)}, s)
	if err != nil {
		t.Fatal(err)
	}
	// A second row of the same size needs the primary key out of the way.
	f.asSuperuser(t, `ALTER TABLE ledger.checkpoints DROP CONSTRAINT IF EXISTS checkpoints_pkey`)
	f.asSuperuser(t, `INSERT INTO ledger.checkpoints (county_code, size, root, key_name, key_id, note, prev_size, proof)
		VALUES ($1, $2, $3, $4, $5, $6, $7, '\x')`, county, size, root[:], s.Name(), int64(s.KeyHash()), string(msg), prev)
}

// lastNote returns the last checkpoint note of an export.
func lastNote(t *testing.T, export []byte) string {
	t.Helper()
	var last string
	for _, line := range bytes.Split(export, []byte("\n")) {
		if bytes.Contains(line, []byte(`"type":"checkpoint"`)) {
			last = string(line)
		}
	}
	var cp struct {
		Note string `json:"note"`
	}
	if err := json.Unmarshal([]byte(last), &cp); err != nil || cp.Note == "" {
		t.Fatalf("no checkpoint in export: %v", err)
	}
	return cp.Note
}

// backupTables copies the ledger as a backup would; restoreTables puts it
// back over the current contents, as restoring that backup would.
var ledgerTables = []string{"chains", "records", "record_people", "tree_hashes", "checkpoints"}

func (f *fixture) backupTables(t *testing.T) {
	t.Helper()
	f.asSuperuser(t, `CREATE SCHEMA backup`)
	for _, tbl := range ledgerTables {
		f.asSuperuser(t, `CREATE TABLE backup.`+tbl+` AS TABLE ledger.`+tbl)
	}
}

func (f *fixture) restoreTables(t *testing.T) {
	t.Helper()
	for _, tbl := range ledgerTables {
		f.asSuperuser(t, `DELETE FROM ledger.`+tbl)
	}
	for _, tbl := range ledgerTables {
		f.asSuperuser(t, `INSERT INTO ledger.`+tbl+` SELECT * FROM backup.`+tbl)
	}
}

func TestRestoreOfOlderBackupIsDetected(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.append(t, 16)
	f.checkpoint(t)
	f.append(t, 8)
	f.backupTables(t) // 24 records, checkpoint at 16
	f.append(t, 16)
	latest := f.checkpoint(t) // 40, witnessed outside the database
	f.restoreTables(t)

	// The server's witness file catches it.
	wantDefect(t, "with witness file", f.verify(t), 24, "records from 24 on are missing")
	// So does an auditor holding the last checkpoint, with a server that
	// lost its witness file, and offline.
	bare := ledger.New(f.pool, f.keys, ledger.Config{}, nil)
	res, err := bare.VerifyChain(context.Background(), county, []string{latest.Note})
	if err != nil {
		t.Fatal(err)
	}
	wantDefect(t, "with known checkpoint", res, 24, "records from 24 on are missing")
	wantDefect(t, "offline", f.verifyExport(t, f.export(t), latest.Note), 24, "records from 24 on are missing")
	// With no memory of the later checkpoint anywhere, a consistent older
	// state is all there is to see: that is why checkpoints are witnessed.
	if res, _ := bare.VerifyChain(context.Background(), county, nil); !res.OK() {
		t.Fatalf("restored chain without witness: %v", res.Defect)
	}

	// The server refuses to sign the rolled-back chain, also once it has
	// grown past the witnessed size with different records (a fork).
	f.append(t, 4)
	if _, err := f.ledger.Checkpoint(context.Background(), county); err == nil || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("checkpoint of rolled-back chain: %v", err)
	}
	f.append(t, 20)
	if _, err := f.ledger.Checkpoint(context.Background(), county); err == nil || !strings.Contains(err.Error(), "fork") {
		t.Fatalf("checkpoint of forked chain: %v", err)
	}
	wantDefect(t, "forked", f.verify(t), 16, "do not reproduce the root")
}

func TestCheckpointRefusesTamperedTail(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.build(t)
	// A record slipped in behind Append's back: copied, renumbered, not re-hashed.
	f.asSuperuser(t, `INSERT INTO ledger.records SELECT county_code, 40, recorded_at, actor_id, actor_role, actor_node_code, action,
		subject_type, 'slipped-in', node_code, responsible, payload, leaf_hash, leaf_hash FROM ledger.records WHERE seq = 39`)
	f.asSuperuser(t, `UPDATE ledger.chains SET size = 41`)
	_, err := f.ledger.Checkpoint(context.Background(), county)
	if err == nil || !strings.Contains(err.Error(), "ledger record 40") {
		t.Fatalf("checkpoint over a tampered record: %v", err)
	}
	var n int
	if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger.checkpoints WHERE size = 41`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("a checkpoint of the tampered chain was stored (%d, %v)", n, err)
	}
}

// TestVerifyWhileAppending: verification runs against a consistent
// snapshot, so a chain that keeps growing and being checkpointed (and
// witnessed) meanwhile is never reported as damaged.
func TestVerifyWhileAppending(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.append(t, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			err := database.InTx(ctx, f.pool, func(tx pgx.Tx) error {
				_, err := ledger.Append(ctx, tx, entry(i))
				return err
			})
			if err == nil && i%3 == 0 {
				_, err = f.ledger.Checkpoint(ctx, county)
			}
			if err != nil && ctx.Err() == nil {
				done <- err
				return
			}
		}
	}()
	for range 15 {
		res := f.verify(t)
		if !res.OK() {
			cancel()
			t.Fatalf("verification during appends: %v", res.Defect)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestBaselinePinpointsRewrite: a rewrite re-hashed consistently is only
// bounded by the signed checkpoints (16 here); an auditor's earlier export
// as baseline names the exact record (20).
func TestBaselinePinpointsRewrite(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.build(t)
	earlier := f.export(t)
	f.asSuperuser(t, `UPDATE ledger.records SET subject_id = 'forged' WHERE seq = 20`)
	f.recomputeFrom(t, 20)
	later := f.export(t)
	keys, _ := ledger.ParsePublicKeys(f.pub)
	wantDefect(t, "without baseline", f.verifyExport(t, later), 16, "do not reproduce the root")
	base, err := ledger.ReadBaseline(bytes.NewReader(earlier), keys)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ledger.VerifyExportAgainst(bytes.NewReader(later), keys, nil, base)
	if err != nil {
		t.Fatal(err)
	}
	wantDefect(t, "with baseline", res, 20, "differs from the same record in the baseline")
	// A tampered export is no baseline.
	if _, err := ledger.ReadBaseline(bytes.NewReader(later), keys); err == nil {
		t.Fatal("a tampered export was accepted as baseline")
	}
	// An honest later export verifies against its baseline.
	g := newFixture(t)
	g.build(t)
	before := g.export(t)
	g.append(t, 5)
	gkeys, _ := ledger.ParsePublicKeys(g.pub)
	gbase, err := ledger.ReadBaseline(bytes.NewReader(before), gkeys)
	if err != nil {
		t.Fatal(err)
	}
	res, err = ledger.VerifyExportAgainst(bytes.NewReader(g.export(t)), gkeys, nil, gbase)
	if err != nil || !res.OK() || res.Records != 45 {
		t.Fatalf("honest growth against baseline: %+v %v %v", res, res.Defect, err)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.append(t, 5)
	f.checkpoint(t)
	f.append(t, 3)
	reg := prometheus.NewPedanticRegistry()
	if err := ledger.RegisterMetrics(reg, f.pool); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[mf.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	if got["ecogrid_ledger_unsigned_records_max"] != 3 || got["ecogrid_ledger_unsigned_age_seconds_max"] <= 0 {
		t.Fatalf("metrics %v", got)
	}
	if got["ecogrid_ledger_checkpoints_signed_total"] < 1 {
		t.Fatalf("signed counter %v", got)
	}
}

func TestPersonIndexExtraRowDetected(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.build(t)
	f.asSuperuser(t, `INSERT INTO ledger.record_people (person_id, county_code, seq, as_actor) VALUES (gen_random_uuid(), $1, 27, false)`, county)
	wantDefect(t, "extra index row", f.verify(t), 27, "names someone the record does not")
}

package ledger

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"ecogrid/internal/structerr"
)

// ExportFormat names the JSON Lines export layout. An export is:
//
//	{"type":"header","format":"ecogrid.ledger.export.v1","county_code":…,"size":N,"exported_at":…,"public_keys":[…]}
//	{"type":"checkpoint","note":"<signed note>","prev_size":M,"proof":["<base64>",…],"created_at":…}   (every checkpoint, by size)
//	{"type":"record","seq":0,"county_code":…,"recorded_at":…,…,"payload":{…},"prev_hash":"<hex>","leaf_hash":"<hex>"}   (every record, by seq)
//
// The payload is embedded as the exact JSON bytes that were hashed; do not
// reformat an export (jq, pretty-printers) before verifying it. The public
// keys in the header are informative only: a verifier trusts the key it is
// given, never the file's.
const ExportFormat = "ecogrid.ledger.export.v1"

// MaxExportLine bounds one line of an export (a record with the largest
// payload fits with room to spare); longer lines are rejected unread.
const MaxExportLine = 1 << 20

type exportHeader struct {
	Type       string    `json:"type"`
	Format     string    `json:"format"`
	CountyCode string    `json:"county_code"`
	Size       int64     `json:"size"`
	ExportedAt time.Time `json:"exported_at"`
	PublicKeys []string  `json:"public_keys"`
}

type exportCheckpoint struct {
	Type      string    `json:"type"`
	Note      string    `json:"note"`
	PrevSize  int64     `json:"prev_size"`
	Proof     []string  `json:"proof"`
	CreatedAt time.Time `json:"created_at"`
}

type exportRecord struct {
	Type          string          `json:"type"`
	Seq           int64           `json:"seq"`
	CountyCode    string          `json:"county_code"`
	RecordedAt    string          `json:"recorded_at"`
	ActorID       string          `json:"actor_id"`
	ActorRole     string          `json:"actor_role"`
	ActorNodeCode string          `json:"actor_node_code"`
	Action        string          `json:"action"`
	SubjectType   string          `json:"subject_type"`
	SubjectID     string          `json:"subject_id"`
	NodeCode      string          `json:"node_code"`
	Responsible   []Responsible   `json:"responsible"`
	Payload       json.RawMessage `json:"payload"`
	PrevHash      string          `json:"prev_hash"`
	LeafHash      string          `json:"leaf_hash"`
}

// exportLine is any line, for decoding in one pass.
type exportLine struct {
	Type string `json:"type"`
	exportRecordFields
	Format     string   `json:"format"`
	Size       *int64   `json:"size"`
	PublicKeys []string `json:"public_keys"`
	ExportedAt string   `json:"exported_at"`
	Note       string   `json:"note"`
	PrevSize   int64    `json:"prev_size"`
	Proof      []string `json:"proof"`
	CreatedAt  string   `json:"created_at"`
}

type exportRecordFields struct {
	Seq           *int64          `json:"seq"`
	CountyCode    string          `json:"county_code"`
	RecordedAt    string          `json:"recorded_at"`
	ActorID       string          `json:"actor_id"`
	ActorRole     string          `json:"actor_role"`
	ActorNodeCode string          `json:"actor_node_code"`
	Action        string          `json:"action"`
	SubjectType   string          `json:"subject_type"`
	SubjectID     string          `json:"subject_id"`
	NodeCode      string          `json:"node_code"`
	Responsible   []Responsible   `json:"responsible"`
	Payload       json.RawMessage `json:"payload"`
	PrevHash      string          `json:"prev_hash"`
	LeafHash      string          `json:"leaf_hash"`
}

// timeLayout is how recorded_at is written: UTC, always six fractional
// digits, the precision that is stored and hashed.
const timeLayout = "2006-01-02T15:04:05.000000Z"

func toExportRecord(r *Record) exportRecord {
	payload := json.RawMessage(r.Payload)
	if !json.Valid(payload) {
		// Damaged in the database: export it as a string so the verifier
		// reports the record instead of the export failing.
		payload, _ = json.Marshal(string(r.Payload))
	}
	return exportRecord{
		Type: "record", Seq: r.Seq, CountyCode: r.CountyCode, RecordedAt: r.RecordedAt.UTC().Format(timeLayout),
		ActorID: r.ActorID, ActorRole: r.ActorRole, ActorNodeCode: r.ActorNodeCode, Action: r.Action,
		SubjectType: r.SubjectType, SubjectID: r.SubjectID, NodeCode: r.NodeCode,
		Responsible: nonNil(r.Responsible), Payload: payload,
		PrevHash: hex.EncodeToString(r.PrevHash[:]), LeafHash: hex.EncodeToString(r.LeafHash[:]),
	}
}

func nonNil(rs []Responsible) []Responsible {
	if rs == nil {
		return []Responsible{}
	}
	return rs
}

// Export writes a county's chain as JSON Lines (see ExportFormat): a
// consistent snapshot of its records and checkpoints, readable by
// VerifyExport without any database.
func (l *Ledger) Export(ctx context.Context, county string, w io.Writer) error {
	if !validCountyCode(county) {
		return structerr.NewInvalidArgument("a ledger chain is named by a 6-digit county code, not %.40q", county)
	}
	tx, err := l.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only
	size, _, err := chainHead(ctx, tx, county)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(exportHeader{Type: "header", Format: ExportFormat, CountyCode: county, Size: size,
		ExportedAt: nowMicro(), PublicKeys: nonNilStrings(l.keys.PublicKeys())}); err != nil {
		return err
	}
	cps, err := listCheckpoints(ctx, tx, county, 0, 0)
	if err != nil {
		return err
	}
	for _, c := range cps {
		proof := []string{}
		for i := 0; i+tlog.HashSize <= len(c.rawProof); i += tlog.HashSize {
			proof = append(proof, base64.StdEncoding.EncodeToString(c.rawProof[i:i+tlog.HashSize]))
		}
		if err := enc.Encode(exportCheckpoint{Type: "checkpoint", Note: c.Note, PrevSize: c.PrevSize, Proof: proof, CreatedAt: c.CreatedAt}); err != nil {
			return err
		}
	}
	err = forEachRecord(ctx, tx, county, 0, size, func(r *Record) error {
		return enc.Encode(toExportRecord(r))
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// VerifyExport verifies a ledger export offline, trusting only keys (never
// the public keys written in the file). witnesses are checkpoint notes the
// auditor obtained elsewhere (a previous export, a witness file): the
// export must reproduce them too, which catches a database restored from
// an older backup.
//
// It reads at most MaxExportLine bytes per line and never panics on hostile
// input. An unreadable or foreign header is an error; anything wrong after
// it is the chain's Defect.
func VerifyExport(r io.Reader, keys note.Verifiers, witnesses []string) (Result, error) {
	return VerifyExportAgainst(r, keys, witnesses, nil)
}

// Baseline is an earlier export of the same chain that verified: its leaf
// hashes and checkpoints. Verifying a later export against it pinpoints
// the exact first changed record even when the change was re-hashed
// consistently (which signed checkpoints alone only bound to a range), and
// its checkpoints act as witnesses (a rollback behind it is caught).
type Baseline struct {
	CountyCode string
	leaves     []tlog.Hash
	notes      []string
}

// maxBaselineRecords bounds a baseline held in memory (32 bytes a record).
const maxBaselineRecords = 64 << 20

// ReadBaseline verifies an earlier export and keeps what a later
// verification compares against. An export that does not verify is no
// baseline.
func ReadBaseline(r io.Reader, keys note.Verifiers) (*Baseline, error) {
	b := &Baseline{}
	res, err := verifyExport(r, keys, nil, nil, func(c string, rec *Record, noteText string) error {
		b.CountyCode = c
		if noteText != "" {
			b.notes = append(b.notes, noteText)
			return nil
		}
		if len(b.leaves) >= maxBaselineRecords {
			return errors.New("the baseline export is too large to hold in memory")
		}
		b.leaves = append(b.leaves, rec.LeafHash)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	if !res.OK() {
		return nil, fmt.Errorf("the baseline export does not verify itself: %v", res.Defect)
	}
	b.CountyCode = res.CountyCode
	b.leaves = b.leaves[:res.Records]
	return b, nil
}

// VerifyExportAgainst is VerifyExport that also compares every record with
// a baseline export of the same chain (nil: none).
func VerifyExportAgainst(r io.Reader, keys note.Verifiers, witnesses []string, base *Baseline) (Result, error) {
	if base != nil {
		witnesses = append(append([]string(nil), witnesses...), base.notes...)
	}
	return verifyExport(r, keys, witnesses, base, nil)
}

// verifyExport reads and verifies an export; seen, when set, is called with
// every checkpoint note and every record that verified.
func verifyExport(r io.Reader, keys note.Verifiers, witnesses []string, base *Baseline,
	seen func(county string, rec *Record, noteText string) error) (Result, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxExportLine)
	lineNo := 0
	next := func() ([]byte, error) {
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				if errors.Is(err, bufio.ErrTooLong) {
					return nil, fmt.Errorf("line %d is longer than %d bytes", lineNo+1, MaxExportLine)
				}
				return nil, err
			}
			return nil, io.EOF
		}
		lineNo++
		return sc.Bytes(), nil
	}
	first, err := next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Result{}, errors.New("the export is empty")
		}
		return Result{}, fmt.Errorf("reading the export: %v", err)
	}
	var h exportLine
	if err := json.Unmarshal(first, &h); err != nil || h.Type != "header" {
		return Result{}, errors.New("the export does not start with a ledger export header")
	}
	if h.Format != ExportFormat {
		return Result{}, fmt.Errorf("the export format is %.60q, want %s", h.Format, ExportFormat)
	}
	if !validCountyCode(h.CountyCode) || h.Size == nil || *h.Size < 0 {
		return Result{}, errors.New("the export header has no valid county code and size")
	}
	v := NewChainVerifier(h.CountyCode, keys)
	if base != nil {
		if base.CountyCode != h.CountyCode {
			return Result{}, fmt.Errorf("the baseline is the ledger of county %s, this export of %s", base.CountyCode, h.CountyCode)
		}
		v.baseline = base.leaves
	}
	for _, w := range witnesses {
		if err := v.AddCheckpoint(w, 0, nil); err != nil {
			return Result{}, err
		}
	}
	var rec Record
	var line exportLine
	for {
		b, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return v.failed(fmt.Sprintf("the export is unreadable after line %d: %v", lineNo, err)), nil
		}
		line = exportLine{}
		if err := json.Unmarshal(b, &line); err != nil {
			return v.failed(fmt.Sprintf("line %d is not valid JSON", lineNo)), nil
		}
		switch line.Type {
		case "checkpoint":
			proof, perr := decodeProof(line.Proof)
			if perr != nil {
				return v.failed(fmt.Sprintf("line %d: %v", lineNo, perr)), nil
			}
			if err := v.AddCheckpoint(line.Note, line.PrevSize, proof); err != nil {
				return v.failed(fmt.Sprintf("line %d: %v", lineNo, err)), nil
			}
			if seen != nil {
				if err := seen(h.CountyCode, nil, line.Note); err != nil {
					return Result{}, err
				}
			}
		case "record":
			if err := line.exportRecordFields.toRecord(&rec); err != nil {
				return v.failed(fmt.Sprintf("line %d is not a valid record: %v", lineNo, err)), nil
			}
			if d := v.AddRecord(&rec); d != nil {
				return v.Finish(-1), nil
			}
			if seen != nil {
				if err := seen(h.CountyCode, &rec, ""); err != nil {
					return Result{}, err
				}
			}
		default:
			return v.failed(fmt.Sprintf("line %d has unknown type %.40q", lineNo, line.Type)), nil
		}
	}
	return v.Finish(*h.Size), nil
}

// failed ends verification with a defect at the next expected record.
func (v *ChainVerifier) failed(reason string) Result {
	if !v.started {
		v.start()
	}
	v.fail(v.n, reason)
	return v.Finish(-1)
}

func decodeProof(in []string) (tlog.TreeProof, error) {
	if len(in) > 128 {
		return nil, errors.New("consistency proof is too long")
	}
	p := make(tlog.TreeProof, len(in))
	for i, s := range in {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != tlog.HashSize {
			return nil, errors.New("consistency proof hash is not base64 SHA-256")
		}
		copy(p[i][:], b)
	}
	return p, nil
}

func (f *exportRecordFields) toRecord(r *Record) error {
	if f.Seq == nil || *f.Seq < 0 {
		return errors.New("no seq")
	}
	t, err := time.Parse(time.RFC3339Nano, f.RecordedAt)
	if err != nil {
		return errors.New("recorded_at is not an RFC 3339 time")
	}
	if len(f.Payload) == 0 {
		return errors.New("no payload")
	}
	*r = Record{
		CountyCode: f.CountyCode, Seq: *f.Seq, RecordedAt: t.UTC(),
		ActorID: f.ActorID, ActorRole: f.ActorRole, ActorNodeCode: f.ActorNodeCode, Action: f.Action,
		SubjectType: f.SubjectType, SubjectID: f.SubjectID, NodeCode: f.NodeCode,
		Responsible: f.Responsible, Payload: bytes.Clone(f.Payload),
	}
	if err := decodeHash(f.PrevHash, &r.PrevHash); err != nil {
		return fmt.Errorf("prev_hash: %w", err)
	}
	if err := decodeHash(f.LeafHash, &r.LeafHash); err != nil {
		return fmt.Errorf("leaf_hash: %w", err)
	}
	return nil
}

func decodeHash(s string, h *tlog.Hash) error {
	if len(s) != 2*tlog.HashSize {
		return errors.New("not a hex SHA-256 hash")
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return errors.New("not a hex SHA-256 hash")
	}
	return nil
}

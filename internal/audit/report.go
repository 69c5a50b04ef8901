package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"golang.org/x/mod/sumdb/note"

	"ecogrid/internal/ledger"
)

// ReportFormat names the JSON layout of a tenure audit report.
const ReportFormat = "ecogrid.audit.tenure.v1"

// maxReportSize bounds a report read by the verifier.
const maxReportSize = 256 << 20

// Report is a tenure audit as handed out: the facts, the ledger record of
// its generation, and the evidence — every cited record with its inclusion
// proof and the signed checkpoints they lead to. Names of nodes and of
// people not named in the records are informational (looked up when the
// report was made, not proven).
type Report struct {
	Format      string            `json:"format"`
	ReportID    string            `json:"report_id"`
	AuditorID   string            `json:"auditor_id"`
	AuditorName string            `json:"auditor_name"`
	Facts       Facts             `json:"facts"`
	Digest      string            `json:"digest"`     // SHA-256 of the facts' JSON, as ledgered
	Generation  Cite              `json:"generation"` // the audit.report_generated record
	NodeNames   map[string]string `json:"node_names"`
	PersonNames map[string]string `json:"person_names"`
	// Patrols is the patrol compliance per post, cell and month
	// (informational: patrols are not ledgered, see PatrolMonth).
	Patrols     []PatrolMonth        `json:"patrol_compliance"`
	Checkpoints []string             `json:"checkpoints"` // signed notes, one per county (and size) cited
	Evidence    []ledger.RecordProof `json:"evidence"`
}

// generation is the payload of the audit.report_generated record.
type generation struct {
	ReportID string  `json:"report_id"`
	Params   Params  `json:"params"`
	Digest   string  `json:"digest"`
	Summary  Summary `json:"summary"`
	Records  int     `json:"records"`
}

// digest is the SHA-256 of the facts' JSON encoding.
func digest(f Facts) (string, []byte, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return "", nil, err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), b, nil
}

// VerifyReport checks a report offline with only the ledger's public keys:
//   - every checkpoint is signed by a trusted key;
//   - every evidence record's content reproduces its leaf hash, and its
//     proof leads to the root its checkpoint signs;
//   - the generation record is among them and names this report;
//   - the facts recomputed from the proven records (Compute, with the
//     parameters the generation record holds) equal the report's facts;
//   - and their digest equals the one ledgered when the report was made, so
//     a report cannot drop a case together with its records.
//
// It returns the verified facts.
func VerifyReport(r io.Reader, keys note.Verifiers) (Facts, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxReportSize+1))
	if err != nil {
		return Facts{}, err
	}
	if len(data) > maxReportSize {
		return Facts{}, errors.New("the report is too large")
	}
	var rep Report
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&rep); err != nil {
		return Facts{}, fmt.Errorf("the report is not a tenure audit report: %v", err)
	}
	if rep.Format != ReportFormat {
		return Facts{}, fmt.Errorf("the report format is %.40q, not %s", rep.Format, ReportFormat)
	}
	type chainSize struct {
		county string
		size   int64
	}
	cps := map[chainSize]ledger.Checkpoint{}
	for _, n := range rep.Checkpoints {
		cp, err := ledger.OpenCheckpoint(n, keys)
		if err != nil {
			return Facts{}, err
		}
		cps[chainSize{cp.CountyCode, cp.Size}] = cp
	}
	var records []ledger.Record
	var gen *ledger.Record
	for i := range rep.Evidence {
		p := &rep.Evidence[i]
		cp, ok := cps[chainSize{p.Record.CountyCode, p.Size}]
		if !ok {
			return Facts{}, fmt.Errorf("record %s/%d: the report has no signed checkpoint of size %d for its chain", p.Record.CountyCode, p.Record.Seq, p.Size)
		}
		if err := ledger.VerifyRecordProof(*p, cp); err != nil {
			return Facts{}, err
		}
		if p.Record.CountyCode == rep.Generation.County && p.Record.Seq == rep.Generation.Seq {
			gen = &p.Record
			continue
		}
		records = append(records, p.Record)
	}
	if gen == nil {
		return Facts{}, fmt.Errorf("the record of the report's generation (%s/%d) is not in its evidence", rep.Generation.County, rep.Generation.Seq)
	}
	var g generation
	if gen.Action != ActionReportGenerated || json.Unmarshal(gen.Payload, &g) != nil || g.ReportID != rep.ReportID || gen.SubjectID != rep.ReportID {
		return Facts{}, fmt.Errorf("ledger record %s/%d is not the generation of report %.40q", gen.CountyCode, gen.Seq, rep.ReportID)
	}
	if gen.ActorID != rep.AuditorID {
		return Facts{}, fmt.Errorf("the report names auditor %.40q, the ledger %s", rep.AuditorID, gen.ActorID)
	}
	want := Compute(g.Params, records)
	wantDigest, wantJSON, err := digest(want)
	if err != nil {
		return Facts{}, err
	}
	_, gotJSON, err := digest(rep.Facts)
	if err != nil {
		return Facts{}, err
	}
	if !bytes.Equal(gotJSON, wantJSON) {
		return Facts{}, fmt.Errorf("the report's facts differ from those the proven records give: %s", firstDifference(rep.Facts, want))
	}
	if wantDigest != g.Digest || rep.Digest != g.Digest {
		return Facts{}, fmt.Errorf("the facts' digest %s differs from the one ledgered at %s/%d (%s): records were left out of the report", wantDigest, gen.CountyCode, gen.Seq, g.Digest)
	}
	return want, nil
}

// firstDifference names the first summary figure or section that differs.
func firstDifference(got, want Facts) string {
	gs, _ := json.Marshal(got.Summary)
	ws, _ := json.Marshal(want.Summary)
	if !bytes.Equal(gs, ws) {
		return fmt.Sprintf("summary %s, recomputed %s", gs, ws)
	}
	for _, s := range []struct {
		name string
		a, b any
	}{{"posts", got.Posts, want.Posts}, {"handovers", got.Handovers, want.Handovers}, {"cases", got.Cases, want.Cases},
		{"reports", got.Reports, want.Reports}, {"acts", got.Acts, want.Acts}, {"params", got.Params, want.Params}} {
		a, _ := json.Marshal(s.a)
		b, _ := json.Marshal(s.b)
		if !bytes.Equal(a, b) {
			return "the " + s.name + " differ"
		}
	}
	return "the person differs"
}

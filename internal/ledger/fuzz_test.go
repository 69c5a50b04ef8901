package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// fixedKeys is a deterministic key pair so that the seed corpus is stable.
func fixedKeys(t testing.TB) (note.Signer, note.Verifiers) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 64)), "fuzz-ledger")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, note.VerifierList(v)
}

// syntheticRecords builds a valid chain of n records in memory.
func syntheticRecords(n int) []Record {
	recs := make([]Record, n)
	var prev tlog.Hash
	t0 := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	for i := range recs {
		r := &recs[i]
		*r = Record{CountyCode: "330106", Seq: int64(i), RecordedAt: t0.Add(time.Duration(i) * time.Minute),
			ActorID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i%7), ActorRole: "inspector", ActorNodeCode: "330106001001",
			Action: "report.filed", SubjectType: "report", SubjectID: fmt.Sprintf("r-%d", i), NodeCode: "330106001001",
			Payload: []byte(fmt.Sprintf(`{"category":"water","i":%d,"text":"河道漂浮物 \u003cok\u003e"}`, i)), PrevHash: prev}
		if i%4 == 0 {
			r.Responsible = []Responsible{{PersonID: "00000000-0000-4000-8000-000000000099", Name: "王五", Role: "grid_chief", NodeCode: "330106001"}}
		}
		r.LeafHash = r.ComputeLeafHash()
		prev = r.LeafHash
	}
	return recs
}

// syntheticExport writes an export of recs with checkpoints at the given sizes.
func syntheticExport(t testing.TB, s note.Signer, recs []Record, sizes ...int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	_ = enc.Encode(exportHeader{Type: "header", Format: ExportFormat, CountyCode: "330106", Size: int64(len(recs)), PublicKeys: []string{}})
	v := NewChainVerifier("330106", nil)
	roots := map[int64]tlog.Hash{}
	for i := range recs {
		v.push(recs[i].LeafHash)
		v.n++
		roots[v.n] = v.root()
	}
	for _, size := range sizes {
		cp, err := signCheckpoint(s, "330106", size, roots[size])
		if err != nil {
			t.Fatal(err)
		}
		_ = enc.Encode(exportCheckpoint{Type: "checkpoint", Note: cp.Note, Proof: []string{}})
	}
	for i := range recs {
		_ = enc.Encode(toExportRecord(&recs[i]))
	}
	return buf.Bytes()
}

func TestSyntheticExportVerifies(t *testing.T) {
	s, keys := fixedKeys(t)
	data := syntheticExport(t, s, syntheticRecords(21), 8, 20)
	res, err := VerifyExport(bytes.NewReader(data), keys, nil)
	if err != nil || !res.OK() || res.Records != 21 || res.Checkpoints != 2 {
		t.Fatalf("%+v %v %v", res, res.Defect, err)
	}
}

// TestHostileExports feeds the offline verifier broken and malicious input:
// it must fail cleanly (an error before the header, a defect after), never
// panic, never call a broken export good.
func TestHostileExports(t *testing.T) {
	s, keys := fixedKeys(t)
	good := syntheticExport(t, s, syntheticRecords(12), 8)
	lines := strings.Split(strings.TrimSuffix(string(good), "\n"), "\n")
	header, cpLine, recLines := lines[0], lines[1], lines[2:]
	join := func(ls ...string) string { return strings.Join(ls, "\n") + "\n" }
	recs := func(from, to int) []string { return slices.Clone(recLines[from:to]) }
	cases := map[string]struct {
		input   string
		wantErr bool  // rejected before the header
		seq     int64 // else: defect at
	}{
		"empty":                 {input: "", wantErr: true},
		"not json":              {input: "hello\n", wantErr: true},
		"wrong format":          {input: strings.Replace(header, ExportFormat, "other", 1) + "\n", wantErr: true},
		"bad county":            {input: strings.Replace(header, `"330106"`, `"33"`, 1) + "\n", wantErr: true},
		"negative size":         {input: strings.Replace(header, `"size":12`, `"size":-1`, 1) + "\n", wantErr: true},
		"huge line":             {input: header + "\n" + strings.Repeat("x", MaxExportLine+10) + "\n", seq: 0},
		"header only":           {input: join(header, cpLine), seq: 0},
		"garbage line":          {input: join(append([]string{header, cpLine}, append(recs(0, 3), "{not json")...)...), seq: 3},
		"unknown type":          {input: join(header, `{"type":"surprise"}`), seq: 0},
		"no seq":                {input: join(header, `{"type":"record","county_code":"330106"}`), seq: 0},
		"negative seq":          {input: join(header, strings.Replace(recLines[0], `"seq":0`, `"seq":-5`, 1)), seq: 0},
		"huge seq":              {input: join(header, strings.Replace(recLines[0], `"seq":0`, `"seq":9223372036854775807`, 1)), seq: 0},
		"seq overflow":          {input: join(header, strings.Replace(recLines[0], `"seq":0`, `"seq":99999999999999999999999`, 1)), seq: 0},
		"short hash":            {input: join(header, strings.Replace(recLines[0], `"leaf_hash":"`, `"leaf_hash":"00`, 1)), seq: 0},
		"bad time":              {input: join(header, strings.Replace(recLines[0], `"recorded_at":"2026`, `"recorded_at":"x2026`, 1)), seq: 0},
		"payload not object":    {input: join(append([]string{header, cpLine}, strings.Replace(recLines[0], `"payload":{`, `"payload":[{`, 1))...), seq: 0},
		"responsible wrong":     {input: join(header, strings.Replace(recLines[0], `"responsible":[`, `"responsible":{"a":[`, 1)), seq: 0},
		"nul bytes":             {input: header + "\n\x00\x00\x00\n", seq: 0},
		"invalid utf8":          {input: header + "\n\xff\xfe{\"type\":\"record\"}\n", seq: 0},
		"garbage note":          {input: join(append([]string{header, `{"type":"checkpoint","note":"\n\n\n— x y\n"}`}, recs(0, 12)...)...), seq: 0},
		"long proof":            {input: join(header, `{"type":"checkpoint","note":"","proof":[`+strings.Repeat(`"AAAA",`, 200)+`"AAAA"]}`), seq: 0},
		"checkpoint after recs": {input: join(append(append([]string{header}, recs(0, 12)...), cpLine)...), seq: 12},
		"duplicate record":      {input: join(append(append([]string{header, cpLine}, recs(0, 5)...), recs(4, 12)...)...), seq: 5},
		"missing tail":          {input: join(append([]string{header, cpLine}, recs(0, 6)...)...), seq: 6},
		"size lies":             {input: join(append([]string{strings.Replace(header, `"size":12`, `"size":11`, 1), cpLine}, recs(0, 12)...)...), seq: 11},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			res, err := VerifyExport(strings.NewReader(tc.input), keys, nil)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("accepted: %+v", res)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v, want a defect at %d", err, tc.seq)
			}
			if res.OK() || res.Defect.Seq != tc.seq {
				t.Fatalf("result %+v defect %v, want defect at %d", res, res.Defect, tc.seq)
			}
		})
	}
}

// FuzzVerifyExport checks that no input makes the offline verifier panic,
// and that whatever it accepts, it accepts again (it is deterministic) with
// no more records than lines. Seeds: testdata/fuzz/FuzzVerifyExport.
func FuzzVerifyExport(f *testing.F) {
	s, keys := fixedKeys(f)
	f.Add(syntheticExport(f, s, syntheticRecords(9), 4, 9))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := VerifyExport(bytes.NewReader(data), keys, nil)
		if err != nil {
			return
		}
		if res.OK() {
			if res.Records > int64(bytes.Count(data, []byte("\n"))+1) {
				t.Fatalf("verified %d records from %d lines", res.Records, bytes.Count(data, []byte("\n")))
			}
			again, err := VerifyExport(bytes.NewReader(data), keys, nil)
			if err != nil || !again.OK() || again.Records != res.Records {
				t.Fatal("verification is not deterministic")
			}
		}
	})
}

// TestWriteSeedCorpus regenerates the committed seed corpus when
// ECOGRID_WRITE_FUZZ_CORPUS=1.
func TestWriteSeedCorpus(t *testing.T) {
	if os.Getenv("ECOGRID_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set ECOGRID_WRITE_FUZZ_CORPUS=1 to rewrite testdata/fuzz/FuzzVerifyExport")
	}
	s, _ := fixedKeys(t)
	good := syntheticExport(t, s, syntheticRecords(9), 4, 9)
	lines := strings.SplitAfter(string(good), "\n")
	seeds := map[string]string{
		"valid":          string(good),
		"header_only":    lines[0],
		"no_checkpoints": lines[0] + strings.Join(lines[3:], ""),
		"swapped":        lines[0] + lines[1] + lines[2] + lines[4] + lines[3] + strings.Join(lines[5:], ""),
		"truncated":      string(good[:len(good)/2]),
		"tampered":       strings.Replace(string(good), `"i":3`, `"i":4`, 1),
		"garbage":        "{\"type\":\"header\"\n\x00\xff",
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzVerifyExport")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range seeds {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestJSONStringMatchesEncodingJSON keeps the hand-written responsible
// encoding byte-identical to encoding/json (which earlier records used).
func TestJSONStringMatchesEncodingJSON(t *testing.T) {
	var all []byte
	for b := range 256 {
		all = append(all, byte(b))
	}
	samples := []string{"", "plain", "张三 李四", `quote " back \ slash`, "<script>&amp;</script>", "\u2028\u2029", "\x00\x01\x1f\x7f",
		"\b\f\n\r\t", string(all), "\xff\xfe bad utf8 \xc3", "emoji 🌊 ok", "a\u00e9\u0301"}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		b := make([]byte, rng.IntN(24))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		samples = append(samples, string(b))
	}
	for _, s := range samples {
		rs := []Responsible{{PersonID: s, Name: s + "x", Role: "r" + s, NodeCode: s}}
		want, err := json.Marshal(rs)
		if err != nil {
			t.Fatal(err)
		}
		if got := responsibleJSON(rs); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, encoding/json %s", s, got, want)
		}
	}
	if got := responsibleJSON(nil); string(got) != "[]" {
		t.Fatalf("empty: %s", got)
	}
}

// FuzzPersonIDs: the quick split of a counting scan's person id array
// reads what encoding/json reads, or refuses what it refuses.
func FuzzPersonIDs(f *testing.F) {
	for _, s := range []string{`[]`, `["7f6c0a0e-5a7e-4d51-9c1e-0b8f5d3a9c11"]`,
		`["7f6c0a0e-5a7e-4d51-9c1e-0b8f5d3a9c11", "8f6c0a0e-5a7e-4d51-9c1e-0b8f5d3a9c11"]`, `[1]`, `["a\"b"]`, `[`, `["\u0041"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := personIDs(b)
		want, werr := decodePersonIDs(b)
		if werr != nil {
			if err == nil && len(got) > 0 {
				t.Fatalf("%q: read %+v where encoding/json refuses: %v", b, got, werr)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: refused (%v) what encoding/json reads as %+v", b, err, want)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %+v, encoding/json %+v", b, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%q: %+v, encoding/json %+v", b, got, want)
			}
		}
	})
}

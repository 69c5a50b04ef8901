package ledger

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is a signed statement "the chain of county C had Size records
// and Merkle root Root". Its note text (golang.org/x/mod/sumdb/note) is the
// body
//
//	ecogrid.ledger/<county code>
//	<size>
//	<base64 root>
//
// (the C2SP tlog-checkpoint layout) followed by a blank line and ed25519
// signature lines "— <key name> <base64(key id || signature)>". The note is
// the authority; the other fields are parsed from it or stored alongside.
type Checkpoint struct {
	CountyCode string
	Size       int64
	Root       tlog.Hash
	KeyName    string
	KeyID      uint32
	Note       string         // signed note text
	PrevSize   int64          // size of the previous checkpoint of the chain (0: none)
	Proof      tlog.TreeProof // consistency proof from PrevSize to Size
	CreatedAt  time.Time
}

// checkpointOrigin is the first line of a checkpoint body.
func checkpointOrigin(county string) string { return "ecogrid.ledger/" + county }

// CheckpointBody returns the text that a checkpoint signs.
func CheckpointBody(county string, size int64, root tlog.Hash) string {
	return fmt.Sprintf("%s\n%d\n%s\n", checkpointOrigin(county), size, base64.StdEncoding.EncodeToString(root[:]))
}

// parseCheckpointBody parses CheckpointBody's output strictly.
func parseCheckpointBody(text string) (county string, size int64, root tlog.Hash, err error) {
	lines := strings.Split(text, "\n")
	if len(lines) != 4 || lines[3] != "" {
		return "", 0, root, errors.New("checkpoint body is not three lines")
	}
	county, ok := strings.CutPrefix(lines[0], "ecogrid.ledger/")
	if !ok || !validCountyCode(county) {
		return "", 0, root, fmt.Errorf("checkpoint origin %.40q is not an ecogrid ledger chain", lines[0])
	}
	size, err = strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size <= 0 || strconv.FormatInt(size, 10) != lines[1] {
		return "", 0, root, fmt.Errorf("checkpoint size %.40q is not a positive number", lines[1])
	}
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return "", 0, root, errors.New("checkpoint root is not a base64 SHA-256 hash")
	}
	copy(root[:], h)
	return county, size, root, nil
}

// maxNoteLen bounds a checkpoint note; real ones are about 200 bytes.
const maxNoteLen = 4096

// OpenCheckpoint checks a signed checkpoint note against the trusted keys and
// parses it. It fails for a note not signed by any trusted key, a bad
// signature, and a malformed body.
func OpenCheckpoint(text string, keys note.Verifiers) (Checkpoint, error) {
	if len(text) > maxNoteLen {
		return Checkpoint{}, errors.New("checkpoint note is too long")
	}
	n, err := note.Open([]byte(text), keys)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			return Checkpoint{}, errors.New("checkpoint is not signed by a trusted ledger key")
		case errors.As(err, &invalid):
			return Checkpoint{}, fmt.Errorf("checkpoint signature by %s does not verify", invalid.Name)
		}
		return Checkpoint{}, fmt.Errorf("checkpoint note is malformed: %v", err)
	}
	county, size, root, err := parseCheckpointBody(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	return Checkpoint{CountyCode: county, Size: size, Root: root, KeyName: n.Sigs[0].Name, KeyID: n.Sigs[0].Hash, Note: text}, nil
}

// peekCheckpointSize reads the size of a checkpoint note without checking
// its signature, to place a bad checkpoint in the chain; 0 if unreadable.
func peekCheckpointSize(text string) int64 {
	body, _, ok := strings.Cut(text, "\n\n")
	if !ok {
		return 0
	}
	_, size, _, err := parseCheckpointBody(body + "\n")
	if err != nil {
		return 0
	}
	return size
}

// signCheckpoint signs the checkpoint body with signer.
func signCheckpoint(signer note.Signer, county string, size int64, root tlog.Hash) (Checkpoint, error) {
	msg, err := note.Sign(&note.Note{Text: CheckpointBody(county, size, root)}, signer)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("ledger: signing checkpoint: %w", err)
	}
	return Checkpoint{CountyCode: county, Size: size, Root: root, KeyName: signer.Name(), KeyID: signer.KeyHash(), Note: string(msg)}, nil
}

// proofBytes and parseProof store a tree proof as concatenated hashes.
func proofBytes(p tlog.TreeProof) []byte {
	b := make([]byte, 0, len(p)*tlog.HashSize)
	for _, h := range p {
		b = append(b, h[:]...)
	}
	return b
}

func parseProof(b []byte) (tlog.TreeProof, error) {
	if len(b)%tlog.HashSize != 0 || len(b) > 128*tlog.HashSize {
		return nil, errors.New("consistency proof is damaged")
	}
	p := make(tlog.TreeProof, len(b)/tlog.HashSize)
	for i := range p {
		copy(p[i][:], b[i*tlog.HashSize:])
	}
	return p, nil
}

// sameCheckpoint reports whether two checkpoints state the same tree.
func sameCheckpoint(a, b Checkpoint) bool {
	return a.CountyCode == b.CountyCode && a.Size == b.Size && bytes.Equal(a.Root[:], b.Root[:])
}

package fieldsim

import (
	"fmt"
	"sync"
)

// acks is what the server acknowledged during the run: the claims the
// reconciliation holds the database to.
type acks struct {
	mu      sync.Mutex
	reports map[string]ackReport
	photos  map[string]ackPhoto
	patrols []ackPatrol
	steps   []ackStep
	closed  []string
	refused []string
}

type ackReport struct {
	violation bool
	photos    []string
}

type ackPhoto struct {
	size int64
	by   *session // the uploader, who may always download it
}

// ackPatrol is a patrol whose start, every track batch and end were
// acknowledged: the database must hold exactly its distinct points.
type ackPatrol struct {
	id     string
	points int
}

// ackStep is an acknowledged case workflow step (its request id).
type ackStep struct {
	id, caseID, action string
}

func newAcks() *acks {
	return &acks{reports: map[string]ackReport{}, photos: map[string]ackPhoto{}}
}

func (a *acks) report(id string, r ackReport) {
	a.mu.Lock()
	a.reports[id] = r
	a.mu.Unlock()
}

func (a *acks) photo(sha string, p ackPhoto) {
	a.mu.Lock()
	a.photos[sha] = p
	a.mu.Unlock()
}

func (a *acks) patrol(p ackPatrol) {
	a.mu.Lock()
	a.patrols = append(a.patrols, p)
	a.mu.Unlock()
}

func (a *acks) step(s ackStep) {
	a.mu.Lock()
	a.steps = append(a.steps, s)
	if s.action == "CloseCase" {
		a.closed = append(a.closed, s.caseID)
	}
	a.mu.Unlock()
}

// refusal keeps the first few calls the server refused for good.
func (a *acks) refusal(rpc string, err error) {
	a.mu.Lock()
	if len(a.refused) < 20 {
		a.refused = append(a.refused, fmt.Sprintf("%s: %v", rpc, err))
	}
	a.mu.Unlock()
}

func (a *acks) refusedSamples() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.refused...)
}

package people

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Handover says whose open duties move to whom when an assignment ends or
// is transferred (交接). It is handed to DutyHandover inside the transaction
// that ends the assignment, so no duty is ever left with a person who no
// longer holds the post.
type Handover struct {
	CountyCode   string    // chain of the ledger records written for the handover
	NodeCode     string    // grid node of the assignment that ends
	FromPersonID string    // the person leaving the post
	ToPersonID   string    // the named successor (or the node's supervisor)
	Actor        Actor     // who ends or transfers the assignment
	Reason       string    // as given on the end or transfer request
	At           time.Time // when the assignment ends
}

// DutyHandover moves a person's open duties at a node (cases they handle,
// supervise or must verify) to a successor within tx, writing a case step
// and a ledger record for each, and returns what it moved. The cases context
// implements it; people declares it because people lies below cases and
// must not import it.
type DutyHandover interface {
	HandOver(ctx context.Context, tx pgx.Tx, h Handover) ([]HandoverCase, error)
}

package people_test

import (
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/people"
	"ecogrid/internal/structerr"
)

// TestPersonTextRefusesControlAndDirectionCharacters: a name that displays
// reversed in every list and ledger record (U+202E) or holds a control
// character is refused; a newline is refused in a name too.
func TestPersonTextRefusesControlAndDirectionCharacters(t *testing.T) {
	for _, p := range []people.Person{
		{Name: "张\u202E伟"}, {Name: "Zhang\x1b[31mWei"}, {Name: "Zhang\nWei"}, {Name: "Zhang\u2066Wei"},
		{Name: "Zhang Wei", Phone: "139\u0085"}, {Name: "Zhang Wei", EmployeeCode: "E\u202A1"},
	} {
		p.ID, p.CountyCode = uuid.NewString(), "130123"
		if err := p.Check(); structerr.Code(err) != codes.InvalidArgument {
			t.Errorf("Check(%q, %q, %q) = %v; want InvalidArgument", p.Name, p.Phone, p.EmployeeCode, err)
		}
	}
	ok := people.Person{ID: uuid.NewString(), CountyCode: "130123", Name: "张伟 (Zhang Wei)"}
	if err := ok.Check(); err != nil {
		t.Errorf("a plain name: %v", err)
	}
}

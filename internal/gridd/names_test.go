package gridd

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/grid"
	"ecogrid/internal/ledger"
	"ecogrid/internal/people/peopletest"
	"ecogrid/internal/scope"
)

// TestHistoriesShowNamesBesideCodes: the accountability histories name the
// actor, the nodes and the responsible people's nodes, not only their
// UUIDs and 12-digit codes (issue 14); unknown ids and codes stay nameless.
func TestHistoriesShowNamesBesideCodes(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	g := peopletest.InsertGrid(t, pool)
	zhang := peopletest.AddMember(t, pool, g[peopletest.VillageA1a], scope.RoleInspector, "张三", "")
	err := database.InTx(context.Background(), pool, func(tx pgx.Tx) error {
		_, err := ledger.Append(context.Background(), tx, ledger.Entry{CountyCode: peopletest.CountyA,
			ActorID: zhang.Person.ID, ActorRole: "inspector", ActorNodeCode: peopletest.VillageA1a,
			Action: "report.filed", SubjectType: "report", SubjectID: "3f1c2a8e-8f1e-4a55-9d9e-0d7a1c2b3e4f", NodeCode: peopletest.VillageA1b,
			Responsible: []ledger.Responsible{{PersonID: zhang.Person.ID, Name: "张三", Role: "inspector", NodeCode: peopletest.TownshipA1}}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	svc := ledger.NewService(ledger.New(pool, nil, ledger.Config{}, nil), nil).WithNames(historyNames{pool: pool, grid: grid.NewStore(pool, grid.Config{})})
	admin := scope.NewContext(context.Background(), scope.Caller{Grants: []scope.Grant{{Role: scope.RoleAdmin}}})
	resp, err := svc.PersonHistory(admin, &ecogridv1.PersonHistoryRequest{PersonId: zhang.Person.ID})
	if err != nil {
		t.Fatal(err)
	}
	var filed *ecogridv1.LedgerRecord
	for _, r := range resp.GetRecords() {
		if r.GetAction() == "report.filed" {
			filed = r
		}
	}
	if filed == nil {
		t.Fatalf("no report.filed record in %v", resp.GetRecords())
	}
	if filed.GetActorName() != "张三" || filed.GetActorNodeName() != "node "+peopletest.VillageA1a || filed.GetNodeName() != "node "+peopletest.VillageA1b ||
		filed.GetResponsible()[0].GetNodeName() != "node "+peopletest.TownshipA1 {
		t.Errorf("names: actor %q at %q, node %q, responsible's node %q", filed.GetActorName(), filed.GetActorNodeName(), filed.GetNodeName(), filed.GetResponsible()[0].GetNodeName())
	}
	n := historyNames{pool: pool, grid: grid.NewStore(pool, grid.Config{})}
	if name, err := n.PersonName(context.Background(), ""); name != "" || err != nil {
		t.Errorf("the system actor: %q %v", name, err)
	}
	if name, err := n.NodeName(context.Background(), "999999"); name != "" || err != nil {
		t.Errorf("unknown node: %q %v", name, err)
	}
}

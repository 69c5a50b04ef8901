package waters_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/grid"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
	"ecogrid/internal/waters"
)

func officer(county string) scope.Caller {
	return scope.Caller{PersonID: uuid.NewString(), Grants: []scope.Grant{{Role: scope.RoleCountyOfficer, NodeCode: county}}}
}

func (e *env) importRiver(t *testing.T) []feature {
	t.Helper()
	fs := e.river(t)
	if _, err := e.store.ImportGeoJSON(context.Background(), collection(fs...), waters.ParseLimits{}, waters.ImportOptions{Effective: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestChiefsOnADay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	fs := e.importRiver(t)
	county := officer("130123")
	d := func(y int, m time.Month, day int) time.Time { return time.Date(y, m, day, 0, 0, 0, 0, time.UTC) }
	cleaning := waters.ChiefTask{Kind: waters.TaskCleaning, Period: grid.PeriodDay, Count: 1, CleanerName: "李四", CleanerPhone: "13800000001"}
	assign := func(n waters.NewChief) waters.Chief {
		t.Helper()
		n.ID = uuid.NewString()
		if n.PersonID == "" {
			n.PersonID = uuid.NewString()
		}
		ch, created, err := e.store.AssignChief(ctx, county, n)
		if err != nil || !created {
			t.Fatalf("assign %s: %v", n.Name, err)
		}
		return ch
	}
	// The chief river chief, the township chief of reach 2, the county chief of
	// reach 3, and two village chiefs of reach 1 in turn.
	total := assign(waters.NewChief{Name: "王书记", Post: "县委书记", Role: waters.RoleChiefRiverChief, CountyCode: "130123", ValidFrom: d(2025, 1, 1)})
	assign(waters.NewChief{Name: "乡长", Role: waters.RoleReachChief, ReachCode: fs[1].Code, ValidFrom: d(2025, 1, 1)})
	first := assign(waters.NewChief{Name: "张三", Phone: "13900000001", Role: waters.RoleReachChief, ReachCode: fs[0].Code,
		Tasks: []waters.ChiefTask{{Kind: waters.TaskPatrol, Period: grid.PeriodWeek, Count: 1}, cleaning}, ValidFrom: d(2025, 1, 1)})
	if _, err := e.store.EndChief(ctx, county, first.ID.String(), d(2025, 7, 1), "调任"); err != nil {
		t.Fatal(err)
	}
	second := assign(waters.NewChief{Name: "赵六", Role: waters.RoleReachChief, ReachCode: fs[0].Code, Tasks: []waters.ChiefTask{cleaning}, ValidFrom: d(2025, 7, 1)})

	names := func(day time.Time, code string) string {
		rs, err := e.store.ChiefsOn(ctx, code, day)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rs {
			out = append(out, r.Name)
		}
		return strings.Join(out, ",")
	}
	if got := names(d(2025, 3, 1), fs[0].Code); got != "王书记,张三" {
		t.Errorf("chiefs of the village reach in March = %s", got)
	}
	if got := names(d(2025, 9, 1), fs[0].Code); got != "王书记,赵六" {
		t.Errorf("chiefs of the village reach in September = %s", got)
	}
	if got := names(d(2025, 9, 1), fs[1].Code); got != "王书记,乡长" {
		t.Errorf("chiefs of the township reach = %s", got)
	}
	// Defaults: a township chief patrols monthly; a village chief without a
	// cleaner is refused; a repeat is idempotent; ended is final.
	rs, _ := e.store.ChiefsAt(ctx, fs[1].Code, d(2025, 9, 1))
	if len(rs) != 2 || rs[1].Tasks[0].Period != grid.PeriodMonth || rs[1].Title() != "乡级河长" || rs[0].Title() != "总河长" {
		t.Errorf("township chief %+v", rs)
	}
	if _, _, err := e.store.AssignChief(ctx, county, waters.NewChief{ID: uuid.NewString(), PersonID: uuid.NewString(), Name: "x", Role: waters.RoleReachChief, ReachCode: fs[0].Code}); structerr.Code(err) != codes.InvalidArgument {
		t.Errorf("village chief without a cleaner: %v", err)
	}
	n := waters.NewChief{ID: second.ID.String(), PersonID: second.PersonID.String(), Name: "赵六", Role: waters.RoleReachChief, ReachCode: fs[0].Code, Tasks: []waters.ChiefTask{cleaning}, ValidFrom: d(2025, 7, 1)}
	if again, created, err := e.store.AssignChief(ctx, county, n); err != nil || created || again.ID != second.ID {
		t.Errorf("repeat: %v created=%v", err, created)
	}
	if _, err := e.store.EndChief(ctx, county, first.ID.String(), time.Time{}, ""); structerr.Code(err) != codes.FailedPrecondition {
		t.Errorf("ending twice: %v", err)
	}
	// Authority: another county's officer does not see the reach; a
	// township supervisor sees it but may not appoint.
	if _, _, err := e.store.AssignChief(ctx, officer("130124"), waters.NewChief{ID: uuid.NewString(), PersonID: uuid.NewString(), Name: "x", Role: waters.RoleReachChief, ReachCode: fs[1].Code}); structerr.Code(err) != codes.NotFound {
		t.Errorf("other county's officer: %v", err)
	}
	sup := scope.Caller{PersonID: uuid.NewString(), Grants: []scope.Grant{{Role: scope.RoleTownshipSupervisor, NodeCode: fs[1].Node}}}
	if _, _, err := e.store.AssignChief(ctx, sup, waters.NewChief{ID: uuid.NewString(), PersonID: uuid.NewString(), Name: "x", Role: waters.RoleReachChief, ReachCode: fs[1].Code}); structerr.Code(err) != codes.PermissionDenied {
		t.Errorf("township supervisor: %v", err)
	}
	// Kept for life, and in the ledger.
	if _, err := e.pool.Exec(ctx, `DELETE FROM waters.chiefs WHERE id = $1`, total.ID); err == nil {
		t.Error("deleting a chief appointment succeeded")
	}
	if _, err := e.pool.Exec(ctx, `UPDATE waters.chiefs SET name = 'x' WHERE id = $1`, total.ID); err == nil {
		t.Error("renaming a chief appointment succeeded")
	}
	var records int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM ledger.records WHERE subject_type = 'water_chief'`).Scan(&records); err != nil || records != 5 {
		t.Errorf("ledger records %d (%v); want 4 appointments and 1 end", records, err)
	}
	// The sign.
	sign, err := e.store.SignOf(ctx, fs[0].Code)
	if err != nil || len(sign.Chiefs) != 2 || sign.NodeName == "" || sign.Chiefs[1].Tasks[0].Duty() != "保洁 每日1次 保洁员 李四 13800000001" {
		t.Errorf("sign %+v, %v", sign, err)
	}
}

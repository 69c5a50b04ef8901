// Package peopletest builds grid nodes, persons, assignments and accounts
// in a test database, for tests of people, auth and the contexts that need
// real callers (cases, field).
package peopletest

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"ecogrid/internal/accounts"
	"ecogrid/internal/accounts/password"
	"ecogrid/internal/people"
	"ecogrid/internal/scope"
)

// Codes of the two-county test grid.
const (
	CountyA    = "130123"
	TownshipA1 = "130123101"
	TownshipA2 = "130123102"
	VillageA1a = "130123101201"
	VillageA1b = "130123101202"
	VillageA2a = "130123102201"
	CountyB    = "130124"
	TownshipB1 = "130124101"
	VillageB1a = "130124101201"
)

// Grid is the test grid: node by code.
type Grid map[string]people.Node

// InsertGrid inserts the two-county test grid into grid.nodes (unit squares,
// enough for the people context, which only needs ids and codes).
func InsertGrid(t testing.TB, pool *pgxpool.Pool) Grid {
	t.Helper()
	g := Grid{}
	for i, code := range []string{CountyA, TownshipA1, TownshipA2, VillageA1a, VillageA1b, VillageA2a, CountyB, TownshipB1, VillageB1a} {
		g[code] = InsertNode(t, pool, code, fmt.Sprintf("node %s", code), float64(i))
	}
	return g
}

// InsertNode inserts one grid node under its parent (by code), as a square
// at x offset.
func InsertNode(t testing.TB, pool *pgxpool.Pool, code, name string, x float64) people.Node {
	t.Helper()
	ctx := context.Background()
	level := (len(code)-6)/3 + 1
	var parent any
	if level > 1 {
		var pid string
		if err := pool.QueryRow(ctx, `SELECT id::text FROM grid.nodes WHERE code = $1`, code[:len(code)-3]).Scan(&pid); err != nil {
			t.Fatalf("parent of %s: %v", code, err)
		}
		parent = pid
	}
	id := uuid.NewString()
	wkt := fmt.Sprintf("MULTIPOLYGON(((%[1]g 0, %[2]g 0, %[2]g 1, %[1]g 1, %[1]g 0)))", 100+x, 100+x+0.5)
	_, err := pool.Exec(ctx, `INSERT INTO grid.nodes (id, county_code, code, level, name, parent_id, geom, area_ha, valid_from)
		VALUES ($1, $2, $3, $4, $5, $6, ST_GeomFromText($7, 4326), 1, now() - interval '1 year')`,
		id, code[:6], code, level, name, parent, wkt)
	if err != nil {
		t.Fatalf("inserting grid node %s: %v", code, err)
	}
	return people.Node{ID: id, Code: code, Name: name}
}

// Member is a person with one assignment and (optionally) an account.
type Member struct {
	Person     people.Person
	Assignment people.Assignment
	AccountID  string
	Username   string
	Password   string
}

// Caller is the member as the auth interceptor would see them.
func (m Member) Caller() scope.Caller {
	return scope.Caller{PersonID: m.Person.ID, AccountID: m.AccountID, Grants: []scope.Grant{{
		Role: m.Assignment.Role, NodeID: m.Assignment.NodeID, NodeCode: m.Assignment.NodeCode,
	}}}
}

// Hasher is a cheap hasher for tests (the production parameters are
// benchmarked in accounts/password).
var Hasher = password.NewHasher(password.Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}, 4)

// AddMember creates a person of node's county, assigns them role at node,
// and, when username is not empty, gives them an account with a password.
func AddMember(t testing.TB, pool *pgxpool.Pool, node people.Node, role scope.Role, name, username string) Member {
	t.Helper()
	ctx := context.Background()
	st := people.NewStore(pool, nil)
	p, _, err := st.CreatePerson(ctx, people.SystemActor, people.Person{ID: uuid.NewString(), CountyCode: node.Code[:6], Name: name})
	if err != nil {
		t.Fatalf("creating person %s: %v", name, err)
	}
	nodeID := node.ID
	a, _, err := st.StartAssignment(ctx, people.SystemActor, people.NewAssignment{
		ID: uuid.NewString(), PersonID: p.ID, NodeID: nodeID, NodeCode: node.Code, Role: role, Tasks: []string{"patrol weekly"},
	})
	if err != nil {
		t.Fatalf("assigning %s as %s at %s: %v", name, role, node.Code, err)
	}
	m := Member{Person: p, Assignment: a}
	if username != "" {
		acct := AddAccount(t, pool, p, username)
		m.AccountID, m.Username, m.Password = acct.AccountID, acct.Username, acct.Password
	}
	return m
}

// AddAccount gives p an account with a known password.
func AddAccount(t testing.TB, pool *pgxpool.Pool, p people.Person, username string) Member {
	t.Helper()
	m := Member{Person: p, Username: username, Password: "pw-" + username + "-0123456789"}
	h, err := Hasher.Hash(m.Password)
	if err != nil {
		t.Fatal(err)
	}
	acct, _, err := accounts.Create(context.Background(), pool, accounts.Account{ID: uuid.NewString(), PersonID: p.ID, Username: username, PasswordHash: h}, "")
	if err != nil {
		t.Fatalf("creating account %s: %v", username, err)
	}
	m.AccountID = acct.ID
	return m
}

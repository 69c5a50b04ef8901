// Package scope describes who is calling and which part of the grid they may
// act in. The auth interceptor puts a Caller in the context; every service
// checks the objects it touches against it.
//
// Grid codes nest: a child's code extends its parent's (county 6 digits,
// township 9, village 12), so "inside the subtree of node X" is "code has
// X's code as prefix".
package scope

import (
	"context"
	"slices"
	"strings"
)

// Role is what a person does at a grid node.
type Role string

// The roles of the grid system.
const (
	RoleInspector          Role = "inspector"           // 网格员: patrols and reports in assigned cells
	RoleGridChief          Role = "grid_chief"          // 网格长: first responsible person of a cell at any level
	RoleTownshipSupervisor Role = "township_supervisor" // dispatches and closes cases of a township
	RoleCountyOfficer      Role = "county_officer"      // county grid office: grid, people, escalation, audit
	RoleAdmin              Role = "admin"               // system administrator, everywhere
)

// AllRoles lists every role, for policy tables and matrix tests.
var AllRoles = []Role{RoleInspector, RoleGridChief, RoleTownshipSupervisor, RoleCountyOfficer, RoleAdmin}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return slices.Contains(AllRoles, r) }

// Grant is one current assignment: a role held at a grid node.
type Grant struct {
	Role     Role
	NodeID   string // grid node id (uuid)
	NodeCode string // administrative code; its subtree is the grant's scope
}

// Caller is the authenticated person making a call, with the grants they
// hold at the time of the call.
type Caller struct {
	PersonID  string
	AccountID string
	SessionID string
	Grants    []Grant
}

// HasRole reports whether the caller holds any of roles somewhere.
func (c Caller) HasRole(roles ...Role) bool {
	for _, g := range c.Grants {
		if g.Role == RoleAdmin || slices.Contains(roles, g.Role) {
			return true
		}
	}
	return false
}

// Covers reports whether the node with the given code lies inside the
// subtree of a grant held with one of roles (any role when roles is empty).
// An administrator covers everything.
func (c Caller) Covers(code string, roles ...Role) bool {
	for _, g := range c.Grants {
		if g.Role == RoleAdmin {
			return true
		}
		if len(roles) > 0 && !slices.Contains(roles, g.Role) {
			continue
		}
		if strings.HasPrefix(code, g.NodeCode) {
			return true
		}
	}
	return false
}

// Roots returns the node codes of the grants held with one of roles (any
// role when empty), for filtering lists: an object is visible when its code
// has one of them as prefix. An administrator gets the empty prefix.
func (c Caller) Roots(roles ...Role) []string {
	var out []string
	for _, g := range c.Grants {
		if g.Role == RoleAdmin {
			return []string{""}
		}
		if len(roles) == 0 || slices.Contains(roles, g.Role) {
			out = append(out, g.NodeCode)
		}
	}
	return out
}

// GrantFor returns the caller's grant that covers code with one of roles,
// preferring the deepest; it names the role and node an act is recorded under.
func (c Caller) GrantFor(code string, roles ...Role) (Grant, bool) {
	var best Grant
	found := false
	for _, g := range c.Grants {
		if g.Role != RoleAdmin && (len(roles) > 0 && !slices.Contains(roles, g.Role)) {
			continue
		}
		if g.Role != RoleAdmin && !strings.HasPrefix(code, g.NodeCode) {
			continue
		}
		if !found || len(g.NodeCode) > len(best.NodeCode) {
			best, found = g, true
		}
	}
	return best, found
}

type callerKey struct{}

// NewContext returns ctx carrying the caller.
func NewContext(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// FromContext returns the caller put there by the auth interceptor.
func FromContext(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

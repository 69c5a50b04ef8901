// Package zones owns protected zones, a layer over the grid (issue 18):
// ecological red lines, drinking-water source protection zones, nature
// reserve zones, no-build and restricted-build zones and the kinds a
// county adds, each with versions (valid_from/valid_to) in the zones
// schema; the rules a kind carries in a county (minimum severity,
// deadline, immediate escalation, patrol quota); and the in-memory Index
// that says which zones contain a point.
//
// The Go API for the contexts above (field and cases, wired by the lead):
//
//	ix.ZonesAt(lat, lon)                  // zones containing a WGS-84 point, from memory
//	zones.RulesFor(ctx, q, county)        // the county's rules, defaults filled in
//	zones.Apply(rules, zs, severity)      // what the zones mean for a violation
//	ix.CountPatrols(tracks), zones.Quotas(rules, ix.InForce(county), counts) // patrol quotas from tracks given as points
package zones

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/twpayne/go-geom"

	ecogridv1 "ecogrid/api/ecogrid/v1"
)

// Kind is what a zone protects, and so which rule applies inside it.
type Kind string

// The built-in kinds, named after the designations in Chinese law.
const (
	KindEcologicalRedLine   Kind = "ecological_red_line"  // 生态保护红线
	KindDrinkingWater1      Kind = "drinking_water_1"     // 饮用水水源一级保护区
	KindDrinkingWater2      Kind = "drinking_water_2"     // 饮用水水源二级保护区
	KindDrinkingWaterQuasi  Kind = "drinking_water_quasi" // 饮用水水源准保护区
	KindReserveCore         Kind = "reserve_core"         // 自然保护区核心区
	KindReserveBuffer       Kind = "reserve_buffer"       // 自然保护区缓冲区
	KindReserveExperimental Kind = "reserve_experimental" // 自然保护区实验区
	KindNoBuild             Kind = "no_build"             // 禁建区
	KindRestrictedBuild     Kind = "restricted_build"     // 限建区
)

// BuiltinKinds lists the built-in kinds with their Chinese names.
var BuiltinKinds = []struct {
	Kind Kind
	Name string
}{
	{KindEcologicalRedLine, "生态保护红线"},
	{KindDrinkingWater1, "饮用水水源一级保护区"},
	{KindDrinkingWater2, "饮用水水源二级保护区"},
	{KindDrinkingWaterQuasi, "饮用水水源准保护区"},
	{KindReserveCore, "自然保护区核心区"},
	{KindReserveBuffer, "自然保护区缓冲区"},
	{KindReserveExperimental, "自然保护区实验区"},
	{KindNoBuild, "禁建区"},
	{KindRestrictedBuild, "限建区"},
}

// IsBuiltin reports whether k is one of the built-in kinds.
func (k Kind) IsBuiltin() bool {
	return slices.ContainsFunc(BuiltinKinds, func(b struct {
		Kind Kind
		Name string
	}) bool {
		return b.Kind == k
	})
}

var (
	kindPattern   = regexp.MustCompile(`^[a-z][a-z0-9_]{1,39}$`)
	codePattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	countyPattern = regexp.MustCompile(`^[0-9]{6}$`)
)

// ValidKindName reports whether s may name a kind a county adds.
func ValidKindName(s string) bool { return kindPattern.MatchString(s) }

// ValidCode reports whether s may be a zone code (unique in its county).
func ValidCode(s string) bool { return codePattern.MatchString(s) }

// ValidCounty reports whether s is a six-digit county code.
func ValidCounty(s string) bool { return countyPattern.MatchString(s) }

// Zone is one version of a protected zone. Zones from an Index share
// their geometry with it: callers must not modify it.
type Zone struct {
	CountyCode string
	Code       string
	Version    int
	Kind       Kind
	Name       string
	LegalBasis string
	Geometry   *geom.MultiPolygon
	ValidFrom  time.Time
	ValidTo    time.Time // zero for the current version
}

// Key identifies a zone across versions.
type Key struct{ CountyCode, Code string }

// Key returns the zone's identity.
func (z Zone) Key() Key { return Key{z.CountyCode, z.Code} }

// String is the county-qualified code, as written into events (the
// zone_codes of ViolationReported): 130123/SY-001.
func (k Key) String() string { return k.CountyCode + "/" + k.Code }

// Rule is what a kind of zone means in a county.
type Rule struct {
	CountyCode string
	Kind       Kind
	// MinSeverity is the least severity of a violation inside.
	MinSeverity ecogridv1.Severity
	// Deadline is the rectification deadline of a case inside; 0 leaves
	// the severity's default.
	Deadline time.Duration
	// EscalateNow sends any violation inside to the county at once.
	EscalateNow bool
	// PatrolsPerMonth is the quota of patrols inside each zone of the kind.
	PatrolsPerMonth int
	Note            string
	// Default is true for a built-in default the county did not override.
	Default bool
}

// DefaultRules are the rules of the built-in kinds until a county sets its
// own: a level-1 drinking-water zone or a reserve core escalates at once
// with a 24-hour deadline, the ecological red line and level-2 zones raise
// the severity, the rest only need patrols.
func DefaultRules(county string) []Rule {
	r := func(k Kind, sev ecogridv1.Severity, deadline time.Duration, escalate bool, patrols int) Rule {
		return Rule{CountyCode: county, Kind: k, MinSeverity: sev, Deadline: deadline, EscalateNow: escalate, PatrolsPerMonth: patrols, Default: true}
	}
	return []Rule{
		r(KindEcologicalRedLine, ecogridv1.Severity_SEVERITY_SERIOUS, 72*time.Hour, false, 4),
		r(KindDrinkingWater1, ecogridv1.Severity_SEVERITY_CRITICAL, 24*time.Hour, true, 30),
		r(KindDrinkingWater2, ecogridv1.Severity_SEVERITY_SERIOUS, 72*time.Hour, false, 8),
		r(KindDrinkingWaterQuasi, ecogridv1.Severity_SEVERITY_NORMAL, 0, false, 4),
		r(KindReserveCore, ecogridv1.Severity_SEVERITY_CRITICAL, 24*time.Hour, true, 8),
		r(KindReserveBuffer, ecogridv1.Severity_SEVERITY_SERIOUS, 72*time.Hour, false, 4),
		r(KindReserveExperimental, ecogridv1.Severity_SEVERITY_NORMAL, 0, false, 2),
		r(KindNoBuild, ecogridv1.Severity_SEVERITY_SERIOUS, 0, false, 2),
		r(KindRestrictedBuild, ecogridv1.Severity_SEVERITY_NORMAL, 0, false, 1),
	}
}

// Decision is what the zones containing a violation's position mean for
// it; the zero Decision (no zones) changes nothing but the severity given.
type Decision struct {
	// MinSeverity is the severity the violation must have at least: the
	// reported one raised to the strictest rule's minimum.
	MinSeverity ecogridv1.Severity
	// EscalateNow: some zone's rule sends the case to the county at once.
	EscalateNow bool
	// Deadline is the shortest deadline among the zones' rules; 0 for none.
	Deadline time.Duration
	// ZoneCodes are the county-qualified codes (Key.String) of every zone
	// containing the position, sorted.
	ZoneCodes []string
	// Reason says which zone set what, for the case timeline and the
	// ledger record; "" when no rule changed anything.
	Reason string
}

// Apply decides what zones mean for a violation of the given severity. A
// zone's rule is looked up by its county and kind; a zone without a rule
// only lists its code. Apply is pure: the same input gives the same
// Decision, whatever order the zones come in.
func Apply(rules []Rule, zones []Zone, severity ecogridv1.Severity) Decision {
	d := Decision{MinSeverity: severity}
	byKey := make(map[[2]string]Rule, len(rules))
	for _, r := range rules {
		byKey[[2]string{r.CountyCode, string(r.Kind)}] = r
	}
	sorted := slices.Clone(zones)
	slices.SortFunc(sorted, func(a, b Zone) int { return strings.Compare(a.Key().String(), b.Key().String()) })
	var reasons []string
	for _, z := range sorted {
		code := z.Key().String()
		if !slices.Contains(d.ZoneCodes, code) {
			d.ZoneCodes = append(d.ZoneCodes, code)
		}
		r, ok := byKey[[2]string{z.CountyCode, string(z.Kind)}]
		if !ok {
			continue
		}
		var did []string
		if r.MinSeverity > d.MinSeverity {
			d.MinSeverity = r.MinSeverity
			did = append(did, "severity at least "+strings.TrimPrefix(r.MinSeverity.String(), "SEVERITY_"))
		}
		if r.EscalateNow && !d.EscalateNow {
			d.EscalateNow = true
			did = append(did, "escalated to the county at once")
		}
		if r.Deadline > 0 && (d.Deadline == 0 || r.Deadline < d.Deadline) {
			d.Deadline = r.Deadline
			did = append(did, fmt.Sprintf("deadline %s", formatHours(r.Deadline)))
		}
		if len(did) > 0 {
			reasons = append(reasons, fmt.Sprintf("zone %s %s (%s): %s", code, z.Name, z.Kind, strings.Join(did, ", ")))
		}
	}
	d.Reason = strings.Join(reasons, "; ")
	return d
}

func formatHours(d time.Duration) string {
	return fmt.Sprintf("%dh", int(d.Hours()))
}

package messaging

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// The bus is not trusted: anyone who can reach NATS could otherwise
// publish a violation and have cased open a case. Every client is a user
// of the one ecogrid account, with subject permissions that say what its
// role may do. The same permissions serve the embedded server (dev,
// tests) and deploy/nats/*.conf (a test keeps them equal).

// Role is what a NATS user is to ecogrid.
type Role string

// The roles. A service's user name is its role.
const (
	// RoleGridd publishes violations (through the outbox relay) and
	// creates the streams; it consumes nothing.
	RoleGridd Role = "gridd"
	// RoleCased consumes violations, publishes case events (through the
	// outbox relay) and dead letters.
	RoleCased Role = "cased"
)

// Roles lists the services' roles, in a fixed order. Integrators' roles
// are per county: Integrator.
func Roles() []Role { return []Role{RoleGridd, RoleCased} }

// integratorPrefix begins the role (and user name) of a county's integrator.
const integratorPrefix = "integrator_"

// Integrator is the role of a department's system of county: it may only
// follow that county's case events — subscribe to CaseSubject(county, ">")
// live, or read them from the CASES stream through its one durable
// consumer IntegratorConsumer(county), which only the county's subjects
// can feed. It publishes nothing else, and its replies come on its own
// inbox prefix, so no integrator reads another county's pulls.
func Integrator(county string) Role { return Role(integratorPrefix + county) }

// IntegratorConsumer is the name of the durable consumer of CASES an
// integrator of county may create and read.
func IntegratorConsumer(county string) string { return integratorPrefix + county }

// integratorCounty is the county of an integrator role ("" for any other).
func integratorCounty(r Role) string {
	c, ok := strings.CutPrefix(string(r), integratorPrefix)
	if !ok || len(c) != 6 || strings.Trim(c, "0123456789") != "" {
		return ""
	}
	return c
}

// Account is the NATS account ecogrid's users live in, with JetStream.
const Account = "ECOGRID"

// InboxPrefix is the reply-subject prefix of a role's connection. Each
// service gets its own, so no other user can subscribe to the replies
// (publish acknowledgements, pulled messages) meant for it; integrators have
// their own too.
func InboxPrefix(r Role) string {
	if r == "" {
		return ""
	}
	return "_INBOX_" + string(r)
}

func inboxSubjects(r Role) string {
	if p := InboxPrefix(r); p != "" {
		return p + ".>"
	}
	return "_INBOX.>"
}

// streamAdmin is the JetStream API a service uses to create its streams
// at start and to read their state (metrics, health). Deleting or purging a
// stream is not in it: that is an operator's act with the system account.
func streamAdmin() []string {
	return []string{
		"$JS.API.INFO",
		"$JS.API.STREAM.NAMES",
		"$JS.API.STREAM.LIST",
		"$JS.API.STREAM.CREATE.*",
		"$JS.API.STREAM.UPDATE.*",
		"$JS.API.STREAM.INFO.*",
	}
}

// outboxSubjects are what an outbox relay publishes. gridd and cased each
// run a relay over the one outbox table, and whichever holds a county's
// lock publishes its pending rows, violations and case events alike, so
// both services publish both. The rows come from PostgreSQL; what the
// permissions keep out is everyone else (integrators, anonymous clients).
func outboxSubjects() []string {
	return []string{StreamSubjects(StreamViolations), StreamSubjects(StreamCases), jsonCasesPrefix + ">"}
}

// consumerOf is the JetStream API and ack subjects a pull consumer of
// stream needs: creating (ephemeral, named or durable) and reading its
// consumers, pulling the next messages, and acknowledging them.
func consumerOf(stream string) []string {
	return []string{
		"$JS.API.CONSUMER.CREATE." + stream,
		"$JS.API.CONSUMER.CREATE." + stream + ".>",
		"$JS.API.CONSUMER.DURABLE.CREATE." + stream + ".*",
		"$JS.API.CONSUMER.INFO." + stream + ".*",
		"$JS.API.CONSUMER.NAMES." + stream,
		"$JS.API.CONSUMER.LIST." + stream,
		"$JS.API.CONSUMER.MSG.NEXT." + stream + ".*",
		"$JS.API.CONSUMER.DELETE." + stream + ".*",
		"$JS.API.STREAM.MSG.GET." + stream,
		"$JS.API.DIRECT.GET." + stream,
		"$JS.API.DIRECT.GET." + stream + ".>",
		"$JS.ACK." + stream + ".>",
	}
}

// Permissions returns what a user of role may publish and subscribe to.
// Everything not allowed is denied.
func Permissions(r Role) (*server.Permissions, error) {
	var pub, sub []string
	switch r {
	case RoleGridd:
		pub = append(streamAdmin(), outboxSubjects()...)
	case RoleCased:
		pub = append(append(streamAdmin(), outboxSubjects()...), StreamSubjects(StreamDeadLetter))
		pub = append(pub, consumerOf(StreamViolations)...)
		pub = append(pub, consumerOf(StreamDeadLetter)...)
		// Replaying a dead letter (gridctl deadletters replay) removes it.
		pub = append(pub, "$JS.API.STREAM.MSG.DELETE."+StreamDeadLetter)
		// cased runs the webhook dispatcher: a durable consumer per subscriber.
		pub = append(pub, consumerOf(StreamCases)...)
	default:
		county := integratorCounty(r)
		if county == "" {
			return nil, fmt.Errorf("no NATS role %q", r)
		}
		pub, sub = integratorPermissions(county)
	}
	sub = append(sub, inboxSubjects(r))
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: sub},
	}, nil
}

// integratorPermissions: live case events of the county (protobuf and
// their protojson copies), and the JetStream
// API of the one consumer named for it. Creating that consumer goes
// through the subject that carries its filter
// ($JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>), which the server
// checks against the filter in the request, so the filter is always inside
// the county. Stream reads by sequence (STREAM.MSG.GET, DIRECT.GET) are
// left out: they would return any county's message.
func integratorPermissions(county string) (pub, sub []string) {
	name := IntegratorConsumer(county)
	cases := CaseSubject(county, ">")
	pub = []string{
		"$JS.API.INFO", // account usage, which Connect checks JetStream with
		"$JS.API.CONSUMER.CREATE." + StreamCases + "." + name + "." + cases,
		"$JS.API.CONSUMER.INFO." + StreamCases + "." + name,
		"$JS.API.CONSUMER.DELETE." + StreamCases + "." + name,
		"$JS.API.CONSUMER.MSG.NEXT." + StreamCases + "." + name,
		"$JS.ACK." + StreamCases + "." + name + ".>",
	}
	return pub, []string{cases, JSONCaseSubject(county, ">")}
}

// Credentials are a NATS user's name and password. Never print them.
type Credentials struct {
	User     string
	Password string
}

// Set reports whether a user name is given.
func (c Credentials) Set() bool { return c.User != "" }

// String masks the password so a logged config shows no secret.
func (c Credentials) String() string {
	if c.User == "" {
		return "(none)"
	}
	return c.User + ":[redacted]"
}

// AccountsConfig renders the ecogrid account and its users, with each
// role's permissions, as a nats-server configuration (JSON, which the
// configuration format accepts). users maps a role to its credentials;
// a role without credentials has no user.
func AccountsConfig(users map[Role]Credentials) (string, error) {
	type perm struct {
		Allow []string `json:"allow"`
	}
	type user struct {
		User        string `json:"user"`
		Password    string `json:"password"`
		Permissions struct {
			Publish   perm `json:"publish"`
			Subscribe perm `json:"subscribe"`
		} `json:"permissions"`
	}
	roles := make([]string, 0, len(users))
	for r := range users {
		roles = append(roles, string(r))
	}
	sort.Strings(roles)
	var list []user
	for _, name := range roles {
		r := Role(name)
		c := users[r]
		if !c.Set() || c.Password == "" {
			return "", fmt.Errorf("NATS role %s: user and password are both required", r)
		}
		p, err := Permissions(r)
		if err != nil {
			return "", err
		}
		u := user{User: c.User, Password: c.Password}
		u.Permissions.Publish.Allow = p.Publish.Allow
		u.Permissions.Subscribe.Allow = p.Subscribe.Allow
		list = append(list, u)
	}
	cfg := map[string]any{
		"accounts": map[string]any{
			Account: map[string]any{"jetstream": "enabled", "users": list},
		},
	}
	// nats-server's parser knows no \u escapes: keep > as it is.
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(cfg); err != nil {
		return "", err
	}
	return b.String(), nil
}

package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/accounts"
	"ecogrid/internal/accounts/password"
	"ecogrid/internal/auth"
	"ecogrid/internal/database"
	"ecogrid/internal/flagenv"
	"ecogrid/internal/people"
	"ecogrid/internal/scope"
)

const usersUsage = `usage: gridctl users <command> [flags]

Operator commands (DATABASE_URL, no server needed):
  bootstrap-admin  create the first administrator (person, account, admin assignment at a county)
  keygen           write a new Ed25519 access-token signing key (ECOGRID_AUTH_KEY_FILE)
  unlock -db       lift a login lockout directly in the database

Commands through gridd (GRIDD_ADDR, ECOGRID_TOKEN):
  login            print an access token for ECOGRID_TOKEN (password on stdin)
  create           register a person, optionally with an account
  assign           assign a person a role at a grid node
  end-assignment   end an assignment now; prints the handover list
  transfer         end an assignment and start its successor
  unlock           lift a login lockout (county officers)
  reset-password   give an account a new generated password and log it out everywhere
  history          a person's whole assignment history
  responsible      who was responsible for a grid node at a time
  whoami           the caller and their current grants`

func runUsers(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "help" || args[0] == "--help" {
		fmt.Fprintln(os.Stderr, usersUsage)
		return nil
	}
	sub := map[string]func(context.Context, []string) error{
		"bootstrap-admin": runUsersBootstrap,
		"keygen":          runUsersKeygen,
		"login":           runUsersLogin,
		"create":          runUsersCreate,
		"assign":          runUsersAssign,
		"end-assignment":  runUsersEnd,
		"transfer":        runUsersTransfer,
		"unlock":          runUsersUnlock,
		"reset-password":  runUsersResetPassword,
		"history":         runUsersHistory,
		"responsible":     runUsersResponsible,
		"whoami":          runUsersWhoAmI,
	}
	run, ok := sub[args[0]]
	if !ok {
		fmt.Fprintln(os.Stderr, usersUsage)
		return fmt.Errorf("unknown users command %q", args[0])
	}
	return run(ctx, args[1:])
}

// readSecretLine reads one line from stdin (a password piped in, so that it
// never appears in the process list or shell history).
func readSecretLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, password.MaxLen+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func runUsersBootstrap(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl users bootstrap-admin", flag.ContinueOnError)
	var url, county, name, user, phone string
	var pwStdin bool
	flagenv.String(fs, &url, "database-url", "DATABASE_URL", database.DefaultURL, "PostgreSQL URL")
	fs.StringVar(&county, "county", "", "6-digit county code the administrator is assigned at (required)")
	fs.StringVar(&name, "name", "Administrator", "the administrator's name")
	fs.StringVar(&user, "username", "admin", "login name")
	fs.StringVar(&phone, "phone", "", "phone number")
	fs.BoolVar(&pwStdin, "password-stdin", false, "read the password from stdin (otherwise one is generated and printed once)")
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	if err := people.CheckCountyCode(county); err != nil {
		return fmt.Errorf("-county: %v", err)
	}
	username, err := accounts.NormaliseUsername(user)
	if err != nil {
		return err
	}
	pw, generated := "", false
	if pwStdin {
		if pw, err = readSecretLine(os.Stdin); err != nil {
			return err
		}
		if err := password.CheckPolicy(pw); err != nil {
			return err
		}
	} else {
		pw, generated = people.GeneratePassword(), true
	}
	pool, err := database.Open(ctx, database.Config{URL: url, ApplicationName: "gridctl"})
	if err != nil {
		return err
	}
	defer pool.Close()
	hash, err := password.NewHasher(password.Default, 1).Hash(pw)
	if err != nil {
		return err
	}
	adm, err := people.BootstrapAdmin(ctx, pool, county, name, phone, username, hash)
	if err != nil {
		return err
	}
	fmt.Printf("administrator %s\nperson_id  %s\naccount_id %s\nassignment %s (admin at %s)\n", username, adm.Person.ID, adm.AccountID, adm.AssignmentID, county)
	if generated {
		fmt.Printf("password   %s\n(shown once; change it after the first login)\n", pw)
	}
	return nil
}

func runUsersKeygen(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl users keygen", flag.ContinueOnError)
	var out, pubOut string
	fs.StringVar(&out, "out", "", "file to write the private key to (mode 0600; must not exist) (required)")
	fs.StringVar(&pubOut, "public-out", "", "also write the public key here, for verify-only services (cased)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if out == "" {
		return errors.New("-out is required")
	}
	key, err := auth.GenerateKeyPEM()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	keys, err := auth.LoadKeys(auth.KeyConfig{PrivateKeyFile: out})
	if err != nil {
		return err
	}
	pub, err := keys.PublicKeyPEM()
	if err != nil {
		return err
	}
	if pubOut != "" {
		if err := os.WriteFile(pubOut, pub, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("wrote %s; set %s=%s for gridd\n%s", out, auth.EnvKeyFile, out, pub)
	return nil
}

// roleName is a role as gridctl prints and reads it: "township_supervisor".
func roleName(r ecogridv1.Role) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "ROLE_"))
}

// usersConn holds the connection flags of the commands that go through gridd.
type usersConn struct{ serverConn }

func (c *usersConn) register(fs *flag.FlagSet) {
	c.serverConn.register(fs, "gridd", "GRIDD_ADDR", "127.0.0.1:7443", "access token")
	c.noToken = "no access token: set ECOGRID_TOKEN (export ECOGRID_TOKEN=$(gridctl users login -username NAME)) or pass -token"
}

func runUsersLogin(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl users login", flag.ContinueOnError)
	var c usersConn
	c.register(fs)
	var user, refreshFile string
	fs.StringVar(&user, "username", "", "login name (required); the password is read from stdin")
	fs.StringVar(&refreshFile, "refresh-out", "", "write the refresh token to this file (mode 0600)")
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	if user == "" {
		return errors.New("-username is required")
	}
	if fi, err := os.Stdin.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		fmt.Fprint(os.Stderr, "password: ")
	}
	pw, err := readSecretLine(os.Stdin)
	if err != nil {
		return err
	}
	conn, ctx, err := c.dial(ctx, false)
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := ecogridv1.NewAuthServiceClient(conn).Login(ctx, &ecogridv1.LoginRequest{Username: user, Password: pw, Device: "gridctl"})
	if err != nil {
		return err
	}
	if refreshFile != "" {
		if err := os.WriteFile(refreshFile, []byte(resp.GetTokens().GetRefreshToken()+"\n"), 0o600); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "logged in; the token expires at %s\n", resp.GetTokens().GetAccessExpireTime().AsTime().Local().Format(time.RFC3339))
	fmt.Println(resp.GetTokens().GetAccessToken())
	return nil
}

func parseRole(s string) (ecogridv1.Role, error) {
	r := scope.Role(strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "-", "_"))
	if !r.Valid() {
		return 0, fmt.Errorf("role %q: want inspector, grid_chief, township_supervisor, county_officer or admin", s)
	}
	return people.RoleProto(r), nil
}

func splitTasks(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ";") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

func runUsersCreate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl users create", flag.ContinueOnError)
	var c usersConn
	c.register(fs)
	var id, county, name, phone, code, user string
	var pwStdin bool
	fs.StringVar(&id, "id", "", "person id (default: a new UUID; give the same id to retry safely)")
	fs.StringVar(&county, "county", "", "home county code (required)")
	fs.StringVar(&name, "name", "", "full name (required)")
	fs.StringVar(&phone, "phone", "", "phone number")
	fs.StringVar(&code, "employee-code", "", "employee code, unique in the county")
	fs.StringVar(&user, "username", "", "also create an account with this login name")
	fs.BoolVar(&pwStdin, "password-stdin", false, "read the account's password from stdin (otherwise one is generated)")
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	if id == "" {
		id = uuid.NewString()
	}
	conn, ctx, err := c.dial(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	cl := ecogridv1.NewPeopleServiceClient(conn)
	p, err := cl.CreatePerson(ctx, &ecogridv1.CreatePersonRequest{PersonId: id, CountyCode: county, Name: name, Phone: phone, EmployeeCode: code})
	if err != nil {
		return err
	}
	fmt.Printf("person_id  %s\n", p.GetPerson().GetId())
	if user == "" {
		return nil
	}
	pw := ""
	if pwStdin {
		if pw, err = readSecretLine(os.Stdin); err != nil {
			return err
		}
	}
	a, err := cl.CreateAccount(ctx, &ecogridv1.CreateAccountRequest{AccountId: uuid.NewSHA1(uuid.NameSpaceOID, []byte("account:"+id)).String(), PersonId: id, Username: user, Password: pw})
	if err != nil {
		return err
	}
	fmt.Printf("account_id %s\nusername   %s\n", a.GetAccountId(), a.GetUsername())
	if a.GetGeneratedPassword() != "" {
		fmt.Printf("password   %s\n(shown once)\n", a.GetGeneratedPassword())
	}
	return nil
}

// nodeID resolves -node (an id or a grid code) through GridService.
func nodeID(ctx context.Context, conn *grpc.ClientConn, node string) (string, error) {
	if node == "" {
		return "", errors.New("-node is required (a grid node id or code)")
	}
	if _, err := uuid.Parse(node); err == nil {
		return node, nil
	}
	resp, err := ecogridv1.NewGridServiceClient(conn).GetNode(ctx, &ecogridv1.GetNodeRequest{Code: node})
	if err != nil {
		return "", fmt.Errorf("grid node %s: %w", node, err)
	}
	return resp.GetNode().GetId(), nil
}

func printAssignment(w io.Writer, a *ecogridv1.Assignment) {
	to := "open"
	if a.GetValidTo() != nil {
		to = a.GetValidTo().AsTime().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "%s  %-20s %-15s %s .. %s  %s\n", a.GetId(), roleName(a.GetRole()),
		a.GetNodeCode(), a.GetValidFrom().AsTime().Format(time.RFC3339), to, strings.Join(a.GetTasks(), "; "))
}

func runUsersAssign(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl users assign", flag.ContinueOnError)
	var c usersConn
	c.register(fs)
	var id, person, node, role, tasks, from string
	fs.StringVar(&id, "id", "", "assignment id (default: a new UUID; give the same id to retry safely)")
	fs.StringVar(&person, "person", "", "person id (required)")
	fs.StringVar(&node, "node", "", "grid node id or code (required)")
	fs.StringVar(&role, "role", "", "inspector, grid_chief, township_supervisor, county_officer or admin (required)")
	fs.StringVar(&tasks, "tasks", "", "tasks, separated by ';'")
	fs.StringVar(&from, "from", "", "start time (RFC 3339; default now)")
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	r, err := parseRole(role)
	if err != nil {
		return err
	}
	req := &ecogridv1.StartAssignmentRequest{AssignmentId: id, PersonId: person, Role: r, Tasks: splitTasks(tasks)}
	if req.AssignmentId == "" {
		req.AssignmentId = uuid.NewString()
	}
	if from != "" {
		t, err := time.Parse(time.RFC3339, from)
		if err != nil {
			return fmt.Errorf("-from: %v", err)
		}
		req.ValidFrom = timestamppb.New(t)
	}
	conn, ctx, err := c.dial(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	if req.NodeId, err = nodeID(ctx, conn, node); err != nil {
		return err
	}
	resp, err := ecogridv1.NewPeopleServiceClient(conn).StartAssignment(ctx, req)
	if err != nil {
		return err
	}
	printAssignment(os.Stdout, resp.GetAssignment())
	return nil
}

func printHandover(resp *ecogridv1.EndAssignmentResponse) {
	if !resp.GetLastAssignment() {
		return
	}
	if len(resp.GetHandover()) == 0 {
		fmt.Println("that was the person's last assignment; they hold no open cases")
		return
	}
	fmt.Printf("that was the person's last assignment; %d open cases to hand over:\n", len(resp.GetHandover()))
	for _, h := range resp.GetHandover() {
		fmt.Printf("  %s  %-12s %s  %s\n", h.GetCaseId(), h.GetStatus(), h.GetNodeCode(), h.GetTitle())
	}
}

func runUsersEnd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl users end-assignment", flag.ContinueOnError)
	var c usersConn
	c.register(fs)
	var id, reason string
	fs.StringVar(&id, "assignment", "", "assignment id (required)")
	fs.StringVar(&reason, "reason", "", "why it ends (recorded)")
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	conn, ctx, err := c.dial(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := ecogridv1.NewPeopleServiceClient(conn).EndAssignment(ctx, &ecogridv1.EndAssignmentRequest{AssignmentId: id, Reason: reason})
	if err != nil {
		return err
	}
	printAssignment(os.Stdout, resp.GetAssignment())
	printHandover(resp)
	return nil
}

func runUsersTransfer(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl users transfer", flag.ContinueOnError)
	var c usersConn
	c.register(fs)
	var id, newID, node, role, tasks, reason string
	fs.StringVar(&id, "assignment", "", "assignment to end (required)")
	fs.StringVar(&newID, "new-id", "", "id of the new assignment (default: a new UUID)")
	fs.StringVar(&node, "node", "", "new grid node id or code (required)")
	fs.StringVar(&role, "role", "", "new role (default: the same)")
	fs.StringVar(&tasks, "tasks", "", "new tasks, separated by ';'")
	fs.StringVar(&reason, "reason", "", "why (recorded)")
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	req := &ecogridv1.TransferAssignmentRequest{AssignmentId: id, NewAssignmentId: newID, Tasks: splitTasks(tasks), Reason: reason}
	if req.NewAssignmentId == "" {
		req.NewAssignmentId = uuid.NewString()
	}
	if role != "" {
		r, err := parseRole(role)
		if err != nil {
			return err
		}
		req.Role = r
	}
	conn, ctx, err := c.dial(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	var err2 error
	if req.NodeId, err2 = nodeID(ctx, conn, node); err2 != nil {
		return err2
	}
	resp, err := ecogridv1.NewPeopleServiceClient(conn).TransferAssignment(ctx, req)
	if err != nil {
		return err
	}
	printAssignment(os.Stdout, resp.GetEnded())
	printAssignment(os.Stdout, resp.GetStarted())
	return nil
}

func runUsersUnlock(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl users unlock", flag.ContinueOnError)
	var c usersConn
	c.register(fs)
	var user, url string
	var direct bool
	fs.StringVar(&user, "username", "", "the locked login name (required)")
	fs.BoolVar(&direct, "db", false, "lift the lock directly in the database (when no county officer can log in)")
	flagenv.String(fs, &url, "database-url", "DATABASE_URL", database.DefaultURL, "PostgreSQL URL (with -db)")
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	username, err := accounts.NormaliseUsername(user)
	if err != nil {
		return err
	}
	if direct {
		pool, err := database.Open(ctx, database.Config{URL: url, ApplicationName: "gridctl"})
		if err != nil {
			return err
		}
		defer pool.Close()
		a, err := accounts.ByUsername(ctx, pool, username)
		if err != nil {
			return err
		}
		p, err := people.GetPerson(ctx, pool, a.PersonID)
		if err != nil {
			return err
		}
		was, err := people.NewStore(pool, nil).UnlockAccount(ctx, people.SystemActor, p, a)
		if err != nil {
			return err
		}
		fmt.Printf("%s: locked=%v, now unlocked\n", username, was)
		return nil
	}
	conn, ctx, err := c.dial(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := ecogridv1.NewPeopleServiceClient(conn).UnlockAccount(ctx, &ecogridv1.UnlockAccountRequest{Username: username})
	if err != nil {
		return err
	}
	fmt.Printf("%s: locked=%v, now unlocked\n", username, resp.GetWasLocked())
	return nil
}

func runUsersHistory(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl users history", flag.ContinueOnError)
	var c usersConn
	c.register(fs)
	var person string
	fs.StringVar(&person, "person", "", "person id (required)")
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	conn, ctx, err := c.dial(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := ecogridv1.NewPeopleServiceClient(conn).ListAssignmentHistory(ctx, &ecogridv1.ListAssignmentHistoryRequest{PersonId: person})
	if err != nil {
		return err
	}
	for _, a := range resp.GetAssignments() {
		printAssignment(os.Stdout, a)
	}
	return nil
}

func runUsersResponsible(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl users responsible", flag.ContinueOnError)
	var c usersConn
	c.register(fs)
	var node, at string
	fs.StringVar(&node, "node", "", "grid node code (required)")
	fs.StringVar(&at, "at", "", "time (RFC 3339; default now)")
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	req := &ecogridv1.ListResponsibleRequest{NodeCode: node}
	if at != "" {
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return fmt.Errorf("-at: %v", err)
		}
		req.At = timestamppb.New(t)
	}
	conn, ctx, err := c.dial(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := ecogridv1.NewPeopleServiceClient(conn).ListResponsible(ctx, req)
	if err != nil {
		return err
	}
	for _, r := range resp.GetResponsible() {
		fmt.Printf("%-15s %-20s %s  %s\n", r.GetNodeCode(), roleName(r.GetRole()), r.GetPersonId(), r.GetName())
	}
	return nil
}

func runUsersWhoAmI(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl users whoami", flag.ContinueOnError)
	var c usersConn
	c.register(fs)
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	conn, ctx, err := c.dial(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := ecogridv1.NewAuthServiceClient(conn).WhoAmI(ctx, &ecogridv1.WhoAmIRequest{})
	if err != nil {
		return err
	}
	fmt.Printf("%s (%s) person %s\n", resp.GetUsername(), resp.GetPerson().GetName(), resp.GetPerson().GetId())
	for _, g := range resp.GetGrants() {
		fmt.Printf("  %-20s %s\n", roleName(g.GetRole()), g.GetNodeCode())
	}
	return nil
}

func runUsersResetPassword(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl users reset-password", flag.ContinueOnError)
	var c usersConn
	c.register(fs)
	var user string
	fs.StringVar(&user, "username", "", "login name (required)")
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	conn, ctx, err := c.dial(ctx, true)
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := ecogridv1.NewPeopleServiceClient(conn).ResetPassword(ctx, &ecogridv1.ResetPasswordRequest{Username: user})
	if err != nil {
		return err
	}
	fmt.Printf("password   %s\n(shown once; all of the account's sessions have ended)\n", resp.GetGeneratedPassword())
	return nil
}

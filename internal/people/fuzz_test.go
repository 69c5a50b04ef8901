package people

import (
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/grpc/codes"

	"ecogrid/internal/accounts"
	"ecogrid/internal/structerr/structerrtest"
)

// FuzzPersonInput runs the checks a new person, an account name and an
// assignment's node code and tasks pass before they reach the database.
// A refusal is a short InvalidArgument; what is accepted is text
// PostgreSQL stores as given (valid UTF-8, no NUL) within its limits.
func FuzzPersonInput(f *testing.F) {
	f.Add("0B8F6A9E-2F61-4C1E-9D3E-5A1F00000001", "130123", "王小明", "13800138000", "HY-017", "巡查河道\n核对排口", "130123005001", " Wang.XM@hy ")
	f.Add("x", "13012", "", "", "", "", "13012300", "ab")
	f.Add("0b8f6a9e-2f61-4c1e-9d3e-5a1f00000001", "130123", "a\x00b", "\xff", "", "\x00", "130123005001001001001001001", "Ω")
	f.Fuzz(func(t *testing.T, id, county, name, phone, code, tasks, node, username string) {
		p := Person{ID: id, CountyCode: county, Name: name, Phone: phone, EmployeeCode: code}
		if err := p.Check(); err != nil {
			structerrtest.CheckRefusal(t, err, codes.InvalidArgument)
		} else {
			for _, s := range []string{p.Name, p.Phone, p.EmployeeCode} {
				if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
					t.Fatalf("person %+v accepted", p)
				}
			}
			if utf8.RuneCountInString(p.Name) > maxNameLen || strings.TrimSpace(p.Name) == "" {
				t.Fatalf("name %.80q accepted", p.Name)
			}
		}
		if got, err := NormaliseID("person id", id); err != nil {
			structerrtest.CheckRefusal(t, err, codes.InvalidArgument)
		} else if again, err := NormaliseID("person id", got); err != nil || again != got || got != strings.ToLower(got) {
			t.Fatalf("NormaliseID(%q) = %q, then %q, %v", id, got, again, err)
		}
		var list []string
		if tasks != "" {
			list = strings.Split(tasks, "\n")
		}
		if err := checkTasks(list); err != nil {
			structerrtest.CheckRefusal(t, err, codes.InvalidArgument)
		} else {
			for _, task := range list {
				if strings.ContainsRune(task, 0) || !utf8.ValidString(task) || utf8.RuneCountInString(task) > maxTaskLen {
					t.Fatalf("task %.80q accepted", task)
				}
			}
		}
		if err := CheckNodeCode(node); err != nil {
			structerrtest.CheckRefusal(t, err, codes.InvalidArgument)
		} else if anc := AncestorCodes(node); len(anc) == 0 || anc[0] != node || anc[len(anc)-1] != node[:6] {
			t.Fatalf("AncestorCodes(%q) = %q", node, anc)
		}
		if u, err := accounts.NormaliseUsername(username); err != nil {
			structerrtest.CheckRefusal(t, err, codes.InvalidArgument)
		} else if again, err := accounts.NormaliseUsername(u); err != nil || again != u {
			t.Fatalf("NormaliseUsername(%q) = %q, then %q, %v", username, u, again, err)
		}
	})
}

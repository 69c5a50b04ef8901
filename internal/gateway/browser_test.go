package gateway_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// consoleTools finds what the browser tests drive: Debian's Chromium and
// the console's npm packages (playwright-core). scripts/test.sh installs
// both and sets ECOGRID_BROWSER_TESTS=1, so there a missing tool fails the
// test; elsewhere the test is skipped with the command that installs them.
func consoleTools(t *testing.T) (webDir string) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	webDir = filepath.Join(filepath.Dir(file), "..", "..", "web")
	missing := ""
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		missing = "/usr/bin/chromium (apt-get install chromium)"
	} else if _, err := os.Stat(filepath.Join(webDir, "node_modules", "playwright-core")); err != nil {
		missing = "web/node_modules (cd web && npm ci)"
	} else if _, err := exec.LookPath("node"); err != nil {
		missing = "node"
	}
	if missing != "" {
		if os.Getenv("ECOGRID_BROWSER_TESTS") != "" {
			t.Fatalf("browser tests need %s", missing)
		}
		t.Skipf("browser tests need %s; scripts/test.sh installs it", missing)
	}
	return webDir
}

// artifactDir is a folder that outlives the test, for the screenshots.
func artifactDir(t *testing.T, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ecogrid-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// TestConsoleStories runs the console's user stories (web/e2e/stories.mjs)
// in headless Chromium against a real stack: a supervisor sees a case
// filed through the field API on the board, dispatches it and follows it
// to closed; the county office opens a person's page and sees the map draw
// every village of the demo county, the inspector's patrol track (walked
// through the field API), a river reach and a protected zone; an inspector
// of another township sees none of it.
func TestConsoleStories(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole stack and a browser")
	}
	web := consoleTools(t)
	s := startStack(t)
	c := s.fileViolation(t, "酒店后门向河道排放油污")
	s.walkPatrol(t, s.people["inspector"], 40)
	s.addWatersAndZone(t)
	users := s.storyUsers("supervisor", "inspector", "checker", "outsider", "officer")
	story, _ := json.Marshal(map[string]any{
		"users":        users,
		"caseId":       c.GetId(),
		"caseLink":     c.GetCategory() + " · " + c.GetVillageCode(),
		"handlerLabel": s.people["inspector"].name + " (" + s.villageA.GetCode() + ")",
		"villages":     len(s.villages),
		"townA":        s.townA,
		"townB":        s.townB,
	})
	// About 1.5 minutes alone; the whole suite runs beside it on two cores.
	runStory(t, web, "e2e/stories.mjs", "console", s.ConsoleURL, story)
}

// storyUsers are the sign-in details and identity of the named test
// people, as the browser stories read them.
func (s *stack) storyUsers(names ...string) map[string]map[string]string {
	users := map[string]map[string]string{}
	for _, name := range names {
		u := s.people[name]
		users[name] = map[string]string{"username": u.username, "password": u.password, "name": u.name, "id": u.personID}
	}
	return users
}

// runStory runs a Playwright script of web/e2e against the console at
// url with the story's data, its screenshots in a kept temp folder named
// after artifacts; the script's output is logged and its failure fails t.
func runStory(t *testing.T, web, script, artifacts, url string, story []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Dir = web
	cmd.Env = append(os.Environ(), "CONSOLE_URL="+url, "ARTIFACTS="+artifactDir(t, artifacts), "STORY="+string(story))
	out, err := cmd.CombinedOutput()
	t.Logf("%s:\n%s", script, out)
	if err != nil {
		t.Fatalf("%s failed: %v", script, err)
	}
}
